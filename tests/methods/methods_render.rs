//! Colormaps against matplotlib's viridis / inferno tables and zennit's bwr / coldnhot palettes
//! (fixtures from `tools/fixtures_methods.py`).

use crate::methods_common;

use methods_common::fixture;
use relevance::report::Colormap;

fn max_deviation(cmap: Colormap, name: &str) -> f32 {
    let (shape, want) = fixture(&format!("cmap.{name}"));
    assert_eq!(shape, vec![256, 3]);
    cmap.lut()
        .iter()
        .flatten()
        .zip(&want)
        .map(|(&a, &b)| (a as f32 - b).abs())
        .fold(0.0, f32::max)
}

#[test]
fn perceptual_maps_stay_within_two_levels_of_matplotlib() {
    for (cmap, name) in [
        (Colormap::Viridis, "viridis"),
        (Colormap::Inferno, "inferno"),
    ] {
        let d = max_deviation(cmap, name);
        println!("{name}: max deviation {d}");
        assert!(d <= 2.0, "{name}: {d}");
    }
}

#[test]
fn diverging_maps_equal_zennits_palettes() {
    // zennit truncates to 8 bits where we round: at most one level apart.
    for (cmap, name) in [(Colormap::Bwr, "bwr"), (Colormap::Coldnhot, "coldnhot")] {
        let d = max_deviation(cmap, name);
        println!("{name}: max deviation {d}");
        assert!(d <= 1.0, "{name}: {d}");
    }
}
