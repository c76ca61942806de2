//! A study's figures: plots as PNG + SVG, pictures and grids as PNG, each with its entry in
//! `figures.json`. File names derived from labels (models, methods as the user typed them) go
//! through [`crate::io::safe_component`] so they are safe on disk.

use std::path::Path;

use super::super::StudyError;
use super::outputs::write_text;
use crate::io::safe_component;
use crate::methods::MapStyle;
use crate::report::Colormap;
use crate::report::plots::Plot;

pub use crate::records::Figure;

/// A file stem for a figure about `label` (a model or a method as typed): `<prefix>-<label>`
/// made file-name safe, so `lrp:epsilon(skip=split)` cannot escape or break the folder.
pub fn figure_stem(prefix: &str, label: &str) -> String {
    safe_component(&format!(
        "{prefix}-{}",
        crate::methods::spec::label_file_key(label)
    ))
}

/// Renders `plot` as `<stem>.png` and `<stem>.svg` in `out` and returns its figure entry.
pub fn save_plot(out: &Path, stem: &str, plot: &Plot, caption: &str) -> Result<Figure, StudyError> {
    let png = out.join(format!("{stem}.png"));
    let svg = out.join(format!("{stem}.svg"));
    let bytes = plot.png().map_err(|e| StudyError::file(&png, e))?;
    crate::io::write_atomic(&png, &bytes).map_err(|e| StudyError::file(&png, e))?;
    write_text(&svg, &plot.svg().map_err(|e| StudyError::file(&svg, e))?)?;
    Ok(Figure::new(
        format!("{stem}.png"),
        Some(format!("{stem}.svg")),
        plot.title.clone(),
        caption.into(),
    ))
}

/// Writes a picture as `<stem>.png` into `out` and returns its figure entry.
pub fn save_picture(
    out: &Path,
    stem: &str,
    img: &image::RgbImage,
    title: &str,
    caption: &str,
) -> Result<Figure, StudyError> {
    let file = format!("{stem}.png");
    let path = out.join(&file);
    crate::report::heatmap::write_png(&path, img).map_err(|e| StudyError::file(&path, e))?;
    Ok(Figure::new(file, None, title.into(), caption.into()))
}

/// Writes `figures.json`.
pub fn write_figures(out: &Path, figures: &[Figure]) -> Result<(), StudyError> {
    let path = out.join("figures.json");
    crate::records::write_record(&path, &figures).map_err(|e| StudyError::file(&path, e.message))
}

/// `img` with a vertical colour bar of `cmap` (low at the bottom) on its right.
pub fn with_colour_bar(img: &image::RgbImage, cmap: Colormap) -> image::RgbImage {
    let (w, h) = img.dimensions();
    let bar = (w / 10).max(4);
    let gap = 2;
    let lut = cmap.lut();
    image::RgbImage::from_fn(w + gap + bar, h, |x, y| {
        if x < w {
            *img.get_pixel(x, y)
        } else if x < w + gap {
            image::Rgb([255, 255, 255])
        } else {
            let t = 1.0 - y as f32 / (h.max(2) - 1) as f32;
            image::Rgb(lut[(t * 255.0).round() as usize])
        }
    })
}

/// A map laid over its image for a figure: normalised per map by its style (signed maps
/// symmetrically around zero at the 99.5th percentile of |v|), enlarged to at least 96 pixels a
/// side (nearest neighbour) so small inputs stay visible.
pub fn overlay_tile(base: &image::RgbImage, plane: &[f32], style: MapStyle) -> image::RgbImage {
    use crate::report::heatmap::{default_colormap, normalise, overlay};
    let norm = normalise(plane, style, crate::report::heatmap::Scale::default());
    enlarge(&overlay(base, &norm, style, default_colormap(style), 0.7))
}

/// Enlarges a picture by an integer factor to at least 96 pixels a side (nearest neighbour).
pub fn enlarge(img: &image::RgbImage) -> image::RgbImage {
    let (w, h) = img.dimensions();
    let k = 96u32.div_ceil(w.min(h).max(1)).max(1);
    image::imageops::resize(img, w * k, h * k, image::imageops::FilterType::Nearest)
}

/// Writes a grid of tiles (4 pixels apart) as `<stem>.png` and returns its figure entry.
pub fn write_grid(
    out: &Path,
    stem: &str,
    rows: &[Vec<image::RgbImage>],
    title: &str,
    caption: &str,
) -> Result<Figure, StudyError> {
    let picture = crate::report::heatmap::grid(rows, 4);
    save_picture(out, stem, &picture, title, caption)
}
