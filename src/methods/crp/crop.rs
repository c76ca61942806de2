//! Receptive-field crops of reference images, as zennit-crp's `vis_opaque_img` draws them: the
//! single-neuron conditional heatmap is smoothed with a Gaussian (kernel 19, σ = 3.2,
//! torchvision's default σ for that size, reflected borders), divided by its maximum, the image
//! is cropped to the bounding box of the pixels above `crop_th` = 0.1, and pixels at or below
//! `vis_th` = 0.2 are dimmed to `alpha` = 0.3.
//!
//! One deliberate difference: zennit-crp slices `[row_min : row_max]`, which drops the last row
//! and column of the box; the box here includes them.

use crate::data::Image;

/// Parameters of the crop and the dimming.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CropStyle {
    /// Gaussian kernel size (odd).
    pub kernel: usize,
    /// Crop to where the normalised smoothed heatmap exceeds this.
    pub crop_th: f32,
    /// Keep full brightness where it exceeds this.
    pub vis_th: f32,
    /// Brightness factor elsewhere.
    pub alpha: f32,
}

impl Default for CropStyle {
    fn default() -> Self {
        CropStyle {
            kernel: 19,
            crop_th: 0.1,
            vis_th: 0.2,
            alpha: 0.3,
        }
    }
}

/// Inclusive pixel box `[y0, y1] × [x0, x1]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CropBox {
    /// First row.
    pub y0: usize,
    /// Last row.
    pub y1: usize,
    /// First column.
    pub x0: usize,
    /// Last column.
    pub x1: usize,
}

/// torchvision's `gaussian_blur` of an `h × w` map: separable kernel of size `k` with
/// `σ = 0.3·((k − 1)/2 − 1) + 0.8`, reflect padding (the kernel is shrunk to fit small maps).
pub fn gaussian_blur(map: &[f32], h: usize, w: usize, k: usize) -> Vec<f32> {
    let blur_axis = |input: &[f32], len: usize, stride: usize, count: usize, step: usize| {
        // Reflection needs a half-width below the axis length.
        let half = ((k - 1) / 2).min(len.saturating_sub(1));
        let size = 2 * half + 1;
        let sigma = 0.3 * ((k as f64 - 1.0) * 0.5 - 1.0) + 0.8;
        let weights: Vec<f64> = (0..size)
            .map(|i| {
                let x = i as f64 - half as f64;
                (-0.5 * (x / sigma).powi(2)).exp()
            })
            .collect();
        let norm: f64 = weights.iter().sum();
        let reflect = |i: isize| -> usize {
            let n = len as isize;
            let mut j = i;
            if j < 0 {
                j = -j;
            }
            if j >= n {
                j = 2 * (n - 1) - j;
            }
            j as usize
        };
        let mut out = vec![0.0f32; input.len()];
        for line in 0..count {
            let base = line * step;
            for i in 0..len {
                let acc: f64 = weights
                    .iter()
                    .enumerate()
                    .map(|(t, wt)| {
                        let j = reflect(i as isize + t as isize - half as isize);
                        wt * input[base + j * stride] as f64
                    })
                    .sum();
                out[base + i * stride] = (acc / norm) as f32;
            }
        }
        out
    };
    let rows = blur_axis(map, w, 1, h, w);
    blur_axis(&rows, h, w, w, 1)
}

/// `map / (max(map) + 10⁻¹⁰)` (zennit-crp's `max_norm`).
pub fn max_norm(map: &[f32]) -> Vec<f32> {
    let m = map.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    map.iter().map(|v| v / (m + 1e-10)).collect()
}

/// The bounding box of the pixels above `threshold`, or `None` when it is empty or a single
/// pixel.
pub fn crop_box(norm: &[f32], h: usize, w: usize, threshold: f32) -> Option<CropBox> {
    let mut b: Option<CropBox> = None;
    for y in 0..h {
        for x in 0..w {
            if norm[y * w + x] > threshold {
                b = Some(match b {
                    None => CropBox {
                        y0: y,
                        y1: y,
                        x0: x,
                        x1: x,
                    },
                    Some(c) => CropBox {
                        y0: c.y0.min(y),
                        y1: c.y1.max(y),
                        x0: c.x0.min(x),
                        x1: c.x1.max(x),
                    },
                });
            }
        }
    }
    b.filter(|c| c.y1 > c.y0 || c.x1 > c.x0)
}

/// A reference image drawn for the atlas: the crop and the dimmed pixels.
pub struct Reference {
    /// The region shown (the whole image when the heatmap gives no box).
    pub crop: CropBox,
    /// RGB pixels of the crop, dimmed outside the relevant region.
    pub image: Image,
}

/// Crops and dims `image` (the model-input-sized picture) by the single-neuron heatmap `heat`
/// (`h × w`, same size as the image).
pub fn draw_reference(image: &Image, heat: &[f32], style: &CropStyle) -> Reference {
    let (h, w) = (image.height, image.width);
    let smooth = max_norm(&gaussian_blur(heat, h, w, style.kernel));
    let full = CropBox {
        y0: 0,
        y1: h - 1,
        x0: 0,
        x1: w - 1,
    };
    let crop = crop_box(&smooth, h, w, style.crop_th).unwrap_or(full);
    let (ch, cw) = (crop.y1 - crop.y0 + 1, crop.x1 - crop.x0 + 1);
    let mut pixels = Vec::with_capacity(ch * cw * 3);
    for y in crop.y0..=crop.y1 {
        for x in crop.x0..=crop.x1 {
            let keep = smooth[y * w + x] > style.vis_th;
            let factor = if keep { 1.0 } else { style.alpha };
            for c in 0..3 {
                let src = if image.channels == 1 { 0 } else { c };
                let v = image.pixels[(y * w + x) * image.channels + src] as f32 * factor;
                pixels.push(v.round().clamp(0.0, 255.0) as u8);
            }
        }
    }
    Reference {
        crop,
        image: Image {
            width: cw,
            height: ch,
            channels: 3,
            pixels,
        },
    }
}
