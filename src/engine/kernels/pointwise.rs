//! 1×1 convolutions (ResNet's bottleneck and downsampling layers) on the direct kernel's
//! micro-kernel: `Y[o, q] = Σ_c W[o, c] · X[c, s_h·oh, s_w·ow] + b[o]` for output position
//! `q = (oh, ow)` — a GEMM of the weight `[C_out, C_in]` with the input's channel planes.
//!
//! Read in place, each channel of a run of positions lies in another plane, pages apart, and the
//! hardware prefetcher cannot follow hundreds of such streams; so each task first copies a block
//! of positions × a block of channels into a contiguous buffer, chunk by chunk (`[chunk][c][32]`,
//! the "packing" of the right operand in Goto & van de Geijn, "Anatomy of High-Performance Matrix
//! Multiplication", ACM TOMS 2008). The copy gathers the strided positions too, so a strided
//! convolution costs no more than a dense one. Then each chunk of the block (≤ 288 channels × 32
//! positions, 36 KiB) runs under every panel of output channels ([`direct::PackedFilters`]).
//!
//! Measured against `gemm` on ResNet-50's 1×1 shapes at batch 1 (2 threads): within the VM's
//! noise per layer (≈ 0.4–0.6 ms each, memory traffic is half of their time), but ResNet-50's
//! `lrp-epsilon-plus-flat` went from 194–200 to 180–188 ms per image (its 1×1 layers run three
//! times there: the model's pass, `W⁺x` and `W⁺ᵀs`), and the input adjoint of the strided ones
//! no longer goes through col2im.
//!
//! Layers with few positions per image (ResNet's 14² and 7² stages) go to [`super::lanes`]
//! instead, which puts output channels along the lanes and fills all of them.
//!
//! Every output is summed in the same order (channel block by channel block, channels in order),
//! wherever it lies, as in [`direct`]: equal inputs give equal outputs, and results do not
//! depend on the batch or the thread count.

use rayon::prelude::*;

use super::conv::{ConvGeometry, OutPtr, return_scratch, take_scratch};
use super::direct::{self, CHUNK, PackedFilters, panel_count, panel_start};
use super::epilogue::Epilogue;

/// Most output positions per task block: the block's packed channels (≤ 288 × 256 floats,
/// 288 KiB) stay in L2 while all of the task's panels run over them.
const BLOCK_POSITIONS: usize = 8 * CHUNK;

/// Whether this kernel computes `g`: a 1×1 kernel without padding, any stride, on a CPU with
/// AVX-512 (where the direct kernel's micro-kernel runs).
pub fn applies(g: &ConvGeometry) -> bool {
    g.kernel == [1, 1]
        && g.pad_before == [0, 0]
        && g.stride[0] >= 1
        && g.stride[1] >= 1
        && g.c_in > 0
        && g.c_out > 0
        && (g.out_hw[0] == 0 || (g.out_hw[0] - 1) * g.stride[0] < g.in_hw[0])
        && (g.out_hw[1] == 0 || (g.out_hw[1] - 1) * g.stride[1] < g.in_hw[1])
        && direct::available()
}

/// `y = W x + b` for `x: [N, C_in, H, W]` and the 1×1 geometry `g` (see [`applies`]), with the
/// weight packed by [`PackedFilters::forward`] (or, for the input adjoint of a stride-1 1×1
/// convolution, [`PackedFilters::adjoint`] with [`direct::adjoint_geometry`]); returns
/// `[N, C_out, oH, oW]`, each output run passed through `epilogue` once complete.
///
/// # Panics
/// If `g` is not a geometry this kernel [`applies`] to, or sizes disagree.
pub fn convolve(
    x: &[f32],
    f: &PackedFilters,
    bias: Option<&[f32]>,
    g: &ConvGeometry,
    epilogue: Epilogue,
) -> Vec<f32> {
    assert!(applies(g), "pointwise convolution geometry");
    assert_eq!(f.channels(), (g.c_out, g.c_in), "packed filters");
    assert_eq!(f.kernel(), [1, 1], "packed filters");
    g.check_operands(x, bias);
    let positions = g.out_hw[0] * g.out_hw[1];
    let total = g.batch * g.c_out * positions;
    assert!(epilogue.fits(total), "epilogue operand size");
    if positions == 0 {
        return Vec::new();
    }
    let mut out = Vec::<f32>::with_capacity(total);
    let out_ptr = OutPtr(out.as_mut_ptr());
    let panels = panel_count(g.c_out);
    let threads = rayon::current_num_threads().max(1);
    // Position blocks of whole chunks, as equal as possible and (for one image) a multiple of
    // the thread count: ResNet's 28² = 24.5 chunks as 6, 6, 6, 6.5 (blocks of 196 positions
    // took 7 chunks each, the last one 4 positions full), 56² = 98 chunks as 14 × 7.
    let chunks = positions.div_ceil(CHUNK);
    let mut position_blocks = chunks.div_ceil(BLOCK_POSITIONS / CHUNK);
    if g.batch == 1 && position_blocks > 1 {
        position_blocks = position_blocks.next_multiple_of(threads);
    }
    let position_blocks = position_blocks.min(chunks);
    let block_chunks = chunks.div_ceil(position_blocks);
    // Split the panels too where the position blocks alone leave threads idle (a plane of a
    // few chunks at batch 1).
    let groups = (2 * threads)
        .div_ceil(g.batch * position_blocks)
        .clamp(1, panels);
    let offsets: Vec<usize> = (0..g.c_in.min(f.block_channels(0).1))
        .map(|c| c * CHUNK)
        .collect();
    (0..g.batch * position_blocks * groups)
        .into_par_iter()
        .for_each(|task| {
            let group = task % groups;
            let image = task / groups / position_blocks;
            let block = task / groups % position_blocks;
            let q0 = block * chunks / position_blocks * CHUNK;
            let q1 = ((block + 1) * chunks / position_blocks * CHUNK).min(positions);
            // Groups of as equal size as possible (see `direct::convolve`).
            let p0 = group * panels / groups;
            let p1 = (group + 1) * panels / groups;
            let chunks_here = (q1 - q0).div_ceil(CHUNK);
            let image_len = g.c_in * g.in_hw[0] * g.in_hw[1];
            let image_in = &x[image * image_len..][..image_len];
            let out_image = image * g.c_out * positions;
            let mut packed = take_scratch(offsets.len() * block_chunks * CHUNK);
            for block in 0..f.blocks() {
                let (c0, c1) = f.block_channels(block);
                let terms = c1 - c0;
                pack(image_in, g, c0..c1, q0..q1, &mut packed);
                for chunk in 0..chunks_here {
                    for p in p0..p1 {
                        let (panel, rows) = f.panel(block, p);
                        let o0 = panel_start(p, panels, g.c_out);
                        let q = q0 + chunk * CHUNK;
                        // SAFETY: reads `terms · 32` packed floats of this chunk (inside
                        // `packed`, sized for the largest block) and writes rows `o0..o0+rows`
                        // at positions `q..q+valid` of this image: this task's part of the
                        // output alone. Later blocks read back what the first one wrote.
                        unsafe {
                            direct::micro_kernel(
                                rows,
                                terms,
                                panel.as_ptr(),
                                packed.as_ptr().add(chunk * terms * CHUNK),
                                &offsets[..terms],
                                out_ptr.get().add(out_image + o0 * positions + q),
                                positions,
                                block > 0,
                                CHUNK.min(q1 - q),
                            );
                        }
                    }
                }
            }
            if bias.is_some() || !epilogue.is_store() {
                let (m0, m1) = (
                    panel_start(p0, panels, g.c_out),
                    panel_start(p1, panels, g.c_out),
                );
                for m in m0..m1 {
                    let first = out_image + m * positions + q0;
                    // SAFETY: written above by this task alone.
                    let row = unsafe {
                        std::slice::from_raw_parts_mut(out_ptr.get().add(first), q1 - q0)
                    };
                    if let Some(b) = bias {
                        row.iter_mut().for_each(|v| *v += b[m]);
                    }
                    epilogue.apply(first, row);
                }
            }
            return_scratch(packed);
        });
    // SAFETY: the tasks cover every image, position block and panel, and the first channel block
    // writes (not accumulates) each of their outputs.
    unsafe { out.set_len(total) };
    out
}

/// Copies channels `c0..c1` of the input at output positions `q0..q1` into `dst` chunk by chunk:
/// `dst[(k · terms + c − c0) · 32 + l]` is channel `c` at position `q0 + 32k + l` (positions past
/// `q1` in the last chunk are left as they are; the micro-kernel masks them).
fn pack(
    image: &[f32],
    g: &ConvGeometry,
    channels: std::ops::Range<usize>,
    positions: std::ops::Range<usize>,
    dst: &mut [f32],
) {
    let [h, w] = g.in_hw;
    let ow = g.out_hw[1];
    let [sh, sw] = g.stride;
    let terms = channels.len();
    let dense = g.stride == [1, 1] && g.out_hw == g.in_hw;
    // Where each position reads in a channel plane: the same for every channel, so worked out
    // once per block rather than once per value (strided only; dense positions read in place).
    let sources: Vec<usize> = if dense {
        Vec::new()
    } else {
        positions
            .clone()
            .map(|q| (q / ow) * sh * w + (q % ow) * sw)
            .collect()
    };
    // Channel by channel, so each plane's run of positions is read front to back (one stream
    // the prefetcher follows) rather than 32 values from every plane in turn.
    for (i, c) in channels.enumerate() {
        let plane = &image[c * h * w..(c + 1) * h * w];
        for (k, q) in positions.clone().step_by(CHUNK).enumerate() {
            let n = CHUNK.min(positions.end - q);
            let row = &mut dst[(k * terms + i) * CHUNK..][..CHUNK];
            if dense && n == CHUNK {
                // A fixed-size copy (two vector moves) rather than a `memcpy` call per run.
                let run: &[f32; CHUNK] = plane[q..q + CHUNK].try_into().expect("chunk");
                *<&mut [f32; CHUNK]>::try_from(row).expect("chunk") = *run;
            } else if dense {
                row[..n].copy_from_slice(&plane[q..q + n]);
            } else {
                let from = &sources[q - positions.start..][..n];
                for (d, &s) in row[..n].iter_mut().zip(from) {
                    *d = plane[s];
                }
            }
        }
    }
}

/// The input adjoint of the 1×1 convolution `g` restricted to its output positions, as a 1×1
/// convolution of `dy` (from `C_out` to `C_in` channels on the `oH × oW` grid): the whole adjoint
/// for stride 1, else what [`scatter_strided`] spreads onto the input grid.
pub fn adjoint_at_outputs(g: &ConvGeometry) -> ConvGeometry {
    direct::adjoint_geometry(&ConvGeometry {
        in_hw: g.out_hw,
        stride: [1, 1],
        ..*g
    })
}

/// `dx` of a strided 1×1 convolution from `dense = Wᵀ dy` at the output positions: `dense`
/// scattered to every `s`-th input pixel, zero elsewhere (`[N, C_in, H, W]`).
pub fn scatter_strided(dense: &[f32], g: &ConvGeometry) -> Vec<f32> {
    let [h, w] = g.in_hw;
    let [oh, ow] = g.out_hw;
    let [sh, sw] = g.stride;
    let mut dx = vec![0.0f32; g.batch * g.c_in * h * w];
    if oh * ow == 0 {
        return dx;
    }
    dx.par_chunks_mut(h * w)
        .zip(dense.par_chunks(oh * ow))
        .for_each(|(plane, src)| {
            for (y, row) in src.chunks_exact(ow).enumerate() {
                let line = &mut plane[y * sh * w..];
                for (x, &v) in row.iter().enumerate() {
                    line[x * sw] = v;
                }
            }
        });
    dx
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::conv::tests::naive as definition;
    use super::super::direct::tests::{assert_adjoint_identity, values};
    use super::*;

    /// The 1×1 geometry of a test case `(stride, batch, c_in, c_out, in_hw)`.
    pub(in super::super) fn case_geometry(
        (stride, batch, c_in, c_out, in_hw): ([usize; 2], usize, usize, usize, [usize; 2]),
    ) -> ConvGeometry {
        ConvGeometry {
            batch,
            c_in,
            in_hw,
            c_out,
            kernel: [1, 1],
            out_hw: [
                (in_hw[0] - 1) / stride[0] + 1,
                (in_hw[1] - 1) / stride[1] + 1,
            ],
            stride,
            dilation: [1, 1],
            pad_before: [0, 0],
        }
    }

    /// Input, weight and bias for `g`, reproducible from `seed` (three seeds from it on).
    pub(in super::super) fn case_operands(
        g: &ConvGeometry,
        seed: u64,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        (
            values(g.batch * g.c_in * g.in_hw[0] * g.in_hw[1], seed),
            values(g.c_out * g.c_in, seed + 1),
            values(g.c_out, seed + 2),
        )
    }

    /// `ours` against the definition of `g` on `x`, `w`, `b`, to 1e-5 of the largest output.
    pub(in super::super) fn assert_matches_definition(
        ours: &[f32],
        (x, w, b): (&[f32], &[f32], &[f32]),
        g: &ConvGeometry,
        case: usize,
    ) {
        let want = definition(x, w, Some(b), g);
        assert_eq!(ours.len(), want.len());
        let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        for (i, (a, e)) in ours.iter().zip(&want).enumerate() {
            assert!(
                (a - e).abs() <= 1e-5 * scale,
                "case {case} #{i}: {a} vs {e}"
            );
        }
    }

    /// The input adjoint of `g` — `Wᵀ dy` at the output positions by `dense_adjoint` (given the
    /// signal and the adjoint's geometry), scattered onto the input grid — against the identity
    /// ⟨W x, dy⟩ = ⟨x, Wᵀ dy⟩ for a signal `dy` from `seed`.
    pub(in super::super) fn assert_adjoint_by(
        (x, w): (&[f32], &[f32]),
        g: &ConvGeometry,
        case: usize,
        seed: u64,
        dense_adjoint: impl Fn(&[f32], &ConvGeometry) -> Vec<f32>,
    ) {
        let dy = values(g.batch * g.c_out * g.out_hw[0] * g.out_hw[1], seed);
        let dense = dense_adjoint(&dy, &adjoint_at_outputs(g));
        let dx = scatter_strided(&dense, g);
        assert_adjoint_identity(x, w, &dy, &dx, g, case);
    }

    /// Forward against the convolution's definition; the adjoint (stride 1 by the adjoint
    /// filters, strided by the scatter) against the identity ⟨W x, dy⟩ = ⟨x, Wᵀ dy⟩. Cases:
    /// panel remainders, position blocks that end mid-chunk, several channel blocks (300, 600
    /// channels), strides 2 and (3, 2) with sizes that do not divide, batches of 2 and 3.
    #[test]
    fn forward_and_adjoint_match_the_definition() {
        if !direct::available() {
            return;
        }
        // (stride, batch, c_in, c_out, in_hw)
        let cases = [
            ([1, 1], 1, 64, 256, [56, 56]),
            ([1, 1], 2, 40, 29, [9, 9]),
            ([1, 1], 1, 300, 14, [7, 7]),
            ([1, 1], 3, 600, 33, [5, 13]),
            ([1, 1], 1, 3, 1, [17, 19]),
            ([2, 2], 1, 64, 128, [56, 56]),
            ([2, 2], 2, 20, 17, [15, 15]),
            ([3, 2], 1, 9, 30, [17, 11]),
        ];
        for (case, &shape) in cases.iter().enumerate() {
            let g = case_geometry(shape);
            let (c_in, c_out) = (g.c_in, g.c_out);
            let (x, w, b) = case_operands(&g, 3 * case as u64 + 1);
            let ours = convolve(
                &x,
                &PackedFilters::forward(&w, c_out, c_in, [1, 1]),
                Some(&b),
                &g,
                Epilogue::Store,
            );
            assert_matches_definition(&ours, (&x, &w, &b), &g, case);
            let filters = PackedFilters::adjoint(&w, c_out, c_in, [1, 1]);
            assert_adjoint_by((&x, &w), &g, case, 3 * case as u64 + 4, |dy, adjoint| {
                convolve(dy, &filters, None, adjoint, Epilogue::Store)
            });
        }
    }
}
