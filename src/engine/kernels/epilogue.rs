//! What a convolution does with each output value before it stores it. LRP rules follow their
//! modified convolutions with an element-wise step — `s = R / stabilize(z')` after the forward
//! map, `a ⊙ (W'ᵀ s)` after the adjoint — and as separate passes those read and write every
//! activation once more (VGG-16: ≈ 10 M values per pass); done where the kernel writes its
//! output rows, while they are in cache, they cost nothing extra in memory traffic. The
//! forward pass likewise writes a ReLU that follows a convolution as a second output.
//!
//! Contract of every kernel that takes an epilogue: each output index is passed to
//! [`Epilogue::apply`] exactly once, in runs that no two tasks share.

use std::marker::PhantomData;
use std::mem::MaybeUninit;

/// The element-wise step applied to a convolution's output `y` (row-major, flat index `i`).
#[derive(Clone, Copy, Debug, Default)]
pub enum Epilogue<'a> {
    /// Store `y`.
    #[default]
    Store,
    /// Store [`stabilized_quotient`]`(r[i], y, ε)` (as `crate::methods::lrp::kernel::
    /// stabilized_ratio` does for whole tensors).
    Ratio {
        /// `r`, shaped like the output.
        numerator: &'a [f32],
        /// `ε`.
        epsilon: f32,
    },
    /// Store `a[i] · y`.
    Product {
        /// `a`, shaped like the output.
        factor: &'a [f32],
    },
    /// Store `y`, and [`relu`]`(y)` at index `i` of a second output.
    ReluCopy {
        /// The second output, as long as the first.
        relu: SecondOutput<'a>,
    },
    /// Store [`relu`]`(y)` in place of `y`.
    Relu,
}

/// `max(y, 0)` with NaN passed through, as torch's and burn's ReLU.
#[inline(always)]
pub fn relu(y: f32) -> f32 {
    if y.is_nan() || y > 0.0 { y } else { 0.0 }
}

/// A second, uninitialised output that a kernel's tasks fill through [`Epilogue::apply`]: by
/// the epilogue contract (module docs) every element is written once and no two tasks write
/// the same element.
#[derive(Clone, Copy, Debug)]
pub struct SecondOutput<'a> {
    ptr: *mut MaybeUninit<f32>,
    len: usize,
    _buffer: PhantomData<&'a mut [MaybeUninit<f32>]>,
}

// SAFETY: tasks write disjoint runs of the buffer (the epilogue contract), and the buffer
// outlives the kernel call (the lifetime `'a`).
unsafe impl Send for SecondOutput<'_> {}
// SAFETY: as above.
unsafe impl Sync for SecondOutput<'_> {}

impl<'a> SecondOutput<'a> {
    /// Wraps `buffer`, to be filled by one kernel call.
    pub fn new(buffer: &'a mut [MaybeUninit<f32>]) -> Self {
        SecondOutput {
            ptr: buffer.as_mut_ptr(),
            len: buffer.len(),
            _buffer: PhantomData,
        }
    }
}

/// `r / (z + ε)` where `z ≥ 0` (zero included), `r / (z − ε)` where `z < 0`: zennit's
/// `stabilize` and the division after it, per element (every LRP rule's `R / z'`).
#[inline(always)]
pub fn stabilized_quotient(r: f32, z: f32, epsilon: f32) -> f32 {
    r / (z + if z < 0.0 { -epsilon } else { epsilon })
}

impl Epilogue<'_> {
    /// Whether the step leaves the output as it is.
    pub fn is_store(&self) -> bool {
        matches!(self, Epilogue::Store)
    }

    /// Whether the step's operand covers an output of `len` values.
    pub fn fits(&self, len: usize) -> bool {
        match self {
            Epilogue::Store => true,
            Epilogue::Ratio { numerator, .. } => numerator.len() == len,
            Epilogue::Product { factor } => factor.len() == len,
            Epilogue::ReluCopy { relu } => relu.len == len,
            Epilogue::Relu => true,
        }
    }

    /// Prefetches the step's operand for the outputs `first..first + len` (see
    /// [`super::prefetch`]); nothing for steps without one.
    #[inline(always)]
    pub fn prefetch_operand(&self, first: usize, len: usize) {
        match *self {
            Epilogue::Ratio { numerator: v, .. } | Epilogue::Product { factor: v } => {
                super::prefetch::read(&v[first..first + len])
            }
            Epilogue::Store | Epilogue::ReluCopy { .. } | Epilogue::Relu => {}
        }
    }

    /// Applies the step to the outputs `first..first + run.len()`, in place.
    #[inline(always)]
    pub fn apply(&self, first: usize, run: &mut [f32]) {
        match *self {
            Epilogue::Store => {}
            Epilogue::Ratio { numerator, epsilon } => {
                let r = &numerator[first..first + run.len()];
                for (y, &r) in run.iter_mut().zip(r) {
                    *y = stabilized_quotient(r, *y, epsilon);
                }
            }
            Epilogue::Product { factor } => {
                let a = &factor[first..first + run.len()];
                for (y, &a) in run.iter_mut().zip(a) {
                    *y *= a;
                }
            }
            Epilogue::Relu => run.iter_mut().for_each(|y| *y = relu(*y)),
            Epilogue::ReluCopy { relu: out } => {
                assert!(first + run.len() <= out.len, "second output size");
                // SAFETY: inside the buffer (checked just above); this run is written by this
                // call alone (the epilogue contract), and the buffer lives for `'a`.
                let dst = unsafe { std::slice::from_raw_parts_mut(out.ptr.add(first), run.len()) };
                for (d, &y) in dst.iter_mut().zip(run.iter()) {
                    d.write(relu(y));
                }
            }
        }
    }
}
