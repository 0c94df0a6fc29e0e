//! Winograd's minimal filtering F(2×2, 3×3) in H and W for the backbone's stride-1 3×3×3
//! convolutions: 16 multiplications per 2×2 output tile and kernel frame instead of 36,
//! i.e. 2.25× less arithmetic than the direct convolution (Lavin & Gray, "Fast Algorithms
//! for Convolutional Neural Networks", CVPR 2016).
//!
//! Each 4×4 input tile d (stride 2, starting one row and column before its 2×2 outputs) is
//! transformed to V = Bᵀ·d·B, each 3×3 kernel slice g to U = G·g·Gᵀ, and the output tile is
//! Y = Aᵀ·M·A where M = Σ over input channels and kernel frames of U ⊙ V. For each of the 16
//! components ξ of the transformed tiles, item and output frame, M is one matrix product:
//! [Cout, kernel frames · Cin] (U) × [kernel frames · Cin, tiles] (V of the frames around
//! it), by [`product`]: the `gemm` crate natively, a kernel of its own in WebAssembly. Bias,
//! residual and ReLU are applied as Y is written.

mod product;

use burn::tensor::{Bytes, DType, Shape, ops::ConvOptions};
use burn_flex::{FlexTensor, Layout};

use super::epilogue::Epilogue;
use super::parallel::{SharedOutput, map_parts};
use super::scratch::{self, GROUP_FLOATS};
use product::product;

/// Components of a transformed 4×4 tile.
const COMPONENTS: usize = 16;

/// Whether [`conv3d_f32`] computes this convolution (`x` [B, Cin, T, H, W], `weight`
/// [Cout, Cin, kT, kH, kW]): a 3×3×3 kernel, stride 1, padding 1, even H and W, and
/// transformed weights (16·Cout·Cin·3 values) no larger than the input, so that the
/// convolution's time goes to the activations rather than to reading weights. In R3D-18
/// that is the stride-1 convolutions of the first two stages; the last stages have 1–2
/// frames of 14² or 7² and most of their time is in their weights, which the transform
/// would make 16/9 times larger.
pub fn applies(x: &[usize], weight: &[usize], options: &ConvOptions<3>) -> bool {
    let weights = COMPONENTS * weight[0] * weight[1] * 3;
    weight[2..] == [3, 3, 3]
        && options.stride == [1; 3]
        && options.padding == [1; 3]
        && x[3] % 2 == 0
        && x[4] % 2 == 0
        && weights <= x.iter().product::<usize>()
}

/// `x`: [B, Cin, T, H, W], `weight`: [Cout, Cin, 3, 3, 3], `bias`: [Cout], `residual`:
/// [B, Cout, T, H, W] → epilogue(conv3d(x, weight) + bias) with padding 1, for the
/// convolutions of [`applies`].
pub(super) fn conv3d_f32(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
    residual: Option<&FlexTensor>,
    relu: bool,
) -> FlexTensor {
    let x = x.to_contiguous();
    let shape = x.layout().shape();
    let [batch, in_channels, frames, height, width] = [shape[0], shape[1], shape[2], shape[3], shape[4]];
    let out_channels = weight.layout().shape()[0];
    let tiles = [height / 2, width / 2];
    let tile_count = tiles[0] * tiles[1];
    let out_shape = Shape::from(vec![batch, out_channels, frames, height, width]);
    let bias = bias.map(FlexTensor::to_contiguous);
    let residual = residual.map(FlexTensor::to_contiguous);
    if let Some(residual) = &residual {
        assert_eq!(residual.layout().shape(), &out_shape, "conv3d residual shape");
    }
    let weights = transform_weights(&weight.to_contiguous()); // [16, Cout, 3·Cin]
    let (in_item, out_item) = (in_channels * frames * height * width, out_channels * frames * height * width);
    let mut output = vec![0.0f32; batch * out_item];
    // Batch items a group at a time: the transformed tiles are 4 times the activations.
    let per_item = COMPONENTS * frames * in_channels.max(out_channels) * tile_count;
    let group = (GROUP_FLOATS / per_item).clamp(1, batch);
    let mut transformed = scratch::take(group * COMPONENTS * frames * in_channels * tile_count);
    let mut products = scratch::take(group * COMPONENTS * frames * out_channels * tile_count);
    for first in (0..batch).step_by(group) {
        let items = group.min(batch - first);
        let x = &x.storage()[first * in_item..][..items * in_item];
        transform_input(x, [items, in_channels, frames], tiles, &mut transformed); // [items, 16, T, Cin, tiles]
        multiply(&transformed, &weights, &mut products, [items, in_channels, out_channels, frames, tile_count]); // [items, 16, T, Cout, tiles]
        let epilogue = Epilogue {
            bias: bias.as_ref().map(|b| b.storage()),
            residual: residual.as_ref().map(|r| &r.storage()[first * out_item..][..items * out_item]),
            relu,
        };
        transform_output(&products, [items, out_channels, frames], tiles, &epilogue, &mut output[first * out_item..][..items * out_item]);
    }
    scratch::give_back(transformed);
    scratch::give_back(products);
    FlexTensor::new(Bytes::from_elems(output), Layout::contiguous(out_shape), DType::F32)
}

/// [B, Cin, T, H, W] → V: [B, 16, T, Cin, H/2 · W/2], V[b][4k + l][t][c][i·W/2 + j] =
/// (Bᵀ·d·B)[k][l] for the 4×4 tile d of rows 2i − 1 … 2i + 2 and columns 2j − 1 … 2j + 2
/// of frame t (zero outside the frame).
fn transform_input(x: &[f32], [batch, channels, frames]: [usize; 3], [rows, columns]: [usize; 2], out: &mut [f32]) {
    let (height, width) = (2 * rows, 2 * columns);
    let tile_count = rows * columns;
    let shared = SharedOutput(out.as_mut_ptr());
    let transform = |part: usize| {
        let (b, c) = (part / channels, part % channels);
        let source = &x[part * frames * height * width..][..frames * height * width];
        // The tile's 4 input rows split into even and odd padded columns:
        // even[m] = x[2m − 1], odd[m] = x[2m] (zero outside the row).
        let [mut even, mut odd, mut even_rows, mut odd_rows] = std::array::from_fn(|_| zeros::<4>(columns + 1));
        for t in 0..frames {
            for i in 0..rows {
                for r in 0..4 {
                    let y = (2 * i + r).wrapping_sub(1);
                    if y < height {
                        let row = &source[(t * height + y) * width..][..width];
                        for ((pair, odd), even) in row.chunks_exact(2).zip(&mut odd[r][..columns]).zip(&mut even[r][1..]) {
                            *odd = pair[0];
                            *even = pair[1];
                        }
                    } else {
                        even[r].fill(0.0);
                        odd[r].fill(0.0);
                    }
                }
                // Bᵀ·d over the rows, for the even and the odd columns alike.
                transform_4(each_mut(&mut even_rows), each(&even));
                transform_4(each_mut(&mut odd_rows), each(&odd));
                // ·B over the columns: e0 … e3 = even[j], odd[j], even[j + 1], odd[j + 1].
                for (k, (even, odd)) in even_rows.iter().zip(&odd_rows).enumerate() {
                    let row = |l: usize| {
                        let start = (((b * COMPONENTS + 4 * k + l) * frames + t) * channels + c) * tile_count + i * columns;
                        // SAFETY: part (b, c) alone writes V[b][ξ][t][c], and this row lies in it.
                        unsafe { std::slice::from_raw_parts_mut(shared.pointer().add(start), columns) }
                    };
                    transform_4([row(0), row(1), row(2), row(3)], [&even[..columns], &odd[..columns], &even[1..], &odd[1..]]);
                }
            }
        }
    };
    map_parts((0..batch * channels).collect(), transform);
}

/// Bᵀ·d for each position of 4 rows: out = d₀ − d₂, d₁ + d₂, d₂ − d₁, d₁ − d₃ (the input
/// transform, along either dimension). All slices have the length of `out[0]`.
#[inline(always)]
fn transform_4(out: [&mut [f32]; 4], d: [&[f32]; 4]) {
    let n = out[0].len();
    let [o0, o1, o2, o3] = out.map(|o| &mut o[..n]);
    let [d0, d1, d2, d3] = d.map(|d| &d[..n]);
    for j in 0..n {
        o0[j] = d0[j] - d2[j];
        o1[j] = d1[j] + d2[j];
        o2[j] = d2[j] - d1[j];
        o3[j] = d1[j] - d3[j];
    }
}

/// Aᵀ·m for each position of 4 rows: out = m₀ + m₁ + m₂, m₁ − m₂ − m₃ (the output
/// transform, along either dimension). All slices have the length of `out[0]`.
#[inline(always)]
fn inverse_4(out: [&mut [f32]; 2], m: [&[f32]; 4]) {
    let n = out[0].len();
    let [o0, o1] = out.map(|o| &mut o[..n]);
    let [m0, m1, m2, m3] = m.map(|m| &m[..n]);
    for j in 0..n {
        o0[j] = m0[j] + m1[j] + m2[j];
        o1[j] = m1[j] - m2[j] - m3[j];
    }
}

fn zeros<const N: usize>(len: usize) -> [Vec<f32>; N] {
    std::array::from_fn(|_| vec![0.0f32; len])
}

fn each<const N: usize>(rows: &[Vec<f32>; N]) -> [&[f32]; N] {
    rows.each_ref().map(Vec::as_slice)
}

fn each_mut<const N: usize>(rows: &mut [Vec<f32>; N]) -> [&mut [f32]; N] {
    rows.each_mut().map(Vec::as_mut_slice)
}

/// [Cout, Cin, 3, 3, 3] → U: [16, Cout, 3·Cin], U[4k + l][o][kt·Cin + c] = (G·g·Gᵀ)[k][l]
/// for the 3×3 slice g = weight[o][c][kt]. Done on every call (the weights change in
/// training), an output channel per part: its 16 rows of U are made in a buffer that stays
/// in the L1 cache, then copied out whole (scattering each value straight into U took 2 ms
/// for 128 × 128 channels, a fifth of the convolution).
fn transform_weights(weight: &FlexTensor) -> Vec<f32> {
    let shape = weight.layout().shape();
    let (out_channels, in_channels) = (shape[0], shape[1]);
    let values: &[f32] = weight.storage();
    let row = 3 * in_channels;
    let mut out = vec![0.0f32; COMPONENTS * out_channels * row];
    let shared = SharedOutput(out.as_mut_ptr());
    // G·v for a 3-vector v.
    let g = |v: [f32; 3]| [v[0], (v[0] + v[1] + v[2]) * 0.5, (v[0] - v[1] + v[2]) * 0.5, v[2]];
    let transform = |o: usize| {
        let mut rows = vec![0.0f32; COMPONENTS * row]; // U[ξ][o]: [16, 3·Cin]
        for (slice, g3) in values[o * row * 9..][..row * 9].chunks_exact(9).enumerate() {
            let (c, kt) = (slice / 3, slice % 3);
            let columns: [[f32; 4]; 3] = std::array::from_fn(|r| g([g3[3 * r], g3[3 * r + 1], g3[3 * r + 2]])); // g·Gᵀ, by rows
            for l in 0..4 {
                let u = g([columns[0][l], columns[1][l], columns[2][l]]); // G·(g·Gᵀ), column l
                for (k, &value) in u.iter().enumerate() {
                    rows[(4 * k + l) * row + kt * in_channels + c] = value;
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

/// M[b][ξ][t] = U[ξ][:, kernel frames over real input frames] · V[b][ξ][t − 1 … t + 1]:
/// [Cout, tiles] for every item, component and output frame.
fn multiply(v: &[f32], u: &[f32], m: &mut [f32], [batch, in_channels, out_channels, frames, tiles]: [usize; 5]) {
    let shared = SharedOutput(m.as_mut_ptr());
    let product = |part: usize| {
        let component = part % COMPONENTS;
        for t in 0..frames {
            // Kernel frames kt read input frame t + kt − 1: those inside 0..frames.
            let (first, end) = (usize::from(t == 0), if t + 1 < frames { 3 } else { 2 });
            let depth = (end - first) * in_channels;
            let lhs = u[(component * out_channels * 3 + first) * in_channels..].as_ptr();
            let rhs = v[((part * frames + t + first - 1) * in_channels) * tiles..].as_ptr();
            // SAFETY: U holds Cout rows of 3·Cin from `lhs` (columns first·Cin … end·Cin);
            // V holds `depth` rows of `tiles` from `rhs` (the frames t + first − 1 …);
            // part (b, ξ) alone writes M[b][ξ].
            unsafe {
                let dst = shared.pointer().add((part * frames + t) * out_channels * tiles);
                product([out_channels, tiles, depth], (dst, tiles), (lhs, 3 * in_channels), (rhs, tiles));
            }
        }
    };
    map_parts((0..batch * COMPONENTS).collect(), product);
}

/// M: [B, 16, T, Cout, H/2 · W/2] → `out` = Y = epilogue(Aᵀ·M·A + bias): [B, Cout, T, H, W]
/// (`epilogue.residual`: the same items).
fn transform_output(products: &[f32], [batch, channels, frames]: [usize; 3], [rows, columns]: [usize; 2], epilogue: &Epilogue, out: &mut [f32]) {
    let (height, width) = (2 * rows, 2 * columns);
    let tile_count = rows * columns;
    let shared = SharedOutput(out.as_mut_ptr());
    let transform = |part: usize| {
        let (b, c) = (part / channels, part % channels);
        // Aᵀ·M over the rows: by[a][l] for output row a and component column l; then ·A
        // over the columns: the even and the odd output columns.
        let (mut by, mut halves): ([[Vec<f32>; 4]; 2], _) = (std::array::from_fn(|_| zeros(columns)), zeros::<2>(columns));
        for t in 0..frames {
            for i in 0..rows {
                let m = |k: usize, l: usize| &products[(((b * COMPONENTS + 4 * k + l) * frames + t) * channels + c) * tile_count + i * columns..][..columns];
                for l in 0..4 {
                    let [first, second] = &mut by;
                    inverse_4([&mut first[l], &mut second[l]], [m(0, l), m(1, l), m(2, l), m(3, l)]);
                }
                for (a, by) in by.iter().enumerate() {
                    inverse_4(each_mut(&mut halves), each(by));
                    let start = ((b * channels + c) * frames + t) * height * width + (2 * i + a) * width;
                    // SAFETY: part (b, c) alone writes Y[b][c], and this row lies in it.
                    let row = unsafe { std::slice::from_raw_parts_mut(shared.pointer().add(start), width) };
                    for ((pair, &even), &odd) in row.chunks_exact_mut(2).zip(&halves[0]).zip(&halves[1]) {
                        pair[0] = even;
                        pair[1] = odd;
                    }
                    epilogue.finish(c, start, row);
                }
            }
        }
    };
    map_parts((0..batch * channels).collect(), transform);
}
