//! Datasets: which clips exist and their labels ([`splits`]), how a clip becomes a model
//! input ([`augment`]: the spec's frame sampling and augmentations), and batches prepared
//! by worker threads ahead of the training loop ([`loader`]).

pub mod augment;
pub mod loader;
pub mod splits;
pub mod synthetic;

use std::path::PathBuf;

use image::RgbImage;

use crate::rng::Rng;
use augment::Policy;
use synthetic::SyntheticClip;

/// Where a clip's frames come from.
#[derive(Debug, Clone)]
pub enum ClipSource {
    /// A folder of frame images, sorted by name.
    Folder(PathBuf),
    /// A clip of the built-in synthetic dataset, drawn on demand.
    Synthetic(Box<SyntheticClip>),
}

/// One labelled clip of a split.
#[derive(Debug, Clone)]
pub struct ClipEntry {
    /// How the clip is named in reports (its folder, or `synthetic/<split>/<index>`).
    pub name: String,
    pub label: usize,
    pub source: ClipSource,
}

/// A clip that was left out, and why.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Skipped {
    pub clip: String,
    pub reason: String,
}

/// The clips of one split (train or test).
#[derive(Debug, Clone, Default)]
pub struct Split {
    pub entries: Vec<ClipEntry>,
    /// Rows of the split file that point at nothing usable, found while indexing.
    pub skipped: Vec<Skipped>,
}

impl ClipEntry {
    /// The clip's frames: its image files, or the synthetic clip that draws them.
    fn frames(&self) -> Result<Frames<'_>, String> {
        match &self.source {
            ClipSource::Synthetic(clip) => Ok(Frames::Synthetic(clip)),
            ClipSource::Folder(dir) => {
                m3dfel::frames::list_frames(dir).map(Frames::Files).map_err(|e| e.to_string())
            }
        }
    }

    /// Builds the model input for this clip: `count` frames, [count, 3, size, size] values in
    /// [0, 1]. With `augment` (training) frames are sampled with random offsets and one
    /// augmentation is drawn for the whole clip; without it (evaluation) sampling is
    /// deterministic (⌊n·i/count⌋, no offset) and frames are only resized.
    pub fn load(&self, count: usize, size: usize, augment: Option<(Policy, &mut Rng)>) -> Result<Vec<f32>, String> {
        let frames = self.frames()?;
        match augment.filter(|(policy, _)| *policy != Policy::None) {
            Some((policy, rng)) => {
                let mut values = Vec::with_capacity(count * 3 * size * size);
                let mut transform = None;
                for index in augment::train_indices(frames.len(), count, policy, rng) {
                    let image = frames.decode(index, size)?;
                    let t = transform.get_or_insert_with(|| {
                        augment::Augmentation::random(rng, policy, image.width(), image.height())
                    });
                    t.apply(&image, size, &mut values);
                }
                Ok(values)
            }
            None => {
                let images = m3dfel::frames::sample_indices(frames.len(), count)
                    .into_iter()
                    .map(|index| frames.decode(index, size))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(m3dfel::frames::clip_values(&images, size))
            }
        }
    }
}

enum Frames<'a> {
    Files(Vec<PathBuf>),
    Synthetic(&'a SyntheticClip),
}

impl Frames<'_> {
    fn len(&self) -> usize {
        match self {
            Self::Files(paths) => paths.len(),
            Self::Synthetic(clip) => clip.len,
        }
    }

    /// Frame `index`; synthetic frames are drawn at `size`.
    fn decode(&self, index: usize, size: usize) -> Result<RgbImage, String> {
        match self {
            Self::Synthetic(clip) => Ok(clip.frame(index, size)),
            Self::Files(paths) => m3dfel::frames::open_frame(&paths[index])
                .map_err(|e| format!("{}: cannot decode the image: {e}", paths[index].display())),
        }
    }
}
