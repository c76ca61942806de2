//! Explanations as the metrics see them: a batch of images and target classes in, one `[H, W]`
//! map per image out. Robustness metrics re-explain perturbed inputs through [`MapFn`]; the
//! randomisation test re-explains with a changed model through [`ModelMapFn`].

use super::MetricError;
use crate::graph::Model;
use crate::methods::Explainer;
use crate::tensor::{T4, to_vec};

/// Explains a batch: `maps(batch [N, C, H, W], targets[N])` → `N·H·W` values, image by image.
///
/// Closures `Fn(T4, &[usize]) -> Result<Vec<f32>, MetricError>` are map functions.
pub trait MapFn {
    /// One `[H, W]` map per image, concatenated.
    fn maps(&self, batch: T4, targets: &[usize]) -> Result<Vec<f32>, MetricError>;
}

impl<F> MapFn for F
where
    F: Fn(T4, &[usize]) -> Result<Vec<f32>, MetricError>,
{
    fn maps(&self, batch: T4, targets: &[usize]) -> Result<Vec<f32>, MetricError> {
        self(batch, targets)
    }
}

/// Like [`MapFn`] with the model as an argument (the randomisation test swaps its parameters).
///
/// Closures `Fn(&Model, T4, &[usize]) -> Result<Vec<f32>, MetricError>` qualify.
pub trait ModelMapFn {
    /// One `[H, W]` map per image of `batch` explained on `model`, concatenated.
    fn maps(&self, model: &Model, batch: T4, targets: &[usize]) -> Result<Vec<f32>, MetricError>;
}

impl<F> ModelMapFn for F
where
    F: Fn(&Model, T4, &[usize]) -> Result<Vec<f32>, MetricError>,
{
    fn maps(&self, model: &Model, batch: T4, targets: &[usize]) -> Result<Vec<f32>, MetricError> {
        self(model, batch, targets)
    }
}

/// How a `[N, C, H, W]` explanation becomes `[N, H, W]` maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelReduce {
    /// `Σ_c R_c` (zennit's and our heatmaps' convention).
    Sum,
    /// `Σ_c |R_c|`.
    SumAbs,
    /// `max_c |R_c|` (Simonyan et al.'s saliency maps).
    MaxAbs,
}

/// Reduces `[N, C, H, W]` host values to `[N, H, W]`.
pub fn reduce_channels(values: &[f32], [n, c, h, w]: [usize; 4], how: ChannelReduce) -> Vec<f32> {
    let plane = h * w;
    let mut out = vec![0.0f32; n * plane];
    for i in 0..n {
        let dst = &mut out[i * plane..(i + 1) * plane];
        for ch in 0..c {
            let src = &values[(i * c + ch) * plane..(i * c + ch + 1) * plane];
            for (d, &s) in dst.iter_mut().zip(src) {
                match how {
                    ChannelReduce::Sum => *d += s,
                    ChannelReduce::SumAbs => *d += s.abs(),
                    ChannelReduce::MaxAbs => *d = d.max(s.abs()),
                }
            }
        }
    }
    out
}

/// An [`Explainer`] as a [`MapFn`] (on a fixed model) and a [`ModelMapFn`]; its `[N, C, H, W]`
/// (or CAM `[N, 1, H, W]`) output is reduced over channels.
pub struct ExplainerMaps<'a> {
    /// The method.
    pub explainer: &'a dyn Explainer,
    /// The model used by [`MapFn::maps`].
    pub model: &'a Model,
    /// Channel reduction.
    pub reduce: ChannelReduce,
}

impl ModelMapFn for ExplainerMaps<'_> {
    fn maps(&self, model: &Model, batch: T4, targets: &[usize]) -> Result<Vec<f32>, MetricError> {
        let r = self.explainer.explain(model, &batch, targets)?;
        Ok(reduce_channels(&to_vec(&r), r.dims(), self.reduce))
    }
}

impl MapFn for ExplainerMaps<'_> {
    fn maps(&self, batch: T4, targets: &[usize]) -> Result<Vec<f32>, MetricError> {
        ModelMapFn::maps(self, self.model, batch, targets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_reductions() {
        // one image, two channels of 2 pixels
        let v = [1.0, -2.0, -3.0, 0.5];
        assert_eq!(
            reduce_channels(&v, [1, 2, 1, 2], ChannelReduce::Sum),
            vec![-2.0, -1.5]
        );
        assert_eq!(
            reduce_channels(&v, [1, 2, 1, 2], ChannelReduce::SumAbs),
            vec![4.0, 2.5]
        );
        assert_eq!(
            reduce_channels(&v, [1, 2, 1, 2], ChannelReduce::MaxAbs),
            vec![3.0, 2.0]
        );
    }
}
