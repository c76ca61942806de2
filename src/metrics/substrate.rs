//! What perturbed pixels are replaced with: a constant, an image statistic, a blurred copy of the
//! image (RISE) or a user's image. Substrates act in the model's input space (on normalised
//! values); [`Substrate::pixel_value`] converts a pixel-space value (0–255) through the model
//! card's normalisation.

use super::{ImageView, MetricError};
use crate::graph::Normalization;

/// The image perturbed pixels take their values from.
#[derive(Clone, Debug, PartialEq)]
pub enum Substrate {
    /// 0 in the model's input space (RISE's deletion substrate, applied to normalised tensors;
    /// for ImageNet normalisation this is the mean colour, not black).
    Zero,
    /// A constant per channel in input space (one value applies to every channel).
    Value(Vec<f32>),
    /// The image's mean of each channel.
    ChannelMean,
    /// The mean over all values of the image (Quantus' `perturb_baseline="mean"`, computed once
    /// on the unperturbed image).
    ImageMean,
    /// The smallest value of the image (Quantus' `perturb_baseline="black"`).
    ImageMin,
    /// The largest value of the image (Quantus' `"white"`).
    ImageMax,
    /// The image blurred by RISE's kernel ([`rise_kernel`]) with zero padding, channel by channel
    /// (Petsiuk et al. 2018 use `kernel` 11, `sigma` 5 for insertion).
    Blur {
        /// Kernel side (odd).
        kernel: usize,
        /// Standard deviation of the Gaussian in pixels.
        sigma: f32,
    },
    /// A user-given image of the same shape, in input space.
    Image(Vec<f32>),
}

impl Substrate {
    /// RISE's insertion substrate: blur with kernel 11, σ 5.
    pub fn rise_blur() -> Self {
        Substrate::Blur {
            kernel: 11,
            sigma: 5.0,
        }
    }

    /// A pixel-space value `v` (0–255, e.g. 0 for black) mapped to input space per channel with
    /// `norm` (`v·scale_c + shift_c`).
    pub fn pixel_value(v: f32, norm: &Normalization, channels: usize) -> Self {
        Substrate::Value(
            norm.affine(channels)
                .into_iter()
                .map(|(scale, shift)| v * scale + shift)
                .collect(),
        )
    }

    /// A short description stated in results, e.g. `blur(kernel=11, sigma=5)`.
    pub fn describe(&self) -> String {
        match self {
            Substrate::Zero => "zero (input space)".into(),
            Substrate::Value(v) => format!("value {v:?} (input space)"),
            Substrate::ChannelMean => "channel mean of the image".into(),
            Substrate::ImageMean => "mean of the image".into(),
            Substrate::ImageMin => "minimum of the image".into(),
            Substrate::ImageMax => "maximum of the image".into(),
            Substrate::Blur { kernel, sigma } => {
                format!("blur(kernel={kernel}, sigma={sigma}, RISE kernel, zero padding)")
            }
            Substrate::Image(_) => "custom image".into(),
        }
    }

    /// The full substrate image for `image` (same `[C, H, W]` shape).
    pub fn build(&self, image: &ImageView) -> Result<Vec<f32>, MetricError> {
        let data = image.data;
        let plane = image.pixels();
        let fill = |v: f32| vec![v; data.len()];
        let per_channel = |values: &[f32]| -> Vec<f32> {
            (0..image.channels)
                .flat_map(|c| std::iter::repeat_n(values[c], plane))
                .collect()
        };
        Ok(match self {
            Substrate::Zero => fill(0.0),
            Substrate::Value(v) => match v.len() {
                1 => fill(v[0]),
                n if n == image.channels => per_channel(v),
                n => {
                    return Err(MetricError::Invalid(format!(
                        "substrate has {n} channel values, the image has {} channels",
                        image.channels
                    )));
                }
            },
            Substrate::ChannelMean => {
                let means: Vec<f32> = data
                    .chunks(plane)
                    .map(|ch| (ch.iter().map(|&v| v as f64).sum::<f64>() / plane as f64) as f32)
                    .collect();
                per_channel(&means)
            }
            Substrate::ImageMean => {
                fill((data.iter().map(|&v| v as f64).sum::<f64>() / data.len() as f64) as f32)
            }
            Substrate::ImageMin => fill(data.iter().copied().fold(f32::INFINITY, f32::min)),
            Substrate::ImageMax => fill(data.iter().copied().fold(f32::NEG_INFINITY, f32::max)),
            Substrate::Blur { kernel, sigma } => {
                if kernel % 2 == 0 || *sigma <= 0.0 {
                    return Err(MetricError::Invalid(format!(
                        "blur needs an odd kernel and σ > 0, got kernel {kernel}, σ {sigma}"
                    )));
                }
                let g = rise_kernel_1d(*kernel, *sigma as f64);
                let mut out = Vec::with_capacity(data.len());
                for ch in data.chunks(plane) {
                    out.extend(blur_plane(ch, image.height, image.width, &g));
                }
                out
            }
            Substrate::Image(v) => {
                if v.len() != data.len() {
                    return Err(MetricError::Shape(format!(
                        "substrate image has {} values, the image {}",
                        v.len(),
                        data.len()
                    )));
                }
                v.clone()
            }
        })
    }
}

/// RISE's blur kernel (`gkern` of Petsiuk et al.): a unit impulse in the centre of a
/// `size × size` grid filtered by `scipy.ndimage.gaussian_filter(σ)` (truncated at 4σ,
/// mode `reflect`). With σ large against the grid, reflection folds the Gaussian's tails back
/// in, so the kernel is flatter than a sampled Gaussian and sums to 1. It is separable:
/// `k = g gᵀ` with `g` from [`rise_kernel_1d`]; returned row-major.
pub fn rise_kernel(size: usize, sigma: f32) -> Vec<f32> {
    let g = rise_kernel_1d(size, sigma as f64);
    g.iter()
        .flat_map(|&a| g.iter().map(move |&b| (a * b) as f32))
        .collect()
}

/// One factor of [`rise_kernel`]: `g_i = Σ_t w_t [reflect(i + t) = size/2]` for the normalised
/// Gaussian weights `w_t ∝ exp(−t²/2σ²)`, `|t| ≤ ⌊4σ + ½⌋`, and scipy's `reflect` boundary
/// (`d c b a | a b c d | d c b a`).
pub fn rise_kernel_1d(size: usize, sigma: f64) -> Vec<f64> {
    let radius = (4.0 * sigma + 0.5) as i64;
    let weights: Vec<f64> = (-radius..=radius)
        .map(|t| (-0.5 * (t * t) as f64 / (sigma * sigma)).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let n = size as i64;
    let centre = n / 2;
    let reflect = |j: i64| {
        let m = j.rem_euclid(2 * n);
        if m >= n { 2 * n - 1 - m } else { m }
    };
    (0..n)
        .map(|i| {
            (-radius..=radius)
                .zip(&weights)
                .filter(|(t, _)| reflect(i + t) == centre)
                .map(|(_, w)| w / total)
                .sum()
        })
        .collect()
}

/// Convolves one `[H, W]` plane with the separable kernel `g gᵀ`, zero padding (as RISE's
/// `conv2d(x, k, padding=size//2)`).
fn blur_plane(plane: &[f32], h: usize, w: usize, g: &[f64]) -> Vec<f32> {
    let r = (g.len() / 2) as isize;
    let mut rows = vec![0.0f64; h * w];
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for (k, &gk) in g.iter().enumerate() {
                let xx = x as isize + k as isize - r;
                if (0..w as isize).contains(&xx) {
                    acc += gk * plane[y * w + xx as usize] as f64;
                }
            }
            rows[y * w + x] = acc;
        }
    }
    let mut out = vec![0.0f32; h * w];
    for y in 0..h {
        for x in 0..w {
            let mut acc = 0.0;
            for (k, &gk) in g.iter().enumerate() {
                let yy = y as isize + k as isize - r;
                if (0..h as isize).contains(&yy) {
                    acc += gk * rows[yy as usize * w + x];
                }
            }
            out[y * w + x] = acc as f32;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_sums_to_one_and_is_symmetric() {
        let k = rise_kernel(11, 5.0);
        let s: f32 = k.iter().sum();
        assert!((s - 1.0).abs() < 1e-5, "sum {s}");
        for y in 0..11 {
            for x in 0..11 {
                assert!((k[y * 11 + x] - k[x * 11 + y]).abs() < 1e-9);
                assert!((k[y * 11 + x] - k[(10 - y) * 11 + x]).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn small_sigma_is_a_sampled_gaussian() {
        // With σ small against the grid no tail reaches the border: plain normalised Gaussian.
        let g = rise_kernel_1d(11, 1.0);
        let w: Vec<f64> = (-4..=4)
            .map(|t: i32| (-0.5 * (t * t) as f64).exp())
            .collect();
        let total: f64 = w.iter().sum();
        assert!(g[0].abs() < 1e-12);
        for t in -4..=4 {
            assert!((g[(5 + t) as usize] - w[(t + 4) as usize] / total).abs() < 1e-12);
        }
    }

    #[test]
    fn constant_image_blurs_to_itself_inside_and_darkens_at_zero_padded_borders() {
        let img = vec![2.0f32; 15 * 15];
        let view = ImageView::new(&img, [1, 15, 15]).unwrap();
        let b = Substrate::rise_blur().build(&view).unwrap();
        assert!((b[7 * 15 + 7] - 2.0).abs() < 1e-5);
        assert!(b[0] < 2.0 * 0.5);
    }

    #[test]
    fn statistics_and_pixel_values() {
        let img = vec![1.0, 2.0, 3.0, 6.0]; // 2 channels × 2 pixels
        let v = ImageView::new(&img, [2, 1, 2]).unwrap();
        assert_eq!(
            Substrate::ChannelMean.build(&v).unwrap(),
            [1.5, 1.5, 4.5, 4.5]
        );
        assert_eq!(Substrate::ImageMean.build(&v).unwrap(), [3.0; 4]);
        assert_eq!(Substrate::ImageMin.build(&v).unwrap(), [1.0; 4]);
        assert_eq!(Substrate::ImageMax.build(&v).unwrap(), [6.0; 4]);
        assert_eq!(
            Substrate::Value(vec![7.0, 8.0]).build(&v).unwrap(),
            [7.0, 7.0, 8.0, 8.0]
        );
        let Substrate::Value(black) = Substrate::pixel_value(0.0, &Normalization::Imagenet, 3)
        else {
            unreachable!()
        };
        assert!((black[0] - (-0.485 / 0.229)).abs() < 1e-6);
    }
}
