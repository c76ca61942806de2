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
    let len = g.planes * plane_out;
    if plane_out == 0 || plane_in == 0 {
        return (vec![f32::NEG_INFINITY; len], vec![-1; len]);
    }
    // Each task zeroes its own planes before writing them (see `conv::zeroed`).
    let (mut y, mut idx) = (
        Vec::<f32>::with_capacity(len),
        Vec::<i64>::with_capacity(len),
    );
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
    y.spare_capacity_mut()[..len]
        .par_chunks_mut(plane_out)
        .zip(idx.spare_capacity_mut()[..len].par_chunks_mut(plane_out))
        .enumerate()
        .for_each(|(plane, (yp, ip))| {
            let (yp, ip) = (super::conv::zeroed(yp), super::conv::zeroed(ip));
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
                        // VGG's 2×2/2 pools: 16 windows per step with AVX-512, the rest below.
                        let done = if sw == 2 {
                            window_max_s2::<2>(xp, in_w, rows[0], lo..hi, pl, y_row, i_row)
                        } else {
                            lo
                        };
                        window_max::<2>(xp, in_w, rows[0], done..hi, sw, pl, y_row, i_row)
                    }
                    [3, 3] if hi > lo => {
                        // ResNet's 3×3/2 stem pool: 16 windows per step with AVX-512.
                        let done = if sw == 2 {
                            window_max_s2::<3>(xp, in_w, rows[0], lo..hi, pl, y_row, i_row)
                        } else {
                            lo
                        };
                        window_max::<3>(xp, in_w, rows[0], done..hi, sw, pl, y_row, i_row)
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
    // SAFETY: the tasks above initialised all `len` elements of both.
    unsafe {
        y.set_len(len);
        idx.set_len(len);
    }
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

/// [`window_max`] for `K × K` windows at stride 2 (`K` = 2, VGG's pools, or 3, ResNet's stem
/// pool), sixteen windows at a time with AVX-512 where the CPU has it: per input row, the even
/// and odd columns of the 32 values from the first window's left edge give taps 0 and 1 (and,
/// for `K = 3`, the even columns from two further right tap 2); the taps are compared in
/// row-major window order with the scalar loop's rule (strictly greater, or NaN), so values
/// and indices are those of the scalar loop. Returns the first output column it left for the
/// scalar loop (`outs.start` without AVX-512).
fn window_max_s2<const K: usize>(
    xp: &[f32],
    w: usize,
    top: usize,
    outs: std::ops::Range<usize>,
    pad: usize,
    y_row: &mut [f32],
    i_row: &mut [i64],
) -> usize {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        let steps = (outs.end - outs.start) / 16;
        // Windows `ow..ow + 16` read columns `2·ow − pad ..< 2·ow − pad + 32` (`K = 3`: one
        // more, masked off) of rows `top ..< top + K`, inside the row because the last of the
        // windows is an interior one: its last column `2·(ow + 15) − pad + K − 1` is in it.
        assert!(top + K <= xp.len() / w.max(1) && outs.end <= y_row.len().min(i_row.len()));
        assert!(steps == 0 || 2 * (outs.start + 16 * steps) + K < w + pad + 3);
        assert!(K == 2 || K == 3, "pool windows of 2 or 3");
        // SAFETY: AVX-512F is present (checked above) and every access is in bounds (asserted).
        unsafe { avx512::max_s2::<K>(xp, w, top, outs.start, steps, pad, y_row, i_row) };
        return outs.start + 16 * steps;
    }
    let _ = (xp, w, top, pad, y_row, i_row);
    outs.start
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// `steps` groups of 16 `K × K` windows (`K` = 2 or 3) at stride 2 from output column
    /// `first`; see [`super::window_max_s2`].
    ///
    /// # Safety
    /// AVX-512F must be present, rows `top ..< top + K` of `xp` must hold columns
    /// `2·first − pad ..< 2·(first + 16·steps − 1) − pad + K`, and `y_row`, `i_row` the outputs.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn max_s2<const K: usize>(
        xp: &[f32],
        w: usize,
        top: usize,
        first: usize,
        steps: usize,
        pad: usize,
        y_row: &mut [f32],
        i_row: &mut [i64],
    ) {
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
        let wi = w as i32;
        for step in 0..steps {
            let ow = first + 16 * step;
            let start = top * w + 2 * ow - pad;
            let mut best = _mm512_setzero_ps();
            let mut tap = _mm512_setzero_si512();
            for i in 0..K {
                // SAFETY (all pointer reads): in bounds by the caller's contract; for `K = 3`
                // the load from two columns on stops one short of its 32nd column.
                let row = unsafe { xp.as_ptr().add(start + i * w) };
                let (a0, a1) = unsafe { (_mm512_loadu_ps(row), _mm512_loadu_ps(row.add(16))) };
                let mut values = [
                    _mm512_permutex2var_ps(a0, even, a1),
                    _mm512_permutex2var_ps(a0, odd, a1),
                    _mm512_setzero_ps(),
                ];
                if K == 3 {
                    let (c0, c1) = unsafe {
                        (
                            _mm512_loadu_ps(row.add(2)),
                            _mm512_maskz_loadu_ps(0x7fff, row.add(18)),
                        )
                    };
                    values[2] = _mm512_permutex2var_ps(c0, even, c1);
                }
                for (j, &v) in values.iter().enumerate().take(K) {
                    // Offset of tap (i, j) from the window's top-left value.
                    let offset = _mm512_set1_epi32(i as i32 * wi + j as i32);
                    if i == 0 && j == 0 {
                        (best, tap) = (v, offset);
                        continue;
                    }
                    let take = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(v, best)
                        | _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(v, v);
                    best = _mm512_mask_blend_ps(take, best, v);
                    tap = _mm512_mask_blend_epi32(take, tap, offset);
                }
            }
            // Index of lane l: start + 2·l + tap offset (`even` holds 2·l).
            let within = _mm512_add_epi32(tap, even);
            let base = _mm512_set1_epi64(start as i64);
            let low = _mm512_add_epi64(base, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(within)));
            let high = _mm512_add_epi64(
                base,
                _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64::<1>(within)),
            );
            // SAFETY: `ow + 16 ≤ y_row.len(), i_row.len()` by the caller's contract.
            unsafe {
                _mm512_storeu_ps(y_row.as_mut_ptr().add(ow), best);
                _mm512_storeu_epi64(i_row.as_mut_ptr().add(ow), low);
                _mm512_storeu_epi64(i_row.as_mut_ptr().add(ow + 8), high);
            }
        }
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
    if plane_out == 0 || plane_in == 0 {
        return vec![0.0f32; g.planes * plane_in];
    }
    // Each task zeroes its own plane just before scattering into it (see `conv::zeroed`).
    let mut dx = Vec::<f32>::with_capacity(g.planes * plane_in);
    dx.spare_capacity_mut()[..g.planes * plane_in]
        .par_chunks_mut(plane_in)
        .enumerate()
        .for_each(|(plane, dp)| {
            let dp = super::conv::zeroed(dp);
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
    // SAFETY: the tasks above initialised all `planes × plane_in` elements.
    unsafe { dx.set_len(g.planes * plane_in) };
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

    /// Max pooling from its definition: in-bounds taps in row-major window order, the first
    /// maximum kept, NaN always taken.
    fn reference(x: &[f32], g: &PoolGeometry) -> (Vec<f32>, Vec<i64>) {
        let [h, w] = g.in_hw;
        let [oh, ow] = g.out_hw;
        let (mut y, mut idx) = (Vec::new(), Vec::new());
        for plane in 0..g.planes {
            for r in 0..oh {
                for c in 0..ow {
                    let mut best: Option<(f32, usize)> = None;
                    for i in 0..g.kernel[0] {
                        for j in 0..g.kernel[1] {
                            let yy = (r * g.stride[0] + i * g.dilation[0]) as isize
                                - g.pad_before[0] as isize;
                            let xx = (c * g.stride[1] + j * g.dilation[1]) as isize
                                - g.pad_before[1] as isize;
                            if yy < 0 || xx < 0 || yy >= h as isize || xx >= w as isize {
                                continue;
                            }
                            let at = yy as usize * w + xx as usize;
                            let v = x[plane * h * w + at];
                            best = match best {
                                Some((b, _)) if !(v > b || v.is_nan()) => best,
                                _ => Some((v, at)),
                            };
                        }
                    }
                    let (v, at) = best.map_or((f32::NEG_INFINITY, -1), |(v, a)| (v, a as i64));
                    y.push(v);
                    idx.push(at);
                }
            }
        }
        (y, idx)
    }

    /// `k × k` stride-2 pools over three planes of each `(input size, padding)` against the
    /// definition, values and indices, on input with ties (many equal zeros) and NaN at `nans`.
    fn assert_wide_pools_match(k: usize, cases: &[([usize; 2], usize)], nans: [usize; 3]) {
        for &(in_hw, pad) in cases {
            let out = |a: usize| (in_hw[a] + 2 * pad - k) / 2 + 1;
            let g = PoolGeometry {
                planes: 3,
                in_hw,
                out_hw: [out(0), out(1)],
                kernel: [k, k],
                stride: [2, 2],
                dilation: [1, 1],
                pad_before: [pad, pad],
            };
            let n = 3 * in_hw[0] * in_hw[1];
            let mut x: Vec<f32> = (0..n)
                .map(|i| ((i * 7919 % 13) as f32 - 6.0).max(0.0) * 0.5)
                .collect();
            for at in nans {
                x[at.min(n - 1)] = f32::NAN;
            }
            x[n / 2] = f32::NAN;
            let (y, idx) = max_pool2d(&x, &g);
            let (want_y, want_idx) = reference(&x, &g);
            assert_eq!(idx, want_idx, "{k}×{k} indices, {in_hw:?} pad {pad}");
            for (a, b) in y.iter().zip(&want_y) {
                assert!(a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()));
            }
        }
    }

    /// ResNet's 3×3/2 pad 1 (interior from column 1), without padding, odd and even widths
    /// around the 16-window steps.
    #[test]
    fn wide_three_by_three_stride_two_pools_match_the_definition_with_ties_and_nan() {
        let cases = [([9, 112], 1), ([7, 67], 0), ([5, 66], 1), ([6, 35], 1)];
        assert_wide_pools_match(3, &cases, [7, 1000, 1003]);
    }

    /// VGG's 2×2/2 on planes wide enough for the 16-window steps, odd widths and a leading
    /// pad (the interior then starts at column 1).
    #[test]
    fn wide_two_by_two_pools_match_the_definition_with_ties_and_nan() {
        let cases = [([6, 64], 0), ([5, 71], 0), ([4, 50], 1), ([7, 224], 0)];
        assert_wide_pools_match(2, &cases, [5, 400, 401]);
    }
}
