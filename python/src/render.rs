//! `relevance.render.overlay`: a map drawn over a picture as `relevance explain` draws its PNGs.

use numpy::{PyArrayDyn, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::prelude::*;
use relevance::MapStyle;
use relevance::report::Colormap;
use relevance::report::heatmap::map_overlay;

use crate::arrays::{image_of, to_numpy};
use crate::errors::input;

/// `map` (`[H, W]` or `[C, H, W]`) over `image` (uint8 `[H, W]` or `[H, W, 3]`) as an RGB
/// uint8 array `[H, W, 3]`; `style` is `signed`, `magnitude` or `unit`.
#[pyfunction]
#[pyo3(signature = (image, map, style = "signed", alpha = 0.7, colormap = None))]
pub fn overlay<'py>(
    py: Python<'py>,
    image: PyReadonlyArrayDyn<'py, u8>,
    map: PyReadonlyArrayDyn<'py, f32>,
    style: &str,
    alpha: f32,
    colormap: Option<&str>,
) -> PyResult<Bound<'py, PyArrayDyn<u8>>> {
    let picture = image_of(&image)?;
    let style = match style {
        "signed" | "magnitude" | "unit" => MapStyle::from_name(style),
        other => {
            return Err(input(format!(
                "unknown style '{other}'; use signed, magnitude or unit"
            )));
        }
    };
    if !(0.0..=1.0).contains(&alpha) {
        return Err(input(format!("alpha must lie in [0, 1], got {alpha}")));
    }
    let colormap = colormap
        .map(|c| c.parse::<Colormap>().map_err(|e| input(e.to_string())))
        .transpose()?;
    let shape = map.shape().to_vec();
    let (channels, h, w) = match shape.as_slice() {
        [h, w] => (1, *h, *w),
        [c, h, w] => (*c, *h, *w),
        other => {
            return Err(input(format!(
                "map must be [H, W] or [C, H, W], got shape {other:?}"
            )));
        }
    };
    if (h, w) != (picture.height, picture.width) {
        return Err(input(format!(
            "map is {h}×{w} but the image is {}×{}",
            picture.height, picture.width
        )));
    }
    let values: Vec<f32> = map.as_array().iter().copied().collect();
    let base = image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
        let i = (y as usize * w + x as usize) * picture.channels;
        let p = &picture.pixels[i..i + picture.channels];
        if picture.channels == 1 {
            image::Rgb([p[0]; 3])
        } else {
            image::Rgb([p[0], p[1], p[2]])
        }
    });
    let drawn = map_overlay(&base, &values, channels, style, colormap, alpha);
    to_numpy(py, drawn.into_raw(), &[h, w, 3])
}
