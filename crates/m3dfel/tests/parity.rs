//! Parity with an implementation we did not write: torchvision's `r3d_18` plus the spec's
//! DLIAM in PyTorch (`tests/parity/reference.py`). The fixtures (checkpoints in the three
//! PyTorch layouts, inputs, every intermediate output) are written by
//! `tests/parity/make_fixtures.py`; `scripts/test.sh` runs it before `cargo test`.
//!
//! Tolerance: max |ours − reference| / max |reference| ≤ 1e-4 for every compared tensor.
//! The fixtures' instances differ by far more than that (checked here), so a wrong attention
//! (its scale, softmax axis, q and k) or instances in the wrong order cannot pass.

#![cfg(not(target_arch = "wasm32"))]

use std::path::PathBuf;

use burn::backend::Flex;
use burn::tensor::{Tensor, TensorData};
use m3dfel::dliam::dmin::{DminBackend, dmin_portable};
use m3dfel::instances::to_instances;
use m3dfel::npy::NpyArray;
use m3dfel::weights::{WeightFile, WeightFormat};
use m3dfel::{M3dfel, M3dfelConfig};

type B = Flex;
const TOLERANCE: f32 = 1e-4;

fn fixtures(case: &str) -> PathBuf {
    m3dfel::testing::parity_fixtures().join(case)
}

fn npy<const D: usize>(dir: &PathBuf, name: &str) -> Tensor<B, D> {
    let array = NpyArray::read(dir.join(format!("{name}.npy"))).unwrap();
    Tensor::from_data(TensorData::new(array.values, array.shape), &Default::default())
}

/// max |a − b| / max |b|, and asserts it is within tolerance.
fn assert_close<const D: usize>(what: &str, ours: Tensor<B, D>, reference: Tensor<B, D>) {
    assert_eq!(ours.dims(), reference.dims(), "{what}: shapes differ");
    let scale = reference.clone().abs().max().into_scalar();
    let error = (ours - reference).abs().max().into_scalar();
    let relative = error / scale.max(f32::MIN_POSITIVE);
    println!("{what}: max abs error {error:.3e}, relative {relative:.3e}");
    assert!(relative <= TOLERANCE, "{what}: relative error {relative:.3e} exceeds {TOLERANCE:e}");
}

/// How much the reference tensor `name` (`[B, N, …]`) differs between the instances of a
/// bag: max |x[b, n] − x[b, 0]| / max |x|.
fn instance_spread(dir: &PathBuf, name: &str) -> f32 {
    let array = NpyArray::read(dir.join(format!("{name}.npy"))).unwrap();
    let (bags, n) = (array.shape[0], array.shape[1]);
    let size = array.values.len() / (bags * n); // of one instance's values
    let scale = array.values.iter().fold(0f32, |m, v| m.max(v.abs()));
    let mut spread = 0f32;
    for bag in array.values.chunks_exact(n * size) {
        for instance in bag.chunks_exact(size) {
            spread = instance.iter().zip(&bag[..size]).fold(spread, |m, (a, b)| m.max((a - b).abs()));
        }
    }
    spread / scale.max(f32::MIN_POSITIVE)
}

fn load(dir: &PathBuf, file: &str) -> (M3dfel<B>, WeightFormat) {
    let weights = WeightFile::read(dir.join(file)).unwrap();
    let loaded = weights.load::<B>(&M3dfelConfig::new(), &Default::default()).unwrap();
    assert!(loaded.report.missing.is_empty() && loaded.report.unexpected.is_empty());
    (loaded.model, loaded.format)
}

fn assert_model_matches(dir: &PathBuf, model: &M3dfel<B>) {
    let out = model.forward(npy(dir, "clips"));
    assert_close("bag logits", out.logits, npy(dir, "logits"));
    assert_close("instance logits", out.instance_logits, npy(dir, "instance_logits"));
    assert_close("gate mean", out.gate_mean, npy(dir, "gate_mean"));
}

#[test]
fn the_authors_plain_state_dict_gives_the_reference_logits() {
    let dir = fixtures("paper");
    let (model, format) = load(&dir, "state_dict.pth");
    assert_eq!(format, WeightFormat::PytorchStateDict);
    assert_model_matches(&dir, &model);
}

#[test]
fn folding_batch_norm_into_the_convolutions_keeps_the_reference_logits() {
    // The fixtures' BatchNorms have random γ, β, running mean and variance.
    let dir = fixtures("paper");
    let (model, _) = load(&dir, "state_dict.pth");
    let folded = model.fold_batch_norm();
    assert!(folded.features.stem.bn.is_none() && folded.features.blocks.iter().all(|b| b.conv2.bn.is_none()));
    assert_model_matches(&dir, &folded);
}

#[test]
fn the_authors_training_checkpoint_gives_the_reference_logits() {
    let dir = fixtures("paper");
    let (model, format) = load(&dir, "checkpoint.pth");
    assert_eq!(format, WeightFormat::PytorchTrainingCheckpoint);
    assert_model_matches(&dir, &model);
}

#[test]
fn a_bag_of_two_instances_is_recognised_and_matches() {
    let dir = fixtures("bag2");
    let weights = WeightFile::read(dir.join("state_dict.pth")).unwrap();
    let config = weights.config(&M3dfelConfig::new()).unwrap();
    assert_eq!((config.bag_size(), config.instance_length), (2, 8));
    let (model, _) = load(&dir, "state_dict.pth");
    assert_model_matches(&dir, &model);
}

#[test]
fn the_backbone_equals_torchvision_r3d_18_loaded_from_its_own_file() {
    let dir = fixtures("paper");
    let weights = WeightFile::read(dir.join("r3d_18.pth")).unwrap();
    assert_eq!(weights.format, WeightFormat::TorchvisionR3d18);
    let loaded = weights.load::<B>(&M3dfelConfig::new(), &Default::default()).unwrap();
    assert!(loaded.report.missing.iter().all(|k| !k.starts_with("features.")));
    assert!(loaded.report.missing.contains(&"lstm.weight_ih_l0".to_string()));
    let clips: Tensor<B, 5> = npy(&dir, "clips");
    let [batch, frames, ..] = clips.dims();
    let features = loaded.model.features.forward(to_instances(clips, 4), batch * frames / 4); // [B·N, 512]
    let features = features.reshape([batch, frames / 4, 512]);
    assert_close("R3D-18 features", features, npy(&dir, "features"));
}

#[test]
fn each_dliam_stage_matches_pytorch() {
    let dir = fixtures("paper");
    let (model, _) = load(&dir, "state_dict.pth");
    let dliam = &model.dliam;
    let lstm = dliam.lstm.as_ref().unwrap();
    assert_close("BiLSTM vs torch.nn.LSTM", lstm.forward(npy(&dir, "features")), npy(&dir, "ori"));
    let attention = dliam.attention.as_ref().unwrap();
    assert_close("MHSA", attention.forward(npy(&dir, "ori")), npy(&dir, "attended"));
    let params = dliam.norm.as_ref().unwrap().params();
    assert_close("DMIN", dmin_portable(npy(&dir, "attended"), &params), npy(&dir, "dmin"));
    let gate = <B as DminBackend>::dmin_gate(npy(&dir, "attended"), npy(&dir, "ori"), params);
    assert_close("gate", gate.gated, npy(&dir, "gated"));
}

#[test]
fn the_fixtures_instances_differ_by_far_more_than_the_tolerance() {
    // Were the attention output the same for every instance (every query getting mean(v),
    // as with PyTorch's default weights), the comparisons above could not see a wrong
    // attention scale, a softmax over the wrong axis, q and k swapped, or the instances in
    // the wrong order: `make_fixtures.py` must make instances that differ.
    let floor = 20.0 * TOLERANCE;
    let stages = ["features", "ori", "attended", "dmin", "gated", "gate_mean", "instance_logits"];
    for case in ["paper", "bag2"] {
        let dir = fixtures(case);
        for name in stages {
            let spread = instance_spread(&dir, name);
            println!("{case} {name}: instances differ by {spread:.3e} (relative)");
            assert!(
                spread >= floor,
                "{case} {name}: the instances differ by only {spread:.3e} (relative), under {floor:.0e}: \
                 the parity checks cannot see attention or instance-order errors"
            );
        }
    }
}
