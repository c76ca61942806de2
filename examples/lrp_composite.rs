//! LRP composites as data: zennit's `EpsilonGammaBox` preset, the same with γ = 0.5, and one
//! built by hand (z⁺ on convolutions, ε = 0.01 on dense layers, Flat first), on a built-in VGG-11
//! with fresh weights. Prints each composite's rules, the conservation error of its map, and how
//! far the maps lie apart.
//!
//! ```bash
//! cargo run --release --example lrp_composite
//! ```

use relevance::methods::lrp::{
    Composite, FirstLayer, LinearRule, LrpModel, LrpOptions, conservation_of,
};
use relevance::{MethodOptions, MethodSpec, Model, ModelCard};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let card = ModelCard {
        num_classes: 3,
        input_size: [32, 32],
        ..ModelCard::default()
    };
    let model = Model::init("vgg11", card, 1)?;
    let values: Vec<f32> = (0..3 * 32 * 32)
        .map(|i| ((i * 7919) % 255) as f32 / 64.0 - 2.0)
        .collect();
    let x = relevance::tensor::from_vec(values, [1, 3, 32, 32]);

    // Presets and parameters through method specs, as on the command line.
    let mut maps = Vec::new();
    for text in ["lrp:epsilon-gamma-box", "lrp:epsilon-gamma-box(gamma=0.5)"] {
        let lrp = MethodSpec::parse(text, &MethodOptions::default())?.prepare(&model)?;
        let explanation = lrp.explain(&x, &[0])?;
        println!("{text}: {}", lrp.params().options);
        maps.push(relevance::tensor::to_vec(&explanation.maps));
    }

    // A composite built as data.
    let mine = Composite {
        preset: "custom",
        first: Some(FirstLayer {
            rule: LinearRule::Flat,
            includes_dense: true,
        }),
        conv: LinearRule::ZPlus,
        dense: LinearRule::Epsilon { epsilon: 0.01 },
    };
    let lrp = LrpModel::new(&model, mine, &LrpOptions::default())?;
    let attribution = lrp.attribute(&x, &[0])?;
    for (node, rule) in lrp
        .assignment
        .iter()
        .filter(|(_, r)| r != "gradient")
        .take(4)
    {
        println!("  {node}: {rule}");
    }
    let conservation = conservation_of(&attribution)[0];
    println!("custom: conservation error {:.2e}", conservation.error);
    maps.push(relevance::tensor::to_vec(&attribution.input));

    let distance = |a: &[f32], b: &[f32]| {
        let d: f32 = a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum();
        let n: f32 = b.iter().map(|y| y * y).sum();
        (d / n).sqrt()
    };
    println!(
        "relative L2 distance: gamma 0.25 vs 0.5 {:.3}; preset vs custom {:.3}",
        distance(&maps[1], &maps[0]),
        distance(&maps[2], &maps[0])
    );
    Ok(())
}
