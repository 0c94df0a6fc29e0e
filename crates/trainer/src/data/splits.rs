//! Which clips a dataset has and their labels: the built-in synthetic set, DFEW, FERV39K
//! and a generic CSV. Rows that point at nothing usable are reported and skipped.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::ValueEnum;
use m3dfel::CLASSES;

use super::synthetic::SyntheticClip;
use super::{ClipEntry, ClipSource, Skipped, Split};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetKind {
    /// The built-in synthetic faces (no download, no --root).
    Synthetic,
    /// DFEW: `Clip/clip_224x224/<id>/*.jpg` and `EmoLabel_DataSplit/…/set_<fold>.csv`.
    Dfew,
    /// FERV39K: `2_ClipsforFaceCrop/<clip>/*.jpg` and `4_setups/All_scenes/{train,test}_All.csv`.
    Ferv39k,
    /// `train.csv` and `test.csv` in --root, rows `path,label` (path to a folder of frames,
    /// relative to the CSV; label 0–6 or a class name).
    Csv,
}

/// Everything that selects the clips of a run.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct DatasetSpec {
    pub kind: DatasetKind,
    pub root: Option<PathBuf>,
    pub fold: usize,
    /// Synthetic only: clips per split and the seed they are drawn from.
    pub synthetic_train: usize,
    pub synthetic_test: usize,
    pub synthetic_seed: u64,
}

/// Split tags of the synthetic dataset (different tags share no people).
pub const SYNTHETIC_TRAIN: u64 = 1;
pub const SYNTHETIC_TEST: u64 = 2;

impl DatasetSpec {
    /// Indexes the train and test splits.
    pub fn open(&self) -> anyhow::Result<(Split, Split)> {
        let root = || {
            self.root.as_deref().with_context(|| {
                format!("--dataset {} needs --root DIR: the folder the dataset was unpacked into", self.name())
            })
        };
        match self.kind {
            DatasetKind::Synthetic => Ok((
                synthetic(self.synthetic_seed, SYNTHETIC_TRAIN, self.synthetic_train),
                synthetic(self.synthetic_seed, SYNTHETIC_TEST, self.synthetic_test),
            )),
            DatasetKind::Dfew => {
                if !(1..=5).contains(&self.fold) {
                    bail!("--fold must be 1 to 5 for DFEW (got {})", self.fold);
                }
                let root = root()?;
                let split = |part: &str| {
                    let csv = root.join(format!("EmoLabel_DataSplit/{part}(single-labeled)/set_{}.csv", self.fold));
                    read_rows(&csv, ',', true, |row| dfew_row(root, row))
                };
                Ok((split("train")?, split("test")?))
            }
            DatasetKind::Ferv39k => {
                let root = root()?;
                let split = |part: &str| {
                    let csv = root.join(format!("4_setups/All_scenes/{part}_All.csv"));
                    read_rows(&csv, ' ', false, |row| {
                        labelled(root.join("2_ClipsforFaceCrop").join(row[0]), class_by_name(row[1]))
                    })
                };
                Ok((split("train")?, split("test")?))
            }
            DatasetKind::Csv => {
                let root = root()?;
                let split = |part: &str| {
                    read_rows(&root.join(format!("{part}.csv")), ',', false, |row| {
                        labelled(root.join(row[0]), class_by_index(row[1], 0).or_else(|_| class_by_name(row[1])))
                    })
                };
                Ok((split("train")?, split("test")?))
            }
        }
    }

    pub fn name(&self) -> &'static str {
        match self.kind {
            DatasetKind::Synthetic => "synthetic",
            DatasetKind::Dfew => "dfew",
            DatasetKind::Ferv39k => "ferv39k",
            DatasetKind::Csv => "csv",
        }
    }
}

fn synthetic(seed: u64, split: u64, count: usize) -> Split {
    let entries = (0..count)
        .map(|index| {
            let clip = SyntheticClip::new(seed, split, index);
            ClipEntry {
                name: format!("synthetic/{}/{index}", if split == SYNTHETIC_TRAIN { "train" } else { "test" }),
                label: clip.label,
                source: ClipSource::Synthetic(Box::new(clip)),
            }
        })
        .collect();
    Split { entries, skipped: Vec::new() }
}

/// The folder of DFEW clip `id` (zero-padded to 5 digits).
pub fn dfew_clip_dir(root: &Path, id: usize) -> PathBuf {
    root.join(format!("Clip/clip_224x224/{id:05}"))
}

fn dfew_row(root: &Path, row: &[&str]) -> Result<(PathBuf, usize), String> {
    let id: usize = row[0].trim().parse().map_err(|_| format!("clip id {:?} is not a number", row[0]))?;
    labelled(dfew_clip_dir(root, id), class_by_index(row[1], 1))
}

fn labelled(dir: PathBuf, label: Result<usize, String>) -> Result<(PathBuf, usize), String> {
    Ok((dir, label?))
}

/// A label written as a number; `base` is what the first class is written as (DFEW: 1).
fn class_by_index(text: &str, base: usize) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if (base..base + CLASSES.len()).contains(&n) => Ok(n - base),
        _ => Err(format!("label {text:?} is not a class number from {base} to {}", base + CLASSES.len() - 1)),
    }
}

fn class_by_name(text: &str) -> Result<usize, String> {
    let text = text.trim();
    CLASSES
        .iter()
        .position(|c| c.eq_ignore_ascii_case(text))
        .ok_or_else(|| format!("label {text:?} is not one of {}", CLASSES.join(", ")))
}

/// Reads a split file; every row goes through `parse` to a clip folder and label. Rows
/// with a bad label or a folder that does not exist are skipped with the reason.
fn read_rows(
    csv: &Path,
    separator: char,
    header: bool,
    parse: impl Fn(&[&str]) -> Result<(PathBuf, usize), String>,
) -> anyhow::Result<Split> {
    let text = std::fs::read_to_string(csv).with_context(|| format!("{}: cannot read the split file", csv.display()))?;
    let mut split = Split::default();
    for (number, line) in text.lines().enumerate().skip(header as usize) {
        if line.trim().is_empty() {
            continue;
        }
        let row: Vec<&str> = line.split(separator).filter(|f| !f.is_empty()).collect();
        let clip = format!("{}:{}", csv.display(), number + 1);
        let parsed = if row.len() < 2 { Err(format!("expected 2 columns, found {:?}", line)) } else { parse(&row) };
        match parsed {
            Ok((dir, _)) if !dir.is_dir() => {
                split.skipped.push(Skipped { clip, reason: format!("{}: no such clip folder", dir.display()) })
            }
            Ok((dir, label)) => split.entries.push(ClipEntry {
                name: dir.display().to_string(),
                label,
                source: ClipSource::Folder(dir),
            }),
            Err(reason) => split.skipped.push(Skipped { clip, reason }),
        }
    }
    if split.entries.is_empty() {
        bail!("{}: no usable clips ({} rows skipped{})", csv.display(), split.skipped.len(),
            split.skipped.first().map(|s| format!(", first: {}", s.reason)).unwrap_or_default());
    }
    Ok(split)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse_by_number_and_name() {
        assert_eq!(class_by_index("1", 1), Ok(0));
        assert_eq!(class_by_index("7", 1), Ok(6));
        assert!(class_by_index("0", 1).is_err());
        assert!(class_by_index("8", 1).is_err());
        assert_eq!(class_by_name("Surprise"), Ok(4));
        assert!(class_by_name("Contempt").unwrap_err().contains("happy"));
    }
}
