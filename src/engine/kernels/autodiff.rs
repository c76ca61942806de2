//! Our convolution and max-pooling kernels as differentiable operations, so that training
//! (burn's autodiff) runs them too. The convolution's forward pass is [`conv::conv2d_forward`],
//! and its backward step gives the input gradient with [`conv::conv2d_input_adjoint`] and the
//! weight gradient with [`conv::conv2d_weight_gradient`] (one GEMM over the batch's columns).
//! Max pooling is [`pool::max_pool2d`], its backward step [`pool::max_pool2d_adjoint`] with the
//! arg-max indices of the forward pass.
//!
//! burn computes the weight gradient of a convolution as another convolution with batch and
//! channels swapped, whose output is only `kH × kW` pixels large; its GEMMs then have a handful of
//! rows and ran at a fraction of the machine's speed (about 60 % of a ResNet-18 training step).
//! burn's max pooling with indices took a fifth of a small-CNN training step.
//!
//! The operation is a burn backend extension: implemented for the Flex backend (plain tensors)
//! and for `Autodiff<Flex>` (recording the backward step), and reached from the dispatching
//! `Tensor` through the generated `Dispatch` implementation.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, TensorMetadata, backend_extension};
use burn::prelude::*;
use burn::tensor::TensorData;

use burn::backend::tensor::IntTensor;

use super::conv::{self, ConvGeometry};
use super::pool::{self, PoolGeometry};
use super::values;

/// Backends that run our kernels: dense convolution (one group, no bias) and max pooling.
#[backend_extension(Flex, Autodiff)]
pub trait OwnKernels: Backend {
    /// `y = W ⋆ x` for `x: [N, C_in, H, W]`, `weight: [C_out, C_in, kH, kW]`.
    fn dense_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        g: ConvGeometry,
    ) -> FloatTensor<Self>;

    /// Max pooling of `x: [N, C, H, W]` with geometry `g` (planes `N·C`): the pooled values and
    /// the arg-max indices (flat within each input plane, first maximum on ties).
    fn dense_max_pool2d(
        x: FloatTensor<Self>,
        g: PoolGeometry,
    ) -> (FloatTensor<Self>, IntTensor<Self>);
}

/// A Flex tensor of `shape` holding `values`.
fn flex(values: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

impl OwnKernels for Flex {
    fn dense_conv2d(x: FlexTensor, weight: FlexTensor, g: ConvGeometry) -> FlexTensor {
        let y = conv::conv2d_forward(&values(&x), &values(&weight), None, &g);
        flex(y, [g.batch, g.c_out, g.out_hw[0], g.out_hw[1]])
    }

    fn dense_max_pool2d(x: FlexTensor, g: PoolGeometry) -> (FlexTensor, FlexTensor) {
        let (y, idx, _) = max_pool_flex(&x, g);
        (y, idx)
    }
}

/// The recorded backward step of [`OwnKernels::dense_max_pool2d`]: keeps the arg-max indices, the
/// input's shape and the geometry.
#[derive(Debug)]
struct MaxPoolBackward;

impl Backward<Flex, 1> for MaxPoolBackward {
    type State = (std::sync::Arc<Vec<i64>>, [usize; 4], PoolGeometry);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (indices, x_shape, g) = ops.state;
        if let Some(node) = node_x {
            let dx = pool::max_pool2d_adjoint(&values(&dy), &indices, &g, g.planes);
            grads.register::<Flex>(node.id, flex(dx, x_shape));
        }
    }
}

/// Our max pooling on a Flex tensor `[N, C, H, W]`: values and indices as Flex tensors, and the
/// indices as plain values for a backward step.
fn max_pool_flex(x: &FlexTensor, g: PoolGeometry) -> (FlexTensor, FlexTensor, Vec<i64>) {
    let [n, c, ..]: [usize; 4] = x.shape().dims();
    let (y, idx) = pool::max_pool2d(&values(x), &g);
    let shape = [n, c, g.out_hw[0], g.out_hw[1]];
    let idx_tensor = FlexTensor::from_data(TensorData::new(idx.clone(), shape));
    (flex(y, shape), idx_tensor, idx)
}

/// The recorded backward step of [`OwnKernels::dense_conv2d`]: keeps the input, the weight and
/// the geometry.
#[derive(Debug)]
struct DenseConvBackward;

impl Backward<Flex, 2> for DenseConvBackward {
    type State = (FlexTensor, FlexTensor, ConvGeometry);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_weight] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let (x, weight, g) = ops.state;
        let dy = values(&dy);
        if let Some(node) = node_x {
            let dx = conv::conv2d_input_adjoint(&dy, &values(&weight), &g);
            grads.register::<Flex>(node.id, flex(dx, [g.batch, g.c_in, g.in_hw[0], g.in_hw[1]]));
        }
        if let Some(node) = node_weight {
            let dw = conv::conv2d_weight_gradient(&values(&x), &dy, &g);
            let shape = [g.c_out, g.c_in, g.kernel[0], g.kernel[1]];
            grads.register::<Flex>(node.id, flex(dw, shape));
        }
    }
}

impl<C: CheckpointStrategy> OwnKernels for Autodiff<Flex, C> {
    fn dense_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        g: ConvGeometry,
    ) -> FloatTensor<Self> {
        match DenseConvBackward
            .prepare::<C>([x.node(), weight.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, weight) = (x.primitive().clone(), weight.primitive().clone());
                let y = Flex::dense_conv2d(x.clone(), weight.clone(), g);
                prep.finish((x, weight, g), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::dense_conv2d(
                x.into_primitive(),
                weight.into_primitive(),
                g,
            )),
        }
    }

    fn dense_max_pool2d(
        x: FloatTensor<Self>,
        g: PoolGeometry,
    ) -> (FloatTensor<Self>, IntTensor<Self>) {
        match MaxPoolBackward
            .prepare::<C>([x.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let input = x.primitive();
                let x_shape: [usize; 4] = input.shape().dims();
                let (y, idx_tensor, idx) = max_pool_flex(input, g);
                (
                    prep.finish((std::sync::Arc::new(idx), x_shape, g), y),
                    idx_tensor,
                )
            }
            OpsKind::UnTracked(prep) => {
                let (y, idx_tensor, _) = max_pool_flex(x.primitive(), g);
                (prep.finish(y), idx_tensor)
            }
        }
    }
}

/// [`OwnKernels::dense_conv2d`] on dispatching tensors (plain or autodiff, on the Flex device).
pub fn dense_conv2d(x: Tensor<4>, weight: Tensor<4>, g: ConvGeometry) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as OwnKernels>::dense_conv2d(
        x.into_dispatch(),
        weight.into_dispatch(),
        g,
    ))
}

/// [`OwnKernels::dense_max_pool2d`] on dispatching tensors (plain or autodiff, on the Flex device).
pub fn dense_max_pool2d(x: Tensor<4>, g: PoolGeometry) -> (Tensor<4>, Tensor<4, Int>) {
    let (y, idx) = <Dispatch as OwnKernels>::dense_max_pool2d(x.into_dispatch(), g);
    (Tensor::from_dispatch(y), Tensor::from_dispatch(idx))
}
