//! Labelled image data sets on disk: torchvision's ImageFolder layout (one sub-folder per class,
//! classes in sorted folder-name order) or a CSV file `path,label[,mask]`, with optional
//! ground-truth masks beside the images.
//!
//! **Mask convention.** A binary mask for `scans/a/img01.jpg` is the PNG `scans/a/img01.mask.png`
//! (same stem plus `.mask.png`, same width and height as the image; non-zero = inside). A mask
//! of a confounding marker (see `relevance data synth`) is `img01.marker.png`. Files ending in
//! `.mask.png` or `.marker.png` are never read as samples. In a CSV the mask column names the
//! mask file explicitly.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::DataError;
use super::split::{Split, SplitFractions, stratified_split};

/// One labelled image with its optional ground-truth masks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// The image file.
    pub path: PathBuf,
    /// Class index into the data set's class list.
    pub label: usize,
    /// Binary mask of the object that decides the label (`<stem>.mask.png`), if present.
    pub mask: Option<PathBuf>,
    /// Binary mask of a confounding marker (`<stem>.marker.png`), if present.
    pub marker: Option<PathBuf>,
}

/// A file left out of a data set and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The file.
    pub path: PathBuf,
    /// Why it could not be used.
    pub reason: String,
}

/// How strictly a data set is read.
#[derive(Clone, Copy, Debug, Default)]
pub struct ReadOptions {
    /// Fail on the first unreadable image instead of skipping it with a warning.
    pub strict: bool,
}

/// A labelled set of images.
#[derive(Clone, Debug, PartialEq)]
pub struct ImageFolder {
    /// The folder (or CSV file) it was read from.
    pub root: PathBuf,
    /// Class names in label order.
    pub classes: Vec<String>,
    /// The usable samples, sorted by class then path.
    pub samples: Vec<Sample>,
    /// Files that could not be read (empty with [`ReadOptions::strict`]).
    pub skipped: Vec<Skipped>,
}

/// Suffix of ground-truth object masks.
pub const MASK_SUFFIX: &str = ".mask.png";
/// Suffix of confounder-marker masks.
pub const MARKER_SUFFIX: &str = ".marker.png";

/// True for files that are masks rather than samples.
pub(crate) fn is_mask_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    name.ends_with(MASK_SUFFIX) || name.ends_with(MARKER_SUFFIX)
}

/// The mask file beside `image` with the given suffix, if it exists.
pub fn mask_beside(image: &Path, suffix: &str) -> Option<PathBuf> {
    let stem = image.file_stem()?.to_string_lossy().to_string();
    let p = image.with_file_name(format!("{stem}{suffix}"));
    p.is_file().then_some(p)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| DataError::file(dir, format!("cannot list folder: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// What a folder walk found: the images, and the links it did not follow because they lead
/// outside the data folder.
#[derive(Default)]
struct Found {
    images: Vec<PathBuf>,
    outside: Vec<PathBuf>,
}

/// The images below `dir`, recursively. Symbolic links are followed only while they stay inside
/// `root` (the canonical data folder the user named): a data set may be hostile, and a link to
/// `/etc/…` must not be read. Each folder is entered once (by its canonical path, `visited`), so
/// a link back up the tree (a cycle) adds nothing instead of repeating the tree until the path
/// is too long.
fn images_under(
    dir: &Path,
    root: &Path,
    visited: &mut HashSet<PathBuf>,
    found: &mut Found,
) -> Result<(), DataError> {
    let canonical = canonical(dir)?;
    if !visited.insert(canonical) {
        return Ok(());
    }
    for p in sorted_entries(dir)? {
        let is_dir = p.is_dir();
        let wanted = is_dir || (super::is_image(&p) && !is_mask_file(&p));
        if !wanted {
            continue;
        }
        if !super::stays_inside(&p, root) {
            found.outside.push(p);
        } else if is_dir {
            images_under(&p, root, visited, found)?;
        } else {
            found.images.push(p);
        }
    }
    Ok(())
}

/// `path` with every link resolved (how two names of one file or folder are recognised).
fn canonical(path: &Path) -> Result<PathBuf, DataError> {
    path.canonicalize()
        .map_err(|e| DataError::file(path, format!("cannot resolve: {e}")))
}

/// Width and height from the file header (no full decode).
fn image_dims(path: &Path) -> Result<(u32, u32), String> {
    ::image::ImageReader::open(path)
        .map_err(|e| format!("cannot open: {e}"))?
        .with_guessed_format()
        .map_err(|e| format!("cannot read: {e}"))?
        .into_dimensions()
        .map_err(|e| super::image::unreadable_reason(&e))
}

impl ImageFolder {
    /// Reads `path`: a folder in ImageFolder layout, or a `.csv` file.
    pub fn open(path: &Path, opts: ReadOptions) -> Result<Self, DataError> {
        if path.is_dir() {
            Self::from_folder(path, opts)
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
        {
            Self::from_csv(path, opts)
        } else if path.exists() {
            Err(DataError::file(
                path,
                "expected a folder with one sub-folder per class, or a .csv file",
            ))
        } else {
            Err(DataError::file(path, "no such file or folder"))
        }
    }

    /// One sub-folder per class (sorted names, as torchvision's `ImageFolder`); images are
    /// found recursively inside each class folder.
    pub fn from_folder(root: &Path, opts: ReadOptions) -> Result<Self, DataError> {
        let class_dirs: Vec<PathBuf> = sorted_entries(root)?
            .into_iter()
            .filter(|p| p.is_dir())
            .collect();
        if class_dirs.is_empty() {
            return Err(DataError::file(
                root,
                "no class folders: expected one sub-folder per class (e.g. glioma/, notumor/)",
            ));
        }
        let mut classes = Vec::new();
        let mut candidates = Vec::new();
        let mut outside_links = Vec::new();
        // Every image file counts once, under one class: `owner` maps its canonical path to the
        // class folder it was first found in.
        let mut owner: HashMap<PathBuf, usize> = HashMap::new();
        for (label, dir) in class_dirs.iter().enumerate() {
            // The root is marked visited so a link to it from inside a class is not entered.
            let root_canonical = canonical(root)?;
            let mut visited = HashSet::from([root_canonical.clone()]);
            let mut found = Found::default();
            images_under(dir, &root_canonical, &mut visited, &mut found)?;
            outside_links.extend(found.outside);
            let files = found.images;
            let mut unique = Vec::with_capacity(files.len());
            for path in files {
                match owner.entry(canonical(&path)?) {
                    Entry::Vacant(slot) => {
                        slot.insert(label);
                        unique.push(path);
                    }
                    Entry::Occupied(first) if *first.get() == label => {}
                    Entry::Occupied(first) => {
                        return Err(DataError::file(
                            &path,
                            format!(
                                "the same file is also in class folder {} (through a link); \
                                 an image must belong to one class",
                                class_dirs[*first.get()].display()
                            ),
                        ));
                    }
                }
            }
            let files = unique;
            if files.is_empty() {
                return Err(DataError::file(
                    dir,
                    "class folder contains no images (.jpg/.png/.bmp/.tif)",
                ));
            }
            classes.push(dir.file_name().unwrap().to_string_lossy().to_string());
            let inside = |mask: Option<PathBuf>| mask.filter(|m| super::stays_inside(m, root));
            candidates.extend(files.into_iter().map(|path| Sample {
                mask: inside(mask_beside(&path, MASK_SUFFIX)),
                marker: inside(mask_beside(&path, MARKER_SUFFIX)),
                path,
                label,
            }));
        }
        let outside = outside_links.into_iter().map(|path| Skipped {
            path,
            reason: "a link leading outside the data folder (or nowhere); not followed".into(),
        });
        Self::finish(root, classes, candidates, outside.collect(), opts)
    }

    /// A CSV file with rows `path,label[,mask]` (an optional header row starting with `path`);
    /// relative paths are relative to the CSV's folder. A multi-label image is one row with its
    /// labels separated by `;` (`path,a;b`) or one row per label — the same samples either
    /// way: one per image × label. Class names are the distinct labels, sorted (numerically if
    /// all are integers). Without a mask column, masks beside the images are used.
    pub fn from_csv(csv: &Path, opts: ReadOptions) -> Result<Self, DataError> {
        let rows: Vec<(PathBuf, String, Option<PathBuf>)> = csv_rows(csv)?
            .into_iter()
            .flat_map(|r| {
                r.labels
                    .into_iter()
                    .map(move |label| (r.path.clone(), label, r.mask.clone()))
            })
            .collect();
        let mut classes: Vec<String> = rows.iter().map(|r| r.1.clone()).collect();
        classes.sort();
        classes.dedup();
        if classes.iter().all(|c| c.parse::<i64>().is_ok()) {
            classes.sort_by_key(|c| c.parse::<i64>().unwrap());
        }
        let candidates = rows
            .into_iter()
            .map(|(path, label, mask)| Sample {
                label: classes.iter().position(|c| *c == label).unwrap(),
                mask: mask.or_else(|| mask_beside(&path, MASK_SUFFIX)),
                marker: mask_beside(&path, MARKER_SUFFIX),
                path,
            })
            .collect();
        Self::finish(csv, classes, candidates, Vec::new(), opts)
    }

    /// Checks every candidate's header (in parallel) and its masks, and the class list;
    /// `left_out` are files the scan already declined (strict reading refuses them too).
    fn finish(
        root: &Path,
        classes: Vec<String>,
        candidates: Vec<Sample>,
        left_out: Vec<Skipped>,
        opts: ReadOptions,
    ) -> Result<Self, DataError> {
        if let Some(first) = left_out.first().filter(|_| opts.strict) {
            return Err(DataError::file(&first.path, first.reason.clone()));
        }
        if candidates.is_empty() {
            return Err(DataError::file(root, "data set contains no images"));
        }
        let checked: Vec<Result<Sample, (Sample, String)>> = candidates
            .into_par_iter()
            .map(|s| match image_dims(&s.path) {
                Err(reason) => Err((s, reason)),
                Ok(dims) => {
                    for m in s.mask.iter().chain(s.marker.iter()) {
                        match image_dims(m) {
                            Err(reason) => return Err((s.clone(), format!("mask {reason}"))),
                            Ok(md) if md != dims => {
                                return Err((
                                    s.clone(),
                                    format!(
                                        "mask {} is {}×{} but the image is {}×{}",
                                        m.display(),
                                        md.0,
                                        md.1,
                                        dims.0,
                                        dims.1
                                    ),
                                ));
                            }
                            Ok(_) => {}
                        }
                    }
                    Ok(s)
                }
            })
            .collect();
        let mut samples = Vec::new();
        let mut skipped = left_out;
        for r in checked {
            match r {
                Ok(s) => samples.push(s),
                Err((s, reason)) => {
                    if opts.strict || reason.starts_with("mask ") && reason.contains(" but ") {
                        // A size-mismatched mask is a broken data set, not a bad file: always an error.
                        return Err(DataError::file(&s.path, reason));
                    }
                    skipped.push(Skipped {
                        path: s.path,
                        reason,
                    });
                }
            }
        }
        for (label, name) in classes.iter().enumerate() {
            if !samples.iter().any(|s| s.label == label) {
                return Err(DataError::file(
                    root,
                    format!("class '{name}' has no readable images"),
                ));
            }
        }
        samples.sort_by(|a, b| (a.label, &a.path).cmp(&(b.label, &b.path)));
        Ok(ImageFolder {
            root: root.to_path_buf(),
            classes,
            samples,
            skipped,
        })
    }

    /// Labels of all samples in order.
    pub fn labels(&self) -> Vec<usize> {
        self.samples.iter().map(|s| s.label).collect()
    }

    /// Number of samples per class.
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.classes.len()];
        for s in &self.samples {
            counts[s.label] += 1;
        }
        counts
    }

    /// A one-line warning listing skipped files, if any.
    pub fn skipped_warning(&self) -> Option<String> {
        if self.skipped.is_empty() {
            return None;
        }
        let list: Vec<String> = self
            .skipped
            .iter()
            .map(|s| format!("{} ({})", s.path.display(), s.reason))
            .collect();
        Some(format!(
            "skipped {} unreadable file(s) (use --strict to stop instead): {}",
            self.skipped.len(),
            list.join("; ")
        ))
    }

    /// The samples at `indices`.
    pub fn subset(&self, indices: &[usize]) -> Vec<Sample> {
        indices.iter().map(|&i| self.samples[i].clone()).collect()
    }
}

/// How the train/validation/test parts of a data set were obtained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum SplitSource {
    /// `train/`, `val/`, `test/` folders given by the data set.
    Folders,
    /// Drawn by [`stratified_split`] (the validation part only, if test came as a folder).
    Stratified {
        /// Seed of the split.
        seed: u64,
        /// Fractions held out.
        fractions: SplitFractions,
    },
}

/// A data set in three parts with one class list.
#[derive(Clone, Debug)]
pub struct DataSplits {
    /// Class names shared by all parts.
    pub classes: Vec<String>,
    /// Training samples.
    pub train: Vec<Sample>,
    /// Validation samples (may be empty).
    pub val: Vec<Sample>,
    /// Test samples (may be empty).
    pub test: Vec<Sample>,
    /// How the parts were made.
    pub source: SplitSource,
    /// Files skipped in any part.
    pub skipped: Vec<Skipped>,
}

impl DataSplits {
    /// Opens a data set: a folder with `train/` (and optionally `val/`, `test/`) sub-folders in
    /// ImageFolder layout is used as split; otherwise the folder or CSV is split by
    /// [`stratified_split`] with `fractions` and `seed`. A missing `val/` is split off `train/`.
    pub fn open(
        path: &Path,
        fractions: SplitFractions,
        seed: u64,
        opts: ReadOptions,
    ) -> Result<Self, DataError> {
        fractions.check()?;
        let train_dir = path.join("train");
        if path.is_dir() && train_dir.is_dir() {
            let train = ImageFolder::from_folder(&train_dir, opts)?;
            let part = |name: &str| -> Result<Option<ImageFolder>, DataError> {
                let dir = path.join(name);
                if !dir.is_dir() {
                    return Ok(None);
                }
                let part = ImageFolder::from_folder(&dir, opts)?;
                if let Some(extra) = part.classes.iter().find(|c| !train.classes.contains(c)) {
                    return Err(DataError::file(
                        dir.join(extra),
                        format!(
                            "class '{extra}' is not among the training classes ({})",
                            train.classes.join(", ")
                        ),
                    ));
                }
                Ok(Some(part))
            };
            let relabel = |part: ImageFolder| -> Vec<Sample> {
                part.samples
                    .into_iter()
                    .map(|mut s| {
                        let name = &part.classes[s.label];
                        s.label = train.classes.iter().position(|c| c == name).unwrap();
                        s
                    })
                    .collect()
            };
            let val = part("val")?;
            let test = part("test")?;
            let mut skipped = train.skipped.clone();
            for p in val.iter().chain(test.iter()) {
                skipped.extend(p.skipped.iter().cloned());
            }
            let test_samples = test.map(relabel).unwrap_or_default();
            let (train_samples, val_samples, source) = match val {
                Some(v) => (train.samples.clone(), relabel(v), SplitSource::Folders),
                None => {
                    let f = SplitFractions {
                        val: fractions.val,
                        test: 0.0,
                    };
                    let s = stratified_split(&train.labels(), f, seed);
                    (
                        train.subset(&s.train),
                        train.subset(&s.val),
                        SplitSource::Stratified { seed, fractions: f },
                    )
                }
            };
            check_two_classes(&train_dir, &train.classes)?;
            return Ok(DataSplits {
                classes: train.classes.clone(),
                train: train_samples,
                val: val_samples,
                test: test_samples,
                source,
                skipped,
            });
        }
        let all = ImageFolder::open(path, opts)?;
        check_two_classes(path, &all.classes)?;
        let Split { train, val, test } = stratified_split(&all.labels(), fractions, seed);
        Ok(DataSplits {
            classes: all.classes.clone(),
            train: all.subset(&train),
            val: all.subset(&val),
            test: all.subset(&test),
            source: SplitSource::Stratified { seed, fractions },
            skipped: all.skipped,
        })
    }

    /// A one-line warning listing skipped files, if any.
    pub fn skipped_warning(&self) -> Option<String> {
        ImageFolder {
            root: PathBuf::new(),
            classes: Vec::new(),
            samples: Vec::new(),
            skipped: self.skipped.clone(),
        }
        .skipped_warning()
    }
}

fn check_two_classes(path: &Path, classes: &[String]) -> Result<(), DataError> {
    if classes.len() < 2 {
        return Err(DataError::file(
            path,
            format!(
                "only one class ('{}'); a classifier needs at least two class folders",
                classes.join("")
            ),
        ));
    }
    Ok(())
}

/// One row of a CSV data set: the image, its labels (several for `path,a;b`), its mask.
#[derive(Clone, Debug, PartialEq)]
pub struct CsvRow {
    /// Line number in the file (1-based).
    pub line: usize,
    /// The image, relative paths joined to the CSV's folder.
    pub path: PathBuf,
    /// Its labels, in the order written.
    pub labels: Vec<String>,
    /// The mask column, when present and not empty.
    pub mask: Option<PathBuf>,
}

/// The rows of a CSV data set `path,label[;label…][,mask]`: an optional header row starting
/// with `path`, blank lines and `#` comments skipped; a row without a path or a label (or with
/// an empty one among `;`-separated labels) is an error naming its line.
pub fn csv_rows(csv: &Path) -> Result<Vec<CsvRow>, DataError> {
    let text = std::fs::read_to_string(csv)
        .map_err(|e| DataError::file(csv, format!("cannot read: {e}")))?;
    let base = csv.parent().unwrap_or(Path::new("."));
    let mut rows = Vec::new();
    for (lineno, line, fields) in super::csv_lines(&text) {
        if rows.is_empty() && fields[0].eq_ignore_ascii_case("path") {
            continue;
        }
        let labels: Vec<String> = fields
            .get(1)
            .map(|l| l.split(';').map(|c| c.trim().to_string()).collect())
            .unwrap_or_default();
        if fields.len() < 2
            || fields.len() > 3
            || fields[0].is_empty()
            || labels.iter().any(String::is_empty)
        {
            return Err(DataError::file(
                csv,
                format!(
                    "line {}: expected 'path,label', 'path,label;label…' or 'path,label,mask', got '{line}'",
                    lineno + 1
                ),
            ));
        }
        rows.push(CsvRow {
            line: lineno + 1,
            path: base.join(fields[0]),
            labels,
            mask: fields
                .get(2)
                .filter(|m| !m.is_empty())
                .map(|m| base.join(m)),
        });
    }
    Ok(rows)
}

/// The first row of a CSV data set that gives an image a second label — `path,a;b`, or a
/// repeated path with another label — as `(line, what)`; `None` when every image has one
/// label.
pub fn first_multi_label_row(csv: &Path) -> Result<Option<(usize, String)>, DataError> {
    let mut seen: HashMap<PathBuf, String> = HashMap::new();
    for row in csv_rows(csv)? {
        let mut labels = row.labels;
        labels.dedup();
        if let Some(earlier) = seen.get(&row.path)
            && labels.iter().any(|l| l != earlier)
        {
            let what = format!(
                "{} has label '{earlier}' on an earlier line and '{}' here",
                row.path.display(),
                labels.join(";")
            );
            return Ok(Some((row.line, what)));
        }
        if labels.len() > 1 {
            let what = format!("{} has labels '{}'", row.path.display(), labels.join(";"));
            return Ok(Some((row.line, what)));
        }
        seen.insert(row.path, labels.remove(0));
    }
    Ok(None)
}
