//! Weight files: reading the four layouts the project accepts, checking them against the
//! model, and writing the project's own files.
//!
//! Every layout is brought to one form, a [`WeightFile`]: tensors under the authors'
//! PyTorch `state_dict` names (`features.0.0.weight`, `lstm.weight_ih_l0`, …) in PyTorch's
//! shapes. The model walks its weights under the same names ([`WeightVisitor`]), so loading
//! and saving share one list of names.
//!
//! Accepted files:
//! 1. the authors' plain `state_dict` `.pth`;
//! 2. the authors' training checkpoint (`state_dict` with `module.` prefixes, `optimizer`,
//!    `args`, `epoch`, `best_wa`, `best_ua`);
//! 3. torchvision's `r3d_18` `.pth` (backbone only; `fc.*` is ignored);
//! 4. the project's own `.safetensors` (f32 or f16) and Burn `.bpk` (burnpack) files,
//!    which also record the model configuration.

mod apply;
#[cfg(not(target_arch = "wasm32"))]
mod burnpack;
mod formats;
mod infer;
#[cfg(not(target_arch = "wasm32"))]
mod pickle_lengths;
#[cfg(not(target_arch = "wasm32"))]
mod pytorch;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use burn::module::{Param, RunningState};
use burn::tensor::{Tensor, backend::Backend};

pub use apply::LoadReport;
pub(crate) use apply::count_parameters;
pub use formats::Precision;

use crate::config::M3dfelConfig;
use crate::model::{M3dfel, M3dfelBackend};

/// How a model weight relates to the file's tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Same shape and element order.
    Same,
    /// The file holds the transpose (PyTorch `Linear` is [out, in], Burn's is [in, out]).
    Transposed,
}

/// Visits every weight of a module under its checkpoint name.
pub trait WeightVisitor<B: Backend> {
    /// A trainable parameter.
    fn param<const D: usize>(&mut self, name: &str, param: &mut Param<Tensor<B, D>>, layout: Layout);
    /// A non-trainable buffer (BatchNorm running statistics).
    fn buffer<const D: usize>(&mut self, name: &str, state: &mut RunningState<Tensor<B, D>>);
}

/// Which kind of file the weights came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightFormat {
    /// The authors' plain `state_dict` `.pth`.
    PytorchStateDict,
    /// The authors' training checkpoint (`state_dict`, `optimizer`, `args`, …).
    PytorchTrainingCheckpoint,
    /// torchvision's `r3d_18` weights (backbone only).
    TorchvisionR3d18,
    /// The project's safetensors file.
    Safetensors,
    /// The project's Burn burnpack file.
    Burnpack,
}

impl fmt::Display for WeightFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::PytorchStateDict => "PyTorch state_dict (.pth)",
            Self::PytorchTrainingCheckpoint => "PyTorch training checkpoint (.pth)",
            Self::TorchvisionR3d18 => "torchvision r3d_18 backbone (.pth)",
            Self::Safetensors => "m3dfel safetensors",
            Self::Burnpack => "m3dfel Burn burnpack",
        })
    }
}

/// One tensor as stored in a file, widened to f32, in PyTorch's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct FileTensor {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// A weight file brought to the authors' names and shapes.
#[derive(Debug, Clone)]
pub struct WeightFile {
    pub path: PathBuf,
    pub format: WeightFormat,
    pub tensors: BTreeMap<String, FileTensor>,
    /// The configuration recorded in the project's own files.
    pub config: Option<M3dfelConfig>,
}

/// What went wrong with a weight file; the message names the file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {kind}", path.display())]
pub struct WeightError {
    pub path: PathBuf,
    pub kind: WeightErrorKind,
}

#[derive(Debug, thiserror::Error)]
pub enum WeightErrorKind {
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    #[error(
        "not a weight file: expected a PyTorch checkpoint (.pth), safetensors or burnpack file ({0})"
    )]
    NotWeights(String),
    #[error("damaged or truncated {format} file: {reason}")]
    Corrupt { format: &'static str, reason: String },
    #[error("not an M3DFEL checkpoint: {0}")]
    NotM3dfel(String),
    #[error("missing weight `{key}` (the model needs shape {expected:?})")]
    Missing { key: String, expected: Vec<usize> },
    #[error("weight `{key}` has shape {found:?} but the model needs {expected:?}")]
    Shape { key: String, found: Vec<usize>, expected: Vec<usize> },
    #[error("unexpected weight `{key}` (shape {shape:?}): the file does not match the model's configuration")]
    Unexpected { key: String, shape: Vec<usize> },
    #[error("weight `{0}` contains NaN or infinite values")]
    NonFinite(String),
    #[error("invalid model configuration: {0}")]
    Config(String),
    #[error("cannot write the file: {0}")]
    Write(String),
}

impl WeightErrorKind {
    pub(crate) fn at(self, path: &Path) -> WeightError {
        WeightError { path: path.to_path_buf(), kind: self }
    }
}

/// A model loaded from a file, with what was found there.
#[derive(Debug)]
pub struct LoadedModel<B: Backend> {
    pub model: M3dfel<B>,
    pub config: M3dfelConfig,
    pub format: WeightFormat,
    pub report: LoadReport,
}

impl WeightFile {
    /// Reads any accepted layout from disk (format detected from the content).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn read(path: impl AsRef<Path>) -> Result<Self, WeightError> {
        formats::read(path.as_ref())
    }

    /// Reads the project's safetensors format from memory (e.g. fetched in a browser);
    /// other kinds of files and truncated ones are told apart in the error.
    pub fn from_safetensors_bytes(name: &str, bytes: &[u8]) -> Result<Self, WeightError> {
        formats::read_safetensors_only(Path::new(name), bytes)
    }

    /// The model configuration these weights imply: the recorded one for the project's
    /// files, otherwise inferred from the tensor shapes on top of `fallback` (used for
    /// what shapes cannot tell: heads, frame size, and DLIAM for backbone-only files).
    pub fn config(&self, fallback: &M3dfelConfig) -> Result<M3dfelConfig, WeightError> {
        match &self.config {
            Some(config) => Ok(config.clone()),
            None => infer::infer_config(self, fallback),
        }
        .and_then(|config| {
            config.validate().map_err(|e| WeightErrorKind::Config(e).at(&self.path))?;
            Ok(config)
        })
    }

    /// Builds the model and loads every weight. Backbone-only files (torchvision) leave
    /// DLIAM and the classifier randomly initialised and list them as missing; every
    /// other layout must match exactly.
    pub fn load<B: M3dfelBackend>(
        &self,
        fallback: &M3dfelConfig,
        device: &B::Device,
    ) -> Result<LoadedModel<B>, WeightError> {
        self.load_checked(fallback, device, true)
    }

    /// Like [`load`](Self::load), but missing and unexpected keys are listed in the report
    /// instead of failing (what `m3dfel inspect` shows). Wrong shapes still fail.
    pub fn inspect<B: M3dfelBackend>(
        &self,
        fallback: &M3dfelConfig,
        device: &B::Device,
    ) -> Result<LoadedModel<B>, WeightError> {
        self.load_checked(fallback, device, false)
    }

    /// Loads DLIAM and the classifier only, strictly: the backbone's parameters are never
    /// drawn and take no memory, so the model may only run
    /// [`classify_instances`](crate::M3dfel::classify_instances) (the browser package's
    /// check of DLIAM on a GPU against the CPU).
    pub fn load_head<B: M3dfelBackend>(
        &self,
        fallback: &M3dfelConfig,
        device: &B::Device,
    ) -> Result<LoadedModel<B>, WeightError> {
        let config = self.config(fallback)?;
        let (model, report) = apply::load(self, &config, device, true, apply::Part::Head)?;
        Ok(LoadedModel { model, config, format: self.format, report })
    }

    fn load_checked<B: M3dfelBackend>(
        &self,
        fallback: &M3dfelConfig,
        device: &B::Device,
        strict: bool,
    ) -> Result<LoadedModel<B>, WeightError> {
        let config = self.config(fallback)?;
        let (model, report) = apply::load(self, &config, device, strict, apply::Part::Whole)?;
        Ok(LoadedModel { model, config, format: self.format, report })
    }
}

/// Reads a weight file and loads it into a model in one step.
#[cfg(not(target_arch = "wasm32"))]
pub fn load_model<B: M3dfelBackend>(
    path: impl AsRef<Path>,
    device: &B::Device,
) -> Result<LoadedModel<B>, WeightError> {
    WeightFile::read(path)?.load(&M3dfelConfig::new(), device)
}

/// Writes a model in the project's safetensors format (authors' names and shapes, with
/// the configuration in the header metadata).
pub fn save_safetensors<B: Backend>(
    model: &M3dfel<B>,
    config: &M3dfelConfig,
    precision: Precision,
    path: impl AsRef<Path>,
) -> Result<(), WeightError> {
    let tensors = apply::collect(model);
    formats::write_safetensors(&tensors, config, precision, path.as_ref())
}

/// Writes a model as a Burn burnpack file (authors' names and shapes, configuration included).
#[cfg(not(target_arch = "wasm32"))]
pub fn save_burnpack<B: Backend>(
    model: &M3dfel<B>,
    config: &M3dfelConfig,
    path: impl AsRef<Path>,
) -> Result<(), WeightError> {
    let tensors = apply::collect(model);
    burnpack::write(&tensors, config, path.as_ref())
}

/// The project's safetensors file as bytes (used by the browser package and exports).
pub fn safetensors_bytes<B: Backend>(
    model: &M3dfel<B>,
    config: &M3dfelConfig,
    precision: Precision,
) -> Result<Vec<u8>, String> {
    formats::safetensors_bytes(&apply::collect(model), config, precision)
}
