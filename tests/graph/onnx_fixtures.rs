//! The fixture folders of exported models: `<name>.onnx` with `<name>.input.npy`,
//! `<name>.logits.npy` and `<name>.grad.npy` beside it, written by a `tools/fixtures_*.py` script.

use std::path::{Path, PathBuf};

use relevance::data::npy::read_npy;
use relevance::engine::{forward, predict};
use relevance::graph::{LoadOptions, Model};
use relevance::methods::gradient::input_gradient;
use relevance::methods::registry::METHODS;
use relevance::methods::{MethodOptions, MethodSpec};
use relevance::tensor::{T4, from_vec, max_rel_diff, to_vec};

/// One folder under `tests/fixtures/import`.
pub struct FixtureDir(pub &'static str);

impl FixtureDir {
    /// The file `name` in this folder.
    pub fn path(&self, name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/import")
            .join(self.0)
            .join(name)
    }

    /// The model `<name>.onnx` with the default card.
    pub fn load(&self, name: &str) -> Model {
        Model::load(&self.path(&format!("{name}.onnx")), &LoadOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// A `.npy` file as `(shape, values)`.
    pub fn npy(&self, name: &str) -> (Vec<usize>, Vec<f32>) {
        read_npy(&self.path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// `<name>.input.npy` as an NCHW tensor.
    pub fn input(&self, name: &str) -> T4 {
        let (s, x) = self.npy(&format!("{name}.input.npy"));
        from_vec(x, [s[0], s[1], s[2], s[3]])
    }
}

/// How many nodes of `kind` the imported graph has.
pub fn count_ops(model: &Model, kind: &str) -> usize {
    model
        .graph
        .nodes
        .iter()
        .filter(|n| n.op.kind() == kind)
        .count()
}

impl FixtureDir {
    /// Asserts `model`'s logits within 1e-4 and its input gradient of logit `target` within
    /// 1e-4 (relative to the largest reference value) of the source framework's, which the
    /// fixture script saved as `<name>.logits.npy` and `<name>.grad.npy`.
    pub fn assert_reference_parity(&self, name: &str, model: &Model, target: usize) {
        let x = self.input(name);
        let logits = to_vec(&predict(&model.graph, &model.params, x.clone()).unwrap());
        let (_, want) = self.npy(&format!("{name}.logits.npy"));
        let err = max_rel_diff(&logits, &want);
        println!("{name}: logits rel. error {err:.2e}");
        assert!(
            err < 1e-4,
            "{name}: logits {logits:?} vs reference {want:?}"
        );
        let acts = forward(&model.graph, &model.params, x).unwrap();
        let grad = to_vec(&input_gradient(model, &acts, &[target]).unwrap());
        let (_, want) = self.npy(&format!("{name}.grad.npy"));
        let err = max_rel_diff(&grad, &want);
        println!("{name}: input gradient rel. error {err:.2e}");
        assert!(err < 1e-4, "{name}: input gradient rel. error {err}");
    }

    /// Asserts that every registered method explains logit `target` of `<name>.input.npy`
    /// without error, with finite maps of the input's size.
    pub fn assert_every_method_runs(&self, name: &str, model: &Model, target: usize) {
        let x = self.input(name);
        let [_, _, h, w] = x.dims();
        for info in METHODS {
            let options = MethodOptions {
                steps: 2,
                samples: 2,
                ..MethodOptions::default()
            };
            let spec = MethodSpec::parse(info.name, &options).unwrap();
            let maps = spec
                .prepare(model)
                .and_then(|p| p.explain(&x, &[target]))
                .unwrap_or_else(|e| panic!("{name} {}: {e}", info.name))
                .maps;
            let [_, _, mh, mw] = maps.dims();
            assert_eq!([mh, mw], [h, w], "{name} {}", info.name);
            assert!(
                to_vec(&maps).iter().all(|v| v.is_finite()),
                "{name} {}: non-finite map",
                info.name
            );
        }
    }

    /// The error `<name>.onnx` is refused with (a panic when it loads).
    pub fn refusal(&self, name: &str) -> String {
        Model::load(&self.path(&format!("{name}.onnx")), &LoadOptions::default())
            .err()
            .unwrap_or_else(|| panic!("{name} should be refused"))
            .to_string()
    }
}
