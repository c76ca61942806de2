//! PyTorch `torch.save` files read by relevance's own pickle reader: values equal the
//! safetensors twin written from the same tensors (zip and legacy formats; strided, offset and
//! shared views; float16, bfloat16, float64), a nested fp16 training checkpoint of `small_cnn`
//! reproduces torch's logits, and pickles that reference code are refused without running it.
//! Fixtures: `tools/fixtures_import.py`.

use std::path::{Path, PathBuf};

use relevance::data::npy::read_npy;
use relevance::engine::predict;
use relevance::graph::import::{ImportError, read_state_dict, safetensors};
use relevance::graph::{LoadOptions, Model};
use relevance::tensor::{from_vec, max_rel_diff, to_vec};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

fn assert_same_as_twin(pth: &str) {
    let mut got = read_state_dict(&fixture(pth)).unwrap();
    got.sort_by(|a, b| a.key.cmp(&b.key));
    let twin = safetensors::read(&fixture("tensors.safetensors")).unwrap();
    let keys = |v: &[relevance::graph::import::NamedTensor]| {
        v.iter().map(|t| t.key.clone()).collect::<Vec<_>>()
    };
    // The int64 tensor is skipped; every float tensor is there.
    assert_eq!(keys(&got), keys(&twin), "{pth}");
    for (g, t) in got.iter().zip(&twin) {
        assert_eq!(g.shape, t.shape, "{pth}: {}", g.key);
        assert_eq!(g.values, t.values, "{pth}: {}", g.key);
    }
}

#[test]
fn zip_format_matches_the_safetensors_twin() {
    assert_same_as_twin("tensors_zip.pth");
}

#[test]
fn legacy_format_matches_the_safetensors_twin() {
    assert_same_as_twin("tensors_legacy.pth");
}

#[test]
fn nested_fp16_checkpoint_with_module_prefix_reproduces_torch_logits() {
    let model = Model::load(
        &fixture("small_cnn_nested.pth"),
        &LoadOptions {
            arch: Some("small_cnn".into()),
            card: None,
        },
    )
    .unwrap();
    assert_eq!((model.card.channels, model.card.num_classes), (1, 3));
    let (shape, x) = read_npy(&fixture("small_cnn.input.npy")).unwrap();
    let x = from_vec(x, [shape[0], shape[1], shape[2], shape[3]]);
    let logits = to_vec(&predict(&model.graph, &model.params, x).unwrap());
    let (_, expected) = read_npy(&fixture("small_cnn.logits.npy")).unwrap();
    let err = max_rel_diff(&logits, &expected);
    println!("small_cnn from .pth: max relative difference to torch {err:.2e}");
    assert!(err < 1e-4, "{logits:?} vs {expected:?}");
}

#[test]
fn a_checkpoint_that_does_not_fit_names_the_key_and_both_shapes() {
    let err = Model::load(
        &fixture("mismatch.pth"),
        &LoadOptions {
            arch: Some("small_cnn".into()),
            card: None,
        },
    )
    .unwrap_err();
    assert!(matches!(err, ImportError::Mismatch { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("mismatch.pth"), "{msg}");
    assert!(msg.contains("'features.0.weight'"), "{msg}");
    assert!(
        msg.contains("[16, 1, 5, 5]") && msg.contains("[16, 1, 3, 3]"),
        "{msg}"
    );
}

/// The command the evil fixtures would run is `touch` of this file.
const MARKER: &str = "/tmp/relevance-import-test-pwned";

#[test]
fn pickles_referencing_os_system_are_refused_and_never_run() {
    for name in ["evil_zip.pth", "evil_legacy.pth"] {
        let _ = std::fs::remove_file(MARKER);
        let path = fixture(name);
        let err = read_state_dict(&path).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "refusing to load {}: the pickle references os.system, which is not a tensor",
                path.display()
            )
        );
        assert!(!Path::new(MARKER).exists(), "{name} ran its command");
    }
}

#[test]
fn truncated_checkpoints_fail_with_a_message() {
    let dir = std::env::temp_dir().join(format!("relevance-pth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for name in ["tensors_zip.pth", "tensors_legacy.pth"] {
        let bytes = std::fs::read(fixture(name)).unwrap();
        for cut in [0, 7, bytes.len() / 3, bytes.len() - 5] {
            let p = dir.join(format!("cut-{cut}-{name}"));
            std::fs::write(&p, &bytes[..cut]).unwrap();
            let err = read_state_dict(&p).unwrap_err().to_string();
            assert!(err.contains(&p.display().to_string()), "{err}");
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}
