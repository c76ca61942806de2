//! Image augmentations that can be undone on heatmaps.
//!
//! Each [`Aug`] transforms an image given as float planes in `[0, 1]`. Geometric transforms
//! (flips, rotation, affine, crop/resize) are affine maps between pixel coordinates, so a
//! heatmap computed on the augmented image can be mapped *back* to the original frame
//! ([`Augmented::to_original`]) together with the mask of original pixels the augmented image
//! actually saw. Photometric transforms (brightness, contrast, gamma, noise, blur) leave the
//! geometry unchanged: their inverse map is the identity and their mask is all ones.
//!
//! Coordinates: pixel centres sit at integers, so a `W`-pixel row covers `[−0.5, W − 0.5]`.
//! Sampling is bilinear with the nearest edge pixel used in the half-pixel border band; points
//! outside the frame read as 0 (images) or are marked invalid (masks).

use serde::{Deserialize, Serialize};

use super::DataError;
use super::image::Image;
use crate::rng::Rng;

/// A multi-channel float image `[C, H, W]` in row-major planes.
#[derive(Clone, Debug, PartialEq)]
pub struct Planes {
    /// Channels.
    pub channels: usize,
    /// Height.
    pub height: usize,
    /// Width.
    pub width: usize,
    /// `C·H·W` values, channel-major.
    pub data: Vec<f32>,
}

impl Planes {
    /// Zero planes.
    pub fn zeros(channels: usize, height: usize, width: usize) -> Self {
        Planes {
            channels,
            height,
            width,
            data: vec![0.0; channels * height * width],
        }
    }

    /// An 8-bit image as planes with values `pixel / 255`.
    pub fn from_image(img: &Image) -> Self {
        let affine = vec![(1.0 / 255.0, 0.0); img.channels];
        Planes {
            channels: img.channels,
            height: img.height,
            width: img.width,
            data: img.to_planar(&affine),
        }
    }

    /// One plane as a slice.
    pub fn plane(&self, c: usize) -> &[f32] {
        let n = self.height * self.width;
        &self.data[c * n..(c + 1) * n]
    }
}

/// An affine map from the pixel coordinates of an output frame to those of its source frame:
/// `src = (m[0]·x + m[1]·y + m[2], m[3]·x + m[4]·y + m[5])`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Warp {
    /// Source frame `[width, height]`.
    pub src: [usize; 2],
    /// Output frame `[width, height]`.
    pub dst: [usize; 2],
    /// Output → source matrix (row-major 2×3).
    pub m: [f64; 6],
}

impl Warp {
    fn apply(m: &[f64; 6], x: f64, y: f64) -> (f64, f64) {
        (m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5])
    }

    /// The source → output matrix.
    pub fn inverse(&self) -> [f64; 6] {
        let [a, b, c, d, e, f] = self.m;
        let det = a * e - b * d;
        let (ia, ib, id, ie) = (e / det, -b / det, -d / det, a / det);
        [ia, ib, -(ia * c + ib * f), id, ie, -(id * c + ie * f)]
    }

    /// A warp from the forward (source → output) point map `p ↦ A·(p − c) + c + t` about the
    /// source centre `c`, with the output frame the same size as the source.
    fn about_centre(w: usize, h: usize, a: [[f64; 2]; 2], t: [f64; 2]) -> Warp {
        let (cx, cy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
        let det = a[0][0] * a[1][1] - a[0][1] * a[1][0];
        let inv = [
            [a[1][1] / det, -a[0][1] / det],
            [-a[1][0] / det, a[0][0] / det],
        ];
        // src = inv·(dst − c − t) + c
        let (ox, oy) = (-cx - t[0], -cy - t[1]);
        Warp {
            src: [w, h],
            dst: [w, h],
            m: [
                inv[0][0],
                inv[0][1],
                inv[0][0] * ox + inv[0][1] * oy + cx,
                inv[1][0],
                inv[1][1],
                inv[1][0] * ox + inv[1][1] * oy + cy,
            ],
        }
    }
}

/// Tolerance for "inside the frame" so exact pixel permutations (flips, 90° turns) never lose
/// border pixels to rounding.
const EDGE_EPS: f64 = 1e-6;

fn inside(x: f64, y: f64, w: usize, h: usize) -> bool {
    x >= -0.5 - EDGE_EPS
        && x <= w as f64 - 0.5 + EDGE_EPS
        && y >= -0.5 - EDGE_EPS
        && y <= h as f64 - 0.5 + EDGE_EPS
}

/// Bilinear sample of a plane at `(x, y)` (caller checks [`inside`]); edge pixels extend over
/// the half-pixel border band.
fn sample(plane: &[f32], w: usize, h: usize, x: f64, y: f64) -> f32 {
    let x = x.clamp(0.0, (w - 1) as f64);
    let y = y.clamp(0.0, (h - 1) as f64);
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = ((x - x0 as f64) as f32, (y - y0 as f64) as f32);
    let top = plane[y0 * w + x0] * (1.0 - fx) + plane[y0 * w + x1] * fx;
    let bottom = plane[y1 * w + x0] * (1.0 - fx) + plane[y1 * w + x1] * fx;
    top * (1.0 - fy) + bottom * fy
}

/// Warps every plane of `img` into the output frame of `warp` (0 outside the source).
pub fn warp_planes(img: &Planes, warp: &Warp) -> Planes {
    let [w, h] = warp.src;
    let [ow, oh] = warp.dst;
    let mut out = Planes::zeros(img.channels, oh, ow);
    for y in 0..oh {
        for x in 0..ow {
            let (sx, sy) = Warp::apply(&warp.m, x as f64, y as f64);
            if !inside(sx, sy, w, h) {
                continue;
            }
            for c in 0..img.channels {
                out.data[(c * oh + y) * ow + x] = sample(img.plane(c), w, h, sx, sy);
            }
        }
    }
    out
}

/// One concrete augmentation (parameters already drawn).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Aug {
    /// Mirror left ↔ right.
    FlipHorizontal,
    /// Mirror top ↔ bottom.
    FlipVertical,
    /// Rotation by `degrees` counter-clockwise about the image centre (as torchvision's
    /// `rotate`), same output size, corners filled with 0.
    Rotate {
        /// Angle in degrees.
        degrees: f64,
    },
    /// Affine map about the centre (torchvision's `RandomAffine` parts): the point map is
    /// `p ↦ R(θ)·Sh·s·(p − c) + c + t` with `Sh = [[1, tan φx], [tan φy, 1]]`.
    Affine {
        /// Rotation θ in degrees (counter-clockwise).
        degrees: f64,
        /// Isotropic scale `s`.
        scale: f64,
        /// Translation `t` in pixels `[x, y]`.
        translate: [f64; 2],
        /// Shear angles `[φx, φy]` in degrees.
        shear: [f64; 2],
    },
    /// Crop the box (`left`, `top`, `width`, `height`; pixels, may be fractional) and resize it
    /// bilinearly to `out` = `[width, height]`.
    CropResize {
        /// Left edge of the box.
        left: f64,
        /// Top edge of the box.
        top: f64,
        /// Box width.
        width: f64,
        /// Box height.
        height: f64,
        /// Output `[width, height]`.
        out: [usize; 2],
    },
    /// `v ↦ clamp(v·f)` (torchvision's `adjust_brightness`).
    Brightness {
        /// Factor `f`.
        factor: f32,
    },
    /// `v ↦ clamp(m + f·(v − m))` with `m` the mean grey level (torchvision's `adjust_contrast`).
    Contrast {
        /// Factor `f`.
        factor: f32,
    },
    /// `v ↦ v^γ`.
    Gamma {
        /// Exponent γ.
        gamma: f32,
    },
    /// `v ↦ clamp(v + σ·n)` with `n ~ N(0, 1)` per value, drawn from `seed`.
    Noise {
        /// Standard deviation σ.
        std: f32,
        /// Seed of the noise stream.
        seed: u64,
    },
    /// Separable Gaussian blur with standard deviation σ (kernel radius ⌈3σ⌉, mirrored borders).
    Blur {
        /// σ in pixels.
        sigma: f32,
    },
}

impl Aug {
    /// The geometric part of the transform on a `w×h` image (`None` for photometric ones).
    pub fn warp(&self, w: usize, h: usize) -> Option<Warp> {
        let (fw, fh) = (w as f64, h as f64);
        match *self {
            Aug::FlipHorizontal => Some(Warp {
                src: [w, h],
                dst: [w, h],
                m: [-1.0, 0.0, fw - 1.0, 0.0, 1.0, 0.0],
            }),
            Aug::FlipVertical => Some(Warp {
                src: [w, h],
                dst: [w, h],
                m: [1.0, 0.0, 0.0, 0.0, -1.0, fh - 1.0],
            }),
            Aug::Rotate { degrees } => Aug::Affine {
                degrees,
                scale: 1.0,
                translate: [0.0, 0.0],
                shear: [0.0, 0.0],
            }
            .warp(w, h),
            Aug::Affine {
                degrees,
                scale,
                translate,
                shear,
            } => {
                let (s, c) = degrees.to_radians().sin_cos();
                // Counter-clockwise on screen with y pointing down.
                let r = [[c, s], [-s, c]];
                let sh = [
                    [1.0, shear[0].to_radians().tan()],
                    [shear[1].to_radians().tan(), 1.0],
                ];
                let mut a = [[0.0; 2]; 2];
                for i in 0..2 {
                    for j in 0..2 {
                        a[i][j] = scale * (r[i][0] * sh[0][j] + r[i][1] * sh[1][j]);
                    }
                }
                Some(Warp::about_centre(w, h, a, translate))
            }
            Aug::CropResize {
                left,
                top,
                width,
                height,
                out,
            } => {
                let (sx, sy) = (width / out[0] as f64, height / out[1] as f64);
                Some(Warp {
                    src: [w, h],
                    dst: out,
                    m: [
                        sx,
                        0.0,
                        left + 0.5 * sx - 0.5,
                        0.0,
                        sy,
                        top + 0.5 * sy - 0.5,
                    ],
                })
            }
            _ => None,
        }
    }

    /// True for transforms that move pixels.
    pub fn is_geometric(&self) -> bool {
        self.warp(1, 1).is_some()
    }

    /// Applies the transform to an image.
    pub fn apply(&self, img: &Planes) -> Planes {
        if let Some(warp) = self.warp(img.width, img.height) {
            return warp_planes(img, &warp);
        }
        let mut out = img.clone();
        match *self {
            Aug::Brightness { factor } => {
                out.data
                    .iter_mut()
                    .for_each(|v| *v = (*v * factor).clamp(0.0, 1.0));
            }
            Aug::Contrast { factor } => {
                let m = mean_grey(img);
                out.data
                    .iter_mut()
                    .for_each(|v| *v = (m + factor * (*v - m)).clamp(0.0, 1.0));
            }
            Aug::Gamma { gamma } => {
                out.data
                    .iter_mut()
                    .for_each(|v| *v = v.max(0.0).powf(gamma).clamp(0.0, 1.0));
            }
            Aug::Noise { std, seed } => {
                let mut rng = Rng::new(seed);
                out.data
                    .iter_mut()
                    .for_each(|v| *v = (*v + std * rng.normal()).clamp(0.0, 1.0));
            }
            Aug::Blur { sigma } => blur(&mut out, sigma),
            _ => unreachable!("geometric transforms return above"),
        }
        out
    }
}

/// Mean grey level (ITU-R 601 luma for RGB).
fn mean_grey(img: &Planes) -> f32 {
    let n = img.width * img.height;
    let sum: f64 = if img.channels == 3 {
        (0..n)
            .map(|i| {
                0.299 * img.data[i] as f64
                    + 0.587 * img.data[n + i] as f64
                    + 0.114 * img.data[2 * n + i] as f64
            })
            .sum()
    } else {
        img.plane(0).iter().map(|&v| v as f64).sum()
    };
    (sum / n as f64) as f32
}

fn mirror(i: isize, n: usize) -> usize {
    let n = n as isize;
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let mut i = i.rem_euclid(period);
    if i >= n {
        i = period - i;
    }
    i as usize
}

fn blur(img: &mut Planes, sigma: f32) {
    if sigma <= 0.0 {
        return;
    }
    let r = (3.0 * sigma).ceil() as isize;
    let mut k: Vec<f32> = (-r..=r)
        .map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp())
        .collect();
    let total: f32 = k.iter().sum();
    k.iter_mut().for_each(|v| *v /= total);
    let (w, h) = (img.width, img.height);
    let (kx, rx) = fold_kernel(&k, r, w);
    let (ky, ry) = fold_kernel(&k, r, h);
    let mut tmp = vec![0f32; w * h];
    for c in 0..img.channels {
        let plane = &mut img.data[c * w * h..(c + 1) * w * h];
        for y in 0..h {
            for x in 0..w {
                tmp[y * w + x] = (-rx..=rx)
                    .map(|d| kx[(d + rx) as usize] * plane[y * w + mirror(x as isize + d, w)])
                    .sum();
            }
        }
        for y in 0..h {
            for x in 0..w {
                plane[y * w + x] = (-ry..=ry)
                    .map(|d| ky[(d + ry) as usize] * tmp[mirror(y as isize + d, h) * w + x])
                    .sum();
            }
        }
    }
}

/// The kernel `k` (radius `r`) applied along a side of `n` pixels with mirrored borders, as
/// an equivalent kernel no longer than one mirror period `2(n − 1)`: the mirrored signal
/// repeats with that period, so taps a period apart read the same pixel and their weights
/// add up. A blur with σ far above the image size then costs O(pixels × side), not
/// O(pixels × σ). Kernels that already fit are returned unchanged (same values bit for bit).
fn fold_kernel(k: &[f32], r: isize, n: usize) -> (Vec<f32>, isize) {
    let period = 2 * (n as isize - 1);
    if period <= 0 || 2 * r < period {
        return (k.to_vec(), r);
    }
    // Offsets 0..period cover every residue once; keep them centred as -(period/2)..
    let lo = -(period / 2);
    let mut folded = vec![0f32; period as usize];
    for (i, &v) in k.iter().enumerate() {
        let d = i as isize - r;
        folded[(d - lo).rem_euclid(period) as usize] += v;
    }
    // Express as a symmetric-range kernel of radius `period/2` (zero where unused).
    let radius = period / 2;
    let mut out = vec![0f32; (2 * radius + 1) as usize];
    for (j, &v) in folded.iter().enumerate() {
        out[j] += v;
    }
    (out, radius)
}

/// An augmented image with what is needed to map results back to the original frame.
#[derive(Clone, Debug)]
pub struct Augmented {
    /// The augmented image.
    pub image: Planes,
    /// The geometric steps in order of application.
    pub warps: Vec<Warp>,
    /// Original `[width, height]`.
    pub original: [usize; 2],
}

/// Applies `augs` in order.
pub fn augment(img: &Planes, augs: &[Aug]) -> Augmented {
    let mut cur = img.clone();
    let mut warps = Vec::new();
    for a in augs {
        if let Some(w) = a.warp(cur.width, cur.height) {
            warps.push(w);
        }
        cur = a.apply(&cur);
    }
    Augmented {
        image: cur,
        warps,
        original: [img.width, img.height],
    }
}

impl Augmented {
    /// Follows original pixel `(x, y)` through every step; `None` if it leaves a frame.
    fn trace(&self, x: usize, y: usize) -> Option<(f64, f64)> {
        let (mut px, mut py) = (x as f64, y as f64);
        for w in &self.warps {
            let (nx, ny) = Warp::apply(&w.inverse(), px, py);
            if !inside(nx, ny, w.dst[0], w.dst[1]) {
                return None;
            }
            (px, py) = (nx, ny);
        }
        Some((px, py))
    }

    /// Pixels of the original frame that the augmented image saw (row-major, original size).
    pub fn valid_mask(&self) -> Vec<bool> {
        let [w, h] = self.original;
        (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .map(|(x, y)| self.trace(x, y).is_some())
            .collect()
    }

    /// Maps a heatmap on the augmented image (`H'×W'`, row-major) back to the original frame
    /// (inverse warp, bilinear); returns the map and the valid mask. Invalid pixels are 0.
    pub fn to_original(&self, heat: &[f32]) -> Result<(Vec<f32>, Vec<bool>), DataError> {
        let (aw, ah) = (self.image.width, self.image.height);
        if heat.len() != aw * ah {
            return Err(DataError::Invalid(format!(
                "heatmap has {} values, the augmented image is {aw}×{ah}",
                heat.len()
            )));
        }
        let [w, h] = self.original;
        let mut out = vec![0f32; w * h];
        let mut mask = vec![false; w * h];
        for y in 0..h {
            for x in 0..w {
                if let Some((px, py)) = self.trace(x, y) {
                    out[y * w + x] = sample(heat, aw, ah, px, py);
                    mask[y * w + x] = true;
                }
            }
        }
        Ok((out, mask))
    }

    /// Maps a plane of the original frame (e.g. a ground-truth mask) into the augmented frame.
    pub fn to_augmented(&self, plane: &[f32]) -> Result<Vec<f32>, DataError> {
        let [w, h] = self.original;
        if plane.len() != w * h {
            return Err(DataError::Invalid(format!(
                "plane has {} values, the original image is {w}×{h}",
                plane.len()
            )));
        }
        let mut cur = Planes {
            channels: 1,
            height: h,
            width: w,
            data: plane.to_vec(),
        };
        for warp in &self.warps {
            cur = warp_planes(&cur, warp);
        }
        Ok(cur.data)
    }
}

/// Ranges from which training augmentations are drawn; a zero range disables a transform.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AugmentSpec {
    /// Random horizontal flip with probability ½.
    pub hflip: bool,
    /// Random vertical flip with probability ½.
    pub vflip: bool,
    /// Rotation angle drawn from `U(−r, r)` degrees.
    pub rotate: f64,
    /// Affine: translation up to this fraction of the size, scale in `1 ± this`, shear up to
    /// `10·this` degrees (0 disables).
    pub affine: f64,
    /// Random crop of at least this fraction of the area (aspect 3/4–4/3), resized back
    /// (0 disables).
    pub crop: f64,
    /// Brightness and contrast factors from `U(1 − j, 1 + j)`, gamma from `U(1 − j, 1 + j)`.
    /// Written as `color` in training records, the name version-1 records have.
    #[serde(rename = "color")]
    pub colour: f32,
    /// Gaussian noise with σ drawn from `U(0, this)`.
    pub noise: f32,
    /// Gaussian blur with σ drawn from `U(0, this)` pixels.
    pub blur: f32,
}

impl AugmentSpec {
    /// Parses a comma-separated list: `flip`, `hflip`, `vflip`, `rotate`, `affine`, `crop`,
    /// `colour` (or `color`), `noise`, `blur` (or `none`), each with a moderate default strength.
    pub fn parse(list: &str) -> Result<Self, DataError> {
        let mut s = AugmentSpec::default();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "none" => {}
                "flip" => {
                    s.hflip = true;
                    s.vflip = true;
                }
                "hflip" => s.hflip = true,
                "vflip" => s.vflip = true,
                "rotate" => s.rotate = 15.0,
                "affine" => s.affine = 0.1,
                "crop" => s.crop = 0.7,
                "colour" | "color" => s.colour = 0.2,
                "noise" => s.noise = 0.03,
                "blur" => s.blur = 1.0,
                other => {
                    return Err(DataError::Invalid(format!(
                        "unknown augmentation '{other}'; known: flip, hflip, vflip, rotate, affine, crop, colour, noise, blur, none"
                    )));
                }
            }
        }
        Ok(s)
    }

    /// True if no transform is enabled.
    pub fn is_identity(&self) -> bool {
        *self == AugmentSpec::default()
    }

    /// Draws concrete transforms for a `w×h` image.
    pub fn sample(&self, w: usize, h: usize, rng: &mut Rng) -> Vec<Aug> {
        let mut out = Vec::new();
        if self.crop > 0.0 {
            let area = rng.uniform_range(self.crop as f32, 1.0) as f64;
            let aspect = (rng.uniform_range((3.0f32 / 4.0).ln(), (4.0f32 / 3.0).ln()) as f64).exp();
            let cw = ((area * aspect).sqrt() * w as f64).min(w as f64);
            let ch = ((area / aspect).sqrt() * h as f64).min(h as f64);
            let left = rng.uniform() as f64 * (w as f64 - cw);
            let top = rng.uniform() as f64 * (h as f64 - ch);
            out.push(Aug::CropResize {
                left,
                top,
                width: cw,
                height: ch,
                out: [w, h],
            });
        }
        if self.hflip && rng.uniform() < 0.5 {
            out.push(Aug::FlipHorizontal);
        }
        if self.vflip && rng.uniform() < 0.5 {
            out.push(Aug::FlipVertical);
        }
        if self.rotate > 0.0 {
            let r = self.rotate as f32;
            out.push(Aug::Rotate {
                degrees: rng.uniform_range(-r, r) as f64,
            });
        }
        if self.affine > 0.0 {
            let a = self.affine as f32;
            out.push(Aug::Affine {
                degrees: 0.0,
                scale: rng.uniform_range(1.0 - a, 1.0 + a) as f64,
                translate: [
                    (rng.uniform_range(-a, a) * w as f32) as f64,
                    (rng.uniform_range(-a, a) * h as f32) as f64,
                ],
                shear: [rng.uniform_range(-10.0 * a, 10.0 * a) as f64, 0.0],
            });
        }
        if self.colour > 0.0 {
            let j = self.colour;
            out.push(Aug::Brightness {
                factor: rng.uniform_range(1.0 - j, 1.0 + j),
            });
            out.push(Aug::Contrast {
                factor: rng.uniform_range(1.0 - j, 1.0 + j),
            });
            out.push(Aug::Gamma {
                gamma: rng.uniform_range(1.0 - j, 1.0 + j),
            });
        }
        if self.noise > 0.0 {
            out.push(Aug::Noise {
                std: rng.uniform_range(0.0, self.noise),
                seed: rng.next_u64(),
            });
        }
        if self.blur > 0.0 {
            out.push(Aug::Blur {
                sigma: rng.uniform_range(0.0, self.blur),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The blur with the whole kernel, tap by tap (what `blur` computed before folding).
    fn blur_tap_by_tap(img: &Planes, sigma: f32) -> Vec<f32> {
        let r = (3.0 * sigma).ceil() as isize;
        let k: Vec<f64> = (-r..=r)
            .map(|i| (-(i * i) as f64 / (2.0 * (sigma * sigma) as f64)).exp())
            .collect();
        let total: f64 = k.iter().sum();
        let (w, h) = (img.width, img.height);
        let mut tmp = vec![0f64; w * h];
        for y in 0..h {
            for x in 0..w {
                tmp[y * w + x] = (-r..=r)
                    .map(|d| {
                        k[(d + r) as usize] / total
                            * img.data[y * w + mirror(x as isize + d, w)] as f64
                    })
                    .sum();
            }
        }
        let mut out = vec![0f32; w * h];
        for y in 0..h {
            for x in 0..w {
                out[y * w + x] = (-r..=r)
                    .map(|d| k[(d + r) as usize] / total * tmp[mirror(y as isize + d, h) * w + x])
                    .sum::<f64>() as f32;
            }
        }
        out
    }

    #[test]
    fn a_blur_wider_than_the_image_equals_the_tap_by_tap_blur() {
        let (w, h) = (5, 3);
        let img = Planes {
            channels: 1,
            height: h,
            width: w,
            data: (0..w * h).map(|i| ((i * 7) % 11) as f32).collect(),
        };
        for sigma in [0.5f32, 2.0, 40.0] {
            let mut folded = img.clone();
            blur(&mut folded, sigma);
            let expected = blur_tap_by_tap(&img, sigma);
            for (a, b) in folded.data.iter().zip(&expected) {
                assert!((a - b).abs() < 1e-4, "σ {sigma}: {a} vs {b}");
            }
        }
    }
}
