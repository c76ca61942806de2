//! Batches that fit the device (`src/methods/fit.rs`) on a real adapter: a batch whose largest
//! activation exceeds the largest buffer the device binds is split and gives the CPU's
//! numbers; an allocation that still fails is retried at half the rows on a device that stays
//! usable.

use std::cell::RefCell;
use std::path::PathBuf;

use relevance::device::{DeviceKind, buffer_limit, catch_out_of_memory, is_cpu, use_device};
use relevance::engine::forward::predict;
use relevance::graph::builder::ConvGeom;
use relevance::graph::{GraphBuilder, Model, ParamStore};
use relevance::methods::MethodError;
use relevance::methods::fit::{RowBytes, in_batches_that_fit, largest_row_bytes, rows_that_fit};
use relevance::metrics::ScoreKind;
use relevance::metrics::scorer::{ModelScorer, Scorer};
use relevance::tensor::{T4, device, from_vec, to_vec};
use relevance::{MethodOptions, MethodSpec};

use super::parity::{assert_same, card, gpu_tests_requested, on_cpu_and_gpu, pattern};

/// Channels of [`wide`]'s only convolution: its output, `WIDTH × side²` floats per row, is the
/// largest activation, cheap to compute (a 1×1 convolution of 3 channels).
const WIDTH: usize = 64;

/// conv 1×1 (3 → [`WIDTH`]) → ReLU → global average pool → linear (→ 2), with fixed weights, on
/// the run's device.
fn wide(side: usize) -> Model {
    let mut b = GraphBuilder::new(3);
    let x = b.input();
    let x = b.conv("conv", x, ConvGeom::new(WIDTH, 1));
    let x = b.relu("relu", x);
    let x = b.adaptive_avgpool("pool", x, [1, 1]);
    let x = b.flatten("flatten", x, WIDTH);
    let x = b.linear("fc", x, WIDTH, 2, true);
    let graph = b.finish(x);
    let values = |n: usize, phase: f32| (0..n).map(|i| (i as f32 * 0.37 + phase).sin()).collect();
    let mut params = ParamStore::new();
    for (key, shape) in [
        ("conv.weight", vec![WIDTH, 3, 1, 1]),
        ("conv.bias", vec![WIDTH]),
        ("fc.weight", vec![2, WIDTH]),
        ("fc.bias", vec![2]),
    ] {
        let n = shape.iter().product();
        params
            .insert_values(key, values(n, key.len() as f32), shape)
            .expect("parameter");
    }
    Model {
        graph,
        params,
        card: card(side, 2),
        source: PathBuf::new(),
    }
}

/// The GPU's buffer limit, read with the GPU as the run's device.
fn gpu_buffer_limit() -> u64 {
    let _guard = super::common::lock();
    use_device(DeviceKind::Gpu).expect("the GPU");
    let limit = buffer_limit();
    use_device(DeviceKind::Cpu).expect("the CPU");
    limit.expect("a GPU device has a buffer limit")
}

#[test]
fn a_batch_whose_largest_activation_exceeds_the_binding_limit_is_split_and_equals_the_cpu() {
    if !gpu_tests_requested() {
        return;
    }
    let limit = gpu_buffer_limit();
    // The smallest side (a multiple of 8) at which 3 rows of the conv output exceed the limit.
    let n = 3;
    let per_row = |side: usize| (WIDTH * side * side * 4) as u64;
    let side = (8..)
        .step_by(8)
        .find(|&s| per_row(s) * n as u64 > limit)
        .unwrap();
    eprintln!(
        "buffer limit {limit} B; side {side}: {} B per row, {} B for {n} rows",
        per_row(side),
        per_row(side) * n as u64
    );
    let results = on_cpu_and_gpu(|| {
        let model = wide(side);
        let x = pattern(n, side);
        // The hand-computed largest activation: the conv (and ReLU) output.
        assert_eq!(largest_row_bytes(&model, &x).unwrap(), per_row(side));
        if !is_cpu(&device()) {
            assert!(
                rows_that_fit(limit, per_row(side)) < n,
                "the case must not fit"
            );
            // Unsplit, the batch does not fit: the premise of the test.
            let unsplit = catch_out_of_memory(DeviceKind::Gpu, "unsplit", || {
                to_vec(&predict(&model.graph, &model.params, x.clone()).unwrap())
            });
            let err = unsplit.expect_err("the whole batch exceeds the buffer limit");
            eprintln!("unsplit: {err}");
        }
        let mut out = Vec::new();
        for text in ["saliency"] {
            let method = MethodSpec::parse(text, &MethodOptions::default())
                .unwrap()
                .prepare(&model)
                .unwrap();
            let explanation = method.explain(&x, &[0, 1, 0]).unwrap();
            let explained = from_vec(explanation.explained.clone(), [n, 1, 1, 1]);
            out.push((format!("{text} map"), explanation.maps));
            out.push((format!("{text} explained"), explained));
        }
        let scorer = ModelScorer::new(&model, ScoreKind::Logit)
            .unwrap()
            .with_batch_size(n);
        let scores = scorer.scores(x.clone()).unwrap();
        out.push(("scores".into(), from_vec(scores.values, [n, 2, 1, 1])));
        out
    });
    if let Some(results) = results {
        assert_same(results);
    }
}

#[test]
fn an_allocation_that_still_fails_is_retried_at_half_the_rows() {
    if !gpu_tests_requested() {
        return;
    }
    let _guard = super::common::lock();
    use_device(DeviceKind::Gpu).expect("the GPU");
    let limit = buffer_limit().expect("a buffer limit");
    let model = wide(8);
    let x = pattern(4, 8);
    // Each row of the work allocates 0.4 of the limit: 4 rows (and 3) do not fit, 2 do. The
    // model's own activations are tiny, so only the retry can find this.
    let floats_per_row = (limit as usize / 4) * 2 / 5;
    let passes = RefCell::new(Vec::new());
    let outcome = catch_out_of_memory(DeviceKind::Gpu, "", || {
        in_batches_that_fit(&model, &RowBytes::default(), &x, 0, "test", |rows, sub| {
            assert_eq!(sub.dims()[0], rows.len());
            let big = T4::ones([rows.len(), floats_per_row, 1, 1], &device());
            // The last value of each row: reading it needs the whole buffer. (Not a mean:
            // cubecl's reduction of these 27 M values gives 0.0049 on lavapipe, not 1.)
            let last = to_vec(&big.narrow(1, floats_per_row - 1, 1));
            passes.borrow_mut().push(rows);
            Ok::<Vec<f32>, MethodError>(last)
        })
    });
    use_device(DeviceKind::Cpu).expect("the CPU");
    let values = outcome
        .expect("retried at fewer rows")
        .expect("no method error");
    assert_eq!(*passes.borrow(), vec![0..2, 2..4], "two passes of 2 rows");
    assert_eq!(values, vec![vec![1.0, 1.0], vec![1.0, 1.0]]);
}

/// `bench` times the batch asked for (its forward row is not split): a batch the device cannot
/// hold is the one-line out-of-memory error naming `--batch`, because each timed run reads one
/// value of its result back (a device sync alone reports no failed kernel).
#[test]
fn bench_reports_a_batch_the_device_cannot_hold_instead_of_timing_it() {
    if !gpu_tests_requested() {
        return;
    }
    let limit = gpu_buffer_limit();
    // small_cnn's largest activation: 16 channels at full resolution.
    let side = 256;
    let batch = (limit / (16 * side * side * 4) as u64 + 1).to_string();
    let _guard = super::common::lock();
    let argv = [
        "bench",
        "--device",
        "gpu",
        "--arch",
        "small_cnn",
        "--size",
        "256",
        "--classes",
        "10",
        "--batch",
        &batch,
        "--workload",
        "forward",
        "--repeat",
        "1",
        "--warmup",
        "0",
    ]
    .map(String::from);
    let result = relevance::cli::run_embedded(&argv);
    use_device(DeviceKind::Cpu).expect("the CPU");
    let text = result
        .expect_err("the batch exceeds the buffer limit")
        .to_string();
    eprintln!("{text}");
    assert!(text.contains("out of device memory"), "{text}");
    assert!(
        text.ends_with(&format!("lower --batch (now {batch})")),
        "{text}"
    );
}
