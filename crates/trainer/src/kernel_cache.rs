//! What the GPU runtime (CubeCL) keeps between runs, set by the trainer itself rather than by
//! a `cubecl.toml` in whatever folder it is started from: one cache folder per CubeCL version
//! (CubeCL names the device's folders inside it), so that the second run on a machine compiles
//! and tunes nothing the first one did; and a log of every kernel compilation, so that
//! compilations are counted, not guessed.
//!
//! CUDA keeps its compiled kernels (PTX) there, and every GPU backend its autotune results;
//! wgpu's WGSL pipelines are compiled by the driver in each process (CubeCL 0.10 caches only
//! SPIR-V, which this project does not use).

#[cfg(any(feature = "wgpu", feature = "cuda"))]
use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;

#[cfg(any(feature = "wgpu", feature = "cuda"))]
use burn::cubecl::config::{CubeClRuntimeConfig, RuntimeConfig, cache::CacheConfig, compilation::CompilationLogLevel};

use crate::backend::Device;

/// The CubeCL release the caches belong to (their formats change with it).
pub const CUBECL_VERSION: &str = "0.10.0";

/// Counts the kernels CubeCL compiled in this process, from its compilation log.
pub struct KernelLog {
    path: PathBuf,
}

impl KernelLog {
    /// Kernels compiled so far. CubeCL writes its log from a task of its own: the count is
    /// read again until it stops changing (at most a second).
    pub fn compiled(&self) -> usize {
        let count = || std::fs::read_to_string(&self.path).map_or(0, |log| log.matches("[Compiling kernel]").count());
        let mut last = count();
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(50));
            let now = count();
            if now == last {
                break;
            }
            last = now;
        }
        last
    }
}

impl Drop for KernelLog {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The cache folder: `$M3DFEL_KERNEL_CACHE` if set, else `m3dfel/cubecl/<version>` in the
/// user's cache folder (`$XDG_CACHE_HOME`, else `~/.cache`).
pub fn cache_folder() -> PathBuf {
    if let Some(folder) = std::env::var_os("M3DFEL_KERNEL_CACHE").filter(|f| !f.is_empty()) {
        return PathBuf::from(folder);
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|f| !f.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("m3dfel").join("cubecl").join(CUBECL_VERSION)
}

/// Whether files can be made in `folder` (made if missing).
#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn writable(folder: &Path) -> Result<(), std::io::Error> {
    std::fs::create_dir_all(folder)?;
    let probe = folder.join(format!(".m3dfel-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(probe)
}

/// On a GPU `device`, [`configure`]d caches and the compilations counted; nothing on the CPU.
pub fn for_device(device: Device) -> Option<KernelLog> {
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    if device != Device::Cpu {
        return Some(configure(None));
    }
    let _ = device;
    None
}

/// Points CubeCL's kernel and autotune caches at [`cache_folder`] (or `folder`) and its
/// compilation log at a file of this process. Call before the first GPU call: CubeCL reads
/// its settings once. A folder that cannot be written gets one warning, and this run keeps
/// its caches in a temporary folder.
#[cfg(any(feature = "wgpu", feature = "cuda"))]
pub fn configure(folder: Option<PathBuf>) -> KernelLog {
    let folder = folder.unwrap_or_else(cache_folder);
    let folder = match writable(&folder) {
        Ok(()) => folder,
        Err(error) => {
            let temporary = std::env::temp_dir().join(format!("m3dfel-kernels-{}", std::process::id()));
            eprintln!(
                "warning: the GPU kernel cache {} cannot be written ({error}); this run keeps its kernels in {} \
                 (set M3DFEL_KERNEL_CACHE to a writable folder)",
                folder.display(),
                temporary.display()
            );
            temporary
        }
    };
    let log = std::env::temp_dir().join(format!("m3dfel-compiled-kernels-{}.log", std::process::id()));
    // The settings of a cubecl.toml in the working folder, if any, with ours on top.
    let mut config = CubeClRuntimeConfig::from_current_dir();
    config.compilation.cache = Some(CacheConfig::File(folder.join("compiled")));
    config.autotune.cache = CacheConfig::File(folder.join("autotune"));
    config.compilation.logger.level = CompilationLogLevel::Basic;
    config.compilation.logger.file = Some(log.clone());
    config.compilation.logger.append = false;
    // Set only once per process (a second call, e.g. from a test, keeps the first settings).
    if CubeClRuntimeConfig::storage().lock().is_none() {
        CubeClRuntimeConfig::set(config);
    }
    KernelLog { path: log }
}
