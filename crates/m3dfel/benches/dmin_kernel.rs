//! The fused WGSL DMIN + gate kernel against the portable tensor-op version, both on Burn's
//! wgpu backend, timed in the same run. `cargo bench -p m3dfel --bench dmin_kernel`
//!
//! Reports medians and the ratio fused / portable (< 1 means the kernel is faster). Without
//! a GPU, wgpu runs on Mesa's llvmpipe (CPU), so the absolute times say little; the ratio
//! shows what fusing ~20 small ops into one dispatch saves.

mod common;

use std::time::Duration;

use burn::backend::Wgpu;
use burn::backend::wgpu::WgpuDevice;
use burn::tensor::activation::sigmoid;
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use m3dfel::dliam::dmin::{DminBackend, DminParams, dmin_portable};

use common::{median, timings};

const WARMUP: usize = 5;
const RUNS: usize = 30;

/// The median of `RUNS` timings of `work` after `WARMUP` untimed runs, each run waiting
/// for the device to finish.
fn time(device: &WgpuDevice, mut work: impl FnMut()) -> Duration {
    median(&timings(WARMUP, RUNS, || {
        work();
        <Wgpu as Backend>::sync(device).expect("device sync");
    }))
}

fn main() {
    let device = WgpuDevice::default();
    println!("DMIN + gate on wgpu ({RUNS} runs after {WARMUP} warm-up, median)");
    println!("{:>14} {:>12} {:>12} {:>16}", "A: [B, N, C]", "portable", "fused", "fused/portable");
    for [batch, n, channels] in [[1, 4, 1024], [8, 4, 1024], [64, 4, 1024]] {
        let attended: Tensor<Wgpu, 3> = Tensor::random([batch, n, channels], Distribution::Normal(0.0, 1.0), &device);
        let ori: Tensor<Wgpu, 3> = Tensor::random([batch, n, channels], Distribution::Normal(0.0, 1.0), &device);
        let params = DminParams {
            gamma: Tensor::ones([channels], &device),
            beta: Tensor::zeros([channels], &device),
            mean_weight: Tensor::ones([2], &device),
            var_weight: Tensor::ones([2], &device),
        };
        let portable = time(&device, || {
            let gate = sigmoid(dmin_portable(attended.clone(), &params));
            let _ = ori.clone() * gate;
        });
        let fused = time(&device, || {
            let _ = <Wgpu as DminBackend>::dmin_gate(attended.clone(), ori.clone(), params.clone());
        });
        println!(
            "{:>14} {:>10.3}ms {:>10.3}ms {:>16.2}",
            format!("[{batch}, {n}, {channels}]"),
            portable.as_secs_f64() * 1e3,
            fused.as_secs_f64() * 1e3,
            fused.as_secs_f64() / portable.as_secs_f64()
        );
    }
}
