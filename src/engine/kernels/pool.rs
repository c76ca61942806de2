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
    // Per output row/column: the in-bounds window taps, computed once for all planes.
    let taps = |o: usize, axis: usize, n: usize| -> Vec<usize> {
        (0..g.kernel[axis])
            .filter_map(|k| {
                let i = (o * g.stride[axis] + k * g.dilation[axis]) as isize
                    - g.pad_before[axis] as isize;
                (0..n as isize).contains(&i).then_some(i as usize)
            })
            .collect()
    };
    let rows: Vec<Vec<usize>> = (0..out_h).map(|o| taps(o, 0, in_h)).collect();
    let cols: Vec<Vec<usize>> = (0..out_w).map(|o| taps(o, 1, in_w)).collect();
    y.par_chunks_mut(plane_out)
        .zip(idx.par_chunks_mut(plane_out))
        .enumerate()
        .for_each(|(plane, (yp, ip))| {
            let xp = &x[plane * plane_in..(plane + 1) * plane_in];
            for (oh, rs) in rows.iter().enumerate() {
                for (ow, cs) in cols.iter().enumerate() {
                    let mut best = f32::NEG_INFINITY;
                    let mut at = usize::MAX;
                    for &r in rs {
                        for &c in cs {
                            let v = xp[r * in_w + c];
                            // Strictly greater keeps the first maximum; NaN always wins.
                            if at == usize::MAX || v > best || v.is_nan() {
                                best = v;
                                at = r * in_w + c;
                            }
                        }
                    }
                    yp[oh * out_w + ow] = best;
                    ip[oh * out_w + ow] = if at == usize::MAX { -1 } else { at as i64 };
                }
            }
        });
    (y, idx)
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
