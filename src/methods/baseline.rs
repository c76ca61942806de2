//! Reference inputs ("baselines") for Integrated Gradients and Occlusion: the input that stands
//! for "no information", in the model's input space.

use std::str::FromStr;

use super::MethodError;
use crate::graph::ModelCard;
use crate::tensor::{T4, from_vec, to_vec};

/// Default σ of the blurred baseline, in pixels.
pub const DEFAULT_BLUR_SIGMA: f32 = 5.0;

/// A reference input.
#[derive(Clone, Debug, PartialEq)]
pub enum Baseline {
    /// All zeros in the model's input space (Captum's default; after ImageNet normalisation this
    /// is the mean colour, not black).
    Zero,
    /// Black pixels (value 0 before normalisation), i.e. the card's normalisation of 0.
    Black,
    /// The input blurred by a Gaussian of standard deviation `sigma` pixels (Sturmfels et al.,
    /// "Visualizing the Impact of Feature Attribution Baselines", Distill 2020).
    Blur {
        /// Standard deviation in pixels.
        sigma: f32,
    },
    /// A constant in the model's input space.
    Value(f32),
}

impl FromStr for Baseline {
    type Err = MethodError;

    /// `zero`, `black`, `blur`, `blur:SIGMA` or a number.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            MethodError::Invalid(format!(
                "bad baseline '{s}': use zero, black, blur, blur:SIGMA (pixels) or a number"
            ))
        };
        match s.trim() {
            "zero" | "zeros" => Ok(Baseline::Zero),
            "black" => Ok(Baseline::Black),
            "blur" => Ok(Baseline::Blur {
                sigma: DEFAULT_BLUR_SIGMA,
            }),
            other => {
                if let Some(sigma) = other.strip_prefix("blur:") {
                    let sigma: f32 = sigma.parse().map_err(|_| bad())?;
                    if !(sigma > 0.0 && sigma.is_finite()) {
                        return Err(bad());
                    }
                    Ok(Baseline::Blur { sigma })
                } else {
                    let v: f32 = other.parse().map_err(|_| bad())?;
                    if !v.is_finite() {
                        return Err(bad());
                    }
                    Ok(Baseline::Value(v))
                }
            }
        }
    }
}

impl std::fmt::Display for Baseline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Baseline::Zero => write!(f, "zero"),
            Baseline::Black => write!(f, "black"),
            Baseline::Blur { sigma } => write!(f, "blur:{sigma}"),
            Baseline::Value(v) => write!(f, "{v}"),
        }
    }
}

impl Baseline {
    /// The baseline for every image of `x` (`[N, C, H, W]`).
    pub fn image(&self, x: &T4, card: &ModelCard) -> T4 {
        match self {
            Baseline::Zero => x.zeros_like(),
            Baseline::Value(v) => x.zeros_like().add_scalar(*v),
            Baseline::Black => {
                let [n, c, h, w] = x.dims();
                let shift: Vec<f32> = card
                    .normalization
                    .affine(c)
                    .into_iter()
                    .map(|(_, b)| b)
                    .collect();
                from_vec(shift, [1, c, 1, 1]).expand([n, c, h, w])
            }
            Baseline::Blur { sigma } => {
                let dims = x.dims();
                from_vec(gaussian_blur(&to_vec(x), dims, *sigma), dims)
            }
        }
    }
}

/// Separable Gaussian blur of every plane of a `[N, C, H, W]` array, radius `⌈3σ⌉`, borders
/// replicated.
pub fn gaussian_blur(values: &[f32], dims: [usize; 4], sigma: f32) -> Vec<f32> {
    let [n, c, h, w] = dims;
    let radius = (3.0 * sigma).ceil() as i64;
    let kernel: Vec<f32> = {
        let k: Vec<f64> = (-radius..=radius)
            .map(|i| (-(i * i) as f64 / (2.0 * (sigma as f64).powi(2))).exp())
            .collect();
        let total: f64 = k.iter().sum();
        k.into_iter().map(|v| (v / total) as f32).collect()
    };
    let clamp = |i: i64, len: usize| i.clamp(0, len as i64 - 1) as usize;
    let mut out = vec![0.0f32; values.len()];
    let mut tmp = vec![0.0f32; h * w];
    for plane in 0..n * c {
        let src = &values[plane * h * w..(plane + 1) * h * w];
        for y in 0..h {
            for x in 0..w {
                tmp[y * w + x] = kernel
                    .iter()
                    .enumerate()
                    .map(|(k, wt)| wt * src[y * w + clamp(x as i64 + k as i64 - radius, w)])
                    .sum();
            }
        }
        let dst = &mut out[plane * h * w..(plane + 1) * h * w];
        for y in 0..h {
            for x in 0..w {
                dst[y * w + x] = kernel
                    .iter()
                    .enumerate()
                    .map(|(k, wt)| wt * tmp[clamp(y as i64 + k as i64 - radius, h) * w + x])
                    .sum();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_builds_baselines() {
        assert_eq!("zero".parse::<Baseline>().unwrap(), Baseline::Zero);
        assert_eq!(
            "blur:2.5".parse::<Baseline>().unwrap(),
            Baseline::Blur { sigma: 2.5 }
        );
        assert_eq!("-0.5".parse::<Baseline>().unwrap(), Baseline::Value(-0.5));
        assert!("blur:-1".parse::<Baseline>().is_err());
        assert!("grey".parse::<Baseline>().is_err());

        let card = ModelCard::default(); // ImageNet normalisation
        let x = from_vec(vec![1.0; 2 * 3 * 4], [2, 3, 2, 2]);
        let black = to_vec(&Baseline::Black.image(&x, &card));
        // (0 − mean) / std for the red channel
        assert!((black[0] - (-0.485 / 0.229)).abs() < 1e-6);
        assert!((black[4] - (-0.456 / 0.224)).abs() < 1e-6);
    }

    #[test]
    fn blur_keeps_constants_and_the_mean_of_a_periodic_signal() {
        let dims = [1, 1, 9, 40];
        let constant = vec![2.5f32; 9 * 40];
        for v in gaussian_blur(&constant, dims, 3.0) {
            assert!((v - 2.5).abs() < 1e-5);
        }
        // A fast alternating pattern is flattened towards its mean far from the borders.
        let stripes: Vec<f32> = (0..9 * 40)
            .map(|i| if i % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        let out = gaussian_blur(&stripes, dims, 3.0);
        assert!(out[4 * 40 + 20].abs() < 1e-3, "{}", out[4 * 40 + 20]);
    }
}
