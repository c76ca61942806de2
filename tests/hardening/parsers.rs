//! Hostile model and tensor files (issue items 3–6): crafted pickles, `.pth` views, ONNX
//! graphs, `.npy` headers and state dicts that used to overflow the stack, abort on an
//! allocation, panic or take minutes. Each must end in one line `error: <file>: <what>` with
//! exit status 1 under the 2 GiB address-space ceiling, writing nothing outside `out/`.

pub mod craft;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::common::{Sandbox, assert_ok, assert_refused, png, run_limited, s};
use craft::{Pickle, View};
use relevance::graph::import::NamedTensor;
use relevance::graph::import::safetensors::to_bytes;
use relevance::graph::{Model, ModelCard};
use relevance::train::trainer::named;

/// A freshly initialised small_cnn state dict (3 classes), the start of the cases that need
/// a working model.
fn small_cnn_tensors() -> Vec<NamedTensor> {
    let card = ModelCard {
        num_classes: 3,
        ..ModelCard::default()
    };
    let model = Model::init("small_cnn", card, 7).unwrap();
    named(&model.params)
}

/// [`small_cnn_tensors`] written as `.safetensors` into the sandbox's inputs.
fn small_cnn_weights(sb: &Sandbox) -> PathBuf {
    sb.input(
        "weights.safetensors",
        &to_bytes(&small_cnn_tensors(), None).unwrap(),
    )
}

/// Runs `relevance predict --model <file> [--arch small_cnn] image.png` in a fresh sandbox
/// and asserts the one-line refusal containing the file's name and every needle.
fn refused_model(tag: &str, name: &str, bytes: &[u8], needles: &[&str]) -> String {
    let sb = Sandbox::new(tag);
    let model = sb.input(name, bytes);
    let image = sb.input("x.png", &png(32, 32));
    let before = sb.listing();
    let mut args = vec!["predict", "--model", s(&model)];
    if !name.ends_with(".onnx") {
        args.extend(["--arch", "small_cnn"]);
    }
    args.push(s(&image));
    let out = run_limited(&sb.cwd(), &args);
    let mut all = vec![name];
    all.extend_from_slice(needles);
    let line = assert_refused(&out, &all);
    assert_eq!(line.matches(name).count(), 1, "file named once: {line}");
    sb.assert_nothing_outside_out(&before);
    eprintln!("{tag}: {line}");
    line
}

// ---- item 3: pickles and tensor views (.pth) ----

/// Each `DUP, TUPLE2` doubles the tuple: 40 rounds describe 2⁴⁰ leaves in 83 bytes. Copying
/// on `DUP` (the old reader) needs terabytes; sharing needs 40 tuples.
#[test]
fn billion_laughs_pickle_is_refused_without_growing() {
    let mut p = Pickle::new().op(b"K\x01");
    for _ in 0..40 {
        p = p.op(b"2\x86");
    }
    let pth = craft::pth_zip(&p.stop(), &[]);
    refused_model(
        "pkl-laughs",
        "laughs.pth",
        &pth,
        &["a tuple, not a dict of tensors"],
    );
}

/// The same doubling through the memo (`BINPUT`, `BINGET`, `BINGET`, `TUPLE2`).
#[test]
fn billion_laughs_through_the_memo_is_refused() {
    let mut p = Pickle::new().op(b"K\x01");
    for _ in 0..40 {
        p = p.op(b"q\x00h\x00h\x00\x86");
    }
    let pth = craft::pth_zip(&p.stop(), &[]);
    refused_model(
        "pkl-memo",
        "memo.pth",
        &pth,
        &["a tuple, not a dict of tensors"],
    );
}

/// A list that contains itself, used as a dict key: printing the keys recursed forever.
#[test]
fn self_referential_list_is_refused() {
    let pkl = Pickle::new().op(b"}(]q\x01h\x01aK\x01u").stop();
    let pth = craft::pth_zip(&pkl, &[]);
    refused_model("pkl-selflist", "selflist.pth", &pth, &["self-referential"]);
}

/// A dict that contains itself, used as a dict key.
#[test]
fn self_referential_dict_is_refused() {
    let pkl = Pickle::new().op(b"}(}q\x01(K\x02h\x01uK\x01u").stop();
    let pth = craft::pth_zip(&pkl, &[]);
    refused_model("pkl-selfdict", "selfdict.pth", &pth, &["self-referential"]);
}

/// `TUPLE1` two million times: a tuple nested 2 000 000 deep, whose recursive drop overflowed
/// the stack.
#[test]
fn tuple_nested_two_million_deep_is_refused() {
    let mut bytes = Pickle::new().op(b"K\x01").0;
    bytes.extend(std::iter::repeat_n(0x85u8, 2_000_000));
    bytes.push(b'.');
    let pth = craft::pth_zip(&bytes, &[]);
    refused_model(
        "pkl-deep",
        "deep.pth",
        &pth,
        &["nests containers more than 1000 levels"],
    );
}

/// One memoised dict of 20 000 tensors listed under 20 000 top-level keys (a 500 kB file):
/// looking for the state dict converted it once per key, 4·10⁸ tensor records.
#[test]
fn one_dict_listed_under_many_keys_is_examined_once() {
    const N: usize = 20_000;
    let one = View {
        key: "k0",
        storage_elements: 1,
        offset: 0,
        size: &[1],
        stride: &[1],
    };
    let mut p = Pickle::new()
        .op(b"}(")
        .str("a")
        .op(b"}q\x00(")
        .str("k0")
        .tensor(&one);
    p = p.op(b"q\x01");
    for i in 1..N {
        p = p.str(&format!("k{i}")).op(b"h\x01");
    }
    p = p.op(b"u");
    for i in 1..N {
        p = p.str(&format!("b{i}")).op(b"h\x00");
    }
    let pth = craft::pth_zip(&p.op(b"u").stop(), &[("0", &[0u8; 4])]);
    refused_model(
        "pth-shared",
        "shared.pth",
        &pth,
        &["20000 key(s)", "small_cnn"],
    );
}

/// Strides of 2⁶² over a 3×3 view: `offset + Σ (size−1)·stride` is 2⁶⁴, which wrapped (and
/// panicked in debug builds at pth.rs:550).
#[test]
fn stride_sum_that_wraps_is_refused() {
    let pth = craft::pth_with_views(&[View {
        key: "features.0.weight",
        storage_elements: 4,
        offset: 0,
        size: &[3, 3],
        stride: &[1 << 62, 1 << 62],
    }]);
    refused_model(
        "pth-wrap",
        "wrap.pth",
        &pth,
        &["features.0.weight", "reaches past"],
    );
}

/// A stride-0 view claiming 2⁴⁰ elements of a one-element storage.
#[test]
fn stride_zero_view_of_two_to_the_forty_is_refused() {
    let pth = craft::pth_with_views(&[View {
        key: "features.0.weight",
        storage_elements: 1,
        offset: 0,
        size: &[1 << 40],
        stride: &[0],
    }]);
    refused_model(
        "pth-2e40",
        "bcast40.pth",
        &pth,
        &["features.0.weight", "elements"],
    );
}

/// A stride-0 view claiming 1.5·10⁹ elements (6 GB of f32).
#[test]
fn stride_zero_view_of_one_and_a_half_billion_is_refused() {
    let pth = craft::pth_with_views(&[View {
        key: "features.0.weight",
        storage_elements: 1,
        offset: 0,
        size: &[1_500_000_000],
        stride: &[0],
    }]);
    refused_model(
        "pth-15e8",
        "bcast15.pth",
        &pth,
        &["features.0.weight", "elements"],
    );
}

// ---- item 4: ONNX ----

fn constant_of_shape_model(shape: &[i64]) -> Vec<u8> {
    craft::classifier(
        &[1, 3, 8, 8],
        vec![
            craft::node("ConstantOfShape", "fill", &["shape"], &["c"]),
            craft::node("Add", "add", &["x", "c"], &["h"]),
        ],
        vec![craft::int64_tensor("shape", &[shape.len() as i64], shape)],
    )
}

#[test]
fn constant_of_shape_of_three_billion_is_refused() {
    let onnx = constant_of_shape_model(&[3_000_000_000]);
    refused_model("onnx-cos3e9", "cos3e9.onnx", &onnx, &["fill", "3000000000"]);
}

#[test]
fn constant_of_shape_of_two_to_the_sixty_two_is_refused() {
    let onnx = constant_of_shape_model(&[1 << 31, 1 << 31]);
    refused_model(
        "onnx-cos2e62",
        "cos2e62.onnx",
        &onnx,
        &["fill", "2147483648"],
    );
}

#[test]
fn fixed_input_of_100000_squared_is_refused() {
    let onnx = craft::classifier(
        &[1, 3, 100_000, 100_000],
        vec![craft::node("Relu", "relu", &["x"], &["h"])],
        vec![],
    );
    refused_model(
        "onnx-input",
        "huge_input.onnx",
        &onnx,
        &["input 'x'", "100000"],
    );
}

#[test]
fn conv_pads_of_ten_to_the_eight_are_refused() {
    let mut conv = craft::node("Conv", "conv", &["x", "w"], &["h"]);
    conv.attribute
        .push(craft::ints_attr("pads", &[100_000_000; 4]));
    let onnx = craft::classifier(
        &[1, 3, 8, 8],
        vec![conv],
        vec![craft::float_tensor("w", &[4, 3, 3, 3])],
    );
    refused_model("onnx-pads", "pads.onnx", &onnx, &["conv", "padded input"]);
}

/// A Conv node with no outputs indexed `output[0]` and panicked (a fuzzer find); it must be
/// the importer's usual refusal naming the node.
#[test]
fn conv_without_outputs_is_refused() {
    let onnx = craft::classifier(
        &[1, 3, 8, 8],
        vec![
            craft::node("Conv", "conv", &["x", "w"], &[]),
            craft::node("Relu", "relu", &["x"], &["h"]),
        ],
        vec![craft::float_tensor("w", &[4, 3, 3, 3])],
    );
    refused_model(
        "onnx-no-output",
        "no_output.onnx",
        &onnx,
        &["node 'conv' (Conv)", "no output"],
    );
}

/// 40 000 nodes all named `r`: making each name unique scanned all earlier ones (quadratic,
/// over a minute). The model itself is valid and must run.
#[test]
fn forty_thousand_nodes_sharing_one_name_import_in_linear_time() {
    let mut body = Vec::new();
    let mut prev = "x".to_string();
    for i in 0..40_000 {
        let out = if i == 39_999 {
            "h".to_string()
        } else {
            format!("v{i}")
        };
        body.push(craft::node("Relu", "r", &[&prev, &out], &[&out]));
        body.last_mut().unwrap().input.truncate(1);
        prev = out;
    }
    let onnx = craft::classifier(&[1, 3, 8, 8], body, vec![]);
    let sb = Sandbox::new("onnx-names");
    let model = sb.input("names.onnx", &onnx);
    let image = sb.input("x.png", &png(8, 8));
    let before = sb.listing();
    let start = Instant::now();
    let out = run_limited(&sb.cwd(), &["predict", "--model", s(&model), s(&image)]);
    let took = start.elapsed();
    assert_ok(&out);
    assert!(took < Duration::from_secs(30), "took {took:?}");
    sb.assert_nothing_outside_out(&before);
}

// ---- item 5: .npy ----

/// Runs `relevance predict` of a working small_cnn on the `.npy` `bytes` and asserts the
/// one-line refusal naming the file once and containing every needle.
fn refused_npy(tag: &str, name: &str, bytes: &[u8], needles: &[&str]) -> String {
    let sb = Sandbox::new(tag);
    let npy = sb.input(name, bytes);
    let weights = small_cnn_weights(&sb);
    let before = sb.listing();
    let out = run_limited(
        &sb.cwd(),
        &[
            "predict",
            "--model",
            s(&weights),
            "--arch",
            "small_cnn",
            s(&npy),
        ],
    );
    let mut all = vec![name];
    all.extend_from_slice(needles);
    let line = assert_refused(&out, &all);
    assert_eq!(line.matches(name).count(), 1, "file named once: {line}");
    sb.assert_nothing_outside_out(&before);
    eprintln!("{tag}: {line}");
    line
}

/// A 128-byte file whose header claims `(3, 100000, 100000)`: 120 GB were allocated.
#[test]
fn npy_header_claiming_120_gb_is_refused() {
    let bytes = craft::npy_header("<f4", &[3, 100_000, 100_000]);
    assert_eq!(bytes.len(), 128);
    refused_npy(
        "npy-huge",
        "huge.npy",
        &bytes,
        &["[3, 100000, 100000]", "0 bytes of data"],
    );
}

/// A float32 `.npy` cut in half said "incorrect descriptor ('<f4') for this type".
#[test]
fn truncated_npy_says_truncated() {
    let full = craft::npy_f32(&[1, 3, 8, 8]);
    let bytes = &full[..full.len() - 300];
    let line = refused_npy("npy-trunc", "cut.npy", bytes, &["truncated"]);
    assert!(!line.contains("descriptor"), "{line}");
}

// ---- item 6: state dicts that do not fit the architecture ----

/// The small_cnn state dict with `key` replaced by a float32 tensor of `shape`.
fn small_cnn_with(key: &str, shape: &[usize]) -> Vec<u8> {
    let mut tensors = small_cnn_tensors();
    let t = tensors.iter_mut().find(|t| t.key == key).unwrap();
    t.shape = shape.to_vec();
    t.values = vec![0.1; shape.iter().product()];
    to_bytes(&tensors, None).unwrap()
}

#[test]
fn rank_zero_classifier_weight_is_refused() {
    let st = small_cnn_with("classifier.1.weight", &[]);
    refused_model(
        "st-rank0",
        "rank0.safetensors",
        &st,
        &["classifier.1.weight", "rank 2"],
    );
}

#[test]
fn rank_one_conv_weight_is_refused() {
    let st = small_cnn_with("features.0.weight", &[16]);
    refused_model(
        "st-rank1",
        "rank1.safetensors",
        &st,
        &["features.0.weight", "rank 4"],
    );
}

#[test]
fn zero_classes_are_refused() {
    let mut st_tensors = small_cnn_tensors();
    for t in &mut st_tensors {
        if t.key.starts_with("classifier.1.") {
            t.shape[0] = 0;
            t.values.clear();
        }
    }
    let st = to_bytes(&st_tensors, None).unwrap();
    refused_model(
        "st-zero",
        "zero.safetensors",
        &st,
        &["classifier.1.weight", "at least one class"],
    );
}

/// A hand-written safetensors header whose offsets point past the data (a guard: the
/// `safetensors` crate already refused this).
#[test]
fn safetensors_offsets_past_the_data_are_refused() {
    let mut st = craft::safetensors(&[("classifier.1.weight", "F32", &[10, 128], &[0u8; 16])]);
    st.truncate(st.len() - 8);
    refused_model(
        "st-offsets",
        "offsets.safetensors",
        &st,
        &["not a valid .safetensors file"],
    );
}
