//! Showing results: colormaps and heatmap rendering (overlays, grids, PNG), plots and the
//! self-contained HTML report.

pub mod html;
pub mod plots;
pub mod colormap;
pub mod heatmap;

pub use colormap::Colormap;
pub use heatmap::Scale;
