//! Pictures of explanations: colormaps and heatmap rendering (overlays on the input, grids, PNG).

pub mod colormap;
pub mod heatmap;

pub use colormap::Colormap;
pub use heatmap::Scale;
