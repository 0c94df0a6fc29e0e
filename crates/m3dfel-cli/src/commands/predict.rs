use std::path::PathBuf;

use anyhow::{Context, Result, bail, ensure};
use burn::tensor::{Tensor, TensorData};
use clap::Args;
use m3dfel::face::DetectionMemory;
use m3dfel::face::detector::TinyFaceDetector;
use m3dfel::npy::NpyArray;
use m3dfel::predict::ClipResult;
use m3dfel::weights::WeightFile;
use m3dfel::{CLASSES, M3dfel, M3dfelBackend, M3dfelConfig};

use crate::backend::Device;

/// Clips sent to the model at once (bounds memory for large inputs).
const CLIPS_PER_BATCH: usize = 4;

#[derive(Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["tensor", "frames", "video"])))]
pub struct PredictArgs {
    /// Weight file (.safetensors, .bpk, or any PyTorch layout the importer accepts).
    #[arg(long)]
    pub(crate) weights: PathBuf,
    /// Float32 .npy of shape [16, 3, H, W] (one clip) or [B, 16, 3, H, W], values in [0, 1],
    /// used as-is.
    #[arg(long)]
    pub(crate) tensor: Option<PathBuf>,
    /// Folder of one clip's frame images (sorted by name); 16 frames are sampled evenly and
    /// resized to the model's frame size.
    #[arg(long)]
    pub(crate) frames: Option<PathBuf>,
    /// With --frames: find, track and crop the face like --video does (for frames that are
    /// not already face crops).
    #[arg(long, requires = "frames")]
    pub(crate) face_crop: bool,
    /// A video file (anything FFmpeg reads: H.264 mp4, VP9 webm, MJPEG avi, …): cut into
    /// windows, the face found and cropped in each, every window classified.
    #[arg(long)]
    pub(crate) video: Option<PathBuf>,
    /// Length of each video window in seconds (16 frames are taken evenly from it).
    #[arg(long, default_value_t = 2.0, requires = "video")]
    pub(crate) window: f64,
    /// Seconds between the starts of consecutive video windows.
    #[arg(long, default_value_t = 1.0, requires = "video")]
    pub(crate) stride: f64,
    /// Video already cropped to the face: use whole frames.
    #[arg(long, requires = "video")]
    pub(crate) no_face_crop: bool,
    /// Also write the video timeline as CSV (one row per window and per instance).
    #[arg(long, requires = "video")]
    pub(crate) csv: Option<PathBuf>,
    /// Also draw the video timeline (.png or .svg): probability curves, instances, legend.
    #[arg(long, requires = "video")]
    pub(crate) plot: Option<PathBuf>,
    /// Compute backend.
    #[arg(long, value_enum, default_value = "cpu")]
    pub(crate) device: Device,
    /// Print machine-readable JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Clips as one flat [B, F, 3, H, W] buffer.
pub(crate) struct Clips {
    pub(crate) values: Vec<f32>,
    pub(crate) count: usize,
    pub(crate) frames: usize,
    pub(crate) size: [usize; 2],
}

pub fn run(args: PredictArgs) -> Result<()> {
    let file = WeightFile::read(&args.weights)?;
    let config = file.config(&M3dfelConfig::new())?;
    if args.video.is_some() {
        return super::video::run(&args, &file, &config);
    }
    let clips = read_clips(&args, &config)?;
    let results = crate::with_backend!(args.device, |B, device| Classifier::<B>::load(&file, &device)?.classify(&clips))?;
    if args.json {
        let output = serde_json::json!({ "classes": CLASSES, "preset": config.preset, "clips": results });
        println!("{}", serde_json::to_string(&output)?);
    } else {
        print_table(&results);
    }
    Ok(())
}

fn read_clips(args: &PredictArgs, config: &M3dfelConfig) -> Result<Clips> {
    let frames = config.num_frames;
    if let Some(dir) = &args.frames {
        let sampled = m3dfel::frames::sample_folder(dir, frames)?;
        if sampled.source_len < frames {
            eprintln!(
                "note: {} has only {} frames; frames were repeated to make {frames}",
                dir.display(),
                sampled.source_len
            );
        }
        let values = if args.face_crop {
            m3dfel::face::face_clip(sampled.images, config.frame_size, &TinyFaceDetector::new(), &mut DetectionMemory::new())
                .map_err(|e| anyhow::anyhow!("{}: {e}; leave out --face-crop for frames that are already face crops", dir.display()))?
                .values
        } else {
            m3dfel::frames::clip_values(&sampled.images, config.frame_size)
        };
        return Ok(Clips { values, count: 1, frames, size: [config.frame_size; 2] });
    }
    let path = args.tensor.as_ref().expect("clap requires --tensor or --frames");
    let array = NpyArray::read(path)?;
    let (count, shape) = match array.shape.as_slice() {
        [f, c, h, w] => (1, [*f, *c, *h, *w]),
        [b, f, c, h, w] => (*b, [*f, *c, *h, *w]),
        other => bail!(
            "{}: shape {other:?} is not a clip; expected [{frames}, 3, H, W] or [B, {frames}, 3, H, W]",
            path.display()
        ),
    };
    let [f, c, h, w] = shape;
    ensure!(
        f == frames,
        "{}: clips must have {frames} frames, this one has {f} (shape {:?})",
        path.display(),
        array.shape
    );
    ensure!(c == 3, "{}: frames must have 3 colour channels (RGB), found {c}", path.display());
    ensure!(h >= 16 && w >= 16, "{}: frames of {h}×{w} pixels are too small", path.display());
    ensure!(count > 0, "{}: the batch is empty", path.display());
    match m3dfel::input::check_values(&array.values) {
        Ok(()) => {}
        Err(problem @ m3dfel::input::ValueError::NotFinite(_)) => bail!("{}: {problem}", path.display()),
        // A warning, not an error: the numbers may be meant (a stress test, an experiment).
        Err(problem) => eprintln!("warning: {}: {problem}; the results will be meaningless", path.display()),
    }
    if h != config.frame_size || w != config.frame_size {
        eprintln!(
            "note: the model was configured for {0}×{0} frames, the clips are {h}×{w}",
            config.frame_size
        );
    }
    Ok(Clips { values: array.values, count, frames, size: [h, w] })
}

/// A model loaded once, for classifying clips batch by batch.
pub(crate) struct Classifier<B: M3dfelBackend> {
    model: M3dfel<B>,
    config: M3dfelConfig,
    device: B::Device,
}

impl<B: M3dfelBackend> Classifier<B> {
    pub(crate) fn load(file: &WeightFile, device: &B::Device) -> Result<Self> {
        let loaded = file.load::<B>(&M3dfelConfig::new(), device)?;
        Ok(Self { model: loaded.model.fold_batch_norm(), config: loaded.config, device: device.clone() })
    }

    pub(crate) fn classify(&self, clips: &Clips) -> Result<Vec<ClipResult>> {
        let [h, w] = clips.size;
        let clip_len = clips.frames * 3 * h * w;
        let mut results = Vec::with_capacity(clips.count);
        for (start, chunk) in (0..clips.count).step_by(CLIPS_PER_BATCH).zip(clips.values.chunks(CLIPS_PER_BATCH * clip_len)) {
            let batch = chunk.len() / clip_len;
            let data = TensorData::new(chunk.to_vec(), [batch, clips.frames, 3, h, w]);
            let output = self.model.forward(Tensor::<B, 5>::from_data(data, &self.device));
            let read = |t: TensorData| t.convert::<f32>().to_vec::<f32>().context("reading model output");
            let logits = read(output.logits.into_data())?;
            let instance_logits = read(output.instance_logits.into_data())?;
            let gates = read(output.gate_mean.into_data())?;
            let config = &self.config;
            let batch_results =
                ClipResult::from_outputs(&logits, &instance_logits, &gates, config.bag_size(), config.instance_length);
            ensure!(
                batch_results.iter().all(|r| r.logits.iter().all(|v| v.is_finite())),
                "the model produced NaN for clip(s) {start}..{}: the weights may be damaged",
                start + batch
            );
            results.extend(batch_results);
        }
        Ok(results)
    }
}

fn print_table(results: &[ClipResult]) {
    for (i, clip) in results.iter().enumerate() {
        let best = m3dfel::predict::argmax(&clip.probabilities);
        println!("clip {i}: {} ({:.1} %)", clip.prediction, 100.0 * clip.probabilities[best]);
        print!("  {:<10}", "");
        for name in CLASSES {
            print!("{name:>9}");
        }
        println!("{:>8}", "gate");
        print!("  {:<10}", "clip");
        for p in &clip.probabilities {
            print!("{:>8.1}%", 100.0 * p);
        }
        println!();
        for instance in &clip.instances {
            print!("  {:<10}", format!("frames {}-{}", instance.frames[0], instance.frames[1]));
            for p in &instance.probabilities {
                print!("{:>8.1}%", 100.0 * p);
            }
            println!("{:>8.3}", instance.gate);
        }
    }
}
