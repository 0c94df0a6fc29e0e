//! A run's `state.json` as `trainer --resume` finds it: the newest checkpoint's state is
//! read and checked, then what resuming does with it before training: the model
//! configuration is validated and the training curves are drawn from the history.
#![no_main]

use libfuzzer_sys::fuzz_target;
use m3dfel_fuzz::{MIB, budget, scratch_dir, scratch_file, within};
use trainer::train::checkpoint;

fuzz_target!(|bytes: &[u8]| {
    let out = scratch_dir().join("run");
    let _ = std::fs::remove_dir_all(&out);
    scratch_file("run/checkpoints/epoch-0001/state.json", bytes);
    scratch_file("run/checkpoints/latest", b"epoch-0001");
    // The state's tree, then two charts of the history (a few MiB of pixels).
    within(budget(bytes.len(), 64, 32 * MIB), || {
        if let Ok(Some((_, state))) = checkpoint::newest_intact(&out) {
            if state.config.model.validate().is_ok() {
                let _ = trainer::report::curves_charts(&state.history, "fuzz", &out);
            }
        }
    });
});
