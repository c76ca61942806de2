//! Showing results: colormaps and heatmap rendering (overlays, grids, PNG), plots and the
//! self-contained HTML report.

pub mod build;
pub mod colormap;
pub mod dataset;
pub mod heatmap;
pub mod html;
pub mod plots;
pub mod review;
pub mod svg;

pub use colormap::Colormap;
pub use heatmap::Scale;
