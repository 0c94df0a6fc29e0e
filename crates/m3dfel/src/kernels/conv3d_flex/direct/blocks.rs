//! The direct convolution with AVX-512, vectorised over output channels: a micro-kernel
//! call accumulates 6 output positions × 64 output channels in 24 of the 32 vector
//! registers, loading a tap's weights of the 64 channels as 4 aligned vectors and each
//! position's input value as one broadcast. [`super::tile`]'s kernel vectorises over output
//! positions instead; with 16 lanes its unaligned tap loads crossed a cache line almost every
//! time, and it was slower than with AVX2 on every layer (BENCHMARKS.md, seventh run).
//!
//! The weights are packed as [block of 64 output channels, Cin, tap, 64] (zeros past Cout)
//! and kept between calls in inference ([`kept_or_made`]). A call's positions are any 6 of
//! one output frame, across rows and batch items, so none is spent on the phase grid's
//! padding columns (a quarter of the last stage's 7 × 7 frames). Every output is the same
//! sum in the same order as [`super::tile`]'s (input channels, then taps, a fused
//! multiply-add each): both give the same numbers.

use std::ops::Range;
use std::sync::Arc;

use burn_flex::FlexTensor;

use super::super::epilogue::Epilogue;
use super::super::kept::{Form, kept_or_made};
use crate::kernels::parallel::map_parts;
use crate::kernels::simd::{Avx512, Lanes};
use super::Plan;

/// Output channels per block: 4 vectors of 16.
pub(super) const BLOCK: usize = 64;
const VECTORS: usize = BLOCK / Avx512::N;
/// Output positions per micro-kernel call: 6 × 4 accumulators, 4 weight vectors and a
/// broadcast take 29 of the 32 registers.
pub(super) const POSITIONS: usize = 6;
/// Packed weights per pass over the input channels (16 KB): a pass's weights stay in the L1
/// cache while all of a part's positions use them.
const WEIGHTS_PER_PASS: usize = 4096;

/// Up to [`POSITIONS`] output positions of one output frame: one micro-kernel call.
#[derive(Clone, Copy)]
pub(super) struct Positions {
    frame: usize,
    count: usize,
    /// Where each position's (0, 0, 0) tap lies in the relaid group of items (repeated past
    /// `count`, so that every lane reads real input).
    input: [usize; POSITIONS],
    /// Each position's batch item and place among the item's output positions.
    output: [(usize, usize); POSITIONS],
}

impl Positions {
    /// Runs of the call's positions that follow each other in the output: (first position,
    /// length), one per batch item the call's positions belong to.
    fn runs(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        let mut p = 0;
        std::iter::from_fn(move || {
            (p < self.count).then(|| {
                let (item, first) = self.output[p];
                let run = (p..self.count).take_while(|&q| self.output[q] == (item, first + q - p)).count();
                p += run;
                (p - run, run)
            })
        })
    }
}

/// The output positions of the batch items `items` (relaid in that order), in calls of
/// [`POSITIONS`]: frame by frame, each frame's positions of all items together (they skip
/// the same padding taps).
pub(super) fn positions(plan: &Plan, items: Range<usize>) -> Vec<Positions> {
    let [frames, rows, columns] = plan.output;
    let mut calls = Vec::new();
    for frame in 0..frames {
        let mut call = Positions { frame, count: 0, input: [0; POSITIONS], output: [(0, 0); POSITIONS] };
        for (slot, item) in items.clone().enumerate() {
            for row in 0..rows {
                for column in 0..columns {
                    call.input[call.count] = slot * plan.item_len() + (frame * plan.grid[1] + row) * plan.grid[2] + column;
                    call.output[call.count] = (item, (frame * rows + row) * columns + column);
                    call.count += 1;
                    if call.count == POSITIONS {
                        calls.push(call);
                        call.count = 0;
                    }
                }
            }
        }
        if call.count > 0 {
            let last = call.input[call.count - 1];
            call.input[call.count..].fill(last);
            calls.push(call);
        }
    }
    calls
}

/// `weight` [Cout, Cin, kT, kH, kW] (contiguous) → [⌈Cout / 64⌉, Cin, taps, 64] for the
/// taps `taps` (in (kt, kh, kw) order), from the vector's first 64-byte boundary
/// ([`aligned`]); kept for the next call with these weights if `keep`.
pub(super) fn packed(weight: &FlexTensor, plan: &Plan, taps: Range<usize>, keep: bool) -> Arc<Vec<f32>> {
    kept_or_made(weight, Form::ChannelBlocks { taps: taps.clone() }, keep, || {
        let (in_channels, out_channels, all_taps) = (plan.in_channels, plan.out_channels, plan.taps());
        let values: &[f32] = weight.storage();
        let block_len = in_channels * taps.len() * BLOCK;
        let mut packed = vec![0.0f32; out_channels.div_ceil(BLOCK) * block_len + Avx512::N - 1];
        let start = aligned_start(&packed);
        let pack = |(block, target): (usize, &mut [f32])| {
            for lane in 0..BLOCK.min(out_channels - block * BLOCK) {
                let patch = &values[(block * BLOCK + lane) * in_channels * all_taps..][..in_channels * all_taps];
                for (c, patch) in patch.chunks_exact(all_taps).enumerate() {
                    for (k, &value) in patch[taps.clone()].iter().enumerate() {
                        target[(c * taps.len() + k) * BLOCK + lane] = value;
                    }
                }
            }
        };
        map_parts(packed[start..].chunks_exact_mut(block_len).enumerate().collect(), pack);
        packed
    })
}

/// Where the first 64-byte boundary of `values` is (packed weights and partial sums start
/// there, so that every vector load is aligned).
fn aligned_start(values: &[f32]) -> usize {
    values.as_ptr().align_offset(64)
}

/// The packed weights of [`packed`] from their 64-byte boundary.
pub(super) fn aligned(packed: &[f32]) -> &[f32] {
    &packed[aligned_start(packed)..]
}

/// Convolves the positions of `calls` for the output `channels` (starting at a multiple of
/// [`BLOCK`]) and writes them through the epilogue.
///
/// # Safety
/// AVX-512F must be available; `input` is the plan's relayout of the calls' items;
/// `weights` are [`aligned`] packed weights for `taps`, which hold every tap that reads a real
/// frame; `output` holds the whole output, of which nobody else touches these positions ×
/// channels meanwhile.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn run(
    plan: &Plan,
    input: &[f32],
    weights: &[f32],
    taps: &Range<usize>,
    calls: &[Positions],
    channels: Range<usize>,
    epilogue: &Epilogue,
    output: *mut f32,
) {
    let blocks = channels.start / BLOCK..channels.end.div_ceil(BLOCK);
    let per_call = POSITIONS * BLOCK;
    let mut sums = vec![0.0f32; calls.len() * blocks.len() * per_call + Avx512::N - 1];
    let start = aligned_start(&sums);
    let sums = &mut sums[start..];
    let block_len = plan.in_channels * taps.len() * BLOCK;
    // A pass: some input channels with all their taps or, where one channel's weights
    // outgrow the pass (the stem's 147 taps), one channel and a run of its taps; the sums
    // are added in the same order either way.
    let per_pass = (WEIGHTS_PER_PASS / (taps.len() * BLOCK)).max(1);
    let taps_per_pass = WEIGHTS_PER_PASS / BLOCK;
    for first in (0..plan.in_channels).step_by(per_pass) {
        for first_tap in (0..taps.len()).step_by(taps_per_pass) {
            let pass = Pass {
                offsets: &[],
                channel_stride: plan.channel_stride,
                weight_stride: taps.len() * BLOCK,
                channels: per_pass.min(plan.in_channels - first),
                first: first == 0 && first_tap == 0,
            };
            for (index, call) in calls.iter().enumerate() {
                let valid = plan.valid_taps(call.frame);
                let run = valid.start + first_tap..(valid.start + first_tap + taps_per_pass).min(valid.end);
                if run.is_empty() && first_tap > 0 {
                    continue;
                }
                let pass = Pass { offsets: &plan.tap_offsets[run.clone()], ..pass };
                let x = call.input.map(|start| input[start + first * plan.channel_stride..].as_ptr());
                for (b, block) in blocks.clone().enumerate() {
                    let w = &weights[block * block_len + (first * taps.len() + run.start - taps.start) * BLOCK..];
                    let sums = &mut sums[(index * blocks.len() + b) * per_call..][..per_call];
                    // SAFETY: every tap of every lane reads inside the relayout; the weights
                    // of the pass's input channels × taps × 64 channels follow `w`.
                    unsafe { micro(x, w.as_ptr(), sums.as_mut_ptr(), &pass) };
                }
            }
        }
    }
    // Bias, and ReLU where no residual comes first, on the sums 16 channels at a time (a
    // value at a time, the epilogue took as long as the stem's arithmetic); then each
    // channel's run of positions out, and the residual.
    let mut bias = vec![0.0f32; blocks.len() * BLOCK];
    if let Some(values) = epilogue.bias {
        let first = blocks.start * BLOCK;
        let end = values.len().min(blocks.end * BLOCK);
        bias[..end - first].copy_from_slice(&values[first..end]);
    }
    let relu = epilogue.relu && epilogue.residual.is_none();
    for (call, sums) in calls.iter().zip(sums.chunks_exact_mut(blocks.len() * per_call)) {
        for (sums, bias) in sums.chunks_exact_mut(per_call).zip(bias.chunks_exact(BLOCK)) {
            // SAFETY: AVX-512F is enabled here; every access lies in `sums` or `bias`.
            unsafe { add_bias(&mut sums[..call.count * BLOCK], bias, relu) };
        }
    }
    let positions = plan.output_positions();
    for (call, sums) in calls.iter().zip(sums.chunks_exact(blocks.len() * per_call)) {
        for (p, run) in call.runs() {
            let (item, first) = call.output[p];
            for (block, sums) in blocks.clone().zip(sums.chunks_exact(per_call)) {
                for channel in (block * BLOCK).max(channels.start)..((block + 1) * BLOCK).min(channels.end) {
                    let lane = channel - block * BLOCK;
                    let start = (item * plan.out_channels + channel) * positions + first;
                    // SAFETY: the caller's; these are this call's positions of `channel`,
                    // written before a reference to them is made.
                    let values = unsafe {
                        for k in 0..run {
                            output.add(start + k).write(sums[(p + k) * BLOCK + lane]);
                        }
                        std::slice::from_raw_parts_mut(output.add(start), run)
                    };
                    if !relu {
                        epilogue.finish_biased(start, values);
                    }
                }
            }
        }
    }
}

/// sums[p][lane] += bias[lane] for each position's 64 channels, then ReLU if `relu`
/// (`max(v, 0)` with 0 as second operand: NaN → 0, −0 → +0, as [`Epilogue::finish`]).
#[inline(always)]
unsafe fn add_bias(sums: &mut [f32], bias: &[f32], relu: bool) {
    use std::arch::x86_64::{_mm512_add_ps, _mm512_max_ps};
    // SAFETY: the caller's; `sums` holds whole positions of BLOCK values, `bias` BLOCK.
    unsafe {
        let bias: [_; VECTORS] = std::array::from_fn(|v| Avx512::load(bias.as_ptr().add(v * Avx512::N)));
        for position in sums.chunks_exact_mut(BLOCK) {
            for (v, &bias) in bias.iter().enumerate() {
                let at = position.as_mut_ptr().add(v * Avx512::N);
                let sum = _mm512_add_ps(Avx512::load(at), bias);
                Avx512::store(at, if relu { _mm512_max_ps(sum, Avx512::zero()) } else { sum });
            }
        }
    }
}

/// What a micro-kernel call's positions share.
#[derive(Clone, Copy)]
struct Pass<'a> {
    /// Offsets of the valid taps.
    offsets: &'a [usize],
    /// Distance between input channels in the relayout.
    channel_stride: usize,
    /// Distance between input channels in the packed weights.
    weight_stride: usize,
    channels: usize,
    /// The pass starts the sums (else it adds to them).
    first: bool,
}

/// sums[p][lane] (+)= Σ over the pass's input channels and valid taps of x[p][offset] · w[lane].
#[inline(always)]
unsafe fn micro(mut x: [*const f32; POSITIONS], mut w: *const f32, sums: *mut f32, pass: &Pass) {
    // SAFETY (all pointer arithmetic and the instructions): the caller's (`run`).
    unsafe {
        let mut acc = [[Avx512::zero(); VECTORS]; POSITIONS];
        if !pass.first {
            for (p, row) in acc.iter_mut().enumerate() {
                for (v, value) in row.iter_mut().enumerate() {
                    *value = Avx512::load(sums.add(p * BLOCK + v * Avx512::N));
                }
            }
        }
        for _ in 0..pass.channels {
            for (k, &offset) in pass.offsets.iter().enumerate() {
                let weights: [_; VECTORS] = std::array::from_fn(|v| Avx512::load(w.add(k * BLOCK + v * Avx512::N)));
                for (row, x) in acc.iter_mut().zip(&x) {
                    let value = Avx512::broadcast(x.add(offset));
                    for (sum, &weight) in row.iter_mut().zip(&weights) {
                        *sum = Avx512::mul_add(value, weight, *sum);
                    }
                }
            }
            x = x.map(|x| x.add(pass.channel_stride));
            w = w.add(pass.weight_stride);
        }
        for (p, row) in acc.iter().enumerate() {
            for (v, &value) in row.iter().enumerate() {
                Avx512::store(sums.add(p * BLOCK + v * Avx512::N), value);
            }
        }
    }
}
