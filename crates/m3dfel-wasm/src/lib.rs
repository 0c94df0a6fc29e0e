//! The WebAssembly core of the browser package (`pkg/`): the shared M3DFEL model on the
//! browser's WebGPU (burn-wgpu with the project's WGSL kernels) or on Burn's CPU backend.
//!
//! JavaScript sees one class, [`Engine`], and one function, [`frame_planes`]; the package's
//! hand-written `m3dfel.js` builds the public API (`M3dfel.load`, `classifyClip`,
//! `classifyVideo`) on top: fetching weights with progress, choosing the backend, turning
//! images into frames. Every failure is returned as a JavaScript `Error` with a message for
//! people; inputs are checked here before they reach Burn, whose panics would abort the
//! module.
//!
//! Two builds: the main one (feature `webgpu`: WebGPU, and the CPU on one thread) and the
//! threaded one (feature `threads`, compiled with atomics: the CPU only, its kernels spread
//! over a pool of Web Workers that `initThreadPool` starts).
#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
#[cfg(feature = "webgpu")]
use std::cell::Cell;

use burn::backend::Flex;
#[cfg(feature = "webgpu")]
use burn::backend::{
    Wgpu,
    wgpu::{RuntimeOptions, WgpuDevice, graphics::WebGpu, init_setup_async},
};
use burn::tensor::{Tensor, TensorData, backend::Backend};
use m3dfel::face::detector::TinyFaceDetector;
use m3dfel::face::{DETECTOR_INPUT, DetectionMemory, MIN_SCORE};
use m3dfel::predict::ClipResult;
use m3dfel::weights::WeightFile;
use m3dfel::{M3dfel, M3dfelConfig};
use serde::Serialize;
use wasm_bindgen::prelude::*;

#[cfg(feature = "threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

/// Threads the CPU kernels spread their work over: the pool `initThreadPool` started. Only
/// after it: called first, it would fix Rayon's pool at the calling thread alone.
#[cfg(feature = "threads")]
#[wasm_bindgen(js_name = threadCount)]
pub fn thread_count() -> usize {
    rayon::current_num_threads()
}

#[cfg(feature = "webgpu")]
thread_local! {
    /// Burn's WebGPU runtime is set up once per module instance.
    static WEBGPU_READY: Cell<bool> = const { Cell::new(false) };
}

thread_local! {
    /// The face detector, with its embedded weights decoded on first use.
    static DETECTOR: TinyFaceDetector = TinyFaceDetector::new();
    /// The detections of the latest frames `faceClip` saw: overlapping windows (a video's,
    /// a camera's latest frames) share frames, each detected once.
    static FACES_SEEN: RefCell<DetectionMemory> = RefCell::new(DetectionMemory::new());
}

/// The model on one of the two backends.
enum Model {
    Cpu(M3dfel<Flex>),
    /// R3D-18 (over 99.9 % of the work) on WebGPU; DLIAM and the classifier on the CPU.
    /// Burn 0.21's autotuned matmul kernels give wrong results on some WebGPU adapters
    /// (SwiftShader: a [8, 64] × [64, 256] product off by 100 %), and DLIAM is made of
    /// small matmuls; the 3D convolutions are exact (tests/wgpu.rs checks both in Chromium).
    #[cfg(feature = "webgpu")]
    WebGpu { backbone: M3dfel<Wgpu>, head: M3dfel<Flex>, device: WgpuDevice },
}

/// A loaded model, ready to classify clips.
#[wasm_bindgen]
pub struct Engine {
    model: Model,
    config: M3dfelConfig,
}

#[wasm_bindgen]
impl Engine {
    /// Loads the project's safetensors weights (f32, or f16 widened to f32) on `backend`
    /// (`"webgpu"` or `"cpu"`). `name` is used in error messages. The caller checks that
    /// the browser has a WebGPU adapter before asking for `"webgpu"`.
    pub async fn load(name: String, weights: Vec<u8>, backend: String) -> Result<Engine, JsError> {
        let file = WeightFile::from_safetensors_bytes(&name, &weights).map_err(|e| JsError::new(&e.to_string()))?;
        let fallback = M3dfelConfig::new();
        let (model, config) = match backend.as_str() {
            "cpu" => {
                let loaded = file.load::<Flex>(&fallback, &Default::default()).map_err(|e| JsError::new(&e.to_string()))?;
                (Model::Cpu(loaded.model.fold_batch_norm()), loaded.config)
            }
            #[cfg(feature = "webgpu")]
            "webgpu" => {
                let device = WgpuDevice::default();
                if !WEBGPU_READY.get() {
                    init_setup_async::<WebGpu>(&device, RuntimeOptions::default()).await;
                    WEBGPU_READY.set(true);
                }
                let gpu = file.load::<Wgpu>(&fallback, &device).map_err(|e| JsError::new(&e.to_string()))?;
                let cpu = file.load::<Flex>(&fallback, &Default::default()).map_err(|e| JsError::new(&e.to_string()))?;
                (Model::WebGpu { backbone: gpu.model.fold_batch_norm(), head: cpu.model, device }, gpu.config)
            }
            #[cfg(not(feature = "webgpu"))]
            "webgpu" => return Err(JsError::new("this build of the module (the threaded CPU one) has no WebGPU backend")),
            other => return Err(JsError::new(&format!("unknown backend \"{other}\": use \"webgpu\" or \"cpu\""))),
        };
        Ok(Engine { model, config })
    }

    /// `"webgpu"` or `"cpu"`.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        match self.model {
            Model::Cpu(_) => "cpu",
            #[cfg(feature = "webgpu")]
            Model::WebGpu { .. } => "webgpu",
        }
        .to_string()
    }

    /// The preset the weights were made with (`paper`, `small`, `tiny`).
    #[wasm_bindgen(getter)]
    pub fn preset(&self) -> String {
        self.config.preset.clone()
    }

    /// Side of the square frames the model takes, in pixels.
    #[wasm_bindgen(getter, js_name = frameSize)]
    pub fn frame_size(&self) -> usize {
        self.config.frame_size
    }

    /// Frames per clip (16).
    #[wasm_bindgen(getter, js_name = numFrames)]
    pub fn num_frames(&self) -> usize {
        self.config.num_frames
    }

    /// Frames per 3D instance.
    #[wasm_bindgen(getter, js_name = instanceLength)]
    pub fn instance_length(&self) -> usize {
        self.config.instance_length
    }

    /// Number of parameters.
    #[wasm_bindgen(getter)]
    pub fn parameters(&self) -> usize {
        match &self.model {
            Model::Cpu(model) => model.num_parameters(),
            #[cfg(feature = "webgpu")]
            Model::WebGpu { head, .. } => head.num_parameters(),
        }
    }

    /// Classifies clips given as one `Float32Array` of [clips, frames, 3, size, size]
    /// values in [0, 1]; resolves to an array of clip results (`logits`, `probabilities`,
    /// `prediction`, `instances`).
    pub async fn classify(&self, clips: Vec<f32>) -> Result<JsValue, JsError> {
        let (frames, size) = (self.config.num_frames, self.config.frame_size);
        let clip_len = frames * 3 * size * size;
        if clips.is_empty() || clips.len() % clip_len != 0 {
            return Err(JsError::new(&format!(
                "expected {frames} frames × 3 colours × {size} × {size} pixels = {clip_len} values per clip \
                 (values in 0..1), got {} values",
                clips.len()
            )));
        }
        if let Some(i) = clips.iter().position(|v| !v.is_finite()) {
            return Err(JsError::new(&format!("value #{i} of the clip is NaN or infinite")));
        }
        let shape = [clips.len() / clip_len, frames, 3, size, size];
        let clips = TensorData::new(clips, shape);
        let output = match &self.model {
            Model::Cpu(model) => model.forward(Tensor::from_data(clips, &Default::default())),
            #[cfg(feature = "webgpu")]
            Model::WebGpu { backbone, head, device } => {
                let features = backbone.embed_instances(Tensor::from_data(clips, device)); // [B, N, w₃]
                let dims = features.dims();
                let features = TensorData::new(read(features).await?, dims);
                head.classify_instances(Tensor::from_data(features, &Default::default()))
            }
        };
        let results = ClipResult::from_outputs(
            &read(output.logits).await?,
            &read(output.instance_logits).await?,
            &read(output.gate_mean).await?,
            self.config.bag_size(),
            self.config.instance_length,
        );
        if results.iter().any(|r| r.logits.iter().any(|v| !v.is_finite())) {
            return Err(JsError::new("the model produced NaN: the weights may be damaged"));
        }
        results
            .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
            .map_err(|e| JsError::new(&e.to_string()))
    }
}

/// Reads a tensor back asynchronously (browsers forbid blocking GPU reads).
async fn read<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Result<Vec<f32>, JsError> {
    let data = tensor.into_data_async().await.map_err(|e| JsError::new(&format!("reading the model output: {e:?}")))?;
    data.convert::<f32>().to_vec::<f32>().map_err(|e| JsError::new(&format!("reading the model output: {e:?}")))
}

/// One RGBA frame (an `ImageData`'s bytes) → 3 planes of `size`×`size` values in [0, 1],
/// with the same bilinear resize as `m3dfel predict --frames`.
#[wasm_bindgen(js_name = framePlanes)]
pub fn frame_planes(rgba: &[u8], width: u32, height: u32, size: usize) -> Result<Vec<f32>, JsError> {
    let image = rgb(rgba, width, height)?;
    Ok(m3dfel::frames::clip_values(std::slice::from_ref(&image), size))
}

fn rgb(rgba: &[u8], width: u32, height: u32) -> Result<image::RgbImage, JsError> {
    m3dfel::frames::rgb_from_rgba(rgba, width, height).map_err(|e| JsError::new(&e))
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsError> {
    value.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(|e| JsError::new(&e.to_string()))
}

/// Faces in one RGBA frame, best first: `[{x, y, width, height, score}]` in its pixels
/// (the detector and threshold `m3dfel predict --video` uses).
#[wasm_bindgen(js_name = detectFaces)]
pub fn detect_faces(rgba: &[u8], width: u32, height: u32) -> Result<JsValue, JsError> {
    let image = rgb(rgba, width, height)?;
    to_js(&DETECTOR.with(|d| d.detect(&image, DETECTOR_INPUT, MIN_SCORE)))
}

/// A clip cut around the face: frames of one size, RGBA, concatenated.
#[wasm_bindgen]
pub struct FaceClip {
    values: Vec<f32>,
    faces: JsValue,
    crops: JsValue,
    detected: usize,
}

#[wasm_bindgen]
impl FaceClip {
    /// The model input, `[frames, 3, size, size]` in [0, 1].
    #[wasm_bindgen(getter)]
    pub fn values(&self) -> Vec<f32> {
        self.values.clone()
    }

    /// The best detection per frame (`null` where none).
    #[wasm_bindgen(getter)]
    pub fn faces(&self) -> JsValue {
        self.faces.clone()
    }

    /// The square `{x, y, size}` each frame was cropped to.
    #[wasm_bindgen(getter)]
    pub fn crops(&self) -> JsValue {
        self.crops.clone()
    }

    /// How many frames were run through the detector (the others were remembered).
    #[wasm_bindgen(getter)]
    pub fn detected(&self) -> usize {
        self.detected
    }
}

/// Detects, tracks and crops the face in `frames` RGBA frames of `width`×`height` (one
/// buffer), and resizes the crops to `size`: the same steps as `m3dfel predict --video`.
/// Frames seen in the latest calls are not detected again ([`FACES_SEEN`]).
#[wasm_bindgen(js_name = faceClip)]
pub fn face_clip(rgba: &[u8], width: u32, height: u32, frames: usize, size: usize) -> Result<FaceClip, JsError> {
    let frame_len = 4 * width as usize * height as usize;
    if frames == 0 || rgba.len() != frames * frame_len {
        return Err(JsError::new(&format!(
            "{frames} RGBA frames of {width}×{height} need {} bytes, got {}",
            frames * frame_len,
            rgba.len()
        )));
    }
    let images = rgba.chunks_exact(frame_len).map(|f| rgb(f, width, height)).collect::<Result<Vec<_>, _>>()?;
    let clip = DETECTOR
        .with(|d| FACES_SEEN.with_borrow_mut(|memory| m3dfel::face::face_clip(images, size, d, memory)))
        .map_err(|e| JsError::new(&format!("{e}: use frames that show a face, or turn the face crop off for clips that are already cropped")))?;
    Ok(FaceClip { faces: to_js(&clip.faces)?, crops: to_js(&clip.crops)?, values: clip.values, detected: clip.detected })
}
