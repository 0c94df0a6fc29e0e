//! Burn's burnpack format with the authors' tensor names; the configuration travels as a
//! u8 tensor holding its JSON.

use std::collections::BTreeMap;
use std::path::Path;

use burn::module::ParamId;
use burn::tensor::{DType, TensorData};
use burn_store::{BurnpackStore, ModuleStore, TensorSnapshot};

use super::formats::{corrupt, parse_config};
use super::pytorch::snapshot_to_file_tensor;
use super::{FileTensor, WeightError, WeightErrorKind, WeightFile, WeightFormat};
use crate::config::M3dfelConfig;

/// Burnpack files start with "BURN" as a little-endian u32.
pub(super) const MAGIC: [u8; 4] = 0x4255_524E_u32.to_le_bytes();
/// Name of the tensor holding the configuration JSON.
const CONFIG_TENSOR: &str = "__m3dfel_config_json";

pub(super) fn read(path: &Path, bytes: Vec<u8>) -> Result<WeightFile, WeightError> {
    const FORMAT: &str = "burnpack";
    let mut store = BurnpackStore::from_bytes(Some(burn::tensor::Bytes::from_bytes_vec(bytes)));
    let snapshots = crate::reader_panics::catch(|| store.get_all_snapshots().map(|all| all.clone()))
        .map_err(|e| corrupt(FORMAT, e).at(path))?
        .map_err(|e| corrupt(FORMAT, e).at(path))?;
    let mut tensors = BTreeMap::new();
    let mut config = None;
    for (name, snapshot) in &snapshots {
        let name = name.clone();
        if name == CONFIG_TENSOR {
            let data = crate::reader_panics::catch(|| snapshot.to_data())
                .map_err(|e| corrupt(FORMAT, e).at(path))?
                .map_err(|e| corrupt(FORMAT, format!("{e:?}")).at(path))?;
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

pub(super) fn write(
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
    snapshots.push(snapshot(CONFIG_TENSOR, config_data));
    burn_store::BurnpackWriter::new(snapshots)
        .with_metadata("producer", "m3dfel")
        .write_to_file(path)
        .map_err(|e| WeightErrorKind::Write(e.to_string()).at(path))
}
