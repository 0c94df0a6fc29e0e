//! The training run: the paper's recipe (AdamW, warm-up + cosine per iteration, label
//! smoothing 0.1), gradient accumulation, evaluation after every epoch, checkpoints,
//! metrics, reports and weight exports.

pub mod checkpoint;
pub mod metrics;
pub mod out_of_memory;
pub mod schedule;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use burn::module::{AutodiffModule, Module};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamWConfig, GradientsAccumulator, GradientsParams, Optimizer};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use m3dfel::weights::{Precision, save_safetensors};
use m3dfel::{CLASSES, M3dfel, M3dfelBackend, M3dfelConfig, NUM_CLASSES};

use crate::backend::ComputePrecision;
use crate::data::augment::Policy;
use crate::data::loader::{self, Augment, ClipShape, Loader};
use crate::data::splits::DatasetSpec;
use crate::data::{ClipEntry, Skipped, Split};
use crate::report;
use metrics::Confusion;
use schedule::WarmupCosine;

/// Everything that defines a run; saved in every checkpoint and reused by `--resume`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RunConfig {
    pub dataset: DatasetSpec,
    pub model: M3dfelConfig,
    pub epochs: usize,
    pub batch_size: usize,
    /// Micro-batches per optimizer step (gradient accumulation).
    pub accumulation: usize,
    pub lr: f64,
    pub min_lr: f64,
    pub warmup_epochs: usize,
    pub weight_decay: f64,
    pub label_smoothing: f32,
    pub augment: Policy,
    /// Data-parallel replicas (see [`Resources::replicas`]); part of the configuration
    /// because BatchNorm statistics are taken per replica.
    pub replicas: usize,
    pub seed: u64,
}

/// Metrics of one split after one epoch (one line of `metrics.jsonl`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EpochMetrics {
    pub epoch: usize,
    pub split: String,
    pub loss: f64,
    pub war: f64,
    pub uar: f64,
    /// In class order; `null` for classes absent from the split.
    pub per_class_recall: [Option<f64>; NUM_CLASSES],
    pub clips: u64,
    /// Clips that could not be read and were left out.
    pub skipped: usize,
    /// Learning rate at the end of the epoch (train lines only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr: Option<f64>,
    pub seconds: f64,
    pub clips_per_second: f64,
}

/// The best epoch by test WAR.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Best {
    pub epoch: usize,
    pub war: f64,
    pub uar: f64,
    pub confusion: Confusion,
}

/// Progress of a run, saved with each checkpoint.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RunState {
    pub config: RunConfig,
    pub epochs_done: usize,
    pub iterations_done: usize,
    pub history: Vec<EpochMetrics>,
    pub best: Option<Best>,
    /// Clips met during training or testing that could not be read.
    #[serde(default)]
    pub skipped: Vec<Skipped>,
}

/// What `summary.json` holds.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub dataset: String,
    pub preset: String,
    pub bag_size: usize,
    pub epochs: usize,
    /// Test metrics of the last epoch.
    pub war: f64,
    pub uar: f64,
    pub best_epoch: usize,
    pub best_war: f64,
    pub best_uar: f64,
    pub weights: Vec<PathBuf>,
    pub confusion_matrix: Vec<PathBuf>,
    /// The training curves (loss, WAR, UAR, learning rate per epoch), PNG and SVG.
    pub curves: Vec<PathBuf>,
    pub metrics: PathBuf,
    pub skipped_clips: usize,
    pub training_seconds: f64,
}

/// Where the work of a run happens and how data is prepared.
pub struct Resources<D> {
    /// Device number → device. Device 0 holds the model and the optimizer state.
    /// With [`RunConfig::replicas`] = R, each micro-batch is split into R shards that run
    /// forward and backward concurrently (one thread each) on devices 0..R-1; their gradients
    /// are summed on device 0 in a fixed order. Several GPUs, or several threads sharing the
    /// CPU (Burn's CPU kernels leave cores idle on small layers).
    pub device_at: fn(usize) -> D,
    /// Float type of everything on those devices.
    pub precision: ComputePrecision,
    pub workers: usize,
    pub progress: bool,
    /// On a GPU: the kernels the runtime compiles, counted (the first step compiles them).
    pub kernels: Option<crate::kernel_cache::KernelLog>,
    /// The kind of device, for what it can do ([`crate::backend::Device::check_replicas`]).
    pub kind: crate::backend::Device,
}

/// What one replica's forward and backward pass produced.
struct ShardResult {
    grads: GradientsParams,
    /// Sum over the shard's clips of the loss.
    loss_sum: f64,
    labels: Vec<usize>,
    predictions: Vec<usize>,
}

/// Forward and backward of one micro-batch, split across the replicas. The loss of each
/// clip is weighted by `weight` (1 / batch size), so summing the gradients of all shards
/// and micro-batches gives the gradient of the batch mean.
///
/// Every shard is `micro.div_ceil(replicas)` clips, whatever the batch holds: a short batch
/// (clips that could not be read were left out) is padded with blank clips, which count in
/// neither BatchNorm's statistics ([`M3dfel::forward_padded`]), the loss, the gradients nor
/// the metrics. So no new shape, and on a GPU no new kernel, appears in the middle of a run.
fn replica_steps<B>(
    model: &M3dfel<B>,
    batch: crate::data::loader::Batch,
    micro: usize,
    replicas: &[B::Device],
    config: &M3dfelConfig,
    smoothing: f32,
    weight: f64,
) -> Vec<ShardResult>
where
    B: AutodiffBackend + M3dfelBackend,
{
    let clip_len = batch.values.len() / batch.labels.len();
    let per_shard = micro.max(batch.labels.len()).div_ceil(replicas.len());
    let shards: Vec<(Vec<f32>, Vec<usize>)> = batch
        .values
        .chunks(per_shard * clip_len)
        .zip(batch.labels.chunks(per_shard))
        .map(|(values, labels)| (values.to_vec(), labels.to_vec()))
        .collect();
    let step = |(values, labels): (Vec<f32>, Vec<usize>), device: &B::Device| {
        let model = model.clone().fork(device);
        let real = labels.len();
        let logits = padded_logits(&model, values, real, per_shard, config, device);
        let loss_fn = CrossEntropyLossConfig::new().with_smoothing(Some(smoothing)).init(device);
        let loss = loss_fn.forward(logits.clone(), labels_tensor(&labels, device));
        let grads = loss.clone().mul_scalar(weight * real as f64).backward();
        ShardResult {
            grads: GradientsParams::from_grads(grads, &model),
            loss_sum: loss.into_scalar().elem::<f64>() * real as f64,
            predictions: predictions(logits),
            labels,
        }
    };
    if shards.len() == 1 {
        return shards.into_iter().map(|shard| step(shard, &replicas[0])).collect();
    }
    std::thread::scope(|scope| {
        let threads: Vec<_> = shards
            .into_iter()
            .zip(replicas)
            .map(|(shard, device)| scope.spawn(move || step(shard, device)))
            .collect();
        threads.into_iter().map(|t| t.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    })
}

/// Input tensor [clips, frames, 3, size, size] of a batch.
/// The logits `[real, classes]` of the `real` clips in `values`, run as a batch of `rows`
/// clips: the rest are blank padding, which makes no new shape (on a GPU: no new kernel)
/// appear when a batch comes up short. The padding counts in no BatchNorm statistics
/// ([`M3dfel::forward_padded`]) and its rows are cut off here, before any loss or metric.
fn padded_logits<B: M3dfelBackend>(
    model: &M3dfel<B>,
    mut values: Vec<f32>,
    real: usize,
    rows: usize,
    config: &M3dfelConfig,
    device: &B::Device,
) -> Tensor<B, 2> {
    values.resize(values.len() / real * rows, 0.0);
    let shape = [rows, config.num_frames, 3, config.frame_size, config.frame_size];
    let clips = Tensor::from_data(TensorData::new(values, shape), device);
    model.forward_padded(clips, real).logits.slice([0..real]) // [real, classes]
}

fn labels_tensor<B: Backend>(labels: &[usize], device: &B::Device) -> Tensor<B, 1, Int> {
    let values: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
    Tensor::from_data(TensorData::new(values, [labels.len()]), device)
}

fn predictions<B: Backend>(logits: Tensor<B, 2>) -> Vec<usize> {
    let data = logits.argmax(1).into_data();
    data.iter::<i64>().map(|p| p as usize).collect()
}

fn shape(config: &M3dfelConfig) -> ClipShape {
    ClipShape { frames: config.num_frames, size: config.frame_size }
}

/// Result of evaluating a model on a split.
pub struct Evaluation {
    pub loss: f64,
    pub confusion: Confusion,
    pub skipped: Vec<Skipped>,
    pub seconds: f64,
}

/// Evaluates a model on every clip of a split, deterministically (no augmentation, no
/// random frame offsets).
pub fn evaluate<B: M3dfelBackend>(
    model: &M3dfel<B>,
    config: &M3dfelConfig,
    entries: Arc<[ClipEntry]>,
    batch_size: usize,
    smoothing: f32,
    device: &B::Device,
    workers: usize,
    bar: &ProgressBar,
) -> Evaluation {
    let start = Instant::now();
    let loss_fn = CrossEntropyLossConfig::new().with_smoothing(Some(smoothing)).init(device);
    let batches = loader::eval_batches(entries.len(), batch_size);
    bar.set_length(entries.len() as u64);
    bar.set_position(0);
    let mut evaluation = Evaluation { loss: 0.0, confusion: Confusion::default(), skipped: Vec::new(), seconds: 0.0 };
    for batch in Loader::start(entries, batches, shape(config), None, workers, 2) {
        bar.inc((batch.labels.len() + batch.skipped.len()) as u64);
        evaluation.skipped.extend(batch.skipped);
        if batch.labels.is_empty() {
            continue;
        }
        // Every batch is `batch_size` clips: a short one (the last, or one that lost clips it
        // could not read) is padded. The model runs with its running BatchNorm statistics
        // (folded), so clips do not affect each other and the padding changes nothing.
        let count = batch.labels.len();
        let logits = padded_logits(model, batch.values, count, batch_size.max(count), config, device);
        let loss = loss_fn.forward(logits.clone(), labels_tensor(&batch.labels, device));
        evaluation.loss += loss.into_scalar().elem::<f64>() * batch.labels.len() as f64;
        for (truth, predicted) in batch.labels.iter().zip(predictions(logits)) {
            evaluation.confusion.add(*truth, predicted);
        }
    }
    evaluation.loss /= evaluation.confusion.total().max(1) as f64;
    evaluation.seconds = start.elapsed().as_secs_f64();
    evaluation
}

use burn::tensor::ElementConversion as _;

impl Evaluation {
    pub fn metrics(&self, epoch: usize, split: &str) -> EpochMetrics {
        let clips = self.confusion.total();
        EpochMetrics {
            epoch,
            split: split.into(),
            loss: self.loss,
            war: self.confusion.war(),
            uar: self.confusion.uar(),
            per_class_recall: self.confusion.per_class_recall(),
            clips,
            skipped: self.skipped.len(),
            lr: None,
            seconds: self.seconds,
            clips_per_second: clips as f64 / self.seconds.max(1e-9),
        }
    }
}

fn bar_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> ")
}

/// A spinner for the first GPU step, which compiles the kernels (seconds to minutes).
fn compiling_spinner(bars: &MultiProgress) -> ProgressBar {
    let spinner = bars.add(ProgressBar::new_spinner());
    spinner.set_style(ProgressStyle::with_template("{spinner} {msg} {elapsed}").unwrap_or_else(|_| ProgressStyle::default_spinner()));
    spinner.set_message("compiling the GPU kernels of the first step…");
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    spinner
}

fn report_skipped(out: &Path, skipped: &[Skipped]) -> anyhow::Result<()> {
    if skipped.is_empty() {
        return Ok(());
    }
    let path = out.join("skipped.txt");
    let text: String = skipped.iter().map(|s| format!("{}\t{}\n", s.clip, s.reason)).collect();
    std::fs::write(&path, text).with_context(|| format!("{}: cannot write", path.display()))?;
    eprintln!("warning: {} clips could not be used and were skipped (first: {}: {}); list in {}",
        skipped.len(), skipped[0].clip, skipped[0].reason, path.display());
    Ok(())
}

/// A new run, or the run in `out` continued from its newest checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    New,
    /// The configuration stored in the checkpoint wins, but for the micro-batches per step,
    /// where given: how the batches are split to fit the hardware, not which clips they hold.
    Resume { accumulation: Option<usize> },
}

/// Trains a model as `config` says, writing everything into `out`; or, with `Start::Resume`,
/// continues the run there.
pub fn run<B>(mut config: RunConfig, out: &Path, start: Start, resources: Resources<B::Device>) -> anyhow::Result<Summary>
where
    B: AutodiffBackend + M3dfelBackend,
    B::InnerBackend: M3dfelBackend,
{
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create the output folder", out.display()))?;
    let resume = matches!(start, Start::Resume { .. });
    let resumed = if resume { checkpoint::newest_intact(out)? } else { None };
    let mut replaced_accumulation = None;
    let mut state = match resumed.clone() {
        Some((_, mut state)) => {
            println!("resuming {} after epoch {} of {}", out.display(), state.epochs_done, state.config.epochs);
            if let Start::Resume { accumulation: Some(accumulation) } = start
                && accumulation != state.config.accumulation
            {
                replaced_accumulation = Some(state.config.accumulation);
                state.config.accumulation = accumulation;
            }
            config = state.config.clone();
            state
        }
        None if resume => bail!("{}: nothing to resume (no checkpoint in {}); start without --resume",
            out.display(), checkpoint::folder(out).display()),
        None if checkpoint::exists(out) => bail!("{} already holds a run; continue it with --resume, or choose another --out",
            out.display()),
        None => RunState {
            config: config.clone(),
            epochs_done: 0,
            iterations_done: 0,
            history: Vec::new(),
            best: None,
            skipped: Vec::new(),
        },
    };
    let model_config = &config.model;
    model_config.validate().map_err(anyhow::Error::msg)?;
    resources.kind.check_replicas(config.replicas)?;
    if config.batch_size % config.accumulation != 0 {
        bail!("--batch-size {} is not a multiple of --accumulation {}{}", config.batch_size, config.accumulation,
            if resume { " (the batch size of the run resumed)" } else { "" });
    }
    m3dfel::cli_support::advise_when_out_of_memory(out_of_memory::advice(&config, resume));
    if let Some(before) = replaced_accumulation {
        println!(
            "--accumulation {} in place of the run's {before}: the same clips per optimizer step, in micro-batches of {} (BatchNorm's batch statistics are taken over each)",
            config.accumulation, config.batch_size / config.accumulation
        );
    }

    let (train, test) = config.dataset.open()?;
    let Split { entries: train_entries, skipped: mut indexing_skipped } = train;
    indexing_skipped.extend(test.skipped.iter().cloned());
    let steps = train_entries.len() / config.batch_size;
    if steps == 0 {
        bail!("the training split has {} clips, fewer than one batch of {} (--batch-size)",
            train_entries.len(), config.batch_size);
    }
    let train_entries: Arc<[ClipEntry]> = train_entries.into();
    let test_entries: Arc<[ClipEntry]> = test.entries.into();
    let schedule = WarmupCosine {
        peak: config.lr,
        floor: config.min_lr,
        warmup_iterations: config.warmup_epochs * steps,
        total_iterations: config.epochs * steps,
    };
    let device = &(resources.device_at)(0);
    let replicas: Vec<B::Device> = (0..config.replicas).map(resources.device_at).collect();
    resources.precision.apply::<B>(&replicas)?;
    B::seed(device, config.seed);
    let mut model = model_config.init::<B>(device);
    println!(
        "training M3DFEL ({} preset, bag size {}, {} parameters) on {}: {} train / {} test clips, {} epochs of {} steps, batch {}",
        model_config.preset, model_config.bag_size(), m3dfel::cli_support::group_thousands(model.num_parameters()),
        config.dataset.name(), train_entries.len(), test_entries.len(), config.epochs, steps, config.batch_size
    );
    if resources.precision != ComputePrecision::F32 {
        println!("precision: {:?} for weights, activations, gradients and optimizer state", resources.precision);
    }
    let mut optimizer = AdamWConfig::new()
        .with_beta_1(0.9)
        .with_beta_2(0.999)
        .with_epsilon(1e-8)
        .with_weight_decay(config.weight_decay as f32)
        .init::<B, M3dfel<B>>();
    if let Some((dir, _)) = &resumed {
        (model, optimizer) = checkpoint::restore(dir, model, optimizer, device)?;
    }
    let micro = config.batch_size / config.accumulation;

    let bars = MultiProgress::new();
    if !resources.progress {
        bars.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let overall = bars.add(ProgressBar::new((config.epochs * steps) as u64));
    overall.set_style(bar_style("overall  [{bar:30}] {pos}/{len} steps  {elapsed_precise} elapsed, ETA {eta_precise}"));
    overall.set_position(state.iterations_done as u64);
    let epoch_bar = bars.add(ProgressBar::new(steps as u64));
    epoch_bar.set_style(bar_style("{prefix:>12} [{bar:30}] {pos}/{len} {msg}  ETA {eta}"));
    let started = Instant::now();
    let mut first_gpu_step = resources.kernels.as_ref();

    for epoch in state.epochs_done..config.epochs {
        let epoch_start = Instant::now();
        epoch_bar.set_prefix(format!("epoch {}/{}", epoch + 1, config.epochs));
        epoch_bar.set_length(steps as u64);
        epoch_bar.set_position(0);
        let batches = loader::train_batches(train_entries.len(), micro * config.accumulation, config.seed, epoch)
            .into_iter()
            .flat_map(|b| b.chunks(micro).map(<[usize]>::to_vec).collect::<Vec<_>>())
            .collect();
        let mut batches = Loader::start(
            train_entries.clone(),
            batches,
            shape(model_config),
            Some(Augment { policy: config.augment, seed: config.seed, epoch }),
            resources.workers,
            2 * config.accumulation,
        );
        let (mut confusion, mut loss_sum, mut train_skipped) = (Confusion::default(), 0.0, Vec::new());
        let mut lr = 0.0;
        for _ in 0..steps {
            let compiling = first_gpu_step.take().map(|log| (log, compiling_spinner(&bars), Instant::now(), log.compiled()));
            lr = schedule.at(state.iterations_done);
            let mut accumulator = GradientsAccumulator::<M3dfel<B>>::new();
            for _ in 0..config.accumulation {
                let mut batch = batches.next().context("the data loader stopped early")?;
                train_skipped.append(&mut batch.skipped);
                if batch.labels.is_empty() {
                    continue;
                }
                let weight = 1.0 / config.batch_size as f64;
                for shard in replica_steps(&model, batch, micro, &replicas, model_config, config.label_smoothing, weight) {
                    let grads = shard.grads.to_device(device, &model);
                    accumulator.accumulate(&model, grads);
                    loss_sum += shard.loss_sum;
                    for (truth, predicted) in shard.labels.iter().zip(shard.predictions) {
                        confusion.add(*truth, predicted);
                    }
                }
            }
            model = optimizer.step(lr, model, accumulator.grads());
            // Merge the BatchNorm running statistics the replicas' threads recorded: each
            // recorded 0.9·running + 0.1·(its shard's batch statistics); `valid()` replaces the
            // running value with their mean (exact for one or two replicas, whatever the order).
            let _ = model.valid();
            if let Some((log, spinner, start, before)) = compiling {
                spinner.finish_and_clear();
                let (compiled, seconds) = (log.compiled() - before, start.elapsed().as_secs_f64());
                bars.suspend(|| eprintln!("first step on the GPU: {compiled} kernels compiled, {seconds:.1} s"));
            }
            state.iterations_done += 1;
            let seen = confusion.total().max(1);
            let rate = seen as f64 / epoch_start.elapsed().as_secs_f64();
            epoch_bar.set_message(format!("loss {:.3}  lr {lr:.2e}  {rate:.1} clips/s", loss_sum / seen as f64));
            epoch_bar.inc(1);
            overall.inc(1);
        }
        drop(batches);
        let train_seconds = epoch_start.elapsed().as_secs_f64();
        let clips = confusion.total();
        let train_metrics = EpochMetrics {
            epoch: epoch + 1,
            split: "train".into(),
            loss: loss_sum / clips.max(1) as f64,
            war: confusion.war(),
            uar: confusion.uar(),
            per_class_recall: confusion.per_class_recall(),
            clips,
            skipped: train_skipped.len(),
            lr: Some(lr),
            seconds: train_seconds,
            clips_per_second: clips as f64 / train_seconds.max(1e-9),
        };
        state.skipped.extend(train_skipped);

        epoch_bar.set_prefix("testing");
        let valid = model.valid();
        let evaluation = evaluate(&valid.clone().fold_batch_norm(), model_config, test_entries.clone(), micro.max(8),
            config.label_smoothing, device, resources.workers, &epoch_bar);
        let test_metrics = evaluation.metrics(epoch + 1, "test");
        state.skipped.extend(evaluation.skipped.iter().cloned());
        let mut seen = std::collections::BTreeSet::new();
        state.skipped.retain(|s| seen.insert(s.clip.clone()));
        let line = format!(
            "epoch {:>3}/{}: train loss {:.4} WAR {:.3} | test loss {:.4} WAR {:.3} UAR {:.3} | lr {:.2e} | {:.1} clips/s",
            epoch + 1, config.epochs, train_metrics.loss, train_metrics.war, test_metrics.loss, test_metrics.war,
            test_metrics.uar, lr, train_metrics.clips_per_second
        );
        bars.suspend(|| println!("{line}"));
        if state.best.as_ref().is_none_or(|b| test_metrics.war > b.war) {
            export(&valid, model_config, out)?;
            state.best = Some(Best { epoch: epoch + 1, war: test_metrics.war, uar: test_metrics.uar, confusion: evaluation.confusion.clone() });
        }
        state.history.push(train_metrics);
        state.history.push(test_metrics);
        state.epochs_done = epoch + 1;
        write_metrics(out, &state.history)?;
        report::curves_charts(&state.history, &curves_title(&config), out)?;
        checkpoint::save(out, &model, &optimizer, &state)?;
    }
    epoch_bar.finish_and_clear();
    overall.finish_and_clear();
    let skipped: Vec<Skipped> = indexing_skipped.into_iter().chain(state.skipped.iter().cloned()).collect();
    report_skipped(out, &skipped)?;
    finish(out, &config, &state, skipped.len(), started.elapsed().as_secs_f64())
}

/// Paths of the exported weights of the best epoch.
fn export_paths(out: &Path) -> [PathBuf; 2] {
    [out.join("best.safetensors"), out.join("best-f16.safetensors")]
}

/// Exports the best model: f32 for `m3dfel predict` and the browser, f16 (half the download).
fn export<B: Backend>(model: &M3dfel<B>, config: &M3dfelConfig, out: &Path) -> anyhow::Result<()> {
    let [f32_path, f16_path] = export_paths(out);
    for (path, precision) in [(f32_path, Precision::F32), (f16_path, Precision::F16)] {
        let tmp = path.with_extension("partial");
        save_safetensors(model, config, precision, &tmp)?;
        std::fs::rename(&tmp, &path).with_context(|| format!("{}: cannot write", path.display()))?;
    }
    Ok(())
}

fn write_metrics(out: &Path, history: &[EpochMetrics]) -> anyhow::Result<()> {
    let mut text = String::new();
    for line in history {
        text += &serde_json::to_string(line)?;
        text.push('\n');
    }
    checkpoint::write_atomic(&out.join("metrics.jsonl"), text.as_bytes())
}

/// What the training curves show: the model and the dataset.
fn curves_title(config: &RunConfig) -> String {
    format!("M3DFEL ({} preset, bag size {}) on {}", config.model.preset, config.model.bag_size(), config.dataset.name())
}

fn finish(out: &Path, config: &RunConfig, state: &RunState, skipped: usize, seconds: f64) -> anyhow::Result<Summary> {
    let last = state.history.iter().rev().find(|m| m.split == "test").context("the run has no test metrics")?;
    let best = state.best.as_ref().context("the run has no best epoch")?;
    let title = format!("test split, best epoch ({}): WAR {:.1} %, UAR {:.1} %", best.epoch, 100.0 * best.war, 100.0 * best.uar);
    let text_path = out.join("confusion.txt");
    std::fs::write(&text_path, report::confusion_text(&best.confusion, &format!("Confusion matrix of the best epoch ({title})")))
        .with_context(|| format!("{}: cannot write", text_path.display()))?;
    let [png_path, svg_path] = report::confusion_charts(&best.confusion, &title, out)?;
    let summary = Summary {
        dataset: config.dataset.name().into(),
        preset: config.model.preset.clone(),
        bag_size: config.model.bag_size(),
        epochs: state.epochs_done,
        war: last.war,
        uar: last.uar,
        best_epoch: best.epoch,
        best_war: best.war,
        best_uar: best.uar,
        weights: export_paths(out).to_vec(),
        confusion_matrix: vec![text_path, png_path, svg_path],
        curves: ["png", "svg"].map(|ext| out.join(format!("curves.{ext}"))).to_vec(),
        metrics: out.join("metrics.jsonl"),
        skipped_clips: skipped,
        training_seconds: seconds,
    };
    checkpoint::write_atomic(&out.join("summary.json"), serde_json::to_string_pretty(&summary)?.as_bytes())?;
    println!("\nfinal test WAR {:.4}  UAR {:.4}  (best: epoch {}, WAR {:.4}, UAR {:.4})", last.war, last.uar, best.epoch, best.war, best.uar);
    println!("per-class recall (best epoch): {}", best.confusion.per_class_recall().iter().zip(CLASSES)
        .map(|(r, c)| format!("{c} {}", r.map_or("-".into(), |r| format!("{:.2}", r)))).collect::<Vec<_>>().join(", "));
    println!("weights: {} (f32), {} (f16)", summary.weights[0].display(), summary.weights[1].display());
    println!("metrics: {}, curves: {}, confusion matrix: {} and {}, summary: {}",
        summary.metrics.display(), summary.curves[0].display(), summary.confusion_matrix[0].display(),
        summary.confusion_matrix[1].display(), out.join("summary.json").display());
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;

    use super::*;
    use crate::data::splits::DatasetKind;

    #[test]
    fn padding_a_short_evaluation_batch_changes_neither_loss_nor_metrics() {
        let spec = DatasetSpec {
            kind: DatasetKind::Synthetic,
            root: None,
            fold: 1,
            synthetic_train: 0,
            synthetic_test: 7,
            synthetic_seed: 3,
        };
        let (_, test) = spec.open().unwrap();
        let config = M3dfelConfig::preset("tiny").unwrap().with_frame_size(16);
        let device = Default::default();
        let model = config.init::<Flex>(&device).fold_batch_norm();
        let evaluate_in = |batch_size| {
            evaluate(&model, &config, test.entries.clone().into(), batch_size, 0.1, &device, 1, &ProgressBar::hidden())
        };
        // One clip at a time, no padding; then batches of 3 and 4, whose last batch (1 and 3
        // clips) is padded with 2 and 1 blank clips.
        let alone = evaluate_in(1);
        assert_eq!(alone.confusion.total(), 7);
        for batch_size in [3, 4] {
            let padded = evaluate_in(batch_size);
            assert_eq!(padded.confusion, alone.confusion, "batch size {batch_size}");
            assert!((padded.loss - alone.loss).abs() < 1e-6, "batch size {batch_size}: {} vs {}", padded.loss, alone.loss);
        }
    }

    /// A training micro-batch of 3 real clips computed alone and padded to 5 (one replica)
    /// and to 8 (two replicas of 4: the first shard 3 clips and one blank, the second all
    /// padding and left out): the same loss, predictions, gradient of every parameter and
    /// BatchNorm running statistics.
    #[test]
    fn padding_a_short_training_batch_changes_neither_loss_gradients_nor_metrics() {
        use burn::backend::Autodiff;
        use burn::module::{ModuleVisitor, Param, ParamId};
        type A = Autodiff<Flex>;

        /// Every parameter's gradient, in the model's order (BatchNorm's running statistics,
        /// visited too, have none).
        struct Gradients<'a>(&'a GradientsParams, Vec<(ParamId, Vec<f32>)>);
        impl ModuleVisitor<A> for Gradients<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<A, D>>) {
                if let Some(grad) = self.0.get::<Flex, D>(param.id) {
                    self.1.push((param.id, grad.into_data().to_vec().unwrap()));
                }
            }
        }

        let config = M3dfelConfig::preset("tiny").unwrap().with_frame_size(16);
        let device = Default::default();
        let initial = config.init::<A>(&device);
        let clip_len = config.num_frames * 3 * config.frame_size * config.frame_size;
        let values: Vec<f32> = (0..3 * clip_len).map(|i| ((i * 7919) % 1000) as f32 / 1000.0).collect();
        let labels = vec![2, 5, 2];
        let step = |micro: usize, replicas: usize| {
            let model = config.init::<A>(&device).load_record(initial.clone().into_record());
            let batch = crate::data::loader::Batch { values: values.clone(), labels: labels.clone(), skipped: Vec::new() };
            let shards = replica_steps(&model, batch, micro, &vec![device; replicas], &config, 0.1, 1.0 / 8.0);
            assert_eq!(shards.len(), 1, "the clips fit one shard");
            let shard = shards.into_iter().next().unwrap();
            let mut gradients = Gradients(&shard.grads, Vec::new());
            model.visit(&mut gradients);
            let valid = model.valid();
            let bn = valid.features.stem.bn.as_ref().unwrap();
            let running = [bn.running_mean.value(), bn.running_var.value()].map(|t| t.into_data().to_vec::<f32>().unwrap());
            (shard.loss_sum, shard.predictions, gradients.1, running)
        };
        let alone = step(3, 1);
        assert!(alone.2.len() > 40, "{} parameters", alone.2.len());
        for (micro, replicas) in [(5, 1), (8, 2)] {
            let padded = step(micro, replicas);
            let case = format!("{micro} clips a micro-batch on {replicas} replica(s)");
            assert_eq!(padded.2.len(), alone.2.len(), "{case}: parameters with a gradient");
            assert!((padded.0 - alone.0).abs() < 1e-5 * alone.0.abs(), "{case}: loss {} vs {}", padded.0, alone.0);
            assert_eq!(padded.1, alone.1, "{case}: predictions");
            for ((id, got), (_, expected)) in padded.2.iter().zip(&alone.2) {
                let scale = expected.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
                let error = got.iter().zip(expected).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
                assert!(error <= 1e-4 * scale, "{case}: the gradient of parameter {id} differs by {error} (largest {scale})");
            }
            for (got, expected) in padded.3.iter().zip(&alone.3) {
                let error = got.iter().zip(expected).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
                assert!(error < 1e-5, "{case}: BatchNorm's running statistics differ by {error}");
            }
        }
    }
}
