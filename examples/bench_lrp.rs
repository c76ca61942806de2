//! Per-image timings of LRP (`lrp-epsilon-plus-flat`) and CRP (32 concepts) on resnet50 and vgg16
//! at 224×224, with a breakdown of where the backward pass spends its time (per op kind and per
//! rule). Compare with `tools/bench_lrp_torch.py` (zennit / zennit-crp) on the same machine:
//!
//! ```bash
//! RAYON_NUM_THREADS=2 cargo run --release --example bench_lrp [-- repeats]
//! python3 tools/bench_lrp_torch.py
//! ```

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use relevance::engine::{Rule, RuleCtx, RuleMap, backward};
use relevance::graph::init::reference_params;
use relevance::graph::{Graph, Model, ModelCard, NodeId, zoo};
use relevance::methods::crp::conditional_relevance;
use relevance::methods::lrp::kernel::{LayerWeights, spatial, stabilize};
use relevance::methods::lrp::{Composite, LrpModel, LrpOptions};
use relevance::rng::Rng;
use relevance::tensor::{T4, from_vec, to_vec};

/// Wraps a rule map, timing every rule call by the node's op kind and rule name.
struct Timed<'a> {
    rules: Vec<TimedRule<'a>>,
}

struct TimedRule<'a> {
    inner: &'a dyn Rule,
    label: String,
    total: &'a Mutex<BTreeMap<String, (Duration, usize)>>,
}

impl Rule for TimedRule<'_> {
    fn backward(
        &self,
        ctx: &RuleCtx,
        signal: T4,
    ) -> Result<Vec<Option<T4>>, relevance::engine::EngineError> {
        let t0 = Instant::now();
        let out = self.inner.backward(ctx, signal)?;
        // Force the result so lazy work is charged to this node.
        for t in out.iter().flatten() {
            let _ = t
                .clone()
                .slice([0..1, 0..1, 0..1, 0..1])
                .into_scalar::<f32>();
        }
        let mut total = self.total.lock().unwrap();
        let e = total.entry(self.label.clone()).or_default();
        e.0 += t0.elapsed();
        e.1 += 1;
        Ok(out)
    }
}

impl RuleMap for Timed<'_> {
    fn rule(&self, _graph: &Graph, id: NodeId) -> &dyn Rule {
        &self.rules[id]
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// CPU time (user + system) of this process so far, from `/proc/self/stat` (Linux; zero
/// elsewhere). On a shared machine it measures the work done, whatever the wall clock says.
fn cpu_time() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

/// Median wall time and median CPU time of `repeats` runs after one warm-up.
fn time<T>(repeats: usize, mut f: impl FnMut() -> T) -> (Duration, Duration) {
    f();
    let runs: Vec<(Duration, Duration)> = (0..repeats)
        .map(|_| {
            let (t0, c0) = (Instant::now(), cpu_time());
            let out = f();
            std::hint::black_box(&out);
            (t0.elapsed(), cpu_time().saturating_sub(c0))
        })
        .collect();
    (
        median(runs.iter().map(|r| r.0).collect()),
        median(runs.iter().map(|r| r.1).collect()),
    )
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let repeats: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let mut rng = Rng::new(0);
    let x = from_vec(
        (0..3 * 224 * 224).map(|_| rng.normal()).collect(),
        [1, 3, 224, 224],
    );
    for (arch, crp_layer) in [("resnet50", "layer3.0.conv2"), ("vgg16", "features.21")] {
        let graph = zoo::build(arch, 1000, 3).unwrap();
        let params = reference_params(&graph).unwrap();
        let model = Model {
            graph,
            params,
            card: ModelCard::default(),
            source: Default::default(),
        };
        let t0 = Instant::now();
        let lrp = LrpModel::new(
            &model,
            Composite::epsilon_plus_flat(),
            &LrpOptions::default(),
        )
        .unwrap();
        let prepare = t0.elapsed();
        let forward = time(repeats, || lrp.forward(x.clone()).unwrap());
        let acts = lrp.forward(x.clone()).unwrap();
        let logits = to_vec(acts.get(lrp.logits_node()).unwrap());
        let target = (0..logits.len())
            .max_by(|&a, &b| logits[a].total_cmp(&logits[b]))
            .unwrap();
        let total = time(repeats, || lrp.attribute(&x, &[target]).unwrap().input);
        // Breakdown of one backward pass.
        let stats = Mutex::new(BTreeMap::new());
        let g = &lrp.canon.graph;
        let timed = Timed {
            rules: (0..g.nodes.len())
                .map(|id| {
                    let rule_name = lrp
                        .assignment
                        .get(id)
                        .map(|(_, r)| r.clone())
                        .unwrap_or_default();
                    TimedRule {
                        inner: lrp.rules().rule(g, id),
                        label: format!("{} / {rule_name}", g.nodes[id].op.kind()),
                        total: &stats,
                    }
                })
                .collect(),
        };
        let (seed, _) = lrp.start_relevance(&acts, &[target]).unwrap();
        let t0 = Instant::now();
        let _ = backward(
            g,
            &lrp.canon.params,
            &acts,
            lrp.logits_node(),
            seed,
            &timed,
            &[g.input()],
        )
        .unwrap();
        let backward_time = t0.elapsed();
        let layer = lrp.find(crp_layer).unwrap();
        let concepts: Vec<Vec<usize>> = (0..32).map(|c| vec![c]).collect();
        let crp = time(repeats.div_ceil(2), || {
            conditional_relevance(&lrp, &x, target, layer, &concepts, 32).unwrap()
        });
        println!(
            "{arch}: prepare {:.0} ms (once per model); wall / CPU time: forward {:.0} / {:.0} ms, \
             lrp-epsilon-plus-flat {:.0} / {:.0} ms per image (timed backward {:.0} ms), \
             CRP 32 concepts at {crp_layer} {:.0} / {:.0} ms",
            ms(prepare),
            ms(forward.0),
            ms(forward.1),
            ms(total.0),
            ms(total.1),
            ms(backward_time),
            ms(crp.0),
            ms(crp.1),
        );
        let mut rows: Vec<(String, (Duration, usize))> =
            stats.into_inner().unwrap().into_iter().collect();
        rows.sort_by_key(|b| std::cmp::Reverse(b.1.0));
        for (label, (d, n)) in rows.iter().take(8) {
            println!("    {label:<32} {:>7.1} ms over {n} nodes", ms(*d));
        }
        // Anatomy of the z+ rule: modified forward conv, stabilise-and-divide, transposed conv,
        // product with the input, summed over the z+ nodes.
        let mut parts = [Duration::ZERO; 4];
        for (id, (_, rule)) in lrp.assignment.iter().enumerate() {
            if rule != "zplus" {
                continue;
            }
            let node = &g.nodes[id];
            let w = LayerWeights::new(&node.op, &lrp.canon.params).unwrap();
            let pos = w.positive().clone();
            let xin = acts.get(node.inputs[0]).unwrap().clone();
            let r = acts.get(id).unwrap().clone();
            let hw = spatial(&xin);
            let t = Instant::now();
            let z = pos.forward(xin.clone()).unwrap();
            let _ = z
                .clone()
                .slice([0..1, 0..1, 0..1, 0..1])
                .into_scalar::<f32>();
            parts[0] += t.elapsed();
            let t = Instant::now();
            let s = r.div(stabilize(z, 1e-6));
            let _ = s
                .clone()
                .slice([0..1, 0..1, 0..1, 0..1])
                .into_scalar::<f32>();
            parts[1] += t.elapsed();
            let t = Instant::now();
            let c = pos.adjoint(s, hw);
            let _ = c
                .clone()
                .slice([0..1, 0..1, 0..1, 0..1])
                .into_scalar::<f32>();
            parts[2] += t.elapsed();
            let t = Instant::now();
            let out = xin.mul(c);
            let _ = out.slice([0..1, 0..1, 0..1, 0..1]).into_scalar::<f32>();
            parts[3] += t.elapsed();
        }
        println!(
            "    z+ anatomy: W+ conv {:.0} ms, stabilise + divide {:.0} ms, transposed conv {:.0} ms, × input {:.0} ms",
            ms(parts[0]),
            ms(parts[1]),
            ms(parts[2]),
            ms(parts[3])
        );
    }
}
