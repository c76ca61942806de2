//! What a convolution does with each output value before it stores it. LRP rules follow their
//! modified convolutions with an element-wise step — `s = R / stabilize(z')` after the forward
//! map, `a ⊙ (W'ᵀ s)` after the adjoint — and as separate passes those read and write every
//! activation once more (VGG-16: ≈ 10 M values per pass); done where the kernel writes its
//! output rows, while they are in cache, they cost nothing extra in memory traffic.

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
        }
    }
}
