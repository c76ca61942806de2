//! Small helpers around burn tensors: the run's device, host round trips and shape utilities.
//!
//! Every activation inside the engine is a rank-4 tensor `[N, C, H, W]`; flat feature vectors are
//! carried as `[N, F, 1, 1]` so that one tensor type flows through the whole graph.

use burn::prelude::*;
use burn::tensor::TensorData;

/// A rank-4 float tensor, the one activation type of the engine (`[N, C, H, W]`).
pub type T4 = Tensor<4>;

/// The run's device, once [`set_device`] chose one; `None` means the CPU.
static RUN_DEVICE: std::sync::RwLock<Option<Device>> = std::sync::RwLock::new(None);

/// The device the library makes its tensors on: burn's Flex CPU backend unless the run chose
/// another ([`crate::device::use_device`], `--device`).
pub fn device() -> Device {
    let chosen = RUN_DEVICE.read().unwrap_or_else(|p| p.into_inner());
    chosen.clone().unwrap_or_else(Device::flex)
}

/// Makes `device` the run's device for the whole process (normally through
/// [`crate::device::use_device`], which opens it first).
pub fn set_device(device: Device) {
    let cpu = crate::device::is_cpu(&device);
    *RUN_DEVICE.write().unwrap_or_else(|p| p.into_inner()) = (!cpu).then_some(device);
}

/// Builds a rank-`D` tensor on [`device`] from host values; `values.len()` must equal the product of `shape`.
pub fn from_vec<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
    debug_assert_eq!(values.len(), shape.iter().product::<usize>());
    Tensor::from_data(TensorData::new(values, shape), &device())
}

/// Copies a tensor of any rank to host memory in row-major order.
pub fn to_vec<const D: usize>(tensor: &Tensor<D>) -> Vec<f32> {
    tensor
        .to_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("float tensor data converts to f32")
}

/// Reads a one-element tensor as a scalar.
pub fn scalar<const D: usize>(tensor: &Tensor<D>) -> f32 {
    to_vec(tensor)[0]
}

/// Element count of a shape.
pub fn numel(shape: &[usize]) -> usize {
    shape.iter().product()
}

/// Largest absolute difference between two equally long slices (`f32::INFINITY` if lengths differ).
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return f32::INFINITY;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Largest absolute difference divided by the largest magnitude of the reference `b` (or 1 if `b` is all zero).
pub fn max_rel_diff(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().map(|x| x.abs()).fold(0.0f32, f32::max).max(1e-12);
    max_abs_diff(a, b) / scale
}
