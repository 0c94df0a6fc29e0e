//! Helpers shared by the project's integration tests (not part of the public API).

use std::path::{Path, PathBuf};

/// Folder of the PyTorch parity fixtures written by `tests/parity/make_fixtures.py`:
/// `$M3DFEL_PARITY_DIR`, else `$CARGO_TARGET_DIR/parity`, else `target/parity` in the
/// workspace. Panics with instructions when the fixtures are not there.
pub fn parity_fixtures() -> PathBuf {
    let set = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    let root = set("M3DFEL_PARITY_DIR")
        .map(PathBuf::from)
        .or_else(|| set("CARGO_TARGET_DIR").map(|t| PathBuf::from(t).join("parity")))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/parity"));
    assert!(
        root.join("paper/clips.npy").exists(),
        "parity fixtures are missing in {}: run `python tests/parity/make_fixtures.py {}` \
         (scripts/test.sh does this) or set M3DFEL_PARITY_DIR",
        root.display(),
        root.display()
    );
    root
}

/// Encodes the frames `dir/0000.png`, `dir/0001.png`, … at `fps` frames per second into
/// `video` with FFmpeg, `codec` being FFmpeg's output arguments (e.g. `-c:v libx264`).
/// Panics when FFmpeg is missing or fails.
pub fn encode_video(dir: &Path, fps: u32, codec: &[&str], video: &Path) {
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-framerate", &fps.to_string(), "-i"])
        .arg(dir.join("%04d.png"))
        .args(codec)
        .arg(video)
        .status()
        .expect("ffmpeg is installed (apt-get install ffmpeg)");
    assert!(status.success(), "FFmpeg could not encode {}", video.display());
}
