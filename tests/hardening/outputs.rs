//! Output names, model cards, data sets, `explain` inputs and messages: every output file stays
//! inside `--out` whatever the layer or input is called, hostile cards and data sets are refused
//! with one line naming the file and the field, and nothing allocates what the work does not need.

use std::path::{Path, PathBuf};

use relevance::graph::import::NamedTensor;
use relevance::graph::{Model, ModelCard};

use crate::common::*;

/// small_cnn (layers `features.0` … `features.8`) with 3 classes at 32×32: weights and card in
/// `inputs/model/`.
fn small_model(sb: &Sandbox) -> PathBuf {
    let card = ModelCard {
        classes: vec!["a".into(), "b".into(), "c".into()],
        num_classes: 3,
        input_size: [32, 32],
        ..ModelCard::default()
    };
    let model = Model::init("small_cnn", card, 5).unwrap();
    let tensors = relevance::train::checkpoint::params_to_tensors(&model.params, "");
    let bytes = relevance::graph::import::safetensors::to_bytes(&tensors, None).unwrap();
    sb.input(
        "model/model.card.json",
        br#"{"arch": "small_cnn", "classes": ["a", "b", "c"], "num_classes": 3,
            "input_size": [32, 32]}"#,
    );
    sb.input("model/model.safetensors", &bytes)
}

/// A fixture of the import tests (small ONNX models exported by `torch.onnx.export`).
fn import_fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

/// Every file below `dir`, relative to it.
fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut all = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                all.push(e.path().strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    all.sort();
    all
}

/// Removes `/0` if this run created it (the old code wrote `/0/Conv_<c>.npy` there) and says
/// whether it did, so a failing case leaves no litter at the file-system root.
fn created_at_root(existed_before: bool) -> bool {
    let root = Path::new("/0");
    if existed_before || !root.exists() {
        return false;
    }
    for f in ["npy", "png"]
        .iter()
        .flat_map(|ext| (0..16).map(move |c| root.join(format!("Conv_{c}.{ext}"))))
    {
        let _ = std::fs::remove_file(f);
    }
    let _ = std::fs::remove_dir(root);
    true
}

#[test]
fn concepts_with_a_torch_onnx_export_node_name_writes_inside_out() {
    let sb = Sandbox::new("out-onnx-layer");
    let image = sb.input("img.png", &png(20, 20));
    let existed = Path::new("/0").exists();
    let before = sb.listing();
    let out = run_limited(
        &sb.cwd(),
        &[
            "concepts",
            "--model",
            s(&import_fixture("tiny_cnn.onnx")),
            "--layer",
            "/0/Conv",
            "--top",
            "2",
            "--quiet",
            "--out",
            s(&sb.out()),
            s(&image),
        ],
    );
    let littered = created_at_root(existed);
    assert_ok(&out);
    assert!(
        !littered,
        "concepts wrote /0/Conv_*.npy at the file-system root"
    );
    sb.assert_nothing_outside_out(&before);
    let files = files_below(&sb.out());
    // concepts.json, the input as the model saw it, two channels × (.npy, .png), in out/img/.
    assert_eq!(files.len(), 6, "{files:?}");
    assert!(
        files.contains(&Path::new("img/input.png").to_path_buf()),
        "{files:?}"
    );
    let maps = files
        .iter()
        .filter(|f| !f.ends_with("concepts.json") && !f.ends_with("input.png"));
    for f in maps {
        assert!(f.starts_with("img"), "{f:?}");
        let name = f.file_name().unwrap().to_string_lossy();
        assert!(name.starts_with("_0_Conv-"), "{name}");
    }
    // The record keeps the layer's own name.
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sb.out().join("concepts.json")).unwrap()).unwrap();
    assert_eq!(record[0]["layer"], "/0/Conv");
}

#[test]
fn concepts_inputs_named_dot_dot_in_a_sub_folder_write_inside_out() {
    let sb = Sandbox::new("out-dotdot-input");
    let model = small_model(&sb);
    // `...png` has the stem `..`, `..png` the stem `.`; two `x.png` in different folders share
    // a stem and must not overwrite each other.
    let inputs = [
        sb.input("sub/...png", &png(40, 36)),
        sb.input("sub/..png", &png(36, 40)),
        sb.input("p/x.png", &png(40, 40)),
        sb.input("q/x.png", &png(30, 40)),
    ];
    let before = sb.listing();
    let out_dir = sb.out();
    let mut args = vec![
        "concepts",
        "--model",
        s(&model),
        "--layer",
        "features.8",
        "--top",
        "1",
        "--quiet",
        "--out",
        s(&out_dir),
    ];
    args.extend(inputs.iter().map(|p| s(p)));
    let out = run_limited(&sb.cwd(), &args);
    assert_ok(&out);
    sb.assert_nothing_outside_out(&before);
    let folders: std::collections::BTreeSet<PathBuf> = files_below(&sb.out())
        .iter()
        .filter_map(|f| f.parent().map(Path::to_path_buf))
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    assert_eq!(folders.len(), 4, "one folder per input: {folders:?}");
}

#[test]
fn explain_with_a_250_character_input_name_writes_its_maps() {
    let sb = Sandbox::new("out-long-name");
    let model = small_model(&sb);
    let image = sb.input(&format!("{}.png", "n".repeat(250)), &png(32, 32));
    let before = sb.listing();
    let out = run_limited(
        &sb.cwd(),
        &[
            "explain",
            "--model",
            s(&model),
            "--method",
            "saliency,grad-cam",
            "--out",
            s(&sb.out()),
            s(&image),
        ],
    );
    assert_ok(&out);
    sb.assert_nothing_outside_out(&before);
    let files = files_below(&sb.out());
    assert!(
        files
            .iter()
            .any(|f| f.to_string_lossy().ends_with(".saliency.npy")),
        "{files:?}"
    );
    for f in &files {
        assert!(f.to_string_lossy().len() < 255, "{f:?}");
    }
}

// ---- Model cards (issue item 7) and messages (item 12) ----------------------------------------

/// Writes `card` as `inputs/<name>` and runs `predict` on a 40×36 PNG with the small model and
/// that card.
fn predict_with_card(sb: &Sandbox, name: &str, card: &str) -> (PathBuf, std::process::Output) {
    let model = small_model(sb);
    let card = sb.input(name, card.as_bytes());
    let image = sb.input("img.png", &png(40, 36));
    let out = run_limited(
        &sb.cwd(),
        &[
            "predict",
            "--model",
            s(&model),
            "--card",
            s(&card),
            s(&image),
        ],
    );
    (card, out)
}

/// Asserts the refusal names `file` exactly once (one layer adds the path) and `needles`.
fn assert_refused_naming_once(out: &std::process::Output, file: &Path, needles: &[&str]) {
    let mut all = vec![s(file)];
    all.extend(needles);
    let line = assert_refused(out, &all);
    assert_eq!(
        line.matches(s(file)).count(),
        1,
        "path not named exactly once: {line}"
    );
}

#[test]
fn a_card_with_empty_mean_std_lists_is_refused_naming_the_field() {
    let sb = Sandbox::new("card-empty-mean");
    let (card, out) = predict_with_card(
        &sb,
        "x.json",
        r#"{"arch": "small_cnn", "num_classes": 3, "input_size": [32, 32],
            "normalization": {"kind": "mean-std", "mean": [], "std": []}}"#,
    );
    assert_refused_naming_once(&out, &card, &["field `normalization.mean`", "got 0"]);
}

#[test]
fn a_card_with_zero_or_negative_std_is_refused_naming_the_field() {
    let sb = Sandbox::new("card-zero-std");
    let (card, out) = predict_with_card(
        &sb,
        "x.json",
        r#"{"arch": "small_cnn", "num_classes": 3, "input_size": [32, 32],
            "normalization": {"kind": "mean-std", "mean": [0.5], "std": [0.2, 0.0, 0.2]}}"#,
    );
    assert_refused_naming_once(&out, &card, &["field `normalization.std`", "positive"]);
}

#[test]
fn a_card_with_a_100000_pixel_input_side_is_refused_before_allocating() {
    let sb = Sandbox::new("card-huge-input");
    let (card, out) = predict_with_card(
        &sb,
        "x.json",
        r#"{"arch": "small_cnn", "num_classes": 3, "input_size": [100000, 100000]}"#,
    );
    assert_refused_naming_once(&out, &card, &["field `input_size`", "4096", "100000"]);
}

#[test]
fn a_shorter_side_crop_of_size_0_is_refused_naming_the_field() {
    let sb = Sandbox::new("card-crop-0");
    let (card, out) = predict_with_card(
        &sb,
        "x.toml",
        "arch = \"small_cnn\"\nnum_classes = 3\ninput_size = [32, 32]\n\
         [resize]\nkind = \"shorter-side-crop\"\nsize = 0\n",
    );
    assert_refused_naming_once(&out, &card, &["field `resize.size`", "got 0"]);
}

#[test]
fn a_card_that_does_not_parse_names_its_path_once() {
    let sb = Sandbox::new("card-bad-json");
    let (card, out) = predict_with_card(&sb, "x.json", r#"{"num_classes": "three"}"#);
    assert_refused_naming_once(&out, &card, &["bad model card"]);
}

/// `predict` of a 1×`height` PNG with shorter-side-crop 256 to 224×224.
fn predict_thin_image(sb: &Sandbox, height: u32) -> (PathBuf, std::process::Output) {
    let model = small_model(sb);
    let card = sb.input(
        "x.json",
        br#"{"arch": "small_cnn", "num_classes": 3, "input_size": [224, 224],
            "resize": {"kind": "shorter-side-crop", "size": 256}}"#,
    );
    let image = sb.input("thin.png", &png(1, height));
    let out = run_limited(
        &sb.cwd(),
        &[
            "predict",
            "--model",
            s(&model),
            "--card",
            s(&card),
            s(&image),
        ],
    );
    (image, out)
}

#[test]
fn a_1x16000_image_with_shorter_side_crop_256_fits_in_the_memory_ceiling() {
    // The whole resized image would be 256×4 096 000 RGB (3.1 GB); only the crop is computed.
    let sb = Sandbox::new("card-thin-image");
    let (_, out) = predict_thin_image(&sb, 16000);
    let line = assert_ok(&out);
    assert!(line.contains("\"prob\""), "{line}");
}

#[test]
fn a_1x30000_image_is_refused_naming_its_size() {
    let sb = Sandbox::new("card-thinner-image");
    let (image, out) = predict_thin_image(&sb, 30000);
    assert_refused(&out, &[s(&image), "1×30000", "16384"]);
}

/// A PNG whose header claims `w`×`h` RGB pixels, with one row of real data after it.
fn png_header_claiming(w: u32, h: u32) -> Vec<u8> {
    fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
        out.extend((data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend(kind);
        out.extend(data);
        out.extend(crc.sum().to_be_bytes());
    }
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut z, &[0u8; 1 + 3 * 64]).unwrap();
    let idat = z.finish().unwrap();
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &idat);
    chunk(&mut out, b"IEND", &[]);
    out
}

#[test]
fn a_png_header_claiming_100000x100000_pixels_is_refused_naming_the_image() {
    let sb = Sandbox::new("huge-png-header");
    let model = small_model(&sb);
    let image = sb.input("huge.png", &png_header_claiming(100_000, 100_000));
    let out = run_limited(&sb.cwd(), &["predict", "--model", s(&model), s(&image)]);
    assert_refused(&out, &[s(&image), "100000×100000", "16384"]);
}

#[test]
fn a_folder_given_as_the_model_says_it_is_a_folder() {
    let sb = Sandbox::new("model-is-folder");
    let folder = sb.inputs().join("x.safetensors");
    std::fs::create_dir_all(&folder).unwrap();
    let image = sb.input("img.png", &png(32, 32));
    let out = run_limited(
        &sb.cwd(),
        &[
            "predict",
            "--model",
            s(&folder),
            "--arch",
            "small_cnn",
            s(&image),
        ],
    );
    assert_refused(&out, &[s(&folder), "is a folder, not a file"]);
}

#[test]
fn nan_weights_are_refused_at_load_naming_the_parameter() {
    let sb = Sandbox::new("nan-weights");
    let model = small_model(&sb);
    let loaded = Model::load(&model, &Default::default()).unwrap();
    let (poisoned, _) = loaded.params.iter().next().unwrap();
    let poisoned = poisoned.clone();
    let tensors: Vec<NamedTensor> = loaded
        .params
        .iter()
        .map(|(k, p)| {
            let mut values = p.values();
            if *k == poisoned {
                values[0] = f32::NAN;
            }
            NamedTensor {
                key: k.clone(),
                shape: p.shape.clone(),
                values,
            }
        })
        .collect();
    let bytes = relevance::graph::import::safetensors::to_bytes(&tensors, None).unwrap();
    std::fs::write(&model, bytes).unwrap();
    let image = sb.input("img.png", &png(32, 32));
    let out = run_limited(&sb.cwd(), &["predict", "--model", s(&model), s(&image)]);
    assert_refused(
        &out,
        &[s(&model), &format!("parameter '{poisoned}'"), "NaN"],
    );
}

// ---- Data sets (issue item 8) -----------------------------------------------------------------

/// `inputs/data/{a,b}/` with three images each.
fn two_class_folder(sb: &Sandbox) -> PathBuf {
    for class in ["a", "b"] {
        for i in 0..3 {
            sb.input(&format!("data/{class}/{class}{i}.png"), &png(20 + i, 20));
        }
    }
    sb.inputs().join("data")
}

fn data_info(sb: &Sandbox, data: &Path) -> std::process::Output {
    run_limited(
        &sb.cwd(),
        &[
            "data",
            "info",
            s(data),
            "--val-fraction",
            "0",
            "--test-fraction",
            "0",
        ],
    )
}

#[test]
fn a_symbolic_link_loop_in_an_image_folder_counts_each_image_once() {
    let sb = Sandbox::new("data-link-loop");
    let data = two_class_folder(&sb);
    std::os::unix::fs::symlink("..", data.join("a/loop")).unwrap();
    std::os::unix::fs::symlink(".", data.join("b/self")).unwrap();
    let out = data_info(&sb, &data);
    let info: serde_json::Value = serde_json::from_str(&assert_ok(&out)).unwrap();
    assert_eq!(info["classes"], serde_json::json!(["a", "b"]));
    assert_eq!(info["train"], serde_json::json!([3, 3]), "{info}");
}

#[test]
fn links_leading_out_of_the_data_folder_are_not_followed() {
    let sb = Sandbox::new("data-link-out");
    let data = two_class_folder(&sb);
    // A readable image and a folder of images beside (not inside) the data folder.
    sb.input("private/secret.png", &png(9, 9));
    sb.input("private/more/m0.png", &png(9, 9));
    let private = sb.inputs().join("private");
    std::os::unix::fs::symlink(private.join("secret.png"), data.join("a/secret.png")).unwrap();
    std::os::unix::fs::symlink(private.join("more"), data.join("b/more")).unwrap();
    let out = data_info(&sb, &data);
    let info: serde_json::Value = serde_json::from_str(&assert_ok(&out)).unwrap();
    assert_eq!(info["train"], serde_json::json!([3, 3]), "{info}");
    let skipped = info["skipped"].to_string();
    for link in ["secret.png", "more"] {
        assert!(
            skipped.contains(link) && skipped.contains("outside the data folder"),
            "{link} not reported as skipped: {info}"
        );
    }
    // `explain DIR` walks folders the same way: the linked file is not an input.
    let listing = relevance::data::expand_inputs(std::slice::from_ref(&data)).unwrap();
    assert_eq!(listing.len(), 6, "{listing:?}");
}

#[test]
fn a_file_that_is_not_an_image_is_refused_without_quoting_its_bytes() {
    let sb = Sandbox::new("data-text-as-jpeg");
    let data = two_class_folder(&sb);
    sb.input("data/a/notes.jpg", b"root:x:0:0:root:/root:/bin/bash\n");
    let out = data_info(&sb, &data);
    let info: serde_json::Value = serde_json::from_str(&assert_ok(&out)).unwrap();
    let skipped = info["skipped"].to_string();
    assert!(skipped.contains("notes.jpg"), "{info}");
    // Neither the text nor its bytes in hexadecimal ("726F" for "ro") come back.
    for leaked in ["root:x", "bin/bash", "726F", "726f"] {
        assert!(!skipped.contains(leaked), "{leaked} in {skipped}");
    }
}

#[test]
fn an_image_reachable_under_two_classes_is_refused() {
    let sb = Sandbox::new("data-two-classes");
    let data = two_class_folder(&sb);
    std::os::unix::fs::symlink("../b", data.join("a/more")).unwrap();
    let out = data_info(&sb, &data);
    assert_refused(&out, &["b0.png", "also in class folder", "one class"]);
}

/// An unsigned-byte IDX array with `dims` and `values`.
fn idx(dims: &[u32], values: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        out.extend(d.to_be_bytes());
    }
    out.extend(values);
    out
}

#[test]
fn idx_images_of_width_0_are_refused() {
    let sb = Sandbox::new("idx-width-0");
    for part in ["train", "t10k"] {
        sb.input(
            &format!("mnist/{part}-images-idx3-ubyte"),
            &idx(&[2, 28, 0], &[]),
        );
        sb.input(
            &format!("mnist/{part}-labels-idx1-ubyte"),
            &idx(&[2], &[0, 1]),
        );
    }
    let before = sb.listing();
    let out = run_limited(
        &sb.cwd(),
        &[
            "train",
            "--data",
            s(&sb.inputs().join("mnist")),
            "--out",
            s(&sb.out()),
            "--epochs",
            "1",
        ],
    );
    assert_refused(&out, &["train-images-idx3-ubyte", "28×0", "positive"]);
    sb.assert_nothing_outside_out(&before);
}

#[test]
fn a_trillion_seeds_are_refused_before_allocating() {
    let sb = Sandbox::new("seeds-trillion");
    let data = two_class_folder(&sb);
    let out = run_limited(
        &sb.cwd(),
        &[
            "train",
            "--data",
            s(&data),
            "--out",
            s(&sb.out()),
            "--seeds",
            "0..1000000000000",
        ],
    );
    assert_refused(&out, &["--seeds", "more than 1000"]);
    assert!(files_below(&sb.out()).is_empty());
}

#[test]
fn a_blur_of_sigma_a_million_is_refused_at_once() {
    let sb = Sandbox::new("blur-million");
    let data = two_class_folder(&sb);
    let model = small_model(&sb);
    let start = std::time::Instant::now();
    let out = run_limited(
        &sb.cwd(),
        &[
            "stability",
            "--models",
            s(&model),
            "--data",
            s(&data),
            "--out",
            s(&sb.out()),
            "--augment",
            "blur:1e6",
        ],
    );
    assert_refused(&out, &["--augment", "blur:1e6", "1000"]);
    assert!(start.elapsed() < std::time::Duration::from_secs(20));
}

// ---- explain with one unreadable input (issue item 11) ------------------------------------------

#[test]
fn explain_with_one_empty_png_among_nine_good_ones_writes_nothing() {
    let sb = Sandbox::new("explain-empty-png");
    let model = small_model(&sb);
    for i in 0..9 {
        sb.input(&format!("imgs/good{i}.png"), &png(32 + i, 32));
    }
    let empty = sb.input("imgs/zz-empty.png", b"");
    let before = sb.listing();
    let out = run_limited(
        &sb.cwd(),
        &[
            "explain",
            "--model",
            s(&model),
            "--method",
            "saliency,grad-cam",
            "--out",
            s(&sb.out()),
            s(&sb.inputs().join("imgs")),
        ],
    );
    assert_refused(&out, &[s(&empty)]);
    sb.assert_nothing_outside_out(&before);
    assert_eq!(
        files_below(&sb.out()),
        Vec::<PathBuf>::new(),
        "maps written before the error"
    );
}
