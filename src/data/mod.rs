//! Getting pixels into the model: image files of any common format and colour mode, resized,
//! cropped and normalised as the model card says; preprocessed `.npy` tensors as they are;
//! labelled data sets (ImageFolder, CSV, IDX), splits, batches, augmentations with inverses and
//! synthetic data with ground truth.

pub mod augment;
pub mod batch;
pub mod describe;
pub mod folder;
pub mod idx;
pub mod image;
pub mod npy;
pub mod resize;
pub mod shard;
pub mod split;
pub mod synth;

pub use self::image::{Image, load_image, preprocess};

use std::collections::HashSet;
use std::path::PathBuf;

/// Errors about input data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A file that cannot be read or decoded.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Any other problem.
    #[error("{0}")]
    Invalid(String),
}

impl DataError {
    /// A file error.
    pub fn file(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        DataError::File {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

/// File extensions read as images.
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "bmp", "tif", "tiff"];

/// True if the path has an image extension (case-insensitive).
pub fn is_image(path: &std::path::Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Expands inputs: files are kept, folders are replaced by the images and `.npy` files inside
/// them (recursively, sorted).
pub fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, DataError> {
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut HashSet::new(), &mut found)
                .map_err(|e| DataError::file(p, e.to_string()))?;
            found.sort();
            if found.is_empty() {
                return Err(DataError::file(
                    p,
                    "folder contains no images (.jpg/.png/.bmp/.tif) or .npy tensors",
                ));
            }
            out.extend(found);
        } else if p.is_file() {
            out.push(p.clone());
        } else {
            return Err(DataError::file(p, "no such file or folder"));
        }
    }
    Ok(out)
}

/// The inputs below `dir`, recursively. Links are followed, but each folder is entered once
/// (by its canonical path), so a link back up the tree adds nothing instead of looping.
fn walk(
    dir: &std::path::Path,
    visited: &mut HashSet<PathBuf>,
    out: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    if !visited.insert(dir.canonicalize()?) {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, visited, out)?;
        } else if (is_image(&path) && !folder::is_mask_file(&path))
            || path.extension().is_some_and(|e| e == "npy")
        {
            // Ground-truth masks beside images (`.mask.png`, `.marker.png`) are not inputs.
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::expand_inputs;

    #[test]
    fn folders_expand_to_images_and_tensors_but_not_masks() {
        let dir = std::env::temp_dir().join(format!("relevance-expand-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        for name in [
            "a.png",
            "a.mask.png",
            "a.marker.png",
            "sub/b.npy",
            "sub/c.JPG",
            "notes.txt",
        ] {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        let found = expand_inputs(std::slice::from_ref(&dir)).unwrap();
        let names: Vec<String> = found
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a.png", "sub/b.npy", "sub/c.JPG"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
