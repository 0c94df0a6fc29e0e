//! `trainer synth`: writes the synthetic dataset to disk in DFEW's exact layout, so the DFEW
//! reader (and any tool that reads DFEW) can be exercised end to end without the real data.
//!
//! `Clip/clip_224x224/<5-digit id>/<5-digit frame>.jpg` and
//! `EmoLabel_DataSplit/{train,test}(single-labeled)/set_{1..5}.csv` with a header row and
//! 1-based labels. Clip `id` is in the test set of fold `(id − 1) mod 5 + 1`.
//! `synthetic_clips.csv` adds what only a generator knows: frames, whether the expression is
//! subtle, and its window (first and last frame, 0-based; empty for neutral clips).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use crate::data::splits::{SYNTHETIC_TRAIN, dfew_clip_dir};
use crate::data::synthetic::SyntheticClip;

#[derive(Args)]
pub struct SynthArgs {
    /// Folder to write the dataset into.
    #[arg(long)]
    pub out: PathBuf,
    /// Number of clips (split into 5 folds).
    #[arg(long, default_value_t = 350)]
    pub clips: usize,
    /// Frame size in pixels (DFEW's frames are 224×224).
    #[arg(long, default_value_t = 112)]
    pub frame_size: usize,
    /// Seed the clips are drawn from.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

const FOLDS: usize = 5;

pub fn run(args: SynthArgs) -> anyhow::Result<()> {
    let clips: Vec<SyntheticClip> =
        (0..args.clips).map(|index| SyntheticClip::new(args.seed, SYNTHETIC_TRAIN, index)).collect();
    let bar = ProgressBar::new(args.clips as u64);
    bar.set_style(ProgressStyle::with_template("writing clips [{bar:30}] {pos}/{len}, ETA {eta}")?);
    for (index, clip) in clips.iter().enumerate() {
        let dir = dfew_clip_dir(&args.out, index + 1);
        std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
        for t in 0..clip.len {
            let path = dir.join(format!("{:05}.jpg", t + 1));
            clip.frame(t, args.frame_size)
                .save(&path)
                .with_context(|| format!("{}: cannot write the frame", path.display()))?;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    for fold in 1..=FOLDS {
        for (part, in_test) in [("train", false), ("test", true)] {
            let rows = clips.iter().enumerate().filter(|(i, _)| (i % FOLDS + 1 == fold) == in_test);
            let text: String = std::iter::once("video_name,label\n".to_string())
                .chain(rows.map(|(i, clip)| format!("{},{}\n", i + 1, clip.label + 1)))
                .collect();
            write_split(&args.out, part, fold, &text)?;
        }
    }
    let mut truth = String::from("video_name,label,frames,subtle,onset,offset\n");
    for (i, clip) in clips.iter().enumerate() {
        let (onset, offset) = clip.window().map_or((String::new(), String::new()), |(a, b)| (format!("{a:.1}"), format!("{b:.1}")));
        truth += &format!("{},{},{},{},{onset},{offset}\n", i + 1, clip.label + 1, clip.len, clip.subtle);
    }
    let truth_path = args.out.join("synthetic_clips.csv");
    std::fs::write(&truth_path, truth).with_context(|| format!("{}: cannot write", truth_path.display()))?;
    println!("wrote {} clips in DFEW's layout to {}", args.clips, args.out.display());
    Ok(())
}

fn write_split(root: &Path, part: &str, fold: usize, text: &str) -> anyhow::Result<()> {
    let dir = root.join(format!("EmoLabel_DataSplit/{part}(single-labeled)"));
    std::fs::create_dir_all(&dir).with_context(|| format!("{}: cannot create", dir.display()))?;
    let path = dir.join(format!("set_{fold}.csv"));
    std::fs::write(&path, text).with_context(|| format!("{}: cannot write", path.display()))
}
