//! The fixture folders of exported models: `<name>.onnx` with `<name>.input.npy`,
//! `<name>.logits.npy` and `<name>.grad.npy` beside it, written by a `tools/fixtures_*.py` script.

use std::path::{Path, PathBuf};

use relevance::data::npy::read_npy;
use relevance::graph::{LoadOptions, Model};
use relevance::tensor::{T4, from_vec};

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
