//! The `relevance` Python package's native module (`relevance._native`): a thin binding over
//! the library's public API. Everything it computes, the library computes for the command line
//! too; this crate converts arrays and errors and releases the GIL.

mod arrays;
mod concepts;
mod errors;
mod measures;
mod metrics;
mod model;
mod perturbation;
mod randomisation;
mod render;
mod studies;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    keep_freed_memory_unless_asked_not_to();
    errors::register(m)?;
    m.add_class::<model::PyModel>()?;
    m.add_function(wrap_pyfunction!(model::load, m)?)?;
    m.add_function(wrap_pyfunction!(model::load_onnx_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(model::init, m)?)?;
    m.add_function(wrap_pyfunction!(render::overlay, m)?)?;
    m.add_function(wrap_pyfunction!(metrics::insertion_deletion, m)?)?;
    m.add_function(wrap_pyfunction!(perturbation::pixel_flipping, m)?)?;
    m.add_function(wrap_pyfunction!(perturbation::region_perturbation, m)?)?;
    m.add_function(wrap_pyfunction!(measures::pointing_game, m)?)?;
    m.add_function(wrap_pyfunction!(measures::relevance_mass_accuracy, m)?)?;
    m.add_function(wrap_pyfunction!(measures::relevance_rank_accuracy, m)?)?;
    m.add_function(wrap_pyfunction!(measures::similarity, m)?)?;
    m.add_function(wrap_pyfunction!(measures::sparseness, m)?)?;
    m.add_function(wrap_pyfunction!(measures::complexity, m)?)?;
    m.add_function(wrap_pyfunction!(
        randomisation::model_parameter_randomisation,
        m
    )?)?;
    m.add_function(wrap_pyfunction!(studies::run_command, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}

/// The allocator setting the `relevance` binary makes at start ([`relevance::alloc::keep_freed_memory`]):
/// activation buffers come from the heap and stay mapped between calls, where glibc's defaults
/// would `mmap` each one afresh and page-fault through it on every call (ResNet-50 LRP at batch 8
/// was 10-15 % slower through Python without it). It is process-wide, so it also keeps the
/// memory of the notebook's own large arrays mapped after they are freed;
/// `RELEVANCE_KEEP_FREED_MEMORY=0` set before the import leaves glibc's defaults in place.
fn keep_freed_memory_unless_asked_not_to() {
    let declined = std::env::var_os("RELEVANCE_KEEP_FREED_MEMORY").is_some_and(|v| v == "0");
    if !declined {
        relevance::alloc::keep_freed_memory();
    }
}
