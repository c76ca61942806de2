//! The explanation of one batch of preprocessed inputs, shared by the `explain` pipeline (which
//! writes files) and the Python binding (which returns arrays), so both give the same maps for
//! the same inputs: one forward pass for the predictions, the target rule resolved on its
//! logits, then every method on the rows the target asks for.

use anyhow::{Context, Result};

use super::IMAGES_PER_PASS;
use crate::engine::Activations;
use crate::graph::Model;
use crate::methods::fit;
use crate::methods::pass::{forward_all, logits, repeat_rows};
use crate::methods::{Explanation, Prepared, Target};
use crate::tensor::T4;

/// The model's predictions on a batch (empty when not asked for and not needed, see
/// [`explain_batch`]).
#[derive(Clone, Debug, Default)]
pub struct Predictions {
    /// Logits per input.
    pub logits: Vec<Vec<f32>>,
    /// Class probabilities per input (the card's head: softmax, or sigmoid of a binary logit).
    pub probs: Vec<Vec<f32>>,
}

/// One set of rows explained together: several inputs for one class each, or (with
/// [`Target::All`]) one input repeated for up to [`IMAGES_PER_PASS`] classes.
pub struct Pass<'a> {
    /// The rows as the methods saw them, `[R, C, H, W]`.
    pub x: &'a T4,
    /// The input (index into the batch) of each row.
    pub inputs: Vec<usize>,
    /// The class explained in each row.
    pub targets: Vec<usize>,
    /// Each method's explanation of the rows, in the order of the methods.
    pub explanations: Vec<Explanation>,
}

/// Predicts `x` (`[N, C, H, W]`) and explains it with every method for `target`, handing each
/// [`Pass`] with the predictions to `each` (so maps of many classes need not be held at once).
/// With a single target per input there is one pass over the whole batch. Without
/// `want_predictions`, a class given by index and only LRP methods (which run their own forward
/// pass on the canonized model), the prediction pass is skipped and the predictions are empty:
/// the maps are the same.
pub fn explain_batch(
    model: &Model,
    methods: &[Prepared],
    x: &T4,
    target: &Target,
    want_predictions: bool,
    mut each: impl FnMut(&Predictions, Pass) -> Result<()>,
) -> Result<Predictions> {
    let n = x.dims()[0];
    if let Target::Index(class) = *target
        && !want_predictions
        && methods.iter().all(|m| m.lrp().is_some())
    {
        let k = model.card.num_classes;
        target.resolve(&vec![0.0; k], k, &model.card)?;
        let targets = vec![class; n];
        let explanations = methods
            .iter()
            .map(|m| {
                m.explain(x, &targets)
                    .with_context(|| format!("method {}", m.label()))
            })
            .collect::<Result<Vec<_>>>()?;
        let predictions = Predictions::default();
        let inputs = (0..n).collect();
        each(
            &predictions,
            Pass {
                x,
                inputs,
                targets,
                explanations,
            },
        )?;
        return Ok(predictions);
    }
    let (acts, all_logits) = forward_if_it_fits(model, x)?;
    let k = all_logits.len() / n.max(1);
    let predictions = predictions(model, &all_logits, k);
    let per_image = target.resolve(&all_logits, k, &model.card)?;
    if *target != Target::All {
        let targets: Vec<usize> = per_image.iter().map(|t| t[0]).collect();
        let explanations = explain_rows(methods, x, acts.as_ref(), &targets)?;
        let inputs = (0..n).collect();
        each(
            &predictions,
            Pass {
                x,
                inputs,
                targets,
                explanations,
            },
        )?;
        return Ok(predictions);
    }
    for (i, classes) in per_image.iter().enumerate() {
        let image = x.clone().narrow(0, i, 1);
        for classes in classes.chunks(IMAGES_PER_PASS) {
            let rows = repeat_rows(&image, classes.len());
            let (acts, _) = forward_if_it_fits(model, &rows)?;
            let explanations = explain_rows(methods, &rows, acts.as_ref(), classes)?;
            each(
                &predictions,
                Pass {
                    x: &rows,
                    inputs: vec![i; classes.len()],
                    targets: classes.to_vec(),
                    explanations,
                },
            )?;
        }
    }
    Ok(predictions)
}

/// The forward pass of `x` kept for the methods and its logits; on a GPU where the batch does
/// not fit one pass ([`fit::fits_in_one_pass`]), the logits in sub-batches and no pass kept
/// (each method then runs its own, in sub-batches that fit).
fn forward_if_it_fits(model: &Model, x: &T4) -> Result<(Option<Activations>, Vec<f32>)> {
    let row_bytes = fit::RowBytes::default();
    if fit::fits_in_one_pass(model, &row_bytes, x)? {
        let acts = forward_all(model, x)?;
        let all_logits = logits(model, &acts)?;
        return Ok((Some(acts), all_logits));
    }
    let parts = fit::in_batches_that_fit(model, &row_bytes, x, 0, "predictions", |_, rows| {
        logits(model, &forward_all(model, rows)?)
    })?;
    Ok((None, parts.concat()))
}

/// Every method on rows `x`, with their forward pass `acts` where it was kept.
fn explain_rows(
    methods: &[Prepared],
    x: &T4,
    acts: Option<&Activations>,
    targets: &[usize],
) -> Result<Vec<Explanation>> {
    methods
        .iter()
        .map(|m| {
            match acts {
                Some(acts) => m.explain_forward(x, acts, targets),
                None => m.explain(x, targets),
            }
            .with_context(|| format!("method {}", m.label()))
        })
        .collect()
}

fn predictions(model: &Model, all_logits: &[f32], k: usize) -> Predictions {
    let logits: Vec<Vec<f32>> = all_logits.chunks(k.max(1)).map(<[f32]>::to_vec).collect();
    let head = model.card.head();
    let probs = logits.iter().map(|r| head.probabilities(r)).collect();
    Predictions { logits, probs }
}
