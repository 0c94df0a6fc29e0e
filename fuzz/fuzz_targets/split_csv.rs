//! Dataset split files: the same text as DFEW's `set_1.csv`, FERV39K's `train_All.csv` and
//! `test_All.csv`, and the generic CSV dataset's `train.csv` and `test.csv`, indexed the
//! way `trainer --dataset dfew|ferv39k|csv` indexes them (rows naming clip folders that
//! exist are kept, the others skipped with a reason).
#![no_main]

use libfuzzer_sys::fuzz_target;
use m3dfel_fuzz::{budget, scratch_dir, scratch_file, within};
use trainer::data::splits::{DatasetKind, DatasetSpec};

fuzz_target!(|bytes: &[u8]| {
    let root = scratch_dir().join("dataset");
    // Clip folders that rows may name: DFEW clip 1, a FERV39K clip, a CSV clip.
    for dir in ["Clip/clip_224x224/00001", "2_ClipsforFaceCrop/Happy/0001", "clips/a"] {
        std::fs::create_dir_all(root.join(dir)).expect("scratch folders can be made");
    }
    for split in ["train", "test"] {
        scratch_file(&format!("dataset/EmoLabel_DataSplit/{split}(single-labeled)/set_1.csv"), bytes);
        scratch_file(&format!("dataset/4_setups/All_scenes/{split}_All.csv"), bytes);
        scratch_file(&format!("dataset/{split}.csv"), bytes);
    }
    // Every row, kept or skipped, holds its folder, its name or the reason with the line.
    within(budget(bytes.len(), 512, 1 << 20), || {
        for kind in [DatasetKind::Dfew, DatasetKind::Ferv39k, DatasetKind::Csv] {
            let spec = DatasetSpec {
                kind,
                root: Some(root.clone()),
                fold: 1,
                synthetic_train: 0,
                synthetic_test: 0,
                synthetic_seed: 0,
            };
            let _ = spec.open();
        }
    });
});
