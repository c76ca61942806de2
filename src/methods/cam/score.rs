//! Score-CAM (Wang et al., "Score-CAM: Score-Weighted Visual Explanations", 2020) as
//! pytorch-grad-cam computes it: every activation channel is upsampled to the input size with
//! `UpsamplingBilinear2d` (align corners), min-max scaled (`(u − min) / (max − min + 1e-8)`) and
//! used as a mask on the input; the target logits of the `C` masked inputs, softmaxed over the
//! channels, weight the channels: map `Σ_c softmax(s)_c A_c`. No gradients; `N·C` forward
//! passes, run as batches.

use serde_json::json;

use super::resize::upsample_align_corners;
use super::{Planes, finish_cams, resolve_layer, weighted_sum};
use crate::engine::Activations;
use crate::graph::Model;
use crate::methods::pass::{
    check_targets, class_count, forward_all, row, stack_rows, target_logits,
};
use crate::methods::{Explainer, MapKind, MapStyle, MethodError};
use crate::tensor::T4;

/// Score-CAM.
pub struct ScoreCam {
    /// Target layer name (`None`: the default CAM layer).
    pub layer: Option<String>,
    /// Masked inputs per forward pass.
    pub batch: usize,
}

impl ScoreCam {
    /// Score-CAM at `layer`, `batch` masked inputs per forward pass.
    pub fn new(layer: Option<String>, batch: usize) -> Self {
        ScoreCam {
            layer,
            batch: batch.max(1),
        }
    }
}

/// Softmax of a score vector (float32, max subtracted, like torch's).
fn softmax(scores: &[f32]) -> Vec<f32> {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
    let total: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / total).collect()
}

impl Explainer for ScoreCam {
    fn name(&self) -> &str {
        "score-cam"
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
        let [n, xc, oh, ow] = x.dims();
        check_targets(targets, n, class_count(model, acts)?)?;
        let a = Planes::of(acts.get(layer)?);
        let [_, c, h, w] = a.dims;
        let mut weights = Vec::with_capacity(n);
        for (i, &target) in targets.iter().enumerate() {
            let image = row(x, i);
            let masks: Vec<Vec<f32>> = (0..c)
                .map(|ch| {
                    let up = upsample_align_corners(a.plane(i, ch), h, w, oh, ow);
                    let max = up.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let min = up.iter().copied().fold(f32::INFINITY, f32::min);
                    let denom = max - min + 1e-8;
                    up.into_iter().map(|u| (u - min) / denom).collect()
                })
                .collect();
            let mut scores = Vec::with_capacity(c);
            let batch = crate::methods::fit::rows_per_pass(self.batch);
            for start in (0..c).step_by(batch) {
                let len = batch.min(c - start);
                let rows: Vec<Vec<f32>> = masks[start..start + len]
                    .iter()
                    .map(|mask| {
                        (0..xc)
                            .flat_map(|ch| {
                                image[ch * oh * ow..(ch + 1) * oh * ow]
                                    .iter()
                                    .zip(mask)
                                    .map(|(v, m)| v * m)
                            })
                            .collect()
                    })
                    .collect();
                scores.extend(target_logits(
                    model,
                    &stack_rows(rows, [xc, oh, ow]),
                    &vec![target; len],
                    len,
                )?);
            }
            weights.push(softmax(&scores));
        }
        Ok(finish_cams(weighted_sum(&a, &weights), h, w, oh, ow))
    }
    fn params(&self) -> serde_json::Value {
        json!({"layer": self.layer})
    }
}
