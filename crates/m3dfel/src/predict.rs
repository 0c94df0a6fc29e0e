//! Clip results as people and programs read them: probabilities, the predicted class and
//! a per-instance timeline. The same shape is printed by `m3dfel predict --json` and
//! returned by the browser package.

use serde::{Deserialize, Serialize};

use crate::classes::CLASSES;
use crate::instances::instance_frames;

/// One 3D instance of a clip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceResult {
    /// Position in the bag, 0-based.
    pub index: usize,
    /// First and last frame (inclusive) of the 16 sampled frames.
    pub frames: [usize; 2],
    pub logits: Vec<f32>,
    pub probabilities: Vec<f32>,
    /// Mean activation of the instance's sigmoid gate.
    pub gate: f32,
}

/// The prediction for one clip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClipResult {
    pub logits: Vec<f32>,
    pub probabilities: Vec<f32>,
    /// Name of the most probable class.
    pub prediction: String,
    pub instances: Vec<InstanceResult>,
}

/// Numerically stable softmax (computed in f64).
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let exps: Vec<f64> = logits.iter().map(|&l| (l as f64 - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.iter().map(|e| (e / sum) as f32).collect()
}

/// Index of the largest value (the first one on ties).
pub fn argmax(values: &[f32]) -> usize {
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| if v > best.1 { (i, v) } else { best })
        .0
}

impl ClipResult {
    /// Builds the results of a batch from the model outputs read back to the host:
    /// `logits` [B·K], `instance_logits` [B·N·K], `gate_mean` [B·N] (row-major).
    pub fn from_outputs(
        logits: &[f32],
        instance_logits: &[f32],
        gate_mean: &[f32],
        bag_size: usize,
        instance_length: usize,
    ) -> Vec<ClipResult> {
        let classes = CLASSES.len();
        logits
            .chunks(classes)
            .zip(instance_logits.chunks(bag_size * classes))
            .zip(gate_mean.chunks(bag_size))
            .map(|((clip_logits, clip_instances), gates)| {
                let probabilities = softmax(clip_logits);
                let instances = clip_instances
                    .chunks(classes)
                    .zip(gates)
                    .enumerate()
                    .map(|(index, (logits, &gate))| InstanceResult {
                        index,
                        frames: instance_frames(index, instance_length),
                        logits: logits.to_vec(),
                        probabilities: softmax(logits),
                        gate,
                    })
                    .collect();
                ClipResult {
                    logits: clip_logits.to_vec(),
                    prediction: CLASSES[argmax(&probabilities)].to_string(),
                    probabilities,
                    instances,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softmax_sums_to_one_and_survives_huge_logits() {
        let p = softmax(&[1000.0, 1000.0, -1000.0]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert!((p[0] - 0.5).abs() < 1e-6 && p[2] == 0.0);
    }

    #[test]
    fn results_split_the_batch_into_clips_and_instances() {
        let mut logits = vec![0.0; 14];
        logits[3] = 5.0; // clip 0 → angry
        logits[7 + 4] = 5.0; // clip 1 → surprise
        let instance_logits = vec![0.0; 2 * 4 * 7];
        let gates: Vec<f32> = (0..8).map(|i| i as f32 / 10.0).collect();
        let results = ClipResult::from_outputs(&logits, &instance_logits, &gates, 4, 4);
        assert_eq!(results.len(), 2);
        assert_eq!(results[0].prediction, "angry");
        assert_eq!(results[1].prediction, "surprise");
        assert_eq!(results[1].instances[2].frames, [8, 11]);
        assert!((results[1].instances[2].gate - 0.6).abs() < 1e-6);
    }
}
