//! A damaged checkpoint as `trainer --resume` meets it: the first byte picks which file of
//! an intact checkpoint (of a small model that took one AdamW step, so the optimizer holds
//! moments) the rest replaces: the model record, the optimizer record or `checksums.json`.
//! `checkpoint::newest_intact` checks it and `checkpoint::restore` reads what it accepts.
//!
//! Burn's record reader (bincode without a size limit) allocates what a damaged length field
//! says, so records are only read once their checksums match: a checkpoint written before
//! checksums were (none in this target) is read unchecked (see README, "Fuzzing").
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use burn::backend::{Autodiff, Flex};
use burn::optim::{AdamW, AdamWConfig, GradientsParams, Optimizer, adaptor::OptimizerAdaptor};
use burn::tensor::Tensor;
use libfuzzer_sys::fuzz_target;
use m3dfel::{M3dfel, M3dfelConfig};
use m3dfel_fuzz::{MIB, budget, scratch_dir, within};
use trainer::data::augment::Policy;
use trainer::data::splits::{DatasetKind, DatasetSpec};
use trainer::train::{RunConfig, RunState, checkpoint};

type B = Autodiff<Flex>;
type Adam = OptimizerAdaptor<AdamW, M3dfel<B>, B>;

/// Two of every width: a model of a few thousand parameters.
fn config() -> M3dfelConfig {
    M3dfelConfig::new()
        .with_preset("custom".into())
        .with_widths([2, 2, 2, 2])
        .with_lstm_hidden(2)
        .with_lstm_layers(1)
        .with_num_heads(1)
        .with_frame_size(16)
}

fn optimizer() -> Adam {
    AdamWConfig::new().init::<B, M3dfel<B>>()
}

/// An intact checkpoint, written once per process.
fn intact() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = scratch_dir().join("intact");
        let device = Default::default();
        let model = config().init::<B>(&device);
        let mut optimizer = optimizer();
        let loss = model.forward(Tensor::<B, 5>::ones([1, 16, 3, 16, 16], &device)).logits.sum();
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        let model = optimizer.step(1e-3, model, grads);
        let run = RunConfig {
            dataset: DatasetSpec {
                kind: DatasetKind::Synthetic,
                root: None,
                fold: 1,
                synthetic_train: 1,
                synthetic_test: 1,
                synthetic_seed: 0,
            },
            model: config(),
            epochs: 1,
            batch_size: 1,
            accumulation: 1,
            lr: 1e-3,
            min_lr: 0.0,
            warmup_epochs: 0,
            weight_decay: 0.0,
            label_smoothing: 0.0,
            augment: Policy::None,
            replicas: 1,
            seed: 0,
        };
        let state = RunState { config: run, epochs_done: 1, iterations_done: 1, history: Vec::new(), best: None, skipped: Vec::new() };
        checkpoint::save(&out, &model, &optimizer, &state).expect("an intact checkpoint can be written");
        let dir = checkpoint::folder(&out).join("epoch-0001");
        // scripts/fuzz.sh writes the seeds from here: each file, behind the byte that picks it.
        if let Some(seeds) = std::env::var_os("M3DFEL_FUZZ_SEEDS") {
            std::fs::create_dir_all(&seeds).expect("the seed folder can be made");
            for (pick, name) in ["model.bin", "optimizer.bin", "checksums.json"].iter().enumerate() {
                let mut seed = vec![pick as u8];
                seed.extend(std::fs::read(dir.join(name)).expect("the intact checkpoint can be read"));
                std::fs::write(PathBuf::from(&seeds).join(name), seed).expect("the seeds can be written");
            }
        }
        dir
    })
}

fuzz_target!(|input: &[u8]| {
    let intact = intact();
    let Some((&pick, bytes)) = input.split_first() else { return };
    let out = scratch_dir().join("damaged");
    let dir = checkpoint::folder(&out).join("epoch-0001");
    std::fs::create_dir_all(&dir).expect("scratch folders can be made");
    for name in ["model.bin", "optimizer.bin", "checksums.json", "state.json"] {
        std::fs::copy(intact.join(name), dir.join(name)).expect("the intact checkpoint can be copied");
    }
    std::fs::copy(intact.join("../latest"), checkpoint::folder(&out).join("latest")).expect("`latest` can be copied");
    let damaged = ["model.bin", "optimizer.bin", "checksums.json"][pick as usize % 3];
    std::fs::write(dir.join(damaged), bytes).expect("scratch files can be written");
    let device = Default::default();
    // One model for every run: a model drawn on the autodiff backend keeps about 90 KB
    // after it is dropped (measured here), which thousands of runs would add up.
    thread_local! {
        static MODEL: M3dfel<B> = config().init::<B>(&Default::default());
    }
    let model = MODEL.with(Clone::clone);
    // The files' bytes for their checksums, then the records' tensors, decoded once and
    // held by the model and optimizer.
    within(budget(bytes.len(), 16, 16 * MIB), || {
        if let Ok(Some((dir, _))) = checkpoint::newest_intact(&out) {
            let _ = checkpoint::restore(&dir, model, optimizer(), &device);
        }
    });
});
