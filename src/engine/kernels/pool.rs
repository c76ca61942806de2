//! Max pooling with arg-max indices and its adjoint, one `[H, W]` plane per task.
//!
//! `y[p] = max_{(i,j) ∈ window(p)} x[i, j]` over the window's in-bounds positions (padding never
//! wins, as in torch), with the first maximum in row-major window order kept as the index
//! `i·W + j` (burn's and torch's convention, so the indices are interchangeable with theirs). The
//! adjoint sends each output's signal to its arg-max: `dx[idx[p]] += g[p]`.

use rayon::prelude::*;

/// Geometry of a max pooling: plane count (`N·C`), input and output sizes, kernel, stride,
/// dilation and the padding before the first row and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolGeometry {
    /// Planes, `N · C`.
    pub planes: usize,
    /// Input height and width.
    pub in_hw: [usize; 2],
    /// Output height and width.
    pub out_hw: [usize; 2],
    /// Window height and width.
    pub kernel: [usize; 2],
    /// Stride.
    pub stride: [usize; 2],
    /// Dilation.
    pub dilation: [usize; 2],
    /// Padding above and left of the input.
    pub pad_before: [usize; 2],
}

/// Output length of a max pooling along one axis, torch's rule: `⌊(n + pads − d(k−1) − 1)/s⌋ + 1`
/// (ceiling with `ceil_mode`), minus one where ceil mode would start the last window in the
/// trailing padding.
pub fn pooled_len(
    n: usize,
    pads: [usize; 2],
    kernel: usize,
    stride: usize,
    dilation: usize,
    ceil_mode: bool,
) -> usize {
    let span = n + pads[0] + pads[1];
    let reach = dilation * (kernel - 1) + 1;
    if span < reach {
        return 0;
    }
    let extra = if ceil_mode { stride - 1 } else { 0 };
    let mut out = (span - reach + extra) / stride + 1;
    if ceil_mode && (out - 1) * stride >= n + pads[0] {
        out -= 1;
    }
    out
}

/// Max pooling of `x` (`planes × H × W`): values and arg-max indices within each plane.
pub fn max_pool2d(x: &[f32], g: &PoolGeometry) -> (Vec<f32>, Vec<i64>) {
    let [in_h, in_w] = g.in_hw;
    let [out_h, out_w] = g.out_hw;
    let (plane_in, plane_out) = (in_h * in_w, out_h * out_w);
    assert_eq!(x.len(), g.planes * plane_in, "input size");
    let mut y = vec![0.0f32; g.planes * plane_out];
    let mut idx = vec![0i64; g.planes * plane_out];
    if plane_out == 0 {
        return (y, idx);
    }
    // Per output row/column: the in-bounds window taps, computed once for all planes and
    // stored flat (offsets into `taps`), so the inner loops run over short contiguous slices.
    let axis_taps = |axis: usize, outs: usize, n: usize| -> (Vec<usize>, Vec<usize>) {
        let mut taps = Vec::new();
        let mut starts = vec![0];
        for o in 0..outs {
            for k in 0..g.kernel[axis] {
                let i = (o * g.stride[axis] + k * g.dilation[axis]) as isize
                    - g.pad_before[axis] as isize;
                if (0..n as isize).contains(&i) {
                    taps.push(i as usize);
                }
            }
            starts.push(taps.len());
        }
        (taps, starts)
    };
    let (row_taps, row_starts) = axis_taps(0, out_h, in_h);
    let (col_taps, col_starts) = axis_taps(1, out_w, in_w);
    let (sw, pl) = (g.stride[1], g.pad_before[1]);
    // Output columns whose window lies wholly inside the input: ow·s ≥ pad and ow·s − pad + k ≤ W.
    let interior = {
        let lo = pl.div_ceil(sw);
        let hi = if in_w + pl >= g.kernel[1] {
            ((in_w + pl - g.kernel[1]) / sw + 1).min(out_w)
        } else {
            0
        };
        (lo.min(hi), hi)
    };
    y.par_chunks_mut(plane_out)
        .zip(idx.par_chunks_mut(plane_out))
        .enumerate()
        .for_each(|(plane, (yp, ip))| {
            let xp = &x[plane * plane_in..(plane + 1) * plane_in];
            for oh in 0..out_h {
                let rows = &row_taps[row_starts[oh]..row_starts[oh + 1]];
                let (y_row, i_row) = (
                    &mut yp[oh * out_w..(oh + 1) * out_w],
                    &mut ip[oh * out_w..(oh + 1) * out_w],
                );
                // Windows wholly inside the input with a 2×2 or 3×3 undilated kernel (VGG's and
                // ResNet's pools): an unrolled loop, several times faster than the general one.
                let (lo, hi) = if rows.len() == g.kernel[0] && g.dilation == [1, 1] {
                    (interior.0, interior.1)
                } else {
                    (0, 0)
                };
                match g.kernel {
                    [2, 2] if hi > lo => {
                        window_max::<2>(xp, in_w, rows[0], lo..hi, sw, pl, y_row, i_row)
                    }
                    [3, 3] if hi > lo => {
                        window_max::<3>(xp, in_w, rows[0], lo..hi, sw, pl, y_row, i_row)
                    }
                    _ => {}
                }
                let fast = if matches!(g.kernel, [2, 2] | [3, 3]) {
                    lo..hi
                } else {
                    0..0
                };
                for (ow, (yv, iv)) in y_row.iter_mut().zip(i_row.iter_mut()).enumerate() {
                    if fast.contains(&ow) {
                        continue;
                    }
                    let cols = &col_taps[col_starts[ow]..col_starts[ow + 1]];
                    if rows.is_empty() || cols.is_empty() {
                        (*yv, *iv) = (f32::NEG_INFINITY, -1);
                        continue;
                    }
                    let mut at = rows[0] * in_w + cols[0];
                    let mut best = xp[at];
                    for &r in rows {
                        let x_row = &xp[r * in_w..(r + 1) * in_w];
                        for &c in cols {
                            let v = x_row[c];
                            // Strictly greater keeps the first maximum; NaN always wins. Selects,
                            // not branches: on real activations the comparison is a coin flip.
                            let take = v > best || v.is_nan();
                            best = if take { v } else { best };
                            at = if take { r * in_w + c } else { at };
                        }
                    }
                    *yv = best;
                    *iv = at as i64;
                }
            }
        });
    (y, idx)
}

/// Max and first arg-max of the `K×K` windows at rows `top..top+K` and columns
/// `ow·stride − pad ..+K` for `ow` in `outs`, all inside the plane `xp` of width `w`.
#[allow(clippy::too_many_arguments)]
fn window_max<const K: usize>(
    xp: &[f32],
    w: usize,
    top: usize,
    outs: std::ops::Range<usize>,
    stride: usize,
    pad: usize,
    y_row: &mut [f32],
    i_row: &mut [i64],
) {
    for ow in outs {
        let left = ow * stride - pad;
        let mut at = top * w + left;
        let mut best = xp[at];
        for i in 0..K {
            for j in 0..K {
                let k = (top + i) * w + left + j;
                let v = xp[k];
                // Branch-free select through bit masks: on real activations `take` is a coin
                // flip, and a mispredicted branch per tap cost more than the whole window.
                let mask = 0u32.wrapping_sub(((v > best) | v.is_nan()) as u32);
                best = f32::from_bits((v.to_bits() & mask) | (best.to_bits() & !mask));
                let wide = mask as i32 as isize as usize;
                at = (k & wide) | (at & !wide);
            }
        }
        y_row[ow] = best;
        i_row[ow] = at as i64;
    }
}

/// Adjoint of max pooling: `dx[idx[p]] += g[p]` per plane. `indices` holds either one entry per
/// output (`planes × oH × oW`) or one batch's worth that every batch shares (`planes_per_batch`
/// planes, repeated), as when one forward pass serves many backward signals.
pub fn max_pool2d_adjoint(
    grad: &[f32],
    indices: &[i64],
    g: &PoolGeometry,
    index_planes: usize,
) -> Vec<f32> {
    let plane_in = g.in_hw[0] * g.in_hw[1];
    let plane_out = g.out_hw[0] * g.out_hw[1];
    assert_eq!(grad.len(), g.planes * plane_out, "gradient size");
    assert_eq!(indices.len(), index_planes * plane_out, "index size");
    let mut dx = vec![0.0f32; g.planes * plane_in];
    if plane_out == 0 {
        return dx;
    }
    dx.par_chunks_mut(plane_in)
        .enumerate()
        .for_each(|(plane, dp)| {
            let gp = &grad[plane * plane_out..(plane + 1) * plane_out];
            let k = plane % index_planes;
            let ip = &indices[k * plane_out..(k + 1) * plane_out];
            for (&v, &i) in gp.iter().zip(ip) {
                // A window wholly in the padding has no arg-max (index −1) and passes nothing.
                if i >= 0 {
                    dp[i as usize] += v;
                }
            }
        });
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_lengths_follow_torch() {
        // torch.nn.MaxPool2d(3, 2, ceil_mode=True) on 112 → 56; floor mode → 55.
        assert_eq!(pooled_len(112, [0, 0], 3, 2, 1, true), 56);
        assert_eq!(pooled_len(112, [0, 0], 3, 2, 1, false), 55);
        // ResNet's stem pool: kernel 3, stride 2, padding 1 on 112 → 56.
        assert_eq!(pooled_len(112, [1, 1], 3, 2, 1, false), 56);
        // Ceil mode never starts a window in the trailing padding: 5, k2, s2, pad 1 → 3.
        assert_eq!(pooled_len(5, [1, 1], 2, 2, 1, true), 3);
        assert_eq!(pooled_len(2, [0, 0], 3, 1, 1, false), 0);
    }

    #[test]
    fn first_maximum_wins_and_the_adjoint_routes_to_it() {
        // One 4×4 plane with ties inside the 2×2 windows.
        let x = [
            1.0, 3.0, 2.0, 2.0, //
            3.0, 0.0, 2.0, 1.0, //
            -1.0, -2.0, 5.0, 4.0, //
            -3.0, -1.0, 4.0, 5.0,
        ];
        let g = PoolGeometry {
            planes: 1,
            in_hw: [4, 4],
            out_hw: [2, 2],
            kernel: [2, 2],
            stride: [2, 2],
            dilation: [1, 1],
            pad_before: [0, 0],
        };
        let (y, idx) = max_pool2d(&x, &g);
        assert_eq!(y, vec![3.0, 2.0, -1.0, 5.0]);
        // Bottom-left window: −1 at 8 and at 13; the first (8) wins.
        assert_eq!(idx, vec![1, 2, 8, 10]);
        let dx = max_pool2d_adjoint(&[1.0, 2.0, 3.0, 4.0], &idx, &g, 1);
        let mut expect = vec![0.0; 16];
        expect[1] = 1.0;
        expect[2] = 2.0;
        expect[8] = 3.0;
        expect[10] = 4.0;
        assert_eq!(dx, expect);
    }
}
