//! The face detector on the CPU (face-api.js's Tiny Face Detector at input 320, what
//! `m3dfel predict --video` and the browser package's `faceCrop` run on every frame): one
//! 640×480 frame on one thread; a window of 16 such frames (`face_clip`: detection,
//! tracking, cropping) on all threads; and a camera's windows as the demo page makes them,
//! the latest 16 frames whenever a new one arrives (each window shares 15 frames with the
//! last, whose detections `face_clip` remembers). The frames are a fixed test pattern, one
//! pixel changed per frame: the network's work does not depend on the pixels.
//! `scripts/bench.sh` compares the first figure with the browser package's
//! (`scripts/bench-wasm.mjs`, the same pattern).
//!
//! `cargo bench --workspace --bench face_detector [-- --json FILE]`

mod common;

use std::time::Duration;

use image::RgbImage;
use m3dfel::face::detector::TinyFaceDetector;
use m3dfel::face::{DETECTOR_INPUT, DetectionMemory, MIN_SCORE, face_clip};
use serde_json::json;

use common::{median, timings};

const FRAME_RUNS: usize = 15;
const WINDOW_RUNS: usize = 5;
const WINDOW_FRAMES: usize = 16;

/// The test pattern scripts/bench-wasm.mjs draws too.
fn pattern() -> RgbImage {
    RgbImage::from_fn(640, 480, |x, y| image::Rgb([(x * 7 % 255) as u8, (y * 3 % 255) as u8, ((x + y) % 255) as u8]))
}

/// `runs` timings of `work` after one untimed run, in seconds, and their median.
fn time(runs: usize, work: impl FnMut()) -> (Vec<f64>, f64) {
    let timed = timings(1, runs, work);
    (timed.iter().map(Duration::as_secs_f64).collect(), median(&timed).as_secs_f64())
}

fn main() {
    // As `m3dfel` does: the windows' frames are copied into freed memory, not new pages.
    m3dfel::cli_support::keep_freed_memory();
    let args: Vec<String> = std::env::args().collect();
    let json_path = args.iter().position(|a| a == "--json").map(|i| args.get(i + 1).expect("--json needs a file name").clone());
    let detector = TinyFaceDetector::new();
    let frame = pattern();

    let (frame_seconds, frame_median) = time(FRAME_RUNS, || {
        std::hint::black_box(detector.detect(&frame, DETECTOR_INPUT, MIN_SCORE));
    });
    println!("face detection, one 640×480 frame, 1 thread: median {:.2} ms of {FRAME_RUNS}", frame_median * 1e3);

    // Distinct frames: the pattern with one pixel changed.
    let frames: Vec<RgbImage> = (0..2 * WINDOW_FRAMES - 1)
        .map(|i| {
            let mut frame = frame.clone();
            frame.put_pixel(0, 0, image::Rgb([i as u8, 0, 0]));
            frame
        })
        .collect();
    // The pattern has no face: the window's error (no face found) is the expected result.
    let window = |frames: &[RgbImage], memory: &mut DetectionMemory| {
        let _ = std::hint::black_box(face_clip(frames.to_vec(), 112, &detector, memory));
    };
    let threads = rayon::current_num_threads();
    let (window_seconds, window_median) = time(WINDOW_RUNS, || window(&frames[..WINDOW_FRAMES], &mut DetectionMemory::new()));
    println!(
        "face crop of a window, {WINDOW_FRAMES} frames of 640×480, {threads} threads: median {:.1} ms of {WINDOW_RUNS} ({:.2} ms a frame)",
        window_median * 1e3,
        window_median * 1e3 / WINDOW_FRAMES as f64
    );
    let (camera_seconds, camera_median) = time(WINDOW_RUNS, || {
        let mut memory = DetectionMemory::new();
        for first in 0..WINDOW_FRAMES {
            window(&frames[first..first + WINDOW_FRAMES], &mut memory);
        }
    });
    let per_window = |seconds: f64| seconds / WINDOW_FRAMES as f64;
    println!(
        "face crop of a camera's windows (each the latest {WINDOW_FRAMES} frames, sliding by one), {threads} threads: median {:.1} ms a window over {WINDOW_FRAMES} windows",
        per_window(camera_median) * 1e3
    );

    if let Some(path) = json_path {
        let report = json!({
            "implementation": "m3dfel face detector (native)",
            "threads": threads,
            "measurements": [
                {"name": "face detection", "width": 640, "height": 480, "frames": 1, "threads": 1,
                 "seconds": frame_seconds, "median_seconds": frame_median},
                {"name": "face crop window", "width": 640, "height": 480, "frames": WINDOW_FRAMES, "threads": threads,
                 "seconds": window_seconds, "median_seconds": window_median},
                {"name": "face crop camera window", "width": 640, "height": 480, "frames": WINDOW_FRAMES, "threads": threads,
                 "seconds": camera_seconds.iter().map(|&s| per_window(s)).collect::<Vec<_>>(), "median_seconds": per_window(camera_median)},
            ],
        });
        std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap_or_else(|e| panic!("writing {path}: {e}"));
    }
}
