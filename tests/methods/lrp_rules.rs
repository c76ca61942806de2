//! Each LRP rule against an independent loop implementation of its formula (zennit 1.0.0's
//! definitions, and 0.4.6's classic Gamma; see `relevance::methods::lrp::rules`) on a dense layer and on a padded, strided
//! convolution written out as a matrix; the skip-connection rules against their closed forms;
//! and batched signals (many rows over a one-row forward pass) against separate passes.

use crate::lrp_common;

use std::sync::Arc;

use lrp_common::{max_rel, tiny_resnet, tiny_vgg};
use relevance::engine::{Rules, backward, forward};
use relevance::graph::builder::ConvGeom;
use relevance::graph::{Graph, GraphBuilder, Op, ParamStore};
use relevance::methods::lrp::rules::{LinearLrp, LinearRule};
use relevance::methods::lrp::skip::SkipRule;
use relevance::methods::lrp::{Composite, LrpModel, LrpOptions, SkipMode};
use relevance::rng::Rng;
use relevance::tensor::{T4, from_vec, to_vec};

fn stab(z: f64) -> f64 {
    if z >= 0.0 { z + 1e-6 } else { z - 1e-6 }
}

fn stab_eps(z: f64, eps: f64) -> f64 {
    if z >= 0.0 { z + eps } else { z - eps }
}

/// A linear map written out: `z_j = Σ_i m[j][i] x_i + b_j`, with `structure[j][i]` true where
/// input `i` is in output `j`'s receptive field (Flat counts those, even where the weight is 0).
struct Dense {
    m: Vec<Vec<f64>>,
    structure: Vec<Vec<bool>>,
    b: Vec<f64>,
}

impl Dense {
    fn z(&self, x: &[f64], w: impl Fn(f64) -> f64, b: impl Fn(f64) -> f64) -> Vec<f64> {
        self.m
            .iter()
            .zip(&self.b)
            .map(|(row, &bj)| row.iter().zip(x).map(|(&m, &xi)| w(m) * xi).sum::<f64>() + b(bj))
            .collect()
    }
    /// `Σ_j in_mod(x_i) · w(m_ji) · s_j`.
    fn back(&self, x: &[f64], s: &[f64], w: impl Fn(f64) -> f64) -> Vec<f64> {
        (0..x.len())
            .map(|i| (0..s.len()).map(|j| w(self.m[j][i]) * s[j]).sum::<f64>() * x[i])
            .collect()
    }

    /// The rule's input relevance by its formula.
    fn reference(&self, rule: &LinearRule, x: &[f64], r: &[f64]) -> Vec<f64> {
        let pos = |v: f64| v.max(0.0);
        let neg = |v: f64| v.min(0.0);
        let id = |v: f64| v;
        let zero = |_: f64| 0.0;
        let xp: Vec<f64> = x.iter().map(|&v| pos(v)).collect();
        let xn: Vec<f64> = x.iter().map(|&v| neg(v)).collect();
        let div =
            |z: Vec<f64>| -> Vec<f64> { z.iter().zip(r).map(|(&z, &r)| r / stab(z)).collect() };
        let add = |a: Vec<f64>, b: Vec<f64>| -> Vec<f64> {
            a.iter().zip(&b).map(|(x, y)| x + y).collect()
        };
        let half = |p: &dyn Fn(f64) -> f64, n: &dyn Fn(f64) -> f64, pb: &dyn Fn(f64) -> f64| {
            let z = add(self.z(&xp, p, pb), self.z(&xn, n, zero));
            let s = div(z);
            add(self.back(&xp, &s, p), self.back(&xn, &s, n))
        };
        match rule {
            LinearRule::Epsilon { epsilon } => {
                let s: Vec<f64> = self
                    .z(x, id, id)
                    .iter()
                    .zip(r)
                    .map(|(&z, &r)| r / stab_eps(z, *epsilon as f64))
                    .collect();
                self.back(x, &s, id)
            }
            LinearRule::ZPlus => half(&pos, &neg, &pos),
            LinearRule::AlphaBeta { alpha, beta } => {
                let p = half(&pos, &neg, &pos);
                let n = half(&neg, &pos, &neg);
                p.iter()
                    .zip(&n)
                    .map(|(p, n)| *alpha as f64 * p - *beta as f64 * n)
                    .collect()
            }
            LinearRule::Gamma { gamma } => {
                // zennit 1.0's five passes: outputs split by the sign of z = W x + b.
                let g = *gamma as f64;
                let up = move |v: f64| v + g * v.max(0.0);
                let down = move |v: f64| v + g * v.min(0.0);
                let z = self.z(x, id, id);
                let masked = |keep: fn(f64) -> bool| -> Vec<f64> {
                    z.iter()
                        .zip(r)
                        .map(|(&z, &r)| if keep(z) { r } else { 0.0 })
                        .collect()
                };
                let (r_up, r_down) = (masked(|z| z > 0.0), masked(|z| z < 0.0));
                let signed = |rr: &[f64], p: &dyn Fn(f64) -> f64, n: &dyn Fn(f64) -> f64| {
                    let zz = add(self.z(&xp, p, p), self.z(&xn, n, zero));
                    let s: Vec<f64> = zz.iter().zip(rr).map(|(&z, &r)| r / stab(z)).collect();
                    add(self.back(&xp, &s, p), self.back(&xn, &s, n))
                };
                add(signed(&r_up, &up, &down), signed(&r_down, &down, &up))
            }
            LinearRule::GammaClassic { gamma } => {
                let g = *gamma as f64;
                let boost = move |v: f64| v + g * v.max(0.0);
                let s = div(self.z(x, boost, boost));
                self.back(x, &s, boost)
            }
            LinearRule::Flat => {
                let ones = vec![1.0; x.len()];
                let z: Vec<f64> = self
                    .structure
                    .iter()
                    .map(|row| row.iter().filter(|&&s| s).count() as f64)
                    .collect();
                let s = div(z);
                (0..x.len())
                    .map(|i| {
                        (0..s.len())
                            .filter(|&j| self.structure[j][i])
                            .map(|j| s[j])
                            .sum::<f64>()
                            * ones[i]
                    })
                    .collect()
            }
            LinearRule::WSquare => {
                let ones = vec![1.0; x.len()];
                let s = div(self.z(&ones, |v| v * v, |v| v * v));
                self.back(&ones, &s, |v| v * v)
            }
            LinearRule::ZBox { low, high } => {
                // One bound per input element here (the test layers have one input channel
                // per bound entry or a single value).
                let l = vec![low[0] as f64; x.len()];
                let h = vec![high[0] as f64; x.len()];
                let z = self.z(x, id, id);
                let zl = self.z(&l, pos, pos);
                let zh = self.z(&h, neg, neg);
                let den: Vec<f64> = (0..z.len()).map(|j| z[j] - (zl[j] + zh[j])).collect();
                let s = div(den);
                let own = self.back(x, &s, id);
                let bl = self.back(&l, &s, pos);
                let bh = self.back(&h, &s, neg);
                (0..x.len()).map(|i| own[i] - (bl[i] + bh[i])).collect()
            }
        }
    }
}

fn all_rules() -> Vec<LinearRule> {
    vec![
        LinearRule::Epsilon { epsilon: 1e-6 },
        LinearRule::Epsilon { epsilon: 0.25 },
        LinearRule::ZPlus,
        LinearRule::AlphaBeta {
            alpha: 2.0,
            beta: 1.0,
        },
        LinearRule::Gamma { gamma: 0.25 },
        LinearRule::GammaClassic { gamma: 0.25 },
        LinearRule::Flat,
        LinearRule::WSquare,
        LinearRule::ZBox {
            low: vec![-1.5],
            high: vec![2.0],
        },
    ]
}

/// Our rule on node 1 of a one-layer graph, relevance `r` at its output.
fn ours(graph: &Graph, params: &ParamStore, rule: LinearRule, x: T4, r: T4) -> Vec<f32> {
    let acts = forward(graph, params, x).unwrap();
    let mut rules = Rules::gradient();
    let bound = LinearLrp::new(rule, &graph.nodes[1].op, params, 1).unwrap();
    rules.set(1, Arc::new(bound));
    let out = backward(graph, params, &acts, 1, r, &rules, &[0]).unwrap();
    to_vec(&out[0])
}

fn random_values(n: usize, rng: &mut Rng) -> Vec<f32> {
    (0..n).map(|_| rng.normal()).collect()
}

#[test]
fn dense_layer_rules_match_their_formulas() {
    let mut b = GraphBuilder::new(5);
    let y = b.linear("fc", 0, 5, 4, true);
    let graph = b.finish(y);
    let mut rng = Rng::new(3);
    let w = random_values(20, &mut rng);
    let bias = random_values(4, &mut rng);
    let mut params = ParamStore::new();
    params
        .insert_values("fc.weight", w.clone(), vec![4, 5])
        .unwrap();
    params
        .insert_values("fc.bias", bias.clone(), vec![4])
        .unwrap();
    let dense = Dense {
        m: (0..4)
            .map(|j| (0..5).map(|i| w[j * 5 + i] as f64).collect())
            .collect(),
        structure: vec![vec![true; 5]; 4],
        b: bias.iter().map(|&v| v as f64).collect(),
    };
    let x = random_values(5, &mut rng);
    let r = random_values(4, &mut rng);
    for rule in all_rules() {
        let got = ours(
            &graph,
            &params,
            rule.clone(),
            from_vec(x.clone(), [1, 5, 1, 1]),
            from_vec(r.clone(), [1, 4, 1, 1]),
        );
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let r64: Vec<f64> = r.iter().map(|&v| v as f64).collect();
        let want: Vec<f32> = dense
            .reference(&rule, &x64, &r64)
            .iter()
            .map(|&v| v as f32)
            .collect();
        let err = max_rel(&got, &want);
        assert!(err < 1e-5, "{}: {got:?} vs {want:?} ({err:e})", rule.name());
    }
}

#[test]
fn convolution_rules_match_their_formulas() {
    // 2 → 3 channels, 3×3 kernel, stride 2, padding 1 on a 5×6 input: border outputs see fewer
    // inputs, which the Flat and bound terms must count.
    let (cin, cout, h, w, k, s, p) = (2usize, 3usize, 5usize, 6usize, 3usize, 2usize, 1usize);
    let mut b = GraphBuilder::new(cin);
    let y = b.conv(
        "conv",
        0,
        ConvGeom::new(cout, k).stride(s).padding(p).bias(true),
    );
    let graph = b.finish(y);
    let (oh, ow) = ((h + 2 * p - k) / s + 1, (w + 2 * p - k) / s + 1);
    let mut rng = Rng::new(9);
    let wv = random_values(cout * cin * k * k, &mut rng);
    let bias = random_values(cout, &mut rng);
    let mut params = ParamStore::new();
    params
        .insert_values("conv.weight", wv.clone(), vec![cout, cin, k, k])
        .unwrap();
    params
        .insert_values("conv.bias", bias.clone(), vec![cout])
        .unwrap();
    let (n_in, n_out) = (cin * h * w, cout * oh * ow);
    let mut m = vec![vec![0.0f64; n_in]; n_out];
    let mut structure = vec![vec![false; n_in]; n_out];
    let mut bvec = vec![0.0f64; n_out];
    for o in 0..cout {
        for y in 0..oh {
            for x in 0..ow {
                let j = (o * oh + y) * ow + x;
                bvec[j] = bias[o] as f64;
                for c in 0..cin {
                    for ky in 0..k {
                        for kx in 0..k {
                            let iy = (y * s + ky) as isize - p as isize;
                            let ix = (x * s + kx) as isize - p as isize;
                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                continue;
                            }
                            let i = (c * h + iy as usize) * w + ix as usize;
                            m[j][i] = wv[((o * cin + c) * k + ky) * k + kx] as f64;
                            structure[j][i] = true;
                        }
                    }
                }
            }
        }
    }
    let dense = Dense {
        m,
        structure,
        b: bvec,
    };
    // Inputs of both signs (the a⁻ terms matter) and, second, all non-negative (the fast path).
    for nonneg in [false, true] {
        let mut x = random_values(n_in, &mut rng);
        if nonneg {
            x.iter_mut().for_each(|v| *v = v.abs());
        }
        let r = random_values(n_out, &mut rng);
        for rule in all_rules() {
            let got = ours(
                &graph,
                &params,
                rule.clone(),
                from_vec(x.clone(), [1, cin, h, w]),
                from_vec(r.clone(), [1, cout, oh, ow]),
            );
            let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
            let r64: Vec<f64> = r.iter().map(|&v| v as f64).collect();
            let want: Vec<f32> = dense
                .reference(&rule, &x64, &r64)
                .iter()
                .map(|&v| v as f32)
                .collect();
            let err = max_rel(&got, &want);
            assert!(
                err < 1e-5,
                "{} (non-negative input: {nonneg}): {err:e}",
                rule.name()
            );
        }
    }
}

#[test]
fn alpha_beta_rejects_parameters_zennit_rejects() {
    let mut b = GraphBuilder::new(2);
    let y = b.linear("fc", 0, 2, 2, false);
    let graph = b.finish(y);
    let mut params = ParamStore::new();
    params
        .insert_values("fc.weight", vec![1.0; 4], vec![2, 2])
        .unwrap();
    let op = &graph.nodes[1].op;
    for (alpha, beta) in [(2.0, 2.0), (-1.0, -2.0), (1.5, 0.0)] {
        assert!(LinearLrp::new(LinearRule::AlphaBeta { alpha, beta }, op, &params, 1).is_err());
    }
    assert!(
        LinearLrp::new(
            LinearRule::AlphaBeta {
                alpha: 1.0,
                beta: 0.0
            },
            op,
            &params,
            1
        )
        .is_ok()
    );
}

#[test]
fn skip_rules_share_relevance_as_documented() {
    // h_m = [2, -3, 0, 1e-3], h_s = [1, 1, 0, -1e-3]; R = [1, 2, 4, 1].
    let mut b = GraphBuilder::new(1);
    let main = b.unary("main", Op::Identity, 0);
    let cst = b.push("short", Op::Constant("c".into()), vec![], 1);
    let sum = b.add("sum", main, cst);
    let graph = b.finish(sum);
    // The constant operand is only a convenient way to give the sum a second computed-looking
    // input of known value; the rule reads both operands from the forward pass.
    let mut params = ParamStore::new();
    params
        .insert_values("c", vec![1.0, 1.0, 0.0, -1e-3], vec![1, 1, 1, 4])
        .unwrap();
    let x = from_vec(vec![2.0, -3.0, 0.0, 1e-3], [1, 1, 1, 4]);
    let r = from_vec(vec![1.0, 2.0, 4.0, 1.0], [1, 1, 1, 4]);
    let acts = forward(&graph, &params, x).unwrap();
    let run = |mode: SkipMode| {
        let mut rules = Rules::gradient();
        rules.set(sum, Arc::new(SkipRule { mode }));
        let out = backward(&graph, &params, &acts, sum, r.clone(), &rules, &[main, cst]).unwrap();
        (to_vec(&out[0]), to_vec(&out[1]))
    };
    let close = |a: &[f32], b: &[f64]| a.iter().zip(b).all(|(x, y)| (*x as f64 - y).abs() < 1e-5);
    let (m, s) = run(SkipMode::Split);
    // |2|/3, |−3|/4, both zero → ½, |1e-3|/2e-3 = ½.
    assert!(
        close(&m, &[2.0 / 3.0, 2.0 * 0.75, 2.0, 0.5]),
        "split main {m:?}"
    );
    assert!(
        close(&s, &[1.0 / 3.0, 2.0 * 0.25, 2.0, 0.5]),
        "split shortcut {s:?}"
    );
    let (m, s) = run(SkipMode::Symmetric);
    assert!(close(&m, &[0.5, 1.0, 2.0, 0.5]) && close(&s, &[0.5, 1.0, 2.0, 0.5]));
    let (m, s) = run(SkipMode::Zennit);
    // h_i R / stabilize(h_m + h_s): sums 3, −2, 0 (→ +1e-6), 0 (→ +1e-6).
    let z = [3.0 + 1e-6, -2.0 - 1e-6, 1e-6, 1e-6];
    let want_m: Vec<f64> = [2.0, -3.0, 0.0, 1e-3]
        .iter()
        .zip([1.0, 2.0, 4.0, 1.0])
        .zip(z)
        .map(|((h, r), z)| h * r / z)
        .collect();
    let want_s: Vec<f64> = [1.0, 1.0, 0.0, -1e-3]
        .iter()
        .zip([1.0, 2.0, 4.0, 1.0])
        .zip(z)
        .map(|((h, r), z)| h * r / z)
        .collect();
    assert!(
        max_rel(&m, &want_m.iter().map(|&v| v as f32).collect::<Vec<_>>()) < 1e-4,
        "{m:?} vs {want_m:?}"
    );
    assert!(
        max_rel(&s, &want_s.iter().map(|&v| v as f32).collect::<Vec<_>>()) < 1e-4,
        "{s:?} vs {want_s:?}"
    );
}

#[test]
fn many_rows_over_one_forward_row_equal_separate_passes() {
    // CRP runs K masked relevances of one image at once: K rows of signal over a one-row forward
    // pass. Each row must equal the pass with that row alone.
    for (name, model) in [("tiny_vgg", tiny_vgg()), ("tiny_resnet", tiny_resnet())] {
        for skip in [SkipMode::Zennit, SkipMode::Split] {
            let options = LrpOptions {
                skip,
                ..LrpOptions::default()
            };
            let lrp = LrpModel::new(&model, Composite::epsilon_gamma_box(), &options).unwrap();
            let mut rng = Rng::new(4);
            let x = from_vec(random_values(3 * 16 * 16, &mut rng), [1, 3, 16, 16]);
            let acts = lrp.forward(x).unwrap();
            let k = 3;
            let seeds = from_vec(random_values(k * 5, &mut rng), [k, 5, 1, 1]);
            let input = lrp.canon.graph.input();
            let batched = lrp
                .propagate(&acts, lrp.logits_node(), seeds.clone(), &[input])
                .unwrap()
                .remove(0);
            assert_eq!(batched.dims(), [k, 3, 16, 16]);
            let batched = to_vec(&batched);
            for row in 0..k {
                let one = seeds.clone().narrow(0, row, 1);
                let single = lrp
                    .propagate(&acts, lrp.logits_node(), one, &[input])
                    .unwrap()
                    .remove(0);
                let per = 3 * 16 * 16;
                let err = max_rel(&batched[row * per..(row + 1) * per], &to_vec(&single));
                assert!(err < 1e-6, "{name} {skip} row {row}: {err:e}");
            }
        }
    }
}

#[test]
fn attribute_keeping_only_what_the_rules_read_equals_the_full_forward_pass() {
    // `LrpModel::attribute` runs a forward pass that keeps only the values its rules read (a
    // convolution read only by a ReLU under the pass rule is not even written). Every composite
    // and skip mode must give, bit for bit, the relevance of a pass over every activation.
    use relevance::engine::backward::needed_values;
    let bits = |t: &T4| to_vec(t).iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    let mut left_out = 0;
    for (name, model) in [("tiny_vgg", tiny_vgg()), ("tiny_resnet", tiny_resnet())] {
        for composite in Composite::presets() {
            for skip in [SkipMode::Zennit, SkipMode::Split] {
                let options = LrpOptions {
                    skip,
                    ..LrpOptions::default()
                };
                let lrp = LrpModel::new(&model, composite.clone(), &options).unwrap();
                let mut rng = Rng::new(11);
                let x = from_vec(random_values(2 * 3 * 16 * 16, &mut rng), [2, 3, 16, 16]);
                let lean = lrp.attribute(&x, &[1, 3]).unwrap();
                let full = lrp
                    .attribute_with(&lrp.forward(x.clone()).unwrap(), &[1, 3])
                    .unwrap();
                assert_eq!(
                    bits(&lean.input),
                    bits(&full.input),
                    "{name} {composite} {skip}"
                );
                assert_eq!(lean.logits, full.logits, "{name} {composite} {skip}");
                let graph = &lrp.canon.graph;
                let needed = needed_values(graph, lrp.rules(), &[]);
                left_out += graph
                    .nodes
                    .iter()
                    .zip(&needed)
                    .filter(|(node, needed)| matches!(node.op, Op::Conv2d(_)) && !**needed)
                    .count();
            }
        }
    }
    // z⁺, α-β and γ on convolutions read no convolution output: the lean pass was taken.
    assert!(left_out > 0, "no convolution output was left out");
}
