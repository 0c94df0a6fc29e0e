//! A video as FFmpeg describes it: the facts `ffprobe -of json` reports about its first
//! video stream (picture size, frame rate, duration), checked against what a timeline can
//! be made of, and which frame is on screen at a given time. Running FFmpeg is the
//! command-line tool's part; reading its answer is here, where it can be tested (and
//! fuzzed) without FFmpeg.

use std::path::{Path, PathBuf};

/// What `ffprobe` says about a video's first video stream.
#[derive(Debug, Clone)]
pub struct VideoInfo {
    pub path: PathBuf,
    pub width: u32,
    pub height: u32,
    /// Frames per second (the stream's average rate).
    pub fps: f64,
    /// Seconds.
    pub duration: f64,
    pub codec: String,
}

/// The longest picture side accepted: 16K (FFmpeg decodes larger pictures only with
/// special builds; a larger size in a header is damage, and one frame would need gigabytes).
pub const MAX_SIDE: u32 = 16_384;

/// The highest frame rate accepted (high-speed cameras record up to about 1,000).
pub const MAX_FPS: f64 = 10_000.0;

/// The ffprobe command whose answer [`VideoInfo::from_ffprobe`] reads (after it, the file).
pub const FFPROBE_ARGS: [&str; 8] = [
    "-v",
    "error",
    "-select_streams",
    "v:0",
    "-show_entries",
    "stream=width,height,avg_frame_rate,r_frame_rate,codec_name,duration:format=duration",
    "-of",
    "json",
];

impl VideoInfo {
    /// Reads ffprobe's JSON answer for the video at `path`. The error says what is wrong
    /// with the video (no video stream, no size, no rate or duration, a size or rate no
    /// real video has), without the path: the caller names the file.
    pub fn from_ffprobe(path: &Path, answer: &[u8]) -> Result<Self, String> {
        let json: serde_json::Value =
            serde_json::from_slice(answer).map_err(|e| format!("ffprobe's answer is not JSON ({e})"))?;
        let Some(stream) = json["streams"].get(0) else {
            return Err("the file has no video stream".into());
        };
        let rate = |key: &str| -> Option<f64> {
            let (num, den) = stream[key].as_str()?.split_once('/')?;
            let (num, den): (f64, f64) = (num.parse().ok()?, den.parse().ok()?);
            let rate = num / den;
            (num > 0.0 && den > 0.0 && rate.is_finite()).then_some(rate)
        };
        let seconds = |value: &serde_json::Value| {
            value.as_str().and_then(|s| s.parse::<f64>().ok()).filter(|d| *d > 0.0 && d.is_finite())
        };
        let fps = rate("avg_frame_rate").or_else(|| rate("r_frame_rate"));
        let duration = seconds(&stream["duration"]).or_else(|| seconds(&json["format"]["duration"]));
        let (Some(width), Some(height)) = (stream["width"].as_u64(), stream["height"].as_u64()) else {
            return Err("the video stream has no picture size".into());
        };
        if width == 0 || height == 0 || width > MAX_SIDE as u64 || height > MAX_SIDE as u64 {
            return Err(format!(
                "the video states a picture of {width}×{height} pixels; m3dfel reads pictures of 1 to {MAX_SIDE} pixels a side"
            ));
        }
        let (Some(fps), Some(duration)) = (fps, duration) else {
            return Err("the video states no frame rate or duration; re-encode it (ffmpeg -i IN OUT.mp4)".into());
        };
        if fps > MAX_FPS {
            return Err(format!("the video states {fps} frames per second, more than any camera records ({MAX_FPS})"));
        }
        Ok(Self {
            path: path.to_path_buf(),
            width: width as u32,
            height: height as u32,
            fps,
            duration,
            codec: stream["codec_name"].as_str().unwrap_or("unknown").to_string(),
        })
    }

    /// Index of the frame on screen at `time` (the last one that started at or before it).
    pub fn frame_at(&self, time: f64) -> usize {
        (time * self.fps + 1e-6).floor().max(0.0) as usize
    }

    /// Frames the video has, from its duration and rate.
    pub fn frame_count(&self) -> usize {
        (self.duration * self.fps).round().max(1.0) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(answer: &str) -> Result<VideoInfo, String> {
        VideoInfo::from_ffprobe(Path::new("clip.mp4"), answer.as_bytes())
    }

    #[test]
    fn an_answer_gives_size_rate_and_duration() {
        let info = read(
            r#"{"streams":[{"codec_name":"h264","width":7680,"height":4320,"r_frame_rate":"30/1",
                "avg_frame_rate":"30000/1001","duration":"36000.5"}],"format":{"duration":"36001"}}"#,
        )
        .unwrap();
        assert_eq!((info.width, info.height, info.codec.as_str()), (7680, 4320, "h264"));
        assert!((info.fps - 29.97).abs() < 1e-3 && info.duration == 36000.5);
        // The stream states no duration: the container's is used.
        let info = read(r#"{"streams":[{"width":64,"height":48,"avg_frame_rate":"0/0","r_frame_rate":"10/1"}],
            "format":{"duration":"4.8"}}"#)
        .unwrap();
        assert_eq!((info.fps, info.duration, info.frame_count()), (10.0, 4.8, 48));
    }

    #[test]
    fn impossible_answers_are_refused_with_the_reason() {
        let stream = |fields: &str| format!(r#"{{"streams":[{{{fields}}}],"format":{{"duration":"10"}}}}"#);
        for (answer, reason) in [
            ("[1, 2]".to_string(), "no video stream"),
            ("not json".to_string(), "not JSON"),
            (r#"{"streams":[]}"#.to_string(), "no video stream"),
            (stream(r#""avg_frame_rate":"25/1""#), "no picture size"),
            (stream(r#""width":100000,"height":480,"avg_frame_rate":"25/1""#), "100000×480"),
            (stream(r#""width":0,"height":480,"avg_frame_rate":"25/1""#), "0×480"),
            (stream(r#""width":640,"height":480,"avg_frame_rate":"1/0""#), "no frame rate"),
            (stream(r#""width":640,"height":480,"avg_frame_rate":"1e308/1e-308""#), "no frame rate"),
            (stream(r#""width":640,"height":480,"avg_frame_rate":"90000/1""#), "90000 frames per second"),
            (r#"{"streams":[{"width":640,"height":480,"avg_frame_rate":"25/1","duration":"inf"}]}"#.into(), "no frame rate or duration"),
        ] {
            let error = read(&answer).unwrap_err();
            assert!(error.contains(reason), "{answer}: {error}");
        }
    }
}
