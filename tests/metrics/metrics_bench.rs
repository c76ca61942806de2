//! Per-image time of insertion + deletion on ResNet-18 at 224×224 (prints, asserts nothing about
//! speed). Run in release:
//!
//! ```bash
//! cargo test --release --test metrics_bench -- --ignored --nocapture
//! ```

use std::time::Instant;

use relevance::graph::{Model, ModelCard};
use relevance::metrics::insertion::{InsertionOptions, insertion_deletion};
use relevance::metrics::order::{Step, Ties};
use relevance::metrics::{FollowedClass, ImageView, MapView, ModelScorer, ScoreKind, Scorer};
use relevance::rng::Rng;
use relevance::tensor::from_vec;

#[test]
#[ignore = "benchmark: run in release with --ignored --nocapture"]
fn insertion_deletion_resnet18_224() {
    let card = ModelCard {
        num_classes: 4,
        ..ModelCard::default()
    };
    let model = Model::init("resnet18", card, 0).unwrap();
    let mut rng = Rng::new(1);
    let image: Vec<f32> = (0..3 * 224 * 224).map(|_| rng.normal()).collect();
    let map: Vec<f32> = (0..224 * 224).map(|_| rng.normal()).collect();
    let image = ImageView::new(&image, [3, 224, 224]).unwrap();
    let map = MapView::new(&map, [224, 224]).unwrap();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("resnet18 224×224, {threads} threads available, softmax target = predicted class");

    // One forward pass at batch 1 and 16 as the unit of cost.
    for n in [1usize, 16] {
        let scorer = ModelScorer::new(&model, ScoreKind::Softmax).unwrap();
        let x = from_vec(
            image
                .data
                .iter()
                .cycle()
                .take(n * image.data.len())
                .copied()
                .collect(),
            [n, 3, 224, 224],
        );
        scorer.scores(x.clone()).unwrap();
        let t = Instant::now();
        scorer.scores(x).unwrap();
        let dt = t.elapsed().as_secs_f64();
        println!(
            "forward batch {n:>2}: {:.1} ms per image",
            1e3 * dt / n as f64
        );
    }

    let configs: [(&str, Step, Ties); 3] = [
        (
            "default: 1/224 of the pixels per step (224 steps)",
            Step::Fraction(1.0 / 224.0),
            Ties::Stable,
        ),
        (
            "1% of pixels/step (100 steps)",
            Step::Fraction(0.01),
            Ties::Stable,
        ),
        (
            "8 quantised levels",
            Step::Pixels(1),
            Ties::Quantise { levels: 8 },
        ),
    ];
    for (name, step, ties) in configs {
        for batch in [16usize, 32] {
            let scorer = ModelScorer::new(&model, ScoreKind::Softmax)
                .unwrap()
                .with_batch_size(batch);
            let opts = InsertionOptions {
                step,
                ties,
                target: FollowedClass::Predicted,
                ..InsertionOptions::default()
            };
            let t = Instant::now();
            let r = insertion_deletion(&scorer, &image, &map, &opts).unwrap();
            let dt = t.elapsed().as_secs_f64();
            let passes = 2 * (r.insertion.conventions.steps + 1) + 1;
            println!(
                "{name}, batch {batch}: {dt:.2} s per image ({passes} images scored, {:.1} ms each)",
                1e3 * dt / passes as f64
            );
        }
    }
}
