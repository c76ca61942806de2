//! CPU against GPU on the zoo's models: logits, gradients, Grad-CAM, LRP composites under every
//! skip mode, CRP conditions, and a short training run.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::path::PathBuf;

use relevance::device::{DeviceKind, is_cpu, use_device};
use relevance::methods::crp::conditional::conditional_relevance;
use relevance::methods::lrp::{Composite, LrpModel, LrpOptions};
use relevance::tensor::{device, from_vec, max_abs_diff, to_vec};
use relevance::{MethodOptions, MethodSpec, Model, ModelCard, T4};

/// Largest difference allowed, as a fraction of the largest CPU magnitude.
const RELATIVE: f32 = 1e-4;
/// Smallest cosine similarity allowed between the CPU and GPU values.
const COSINE: f64 = 0.99999;

/// Whether the GPU tests were asked for; says why not where they were not.
pub(crate) fn gpu_tests_requested() -> bool {
    let requested = std::env::var("RELEVANCE_GPU_TESTS").is_ok_and(|v| v == "1");
    if !requested {
        eprintln!(
            "skipped: GPU parity runs with RELEVANCE_GPU_TESTS=1 and a Vulkan/Metal driver \
             (.ci/run installs Mesa's lavapipe and sets it)"
        );
    }
    requested
}

/// Named outputs of one run, read back to the host.
pub(crate) type Outputs = Vec<(String, Vec<f32>)>;

/// `run()` once on the CPU and once on the GPU (each making its model and input on the run's
/// device), every tensor it returns checked to live where it ran and read back to the host.
/// `None` where the GPU tests were not requested; a panic where they were and no GPU opens.
pub(crate) fn on_cpu_and_gpu(run: impl Fn() -> Vec<(String, T4)>) -> Option<[Outputs; 2]> {
    if !gpu_tests_requested() {
        return None;
    }
    let _guard = super::common::lock();
    let read = |kind: DeviceKind| {
        let outputs = run();
        outputs
            .into_iter()
            .map(|(name, t)| {
                assert_eq!(
                    is_cpu(&t.device()),
                    kind == DeviceKind::Cpu,
                    "{name} computed on {:?} during the {kind} run",
                    t.device()
                );
                (name, to_vec(&t))
            })
            .collect::<Vec<_>>()
    };
    use_device(DeviceKind::Cpu).expect("the CPU");
    let cpu = read(DeviceKind::Cpu);
    if let Err(e) = use_device(DeviceKind::Gpu) {
        use_device(DeviceKind::Cpu).expect("the CPU");
        panic!("RELEVANCE_GPU_TESTS=1 but the GPU device does not open: {e}");
    }
    let gpu = catch_unwind(AssertUnwindSafe(|| read(DeviceKind::Gpu)));
    use_device(DeviceKind::Cpu).expect("the CPU");
    Some([cpu, gpu.unwrap_or_else(|p| resume_unwind(p))])
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let norm = |v: &[f32]| v.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b)).max(f64::MIN_POSITIVE)
}

/// Every output agrees within [`RELATIVE`] of its largest CPU magnitude and [`COSINE`].
pub(crate) fn assert_same(results: [Outputs; 2]) {
    let [cpu, gpu] = results;
    assert_eq!(cpu.len(), gpu.len());
    for ((name, c), (_, g)) in cpu.iter().zip(&gpu) {
        assert_eq!(c.len(), g.len(), "{name}: lengths");
        let scale = c.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        assert!(scale > 0.0, "{name}: all zero on the CPU, nothing compared");
        let diff = max_abs_diff(c, g);
        let cos = cosine(c, g);
        eprintln!(
            "{name}: max |cpu − gpu| = {diff:.3e} ({:.3e} of max {scale:.3e}), cosine {cos:.7}",
            diff / scale
        );
        assert!(
            diff <= RELATIVE * scale,
            "{name}: max diff {diff} > {RELATIVE} × {scale}"
        );
        assert!(cos >= COSINE, "{name}: cosine {cos} < {COSINE}");
    }
}

pub(crate) fn card(side: usize, classes: usize) -> ModelCard {
    ModelCard {
        num_classes: classes,
        input_size: [side, side],
        ..ModelCard::default()
    }
}

/// A smooth deterministic batch `[n, 3, side, side]` on the run's device, different per row.
pub(crate) fn pattern(n: usize, side: usize) -> T4 {
    let values = (0..n * 3 * side * side)
        .map(|i| {
            let (x, y, row) = (i % side, i / side % side, i / (3 * side * side));
            ((x as f32 * 0.21 + row as f32).sin() + (y as f32 * 0.17).cos()) * 0.8
        })
        .collect();
    from_vec(values, [n, 3, side, side])
}

#[test]
fn zoo_logits_agree() {
    let results = on_cpu_and_gpu(|| {
        // VGG is left out: run here after the other models, cubecl could not place VGG-11's
        // first dense weight (25088 × 4096, 411 MB) on lavapipe ("can't allocate buffer of
        // size: 411041792"), though `relevance bench --device gpu --arch vgg11` alone runs.
        ["small_cnn", "resnet18", "efficientnet_b0", "mobilenet_v2"]
            .into_iter()
            .map(|arch| {
                let side = if arch == "small_cnn" { 32 } else { 64 };
                let model = Model::init(arch, card(side, 10), 3).expect("zoo model");
                let logits = relevance::engine::forward::predict(
                    &model.graph,
                    &model.params,
                    pattern(2, side),
                )
                .expect("forward");
                (format!("{arch} logits"), logits)
            })
            .collect()
    });
    if let Some(results) = results {
        assert_same(results);
    }
}

/// Maps of `methods` on a model of `arch`, two images, targets 1 and 3.
pub(crate) fn maps(arch: &str, methods: &[&str]) -> Vec<(String, T4)> {
    let model = Model::init(arch, card(64, 10), 5).expect("zoo model");
    let x = pattern(2, 64);
    methods
        .iter()
        .flat_map(|text| {
            let method = MethodSpec::parse(text, &MethodOptions::default())
                .expect("spec")
                .prepare(&model)
                .expect("prepare");
            let explanation = method.explain(&x, &[1, 3]).expect("explain");
            let explained = from_vec(explanation.explained.clone(), [2, 1, 1, 1]);
            [
                (format!("{arch} {text} map"), explanation.maps),
                (format!("{arch} {text} explained"), explained),
            ]
        })
        .collect()
}

#[test]
fn gradients_and_cams_agree() {
    if let Some(results) = on_cpu_and_gpu(|| {
        maps(
            "resnet18",
            &[
                "saliency",
                "grad-cam",
                "guided-backprop",
                "integrated-gradients(steps=4)",
            ],
        )
    }) {
        assert_same(results);
    }
}

#[test]
fn lrp_composites_agree_under_every_skip_mode() {
    let mut methods = Vec::new();
    for composite in ["epsilon-plus-flat", "epsilon-gamma-box"] {
        for skip in ["zennit", "split", "symmetric"] {
            methods.push(format!("lrp:{composite}(skip={skip})"));
        }
    }
    let methods: Vec<&str> = methods.iter().map(String::as_str).collect();
    if let Some(results) = on_cpu_and_gpu(|| {
        let mut out = maps("resnet18", &methods);
        // A plain chain with max pooling and a dense head, VGG's shape (see zoo_logits_agree).
        out.extend(maps(
            "small_cnn",
            &["lrp:epsilon-plus-flat", "lrp:epsilon-gamma-box"],
        ));
        out
    }) {
        assert_same(results);
    }
}

#[test]
fn crp_conditions_agree() {
    if let Some(results) = on_cpu_and_gpu(|| {
        let model = Model::init("resnet18", card(64, 10), 7).expect("zoo model");
        let lrp = LrpModel::new(
            &model,
            Composite::epsilon_plus_flat(),
            &LrpOptions::default(),
        )
        .expect("lrp model");
        let layer = lrp.find("layer3.0.conv2").expect("layer");
        let sets = vec![vec![0], vec![1, 2], vec![5], vec![7, 8, 9]];
        let x = pattern(1, 64);
        let result = conditional_relevance(&lrp, &x, 2, layer, &sets, 2).expect("crp");
        vec![
            ("crp layer relevance".to_string(), result.layer_relevance),
            (
                "crp conditional input relevance".to_string(),
                result.input_relevance,
            ),
        ]
    }) {
        assert_same(results);
    }
}

/// Training on the GPU (burn's autodiff there, our optimisers) reaches the CPU's accuracy band
/// on the toy task of tests/data_train/train_loop.rs.
#[test]
fn training_reaches_the_same_accuracy_band() {
    use relevance::data::augment::AugmentSpec;
    use relevance::data::batch::BatchLoader;
    use relevance::data::folder::SplitSource;
    use relevance::data::split::SplitFractions;
    use relevance::train::trainer::RunOptions;
    use relevance::train::{OptimizerKind, Schedule, TrainConfig, TrainData, Verbosity};

    if !gpu_tests_requested() {
        return;
    }
    let train = |kind: DeviceKind| {
        let _guard = super::common::lock();
        use_device(kind).expect("device");
        let c = toy::card();
        let data = TrainData {
            classes: vec!["left".into(), "right".into()],
            train: BatchLoader::new(toy::images(96, 1), &c, AugmentSpec::default()),
            val: BatchLoader::new(toy::images(32, 2), &c, AugmentSpec::default()),
            test: BatchLoader::new(toy::images(32, 3), &c, AugmentSpec::default()),
            split: SplitSource::Stratified {
                seed: 0,
                fractions: SplitFractions::default(),
            },
            card: c,
            source: PathBuf::from("memory"),
        };
        let cfg = TrainConfig {
            arch: "small_cnn".into(),
            epochs: 4,
            batch_size: 16,
            optimizer: OptimizerKind::adam(),
            lr: 3e-3,
            schedule: Schedule::Cosine,
            ..TrainConfig::default()
        };
        let out =
            std::env::temp_dir().join(format!("relevance-gpu-train-{kind}-{}", std::process::id()));
        let opts = RunOptions {
            seed: 0,
            out: &out,
            resume: false,
            pretrained: None,
            verbosity: Verbosity::Quiet,
            stop_after_epochs: None,
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            relevance::train::train_model(&data, &cfg, &opts)
        }));
        let on_device = device();
        use_device(DeviceKind::Cpu).expect("the CPU");
        let _ = std::fs::remove_dir_all(&out);
        let outcome = outcome
            .unwrap_or_else(|p| resume_unwind(p))
            .expect("training");
        assert_eq!(is_cpu(&on_device), kind == DeviceKind::Cpu);
        let h = &outcome.record.history;
        (
            outcome.record.metrics["test"].accuracy,
            h[0].train_loss,
            h[h.len() - 1].train_loss,
        )
    };
    let (cpu, cpu_first, cpu_last) = train(DeviceKind::Cpu);
    let (gpu, gpu_first, gpu_last) = train(DeviceKind::Gpu);
    eprintln!(
        "test accuracy cpu {cpu:.3} gpu {gpu:.3}; loss cpu {cpu_first:.3}→{cpu_last:.3}, \
         gpu {gpu_first:.3}→{gpu_last:.3}"
    );
    assert!(cpu >= 0.8 && gpu >= 0.8, "accuracy cpu {cpu}, gpu {gpu}");
    assert!((cpu - gpu).abs() <= 0.1, "accuracy cpu {cpu}, gpu {gpu}");
    assert!(
        gpu_last < 0.7 * gpu_first,
        "gpu loss {gpu_first} → {gpu_last}"
    );
}

/// The toy task of tests/data_train/train_loop.rs: a bright square left (class 0) or right.
mod toy {
    use relevance::data::batch::Source;
    use relevance::data::image::Image;
    use relevance::graph::card::ResizeMode;
    use relevance::graph::{ModelCard, Normalization};
    use relevance::rng::Rng;

    const SIZE: usize = 12;

    pub fn images(n: usize, seed: u64) -> Source {
        let mut rng = Rng::new(seed);
        let mut images = Vec::new();
        let mut labels = Vec::new();
        for i in 0..n {
            let label = i % 2;
            let x0 = if label == 0 { 1 } else { SIZE / 2 + 1 } + rng.below(SIZE / 2 - 4);
            let y0 = 1 + rng.below(SIZE - 5);
            let pixels = (0..SIZE * SIZE)
                .map(|p| {
                    let (x, y) = (p % SIZE, p / SIZE);
                    let on = (x0..x0 + 3).contains(&x) && (y0..y0 + 3).contains(&y);
                    let noise = rng.uniform() * 60.0;
                    (if on { 180.0 } else { 30.0 } + noise) as u8
                })
                .collect();
            images.push(Image {
                width: SIZE,
                height: SIZE,
                channels: 1,
                pixels,
            });
            labels.push(label);
        }
        Source::Memory { images, labels }
    }

    pub fn card() -> ModelCard {
        ModelCard {
            input_size: [SIZE, SIZE],
            channels: 1,
            normalization: Normalization::MeanStd {
                mean: vec![0.3],
                std: vec![0.3],
            },
            resize: ResizeMode::Stretch,
            ..ModelCard::default()
        }
    }
}

/// A device allocation that can never fit (a 6 GiB tensor: above the largest storage buffer a
/// Vulkan device binds, whose range is a 32-bit count) is
/// reported as `OutOfMemory` carrying the advice the CLI gives (the batch flag to lower), not
/// as a panic; and work that fits runs through the same guard unchanged.
#[test]
fn running_out_of_device_memory_is_an_error_naming_the_batch() {
    use relevance::device::{OutOfMemory, catch_out_of_memory};

    if !gpu_tests_requested() {
        return;
    }
    let _guard = super::common::lock();
    use_device(DeviceKind::Gpu).expect("the GPU");
    let advice = "lower --batch (now 4096)";
    let too_big = catch_out_of_memory(DeviceKind::Gpu, advice, || {
        let huge = T4::ones([4096, 64, 96, 64], &device()); // 6 GiB of f32
        to_vec(&huge.sum())[0]
    });
    let fits = catch_out_of_memory(DeviceKind::Gpu, advice, || {
        to_vec(&T4::ones([2, 3, 4, 5], &device()).sum())[0]
    });
    use_device(DeviceKind::Cpu).expect("the CPU");
    let err: OutOfMemory = too_big.expect_err("a 6 GiB buffer");
    let text = err.to_string();
    eprintln!("{text}");
    assert!(text.ends_with("lower --batch (now 4096)"), "{text}");
    assert!(
        text.starts_with("--device gpu: out of device memory"),
        "{text}"
    );
    assert!(!text.contains('\n'), "one line: {text}");
    assert_eq!(fits.expect("a small tensor"), 120.0);
}
