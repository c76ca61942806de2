//! Our convolution kernels as a differentiable operation, so that training (burn's autodiff)
//! runs them too: the forward pass is [`conv::conv2d_forward`], and its backward step gives the
//! input gradient with [`conv::conv2d_input_adjoint`] and the weight gradient with
//! [`conv::conv2d_weight_gradient`] (one GEMM over the batch's columns).
//!
//! burn computes the weight gradient of a convolution as another convolution with batch and
//! channels swapped, whose output is only `kH × kW` pixels large; its GEMMs then have a handful of
//! rows and ran at a fraction of the machine's speed (about 60 % of a ResNet-18 training step).
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
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::prelude::*;
use burn::tensor::TensorData;

use super::conv::{self, ConvGeometry};
use super::values;

/// Backends that run our dense convolution (one group) with geometry `g`, without bias.
#[backend_extension(Flex, Autodiff)]
pub trait DenseConv: Backend {
    /// `y = W ⋆ x` for `x: [N, C_in, H, W]`, `weight: [C_out, C_in, kH, kW]`.
    fn dense_conv2d(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        g: ConvGeometry,
    ) -> FloatTensor<Self>;
}

/// A Flex tensor of `shape` holding `values`.
fn flex(values: Vec<f32>, shape: [usize; 4]) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

impl DenseConv for Flex {
    fn dense_conv2d(x: FlexTensor, weight: FlexTensor, g: ConvGeometry) -> FlexTensor {
        let y = conv::conv2d_forward(&values(&x), &values(&weight), None, &g);
        flex(y, [g.batch, g.c_out, g.out_hw[0], g.out_hw[1]])
    }
}

/// The recorded backward step of [`DenseConv::dense_conv2d`]: keeps the input, the weight and
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

impl<C: CheckpointStrategy> DenseConv for Autodiff<Flex, C> {
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
}

/// [`DenseConv::dense_conv2d`] on dispatching tensors (plain or autodiff, on the Flex device).
pub fn dense_conv2d(x: Tensor<4>, weight: Tensor<4>, g: ConvGeometry) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as DenseConv>::dense_conv2d(
        x.into_dispatch(),
        weight.into_dispatch(),
        g,
    ))
}
