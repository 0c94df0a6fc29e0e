//! Faces before the model: the model was trained on face crops, webcams and phone videos
//! are not. One detector ([`detector::TinyFaceDetector`]), one smoothing rule
//! ([`track`]) and one crop rule ([`Crop::around`]) serve the command-line tool and the
//! browser package, so both cut the same squares out of the same pixels.

pub mod detector;
mod memory;

use image::RgbImage;
use image::imageops;
use rayon::prelude::*;
use serde::Serialize;

use detector::TinyFaceDetector;
use memory::Fingerprint;
pub use memory::{DetectionMemory, REMEMBERED_FRAMES};

/// The detector's input side (a multiple of 32): faces down to about 1/10 of the frame.
pub const DETECTOR_INPUT: usize = 320;
/// Detections scoring at most this are not faces.
pub const MIN_SCORE: f32 = 0.5;
/// Frames are first brought down to at most this many pixels on their longer side
/// ([`limit_size`]): plenty for a face crop of the model's 112 pixels, and it bounds the
/// memory a long high-definition video needs.
pub const MAX_SIDE: u32 = 640;

/// A frame scaled down (bilinear) so that its longer side is at most [`MAX_SIDE`].
pub fn limit_size(frame: RgbImage) -> RgbImage {
    let (width, height) = frame.dimensions();
    let longer = width.max(height);
    if longer <= MAX_SIDE {
        return frame;
    }
    let scale = |side: u32| ((side as u64 * MAX_SIDE as u64 + longer as u64 / 2) / longer as u64).max(1) as u32;
    imageops::resize(&frame, scale(width), scale(height), imageops::FilterType::Triangle)
}

/// A detected face in image pixels (it may reach past the image's edges).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FaceBox {
    pub x: f32,
    pub y: f32,
    pub width: f32,
    pub height: f32,
    /// Detector confidence in (0, 1).
    pub score: f32,
}

impl FaceBox {
    /// Intersection over union with another box.
    pub fn iou(&self, other: &FaceBox) -> f32 {
        let w = (self.x + self.width).min(other.x + other.width) - self.x.max(other.x);
        let h = (self.y + self.height).min(other.y + other.height) - self.y.max(other.y);
        let inter = w.max(0.0) * h.max(0.0);
        inter / (self.width * self.height + other.width * other.height - inter)
    }
}

/// A square region of a frame, inside the frame, in whole pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Crop {
    pub x: u32,
    pub y: u32,
    pub size: u32,
}

/// How much larger than the face box the crop's side is: the datasets' crops include the
/// hairline and the chin.
pub const CROP_MARGIN: f32 = 1.25;

impl Crop {
    /// The square of side `CROP_MARGIN × max(width, height)` centred on a face of centre
    /// (cx, cy), moved inside the frame (and shrunk to fit it when larger).
    pub fn around(cx: f32, cy: f32, side: f32, width: u32, height: u32) -> Crop {
        let size = side.round().clamp(1.0, width.min(height) as f32) as u32;
        let place = |centre: f32, extent: u32| -> u32 {
            (centre - size as f32 / 2.0).round().clamp(0.0, (extent - size) as f32) as u32
        };
        Crop { x: place(cx, width), y: place(cy, height), size }
    }

    /// The cropped pixels.
    pub fn apply(&self, image: &RgbImage) -> RgbImage {
        imageops::crop_imm(image, self.x, self.y, self.size, self.size).to_image()
    }
}

/// Weight of a new detection against the track so far (exponential smoothing of the
/// centre and size; 1 would follow every detection, jitter included).
pub const SMOOTHING: f32 = 0.5;

/// Crops for a sequence of frames from their best detections (`None`: no face found in
/// that frame). The face's centre and size are smoothed over time; frames without a
/// detection keep the track's last crop, frames before the first detection take the
/// first one. `None` when no frame has a face.
pub fn track(detections: &[Option<FaceBox>], width: u32, height: u32) -> Option<Vec<Crop>> {
    let first = detections.iter().flatten().next()?;
    let centre = |b: &FaceBox| (b.x + b.width / 2.0, b.y + b.height / 2.0, CROP_MARGIN * b.width.max(b.height));
    let mut state = centre(first);
    Some(
        detections
            .iter()
            .map(|detection| {
                if let Some(face) = detection {
                    let (cx, cy, side) = centre(face);
                    state = (
                        state.0 + SMOOTHING * (cx - state.0),
                        state.1 + SMOOTHING * (cy - state.1),
                        state.2 + SMOOTHING * (side - state.2),
                    );
                }
                Crop::around(state.0, state.1, state.2, width, height)
            })
            .collect(),
    )
}

/// A clip ready for the model, with where the face was.
#[derive(Debug, Clone)]
pub struct FaceClip {
    /// `[frames, 3, size, size]` in [0, 1].
    pub values: Vec<f32>,
    /// The best detection in each frame.
    pub faces: Vec<Option<FaceBox>>,
    /// The square each frame was cropped to.
    pub crops: Vec<Crop>,
    /// How many of the frames were run through the detector (the others' detections were
    /// remembered from earlier windows).
    pub detected: usize,
}

/// No frame of the clip has a face.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no face was found in any of the {0} frames")]
pub struct NoFace(pub usize);

/// Frames (all of one size) → the model's input: frames limited to [`MAX_SIDE`], faces
/// detected in every frame that `memory` does not remember (frames spread over Rayon's
/// threads), tracked ([`track`]), cropped ([`Crop`], in the limited frame's pixels) and
/// resized like every other clip ([`crate::frames::resize`]).
pub fn face_clip(
    frames: Vec<RgbImage>,
    size: usize,
    detector: &TinyFaceDetector,
    memory: &mut DetectionMemory,
) -> Result<FaceClip, NoFace> {
    let frames: Vec<RgbImage> = frames.into_par_iter().map(limit_size).collect();
    let fingerprints: Vec<Fingerprint> = frames.par_iter().map(Fingerprint::of).collect();
    let remembered: Vec<_> = fingerprints.iter().map(|&frame| memory.recall(frame)).collect();
    let detected = remembered.iter().filter(|face| face.is_none()).count();
    let faces: Vec<Option<FaceBox>> = frames
        .par_iter()
        .zip(&remembered)
        .map(|(frame, remembered)| remembered.unwrap_or_else(|| detector.detect(frame, DETECTOR_INPUT, MIN_SCORE).into_iter().next()))
        .collect();
    for (&frame, &face) in fingerprints.iter().zip(&faces) {
        memory.remember(frame, face);
    }
    let (width, height) = frames.first().map_or((1, 1), |f| f.dimensions());
    let crops = track(&faces, width, height).ok_or(NoFace(frames.len()))?;
    let mut values = Vec::with_capacity(frames.len() * 3 * size * size);
    for (frame, crop) in frames.iter().zip(&crops) {
        crate::frames::push_rgb(&crate::frames::resize(&crop.apply(frame), size), &mut values);
    }
    Ok(FaceClip { values, faces, crops, detected })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32, y: f32, size: f32) -> Option<FaceBox> {
        Some(FaceBox { x, y, width: size, height: size, score: 0.9 })
    }

    #[test]
    fn crops_stay_inside_the_frame() {
        assert_eq!(Crop::around(5.0, 5.0, 40.0, 100, 80), Crop { x: 0, y: 0, size: 40 });
        assert_eq!(Crop::around(99.0, 79.0, 40.0, 100, 80), Crop { x: 60, y: 40, size: 40 });
        assert_eq!(Crop::around(50.0, 40.0, 500.0, 100, 80), Crop { x: 10, y: 0, size: 80 });
    }

    #[test]
    fn tracks_smooth_jumps_fill_gaps_and_backfill() {
        let crops = track(&[None, face(40.0, 40.0, 20.0), None, face(60.0, 40.0, 20.0)], 200, 100).unwrap();
        assert_eq!(crops[0], crops[1], "frames before the first face take its crop");
        assert_eq!(crops[1], crops[2], "a frame without a face keeps the last crop");
        // Centre 50 → 70 is smoothed to 60; side 1.25 × 20 = 25.
        assert_eq!(crops[3], Crop::around(60.0, 50.0, 25.0, 200, 100));
        assert!(track(&[None, None], 10, 10).is_none());
    }

    /// Frames of a test pattern that differ by `offset` (no faces: every clip is `NoFace`,
    /// but each frame is still detected or recalled).
    fn frames(offsets: std::ops::Range<u32>) -> Vec<RgbImage> {
        offsets.map(|o| RgbImage::from_fn(64, 48, |x, y| image::Rgb([(x * 3 + o) as u8, (y * 5) as u8, (x + y) as u8]))).collect()
    }

    #[test]
    fn each_frame_is_detected_once_while_remembered() {
        let (detector, mut memory) = (TinyFaceDetector::new(), DetectionMemory::new());
        let mut window = |frames: Vec<RgbImage>| {
            assert_eq!(face_clip(frames, 16, &detector, &mut memory).map(|clip| clip.faces), Err(NoFace(16)));
            memory.recalled()
        };
        assert_eq!(window(frames(0..16)), 0);
        // The next window shares 8 frames with it, then the same window again.
        assert_eq!(window(frames(8..24)), 8);
        assert_eq!(window(frames(8..24)), 24);
        // One changed value makes a new frame.
        let mut changed = frames(8..24);
        changed[0].put_pixel(5, 5, image::Rgb([0, 0, 0]));
        assert_eq!(window(changed), 39);
        // Only the last REMEMBERED_FRAMES frames are remembered: 4 windows of 16 new ones.
        for first in [100, 116, 132, 148] {
            assert_eq!(window(frames(first..first + 16)), 39);
        }
        assert_eq!(window(frames(8..24)), 39);
    }

    #[test]
    fn iou_of_identical_disjoint_and_half_overlapping_boxes() {
        let a = face(0.0, 0.0, 10.0).unwrap();
        assert!((a.iou(&a) - 1.0).abs() < 1e-6);
        assert_eq!(a.iou(&face(20.0, 0.0, 10.0).unwrap()), 0.0);
        let half = FaceBox { x: 5.0, ..a };
        assert!((a.iou(&half) - 50.0 / 150.0).abs() < 1e-6);
    }
}
