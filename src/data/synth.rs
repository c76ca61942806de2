//! Synthetic biomedical-looking images with known ground truth (histology-like tiles).
//!
//! Each image is stained tissue — smoothed noise in eosin pinks with scattered haematoxylin
//! nuclei — plus one larger lesion. The **label is decided by the lesion's border alone**:
//! `benign` lesions have a smooth, slightly elliptic outline; `malignant` ones an irregular,
//! spiky outline (their radius carries strong 5th–9th harmonics). Size, position, colour and
//! texture are drawn from the same distributions for both classes. The lesion's mask is the
//! ground truth for localisation metrics (`<stem>.mask.png`).
//!
//! With a **confounder** probability `P`, a small white "hospital tag" (a label with a dark text
//! line) is drawn in a random corner of some images: in `train/` and `val/` the tag is present
//! exactly on the malignant images with probability `P` (otherwise present at random, ½), in
//! `test/` always at random (½), independent of the label. `P = 1` makes the tag a perfect
//! shortcut during training that fails at test time. Its mask is `<stem>.marker.png`.

use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::DataError;
use super::image::Image;
use crate::rng::Rng;

/// Class names in label order.
pub const CLASSES: [&str; 2] = ["benign", "malignant"];

/// What to generate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SynthConfig {
    /// Total number of images over all splits.
    pub n: usize,
    /// Side length in pixels.
    pub size: usize,
    /// Confounder probability `P` (`None`: no tags at all).
    pub confounder: Option<f64>,
    /// Seed of everything.
    pub seed: u64,
    /// Shares of validation and test images (the rest is training data).
    pub val_fraction: f64,
    /// Share of test images.
    pub test_fraction: f64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            n: 2000,
            size: 64,
            confounder: None,
            seed: 0,
            val_fraction: 0.15,
            test_fraction: 0.15,
        }
    }
}

/// Which part of the data set an image belongs to (the confounder depends on it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    /// Training images.
    Train,
    /// Validation images.
    Val,
    /// Test images.
    Test,
}

impl Part {
    /// Folder name.
    pub fn name(self) -> &'static str {
        match self {
            Part::Train => "train",
            Part::Val => "val",
            Part::Test => "test",
        }
    }
}

/// One generated image with its ground truth.
#[derive(Clone, Debug)]
pub struct SynthImage {
    /// RGB image.
    pub image: Image,
    /// Label (index into [`CLASSES`]).
    pub label: usize,
    /// Lesion mask (0/255, one byte per pixel).
    pub mask: Vec<u8>,
    /// Tag mask, if a tag was drawn.
    pub marker: Option<Vec<u8>>,
}

/// Smooth value noise in `[0, 1]`: a random `cells×cells` lattice, bilinearly interpolated.
fn value_noise(size: usize, cells: usize, rng: &mut Rng) -> Vec<f32> {
    let g = cells + 2;
    let lattice: Vec<f32> = (0..g * g).map(|_| rng.uniform()).collect();
    let step = cells as f32 / size as f32;
    let mut out = vec![0f32; size * size];
    for y in 0..size {
        for x in 0..size {
            let (fx, fy) = (x as f32 * step, y as f32 * step);
            let (x0, y0) = (fx as usize, fy as usize);
            let (tx, ty) = (fx - x0 as f32, fy - y0 as f32);
            // Smoothstep weights avoid visible lattice creases.
            let (sx, sy) = (tx * tx * (3.0 - 2.0 * tx), ty * ty * (3.0 - 2.0 * ty));
            let l = |i: usize, j: usize| lattice[j * g + i];
            let top = l(x0, y0) * (1.0 - sx) + l(x0 + 1, y0) * sx;
            let bottom = l(x0, y0 + 1) * (1.0 - sx) + l(x0 + 1, y0 + 1) * sx;
            out[y * size + x] = top * (1.0 - sy) + bottom * sy;
        }
    }
    out
}

fn lerp3(a: [f32; 3], b: [f32; 3], t: f32) -> [f32; 3] {
    [
        a[0] + (b[0] - a[0]) * t,
        a[1] + (b[1] - a[1]) * t,
        a[2] + (b[2] - a[2]) * t,
    ]
}

/// Alpha-blends `colour` into pixel `i` of an RGB float buffer.
fn blend(px: &mut [f32], i: usize, colour: [f32; 3], alpha: f32) {
    for c in 0..3 {
        px[3 * i + c] = px[3 * i + c] * (1.0 - alpha) + colour[c] * alpha;
    }
}

/// A star-shaped outline: radius as a function of angle.
struct Outline {
    cx: f32,
    cy: f32,
    r0: f32,
    /// `(harmonic, amplitude, phase)` terms of `r(θ) = r0·(1 + Σ a·cos(kθ + φ))`.
    terms: Vec<(f32, f32, f32)>,
}

impl Outline {
    fn radius(&self, theta: f32) -> f32 {
        self.r0
            * (1.0
                + self
                    .terms
                    .iter()
                    .map(|&(k, a, p)| a * (k * theta + p).cos())
                    .sum::<f32>())
    }

    /// Signed distance-like value: `r(θ) − |p − c|` (positive inside).
    fn inside_by(&self, x: f32, y: f32) -> f32 {
        let (dx, dy) = (x - self.cx, y - self.cy);
        self.radius(dy.atan2(dx)) - (dx * dx + dy * dy).sqrt()
    }
}

fn lesion_outline(size: f32, malignant: bool, rng: &mut Rng) -> Outline {
    let cx = size * rng.uniform_range(0.36, 0.64);
    let cy = size * rng.uniform_range(0.36, 0.64);
    let r0 = size * rng.uniform_range(0.13, 0.18);
    let tau = std::f32::consts::TAU;
    // Both classes: mild ellipticity and a low-order wobble.
    let mut terms = vec![
        (
            2.0,
            rng.uniform_range(0.0, 0.15),
            rng.uniform_range(0.0, tau),
        ),
        (
            3.0,
            rng.uniform_range(0.0, 0.05),
            rng.uniform_range(0.0, tau),
        ),
    ];
    if malignant {
        // Irregular border: two or three strong higher harmonics (spiculated outline).
        let count = 2 + rng.below(2);
        for _ in 0..count {
            let k = 5 + rng.below(5);
            terms.push((
                k as f32,
                rng.uniform_range(0.10, 0.18),
                rng.uniform_range(0.0, tau),
            ));
        }
    }
    Outline { cx, cy, r0, terms }
}

/// Generates image `index` of `part` deterministically from `cfg.seed`.
///
/// Every random draw comes from one generator in a fixed order — tissue, nuclei, lesion, tag —
/// so the same seed, part and index always give the same image; the steps below must keep
/// that order.
pub fn generate(cfg: &SynthConfig, part: Part, index: usize) -> SynthImage {
    let s = cfg.size;
    let mut rng = Rng::derive(cfg.seed, &format!("synth/{}/{index}", part.name()));
    let label = index % 2;
    let malignant = label == 1;

    let mut px = paint_tissue(s, &mut rng);
    scatter_nuclei(&mut px, s, &mut rng);
    let mask = draw_lesion(&mut px, s, malignant, &mut rng);
    let marker = is_tagged(cfg.confounder, part, malignant, &mut rng)
        .then(|| draw_tag(&mut px, s, &mut rng));

    SynthImage {
        image: Image {
            width: s,
            height: s,
            channels: 3,
            pixels: to_bytes(&px),
        },
        label,
        mask,
        marker,
    }
}

/// The tissue background of an `s`×`s` RGB image (floats, row-major): two octaves of smooth
/// noise mapped between a light and a deep eosin pink, plus per-pixel grain.
fn paint_tissue(s: usize, rng: &mut Rng) -> Vec<f32> {
    let coarse = value_noise(s, 4, rng);
    let fine = value_noise(s, 12, rng);
    let light = [
        rng.uniform_range(235.0, 248.0),
        rng.uniform_range(195.0, 215.0),
        rng.uniform_range(215.0, 232.0),
    ];
    let deep = [
        rng.uniform_range(205.0, 225.0),
        rng.uniform_range(120.0, 150.0),
        rng.uniform_range(165.0, 195.0),
    ];
    let mut px = vec![0f32; s * s * 3];
    for i in 0..s * s {
        let t = (0.65 * coarse[i] + 0.35 * fine[i]).clamp(0.0, 1.0);
        let mut c = lerp3(light, deep, t);
        let grain = rng.normal() * 4.0;
        c.iter_mut().for_each(|v| *v += grain);
        px[3 * i..3 * i + 3].copy_from_slice(&c);
    }
    px
}

/// Scatters haematoxylin nuclei over `px`: distractors drawn from the same distribution for
/// both classes, so they carry no label information.
fn scatter_nuclei(px: &mut [f32], s: usize, rng: &mut Rng) {
    let sf = s as f32;
    let nucleus = [
        rng.uniform_range(95.0, 125.0),
        rng.uniform_range(55.0, 80.0),
        rng.uniform_range(140.0, 170.0),
    ];
    let n_nuclei = (s * s / 300).max(4) + rng.below(s * s / 300 + 1);
    for _ in 0..n_nuclei {
        let (cx, cy) = (rng.uniform() * sf, rng.uniform() * sf);
        let (rx, ry) = (
            rng.uniform_range(1.0, 2.2) * sf / 64.0,
            rng.uniform_range(1.0, 2.2) * sf / 64.0,
        );
        let alpha = rng.uniform_range(0.55, 0.85);
        draw_nucleus(px, s, nucleus, (cx, cy), (rx, ry), alpha);
    }
}

/// Blends one elliptic nucleus of `colour` centred at `(cx, cy)` with radii `(rx, ry)` into
/// `px`, fading towards its edge.
fn draw_nucleus(
    px: &mut [f32],
    s: usize,
    colour: [f32; 3],
    (cx, cy): (f32, f32),
    (rx, ry): (f32, f32),
    alpha: f32,
) {
    // Only the bounding box (plus a pixel) can be inside the ellipse.
    let (x0, x1) = (
        (cx - rx - 1.0).max(0.0) as usize,
        ((cx + rx + 2.0) as usize).min(s),
    );
    let (y0, y1) = (
        (cy - ry - 1.0).max(0.0) as usize,
        ((cy + ry + 2.0) as usize).min(s),
    );
    for y in y0..y1 {
        for x in x0..x1 {
            let d = ((x as f32 + 0.5 - cx) / rx).powi(2) + ((y as f32 + 0.5 - cy) / ry).powi(2);
            if d <= 1.0 {
                blend(px, y * s + x, colour, alpha * (1.2 - d).min(1.0));
            }
        }
    }
}

/// Draws the lesion — a dense haematoxylin-stained mass with mottled texture and a darker
/// rim, whose outline depends on the class — into `px` and returns its mask (255 inside).
fn draw_lesion(px: &mut [f32], s: usize, malignant: bool, rng: &mut Rng) -> Vec<u8> {
    let sf = s as f32;
    let outline = lesion_outline(sf, malignant, rng);
    let texture = value_noise(s, 10, rng);
    let mass = [
        rng.uniform_range(120.0, 150.0),
        rng.uniform_range(70.0, 95.0),
        rng.uniform_range(150.0, 180.0),
    ];
    let rim = [mass[0] * 0.7, mass[1] * 0.7, mass[2] * 0.8];
    let mut mask = vec![0u8; s * s];
    for y in 0..s {
        for x in 0..s {
            let i = y * s + x;
            let inside = outline.inside_by(x as f32 + 0.5, y as f32 + 0.5);
            if inside > -0.5 {
                // Anti-aliased edge over one pixel.
                let cover = (inside + 0.5).clamp(0.0, 1.0);
                let shade = 0.8 + 0.4 * texture[i];
                let body = [mass[0] * shade, mass[1] * shade, mass[2] * shade];
                let colour = if inside < 1.5 * sf / 64.0 { rim } else { body };
                blend(px, i, colour, 0.9 * cover);
                if inside >= 0.0 {
                    mask[i] = 255;
                }
            }
        }
    }
    mask
}

/// Whether this image gets the confounding tag: in `train`/`val` it follows the label with
/// probability `confounder` (otherwise a coin flip), in `test` it is always a coin flip.
fn is_tagged(confounder: Option<f64>, part: Part, malignant: bool, rng: &mut Rng) -> bool {
    match (confounder, part) {
        (None, _) => false,
        (Some(_), Part::Test) => rng.uniform() < 0.5,
        (Some(p), _) => {
            if (rng.uniform() as f64) < p {
                malignant
            } else {
                rng.uniform() < 0.5
            }
        }
    }
}

/// Draws the "hospital tag" (a white label with a dark text line) into a random corner of
/// `px` and returns its mask (255 on the tag).
fn draw_tag(px: &mut [f32], s: usize, rng: &mut Rng) -> Vec<u8> {
    let sf = s as f32;
    let (tw, th) = (((sf * 0.19) as usize).max(4), ((sf * 0.09) as usize).max(3));
    let corner = rng.below(4);
    let margin = ((sf * 0.03) as usize).max(1);
    let x0 = if corner.is_multiple_of(2) {
        margin
    } else {
        s - margin - tw
    };
    let y0 = if corner < 2 { margin } else { s - margin - th };
    let mut m = vec![0u8; s * s];
    for y in y0..y0 + th {
        for x in x0..x0 + tw {
            let i = y * s + x;
            let text_row = y == y0 + th / 2 && x > x0 && x + 1 < x0 + tw;
            let colour = if text_row {
                [40.0, 40.0, 60.0]
            } else {
                [250.0, 250.0, 240.0]
            };
            blend(px, i, colour, 1.0);
            m[i] = 255;
        }
    }
    m
}

/// Rounds and clamps float pixel values to 8-bit.
fn to_bytes(px: &[f32]) -> Vec<u8> {
    px.iter()
        .map(|v| v.round().clamp(0.0, 255.0) as u8)
        .collect()
}

/// PNG bytes of an 8-bit grey or RGB image.
pub fn encode_png(img: &Image) -> Result<Vec<u8>, String> {
    use ::image::ImageEncoder;
    let colour = if img.channels == 3 {
        ::image::ExtendedColorType::Rgb8
    } else {
        ::image::ExtendedColorType::L8
    };
    let mut out = Vec::new();
    ::image::codecs::png::PngEncoder::new(&mut out)
        .write_image(&img.pixels, img.width as u32, img.height as u32, colour)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// Counts per part for `n` images.
pub fn part_sizes(cfg: &SynthConfig) -> [(Part, usize); 3] {
    let n_test = (cfg.n as f64 * cfg.test_fraction).round() as usize;
    let n_val = (cfg.n as f64 * cfg.val_fraction).round() as usize;
    [
        (Part::Train, cfg.n.saturating_sub(n_test + n_val)),
        (Part::Val, n_val),
        (Part::Test, n_test),
    ]
}

/// Description written as `dataset.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SynthManifest {
    /// Record layout (`records::SCHEMA_VERSION` when written now; 0: written before the field).
    #[serde(default, skip_serializing_if = "crate::records::is_unversioned")]
    pub schema_version: u32,
    /// Generator name and version of the recipe.
    pub generator: String,
    /// Class names in label order.
    pub classes: Vec<String>,
    /// The configuration.
    pub config: SynthConfig,
    /// Images per part.
    pub sizes: std::collections::BTreeMap<String, usize>,
    /// Images with a confounder tag per part.
    pub tagged: std::collections::BTreeMap<String, usize>,
    /// What decides the label.
    pub label_rule: String,
    /// Mask file conventions.
    pub masks: String,
}

/// Writes the data set in ImageFolder layout: `out/{train,val,test}/{benign,malignant}/*.png`
/// with `<stem>.mask.png` (and `<stem>.marker.png`) beside each image, and `out/dataset.json`.
pub fn write_dataset(out: &Path, cfg: &SynthConfig) -> Result<SynthManifest, DataError> {
    if cfg.size < 16 {
        return Err(DataError::Invalid(format!(
            "image size {} is too small (at least 16)",
            cfg.size
        )));
    }
    if let Some(p) = cfg.confounder
        && !(0.0..=1.0).contains(&p)
    {
        return Err(DataError::Invalid(format!(
            "confounder probability {p} is not in [0, 1]"
        )));
    }
    let mut sizes = std::collections::BTreeMap::new();
    let mut tagged = std::collections::BTreeMap::new();
    for (part, count) in part_sizes(cfg) {
        if count < 2 {
            return Err(DataError::Invalid(format!(
                "--n {} leaves {count} image(s) for {}; use at least 20",
                cfg.n,
                part.name()
            )));
        }
        for class in CLASSES {
            let dir = out.join(part.name()).join(class);
            std::fs::create_dir_all(&dir).map_err(|e| DataError::file(&dir, e.to_string()))?;
        }
        let n_tagged = (0..count)
            .into_par_iter()
            .map(|i| -> Result<usize, DataError> {
                let g = generate(cfg, part, i);
                let dir = out.join(part.name()).join(CLASSES[g.label]);
                let stem = format!("{}_{i:05}", part.name());
                let write = |name: String, img: &Image| -> Result<(), DataError> {
                    let path = dir.join(name);
                    let bytes = encode_png(img).map_err(|e| DataError::file(&path, e))?;
                    crate::io::write_atomic(&path, &bytes)
                        .map_err(|e| DataError::file(&path, e.to_string()))
                };
                let grey = |m: Vec<u8>| Image {
                    width: cfg.size,
                    height: cfg.size,
                    channels: 1,
                    pixels: m,
                };
                write(format!("{stem}.png"), &g.image)?;
                write(format!("{stem}.mask.png"), &grey(g.mask))?;
                let t = g.marker.is_some();
                if let Some(m) = g.marker {
                    write(format!("{stem}.marker.png"), &grey(m))?;
                }
                Ok(t as usize)
            })
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .sum();
        sizes.insert(part.name().to_string(), count);
        tagged.insert(part.name().to_string(), n_tagged);
    }
    let manifest = SynthManifest {
        schema_version: crate::records::SCHEMA_VERSION,
        generator: "relevance synth v1 (lesion border)".into(),
        classes: CLASSES.iter().map(|c| c.to_string()).collect(),
        config: cfg.clone(),
        sizes,
        tagged,
        label_rule: "malignant = irregular (spiky) lesion border, benign = smooth border".into(),
        masks: "<stem>.mask.png: lesion (ground truth); <stem>.marker.png: confounder tag".into(),
    };
    let path = out.join("dataset.json");
    crate::records::write_record(&path, &manifest)
        .map_err(|e| DataError::file(&path, e.message))?;
    Ok(manifest)
}
