//! Multi-head self-attention over the N instances of a bag, as in the authors' code:
//! one bias-free `to_qkv` projection, no output projection, residual or normalisation.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Tensor, activation::softmax, backend::Backend};

use crate::weights::{Layout, WeightVisitor};

#[derive(Module, Debug)]
pub struct Mhsa<B: Backend> {
    /// D → 3D, producing q, k and v in that order.
    pub to_qkv: Linear<B>,
    pub num_heads: usize,
}

impl<B: Backend> Mhsa<B> {
    pub fn new(dim: usize, num_heads: usize, device: &B::Device) -> Self {
        Self {
            to_qkv: LinearConfig::new(dim, 3 * dim).with_bias(false).init(device),
            num_heads,
        }
    }

    /// `[B, N, D]` → `[B, N, D]`.
    pub fn forward(&self, x: Tensor<B, 3>) -> Tensor<B, 3> {
        let [batch, n, dim] = x.dims();
        let heads = self.num_heads;
        let head_dim = dim / heads;
        // The head index is the outer factor of the D axis: (h d) -> h, d.
        let split_heads = |t: Tensor<B, 3>| {
            t.reshape([batch, n, heads, head_dim]).swap_dims(1, 2) // [B, h, N, d]
        };
        let [q, k, v]: [Tensor<B, 3>; 3] = self
            .to_qkv
            .forward(x) // [B, N, 3D]
            .chunk(3, 2)
            .try_into()
            .expect("3D splits into q, k and v");
        let (q, k, v) = (split_heads(q), split_heads(k), split_heads(v));
        let scores = q.matmul(k.swap_dims(2, 3)) / (head_dim as f64).sqrt(); // [B, h, N, N]
        softmax(scores, 3)
            .matmul(v) // [B, h, N, d]
            .swap_dims(1, 2)
            .reshape([batch, n, dim])
    }

    pub(crate) fn visit_weights<V: WeightVisitor<B>>(&mut self, name: &str, v: &mut V) {
        v.param(&format!("{name}.weight"), &mut self.to_qkv.weight, Layout::Transposed);
    }
}
