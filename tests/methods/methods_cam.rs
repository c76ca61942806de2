//! The CAM family against pytorch-grad-cam 1.5.7 on torchvision ResNet-18 and VGG-11 with the
//! reference weights (fixtures from `tools/fixtures_methods.py`), plus the properties the
//! family's definitions imply.

use crate::methods_common;

use std::sync::Mutex;

use methods_common::*;
use relevance::engine::{Rule, RuleMap, Rules, forward};
use relevance::graph::{Graph, NodeId};
use relevance::methods::cam::{
    CamWeighting, ClassCam, GradientCam, default_cam_layer, layer_gradients,
    resize::{resize_cv2_linear, upsample_align_corners},
};
use relevance::methods::{Explainer, MethodError, MethodOptions, by_name};
use relevance::tensor::to_vec;

/// Largest allowed difference on the `[0, 1]` maps.
const TOL: f64 = 1e-4;

fn check(name: &str, ours: &[f32], reference: &[f32]) {
    let (abs, rel) = (max_abs(ours, reference), rel_l2(ours, reference));
    println!("{name}: max abs {abs:.2e}, rel L2 {rel:.2e}");
    assert!(
        reference.iter().any(|&v| v > 0.5),
        "{name}: degenerate reference"
    );
    assert!(abs <= TOL, "{name}: max abs {abs} (rel L2 {rel})");
}

const VARIANTS: [(&str, CamWeighting); 5] = [
    ("grad-cam", CamWeighting::GradCam),
    ("grad-cam-plus-plus", CamWeighting::GradCamPlusPlus),
    ("hires-cam", CamWeighting::HiResCam),
    ("xgrad-cam", CamWeighting::XGradCam),
    ("layer-cam", CamWeighting::LayerCam),
];

fn family_against_fixtures(
    prefix: &str,
    arch: &str,
    n: usize,
    h: usize,
    w: usize,
    layers: &[&str],
) {
    let model = reference_model(arch, h, w);
    let x = reference_input(n, 3, h, w);
    let targets = targets(prefix);
    let acts = forward(&model.graph, &model.params, x.clone()).unwrap();
    // The forward pass itself matches torchvision.
    let logits = to_vec(acts.get(model.graph.logits()).unwrap());
    let reference: Vec<f32> = meta()[prefix]["logits"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
        })
        .collect();
    assert!(max_abs(&logits, &reference) < 1e-4, "{prefix} logits");
    for layer in layers {
        for (name, weighting) in VARIANTS {
            let cam = GradientCam::new(weighting, Some(layer.to_string()));
            let ours = to_vec(&cam.explain_forward(&model, &x, &acts, &targets).unwrap());
            let (shape, want) = fixture(&format!("{prefix}.{layer}.{name}"));
            assert_eq!(shape, vec![n, h, w]);
            check(&format!("{prefix} {layer} {name}"), &ours, &want);
        }
        let eigen = by_name(
            "eigen-cam",
            &MethodOptions {
                layer: Some(layer.to_string()),
                ..Default::default()
            },
        )
        .unwrap();
        let ours = to_vec(&eigen.explain_forward(&model, &x, &acts, &targets).unwrap());
        check(
            &format!("{prefix} {layer} eigen-cam"),
            &ours,
            &fixture(&format!("{prefix}.{layer}.eigen-cam")).1,
        );
    }
}

#[test]
fn resnet18_cams_match_pytorch_grad_cam() {
    family_against_fixtures("resnet18", "resnet18", 2, 64, 96, &["layer4.1", "layer3.1"]);
}

#[test]
fn vgg11_cams_match_pytorch_grad_cam() {
    family_against_fixtures("vgg11", "vgg11", 1, 72, 88, &["features.20", "features.19"]);
}

#[test]
fn score_cam_matches_pytorch_grad_cam() {
    let model = reference_model("resnet18", 64, 96);
    let x = reference_input(2, 3, 64, 96);
    let opts = MethodOptions {
        layer: Some("layer1.1".into()),
        batch: 64,
        ..Default::default()
    };
    let score = by_name("score-cam", &opts).unwrap();
    let ours = to_vec(&score.explain(&model, &x, &targets("resnet18")).unwrap());
    check(
        "resnet18 layer1.1 score-cam",
        &ours,
        &fixture("resnet18.layer1.1.score-cam").1,
    );
}

#[test]
fn class_cam_matches_the_formula_and_equals_grad_cam_on_a_gap_linear_head() {
    let model = reference_model("resnet18", 64, 96);
    let x = reference_input(2, 3, 64, 96);
    let t = targets("resnet18");
    let cam = to_vec(&ClassCam::new(None).explain(&model, &x, &t).unwrap());
    check("resnet18 cam", &cam, &fixture("resnet18.layer4.1.cam").1);
    // With GAP + linear, ∂logit/∂A = W[t]/(h·w) everywhere: Grad-CAM's weights are CAM's / (h·w),
    // and the min-max scaling removes the factor. The two sum in different orders (CAM: W[t]·A;
    // Grad-CAM: a mean over h·w of the gradient, then the weighted sum), so they agree to
    // rounding: about 1e-5 on this [0, 1] map, with or without Winograd convolutions.
    let grad_cam = to_vec(
        &GradientCam::new(CamWeighting::GradCam, None)
            .explain(&model, &x, &t)
            .unwrap(),
    );
    let gap = max_abs(&cam, &grad_cam);
    eprintln!("cam vs grad-cam max abs {gap:.2e}");
    assert!(gap < 3e-5);
    // VGG's head is not GAP + linear.
    let vgg = reference_model("vgg11", 32, 32);
    let err = ClassCam::new(None)
        .explain(&vgg, &reference_input(1, 3, 32, 32), &[0])
        .unwrap_err();
    assert!(err.to_string().contains("global average pooling"), "{err}");
}

#[test]
fn default_layer_is_the_last_spatial_block() {
    for (arch, expect) in [
        ("resnet18", "layer4.1"),
        ("vgg11", "features.20"),
        ("small_cnn", "features.14"),
    ] {
        let model = reference_model(arch, 64, 64);
        let acts = forward(&model.graph, &model.params, reference_input(1, 3, 64, 64)).unwrap();
        let id = default_cam_layer(&model.graph, &acts).unwrap();
        assert_eq!(model.graph.nodes[id].name, expect, "{arch}");
    }
}

#[test]
fn bad_layers_and_methods_give_clear_errors() {
    let model = reference_model("resnet18", 64, 64);
    let x = reference_input(1, 3, 64, 64);
    let cam = GradientCam::new(CamWeighting::GradCam, Some("layer9".into()));
    let err = cam.explain(&model, &x, &[0]).unwrap_err().to_string();
    assert!(
        err.contains("no node named 'layer9'") && err.contains("layer4.1"),
        "{err}"
    );
    let cam = GradientCam::new(CamWeighting::GradCam, Some("avgpool".into()));
    let err = cam.explain(&model, &x, &[0]).unwrap_err().to_string();
    assert!(
        err.contains("no spatial dimensions") && err.contains("'layer4.1'"),
        "{err}"
    );
    let err = by_name("gradcam", &MethodOptions::default()).err().unwrap();
    assert!(matches!(err, MethodError::UnknownMethod { .. }));
    assert!(
        err.to_string().contains("grad-cam, grad-cam-plus-plus"),
        "{err}"
    );
    let err = cam.explain(&model, &x, &[10]).unwrap_err().to_string();
    assert!(err.contains("class") || err.contains("spatial"), "{err}");
    let ok = GradientCam::new(CamWeighting::GradCam, None);
    let err = ok.explain(&model, &x, &[10]).unwrap_err().to_string();
    assert!(err.contains("target class 10 does not exist"), "{err}");
}

/// Records which nodes the backward pass asks a rule for.
struct Recording {
    inner: Rules,
    seen: Mutex<Vec<NodeId>>,
}

impl RuleMap for Recording {
    fn rule(&self, graph: &Graph, id: NodeId) -> &dyn Rule {
        self.seen.lock().unwrap().push(id);
        self.inner.rule(graph, id)
    }
}

#[test]
fn grad_cam_backward_visits_nothing_below_the_layer() {
    let model = reference_model("resnet18", 64, 64);
    let acts = forward(&model.graph, &model.params, reference_input(1, 3, 64, 64)).unwrap();
    let layer = model.graph.find("layer4.0").unwrap();
    let rec = Recording {
        inner: Rules::gradient(),
        seen: Mutex::new(Vec::new()),
    };
    layer_gradients(&model, &acts, &[1], layer, &rec).unwrap();
    let seen = rec.seen.lock().unwrap().clone();
    let names: Vec<&str> = seen
        .iter()
        .map(|&i| model.graph.nodes[i].name.as_str())
        .collect();
    assert!(!seen.is_empty());
    // Every visited node comes after the layer (in topological order) …
    assert!(seen.iter().all(|&i| i > layer), "{names:?}");
    // … and the visited set is exactly what lies between the logits and layer4.0.
    assert!(
        names.contains(&"fc") && names.contains(&"layer4.1.conv1"),
        "{names:?}"
    );
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("layer3") || *n == "layer4.0"),
        "{names:?}"
    );
}

#[test]
fn resizing_matches_cv2_and_torch() {
    for (src, dst) in [
        ((3, 4), (64, 96)),
        ((4, 5), (72, 88)),
        ((7, 7), (50, 33)),
        ((5, 6), (5, 6)),
    ] {
        let (_, s) = fixture(&format!("resize.src.{}x{}", src.0, src.1));
        let tag = format!("{}x{}-{}x{}", src.0, src.1, dst.0, dst.1);
        let (_, want) = fixture(&format!("resize.cv2.{tag}"));
        let ours = resize_cv2_linear(&s, src.0, src.1, dst.0, dst.1);
        assert!(
            max_abs(&ours, &want) < 1e-6,
            "cv2 {tag}: {}",
            max_abs(&ours, &want)
        );
        let (_, want) = fixture(&format!("resize.align.{tag}"));
        let ours = upsample_align_corners(&s, src.0, src.1, dst.0, dst.1);
        assert!(
            max_abs(&ours, &want) < 1e-6,
            "align {tag}: {}",
            max_abs(&ours, &want)
        );
    }
}
