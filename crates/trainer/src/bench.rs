//! `trainer bench`: how long inference and a training step take on this machine, for the
//! comparison with the PyTorch reference (`scripts/bench.sh`, `scripts/gpu-bench.sh`).
//! Random weights and random clips: speed does not depend on the values. With `--data`, also
//! how fast training clips are prepared from image files (decoding and augmentation).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use burn::module::AutodiffModule;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Distribution, Int, Tensor};
use clap::Args;
use m3dfel::weights::{Precision, save_safetensors};
use m3dfel::{M3dfel, M3dfelBackend, M3dfelConfig, NUM_CLASSES};
use serde::Serialize;

use crate::backend::{ComputePrecision, Device, GpuKernels};
use crate::data::augment::Policy;
use crate::data::loader::{Augment, ClipShape, Loader};
use crate::data::splits::{DatasetKind, DatasetSpec};
use crate::kernel_cache::KernelLog;
use crate::with_autodiff_backend;

/// Batches per timed run of the data measurement: the loader's threads make one batch at a
/// time, PyTorch's worker processes one batch each, so a run spans several batches.
const DATA_BATCHES_PER_RUN: usize = 4;

#[derive(Args, Clone)]
pub struct BenchArgs {
    /// Where to run.
    #[arg(long, value_enum, default_value_t = Device::for_this_build())]
    pub device: Device,
    /// Float type of weights, activations, gradients and optimizer state.
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: ComputePrecision,
    /// Who chooses the GPU's convolution kernels: `fixed` (the project) or `autotune` (Burn).
    #[arg(long, value_enum, default_value = "fixed")]
    pub gpu_kernels: GpuKernels,
    /// Preset for inference.
    #[arg(long, default_value = "paper")]
    pub inference_preset: String,
    /// Clips per inference batch (comma-separated; given without a value: no inference).
    #[arg(long, value_delimiter = ',', num_args = 0.., default_value = "1,8")]
    pub inference_batches: Vec<usize>,
    /// Preset for the training step (forward + backward + AdamW).
    #[arg(long, default_value = "small")]
    pub train_preset: String,
    /// Clips per training batch (comma-separated; given without a value: no training step).
    #[arg(long, value_delimiter = ',', num_args = 0.., default_value = "8")]
    pub train_batches: Vec<usize>,
    /// Frame size in pixels (default: the preset's).
    #[arg(long)]
    pub frame_size: Option<usize>,
    /// Timed runs of each measurement (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Untimed runs before them.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Save the (random) inference model as .safetensors, e.g. for the browser package's
    /// benchmark of the same model.
    #[arg(long)]
    pub save_weights: Option<PathBuf>,
    /// A dataset in DFEW's layout (e.g. written by `trainer synth --frame-size 224 --out
    /// DIR`): also time preparing its fold-1 training clips as training does (decoding the
    /// frames, the spec's augmentation) at the training preset's clip shape.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Clips per batch of the data measurement (each timed run is 4 batches).
    #[arg(long, default_value_t = 8)]
    pub data_batch: usize,
    /// Threads preparing clips in the data measurement (default: one per processor).
    #[arg(long)]
    pub workers: Option<usize>,
}

/// One measurement: `runs` timings of the same work.
#[derive(Serialize)]
pub struct Measurement {
    pub name: String,
    pub preset: String,
    pub frame_size: usize,
    pub batch: usize,
    pub seconds: Vec<f64>,
    /// The median of `seconds`: for a training step, the steady step time.
    pub median_seconds: f64,
    pub clips_per_second: f64,
    /// The first run (the first step, for training), on a GPU its kernels' compilation included.
    pub first_step_seconds: f64,
    /// Kernels the GPU runtime compiled during the first run (`null` on the CPU).
    pub kernels_compiled: Option<usize>,
}

#[derive(Serialize)]
struct Report {
    implementation: &'static str,
    device: String,
    precision: String,
    threads: usize,
    measurements: Vec<Measurement>,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.runs > 0, "--runs must be at least 1");
    args.gpu_kernels.apply(args.device)?;
    m3dfel::cli_support::advise_when_out_of_memory(
        "The benchmark holds each batch of --train-batches and --inference-batches at once: measure smaller ones (each in a process of its own, as scripts/gpu-bench.sh does, so that one that does not fit costs no others).",
    );
    let kernels = crate::kernel_cache::for_device(args.device);
    let mut measurements =
        with_autodiff_backend!(args.device, |B, device_at| measure::<B>(&args, &device_at(0), kernels.as_ref()))?;
    if let Some(root) = &args.data {
        measurements.push(measure_data(&args, root)?);
    }
    let report = Report {
        implementation: "m3dfel (Burn 0.21)",
        device: format!("{:?}", args.device).to_lowercase(),
        precision: format!("{:?}", args.precision).to_lowercase(),
        threads: std::thread::available_parallelism().map_or(1, usize::from),
        measurements,
    };
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn config(preset: &str, frame_size: Option<usize>) -> anyhow::Result<M3dfelConfig> {
    let config = M3dfelConfig::named(preset)?;
    Ok(match frame_size {
        Some(size) => config.with_frame_size(size),
        None => config,
    })
}

fn measure<B>(args: &BenchArgs, device: &B::Device, kernels: Option<&KernelLog>) -> anyhow::Result<Vec<Measurement>>
where
    B: AutodiffBackend + M3dfelBackend,
    B::InnerBackend: M3dfelBackend,
{
    args.precision.apply::<B>(std::slice::from_ref(device))?;
    let mut out = Vec::new();
    if !args.inference_batches.is_empty() {
        let config = config(&args.inference_preset, args.frame_size)?;
        let model: M3dfel<B::InnerBackend> = config.init::<B>(device).valid();
        if let Some(path) = &args.save_weights {
            save_safetensors(&model, &config, Precision::F32, path)?;
        }
        let model = model.fold_batch_norm();
        for &batch in &args.inference_batches {
            let input = clips::<B::InnerBackend>(&config, batch, device);
            out.push(time(args, "inference", &config, batch, kernels, || {
                model.forward(input.clone()).logits.into_data();
            }));
        }
    }
    if !args.train_batches.is_empty() {
        let config = config(&args.train_preset, args.frame_size)?;
        let mut model = Some(config.init::<B>(device));
        let mut optimizer = AdamWConfig::new().with_weight_decay(0.05).init::<B, M3dfel<B>>();
        let loss_fn = CrossEntropyLossConfig::new().with_smoothing(Some(0.1)).init(device);
        for &batch in &args.train_batches {
            let input = clips::<B>(&config, batch, device);
            let labels = Tensor::<B, 1, Int>::random([batch], Distribution::Uniform(0.0, NUM_CLASSES as f64), device);
            out.push(time(args, "train step", &config, batch, kernels, || {
                let current = model.take().expect("the model is put back after every step");
                let logits = current.forward(input.clone()).logits;
                let loss = loss_fn.forward(logits, labels.clone());
                let grads = GradientsParams::from_grads(loss.backward(), &current);
                let next = optimizer.step(1e-4, current, grads);
                // Reading a parameter back waits for the GPU to finish the step.
                next.fc.weight.val().slice([0..1, 0..1]).into_data();
                model = Some(next);
            }));
        }
    }
    Ok(out)
}

/// Preparing training batches of the DFEW-layout dataset at `root` with the training
/// loader (its worker threads, the spec's augmentation), in runs of
/// [`DATA_BATCHES_PER_RUN`] batches.
fn measure_data(args: &BenchArgs, root: &Path) -> anyhow::Result<Measurement> {
    anyhow::ensure!(args.data_batch > 0, "--data-batch must be at least 1");
    let spec = DatasetSpec {
        kind: DatasetKind::Dfew,
        root: Some(root.to_path_buf()),
        fold: 1,
        synthetic_train: 0,
        synthetic_test: 0,
        synthetic_seed: 0,
    };
    let (train, _) = spec.open().with_context(|| format!("--data {}", root.display()))?;
    anyhow::ensure!(
        !train.entries.is_empty(),
        "--data {}: fold 1 has no training clips that can be read ({} rows skipped)",
        root.display(),
        train.skipped.len()
    );
    let config = config(&args.train_preset, args.frame_size)?;
    let entries: Arc<[_]> = Arc::from(train.entries);
    let per_run = args.data_batch * DATA_BATCHES_PER_RUN;
    // Every batch the runs take, the clips in order, round and round the split.
    let batches = (0..(args.warmup + args.runs) * DATA_BATCHES_PER_RUN)
        .map(|b| (0..args.data_batch).map(|i| (b * args.data_batch + i) % entries.len()).collect())
        .collect();
    let shape = ClipShape { frames: config.num_frames, size: config.frame_size };
    let augment = Augment { policy: Policy::Spec, seed: 0, epoch: 0 };
    let mut loader = Loader::start(entries, batches, shape, Some(augment), crate::cli::workers(args.workers), 2);
    let mut skipped = Vec::new();
    let measurement = time(args, "data loading", &config, per_run, None, || {
        for _ in 0..DATA_BATCHES_PER_RUN {
            skipped.extend(loader.next().expect("the loader makes every batch the runs take").skipped);
        }
    });
    if let Some(first) = skipped.first() {
        anyhow::bail!("--data {}: {} clips could not be read, e.g. {}: {}", root.display(), skipped.len(), first.clip, first.reason);
    }
    Ok(measurement)
}

/// A batch of random clips [batch, frames, 3, size, size] in [0, 1].
fn clips<B: Backend>(config: &M3dfelConfig, batch: usize, device: &B::Device) -> Tensor<B, 5> {
    let shape = [batch, config.num_frames, 3, config.frame_size, config.frame_size];
    Tensor::random(shape, Distribution::Uniform(0.0, 1.0), device)
}

/// Runs `work` `warmup` times untimed, then `runs` times timed; prints and returns the median,
/// with the first run's time and the kernels compiled during it (counted by `kernels`).
fn time(
    args: &BenchArgs,
    name: &str,
    config: &M3dfelConfig,
    batch: usize,
    kernels: Option<&KernelLog>,
    mut work: impl FnMut(),
) -> Measurement {
    let precision = match args.precision {
        ComputePrecision::F32 => String::new(),
        other => format!(" ({})", format!("{other:?}").to_lowercase()),
    };
    let label = format!("{name}{precision}: {} preset, {}×{} frames, batch {batch}", config.preset, config.frame_size, config.frame_size);
    // On a GPU the first run also compiles every kernel it uses.
    eprint!("{label}: first run{}…", if kernels.is_some() { " (compiling GPU kernels)" } else { "" });
    let compiled_before = kernels.map(KernelLog::compiled);
    let start = Instant::now();
    work();
    let first_step_seconds = start.elapsed().as_secs_f64();
    let kernels_compiled = kernels.zip(compiled_before).map(|(log, before)| log.compiled() - before);
    let compiled = kernels_compiled.map_or(String::new(), |n| format!(", {n} kernels compiled"));
    eprintln!("\r{label}: first run took {first_step_seconds:.1} s{compiled}");
    for step in 2..=args.warmup {
        let start = Instant::now();
        work();
        eprintln!("\r{label}: warm-up run {step}/{} took {:.1} s", args.warmup, start.elapsed().as_secs_f64());
    }
    let mut seconds = Vec::with_capacity(args.runs);
    if args.warmup == 0 {
        seconds.push(first_step_seconds);
    }
    for run in seconds.len()..args.runs {
        eprint!("\r{label}: run {}/{}…   ", run + 1, args.runs);
        let start = Instant::now();
        work();
        seconds.push(start.elapsed().as_secs_f64());
    }
    let median_seconds = median(&seconds);
    let clips_per_second = batch as f64 / median_seconds;
    eprintln!("\r{label}: median {median_seconds:.3} s ({clips_per_second:.2} clips/s) of {} runs", args.runs);
    Measurement {
        name: name.to_string(),
        preset: config.preset.clone(),
        frame_size: config.frame_size,
        batch,
        seconds,
        median_seconds,
        clips_per_second,
        first_step_seconds,
        kernels_compiled,
    }
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 { sorted[middle] } else { (sorted[middle - 1] + sorted[middle]) / 2.0 }
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }
}
