//! The detector's layers on NHWC activation maps ([`Map`]). The pointwise convolutions,
//! 57 % of its 117 M multiply-adds at input 320, are matrix products ([`product`]: the
//! `gemm` crate natively, register tiles of WebAssembly SIMD in the browser); the first
//! convolution (37 %) has a kernel of its own ([`super::conv0`]); the depthwise filter sums
//! in registers 16 channels at a time; bias, leaky ReLU and max-pooling are one pass. The
//! plain loops (depthwise, pooling) are compiled for the widest vectors the CPU has
//! ([`vectorised`]), and maps reuse their thread's buffers ([`Map::new`]). A 640×480 frame on
//! one thread (`cargo bench --bench face_detector`, `scripts/bench-wasm.mjs` in Node):
//! 27 ms natively and 54 ms in WebAssembly until 2026-12-03 (every layer summed into memory
//! one product at a time, pooling through libm's `fmaxf`), then 7 and 12 ms, now 3.3–3.6
//! and 9 ms: WebAssembly is at its bound there (about 13 G multiply-adds a second:
//! multiply, then add, 4 lanes).

use super::conv0::{CHANNELS, conv0_rows};
use crate::kernels::matmul::product;
use crate::kernels::simd::{Loop, vectorised};

/// An activation map: `height × width × channels`, row-major, channels innermost.
pub(super) struct Map {
    pub(super) height: usize,
    pub(super) width: usize,
    pub(super) channels: usize,
    pub(super) values: Vec<f32>,
}

impl Map {
    /// A map whose maker writes every value. Its buffer is one an earlier map of the same
    /// size on this thread left ([`SPARE`]): a frame's maps have the same sizes as the last
    /// frame's, so after a thread's first frame no map allocates, zeroes or page-faults in
    /// new memory (a third of a frame's time natively when every map was a new zeroed `Vec`).
    pub(super) fn new(height: usize, width: usize, channels: usize) -> Self {
        let len = height * width * channels;
        let spare = SPARE.with_borrow_mut(|spare| spare.iter().position(|v| v.len() == len).map(|i| spare.remove(i)));
        Self { height, width, channels, values: spare.unwrap_or_else(|| vec![0.0; len]) }
    }

    /// The values, which then go back to no spare buffer.
    pub(super) fn into_values(mut self) -> Vec<f32> {
        std::mem::take(&mut self.values)
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        let values = std::mem::take(&mut self.values);
        if !values.is_empty() {
            SPARE.with_borrow_mut(|spare| {
                if spare.len() == SPARE_MAPS {
                    spare.remove(0);
                }
                spare.push(values);
            });
        }
    }
}

/// Spare buffers a thread keeps, the most recently dropped: enough for a frame's maps (at
/// input 320 they need 14 buffers, 12.6 MB in all).
const SPARE_MAPS: usize = 16;

thread_local! {
    /// The buffers of this thread's dropped maps, oldest first, for [`Map::new`].
    static SPARE: std::cell::RefCell<Vec<Vec<f32>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// max(x, 0.1·x), as face-api.js computes it.
fn leaky(v: f32) -> f32 {
    let m = v * 0.1;
    larger(v - m, 0.0) + m
}

/// The larger of a and b (a if b is NaN), by a comparison: `f32::max`, which must also
/// return a if a is NaN, compiles to a call of libm's `fmaxf` per value in WebAssembly
/// (until 2026-12-03 the detector's pooling spent 40 % of its time there).
#[inline(always)]
fn larger(a: f32, b: f32) -> f32 {
    if b > a { b } else { a }
}

/// Output rows of the first convolution summed at a time: a band's sums (8 rows × 318
/// positions × 16 channels at input 320) stay in the L2 cache until pooled.
const BAND: usize = 8;

/// Pooled(leaky(conv0 + bias)) ([`super::conv0`]: 3×3 without padding, 3 → 16 channels, filters
/// `[3, 3, 3, 16]`), pooled 2×2 with stride 2 ([`leaky_pool`]; the convolution's output has
/// an even number of rows and columns: input sides are multiples of 32), a band of rows at
/// a time.
pub(super) fn conv0_leaky_pool(x: &Map, filters: &[f32], bias: &[f32]) -> Map {
    let (height, width) = (x.height - 2, x.width - 2);
    assert!(height % 2 == 0 && width % 2 == 0, "the detector's input sides are multiples of 32");
    let mut out = Map::new(height / 2, width / 2, CHANNELS);
    let mut band = Map::new(BAND, width, CHANNELS);
    for first in (0..height).step_by(BAND) {
        let rows = BAND.min(height - first);
        band.height = rows;
        conv0_rows(x, filters, first, rows, &mut band.values);
        let pooled = &mut out.values[first / 2 * out.width * CHANNELS..][..rows / 2 * out.width * CHANNELS];
        leaky_pool_into(&band, width, bias, 2, pooled);
    }
    out
}

/// Zero padding of 1, depthwise 3×3 (`[3, 3, c, 1]`, no bias), then pointwise (no bias).
pub(super) fn separable(x: &Map, depthwise: &[f32], pointwise_filters: &[f32], cout: usize) -> Map {
    pointwise(&depthwise_3x3(x, depthwise), pointwise_filters, cout)
}

/// Channels the depthwise filter sums at a time, in registers.
const CHANNEL_BLOCK: usize = 16;

/// Depthwise 3×3 with zero padding 1, filters `[3, 3, c, 1]`, no bias.
fn depthwise_3x3(x: &Map, filters: &[f32]) -> Map {
    assert!(
        x.channels.is_multiple_of(CHANNEL_BLOCK),
        "the detector's depthwise layers have a multiple of {CHANNEL_BLOCK} channels, not {}",
        x.channels
    );
    let mut out = Map::new(x.height, x.width, x.channels);
    vectorised(Depthwise { x, filters, out: &mut out.values });
    out
}

/// [`depthwise_3x3`]'s loop: for each row and block of channels, the block's 9 taps of
/// weights are read once, and each position sums its (up to) 9 inputs in registers, rows
/// then columns in order.
struct Depthwise<'a> {
    x: &'a Map,
    filters: &'a [f32],
    out: &'a mut [f32],
}

impl Loop for Depthwise<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Self { x, filters, out } = self;
        let (width, c) = (x.width, x.channels);
        for y in 0..x.height {
            // Kernel rows inside the map around row y (zero padding outside).
            let kernel_rows = y.saturating_sub(1)..(y + 2).min(x.height);
            for block in (0..c).step_by(CHANNEL_BLOCK) {
                let mut taps = [[0.0f32; CHANNEL_BLOCK]; 9];
                for (tap, weights) in taps.iter_mut().enumerate() {
                    weights.copy_from_slice(&filters[tap * c + block..][..CHANNEL_BLOCK]);
                }
                // The sums at output column xo over input columns `first..first + columns`.
                let sum_at = |xo: usize, first: usize, columns: usize| -> [f32; CHANNEL_BLOCK] {
                    let mut sums = [0.0f32; CHANNEL_BLOCK];
                    for sy in kernel_rows.clone() {
                        for sx in first..first + columns {
                            let weights = &taps[(sy + 1 - y) * 3 + (sx + 1 - xo)];
                            let input = &x.values[(sy * width + sx) * c + block..][..CHANNEL_BLOCK];
                            for ((s, v), w) in sums.iter_mut().zip(input).zip(weights) {
                                *s += v * w;
                            }
                        }
                    }
                    sums
                };
                let row = &mut out[y * width * c..][..width * c];
                for xo in 0..width {
                    // Three kernel columns inside the map, fewer at its left and right edges.
                    let sums = if xo > 0 && xo + 1 < width {
                        sum_at(xo, xo - 1, 3)
                    } else {
                        let first = xo.saturating_sub(1);
                        sum_at(xo, first, (xo + 2).min(width) - first)
                    };
                    row[xo * c + block..][..CHANNEL_BLOCK].copy_from_slice(&sums);
                }
            }
        }
    }
}

/// 1×1 convolution, filters `[1, 1, cin, cout]`, no bias.
pub(super) fn pointwise(x: &Map, filters: &[f32], cout: usize) -> Map {
    let cin = x.channels;
    let positions = x.height * x.width;
    let mut out = Map::new(x.height, x.width, cout);
    // SAFETY: x is [positions, cin], filters [cin, cout], out [positions, cout].
    unsafe {
        product(
            [positions, cout, cin],
            (out.values.as_mut_ptr(), cout),
            false,
            (x.values.as_ptr(), cin),
            (filters[..cin * cout].as_ptr(), cout),
        );
    }
    out
}

/// leaky(2×2 max-pool of `x` + bias) with TensorFlow's SAME padding: output ⌈n / stride⌉,
/// the window clipped at the bottom and right edges. (Adding the bias and face-api.js's
/// leaky ReLU after the maximum rather than before gives the same values: both are
/// increasing.)
pub(super) fn leaky_pool(x: &Map, bias: &[f32], stride: usize) -> Map {
    let mut out = Map::new(x.height.div_ceil(stride), x.width.div_ceil(stride), x.channels);
    leaky_pool_into(x, x.width, bias, stride, &mut out.values);
    out
}

/// [`leaky_pool`] of the first `width` columns of `x` into `out` ([⌈H/stride⌉, ⌈width/stride⌉, C]).
fn leaky_pool_into(x: &Map, width: usize, bias: &[f32], stride: usize, out: &mut [f32]) {
    vectorised(LeakyPool { x, width, bias, stride, out });
}

/// [`leaky_pool_into`]'s loop.
struct LeakyPool<'a> {
    x: &'a Map,
    width: usize,
    bias: &'a [f32],
    stride: usize,
    out: &'a mut [f32],
}

impl Loop for LeakyPool<'_> {
    type Output = ();

    #[inline(always)]
    fn run(self) {
        let Self { x, width, bias, stride, out } = self;
        let c = x.channels;
        let out_width = width.div_ceil(stride);
        for (y, row) in out.chunks_exact_mut(out_width * c).enumerate() {
            // The window's two rows and two columns, clipped at the bottom and right edges
            // by taking the last one twice (which leaves the maximum as it is).
            let top = &x.values[y * stride * x.width * c..][..width * c];
            let bottom = &x.values[(y * stride + 1).min(x.height - 1) * x.width * c..][..width * c];
            for (xo, o) in row.chunks_exact_mut(c).enumerate() {
                let (left, right) = (xo * stride * c, (xo * stride + 1).min(width - 1) * c);
                let (a, b, d, e) = (&top[left..][..c], &top[right..][..c], &bottom[left..][..c], &bottom[right..][..c]);
                for (((((o, a), b), d), e), bias) in o.iter_mut().zip(a).zip(b).zip(d).zip(e).zip(bias) {
                    *o = leaky(larger(larger(*a, *b), larger(*d, *e)) + bias);
                }
            }
        }
    }
}
