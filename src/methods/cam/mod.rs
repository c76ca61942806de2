//! The class activation map family, computed exactly as pytorch-grad-cam 1.5.7 does:
//!
//! 1. a map `[h, w]` per image at the target layer (activations `A`, gradients `G = ∂ logit_t/∂A`
//!    from one backward pass that stops at the layer), per variant ([`CamWeighting`],
//!    [`ScoreCam`], [`EigenCam`], [`ClassCam`]);
//! 2. `max(map, 0)`;
//! 3. `scale_cam_image`: `m − min(m)`, divided by `1e-7 + max`, then `cv2.resize` (bilinear,
//!    half-pixel centres) to the input size ([`resize::resize_cv2_linear`]);
//! 4. the multi-layer aggregation of one layer: `max(·, 0)`, then `scale_cam_image` again
//!    without resizing.
//!
//! The result `[N, 1, H, W]` lies in `[0, 1]`.
//!
//! **Target layer.** Any node by name (`--layer`); by default [`default_cam_layer`]: walking back
//! from the logits, the first node whose output is spatial (`H·W > 1`), skipping resampling-only
//! nodes (adaptive average pooling to a fixed size, dropout, identity, permutes, reshapes). That
//! is `layer4.1` for a ResNet-18 (pytorch-grad-cam's `model.layer4[-1]`) and the last max pool
//! `features.N` of a VGG (its `model.features[-1]`).

mod class_cam;
mod eigen;
pub mod resize;
mod score;

pub use class_cam::{ClassCam, gap_linear_head};
pub use eigen::{EigenCam, first_principal_projection};
pub use score::ScoreCam;

use serde_json::json;

use super::pass::{forward_all, signals_at};
use super::{Explainer, MapKind, MapStyle, MethodError};
use crate::engine::{Activations, RuleMap, Rules};
use crate::graph::{Graph, Model, NodeId, Op};
use crate::tensor::{T4, from_vec, to_vec};

/// Ops that only resample or re-lay out a map; the default layer search walks past them.
fn is_resampling(op: &Op) -> bool {
    matches!(
        op,
        Op::AdaptiveAvgPool2d { .. }
            | Op::Dropout { .. }
            | Op::Identity
            | Op::Permute(_)
            | Op::Reshape(_)
            | Op::Flatten
    )
}

/// The default CAM layer of a graph, given a forward pass (for the shapes): walking back from the
/// logits along first inputs, the first node with a spatial output (`H·W > 1`) that is not a
/// resampling-only op. `None` if there is none.
pub fn default_cam_layer(graph: &Graph, acts: &Activations) -> Option<NodeId> {
    let mut id = graph.logits();
    loop {
        let node = &graph.nodes[id];
        let spatial = acts.get(id).ok().map(|a| {
            let [_, _, h, w] = a.dims();
            h * w > 1
        })?;
        if spatial && !is_resampling(&node.op) {
            return (id != graph.input()).then_some(id);
        }
        id = *node.inputs.first()?;
    }
}

/// The CAM layer: `name` if given (it must exist and have spatial output), else the default.
pub fn resolve_layer(
    model: &Model,
    acts: &Activations,
    name: Option<&str>,
) -> Result<NodeId, MethodError> {
    let graph = &model.graph;
    let id = match name {
        Some(name) => graph.find(name)?,
        None => default_cam_layer(graph, acts).ok_or_else(|| {
            MethodError::Invalid(
                "the model has no layer with a spatial output before its classifier; \
                 CAMs need a convolutional feature map"
                    .into(),
            )
        })?,
    };
    let dims = acts.get(id)?.dims();
    if dims[2] * dims[3] <= 1 {
        let hint = default_cam_layer(graph, acts)
            .map(|d| format!(", e.g. '{}' (the default)", graph.nodes[d].name))
            .unwrap_or_default();
        return Err(MethodError::Invalid(format!(
            "layer '{}' has no spatial dimensions (output {:?}); CAMs need a layer with a \
             spatial feature map{hint}",
            graph.nodes[id].name, dims
        )));
    }
    Ok(id)
}

/// Host copy of a `[N, C, h, w]` tensor with its dims.
pub(crate) struct Planes {
    pub values: Vec<f32>,
    pub dims: [usize; 4],
}

impl Planes {
    pub fn of(t: &T4) -> Self {
        Planes {
            values: to_vec(t),
            dims: t.dims(),
        }
    }
    /// Values of image `n`, channel `c`.
    pub fn plane(&self, n: usize, c: usize) -> &[f32] {
        let [_, ch, h, w] = self.dims;
        let p = h * w;
        &self.values[(n * ch + c) * p..(n * ch + c + 1) * p]
    }
}

/// pytorch-grad-cam's `scale_cam_image` of one map: `m − min`, `/ (1e-7 + max)`, then resized to
/// `out_h × out_w` with `cv2.resize` (or not resized when `out` is `None`).
pub fn scale_cam_image(map: &[f32], h: usize, w: usize, out: Option<(usize, usize)>) -> Vec<f32> {
    let min = map.iter().copied().fold(f32::INFINITY, f32::min);
    let shifted: Vec<f32> = map.iter().map(|v| v - min).collect();
    let max = shifted.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let denom = 1e-7f32 + max;
    let scaled: Vec<f32> = shifted.iter().map(|v| v / denom).collect();
    match out {
        Some((oh, ow)) => resize::resize_cv2_linear(&scaled, h, w, oh, ow),
        None => scaled,
    }
}

/// Steps 2–4 of the module doc: from raw maps `[N][h·w]` to the final `[N, 1, H, W]`.
pub fn finish_cams(maps: Vec<Vec<f32>>, h: usize, w: usize, out_h: usize, out_w: usize) -> T4 {
    let n = maps.len();
    let mut values = Vec::with_capacity(n * out_h * out_w);
    for map in maps {
        let relu: Vec<f32> = map.into_iter().map(|v| v.max(0.0)).collect();
        let resized = scale_cam_image(&relu, h, w, Some((out_h, out_w)));
        let relu2: Vec<f32> = resized.into_iter().map(|v| v.max(0.0)).collect();
        values.extend(scale_cam_image(&relu2, out_h, out_w, None));
    }
    from_vec(values, [n, 1, out_h, out_w])
}

/// `Σ_c weights[n][c] · A[n, c]` for every image.
pub(crate) fn weighted_sum(acts: &Planes, weights: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let [n, c, h, w] = acts.dims;
    (0..n)
        .map(|i| {
            let mut map = vec![0.0f32; h * w];
            for (ch, &wt) in weights[i].iter().enumerate().take(c) {
                for (m, a) in map.iter_mut().zip(acts.plane(i, ch)) {
                    *m += wt * a;
                }
            }
            map
        })
        .collect()
}

/// The gradient-based CAM variants of pytorch-grad-cam, which differ only in how activations
/// `A` and gradients `G` at the layer become a map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CamWeighting {
    /// Grad-CAM (Selvaraju et al. 2017): `w_c = mean_ij G_cij`, map `Σ_c w_c A_c`.
    GradCam,
    /// Grad-CAM++ (Chattopadhay et al. 2018, eq. 19): `α = G² / (2G² + Σ_ij A · G³ + 1e-6)`
    /// (0 where `G = 0`), `w_c = Σ_ij max(G, 0)·α`, map `Σ_c w_c A_c`.
    GradCamPlusPlus,
    /// HiResCAM (Draelos & Carin 2020): map `Σ_c G_c ⊙ A_c`.
    HiResCam,
    /// XGrad-CAM (Fu et al. 2020): `w_c = Σ_ij G·A / (Σ_ij A + 1e-7)`, map `Σ_c w_c A_c`.
    XGradCam,
    /// LayerCAM (Jiang et al. 2021): map `Σ_c max(G_c, 0) ⊙ A_c`.
    LayerCam,
}

impl CamWeighting {
    /// Every weighting.
    pub const ALL: [CamWeighting; 5] = [
        CamWeighting::GradCam,
        CamWeighting::GradCamPlusPlus,
        CamWeighting::HiResCam,
        CamWeighting::XGradCam,
        CamWeighting::LayerCam,
    ];

    /// Kebab-case method name.
    pub fn name(self) -> &'static str {
        match self {
            CamWeighting::GradCam => "grad-cam",
            CamWeighting::GradCamPlusPlus => "grad-cam-plus-plus",
            CamWeighting::HiResCam => "hires-cam",
            CamWeighting::XGradCam => "xgrad-cam",
            CamWeighting::LayerCam => "layer-cam",
        }
    }

    /// Raw maps `[N][h·w]` from activations and gradients at the layer, with pytorch-grad-cam's
    /// float32 formulas (sums accumulated in double).
    pub(crate) fn maps(self, a: &Planes, g: &Planes) -> Vec<Vec<f32>> {
        let [n, c, h, w] = a.dims;
        let p = h * w;
        let per_channel = |f: &dyn Fn(&[f32], &[f32]) -> f32| -> Vec<Vec<f32>> {
            (0..n)
                .map(|i| (0..c).map(|ch| f(a.plane(i, ch), g.plane(i, ch))).collect())
                .collect()
        };
        let sum = |v: &mut dyn Iterator<Item = f32>| v.map(f64::from).sum::<f64>() as f32;
        let elementwise = |f: &dyn Fn(f32) -> f32| -> Vec<Vec<f32>> {
            (0..n)
                .map(|i| {
                    let mut map = vec![0.0f32; p];
                    for ch in 0..c {
                        for ((m, &av), &gv) in
                            map.iter_mut().zip(a.plane(i, ch)).zip(g.plane(i, ch))
                        {
                            *m += f(gv) * av;
                        }
                    }
                    map
                })
                .collect()
        };
        match self {
            CamWeighting::GradCam => {
                let weights = per_channel(&|_, gs| sum(&mut gs.iter().copied()) / p as f32);
                weighted_sum(a, &weights)
            }
            CamWeighting::GradCamPlusPlus => {
                let weights = per_channel(&|as_, gs| {
                    let sum_a = sum(&mut as_.iter().copied());
                    sum(&mut gs.iter().map(|&gv| {
                        if gv == 0.0 {
                            return 0.0;
                        }
                        let g2 = gv * gv;
                        let g3 = g2 * gv;
                        let alpha = g2 / (2.0 * g2 + sum_a * g3 + 1e-6);
                        gv.max(0.0) * alpha
                    }))
                });
                weighted_sum(a, &weights)
            }
            CamWeighting::XGradCam => {
                let weights = per_channel(&|as_, gs| {
                    let denom = sum(&mut as_.iter().copied()) + 1e-7;
                    sum(&mut gs.iter().zip(as_).map(|(&gv, &av)| gv * av / denom))
                });
                weighted_sum(a, &weights)
            }
            CamWeighting::HiResCam => elementwise(&|gv| gv),
            CamWeighting::LayerCam => elementwise(&|gv| gv.max(0.0)),
        }
    }
}

/// Activations and gradients at `layer` for the one-hot seeds of `targets`; the backward pass
/// runs with `rules` from the logits down to the layer and visits nothing below it.
pub fn layer_gradients(
    model: &Model,
    acts: &Activations,
    targets: &[usize],
    layer: NodeId,
    rules: &dyn RuleMap,
) -> Result<(T4, T4), MethodError> {
    let g = signals_at(model, acts, targets, rules, &[layer])?.remove(0);
    Ok((acts.get(layer)?.clone(), g))
}

/// A gradient-based CAM (Grad-CAM, Grad-CAM++, HiResCAM, XGrad-CAM, LayerCAM).
pub struct GradientCam {
    /// The variant.
    pub weighting: CamWeighting,
    /// Target layer name (`None`: [`default_cam_layer`]).
    pub layer: Option<String>,
}

impl GradientCam {
    /// A variant at `layer`.
    pub fn new(weighting: CamWeighting, layer: Option<String>) -> Self {
        GradientCam { weighting, layer }
    }
}

impl Explainer for GradientCam {
    fn name(&self) -> &str {
        self.weighting.name()
    }
    fn kind(&self) -> MapKind {
        MapKind::Cam
    }
    fn style(&self) -> MapStyle {
        MapStyle::Unit
    }
    fn explain(&self, model: &Model, x: &T4, targets: &[usize]) -> Result<T4, MethodError> {
        self.explain_forward(model, x, &forward_all(model, x)?, targets)
    }
    fn explain_forward(
        &self,
        model: &Model,
        x: &T4,
        acts: &Activations,
        targets: &[usize],
    ) -> Result<T4, MethodError> {
        let layer = resolve_layer(model, acts, self.layer.as_deref())?;
        let (a, g) = layer_gradients(model, acts, targets, layer, &Rules::gradient())?;
        let (a, g) = (Planes::of(&a), Planes::of(&g));
        let [_, _, h, w] = a.dims;
        let [_, _, oh, ow] = x.dims();
        Ok(finish_cams(self.weighting.maps(&a, &g), h, w, oh, ow))
    }
    fn params(&self) -> serde_json::Value {
        json!({"layer": self.layer})
    }
}

/// The layer CAM (Zhou et al.) reads: `layer` if given, else the input of the model's global
/// average pool + linear head (`None` when the model has no such head; CAM then fails with its
/// own message).
pub fn pooled_head_layer(
    model: &Model,
    acts: &Activations,
    layer: Option<&str>,
) -> Result<Option<NodeId>, MethodError> {
    let pooled =
        class_cam::gap_linear_head(model, acts).map(|(id, _)| model.graph.nodes[id].name.clone());
    match (layer, pooled) {
        (Some(l), _) => resolve_layer(model, acts, Some(l)).map(Some),
        (None, Some(p)) => resolve_layer(model, acts, Some(&p)).map(Some),
        (None, None) => Ok(None),
    }
}
