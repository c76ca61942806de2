//! Augmentations and their inverses: hand-computable cases (translation by k pixels, 90° turns,
//! flips, crops) give exact images and masks; inverse∘forward is the identity on the valid
//! region to interpolation tolerance; photometric transforms are identity maps on geometry.

use relevance::data::augment::{Aug, AugmentSpec, Planes, augment};
use relevance::rng::Rng;

fn plane(w: usize, h: usize, f: impl Fn(usize, usize) -> f32) -> Planes {
    Planes {
        channels: 1,
        height: h,
        width: w,
        data: (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .map(|(x, y)| f(x, y))
            .collect(),
    }
}

fn random_plane(w: usize, h: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..w * h).map(|_| rng.uniform()).collect()
}

fn translate(dx: f64, dy: f64) -> Aug {
    Aug::Affine {
        degrees: 0.0,
        scale: 1.0,
        translate: [dx, dy],
        shear: [0.0, 0.0],
    }
}

#[test]
fn translation_by_k_pixels_moves_pixels_and_masks_the_uncovered_columns() {
    let (w, h, k) = (10, 6, 3);
    let img = plane(w, h, |x, y| (y * w + x) as f32 / 60.0);
    let a = augment(&img, &[translate(k as f64, 0.0)]);
    for y in 0..h {
        for x in 0..w {
            let expect = if x >= k { img.data[y * w + x - k] } else { 0.0 };
            let got = a.image.data[y * w + x];
            assert!((got - expect).abs() < 1e-6, "({x},{y}): {got} vs {expect}");
        }
    }
    // Original pixel q ends at q + k: it stays in the frame iff q < w − k.
    let mask = a.valid_mask();
    for y in 0..h {
        for x in 0..w {
            assert_eq!(mask[y * w + x], x < w - k, "mask at ({x},{y})");
        }
    }
    let heat = random_plane(w, h, 1);
    let (back, valid) = a.to_original(&heat).unwrap();
    assert_eq!(valid, mask);
    for y in 0..h {
        for x in 0..w - k {
            assert!((back[y * w + x] - heat[y * w + x + k]).abs() < 1e-6);
        }
        for x in w - k..w {
            assert_eq!(back[y * w + x], 0.0);
        }
    }
}

#[test]
fn quarter_turn_is_numpy_rot90_and_fully_invertible() {
    let n = 7;
    let img = plane(n, n, |x, y| (y * n + x) as f32);
    let a = augment(&img, &[Aug::Rotate { degrees: 90.0 }]);
    // np.rot90 (counter-clockwise): out[i][j] = in[j][n − 1 − i]
    for i in 0..n {
        for j in 0..n {
            let expect = img.data[j * n + (n - 1 - i)];
            assert!((a.image.data[i * n + j] - expect).abs() < 1e-4);
        }
    }
    assert!(a.valid_mask().iter().all(|&v| v));
    let (back, valid) = a.to_original(&a.image.data).unwrap();
    assert!(valid.iter().all(|&v| v));
    for (b, o) in back.iter().zip(&img.data) {
        assert!((b - o).abs() < 1e-4, "{b} vs {o}");
    }
}

#[test]
fn flips_mirror_and_undo_themselves() {
    let (w, h) = (5, 4);
    let img = plane(w, h, |x, y| (10 * y + x) as f32);
    let a = augment(&img, &[Aug::FlipHorizontal]);
    assert_eq!(a.image.data[0], img.data[w - 1]);
    let v = augment(&img, &[Aug::FlipVertical]);
    assert_eq!(v.image.data[0], img.data[(h - 1) * w]);
    let both = augment(&img, &[Aug::FlipHorizontal, Aug::FlipHorizontal]);
    assert_eq!(both.image.data, img.data);
    let (back, valid) = a.to_original(&a.image.data).unwrap();
    assert!(valid.iter().all(|&m| m));
    assert_eq!(back, img.data);
}

#[test]
fn composition_translate_then_flip_has_the_hand_computed_mask_and_inverse() {
    // x ↦ x + 2 (valid for x ≤ 5 in a width of 8), then x ↦ 7 − x.
    let (w, h) = (8, 3);
    let img = plane(w, h, |x, _| x as f32);
    let a = augment(&img, &[translate(2.0, 0.0), Aug::FlipHorizontal]);
    let heat = random_plane(w, h, 2);
    let (back, valid) = a.to_original(&heat).unwrap();
    for y in 0..h {
        for x in 0..w {
            assert_eq!(valid[y * w + x], x <= 5);
            if x <= 5 {
                assert!((back[y * w + x] - heat[y * w + 7 - (x + 2)]).abs() < 1e-6);
            }
        }
    }
}

#[test]
fn crop_resize_sees_exactly_the_box_and_inverts_linear_ramps() {
    let (w, h) = (16, 12);
    let ramp = |x: usize, y: usize| 0.05 * x as f32 + 0.02 * y as f32;
    let img = plane(w, h, ramp);
    let crop = Aug::CropResize {
        left: 2.0,
        top: 3.0,
        width: 8.0,
        height: 6.0,
        out: [16, 12],
    };
    let a = augment(&img, &[crop]);
    let mask = a.valid_mask();
    for y in 0..h {
        for x in 0..w {
            assert_eq!(
                mask[y * w + x],
                (2..10).contains(&x) && (3..9).contains(&y),
                "({x},{y})"
            );
        }
    }
    // Bilinear sampling reproduces an affine function exactly away from the clamped edge band.
    let (back, _) = a.to_original(&a.image.data).unwrap();
    for y in 4..8 {
        for x in 3..9 {
            assert!((back[y * w + x] - ramp(x, y)).abs() < 1e-5, "({x},{y})");
        }
    }
}

#[test]
fn inverse_of_forward_is_identity_on_the_valid_region_for_a_general_affine_map() {
    let (w, h) = (40, 32);
    let smooth =
        |x: usize, y: usize| 0.5 + 0.25 * ((0.21 * x as f32).sin() + (0.17 * y as f32).cos());
    let img = plane(w, h, smooth);
    let augs = [
        Aug::Affine {
            degrees: 27.0,
            scale: 1.15,
            translate: [2.5, -1.5],
            shear: [8.0, 0.0],
        },
        Aug::Brightness { factor: 1.0 },
    ];
    let a = augment(&img, &augs);
    let (back, valid) = a.to_original(&a.image.data).unwrap();
    let valid_count = valid.iter().filter(|&&v| v).count();
    assert!(
        valid_count > w * h / 2 && valid_count < w * h,
        "{valid_count}"
    );
    // Compare away from the border of the valid region (edge clamping there).
    let mut worst = 0f32;
    for y in 2..h - 2 {
        for x in 2..w - 2 {
            let all_valid = (y - 2..=y + 2).all(|yy| (x - 2..=x + 2).all(|xx| valid[yy * w + xx]));
            if all_valid {
                worst = worst.max((back[y * w + x] - smooth(x, y)).abs());
            }
        }
    }
    assert!(worst < 0.05, "largest error {worst}");
}

#[test]
fn photometric_transforms_keep_geometry_and_follow_their_formulas() {
    let (w, h) = (6, 5);
    let img = Planes {
        channels: 3,
        height: h,
        width: w,
        data: random_plane(w * 3, h, 9),
    };
    let heat = random_plane(w, h, 4);
    for aug in [
        Aug::Brightness { factor: 1.3 },
        Aug::Contrast { factor: 0.5 },
        Aug::Gamma { gamma: 2.0 },
        Aug::Noise { std: 0.1, seed: 3 },
        Aug::Blur { sigma: 1.0 },
    ] {
        let a = augment(&img, std::slice::from_ref(&aug));
        assert!(!aug.is_geometric());
        let (back, valid) = a.to_original(&heat).unwrap();
        assert!(valid.iter().all(|&v| v), "{aug:?}");
        assert_eq!(back, heat, "{aug:?}");
    }
    let v = img.data[7];
    let b = augment(&img, &[Aug::Brightness { factor: 1.3 }]).image.data[7];
    assert!((b - (v * 1.3).min(1.0)).abs() < 1e-6);
    let g = augment(&img, &[Aug::Gamma { gamma: 2.0 }]).image.data[7];
    assert!((g - v * v).abs() < 1e-6);
    // Contrast 0.5 pulls every value halfway to the mean luma.
    let n = w * h;
    let mean: f32 = (0..n)
        .map(|i| 0.299 * img.data[i] + 0.587 * img.data[n + i] + 0.114 * img.data[2 * n + i])
        .sum::<f32>()
        / n as f32;
    let c = augment(&img, &[Aug::Contrast { factor: 0.5 }]).image.data[7];
    assert!((c - (mean + 0.5 * (v - mean))).abs() < 1e-5);
    // Blur keeps a constant image constant; noise is reproducible from its seed.
    let flat = plane(9, 9, |_, _| 0.4);
    let blurred = augment(&flat, &[Aug::Blur { sigma: 1.5 }]).image.data;
    assert!(blurred.iter().all(|v| (v - 0.4).abs() < 1e-5));
    let n1 = augment(&img, &[Aug::Noise { std: 0.1, seed: 3 }])
        .image
        .data;
    let n2 = augment(&img, &[Aug::Noise { std: 0.1, seed: 3 }])
        .image
        .data;
    assert_eq!(n1, n2);
    assert_ne!(n1, img.data);
}

#[test]
fn random_specs_parse_and_draw_reproducibly() {
    let spec = AugmentSpec::parse("flip,rotate,crop,color,noise,blur,affine").unwrap();
    let draw = |seed| spec.sample(32, 32, &mut Rng::new(seed));
    assert_eq!(draw(5), draw(5));
    assert!(
        AugmentSpec::parse("warp")
            .unwrap_err()
            .to_string()
            .contains("unknown augmentation")
    );
    assert!(AugmentSpec::parse("none").unwrap().is_identity());
    // Any drawn pipeline maps a heatmap back with a mask of the right size.
    let img = plane(32, 32, |x, y| (x + y) as f32 / 64.0);
    let a = augment(&img, &draw(11));
    let (back, valid) = a.to_original(&a.image.data).unwrap();
    assert_eq!((back.len(), valid.len()), (32 * 32, 32 * 32));
    assert!(valid.iter().any(|&v| v));
}
