//! File formats: PyTorch `.pth` (via burn-store's pickle reader), safetensors and burnpack.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use burn::module::ParamId;
use burn::tensor::{DType, TensorData};
use burn_store::{BurnpackStore, ModuleStore, TensorSnapshot};
use burn_store::pytorch::PytorchReader;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use super::{FileTensor, WeightError, WeightErrorKind, WeightFile, WeightFormat};
use crate::config::M3dfelConfig;

/// Element type of a written safetensors file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    F32,
    /// Half the size; widened back to f32 on load.
    F16,
}

/// Metadata key holding the model configuration (JSON) in the project's files.
const CONFIG_KEY: &str = "m3dfel_config";
/// Metadata key marking a safetensors file as the project's.
const FORMAT_KEY: &str = "format";
const FORMAT_VALUE: &str = "m3dfel";
/// Burnpack stores the configuration as a u8 tensor under this name.
const BURNPACK_CONFIG_TENSOR: &str = "__m3dfel_config_json";

const BURNPACK_MAGIC: [u8; 4] = 0x4255_524E_u32.to_le_bytes();

pub(super) fn read(path: &Path) -> Result<WeightFile, WeightError> {
    let bytes = std::fs::read(path).map_err(|e| WeightErrorKind::Io(e).at(path))?;
    if bytes.starts_with(b"PK\x03\x04") || bytes.first() == Some(&0x80) {
        read_pytorch(path)
    } else if bytes.starts_with(&BURNPACK_MAGIC) {
        read_burnpack(path, bytes)
    } else if looks_like_safetensors(&bytes) {
        read_safetensors(path, &bytes)
    } else {
        let reason = if bytes.is_empty() {
            "the file is empty".to_string()
        } else {
            format!("{} bytes of unknown content", bytes.len())
        };
        Err(WeightErrorKind::NotWeights(reason).at(path))
    }
}

/// safetensors: an 8-byte little-endian header length, then a JSON object.
fn looks_like_safetensors(bytes: &[u8]) -> bool {
    bytes.len() > 9 && bytes[8] == b'{'
}

fn corrupt(format: &'static str, reason: impl ToString) -> WeightErrorKind {
    WeightErrorKind::Corrupt { format, reason: reason.to_string() }
}

fn snapshot_to_file_tensor(snapshot: &TensorSnapshot) -> Result<FileTensor, String> {
    let data = snapshot.to_data().map_err(|e| format!("{e:?}"))?;
    let shape = data.shape.to_vec();
    let values = data.convert::<f32>().to_vec::<f32>().map_err(|e| format!("{e:?}"))?;
    Ok(FileTensor { shape, values })
}

fn read_pytorch(path: &Path) -> Result<WeightFile, WeightError> {
    const FORMAT: &str = "PyTorch";
    let reader = PytorchReader::new(path).map_err(|e| corrupt(FORMAT, e).at(path))?;
    let all = reader.into_tensors();

    // Layout 2 nests the model under `state_dict` (beside `optimizer`, `args`, …).
    let nested = all.keys().any(|k| k.starts_with("state_dict."));
    let mut format = if nested { WeightFormat::PytorchTrainingCheckpoint } else { WeightFormat::PytorchStateDict };
    let mut tensors = BTreeMap::new();
    for (key, snapshot) in &all {
        let key = if nested {
            match key.strip_prefix("state_dict.") {
                Some(rest) => rest,
                None => continue, // optimizer state and other entries
            }
        } else {
            key.as_str()
        };
        // Multi-GPU (DataParallel) training prefixes every key with `module.`.
        let key = key.strip_prefix("module.").unwrap_or(key);
        let tensor = snapshot_to_file_tensor(snapshot)
            .map_err(|e| corrupt(FORMAT, format!("tensor `{key}`: {e}")).at(path))?;
        tensors.insert(key.to_string(), tensor);
    }

    // Layout 3: torchvision's r3d_18 names the backbone `stem`, `layer1..4` and adds `fc`
    // (400 Kinetics classes), which has nothing to do with M3DFEL's classifier.
    if tensors.keys().any(|k| k.starts_with("stem.")) {
        format = WeightFormat::TorchvisionR3d18;
        tensors = tensors
            .into_iter()
            .filter(|(k, _)| !k.starts_with("fc."))
            .map(|(k, t)| (torchvision_to_authors(&k), t))
            .collect();
    }
    if tensors.is_empty() {
        return Err(WeightErrorKind::NotM3dfel("the PyTorch file holds no tensors".into()).at(path));
    }
    Ok(WeightFile { path: path.to_path_buf(), format, tensors, config: None })
}

/// `stem.*` → `features.0.*`, `layerK.*` → `features.K.*`.
fn torchvision_to_authors(key: &str) -> String {
    if let Some(rest) = key.strip_prefix("stem.") {
        return format!("features.0.{rest}");
    }
    for stage in 1..=4 {
        if let Some(rest) = key.strip_prefix(&format!("layer{stage}.")) {
            return format!("features.{stage}.{rest}");
        }
    }
    key.to_string()
}

fn parse_config(json: &str) -> Result<M3dfelConfig, String> {
    serde_json::from_str(json).map_err(|e| format!("the recorded model configuration is invalid: {e}"))
}

pub(super) fn read_safetensors(path: &Path, bytes: &[u8]) -> Result<WeightFile, WeightError> {
    const FORMAT: &str = "safetensors";
    let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| corrupt(FORMAT, e).at(path))?;
    let file = SafeTensors::deserialize(bytes).map_err(|e| corrupt(FORMAT, e).at(path))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let config = metadata
        .get(CONFIG_KEY)
        .map(|json| parse_config(json))
        .transpose()
        .map_err(|e| corrupt(FORMAT, e).at(path))?;
    let mut tensors = BTreeMap::new();
    for (name, view) in file.tensors() {
        let values = match view.dtype() {
            Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F16 => view
                .data()
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::BF16 => view
                .data()
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::I64 if name.ends_with("num_batches_tracked") => continue,
            other => {
                let reason = format!("tensor `{name}` has element type {other:?}; expected F32, F16 or BF16");
                return Err(corrupt(FORMAT, reason).at(path));
            }
        };
        tensors.insert(name, FileTensor { shape: view.shape().to_vec(), values });
    }
    Ok(WeightFile { path: path.to_path_buf(), format: WeightFormat::Safetensors, tensors, config })
}

fn read_burnpack(path: &Path, bytes: Vec<u8>) -> Result<WeightFile, WeightError> {
    const FORMAT: &str = "burnpack";
    let mut store = BurnpackStore::from_bytes(Some(burn::tensor::Bytes::from_bytes_vec(bytes)));
    let snapshots = store.get_all_snapshots().map_err(|e| corrupt(FORMAT, e).at(path))?;
    let mut tensors = BTreeMap::new();
    let mut config = None;
    for (name, snapshot) in snapshots {
        let name = name.clone();
        if name == BURNPACK_CONFIG_TENSOR {
            let data = snapshot.to_data().map_err(|e| corrupt(FORMAT, format!("{e:?}")).at(path))?;
            let json = String::from_utf8(data.to_vec::<u8>().unwrap_or_default())
                .map_err(|e| corrupt(FORMAT, e).at(path))?;
            config = Some(parse_config(&json).map_err(|e| corrupt(FORMAT, e).at(path))?);
            continue;
        }
        let tensor = snapshot_to_file_tensor(snapshot)
            .map_err(|e| corrupt(FORMAT, format!("tensor `{name}`: {e}")).at(path))?;
        tensors.insert(name, tensor);
    }
    Ok(WeightFile { path: path.to_path_buf(), format: WeightFormat::Burnpack, tensors, config })
}

pub(super) fn safetensors_bytes(
    tensors: &BTreeMap<String, FileTensor>,
    config: &M3dfelConfig,
    precision: Precision,
) -> Result<Vec<u8>, String> {
    let encoded: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(name, t)| {
            let bytes = match precision {
                Precision::F32 => t.values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                Precision::F16 => t.values.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect(),
            };
            (name.clone(), bytes, t.shape.clone())
        })
        .collect();
    let dtype = match precision {
        Precision::F32 => Dtype::F32,
        Precision::F16 => Dtype::F16,
    };
    let views = encoded
        .iter()
        .map(|(name, bytes, shape)| {
            TensorView::new(dtype, shape.clone(), bytes).map(|view| (name.clone(), view))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    let metadata = HashMap::from([
        (FORMAT_KEY.to_string(), FORMAT_VALUE.to_string()),
        (CONFIG_KEY.to_string(), serde_json::to_string(config).map_err(|e| e.to_string())?),
    ]);
    safetensors::serialize(views, Some(metadata)).map_err(|e| e.to_string())
}

pub(super) fn write_safetensors(
    tensors: &BTreeMap<String, FileTensor>,
    config: &M3dfelConfig,
    precision: Precision,
    path: &Path,
) -> Result<(), WeightError> {
    let bytes = safetensors_bytes(tensors, config, precision).map_err(|e| WeightErrorKind::Write(e).at(path))?;
    std::fs::write(path, bytes).map_err(|e| WeightErrorKind::Io(e).at(path))
}

pub(super) fn write_burnpack(
    tensors: &BTreeMap<String, FileTensor>,
    config: &M3dfelConfig,
    path: &Path,
) -> Result<(), WeightError> {
    let snapshot = |name: &str, data: TensorData| {
        let path_stack = name.split('.').map(String::from).collect();
        TensorSnapshot::from_data(data, path_stack, Vec::new(), ParamId::new())
    };
    let mut snapshots: Vec<TensorSnapshot> = tensors
        .iter()
        .map(|(name, t)| snapshot(name, TensorData::new(t.values.clone(), t.shape.clone())))
        .collect();
    let json = serde_json::to_string(config).map_err(|e| WeightErrorKind::Write(e.to_string()).at(path))?;
    let json_len = json.len();
    let config_data = TensorData::new(json.into_bytes(), [json_len]);
    debug_assert_eq!(config_data.dtype, DType::U8);
    snapshots.push(snapshot(BURNPACK_CONFIG_TENSOR, config_data));
    burn_store::BurnpackWriter::new(snapshots)
        .with_metadata("producer", "m3dfel")
        .write_to_file(path)
        .map_err(|e| WeightErrorKind::Write(e.to_string()).at(path))
}
