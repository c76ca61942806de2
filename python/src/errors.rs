//! Library errors as Python exceptions: `relevance.Error` and one subclass per kind of problem,
//! carrying the message the command line prints after `error: `.

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;

create_exception!(
    relevance,
    Error,
    PyException,
    "Any error of the relevance engine."
);
create_exception!(
    relevance,
    ModelError,
    Error,
    "A model or model card that cannot be loaded."
);
create_exception!(
    relevance,
    MethodError,
    Error,
    "A method, option or target that cannot be run."
);
create_exception!(
    relevance,
    InputError,
    Error,
    "An input image, array or map that does not fit."
);

/// The exception of `e`: the first cause in its chain that names a kind, else `Error`; the
/// message is the whole chain as the command line prints it (`{e:#}`).
pub fn to_py(e: anyhow::Error) -> PyErr {
    let message = format!("{e:#}");
    for cause in e.chain() {
        if cause.is::<relevance::graph::import::ImportError>()
            || cause.is::<relevance::graph::GraphError>()
        {
            return ModelError::new_err(message);
        }
        if cause.is::<relevance::methods::MethodError>() {
            return MethodError::new_err(message);
        }
        if cause.is::<relevance::data::DataError>() || cause.is::<relevance::metrics::MetricError>()
        {
            return InputError::new_err(message);
        }
    }
    Error::new_err(message)
}

/// An input error with `message`.
pub fn input(message: impl Into<String>) -> PyErr {
    InputError::new_err(message.into())
}

/// Registers the exception classes on the module.
pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("Error", py.get_type::<Error>())?;
    m.add("ModelError", py.get_type::<ModelError>())?;
    m.add("MethodError", py.get_type::<MethodError>())?;
    m.add("InputError", py.get_type::<InputError>())?;
    Ok(())
}
