//! The `relevance` Python package's native module (`relevance._native`): a thin binding over
//! the library's public API. Everything it computes, the library computes for the command line
//! too; this crate converts arrays and errors and releases the GIL.

mod arrays;
mod errors;
mod metrics;
mod model;
mod render;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    errors::register(m)?;
    m.add_class::<model::PyModel>()?;
    m.add_function(wrap_pyfunction!(model::load, m)?)?;
    m.add_function(wrap_pyfunction!(model::load_onnx_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(model::init, m)?)?;
    m.add_function(wrap_pyfunction!(render::overlay, m)?)?;
    m.add_function(wrap_pyfunction!(metrics::insertion_deletion, m)?)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
