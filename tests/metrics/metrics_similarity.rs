//! Map comparison scores against scipy and scikit-image, Otsu's threshold against
//! `skimage.filters.threshold_otsu`, and RISE's blur substrate against its recipe
//! (`tools/fixtures_metrics.py` writes the fixtures).

use crate::metrics_common;

use metrics_common::*;
use relevance::metrics::similarity::{
    DataRange, SsimOptions, SsimWindow, pearson, spearman, ssim, top_k_iou,
};
use relevance::metrics::substrate::rise_kernel;
use relevance::metrics::threshold::{Threshold, binarise, otsu_threshold, thresholded_iou};
use relevance::metrics::{ImageView, MapView, Substrate};
use relevance::tensor::max_abs_diff;

#[test]
fn correlations_match_scipy() {
    let fx = fixture("similarity.json");
    let (a, b, t) = (f32s(&fx["a"]), f32s(&fx["b"]), f32s(&fx["ties"]));
    let valid = bools(&fx["valid"]);
    let v = fx["pearson"].as_f64().unwrap();
    close(pearson(&a, &b, None).unwrap(), v, 1e-10, "pearson");
    close(
        spearman(&a, &b, None).unwrap(),
        fx["spearman"].as_f64().unwrap(),
        1e-10,
        "spearman",
    );
    close(
        spearman(&a, &t, None).unwrap(),
        fx["spearman_ties"].as_f64().unwrap(),
        1e-10,
        "spearman with ties",
    );
    close(
        pearson(&a, &b, Some(&valid)).unwrap(),
        fx["pearson_valid"].as_f64().unwrap(),
        1e-10,
        "pearson on valid pixels",
    );
    close(
        spearman(&a, &t, Some(&valid)).unwrap(),
        fx["spearman_valid"].as_f64().unwrap(),
        1e-10,
        "spearman on valid pixels",
    );
}

#[test]
fn ssim_matches_skimage_in_both_configurations() {
    let fx = fixture("similarity.json");
    let (a, b) = (f32s(&fx["a"]), f32s(&fx["b"]));
    let valid = bools(&fx["valid"]);
    let ma = MapView::new(&a, [20, 24]).unwrap();
    let mb = MapView::new(&b, [20, 24]).unwrap();
    let wang = SsimOptions::default();
    close(
        ssim(&ma, &mb, None, &wang).unwrap(),
        fx["ssim_gaussian"].as_f64().unwrap(),
        1e-9,
        "SSIM gaussian",
    );
    close(
        ssim(&ma, &mb, None, &SsimOptions::skimage_default()).unwrap(),
        fx["ssim_uniform"].as_f64().unwrap(),
        1e-9,
        "SSIM uniform 7×7, sample covariance",
    );
    close(
        ssim(&ma, &mb, None, &SsimOptions::skimage_default()).unwrap(),
        fx["ssim_quantus"].as_f64().unwrap(),
        1e-9,
        "SSIM as quantus.similarity_func.ssim calls skimage",
    );
    let fixed = SsimOptions {
        data_range: DataRange::Fixed(2.0),
        ..wang
    };
    close(
        ssim(&ma, &mb, None, &fixed).unwrap(),
        fx["ssim_fixed_range"].as_f64().unwrap(),
        1e-9,
        "SSIM with a fixed data range",
    );
    close(
        ssim(&ma, &mb, Some(&valid), &wang).unwrap(),
        fx["ssim_valid"].as_f64().unwrap(),
        1e-9,
        "SSIM on the valid pixels",
    );
    // A window larger than the map is refused, not silently cropped to nothing.
    let small = MapView::new(&a[..100], [10, 10]).unwrap();
    assert!(ssim(&small, &small, None, &wang).is_err());
    let uniform5 = SsimOptions {
        window: SsimWindow::Uniform { size: 5 },
        ..wang
    };
    assert!((ssim(&small, &small, None, &uniform5).unwrap() - 1.0).abs() < 1e-12);
}

#[test]
fn otsu_matches_skimage() {
    let fx = fixture("similarity.json");
    for (key, want) in [("a", "otsu_a"), ("b", "otsu_b")] {
        let v = f32s(&fx[key]);
        let t = otsu_threshold(&v) as f64;
        close(t, fx[want].as_f64().unwrap(), 1e-6, "Otsu threshold");
        let mask = binarise(&v, Threshold::Otsu, None).unwrap();
        let above = v.iter().filter(|&&x| x as f64 > t).count();
        assert_eq!(mask.iter().filter(|&&m| m).count(), above);
    }
}

#[test]
fn iou_of_thresholded_maps_is_consistent_with_top_k_iou() {
    let fx = fixture("similarity.json");
    let (a, b) = (f32s(&fx["a"]), f32s(&fx["b"]));
    let valid = bools(&fx["valid"]);
    for f in [0.05, 0.2, 0.5] {
        let x = thresholded_iou(&a, &b, Threshold::TopFraction(f), Some(&valid)).unwrap();
        let y = top_k_iou(&a, &b, f, Some(&valid)).unwrap();
        assert_eq!(x, y);
    }
    assert_eq!(thresholded_iou(&a, &a, Threshold::Otsu, None).unwrap(), 1.0);
}

#[test]
fn rise_blur_matches_its_recipe() {
    let fx = fixture("rise_blur.json");
    let kernel = f64s(&fx["kernel"]);
    let ours: Vec<f32> = rise_kernel(11, 5.0);
    let want: Vec<f32> = kernel.iter().map(|&v| v as f32).collect();
    assert!(max_abs_diff(&ours, &want) < 1e-7);
    let img = f32s(&fx["image"]);
    let view = ImageView::new(&img, [3, 14, 18]).unwrap();
    let blurred = Substrate::rise_blur().build(&view).unwrap();
    let want = f32s(&fx["blurred"]);
    let err = max_abs_diff(&blurred, &want);
    assert!(err < 1e-5, "blur max abs diff {err}");
}
