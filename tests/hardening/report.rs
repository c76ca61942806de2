//! `relevance report DIR` must put into report.html only files that lie inside DIR (resolved,
//! symbolic links not followed out of it), only pictures that are what they claim, and SVG
//! without scripts, event handlers or external references; it writes nothing but
//! `DIR/report.html`.
//!
//! Each case builds a small run folder by hand in `out/` (the minimal `explain.json`,
//! `summary.json` + `figures.json` the report accepts) and a secret outside it, in `inputs/`,
//! holding [`MARKER`]; the marker must appear neither in the HTML nor in any data URI it embeds.

use std::path::{Path, PathBuf};

use base64::Engine;
use serde_json::json;

use crate::common::{Sandbox, assert_ok, png, run_limited, s};

/// The unique string every secret outside the run folder holds.
const MARKER: &str = "SECRET-MARKER-4f9c2e71";

/// The method the hand-made `explain.json` records.
const METHOD: &str = "lrp-epsilon-plus-flat";

/// An SVG drawing as plotters writes it, with a recognisable text.
fn drawing(text: &str) -> String {
    format!(
        "<svg width=\"60\" height=\"40\" viewBox=\"0 0 60 40\" xmlns=\"http://www.w3.org/2000/svg\">\n\
         <rect x=\"0\" y=\"0\" width=\"60\" height=\"40\" opacity=\"1\" fill=\"#FFFFFF\" stroke=\"none\"/>\n\
         <polyline fill=\"none\" opacity=\"1\" stroke=\"#0000FF\" stroke-width=\"1\" points=\"1,1 5,9 20,3 \"/>\n\
         <text x=\"30\" y=\"20\" dy=\"0.76em\" text-anchor=\"middle\" font-family=\"sans-serif\" \
         font-size=\"9.67741935483871\" opacity=\"1\" fill=\"#000000\">\n{text}\n</text>\n</svg>\n"
    )
}

/// Writes `bytes` to `path`, creating its folder.
fn put(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A study record in `out/<folder>` whose one figure is `figure` (a `figures.json` entry).
fn study(sb: &Sandbox, folder: &str, headline: &str, figure: serde_json::Value) -> PathBuf {
    let dir = sb.out().join(folder);
    put(
        &dir.join("summary.json"),
        json!({"study": "compare", "headline": [headline]})
            .to_string()
            .as_bytes(),
    );
    put(
        &dir.join("figures.json"),
        json!([figure]).to_string().as_bytes(),
    );
    dir
}

/// An explain record in `out/explain` with one output: its `input` and its map's `png`, as
/// recorded (any string).
fn explain(sb: &Sandbox, input: &str, map: &str) -> PathBuf {
    let dir = sb.out().join("explain");
    let record = json!({
        "model": "net.safetensors",
        "methods": [{"name": METHOD, "style": "signed"}],
        "outputs": [{
            "input": input,
            "stem": "a",
            "target": {"index": 0, "name": "cat", "prob": 0.9},
            "files": {METHOD: {"npy": "a.npy", "png": map}},
        }],
    });
    put(&dir.join("explain.json"), record.to_string().as_bytes());
    dir
}

/// A secret file outside the run folder holding [`MARKER`], as an SVG drawing (what an `svg`
/// entry would inline) or as text (what a `png` entry would embed byte for byte).
fn secret_svg(sb: &Sandbox) -> PathBuf {
    sb.input("secret.svg", drawing(MARKER).as_bytes())
}

fn secret_text(sb: &Sandbox) -> PathBuf {
    sb.input(
        "secret.txt",
        format!("root:x:0:0:{MARKER}:/root:/bin/sh\n").as_bytes(),
    )
}

/// Runs `relevance report out/`, asserts it succeeded and wrote nothing but
/// `out/report.html`, and returns the HTML.
fn report(sb: &Sandbox) -> String {
    let before = sb.listing();
    let out = run_limited(&sb.cwd(), &["report", s(&sb.out())]);
    assert_ok(&out);
    sb.assert_nothing_outside_out(&before);
    let added: Vec<PathBuf> = sb.listing().difference(&before).cloned().collect();
    assert_eq!(
        added,
        vec![PathBuf::from("out/report.html")],
        "files written"
    );
    std::fs::read_to_string(sb.out().join("report.html")).unwrap()
}

/// Every base64 data URI of the HTML, decoded.
fn data_uris(html: &str) -> Vec<Vec<u8>> {
    html.split(";base64,")
        .skip(1)
        .filter_map(|rest| {
            let end = rest.find(['"', '\'', ')'])?;
            base64::engine::general_purpose::STANDARD
                .decode(&rest[..end])
                .ok()
        })
        .collect()
}

/// Whether `needle` is in the HTML or in anything it embeds as a data URI.
fn shows(html: &str, needle: &str) -> bool {
    html.contains(needle)
        || data_uris(html)
            .iter()
            .any(|bytes| String::from_utf8_lossy(bytes).contains(needle))
}

fn assert_no_secret(html: &str) {
    assert!(
        !shows(html, MARKER),
        "the secret outside the run folder is in the report"
    );
}

/// The embedded pictures that decode, as RGB.
fn embedded_images(html: &str) -> Vec<image::RgbImage> {
    data_uris(html)
        .iter()
        .filter_map(|b| image::load_from_memory(b).ok())
        .map(|i| i.to_rgb8())
        .collect()
}

#[test]
fn svg_named_by_absolute_path_outside_is_left_out() {
    let sb = Sandbox::new("report-svg-abs");
    let secret = secret_svg(&sb);
    study(
        &sb,
        "study",
        "headline",
        json!({"svg": s(&secret), "title": "T"}),
    );
    let html = report(&sb);
    assert_no_secret(&html);
    assert!(
        html.contains("lies outside the run folder"),
        "no note of the omission"
    );
}

#[test]
fn svg_named_by_dotdot_path_is_left_out() {
    let sb = Sandbox::new("report-svg-dotdot");
    secret_svg(&sb);
    study(
        &sb,
        "study",
        "headline",
        json!({"svg": "../../inputs/secret.svg"}),
    );
    assert_no_secret(&report(&sb));
}

#[test]
fn figure_file_outside_is_not_embedded() {
    let sb = Sandbox::new("report-figure-file");
    let secret = secret_text(&sb);
    study(&sb, "study", "headline", json!({"file": s(&secret)}));
    assert_no_secret(&report(&sb));
}

#[test]
fn explain_map_outside_is_not_embedded() {
    let sb = Sandbox::new("report-explain-png");
    let secret = secret_text(&sb);
    explain(&sb, "a.png", s(&secret));
    assert_no_secret(&report(&sb));
}

#[test]
fn input_image_outside_is_not_embedded() {
    let sb = Sandbox::new("report-input");
    // A picture of a colour no map has, the size of the map (so no resize blurs it).
    let secret = image::RgbImage::from_pixel(8, 8, image::Rgb([13, 200, 77]));
    let path = sb.inputs().join("private.png");
    secret.save(&path).unwrap();
    let dir = explain(&sb, s(&path), "a.map.png");
    put(&dir.join("a.map.png"), &png(8, 8));
    let html = report(&sb);
    let images = embedded_images(&html);
    assert!(
        !images.contains(&secret),
        "the input outside the run folder is in the report"
    );
    assert!(
        !images.is_empty(),
        "the map inside the run folder is missing"
    );
}

/// A run elsewhere on the disk whose study headline carries the marker.
fn sibling_run(sb: &Sandbox) -> PathBuf {
    let dir = sb.inputs().join("sibling");
    put(
        &dir.join("summary.json"),
        json!({"study": "faithfulness", "headline": [MARKER]})
            .to_string()
            .as_bytes(),
    );
    dir
}

#[test]
fn link_to_the_root_folder_is_not_scanned() {
    let sb = Sandbox::new("report-rootfs");
    sibling_run(&sb);
    study(&sb, "study", "headline", json!({"title": "none"}));
    std::os::unix::fs::symlink("/", sb.out().join("rootfs")).unwrap();
    let start = std::time::Instant::now();
    let html = report(&sb);
    assert_no_secret(&html);
    assert!(start.elapsed().as_secs() < 20, "took {:?}", start.elapsed());
}

#[test]
fn link_to_a_sibling_run_is_not_followed() {
    let sb = Sandbox::new("report-sibling");
    let sibling = sibling_run(&sb);
    study(&sb, "study", "headline", json!({"title": "none"}));
    std::os::unix::fs::symlink(&sibling, sb.out().join("sib")).unwrap();
    let html = report(&sb);
    assert_no_secret(&html);
    assert!(
        !html.contains("faithfulness"),
        "the sibling's study is in the report"
    );
}

#[test]
fn linked_file_pointing_outside_is_not_read() {
    let sb = Sandbox::new("report-linked-file");
    let secret = secret_svg(&sb);
    let dir = study(&sb, "study", "headline", json!({"svg": "figure.svg"}));
    std::os::unix::fs::symlink(&secret, dir.join("figure.svg")).unwrap();
    // A record file that is a link out of the run folder is not read either.
    let sibling = sibling_run(&sb);
    std::fs::create_dir_all(sb.out().join("linked")).unwrap();
    std::os::unix::fs::symlink(
        sibling.join("summary.json"),
        sb.out().join("linked/summary.json"),
    )
    .unwrap();
    assert_no_secret(&report(&sb));
}

#[test]
fn hostile_svg_inside_comes_out_clean_with_its_drawing() {
    let sb = Sandbox::new("report-svg-hostile");
    let hostile = "<?xml version=\"1.0\"?>\n\
        <svg width=\"60\" height=\"40\" xmlns=\"http://www.w3.org/2000/svg\" \
        xmlns:xlink=\"http://www.w3.org/1999/xlink\" onload=\"alert('ONLOAD-MARK')\">\n\
        <script>alert('SCRIPT-MARK')</script>\n\
        <script><![CDATA[ alert('CDATA-MARK') ]]></script>\n\
        <rect x=\"0\" y=\"0\" width=\"9\" height=\"9\" fill=\"#FF0000\" onclick=\"CLICK-MARK\" \
        style=\"background:url(http://evil.example/bg.png)\"/>\n\
        <image href=\"http://evil.example/x.png\" width=\"5\" height=\"5\"/>\n\
        <use href=\"/etc/x#a\"/>\n\
        <use xlink:href=\"http://evil.example/y.svg#b\"/>\n\
        <a href=\"javascript:alert(1)\"><text x=\"1\" y=\"1\">LINK-MARK</text></a>\n\
        <foreignObject width=\"9\" height=\"9\"><div>FOREIGN-MARK</div></foreignObject>\n\
        <rect width=\"4\" height=\"4\" fill=\"url(http://evil.example/f#p)\"/>\n\
        <text x=\"30\" y=\"20\" fill=\"#000000\">DRAWING-OK &amp; more</text>\n\
        </svg>\n";
    let dir = study(&sb, "study", "headline", json!({"svg": "fig.svg"}));
    put(&dir.join("fig.svg"), hostile.as_bytes());
    let html = report(&sb);
    for bad in [
        "ONLOAD-MARK",
        "SCRIPT-MARK",
        "CDATA-MARK",
        "CLICK-MARK",
        "LINK-MARK",
        "FOREIGN-MARK",
        "evil.example",
        "/etc/x",
        "javascript:",
        "onload",
        "onclick",
        "url(",
        "<image",
        "<use",
        "xlink",
        "foreignObject",
    ] {
        assert!(!shows(&html, bad), "'{bad}' is in the report");
    }
    // The report's own load check is its only script.
    assert_eq!(html.matches("<script").count(), 1);
    assert!(
        html.contains("DRAWING-OK &amp; more"),
        "the drawing's text is gone"
    );
    assert!(
        html.contains("fill=\"#FF0000\""),
        "the drawing's rectangle is gone"
    );
}

#[test]
fn text_named_as_png_is_not_embedded() {
    let sb = Sandbox::new("report-fake-png");
    let dir = explain(&sb, "a.png", "a.map.png");
    put(
        &dir.join("a.map.png"),
        format!("\u{89}PNG but really {MARKER}").as_bytes(),
    );
    let dir = study(&sb, "study", "headline", json!({"file": "fig.png"}));
    put(&dir.join("fig.png"), MARKER.as_bytes());
    assert_no_secret(&report(&sb));
}

#[test]
fn legit_run_still_shows_its_pictures() {
    let sb = Sandbox::new("report-legit");
    // Recorded where the run was before it was moved: found by name in the record's folder.
    let dir = explain(&sb, "../data/a.png", "/moved/away/run/explain/a.map.png");
    put(&dir.join("a.map.png"), &png(8, 8));
    let input = image::RgbImage::from_pixel(8, 8, image::Rgb([90, 10, 160]));
    std::fs::create_dir_all(sb.out().join("data")).unwrap();
    input.save(sb.out().join("data/a.png")).unwrap();
    let dir = study(
        &sb,
        "study",
        "headline",
        json!({"svg": "fig.svg", "title": "T"}),
    );
    put(&dir.join("fig.svg"), drawing("DRAWING-OK").as_bytes());
    // A link inside the run folder to a file inside it is fine.
    std::os::unix::fs::symlink("a.map.png", sb.out().join("explain/linked.png")).unwrap();
    let html = report(&sb);
    let images = embedded_images(&html);
    let map = image::load_from_memory(&png(8, 8)).unwrap().to_rgb8();
    assert!(images.contains(&map), "the map is missing");
    assert!(images.contains(&input), "the input is missing");
    assert!(html.contains("DRAWING-OK"), "the SVG figure is missing");
    assert!(html.contains("<polyline"), "the SVG drawing is missing");
    assert!(!html.contains("outside the run folder"));
}

/// A small CNN saved as safetensors with its card, in `dir`.
fn small_model(dir: &Path) -> PathBuf {
    use relevance::graph::{Model, ModelCard};
    let card = ModelCard {
        classes: vec!["cat".into(), "dog".into()],
        num_classes: 2,
        input_size: [32, 32],
        ..ModelCard::default()
    };
    let model = Model::init("small_cnn", card, 5).unwrap();
    let tensors = relevance::train::checkpoint::params_to_tensors(&model.params, "");
    let path = dir.join("model.safetensors");
    put(
        &path,
        &relevance::graph::import::safetensors::to_bytes(&tensors, None).unwrap(),
    );
    put(
        &dir.join("model.card.json"),
        br#"{"arch": "small_cnn", "classes": ["cat", "dog"], "num_classes": 2, "input_size": [32, 32]}"#,
    );
    path
}

/// `explain` and `concepts` on images outside their `--out` write the image as the model saw
/// it into `--out`, so the report of that folder still shows the input column.
#[test]
fn explain_and_concepts_record_the_input_as_the_model_saw_it() {
    let sb = Sandbox::new("report-input-png");
    let model = small_model(&sb.inputs());
    let image = sb.inputs().join("photo.png");
    image::RgbImage::from_fn(30, 28, |x, y| {
        image::Rgb([(x * 8) as u8, (y * 9) as u8, 99])
    })
    .save(&image)
    .unwrap();
    for (command, extra) in [
        ("explain", vec!["--method", "grad-cam"]),
        (
            "concepts",
            vec!["--layer", "features.8", "--top", "2", "--quiet"],
        ),
    ] {
        let out = sb.out().join(command);
        let mut args = vec![command, "--model", s(&model), "--out", s(&out)];
        args.extend(extra);
        args.push(s(&image));
        assert_ok(&run_limited(&sb.cwd(), &args));
    }
    let recorded: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sb.out().join("explain/explain.json")).unwrap())
            .unwrap();
    assert_eq!(recorded["outputs"][0]["input_png"], "photo.input.png");
    let seen = image::open(sb.out().join("explain/photo.input.png"))
        .unwrap()
        .to_rgb8();
    assert_eq!(seen.dimensions(), (32, 32));
    let concepts: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sb.out().join("concepts/concepts.json")).unwrap())
            .unwrap();
    let concept_input = concepts[0]["input_png"]
        .as_str()
        .expect("input_png in concepts.json");
    assert!(
        Path::new(concept_input).ends_with("photo/input.png"),
        "{concept_input}"
    );
    let html = report(&sb);
    let images = embedded_images(&html);
    assert_eq!(
        images.iter().filter(|i| **i == seen).count(),
        2,
        "the input column of explain and of concepts"
    );
}

/// Text from the records (headlines, titles, method names, stems) reaches the HTML escaped.
#[test]
fn record_text_stays_escaped() {
    let sb = Sandbox::new("report-escape");
    let hostile = "<img src=x onerror=alert(1)>";
    let dir = study(
        &sb,
        "study",
        hostile,
        json!({"svg": "fig.svg", "title": hostile}),
    );
    put(
        &dir.join("fig.svg"),
        drawing("&lt;img src=x onerror=alert(1)&gt;").as_bytes(),
    );
    let record = json!({
        "model": hostile,
        "methods": [{"name": hostile, "style": hostile}],
        "outputs": [{"input": hostile, "stem": hostile, "target": {"name": hostile},
                     "files": {hostile: {"png": hostile}}}],
    });
    put(
        &sb.out()
            .join(hostile.replace('/', "_"))
            .join("explain.json"),
        record.to_string().as_bytes(),
    );
    let html = report(&sb);
    assert!(
        !html.contains("<img src=x"),
        "record text reached the HTML unescaped"
    );
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
}
