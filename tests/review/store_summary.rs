//! The review database and `review summary` on answers counted by hand.

use relevance::records::{ReviewSummary, read_record};
use relevance::review::items::ItemInfo;
use relevance::review::store::{NewAnswer, Store};
use relevance::review::summary::write_summary;
use serde_json::Value;

use crate::common::{relevance, s, scratch};

fn item(id: char, method: &str, class: &str) -> ItemInfo {
    ItemInfo {
        id: id.to_string().repeat(32),
        model: "m.safetensors".into(),
        arch: Some("small_cnn".into()),
        method: method.into(),
        class: class.into(),
        class_index: 0,
        prob: Some(0.9),
        input: format!("scan_{id}.png"),
        source: "explain".into(),
    }
}

fn answer(rater: &str, id: char, answer: &str, tags: &str) -> NewAnswer {
    NewAnswer {
        rater: rater.into(),
        item: id.to_string().repeat(32),
        answer: answer.into(),
        tags: tags.into(),
        click: None,
        duration_ms: Some(1000),
    }
}

/// Items 1, 2 (method A, class x) and 3, 4 (method B, class y), three raters; ann first says
/// "correct" to item 2 and then changes her mind (only her latest answer counts).
fn hand_counted_db(path: &std::path::Path) {
    let mut store = Store::open(path).unwrap();
    store
        .add_items(&[
            item('1', "A", "x"),
            item('2', "A", "x"),
            item('3', "B", "y"),
            item('4', "B", "y"),
        ])
        .unwrap();
    for a in [
        answer("ann", '2', "correct", ""),
        answer("ann", '1', "correct", "Eye socket, skull edge"),
        answer("bob", '1', "correct", "eye socket"),
        answer("cat", '1', "correct", ""),
        answer("ann", '2', "wrong", ""),
        answer("bob", '2', "partly", ""),
        answer("cat", '2', "wrong", "eye socket ,text marker"),
        answer("ann", '3', "correct", ""),
        answer("bob", '3', "correct", ""),
        answer("cat", '3', "unsure", ""),
        answer("ann", '4', "wrong", ""),
        answer("bob", '4', "wrong", ""),
        answer("cat", '4', "wrong", ""),
    ] {
        store.add_answer(&a).unwrap();
    }
}

fn wilson_reference(k: u64, n: u64) -> (f64, f64) {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/review/agreement.json"
    );
    let fixtures: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let case = fixtures["wilson"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["k"] == k && c["n"] == n)
        .unwrap();
    (
        case["low"].as_f64().unwrap(),
        case["high"].as_f64().unwrap(),
    )
}

#[test]
fn summary_counts_latest_answers_with_wilson_intervals_and_agreement() {
    let dir = scratch("summary");
    let db = dir.join("review.sqlite");
    hand_counted_db(&db);
    let (summary, json) = write_summary(&db, &dir.join("out"), &[], None).unwrap();
    assert_eq!(summary.raters, ["ann", "bob", "cat"]);
    assert_eq!((summary.items, summary.answers), (4, 12));
    let a = &summary.rows[0];
    assert_eq!((a.method.as_str(), a.class.as_str()), ("A", "x"));
    assert_eq!(
        (a.n, a.correct, a.partly, a.wrong, a.unsure),
        (6, 3, 1, 2, 0)
    );
    assert!((a.pct_correct.unwrap() - 50.0).abs() < 1e-12);
    let (low, high) = wilson_reference(3, 6);
    assert!((a.wilson_low.unwrap() - 100.0 * low).abs() < 1e-9);
    assert!((a.wilson_high.unwrap() - 100.0 * high).abs() < 1e-9);
    let b = &summary.rows[1];
    assert_eq!(
        (b.n, b.correct, b.partly, b.wrong, b.unsure),
        (6, 2, 0, 3, 1)
    );
    let (low, _) = wilson_reference(2, 6);
    assert!((b.wilson_low.unwrap() - 100.0 * low).abs() < 1e-9);
    // All items, by hand: Fleiss P̄ = 2/3, P_e = 13/36 → κ = 11/23; Krippendorff's
    // coincidences give n = 12, 4 off-diagonal, Σ n_c n_k = 92 → α = 1 − 11·4/92 = 12/23.
    let all = &summary.agreement[0];
    assert_eq!((all.model.as_str(), all.raters, all.items), ("all", 3, 4));
    assert!((all.fleiss_kappa.unwrap() - 11.0 / 23.0).abs() < 1e-12);
    assert!((all.krippendorff_alpha.unwrap() - 12.0 / 23.0).abs() < 1e-12);
    assert_eq!(all.cohen_kappa, None, "Cohen's κ is for two raters");
    // Method A alone: P̄ = 2/3, P_e = 14/36 → κ = 5/11.
    let scope_a = &summary.agreement[1];
    assert_eq!(scope_a.method, "A");
    assert!((scope_a.fleiss_kappa.unwrap() - 5.0 / 11.0).abs() < 1e-12);
    let tags: Vec<(&str, usize)> = summary
        .tags
        .iter()
        .filter(|t| t.method == "A")
        .map(|t| (t.tag.as_str(), t.count))
        .collect();
    assert_eq!(
        tags,
        [("eye socket", 3), ("skull edge", 1), ("text marker", 1)]
    );
    assert_eq!(
        summary.tags[0].examples,
        ["scan_1.png (x)", "scan_2.png (x)"]
    );
    // The record reads back, and the CSV holds the same rows.
    let back: ReviewSummary = read_record(&json).unwrap();
    assert_eq!(back, summary);
    let csv = std::fs::read_to_string(dir.join("out/review.csv")).unwrap();
    assert_eq!(csv.lines().count(), 3);
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .starts_with("m.safetensors,A,x,6,3,1,2,0,50.0000,")
    );
}

#[test]
fn two_raters_get_cohens_kappa() {
    let dir = scratch("cohen");
    let db = dir.join("review.sqlite");
    let mut store = Store::open(&db).unwrap();
    let ids = ['1', '2', '3', '4', '5', '6'];
    store.add_items(&ids.map(|i| item(i, "A", "x"))).unwrap();
    // Pairs (w,w) (c,c) (p,c) (c,c) (c,w) (w,w): p_o = 4/6, ann's marginals c3 p1 w2, bob's
    // c3 w3 → p_e = (9 + 6)/36 → κ = (24 − 15)/(36 − 15) = 3/7.
    for (i, (a, b)) in ids.iter().zip([
        ("wrong", "wrong"),
        ("correct", "correct"),
        ("partly", "correct"),
        ("correct", "correct"),
        ("correct", "wrong"),
        ("wrong", "wrong"),
    ]) {
        store.add_answer(&answer("ann", *i, a, "")).unwrap();
        store.add_answer(&answer("bob", *i, b, "")).unwrap();
    }
    drop(store);
    let out = dir.join("out");
    let res = relevance(&["review", "summary", s(&db), "--out", s(&out)]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let summary: ReviewSummary = read_record(&out.join("review.json")).unwrap();
    let all = &summary.agreement[0];
    assert!((all.cohen_kappa.unwrap() - 3.0 / 7.0).abs() < 1e-12);
    assert!((all.krippendorff_alpha.unwrap() - 19.0 / 41.0).abs() < 1e-12);
    let stdout = String::from_utf8_lossy(&res.stdout);
    assert!(stdout.contains("Cohen κ 0.429"), "{stdout}");
}

#[test]
fn store_uses_wal_refuses_bad_answers_and_exports_csv_and_json() {
    let dir = scratch("store");
    let db = dir.join("review.sqlite");
    let mut store = Store::open(&db).unwrap();
    assert_eq!(store.journal_mode().unwrap(), "wal");
    store.add_items(&[item('a', "A", "x")]).unwrap();
    let mut good = answer(
        "<b>Dr. O'Neil</b>",
        'a',
        "partly",
        "skull edge, \"text\" marker",
    );
    good.click = Some((3.5, 7.25));
    store.add_answer(&good).unwrap();
    for bad in [
        answer("ann", 'a', "maybe", ""),
        answer("", 'a', "correct", ""),
        answer("ann\u{7}", 'a', "correct", ""),
        answer("ann", 'f', "correct", ""),
        answer(&"x".repeat(65), 'a', "correct", ""),
    ] {
        assert!(store.add_answer(&bad).is_err(), "{bad:?} was accepted");
    }
    drop(store);
    let connection = rusqlite::Connection::open(&db).unwrap();
    let rows: i64 = connection
        .query_row("SELECT count(*) FROM answers", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1);
    let csv_path = dir.join("answers.csv");
    let res = relevance(&["review", "export", s(&db), "--out", s(&csv_path)]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    let line = csv.lines().nth(1).unwrap();
    assert!(
        line.contains(",<b>Dr. O'Neil</b>,")
            && line.contains(",partly,\"skull edge, \"\"text\"\" marker\",3.5,7.25,"),
        "{line}"
    );
    let json_path = dir.join("answers.json");
    assert!(
        relevance(&["review", "export", s(&db), "--out", s(&json_path)])
            .status
            .success()
    );
    let rows: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(rows[0]["tags"], "skull edge, \"text\" marker");
    assert_eq!(rows[0]["click_x"], 3.5);
    assert_eq!(rows[0]["rater"], "<b>Dr. O'Neil</b>");
}

#[test]
fn bad_databases_and_outputs_are_one_line_errors() {
    let dir = scratch("bad-db");
    let not_db = dir.join("notes.sqlite");
    std::fs::write(&not_db, "this is not a database, just text\n".repeat(100)).unwrap();
    let empty_db = dir.join("empty.sqlite");
    rusqlite::Connection::open(&empty_db)
        .unwrap()
        .execute_batch("CREATE TABLE t (x)")
        .unwrap();
    for (args, expect) in [
        (vec!["review", "summary", s(&not_db)], "notes.sqlite"),
        (
            vec!["review", "summary", s(&empty_db)],
            "not a review database",
        ),
        (
            vec![
                "review",
                "export",
                "/nonexistent/r.sqlite",
                "--out",
                "x.csv",
            ],
            "no such database file",
        ),
    ] {
        let res = relevance(&args);
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(expect),
            "{stderr}"
        );
    }
    let db = dir.join("ok.sqlite");
    Store::open(&db).unwrap();
    let res = relevance(&["review", "export", s(&db), "--out", s(&dir.join("a.txt"))]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert!(
        stderr.contains("a.txt: the export is written as .csv or .json"),
        "{stderr}"
    );
}

#[test]
fn the_report_shows_a_review_summary_and_ignores_other_tools_review_json() {
    let dir = scratch("report");
    let run = dir.join("run");
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/runs/v1/explain");
    std::fs::create_dir_all(run.join("explain")).unwrap();
    for entry in std::fs::read_dir(&fixture).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, run.join("explain").join(path.file_name().unwrap())).unwrap();
    }
    std::fs::create_dir_all(run.join("notes")).unwrap();
    std::fs::write(
        run.join("notes/review.json"),
        r#"{"reviewer": "someone else's tool"}"#,
    )
    .unwrap();
    let report = dir.join("report.html");
    assert!(
        relevance(&["report", s(&run), "--out", s(&report)])
            .status
            .success()
    );
    assert!(
        !std::fs::read_to_string(&report)
            .unwrap()
            .contains("Expert review")
    );

    let db = dir.join("review.sqlite");
    hand_counted_db(&db);
    // A hostile tag reaches the report only as text.
    let mut store = Store::open(&db).unwrap();
    store
        .add_answer(&answer("dan", '1', "wrong", "<script>alert(1)</script>"))
        .unwrap();
    drop(store);
    write_summary(&db, &run.join("review"), &[], None).unwrap();
    assert!(
        relevance(&["report", s(&run), "--out", s(&report)])
            .status
            .success()
    );
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(html.contains("Expert review"));
    assert!(
        html.contains("4 raters gave 13 answers on 4 explanations"),
        "counts in the callout"
    );
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
            && !html.contains("<script>alert(1)")
    );
}
