//! The project's safetensors format, and detection of a file's format.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

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

/// Reads any accepted layout from disk, detecting the format from the content.
#[cfg(not(target_arch = "wasm32"))]
pub(super) fn read(path: &Path) -> Result<WeightFile, WeightError> {
    let bytes = std::fs::read(path).map_err(|e| WeightErrorKind::Io(e).at(path))?;
    // safetensors first: its header length is arbitrary, so its first byte can be 0x80 too.
    if looks_like_safetensors(&bytes) {
        read_safetensors(path, &bytes)
    } else if bytes.starts_with(b"PK\x03\x04") || bytes.first() == Some(&0x80) {
        super::pytorch::read(path, &bytes)
    } else if bytes.starts_with(&super::burnpack::MAGIC) {
        super::burnpack::read(path, bytes)
    } else {
        let reason = if bytes.is_empty() {
            "the file is empty".to_string()
        } else {
            format!("{} bytes of unknown content", bytes.len())
        };
        Err(WeightErrorKind::NotWeights(reason).at(path))
    }
}

/// Reads bytes that should be the project's safetensors file (the browser package's only
/// format), telling a truncated file and other kinds of files apart from damaged ones.
pub(super) fn read_safetensors_only(path: &Path, bytes: &[u8]) -> Result<WeightFile, WeightError> {
    if looks_like_safetensors(bytes) {
        return read_safetensors(path, bytes);
    }
    let reason = if bytes.len() > 9 && bytes[8] == b'{' {
        let header = u64::from_le_bytes(*bytes.first_chunk::<8>().expect("length checked"));
        return Err(corrupt("safetensors", format!("the header needs {header} bytes but the file ends after {}", bytes.len() - 8)).at(path));
    } else if bytes.is_empty() {
        "the file is empty".to_string()
    } else if bytes.starts_with(b"PK\x03\x04") || bytes.first() == Some(&0x80) {
        "this is a PyTorch checkpoint; convert it with `m3dfel import` to .safetensors first".to_string()
    } else {
        format!("{} bytes of unknown content; expected the project's .safetensors", bytes.len())
    };
    Err(WeightErrorKind::NotWeights(reason).at(path))
}

/// safetensors: an 8-byte little-endian header length that fits the file, then a JSON object.
fn looks_like_safetensors(bytes: &[u8]) -> bool {
    let Some(length) = bytes.first_chunk::<8>().map(|b| u64::from_le_bytes(*b)) else { return false };
    bytes.len() > 9 && bytes[8] == b'{' && length >= 2 && length <= (bytes.len() - 8) as u64
}

pub(super) fn corrupt(format: &'static str, reason: impl ToString) -> WeightErrorKind {
    WeightErrorKind::Corrupt { format, reason: reason.to_string() }
}

pub(super) fn parse_config(json: &str) -> Result<M3dfelConfig, String> {
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
    // One metadata entry: safetensors takes a HashMap, whose order (and so the file's bytes)
    // would vary from run to run with more than one.
    let metadata = HashMap::from([(CONFIG_KEY.to_string(), serde_json::to_string(config).map_err(|e| e.to_string())?)]);
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

