//! The one list of explanation methods: name, aliases, family, what the map is and how it is
//! drawn, which layer it reads and which parameters it takes. The CLI's help, `explain.json`,
//! the studies and the report read it; [`super::spec::MethodSpec`] parses names against it and
//! [`build`] makes the method.

use super::cam::{CamWeighting, ClassCam, EigenCam, GradientCam, ScoreCam};
use super::pass::GradientRules;
use super::{Explainer, MapKind, MapStyle, MethodError, MethodOptions};
use super::{gradient, guided, integrated, occlusion, smoothgrad};

/// Which family a method belongs to (decides how it is prepared).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Plain or averaged input gradients (saliency, Input×Gradient, SmoothGrad, IG).
    Gradient,
    /// Occlusion of input windows.
    Perturbation,
    /// Modified ReLU backward passes (guided backprop, deconvnet, guided Grad-CAM).
    Guided,
    /// Class activation maps at a layer.
    Cam,
    /// Layer-wise Relevance Propagation with a composite.
    Lrp,
}

/// Which layer a method reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayerUse {
    /// None.
    None,
    /// A spatial layer, by default the last one before the classifier
    /// ([`super::cam::default_cam_layer`]).
    Spatial,
    /// The layer before a global-average-pool + linear head (CAM of Zhou et al.), or `--layer`.
    PooledHead,
}

/// One method of the registry.
#[derive(Debug, PartialEq, Eq)]
pub struct MethodInfo {
    /// Canonical name (`grad-cam`, `lrp:epsilon-plus-flat`).
    pub name: &'static str,
    /// Other accepted names (`lrp-epsilon-plus-flat`, the name before method specs).
    pub aliases: &'static [&'static str],
    /// Family.
    pub family: Family,
    /// What the map lives on.
    pub kind: MapKind,
    /// How the map is read and drawn.
    pub style: MapStyle,
    /// Which layer it reads.
    pub layer: LayerUse,
    /// Parameter names it takes in a spec (`name(key=value,…)`).
    pub params: &'static [&'static str],
    /// One line for the help.
    pub summary: &'static str,
}

const NO_PARAMS: &[&str] = &[];
const CAM_PARAMS: &[&str] = &["layer"];
/// Parameters of every LRP method; a composite rejects the rule parameters it has no rule for.
const LRP_PARAMS: &[&str] = &[
    "skip",
    "start",
    "epsilon",
    "gamma",
    "gamma-form",
    "alpha",
    "beta",
    "low",
    "high",
];

const fn entry(
    name: &'static str,
    family: Family,
    kind: MapKind,
    style: MapStyle,
    layer: LayerUse,
    params: &'static [&'static str],
    summary: &'static str,
) -> MethodInfo {
    MethodInfo {
        name,
        aliases: NO_PARAMS,
        family,
        kind,
        style,
        layer,
        params,
        summary,
    }
}

const fn cam(
    name: &'static str,
    params: &'static [&'static str],
    summary: &'static str,
) -> MethodInfo {
    entry(
        name,
        Family::Cam,
        MapKind::Cam,
        MapStyle::Unit,
        LayerUse::Spatial,
        params,
        summary,
    )
}

const fn lrp(
    name: &'static str,
    alias: &'static [&'static str],
    summary: &'static str,
) -> MethodInfo {
    MethodInfo {
        aliases: alias,
        ..entry(
            name,
            Family::Lrp,
            MapKind::Input,
            MapStyle::Signed,
            LayerUse::None,
            LRP_PARAMS,
            summary,
        )
    }
}

/// Every method, in the order the help lists them.
pub static METHODS: &[MethodInfo] = &[
    entry(
        "saliency",
        Family::Gradient,
        MapKind::Input,
        MapStyle::Magnitude,
        LayerUse::None,
        NO_PARAMS,
        "input gradient, drawn as max_c |g| (Simonyan et al. 2014)",
    ),
    entry(
        "input-x-gradient",
        Family::Gradient,
        MapKind::Input,
        MapStyle::Signed,
        LayerUse::None,
        NO_PARAMS,
        "input ⊙ gradient (Shrikumar et al. 2016)",
    ),
    entry(
        "smoothgrad",
        Family::Gradient,
        MapKind::Input,
        MapStyle::Magnitude,
        LayerUse::None,
        &["samples", "noise", "seed", "batch", "rules"],
        "mean gradient over noisy copies (Smilkov et al. 2017)",
    ),
    entry(
        "integrated-gradients",
        Family::Gradient,
        MapKind::Input,
        MapStyle::Signed,
        LayerUse::None,
        &["steps", "integration", "baseline", "batch", "rules"],
        "path integral of gradients from a baseline (Sundararajan et al. 2017)",
    ),
    entry(
        "occlusion",
        Family::Perturbation,
        MapKind::Input,
        MapStyle::Signed,
        LayerUse::None,
        &["window", "stride", "baseline", "batch"],
        "logit drop when a window is replaced by the baseline (Zeiler & Fergus 2014)",
    ),
    entry(
        "guided-backprop",
        Family::Guided,
        MapKind::Input,
        MapStyle::Signed,
        LayerUse::None,
        &["silu"],
        "gradient with positive signals only through ReLUs (Springenberg et al. 2015); \
         silu=guided extends it to SiLU",
    ),
    entry(
        "deconvnet",
        Family::Guided,
        MapKind::Input,
        MapStyle::Signed,
        LayerUse::None,
        NO_PARAMS,
        "ReLU applied to the backward signal (Zeiler & Fergus 2014)",
    ),
    cam(
        "cam",
        CAM_PARAMS,
        "class activation map of a GAP + linear head (Zhou et al. 2016)",
    ),
    cam(
        "grad-cam",
        CAM_PARAMS,
        "channel weights = mean gradient (Selvaraju et al. 2017)",
    ),
    cam(
        "grad-cam-plus-plus",
        CAM_PARAMS,
        "Grad-CAM++ weights (Chattopadhay et al. 2018)",
    ),
    cam(
        "hires-cam",
        CAM_PARAMS,
        "gradient ⊙ activation summed over channels (Draelos & Carin 2020)",
    ),
    cam(
        "xgrad-cam",
        CAM_PARAMS,
        "axiom-based weights (Fu et al. 2020)",
    ),
    cam(
        "layer-cam",
        CAM_PARAMS,
        "positive gradient ⊙ activation (Jiang et al. 2021)",
    ),
    cam(
        "score-cam",
        &["layer", "batch"],
        "channel weights = score of the masked input (Wang et al. 2020)",
    ),
    cam(
        "eigen-cam",
        CAM_PARAMS,
        "first principal component of the activations (Muhammad & Yeasin 2020)",
    ),
    entry(
        "guided-grad-cam",
        Family::Guided,
        MapKind::Input,
        MapStyle::Signed,
        LayerUse::Spatial,
        &["layer", "silu"],
        "guided backprop ⊙ Grad-CAM (Selvaraju et al. 2017)",
    ),
    lrp(
        "lrp:epsilon-plus",
        &["lrp-epsilon-plus"],
        "LRP, z⁺ on convolutions, ε on dense layers",
    ),
    lrp(
        "lrp:epsilon-plus-flat",
        &["lrp-epsilon-plus-flat"],
        "LRP, as epsilon-plus with Flat on the first layer",
    ),
    lrp(
        "lrp:epsilon-gamma-box",
        &["lrp-epsilon-gamma-box"],
        "LRP, z^B first, γ = 0.25 on convolutions (zennit 1.0's generalized Gamma; \
         gamma-form=classic for zennit 0.4.6's), ε on dense",
    ),
    lrp(
        "lrp:epsilon-alpha2-beta1",
        &["lrp-epsilon-alpha2-beta1"],
        "LRP, α2β1 on convolutions, ε on dense",
    ),
];

/// The method called `name` (canonical or alias).
pub fn find(name: &str) -> Option<&'static MethodInfo> {
    METHODS
        .iter()
        .find(|m| m.name == name || m.aliases.contains(&name))
}

/// Every accepted name, canonical names first, for error messages.
pub fn names() -> Vec<&'static str> {
    METHODS.iter().map(|m| m.name).collect()
}

/// The `--method` help: every method with its parameters and one line on what it computes.
pub fn help() -> String {
    let mut text = String::from(
        "Methods, comma-separated; each may take parameters, e.g. \
         lrp:epsilon-plus-flat(skip=split,epsilon=1e-6) or integrated-gradients(steps=64); \
         a parameter set there overrides the flag of the same name; \
         rules=<composite> makes smoothgrad and integrated-gradients average or integrate that \
         LRP rule set's modified gradient (zennit's attributors with a composite).\n",
    );
    for m in METHODS {
        let params = m.accepted_params();
        let params = if params.is_empty() {
            String::new()
        } else {
            format!(" ({})", params.join(", "))
        };
        let aliases = if m.aliases.is_empty() {
            String::new()
        } else {
            format!(" [also {}]", m.aliases.join(", "))
        };
        text.push_str(&format!("  {}{params}{aliases}: {}\n", m.name, m.summary));
    }
    text
}

impl MethodInfo {
    /// The parameters a spec of this method accepts: for LRP methods, `skip`, `start` and the
    /// rule parameters of its composite (`epsilon-plus` has no `gamma`).
    pub fn accepted_params(&self) -> Vec<&'static str> {
        let Some(preset) = self.composite_preset() else {
            return self.params.to_vec();
        };
        let composite = super::lrp::Composite::preset(preset).expect("registry preset");
        let mut params = vec!["skip", "start"];
        params.extend(composite.parameters());
        params
    }

    /// The composite preset of an LRP method (`epsilon-plus-flat`).
    pub fn composite_preset(&self) -> Option<&'static str> {
        self.name.strip_prefix("lrp:")
    }
}

/// The low-level explainer of `info` with options `opts` (parameters already applied), reading
/// `layer` if it reads one. LRP methods are prepared through [`super::lrp::LrpModel`] instead.
pub(crate) fn build(
    info: &MethodInfo,
    opts: &MethodOptions,
    rules: GradientRules,
) -> Result<Box<dyn Explainer>, MethodError> {
    let layer = opts.layer.clone();
    let gradient_cam =
        |w: CamWeighting| -> Box<dyn Explainer> { Box::new(GradientCam::new(w, layer.clone())) };
    Ok(match info.name {
        "saliency" => Box::new(gradient::Saliency),
        "input-x-gradient" => Box::new(gradient::InputXGradient),
        "smoothgrad" => Box::new(smoothgrad::SmoothGrad {
            rules,
            ..smoothgrad::SmoothGrad::new(opts)?
        }),
        "integrated-gradients" => Box::new(integrated::IntegratedGradients {
            rules,
            ..integrated::IntegratedGradients::new(opts)?
        }),
        "occlusion" => Box::new(occlusion::Occlusion::new(opts)?),
        "guided-backprop" => Box::new(guided::GuidedBackprop {
            silu: opts.guided_silu,
        }),
        "deconvnet" => Box::new(guided::Deconvnet),
        "guided-grad-cam" => Box::new(guided::GuidedGradCam::new(layer, opts.guided_silu)),
        "cam" => Box::new(ClassCam::new(layer)),
        "grad-cam" => gradient_cam(CamWeighting::GradCam),
        "grad-cam-plus-plus" => gradient_cam(CamWeighting::GradCamPlusPlus),
        "hires-cam" => gradient_cam(CamWeighting::HiResCam),
        "xgrad-cam" => gradient_cam(CamWeighting::XGradCam),
        "layer-cam" => gradient_cam(CamWeighting::LayerCam),
        "score-cam" => Box::new(ScoreCam::new(layer, opts.batch)),
        "eigen-cam" => Box::new(EigenCam::new(layer)),
        name => {
            let composite = info.composite_preset().ok_or_else(|| {
                MethodError::Invalid(format!("method {name} has no implementation"))
            })?;
            let composite = opts.composite.clone().unwrap_or_else(|| {
                super::lrp::Composite::preset(composite).expect("registry preset")
            });
            Box::new(super::lrp::Lrp::new(composite, opts.lrp.clone()))
        }
    })
}
