//! Command-line arguments of `trainer` and the run configuration they select.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use m3dfel::M3dfelConfig;

use crate::backend::{ComputePrecision, Device, GpuKernels};
use crate::data::augment::Policy;
use crate::data::splits::{DatasetKind, DatasetSpec};
use crate::train::RunConfig;

/// Which clips to use.
#[derive(Args, Clone)]
pub struct DatasetArgs {
    /// Dataset to read.
    #[arg(long, value_enum, default_value = "synthetic")]
    pub dataset: DatasetKind,
    /// Folder the dataset was unpacked into (not needed for synthetic).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// DFEW fold (1–5).
    #[arg(long, default_value_t = 1)]
    pub fold: usize,
    /// Synthetic dataset: number of training clips.
    #[arg(long, default_value_t = 1400)]
    pub train_clips: usize,
    /// Synthetic dataset: number of held-out test clips (other people than in training).
    #[arg(long, default_value_t = 350)]
    pub test_clips: usize,
    /// Synthetic dataset: seed the clips are drawn from.
    #[arg(long, default_value_t = 7)]
    pub data_seed: u64,
}

impl DatasetArgs {
    pub fn spec(&self) -> DatasetSpec {
        DatasetSpec {
            kind: self.dataset,
            root: self.root.clone(),
            fold: self.fold,
            synthetic_train: self.train_clips,
            synthetic_test: self.test_clips,
            synthetic_seed: self.data_seed,
        }
    }
}

#[derive(Args, Clone)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DatasetArgs,
    /// Model size: paper (46.8 M parameters, 112×112 frames), small, or tiny (0.7 M).
    /// Default: tiny at 32×32 frames for synthetic, paper otherwise.
    #[arg(long)]
    pub preset: Option<String>,
    /// Instances per clip (1, 2, 4, 8 or 16; the paper's default is 4).
    #[arg(long)]
    pub bag_size: Option<usize>,
    /// Frame size in pixels (default: the preset's; 32 for the default synthetic run).
    #[arg(long)]
    pub frame_size: Option<usize>,
    /// Default: 300 (paper), 7 (synthetic).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Clips per optimizer step. Default: 256 (paper), 16 (synthetic).
    #[arg(long, value_parser = at_least_one())]
    pub batch_size: Option<usize>,
    /// Split each batch into this many micro-batches and accumulate their gradients (for
    /// GPUs that cannot hold the whole batch; default 1). With --resume it replaces the run's
    /// own, e.g. to continue on a GPU with less memory.
    #[arg(long, value_parser = at_least_one())]
    pub accumulation: Option<usize>,
    /// Peak learning rate. Default: 5e-4 (paper), 4e-3 (synthetic).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Final learning rate of the cosine schedule. Default: 5e-6 (paper), 2e-5 (synthetic).
    #[arg(long)]
    pub min_lr: Option<f64>,
    /// Epochs of linear warm-up. Default: 20 (paper), 1 (synthetic: without it, some seeds
    /// never leave chance level at the synthetic run's peak learning rate).
    #[arg(long)]
    pub warmup_epochs: Option<usize>,
    /// Training augmentation. Default: spec (paper); none for synthetic, whose every clip
    /// is a new person in a new scene.
    #[arg(long, value_enum)]
    pub augment: Option<Policy>,
    /// AdamW weight decay.
    #[arg(long, default_value_t = 0.05)]
    pub weight_decay: f64,
    /// Seed of the model's initial weights, the data order and the augmentations.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output folder: metrics.jsonl, summary.json, checkpoints, exported weights.
    #[arg(long, default_value = "runs/synthetic")]
    pub out: PathBuf,
    /// Continue the run in --out from its newest checkpoint (its stored settings are used).
    #[arg(long)]
    pub resume: bool,
    /// Compute device.
    #[arg(long, value_enum, default_value_t = Device::for_this_build())]
    pub device: Device,
    /// Float type of weights, activations, gradients and optimizer state (bf16/f16: for
    /// GPUs; give it again with --resume).
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: ComputePrecision,
    /// Who chooses the GPU's convolution kernels (wgpu, cuda): `fixed`, the project's choice
    /// per layer, or `autotune`, Burn's autotuner (slow first steps; for comparison).
    #[arg(long, value_enum, default_value = "fixed")]
    pub gpu_kernels: GpuKernels,
    /// Data-parallel replicas: with cuda/wgpu, the number of GPUs (devices 0..N-1); on the
    /// CPU, threads that each take a share of the batch. Default: 2 on the CPU, 1 on a GPU.
    #[arg(long)]
    pub replicas: Option<usize>,
    /// Threads decoding clips (default: number of CPU cores).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Hide the progress bars (one line per epoch is still printed).
    #[arg(long)]
    pub quiet: bool,
}

#[derive(Args)]
pub struct EvalArgs {
    /// Weights to evaluate (.safetensors from the trainer or `m3dfel import`, .pth, .bpk).
    #[arg(long)]
    pub weights: PathBuf,
    #[command(flatten)]
    pub data: DatasetArgs,
    /// Clips per forward pass.
    #[arg(long, default_value_t = 8, value_parser = at_least_one())]
    pub batch_size: usize,
    /// Compute device.
    #[arg(long, value_enum, default_value_t = Device::for_this_build())]
    pub device: Device,
    /// Threads decoding clips (default: number of CPU cores).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Folder for eval.json, confusion.txt and confusion.png.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the metrics as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Frame size of the default synthetic run: small enough to train in minutes on a CPU.
const SYNTHETIC_FRAME_SIZE: usize = 32;

pub fn workers(requested: Option<usize>) -> usize {
    requested.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
}

pub fn train_config(args: &TrainArgs) -> anyhow::Result<RunConfig> {
    let synthetic = args.data.dataset == DatasetKind::Synthetic;
    let preset = args.preset.clone().unwrap_or_else(|| if synthetic { "tiny" } else { "paper" }.into());
    let mut model = M3dfelConfig::named(&preset).context("--preset")?;
    if let Some(bag) = args.bag_size {
        if bag == 0 || model.num_frames % bag != 0 {
            anyhow::bail!("--bag-size {bag} does not divide the {} frames of a clip; use 1, 2, 4, 8 or 16", model.num_frames);
        }
        model.instance_length = model.num_frames / bag;
    }
    if let Some(size) = args.frame_size.or((synthetic && args.preset.is_none()).then_some(SYNTHETIC_FRAME_SIZE)) {
        model.frame_size = size;
    }
    let pick = |value: Option<f64>, paper: f64, synthetic_value: f64| value.unwrap_or(if synthetic { synthetic_value } else { paper });
    Ok(RunConfig {
        dataset: args.data.spec(),
        model,
        epochs: args.epochs.unwrap_or(if synthetic { 7 } else { 300 }),
        batch_size: args.batch_size.unwrap_or(if synthetic { 16 } else { 256 }),
        accumulation: args.accumulation.unwrap_or(1),
        lr: pick(args.lr, 5e-4, 4e-3),
        min_lr: pick(args.min_lr, 5e-6, 2e-5),
        warmup_epochs: args.warmup_epochs.unwrap_or(if synthetic { 1 } else { 20 }),
        weight_decay: args.weight_decay,
        label_smoothing: 0.1,
        augment: args.augment.unwrap_or(if synthetic { Policy::None } else { Policy::Spec }),
        replicas: args.replicas.unwrap_or(if args.device == Device::Cpu { 2 } else { 1 }).max(1),
        seed: args.seed,
    })
}

/// A count that must be at least 1 (clips per batch, micro-batches per step).
fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..)
}
