//! The two bilinear resamplings pytorch-grad-cam uses, reproduced to the float:
//!
//! - [`resize_cv2_linear`]: OpenCV's `cv2.resize(src, (W, H))` with the default `INTER_LINEAR`
//!   on float32 maps (how `scale_cam_image` brings every CAM to the input size): half-pixel
//!   centres (`align_corners = False`), source coordinates clamped at the borders.
//! - [`upsample_align_corners`]: torch's `nn.UpsamplingBilinear2d` (`align_corners = True`), how
//!   Score-CAM upsamples activations into masks.

/// For each output index along one axis: `(source index, weight of the next source index)`,
/// computed as OpenCV's `resize` does for `INTER_LINEAR` (`fx = (float)((d + 0.5)·scale − 0.5)`,
/// `scale = 1 / (dst/src)` in double, clamped to the first and last source sample).
fn cv2_axis(src: usize, dst: usize) -> Vec<(usize, f32)> {
    let inv_scale = dst as f64 / src as f64;
    let scale = 1.0 / inv_scale;
    (0..dst)
        .map(|d| {
            let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let s = f.floor();
            let mut frac = f - s;
            let mut s = s as i64;
            if s < 0 {
                s = 0;
                frac = 0.0;
            }
            if s >= src as i64 - 1 {
                s = src as i64 - 1;
                frac = 0.0;
            }
            (s as usize, frac)
        })
        .collect()
}

/// `cv2.resize(src, (dst_w, dst_h), interpolation=INTER_LINEAR)` of a row-major `src_h × src_w`
/// float map: horizontal pass, then vertical pass, in float32 like OpenCV. Meant for upsampling
/// (OpenCV switches to area averaging for some downscales, which is not reproduced).
pub fn resize_cv2_linear(
    src: &[f32],
    src_h: usize,
    src_w: usize,
    dst_h: usize,
    dst_w: usize,
) -> Vec<f32> {
    assert_eq!(src.len(), src_h * src_w, "source size");
    if src_h == dst_h && src_w == dst_w {
        return src.to_vec();
    }
    let xs = cv2_axis(src_w, dst_w);
    let ys = cv2_axis(src_h, dst_h);
    // Horizontal pass over every source row.
    let mut rows = vec![0.0f32; src_h * dst_w];
    for y in 0..src_h {
        let s = &src[y * src_w..(y + 1) * src_w];
        for (dx, &(sx, fx)) in xs.iter().enumerate() {
            rows[y * dst_w + dx] = if fx == 0.0 {
                s[sx]
            } else {
                s[sx] * (1.0 - fx) + s[sx + 1] * fx
            };
        }
    }
    let mut out = vec![0.0f32; dst_h * dst_w];
    for (dy, &(sy, fy)) in ys.iter().enumerate() {
        let r0 = &rows[sy * dst_w..(sy + 1) * dst_w];
        let o = &mut out[dy * dst_w..(dy + 1) * dst_w];
        if fy == 0.0 {
            o.copy_from_slice(r0);
        } else {
            let r1 = &rows[(sy + 1) * dst_w..(sy + 2) * dst_w];
            let b0 = 1.0 - fy;
            for x in 0..dst_w {
                o[x] = r0[x] * b0 + r1[x] * fy;
            }
        }
    }
    out
}

/// For each output index: `(source index, next index, weight of the next)` for
/// `align_corners = True` as torch's CPU kernel computes it (`src = d·(in−1)/(out−1)` in float).
fn align_axis(src: usize, dst: usize) -> Vec<(usize, usize, f32)> {
    let scale = if dst > 1 {
        (src as f32 - 1.0) / (dst as f32 - 1.0)
    } else {
        0.0
    };
    (0..dst)
        .map(|d| {
            let real = scale * d as f32;
            let i0 = (real as usize).min(src - 1);
            let i1 = if i0 < src - 1 { i0 + 1 } else { i0 };
            (i0, i1, real - i0 as f32)
        })
        .collect()
}

/// torch's `nn.UpsamplingBilinear2d(size=(dst_h, dst_w))` of one row-major plane.
pub fn upsample_align_corners(
    src: &[f32],
    src_h: usize,
    src_w: usize,
    dst_h: usize,
    dst_w: usize,
) -> Vec<f32> {
    assert_eq!(src.len(), src_h * src_w, "source size");
    let xs = align_axis(src_w, dst_w);
    let ys = align_axis(src_h, dst_h);
    let mut out = vec![0.0f32; dst_h * dst_w];
    for (dy, &(y0, y1, ly)) in ys.iter().enumerate() {
        let (h0, h1) = (1.0 - ly, ly);
        for (dx, &(x0, x1, lx)) in xs.iter().enumerate() {
            let (w0, w1) = (1.0 - lx, lx);
            out[dy * dst_w + dx] = h0 * (w0 * src[y0 * src_w + x0] + w1 * src[y0 * src_w + x1])
                + h1 * (w0 * src[y1 * src_w + x0] + w1 * src[y1 * src_w + x1]);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_and_linear_maps_are_reproduced() {
        let src = vec![3.0f32; 12];
        assert!(
            resize_cv2_linear(&src, 3, 4, 17, 9)
                .iter()
                .all(|&v| (v - 3.0).abs() < 1e-6)
        );
        // align_corners keeps the corners and is exact on a linear ramp.
        let ramp: Vec<f32> = (0..3)
            .flat_map(|y| (0..4).map(move |x| (x + 10 * y) as f32))
            .collect();
        let up = upsample_align_corners(&ramp, 3, 4, 5, 7);
        assert_eq!(up[0], 0.0);
        assert_eq!(up[6], 3.0);
        assert!((up[34] - 23.0).abs() < 1e-5);
        assert!((up[7 * 2 + 3] - (1.5 + 10.0)).abs() < 1e-5);
    }
}
