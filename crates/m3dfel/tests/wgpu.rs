//! The WGSL DMIN kernel and the whole model on Burn's wgpu backend. Without a GPU this runs
//! on Mesa's CPU Vulkan driver (llvmpipe; `apt-get install mesa-vulkan-drivers`).
#![cfg(feature = "wgpu")]

use burn::backend::wgpu::WgpuDevice;
use burn::backend::{Flex, Wgpu};
use burn::tensor::activation::sigmoid;
use burn::tensor::{Distribution, Tensor, TensorData};
use m3dfel::dliam::dmin::{DminBackend, DminParams, dmin_portable};
use m3dfel::weights::{Precision, WeightFile, safetensors_bytes};
use m3dfel::{M3dfel, M3dfelConfig};

fn values<B: burn::tensor::backend::Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().convert::<f32>().to_vec::<f32>().unwrap()
}

/// max |a − b| / max |b|.
fn relative_error(ours: &[f32], reference: &[f32]) -> f32 {
    assert_eq!(ours.len(), reference.len());
    let scale = reference.iter().fold(0f32, |m, v| m.max(v.abs()));
    let error = ours.iter().zip(reference).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    error / scale.max(f32::MIN_POSITIVE)
}

fn params(channels: usize, device: &WgpuDevice) -> DminParams<Wgpu> {
    let gamma = Tensor::random([channels], Distribution::Uniform(0.5, 1.5), device);
    let beta = Tensor::random([channels], Distribution::Normal(0.0, 0.2), device);
    let logits = |a: f32, b: f32| Tensor::from_data(TensorData::new(vec![a, b], [2]), device);
    DminParams { gamma, beta, mean_weight: logits(0.3, -0.8), var_weight: logits(-0.4, 1.1) }
}

#[test]
fn the_wgsl_dmin_kernel_equals_the_portable_dmin_on_many_shapes() {
    let device = WgpuDevice::default();
    for batch in [1, 3] {
        for n in [1, 2, 4, 8] {
            for channels in [1, 1024] {
                for offset in [0.0, 250.0] {
                    let shape = [batch, n, channels];
                    let attended: Tensor<Wgpu, 3> =
                        Tensor::random(shape, Distribution::Normal(offset, 2.0), &device);
                    let ori: Tensor<Wgpu, 3> = Tensor::random(shape, Distribution::Normal(0.0, 1.0), &device);
                    let params = params(channels, &device);
                    let kernel = <Wgpu as DminBackend>::dmin_gate(attended.clone(), ori.clone(), params.clone());
                    let gate = sigmoid(dmin_portable(attended, &params));
                    let gated = ori * gate.clone();
                    let case = format!("B={batch} N={n} C={channels} offset={offset}");
                    let (kernel_gate, portable_gate) = (values(kernel.gate), values(gate));
                    assert!(kernel_gate.iter().all(|v| v.is_finite()), "{case}: non-finite gate");
                    let gate_error = relative_error(&kernel_gate, &portable_gate);
                    let gated_error = relative_error(&values(kernel.gated), &values(gated));
                    assert!(gate_error <= 1e-5, "{case}: gate relative error {gate_error:e}");
                    assert!(gated_error <= 1e-5, "{case}: gated relative error {gated_error:e}");
                }
            }
        }
    }
}

#[test]
fn the_full_model_on_wgpu_equals_the_cpu_forward() {
    let config = M3dfelConfig::preset("tiny").unwrap().with_frame_size(32);
    let cpu_model: M3dfel<Flex> = config.init(&Default::default());
    let bytes = safetensors_bytes(&cpu_model, &config, Precision::F32).unwrap();
    let file = WeightFile::from_safetensors_bytes("tiny.safetensors", &bytes).unwrap();
    let device = WgpuDevice::default();
    let gpu_model = file.load::<Wgpu>(&config, &device).unwrap().model;

    let clips: Tensor<Flex, 5> = Tensor::random([2, 16, 3, 32, 32], Distribution::Uniform(0.0, 1.0), &Default::default());
    let gpu_clips = Tensor::<Wgpu, 5>::from_data(clips.to_data(), &device);
    let (cpu, gpu) = (cpu_model.forward(clips), gpu_model.forward(gpu_clips));
    for (what, a, b) in [
        ("logits", values(gpu.logits), values(cpu.logits)),
        ("instance logits", values(gpu.instance_logits), values(cpu.instance_logits)),
        ("gate", values(gpu.gate_mean), values(cpu.gate_mean)),
    ] {
        let error = relative_error(&a, &b);
        assert!(error <= 1e-4, "{what}: wgpu vs CPU relative error {error:e}");
    }
}
