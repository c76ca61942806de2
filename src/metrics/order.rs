//! Orders of pixels by relevance and their division into perturbation steps.

use serde::Serialize;

use super::MetricError;

/// Pixel indices by decreasing value; equal values keep index order (a stable sort).
pub fn descending(values: &[f32]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    idx
}

/// Pixel indices by increasing value; equal values keep index order.
pub fn ascending(values: &[f32]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    idx
}

/// Quantises a map to `levels` equal-width levels between its minimum and maximum:
/// `q_i = min(L − 1, ⌊L·(v_i − min)/(max − min)⌋)`; a constant map is all level 0.
pub fn quantise(values: &[f32], levels: usize) -> Vec<usize> {
    let lo = values.iter().copied().fold(f32::INFINITY, f32::min) as f64;
    let hi = values.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    if hi <= lo {
        return vec![0; values.len()];
    }
    values
        .iter()
        .map(|&v| (((v as f64 - lo) / (hi - lo) * levels as f64) as usize).min(levels - 1))
        .collect()
}

/// How many pixels change per perturbation step.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// A fixed number of pixels per step (RISE: 224 on 224×224 images).
    Pixels(usize),
    /// A fraction of all pixels per step, `⌈f·H·W⌉` pixels (an `f·H·W` within 10⁻³ of an integer
    /// is taken as that integer, so `1/224` of 224² is 224 pixels despite f32 rounding).
    Fraction(f32),
}

impl Step {
    /// Pixels per step for a map of `n` pixels.
    pub fn pixels(self, n: usize) -> Result<usize, MetricError> {
        match self {
            Step::Pixels(k) if k > 0 => Ok(k),
            Step::Fraction(f) if f > 0.0 && f <= 1.0 => {
                // f32 fractions such as 1/224 are not exact: 1/224 · 50176 = 224.00001, which must
                // stay 224 pixels, so near-integers round instead of rounding up.
                let exact = f as f64 * n as f64;
                let k = if (exact - exact.round()).abs() < 1e-3 {
                    exact.round()
                } else {
                    exact.ceil()
                };
                Ok((k as usize).max(1))
            }
            other => Err(MetricError::Invalid(format!(
                "step {other:?}: need a positive pixel count or a fraction in (0, 1]"
            ))),
        }
    }
}

/// How pixels of equal relevance are treated when the map is turned into steps.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ties {
    /// Order by a stable sort (ties in row-major index order) and cut into steps of [`Step`].
    Stable,
    /// Quantise the map to `levels` levels first ([`quantise`]) and change one whole level per
    /// step, from the top level down; the step size is then ignored (Otsuki et al. 2024 use 8
    /// levels).
    Quantise {
        /// Number of levels `L`.
        levels: usize,
    },
}

/// An order of pixels and the ends of the steps along it: step `k` changes
/// `order[ends[k−1]..ends[k]]` (with `ends[−1] = 0`); the last end is the pixel count.
#[derive(Clone, Debug, PartialEq)]
pub struct Schedule {
    /// Pixel indices, most relevant first.
    pub order: Vec<usize>,
    /// Exclusive end of each step in `order`, increasing, last = number of pixels.
    pub ends: Vec<usize>,
}

impl Schedule {
    /// The schedule of `map` (most relevant first) for a step size and tie rule.
    pub fn new(map: &[f32], step: Step, ties: Ties) -> Result<Self, MetricError> {
        let n = map.len();
        match ties {
            Ties::Stable => {
                let k = step.pixels(n)?;
                let ends = (1..=n.div_ceil(k)).map(|s| (s * k).min(n)).collect();
                Ok(Schedule {
                    order: descending(map),
                    ends,
                })
            }
            Ties::Quantise { levels } => {
                if levels < 2 {
                    return Err(MetricError::Invalid(format!(
                        "quantising needs at least 2 levels, got {levels}"
                    )));
                }
                let q = quantise(map, levels);
                let mut order: Vec<usize> = (0..n).collect();
                order.sort_by(|&a, &b| q[b].cmp(&q[a]));
                let mut ends = Vec::new();
                for i in 1..=n {
                    if i == n || q[order[i]] != q[order[i - 1]] {
                        ends.push(i);
                    }
                }
                Ok(Schedule { order, ends })
            }
        }
    }

    /// Number of steps.
    pub fn steps(&self) -> usize {
        self.ends.len()
    }

    /// Fraction of pixels changed after each step, starting with 0 before the first:
    /// `[0, ends[0]/n, …, 1]`.
    pub fn fractions(&self) -> Vec<f64> {
        let n = self.order.len() as f64;
        std::iter::once(0.0)
            .chain(self.ends.iter().map(|&e| e as f64 / n))
            .collect()
    }

    /// Pixels changed by step `k` (0-based).
    pub fn step(&self, k: usize) -> &[usize] {
        let start = if k == 0 { 0 } else { self.ends[k - 1] };
        &self.order[start..self.ends[k]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_order_keeps_index_order_on_ties() {
        assert_eq!(descending(&[1.0, 3.0, 1.0, 3.0]), [1, 3, 0, 2]);
        assert_eq!(ascending(&[1.0, 3.0, 1.0, 3.0]), [0, 2, 1, 3]);
    }

    #[test]
    fn steps_cover_every_pixel_once() {
        let s = Schedule::new(&[0.1, 0.5, 0.2, 0.9, 0.3], Step::Pixels(2), Ties::Stable).unwrap();
        assert_eq!(s.order, [3, 1, 4, 2, 0]);
        assert_eq!(s.ends, [2, 4, 5]);
        assert_eq!(s.step(2), [0]);
        assert_eq!(s.fractions(), [0.0, 0.4, 0.8, 1.0]);
        let f = Schedule::new(&[0.0; 10], Step::Fraction(0.25), Ties::Stable).unwrap();
        assert_eq!(f.ends, [3, 6, 9, 10]);
        assert_eq!(Step::Fraction(1.0 / 224.0).pixels(224 * 224).unwrap(), 224);
        assert_eq!(Step::Fraction(0.01).pixels(224 * 224).unwrap(), 502);
    }

    #[test]
    fn quantised_levels_are_inserted_together() {
        // range [0, 1], 4 levels: [0, .25) → 0, [.25, .5) → 1, [.5, .75) → 2, [.75, 1] → 3
        let map = [0.0, 0.8, 0.3, 1.0, 0.26, 0.1];
        assert_eq!(quantise(&map, 4), [0, 3, 1, 3, 1, 0]);
        let s = Schedule::new(&map, Step::Pixels(1), Ties::Quantise { levels: 4 }).unwrap();
        assert_eq!(s.order, [1, 3, 2, 4, 0, 5]);
        assert_eq!(s.ends, [2, 4, 6]); // level 2 is empty and makes no step
        assert_eq!(quantise(&[2.0; 3], 8), [0, 0, 0]);
    }
}
