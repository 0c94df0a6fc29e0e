//! From a folder of frame images to a clip, against the authors' evaluation preprocessing done
//! by PIL and torchvision (`tests/parity/preprocessing.py`): which files are sampled, the
//! bilinear resize and the order of the RGB planes, on the same JPEG and PNG files. The
//! browser package and `m3dfel predict --frames` / `--video` are compared with this path by
//! their own tests, so this is where all of them meet an implementation we did not write.
#![cfg(not(target_arch = "wasm32"))]

use m3dfel::frames::{clip_values, sample_folder};
use m3dfel::npy::NpyArray;

#[test]
fn frame_folders_become_the_clips_pil_and_torchvision_make() {
    let dir = m3dfel::testing::parity_fixtures().join("preprocessing");
    // (case, largest and mean difference allowed, in levels of 1/255; measured: 3 and 0.26
    // for the JPEGs, 1 and 0.16 for the PNGs)
    for (case, largest_allowed, mean_allowed) in [("jpeg-wide", 4.5, 0.4), ("png-tall", 1.5, 0.25)] {
        let reference = NpyArray::read(dir.join(format!("{case}.npy"))).unwrap();
        assert_eq!(reference.shape, [16, 3, 112, 112], "{case}");
        let sampled = sample_folder(&dir.join(case), 16).unwrap();
        let ours = clip_values(&sampled.images, 112); // [16, 3, 112, 112]
        assert_eq!(ours.len(), reference.values.len(), "{case}");

        // PIL rounds to bytes between its two resize passes and decodes JPEG with libjpeg,
        // the image crate with its own decoder: a value may differ by a level or a few, the
        // average must not move.
        let (mut largest, mut total) = (0f32, 0f64);
        for (a, b) in ours.iter().zip(&reference.values) {
            largest = largest.max((a - b).abs());
            total += f64::from((a - b).abs());
        }
        let mean = total / ours.len() as f64;
        println!("{case}: largest difference {:.2} levels, mean {:.3} levels", largest * 255.0, mean * 255.0);
        assert!(largest * 255.0 <= largest_allowed, "{case}: a value differs from PIL's by {:.1} levels", largest * 255.0);
        assert!(mean * 255.0 <= mean_allowed, "{case}: values differ from PIL's by {:.2} levels on average", mean * 255.0);
    }
}
