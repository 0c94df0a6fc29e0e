//! Moving tensors between a [`WeightFile`] and a model through [`WeightVisitor`].

use std::collections::{BTreeMap, BTreeSet};

use burn::module::{Param, RunningState};
use burn::tensor::{Tensor, TensorData, backend::Backend};

use super::{FileTensor, Layout, WeightError, WeightErrorKind, WeightFile, WeightFormat, WeightVisitor};
use crate::config::M3dfelConfig;
use crate::model::{M3dfel, M3dfelBackend};

/// Keys that were expected but absent, or present but unused. A strict load fails on the
/// first of either (except the parts a backbone-only file cannot have); a lenient one
/// ([`WeightFile::inspect`](super::WeightFile::inspect)) lists them all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    pub loaded: usize,
    pub missing: Vec<String>,
    pub unexpected: Vec<String>,
}

/// PyTorch bookkeeping that carries no weights.
fn is_ignored(key: &str) -> bool {
    key.ends_with("num_batches_tracked")
}

/// Which model weights a file must provide.
#[derive(Clone, Copy)]
enum Required {
    All,
    /// Only names starting with this prefix (a backbone-only file).
    Prefix(&'static str),
    /// None: absent ones are only reported.
    Nothing,
}

impl Required {
    fn covers(self, name: &str) -> bool {
        match self {
            Self::All => true,
            Self::Prefix(prefix) => name.starts_with(prefix),
            Self::Nothing => false,
        }
    }
}

struct Loader<'a, B: Backend> {
    file: &'a WeightFile,
    device: B::Device,
    required: Required,
    used: BTreeSet<String>,
    missing: Vec<String>,
    error: Option<WeightErrorKind>,
}

impl<B: Backend> Loader<'_, B> {
    /// The tensor for `name` in the model's shape `expected`, or None when it is absent
    /// and allowed to be; records the first error.
    fn take<const D: usize>(&mut self, name: &str, expected: [usize; D], layout: Layout) -> Option<Tensor<B, D>> {
        if self.error.is_some() {
            return None;
        }
        let file_shape: Vec<usize> = match layout {
            Layout::Same => expected.to_vec(),
            Layout::Transposed => expected.iter().rev().copied().collect(),
        };
        let Some(tensor) = self.file.tensors.get(name) else {
            if self.required.covers(name) {
                self.error = Some(WeightErrorKind::Missing { key: name.into(), expected: file_shape });
            } else {
                self.missing.push(name.into());
            }
            return None;
        };
        self.used.insert(name.into());
        if tensor.shape != file_shape {
            self.error = Some(WeightErrorKind::Shape {
                key: name.into(),
                found: tensor.shape.clone(),
                expected: file_shape,
            });
            return None;
        }
        if tensor.values.iter().any(|v| !v.is_finite()) {
            self.error = Some(WeightErrorKind::NonFinite(name.into()));
            return None;
        }
        // Transposed here rather than as a view on the device: the model then holds contiguous
        // matrices, which Burn's `linear` reshapes without copying them on every forward pass.
        let values = match layout {
            Layout::Same => tensor.values.clone(),
            Layout::Transposed => transposed(&tensor.values, &file_shape),
        };
        Some(Tensor::<B, D>::from_data(TensorData::new(values, expected), &self.device))
    }
}

/// `values` of a [rows, columns] matrix (`shape`) in the order of its transpose.
fn transposed(values: &[f32], shape: &[usize]) -> Vec<f32> {
    let &[rows, columns] = shape else { unreachable!("only matrices are stored transposed") };
    (0..rows * columns).map(|i| values[i % rows * columns + i / rows]).collect()
}

impl<B: Backend> WeightVisitor<B> for Loader<'_, B> {
    fn param<const D: usize>(&mut self, name: &str, param: &mut Param<Tensor<B, D>>, layout: Layout) {
        // The shape without drawing the (lazy) parameter's random values.
        let expected: [usize; D] = param.lazy_shape().dims();
        if let Some(value) = self.take(name, expected, layout) {
            *param = Param::initialized(param.id, value.require_grad());
        }
    }

    fn buffer<const D: usize>(&mut self, name: &str, state: &mut RunningState<Tensor<B, D>>) {
        let expected: [usize; D] = state.value().dims();
        if let Some(value) = self.take(name, expected, Layout::Same) {
            *state = RunningState::new(value);
        }
    }
}

/// Which parts of the model a load fills.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    Whole,
    /// DLIAM and the classifier; the backbone's parameters are never drawn.
    Head,
}

/// Builds a model for `config` and fills `part` of it from `file`. Strict: a missing or
/// unexpected key is an error; lenient: they are only reported (shape and NaN errors
/// always fail).
pub(super) fn load<B: M3dfelBackend>(
    file: &WeightFile,
    config: &M3dfelConfig,
    device: &B::Device,
    strict: bool,
    part: Part,
) -> Result<(M3dfel<B>, LoadReport), WeightError> {
    let mut model = config.init_lazy::<B>(device);
    let required = match (strict, file.format) {
        (false, _) => Required::Nothing,
        (true, WeightFormat::TorchvisionR3d18) => Required::Prefix("features."),
        (true, _) => Required::All,
    };
    let mut loader = Loader::<B> {
        file,
        device: device.clone(),
        required,
        used: BTreeSet::new(),
        missing: Vec::new(),
        error: None,
    };
    match part {
        Part::Whole => model.visit_weights(&mut loader),
        Part::Head => model.visit_head_weights(&mut loader),
    }
    if let Some(kind) = loader.error {
        return Err(kind.at(&file.path));
    }
    match part {
        Part::Whole => model.materialize(), // what the file lacked (a lenient load)
        Part::Head => model.materialize_head(),
    }
    let unexpected: Vec<String> = file
        .tensors
        .keys()
        .filter(|key| !is_ignored(key) && !loader.used.contains(*key))
        .filter(|key| part == Part::Whole || !key.starts_with("features."))
        .cloned()
        .collect();
    if let Some(key) = unexpected.first().filter(|_| strict) {
        let shape = file.tensors[key].shape.clone();
        return Err(WeightErrorKind::Unexpected { key: key.clone(), shape }.at(&file.path));
    }
    let report = LoadReport { loaded: loader.used.len(), missing: loader.missing, unexpected };
    Ok((model, report))
}

struct Collector {
    tensors: BTreeMap<String, FileTensor>,
}

impl Collector {
    fn add<B: Backend, const D: usize>(&mut self, name: &str, value: Tensor<B, D>, layout: Layout) {
        let value = match layout {
            Layout::Same => value,
            Layout::Transposed => value.transpose(),
        };
        let shape = value.dims().to_vec();
        let values = value
            .into_data()
            .convert::<f32>()
            .to_vec::<f32>()
            .expect("float tensors convert to f32");
        self.tensors.insert(name.into(), FileTensor { shape, values });
    }
}

impl<B: Backend> WeightVisitor<B> for Collector {
    fn param<const D: usize>(&mut self, name: &str, param: &mut Param<Tensor<B, D>>, layout: Layout) {
        self.add(name, param.val(), layout);
    }

    fn buffer<const D: usize>(&mut self, name: &str, state: &mut RunningState<Tensor<B, D>>) {
        self.add(name, state.value(), Layout::Same);
    }
}

/// Every weight of `model` under the authors' names and shapes.
pub(super) fn collect<B: Backend>(model: &M3dfel<B>) -> BTreeMap<String, FileTensor> {
    let mut collector = Collector { tensors: BTreeMap::new() };
    // Visiting needs `&mut`; a clone shares the tensors, so nothing is copied.
    model.clone().visit_weights(&mut collector);
    collector.tensors
}

/// Counts trainable parameters (BatchNorm running statistics excluded, as in PyTorch).
struct ParamCounter(usize);

impl<B: Backend> WeightVisitor<B> for ParamCounter {
    fn param<const D: usize>(&mut self, _: &str, param: &mut Param<Tensor<B, D>>, _: Layout) {
        self.0 += param.shape().num_elements();
    }

    fn buffer<const D: usize>(&mut self, _: &str, _: &mut RunningState<Tensor<B, D>>) {}
}

/// Number of trainable parameters of `model`.
pub(crate) fn count_parameters<B: Backend>(model: &M3dfel<B>) -> usize {
    let mut counter = ParamCounter(0);
    model.clone().visit_weights(&mut counter);
    counter.0
}
