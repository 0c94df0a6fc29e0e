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
//! Training (`Autodiff`) has its own backward step with the same choice, so that nothing
//! reaches the autotuner's nested tuning and every gradient runs on the forward's kernel: dX as
//! convolutions of the output gradient with the flipped weights (one per phase of the stride),
//! dW as a convolution of the input with the output gradient (batch and channel axes swapped).
//!
//! [`GpuKernels::Autotune`] keeps Burn's autotuned path, for comparison (builds with the
//! `autotune` feature).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use burn::backend::Autodiff;
use burn::backend::autodiff::checkpoint::{base::Checkpointer, strategy::CheckpointStrategy};
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::ops::{ConvOptions, FloatTensorOps};
use burn::tensor::{DType, Shape, Slice, Tensor, TensorPrimitive, backend::Backend};
use burn_cubecl::kernel::conv::{ConvStrategy, conv_data_backward, conv_forward};
use burn_cubecl::kernel::{into_contiguous, slice, slice_with_steps};
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
    /// Burn's direct convolution.
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

/// The layers (by what they compute) whose implicit GEMM failed, in order: told once, then
/// direct.
static IMPLICIT_GEMM_FAILED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// The layers (by what they compute, as in the warning) that the implicit GEMM could not run
/// in this process and the direct convolution ran instead, in the order they were met.
pub fn implicit_gemm_fallbacks() -> Vec<String> {
    IMPLICIT_GEMM_FAILED.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
}

/// `implicit_gemm()`, or `direct()` after one warning line per `layer` if it fails.
fn implicit_gemm_or_direct<T, E: std::fmt::Debug>(
    layer: String,
    implicit_gemm: impl FnOnce() -> Result<T, E>,
    direct: impl FnOnce() -> T,
) -> T {
    let known_to_fail = IMPLICIT_GEMM_FAILED.lock().unwrap().contains(&layer);
    if known_to_fail {
        return direct();
    }
    match implicit_gemm() {
        Ok(out) => out,
        Err(error) => {
            eprintln!("warning: the implicit GEMM cannot run {layer} on this GPU ({error:?}); using the direct convolution");
            IMPLICIT_GEMM_FAILED.lock().unwrap().push(layer);
            direct()
        }
    }
}

fn describe(what: &str, shapes: [&Shape; 2], dtype: DType, options: &ConvOptions<3>) -> String {
    format!("{what} of {dtype:?} input {} with weights {}, stride {:?}, padding {:?}", shapes[0], shapes[1], options.stride, options.padding)
}

/// conv3d(x, weight) on the primitives, by `choice` (not [`Choice::Pointwise`]).
fn forward<R: CubeRuntime>(x: CubeTensor<R>, weight: CubeTensor<R>, bias: Option<CubeTensor<R>>, options: &ConvOptions<3>, choice: Choice) -> CubeTensor<R> {
    let direct = |x, weight, bias| {
        conv_forward::<R, 3>(x, weight, bias, options.clone(), ConvStrategy::Direct)
            .unwrap_or_else(|e| panic!("the direct convolution cannot run on this GPU: {e:?}"))
    };
    match choice {
        Choice::ImplicitGemm => {
            let layer = describe("the convolution", [x.meta.shape(), weight.meta.shape()], x.dtype, options);
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

/// One phase of the input gradient along one axis: the input positions r, r + s, r + 2s, …
/// (stride s) and the taps of the kernel that reach them.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Phase {
    /// The phase's taps of the kernel, last first (the flipped kernel of its convolution).
    taps: Slice,
    /// Padding of the convolution of the output gradient with those taps.
    padding: usize,
    /// Where the phase's positions start in that convolution's output.
    skip: usize,
    /// Input positions in the phase.
    positions: usize,
}

/// The phase `r` (0 ≤ r < stride) of an axis with `kernel` taps, `padding`, `stride`, an input
/// of `input` positions and an output of `output`; `None` when no tap reaches its positions
/// (or it has none): their gradient is zero.
///
/// x[i] for i = s·m + r receives grad[o]·w[j] for o·s + j − p = i, that is for the taps
/// j = s·a + c with c = (r + p) mod s, from o = m + q − a with q = ⌊(r + p) / s⌋: a stride-1
/// convolution of grad with those taps flipped, read from position m + q − (n − 1).
fn phase(r: usize, kernel: usize, padding: usize, stride: usize, input: usize, output: usize) -> Option<Phase> {
    let (c, q) = ((r + padding) % stride, (r + padding) / stride);
    let taps = if c < kernel { (kernel - c).div_ceil(stride) } else { 0 };
    let positions = if r < input { (input - r).div_ceil(stride) } else { 0 };
    if taps == 0 || positions == 0 {
        return None;
    }
    let last = c + stride * (taps - 1);
    // Enough padding for the first position's window (left) and the last one's (right).
    let conv_padding = [(taps - 1) as isize - q as isize, (positions + q) as isize - output as isize, 0].into_iter().max().unwrap() as usize;
    Some(Phase {
        taps: Slice::new(c as isize, Some(last as isize + 1), -(stride as isize)),
        padding: conv_padding,
        skip: q + conv_padding - (taps - 1),
        positions,
    })
}

/// The input gradient of conv3d(x, weight) for the output gradient `grad`, by convolutions on
/// the chosen kernel (tensor cores where the device has them). At stride 1 it is one
/// convolution of `grad` with the weights flipped in space, input and output channels swapped,
/// padded by k − 1 − p. At stride s the input positions split into s³ phases by their index
/// modulo s; each receives only its own taps, so each is one such convolution with those taps
/// ([`phase`]), written into its positions: together the work of the forward convolution.
/// Burn's transposed convolution, which this replaces (one thread per input position looping
/// over every tap and output channel, no tensor cores), took 2.35 s of the 3.64 s of GPU time
/// of a tiny-preset training step on lavapipe (BENCHMARKS.md, 2026-12-07). Dilated
/// convolutions (not in R3D-18) still take it.
fn input_gradient<R: CubeRuntime, F: FloatElement, I: IntElement, BT: BoolElement>(
    grad: CubeTensor<R>,
    weight: CubeTensor<R>,
    x_shape: Shape,
    options: &ConvOptions<3>,
    choice: Choice,
) -> CubeTensor<R> {
    if options.dilation != [1; 3] {
        return conv_data_backward::<R, 3>(grad, weight, x_shape, options.clone(), ConvStrategy::Direct)
            .unwrap_or_else(|e| panic!("the transposed convolution cannot run on this GPU: {e:?}"));
    }
    let [_, _, kt, kh, kw] = weight.meta.shape().dims();
    let kernel = [kt, kh, kw];
    let [batch, in_channels, t, h, w] = x_shape.dims();
    let input = [t, h, w];
    let output: [usize; 3] = grad.meta.shape().dims::<5>()[2..].try_into().unwrap();
    let weight = permute(weight, &[1, 0, 2, 3, 4]); // [Cin, Cout, kT, kH, kW]
    let axis = |i: usize| -> Vec<(usize, Phase)> {
        (0..options.stride[i]).filter_map(|r| Some((r, phase(r, kernel[i], options.padding[i], options.stride[i], input[i], output[i])?))).collect()
    };
    let [phases_t, phases_h, phases_w] = [axis(0), axis(1), axis(2)];
    // One phase convolution: the output gradient with the phase's taps, cut to its positions
    // (a view: `slice` copies only where an offset breaks the memory alignment).
    let convolve = |phases: [&Phase; 3]| {
        let taps = [Slice::full(), Slice::full(), phases[0].taps, phases[1].taps, phases[2].taps];
        let flipped = slice_with_steps(weight.clone(), &taps); // [Cin, Cout, nT, nH, nW]
        let conv = ConvOptions::new([1; 3], phases.map(|p| p.padding), [1; 3], 1);
        let out = forward(grad.clone(), flipped, None, &conv, choice); // [B, Cin, ≥, ≥, ≥]
        let [kept_t, kept_h, kept_w] = phases.map(|p| p.skip..p.skip + p.positions);
        slice(out, &[0..batch, 0..in_channels, kept_t, kept_h, kept_w]) // [B, Cin, Mt, Mh, Mw]
    };
    if options.stride == [1; 3] {
        let [(_, pt), (_, ph), (_, pw)] = [&phases_t[0], &phases_h[0], &phases_w[0]];
        return convolve([pt, ph, pw]); // [B, Cin, T, H, W]
    }
    let mut gradient = CubeBackend::<R, F, I, BT>::float_zeros(x_shape, &grad.device, grad.dtype.into()); // [B, Cin, T, H, W]
    for (rt, pt) in &phases_t {
        for (rh, ph) in &phases_h {
            for (rw, pw) in &phases_w {
                let positions = [(*rt, 0), (*rh, 1), (*rw, 2)].map(|(r, i)| Slice::new(r as isize, None, options.stride[i] as isize));
                let value = convolve([pt, ph, pw]);
                gradient = CubeBackend::<R, F, I, BT>::float_slice_assign(gradient, &[Slice::full(), Slice::full(), positions[0], positions[1], positions[2]], value);
            }
        }
    }
    gradient
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

/// The convolutions these kernels cover: one group, input, weights and bias all f32, all bf16
/// or all f16 (`trainer --precision`; tensor cores take the halves natively and f32 as TF32).
/// Anything else: Burn's path.
fn supported<B: Backend>(x: &Tensor<B, 5>, weight: &Tensor<B, 5>, bias: Option<&Tensor<B, 1>>, options: &ConvOptions<3>) -> bool {
    let dtype = x.dtype();
    gpu_kernels() == GpuKernels::Fixed
        && options.groups == 1
        && matches!(dtype, DType::F32 | DType::BF16 | DType::F16)
        && [Some(weight.dtype()), bias.map(Tensor::dtype)].into_iter().flatten().all(|other| other == dtype)
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
            grads.register::<CubeBackend<R, F, I, BT>>(node.id, input_gradient::<R, F, I, BT>(grad.clone(), weight, x_shape, &options, choice));
        }
        if let Some(node) = weight_node {
            grads.register::<CubeBackend<R, F, I, BT>>(node.id, weight_gradient(x, grad, &weight_shape, &options, choice));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every (input position, output position, tap) with o·s + j − p = i, as the phases
    /// compute it: the phase of i, the tap read at its convolution's output position m + skip
    /// for input m of the phase (positions past the output gradient's ends are the padding's
    /// zeros and must not be counted).
    fn contributions_by_phases(kernel: usize, padding: usize, stride: usize, input: usize, output: usize) -> Vec<(usize, usize, usize)> {
        let mut found = Vec::new();
        for r in 0..stride {
            let Some(phase) = phase(r, kernel, padding, stride, input, output) else { continue };
            // The taps as a slice with a negative step selects them: from the end down.
            let (range, step) = phase.taps.to_range_and_step(kernel);
            assert!(step < 0, "the taps are flipped");
            let taps: Vec<usize> = range.rev().step_by(step.unsigned_abs()).collect();
            let convolution_output = output + 2 * phase.padding + 1 - taps.len();
            assert!(phase.skip + phase.positions <= convolution_output, "the phase's positions fit in its convolution's output");
            for m in 0..phase.positions {
                // Output u of a stride-1 convolution reads grad[u − padding + b] with flipped tap b.
                for (b, &j) in taps.iter().enumerate() {
                    let o = (m + phase.skip + b) as isize - phase.padding as isize;
                    if (0..output as isize).contains(&o) {
                        found.push((stride * m + r, o as usize, j));
                    }
                }
            }
        }
        found.sort();
        found
    }

    #[test]
    fn the_phases_of_the_input_gradient_take_every_contribution_once() {
        for kernel in 1..=7usize {
            for stride in 1..=3 {
                for padding in 0..=kernel {
                    for input in kernel.saturating_sub(2 * padding).max(1)..=9 {
                        let output = (input + 2 * padding - kernel) / stride + 1;
                        let mut expected = Vec::new();
                        for o in 0..output {
                            for j in 0..kernel {
                                let i = (o * stride + j) as isize - padding as isize;
                                if (0..input as isize).contains(&i) {
                                    expected.push((i as usize, o, j));
                                }
                            }
                        }
                        expected.sort();
                        let what = format!("kernel {kernel}, stride {stride}, padding {padding}, input {input}");
                        assert_eq!(contributions_by_phases(kernel, padding, stride, input, output), expected, "{what}");
                    }
                }
            }
        }
    }
}
