//! Videos as timelines: the windows a video is cut into and when each window's frames are
//! taken. The browser package (`pkg/m3dfel.js`, `windowSpans`) follows the same rules, so
//! the page and `m3dfel predict --video` classify the same moments.

use serde::Serialize;

use crate::predict::{ClipResult, InstanceResult};

/// The most windows one video is cut into (55 hours at a 1-second stride): every window's
/// frame times and result are held until the end.
pub const MAX_WINDOWS: usize = 200_000;

/// `[start, end]` spans (seconds) of the windows covering `[0, duration]`: windows of
/// `window` seconds every `stride` seconds, plus one ending at the end of the video when
/// the last regular one stops short of it; a video shorter than a window is one window.
/// More than [`MAX_WINDOWS`] is an error saying how to cut the video (`window` and
/// `stride` are positive).
pub fn window_spans(duration: f64, window: f64, stride: f64) -> Result<Vec<(f64, f64)>, String> {
    if duration <= 0.0 {
        return Ok(vec![(0.0, 0.0)]);
    }
    if duration <= window {
        return Ok(vec![(0.0, duration)]);
    }
    let count = ((duration - window) / stride).floor() + 2.0;
    if !(count <= MAX_WINDOWS as f64) {
        return Err(format!(
            "{duration} s cut into windows of {window} s every {stride} s would make {count:.0} windows, more than \
             the {MAX_WINDOWS} one run holds; use a longer --stride or cut the video (ffmpeg -ss START -t SECONDS -i IN OUT)"
        ));
    }
    let mut spans = Vec::with_capacity(count as usize);
    let mut start = 0.0;
    while start + window <= duration + 1e-9 {
        spans.push((start, start + window));
        start += stride;
    }
    if spans.last().is_some_and(|&(_, end)| end < duration - 1e-9) {
        spans.push((duration - window, duration));
    }
    Ok(spans)
}

/// When each of a window's `count` frames is taken: `start + (end − start) · i / count`.
pub fn frame_times(start: f64, end: f64, count: usize) -> Vec<f64> {
    (0..count).map(|i| start + (end - start) * i as f64 / count as f64).collect()
}

/// An instance placed in time.
#[derive(Debug, Clone, Serialize)]
pub struct TimedInstance {
    #[serde(flatten)]
    pub instance: InstanceResult,
    pub start: f64,
    pub end: f64,
}

/// One window of a video: its span, its frames' times and its clip result, with the same
/// field names as the browser package's `classifyVideo` windows.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowResult {
    pub index: usize,
    pub start: f64,
    pub end: f64,
    pub frame_times: Vec<f64>,
    pub logits: Vec<f32>,
    pub probabilities: Vec<f32>,
    pub prediction: String,
    pub instances: Vec<TimedInstance>,
}

impl WindowResult {
    /// A clip result placed in time: instance i spans from its first frame's time to the
    /// next instance's first frame (the last one to the window's end).
    pub fn new(index: usize, (start, end): (f64, f64), frame_times: Vec<f64>, clip: ClipResult) -> Self {
        let instances = clip
            .instances
            .into_iter()
            .map(|instance| {
                let [first, last] = instance.frames;
                let end = frame_times.get(last + 1).copied().unwrap_or(end);
                TimedInstance { start: frame_times[first], end, instance }
            })
            .collect();
        Self {
            index,
            start,
            end,
            frame_times,
            logits: clip.logits,
            probabilities: clip.probabilities,
            prediction: clip.prediction,
            instances,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_cover_the_video_and_the_last_one_ends_with_it() {
        let round = |spans: Vec<(f64, f64)>| -> Vec<(f64, f64)> {
            spans.into_iter().map(|(a, b)| ((a * 10.0).round() / 10.0, (b * 10.0).round() / 10.0)).collect()
        };
        assert_eq!(round(window_spans(4.8, 2.0, 1.0).unwrap()), vec![(0.0, 2.0), (1.0, 3.0), (2.0, 4.0), (2.8, 4.8)]);
        assert_eq!(window_spans(4.0, 2.0, 1.0).unwrap(), vec![(0.0, 2.0), (1.0, 3.0), (2.0, 4.0)]);
        assert_eq!(window_spans(1.5, 2.0, 1.0).unwrap(), vec![(0.0, 1.5)]);
        assert_eq!(frame_times(1.0, 3.0, 4), vec![1.0, 1.5, 2.0, 2.5]);
    }

    #[test]
    fn a_timeline_too_long_to_hold_is_refused_before_it_is_made() {
        // Ten hours at the default stride are 36,000 windows.
        assert_eq!(window_spans(36_000.0, 2.0, 1.0).unwrap().len(), 35_999);
        let error = window_spans(1e12, 2.0, 1.0).unwrap_err();
        assert!(error.contains("--stride") && error.contains("200000"), "{error}");
        // A stride too small to move the start on would never end.
        assert!(window_spans(10.0, 2.0, 1e-300).is_err());
    }
}
