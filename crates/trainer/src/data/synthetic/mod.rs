//! The built-in synthetic dynamic-expression dataset.
//!
//! Each clip is a procedurally drawn person ([`face`]) in a cluttered scene, with a little
//! head motion, lighting, sensor noise and blinks. The expression ([`expression`]) is only
//! present in a random sub-window of the clip (onset → apex → offset); outside it the face
//! is neutral or talking. About one expressive clip in twelve is *subtle*: its apex is about
//! as large as the differences between people's resting faces, so no single frame tells it
//! apart from neutral, only the change over time does. Clips have 16 to 40 frames.
//!
//! Everything is a pure function of (seed, split, clip index, frame index): clips can be
//! drawn on the fly by any thread, at any size, and are the same on every machine.

pub mod expression;
pub mod face;

use image::RgbImage;

use crate::rng::Rng;
use expression::{Actions, Envelope, apex};
use face::{Identity, Pose, Scene};

/// Number of classes the generator draws ([`m3dfel::CLASSES`] order).
const CLASSES: usize = m3dfel::NUM_CLASSES;
/// Shortest and longest clip, in frames.
pub const MIN_FRAMES: usize = 16;
pub const MAX_FRAMES: usize = 40;
/// Share of expressive clips that are subtle.
const SUBTLE_SHARE: f32 = 0.08;

/// Mouth motion of a person talking.
#[derive(Debug, Clone)]
struct Talking {
    /// Cycles per frame.
    rate: f32,
    amplitude: f32,
    phase: f32,
}

/// Slow head motion: a drift of the head centre, size and roll over the clip.
#[derive(Debug, Clone)]
struct Motion {
    center: [f32; 2],
    size: f32,
    roll: f32,
    sway: [f32; 3],
    rate: f32,
    phase: f32,
}

/// One synthetic clip, fully determined by its key.
#[derive(Debug, Clone)]
pub struct SyntheticClip {
    pub label: usize,
    /// Number of frames.
    pub len: usize,
    /// Whether the expression is subtle (see the module docs).
    pub subtle: bool,
    identity: Identity,
    scene: Scene,
    envelope: Envelope,
    talking: Option<Talking>,
    motion: Motion,
    blink: Option<f32>,
    key: [u64; 3],
}

impl SyntheticClip {
    /// Clip `index` of the split called `split` (any number; different splits share no
    /// people) of the dataset with seed `seed`. Labels cycle through the seven classes.
    pub fn new(seed: u64, split: u64, index: usize) -> Self {
        let key = [seed, split, index as u64];
        let mut rng = Rng::keyed(seed, &[split, index as u64]);
        let label = index % CLASSES;
        let len = MIN_FRAMES + rng.below(MAX_FRAMES - MIN_FRAMES + 1);
        let subtle = label != 2 && rng.chance(SUBTLE_SHARE);
        let intensity = if subtle { rng.range(0.45, 0.6) } else { rng.range(0.9, 1.0) };
        let envelope = Envelope::random(&mut rng, len, intensity);
        let talking = rng.chance(if label == 2 { 0.7 } else { 0.3 }).then(|| Talking {
            rate: rng.range(0.08, 0.25),
            amplitude: rng.range(0.15, 0.4),
            phase: rng.range(0.0, std::f32::consts::TAU),
        });
        let motion = Motion {
            center: [rng.range(0.44, 0.56), rng.range(0.5, 0.58)],
            size: rng.range(0.48, 0.56),
            roll: rng.range(-0.15, 0.15),
            sway: [rng.range(0.0, 0.025), rng.range(0.0, 0.02), rng.range(0.0, 0.06)],
            rate: rng.range(0.02, 0.08),
            phase: rng.range(0.0, std::f32::consts::TAU),
        };
        let blink = rng.chance(0.5).then(|| rng.range(0.0, len as f32));
        let identity = Identity::random(&mut rng);
        let scene = Scene::random(&mut rng);
        Self { label, len, subtle, identity, scene, envelope, talking, motion, blink, key }
    }

    /// The facial actions at frame `t`.
    pub fn actions_at(&self, t: f32) -> Actions {
        let level = self.envelope.at(t);
        let mut actions = self.identity.resting.plus(apex(self.label).scaled(level));
        if let Some(talk) = &self.talking {
            // Talking pauses while the expression is at its strongest.
            let beat = (std::f32::consts::TAU * talk.rate * t + talk.phase).sin().max(0.0);
            let quiet = 1.0 - (level / self.envelope.intensity.max(1e-3)).min(1.0);
            actions.mouth_open += talk.amplitude * beat * quiet;
        }
        actions
    }

    fn pose_at(&self, t: f32) -> Pose {
        let m = &self.motion;
        let wave = (std::f32::consts::TAU * m.rate * t + m.phase).sin();
        let wave2 = (std::f32::consts::TAU * m.rate * 1.7 * t + 2.0 * m.phase).cos();
        let lids = match self.blink {
            Some(at) if (t - at).abs() < 1.0 => 0.1,
            _ => 1.0,
        };
        Pose {
            center: [m.center[0] + m.sway[0] * wave, m.center[1] + m.sway[1] * wave2],
            size: m.size * (1.0 + 0.02 * wave2),
            roll: m.roll + m.sway[2] * wave,
            lids,
        }
    }

    /// Frame `t` (0-based, < `len`) drawn at `size`×`size` pixels.
    pub fn frame(&self, t: usize, size: usize) -> RgbImage {
        let mut noise = Rng::keyed(self.key[0], &[self.key[1], self.key[2], t as u64, 0x4E01_5E]);
        let time = t as f32;
        face::draw(&self.identity, &self.scene, self.pose_at(time), self.actions_at(time), size, &mut noise)
    }

    /// The expression window (first and last source frame), or `None` for neutral clips.
    pub fn window(&self) -> Option<(f32, f32)> {
        (self.label != 2).then_some((self.envelope.onset, self.envelope.offset_end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clip_is_a_pure_function_of_its_key() {
        let a = SyntheticClip::new(5, 1, 9);
        let b = SyntheticClip::new(5, 1, 9);
        assert_eq!(a.frame(3, 32), b.frame(3, 32));
        assert_ne!(a.frame(3, 32), SyntheticClip::new(5, 2, 9).frame(3, 32));
        assert!((MIN_FRAMES..=MAX_FRAMES).contains(&a.len));
    }

    #[test]
    fn the_expression_changes_the_face_only_inside_its_window() {
        let clip = (0..50).map(|i| SyntheticClip::new(1, 1, i)).find(|c| c.label == 4 && c.talking.is_none()).unwrap();
        let (onset, end) = clip.window().unwrap();
        let outside = (0..clip.len).find(|&t| (t as f32) < onset || (t as f32) > end).unwrap();
        let apex = (clip.envelope.apex_start.ceil() as usize).min(clip.len - 1);
        let neutral = clip.identity.resting;
        assert_eq!(clip.actions_at(outside as f32), neutral);
        let at_apex = clip.actions_at(apex as f32);
        assert!(at_apex.brow_raise > neutral.brow_raise + 0.3 && at_apex.mouth_open > 0.3, "{at_apex:?}");
    }

    #[test]
    fn labels_are_balanced() {
        let mut counts = [0; CLASSES];
        for i in 0..70 {
            counts[SyntheticClip::new(3, 1, i).label] += 1;
        }
        assert_eq!(counts, [10; CLASSES]);
    }
}
