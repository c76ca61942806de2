//! The run records: the JSON files each command writes into its output folder and the report
//! (and the studies) read back — `explain.json`, `concepts.json`, `atlas.json`, a study's
//! `summary.json` and `figures.json`, training's `model.train.json` and `ensemble.json`, the
//! synthetic data set's `dataset.json`, the demo's `run.json`, the sanity study's `sanity.json`, the quality study's `quality.json`, the expert review's `review.json`
//! and a shard's `shard.json`. Each is a serde type here (or
//! re-exported from the layer that builds it), read through [`read_record`] and written through
//! [`write_record`], so a field is named once and a reader cannot drift from its writer.
//!
//! Every record carries `schema_version` ([`SCHEMA_VERSION`] when written now; `explain.json`
//! will once `relevance explain` builds an [`ExplainRecord`] — it still writes the same shape
//! without the field). A file without it was written by the release before records were
//! versioned; it has the version-1 shape and reads as version 0 (and is written back without
//! the field, as it came). A file from a newer release is refused with an error naming it,
//! rather than read half-understood.

mod concepts;
mod explain;
mod quality;
mod review;
mod run;
mod sanity;
mod shard;
mod study;

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use concepts::{
    AtlasChannel, AtlasCrop, AtlasRecord, AtlasReference, AtlasSample, ConceptHeatmap,
    ConceptsRecord, RankedConceptRecord,
};
pub use explain::{
    ConservationRecord, ExplainRecord, GridRecord, LrpRecord, MapFiles, MethodRecord, OutputFile,
    OutputRecord, TargetRecord,
};
pub use quality::{QualityEntry, QualityRecord};
pub use review::{AgreementRecord, ReviewRow, ReviewSummary, TagRecord};
pub use run::{RunRecord, RunStep};
pub use sanity::{MeanInterval, SanityCurve, SanityLogit, SanityRecord, SanityStep, SanityVerdict};
pub use shard::{ModelFile, ShardItem, ShardManifest, SlurmJobs};
pub use study::{Figure, MapsSource, SourceImage, SourceMethod, StudySummary, Table};

/// `dataset.json` of the synthetic data set.
pub use crate::data::synth::SynthManifest as DatasetRecord;
/// `ensemble.json`.
pub use crate::train::ensemble::EnsembleRecord;
/// `model.train.json`: built by the training loop, which owns its parts.
pub use crate::train::trainer::TrainRecord;

/// The record layout this build writes and the newest it reads.
pub const SCHEMA_VERSION: u32 = 1;

/// A record that could not be read or written: the file and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.display())]
pub struct RecordError {
    /// The record file.
    pub path: PathBuf,
    /// What is wrong.
    pub message: String,
    /// Whether the record was refused for coming from a newer release (its content may be
    /// fine: the reader is too old), rather than for being unreadable or malformed.
    pub newer: bool,
}

impl RecordError {
    fn new(path: &Path, message: impl std::fmt::Display) -> RecordError {
        RecordError {
            path: path.to_path_buf(),
            message: message.to_string(),
            newer: false,
        }
    }
}

/// For `skip_serializing_if`: a record read from a file without `schema_version` is written
/// back without one, so reading and writing an old record changes nothing in it.
pub(crate) fn is_unversioned(version: &u32) -> bool {
    *version == 0
}

/// Reads the record `T` from `path`, refusing one written by a newer release.
pub fn read_record<T: DeserializeOwned>(path: &Path) -> Result<T, RecordError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| RecordError::new(path, format!("cannot read: {e}")))?;
    parse_record(path, &text)
}

/// Parses the record `T` from `text`, the content of `path` (named in errors).
pub fn parse_record<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, RecordError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| RecordError::new(path, format!("not JSON: {e}")))?;
    check_version(path, &value)?;
    // Parsed again from the text, not from `value`, so a wrong field is reported with its line.
    serde_json::from_str(text)
        .map_err(|e| RecordError::new(path, format!("not a valid record: {e}")))
}

/// Writes `record` to `path` as pretty JSON, atomically (a reader never sees half a record).
pub fn write_record<T: Serialize>(path: &Path, record: &T) -> Result<(), RecordError> {
    let text = serde_json::to_string_pretty(record)
        .map_err(|e| RecordError::new(path, format!("cannot serialise: {e}")))?;
    crate::io::write_text_atomic(path, &text)
        .map_err(|e| RecordError::new(path, format!("cannot write: {e}")))
}

/// The `schema_version` of a record, or of each record of a list (`concepts.json`,
/// `figures.json` hold one record per image or figure); an error when one is not a whole number
/// or is newer than [`SCHEMA_VERSION`].
fn check_version(path: &Path, value: &Value) -> Result<(), RecordError> {
    let records: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    for record in records {
        let Some(found) = record.get("schema_version") else {
            continue;
        };
        let version = found.as_u64().ok_or_else(|| {
            RecordError::new(
                path,
                format!("schema_version {found} is not a whole number"),
            )
        })?;
        if version > u64::from(SCHEMA_VERSION) {
            return Err(RecordError {
                newer: true,
                ..RecordError::new(
                    path,
                    format!(
                        "written by a newer relevance (schema_version {version}; this one reads \
                         up to {SCHEMA_VERSION}): upgrade relevance to read it"
                    ),
                )
            });
        }
    }
    Ok(())
}

/// The current time as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests;
