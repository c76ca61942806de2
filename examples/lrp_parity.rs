//! LRP parity of an imported model against a reference file of zennit relevances, as
//! `tools/parity_resnet50.py` writes it (keys `input`, `logits`, `targets`, `zbox_low`,
//! `zbox_high`, `lrp/<composite>`, `lrp64/<composite>`). Prints, per composite, the largest
//! absolute difference over the largest reference magnitude (against zennit's float32 and
//! float64 results, and zennit's own float32 round-off), and ΣR of ours and of zennit's beside
//! the explained logit. The classic Gamma (`gamma-form=classic`, zennit 0.4.6) is printed beside
//! `epsilon-gamma-box` for scale.
//!
//! ```bash
//! /tmp/z1venv/bin/python tools/parity_resnet50.py /tmp/lrp50   # writes the files, then runs this
//! cargo run --example lrp_parity -- /tmp/lrp50/resnet50.onnx /tmp/lrp50/resnet50_z1.safetensors
//! ```

use std::collections::HashMap;
use std::path::Path;

use relevance::Model;
use relevance::graph::LoadOptions;
use relevance::methods::lrp::{
    Composite, GammaForm, LrpModel, LrpOptions, SkipMode, StartRelevance, ZBoxBounds,
};
use relevance::tensor::{from_vec, to_vec};

type Tensors = HashMap<String, (Vec<usize>, Vec<f32>)>;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [model_path, reference_path] = args.as_slice() else {
        return Err("usage: lrp_parity MODEL REFERENCE.safetensors".into());
    };
    let model = Model::load(Path::new(model_path), &LoadOptions::default())?;
    let reference: Tensors =
        relevance::graph::import::safetensors::read(Path::new(reference_path))?
            .into_iter()
            .map(|t| (t.key, (t.shape, t.values)))
            .collect();
    let values = |key: &str| -> &[f32] { &reference[key].1 };
    let (shape, input) = &reference["input"];
    let x = from_vec(input.clone(), [shape[0], shape[1], shape[2], shape[3]]);
    let targets: Vec<usize> = values("targets").iter().map(|&t| t as usize).collect();
    let options = LrpOptions {
        skip: SkipMode::Zennit,
        start: StartRelevance::Logit,
        zbox: Some(ZBoxBounds {
            low: values("zbox_low").to_vec(),
            high: values("zbox_high").to_vec(),
        }),
    };
    let mut classic = Composite::epsilon_gamma_box();
    classic.set_gamma_form(GammaForm::Classic)?;
    let composites = Composite::presets().into_iter().map(|c| (c.to_string(), c));
    let composites = composites.chain([("epsilon-gamma-box(gamma-form=classic)".into(), classic)]);
    for (label, composite) in composites {
        let key = composite.to_string();
        let lrp = LrpModel::new(&model, composite, &options)?;
        let started = std::time::Instant::now();
        let attribution = lrp.attribute(&x, &targets)?;
        let seconds = started.elapsed().as_secs_f64();
        let ours = to_vec(&attribution.input);
        let (z32, z64) = (
            values(&format!("lrp/{key}")),
            values(&format!("lrp64/{key}")),
        );
        let logit = values("logits")[targets[0]];
        println!(
            "{label}: max|ours − zennit f32|/max|zennit| {:.2e} (vs zennit f64 {:.2e}; zennit's own f32 {:.2e}); \
             ΣR ours {:.6} zennit {:.6} for logit {logit:.6}; {seconds:.2} s",
            max_rel(&ours, z32),
            max_rel(&ours, z64),
            max_rel(z32, z64),
            ours.iter().map(|&v| v as f64).sum::<f64>(),
            z64.iter().map(|&v| v as f64).sum::<f64>(),
        );
    }
    Ok(())
}

/// Largest absolute difference over the largest reference magnitude.
fn max_rel(a: &[f32], b: &[f32]) -> f64 {
    let scale = b
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs() as f64))
        .max(1e-30);
    let diff = a
        .iter()
        .zip(b)
        .fold(0.0f64, |m, (x, y)| m.max((*x as f64 - *y as f64).abs()));
    diff / scale
}
