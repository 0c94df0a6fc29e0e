//! DMIN (Dynamic Multi-Instance Normalization) and the sigmoid instance gate.
//!
//! For the attention output A: [B, N, C] of one bag, per clip b and channel c:
//! - instance statistics over the N instances: μ_in = mean_n A,
//!   σ²_in = Σ_n (A − μ_in)² / (N − 1) (unbiased);
//! - bag statistics: μ_bag = mean_c μ_in, σ²_bag = mean_c(σ²_in + μ_in²) − μ_bag²;
//! - μ = w₀·μ_in + w₁·μ_bag and σ² = w'₀·σ²_in + w'₁·σ²_bag with w = softmax(mean_weight),
//!   w' = softmax(var_weight);
//! - Â = (A − μ) / √(σ² + 1e-5) · γ + β.
//!
//! The gate is then X = ori ⊙ sigmoid(Â).
//!
//! **Bag size 1.** The unbiased variance of one instance is 0/0. This project defines it
//! as 0 (the divisor is max(N − 1, 1)): a single instance has no spread of its own, so the
//! variance comes entirely from the bag term, which for N = 1 is the variance of the
//! instance's channels. The result is finite and identical on every backend.
//!
//! The computation sits behind [`DminBackend`], whose default is the portable tensor-op
//! version below; a backend may replace it with a fused kernel without the model knowing.

use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::{Tensor, activation::{sigmoid, softmax}, backend::Backend};

use crate::weights::{Layout, WeightVisitor};

/// Numerical-stability term added to the mixed variance.
pub const DMIN_EPSILON: f64 = 1e-5;

/// DMIN's learnable parameters, in the shapes of the authors' checkpoints.
#[derive(Module, Debug)]
pub struct Dmin<B: Backend> {
    /// γ: [1, C, 1], initialised to 1.
    pub weight: Param<Tensor<B, 3>>,
    /// β: [1, C, 1], initialised to 0.
    pub bias: Param<Tensor<B, 3>>,
    /// Logits of the (instance, bag) mixing weights for the mean: [2], initialised to 1.
    pub mean_weight: Param<Tensor<B, 1>>,
    /// Logits of the (instance, bag) mixing weights for the variance: [2], initialised to 1.
    pub var_weight: Param<Tensor<B, 1>>,
}

/// DMIN's parameters as plain tensors, handed to a [`DminBackend`] implementation.
#[derive(Debug, Clone)]
pub struct DminParams<B: Backend> {
    /// γ: [C].
    pub gamma: Tensor<B, 1>,
    /// β: [C].
    pub beta: Tensor<B, 1>,
    /// Raw (pre-softmax) mean mixing logits: [2].
    pub mean_weight: Tensor<B, 1>,
    /// Raw (pre-softmax) variance mixing logits: [2].
    pub var_weight: Tensor<B, 1>,
}

/// Result of the gate: `gated` = ori ⊙ `gate`, both [B, N, C].
#[derive(Debug, Clone)]
pub struct GateOutput<B: Backend> {
    pub gated: Tensor<B, 3>,
    pub gate: Tensor<B, 3>,
}

/// Backend extension for DMIN + gate. The default method is the portable tensor-op
/// implementation; backends with a hand-written kernel override it.
pub trait DminBackend: Backend {
    /// `attended`, `ori`: [B, N, C] → X = ori ⊙ sigmoid(DMIN(attended)) and the gate.
    fn dmin_gate(
        attended: Tensor<Self, 3>,
        ori: Tensor<Self, 3>,
        params: DminParams<Self>,
    ) -> GateOutput<Self> {
        dmin_gate_portable(attended, ori, params)
    }
}

/// DMIN + gate with ordinary tensor operations: `ori ⊙ sigmoid(DMIN(attended))` and the gate.
pub fn dmin_gate_portable<B: Backend>(attended: Tensor<B, 3>, ori: Tensor<B, 3>, params: DminParams<B>) -> GateOutput<B> {
    let gate = sigmoid(dmin_portable(attended, &params));
    GateOutput { gated: ori * gate.clone(), gate }
}

/// DMIN with ordinary tensor operations (differentiable on every backend).
/// `a`: [B, N, C] → Â: [B, N, C].
///
/// Two rearrangements keep f32 accurate without changing the result: σ²_bag is computed as
/// mean_c σ²_in + mean_c (μ_in − μ_bag)² (equal to the spec's formula, without its
/// cancellation), and all statistics are taken on A − A[b, 0, 0], a per-clip shift that
/// DMIN is invariant to.
pub fn dmin_portable<B: Backend>(a: Tensor<B, 3>, params: &DminParams<B>) -> Tensor<B, 3> {
    let [batch, n, c] = a.dims();
    let shift = a.clone().slice([0..batch, 0..1, 0..1]); // [B, 1, 1]
    let a = a - shift;
    let mu_in = a.clone().mean_dim(1); // [B, 1, C]
    let var_in = (a.clone() - mu_in.clone()).square().sum_dim(1) / (n.max(2) - 1) as f64; // [B, 1, C]
    let mu_bag = mu_in.clone().mean_dim(2); // [B, 1, 1]
    let var_bag = var_in.clone().mean_dim(2) + (mu_in.clone() - mu_bag.clone()).square().mean_dim(2); // [B, 1, 1]

    let mix = |logits: &Tensor<B, 1>| {
        let w = softmax(logits.clone(), 0); // [2]
        (w.clone().slice([0..1]).reshape([1, 1, 1]), w.slice([1..2]).reshape([1, 1, 1]))
    };
    let (wm_in, wm_bag) = mix(&params.mean_weight);
    let (wv_in, wv_bag) = mix(&params.var_weight);
    let mu = mu_in * wm_in + mu_bag * wm_bag; // [B, 1, C]
    let var = var_in * wv_in + var_bag * wv_bag; // [B, 1, C]

    let gamma = params.gamma.clone().reshape([1, 1, c]);
    let beta = params.beta.clone().reshape([1, 1, c]);
    (a - mu) / (var + DMIN_EPSILON).sqrt() * gamma + beta
}

impl<B: Backend> Dmin<B> {
    pub fn new(channels: usize, device: &B::Device) -> Self {
        Self {
            weight: Initializer::Ones.init([1, channels, 1], device),
            bias: Initializer::Zeros.init([1, channels, 1], device),
            mean_weight: Initializer::Ones.init([2], device),
            var_weight: Initializer::Ones.init([2], device),
        }
    }

    /// The parameters flattened for a [`DminBackend`].
    pub fn params(&self) -> DminParams<B> {
        let channels = self.weight.shape().dims::<3>()[1];
        DminParams {
            gamma: self.weight.val().reshape([channels]),
            beta: self.bias.val().reshape([channels]),
            mean_weight: self.mean_weight.val(),
            var_weight: self.var_weight.val(),
        }
    }

    pub(crate) fn visit_weights<V: WeightVisitor<B>>(&mut self, prefix: &str, v: &mut V) {
        v.param(&format!("{prefix}.weight"), &mut self.weight, Layout::Same);
        v.param(&format!("{prefix}.bias"), &mut self.bias, Layout::Same);
        v.param(&format!("{prefix}.mean_weight"), &mut self.mean_weight, Layout::Same);
        v.param(&format!("{prefix}.var_weight"), &mut self.var_weight, Layout::Same);
    }
}

// Every backend the project compiles uses the portable path unless it has a kernel.
impl DminBackend for burn::backend::Flex {}
impl<B: DminBackend, C: burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy>
    DminBackend for burn::backend::Autodiff<B, C>
{
}
// burn::backend::Wgpu: the fused WGSL kernel, see `crate::kernels::dmin_wgpu`.
#[cfg(feature = "cuda")]
impl DminBackend for burn::backend::Cuda {}
