//! The geometry of a convolution and the im2col matrix: its rows are the weights' own
//! layout (Cin, kT, kH, kW), its columns a block of output positions; each row is built
//! line by line from one input line (a contiguous copy at stride 1).

use burn::tensor::{Shape, ops::ConvOptions};

/// Bytes of f32 in one block of im2col columns (≈ L2 size): the block's columns are built,
/// multiplied and finished before the next block.
const COLUMN_BLOCK_BYTES: usize = 2 << 20;
/// Fewest output positions per block, so that a block's GEMM stays efficient for wide kernels.
const MIN_BLOCK_COLUMNS: usize = 64;

/// Sizes of one convolution (groups 1, dilation 1).
pub(super) struct Geometry {
    pub batch: usize,
    pub in_channels: usize,
    pub input: [usize; 3],
    pub out_channels: usize,
    pub kernel: [usize; 3],
    pub stride: [usize; 3],
    pub padding: [usize; 3],
    pub output: [usize; 3],
}

impl Geometry {
    pub fn new(x: &Shape, weight: &Shape, options: &ConvOptions<3>) -> Self {
        let input = [x[2], x[3], x[4]];
        let kernel = [weight[2], weight[3], weight[4]];
        let output = std::array::from_fn(|i| (input[i] + 2 * options.padding[i] - kernel[i]) / options.stride[i] + 1);
        Self {
            batch: x[0],
            in_channels: x[1],
            input,
            out_channels: weight[0],
            kernel,
            stride: options.stride,
            padding: options.padding,
            output,
        }
    }

    /// Rows of the im2col matrix: Cin·kT·kH·kW (the GEMM's inner dimension).
    pub fn patch_len(&self) -> usize {
        self.in_channels * self.kernel.iter().product::<usize>()
    }

    /// Values of one batch item of the input: Cin·T·H·W.
    pub fn input_len(&self) -> usize {
        self.in_channels * self.input.iter().product::<usize>()
    }

    /// Output positions T'·H'·W' per channel.
    pub fn output_positions(&self) -> usize {
        self.output.iter().product()
    }

    /// The blocks of output positions of one batch item.
    pub fn blocks(&self) -> impl Iterator<Item = Block> {
        let positions = self.output_positions();
        let columns = (COLUMN_BLOCK_BYTES / (4 * self.patch_len())).max(MIN_BLOCK_COLUMNS).min(positions).max(1);
        (0..positions).step_by(columns).map(move |start| Block { start, end: (start + columns).min(positions) })
    }
}

/// One block of work: output positions `start..end` of one batch item.
#[derive(Clone, Copy)]
pub(super) struct Block {
    pub start: usize,
    pub end: usize,
}

impl Block {
    pub fn width(&self) -> usize {
        self.end - self.start
    }
}

/// Fills `columns` ([Cin·kT·kH·kW, width], row-major) with the input values under each
/// kernel tap for the block's output positions (zeros in the padding).
/// `input`: the block's batch item, [Cin, T, H, W].
pub(super) fn im2col(geometry: &Geometry, input: &[f32], block: Block, columns: &mut [f32]) {
    visit_patch_lines(geometry, block, |row, cols, source| {
        let out = &mut columns[row * block.width()..][cols];
        match source {
            Some((line, first)) => gather(out, &input[line], first, geometry.stride[2]),
            None => out.fill(0.0),
        }
    });
}

/// The adjoint of [`im2col`]: adds each value of `columns` to the input position it was
/// read from (padding positions are dropped). `input`: [Cin, T, H, W].
pub(super) fn col2im(geometry: &Geometry, columns: &[f32], block: Block, input: &mut [f32]) {
    visit_patch_lines(geometry, block, |row, cols, source| {
        if let Some((line, first)) = source {
            scatter_add(&columns[row * block.width()..][cols], &mut input[line], first, geometry.stride[2]);
        }
    });
}

/// Calls `visit(row, columns, source)` for each im2col row and each output line (fixed t',
/// h') in the block: `columns` is the line's range of the block's columns, `source` the
/// input line the kernel tap reads (its index range in the batch item, and the input w of
/// the line's first output position, which may lie in the padding), or `None` when the
/// tap falls on a padding line.
fn visit_patch_lines(
    geometry: &Geometry,
    block: Block,
    mut visit: impl FnMut(usize, std::ops::Range<usize>, Option<(std::ops::Range<usize>, isize)>),
) {
    let [in_t, in_h, in_w] = geometry.input;
    let [kernel_t, kernel_h, kernel_w] = geometry.kernel;
    let [stride_t, stride_h, stride_w] = geometry.stride;
    let [pad_t, pad_h, pad_w] = geometry.padding.map(|p| p as isize);
    let lines = output_lines(geometry, block);
    let mut row = 0;
    for channel in 0..geometry.in_channels {
        let plane = channel * in_t * in_h * in_w;
        for kt in 0..kernel_t {
            for kh in 0..kernel_h {
                for kw in 0..kernel_w {
                    let mut filled = 0;
                    for &[t, h, w0, len] in &lines {
                        let it = (t * stride_t + kt) as isize - pad_t;
                        let ih = (h * stride_h + kh) as isize - pad_h;
                        let source = ((0..in_t as isize).contains(&it) && (0..in_h as isize).contains(&ih)).then(|| {
                            let line = plane + (it as usize * in_h + ih as usize) * in_w;
                            (line..line + in_w, (w0 * stride_w + kw) as isize - pad_w)
                        });
                        visit(row, filled..filled + len, source);
                        filled += len;
                    }
                    row += 1;
                }
            }
        }
    }
}

/// The block's output positions cut into runs along W' (one output line, fixed t' and h',
/// each): (t', h', first w', length).
fn output_lines(geometry: &Geometry, block: Block) -> Vec<[usize; 4]> {
    let [_, out_h, out_w] = geometry.output;
    let (mut t, rest) = (block.start / (out_h * out_w), block.start % (out_h * out_w));
    let (mut h, mut w0) = (rest / out_w, rest % out_w);
    let mut lines = Vec::new();
    let mut filled = 0;
    while filled < block.width() {
        let len = (out_w - w0).min(block.width() - filled);
        lines.push([t, h, w0, len]);
        filled += len;
        w0 = 0;
        h += 1;
        if h == out_h {
            h = 0;
            t += 1;
        }
    }
    lines
}

/// The range of i in 0..len for which first + i·stride lies in 0..line_len.
fn inside(len: usize, line_len: usize, first: isize, stride: usize) -> std::ops::Range<usize> {
    let (len, step) = (len as isize, stride as isize);
    let ceil_div = |a: isize, b: isize| (a + b - 1).div_euclid(b);
    let lo = ceil_div(-first, step).clamp(0, len);
    let hi = ceil_div(line_len as isize - first, step).clamp(lo, len);
    lo as usize..hi as usize
}

/// out[i] = line[first + i·stride], or 0 where that index is outside the line.
fn gather(out: &mut [f32], line: &[f32], first: isize, stride: usize) {
    let valid = inside(out.len(), line.len(), first, stride);
    out[..valid.start].fill(0.0);
    out[valid.end..].fill(0.0);
    if valid.is_empty() {
        return;
    }
    let from = (first + (valid.start * stride) as isize) as usize;
    // Lines are short (7 to 56 values): plain loops, not memcpy calls.
    if stride == 1 {
        let n = valid.len();
        for (o, &v) in out[valid].iter_mut().zip(&line[from..from + n]) {
            *o = v;
        }
    } else {
        for (o, &v) in out[valid].iter_mut().zip(line[from..].iter().step_by(stride)) {
            *o = v;
        }
    }
}

/// line[first + i·stride] += values[i] where that index is inside the line.
fn scatter_add(values: &[f32], line: &mut [f32], first: isize, stride: usize) {
    let valid = inside(values.len(), line.len(), first, stride);
    if valid.is_empty() {
        return;
    }
    let from = (first + (valid.start * stride) as isize) as usize;
    if stride == 1 {
        let n = valid.len();
        for (&v, l) in values[valid].iter().zip(&mut line[from..from + n]) {
            *l += v;
        }
    } else {
        for (&v, l) in values[valid].iter().zip(line[from..].iter_mut().step_by(stride)) {
            *l += v;
        }
    }
}
