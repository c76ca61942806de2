//! The studies from Python: `relevance.studies.<study>(...)` builds the study's command line and
//! runs it in-process through [`relevance::cli::run_embedded`] — the same parser, options and
//! study pipeline as `relevance <study>` —, without the GIL, turning Ctrl-C into a stop request
//! the study honours between chunks of images.

use std::time::Duration;

use pyo3::prelude::*;
use relevance::studies::toolkit::stop::{clear_stop, request_stop};

use crate::errors::to_py;

/// How often the waiting thread looks for Ctrl-C.
const SIGNAL_POLL: Duration = Duration::from_millis(50);

/// Runs `relevance <argv>` in this process; Ctrl-C (a pending `KeyboardInterrupt`) stops the
/// study at its next chunk of images and is raised once the study has returned.
#[pyfunction]
pub fn run_command(py: Python<'_>, argv: Vec<String>) -> PyResult<()> {
    let mut interrupt: Option<PyErr> = None;
    let result = py.detach(|| {
        std::thread::scope(|scope| {
            let worker = scope.spawn(|| relevance::cli::run_embedded(&argv));
            while !worker.is_finished() {
                std::thread::sleep(SIGNAL_POLL);
                if interrupt.is_none()
                    && let Err(e) = Python::attach(|py| py.check_signals())
                {
                    interrupt = Some(e);
                    request_stop();
                }
            }
            worker.join()
        })
    });
    if interrupt.is_some() {
        clear_stop();
    }
    match (interrupt, result) {
        (Some(e), _) => Err(e),
        (None, Ok(outcome)) => outcome.map_err(to_py),
        (None, Err(panic)) => std::panic::resume_unwind(panic),
    }
}
