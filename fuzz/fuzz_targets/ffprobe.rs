//! What `ffprobe` answers about a video (`m3dfel predict --video`), read into the video's
//! size, rate and duration, then the timeline the command makes of it: windows of 2 s every
//! 1 s (the defaults) and the frame on screen at each of their 16 frame times.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use m3dfel::timeline::{MAX_WINDOWS, frame_times, window_spans};
use m3dfel::video::VideoInfo;
use m3dfel_fuzz::{MIB, budget, within};

fuzz_target!(|bytes: &[u8]| {
    // JSON values (serde_json's tree), then at most MAX_WINDOWS window spans.
    within(budget(bytes.len(), 64, MAX_WINDOWS * 16 + MIB), || {
        let Ok(info) = VideoInfo::from_ffprobe(Path::new("video.mp4"), bytes) else { return };
        let _ = info.frame_count();
        let Ok(spans) = window_spans(info.duration, 2.0, 1.0) else { return };
        for (start, end) in spans {
            for time in frame_times(start, end, 16) {
                let _ = info.frame_at(time);
            }
        }
    });
});
