//! Running a piece of code compiled for the widest vector instructions the CPU has.
//!
//! The crate is built for baseline x86-64 (SSE2), so an element-wise loop runs 4 lanes wide on
//! a machine with 16 unless it is compiled inside a function with `#[target_feature]`. Inlined
//! code takes its caller's features — but a closure handed to a rayon task is its own function,
//! compiled for the baseline whatever function created it, so every task body that should
//! vectorise wide enters [`widest`] itself.

/// The widest vector instructions this CPU has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Simd {
    /// AVX-512F (16 floats).
    Avx512,
    /// AVX2 (8 floats).
    Avx2,
    /// The build's baseline (SSE2 on x86-64).
    Baseline,
}

/// Detects [`Simd`] (cached by the standard library's feature detection).
pub fn widest_simd() -> Simd {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Simd::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return Simd::Avx2;
        }
    }
    Simd::Baseline
}

/// `f()`, inlined into a function compiled for [`widest_simd`]: the same code and values (Rust
/// never fuses a separately written multiply and add into an FMA, whatever the target, so results
/// are bit-identical on every path), vectorised as wide as the machine allows. `f` should be an
/// `#[inline(always)]` closure whose loops call only `#[inline(always)]` functions, or the calls
/// stay outside and run at the baseline width.
#[inline(always)]
pub fn widest<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        fn avx512<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        #[target_feature(enable = "avx2")]
        fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        match widest_simd() {
            // SAFETY: the CPU has the feature.
            Simd::Avx512 => return unsafe { avx512(f) },
            // SAFETY: the CPU has the feature.
            Simd::Avx2 => return unsafe { avx2(f) },
            Simd::Baseline => {}
        }
    }
    f()
}
