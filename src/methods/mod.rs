//! Explanation methods. Each is a rule map over the shared backward pass plus post-processing;
//! all implement [`Explainer`] and are found by name through [`by_name`].

pub mod crp;
pub mod lrp;

use crate::engine::EngineError;
use crate::graph::{GraphError, Model};
use crate::tensor::T4;

/// Errors of explanation methods.
#[derive(Debug, thiserror::Error)]
pub enum MethodError {
    /// An engine failure.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A graph failure (e.g. unknown layer name).
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A method name that does not exist; lists the valid ones.
    #[error("unknown method '{name}'; valid methods: {valid}")]
    UnknownMethod {
        /// The name asked for.
        name: String,
        /// Comma-separated valid names.
        valid: String,
    },
    /// Anything else the user asked for that cannot be done.
    #[error("{0}")]
    Invalid(String),
}

/// What a method's map lives on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapKind {
    /// `[N, C, H, W]` in the model's input space (gradient family, guided, LRP).
    Input,
    /// `[N, 1, H, W]` at input resolution (CAM family), as pytorch-grad-cam returns them.
    Cam,
}

/// An explanation method.
pub trait Explainer: Send + Sync {
    /// Kebab-case name, e.g. `grad-cam`.
    fn name(&self) -> &str;
    /// Kind of map produced.
    fn kind(&self) -> MapKind;
    /// Explains every image of the batch `x` (`[N, C, H, W]`, preprocessed) for class
    /// `targets[i]` of image `i`; returns `[N, C, H, W]` or `[N, 1, H, W]` per [`Explainer::kind`].
    fn explain(&self, model: &Model, x: &T4, targets: &[usize]) -> Result<T4, MethodError>;
}

/// Returns the method called `name`, configured by `opts`.
pub fn by_name(name: &str, opts: &MethodOptions) -> Result<Box<dyn Explainer>, MethodError> {
    if let Some(method) = lrp::by_name(name, opts) {
        return Ok(method);
    }
    Err(MethodError::UnknownMethod {
        name: name.to_string(),
        valid: METHODS.join(", "),
    })
}

/// Names accepted by [`by_name`].
pub const METHODS: &[&str] = &[
    "lrp-epsilon-plus",
    "lrp-epsilon-plus-flat",
    "lrp-epsilon-gamma-box",
    "lrp-epsilon-alpha2-beta1",
];

/// Options shared by the methods (each reads the ones it needs).
#[derive(Clone, Debug, Default)]
pub struct MethodOptions {
    /// Node name of the target layer (CAMs, CRP); `None` picks the method's default.
    pub layer: Option<String>,
    /// LRP choices: skip-connection mode, starting relevance, z^B bounds.
    pub lrp: lrp::LrpOptions,
}
