//! The full M3DFEL model: 3D instances → R3D-18 → DLIAM → classifier.

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Tensor, backend::Backend};

use crate::backbone::{R3d18, conv::Conv3dBackend};
use crate::config::M3dfelConfig;
use crate::dliam::{Dliam, DliamOutput, bilstm::BiLstmBackend, dmin::DminBackend};
use crate::instances::to_instances;
use crate::weights::{Layout, WeightVisitor};

/// Forces the lazy initialisation of every parameter.
struct Materialize;

impl<B: Backend> ModuleVisitor<B> for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        param.val();
    }
}

/// What the model needs of a backend: its DMIN, convolution and BiLSTM extensions (each with
/// a portable default, overridden where the project has a faster kernel or schedule).
pub trait M3dfelBackend: DminBackend + Conv3dBackend + BiLstmBackend {}
impl<B: DminBackend + Conv3dBackend + BiLstmBackend> M3dfelBackend for B {}

/// Everything one forward pass produces.
#[derive(Debug, Clone)]
pub struct M3dfelOutput<B: Backend> {
    /// Bag (clip) logits: [B, classes].
    pub logits: Tensor<B, 2>,
    /// The same classifier applied to each gated instance feature: [B, N, classes].
    pub instance_logits: Tensor<B, 3>,
    /// Mean sigmoid-gate activation of each instance: [B, N].
    pub gate_mean: Tensor<B, 2>,
}

/// M3DFEL (CVPR 2023), generic over the Burn backend.
#[derive(Module, Debug)]
pub struct M3dfel<B: Backend> {
    pub features: R3d18<B>,
    pub dliam: Dliam<B>,
    pub fc: Linear<B>,
    pub instance_length: usize,
}

impl M3dfelConfig {
    /// A randomly initialised model (PyTorch's default initialisation scheme is not
    /// reproduced; load weights for anything but training from scratch).
    pub fn init<B: M3dfelBackend>(&self, device: &B::Device) -> M3dfel<B> {
        let model = self.init_lazy(device);
        model.materialize();
        model
    }

    /// The model with its parameters not drawn yet: Burn draws each on first use. Loading
    /// replaces them with the file's values, which spares drawing millions of random numbers
    /// only to overwrite them; [`M3dfel::materialize`] then draws those the file lacked.
    pub(crate) fn init_lazy<B: M3dfelBackend>(&self, device: &B::Device) -> M3dfel<B> {
        M3dfel {
            features: R3d18::new(self.widths, device),
            dliam: Dliam::new(self, device),
            fc: LinearConfig::new(self.feature_dim(), self.num_classes).init(device),
            instance_length: self.instance_length,
        }
    }
}

impl<B: Backend> M3dfel<B> {
    /// Draws every parameter not drawn yet. Needed before the model is used or cloned: a
    /// clone of a never-used model would otherwise draw *different* random weights.
    pub(crate) fn materialize(&self) {
        self.visit(&mut Materialize);
    }

    /// [`materialize`](Self::materialize) for DLIAM and the classifier only.
    pub(crate) fn materialize_head(&self) {
        self.dliam.visit(&mut Materialize);
        self.fc.visit(&mut Materialize);
    }
}

impl<B: M3dfelBackend> M3dfel<B> {
    /// Clips `[B, F, 3, H, W]` with values in [0, 1] → logits, instance logits and gates.
    pub fn forward(&self, clips: Tensor<B, 5>) -> M3dfelOutput<B> {
        let batch = clips.dims()[0];
        self.forward_padded(clips, batch)
    }

    /// [`forward`](Self::forward) of a training batch whose clips after the first `real` are
    /// padding (a short batch filled up to the training batch size, so that no new kernel
    /// shape appears mid-run): only the real clips' instances make BatchNorm's batch and
    /// running statistics, so the real clips' outputs are those of the real clips alone, and
    /// with the padding's rows cut off before the loss, so are the gradients. Clips do not
    /// otherwise meet: DLIAM works within each bag.
    pub fn forward_padded(&self, clips: Tensor<B, 5>, real: usize) -> M3dfelOutput<B> {
        self.classify_instances(self.embed_padded(clips, real))
    }

    /// The R3D-18 embedding of every 3D instance: clips `[B, F, 3, H, W]` → `[B, N, w₃]`.
    pub fn embed_instances(&self, clips: Tensor<B, 5>) -> Tensor<B, 3> {
        let batch = clips.dims()[0];
        self.embed_padded(clips, batch)
    }

    fn embed_padded(&self, clips: Tensor<B, 5>, real: usize) -> Tensor<B, 3> {
        let [batch, frames, ..] = clips.dims();
        let n = frames / self.instance_length;
        let instances = to_instances(clips, self.instance_length); // [B·N, 3, L, H, W], clip-major
        let features = self.features.forward(instances, real * n); // [B·N, w₃]
        let width = features.dims()[1];
        features.reshape([batch, n, width])
    }

    /// The model for inference: the backbone's BatchNorms folded into their convolutions
    /// (the same outputs as evaluation-mode `forward`, faster; it cannot train, and its
    /// weights cannot be saved in the authors' layout: save before folding).
    pub fn fold_batch_norm(self) -> Self {
        Self { features: self.features.fold_batch_norm(), ..self }
    }

    /// DLIAM and the classifier on instance embeddings `[B, N, w₃]`.
    pub fn classify_instances(&self, features: Tensor<B, 3>) -> M3dfelOutput<B> {
        let DliamOutput { bag, instances, gate_mean } = self.dliam.forward(features); // [B, N, w₃]
        M3dfelOutput {
            logits: self.fc.forward(bag),                  // [B, classes]
            instance_logits: self.fc.forward(instances),   // [B, N, classes]
            gate_mean,
        }
    }
}

impl<B: Backend> M3dfel<B> {
    /// Trainable parameters, counted like PyTorch's `sum(p.numel() for p in parameters())`
    /// (BatchNorm running statistics are buffers, not parameters). The paper preset has
    /// 46,823,384.
    pub fn num_parameters(&self) -> usize {
        crate::weights::count_parameters(self)
    }

    /// Walks every weight under the authors' `state_dict` name.
    pub(crate) fn visit_weights<V: WeightVisitor<B>>(&mut self, v: &mut V) {
        self.features.visit_weights("features", v);
        self.visit_head_weights(v);
    }

    /// Walks DLIAM's and the classifier's weights.
    pub(crate) fn visit_head_weights<V: WeightVisitor<B>>(&mut self, v: &mut V) {
        self.dliam.visit_weights(v);
        v.param("fc.weight", &mut self.fc.weight, Layout::Transposed);
        if let Some(bias) = &mut self.fc.bias {
            v.param("fc.bias", bias, Layout::Same);
        }
    }
}
