//! `relevance review`: domain experts rate explanations in a local web page.
//!
//! The items are the maps of the `explain.json` records below a run folder ([`items`]) and the
//! cached maps of a study folder over the input images of the data folder the user names
//! ([`study_items`]); each is known by a content hash, never by a path, so no request reaches
//! the file system outside those folders. Answers go to a SQLite database ([`store`]), one row per answer in its own
//! transaction, in WAL mode so a killed server loses nothing that was acknowledged. The server
//! ([`server`]) renders every page on the server with all text HTML-escaped ([`page`]);
//! [`summary`] turns the answers into the thesis's table (counts and % correct with Wilson
//! intervals per model × method × class) and the inter-rater agreement ([`stats`]: Cohen's κ,
//! Fleiss' κ, Krippendorff's α).

pub mod items;
pub mod page;
pub mod server;
pub mod stats;
pub mod store;
pub mod study_items;
pub mod summary;

use std::path::PathBuf;

/// What went wrong in a review command: the file and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    /// A file (run folder, record, database, output) that could not be used.
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A request or option that is not acceptable (no file involved).
    #[error("{0}")]
    Invalid(String),
}

impl ReviewError {
    pub(crate) fn file(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> ReviewError {
        ReviewError::File {
            path: path.into(),
            message: message.to_string(),
        }
    }
}

/// The four answers a rater can give, in the order the page offers them (keys c, p, w, u).
pub const ANSWERS: [&str; 4] = ["correct", "partly", "wrong", "unsure"];
