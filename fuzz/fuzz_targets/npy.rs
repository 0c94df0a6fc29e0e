//! `.npy` tensors (`m3dfel predict --tensor`): the header's dictionary, the shape and the
//! data, then the check of the values every clip given as numbers gets.
#![no_main]

use libfuzzer_sys::fuzz_target;
use m3dfel::npy::NpyArray;
use m3dfel_fuzz::{MIB, budget, within};

fuzz_target!(|bytes: &[u8]| {
    // f32 values read from f32 (×1) or f64 (×½) data.
    within(budget(bytes.len(), 2, MIB), || {
        if let Ok(array) = NpyArray::parse(bytes) {
            let _ = m3dfel::input::check_values(&array.values);
        }
    });
});
