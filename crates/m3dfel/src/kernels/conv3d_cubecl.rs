//! The backbone's convolution on Burn's GPU backends (CubeCL: CUDA and wgpu, natively and in
//! the browser), forward and backward, with kernels the project chooses instead of Burn's
//! autotuner.
//!
//! Burn's own `conv3d` on these backends asks its autotuner, which compiles and benchmarks
//! every candidate kernel for every layer shape before the first step (forward 8 candidates,
//! input gradient 6, weight gradient 7 plus a nested forward tuning of 8 inside the weight
//! gradient's fallback): hundreds of compilations, minutes before a training step on CUDA.
//! Here each layer gets one kernel, chosen from what the device can do ([`Choice`]):
//! - a 1×1×1 convolution without padding (R3D-18's stride-2 shortcut): a strided slice and
//!   one matrix product (tensor ops, so their gradients are Burn's);
//! - any other: the implicit GEMM on tensor cores where the device has them (CUDA), Burn's
//!   direct convolution elsewhere. An implicit GEMM that cannot be set up for a layer falls
//!   back to the direct convolution with one warning line per layer shape.
//!
//! Training (`Autodiff`) has its own backward step with the same choice: dX by the implicit
//! GEMM (stride 1, tensor cores) or Burn's transposed convolution, dW as a convolution of the
//! input with the output gradient (batch and channel axes swapped), by the forward choice,
//! so that nothing reaches the autotuner's nested tuning.
//!
//! [`GpuKernels::Autotune`] keeps Burn's autotuned path, for comparison (builds with the
//! `autotune` feature).

use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{DType, Shape, Slice, Tensor, TensorPrimitive, backend::Backend};
use burn_cubecl::kernel::conv::{ConvStrategy, conv_data_backward, conv_forward};
use burn_cubecl::kernel::{into_contiguous, slice};
use burn_cubecl::ops::permute;
use burn_cubecl::tensor::CubeTensor;
use burn_cubecl::{BoolElement, CubeBackend, CubeRuntime, FloatElement, IntElement};

use crate::backbone::conv::{Conv3dBackend, ConvEpilogue, conv3d_portable};

/// Who chooses the kernels of the backbone's convolutions on GPU backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GpuKernels {
    /// The project, per layer and device (this module): nothing is tuned at run time.
    Fixed,
    /// Burn's autotuner: every candidate compiled and timed for every layer shape.
    Autotune,
}

/// Set by [`set_gpu_kernels`]; [`GpuKernels::Fixed`] unless asked otherwise.
static AUTOTUNE: AtomicBool = AtomicBool::new(false);

/// This build has no autotuner (built without the `autotune` feature).
#[derive(Debug, thiserror::Error)]
#[error("this build has no autotuner: rebuild with `--features autotune` to use --gpu-kernels autotune")]
pub struct AutotuneUnavailable;

/// Chooses who picks the GPU convolution kernels, for the whole process (before the first
/// GPU call: kernels already compiled stay).
pub fn set_gpu_kernels(kernels: GpuKernels) -> Result<(), AutotuneUnavailable> {
    if kernels == GpuKernels::Autotune && !cfg!(feature = "autotune") {
        return Err(AutotuneUnavailable);
    }
    AUTOTUNE.store(kernels == GpuKernels::Autotune, Ordering::Relaxed);
    Ok(())
}

/// The current choice ([`set_gpu_kernels`]).
pub fn gpu_kernels() -> GpuKernels {
    if AUTOTUNE.load(Ordering::Relaxed) { GpuKernels::Autotune } else { GpuKernels::Fixed }
}

/// The kernel a convolution runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// 1×1×1, no padding: strided slice + matrix product.
    Pointwise,
    /// Implicit GEMM on tensor cores (CMMA), falling back to [`Choice::Direct`].
    ImplicitGemm,
    /// Burn's direct convolution (and, backward, its transposed convolution).
    Direct,
}

/// The kernel for a convolution with `weight_shape` [Cout, Cin, kT, kH, kW] on a device that
/// has tensor cores (`tensor_cores`) or not.
pub fn choose(weight_shape: &[usize], options: &ConvOptions<3>, tensor_cores: bool) -> Choice {
    if weight_shape[2..] == [1, 1, 1] && options.padding == [0; 3] && options.dilation == [1; 3] {
        Choice::Pointwise
    } else if tensor_cores {
        Choice::ImplicitGemm
    } else {
        Choice::Direct
    }
}

/// Whether the device behind `tensor` multiplies matrices on tensor cores (CMMA).
fn has_tensor_cores<R: CubeRuntime>(tensor: &CubeTensor<R>) -> bool {
    !tensor.client.features().matmul.cmma.is_empty()
}

/// The layers (by what they compute) whose implicit GEMM failed: told once, then direct.
static IMPLICIT_GEMM_FAILED: Mutex<Option<HashSet<String>>> = Mutex::new(None);

/// `implicit_gemm()`, or `direct()` after one warning line per `layer` if it fails.
fn implicit_gemm_or_direct<T, E: std::fmt::Debug>(
    layer: String,
    implicit_gemm: impl FnOnce() -> Result<T, E>,
    direct: impl FnOnce() -> T,
) -> T {
    let known_to_fail = IMPLICIT_GEMM_FAILED.lock().unwrap().as_ref().is_some_and(|failed| failed.contains(&layer));
    if known_to_fail {
        return direct();
    }
    match implicit_gemm() {
        Ok(out) => out,
        Err(error) => {
            eprintln!("warning: the implicit GEMM cannot run {layer} on this GPU ({error:?}); using the direct convolution");
            IMPLICIT_GEMM_FAILED.lock().unwrap().get_or_insert_with(HashSet::new).insert(layer);
            direct()
        }
    }
}

fn describe(what: &str, shapes: [&Shape; 2], options: &ConvOptions<3>) -> String {
    format!("{what} of input {} with weights {}, stride {:?}, padding {:?}", shapes[0], shapes[1], options.stride, options.padding)
}

/// conv3d(x, weight) on the primitives, by `choice` (not [`Choice::Pointwise`]).
fn forward<R: CubeRuntime>(x: CubeTensor<R>, weight: CubeTensor<R>, bias: Option<CubeTensor<R>>, options: &ConvOptions<3>, choice: Choice) -> CubeTensor<R> {
    let direct = |x, weight, bias| {
        conv_forward::<R, 3>(x, weight, bias, options.clone(), ConvStrategy::Direct)
            .unwrap_or_else(|e| panic!("the direct convolution cannot run on this GPU: {e:?}"))
    };
    match choice {
        Choice::ImplicitGemm => {
            let layer = describe("the convolution", [x.meta.shape(), weight.meta.shape()], options);
            let (x2, weight2, bias2) = (x.clone(), weight.clone(), bias.clone());
            implicit_gemm_or_direct(
                layer,
                || conv_forward::<R, 3>(x, weight, bias, options.clone(), ConvStrategy::ImplicitGemm),
                || direct(x2, weight2, bias2),
            )
        }
        _ => direct(x, weight, bias),
    }
}

/// The input gradient of conv3d(x, weight) for the output gradient `grad`.
fn input_gradient<R: CubeRuntime>(grad: CubeTensor<R>, weight: CubeTensor<R>, x_shape: Shape, options: &ConvOptions<3>, choice: Choice) -> CubeTensor<R> {
    let direct = |grad, weight, x_shape| {
        conv_data_backward::<R, 3>(grad, weight, x_shape, options.clone(), ConvStrategy::Direct)
            .unwrap_or_else(|e| panic!("the transposed convolution cannot run on this GPU: {e:?}"))
    };
    // Burn's implicit GEMM for the input gradient takes stride 1 only.
    if choice == Choice::ImplicitGemm && options.stride == [1; 3] {
        let layer = describe("the input gradient", [&x_shape, weight.meta.shape()], options);
        let (grad2, weight2, x_shape2) = (grad.clone(), weight.clone(), x_shape.clone());
        implicit_gemm_or_direct(
            layer,
            || conv_data_backward::<R, 3>(grad, weight, x_shape, options.clone(), ConvStrategy::ImplicitGemm),
            || direct(grad2, weight2, x_shape2),
        )
    } else {
        direct(grad, weight, x_shape)
    }
}

/// The weight gradient of conv3d(x, weight) for the output gradient `grad`: a convolution
/// of x with grad, batch and channel axes swapped, by `choice`. Burn's own fallback does the
/// same with its default strategy, which is the autotuner when it is compiled in.
fn weight_gradient<R: CubeRuntime>(x: CubeTensor<R>, grad: CubeTensor<R>, weight_shape: &Shape, options: &ConvOptions<3>, choice: Choice) -> CubeTensor<R> {
    let x = permute(x, &[1, 0, 2, 3, 4]); // [Cin, B, T, H, W]
    let grad = permute(grad, &[1, 0, 2, 3, 4]); // [Cout, B, T', H', W']
    // Output positions step by the stride over x: the stride becomes a dilation.
    let swapped = ConvOptions::new(options.dilation, options.padding, options.stride, 1);
    let gradient = forward(x, grad, None, &swapped, choice); // [Cin, Cout, ≥kT, ≥kH, ≥kW]
    let [out_channels, in_channels, kt, kh, kw] = weight_shape.dims();
    let gradient = slice(gradient, &[0..in_channels, 0..out_channels, 0..kt, 0..kh, 0..kw]);
    into_contiguous(permute(gradient, &[1, 0, 2, 3, 4])) // [Cout, Cin, kT, kH, kW]
}

/// A 1×1×1 convolution without padding as a strided slice and one matrix product:
/// [B, Cin, T, H, W] → [B, Cout, T', H', W'] (tensor ops: differentiable on every backend).
fn pointwise<B: Backend>(x: Tensor<B, 5>, weight: Tensor<B, 5>, bias: Option<Tensor<B, 1>>, options: &ConvOptions<3>) -> Tensor<B, 5> {
    let [out_channels, in_channels, ..] = weight.dims();
    let stride = options.stride.map(|s| s as isize);
    let x = x.slice([
        Slice::full(),
        Slice::full(),
        Slice::new(0, None, stride[0]),
        Slice::new(0, None, stride[1]),
        Slice::new(0, None, stride[2]),
    ]);
    let [batch, _, t, h, w] = x.dims();
    let rows = x.permute([0, 2, 3, 4, 1]).reshape([batch * t * h * w, in_channels]); // [M, Cin]
    let out = rows.matmul(weight.reshape([out_channels, in_channels]).transpose()); // [M, Cout]
    let out = match bias {
        Some(bias) => out + bias.unsqueeze::<2>(),
        None => out,
    };
    out.reshape([batch, t, h, w, out_channels]).permute([0, 4, 1, 2, 3]) // [B, Cout, T', H', W']
}

/// The convolutions these kernels cover: f32, one group (anything else: Burn's path).
fn supported<B: Backend>(x: &Tensor<B, 5>, weight: &Tensor<B, 5>, bias: Option<&Tensor<B, 1>>, options: &ConvOptions<3>) -> bool {
    gpu_kernels() == GpuKernels::Fixed
        && options.groups == 1
        && [Some(x.dtype()), Some(weight.dtype()), bias.map(Tensor::dtype)].into_iter().flatten().all(|dtype| dtype == DType::F32)
}

fn primitive<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> B::FloatTensorPrimitive {
    tensor.into_primitive().tensor()
}

fn tensor<B: Backend, const D: usize>(primitive: B::FloatTensorPrimitive) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(primitive))
}

impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> Conv3dBackend for CubeBackend<R, F, I, BT> {
    fn conv3d_fused(
        x: Tensor<Self, 5>,
        weight: Tensor<Self, 5>,
        bias: Option<Tensor<Self, 1>>,
        options: ConvOptions<3>,
        epilogue: ConvEpilogue<Self>,
    ) -> Tensor<Self, 5> {
        if !supported(&x, &weight, bias.as_ref(), &options) {
            return conv3d_portable(x, weight, bias, options, epilogue);
        }
        let (x, weight) = (primitive(x), primitive(weight));
        let choice = choose(weight.meta.shape(), &options, has_tensor_cores(&x));
        if choice == Choice::Pointwise {
            return epilogue.apply(pointwise(tensor(x), tensor(weight), bias, &options));
        }
        epilogue.apply(tensor(forward(x, weight, bias.map(primitive), &options, choice)))
    }
}

/// Training on a GPU: the convolution by the chosen kernel with its own backward step
/// ([`Conv3dCubeBackward`]); bias and epilogue as tensor ops after it.
impl<R, F, I, BT, C> Conv3dBackend for Autodiff<CubeBackend<R, F, I, BT>, C>
where
    R: CubeRuntime,
    F: FloatElement,
    I: IntElement,
    BT: BoolElement,
    C: CheckpointStrategy,
{
    fn conv3d_fused(
        x: Tensor<Self, 5>,
        weight: Tensor<Self, 5>,
        bias: Option<Tensor<Self, 1>>,
        options: ConvOptions<3>,
        epilogue: ConvEpilogue<Self>,
    ) -> Tensor<Self, 5> {
        if !supported(&x, &weight, bias.as_ref(), &options) {
            return conv3d_portable(x, weight, bias, options, epilogue);
        }
        let (x, weight) = (primitive(x), primitive(weight));
        let choice = choose(weight.primitive.meta.shape(), &options, has_tensor_cores(&x.primitive));
        if choice == Choice::Pointwise {
            return epilogue.apply(pointwise(tensor(x), tensor(weight), bias, &options));
        }
        let out = forward(x.primitive.clone(), weight.primitive.clone(), None, &options, choice);
        let out = match Conv3dCubeBackward.prepare::<C>([x.node.clone(), weight.node.clone()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((x.primitive, weight.primitive, options, choice), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        };
        let out: Tensor<Self, 5> = tensor(out);
        let out = match bias {
            Some(bias) => {
                let channels = bias.dims()[0];
                out + bias.reshape([1, channels, 1, 1, 1])
            }
            None => out,
        };
        epilogue.apply(out)
    }
}

/// The backward step of the training convolution; its state is (x, weight, options, choice).
#[derive(Debug)]
struct Conv3dCubeBackward;

impl<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement> Backward<CubeBackend<R, F, I, BT>, 2> for Conv3dCubeBackward {
    type State = (CubeTensor<R>, CubeTensor<R>, ConvOptions<3>, Choice);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let [x_node, weight_node] = ops.parents;
        let grad = grads.consume::<CubeBackend<R, F, I, BT>>(&ops.node);
        let (x, weight, options, choice) = ops.state;
        let weight_shape = weight.meta.shape().clone();
        if let Some(node) = x_node {
            let x_shape = x.meta.shape().clone();
            grads.register::<CubeBackend<R, F, I, BT>>(node.id, input_gradient(grad.clone(), weight, x_shape, &options, choice));
        }
        if let Some(node) = weight_node {
            grads.register::<CubeBackend<R, F, I, BT>>(node.id, weight_gradient(x, grad, &weight_shape, &options, choice));
        }
    }
}
