//! The methods of a study and their maps: one way to build them from the names a user typed
//! ([`study_methods`]) and one way to get their maps ([`explain_planes`]), so every study takes
//! the same method specs as `relevance explain`.

use serde_json::Value;

use super::super::StudyError;
use super::concepts::{
    ConceptSpec, PreparedConcept, concept_planes, is_concept_spec, parse_concept_specs,
};
use crate::engine::{Activations, Rules};
use crate::graph::Model;
use crate::methods::cam::{CamWeighting, Planes, finish_cams, layer_gradients, resolve_layer};
use crate::methods::{MapKind, MapStyle, MethodOptions, MethodSpec, Prepared};
use crate::tensor::{T4, to_vec};

/// A method of a study: a method spec (as `relevance explain` takes it), or the `random`
/// control (uniform noise maps, seeded per image, the floor every method should beat).
pub enum StudyMethod {
    /// A method spec, prepared per model with [`StudyMethod::prepare`].
    Spec(Box<MethodSpec>),
    /// Uniform random maps in `[0, 1)`, drawn from `seed` and the image's key.
    Random {
        /// Seed of the draws.
        seed: u64,
    },
    /// One rank of a layer's CRP concepts ([`super::concepts`]).
    Concept(Box<ConceptSpec>),
}

/// A study method bound to one model: prepared once, then run on batch after batch.
pub enum PreparedMethod<'m> {
    /// A prepared method.
    Method(Box<Prepared<'m>>),
    /// The random control.
    Random {
        /// Seed of the draws.
        seed: u64,
    },
    /// A concept rank bound to the model.
    Concept(Box<PreparedConcept>),
}

/// Name of the random control method.
pub const RANDOM_METHOD: &str = "random";

impl StudyMethod {
    /// How its maps are drawn (the random control as a unit map).
    pub fn style(&self) -> MapStyle {
        match self {
            StudyMethod::Spec(spec) => spec.info.style,
            StudyMethod::Random { .. } => MapStyle::Unit,
            StudyMethod::Concept(_) => MapStyle::Signed,
        }
    }

    /// Whether [`explain_planes`] can give raw (un-normalised) maps besides the planes: the
    /// gradient CAMs, whose planes are min-max scaled per image.
    pub fn has_raw(&self) -> bool {
        self.gradient_cam().is_some()
    }

    fn gradient_cam(&self) -> Option<CamWeighting> {
        let StudyMethod::Spec(spec) = self else {
            return None;
        };
        CamWeighting::ALL
            .into_iter()
            .find(|w| w.name() == spec.info.name)
    }

    /// Binds the method to `model` (LRP folds BatchNorm and binds its rules, CAMs resolve their
    /// layer), once per model and study.
    pub fn prepare<'m>(&self, model: &'m Model) -> Result<PreparedMethod<'m>, StudyError> {
        Ok(match self {
            StudyMethod::Spec(spec) => {
                let prepared = spec.prepare(model)?;
                for warning in prepared.warnings() {
                    eprintln!("warning: {warning}");
                }
                PreparedMethod::Method(Box::new(prepared))
            }
            StudyMethod::Random { seed } => PreparedMethod::Random { seed: *seed },
            StudyMethod::Concept(spec) => PreparedMethod::Concept(Box::new(spec.prepare(model)?)),
        })
    }
}

/// The methods named in `names` (repeats dropped), each parsed as a method spec over `opts` and
/// labelled by the spec as written ([`MethodSpec::label`]): that label is the method's name in
/// every table, CSV and figure. `random` is the control; `crp(layer=…,top=k)` gives one method
/// per concept rank ([`super::concepts`]).
pub fn study_methods(
    names: &[String],
    opts: &MethodOptions,
) -> Result<Vec<(String, StudyMethod)>, StudyError> {
    let mut out: Vec<(String, StudyMethod)> = Vec::new();
    for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
        let methods: Vec<(String, StudyMethod)> = if name == RANDOM_METHOD {
            vec![(name.to_string(), StudyMethod::Random { seed: opts.seed })]
        } else if is_concept_spec(name) {
            parse_concept_specs(name, opts)?
                .into_iter()
                .map(|c| (c.label(), StudyMethod::Concept(Box::new(c))))
                .collect()
        } else {
            let spec = MethodSpec::parse(name, opts)?;
            vec![(spec.label(), StudyMethod::Spec(Box::new(spec)))]
        };
        for (label, method) in methods {
            if !out.iter().any(|(n, _)| *n == label) {
                out.push((label, method));
            }
        }
    }
    if out.is_empty() {
        return Err(StudyError::Invalid("no methods given (--methods)".into()));
    }
    Ok(out)
}

/// Runs `score` for every model × method (models outer, as the resume folders are laid out)
/// and sums what it reports as `(computed, reused)`.
pub fn score_all(
    models: &[super::StudyModel],
    methods: &[(String, StudyMethod)],
    mut score: impl FnMut(&super::StudyModel, &str, &StudyMethod) -> Result<(usize, usize), StudyError>,
) -> Result<(usize, usize), StudyError> {
    let (mut computed, mut reused) = (0, 0);
    for model in models {
        for (name, method) in methods {
            let (new, old) = score(model, name, method)?;
            computed += new;
            reused += old;
        }
    }
    Ok((computed, reused))
}

/// Prepares every method of a study for one model.
pub fn prepare_all<'m>(
    methods: &[(String, StudyMethod)],
    model: &'m Model,
) -> Result<Vec<PreparedMethod<'m>>, StudyError> {
    methods.iter().map(|(_, m)| m.prepare(model)).collect()
}

/// One method's maps of a batch: `planes[r]` for row `r`, and for gradient CAMs when asked the
/// raw CAMs `raw[r]`.
pub struct BatchMaps {
    /// `H·W` planes as the method's map is drawn.
    pub planes: Vec<Vec<f32>>,
    /// `max(Σ_c w_c A_c, 0)` upsampled to `H × W` by the same bilinear resize, before the per-image
    /// min-max scaling; `None` unless asked for and the method is a gradient CAM.
    pub raw: Option<Vec<Vec<f32>>>,
}

/// One `[H, W]` plane per row of `x` (`[N, C, H, W]`) for `targets`, reduced by the method's
/// [`MapStyle`] as `relevance explain` draws it (signed: channel sum; magnitude: `max_c |v|`;
/// CAMs as they are). `acts` is the forward pass of the method's model on `x`; `keys[r]` seeds
/// the random control per row. With `raw`, gradient CAMs also return their raw maps from the
/// same backward pass.
pub fn explain_planes(
    method: &PreparedMethod,
    x: &T4,
    acts: &Activations,
    targets: &[usize],
    keys: &[String],
    raw: bool,
) -> Result<BatchMaps, StudyError> {
    super::stop::check_stop()?;
    let [n, c, h, w] = x.dims();
    let m = match method {
        PreparedMethod::Random { seed } => {
            let planes = keys
                .iter()
                .map(|k| {
                    let mut rng = crate::rng::Rng::derive(*seed, k);
                    (0..h * w).map(|_| rng.uniform()).collect()
                })
                .collect();
            return Ok(BatchMaps { planes, raw: None });
        }
        PreparedMethod::Concept(concept) => {
            let (planes, _) = concept_planes(concept, x, targets, 1)?;
            return Ok(BatchMaps { planes, raw: None });
        }
        PreparedMethod::Method(m) => m,
    };
    let weighting = CamWeighting::ALL
        .into_iter()
        .find(|w| w.name() == m.spec().info.name);
    if let (true, Some(weighting)) = (raw, weighting) {
        let (maps, raw) = gradient_cam_both(m.model(), x, acts, targets, weighting, m.layer())?;
        return Ok(BatchMaps {
            planes: maps
                .chunks(h * w)
                .map(|p| crate::report::heatmap::plane(p, 1, m.style()))
                .collect(),
            raw: Some(raw.chunks(h * w).map(<[f32]>::to_vec).collect()),
        });
    }
    let maps = to_vec(&m.explain_forward(x, acts, targets)?.maps);
    let channels = match m.kind() {
        MapKind::Input => c,
        MapKind::Cam => 1,
    };
    let per = channels * h * w;
    let planes = (0..n)
        .map(|r| crate::report::heatmap::plane(&maps[r * per..(r + 1) * per], channels, m.style()))
        .collect();
    Ok(BatchMaps { planes, raw: None })
}

/// [`explain_planes`] with the rows of `x` taken in groups of `group` (an image, then its
/// perturbed versions): a CRP concept is matched by channel within a group — the first row's
/// channel of that rank is explained in every row ([`concept_planes`]); other methods explain
/// each row on its own.
pub fn explain_planes_grouped(
    method: &PreparedMethod,
    x: &T4,
    acts: &Activations,
    targets: &[usize],
    keys: &[String],
    group: usize,
) -> Result<Vec<Vec<f32>>, StudyError> {
    match method {
        PreparedMethod::Concept(concept) => Ok(concept_planes(concept, x, targets, group)?.0),
        _ => Ok(explain_planes(method, x, acts, targets, keys, false)?.planes),
    }
}

impl PreparedMethod<'_> {
    /// How its maps are drawn (the random control as a unit map).
    pub fn style(&self) -> MapStyle {
        match self {
            PreparedMethod::Method(m) => m.style(),
            PreparedMethod::Random { .. } => MapStyle::Unit,
            PreparedMethod::Concept(_) => MapStyle::Signed,
        }
    }
}

/// A gradient CAM of the batch, both as the method returns it (`[N·H·W]`, per image in
/// `[0, 1]`, the same computation as the method's own) and raw (`max(map, 0)` resized to
/// `H × W`, no scaling).
fn gradient_cam_both(
    model: &Model,
    x: &T4,
    acts: &Activations,
    targets: &[usize],
    weighting: CamWeighting,
    layer: Option<&str>,
) -> Result<(Vec<f32>, Vec<f32>), StudyError> {
    let id = resolve_layer(model, acts, layer)?;
    let (a, g) = layer_gradients(model, acts, targets, id, &Rules::gradient())?;
    let (a, g) = (Planes::of(&a), Planes::of(&g));
    let [_, _, h, w] = a.dims;
    let [_, _, oh, ow] = x.dims();
    let maps = weighting.maps(&a, &g);
    let mut raw = Vec::with_capacity(maps.len() * oh * ow);
    for m in &maps {
        let relu: Vec<f32> = m.iter().map(|v| v.max(0.0)).collect();
        raw.extend(crate::methods::cam::resize::resize_cv2_linear(
            &relu, h, w, oh, ow,
        ));
    }
    Ok((to_vec(&finish_cams(maps, h, w, oh, ow)), raw))
}

/// Predicted class and class probabilities (under the model's head, see [`crate::graph::Head`])
/// of every row of a forward pass.
pub fn predictions(
    model: &Model,
    acts: &Activations,
    rows: usize,
) -> Result<Vec<(usize, Vec<f32>)>, StudyError> {
    let logits = crate::methods::pass::logits(model, acts)?;
    let k = logits.len() / rows.max(1);
    Ok(logits
        .chunks(k)
        .map(|row| {
            let p = model.card.head().probabilities(row);
            (crate::metrics::scorer::argmax(row), p)
        })
        .collect())
}

/// The method options of a run as `summary.json` records them, with the flag names of
/// `relevance explain`, so a reader sees e.g. which `resnet_skip` the LRP maps used.
pub fn method_options_json(o: &MethodOptions) -> Value {
    serde_json::json!({
        "layer": o.layer,
        "steps": o.steps,
        "integration": format!("{:?}", o.quadrature),
        "samples": o.samples,
        "noise": o.noise,
        "window": o.window,
        "stride": o.stride,
        "baseline": o.baseline.as_ref().map(ToString::to_string),
        "seed": o.seed,
        "batch": o.batch,
        "resnet_skip": o.lrp.skip.to_string(),
        "relevance_start": o.lrp.start.to_string(),
    })
}
