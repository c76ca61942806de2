//! Writing a study's files atomically (CSV, JSON, `summary.json`), the resume caches, progress
//! bars and the small number helpers the tables use.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Value, json};

use super::super::StudyError;

/// A CSV field: quoted when it holds a comma, quote or newline.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A number for CSV: empty for NaN / infinities.
pub fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.6}")
    } else {
        String::new()
    }
}

/// A JSON number, `null` for NaN.
pub fn jnum(v: f64) -> Value {
    if v.is_finite() { json!(v) } else { Value::Null }
}

/// Writes a CSV file atomically.
pub fn write_csv(path: &Path, header: &[&str], rows: &[Vec<String>]) -> Result<(), StudyError> {
    let mut text = header.join(",");
    text.push('\n');
    for r in rows {
        let line: Vec<String> = r.iter().map(|f| csv_field(f)).collect();
        text.push_str(&line.join(","));
        text.push('\n');
    }
    write_text(path, &text)
}

/// Writes text atomically.
pub fn write_text(path: &Path, text: &str) -> Result<(), StudyError> {
    crate::io::write_text_atomic(path, text).map_err(|e| StudyError::file(path, e))
}

/// Writes pretty JSON atomically.
pub fn write_json(path: &Path, value: &impl Serialize) -> Result<(), StudyError> {
    let text = serde_json::to_string_pretty(value).expect("JSON value serialises");
    write_text(path, &text)
}

/// Reads JSON written by an earlier run; `None` when missing or unreadable (it is recomputed).
pub fn read_previous(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// The folder of one model × method's per-image results, `<out>/per_image/<model>/<method>`
/// (the method label as a file-name key, [`crate::methods::spec::label_file_key`]), created if
/// missing.
pub fn per_image_dir(out: &Path, model: &str, method: &str) -> Result<PathBuf, StudyError> {
    let dir = out
        .join("per_image")
        .join(model)
        .join(crate::methods::spec::label_file_key(method));
    create_dir(&dir)?;
    Ok(dir)
}

/// Splits `images` into the results an earlier run stored in `dir` (`<stem>.json`, kept when
/// `parse` accepts it — same key, same model and method) and the images still to compute.
pub fn resume<'a, T>(
    dir: &Path,
    images: &'a [super::StudyImage],
    parse: impl Fn(&Value) -> Option<T>,
) -> (Vec<T>, Vec<&'a super::StudyImage>) {
    let mut done = Vec::new();
    let mut todo = Vec::new();
    for img in images {
        match read_previous(&dir.join(format!("{}.json", img.stem))).and_then(|v| parse(&v)) {
            Some(r) => done.push(r),
            None => todo.push(img),
        }
    }
    (done, todo)
}

/// Creates a folder (and parents).
pub fn create_dir(path: &Path) -> Result<(), StudyError> {
    std::fs::create_dir_all(path).map_err(|e| StudyError::file(path, format!("cannot create: {e}")))
}

/// Prepares a cache folder for work described by `key`: when the folder's `key.json` differs,
/// the folder's files are removed (they belong to other options), then the key is written.
pub fn prepare_cache(dir: &Path, key: &Value) -> Result<(), StudyError> {
    let key_path = dir.join("key.json");
    if dir.is_dir() && read_previous(&key_path).as_ref() != Some(key) {
        std::fs::remove_dir_all(dir).map_err(|e| StudyError::file(dir, e))?;
    }
    create_dir(dir)?;
    if !key_path.is_file() {
        write_json(&key_path, key)?;
    }
    Ok(())
}

pub use crate::records::{StudySummary as Summary, Table};

impl Table {
    /// A table with these headers.
    pub fn new(columns: &[&str], rows: Vec<Vec<Value>>) -> Self {
        Table {
            columns: columns.iter().map(|c| c.to_string()).collect(),
            rows,
        }
    }
}

impl Summary {
    /// A summary of `study` by this version of `relevance`, without a work record.
    pub fn new(study: &str, command: Option<Vec<String>>, conventions: Value) -> Self {
        Summary {
            study: study.into(),
            command,
            version: env!("CARGO_PKG_VERSION").into(),
            conventions,
            headline: Vec::new(),
            table: Table::new(&[], Vec::new()),
            tests: Table::new(&[], Vec::new()),
            work: Value::Null,
        }
    }

    /// Writes it as `summary.json` into `out`.
    pub fn write(&self, out: &Path) -> Result<(), StudyError> {
        let path = out.join("summary.json");
        crate::records::write_record(&path, self).map_err(|e| StudyError::file(&path, e.message))
    }
}

/// A progress bar on stderr (hidden when `show` is false).
pub fn progress_bar(len: usize, what: impl Into<String>, show: bool) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg:32} [{bar:30}] {pos}/{len}, {elapsed} (eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.into());
    bar
}

/// Mean and sample standard deviation (`n − 1`; NaN for fewer than 2 values) of the finite
/// values.
pub fn mean_sd(values: &[f64]) -> (f64, f64) {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let sd = if v.len() < 2 {
        f64::NAN
    } else {
        (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt()
    };
    (mean, sd)
}

/// Median of the finite values (NaN if none).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}
