//! Explanation methods. Each is a rule map over the shared backward pass plus post-processing.
//!
//! The shape of a method: a [`MethodSpec`] (a name from the [`registry`] with parameters, e.g.
//! `lrp:epsilon-plus-flat(skip=split)`) is prepared once for a model ([`MethodSpec::prepare`] →
//! [`Prepared`]), which explains batch after batch ([`Prepared::explain`] → [`Explanation`]).
//!
//! ```no_run
//! use relevance::{Model, MethodSpec, MethodOptions};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let model = Model::load("resnet18.pth".as_ref(), &Default::default())?;
//! let spec = MethodSpec::parse("lrp:epsilon-plus-flat(skip=split)", &MethodOptions::default())?;
//! let lrp = spec.prepare(&model)?;
//! let x = relevance::data::image::load_input("scan.png".as_ref(), &model.card)?;
//! let explanation = lrp.explain(&x, &[1])?;
//! println!("explained {:?}, map {:?}", explanation.explained, explanation.maps.dims());
//! # Ok(()) }
//! ```
//!
//! | family | methods | map |
//! |---|---|---|
//! | gradient ([`gradient`], [`smoothgrad`], [`integrated`]) | `saliency`, `input-x-gradient`, `smoothgrad`, `integrated-gradients` | `[N, C, H, W]` |
//! | perturbation ([`occlusion`]) | `occlusion` | `[N, C, H, W]` |
//! | guided ([`guided`]) | `guided-backprop`, `deconvnet`, `guided-grad-cam` | `[N, C, H, W]` |
//! | CAM ([`cam`]) | `cam`, `grad-cam`, `grad-cam-plus-plus`, `hires-cam`, `xgrad-cam`, `layer-cam`, `score-cam`, `eigen-cam` | `[N, 1, H, W]` in `[0, 1]` |
//!
//! Every method explains the **logits** (the input of a trailing softmax, if the graph has one),
//! as pytorch-grad-cam's `ClassifierOutputTarget` and Captum's default targets do.

pub mod baseline;
pub mod cam;
pub mod crp;
pub mod fit;
pub mod gradient;
pub mod guided;
pub mod integrated;
pub mod lrp;
pub mod occlusion;
pub mod pass;
pub mod prepared;
pub mod registry;
pub mod smoothgrad;
pub mod spec;
pub mod target;

pub use baseline::Baseline;
pub use integrated::Quadrature;
pub use prepared::{Explanation, Prepared};
pub use spec::MethodSpec;
pub use target::Target;

use crate::engine::{Activations, EngineError};
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

/// How a map is meant to be read, which decides how it is drawn (see `report::heatmap`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MapStyle {
    /// Signed evidence (Input×Gradient, Integrated Gradients, occlusion, LRP): channels summed,
    /// scaled symmetrically around zero, drawn with a diverging colormap.
    Signed,
    /// Sensitivity (saliency, SmoothGrad): `max_c |v|` per pixel as Simonyan et al. (2014),
    /// drawn with an unsigned colormap.
    Magnitude,
    /// Already in `[0, 1]` (the CAM family): drawn as is with an unsigned colormap.
    Unit,
}

impl MapStyle {
    /// Lower-case name as run records write it (`signed`, `magnitude`, `unit`).
    pub fn name(self) -> &'static str {
        match self {
            MapStyle::Signed => "signed",
            MapStyle::Magnitude => "magnitude",
            MapStyle::Unit => "unit",
        }
    }

    /// The style called `name` in a run record; an unknown name reads as signed, the style
    /// that hides nothing (both signs drawn).
    pub fn from_name(name: &str) -> MapStyle {
        match name {
            "unit" => MapStyle::Unit,
            "magnitude" => MapStyle::Magnitude,
            _ => MapStyle::Signed,
        }
    }
}

impl MapKind {
    /// What the map file holds, as run records describe it.
    pub fn describe(self) -> &'static str {
        match self {
            MapKind::Input => "[C,H,W] input space",
            MapKind::Cam => "[H,W] in [0,1]",
        }
    }
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

    /// Like [`Explainer::explain`], reusing `acts`, a forward pass of `model` on `x` that the
    /// caller already ran (to read the predictions). Methods built on that forward pass override
    /// this; the default ignores `acts`.
    fn explain_forward(
        &self,
        model: &Model,
        x: &T4,
        acts: &Activations,
        targets: &[usize],
    ) -> Result<T4, MethodError> {
        let _ = acts;
        self.explain(model, x, targets)
    }

    /// How the map is meant to be read (default: signed evidence).
    fn style(&self) -> MapStyle {
        MapStyle::Signed
    }

    /// The method's parameters, for run records such as `explain.json`.
    fn params(&self) -> serde_json::Value {
        serde_json::json!({})
    }
}

/// The low-level explainer of the spec `text` (a method name with optional parameters, see
/// [`MethodSpec`]) over `opts`. Most callers want [`MethodSpec::prepare`], which binds the
/// method to a model once; this is for code that explains many models with one method.
pub fn by_name(text: &str, opts: &MethodOptions) -> Result<Box<dyn Explainer>, MethodError> {
    let spec = MethodSpec::parse(text, opts)?;
    if spec.options.rules.is_some() {
        return Err(MethodError::Invalid(format!(
            "{text}: a rule set is bound to a model; prepare the spec (MethodSpec::prepare)"
        )));
    }
    registry::build(spec.info, &spec.options, pass::GradientRules::Plain)
}

/// Options shared by the methods (each reads the ones it needs).
#[derive(Clone, Debug)]
pub struct MethodOptions {
    /// Node name of the target layer (CAMs, CRP); `None` picks the method's default.
    pub layer: Option<String>,
    /// Integrated Gradients: number of points on the path (default 50, Captum's).
    pub steps: usize,
    /// Integrated Gradients: where on the path the gradients are taken (default Gauss–Legendre, Captum's).
    pub quadrature: Quadrature,
    /// SmoothGrad: number of noisy samples (default 25).
    pub samples: usize,
    /// SmoothGrad: noise σ as a fraction of each image's value range `max − min` (default 0.15).
    pub noise: f32,
    /// Occlusion: side of the square window in pixels (default 16).
    pub window: usize,
    /// Occlusion: step between windows in pixels (default 8).
    pub stride: usize,
    /// Reference input of Integrated Gradients and Occlusion; `None` is each method's default (zeros).
    pub baseline: Option<Baseline>,
    /// Seed of random draws (SmoothGrad noise).
    pub seed: u64,
    /// Largest number of rows per forward pass of the methods that evaluate many perturbed or
    /// interpolated copies of an input (SmoothGrad, Integrated Gradients, Occlusion, Score-CAM).
    pub batch: usize,
    /// LRP choices: skip-connection mode, starting relevance, z^B bounds.
    pub lrp: lrp::LrpOptions,
    /// LRP composite with its parameters; set by [`MethodSpec::parse`] for LRP methods.
    pub composite: Option<lrp::Composite>,
    /// SmoothGrad / Integrated Gradients: the rule set whose modified gradient they average or
    /// integrate (`None`: the plain gradient), as zennit's attributors with a composite.
    pub rules: Option<lrp::Composite>,
    /// Guided backprop / guided Grad-CAM: the rule at SiLU nodes (`silu=gradient|guided`).
    pub guided_silu: guided::SiluRule,
}

impl Default for MethodOptions {
    fn default() -> Self {
        MethodOptions {
            layer: None,
            steps: 50,
            quadrature: Quadrature::GaussLegendre,
            samples: 25,
            noise: 0.15,
            window: 16,
            stride: 8,
            baseline: None,
            seed: 0,
            batch: 16,
            lrp: lrp::LrpOptions::default(),
            composite: None,
            rules: None,
            guided_silu: guided::SiluRule::Gradient,
        }
    }
}
