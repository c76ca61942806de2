//! Input adjoint of a strided convolution (a transposed convolution) as `s_h · s_w` stride-1
//! convolutions on the direct kernel, one per output phase.
//!
//! Along one axis, with kernel `k`, stride `s` and padding `p`, the forward convolution reads
//! `x[s·o + i − p]`, so its adjoint is `dx[t] = Σ_{(o, i): s·o + i − p = t} dy[o] · W[i]`. For the
//! input positions of one phase, `t = s·u + r` (`0 ≤ r < s`), only the taps `i ≡ r + p (mod s)`
//! contribute: with `i₀ = (r + p) mod s`, `q = ⌊(r + p)/s⌋` and `i = i₀ + s·m`,
//! `dx[s·u + r] = Σ_m dy[u + q − m] · W[i₀ + s·m]` — the input adjoint of a *stride-1*
//! convolution with the sub-kernel `W_r[m] = W[i₀ + s·m]` and padding `q` (Dumoulin & Visin, "A
//! guide to convolution arithmetic for deep learning", 2016, on transposed convolutions as
//! convolutions of the undilated input). Each phase therefore runs the direct kernel's stride-1
//! adjoint (its packed panels, no column matrix), and the `s_h·s_w` results are interleaved onto
//! the input grid. For ResNet's 3×3/2 layers the phases have 1×1, 1×2, 2×1 and 2×2 sub-kernels:
//! together the 9 taps, so no work is added, where col2im multiplies into a column matrix of 9
//! rows per channel and scatters it back.

use rayon::prelude::*;

use super::conv::ConvGeometry;
use super::direct::{self, PackedFilters};
use super::epilogue::Epilogue;
use super::pointwise;

/// One axis of one phase: the input positions `s·u + r`, their count, and the sub-kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct AxisPhase {
    /// Offset `r` of the phase on the input grid.
    offset: usize,
    /// Input positions in the phase, `⌈(n − r)/s⌉`.
    len: usize,
    /// First tap `i₀` of the sub-kernel.
    first_tap: usize,
    /// Taps of the sub-kernel, `i₀, i₀ + s, … < k` (zero: the phase receives nothing).
    taps: usize,
    /// Padding `q` of the stride-1 convolution the phase is the adjoint of.
    pad: usize,
}

/// The phases along one axis of length `n`, or `None` where one would need a padding beyond its
/// sub-kernel (`r + p > k − 1`: then its adjoint would start inside `dy`, which the direct kernel
/// does not take).
fn axis_phases(n: usize, kernel: usize, stride: usize, pad: usize) -> Option<Vec<AxisPhase>> {
    (0..stride)
        .map(|r| {
            let first_tap = (r + pad) % stride;
            let taps = if first_tap < kernel {
                (kernel - 1 - first_tap) / stride + 1
            } else {
                0
            };
            let q = (r + pad) / stride;
            if taps > 0 && q > taps - 1 {
                return None;
            }
            Some(AxisPhase {
                offset: r,
                len: if r < n { (n - r).div_ceil(stride) } else { 0 },
                first_tap,
                taps,
                pad: q,
            })
        })
        .collect()
}

/// Whether [`input_adjoint`] computes the input adjoint of `g`: stride above 1 on some axis,
/// dilation 1, every phase's padding within its sub-kernel, on a CPU with the direct kernel.
pub fn applies(g: &ConvGeometry) -> bool {
    g.stride != [1, 1]
        && g.stride[0] >= 1
        && g.stride[1] >= 1
        && g.dilation == [1, 1]
        && g.c_in > 0
        && g.c_out > 0
        && direct::available()
        && axis_phases(g.in_hw[0], g.kernel[0], g.stride[0], g.pad_before[0]).is_some()
        && axis_phases(g.in_hw[1], g.kernel[1], g.stride[1], g.pad_before[1]).is_some()
}

/// The adjoint panels of every phase's sub-kernel (row phases outer, column phases inner; none
/// where a phase has no taps), for one weight, kernel, stride and padding; the input size only
/// decides how many positions each phase has, so one set serves every image size (built once per
/// weight, cached like the other layouts).
pub struct PhaseFilters {
    geometry: ConvGeometry,
    phases: Vec<Option<PackedFilters>>,
}

impl PhaseFilters {
    /// Splits `weight: [C_out, C_in, kH, kW]` of the convolution `g` (see [`applies`]) into its
    /// phases' sub-kernels and packs each for its adjoint.
    ///
    /// # Panics
    /// If `g` is not a geometry this module [`applies`] to, or sizes disagree.
    pub fn new(weight: &[f32], g: &ConvGeometry) -> Self {
        assert!(applies(g), "strided adjoint geometry");
        let [kh, kw] = g.kernel;
        assert_eq!(weight.len(), g.c_out * g.c_in * kh * kw, "weight size");
        let rows = axis_phases(g.in_hw[0], kh, g.stride[0], g.pad_before[0]).expect("applies");
        let cols = axis_phases(g.in_hw[1], kw, g.stride[1], g.pad_before[1]).expect("applies");
        let mut phases = Vec::with_capacity(rows.len() * cols.len());
        for &r in &rows {
            for &c in &cols {
                let filters = (r.taps * c.taps > 0).then(|| {
                    let mut sub = Vec::with_capacity(g.c_out * g.c_in * r.taps * c.taps);
                    for oc in 0..g.c_out * g.c_in {
                        let plane = &weight[oc * kh * kw..(oc + 1) * kh * kw];
                        for m in 0..r.taps {
                            let i = r.first_tap + g.stride[0] * m;
                            for n in 0..c.taps {
                                sub.push(plane[i * kw + c.first_tap + g.stride[1] * n]);
                            }
                        }
                    }
                    PackedFilters::adjoint(&sub, g.c_out, g.c_in, [r.taps, c.taps])
                });
                phases.push(filters);
            }
        }
        PhaseFilters {
            geometry: *g,
            phases,
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.phases.iter().flatten().map(PackedFilters::bytes).sum()
    }

    /// Whether these filters were built for the geometry `g` (batch and sizes aside).
    pub fn fits(&self, g: &ConvGeometry) -> bool {
        ConvGeometry {
            batch: g.batch,
            in_hw: g.in_hw,
            out_hw: g.out_hw,
            ..self.geometry
        } == *g
    }
}

/// `dx = Wᵀ ⋆ dy` of the strided convolution `g` (`dy: [N, C_out, oH, oW]`, returning
/// `[N, C_in, H, W]`) from the phase filters of its weight, with `epilogue` applied to the
/// result.
///
/// # Panics
/// If the filters were built for another geometry, or sizes disagree.
pub fn input_adjoint(
    dy: &[f32],
    filters: &PhaseFilters,
    g: &ConvGeometry,
    epilogue: Epilogue,
) -> Vec<f32> {
    assert!(filters.fits(g), "phase filters built for another geometry");
    let [oh, ow] = g.out_hw;
    assert_eq!(dy.len(), g.batch * g.c_out * oh * ow, "signal size");
    let [h, w] = g.in_hw;
    assert!(
        epilogue.fits(g.batch * g.c_in * h * w),
        "epilogue operand size"
    );
    // Phases without taps receive nothing; every other input position is written by exactly
    // one phase below.
    let mut dx = vec![0.0f32; g.batch * g.c_in * h * w];
    let row_phases = axis_phases(h, g.kernel[0], g.stride[0], g.pad_before[0]).expect("fits");
    let col_phases = axis_phases(w, g.kernel[1], g.stride[1], g.pad_before[1]).expect("fits");
    let phases = row_phases
        .iter()
        .flat_map(|&r| col_phases.iter().map(move |&c| (r, c)));
    for ((rows, cols), f) in phases.zip(&filters.phases) {
        let Some(f) = f else { continue };
        if rows.len * cols.len == 0 {
            continue;
        }
        // The stride-1 convolution whose adjoint this phase is, and that adjoint as a forward
        // convolution of `dy`.
        let sub = ConvGeometry {
            batch: g.batch,
            c_in: g.c_in,
            in_hw: [rows.len, cols.len],
            c_out: g.c_out,
            kernel: [rows.taps, cols.taps],
            out_hw: g.out_hw,
            stride: [1, 1],
            dilation: [1, 1],
            pad_before: [rows.pad, cols.pad],
        };
        let adjoint = direct::adjoint_geometry(&sub);
        let part = if pointwise::applies(&adjoint) {
            pointwise::convolve(dy, f, None, &adjoint, Epilogue::Store)
        } else {
            direct::convolve(dy, f, None, &adjoint, Epilogue::Store)
        };
        let (sh, sw) = (g.stride[0], g.stride[1]);
        dx.par_chunks_mut(h * w)
            .zip(part.par_chunks(rows.len * cols.len))
            .for_each(|(plane, src)| {
                for (u, src_row) in src.chunks_exact(cols.len).enumerate() {
                    let row = &mut plane[(sh * u + rows.offset) * w..][..w];
                    for (v, &value) in src_row.iter().enumerate() {
                        row[sw * v + cols.offset] = value;
                    }
                }
            });
    }
    epilogue.apply(0, &mut dx);
    dx
}

#[cfg(test)]
mod tests {
    use super::super::conv::tests::geometry;
    use super::super::direct::tests::values;
    use super::*;

    /// The adjoint straight from its definition, `dx[t] = Σ_{s·o + i − p = t} dy[o]·W[i]`.
    fn reference(dy: &[f32], weight: &[f32], g: &ConvGeometry) -> Vec<f32> {
        let [h, w] = g.in_hw;
        let [oh, ow] = g.out_hw;
        let [kh, kw] = g.kernel;
        let mut dx = vec![0.0f64; g.batch * g.c_in * h * w];
        for b in 0..g.batch {
            for o in 0..g.c_out {
                for y in 0..oh {
                    for x in 0..ow {
                        let d = dy[((b * g.c_out + o) * oh + y) * ow + x] as f64;
                        for c in 0..g.c_in {
                            for i in 0..kh {
                                for j in 0..kw {
                                    let ty =
                                        (g.stride[0] * y + i) as isize - g.pad_before[0] as isize;
                                    let tx =
                                        (g.stride[1] * x + j) as isize - g.pad_before[1] as isize;
                                    if ty < 0 || tx < 0 || ty >= h as isize || tx >= w as isize {
                                        continue;
                                    }
                                    let wv = weight[((o * g.c_in + c) * kh + i) * kw + j] as f64;
                                    dx[((b * g.c_in + c) * h + ty as usize) * w + tx as usize] +=
                                        d * wv;
                                }
                            }
                        }
                    }
                }
            }
        }
        dx.into_iter().map(|v| v as f32).collect()
    }

    #[test]
    fn phases_of_common_strided_kernels() {
        // ResNet's 3×3/2, padding 1: the even positions take the middle tap, the odd ones the
        // outer two.
        let p = axis_phases(56, 3, 2, 1).unwrap();
        assert_eq!(
            (p[0].first_tap, p[0].taps, p[0].pad, p[0].len),
            (1, 1, 0, 28)
        );
        assert_eq!(
            (p[1].first_tap, p[1].taps, p[1].pad, p[1].len),
            (0, 2, 1, 28)
        );
        // A 1×1/2 kernel leaves the odd positions without taps.
        let p = axis_phases(7, 1, 2, 0).unwrap();
        assert_eq!((p[0].taps, p[0].len, p[1].taps, p[1].len), (1, 4, 0, 3));
        // Padding past the sub-kernel: not taken.
        assert!(axis_phases(8, 2, 2, 1).is_none());
    }

    #[test]
    fn strided_adjoints_match_their_definition() {
        if !direct::available() {
            return;
        }
        // (batch, c_in, c_out, in, kernel, stride, pad): ResNet's 3×3/2 and 7×7/2, odd sizes,
        // unequal strides, kernels smaller than the stride, more than one panel and block.
        let cases = [
            (1, 5, 7, [9, 9], [3, 3], [2, 2], [1, 1]),
            (2, 16, 40, [14, 14], [3, 3], [2, 2], [1, 1]),
            (1, 3, 17, [23, 20], [7, 7], [2, 2], [3, 3]),
            (1, 70, 33, [10, 11], [3, 3], [2, 2], [0, 0]),
            (2, 4, 6, [13, 12], [3, 2], [3, 2], [0, 0]),
            (1, 6, 5, [9, 8], [1, 1], [2, 2], [0, 0]),
            (1, 8, 300, [7, 7], [3, 3], [2, 1], [1, 1]),
        ];
        for (i, &(batch, c_in, c_out, in_hw, kernel, stride, pad)) in cases.iter().enumerate() {
            let padding = [pad[0], pad[1], pad[0], pad[1]];
            let g = geometry(batch, c_in, in_hw, c_out, kernel, stride, [1, 1], padding);
            assert!(applies(&g), "case {i}");
            let weight = values(c_out * c_in * kernel[0] * kernel[1], 2 * i as u64 + 1);
            let dy = values(batch * c_out * g.out_hw[0] * g.out_hw[1], 2 * i as u64 + 2);
            let filters = PhaseFilters::new(&weight, &g);
            let got = input_adjoint(&dy, &filters, &g, Epilogue::Store);
            let want = reference(&dy, &weight, &g);
            let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            for (k, (a, b)) in got.iter().zip(&want).enumerate() {
                assert!((a - b).abs() <= 1e-5 * scale, "case {i} at {k}: {a} vs {b}");
            }
            // The epilogue sees the finished adjoint.
            let factor = values(got.len(), 99);
            let product = input_adjoint(&dy, &filters, &g, Epilogue::Product { factor: &factor });
            for ((p, a), f) in product.iter().zip(&got).zip(&factor) {
                assert_eq!(*p, a * f);
            }
        }
    }
}
