//! Weight files from strangers: every layout `WeightFile::read` tells apart (safetensors, the
//! authors' and torchvision's `.pth` through burn-store's pickle and zip readers, Burn's
//! burnpack), the browser package's safetensors-only path, then what loading does with what
//! was read: the configuration (recorded, or inferred from the shapes), the strict load into
//! a model and the DLIAM-only load the package uses.
#![no_main]

use burn::backend::Flex;
use libfuzzer_sys::fuzz_target;
use m3dfel::M3dfelConfig;
use m3dfel::weights::WeightFile;
use m3dfel_fuzz::{MIB, budget, scratch_file, within};

fuzz_target!(|bytes: &[u8]| {
    // Tensors widened from f16 to f32 (×2) and held twice while a model takes them.
    within(budget(bytes.len(), 16, 16 * MIB), || {
        let path = scratch_file("weights", bytes);
        if let Ok(file) = WeightFile::read(&path) {
            load(&file);
        }
        if let Ok(file) = WeightFile::from_safetensors_bytes("weights.safetensors", bytes) {
            load(&file);
        }
    });
});

fn load(file: &WeightFile) {
    // What a PyTorch file does not record comes from the preset the user names; a
    // backbone-only file gets that preset's DLIAM, freshly drawn: the tiny one here.
    let fallback = M3dfelConfig::preset("tiny").expect("a preset");
    let device = Default::default();
    let _ = file.load::<Flex>(&fallback, &device);
    let _ = file.load_head::<Flex>(&fallback, &device);
}
