//! Explanation maps → pictures: one plane per map (by [`MapStyle`]), scaled into `[0, 1]`
//! (symmetrically around zero for signed maps), coloured, laid over the input image, arranged in
//! grids and encoded as PNG.

use std::path::Path;

use image::{Rgb, RgbImage};

use super::colormap::Colormap;
use crate::graph::ModelCard;
use crate::methods::MapStyle;

/// How the magnitude that maps to the ends of the colormap is chosen for signed and magnitude
/// maps (CAMs are already in `[0, 1]`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    /// The largest magnitude.
    Max,
    /// A percentile (0–100) of the magnitudes, so a few extreme pixels do not wash out the rest
    /// (Captum's `visualize_image_attr` clips at the 98th by default).
    Percentile(f32),
}

impl Default for Scale {
    fn default() -> Self {
        Scale::Percentile(99.5)
    }
}

/// One `h × w` plane from a `[C, H, W]` map: the channel sum for [`MapStyle::Signed`],
/// `max_c |v|` for [`MapStyle::Magnitude`], the first channel for [`MapStyle::Unit`].
pub fn plane(map: &[f32], channels: usize, style: MapStyle) -> Vec<f32> {
    let p = map.len() / channels.max(1);
    let ch = |c: usize| &map[c * p..(c + 1) * p];
    match style {
        MapStyle::Unit => ch(0).to_vec(),
        MapStyle::Signed => (0..p)
            .map(|i| (0..channels).map(|c| ch(c)[i]).sum())
            .collect(),
        MapStyle::Magnitude => (0..p)
            .map(|i| (0..channels).map(|c| ch(c)[i].abs()).fold(0.0, f32::max))
            .collect(),
    }
}

/// The magnitude that `scale` picks from `values` (`|v|`), at least the smallest positive float.
pub fn scale_of(values: &[f32], scale: Scale) -> f32 {
    let s = match scale {
        Scale::Max => values.iter().map(|v| v.abs()).fold(0.0, f32::max),
        Scale::Percentile(p) => {
            let mut mags: Vec<f32> = values
                .iter()
                .map(|v| v.abs())
                .filter(|v| v.is_finite())
                .collect();
            if mags.is_empty() {
                return f32::MIN_POSITIVE;
            }
            mags.sort_by(f32::total_cmp);
            let rank = ((p.clamp(0.0, 100.0) / 100.0) * (mags.len() - 1) as f32).round() as usize;
            mags[rank]
        }
    };
    s.max(f32::MIN_POSITIVE)
}

/// Values of a plane mapped into `[0, 1]`: signed maps symmetrically (`0.5 + v / 2s`, zero at
/// the centre), magnitudes as `|v| / s`, unit maps clamped.
pub fn normalise(values: &[f32], style: MapStyle, scale: Scale) -> Vec<f32> {
    match style {
        MapStyle::Unit => values.iter().map(|v| v.clamp(0.0, 1.0)).collect(),
        MapStyle::Signed => {
            let s = scale_of(values, scale);
            values
                .iter()
                .map(|v| (0.5 + 0.5 * v / s).clamp(0.0, 1.0))
                .collect()
        }
        MapStyle::Magnitude => {
            let s = scale_of(values, scale);
            values
                .iter()
                .map(|v| (v.abs() / s).clamp(0.0, 1.0))
                .collect()
        }
    }
}

/// The colormap a style is drawn with by default: `bwr` for signed maps, `inferno` otherwise.
pub fn default_colormap(style: MapStyle) -> Colormap {
    match style {
        MapStyle::Signed => Colormap::Bwr,
        MapStyle::Magnitude | MapStyle::Unit => Colormap::Inferno,
    }
}

/// A `w × h` picture of normalised values.
pub fn colourise(values01: &[f32], width: u32, height: u32, cmap: Colormap) -> RgbImage {
    let lut = cmap.lut();
    RgbImage::from_fn(width, height, |x, y| {
        let v = values01[(y * width + x) as usize];
        Rgb(lut[(v.clamp(0.0, 1.0) * 255.0).round() as usize])
    })
}

/// The map laid over `base`: each pixel blends the base with the map's colour by
/// `alpha · strength`, where the strength is the normalised value for unsigned maps and the
/// distance from the centre, `|2v − 1|`, for signed maps, so that pixels without evidence show
/// the image.
pub fn overlay(
    base: &RgbImage,
    values01: &[f32],
    style: MapStyle,
    cmap: Colormap,
    alpha: f32,
) -> RgbImage {
    let lut = cmap.lut();
    let (w, h) = base.dimensions();
    RgbImage::from_fn(w, h, |x, y| {
        let v = values01[(y * w + x) as usize].clamp(0.0, 1.0);
        let colour = lut[(v * 255.0).round() as usize];
        let strength = match style {
            MapStyle::Signed => (2.0 * v - 1.0).abs(),
            MapStyle::Magnitude | MapStyle::Unit => v,
        };
        let a = (alpha * strength).clamp(0.0, 1.0);
        let px = base.get_pixel(x, y).0;
        Rgb([0, 1, 2].map(|c| ((1.0 - a) * px[c] as f32 + a * colour[c] as f32).round() as u8))
    })
}

/// Opacity of the heatmap in `relevance explain`'s overlays unless `--alpha` says otherwise
/// (also the opacity `relevance review` draws a study's cached maps with).
pub const DEFAULT_ALPHA: f32 = 0.7;

/// A method's map (`[channels, H, W]` values as it returned them) drawn over `base` as
/// `relevance explain` draws it: reduced to one plane by its style ([`plane`]), normalised
/// ([`normalise`], default scale), coloured with `colormap` for unsigned maps (signed maps always
/// use the diverging default) and blended by [`overlay`].
pub fn map_overlay(
    base: &RgbImage,
    values: &[f32],
    channels: usize,
    style: MapStyle,
    colormap: Option<Colormap>,
    alpha: f32,
) -> RgbImage {
    let cmap = match (style, colormap) {
        (MapStyle::Signed, _) | (_, None) => default_colormap(style),
        (_, Some(cm)) => cm,
    };
    let plane = plane(values, channels, style);
    let norm = normalise(&plane, style, Scale::default());
    overlay(base, &norm, style, cmap, alpha)
}

/// The picture a model sees: a preprocessed `[C, H, W]` input mapped back to 8-bit pixels by
/// inverting the card's normalisation (grey inputs shown grey).
pub fn input_image(
    x: &[f32],
    channels: usize,
    height: u32,
    width: u32,
    card: &ModelCard,
) -> RgbImage {
    let affine = card.normalization.affine(channels);
    let p = (height * width) as usize;
    RgbImage::from_fn(width, height, |x0, y0| {
        let i = (y0 * width + x0) as usize;
        let px = |c: usize| {
            let (scale, shift) = affine[c];
            ((x[c * p + i] - shift) / scale).round().clamp(0.0, 255.0) as u8
        };
        if channels >= 3 {
            Rgb([px(0), px(1), px(2)])
        } else {
            let g = px(0);
            Rgb([g, g, g])
        }
    })
}

/// Tiles arranged in rows (row `r`, column `c` is `rows[r][c]`), `pad` white pixels between and
/// around them; each cell is as large as the largest tile.
pub fn grid(rows: &[Vec<RgbImage>], pad: u32) -> RgbImage {
    let cell_w = rows.iter().flatten().map(|t| t.width()).max().unwrap_or(1);
    let cell_h = rows.iter().flatten().map(|t| t.height()).max().unwrap_or(1);
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0) as u32;
    let width = pad + cols * (cell_w + pad);
    let height = pad + rows.len() as u32 * (cell_h + pad);
    let mut out = RgbImage::from_pixel(width.max(1), height.max(1), Rgb([255, 255, 255]));
    for (r, row) in rows.iter().enumerate() {
        for (c, tile) in row.iter().enumerate() {
            let (x0, y0) = (
                pad + c as u32 * (cell_w + pad),
                pad + r as u32 * (cell_h + pad),
            );
            for (x, y, px) in tile.enumerate_pixels() {
                out.put_pixel(x0 + x, y0 + y, *px);
            }
        }
    }
    out
}

/// PNG bytes of a picture.
pub fn png_bytes(img: &RgbImage) -> Result<Vec<u8>, image::ImageError> {
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Png)?;
    Ok(buf.into_inner())
}

/// Writes a picture as PNG, atomically.
pub fn write_png(path: &Path, img: &RgbImage) -> std::io::Result<()> {
    let bytes = png_bytes(img).map_err(std::io::Error::other)?;
    crate::io::write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_maps_are_scaled_symmetrically() {
        let v = [-2.0, 0.0, 1.0, 4.0];
        let n = normalise(&v, MapStyle::Signed, Scale::Max);
        assert_eq!(n, vec![0.25, 0.5, 0.625, 1.0]);
        // Zero relevance leaves the image untouched in an overlay.
        let base = RgbImage::from_pixel(4, 1, Rgb([10, 20, 30]));
        let o = overlay(&base, &n, MapStyle::Signed, Colormap::Bwr, 0.8);
        assert_eq!(o.get_pixel(1, 0).0, [10, 20, 30]);
        assert_eq!(o.get_pixel(3, 0).0, [round(10.0 * 0.2 + 255.0 * 0.8), 4, 6]);
    }

    fn round(v: f32) -> u8 {
        v.round() as u8
    }

    #[test]
    fn planes_follow_the_style() {
        // two channels, two pixels
        let map = [1.0, -3.0, -2.0, 2.0];
        assert_eq!(plane(&map, 2, MapStyle::Signed), vec![-1.0, -1.0]);
        assert_eq!(plane(&map, 2, MapStyle::Magnitude), vec![2.0, 3.0]);
        let m = normalise(
            &[0.0, 1.0, 2.0, 3.0, 100.0],
            MapStyle::Magnitude,
            Scale::Percentile(75.0),
        );
        assert_eq!(m, vec![0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0, 1.0]);
    }

    #[test]
    fn input_image_inverts_the_normalisation_and_grid_places_tiles() {
        let card = ModelCard::default();
        let affine = card.normalization.affine(3);
        let pixels = [200.0f32, 10.0, 0.0];
        let x: Vec<f32> = (0..3)
            .map(|c| pixels[c] * affine[c].0 + affine[c].1)
            .collect();
        let img = input_image(&x, 3, 1, 1, &card);
        assert_eq!(img.get_pixel(0, 0).0, [200, 10, 0]);
        let g = grid(&[vec![img.clone(), img.clone()], vec![img]], 2);
        assert_eq!(g.dimensions(), (2 + 2 * 3, 2 + 2 * 3));
        assert_eq!(g.get_pixel(2, 2).0, [200, 10, 0]);
        assert_eq!(g.get_pixel(5, 5).0, [255, 255, 255]);
    }
}
