//! The Tiny Face Detector of face-api.js (a Tiny-YOLOv2 with depthwise-separable
//! convolutions, 193 KB of 8-bit weights), written out in plain Rust so that the native
//! tools and the browser package run the very same arithmetic on the same pixels.
//!
//! Weights: `assets/tiny-face-detector/`, copied unchanged from the npm package
//! `@vladmandic/face-api` 1.7.15 (`model/`; MIT licence, © Vladimir Mandic; the network and
//! its weights come from face-api.js, MIT, © 2018 Vincent Mühler). The tensors are stored
//! back to back as uint8, dequantised as `q · scale + min` with the manifest's constants.
//!
//! Activations are NHWC `f32` ([`layers`]); filters keep TensorFlow's `[kh, kw, cin, cout]`
//! layout.

use std::collections::HashMap;

use image::RgbImage;
use serde::Deserialize;

use super::FaceBox;
use layers::{Map, conv0_leaky_pool, leaky_pool, pointwise, separable};

mod conv0;
mod layers;

const WEIGHTS: &[u8] = include_bytes!("../../../assets/tiny-face-detector/tiny_face_detector_model.bin");
const MANIFEST: &str = include_str!("../../../assets/tiny-face-detector/tiny_face_detector_model-weights_manifest.json");

/// The mean RGB subtracted before the network (face-api.js `normalize`).
const MEAN_RGB: [f32; 3] = [117.001, 114.697, 97.404];
/// Anchor box sizes (width, height) in grid cells.
const ANCHORS: [(f32, f32); 5] =
    [(1.603231, 2.094468), (6.041143, 7.080126), (2.882459, 3.518061), (4.266906, 5.178857), (9.041765, 10.66308)];
/// Boxes overlapping a better one by more than this are dropped.
const IOU_THRESHOLD: f32 = 0.4;

#[derive(Deserialize)]
struct Group {
    weights: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    name: String,
    shape: Vec<usize>,
    quantization: Quantization,
}

#[derive(Deserialize)]
struct Quantization {
    scale: f64,
    min: f64,
}

/// The detector with its weights dequantised.
pub struct TinyFaceDetector {
    tensors: HashMap<String, Vec<f32>>,
}

impl TinyFaceDetector {
    /// Decodes the embedded weights.
    pub fn new() -> Self {
        let groups: Vec<Group> = serde_json::from_str(MANIFEST).expect("the embedded manifest is valid JSON");
        let mut offset = 0;
        let mut tensors = HashMap::new();
        for entry in groups.iter().flat_map(|g| &g.weights) {
            let count: usize = entry.shape.iter().product();
            let Quantization { scale, min } = entry.quantization;
            let values = WEIGHTS[offset..offset + count].iter().map(|&q| (q as f64 * scale + min) as f32).collect();
            tensors.insert(entry.name.clone(), values);
            offset += count;
        }
        assert_eq!(offset, WEIGHTS.len(), "the embedded weights match their manifest");
        Self { tensors }
    }

    fn tensor(&self, name: &str) -> &[f32] {
        &self.tensors[name]
    }

    /// The raw network output for an image: `[G, G, 25]` (5 anchors × tx, ty, tw, th,
    /// objectness) with G = input_size / 32.
    pub fn raw_output(&self, image: &RgbImage, input_size: usize) -> Vec<f32> {
        // Each leaky ReLU is followed by a 2×2 max-pool (stride 2, the last stride 1); the
        // layers apply both, and the bias, in one pass.
        let x = preprocess(image, input_size);
        let mut x = conv0_leaky_pool(&x, self.tensor("conv0/filters"), self.tensor("conv0/bias"));
        for (layer, channels) in (1..=5).zip([32, 64, 128, 256, 512]) {
            let name = |part: &str| format!("conv{layer}/{part}");
            let sums = separable(&x, self.tensor(&name("depthwise_filter")), self.tensor(&name("pointwise_filter")), channels);
            x = leaky_pool(&sums, self.tensor(&name("bias")), if layer < 5 { 2 } else { 1 });
        }
        let (mut out, bias) = (pointwise(&x, self.tensor("conv8/filters"), 25).into_values(), self.tensor("conv8/bias"));
        for o in out.chunks_exact_mut(25) {
            o.iter_mut().zip(bias).for_each(|(o, b)| *o += b);
        }
        out
    }

    /// Faces in an image, best first, in the image's pixels (boxes may reach past its edges).
    /// `input_size` is a multiple of 32 (larger finds smaller faces, slower); faces scoring
    /// at most `min_score` are dropped.
    pub fn detect(&self, image: &RgbImage, input_size: usize, min_score: f32) -> Vec<FaceBox> {
        assert!(input_size >= 32 && input_size % 32 == 0, "the detector's input size is a multiple of 32");
        let raw = self.raw_output(image, input_size);
        decode(&raw, image.width() as f32, image.height() as f32, input_size, min_score)
    }
}

impl Default for TinyFaceDetector {
    fn default() -> Self {
        Self::new()
    }
}

/// Pads the image to a square with black at the bottom or right, resizes it to
/// `size`×`size` (TensorFlow's bilinear resize without half-pixel centres) and normalises
/// it: `(p − mean) / 255`.
fn preprocess(image: &RgbImage, size: usize) -> Map {
    let (width, height) = (image.width() as usize, image.height() as usize);
    let side = width.max(height);
    let pixels = image.as_raw(); // [height, width, 3]
    // Source position of output index i: i · side / size, between floor and ceil.
    let axis = |i: usize| -> (usize, usize, f32) {
        let source = i as f64 * side as f64 / size as f64;
        let low = source.floor() as usize;
        (low, (source.ceil() as usize).min(side - 1), (source - low as f64) as f32)
    };
    // Per output column, where its two source pixels lie in a source row that has a zero
    // pixel appended at `width` (columns past the image read it), and the weight.
    let columns: Vec<_> = (0..size).map(axis).map(|(x0, x1, fx)| (x0.min(width) * 3, x1.min(width) * 3, fx)).collect();
    let mut source = vec![0.0f32; (width + 1) * 3];
    // Source row y (zero past the image) interpolated along the row at the output's columns.
    let mut along_row = |y: usize, out: &mut [f32]| {
        if y < height {
            source.iter_mut().zip(&pixels[y * width * 3..][..width * 3]).for_each(|(s, &p)| *s = p as f32);
        } else {
            source.fill(0.0);
        }
        for (o, &(x0, x1, fx)) in out.chunks_exact_mut(3).zip(&columns) {
            for (c, o) in o.iter_mut().enumerate() {
                *o = source[x0 + c] + (source[x1 + c] - source[x0 + c]) * fx;
            }
        }
    };
    let means: Vec<f32> = MEAN_RGB.iter().copied().cycle().take(size * 3).collect();
    // The two interpolated source rows an output row mixes, each with the source row it holds
    // (none yet: usize::MAX). An output row's lower source row is often the next one's upper.
    let (mut upper, mut lower) = ((usize::MAX, vec![0.0f32; size * 3]), (usize::MAX, vec![0.0f32; size * 3]));
    let mut out = Map::new(size, size, 3);
    for (y, row) in out.values.chunks_exact_mut(size * 3).enumerate() {
        let (y0, y1, fy) = axis(y);
        if lower.0 == y0 {
            std::mem::swap(&mut upper, &mut lower);
        }
        if upper.0 != y0 {
            along_row(y0, &mut upper.1);
            upper.0 = y0;
        }
        // One source row (whole scale factors) is both: the same values as mixing it with itself.
        let bottom = if y1 == y0 {
            &upper.1
        } else {
            if lower.0 != y1 {
                along_row(y1, &mut lower.1);
                lower.0 = y1;
            }
            &lower.1
        };
        for (((o, top), bottom), mean) in row.iter_mut().zip(&upper.1).zip(bottom).zip(&means) {
            *o = (top + (bottom - top) * fy - mean) / 255.0;
        }
    }
    out
}

fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

/// Grid output → boxes in image pixels, after non-maximum suppression.
fn decode(raw: &[f32], width: f32, height: f32, input_size: usize, min_score: f32) -> Vec<FaceBox> {
    let grid = input_size / 32;
    // The image was padded to a square: undo it per axis.
    let scale = input_size as f32 / width.max(height);
    let (fx, fy) = (input_size as f32 / (width * scale).round(), input_size as f32 / (height * scale).round());
    let mut candidates = Vec::new();
    for row in 0..grid {
        for col in 0..grid {
            for (anchor, &(aw, ah)) in ANCHORS.iter().enumerate() {
                let t = &raw[((row * grid + col) * 5 + anchor) * 5..][..5];
                let score = sigmoid(t[4]);
                if score <= min_score {
                    continue;
                }
                let cx = (col as f32 + sigmoid(t[0])) / grid as f32 * fx;
                let cy = (row as f32 + sigmoid(t[1])) / grid as f32 * fy;
                let w = t[2].exp() * aw / grid as f32 * fx;
                let h = t[3].exp() * ah / grid as f32 * fy;
                candidates.push(FaceBox {
                    x: (cx - w / 2.0) * width,
                    y: (cy - h / 2.0) * height,
                    width: w * width,
                    height: h * height,
                    score,
                });
            }
        }
    }
    // Greedy non-maximum suppression, best first.
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut kept: Vec<FaceBox> = Vec::new();
    for candidate in candidates {
        if kept.iter().all(|k| k.iou(&candidate) <= IOU_THRESHOLD) {
            kept.push(candidate);
        }
    }
    kept
}
