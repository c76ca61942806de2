//! Fully connected layers on a few inputs at once: `y = x Wᵀ + b` and its input adjoint
//! `dx = g W`, as passes that read the weight matrix exactly once.
//!
//! With batches of 1–16 a dense layer does `2·N` flops per weight it reads, so it is bound by
//! memory bandwidth, not arithmetic (VGG-16's first dense layer holds 411 MB). Both passes
//! stream each row of `W` once, split over threads so that every thread reads its own part of
//! the matrix; the adjoint also skips rows whose output signal is zero in every image (after a
//! ReLU, about half of them for a gradient or an LRP relevance), which it can do because
//! those rows contribute nothing.

use rayon::prelude::*;

/// Largest batch for which these passes run (beyond it the layer has enough arithmetic per
/// weight for a GEMM).
pub const MAX_BATCH: usize = 16;

/// Floats of a row taken per step: with every image's matching slice of `x` (≤ 16 × 4 KiB)
/// it stays in L1.
const SEGMENT: usize = 1024;

/// `y[i, o] = Σ_f x[i, f] · W[o, f] + b[o]` for `x: [N, F]`, `W: [O, F]`, returning `[N, O]`.
/// Each output is one sum in a fixed order, whatever the thread count.
///
/// # Panics
/// If sizes disagree.
pub fn linear(x: &[f32], n: usize, weight: &[f32], out: usize, bias: Option<&[f32]>) -> Vec<f32> {
    let inp = x.len() / n.max(1);
    assert_eq!(x.len(), n * inp, "input size");
    assert_eq!(weight.len(), out * inp, "weight size");
    let rows_per_task = out.div_ceil(8 * rayon::current_num_threads().max(1)).max(1);
    // Computed as [O, N] (each task owns whole rows of it), then transposed.
    let mut yt = vec![0.0f32; out * n];
    yt.par_chunks_mut(rows_per_task * n)
        .enumerate()
        .for_each(|(t, block)| {
            for (r, y_row) in block.chunks_exact_mut(n).enumerate() {
                let o = t * rows_per_task + r;
                let w_row = &weight[o * inp..(o + 1) * inp];
                for s in (0..inp).step_by(SEGMENT) {
                    let e = (s + SEGMENT).min(inp);
                    for (i, y) in y_row.iter_mut().enumerate() {
                        *y += dot(&w_row[s..e], &x[i * inp + s..i * inp + e]);
                    }
                }
                if let Some(b) = bias {
                    for y in y_row.iter_mut() {
                        *y += b[o];
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
/// partials are added in chunk order. Rows `o` with `g[·, o] = 0` for every image are skipped.
///
/// # Panics
/// If sizes disagree.
pub fn linear_input_adjoint(g: &[f32], n: usize, weight: &[f32], out: usize) -> Vec<f32> {
    assert_eq!(g.len(), n * out, "signal size");
    let inp = weight.len() / out.max(1);
    assert_eq!(weight.len(), out * inp, "weight size");
    let live = |o: usize| (0..n).any(|i| g[i * out + o] != 0.0);
    let chunks: Vec<usize> = (0..out.div_ceil(ADJOINT_CHUNK_ROWS))
        .filter(|&c| (c * ADJOINT_CHUNK_ROWS..((c + 1) * ADJOINT_CHUNK_ROWS).min(out)).any(live))
        .collect();
    let partials: Vec<Vec<f32>> = chunks
        .par_iter()
        .map(|&c| {
            let mut partial = vec![0.0f32; n * inp];
            for o in c * ADJOINT_CHUNK_ROWS..((c + 1) * ADJOINT_CHUNK_ROWS).min(out) {
                let w = &weight[o * inp..(o + 1) * inp];
                for (i, dx) in partial.chunks_exact_mut(inp).enumerate() {
                    let gi = g[i * out + o];
                    if gi != 0.0 {
                        axpy(gi, w, dx);
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

/// `Σ a[k]·b[k]` with 32 independent partial sums (vectorised, and not limited by the latency
/// of one running sum); with AVX-512 where the CPU has it (the same operations in the same
/// order, so the same result).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F, checked just above.
        return unsafe { dot_avx512(a, b) };
    }
    dot_portable(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
    dot_portable(a, b)
}

#[inline(always)]
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 32];
    let (ca, cb) = (a.chunks_exact(32), b.chunks_exact(32));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for k in 0..32 {
            acc[k] += x[k] * y[k];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// `y += a·x`, with AVX-512 where the CPU has it (the same operations, so the same result).
fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        // SAFETY: the CPU has AVX-512F, checked just above.
        return unsafe { axpy_avx512(a, x, y) };
    }
    axpy_portable(a, x, y)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn axpy_avx512(a: f32, x: &[f32], y: &mut [f32]) {
    axpy_portable(a, x, y)
}

#[inline(always)]
fn axpy_portable(a: f32, x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
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

    #[test]
    fn adjoint_does_not_depend_on_the_thread_count() {
        let (n, out, inp) = (3, 5 * ADJOINT_CHUNK_ROWS + 17, 777);
        let w = values(out * inp, 5);
        let g = values(n * out, 6);
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| linear_input_adjoint(&g, n, &w, out))
        };
        let one = run(1);
        for threads in [2, 3, 7] {
            assert!(
                one.iter()
                    .zip(run(threads))
                    .all(|(a, b)| a.to_bits() == b.to_bits())
            );
        }
    }
}
