//! The GPU device (`--device gpu`, burn's wgpu backend) against the CPU path: the same model,
//! input and method on both, compared within 1e-4 of the largest CPU value and with cosine
//! similarity ≥ 0.99999. The CPU path is itself held to PyTorch, zennit, zennit-crp and
//! pytorch-grad-cam by the parity fixtures (tests/methods, tests/engine), so agreement here
//! carries those references over to the GPU.
//!
//! Built with `--features gpu` the tests run when `RELEVANCE_GPU_TESTS=1` (`.ci/run` sets it
//! after installing Mesa's lavapipe, a Vulkan driver on the CPU); with the variable set and no
//! adapter they fail. Without the feature only the error a GPU request gives is checked.

#[cfg(feature = "gpu")]
mod batched;
#[cfg(feature = "gpu")]
mod fit;
#[cfg(feature = "gpu")]
mod parity;
mod split;
#[cfg(feature = "gpu")]
#[path = "../studies_support/mod.rs"]
mod studies_support;

use relevance::device::{DeviceError, DeviceKind, use_device};

/// Without the `gpu` feature a GPU request is a one-line error that names the feature; with it
/// and no adapter, one that lists the adapters. Either way the CPU stays the run's device.
#[test]
fn a_gpu_request_that_cannot_be_met_is_one_line_naming_the_fix() {
    let _guard = common::lock();
    if cfg!(feature = "gpu") {
        // An API no Linux machine has: Metal.
        if cfg!(target_os = "macos") {
            eprintln!("skipped on macOS: Metal exists there");
            return;
        }
        let err = use_device(DeviceKind::Metal).expect_err("Metal on Linux");
        let text = err.to_string();
        assert!(matches!(err, DeviceError::NoAdapter { .. }), "{text}");
        assert!(text.contains("adapters wgpu sees"), "{text}");
        assert!(!text.contains('\n'), "one line: {text}");
    } else {
        let err = use_device(DeviceKind::Gpu).expect_err("no gpu feature");
        let text = err.to_string();
        assert!(
            matches!(err, DeviceError::NotBuilt(DeviceKind::Gpu)),
            "{text}"
        );
        assert!(text.contains("--features gpu"), "{text}");
        assert!(!text.contains('\n'), "one line: {text}");
    }
    assert!(relevance::device::is_cpu(&relevance::tensor::device()));
}

#[test]
fn device_names_parse_as_the_flag_takes_them() {
    for (text, kind) in [
        ("cpu", DeviceKind::Cpu),
        ("GPU", DeviceKind::Gpu),
        ("wgpu", DeviceKind::Gpu),
        ("vulkan", DeviceKind::Vulkan),
        ("Metal", DeviceKind::Metal),
    ] {
        assert_eq!(text.parse::<DeviceKind>(), Ok(kind), "{text}");
    }
    let err = "cuda".parse::<DeviceKind>().unwrap_err();
    assert!(err.contains("expected cpu, gpu, vulkan or metal"), "{err}");
}

mod common {
    use std::sync::{Mutex, MutexGuard};

    /// The run's device is process-wide: tests that switch it take turns.
    pub fn lock() -> MutexGuard<'static, ()> {
        static LOCK: Mutex<()> = Mutex::new(());
        LOCK.lock().unwrap_or_else(|p| p.into_inner())
    }
}
