//! From frame images on disk to a model-ready clip, with the spec's deterministic
//! evaluation sampling (no random offset) and test transform (plain bilinear resize).

use std::path::{Path, PathBuf};

use image::RgbImage;
use image::imageops::{self, FilterType};

/// Frame image extensions recognised in a clip folder.
const IMAGE_EXTENSIONS: [&str; 4] = ["jpg", "jpeg", "png", "bmp"];

/// The frames sampled from a folder of frame images, decoded.
#[derive(Debug, Clone)]
pub struct SampledFrames {
    pub images: Vec<RgbImage>,
    /// Number of frames the source had (fewer than sampled: frames were repeated).
    pub source_len: usize,
}

/// Why a clip could not be built; the message names the file or folder.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    #[error("{0}: cannot list the folder: {1}")]
    Folder(PathBuf, std::io::Error),
    #[error("{0}: no frame images (.jpg, .jpeg, .png, .bmp) in this folder")]
    Empty(PathBuf),
    #[error("{0}: cannot decode the image: {1}")]
    Image(PathBuf, String),
}

/// Evaluation sampling: frame i of `count` is source index ⌊n·i/count⌋. Clips shorter than
/// `count` frames repeat frames.
pub fn sample_indices(source_len: usize, count: usize) -> Vec<usize> {
    (0..count).map(|i| (source_len * i / count).min(source_len.saturating_sub(1))).collect()
}

/// Frame image paths of a folder, sorted by name.
pub fn list_frames(dir: &Path) -> Result<Vec<PathBuf>, ClipError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ClipError::Folder(dir.to_path_buf(), e))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.extension()
                .and_then(|ext| ext.to_str())
                .is_some_and(|ext| IMAGE_EXTENSIONS.contains(&ext.to_ascii_lowercase().as_str()))
        })
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(ClipError::Empty(dir.to_path_buf()));
    }
    Ok(paths)
}

/// Samples `count` frames from a folder of frame images (sorted by name) and decodes them.
pub fn sample_folder(dir: &Path, count: usize) -> Result<SampledFrames, ClipError> {
    let paths = list_frames(dir)?;
    let images = sample_indices(paths.len(), count)
        .into_iter()
        .map(|index| {
            let path = &paths[index];
            open_frame(path).map_err(|e| ClipError::Image(path.clone(), e))
        })
        .collect::<Result<_, _>>()?;
    Ok(SampledFrames { images, source_len: paths.len() })
}

/// The longest side a frame image may have: 8K pictures (8192 × 4320) are read; a larger
/// size in a header is taken for damage.
pub const MAX_SIDE: u32 = 8192;

/// The most memory one frame image may take while it is decoded: an 8K picture with alpha.
pub const MAX_DECODED_BYTES: usize = 4 * 8192 * 8192;

/// Decodes one frame image (format from the extension, as the folder reader lists them)
/// to RGB, within [`MAX_SIDE`] and [`MAX_DECODED_BYTES`]: a header claiming more is an
/// error naming the size, not an allocation of gigabytes. The error does not name the file.
pub fn open_frame(path: &Path) -> Result<RgbImage, String> {
    let mut reader = image::ImageReader::open(path).map_err(|e| e.to_string())?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODED_BYTES as u64);
    reader.limits(limits);
    reader.decode().map(|image| image.into_rgb8()).map_err(|e| e.to_string())
}

/// The model's input for whole frames: each resized to `size`×`size`, as
/// [frames, 3, size, size] values in [0, 1].
pub fn clip_values(images: &[RgbImage], size: usize) -> Vec<f32> {
    let mut values = Vec::with_capacity(images.len() * 3 * size * size);
    for image in images {
        push_rgb(&resize(image, size), &mut values);
    }
    values
}

/// The evaluation transform: a plain bilinear resize to `size`×`size` (no crop). Every
/// path that turns pictures into clips (frame folders, video frames, the browser's
/// `ImageData`) goes through it, so they give the same numbers for the same pixels.
pub fn resize(image: &RgbImage, size: usize) -> RgbImage {
    if image.dimensions() == (size as u32, size as u32) {
        return image.clone();
    }
    imageops::resize(image, size as u32, size as u32, FilterType::Triangle)
}

/// Appends an RGB image as 3 planes (R, G, B) of values in [0, 1].
pub fn push_rgb(image: &RgbImage, out: &mut Vec<f32>) {
    for channel in 0..3 {
        out.extend(image.pixels().map(|p| p.0[channel] as f32 / 255.0));
    }
}

/// RGBA pixels in memory (a browser's `ImageData`, a decoded video frame), row-major,
/// 4 bytes per pixel → an RGB image (alpha is ignored).
pub fn rgb_from_rgba(rgba: &[u8], width: u32, height: u32) -> Result<RgbImage, String> {
    let pixels = width as usize * height as usize;
    if width == 0 || height == 0 || rgba.len() != 4 * pixels {
        return Err(format!(
            "a {width}×{height} RGBA frame needs {} bytes, got {}",
            4 * pixels,
            rgba.len()
        ));
    }
    let rgb = rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    Ok(RgbImage::from_raw(width, height, rgb).expect("length checked above"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_spreads_over_long_clips_and_repeats_short_ones() {
        assert_eq!(sample_indices(32, 16), (0..16).map(|i| 2 * i).collect::<Vec<_>>());
        assert_eq!(sample_indices(16, 16), (0..16).collect::<Vec<_>>());
        assert_eq!(sample_indices(4, 8), vec![0, 0, 1, 1, 2, 2, 3, 3]);
    }

    #[test]
    fn a_corrupt_image_is_named_in_the_error() {
        let dir = std::env::temp_dir().join(format!("m3dfel-frames-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("0001.jpg"), b"not a jpeg").unwrap();
        let err = sample_folder(&dir, 16).unwrap_err().to_string();
        assert!(err.contains("0001.jpg") && err.contains("cannot decode"), "{err}");
        std::fs::remove_file(dir.join("0001.jpg")).unwrap();
        let err = sample_folder(&dir, 16).unwrap_err().to_string();
        assert!(err.contains("no frame images"), "{err}");
    }
}
