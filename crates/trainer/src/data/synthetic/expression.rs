//! Facial actions (action-unit-like parameters), the seven expressions as action profiles,
//! and the onset → apex → offset envelope of an expression within a clip.

use crate::rng::Rng;

/// Action-unit-like parameters that shape the drawn face; 0 is relaxed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Actions {
    /// Lip-corner puller (+, AU12) or depressor (−, AU15).
    pub mouth_corners: f32,
    /// Jaw drop / lips part (AU25–27).
    pub mouth_open: f32,
    /// Lip stretcher (AU20): a wide, flat mouth.
    pub lip_stretch: f32,
    /// Lip presser / tightener (AU23–24): a narrow, thin mouth.
    pub lip_press: f32,
    /// Upper-lip raiser (AU10).
    pub upper_lip_raise: f32,
    /// One-sided upper-lip raise, the sneer of disgust (unilateral AU10): tilts the mouth.
    pub sneer: f32,
    /// Brow raiser (AU1+2, +) or lowerer (−).
    pub brow_raise: f32,
    /// Inner brows pulled down (+, AU4) or raised (−, AU1).
    pub brow_inner_lower: f32,
    /// Upper-lid raiser (+, AU5) or lid tightener / cheek raiser (−, AU6–7).
    pub eye_open: f32,
    /// Nose wrinkler (AU9).
    pub nose_wrinkle: f32,
}

impl Actions {
    pub fn scaled(self, k: f32) -> Self {
        self.zip(Self::default(), |a, _| a * k)
    }

    pub fn plus(self, other: Self) -> Self {
        self.zip(other, |a, b| a + b)
    }

    fn zip(self, o: Self, f: impl Fn(f32, f32) -> f32) -> Self {
        Self {
            mouth_corners: f(self.mouth_corners, o.mouth_corners),
            mouth_open: f(self.mouth_open, o.mouth_open),
            lip_stretch: f(self.lip_stretch, o.lip_stretch),
            lip_press: f(self.lip_press, o.lip_press),
            upper_lip_raise: f(self.upper_lip_raise, o.upper_lip_raise),
            sneer: f(self.sneer, o.sneer),
            brow_raise: f(self.brow_raise, o.brow_raise),
            brow_inner_lower: f(self.brow_inner_lower, o.brow_inner_lower),
            eye_open: f(self.eye_open, o.eye_open),
            nose_wrinkle: f(self.nose_wrinkle, o.nose_wrinkle),
        }
    }

    /// A person's resting face: small individual offsets, as large as a subtle expression,
    /// so that a subtle expression is only visible as a change over time.
    pub fn resting(rng: &mut Rng) -> Self {
        Self {
            mouth_corners: 0.2 * rng.normal(),
            mouth_open: 0.0,
            lip_stretch: 0.15 * rng.normal(),
            lip_press: 0.1 * rng.normal().abs(),
            upper_lip_raise: 0.0,
            sneer: 0.0,
            brow_raise: 0.2 * rng.normal(),
            brow_inner_lower: 0.15 * rng.normal(),
            eye_open: 0.12 * rng.normal(),
            nose_wrinkle: 0.0,
        }
    }
}

/// The apex of each expression, in [`m3dfel::CLASSES`] order
/// (happy, sad, neutral, angry, surprise, disgust, fear).
pub fn apex(class: usize) -> Actions {
    let zero = Actions::default();
    match class {
        0 => Actions { mouth_corners: 1.0, mouth_open: 0.25, eye_open: -0.35, ..zero },
        1 => Actions { mouth_corners: -0.9, brow_inner_lower: -0.9, eye_open: -0.25, lip_press: 0.3, ..zero },
        3 => Actions {
            brow_inner_lower: 1.0,
            brow_raise: -0.5,
            eye_open: -0.45,
            lip_press: 1.0,
            mouth_corners: -0.2,
            ..zero
        },
        4 => Actions { brow_raise: 1.0, eye_open: 0.8, mouth_open: 1.0, lip_stretch: -0.3, ..zero },
        5 => Actions {
            nose_wrinkle: 1.0,
            upper_lip_raise: 0.8,
            sneer: 1.0,
            brow_inner_lower: 0.5,
            brow_raise: -0.3,
            mouth_corners: -0.3,
            eye_open: -0.35,
            ..zero
        },
        6 => Actions {
            brow_raise: 0.6,
            brow_inner_lower: -1.0,
            eye_open: 0.8,
            lip_stretch: 1.2,
            mouth_open: 0.3,
            mouth_corners: -0.3,
            ..zero
        },
        _ => zero,
    }
}

/// When the expression happens inside a clip (positions in source frames) and how strong
/// it is at its apex.
#[derive(Debug, Clone, Copy)]
pub struct Envelope {
    pub onset: f32,
    pub apex_start: f32,
    pub apex_end: f32,
    pub offset_end: f32,
    pub intensity: f32,
}

impl Envelope {
    /// A random sub-window covering 55–85 % of a clip of `len` frames.
    pub fn random(rng: &mut Rng, len: usize, intensity: f32) -> Self {
        let len = len as f32;
        let duration = len * rng.range(0.55, 0.85);
        let onset = rng.range(0.0, len - duration);
        let rise = duration * rng.range(0.2, 0.35);
        let fall = duration * rng.range(0.2, 0.35);
        Self {
            onset,
            apex_start: onset + rise,
            apex_end: onset + duration - fall,
            offset_end: onset + duration,
            intensity,
        }
    }

    /// Expression strength at source frame `t`: 0 outside, smooth rise and fall, `intensity`
    /// at the apex.
    pub fn at(&self, t: f32) -> f32 {
        let smooth = |x: f32| {
            let x = x.clamp(0.0, 1.0);
            x * x * (3.0 - 2.0 * x)
        };
        let level = if t < self.apex_start {
            smooth((t - self.onset) / (self.apex_start - self.onset).max(1e-3))
        } else if t <= self.apex_end {
            1.0
        } else {
            1.0 - smooth((t - self.apex_end) / (self.offset_end - self.apex_end).max(1e-3))
        };
        level * self.intensity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_is_zero_outside_the_window_and_full_at_the_apex() {
        let e = Envelope { onset: 4.0, apex_start: 6.0, apex_end: 9.0, offset_end: 12.0, intensity: 0.8 };
        assert_eq!(e.at(0.0), 0.0);
        assert_eq!(e.at(13.0), 0.0);
        assert_eq!(e.at(7.0), 0.8);
        assert!(e.at(5.0) > 0.0 && e.at(5.0) < 0.8);
    }

    #[test]
    fn every_expression_but_neutral_moves_the_face() {
        for class in 0..7 {
            assert_eq!(apex(class) == Actions::default(), class == 2, "class {class}");
        }
    }
}
