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
/// them (recursively, sorted), and a `.csv` list by the files it names ([`expand_input_files`]).
pub fn expand_inputs(inputs: &[PathBuf]) -> Result<Vec<PathBuf>, DataError> {
    Ok(expand_input_files(inputs)?
        .into_iter()
        .map(|f| f.path)
        .collect())
}

/// One input file and the class it belongs to, which the shard partition balances
/// ([`shard`]): the label of its row in a CSV list, else the name of the folder it lies in
/// (its class in an ImageFolder).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputFile {
    /// The file.
    pub path: PathBuf,
    /// Its class for the partition (empty when it has none).
    pub class: String,
}

/// Expands inputs as [`expand_inputs`] does, keeping each file's class: a folder gives its
/// images and `.npy` tensors (recursively, sorted), a `.csv` file the rows of a list
/// `path[,label[,…]]` ([`read_input_list`]), any other file itself.
pub fn expand_input_files(inputs: &[PathBuf]) -> Result<Vec<InputFile>, DataError> {
    let mut out = Vec::new();
    for p in inputs {
        if p.is_dir() {
            let mut found = Vec::new();
            let root = p
                .canonicalize()
                .map_err(|e| DataError::file(p, format!("cannot resolve: {e}")))?;
            walk(p, &root, &mut HashSet::new(), &mut found)
                .map_err(|e| DataError::file(p, e.to_string()))?;
            found.sort();
            if found.is_empty() {
                return Err(DataError::file(
                    p,
                    "folder contains no images (.jpg/.png/.bmp/.tif) or .npy tensors",
                ));
            }
            out.extend(found.into_iter().map(InputFile::in_folder));
        } else if is_csv(p) {
            out.extend(read_input_list(p)?);
        } else if p.is_file() {
            out.push(InputFile::in_folder(p.clone()));
        } else {
            return Err(DataError::file(p, "no such file or folder"));
        }
    }
    Ok(out)
}

impl InputFile {
    /// A file whose class is the folder it lies in.
    fn in_folder(path: PathBuf) -> Self {
        let class = path
            .parent()
            .and_then(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        InputFile { path, class }
    }
}

fn is_csv(path: &std::path::Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}

/// Most rows a CSV list may have: far beyond a data set one command explains, small enough
/// that a hostile list cannot make the run hold a huge plan.
pub const MAX_LIST_ROWS: usize = 10_000_000;

/// The files a CSV list names, in its order: one row per file, `path[,label[,…]]` (the data
/// sets' `path,label[,mask]` rows read as a list), an optional header row starting with
/// `path`, blank lines and `#` comments skipped; relative paths are relative to the CSV's
/// folder. The label (second column, when present) is the file's class.
pub fn read_input_list(csv: &std::path::Path) -> Result<Vec<InputFile>, DataError> {
    let text = std::fs::read_to_string(csv)
        .map_err(|e| DataError::file(csv, format!("cannot read: {e}")))?;
    let base = csv.parent().unwrap_or(std::path::Path::new("."));
    let mut rows = Vec::new();
    let mut header_seen = false;
    for (lineno, line, fields) in csv_lines(&text) {
        if rows.is_empty() && !header_seen && fields[0].eq_ignore_ascii_case("path") {
            header_seen = true;
            continue;
        }
        if fields[0].is_empty() {
            return Err(DataError::file(
                csv,
                format!("line {}: expected 'path[,label]', got '{line}'", lineno + 1),
            ));
        }
        if rows.len() == MAX_LIST_ROWS {
            return Err(DataError::file(
                csv,
                format!("more than {MAX_LIST_ROWS} rows"),
            ));
        }
        rows.push(InputFile {
            path: base.join(fields[0]),
            class: fields.get(1).copied().unwrap_or_default().to_string(),
        });
    }
    if rows.is_empty() {
        return Err(DataError::file(csv, "the list names no files"));
    }
    Ok(rows)
}

/// The lines of a CSV list or data set that hold a row: `(index from 0, trimmed line, fields)`,
/// blank lines and `#` comments skipped, each field trimmed of spaces and double quotes (no
/// quoted commas: paths and labels do not hold them).
pub(crate) fn csv_lines(text: &str) -> impl Iterator<Item = (usize, &str, Vec<&str>)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i, line.trim()))
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(i, line)| {
            let fields = line
                .split(',')
                .map(|f| f.trim().trim_matches('"'))
                .collect();
            (i, line, fields)
        })
}

/// True when `path`, with every link resolved, lies inside `root` (a canonical folder): the
/// folder walks follow links only that far, so a hostile data folder cannot make us read
/// files elsewhere. A path that cannot be resolved (a dangling link) does not stay inside.
pub(crate) fn stays_inside(path: &std::path::Path, root: &std::path::Path) -> bool {
    path.canonicalize().is_ok_and(|p| p.starts_with(root))
}

/// The inputs below `dir`, recursively. Links are followed while they stay inside `root` (a
/// link leading elsewhere is left out with a warning), and each folder is entered once (by its
/// canonical path), so a link back up the tree adds nothing instead of looping.
fn walk(
    dir: &std::path::Path,
    root: &std::path::Path,
    visited: &mut HashSet<PathBuf>,
    out: &mut Vec<PathBuf>,
) -> std::io::Result<()> {
    if !visited.insert(dir.canonicalize()?) {
        return Ok(());
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let is_input = (is_image(&path) && !folder::is_mask_file(&path))
            || path.extension().is_some_and(|e| e == "npy");
        if !(path.is_dir() || is_input) {
            continue;
        }
        if !stays_inside(&path, root) {
            eprintln!(
                "warning: {}: a link leading outside {} (or nowhere); not followed",
                path.display(),
                root.display()
            );
        } else if path.is_dir() {
            walk(&path, root, visited, out)?;
        } else {
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
