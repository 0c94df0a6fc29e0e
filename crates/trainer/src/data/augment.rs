//! The spec's training-time frame sampling and augmentations, drawn once per clip and
//! applied identically to its 16 frames: random-resized crop (area 8–100 %, aspect 3/4–4/3,
//! Inception style), horizontal flip (p = 0.5) and colour jitter of strength 0.4
//! (brightness, contrast, saturation in [0.6, 1.4], hue in [−0.4, 0.4], in a random order).
//! Evaluation uses a plain bilinear resize. A milder policy suits short runs on small data.

use clap::ValueEnum;
use image::RgbImage;

use crate::rng::Rng;

/// Largest random offset added to each sampled frame index during training.
const MAX_OFFSET: usize = 15;
/// Colour jitter strength.
const JITTER: f32 = 0.4;

/// How training clips are augmented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// The reference's: each sampled frame moved by a random 0..15 frames, crops of 8–100 %
    /// of the area, flips, colour jitter 0.4.
    Spec,
    /// Milder: each sampled frame moved within its own 1/16 of the clip (order kept), crops
    /// of 50–100 % of the area, flips, colour jitter 0.4.
    Light,
    /// None: training clips are sampled and resized like test clips.
    None,
}

impl Policy {
    fn min_area(self) -> f32 {
        if self == Policy::Spec { 0.08 } else { 0.5 }
    }
}

/// Training sampling: frame i of `count` is ⌊n·i/count⌋ plus a random offset (policy
/// `Spec`: 0..15 frames, as the reference code does; `Light`: within the frame's segment),
/// clamped to the last frame.
pub fn train_indices(n: usize, count: usize, policy: Policy, rng: &mut Rng) -> Vec<usize> {
    let max_offset = match policy {
        Policy::Spec => MAX_OFFSET,
        Policy::Light => (n / count).saturating_sub(1),
        Policy::None => 0,
    };
    m3dfel::frames::sample_indices(n, count)
        .into_iter()
        .map(|index| (index + rng.below(max_offset + 1)).min(n.saturating_sub(1)))
        .collect()
}

#[derive(Debug, Clone, Copy)]
enum ColorOp {
    Brightness(f32),
    Contrast(f32),
    Saturation(f32),
    Hue(f32),
}

/// One clip's augmentation.
#[derive(Debug, Clone)]
pub struct Augmentation {
    /// Crop rectangle (x, y, width, height) in source pixels.
    crop: [u32; 4],
    flip: bool,
    colors: [ColorOp; 4],
}

fn gray(p: [f32; 3]) -> f32 {
    0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2]
}

impl Augmentation {
    /// Draws an augmentation for frames of `width`×`height` pixels.
    pub fn random(rng: &mut Rng, policy: Policy, width: u32, height: u32) -> Self {
        let crop = random_crop(rng, policy.min_area(), width, height);
        let flip = rng.chance(0.5);
        let mut factor = || rng.range(1.0 - JITTER, 1.0 + JITTER);
        let mut colors = [
            ColorOp::Brightness(factor()),
            ColorOp::Contrast(factor()),
            ColorOp::Saturation(factor()),
            ColorOp::Hue(rng.range(-JITTER, JITTER)),
        ];
        rng.shuffle(&mut colors);
        Self { crop, flip, colors }
    }

    /// Applies the augmentation to one frame, appending it to `out` as 3 planes (R, G, B) of
    /// `size`×`size` values in [0, 1].
    pub fn apply(&self, image: &RgbImage, size: usize, out: &mut Vec<f32>) {
        let start = out.len();
        crop_resize(image, self.crop, self.flip, size, out);
        let (red, rest) = out[start..].split_at_mut(size * size);
        let (green, blue) = rest.split_at_mut(size * size);
        for op in self.colors {
            apply_color([&mut *red, &mut *green, &mut *blue], op);
        }
    }
}

/// One output pixel's source pixels along an axis of a resize: the first one and their weights.
struct Taps {
    first: usize,
    weights: Vec<f32>,
}

/// The taps of a resize from `from` to `to` pixels with the triangle filter (bilinear,
/// widened when shrinking so that every source pixel counts): the image crate's `Triangle`
/// resize, the one evaluation uses (`m3dfel::frames::resize`), weight for weight.
fn taps(from: usize, to: usize) -> Vec<Taps> {
    let ratio = from as f32 / to as f32;
    let widen = ratio.max(1.0);
    (0..to)
        .map(|i| {
            let centre = (i as f32 + 0.5) * ratio;
            let first = ((centre - widen).floor().max(0.0) as usize).min(from - 1);
            let end = ((centre + widen).ceil() as usize).clamp(first + 1, from);
            let mut weights: Vec<f32> =
                (first..end).map(|j| (1.0 - ((j as f32 - (centre - 0.5)) / widen).abs()).max(0.0)).collect();
            let sum: f32 = weights.iter().sum();
            weights.iter_mut().for_each(|w| *w /= sum);
            Taps { first, weights }
        })
        .collect()
}

/// The `crop` (x, y, width, height) of `image` resized to `size`×`size` with the triangle
/// filter, mirrored if `flip`, appended to `out` as 3 planes of values in [0, 1]: rows first
/// (into one row of floats), then columns, straight from the source's bytes.
fn crop_resize(image: &RgbImage, [x, y, width, height]: [u32; 4], flip: bool, size: usize, out: &mut Vec<f32>) {
    let (x, y, width, height) = (x as usize, y as usize, width as usize, height as usize);
    let stride = image.width() as usize * 3;
    let pixels = image.as_raw();
    let (rows, columns) = (taps(height, size), taps(width, size));
    let start = out.len();
    out.resize(start + 3 * size * size, 0.0);
    let planes = &mut out[start..];
    let mut row = vec![0.0f32; width * 3]; // [width, 3]
    for (out_y, Taps { first, weights }) in rows.iter().enumerate() {
        row.fill(0.0);
        for (source_y, &w) in (y + first..).zip(weights) {
            let source = &pixels[source_y * stride + x * 3..][..width * 3];
            row.iter_mut().zip(source).for_each(|(r, &p)| *r += w * p as f32);
        }
        for (out_x, Taps { first, weights }) in columns.iter().enumerate() {
            let mut sum = [0.0f32; 3];
            for (pixel, &w) in row[first * 3..].chunks_exact(3).zip(weights) {
                (0..3).for_each(|c| sum[c] += w * pixel[c]);
            }
            let column = if flip { size - 1 - out_x } else { out_x };
            for (c, value) in sum.into_iter().enumerate() {
                planes[(c * size + out_y) * size + column] = value / 255.0;
            }
        }
    }
}

/// Inception-style random-resized crop: 10 tries at a random area (`min_area`–100 %) and
/// aspect (3/4–4/3, log-uniform), then the largest centred crop within the aspect range.
fn random_crop(rng: &mut Rng, min_area: f32, width: u32, height: u32) -> [u32; 4] {
    let (w, h) = (width as f32, height as f32);
    let (low, high) = ((3.0f32 / 4.0).ln(), (4.0f32 / 3.0).ln());
    for _ in 0..10 {
        let area = w * h * rng.range(min_area, 1.0);
        let aspect = rng.range(low, high).exp();
        let cw = (area * aspect).sqrt().round() as u32;
        let ch = (area / aspect).sqrt().round() as u32;
        if (1..=width).contains(&cw) && (1..=height).contains(&ch) {
            let x = rng.below((width - cw + 1) as usize) as u32;
            let y = rng.below((height - ch + 1) as usize) as u32;
            return [x, y, cw, ch];
        }
    }
    let ratio = w / h;
    let (cw, ch) = if ratio < 0.75 {
        (width, (w / 0.75).round() as u32)
    } else if ratio > 4.0 / 3.0 {
        ((h * 4.0 / 3.0).round() as u32, height)
    } else {
        (width, height)
    };
    let (cw, ch) = (cw.min(width), ch.min(height));
    [(width - cw) / 2, (height - ch) / 2, cw, ch]
}

/// One colour operation on a frame's three planes, each pixel clamped to [0, 1].
fn apply_color([red, green, blue]: [&mut [f32]; 3], op: ColorOp) {
    let mean_gray = match op {
        ColorOp::Contrast(_) => {
            let sum: f32 = red.iter().zip(&*green).zip(&*blue).map(|((&r, &g), &b)| gray([r, g, b])).sum();
            sum / red.len() as f32
        }
        _ => 0.0,
    };
    for ((r, g), b) in red.iter_mut().zip(green.iter_mut()).zip(blue.iter_mut()) {
        let p = [*r, *g, *b];
        let blend = |other: [f32; 3], k: f32| [0, 1, 2].map(|c| (k * p[c] + (1.0 - k) * other[c]).clamp(0.0, 1.0));
        [*r, *g, *b] = match op {
            ColorOp::Brightness(k) => blend([0.0; 3], k),
            ColorOp::Contrast(k) => blend([mean_gray; 3], k),
            ColorOp::Saturation(k) => blend([gray(p); 3], k),
            ColorOp::Hue(shift) => hue_shift(p, shift),
        };
    }
}

/// Rotates the hue of an RGB colour by `shift` turns (HSV space).
fn hue_shift(p: [f32; 3], shift: f32) -> [f32; 3] {
    let max = p[0].max(p[1]).max(p[2]);
    let min = p[0].min(p[1]).min(p[2]);
    let chroma = max - min;
    if chroma <= 0.0 {
        return p;
    }
    // Remainders by subtraction where the range is known (exact, as `rem_euclid` and `%`
    // are, without their library calls: they took 7 % of preparing a training clip).
    let hue = if max == p[0] {
        let h = (p[1] - p[2]) / chroma; // in [−1, 1]
        if h < 0.0 { h + 6.0 } else { h }
    } else if max == p[1] {
        (p[2] - p[0]) / chroma + 2.0
    } else {
        (p[0] - p[1]) / chroma + 4.0
    } / 6.0;
    let turned = hue + shift;
    let hue = match turned {
        t if (0.0..1.0).contains(&t) => t,
        t if (-1.0..0.0).contains(&t) => t + 1.0,
        t if (1.0..2.0).contains(&t) => t - 1.0,
        t => t.rem_euclid(1.0),
    } * 6.0;
    let sector = (hue as u32).min(5);
    let x = chroma * (1.0 - (hue - (sector & !1) as f32 - 1.0).abs());
    let (r, g, b) = match sector {
        0 => (chroma, x, 0.0),
        1 => (x, chroma, 0.0),
        2 => (0.0, chroma, x),
        3 => (0.0, x, chroma),
        4 => (x, 0.0, chroma),
        _ => (chroma, 0.0, x),
    };
    [r + min, g + min, b + min]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_stay_inside_the_frame_and_vary() {
        let mut rng = Rng::keyed(3, &[]);
        let crops: Vec<_> = (0..200).map(|_| random_crop(&mut rng, 0.08, 224, 160)).collect();
        for &[x, y, w, h] in &crops {
            assert!(w > 0 && h > 0 && x + w <= 224 && y + h <= 160);
        }
        let smallest = crops.iter().map(|c| c[2] * c[3]).min().unwrap() as f32 / (224.0 * 160.0);
        assert!(smallest < 0.2, "the smallest crop covers {smallest}");
    }

    #[test]
    fn hue_shift_by_a_full_turn_changes_nothing_and_a_third_rotates_channels() {
        let p = [0.8, 0.3, 0.1];
        let same = hue_shift(p, 1.0);
        let rotated = hue_shift(p, 1.0 / 3.0);
        for c in 0..3 {
            assert!((same[c] - p[c]).abs() < 1e-5);
            assert!((rotated[(c + 1) % 3] - p[c]).abs() < 1e-5, "{rotated:?}");
        }
    }

    #[test]
    fn training_offsets_stay_within_the_clip() {
        let mut rng = Rng::keyed(1, &[]);
        for n in [1, 16, 17, 40] {
            for policy in [Policy::Spec, Policy::Light] {
                let indices = train_indices(n, 16, policy, &mut rng);
                assert!(indices.iter().all(|&i| i < n));
            }
            let light = train_indices(n, 16, Policy::Light, &mut rng);
            assert!(light.windows(2).all(|w| w[0] <= w[1]), "light sampling keeps the frame order");
        }
    }

    #[test]
    fn the_crop_is_resized_as_evaluation_resizes_and_mirrored() {
        // Odd sizes, shrinking and growing, a crop off the corner: the resize's values equal
        // those of the image crate's (evaluation's), before its rounding to bytes.
        let image = RgbImage::from_fn(53, 41, |x, y| image::Rgb([(x * 37 + y * 11) as u8, (x * y) as u8, (200 - 3 * y) as u8]));
        for (crop, size) in [([5, 3, 37, 29], 16), ([0, 0, 53, 41], 24), ([9, 7, 11, 13], 20), ([20, 10, 16, 16], 16)] {
            let [x, y, w, h] = crop;
            let cropped = image::imageops::crop_imm(&image, x, y, w, h).to_image();
            let expected = m3dfel::frames::resize(&cropped, size);
            let (mut plain, mut mirrored) = (Vec::new(), Vec::new());
            crop_resize(&image, crop, false, size, &mut plain);
            crop_resize(&image, crop, true, size, &mut mirrored);
            assert_eq!(plain.len(), 3 * size * size);
            for (i, pixel) in expected.pixels().enumerate() {
                let (row, column) = (i / size, i % size);
                for c in 0..3 {
                    let ours = plain[(c * size + row) * size + column] * 255.0;
                    assert!((ours - pixel[c] as f32).abs() <= 0.501, "{crop:?} → {size}: pixel {i} channel {c}: {ours} vs {}", pixel[c]);
                    assert_eq!(mirrored[(c * size + row) * size + size - 1 - column], plain[(c * size + row) * size + column]);
                }
            }
        }
    }
}
