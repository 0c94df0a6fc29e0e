//! The bidirectional LSTM of DLIAM, stored exactly like PyTorch's `nn.LSTM`
//! (packed gates in the order input, forget, cell, output), so the authors' weights
//! load without re-packing and the whole input projection of a layer is one matmul.
//! A layer's two directions are independent; [`BiLstmBackend`] runs them at once where the
//! backend computes on this process's threads.

use burn::module::{Module, Param};
use burn::nn::Initializer;
use burn::tensor::{Tensor, activation::sigmoid, backend::Backend};

use crate::weights::{Layout, WeightVisitor};

/// One direction of one layer: `weight_ih` [4H, in], `weight_hh` [4H, H], biases [4H].
#[derive(Module, Debug)]
pub struct LstmDirection<B: Backend> {
    pub weight_ih: Param<Tensor<B, 2>>,
    pub weight_hh: Param<Tensor<B, 2>>,
    pub bias_ih: Param<Tensor<B, 1>>,
    pub bias_hh: Param<Tensor<B, 1>>,
}

impl<B: Backend> LstmDirection<B> {
    fn new(d_input: usize, hidden: usize, device: &B::Device) -> Self {
        // PyTorch's initialisation: U(-1/√H, 1/√H) for every weight and bias.
        let bound = 1.0 / (hidden as f64).sqrt();
        let init = Initializer::Uniform { min: -bound, max: bound };
        Self {
            weight_ih: init.init([4 * hidden, d_input], device),
            weight_hh: init.init([4 * hidden, hidden], device),
            bias_ih: init.init([4 * hidden], device),
            bias_hh: init.init([4 * hidden], device),
        }
    }

    /// `[B, N, in]` → `[B, N, H]`, zero initial state, scanning the N steps
    /// forwards or backwards.
    fn forward(&self, x: Tensor<B, 3>, backwards: bool) -> Tensor<B, 3> {
        let [batch, steps, _] = x.dims();
        let hidden = self.weight_hh.shape().dims::<2>()[1];
        let bias = (self.bias_ih.val() + self.bias_hh.val()).unsqueeze::<2>(); // [1, 4H]
        // Input projection of all steps at once. The weight [4H, in] viewed as [1, in, 4H]:
        // unsqueezed before it is transposed, since reshaping a transposed view copies it.
        let projected = x.matmul(self.weight_ih.val().unsqueeze::<3>().swap_dims(1, 2)) // [B, N, 4H]
            + bias.unsqueeze::<3>();
        let weight_hh = self.weight_hh.val().transpose(); // [H, 4H]

        let device = projected.device();
        let mut h = Tensor::<B, 2>::zeros([batch, hidden], &device);
        let mut c = Tensor::<B, 2>::zeros([batch, hidden], &device);
        let mut outputs = vec![None; steps];
        let order: Vec<usize> =
            if backwards { (0..steps).rev().collect() } else { (0..steps).collect() };
        for t in order {
            let step = projected.clone().slice([0..batch, t..t + 1]).reshape([batch, 4 * hidden]);
            let gates = step + h.matmul(weight_hh.clone()); // [B, 4H]
            let [i, f, g, o]: [Tensor<B, 2>; 4] = gates
                .chunk(4, 1)
                .try_into()
                .expect("4H splits into four gates");
            c = sigmoid(f) * c + sigmoid(i) * g.tanh();
            h = sigmoid(o) * c.clone().tanh();
            outputs[t] = Some(h.clone().unsqueeze_dim::<3>(1)); // [B, 1, H]
        }
        Tensor::cat(outputs.into_iter().flatten().collect(), 1) // [B, N, H]
    }

    fn visit_weights<V: WeightVisitor<B>>(&mut self, prefix: &str, suffix: &str, v: &mut V) {
        v.param(&format!("{prefix}.weight_ih_{suffix}"), &mut self.weight_ih, Layout::Same);
        v.param(&format!("{prefix}.weight_hh_{suffix}"), &mut self.weight_hh, Layout::Same);
        v.param(&format!("{prefix}.bias_ih_{suffix}"), &mut self.bias_ih, Layout::Same);
        v.param(&format!("{prefix}.bias_hh_{suffix}"), &mut self.bias_hh, Layout::Same);
    }
}

/// One bidirectional layer.
#[derive(Module, Debug)]
pub struct BiLstmLayer<B: Backend> {
    pub forward: LstmDirection<B>,
    pub reverse: LstmDirection<B>,
}

/// How a layer's two directions run: one after the other by default; on Burn's CPU backend on
/// two threads at once. Each direction re-reads its recurrent weights at every step (4 MB
/// per direction and layer in the paper preset, more than a core's L2 cache), so a batch-1
/// BiLSTM streams ~90 MB from memory, which one thread did in 9–11 ms of a 0.15 s forward
/// pass (2 cores, 2026-12-03). Autodiff backends keep the default (one graph, built in order).
pub trait BiLstmBackend: Backend {
    /// (`forward`(), `reverse`()).
    fn both_directions(
        forward: impl FnOnce() -> Tensor<Self, 3> + Send,
        reverse: impl FnOnce() -> Tensor<Self, 3> + Send,
    ) -> (Tensor<Self, 3>, Tensor<Self, 3>) {
        (forward(), reverse())
    }
}

impl BiLstmBackend for burn::backend::Flex {
    fn both_directions(
        forward: impl FnOnce() -> Tensor<Self, 3> + Send,
        reverse: impl FnOnce() -> Tensor<Self, 3> + Send,
    ) -> (Tensor<Self, 3>, Tensor<Self, 3>) {
        rayon::join(forward, reverse)
    }
}
impl<B: BiLstmBackend, C: burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy> BiLstmBackend
    for burn::backend::Autodiff<B, C>
{
}
#[cfg(feature = "wgpu")]
impl BiLstmBackend for burn::backend::Wgpu {}
#[cfg(feature = "cuda")]
impl BiLstmBackend for burn::backend::Cuda {}

/// A stack of bidirectional LSTM layers (batch-first, zero initial state, no dropout).
#[derive(Module, Debug)]
pub struct BiLstm<B: Backend> {
    pub layers: Vec<BiLstmLayer<B>>,
}

impl<B: Backend> BiLstm<B> {
    /// `num_layers` layers of `hidden` units per direction; layer k > 0 reads `2·hidden`.
    pub fn new(d_input: usize, hidden: usize, num_layers: usize, device: &B::Device) -> Self {
        let layers = (0..num_layers)
            .map(|k| {
                let d_in = if k == 0 { d_input } else { 2 * hidden };
                BiLstmLayer {
                    forward: LstmDirection::new(d_in, hidden, device),
                    reverse: LstmDirection::new(d_in, hidden, device),
                }
            })
            .collect();
        Self { layers }
    }

    /// `[B, N, in]` → `[B, N, 2H]`: per step, forward h ‖ backward h.
    pub fn forward(&self, mut x: Tensor<B, 3>) -> Tensor<B, 3>
    where
        B: BiLstmBackend,
    {
        for layer in &self.layers {
            let input = x.clone();
            let (forward, reverse) =
                B::both_directions(|| layer.forward.forward(input, false), || layer.reverse.forward(x, true));
            x = Tensor::cat(vec![forward, reverse], 2);
        }
        x
    }

    pub(crate) fn visit_weights<V: WeightVisitor<B>>(&mut self, prefix: &str, v: &mut V) {
        for (k, layer) in self.layers.iter_mut().enumerate() {
            layer.forward.visit_weights(prefix, &format!("l{k}"), v);
            layer.reverse.visit_weights(prefix, &format!("l{k}_reverse"), v);
        }
    }
}
