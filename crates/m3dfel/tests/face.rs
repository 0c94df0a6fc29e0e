//! The face detector against an independent numpy implementation written from face-api.js's
//! sources (`tests/parity/face_detector.py`): raw network output and the boxes left after the
//! score threshold and non-maximum suppression, for wide and tall pictures (padding on either
//! side) at two input sizes: a drawn face at a low threshold, and a real face (a photograph,
//! twice in one picture, at several sizes) at the production threshold, where NMS drops boxes.
#![cfg(not(target_arch = "wasm32"))]

use image::RgbImage;
use m3dfel::face::detector::TinyFaceDetector;
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    image: String,
    width: u32,
    height: u32,
    input_size: usize,
    score_threshold: f32,
    raw: Vec<f32>,
    /// (score, x, y, width, height) after the threshold and NMS.
    detections: Vec<[f32; 5]>,
}

#[test]
fn the_detector_equals_the_numpy_reference() {
    let dir = m3dfel::testing::parity_fixtures().join("face");
    let detector = TinyFaceDetector::new();
    let (mut cases, mut production_faces, mut two_faces) = (0, 0, false);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let case: Case = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let pixels = std::fs::read(dir.join(&case.image)).unwrap();
        let image = RgbImage::from_raw(case.width, case.height, pixels).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().to_string();

        let raw = detector.raw_output(&image, case.input_size);
        assert_eq!(raw.len(), case.raw.len(), "{name}");
        let error = raw.iter().zip(&case.raw).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(error < 1e-3, "{name}: raw output differs by {error}");

        let faces = detector.detect(&image, case.input_size, case.score_threshold);
        assert_eq!(faces.len(), case.detections.len(), "{name}: {faces:?}");
        for (face, [score, x, y, w, h]) in faces.iter().zip(&case.detections) {
            assert!((face.score - score).abs() < 1e-3, "{name}: score {} vs {score}", face.score);
            for (ours, theirs) in [(face.x, x), (face.y, y), (face.width, w), (face.height, h)] {
                assert!((ours - theirs).abs() < 0.5, "{name}: box {face:?} vs {:?}", [x, y, w, h]);
            }
        }
        if case.score_threshold == m3dfel::face::MIN_SCORE {
            production_faces += faces.len();
            two_faces |= faces.len() == 2;
        }
        cases += 1;
    }
    assert_eq!(cases, 14, "fixtures in {}", dir.display());
    assert!(production_faces >= 6 && two_faces, "the real faces were not found at the production threshold");
}
