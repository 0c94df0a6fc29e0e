//! Buffers for the convolutions' intermediate arrays (relaid inputs, Winograd transforms),
//! kept between convolutions. A fresh buffer of tens of
//! megabytes per convolution costs more than the relayout itself: the operating system
//! maps and zeroes every new page on first touch.

use std::sync::Mutex;

/// At most this many floats (256 MiB) are kept; larger leftovers are freed.
const MAX_KEPT_FLOATS: usize = 64 << 20;

/// The most floats (64 MiB) one intermediate array of a convolution should take: larger
/// batches are relaid or transformed a group of items at a time, so that the arrays of a
/// call fit in what the pool keeps.
pub(super) const GROUP_FLOATS: usize = 16 << 20;

static KEPT: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// A buffer of at least `len` floats (its contents are whatever was there).
pub(super) fn take(len: usize) -> Vec<f32> {
    let kept = KEPT.lock().ok().and_then(|mut kept| {
        let largest = (0..kept.len()).max_by_key(|&i| kept[i].len())?;
        Some(kept.swap_remove(largest))
    });
    let mut buffer = kept.unwrap_or_default();
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    buffer
}

/// Keeps `buffer` for a later [`take`] (unless too much is kept already).
pub(super) fn give_back(buffer: Vec<f32>) {
    if let Ok(mut kept) = KEPT.lock() {
        let total: usize = kept.iter().map(Vec::len).sum();
        if total + buffer.len() <= MAX_KEPT_FLOATS {
            kept.push(buffer);
        }
    }
}
