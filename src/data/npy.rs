//! `.npy` files in and out: preprocessed input tensors and raw relevance maps.

use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};

use super::DataError;

/// Reads a float32 (or float64, converted) `.npy` array as `(shape, values)`.
pub fn read_npy(path: &Path) -> Result<(Vec<usize>, Vec<f32>), DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::file(path, e.to_string()))?;
    let arr: ArrayD<f32> = match ArrayD::<f32>::read_npy(&bytes[..]) {
        Ok(a) => a,
        Err(_) => ArrayD::<f64>::read_npy(&bytes[..])
            .map(|a| a.mapv(|v| v as f32))
            .map_err(|e| DataError::file(path, format!("not a float32/float64 .npy array: {e}")))?,
    };
    let shape = arr.shape().to_vec();
    let values = arr.as_standard_layout().iter().copied().collect();
    Ok((shape, values))
}

/// Encodes values with a shape as `.npy` bytes (little-endian float32, C order).
pub fn npy_bytes(shape: &[usize], values: &[f32]) -> Result<Vec<u8>, DataError> {
    let arr = ArrayD::from_shape_vec(IxDyn(shape), values.to_vec())
        .map_err(|e| DataError::Invalid(e.to_string()))?;
    let mut buf = Vec::new();
    arr.write_npy(&mut buf)
        .map_err(|e| DataError::Invalid(e.to_string()))?;
    Ok(buf)
}

/// Writes a `.npy` file atomically.
pub fn write_npy(path: &Path, shape: &[usize], values: &[f32]) -> Result<(), DataError> {
    let bytes = npy_bytes(shape, values)?;
    crate::io::write_atomic(path, &bytes).map_err(|e| DataError::file(path, e.to_string()))
}
