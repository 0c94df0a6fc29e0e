//! Checkpoints: everything needed to continue a run exactly where an epoch ended.
//!
//! `<out>/checkpoints/epoch-NNNN/` holds the model (`model.bin`, Burn record with parameter
//! ids), the AdamW moments (`optimizer.bin`) and `state.json` (run configuration, epochs
//! and iterations done, metrics so far, best epoch). The random state needs no file: every
//! draw is keyed by (seed, epoch, clip), so the epoch number *is* the RNG state and the
//! data order. `checkpoints/latest` names the newest complete checkpoint and is replaced
//! atomically (write + rename) only after that checkpoint is fully written, so a run
//! killed at any moment resumes from the last finished epoch.
//!
//! Damage after the fact (a disk that filled up, a copy cut short, flipped bytes) is caught
//! by `checksums.json` (CRC-32 of `model.bin` and `optimizer.bin`, written before
//! `state.json`). The checkpoint before the newest is kept, so that `--resume` can go back
//! one epoch when the newest is damaged; older ones are deleted.

use std::collections::BTreeMap;
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

/// The checkpoint folders of a run (`epoch-NNNN`), newest first.
fn checkpoints(out: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(folder(out)) else { return Vec::new() };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.is_dir() && path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("epoch-")))
        .collect();
    dirs.sort();
    dirs.reverse();
    dirs
}

/// Whether `out` holds a run (any checkpoint, intact or not).
pub fn exists(out: &Path) -> bool {
    !checkpoints(out).is_empty()
}

/// The files of a checkpoint that `checksums.json` covers.
const CHECKED_FILES: [&str; 2] = ["model.bin", "optimizer.bin"];

fn checksum(path: &Path) -> anyhow::Result<u32> {
    let bytes = std::fs::read(path).with_context(|| format!("{} cannot be read", file_name(path)))?;
    Ok(crc32fast::hash(&bytes))
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// Checks a checkpoint folder: its state parses and its files have the checksums written
/// with them (checkpoints from before checksums were written are checked by loading only).
fn verify(dir: &Path) -> anyhow::Result<RunState> {
    let sums_path = dir.join("checksums.json");
    if sums_path.exists() {
        let text = std::fs::read_to_string(&sums_path).context("checksums.json cannot be read")?;
        let sums: BTreeMap<String, u32> = serde_json::from_str(&text).context("checksums.json is damaged")?;
        for name in CHECKED_FILES {
            let expected = sums.get(name).with_context(|| format!("checksums.json lacks {name}"))?;
            let path = dir.join(name);
            anyhow::ensure!(path.exists(), "{name} is missing");
            anyhow::ensure!(checksum(&path)? == *expected, "{name} is damaged (its checksum differs from the one written with it)");
        }
    }
    let path = dir.join("state.json");
    anyhow::ensure!(path.exists(), "state.json is missing (the checkpoint was never finished)");
    let text = std::fs::read_to_string(&path).context("state.json cannot be read")?;
    serde_json::from_str(&text).context("state.json is damaged")
}

/// The newest intact checkpoint of a run and its state. Checkpoints newer than the one
/// `checkpoints/latest` names were never finished and are skipped; a damaged one is named
/// in a warning and the one before it is tried. `None` when the run has no checkpoint;
/// an error naming each problem when every checkpoint is damaged.
pub fn newest_intact(out: &Path) -> anyhow::Result<Option<(PathBuf, RunState)>> {
    let finished = std::fs::read_to_string(folder(out).join("latest"))
        .ok()
        .map(|name| folder(out).join(name.trim()))
        .filter(|dir| dir.is_dir());
    let mut problems = Vec::new();
    for dir in checkpoints(out).into_iter().filter(|dir| finished.as_ref().is_none_or(|last| dir <= last)) {
        match verify(&dir) {
            Ok(state) => {
                if !problems.is_empty() {
                    eprintln!("warning: resuming from {}, the newest intact checkpoint", dir.display());
                }
                return Ok(Some((dir, state)));
            }
            Err(problem) => {
                eprintln!("warning: {}: damaged checkpoint: {problem:#}", dir.display());
                problems.push(format!("{}: {problem:#}", dir.display()));
            }
        }
    }
    if problems.is_empty() {
        return Ok(None);
    }
    anyhow::bail!(
        "{}: no intact checkpoint to resume from ({}); start a new run in another --out",
        out.display(),
        problems.join("; ")
    )
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
    let sums = CHECKED_FILES
        .iter()
        .map(|name| Ok((name.to_string(), checksum(&dir.join(name)).with_context(|| dir.display().to_string())?)))
        .collect::<anyhow::Result<BTreeMap<String, u32>>>()?;
    write_atomic(&dir.join("checksums.json"), serde_json::to_string_pretty(&sums)?.as_bytes())?;
    write_atomic(&dir.join("state.json"), serde_json::to_string_pretty(state)?.as_bytes())?;
    write_atomic(&folder(out).join("latest"), name.as_bytes())?;
    // Keep this checkpoint and the one before it.
    for old in checkpoints(out).into_iter().filter(|d| *d < dir).skip(1) {
        let _ = std::fs::remove_dir_all(old);
    }
    Ok(())
}

/// Restores the model and optimizer of a checkpoint folder.
pub fn restore<B, M, O>(dir: &Path, model: M, optimizer: O, device: &B::Device) -> anyhow::Result<(M, O)>
where
    B: AutodiffBackend,
    M: burn::module::AutodiffModule<B>,
    O: Optimizer<M, B>,
{
    let recorder = FileRecorder::new();
    // Burn's record reader panics on some damaged records: that is an error naming the file too.
    let model = m3dfel::reader_panics::catch(|| model.load_file(dir.join("model"), &recorder, device))
        .map_err(anyhow::Error::msg)
        .and_then(|loaded| Ok(loaded?))
        .with_context(|| format!("{}: cannot read the model", dir.join("model.bin").display()))?;
    let record = m3dfel::reader_panics::catch(|| recorder.load(dir.join("optimizer"), device))
        .map_err(anyhow::Error::msg)
        .and_then(|loaded| Ok(loaded?))
        .with_context(|| format!("{}: cannot read the optimizer state", dir.join("optimizer.bin").display()))?;
    let optimizer = m3dfel::reader_panics::catch(|| optimizer.load_record(record))
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("{}: the optimizer state does not fit the model", dir.join("optimizer.bin").display()))?;
    Ok((model, optimizer))
}
