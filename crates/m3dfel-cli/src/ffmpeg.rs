//! Video files through FFmpeg (`ffprobe` for the stream's facts, `ffmpeg` decoding to raw
//! RGB on a pipe): every container and codec FFmpeg reads (H.264 mp4, VP9 webm, MJPEG avi,
//! …) without linking it.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use image::RgbImage;
pub use m3dfel::video::VideoInfo;
use m3dfel::video::FFPROBE_ARGS;

fn tool(name: &str) -> Command {
    let mut command = Command::new(name);
    command.stdin(Stdio::null());
    command
}

fn missing_tool(name: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "`{name}` was not found: reading videos needs FFmpeg (Debian/Ubuntu: apt-get install ffmpeg; \
         macOS: brew install ffmpeg)"
    )
}

/// The first line FFmpeg wrote to stderr, for error messages.
fn first_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    text.lines().find(|l| !l.trim().is_empty()).unwrap_or("no details").trim().to_string()
}

/// Reads the video's size, frame rate and duration.
pub fn probe(path: &Path) -> Result<VideoInfo> {
    if !path.is_file() {
        bail!("{}: no such file", path.display());
    }
    let output = tool("ffprobe").args(FFPROBE_ARGS).arg(path).output().map_err(|_| missing_tool("ffprobe"))?;
    if !output.status.success() {
        bail!("{}: not a video FFmpeg can read ({})", path.display(), first_line(&output.stderr));
    }
    VideoInfo::from_ffprobe(path, &output.stdout).map_err(|reason| anyhow::anyhow!("{}: {reason}", path.display()))
}

/// Decodes the video once, front to back, handing each frame whose index is in `wanted`
/// (passed through `keep`) to `take` as soon as it is decoded, so that a long video never
/// has to fit in memory; an error from `take` stops decoding. `progress` sees every decoded
/// frame's index. Returns the number of frames the video really had.
pub fn decode(
    info: &VideoInfo,
    wanted: &std::collections::BTreeSet<usize>,
    keep: impl Fn(RgbImage) -> RgbImage,
    mut take: impl FnMut(usize, RgbImage) -> Result<()>,
    mut progress: impl FnMut(usize),
) -> Result<usize> {
    let mut child = tool("ffmpeg")
        .args(["-v", "error", "-nostdin", "-i"])
        .arg(&info.path)
        .args(["-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|_| missing_tool("ffmpeg"))?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    // stderr is drained on its own thread so that FFmpeg never blocks on a full pipe.
    let errors = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text);
        text
    });
    let frame_len = 3 * info.width as usize * info.height as usize;
    let mut buffer = vec![0u8; frame_len];
    let mut count = 0;
    loop {
        match stdout.read_exact(&mut buffer) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e).context("reading decoded frames from ffmpeg"),
        }
        if wanted.contains(&count) {
            let frame = RgbImage::from_raw(info.width, info.height, buffer.clone()).expect("frame size");
            if let Err(error) = take(count, keep(frame)) {
                let _ = child.kill();
                let _ = child.wait();
                return Err(error);
            }
        }
        count += 1;
        progress(count);
    }
    let status = child.wait().context("waiting for ffmpeg")?;
    let stderr = errors.join().unwrap_or_default();
    if count == 0 {
        bail!("{}: no frame could be decoded ({})", info.path.display(), first_line(&stderr));
    }
    if !status.success() {
        eprintln!(
            "note: {}: decoding stopped early after {count} frames ({})",
            info.path.display(),
            first_line(&stderr)
        );
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    /// The colour of frame `i` of the test videos: its index, readable after lossy coding.
    fn colour(i: u32) -> [u8; 3] {
        [(20 + 4 * i) as u8, (230 - 3 * i) as u8, 60]
    }

    /// `frames` flat frames of 64×48 at 10 fps, each coloured by its index, coded by `codec`.
    fn indexed_video(name: &str, frames: u32, codec: &[&str]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("m3dfel-ffmpeg-tests-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..frames {
            RgbImage::from_pixel(64, 48, image::Rgb(colour(i))).save(dir.join(format!("{i:04}.png"))).unwrap();
        }
        let video = dir.join(name);
        m3dfel::testing::encode_video(&dir, 10, codec, &video);
        video
    }

    #[test]
    fn every_frame_is_decoded_once_in_order_with_its_colours() {
        for (name, codec) in [
            ("indexed.mp4", &["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "10"][..]),
            ("indexed.webm", &["-c:v", "libvpx-vp9", "-crf", "10", "-b:v", "0"][..]),
            ("indexed.avi", &["-c:v", "mjpeg", "-q:v", "2"][..]),
        ] {
            let info = probe(&indexed_video(name, 48, codec)).unwrap();
            assert_eq!((info.width, info.height, info.fps), (64, 48, 10.0), "{name}");
            assert!((info.duration - 4.8).abs() < 1e-6, "{name}: duration {}", info.duration);
            assert_eq!(info.frame_count(), 48, "{name}");
            // The frame on screen at 1.25 s is frame 12, at 1.3 s frame 13.
            assert_eq!((info.frame_at(1.25), info.frame_at(1.3)), (12, 13), "{name}");

            let wanted: std::collections::BTreeSet<usize> = [0, 1, 17, 30, 47].into();
            let (mut seen, mut frames) = (Vec::new(), std::collections::BTreeMap::new());
            let take = |index, frame| {
                frames.insert(index, frame);
                Ok(())
            };
            let count = decode(&info, &wanted, |frame| frame, take, |n| seen.push(n)).unwrap();
            assert_eq!(count, 48, "{name}");
            assert_eq!(seen, (1..=48).collect::<Vec<_>>(), "{name}: progress");
            assert_eq!(frames.keys().copied().collect::<Vec<_>>(), [0, 1, 17, 30, 47], "{name}");
            for (&index, frame) in &frames {
                assert_eq!(frame.dimensions(), (64, 48));
                let expected = colour(index as u32);
                for pixel in frame.pixels() {
                    for (got, want) in pixel.0.iter().zip(expected) {
                        assert!(got.abs_diff(want) <= 3, "{name}: frame {index} is {:?}, not {expected:?}", pixel.0);
                    }
                }
            }
        }
    }
}
