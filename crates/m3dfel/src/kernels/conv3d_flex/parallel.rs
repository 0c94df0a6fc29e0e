//! How the CPU kernels use the threads: Rayon's pool natively; WebAssembly here has no
//! threads, so there the same parts run one after another on the calling thread.

/// Threads the kernels spread their work over.
pub(super) fn threads() -> usize {
    #[cfg(not(target_arch = "wasm32"))]
    return rayon::current_num_threads();
    #[cfg(target_arch = "wasm32")]
    1
}

/// `work` applied to every part, the parts spread over the threads; the results in the
/// parts' order.
pub(super) fn map_parts<P: Send, R: Send>(parts: Vec<P>, work: impl Fn(P) -> R + Sync + Send) -> Vec<R> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use rayon::prelude::*;
        parts.into_par_iter().map(work).collect()
    }
    #[cfg(target_arch = "wasm32")]
    parts.into_iter().map(work).collect()
}

/// An output buffer shared by parts that write disjoint places of it.
#[derive(Clone, Copy)]
pub(super) struct SharedOutput(pub *mut f32);
// SAFETY: its users write disjoint places (each user states which).
unsafe impl Send for SharedOutput {}
unsafe impl Sync for SharedOutput {}

impl SharedOutput {
    /// The pointer; a method, so that a closure using it captures the whole (`Sync`) wrapper
    /// rather than the raw pointer field.
    pub(super) fn pointer(self) -> *mut f32 {
        self.0
    }
}
