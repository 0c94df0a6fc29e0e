//! Winograd's transformed weights U = G·g·Gᵀ (4× the weights: 7 MB for 128 × 128
//! channels), kept between calls in inference ([`kept_or_made`]): transforming them took 2 ms of
//! the 8.6 ms of each stage-2 convolution of a paper clip on 2 cores.

use std::sync::Arc;

use burn_flex::FlexTensor;

use super::super::kept::{Form, kept_or_made};
use crate::kernels::parallel::{SharedOutput, map_parts};
use super::{COMPONENTS, SIDE};

/// `weight` [Cout, Cin, 3, 3, 3] (contiguous) → U: [36, Cout, 3·Cin], kept (if `keep`) or made.
pub(super) fn transformed_weights(weight: &FlexTensor, keep: bool) -> Arc<Vec<f32>> {
    let shape = weight.layout().shape();
    kept_or_made(weight, Form::Winograd, keep, || transform(weight.storage(), [shape[0], shape[1]]))
}

/// [Cout, Cin, 3, 3, 3] → U: [36, Cout, 3·Cin], U[6k + l][o][kt·Cin + c] = (G·g·Gᵀ)[k][l]
/// for the 3×3 slice g = weight[o][c][kt]; an output channel per part: its 36 rows of U
/// are made in a buffer that stays in the L2 cache, then copied out whole (scattering each
/// value straight into U, on one thread, took a fifth of a stage-2 convolution with the
/// F(2×2, 3×3) used before).
fn transform(values: &[f32], [out_channels, in_channels]: [usize; 2]) -> Vec<f32> {
    let row = 3 * in_channels;
    let mut out = vec![0.0f32; COMPONENTS * out_channels * row];
    let shared = SharedOutput(out.as_mut_ptr());
    // G·v for a 3-vector v.
    const SIXTH: f32 = 1.0 / 6.0;
    const TWELFTH: f32 = 1.0 / 12.0;
    const TWENTY_FOURTH: f32 = 1.0 / 24.0;
    let g = |[v0, v1, v2]: [f32; 3]| {
        let (outer, middle) = (v0 * TWENTY_FOURTH + v2 * SIXTH, v1 * TWELFTH);
        [v0 * 0.25, -(v0 + v1 + v2) * SIXTH, -(v0 - v1 + v2) * SIXTH, outer + middle, outer - middle, v2]
    };
    let transform = |o: usize| {
        let mut rows = vec![0.0f32; COMPONENTS * row]; // U[ξ][o]: [36, 3·Cin]
        for (slice, g3) in values[o * row * 9..][..row * 9].chunks_exact(9).enumerate() {
            let (c, kt) = (slice / 3, slice % 3);
            let columns: [[f32; SIDE]; 3] = std::array::from_fn(|r| g([g3[3 * r], g3[3 * r + 1], g3[3 * r + 2]])); // g·Gᵀ, by rows
            for l in 0..SIDE {
                let u = g([columns[0][l], columns[1][l], columns[2][l]]); // G·(g·Gᵀ), column l
                for (k, &value) in u.iter().enumerate() {
                    rows[(SIDE * k + l) * row + kt * in_channels + c] = value;
                }
            }
        }
        for (component, values) in rows.chunks_exact(row).enumerate() {
            // SAFETY: part o alone writes the rows U[ξ][o].
            let dst = unsafe { std::slice::from_raw_parts_mut(shared.pointer().add((component * out_channels + o) * row), row) };
            dst.copy_from_slice(values);
        }
    };
    map_parts((0..out_channels).collect(), transform);
    out
}

