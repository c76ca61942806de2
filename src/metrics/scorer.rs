//! The model as the metrics see it: a batch of images in, class scores out.

use serde::Serialize;

use super::{ImageView, MetricError};
use crate::engine::forward::{Keep, run};
use crate::graph::{Graph, Model};
use crate::methods::fit::{RowBytes, in_batches_that_fit};
use crate::tensor::{T4, from_vec, to_vec};

/// Class scores of a batch: `[N, K]` in row-major order.
#[derive(Clone, Debug, PartialEq)]
pub struct Scores {
    /// Number of classes `K`.
    pub classes: usize,
    /// `N·K` values, image by image.
    pub values: Vec<f32>,
}

impl Scores {
    /// Scores from `N·K` values; fails if `values.len()` is not a multiple of `classes`.
    pub fn new(values: Vec<f32>, classes: usize) -> Result<Self, MetricError> {
        if classes == 0 || !values.len().is_multiple_of(classes) {
            return Err(MetricError::Shape(format!(
                "{} scores do not divide into rows of {classes} classes",
                values.len()
            )));
        }
        Ok(Scores { classes, values })
    }

    /// Number of images `N`.
    pub fn len(&self) -> usize {
        self.values.len() / self.classes
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Scores of image `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.classes..(i + 1) * self.classes]
    }

    /// Score of class `k` for image `i`.
    pub fn get(&self, i: usize, k: usize) -> f32 {
        self.values[i * self.classes + k]
    }
}

/// What a scorer's numbers are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScoreKind {
    /// Class probabilities (softmax over the logits).
    Softmax,
    /// Logits (pre-softmax scores).
    Logit,
    /// Anything else (a user's closure).
    Other,
}

/// Maps a batch of images (`[N, C, H, W]`, model input space) to class scores.
///
/// Closures `Fn(T4) -> Result<Scores, MetricError>` are scorers (of kind [`ScoreKind::Other`]).
pub trait Scorer {
    /// Scores of every image of `batch`.
    fn scores(&self, batch: T4) -> Result<Scores, MetricError>;
    /// What the scores are (stated in every result).
    fn kind(&self) -> ScoreKind {
        ScoreKind::Other
    }
    /// How many images to send per call (metrics chunk their perturbed images by this).
    fn batch_size(&self) -> usize {
        16
    }
}

impl<F> Scorer for F
where
    F: Fn(T4) -> Result<Scores, MetricError>,
{
    fn scores(&self, batch: T4) -> Result<Scores, MetricError> {
        self(batch)
    }
}

/// A [`Model`] as a [`Scorer`]: its logits, or the softmax of its logits.
///
/// A graph that ends in a softmax is cut before it, so `Logit` gives the real logits either way.
pub struct ModelScorer<'a> {
    model: &'a Model,
    /// The graph run: the model's graph with its output moved to the logits node.
    graph: Graph,
    kind: ScoreKind,
    batch_size: usize,
    /// The model's largest activation per row, for batches that fit a GPU.
    row_bytes: RowBytes,
}

impl<'a> ModelScorer<'a> {
    /// Scores of `model`: `ScoreKind::Softmax` or `ScoreKind::Logit` (`Other` is refused).
    pub fn new(model: &'a Model, kind: ScoreKind) -> Result<Self, MetricError> {
        if kind == ScoreKind::Other {
            return Err(MetricError::Invalid(
                "a model scorer gives softmax probabilities or logits".into(),
            ));
        }
        let mut graph = model.graph.clone();
        graph.output = graph.logits();
        Ok(ModelScorer {
            model,
            graph,
            kind,
            batch_size: 16,
            row_bytes: RowBytes::default(),
        })
    }

    /// With at most `n` images per forward pass (default 16).
    pub fn with_batch_size(mut self, n: usize) -> Self {
        self.batch_size = n.max(1);
        self
    }
}

impl Scorer for ModelScorer<'_> {
    /// The scores of `batch`, in sub-batches that fit the device ([`in_batches_that_fit`]).
    fn scores(&self, batch: T4) -> Result<Scores, MetricError> {
        let parts = in_batches_that_fit(
            self.model,
            &self.row_bytes,
            &batch,
            0,
            "scoring",
            |_, rows| self.scores_of(rows.clone()),
        )?;
        let classes = parts[0].classes;
        let values = parts.into_iter().flat_map(|p| p.values).collect();
        Scores::new(values, classes)
    }
    fn kind(&self) -> ScoreKind {
        self.kind
    }
    fn batch_size(&self) -> usize {
        self.batch_size
    }
}

impl ModelScorer<'_> {
    /// The scores of `batch` in one forward pass.
    fn scores_of(&self, batch: T4) -> Result<Scores, MetricError> {
        let n = batch.dims()[0];
        let mut acts = run(&self.graph, &self.model.params, batch, Keep::Output, None)?;
        let logits = acts.values[self.graph.output]
            .take()
            .expect("output is kept");
        let mut values = to_vec(&logits);
        let classes = values.len() / n.max(1);
        if self.kind == ScoreKind::Softmax {
            // The probabilities the model's head defines: softmax, or a sigmoid per output for
            // multi-label and binary-logit heads.
            let head = self.model.card.head();
            for row in values.chunks_mut(classes) {
                let p = head.probabilities(row);
                row.copy_from_slice(&p);
            }
        }
        Scores::new(values, classes)
    }
}

/// Which class a metric follows: a resolved form of the explained class
/// ([`crate::methods::Target`]), a given index or the prediction on the unperturbed image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FollowedClass {
    /// A given class (e.g. the true label).
    Class(usize),
    /// The class the model predicts for the unperturbed image (arg-max of its scores).
    Predicted,
}

/// The index of the largest score (the first one on ties).
pub fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

/// Scores of the unperturbed image and the class `target` resolves to on it.
pub fn resolve_target(
    scorer: &dyn Scorer,
    image: &ImageView,
    target: FollowedClass,
) -> Result<(usize, Vec<f32>), MetricError> {
    let scores = scorer.scores(image_tensor(image.data, image.shape(), 1))?;
    let row = scores.row(0).to_vec();
    let class = match target {
        FollowedClass::Class(k) if k < row.len() => k,
        FollowedClass::Class(k) => {
            return Err(MetricError::Invalid(format!(
                "target class {k} but the model has {} classes",
                row.len()
            )));
        }
        FollowedClass::Predicted => argmax(&row),
    };
    Ok((class, row))
}

/// A `[n, C, H, W]` tensor from `n` images laid end to end.
pub(crate) fn image_tensor(values: &[f32], [c, h, w]: [usize; 3], n: usize) -> T4 {
    from_vec(values.to_vec(), [n, c, h, w])
}

/// Scores class `class` of `count` images that `fill(i, buffer)` writes one after another (in
/// order `i = 0, 1, …`, so `fill` may build each image from the previous one), sending the
/// scorer batches of at most [`Scorer::batch_size`] images.
pub(crate) fn score_sequence(
    scorer: &dyn Scorer,
    shape: [usize; 3],
    count: usize,
    class: usize,
    mut fill: impl FnMut(usize, &mut [f32]),
) -> Result<Vec<f32>, MetricError> {
    let len = shape.iter().product::<usize>();
    let batch = scorer.batch_size().max(1);
    let mut out = Vec::with_capacity(count);
    let mut start = 0;
    while start < count {
        let n = batch.min(count - start);
        let mut buffer = vec![0.0f32; n * len];
        for (j, slot) in buffer.chunks_mut(len).enumerate() {
            fill(start + j, slot);
        }
        let [c, h, w] = shape;
        let scores = scorer.scores(from_vec(buffer, [n, c, h, w]))?;
        if scores.len() != n {
            return Err(MetricError::Shape(format!(
                "the scorer returned {} rows for {n} images",
                scores.len()
            )));
        }
        if class >= scores.classes {
            return Err(MetricError::Invalid(format!(
                "class {class} but the scorer gives {} classes",
                scores.classes
            )));
        }
        out.extend((0..n).map(|i| scores.get(i, class)));
        start += n;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_keeps_order() {
        let softmax = |z: &[f32]| crate::graph::Head::Softmax.probabilities(z);
        let z = softmax(&[1.0, 3.0, -2.0, 1000.0]);
        assert!((z.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(argmax(&z), 3);
        let z = softmax(&[0.0, (2.0f32).ln()]);
        assert!((z[0] - 1.0 / 3.0).abs() < 1e-6 && (z[1] - 2.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn argmax_takes_the_first_of_ties() {
        assert_eq!(argmax(&[1.0, 5.0, 5.0, 2.0]), 1);
    }
}
