//! What both forward convolutions apply to their output as they write it: bias, residual
//! and ReLU, in that order (the order of the backbone's unfused layers, so that the fused
//! and unfused paths give the same floats).

/// The epilogue of one convolution call (or of one group of its batch items).
pub(super) struct Epilogue<'a> {
    /// Per output channel.
    pub bias: Option<&'a [f32]>,
    /// Same layout as the output (the call's or the group's items).
    pub residual: Option<&'a [f32]>,
    pub relu: bool,
}

impl Epilogue<'_> {
    /// `values` holds convolution sums of output `channel` at the contiguous output positions
    /// `start..start + values.len()`; replaces each by relu(sum + bias + residual).
    #[inline(always)]
    pub fn finish(&self, channel: usize, start: usize, values: &mut [f32]) {
        let bias = self.bias.map_or(0.0, |bias| bias[channel]);
        values.iter_mut().for_each(|v| *v += bias);
        self.finish_biased(start, values);
    }

    /// [`Epilogue::finish`] of values that hold sum + bias already: adds the residual, then
    /// ReLU.
    #[inline(always)]
    pub fn finish_biased(&self, start: usize, values: &mut [f32]) {
        let end = start + values.len();
        if let Some(residual) = self.residual {
            values.iter_mut().zip(&residual[start..end]).for_each(|(v, r)| *v += r);
        }
        if self.relu {
            // Not `v.max(0.0)`: its NaN rule (the other operand) is not WebAssembly's `max`
            // (NaN), so there it became a call to `fmaxf` per value (3 % of a clip's time in
            // Node's profile); this comparison is the same function (NaN → 0) and vectorises
            // everywhere (x86 `maxps`, WebAssembly `f32x4.pmax`).
            values.iter_mut().for_each(|v| *v = if *v > 0.0 { *v } else { 0.0 });
        }
    }
}
