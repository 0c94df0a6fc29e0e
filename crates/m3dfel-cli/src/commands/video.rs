//! `m3dfel predict --video`: a video file → a timeline of windows, each with its clip
//! result and per-instance results in time, the face found and cropped in every window
//! (the same detector, tracking and crop rule as the browser package).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use anyhow::{Context, Result, bail};
use image::RgbImage;
use m3dfel::face::detector::TinyFaceDetector;
use m3dfel::face::{self, FaceBox};
use m3dfel::timeline::{WindowResult, frame_times, window_spans};
use m3dfel::weights::WeightFile;
use m3dfel::{CLASSES, M3dfelConfig};
use serde::Serialize;

use super::predict::{Classifier, Clips, PredictArgs};
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
    let spans = window_spans(info.duration, args.window, args.stride)
        .map_err(|reason| anyhow::anyhow!("{}: {reason}", path.display()))?;
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

    let detector = (!args.no_face_crop).then(TinyFaceDetector::new);
    let bar = indicatif::ProgressBar::new(info.frame_count() as u64).with_style(
        indicatif::ProgressStyle::with_template("decoding and classifying {bar:30} {pos}/{len} frames {elapsed_precise} (ETA {eta})")
            .expect("valid template"),
    );
    let mut timeline = Timeline {
        spans: &spans,
        times: &times,
        info: &info,
        detector: detector.as_ref(),
        memory: face::DetectionMemory::new(),
        size: config.frame_size,
        frames: BTreeMap::new(),
        next: 0,
        batch: Vec::new(),
        windows: Vec::new(),
    };
    let windows = crate::with_backend!(args.device, |B, device| {
        let classifier = Classifier::<B>::load(file, &device)?;
        let count = ffmpeg::decode(
            &info,
            &wanted,
            face::limit_size,
            |index, frame| timeline.take(index, frame, &classifier),
            |n| bar.set_position(n as u64),
        )?;
        bar.finish_and_clear();
        if count < frames {
            eprintln!("note: the video has only {count} frames; frames were repeated to make windows of {frames}");
        }
        timeline.finish(&classifier)
    })?;
    if windows.is_empty() {
        bail!(
            "{}: no face was found in any window; if the video is already cropped to the face, \
             add --no-face-crop",
            path.display()
        );
    }

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

/// Windows classified while the video is decoded: a window is cut, cropped and batched as
/// soon as its last frame is decoded, a batch is classified when full, and frames no later
/// window needs are dropped, so memory holds about one window's frames and one batch of
/// clips however long the video is.
struct Timeline<'a> {
    spans: &'a [(f64, f64)],
    /// The frame times of each window.
    times: &'a [Vec<f64>],
    info: &'a ffmpeg::VideoInfo,
    detector: Option<&'a TinyFaceDetector>,
    /// Overlapping windows share frames: each is detected once.
    memory: face::DetectionMemory,
    size: usize,
    /// Decoded frames that a window not yet cut may still need, by index.
    frames: BTreeMap<usize, RgbImage>,
    /// The next window to cut.
    next: usize,
    /// Windows cut but not yet classified: (window, clip values, faces).
    batch: Vec<(usize, Vec<f32>, Option<Vec<Option<FaceBox>>>)>,
    windows: Vec<VideoWindow>,
}

/// Windows classified at once.
const WINDOWS_PER_BATCH: usize = 8;

impl Timeline<'_> {
    /// Index of the frame on screen at `time` (or the last one decoded when the video ended early).
    fn frame_index(&self, time: f64) -> Option<usize> {
        self.frames.range(..=self.info.frame_at(time)).next_back().map(|(&index, _)| index)
    }

    fn take<B: m3dfel::M3dfelBackend>(&mut self, index: usize, frame: RgbImage, classifier: &Classifier<B>) -> Result<()> {
        self.frames.insert(index, frame);
        while self.next < self.spans.len() && self.info.frame_at(*self.times[self.next].last().expect("16 times")) <= index {
            self.cut(classifier)?;
        }
        // Drop frames before the first one the next window needs, keeping one to fall back on.
        if let Some(&first) = self.times.get(self.next).and_then(|t| t.first()) {
            if let Some(keep) = self.frame_index(first) {
                self.frames = self.frames.split_off(&keep);
            }
        }
        Ok(())
    }

    /// Cuts the next window from the decoded frames, then classifies the batch when full.
    fn cut<B: m3dfel::M3dfelBackend>(&mut self, classifier: &Classifier<B>) -> Result<()> {
        let index = self.next;
        self.next += 1;
        let images: Vec<RgbImage> = self.times[index]
            .iter()
            .map(|&t| self.frame_index(t).map(|i| self.frames[&i].clone()).expect("frame 0 is always wanted"))
            .collect();
        match self.detector {
            Some(detector) => match face::face_clip(images, self.size, detector, &mut self.memory) {
                Ok(clip) => self.batch.push((index, clip.values, Some(clip.faces))),
                Err(no_face) => {
                    let (start, end) = self.spans[index];
                    eprintln!("note: window {start:.2}–{end:.2} s left out: {no_face}");
                }
            },
            None => self.batch.push((index, m3dfel::frames::clip_values(&images, self.size), None)),
        }
        if self.batch.len() == WINDOWS_PER_BATCH {
            self.classify(classifier)?;
        }
        Ok(())
    }

    fn classify<B: m3dfel::M3dfelBackend>(&mut self, classifier: &Classifier<B>) -> Result<()> {
        let batch = std::mem::take(&mut self.batch);
        let values: Vec<f32> = batch.iter().flat_map(|(_, values, _)| values.iter().copied()).collect();
        let clips = Clips { values, count: batch.len(), frames: self.times[0].len(), size: [self.size, self.size] };
        for ((index, _, faces), clip) in batch.into_iter().zip(classifier.classify(&clips)?) {
            let result = WindowResult::new(index, self.spans[index], self.times[index].clone(), clip);
            self.windows.push(VideoWindow { result, faces });
        }
        Ok(())
    }

    /// Cuts the windows whose frames never came (a video shorter than its stated duration)
    /// from the last frames decoded, classifies what is left and returns the timeline.
    fn finish<B: m3dfel::M3dfelBackend>(mut self, classifier: &Classifier<B>) -> Result<Vec<VideoWindow>> {
        while self.next < self.spans.len() {
            self.cut(classifier)?;
        }
        if !self.batch.is_empty() {
            self.classify(classifier)?;
        }
        Ok(self.windows)
    }
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
