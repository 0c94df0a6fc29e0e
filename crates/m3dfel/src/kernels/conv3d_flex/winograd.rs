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
//! it), by the `gemm` crate. Bias, residual and ReLU are applied as Y is written.

use burn::tensor::{Bytes, DType, Shape, ops::ConvOptions};
use burn_flex::{FlexTensor, Layout};

use super::gemm::{Matrix, matmul};
use super::parallel::{SharedOutput, map_parts};
use super::scratch;

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
    let mut transformed = scratch::take(batch * COMPONENTS * frames * in_channels * tile_count);
    transform_input(x.storage(), [batch, in_channels, frames], tiles, &mut transformed); // [B, 16, T, Cin, tiles]
    let weights = transform_weights(&weight.to_contiguous()); // [16, Cout, 3·Cin]
    let mut products = scratch::take(batch * COMPONENTS * frames * out_channels * tile_count);
    multiply(&transformed, &weights, &mut products, [batch, in_channels, out_channels, frames, tile_count]); // [B, 16, T, Cout, tiles]
    scratch::give_back(transformed);
    let bias = bias.map(FlexTensor::to_contiguous);
    let residual = residual.map(FlexTensor::to_contiguous);
    let epilogue = Epilogue {
        bias: bias.as_ref().map(|b| b.storage()),
        residual: residual.as_ref().map(|r| r.storage()),
        relu,
    };
    let out_shape = Shape::from(vec![batch, out_channels, frames, height, width]);
    if let Some(residual) = &residual {
        assert_eq!(residual.layout().shape(), &out_shape, "conv3d residual shape");
    }
    let output = transform_output(&products, [batch, out_channels, frames], tiles, &epilogue);
    scratch::give_back(products);
    FlexTensor::new(Bytes::from_elems(output), Layout::contiguous(out_shape), DType::F32)
}

/// What is applied to each output value as it is written.
struct Epilogue<'a> {
    /// Per output channel.
    bias: Option<&'a [f32]>,
    /// Same layout as the output.
    residual: Option<&'a [f32]>,
    relu: bool,
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
        // Input rows split into even and odd padded columns: even[m] = x[2m − 1], odd[m] = x[2m].
        let halves = || std::array::from_fn(|_| [vec![0.0f32; columns + 1], vec![0.0f32; columns + 1]]);
        let (mut split, mut combined): ([[Vec<f32>; 2]; 4], [[Vec<f32>; 2]; 4]) = (halves(), halves());
        for t in 0..frames {
            for i in 0..rows {
                for (r, [even, odd]) in split.iter_mut().enumerate() {
                    let y = (2 * i + r).wrapping_sub(1);
                    if y < height {
                        let row = &source[(t * height + y) * width..][..width];
                        for m in 0..columns {
                            even[m + 1] = row[2 * m + 1];
                            odd[m] = row[2 * m];
                        }
                    } else {
                        even.fill(0.0);
                        odd.fill(0.0);
                    }
                }
                // Bᵀ·d over the rows, for the even and the odd columns alike.
                for half in 0..2 {
                    let [d0, d1, d2, d3] = [&split[0][half], &split[1][half], &split[2][half], &split[3][half]];
                    for m in 0..=columns {
                        combined[0][half][m] = d0[m] - d2[m];
                        combined[1][half][m] = d1[m] + d2[m];
                        combined[2][half][m] = d2[m] - d1[m];
                        combined[3][half][m] = d1[m] - d3[m];
                    }
                }
                // ·B over the columns: e0 … e3 = even[j], odd[j], even[j + 1], odd[j + 1].
                for (k, [even, odd]) in combined.iter().enumerate() {
                    let row = |l: usize| {
                        let start = (((b * COMPONENTS + 4 * k + l) * frames + t) * channels + c) * tile_count + i * columns;
                        // SAFETY: part (b, c) alone writes V[b][ξ][t][c], and this row lies in it.
                        unsafe { std::slice::from_raw_parts_mut(shared.pointer().add(start), columns) }
                    };
                    let (v0, v1, v2, v3) = (row(0), row(1), row(2), row(3));
                    for j in 0..columns {
                        let [e0, e1, e2, e3] = [even[j], odd[j], even[j + 1], odd[j + 1]];
                        v0[j] = e0 - e2;
                        v1[j] = e1 + e2;
                        v2[j] = e2 - e1;
                        v3[j] = e1 - e3;
                    }
                }
            }
        }
    };
    map_parts((0..batch * channels).collect(), transform);
}

/// [Cout, Cin, 3, 3, 3] → U: [16, Cout, 3·Cin], U[4k + l][o][kt·Cin + c] = (G·g·Gᵀ)[k][l]
/// for the 3×3 slice g = weight[o][c][kt].
fn transform_weights(weight: &FlexTensor) -> Vec<f32> {
    let shape = weight.layout().shape();
    let (out_channels, in_channels) = (shape[0], shape[1]);
    let values: &[f32] = weight.storage();
    let slices = out_channels * in_channels * 3;
    let mut out = vec![0.0f32; COMPONENTS * slices];
    // G·v for a 3-vector v.
    let g = |v: [f32; 3]| [v[0], (v[0] + v[1] + v[2]) * 0.5, (v[0] - v[1] + v[2]) * 0.5, v[2]];
    for (slice, g3) in values.chunks_exact(9).enumerate() {
        let (o, c, kt) = (slice / (3 * in_channels), slice / 3 % in_channels, slice % 3);
        let columns: [[f32; 4]; 3] = std::array::from_fn(|r| g([g3[3 * r], g3[3 * r + 1], g3[3 * r + 2]])); // g·Gᵀ, by rows
        for l in 0..4 {
            let u = g([columns[0][l], columns[1][l], columns[2][l]]); // G·(g·Gᵀ), column l
            for (k, &value) in u.iter().enumerate() {
                out[((4 * k + l) * out_channels + o) * 3 * in_channels + kt * in_channels + c] = value;
            }
        }
    }
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
                matmul(
                    [out_channels, tiles, depth],
                    Matrix::rows(dst, tiles),
                    false,
                    Matrix::rows(lhs, 3 * in_channels),
                    Matrix::rows(rhs, tiles),
                    false,
                );
            }
        }
    };
    map_parts((0..batch * COMPONENTS).collect(), product);
}

/// M: [B, 16, T, Cout, H/2 · W/2] → Y = epilogue(Aᵀ·M·A + bias): [B, Cout, T, H, W].
fn transform_output(products: &[f32], [batch, channels, frames]: [usize; 3], [rows, columns]: [usize; 2], epilogue: &Epilogue) -> Vec<f32> {
    let (height, width) = (2 * rows, 2 * columns);
    let tile_count = rows * columns;
    let mut out = vec![0.0f32; batch * channels * frames * height * width];
    let shared = SharedOutput(out.as_mut_ptr());
    let transform = |part: usize| {
        let (b, c) = (part / channels, part % channels);
        let bias = epilogue.bias.map_or(0.0, |bias| bias[c]);
        // Aᵀ·M over the rows: for each output row a and component column l.
        let mut combined: [[Vec<f32>; 4]; 2] = std::array::from_fn(|_| std::array::from_fn(|_| vec![0.0f32; columns]));
        let mut row_out = vec![0.0f32; width];
        for t in 0..frames {
            for i in 0..rows {
                let m = |k: usize, l: usize| &products[(((b * COMPONENTS + 4 * k + l) * frames + t) * channels + c) * tile_count + i * columns..][..columns];
                for l in 0..4 {
                    let [m0, m1, m2, m3] = [m(0, l), m(1, l), m(2, l), m(3, l)];
                    for j in 0..columns {
                        combined[0][l][j] = m0[j] + m1[j] + m2[j];
                        combined[1][l][j] = m1[j] - m2[j] - m3[j];
                    }
                }
                for (a, [r0, r1, r2, r3]) in combined.iter().enumerate() {
                    for j in 0..columns {
                        row_out[2 * j] = r0[j] + r1[j] + r2[j] + bias;
                        row_out[2 * j + 1] = r1[j] - r2[j] - r3[j] + bias;
                    }
                    let start = ((b * channels + c) * frames + t) * height * width + (2 * i + a) * width;
                    if let Some(residual) = epilogue.residual {
                        row_out.iter_mut().zip(&residual[start..start + width]).for_each(|(v, r)| *v += r);
                    }
                    if epilogue.relu {
                        row_out.iter_mut().for_each(|v| *v = v.max(0.0));
                    }
                    // SAFETY: part (b, c) alone writes Y[b][c], and this row lies in it.
                    unsafe { std::ptr::copy_nonoverlapping(row_out.as_ptr(), shared.pointer().add(start), width) };
                }
            }
        }
    };
    map_parts((0..batch * channels).collect(), transform);
    out
}
