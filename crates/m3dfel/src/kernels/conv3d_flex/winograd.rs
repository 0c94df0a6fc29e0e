//! Winograd's minimal filtering F(4×4, 3×3) in H and W for the backbone's stride-1 3×3×3
//! convolutions: 36 multiplications per 4×4 output tile and kernel frame instead of 144,
//! i.e. 4× less arithmetic than the direct convolution (Lavin & Gray, "Fast Algorithms
//! for Convolutional Neural Networks", CVPR 2016: their F(4×4, 3×3), interpolation points
//! 0, ±1, ±2 and ∞).
//!
//! Each 6×6 input tile d (stride 4, starting one row and column before its 4×4 outputs) is
//! transformed to V = Bᵀ·d·B, each 3×3 kernel slice g to U = G·g·Gᵀ, and the output tile is
//! Y = Aᵀ·M·A where M = Σ over input channels and kernel frames of U ⊙ V. Tiles over the
//! frame's edge (H or W not a multiple of 4) read zeros there and write only the outputs
//! inside it. For each of the 36 components ξ of the transformed tiles and each output
//! frame, M is one matrix product: [Cout, kernel frames · Cin] (U) × [kernel frames · Cin,
//! items · tiles] (V of the frames around it), by [`product`]: the `gemm` crate natively, a
//! kernel of its own in WebAssembly. Bias, residual and ReLU are applied as Y is written.
//!
//! F(2×2, 3×3) (16 multiplications per 2×2 tile, 2.25× less than direct) was used until
//! 2026-12-02; F(4×4, 3×3) also moves 2.4 instead of 4 transformed values per activation
//! through memory, which bounds the transforms (a paper clip's stage-1 convolution, 2
//! cores: 20.6 → 16.0 ms, BENCHMARKS.md). Its rounding error is larger (the transforms scale
//! values by up to 8); `tests/conv3d.rs` holds it to the direct convolution's bound.

mod weights;

use burn::tensor::{Bytes, DType, Shape, ops::ConvOptions};
use burn_flex::{FlexTensor, Layout};

use crate::kernels::matmul::product;
use crate::kernels::parallel::{SharedOutput, map_parts};
use super::epilogue::Epilogue;
use super::scratch::{self, GROUP_FLOATS};
use weights::transformed_weights;

/// Side of a transformed tile (output tile 4 + kernel 3 − 1).
const SIDE: usize = 6;
/// Components of a transformed 6×6 tile.
const COMPONENTS: usize = SIDE * SIDE;
/// Side of an output tile.
const OUT: usize = 4;

/// Whether [`conv3d_f32`] computes this convolution (`x` [B, Cin, T, H, W], `weight`
/// [Cout, Cin, kT, kH, kW]): a 3×3×3 kernel, stride 1, padding 1, and transformed weights
/// U (36·Cout·3·Cin values) no larger than the transformed input V (36·T·Cin·B·tiles), so
/// that the convolution's time goes to the activations rather than to transforming and
/// reading weights. In R3D-18 that is the stride-1 convolutions of the first two stages;
/// the last stages have 1–2 frames of 14² or 7² and most of their time is in their weights.
pub fn applies(x: &[usize], weight: &[usize], options: &ConvOptions<3>) -> bool {
    let tiles = Frame::new(x[2], x[3], x[4]).tile_count();
    weight[2..] == [3, 3, 3] && options.stride == [1; 3] && options.padding == [1; 3] && 3 * weight[0] <= x[2] * x[0] * tiles
}

/// `x`: [B, Cin, T, H, W], `weight`: [Cout, Cin, 3, 3, 3], `bias`: [Cout], `residual`:
/// [B, Cout, T, H, W] → epilogue(conv3d(x, weight) + bias) with padding 1, for the
/// convolutions of [`applies`]. The transformed weights are kept for the next call with
/// these weights if `keep` (inference).
pub(super) fn conv3d_f32(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
    residual: Option<&FlexTensor>,
    relu: bool,
    keep: bool,
) -> FlexTensor {
    let x = x.to_contiguous();
    let shape = x.layout().shape();
    let [batch, in_channels, frames, height, width] = [shape[0], shape[1], shape[2], shape[3], shape[4]];
    let out_channels = weight.layout().shape()[0];
    let frame = Frame::new(frames, height, width);
    let tile_count = frame.tile_count();
    let out_shape = Shape::from(vec![batch, out_channels, frames, height, width]);
    let bias = bias.map(FlexTensor::to_contiguous);
    let residual = residual.map(FlexTensor::to_contiguous);
    if let Some(residual) = &residual {
        assert_eq!(residual.layout().shape(), &out_shape, "conv3d residual shape");
    }
    let weights = transformed_weights(&weight.to_contiguous(), keep); // [36, Cout, 3·Cin]
    let (in_item, out_item) = (in_channels * frames * height * width, out_channels * frames * height * width);
    // Not zeroed first: every value is written once, by `transform_output` (zeroing the 13 MB
    // of a stage-1 output took as long as its output transform's writes).
    let mut output = Vec::<f32>::with_capacity(batch * out_item);
    // Batch items a group at a time: the transformed tiles are about 2.4 times the activations.
    let per_item = COMPONENTS * frames * in_channels.max(out_channels) * tile_count;
    let group = (GROUP_FLOATS / per_item).clamp(1, batch);
    let mut transformed = scratch::take(group * COMPONENTS * frames * in_channels * tile_count);
    let mut products = scratch::take(group * COMPONENTS * frames * out_channels * tile_count);
    for first in (0..batch).step_by(group) {
        let items = group.min(batch - first);
        let x = &x.storage()[first * in_item..][..items * in_item];
        transform_input(x, [items, in_channels], &frame, &mut transformed); // [36, T, Cin, items · tiles]
        multiply(&transformed, &weights, &mut products, [in_channels, out_channels, frames, items * tile_count]); // [36, T, Cout, items · tiles]
        let epilogue = Epilogue {
            bias: bias.as_ref().map(|b| b.storage()),
            residual: residual.as_ref().map(|r| &r.storage()[first * out_item..][..items * out_item]),
            relu,
        };
        // SAFETY: the group's items lie inside the capacity of `output`.
        let out = SharedOutput(unsafe { output.as_mut_ptr().add(first * out_item) });
        transform_output(&products, [items, out_channels], &frame, &epilogue, out);
    }
    // SAFETY: `transform_output` wrote all B·Cout·T·H·W values.
    unsafe { output.set_len(batch * out_item) };
    scratch::give_back(transformed);
    scratch::give_back(products);
    FlexTensor::new(Bytes::from_elems(output), Layout::contiguous(out_shape), DType::F32)
}

/// The frames of one convolution and how its tiles are laid out: ⌈H/4⌉ rows of ⌈W/4⌉
/// tiles per frame, row after row.
#[derive(Clone, Copy)]
struct Frame {
    frames: usize,
    height: usize,
    width: usize,
    /// Rows of 4×4 output tiles: ⌈H/4⌉.
    rows: usize,
    /// Tiles per row: ⌈W/4⌉.
    columns: usize,
}

impl Frame {
    fn new(frames: usize, height: usize, width: usize) -> Self {
        Self { frames, height, width, rows: height.div_ceil(OUT), columns: width.div_ceil(OUT) }
    }

    fn tile_count(&self) -> usize {
        self.rows * self.columns
    }
}

/// [items, Cin, T, H, W] → V: [36, T, Cin, items · tiles], V[6k + l][t][c][b · tiles + i · columns + j]
/// = (Bᵀ·d·B)[k][l] for the 6×6 tile d of rows 4i − 1 … 4i + 4 and columns 4j − 1 … 4j + 4
/// of frame t of item b (zero outside the frame).
///
/// Each zero-padded row is split by the phase of its columns (4 arrays of ⌈W/4⌉ + 1), so
/// that the values a tile combines sit at the same place in those arrays or one place
/// further, and transformed along the columns into arrays split by the phase of the row
/// (4 × 6 arrays of (⌈H/4⌉ + 1) × ⌈W/4⌉); the transform along the rows then reads each of
/// its 6 inputs as one array over the whole frame, from its start or one row of tiles on.
/// (Until 2026-12-03 the column transform also ran over whole frames, which carried a
/// left-over tile per tile row through the products: 1/15 more at 56², 1/8 at 28².)
fn transform_input(x: &[f32], [items, channels]: [usize; 2], frame: &Frame, out: &mut [f32]) {
    let Frame { frames, height, width, rows, columns } = *frame;
    let tile_count = frame.tile_count();
    let shared = SharedOutput(out.as_mut_ptr());
    let transform = |part: usize| {
        let (b, c) = (part / channels, part % channels);
        let source = &x[part * frames * height * width..][..frames * height * width];
        // padded[n] = x[n − 1] on a row, zero outside it; phase[r][m] = padded[4m + r].
        let mut padded = vec![0.0f32; OUT * (columns + 1)];
        let mut phase: [Vec<f32>; OUT] = zeros(columns + 1);
        // ·B over the columns: by_columns[l][s][a · columns + j] for the padded row 4a + s.
        let mut by_columns: [[Vec<f32>; OUT]; SIDE] = std::array::from_fn(|_| zeros((rows + 1) * columns));
        for t in 0..frames {
            for y in 0..OUT * (rows + 1) {
                let row = y.wrapping_sub(1);
                if row < height {
                    padded[1..=width].copy_from_slice(&source[(t * height + row) * width..][..width]);
                    for (m, chunk) in padded.chunks_exact(OUT).enumerate() {
                        [phase[0][m], phase[1][m], phase[2][m], phase[3][m]] = [chunk[0], chunk[1], chunk[2], chunk[3]];
                    }
                } else {
                    phase.iter_mut().for_each(|p| p.fill(0.0));
                }
                let [p0, p1, p2, p3] = phase.each_ref();
                let out = by_columns.each_mut().map(|l| &mut l[y % OUT][y / OUT * columns..][..columns]);
                transform_6(out, [&p0[..columns], &p1[..columns], &p2[..columns], &p3[..columns], &p0[1..], &p1[1..]]);
            }
            // Bᵀ· over the rows, straight into V.
            for (l, [c0, c1, c2, c3]) in by_columns.iter().enumerate() {
                let row = |k: usize| {
                    let start = ((((SIDE * k + l) * frames + t) * channels + c) * items + b) * tile_count;
                    // SAFETY: part (b, c) alone writes V[ξ][t][c][b · tiles …].
                    unsafe { std::slice::from_raw_parts_mut(shared.pointer().add(start), tile_count) }
                };
                let n = tile_count;
                transform_6(std::array::from_fn(row), [&c0[..n], &c1[..n], &c2[..n], &c3[..n], &c0[columns..], &c1[columns..]]);
            }
        }
    };
    map_parts((0..items * channels).collect(), transform);
}

/// Bᵀ·d for each position of 6 rows (the input transform, along either dimension). All
/// slices have the length of `out[0]`.
#[inline(always)]
fn transform_6(out: [&mut [f32]; SIDE], d: [&[f32]; SIDE]) {
    let n = out[0].len();
    let [o0, o1, o2, o3, o4, o5] = out.map(|o| &mut o[..n]);
    let [d0, d1, d2, d3, d4, d5] = d.map(|d| &d[..n]);
    for j in 0..n {
        o0[j] = 4.0 * d0[j] - 5.0 * d2[j] + d4[j];
        o1[j] = (d3[j] + d4[j]) - 4.0 * (d1[j] + d2[j]);
        o2[j] = (d4[j] - d3[j]) + 4.0 * (d1[j] - d2[j]);
        o3[j] = (d4[j] - d2[j]) + 2.0 * (d3[j] - d1[j]);
        o4[j] = (d4[j] - d2[j]) + 2.0 * (d1[j] - d3[j]);
        o5[j] = 4.0 * d1[j] - 5.0 * d3[j] + d5[j];
    }
}

/// Aᵀ·m for each position of 6 rows (the output transform, along either dimension). All
/// slices have the length of `out[0]`.
#[inline(always)]
fn inverse_6(out: [&mut [f32]; OUT], m: [&[f32]; SIDE]) {
    let n = out[0].len();
    let [o0, o1, o2, o3] = out.map(|o| &mut o[..n]);
    let [m0, m1, m2, m3, m4, m5] = m.map(|m| &m[..n]);
    for j in 0..n {
        let (sum12, difference12) = (m1[j] + m2[j], m1[j] - m2[j]);
        let (sum34, difference34) = (m3[j] + m4[j], m3[j] - m4[j]);
        o0[j] = m0[j] + sum12 + sum34;
        o1[j] = difference12 + 2.0 * difference34;
        o2[j] = sum12 + 4.0 * sum34;
        o3[j] = difference12 + 8.0 * difference34 + m5[j];
    }
}

fn zeros<const N: usize>(len: usize) -> [Vec<f32>; N] {
    std::array::from_fn(|_| vec![0.0f32; len])
}

/// M[ξ][t] = U[ξ][:, kernel frames over real input frames] · V[ξ][t − 1 … t + 1]:
/// [Cout, items · tiles] for every component and output frame (`columns` = items · tiles).
fn multiply(v: &[f32], u: &[f32], m: &mut [f32], [in_channels, out_channels, frames, columns]: [usize; 4]) {
    let shared = SharedOutput(m.as_mut_ptr());
    let product = |part: usize| {
        let (component, t) = (part / frames, part % frames);
        // Kernel frames kt read input frame t + kt − 1: those inside 0..frames.
        let (first, end) = (usize::from(t == 0), if t + 1 < frames { 3 } else { 2 });
        let depth = (end - first) * in_channels;
        let lhs = u[(component * out_channels * 3 + first) * in_channels..].as_ptr();
        let rhs = v[((component * frames + t + first - 1) * in_channels) * columns..].as_ptr();
        // SAFETY: U holds Cout rows of 3·Cin from `lhs` (columns first·Cin … end·Cin);
        // V holds `depth` rows of `columns` from `rhs` (the frames t + first − 1 …);
        // part (ξ, t) alone writes M[ξ][t].
        unsafe {
            let dst = shared.pointer().add(part * out_channels * columns);
            product([out_channels, columns, depth], (dst, columns), false, (lhs, 3 * in_channels), (rhs, columns));
        }
    };
    map_parts((0..COMPONENTS * frames).collect(), product);
}

/// M: [36, T, Cout, items · tiles] → `out` = Y = epilogue(Aᵀ·M·A + bias): [items, Cout, T, H, W]
/// (`epilogue.residual`: the same items), every value written once, none read before.
fn transform_output(products: &[f32], [items, channels]: [usize; 2], frame: &Frame, epilogue: &Epilogue, out: SharedOutput) {
    let Frame { frames, height, width, columns, .. } = *frame;
    let tile_count = frame.tile_count();
    let transform = |part: usize| {
        let (b, c) = (part / channels, part % channels);
        // Aᵀ·M over the rows: by_rows[a][l][i · columns + j]; then ·A over the columns:
        // phases[a][r][i · columns + j] = output row 4i + a, column 4j + r, interleaved into
        // `line` (cut to W when written).
        let mut by_rows: [[Vec<f32>; SIDE]; OUT] = std::array::from_fn(|_| zeros(tile_count));
        let mut phases: [[Vec<f32>; OUT]; OUT] = std::array::from_fn(|_| zeros(tile_count));
        let mut line = vec![0.0f32; OUT * columns];
        for t in 0..frames {
            let m = |component: usize| &products[(((component * frames + t) * channels + c) * items + b) * tile_count..][..tile_count];
            for l in 0..SIDE {
                inverse_6(by_rows.each_mut().map(|a| a[l].as_mut_slice()), std::array::from_fn(|k| m(SIDE * k + l)));
            }
            for (phases, by_row) in phases.iter_mut().zip(&by_rows) {
                inverse_6(phases.each_mut().map(Vec::as_mut_slice), by_row.each_ref().map(Vec::as_slice));
            }
            for y in 0..height {
                let [p0, p1, p2, p3] = phases[y % OUT].each_ref().map(|p| &p[y / OUT * columns..][..columns]);
                for ((((chunk, p0), p1), p2), p3) in line.chunks_exact_mut(OUT).zip(p0).zip(p1).zip(p2).zip(p3) {
                    chunk.copy_from_slice(&[*p0, *p1, *p2, *p3]);
                }
                let start = ((b * channels + c) * frames + t) * height * width + y * width;
                // SAFETY: `out` holds the items' Y, part (b, c) alone writes Y[b][c], and this
                // row lies in it; the row is written before a reference to it is made.
                let row = unsafe {
                    let row = out.pointer().add(start);
                    std::ptr::copy_nonoverlapping(line.as_ptr(), row, width);
                    std::slice::from_raw_parts_mut(row, width)
                };
                epilogue.finish(c, start, row);
            }
        }
    };
    map_parts((0..items * channels).collect(), transform);
}
