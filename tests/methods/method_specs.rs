//! Method specs, the registry and prepared methods: names with parameters parse into the options
//! the method runs with, aliases keep today's names and files, and a prepared method computes
//! exactly what the method's own implementation computes (LRP against `LrpModel` bound by hand,
//! CAMs against the explainer with the layer named by hand).

use crate::lrp_common::{tiny_resnet, tiny_vgg};
use crate::methods_common::reference_input;
use relevance::methods::lrp::{
    Composite, LinearRule, LrpModel, LrpOptions, SkipMode, StartRelevance,
};
use relevance::methods::pass::{forward_all, logits};
use relevance::methods::registry::{self, METHODS};
use relevance::methods::{MapKind, MethodOptions, MethodSpec, by_name};
use relevance::tensor::to_vec;

fn parse(text: &str) -> MethodSpec {
    MethodSpec::parse(text, &MethodOptions::default()).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn parse_err(text: &str) -> String {
    match MethodSpec::parse(text, &MethodOptions::default()) {
        Ok(_) => panic!("{text} should be refused"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn aliases_keep_the_old_names_labels_and_file_names() {
    let spec = parse("lrp-epsilon-plus-flat");
    assert_eq!(spec.info.name, "lrp:epsilon-plus-flat");
    assert_eq!(spec.label(), "lrp-epsilon-plus-flat");
    assert_eq!(spec.file_key(), "lrp-epsilon-plus-flat");
    assert_eq!(
        spec.options.composite.as_ref().map(Composite::name),
        Some("epsilon-plus-flat")
    );
    let spec = parse("grad-cam");
    assert_eq!(
        (spec.label(), spec.file_key()),
        ("grad-cam".into(), "grad-cam".into())
    );
}

#[test]
fn parameters_override_the_base_options() {
    let base = MethodOptions {
        lrp: LrpOptions {
            skip: SkipMode::Zennit,
            ..LrpOptions::default()
        },
        steps: 50,
        ..MethodOptions::default()
    };
    let spec = MethodSpec::parse(
        " lrp:epsilon-plus-flat( skip=split, start=probability ,epsilon=0.5 ) ",
        &base,
    )
    .unwrap();
    assert_eq!(spec.options.lrp.skip, SkipMode::Split);
    assert_eq!(spec.options.lrp.start, StartRelevance::Probability);
    let composite = spec.options.composite.clone().unwrap();
    assert_eq!(composite.dense, LinearRule::Epsilon { epsilon: 0.5 });
    assert_eq!(
        composite.conv,
        LinearRule::ZPlus,
        "ε is the dense layers' parameter"
    );
    assert_eq!(
        spec.label(),
        "lrp:epsilon-plus-flat(skip=split,start=probability,epsilon=0.5)"
    );
    assert_eq!(
        spec.file_key(),
        "lrp-epsilon-plus-flat.skip-split.start-probability.epsilon-0.5"
    );
    let ig = MethodSpec::parse("integrated-gradients(steps=7,baseline=blur:2)", &base).unwrap();
    assert_eq!(ig.options.steps, 7);
    assert_eq!(ig.options.baseline.unwrap().to_string(), "blur:2");
    // The base is untouched where the spec is silent.
    let plain = MethodSpec::parse("integrated-gradients", &base).unwrap();
    assert_eq!(plain.options.steps, 50);
}

#[test]
fn alpha_beta_keep_alpha_minus_beta_one() {
    let spec = parse("lrp:epsilon-alpha2-beta1(alpha=3)");
    let conv = spec.options.composite.unwrap().conv;
    assert_eq!(
        conv,
        LinearRule::AlphaBeta {
            alpha: 3.0,
            beta: 2.0
        }
    );
    let spec = parse("lrp:epsilon-alpha2-beta1(beta=0)");
    let conv = spec.options.composite.unwrap().conv;
    assert_eq!(
        conv,
        LinearRule::AlphaBeta {
            alpha: 1.0,
            beta: 0.0
        }
    );
    let spec = parse("lrp:epsilon-gamma-box(gamma=0.5,low=-3,high=3)");
    let composite = spec.options.composite.unwrap();
    assert_eq!(composite.conv, LinearRule::Gamma { gamma: 0.5 });
    // The classic (zennit 0.4.6) Gamma by name, keeping γ in either order.
    for text in [
        "lrp:epsilon-gamma-box(gamma-form=classic,gamma=0.5)",
        "lrp:epsilon-gamma-box(gamma=0.5,gamma-form=classic)",
    ] {
        let conv = parse(text).options.composite.unwrap().conv;
        assert_eq!(conv, LinearRule::GammaClassic { gamma: 0.5 }, "{text}");
    }
    let conv = parse("lrp:epsilon-gamma-box(gamma-form=generalized)")
        .options
        .composite
        .unwrap()
        .conv;
    assert_eq!(conv, LinearRule::Gamma { gamma: 0.25 });
    let err = parse_err("lrp:epsilon-gamma-box(gamma-form=modern)");
    assert!(err.contains("valid: generalized, classic"), "{err}");
    let err = parse_err("lrp:epsilon-plus(gamma-form=classic)");
    assert!(err.contains("no parameter 'gamma-form'"), "{err}");
    let first = composite.first.unwrap().rule;
    assert_eq!(
        first,
        LinearRule::ZBox {
            low: vec![-3.0],
            high: vec![3.0]
        }
    );
}

#[test]
fn bad_specs_are_refused_with_what_is_valid() {
    let unknown = parse_err("gradcam");
    assert!(
        unknown.contains("unknown method 'gradcam'") && unknown.contains("grad-cam"),
        "{unknown}"
    );
    let param = parse_err("grad-cam(steps=3)");
    assert!(
        param.contains("no parameter 'steps'") && param.contains("valid: layer"),
        "{param}"
    );
    let none = parse_err("saliency(layer=x)");
    assert!(none.contains("it takes none"), "{none}");
    let gamma = parse_err("lrp:epsilon-plus(gamma=0.3)");
    assert!(
        gamma.contains("no parameter 'gamma'") && gamma.contains("epsilon"),
        "{gamma}"
    );
    for (text, why) in [
        ("integrated-gradients(steps=0)", "≥ 1"),
        ("integrated-gradients(steps=2", "end with ')'"),
        ("smoothgrad(noise)", "not key=value"),
        ("smoothgrad(noise=1,noise=2)", "given twice"),
        ("lrp:epsilon-plus(epsilon=nan)", "finite"),
        ("lrp:epsilon-plus(skip=sideways)", "sideways"),
    ] {
        let err = parse_err(text);
        assert!(err.contains(why), "{text}: {err}");
    }
}

#[test]
fn every_registered_method_prepares_and_maps_with_its_kind() {
    let model = tiny_resnet();
    let x = reference_input(2, 3, 16, 16);
    let targets = [1, 3];
    let acts = forward_all(&model, &x).unwrap();
    let all = logits(&model, &acts).unwrap();
    let k = all.len() / 2;
    for info in METHODS {
        assert_eq!(registry::find(info.name).unwrap().name, info.name);
        for alias in info.aliases {
            assert_eq!(registry::find(alias).unwrap().name, info.name);
        }
        let spec = MethodSpec::parse(
            info.name,
            &MethodOptions {
                steps: 4,
                samples: 3,
                ..MethodOptions::default()
            },
        )
        .unwrap();
        let prepared = spec.prepare(&model).unwrap();
        let explanation = prepared.explain(&x, &targets).unwrap();
        let channels = match info.kind {
            MapKind::Input => 3,
            MapKind::Cam => 1,
        };
        assert_eq!(
            explanation.maps.dims(),
            [2, channels, 16, 16],
            "{}",
            info.name
        );
        if info.layer != registry::LayerUse::None {
            assert!(explanation.layer.is_some(), "{} names its layer", info.name);
        }
        if info.composite_preset().is_none() {
            // Non-LRP methods explain the logits: `explained` is the target's logit.
            let expected = [all[targets[0]], all[k + targets[1]]];
            assert_eq!(explanation.explained, expected, "{}", info.name);
        }
    }
}

#[test]
fn prepared_lrp_equals_lrp_bound_by_hand_for_every_parameter() {
    let model = tiny_resnet();
    let x = reference_input(2, 3, 16, 16);
    let targets = [0, 4];
    let cases = [
        (
            "lrp-epsilon-plus-flat",
            Composite::epsilon_plus_flat(),
            LrpOptions::default(),
        ),
        (
            "lrp:epsilon-plus-flat(skip=split,start=probability)",
            Composite::epsilon_plus_flat(),
            LrpOptions {
                skip: SkipMode::Split,
                start: StartRelevance::Probability,
                ..LrpOptions::default()
            },
        ),
        (
            "lrp:epsilon-gamma-box(gamma=0.5)",
            {
                let mut c = Composite::epsilon_gamma_box();
                c.conv = LinearRule::Gamma { gamma: 0.5 };
                c
            },
            LrpOptions::default(),
        ),
        (
            "lrp:epsilon-plus(epsilon=0.25)",
            {
                let mut c = Composite::epsilon_plus();
                c.dense = LinearRule::Epsilon { epsilon: 0.25 };
                c
            },
            LrpOptions::default(),
        ),
    ];
    for (text, composite, options) in cases {
        let by_hand = LrpModel::new(&model, composite, &options).unwrap();
        let expected = by_hand.attribute(&x, &targets).unwrap();
        let prepared = parse(text).prepare(&model).unwrap();
        let got = prepared.explain(&x, &targets).unwrap();
        assert_eq!(to_vec(&got.maps), to_vec(&expected.input), "{text}");
        assert_eq!(got.explained, expected.explained, "{text}");
    }
    // A parameter changes the map (the spec is not ignored).
    let a = parse("lrp:epsilon-plus(epsilon=1e-6)")
        .prepare(&model)
        .unwrap();
    let b = parse("lrp:epsilon-plus(epsilon=1)")
        .prepare(&model)
        .unwrap();
    let (a, b) = (
        a.explain(&x, &targets).unwrap(),
        b.explain(&x, &targets).unwrap(),
    );
    assert_ne!(to_vec(&a.maps), to_vec(&b.maps));
}

#[test]
fn prepared_cam_resolves_its_layer_once_and_equals_the_explainer() {
    let model = tiny_vgg();
    let x = reference_input(2, 3, 16, 16);
    let targets = [2, 0];
    let prepared = parse("grad-cam").prepare(&model).unwrap();
    let layer = prepared.layer().unwrap().to_string();
    let named = by_name(
        "grad-cam",
        &MethodOptions {
            layer: Some(layer.clone()),
            ..MethodOptions::default()
        },
    )
    .unwrap();
    let expected = named.explain(&model, &x, &targets).unwrap();
    let got = prepared.explain(&x, &targets).unwrap();
    assert_eq!(to_vec(&got.maps), to_vec(&expected));
    assert_eq!(got.layer.as_deref(), Some(layer.as_str()));
    // The default explainer (no layer named) reads the same layer.
    let default = by_name("grad-cam", &MethodOptions::default()).unwrap();
    assert_eq!(
        to_vec(&default.explain(&model, &x, &targets).unwrap()),
        to_vec(&expected)
    );
    // A bad layer fails when preparing, before any image.
    let err = MethodSpec::parse("grad-cam(layer=nope)", &MethodOptions::default())
        .unwrap()
        .prepare(&model)
        .err()
        .expect("unknown layer refused");
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn help_lists_every_method_with_its_parameters() {
    let help = registry::help();
    for info in METHODS {
        let line = help
            .lines()
            .find(|l| {
                l.trim_start().starts_with(&format!("{} ", info.name))
                    || l.trim_start().starts_with(&format!("{}:", info.name))
            })
            .unwrap_or_else(|| panic!("no help line for {}", info.name));
        for p in info.accepted_params() {
            assert!(line.contains(p), "{line}: {p}");
        }
        for alias in info.aliases {
            assert!(line.contains(alias), "{line}: {alias}");
        }
    }
    // Each LRP method lists its composite's own rule parameters only.
    let plus = registry::find("lrp:epsilon-plus")
        .unwrap()
        .accepted_params();
    assert_eq!(plus, ["skip", "start", "epsilon"]);
    let gamma_box = registry::find("lrp:epsilon-gamma-box")
        .unwrap()
        .accepted_params();
    assert_eq!(
        gamma_box,
        [
            "skip",
            "start",
            "low",
            "high",
            "gamma",
            "gamma-form",
            "epsilon"
        ]
    );
}

/// Runs every spec stored under `<key>/<spec>` in the `params_<model>` fixtures
/// (`tools/fixtures_lrp_params.py`, zennit 1.0.0) on both tiny models and compares it with
/// zennit's float32 and float64 results under the parity criterion of the preset composites;
/// returns the number of specs checked per model, failing on any that is off.
fn zennit_parity_of_specs(key: &str) -> usize {
    use crate::lrp_common::{Fixture, fixture_model, parity};
    let mut failures = Vec::new();
    let mut counts = Vec::new();
    for name in ["tiny_vgg", "tiny_resnet"] {
        let fx = Fixture::load(&format!("params_{name}"));
        let model = fixture_model(name);
        let (x, targets) = (fx.t4("input"), fx.targets());
        let base = MethodOptions {
            lrp: fx.zennit_options(),
            ..MethodOptions::default()
        };
        let prefix = format!("{key}/");
        let specs: Vec<String> = fx
            .tensors
            .keys()
            .filter_map(|k| k.strip_prefix(&prefix).map(str::to_string))
            .collect();
        for text in &specs {
            let prepared = MethodSpec::parse(text, &base)
                .unwrap()
                .prepare(&model)
                .unwrap();
            let ours = to_vec(&prepared.explain(&x, &targets).unwrap().maps);
            let (f32_ref, f64_ref) = (format!("{key}/{text}"), format!("{key}64/{text}"));
            match parity(&ours, fx.values(&f32_ref), fx.values(&f64_ref)) {
                Ok(report) => println!("{name} {text}: {report}"),
                Err(report) => failures.push(format!("{name} {text}: {report}")),
            }
        }
        counts.push(specs.len());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(counts[0], counts[1], "both models have every spec");
    counts[0]
}

/// Parameterised composites against zennit 1.0.0 built with the same parameters (the classic
/// Gamma with zennit 0.4.6's Gamma hook).
#[test]
fn parameterised_composites_match_zennit() {
    assert_eq!(zennit_parity_of_specs("lrp"), 6);
}

/// Integrated Gradients over an LRP rule set against zennit's `IntegratedGradients` with the
/// same composite.
#[test]
fn integrated_gradients_over_a_rule_set_matches_zennit() {
    assert_eq!(zennit_parity_of_specs("ig"), 2);
}
/// SmoothGrad without noise over a rule set is that rule set's modified gradient: the LRP map
/// started from 1 at the target; and `rules=gradient` is plain SmoothGrad.
#[test]
fn smoothgrad_over_a_rule_set_without_noise_is_the_modified_gradient() {
    let model = tiny_resnet();
    let x = reference_input(2, 3, 16, 16);
    let targets = [1, 2];
    let sg = parse("smoothgrad(rules=epsilon-plus-flat,noise=0,samples=3)");
    let got = sg.prepare(&model).unwrap().explain(&x, &targets).unwrap();
    let one = LrpOptions {
        start: StartRelevance::One,
        ..LrpOptions::default()
    };
    let lrp = LrpModel::new(&model, Composite::epsilon_plus_flat(), &one).unwrap();
    let expected = to_vec(&lrp.attribute(&x, &targets).unwrap().input);
    let got = to_vec(&got.maps);
    let err = crate::lrp_common::max_rel(&got, &expected);
    assert!(err < 1e-6, "mean of three equal maps vs the map: {err:e}");
    let plain = parse("smoothgrad(rules=gradient,noise=0,samples=2)");
    let plain = to_vec(
        &plain
            .prepare(&model)
            .unwrap()
            .explain(&x, &targets)
            .unwrap()
            .maps,
    );
    let saliency = to_vec(
        &parse("saliency")
            .prepare(&model)
            .unwrap()
            .explain(&x, &targets)
            .unwrap()
            .maps,
    );
    assert!(crate::lrp_common::max_rel(&plain, &saliency) < 1e-6);
    let err = by_name("smoothgrad(rules=epsilon-plus)", &MethodOptions::default()).err();
    assert!(
        err.unwrap().to_string().contains("prepare"),
        "unbound rule sets are refused"
    );
}

/// Study folders and explain's files use one key per label: plain names unchanged, specs
/// readable, anything hostile one safe component.
#[test]
fn labels_become_one_readable_safe_file_name() {
    use relevance::methods::spec::label_file_key;
    assert_eq!(label_file_key("random"), "random");
    assert_eq!(label_file_key("grad-cam"), "grad-cam");
    assert_eq!(
        label_file_key("lrp:epsilon-plus-flat(skip=split)"),
        "lrp-epsilon-plus-flat.skip-split"
    );
    assert_eq!(
        label_file_key("integrated-gradients(baseline=blur:2,steps=8)"),
        "integrated-gradients.baseline-blur-2.steps-8"
    );
    for hostile in [
        "../x",
        "..",
        "a/../../b",
        "-rf",
        ".hidden",
        "grad-cam(layer=/0/Conv)",
    ] {
        let key = label_file_key(hostile);
        assert!(
            !key.is_empty() && !key.contains('/') && !key.starts_with(['.', '-']),
            "{hostile} -> {key}"
        );
    }
}
