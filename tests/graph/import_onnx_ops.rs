//! ONNX operators on activations beyond the architectures' blocks: `Resize` / `Upsample`,
//! element-wise unary ops, binary ops between two activations, `Expand`, `Where` / `Equal` on
//! constants and general transposes. Small torch modules exported by torch.onnx at opsets 13
//! and 17 (`tools/fixtures_onnx_modern.py`); relevance's logits and input gradient are
//! compared with torch's forward pass and autograd, every method runs, the LRP rule of each
//! new node is the documented one and conserves relevance where that rule does.

use relevance::engine::forward;
use relevance::engine::imported::resize_matrix;
use relevance::graph::{CoordinateMode, Model, NearestRounding, Op, Resize, ResizeMode, Unary};
use relevance::methods::lrp::{Composite, LrpModel, LrpOptions};
use relevance::tensor::to_vec;

use crate::onnx_fixtures::{FixtureDir, count_ops};

/// The logit whose input gradient the fixtures hold.
const TARGET: usize = 3;

const FIXTURES: FixtureDir = FixtureDir("modern");

/// Loads `name`, asserting its logits and input gradient of logit [`TARGET`] against torch's.
fn load_with_torch_parity(name: &str) -> Model {
    let model = FIXTURES.load(name);
    FIXTURES.assert_reference_parity(name, &model, TARGET);
    model
}

fn assert_every_method_runs(name: &str, model: &Model) {
    FIXTURES.assert_every_method_runs(name, model, TARGET);
}

/// Under every composite, the rule of each node of kind `kind` is `rule`, and when
/// `conserves` each such node passes on the relevance it receives (relative to the explained
/// logit, within 1e-5).
fn assert_lrp_rule(name: &str, model: &Model, kind: &str, rule: &str, conserves: bool) {
    let x = FIXTURES.input(name);
    for composite in Composite::PRESETS {
        let lrp = LrpModel::new(
            model,
            Composite::preset(composite).unwrap(),
            &LrpOptions::default(),
        )
        .unwrap();
        let graph = &lrp.canon.graph;
        let ids: Vec<usize> = (0..graph.nodes.len())
            .filter(|&id| graph.nodes[id].op.kind() == kind)
            .collect();
        assert!(!ids.is_empty(), "{name}: no {kind} node");
        for &id in &ids {
            let node = &graph.nodes[id].name;
            let given = lrp.assignment.iter().find(|(n, _)| n == node).unwrap();
            assert_eq!(given.1, rule, "{name} {composite}: {node}");
        }
        if !conserves {
            continue;
        }
        let acts = forward(graph, &lrp.canon.params, x.clone()).unwrap();
        let (seed, explained) = lrp.start_relevance(&acts, &[TARGET]).unwrap();
        for &id in &ids {
            // One pass per node: a node's input may itself be one of `ids`.
            let collect = [id, graph.nodes[id].inputs[0]];
            let r = lrp
                .propagate(&acts, lrp.logits_node(), seed.clone(), &collect)
                .unwrap();
            let out: f32 = to_vec(&r[0]).iter().sum();
            let inp: f32 = to_vec(&r[1]).iter().sum();
            let err = (out - inp).abs() / explained[0].abs();
            assert!(
                err < 1e-5,
                "{name} {composite}: '{}' receives {out} and passes on {inp}",
                graph.nodes[id].name
            );
        }
    }
}

#[test]
fn resize_nearest_and_linear_in_every_coordinate_mode_match_torch() {
    for name in ["resize.13", "resize.17"] {
        let m = load_with_torch_parity(name);
        let resizes: Vec<&Resize> = m
            .graph
            .nodes
            .iter()
            .filter_map(|n| match &n.op {
                Op::Resize(r) => Some(r),
                _ => None,
            })
            .collect();
        let floor = ResizeMode::Nearest(NearestRounding::Floor);
        let summary: Vec<_> = resizes
            .iter()
            .map(|r| (r.mode, r.coordinates, r.size))
            .collect();
        assert_eq!(
            summary,
            vec![
                (floor, CoordinateMode::Asymmetric, [12, 12]),
                (ResizeMode::Linear, CoordinateMode::HalfPixel, [6, 6]),
                (ResizeMode::Linear, CoordinateMode::HalfPixel, [12, 12]),
                (ResizeMode::Linear, CoordinateMode::AlignCorners, [9, 7]),
                (floor, CoordinateMode::Asymmetric, [5, 4]),
            ],
            "{name}"
        );
        assert_lrp_rule(name, &m, "resize", "norm", true);
        assert_every_method_runs(name, &m);
    }
}

#[test]
fn upsample_of_opset_9_is_a_nearest_resize() {
    let name = "upsample.9";
    let m = load_with_torch_parity(name);
    assert_eq!(count_ops(&m, "resize"), 1);
    assert_lrp_rule(name, &m, "resize", "norm", true);
    assert_every_method_runs(name, &m);
}

/// `resize_matrix` row by row against ONNX's formulas worked by hand.
#[test]
fn resize_matrices_follow_the_onnx_coordinate_formulas() {
    let resize = |mode, coordinates| Resize {
        mode,
        coordinates,
        size: [0, 0],
        scale: [0.0, 0.0],
    };
    let rows = |m: Vec<f32>, input: usize| -> Vec<Vec<f32>> {
        m.chunks(input).map(<[f32]>::to_vec).collect()
    };
    // Linear, half_pixel, 4 → 2 (scale ½): x = (i + ½)·2 − ½ = 0.5, 2.5.
    let r = resize(ResizeMode::Linear, CoordinateMode::HalfPixel);
    assert_eq!(
        rows(resize_matrix(4, 2, 0.5, &r), 4),
        vec![vec![0.5, 0.5, 0.0, 0.0], vec![0.0, 0.0, 0.5, 0.5]]
    );
    // Linear, half_pixel, 2 → 4 (scale 2): x = −0.25 (clamped to 0), 0.25, 0.75, 1.25 (→ 1).
    assert_eq!(
        rows(resize_matrix(2, 4, 2.0, &r), 2),
        vec![
            vec![1.0, 0.0],
            vec![0.75, 0.25],
            vec![0.25, 0.75],
            vec![0.0, 1.0]
        ]
    );
    // pytorch_half_pixel to one pixel maps it to 0; half_pixel to (0 + ½)·3 − ½ = 1.
    let one = |c| resize_matrix(3, 1, 1.0 / 3.0, &resize(ResizeMode::Linear, c));
    assert_eq!(one(CoordinateMode::PytorchHalfPixel), vec![1.0, 0.0, 0.0]);
    assert_eq!(one(CoordinateMode::HalfPixel), vec![0.0, 1.0, 0.0]);
    // align_corners, 3 → 5: x = i·2/4 = 0, 0.5, 1, 1.5, 2.
    let r = resize(ResizeMode::Linear, CoordinateMode::AlignCorners);
    assert_eq!(
        rows(resize_matrix(3, 5, 5.0 / 3.0, &r), 3),
        vec![
            vec![1.0, 0.0, 0.0],
            vec![0.5, 0.5, 0.0],
            vec![0.0, 1.0, 0.0],
            vec![0.0, 0.5, 0.5],
            vec![0.0, 0.0, 1.0]
        ]
    );
    // Nearest, half_pixel, 2 → 4: x = −0.25, 0.25, 0.75, 1.25; each rounding picks
    // (round_prefer_floor) 0, 0, 1, 1; (ceil) 0, 1, 1, 2 → clamped to 1.
    let pick = |rounding| -> Vec<usize> {
        let r = resize(ResizeMode::Nearest(rounding), CoordinateMode::HalfPixel);
        rows(resize_matrix(2, 4, 2.0, &r), 2)
            .iter()
            .map(|row| row.iter().position(|&v| v == 1.0).unwrap())
            .collect()
    };
    assert_eq!(pick(NearestRounding::RoundPreferFloor), vec![0, 0, 1, 1]);
    assert_eq!(pick(NearestRounding::Ceil), vec![0, 1, 1, 1]);
    assert_eq!(pick(NearestRounding::Floor), vec![0, 0, 0, 1]);
    // Ties: asymmetric 1 → … x = i/2 = 0.5 at i = 1 of 2 → 4 rounds down or up.
    let tie = |rounding| {
        let r = resize(ResizeMode::Nearest(rounding), CoordinateMode::Asymmetric);
        resize_matrix(2, 4, 2.0, &r)[2..4].to_vec()
    };
    assert_eq!(tie(NearestRounding::RoundPreferFloor), vec![1.0, 0.0]);
    assert_eq!(tie(NearestRounding::RoundPreferCeil), vec![0.0, 1.0]);
}

/// The rule `LrpModel` gives each node of kind `kind` under `composite`.
fn rules_of(model: &Model, composite: &str, kind: &str) -> Vec<String> {
    let lrp = LrpModel::new(
        model,
        Composite::preset(composite).unwrap(),
        &LrpOptions::default(),
    )
    .unwrap();
    let graph = &lrp.canon.graph;
    lrp.assignment
        .iter()
        .filter(|(node, _)| graph.nodes[graph.find(node).unwrap()].op.kind() == kind)
        .map(|(_, rule)| rule.clone())
        .collect()
}

#[test]
fn neg_abs_sqrt_pow_reciprocal_and_exp_of_activations_match_torch_and_pass_relevance() {
    for name in ["unary.13", "unary.17"] {
        let m = load_with_torch_parity(name);
        let has = |f: Unary| m.graph.nodes.iter().any(|n| n.op == Op::Unary(f));
        for f in [
            Unary::Neg,
            Unary::Abs,
            Unary::Sqrt,
            Unary::Pow(2.0),
            Unary::Pow(1.5),
            Unary::Reciprocal,
            Unary::Exp,
        ] {
            assert!(has(f), "{name}: no {f:?} node");
        }
        for kind in ["neg", "abs", "sqrt", "pow", "reciprocal", "exp"] {
            assert_lrp_rule(name, &m, kind, "pass", false);
        }
        // The product with a sigmoid gate keeps the gradient (squeeze-excitation treatment).
        let muls = rules_of(&m, "epsilon-plus", "mul");
        assert!(muls.iter().all(|r| r == "gradient"), "{name}: {muls:?}");
        assert_every_method_runs(name, &m);
    }
}

#[test]
fn sub_mul_div_and_add_of_two_activations_match_torch_and_conserve_relevance() {
    for name in ["binary.13", "binary.17"] {
        let m = load_with_torch_parity(name);
        // a − b, m − mean_C(c) as sums with a negation; a·c and q·tanh(…) as products; two
        // quotients.
        assert_eq!(count_ops(&m, "div"), 2, "{name}");
        assert_eq!(count_ops(&m, "neg"), 2, "{name}");
        assert_eq!(count_ops(&m, "mul"), 2, "{name}");
        assert_eq!(rules_of(&m, "epsilon-plus", "div"), vec!["numerator"; 2]);
        assert_eq!(
            rules_of(&m, "epsilon-plus", "mul"),
            vec!["uniform-split"; 2]
        );
        assert_eq!(rules_of(&m, "epsilon-plus", "neg"), vec!["pass"; 2]);
        // Every rule on the way conserves (bias-free convolutions and linear layer, ε-rule on
        // the sums' terms, uniform split, numerator, Norm on the means): the relevance at the
        // input adds up to the explained logit.
        let x = FIXTURES.input(name);
        for composite in ["epsilon-plus", "epsilon-plus-flat"] {
            let lrp = LrpModel::new(
                &m,
                Composite::preset(composite).unwrap(),
                &LrpOptions::default(),
            )
            .unwrap();
            let a = lrp.attribute(&x, &[TARGET]).unwrap();
            let total: f32 = to_vec(&a.input).iter().sum();
            let logit = a.explained[0];
            let err = (total - logit).abs() / logit.abs();
            println!("{name} {composite}: Σ R = {total}, logit {logit}, error {err:.1e}");
            assert!(err < 1e-3, "{name} {composite}: Σ R = {total} for {logit}");
        }
        assert_every_method_runs(name, &m);
    }
}

#[test]
fn expand_of_activations_sums_back_and_where_equal_on_constants_fold() {
    for name in ["expand.13", "expand.17"] {
        let m = load_with_torch_parity(name);
        assert_eq!(count_ops(&m, "expand"), 2, "{name}");
        // Equal and Where on the constant mask leave no node behind: the mask is one
        // constant multiplying the channel mean.
        assert_eq!(count_ops(&m, "constant"), 1, "{name}");
        assert_lrp_rule(name, &m, "expand", "gradient", true);
        assert_every_method_runs(name, &m);
    }
}

#[test]
fn transposes_that_keep_the_batch_first_become_permutes() {
    for name in ["transpose.13", "transpose.17"] {
        let m = load_with_torch_parity(name);
        let perms: Vec<[usize; 4]> = m
            .graph
            .nodes
            .iter()
            .filter_map(|n| match n.op {
                Op::Permute(p) => Some(p),
                _ => None,
            })
            .collect();
        // H and W swapped before c2; the two later transposes compose to the swap back
        // (executed only where c3 needs the plain order).
        assert_eq!(perms, vec![[0, 1, 3, 2], [0, 1, 3, 2]], "{name}");
        assert_lrp_rule(name, &m, "permute", "gradient", false);
        assert_every_method_runs(name, &m);
    }
}

#[test]
fn where_on_a_tensor_and_a_transpose_of_the_batch_are_refused_by_name() {
    let err = |name: &str| FIXTURES.refusal(name);
    let e = err("where_tensor");
    assert!(
        e.contains("node 'mask_where' (Where)") && e.contains("only of constants"),
        "{e}"
    );
    let e = err("transpose_batch");
    assert!(
        e.contains("node 'batch_swap' (Transpose)") && e.contains("perm [1, 0, 2, 3]"),
        "{e}"
    );
}
