//! The detector's first convolution, conv0: 3×3 without padding, 3 → 16 channels, 37 % of
//! its multiply-adds. Its 16 output channels are one AVX-512 vector (two AVX2, four
//! WebAssembly SIMD), summed in registers over the 27 taps for a few positions at a time,
//! each tap's input value broadcast. As matrix products (until 2026-12-03) its depth was 9
//! (one product per kernel row, three passes over the sums) or the inputs had to be copied
//! side by side first.

use super::layers::Map;
use crate::kernels::simd::{Isa, Lanes, Scalar, best_isa};

/// Output channels.
pub(super) const CHANNELS: usize = 16;
const INPUT_CHANNELS: usize = 3;
/// Inputs of one kernel row: 3 columns × 3 channels, side by side in an NHWC row.
const ROW_TAPS: usize = 3 * INPUT_CHANNELS;

/// The sums (no bias) of output rows `first..first + rows` of conv0 over `x` ([H, W, 3]),
/// filters `[3, 3, 3, 16]`, into `sums` ([rows, W − 2, 16]), with the widest vectors this
/// CPU has.
pub(super) fn conv0_rows(x: &Map, filters: &[f32], first: usize, rows: usize, sums: &mut [f32]) {
    conv0_rows_with(best_isa(), x, filters, first, rows, sums);
}

/// [`conv0_rows`] with `isa` (one of [`Isa::available`]), or without vectors (`None`).
fn conv0_rows_with(isa: Option<Isa>, x: &Map, filters: &[f32], first: usize, rows: usize, sums: &mut [f32]) {
    assert!(x.channels == INPUT_CHANNELS && filters.len() == 3 * ROW_TAPS * CHANNELS, "conv0 is 3×3, 3 → 16 channels");
    assert!(first + rows + 2 <= x.height && sums.len() >= rows * (x.width - 2) * CHANNELS);
    assert!(isa.is_none_or(|isa| Isa::available().contains(&isa)), "{isa:?} is not available on this CPU");
    let args = Rows { x, filters, first, rows, sums };
    // SAFETY: the instruction set is one this CPU has (asserted); `Rows::sum` reads inside
    // the asserted shapes.
    unsafe {
        match isa {
            #[cfg(target_arch = "x86_64")]
            Some(Isa::Avx512) => avx512(args),
            #[cfg(target_arch = "x86_64")]
            Some(Isa::Avx2) => avx2(args),
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Some(Isa::Simd128) => args.sum::<crate::kernels::simd::Simd128, 4, 2>(),
            None => args.sum::<Scalar, 16, 1>(),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn avx512(args: Rows) {
    // SAFETY: the caller's.
    unsafe { args.sum::<crate::kernels::simd::Avx512, 1, 8>() }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2(args: Rows) {
    // SAFETY: the caller's.
    unsafe { args.sum::<crate::kernels::simd::Avx2, 2, 4>() }
}

struct Rows<'a> {
    x: &'a Map,
    filters: &'a [f32],
    first: usize,
    rows: usize,
    sums: &'a mut [f32],
}

impl Rows<'_> {
    /// With `V` vectors of `L` per position (V · N = 16) and `P` positions at a time:
    /// P · V accumulators (8 on every instruction set: AVX-512 8 × 1, AVX2 4 × 2, SIMD128
    /// 2 × 4), the tap's V weight vectors and one broadcast in the vector registers.
    ///
    /// # Safety
    /// `L`'s instruction set must be available; the shapes are [`conv0_rows`]'s.
    #[inline(always)]
    unsafe fn sum<L: Lanes, const V: usize, const P: usize>(self) {
        debug_assert_eq!(V * L::N, CHANNELS);
        let Self { x, filters, first, rows, sums } = self;
        let (row_values, out_width) = (x.width * INPUT_CHANNELS, x.width - 2);
        for r in 0..rows {
            // Input row first + r and the two below it, from column 0; output row r.
            let input = x.values[(first + r) * row_values..].as_ptr();
            let out = sums[r * out_width * CHANNELS..].as_mut_ptr();
            let mut xo = 0;
            // SAFETY: positions xo..xo + P (or + 1) < W − 2 read input columns up to W − 1
            // of three rows inside the map, and write output row r.
            unsafe {
                while xo + P <= out_width {
                    positions::<L, V, P>(input, row_values, filters.as_ptr(), xo, out);
                    xo += P;
                }
                while xo < out_width {
                    positions::<L, V, 1>(input, row_values, filters.as_ptr(), xo, out);
                    xo += 1;
                }
            }
        }
    }
}

/// The 16 sums of output positions xo..xo + P of one row: over kernel rows, then the 9
/// inputs of the row in the filters' order (column, channel), each weight vector loaded once
/// for the P positions.
///
/// # Safety
/// As [`Rows::sum`]; `input` is the row's first input row (the next two `row_values` on).
#[inline(always)]
unsafe fn positions<L: Lanes, const V: usize, const P: usize>(
    input: *const f32,
    row_values: usize,
    filters: *const f32,
    xo: usize,
    out: *mut f32,
) {
    // SAFETY: the caller's.
    unsafe {
        let mut sums = [[L::zero(); V]; P];
        for ky in 0..3 {
            let row = input.add(ky * row_values + xo * INPUT_CHANNELS);
            for tap in 0..ROW_TAPS {
                let weights = filters.add((ky * ROW_TAPS + tap) * CHANNELS);
                let w: [L::V; V] = std::array::from_fn(|v| L::load(weights.add(v * L::N)));
                for (p, sums) in sums.iter_mut().enumerate() {
                    let value = L::broadcast(row.add(p * INPUT_CHANNELS + tap));
                    for (sum, &w) in sums.iter_mut().zip(&w) {
                        *sum = L::mul_add(value, w, *sum);
                    }
                }
            }
        }
        for (p, sums) in sums.iter().enumerate() {
            for (v, &sum) in sums.iter().enumerate() {
                L::store(out.add((xo + p) * CHANNELS + v * L::N), sum);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every instruction set, and none, against the sum written out in f64, on values
    /// that differ per row, column, channel and tap (a wrong offset changes the result).
    #[test]
    fn every_instruction_set_sums_the_27_taps() {
        let (height, width) = (7, 13);
        let values = (0..height * width * 3).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
        let x = Map { height, width, channels: 3, values };
        let filters: Vec<f32> = (0..27 * CHANNELS).map(|i| ((i * 53 % 97) as f32 - 48.0) / 40.0).collect();
        let (first, rows, out_width) = (1, 4, width - 2);
        let mut expected = vec![0.0f64; rows * out_width * CHANNELS];
        for r in 0..rows {
            for xo in 0..out_width {
                for ky in 0..3 {
                    for kx in 0..3 {
                        for ci in 0..3 {
                            let v = x.values[((first + r + ky) * width + xo + kx) * 3 + ci] as f64;
                            for co in 0..CHANNELS {
                                let w = filters[((ky * 3 + kx) * 3 + ci) * CHANNELS + co] as f64;
                                expected[(r * out_width + xo) * CHANNELS + co] += v * w;
                            }
                        }
                    }
                }
            }
        }
        let isas = Isa::available().into_iter().map(Some).chain([None]);
        for isa in isas {
            let mut sums = vec![f32::NAN; rows * out_width * CHANNELS];
            conv0_rows_with(isa, &x, &filters, first, rows, &mut sums);
            for (i, (&ours, &theirs)) in sums.iter().zip(&expected).enumerate() {
                assert!((ours as f64 - theirs).abs() < 1e-4, "{isa:?}: sum {i} is {ours}, not {theirs}");
            }
        }
    }
}
