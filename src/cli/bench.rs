//! `relevance bench`: per-image time and peak memory of forward passes and input gradients.

use anyhow::Result;

use crate::bench::{BenchOptions, Row, Weights, by_op_kind, run};

/// Arguments of `relevance bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// Architectures, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "resnet50,vgg16")]
    pub arch: Vec<String>,
    /// Batch sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,8")]
    pub batch: Vec<usize>,
    /// Workloads, comma-separated: forward, gradient, grad-cam, lrp, crp32.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "forward,gradient,grad-cam,lrp,crp32"
    )]
    pub workload: Vec<String>,
    /// Input side in pixels.
    #[arg(long, default_value_t = 224)]
    pub size: usize,
    /// Output classes.
    #[arg(long, default_value_t = 1000)]
    pub classes: usize,
    /// Timed runs per row; the median is reported.
    #[arg(long, default_value_t = 5)]
    pub repeat: usize,
    /// Untimed warm-up runs per row.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Worker threads (default: one per CPU core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Use the parity fixtures' reference weights instead of a fresh initialisation.
    #[arg(long)]
    pub reference_weights: bool,
    /// Also time every node (in `repeat` extra runs) and print where the time goes.
    #[arg(long)]
    pub per_node: bool,
    /// Print one JSON object per row instead of a table.
    #[arg(long)]
    pub json: bool,
    /// List the GPU adapters wgpu sees (for `--device gpu`) and stop.
    #[arg(long)]
    pub devices: bool,
    /// Where the model runs.
    #[command(flatten)]
    pub device: super::device_args::DeviceArgs,
}

/// Runs the command.
pub fn run_bench(args: BenchArgs) -> Result<()> {
    if args.devices {
        return list_devices();
    }
    if let Some(n) = args.threads {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build_global()
            .map_err(|e| anyhow::anyhow!("cannot start {n} threads: {e}"))?;
    }
    let opts = BenchOptions {
        archs: args.arch,
        batches: args.batch,
        workloads: args.workload,
        size: args.size,
        classes: args.classes,
        repeat: args.repeat,
        warmup: args.warmup,
        weights: if args.reference_weights {
            Weights::Reference
        } else {
            Weights::Random
        },
        per_node: args.per_node,
        ..BenchOptions::default()
    };
    if !args.json {
        outln!(
            "relevance {} · device {} · {} threads · input {}×{} · median of {} runs after {} warm-up",
            env!("CARGO_PKG_VERSION"),
            crate::device::describe(args.device.device),
            rayon::current_num_threads(),
            opts.size,
            opts.size,
            opts.repeat,
            opts.warmup
        )?;
        outln!(
            "{:<16} {:<9} {:>5} {:>12} {:>12} {:>10}",
            "arch",
            "workload",
            "batch",
            "ms/image",
            "min ms/img",
            "peak MiB"
        )?;
    }
    // The rows are printed as they come; the first failed write (a closed pipe) is kept and
    // returned once the benchmark is done.
    let mut printed: std::io::Result<()> = Ok(());
    run(&opts, |row| {
        if printed.is_err() {
            return;
        }
        printed = if args.json {
            outln!("{}", serde_json::to_string(row).expect("rows serialise"))
        } else {
            print_row(row, opts.per_node)
        };
    })?;
    Ok(printed?)
}

/// `--devices`: the adapters wgpu sees, one a line, or why there are none.
fn list_devices() -> Result<()> {
    match crate::device::adapters() {
        Err(e) => outln!("no GPU device built in: {e}")?,
        Ok(adapters) if adapters.is_empty() => outln!(
            "the gpu feature is built in, but wgpu sees no adapter (on Linux: install a Vulkan \
             driver such as Debian's mesa-vulkan-drivers; see docs/gpu.md)"
        )?,
        Ok(adapters) => {
            for (i, adapter) in adapters.iter().enumerate() {
                outln!("{i}: {adapter}")?;
            }
        }
    }
    Ok(())
}

fn print_row(row: &Row, per_node_requested: bool) -> std::io::Result<()> {
    let peak = row
        .peak_rss_mib
        .map(|m| format!("{m:.0}"))
        .unwrap_or_else(|| "-".into());
    outln!(
        "{:<16} {:<9} {:>5} {:>12.2} {:>12.2} {:>10}",
        row.arch,
        row.workload,
        row.batch,
        row.ms_per_image,
        row.min_ms_per_image,
        peak
    )?;
    if per_node_requested && row.per_node.is_none() {
        outln!(
            "    (no per-node profile: the {} workload runs through the explanation method)",
            row.workload
        )?;
    }
    if let Some(nodes) = &row.per_node {
        let total: f64 = nodes.iter().map(|n| n.forward_ms + n.backward_ms).sum();
        outln!(
            "    per op kind (profiled runs, ms/image; nothing released early, so slightly slower):"
        )?;
        for (kind, f, b) in by_op_kind(nodes) {
            outln!(
                "      {kind:<20} forward {f:>9.2}  backward {b:>9.2}  {:>5.1} %",
                100.0 * (f + b) / total.max(f64::MIN_POSITIVE)
            )?;
        }
        let mut slowest: Vec<_> = nodes.iter().collect();
        slowest.sort_by(|a, b| {
            (b.forward_ms + b.backward_ms).total_cmp(&(a.forward_ms + a.backward_ms))
        });
        outln!("    slowest nodes:")?;
        for n in slowest.iter().take(10) {
            outln!(
                "      {:<32} {:<12} forward {:>8.2}  backward {:>8.2}",
                n.node,
                n.op,
                n.forward_ms,
                n.backward_ms
            )?;
        }
    }
    Ok(())
}
