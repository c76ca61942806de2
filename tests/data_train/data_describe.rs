//! `relevance data info --describe`: a small folder of hand-made images in four formats and
//! colour modes, one unreadable and one truncated file; every figure below is computed by hand
//! from the pixel values written here.

use std::path::{Path, PathBuf};
use std::process::Command;

use image::{ImageBuffer, Luma, Rgb, Rgba};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("relevance-describe-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// a/g1.png: grey 2×3, values 0, 10, …, 50.
/// a/g2.png: 16-bit grey 2×1, values 257·100 and 257·200 (8-bit 100 and 200 exactly).
/// b/c1.bmp: RGB 2×2, (10,20,30) (40,50,60) (70,80,90) (100,110,120).
/// b/c2.png: RGBA 2×3, every pixel (200, 0, 255, alpha 7).
/// b/broken.png: not an image. b/trunc.png: a PNG cut inside its pixel data.
fn make_dataset(root: &Path) {
    for c in ["a", "b"] {
        std::fs::create_dir_all(root.join(c)).unwrap();
    }
    let g1 = ImageBuffer::<Luma<u8>, _>::from_fn(2, 3, |x, y| Luma([((y * 2 + x) * 10) as u8]));
    g1.save(root.join("a/g1.png")).unwrap();
    let g2 = ImageBuffer::<Luma<u16>, _>::from_fn(2, 1, |x, _| Luma([257 * 100 * (x as u16 + 1)]));
    g2.save(root.join("a/g2.png")).unwrap();
    let c1 = ImageBuffer::<Rgb<u8>, _>::from_fn(2, 2, |x, y| {
        let k = (y * 2 + x) as u8;
        Rgb([10 + 30 * k, 20 + 30 * k, 30 + 30 * k])
    });
    c1.save(root.join("b/c1.bmp")).unwrap();
    let c2 = ImageBuffer::<Rgba<u8>, _>::from_pixel(2, 3, Rgba([200, 0, 255, 7]));
    c2.save(root.join("b/c2.png")).unwrap();
    std::fs::write(root.join("b/broken.png"), b"not a png at all").unwrap();
    let noise = ImageBuffer::<Rgb<u8>, _>::from_fn(64, 64, |x, y| {
        Rgb([(x * 37 + y * 11) as u8, (x * y) as u8, (x ^ y) as u8])
    });
    let full = root.join("trunc.tmp.png");
    noise.save(&full).unwrap();
    let bytes = std::fs::read(&full).unwrap();
    std::fs::remove_file(&full).unwrap();
    std::fs::write(root.join("b/trunc.png"), &bytes[..bytes.len() / 2]).unwrap();
}

fn relevance(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_relevance"))
        .args(args)
        .output()
        .unwrap()
}

fn read_csv(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

#[test]
fn description_counts_sizes_formats_modes_and_intensities_by_hand() {
    let d = temp_dir("hand");
    let data = d.join("data");
    make_dataset(&data);
    let out = d.join("desc");
    let run = relevance(&[
        "data",
        "info",
        data.to_str().unwrap(),
        "--describe",
        out.to_str().unwrap(),
        "--montage-images",
        "1",
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    // Sizes: 2×3 twice (g1, c2), then 2×1 and 2×2 once each (ties by width, then height).
    assert_eq!(
        read_csv(&out.join("sizes.csv")),
        [["2", "3", "2"], ["2", "1", "1"], ["2", "2", "1"]]
    );
    // L: 0..50 (sum 150 over 6) and 100, 200 → min 0, max 200, mean 450 / 8.
    // R: 10, 40, 70, 100 and six 200 → mean 1420 / 10; G: 20..110 and six 0 → 260 / 10;
    // B: 30..120 and six 255 → 1830 / 10.
    let channels = read_csv(&out.join("channels.csv"));
    let expect = [
        ("L", 0, 200, 56.25, 8, 2),
        ("R", 10, 200, 142.0, 10, 2),
        ("G", 0, 110, 26.0, 10, 2),
        ("B", 30, 255, 183.0, 10, 2),
    ];
    assert_eq!(channels.len(), expect.len());
    for (row, (name, min, max, mean, pixels, images)) in channels.iter().zip(expect) {
        assert_eq!(row[0], name);
        assert_eq!(row[1].parse::<u8>().unwrap(), min, "{name} min");
        assert_eq!(row[2].parse::<u8>().unwrap(), max, "{name} max");
        assert!(
            (row[3].parse::<f64>().unwrap() - mean).abs() < 1e-9,
            "{name} mean"
        );
        assert_eq!(row[4].parse::<u64>().unwrap(), pixels, "{name} pixels");
        assert_eq!(row[5].parse::<usize>().unwrap(), images, "{name} images");
    }

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("describe.json")).unwrap()).unwrap();
    assert_eq!(json["images"], 4);
    assert_eq!(json["formats"], serde_json::json!({"BMP": 1, "PNG": 3}));
    assert_eq!(
        json["modes"],
        serde_json::json!({"L": 1, "L;16": 1, "RGB": 1, "RGBA": 1})
    );
    assert_eq!(json["classes"][0]["images"], 2);
    assert_eq!(json["classes"][1]["images"], 2);
    // broken.png fails at its header (the data set's reader skips it); trunc.png has a valid
    // header and fails when its pixels are decoded.
    let mut unreadable: Vec<String> = json["unreadable"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            let p = PathBuf::from(u["path"].as_str().unwrap());
            p.file_name().unwrap().to_string_lossy().to_string()
        })
        .collect();
    unreadable.sort();
    assert_eq!(unreadable, ["broken.png", "trunc.png"]);
    assert_eq!(read_csv(&out.join("unreadable.csv")).len(), 2);

    // Montage of class a with one image: g1 (first in path order) on a 4-pixel white border.
    let m = image::open(out.join("montage-a.png")).unwrap().to_rgb8();
    assert_eq!(m.dimensions(), (4 + 2 + 4, 4 + 3 + 4));
    assert_eq!(m.get_pixel(0, 0).0, [255, 255, 255]);
    assert_eq!(m.get_pixel(4, 4).0, [0, 0, 0]);
    assert_eq!(m.get_pixel(5, 6).0, [50, 50, 50]);
    // Class b's first readable image in path order is c1.bmp (2×2).
    let m = image::open(out.join("montage-b.png")).unwrap().to_rgb8();
    assert_eq!(m.dimensions(), (10, 10));
    assert_eq!(m.get_pixel(5, 5).0, [100, 110, 120]);
    let chart = image::open(out.join("sizes.png")).unwrap();
    assert!(chart.width() >= 600);
    assert!(
        std::fs::read_to_string(out.join("sizes.svg"))
            .unwrap()
            .contains("2×3")
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn strict_description_stops_at_the_first_unreadable_image_with_one_line() {
    let d = temp_dir("strict");
    let data = d.join("data");
    make_dataset(&data);
    std::fs::remove_file(data.join("b/broken.png")).unwrap();
    let out = d.join("desc");
    let run = relevance(&[
        "data",
        "info",
        data.to_str().unwrap(),
        "--describe",
        out.to_str().unwrap(),
        "--strict",
    ]);
    assert_eq!(run.status.code(), Some(1));
    let err = String::from_utf8_lossy(&run.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("error: ") && lines[0].contains("trunc.png: "),
        "{err}"
    );
    assert!(!out.join("describe.json").exists());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn large_images_are_shrunk_into_montage_tiles_keeping_their_ratio() {
    let d = temp_dir("tiles");
    let data = d.join("data");
    for c in ["x", "y"] {
        std::fs::create_dir_all(data.join(c)).unwrap();
        ImageBuffer::<Rgb<u8>, _>::from_pixel(200, 100, Rgb([9, 99, 199]))
            .save(data.join(c).join("wide.png"))
            .unwrap();
    }
    let out = d.join("desc");
    let run = relevance(&[
        "data",
        "info",
        data.to_str().unwrap(),
        "--describe",
        out.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    // 200×100 into a 96-pixel tile: 96×48; a constant image stays constant under resampling.
    let m = image::open(out.join("montage-x.png")).unwrap().to_rgb8();
    assert_eq!(m.dimensions(), (4 + 96 + 4, 4 + 48 + 4));
    assert_eq!(m.get_pixel(50, 30).0, [9, 99, 199]);
    std::fs::remove_dir_all(&d).unwrap();
}
