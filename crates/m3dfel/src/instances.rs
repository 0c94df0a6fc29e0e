//! 3D-instance generation: a clip of frames becomes a bag of N short 3D instances.

use burn::tensor::{Tensor, backend::Backend};

/// `[B, F, 3, H, W]` (frame-major clips) → `[B·N, 3, L, H, W]` with N = F / L.
///
/// Instance k of clip b holds frames `k·L .. k·L + L − 1` (contiguous, non-overlapping)
/// and is row `b·N + k` of the result.
pub fn to_instances<B: Backend>(clips: Tensor<B, 5>, instance_length: usize) -> Tensor<B, 5> {
    let [batch, frames, channels, height, width] = clips.dims();
    let n = frames / instance_length;
    clips
        .reshape([batch * n, instance_length, channels, height, width]) // [B·N, L, 3, H, W]
        .swap_dims(1, 2) // [B·N, 3, L, H, W]
}

/// Frame span `[first, last]` (inclusive) of instance `index` for instances of `length` frames.
pub fn instance_frames(index: usize, length: usize) -> [usize; 2] {
    [index * length, index * length + length - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::backend::Flex;
    use burn::tensor::TensorData;

    #[test]
    fn instance_k_of_clip_b_holds_frames_kl_to_kl_plus_l() {
        let device = Default::default();
        // Two clips of 16 one-pixel frames; the value encodes (clip, frame, channel).
        let values: Vec<f32> = (0..2 * 16 * 3)
            .map(|i| {
                let (clip, frame, channel) = (i / 48, (i / 3) % 16, i % 3);
                (clip * 1000 + frame * 10 + channel) as f32
            })
            .collect();
        let clips = Tensor::<Flex, 5>::from_data(TensorData::new(values, [2, 16, 3, 1, 1]), &device);
        let instances = to_instances(clips, 4);
        assert_eq!(instances.dims(), [8, 3, 4, 1, 1]);
        let data = instances.into_data().to_vec::<f32>().unwrap();
        // Row b·N + k, channel ch, time t  ↔  clip b, frame 4k + t, channel ch.
        for (row, clip, k) in [(0, 0, 0), (3, 0, 3), (5, 1, 1)] {
            for ch in 0..3 {
                for t in 0..4 {
                    let got = data[((row * 3 + ch) * 4) + t];
                    assert_eq!(got, (clip * 1000 + (4 * k + t) * 10 + ch) as f32);
                }
            }
        }
        assert_eq!(instance_frames(3, 4), [12, 15]);
    }
}
