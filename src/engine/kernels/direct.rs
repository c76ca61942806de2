//! Direct convolution of dense convolutions (stride 1 forward and adjoint, strided forward): an
//! implicit GEMM that reads the input (zero-padded once) in place instead of building a column
//! matrix, with filters packed once per weight tensor into the order the micro-kernel reads them.
//!
//! Output pixels are indexed in *padded-width* coordinates `q = oh·P_w + ow` with `P_w = oW +
//! kW − 1` the width of the zero-padded input plane; then the input value that tap `(i, j)` of
//! channel `c` reads for position `q` is `x̃[c, q + i·P_w + j]` — one contiguous run of the
//! padded plane per tap, for any run of consecutive `q`. So the column matrix of im2col
//! (Chellapilla et al. 2006) never needs to exist: `Y[o, q] = Σ_(c,i,j) W[o, c, i, j] ·
//! x̃[c, q + i·P_w + j]` is a GEMM whose right operand's rows are the padded planes at a
//! per-row offset. Positions with `ow ≥ oW` (the `kW − 1` columns where a run wraps into the
//! next row) are computed and dropped. The micro-kernel (AVX-512) keeps a 14 × 32 block of
//! outputs in 28 registers and, per term, loads 32 inputs and broadcasts 14 packed weights,
//! as in the register blocking of Goto & van de Geijn, "Anatomy of High-Performance Matrix
//! Multiplication" (ACM TOMS 2008); here the weights play the broadcast operand and stay in L1
//! across a block of positions.
//!
//! Every output is summed in the same order (channel block by channel block, taps in order),
//! whatever its place, so equal neighbourhoods give equal outputs (max-pooling ties survive),
//! and results do not depend on the batch or the thread count.
//!
//! The input adjoint of such a convolution is one too (filters rotated by 180° with input and
//! output channels swapped, padding `k − 1 − p`), so the same kernel serves both. Strided
//! convolutions (forward only) read `s_h · s_w` phase planes of the padded input instead (the
//! plane of rows `≡ a (mod s_h)` and columns `≡ b (mod s_w)`): tap `(i, j)` of output `(oh, ow)`
//! is phase `(i mod s_h, j mod s_w)` at `(oh + i div s_h, ow + j div s_w)`, again a contiguous
//! run per term, so only the term offsets change.

use std::borrow::Cow;

use rayon::prelude::*;

use super::conv::{ConvGeometry, OutPtr, assume_written, return_scratch, take_scratch};
use super::epilogue::Epilogue;

/// Most output channels per packed panel (rows of the micro-kernel's output block). A layer's
/// channels are cut into `⌈C_out / 14⌉` panels of as equal size as possible (64 → 13, 13, 13,
/// 13, 12), so no panel is a thin remainder that loads as much input for fewer products.
pub const PANEL_ROWS: usize = 14;

/// Number of panels for `c_out` channels.
pub(super) fn panel_count(c_out: usize) -> usize {
    c_out.div_ceil(PANEL_ROWS)
}

/// First channel of panel `p` of `panels` over `c_out` channels (`p = panels` gives `c_out`).
pub(super) fn panel_start(p: usize, panels: usize, c_out: usize) -> usize {
    p * c_out / panels
}
/// Output positions per micro-kernel call (two AVX-512 vectors).
pub(super) const CHUNK: usize = 32;
/// Terms `(c, i, j)` per channel block: a block's packed panel (≈ 16 KiB) stays in L1 while
/// the block of positions runs.
const BLOCK_TERMS: usize = 288;
/// Most accumulator floats per task (1 MiB): with a channel block's input rows they stay in L2.
const TASK_ACCUMULATORS: usize = 1 << 18;
/// Fewest output positions per task, so a panel's weights (in L1) serve several chunks.
const MIN_BLOCK_POSITIONS: usize = 8 * CHUNK;

/// Whether this CPU runs the direct kernel (AVX-512F); elsewhere convolutions stay on im2col.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Whether the direct kernel computes the forward convolution `g`: one group, dilation 1, any
/// stride (strided ones through phase planes, see [`PaddedInput`]), padding before at most
/// `k − 1` on each axis, more than one tap. 1×1 convolutions go to [`super::pointwise`], which
/// runs the same micro-kernel on a packed copy of the input: read in place, each of their terms
/// is another channel plane, pages apart (measured 2× slower than packing).
pub fn applies(g: &ConvGeometry) -> bool {
    g.kernel[0] * g.kernel[1] > 1 && computes(g) && available()
}

/// Whether the direct kernel computes the input adjoint of `g` (as the forward convolution
/// [`adjoint_geometry`]): as [`applies`], with stride 1 (a strided convolution's adjoint is a
/// transposed convolution, left to col2im).
pub fn applies_to_adjoint(g: &ConvGeometry) -> bool {
    g.stride == [1, 1] && applies(g)
}

/// Whether [`convolve`] can compute `g` at all (1×1 included).
fn computes(g: &ConvGeometry) -> bool {
    g.stride[0] >= 1
        && g.stride[1] >= 1
        && g.dilation == [1, 1]
        && g.pad_before[0] < g.kernel[0]
        && g.pad_before[1] < g.kernel[1]
        && g.c_in > 0
        && g.c_out > 0
}

/// Geometry of the input adjoint `dx = Wᵀ ⋆ dy` of the stride-1 convolution `g` as a forward
/// convolution of `dy` with the rotated, transposed filters ([`PackedFilters::adjoint`]):
/// per axis `dx[y] = Σ_i dy[y + i − (k − 1 − p)] · W[k − 1 − i]`.
pub fn adjoint_geometry(g: &ConvGeometry) -> ConvGeometry {
    assert_eq!(
        g.stride,
        [1, 1],
        "the adjoint of a strided convolution is not one"
    );
    ConvGeometry {
        batch: g.batch,
        c_in: g.c_out,
        in_hw: g.out_hw,
        c_out: g.c_in,
        kernel: g.kernel,
        out_hw: g.in_hw,
        stride: [1, 1],
        dilation: [1, 1],
        pad_before: [
            g.kernel[0] - 1 - g.pad_before[0],
            g.kernel[1] - 1 - g.pad_before[1],
        ],
    }
}

/// Filters laid out for the micro-kernel: per block of input channels (about
/// [`BLOCK_TERMS`] terms `(c, i, j)`), per panel of at most [`PANEL_ROWS`] output channels,
/// the panel's weights term by term (`[terms][rows]`, contiguous).
pub struct PackedFilters {
    c_out: usize,
    c_in: usize,
    kernel: [usize; 2],
    block_channels: usize,
    data: Vec<f32>,
}

impl PackedFilters {
    /// Packs `weight: [C_out, C_in, kH, kW]` for the forward convolution.
    pub fn forward(weight: &[f32], c_out: usize, c_in: usize, kernel: [usize; 2]) -> Self {
        let taps = kernel[0] * kernel[1];
        assert_eq!(weight.len(), c_out * c_in * taps, "weight size");
        Self::pack(c_out, c_in, kernel, |o, c, t| {
            weight[(o * c_in + c) * taps + t]
        })
    }

    /// Packs `weight: [C_out, C_in, kH, kW]` for its input adjoint: a convolution from `C_out`
    /// to `C_in` channels with `W'[c, o, i, j] = W[o, c, kH − 1 − i, kW − 1 − j]`.
    pub fn adjoint(weight: &[f32], c_out: usize, c_in: usize, kernel: [usize; 2]) -> Self {
        let taps = kernel[0] * kernel[1];
        assert_eq!(weight.len(), c_out * c_in * taps, "weight size");
        Self::pack(c_in, c_out, kernel, |c, o, t| {
            weight[(o * c_in + c) * taps + (taps - 1 - t)]
        })
    }

    /// Lays out `w(o, c, tap)` for a convolution from `c_in` to `c_out` channels.
    fn pack(
        c_out: usize,
        c_in: usize,
        kernel: [usize; 2],
        w: impl Fn(usize, usize, usize) -> f32 + Sync,
    ) -> Self {
        let taps = kernel[0] * kernel[1];
        let block_channels = BLOCK_TERMS.div_ceil(taps).clamp(1, c_in.max(1));
        let mut data = vec![0.0f32; c_out * c_in * taps];
        // Blocks are contiguous (block `c0..` starts at `c0 · taps · C_out`), so they pack in
        // parallel.
        data.par_chunks_mut(block_channels * taps * c_out)
            .enumerate()
            .for_each(|(b, block)| {
                let c0 = b * block_channels;
                let terms = block.len() / c_out;
                let panels = panel_count(c_out);
                for p in 0..panels {
                    let (o0, o1) = (
                        panel_start(p, panels, c_out),
                        panel_start(p + 1, panels, c_out),
                    );
                    let panel = &mut block[o0 * terms..o1 * terms];
                    for (k, dst) in panel.chunks_exact_mut(o1 - o0).enumerate() {
                        let (c, t) = (c0 + k / taps, k % taps);
                        for (r, d) in dst.iter_mut().enumerate() {
                            *d = w(o0 + r, c, t);
                        }
                    }
                }
            });
        PackedFilters {
            c_out,
            c_in,
            kernel,
            block_channels,
            data,
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.data.len() * std::mem::size_of::<f32>()
    }

    /// `(C_out, C_in)` of the convolution these filters are packed for.
    pub(super) fn channels(&self) -> (usize, usize) {
        (self.c_out, self.c_in)
    }

    /// Kernel size `[kH, kW]`.
    pub(super) fn kernel(&self) -> [usize; 2] {
        self.kernel
    }

    /// Number of channel blocks.
    pub(super) fn blocks(&self) -> usize {
        self.c_in.div_ceil(self.block_channels)
    }

    /// Input channels `c0..c1` of channel block `block`.
    pub(super) fn block_channels(&self, block: usize) -> (usize, usize) {
        let c0 = block * self.block_channels;
        (c0, (c0 + self.block_channels).min(self.c_in))
    }

    /// Panel `panel` of block `block`: `[terms][rows]` and its row count.
    pub(super) fn panel(&self, block: usize, panel: usize) -> (&[f32], usize) {
        let taps = self.kernel[0] * self.kernel[1];
        let (c0, c1) = self.block_channels(block);
        let terms = (c1 - c0) * taps;
        let panels = panel_count(self.c_out);
        let (o0, o1) = (
            panel_start(panel, panels, self.c_out),
            panel_start(panel + 1, panels, self.c_out),
        );
        let start = c0 * taps * self.c_out + o0 * terms;
        (&self.data[start..start + (o1 - o0) * terms], o1 - o0)
    }
}

/// `y = W ⋆ x + b` for `x: [N, C_in, H, W]` with filters packed by [`PackedFilters::forward`]
/// (or, with [`adjoint_geometry`], the input adjoint with [`PackedFilters::adjoint`]),
/// returning `[N, C_out, oH, oW]`, each output run passed through `epilogue` as it is written.
///
/// # Panics
/// If `g` has a dilation other than 1, the CPU lacks AVX-512, or sizes disagree.
pub fn convolve(
    x: &[f32],
    f: &PackedFilters,
    bias: Option<&[f32]>,
    g: &ConvGeometry,
    epilogue: Epilogue,
) -> Vec<f32> {
    assert!(
        computes(g) && available(),
        "direct convolution needs dilation 1 and AVX-512"
    );
    assert_eq!(
        (f.c_out, f.c_in, f.kernel),
        (g.c_out, g.c_in, g.kernel),
        "packed filters"
    );
    g.check_operands(x, bias);
    let [oh, ow] = g.out_hw;
    assert!(
        epilogue.fits(g.batch * g.c_out * oh * ow),
        "epilogue operand size"
    );
    if oh == 0 || ow == 0 {
        return vec![0.0; g.batch * g.c_out * oh * ow];
    }
    // Every output element is written exactly once below (the position blocks cover all rows
    // and columns, the panels all channels), so the buffer is not zeroed first.
    let mut out = Vec::<f32>::with_capacity(g.batch * g.c_out * oh * ow);
    let input = PaddedInput::new(x, g);
    let positions = oh * input.width;
    let panels = panel_count(g.c_out);
    let split = Split::choose(positions, panels, g.c_out, g.batch);
    let out_ptr = OutPtr(out.as_mut_ptr());
    let offsets = input.term_offsets(f.block_channels, g.kernel);
    let blocks = f.blocks();
    let (groups, block_positions) = (split.groups, split.block_positions);
    (0..g.batch * split.position_blocks * groups)
        .into_par_iter()
        .for_each(|task| {
            let group = task % groups;
            let image = task / groups / split.position_blocks;
            let q0 = (task / groups % split.position_blocks) * block_positions;
            let q1 = (q0 + block_positions).min(positions);
            // Groups of as equal size as possible (10 panels in 4 groups: 2, 3, 2, 3, so two
            // threads take 5 each, where runs of ⌈10/4⌉ = 3, 3, 3, 1 gave one of them 6).
            let p0 = group * panels / groups;
            let p1 = (group + 1) * panels / groups;
            let (m0, m1) = (
                panel_start(p0, panels, g.c_out),
                panel_start(p1, panels, g.c_out),
            );
            if q0 >= q1 || m0 >= m1 {
                return;
            }
            let mut acc = take_scratch((m1 - m0) * block_positions);
            let planes = input.image(image);
            for block in 0..blocks {
                let (c0, _) = f.block_channels(block);
                let src = &planes[c0 * input.channel..];
                for p in p0..p1 {
                    let (panel, rows) = f.panel(block, p);
                    let terms = panel.len() / rows;
                    let dst = &mut acc[(panel_start(p, panels, g.c_out) - m0) * block_positions..];
                    for q in (q0..q1).step_by(CHUNK) {
                        let valid = CHUNK.min(q1 - q);
                        // SAFETY: reads `src[q + offsets[k] + l]` for `l < valid`, which stays
                        // inside the image's padded planes (see `PaddedInput`); writes `rows`
                        // rows of `valid` floats of `dst` at `q − q0`, inside the task's block.
                        unsafe {
                            micro_kernel(
                                rows,
                                terms,
                                panel.as_ptr(),
                                src.as_ptr().add(q),
                                &offsets[..terms],
                                dst.as_mut_ptr().add(q - q0),
                                block_positions,
                                block > 0,
                                valid,
                            );
                        }
                    }
                }
            }
            // Drop the wrapped columns, add the bias and write the task's part of the output.
            for m in m0..m1 {
                let row = &acc[(m - m0) * block_positions..][..q1 - q0];
                let b = bias.map_or(0.0, |b| b[m]);
                let channel = (image * g.c_out + m) * oh * ow;
                for r in q0 / input.width..=(q1 - 1) / input.width {
                    let start = (r * input.width).max(q0);
                    let end = (r * input.width + ow).min(q1);
                    if start >= end {
                        continue;
                    }
                    let col = start - r * input.width;
                    // SAFETY: output channel `m` of this image at these positions belongs to this
                    // task alone, and lies inside the output's capacity; viewed as possibly
                    // uninitialised floats, which are only written.
                    let dst = unsafe {
                        std::slice::from_raw_parts_mut(
                            out_ptr.get().add(channel + r * ow + col)
                                as *mut std::mem::MaybeUninit<f32>,
                            end - start,
                        )
                    };
                    for (d, &v) in dst.iter_mut().zip(&row[start - q0..end - q0]) {
                        d.write(v + b);
                    }
                    // SAFETY: every element of `dst` was written just above.
                    let dst = unsafe { assume_written(dst) };
                    epilogue.apply(channel + r * ow + col, dst);
                }
            }
            return_scratch(acc);
        });
    // SAFETY: all `N · C_out · oH · oW` elements were written by the tasks (see above).
    unsafe { out.set_len(g.batch * g.c_out * oh * ow) };
    out
}

/// How one image's work is cut into tasks: blocks of positions × groups of panels.
struct Split {
    position_blocks: usize,
    block_positions: usize,
    groups: usize,
}

impl Split {
    /// As few position blocks as keep a task's accumulators within [`TASK_ACCUMULATORS`]
    /// (every block streams the whole weight, which for deep layers is megabytes), a multiple
    /// of the thread count for a single image so the threads get equal shares; then, where that
    /// leaves threads idle, the panels split into groups too.
    fn choose(positions: usize, panels: usize, c_out: usize, batch: usize) -> Self {
        let threads = rayon::current_num_threads().max(1);
        let cap = (TASK_ACCUMULATORS / c_out.max(1)).max(MIN_BLOCK_POSITIONS);
        let mut position_blocks = positions.div_ceil(cap).max(1);
        if batch == 1 && position_blocks > 1 {
            position_blocks = position_blocks.next_multiple_of(threads);
        }
        let block_positions = positions
            .div_ceil(position_blocks)
            .next_multiple_of(CHUNK)
            .max(CHUNK);
        let position_blocks = positions.div_ceil(block_positions);
        let groups = (2 * threads)
            .div_ceil(batch * position_blocks)
            .clamp(1, panels);
        Split {
            position_blocks,
            block_positions,
            groups,
        }
    }
}

/// The input as the kernel reads it: per channel, `s_h · s_w` phase planes of `P_h × P_w`
/// (`P_h = oH + (kH − 1) div s_h`, `P_w = oW + (kW − 1) div s_w`) of the zero-padded input (with
/// stride 1 one plane: the input at `(pad_t, pad_l)` and zeros around), each followed by a few
/// zeros so the last row's wrapped positions never read past the end. Without padding, stride or
/// spare rows and columns (1×1 convolutions) the input itself is used.
struct PaddedInput<'a> {
    planes: Cow<'a, [f32]>,
    /// Floats per (phase) plane.
    plane: usize,
    /// Floats per channel: `s_h · s_w` phase planes.
    channel: usize,
    /// Stride `[s_h, s_w]`: the number of phases per axis.
    stride: [usize; 2],
    /// Floats per image.
    image_len: usize,
    /// Row width `P_w` of a plane.
    width: usize,
}

impl<'a> PaddedInput<'a> {
    fn new(x: &'a [f32], g: &ConvGeometry) -> Self {
        let [h, w] = g.in_hw;
        let [kh, kw] = g.kernel;
        let [sh, sw] = g.stride;
        // Phase (a, b) of the zero-padded input x̃ is the plane x̃[s_h·y + a, s_w·x + b]; tap
        // (i, j) of output (oh, ow) reads phase (i mod s_h, j mod s_w) at (oh + i div s_h,
        // ow + j div s_w), so with stride 1 there is one phase, the padded input itself.
        let (ph, pw) = (g.out_hw[0] + (kh - 1) / sh, g.out_hw[1] + (kw - 1) / sw);
        let [pt, pl] = g.pad_before;
        if g.stride == [1, 1] && pt == 0 && pl == 0 && ph == h && pw == w {
            return PaddedInput {
                planes: Cow::Borrowed(x),
                plane: h * w,
                channel: h * w,
                stride: [1, 1],
                image_len: g.c_in * h * w,
                width: w,
            };
        }
        // Valid positions read up to `P_h·P_w + kW − 2` of a plane: each plane has `kW` spare
        // zeros after it (so all planes have one stride and fill in parallel).
        let plane = ph * pw + kw;
        let channel = sh * sw * plane;
        let image_len = g.c_in * channel;
        let mut data = Vec::<f32>::with_capacity(g.batch * image_len);
        // Every element is written once: the copied values, the padding and the spare zeros.
        data.spare_capacity_mut()[..g.batch * image_len]
            .par_chunks_mut(channel)
            .zip(x.par_chunks(h * w))
            .for_each(|(dst, src)| {
                let zero = std::mem::MaybeUninit::new(0.0f32);
                for (phase, dst) in dst.chunks_exact_mut(plane).enumerate() {
                    let (a, b) = (phase / sw, phase % sw);
                    for (py, dst_row) in dst[..ph * pw].chunks_exact_mut(pw).enumerate() {
                        // Row s_h·py + a of x̃ is input row s_h·py + a − pad_t.
                        let y = (sh * py + a).checked_sub(pt).filter(|&y| y < h);
                        let Some(y) = y else {
                            dst_row.fill(zero);
                            continue;
                        };
                        let src_row = &src[y * w..(y + 1) * w];
                        if sw == 1 {
                            // One contiguous run between the left and right padding.
                            let n = w.min(pw - pl);
                            dst_row[..pl].fill(zero);
                            for (d, &v) in dst_row[pl..pl + n].iter_mut().zip(src_row) {
                                *d = std::mem::MaybeUninit::new(v);
                            }
                            dst_row[pl + n..].fill(zero);
                            continue;
                        }
                        for (px, d) in dst_row.iter_mut().enumerate() {
                            let v = (sw * px + b)
                                .checked_sub(pl)
                                .and_then(|x| src_row.get(x))
                                .copied()
                                .unwrap_or(0.0);
                            *d = std::mem::MaybeUninit::new(v);
                        }
                    }
                    dst[ph * pw..].fill(zero);
                }
            });
        // SAFETY: the loop above initialised all `N · C_in · channel` elements.
        unsafe { data.set_len(g.batch * image_len) };
        PaddedInput {
            planes: Cow::Owned(data),
            plane,
            channel,
            stride: g.stride,
            image_len,
            width: pw,
        }
    }

    /// The padded planes of image `n`.
    fn image(&self, n: usize) -> &[f32] {
        &self.planes[n * self.image_len..]
    }

    /// `offsets[(c, i, j)]`: where tap `(i, j)` of channel `c` (of one channel block) reads for
    /// output position 0 — `c·channel + phase(i, j)·plane + (i div s_h)·P_w + j div s_w`.
    fn term_offsets(&self, block_channels: usize, kernel: [usize; 2]) -> Vec<usize> {
        let [sh, sw] = self.stride;
        let mut offsets = Vec::with_capacity(block_channels * kernel[0] * kernel[1]);
        for c in 0..block_channels {
            for i in 0..kernel[0] {
                for j in 0..kernel[1] {
                    let phase = (i % sh) * sw + j % sw;
                    offsets.push(
                        c * self.channel + phase * self.plane + (i / sh) * self.width + j / sw,
                    );
                }
            }
        }
        offsets
    }
}

/// `dst[r, l] (+)= Σ_k panel[k, r] · src[offsets[k] + l]` for `r < rows`, `l < valid`
/// (`+=` if `accumulate`), rows of `dst` `dst_stride` apart.
///
/// # Safety
/// `panel` holds `terms · rows` floats; `src + offsets[k] + l` is readable and `dst + r ·
/// dst_stride + l` writable for the stated ranges; `rows ≤ PANEL_ROWS`, `valid ≤ CHUNK`; the CPU
/// has AVX-512F.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn micro_kernel(
    rows: usize,
    terms: usize,
    panel: *const f32,
    src: *const f32,
    offsets: &[usize],
    dst: *mut f32,
    dst_stride: usize,
    accumulate: bool,
    valid: usize,
) {
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! dispatch {
            ($($n:literal)*) => {
                match rows {
                    $($n => unsafe {
                        avx512::block::<$n>(
                            terms, panel, src, offsets, dst, dst_stride, accumulate, valid,
                        )
                    },)*
                    _ => unreachable!("panel rows"),
                }
            };
        }
        dispatch!(1 2 3 4 5 6 7 8 9 10 11 12 13 14);
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (
            rows, terms, panel, src, offsets, dst, dst_stride, accumulate, valid,
        );
        unreachable!("the direct kernel needs AVX-512");
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    /// Terms ahead whose panel values are prefetched. In a model's passes the packed filters
    /// usually come from memory, not cache (VGG-16's Winograd filters of one 512-channel layer
    /// are 38 MB); the hardware prefetcher alone left the products waiting on them. 48, 96 and
    /// 192 measured alike (`relevance bench`, LRP −4 to −5 % on VGG-16 and ResNet-50).
    const PREFETCH_TERMS: usize = 96;

    /// The `R × 32` output block: `R · 2` accumulators, per term two input loads and `R`
    /// broadcast multiply-adds. Masked loads and stores cover a last, partial chunk.
    ///
    /// # Safety
    /// As [`super::micro_kernel`].
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn block<const R: usize>(
        terms: usize,
        panel: *const f32,
        src: *const f32,
        offsets: &[usize],
        dst: *mut f32,
        dst_stride: usize,
        accumulate: bool,
        valid: usize,
    ) {
        let full = valid == 2 * 16;
        let bits = if full { u32::MAX } else { (1u32 << valid) - 1 };
        let masks = [bits as __mmask16, (bits >> 16) as __mmask16];
        let mut acc = [[_mm512_setzero_ps(); 2]; R];
        // SAFETY (whole body): pointer ranges as the caller vouches.
        unsafe {
            if accumulate {
                for (r, a) in acc.iter_mut().enumerate() {
                    for (v, a) in a.iter_mut().enumerate() {
                        *a = _mm512_maskz_loadu_ps(masks[v], dst.add(r * dst_stride + 16 * v));
                    }
                }
            }
            if full {
                for (k, &off) in offsets.iter().enumerate().take(terms) {
                    let s = src.add(off);
                    let x = [_mm512_loadu_ps(s), _mm512_loadu_ps(s.add(16))];
                    let w = panel.add(k * R);
                    // A hint only: an address past the panel's end is never dereferenced.
                    _mm_prefetch::<_MM_HINT_T0>(w.wrapping_add(PREFETCH_TERMS * R) as *const i8);
                    for (r, a) in acc.iter_mut().enumerate() {
                        let wr = _mm512_set1_ps(*w.add(r));
                        a[0] = _mm512_fmadd_ps(wr, x[0], a[0]);
                        a[1] = _mm512_fmadd_ps(wr, x[1], a[1]);
                    }
                }
            } else {
                for (k, &off) in offsets.iter().enumerate().take(terms) {
                    let s = src.add(off);
                    let x = [
                        _mm512_maskz_loadu_ps(masks[0], s),
                        _mm512_maskz_loadu_ps(masks[1], s.add(16)),
                    ];
                    let w = panel.add(k * R);
                    for (r, a) in acc.iter_mut().enumerate() {
                        let wr = _mm512_set1_ps(*w.add(r));
                        a[0] = _mm512_fmadd_ps(wr, x[0], a[0]);
                        a[1] = _mm512_fmadd_ps(wr, x[1], a[1]);
                    }
                }
            }
            for (r, a) in acc.iter().enumerate() {
                for (v, &a) in a.iter().enumerate() {
                    _mm512_mask_storeu_ps(dst.add(r * dst_stride + 16 * v), masks[v], a);
                }
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::conv::tests::{geometry, naive as definition};
    use super::*;

    /// `n` reproducible values in [−0.5, 0.5) from `seed` (xorshift).
    pub(in super::super) fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5
            })
            .collect()
    }

    /// ⟨conv(x), dy⟩ = ⟨x, dx⟩ (bias-free) for `dx` the computed adjoint of `dy`, to 1e-4.
    pub(in super::super) fn assert_adjoint_identity(
        x: &[f32],
        w: &[f32],
        dy: &[f32],
        dx: &[f32],
        g: &ConvGeometry,
        case: usize,
    ) {
        assert_eq!(dx.len(), x.len());
        let y0 = definition(x, w, None, g);
        let lhs: f64 = y0.iter().zip(dy).map(|(a, b)| (a * b) as f64).sum();
        let rhs: f64 = x.iter().zip(dx).map(|(a, b)| (a * b) as f64).sum();
        assert!(
            (lhs - rhs).abs() <= 1e-4 * lhs.abs().max(1.0),
            "case {case}: {lhs} vs {rhs}"
        );
    }

    #[test]
    fn forward_and_adjoint_match_the_definition_and_the_adjoint_identity_strided_forward_too() {
        if !available() {
            return;
        }
        // (stride, batch, c_in, c_out, in_hw, kernel, pad_before, pad_after): panel remainders
        // 1–13, chunks that end mid-row, padding on one side only, 1×1 reading the input in
        // place; then strided ones (forward only): ResNet's 3×3/2 and 7×7/2 shapes, odd sizes,
        // unequal strides.
        let cases = [
            ([1, 1], 1, 3, 64, [11, 13], [3, 3], [1, 1], [1, 1]),
            ([1, 1], 2, 5, 15, [7, 40], [3, 3], [1, 1], [1, 1]),
            ([1, 1], 1, 40, 29, [9, 9], [1, 1], [0, 0], [0, 0]),
            ([1, 1], 3, 17, 9, [5, 6], [3, 2], [2, 0], [0, 1]),
            ([1, 1], 1, 300, 14, [4, 4], [3, 3], [1, 1], [1, 1]),
            ([1, 1], 1, 2, 1, [33, 3], [5, 5], [2, 2], [2, 2]),
            ([1, 1], 2, 33, 28, [6, 5], [2, 2], [0, 1], [1, 0]),
            ([2, 2], 1, 20, 17, [15, 15], [3, 3], [1, 1], [1, 1]),
            ([2, 2], 2, 3, 16, [23, 22], [7, 7], [3, 3], [3, 3]),
            ([3, 2], 1, 9, 30, [17, 11], [3, 4], [2, 0], [1, 2]),
            ([2, 3], 1, 40, 5, [8, 9], [2, 3], [0, 2], [0, 0]),
        ];
        for (case, &(stride, batch, c_in, c_out, in_hw, kernel, pad, pad_after)) in
            cases.iter().enumerate()
        {
            let [(t, l), (b, r)] = [(pad[0], pad[1]), (pad_after[0], pad_after[1])];
            let g = geometry(
                batch,
                c_in,
                in_hw,
                c_out,
                kernel,
                stride,
                [1, 1],
                [t, l, b, r],
            );
            let x = values(batch * c_in * in_hw[0] * in_hw[1], 3 * case as u64 + 1);
            let w = values(c_out * c_in * kernel[0] * kernel[1], 3 * case as u64 + 2);
            let b = values(c_out, 3 * case as u64 + 3);
            let ours = convolve(
                &x,
                &PackedFilters::forward(&w, c_out, c_in, kernel),
                Some(&b),
                &g,
                Epilogue::Store,
            );
            let want = definition(&x, &w, Some(&b), &g);
            let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
            for (a, e) in ours.iter().zip(&want) {
                assert!((a - e).abs() <= 1e-5 * scale, "case {case}: {a} vs {e}");
            }
            if stride != [1, 1] {
                continue;
            }
            // ⟨conv(x), dy⟩ = ⟨x, Wᵀ ⋆ dy⟩ (bias-free).
            let dy = values(want.len(), 3 * case as u64 + 4);
            let dx = convolve(
                &dy,
                &PackedFilters::adjoint(&w, c_out, c_in, kernel),
                None,
                &adjoint_geometry(&g),
                Epilogue::Store,
            );
            assert_adjoint_identity(&x, &w, &dy, &dx, &g, case);
        }
    }
}
