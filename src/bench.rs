//! Speed and memory of the engine on the zoo's architectures: per-image time of each
//! [`Workload`] (forward pass, input gradient, Grad-CAM, LRP, CRP with 32 concepts), the median
//! of several timed runs after warm-up, and the peak resident memory.
//!
//! `tools/bench_torch.py` runs the same workloads in PyTorch and prints the same table.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::engine::backward::{Rule, RuleCtx, RuleMap, Rules, backward};
use crate::engine::forward::{Activations, eval};
use crate::engine::{EngineError, predict};
use crate::graph::init::{init_params, random_reference_params};
use crate::graph::{Graph, GraphError, Model, ModelCard, NodeId, ParamStore, zoo};
use crate::methods::crp::conditional_relevance;
use crate::methods::lrp::{Composite, LrpModel, LrpOptions};
use crate::methods::{MethodOptions, MethodSpec, Prepared};
use crate::rng::Rng;
use crate::tensor::{T4, from_vec};

/// Errors of a benchmark run.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BenchError {
    /// The engine failed on a workload.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// An architecture or its weights could not be built.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// A request that cannot be run (unknown workload, empty list, …).
    #[error("{0}")]
    Invalid(String),
}

/// Where per-node times of a profiled run accumulate.
#[derive(Clone, Debug, Default)]
pub(crate) struct Profile {
    /// Time spent evaluating each node in forward passes.
    pub forward: Vec<Duration>,
    /// Time spent in each node's backward rule.
    pub backward: Vec<Duration>,
    /// Number of runs accumulated.
    pub runs: usize,
}

impl Profile {
    fn new(nodes: usize) -> Self {
        Profile {
            forward: vec![Duration::ZERO; nodes],
            backward: vec![Duration::ZERO; nodes],
            runs: 0,
        }
    }
}

/// One thing to time: it runs a batch through a model and may record per-node times.
pub(crate) trait Workload: Send + Sync {
    /// Short name, the row label (`forward`, `gradient`).
    fn name(&self) -> &'static str;
    /// Runs the workload once on batch `x` and returns its result (logits, input gradient,
    /// map, relevance), which [`read_back_one_value`] reads from; with `profile`, evaluates
    /// node by node and adds each node's time to it (slower: no activation is released early).
    fn run(&self, model: &Model, x: &T4, profile: Option<&mut Profile>) -> Result<T4, BenchError>;
}

/// Inference: the logits of a batch, releasing activations as soon as nothing needs them
/// (PyTorch: `model(x)` under `torch.no_grad()`).
pub(crate) struct Forward;

impl Workload for Forward {
    fn name(&self) -> &'static str {
        "forward"
    }
    fn run(&self, model: &Model, x: &T4, profile: Option<&mut Profile>) -> Result<T4, BenchError> {
        let (graph, params) = (&model.graph, &model.params);
        Ok(match profile {
            Some(p) => timed_forward(graph, params, x, p)?
                .get(graph.output)?
                .clone(),
            None => predict(graph, params, x.clone())?,
        })
    }
}

/// The input gradient of one logit per image: a forward pass keeping every activation and one
/// backward pass from the logits to the input (PyTorch: forward with `requires_grad` input,
/// `logits[i, target_i].sum().backward()`). Targets are class 0.
pub(crate) struct InputGradient;

impl Workload for InputGradient {
    fn name(&self) -> &'static str {
        "gradient"
    }
    fn run(&self, model: &Model, x: &T4, profile: Option<&mut Profile>) -> Result<T4, BenchError> {
        let (graph, params) = (&model.graph, &model.params);
        let logits = graph.logits();
        let gradient = Rules::gradient();
        let (acts, timing) = match profile {
            Some(p) => (timed_forward(graph, params, x, p)?, Some(p)),
            None => (crate::engine::forward(graph, params, x.clone())?, None),
        };
        let out = acts.get(logits)?;
        let [n, k, _, _] = out.dims();
        let mut seed = vec![0.0f32; n * k];
        for i in 0..n {
            seed[i * k] = 1.0;
        }
        let seed = from_vec(seed, [n, k, 1, 1]);
        let input = [graph.input()];
        let mut grads = match timing {
            Some(p) => {
                let sink = Mutex::new(std::mem::take(&mut p.backward));
                let timed = TimedRules::new(graph, &gradient, &sink);
                let grads = backward(graph, params, &acts, logits, seed, &timed, &input)?;
                p.backward = sink.into_inner().expect("no rule panicked");
                grads
            }
            None => backward(graph, params, &acts, logits, seed, &gradient, &input)?,
        };
        Ok(grads.remove(0))
    }
}

/// An explanation method run through its public interface, as a user runs it: Grad-CAM (the
/// backward pass stops at the CAM layer) or LRP ε-z⁺-♭, prepared once for the model before
/// the warm-up (BatchNorm folded, modified weights derived — as zennit registers its composite
/// once). Per-node profiles are not recorded for these.
pub(crate) struct Method<'m> {
    name: &'static str,
    method: Prepared<'m>,
}

impl Workload for Method<'_> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn run(&self, model: &Model, x: &T4, _profile: Option<&mut Profile>) -> Result<T4, BenchError> {
        let targets = vec![0; x.dims()[0]];
        let _ = model; // the model it was prepared for
        let explanation = self
            .method
            .explain(x, &targets)
            .map_err(|e| BenchError::Invalid(e.to_string()))?;
        Ok(explanation.maps)
    }
}

/// Concepts per image of the CRP workload.
pub(crate) const CRP_CONCEPTS: usize = 32;

/// Concept Relevance Propagation: conditional heatmaps of [`CRP_CONCEPTS`] single-channel
/// concepts of one layer for class 0, one batch of concepts per image (zennit-crp's
/// `CondAttribution` with the image repeated once per concept). The layer is
/// [`crp_layer`]'s.
pub(crate) struct Crp {
    /// The LRP form of the model being timed, prepared once as `concepts` does.
    lrp: LrpModel,
}

/// The layer whose channels the CRP workload conditions on: `layer3.0.conv2` for ResNet-50 and
/// `features.21` for VGG16 (the layers `tools/bench_lrp_torch.py` uses), else the last
/// convolution with at least [`CRP_CONCEPTS`] channels.
pub(crate) fn crp_layer(arch: &str, model: &Model) -> Option<String> {
    match arch {
        "resnet50" => return Some("layer3.0.conv2".into()),
        "vgg16" => return Some("features.21".into()),
        _ => {}
    }
    model
        .graph
        .nodes
        .iter()
        .rev()
        .find(|n| match &n.op {
            crate::graph::Op::Conv2d(c) => model
                .params
                .get(&c.weight)
                .is_ok_and(|w| w.shape.first().is_some_and(|&o| o >= CRP_CONCEPTS)),
            _ => false,
        })
        .map(|n| n.name.clone())
}

impl Workload for Crp {
    fn name(&self) -> &'static str {
        "crp32"
    }
    fn run(&self, model: &Model, x: &T4, _profile: Option<&mut Profile>) -> Result<T4, BenchError> {
        let invalid = |e: crate::methods::MethodError| BenchError::Invalid(e.to_string());
        let lrp = &self.lrp;
        let arch = model.card.arch.clone().unwrap_or_default();
        let name = crp_layer(&arch, model).ok_or_else(|| {
            BenchError::Invalid(format!(
                "{arch}: no convolution with {CRP_CONCEPTS} channels"
            ))
        })?;
        let layer = lrp.find(&name).map_err(invalid)?;
        let sets: Vec<Vec<usize>> = (0..CRP_CONCEPTS).map(|c| vec![c]).collect();
        let mut last = None;
        for i in 0..x.dims()[0] {
            let row = x.clone().narrow(0, i, 1);
            let result =
                conditional_relevance(lrp, &row, 0, layer, &sets, CRP_CONCEPTS).map_err(invalid)?;
            last = Some(result.input_relevance);
        }
        last.ok_or_else(|| BenchError::Invalid("an empty batch".into()))
    }
}

/// Names of the built-in workloads.
pub(crate) const WORKLOADS: &[&str] = &["forward", "gradient", "grad-cam", "lrp", "crp32"];

/// The workload called `name`, prepared for `model` (the methods bind to it here).
pub(crate) fn workload<'m>(
    name: &str,
    model: &'m Model,
) -> Result<Box<dyn Workload + 'm>, BenchError> {
    let invalid = |e: crate::methods::MethodError| BenchError::Invalid(e.to_string());
    let method = |name: &'static str, spec: &str| -> Result<Box<dyn Workload + 'm>, BenchError> {
        let spec = MethodSpec::parse(spec, &MethodOptions::default()).map_err(invalid)?;
        let method = spec.prepare(model).map_err(invalid)?;
        Ok(Box::new(Method { name, method }))
    };
    check_workload(name)?;
    match name {
        "forward" => Ok(Box::new(Forward)),
        "gradient" => Ok(Box::new(InputGradient)),
        "grad-cam" => method("grad-cam", "grad-cam"),
        "lrp" => method("lrp", "lrp:epsilon-plus-flat"),
        _ => Ok(Box::new(Crp {
            lrp: LrpModel::new(
                model,
                Composite::epsilon_plus_flat(),
                &LrpOptions::default(),
            )
            .map_err(invalid)?,
        })),
    }
}

/// Fails for a name that is not a workload.
fn check_workload(name: &str) -> Result<(), BenchError> {
    if WORKLOADS.contains(&name) {
        return Ok(());
    }
    Err(BenchError::Invalid(format!(
        "unknown workload '{name}'; valid: {}",
        WORKLOADS.join(", ")
    )))
}

/// A forward pass that evaluates the nodes one by one, timing each; keeps every activation.
pub(crate) fn timed_forward(
    graph: &Graph,
    params: &ParamStore,
    x: &T4,
    profile: &mut Profile,
) -> Result<Activations, EngineError> {
    let n = graph.nodes.len();
    if profile.forward.len() != n {
        *profile = Profile::new(n);
    }
    profile.runs += 1;
    let mut values: Vec<Option<T4>> = vec![None; n];
    let mut aux = vec![None; n];
    for (id, node) in graph.nodes.iter().enumerate() {
        let args: Vec<T4> = node
            .inputs
            .iter()
            .map(|&i| values[i].clone().expect("inputs come first"))
            .collect();
        let input = (id == 0).then(|| x.clone());
        let start = Instant::now();
        let (out, extra) =
            eval(&node.op, args, input, params, None).map_err(|e| e.at_node(&node.name))?;
        profile.forward[id] += start.elapsed();
        values[id] = Some(out);
        aux[id] = extra;
    }
    Ok(Activations { values, aux })
}

/// Wraps a rule map so that each node's rule is timed into a shared per-node table.
struct TimedRules<'a> {
    slots: Vec<TimedRule<'a>>,
}

struct TimedRule<'a> {
    inner: &'a dyn Rule,
    id: NodeId,
    sink: &'a Mutex<Vec<Duration>>,
}

impl<'a> TimedRules<'a> {
    fn new(graph: &'a Graph, rules: &'a dyn RuleMap, sink: &'a Mutex<Vec<Duration>>) -> Self {
        let slots = (0..graph.nodes.len())
            .map(|id| TimedRule {
                inner: rules.rule(graph, id),
                id,
                sink,
            })
            .collect();
        TimedRules { slots }
    }
}

impl Rule for TimedRule<'_> {
    fn backward(&self, ctx: &RuleCtx, signal: T4) -> Result<Vec<Option<T4>>, EngineError> {
        let start = Instant::now();
        let out = self.inner.backward(ctx, signal);
        let took = start.elapsed();
        if let Ok(mut table) = self.sink.lock() {
            table[self.id] += took;
        }
        out
    }
}

impl RuleMap for TimedRules<'_> {
    fn rule(&self, _graph: &Graph, id: NodeId) -> &dyn Rule {
        &self.slots[id]
    }
}

/// Which weights the benchmarked models get (speed does not depend on them, except through
/// denormal numbers, which neither kind produces).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Weights {
    /// Freshly initialised with torchvision's initialisers (seed 0).
    Random,
    /// [`random_reference_params`], the parity fixtures' weights.
    Reference,
}

/// What to benchmark.
#[derive(Clone, Debug)]
pub(crate) struct BenchOptions {
    /// Architectures (zoo names).
    pub archs: Vec<String>,
    /// Batch sizes.
    pub batches: Vec<usize>,
    /// Workload names (see [`WORKLOADS`]).
    pub workloads: Vec<String>,
    /// Square input side in pixels.
    pub size: usize,
    /// Input channels.
    pub channels: usize,
    /// Output classes.
    pub classes: usize,
    /// Timed runs per row (the median is reported).
    pub repeat: usize,
    /// Untimed runs before them.
    pub warmup: usize,
    /// Weights to use.
    pub weights: Weights,
    /// Also record per-node times (`repeat` extra, node-by-node runs per row).
    pub per_node: bool,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            archs: vec!["resnet50".into(), "vgg16".into()],
            batches: vec![1, 8],
            workloads: WORKLOADS.iter().map(|s| s.to_string()).collect(),
            size: 224,
            channels: 3,
            classes: 1000,
            repeat: 5,
            warmup: 1,
            weights: Weights::Random,
            per_node: false,
        }
    }
}

/// Time of one node in a profiled run, per image.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct NodeTime {
    /// Node name.
    pub node: String,
    /// Op kind.
    pub op: &'static str,
    /// Forward milliseconds per image.
    pub forward_ms: f64,
    /// Backward-rule milliseconds per image.
    pub backward_ms: f64,
}

/// One row of the result table.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct Row {
    /// Architecture.
    pub arch: String,
    /// Workload name.
    pub workload: String,
    /// Batch size.
    pub batch: usize,
    /// Input side in pixels.
    pub size: usize,
    /// Median over the timed runs of the run time divided by the batch size.
    pub ms_per_image: f64,
    /// Fastest timed run, per image.
    pub min_ms_per_image: f64,
    /// Number of timed runs.
    pub repeat: usize,
    /// Peak resident memory of the process during the row in MiB (model weights included),
    /// `None` where `/proc/self` cannot tell.
    pub peak_rss_mib: Option<f64>,
    /// Per-node times, averaged over `repeat` extra profiled runs (with `per_node`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_node: Option<Vec<NodeTime>>,
}

/// Median of `xs` (the mean of the middle two for an even count).
pub(crate) fn median(xs: &[f64]) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => f64::NAN,
        _ if n % 2 == 1 => v[n / 2],
        _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Resets the process's peak resident set size to its current size (Linux ≥ 4.0:
/// writing `5` to `/proc/self/clear_refs`), after handing freed memory back to the system
/// ([`crate::alloc::release_free_memory`]), cached filter layouts of weights nobody holds any
/// more included, so the next peak is that of the next job alone.
/// Returns whether it worked.
pub(crate) fn reset_peak_rss() -> bool {
    crate::engine::kernels::release_unused_filters();
    crate::alloc::release_free_memory();
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// Peak resident set size of the process in MiB (`VmHWM` of `/proc/self/status`).
pub(crate) fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Builds `arch` with the requested weights.
fn model(arch: &str, opts: &BenchOptions) -> Result<Model, BenchError> {
    let mut graph = zoo::build(arch, opts.classes, opts.channels)?;
    // Time the logits, not a softmax head.
    graph.output = graph.logits();
    let params = match opts.weights {
        Weights::Random => init_params(&graph, 0)?,
        Weights::Reference => random_reference_params(&graph)?,
    };
    let card = ModelCard {
        arch: Some(arch.to_string()),
        num_classes: opts.classes,
        channels: opts.channels,
        input_size: [opts.size, opts.size],
        ..ModelCard::default()
    };
    Ok(Model {
        graph,
        params,
        card,
        source: std::path::PathBuf::from(format!("bench:{arch}")),
    })
}

/// A standard-normal batch `[n, c, size, size]`.
fn random_batch(n: usize, c: usize, size: usize, seed: u64) -> T4 {
    let mut rng = Rng::new(seed);
    let values = (0..n * c * size * size).map(|_| rng.normal()).collect();
    from_vec(values, [n, c, size, size])
}

/// Runs every (architecture, batch, workload) combination and calls `on_row` as each row is
/// done; returns all rows.
pub(crate) fn run(
    opts: &BenchOptions,
    mut on_row: impl FnMut(&Row),
) -> Result<Vec<Row>, BenchError> {
    if opts.archs.is_empty() || opts.batches.is_empty() || opts.workloads.is_empty() {
        return Err(BenchError::Invalid(
            "nothing to run: give at least one architecture, batch size and workload".into(),
        ));
    }
    if opts.repeat == 0 || opts.batches.contains(&0) || opts.size == 0 {
        return Err(BenchError::Invalid(
            "repeat, batch sizes and size must be positive".into(),
        ));
    }
    // Unknown names fail before anything runs.
    for w in &opts.workloads {
        check_workload(w)?;
    }
    let mut rows = Vec::new();
    for arch in &opts.archs {
        let model = model(arch, opts)?;
        for &batch in &opts.batches {
            let x = random_batch(batch, opts.channels, opts.size, 1);
            for name in &opts.workloads {
                // A fresh workload per row: what one prepares (LRP's modified weights and their
                // cached filter layouts) is dropped with it, so a later row's peak memory is its
                // own job's, as on the Python side, where each row's hooks are removed after it.
                let row = time_row(arch, &model, &x, name, opts)?;
                on_row(&row);
                rows.push(row);
            }
        }
    }
    Ok(rows)
}

/// Reads the first value of a workload's result to the host. A GPU's sync waits for the queue
/// but reports no kernel that failed (cubecl records the failure and raises it only when data
/// are read); reading one value does, at the cost of a 4-byte transfer. A failed allocation
/// becomes the out-of-memory error naming `--batch` (now `batch`), anything else one line.
fn read_back_one_value(result: &T4, batch: usize) -> Result<(), BenchError> {
    let first = result
        .clone()
        .narrow(0, 0, 1)
        .narrow(1, 0, 1)
        .narrow(2, 0, 1)
        .narrow(3, 0, 1);
    first.try_to_data().map(|_| ()).map_err(|e| {
        let text = e.to_string();
        BenchError::Invalid(if crate::device::is_out_of_memory(&text) {
            format!(
                "out of device memory ({}); lower --batch (now {batch})",
                crate::device::first_line_of_cause(&text)
            )
        } else {
            let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
            format!("the device failed a kernel: {one_line}")
        })
    })
}

/// Times one workload on one batch.
fn time_row(
    arch: &str,
    model: &Model,
    x: &T4,
    name: &str,
    opts: &BenchOptions,
) -> Result<Row, BenchError> {
    let batch = x.dims()[0];
    // Reset first: the peak includes what preparing the workload allocates, as it did when the
    // warm-up run prepared it.
    let tracked = reset_peak_rss();
    let w = workload(name, model)?;
    // A GPU queues its work: each run ends when the device has done it, and one value of its
    // result is read back, so a kernel that failed is an error rather than a fast time.
    let finished = |result: T4| {
        crate::device::sync().map_err(BenchError::Invalid)?;
        read_back_one_value(&result, batch)
    };
    for _ in 0..opts.warmup {
        finished(w.run(model, x, None)?)?;
    }
    let mut per_image = Vec::with_capacity(opts.repeat);
    for _ in 0..opts.repeat {
        let start = Instant::now();
        finished(w.run(model, x, None)?)?;
        per_image.push(start.elapsed().as_secs_f64() * 1e3 / batch as f64);
    }
    let peak_rss_mib = if tracked { peak_rss_mib() } else { None };
    let per_node = if opts.per_node {
        let mut profile = Profile::new(model.graph.nodes.len());
        for _ in 0..opts.repeat {
            w.run(model, x, Some(&mut profile))?;
        }
        // Workloads that run through the explanation methods record no node times; a table of
        // zeros would read as "free", so they get none.
        (profile.runs > 0).then(|| node_times(&model.graph, &profile, batch))
    } else {
        None
    };
    Ok(Row {
        arch: arch.to_string(),
        workload: w.name().to_string(),
        batch,
        size: opts.size,
        ms_per_image: median(&per_image),
        min_ms_per_image: per_image.iter().copied().fold(f64::INFINITY, f64::min),
        repeat: opts.repeat,
        peak_rss_mib,
        per_node,
    })
}

fn node_times(graph: &Graph, profile: &Profile, batch: usize) -> Vec<NodeTime> {
    let per = (profile.runs.max(1) * batch) as f64;
    graph
        .nodes
        .iter()
        .enumerate()
        .map(|(id, node)| NodeTime {
            node: node.name.clone(),
            op: node.op.kind(),
            forward_ms: profile.forward[id].as_secs_f64() * 1e3 / per,
            backward_ms: profile.backward[id].as_secs_f64() * 1e3 / per,
        })
        .collect()
}

/// Per-node times summed by op kind: `(kind, forward ms, backward ms)`, slowest first.
pub(crate) fn by_op_kind(times: &[NodeTime]) -> Vec<(&'static str, f64, f64)> {
    let mut out: Vec<(&'static str, f64, f64)> = Vec::new();
    for t in times {
        match out.iter_mut().find(|(k, _, _)| *k == t.op) {
            Some(e) => {
                e.1 += t.forward_ms;
                e.2 += t.backward_ms;
            }
            None => out.push((t.op, t.forward_ms, t.backward_ms)),
        }
    }
    out.sort_by(|a, b| (b.1 + b.2).total_cmp(&(a.1 + a.2)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn peak_memory_grows_with_a_large_allocation() {
        if !reset_peak_rss() {
            return; // not Linux
        }
        let before = peak_rss_mib().unwrap();
        let big = vec![1u8; 64 << 20];
        std::hint::black_box(&big);
        let after = peak_rss_mib().unwrap();
        assert!(after >= before + 60.0, "{before} MiB → {after} MiB");
    }

    #[test]
    fn timed_runs_give_the_same_results_as_the_engine() {
        // The profiled forward pass must compute what the engine computes, node by node.
        let graph = zoo::build("small_cnn", 3, 3).unwrap();
        let params = init_params(&graph, 2).unwrap();
        let x = random_batch(2, 3, 16, 5);
        let mut profile = Profile::default();
        let timed = timed_forward(&graph, &params, &x, &mut profile).unwrap();
        let plain = crate::engine::forward(&graph, &params, x).unwrap();
        for id in 0..graph.nodes.len() {
            let a = crate::tensor::to_vec(timed.get(id).unwrap());
            let b = crate::tensor::to_vec(plain.get(id).unwrap());
            assert_eq!(a, b, "node {}", graph.nodes[id].name);
        }
        assert_eq!(profile.runs, 1);
        assert_eq!(profile.forward.len(), graph.nodes.len());
    }

    #[test]
    fn a_small_benchmark_yields_one_row_per_combination() {
        let opts = BenchOptions {
            archs: vec!["small_cnn".into()],
            batches: vec![1, 2],
            size: 16,
            classes: 4,
            repeat: 2,
            warmup: 0,
            per_node: true,
            ..BenchOptions::default()
        };
        let opts = BenchOptions {
            workloads: vec!["forward".into(), "gradient".into()],
            ..opts
        };
        let mut seen = 0;
        let rows = run(&opts, |_| seen += 1).unwrap();
        assert_eq!(rows.len(), 4);
        assert_eq!(seen, 4);
        for r in &rows {
            assert!(r.ms_per_image > 0.0 && r.min_ms_per_image <= r.ms_per_image);
            let nodes = r.per_node.as_ref().unwrap();
            let backward: f64 = nodes.iter().map(|n| n.backward_ms).sum();
            // Only the gradient workload runs backward rules.
            assert_eq!(backward > 0.0, r.workload == "gradient", "{}", r.workload);
        }
        let bad = BenchOptions {
            workloads: vec!["lrp-flat".into()],
            ..opts.clone()
        };
        let err = run(&bad, |_| {}).unwrap_err().to_string();
        assert!(err.contains("'lrp-flat'") && err.contains("crp32"), "{err}");
        // The explanation workloads run through the methods on the same model.
        let methods = BenchOptions {
            workloads: vec!["grad-cam".into(), "lrp".into(), "crp32".into()],
            batches: vec![2],
            ..opts
        };
        let rows = run(&methods, |_| {}).unwrap();
        let names: Vec<&str> = rows.iter().map(|r| r.workload.as_str()).collect();
        assert_eq!(names, ["grad-cam", "lrp", "crp32"]);
        // They record no node times, so they report no (all-zero) per-node table.
        assert!(rows.iter().all(|r| r.per_node.is_none()));
        let methods = BenchOptions {
            per_node: false,
            ..methods
        };
        // A second architecture in the same run gets its own prepared model.
        let two = BenchOptions {
            archs: vec!["small_cnn".into(), "vgg11".into()],
            workloads: vec!["crp32".into()],
            batches: vec![1],
            size: 32,
            repeat: 1,
            ..methods.clone()
        };
        assert_eq!(run(&two, |_| {}).unwrap().len(), 2);
        assert!(rows.iter().all(|r| r.ms_per_image > 0.0));
    }

    #[test]
    fn crp_conditions_on_the_named_layers_or_the_last_wide_convolution() {
        let opts = BenchOptions {
            classes: 2,
            size: 16,
            ..BenchOptions::default()
        };
        let m = model("small_cnn", &opts).unwrap();
        let last = crp_layer("small_cnn", &m).unwrap();
        let id = m.graph.find(&last).unwrap();
        let crate::graph::Op::Conv2d(c) = &m.graph.nodes[id].op else {
            panic!("{last} is not a convolution");
        };
        assert!(m.params.get(&c.weight).unwrap().shape[0] >= CRP_CONCEPTS);
        let later_convs = m.graph.nodes[id + 1..]
            .iter()
            .filter(|n| matches!(n.op, crate::graph::Op::Conv2d(_)))
            .count();
        assert_eq!(later_convs, 0);
        assert_eq!(crp_layer("resnet50", &m).as_deref(), Some("layer3.0.conv2"));
    }
}
