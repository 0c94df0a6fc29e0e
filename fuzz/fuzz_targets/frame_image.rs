//! Frame images of a clip folder (`m3dfel predict --frames`, the trainer's datasets): the
//! first byte picks the extension (JPEG, PNG, BMP, as the folder reader recognises them),
//! the rest is the file; it is decoded, resized and turned into model input as a frame is.
#![no_main]

use libfuzzer_sys::fuzz_target;
use m3dfel::frames;
use m3dfel_fuzz::{MIB, scratch_dir, scratch_file, within};

fuzz_target!(|input: &[u8]| {
    let Some((&pick, bytes)) = input.split_first() else { return };
    let extension = ["jpg", "png", "bmp"][pick as usize % 3];
    // A picture's size is not bounded by its file's (a 12 KB PNG can hold 10,000² pixels):
    // decoding is bounded by the reader's limits, one frame at a time.
    within(frames::MAX_DECODED_BYTES + 256 * MIB, || {
        let _ = std::fs::remove_dir_all(scratch_dir().join("clip"));
        scratch_file(&format!("clip/frame.{extension}"), bytes);
        if let Ok(frame) = frames::open_frame(&scratch_dir().join(format!("clip/frame.{extension}"))) {
            let _ = frames::clip_values(&[frame], 112);
        }
    });
});
