//! Model configuration: the paper's architecture and smaller presets.

use burn::config::Config;
use serde::{Deserialize, Serialize};

use crate::classes::NUM_CLASSES;

/// How DLIAM turns the N gated instance features into one bag feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Aggregation {
    /// The paper's Conv1d with the N instances as input channels (kernel 3, padding 1).
    Conv1d,
    /// Plain mean over instances (the "average pooling" row of the paper's Table 4).
    AvgPool,
}

/// Ablation switches of the paper's Table 4. The default is the full model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ablation {
    /// BiLSTM over the instances (otherwise `ori` is the backbone feature itself).
    pub lstm: bool,
    /// Multi-head self-attention (otherwise DMIN normalises `ori` directly).
    pub mhsa: bool,
    /// DMIN before the gate (otherwise the gate is `sigmoid` of the attention output).
    pub dmin: bool,
    /// Instance aggregation.
    pub aggregation: Aggregation,
}

impl Default for Ablation {
    fn default() -> Self {
        Self { lstm: true, mhsa: true, dmin: true, aggregation: Aggregation::Conv1d }
    }
}

/// Configuration of [`M3dfel`](crate::M3dfel).
///
/// Everything that changes a weight's shape can be recovered from a weight file
/// (see [`crate::weights`]); `num_heads`, `frame_size` and `preset` are stored in
/// the project's own files and default to the paper's values for PyTorch files.
#[derive(Config, Debug, PartialEq)]
pub struct M3dfelConfig {
    /// Preset name this configuration came from (informational).
    #[config(default = "String::from(\"paper\")")]
    pub preset: String,
    /// Frames per clip.
    #[config(default = 16)]
    pub num_frames: usize,
    /// Side of the square input frames, in pixels.
    #[config(default = 112)]
    pub frame_size: usize,
    /// Frames per 3D instance (L). The bag size is `num_frames / instance_length`.
    #[config(default = 4)]
    pub instance_length: usize,
    /// Channel widths of the R3D-18 stem/layer1, layer2, layer3 and layer4.
    #[config(default = "[64, 128, 256, 512]")]
    pub widths: [usize; 4],
    /// Hidden size of each direction of the BiLSTM.
    #[config(default = 512)]
    pub lstm_hidden: usize,
    /// Number of stacked BiLSTM layers.
    #[config(default = 2)]
    pub lstm_layers: usize,
    /// Attention heads of the MHSA.
    #[config(default = 8)]
    pub num_heads: usize,
    /// Number of output classes.
    #[config(default = "NUM_CLASSES")]
    pub num_classes: usize,
    /// Ablation switches (paper Table 4).
    #[config(default = "Ablation::default()")]
    pub ablation: Ablation,
}

/// Names accepted by [`M3dfelConfig::preset`].
pub const PRESETS: [&str; 3] = ["paper", "small", "tiny"];

/// A preset name that is not one of [`PRESETS`].
#[derive(Debug, thiserror::Error)]
#[error("unknown preset {0:?}; choose one of {choices}", choices = PRESETS.join(", "))]
pub struct UnknownPreset(pub String);

impl M3dfelConfig {
    /// A named preset:
    /// - `paper`: exactly the authors' model (46,823,384 parameters, 112×112 frames);
    /// - `small`: half-width backbone and BiLSTM, 112×112 frames (about ¼ of the compute);
    /// - `tiny`: ⅛-width backbone, 64-unit BiLSTM, 64×64 frames: trains on a CPU in minutes
    ///   and runs on weak browsers.
    pub fn preset(name: &str) -> Option<Self> {
        let base = Self::new().with_preset(name.to_string());
        match name {
            "paper" => Some(base),
            "small" => Some(base.with_widths([32, 64, 128, 256]).with_lstm_hidden(256)),
            "tiny" => Some(
                base.with_widths([8, 16, 32, 64])
                    .with_lstm_hidden(64)
                    .with_frame_size(64),
            ),
            _ => None,
        }
    }

    /// [`Self::preset`] for a name a person typed: an unknown one is an error listing the choices.
    pub fn named(name: &str) -> Result<Self, UnknownPreset> {
        Self::preset(name).ok_or_else(|| UnknownPreset(name.to_string()))
    }

    /// Bag size N: the number of 3D instances per clip.
    pub fn bag_size(&self) -> usize {
        self.num_frames / self.instance_length
    }

    /// Width of one instance feature entering DMIN and the classifier
    /// (`2 × lstm_hidden` with the BiLSTM, the backbone width without it).
    pub fn feature_dim(&self) -> usize {
        if self.ablation.lstm { 2 * self.lstm_hidden } else { self.widths[3] }
    }

    /// Checks the combination of values; the message says what to change.
    pub fn validate(&self) -> Result<(), String> {
        if self.instance_length == 0 || self.num_frames % self.instance_length != 0 {
            return Err(format!(
                "instance length {} must divide the {} frames of a clip (bag sizes 1, 2, 4, 8, 16 \
                 correspond to instance lengths 16, 8, 4, 2, 1)",
                self.instance_length, self.num_frames
            ));
        }
        if self.ablation.mhsa && (self.num_heads == 0 || self.feature_dim() % self.num_heads != 0) {
            return Err(format!(
                "{} attention heads do not divide the feature width {}",
                self.num_heads,
                self.feature_dim()
            ));
        }
        if self.frame_size < 16 {
            return Err(format!("frame size {} is too small (at least 16 pixels)", self.frame_size));
        }
        if self.widths.contains(&0) || self.lstm_hidden == 0 || self.lstm_layers == 0 {
            return Err("widths, BiLSTM hidden size and layer count must be positive".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_is_valid_and_named_after_itself() {
        for name in PRESETS {
            let config = M3dfelConfig::preset(name).unwrap();
            assert_eq!(config.preset, name);
            config.validate().unwrap();
        }
        assert!(M3dfelConfig::preset("huge").is_none());
        let error = M3dfelConfig::named("huge").unwrap_err().to_string();
        assert!(PRESETS.iter().all(|name| error.contains(name)) && error.contains("\"huge\""), "{error}");
    }

    #[test]
    fn bag_size_follows_the_instance_length() {
        let config = M3dfelConfig::new();
        assert_eq!(config.bag_size(), 4);
        assert_eq!(config.clone().with_instance_length(1).bag_size(), 16);
        assert!(config.with_instance_length(3).validate().is_err());
    }
}
