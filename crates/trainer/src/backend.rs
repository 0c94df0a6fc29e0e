//! Choosing the compute backend at run time.

use clap::ValueEnum;

/// Where training runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Device {
    /// Burn's `flex` CPU backend (multi-threaded; the default).
    Cpu,
    /// wgpu: Vulkan/Metal/DX12 (only in builds with `--features wgpu`).
    Wgpu,
    /// NVIDIA CUDA (only in builds with `--features cuda`).
    Cuda,
}

/// Calls `$body` with `$B` bound to the autodiff backend chosen by `$device` and `$dev`
/// to a function from a device number (0, 1, …: GPUs; the CPU has only one) to the device.
#[macro_export]
macro_rules! with_autodiff_backend {
    ($device:expr, |$B:ident, $dev:ident| $body:expr) => {
        match $device {
            $crate::backend::Device::Cpu => {
                type $B = burn::backend::Autodiff<burn::backend::Flex>;
                let $dev = |_: usize| Default::default();
                $body
            }
            #[cfg(feature = "wgpu")]
            $crate::backend::Device::Wgpu => {
                type $B = burn::backend::Autodiff<burn::backend::Wgpu>;
                let $dev = |index: usize| match index {
                    0 => burn::backend::wgpu::WgpuDevice::default(),
                    n => burn::backend::wgpu::WgpuDevice::DiscreteGpu(n),
                };
                $body
            }
            #[cfg(feature = "cuda")]
            $crate::backend::Device::Cuda => {
                type $B = burn::backend::Autodiff<burn::backend::Cuda>;
                let $dev = |index: usize| burn::backend::cuda::CudaDevice::new(index);
                $body
            }
            #[allow(unreachable_patterns)]
            other => {
                let name = format!("{other:?}").to_lowercase();
                Err(anyhow::anyhow!(
                    "this trainer was built without {name} support; rebuild with `cargo build --release -p trainer --features {name}`"
                ))
            }
        }
    };
}
