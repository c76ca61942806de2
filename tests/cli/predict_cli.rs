//! `relevance predict` end to end through the built binary: JSON lines on success, and for each
//! kind of bad input one line `error: …` naming the file, with a non-zero exit status.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use image::ImageEncoder;
use relevance::data::npy::{read_npy, write_npy};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

fn predict(args: &[&Path]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_relevance"))
        .arg("predict")
        .args(args)
        .output()
        .expect("run relevance")
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("relevance-cli-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Asserts a failed run with exactly one stderr line `error: …` that mentions every `needle`.
fn assert_error(out: &Output, needles: &[&str]) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "succeeded; stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    for n in needles {
        assert!(lines[0].contains(n), "'{n}' missing from: {stderr}");
    }
    lines[0].to_string()
}

/// The first sample of the Keras-style fixture as a `[C, H, W]` tensor file in a fresh
/// temporary folder: (folder, file).
fn keras_sample(tag: &str) -> (PathBuf, PathBuf) {
    let (shape, x) = read_npy(&fixture("keras_nhwc.input.npy")).unwrap();
    let n = shape[1] * shape[2] * shape[3];
    let dir = temp_dir(tag);
    let input = dir.join("sample.npy");
    write_npy(&input, &shape[1..], &x[..n]).unwrap();
    (dir, input)
}

fn p(s: &str) -> &Path {
    Path::new(s)
}

#[test]
fn prints_one_json_line_per_input_with_onnxruntimes_probability() {
    let (dir, input) = keras_sample("ok");
    let model = fixture("keras_nhwc.onnx");
    let out = predict(&[
        p("--model"),
        &model,
        p("--top"),
        p("4"),
        p("--logits"),
        &input,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1);
    let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    let (_, expected) = read_npy(&fixture("keras_nhwc.output.npy")).unwrap();
    let expected = &expected[..4];
    let best = (0..4)
        .max_by(|&a, &b| expected[a].total_cmp(&expected[b]))
        .unwrap();
    assert_eq!(v["index"], best);
    assert!((v["prob"].as_f64().unwrap() as f32 - expected[best]).abs() < 1e-5);
    assert_eq!(v["top"].as_array().unwrap().len(), 4);
    assert_eq!(v["logits"].as_array().unwrap().len(), 4);
    assert_eq!(v["input"], input.display().to_string());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn corrupt_and_truncated_images_are_one_line_errors() {
    let dir = temp_dir("img");
    let mut rgb = Vec::new();
    for i in 0..32 * 32 {
        rgb.extend([(i % 251) as u8, (i * 7 % 253) as u8, (i * 13 % 255) as u8]);
    }
    let mut jpeg = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
        .encode(&rgb, 32, 32, image::ExtendedColorType::Rgb8)
        .unwrap();
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(&rgb, 32, 32, image::ExtendedColorType::Rgb8)
        .unwrap();
    let cases = [
        ("truncated.jpg", jpeg[..jpeg.len() / 2].to_vec()),
        ("truncated.png", png[..png.len() / 2].to_vec()),
        ("text.png", b"not an image at all".to_vec()),
        ("empty.jpg", Vec::new()),
    ];
    let model = fixture("keras_nhwc.onnx");
    for (name, bytes) in cases {
        let f = dir.join(name);
        std::fs::write(&f, bytes).unwrap();
        let out = predict(&[p("--model"), &model, &f]);
        assert_error(&out, &[&f.display().to_string()]);
    }
    // The intact files decode (so the failures above are about the damage).
    let good = dir.join("good.jpg");
    std::fs::write(&good, &jpeg).unwrap();
    assert!(predict(&[p("--model"), &model, &good]).status.success());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_checkpoint_that_does_not_fit_the_architecture() {
    let ckpt = fixture("mismatch.pth");
    let input = fixture("small_cnn.input.npy");
    let out = predict(&[p("--model"), &ckpt, p("--arch"), p("small_cnn"), &input]);
    let line = assert_error(
        &out,
        &[
            &ckpt.display().to_string(),
            "'features.0.weight'",
            "[16, 1, 5, 5]",
            "[16, 1, 3, 3]",
        ],
    );
    // Named once, not repeated through the error chain.
    assert_eq!(line.matches("features.0.weight").count(), 1, "{line}");
}

#[test]
fn unsupported_onnx_ops_are_listed() {
    let model = fixture("unsupported.onnx");
    let out = predict(&[p("--model"), &model, &fixture("small_cnn.input.npy")]);
    assert_error(
        &out,
        &[&model.display().to_string(), "Einsum ×2", "LSTM ×1"],
    );
}

#[test]
fn a_pickle_with_code_is_refused() {
    for name in ["evil_zip.pth", "evil_legacy.pth"] {
        let ckpt = fixture(name);
        let out = predict(&[
            p("--model"),
            &ckpt,
            p("--arch"),
            p("small_cnn"),
            &fixture("small_cnn.input.npy"),
        ]);
        let line = assert_error(&out, &[]);
        assert_eq!(
            line,
            format!(
                "error: refusing to load {}: the pickle references os.system, which is not a tensor",
                ckpt.display()
            )
        );
    }
}

#[test]
fn brain_mri_vgg16_from_its_card_prints_17_correct_lines() {
    let Some(data) = std::env::var_os("RELEVANCE_DATA") else {
        eprintln!(
            "RELEVANCE_DATA is not set: skipping (run `RELEVANCE_DATA=$(tools/fetch-data.sh) cargo test`)"
        );
        return;
    };
    let dir = PathBuf::from(data).join("brain-mri");
    let start = std::time::Instant::now();
    let out = predict(&[p("--model"), &dir.join("vgg16.onnx"), &dir.join("images")]);
    println!(
        "relevance predict on 17 MRIs (test build): {:.1} s",
        start.elapsed().as_secs_f64()
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 17);
    for v in lines {
        let input = v["input"].as_str().unwrap();
        let prefix = &Path::new(input).file_name().unwrap().to_str().unwrap()[3..5];
        let expected = match prefix {
            "gl" => "glioma",
            "me" => "meningioma",
            "no" => "notumor",
            _ => "pituitary",
        };
        assert_eq!(v["class"], expected, "{input}");
    }
}

/// The global `--winograd` takes `off`, `relevance`, `on` after `=`, or nothing (= `on`), so a
/// bare `--winograd` never swallows the subcommand; anything else is refused with the choices.
#[test]
fn winograd_scope_flag_parses_and_refuses_unknown_scopes() {
    let (dir, input) = keras_sample("winograd");
    let model = fixture("keras_nhwc.onnx");
    let run = |flag: &str| {
        Command::new(env!("CARGO_BIN_EXE_relevance"))
            .arg(flag)
            .arg("predict")
            .arg("--model")
            .arg(&model)
            .arg(&input)
            .output()
            .expect("run relevance")
    };
    let plain = predict(&[p("--model"), &model, &input]);
    assert!(plain.status.success());
    for flag in [
        "--winograd",
        "--winograd=off",
        "--winograd=relevance",
        "--winograd=on",
    ] {
        let out = run(flag);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{flag}: {stderr}");
        assert!(
            String::from_utf8_lossy(&out.stdout).starts_with('{'),
            "{flag}"
        );
    }
    let out = run("--winograd=sometimes");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("\"sometimes\"") && stderr.contains("off, relevance or on"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A small_cnn with 3 outputs and reference weights, saved as safetensors in `dir`.
fn small_cnn_weights(dir: &Path) -> PathBuf {
    use relevance::graph::import::safetensors::to_bytes;
    let graph = relevance::graph::zoo::build("small_cnn", 3, 3).unwrap();
    let params = relevance::graph::init::reference_params(&graph).unwrap();
    let tensors = relevance::train::checkpoint::params_to_tensors(&params, "");
    let weights = dir.join("net.safetensors");
    std::fs::write(&weights, to_bytes(&tensors, None).unwrap()).unwrap();
    weights
}

/// A model card in `dir` that states `fields` (JSON object members) and nothing else.
fn card_with(dir: &Path, name: &str, fields: &str) -> PathBuf {
    let card = dir.join(name);
    std::fs::write(&card, format!("{{{fields}}}")).unwrap();
    card
}

#[test]
fn a_card_with_only_class_names_takes_the_class_count_from_the_weights() {
    let (dir, input) = keras_sample("names-only");
    let names = ["ant", "bee", "cat", "dog"];
    let quoted = names.map(|n| format!("\"{n}\"")).join(", ");
    // ONNX: the output width (4) fixes the class count; the default of 1000 must not clash.
    let card = card_with(&dir, "onnx.json", &format!("\"classes\": [{quoted}]"));
    let model = fixture("keras_nhwc.onnx");
    let out = predict(&[p("--model"), &model, p("--card"), &card, &input]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let index = v["index"].as_u64().unwrap() as usize;
    assert_eq!(v["class"], names[index]);
    // A state dict for a built-in architecture: its last linear layer (3 rows) fixes it.
    let weights = small_cnn_weights(&dir);
    let card = card_with(
        &dir,
        "st.json",
        "\"arch\": \"small_cnn\", \"classes\": [\"x\", \"y\", \"z\"]",
    );
    let png = dir.join("any.png");
    image::RgbImage::from_fn(20, 24, |x, y| {
        image::Rgb([(x * 9) as u8, (y * 7) as u8, 40])
    })
    .save(&png)
    .unwrap();
    let out = predict(&[p("--model"), &weights, p("--card"), &card, &png]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let index = v["index"].as_u64().unwrap() as usize;
    assert_eq!(v["class"], ["x", "y", "z"][index]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn class_names_that_do_not_fit_the_weights_name_the_field_and_both_counts() {
    let (dir, input) = keras_sample("names-mismatch");
    let card = card_with(
        &dir,
        "five.json",
        "\"classes\": [\"a\", \"b\", \"c\", \"d\", \"e\"]",
    );
    let model = fixture("keras_nhwc.onnx");
    let out = predict(&[p("--model"), &model, p("--card"), &card, &input]);
    assert_error(
        &out,
        &[
            &model.display().to_string(),
            "`classes`",
            "5 class names",
            "4 outputs",
        ],
    );
    let weights = small_cnn_weights(&dir);
    let card = card_with(
        &dir,
        "two.json",
        "\"arch\": \"small_cnn\", \"classes\": [\"x\", \"y\"]",
    );
    let out = predict(&[p("--model"), &weights, p("--card"), &card, &input]);
    assert_error(
        &out,
        &[
            &weights.display().to_string(),
            "`classes`",
            "2 class names",
            "3 outputs",
        ],
    );
    // A card that states both and disagrees with itself is still refused as a whole.
    let card = card_with(
        &dir,
        "self.json",
        "\"classes\": [\"a\"], \"num_classes\": 4",
    );
    let out = predict(&[p("--model"), &model, p("--card"), &card, &input]);
    assert_error(
        &out,
        &[&card.display().to_string(), "`classes`", "1 class names"],
    );
    let _ = std::fs::remove_dir_all(&dir);
}
