//! Occlusion (Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks", 2014), with
//! Captum's conventions: a `window × window` patch (all channels) is replaced by the baseline at
//! offsets `k·stride` for `k = 0..⌈(H − window)/stride⌉` (the last windows cut at the border); each
//! pixel's attribution is the mean drop `logit_t(x) − logit_t(x_occluded)` over the windows that
//! cover it (zero where none does). The occluded copies run as batched forward passes.

use serde_json::json;

use super::pass::{forward_all, logits, row, stack_rows, target_logits};
use super::{Baseline, Explainer, MapKind, MethodError, MethodOptions};
use crate::engine::Activations;
use crate::graph::Model;
use crate::tensor::{T4, from_vec};

/// Occlusion with a square window.
pub struct Occlusion {
    /// Window side in pixels.
    pub window: usize,
    /// Step between window offsets in pixels.
    pub stride: usize,
    /// What the window is filled with (zeros by default).
    pub baseline: Baseline,
    /// Occluded copies per forward pass.
    pub batch: usize,
}

impl Occlusion {
    /// From the shared options (`window`, `stride`, `baseline`, `batch`).
    pub fn new(opts: &MethodOptions) -> Result<Self, MethodError> {
        if opts.window == 0 || opts.stride == 0 {
            return Err(MethodError::Invalid(
                "occlusion window and stride must be positive".into(),
            ));
        }
        Ok(Occlusion {
            window: opts.window,
            stride: opts.stride,
            baseline: opts.baseline.clone().unwrap_or(Baseline::Zero),
            batch: opts.batch,
        })
    }

    /// Window offsets along an axis of length `len`.
    pub fn offsets(&self, len: usize) -> Vec<usize> {
        let window = self.window.min(len);
        let count = (len - window).div_ceil(self.stride) + 1;
        (0..count).map(|k| k * self.stride).collect()
    }

    fn attribute(
        &self,
        model: &Model,
        x: &T4,
        base_scores: &[f32],
        targets: &[usize],
    ) -> Result<T4, MethodError> {
        let [n, c, h, w] = x.dims();
        let fill = self.baseline.image(x, &model.card);
        let windows: Vec<(usize, usize)> = self
            .offsets(h)
            .into_iter()
            .flat_map(|y| self.offsets(w).into_iter().map(move |x0| (y, x0)))
            .collect();
        let win = |start: usize, len: usize| start..(start + self.window).min(len);
        let mut total = vec![0.0f32; n * h * w];
        let mut count = vec![0.0f32; h * w];
        for &(y0, x0) in &windows {
            for y in win(y0, h) {
                for xx in win(x0, w) {
                    count[y * w + xx] += 1.0;
                }
            }
        }
        for i in 0..n {
            let image = row(x, i);
            let filler = row(&fill, i);
            let rows_total = windows.len();
            let batch = super::fit::rows_per_pass(self.batch);
            for start in (0..rows_total).step_by(batch) {
                let len = batch.min(rows_total - start);
                let rows: Vec<Vec<f32>> = windows[start..start + len]
                    .iter()
                    .map(|&(y0, x0)| {
                        let mut v = image.clone();
                        for ch in 0..c {
                            for y in win(y0, h) {
                                for xx in win(x0, w) {
                                    let j = (ch * h + y) * w + xx;
                                    v[j] = filler[j];
                                }
                            }
                        }
                        v
                    })
                    .collect();
                let scores = target_logits(
                    model,
                    &stack_rows(rows, [c, h, w]),
                    &vec![targets[i]; len],
                    len,
                )?;
                for (&(y0, x0), s) in windows[start..start + len].iter().zip(scores) {
                    let drop = base_scores[i] - s;
                    for y in win(y0, h) {
                        for xx in win(x0, w) {
                            total[(i * h + y) * w + xx] += drop;
                        }
                    }
                }
            }
        }
        let mut out = vec![0.0f32; n * c * h * w];
        for i in 0..n {
            for p in 0..h * w {
                let v = if count[p] > 0.0 {
                    total[i * h * w + p] / count[p]
                } else {
                    0.0
                };
                for ch in 0..c {
                    out[(i * c + ch) * h * w + p] = v;
                }
            }
        }
        Ok(from_vec(out, [n, c, h, w]))
    }
}

impl Explainer for Occlusion {
    fn name(&self) -> &str {
        "occlusion"
    }
    fn kind(&self) -> MapKind {
        MapKind::Input
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
        let n = x.dims()[0];
        let all = logits(model, acts)?;
        let k = all.len() / n.max(1);
        super::pass::check_targets(targets, n, k)?;
        let base: Vec<f32> = targets
            .iter()
            .enumerate()
            .map(|(i, &t)| all[i * k + t])
            .collect();
        self.attribute(model, x, &base, targets)
    }
    fn params(&self) -> serde_json::Value {
        json!({"window": self.window, "stride": self.stride, "baseline": self.baseline.to_string()})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_follow_captum() {
        let occ = Occlusion::new(&MethodOptions {
            window: 20,
            stride: 12,
            ..Default::default()
        })
        .unwrap();
        // ⌈(64 − 20)/12⌉ + 1 = 5 windows; the last (48..68) is cut at 64.
        assert_eq!(occ.offsets(64), vec![0, 12, 24, 36, 48]);
        assert_eq!(occ.offsets(20), vec![0]);
        assert_eq!(occ.offsets(10), vec![0]);
    }
}
