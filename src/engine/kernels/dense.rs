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

/// `dx[i, f] = Σ_o g[i, o] · W[o, f]` for `g: [N, O]`, `W: [O, F]`, returning `[N, F]`. Threads
/// own column blocks of `dx`; rows `o` with `g[·, o] = 0` for every image are skipped.
///
/// # Panics
/// If sizes disagree.
pub fn linear_input_adjoint(g: &[f32], n: usize, weight: &[f32], out: usize) -> Vec<f32> {
    assert_eq!(g.len(), n * out, "signal size");
    let inp = weight.len() / out.max(1);
    assert_eq!(weight.len(), out * inp, "weight size");
    let live: Vec<usize> = (0..out)
        .filter(|&o| (0..n).any(|i| g[i * out + o] != 0.0))
        .collect();
    let threads = rayon::current_num_threads().max(1);
    let block = inp
        .div_ceil(4 * threads)
        .next_multiple_of(16)
        .clamp(16, 4 * SEGMENT);
    // Computed as [blocks][N][block] so each task owns one contiguous piece, then re-laid out.
    let blocks = inp.div_ceil(block);
    let mut pieces = vec![0.0f32; blocks * n * block];
    pieces
        .par_chunks_mut(n * block)
        .enumerate()
        .for_each(|(b, piece)| {
            let (f0, f1) = (b * block, ((b + 1) * block).min(inp));
            for &o in &live {
                let w = &weight[o * inp + f0..o * inp + f1];
                for (i, dx) in piece.chunks_exact_mut(block).enumerate() {
                    let gi = g[i * out + o];
                    if gi != 0.0 {
                        axpy(gi, w, &mut dx[..f1 - f0]);
                    }
                }
            }
        });
    let mut dx = vec![0.0f32; n * inp];
    for (b, piece) in pieces.chunks_exact(n * block).enumerate() {
        let (f0, f1) = (b * block, ((b + 1) * block).min(inp));
        for i in 0..n {
            dx[i * inp + f0..i * inp + f1].copy_from_slice(&piece[i * block..i * block + f1 - f0]);
        }
    }
    dx
}

/// `Σ a[k]·b[k]` with 32 independent partial sums (vectorised, and not limited by the latency
/// of one running sum).
fn dot(a: &[f32], b: &[f32]) -> f32 {
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

/// `y += a·x`.
fn axpy(a: f32, x: &[f32], y: &mut [f32]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += a * x;
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
        for (n, out, inp) in [(1, 7, 1000), (3, 70, 2085), (16, 5, 33), (2, 1, 4096)] {
            let x = values(n * inp, 1);
            let w = values(out * inp, 2);
            let b = values(out, 3);
            let y = linear(&x, n, &w, out, Some(&b));
            let mut g = values(n * out, 4);
            g[0] = 0.0; // a zero entry, and (n = 1) a skipped row
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
}
