//! Keeping freed memory for reuse while training on the CPU.
//!
//! Each training step allocates and frees hundreds of large activation and gradient
//! buffers. glibc's default hands every buffer above its mmap threshold back to the kernel
//! on free, so the next step page-faults the same memory in again (zeroed by the kernel):
//! a sixth of a CPU training step in `perf` (BENCHMARKS.md). Raising the threshold to its
//! 32 MiB maximum, keeping up to 2 GiB of freed heap and growing the heap in 512 MiB steps made
//! the small preset's batch-8 step 16.1 s → 12.0 s on the 2-core CI machine.

/// Tunes glibc's allocator as above; does nothing elsewhere.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
        libc::mallopt(libc::M_TOP_PAD, 512 << 20);
    }
}
