//! Hand-written kernels that replace portable tensor-op code on specific backends: the
//! backbone's convolution on the CPU (Flex) and on Burn's GPU backends (CubeCL: kernels
//! the project chooses, not Burn's autotuner), and DMIN on wgpu, whose WGSL source lives in the
//! repository's `shaders/` folder; and what the CPU kernels share: vector instructions
//! ([`simd`]), matrix products ([`matmul`], also the face detector's) and the threads
//! ([`parallel`]).

#[cfg(any(feature = "wgpu", feature = "cuda"))]
pub mod conv3d_cubecl;
pub mod conv3d_flex;
pub(crate) mod matmul;
pub(crate) mod parallel;
pub(crate) mod simd;

#[cfg(feature = "wgpu")]
pub mod dmin_wgpu;
