//! NumPy arrays in and out. Inputs are read once into the engine's tensor (the only copy);
//! outputs hand the engine's buffer to NumPy without copying it.

use std::path::PathBuf;

use numpy::{PyArray, PyArrayDyn, PyReadonlyArrayDyn, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};
use relevance::ModelCard;
use relevance::data::image::{Image, check_tensor_dims, load_input, preprocess};
use relevance::tensor::{T4, from_vec};

use crate::errors::{input, to_py};

/// A batch for the model: a float32 array `[N, C, H, W]` already preprocessed, or a list of
/// image paths / 8-bit pixel arrays (`[H, W]` or `[H, W, C]`, as `numpy.asarray(pil_image)`)
/// preprocessed by the card exactly as `relevance explain` preprocesses its files.
pub fn batch(py: Python<'_>, x: &Bound<'_, PyAny>, card: &ModelCard) -> PyResult<T4> {
    if let Ok(array) = x.cast::<PyUntypedArray>() {
        return tensor(array, card);
    }
    if x.is_instance_of::<PyList>() || x.is_instance_of::<PyTuple>() {
        let items: Vec<Bound<'_, PyAny>> = x.try_iter()?.collect::<PyResult<_>>()?;
        if items.is_empty() {
            return Err(input("the list of inputs is empty"));
        }
        let rows = items
            .iter()
            .map(|item| one_input(py, item, card))
            .collect::<PyResult<Vec<T4>>>()?;
        return Ok(T4::cat(rows, 0));
    }
    Err(input(format!(
        "x must be a float32 array [N, C, H, W] or a list of image paths, got {}",
        x.get_type().name()?
    )))
}

/// A preprocessed float32 `[N, C, H, W]` array that fits the card.
fn tensor(array: &Bound<'_, PyUntypedArray>, card: &ModelCard) -> PyResult<T4> {
    let shape = array.shape().to_vec();
    let dims: [usize; 4] = shape.as_slice().try_into().map_err(|_| {
        let hint = if shape.len() == 3 {
            "; add a batch axis: x[None]"
        } else {
            ""
        };
        input(format!("x must be [N, C, H, W], got shape {shape:?}{hint}"))
    })?;
    let dtype = array.dtype().str()?.to_string();
    let Ok(values) = array.extract::<PyReadonlyArrayDyn<'_, f32>>() else {
        return Err(input(format!(
            "x must be float32, got {dtype}; convert it once with x.astype(numpy.float32)"
        )));
    };
    if dims[3] == card.channels && dims[1] != card.channels {
        return Err(input(format!(
            "x is {shape:?}, channels last; the model takes [N, {}, {}, {}]: pass x.transpose(0, 3, 1, 2)",
            card.channels, card.input_size[0], card.input_size[1]
        )));
    }
    check_tensor_dims(dims, card).map_err(input)?;
    // One copy into the engine's tensor, straight from the buffer when it is contiguous.
    // (`as_slice` also accepts Fortran order, whose buffer is not in [N, C, H, W] order.)
    let data = match values.as_slice() {
        Ok(slice) if values.is_c_contiguous() => slice.to_vec(),
        _ => values.as_array().iter().copied().collect(),
    };
    Ok(from_vec(data, dims))
}

/// One item of an input list: a path (str or `os.PathLike`) or 8-bit pixels.
fn one_input(py: Python<'_>, item: &Bound<'_, PyAny>, card: &ModelCard) -> PyResult<T4> {
    if item.hasattr("convert")? && item.hasattr("mode")? {
        let pixels = pil_pixels(py, item)?;
        return one_input(py, &pixels, card);
    }
    if let Ok(pixels) = item.extract::<PyReadonlyArrayDyn<'_, u8>>() {
        let image = image_of(&pixels)?;
        return Ok(preprocess(&image, card));
    }
    let path: PathBuf = item.extract().map_err(|_| {
        input(format!(
            "list items must be image paths or uint8 pixel arrays [H, W(, C)], got {}",
            item.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    py.detach(|| load_input(&path, card))
        .map_err(|e| to_py(e.into()))
}

/// A PIL image's pixels as the CLI decodes a file: grey stays grey (`L`), everything else
/// becomes RGB without alpha; the card's channels are then made as for a file.
fn pil_pixels<'py>(py: Python<'py>, item: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let native: String = item.getattr("mode")?.extract()?;
    let mode = if matches!(native.as_str(), "L" | "1") {
        "L"
    } else {
        "RGB"
    };
    let converted = item.call_method1("convert", (mode,))?;
    py.import("numpy")?.call_method1("asarray", (converted,))
}

/// 8-bit pixels `[H, W]` (grey) or `[H, W, C]` with C = 1, 3 or 4 (alpha dropped, as PIL's
/// `convert("RGB")`) as an [`Image`].
pub fn image_of(pixels: &PyReadonlyArrayDyn<'_, u8>) -> PyResult<Image> {
    let a = pixels.as_array();
    let (height, width, c) = match a.shape() {
        [h, w] => (*h, *w, 1),
        [h, w, c] if matches!(c, 1 | 3 | 4) => (*h, *w, *c),
        other => {
            return Err(input(format!(
                "an image must be uint8 [H, W] or [H, W, 3], got shape {other:?}"
            )));
        }
    };
    if height == 0 || width == 0 {
        return Err(input("an image must have at least one pixel"));
    }
    let channels = if c == 1 { 1 } else { 3 };
    let mut data = Vec::with_capacity(height * width * channels);
    for y in 0..height {
        for x in 0..width {
            match a.ndim() {
                2 => data.push(a[[y, x]]),
                _ => (0..channels).for_each(|k| data.push(a[[y, x, k]])),
            }
        }
    }
    Ok(Image {
        width,
        height,
        channels,
        pixels: data,
    })
}

/// `values` as a NumPy array of `shape`, owning the buffer (no copy).
pub fn to_numpy<'py, T: numpy::Element>(
    py: Python<'py>,
    values: Vec<T>,
    shape: &[usize],
) -> PyResult<Bound<'py, PyArrayDyn<T>>> {
    let array = ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(shape), values)
        .map_err(|e| crate::errors::Error::new_err(format!("internal shape error: {e}")))?;
    Ok(PyArray::from_owned_array(py, array))
}

/// A map style by name (`signed`, `magnitude`, `unit`).
pub fn map_style(style: &str) -> PyResult<relevance::MapStyle> {
    match style {
        "signed" | "magnitude" | "unit" => Ok(relevance::MapStyle::from_name(style)),
        other => Err(input(format!(
            "unknown style '{other}'; use signed, magnitude or unit"
        ))),
    }
}

/// Maps `[N, H, W]` or `[N, C, H, W]` as one `[H, W]` plane per image, channels reduced by
/// `style` as the overlays reduce them (signed: sum; magnitude: max |v|; unit: the first).
pub fn map_planes(
    maps: &PyReadonlyArrayDyn<'_, f32>,
    style: relevance::MapStyle,
) -> PyResult<(Vec<Vec<f32>>, [usize; 2])> {
    let (n, c, h, w) = match maps.shape() {
        [n, h, w] => (*n, 1, *h, *w),
        [n, c, h, w] => (*n, *c, *h, *w),
        other => {
            return Err(input(format!(
                "maps must be [N, H, W] or [N, C, H, W], got shape {other:?}"
            )));
        }
    };
    if h == 0 || w == 0 || c == 0 {
        return Err(input("maps must have at least one pixel and channel"));
    }
    let values: Vec<f32> = match maps.as_slice() {
        Ok(s) if maps.is_c_contiguous() => s.to_vec(),
        _ => maps.as_array().iter().copied().collect(),
    };
    let per = c * h * w;
    let planes = (0..n)
        .map(|r| relevance::report::heatmap::plane(&values[r * per..(r + 1) * per], c, style))
        .collect();
    Ok((planes, [h, w]))
}

/// Boolean masks `[N, H, W]`, one per image.
pub fn mask_planes(
    masks: &PyReadonlyArrayDyn<'_, bool>,
    n: usize,
    size: [usize; 2],
) -> PyResult<Vec<Vec<bool>>> {
    let [h, w] = size;
    if masks.shape() != [n, h, w] {
        return Err(input(format!(
            "masks must be [N, H, W] = [{n}, {h}, {w}] like the maps, got shape {:?}",
            masks.shape()
        )));
    }
    let values: Vec<bool> = masks.as_array().iter().copied().collect();
    Ok(values.chunks(h * w).map(<[bool]>::to_vec).collect())
}
