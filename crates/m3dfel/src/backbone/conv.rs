//! The backbone's convolution as a backend extension: a 3D convolution with its epilogue
//! (bias, residual add, ReLU) in one call, so that a backend with its own convolution can
//! apply the epilogue while the output is still in cache. The default method is Burn's
//! `conv3d` followed by tensor ops (differentiable on every backend).

use burn::tensor::ops::ConvOptions;
use burn::tensor::{Tensor, activation::relu, backend::Backend, module::conv3d};

/// What happens to a convolution's output before it is returned.
pub struct ConvEpilogue<B: Backend> {
    /// Added to the output (same shape): a ResNet block's shortcut.
    pub residual: Option<Tensor<B, 5>>,
    /// ReLU applied last.
    pub relu: bool,
}

impl<B: Backend> ConvEpilogue<B> {
    /// The output as it is.
    pub fn none() -> Self {
        Self { residual: None, relu: false }
    }

    /// ReLU(output).
    pub fn relu() -> Self {
        Self { residual: None, relu: true }
    }

    /// ReLU(output + residual).
    pub fn residual_relu(residual: Tensor<B, 5>) -> Self {
        Self { residual: Some(residual), relu: true }
    }

    /// The epilogue with tensor ops.
    pub fn apply(self, out: Tensor<B, 5>) -> Tensor<B, 5> {
        let out = match self.residual {
            Some(residual) => out + residual,
            None => out,
        };
        if self.relu { relu(out) } else { out }
    }
}

/// Backend extension for the backbone's convolutions; backends with a faster convolution
/// override [`Conv3dBackend::conv3d_fused`].
pub trait Conv3dBackend: Backend {
    /// `x`: [B, Cin, T, H, W], `weight`: [Cout, Cin, kT, kH, kW], `bias`: [Cout]
    /// → epilogue(conv3d(x) + bias): [B, Cout, T', H', W'].
    fn conv3d_fused(
        x: Tensor<Self, 5>,
        weight: Tensor<Self, 5>,
        bias: Option<Tensor<Self, 1>>,
        options: ConvOptions<3>,
        epilogue: ConvEpilogue<Self>,
    ) -> Tensor<Self, 5> {
        conv3d_portable(x, weight, bias, options, epilogue)
    }
}

/// [`Conv3dBackend::conv3d_fused`] with Burn's `conv3d` and tensor ops.
pub fn conv3d_portable<B: Backend>(
    x: Tensor<B, 5>,
    weight: Tensor<B, 5>,
    bias: Option<Tensor<B, 1>>,
    options: ConvOptions<3>,
    epilogue: ConvEpilogue<B>,
) -> Tensor<B, 5> {
    epilogue.apply(conv3d(x, weight, bias, options))
}

// burn::backend::Flex and Autodiff<Flex>: the direct convolution with the epilogue fused and
// its own backward pass, see `crate::kernels::conv3d_flex`. Burn's GPU backends (wgpu, CUDA)
// and their Autodiff: kernels chosen per layer and device, see `crate::kernels::conv3d_cubecl`.
