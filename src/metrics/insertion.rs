//! Insertion and deletion (Petsiuk, Das & Saenko 2018, "RISE: Randomized Input Sampling for
//! Explanation of Black-box Models", BMVC).
//!
//! Pixels are ranked by the map, most relevant first. **Deletion** starts from the image and
//! replaces the ranked pixels, step by step, with a substrate (RISE: zero); **insertion** starts
//! from a substrate (RISE: the image blurred, kernel 11, σ 5) and puts the image's pixels back in
//! the same order. After every step the target's score is recorded; a point `k` of a curve is
//! `(fraction of pixels changed after k steps, score)`, from 0 to 1. The AUC is the trapezoid
//! rule over the fraction axis, so steps of unequal size (the last one, or quantised levels)
//! are weighted by their width. A good explanation has a high insertion AUC and a low deletion
//! AUC; the **ID score** is `AUC_ins − AUC_del`.
//!
//! RISE's own `auc` assumes equal steps (`(Σy − y₀/2 − y_n/2)/n`); the two agree whenever the
//! step divides `H·W` (e.g. 224 pixels on 224×224). All channels of a pixel change together.
//! Every step of one image is scored in batches of the scorer's batch size; the pixel order is
//! sorted once and shared by both curves.

use serde::Serialize;

use super::curve::Curve;
use super::order::{Schedule, Step, Ties};
use super::scorer::{FollowedClass, ScoreKind, Scorer, resolve_target, score_sequence};
use super::{ImageView, MapView, MetricError, Substrate};

/// Conventions of insertion / deletion.
#[derive(Clone, Debug, PartialEq)]
pub struct InsertionOptions {
    /// Pixels per step (default `1/224` of the pixels, RISE's 224 steps on 224×224).
    pub step: Step,
    /// Tie handling (default stable order).
    pub ties: Ties,
    /// Class followed (default the predicted class, as RISE).
    pub target: FollowedClass,
    /// What insertion starts from (default RISE's blur, kernel 11, σ 5).
    pub insertion_substrate: Substrate,
    /// What deletion replaces pixels with (default zero in input space).
    pub deletion_substrate: Substrate,
}

impl Default for InsertionOptions {
    fn default() -> Self {
        InsertionOptions {
            step: Step::Fraction(1.0 / 224.0),
            ties: Ties::Stable,
            target: FollowedClass::Predicted,
            insertion_substrate: Substrate::rise_blur(),
            deletion_substrate: Substrate::Zero,
        }
    }
}

/// The conventions a result was computed with, stated beside the numbers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Conventions {
    /// Substrate, described.
    pub substrate: String,
    /// Step rule as asked.
    pub step: Step,
    /// Number of steps (curve points − 1).
    pub steps: usize,
    /// Tie handling.
    pub ties: Ties,
    /// Score kind of the scorer.
    pub score: ScoreKind,
    /// Class rule as asked.
    pub target: FollowedClass,
    /// Class actually followed.
    pub class: usize,
    /// How the AUC is computed.
    pub auc: &'static str,
}

/// One insertion or deletion curve with its conventions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CurveResult {
    /// The curve and its AUC.
    pub curve: Curve,
    /// How it was computed.
    pub conventions: Conventions,
}

/// Insertion and deletion of one image and map, and their difference.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct InsertionDeletion {
    /// Insertion curve (substrate → image).
    pub insertion: CurveResult,
    /// Deletion curve (image → substrate).
    pub deletion: CurveResult,
    /// `AUC_ins − AUC_del`.
    pub id_score: f64,
}

const AUC_RULE: &str = "trapezoid over the fraction of pixels changed";

/// Which way a curve goes.
#[derive(Clone, Copy, PartialEq)]
enum Direction {
    Insert,
    Delete,
}

/// Runs one curve over a prepared schedule.
fn curve(
    scorer: &dyn Scorer,
    image: &ImageView,
    schedule: &Schedule,
    substrate: &Substrate,
    direction: Direction,
    class: usize,
) -> Result<Vec<f32>, MetricError> {
    let sub = substrate.build(image)?;
    let (start, source): (&[f32], &[f32]) = match direction {
        Direction::Insert => (&sub, image.data),
        Direction::Delete => (image.data, &sub),
    };
    let plane = image.pixels();
    let mut current = start.to_vec();
    score_sequence(
        scorer,
        image.shape(),
        schedule.steps() + 1,
        class,
        |i, buffer| {
            if i > 0 {
                for &p in schedule.step(i - 1) {
                    for c in 0..image.channels {
                        current[c * plane + p] = source[c * plane + p];
                    }
                }
            }
            buffer.copy_from_slice(&current);
        },
    )
}

fn prepare(
    scorer: &dyn Scorer,
    image: &ImageView,
    map: &MapView,
    opts: &InsertionOptions,
) -> Result<(Schedule, usize), MetricError> {
    image.check_map(map)?;
    let schedule = Schedule::new(map.data, opts.step, opts.ties)?;
    let (class, _) = resolve_target(scorer, image, opts.target)?;
    Ok((schedule, class))
}

fn result(
    scorer: &dyn Scorer,
    schedule: &Schedule,
    scores: Vec<f32>,
    substrate: &Substrate,
    opts: &InsertionOptions,
    class: usize,
) -> CurveResult {
    CurveResult {
        curve: Curve::new(schedule.fractions(), scores),
        conventions: Conventions {
            substrate: substrate.describe(),
            step: opts.step,
            steps: schedule.steps(),
            ties: opts.ties,
            score: scorer.kind(),
            target: opts.target,
            class,
            auc: AUC_RULE,
        },
    }
}

/// The insertion curve of `map` on `image` (substrate [`InsertionOptions::insertion_substrate`]).
pub fn insertion(
    scorer: &dyn Scorer,
    image: &ImageView,
    map: &MapView,
    opts: &InsertionOptions,
) -> Result<CurveResult, MetricError> {
    let (schedule, class) = prepare(scorer, image, map, opts)?;
    let sub = &opts.insertion_substrate;
    let scores = curve(scorer, image, &schedule, sub, Direction::Insert, class)?;
    Ok(result(scorer, &schedule, scores, sub, opts, class))
}

/// The deletion curve of `map` on `image` (substrate [`InsertionOptions::deletion_substrate`]).
pub fn deletion(
    scorer: &dyn Scorer,
    image: &ImageView,
    map: &MapView,
    opts: &InsertionOptions,
) -> Result<CurveResult, MetricError> {
    let (schedule, class) = prepare(scorer, image, map, opts)?;
    let sub = &opts.deletion_substrate;
    let scores = curve(scorer, image, &schedule, sub, Direction::Delete, class)?;
    Ok(result(scorer, &schedule, scores, sub, opts, class))
}

/// Insertion, deletion and the ID score `AUC_ins − AUC_del`, sharing one pixel order.
pub fn insertion_deletion(
    scorer: &dyn Scorer,
    image: &ImageView,
    map: &MapView,
    opts: &InsertionOptions,
) -> Result<InsertionDeletion, MetricError> {
    let (schedule, class) = prepare(scorer, image, map, opts)?;
    let ins_sub = &opts.insertion_substrate;
    let del_sub = &opts.deletion_substrate;
    let ins = curve(scorer, image, &schedule, ins_sub, Direction::Insert, class)?;
    let del = curve(scorer, image, &schedule, del_sub, Direction::Delete, class)?;
    let insertion = result(scorer, &schedule, ins, ins_sub, opts, class);
    let deletion = result(scorer, &schedule, del, del_sub, opts, class);
    Ok(InsertionDeletion {
        id_score: insertion.curve.auc - deletion.curve.auc,
        insertion,
        deletion,
    })
}
