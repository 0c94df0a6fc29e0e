//! `m3dfel predict --video`: a video file → a timeline of windows, each with its clip
//! result and per-instance results in time, the face found and cropped in every window
//! (the same detector, tracking and crop rule as the browser package).

use std::collections::BTreeSet;
use std::fmt::Write as _;

use anyhow::{Context, Result, bail};
use image::RgbImage;
use m3dfel::face::detector::TinyFaceDetector;
use m3dfel::face::{self, FaceBox};
use m3dfel::timeline::{WindowResult, frame_times, window_spans};
use m3dfel::weights::WeightFile;
use m3dfel::{CLASSES, M3dfelConfig};
use serde::Serialize;

use super::predict::{Clips, PredictArgs, classify};
use crate::ffmpeg;

/// One window of the timeline, with where the face was.
#[derive(Serialize)]
struct VideoWindow {
    #[serde(flatten)]
    result: WindowResult,
    /// The best face in each of the window's frames (null where none), in the pixels of
    /// the frame scaled to at most 640 pixels a side.
    #[serde(skip_serializing_if = "Option::is_none")]
    faces: Option<Vec<Option<FaceBox>>>,
}

pub fn run(args: &PredictArgs, file: &WeightFile, config: &M3dfelConfig) -> Result<()> {
    let path = args.video.as_ref().expect("--video is set");
    if !(args.window > 0.0 && args.stride > 0.0) {
        bail!("--window and --stride must be positive numbers of seconds");
    }
    if let Some(plot_path) = &args.plot {
        super::plot::check_path(plot_path)?;
    }
    let info = ffmpeg::probe(path)?;
    let frames = config.num_frames;
    let spans = window_spans(info.duration, args.window, args.stride);
    let times: Vec<Vec<f64>> = spans.iter().map(|&(start, end)| frame_times(start, end, frames)).collect();
    let wanted: BTreeSet<usize> = times.iter().flatten().map(|&t| info.frame_at(t)).collect();
    eprintln!(
        "{}: {}×{} {}, {:.2} s at {:.2} fps → {} windows of {} s",
        path.display(),
        info.width,
        info.height,
        info.codec,
        info.duration,
        info.fps,
        spans.len(),
        args.window
    );

    let bar = indicatif::ProgressBar::new(info.frame_count() as u64).with_style(
        indicatif::ProgressStyle::with_template("decoding {bar:30} {pos}/{len} frames {elapsed_precise} (ETA {eta})")
            .expect("valid template"),
    );
    let (decoded, count) = ffmpeg::decode(&info, &wanted, face::limit_size, |n| bar.set_position(n as u64))?;
    bar.finish_and_clear();
    if count < frames {
        eprintln!("note: the video has only {count} frames; frames were repeated to make windows of {frames}");
    }
    // The frame on screen at a time, or the last one decoded when the video ends early.
    let frame = |time: f64| -> &RgbImage {
        decoded.range(..=info.frame_at(time)).next_back().map(|(_, f)| f).expect("frame 0 is always wanted")
    };

    let detector = (!args.no_face_crop).then(TinyFaceDetector::new);
    // Overlapping windows share frames: each is detected once.
    let mut memory = face::DetectionMemory::new();
    let size = config.frame_size;
    let mut values = Vec::new();
    let mut kept = Vec::new();
    for (index, window_times) in times.iter().enumerate() {
        let images: Vec<RgbImage> = window_times.iter().map(|&t| frame(t).clone()).collect();
        match &detector {
            Some(detector) => match face::face_clip(images, size, detector, &mut memory) {
                Ok(clip) => {
                    values.extend(clip.values);
                    kept.push((index, Some(clip.faces)));
                }
                Err(no_face) => {
                    let (start, end) = spans[index];
                    eprintln!("note: window {start:.2}–{end:.2} s left out: {no_face}");
                }
            },
            None => {
                values.extend(m3dfel::frames::clip_values(&images, size));
                kept.push((index, None));
            }
        }
    }
    if kept.is_empty() {
        bail!(
            "{}: no face was found in any window; if the video is already cropped to the face, \
             add --no-face-crop",
            path.display()
        );
    }
    let clips = Clips { values, count: kept.len(), frames, size: [size, size] };
    eprintln!("classifying {} windows…", kept.len());
    let results = crate::with_backend!(args.device, |B, device| classify::<B>(file, &clips, &device))?;
    let windows: Vec<VideoWindow> = kept
        .into_iter()
        .zip(results)
        .map(|((index, faces), clip)| VideoWindow {
            result: WindowResult::new(index, spans[index], times[index].clone(), clip),
            faces,
        })
        .collect();

    if let Some(plot_path) = &args.plot {
        let results: Vec<&WindowResult> = windows.iter().map(|w| &w.result).collect();
        super::plot::write(&results, info.duration, plot_path)?;
    }
    if let Some(csv_path) = &args.csv {
        std::fs::write(csv_path, csv(&windows)).with_context(|| format!("writing {}", csv_path.display()))?;
    }
    if args.json {
        let output = serde_json::json!({
            "classes": CLASSES,
            "preset": config.preset,
            "video": path,
            "duration": info.duration,
            "fps": info.fps,
            "faceCrop": detector.is_some(),
            "windows": windows,
        });
        println!("{}", serde_json::to_string(&output)?);
    } else {
        print_timeline(&windows);
    }
    Ok(())
}

/// One row per window (`kind` = bag) and per instance, with times and probabilities.
fn csv(windows: &[VideoWindow]) -> String {
    let mut out = String::from("window,kind,instance,start,end,prediction,gate");
    for class in CLASSES {
        write!(out, ",{class}").unwrap();
    }
    out.push('\n');
    for window in windows {
        let w = &window.result;
        let row = |out: &mut String, kind: &str, instance: String, start: f64, end: f64, p: &[f32], gate: String| {
            let best = CLASSES[m3dfel::predict::argmax(p)];
            write!(out, "{},{kind},{instance},{start:.3},{end:.3},{best},{gate}", w.index).unwrap();
            for v in p {
                write!(out, ",{v:.6}").unwrap();
            }
            out.push('\n');
        };
        row(&mut out, "bag", String::new(), w.start, w.end, &w.probabilities, String::new());
        for i in &w.instances {
            let gate = format!("{:.6}", i.instance.gate);
            row(&mut out, "instance", i.instance.index.to_string(), i.start, i.end, &i.instance.probabilities, gate);
        }
    }
    out
}

fn print_timeline(windows: &[VideoWindow]) {
    for window in windows {
        let w = &window.result;
        let best = m3dfel::predict::argmax(&w.probabilities);
        let instances: Vec<String> = w
            .instances
            .iter()
            .map(|i| CLASSES[m3dfel::predict::argmax(&i.instance.probabilities)].to_string())
            .collect();
        println!(
            "{:>7.2}–{:.2} s  {:<9} {:>5.1} %   instances: {}",
            w.start,
            w.end,
            w.prediction,
            100.0 * w.probabilities[best],
            instances.join(" → ")
        );
    }
}
