//! Records written by the release before versioning (the committed run folder in
//! `tests/fixtures/runs/v1`, and a quick demo's `run.json`) read into the typed records and
//! write back unchanged; versions are checked.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::*;

const EXPLAIN: &str = include_str!("../../tests/fixtures/runs/v1/explain/explain.json");
const CONCEPTS: &str = include_str!("../../tests/fixtures/runs/v1/concepts/concepts.json");
const ATLAS: &str = include_str!("../../tests/fixtures/runs/v1/atlas/atlas.json");
const SUMMARY: &str = include_str!("../../tests/fixtures/runs/v1/studies/compare/summary.json");
const FIGURES: &str = include_str!("../../tests/fixtures/runs/v1/studies/compare/figures.json");
const DEMO_RUN: &str = include_str!("../../tests/fixtures/runs/demo-quick-run.json");

/// `record` as the JSON text it writes, parsed (through the text, as a reader sees it: an
/// `f32` field turned straight into a `Value` would show its f64 widening instead).
fn written<T: Serialize>(record: &T) -> Value {
    serde_json::from_str(&serde_json::to_string(record).unwrap()).unwrap()
}

/// `text` read as `T` and written back, as JSON values (key order aside), with the record.
fn round_trip<T: DeserializeOwned + Serialize>(name: &str, text: &str) -> (T, Value, Value) {
    let record: T = parse_record(Path::new(name), text).unwrap();
    let original: Value = serde_json::from_str(text).unwrap();
    let again = written(&record);
    (record, original, again)
}

#[test]
fn todays_explain_json_reads_typed_and_writes_back_the_same() {
    let (record, original, again) = round_trip::<ExplainRecord>("explain.json", EXPLAIN);
    assert_eq!(again, original);
    assert_eq!(record.schema_version, 0, "the file predates the field");
    assert_eq!(record.outputs.len(), 2);
    let names: Vec<&str> = record.methods.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["saliency", "grad-cam", "lrp-epsilon-plus-flat"]);
    for out in &record.outputs {
        for m in &record.methods {
            let png = out.map_png(&m.name).unwrap();
            assert_eq!(png, format!("{}.{}.png", out.stem, m.name));
        }
        // The LRP map's conservation entry is read as one, not kept as an unknown value.
        let conservation = &out.files["lrp-epsilon-plus-flat.conservation"];
        assert!(
            matches!(conservation, OutputFile::Conservation(c) if c.error.is_finite()),
            "{conservation:?}"
        );
        assert!(out.target.prob > 0.0 && out.target.prob <= 1.0);
    }
    assert_eq!(record.methods[1].style(), crate::methods::MapStyle::Unit);
    assert_eq!(record.grid.as_ref().unwrap().rows.len(), 2);
}

#[test]
fn todays_concepts_atlas_and_figures_read_typed_and_write_back_the_same() {
    let (lines, original, again) = round_trip::<Vec<ConceptsRecord>>("concepts.json", CONCEPTS);
    assert_eq!(again, original);
    assert_eq!(lines[0].heatmaps.len(), lines[0].concepts.len());
    let (atlas, original, again) = round_trip::<AtlasRecord>("atlas.json", ATLAS);
    assert_eq!(again, original);
    for ch in &atlas.channels {
        assert!(ch.relevance.iter().all(|r| r.sample < atlas.samples.len()));
    }
    let (figures, original, again) = round_trip::<Vec<Figure>>("figures.json", FIGURES);
    assert_eq!(again, original);
    assert!(figures.iter().any(|f| f.svg.is_some()));
}

#[test]
fn todays_demo_run_json_reads_typed_and_writes_back_the_same() {
    let (run, original, again) = round_trip::<RunRecord>("run.json", DEMO_RUN);
    assert_eq!(again, original);
    assert_eq!(run.mode.as_deref(), Some("quick"));
    assert!(!run.steps.is_empty());
    // The total is at least the time of the steps that ran (each rounded to 0.1 s).
    let steps: f64 = run.steps.iter().map(|s| s.seconds).sum();
    let slack = 0.05 * run.steps.len() as f64;
    assert!(run.seconds.unwrap() + slack >= steps, "{run:?}");
}

#[test]
fn a_summary_reads_typed_and_writes_back_stamped_with_the_version() {
    let (summary, mut original, again) = round_trip::<StudySummary>("summary.json", SUMMARY);
    assert_eq!(summary.study, "compare");
    assert!(summary.table.column("marker mass").is_some());
    assert!(
        summary
            .table
            .rows
            .iter()
            .all(|r| r.len() == summary.table.columns.len())
    );
    // Written back it is the same record plus its version (a summary is always written fresh).
    original["schema_version"] = Value::from(SCHEMA_VERSION);
    assert_eq!(again, original);
}

#[test]
fn records_written_now_carry_the_version_and_read_back_equal() {
    let dir = std::env::temp_dir().join(format!("relevance-records-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("explain.json");
    let mut record: ExplainRecord = parse_record(Path::new("x"), EXPLAIN).unwrap();
    record.schema_version = SCHEMA_VERSION;
    write_record(&path, &record).unwrap();
    let raw: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(raw["schema_version"], SCHEMA_VERSION);
    // NaN does not compare equal, so compare what was written, not the structs.
    let back: ExplainRecord = read_record(&path).unwrap();
    assert_eq!(written(&back), raw);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_newer_version_is_refused_naming_the_file() {
    let newer = SCHEMA_VERSION + 1;
    let path = Path::new("run/explain/explain.json");
    let text = format!(r#"{{"schema_version": {newer}, "model": "m"}}"#);
    let err = parse_record::<ExplainRecord>(path, &text).unwrap_err();
    assert!(err.newer);
    let message = err.to_string();
    assert!(
        message.starts_with("run/explain/explain.json: "),
        "{message}"
    );
    assert!(
        message.contains(&format!("schema_version {newer}")),
        "{message}"
    );
    assert!(message.contains("newer"), "{message}");
    // In a list, one newer entry is enough to refuse the file.
    let list = format!(r#"[{{"file": "a.png"}}, {{"schema_version": {newer}, "file": "b.png"}}]"#);
    assert!(parse_record::<Vec<Figure>>(Path::new("figures.json"), &list).is_err());
    // The current version and no version at all both read.
    let current = format!(r#"{{"schema_version": {SCHEMA_VERSION}, "model": "m"}}"#);
    let read: ExplainRecord = parse_record(path, &current).unwrap();
    assert_eq!(
        (read.schema_version, read.model.as_str()),
        (SCHEMA_VERSION, "m")
    );
    let unversioned: ExplainRecord = parse_record(path, r#"{"model": "m"}"#).unwrap();
    assert_eq!(unversioned.schema_version, 0);
}

#[test]
fn a_malformed_record_names_the_file_and_the_fault() {
    let path = Path::new("out/atlas.json");
    let bad_version = parse_record::<AtlasRecord>(path, r#"{"schema_version": "one"}"#);
    let bad_version = bad_version.unwrap_err();
    assert!(!bad_version.newer);
    assert!(bad_version.to_string().contains("not a whole number"));
    let not_json = parse_record::<AtlasRecord>(path, "{")
        .unwrap_err()
        .to_string();
    assert!(
        not_json.starts_with("out/atlas.json: not JSON"),
        "{not_json}"
    );
    let wrong = parse_record::<AtlasRecord>(path, r#"{"top_k": "eight"}"#);
    let wrong = wrong.unwrap_err().to_string();
    assert!(
        wrong.contains("not a valid record") && wrong.contains("line 1"),
        "{wrong}"
    );
    let missing = read_record::<AtlasRecord>(Path::new("/nonexistent/atlas.json"));
    assert!(missing.unwrap_err().to_string().contains("cannot read"));
}
