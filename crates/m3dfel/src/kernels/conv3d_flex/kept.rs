//! Weights rearranged for a kernel (Winograd's transformed weights, the AVX-512 direct
//! convolution's output-channel blocks), kept while the weights they were made from live:
//! a model's weights go through every clip unchanged in inference, and rearranging them
//! each call took up to a quarter of a convolution.
//!
//! An entry holds a reference to the weights' storage. While it does, that storage can
//! neither be freed (so its address is never reused by other weights) nor changed in place
//! (Burn's CPU backend writes in place only into storage nobody else holds), so the
//! storage's address, offset and shape identify the weights. Until 2026-12-03 the Winograd
//! transform compared the weights bit for bit instead, which read every weight twice per
//! call. Training asks for nothing to be kept (each step's weights are new tensors).

use std::sync::{Arc, Mutex};

use burn::tensor::Bytes;
use burn_flex::FlexTensor;

/// At most this many floats (256 MiB) are held, the weights an entry holds included (a
/// paper model: 35 MB of Winograd weights, about 45 MB of AVX-512 blocks, about 130 MB of
/// its convolution weights); the oldest entries make room.
const MAX_KEPT_FLOATS: usize = 64 << 20;

/// Which rearrangement of the weights an entry holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Form {
    /// Winograd's U ([`super::winograd`]).
    Winograd,
    /// Output-channel blocks of the direct convolution for these taps (`direct`, AVX-512).
    #[cfg(target_arch = "x86_64")]
    ChannelBlocks { taps: std::ops::Range<usize> },
}

/// What identifies weights while their storage is held: its address, the tensor's offset
/// into it and its shape.
#[derive(PartialEq, Eq)]
struct Key {
    storage: usize,
    offset: usize,
    shape: Vec<usize>,
    form: Form,
}

struct Entry {
    key: Key,
    /// Holds the weights' storage (see the module's documentation).
    storage: Arc<Bytes>,
    made: Arc<Vec<f32>>,
}

impl Entry {
    fn floats(&self) -> usize {
        self.made.len() + self.storage.len() / size_of::<f32>()
    }
}

static KEPT: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

/// `make()` for the contiguous `weight` in this `form`: the kept one if `keep` and these
/// weights were seen before, else made (and kept if `keep`).
pub(super) fn kept_or_made(weight: &FlexTensor, form: Form, keep: bool, make: impl FnOnce() -> Vec<f32>) -> Arc<Vec<f32>> {
    if !keep {
        return Arc::new(make());
    }
    let storage = weight.data_arc();
    let key = Key {
        storage: Arc::as_ptr(&storage) as usize,
        offset: weight.layout().start_offset(),
        shape: weight.layout().shape().to_vec(),
        form,
    };
    if let Ok(kept) = KEPT.lock()
        && let Some(entry) = kept.iter().find(|entry| entry.key == key)
    {
        return Arc::clone(&entry.made);
    }
    let made = Arc::new(make());
    if let Ok(mut kept) = KEPT.lock() {
        kept.push(Entry { key, storage, made: Arc::clone(&made) });
        while kept.iter().map(Entry::floats).sum::<usize>() > MAX_KEPT_FLOATS {
            kept.remove(0);
        }
    }
    made
}
