//! The WGSL DMIN kernel and the whole model on Burn's wgpu backend, with the kernels the
//! project builds it with (no autotuner: Burn's `Cube` matmul, the project's convolution choice).
//!
//! Natively, without a GPU, this runs on Mesa's CPU Vulkan driver (llvmpipe;
//! `apt-get install mesa-vulkan-drivers`). Compiled to wasm32 the kernel test runs in
//! headless Chromium's WebGPU (`scripts/test-browser-kernel.sh`), so the same shader is
//! also proven on the browser's WGSL compiler.
#![cfg(feature = "wgpu")]

use burn::backend::Wgpu;
use burn::backend::wgpu::WgpuDevice;
use burn::tensor::activation::sigmoid;
use burn::tensor::{Distribution, Tensor, TensorData};
use m3dfel::dliam::dmin::{DminBackend, DminParams, dmin_portable};

/// Reads a tensor back (asynchronously: browsers forbid blocking reads).
async fn values<B: burn::tensor::backend::Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data_async().await.unwrap().convert::<f32>().to_vec::<f32>().unwrap()
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

/// Kernel vs portable DMIN + gate on B = 1, 3; N = 1, 2, 4, 8; C = 1, 1024; with and
/// without a large common offset: max abs error ≤ 1e-5 of the largest value.
async fn kernel_equals_portable_on_many_shapes(device: WgpuDevice) {
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
                    let (kernel_gate, portable_gate) = (values(kernel.gate).await, values(gate).await);
                    assert!(kernel_gate.iter().all(|v| v.is_finite()), "{case}: non-finite gate");
                    let gate_error = relative_error(&kernel_gate, &portable_gate);
                    let gated_error = relative_error(&values(kernel.gated).await, &values(gated).await);
                    assert!(gate_error <= 1e-5, "{case}: gate relative error {gate_error:e}");
                    assert!(gated_error <= 1e-5, "{case}: gated relative error {gated_error:e}");
                }
            }
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn the_wgsl_dmin_kernel_equals_the_portable_dmin_on_many_shapes() {
    burn::cubecl::future::block_on(kernel_equals_portable_on_many_shapes(WgpuDevice::default()));
}

#[cfg(target_arch = "wasm32")]
mod browser {
    use burn::backend::wgpu::{RuntimeOptions, WgpuDevice, graphics::AutoGraphicsApi, init_setup_async};
    use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

    // In a worker: the page stays responsive to the test driver while shaders compile.
    wasm_bindgen_test_configure!(run_in_dedicated_worker);

    thread_local! {
        static READY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    /// The browser's WebGPU device, set up once for all tests.
    async fn device() -> WgpuDevice {
        let device = WgpuDevice::default();
        if !READY.get() {
            init_setup_async::<AutoGraphicsApi>(&device, RuntimeOptions::default()).await;
            READY.set(true);
        }
        device
    }

    #[wasm_bindgen_test]
    async fn the_wgsl_dmin_kernel_equals_the_portable_dmin_in_the_browser() {
        super::kernel_equals_portable_on_many_shapes(device().await).await;
    }

    #[wasm_bindgen_test]
    async fn the_backbone_on_browser_webgpu_equals_the_cpu_forward() {
        super::backbone_equals_the_cpu_forward(device().await).await;
    }

    #[wasm_bindgen_test]
    async fn the_full_model_on_browser_webgpu_equals_the_cpu_forward() {
        super::full_model_equals_the_cpu_forward(device().await).await;
    }
}

/// The tiny model with the same random weights on the CPU (Flex) and on wgpu.
fn models(device: &WgpuDevice) -> (m3dfel::M3dfel<burn::backend::Flex>, m3dfel::M3dfel<Wgpu>, m3dfel::M3dfelConfig) {
    use m3dfel::weights::{Precision, WeightFile, safetensors_bytes};

    let config = m3dfel::M3dfelConfig::preset("tiny").unwrap().with_frame_size(32);
    let cpu_model = config.init(&Default::default());
    let bytes = safetensors_bytes(&cpu_model, &config, Precision::F32).unwrap();
    let file = WeightFile::from_safetensors_bytes("tiny.safetensors", &bytes).unwrap();
    let gpu_model = file.load::<Wgpu>(&config, device).unwrap().model;
    (cpu_model, gpu_model, config)
}

/// R3D-18 on wgpu equals the CPU stage by stage (stem, every residual block, the
/// instance embeddings), within 1e-4 relative; the message names each stage's error.
async fn backbone_equals_the_cpu_forward(device: WgpuDevice) {
    use burn::backend::Flex;
    use m3dfel::backbone::conv::ConvEpilogue;

    let (cpu_model, gpu_model, config) = models(&device);
    let clips: Tensor<Flex, 5> = Tensor::random([2, 16, 3, 32, 32], Distribution::Uniform(0.0, 1.0), &Default::default());
    let instances = m3dfel::instances::to_instances(clips.clone(), config.instance_length); // [B·N, 3, L, H, W]
    let rows = instances.dims()[0];
    let (mut cpu_x, mut gpu_x) = (
        cpu_model.features.stem.forward(instances.clone(), ConvEpilogue::relu(), rows),
        gpu_model.features.stem.forward(Tensor::from_data(instances.to_data(), &device), ConvEpilogue::relu(), rows),
    );
    let mut stages = vec![("stem".to_string(), values(gpu_x.clone()).await, values(cpu_x.clone()).await)];
    for (i, (cpu_block, gpu_block)) in cpu_model.features.blocks.iter().zip(&gpu_model.features.blocks).enumerate() {
        cpu_x = cpu_block.forward(cpu_x, rows);
        gpu_x = gpu_block.forward(gpu_x, rows);
        stages.push((format!("block {i}"), values(gpu_x.clone()).await, values(cpu_x.clone()).await));
    }
    let gpu_clips = Tensor::<Wgpu, 5>::from_data(clips.to_data(), &device);
    let embeddings = (values(gpu_model.embed_instances(gpu_clips)).await, values(cpu_model.embed_instances(clips)).await);
    stages.push(("instance embeddings".into(), embeddings.0, embeddings.1));
    let errors: Vec<(String, f32)> = stages.into_iter().map(|(what, a, b)| (what, relative_error(&a, &b))).collect();
    assert!(errors.iter().all(|(_, e)| *e <= 1e-4), "wgpu vs CPU relative error by stage: {errors:?}");
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn the_backbone_on_wgpu_equals_the_cpu_forward() {
    burn::cubecl::future::block_on(backbone_equals_the_cpu_forward(WgpuDevice::default()));
}

/// The whole model (R3D-18, DLIAM with the WGSL DMIN kernel, the classifier) on wgpu equals
/// the CPU at one clip and at two (DLIAM's matrix products then have other shapes), three
/// times in a row, within 1e-4 relative.
async fn full_model_equals_the_cpu_forward(device: WgpuDevice) {
    use burn::backend::Flex;

    let (cpu_model, gpu_model, _) = models(&device);
    for batch in [1, 2, 1] {
        let clips: Tensor<Flex, 5> = Tensor::random([batch, 16, 3, 32, 32], Distribution::Uniform(0.0, 1.0), &Default::default());
        let gpu_clips = Tensor::<Wgpu, 5>::from_data(clips.to_data(), &device);
        let (cpu, gpu) = (cpu_model.forward(clips), gpu_model.forward(gpu_clips));
        let pairs = [
            ("logits", values(gpu.logits).await, values(cpu.logits).await),
            ("instance logits", values(gpu.instance_logits).await, values(cpu.instance_logits).await),
            ("gate", values(gpu.gate_mean).await, values(cpu.gate_mean).await),
        ];
        for (what, a, b) in pairs {
            let error = relative_error(&a, &b);
            assert!(error <= 1e-4, "{batch} clip(s), {what}: wgpu vs CPU relative error {error:e}");
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
#[test]
fn the_full_model_on_wgpu_equals_the_cpu_forward() {
    burn::cubecl::future::block_on(full_model_equals_the_cpu_forward(WgpuDevice::default()));
}
