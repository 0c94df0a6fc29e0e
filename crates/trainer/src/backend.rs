//! Choosing the compute backend at run time.

use burn::tensor::backend::Backend;
use burn::tensor::{Element, FloatDType};
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

impl Device {
    /// The default `--device`: CUDA in builds with `--features cuda` (`cargo run -p trainer
    /// --features cuda` trains on the GPU), the CPU otherwise.
    pub fn for_this_build() -> Self {
        if cfg!(feature = "cuda") { Device::Cuda } else { Device::Cpu }
    }

    /// Whether `replicas` devices of this kind can train together, checked before anything
    /// runs: Burn 0.21's CubeCL runtimes copy every tensor between two GPUs with collective
    /// communication (`to_client_tensor`: NCCL's send and receive on CUDA), which its wgpu
    /// runtime does not have (it would stop at the first copy), and which on CUDA needs
    /// NVIDIA's NCCL library, loaded at run time; and on CUDA, a GPU for each replica.
    pub fn check_replicas(self, replicas: usize) -> anyhow::Result<()> {
        match self {
            _ if replicas <= 1 => Ok(()),
            Device::Cpu => Ok(()),
            Device::Wgpu => anyhow::bail!(
                "--replicas {replicas}: training on several GPUs needs --device cuda (Burn 0.21 cannot copy \
                 tensors between wgpu devices); use --replicas 1 with --device wgpu"
            ),
            Device::Cuda => several_gpus(replicas),
        }
    }
}

/// As many GPUs as replicas, and NCCL as cudarc (Burn's CUDA bindings) loads it:
/// `libnccl.so`, `libnccl.so.<CUDA major>` and a few other names on the library path.
/// PyTorch's wheels ship only `libnccl.so.2`.
#[cfg(feature = "cuda")]
fn several_gpus(replicas: usize) -> anyhow::Result<()> {
    m3dfel::cuda_check::check(replicas)?;
    // SAFETY: only tries to load the library (dlopen), as cudarc itself does on first use.
    if unsafe { cudarc::nccl::sys::is_culib_present() } {
        return Ok(());
    }
    anyhow::bail!(
        "--replicas {replicas}: training on several GPUs needs NVIDIA's NCCL library (Burn copies tensors \
         between GPUs with it), and none was found under the names {} on the library path. Install \
         NCCL (e.g. the libnccl2 package), or link PyTorch's copy (site-packages/nvidia/nccl/lib/libnccl.so.2) \
         as libnccl.so in a folder named in LD_LIBRARY_PATH; or train on one GPU with --replicas 1",
        cudarc::get_lib_name_candidates("nccl").join(", ")
    )
}

/// Without the `cuda` feature `--device cuda` is refused before replicas matter.
#[cfg(not(feature = "cuda"))]
fn several_gpus(_replicas: usize) -> anyhow::Result<()> {
    Ok(())
}

/// Who chooses the GPU kernels of the backbone's convolutions (wgpu and CUDA).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GpuKernels {
    /// The project: one kernel per layer, chosen from what the GPU can do; nothing is
    /// compiled or timed beyond it (the default).
    Fixed,
    /// Burn's autotuner: every candidate compiled and timed for every layer shape, which can
    /// take minutes before the first step (builds with `--features autotune`).
    Autotune,
}

impl GpuKernels {
    /// Makes this the choice for every later GPU convolution of the process.
    pub fn apply(self, device: Device) -> anyhow::Result<()> {
        if device == Device::Cpu {
            return Ok(());
        }
        #[cfg(any(feature = "wgpu", feature = "cuda"))]
        {
            use m3dfel::kernels::conv3d_cubecl::{GpuKernels as Kernels, set_gpu_kernels};
            set_gpu_kernels(match self {
                GpuKernels::Fixed => Kernels::Fixed,
                GpuKernels::Autotune => Kernels::Autotune,
            })?;
        }
        Ok(())
    }
}

/// The floating-point type of every tensor: weights, activations, gradients, optimizer state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ComputePrecision {
    /// 32-bit floats (the default, as in the authors' code).
    F32,
    /// bfloat16 throughout (Burn 0.21 has no autocast, so there are no f32 master weights:
    /// an update smaller than 1/256 of a weight is lost). For GPUs; the CPU converts to f32.
    Bf16,
    /// IEEE half throughout, without loss scaling (small gradients can underflow).
    F16,
}

impl ComputePrecision {
    /// Makes this the float type of every tensor created afterwards on `devices`.
    /// Call it before anything is created on them (Burn fixes a device's types at first use).
    pub fn apply<B: Backend>(self, devices: &[B::Device]) -> anyhow::Result<()> {
        let float = match self {
            ComputePrecision::F32 => return Ok(()),
            ComputePrecision::Bf16 => FloatDType::BF16,
            ComputePrecision::F16 => FloatDType::F16,
        };
        let int = <B::IntElem as Element>::dtype();
        let mut done: Vec<&B::Device> = Vec::new();
        for device in devices.iter() {
            if done.contains(&device) {
                continue;
            }
            burn::tensor::set_default_dtypes::<B>(device, float, int).map_err(|error| {
                anyhow::anyhow!("--precision {}: {error} (f32 works everywhere)", format!("{self:?}").to_lowercase())
            })?;
            done.push(device);
        }
        Ok(())
    }
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
            $crate::backend::Device::Cuda => match m3dfel::cuda_check::check(1) {
                // Burn's CUDA runtime panics on its device thread for what the check finds
                // missing, some of it only at the first kernel: say it first, in one line.
                Err(unavailable) => Err(anyhow::Error::new(unavailable)),
                Ok(setup) => {
                    println!("{setup}");
                    type $B = burn::backend::Autodiff<burn::backend::Cuda>;
                    let $dev = |index: usize| burn::backend::cuda::CudaDevice::new(index);
                    $body
                }
            },
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

#[cfg(test)]
mod tests {
    use super::Device;

    #[test]
    fn several_wgpu_replicas_are_refused_before_anything_runs() {
        let error = Device::Wgpu.check_replicas(2).unwrap_err().to_string();
        assert!(error.contains("--replicas 2") && error.contains("--device cuda"), "{error}");
        assert!(Device::Wgpu.check_replicas(1).is_ok());
        assert!(Device::Cpu.check_replicas(4).is_ok(), "CPU replicas are threads");
    }
}
