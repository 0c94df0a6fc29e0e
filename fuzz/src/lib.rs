//! What every fuzz target shares: a memory budget that turns an allocation a file's size does
//! not justify into a crash libFuzzer records, and scratch files for readers that take a path.
//!
//! Rust aborts with "memory allocation of N bytes failed" when the allocator refuses a
//! request, so a reader that believes a length field and reserves gigabytes for a file of a
//! few bytes is caught at the allocation, with the input saved, long before the machine runs
//! out of memory.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting the bytes held and refusing what would exceed the budget.
pub struct Budgeted;

/// Bytes held right now, by every thread.
static HELD: AtomicUsize = AtomicUsize::new(0);
/// The most bytes that may be held (no limit outside [`within`]).
static LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);

#[global_allocator]
static ALLOCATOR: Budgeted = Budgeted;

unsafe impl GlobalAlloc for Budgeted {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if !reserve(layout.size()) {
            return std::ptr::null_mut();
        }
        let pointer = unsafe { System.alloc(layout) };
        if pointer.is_null() {
            HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        pointer
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if !reserve(layout.size()) {
            return std::ptr::null_mut();
        }
        let pointer = unsafe { System.alloc_zeroed(layout) };
        if pointer.is_null() {
            HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        pointer
    }

    unsafe fn dealloc(&self, pointer: *mut u8, layout: Layout) {
        unsafe { System.dealloc(pointer, layout) };
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, pointer: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let grown = new_size.saturating_sub(layout.size());
        if !reserve(grown) {
            return std::ptr::null_mut();
        }
        let moved = unsafe { System.realloc(pointer, layout, new_size) };
        if moved.is_null() {
            HELD.fetch_sub(grown, Ordering::Relaxed);
        } else {
            HELD.fetch_sub(layout.size().saturating_sub(new_size), Ordering::Relaxed);
        }
        moved
    }
}

/// Counts `size` more bytes as held, unless that passes the limit.
fn reserve(size: usize) -> bool {
    let held = HELD.fetch_add(size, Ordering::Relaxed) + size;
    if held > LIMIT.load(Ordering::Relaxed) {
        HELD.fetch_sub(size, Ordering::Relaxed);
        // The abort that follows reports the request with a backtrace, which allocates.
        LIMIT.store(usize::MAX, Ordering::Relaxed);
        return false;
    }
    true
}

/// Runs `read` with at most `budget` bytes held beyond what was held before it started. A
/// request past the budget is refused, which aborts the process (a crash for libFuzzer).
pub fn within<R>(budget: usize, read: impl FnOnce() -> R) -> R {
    // A panic is reported with a backtrace, which needs more memory than a small budget:
    // the limit is lifted before libFuzzer's hook prints it and aborts. A third-party
    // reader's panic that the product catches and reports as an error is no crash.
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if m3dfel::reader_panics::caught() {
                return; // the product turns this panic into an error naming the file
            }
            LIMIT.store(usize::MAX, Ordering::Relaxed);
            report(info);
        }));
    });
    LIMIT.store(HELD.load(Ordering::Relaxed).saturating_add(budget), Ordering::Relaxed);
    let result = read();
    LIMIT.store(usize::MAX, Ordering::Relaxed);
    result
}

/// What a reader may hold for an input of `len` bytes: `per_byte` bytes per input byte (the
/// format's largest honest expansion, e.g. f16 widened to f32 and copied) plus `fixed` (what
/// the reader needs whatever the input: a model, a thread pool's buffers).
pub fn budget(len: usize, per_byte: usize, fixed: usize) -> usize {
    len.saturating_mul(per_byte).saturating_add(fixed)
}

/// One mebibyte, for budgets.
pub const MIB: usize = 1 << 20;

/// A folder of this process's own (each fuzzing job is a process), emptied at the first call.
pub fn scratch_dir() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
        let dir = base.join(format!("m3dfel-fuzz-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("a scratch folder can be made");
        dir
    })
}

/// Writes `bytes` to `name` in the scratch folder (creating its parent folders) and returns its path.
pub fn scratch_file(name: &str, bytes: &[u8]) -> PathBuf {
    let path = scratch_dir().join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("scratch folders can be made");
    }
    std::fs::write(&path, bytes).expect("scratch files can be written");
    path
}
