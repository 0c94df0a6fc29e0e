//! Third-party readers (burn-store's PyTorch and burnpack readers, Burn's binary records)
//! panic on some damaged files instead of returning an error (fuzzing found a checkpoint
//! record whose byte count is not a multiple of its element size). Such a read is run
//! through [`catch`], which turns the panic into an error the caller names the file in.
//! Panic hooks ([`crate::cli_support::report_panics_as_errors`], the fuzzing harness) ask
//! [`caught`] and stay quiet for a panic that is being caught this way.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};

thread_local! {
    static CATCHING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `read`; a panic inside it becomes `Err` with the panic's message.
pub fn catch<R>(read: impl FnOnce() -> R) -> Result<R, String> {
    let outer = CATCHING.replace(true);
    let result = catch_unwind(AssertUnwindSafe(read));
    CATCHING.set(outer);
    result.map_err(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("the reader failed");
        format!("the reader stopped on damaged data ({message})")
    })
}

/// Whether a panic on this thread now happens inside [`catch`].
pub fn caught() -> bool {
    CATCHING.get()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_panic_inside_becomes_an_error_and_the_flag_is_only_set_inside() {
        assert!(!super::caught());
        let error = super::catch(|| -> u32 {
            assert!(super::caught());
            panic!("cast_slice: slop")
        })
        .unwrap_err();
        assert!(error.contains("cast_slice: slop"), "{error}");
        assert!(!super::caught());
        assert_eq!(super::catch(|| 7), Ok(7));
    }
}
