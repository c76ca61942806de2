//! Per-image timings of the explanation methods on ResNet-50 at 224×224 (batch 1), to set beside
//! `tools/bench_explain.py` (pytorch-grad-cam and torch on the same machine, 2 threads).
//!
//! Run: `RAYON_NUM_THREADS=2 cargo bench --bench explain [-- --repeats 10]`

use std::time::Instant;

use relevance::engine::forward;
use relevance::graph::{Model, ModelCard};
use relevance::methods::cam::{CamWeighting, GradientCam};
use relevance::methods::pass::forward_all;
use relevance::methods::{Explainer, MethodOptions, by_name};
use relevance::rng::Rng;
use relevance::tensor::{T4, from_vec};

fn median_ms(repeats: usize, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..2 {
        f();
    }
    let mut times: Vec<f64> = (0..repeats)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[0])
}

fn main() {
    relevance::alloc::keep_freed_memory();
    let repeats = std::env::args()
        .skip_while(|a| a != "--repeats")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let model = Model::init("resnet50", ModelCard::default(), 0).expect("resnet50");
    let mut rng = Rng::new(1);
    let x: T4 = from_vec(
        (0..3 * 224 * 224).map(|_| rng.normal()).collect(),
        [1, 3, 224, 224],
    );
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into());
    println!("relevance, {threads} threads, resnet50 224x224, batch 1 (median / min ms)");
    let row = |name: &str, (med, min): (f64, f64)| println!("{name:<34} {med:8.1} {min:8.1}");

    row(
        "forward (all activations kept)",
        median_ms(repeats, || {
            forward(&model.graph, &model.params, x.clone()).unwrap();
        }),
    );
    let grad_cam = GradientCam::new(CamWeighting::GradCam, None);
    let predicted = |acts: &relevance::engine::Activations| {
        let logits = relevance::methods::pass::logits(&model, acts).unwrap();
        relevance::methods::target::argmax_rows(&logits, 1000)
    };
    row(
        "grad-cam (forward + backward + map)",
        median_ms(repeats, || {
            let acts = forward_all(&model, &x).unwrap();
            let t = predicted(&acts);
            grad_cam.explain_forward(&model, &x, &acts, &t).unwrap();
        }),
    );
    let saliency = by_name("saliency", &MethodOptions::default()).unwrap();
    row(
        "input gradient (forward + backward)",
        median_ms(repeats, || {
            let acts = forward_all(&model, &x).unwrap();
            let t = predicted(&acts);
            saliency.explain_forward(&model, &x, &acts, &t).unwrap();
        }),
    );
    let acts = forward_all(&model, &x).unwrap();
    let t = predicted(&acts);
    row(
        "grad-cam backward + map only",
        median_ms(repeats, || {
            grad_cam.explain_forward(&model, &x, &acts, &t).unwrap();
        }),
    );
}
