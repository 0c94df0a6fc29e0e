//! Draws one frame of a procedural face: a person (identity), the scene around them, the
//! head pose of the frame and the facial actions of the frame. Everything is analytic, so
//! frames can be drawn at any size and any time step, anti-aliased by signed distances.

use image::{Rgb, RgbImage};

use super::expression::Actions;
use crate::rng::Rng;

type Color = [f32; 3];

/// What stays fixed for a person across a clip.
#[derive(Debug, Clone)]
pub struct Identity {
    skin: Color,
    hair: Color,
    iris: Color,
    lips: Color,
    /// Face width / face height.
    aspect: f32,
    /// Half distance between the eyes, in face units.
    eye_spacing: f32,
    hairline: f32,
    pub resting: Actions,
}

/// Background and lighting of a clip.
#[derive(Debug, Clone)]
pub struct Scene {
    top: Color,
    bottom: Color,
    clutter: Vec<Clutter>,
    light: [f32; 2],
    gain: f32,
    pub noise: f32,
}

#[derive(Debug, Clone)]
struct Clutter {
    center: [f32; 2],
    half: [f32; 2],
    round: bool,
    color: Color,
}

/// Where the head is in one frame (image units: the frame is [0, 1]²).
#[derive(Debug, Clone, Copy)]
pub struct Pose {
    pub center: [f32; 2],
    /// Half height of the face.
    pub size: f32,
    /// Head roll in radians.
    pub roll: f32,
    /// Eyelid closure for blinks: 1 open, 0 closed.
    pub lids: f32,
}

fn random_color(rng: &mut Rng, low: f32, high: f32) -> Color {
    [rng.range(low, high), rng.range(low, high), rng.range(low, high)]
}

impl Identity {
    pub fn random(rng: &mut Rng) -> Self {
        // Skin tones from dark to light brown along one line, plus a small tint.
        let tone = rng.range(0.15, 1.0);
        let skin = [
            0.36 + 0.56 * tone + rng.range(-0.03, 0.03),
            0.22 + 0.54 * tone + rng.range(-0.03, 0.03),
            0.15 + 0.50 * tone + rng.range(-0.03, 0.03),
        ];
        let hair_shade = rng.range(0.05, 0.55);
        Self {
            skin,
            hair: [hair_shade * rng.range(0.8, 1.3), hair_shade * rng.range(0.6, 1.0), hair_shade * rng.range(0.4, 0.8)],
            iris: random_color(rng, 0.05, 0.45),
            lips: [skin[0] * rng.range(0.65, 0.8), skin[1] * rng.range(0.4, 0.55), skin[2] * rng.range(0.4, 0.6)],
            aspect: rng.range(0.7, 0.9),
            eye_spacing: rng.range(0.38, 0.45),
            hairline: rng.range(-0.75, -0.5),
            resting: Actions::resting(rng),
        }
    }
}

impl Scene {
    pub fn random(rng: &mut Rng) -> Self {
        let clutter = (0..2 + rng.below(4))
            .map(|_| Clutter {
                center: [rng.unit(), rng.unit()],
                half: [rng.range(0.03, 0.25), rng.range(0.03, 0.25)],
                round: rng.chance(0.5),
                color: random_color(rng, 0.1, 0.9),
            })
            .collect();
        Self {
            top: random_color(rng, 0.1, 0.9),
            bottom: random_color(rng, 0.1, 0.9),
            clutter,
            light: [rng.range(-0.4, 0.4), rng.range(-0.4, 0.2)],
            gain: rng.range(0.8, 1.2),
            noise: rng.range(0.005, 0.02),
        }
    }

    fn background(&self, x: f32, y: f32) -> Color {
        let mut color = lerp(self.top, self.bottom, y);
        for shape in &self.clutter {
            let dx = (x - shape.center[0]) / shape.half[0];
            let dy = (y - shape.center[1]) / shape.half[1];
            let inside = if shape.round { dx * dx + dy * dy <= 1.0 } else { dx.abs() <= 1.0 && dy.abs() <= 1.0 };
            if inside {
                color = lerp(color, shape.color, 0.4);
            }
        }
        color
    }
}

fn lerp(a: Color, b: Color, t: f32) -> Color {
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t, a[2] + (b[2] - a[2]) * t]
}

fn scale(c: Color, k: f32) -> Color {
    [c[0] * k, c[1] * k, c[2] * k]
}

/// Signed distance from (u, v) to an ellipse (approximate; exact on the axes).
fn ellipse(u: f32, v: f32, cu: f32, cv: f32, ru: f32, rv: f32) -> f32 {
    let (du, dv) = ((u - cu) / ru, (v - cv) / rv);
    ((du * du + dv * dv).sqrt() - 1.0) * ru.min(rv)
}

/// Signed distance from (u, v) to a segment of half-thickness `r`.
fn capsule(u: f32, v: f32, a: [f32; 2], b: [f32; 2], r: f32) -> f32 {
    let (pu, pv, bu, bv) = (u - a[0], v - a[1], b[0] - a[0], b[1] - a[1]);
    let h = ((pu * bu + pv * bv) / (bu * bu + bv * bv)).clamp(0.0, 1.0);
    ((pu - bu * h).powi(2) + (pv - bv * h).powi(2)).sqrt() - r
}

/// Signed distance from `v` to the horizontal band [top, bottom].
fn band(v: f32, top: f32, bottom: f32) -> f32 {
    -(v - top).min(bottom - v)
}

/// Everything needed to shade one pixel of the face, in face units (the face is the unit
/// disc scaled by the identity's aspect: u across, v down, eyes at v ≈ −0.12, mouth at 0.5).
struct FaceShader<'a> {
    id: &'a Identity,
    a: Actions,
    lids: f32,
    /// Size of one pixel in face units, for anti-aliasing.
    pixel: f32,
}

impl FaceShader<'_> {
    /// Coverage of a shape with signed distance `d` (face units).
    fn ink(&self, d: f32) -> f32 {
        (0.5 - d / self.pixel).clamp(0.0, 1.0)
    }

    fn shade(&self, u: f32, v: f32, mut color: Color) -> Color {
        let (id, a) = (self.id, &self.a);
        // Hair above the hairline.
        let hairline = id.hairline + 0.08 * (u * 5.0).cos();
        color = lerp(color, id.hair, self.ink(v - hairline));
        // Cheeks raised by a smile.
        let cheeks = ellipse(u.abs(), v, 0.45, 0.22, 0.16, 0.12);
        color = lerp(color, scale(id.lips, 1.1), 0.35 * a.mouth_corners.max(0.0).min(1.0) * self.ink(cheeks));
        // Nose wrinkles.
        for (k, row) in [-0.02f32, 0.04, 0.1].iter().enumerate() {
            let d = capsule(u, v, [-0.08 + 0.01 * k as f32, *row], [0.08 - 0.01 * k as f32, *row], 0.012);
            color = lerp(color, scale(id.skin, 0.55), a.nose_wrinkle.clamp(0.0, 1.0) * self.ink(d));
        }
        // Nostrils.
        color = lerp(color, scale(id.skin, 0.45), self.ink(ellipse(u.abs(), v, 0.07, 0.23, 0.035, 0.022)));
        self.brows(u, v, self.eyes(u, v, self.mouth(u, v, color)))
    }

    fn brows(&self, u: f32, v: f32, color: Color) -> Color {
        let a = &self.a;
        let base = -0.38 - 0.3 * a.brow_raise;
        let inner = [0.1, base + 0.3 * a.brow_inner_lower];
        let outer = [0.52, base - 0.02 - 0.02 * a.brow_raise];
        let d = capsule(u.abs(), v, inner, outer, 0.08);
        lerp(color, lerp(scale(self.id.skin, 0.3), self.id.hair, 0.3), self.ink(d))
    }

    fn eyes(&self, u: f32, v: f32, color: Color) -> Color {
        let open = ((1.0 + 1.2 * self.a.eye_open) * self.lids).clamp(0.05, 2.6);
        let (cu, cv, ru, rv) = (self.id.eye_spacing, -0.12, 0.2, 0.1 * open);
        let lid = ellipse(u.abs(), v, cu, cv, ru, rv);
        let white = self.ink(lid);
        let iris = self.ink(ellipse(u.abs(), v, cu, cv, 0.075, 0.075)).min(white);
        let outline = self.ink(lid.abs() - 0.012);
        let mut color = lerp(color, [0.93, 0.92, 0.9], white);
        color = lerp(color, self.id.iris, iris);
        lerp(color, [0.08, 0.06, 0.05], outline)
    }

    fn mouth(&self, u: f32, v: f32, color: Color) -> Color {
        let a = &self.a;
        let half_width = 0.42 * (1.0 + 0.4 * a.lip_stretch - 0.4 * a.lip_press).max(0.3);
        let x = u / half_width;
        if x.abs() >= 1.15 {
            return color;
        }
        let x2 = (x * x).min(1.0);
        let middle = 0.5 - 0.04 * a.upper_lip_raise - 0.4 * a.mouth_corners * x2 + 0.1 * a.mouth_corners - 0.2 * a.sneer * x;
        let opening = 0.42 * a.mouth_open.max(0.0) * (1.0 - x2).sqrt();
        let upper = middle - 0.35 * opening - 0.1 * a.upper_lip_raise.max(0.0) * (1.0 - x2);
        let lower = middle + 0.65 * opening;
        let lip = 0.06 * (1.0 - 0.6 * a.lip_press.clamp(0.0, 1.0)) * (1.0 - x2).sqrt() + 0.006;
        let across = self.ink(x.abs() * half_width - half_width);
        let lips = self.ink(band(v, upper - lip, lower + lip)).min(across);
        let inside = self.ink(band(v, upper, lower)).min(across);
        let teeth = self.ink(band(v, upper, upper + 0.4 * opening)).min(inside);
        let mut color = lerp(color, self.id.lips, lips);
        color = lerp(color, [0.22, 0.05, 0.06], inside);
        lerp(color, [0.9, 0.88, 0.82], teeth * (a.mouth_open > 0.3) as u8 as f32)
    }
}

/// Draws one `size`×`size` frame. `noise` draws the sensor noise of this frame.
pub fn draw(identity: &Identity, scene: &Scene, pose: Pose, actions: Actions, size: usize, noise: &mut Rng) -> RgbImage {
    let (sin, cos) = pose.roll.sin_cos();
    let half_height = pose.size;
    let half_width = pose.size * identity.aspect;
    let shader = FaceShader { id: identity, a: actions, lids: pose.lids, pixel: 1.0 / (size as f32 * half_width) };
    let mut image = RgbImage::new(size as u32, size as u32);
    for (px, py, pixel) in image.enumerate_pixels_mut() {
        let x = (px as f32 + 0.5) / size as f32;
        let y = (py as f32 + 0.5) / size as f32;
        let (dx, dy) = (x - pose.center[0], y - pose.center[1]);
        let u = (dx * cos + dy * sin) / half_width;
        let v = (-dx * sin + dy * cos) / half_height;
        let mut color = scene.background(x, y);
        // Neck, then the head over it.
        let neck = shader.ink((u.abs() - 0.5).max(0.75 - v));
        color = lerp(color, scale(identity.skin, 0.8), neck);
        let head = shader.ink(ellipse(u, v, 0.0, 0.0, 1.0, 1.0));
        if head > 0.0 {
            let light = 1.0 + scene.light[0] * u + scene.light[1] * v - 0.12 * (u * u + v * v);
            let face = shader.shade(u, v, scale(identity.skin, light));
            color = lerp(color, face, head);
        }
        let sigma = scene.noise;
        *pixel = Rgb(color.map(|c| ((c * scene.gain + sigma * noise.normal()).clamp(0.0, 1.0) * 255.0 + 0.5) as u8));
    }
    image
}
