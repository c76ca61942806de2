//! `.npy` files in and out: preprocessed input tensors and raw relevance maps.

use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};

use super::DataError;

/// Reads a float32 (or float64, converted) `.npy` array as `(shape, values)`.
pub fn read_npy(path: &Path) -> Result<(Vec<usize>, Vec<f32>), DataError> {
    let bytes = std::fs::read(path).map_err(|e| DataError::file(path, e.to_string()))?;
    npy_from_bytes(&bytes).map_err(|reason| DataError::file(path, reason))
}

/// Decodes the bytes of a float32/float64 `.npy` file as `(shape, values)`. The header is
/// checked against the data that follows it before anything is allocated, so a 128-byte file
/// claiming a 120 GB array is refused, and a truncated file says so.
pub fn npy_from_bytes(bytes: &[u8]) -> Result<(Vec<usize>, Vec<f32>), String> {
    let header = NpyHeader::parse(bytes)?;
    let element = match header.descr.as_bytes() {
        [b'<' | b'>' | b'=' | b'|', b'f', b'4'] => 4,
        [b'<' | b'>' | b'=' | b'|', b'f', b'8'] => 8,
        _ => {
            return Err(format!(
                "holds '{}' values; relevance reads float32 and float64 .npy arrays",
                header.descr
            ));
        }
    };
    let data = bytes.len() - header.data_start;
    let needed = header
        .shape
        .iter()
        .try_fold(element, |acc: usize, &n| acc.checked_mul(n));
    if needed != Some(data) {
        return Err(format!(
            "the header declares shape {:?} of '{}' ({} bytes) but {data} bytes of data follow \
             (truncated or damaged file?)",
            header.shape,
            header.descr,
            needed.map_or("more than 2^64".to_string(), |n| n.to_string())
        ));
    }
    let arr: ArrayD<f32> = if element == 4 {
        ArrayD::<f32>::read_npy(bytes).map_err(|e| format!("not a readable .npy array: {e}"))?
    } else {
        ArrayD::<f64>::read_npy(bytes)
            .map_err(|e| format!("not a readable .npy array: {e}"))?
            .mapv(|v| v as f32)
    };
    let shape = arr.shape().to_vec();
    let values = arr.as_standard_layout().iter().copied().collect();
    Ok((shape, values))
}

/// What an `.npy` header declares: element type, shape, and where the data starts.
struct NpyHeader {
    descr: String,
    shape: Vec<usize>,
    data_start: usize,
}

impl NpyHeader {
    /// Parses the magic string, version, header length and the header dict's `descr` and
    /// `shape` (the format: numpy's `lib/format.py`).
    fn parse(bytes: &[u8]) -> Result<NpyHeader, String> {
        let not_npy = || "not a .npy file (no \\x93NUMPY header)".to_string();
        if !bytes.starts_with(b"\x93NUMPY") || bytes.len() < 10 {
            return Err(not_npy());
        }
        let (len, start): (usize, usize) = match bytes[6] {
            1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
            2 | 3 => {
                let b = bytes.get(8..12).ok_or_else(not_npy)?;
                (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 12)
            }
            v => return Err(format!(".npy format version {v} is not supported")),
        };
        let text = start
            .checked_add(len)
            .and_then(|end| bytes.get(start..end))
            .ok_or("the .npy header is cut short (truncated file?)")?;
        let text = String::from_utf8_lossy(text);
        let descr = header_value(&text, "descr")
            .and_then(|v| v.strip_prefix('\'')?.split('\'').next())
            .ok_or("the .npy header has no 'descr'")?
            .to_string();
        let shape = header_value(&text, "shape")
            .and_then(|v| v.strip_prefix('(')?.split(')').next())
            .ok_or("the .npy header has no 'shape'")?
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(|d| d.trim_end_matches('L').parse::<usize>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| "the .npy header's shape is not a tuple of sizes".to_string())?;
        Ok(NpyHeader {
            descr,
            shape,
            data_start: start + len,
        })
    }
}

/// The text after `'key':` in a header dict, leading spaces removed.
fn header_value<'t>(text: &'t str, key: &str) -> Option<&'t str> {
    let at = text.find(&format!("'{key}'"))?;
    let rest = text[at + key.len() + 2..].trim_start().strip_prefix(':')?;
    Some(rest.trim_start())
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
