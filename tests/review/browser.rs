//! The rating page in a real browser: headless Chromium driven through WebDriver
//! (`chromedriver`, Debian's `chromium-driver`). Two raters answer with the keyboard, one
//! marks a region with a click and types tags, the server is killed (SIGKILL) mid-way and
//! restarted, a page is reloaded mid-way; then the database rows, `review export`,
//! `review summary` (counts and κ by hand) and the report section are checked, and
//! screenshots of the rating page and the report section are written to `target/tmp/`.
//!
//! Without `chromium` or `chromedriver` on PATH the test is skipped with a message, unless
//! `RELEVANCE_REQUIRE_CHROMIUM=1` (set by `.ci/run`, which installs both) makes that a failure.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use relevance::records::{ReviewSummary, read_record};
use serde_json::{Value, json};

use crate::common::{Server, explain_run, relevance, s, scratch};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const ENTER: &str = "\u{E007}";

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A minimal WebDriver client (JSON over HTTP/1.1) and the chromedriver it talks to.
struct Driver {
    process: Child,
    port: u16,
    session: String,
}

impl Driver {
    fn start(browser: &Path, driver: &Path, profile: &Path) -> Driver {
        let port = free_port();
        let process = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut driver = Driver {
            process,
            port,
            session: String::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=1100,900".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": browser, "args": args}
        }}});
        let created = driver.call("POST", "/session", Some(capabilities));
        driver.session = created["sessionId"].as_str().unwrap().to_string();
        driver
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.port,
            body.len()
        )
        .unwrap();
        let (head, body) = read_response(&mut stream);
        let value: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        assert!(head.contains(" 200 "), "{method} {path}: {head}\n{body}");
        value["value"].clone()
    }

    fn session(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.call(method, &format!("/session/{}{path}", self.session), body)
    }

    fn open(&self, url: &str) {
        self.session("POST", "/url", Some(json!({ "url": url })));
    }

    fn script(&self, script: &str) -> Value {
        self.session(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": [] })),
        )
    }

    fn element(&self, css: &str) -> Value {
        self.session(
            "POST",
            "/element",
            Some(json!({"using": "css selector", "value": css})),
        )
    }

    fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css)[ELEMENT].as_str().unwrap().to_string();
        self.session(
            "POST",
            &format!("/element/{id}/value"),
            Some(json!({ "text": text })),
        );
    }

    /// Presses and releases each key, as a person at the keyboard would.
    fn keys(&self, keys: &str) {
        let actions: Vec<Value> = keys
            .chars()
            .flat_map(|k| {
                [
                    json!({"type": "keyDown", "value": k.to_string()}),
                    json!({"type": "keyUp", "value": k.to_string()}),
                ]
            })
            .collect();
        self.session(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        );
    }

    /// Clicks `(dx, dy)` CSS pixels from the centre of the element `css`.
    fn click_at(&self, css: &str, dx: i64, dy: i64) {
        let element = self.element(css);
        self.session(
            "POST",
            "/actions",
            Some(json!({"actions": [{
                "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
                "actions": [
                    {"type": "pointerMove", "origin": element, "x": dx, "y": dy},
                    {"type": "pointerDown", "button": 0},
                    {"type": "pointerUp", "button": 0}
                ]
            }]})),
        );
    }

    fn screenshot(&self, file: &Path) {
        let png = self.session("GET", "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        std::fs::write(file, bytes).unwrap();
    }

    /// Waits until `script` returns `expected`.
    fn wait_for(&self, script: &str, expected: &Value) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let value = self.script(script);
            if &value == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{script}: {value} instead of {expected}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.call("DELETE", &format!("/session/{}", self.session), None)
            }));
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// One response: chromedriver keeps the connection open, so the body is read by its length.
fn read_response(stream: &mut TcpStream) -> (String, String) {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        raw.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&raw).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).unwrap();
    (head, String::from_utf8_lossy(&body).to_string())
}

/// What the page shows: `item k of n`, `done`, or the page's error.
const PROGRESS: &str = "const p = document.getElementById('progress'); \
    if (p && document.readyState === 'complete') return p.textContent; \
    if (document.getElementById('done')) return 'done'; \
    const e = document.getElementById('error'); return e ? 'error: ' + e.textContent : 'loading';";

/// Answers the current item with `key` and waits for the next page (`next` is what it shows).
fn answer(driver: &Driver, key: &str, next: &str) {
    driver.keys(key);
    driver.wait_for(PROGRESS, &json!(next));
}

/// A stored answer as the database holds it: rater, answer, tags, click x, click y.
type StoredAnswer = (String, String, String, Option<f64>, Option<f64>);

fn answers_in_db(db: &Path) -> Vec<StoredAnswer> {
    let connection = rusqlite::Connection::open(db).unwrap();
    let mut query = connection
        .prepare(
            "SELECT r.name, a.answer, a.tags, a.click_x, a.click_y FROM answers a \
             JOIN raters r ON r.id = a.rater_id ORDER BY a.id",
        )
        .unwrap();
    query
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn two_raters_rate_with_the_keyboard_through_a_killed_server_and_a_reload() {
    let (Some(browser), Some(chromedriver)) = (on_path("chromium"), on_path("chromedriver")) else {
        if std::env::var("RELEVANCE_REQUIRE_CHROMIUM").is_ok_and(|v| v == "1") {
            panic!("RELEVANCE_REQUIRE_CHROMIUM=1 but chromium or chromedriver is not on PATH");
        }
        eprintln!(
            "skipping the browser test: chromium and chromedriver (Debian chromium-driver) are needed"
        );
        return;
    };
    let dir = scratch("browser");
    let run = explain_run(&dir);
    let db = dir.join("review.sqlite");
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let driver = Driver::start(&browser, &chromedriver, &dir.join("profile"));

    // Ann: name, then the first item: a click on the overlay, tags, "wrong".
    let server = Server::start(&run, &db, &[]);
    driver.open(&server.url);
    driver.type_into("#rater", &format!("ann{ENTER}"));
    driver.wait_for(PROGRESS, &json!("item 1 of 6"));
    driver.wait_for(
        "return document.getElementById('overlay').naturalWidth",
        &json!(32),
    );
    // The overlay is shown 320 px wide for 32 input pixels: 40 px right of and above the
    // centre is input pixel (20, 12).
    driver.click_at("#overlay", 40, -40);
    driver.keys("t");
    driver.keys("eye socket, skull edge");
    driver.keys(ENTER);
    assert_eq!(
        driver.script("return document.querySelector('#overlay + .marker').hidden"),
        json!(false)
    );
    driver.screenshot(&shots.join("review-page.png"));
    answer(&driver, "w", "item 2 of 6");
    // The raw map on demand.
    driver.keys("m");
    driver.wait_for(
        "return document.getElementById('raw').naturalWidth",
        &json!(32),
    );
    assert_eq!(
        driver.script("return document.getElementById('rawfig').hidden"),
        json!(false)
    );
    answer(&driver, "c", "item 3 of 6");
    answer(&driver, "p", "item 4 of 6");

    // The server dies; what it acknowledged is in the database.
    server.kill();
    assert_eq!(answers_in_db(&db).len(), 3);
    let server = Server::start(&run, &db, &[]);
    driver.open(&format!("{}rate?rater=ann", server.url));
    driver.wait_for(PROGRESS, &json!("item 4 of 6"));
    assert!(
        driver
            .script("return document.getElementById('status').textContent")
            .as_str()
            .unwrap()
            .contains("Saved: partly")
    );
    answer(&driver, "c", "item 5 of 6");
    answer(&driver, "C", "item 6 of 6");
    answer(&driver, "w", "done");

    // Bob, with a reload in the middle.
    driver.open(&server.url);
    driver.type_into("#rater", &format!("bob{ENTER}"));
    driver.wait_for(PROGRESS, &json!("item 1 of 6"));
    answer(&driver, "w", "item 2 of 6");
    answer(&driver, "c", "item 3 of 6");
    driver.session("POST", "/refresh", Some(json!({})));
    driver.wait_for(PROGRESS, &json!("item 3 of 6"));
    for (key, next) in [
        ("c", "item 4 of 6"),
        ("c", "item 5 of 6"),
        ("w", "item 6 of 6"),
        ("w", "done"),
    ] {
        answer(&driver, key, next);
    }
    server.kill();

    // The rows, in the order given.
    let rows = answers_in_db(&db);
    let given: Vec<(&str, &str)> = rows.iter().map(|r| (r.0.as_str(), r.1.as_str())).collect();
    let expected = [
        ("ann", "wrong"),
        ("ann", "correct"),
        ("ann", "partly"),
        ("ann", "correct"),
        ("ann", "correct"),
        ("ann", "wrong"),
        ("bob", "wrong"),
        ("bob", "correct"),
        ("bob", "correct"),
        ("bob", "correct"),
        ("bob", "wrong"),
        ("bob", "wrong"),
    ];
    assert_eq!(given, expected);
    assert_eq!(rows[0].2, "eye socket, skull edge");
    let (x, y) = (rows[0].3.unwrap(), rows[0].4.unwrap());
    assert!(
        (x - 20.0).abs() <= 0.6 && (y - 12.0).abs() <= 0.6,
        "click at ({x}, {y})"
    );
    assert!(rows[1..].iter().all(|r| r.3.is_none() && r.2.is_empty()));

    // Export.
    let csv = dir.join("answers.csv");
    let res = relevance(&["review", "export", s(&db), "--out", s(&csv)]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 13);
    assert!(
        text.lines()
            .nth(1)
            .unwrap()
            .contains(",wrong,\"eye socket, skull edge\",")
    );

    // Summary: per item the pairs (w,w) (c,c) (p,c) (c,c) (c,w) (w,w): κ = 3/7 (see
    // store_summary.rs), α = 19/41; grad-cam is every odd item (ann w p c, bob w c w),
    // saliency every even one (ann c c w, bob c c w).
    let out = run.join("review");
    let res = relevance(&[
        "review",
        "summary",
        s(&db),
        "--out",
        s(&out),
        "--runs",
        s(&run),
    ]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    println!("{}", String::from_utf8_lossy(&res.stdout));
    let summary: ReviewSummary = read_record(&out.join("review.json")).unwrap();
    assert_eq!(
        (summary.raters.len(), summary.items, summary.answers),
        (2, 6, 12)
    );
    let counts: Vec<(&str, usize, usize, usize, usize)> = summary
        .rows
        .iter()
        .map(|r| (r.method.as_str(), r.n, r.correct, r.partly, r.wrong))
        .collect();
    assert_eq!(counts, [("grad-cam", 6, 2, 1, 3), ("saliency", 6, 4, 0, 2)]);
    let all = &summary.agreement[0];
    assert!((all.cohen_kappa.unwrap() - 3.0 / 7.0).abs() < 1e-12);
    assert!((all.krippendorff_alpha.unwrap() - 19.0 / 41.0).abs() < 1e-12);
    assert_eq!(summary.tags[0].tag, "eye socket");
    // With --runs, each example item's overlay is copied beside the summary: the very file
    // the server showed for that item id.
    let eye = &summary.tags[0];
    assert_eq!(eye.pictures.len(), eye.example_items.len());
    assert!(!eye.pictures.is_empty());
    let catalogue = relevance::review::items::discover(std::slice::from_ref(&run), None).unwrap();
    for (id, picture) in eye.example_items.iter().zip(&eye.pictures) {
        assert_eq!(picture, &format!("examples/{id}.png"));
        let item = catalogue.get(id).expect("an example is a catalogued item");
        assert_eq!(
            std::fs::read(out.join(picture)).unwrap(),
            item.overlay_png().unwrap()
        );
    }

    // The report picks the summary up.
    let report = dir.join("report.html");
    let res = relevance(&["report", s(&run), "--out", s(&report)]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        html.contains("Expert review") && html.contains("0.429") && html.contains("eye socket")
    );
    assert!(!html.contains("<img src=x onerror"));
    let grid = &html[html
        .find("Explanations raters tagged")
        .expect("tag pictures")..];
    assert!(html.contains("example 1") && grid.len() < html.len());
    driver.open(&format!("file://{}#review-0", report.display()));
    driver.wait_for("return document.readyState", &json!("complete"));
    driver.script("document.getElementById('review-0').scrollIntoView(); return 0;");
    driver.screenshot(&shots.join("review-report.png"));
    driver.script(
        "[...document.querySelectorAll('figcaption, caption, p')]\
         .find(e => e.textContent.includes('Explanations raters tagged')).scrollIntoView(false); return 0;",
    );
    driver.screenshot(&shots.join("review-report-tags.png"));
}
