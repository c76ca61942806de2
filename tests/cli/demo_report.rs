//! `relevance demo --quick` end to end, and its report opened in headless Chromium: the page
//! loads with every picture decoded, shows the expected sections, and puts the shortcut first.
//! One screenshot per section (`report.html?only=ID`) is kept in `target/tmp/report-screens/`
//! for a human to look at.
//!
//! Chromium (Debian `chromium`) is looked up on PATH; without it the browser half is skipped
//! with a message, unless `RELEVANCE_REQUIRE_CHROMIUM=1` (set by `.ci/run`) makes that a failure.

use std::path::{Path, PathBuf};
use std::process::Command;

fn relevance(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_relevance"))
        .args(args)
        .output()
        .expect("run relevance")
}

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in ["chromium", "chromium-browser", "google-chrome"] {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

const FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
];

fn dump_dom(browser: &Path, url: &str) -> String {
    let out = Command::new(browser)
        .args(FLAGS)
        .args([
            "--window-size=1280,1400",
            "--virtual-time-budget=10000",
            "--dump-dom",
            url,
        ])
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium --dump-dom failed: {out:?}");
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn screenshot(browser: &Path, url: &str, file: &Path) {
    let shot = format!("--screenshot={}", file.display());
    let out = Command::new(browser)
        .args(FLAGS)
        .args([
            &shot,
            "--window-size=1280,1400",
            "--hide-scrollbars",
            "--virtual-time-budget=5000",
            url,
        ])
        .output()
        .expect("run chromium");
    assert!(
        out.status.success(),
        "chromium --screenshot failed: {out:?}"
    );
}

/// Value of a `data-…` attribute on `<body>` in a DOM dump.
fn body_attribute(dom: &str, name: &str) -> Option<usize> {
    let key = format!("{name}=\"");
    let start = dom.find(&key)? + key.len();
    let end = dom[start..].find('"')? + start;
    dom[start..end].parse().ok()
}

/// Standard deviation of the grey levels of a screenshot: a blank page is ~0.
fn grey_sd(file: &Path) -> f64 {
    let img = image::open(file).expect("screenshot decodes").to_luma8();
    let v: Vec<f64> = img.pixels().map(|p| p.0[0] as f64).collect();
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
}

#[test]
fn quick_demo_writes_a_report_that_renders_and_shows_the_shortcut_first() {
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("demo-quick");
    let _ = std::fs::remove_dir_all(&out);
    let run = relevance(&["demo", "--quick", "--out", out.to_str().unwrap()]);
    assert!(
        run.status.success(),
        "demo failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let html = std::fs::read_to_string(out.join("report.html")).expect("report.html written");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(record["mode"], "quick");
    assert!(record["finished"].is_string());
    // The confounded ensemble must really have learned the shortcut, or the demo shows nothing.
    let ensemble: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("models/shortcut/ensemble.json")).unwrap(),
    )
    .unwrap();
    let clean: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("models/clean/ensemble.json")).unwrap(),
    )
    .unwrap();
    let shortcut_acc = ensemble["test_accuracy_mean"].as_f64().unwrap();
    let clean_acc = clean["test_accuracy_mean"].as_f64().unwrap();
    assert!(
        clean_acc > shortcut_acc + 0.1,
        "clean {clean_acc} vs shortcut {shortcut_acc}"
    );
    // The first callout of the report is the shortcut warning.
    let findings = html.find("id=\"findings\"").expect("findings section");
    let first_callout = html[findings..].find("class=\"callout").unwrap() + findings;
    assert!(html[first_callout..].starts_with("class=\"callout warning\""));
    let warning_end = html[first_callout..].find("</div>").unwrap() + first_callout;
    assert!(html[first_callout..warning_end].contains("models/shortcut"));

    // Re-running skips every finished step and rebuilds the same report.
    let again = relevance(&["demo", "--quick", "--out", out.to_str().unwrap()]);
    assert!(again.status.success());
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    let steps = record["steps"].as_array().unwrap();
    assert!(
        steps
            .iter()
            .filter(|s| s["name"] != "report")
            .all(|s| s["skipped"] == true)
    );

    let Some(browser) = chromium() else {
        if std::env::var("RELEVANCE_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1") {
            panic!("RELEVANCE_REQUIRE_CHROMIUM=1 but no chromium on PATH");
        }
        eprintln!("skipping the browser check: no chromium on PATH");
        return;
    };
    let url = format!(
        "file://{}",
        std::fs::canonicalize(out.join("report.html"))
            .unwrap()
            .display()
    );
    let dom = dump_dom(&browser, &url);
    assert_eq!(
        body_attribute(&dom, "data-images-broken"),
        Some(0),
        "some pictures did not decode"
    );
    assert!(body_attribute(&dom, "data-images-ok").unwrap_or(0) >= 20);
    assert!(body_attribute(&dom, "data-svgs").unwrap_or(0) >= 2);
    let mut sections = vec![
        "findings",
        "data",
        "models",
        "explanations",
        "concepts",
        "reproduce",
    ];
    for study in ["faithfulness", "stability", "variability", "compare"] {
        let id = dom
            .split("id=\"")
            .skip(1)
            .filter_map(|s| s.split('"').next())
            .find(|id| id.starts_with("study-") && id.ends_with(study))
            .unwrap_or_else(|| panic!("no {study} section in the rendered page"));
        sections.push(Box::leak(id.to_string().into_boxed_str()));
    }
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-screens");
    std::fs::create_dir_all(&shots).unwrap();
    for id in sections {
        assert!(
            dom.contains(&format!("id=\"{id}\"")),
            "section {id} missing"
        );
        let file = shots.join(format!("{id}.png"));
        screenshot(&browser, &format!("{url}?only={id}"), &file);
        assert!(grey_sd(&file) > 10.0, "{} looks blank", file.display());
    }
}

#[test]
fn report_of_a_folder_without_results_is_a_clear_error() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("empty-run");
    std::fs::create_dir_all(&dir).unwrap();
    let out = relevance(&["report", dir.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothing to report"), "{err}");
    assert!(err.lines().count() == 1, "{err}");
    let missing = relevance(&["report", "/no/such/run"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not a folder"));
}
