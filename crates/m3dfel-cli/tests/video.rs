//! `m3dfel predict --video` end to end on videos the test encodes with FFmpeg (H.264 mp4,
//! VP9 webm, MJPEG avi) from frames it draws.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("m3dfel-video-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn m3dfel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_m3dfel")).args(args).output().expect("m3dfel runs")
}

/// Random `tiny` weights, written once: the tests run in parallel and must not read the
/// file while another one rewrites it.
fn tiny_weights() -> PathBuf {
    use burn::backend::Flex;
    static WEIGHTS: OnceLock<PathBuf> = OnceLock::new();
    WEIGHTS
        .get_or_init(|| {
            let path = scratch("tiny.safetensors");
            let config = m3dfel::M3dfelConfig::preset("tiny").unwrap().with_frame_size(32);
            let model: m3dfel::M3dfel<Flex> = config.init(&Default::default());
            m3dfel::weights::save_safetensors(&model, &config, m3dfel::weights::Precision::F32, &path).unwrap();
            path
        })
        .clone()
}

/// `frames` frames of 96×72 at 10 fps, a moving pattern, encoded with `codec` into `name`.
fn encode(name: &str, frames: u32, codec: &[&str]) -> PathBuf {
    let dir = scratch(&format!("{name}-frames"));
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..frames {
        let frame = image::RgbImage::from_fn(96, 72, |x, y| {
            image::Rgb([((x + 3 * i) * 2) as u8, (y * 3 + i) as u8, ((x * y) / 20 + 5 * i) as u8])
        });
        frame.save(dir.join(format!("{i:04}.png"))).unwrap();
    }
    let video = scratch(name);
    m3dfel::testing::encode_video(&dir, 10, codec, &video);
    video
}

fn predict(weights: &PathBuf, video: &PathBuf, extra: &[&str]) -> Output {
    let mut args = vec!["predict", "--weights", weights.to_str().unwrap(), "--video", video.to_str().unwrap()];
    args.extend(extra);
    m3dfel(&args)
}

fn json(output: &Output) -> Value {
    assert!(output.status.success(), "m3dfel failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("stdout is JSON")
}

fn number(value: &Value) -> f64 {
    value.as_f64().unwrap()
}

#[test]
fn videos_of_three_codecs_become_timelines_covering_their_duration() {
    let weights = tiny_weights();
    let cases = [
        ("clip.mp4", vec!["-c:v", "libx264", "-pix_fmt", "yuv420p"]),
        ("clip.webm", vec!["-c:v", "libvpx-vp9", "-b:v", "200k"]),
        ("clip.avi", vec!["-c:v", "mjpeg", "-q:v", "3"]),
    ];
    for (name, codec) in cases {
        let video = encode(name, 48, &codec); // 4.8 s
        let csv = scratch(&format!("{name}.csv"));
        let out = json(&predict(&weights, &video, &["--no-face-crop", "--json", "--csv", csv.to_str().unwrap()]));
        let duration = number(&out["duration"]);
        assert!((duration - 4.8).abs() < 0.15, "{name}: duration {duration}");
        let windows = out["windows"].as_array().unwrap();
        assert_eq!(windows.len(), 4, "{name}: 0–2, 1–3, 2–4 and the last 2 s");
        assert_eq!(number(&windows[0]["start"]), 0.0);
        assert!((number(&windows[3]["end"]) - duration).abs() < 1e-9, "{name}: the last window ends with the video");
        for window in windows {
            let (start, end) = (number(&window["start"]), number(&window["end"]));
            assert!((end - start - 2.0).abs() < 1e-9);
            let p: f64 = window["probabilities"].as_array().unwrap().iter().map(number).sum();
            assert!((p - 1.0).abs() < 1e-5);
            assert_eq!(window["frameTimes"].as_array().unwrap().len(), 16);
            let instances = window["instances"].as_array().unwrap();
            assert_eq!(instances.len(), 4);
            assert_eq!(number(&instances[0]["start"]), start);
            assert_eq!(number(&instances[3]["end"]), end);
            for pair in instances.windows(2) {
                assert_eq!(number(&pair[0]["end"]), number(&pair[1]["start"]), "{name}: instances are contiguous");
            }
        }
        let table = std::fs::read_to_string(&csv).unwrap();
        assert_eq!(table.lines().count(), 1 + 4 * 5, "{name}: header, then a bag row and 4 instance rows per window");
        assert!(table.starts_with("window,kind,instance,start,end,prediction,gate,happy,"));
    }
}

#[test]
fn each_window_classifies_the_frames_on_screen_at_its_frame_times() {
    // A lossless video (FFV1, RGB): the frames FFmpeg decodes are the drawn ones, bit for bit.
    // Window k of 2 s samples 16 times k + 2i/16; the frame on screen at time t is frame
    // ⌊10·t⌋ of this 10 fps video. Those frames, handed over as a folder, must give the
    // window's numbers: a frame off by one (the pattern moves 2 levels and 3 pixels a frame)
    // or decoded colours out of place would not.
    let weights = tiny_weights();
    let video = encode("lossless.mkv", 48, &["-c:v", "ffv1", "-pix_fmt", "bgr0"]);
    let out = json(&predict(&weights, &video, &["--no-face-crop", "--json"]));
    let drawn = scratch("lossless.mkv-frames");
    for (k, window) in out["windows"].as_array().unwrap().iter().enumerate() {
        let start = number(&window["start"]);
        let times: Vec<f64> = window["frameTimes"].as_array().unwrap().iter().map(number).collect();
        let expected: Vec<f64> = (0..16).map(|i| start + 2.0 * i as f64 / 16.0).collect();
        assert!(times.iter().zip(&expected).all(|(a, b)| (a - b).abs() < 1e-9), "window {k}: frame times {times:?}");

        let folder = scratch(&format!("window-{k}-frames"));
        std::fs::create_dir_all(&folder).unwrap();
        for (i, t) in times.iter().enumerate() {
            let index = ((t * 10.0) + 1e-9).floor() as u32;
            std::fs::copy(drawn.join(format!("{index:04}.png")), folder.join(format!("{i:02}.png"))).unwrap();
        }
        let frames = json(&m3dfel(&["predict", "--weights", weights.to_str().unwrap(), "--frames", folder.to_str().unwrap(), "--json"]));
        let reference = frames["clips"][0]["probabilities"].as_array().unwrap();
        let ours = window["probabilities"].as_array().unwrap();
        let difference = ours.iter().zip(reference).map(|(a, b)| (number(a) - number(b)).abs()).fold(0.0, f64::max);
        // Measured: ≤ 7.5e-9 (the video's windows run as one batch); a frame off by one
        // gives 1.1e-6 and R and B swapped 4.5e-6 with these random weights.
        assert!(difference < 1e-7, "window {k}: the video's probabilities differ from its frames' by {difference:e}");
    }
}

#[test]
fn without_a_face_the_crop_fails_clearly_and_short_videos_are_padded() {
    let weights = tiny_weights();
    let video = encode("faceless.mp4", 10, &["-c:v", "libx264", "-pix_fmt", "yuv420p"]);
    let output = predict(&weights, &video, &["--json"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no face was found") && stderr.contains("--no-face-crop"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let output = predict(&weights, &video, &["--json", "--no-face-crop"]);
    assert!(String::from_utf8_lossy(&output.stderr).contains("only 10 frames"));
    assert_eq!(json(&output)["windows"].as_array().unwrap().len(), 1, "1 s of video is one window");
}

#[test]
fn corrupt_and_foreign_files_are_named_with_the_problem() {
    let weights = tiny_weights();
    let text = scratch("notes.mp4");
    std::fs::write(&text, "not a video\n".repeat(100)).unwrap();
    let mut truncated = std::fs::read(encode("whole.mp4", 20, &["-c:v", "libx264", "-pix_fmt", "yuv420p"])).unwrap();
    truncated.truncate(300);
    let cut = scratch("cut.mp4");
    std::fs::write(&cut, truncated).unwrap();
    for (file, problem) in [(text, "not a video"), (cut, "not a video"), (scratch("missing.mp4"), "no such file")] {
        let output = predict(&weights, &file, &["--no-face-crop"]);
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        let first = stderr.lines().next().unwrap_or_default();
        assert!(first.starts_with("error: ") && first.contains(file.to_str().unwrap()) && first.contains(problem), "{stderr}");
    }
}

/// The trainer's procedural face (200 px, frame `t % len` of one synthetic clip) pasted at
/// (150, 60) into 400×300 grey frames: 30 frames at 10 fps, H.264.
fn face_video() -> PathBuf {
    let clip = trainer::data::synthetic::SyntheticClip::new(7, 2, 3);
    let dir = scratch("face-frames");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..30 {
        let mut frame = image::RgbImage::from_pixel(400, 300, image::Rgb([90, 100, 110]));
        image::imageops::overlay(&mut frame, &clip.frame(i % clip.len, 200), 150, 60);
        frame.save(dir.join(format!("{i:04}.png"))).unwrap();
    }
    let video = scratch("face.mp4");
    m3dfel::testing::encode_video(&dir, 10, &["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "18"], &video);
    video
}

#[test]
fn the_face_is_found_where_it_is_in_every_window() {
    let weights = tiny_weights();
    let plot = scratch("timeline.png");
    let out = json(&predict(&weights, &face_video(), &["--json", "--plot", plot.to_str().unwrap()]));
    assert_eq!(out["faceCrop"], true);
    // The picture: every class's colour is drawn (curves and legend), on a white page.
    let picture = image::open(&plot).unwrap().to_rgb8();
    assert!(picture.width() == 1000 && picture.height() > 400);
    for rgb in [[230, 159, 0], [0, 114, 178], [128, 128, 128], [213, 94, 0], [86, 180, 233], [0, 158, 115], [204, 121, 167]] {
        let count = picture.pixels().filter(|p| p.0 == rgb).count();
        assert!(count > 150, "colour {rgb:?} covers {count} pixels");
    }
    let windows = out["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 2, "3 s: 0–2 and 1–3");
    for window in windows {
        let faces = window["faces"].as_array().unwrap();
        assert_eq!(faces.len(), 16);
        let found: Vec<&Value> = faces.iter().filter(|f| !f.is_null()).collect();
        assert!(found.len() >= 6, "a face in only {} of 16 frames", found.len());
        for face in found {
            let (x, y) = (number(&face["x"]) + number(&face["width"]) / 2.0, number(&face["y"]) + number(&face["height"]) / 2.0);
            assert!((150.0..350.0).contains(&x) && (60.0..260.0).contains(&y), "face centre ({x}, {y}) is outside the pasted face");
            assert!(number(&face["score"]) > 0.5);
        }
    }
}

/// FFmpeg's test pattern of `size` ("WxH") at `rate` fps for `seconds`, as fast H.264.
fn test_pattern(name: &str, size: &str, rate: u32, seconds: u32) -> PathBuf {
    let video = scratch(name);
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", &format!("testsrc=size={size}:rate={rate}:duration={seconds}")])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"])
        .arg(&video)
        .status()
        .expect("ffmpeg is installed (apt-get install ffmpeg)");
    assert!(status.success());
    video
}

/// Runs `m3dfel` with `args` (output discarded) and returns whether it succeeded and the
/// kernel's high-water mark of its resident memory in MB, read until it exits.
fn run_for_peak_memory(args: &[&str]) -> (bool, u64) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_m3dfel"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status_file = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    let status = loop {
        if let Ok(text) = std::fs::read_to_string(&status_file) {
            let hwm = text.lines().find_map(|line| line.strip_prefix("VmHWM:"));
            peak_kb = peak_kb.max(hwm.and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok()).unwrap_or(0));
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(peak_kb > 0, "the memory of the process was never read");
    (status.success(), peak_kb / 1024)
}

#[test]
fn a_long_video_is_classified_in_bounded_memory() {
    // 5 minutes of 640×480 at 10 fps. Holding every frame its 299 windows need (2,400 frames
    // of 0.9 MB) would take 2.2 GB; cut and classified while it is decoded, m3dfel's memory
    // stays near one window's frames and one batch (measured: 71 MB at its peak).
    let video = test_pattern("long.mp4", "640x480", 10, 300);
    let csv = scratch("long.csv");
    let weights = tiny_weights();
    let (ok, peak_mb) = run_for_peak_memory(&[
        "predict", "--weights", weights.to_str().unwrap(), "--video", video.to_str().unwrap(),
        "--no-face-crop", "--json", "--csv", csv.to_str().unwrap(),
    ]);
    assert!(ok);
    let rows = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(rows.lines().count(), 1 + 299 * 5, "a header, then 299 windows of a bag row and 4 instance rows");
    assert!(rows.lines().any(|row| row.starts_with("298,bag,,298.000,300.000,")), "the last window ends with the video");
    println!("peak resident memory: {peak_mb} MB");
    assert!(peak_mb < 400, "m3dfel held {peak_mb} MB for a 5-minute video");
}

#[test]
fn an_8k_video_is_classified_one_frame_at_a_time() {
    // 8K UHD (7680×4320): 100 MB a decoded frame. 3 seconds at 4 fps hold 12 frames, which
    // at once would take 1.2 GB; each is scaled down to at most 640 pixels a side as it
    // arrives (what the face detector sees), so about one full-size frame is held at a time.
    let video = test_pattern("8k.mp4", "7680x4320", 4, 3);
    let csv = scratch("8k.csv");
    let weights = tiny_weights();
    let (ok, peak_mb) = run_for_peak_memory(&[
        "predict", "--weights", weights.to_str().unwrap(), "--video", video.to_str().unwrap(),
        "--no-face-crop", "--csv", csv.to_str().unwrap(),
    ]);
    assert!(ok, "m3dfel failed on an 8K video");
    let rows = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(rows.lines().count(), 1 + 2 * 5, "a header, then 2 windows of a bag row and 4 instance rows");
    println!("peak resident memory: {peak_mb} MB");
    assert!(peak_mb < 600, "m3dfel held {peak_mb} MB for an 8K video of 12 frames");
}
