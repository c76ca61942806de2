//! Batches that fit the device: on a GPU, a batch asked for (`--batch`, the images of a chunk)
//! is an upper bound. Before a method runs, its rows are split into sub-batches so that the
//! largest activation of one pass fits the largest buffer the device binds
//! ([`crate::device::buffer_limit`]); if an allocation still fails (cubecl's out-of-memory
//! panics, [`crate::device::is_out_of_memory`]), the same work is retried at half the rows, down
//! to one row, before the out-of-memory error reaches the user.
//!
//! Why this changes no result: every method and metric here is per image at inference (no
//! batch statistics: BatchNorm runs on its running statistics, dropout is off), so a row's map
//! does not depend on which rows share its pass, and the sub-batches' results are concatenated
//! in order. SmoothGrad draws its noise row by row in order, independent of the pass size.
//!
//! On the CPU nothing is split (its memory is the process's, and our kernels tile themselves).

use std::cell::Cell;
use std::ops::Range;

use crate::device::{DeviceKind, buffer_limit, catch_out_of_memory};
use crate::graph::Model;
use crate::methods::MethodError;
use crate::methods::pass::forward_all;
use crate::tensor::T4;

thread_local! {
    /// The most rows one pass may hold on this thread (set while [`in_batches_that_fit`] runs
    /// work; `usize::MAX` otherwise). Methods that loop over many rows read it through
    /// [`rows_per_pass`].
    static ROW_CAP: Cell<usize> = const { Cell::new(usize::MAX) };
}

/// The rows a method's own loop puts in one pass: its `batch`, lowered to what fits the device
/// while [`in_batches_that_fit`] runs it. At least 1.
pub fn rows_per_pass(batch: usize) -> usize {
    batch.min(ROW_CAP.with(Cell::get)).max(1)
}

/// The most rows of `row_bytes` each whose tensor stays within `limit` bytes:
/// `⌊limit / row_bytes⌋`, at least 1 (one row that does not fit is left to fail with the
/// out-of-memory error, which nothing smaller can avoid).
pub fn rows_that_fit(limit: u64, row_bytes: u64) -> usize {
    usize::try_from(limit / row_bytes.max(1))
        .unwrap_or(usize::MAX)
        .max(1)
}

/// Rows `0..n` in consecutive ranges of at most `rows` (the last one shorter).
pub fn sub_batches(n: usize, rows: usize) -> Vec<Range<usize>> {
    let rows = rows.max(1);
    (0..n)
        .step_by(rows)
        .map(|start| start..(start + rows).min(n))
        .collect()
}

/// Bytes of the largest tensor one row of `x` makes in a forward pass of `model` (every node's
/// output kept, as the backward passes keep them): one pass of `x`'s first row, read by shape
/// only, so nothing is copied to the host.
pub fn largest_row_bytes(model: &Model, x: &T4) -> Result<u64, MethodError> {
    let acts = forward_all(model, &x.clone().narrow(0, 0, 1))?;
    let largest = acts
        .values
        .iter()
        .flatten()
        .map(|t| t.dims().iter().product::<usize>())
        .chain([x.dims()[1..].iter().product::<usize>()])
        .max()
        .unwrap_or(0);
    Ok(largest as u64 * size_of::<f32>() as u64)
}

/// The bytes per row of a model's largest activation ([`largest_row_bytes`]), measured once per
/// input shape and kept, so a method or scorer called chunk after chunk runs the probe pass
/// once.
#[derive(Debug, Default)]
pub struct RowBytes(std::sync::Mutex<Option<([usize; 3], u64)>>);

impl RowBytes {
    /// [`largest_row_bytes`] of `model` on rows shaped like `x`'s, measured on first use.
    pub fn of(&self, model: &Model, x: &T4) -> Result<u64, MethodError> {
        let [_, c, h, w] = x.dims();
        let mut cached = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((shape, bytes)) = *cached
            && shape == [c, h, w]
        {
            return Ok(bytes);
        }
        let bytes = largest_row_bytes(model, x)?;
        *cached = Some(([c, h, w], bytes));
        Ok(bytes)
    }
}

/// Whether all rows of `x` fit one pass on the run's device (always on the CPU).
pub fn fits_in_one_pass(model: &Model, row_bytes: &RowBytes, x: &T4) -> Result<bool, MethodError> {
    let Some(limit) = buffer_limit().filter(|_| !crate::device::is_cpu(&x.device())) else {
        return Ok(true);
    };
    Ok(rows_that_fit(limit, row_bytes.of(model, x)?) >= x.dims()[0])
}

/// Runs `work(rows, x[rows])` over the rows of `x` (`[N, C, H, W]`) in sub-batches that fit
/// the run's device and returns the sub-batches' results in order; `method_batch` is the rows per pass of the
/// method's own loop (`batch` of Integrated Gradients, SmoothGrad, occlusion, Score-CAM; 0 for
/// a method without one), lowered the same way through [`rows_per_pass`].
///
/// Steps: (1) on the CPU, one call on all of `x`; (2) on a GPU, the rows per pass that fit the
/// device's buffer limit from [`largest_row_bytes`] ([`rows_that_fit`]); (3) `work` on each
/// sub-batch with [`rows_per_pass`] capped there; (4) where an allocation still fails, all of
/// it again at half the rows, down to 1, after which the out-of-memory panic goes on to the
/// caller's [`catch_out_of_memory`]. Each lowering prints one line on stderr naming `label`
/// (once per process for the same line).
pub fn in_batches_that_fit<P, E: From<MethodError>>(
    model: &Model,
    row_bytes: &RowBytes,
    x: &T4,
    method_batch: usize,
    label: &str,
    mut work: impl FnMut(Range<usize>, &T4) -> Result<P, E>,
) -> Result<Vec<P>, E> {
    let n = x.dims()[0];
    let Some(limit) = buffer_limit().filter(|_| !crate::device::is_cpu(&x.device())) else {
        return Ok(vec![work(0..n, x)?]);
    };
    let requested = n.max(method_batch).max(1);
    let row_bytes = row_bytes.of(model, x)?;
    let mut rows = rows_that_fit(limit, row_bytes).min(requested);
    if rows < requested {
        note_once(format!(
            "note: {label}: {rows} rows per pass instead of {requested}: the largest activation \
             ({} per row) must fit the largest buffer the device binds ({})",
            mib(row_bytes),
            mib(limit)
        ));
    }
    loop {
        let attempt = catch_out_of_memory(DeviceKind::Gpu, "", || {
            with_row_cap(rows, || {
                sub_batches(n, rows)
                    .into_iter()
                    .map(|r| {
                        let rows = x.clone().narrow(0, r.start, r.len());
                        work(r, &rows)
                    })
                    .collect::<Result<Vec<_>, E>>()
            })
        });
        match attempt {
            Ok(result) => return result,
            Err(oom) if rows > 1 => {
                note_once(format!(
                    "note: {label}: out of device memory at {rows} rows per pass ({}); \
                     retrying at {}",
                    oom.detail,
                    rows / 2
                ));
                rows /= 2;
            }
            // One row does not fit: the caller's guard gives the one-line error.
            Err(oom) => std::panic::resume_unwind(Box::new(oom.detail)),
        }
    }
}

/// Runs `work` with [`rows_per_pass`] capped at `rows` on this thread (the previous cap back
/// afterwards, also when `work` panics).
fn with_row_cap<T>(rows: usize, work: impl FnOnce() -> T) -> T {
    struct Restore(usize);
    impl Drop for Restore {
        fn drop(&mut self) {
            ROW_CAP.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(ROW_CAP.with(|c| c.replace(rows.min(c.get()))));
    work()
}

/// Prints `line` on stderr the first time it comes: a method called chunk after chunk lowers
/// its batch the same way each time and says so once.
fn note_once(line: String) {
    static SAID: std::sync::Mutex<Option<std::collections::HashSet<String>>> =
        std::sync::Mutex::new(None);
    let mut said = SAID.lock().unwrap_or_else(|p| p.into_inner());
    if said
        .get_or_insert_with(Default::default)
        .insert(line.clone())
    {
        eprintln!("{line}");
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_row_cap_applies_inside_and_is_restored_after_a_panic() {
        assert_eq!(rows_per_pass(16), 16);
        assert_eq!(with_row_cap(5, || rows_per_pass(16)), 5);
        assert_eq!(with_row_cap(5, || rows_per_pass(3)), 3);
        // Nested caps keep the smaller one.
        assert_eq!(with_row_cap(5, || with_row_cap(9, || rows_per_pass(16))), 5);
        let _ = std::panic::catch_unwind(|| with_row_cap(2, || panic!("inside")));
        assert_eq!(rows_per_pass(16), 16);
        assert_eq!(rows_per_pass(0), 1);
    }
}
