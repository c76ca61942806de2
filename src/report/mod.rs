//! Showing results: the self-contained HTML report and plots.

pub mod html;
pub mod plots;
