//! The checkerboard score against a direct 2-D DFT and its documented reference values.

use relevance::methods::lrp::checkerboard_score;
use relevance::rng::Rng;

/// `E_π / Σ|F|²` by an explicit DFT.
fn by_dft(map: &[f32], h: usize, w: usize) -> f64 {
    let mut total = 0.0;
    let mut at_pi = 0.0;
    for k in 0..h {
        for l in 0..w {
            let (mut re, mut im) = (0.0f64, 0.0f64);
            for y in 0..h {
                for x in 0..w {
                    let a = -2.0
                        * std::f64::consts::PI
                        * (k as f64 * y as f64 / h as f64 + l as f64 * x as f64 / w as f64);
                    re += map[y * w + x] as f64 * a.cos();
                    im += map[y * w + x] as f64 * a.sin();
                }
            }
            let e = re * re + im * im;
            total += e;
            if (h.is_multiple_of(2) && k == h / 2) || (w.is_multiple_of(2) && l == w / 2) {
                at_pi += e;
            }
        }
    }
    at_pi / total
}

#[test]
fn equals_the_dft_definition() {
    let mut rng = Rng::new(2);
    for (h, w) in [(8, 8), (6, 10), (7, 8), (8, 5), (5, 7)] {
        let map: Vec<f32> = (0..h * w).map(|i| rng.normal() + (i % 3) as f32).collect();
        let fast = checkerboard_score(&map, h, w);
        let slow = by_dft(&map, h, w);
        assert!((fast - slow).abs() < 1e-9, "{h}×{w}: {fast} vs {slow}");
    }
}

#[test]
fn reference_values() {
    let (h, w) = (16, 12);
    let alternating: Vec<f32> = (0..h * w)
        .map(|i| if (i / w + i % w) % 2 == 0 { 1.0 } else { -1.0 })
        .collect();
    assert!((checkerboard_score(&alternating, h, w) - 1.0).abs() < 1e-12);
    let lattice: Vec<f32> = (0..h * w)
        .map(|i| {
            if (i / w) % 2 == 0 && (i % w) % 2 == 0 {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    assert!((checkerboard_score(&lattice, h, w) - 0.75).abs() < 1e-12);
    let smooth: Vec<f32> = (0..h * w)
        .map(|i| ((i / w) as f32 * 0.2).sin() + ((i % w) as f32 * 0.3).cos())
        .collect();
    assert!(checkerboard_score(&smooth, h, w) < 0.01);
    assert_eq!(checkerboard_score(&vec![0.0; h * w], h, w), 0.0);
}
