//! The detector's layers on NHWC activation maps ([`Map`]). The full and pointwise
//! convolutions, 94 % of its 117 M multiply-adds at input 320, are matrix products
//! ([`product`]: the `gemm` crate natively, register tiles of WebAssembly SIMD in the
//! browser); the depthwise filter sums in registers 16 channels at a time; bias, leaky ReLU
//! and max-pooling are one pass. Until 2026-12-03 every layer summed into memory one
//! product at a time and pooled through libm's `fmaxf`: 27 ms a frame natively, 54 ms in
//! WebAssembly (Node), against 7 and 12 ms now (640×480, one thread,
//! `cargo bench --bench face_detector`, `scripts/bench-wasm.mjs`).

use crate::kernels::matmul::product;

/// An activation map: `height × width × channels`, row-major, channels innermost.
pub(super) struct Map {
    pub(super) height: usize,
    pub(super) width: usize,
    pub(super) channels: usize,
    pub(super) values: Vec<f32>,
}

impl Map {
    pub(super) fn zeros(height: usize, width: usize, channels: usize) -> Self {
        Self { height, width, channels, values: vec![0.0; height * width * channels] }
    }
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

/// Output rows of the first convolution summed per product: a band's sums (8 rows × 318
/// positions × 16 channels at input 320) stay in the L2 cache until pooled.
const BAND: usize = 8;

/// Pooled(leaky(3×3 convolution without padding + bias)), filters `[3, 3, cin, cout]`,
/// pooled 2×2 with stride 2 ([`leaky_pool`]; the convolution's output has an even number of
/// rows and columns: input sides are multiples of 32).
///
/// For one kernel row ky, the 3·cin inputs of output (y, xo) lie side by side in input row
/// y + ky from column xo on, and those of (y, xo + 1) start cin further: the input read in
/// place as a matrix of overlapping rows cin apart. Positions run y·W + xo over whole input
/// rows (W = the input's width), so one product per kernel row covers a band of rows; the
/// two positions per row past the output's width (W − 2) read the next row and are not
/// pooled.
pub(super) fn conv3x3_valid_leaky_pool(x: &Map, filters: &[f32], bias: &[f32], cout: usize) -> Map {
    let (cin, width) = (x.channels, x.width);
    let (height, out_width) = (x.height - 2, x.width - 2);
    assert!(height % 2 == 0 && out_width % 2 == 0, "the detector's input sides are multiples of 32");
    let taps = 3 * cin;
    let mut out = Map::zeros(height / 2, out_width / 2, cout);
    let mut band = Map::zeros(BAND, width, cout); // a band's sums: [rows · W, cout]
    for first in (0..height).step_by(BAND) {
        let rows = BAND.min(height - first);
        band.height = rows;
        // Up to the band's last output (first + rows − 1, W − 3).
        let positions = (rows - 1) * width + out_width;
        for ky in 0..3 {
            let input = &x.values[(first + ky) * width * cin..];
            assert!((positions - 1) * cin + taps <= input.len());
            // SAFETY: position p reads input[p·cin .. p·cin + 3·cin], inside the map (its last
            // value at most); kernel row ky is filters[ky·3·cin·cout ..][.. 3·cin·cout]; the
            // band's sums (BAND · W positions) are ours.
            unsafe {
                product(
                    [positions, cout, taps],
                    (band.values.as_mut_ptr(), cout),
                    ky > 0,
                    (input.as_ptr(), cin),
                    (filters[ky * taps * cout..][..taps * cout].as_ptr(), cout),
                );
            }
        }
        let pooled = &mut out.values[first / 2 * out.width * cout..][..rows / 2 * out.width * cout];
        leaky_pool_into(&band, out_width, bias, 2, pooled);
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
    let c = x.channels;
    assert!(c % CHANNEL_BLOCK == 0, "the detector's depthwise layers have a multiple of {CHANNEL_BLOCK} channels, not {c}");
    let mut out = Map::zeros(x.height, x.width, c);
    for y in 0..x.height {
        // Kernel rows and columns inside the map around row y (zero padding outside).
        let kernel_rows = y.saturating_sub(1)..(y + 2).min(x.height);
        for xo in 0..x.width {
            let kernel_columns = xo.saturating_sub(1)..(xo + 2).min(x.width);
            let o = &mut out.values[(y * x.width + xo) * c..][..c];
            for (block, o) in o.chunks_exact_mut(CHANNEL_BLOCK).enumerate() {
                let mut sums = [0.0f32; CHANNEL_BLOCK];
                for sy in kernel_rows.clone() {
                    for sx in kernel_columns.clone() {
                        let tap = (sy + 1 - y) * 3 + (sx + 1 - xo);
                        let input = &x.values[(sy * x.width + sx) * c + block * CHANNEL_BLOCK..][..CHANNEL_BLOCK];
                        let w = &filters[tap * c + block * CHANNEL_BLOCK..][..CHANNEL_BLOCK];
                        for ((s, v), w) in sums.iter_mut().zip(input).zip(w) {
                            *s += v * w;
                        }
                    }
                }
                o.copy_from_slice(&sums);
            }
        }
    }
    out
}

/// 1×1 convolution, filters `[1, 1, cin, cout]`, no bias.
pub(super) fn pointwise(x: &Map, filters: &[f32], cout: usize) -> Map {
    let cin = x.channels;
    let positions = x.height * x.width;
    let mut out = Map::zeros(x.height, x.width, cout);
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
    let mut out = Map::zeros(x.height.div_ceil(stride), x.width.div_ceil(stride), x.channels);
    leaky_pool_into(x, x.width, bias, stride, &mut out.values);
    out
}

/// [`leaky_pool`] of the first `width` columns of `x` into `out` ([⌈H/stride⌉, ⌈width/stride⌉, C]).
fn leaky_pool_into(x: &Map, width: usize, bias: &[f32], stride: usize, out: &mut [f32]) {
    let c = x.channels;
    let out_width = width.div_ceil(stride);
    for (y, row) in out.chunks_exact_mut(out_width * c).enumerate() {
        let window_rows = y * stride..(y * stride + 2).min(x.height);
        for (xo, o) in row.chunks_exact_mut(c).enumerate() {
            let window_columns = xo * stride..(xo * stride + 2).min(width);
            o.fill(f32::NEG_INFINITY);
            for sy in window_rows.clone() {
                for sx in window_columns.clone() {
                    let input = &x.values[(sy * x.width + sx) * c..][..c];
                    o.iter_mut().zip(input).for_each(|(o, &v)| *o = larger(*o, v));
                }
            }
            o.iter_mut().zip(bias).for_each(|(o, b)| *o = leaky(*o + b));
        }
    }
}
