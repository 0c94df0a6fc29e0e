//! The Tiny Face Detector of face-api.js (a Tiny-YOLOv2 with depthwise-separable
//! convolutions, 193 KB of 8-bit weights), written out in plain Rust so that the native
//! tools and the browser package run the very same arithmetic on the same pixels.
//!
//! Weights: `assets/tiny-face-detector/`, copied unchanged from the npm package
//! `@vladmandic/face-api` 1.7.15 (`model/`; MIT licence, © Vladimir Mandic; the network and
//! its weights come from face-api.js, MIT, © 2018 Vincent Mühler). The tensors are stored
//! back to back as uint8, dequantised as `q · scale + min` with the manifest's constants.
//!
//! Activations are NHWC `f32`; filters keep TensorFlow's `[kh, kw, cin, cout]` layout.

use std::collections::HashMap;

use image::RgbImage;
use serde::Deserialize;

use super::FaceBox;

const WEIGHTS: &[u8] = include_bytes!("../../assets/tiny-face-detector/tiny_face_detector_model.bin");
const MANIFEST: &str = include_str!("../../assets/tiny-face-detector/tiny_face_detector_model-weights_manifest.json");

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

/// An activation map: `height × width × channels`, row-major, channels innermost.
struct Map {
    height: usize,
    width: usize,
    channels: usize,
    values: Vec<f32>,
}

impl Map {
    fn zeros(height: usize, width: usize, channels: usize) -> Self {
        Self { height, width, channels, values: vec![0.0; height * width * channels] }
    }
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
        let x = preprocess(image, input_size);
        let mut x = leaky(conv3x3_valid(&x, self.tensor("conv0/filters"), self.tensor("conv0/bias"), 16));
        for (layer, channels) in (1..=5).zip([32, 64, 128, 256, 512]) {
            x = max_pool(&x, 2);
            let name = |part: &str| format!("conv{layer}/{part}");
            x = leaky(separable(
                &x,
                self.tensor(&name("depthwise_filter")),
                self.tensor(&name("pointwise_filter")),
                self.tensor(&name("bias")),
                channels,
            ));
        }
        x = max_pool(&x, 1);
        pointwise(&x, self.tensor("conv8/filters"), self.tensor("conv8/bias"), 25).values
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
    let pixel = |y: usize, x: usize, c: usize| -> f32 {
        if y < height && x < width { image.get_pixel(x as u32, y as u32).0[c] as f32 } else { 0.0 }
    };
    // Source position of output index i: i · side / size, between floor and ceil.
    let axis = |i: usize| -> (usize, usize, f32) {
        let source = i as f64 * side as f64 / size as f64;
        let low = source.floor() as usize;
        (low, (source.ceil() as usize).min(side - 1), (source - low as f64) as f32)
    };
    let mut out = Map::zeros(size, size, 3);
    for y in 0..size {
        let (y0, y1, fy) = axis(y);
        for x in 0..size {
            let (x0, x1, fx) = axis(x);
            for c in 0..3 {
                let top = pixel(y0, x0, c) + (pixel(y0, x1, c) - pixel(y0, x0, c)) * fx;
                let bottom = pixel(y1, x0, c) + (pixel(y1, x1, c) - pixel(y1, x0, c)) * fx;
                let value = top + (bottom - top) * fy;
                out.values[(y * size + x) * 3 + c] = (value - MEAN_RGB[c]) / 255.0;
            }
        }
    }
    out
}

/// max(x, 0.1·x), as face-api.js computes it.
fn leaky(mut map: Map) -> Map {
    for v in &mut map.values {
        let m = *v * 0.1;
        *v = (*v - m).max(0.0) + m;
    }
    map
}

/// 3×3 convolution without padding, filters `[3, 3, cin, cout]`, plus bias.
fn conv3x3_valid(x: &Map, filters: &[f32], bias: &[f32], cout: usize) -> Map {
    let cin = x.channels;
    let mut out = Map::zeros(x.height - 2, x.width - 2, cout);
    for y in 0..out.height {
        for xo in 0..out.width {
            let o = &mut out.values[(y * out.width + xo) * cout..][..cout];
            o.copy_from_slice(bias);
            for ky in 0..3 {
                for kx in 0..3 {
                    let input = &x.values[((y + ky) * x.width + xo + kx) * cin..][..cin];
                    for (ci, &v) in input.iter().enumerate() {
                        let w = &filters[((ky * 3 + kx) * cin + ci) * cout..][..cout];
                        o.iter_mut().zip(w).for_each(|(o, w)| *o += v * w);
                    }
                }
            }
        }
    }
    out
}

/// Zero padding of 1, depthwise 3×3 (`[3, 3, c, 1]`, no bias), then pointwise + bias.
fn separable(x: &Map, depthwise: &[f32], pointwise_filters: &[f32], bias: &[f32], cout: usize) -> Map {
    let c = x.channels;
    let mut d = Map::zeros(x.height, x.width, c);
    for y in 0..x.height {
        for xo in 0..x.width {
            let o = &mut d.values[(y * x.width + xo) * c..][..c];
            for ky in 0..3 {
                for kx in 0..3 {
                    let (sy, sx) = ((y + ky).wrapping_sub(1), (xo + kx).wrapping_sub(1));
                    if sy >= x.height || sx >= x.width {
                        continue; // zero padding
                    }
                    let input = &x.values[(sy * x.width + sx) * c..][..c];
                    let w = &depthwise[(ky * 3 + kx) * c..][..c];
                    o.iter_mut().zip(input.iter().zip(w)).for_each(|(o, (v, w))| *o += v * w);
                }
            }
        }
    }
    pointwise(&d, pointwise_filters, bias, cout)
}

/// 1×1 convolution, filters `[1, 1, cin, cout]`, plus bias.
fn pointwise(x: &Map, filters: &[f32], bias: &[f32], cout: usize) -> Map {
    let cin = x.channels;
    let mut out = Map::zeros(x.height, x.width, cout);
    for (input, o) in x.values.chunks_exact(cin).zip(out.values.chunks_exact_mut(cout)) {
        o.copy_from_slice(bias);
        for (ci, &v) in input.iter().enumerate() {
            let w = &filters[ci * cout..][..cout];
            o.iter_mut().zip(w).for_each(|(o, w)| *o += v * w);
        }
    }
    out
}

/// 2×2 max-pool with TensorFlow's SAME padding: output ⌈n / stride⌉, the window clipped
/// at the bottom and right edges.
fn max_pool(x: &Map, stride: usize) -> Map {
    let c = x.channels;
    let mut out = Map::zeros(x.height.div_ceil(stride), x.width.div_ceil(stride), c);
    for y in 0..out.height {
        for xo in 0..out.width {
            let o = &mut out.values[(y * out.width + xo) * c..][..c];
            o.fill(f32::NEG_INFINITY);
            for sy in (y * stride..y * stride + 2).filter(|&sy| sy < x.height) {
                for sx in (xo * stride..xo * stride + 2).filter(|&sx| sx < x.width) {
                    let input = &x.values[(sy * x.width + sx) * c..][..c];
                    o.iter_mut().zip(input).for_each(|(o, &v)| *o = o.max(v));
                }
            }
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
