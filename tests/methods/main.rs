//! Explanation methods: gradients, CAMs, LRP and CRP against their reference libraries' fixtures.
//!
//! One test binary per layer, so a clean `cargo test` links the library a few times rather
//! than once per file; each module is one former test file.

#[path = "../lrp_common/mod.rs"]
mod lrp_common;
#[path = "../methods_common/mod.rs"]
mod methods_common;

mod crp_atlas;
mod crp_graph;
mod crp_parity;
mod guided_silu;
mod lrp_brain_mri;
mod lrp_canonize;
mod lrp_checkerboard;
mod lrp_conservation;
mod lrp_parity;
mod lrp_rules;
mod method_specs;
mod methods_cam;
mod methods_gradient;
mod methods_real_data;
mod methods_render;
