//! Run folders written before records carried a `schema_version` still load: the committed
//! folder `tests/fixtures/runs/v1` (see its README) reads through the typed readers of
//! `relevance::records`, and `relevance report` builds a report from it showing every record's
//! pictures. A record from a newer release is refused by name.

use std::path::{Path, PathBuf};
use std::process::Command;

use relevance::records::{
    AtlasRecord, ConceptsRecord, DatasetRecord, EnsembleRecord, ExplainRecord, Figure,
    SCHEMA_VERSION, StudySummary, TrainRecord, read_record,
};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runs/v1")
}

/// A fresh copy of the fixture run folder (the report is written into it).
fn copy_of_fixture(tag: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("records-{tag}"));
    let _ = std::fs::remove_dir_all(&dir);
    copy_dir(&fixture(), &dir);
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// `relevance report RUN`, run from inside the run folder as the fixture's commands were (its
/// records name paths relative to it); returns the report.
fn report(run: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_relevance"))
        .current_dir(run)
        .args(["report", "."])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    std::fs::read_to_string(run.join("report.html")).unwrap()
}

/// How many `<img>` of `width` pixels the report holds.
fn pictures(html: &str, width: u32) -> usize {
    html.matches(&format!("<img style=\"width:{width}px\""))
        .count()
}

#[test]
fn every_record_of_the_old_run_folder_reads_typed() {
    let run = fixture();
    for dir in ["explain", "explain-clean"] {
        let e: ExplainRecord = read_record(&run.join(dir).join("explain.json")).unwrap();
        assert_eq!(e.schema_version, 0, "written before the field existed");
        assert_eq!(e.outputs.len(), 2);
        for out in &e.outputs {
            for m in &e.methods {
                let png = out.map_png(&m.name).expect("every method has a map");
                assert!(run.join(dir).join(png).is_file(), "{dir}/{png}");
            }
        }
    }
    for model in ["shortcut/seed-0", "clean/seed-1"] {
        let train: TrainRecord =
            read_record(&run.join("models").join(model).join("model.train.json")).unwrap();
        assert!(train.metrics.contains_key("test"));
        assert_eq!(train.card.classes, ["benign", "malignant"]);
    }
    let ensemble: EnsembleRecord = read_record(&run.join("models/shortcut/ensemble.json")).unwrap();
    assert_eq!(ensemble.members.len(), 1);
    let dataset: DatasetRecord = read_record(&run.join("data/dataset.json")).unwrap();
    assert_eq!(dataset.config.confounder, Some(0.9));
    let concepts: Vec<ConceptsRecord> = read_record(&run.join("concepts/concepts.json")).unwrap();
    assert_eq!(concepts[0].heatmaps.len(), 2);
    let atlas: AtlasRecord = read_record(&run.join("atlas/atlas.json")).unwrap();
    assert_eq!(atlas.channels.len(), 2);
    let summary: StudySummary = read_record(&run.join("studies/compare/summary.json")).unwrap();
    assert_eq!(summary.study, "compare");
    let figures: Vec<Figure> = read_record(&run.join("studies/compare/figures.json")).unwrap();
    assert!(!figures.is_empty());
}

#[test]
fn the_report_of_the_old_run_folder_shows_every_record() {
    let run = copy_of_fixture("report");
    let html = report(&run);
    for title in [
        "Key findings",
        "Data",
        "Models",
        "Explanations",
        "Concepts (CRP)",
        "Comparison of methods and models",
        "How this was made",
    ] {
        assert!(html.contains(&format!("<h2>{title}")), "no section {title}");
    }
    assert!(
        !html.contains("Left out of this report"),
        "every file is inside and readable"
    );
    // Every explained input's picture and maps: a row per output, a column per method + input.
    let explains: Vec<ExplainRecord> = ["explain", "explain-clean"]
        .iter()
        .map(|d| read_record(&run.join(d).join("explain.json")).unwrap())
        .collect();
    let cells: usize = explains
        .iter()
        .map(|e| e.outputs.len() * (e.methods.len() + 1))
        .sum();
    assert_eq!(pictures(&html, 112), cells);
    // The side-by-side of the two explain folders: input + (LRP, Grad-CAM) × 2 folders per row.
    assert_eq!(
        pictures(&html, 110),
        explains[0].outputs.len() * (1 + 2 * 2)
    );
    // The concepts grid: the input and one heatmap per concept.
    let concepts: Vec<ConceptsRecord> = read_record(&run.join("concepts/concepts.json")).unwrap();
    assert_eq!(pictures(&html, 96), 1 + concepts[0].heatmaps.len());
    let atlas: AtlasRecord = read_record(&run.join("atlas/atlas.json")).unwrap();
    for ch in &atlas.channels {
        let caption = format!(
            "Concept atlas, layer {}, channel {}:",
            atlas.layer, ch.channel
        );
        assert!(html.contains(&caption), "{caption}");
    }
    let figures: Vec<Figure> = read_record(&run.join("studies/compare/figures.json")).unwrap();
    for f in &figures {
        assert!(
            html.contains(&format!("<figcaption>{}. ", f.title)),
            "{}",
            f.title
        );
    }
    // The models' accuracies come from their training records.
    let train: TrainRecord =
        read_record(&run.join("models/shortcut/seed-0/model.train.json")).unwrap();
    let test = train.metrics["test"].accuracy;
    assert!(html.contains(&format!("{:.1} %", 100.0 * test)));
    let _ = std::fs::remove_dir_all(&run);
}

#[test]
fn a_record_from_a_newer_release_is_left_out_by_name() {
    let run = copy_of_fixture("newer");
    let path = run.join("explain-clean/explain.json");
    let mut record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let newer = SCHEMA_VERSION + 1;
    record["schema_version"] = newer.into();
    std::fs::write(&path, record.to_string()).unwrap();
    let err = read_record::<ExplainRecord>(&path).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}: ", path.display())), "{err}");
    assert!(err.contains("newer"), "{err}");
    // The report still builds from the rest and says which record it could not read.
    let html = report(&run);
    assert!(html.contains("Left out of this report"));
    assert!(
        html.contains(&format!(
            "explain-clean/explain.json (a run record): written by a newer relevance \
             (schema_version {newer}"
        )),
        "no note of the newer record"
    );
    // Only one explain folder is left, so no side-by-side of two.
    assert_eq!(pictures(&html, 110), 0);
    let _ = std::fs::remove_dir_all(&run);
}
