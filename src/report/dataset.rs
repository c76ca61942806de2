//! The files of a data-set description (`relevance data info --describe OUT`): `describe.json`
//! (everything), `sizes.csv` and the bar chart `sizes.png`/`.svg` of the most frequent image
//! sizes, `channels.csv` (intensity range and mean per channel), `unreadable.csv` and one
//! montage `montage-<class>.png` per class.

use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};
use serde_json::json;

use super::heatmap::{grid, write_png};
use super::plots::{Chart, Plot};
use crate::data::DataError;
use crate::data::describe::Description;
use crate::data::image::Image;

/// Bars in the size chart; rarer sizes are summed into one "other" bar.
const SIZE_BARS: usize = 12;
/// Montage tiles per row.
const MONTAGE_COLUMNS: usize = 8;

/// Writes the description's files into `out` (created if missing) and returns their paths.
pub fn write_description(out: &Path, d: &Description) -> Result<Vec<PathBuf>, DataError> {
    std::fs::create_dir_all(out)
        .map_err(|e| DataError::file(out, format!("cannot create folder: {e}")))?;
    let mut written = Vec::new();
    let mut text = |name: &str, body: String| -> Result<(), DataError> {
        let path = out.join(name);
        crate::io::write_text_atomic(&path, &body)
            .map_err(|e| DataError::file(&path, e.to_string()))?;
        written.push(path);
        Ok(())
    };
    let montages = montage_files(d);
    text("sizes.csv", sizes_csv(d))?;
    text("channels.csv", channels_csv(d))?;
    text("unreadable.csv", unreadable_csv(d))?;
    text("describe.json", describe_json(d, &montages))?;
    written.extend(write_size_chart(out, d)?);
    for (m, file) in d.montages.iter().zip(&montages) {
        if m.tiles.is_empty() {
            continue;
        }
        let path =
            crate::io::child_path(out, file).map_err(|e| DataError::file(out, e.to_string()))?;
        write_png(&path, &montage(&m.tiles)).map_err(|e| DataError::file(&path, e.to_string()))?;
        written.push(path);
    }
    Ok(written)
}

/// `montage-<class>.png` per class, the class name made one safe file-name component.
fn montage_files(d: &Description) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    d.montages
        .iter()
        .map(|m| {
            let stem = crate::io::safe_component(&format!("montage-{}", m.class));
            format!("{}.png", crate::io::unique_name(stem, &mut seen))
        })
        .collect()
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn sizes_csv(d: &Description) -> String {
    let mut s = String::from("width,height,images\n");
    for c in &d.sizes {
        s += &format!("{},{},{}\n", c.width, c.height, c.images);
    }
    s
}

fn channels_csv(d: &Description) -> String {
    let mut s = String::from("channel,min,max,mean,pixels,images\n");
    for c in &d.channels {
        s += &format!(
            "{},{},{},{:.6},{},{}\n",
            c.channel, c.min, c.max, c.mean, c.pixels, c.images
        );
    }
    s
}

fn unreadable_csv(d: &Description) -> String {
    let mut s = String::from("path,reason\n");
    for u in &d.unreadable {
        s += &format!(
            "{},{}\n",
            csv_field(&u.path.display().to_string()),
            csv_field(&u.reason)
        );
    }
    s
}

fn describe_json(d: &Description, montages: &[String]) -> String {
    let classes: Vec<_> = d
        .classes
        .iter()
        .zip(&d.per_class)
        .zip(d.montages.iter().zip(montages))
        .map(|((name, n), (m, file))| {
            json!({
                "class": name,
                "images": n,
                "montage": (!m.tiles.is_empty()).then_some(file),
            })
        })
        .collect();
    let unreadable: Vec<_> = d
        .unreadable
        .iter()
        .map(|u| json!({"path": u.path.display().to_string(), "reason": u.reason}))
        .collect();
    let doc = json!({
        "images": d.images(),
        "classes": classes,
        "sizes": d.sizes,
        "formats": d.formats,
        "modes": d.modes,
        "channels": d.channels,
        "intensity_convention": "8-bit values as the models load them (grey: L; colour: R, G, B, \
            alpha dropped; 16-bit scaled to 8); mean over all pixels of all images with the channel",
        "unreadable": unreadable,
    });
    // A json! value of strings and numbers always serialises.
    serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
}

/// The bar chart of image sizes, most frequent first, as `sizes.png` and `sizes.svg`.
fn write_size_chart(out: &Path, d: &Description) -> Result<Vec<PathBuf>, DataError> {
    let mut bars: Vec<(String, f64)> = d
        .sizes
        .iter()
        .take(SIZE_BARS)
        .map(|c| (format!("{}×{}", c.width, c.height), c.images as f64))
        .collect();
    let rest: usize = d.sizes.iter().skip(SIZE_BARS).map(|c| c.images).sum();
    if rest > 0 {
        bars.push((
            format!("other ({} sizes)", d.sizes.len() - SIZE_BARS),
            rest as f64,
        ));
    }
    let plot = Plot::new(
        &format!("Image sizes ({} images)", d.images()),
        "width × height (pixels)",
        "images",
        Chart::Bars { bars },
    );
    let png = out.join("sizes.png");
    let svg = out.join("sizes.svg");
    let bytes = plot
        .png()
        .map_err(|e| DataError::file(&png, e.to_string()))?;
    crate::io::write_atomic(&png, &bytes).map_err(|e| DataError::file(&png, e.to_string()))?;
    let markup = plot
        .svg()
        .map_err(|e| DataError::file(&svg, e.to_string()))?;
    crate::io::write_text_atomic(&svg, &markup)
        .map_err(|e| DataError::file(&svg, e.to_string()))?;
    Ok(vec![png, svg])
}

/// Tiles in rows of [`MONTAGE_COLUMNS`], each centred on a white cell of the largest tile's size.
fn montage(tiles: &[Image]) -> RgbImage {
    let cell_w = tiles.iter().map(|t| t.width).max().unwrap_or(1) as u32;
    let cell_h = tiles.iter().map(|t| t.height).max().unwrap_or(1) as u32;
    let cells: Vec<RgbImage> = tiles.iter().map(|t| centred(t, cell_w, cell_h)).collect();
    let rows: Vec<Vec<RgbImage>> = cells
        .chunks(MONTAGE_COLUMNS)
        .map(<[RgbImage]>::to_vec)
        .collect();
    grid(&rows, 4)
}

fn centred(tile: &Image, w: u32, h: u32) -> RgbImage {
    let rgb = tile.with_channels(3);
    let mut cell = RgbImage::from_pixel(w, h, Rgb([255, 255, 255]));
    let (x0, y0) = ((w - rgb.width as u32) / 2, (h - rgb.height as u32) / 2);
    for (i, px) in rgb.pixels.chunks_exact(3).enumerate() {
        let (x, y) = ((i % rgb.width) as u32, (i / rgb.width) as u32);
        cell.put_pixel(x0 + x, y0 + y, Rgb([px[0], px[1], px[2]]));
    }
    cell
}
