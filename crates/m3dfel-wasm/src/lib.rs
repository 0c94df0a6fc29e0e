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

use burn::backend::Flex;
#[cfg(feature = "webgpu")]
use burn::backend::{Wgpu, wgpu::WgpuDevice};
use burn::tensor::{Tensor, TensorData, backend::Backend};
use m3dfel::face::detector::TinyFaceDetector;
use m3dfel::face::{DETECTOR_INPUT, DetectionMemory, MIN_SCORE};
use m3dfel::predict::ClipResult;
use m3dfel::weights::WeightFile;
use m3dfel::{M3dfel, M3dfelConfig, M3dfelOutput};
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
    /// The whole model on WebGPU (R3D-18, DLIAM with the WGSL DMIN kernel, the classifier),
    /// unless the self-check at load found DLIAM on this GPU wrong: then `head` holds DLIAM and
    /// the classifier on the CPU (its backbone never drawn) and the GPU runs R3D-18 only.
    #[cfg(feature = "webgpu")]
    WebGpu { model: M3dfel<Wgpu>, head: Option<M3dfel<Flex>>, device: WgpuDevice },
}

/// Where each part of the model runs (`model.placement` in the package).
#[derive(Serialize, Clone)]
struct Placement {
    /// R3D-18: `"webgpu"` or `"cpu"`.
    backbone: &'static str,
    /// DLIAM and the classifier: `"webgpu"` or `"cpu"`.
    head: &'static str,
    /// DMIN + gate: `"wgsl"` (the project's WGSL kernel), `"cpu"`, or `"none"` (a model
    /// configured without DMIN).
    dmin: &'static str,
}

/// A loaded model, ready to classify clips.
#[wasm_bindgen]
pub struct Engine {
    model: Model,
    config: M3dfelConfig,
    placement: Placement,
    /// Why DLIAM runs where it does (the self-check's verdict on WebGPU).
    placement_reason: String,
}

/// Largest relative difference the self-check accepts between DLIAM on the GPU and on the CPU.
#[cfg(feature = "webgpu")]
const SELF_CHECK_TOLERANCE: f32 = 1e-4;

#[wasm_bindgen]
impl Engine {
    /// Loads the project's safetensors weights (f32, or f16 widened to f32) on `backend`
    /// (`"webgpu"` or `"cpu"`). `name` is used in error messages. The caller checks that
    /// the browser has a WebGPU adapter before asking for `"webgpu"`.
    pub async fn load(name: String, weights: Vec<u8>, backend: String) -> Result<Engine, JsError> {
        let file = WeightFile::from_safetensors_bytes(&name, &weights).map_err(|e| JsError::new(&e.to_string()))?;
        drop(weights);
        let fallback = M3dfelConfig::new();
        match backend.as_str() {
            "cpu" => {
                let loaded = file.load::<Flex>(&fallback, &Default::default()).map_err(|e| JsError::new(&e.to_string()))?;
                let dmin = if loaded.config.ablation.dmin { "cpu" } else { "none" };
                Ok(Engine {
                    model: Model::Cpu(loaded.model.fold_batch_norm()),
                    config: loaded.config,
                    placement: Placement { backbone: "cpu", head: "cpu", dmin },
                    placement_reason: "the CPU backend runs the whole model".into(),
                })
            }
            #[cfg(feature = "webgpu")]
            "webgpu" => webgpu::load(&file, &fallback).await,
            #[cfg(not(feature = "webgpu"))]
            "webgpu" => Err(JsError::new("this build of the module (the threaded CPU one) has no WebGPU backend")),
            other => Err(JsError::new(&format!("unknown backend \"{other}\": use \"webgpu\" or \"cpu\""))),
        }
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

    /// Where each part runs: `{backbone, head, dmin}` (see [`Placement`]).
    #[wasm_bindgen(getter)]
    pub fn placement(&self) -> Result<JsValue, JsError> {
        to_js(&self.placement)
    }

    /// Why the parts run where they do, for people.
    #[wasm_bindgen(getter, js_name = placementReason)]
    pub fn placement_reason(&self) -> String {
        self.placement_reason.clone()
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
            Model::WebGpu { model, .. } => model.num_parameters(),
        }
    }

    /// Classifies clips given as one `Float32Array` of [clips, frames, 3, size, size]
    /// values in [0, 1]; resolves to an array of clip results (`logits`, `probabilities`,
    /// `prediction`, `instances`). On WebGPU, an error the GPU reported while the clips ran
    /// (a kernel that failed validation or to compile, a lost device) rejects the call.
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
        if let Err(problem) = m3dfel::input::check_values(&clips) {
            return Err(JsError::new(&format!("the clip cannot be classified: {problem}")));
        }
        let count = clips.len() / clip_len;
        let clips = TensorData::new(clips, [count, frames, 3, size, size]);
        let outputs = match &self.model {
            Model::Cpu(model) => Outputs::read(model.forward(Tensor::from_data(clips, &Default::default()))).await.map_err(|e| JsError::new(&e))?,
            #[cfg(feature = "webgpu")]
            Model::WebGpu { model, head, device } => webgpu::classify(model, head.as_ref(), device, clips).await?,
        };
        let results = ClipResult::from_outputs(
            &outputs.logits,
            &outputs.instance_logits,
            &outputs.gate_mean,
            self.config.bag_size(),
            self.config.instance_length,
        );
        if results.iter().any(|r| r.logits.iter().any(|v| !v.is_finite())) {
            return Err(JsError::new("the model produced NaN: the weights may be damaged"));
        }
        to_js(&results)
    }
}

/// A forward pass's outputs read back: logits [B·7], instance logits [B·N·7], gates [B·N].
struct Outputs {
    logits: Vec<f32>,
    instance_logits: Vec<f32>,
    gate_mean: Vec<f32>,
}

impl Outputs {
    async fn read<B: Backend>(output: M3dfelOutput<B>) -> Result<Self, String> {
        Ok(Self {
            logits: read(output.logits).await?,
            instance_logits: read(output.instance_logits).await?,
            gate_mean: read(output.gate_mean).await?,
        })
    }

    /// max |self − reference| / max |reference| over the three outputs.
    #[cfg(feature = "webgpu")]
    fn relative_error(&self, reference: &Outputs) -> f32 {
        let pairs = [
            (&self.logits, &reference.logits),
            (&self.instance_logits, &reference.instance_logits),
            (&self.gate_mean, &reference.gate_mean),
        ];
        pairs
            .iter()
            .map(|(ours, theirs)| {
                let scale = theirs.iter().fold(0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE);
                let error = ours.iter().zip(theirs.iter()).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                // NaN compares false with everything: count it as wrong.
                if ours.iter().all(|v| v.is_finite()) { error / scale } else { f32::INFINITY }
            })
            .fold(0f32, f32::max)
    }
}

/// The model on the browser's WebGPU: setup, the self-check, classification, and the
/// GPU's errors made visible.
#[cfg(feature = "webgpu")]
mod webgpu {
    use std::cell::RefCell;
    use std::sync::Arc;

    use burn::backend::wgpu::{RuntimeOptions, WgpuDevice, graphics::WebGpu, init_setup_async};
    use burn::backend::{Flex, Wgpu};
    use burn::tensor::{Tensor, TensorData};
    use m3dfel::weights::WeightFile;
    use m3dfel::{M3dfel, M3dfelConfig};
    use wasm_bindgen::prelude::*;

    use super::{Engine, Model, Outputs, Placement, SELF_CHECK_TOLERANCE, read};

    thread_local! {
        /// Burn's WebGPU runtime is set up once per module instance.
        static READY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
        /// What the GPU reported since it was last looked at: validation and shader errors
        /// (wgpu's uncaptured errors and CubeCL's log), a lost device.
        static ERRORS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
        /// Set once the device is lost: every later call fails at once.
        static LOST: RefCell<Option<String>> = const { RefCell::new(None) };
    }

    /// Records an error of the GPU runtime, and shows it in the browser's console.
    pub(super) fn report(error: String) {
        web_sys_console_error(&error);
        ERRORS.with_borrow_mut(|errors| errors.push(error));
    }

    #[wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_namespace = console, js_name = error)]
        fn web_sys_console_error(message: &str);
    }

    /// The errors recorded since the last call (the device's loss first), as one message.
    fn take_errors() -> Option<String> {
        let mut errors = ERRORS.with_borrow_mut(std::mem::take);
        if let Some(lost) = LOST.with_borrow(Clone::clone) {
            errors.insert(0, lost);
        }
        errors.dedup();
        (!errors.is_empty()).then(|| format!("WebGPU reported an error: {}", errors.join("; ")))
    }

    /// Forwards CubeCL's and wgpu's log records of warnings and errors to the console; errors
    /// are also recorded (CubeCL logs a WGSL compilation failure in the browser instead of
    /// returning it).
    struct ConsoleLog;

    impl log::Log for ConsoleLog {
        fn enabled(&self, metadata: &log::Metadata) -> bool {
            metadata.level() <= log::Level::Warn
        }

        fn log(&self, record: &log::Record) {
            if !self.enabled(record.metadata()) {
                return;
            }
            let message = format!("[{}] {}", record.target(), record.args());
            if record.level() == log::Level::Error {
                report(message);
            } else {
                web_sys_console_warn(&message);
            }
        }

        fn flush(&self) {}
    }

    #[wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_namespace = console, js_name = warn)]
        fn web_sys_console_warn(message: &str);
    }

    /// Sets up Burn's WebGPU runtime once, with the device's errors and loss recorded.
    async fn device() -> WgpuDevice {
        let device = WgpuDevice::default();
        if !READY.get() {
            if log::set_logger(&ConsoleLog).is_ok() {
                log::set_max_level(log::LevelFilter::Warn);
            }
            let setup = init_setup_async::<WebGpu>(&device, RuntimeOptions::default()).await;
            setup.device.on_uncaptured_error(Arc::new(|error: wgpu::Error| report(format!("{error}"))));
            setup.device.set_device_lost_callback(|reason, message| {
                let lost = format!("the GPU device was lost ({reason:?}: {message})");
                web_sys_console_error(&lost);
                LOST.with_borrow_mut(|slot| *slot = Some(lost));
            });
            READY.set(true);
        }
        device
    }

    /// A fixed clip that is not flat: each value a hash of its index, in [0, 1].
    fn probe_clip(config: &M3dfelConfig) -> TensorData {
        let (frames, size) = (config.num_frames, config.frame_size);
        let values = (0..frames * 3 * size * size)
            .map(|i| (((i as u32).wrapping_mul(2654435761) >> 8) as f32) / (1u32 << 24) as f32)
            .collect();
        TensorData::new(values, [1, frames, 3, size, size])
    }

    /// Loads the weights on WebGPU, then runs DLIAM and the classifier on the probe clip's
    /// instance embeddings on the GPU and on the CPU: the head stays on the GPU when they agree
    /// within [`SELF_CHECK_TOLERANCE`] and the GPU reported no error, else it runs on the CPU.
    pub(super) async fn load(file: &WeightFile, fallback: &M3dfelConfig) -> Result<Engine, JsError> {
        let device = device().await;
        take_errors();
        let loaded = file.load::<Wgpu>(fallback, &device).map_err(|e| JsError::new(&e.to_string()))?;
        let (model, config) = (loaded.model.fold_batch_norm(), loaded.config);
        let cpu_head = file.load_head::<Flex>(fallback, &Default::default()).map_err(|e| JsError::new(&e.to_string()))?.model;

        let features = model.embed_instances(Tensor::from_data(probe_clip(&config), &device)); // [1, N, w₃]
        let dims = features.dims();
        let features = read(features).await.map_err(|e| JsError::new(&format!("WebGPU reported an error: {e}")))?;
        let features = TensorData::new(features, dims);
        if let Some(error) = take_errors() {
            return Err(JsError::new(&format!("{error} (running R3D-18 on the probe clip)")));
        }
        let on_gpu = Outputs::read(model.classify_instances(Tensor::from_data(features.clone(), &device))).await;
        let on_cpu = Outputs::read(cpu_head.classify_instances(Tensor::from_data(features, &Default::default())))
            .await
            .map_err(|e| JsError::new(&e))?;
        let verdict = match (on_gpu, take_errors()) {
            (_, Some(error)) => Err(error),
            (Err(error), None) => Err(error),
            (Ok(on_gpu), None) => {
                let error = on_gpu.relative_error(&on_cpu);
                if error <= SELF_CHECK_TOLERANCE {
                    Ok(error)
                } else {
                    Err(format!("its results differed from the CPU's by {error:e} (relative; at most {SELF_CHECK_TOLERANCE:e} allowed)"))
                }
            }
        };
        let dmin_on = |place| if config.ablation.dmin { place } else { "none" };
        let (head, placement, placement_reason) = match verdict {
            Ok(error) => (
                None,
                Placement { backbone: "webgpu", head: "webgpu", dmin: dmin_on("wgsl") },
                format!("the whole model runs on WebGPU: DLIAM on this GPU matched the CPU on a probe clip (relative difference {error:.1e})"),
            ),
            Err(why) => {
                web_sys_console_warn(&format!("m3dfel: DLIAM runs on the CPU: on this GPU {why}"));
                (
                    Some(cpu_head),
                    Placement { backbone: "webgpu", head: "cpu", dmin: dmin_on("cpu") },
                    format!("R3D-18 runs on WebGPU, DLIAM and the classifier on the CPU: on this GPU {why}"),
                )
            }
        };
        Ok(Engine { model: Model::WebGpu { model, head, device }, config, placement, placement_reason })
    }

    /// The clips through the model on the GPU (DLIAM on the CPU where the self-check said so).
    pub(super) async fn classify(model: &M3dfel<Wgpu>, head: Option<&M3dfel<Flex>>, device: &WgpuDevice, clips: TensorData) -> Result<Outputs, JsError> {
        if let Some(error) = take_errors() {
            return Err(JsError::new(&error));
        }
        let clips = Tensor::from_data(clips, device);
        let outputs = match head {
            None => Outputs::read(model.forward(clips)).await,
            Some(head) => {
                let features = model.embed_instances(clips); // [B, N, w₃]
                let dims = features.dims();
                match read(features).await {
                    Ok(features) => {
                        let features = Tensor::from_data(TensorData::new(features, dims), &Default::default());
                        Outputs::read(head.classify_instances(features)).await
                    }
                    Err(error) => Err(error),
                }
            }
        };
        // A GPU that fails (a lost device, a kernel that does not run) either reports it or
        // cannot hand the results back: both are the GPU's errors, which `auto` recovers from.
        match (take_errors(), outputs) {
            (Some(error), _) => Err(JsError::new(&error)),
            (None, Err(error)) => Err(JsError::new(&format!("WebGPU reported an error: {error}"))),
            (None, Ok(outputs)) => Ok(outputs),
        }
    }
}

/// Reads a tensor back asynchronously (browsers forbid blocking GPU reads).
async fn read<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Result<Vec<f32>, String> {
    let data = tensor.into_data_async().await.map_err(|e| format!("reading the model output: {e:?}"))?;
    data.convert::<f32>().to_vec::<f32>().map_err(|e| format!("reading the model output: {e:?}"))
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
