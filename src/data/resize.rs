//! Image resampling that reproduces Pillow's `Image.resize` on 8-bit images (which torchvision's
//! `Resize` calls for PIL images): a bilinear (triangle) or bicubic (Keys, a = −0.5) filter whose
//! support grows with the downscaling factor (antialiasing), separable passes (horizontal first),
//! and Pillow's 22-bit fixed-point coefficients with rounding to 8 bits after each pass.

use std::ops::Range;

use serde::{Deserialize, Serialize};

/// Resampling filter.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Filter {
    /// Triangle filter, support 1 (torchvision's default).
    #[default]
    Bilinear,
    /// Keys cubic with a = −0.5, support 2 (Pillow's default for `Image.resize`).
    Bicubic,
}

impl Filter {
    fn support(self) -> f64 {
        match self {
            Filter::Bilinear => 1.0,
            Filter::Bicubic => 2.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        let x = x.abs();
        match self {
            Filter::Bilinear => {
                if x < 1.0 {
                    1.0 - x
                } else {
                    0.0
                }
            }
            Filter::Bicubic => {
                const A: f64 = -0.5;
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
        }
    }
}

/// Fixed-point precision of Pillow's 8-bit resampling (`32 − 8 − 2`).
const PRECISION_BITS: u32 = 22;

/// The filter taps of one output position: first input index and fixed-point weights.
struct Taps {
    start: usize,
    weights: Vec<i32>,
}

/// Pillow's `precompute_coeffs` followed by `normalize_coeffs_8bpc`, for the output positions
/// in `range` only (each position's taps depend on nothing but its index and the two sizes).
fn coefficients(filter: Filter, in_size: usize, out_size: usize, range: Range<usize>) -> Vec<Taps> {
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    range
        .map(|xx| {
            let center = (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(in_size as i64) as usize;
            let raw: Vec<f64> = (xmin..xmax)
                .map(|x| filter.weight((x as f64 - center + 0.5) * ss))
                .collect();
            let total: f64 = raw.iter().sum();
            let weights = raw
                .iter()
                .map(|w| {
                    let w = if total != 0.0 { w / total } else { *w };
                    let fixed = w * (1u32 << PRECISION_BITS) as f64;
                    if fixed < 0.0 {
                        (fixed - 0.5) as i32
                    } else {
                        (fixed + 0.5) as i32
                    }
                })
                .collect();
            Taps {
                start: xmin,
                weights,
            }
        })
        .collect()
}

fn clip8(acc: i64) -> u8 {
    (acc >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Resizes interleaved 8-bit pixels (`channels` per pixel, row-major) from `w×h` to `ow×oh`
/// exactly as Pillow's resize with `filter` does.
pub fn resize_u8(
    filter: Filter,
    pixels: &[u8],
    w: usize,
    h: usize,
    channels: usize,
    ow: usize,
    oh: usize,
) -> Vec<u8> {
    let size = Size { w, h, channels };
    resize_u8_region(filter, pixels, size, [ow, oh], 0..ow, 0..oh)
}

/// Width, height and channels of an interleaved 8-bit image.
#[derive(Clone, Copy, Debug)]
pub struct Size {
    /// Width in pixels.
    pub w: usize,
    /// Height in pixels.
    pub h: usize,
    /// Values per pixel.
    pub channels: usize,
}

/// The columns `xs` × rows `ys` of [`resize_u8`]'s `out[0]×out[1]` result, computed without
/// the rest: the same values bit for bit, in memory proportional to the region (plus one
/// horizontal pass over the input's rows), so a resize followed by a centre crop never builds
/// the whole resized image.
pub fn resize_u8_region(
    filter: Filter,
    pixels: &[u8],
    size: Size,
    out: [usize; 2],
    xs: Range<usize>,
    ys: Range<usize>,
) -> Vec<u8> {
    let Size { w, h, channels } = size;
    let [ow, oh] = out;
    let half = 1i64 << (PRECISION_BITS - 1);
    let rw = xs.len();
    let horizontal = if ow != w {
        let taps = coefficients(filter, w, ow, xs);
        let mut out = vec![0u8; rw * h * channels];
        for y in 0..h {
            for (x, t) in taps.iter().enumerate() {
                for c in 0..channels {
                    let mut acc = half;
                    for (i, &k) in t.weights.iter().enumerate() {
                        acc += pixels[(y * w + t.start + i) * channels + c] as i64 * k as i64;
                    }
                    out[(y * rw + x) * channels + c] = clip8(acc);
                }
            }
        }
        out
    } else {
        (0..h)
            .flat_map(|y| &pixels[(y * w + xs.start) * channels..(y * w + xs.end) * channels])
            .copied()
            .collect()
    };
    if oh == h {
        return horizontal[ys.start * rw * channels..ys.end * rw * channels].to_vec();
    }
    let taps = coefficients(filter, h, oh, ys);
    let mut out = vec![0u8; rw * taps.len() * channels];
    for (y, t) in taps.iter().enumerate() {
        for x in 0..rw {
            for c in 0..channels {
                let mut acc = half;
                for (i, &k) in t.weights.iter().enumerate() {
                    acc += horizontal[((t.start + i) * rw + x) * channels + c] as i64 * k as i64;
                }
                out[(y * rw + x) * channels + c] = clip8(acc);
            }
        }
    }
    out
}

/// Bilinear resampling of a float plane (`w×h`, row-major) with the same antialiasing filter
/// but in floating point (heatmaps, masks).
pub fn resize_bilinear_f32(plane: &[f32], w: usize, h: usize, ow: usize, oh: usize) -> Vec<f32> {
    let float_taps = |inp: usize, out: usize| -> Vec<(usize, Vec<f32>)> {
        let scale = inp as f64 / out as f64;
        let filterscale = scale.max(1.0);
        (0..out)
            .map(|xx| {
                let center = (xx as f64 + 0.5) * scale;
                let xmin = ((center - filterscale + 0.5) as i64).max(0) as usize;
                let xmax = ((center + filterscale + 0.5) as i64).min(inp as i64) as usize;
                let raw: Vec<f64> = (xmin..xmax)
                    .map(|x| Filter::Bilinear.weight((x as f64 - center + 0.5) / filterscale))
                    .collect();
                let total: f64 = raw.iter().sum::<f64>().max(1e-300);
                (xmin, raw.iter().map(|v| (v / total) as f32).collect())
            })
            .collect()
    };
    let tx = float_taps(w, ow);
    let ty = float_taps(h, oh);
    let mut tmp = vec![0f32; ow * h];
    for y in 0..h {
        for (x, (s, k)) in tx.iter().enumerate() {
            tmp[y * ow + x] = k
                .iter()
                .enumerate()
                .map(|(i, k)| plane[y * w + s + i] * k)
                .sum();
        }
    }
    let mut out = vec![0f32; ow * oh];
    for (y, (s, k)) in ty.iter().enumerate() {
        for x in 0..ow {
            out[y * ow + x] = k
                .iter()
                .enumerate()
                .map(|(i, k)| tmp[(s + i) * ow + x] * k)
                .sum();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_size_is_a_copy_and_constant_images_stay_constant() {
        let px: Vec<u8> = (0..48).map(|i| (i * 5) as u8).collect();
        assert_eq!(resize_u8(Filter::Bilinear, &px, 4, 4, 3, 4, 4), px);
        let flat = vec![77u8; 30 * 20 * 3];
        assert!(
            resize_u8(Filter::Bicubic, &flat, 30, 20, 3, 7, 13)
                .iter()
                .all(|&v| v == 77)
        );
        let plane = vec![0.25f32; 50];
        assert!(
            resize_bilinear_f32(&plane, 10, 5, 3, 9)
                .iter()
                .all(|v| (v - 0.25).abs() < 1e-6)
        );
    }

    #[test]
    fn halving_averages_pixel_pairs() {
        // Downscaling by 2 with Pillow's widened triangle: output x takes inputs 2x−1..2x+2
        // with weights 1/8, 3/8, 3/8, 1/8 (renormalised at the border).
        let row: Vec<u8> = vec![0, 80, 160, 240];
        let out = resize_u8(Filter::Bilinear, &row, 4, 1, 1, 2, 1);
        // x=0: inputs 0,1,2 weights 3/7,3/7,1/7 → (0·3 + 80·3 + 160)/7 = 57.14 → 57
        // x=1: inputs 1,2,3 weights 1/7,3/7,3/7 → (80 + 480 + 720)/7 = 182.86 → 183
        assert_eq!(out, vec![57, 183]);
    }
}
