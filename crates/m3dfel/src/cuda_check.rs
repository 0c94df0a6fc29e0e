//! Whether CUDA can run here, checked before a command starts on `--device cuda`.
//!
//! Burn's CUDA runtime needs four things from the machine, and without any of them it panics
//! deep inside its device thread, some only at the first kernel: the NVIDIA driver's
//! `libcuda` (loaded at run time), a GPU the driver can start, NVRTC (`libnvrtc`, CUDA's
//! run-time compiler: every kernel is compiled when first used) and the CUDA toolkit's
//! headers (`cuda_runtime.h`, `crt/mma.h`; from `CUDA_PATH`, `/usr/local/cuda`, `/opt/cuda`,
//! or `/usr` where `nvcc` is in `/usr/bin`). The kernels NVRTC compiles load only on a driver
//! of the same CUDA version or newer. [`check`] asks for each in that order and says what is
//! missing in one line with what to do about it.

use std::fmt;
use std::path::PathBuf;

use cudarc::driver::{result, sys};

/// A CUDA version as the driver and NVRTC report it (13.0, 12.4, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct CudaVersion {
    pub major: u32,
    pub minor: u32,
}

impl CudaVersion {
    /// From the driver's encoding: 1000 × major + 10 × minor (13000 is 13.0).
    fn from_driver(encoded: i32) -> Self {
        let encoded = encoded.max(0) as u32;
        CudaVersion { major: encoded / 1000, minor: encoded % 1000 / 10 }
    }
}

impl fmt::Display for CudaVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// One GPU as the driver names it.
#[derive(Debug, Clone)]
pub struct Gpu {
    pub name: String,
    pub memory_bytes: u64,
}

/// What [`check`] found: everything Burn's CUDA runtime needs.
#[derive(Debug, Clone)]
pub struct CudaSetup {
    /// Every GPU the driver shows, device 0 first.
    pub gpus: Vec<Gpu>,
    /// The newest CUDA the driver runs.
    pub driver: CudaVersion,
    /// The NVRTC that compiles the kernels.
    pub nvrtc: CudaVersion,
    /// The toolkit's header folder the kernels are compiled with.
    pub headers: PathBuf,
}

impl fmt::Display for CudaSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let gpus: Vec<String> = self
            .gpus
            .iter()
            .enumerate()
            .map(|(index, gpu)| format!("GPU {index}: {} ({})", gpu.name, bytesize::ByteSize(gpu.memory_bytes)))
            .collect();
        write!(
            f,
            "CUDA: {}; driver for CUDA {}, kernels compiled by NVRTC {} with the headers in {}",
            gpus.join(", "),
            self.driver,
            self.nvrtc,
            self.headers.display()
        )
    }
}

/// Why CUDA cannot run here. Each message is one line that ends with what to do.
#[derive(Debug, thiserror::Error)]
pub enum CudaUnavailable {
    #[error(
        "no NVIDIA driver found: CUDA's driver library (libcuda.so, installed with the NVIDIA driver) could not be \
         loaded. Install the NVIDIA driver, or run on the CPU with `--device cpu`"
    )]
    NoDriver,
    #[error(
        "the NVIDIA driver found no GPU{}. Check that `nvidia-smi` lists one, or run on the CPU with `--device cpu`",
        visible_devices()
    )]
    NoGpu,
    #[error(
        "the NVIDIA driver could not start CUDA: {name} ({description}). {advice}, or run on the CPU with `--device cpu`"
    )]
    DriverFailed { name: String, description: String, advice: &'static str },
    #[error(
        "{wanted} GPUs are needed (one per replica) and CUDA sees {found}{}: give --replicas {found} or fewer",
        visible_devices()
    )]
    TooFewGpus { wanted: usize, found: usize },
    #[error(
        "CUDA's run-time compiler NVRTC was not found ({names} on the library path): \
         Burn compiles every GPU kernel with it when first used. It comes with the CUDA toolkit (lib64) or \
         PyTorch's nvidia-cuda-nvrtc package: name its folder in LD_LIBRARY_PATH, or run on the CPU with `--device cpu`"
    )]
    NoNvrtc { names: String },
    #[error(
        "NVRTC {nvrtc} is newer than the NVIDIA driver (CUDA {driver}): the kernels it compiles would not load. \
         Update the NVIDIA driver, or name the folder of an NVRTC of CUDA {driver} or older first in \
         LD_LIBRARY_PATH; or run on the CPU with `--device cpu`"
    )]
    NvrtcNewerThanDriver { nvrtc: CudaVersion, driver: CudaVersion },
    #[error(
        "the CUDA toolkit's headers were not found ({looked}): Burn compiles every GPU kernel when first used, \
         and they include cuda_runtime.h and (the tensor-core ones) mma.h with crt/mma.h. Install the CUDA \
         toolkit, or set CUDA_PATH to a folder whose include/ has them (PyTorch's CUDA 13 wheels: \
         site-packages/nvidia/cu13, after `pip install nvidia-cuda-crt` of nvidia-cuda-runtime's version); \
         or run on the CPU with `--device cpu`"
    )]
    NoHeaders { looked: String },
}

/// `" with CUDA_VISIBLE_DEVICES=…"` when that variable narrows what the driver shows.
fn visible_devices() -> String {
    std::env::var("CUDA_VISIBLE_DEVICES").map(|value| format!(" with CUDA_VISIBLE_DEVICES={value:?}")).unwrap_or_default()
}

/// Checks that CUDA can run on `gpus` devices here (devices 0 to `gpus` − 1), and returns
/// what it found. Cheap (loads the two libraries and asks the driver); call it before the first
/// CUDA tensor.
pub fn check(gpus: usize) -> Result<CudaSetup, CudaUnavailable> {
    // SAFETY: only loads the library (dlopen) by the names cudarc itself uses.
    if !unsafe { sys::is_culib_present() } {
        return Err(CudaUnavailable::NoDriver);
    }
    result::init().map_err(driver_failed)?;
    let found = result::device::get_count().map_err(driver_failed)?.max(0) as usize;
    if found == 0 {
        return Err(CudaUnavailable::NoGpu);
    }
    if found < gpus {
        return Err(CudaUnavailable::TooFewGpus { wanted: gpus, found });
    }
    let described = (0..found).map(describe_gpu).collect::<Result<Vec<_>, _>>().map_err(driver_failed)?;
    let mut encoded = 0;
    // SAFETY: the driver writes one integer.
    unsafe { sys::cuDriverGetVersion(&mut encoded) }.result().map_err(driver_failed)?;
    let driver = CudaVersion::from_driver(encoded);

    let (mut major, mut minor) = (0, 0);
    // SAFETY: NVRTC writes two integers (once it is loaded, by the names cudarc uses).
    let loaded = unsafe { cudarc::nvrtc::sys::is_culib_present() }
        && unsafe { cudarc::nvrtc::sys::nvrtcVersion(&mut major, &mut minor) }.result().is_ok();
    if !loaded {
        let names = cudarc::get_lib_name_candidates("nvrtc");
        let names: Vec<&str> = names.iter().map(String::as_str).filter(|name| name.contains(".so")).take(2).collect();
        return Err(CudaUnavailable::NoNvrtc { names: names.join(" or ") });
    }
    let nvrtc = CudaVersion { major: major.max(0) as u32, minor: minor.max(0) as u32 };
    if nvrtc > driver {
        return Err(CudaUnavailable::NvrtcNewerThanDriver { nvrtc, driver });
    }

    let headers = headers()?;
    Ok(CudaSetup { gpus: described, driver, nvrtc, headers })
}

fn describe_gpu(index: usize) -> Result<Gpu, result::DriverError> {
    let device = result::device::get(index as i32)?;
    let name = result::device::get_name(device)?;
    // SAFETY: `device` is a device handle the driver just gave.
    let memory_bytes = unsafe { result::device::total_mem(device) }? as u64;
    Ok(Gpu { name, memory_bytes })
}

/// The driver's own name and words for an error, and what a person can do about it.
fn driver_failed(error: result::DriverError) -> CudaUnavailable {
    if error.0 == sys::CUresult::CUDA_ERROR_NO_DEVICE {
        return CudaUnavailable::NoGpu;
    }
    let text = |got: Result<&std::ffi::CStr, _>| got.map(|text| text.to_string_lossy().into_owned());
    let name = text(error.error_name()).unwrap_or_else(|_| format!("CUDA error {}", error.0 as i32));
    let description = text(error.error_string()).unwrap_or_else(|_| "no description from the driver".into());
    let advice = match error.0 {
        sys::CUresult::CUDA_ERROR_SYSTEM_DRIVER_MISMATCH
        | sys::CUresult::CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE => {
            "Update the NVIDIA driver (its kernel module and libraries must be of one version)"
        }
        _ => "Check that `nvidia-smi` lists the GPU",
    };
    CudaUnavailable::DriverFailed { name, description, advice }
}

/// The headers Burn's CUDA kernels include from the toolkit: every kernel `cuda_runtime.h`, the
/// tensor-core ones `mma.h`, which includes `crt/mma.h`. Measured (2026-12-07, NVRTC 13.2 and
/// the null driver of `scripts/cuda-kernels.sh`): with PyTorch's CUDA 13 wheels alone, which
/// have `cuda_runtime.h` and `mma.h` but no `crt/`, 240 kernels of a training step compiled and
/// the first tensor-core matrix product did not ("cannot open source file crt/mma.h").
const HEADERS: [&str; 2] = ["cuda_runtime.h", "crt/mma.h"];

/// The toolkit's header folder, where Burn's CUDA runtime looks for it.
fn headers() -> Result<PathBuf, CudaUnavailable> {
    let Some(root) = cubecl_cuda::install::cuda_path() else {
        return Err(CudaUnavailable::NoHeaders {
            looked: "CUDA_PATH is not set, and none of /usr/local/cuda, /opt/cuda, /usr/bin/nvcc exists".into(),
        });
    };
    let include = root.join("include");
    let missing: Vec<String> =
        HEADERS.iter().filter(|header| !include.join(header).is_file()).map(|header| format!("include/{header}")).collect();
    if missing.is_empty() {
        return Ok(include);
    }
    let root = match std::env::var_os("CUDA_PATH") {
        Some(_) => format!("CUDA_PATH={}, which", root.display()),
        None => root.display().to_string(),
    };
    Err(CudaUnavailable::NoHeaders { looked: format!("{root} has no {}", missing.join(" and no ")) })
}
