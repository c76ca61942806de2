//! Where a run's tensors live: the CPU (burn's Flex backend with our kernels,
//! `src/engine/kernels`) or a GPU through burn's wgpu backend (Vulkan, Metal, DirectX; built
//! with the cargo feature `gpu`).
//!
//! The device is chosen once per run with [`use_device`] and read by every tensor the library
//! makes from host values ([`crate::tensor::device`]), so a model loaded after the choice has
//! its parameters there and every pass runs there; data come back to the host only where a
//! result is written or a small statistic is read. The choice is process-wide: one run, one
//! device (as `--device` on the command line). A model loaded before the choice moves with
//! [`crate::Model::to_device`].
//!
//! On a wgpu device our CPU kernels step aside (they only take Flex tensors) and burn's generic
//! tensor operations run every convolution, adjoint, pooling, dense layer and element-wise step.
//! Details and what was measured: docs/gpu.md.

use std::fmt;
use std::str::FromStr;

use burn::prelude::Device;

/// The device a run asks for (`--device`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    /// The CPU: burn's Flex backend with our kernels (the default).
    #[default]
    Cpu,
    /// The first GPU adapter wgpu finds, on whichever graphics API the machine offers (Vulkan
    /// on Linux and Windows, Metal on macOS; a CPU Vulkan driver such as Mesa's lavapipe counts).
    Gpu,
    /// A wgpu adapter on Vulkan only.
    Vulkan,
    /// A wgpu adapter on Metal only.
    Metal,
}

impl DeviceKind {
    /// The name `--device` takes.
    pub fn name(self) -> &'static str {
        match self {
            DeviceKind::Cpu => "cpu",
            DeviceKind::Gpu => "gpu",
            DeviceKind::Vulkan => "vulkan",
            DeviceKind::Metal => "metal",
        }
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DeviceKind {
    type Err = String;

    /// `cpu`, `gpu` (also `wgpu`), `vulkan`, `metal`, any case.
    fn from_str(name: &str) -> Result<Self, String> {
        match name.to_ascii_lowercase().as_str() {
            "cpu" => Ok(DeviceKind::Cpu),
            "gpu" | "wgpu" => Ok(DeviceKind::Gpu),
            "vulkan" => Ok(DeviceKind::Vulkan),
            "metal" => Ok(DeviceKind::Metal),
            _ => Err(format!(
                "unknown device {name:?}: expected cpu, gpu, vulkan or metal"
            )),
        }
    }
}

/// Why a device could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The binary was built without the `gpu` feature.
    #[error(
        "--device {0} needs a GPU build: this binary was built without the `gpu` feature \
         (cargo build --release --features gpu; see docs/gpu.md)"
    )]
    NotBuilt(DeviceKind),
    /// No usable adapter for the kind asked for.
    #[error("--device {kind}: no usable adapter ({reason}); adapters wgpu sees: {adapters}")]
    NoAdapter {
        /// The kind asked for.
        kind: DeviceKind,
        /// What wgpu said.
        reason: String,
        /// The adapters listed, or `none`.
        adapters: String,
    },
}

/// One adapter wgpu sees, as `relevance bench --devices` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adapter {
    /// The adapter's name (e.g. `llvmpipe (LLVM 15.0.6, 256 bits)` for Mesa's lavapipe).
    pub name: String,
    /// The graphics API (`Vulkan`, `Metal`, `Dx12`, `Gl`).
    pub api: String,
    /// Discrete / integrated / virtual GPU, CPU or other.
    pub device_type: String,
    /// Driver name and version as reported.
    pub driver: String,
}

impl fmt::Display for Adapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}, {}, driver {})",
            self.name, self.api, self.device_type, self.driver
        )
    }
}

/// Whether this binary has the GPU device (the cargo feature `gpu`).
pub const GPU_BUILT: bool = cfg!(feature = "gpu");

/// Opens the device `kind` names and makes it the run's device ([`crate::tensor::device`]).
/// `cpu` always succeeds; the others fail with a one-line [`DeviceError`] listing the adapters
/// when the binary has no GPU backend or no adapter answers.
pub fn use_device(kind: DeviceKind) -> Result<Device, DeviceError> {
    let device = open(kind)?;
    crate::tensor::set_device(device.clone());
    let limit = match kind {
        DeviceKind::Cpu => None,
        gpu => wgpu_device::buffer_limit(gpu),
    };
    *RUN_BUFFER_LIMIT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = limit;
    Ok(device)
}

/// The largest buffer, in bytes, the run's device can bind to a kernel: wgpu's
/// `max_storage_buffer_binding_size`, or `max_buffer_size` where smaller (cubecl refuses a
/// larger allocation with "can't allocate buffer of size"). `None` on the CPU, which has no
/// such limit. Mesa's lavapipe binds at most 128 MiB (its `maxStorageBufferRange`), so a
/// batch whose largest activation is bigger must be split ([`crate::methods::fit`]).
pub fn buffer_limit() -> Option<u64> {
    *RUN_BUFFER_LIMIT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// [`buffer_limit`] of the device [`use_device`] chose last.
static RUN_BUFFER_LIMIT: std::sync::Mutex<Option<u64>> = std::sync::Mutex::new(None);

/// The device `kind` names, opened (a GPU device is initialised once per process and kept).
pub fn open(kind: DeviceKind) -> Result<Device, DeviceError> {
    match kind {
        DeviceKind::Cpu => Ok(Device::flex()),
        gpu => wgpu_device::open(gpu),
    }
}

/// The adapters wgpu sees on every graphics API it was built with; `Err` where the binary has
/// no GPU backend.
pub fn adapters() -> Result<Vec<Adapter>, DeviceError> {
    wgpu_device::adapters()
}

/// Waits until the run's device has finished the work queued on it (a GPU runs asynchronously;
/// on the CPU this returns at once), so a timing covers the work and not only its queuing.
pub fn sync() -> Result<(), String> {
    crate::tensor::device().sync().map_err(|e| format!("{e:?}"))
}

/// A description of the run's device for headers: `cpu`, or the wgpu adapter's name.
pub fn describe(kind: DeviceKind) -> String {
    match kind {
        DeviceKind::Cpu => "cpu".into(),
        gpu => match adapters().ok().and_then(|a| a.into_iter().next()) {
            Some(adapter) => format!("{gpu}: {adapter}"),
            None => gpu.to_string(),
        },
    }
}

/// A GPU allocation that failed while `work` ran in [`catch_out_of_memory`].
#[derive(Debug, thiserror::Error)]
#[error("--device {kind}: out of device memory ({detail}); {advice}")]
pub struct OutOfMemory {
    /// The device the run asked for.
    pub kind: DeviceKind,
    /// What burn, cubecl or wgpu said, on one line.
    pub detail: String,
    /// What to change, e.g. `lower --batch (now 32)`.
    pub advice: String,
}

/// Runs `work` on the run's device `kind` and turns a device allocation failure into
/// [`OutOfMemory`] carrying `advice` (the batch flag to lower and its value).
///
/// Why a panic is caught: burn's wgpu backend (through cubecl) does not return allocation
/// errors from the operation that allocates. A tensor operation only queues work; cubecl's
/// allocation error (`IoError::OutOfMemory`, or `BufferTooBig` for a buffer larger than the
/// device's largest) surfaces when a result is read (`Tensor::to_data` panics with it), and a
/// driver's out-of-memory reaches wgpu's uncaptured-error handler, which cubecl makes panic.
/// Threading a `Result` through every host read of the library would not catch the second
/// kind, so the failure is recognised by its message here, on the thread that reads. Any other
/// panic goes on as before. On the CPU `work` simply runs (an allocation failure there aborts).
pub fn catch_out_of_memory<T>(
    kind: DeviceKind,
    advice: &str,
    work: impl FnOnce() -> T,
) -> Result<T, OutOfMemory> {
    if kind == DeviceKind::Cpu {
        return Ok(work());
    }
    quiet_out_of_memory_panics();
    let was_catching = CATCHING.with(|c| c.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
    CATCHING.with(|c| c.set(was_catching));
    let payload = match result {
        Ok(value) => return Ok(value),
        Err(payload) => payload,
    };
    let detail = panic_text(&*payload)
        .filter(|text| is_out_of_memory(text))
        .map(first_line_of_cause);
    match detail {
        Some(detail) => Err(OutOfMemory {
            kind,
            detail,
            advice: advice.to_string(),
        }),
        None => std::panic::resume_unwind(payload),
    }
}

/// Whether a panic message is a device allocation failure as burn, cubecl and wgpu word it.
pub fn is_out_of_memory(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "out of device memory",     // cubecl IoError::OutOfMemory
        "can't allocate buffer",    // cubecl IoError::BufferTooBig
        "out-of-memory",            // cubecl LaunchError::OutOfMemory
        "out of memory",            // wgpu::Error::OutOfMemory, driver messages
        "greater than the maximum", // wgpu: buffer size above the device's limit
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

thread_local! {
    /// Whether this thread runs inside [`catch_out_of_memory`] (its allocation panics are
    /// reported as [`OutOfMemory`], so the panic hook stays silent about them).
    static CATCHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Installs, once, a panic hook that keeps quiet about allocation failures that
/// [`catch_out_of_memory`] will report, and hands every other panic to the previous hook.
fn quiet_out_of_memory_panics() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let caught = CATCHING.with(std::cell::Cell::get)
                && panic_text(info.payload()).is_some_and(is_out_of_memory);
            if !caught {
                previous(info);
            }
        }));
    });
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> Option<&str> {
    payload
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| payload.downcast_ref::<&str>().copied())
}

/// The line of a (multi-line, backtrace-carrying) panic message that names the failure.
pub(crate) fn first_line_of_cause(text: &str) -> String {
    let lines = || text.lines().map(str::trim).filter(|l| !l.is_empty());
    lines()
        .find(|l| is_out_of_memory(l))
        .or_else(|| lines().next())
        .unwrap_or("allocation failed")
        .to_string()
}

/// Whether `device` is the CPU device our kernels run on.
pub fn is_cpu(device: &Device) -> bool {
    *device == Device::flex()
}

#[cfg(feature = "gpu")]
mod wgpu_device {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use burn::prelude::Device;
    use burn::tensor::wgpu::{WgpuBackend, wgpu};

    use super::{Adapter, DeviceError, DeviceKind};

    /// Devices opened so far with their buffer limit: wgpu's runtime for one selector can be
    /// initialised only once per process, so a second `open` of the same kind hands back the
    /// first device.
    static OPENED: Mutex<Option<HashMap<DeviceKind, (Device, u64)>>> = Mutex::new(None);

    pub fn buffer_limit(kind: DeviceKind) -> Option<u64> {
        let opened = OPENED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        opened.as_ref()?.get(&kind).map(|(_, limit)| *limit)
    }

    pub fn open(kind: DeviceKind) -> Result<Device, DeviceError> {
        let mut opened = OPENED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let opened = opened.get_or_insert_with(HashMap::new);
        if let Some((device, _)) = opened.get(&kind) {
            return Ok(device.clone());
        }
        let api = match kind {
            DeviceKind::Vulkan => WgpuBackend::Vulkan,
            DeviceKind::Metal => WgpuBackend::Metal,
            _ => WgpuBackend::Auto,
        };
        let (device, setup) = Device::wgpu_options()
            .graphics_api(api)
            .init_with_setup()
            .map_err(|e| no_adapter(kind, e.to_string()))?;
        // The same bound cubecl places on one allocation (its largest memory page).
        let limits = setup.device.limits();
        let limit = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size);
        opened.insert(kind, (device.clone(), limit));
        Ok(device)
    }

    fn no_adapter(kind: DeviceKind, reason: String) -> DeviceError {
        let listed = adapters().unwrap_or_default();
        let adapters = if listed.is_empty() {
            "none (on Linux install a Vulkan driver, e.g. Debian's mesa-vulkan-drivers)".into()
        } else {
            listed
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        };
        // wgpu's messages can span lines; the error is one line.
        let reason = reason.split_whitespace().collect::<Vec<_>>().join(" ");
        DeviceError::NoAdapter {
            kind,
            reason,
            adapters,
        }
    }

    pub fn adapters() -> Result<Vec<Adapter>, DeviceError> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
            backends: wgpu::Backends::all(),
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        });
        let found = block_on(instance.enumerate_adapters(wgpu::Backends::all()));
        Ok(found
            .iter()
            .map(|adapter| {
                let info = adapter.get_info();
                Adapter {
                    name: info.name,
                    api: format!("{:?}", info.backend),
                    device_type: format!("{:?}", info.device_type),
                    driver: format!("{} {}", info.driver, info.driver_info)
                        .trim()
                        .to_string(),
                }
            })
            .collect())
    }

    /// Runs a future to completion on this thread (wgpu's native adapter enumeration is ready
    /// at once; the loop only guards against a future that is not).
    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        loop {
            if let std::task::Poll::Ready(value) = future.as_mut().poll(&mut context) {
                return value;
            }
            std::thread::yield_now();
        }
    }
}

#[cfg(not(feature = "gpu"))]
mod wgpu_device {
    use burn::prelude::Device;

    use super::{Adapter, DeviceError, DeviceKind};

    pub fn open(kind: DeviceKind) -> Result<Device, DeviceError> {
        Err(DeviceError::NotBuilt(kind))
    }

    pub fn adapters() -> Result<Vec<Adapter>, DeviceError> {
        Err(DeviceError::NotBuilt(DeviceKind::Gpu))
    }

    pub fn buffer_limit(_kind: DeviceKind) -> Option<u64> {
        None
    }
}
