//! Detections remembered by frame. Overlapping windows share frames: a video's windows of
//! 2 s every 1 s share half their frames, and the demo page's camera windows (the latest 16
//! frames, classified whenever a new one arrives) all but one. A frame's detection does not
//! depend on its window, so each frame is detected once.

use std::collections::VecDeque;

use image::RgbImage;

use super::FaceBox;

/// Frames a [`DetectionMemory`] remembers, the most recent: four windows of 16.
pub const REMEMBERED_FRAMES: usize = 64;

/// The best detection (or none) of the last [`REMEMBERED_FRAMES`] frames, by their pixels.
#[derive(Default)]
pub struct DetectionMemory {
    entries: VecDeque<(Fingerprint, Option<FaceBox>)>,
    recalled: usize,
}

impl DetectionMemory {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many detections were recalled rather than run, in all.
    pub fn recalled(&self) -> usize {
        self.recalled
    }

    /// The remembered detection of a frame with this fingerprint.
    pub(super) fn recall(&mut self, frame: Fingerprint) -> Option<Option<FaceBox>> {
        let face = self.entries.iter().find(|(seen, _)| *seen == frame).map(|&(_, face)| face);
        self.recalled += face.is_some() as usize;
        face
    }

    pub(super) fn remember(&mut self, frame: Fingerprint, face: Option<FaceBox>) {
        if self.entries.iter().any(|(seen, _)| *seen == frame) {
            return;
        }
        if self.entries.len() == REMEMBERED_FRAMES {
            self.entries.pop_front();
        }
        self.entries.push_back((frame, face));
    }
}

/// A frame's size and a 128-bit hash of its pixels: two multiply-rotate hashes of 8 bytes at
/// a time with different constants, about as fast as the frame can be read from memory (a
/// cryptographic hash would cost a good part of a detection).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Fingerprint(u32, u32, [u64; 2]);

impl Fingerprint {
    pub(super) fn of(frame: &RgbImage) -> Self {
        const K: [u64; 2] = [0x9e37_79b9_7f4a_7c15, 0xc2b2_ae3d_27d4_eb4f];
        let bytes = frame.as_raw();
        let words = bytes.chunks_exact(8);
        let mut tail = [0u8; 8];
        tail[..words.remainder().len()].copy_from_slice(words.remainder());
        let mix = |h: [u64; 2], word: u64| [(h[0].rotate_left(5) ^ word).wrapping_mul(K[0]), (h[1].rotate_left(29) ^ word).wrapping_mul(K[1])];
        let hash = words.fold([bytes.len() as u64, !(bytes.len() as u64)], |h, w| mix(h, u64::from_le_bytes(w.try_into().expect("8 bytes"))));
        Self(frame.width(), frame.height(), mix(hash, u64::from_le_bytes(tail)))
    }
}
