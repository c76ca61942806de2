//! The method-option flags of `relevance explain`, shared by every command that runs
//! explanation methods (the studies flatten it), so `--resnet-skip split` or `--steps 32` mean
//! the same everywhere.

use anyhow::Result;

use crate::methods::lrp::{LrpOptions, SkipMode, StartRelevance};
use crate::methods::{Baseline, MethodOptions, Quadrature};

/// Options of the explanation methods.
#[derive(clap::Args, Debug, Clone)]
pub struct MethodArgs {
    /// CAM target layer (a node name); default: each method's default.
    #[arg(long)]
    pub layer: Option<String>,
    /// Integrated Gradients: points on the path.
    #[arg(long, default_value_t = 50)]
    pub steps: usize,
    /// Integrated Gradients: gauss-legendre, riemann-right, riemann-left, riemann-middle or
    /// riemann-trapezoid.
    #[arg(long, default_value = "gauss-legendre")]
    pub integration: String,
    /// SmoothGrad: noisy samples per image.
    #[arg(long, default_value_t = 25)]
    pub samples: usize,
    /// SmoothGrad: noise σ as a fraction of the image's value range.
    #[arg(long, default_value_t = 0.15)]
    pub noise: f32,
    /// Occlusion: window side in pixels.
    #[arg(long, default_value_t = 16)]
    pub window: usize,
    /// Occlusion: step between windows in pixels.
    #[arg(long, default_value_t = 8)]
    pub stride: usize,
    /// Integrated Gradients / Occlusion reference: zero, black, blur, blur:SIGMA or a number.
    #[arg(long)]
    pub baseline: Option<String>,
    /// Seed of random draws (SmoothGrad noise; in the studies also the random control, the
    /// augmentations and k-means).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Rows per forward pass for methods that evaluate many copies of an input (in the studies
    /// also the images per pass).
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// LRP: treatment of ResNet skip connections: zennit (signed split, as zennit's canonizer),
    /// split (Relevance Splitting, Otsuki et al. 2024) or symmetric (R/2 to each branch).
    #[arg(long, default_value = "zennit")]
    pub resnet_skip: SkipMode,
    /// LRP: starting relevance at the target: logit (zennit), probability (softmax, as the
    /// Relevance Splitting paper) or one.
    #[arg(long, default_value = "logit")]
    pub relevance_start: StartRelevance,
}

impl MethodArgs {
    /// Method options from the flags.
    pub fn method_options(&self) -> Result<MethodOptions> {
        Ok(MethodOptions {
            layer: self.layer.clone(),
            steps: self.steps,
            quadrature: self.integration.parse::<Quadrature>()?,
            samples: self.samples,
            noise: self.noise,
            window: self.window,
            stride: self.stride,
            baseline: self
                .baseline
                .as_deref()
                .map(str::parse::<Baseline>)
                .transpose()?,
            seed: self.seed,
            batch: self.batch.max(1),
            lrp: LrpOptions {
                skip: self.resnet_skip,
                start: self.relevance_start,
                zbox: None,
            },
            composite: None,
            rules: None,
            guided_silu: Default::default(),
        })
    }
}

/// Method options from flags given as `(name, value)` pairs, read by the same definitions (and
/// defaults, and messages) as the command line's: `("resnet_skip", "split")` is
/// `--resnet-skip split`. For callers that are not the command line (the Python binding).
pub fn method_options_from_flags(flags: &[(String, String)]) -> Result<MethodOptions> {
    #[derive(clap::Parser)]
    #[command(name = "options", no_binary_name = true, disable_help_flag = true)]
    struct Flags {
        #[command(flatten)]
        method: MethodArgs,
    }
    let words = flags
        .iter()
        .map(|(name, value)| format!("--{}={value}", name.replace('_', "-")));
    let parsed = <Flags as clap::Parser>::try_parse_from(words).map_err(|e| {
        let text = e.render().to_string();
        // clap's first line is the error; the rest is usage for a shell user.
        let first = text.lines().next().unwrap_or_default();
        anyhow::anyhow!("{}", first.trim_start_matches("error: "))
    })?;
    parsed.method.method_options()
}

/// `--method` values: specs separated by commas outside parentheses, so
/// `lrp:epsilon-plus-flat(skip=split,epsilon=1e-6),grad-cam` is two methods.
pub fn split_specs(text: &str) -> Result<Vec<String>, String> {
    let mut specs = Vec::new();
    let (mut depth, mut current) = (0i32, String::new());
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if c == ',' && depth == 0 {
            specs.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
        if depth < 0 {
            return Err(format!("unbalanced ')' in '{text}'"));
        }
    }
    if depth != 0 {
        return Err(format!("unbalanced '(' in '{text}'"));
    }
    specs.push(current);
    Ok(specs
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect())
}
