//! 1×1 convolutions of layers with few output positions (ResNet's 14² and 7² stages) with the
//! *output channels* along the vector lanes: `Y[o, q] = Σ_c W[o, c] · X[c, q] + b[o]` computed
//! as `Yᵀ[q, o:o+32] = Σ_c X[c, q] · Wᵀ[c, o:o+32]`, one 32-channel panel of `Wᵀ` (packed once
//! per weight, [`LanePanels`]) against broadcast input values.
//!
//! [`super::pointwise`] puts 32 output *positions* along the lanes, which suits large planes
//! but wastes lanes where the positions are not a multiple of 32: 196 = 6·32 + 4 fills 87.5 % of
//! the lanes it computes, 49 = 32 + 17 only 77 %. Channel counts of CNNs are multiples of 32,
//! so here every lane carries a result; the positions are cut into groups of at most
//! [`GROUP`] (196 = 14 · 14, 49 = 13 + 12 + 12 + 12). The input needs no packing either: the
//! `R` values a term broadcasts are consecutive in its channel plane, and successive terms are
//! one plane apart, a single constant-stride stream. The cost is a transposed store of each
//! `R × 32` result tile into the `[C_out, P]` output.
//!
//! Each output is the sum over `c` in order, one fused multiply-add per term, then `+ b[o]`:
//! the same operations in the same order as [`super::pointwise`] (which sums channel blocks in
//! order through memory), so the two give bit-identical results, whatever the batch or thread
//! count.

use rayon::prelude::*;

use super::conv::{ConvGeometry, OutPtr};
use super::epilogue::Epilogue;

/// Output channels per panel (two AVX-512 vectors).
pub const LANES: usize = 32;

/// Most output positions per micro-kernel call: `GROUP × 2` accumulators leave registers for
/// the two weight vectors and the broadcast value.
pub const GROUP: usize = 14;

/// Most output positions per image for which this kernel runs (ResNet's 14² = 196; from 28²
/// on the position-lane kernel fills its lanes).
pub const MAX_POSITIONS: usize = 256;

/// Whether this kernel computes `g`: a 1×1 convolution without padding, any stride, with at
/// most [`MAX_POSITIONS`] output positions per image, on a CPU with AVX-512.
pub fn applies(g: &ConvGeometry) -> bool {
    super::pointwise::applies(g) && g.out_hw[0] * g.out_hw[1] <= MAX_POSITIONS
}

/// The weight of a 1×1 convolution as panels of [`LANES`] output channels, each `[C_in][32]`
/// (the transposed weight's rows, zero past the last channel).
pub struct LanePanels {
    c_out: usize,
    c_in: usize,
    data: Vec<f32>,
}

impl LanePanels {
    /// Panels of `weight: [C_out, C_in]` for `y = W x`.
    pub fn forward(weight: &[f32], c_out: usize, c_in: usize) -> Self {
        assert_eq!(weight.len(), c_out * c_in, "weight size");
        Self::pack(c_out, c_in, |o, c| weight[o * c_in + c])
    }

    /// Panels of `Wᵀ` for the input adjoint `dx = Wᵀ dy`: a map from `C_out` to `C_in` channels.
    pub fn adjoint(weight: &[f32], c_out: usize, c_in: usize) -> Self {
        assert_eq!(weight.len(), c_out * c_in, "weight size");
        Self::pack(c_in, c_out, |c, o| weight[o * c_in + c])
    }

    /// Lays out `w(o, c)` for a map from `c_in` to `c_out` channels.
    fn pack(c_out: usize, c_in: usize, w: impl Fn(usize, usize) -> f32 + Sync) -> Self {
        let mut data = vec![0.0f32; c_out.div_ceil(LANES) * c_in * LANES];
        data.par_chunks_mut(c_in * LANES)
            .enumerate()
            .for_each(|(p, panel)| {
                for (c, row) in panel.chunks_exact_mut(LANES).enumerate() {
                    for (l, d) in row.iter_mut().enumerate() {
                        let o = p * LANES + l;
                        if o < c_out {
                            *d = w(o, c);
                        }
                    }
                }
            });
        LanePanels { c_out, c_in, data }
    }

    /// `(C_out, C_in)` of the map these panels hold.
    pub(super) fn channels(&self) -> (usize, usize) {
        (self.c_out, self.c_in)
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.data.len() * std::mem::size_of::<f32>()
    }

    fn panel(&self, p: usize) -> &[f32] {
        &self.data[p * self.c_in * LANES..(p + 1) * self.c_in * LANES]
    }
}

/// `y = W x + b` for `x: [N, C_in, H, W]` and the 1×1 geometry `g` ([`applies`]), with panels
/// from [`LanePanels::forward`] (or, for the input adjoint of a 1×1 convolution at its output
/// positions, [`LanePanels::adjoint`] with [`super::pointwise::adjoint_at_outputs`]); returns
/// `[N, C_out, oH, oW]`, each output row passed through `epilogue` once complete.
///
/// # Panics
/// If `g` is not a geometry this kernel [`applies`] to, or sizes disagree.
pub fn convolve(
    x: &[f32],
    f: &LanePanels,
    bias: Option<&[f32]>,
    g: &ConvGeometry,
    epilogue: Epilogue,
) -> Vec<f32> {
    assert!(applies(g), "lane-panel convolution geometry");
    assert_eq!(f.channels(), (g.c_out, g.c_in), "lane panels");
    g.check_operands(x, bias);
    let positions = g.out_hw[0] * g.out_hw[1];
    let total = g.batch * g.c_out * positions;
    assert!(epilogue.fits(total), "epilogue operand size");
    if positions == 0 {
        return Vec::new();
    }
    let gathered;
    let x = if g.in_hw == g.out_hw {
        x
    } else {
        gathered = at_output_positions(x, g);
        &gathered[..]
    };
    let mut out = Vec::<f32>::with_capacity(total);
    let out_ptr = OutPtr(out.as_mut_ptr());
    let panels = g.c_out.div_ceil(LANES);
    let threads = rayon::current_num_threads().max(1);
    // Tasks are runs of panels, enough of them that the threads share the work evenly; each
    // task streams its panels once per group of positions (from L2: ≤ 256 KiB per panel).
    let tasks_per_image = (4 * threads).div_ceil(g.batch).clamp(1, panels);
    let position_groups = positions.div_ceil(GROUP);
    (0..g.batch * tasks_per_image)
        .into_par_iter()
        .for_each(|task| {
            let image = task / tasks_per_image;
            let run = task % tasks_per_image;
            let (p0, p1) = (
                run * panels / tasks_per_image,
                (run + 1) * panels / tasks_per_image,
            );
            let image_in = &x[image * g.c_in * positions..][..g.c_in * positions];
            let out_image = image * g.c_out * positions;
            let mut tile = [0.0f32; GROUP * LANES];
            for group in 0..position_groups {
                let q0 = group * positions / position_groups;
                let q1 = (group + 1) * positions / position_groups;
                for p in p0..p1 {
                    // SAFETY: the panel holds `C_in · 32` floats; the input reads
                    // `image_in[c · P + q]` for `c < C_in`, `q0 ≤ q < q1 ≤ P`; the tile holds
                    // `GROUP · 32 ≥ (q1 − q0) · 32` floats.
                    unsafe {
                        micro_kernel(
                            q1 - q0,
                            g.c_in,
                            f.panel(p).as_ptr(),
                            image_in.as_ptr().add(q0),
                            positions,
                            tile.as_mut_ptr(),
                        );
                    }
                    let rows = LANES.min(g.c_out - p * LANES);
                    for l in 0..rows {
                        let o = p * LANES + l;
                        let b = bias.map_or(0.0, |b| b[o]);
                        // SAFETY: output channel `o` of this image at positions `q0..q1`
                        // belongs to this task alone, inside the output's capacity.
                        let dst = unsafe {
                            std::slice::from_raw_parts_mut(
                                out_ptr.get().add(out_image + o * positions + q0),
                                q1 - q0,
                            )
                        };
                        for (r, d) in dst.iter_mut().enumerate() {
                            *d = tile[r * LANES + l] + b;
                        }
                    }
                }
            }
            if !epilogue.is_store() {
                let (o0, o1) = (p0 * LANES, (p1 * LANES).min(g.c_out));
                let first = out_image + o0 * positions;
                // SAFETY: these channels of this image were written above, by this task alone.
                let rows = unsafe {
                    std::slice::from_raw_parts_mut(out_ptr.get().add(first), (o1 - o0) * positions)
                };
                epilogue.apply(first, rows);
            }
        });
    // SAFETY: the tasks cover every image, panel and position group, each output written once.
    unsafe { out.set_len(total) };
    out
}

/// The input at the output positions of the strided 1×1 geometry `g`: `[N, C_in, oH, oW]`.
fn at_output_positions(x: &[f32], g: &ConvGeometry) -> Vec<f32> {
    let [h, w] = g.in_hw;
    let [oh, ow] = g.out_hw;
    let [sh, sw] = g.stride;
    let mut dense = vec![0.0f32; g.batch * g.c_in * oh * ow];
    dense
        .par_chunks_mut(oh * ow)
        .zip(x.par_chunks(h * w))
        .for_each(|(dst, plane)| {
            for (y, row) in dst.chunks_exact_mut(ow).enumerate() {
                let src = &plane[y * sh * w..];
                for (x, d) in row.iter_mut().enumerate() {
                    *d = src[x * sw];
                }
            }
        });
    dense
}

/// `tile[r · 32 + l] = Σ_k x[k · x_stride + r] · panel[k · 32 + l]` for `r < rows`, `l < 32`.
///
/// # Safety
/// `panel` holds `terms · 32` floats, `x + k · x_stride + r` is readable for `k < terms`,
/// `r < rows`, `tile` holds `rows · 32` floats, `1 ≤ rows ≤ GROUP`, and the CPU has AVX-512F.
unsafe fn micro_kernel(
    rows: usize,
    terms: usize,
    panel: *const f32,
    x: *const f32,
    x_stride: usize,
    tile: *mut f32,
) {
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! dispatch {
            ($($n:literal)*) => {
                match rows {
                    $($n => unsafe { avx512::block::<$n>(terms, panel, x, x_stride, tile) },)*
                    _ => unreachable!("group rows"),
                }
            };
        }
        dispatch!(1 2 3 4 5 6 7 8 9 10 11 12 13 14);
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (rows, terms, panel, x, x_stride, tile);
        unreachable!("the lane-panel kernel needs AVX-512");
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// The `R × 32` block: `R · 2` accumulators, per term two weight loads and `R` broadcast
    /// multiply-adds.
    ///
    /// # Safety
    /// As [`super::micro_kernel`].
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn block<const R: usize>(
        terms: usize,
        panel: *const f32,
        x: *const f32,
        x_stride: usize,
        tile: *mut f32,
    ) {
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        // SAFETY (whole body): pointer ranges as the caller vouches.
        unsafe {
            for k in 0..terms {
                let w = panel.add(k * 32);
                let wv = [_mm512_loadu_ps(w), _mm512_loadu_ps(w.add(16))];
                let xs = x.add(k * x_stride);
                for (r, a) in acc.iter_mut().enumerate() {
                    let xr = _mm512_set1_ps(*xs.add(r));
                    a[0] = _mm512_fmadd_ps(xr, wv[0], a[0]);
                    a[1] = _mm512_fmadd_ps(xr, wv[1], a[1]);
                }
            }
            for (r, a) in acc.iter().enumerate() {
                _mm512_storeu_ps(tile.add(r * 32), a[0]);
                _mm512_storeu_ps(tile.add(r * 32 + 16), a[1]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::direct::tests::values;
    use super::super::direct::{self, PackedFilters};
    use super::super::pointwise::{
        self,
        tests::{assert_adjoint_by, assert_matches_definition, case_geometry, case_operands},
    };
    use super::*;

    /// Forward against the convolution's definition and, bit for bit, against the
    /// position-lane kernel ([`pointwise`]), which sums the same terms in the same order; the
    /// adjoint (stride 1 by the adjoint panels, strided by the scatter) against the identity
    /// ⟨W x, dy⟩ = ⟨x, Wᵀ dy⟩. Cases: ResNet's 14² and 7² shapes, channel counts that are not
    /// multiples of 32 (a partial last panel), position counts that are not multiples of the
    /// group (49, 15, 1), strides 2 and (3, 2), batches of 2 and 3, an epilogue.
    #[test]
    fn forward_and_adjoint_match_the_definition_and_the_position_lane_kernel() {
        if !direct::available() {
            return;
        }
        // (stride, batch, c_in, c_out, in_hw)
        let cases = [
            ([1, 1], 1, 256, 64, [14, 14]),
            ([1, 1], 1, 128, 96, [7, 7]),
            ([2, 2], 1, 64, 128, [14, 14]),
            ([1, 1], 2, 40, 29, [9, 9]),
            ([1, 1], 3, 300, 33, [3, 5]),
            ([1, 1], 1, 3, 1, [1, 1]),
            ([2, 2], 2, 20, 17, [15, 15]),
            ([3, 2], 1, 9, 70, [17, 11]),
        ];
        for (case, &shape) in cases.iter().enumerate() {
            let g = case_geometry(shape);
            assert!(applies(&g), "case {case}");
            let (c_in, c_out) = (g.c_in, g.c_out);
            let (x, w, b) = case_operands(&g, 5 * case as u64 + 1);
            let panels = LanePanels::forward(&w, c_out, c_in);
            let ours = convolve(&x, &panels, Some(&b), &g, Epilogue::Store);
            assert_matches_definition(&ours, (&x, &w, &b), &g, case);
            let positions = pointwise::convolve(
                &x,
                &PackedFilters::forward(&w, c_out, c_in, [1, 1]),
                Some(&b),
                &g,
                Epilogue::Store,
            );
            let same = ours
                .iter()
                .zip(&positions)
                .all(|(a, p)| a.to_bits() == p.to_bits());
            assert!(
                same,
                "case {case}: not bit-identical to the position-lane kernel"
            );

            // The epilogue sees every output once: a product with a factor equals the
            // stored output times that factor.
            let factor = values(ours.len(), 5 * case as u64 + 4);
            let epilogue = Epilogue::Product { factor: &factor };
            let scaled = convolve(&x, &panels, Some(&b), &g, epilogue);
            for (i, ((s, y), a)) in scaled.iter().zip(&ours).zip(&factor).enumerate() {
                assert_eq!(s.to_bits(), (y * a).to_bits(), "case {case} #{i}");
            }

            let adjoint = LanePanels::adjoint(&w, c_out, c_in);
            assert_adjoint_by((&x, &w), &g, case, 5 * case as u64 + 5, |dy, geometry| {
                convolve(dy, &adjoint, None, geometry, Epilogue::Store)
            });
        }
    }
}
