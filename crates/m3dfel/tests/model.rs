//! Behaviour of the model definition and its weight files, on small configurations.

#![cfg(not(target_arch = "wasm32"))]

use burn::backend::Flex;
use burn::tensor::{Distribution, Tensor, TensorData};
use m3dfel::dliam::dmin::{DminParams, dmin_portable};
use m3dfel::weights::{Precision, WeightErrorKind, WeightFile, save_burnpack, save_safetensors};
use m3dfel::{Ablation, Aggregation, M3dfel, M3dfelConfig};

type B = Flex;

fn device() -> burn::backend::flex::FlexDevice {
    Default::default()
}

fn tiny() -> M3dfelConfig {
    M3dfelConfig::preset("tiny").unwrap().with_frame_size(32)
}

fn clips(batch: usize, size: usize) -> Tensor<B, 5> {
    Tensor::random([batch, 16, 3, size, size], Distribution::Uniform(0.0, 1.0), &device())
}

fn values<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().to_vec::<f32>().unwrap()
}

fn temp_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("m3dfel-model-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn the_paper_preset_has_46_823_384_parameters() {
    let model: M3dfel<B> = M3dfelConfig::preset("paper").unwrap().init(&device());
    assert_eq!(model.num_parameters(), 46_823_384);
}

/// DMIN written out with loops, straight from the spec, in f64.
fn dmin_by_the_formula(a: &[f32], [b, n, c]: [usize; 3], gamma: &[f32], beta: &[f32], wm: [f64; 2], wv: [f64; 2]) -> Vec<f64> {
    let soft = |w: [f64; 2]| {
        let (e0, e1) = (w[0].exp(), w[1].exp());
        [e0 / (e0 + e1), e1 / (e0 + e1)]
    };
    let (wm, wv) = (soft(wm), soft(wv));
    let at = |bi: usize, ni: usize, ci: usize| a[(bi * n + ni) * c + ci] as f64;
    let mut out = vec![0.0; b * n * c];
    for bi in 0..b {
        let mu_in: Vec<f64> = (0..c).map(|ci| (0..n).map(|ni| at(bi, ni, ci)).sum::<f64>() / n as f64).collect();
        let var_in: Vec<f64> = (0..c)
            .map(|ci| (0..n).map(|ni| (at(bi, ni, ci) - mu_in[ci]).powi(2)).sum::<f64>() / (n - 1) as f64)
            .collect();
        let mu_bag = mu_in.iter().sum::<f64>() / c as f64;
        let var_bag = (0..c).map(|ci| var_in[ci] + mu_in[ci].powi(2)).sum::<f64>() / c as f64 - mu_bag.powi(2);
        for ni in 0..n {
            for ci in 0..c {
                let mu = wm[0] * mu_in[ci] + wm[1] * mu_bag;
                let var = wv[0] * var_in[ci] + wv[1] * var_bag;
                out[(bi * n + ni) * c + ci] =
                    (at(bi, ni, ci) - mu) / (var + 1e-5).sqrt() * gamma[ci] as f64 + beta[ci] as f64;
            }
        }
    }
    out
}

#[test]
fn dmin_follows_the_spec_formula_with_the_unbiased_instance_variance() {
    let shape = [3, 4, 5];
    let a: Tensor<B, 3> = Tensor::random(shape, Distribution::Normal(2.0, 3.0), &device());
    let gamma: Vec<f32> = vec![0.5, 1.0, 1.5, 2.0, -1.0];
    let beta: Vec<f32> = vec![0.1, -0.2, 0.3, 0.0, 1.0];
    let (wm, wv) = ([0.3, -0.8], [-0.4, 1.1]);
    let to_tensor = |v: Vec<f32>| Tensor::<B, 1>::from_data(TensorData::new(v.clone(), [v.len()]), &device());
    let params = DminParams {
        gamma: to_tensor(gamma.clone()),
        beta: to_tensor(beta.clone()),
        mean_weight: to_tensor(vec![wm[0] as f32, wm[1] as f32]),
        var_weight: to_tensor(vec![wv[0] as f32, wv[1] as f32]),
    };
    let ours = values(dmin_portable(a.clone(), &params));
    let expected = dmin_by_the_formula(&values(a), shape, &gamma, &beta, wm, wv);
    for (o, e) in ours.iter().zip(&expected) {
        assert!((*o as f64 - e).abs() < 1e-4 * (1.0 + e.abs()), "{o} vs {e}");
    }
}

#[test]
fn a_bag_of_one_instance_gives_finite_results() {
    let config = tiny().with_instance_length(16);
    let model: M3dfel<B> = config.init(&device());
    let out = model.forward(clips(2, 32));
    assert_eq!(out.instance_logits.dims(), [2, 1, 7]);
    assert!(values(out.logits).iter().all(|v| v.is_finite()));
    assert!(values(out.gate_mean).iter().all(|v| v.is_finite()));
}

#[test]
fn outputs_have_the_documented_shapes_for_every_bag_size() {
    for instance_length in [1, 2, 4, 8, 16] {
        let config = tiny().with_instance_length(instance_length);
        let model: M3dfel<B> = config.init(&device());
        let out = model.forward(clips(2, 32));
        let n = 16 / instance_length;
        assert_eq!(out.logits.dims(), [2, 7]);
        assert_eq!(out.instance_logits.dims(), [2, n, 7]);
        assert_eq!(out.gate_mean.dims(), [2, n]);
    }
}

fn ablations() -> Vec<Ablation> {
    let full = Ablation::default();
    vec![
        full,
        Ablation { lstm: false, ..full },
        Ablation { mhsa: false, ..full },
        Ablation { dmin: false, ..full },
        Ablation { aggregation: Aggregation::AvgPool, ..full },
    ]
}

#[test]
fn every_ablation_is_recovered_from_the_weight_shapes_alone() {
    for ablation in ablations() {
        let config = tiny().with_ablation(ablation).with_instance_length(8);
        let model: M3dfel<B> = config.init(&device());
        let path = temp_path("ablation.safetensors");
        save_safetensors(&model, &config, Precision::F32, &path).unwrap();
        // Forget the recorded configuration, as with the authors' .pth files.
        let mut file = WeightFile::read(&path).unwrap();
        file.config = None;
        let fallback = M3dfelConfig::new().with_frame_size(32);
        let inferred = file.config(&fallback).unwrap();
        assert_eq!(inferred.ablation, ablation);
        assert_eq!(inferred.widths, config.widths);
        if ablation.aggregation == Aggregation::Conv1d {
            assert_eq!(inferred.instance_length, 8);
        }
        let reloaded = file.load::<B>(&fallback.with_instance_length(8), &device()).unwrap();
        let input = clips(1, 32);
        let (a, b) = (values(model.forward(input.clone()).logits), values(reloaded.model.forward(input).logits));
        assert_same_up_to_rounding(&a, &b, &format!("{ablation:?}"));
    }
}

#[test]
fn safetensors_and_burnpack_files_reload_to_identical_outputs() {
    let config = tiny();
    let model: M3dfel<B> = config.init(&device());
    let input = clips(2, 32);
    let expected = values(model.forward(input.clone()).logits);
    let st = temp_path("model.safetensors");
    let bpk = temp_path("model.bpk");
    save_safetensors(&model, &config, Precision::F32, &st).unwrap();
    save_burnpack(&model, &config, &bpk).unwrap();
    for path in [&st, &bpk] {
        let loaded = m3dfel::weights::load_model::<B>(path, &device()).unwrap();
        assert_eq!(loaded.config, config, "{}", path.display());
        let got = values(loaded.model.forward(input.clone()).logits);
        assert_same_up_to_rounding(&got, &expected, &path.display().to_string());
    }
}

/// Loading rebuilds tensors (Linear weights are transposed back), which may change the
/// summation order of a matmul: equal up to float rounding, not bit for bit.
fn assert_same_up_to_rounding(a: &[f32], b: &[f32], what: &str) {
    let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-5 * scale, "{what}: {x} vs {y}");
    }
}

#[test]
fn an_f16_file_is_half_the_size_and_widened_on_load() {
    let config = tiny();
    let model: M3dfel<B> = config.init(&device());
    let (f32_path, f16_path) = (temp_path("full.safetensors"), temp_path("half.safetensors"));
    save_safetensors(&model, &config, Precision::F32, &f32_path).unwrap();
    save_safetensors(&model, &config, Precision::F16, &f16_path).unwrap();
    let (full, half) = (std::fs::metadata(&f32_path).unwrap().len(), std::fs::metadata(&f16_path).unwrap().len());
    assert!(half < full * 6 / 10, "f16 {half} bytes vs f32 {full} bytes");
    let input = clips(1, 32);
    let a = values(model.forward(input.clone()).logits);
    let b = values(m3dfel::weights::load_model::<B>(&f16_path, &device()).unwrap().model.forward(input).logits);
    let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
    let error = a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    assert!(error <= 1e-2 * scale, "f16 error {error} vs scale {scale}");
}

fn load_error(path: &std::path::Path) -> m3dfel::weights::WeightError {
    m3dfel::weights::load_model::<B>(path, &device()).unwrap_err()
}

#[test]
fn damaged_and_foreign_files_are_refused_with_the_file_named() {
    let config = tiny();
    let model: M3dfel<B> = config.init(&device());
    let good = temp_path("good.safetensors");
    save_safetensors(&model, &config, Precision::F32, &good).unwrap();
    let bytes = std::fs::read(&good).unwrap();

    let truncated = temp_path("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_error(&truncated);
    assert!(matches!(err.kind, WeightErrorKind::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("truncated.safetensors"), "{err}");

    let random = temp_path("random.bin");
    std::fs::write(&random, (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect::<Vec<_>>()).unwrap();
    assert!(matches!(load_error(&random).kind, WeightErrorKind::NotWeights(_)));

    let empty = temp_path("empty.pth");
    std::fs::write(&empty, b"").unwrap();
    assert!(load_error(&empty).to_string().contains("empty"));

    // A burnpack whose header states a shape its data does not fill: `fc.bias` [7] → [2].
    let good = temp_path("good.bpk");
    save_burnpack(&model, &config, &good).unwrap();
    let mut bytes = std::fs::read(&good).unwrap();
    let find = |bytes: &[u8], needle: &[u8], from: usize| bytes[from..].windows(needle.len()).position(|w| w == needle).map(|i| from + i);
    let name = find(&bytes, b"fc.bias", 0).expect("fc.bias in the burnpack header");
    let shape = find(&bytes, b"shape\x81\x07", name).expect("fc.bias's shape [7], CBOR");
    bytes[shape + 6] = 2;
    let misshapen = temp_path("misshapen.bpk");
    std::fs::write(&misshapen, &bytes).unwrap();
    let err = load_error(&misshapen).to_string();
    assert!(err.contains("misshapen.bpk") && err.contains("fc.bias") && err.contains("holds 7 values"), "{err}");
}

#[test]
fn bytes_read_in_browsers_tell_truncated_files_from_other_kinds() {
    use m3dfel::weights::WeightFile;
    let config = tiny();
    let bytes = m3dfel::weights::safetensors_bytes(&config.init::<B>(&device()), &config, Precision::F16).unwrap();
    let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let error = |name: &str, bytes: &[u8]| WeightFile::from_safetensors_bytes(name, bytes).unwrap_err();

    // Cut inside the tensor data, and inside the JSON header.
    for cut in [bytes.len() - 100, 8 + header / 2] {
        let err = error("model.safetensors", &bytes[..cut]);
        assert!(matches!(err.kind, WeightErrorKind::Corrupt { .. }), "cut at {cut}: {err}");
        assert!(err.to_string().starts_with("model.safetensors: damaged or truncated"), "{err}");
    }
    let pytorch = error("model.pth", b"PK\x03\x04 a zip archive");
    assert!(pytorch.to_string().contains("convert it with `m3dfel import`"), "{pytorch}");
    let text = error("notes.txt", "not weights at all\n".repeat(10).as_bytes());
    assert!(matches!(text.kind, WeightErrorKind::NotWeights(_)), "{text}");
    assert!(WeightFile::from_safetensors_bytes("model.safetensors", &bytes).is_ok());
}

#[test]
fn wrong_shapes_foreign_checkpoints_and_nan_name_the_weight() {
    let config = tiny();
    let model: M3dfel<B> = config.init(&device());
    let path = temp_path("edit.safetensors");
    save_safetensors(&model, &config, Precision::F32, &path).unwrap();
    let original = WeightFile::read(&path).unwrap();

    let mut wrong = original.clone();
    wrong.tensors.get_mut("to_qkv.weight").unwrap().shape = vec![384, 32];
    let err = wrong.load::<B>(&M3dfelConfig::new(), &device()).unwrap_err();
    assert!(matches!(&err.kind, WeightErrorKind::Shape { key, .. } if key == "to_qkv.weight"), "{err}");

    let mut nan = original.clone();
    nan.tensors.get_mut("fc.bias").unwrap().values[3] = f32::NAN;
    let err = nan.load::<B>(&M3dfelConfig::new(), &device()).unwrap_err();
    assert!(matches!(&err.kind, WeightErrorKind::NonFinite(key) if key == "fc.bias"), "{err}");

    let mut foreign = original.clone();
    foreign.config = None;
    foreign.tensors.retain(|k, _| !k.starts_with("features."));
    let err = foreign.load::<B>(&M3dfelConfig::new(), &device()).unwrap_err();
    assert!(matches!(err.kind, WeightErrorKind::NotM3dfel(_)), "{err}");

    let mut extra = original.clone();
    extra.tensors.insert("decoder.weight".into(), m3dfel::weights::FileTensor { shape: vec![1], values: vec![0.0] });
    let err = extra.load::<B>(&M3dfelConfig::new(), &device()).unwrap_err();
    assert!(matches!(&err.kind, WeightErrorKind::Unexpected { key, .. } if key == "decoder.weight"), "{err}");

    // Inspecting lists what loading refuses.
    extra.tensors.remove("fc.bias");
    let report = extra.inspect::<B>(&M3dfelConfig::new(), &device()).unwrap().report;
    assert_eq!(report.unexpected, vec!["decoder.weight".to_string()]);
    assert_eq!(report.missing, vec!["fc.bias".to_string()]);
}

#[test]
fn evaluation_is_deterministic() {
    let config = tiny();
    let model: M3dfel<B> = config.init(&device());
    let input = clips(2, 32);
    assert_eq!(values(model.forward(input.clone()).logits), values(model.forward(input).logits));
}

#[test]
fn training_batch_norm_matches_burns_batch_norm_and_updates_the_running_statistics_alike() {
    use burn::module::Param;
    use burn::nn::BatchNormConfig;
    type A = burn::backend::Autodiff<Flex>;
    let random = |shape: [usize; 1]| Tensor::<A, 1>::random(shape, Distribution::Uniform(0.5, 1.5), &device());
    let mut stem = m3dfel::backbone::R3d18::<A>::new([8, 8, 8, 8], &device()).stem;
    let (gamma, beta) = (random([8]), random([8]) - 1.0);
    let ours = stem.bn.as_mut().unwrap();
    (ours.gamma, ours.beta) = (Param::from_tensor(gamma.clone()), Param::from_tensor(beta.clone()));
    // Burn's own BatchNorm with the same affine parameters and fresh running statistics.
    let mut burns = BatchNormConfig::new(8).with_epsilon(1e-5).with_momentum(0.1).init::<A>(&device());
    (burns.gamma, burns.beta) = (Param::from_tensor(gamma), Param::from_tensor(beta));

    let clips = Tensor::<A, 5>::random([2, 3, 4, 16, 16], Distribution::Uniform(0.0, 1.0), &device());
    let expected = burns.forward(stem.conv.forward(clips.clone()));
    let got = stem.forward(clips, m3dfel::backbone::conv::ConvEpilogue::none(), 2);
    let inner = |t: Tensor<A, 5>| values(t.inner());
    let (got, expected) = (inner(got), inner(expected));
    let error = got.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(error < 1e-4, "outputs differ by {error}");

    let ours = stem.bn.as_ref().unwrap();
    for (name, a, b) in [
        ("running mean", ours.running_mean.value_sync(), burns.running_mean.value_sync()),
        ("running var", ours.running_var.value_sync(), burns.running_var.value_sync()),
    ] {
        let (a, b) = (a.inner().into_data().to_vec::<f32>().unwrap(), b.inner().into_data().to_vec::<f32>().unwrap());
        assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-5), "{name}: {a:?} vs {b:?}");
        assert!(a.iter().any(|x| (x - if name == "running mean" { 0.0 } else { 1.0 }).abs() > 1e-3), "{name} never updated: {a:?}");
    }
}
