//! The micro-kernel vectorised over output positions and the loop around it, generic over
//! the vector instructions and compiled for AVX2 and WebAssembly SIMD (AVX-512 has its own,
//! [`super::blocks`]).

use std::ops::Range;

use super::super::epilogue::Epilogue;
use crate::kernels::simd::Lanes;
use super::{Isa, Plan, Tile};

/// Tile shapes (vectors of output positions, output channels per call), chosen so that the
/// accumulators, the loaded vectors and one broadcast fit in the vector registers:
/// AVX2 2×6 = 12 of 16.
#[cfg(target_arch = "x86_64")]
const AVX2: (usize, usize) = (2, 6);
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
const SIMD128: (usize, usize) = (2, 4);

/// Weights (input channels × taps) per pass over a tile: the pass's input rows then stay
/// in the L1 cache while every output channel of the tile uses them.
const WEIGHTS_PER_PASS: usize = 216;

/// Output positions per tile (vectors × lanes) and output channels per micro-kernel call.
pub(super) fn shape(isa: Isa) -> (usize, usize) {
    let (vectors, channels, lanes) = match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => unreachable!("AVX-512 runs the kernel of `blocks`"),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => (AVX2.0, AVX2.1, <crate::kernels::simd::Avx2 as Lanes>::N),
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        Isa::Simd128 => (SIMD128.0, SIMD128.1, <crate::kernels::simd::Simd128 as Lanes>::N),
    };
    (vectors * lanes, channels)
}

/// Convolves `tiles` for the output `channels` and writes them through the epilogue.
///
/// # Safety
/// `isa` must be available on this CPU; `input` is the plan's relayout with at least one
/// tile width of slack; `output` holds the whole output, of which nobody else touches these
/// tiles × channels meanwhile.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn run(
    isa: Isa,
    plan: &Plan,
    input: &[f32],
    weights: &[f32],
    tiles: &[Tile],
    channels: Range<usize>,
    epilogue: &Epilogue,
    output: *mut f32,
) {
    // SAFETY: the caller's; each function below requires its instruction set.
    unsafe {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unreachable!("AVX-512 runs the kernel of `blocks`"),
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => avx2(plan, input, weights, tiles, channels, epilogue, output),
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Isa::Simd128 => {
                convolve::<crate::kernels::simd::Simd128, { SIMD128.0 }, { SIMD128.1 }>(plan, input, weights, tiles, channels, epilogue, output)
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2(plan: &Plan, input: &[f32], weights: &[f32], tiles: &[Tile], channels: Range<usize>, epilogue: &Epilogue, output: *mut f32) {
    // SAFETY: the caller's (`run`).
    unsafe { convolve::<crate::kernels::simd::Avx2, { AVX2.0 }, { AVX2.1 }>(plan, input, weights, tiles, channels, epilogue, output) }
}

/// Partial sums of the tiles × channels, [tile][channel][position], then the epilogue.
#[inline(always)]
unsafe fn convolve<L: Lanes, const MV: usize, const NR: usize>(
    plan: &Plan,
    input: &[f32],
    weights: &[f32],
    tiles: &[Tile],
    channels: Range<usize>,
    epilogue: &Epilogue,
    output: *mut f32,
) {
    let width = MV * L::N;
    let count = channels.len();
    let mut sums = vec![0.0f32; tiles.len() * count * width];
    let (taps, patch) = (plan.taps(), plan.patch_len());
    let per_pass = (WEIGHTS_PER_PASS / taps).max(1);
    for first_channel in (0..plan.in_channels).step_by(per_pass) {
        let pass_channels = per_pass.min(plan.in_channels - first_channel);
        for (index, tile) in tiles.iter().enumerate() {
            let valid = plan.valid_taps(tile.frame);
            let offsets = &plan.tap_offsets[valid.clone()];
            let x = input[tile.slot * plan.item_len() + first_channel * plan.channel_stride + tile.start..].as_ptr();
            let mut channel = channels.start;
            while channel < channels.end {
                let block = NR.min(channels.end - channel);
                let args = Pass {
                    x,
                    offsets,
                    weights: weights[channel * patch + first_channel * taps + valid.start..].as_ptr(),
                    patch,
                    taps,
                    channel_stride: plan.channel_stride,
                    channels: pass_channels,
                    sums: sums[(index * count + channel - channels.start) * width..].as_mut_ptr(),
                    first: first_channel == 0,
                };
                // SAFETY: `x` + offsets stay inside the relayout (+ slack) for every lane of
                // the tile; the weights of `block` channels × this pass exist; `sums` has
                // `block` rows of `width` from there.
                unsafe {
                    if block == NR {
                        micro::<L, MV, NR>(&args);
                    } else {
                        tail::<L, MV>(block, &args);
                    }
                }
                channel += block;
            }
        }
    }
    for (index, tile) in tiles.iter().enumerate() {
        let sums = &sums[index * count * width..][..count * width];
        // SAFETY: the caller's.
        unsafe { write_tile(plan, tile, width, sums, channels.clone(), epilogue, output) };
    }
}

/// One micro-kernel call: a tile × up to NR output channels × one pass of input channels.
struct Pass<'a> {
    /// The tile's first position in the pass's first input channel.
    x: *const f32,
    /// Offsets of the valid taps.
    offsets: &'a [usize],
    /// The first output channel's weight for (first input channel, first valid tap).
    weights: *const f32,
    /// Distance between output channels' weights.
    patch: usize,
    /// Distance between input channels' weights.
    taps: usize,
    /// Distance between input channels in the relayout.
    channel_stride: usize,
    channels: usize,
    /// [NR][MV·N] partial sums.
    sums: *mut f32,
    /// The pass starts the sums (else it adds to them).
    first: bool,
}

/// sums[j][lane] (+)= Σ over the pass's input channels and valid taps of
/// x[lane + offset] · w[j].
#[inline(always)]
unsafe fn micro<L: Lanes, const MV: usize, const NR: usize>(pass: &Pass) {
    // SAFETY (all pointer arithmetic): the caller's (`convolve`).
    unsafe {
        let mut acc = [[L::zero(); MV]; NR];
        if !pass.first {
            for (j, row) in acc.iter_mut().enumerate() {
                for (i, value) in row.iter_mut().enumerate() {
                    *value = L::load(pass.sums.add((j * MV + i) * L::N));
                }
            }
        }
        let (mut x, mut w) = (pass.x, pass.weights);
        for _ in 0..pass.channels {
            for (tap, &offset) in pass.offsets.iter().enumerate() {
                let source = x.add(offset);
                let mut a = [L::zero(); MV];
                for (i, value) in a.iter_mut().enumerate() {
                    *value = L::load(source.add(i * L::N));
                }
                for (j, row) in acc.iter_mut().enumerate() {
                    let b = L::broadcast(w.add(j * pass.patch + tap));
                    for (value, &a) in row.iter_mut().zip(&a) {
                        *value = L::mul_add(a, b, *value);
                    }
                }
            }
            x = x.add(pass.channel_stride);
            w = w.add(pass.taps);
        }
        for (j, row) in acc.iter().enumerate() {
            for (i, &value) in row.iter().enumerate() {
                L::store(pass.sums.add((j * MV + i) * L::N), value);
            }
        }
    }
}

/// [`micro`] for the last, narrower block of output channels.
#[inline(always)]
unsafe fn tail<L: Lanes, const MV: usize>(channels: usize, pass: &Pass) {
    // SAFETY: the caller's.
    unsafe {
        match channels {
            1 => micro::<L, MV, 1>(pass),
            2 => micro::<L, MV, 2>(pass),
            3 => micro::<L, MV, 3>(pass),
            4 => micro::<L, MV, 4>(pass),
            5 => micro::<L, MV, 5>(pass),
            _ => unreachable!("tile shapes have at most 6 output channels"),
        }
    }
}

/// Writes a tile's real output positions (those inside the output's rows) for `channels`:
/// epilogue(sum + bias).
///
/// # Safety
/// `output` holds the whole output; nobody else writes these positions meanwhile.
#[inline(always)]
unsafe fn write_tile(plan: &Plan, tile: &Tile, width: usize, sums: &[f32], channels: Range<usize>, epilogue: &Epilogue, output: *mut f32) {
    let [_, rows, columns] = plan.output;
    let row_len = plan.grid[2];
    let positions = plan.output_positions();
    let mut lane = 0;
    while lane < width {
        let position = tile.start + lane - tile.frame * plan.frame_len();
        let (row, column) = (position / row_len, position % row_len);
        if row >= rows {
            break;
        }
        let run = columns.saturating_sub(column).min(width - lane);
        if run > 0 {
            let first_output = (tile.frame * rows + row) * columns + column;
            for (k, channel) in channels.clone().enumerate() {
                let start = (tile.item * plan.out_channels + channel) * positions + first_output;
                // SAFETY: the caller's; `start..start + run` are output positions of this tile,
                // written before a reference to them is made.
                let values = unsafe {
                    std::ptr::copy_nonoverlapping(sums[k * width + lane..][..run].as_ptr(), output.add(start), run);
                    std::slice::from_raw_parts_mut(output.add(start), run)
                };
                epilogue.finish(channel, start, values);
            }
        }
        lane += row_len - column;
    }
}
