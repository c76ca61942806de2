//! The server as an attacker meets it: path traversal, tokens, foreign host names, hostile
//! text, oversized bodies; and blind mode's hiding and shuffling.

use crate::common::{
    HOSTILE_CLASS, Server, answer_through_api, explain_run, http, item_on, relevance, s, scratch,
};

#[test]
fn requests_never_reach_files_outside_the_catalogue() {
    let dir = scratch("traversal");
    let run = explain_run(&dir);
    // A secret beside the run folder and one inside it that is no item's file.
    std::fs::write(dir.join("secret.txt"), "outside").unwrap();
    std::fs::write(run.join("explain/secret.txt"), "inside").unwrap();
    let server = Server::start(&run, &dir.join("r.sqlite"), &[]);
    let page = http(server.port, "GET", "/rate?rater=ann", &[], b"").text();
    let id = item_on(&page).unwrap();
    let ok = http(server.port, "GET", &format!("/item/{id}/overlay"), &[], b"");
    assert_eq!(ok.status, 200);
    assert!(ok.body.starts_with(b"\x89PNG"));
    for target in [
        "/../secret.txt".to_string(),
        "/../../../../etc/passwd".into(),
        "/%2e%2e/%2e%2e/etc/passwd".into(),
        "/item/..%2F..%2Fsecret.txt/input".into(),
        format!("/item/{id}/..%2F..%2F..%2Fsecret.txt"),
        format!("/item/{id}/%2e%2e"),
        "/item/%2e%2e%2fexplain%2fsecret.txt/overlay".into(),
        "/explain/secret.txt".into(),
        "/etc/passwd".into(),
        "//etc/passwd".into(),
        "/item//etc/passwd/input".into(),
        "/item/C:%5Cwindows%5Cwin.ini/input".into(),
        format!("/item/{}/overlay", id.to_uppercase()),
        "/item/00000000000000000000000000000000/overlay".into(),
    ] {
        let res = http(server.port, "GET", &target, &[], b"");
        let body = res.text();
        assert!(
            matches!(res.status, 400 | 404),
            "{target}: status {}",
            res.status
        );
        assert!(
            !body.contains("outside") && !body.contains("inside") && !body.contains("root:"),
            "{target}: {body}"
        );
    }
}

#[test]
fn a_token_is_required_on_every_request_when_asked_for() {
    let dir = scratch("token");
    let run = explain_run(&dir);
    let server = Server::start(&run, &dir.join("r.sqlite"), &["--token"]);
    let token = server.url.split("token=").nth(1).unwrap().to_string();
    assert_eq!(token.len(), 32);
    for target in [
        "/",
        "/rate?rater=ann",
        "/review.js",
        "/?token=wrong",
        "/api/answer",
    ] {
        let res = http(server.port, "GET", target, &[], b"");
        assert_eq!(res.status, 403, "{target}");
    }
    let post = http(
        server.port,
        "POST",
        "/api/answer",
        &[("Content-Type", "application/json")],
        b"{}",
    );
    assert_eq!(post.status, 403);
    let first = http(server.port, "GET", &format!("/?token={token}"), &[], b"");
    assert_eq!(first.status, 200);
    assert!(first.headers.contains(&format!(
        "review_token={token}; Path=/; HttpOnly; SameSite=Strict"
    )));
    let cookie = format!("review_token={token}");
    let page = http(
        server.port,
        "GET",
        "/rate?rater=ann",
        &[("Cookie", &cookie)],
        b"",
    );
    assert_eq!(page.status, 200);
    let header = http(
        server.port,
        "GET",
        "/review.js",
        &[("x-review-token", &token)],
        b"",
    );
    assert_eq!(header.status, 200);
    // A different bind address without --token is refused before anything is served.
    let res = relevance(&[
        "review",
        "serve",
        s(&run),
        "--db",
        s(&dir.join("x.sqlite")),
        "--bind",
        "0.0.0.0",
        "--port",
        "0",
    ]);
    let stderr = String::from_utf8_lossy(&res.stderr);
    assert_eq!(res.status.code(), Some(1));
    assert!(
        stderr.starts_with("error: ") && stderr.contains("requires --token"),
        "{stderr}"
    );
}

#[test]
fn without_a_token_only_loopback_host_names_are_answered() {
    let dir = scratch("host");
    let run = explain_run(&dir);
    let server = Server::start(&run, &dir.join("r.sqlite"), &[]);
    for host in [
        "evil.example",
        "evil.example:80",
        "127.0.0.1.evil.example",
        "10.0.0.1:8080",
    ] {
        let res = http(server.port, "GET", "/", &[("Host", host)], b"");
        assert_eq!(res.status, 403, "{host}");
    }
    for host in ["localhost", "localhost:8080", "[::1]:8080", "127.0.0.1"] {
        let res = http(server.port, "GET", "/", &[("Host", host)], b"");
        assert_eq!(res.status, 200, "{host}");
    }
}

#[test]
fn hostile_names_tags_and_bodies_are_escaped_or_refused() {
    let dir = scratch("hostile");
    let run = explain_run(&dir);
    let server = Server::start(&run, &dir.join("r.sqlite"), &[]);
    let rater = "<script>alert('r')</script>";
    let encoded = "%3Cscript%3Ealert(%27r%27)%3C%2Fscript%3E";
    let page = http(
        server.port,
        "GET",
        &format!("/rate?rater={encoded}"),
        &[],
        b"",
    );
    let html = page.text();
    assert!(
        page.headers
            .contains("content-security-policy: default-src 'none'; script-src 'self'")
    );
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(html.contains("rater: &lt;script&gt;alert(&#39;r&#39;)&lt;/script&gt;"));
    let id = item_on(&html).unwrap();
    let body = serde_json::json!({
        "rater": rater, "item": id, "answer": "wrong",
        "tags": "<img src=x onerror=alert(2)>, eye socket", "click": [5.0, 6.0],
    });
    let res = http(
        server.port,
        "POST",
        "/api/answer",
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let next = http(
        server.port,
        "GET",
        &format!("/rate?rater={encoded}"),
        &[],
        b"",
    )
    .text();
    assert!(
        next.contains("tags: &lt;img src=x onerror=alert(2)&gt;, eye socket."),
        "{next}"
    );
    assert!(!next.contains("<img src=x"));
    // The hostile class name (every item explains it) appears only escaped.
    assert!(!html.contains(HOSTILE_CLASS));
    assert!(
        html.contains(
            "<dd id=\"fact-class\">&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;</dd>"
        ),
        "{html}"
    );
    // Oversized, malformed and misdirected answers.
    let huge = format!(
        r#"{{"rater":"ann","item":"{id}","answer":"wrong","tags":"{}"}}"#,
        "x".repeat(40_000)
    );
    let res = http(
        server.port,
        "POST",
        "/api/answer",
        &[("Content-Type", "application/json")],
        huge.as_bytes(),
    );
    assert_eq!(res.status, 413);
    for (body, status) in [
        (
            format!(r#"{{"rater":"ann","item":"{id}","answer":"maybe"}}"#),
            400,
        ),
        (
            format!(r#"{{"rater":"","item":"{id}","answer":"wrong"}}"#),
            400,
        ),
        (
            format!(
                r#"{{"rater":"ann","item":"{id}","answer":"wrong","tags":"{}"}}"#,
                "y".repeat(501)
            ),
            400,
        ),
        (
            r#"{"rater":"ann","item":"../../etc/passwd","answer":"wrong"}"#.to_string(),
            404,
        ),
        ("not json".to_string(), 400),
    ] {
        let res = http(
            server.port,
            "POST",
            "/api/answer",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        assert_eq!(res.status, status, "{body}: {}", res.text());
    }
    let no_type = http(server.port, "POST", "/api/answer", &[], b"{}");
    assert_eq!(
        no_type.status, 415,
        "a cross-site form cannot post an answer"
    );
}

#[test]
fn blind_mode_hides_model_and_method_and_orders_items_per_rater() {
    let dir = scratch("blind");
    let run = explain_run(&dir);
    let db = dir.join("r.sqlite");
    let server = Server::start(&run, &db, &["--blind", "--seed", "7"]);
    let answers = ["unsure"; 6];
    let ann = answer_through_api(server.port, "ann", &answers);
    let bob = answer_through_api(server.port, "bob", &answers);
    let page = http(server.port, "GET", "/rate?rater=cat", &[], b"").text();
    assert!(
        !page.contains("fact-model")
            && !page.contains("fact-method")
            && !page.contains("saliency")
            && !page.contains("net.safetensors")
    );
    assert!(page.contains("fact-class"));
    let mut sorted_ann = ann.clone();
    sorted_ann.sort();
    let mut sorted_bob = bob.clone();
    sorted_bob.sort();
    assert_eq!(sorted_ann, sorted_bob, "every rater sees every item once");
    assert_eq!(sorted_ann.windows(2).filter(|w| w[0] == w[1]).count(), 0);
    assert_ne!(ann, bob, "two raters, two orders");
    drop(server);
    // The same seed gives the same order again.
    let server = Server::start(&run, &dir.join("r2.sqlite"), &["--blind", "--seed", "7"]);
    assert_eq!(answer_through_api(server.port, "ann", &answers), ann);
    let done = http(server.port, "GET", "/rate?rater=ann", &[], b"").text();
    assert!(done.contains("All 6 explanations are rated"));
}

#[test]
fn recorded_files_outside_the_run_folder_are_not_items() {
    let dir = scratch("outside");
    let run = explain_run(&dir);
    let explain = run.join("explain");
    let outside = dir.join("outside.png");
    std::fs::copy(explain.join("scan_b.grad-cam.png"), &outside).unwrap();
    std::fs::write(dir.join("secret.png"), "outside").unwrap();
    // scan_a's two maps name files outside the folder; scan_b's grad-cam overlay is a link
    // leading out of it.
    let record = std::fs::read_to_string(explain.join("explain.json")).unwrap();
    let record = record
        .replace("\"scan_a.grad-cam.png\"", "\"../../secret.png\"")
        .replace("\"scan_a.saliency.npy\"", "\"/etc/passwd\"");
    std::fs::write(explain.join("explain.json"), record).unwrap();
    std::fs::remove_file(explain.join("scan_b.grad-cam.png")).unwrap();
    std::os::unix::fs::symlink(&outside, explain.join("scan_b.grad-cam.png")).unwrap();
    let server = Server::start(&run, &dir.join("r.sqlite"), &[]);
    let answered = answer_through_api(server.port, "ann", &["correct"; 3]);
    assert_eq!(answered.len(), 3);
    let done = http(server.port, "GET", "/rate?rater=ann", &[], b"").text();
    assert!(done.contains("All 3 explanations are rated"), "{done}");
    drop(server);
    // A malformed record, and a folder without any, end with one line.
    std::fs::write(explain.join("explain.json"), "{\"outputs\": [").unwrap();
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    for (folder, expect) in [
        (&run, "explain.json"),
        (&empty, "no explanations to review"),
    ] {
        let res = relevance(&[
            "review",
            "serve",
            s(folder),
            "--db",
            s(&dir.join("x.sqlite")),
            "--port",
            "0",
        ]);
        let stderr = String::from_utf8_lossy(&res.stderr);
        assert_eq!(res.status.code(), Some(1), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(expect),
            "{stderr}"
        );
    }
}

#[test]
fn two_servers_and_two_raters_write_to_one_database_at_once() {
    let dir = scratch("shared");
    let run = explain_run(&dir);
    let db = dir.join("r.sqlite");
    let first = Server::start(&run, &db, &[]);
    let second = Server::start(&run, &db, &[]);
    let raters = [("ann", first.port), ("bob", second.port)];
    let threads: Vec<_> = raters
        .iter()
        .map(|&(rater, port)| {
            std::thread::spawn(move || answer_through_api(port, rater, &["correct"; 6]))
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap().len(), 6);
    }
    let connection = rusqlite::Connection::open(&db).unwrap();
    let per_rater: Vec<(String, i64)> = connection
        .prepare("SELECT r.name, count(*) FROM answers a JOIN raters r ON r.id = a.rater_id GROUP BY r.name ORDER BY r.name")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(per_rater, [("ann".to_string(), 6), ("bob".to_string(), 6)]);
    let items: i64 = connection
        .query_row("SELECT count(*) FROM items", [], |r| r.get(0))
        .unwrap();
    assert_eq!(items, 6, "the two servers share the items, too");
}

#[test]
fn several_run_folders_make_one_catalogue_of_distinct_explanations() {
    let first_dir = scratch("runs-a");
    let second_dir = scratch("runs-b");
    let first = explain_run(&first_dir);
    let second = explain_run(&second_dir);
    let items = |runs: &[&std::path::Path]| {
        let mut args = vec!["review", "serve"];
        args.extend(runs.iter().map(|r| s(r)));
        let db = first_dir.join(format!("r{}.sqlite", runs.len()));
        args.extend(["--db", s(&db), "--port", "0"]);
        // Serving runs until killed: start it, read the first line, kill it.
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_relevance"))
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        line
    };
    // The same explanations twice are one set of items (same content hash); another run's
    // (its model file has another path) are items of their own.
    assert!(items(&[&first, &first]).starts_with("serving 6 items"));
    assert!(items(&[&first, &second]).starts_with("serving 12 items"));
}
