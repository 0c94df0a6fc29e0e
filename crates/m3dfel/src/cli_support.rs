//! Helpers shared by the command-line programs (`m3dfel`, `trainer`).

/// Groups the digits of a count by thousands: 46823384 → "46,823,384".
///
/// ```
/// assert_eq!(m3dfel::cli_support::group_thousands(738576), "738,576");
/// ```
pub fn group_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Compute backends report an unusable device (no CUDA driver, no GPU adapter) by panicking,
/// often on a worker thread. Turn that into one readable line and a non-zero exit.
pub fn report_panics_as_errors() {
    std::panic::set_hook(Box::new(|info| {
        if crate::reader_panics::caught() {
            return; // a reader's panic on a damaged file, reported as an error naming it
        }
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("unknown failure");
        // The first sentence, without the long lists some backends append after " - ".
        let first_sentence = message.split(". ").next().and_then(|s| s.split(" - ").next()).unwrap_or(message);
        eprintln!(
            "error: the compute backend failed: {first_sentence} \
             (try `--device cpu`; set RUST_BACKTRACE=1 and report it if the device should work)"
        );
        if std::env::var_os("RUST_BACKTRACE").is_some() {
            eprintln!("{}", std::backtrace::Backtrace::force_capture());
        }
        std::process::exit(3);
    }));
}

/// Keeps freed memory for reuse (glibc on Linux; nothing elsewhere). Call first in `main`,
/// before any thread starts.
///
/// A training step, and each clip `m3dfel predict` classifies, allocates and frees hundreds
/// of large activation (and gradient) buffers. glibc's default hands every buffer above its
/// mmap threshold back to the kernel on free, so the next step page-faults the same memory
/// in again (zeroed by the kernel): a sixth of a CPU training step in `perf`
/// (BENCHMARKS.md). Raising the threshold to its 32 MiB maximum, keeping freed heap and
/// growing the heap in 512 MiB steps made the small preset's batch-8 training step
/// 16.1 s → 12.0 s on the 2-core CI machine; `m3dfel predict` of 8 paper clips, weights
/// loaded included, page-faults 14 % less with it (358 k → 307 k minor faults; 1.97–2.00 →
/// 1.90–2.00 s, 2026-12-03, Intel Xeon, 2 cores).
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, libc::c_int::MAX);
        libc::mallopt(libc::M_TOP_PAD, 512 << 20);
    }
}
