//! Batches prepared ahead of the training loop by worker threads.
//!
//! A producer thread builds the batches in order; the clips of a batch are decoded in
//! parallel by `workers` threads, and up to `prefetch` finished batches wait in a queue,
//! so decoding overlaps the model's work. A clip that cannot be read is reported with its
//! reason and left out of its batch; it never stops the run. The random draws of a clip's
//! augmentation depend only on (seed, epoch, clip), not on which thread decodes it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

use super::augment::Policy;
use super::{ClipEntry, Skipped};
use crate::rng::Rng;

/// Random-draw tags (see [`Rng::keyed`]).
const ORDER: u64 = 0x0D;
const AUGMENT: u64 = 0xA6;

/// Clips ready for the model.
pub struct Batch {
    /// [clips, frames, 3, size, size] values.
    pub values: Vec<f32>,
    pub labels: Vec<usize>,
    pub skipped: Vec<Skipped>,
}

/// How clips are turned into model inputs.
#[derive(Debug, Clone, Copy)]
pub struct ClipShape {
    pub frames: usize,
    pub size: usize,
}

/// Training augmentation of one epoch; `None` for evaluation.
#[derive(Debug, Clone, Copy)]
pub struct Augment {
    pub policy: Policy,
    pub seed: u64,
    pub epoch: usize,
}

/// The training batches of an epoch: a seeded shuffle of all clips, cut into full batches
/// (the last partial batch is dropped, as in the reference).
pub fn train_batches(clips: usize, batch_size: usize, seed: u64, epoch: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..clips).collect();
    Rng::keyed(seed, &[ORDER, epoch as u64]).shuffle(&mut order);
    order.chunks_exact(batch_size).map(<[usize]>::to_vec).collect()
}

/// Evaluation batches: every clip once, in order.
pub fn eval_batches(clips: usize, batch_size: usize) -> Vec<Vec<usize>> {
    (0..clips).collect::<Vec<_>>().chunks(batch_size).map(<[usize]>::to_vec).collect()
}

/// An iterator over prepared batches.
pub struct Loader {
    batches: Receiver<Batch>,
    producer: Option<JoinHandle<()>>,
}

impl Loader {
    pub fn start(
        entries: Arc<[ClipEntry]>,
        batches: Vec<Vec<usize>>,
        shape: ClipShape,
        augment: Option<Augment>,
        workers: usize,
        prefetch: usize,
    ) -> Self {
        let (sender, receiver) = sync_channel(prefetch.max(1));
        let producer = std::thread::spawn(move || {
            for indices in batches {
                let batch = load_batch(&entries, &indices, shape, augment, workers);
                if sender.send(batch).is_err() {
                    return; // the consumer stopped early
                }
            }
        });
        Self { batches: receiver, producer: Some(producer) }
    }
}

impl Iterator for Loader {
    type Item = Batch;

    fn next(&mut self) -> Option<Batch> {
        let batch = self.batches.recv().ok();
        if batch.is_none()
            && let Some(producer) = self.producer.take()
            && let Err(panic) = producer.join()
        {
            std::panic::resume_unwind(panic);
        }
        batch
    }
}

fn load_batch(entries: &[ClipEntry], indices: &[usize], shape: ClipShape, augment: Option<Augment>, workers: usize) -> Batch {
    let next = AtomicUsize::new(0);
    let decode = || {
        let mut done = Vec::new();
        loop {
            let slot = next.fetch_add(1, Ordering::Relaxed);
            let Some(&index) = indices.get(slot) else { return done };
            let mut rng = augment.map(|a| Rng::keyed(a.seed, &[AUGMENT, a.epoch as u64, index as u64]));
            let draw = augment.zip(rng.as_mut()).map(|(a, rng)| (a.policy, rng));
            done.push((slot, entries[index].load(shape.frames, shape.size, draw)));
        }
    };
    let mut results: Vec<(usize, Result<Vec<f32>, String>)> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..workers.clamp(1, indices.len().max(1))).map(|_| scope.spawn(decode)).collect();
        threads.into_iter().flat_map(|t| t.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    });
    results.sort_by_key(|(slot, _)| *slot);
    let mut batch = Batch { values: Vec::new(), labels: Vec::new(), skipped: Vec::new() };
    for (slot, result) in results {
        let entry = &entries[indices[slot]];
        match result {
            Ok(values) => {
                batch.values.extend(values);
                batch.labels.push(entry.label);
            }
            Err(reason) => batch.skipped.push(Skipped { clip: entry.name.clone(), reason }),
        }
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn train_batches_are_full_shuffled_and_reproducible() {
        let a = train_batches(10, 3, 1, 0);
        assert_eq!(a.len(), 3);
        assert!(a.iter().all(|b| b.len() == 3));
        assert_eq!(a, train_batches(10, 3, 1, 0));
        assert_ne!(a, train_batches(10, 3, 1, 1));
        let mut seen: Vec<usize> = a.concat();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 9);
    }

    #[test]
    fn eval_batches_cover_every_clip_once() {
        assert_eq!(eval_batches(5, 2), vec![vec![0, 1], vec![2, 3], vec![4]]);
    }

    #[test]
    fn every_frame_of_a_training_clip_gets_the_same_augmentation() {
        // Clips of 20 identical frames, through the loader as in training: one augmentation
        // drawn per clip gives 16 identical frames; one drawn per frame would not.
        let dir = tempfile::tempdir().unwrap();
        let frame = image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([(x * 6) as u8, (y * 8) as u8, ((x + y) * 3) as u8]));
        for i in 0..20 {
            frame.save(dir.path().join(format!("{i:03}.png"))).unwrap();
        }
        let clip = |label| ClipEntry {
            name: format!("clip {label}"),
            label,
            source: crate::data::ClipSource::Folder(dir.path().to_path_buf()),
        };
        let entries: Arc<[ClipEntry]> = (0..4).map(clip).collect();
        let shape = ClipShape { frames: 16, size: 16 };
        let load = |augment| Loader::start(entries.clone(), vec![vec![0, 1, 2, 3]], shape, augment, 2, 1).next().unwrap();
        let training = load(Some(Augment { policy: Policy::Spec, seed: 7, epoch: 3 }));
        let evaluation = load(None);
        assert!(training.skipped.is_empty() && evaluation.skipped.is_empty());

        let frame_len = 3 * shape.size * shape.size;
        let plain = &evaluation.values[..frame_len]; // resized only
        let largest_difference = |a: &[f32], b: &[f32]| a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert_eq!(training.values.len(), 4 * shape.frames * frame_len);
        for (clip, values) in training.values.chunks_exact(shape.frames * frame_len).enumerate() {
            let first = &values[..frame_len];
            for (index, frame) in values.chunks_exact(frame_len).enumerate() {
                let difference = largest_difference(frame, first);
                assert!(difference == 0.0, "clip {clip}: frame {index} differs from frame 0 by up to {difference}");
            }
            // Not vacuous: the augmentation changed the frame.
            let change = largest_difference(first, plain);
            assert!(change > 0.1, "clip {clip}: the augmented frame is the plain one within {change}");
        }
    }
}
