//! The IDX format of MNIST and Fashion-MNIST (LeCun et al.): a big-endian header — two zero
//! bytes, a type code (0x08 = unsigned byte), the number of dimensions, then each dimension as
//! a `u32` — followed by the values. Files may be gzip-compressed (`.gz`), as distributed.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::DataError;
use super::image::Image;

/// Class names of Fashion-MNIST in label order.
pub const FASHION_MNIST_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// The class names of an IDX set whose labels run `0..count`: Fashion-MNIST's names for ten
/// classes, else the label numbers (`0`, `1`, …). `train` and the studies name classes by this
/// one rule, so a study matches an IDX-trained model's classes by name.
pub fn class_names(count: usize) -> Vec<String> {
    if count == FASHION_MNIST_CLASSES.len() {
        FASHION_MNIST_CLASSES
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        (0..count).map(|c| c.to_string()).collect()
    }
}

/// An unsigned-byte IDX array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimensions, e.g. `[60000, 28, 28]` for images or `[60000]` for labels.
    pub dims: Vec<usize>,
    /// Values in row-major order.
    pub data: Vec<u8>,
}

/// Parses IDX bytes (already decompressed).
pub fn parse_idx(bytes: &[u8]) -> Result<IdxArray, String> {
    if bytes.len() < 4 || bytes[0] != 0 || bytes[1] != 0 {
        return Err("not an IDX file (bad magic number)".into());
    }
    if bytes[2] != 0x08 {
        return Err(format!(
            "IDX type code 0x{:02x} is not supported (only unsigned bytes, 0x08)",
            bytes[2]
        ));
    }
    let rank = bytes[3] as usize;
    let header = 4 + 4 * rank;
    if bytes.len() < header {
        return Err("IDX header is truncated".into());
    }
    let dims: Vec<usize> = (0..rank)
        .map(|i| {
            let b = &bytes[4 + 4 * i..8 + 4 * i];
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
        })
        .collect();
    let n: usize = dims.iter().product();
    if bytes.len() - header != n {
        return Err(format!(
            "IDX dimensions {dims:?} need {n} values, the file has {}",
            bytes.len() - header
        ));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// Reads an IDX file, decompressing it if it is gzip data.
pub fn read_idx(path: &Path) -> Result<IdxArray, DataError> {
    let raw =
        std::fs::read(path).map_err(|e| DataError::file(path, format!("cannot read: {e}")))?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| DataError::file(path, format!("bad gzip data: {e}")))?;
        out
    } else {
        raw
    };
    parse_idx(&bytes).map_err(|r| DataError::file(path, r))
}

/// Grey images and labels from an IDX pair.
#[derive(Clone, Debug)]
pub struct IdxSet {
    /// The images (1 channel).
    pub images: Vec<Image>,
    /// Their labels.
    pub labels: Vec<usize>,
}

/// Reads `images` (`[N, H, W]`) and `labels` (`[N]`) IDX files.
pub fn read_idx_pair(images: &Path, labels: &Path) -> Result<IdxSet, DataError> {
    let img = read_idx(images)?;
    let lab = read_idx(labels)?;
    let [n, h, w] = img.dims[..] else {
        return Err(DataError::file(
            images,
            format!("expected [N, H, W] images, got {:?}", img.dims),
        ));
    };
    if h == 0 || w == 0 {
        return Err(DataError::file(
            images,
            format!("images of {h}×{w} pixels: height and width must be positive"),
        ));
    }
    if lab.dims != [n] {
        return Err(DataError::file(
            labels,
            format!("expected {n} labels, got dimensions {:?}", lab.dims),
        ));
    }
    let images = img
        .data
        .chunks_exact(h * w)
        .map(|px| Image {
            width: w,
            height: h,
            channels: 1,
            pixels: px.to_vec(),
        })
        .collect();
    Ok(IdxSet {
        images,
        labels: lab.data.iter().map(|&l| l as usize).collect(),
    })
}

/// Finds `<stem>` or `<stem>.gz` in `dir`.
fn find(dir: &Path, stem: &str) -> Result<PathBuf, DataError> {
    [stem.to_string(), format!("{stem}.gz")]
        .iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            DataError::file(
                dir,
                format!("no {stem}[.gz] here (MNIST/Fashion-MNIST IDX files expected)"),
            )
        })
}

/// The standard MNIST / Fashion-MNIST files of a folder (`train-images-idx3-ubyte[.gz]`, …) as
/// `(train, test)`. Debian's `dataset-fashion-mnist` package installs them in
/// `/usr/share/datasets/fashion-mnist`.
pub fn read_mnist_dir(dir: &Path) -> Result<(IdxSet, IdxSet), DataError> {
    let train = read_idx_pair(
        &find(dir, "train-images-idx3-ubyte")?,
        &find(dir, "train-labels-idx1-ubyte")?,
    )?;
    let test = read_idx_pair(
        &find(dir, "t10k-images-idx3-ubyte")?,
        &find(dir, "t10k-labels-idx1-ubyte")?,
    )?;
    Ok((train, test))
}

/// True if `dir` holds an MNIST-style IDX set.
pub fn is_mnist_dir(dir: &Path) -> bool {
    find(dir, "train-images-idx3-ubyte").is_ok() && find(dir, "t10k-images-idx3-ubyte").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_hand_written_idx_array_and_rejects_bad_ones() {
        // 2 images of 2×3: magic 0x00000803, dims 2, 2, 3
        let mut bytes = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3];
        bytes.extend(0u8..12);
        let a = parse_idx(&bytes).unwrap();
        assert_eq!(a.dims, vec![2, 2, 3]);
        assert_eq!(a.data, (0u8..12).collect::<Vec<_>>());
        assert!(parse_idx(&bytes[..20]).unwrap_err().contains("need 12"));
        let mut bad = bytes.clone();
        bad[2] = 0x0d;
        assert!(parse_idx(&bad).unwrap_err().contains("not supported"));
        assert!(parse_idx(b"PK\x03\x04").unwrap_err().contains("magic"));
    }
}
