//! 3×3, stride-1 convolutions by Winograd's minimal filtering F(m×m, 3×3) (Lavin & Gray, "Fast
//! Algorithms for Convolutional Neural Networks", CVPR 2016), for tiles of m = 4 and m = 2.
//!
//! Each m×m block of output pixels is computed from the a×a input patch `d` under it
//! (a = m + 2) as `Y = Aᵀ [ Σ_c U_{o,c} ⊙ (Bᵀ d_c B) ] A` with `U_{o,c} = G g_{o,c} Gᵀ` for the
//! 3×3 filter `g_{o,c}`. F(4×4, 3×3) (interpolation points 0, ±1, ±2, ∞):
//!
//! ```text
//! Bᵀ = [4  0 −5  0 1 0]   G = [ 1/4     0     0 ]   Aᵀ = [1 1  1 1  1 0]
//!      [0 −4 −4  1 1 0]       [−1/6 −1/6  −1/6 ]        [0 1 −1 2 −2 0]
//!      [0  4 −4 −1 1 0]       [−1/6  1/6  −1/6 ]        [0 1  1 4  4 0]
//!      [0 −2 −1  2 1 0]       [1/24 1/12   1/6 ]        [0 1 −1 8 −8 1]
//!      [0  2 −1 −2 1 0]       [1/24 −1/12  1/6 ]
//!      [0  4  0 −5 0 1]       [  0     0     1 ]
//! ```
//!
//! F(2×2, 3×3) (points 0, ±1, ∞):
//!
//! ```text
//! Bᵀ = [1  0 −1  0]   G = [  1    0    0 ]   Aᵀ = [1 1  1  0]
//!      [0  1  1  0]       [ 1/2  1/2  1/2]        [0 1 −1 −1]
//!      [0 −1  1  0]       [ 1/2 −1/2  1/2]
//!      [0  1  0 −1]       [  0    0    1 ]
//! ```
//!
//! The sum over input channels is, for each of the a² positions `ξ` of a transformed tile, one
//! matrix product `M_ξ = U_ξ · V_ξ` of the transformed filters `[C_out, C_in]` with the
//! transformed input tiles `[C_in, tiles]`: a² multiplications per m² outputs instead of 9 m², i.e.
//! 4× (m = 4) or 2.25× (m = 2) fewer than im2col + GEMM. The price is the transforms (linear in
//! the data, not in the channel product), filters a²/9 times the weight's size (which the products
//! must read: for small images m = 2 reads less), and rounding: F(4×4)'s points ±2 scale terms by
//! up to 8, so its results differ from the direct sum by a few 1e-6 relative to the output's
//! magnitude (tests bound it).
//!
//! The input adjoint of a 3×3, stride-1 convolution is itself one — with the filters flipped
//! and input and output channels exchanged, and padding `2 − p` — so it runs through the same
//! code with the filters transformed that way ([`FilterTransform::adjoint`]).

use std::marker::PhantomData;

use rayon::prelude::*;

use super::conv::{
    ConvGeometry, OutPtr, assume_written, gemm_parallelism, return_scratch, take_scratch,
};
use super::direct;
use super::epilogue::Epilogue;
use super::prefetch;
use super::simd::widest;
use super::tile_products;

/// Fewest tiles per block (see [`convolve`]).
const MIN_BLOCK_TILES: usize = 48;
/// Largest ratio of a batch's transformed tiles and products to the transformed filters (in
/// floats) that runs as one block all threads share (see [`convolve`]): each of several
/// blocks streams all the filters, which in a model's pass come from memory. VGG-16's 256 →
/// 256 layers at 56² (ratio 1.6; 4.8–5.4 → 4.7 ms per pass with activations and filters from
/// memory, both threads) and 128 → 256 (2.5; 2.8 → 2.7 ms) gain; 128 → 128 at 112² (13) and
/// 64 → 64 at 56² (6.6) stay in blocks, and so does any layer at batch 8.
const SINGLE_BLOCK_TILES_PER_FILTER: usize = 3;
/// Fewest 4×4 tiles per image for F(4×4): below this its 36 filter matrices (4× the weight) are
/// read for too few columns at batch 1 (VGG-16's 14² layers have 16 tiles).
const MIN_TILES_F4: usize = 32;
/// Fewest 2×2 tiles per image for F(2×2); below this im2col + GEMM is used.
const MIN_TILES_F2: usize = 25;
/// Fewest 2×2 tiles per image for F(2×2) in the passes LRP/CRP rules add ([`choose_for_rules`]):
/// ResNet's 7² layers (16 tiles), where F(2×2) took 0.86–0.94 ms per 512-channel pass against
/// 1.52–1.56 ms exactly.
const MIN_TILES_F2_RULES: usize = 16;

/// Output tile side of the Winograd variant: F(4×4, 3×3) or F(2×2, 3×3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tile {
    /// F(4×4, 3×3): 36 products per 16 outputs.
    Four,
    /// F(2×2, 3×3): 16 products per 4 outputs.
    Two,
}

impl Tile {
    /// Output pixels per tile side.
    pub fn side(self) -> usize {
        match self {
            Tile::Four => 4,
            Tile::Two => 2,
        }
    }

    /// Positions of a transformed tile, `(side + 2)²`.
    fn positions(self) -> usize {
        (self.side() + 2) * (self.side() + 2)
    }
}

/// The Winograd variant for `g`, if one applies and is worth its transforms: a 3×3 kernel with
/// stride and dilation 1, padding at most 2 (so the adjoint's padding `2 − p` exists), at least
/// 16 channels on both sides (below that the transforms cost more than the multiplications they
/// save); F(4×4) with [`MIN_TILES_F4`] tiles per image, else F(2×2) with [`MIN_TILES_F2`]. The
/// choice depends on the image size only, so an image gets the same result in any batch.
pub fn choose(g: &ConvGeometry) -> Option<Tile> {
    choose_with(g, MIN_TILES_F2)
}

/// [`choose`] for the modified-weight passes of LRP/CRP rules ([`super::ConvPass::Relevance`]),
/// which take F(2×2) from [`MIN_TILES_F2_RULES`] tiles. Only there: the model's forward pass on
/// the VGG-11 fixture's 8² layers as F(2×2) moved LRP from 6.8e-5 to 8.4e-5 of zennit's (bound
/// 1e-4), as it decides ReLUs and pooling; a rule pass only perturbs denominators and sums of
/// positive terms.
pub fn choose_for_rules(g: &ConvGeometry) -> Option<Tile> {
    choose_with(g, MIN_TILES_F2_RULES)
}

/// [`choose`] with F(2×2) from `min_tiles_f2` tiles per image.
fn choose_with(g: &ConvGeometry, min_tiles_f2: usize) -> Option<Tile> {
    let eligible = g.kernel == [3, 3]
        && g.stride == [1, 1]
        && g.dilation == [1, 1]
        && g.pad_before[0] <= 2
        && g.pad_before[1] <= 2
        && g.c_in >= 16
        && g.c_out >= 16;
    // Per image, not per batch: an image's result must not depend on the batch it came in.
    let tiles = |m: usize| g.out_hw[0].div_ceil(m) * g.out_hw[1].div_ceil(m);
    if !eligible {
        None
    } else if tiles(4) >= MIN_TILES_F4 {
        Some(Tile::Four)
    } else if tiles(2) >= min_tiles_f2 {
        Some(Tile::Two)
    } else {
        None
    }
}

/// F(2×2, 3×3) for `g` wherever [`choose`] picks any variant and the image has
/// [`MIN_TILES_F2`] 2×2 tiles; `None` otherwise (the caller then sums exactly). Unlike
/// F(4×4)'s points ±2, F(2×2)'s input and output transforms have entries 0 and ±1 alone: on a
/// tile whose input rows (or columns) are all equal, every transform step adds or subtracts
/// equal values or exact zeros, so the tile's outputs come out exactly equal along that axis,
/// as they do under exact summation — a model's forward pass keeps its ties (max-pooling in
/// flat regions picks the same element) at 4 instead of 9 multiplications per output.
pub fn choose_tie_preserving(g: &ConvGeometry) -> Option<Tile> {
    choose(g)?;
    let tiles = g.out_hw[0].div_ceil(2) * g.out_hw[1].div_ceil(2);
    (tiles >= MIN_TILES_F2).then_some(Tile::Two)
}

/// The Winograd variant for the input adjoint of `g` (see [`choose`]), sized by the adjoint's
/// output (the input gradient).
pub fn choose_adjoint(g: &ConvGeometry) -> Option<Tile> {
    choose(g)?;
    choose(&adjoint_geometry(g))
}

/// [`choose_adjoint`] for the passes of LRP/CRP rules (see [`choose_for_rules`]).
pub fn choose_adjoint_for_rules(g: &ConvGeometry) -> Option<Tile> {
    choose_for_rules(g)?;
    choose_for_rules(&adjoint_geometry(g))
}

/// Geometry of the input adjoint of the 3×3, stride-1 convolution `g`, as a forward
/// convolution of the output gradient: `dx[q] = Σ_i dy[q + i − (2 − p)] · W[2 − i]` per axis
/// (the general stride-1 case is [`super::direct::adjoint_geometry`]).
pub fn adjoint_geometry(g: &ConvGeometry) -> ConvGeometry {
    super::direct::adjoint_geometry(g)
}

/// One member of the F(m×m, 3×3) family (`A = M + 2`): its one-dimensional transforms, applied
/// element by element over slices so that the loops vectorise.
trait Minimal<const M: usize, const A: usize> {
    /// `G · (g0, g1, g2)ᵀ`, in double precision: the filters are transformed once per weight,
    /// so each `U` value can be the float nearest to `G g Gᵀ` (see [`transform_filter_row`]).
    fn filter(g: [f64; 3]) -> [f64; A];
    /// `Bᵀ · (d_0 … d_{A−1})ᵀ`.
    fn input(d: [&[f32]; A], out: [&mut [f32]; A]);
    /// `Aᵀ · (m_0 … m_{A−1})ᵀ`.
    fn output(m: [&[f32]; A], out: [&mut [f32]; M]);
}

/// F(4×4, 3×3).
struct F4;

impl Minimal<4, 6> for F4 {
    #[inline(always)]
    fn filter([g0, g1, g2]: [f64; 3]) -> [f64; 6] {
        let s = g0 + g2;
        [
            0.25 * g0,
            -(s + g1) / 6.0,
            -(s - g1) / 6.0,
            (g0 / 24.0 + g2 / 6.0) + g1 / 12.0,
            (g0 / 24.0 + g2 / 6.0) - g1 / 12.0,
            g2,
        ]
    }

    #[inline(always)]
    fn input(d: [&[f32]; 6], out: [&mut [f32]; 6]) {
        let [o0, o1, o2, o3, o4, o5] = out;
        let n = o0.len();
        let [d0, d1, d2, d3, d4, d5] = d.map(|s| &s[..n]);
        for i in 0..n {
            let (a0, a1, a2, a3, a4, a5) = (d0[i], d1[i], d2[i], d3[i], d4[i], d5[i]);
            let p = a4 - 4.0 * a2;
            let q = a3 - 4.0 * a1;
            let r = a4 - a2;
            let s = 2.0 * (a3 - a1);
            o0[i] = 4.0 * a0 - 5.0 * a2 + a4;
            o1[i] = p + q;
            o2[i] = p - q;
            o3[i] = r + s;
            o4[i] = r - s;
            o5[i] = 4.0 * a1 - 5.0 * a3 + a5;
        }
    }

    #[inline(always)]
    fn output(m: [&[f32]; 6], out: [&mut [f32]; 4]) {
        let [o0, o1, o2, o3] = out;
        let n = o0.len();
        let [m0, m1, m2, m3, m4, m5] = m.map(|s| &s[..n]);
        for i in 0..n {
            let (a1, a2, a3, a4) = (m1[i], m2[i], m3[i], m4[i]);
            let (sp, sm) = (a1 + a2, a1 - a2);
            let (tp, tm) = (a3 + a4, a3 - a4);
            o0[i] = m0[i] + sp + tp;
            o1[i] = sm + 2.0 * tm;
            o2[i] = sp + 4.0 * tp;
            o3[i] = sm + 8.0 * tm + m5[i];
        }
    }
}

/// F(2×2, 3×3).
struct F2;

impl Minimal<2, 4> for F2 {
    #[inline(always)]
    fn filter([g0, g1, g2]: [f64; 3]) -> [f64; 4] {
        let s = g0 + g2;
        [g0, 0.5 * (s + g1), 0.5 * (s - g1), g2]
    }

    #[inline(always)]
    fn input(d: [&[f32]; 4], out: [&mut [f32]; 4]) {
        let [o0, o1, o2, o3] = out;
        let n = o0.len();
        let [d0, d1, d2, d3] = d.map(|s| &s[..n]);
        for i in 0..n {
            o0[i] = d0[i] - d2[i];
            o1[i] = d1[i] + d2[i];
            o2[i] = d2[i] - d1[i];
            o3[i] = d1[i] - d3[i];
        }
    }

    #[inline(always)]
    fn output(m: [&[f32]; 4], out: [&mut [f32]; 2]) {
        let [o0, o1] = out;
        let n = o0.len();
        let [m0, m1, m2, m3] = m.map(|s| &s[..n]);
        for i in 0..n {
            o0[i] = m0[i] + m1[i] + m2[i];
            o1[i] = m1[i] - m2[i] - m3[i];
        }
    }
}

/// How [`FilterTransform`] lays out `U_ξ`, which decides how the products `M_ξ = U_ξ V_ξ` run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// Per position `ξ`, per strip of 32 output rows, `[cols][32]`: the products hold 32
    /// output channels × the tiles of one tile row in registers ([`tile_products`]), so they
    /// multiply-add exactly the tiles there are — where the rows fill whole strips.
    Strips,
    /// Per position `ξ`, per panel of output rows ([`direct::panel_count`]), `[cols][panel
    /// rows]`: the direct kernel's micro-kernel, 32 tiles per block (blocks of a 7-tile row
    /// carry 23 % empty lanes, of a 14-, 28- or 56-tile row with its spare tile 12.5 %), but
    /// no empty rows whatever the channel count.
    Panels,
    /// `[rows][a²][cols]` for `gemm` (no AVX-512).
    Gemm,
}

/// Transformed filters `U_ξ = (G g Gᵀ)_ξ` of one convolution. Rows are the convolution's output
/// channels, columns its input channels. Where the products run on AVX-512 the filters are
/// packed so that the products read them in order and no GEMM repacks them per block (see
/// [`Layout`]); elsewhere they are laid out `[rows][a²][cols]` for `gemm`: `U_ξ` a `[rows,
/// cols]` matrix with row stride `a² · cols`.
pub struct FilterTransform {
    u: Vec<f32>,
    layout: Layout,
    rows: usize,
    cols: usize,
    tile: Tile,
}

impl FilterTransform {
    /// Filters of the forward convolution with `weight: [C_out, C_in, 3, 3]`.
    pub fn forward(weight: &[f32], c_out: usize, c_in: usize, tile: Tile) -> Self {
        Self::build(weight, c_out, c_in, false, tile, tile_products::available())
    }

    /// Filters of its input adjoint: rows are `C_in`, columns `C_out`, and filter `(c, o)` is
    /// `W[o, c]` rotated by 180°.
    pub fn adjoint(weight: &[f32], c_out: usize, c_in: usize, tile: Tile) -> Self {
        Self::build(weight, c_out, c_in, true, tile, tile_products::available())
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.u.len() * std::mem::size_of::<f32>()
    }

    /// The variant these filters are for.
    pub fn tile(&self) -> Tile {
        self.tile
    }

    /// The filters packed for the AVX-512 products if `packed` (see [`Layout`]), else in
    /// `gemm`'s layout.
    fn build(
        weight: &[f32],
        c_out: usize,
        c_in: usize,
        adjoint: bool,
        tile: Tile,
        packed: bool,
    ) -> Self {
        let rows = if adjoint { c_in } else { c_out };
        let layout = match packed {
            false => Layout::Gemm,
            // Strips where the output channels fill them (VGG's and ResNet's 64–512), panels
            // where a partial strip would carry more empty lanes than the tiles' blocks do.
            true if rows % tile_products::STRIP == 0 => Layout::Strips,
            true => Layout::Panels,
        };
        Self::build_in(weight, c_out, c_in, adjoint, tile, layout)
    }

    /// The filters in `layout`.
    fn build_in(
        weight: &[f32],
        c_out: usize,
        c_in: usize,
        adjoint: bool,
        tile: Tile,
        layout: Layout,
    ) -> Self {
        assert_eq!(weight.len(), c_out * c_in * 9, "weight size");
        let (rows, cols) = if adjoint {
            (c_in, c_out)
        } else {
            (c_out, c_in)
        };
        let xi = tile.positions();
        let mut u = vec![0.0f32; rows * xi * cols];
        u.par_chunks_mut(xi * cols)
            .enumerate()
            .for_each(|(row, dst)| {
                let taps = Taps {
                    weight,
                    c_in,
                    row,
                    adjoint,
                };
                match tile {
                    Tile::Four => widest(|| transform_filter_row::<4, 6, F4>(dst, cols, &taps)),
                    Tile::Two => widest(|| transform_filter_row::<2, 4, F2>(dst, cols, &taps)),
                }
            });
        match layout {
            Layout::Strips => u = tile_products::pack(&u, rows, cols, xi),
            Layout::Panels => u = pack_for_micro_kernel(&u, rows, cols, xi),
            Layout::Gemm => {}
        }
        FilterTransform {
            u,
            layout,
            rows,
            cols,
            tile,
        }
    }

    /// Panel `p` of `U_ξ` in the micro-kernel's layout: `[cols][panel rows]` and its row range.
    fn panel(&self, xi: usize, p: usize) -> (&[f32], usize, usize) {
        let panels = direct::panel_count(self.rows);
        let o0 = direct::panel_start(p, panels, self.rows);
        let o1 = direct::panel_start(p + 1, panels, self.rows);
        let start = (xi * self.rows + o0) * self.cols;
        (&self.u[start..start + (o1 - o0) * self.cols], o0, o1)
    }
}

/// `[rows][a²][cols]` → per `ξ`, per panel, `[cols][panel rows]` (see [`FilterTransform`]).
fn pack_for_micro_kernel(u: &[f32], rows: usize, cols: usize, xi: usize) -> Vec<f32> {
    let mut packed = vec![0.0f32; u.len()];
    let panels = direct::panel_count(rows);
    packed
        .par_chunks_mut(rows * cols)
        .enumerate()
        .for_each(|(position, dst)| {
            for p in 0..panels {
                let o0 = direct::panel_start(p, panels, rows);
                let o1 = direct::panel_start(p + 1, panels, rows);
                let panel = &mut dst[o0 * cols..o1 * cols];
                for (c, column) in panel.chunks_exact_mut(o1 - o0).enumerate() {
                    for (r, d) in column.iter_mut().enumerate() {
                        *d = u[((o0 + r) * xi + position) * cols + c];
                    }
                }
            }
        });
    packed
}

/// The 3×3 filters of one row of a [`FilterTransform`].
struct Taps<'a> {
    weight: &'a [f32],
    c_in: usize,
    row: usize,
    adjoint: bool,
}

impl Taps<'_> {
    /// Tap `t` (row-major 3×3) of filter `(row, col)`: forward `W[row, col, t]`, adjoint
    /// `W[col, row, 8 − t]`.
    #[inline(always)]
    fn get(&self, col: usize, t: usize) -> f32 {
        if self.adjoint {
            self.weight[(col * self.c_in + self.row) * 9 + 8 - t]
        } else {
            self.weight[(self.row * self.c_in + col) * 9 + t]
        }
    }
}

/// `G g Gᵀ` for the filters of one output row, vectorised over the `cols` filters; computed in
/// double precision and rounded once, so each value is the float nearest to the exact one
/// (up to 1e-16 relative). In single precision the filter transform's own rounding was what
/// moved a model's outputs most: with F(2×2) for a VGG-11's forward pass, its LRP maps came
/// 1.33e-4 of their largest value from zennit's with the transform summed in `f32`, 6.8e-5
/// with it in `f64` (exact summation: 4.1e-5).
#[inline(always)]
fn transform_filter_row<const M: usize, const A: usize, V: Minimal<M, A>>(
    dst: &mut [f32],
    cols: usize,
    taps: &Taps,
) {
    const CHUNK: usize = 64;
    let mut g = [[0.0f64; CHUNK]; 9];
    // t = G g, A × 3, row-major.
    let mut t = [[[0.0f64; CHUNK]; 3]; A];
    for c0 in (0..cols).step_by(CHUNK) {
        let n = CHUNK.min(cols - c0);
        for (k, row) in g.iter_mut().enumerate() {
            for (i, v) in row[..n].iter_mut().enumerate() {
                *v = f64::from(taps.get(c0 + i, k));
            }
        }
        for j in 0..3 {
            for i in 0..n {
                let column = V::filter([g[j][i], g[3 + j][i], g[6 + j][i]]);
                for (r, v) in column.into_iter().enumerate() {
                    t[r][j][i] = v;
                }
            }
        }
        // u = t Gᵀ: row k of t gives row k of u.
        for (k, tk) in t.iter().enumerate() {
            for i in 0..n {
                let out = V::filter([tk[0][i], tk[1][i], tk[2][i]]);
                for (l, v) in out.into_iter().enumerate() {
                    dst[(A * k + l) * cols + c0 + i] = v as f32;
                }
            }
        }
    }
}

/// `y = conv(x, W) + b` for a 3×3, stride-1 geometry `g` (see [`choose`]) with `filters` the
/// [`FilterTransform`] of `W` for it (forward, or adjoint for the adjoint's geometry), each
/// output row passed through `epilogue` as it is written.
///
/// # Panics
/// If a slice length or the filters disagree with the geometry, or the epilogue's operand
/// does not have the output's length.
pub fn convolve(
    x: &[f32],
    filters: &FilterTransform,
    bias: Option<&[f32]>,
    g: &ConvGeometry,
    epilogue: Epilogue,
) -> Vec<f32> {
    match filters.tile {
        Tile::Four => convolve_with::<4, 6, F4>(x, filters, bias, g, epilogue),
        Tile::Two => convolve_with::<2, 4, F2>(x, filters, bias, g, epilogue),
    }
}

fn convolve_with<const M: usize, const A: usize, V: Minimal<M, A>>(
    x: &[f32],
    filters: &FilterTransform,
    bias: Option<&[f32]>,
    g: &ConvGeometry,
    epilogue: Epilogue,
) -> Vec<f32> {
    assert!(g.kernel == [3, 3] && g.stride == [1, 1] && g.dilation == [1, 1]);
    assert_eq!((filters.rows, filters.cols), (g.c_out, g.c_in), "filters");
    g.check_operands(x, bias);
    let [oh, ow] = g.out_hw;
    let total = g.batch * g.c_out * oh * ow;
    assert!(epilogue.fits(total), "epilogue operand size");
    if total == 0 {
        return Vec::new();
    }
    // Every output element is written exactly once below (the blocks cover every tile row of
    // every image, each output row in full), so the buffer is not zeroed first.
    let mut out = Vec::<f32>::with_capacity(total);
    let tile_rows = oh.div_ceil(M);
    let tiles_across = ow.div_ceil(M);
    let all_rows = g.batch * tile_rows;
    let threads = rayon::current_num_threads().max(1);
    // Tiles per block: at least 48 (whole tile rows), fewer GEMM columns pack the filters more
    // often than they use them; more spill the block's transformed tiles out of L2. Measured on
    // VGG-16's layers, 48–96 tiles are best.
    let mut rows_per_block = MIN_BLOCK_TILES.div_ceil(tiles_across).clamp(1, all_rows);
    // Transformed tiles and products of the whole batch, and the transformed filters (floats).
    let all_tiles = (g.c_in + g.c_out) * A * A * all_rows * (tiles_across + 1);
    let filters_len = g.c_in * g.c_out * A * A;
    if all_rows.div_ceil(rows_per_block) < threads
        || all_tiles <= SINGLE_BLOCK_TILES_PER_FILTER * filters_len
    {
        // Too few tiles for a block per thread (VGG-16's 28² and 14² layers at batch 1), or
        // too few for the filters every block streams (its 56² layers): one block that all
        // threads work on, phase by phase. Blocks per thread would each stream all transformed
        // filters (38 MB for 512 → 512 channels) for their few tiles.
        rows_per_block = all_rows;
    }
    let blocks = all_rows.div_ceil(rows_per_block);
    let out_ptr = OutPtr(out.as_mut_ptr());
    let block = |b: usize, parallel: bool| {
        let first = b * rows_per_block;
        let plan = Block::<M, A, V> {
            g,
            first_row: first,
            rows: rows_per_block.min(all_rows - first),
            tile_rows,
            tiles_across,
            epilogue,
            variant: PhantomData,
        };
        plan.run(x, filters, bias, out_ptr, parallel);
    };
    if blocks >= threads && threads > 1 {
        (0..blocks).into_par_iter().for_each(|b| block(b, false));
    } else {
        (0..blocks).for_each(|b| block(b, threads > 1));
    }
    // SAFETY: all `N · C_out · oH · oW` elements were written by the blocks (see above).
    unsafe { out.set_len(total) };
    out
}

/// A run of consecutive tile rows (over the batch: row `r` is image `r / tile_rows`, tile row
/// `r % tile_rows`).
struct Block<'a, const M: usize, const A: usize, V> {
    g: &'a ConvGeometry,
    first_row: usize,
    rows: usize,
    tile_rows: usize,
    tiles_across: usize,
    epilogue: Epilogue<'a>,
    variant: PhantomData<fn() -> V>,
}

impl<const M: usize, const A: usize, V: Minimal<M, A>> Block<'_, M, A, V> {
    /// Transforms the block's input tiles, multiplies, and transforms the products into the
    /// output rows — with `parallel`, each of the three phases split over all threads (input
    /// channels, positions `ξ`, output channels). Tiles are numbered `local · span + t` with
    /// `span = tiles_across + 1`: one unused tile per row, so every transform step runs over
    /// the whole block as one contiguous vector (a row of 7 or 14 tiles alone would be shorter
    /// than one AVX-512 register).
    #[inline(always)]
    fn run(
        &self,
        x: &[f32],
        filters: &FilterTransform,
        bias: Option<&[f32]>,
        out: OutPtr,
        parallel: bool,
    ) {
        let g = self.g;
        let xi = A * A;
        let n = self.rows * self.span();
        let v_len = g.c_in * xi * n;
        let m_len = g.c_out * xi * n;
        let work_len = 2 * A * M * (n + 1);
        let mut scratch = take_scratch(v_len + m_len);
        let (v, m) = scratch.split_at_mut(v_len);
        let plane = g.in_hw[0] * g.in_hw[1];
        let v_ptr = OutPtr(v.as_mut_ptr());
        // Channel ranges per task, each with its own work buffer.
        // Each phase's task body enters `widest` itself: a rayon task is its own function,
        // compiled for the baseline unless it does (see `simd`).
        let in_phase = |channels: std::ops::Range<usize>| {
            widest(
                #[inline(always)]
                || {
                    let mut work = take_scratch(work_len);
                    for c in channels.clone() {
                        let channel = |image: usize| &x[(image * g.c_in + c) * plane..][..plane];
                        if c + 1 < channels.end {
                            let next = c + 1;
                            self.prefetch_input_rows(|image| {
                                &x[(image * g.c_in + next) * plane..][..plane]
                            });
                        }
                        // SAFETY: channel `c` writes `v[c·n + ξ·C_in·n ..][..n]` for ξ < a²,
                        // inside `v` (its length is C_in·a²·n) and disjoint from every other
                        // channel's pieces.
                        unsafe {
                            self.transform_input(channel, v_ptr, c * n, g.c_in * n, &mut work)
                        };
                    }
                    return_scratch(work);
                },
            )
        };
        split_over_threads(g.c_in, parallel, in_phase);
        match filters.layout {
            Layout::Strips => {
                let tiles = tile_products::TileRows {
                    tile_rows: self.rows,
                    across: self.tiles_across,
                    span: self.span(),
                };
                let (u, rows, cols) = (&filters.u, filters.rows, filters.cols);
                tile_products::multiply(u, rows, cols, xi, v, m, tiles, parallel);
            }
            Layout::Panels => multiply_packed(filters, v, m, n, parallel),
            Layout::Gemm => self.multiply_gemm(filters, v, m, parallel),
        }
        let m = &*m;
        let out_phase = |channels: std::ops::Range<usize>| {
            widest(
                #[inline(always)]
                || {
                    let mut work = take_scratch(work_len);
                    for o in channels.clone() {
                        if o + 1 < channels.end {
                            self.prefetch_output_rows(o + 1, out);
                        }
                        let b = bias.map_or(0.0, |b| b[o]);
                        self.transform_output(&m[o * n..], g.c_out * n, o, b, out, &mut work);
                    }
                    return_scratch(work);
                },
            )
        };
        split_over_threads(g.c_out, parallel, out_phase);
        return_scratch(scratch);
    }

    /// `M_ξ = U_ξ V_ξ` for every `ξ` by `gemm` (filters in the `[rows][a²][cols]` layout).
    fn multiply_gemm(
        &self,
        filters: &FilterTransform,
        v: &[f32],
        m: &mut [f32],
        parallel_gemm: bool,
    ) {
        let g = self.g;
        let xi = A * A;
        let n = self.rows * self.span();
        let parallelism = gemm_parallelism(parallel_gemm);
        for p in 0..xi {
            // SAFETY: M_ξ is [C_out, n] at `p · C_out · n` inside `m`; U_ξ is [C_out, C_in]
            // with row stride a²·C_in; V_ξ is [C_in, n] at `p · C_in · n` inside `v`.
            unsafe {
                gemm::gemm(
                    g.c_out,
                    n,
                    g.c_in,
                    m.as_mut_ptr().add(p * g.c_out * n),
                    1,
                    n as isize,
                    false,
                    filters.u.as_ptr().add(p * g.c_in),
                    1,
                    (xi * g.c_in) as isize,
                    v.as_ptr().add(p * g.c_in * n),
                    1,
                    n as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    parallelism,
                );
            }
        }
    }

    /// Prefetches the input rows under the block's tiles in one channel (`channel(image)` is
    /// its `[H, W]` plane), as [`Block::transform_input`] will read them.
    #[inline(always)]
    fn prefetch_input_rows<'x>(&self, channel: impl Fn(usize) -> &'x [f32]) {
        let [ih, iw] = self.g.in_hw;
        for local in 0..self.rows {
            let (image, ty) = self.position(local);
            for r in 0..A {
                let y = (ty * M + r) as isize - self.g.pad_before[0] as isize;
                if (0..ih as isize).contains(&y) {
                    prefetch::read(&channel(image)[y as usize * iw..][..iw]);
                }
            }
        }
    }

    /// Prefetches, for writing, the output rows of the block's tiles in channel `o`, and the
    /// epilogue's operand there, as [`Block::transform_output`] will write and read them.
    #[inline(always)]
    fn prefetch_output_rows(&self, o: usize, out: OutPtr) {
        let g = self.g;
        let [oh, ow] = g.out_hw;
        for local in 0..self.rows {
            let (image, ty) = self.position(local);
            let y0 = ty * M;
            for i in 0..M.min(oh - y0) {
                let first = ((image * g.c_out + o) * oh + y0 + i) * ow;
                prefetch::write(out.get().wrapping_add(first), ow);
                self.epilogue.prefetch_operand(first, ow);
            }
        }
    }

    /// Tiles per row plus the unused one.
    fn span(&self) -> usize {
        self.tiles_across + 1
    }

    fn position(&self, local: usize) -> (usize, usize) {
        let r = self.first_row + local;
        (r / self.tile_rows, r % self.tile_rows)
    }

    /// `V = Bᵀ d B` for every tile of the block in one input channel (`channel(image)` is its
    /// `[H, W]` plane), written to `dst[first + ξ · stride + tile]`.
    ///
    /// # Safety
    /// `dst[first + ξ · stride ..][..n]` (ξ < a², `n` the block's tile count) lie inside one
    /// buffer that nothing else reads or writes during the call.
    #[inline(always)]
    unsafe fn transform_input<'x>(
        &self,
        channel: impl Fn(usize) -> &'x [f32],
        dst: OutPtr,
        first: usize,
        stride: usize,
        work: &mut [f32],
    ) {
        let g = self.g;
        let [ih, iw] = g.in_hw;
        let span = self.span();
        let n = self.rows * span;
        // Patch row r of every tile, split by column phase: phase q holds column M·t + q of
        // tile t at `q · (n + 1) + tile`, so the A columns of a tile are phases 0..M at the tile
        // and phases 0..A−M at the next one — every later step reads contiguous runs.
        let len = M * (n + 1);
        let (rows, vert) = work.split_at_mut(A * len);
        for r in 0..A {
            let row = &mut rows[r * len..(r + 1) * len];
            for local in 0..self.rows {
                let (image, ty) = self.position(local);
                let y = (ty * M + r) as isize - g.pad_before[0] as isize;
                let phases = split::<M>(row, n + 1).map(|p| &mut p[local * span..][..span]);
                if y < 0 || y >= ih as isize {
                    phases.into_iter().for_each(|p| p.fill(0.0));
                } else {
                    let line = &channel(image)[y as usize * iw..][..iw];
                    split_phases(line, g.pad_before[1], phases);
                }
            }
            // The element past each phase, read only by the last (unused) tile.
            (0..M).for_each(|q| row[q * (n + 1) + n] = 0.0);
        }
        // Vertical pass: A transformed patch rows, each in the same phase layout.
        let vert = &mut vert[..A * len];
        {
            let d: [&[f32]; A] = std::array::from_fn(|r| &rows[r * len..(r + 1) * len]);
            V::input(d, split(vert, len));
        }
        // Horizontal pass: row k of the vertical result gives positions A·k..A·k+A.
        for k in 0..A {
            let base = k * len;
            let d: [&[f32]; A] =
                std::array::from_fn(|j| &vert[base + (j % M) * (n + 1) + j / M..][..n]);
            // SAFETY: as the caller vouches; ξ = A·k + l.
            let out = unsafe { raw_pieces(dst.get(), first + A * k * stride, stride, n) };
            V::input(d, out);
        }
    }

    /// `Y = Aᵀ M A + b` for every tile of the block in output channel `o`, from
    /// `src[ξ · n + tile]`, into the output.
    #[inline(always)]
    fn transform_output(
        &self,
        src: &[f32],
        stride: usize,
        o: usize,
        bias: f32,
        out: OutPtr,
        work: &mut [f32],
    ) {
        let g = self.g;
        let [oh, ow] = g.out_hw;
        let span = self.span();
        let n = self.rows * span;
        let (horiz, rest) = work.split_at_mut(A * M * n);
        // Horizontal pass: row k of each tile (positions A·k..A·k+A) to M column phases.
        for k in 0..A {
            let m: [&[f32]; A] = std::array::from_fn(|l| &src[(A * k + l) * stride..][..n]);
            V::output(m, split(&mut horiz[k * M * n..(k + 1) * M * n], n));
        }
        // Vertical pass: output row i of each tile, all M column phases at once.
        let vert = &mut rest[..M * M * n];
        {
            let m: [&[f32]; A] = std::array::from_fn(|k| &horiz[k * M * n..(k + 1) * M * n]);
            V::output(m, split(vert, M * n));
        }
        for local in 0..self.rows {
            let (image, ty) = self.position(local);
            let y0 = ty * M;
            for i in 0..M.min(oh - y0) {
                let first = ((image * g.c_out + o) * oh + y0 + i) * ow;
                // SAFETY: output rows of this block's tile rows belong to this block (and this
                // channel's task) alone, inside the output's capacity; viewed as possibly
                // uninitialised floats, which are only written.
                let line = unsafe {
                    std::slice::from_raw_parts_mut(
                        out.get().add(first) as *mut std::mem::MaybeUninit<f32>,
                        ow,
                    )
                };
                let phases = split::<M>(&mut vert[i * M * n..(i + 1) * M * n], n)
                    .map(|p| &p[local * span..][..span]);
                interleave_phases(line, phases, bias);
                // SAFETY: `interleave_phases` wrote every element of the line.
                let line = unsafe { assume_written(line) };
                self.epilogue.apply(first, line);
            }
        }
    }
}

/// `M_ξ = U_ξ V_ξ` for every `ξ` with the direct kernel's micro-kernel on the packed filters:
/// `m[ξ][o][t] = Σ_c U_ξ[o, c] · v[ξ][c][t]` for the block's `n` tiles (in parallel over `ξ`
/// when the block is the only task).
fn multiply_packed(filters: &FilterTransform, v: &[f32], m: &mut [f32], n: usize, parallel: bool) {
    let (rows, cols) = (filters.rows, filters.cols);
    let xi = filters.tile.positions();
    assert!(v.len() >= cols * xi * n && m.len() >= rows * xi * n);
    let offsets: Vec<usize> = (0..cols).map(|c| c * n).collect();
    let panels = direct::panel_count(rows);
    let m_ptr = OutPtr(m.as_mut_ptr());
    let position = |position: usize| {
        // Panels outer: each panel of `U_ξ` (from memory in a model's passes) is read once for
        // all column chunks while it is in L1, not once per chunk (LRP on VGG-16 −5 %).
        for p in 0..panels {
            let (panel, o0, o1) = filters.panel(position, p);
            for t in (0..n).step_by(direct::CHUNK) {
                let valid = direct::CHUNK.min(n - t);
                // SAFETY: reads `v[(ξ·cols + c)·n + t + l]` (c < cols, l < valid ≤ n − t) and
                // writes `m[(ξ·rows + o)·n + t + l]` (o0 ≤ o < o1), inside both buffers
                // (asserted above); positions `ξ` write disjoint parts, so tasks never overlap.
                unsafe {
                    direct::micro_kernel(
                        o1 - o0,
                        cols,
                        panel.as_ptr(),
                        v.as_ptr().add((position * cols) * n + t),
                        &offsets,
                        m_ptr.get().add((position * rows + o0) * n + t),
                        n,
                        false,
                        valid,
                    );
                }
            }
        }
    };
    if parallel {
        (0..xi).into_par_iter().for_each(position);
    } else {
        (0..xi).for_each(position);
    }
}

/// `line[M·t + j] = phases[j][t] + bias`: one output row from its column phases (every element
/// of `line` is written).
#[inline(always)]
fn interleave_phases<const M: usize>(
    line: &mut [std::mem::MaybeUninit<f32>],
    phases: [&[f32]; M],
    bias: f32,
) {
    let full = line.len() / M;
    let (body, tail) = line.split_at_mut(full * M);
    // Indexed (not chunked) so the compiler sees M interleaved store streams and emits vector
    // shuffles instead of scalar stores.
    let p = phases.map(|p| &p[..full]);
    for t in 0..full {
        for j in 0..M {
            body[M * t + j].write(p[j][t] + bias);
        }
    }
    for (j, v) in tail.iter_mut().enumerate() {
        v.write(phases[j][full] + bias);
    }
}

/// Splits one input row by column phase: `phases[q][t] = line[M·t + q − pad]`, zero where that
/// column lies outside the line.
#[inline(always)]
fn split_phases<const M: usize>(line: &[f32], pad: usize, mut phases: [&mut [f32]; M]) {
    let iw = line.len();
    let span = phases[0].len();
    let at = |col: usize| {
        col.checked_sub(pad)
            .and_then(|c| line.get(c).copied())
            .unwrap_or(0.0)
    };
    // Tiles t_lo..t_hi read M columns inside the line.
    let t_lo = pad.div_ceil(M).min(span);
    let t_hi = ((iw + pad) / M).clamp(t_lo, span);
    for t in (0..t_lo).chain(t_hi..span) {
        for (q, p) in phases.iter_mut().enumerate() {
            p[t] = at(M * t + q);
        }
    }
    if t_hi > t_lo {
        let groups = line[M * t_lo - pad..].chunks_exact(M).take(t_hi - t_lo);
        for (k, group) in groups.enumerate() {
            for (q, p) in phases.iter_mut().enumerate() {
                p[t_lo + k] = group[q];
            }
        }
    }
}

/// `jobs` items split into one contiguous range per thread, run in parallel if `parallel`
/// (else one range on this thread).
fn split_over_threads(jobs: usize, parallel: bool, run: impl Fn(std::ops::Range<usize>) + Sync) {
    if !parallel {
        return run(0..jobs);
    }
    let tasks = rayon::current_num_threads().clamp(1, jobs.max(1));
    (0..tasks)
        .into_par_iter()
        .for_each(|t| run(t * jobs / tasks..(t + 1) * jobs / tasks));
}

/// `K` pieces `len` long at `base + first + i · stride`.
///
/// # Safety
/// The pieces lie inside one allocation and nothing else accesses them while they live.
#[inline(always)]
unsafe fn raw_pieces<'a, const K: usize>(
    base: *mut f32,
    first: usize,
    stride: usize,
    len: usize,
) -> [&'a mut [f32]; K] {
    // SAFETY: as the caller vouches.
    std::array::from_fn(|i| unsafe {
        std::slice::from_raw_parts_mut(base.add(first + i * stride), len)
    })
}

/// The first `K` consecutive `len`-long pieces of `s`.
#[inline(always)]
fn split<const K: usize>(s: &mut [f32], len: usize) -> [&mut [f32]; K] {
    let mut rest = &mut s[..K * len];
    std::array::from_fn(|_| {
        let (piece, tail) = std::mem::take(&mut rest).split_at_mut(len);
        rest = tail;
        piece
    })
}

#[cfg(test)]
mod tests {
    use super::super::conv::{conv2d_forward, conv2d_input_adjoint};
    use super::*;
    use crate::rng::Rng;

    /// Largest difference relative to the largest reference magnitude.
    fn rel_err(a: &[f32], b: &[f32]) -> f32 {
        let scale = b.iter().fold(0.0f32, |m, v| m.max(v.abs())).max(1e-30);
        a.iter()
            .zip(b)
            .fold(0.0f32, |m, (x, y)| m.max((x - y).abs()))
            / scale
    }

    fn random_geometry(rng: &mut Rng) -> ConvGeometry {
        let pad = [rng.below(3), rng.below(3)];
        let in_hw = [1 + rng.below(23), 1 + rng.below(23)];
        // Output sizes from "valid" up to two rows/columns past "same" (the adjoint's reach).
        let out = |a: usize| (in_hw[a] + 2 * pad[a]).saturating_sub(2).max(1);
        ConvGeometry {
            batch: 1 + rng.below(3),
            c_in: 16 + rng.below(20),
            in_hw,
            c_out: 16 + rng.below(20),
            kernel: [3, 3],
            out_hw: [out(0), out(1)],
            stride: [1, 1],
            dilation: [1, 1],
            pad_before: pad,
        }
    }

    /// Forward and adjoint against the direct (im2col) kernels on random sizes, paddings and
    /// batches: tile rows and columns cut by the image edge, several images per block.
    #[test]
    fn matches_the_direct_convolution() {
        let mut rng = Rng::new(5);
        // Both filter layouts where the CPU runs the micro-kernel, else `gemm`'s alone.
        let layouts: &[bool] = if tile_products::available() {
            &[true, false]
        } else {
            &[false]
        };
        for (case, &packed) in (0..120).zip(layouts.iter().cycle()) {
            let g = random_geometry(&mut rng);
            let tile = [Tile::Four, Tile::Two][case % 2];
            let x: Vec<f32> = (0..g.batch * g.c_in * g.in_hw[0] * g.in_hw[1])
                .map(|_| rng.normal())
                .collect();
            let w: Vec<f32> = (0..g.c_out * g.c_in * 9).map(|_| rng.normal()).collect();
            let b: Vec<f32> = (0..g.c_out).map(|_| rng.normal()).collect();
            let direct = conv2d_forward(&x, &w, Some(&b), &g);
            let filters = FilterTransform::build(&w, g.c_out, g.c_in, false, tile, packed);
            let ours = convolve(&x, &filters, Some(&b), &g, Epilogue::Store);
            let err = rel_err(&ours, &direct);
            assert!(
                err < 1e-5,
                "case {case}: {tile:?} packed {packed} {g:?}: forward rel. error {err}"
            );

            let dy: Vec<f32> = (0..direct.len()).map(|_| rng.normal()).collect();
            let direct = conv2d_input_adjoint(&dy, &w, &g);
            let filters = FilterTransform::build(&w, g.c_out, g.c_in, true, tile, packed);
            let ours = convolve(&dy, &filters, None, &adjoint_geometry(&g), Epilogue::Store);
            let err = rel_err(&ours, &direct);
            assert!(
                err < 1e-5,
                "case {case}: {tile:?} packed {packed} {g:?}: adjoint rel. error {err}"
            );
        }
    }

    /// Which variant runs where: ResNet-50's 7² layers (16 2×2 tiles) run exactly in the
    /// model's passes and the LRP/CRP forward, as F(2×2) in the rule passes (forward and
    /// adjoint); its 14² layers (49 tiles, 16 4×4 tiles) as F(2×2) in every scope's choice,
    /// and its 56² ones as F(4×4) except in the tie-preserving forward.
    #[test]
    fn rule_passes_take_two_by_two_from_sixteen_tiles() {
        let layer = |side: usize, channels: usize| ConvGeometry {
            batch: 1,
            c_in: channels,
            in_hw: [side, side],
            c_out: channels,
            kernel: [3, 3],
            out_hw: [side, side],
            stride: [1, 1],
            dilation: [1, 1],
            pad_before: [1, 1],
        };
        let seven = layer(7, 512);
        assert_eq!(choose(&seven), None);
        assert_eq!(choose_tie_preserving(&seven), None);
        assert_eq!(choose_for_rules(&seven), Some(Tile::Two));
        assert_eq!(choose_adjoint_for_rules(&seven), Some(Tile::Two));
        assert_eq!(choose_for_rules(&layer(6, 512)), None, "9 tiles");
        assert_eq!(choose_for_rules(&layer(7, 8)), None, "too few channels");
        let fourteen = layer(14, 256);
        assert_eq!(choose(&fourteen), Some(Tile::Two));
        assert_eq!(choose_for_rules(&fourteen), Some(Tile::Two));
        let fifty_six = layer(56, 64);
        assert_eq!(choose(&fifty_six), Some(Tile::Four));
        assert_eq!(choose_for_rules(&fifty_six), Some(Tile::Four));
        assert_eq!(choose_tie_preserving(&fifty_six), Some(Tile::Two));
    }

    /// F(2×2) keeps the ties of exact summation where the input is flat: on an image whose
    /// left part is one constant per channel (an MRI's black background), whose right part
    /// varies only down the rows, and whose bottom rows are noise, every output whose tile reads
    /// only the constant part equals every other such output bit for bit, and in tiles reading
    /// only row-wise constant input the two outputs of each tile row are equal. F(4×4) does not
    /// promise this (its points ±2 scale the constants before they cancel).
    #[test]
    fn two_by_two_keeps_ties_of_flat_input() {
        let mut rng = Rng::new(17);
        let (c_in, c_out, h, w) = (24, 32, 20, 24);
        let g = ConvGeometry {
            batch: 1,
            c_in,
            in_hw: [h, w],
            c_out,
            kernel: [3, 3],
            out_hw: [h, w],
            stride: [1, 1],
            dilation: [1, 1],
            pad_before: [1, 1],
        };
        let level: Vec<f32> = (0..c_in).map(|_| rng.normal()).collect();
        let row_level: Vec<f32> = (0..c_in * h).map(|_| rng.normal()).collect();
        let mut x = vec![0.0f32; c_in * h * w];
        for c in 0..c_in {
            for y in 0..h {
                for xx in 0..w {
                    x[(c * h + y) * w + xx] = if y >= 16 {
                        rng.normal()
                    } else if xx < 12 {
                        level[c]
                    } else {
                        row_level[c * h + y]
                    };
                }
            }
        }
        let wt: Vec<f32> = (0..c_out * c_in * 9).map(|_| rng.normal()).collect();
        let b: Vec<f32> = (0..c_out).map(|_| rng.normal()).collect();
        for packed in [true, false] {
            if packed && !tile_products::available() {
                continue;
            }
            let filters = FilterTransform::build(&wt, c_out, c_in, false, Tile::Two, packed);
            let y = convolve(&x, &filters, Some(&b), &g, Epilogue::Store);
            let at = |o: usize, r: usize, q: usize| y[(o * h + r) * w + q];
            for o in 0..c_out {
                // Tiles (rows 2..14, columns 2..10) read input rows 1..15 and columns 1..11:
                // the constant part alone.
                let flat = at(o, 2, 2);
                for r in 2..14 {
                    for q in 2..10 {
                        assert_eq!(at(o, r, q).to_bits(), flat.to_bits(), "flat {o} {r} {q}");
                    }
                }
                // Tiles in columns 14..22 read columns 13..23: constant along each row.
                for r in 2..14 {
                    for q in (14..22).step_by(2) {
                        let (l, rr) = (at(o, r, q), at(o, r, q + 1));
                        assert_eq!(l.to_bits(), rr.to_bits(), "rows {o} {r} {q}");
                    }
                }
            }
            let exact = conv2d_forward(&x, &wt, Some(&b), &g);
            assert!(rel_err(&y, &exact) < 1e-5);
        }
    }

    /// The transformed filters are the floats nearest to `G g Gᵀ` (summed in double precision
    /// and rounded once): within half a unit in the last place of a plain double-precision
    /// evaluation of the matrix products, for both variants. (The single-precision transform
    /// it replaced was off by 1.9 units on average for F(4×4) on random filters, and by
    /// thousands of units where the terms of a value cancel.)
    #[test]
    fn filter_transform_is_rounded_once() {
        let mut rng = Rng::new(3);
        let (c_out, c_in) = (5, 7);
        let w: Vec<f32> = (0..c_out * c_in * 9).map(|_| rng.normal()).collect();
        let g4: [[f64; 3]; 6] = [
            [0.25, 0.0, 0.0],
            [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
            [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
            [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
            [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
            [0.0, 0.0, 1.0],
        ];
        let g2: [[f64; 3]; 4] = [
            [1.0, 0.0, 0.0],
            [0.5, 0.5, 0.5],
            [0.5, -0.5, 0.5],
            [0.0, 0.0, 1.0],
        ];
        for tile in [Tile::Four, Tile::Two] {
            let gm: Vec<[f64; 3]> = match tile {
                Tile::Four => g4.to_vec(),
                Tile::Two => g2.to_vec(),
            };
            let a = gm.len();
            let f = FilterTransform::build(&w, c_out, c_in, false, tile, false);
            for o in 0..c_out {
                for c in 0..c_in {
                    let k = &w[(o * c_in + c) * 9..][..9];
                    for p in 0..a {
                        for q in 0..a {
                            let mut want = 0.0f64;
                            for i in 0..3 {
                                for j in 0..3 {
                                    want += gm[p][i] * f64::from(k[3 * i + j]) * gm[q][j];
                                }
                            }
                            // `gemm` layout: [rows][a²][cols].
                            let got = f.u[(o * a * a + p * a + q) * c_in + c];
                            // Within half a unit in the last place of the float: the nearest
                            // float, or one of two where the value lies (to 1e-16) halfway.
                            let ulp = f64::from(f32::from_bits(got.abs().to_bits() + 1))
                                - f64::from(got.abs());
                            let off = (f64::from(got) - want).abs();
                            assert!(
                                off <= 0.5 * ulp * (1.0 + 1e-6),
                                "{tile:?} {o} {c} {p} {q}: {got:e} vs {want:e}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// The two AVX-512 filter layouts give the same convolution bit for bit (each product is
    /// the same ordered chain of multiply-adds), forward and adjoint, at widths whose tile rows
    /// hold 7, 14 and 15 tiles (one block shared by the threads and several blocks), with
    /// channel counts that leave partial strips and panels; and they agree with the direct
    /// convolution.
    #[test]
    fn strips_and_panels_agree_bit_for_bit() {
        if !tile_products::available() {
            return;
        }
        let mut rng = Rng::new(9);
        // (batch, c_in, c_out, [h, w], tile)
        let cases = [
            (1, 40, 70, [28, 28], Tile::Four),
            (2, 33, 48, [14, 14], Tile::Two),
            (1, 20, 36, [56, 58], Tile::Four),
            (1, 64, 17, [9, 60], Tile::Four),
        ];
        for (case, &(batch, c_in, c_out, hw, tile)) in cases.iter().enumerate() {
            let g = ConvGeometry {
                batch,
                c_in,
                in_hw: hw,
                c_out,
                kernel: [3, 3],
                out_hw: hw,
                stride: [1, 1],
                dilation: [1, 1],
                pad_before: [1, 1],
            };
            let x: Vec<f32> = (0..batch * c_in * hw[0] * hw[1])
                .map(|_| rng.normal())
                .collect();
            let w: Vec<f32> = (0..c_out * c_in * 9).map(|_| rng.normal()).collect();
            let b: Vec<f32> = (0..c_out).map(|_| rng.normal()).collect();
            let dy: Vec<f32> = (0..batch * c_out * hw[0] * hw[1])
                .map(|_| rng.normal())
                .collect();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            let run = |layout: Layout| {
                let f = FilterTransform::build_in(&w, c_out, c_in, false, tile, layout);
                let forward = convolve(&x, &f, Some(&b), &g, Epilogue::Store);
                let f = FilterTransform::build_in(&w, c_out, c_in, true, tile, layout);
                let adjoint = convolve(&dy, &f, None, &adjoint_geometry(&g), Epilogue::Store);
                (forward, adjoint)
            };
            let (strips, panels) = (run(Layout::Strips), run(Layout::Panels));
            assert_eq!(bits(&strips.0), bits(&panels.0), "case {case}: forward");
            assert_eq!(bits(&strips.1), bits(&panels.1), "case {case}: adjoint");
            let err = rel_err(&strips.0, &conv2d_forward(&x, &w, Some(&b), &g));
            assert!(err < 1e-5, "case {case}: forward rel. error {err}");
            let err = rel_err(&strips.1, &conv2d_input_adjoint(&dy, &w, &g));
            assert!(err < 1e-5, "case {case}: adjoint rel. error {err}");
        }
    }
}
