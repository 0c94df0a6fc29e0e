//! Recovering the model configuration from the shapes in a PyTorch weight file.

use super::{WeightError, WeightErrorKind, WeightFile, WeightFormat};
use crate::config::{Aggregation, M3dfelConfig, PRESETS};

pub(super) fn infer_config(file: &WeightFile, fallback: &M3dfelConfig) -> Result<M3dfelConfig, WeightError> {
    let not_m3dfel = |reason: String| WeightErrorKind::NotM3dfel(reason).at(&file.path);
    let shape = |key: &str| file.tensors.get(key).map(|t| t.shape.as_slice());

    let mut widths = [0; 4];
    for (stage, width) in widths.iter_mut().enumerate() {
        let key = format!("features.{}.0.conv1.0.weight", stage + 1);
        *width = match shape(&key) {
            Some([out, _, _, _, _]) => *out,
            Some(other) => return Err(not_m3dfel(format!("`{key}` has shape {other:?}, expected a 5-D Conv3d weight"))),
            None => {
                let some_keys: Vec<&String> = file.tensors.keys().take(3).collect();
                return Err(not_m3dfel(format!(
                    "no R3D-18 backbone weights (`{key}` is absent; the file starts with {some_keys:?})"
                )));
            }
        };
    }

    if file.format == WeightFormat::TorchvisionR3d18 {
        // Backbone only: DLIAM comes from the fallback configuration.
        return Ok(fallback.clone().with_widths(widths).with_preset(preset_name(&fallback.clone().with_widths(widths))));
    }

    let mut config = fallback.clone().with_widths(widths);
    let mut ablation = config.ablation;
    match shape("lstm.weight_hh_l0") {
        Some([_, hidden]) => {
            config.lstm_hidden = *hidden;
            config.lstm_layers =
                (0..).take_while(|k| file.tensors.contains_key(&format!("lstm.weight_ih_l{k}"))).count();
            ablation.lstm = true;
        }
        Some(other) => return Err(not_m3dfel(format!("`lstm.weight_hh_l0` has shape {other:?}, expected [4H, H]"))),
        None => ablation.lstm = false,
    }
    ablation.mhsa = file.tensors.contains_key("to_qkv.weight");
    ablation.dmin = file.tensors.contains_key("norm.weight");
    match shape("pwconv.weight") {
        Some([1, n, 3]) if *n > 0 && config.num_frames % n == 0 => {
            ablation.aggregation = Aggregation::Conv1d;
            config.instance_length = config.num_frames / n;
        }
        Some(other) => {
            return Err(not_m3dfel(format!(
                "`pwconv.weight` has shape {other:?}, expected [1, N, 3] with N dividing {} frames",
                config.num_frames
            )));
        }
        None => ablation.aggregation = Aggregation::AvgPool,
    }
    config.ablation = ablation;
    if !file.tensors.contains_key("fc.weight") {
        return Err(not_m3dfel("no classifier weights (`fc.weight` is absent)".into()));
    }
    config.num_classes = file.tensors["fc.weight"].shape[0];
    config.preset = preset_name(&config);
    Ok(config)
}

/// The preset whose shapes equal `config`'s, or "custom".
fn preset_name(config: &M3dfelConfig) -> String {
    PRESETS
        .iter()
        .filter_map(|name| M3dfelConfig::preset(name))
        .find(|preset| {
            preset.widths == config.widths
                && preset.lstm_hidden == config.lstm_hidden
                && preset.lstm_layers == config.lstm_layers
                && preset.instance_length == config.instance_length
                && preset.ablation == config.ablation
        })
        .map_or_else(|| "custom".to_string(), |preset| preset.preset)
}
