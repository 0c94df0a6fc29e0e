//! Helpers shared by the command-line programs (`m3dfel`, `trainer`).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

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

/// What the running command tells a person whose GPU ran out of memory: which of its own
/// settings to change, and to what (the trainer: `--accumulation`). Set by the command once
/// its settings are known; [`report_panics_as_errors`] prints it.
static OUT_OF_MEMORY_ADVICE: Mutex<Option<String>> = Mutex::new(None);

/// Makes `advice` (whole sentences) the end of the error a GPU out of memory becomes (replacing the
/// previous one).
pub fn advise_when_out_of_memory(advice: impl Into<String>) {
    *OUT_OF_MEMORY_ADVICE.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(advice.into());
}

/// Compute backends report an unusable device (no CUDA driver, no GPU adapter) and a full GPU
/// by panicking, often on their device thread. Turn that into one readable line and a
/// non-zero exit; a GPU out of memory gets the running command's advice
/// ([`advise_when_out_of_memory`]).
pub fn report_panics_as_errors() {
    std::panic::set_hook(Box::new(|info| {
        if crate::reader_panics::caught() {
            return; // a reader's panic on a damaged file, reported as an error naming it
        }
        // A device thread's panic often makes the threads waiting on it panic too: the first
        // reports and ends the process, the others wait for that.
        static REPORTED: AtomicBool = AtomicBool::new(false);
        if REPORTED.swap(true, Ordering::SeqCst) {
            loop {
                std::thread::park();
            }
        }
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("unknown failure");
        if std::io::stderr().is_terminal() {
            eprint!("\r\x1b[2K"); // over a progress bar's line
        }
        let advice = OUT_OF_MEMORY_ADVICE.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        match out_of_memory(message, advice.as_deref()) {
            Some(line) => eprintln!("error: {line}"),
            None => {
                eprintln!(
                    "error: the compute backend failed: {} \
                     (try `--device cpu`; set RUST_BACKTRACE=1 and report it if the device should work)",
                    backend_failure(message)
                );
            }
        }
        if std::env::var_os("RUST_BACKTRACE").is_some() {
            eprintln!("the whole message:\n{message}\n{}", std::backtrace::Backtrace::force_capture());
        }
        std::process::exit(3);
    }));
}

/// A backend's panic `message` in a few words: the first sentence of its first line, without
/// the long lists some backends append after " - ", and, where CubeCL's errors nest causes
/// below it ("…\nCaused by:\n  reason\n…"), the innermost cause's first line, which is what
/// names the failing CUDA or wgpu call or the compiler's error.
fn backend_failure(message: &str) -> String {
    let sentence = |line: &str| line.split(". ").next().and_then(|s| s.split(" - ").next()).unwrap_or(line).trim().to_string();
    let first = sentence(message.lines().next().unwrap_or(message));
    let lines: Vec<&str> = message.lines().collect();
    let innermost = lines.iter().rposition(|line| line.trim() == "Caused by:").and_then(|at| {
        // A compiler's log starts on the line after its "[Compilation Error]" heading.
        lines[at + 1..].iter().map(|line| line.trim().trim_start_matches("[Compilation Error]").trim()).find(|line| !line.is_empty())
    });
    match innermost {
        Some(cause) => format!("{first}: {}", sentence(cause)),
        None => first,
    }
}

/// The error line for a backend's panic `message` when it says the GPU is out of memory:
/// CubeCL (CUDA and wgpu alike) unwraps `IoError::BufferTooBig` ("can't allocate buffer of
/// size: N") where it reserves a tensor's memory; CUDA's own code is `CUDA_ERROR_OUT_OF_MEMORY`.
fn out_of_memory(message: &str, advice: Option<&str>) -> Option<String> {
    const TOO_BIG: &str = "can't allocate buffer of size: ";
    let size = message.find(TOO_BIG).map(|at| {
        let digits: String = message[at + TOO_BIG.len()..].chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u64>().ok()
    });
    let lower = message.to_lowercase();
    if size.is_none() && !["out of memory", "out-of-memory", "out_of_memory"].iter().any(|s| lower.contains(s)) {
        return None;
    }
    let what = match size.flatten() {
        Some(bytes) => format!("it could not allocate {} more for one tensor", bytesize::ByteSize(bytes).display().si()),
        None => "it could not allocate memory".to_string(),
    };
    let advice = advice.unwrap_or("Use `--device cpu`, or a GPU with more memory.");
    Some(format!("out of GPU memory: {what}. {advice}"))
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

#[cfg(test)]
mod tests {
    use super::out_of_memory;

    #[test]
    fn a_backend_failure_keeps_the_innermost_cause_cubecl_gives_below_it() {
        let launch = "Error while reading data: An error happened during execution\nCaused by:\n  Unable to load the PTX: DriverError(CUDA_ERROR_UNSUPPORTED_PTX_VERSION, \"the provided PTX was compiled with an unsupported toolchain.\")\nBacktrace:\n  0: foo\n";
        assert_eq!(
            super::backend_failure(launch),
            "Error while reading data: An error happened during execution: Unable to load the PTX: DriverError(CUDA_ERROR_UNSUPPORTED_PTX_VERSION, \"the provided PTX was compiled with an unsupported toolchain.\")"
        );
        let compilation = "Error while reading data: An error happened during execution\nCaused by:\n  The server is in an invalid state\nCaused by:\n  [Launch(A compilation error happened during launch\nCaused by:\n  [Compilation Error] \n    include/crt/mma.h(1): error: #error directive: broken\n    1 error detected\n[Source]\n";
        assert_eq!(
            super::backend_failure(compilation),
            "Error while reading data: An error happened during execution: include/crt/mma.h(1): error: #error directive: broken"
        );
        let adapter = "No possible adapter available for backend. Falling back to first available.\nmore";
        assert_eq!(super::backend_failure(adapter), "No possible adapter available for backend");
    }

    #[test]
    fn a_full_gpu_becomes_one_line_with_the_commands_advice() {
        // As CubeCL's wgpu server panicked on lavapipe (trainer --batch-size 64 --frame-size 112).
        let wgpu = "called `Result::unwrap()` on an `Err` value: can't allocate buffer of size: 154140672\nNo backtrace available";
        assert_eq!(
            out_of_memory(wgpu, Some("Try --accumulation 2.")).as_deref(),
            Some("out of GPU memory: it could not allocate 154.1 MB more for one tensor. Try --accumulation 2.")
        );
        let launch = "An out-of-memory error happened during launch\nCaused by:\n  CUDA_ERROR_OUT_OF_MEMORY\nBacktrace\n";
        let line = out_of_memory(launch, None).expect("recognized");
        assert!(line.starts_with("out of GPU memory: it could not allocate memory.") && line.contains("--device cpu"), "{line}");
        assert!(!line.contains('\n'), "one line: {line}");
        assert_eq!(out_of_memory("No possible adapter available for backend", None), None);
    }
}
