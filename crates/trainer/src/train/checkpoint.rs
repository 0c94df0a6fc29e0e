//! Checkpoints: everything needed to continue a run exactly where an epoch ended.
//!
//! `<out>/checkpoints/epoch-NNNN/` holds the model (`model.bin`, Burn record with parameter
//! ids), the AdamW moments (`optimizer.bin`) and `state.json` (run configuration, epochs
//! and iterations done, metrics so far, best epoch). The random state needs no file: every
//! draw is keyed by (seed, epoch, clip), so the epoch number *is* the RNG state and the
//! data order. `checkpoints/latest` names the newest complete checkpoint and is replaced
//! atomically (write + rename) only after that checkpoint is fully written, so a run
//! killed at any moment resumes from the last finished epoch.

use std::path::{Path, PathBuf};

use anyhow::Context;
use burn::optim::Optimizer;
use burn::record::{BinFileRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;

use super::RunState;

type FileRecorder = BinFileRecorder<FullPrecisionSettings>;

pub fn folder(out: &Path) -> PathBuf {
    out.join("checkpoints")
}

/// Writes `contents` to `path` through a temporary file and a rename, so readers never see
/// a half-written file.
pub fn write_atomic(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, contents).with_context(|| format!("{}: cannot write", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("{}: cannot write", path.display()))
}

/// The newest complete checkpoint of a run, if any.
pub fn latest(out: &Path) -> anyhow::Result<Option<PathBuf>> {
    let pointer = folder(out).join("latest");
    if !pointer.exists() {
        return Ok(None);
    }
    let name = std::fs::read_to_string(&pointer).with_context(|| format!("{}: cannot read", pointer.display()))?;
    Ok(Some(folder(out).join(name.trim())))
}

pub fn save<B, M, O>(out: &Path, model: &M, optimizer: &O, state: &RunState) -> anyhow::Result<()>
where
    B: AutodiffBackend,
    M: burn::module::AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    let name = format!("epoch-{:04}", state.epochs_done);
    let dir = folder(out).join(&name);
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let recorder = FileRecorder::new();
    model
        .clone()
        .save_file(dir.join("model"), &recorder)
        .with_context(|| format!("{}: cannot write the model", dir.display()))?;
    recorder
        .record(optimizer.to_record(), dir.join("optimizer"))
        .with_context(|| format!("{}: cannot write the optimizer state", dir.display()))?;
    write_atomic(&dir.join("state.json"), serde_json::to_string_pretty(state)?.as_bytes())?;
    let previous = latest(out)?;
    write_atomic(&folder(out).join("latest"), name.as_bytes())?;
    if let Some(previous) = previous.filter(|p| *p != dir) {
        let _ = std::fs::remove_dir_all(previous);
    }
    Ok(())
}

/// Loads the run state of a checkpoint folder.
pub fn load_state(dir: &Path) -> anyhow::Result<RunState> {
    let path = dir.join("state.json");
    let text = std::fs::read_to_string(&path).with_context(|| format!("{}: cannot read", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: not a trainer checkpoint state", path.display()))
}

/// Restores the model and optimizer of a checkpoint folder.
pub fn restore<B, M, O>(dir: &Path, model: M, optimizer: O, device: &B::Device) -> anyhow::Result<(M, O)>
where
    B: AutodiffBackend,
    M: burn::module::AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    let recorder = FileRecorder::new();
    let model = model
        .load_file(dir.join("model"), &recorder, device)
        .with_context(|| format!("{}: cannot read the model", dir.display()))?;
    let record = recorder
        .load(dir.join("optimizer"), device)
        .with_context(|| format!("{}: cannot read the optimizer state", dir.display()))?;
    Ok((model, optimizer.load_record(record)))
}
