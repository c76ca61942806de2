//! Training throughput of the built-in architectures: images per second of full training
//! steps (training-mode forward, cross-entropy, backward, SGD update) on random 64×64 batches.
//!
//! `cargo run --release --example bench_train -- [arch ...] [--batch B] [--size S] [--steps N]`
//! Compare with `tools/bench_train_torch.py` (same shapes, `torch.set_num_threads(2)`).

use std::time::Instant;

use relevance::graph::init::init_params;
use relevance::graph::zoo;
use relevance::rng::Rng;
use relevance::tensor::from_vec;
use relevance::train::trainer::StepPlan;
use relevance::train::{Optimizer, OptimizerKind};

fn main() {
    relevance::alloc::keep_freed_memory();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str, default: usize| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (batch, size, steps) = (flag("--batch", 32), flag("--size", 64), flag("--steps", 10));
    let mut archs: Vec<&str> = Vec::new();
    let mut skip = false;
    for a in &args {
        if skip {
            skip = false;
        } else if a.starts_with("--") {
            skip = true;
        } else {
            archs.push(a);
        }
    }
    if archs.is_empty() {
        archs = vec!["small_cnn", "resnet18"];
    }
    for arch in archs {
        let graph = zoo::build(arch, 10, 3).expect("architecture");
        let mut params = init_params(&graph, 0).unwrap();
        let plan = StepPlan::new(&graph, false).unwrap();
        let mut opt = Optimizer::new(OptimizerKind::Sgd { momentum: 0.9 }, 0.0);
        let mut rng = Rng::new(1);
        let n = batch * 3 * size * size;
        let labels: Vec<usize> = (0..batch).map(|i| i % 10).collect();
        let weights = vec![1.0; 10];
        let mut times = Vec::new();
        for step in 0..steps + 2 {
            let x = from_vec(
                (0..n).map(|_| rng.normal()).collect(),
                [batch, 3, size, size],
            );
            let t = Instant::now();
            plan.step(
                &mut params,
                &mut opt,
                x,
                &labels,
                &weights,
                0.01,
                step as u64,
            )
            .unwrap();
            if step >= 2 {
                times.push(t.elapsed().as_secs_f64());
            }
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        println!(
            "{arch}: batch {batch} at {size}x{size}: {:.1} ms/step (median of {steps}), {:.0} images/s",
            median * 1e3,
            batch as f64 / median
        );
    }
}
