//! The description of a data set that an imaging study starts with: how many images per class,
//! their sizes, file formats and colour modes, the per-channel intensity range and mean, and a
//! few images of each class to look at (`relevance data info --describe`).
//!
//! Intensities are the 8-bit values [`load_image`](super::load_image) hands the models (grey
//! stays one channel `L`, colour becomes `R`, `G`, `B` with alpha dropped, 16-bit values are
//! scaled to 8 bits), so the range and mean are those the normalisation of the model card sees.
//! The mean of a channel is over all pixels of all images that have it (a large image weighs
//! more than a small one), as torchvision users compute normalisation constants.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::Serialize;

use super::DataError;
use super::folder::{Sample, Skipped};
use super::image::{Decoded, Image, decode_image_described};
use super::resize::Filter;

/// How much of each class the description shows.
#[derive(Clone, Copy, Debug)]
pub struct DescribeOptions {
    /// Images per class in the montage (the first ones in path order).
    pub montage_images: usize,
    /// Side of a montage tile in pixels: each image is fitted inside it, keeping its ratio.
    pub tile: usize,
    /// Fail on the first image that cannot be decoded instead of listing it as unreadable.
    pub strict: bool,
}

impl Default for DescribeOptions {
    fn default() -> Self {
        DescribeOptions {
            montage_images: 16,
            tile: 96,
            strict: false,
        }
    }
}

/// How many images have one width × height.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SizeCount {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Number of images of that size.
    pub images: usize,
}

/// Intensity range and mean of one channel over every image that has it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ChannelStats {
    /// `L` (grey images), or `R`, `G`, `B` (colour images).
    pub channel: String,
    /// Smallest value (0–255).
    pub min: u8,
    /// Largest value (0–255).
    pub max: u8,
    /// Mean over all pixels: Σ values / number of pixels.
    pub mean: f64,
    /// Number of pixels counted.
    pub pixels: u64,
    /// Number of images counted.
    pub images: usize,
}

/// A few images of one class, fitted into tiles.
#[derive(Clone, Debug)]
pub struct Montage {
    /// The class name.
    pub class: String,
    /// One tile per image (RGB, at most `tile × tile`, ratio kept).
    pub tiles: Vec<Image>,
}

/// What a data set holds.
#[derive(Clone, Debug)]
pub struct Description {
    /// Class names in label order.
    pub classes: Vec<String>,
    /// Readable images per class.
    pub per_class: Vec<usize>,
    /// Image sizes, most frequent first (ties by width, then height).
    pub sizes: Vec<SizeCount>,
    /// Images per file format.
    pub formats: BTreeMap<String, usize>,
    /// Images per colour mode stored in the file.
    pub modes: BTreeMap<String, usize>,
    /// Intensity statistics: `L` first, then `R`, `G`, `B`, for the channels present.
    pub channels: Vec<ChannelStats>,
    /// Files that could not be read, with the reason.
    pub unreadable: Vec<Skipped>,
    /// The montage of each class, in class order.
    pub montages: Vec<Montage>,
}

impl Description {
    /// Number of readable images.
    pub fn images(&self) -> usize {
        self.per_class.iter().sum()
    }
}

/// What one image contributes.
struct Facts {
    label: usize,
    width: usize,
    height: usize,
    format: String,
    mode: String,
    channels: Vec<Running>,
    tile: Option<(std::path::PathBuf, Image)>,
}

/// Running range and sum of one channel.
#[derive(Clone, Copy, Debug)]
struct Running {
    min: u8,
    max: u8,
    sum: u64,
    pixels: u64,
    images: usize,
}

impl Running {
    fn of(values: impl Iterator<Item = u8>) -> Running {
        let mut r = Running {
            min: u8::MAX,
            max: u8::MIN,
            sum: 0,
            pixels: 0,
            images: 1,
        };
        for v in values {
            r.min = r.min.min(v);
            r.max = r.max.max(v);
            r.sum += u64::from(v);
            r.pixels += 1;
        }
        r
    }

    fn merge(self, o: Running) -> Running {
        Running {
            min: self.min.min(o.min),
            max: self.max.max(o.max),
            sum: self.sum + o.sum,
            pixels: self.pixels + o.pixels,
            images: self.images + o.images,
        }
    }
}

/// Describes `samples` (already read from a data set, with the files its reader skipped in
/// `skipped`). Each image is decoded once, in parallel; only the montage tiles are kept.
pub fn describe(
    classes: &[String],
    samples: &[Sample],
    skipped: &[Skipped],
    opts: DescribeOptions,
) -> Result<Description, DataError> {
    let in_montage = montage_members(classes.len(), samples, opts.montage_images);
    let results: Vec<Result<Facts, Skipped>> = samples
        .par_iter()
        .zip(in_montage.par_iter())
        .map(|(s, &shown)| facts_of(s, shown, opts.tile))
        .collect();
    let mut unreadable = skipped.to_vec();
    let mut facts = Vec::with_capacity(results.len());
    for r in results {
        match r {
            Ok(f) => facts.push(f),
            Err(bad) if opts.strict => return Err(DataError::file(bad.path, bad.reason)),
            Err(bad) => unreadable.push(bad),
        }
    }
    Ok(gather(classes, facts, unreadable))
}

/// For each sample, whether it is among the first `per_class` of its class in path order.
fn montage_members(classes: usize, samples: &[Sample], per_class: usize) -> Vec<bool> {
    let mut order: Vec<usize> = (0..samples.len()).collect();
    order.sort_by(|&a, &b| samples[a].path.cmp(&samples[b].path));
    let mut taken = vec![0usize; classes];
    let mut shown = vec![false; samples.len()];
    for i in order {
        let label = samples[i].label;
        if label < classes && taken[label] < per_class {
            taken[label] += 1;
            shown[i] = true;
        }
    }
    shown
}

fn facts_of(sample: &Sample, shown: bool, tile: usize) -> Result<Facts, Skipped> {
    let unreadable = |reason: String| Skipped {
        path: sample.path.clone(),
        reason,
    };
    let bytes = std::fs::read(&sample.path).map_err(|e| unreadable(format!("cannot read: {e}")))?;
    let Decoded {
        image,
        format,
        mode,
    } = decode_image_described(&bytes).map_err(unreadable)?;
    let channels = (0..image.channels)
        .map(|c| Running::of(image.pixels.iter().skip(c).step_by(image.channels).copied()))
        .collect();
    Ok(Facts {
        label: sample.label,
        width: image.width,
        height: image.height,
        format,
        mode,
        channels,
        tile: shown.then(|| (sample.path.clone(), fit_tile(&image, tile))),
    })
}

/// The image shrunk (never enlarged) so that its longer side is at most `tile`, in RGB.
fn fit_tile(image: &Image, tile: usize) -> Image {
    let longer = image.width.max(image.height);
    let rgb = image.with_channels(3);
    if longer <= tile {
        return rgb;
    }
    let scale = |side: usize| ((side * tile + longer / 2) / longer).max(1);
    rgb.resize(Filter::Bilinear, scale(image.width), scale(image.height))
}

fn gather(classes: &[String], facts: Vec<Facts>, unreadable: Vec<Skipped>) -> Description {
    let mut per_class = vec![0usize; classes.len()];
    let mut sizes: BTreeMap<(usize, usize), usize> = BTreeMap::new();
    let mut formats = BTreeMap::new();
    let mut modes = BTreeMap::new();
    let mut grey: Option<Running> = None;
    let mut colour: [Option<Running>; 3] = [None; 3];
    let mut montages: Vec<Montage> = classes
        .iter()
        .map(|c| Montage {
            class: c.clone(),
            tiles: Vec::new(),
        })
        .collect();
    let mut tiles: Vec<(std::path::PathBuf, usize, Image)> = Vec::new();
    for f in facts {
        if let Some(count) = per_class.get_mut(f.label) {
            *count += 1;
        }
        *sizes.entry((f.width, f.height)).or_default() += 1;
        *formats.entry(f.format).or_default() += 1;
        *modes.entry(f.mode).or_default() += 1;
        let slots: Vec<&mut Option<Running>> = if f.channels.len() == 1 {
            vec![&mut grey]
        } else {
            colour.iter_mut().collect()
        };
        for (slot, r) in slots.into_iter().zip(f.channels) {
            *slot = Some(slot.map_or(r, |s| s.merge(r)));
        }
        if let Some((path, t)) = f.tile {
            tiles.push((path, f.label, t));
        }
    }
    tiles.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, label, t) in tiles {
        if let Some(m) = montages.get_mut(label) {
            m.tiles.push(t);
        }
    }
    let mut sizes: Vec<SizeCount> = sizes
        .into_iter()
        .map(|((width, height), images)| SizeCount {
            width,
            height,
            images,
        })
        .collect();
    sizes.sort_by_key(|c| std::cmp::Reverse(c.images));
    let named = [
        ("L", grey),
        ("R", colour[0]),
        ("G", colour[1]),
        ("B", colour[2]),
    ];
    let channels = named
        .into_iter()
        .filter_map(|(name, r)| {
            r.map(|r| ChannelStats {
                channel: name.into(),
                min: r.min,
                max: r.max,
                mean: r.sum as f64 / r.pixels.max(1) as f64,
                pixels: r.pixels,
                images: r.images,
            })
        })
        .collect();
    Description {
        classes: classes.to_vec(),
        per_class,
        sizes,
        formats,
        modes,
        channels,
        unreadable,
        montages,
    }
}
