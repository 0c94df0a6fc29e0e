//! PyTorch `.pth` files (the authors' layouts and torchvision's r3d_18), through
//! burn-store's pickle reader.

use std::collections::BTreeMap;
use std::path::Path;

use burn_store::TensorSnapshot;
use burn_store::pytorch::PytorchReader;

use super::formats::corrupt;
use crate::reader_panics;
use super::{FileTensor, WeightError, WeightErrorKind, WeightFile, WeightFormat};

/// A tensor of a file burn-store read (PyTorch or burnpack), as f32 values. burn-store does
/// not check that a tensor's data holds what its stated shape needs; that is checked here.
pub(super) fn snapshot_to_file_tensor(snapshot: &TensorSnapshot) -> Result<FileTensor, String> {
    reader_panics::catch(|| {
        let data = snapshot.to_data().map_err(|e| format!("{e:?}"))?;
        let shape = data.shape.to_vec();
        let values = data.convert::<f32>().to_vec::<f32>().map_err(|e| format!("{e:?}"))?;
        let needed = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        if needed != Some(values.len()) {
            return Err(format!("its data holds {} values, its shape {shape:?} states otherwise", values.len()));
        }
        Ok(FileTensor { shape, values })
    })?
}

pub(super) fn read(path: &Path, bytes: &[u8]) -> Result<WeightFile, WeightError> {
    const FORMAT: &str = "PyTorch";
    super::pickle_lengths::check(bytes).map_err(|e| corrupt(FORMAT, e).at(path))?;
    let reader = reader_panics::catch(|| PytorchReader::new(path))
        .map_err(|e| corrupt(FORMAT, e).at(path))?
        .map_err(|e| corrupt(FORMAT, e).at(path))?;
    let all = reader.into_tensors();
    // burn-store fills a tensor from its storage when asked, allocating what the shape
    // says first (and zeros where the storage is short): no tensor can hold more bytes
    // than the whole file.
    for (key, snapshot) in &all {
        let elements = snapshot.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        let size = elements.and_then(|n| n.checked_mul(snapshot.dtype.size()));
        if size.is_none_or(|size| size > bytes.len()) {
            let reason = format!("tensor `{key}` states shape {:?}, more bytes than the whole file", snapshot.shape.as_slice());
            return Err(corrupt(FORMAT, reason).at(path));
        }
    }

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

