//! The direct convolution: no im2col matrix and no packed copies of the operands.
//!
//! The input is copied once into a zero-padded layout split by stride phase
//! ([`Plan::relayout`]): for stride s, the values at padded positions ≡ r (mod s) form
//! phase r. In that layout every kernel tap reads, for consecutive output positions along W,
//! consecutive values at one fixed offset from the output position ([`Plan::tap_offsets`]),
//! so a tile of output positions is a few contiguous vector loads per (input channel, tap).
//! The output positions are numbered on the phase grid (rows `grid[2]` wide, of which the
//! first W' are real outputs): the few extra columns are computed and dropped.
//!
//! The micro-kernel ([`tile`]) multiplies a tile of output positions by a few output
//! channels' weights, read from the weight tensor as it is, accumulating in registers over
//! a chunk of input channels; bias, residual and ReLU are applied when the tile's output is
//! written. With AVX-512 the micro-kernel ([`blocks`]) is vectorised over output channels
//! instead, from weights packed in blocks of 64 channels. Taps that fall on padding frames
//! in T are skipped for the whole tile: R3D-18's later stages have 1 or 2 frames, so a third
//! to two thirds of their taps read padding.
//! The work is split among the threads by tiles or, where the weights outweigh the input
//! (the last stages), by output channels; large batches are relaid a group of items at a
//! time into a buffer kept between calls ([`scratch`]).

#[cfg(target_arch = "x86_64")]
mod blocks;
mod tile;

use std::ops::Range;

use burn::tensor::{Bytes, DType, Shape, ops::ConvOptions};
use burn_flex::{FlexTensor, Layout};

use crate::kernels::parallel::{SharedOutput, map_parts, threads};
use crate::kernels::simd::Isa;
use super::epilogue::Epilogue;
use super::scratch::{self, GROUP_FLOATS};

impl Isa {
    /// The one to use for a convolution with `out_channels`: AVX-512 computes whole blocks
    /// of 64 output channels ([`blocks`]), so a narrower or ragged layer takes AVX2.
    pub(super) fn for_output_channels(self, out_channels: usize) -> Self {
        #[cfg(target_arch = "x86_64")]
        if self == Self::Avx512 && !out_channels.is_multiple_of(blocks::BLOCK) && Self::available().contains(&Self::Avx2) {
            return Self::Avx2;
        }
        let _ = out_channels;
        self
    }
}

/// The sizes of one convolution and of its relaid input.
pub(super) struct Plan {
    pub batch: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    pub input: [usize; 3],
    pub kernel: [usize; 3],
    pub stride: [usize; 3],
    pub padding: [usize; 3],
    pub output: [usize; 3],
    /// One stride phase of the padded input: ⌈(n + 2p) / s⌉ per dimension.
    pub grid: [usize; 3],
    /// Distance between input channels in the relaid input (all phases of one channel).
    pub channel_stride: usize,
    /// For each tap (kt, kh, kw), where in the relaid input of one channel the value for
    /// output position q lies, minus q.
    pub tap_offsets: Vec<usize>,
}

/// A run of consecutive output positions in one output frame of one batch item, numbered
/// on the phase grid: `start..start + width` (the tile width of the instruction set).
#[derive(Clone, Copy, Debug)]
pub(super) struct Tile {
    pub item: usize,
    /// The item's place in the relaid group of items.
    pub slot: usize,
    pub frame: usize,
    pub start: usize,
}

/// A group's output positions cut into micro-kernel calls.
enum Calls {
    /// [`tile`]'s: runs of the phase grid.
    Tiles(Vec<Tile>),
    /// [`blocks`]'s: any positions of one output frame.
    #[cfg(target_arch = "x86_64")]
    Positions(Vec<blocks::Positions>),
}

/// A part of the work: micro-kernel calls (tiles or positions) × output channels, run by one
/// thread.
struct Unit {
    tiles: Range<usize>,
    channels: Range<usize>,
}

impl Plan {
    fn new(x: &Shape, weight: &Shape, options: &ConvOptions<3>) -> Self {
        let input = [x[2], x[3], x[4]];
        let kernel = [weight[2], weight[3], weight[4]];
        let (stride, padding) = (options.stride, options.padding);
        let output = std::array::from_fn(|d| (input[d] + 2 * padding[d] - kernel[d]) / stride[d] + 1);
        let grid: [usize; 3] = std::array::from_fn(|d| (input[d] + 2 * padding[d]).div_ceil(stride[d]));
        let phase_len = grid.iter().product::<usize>();
        let mut tap_offsets = Vec::with_capacity(kernel.iter().product());
        for kt in 0..kernel[0] {
            for kh in 0..kernel[1] {
                for kw in 0..kernel[2] {
                    let phase = ((kt % stride[0]) * stride[1] + kh % stride[1]) * stride[2] + kw % stride[2];
                    let shift = ((kt / stride[0]) * grid[1] + kh / stride[1]) * grid[2] + kw / stride[2];
                    tap_offsets.push(phase * phase_len + shift);
                }
            }
        }
        Self {
            batch: x[0],
            in_channels: x[1],
            out_channels: weight[0],
            input,
            kernel,
            stride,
            padding,
            output,
            grid,
            channel_stride: stride.iter().product::<usize>() * phase_len,
            tap_offsets,
        }
    }

    fn taps(&self) -> usize {
        self.tap_offsets.len()
    }

    /// Weights per output channel: Cin·kT·kH·kW.
    fn patch_len(&self) -> usize {
        self.in_channels * self.taps()
    }

    fn item_len(&self) -> usize {
        self.in_channels * self.channel_stride
    }

    fn frame_len(&self) -> usize {
        self.grid[1] * self.grid[2]
    }

    fn output_positions(&self) -> usize {
        self.output.iter().product()
    }

    /// The taps that read real input frames (not padding) for output frame `frame`: a
    /// contiguous range, since taps are ordered (kt, kh, kw).
    fn valid_taps(&self, frame: usize) -> Range<usize> {
        let start = frame * self.stride[0];
        let first = self.padding[0].saturating_sub(start).min(self.kernel[0]);
        let end = (self.input[0] + self.padding[0]).saturating_sub(start).clamp(first, self.kernel[0]);
        let per_frame = self.kernel[1] * self.kernel[2];
        first * per_frame..end * per_frame
    }

    /// The taps some output frame reads a real input frame with.
    #[cfg(target_arch = "x86_64")]
    fn taps_read(&self) -> Range<usize> {
        let valid = (0..self.output[0]).map(|frame| self.valid_taps(frame));
        valid.clone().map(|taps| taps.start).min().unwrap_or(0)..valid.map(|taps| taps.end).max().unwrap_or(0)
    }

    /// The batch items `items` of the input `[B, Cin, T, H, W]`, zero-padded and split by
    /// stride phase, written over all of `target`'s first `items.len()` items:
    /// `[item, Cin, sT, sH, sW, grid T, grid H, grid W]`. Phases no tap reads are left as
    /// they were (a 1×1×1 convolution with stride 2 reads one of 8).
    fn relayout(&self, x: &InputRows, items: Range<usize>, target: &mut [f32]) {
        let [t, h, w] = self.input;
        let phase_len = self.grid.iter().product::<usize>();
        let [row_len, rows] = [self.grid[2], self.grid[1]];
        let read = |phase: usize| self.tap_offsets.iter().any(|offset| offset / phase_len == phase);
        let fill = |(part, target): (usize, &mut [f32])| {
            let (item, channel) = (items.start + part / self.in_channels, part % self.in_channels);
            for (phase, target) in target.chunks_exact_mut(phase_len).enumerate().filter(|&(phase, _)| read(phase)) {
                let (rt, rh, rw) = (phase / (self.stride[1] * self.stride[2]), phase / self.stride[2] % self.stride[1], phase % self.stride[2]);
                let frames = inside(self.grid[0], t, rt, self.stride[0], self.padding[0]);
                let valid_rows = inside(rows, h, rh, self.stride[1], self.padding[1]);
                let columns = inside(row_len, w, rw, self.stride[2], self.padding[2]);
                for (index, target) in target.chunks_exact_mut(row_len).enumerate() {
                    let (ut, uh) = (index / rows, index % rows);
                    if !frames.contains(&ut) || !valid_rows.contains(&uh) {
                        target.fill(0.0);
                        continue;
                    }
                    let (it, ih) = (ut * self.stride[0] + rt - self.padding[0], uh * self.stride[1] + rh - self.padding[1]);
                    let row = x.row([item, channel, it, ih]);
                    target[..columns.start].fill(0.0);
                    target[columns.end..].fill(0.0);
                    let first = columns.start * self.stride[2] + rw - self.padding[2];
                    for (value, &source) in target[columns.clone()].iter_mut().zip(row[first..].iter().step_by(self.stride[2])) {
                        *value = source;
                    }
                }
            }
        };
        let target = &mut target[..items.len() * self.item_len()];
        map_parts(target.chunks_mut(self.channel_stride).enumerate().collect(), fill);
    }

    /// Every output frame's positions of the batch items `items` cut into tiles of `width`.
    fn tiles(&self, items: Range<usize>, width: usize) -> Vec<Tile> {
        let [frames, rows, columns] = self.output;
        let span = (rows - 1) * self.grid[2] + columns; // phase-grid positions of one frame
        let mut tiles = Vec::new();
        for (slot, item) in items.enumerate() {
            for frame in 0..frames {
                let first = frame * self.frame_len();
                tiles.extend((first..first + span).step_by(width).map(|start| Tile { item, slot, frame, start }));
            }
        }
        tiles
    }

    /// Splits tiles × output channels among the threads: along the output channels when the
    /// weights outweigh the input (each part then reads only its channels' weights), along
    /// the tiles otherwise, with at most `ACCUMULATOR_FLOATS` of partial sums per part.
    fn units(&self, tiles: usize, items: usize, width: usize, channels_per_call: usize) -> Vec<Unit> {
        const ACCUMULATOR_FLOATS: usize = 1 << 14;
        let target = 4 * threads();
        let weights = self.out_channels * self.patch_len();
        let input = items * self.item_len();
        let blocks = self.out_channels.div_ceil(channels_per_call);
        let channel_parts = if weights > input && target > 1 { target.min(blocks) } else { 1 };
        let per_part = blocks.div_ceil(channel_parts) * channels_per_call;
        let tile_parts = target
            .div_ceil(channel_parts)
            .max((tiles * per_part * width).div_ceil(ACCUMULATOR_FLOATS))
            .min(tiles);
        let tiles_per_part = tiles.div_ceil(tile_parts);
        let mut units = Vec::new();
        for start in (0..tiles).step_by(tiles_per_part) {
            for first in (0..self.out_channels).step_by(per_part) {
                units.push(Unit {
                    tiles: start..(start + tiles_per_part).min(tiles),
                    channels: first..(first + per_part).min(self.out_channels),
                });
            }
        }
        units
    }
}

/// The rows along W of an input `x` [B, Cin, T, H, W] as it is stored: any view whose W
/// values are consecutive (a clip split into instances is one: [B, T, 3, H, W] with T
/// and the channels swapped) is read in place by [`Plan::relayout`], which copies it
/// anyway, instead of being made contiguous first (Burn's copy of a paper clip's split
/// took 2.8 ms, a fifth of the first convolution).
struct InputRows<'a> {
    values: &'a [f32],
    start: usize,
    /// Of B, Cin, T and H.
    strides: [usize; 4],
    width: usize,
}

impl<'a> InputRows<'a> {
    /// `None` if the W values of `x` are not consecutive or a stride is negative.
    fn new(x: &'a FlexTensor) -> Option<Self> {
        let layout = x.layout();
        let strides = layout.strides();
        if strides[4] != 1 || !layout.has_positive_strides() {
            return None;
        }
        Some(Self {
            values: x.storage(),
            start: layout.start_offset(),
            strides: std::array::from_fn(|d| strides[d] as usize),
            width: layout.shape()[4],
        })
    }

    /// x[b][c][t][h][..]
    fn row(&self, index: [usize; 4]) -> &'a [f32] {
        let offset: usize = index.iter().zip(&self.strides).map(|(i, s)| i * s).sum();
        &self.values[self.start + offset..][..self.width]
    }
}

/// The range of u in 0..grid for which u·stride + phase − padding lies in 0..len.
fn inside(grid: usize, len: usize, phase: usize, stride: usize, padding: usize) -> Range<usize> {
    let first = padding.saturating_sub(phase).div_ceil(stride);
    let end = (len + padding).saturating_sub(phase).div_ceil(stride).min(grid);
    first.min(end)..end
}

/// `x`: [B, Cin, T, H, W], `weight`: [Cout, Cin, kT, kH, kW], `bias`: [Cout], `residual`:
/// [B, Cout, T', H', W'] → [B, Cout, T', H', W'] = epilogue(conv3d(x, weight) + bias). Weights
/// rearranged for the kernel are kept for the next call with these weights if `keep`
/// (inference).
#[allow(clippy::too_many_arguments)]
pub(super) fn conv3d_f32(
    isa: Isa,
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
    residual: Option<&FlexTensor>,
    options: &ConvOptions<3>,
    relu: bool,
    keep: bool,
) -> FlexTensor {
    let contiguous;
    let x = match InputRows::new(x) {
        Some(_) => x,
        None => {
            contiguous = x.to_contiguous();
            &contiguous
        }
    };
    let rows = InputRows::new(x).expect("a contiguous tensor's rows are consecutive");
    let weight = weight.to_contiguous();
    let bias = bias.map(FlexTensor::to_contiguous);
    let residual = residual.map(FlexTensor::to_contiguous);
    let plan = Plan::new(x.layout().shape(), weight.layout().shape(), options);
    let [t, h, w] = plan.output;
    let out_shape = Shape::from(vec![plan.batch, plan.out_channels, t, h, w]);
    if let Some(residual) = &residual {
        assert_eq!(residual.layout().shape(), &out_shape, "conv3d residual shape");
    }
    let (width, channels_per_call) = match isa {
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => (blocks::POSITIONS, blocks::BLOCK),
        _ => tile::shape(isa),
    };
    #[cfg(target_arch = "x86_64")]
    let packed = (isa == Isa::Avx512).then(|| {
        let taps = plan.taps_read();
        (blocks::packed(&weight, &plan, taps.clone(), keep), taps)
    });
    #[cfg(not(target_arch = "x86_64"))]
    let _ = keep;
    // Not zeroed first: the kernels write every output value once.
    let mut output = Vec::<f32>::with_capacity(out_shape.num_elements());
    let shared = SharedOutput(output.as_mut_ptr());
    let epilogue = Epilogue {
        bias: bias.as_ref().map(|b| b.storage()),
        residual: residual.as_ref().map(|r| r.storage()),
        relu,
    };
    let weights: &[f32] = weight.storage();
    // Batch items are relaid and convolved a group at a time, in one reused buffer.
    let group = (GROUP_FLOATS / plan.item_len()).clamp(1, plan.batch);
    let mut input = scratch::take(group * plan.item_len() + width);
    for first in (0..plan.batch).step_by(group) {
        let items = first..(first + group).min(plan.batch);
        plan.relayout(&rows, items.clone(), &mut input);
        let calls = match () {
            #[cfg(target_arch = "x86_64")]
            () if packed.is_some() => Calls::Positions(blocks::positions(&plan, items.clone())),
            () => Calls::Tiles(plan.tiles(items.clone(), width)),
        };
        let count = match &calls {
            Calls::Tiles(tiles) => tiles.len(),
            #[cfg(target_arch = "x86_64")]
            Calls::Positions(positions) => positions.len(),
        };
        let units = plan.units(count, items.len(), width, channels_per_call);
        let run = |unit: &Unit| {
            // SAFETY: `isa` was detected on this CPU; `output` holds B·Cout·T'·H'·W' floats of
            // which this unit writes only its calls × channels; `input` holds the group's
            // relayout and `width` floats more; the packed weights hold the taps read.
            unsafe {
                match &calls {
                    Calls::Tiles(tiles) => {
                        tile::run(isa, &plan, &input, weights, &tiles[unit.tiles.clone()], unit.channels.clone(), &epilogue, shared.pointer())
                    }
                    #[cfg(target_arch = "x86_64")]
                    Calls::Positions(positions) => {
                        let (packed, taps) = packed.as_ref().expect("AVX-512 packs its weights");
                        let positions = &positions[unit.tiles.clone()];
                        blocks::run(&plan, &input, blocks::aligned(packed), taps, positions, unit.channels.clone(), &epilogue, shared.pointer())
                    }
                }
            }
        };
        map_parts(units.iter().collect(), run);
    }
    scratch::give_back(input);
    // SAFETY: the units of all groups wrote all B·Cout·T'·H'·W' values.
    unsafe { output.set_len(out_shape.num_elements()) };
    FlexTensor::new(Bytes::from_elems(output), Layout::contiguous(out_shape), DType::F32)
}

