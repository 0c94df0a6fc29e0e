//! How the CPU kernels use the threads: Rayon's pool, natively and in the browser package's
//! threaded build (Web Workers). In WebAssembly without threads Rayon runs every part on
//! the calling thread.

/// Threads the kernels spread their work over.
pub(crate) fn threads() -> usize {
    rayon::current_num_threads()
}

/// `work` applied to every part, the parts spread over the threads; the results in the
/// parts' order.
pub(crate) fn map_parts<P: Send, R: Send>(parts: Vec<P>, work: impl Fn(P) -> R + Sync + Send) -> Vec<R> {
    use rayon::prelude::*;
    parts.into_par_iter().map(work).collect()
}

/// An output buffer shared by parts that write disjoint places of it.
#[derive(Clone, Copy)]
pub(crate) struct SharedOutput(pub *mut f32);
// SAFETY: its users write disjoint places (each user states which).
unsafe impl Send for SharedOutput {}
unsafe impl Sync for SharedOutput {}

impl SharedOutput {
    /// The pointer; a method, so that a closure using it captures the whole (`Sync`) wrapper
    /// rather than the raw pointer field.
    pub(crate) fn pointer(self) -> *mut f32 {
        self.0
    }
}
