//! Method specs: a method name with parameters, as users write them on the command line and in
//! study configurations — `grad-cam`, `integrated-gradients(steps=64,baseline=blur)`,
//! `lrp:epsilon-plus-flat(skip=split,start=probability,epsilon=1e-6)`.
//!
//! A spec's parameters override the options it is parsed against (the command's flags), so
//! `--resnet-skip zennit` with `lrp:epsilon-plus-flat(skip=split)` and `lrp:epsilon-plus-flat`
//! compares both skip treatments in one run. Names before specs existed (`lrp-epsilon-plus-flat`)
//! are aliases.

use std::fmt;

use super::lrp::{Composite, GammaForm};
use super::registry::{self, Family, MethodInfo};
use super::{Baseline, MethodError, MethodOptions, Quadrature};

/// A parsed method spec: the registry entry, the parameters as written and the options they
/// give.
#[derive(Clone, Debug)]
pub struct MethodSpec {
    /// The method.
    pub info: &'static MethodInfo,
    /// `(key, value)` in the order written.
    pub params: Params,
    /// The options the method runs with: the base options with `params` applied.
    pub options: MethodOptions,
    /// The name as written (canonical or alias).
    written: String,
}

impl MethodSpec {
    /// Parses `text` (`name` or `name(key=value,…)`) against `base`.
    pub fn parse(text: &str, base: &MethodOptions) -> Result<MethodSpec, MethodError> {
        let text = text.trim();
        let (name, params) = split_params(text)?;
        let info = registry::find(name).ok_or_else(|| MethodError::UnknownMethod {
            name: name.to_string(),
            valid: registry::names().join(", "),
        })?;
        let mut options = base.clone();
        if let Some(preset) = info.composite_preset() {
            options.composite = Some(Composite::preset(preset).expect("registry preset"));
        }
        for (key, value) in &params {
            apply(info, &mut options, key, value)?;
        }
        Ok(MethodSpec {
            info,
            params,
            options,
            written: name.to_string(),
        })
    }

    /// Parses a list of specs, dropping repeats of the same label.
    pub fn parse_list(
        texts: &[String],
        base: &MethodOptions,
    ) -> Result<Vec<MethodSpec>, MethodError> {
        let mut specs: Vec<MethodSpec> = Vec::new();
        for text in texts.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
            let spec = MethodSpec::parse(text, base)?;
            if !specs.iter().any(|s| s.label() == spec.label()) {
                specs.push(spec);
            }
        }
        Ok(specs)
    }

    /// The label runs use in tables, records and file names: the name as written, with the
    /// parameters as written (`lrp-epsilon-plus-flat`, `lrp:epsilon-plus-flat(skip=split)`).
    pub fn label(&self) -> String {
        if self.params.is_empty() {
            return self.written.clone();
        }
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("{}({})", self.written, params.join(","))
    }

    /// The label as one file-name component: `:` and `=` become `-`, `(` and `,` become `.`,
    /// `)` is dropped (`lrp-epsilon-plus-flat.skip-split`); anything else outside
    /// `[A-Za-z0-9._-]` goes through [`crate::io::safe_component`].
    pub fn file_key(&self) -> String {
        label_file_key(&self.label())
    }

    /// Whether this is an LRP method.
    pub fn is_lrp(&self) -> bool {
        self.info.family == Family::Lrp
    }
}

impl fmt::Display for MethodSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// A method label (a spec as written, or a study's `random` control) as one file-name component:
/// `:`, `=` and `/` become `-`, `(` and `,` become `.`, `)` is dropped
/// (`lrp:epsilon-plus-flat(skip=split)` → `lrp-epsilon-plus-flat.skip-split`); anything else
/// outside `[A-Za-z0-9._-]` goes through [`crate::io::safe_component`]. Plain names are unchanged.
pub fn label_file_key(label: &str) -> String {
    let mapped: String = label
        .chars()
        .filter(|&c| c != ')')
        .map(|c| match c {
            ':' | '=' | '/' => '-',
            '(' | ',' => '.',
            c => c,
        })
        .collect();
    crate::io::safe_component(&mapped)
}

/// Parameters as written: `(key, value)` pairs.
pub(crate) type Params = Vec<(String, String)>;

/// `name(k=v,…)` → `("name", [(k, v), …])` (also read by the studies' `crp(…)` concept specs).
pub(crate) fn split_params(text: &str) -> Result<(&str, Params), MethodError> {
    let Some(open) = text.find('(') else {
        return Ok((text, Vec::new()));
    };
    let inner = text[open + 1..].strip_suffix(')').ok_or_else(|| {
        MethodError::Invalid(format!("method '{text}': parameters must end with ')'"))
    })?;
    let mut params = Vec::new();
    for pair in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').ok_or_else(|| {
            MethodError::Invalid(format!(
                "method '{text}': parameter '{pair}' is not key=value"
            ))
        })?;
        let (key, value) = (key.trim().to_string(), value.trim().to_string());
        if params.iter().any(|(k, _): &(String, String)| *k == key) {
            return Err(MethodError::Invalid(format!(
                "method '{text}': parameter '{key}' given twice"
            )));
        }
        params.push((key, value));
    }
    Ok((text[..open].trim(), params))
}

/// Sets parameter `key` of method `info` in `options`.
fn apply(
    info: &MethodInfo,
    options: &mut MethodOptions,
    key: &str,
    value: &str,
) -> Result<(), MethodError> {
    let accepted = info.accepted_params();
    if !accepted.contains(&key) {
        let valid = if accepted.is_empty() {
            "it takes none".to_string()
        } else {
            format!("valid: {}", accepted.join(", "))
        };
        return Err(MethodError::Invalid(format!(
            "method {} has no parameter '{key}'; {valid}",
            info.name
        )));
    }
    let bad = |why: String| MethodError::Invalid(format!("{}: {key}={value}: {why}", info.name));
    match key {
        "layer" => options.layer = Some(value.to_string()),
        "steps" => options.steps = positive(value).map_err(bad)?,
        "samples" => options.samples = positive(value).map_err(bad)?,
        "window" => options.window = positive(value).map_err(bad)?,
        "stride" => options.stride = positive(value).map_err(bad)?,
        "batch" => options.batch = positive(value).map_err(bad)?,
        "seed" => options.seed = value.parse().map_err(|e| bad(format!("{e}")))?,
        "noise" => options.noise = finite(value).map_err(bad)?,
        "integration" => {
            options.quadrature = value
                .parse::<Quadrature>()
                .map_err(|e| bad(e.to_string()))?
        }
        "baseline" => {
            options.baseline = Some(value.parse::<Baseline>().map_err(|e| bad(e.to_string()))?)
        }
        "skip" => options.lrp.skip = value.parse().map_err(bad)?,
        "start" => options.lrp.start = value.parse().map_err(bad)?,
        "rules" => options.rules = rule_set(value).map_err(bad)?,
        "silu" => options.guided_silu = value.parse().map_err(bad)?,
        "gamma-form" => {
            let form = value.parse::<GammaForm>().map_err(bad)?;
            options
                .composite
                .as_mut()
                .ok_or_else(|| bad("not an LRP method".into()))?
                .set_gamma_form(form)
                .map_err(bad)?;
        }
        rule_param => {
            let number = finite(value).map_err(bad)?;
            let composite = options
                .composite
                .as_mut()
                .ok_or_else(|| bad("not an LRP method".into()))?;
            composite.set(rule_param, number).map_err(bad)?;
        }
    }
    Ok(())
}

/// `rules=`: `gradient` (the plain gradient) or a composite preset.
fn rule_set(value: &str) -> Result<Option<Composite>, String> {
    if value == "gradient" {
        return Ok(None);
    }
    let preset = value.strip_prefix("lrp:").unwrap_or(value);
    Composite::preset(preset).map(Some).ok_or_else(|| {
        format!(
            "not a rule set; valid: gradient, {}",
            Composite::PRESETS.join(", ")
        )
    })
}

fn positive(value: &str) -> Result<usize, String> {
    match value.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("must be a whole number ≥ 1".into()),
    }
}

fn finite(value: &str) -> Result<f32, String> {
    match value.parse::<f32>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err("must be a finite number".into()),
    }
}
