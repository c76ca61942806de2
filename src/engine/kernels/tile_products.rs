//! The products of a Winograd convolution on AVX-512: `M_ξ = U_ξ V_ξ` for every position `ξ`
//! of a transformed tile, `m[ξ][o][t] = Σ_c U_ξ[o, c] · v[ξ][c][t]` (see [`super::winograd`]).
//!
//! The register block holds 32 output channels (two AVX-512 vectors of `U_ξ`'s column `c`)
//! for up to [`GROUP_TILES`] tiles (broadcast values of `V_ξ`'s row `c`), as in the register
//! blocking of Goto & van de Geijn, "Anatomy of High-Performance Matrix Multiplication" (ACM
//! TOMS 2008), with the channels as the vector dimension. Channel counts of convolutional
//! networks are multiples of 32, tile counts are not: a tile row of a 28² or 14² image holds
//! 7 tiles, of a 56² image 14 (plus the transforms' spare tile), so with the tiles as the
//! vector dimension (32 per block, the direct kernel's micro-kernel) 12.5–23 % of the lanes of
//! VGG-16's products at batch 1 held no tile. Here a block covers the tiles of one tile row,
//! [`GROUP_TILES`] at a time and none more. The price is that a block's products leave the
//! registers transposed (channel `o`'s tiles side by side in `m`): two 16 × 16 in-register
//! transposes and 32 masked stores per block of `cols` multiply-add steps.
//!
//! Every `m[ξ][o][t]` is one fused multiply-add chain over `c` in order from zero, whatever the
//! block or thread — the same chain as the micro-kernel's, so both give the same bits.

use rayon::prelude::*;

use super::conv::OutPtr;

/// Output channels per strip of packed filters: two AVX-512 vectors.
pub(super) const STRIP: usize = 32;

/// Most tiles per register block: 14 × 2 accumulators, two filter vectors and a broadcast
/// value fill the 32 vector registers but one.
const GROUP_TILES: usize = 14;

/// Filter values prefetched ahead in a strip (64 terms, 8 KiB): a strip's first block reads
/// it from memory (a 512-channel layer's transformed filters, 38 MB, do not stay in cache
/// between passes), the later blocks of the strip from L2.
const PREFETCH_FLOATS: usize = 64 * STRIP;

/// Whether this CPU computes the products here (AVX-512F).
pub(super) fn available() -> bool {
    super::direct::available()
}

/// `u: [rows][a²][cols]` (row `o`, position `ξ`, column `c` at `(o · a² + ξ) · cols + c`) laid
/// out per position `ξ`, per strip of [`STRIP`] rows, `[cols][STRIP]` — the strip's rows of one
/// column side by side, zeros past the last row.
pub(super) fn pack(u: &[f32], rows: usize, cols: usize, xi: usize) -> Vec<f32> {
    assert_eq!(u.len(), rows * xi * cols, "filter size");
    let strips = rows.div_ceil(STRIP);
    let mut packed = vec![0.0f32; xi * strips * cols * STRIP];
    packed
        .par_chunks_mut(cols * STRIP)
        .enumerate()
        .for_each(|(i, dst)| {
            let (position, strip) = (i / strips, i % strips);
            let o0 = strip * STRIP;
            let lanes = STRIP.min(rows - o0);
            for (c, lane) in dst.chunks_exact_mut(STRIP).enumerate() {
                for (l, d) in lane[..lanes].iter_mut().enumerate() {
                    *d = u[((o0 + l) * xi + position) * cols + c];
                }
            }
        });
    packed
}

/// Where strip `s` of position `xi` starts in the packed layout (each strip `cols · STRIP`
/// floats).
fn strip_start(rows: usize, cols: usize, xi: usize, s: usize) -> usize {
    (xi * rows.div_ceil(STRIP) + s) * cols * STRIP
}

/// Tiles of one block of transformed tiles: `tile_rows` rows of `across` tiles, row `r`'s tiles
/// at `r · span ..` (`span ≥ across`; the tiles past `across` are not computed and get zero
/// products).
#[derive(Clone, Copy, Debug)]
pub(super) struct TileRows {
    /// Rows of tiles.
    pub tile_rows: usize,
    /// Tiles per row.
    pub across: usize,
    /// Distance between rows (tiles).
    pub span: usize,
}

/// `m[ξ][o][t] = Σ_c u_ξ[o, c] · v[ξ][c][t]` for `ξ < xi`, `o < rows`, `c < cols` and every
/// tile `t` of `tiles` (`n = tile_rows · span` columns per `ξ`), with `u` packed by [`pack`];
/// in parallel over `ξ` if `parallel`.
///
/// # Panics
/// If a buffer is shorter than stated or the CPU lacks AVX-512F.
#[allow(clippy::too_many_arguments)]
pub(super) fn multiply(
    u: &[f32],
    rows: usize,
    cols: usize,
    xi: usize,
    v: &[f32],
    m: &mut [f32],
    tiles: TileRows,
    parallel: bool,
) {
    let n = tiles.tile_rows * tiles.span;
    let strips = rows.div_ceil(STRIP);
    assert!(available(), "the tile products need AVX-512");
    assert!(tiles.across <= tiles.span, "tile layout");
    assert!(u.len() >= xi * strips * cols * STRIP, "filters");
    assert!(
        v.len() >= xi * cols * n && m.len() >= xi * rows * n,
        "tiles"
    );
    let m_ptr = OutPtr(m.as_mut_ptr());
    let position = |position: usize| {
        let v = &v[position * cols * n..][..cols * n];
        for s in 0..strips {
            let strip = &u[strip_start(rows, cols, position, s)..][..cols * STRIP];
            let (o0, o1) = (s * STRIP, (s * STRIP + STRIP).min(rows));
            // Strip outer: its filters (from memory) serve every tile of the block while in
            // cache; the block's transformed tiles stay in L2 across strips.
            for row in 0..tiles.tile_rows {
                for g in (0..tiles.across).step_by(GROUP_TILES) {
                    let t0 = row * tiles.span + g;
                    let group = GROUP_TILES.min(tiles.across - g);
                    // SAFETY: reads `v[c·n + t0 + r]` (c < cols, r < group, t0 + group ≤ n)
                    // and `strip[c·STRIP + l]`, writes `m[(ξ·rows + o)·n + t0 + r]` for
                    // o0 ≤ o < o1 — inside the buffers (asserted above); positions write
                    // disjoint parts of `m`, so parallel tasks never overlap.
                    unsafe {
                        group_products(
                            group,
                            Block {
                                terms: cols,
                                v: v.as_ptr().add(t0),
                                n,
                                strip: strip.as_ptr(),
                                m: m_ptr.get().add((position * rows + o0) * n + t0),
                                channels: o1 - o0,
                            },
                        );
                    }
                }
                // The tiles past `across` (the transforms' spare column) get zeros, so the
                // output transform that runs over them never meets stale values.
                for o in o0..o1 {
                    let line = (position * rows + o) * n + row * tiles.span;
                    for t in tiles.across..tiles.span {
                        // SAFETY: inside this position's part of `m` (see above).
                        unsafe { *m_ptr.get().add(line + t) = 0.0 };
                    }
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

/// The operands of one register block: `m[l·n + r] = Σ_k v[k·n + r] · strip[k·STRIP + l]`
/// for `r <` the block's tiles, `l < channels`, `k < terms`.
#[derive(Clone, Copy)]
struct Block {
    terms: usize,
    /// The block's first tile in row 0 of `V_ξ`; row `k` is `n` floats further.
    v: *const f32,
    n: usize,
    /// The strip of packed filters, `[terms][STRIP]`.
    strip: *const f32,
    /// The block's first tile in channel `o0`'s row of `M_ξ`.
    m: *mut f32,
    channels: usize,
}

/// The products of one register block of `group` tiles.
///
/// # Safety
/// The block's pointers cover its ranges; `group ≤ GROUP_TILES`, `channels ≤ STRIP`; the CPU
/// has AVX-512F.
unsafe fn group_products(group: usize, b: Block) {
    #[cfg(target_arch = "x86_64")]
    {
        macro_rules! dispatch {
            ($($g:literal)*) => {
                match group {
                    $($g => unsafe { avx512::block::<$g>(b) },)*
                    _ => unreachable!("tiles per block"),
                }
            };
        }
        dispatch!(1 2 3 4 5 6 7 8 9 10 11 12 13 14);
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (group, b);
        unreachable!("the tile products need AVX-512");
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    use super::{Block, PREFETCH_FLOATS, STRIP};

    /// The `G × 32` block of [`super::group_products`]: `2G` accumulators, per term two
    /// filter loads and `G` broadcast multiply-adds, then each channel's `G` products written
    /// side by side into its row of `m`.
    ///
    /// # Safety
    /// As [`super::group_products`].
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn block<const G: usize>(b: Block) {
        let Block {
            terms,
            v,
            n,
            strip,
            m,
            channels,
        } = b;
        let mut acc = [[_mm512_setzero_ps(); 2]; G];
        // SAFETY (whole body): pointer ranges as the caller vouches.
        unsafe {
            for k in 0..terms {
                let u = strip.add(k * STRIP);
                // A hint only: an address past the filters' end is never dereferenced.
                let ahead = u.wrapping_add(PREFETCH_FLOATS) as *const i8;
                _mm_prefetch::<_MM_HINT_T0>(ahead);
                _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64));
                let x = [_mm512_loadu_ps(u), _mm512_loadu_ps(u.add(16))];
                let t = v.add(k * n);
                for (r, a) in acc.iter_mut().enumerate() {
                    let w = _mm512_set1_ps(*t.add(r));
                    a[0] = _mm512_fmadd_ps(w, x[0], a[0]);
                    a[1] = _mm512_fmadd_ps(w, x[1], a[1]);
                }
            }
            // Each half (16 channels) transposed in registers: vector `l` then holds channel
            // `l`'s products of the G tiles, stored as one masked run.
            let mask = ((1u32 << G) - 1) as __mmask16;
            let zero = _mm512_setzero_ps();
            for half in 0..2 {
                let halves = acc.map(|a| a[half]);
                let rows = std::array::from_fn(|r| halves.get(r).copied().unwrap_or(zero));
                let columns = transpose(rows);
                let first = 16 * half;
                for (l, column) in columns
                    .iter()
                    .enumerate()
                    .take(channels.saturating_sub(first))
                {
                    _mm512_mask_storeu_ps(m.add((first + l) * n), mask, *column);
                }
            }
        }
    }

    /// The 16 × 16 transpose of `rows` (`out[j][i] = rows[i][j]`): element pairs, then pairs
    /// of pairs within each 128-bit lane, then the 4 × 4 lanes.
    ///
    /// # Safety
    /// The CPU has AVX-512F.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn transpose(rows: [__m512; 16]) -> [__m512; 16] {
        // t[2i], t[2i+1]: rows 2i and 2i+1 interleaved, elements 0–1 and 2–3 of each lane.
        let t: [__m512; 16] = std::array::from_fn(|k| {
            let (a, b) = (rows[k & !1], rows[k | 1]);
            if k % 2 == 0 {
                _mm512_unpacklo_ps(a, b)
            } else {
                _mm512_unpackhi_ps(a, b)
            }
        });
        // u[4q + c], lane k: rows 4q..4q+4 of column 4k + c.
        let u: [__m512; 16] = std::array::from_fn(|k| {
            let (q, c) = (k / 4, k % 4);
            let (a, b) = (t[4 * q + c / 2], t[4 * q + 2 + c / 2]);
            if c % 2 == 0 {
                _mm512_shuffle_ps::<0x44>(a, b)
            } else {
                _mm512_shuffle_ps::<0xEE>(a, b)
            }
        });
        // Column 4k + c, lane q = u[4q + c] lane k: a 4 × 4 transpose of lanes per c.
        let mut out = [_mm512_setzero_ps(); 16];
        for c in 0..4 {
            let (a, b, cc, d) = (u[c], u[4 + c], u[8 + c], u[12 + c]);
            let v0 = _mm512_shuffle_f32x4::<0x44>(a, b);
            let v1 = _mm512_shuffle_f32x4::<0xEE>(a, b);
            let v2 = _mm512_shuffle_f32x4::<0x44>(cc, d);
            let v3 = _mm512_shuffle_f32x4::<0xEE>(cc, d);
            out[c] = _mm512_shuffle_f32x4::<0x88>(v0, v2);
            out[4 + c] = _mm512_shuffle_f32x4::<0xDD>(v0, v2);
            out[8 + c] = _mm512_shuffle_f32x4::<0x88>(v1, v3);
            out[12 + c] = _mm512_shuffle_f32x4::<0xDD>(v1, v3);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Every product equals the fused multiply-add chain over the columns in order from zero,
    /// bit for bit, and the spare tiles get zeros: channel counts below, at and past a strip
    /// (16, 32, 45), rows of 1, 7, 14, 15 and 29 tiles with one spare, several tile rows.
    #[test]
    fn products_equal_the_ordered_fma_chain() {
        if !available() {
            return;
        }
        let mut rng = Rng::new(11);
        let cases = [
            (16, 17, 1, 1, 2),
            (32, 20, 4, 7, 8),
            (45, 33, 16, 14, 15),
            (33, 16, 36, 15, 16),
            (64, 18, 2, 29, 30),
        ];
        for (case, &(rows, cols, xi, across, span)) in cases.iter().enumerate() {
            let tile_rows = 1 + case % 3;
            let n = tile_rows * span;
            let u: Vec<f32> = (0..rows * xi * cols).map(|_| rng.normal()).collect();
            let v: Vec<f32> = (0..xi * cols * n).map(|_| rng.normal()).collect();
            let packed = pack(&u, rows, cols, xi);
            let mut m = vec![f32::NAN; xi * rows * n];
            let tiles = TileRows {
                tile_rows,
                across,
                span,
            };
            multiply(&packed, rows, cols, xi, &v, &mut m, tiles, case % 2 == 0);
            for p in 0..xi {
                for o in 0..rows {
                    for t in 0..n {
                        let got = m[(p * rows + o) * n + t];
                        let want = if t % span < across {
                            (0..cols).fold(0.0f32, |acc, c| {
                                u[(o * xi + p) * cols + c].mul_add(v[(p * cols + c) * n + t], acc)
                            })
                        } else {
                            0.0
                        };
                        assert_eq!(
                            got.to_bits(),
                            want.to_bits(),
                            "case {case}: ξ {p}, o {o}, t {t}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
