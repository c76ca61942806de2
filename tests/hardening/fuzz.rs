//! Bounded fuzzing of the file parsers, in process: the pickle machine, `torch.save` files,
//! `.safetensors` files (header and the state-dict checks against an architecture), ONNX
//! protobuf decoding and conversion to a graph, `.npy` and model cards. Inputs are seeds (the
//! hostile files of `parsers` plus valid small files) mutated by byte flips, overwrites,
//! truncations, insertions, deletions and splices, or plain random bytes. Every input must give
//! `Ok` or `Err`: a panic fails the test (proptest reports the smallest input it finds), an
//! abort or stack overflow kills the test binary.
//!
//! Each parser runs [`DEFAULT_CASES`] inputs; `RELEVANCE_FUZZ_CASES=N` runs N instead. Every
//! target prints its execution count and duration (`--nocapture` shows them).

use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::time::Instant;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use relevance::data::npy::npy_from_bytes;
use relevance::graph::import::onnx::{InputHint, import_bytes};
use relevance::graph::import::pickle::{self, PickleError, Resolver, Value};
use relevance::graph::import::{pth, safetensors};
use relevance::graph::{Model, ModelCard};

use crate::parsers::craft::{self, Pickle, View};

/// Inputs per parser by default: 120 000 executions in about 10 s of a dev build on 2 cores.
const DEFAULT_CASES: u32 = 20_000;

fn cases() -> u32 {
    std::env::var("RELEVANCE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_CASES)
}

/// One edit of a seed; positions are taken modulo the current length.
#[derive(Clone, Debug)]
enum Edit {
    Flip(usize, u8),
    Set(usize, u8),
    Truncate(usize),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    /// Copies `len` bytes of seed `from` at `at` over position `pos`.
    Splice {
        pos: usize,
        from: usize,
        at: usize,
        len: usize,
    },
    /// A run of one byte (long lengths, repeated opcodes).
    Repeat(usize, u8, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(p, b)| Edit::Flip(p, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(p, v)| Edit::Set(p, v)),
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(p, b)| Edit::Insert(p, b)),
        (any::<usize>(), 1usize..64).prop_map(|(p, n)| Edit::Delete(p, n)),
        (any::<usize>(), any::<usize>(), any::<usize>(), 1usize..256)
            .prop_map(|(pos, from, at, len)| Edit::Splice { pos, from, at, len }),
        (any::<usize>(), any::<u8>(), 1usize..4096).prop_map(|(p, v, n)| Edit::Repeat(p, v, n)),
    ]
}

/// A seed with up to 8 edits, or (one case in 16) random bytes.
fn input(seeds: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
    let n = seeds.len();
    let mutated = (0..n, prop::collection::vec(edit(), 0..8)).prop_map(move |(i, edits)| {
        let mut bytes = seeds[i].clone();
        for e in edits {
            apply(&mut bytes, &e, &seeds);
        }
        bytes
    });
    prop_oneof![
        15 => mutated,
        1 => prop::collection::vec(any::<u8>(), 0..512),
    ]
}

fn apply(bytes: &mut Vec<u8>, e: &Edit, seeds: &[Vec<u8>]) {
    let at = |p: usize, len: usize| if len == 0 { 0 } else { p % len };
    let len = bytes.len();
    match *e {
        Edit::Flip(p, b) if len > 0 => bytes[at(p, len)] ^= 1 << b,
        Edit::Set(p, v) if len > 0 => bytes[at(p, len)] = v,
        Edit::Truncate(p) => bytes.truncate(at(p, len + 1)),
        Edit::Insert(p, ref b) => {
            let p = at(p, len + 1);
            bytes.splice(p..p, b.iter().copied());
        }
        Edit::Delete(p, n) if len > 0 => {
            let p = at(p, len);
            bytes.drain(p..(p + n).min(len));
        }
        Edit::Splice {
            pos,
            from,
            at: src,
            len: n,
        } => {
            let other = &seeds[from % seeds.len()];
            if other.is_empty() {
                return;
            }
            let s = at(src, other.len());
            let piece = &other[s..(s + n).min(other.len())];
            let p = at(pos, len + 1);
            let end = (p + piece.len()).min(len);
            bytes.splice(p..end, piece.iter().copied());
        }
        Edit::Repeat(p, v, n) => {
            let p = at(p, len + 1);
            bytes.splice(p..p, std::iter::repeat_n(v, n));
        }
        _ => {}
    }
}

/// Runs `target` on [`cases`] inputs derived from `seeds` and reports executions (and how
/// many the parser accepted) and time. `target` returns whether the parser accepted the input.
fn fuzz(name: &str, seeds: Vec<Vec<u8>>, target: impl Fn(&[u8]) -> bool) {
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let (executions, accepted) = (Cell::new(0u64), Cell::new(0u64));
    let run = |bytes: &[u8]| {
        executions.set(executions.get() + 1);
        accepted.set(accepted.get() + target(bytes) as u64);
    };
    let start = Instant::now();
    // The seeds themselves first, unmutated.
    seeds.iter().for_each(|s| run(s));
    let result = runner.run(&input(seeds), |bytes| {
        run(&bytes);
        Ok(())
    });
    eprintln!(
        "fuzz {name}: {} executions ({} accepted) in {:.1} s",
        executions.get(),
        accepted.get(),
        start.elapsed().as_secs_f64()
    );
    if let Err(e) = result {
        panic!("fuzz {name}: {e}");
    }
}

/// A scratch folder for targets whose entry point reads a file.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("relevance-fuzz-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn fixtures(ext: &str) -> Vec<Vec<u8>> {
    fixtures_in("tests/fixtures/import", ext)
}

/// The files of `dir` (relative to the repository) ending in `.ext`, sorted.
fn fixtures_in(dir: &str, ext: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.extension().is_some_and(|e| e == ext) {
            out.push(std::fs::read(p).unwrap());
        }
    }
    out.sort();
    out
}

/// Accepts every name and answers every call and persistent id with its arguments, so the
/// fuzzer reaches all of the machine rather than stopping at the allow-list.
struct Permissive;

impl Resolver for Permissive {
    fn global(&mut self, _: &str, _: &str) -> Result<(), PickleError> {
        Ok(())
    }
    fn persistent_load(&mut self, pid: Value) -> Result<Value, PickleError> {
        Ok(pid)
    }
    fn call(&mut self, _: &str, args: Vec<Value>) -> Result<Value, PickleError> {
        Ok(args.into_iter().next().unwrap_or(Value::None))
    }
}

fn pickle_seeds() -> Vec<Vec<u8>> {
    let mut laughs = Pickle::new().op(b"K\x01");
    for _ in 0..40 {
        laughs = laughs.op(b"2\x86");
    }
    let mut deep = Pickle::new().op(b"K\x01").0;
    deep.extend(std::iter::repeat_n(0x85u8, 1500));
    deep.push(b'.');
    vec![
        laughs.stop(),
        deep,
        Pickle::new().op(b"}(]q\x01h\x01aK\x01u").stop(),
        Pickle::new().op(b"}(}q\x01(K\x02h\x01uK\x01u").stop(),
        craft::state_dict_pickle(&[valid_view()]),
        // pickle.dumps({'a': [1, -2, 3.5], 'b': (None, True)}, protocol=2)
        b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01]q\x02(K\x01J\xfe\xff\xff\xffG@\x0c\x00\x00\x00\x00\x00\x00eX\x01\x00\x00\x00bq\x03N\x88\x86q\x04u.".to_vec(),
        // pickle.dumps({'k': ['x', 'x']}, protocol=4)
        b"\x80\x04\x95\x12\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01k\x94]\x94(\x8c\x01x\x94h\x03es.".to_vec(),
    ]
}

fn valid_view() -> View<'static> {
    View {
        key: "w",
        storage_elements: 6,
        offset: 0,
        size: &[2, 3],
        stride: &[3, 1],
    }
}

#[test]
fn fuzz_pickle_machine() {
    fuzz("pickle", pickle_seeds(), |bytes| {
        pickle::load(bytes, &mut Permissive)
            .map(|(v, _)| format!("{v:?}"))
            .is_ok()
    });
}

#[test]
fn fuzz_torch_save_files() {
    let scratch = Scratch::new("pth");
    let mut seeds = fixtures("pth");
    seeds.push(craft::pth_with_views(&[valid_view()]));
    for (size, stride) in [([1i64 << 40], [0i64]), ([1_500_000_000], [0])] {
        seeds.push(craft::pth_with_views(&[View {
            key: "w",
            storage_elements: 1,
            offset: 0,
            size: &size,
            stride: &stride,
        }]));
    }
    seeds.push(craft::pth_with_views(&[View {
        key: "w",
        storage_elements: 4,
        offset: 0,
        size: &[3, 3],
        stride: &[1 << 62, 1 << 62],
    }]));
    for p in pickle_seeds() {
        seeds.push(craft::pth_zip(&p, &[]));
    }
    fuzz("pth", seeds, |bytes| {
        pth::read(&scratch.write("m.pth", bytes)).is_ok()
    });
}

fn small_cnn_card() -> ModelCard {
    ModelCard {
        num_classes: 3,
        ..ModelCard::default()
    }
}

#[test]
fn fuzz_safetensors_and_state_dict_checks() {
    let scratch = Scratch::new("st");
    let model = Model::init("small_cnn", small_cnn_card(), 1).unwrap();
    let tensors = relevance::train::trainer::named(&model.params);
    let mut seeds = fixtures("safetensors");
    seeds.push(safetensors::to_bytes(&tensors, None).unwrap());
    seeds.push(craft::safetensors(&[
        ("classifier.1.weight", "F32", &[], &[0u8; 4]),
        ("features.0.weight", "F32", &[16], &[0u8; 64]),
        ("classifier.1.bias", "F32", &[0], &[]),
    ]));
    fuzz("safetensors", seeds, |bytes| {
        let path = scratch.write("m.safetensors", bytes);
        safetensors::read(&path).is_ok_and(|t| {
            Model::from_state_dict(&path, "small_cnn", ModelCard::default(), t).is_ok()
        })
    });
}

#[test]
fn fuzz_onnx_import() {
    let mut seeds = fixtures("onnx");
    // ConvNeXt, ShuffleNet and padded models: the fused patterns, splits, slices and pads.
    seeds.extend(fixtures_in("tests/fixtures/import/modern", "onnx"));
    for shape in [
        vec![3_000_000_000i64],
        vec![1 << 31, 1 << 31],
        vec![1, 3, 8, 8],
    ] {
        seeds.push(craft::classifier(
            &[1, 3, 8, 8],
            vec![
                craft::node("ConstantOfShape", "fill", &["shape"], &["c"]),
                craft::node("Add", "add", &["x", "c"], &["h"]),
            ],
            vec![craft::int64_tensor("shape", &[shape.len() as i64], &shape)],
        ));
    }
    let mut conv = craft::node("Conv", "conv", &["x", "w"], &["h"]);
    conv.attribute
        .push(craft::ints_attr("pads", &[100_000_000; 4]));
    seeds.push(craft::classifier(
        &[1, 3, 8, 8],
        vec![conv],
        vec![craft::float_tensor("w", &[4, 3, 3, 3])],
    ));
    seeds.push(craft::classifier(
        &[1, 3, 100_000, 100_000],
        vec![craft::node("Relu", "relu", &["x"], &["h"])],
        vec![],
    ));
    let hint = InputHint {
        fallback_size: [16, 16],
        ..InputHint::default()
    };
    fuzz("onnx", seeds, |bytes| import_bytes(bytes, &hint).is_ok());
}

#[test]
fn fuzz_npy() {
    let mut seeds = fixtures("npy");
    seeds.push(craft::npy_header("<f4", &[3, 100_000, 100_000]));
    seeds.push(craft::npy_f32(&[1, 3, 4, 4]));
    seeds.push(craft::npy_f32(&[2]));
    fuzz("npy", seeds, |bytes| npy_from_bytes(bytes).is_ok());
}

#[test]
fn fuzz_model_cards() {
    let scratch = Scratch::new("card");
    let json = ModelCard {
        arch: Some("small_cnn".into()),
        classes: vec!["cat".into(), "dog".into()],
        num_classes: 2,
        ..ModelCard::default()
    }
    .to_json();
    let toml = "arch = \"small_cnn\"\nclasses = [\"cat\", \"dog\"]\nnum_classes = 2\n\
                input_size = [32, 32]\nchannels = 3\nlayout = \"nhwc\"\n";
    let seeds = vec![json.into_bytes(), toml.as_bytes().to_vec(), b"{}".to_vec()];
    fuzz("card", seeds, |bytes| {
        ["card.json", "card.toml"]
            .iter()
            .any(|name| ModelCard::load(&scratch.write(name, bytes)).is_ok())
    });
}
