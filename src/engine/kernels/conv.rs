//! Dense 2-D convolution as im2col + GEMM, written for the shapes CNN explanations run:
//! batch 1–8, 3×3 and 1×1 kernels, tens to hundreds of channels.
//!
//! For output pixels `p` of one image, `Y[o, p] = Σ_r W[o, r] · X̂[r, p] + b[o]`, where
//! `r = (c, i, j)` runs over input channel and kernel offset and the column matrix
//! `X̂[r, p] = x[c, oh(p)·s_h + i·d_h − pad_t, ow(p)·s_w + j·d_w − pad_l]` (zero outside the input)
//! is built tile by tile in the layout GEMM reads without a transpose (Chellapilla et al.,
//! "High Performance Convolutional Neural Networks for Document Processing", 2006). The weight
//! `[C_out, C_in, kH, kW]` is already the row-major left operand, so nothing is re-laid out per
//! call, and each tile's product lands directly in the NCHW output.
//!
//! Work is split over (image, pixel tile) with rayon when there are enough tiles to keep every
//! thread busy; otherwise (deep layers with few pixels) the whole image's columns are built once
//! and the GEMM itself runs in parallel over output channels.

use std::cell::RefCell;

use rayon::prelude::*;

/// Geometry of one convolution: input, kernel and output sizes, stride, dilation and the padding
/// before the first row and column. Reads outside the input are zeros, so the output size is
/// free: a transposed convolution is this same geometry with another output size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeometry {
    /// Batch size.
    pub batch: usize,
    /// Input channels.
    pub c_in: usize,
    /// Input height and width.
    pub in_hw: [usize; 2],
    /// Output channels.
    pub c_out: usize,
    /// Kernel height and width.
    pub kernel: [usize; 2],
    /// Output height and width.
    pub out_hw: [usize; 2],
    /// Stride `[s_h, s_w]`.
    pub stride: [usize; 2],
    /// Dilation `[d_h, d_w]`.
    pub dilation: [usize; 2],
    /// Zero rows above and columns left of the input, `[pad_t, pad_l]`.
    pub pad_before: [usize; 2],
}

impl ConvGeometry {
    /// Panics unless `x` holds `N · C_in · H · W` values and `bias` (if any) `C_out`.
    pub(super) fn check_operands(&self, x: &[f32], bias: Option<&[f32]>) {
        let [h, w] = self.in_hw;
        assert_eq!(x.len(), self.batch * self.c_in * h * w, "input size");
        if let Some(b) = bias {
            assert_eq!(b.len(), self.c_out, "bias size");
        }
    }

    /// Rows of the column matrix: `C_in · kH · kW`.
    pub fn col_rows(&self) -> usize {
        self.c_in * self.kernel[0] * self.kernel[1]
    }

    /// Output pixels per image.
    pub fn out_pixels(&self) -> usize {
        self.out_hw[0] * self.out_hw[1]
    }

    fn in_pixels(&self) -> usize {
        self.in_hw[0] * self.in_hw[1]
    }
}

/// Fewest output pixels per tile: below this, GEMM's packing of the weights dominates its work.
const MIN_TILE: usize = 128;
/// Most output pixels per tile: keeps a tile's columns (≤ 4608 × 2048 floats for VGG) in L3.
const MAX_TILE: usize = 2048;

thread_local! {
    /// Per-thread column buffer, reused across tiles and calls (allocation and page faults of a
    /// fresh multi-megabyte buffer per tile cost more than small layers' arithmetic).
    static COLUMNS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// A thread's scratch buffer handed out as `len` floats: the first `len` of a vector that may
/// hold more. The vector's length is how much of it has ever been written, so a later, larger
/// request zeroes only what no earlier one reached. Callers write before they read (the
/// contents are whatever an earlier call left). Truncating it to each request, as before,
/// had every larger request after a smaller one zero the difference again — 8 MB per pass on
/// VGG-16's 28² Winograd layers, whose worker threads also take small buffers.
pub(super) struct Scratch {
    buf: Vec<f32>,
    len: usize,
}

impl std::ops::Deref for Scratch {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.buf[..self.len]
    }
}

impl std::ops::DerefMut for Scratch {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.buf[..self.len]
    }
}

/// This thread's scratch buffer as `len` floats, taken out of [`COLUMNS`] rather than
/// borrowed: a thread that waits inside rayon may run another convolution, which then finds
/// the slot empty and allocates instead of panicking on a second borrow.
pub(super) fn take_scratch(len: usize) -> Scratch {
    let mut buf = COLUMNS.with(|cell| cell.take());
    if buf.len() < len {
        buf.resize(len, 0.0);
    }
    Scratch { buf, len }
}

/// Puts a scratch buffer back for the next call on this thread (keeping the larger one).
pub(super) fn return_scratch(scratch: Scratch) {
    COLUMNS.with(|cell| {
        if cell.borrow().capacity() < scratch.buf.capacity() {
            cell.replace(scratch.buf);
        }
    });
}

/// `s` as initialised floats, once every element has been written.
///
/// # Safety
/// Every element of `s` must have been written.
pub(super) unsafe fn assume_written(s: &mut [std::mem::MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: `MaybeUninit<f32>` has `f32`'s layout, and the caller vouches for the values.
    unsafe { &mut *(s as *mut [std::mem::MaybeUninit<f32>] as *mut [f32]) }
}

/// `part` set to zeros and handed back initialised. Kernels that fill a fresh output take its
/// uninitialised memory in parallel parts and zero each part in the task that then writes it,
/// while it is in cache — a zeroed allocation would be one more pass over the whole output,
/// sending every line to memory and back (VGG-16's first pooling adjoint writes 12.8 MB).
pub(super) fn zeroed<T: Copy + Default>(part: &mut [std::mem::MaybeUninit<T>]) -> &mut [T] {
    part.iter_mut().for_each(|v| {
        v.write(T::default());
    });
    // SAFETY: `MaybeUninit<T>` has `T`'s layout, and every element was initialised above.
    unsafe { &mut *(part as *mut [std::mem::MaybeUninit<T>] as *mut [T]) }
}

/// Raw output pointer shared by tasks that write disjoint parts of the output (here: an image's
/// pixel range; in `winograd`: a block's output rows).
#[derive(Clone, Copy)]
pub(super) struct OutPtr(pub(super) *mut f32);
// SAFETY: every task writes a disjoint set of output elements.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// The pointer; a method (not a field access) so closures capture the whole `Send` wrapper.
    pub(super) fn get(self) -> *mut f32 {
        self.0
    }
}

/// `y = conv(x, weight) + bias` for `x: [N, C_in, H, W]`, `weight: [C_out, C_in, kH, kW]`
/// (one group), returning `[N, C_out, oH, oW]` row-major.
///
/// # Panics
/// If a slice length disagrees with the geometry (callers check shapes first).
pub fn conv2d_forward(
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    g: &ConvGeometry,
) -> Vec<f32> {
    let rows = g.col_rows();
    let pixels = g.out_pixels();
    assert_eq!(x.len(), g.batch * g.c_in * g.in_pixels(), "input size");
    assert_eq!(weight.len(), g.c_out * rows, "weight size");
    if let Some(b) = bias {
        assert_eq!(b.len(), g.c_out, "bias size");
    }
    let mut out = vec![0.0f32; g.batch * g.c_out * pixels];
    if pixels == 0 || g.c_out == 0 {
        return out;
    }
    let threads = rayon::current_num_threads().max(1);
    if pixels < MIN_TILE && g.batch > 1 {
        forward_image_groups(&mut out, x, weight, bias, g, threads);
        return out;
    }
    let (tile, tiles_per_image) = tiling(pixels, g.batch, threads);
    let out_ptr = OutPtr(out.as_mut_ptr());
    // A 1×1, stride-1, unpadded convolution reads its input as the column matrix itself.
    let pointwise = is_pointwise(g);
    let layout = ColumnLayout::of(g);
    let run = |task: usize, parallel_gemm: bool| {
        let image = task / tiles_per_image;
        let start = (task % tiles_per_image) * tile;
        let len = tile.min(pixels - start);
        let x_image = &x[image * g.c_in * g.in_pixels()..(image + 1) * g.c_in * g.in_pixels()];
        // SAFETY (both arms): this task's output block (image, all channels, pixels
        // start..start+len) is disjoint from every other task's; strides keep writes inside `out`.
        let dst = unsafe { out_ptr.get().add(image * g.c_out * pixels + start) };
        let product = |rhs: &[f32], rhs_row_stride: usize| unsafe {
            multiply_tile(
                dst,
                pixels,
                weight,
                rhs,
                rhs_row_stride,
                bias,
                g.c_out,
                rows,
                len,
                parallel_gemm,
            )
        };
        if pointwise {
            return product(&x_image[start..], pixels);
        }
        let mut cols = take_scratch(rows * len);
        if parallel_gemm {
            // One task for the whole image: build its columns on every thread too.
            let taps = g.kernel[0] * g.kernel[1];
            let per = g.c_in.div_ceil(rayon::current_num_threads()).max(1);
            cols.par_chunks_mut(per * taps * len)
                .enumerate()
                .for_each(|(b, chunk)| {
                    let c0 = b * per;
                    let c1 = (c0 + per).min(g.c_in);
                    fill_columns(chunk, len, x_image, g, &layout, c0..c1, start, len);
                });
        } else {
            fill_columns(&mut cols, len, x_image, g, &layout, 0..g.c_in, start, len);
        }
        product(&cols, len);
        return_scratch(cols);
    };
    let tasks = g.batch * tiles_per_image;
    if tasks >= threads && threads > 1 {
        (0..tasks).into_par_iter().for_each(|t| run(t, false));
    } else {
        (0..tasks).for_each(|t| run(t, threads > 1));
    }
    out
}

/// A 1×1, stride-1, unpadded convolution: its input is its own column matrix.
fn is_pointwise(g: &ConvGeometry) -> bool {
    g.kernel == [1, 1] && g.stride == [1, 1] && g.pad_before == [0, 0] && g.in_hw == g.out_hw
}

/// Chooses the tile length and tiles per image so that the task count is a multiple of the
/// thread count where the image is large enough, with tiles between [`MIN_TILE`] and
/// [`MAX_TILE`] pixels.
fn tiling(pixels: usize, batch: usize, threads: usize) -> (usize, usize) {
    let mut tiles = pixels.div_ceil(MAX_TILE);
    // Round the task count up to a multiple of the thread count so no thread idles at the end.
    let tasks = (tiles * batch).div_ceil(threads) * threads;
    tiles = tasks.div_ceil(batch).max(1);
    let mut tile = pixels.div_ceil(tiles);
    if tile < MIN_TILE {
        tile = MIN_TILE.min(pixels);
    }
    (tile, pixels.div_ceil(tile))
}

/// One run of a column-matrix row that stays within one output row: column-matrix row `row`
/// (of local channel `channel`), tile positions `tile`, reading input row `input_row` (`None`:
/// in the padding) at columns `(ow0 + k)·stride + offset`.
struct Segment {
    row: usize,
    channel: usize,
    tile: std::ops::Range<usize>,
    input_row: Option<usize>,
    ow0: usize,
    offset: isize,
}

/// Visits the column matrix of `channels` input channels for output pixels `start..start+len`
/// as [`Segment`]s: the traversal [`fill_columns`] (im2col) and [`scatter_columns`] (col2im)
/// share.
fn for_each_segment(
    g: &ConvGeometry,
    channels: usize,
    start: usize,
    len: usize,
    mut visit: impl FnMut(Segment),
) {
    let [kh, kw] = g.kernel;
    let [_, out_w] = g.out_hw;
    let [sh, _] = g.stride;
    let [dh, dw] = g.dilation;
    let [pt, pl] = g.pad_before;
    let (first_oh, first_ow) = (start / out_w, start % out_w);
    for channel in 0..channels {
        for i in 0..kh {
            for j in 0..kw {
                let row = (channel * kh + i) * kw + j;
                let offset = (j * dw) as isize - pl as isize;
                // Walk output rows without dividing: the first run may start mid-row.
                let (mut p, mut oh, mut ow0) = (start, first_oh, first_ow);
                while p < start + len {
                    let run = (out_w - ow0).min(start + len - p);
                    let ih = (oh * sh + i * dh) as isize - pt as isize;
                    visit(Segment {
                        row,
                        channel,
                        tile: p - start..p - start + run,
                        input_row: (0..g.in_hw[0] as isize)
                            .contains(&ih)
                            .then_some(ih as usize),
                        ow0,
                        offset,
                    });
                    p += run;
                    oh += 1;
                    ow0 = 0;
                }
            }
        }
    }
}

/// How a geometry's column matrix is built (im2col) and scattered back (col2im), chosen once per
/// kernel call: the per-tap source table of small planes is built there, not per image.
enum ColumnLayout {
    /// Planes of at most [`TINY_PLANE`] pixels: per tap and output pixel, the input index read
    /// (see [`tap_sources`]).
    Table(Vec<u32>),
    /// Stride-1, width-preserving geometries: each row is a shifted copy of the plane
    /// (see [`TapShift`]).
    Shifted,
    /// Everything else: one run per output row ([`for_each_segment`]).
    Rows,
}

impl ColumnLayout {
    fn of(g: &ConvGeometry) -> ColumnLayout {
        if g.in_pixels() <= TINY_PLANE {
            ColumnLayout::Table(tap_sources(g))
        } else if is_row_preserving(g) {
            ColumnLayout::Shifted
        } else {
            ColumnLayout::Rows
        }
    }
}

/// Fills `cols` with the rows of input channels `channels` of one image's column matrix, for
/// output pixels `start..start + len`: row `r` (`r = (c, i, j)` local to the channels) starts at
/// `cols[r · row_stride]`, so several images' columns can sit side by side in one matrix.
#[allow(clippy::too_many_arguments)]
fn fill_columns(
    cols: &mut [f32],
    row_stride: usize,
    x: &[f32],
    g: &ConvGeometry,
    layout: &ColumnLayout,
    channels: std::ops::Range<usize>,
    start: usize,
    len: usize,
) {
    let [in_h, in_w] = g.in_hw;
    let first = channels.start;
    let taps = g.kernel[0] * g.kernel[1];
    match layout {
        ColumnLayout::Table(table) => {
            let pixels = g.out_pixels();
            for (local, c) in channels.enumerate() {
                let src = &x[c * in_h * in_w..(c + 1) * in_h * in_w];
                for tap in 0..taps {
                    let row = local * taps + tap;
                    let dst = &mut cols[row * row_stride..row * row_stride + len];
                    let sources = &table[tap * pixels + start..tap * pixels + start + len];
                    for (d, &at) in dst.iter_mut().zip(sources) {
                        *d = if at == NO_SOURCE {
                            0.0
                        } else {
                            src[at as usize]
                        };
                    }
                }
            }
            return;
        }
        ColumnLayout::Shifted => {
            for (local, c) in channels.enumerate() {
                let src = &x[c * in_h * in_w..(c + 1) * in_h * in_w];
                for tap in 0..taps {
                    let row = local * taps + tap;
                    let dst = &mut cols[row * row_stride..row * row_stride + len];
                    let shift = TapShift::of(g, tap);
                    let (lo, hi) = shift.copied_range(in_w, start, len);
                    if hi > lo {
                        let (a, b) = (shift.source(lo), shift.source(hi));
                        dst[lo - start..hi - start].copy_from_slice(&src[a..b]);
                    }
                    dst[..lo - start].fill(0.0);
                    dst[hi - start..].fill(0.0);
                    shift.for_each_outside_column(in_w, lo, hi, |p| dst[p - start] = 0.0);
                }
            }
            return;
        }
        ColumnLayout::Rows => {}
    }
    for_each_segment(g, channels.len(), start, len, |s| {
        let seg = &mut cols[s.row * row_stride..s.row * row_stride + len][s.tile];
        match s.input_row {
            None => seg.fill(0.0),
            Some(ih) => {
                let plane = (first + s.channel) * in_h * in_w;
                let src = &x[plane + ih * in_w..plane + (ih + 1) * in_w];
                copy_row(seg, src, s.ow0, s.offset, g.stride[1]);
            }
        }
    });
}

/// Input planes up to this many pixels (the deepest layers of small inputs: 8×8, 4×4, 2×2)
/// take im2col/col2im through a table of source indices per tap: a few-pixel row is cheaper to
/// gather than to copy with bounds worked out per row.
const TINY_PLANE: usize = 64;

/// Marks a column-matrix cell that reads padding.
const NO_SOURCE: u32 = u32::MAX;

/// For each tap `t` and output pixel `p`, the flat input index that cell `(t, p)` of the column
/// matrix reads, or [`NO_SOURCE`] in the padding: `[kH·kW, oH·oW]`.
fn tap_sources(g: &ConvGeometry) -> Vec<u32> {
    let [kh, kw] = g.kernel;
    let [out_h, out_w] = g.out_hw;
    let [in_h, in_w] = g.in_hw;
    let mut table = Vec::with_capacity(kh * kw * out_h * out_w);
    for i in 0..kh {
        for j in 0..kw {
            for oh in 0..out_h {
                let ih = (oh * g.stride[0] + i * g.dilation[0]) as isize - g.pad_before[0] as isize;
                for ow in 0..out_w {
                    let iw =
                        (ow * g.stride[1] + j * g.dilation[1]) as isize - g.pad_before[1] as isize;
                    let inside =
                        (0..in_h as isize).contains(&ih) && (0..in_w as isize).contains(&iw);
                    table.push(if inside {
                        (ih as usize * in_w + iw as usize) as u32
                    } else {
                        NO_SOURCE
                    });
                }
            }
        }
    }
    table
}

/// A stride-1 convolution whose output rows are as wide as its input rows (any kernel,
/// dilation and vertical padding; horizontal padding that keeps the width): tap `(i, j)` then
/// reads input element `p + δ` for output pixel `p` of the flattened plane, so a column-matrix
/// row is one shifted copy of the input plane with a few cells zeroed — instead of one short
/// copy per output row, which dominated deep layers only a few pixels wide.
fn is_row_preserving(g: &ConvGeometry) -> bool {
    g.stride == [1, 1] && g.out_hw[1] == g.in_hw[1]
}

/// Where tap `(i, j)` of a row-preserving convolution reads: output pixel `p` reads input
/// element `p + delta` when its row lies in `rows` and its column in `cols`.
struct TapShift {
    delta: isize,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
}

impl TapShift {
    /// The shift of flat tap index `tap = i·kW + j`.
    fn of(g: &ConvGeometry, tap: usize) -> TapShift {
        let (i, j) = (tap / g.kernel[1], tap % g.kernel[1]);
        let [in_h, in_w] = g.in_hw.map(|v| v as isize);
        let dy = (i * g.dilation[0]) as isize - g.pad_before[0] as isize;
        let dx = (j * g.dilation[1]) as isize - g.pad_before[1] as isize;
        let clamp = |v: isize, hi: usize| v.clamp(0, hi as isize) as usize;
        let rows = clamp(-dy, g.out_hw[0])..clamp(in_h - dy, g.out_hw[0]);
        let cols = clamp(-dx, g.in_hw[1])..clamp(in_w - dx, g.in_hw[1]);
        TapShift {
            delta: dy * in_w + dx,
            rows,
            cols,
        }
    }

    /// The pixels `lo..hi` of tile `start..start + len` from the first valid cell to the last:
    /// one contiguous run of the source (cells in invalid columns in between included).
    fn copied_range(&self, w: usize, start: usize, len: usize) -> (usize, usize) {
        if self.rows.is_empty() || self.cols.is_empty() {
            return (start, start);
        }
        let first = self.rows.start * w + self.cols.start;
        let last = (self.rows.end - 1) * w + self.cols.end;
        let clip = |p: usize| p.clamp(start, start + len);
        let (lo, hi) = (clip(first), clip(last));
        (lo, hi.max(lo))
    }

    /// Source index of output pixel `p` (inside the copied range, never negative).
    fn source(&self, p: usize) -> usize {
        (p as isize + self.delta) as usize
    }

    /// Calls `f(p)` for each pixel in `lo..hi` whose column lies outside `cols` (read across a
    /// row boundary by the contiguous copy, so it must be zeroed or skipped).
    fn for_each_outside_column(&self, w: usize, lo: usize, hi: usize, mut f: impl FnMut(usize)) {
        if hi <= lo || (self.cols.start == 0 && self.cols.end == w) {
            return;
        }
        for oh in lo / w..=(hi - 1) / w {
            for ow in (0..self.cols.start).chain(self.cols.end..w) {
                let p = oh * w + ow;
                if (lo..hi).contains(&p) {
                    f(p);
                }
            }
        }
    }
}

/// The run `lo..hi` of `k < n` whose index `(ow0 + k)·stride + offset` lies in `0..width`.
fn valid_range(n: usize, width: usize, ow0: usize, offset: isize, stride: usize) -> (usize, usize) {
    let (n, ow0, stride, width) = (n as isize, ow0 as isize, stride as isize, width as isize);
    let lo = ((-offset).max(0) + stride - 1) / stride - ow0;
    let hi = (width - offset + stride - 1).max(0) / stride - ow0;
    let (lo, hi) = (lo.clamp(0, n) as usize, hi.clamp(0, n) as usize);
    (lo, hi.max(lo))
}

/// `seg[k] = src[(ow0 + k)·stride + offset]`, zero where that index falls outside `src`.
fn copy_row(seg: &mut [f32], src: &[f32], ow0: usize, offset: isize, stride: usize) {
    let (lo, hi) = valid_range(seg.len(), src.len(), ow0, offset, stride);
    if stride == 1 {
        if hi > lo {
            let begin = ((ow0 + lo) as isize + offset) as usize;
            let (dst, src) = (&mut seg[lo..hi], &src[begin..begin + (hi - lo)]);
            if dst.len() <= 16 {
                // Deep layers' rows are a few pixels long: a call into memcpy costs more.
                for (d, &v) in dst.iter_mut().zip(src) {
                    *d = v;
                }
            } else {
                dst.copy_from_slice(src);
            }
        }
    } else {
        for (k, v) in seg.iter_mut().enumerate().take(hi).skip(lo) {
            *v = src[(((ow0 + k) * stride) as isize + offset) as usize];
        }
    }
    seg[..lo].fill(0.0);
    seg[hi..].fill(0.0);
}

/// `dst[o, p] = Σ_r weight[o, r] · cols[r, p] + bias[o]` for `len` pixels, rows of `dst`
/// `row_stride` and rows of `cols` `cols_row_stride` apart.
///
/// # Safety
/// `dst` must be valid for writes at `o · row_stride + p` for `o < c_out`, `p < len`.
#[allow(clippy::too_many_arguments)]
unsafe fn multiply_tile(
    dst: *mut f32,
    row_stride: usize,
    weight: &[f32],
    cols: &[f32],
    cols_row_stride: usize,
    bias: Option<&[f32]>,
    c_out: usize,
    rows: usize,
    len: usize,
    parallel: bool,
) {
    if let Some(b) = bias {
        for (o, &bo) in b.iter().enumerate() {
            // SAFETY: within the block the caller vouches for.
            unsafe { std::slice::from_raw_parts_mut(dst.add(o * row_stride), len).fill(bo) };
        }
    }
    let parallelism = gemm_parallelism(parallel);
    // SAFETY: operands are row-major slices of the stated sizes; `dst` per the caller.
    unsafe {
        gemm::gemm(
            c_out,
            len,
            rows,
            dst,
            1,
            row_stride as isize,
            bias.is_some(),
            weight.as_ptr(),
            1,
            rows as isize,
            cols.as_ptr(),
            1,
            cols_row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// GEMM's threading: on rayon's pool, or on the calling thread only.
pub(super) fn gemm_parallelism(parallel: bool) -> gemm::Parallelism {
    if parallel {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    }
}

/// Copies pixels `range` of every channel row of one image (`src`: `[C, pixels]`) into columns
/// `at..` of the packed matrix `dst` (`[C, len]`), where several images sit side by side.
fn pack_channel_rows(
    dst: &mut [f32],
    len: usize,
    at: usize,
    src: &[f32],
    pixels: usize,
    range: std::ops::Range<usize>,
) {
    let width = range.len();
    for (row, src_row) in dst.chunks_exact_mut(len).zip(src.chunks_exact(pixels)) {
        row[at..at + width].copy_from_slice(&src_row[range.clone()]);
    }
}

/// Input adjoint of the convolution with geometry `g`: `dx = Wᵀ ⋆ dy` for `dy: [N, C_out, oH, oW]`
/// and `weight: [C_out, C_in, kH, kW]`, returning `[N, C_in, H, W]`, i.e. the vector–Jacobian
/// product `dx[c, y, x] = Σ_{o,i,j} W[o, c, i, j] · dy[o, p]` over the output pixels `p` that read
/// `(c, y, x)` at offset `(i, j)`. Any stride, dilation and padding.
///
/// Computed as column gradients `Ĝ = Wᵀ · dy` (GEMM reading the weight transposed in place, so
/// no re-laid-out copy) scattered back onto the input (col2im). Tasks own disjoint blocks of
/// input channels, so their scatters never collide.
///
/// # Panics
/// If a slice length disagrees with the geometry.
pub fn conv2d_input_adjoint(dy: &[f32], weight: &[f32], g: &ConvGeometry) -> Vec<f32> {
    let rows = g.col_rows();
    let pixels = g.out_pixels();
    let taps = g.kernel[0] * g.kernel[1];
    assert_eq!(dy.len(), g.batch * g.c_out * pixels, "output-gradient size");
    assert_eq!(weight.len(), g.c_out * rows, "weight size");
    let mut dx = vec![0.0f32; g.batch * g.c_in * g.in_pixels()];
    if pixels == 0 || g.c_in == 0 {
        return dx;
    }
    let threads = rayon::current_num_threads().max(1);
    if pixels < MIN_TILE && g.batch > 1 {
        input_adjoint_image_groups(&mut dx, dy, weight, g, threads);
        return dx;
    }
    // Channel blocks: enough for every thread (twice over for balance), never empty.
    let blocks_per_image = (2 * threads).div_ceil(g.batch).clamp(1, g.c_in);
    let block = g.c_in.div_ceil(blocks_per_image);
    let blocks_per_image = g.c_in.div_ceil(block);
    // Pixels per tile: the block's column gradients (≤ 1 M floats) stay in L2/L3.
    let tile = (1 << 20) / (block * taps).max(1);
    let tile = tile.clamp(MIN_TILE.min(pixels), pixels.max(1));
    let dx_ptr = OutPtr(dx.as_mut_ptr());
    let pointwise = is_pointwise(g);
    let layout = ColumnLayout::of(g);
    let task = |t: usize| {
        let image = t / blocks_per_image;
        let c0 = (t % blocks_per_image) * block;
        let c1 = (c0 + block).min(g.c_in);
        let block_rows = (c1 - c0) * taps;
        let dy_image = &dy[image * g.c_out * pixels..(image + 1) * g.c_out * pixels];
        // SAFETY: channels c0..c1 of this image belong to this task alone.
        let dx_block = unsafe {
            std::slice::from_raw_parts_mut(
                dx_ptr.get().add((image * g.c_in + c0) * g.in_pixels()),
                (c1 - c0) * g.in_pixels(),
            )
        };
        let mut scratch = take_scratch(if pointwise {
            0
        } else {
            block_rows * tile.min(pixels)
        });
        {
            let mut start = 0;
            while start < pixels {
                let len = tile.min(pixels - start);
                // A pointwise convolution's column gradients are the input gradients.
                let (dst, dst_row_stride) = if pointwise {
                    (dx_block[start..].as_mut_ptr(), g.in_pixels())
                } else {
                    (scratch.as_mut_ptr(), len)
                };
                // SAFETY: `cols` is [block_rows, len] row-major; the weight's rows c0·taps.. read
                // transposed (element (r, o) at o·rows + r); `dy` rows are `pixels` apart.
                unsafe {
                    gemm::gemm(
                        block_rows,
                        len,
                        g.c_out,
                        dst,
                        1,
                        dst_row_stride as isize,
                        false,
                        weight.as_ptr().add(c0 * taps),
                        rows as isize,
                        1,
                        dy_image.as_ptr().add(start),
                        1,
                        pixels as isize,
                        0.0,
                        1.0,
                        false,
                        false,
                        false,
                        gemm::Parallelism::None,
                    );
                }
                if !pointwise {
                    scatter_columns(
                        dx_block,
                        &mut scratch[..block_rows * len],
                        len,
                        g,
                        &layout,
                        c1 - c0,
                        start,
                        len,
                    );
                }
                start += len;
            }
        }
        return_scratch(scratch);
    };
    (0..g.batch * blocks_per_image)
        .into_par_iter()
        .for_each(task);
    dx
}

/// Images per group when a layer's images are smaller than [`MIN_TILE`] pixels: enough images
/// side by side for a GEMM of at least `MIN_TILE` columns, yet at least one group per thread
/// where the batch allows.
fn images_per_group(g: &ConvGeometry, threads: usize) -> usize {
    let wanted = MIN_TILE.div_ceil(g.out_pixels().max(1));
    wanted.min(g.batch.div_ceil(threads)).max(1)
}

/// Runs `task(first_image, images, parallel_gemm)` for each group of [`images_per_group`]
/// consecutive images: over rayon when there are groups for every thread, else one after the
/// other with a parallel GEMM inside.
fn for_each_image_group(
    g: &ConvGeometry,
    threads: usize,
    task: impl Fn(usize, usize, bool) + Sync + Send,
) {
    let per = images_per_group(g, threads);
    let groups = g.batch.div_ceil(per);
    let run = |k: usize, parallel: bool| task(k * per, per.min(g.batch - k * per), parallel);
    if groups >= threads && threads > 1 {
        (0..groups).into_par_iter().for_each(|k| run(k, false));
    } else {
        (0..groups).for_each(|k| run(k, threads > 1));
    }
}

/// Forward pass for layers with fewer than [`MIN_TILE`] pixels per image (deep layers of a
/// training batch): the columns of several images side by side make one GEMM with
/// `images · pixels` columns instead of one GEMM per image with a handful of columns (which
/// would re-pack the whole weight for every image).
fn forward_image_groups(
    out: &mut [f32],
    x: &[f32],
    weight: &[f32],
    bias: Option<&[f32]>,
    g: &ConvGeometry,
    threads: usize,
) {
    let rows = g.col_rows();
    let pixels = g.out_pixels();
    let in_size = g.c_in * g.in_pixels();
    let out_ptr = OutPtr(out.as_mut_ptr());
    let layout = ColumnLayout::of(g);
    for_each_image_group(g, threads, |first, images, parallel| {
        let len = images * pixels;
        let mut cols = take_scratch(rows * len);
        for k in 0..images {
            let x_image = &x[(first + k) * in_size..(first + k + 1) * in_size];
            fill_columns(
                &mut cols[k * pixels..],
                len,
                x_image,
                g,
                &layout,
                0..g.c_in,
                0,
                pixels,
            );
        }
        let mut product = vec![0.0f32; g.c_out * len];
        // SAFETY: `product` is [c_out, len] row-major.
        unsafe {
            multiply_tile(
                product.as_mut_ptr(),
                len,
                weight,
                &cols,
                len,
                None,
                g.c_out,
                rows,
                len,
                parallel,
            )
        };
        return_scratch(cols);
        for k in 0..images {
            for o in 0..g.c_out {
                let b = bias.map_or(0.0, |b| b[o]);
                let src = &product[o * len + k * pixels..o * len + (k + 1) * pixels];
                // SAFETY: images first..first+images belong to this group alone.
                let dst = unsafe {
                    std::slice::from_raw_parts_mut(
                        out_ptr.get().add(((first + k) * g.c_out + o) * pixels),
                        pixels,
                    )
                };
                for (d, &v) in dst.iter_mut().zip(src) {
                    *d = v + b;
                }
            }
        }
    });
}

/// Input adjoint for layers with fewer than [`MIN_TILE`] pixels per image: the output gradients
/// of a group of images packed side by side, one GEMM for their column gradients, then col2im
/// per image (see [`forward_image_groups`] for why).
fn input_adjoint_image_groups(
    dx: &mut [f32],
    dy: &[f32],
    weight: &[f32],
    g: &ConvGeometry,
    threads: usize,
) {
    let rows = g.col_rows();
    let pixels = g.out_pixels();
    let in_size = g.c_in * g.in_pixels();
    let dx_ptr = OutPtr(dx.as_mut_ptr());
    let layout = ColumnLayout::of(g);
    for_each_image_group(g, threads, |first, images, parallel| {
        let len = images * pixels;
        let mut dy_packed = vec![0.0f32; g.c_out * len];
        for k in 0..images {
            let dy_image = &dy[(first + k) * g.c_out * pixels..(first + k + 1) * g.c_out * pixels];
            pack_channel_rows(&mut dy_packed, len, k * pixels, dy_image, pixels, 0..pixels);
        }
        let mut cols = take_scratch(rows * len);
        let parallelism = gemm_parallelism(parallel);
        // SAFETY: `cols` is [rows, len] row-major; the weight [c_out, rows] read transposed;
        // `dy_packed` is [c_out, len] row-major.
        unsafe {
            gemm::gemm(
                rows,
                len,
                g.c_out,
                cols.as_mut_ptr(),
                1,
                len as isize,
                false,
                weight.as_ptr(),
                rows as isize,
                1,
                dy_packed.as_ptr(),
                1,
                len as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
        for k in 0..images {
            // SAFETY: images first..first+images belong to this group alone.
            let dx_image = unsafe {
                std::slice::from_raw_parts_mut(dx_ptr.get().add((first + k) * in_size), in_size)
            };
            scatter_columns(
                dx_image,
                &mut cols[k * pixels..],
                len,
                g,
                &layout,
                g.c_in,
                0,
                pixels,
            );
        }
        return_scratch(cols);
    });
}

/// Weight gradient of the convolution with geometry `g`:
/// `dW[o, r] = Σ_n Σ_p dy[n, o, p] · X̂_n[r, p]` for `x: [N, C_in, H, W]` and
/// `dy: [N, C_out, oH, oW]`, returning `[C_out, C_in, kH, kW]` — the vector–Jacobian product of
/// the forward pass with respect to its weight (one group, any stride, dilation and padding).
///
/// The (image, pixel) positions of the whole batch are cut into runs of about [`MAX_TILE`]
/// positions, crossing image boundaries so that deep layers with a handful of pixels per image
/// still give GEMMs with a long inner dimension; each run packs its output gradients
/// `[C_out, len]` and columns `[rows, len]` and adds `dy · X̂ᵀ` to a per-task accumulator, and the
/// accumulators are summed at the end.
///
/// # Panics
/// If a slice length disagrees with the geometry.
pub fn conv2d_weight_gradient(x: &[f32], dy: &[f32], g: &ConvGeometry) -> Vec<f32> {
    let rows = g.col_rows();
    let pixels = g.out_pixels();
    assert_eq!(x.len(), g.batch * g.c_in * g.in_pixels(), "input size");
    assert_eq!(dy.len(), g.batch * g.c_out * pixels, "output-gradient size");
    let size = g.c_out * rows;
    let total = g.batch * pixels;
    if total == 0 || size == 0 {
        return vec![0.0; size];
    }
    let threads = rayon::current_num_threads().max(1);
    let runs = total
        .div_ceil(MAX_TILE)
        .max(threads.min(total.div_ceil(MIN_TILE)));
    let run_len = total.div_ceil(runs);
    let runs = total.div_ceil(run_len);
    // With few output channels, accumulating dW column-major lets GEMM read the large column
    // matrix in place instead of packing it (measured 100 → 126 GFLOP/s per core for 64
    // channels); with many, the final transpose of a large dW costs more than that saves.
    let layout = ColumnLayout::of(g);
    let transposed = g.c_out <= 128;
    let accumulate = |acc: &mut Vec<f32>, run: usize, parallel: bool| {
        let first = run * run_len;
        let len = run_len.min(total - first);
        let mut dy_packed = vec![0.0f32; g.c_out * len];
        let mut cols = take_scratch(rows * len);
        // Pieces of this run, one per image it touches.
        let mut q = first;
        while q < first + len {
            let (image, start) = (q / pixels, q % pixels);
            let piece = (pixels - start).min(first + len - q);
            let at = q - first;
            let dy_image = &dy[image * g.c_out * pixels..(image + 1) * g.c_out * pixels];
            pack_channel_rows(
                &mut dy_packed,
                len,
                at,
                dy_image,
                pixels,
                start..start + piece,
            );
            let x_image = &x[image * g.c_in * g.in_pixels()..(image + 1) * g.c_in * g.in_pixels()];
            fill_columns(
                &mut cols[at..],
                len,
                x_image,
                g,
                &layout,
                0..g.c_in,
                start,
                piece,
            );
            q += piece;
        }
        let parallelism = gemm_parallelism(parallel);
        // dW column-major (`acc` = dWᵀ, [rows, c_out]) or row-major ([c_out, rows]).
        let (acc_cs, acc_rs) = if transposed {
            (g.c_out as isize, 1)
        } else {
            (1, rows as isize)
        };
        // SAFETY: `acc` is [c_out, rows] with the strides above; `dy_packed` [c_out, len]
        // row-major; `cols` [rows, len] row-major read transposed (element (p, r) at r·len + p).
        unsafe {
            gemm::gemm(
                g.c_out,
                rows,
                len,
                acc.as_mut_ptr(),
                acc_cs,
                acc_rs,
                true,
                dy_packed.as_ptr(),
                1,
                len as isize,
                cols.as_ptr(),
                len as isize,
                1,
                1.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
        return_scratch(cols);
    };
    // dWᵀ [rows, c_out] back to the weight's layout [c_out, rows].
    let transpose = |acc: Vec<f32>| {
        if !transposed {
            return acc;
        }
        let mut dw = vec![0.0f32; size];
        for (r, row) in acc.chunks_exact(g.c_out).enumerate() {
            for (o, &v) in row.iter().enumerate() {
                dw[o * rows + r] = v;
            }
        }
        dw
    };
    if runs < threads || threads == 1 {
        let mut acc = vec![0.0f32; size];
        for run in 0..runs {
            accumulate(&mut acc, run, threads > 1);
        }
        return transpose(acc);
    }
    // A fixed partition of the runs and a fixed order of summing the partial sums, so that the
    // result does not depend on how rayon schedules the tasks: training must give bit-identical
    // weights for the same seed.
    let per_task = runs.div_ceil(threads);
    let partials: Vec<Vec<f32>> = (0..runs.div_ceil(per_task))
        .into_par_iter()
        .map(|task| {
            let mut acc = vec![0.0f32; size];
            for run in task * per_task..((task + 1) * per_task).min(runs) {
                accumulate(&mut acc, run, false);
            }
            acc
        })
        .collect();
    let mut partials = partials.into_iter();
    let mut sum = partials.next().unwrap_or_else(|| vec![0.0; size]);
    for partial in partials {
        sum.iter_mut().zip(&partial).for_each(|(a, b)| *a += b);
    }
    transpose(sum)
}

/// Adds column gradients `cols` (rows `row_stride` apart) for output pixels `start..start+len`
/// onto the input planes `dx` (`[channels, H, W]`): the adjoint of [`fill_columns`]. May zero
/// cells of `cols` that read padding.
#[allow(clippy::too_many_arguments)]
fn scatter_columns(
    dx: &mut [f32],
    cols: &mut [f32],
    row_stride: usize,
    g: &ConvGeometry,
    layout: &ColumnLayout,
    channels: usize,
    start: usize,
    len: usize,
) {
    let [in_h, in_w] = g.in_hw;
    let taps = g.kernel[0] * g.kernel[1];
    match layout {
        ColumnLayout::Table(table) => {
            let pixels = g.out_pixels();
            for c in 0..channels {
                let plane = &mut dx[c * in_h * in_w..(c + 1) * in_h * in_w];
                for tap in 0..taps {
                    let row = c * taps + tap;
                    let seg = &cols[row * row_stride..row * row_stride + len];
                    let sources = &table[tap * pixels + start..tap * pixels + start + len];
                    for (&v, &at) in seg.iter().zip(sources) {
                        if at != NO_SOURCE {
                            plane[at as usize] += v;
                        }
                    }
                }
            }
            return;
        }
        ColumnLayout::Shifted => {
            for c in 0..channels {
                let plane = &mut dx[c * in_h * in_w..(c + 1) * in_h * in_w];
                for tap in 0..taps {
                    let row = c * taps + tap;
                    let seg = &mut cols[row * row_stride..row * row_stride + len];
                    let shift = TapShift::of(g, tap);
                    let (lo, hi) = shift.copied_range(in_w, start, len);
                    // Cells of invalid columns inside the run hold gradients of padding: drop
                    // them so that the contiguous add below leaves their neighbours untouched.
                    shift.for_each_outside_column(in_w, lo, hi, |p| seg[p - start] = 0.0);
                    if hi > lo {
                        let target = &mut plane[shift.source(lo)..shift.source(hi)];
                        for (d, v) in target.iter_mut().zip(&seg[lo - start..hi - start]) {
                            *d += v;
                        }
                    }
                }
            }
            return;
        }
        ColumnLayout::Rows => {}
    }
    for_each_segment(g, channels, start, len, |s| {
        if let Some(ih) = s.input_row {
            let seg = &cols[s.row * row_stride..s.row * row_stride + len][s.tile];
            let plane = s.channel * in_h * in_w;
            let dst = &mut dx[plane + ih * in_w..plane + (ih + 1) * in_w];
            add_row(dst, seg, s.ow0, s.offset, g.stride[1]);
        }
    });
}

/// `dst[(ow0 + k)·stride + offset] += seg[k]` where that index falls inside `dst`: the adjoint
/// of [`copy_row`].
fn add_row(dst: &mut [f32], seg: &[f32], ow0: usize, offset: isize, stride: usize) {
    let (lo, hi) = valid_range(seg.len(), dst.len(), ow0, offset, stride);
    if stride == 1 {
        if hi > lo {
            let begin = ((ow0 + lo) as isize + offset) as usize;
            for (d, v) in dst[begin..begin + (hi - lo)].iter_mut().zip(&seg[lo..hi]) {
                *d += v;
            }
        }
    } else {
        for (k, v) in seg.iter().enumerate().take(hi).skip(lo) {
            dst[(((ow0 + k) * stride) as isize + offset) as usize] += v;
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Direct 7-loop convolution: the definition, for checking the fast path.
    pub(in crate::engine::kernels) fn naive(
        x: &[f32],
        w: &[f32],
        b: Option<&[f32]>,
        g: &ConvGeometry,
    ) -> Vec<f32> {
        let [oh, ow] = g.out_hw;
        let [ih, iw] = g.in_hw;
        let mut y = vec![0.0f32; g.batch * g.c_out * oh * ow];
        for n in 0..g.batch {
            for o in 0..g.c_out {
                for r in 0..oh {
                    for s in 0..ow {
                        let mut acc = b.map_or(0.0, |b| b[o]) as f64;
                        for c in 0..g.c_in {
                            for i in 0..g.kernel[0] {
                                for j in 0..g.kernel[1] {
                                    let y_ = (r * g.stride[0] + i * g.dilation[0]) as isize
                                        - g.pad_before[0] as isize;
                                    let x_ = (s * g.stride[1] + j * g.dilation[1]) as isize
                                        - g.pad_before[1] as isize;
                                    if y_ < 0 || x_ < 0 || y_ >= ih as isize || x_ >= iw as isize {
                                        continue;
                                    }
                                    let xv =
                                        x[((n * g.c_in + c) * ih + y_ as usize) * iw + x_ as usize];
                                    let wv =
                                        w[((o * g.c_in + c) * g.kernel[0] + i) * g.kernel[1] + j];
                                    acc += (xv * wv) as f64;
                                }
                            }
                        }
                        y[((n * g.c_out + o) * oh + r) * ow + s] = acc as f32;
                    }
                }
            }
        }
        y
    }

    /// A geometry with the output size the padding `[t, l, b, r]` gives (torch's rule).
    #[allow(clippy::too_many_arguments)]
    pub(in crate::engine::kernels) fn geometry(
        batch: usize,
        c_in: usize,
        in_hw: [usize; 2],
        c_out: usize,
        kernel: [usize; 2],
        stride: [usize; 2],
        dilation: [usize; 2],
        [t, l, b, r]: [usize; 4],
    ) -> ConvGeometry {
        let out = |n: usize, p: usize, a: usize| {
            (n + p - dilation[a] * (kernel[a] - 1) - 1) / stride[a] + 1
        };
        ConvGeometry {
            batch,
            c_in,
            in_hw,
            c_out,
            kernel,
            out_hw: [out(in_hw[0], t + b, 0), out(in_hw[1], l + r, 1)],
            stride,
            dilation,
            pad_before: [t, l],
        }
    }

    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn matches_the_definition_on_odd_geometries() {
        let cases = [
            // batch, c_in, in, c_out, k, out, stride, dilation, pad
            (1, 3, [9, 7], 4, [3, 3], [9, 7], [1, 1], [1, 1], [1, 1]),
            (2, 5, [11, 13], 3, [3, 2], [5, 6], [2, 2], [1, 1], [1, 0]),
            (1, 2, [8, 8], 6, [3, 3], [4, 4], [1, 1], [2, 2], [0, 0]),
            (3, 4, [6, 5], 2, [1, 1], [6, 5], [1, 1], [1, 1], [0, 0]),
            (1, 1, [40, 37], 2, [5, 5], [40, 37], [1, 1], [1, 1], [2, 2]),
            (1, 2, [7, 7], 3, [7, 7], [4, 4], [2, 2], [1, 1], [3, 3]),
        ];
        for (k, &(batch, c_in, in_hw, c_out, kernel, out_hw, stride, dilation, pad)) in
            cases.iter().enumerate()
        {
            let g = ConvGeometry {
                out_hw,
                ..geometry(
                    batch,
                    c_in,
                    in_hw,
                    c_out,
                    kernel,
                    stride,
                    dilation,
                    [pad[0], pad[1], 0, 0],
                )
            };
            let x = values(batch * c_in * in_hw[0] * in_hw[1], k as u64);
            let w = values(g.c_out * g.col_rows(), 100 + k as u64);
            let b = values(c_out, 200 + k as u64);
            for bias in [None, Some(&b[..])] {
                let fast = conv2d_forward(&x, &w, bias, &g);
                let slow = naive(&x, &w, bias, &g);
                let err = crate::tensor::max_abs_diff(&fast, &slow);
                assert!(err < 1e-4, "case {k}: max |Δ| {err}");
            }
        }
    }

    /// The adjoint identity ⟨conv(x), dy⟩ = ⟨x, adjoint(dy)⟩ holds for every x, dy exactly when
    /// `conv2d_input_adjoint` is the transpose of `conv2d_forward`; checked on random x, dy.
    #[test]
    fn adjoint_satisfies_the_inner_product_identity() {
        let cases = [
            (1, 3, [9, 7], 4, [3, 3], [1, 1], [1, 1], [1, 1, 1, 1]),
            (2, 5, [11, 13], 3, [3, 2], [2, 2], [1, 1], [1, 0, 0, 1]),
            (1, 2, [8, 8], 6, [3, 3], [1, 1], [2, 2], [0, 0, 0, 0]),
            (3, 9, [6, 5], 2, [1, 1], [1, 1], [1, 1], [0, 0, 0, 0]),
            (1, 3, [23, 23], 4, [7, 7], [2, 2], [1, 1], [3, 3, 3, 3]),
            (1, 4, [8, 8], 5, [1, 1], [2, 2], [1, 1], [0, 0, 0, 0]),
        ];
        for (k, &(batch, c_in, in_hw, c_out, kernel, stride, dilation, [t, l, b, r])) in
            cases.iter().enumerate()
        {
            let g = geometry(
                batch,
                c_in,
                in_hw,
                c_out,
                kernel,
                stride,
                dilation,
                [t, l, b, r],
            );
            let x = values(batch * c_in * g.in_pixels(), k as u64);
            let w = values(c_out * g.col_rows(), 50 + k as u64);
            let dy = values(batch * c_out * g.out_pixels(), 90 + k as u64);
            let y = naive(&x, &w, None, &g);
            let dx = conv2d_input_adjoint(&dy, &w, &g);
            let dot =
                |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| (p * q) as f64).sum::<f64>();
            let (lhs, rhs) = (dot(&y, &dy), dot(&x, &dx));
            assert!(
                (lhs - rhs).abs() < 1e-4 * lhs.abs().max(1.0),
                "case {k}: {lhs} vs {rhs}"
            );
            // And every input gradient equals the derivative of ⟨conv(x), dy⟩ by that input:
            // a one-hot x reads off one column of the Jacobian.
            for probe in [0, x.len() / 2, x.len() - 1] {
                let mut e = vec![0.0f32; x.len()];
                e[probe] = 1.0;
                let column = dot(&naive(&e, &w, None, &g), &dy);
                assert!(
                    (column - dx[probe] as f64).abs() < 1e-4,
                    "case {k} input {probe}"
                );
            }
        }
    }

    #[test]
    fn tiles_cover_the_image_and_feed_every_thread() {
        for (pixels, batch, threads) in [(50176, 1, 2), (196, 1, 2), (784, 8, 2), (3136, 1, 4)] {
            let (tile, tiles) = tiling(pixels, batch, threads);
            assert!(tile * tiles >= pixels && tile * (tiles - 1) < pixels);
            assert!(tile <= MAX_TILE.max(MIN_TILE));
            if pixels >= 2 * MIN_TILE * threads {
                assert_eq!((tiles * batch) % threads, 0, "{pixels} px");
            }
        }
    }
}
