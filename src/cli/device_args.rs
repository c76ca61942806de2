//! `--device`, shared by the commands that run a model (predict, explain, concepts, atlas, the
//! studies, train, bench): which device the run's tensors live on (see [`crate::device`]).

use crate::device::DeviceKind;

/// The device flag.
#[derive(clap::Args, Debug, Clone, Copy, Default)]
pub struct DeviceArgs {
    /// Where the model runs: cpu (default; our CPU kernels), gpu (the first GPU adapter wgpu
    /// finds: Vulkan, Metal or DirectX), vulkan or metal. GPU devices need a binary built with
    /// `--features gpu` and a driver (docs/gpu.md); `relevance bench --devices` lists adapters.
    #[arg(long, value_name = "DEVICE", default_value = "cpu",
          value_parser = str::parse::<DeviceKind>)]
    pub device: DeviceKind,
}
