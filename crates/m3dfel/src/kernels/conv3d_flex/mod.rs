//! The backbone's convolution on Burn's CPU backend (Flex), for inference and training.
//!
//! Forward: Winograd's F(4×4, 3×3) ([`winograd`]) for the stride-1 3×3×3 convolutions of
//! the first two stages (4× less arithmetic), the direct convolution
//! ([`direct`]) for the others, with bias, residual and ReLU applied as the output is
//! written, wherever the CPU has the vector instructions the direct convolution is written
//! for (x86-64 AVX2 + FMA or AVX-512, WebAssembly SIMD); elsewhere Burn's own convolution.
//! In inference, weights rearranged for a kernel are kept while the weights live ([`kept`]).
//! Training (`Autodiff<Flex>`) has its own backward pass: dX by the same forward
//! convolution of the output gradient with the flipped, transposed weights (stride 1), or
//! by im2col + GEMM (strided convolutions); dW by im2col + GEMM ([`gemm`]).
//!
//! Burn's own Flex convolution (0.21) transposes the input to NDHWC and the weights on
//! every call, fills an im2col buffer per tile and scatters each GEMM result into the
//! NCDHW output, then makes separate passes for bias, residual and ReLU.

mod direct;
mod epilogue;
mod gemm;
mod kept;
mod scratch;
pub mod winograd;

use burn::backend::Autodiff;
use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Bytes, DType, Shape, Tensor, TensorPrimitive};
use burn_flex::{FlexTensor, Layout};

use crate::backbone::conv::{Conv3dBackend, ConvEpilogue, conv3d_portable};
/// The direct convolution runs on [`best_isa`]'s instruction set (with AVX-512, layers whose
/// output channels are not a multiple of 64 take AVX2), or Burn's own convolution where the
/// CPU has none.
pub use crate::kernels::simd::{Isa, best_isa};

/// One of these kernels, chosen by the caller (tests and benchmarks) rather than by
/// [`Conv3dBackend`]'s dispatch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// The direct convolution with this instruction set (one of [`Isa::available`]).
    Direct(Isa),
    /// Winograd's F(4×4, 3×3) ([`winograd`]), for the convolutions where
    /// [`winograd::applies`]; its matrix products choose their own instructions.
    Winograd,
}

/// epilogue(conv3d(x) + bias) by `kernel`. f32, one group, no dilation. Weights rearranged
/// for the kernel are kept, as in inference.
pub fn conv3d_with(
    kernel: Kernel,
    x: Tensor<Flex, 5>,
    weight: Tensor<Flex, 5>,
    bias: Option<Tensor<Flex, 1>>,
    options: ConvOptions<3>,
    epilogue: ConvEpilogue<Flex>,
) -> Tensor<Flex, 5> {
    match kernel {
        Kernel::Direct(isa) => assert!(Isa::available().contains(&isa), "{isa:?} is not available on this CPU"),
        Kernel::Winograd => assert!(
            winograd::applies(&x.dims(), &weight.dims(), &options),
            "Winograd's F(4×4, 3×3) does not apply to this convolution"
        ),
    }
    on_primitives(x, weight, bias, epilogue, |x, w, b, r, relu| match kernel {
        Kernel::Direct(isa) => direct::conv3d_f32(isa, x, w, b, r, &options, relu, true),
        Kernel::Winograd => winograd::conv3d_f32(x, w, b, r, relu, true),
    })
}

/// `convolution`(x, weight, bias, residual, relu) on the tensors' Flex primitives.
fn on_primitives(
    x: Tensor<Flex, 5>,
    weight: Tensor<Flex, 5>,
    bias: Option<Tensor<Flex, 1>>,
    epilogue: ConvEpilogue<Flex>,
    convolution: impl FnOnce(&FlexTensor, &FlexTensor, Option<&FlexTensor>, Option<&FlexTensor>, bool) -> FlexTensor,
) -> Tensor<Flex, 5> {
    let primitive = |t: Tensor<Flex, 5>| t.into_primitive().tensor();
    let out = convolution(
        &primitive(x),
        &primitive(weight),
        bias.map(|b| b.into_primitive().tensor()).as_ref(),
        epilogue.residual.map(primitive).as_ref(),
        epilogue.relu,
    );
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

/// epilogue(conv3d(x) + bias) the fastest way these kernels have: Winograd where it
/// applies (4× less arithmetic), else the direct convolution with `isa` (or AVX2 where
/// AVX-512 fits the layer badly). Rearranged weights are kept if `keep` (inference).
#[allow(clippy::too_many_arguments)]
fn convolve(
    isa: Isa,
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
    residual: Option<&FlexTensor>,
    options: &ConvOptions<3>,
    relu: bool,
    keep: bool,
) -> FlexTensor {
    let weight_shape = weight.layout().shape();
    if winograd::applies(x.layout().shape(), weight_shape, options) {
        winograd::conv3d_f32(x, weight, bias, residual, relu, keep)
    } else {
        direct::conv3d_f32(isa.for_output_channels(weight_shape[0]), x, weight, bias, residual, options, relu, keep)
    }
}

impl Conv3dBackend for Flex {
    fn conv3d_fused(
        x: Tensor<Self, 5>,
        weight: Tensor<Self, 5>,
        bias: Option<Tensor<Self, 1>>,
        options: ConvOptions<3>,
        epilogue: ConvEpilogue<Self>,
    ) -> Tensor<Self, 5> {
        let dtypes = [Some(x.dtype()), Some(weight.dtype()), bias.as_ref().map(Tensor::dtype)]
            .into_iter()
            .chain([epilogue.residual.as_ref().map(Tensor::dtype)]);
        match best_isa() {
            Some(isa) if supported(dtypes, &options) => {
                on_primitives(x, weight, bias, epilogue, |x, w, b, r, relu| convolve(isa, x, w, b, r, &options, relu, true))
            }
            _ => conv3d_portable(x, weight, bias, options, epilogue),
        }
    }
}

/// Training on the CPU: a bias-free convolution with no epilogue (the backbone's, before
/// its BatchNorm) runs the kernels above forward and backward; anything else takes Burn's.
impl<C: CheckpointStrategy> Conv3dBackend for Autodiff<Flex, C> {
    fn conv3d_fused(
        x: Tensor<Self, 5>,
        weight: Tensor<Self, 5>,
        bias: Option<Tensor<Self, 1>>,
        options: ConvOptions<3>,
        epilogue: ConvEpilogue<Self>,
    ) -> Tensor<Self, 5> {
        let plain = bias.is_none() && epilogue.residual.is_none() && !epilogue.relu;
        let isa = best_isa().filter(|_| plain && supported([Some(x.dtype()), Some(weight.dtype())].into_iter(), &options));
        let Some(isa) = isa else {
            return conv3d_portable(x, weight, bias, options, epilogue);
        };
        let (x, weight) = (x.into_primitive().tensor(), weight.into_primitive().tensor());
        let out = convolve(isa, &x.primitive, &weight.primitive, None, None, &options, false, false);
        let out = match Conv3dFlexBackward.prepare::<C>([x.node.clone(), weight.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((x.primitive, weight.primitive, options, isa), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        };
        Tensor::from_primitive(TensorPrimitive::Float(out))
    }
}

/// The convolutions these kernels cover: f32 throughout, one group, no dilation.
fn supported(dtypes: impl Iterator<Item = Option<DType>>, options: &ConvOptions<3>) -> bool {
    dtypes.flatten().all(|dtype| dtype == DType::F32) && options.groups == 1 && options.dilation == [1; 3]
}

/// The backward step of the training convolution; its state is (x, weight, options, isa).
#[derive(Debug)]
struct Conv3dFlexBackward;

impl Backward<Flex, 2> for Conv3dFlexBackward {
    type State = (FlexTensor, FlexTensor, ConvOptions<3>, Isa);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [x_node, weight_node] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let (x, weight, options, isa) = ops.state;
        let kernel = &weight.layout().shape()[2..];
        // dX as a convolution of dY needs stride 1 and padding ≤ kernel − 1 (then its own
        // padding is kernel − 1 − padding and its output has x's size).
        let direct_x_grad = options.stride == [1; 3] && (0..3).all(|d| options.padding[d] < kernel[d]);
        let (gemm_x_grad, weight_grad) =
            gemm::conv3d_backward_f32(&x, &weight, &grad, &options, x_node.is_some() && !direct_x_grad);
        if let Some(node) = x_node {
            let x_grad = match gemm_x_grad {
                Some(x_grad) => x_grad,
                None => {
                    let padding = std::array::from_fn(|d| kernel[d] - 1 - options.padding[d]);
                    let options = ConvOptions::new([1; 3], padding, [1; 3], 1);
                    convolve(isa, &grad, &flipped_transpose(&weight), None, None, &options, false, false)
                }
            };
            grads.register::<Flex>(node.id, x_grad);
        }
        if let Some(node) = weight_node {
            grads.register::<Flex>(node.id, weight_grad);
        }
    }
}

/// [Cout, Cin, kT, kH, kW] → [Cin, Cout, kT, kH, kW] with every kernel reversed in T, H
/// and W: the weights of the convolution that maps dY to dX.
fn flipped_transpose(weight: &FlexTensor) -> FlexTensor {
    let weight = weight.to_contiguous();
    let shape = weight.layout().shape();
    let (out_channels, in_channels, taps) = (shape[0], shape[1], shape[2] * shape[3] * shape[4]);
    let values: &[f32] = weight.storage();
    let mut flipped = vec![0.0f32; values.len()];
    for co in 0..out_channels {
        for ci in 0..in_channels {
            let source = &values[(co * in_channels + ci) * taps..][..taps];
            let target = &mut flipped[(ci * out_channels + co) * taps..][..taps];
            target.iter_mut().zip(source.iter().rev()).for_each(|(t, &s)| *t = s);
        }
    }
    let flipped_shape = Shape::from(vec![in_channels, out_channels, shape[2], shape[3], shape[4]]);
    FlexTensor::new(Bytes::from_elems(flipped), Layout::contiguous(flipped_shape), DType::F32)
}
