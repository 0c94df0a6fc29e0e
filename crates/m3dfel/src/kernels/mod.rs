//! Hand-written GPU kernels that replace portable tensor-op code on specific backends.
//! The WGSL sources live in the repository's `shaders/` folder.

#[cfg(feature = "wgpu")]
pub mod dmin_wgpu;
