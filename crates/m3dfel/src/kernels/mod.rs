//! Hand-written kernels that replace portable tensor-op code on specific backends: the
//! backbone's convolution on the CPU (Flex) and DMIN on wgpu, whose WGSL source lives in the
//! repository's `shaders/` folder.

pub mod conv3d_flex;

#[cfg(feature = "wgpu")]
pub mod dmin_wgpu;
