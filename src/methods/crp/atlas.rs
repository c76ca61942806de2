//! A concept atlas: relevance and activation maximisation over a folder of images for every
//! channel of one layer, drawn as one PNG per channel (top row: the `k` most relevant
//! references, bottom row: the `k` most activating, each cropped to its receptive field) plus
//! one JSON file listing the references, their scores, neurons and crop boxes.
//!
//! Two passes: [`scan`] scores every sample and keeps each channel's best `k` candidates
//! ([`Candidates`]); [`draw`] computes the heatmaps of the chosen references and writes the
//! atlas. A sharded run scans its own samples (numbered by their place in the whole data set)
//! and keeps its candidates; [`merge_candidates`] takes the global best `k` of the shards'
//! candidates with the tie-break of one scan (equal scores: the earlier sample first), so
//! drawing the merged candidates gives exactly the atlas of one unsharded run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::crop::{CropBox, CropStyle, draw_reference};
use super::maximize::{NeuronRequest, Reference, TopK, neuron_heatmaps};
use crate::data::{Image, image::load_image};
use crate::engine::Activations;
use crate::graph::{ModelCard, NodeId};
use crate::methods::MethodError;
use crate::methods::lrp::LrpModel;
use crate::tensor::{T4, from_vec, to_vec};

/// Choices of an atlas run.
#[derive(Clone, Debug)]
pub struct AtlasOptions {
    /// Layer (node name).
    pub layer: String,
    /// References per channel and mode.
    pub top_k: usize,
    /// Channels to draw (all when `None`).
    pub channels: Option<Vec<usize>>,
    /// Images per forward pass in the statistics pass, and heatmap rows per backward pass.
    pub batch: usize,
    /// Side of a tile in the PNG grid, pixels.
    pub tile: usize,
    /// Crop and dimming.
    pub style: CropStyle,
}

impl Default for AtlasOptions {
    fn default() -> Self {
        AtlasOptions {
            layer: String::new(),
            top_k: 8,
            channels: None,
            batch: 16,
            tile: 96,
            style: CropStyle::default(),
        }
    }
}

/// How the class explained for a sample was chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetSource {
    /// The sample's folder is named after a class of the model card.
    Label,
    /// No folder label: the predicted class.
    Predicted,
}

/// A sample of the data set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The image file.
    pub file: PathBuf,
    /// Class whose relevance was measured.
    pub target: usize,
    /// Where the target came from.
    pub target_source: TargetSource,
}

/// One drawn reference.
#[derive(Clone, Debug, Serialize)]
pub struct DrawnReference {
    /// Index into [`Atlas::samples`].
    pub sample: usize,
    /// Normalised channel score.
    pub score: f32,
    /// `[y, x]` of the reference neuron in the layer's map.
    pub neuron: [usize; 2],
    /// Receptive-field crop in input pixels.
    pub crop: CropBox,
}

/// The atlas of one channel.
#[derive(Clone, Debug, Serialize)]
pub struct ChannelAtlas {
    /// Channel index.
    pub channel: usize,
    /// Most relevant references, best first.
    pub relevance: Vec<DrawnReference>,
    /// Most activating references, best first.
    pub activation: Vec<DrawnReference>,
    /// PNG file (relative to the output folder).
    pub image: String,
}

/// A complete atlas.
#[derive(Clone, Debug, Serialize)]
pub struct Atlas {
    /// Layer name.
    pub layer: String,
    /// Composite of the LRP pass.
    pub composite: String,
    /// Skip-connection mode.
    pub skip: String,
    /// Starting relevance.
    pub start: String,
    /// References per mode.
    pub top_k: usize,
    /// Samples, indexed by the references.
    pub samples: Vec<Sample>,
    /// One entry per drawn channel.
    pub channels: Vec<ChannelAtlas>,
}

/// The class named by the folder holding `file`, if the card knows it.
fn folder_label(file: &Path, card: &ModelCard) -> Option<usize> {
    let folder = file.parent()?.file_name()?.to_str()?;
    card.classes.iter().position(|c| c == folder)
}

/// `file` fitted to the card's input size, with the normalised `[1, c, h, w]` tensor of it.
fn load_fitted(file: &Path, card: &ModelCard) -> Result<(Image, T4), MethodError> {
    let img = load_image(file).map_err(|e| MethodError::Invalid(e.to_string()))?;
    let fitted = img.fit(card);
    let values = fitted.to_planar(&card.normalization.affine(card.channels));
    let x = from_vec(values, [1, fitted.channels, fitted.height, fitted.width]);
    Ok((fitted, x))
}

/// Runs relevance and activation maximisation over `files` and draws the atlas into `out`
/// (PNG per channel and `atlas.json`); returns the atlas.
pub fn build_atlas(
    lrp: &LrpModel,
    card: &ModelCard,
    files: &[PathBuf],
    opts: &AtlasOptions,
    out: &Path,
) -> Result<Atlas, MethodError> {
    let numbered: Vec<(usize, PathBuf)> = files.iter().cloned().enumerate().collect();
    let candidates = scan(lrp, card, &numbered, opts)?;
    draw(lrp, card, candidates, opts, out)
}

/// Pass 2 and the files: draws the references `candidates` chose for the channels asked for
/// into `out` (PNG per channel and `atlas.json`); returns the atlas. `candidates` must number
/// its samples `0..n` (as [`scan`] of a whole data set and [`merge_candidates`] do).
pub fn draw(
    lrp: &LrpModel,
    card: &ModelCard,
    candidates: Candidates,
    opts: &AtlasOptions,
    out: &Path,
) -> Result<Atlas, MethodError> {
    let layer = lrp.find(&opts.layer)?;
    let stats = Statistics::from_candidates(candidates)?;
    let chosen = chosen_channels(opts, stats.by_relevance.per_channel.len())?;
    let wanted = wanted_references(&stats, &chosen);
    let drawn = draw_references(lrp, card, layer, &stats.samples, &wanted, opts)?;
    let mut channels = Vec::with_capacity(chosen.len());
    for &c in &chosen {
        channels.push(draw_channel(c, &stats, &drawn, opts, out)?);
    }
    let atlas = Atlas {
        layer: opts.layer.clone(),
        composite: lrp.composite.name().to_string(),
        skip: lrp.options.skip.to_string(),
        start: lrp.options.start.to_string(),
        top_k: opts.top_k,
        samples: stats.samples,
        channels,
    };
    write_atlas_json(&atlas, out)?;
    Ok(atlas)
}

/// What the statistics pass learns: every sample with its target, and the best references of
/// every channel by relevance and by activation.
struct Statistics {
    samples: Vec<Sample>,
    by_relevance: TopK,
    by_activation: TopK,
}

impl Statistics {
    /// The statistics of candidates numbered `0..n`.
    fn from_candidates(c: Candidates) -> Result<Self, MethodError> {
        if c.samples.iter().enumerate().any(|(i, (id, _))| i != *id) {
            return Err(MethodError::Invalid(
                "atlas candidates do not number their samples 0..n".into(),
            ));
        }
        Ok(Statistics {
            samples: c.samples.into_iter().map(|(_, s)| s).collect(),
            by_relevance: TopK::from_lists(c.top_k, c.by_relevance),
            by_activation: TopK::from_lists(c.top_k, c.by_activation),
        })
    }
}

/// What pass 1 keeps of some samples: each sample with its number in the whole data set, and
/// per channel the best `top_k` references (by relevance, by activation), best first, equal
/// scores in sample order. A shard of an atlas run writes these as `candidates.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidates {
    /// References kept per channel and mode.
    pub top_k: usize,
    /// The samples scanned: (number in the whole data set, sample), in that order.
    pub samples: Vec<(usize, Sample)>,
    /// Per channel, the best references by relevance.
    pub by_relevance: Vec<Vec<Reference>>,
    /// Per channel, the best references by activation.
    pub by_activation: Vec<Vec<Reference>>,
}

/// Pass 1: channel scores of every sample of `files` (each with its number in the whole data
/// set, in increasing order), `opts.batch` images per forward pass; the best `opts.top_k`
/// references of every channel.
pub fn scan(
    lrp: &LrpModel,
    card: &ModelCard,
    files: &[(usize, PathBuf)],
    opts: &AtlasOptions,
) -> Result<Candidates, MethodError> {
    let layer = lrp.find(&opts.layer)?;
    if files.is_empty() {
        return Err(MethodError::Invalid(
            "the data folder holds no images".into(),
        ));
    }
    let mut samples = Vec::with_capacity(files.len());
    let mut by_relevance: Option<TopK> = None;
    let mut by_activation: Option<TopK> = None;
    for chunk in files.chunks(opts.batch.max(1)) {
        let (relevance, acts) = score_batch(lrp, card, chunk, layer, &mut samples)?;
        let activation = acts.get(layer)?;
        let channels = activation.dims()[1];
        // References name samples by their number in the whole data set.
        let ids: Vec<usize> = chunk.iter().map(|(id, _)| *id).collect();
        by_relevance
            .get_or_insert_with(|| TopK::new(channels, opts.top_k))
            .observe(&relevance, &ids);
        by_activation
            .get_or_insert_with(|| TopK::new(channels, opts.top_k))
            .observe(activation, &ids);
    }
    Ok(Candidates {
        top_k: opts.top_k,
        samples,
        by_relevance: by_relevance.expect("at least one batch").per_channel,
        by_activation: by_activation.expect("at least one batch").per_channel,
    })
}

/// The candidates of one scan over the samples of all `parts` (shards of one run, each
/// numbering its samples in the whole data set): samples renumbered `0..n` in the order of
/// their numbers, and per channel the best `top_k` of all parts' references — by score, equal
/// scores in sample order, as one scan keeps them ([`TopK::offer`]). Parts must agree on
/// `top_k` and the channel count and hold disjoint samples.
pub fn merge_candidates(parts: Vec<Candidates>) -> Result<Candidates, MethodError> {
    let Some(first) = parts.first() else {
        return Err(MethodError::Invalid("no atlas candidates to merge".into()));
    };
    let (top_k, channels) = (first.top_k, first.by_relevance.len());
    if parts.iter().any(|p| {
        p.top_k != top_k || p.by_relevance.len() != channels || p.by_activation.len() != channels
    }) {
        return Err(MethodError::Invalid(
            "atlas candidates differ in top-k or channel count".into(),
        ));
    }
    let mut samples: Vec<(usize, Sample)> = parts
        .iter()
        .flat_map(|p| p.samples.iter().cloned())
        .collect();
    samples.sort_by_key(|(id, _)| *id);
    let renumber: BTreeMap<usize, usize> = samples
        .iter()
        .enumerate()
        .map(|(new, (old, _))| (*old, new))
        .collect();
    if renumber.len() != samples.len() {
        return Err(MethodError::Invalid(
            "a sample appears in two atlas shards".into(),
        ));
    }
    let merge_mode = |lists: &dyn Fn(&Candidates) -> &Vec<Vec<Reference>>| {
        (0..channels)
            .map(|c| {
                let mut all: Vec<Reference> =
                    parts.iter().flat_map(|p| lists(p)[c].clone()).collect();
                all.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.sample.cmp(&b.sample)));
                all.truncate(top_k);
                all.into_iter()
                    .map(|r| Reference {
                        sample: renumber[&r.sample],
                        ..r
                    })
                    .collect()
            })
            .collect::<Vec<Vec<Reference>>>()
    };
    let by_relevance = merge_mode(&|p| &p.by_relevance);
    let by_activation = merge_mode(&|p| &p.by_activation);
    Ok(Candidates {
        top_k,
        samples: samples
            .into_iter()
            .enumerate()
            .map(|(new, (_, s))| (new, s))
            .collect(),
        by_relevance,
        by_activation,
    })
}

/// One batch of the statistics pass: appends its samples to `samples` and returns the
/// relevance at `layer` together with the forward activations.
fn score_batch(
    lrp: &LrpModel,
    card: &ModelCard,
    chunk: &[(usize, PathBuf)],
    layer: NodeId,
    samples: &mut Vec<(usize, Sample)>,
) -> Result<(T4, Activations), MethodError> {
    let mut xs = Vec::new();
    for (_, file) in chunk {
        xs.push(load_fitted(file, card)?.1);
    }
    let acts = lrp.forward(T4::cat(xs, 0))?;
    let logits = to_vec(acts.get(lrp.logits_node())?);
    let classes = logits.len() / chunk.len();
    let mut targets = Vec::new();
    for (i, (id, file)) in chunk.iter().enumerate() {
        let row = &logits[i * classes..(i + 1) * classes];
        let (target, target_source) = sample_target(file, card, row);
        targets.push(target);
        let sample = Sample {
            file: file.clone(),
            target,
            target_source,
        };
        samples.push((*id, sample));
    }
    let (seed, _) = lrp.start_relevance(&acts, &targets)?;
    let relevance = lrp
        .propagate(&acts, lrp.logits_node(), seed, &[layer])?
        .remove(0);
    Ok((relevance, acts))
}

/// The class to explain for `file`: its folder label when the card knows it, else the class
/// with the highest logit in `row`.
fn sample_target(file: &Path, card: &ModelCard, row: &[f32]) -> (usize, TargetSource) {
    match folder_label(file, card) {
        Some(t) => (t, TargetSource::Label),
        None => {
            let best = (0..row.len())
                .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                .unwrap_or(0);
            (best, TargetSource::Predicted)
        }
    }
}

/// The channels to draw: `opts.channels` checked against the layer's `channels_total`, or all.
fn chosen_channels(opts: &AtlasOptions, channels_total: usize) -> Result<Vec<usize>, MethodError> {
    match &opts.channels {
        Some(list) => {
            if let Some(&bad) = list.iter().find(|&&c| c >= channels_total) {
                return Err(MethodError::Invalid(format!(
                    "channel {bad} does not exist; '{}' has {channels_total} channels",
                    opts.layer
                )));
            }
            Ok(list.clone())
        }
        None => Ok((0..channels_total).collect()),
    }
}

/// The neurons to draw per sample, without repeats, so that pass 2 runs one forward pass per
/// sample however many channels reference it.
fn wanted_references(stats: &Statistics, chosen: &[usize]) -> BTreeMap<usize, Vec<NeuronRequest>> {
    let mut wanted: BTreeMap<usize, Vec<NeuronRequest>> = BTreeMap::new();
    for &c in chosen {
        for r in stats.by_relevance.per_channel[c]
            .iter()
            .chain(&stats.by_activation.per_channel[c])
        {
            let list = wanted.entry(r.sample).or_default();
            let q = NeuronRequest {
                channel: c,
                neuron: r.neuron,
            };
            if !list.contains(&q) {
                list.push(q);
            }
        }
    }
    wanted
}

/// The drawn references, keyed by `(sample, channel, neuron)`, and the width of the layer's map
/// (to turn flat neuron indices into `[y, x]`).
struct Drawn {
    tiles: BTreeMap<(usize, usize, usize), (CropBox, Image)>,
    map_width: usize,
}

/// Pass 2: the single-neuron heatmap of every reference, one forward pass per sample.
fn draw_references(
    lrp: &LrpModel,
    card: &ModelCard,
    layer: NodeId,
    samples: &[Sample],
    wanted: &BTreeMap<usize, Vec<NeuronRequest>>,
    opts: &AtlasOptions,
) -> Result<Drawn, MethodError> {
    let mut drawn = Drawn {
        tiles: BTreeMap::new(),
        map_width: 1,
    };
    for (&sample, requests) in wanted {
        let (fitted, x) = load_fitted(&samples[sample].file, card)?;
        let acts = lrp.forward(x)?;
        drawn.map_width = acts.get(layer)?.dims()[3];
        let heat = neuron_heatmaps(lrp, &acts, layer, requests, opts.batch)?;
        let [_, h, w] = heat.dims();
        let values = to_vec(&heat);
        for (i, q) in requests.iter().enumerate() {
            let r = draw_reference(&fitted, &values[i * h * w..(i + 1) * h * w], &opts.style);
            drawn
                .tiles
                .insert((sample, q.channel, q.neuron), (r.crop, r.image));
        }
    }
    Ok(drawn)
}

/// Writes the PNG of channel `c` (relevance row above activation row) and describes it.
fn draw_channel(
    c: usize,
    stats: &Statistics,
    drawn: &Drawn,
    opts: &AtlasOptions,
    out: &Path,
) -> Result<ChannelAtlas, MethodError> {
    let rows = [
        &stats.by_relevance.per_channel[c],
        &stats.by_activation.per_channel[c],
    ];
    let file = format!("channel_{c:04}.png");
    let tiles: Vec<Vec<&Image>> = rows
        .iter()
        .map(|refs| {
            refs.iter()
                .map(|r| &drawn.tiles[&(r.sample, c, r.neuron)].1)
                .collect()
        })
        .collect();
    let png = grid_png(&tiles, opts.tile, opts.top_k)?;
    crate::io::write_atomic(&out.join(&file), &png)
        .map_err(|e| MethodError::Invalid(format!("{}: {e}", out.join(&file).display())))?;
    Ok(ChannelAtlas {
        channel: c,
        relevance: describe_references(rows[0], c, drawn),
        activation: describe_references(rows[1], c, drawn),
        image: file,
    })
}

/// The JSON description of channel `c`'s references: score, `[y, x]` neuron and crop box.
fn describe_references(refs: &[Reference], c: usize, drawn: &Drawn) -> Vec<DrawnReference> {
    refs.iter()
        .map(|r| DrawnReference {
            sample: r.sample,
            score: r.score,
            neuron: [r.neuron / drawn.map_width, r.neuron % drawn.map_width],
            crop: drawn.tiles[&(r.sample, c, r.neuron)].0,
        })
        .collect()
}

/// Writes `atlas.json` into `out`.
fn write_atlas_json(atlas: &Atlas, out: &Path) -> Result<(), MethodError> {
    let json = serde_json::to_string_pretty(atlas)
        .map_err(|e| MethodError::Invalid(format!("atlas JSON: {e}")))?;
    crate::io::write_text_atomic(&out.join("atlas.json"), &json)
        .map_err(|e| MethodError::Invalid(format!("{}: {e}", out.join("atlas.json").display())))
}

/// A PNG grid: one row per list, `columns` tiles of `tile × tile` pixels each (images scaled to
/// fit, centred on black), 2-pixel gaps.
fn grid_png(rows: &[Vec<&Image>], tile: usize, columns: usize) -> Result<Vec<u8>, MethodError> {
    let gap = 2;
    let columns = columns.max(1);
    let (gw, gh) = (
        columns * tile + (columns + 1) * gap,
        rows.len() * tile + (rows.len() + 1) * gap,
    );
    let mut canvas = ::image::RgbImage::new(gw as u32, gh as u32);
    for (r, row) in rows.iter().enumerate() {
        for (c, img) in row.iter().enumerate().take(columns) {
            let src = ::image::RgbImage::from_raw(
                img.width as u32,
                img.height as u32,
                img.pixels.clone(),
            )
            .ok_or_else(|| MethodError::Invalid("reference image has a bad size".into()))?;
            let scale = tile as f32 / img.width.max(img.height) as f32;
            let (tw, th) = (
                ((img.width as f32 * scale).round() as u32).max(1),
                ((img.height as f32 * scale).round() as u32).max(1),
            );
            let scaled =
                ::image::imageops::resize(&src, tw, th, ::image::imageops::FilterType::Triangle);
            let x0 = (gap + c * (tile + gap)) as u32 + (tile as u32 - tw) / 2;
            let y0 = (gap + r * (tile + gap)) as u32 + (tile as u32 - th) / 2;
            ::image::imageops::replace(&mut canvas, &scaled, x0 as i64, y0 as i64);
        }
    }
    let mut bytes = Vec::new();
    canvas
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            ::image::ImageFormat::Png,
        )
        .map_err(|e| MethodError::Invalid(format!("encoding PNG: {e}")))?;
    Ok(bytes)
}
