//! `review serve STUDY --data DATA`: the items of a `compare` study's map cache, shown over the
//! input images of the data folder the user names. The reference for every picture is
//! `relevance explain` run on the same model and images: the study's overlay of a map must be
//! the overlay `explain` draws, and an item shared by both runs must have one id.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{HOSTILE_CLASS, Server, http, item_on, relevance, s, scratch};

use relevance::graph::{Model, ModelCard};
use relevance::train::checkpoint::save_model;

/// A weights folder whose name is markup: it reaches the page as the model's name.
const HOSTILE_FOLDER: &str = "<b onmouseover=alert(2)>models&";
/// Weights whose grad-cam maps of the test images are not all zero (checked below), so
/// comparing their overlays shows something.
const MODEL_SEED: u64 = 5;
/// An image whose file name is markup.
const HOSTILE_IMAGE: &str = "<img src=y onerror=alert(3)>.png";

struct StudyRun {
    weights: PathBuf,
    data: PathBuf,
    study: PathBuf,
    /// The images as `explain` was given them.
    images: Vec<PathBuf>,
}

/// A small_cnn with three classes, the third with a hostile name, saved in a hostile folder; an ImageFolder of three 40×40 images in two classes; a `compare` study of
/// all of them by grad-cam and saliency, each map explaining the model's prediction.
fn study_run(dir: &Path) -> StudyRun {
    let run = model_and_data(dir);
    compare(&run.weights, &run.data, &run.study);
    run
}

/// [`study_run`]'s model and data, with no study run yet in `study`. The card lists the
/// classes in another order than the data folder's (`healthy` is the folder's class 0 and the
/// card's class 1).
fn model_and_data(dir: &Path) -> StudyRun {
    let card = ModelCard {
        arch: Some("small_cnn".into()),
        classes: vec!["tumour".into(), "healthy".into(), HOSTILE_CLASS.into()],
        num_classes: 3,
        input_size: [32, 32],
        ..Default::default()
    };
    let model = Model::init("small_cnn", card, MODEL_SEED).unwrap();
    let weights = save_model(&dir.join(HOSTILE_FOLDER), &model.params, &model.card).unwrap();
    let data = dir.join("data");
    let mut images = Vec::new();
    for (i, (class, name)) in [
        ("tumour", "scan_a.png"),
        ("healthy", HOSTILE_IMAGE),
        ("tumour", "scan_c.png"),
    ]
    .iter()
    .enumerate()
    {
        std::fs::create_dir_all(data.join(class)).unwrap();
        let png = data.join(class).join(name);
        let k = i as u32 + 1;
        image::RgbImage::from_fn(40, 40, |x, y| {
            image::Rgb([(x * 6 * k) as u8, (y * 5) as u8, ((x * y * k) % 256) as u8])
        })
        .save_with_format(&png, image::ImageFormat::Png)
        .unwrap();
        images.push(png);
    }
    let study = dir.join("study");
    StudyRun {
        weights,
        data,
        study,
        images,
    }
}

/// `relevance compare` of `weights` on every image of `data` by grad-cam and saliency, each
/// map explaining the model's prediction.
fn compare(weights: &Path, data: &Path, study: &Path) {
    let res = relevance(&[
        "compare",
        "--models",
        s(weights),
        "--data",
        s(data),
        "--split",
        "all",
        "--methods",
        "grad-cam,saliency",
        "--target",
        "pred",
        "--no-progress",
        "--out",
        s(study),
    ]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
}

/// `relevance explain` of the same model, methods and images (the prediction explained).
fn explain_same(run: &StudyRun, out: &Path) {
    let mut args = vec![
        "explain",
        "--model",
        s(&run.weights),
        "--method",
        "grad-cam,saliency",
        "--out",
        s(out),
    ];
    args.extend(run.images.iter().map(|p| s(p)));
    let res = relevance(&args);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
}

/// The items the database holds: id → (method, model, input, class).
fn items_in(db: &Path) -> BTreeMap<String, (String, String, String, String)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT id, method, model, input, class FROM items")
        .unwrap();
    stmt.query_map([], |r| {
        Ok((r.get(0)?, (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn decode(png: &[u8]) -> image::RgbImage {
    image::load_from_memory(png).unwrap().to_rgb8()
}

/// `review serve STUDY --db DB --port 0 [--data DATA]`.
fn serve_args<'a>(study: &'a Path, db: &'a Path, data: Option<&'a Path>) -> Vec<&'a str> {
    let mut args = vec!["review", "serve", s(study), "--db", s(db), "--port", "0"];
    if let Some(d) = data {
        args.extend(["--data", s(d)]);
    }
    args
}

/// `review serve` with these arguments must refuse to start: its stderr (one line), after
/// at most a minute (a server that starts is killed and fails the test).
fn refused(args: &[&str]) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_relevance"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("{args:?}: the server started");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{args:?}");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("error: "), "{err}");
    err
}

#[test]
fn a_study_folder_is_reviewed_over_its_data_folder_with_explains_pictures() {
    let dir = scratch("study-items");
    let run = study_run(&dir);
    let db = dir.join("r.sqlite");
    let server = Server::start(&run.study, &db, &["--data", s(&run.data)]);
    let items = items_in(&db);
    // One item per image × model × method.
    assert_eq!(items.len(), 3 * 2, "{items:?}");
    let pairs: BTreeSet<(String, String)> = items
        .values()
        .map(|(method, _, input, _)| (input.clone(), method.clone()))
        .collect();
    assert_eq!(pairs.len(), 6);
    let inputs: BTreeSet<&str> = items.values().map(|v| v.2.as_str()).collect();
    let want: BTreeSet<String> = ["tumour/scan_a.png", "tumour/scan_c.png"]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("healthy/{HOSTILE_IMAGE}")])
        .collect();
    assert_eq!(
        inputs,
        want.iter().map(String::as_str).collect::<BTreeSet<_>>()
    );
    assert!(items.values().all(|v| v.1 == s(&run.weights)));

    // The reference: explain's own files for the same model and images.
    let explain = dir.join("explain");
    explain_same(&run, &explain);
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(explain.join("explain.json")).unwrap())
            .unwrap();
    let mut compared = 0;
    for output in record["outputs"].as_array().unwrap() {
        let input = Path::new(output["input"].as_str().unwrap());
        let relative = input.strip_prefix(&run.data).unwrap().to_str().unwrap();
        let class = output["target"]["name"].as_str().unwrap();
        let input_png = std::fs::read(explain.join(output["input_png"].as_str().unwrap())).unwrap();
        for method in ["grad-cam", "saliency"] {
            let (id, _) = items
                .iter()
                .find(|(_, v)| v.0 == method && v.2 == relative)
                .unwrap();
            assert_eq!(items[id].3, class, "{relative} {method}: explained class");
            let served_input = http(server.port, "GET", &format!("/item/{id}/input"), &[], b"");
            assert_eq!(served_input.status, 200);
            assert_eq!(
                decode(&served_input.body),
                decode(&input_png),
                "{relative}: input as the model saw it"
            );
            let map = explain.join(output["files"][method]["npy"].as_str().unwrap());
            let (_, values) = relevance::data::npy::read_npy(&map).unwrap();
            assert!(
                values.iter().any(|&v| v != 0.0),
                "{relative} {method}: an all-zero map draws nothing to compare"
            );
            let served = http(server.port, "GET", &format!("/item/{id}/overlay"), &[], b"");
            assert_eq!(served.status, 200);
            let files = &output["files"][method];
            let want = std::fs::read(explain.join(files["png"].as_str().unwrap())).unwrap();
            let (got, want) = (decode(&served.body), decode(&want));
            assert_eq!(got.dimensions(), want.dimensions());
            // The maps come from batches of different sizes: allow a rounding step per pixel.
            let worst = got
                .as_raw()
                .iter()
                .zip(want.as_raw())
                .map(|(a, b)| a.abs_diff(*b))
                .max()
                .unwrap();
            assert!(
                worst <= 1,
                "{relative} {method}: overlay differs by {worst}"
            );
            compared += 1;
        }
    }
    assert_eq!(compared, 6);

    // The page of every study item: each text from a file name or the card escaped.
    for _ in 0..items.len() {
        let page = http(server.port, "GET", "/rate?rater=ann", &[], b"").text();
        let id = item_on(&page).unwrap();
        assert!(
            page.contains("&lt;b onmouseover=alert(2)&gt;models&amp;"),
            "{page}"
        );
        assert!(!page.contains("<b onmouseover") && !page.contains("<img src=x"));
        let body = format!(r#"{{"rater":"ann","item":"{id}","answer":"correct"}}"#);
        let res = http(
            server.port,
            "POST",
            "/api/answer",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        assert_eq!(res.status, 200, "{}", res.text());
    }
}

#[test]
fn an_item_shared_by_explain_and_a_study_has_one_id_when_the_bytes_agree() {
    let dir = scratch("study-shared");
    let run = study_run(&dir);
    let explain = dir.join("explain");
    explain_same(&run, &explain);
    let (db_study, db_explain) = (dir.join("s.sqlite"), dir.join("e.sqlite"));
    drop(Server::start(
        &run.study,
        &db_study,
        &["--data", s(&run.data)],
    ));
    drop(Server::start(&explain, &db_explain, &[]));
    let (study, explained) = (items_in(&db_study), items_in(&db_explain));
    let shared: Vec<&String> = study
        .keys()
        .filter(|id| explained.contains_key(*id))
        .collect();
    // grad-cam's map is one [H, W] plane in both runs, so its file bytes agree; saliency's
    // is [C, H, W] in explain's .npy and one plane in the study's cache.
    assert_eq!(shared.len(), 3, "{study:?}\n{explained:?}");
    assert!(shared.iter().all(|id| study[*id].0 == "grad-cam"));
}

#[test]
fn the_data_folder_must_be_the_one_the_study_read() {
    let dir = scratch("study-data");
    let run = study_run(&dir);
    let db = dir.join("r.sqlite");
    let serve = |data: Option<&Path>| refused(&serve_args(&run.study, &db, data));
    assert!(serve(None).contains("--data"));
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    assert!(serve(Some(&empty)).contains("is missing"));
    assert!(serve(Some(&dir.join("nowhere"))).contains("cannot open the data folder"));
    // A copy with one pixel of one image changed.
    let copy = dir.join("copy");
    for class in ["tumour", "healthy"] {
        std::fs::create_dir_all(copy.join(class)).unwrap();
    }
    for image in &run.images {
        let to = copy.join(image.strip_prefix(&run.data).unwrap());
        std::fs::copy(image, &to).unwrap();
    }
    let changed = copy.join("tumour/scan_c.png");
    let mut picture = image::open(&changed).unwrap().to_rgb8();
    picture.put_pixel(3, 3, image::Rgb([1, 2, 3]));
    picture.save(&changed).unwrap();
    let err = serve(Some(&copy));
    assert!(
        err.contains("scan_c.png is not the image the study read"),
        "{err}"
    );
    // The same bytes behind a link that leaves the data folder.
    std::fs::copy(run.images[2].clone(), dir.join("outside.png")).unwrap();
    std::fs::remove_file(&changed).unwrap();
    std::os::unix::fs::symlink(dir.join("outside.png"), &changed).unwrap();
    let err = serve(Some(&copy));
    assert!(err.contains("leads outside the data folder"), "{err}");
    // A cache record naming a path out of the data folder.
    let source = only_source(&run.study);
    let text = std::fs::read_to_string(&source).unwrap();
    std::fs::write(&source, text.replace("tumour/scan_a.png", "../outside.png")).unwrap();
    let err = serve(Some(&run.data));
    assert!(err.contains("not a path inside its data folder"), "{err}");
}

#[test]
fn a_compare_folder_from_before_source_json_is_refused_until_the_study_runs_again() {
    let dir = scratch("study-old-cache");
    let run = study_run(&dir);
    let db = dir.join("r.sqlite");
    let source = only_source(&run.study);
    let recorded = std::fs::read(&source).unwrap();
    std::fs::remove_file(&source).unwrap();
    let err = refused(&serve_args(&run.study, &db, Some(&run.data)));
    assert!(
        err.contains("without a record of its images")
            && err.contains("run the same compare command again"),
        "{err}"
    );
    // Running it again reuses the cache and writes the record it lacked.
    compare(&run.weights, &run.data, &run.study);
    assert_eq!(std::fs::read(&source).unwrap(), recorded);
}

/// The `source.json` of the study's one model.
fn only_source(study: &Path) -> PathBuf {
    let models: Vec<_> = std::fs::read_dir(study.join("cache"))
        .unwrap()
        .map(|e| e.unwrap().path().join("source.json"))
        .collect();
    assert_eq!(models.len(), 1, "{models:?}");
    models.into_iter().next().unwrap()
}

#[test]
fn requests_for_study_items_never_reach_the_data_folder_by_path() {
    let dir = scratch("study-traversal");
    let run = study_run(&dir);
    std::fs::write(run.data.join("secret.txt"), "data secret").unwrap();
    std::fs::write(dir.join("secret.txt"), "outside").unwrap();
    let server = Server::start(&run.study, &dir.join("r.sqlite"), &["--data", s(&run.data)]);
    let page = http(server.port, "GET", "/rate?rater=ann", &[], b"").text();
    let id = item_on(&page).unwrap();
    for target in [
        "/data/secret.txt".to_string(),
        "/secret.txt".into(),
        "/tumour/scan_a.png".into(),
        "/../data/tumour/scan_a.png".into(),
        "/%2e%2e/data/secret.txt".into(),
        format!("/item/{id}/..%2F..%2Fdata%2Fsecret.txt"),
        format!("/item/{id}/..%2F..%2F..%2Fsecret.txt"),
        "/item/..%2Fdata%2Ftumour%2Fscan_a.png/input".into(),
        "/item/tumour%2Fscan_a.png/input".into(),
        "/cache/source.json".into(),
        format!("/item/{id}/source.json"),
    ] {
        let res = http(server.port, "GET", &target, &[], b"");
        assert!(
            matches!(res.status, 400 | 404),
            "{target}: status {}",
            res.status
        );
        let body = res.text();
        assert!(
            !body.contains("secret")
                && !body.contains("outside")
                && !res.body.starts_with(b"\x89PNG"),
            "{target}: {body}"
        );
    }
}

#[test]
fn summary_pictures_tag_examples_of_study_items() {
    let dir = scratch("study-summary");
    let run = study_run(&dir);
    let db = dir.join("r.sqlite");
    let server = Server::start(&run.study, &db, &["--data", s(&run.data)]);
    let page = http(server.port, "GET", "/rate?rater=ann", &[], b"").text();
    let id = item_on(&page).unwrap();
    let body = format!(r#"{{"rater":"ann","item":"{id}","answer":"wrong","tags":"eye socket"}}"#);
    let res = http(
        server.port,
        "POST",
        "/api/answer",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(res.status, 200, "{}", res.text());
    let overlay = http(server.port, "GET", &format!("/item/{id}/overlay"), &[], b"").body;
    server.kill();
    let out = dir.join("summary");
    let res = relevance(&[
        "review",
        "summary",
        s(&db),
        "--out",
        s(&out),
        "--runs",
        s(&run.study),
        "--data",
        s(&run.data),
    ]);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    let picture = std::fs::read(out.join(format!("examples/{id}.png"))).unwrap();
    assert_eq!(picture, overlay);
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("review.json")).unwrap()).unwrap();
    let tag = &summary["tags"][0];
    assert_eq!(tag["tag"], "eye socket");
    assert_eq!(tag["pictures"][0], format!("examples/{id}.png"));
}

#[test]
fn a_study_of_a_csv_list_is_reviewed_with_the_list_named() {
    let dir = scratch("study-csv");
    let run = study_run(&dir);
    // The same images named by a list beside them (paths relative to the list's folder).
    let list = run.data.join("list.csv");
    let mut csv = String::from("path,label\n");
    for image in &run.images {
        let relative = image.strip_prefix(&run.data).unwrap().to_str().unwrap();
        let class = relative.split('/').next().unwrap();
        csv.push_str(&format!("{relative},{class}\n"));
    }
    std::fs::write(&list, csv).unwrap();
    let study = dir.join("study-csv");
    compare(&run.weights, &list, &study);
    let db = dir.join("r.sqlite");
    drop(Server::start(&study, &db, &["--data", s(&list)]));
    let from_list = items_in(&db);
    assert_eq!(from_list.len(), 6);
    // The images are the folder study's, byte for byte: the same ids.
    let db_folder = dir.join("f.sqlite");
    drop(Server::start(
        &run.study,
        &db_folder,
        &["--data", s(&run.data)],
    ));
    assert_eq!(
        from_list.keys().collect::<Vec<_>>(),
        items_in(&db_folder).keys().collect::<Vec<_>>()
    );
}

/// `relevance <study> --save-maps` of [`model_and_data`]'s model on every image by grad-cam
/// and saliency, with `extra` options, into `run.study`.
fn saved_maps_study(run: &StudyRun, study: &str, extra: &[&str]) {
    let mut args = vec![
        study,
        "--models",
        s(&run.weights),
        "--data",
        s(&run.data),
        "--split",
        "all",
        "--methods",
        "grad-cam,saliency",
        "--save-maps",
        "--no-progress",
        "--out",
        s(&run.study),
    ];
    args.extend(extra);
    let res = relevance(&args);
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
}

/// Serves `run.study` over its data folder and checks its items against the maps the study
/// saved in `maps/<model>/`: one item per image × method (of the one model), each of the
/// class `class_of(input path, stem)`, and every served overlay the saved map of its own image and
/// method drawn over the served input as `explain` draws it (and not another image's map).
fn check_saved_maps_items(dir: &Path, run: &StudyRun, class_of: impl Fn(&str, &str) -> String) {
    let db = dir.join("r.sqlite");
    let server = Server::start(&run.study, &db, &["--data", s(&run.data)]);
    let items = items_in(&db);
    assert_eq!(items.len(), 3 * 2, "{items:?}");
    assert!(items.values().all(|v| v.1 == s(&run.weights)));
    let models: Vec<PathBuf> = std::fs::read_dir(run.study.join("maps"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(models.len(), 1, "{models:?}");
    let source: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(models[0].join("source.json")).unwrap())
            .unwrap();
    let stem_of = |input: &str| -> String {
        let images = source["images"].as_array().unwrap();
        let image = images.iter().find(|i| i["file"] == input).unwrap();
        image["stem"].as_str().unwrap().to_string()
    };
    let saved = |method: &str, input: &str| {
        let npy = models[0]
            .join(method)
            .join(format!("{}.npy", stem_of(input)));
        relevance::data::npy::read_npy(&npy).unwrap().1
    };
    let mut compared = BTreeSet::new();
    for (id, (method, _, input, class)) in &items {
        assert_eq!(
            *class,
            class_of(input, &stem_of(input)),
            "{input} {method}: explained class"
        );
        let base = decode(&http(server.port, "GET", &format!("/item/{id}/input"), &[], b"").body);
        let served = http(server.port, "GET", &format!("/item/{id}/overlay"), &[], b"");
        assert_eq!(served.status, 200);
        let draw = |map: &[f32]| {
            relevance::report::heatmap::map_overlay(
                &base,
                map,
                1,
                relevance::methods::MapStyle::from_name(if method == "grad-cam" {
                    "unit"
                } else {
                    "magnitude"
                }),
                None,
                relevance::report::heatmap::DEFAULT_ALPHA,
            )
        };
        let map = saved(method, input);
        assert!(
            map.iter().any(|&v| v != 0.0),
            "{input} {method}: all-zero map"
        );
        assert_eq!(decode(&served.body), draw(&map), "{input} {method}");
        let other = items
            .values()
            .find(|v| v.0 == *method && v.2 != *input)
            .unwrap();
        let other_map = saved(method, &other.2);
        if other_map != map {
            assert_ne!(decode(&served.body), draw(&other_map), "{input} {method}");
        }
        compared.insert((method.clone(), input.clone()));
    }
    assert_eq!(compared.len(), 6);
}

/// The class of an image of [`model_and_data`]'s folder: its folder's name.
fn folder_class(input: &str, _stem: &str) -> String {
    input.split('/').next().unwrap().to_string()
}

#[test]
fn a_faithfulness_folder_with_saved_maps_is_reviewed_and_one_without_maps_is_refused_saying_why() {
    let dir = scratch("study-faithfulness");
    let run = model_and_data(&dir);
    // The true class: the card's index of the folder's class, not the folder's index.
    saved_maps_study(&run, "faithfulness", &["--target", "true", "--step", "0.5"]);
    check_saved_maps_items(&dir, &run, folder_class);
    std::fs::remove_dir_all(run.study.join("maps")).unwrap();
    let db = dir.join("none.sqlite");
    let err = refused(&serve_args(&run.study, &db, Some(&run.data)));
    assert!(
        err.contains("a faithfulness study folder without maps to review")
            && err.contains("--save-maps"),
        "{err}"
    );
}

#[test]
fn a_stability_folder_with_saved_maps_is_reviewed_by_its_original_images_only() {
    let dir = scratch("study-stability");
    let run = model_and_data(&dir);
    saved_maps_study(&run, "stability", &["--augment", "hflip"]);
    // The mapped-back maps of the flipped images are saved beside the originals' but are
    // not items.
    let model = std::fs::read_dir(run.study.join("maps"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let flipped = std::fs::read_dir(model.join("grad-cam"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".hflip.npy")
        })
        .count();
    assert_eq!(flipped, 3);
    // Each item's class is the one the study explained for its image: its prediction, as
    // the study's per-image record gives it.
    let per_image = std::fs::read_dir(run.study.join("per_image"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let classes = ["tumour", "healthy", HOSTILE_CLASS];
    check_saved_maps_items(&dir, &run, |_, stem| {
        let path = per_image.join("grad-cam").join(format!("{stem}.json"));
        let record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        classes[record["class"].as_u64().unwrap() as usize].to_string()
    });
}

#[test]
fn records_below_a_run_folder_are_read_only_as_small_regular_files_inside_it() {
    let dir = scratch("study-hostile-records");
    let db = dir.join("r.sqlite");
    let summary = r#"{"schema_version": 1, "study": "sanity"}"#;
    // Read where it is a plain file in the run folder…
    let plain = dir.join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    std::fs::write(plain.join("summary.json"), summary).unwrap();
    let err = refused(&serve_args(&plain, &db, None));
    assert!(err.contains("a sanity study folder"), "{err}");
    // …but not through a link to a file outside it: the same text is never read.
    let outside = dir.join("outside-summary.json");
    std::fs::write(&outside, summary).unwrap();
    let linked = dir.join("linked");
    std::fs::create_dir_all(&linked).unwrap();
    std::os::unix::fs::symlink(&outside, linked.join("summary.json")).unwrap();
    let err = refused(&serve_args(&linked, &db, None));
    assert!(err.contains("no explanations to review"), "{err}");
    // A study name this build does not know never reaches the message.
    let named = dir.join("named");
    std::fs::create_dir_all(&named).unwrap();
    let hostile = r#"{"schema_version": 1, "study": "\u001b[2J<script>x</script>"}"#;
    std::fs::write(named.join("summary.json"), hostile).unwrap();
    let err = refused(&serve_args(&named, &db, None));
    assert!(
        err.contains("no explanations to review")
            && !err.contains("script")
            && !err.contains('\u{1b}'),
        "{err}"
    );
    // An explain record past the size limit is refused by its size, before it is read.
    let big = dir.join("big");
    std::fs::create_dir_all(&big).unwrap();
    let record = std::fs::File::create(big.join("explain.json")).unwrap();
    record.set_len((64 << 20) + 1).unwrap();
    let err = refused(&serve_args(&big, &db, None));
    assert!(err.contains("more than a record may hold"), "{err}");
    assert!(!db.exists(), "a refused start wrote the database");
}
