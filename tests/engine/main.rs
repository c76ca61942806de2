//! The engine: CPU kernels against their definitions, gradient rules against autograd fixtures.
//!
//! One test binary per layer, so a clean `cargo test` links the library a few times rather
//! than once per file; each module is one former test file.

mod gradient_rules;
mod kernels;
