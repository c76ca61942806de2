//! The default rule of every op equals the derivative: for a random direction `v`, the backward
//! pass's `⟨∇ₓL, v⟩` matches the central difference `(L(x+hv) − L(x−hv)) / 2h` of the forward
//! pass, where `L = ⟨f(x), r⟩` for a random `r`.

use relevance::engine::{Rules, backward, forward};
use relevance::graph::builder::ConvGeom;
use relevance::graph::init::init_params;
use relevance::graph::{Conv2d, Graph, GraphBuilder, NodeId, Op, ParamStore, Pool2d};
use relevance::rng::Rng;
use relevance::tensor::{T4, from_vec, to_vec};

fn random(shape: [usize; 4], rng: &mut Rng) -> T4 {
    from_vec(
        (0..shape.iter().product()).map(|_| rng.normal()).collect(),
        shape,
    )
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum()
}

/// Checks the gradient of `graph` at a random input of `shape`.
fn check(name: &str, graph: &Graph, params: &ParamStore, shape: [usize; 4], seed: u64) {
    let mut rng = Rng::new(seed);
    let x = random(shape, &mut rng);
    check_at(name, graph, params, x, &mut rng);
}

/// Like [`check`] at an input whose values are 0.1 apart, so that the ±h·v steps of the
/// central difference never change which element of a pooling window is the largest.
fn check_separated(name: &str, graph: &Graph, params: &ParamStore, shape: [usize; 4], seed: u64) {
    let mut rng = Rng::new(seed);
    let n: usize = shape.iter().product();
    let mut values: Vec<f32> = (0..n)
        .map(|i| i as f32 * 0.1 - n as f32 * 0.05 + 0.03)
        .collect();
    rng.shuffle(&mut values);
    check_at(name, graph, params, from_vec(values, shape), &mut rng);
}

fn check_at(name: &str, graph: &Graph, params: &ParamStore, x: T4, rng: &mut Rng) {
    let shape = x.dims();
    let acts = forward(graph, params, x.clone()).unwrap();
    let out_dims = acts.get(graph.output).unwrap().dims();
    let r = random(out_dims, rng);
    let grad = backward(
        graph,
        params,
        &acts,
        graph.output,
        r.clone(),
        &Rules::gradient(),
        &[graph.input()],
    )
    .unwrap();
    let v = random(shape, rng).clamp(-1.0, 1.0);
    let analytic = dot(&to_vec(&grad[0]), &to_vec(&v));
    let loss = |t: T4| {
        let y = relevance::engine::predict(graph, params, t).unwrap();
        dot(&to_vec(&y), &to_vec(&r))
    };
    let h = 1e-2f32;
    let numeric = (loss(x.clone().add(v.clone().mul_scalar(h))) - loss(x.sub(v.mul_scalar(h))))
        / (2.0 * h as f64);
    let err = (analytic - numeric).abs() / numeric.abs().max(1e-3);
    assert!(
        err < 2e-2,
        "{name}: analytic {analytic} vs numeric {numeric} (rel err {err})"
    );
}

/// A graph of one op after the input (plus parameters declared by the builder call).
fn single(
    channels: usize,
    make: impl FnOnce(&mut GraphBuilder, NodeId) -> NodeId,
) -> (Graph, ParamStore) {
    let mut b = GraphBuilder::new(channels);
    let x = b.input();
    let y = make(&mut b, x);
    let g = b.finish(y);
    g.validate().unwrap();
    let mut p = init_params(&g, 3).unwrap();
    // Non-trivial BN statistics so the BN rule is exercised beyond the identity.
    for (k, param) in p.iter_mut() {
        if k.ends_with("running_var") || k.ends_with("running_mean") {
            let n = param.shape[0];
            let vals: Vec<f32> = (0..n)
                .map(|i| {
                    if k.ends_with("var") {
                        0.5 + i as f32 * 0.3
                    } else {
                        0.1 * i as f32
                    }
                })
                .collect();
            *param = relevance::graph::Param::from_values(vals, param.shape.clone()).unwrap();
        }
    }
    (g, p)
}

#[test]
fn convolutions_including_strided_grouped_dilated_and_asymmetric() {
    let (g, p) = single(4, |b, x| b.conv("c", x, ConvGeom::new(6, 3).bias(true)));
    check("conv3x3", &g, &p, [2, 4, 7, 6], 1);
    let (g, p) = single(4, |b, x| {
        b.conv("c", x, ConvGeom::new(8, 3).stride(2).groups(2))
    });
    check("conv strided grouped", &g, &p, [1, 4, 9, 8], 2);
    let (g, p) = single(4, |b, x| {
        b.conv("c", x, ConvGeom::new(4, 3).groups(4).stride(2))
    });
    check("depthwise", &g, &p, [1, 4, 8, 8], 3);
    let (mut g, p) = single(3, |b, x| b.conv("c", x, ConvGeom::new(5, 3).stride(2)));
    if let Op::Conv2d(Conv2d {
        padding, dilation, ..
    }) = &mut g.nodes[1].op
    {
        *padding = [0, 1, 2, 1];
        *dilation = [2, 1];
    }
    check(
        "conv asymmetric padding + dilation",
        &g,
        &p,
        [1, 3, 10, 9],
        4,
    );
}

#[test]
fn linear_batchnorm_and_pointwise_nonlinearities() {
    let (g, p) = single(5, |b, x| {
        let f = b.flatten("f", x, 5 * 2 * 3);
        b.linear("l", f, 30, 7, true)
    });
    check("flatten+linear", &g, &p, [3, 5, 2, 3], 5);
    let (g, p) = single(3, |b, x| b.bn("bn", x));
    check("batchnorm", &g, &p, [2, 3, 4, 4], 6);
    for (name, op) in [
        ("relu", Op::Relu),
        ("relu6", Op::Clip { min: 0.0, max: 2.0 }),
        ("silu", Op::Silu),
        ("sigmoid", Op::Sigmoid),
        ("tanh", Op::Tanh),
        ("dropout", Op::Dropout { p: 0.5 }),
        ("softmax", Op::Softmax),
        ("permute", Op::Permute([0, 2, 3, 1])),
        ("reshape", Op::Reshape([2, 6, 4])),
    ] {
        let (g, p) = single(3, |b, x| b.unary(name, op, x));
        // Inputs kept away from the kinks of ReLU and clipping; values scaled into the
        // non-saturated range of the smooth ops.
        check_separated(name, &g, &p, [2, 3, 4, 4], 7);
    }
}

#[test]
fn pooling() {
    let (g, p) = single(2, |b, x| b.maxpool("m", x, Pool2d::square(3, 2, 1)));
    check_separated("maxpool 3/2/1", &g, &p, [2, 2, 9, 8], 8);
    let (g, p) = single(2, |b, x| {
        b.maxpool(
            "m",
            x,
            Pool2d {
                ceil_mode: true,
                ..Pool2d::square(2, 2, 0)
            },
        )
    });
    check_separated("maxpool ceil", &g, &p, [1, 2, 7, 7], 9);
    let (g, p) = single(2, |b, x| {
        b.unary("a", Op::AvgPool2d(Pool2d::square(3, 2, 1)), x)
    });
    check("avgpool", &g, &p, [1, 2, 8, 9], 10);
    let (g, p) = single(2, |b, x| b.adaptive_avgpool("a", x, [1, 1]));
    check("global avgpool", &g, &p, [2, 2, 5, 6], 11);
    let (g, p) = single(2, |b, x| b.adaptive_avgpool("a", x, [3, 2]));
    check("adaptive avgpool 3x2 of 7x5", &g, &p, [1, 2, 7, 5], 12);
    // Upsampling (VGG's 7×7 pool on small inputs): output bins overlap.
    let (g, p) = single(2, |b, x| b.adaptive_avgpool("a", x, [7, 7]));
    check("adaptive avgpool 7x7 of 2x3", &g, &p, [2, 2, 2, 3], 16);
}

#[test]
fn fan_out_and_binary_ops_with_broadcasting() {
    // x feeds both operands, so the two contributions must be summed.
    let (g, p) = single(3, |b, x| {
        let r = b.relu("r", x);
        let s = b.unary("s", Op::Sigmoid, x);
        b.add("add", r, s)
    });
    check("add fan-out", &g, &p, [2, 3, 4, 4], 13);
    // Squeeze-excitation: gate [N, C, 1, 1] times the map.
    let (g, p) = single(3, |b, x| {
        let pooled = b.adaptive_avgpool("pool", x, [1, 1]);
        let gate = b.unary("gate", Op::Sigmoid, pooled);
        b.mul("mul", x, gate)
    });
    check("mul broadcast", &g, &p, [2, 3, 4, 5], 14);
    let (g, p) = single(3, |b, x| {
        let t = b.unary("t", Op::Tanh, x);
        let c = b.conv("c", x, ConvGeom::new(2, 1));
        b.concat("cat", &[t, c, x])
    });
    check("concat", &g, &p, [1, 3, 4, 4], 15);
}

#[test]
fn collecting_an_inner_node_gives_the_gradient_there() {
    // The signal collected at an inner node equals the gradient of the downstream part alone.
    let (g, p) = single(3, |b, x| {
        let c = b.conv("c", x, ConvGeom::new(4, 3));
        let r = b.relu("r", c);
        let f = b.adaptive_avgpool("pool", r, [1, 1]);
        b.unary("t", Op::Tanh, f)
    });
    let mut rng = Rng::new(20);
    let x = random([1, 3, 5, 5], &mut rng);
    let acts = forward(&g, &p, x).unwrap();
    let seed = acts.get(g.output).unwrap().ones_like();
    let at_relu = backward(&g, &p, &acts, g.output, seed, &Rules::gradient(), &[2]).unwrap();
    let y = to_vec(acts.get(4).unwrap());
    let relu_out = acts.get(2).unwrap();
    // d tanh(mean(r)) / dr = (1 − tanh²) / (H·W)
    let expect: Vec<f32> = (0..4)
        .flat_map(|c| vec![(1.0 - y[c] * y[c]) / 25.0; 25])
        .collect();
    assert_eq!(relu_out.dims(), [1, 4, 5, 5]);
    let got = to_vec(&at_relu[0]);
    for (a, b) in got.iter().zip(&expect) {
        assert!((a - b).abs() < 1e-6);
    }
}
