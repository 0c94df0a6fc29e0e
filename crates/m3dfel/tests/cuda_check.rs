//! `cuda_check` against what a machine can lack: each case runs in a process of its own
//! (the CUDA libraries are loaded once per process), on the library path this test chooses.
//! The driver and NVRTC are stand-ins built here with the C compiler: the null CUDA driver of
//! `scripts/null-cuda/` and a one-function NVRTC, shared libraries that export the CUDA
//! functions the check calls, with the documented signatures, answering as the environment
//! tells them (a missing GPU, a mismatched driver, an NVRTC newer than the driver); the case
//! "no driver at all" uses the real loader on this machine, where none is.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The project's null CUDA driver, answering as `NULLCUDA_*` variables tell it.
const NULL_DRIVER: &str = include_str!("../../../scripts/null-cuda/libcuda.c");

const FAKE_NVRTC: &str = r#"
#include <stdlib.h>
static int from_env(const char *name, int fallback) { const char *v = getenv(name); return v ? atoi(v) : fallback; }
int nvrtcVersion(int *major, int *minor) {
    *major = from_env("FAKE_NVRTC_MAJOR", 13); *minor = from_env("FAKE_NVRTC_MINOR", 0); return 0;
}
"#;

/// Folders of stand-in libraries, built once per run in Cargo's folder for test files: the
/// driver alone, and the driver with NVRTC.
struct StandIns {
    driver: PathBuf,
    driver_and_nvrtc: PathBuf,
    /// A CUDA_PATH with the headers the kernels include (stand-ins too).
    toolkit: PathBuf,
}

fn stand_ins() -> &'static StandIns {
    static BUILT: OnceLock<StandIns> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cuda_check");
        let driver = root.join("driver");
        let driver_and_nvrtc = root.join("driver-and-nvrtc");
        let toolkit = root.join("toolkit");
        for folder in [&driver, &driver_and_nvrtc, &toolkit.join("include/crt")] {
            std::fs::create_dir_all(folder).unwrap();
        }
        for header in ["cuda_runtime.h", "mma.h", "crt/mma.h"] {
            std::fs::write(toolkit.join("include").join(header), "// stand-in\n").unwrap();
        }
        compile(NULL_DRIVER, &driver.join("libcuda.so"));
        compile(NULL_DRIVER, &driver_and_nvrtc.join("libcuda.so"));
        compile(FAKE_NVRTC, &driver_and_nvrtc.join("libnvrtc.so"));
        StandIns { driver, driver_and_nvrtc, toolkit }
    })
}

fn compile(source: &str, library: &Path) {
    let c = library.with_extension("c");
    std::fs::write(&c, source).unwrap();
    let status = Command::new("cc").args(["-shared", "-fPIC", "-o"]).arg(library).arg(&c).status().expect("running cc");
    assert!(status.success(), "cc could not build {}", library.display());
}

/// Whether this machine's loader finds a library by `name` without the test's folders.
fn installed(name: &str) -> bool {
    let listed = Command::new("ldconfig").arg("-p").output().or_else(|_| Command::new("/sbin/ldconfig").arg("-p").output());
    listed.is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains(name))
}

/// Runs `cuda_check::check(gpus)` in a new process with `LD_LIBRARY_PATH=libraries` and the
/// environment `vars`; returns its answer: `Ok(setup line)` or `Err(message)`.
fn check_in_a_process(libraries: &Path, gpus: usize, vars: &[(&str, &str)]) -> Result<String, String> {
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args(["--ignored", "--exact", "check_in_this_process", "--nocapture", "--test-threads", "1"])
        .env("LD_LIBRARY_PATH", libraries)
        .env("CHECK_GPUS", gpus.to_string())
        .env("CUDA_PATH", &stand_ins().toolkit)
        .env_remove("CUDA_VISIBLE_DEVICES");
    for (name, value) in vars {
        child.env(name, value);
    }
    let out = child.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find_map(|line| line.split_once("CHECK ").map(|(_, answer)| answer)).unwrap_or_else(|| {
        panic!("the check's process printed no answer:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr))
    });
    match line.split_once(": ") {
        Some(("ok", setup)) => Ok(setup.to_string()),
        Some(("error", message)) => Err(message.to_string()),
        _ => panic!("unexpected answer {line:?}"),
    }
}

#[test]
#[ignore = "run by the other tests, each time in a process of its own"]
fn check_in_this_process() {
    let gpus = std::env::var("CHECK_GPUS").map_or(1, |n| n.parse().unwrap());
    match m3dfel::cuda_check::check(gpus) {
        Ok(setup) => println!("CHECK ok: {setup}"),
        Err(error) => println!("CHECK error: {error}"),
    }
}

fn assert_says(message: &str, words: &[&str]) {
    for word in words {
        assert!(message.contains(word), "{word:?} missing from: {message}");
    }
    assert!(!message.contains('\n'), "more than one line: {message}");
}

#[test]
fn without_the_nvidia_driver_it_says_so_and_names_the_cpu() {
    if installed("libcuda.so") {
        eprintln!("skipped: this machine has an NVIDIA driver");
        return;
    }
    let empty = tempfile::tempdir().unwrap();
    let message = check_in_a_process(empty.path(), 1, &[]).unwrap_err();
    assert_says(&message, &["no NVIDIA driver found", "libcuda.so", "--device cpu"]);
}

#[test]
fn a_driver_without_a_gpu_says_no_gpu_and_what_hides_them() {
    let stand_ins = stand_ins();
    let message = check_in_a_process(&stand_ins.driver_and_nvrtc, 1, &[("NULLCUDA_INIT", "100")]).unwrap_err();
    assert_says(&message, &["found no GPU", "nvidia-smi", "--device cpu"]);
    assert!(!message.contains("CUDA_VISIBLE_DEVICES"), "{message}");
    let message = check_in_a_process(
        &stand_ins.driver_and_nvrtc,
        1,
        &[("NULLCUDA_INIT", "100"), ("CUDA_VISIBLE_DEVICES", "")],
    )
    .unwrap_err();
    assert_says(&message, &["found no GPU with CUDA_VISIBLE_DEVICES=\"\"", "--device cpu"]);
}

#[test]
fn a_driver_that_cannot_start_gives_its_own_words_and_the_fix() {
    let libraries = &stand_ins().driver_and_nvrtc;
    let message = check_in_a_process(libraries, 1, &[("NULLCUDA_INIT", "803")]).unwrap_err();
    assert_says(
        &message,
        &["CUDA_ERROR_SYSTEM_DRIVER_MISMATCH", "unsupported display driver", "Update the NVIDIA driver", "--device cpu"],
    );
    let message = check_in_a_process(libraries, 1, &[("NULLCUDA_INIT", "999")]).unwrap_err();
    assert_says(&message, &["CUDA_ERROR_UNKNOWN", "unknown error", "nvidia-smi", "--device cpu"]);
}

#[test]
fn more_replicas_than_gpus_names_how_many_there_are() {
    let message = check_in_a_process(&stand_ins().driver_and_nvrtc, 4, &[("NULLCUDA_GPUS", "2")]).unwrap_err();
    assert_says(&message, &["4 GPUs are needed", "CUDA sees 2", "--replicas 2"]);
    let setup = check_in_a_process(&stand_ins().driver_and_nvrtc, 2, &[("NULLCUDA_GPUS", "2")]).unwrap();
    assert_says(&setup, &["GPU 0: null CUDA device 0", "GPU 1: null CUDA device 1"]);
}

#[test]
fn without_nvrtc_it_names_the_library_and_where_it_comes_from() {
    if installed("libnvrtc.so") {
        eprintln!("skipped: this machine has NVRTC");
        return;
    }
    let message = check_in_a_process(&stand_ins().driver, 1, &[]).unwrap_err();
    assert_says(&message, &["NVRTC was not found", "libnvrtc.so", "LD_LIBRARY_PATH", "--device cpu"]);
}

#[test]
fn an_nvrtc_newer_than_the_driver_is_refused_before_its_kernels_fail_to_load() {
    let libraries = &stand_ins().driver_and_nvrtc;
    let vars = [("NULLCUDA_DRIVER", "12040"), ("FAKE_NVRTC_MAJOR", "12"), ("FAKE_NVRTC_MINOR", "6")];
    let message = check_in_a_process(libraries, 1, &vars).unwrap_err();
    assert_says(&message, &["NVRTC 12.6 is newer than the NVIDIA driver (CUDA 12.4)", "Update the NVIDIA driver", "--device cpu"]);
    // The same NVRTC on a newer driver is fine, and so is an older NVRTC.
    let vars = [("NULLCUDA_DRIVER", "13000"), ("FAKE_NVRTC_MAJOR", "12"), ("FAKE_NVRTC_MINOR", "6")];
    let setup = check_in_a_process(libraries, 1, &vars).unwrap();
    assert_says(&setup, &["driver for CUDA 13.0", "NVRTC 12.6"]);
}

#[test]
fn without_the_toolkits_headers_it_says_where_it_looked() {
    let empty = tempfile::tempdir().unwrap();
    let cuda_path = empty.path().to_str().unwrap();
    let message = check_in_a_process(&stand_ins().driver_and_nvrtc, 1, &[("CUDA_PATH", cuda_path)]).unwrap_err();
    assert_says(
        &message,
        &[&format!("CUDA_PATH={cuda_path}, which has no include/cuda_runtime.h and no include/crt/mma.h"), "CUDA toolkit", "--device cpu"],
    );
    // PyTorch's CUDA 13 wheels bring cuda_runtime.h and mma.h, not the crt/ headers mma.h includes.
    std::fs::create_dir_all(empty.path().join("include")).unwrap();
    for header in ["cuda_runtime.h", "mma.h"] {
        std::fs::write(empty.path().join("include").join(header), "// stand-in\n").unwrap();
    }
    let message = check_in_a_process(&stand_ins().driver_and_nvrtc, 1, &[("CUDA_PATH", cuda_path)]).unwrap_err();
    assert_says(&message, &[&format!("CUDA_PATH={cuda_path}, which has no include/crt/mma.h)"), "pip install nvidia-cuda-crt"]);
}

#[test]
fn a_machine_with_everything_gets_one_line_naming_the_gpu_and_versions() {
    let vars = [("NULLCUDA_DRIVER", "13020"), ("FAKE_NVRTC_MAJOR", "13"), ("FAKE_NVRTC_MINOR", "0")];
    let setup = check_in_a_process(&stand_ins().driver_and_nvrtc, 1, &vars).unwrap();
    let headers = stand_ins().toolkit.join("include");
    assert_says(
        &setup,
        &["GPU 0: null CUDA device 0 (sm_90) (80.0 GiB)", "driver for CUDA 13.2", "NVRTC 13.0", &headers.display().to_string()],
    );
}
