//! `relevance demo --quick` end to end, and its report opened in headless Chromium: the page
//! loads with every picture decoded, shows the expected sections, and puts the shortcut first.
//! One screenshot per section (`report.html?only=ID`) is kept in `target/tmp/report-screens/`
//! for a human to look at.
//!
//! The DOM check runs on a copy of the page with [`READABILITY_PROBE`] added: it measures what
//! a reader sees (text sizes of the plots as scaled into the page, the conventions tables, where
//! grid row labels wrap, the bars of the bar chart) and writes the results onto `<body>`.
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

/// Text of a `data-…` attribute on `<body>` in a DOM dump.
fn body_text(dom: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let start = dom.find(&key)? + key.len();
    let end = dom[start..].find('"')? + start;
    Some(
        dom[start..end]
            .replace("&amp;", "&")
            .replace("&quot;", "\""),
    )
}

/// Value of a numeric `data-…` attribute on `<body>` in a DOM dump.
fn body_attribute(dom: &str, name: &str) -> Option<usize> {
    body_text(dom, name)?.parse().ok()
}

/// Measures, once the page has loaded, what a reader sees, and records it on `<body>`:
/// - `data-svg-texts`, `data-small-texts` (+ `-example`): text elements of the inline SVGs, and
///   those under 11 CSS px once the SVG is scaled to its width in the page;
/// - `data-convention-cells`, `data-convention-json`: cells of the conventions tables, and those
///   with JSON punctuation (`{`, `}`, `"`) in them;
/// - `data-rowlabels`, `data-split-words` (+ `-example`): grid row labels, and words in them
///   whose letters do not all sit on one line (a break inside the word);
/// - `data-bars`, `data-bar-gaps`: bars of the prediction-flips chart, and the room left of the
///   first bar and right of the last inside the plotting area (equal unless a slot is empty).
const READABILITY_PROBE: &str = r#"<script>
window.addEventListener('load', function () {
  var body = document.body;
  function note(name, value) { body.setAttribute('data-' + name, value); }
  var texts = 0, small = [];
  document.querySelectorAll('svg').forEach(function (svg) {
    var box = svg.viewBox && svg.viewBox.baseVal;
    var own = (box && box.width) || parseFloat(svg.getAttribute('width'));
    var scale = svg.getBoundingClientRect().width / own;
    svg.querySelectorAll('text').forEach(function (t) {
      if (!t.textContent.trim()) { return; }
      texts++;
      var px = parseFloat(getComputedStyle(t).fontSize) * scale;
      if (!(px >= 10.95)) { small.push(t.textContent.trim() + ' (' + px.toFixed(1) + ' px)'); }
    });
  });
  note('svg-texts', texts);
  note('small-texts', small.length);
  note('small-texts-example', small.slice(0, 3).join(' | '));
  var cells = document.querySelectorAll('table.pairs td'), json = 0;
  cells.forEach(function (c) { if (/[{}"]/.test(c.textContent)) { json++; } });
  note('convention-cells', cells.length);
  note('convention-json', json);
  var labels = document.querySelectorAll('th.rowlabel'), split = [];
  labels.forEach(function (th) {
    var walk = document.createTreeWalker(th, NodeFilter.SHOW_TEXT), top = null;
    for (var n = walk.nextNode(); n; n = walk.nextNode()) {
      for (var i = 0; i < n.data.length; i++) {
        // A no-break space joins, so it belongs to the word around it.
        if (' \t\n'.indexOf(n.data[i]) >= 0) { top = null; continue; }
        var range = document.createRange();
        range.setStart(n, i);
        range.setEnd(n, i + 1);
        var rect = range.getClientRects()[0];
        if (!rect) { continue; }
        if (top === null) { top = rect.top; }
        else if (Math.abs(rect.top - top) > 2) { split.push(th.textContent); top = rect.top; }
      }
    }
  });
  note('rowlabels', labels.length);
  note('split-words', split.length);
  note('split-words-example', split.slice(0, 3).join(' | '));
  document.querySelectorAll('figure').forEach(function (f) {
    var caption = f.querySelector('figcaption'), svg = f.querySelector('svg');
    if (!svg || caption.textContent.indexOf('Prediction flips per augmentation') !== 0) { return; }
    var at = function (e, a) { return parseFloat(e.getAttribute(a)); };
    var bars = Array.from(svg.querySelectorAll('rect')).slice(1); // the first is the canvas
    var width = at(svg, 'width');
    var grid = Array.from(svg.querySelectorAll('line')).filter(function (l) {
      return at(l, 'y1') === at(l, 'y2') && Math.abs(at(l, 'x2') - at(l, 'x1')) > width / 2;
    });
    var left = Math.min.apply(null, grid.map(function (l) { return Math.min(at(l, 'x1'), at(l, 'x2')); }));
    var right = Math.max.apply(null, grid.map(function (l) { return Math.max(at(l, 'x1'), at(l, 'x2')); }));
    var last = bars[bars.length - 1];
    note('bars', bars.length);
    note('bar-gaps', (at(bars[0], 'x') - left) + ',' + (right - at(last, 'x') - at(last, 'width')));
  });
  note('probed', 1);
});
</script>"#;

/// A copy of `report.html` with [`READABILITY_PROBE`] before `</body>`, beside the original.
fn probed_copy(report: &Path) -> PathBuf {
    let html = std::fs::read_to_string(report).expect("report.html readable");
    let at = html.rfind("</body>").expect("report has </body>");
    let copy = report.with_file_name("report-probed.html");
    let probed = format!("{}{READABILITY_PROBE}{}", &html[..at], &html[at..]);
    std::fs::write(&copy, probed).expect("write the probed copy");
    copy
}

/// The readability checks on a DOM dump of the probed copy; `augmentations` is the number of
/// categories of the prediction-flips bar chart.
fn assert_readable(dom: &str, augmentations: usize) {
    assert_eq!(
        body_attribute(dom, "data-probed"),
        Some(1),
        "probe did not run"
    );
    assert!(body_attribute(dom, "data-svg-texts").unwrap_or(0) >= 50);
    assert_eq!(
        body_attribute(dom, "data-small-texts"),
        Some(0),
        "plot text under 11 px in the page: {:?}",
        body_text(dom, "data-small-texts-example")
    );
    assert!(body_attribute(dom, "data-convention-cells").unwrap_or(0) >= 8);
    assert_eq!(
        body_attribute(dom, "data-convention-json"),
        Some(0),
        "JSON in a conventions table"
    );
    assert!(body_attribute(dom, "data-rowlabels").unwrap_or(0) >= 4);
    assert_eq!(
        body_attribute(dom, "data-split-words"),
        Some(0),
        "a grid row label breaks inside a word: {:?}",
        body_text(dom, "data-split-words-example")
    );
    assert_eq!(body_attribute(dom, "data-bars"), Some(augmentations));
    let gaps = body_text(dom, "data-bar-gaps").expect("prediction-flips chart measured");
    let (left, right) = gaps.split_once(',').expect("two gaps");
    let (left, right): (f64, f64) = (left.parse().unwrap(), right.parse().unwrap());
    assert!(
        (left - right).abs() <= 2.0,
        "bar chart room left {left} vs right {right}: an empty slot"
    );
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
    let probed = probed_copy(&out.join("report.html"));
    let dom = dump_dom(&browser, &format!("file://{}", probed.display()));
    assert_eq!(
        body_attribute(&dom, "data-images-broken"),
        Some(0),
        "some pictures did not decode"
    );
    assert!(body_attribute(&dom, "data-images-ok").unwrap_or(0) >= 20);
    assert!(body_attribute(&dom, "data-svgs").unwrap_or(0) >= 2);
    let stability: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("studies/stability/summary.json")).unwrap(),
    )
    .unwrap();
    let augmentations = stability["conventions"]["augmentations"]
        .as_array()
        .map_or(0, Vec::len);
    assert_readable(&dom, augmentations);
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
