//! Explain one image with three methods through the library: a built-in ResNet-18 (fresh
//! weights, so the maps show the architecture, not a learned class), one input, Grad-CAM,
//! Integrated Gradients and LRP prepared once and run on the batch.
//!
//! ```bash
//! cargo run --release --example explain [-- IMAGE]
//! ```

use relevance::{MethodOptions, MethodSpec, Model, ModelCard};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let card = ModelCard {
        num_classes: 4,
        input_size: [64, 64],
        ..ModelCard::default()
    };
    let model = Model::init("resnet18", card, 0)?;
    let x = match std::env::args().nth(1) {
        // An image file is resized and normalised as the card says.
        Some(path) => relevance::data::image::load_input(path.as_ref(), &model.card)?,
        None => pattern(&model.card),
    };
    for text in [
        "grad-cam",
        "integrated-gradients(steps=16)",
        "lrp:epsilon-plus-flat(skip=split)",
    ] {
        let method = MethodSpec::parse(text, &MethodOptions::default())?.prepare(&model)?;
        let explanation = method.explain(&x, &[0])?;
        let map = relevance::tensor::to_vec(&explanation.maps);
        let total: f32 = map.iter().sum();
        println!(
            "{:<36} map {:?}, layer {:?}, explained {:.4}, sum of the map {total:.4}",
            method.label(),
            explanation.maps.dims(),
            explanation.layer.as_deref().unwrap_or("-"),
            explanation.explained[0],
        );
    }
    Ok(())
}

/// A smooth test pattern of the card's size (no file needed), `[1, C, H, W]`.
fn pattern(card: &ModelCard) -> relevance::T4 {
    let [h, w] = card.input_size;
    let values = (0..card.channels * h * w)
        .map(|i| ((i % w) as f32 * 0.2).sin() + ((i / w % h) as f32 * 0.15).cos())
        .collect();
    relevance::tensor::from_vec(values, [1, card.channels, h, w])
}
