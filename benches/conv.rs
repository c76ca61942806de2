//! Per-layer timings of our convolution kernels (`relevance::engine::kernels`) beside burn's on
//! the convolution shapes of VGG-16 and ResNet-50 at 224×224: forward and input adjoint, by
//! im2col + GEMM and by the kernels' own choice (Winograd F(4×4) or F(2×2) for eligible 3×3
//! layers, column `wino`), with the GFLOP/s each reaches (direct-convolution FLOPs over time, so
//! Winograd's figure is an effective rate), and our weight gradient (training's third
//! convolution per layer).
//! Run: `RAYON_NUM_THREADS=2 cargo bench --bench conv [-- --batch 1]` (`ONLY=text` keeps the layers
//! whose name contains `text`); `-- --train` takes the
//! ResNet-18 shapes of a training batch of 32 at 64×64 instead.

use std::time::Instant;

use burn::tensor::module::conv2d as burn_conv2d;
use relevance::engine::forward::conv_options;
use relevance::engine::kernels;
use relevance::engine::kernels::conv::{self, ConvGeometry};
use relevance::engine::kernels::winograd::{self, Tile};
use relevance::graph::Conv2d;
use relevance::rng::Rng;
use relevance::tensor::{T4, from_vec, max_rel_diff, to_vec};

/// (name, C_in, C_out, kernel, stride, padding, input size)
const LAYERS: &[(&str, usize, usize, usize, usize, usize, usize)] = &[
    ("vgg conv1_2", 64, 64, 3, 1, 1, 224),
    ("vgg conv2_2", 128, 128, 3, 1, 1, 112),
    ("vgg conv3_2", 256, 256, 3, 1, 1, 56),
    ("vgg conv4_2", 512, 512, 3, 1, 1, 28),
    ("vgg conv5_2", 512, 512, 3, 1, 1, 14),
    ("resnet conv1 7x7/2", 3, 64, 7, 2, 3, 224),
    ("resnet l1 1x1 256>64", 256, 64, 1, 1, 0, 56),
    ("resnet l1 3x3 64", 64, 64, 3, 1, 1, 56),
    ("resnet l2 3x3/2 128", 128, 128, 3, 2, 1, 56),
    ("resnet l3 3x3/2 256", 256, 256, 3, 2, 1, 28),
    ("resnet l4 3x3/2 512", 512, 512, 3, 2, 1, 14),
    ("resnet l3 3x3 256", 256, 256, 3, 1, 1, 14),
    ("resnet l4 3x3 512", 512, 512, 3, 1, 1, 7),
    ("resnet l4 1x1 512>2048", 512, 2048, 1, 1, 0, 7),
];

/// ResNet-18's convolutions on a 64×64 training input (the shapes of `examples/bench_train.rs`).
const TRAIN_LAYERS: &[(&str, usize, usize, usize, usize, usize, usize)] = &[
    ("r18 conv1 7x7/2", 3, 64, 7, 2, 3, 64),
    ("r18 l1 3x3 64", 64, 64, 3, 1, 1, 16),
    ("r18 l2 3x3/2 64>128", 64, 128, 3, 2, 1, 16),
    ("r18 l2 3x3 128", 128, 128, 3, 1, 1, 8),
    ("r18 l2 down 1x1/2", 64, 128, 1, 2, 0, 16),
    ("r18 l3 3x3 256", 256, 256, 3, 1, 1, 4),
    ("r18 l4 3x3 512", 512, 512, 3, 1, 1, 2),
];

fn median_ms(mut f: impl FnMut()) -> f64 {
    f();
    let mut t: Vec<f64> = (0..7)
        .map(|_| {
            let t0 = Instant::now();
            f();
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[3]
}

fn random(shape: [usize; 4], rng: &mut Rng) -> T4 {
    from_vec(
        (0..shape.iter().product()).map(|_| rng.normal()).collect(),
        shape,
    )
}

fn main() {
    relevance::alloc::keep_freed_memory();
    let train = std::env::args().any(|a| a == "--train");
    let batch: usize = std::env::args()
        .skip_while(|a| a != "--batch")
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(if train { 32 } else { 1 });
    let layers = if train { TRAIN_LAYERS } else { LAYERS };
    let only = std::env::var("ONLY").unwrap_or_default();
    let layers: Vec<_> = layers
        .iter()
        .filter(|l| l.0.contains(only.as_str()))
        .collect();
    let mut rng = Rng::new(7);
    println!(
        "{:<24} {:>4} {:>9} {:>9} {:>9} {:>9} {:>7} {:>9} {:>9} {:>9} {:>9} {:>7} {:>9} {:>7}  (ms per batch of {batch}; GFLOP/s ours)",
        "layer",
        "wino",
        "fwd burn",
        "fwd i2c",
        "fwd dir",
        "fwd ours",
        "GF/s",
        "adj burn",
        "adj i2c",
        "adj dir",
        "adj ours",
        "GF/s",
        "wgrad",
        "GF/s"
    );
    for &(name, ci, co, k, s, p, size) in layers {
        let c = Conv2d {
            weight: String::new(),
            bias: None,
            stride: [s, s],
            padding: [p; 4],
            dilation: [1, 1],
            groups: 1,
        };
        let x = random([batch, ci, size, size], &mut rng);
        let w = random([co, ci, k, k], &mut rng);
        let b = from_vec((0..co).map(|_| rng.normal()).collect(), [co]);
        let ours = kernels::conv2d(x.clone(), w.clone(), Some(b.clone()), &c);
        let theirs = burn_conv2d(x.clone(), w.clone(), Some(b.clone()), conv_options(&c));
        let err = max_rel_diff(&to_vec(&ours), &to_vec(&theirs));
        assert!(err < 1e-4, "{name}: forward differs from burn by {err}");
        let [_, _, oh, ow] = ours.dims();
        let flops = 2.0 * (batch * co * oh * ow * ci * k * k) as f64;
        let fb = median_ms(|| {
            burn_conv2d(x.clone(), w.clone(), Some(b.clone()), conv_options(&c));
        });
        let forward = || {
            kernels::conv2d(x.clone(), w.clone(), Some(b.clone()), &c);
        };
        kernels::set_winograd_scope(kernels::WinogradScope::Off);
        kernels::set_direct(false);
        let fi = median_ms(forward);
        kernels::set_direct(true);
        let fd = median_ms(forward);
        kernels::set_winograd_scope(kernels::WinogradScope::Everywhere);
        let fo = median_ms(forward);
        let g = random([batch, co, oh, ow], &mut rng);
        let adj = kernels::conv2d_input_adjoint(g.clone(), w.clone(), &c, [size, size]);
        let adj_burn = kernels::burn_input_adjoint(g.clone(), w.clone(), &c, [size, size]);
        let err = max_rel_diff(&to_vec(&adj), &to_vec(&adj_burn));
        assert!(err < 1e-4, "{name}: adjoint differs from burn by {err}");
        let ab = median_ms(|| {
            kernels::burn_input_adjoint(g.clone(), w.clone(), &c, [size, size]);
        });
        let adjoint = || {
            kernels::conv2d_input_adjoint(g.clone(), w.clone(), &c, [size, size]);
        };
        kernels::set_winograd_scope(kernels::WinogradScope::Off);
        kernels::set_direct(false);
        let ai = median_ms(adjoint);
        kernels::set_direct(true);
        let ad = median_ms(adjoint);
        kernels::set_winograd_scope(kernels::WinogradScope::Everywhere);
        let ao = median_ms(adjoint);
        let geometry = ConvGeometry {
            batch,
            c_in: ci,
            in_hw: [size, size],
            c_out: co,
            kernel: [k, k],
            out_hw: [oh, ow],
            stride: [s, s],
            dilation: [1, 1],
            pad_before: [p, p],
        };
        let variant = match winograd::choose(&geometry) {
            Some(Tile::Four) => "F4",
            Some(Tile::Two) => "F2",
            None => "-",
        };
        let (xv, gv) = (to_vec(&x), to_vec(&g));
        let wo = median_ms(|| {
            conv::conv2d_weight_gradient(&xv, &gv, &geometry);
        });
        println!(
            "{name:<24} {variant:>4} {fb:9.2} {fi:9.2} {fd:9.2} {fo:9.2} {:7.1} {ab:9.2} {ai:9.2} {ad:9.2} {ao:9.2} {:7.1} {wo:9.2} {:7.1}",
            flops / fo / 1e6,
            flops / ao / 1e6,
            flops / wo / 1e6
        );
    }
}
