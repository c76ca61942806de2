//! Faithfulness of two methods on one image: insertion and deletion curves (RISE's conventions)
//! of Grad-CAM and LRP maps on a built-in ResNet-18 with fresh weights, with the AUCs and the
//! conventions they were computed with.
//!
//! ```bash
//! cargo run --release --example faithfulness
//! ```

use relevance::metrics::insertion::{InsertionOptions, insertion_deletion};
use relevance::metrics::scorer::{ModelScorer, ScoreKind};
use relevance::metrics::{ImageView, MapView};
use relevance::{MapStyle, MethodOptions, MethodSpec, Model, ModelCard};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let card = ModelCard {
        num_classes: 4,
        input_size: [48, 48],
        ..ModelCard::default()
    };
    let model = Model::init("resnet18", card, 2)?;
    let [h, w] = model.card.input_size;
    let pixels: Vec<f32> = (0..3 * h * w)
        .map(|i| ((i % w) as f32 * 0.3).sin() * ((i / w % h) as f32 * 0.2).cos())
        .collect();
    let x = relevance::tensor::from_vec(pixels.clone(), [1, 3, h, w]);
    let image = ImageView {
        data: &pixels,
        channels: 3,
        height: h,
        width: w,
    };
    let scorer = ModelScorer::new(&model, ScoreKind::Softmax)?;
    let options = InsertionOptions::default();
    for text in ["grad-cam", "lrp:epsilon-plus-flat"] {
        let method = MethodSpec::parse(text, &MethodOptions::default())?.prepare(&model)?;
        let explanation = method.explain(&x, &[0])?;
        // One value per pixel, read the way the report draws the map.
        let channels = explanation.maps.dims()[1];
        let plane = relevance::report::heatmap::plane(
            &relevance::tensor::to_vec(&explanation.maps),
            channels,
            explanation.style,
        );
        let map = MapView {
            data: &plane,
            height: h,
            width: w,
        };
        let result = insertion_deletion(&scorer, &image, &map, &options)?;
        println!(
            "{text:<24} insertion AUC {:.3}, deletion AUC {:.3}, ID {:+.3} ({} steps, class {}, signed map: {})",
            result.insertion.curve.auc,
            result.deletion.curve.auc,
            result.id_score,
            result.insertion.conventions.steps,
            result.insertion.conventions.class,
            explanation.style == MapStyle::Signed,
        );
    }
    Ok(())
}
