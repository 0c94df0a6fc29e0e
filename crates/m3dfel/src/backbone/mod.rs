//! R3D-18, torchvision's `r3d_18` VideoResNet cut after global average pooling.
//!
//! The four stages are built from a (width, stride) table, like torchvision's own code.
//! Weight names follow the authors' checkpoints (`features.0` = stem,
//! `features.1..4` = layer1..layer4).

pub mod conv;

use burn::module::{Module, Param};
use burn::nn::conv::{Conv3d, Conv3dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig3d};
use burn::tensor::{Tensor, backend::Backend, ops::ConvOptions};

use crate::weights::{Layout, WeightVisitor};
use conv::{Conv3dBackend, ConvEpilogue};

/// Stride of the first block of each stage (applied to T, H and W alike).
const STAGE_STRIDES: [usize; 4] = [1, 2, 2, 2];
/// BasicBlocks per stage.
const BLOCKS_PER_STAGE: usize = 2;

/// A bias-free Conv3d followed by BatchNorm3d (PyTorch's `nn.Sequential(conv, bn)`,
/// so its weights are named `<prefix>.0.weight` and `<prefix>.1.*`).
#[derive(Module, Debug)]
pub struct ConvBn<B: Backend> {
    pub conv: Conv3d<B>,
    /// `None` once folded into `conv` for inference ([`ConvBn::fold_batch_norm`]).
    pub bn: Option<BatchNorm<B>>,
}

impl<B: Backend> ConvBn<B> {
    fn new(
        channels: [usize; 2],
        kernel: [usize; 3],
        stride: [usize; 3],
        device: &B::Device,
    ) -> Self {
        let [t, h, w] = same_padding(kernel);
        Self {
            conv: Conv3dConfig::new(channels, kernel)
                .with_stride(stride)
                .with_padding(PaddingConfig3d::Explicit(t, h, w))
                .with_bias(false)
                .init(device),
            bn: Some(BatchNormConfig::new(channels[1]).with_epsilon(1e-5).with_momentum(0.1).init(device)),
        }
    }

    /// `[B, Cin, T, H, W]` → `[B, Cout, T', H', W']`, then the epilogue (residual, ReLU).
    /// Folded, the whole block is one [`Conv3dBackend::conv3d_fused`] call. In training, only
    /// the first `counted` rows (the batch less its padding) make BatchNorm's statistics.
    pub fn forward(&self, x: Tensor<B, 5>, epilogue: ConvEpilogue<B>, counted: usize) -> Tensor<B, 5>
    where
        B: Conv3dBackend,
    {
        let conv = &self.conv;
        let options = ConvOptions::new(conv.stride, same_padding(conv.kernel_size), conv.dilation, conv.groups);
        let bias = conv.bias.as_ref().map(|bias| bias.val());
        match &self.bn {
            Some(bn) => {
                let x = B::conv3d_fused(x, conv.weight.val(), bias, options, ConvEpilogue::none());
                epilogue.apply(batch_norm(bn, x, counted))
            }
            None => B::conv3d_fused(x, conv.weight.val(), bias, options, epilogue),
        }
    }

    /// The inference form: BatchNorm's running statistics folded into the convolution,
    /// per output channel s = γ/√(σ² + ε), W' = s·W, bias β − s·μ. The same outputs as
    /// evaluation-mode `forward` without a pass over the activations (it cannot train).
    pub fn fold_batch_norm(self) -> Self {
        let Some(bn) = self.bn else { return self };
        let scale = bn.gamma.val() / (bn.running_var.value() + bn.epsilon).sqrt(); // [Cout]
        let shift = bn.beta.val() - bn.running_mean.value() * scale.clone();
        let channels = scale.dims()[0];
        let mut conv = self.conv;
        conv.weight = Param::from_tensor(conv.weight.val() * scale.reshape([channels, 1, 1, 1, 1]));
        conv.bias = Some(Param::from_tensor(shift));
        Self { conv, bn: None }
    }

    /// A folded block has no BatchNorm names: save the model before folding it.
    pub(crate) fn visit_weights<V: WeightVisitor<B>>(&mut self, prefix: &str, v: &mut V) {
        v.param(&format!("{prefix}.0.weight"), &mut self.conv.weight, Layout::Same);
        if let Some(bn) = &mut self.bn {
            v.param(&format!("{prefix}.1.weight"), &mut bn.gamma, Layout::Same);
            v.param(&format!("{prefix}.1.bias"), &mut bn.beta, Layout::Same);
            v.buffer(&format!("{prefix}.1.running_mean"), &mut bn.running_mean);
            v.buffer(&format!("{prefix}.1.running_var"), &mut bn.running_var);
        }
    }
}

/// Padding that keeps T, H and W for odd kernels at stride 1 (torchvision's k/2).
fn same_padding(kernel: [usize; 3]) -> [usize; 3] {
    kernel.map(|k| k / 2)
}

/// BatchNorm3d with the arithmetic of Burn's `BatchNorm::forward`: with autodiff, batch
/// statistics (biased variance) and the running statistics updated with its momentum;
/// without, the running statistics. Every per-channel operand is materialised as
/// `[B, C, 1]` against the activations viewed as `[B, C, T·H·W]`: Burn's CPU backend then
/// takes its SIMD per-row path, where `[1, C, 1, 1, 1]` operands fall back to a scalar
/// strided walk (a quarter of a training step's time before this).
///
/// Batch statistics are taken over the first `counted` rows only: a training batch padded to
/// a fixed size (so that no new kernel shape appears mid-run) normalises its padding rows
/// with the real rows' statistics, and the padding, cut off before the loss, then changes
/// neither the real rows' outputs, the gradients nor the running statistics.
fn batch_norm<B: Backend>(bn: &BatchNorm<B>, x: Tensor<B, 5>, counted: usize) -> Tensor<B, 5> {
    let dims = x.dims();
    let [batch, channels, ..] = dims;
    let x = x.reshape([batch, channels, dims[2] * dims[3] * dims[4]]); // [B, C, S]
    let per_row = |t: Tensor<B, 1>| t.reshape([1, channels, 1]).repeat_dim(0, batch); // [C] → [B, C, 1]
    let (centered, var) = if B::ad_enabled(&x.device()) {
        let counted = counted.clamp(1, batch);
        let count = (counted * x.dims()[2]) as f64;
        let channel_mean = |t: Tensor<B, 3>| {
            let t = if counted < batch { t.slice([0..counted]) } else { t }; // [counted, C, S]
            t.sum_dim(2).sum_dim(0).reshape([channels]) / count // [C]
        };
        let mean = channel_mean(x.clone());
        let centered = x - per_row(mean.clone());
        let var = channel_mean(centered.clone().square());
        let momentum = bn.momentum;
        let update = |state: &burn::module::RunningState<Tensor<B, 1>>, batch_value: Tensor<B, 1>| {
            let running = state.value_sync().to_device(&batch_value.device());
            state.update((running * (1.0 - momentum) + batch_value.detach() * momentum).detach());
        };
        update(&bn.running_mean, mean);
        update(&bn.running_var, var.clone());
        (centered, var)
    } else {
        (x - per_row(bn.running_mean.value()), bn.running_var.value())
    };
    let scale = bn.gamma.val() / (var + bn.epsilon).sqrt(); // [C]
    (centered * per_row(scale) + per_row(bn.beta.val())).reshape(dims)
}

/// torchvision's `BasicBlock` with `Conv3DSimple` (3×3×3) convolutions.
#[derive(Module, Debug)]
pub struct BasicBlock<B: Backend> {
    pub conv1: ConvBn<B>,
    pub conv2: ConvBn<B>,
    /// 1×1×1 strided projection, present when the block changes width or resolution.
    pub downsample: Option<ConvBn<B>>,
}

impl<B: Backend> BasicBlock<B> {
    fn new(in_width: usize, width: usize, stride: usize, device: &B::Device) -> Self {
        let needs_projection = stride != 1 || in_width != width;
        Self {
            conv1: ConvBn::new([in_width, width], [3, 3, 3], [stride; 3], device),
            conv2: ConvBn::new([width, width], [3, 3, 3], [1; 3], device),
            downsample: needs_projection
                .then(|| ConvBn::new([in_width, width], [1, 1, 1], [stride; 3], device)),
        }
    }

    /// `[B, Cin, T, H, W]` → `[B, C, T/s, H/s, W/s]`; `counted` as in [`ConvBn::forward`].
    pub fn forward(&self, x: Tensor<B, 5>, counted: usize) -> Tensor<B, 5>
    where
        B: Conv3dBackend,
    {
        let shortcut = match &self.downsample {
            Some(projection) => projection.forward(x.clone(), ConvEpilogue::none(), counted),
            None => x.clone(),
        };
        let out = self.conv1.forward(x, ConvEpilogue::relu(), counted);
        self.conv2.forward(out, ConvEpilogue::residual_relu(shortcut), counted)
    }

    fn fold_batch_norm(self) -> Self {
        Self {
            conv1: self.conv1.fold_batch_norm(),
            conv2: self.conv2.fold_batch_norm(),
            downsample: self.downsample.map(ConvBn::fold_batch_norm),
        }
    }

    fn visit_weights<V: WeightVisitor<B>>(&mut self, prefix: &str, v: &mut V) {
        self.conv1.visit_weights(&format!("{prefix}.conv1"), v);
        self.conv2.visit_weights(&format!("{prefix}.conv2"), v);
        if let Some(projection) = &mut self.downsample {
            projection.visit_weights(&format!("{prefix}.downsample"), v);
        }
    }
}

/// The R3D-18 3D CNN that embeds each 3D instance.
#[derive(Module, Debug)]
pub struct R3d18<B: Backend> {
    /// Conv3d 3→w₀, kernel (3,7,7), stride (1,2,2), then BN and ReLU.
    pub stem: ConvBn<B>,
    /// `layer1..layer4`, two blocks each, stored stage-major.
    pub blocks: Vec<BasicBlock<B>>,
}

impl<B: Backend> R3d18<B> {
    /// A randomly initialised backbone with the given stage widths.
    pub fn new(widths: [usize; 4], device: &B::Device) -> Self {
        let stem = ConvBn::new([3, widths[0]], [3, 7, 7], [1, 2, 2], device);
        let mut blocks = Vec::with_capacity(4 * BLOCKS_PER_STAGE);
        let mut in_width = widths[0];
        for (&width, &stride) in widths.iter().zip(STAGE_STRIDES.iter()) {
            for block in 0..BLOCKS_PER_STAGE {
                let block_stride = if block == 0 { stride } else { 1 };
                blocks.push(BasicBlock::new(in_width, width, block_stride, device));
                in_width = width;
            }
        }
        Self { stem, blocks }
    }

    /// Output width (the last stage's width).
    pub fn out_width(&self) -> usize {
        self.blocks.last().map_or(0, |block| block.conv2.conv.weight.shape().dims::<5>()[0])
    }

    /// `[B·N, 3, L, H, W]` → `[B·N, w₃]` (global average over time and space). In training,
    /// the first `counted` instances make BatchNorm's statistics (all of them but padding).
    pub fn forward(&self, instances: Tensor<B, 5>, counted: usize) -> Tensor<B, 2>
    where
        B: Conv3dBackend,
    {
        let mut x = self.stem.forward(instances, ConvEpilogue::relu(), counted);
        for block in &self.blocks {
            x = block.forward(x, counted);
        }
        let [n, c, t, h, w] = x.dims();
        x.reshape([n, c, t * h * w]).mean_dim(2).reshape([n, c]) // [B·N, C]
    }

    /// Every BatchNorm folded into its convolution ([`ConvBn::fold_batch_norm`]).
    pub fn fold_batch_norm(self) -> Self {
        Self {
            stem: self.stem.fold_batch_norm(),
            blocks: self.blocks.into_iter().map(BasicBlock::fold_batch_norm).collect(),
        }
    }

    pub(crate) fn visit_weights<V: WeightVisitor<B>>(&mut self, prefix: &str, v: &mut V) {
        self.stem.visit_weights(&format!("{prefix}.0"), v);
        for (i, block) in self.blocks.iter_mut().enumerate() {
            let (stage, index) = (i / BLOCKS_PER_STAGE + 1, i % BLOCKS_PER_STAGE);
            block.visit_weights(&format!("{prefix}.{stage}.{index}"), v);
        }
    }
}
