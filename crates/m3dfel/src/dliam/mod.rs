//! DLIAM: Dynamic Long-term Instance Aggregation Module.
//!
//! Instance features F: [B, N, w₃] → BiLSTM (`ori`) → MHSA (A) → DMIN → gate
//! X = ori ⊙ sigmoid(Â) → aggregation over instances → bag feature [B, D].

pub mod bilstm;
pub mod dmin;
pub mod mhsa;

use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::PaddingConfig1d;
use burn::tensor::{Tensor, activation::sigmoid, backend::Backend};

use crate::config::{Aggregation, M3dfelConfig};
use crate::weights::{Layout, WeightVisitor};
use bilstm::{BiLstm, BiLstmBackend};
use dmin::{Dmin, DminBackend, GateOutput};
use mhsa::Mhsa;

/// What DLIAM produces for a batch of bags.
#[derive(Debug, Clone)]
pub struct DliamOutput<B: Backend> {
    /// Aggregated bag feature: [B, D].
    pub bag: Tensor<B, 2>,
    /// Gated instance features X: [B, N, D].
    pub instances: Tensor<B, 3>,
    /// Mean gate activation per instance: [B, N].
    pub gate_mean: Tensor<B, 2>,
}

#[derive(Module, Debug)]
pub struct Dliam<B: Backend> {
    pub lstm: Option<BiLstm<B>>,
    pub attention: Option<Mhsa<B>>,
    pub norm: Option<Dmin<B>>,
    /// Conv1d with the N instances as input channels, sliding along the feature axis.
    pub pwconv: Option<Conv1d<B>>,
}

impl<B: DminBackend + BiLstmBackend> Dliam<B> {
    pub fn new(config: &M3dfelConfig, device: &B::Device) -> Self {
        let ablation = config.ablation;
        let dim = config.feature_dim();
        Self {
            lstm: ablation
                .lstm
                .then(|| BiLstm::new(config.widths[3], config.lstm_hidden, config.lstm_layers, device)),
            attention: ablation.mhsa.then(|| Mhsa::new(dim, config.num_heads, device)),
            norm: ablation.dmin.then(|| Dmin::new(dim, device)),
            pwconv: (ablation.aggregation == Aggregation::Conv1d).then(|| {
                Conv1dConfig::new(config.bag_size(), 1, 3)
                    .with_padding(PaddingConfig1d::Explicit(1, 1))
                    .init(device)
            }),
        }
    }

    /// Instance features `[B, N, w₃]` → bag feature, gated instances and gate means.
    pub fn forward(&self, features: Tensor<B, 3>) -> DliamOutput<B> {
        let ori = match &self.lstm {
            Some(lstm) => lstm.forward(features), // [B, N, D]
            None => features,
        };
        let attended = match &self.attention {
            Some(attention) => attention.forward(ori.clone()), // [B, N, D]
            None => ori.clone(),
        };
        let GateOutput { gated, gate } = match &self.norm {
            Some(norm) => B::dmin_gate(attended, ori, norm.params()),
            None => {
                let gate = sigmoid(attended);
                GateOutput { gated: ori * gate.clone(), gate }
            }
        };
        let [batch, n, dim] = gated.dims();
        let bag = match &self.pwconv {
            Some(conv) => conv.forward(gated.clone()).reshape([batch, dim]), // [B, 1, D] → [B, D]
            None => gated.clone().mean_dim(1).reshape([batch, dim]),
        };
        DliamOutput { bag, instances: gated, gate_mean: gate.mean_dim(2).reshape([batch, n]) }
    }

}

impl<B: Backend> Dliam<B> {
    pub(crate) fn visit_weights<V: WeightVisitor<B>>(&mut self, v: &mut V) {
        if let Some(lstm) = &mut self.lstm {
            lstm.visit_weights("lstm", v);
        }
        if let Some(attention) = &mut self.attention {
            attention.visit_weights("to_qkv", v);
        }
        if let Some(norm) = &mut self.norm {
            norm.visit_weights("norm", v);
        }
        if let Some(conv) = &mut self.pwconv {
            v.param("pwconv.weight", &mut conv.weight, Layout::Same);
            if let Some(bias) = &mut conv.bias {
                v.param("pwconv.bias", bias, Layout::Same);
            }
        }
    }
}
