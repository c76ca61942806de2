//! Shared helpers: a small explain run folder, a running `relevance review serve`, raw HTTP.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use relevance::graph::import::safetensors::to_bytes;
use relevance::graph::init::reference_params;
use relevance::graph::{ModelCard, zoo};

/// A hostile class name: it must reach every page as text, never as markup.
pub const HOSTILE_CLASS: &str = "<img src=x onerror=alert(1)>\"'&";

pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("relevance-review-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

pub fn relevance(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_relevance"))
        .args(args)
        .output()
        .unwrap()
}

/// A run folder `dir/run/explain` of the built-in small_cnn (random reference weights, three
/// classes, the third with a hostile name, which every map explains) by grad-cam and saliency
/// on three synthetic images: 6 items, in catalogue order image-major, methods in `--method`
/// order.
pub fn explain_run(dir: &Path) -> PathBuf {
    let graph = zoo::build("small_cnn", 3, 3).unwrap();
    let params = reference_params(&graph).unwrap();
    let tensors = relevance::train::checkpoint::params_to_tensors(&params, "");
    let weights = dir.join("net.safetensors");
    std::fs::write(&weights, to_bytes(&tensors, None).unwrap()).unwrap();
    let card = ModelCard {
        arch: Some("small_cnn".into()),
        classes: vec!["tumour".into(), "healthy".into(), HOSTILE_CLASS.into()],
        num_classes: 3,
        input_size: [32, 32],
        ..Default::default()
    };
    std::fs::write(dir.join("net.card.json"), card.to_json()).unwrap();
    let mut inputs = Vec::new();
    for (i, name) in ["scan_a.png", "scan_b.png", "scan_c.png"]
        .iter()
        .enumerate()
    {
        let png = dir.join(name);
        let k = i as u32 + 1;
        image::RgbImage::from_fn(40, 40, |x, y| {
            image::Rgb([(x * 6 * k) as u8, (y * 5) as u8, ((x * y * k) % 256) as u8])
        })
        .save(&png)
        .unwrap();
        inputs.push(png);
    }
    let run = dir.join("run");
    let out = run.join("explain");
    let mut args = vec![
        "explain",
        "--model",
        s(&weights),
        "--method",
        "grad-cam,saliency",
        "--target",
        "2",
        "--out",
        s(&out),
    ];
    args.extend(inputs.iter().map(|p| s(p)));
    let res = relevance(&args);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    run
}

/// A running `relevance review serve`, killed (SIGKILL) when dropped.
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:<port>/`, with `?token=` if one is required.
    pub url: String,
    pub port: u16,
}

impl Server {
    pub fn start(run: &Path, db: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_relevance"))
            .args(["review", "serve", s(run), "--db", s(db), "--port", "0"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let line = lines
                .next()
                .expect("the server ended before printing its address")
                .unwrap();
            if let Some(url) = line.strip_prefix("open ") {
                break url.to_string();
            }
        };
        let port = url
            .trim_start_matches("http://127.0.0.1:")
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        Server { child, url, port }
    }

    /// Kills the server as a crash would (SIGKILL: no clean-up runs).
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A response: status, raw headers, body.
pub struct Response {
    pub status: u16,
    pub headers: String,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
}

/// One HTTP/1.1 request sent as written (the target is not normalised or re-encoded).
pub fn http(
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut request = format!("{method} {target} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(request.as_bytes()).unwrap();
    // The server may answer (413) before reading a large body; a reset write is fine then.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no end of headers");
    let headers = String::from_utf8_lossy(&raw[..split]).to_string();
    let status = headers.split(' ').nth(1).unwrap().parse().unwrap();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = unchunk(&body);
    }
    Response {
        status,
        headers,
        body,
    }
}

fn unchunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..line_end]).unwrap().trim(), 16)
            .unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[line_end + 2..line_end + 2 + size]);
        raw = &raw[line_end + 4 + size..];
    }
}

/// The item ids on the pages a rater is shown, in order, answering each with `answers`
/// through the JSON API.
pub fn answer_through_api(port: u16, rater: &str, answers: &[&str]) -> Vec<String> {
    let mut ids = Vec::new();
    for answer in answers {
        let page = http(port, "GET", &format!("/rate?rater={rater}"), &[], b"").text();
        let id = item_on(&page).expect("a rating page");
        let body = format!(r#"{{"rater":"{rater}","item":"{id}","answer":"{answer}"}}"#);
        let res = http(
            port,
            "POST",
            "/api/answer",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        assert_eq!(res.status, 200, "{}", res.text());
        ids.push(id);
    }
    ids
}

/// The item id a rating page shows.
pub fn item_on(page: &str) -> Option<String> {
    let start = page.find("data-item=\"")? + "data-item=\"".len();
    Some(page[start..start + 32].to_string())
}
