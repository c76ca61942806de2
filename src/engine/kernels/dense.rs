//! Fully connected layers on a few inputs at once: `y = x Wᵀ + b` and its input adjoint
//! `dx = g W`, as passes that read the weight matrix at most once.
//!
//! With batches of 1–16 a dense layer does `2·N` flops per weight it reads, so it is bound by
//! memory bandwidth, not arithmetic (VGG-16's first dense layer holds 411 MB). Both passes
//! stream rows of `W` split over threads so that every thread reads its own part of the
//! matrix, [`ROWS_AT_ONCE`] rows side by side, with software prefetch where it helps
//! ([`software_prefetch`]): on an Intel machine one sequential stream per thread drew 25 GB/s
//! from memory, four prefetched streams 35 GB/s. The
//! adjoint also skips rows whose output signal is zero in every image (after a ReLU, about half
//! of them for a gradient or an LRP relevance), which it can do because those rows contribute
//! nothing.

use rayon::prelude::*;

/// Largest batch for which these passes run (beyond it the layer has enough arithmetic per
/// weight for a GEMM).
pub const MAX_BATCH: usize = 16;

/// Floats of a row taken per step: with every image's matching slice of `x` (≤ 16 × 4 KiB)
/// it stays in L1.
const SEGMENT: usize = 1024;

/// Rows of `W` read side by side: several memory streams per thread keep more cache-line
/// requests in flight than one (measured above).
const ROWS_AT_ONCE: usize = 4;

/// How far ahead of the current position each row stream is prefetched, in floats (1 KiB).
const PREFETCH_FLOATS: usize = 256;

/// Whether the row streams are prefetched in software: not on AMD processors, whose hardware
/// prefetcher follows the four streams per thread on its own and where the prefetch
/// instructions only cost. Measured on VGG-16's first dense layer (4096 × 25088, 411 MB, both
/// threads, fastest of 12 runs; values identical either way): on an AMD EPYC (Zen 4) the
/// forward pass took 22.4–24.2 ms with prefetch 1 KiB ahead (17–18 GB/s), 15.4–19.8 ms at
/// 4 KiB, 15.5–16.0 ms at 16 KiB and 13.5 ms without (30 GB/s), the input adjoint over half
/// the rows 9.9–11.3 ms with and 7.2–7.3 ms without; on an Intel machine the four prefetched
/// streams drew 35 GB/s against 25 GB/s for one plain stream per thread, so elsewhere the
/// prefetch stays.
pub fn software_prefetch() -> bool {
    static CHOICE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CHOICE.get_or_init(|| !cpu_is_amd())
}

/// Whether the CPU's vendor string (CPUID leaf 0) is `AuthenticAMD`.
fn cpu_is_amd() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // Leaf 0 (the vendor string) exists on every x86-64 processor.
        let id = std::arch::x86_64::__cpuid(0);
        let vendor: Vec<u8> = [id.ebx, id.edx, id.ecx]
            .iter()
            .flat_map(|r| r.to_le_bytes())
            .collect();
        vendor == b"AuthenticAMD"
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Partial sums per dot product: 32 lanes (two AVX-512 registers), so the sum is vectorised
/// and not limited by the latency of one running sum.
const LANES: usize = 32;

/// `y[i, o] = Σ_f x[i, f] · W[o, f] + b[o]` for `x: [N, F]`, `W: [O, F]`, returning `[N, O]`.
/// Each output is one sum in a fixed order (per [`SEGMENT`], [`LANES`] partial sums added in
/// lane order; segments in order), whatever the thread count.
///
/// # Panics
/// If sizes disagree.
pub fn linear(x: &[f32], n: usize, weight: &[f32], out: usize, bias: Option<&[f32]>) -> Vec<f32> {
    linear_with(x, n, weight, out, bias, software_prefetch())
}

/// [`linear`] with the row streams prefetched in software or not (the same values either way).
fn linear_with(
    x: &[f32],
    n: usize,
    weight: &[f32],
    out: usize,
    bias: Option<&[f32]>,
    prefetch: bool,
) -> Vec<f32> {
    let inp = x.len() / n.max(1);
    assert_eq!(x.len(), n * inp, "input size");
    assert_eq!(weight.len(), out * inp, "weight size");
    let rows_per_task = out
        .div_ceil(8 * rayon::current_num_threads().max(1))
        .next_multiple_of(ROWS_AT_ONCE)
        .max(ROWS_AT_ONCE);
    // Computed as [O, N] (each task owns whole rows of it), then transposed.
    let mut yt = vec![0.0f32; out * n];
    yt.par_chunks_mut(rows_per_task * n)
        .enumerate()
        .for_each(|(t, block)| {
            for (g, y_rows) in block.chunks_mut(ROWS_AT_ONCE * n).enumerate() {
                let first = t * rows_per_task + g * ROWS_AT_ONCE;
                let rows = y_rows.len() / n;
                let w_rows = &weight[first * inp..(first + rows) * inp];
                for s in (0..inp).step_by(SEGMENT) {
                    let e = (s + SEGMENT).min(inp);
                    for i in 0..n {
                        let xs = &x[i * inp + s..i * inp + e];
                        // Prefetch on the first image only: the others find the segment cached.
                        let sums = dots(w_rows, inp, s, xs, prefetch && i == 0);
                        for (r, d) in sums[..rows].iter().enumerate() {
                            y_rows[r * n + i] += d;
                        }
                    }
                }
                if let Some(b) = bias {
                    for r in 0..rows {
                        for y in &mut y_rows[r * n..(r + 1) * n] {
                            *y += b[first + r];
                        }
                    }
                }
            }
        });
    let mut y = vec![0.0f32; n * out];
    for (o, col) in yt.chunks_exact(n).enumerate() {
        for (i, &v) in col.iter().enumerate() {
            y[i * out + o] = v;
        }
    }
    y
}

/// Rows of `W` summed into one partial result of the adjoint: a fixed count, so that the
/// summation order (rows in order within a chunk, then chunks in order) never depends on the
/// number of threads.
const ADJOINT_CHUNK_ROWS: usize = 256;

/// `dx[i, f] = Σ_o g[i, o] · W[o, f]` for `g: [N, O]`, `W: [O, F]`, returning `[N, F]`. Each
/// chunk of [`ADJOINT_CHUNK_ROWS`] rows of `W` is read front to back into its own partial
/// `[N, F]` (whole rows stream from memory at full bandwidth; owning column blocks instead read
/// short pieces of every row, measured 13 ms against 8 for VGG-16's first dense layer), then the
/// partials are added in chunk order. Rows `o` with `g[·, o] = 0` for every image are skipped;
/// the others are added [`ROWS_AT_ONCE`] per pass over the partial, each element receiving
/// its terms in row order (the values of one row at a time, up to the sign of a zero).
///
/// # Panics
/// If sizes disagree.
pub fn linear_input_adjoint(g: &[f32], n: usize, weight: &[f32], out: usize) -> Vec<f32> {
    linear_input_adjoint_with(g, n, weight, out, software_prefetch())
}

/// [`linear_input_adjoint`] with the row streams prefetched in software or not (the same values
/// either way).
fn linear_input_adjoint_with(
    g: &[f32],
    n: usize,
    weight: &[f32],
    out: usize,
    prefetch: bool,
) -> Vec<f32> {
    assert_eq!(g.len(), n * out, "signal size");
    let inp = weight.len() / out.max(1);
    assert_eq!(weight.len(), out * inp, "weight size");
    let live = |o: usize| (0..n).any(|i| g[i * out + o] != 0.0);
    let chunks: Vec<Vec<usize>> = (0..out.div_ceil(ADJOINT_CHUNK_ROWS))
        .map(|c| {
            (c * ADJOINT_CHUNK_ROWS..((c + 1) * ADJOINT_CHUNK_ROWS).min(out))
                .filter(|&o| live(o))
                .collect::<Vec<usize>>()
        })
        .filter(|rows| !rows.is_empty())
        .collect();
    let partials: Vec<Vec<f32>> = chunks
        .par_iter()
        .map(|rows| {
            let mut partial = vec![0.0f32; n * inp];
            let row_set = |group: &[usize]| {
                let mut w_rows = [&weight[..0]; ROWS_AT_ONCE];
                for (slot, &o) in w_rows.iter_mut().zip(group) {
                    *slot = &weight[o * inp..(o + 1) * inp];
                }
                w_rows
            };
            let groups: Vec<&[usize]> = rows.chunks(ROWS_AT_ONCE).collect();
            for (k, group) in groups.iter().enumerate() {
                let w_rows = row_set(group);
                // The next group's rows are prefetched as this one's run out, so that the
                // streams do not start cold at every group (rows of a few KiB: small layers).
                let next = groups
                    .get(k + 1)
                    .map_or([&weight[..0]; ROWS_AT_ONCE], |g| row_set(g));
                for (i, dx) in partial.chunks_exact_mut(inp).enumerate() {
                    let mut coef = [0.0f32; ROWS_AT_ONCE];
                    for (c, &o) in coef.iter_mut().zip(group.iter()) {
                        *c = g[i * out + o];
                    }
                    if coef.iter().any(|&c| c != 0.0) {
                        let rows = &w_rows[..group.len()];
                        let ahead = (prefetch && i == 0).then_some(&next);
                        axpys(&coef[..group.len()], rows, dx, ahead);
                    }
                }
            }
            partial
        })
        .collect();
    let mut dx = vec![0.0f32; n * inp];
    let piece = inp
        .div_ceil(4 * rayon::current_num_threads().max(1))
        .max(1024);
    dx.par_chunks_mut(piece).enumerate().for_each(|(k, dst)| {
        let start = k * piece;
        for partial in &partials {
            add(&partial[start..start + dst.len()], dst);
        }
    });
    dx
}

/// The dot products of `x` (one segment, starting at column `s`) with the same segment of up
/// to [`ROWS_AT_ONCE`] consecutive rows of length `inp` in `w_rows`, each with [`LANES`]
/// partial sums; with AVX-512 where the CPU has it (the same operations in the same order, so
/// the same result) and, if `prefetch`, each row's stream prefetched ahead.
fn dots(w_rows: &[f32], inp: usize, s: usize, x: &[f32], prefetch: bool) -> [f32; ROWS_AT_ONCE] {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F, checked just above.
        return unsafe { dots_avx512(w_rows, inp, s, x, prefetch) };
    }
    dots_portable(w_rows, inp, s, x, false)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dots_avx512(w: &[f32], inp: usize, s: usize, x: &[f32], pf: bool) -> [f32; ROWS_AT_ONCE] {
    dots_portable(w, inp, s, x, pf)
}

#[inline(always)]
fn dots_portable(
    w_rows: &[f32],
    inp: usize,
    s: usize,
    x: &[f32],
    prefetch: bool,
) -> [f32; ROWS_AT_ONCE] {
    let rows = w_rows.len() / inp.max(1);
    let len = x.len();
    let full = len - len % LANES;
    let mut acc = [[0.0f32; LANES]; ROWS_AT_ONCE];
    let mut k = 0;
    while k < full {
        for (r, acc) in acc.iter_mut().enumerate().take(rows) {
            let at = r * inp + s + k;
            if prefetch {
                prefetch_at(w_rows, (r + 1) * inp, at + PREFETCH_FLOATS);
            }
            let w = &w_rows[at..at + LANES];
            let xv = &x[k..k + LANES];
            for l in 0..LANES {
                acc[l] += w[l] * xv[l];
            }
        }
        k += LANES;
    }
    let mut sums = [0.0f32; ROWS_AT_ONCE];
    for (r, sum) in sums.iter_mut().enumerate().take(rows) {
        let w = &w_rows[r * inp + s + full..r * inp + s + len];
        let tail: f32 = w.iter().zip(&x[full..]).map(|(w, x)| w * x).sum();
        *sum = acc[r].iter().sum::<f32>() + tail;
    }
    sums
}

/// `y = (((y + c₀·w₀) + c₁·w₁) + …)` element by element for up to [`ROWS_AT_ONCE`] rows `w`
/// (the values of one `y += c·w` pass per row in row order), in one pass over `y`; with
/// AVX-512 where the CPU has it. With `ahead` (the rows to be read next), every row stream is
/// prefetched [`PREFETCH_FLOATS`] ahead, continuing into `ahead`'s rows near the end.
fn axpys(coef: &[f32], w: &[&[f32]], y: &mut [f32], ahead: Option<&[&[f32]; ROWS_AT_ONCE]>) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F, checked just above.
        return unsafe { axpys_avx512(coef, w, y, ahead) };
    }
    axpys_portable(coef, w, y, None)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn axpys_avx512(
    coef: &[f32],
    w: &[&[f32]],
    y: &mut [f32],
    ahead: Option<&[&[f32]; ROWS_AT_ONCE]>,
) {
    axpys_portable(coef, w, y, ahead)
}

#[inline(always)]
fn axpys_portable(
    coef: &[f32],
    w: &[&[f32]],
    y: &mut [f32],
    ahead: Option<&[&[f32]; ROWS_AT_ONCE]>,
) {
    let len = y.len();
    let full = len - len % LANES;
    let mut k = 0;
    while k < full {
        if let Some(next) = ahead {
            let at = k + PREFETCH_FLOATS;
            for (r, w) in w.iter().enumerate() {
                if at < len {
                    prefetch_at(w, len, at);
                } else {
                    prefetch_at(next[r], next[r].len(), at - len);
                }
            }
        }
        let yv = &mut y[k..k + LANES];
        for (&c, w) in coef.iter().zip(w) {
            let wv = &w[k..k + LANES];
            for l in 0..LANES {
                yv[l] += c * wv[l];
            }
        }
        k += LANES;
    }
    for (&c, w) in coef.iter().zip(w) {
        for (y, &w) in y[full..].iter_mut().zip(&w[full..len]) {
            *y += c * w;
        }
    }
}

/// Asks the CPU to bring `v[at]` towards L1 if `at < end` (a hint: no effect on values).
#[inline(always)]
fn prefetch_at(v: &[f32], end: usize, at: usize) {
    #[cfg(target_arch = "x86_64")]
    if at < end.min(v.len()) {
        // SAFETY: the address is inside `v`; a prefetch reads nothing architecturally.
        unsafe {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            _mm_prefetch::<_MM_HINT_T0>(v.as_ptr().add(at) as *const i8);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (v, end, at);
}

/// `y += x`.
fn add(x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += x;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|k| {
                let v = (k as u32)
                    .wrapping_mul(2_654_435_761)
                    .wrapping_add(seed * 97);
                (v >> 8) as f32 / (1u32 << 24) as f32 - 0.5
            })
            .collect()
    }

    #[test]
    fn linear_and_adjoint_match_their_definitions() {
        for (n, out, inp) in [
            (1, 7, 1000),
            (3, 70, 2085),
            (16, 5, 33),
            (2, 1, 4096),
            (2, 3 * ADJOINT_CHUNK_ROWS + 5, 300),
        ] {
            let x = values(n * inp, 1);
            let w = values(out * inp, 2);
            let b = values(out, 3);
            let y = linear(&x, n, &w, out, Some(&b));
            let mut g = values(n * out, 4);
            g[0] = 0.0; // a zero entry, and (n = 1) a skipped row
            if out > 2 * ADJOINT_CHUNK_ROWS {
                // A whole chunk of rows without signal (skipped) between live ones.
                for i in 0..n {
                    g[i * out + ADJOINT_CHUNK_ROWS..i * out + 2 * ADJOINT_CHUNK_ROWS].fill(0.0);
                }
            }
            let dx = linear_input_adjoint(&g, n, &w, out);
            for i in 0..n {
                for o in 0..out {
                    let want: f64 = (0..inp)
                        .map(|f| x[i * inp + f] as f64 * w[o * inp + f] as f64)
                        .sum::<f64>()
                        + b[o] as f64;
                    let got = y[i * out + o] as f64;
                    assert!(
                        (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                        "{got} vs {want}"
                    );
                }
                for f in 0..inp {
                    let want: f64 = (0..out)
                        .map(|o| g[i * out + o] as f64 * w[o * inp + f] as f64)
                        .sum();
                    let got = dx[i * inp + f] as f64;
                    assert!(
                        (got - want).abs() < 1e-4 * (1.0 + want.abs()),
                        "{got} vs {want}"
                    );
                }
            }
        }
    }

    /// `f` gives bit-identical results on pools of 1, 2, 3 and 7 threads.
    fn same_on_any_thread_count(f: impl Fn() -> Vec<f32> + Sync + Send) {
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(&f)
        };
        let one = run(1);
        for threads in [2, 3, 7] {
            assert!(
                one.iter()
                    .zip(run(threads))
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{threads} threads"
            );
        }
    }

    #[test]
    fn forward_does_not_depend_on_the_thread_count() {
        let (n, out, inp) = (2, 4 * ROWS_AT_ONCE * 7 + 3, 2 * SEGMENT + 45);
        let x = values(n * inp, 10);
        let w = values(out * inp, 11);
        same_on_any_thread_count(|| linear(&x, n, &w, out, None));
    }

    #[test]
    fn software_prefetch_changes_no_value() {
        let (n, out, inp) = (2, 3 * ADJOINT_CHUNK_ROWS + 9, 2 * SEGMENT + 300);
        let x = values(n * inp, 20);
        let w = values(out * inp, 21);
        let mut g = values(n * out, 22);
        g[..ADJOINT_CHUNK_ROWS].fill(0.0);
        let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<u32>>();
        assert_eq!(
            bits(linear_with(&x, n, &w, out, None, true)),
            bits(linear_with(&x, n, &w, out, None, false))
        );
        assert_eq!(
            bits(linear_input_adjoint_with(&g, n, &w, out, true)),
            bits(linear_input_adjoint_with(&g, n, &w, out, false))
        );
    }

    #[test]
    fn adjoint_does_not_depend_on_the_thread_count() {
        let (n, out, inp) = (3, 5 * ADJOINT_CHUNK_ROWS + 17, 777);
        let w = values(out * inp, 5);
        let g = values(n * out, 6);
        same_on_any_thread_count(|| linear_input_adjoint(&g, n, &w, out));
    }
}
