//! Choosing the compute backend at run time.

use clap::ValueEnum;

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Device {
    /// Burn's `flex` CPU backend (multi-threaded).
    Cpu,
    /// WebGPU/Vulkan/Metal through wgpu (uses the project's WGSL kernels).
    Wgpu,
    /// NVIDIA CUDA (only in builds with `--features cuda`).
    Cuda,
}

/// Calls `$body` with the type alias `$B` bound to the backend chosen by `$device`
/// and `$dev` bound to its device value.
#[macro_export]
macro_rules! with_backend {
    ($device:expr, |$B:ident, $dev:ident| $body:expr) => {
        match $device {
            $crate::backend::Device::Cpu => {
                type $B = burn::backend::Flex;
                let $dev = Default::default();
                $body
            }
            $crate::backend::Device::Wgpu => {
                type $B = burn::backend::Wgpu;
                let $dev = burn::backend::wgpu::WgpuDevice::default();
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::backend::Device::Cuda => match m3dfel::cuda_check::check(1) {
                // Burn's CUDA runtime panics on its device thread for what the check finds
                // missing, some of it only at the first kernel: say it first, in one line.
                Err(unavailable) => Err(anyhow::Error::new(unavailable)),
                Ok(_) => {
                    type $B = burn::backend::Cuda;
                    let $dev = burn::backend::cuda::CudaDevice::default();
                    $body
                }
            },
            #[cfg(not(feature = "cuda"))]
            $crate::backend::Device::Cuda => Err(anyhow::anyhow!(
                "this m3dfel was built without CUDA; rebuild with `cargo build --release --bin m3dfel --features cuda`"
            )),
        }
    };
}
