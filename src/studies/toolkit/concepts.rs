//! CRP concepts as study methods: `crp(layer=features.28,top=3)` stands for the conditional
//! heatmaps of the layer's three most relevant channels, one study method per rank
//! (`crp(layer=features.28,rank=1)` … `rank=3`), so every table, test and figure of a study
//! treats each concept rank like any other method.
//!
//! The map of rank `r` for an image is zennit-crp's conditional heatmap (Achtibat et al. 2023,
//! "From attribution maps to human-understandable explanations through Concept Relevance
//! Propagation", Nat. Mach. Intell.): the LRP relevance of the explained class, masked at
//! `layer` to one channel and propagated to the input, summed over the input channels
//! ([`crate::methods::crp::conditional_relevance`]). The channel is the `r`-th of the layer's
//! channels ranked by their relevance `R_c = Σ_{h,w} R_{c,h,w}` for the class
//! ([`crate::methods::crp::rank_channels`], as `relevance concepts`).
//!
//! Rows of a batch can be grouped ([`concept_planes`]'s `group`): the first row of each group
//! (an original image) chooses the channel and every row of the group (its perturbed versions)
//! is explained for that same channel — the matching by channel that `stability` needs, since
//! a perturbed image's own top channel may be a different concept.
//!
//! Parameters: `layer` (required; a node name, as `relevance concepts --layer`), `top` (ranks
//! 1…top) or `rank` (one rank), and `composite`, `skip`, `start` as `relevance concepts`
//! (defaults: `epsilon-plus-flat`, and the command's `--resnet-skip` / `--relevance-start`).

use super::super::StudyError;
use crate::graph::{Model, NodeId};
use crate::methods::MethodOptions;
use crate::methods::crp::{conditional_relevance, rank_channels};
use crate::methods::lrp::{Composite, LrpModel, LrpOptions};
use crate::tensor::{T4, to_vec};

/// The name of CRP concept methods in study method lists.
pub const CRP_METHOD: &str = "crp";

/// Parameters `crp(…)` accepts.
const CRP_PARAMS: &[&str] = &["layer", "top", "rank", "composite", "skip", "start"];

/// One concept rank of a layer, as a study method.
#[derive(Clone, Debug)]
pub struct ConceptSpec {
    /// Node name of the layer whose channels are the concepts.
    pub layer: String,
    /// 1-based rank of the channel by its relevance for the explained class.
    pub rank: usize,
    /// LRP composite of the conditional passes.
    pub composite: Composite,
    /// Skip treatment and starting relevance.
    pub lrp: LrpOptions,
    /// The parameters as written, without `top`/`rank` (for the label).
    written: Vec<(String, String)>,
}

impl ConceptSpec {
    /// The label of this rank: the spec as written with `top=k` replaced by `rank=r`.
    pub fn label(&self) -> String {
        let mut params: Vec<String> = self
            .written
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        params.push(format!("rank={}", self.rank));
        format!("{CRP_METHOD}({})", params.join(","))
    }

    /// Binds the LRP rules to `model` and finds the layer.
    pub fn prepare(&self, model: &Model) -> Result<PreparedConcept, StudyError> {
        let lrp = LrpModel::new(model, self.composite.clone(), &self.lrp)?;
        let layer = lrp.find(&self.layer)?;
        Ok(PreparedConcept {
            lrp,
            layer,
            rank: self.rank,
        })
    }
}

/// Whether `text` names a CRP concept method (`crp` or `crp(…)`).
pub fn is_concept_spec(text: &str) -> bool {
    let name = text.split('(').next().unwrap_or("").trim();
    name == CRP_METHOD
}

/// Parses `crp(layer=L,top=k)` (or `rank=r`) into one [`ConceptSpec`] per rank.
pub fn parse_concept_specs(
    text: &str,
    base: &MethodOptions,
) -> Result<Vec<ConceptSpec>, StudyError> {
    let bad = |why: String| StudyError::Invalid(format!("method '{text}': {why}"));
    let (_, params) = crate::methods::spec::split_params(text.trim())?;
    let mut spec = ConceptSpec {
        layer: String::new(),
        rank: 1,
        composite: Composite::preset("epsilon-plus-flat").expect("a preset"),
        lrp: base.lrp.clone(),
        written: Vec::new(),
    };
    let (mut top, mut rank) = (None, None);
    for (key, value) in &params {
        let positive = || -> Result<usize, StudyError> {
            value
                .parse::<usize>()
                .ok()
                .filter(|&n| n >= 1)
                .ok_or_else(|| bad(format!("{key}={value}: expected a whole number ≥ 1")))
        };
        match key.as_str() {
            "layer" => spec.layer = value.clone(),
            "top" => top = Some(positive()?),
            "rank" => rank = Some(positive()?),
            "composite" => {
                spec.composite = value
                    .parse()
                    .map_err(|e: String| bad(format!("composite={value}: {e}")))?
            }
            "skip" => spec.lrp.skip = value.parse().map_err(|e| bad(format!("skip: {e}")))?,
            "start" => spec.lrp.start = value.parse().map_err(|e| bad(format!("start: {e}")))?,
            other => {
                return Err(bad(format!(
                    "crp has no parameter '{other}'; valid: {}",
                    CRP_PARAMS.join(", ")
                )));
            }
        }
        if key != "top" && key != "rank" {
            spec.written.push((key.clone(), value.clone()));
        }
    }
    if spec.layer.is_empty() {
        return Err(bad(
            "crp needs the layer whose channels are the concepts, e.g. crp(layer=features.28,top=3)"
                .into(),
        ));
    }
    let ranks = match (top, rank) {
        (Some(_), Some(_)) => return Err(bad("give top or rank, not both".into())),
        (Some(k), None) => 1..=k,
        (None, Some(r)) => r..=r,
        (None, None) => 1..=1,
    };
    Ok(ranks
        .map(|rank| ConceptSpec {
            rank,
            ..spec.clone()
        })
        .collect())
}

/// A concept rank bound to one model.
pub struct PreparedConcept {
    lrp: LrpModel,
    layer: NodeId,
    rank: usize,
}

impl PreparedConcept {
    /// The channel of rank `rank` for one image (`[1, C, H, W]`) and class: the layer's
    /// channels ranked by `Σ_{h,w} R_{c,h,w}`, largest first.
    pub fn channel(&self, x: &T4, target: usize) -> Result<usize, StudyError> {
        let acts = self.lrp.forward(x.clone())?;
        let (seed, _) = self.lrp.start_relevance(&acts, &[target])?;
        let at_layer = self
            .lrp
            .propagate(&acts, self.lrp.logits_node(), seed, &[self.layer])?
            .remove(0);
        let channels = at_layer.dims()[1];
        let ranking = rank_channels(&at_layer, self.rank);
        ranking
            .get(self.rank - 1)
            .map(|r| r.channel)
            .ok_or_else(|| {
                StudyError::Invalid(format!(
                    "crp rank {} asked for, but the layer has {channels} channels",
                    self.rank
                ))
            })
    }

    /// The conditional heatmap (`[H·W]`, summed over input channels) of one image for
    /// `channel` and `target`.
    pub fn heatmap(&self, x: &T4, target: usize, channel: usize) -> Result<Vec<f32>, StudyError> {
        let result = conditional_relevance(&self.lrp, x, target, self.layer, &[vec![channel]], 1)?;
        Ok(to_vec(&result.heatmaps()))
    }
}

/// The conditional heatmaps of the rows of `x` (`[N, C, H, W]`) for `targets`, rows taken in
/// groups of `group`: the first row of each group picks the channel of the concept's rank and
/// every row of the group is explained for that channel. Returns the `H·W` plane of each row
/// and the channel of each group.
pub fn concept_planes(
    concept: &PreparedConcept,
    x: &T4,
    targets: &[usize],
    group: usize,
) -> Result<(Vec<Vec<f32>>, Vec<usize>), StudyError> {
    let [n, c, h, w] = x.dims();
    if group == 0 || n % group != 0 || targets.len() != n {
        return Err(StudyError::Invalid(format!(
            "concept maps: {n} rows, {} targets, groups of {group}",
            targets.len()
        )));
    }
    let values = to_vec(x);
    let per = c * h * w;
    let row =
        |r: usize| crate::tensor::from_vec(values[r * per..(r + 1) * per].to_vec(), [1, c, h, w]);
    let mut planes = Vec::with_capacity(n);
    let mut channels = Vec::with_capacity(n / group);
    for first in (0..n).step_by(group) {
        let channel = concept.channel(&row(first), targets[first])?;
        channels.push(channel);
        for (r, &target) in targets.iter().enumerate().skip(first).take(group) {
            planes.push(concept.heatmap(&row(r), target, channel)?);
        }
    }
    Ok((planes, channels))
}
