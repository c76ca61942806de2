//! A stop request from the program hosting the library (the Python package turns Ctrl-C into
//! one): studies check it before each chunk of images and end with an error, so a long study
//! can be interrupted between images; the resume caches keep the chunks already done.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::studies::StudyError;

/// Set by [`request_stop`]; process-wide, so it stops every study running in the process.
static STOP: AtomicBool = AtomicBool::new(false);

/// Asks the running studies to stop at their next chunk of images.
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

/// Withdraws a stop request (once the interrupted study has returned).
pub fn clear_stop() {
    STOP.store(false, Ordering::SeqCst);
}

/// An error when a stop was requested.
pub fn check_stop() -> Result<(), StudyError> {
    if STOP.load(Ordering::SeqCst) {
        return Err(StudyError::Invalid("interrupted".into()));
    }
    Ok(())
}
