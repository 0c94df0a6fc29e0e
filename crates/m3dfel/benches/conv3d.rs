//! The backbone's convolutions on the CPU: Burn's `conv3d` + tensor-op epilogue (what the
//! model ran before `kernels/conv3d_flex`) against the direct convolution with each
//! instruction set this CPU has and against what the model runs now (the `Flex` column:
//! Winograd's F(4×4, 3×3) where it applies, else the direct convolution), layer shape by
//! layer shape, timed in the same run.
//!
//! `cargo bench --workspace --bench conv3d [-- PRESET [CLIPS]]` (default: paper 1; one clip is
//! 4 instances). Reports medians, GFLOP/s of useful work (2 × the multiply-adds whose input
//! value lies inside the input: taps over zero padding excluded, since no implementation has
//! to do them; R3D-18's later stages have 1–2 frames, so frameworks' nominal count, every tap
//! included, is 1.5× this for a paper clip) and the ratio direct / Burn (< 1: faster).
//! The bound those rates are held against is measured first, in the same run: every thread
//! doing nothing but independent fused multiply-adds with the instruction set Flex uses.

mod common;

use std::time::Duration;

use burn::backend::Flex;
use burn::tensor::{Distribution, Tensor, ops::ConvOptions};
use m3dfel::M3dfelConfig;
use m3dfel::backbone::conv::{Conv3dBackend, ConvEpilogue, conv3d_portable};
use m3dfel::kernels::conv3d_flex::{Isa, Kernel, best_isa, conv3d_with, winograd};

use common::{median, timings};

const WARMUP: usize = 1;
const RUNS: usize = 5;

/// One distinct convolution of R3D-18 and how often a forward pass runs it.
struct Layer {
    name: String,
    count: usize,
    x: [usize; 5],
    out_channels: usize,
    kernel: [usize; 3],
    stride: [usize; 3],
    residual: bool,
}

impl Layer {
    fn options(&self) -> ConvOptions<3> {
        ConvOptions::new(self.stride, self.kernel.map(|k| k / 2), [1; 3], 1)
    }

    fn output(&self) -> [usize; 5] {
        let [b, _, t, h, w] = self.x;
        let o = |n: usize, d: usize| (n + 2 * (self.kernel[d] / 2) - self.kernel[d]) / self.stride[d] + 1;
        [b, self.out_channels, o(t, 0), o(h, 1), o(w, 2)]
    }

    /// 2 × the multiply-adds that read a real input value (not padding).
    fn flops(&self) -> f64 {
        let output = self.output();
        let [b, c, ..] = output;
        let taps = |d: usize| {
            let (n, k, s, p) = (self.x[2 + d], self.kernel[d], self.stride[d], self.kernel[d] / 2);
            let inside = |o: usize, tap: usize| (p..p + n).contains(&(o * s + tap));
            (0..output[2 + d]).map(|o| (0..k).filter(|&tap| inside(o, tap)).count()).sum::<usize>()
        };
        2.0 * (b * c * self.x[1] * taps(0) * taps(1) * taps(2)) as f64
    }
}

/// The convolutions of R3D-18 at `widths` on `batch` instances of `frames` × `size`².
fn layers(widths: [usize; 4], batch: usize, frames: usize, size: usize) -> Vec<Layer> {
    let mut layers = vec![Layer {
        name: "stem 3×7×7 /1,2,2".into(),
        count: 1,
        x: [batch, 3, frames, size, size],
        out_channels: widths[0],
        kernel: [3, 7, 7],
        stride: [1, 2, 2],
        residual: false,
    }];
    let mut x = [batch, widths[0], frames, size / 2, size / 2];
    for (stage, &width) in widths.iter().enumerate() {
        let stride = if stage == 0 { 1 } else { 2 };
        let block = |x: [usize; 5], kernel: [usize; 3], stride: usize, count: usize, residual: bool, what: &str| Layer {
            name: format!("stage {} {what}", stage + 1),
            count,
            x,
            out_channels: width,
            kernel,
            stride: [stride; 3],
            residual,
        };
        let mut same = 3;
        if stride != 1 || x[1] != width {
            layers.push(block(x, [1, 1, 1], stride, 1, false, "1×1×1 /2"));
            layers.push(block(x, [3, 3, 3], stride, 1, false, "3×3×3 /2"));
            x = layers.last().expect("just pushed").output();
        } else {
            same = 4;
        }
        layers.push(block(x, [3, 3, 3], 1, same, true, "3×3×3"));
    }
    layers
}

/// The median of `RUNS` timings of `work` after `WARMUP` untimed runs.
fn time(work: impl FnMut()) -> Duration {
    median(&timings(WARMUP, RUNS, work))
}

fn random<const D: usize>(shape: [usize; D]) -> Tensor<Flex, D> {
    Tensor::random(shape, Distribution::Uniform(-1.0, 1.0), &Default::default())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let preset = args.first().map_or("paper", String::as_str);
    let clips: usize = args.get(1).map_or(1, |c| c.parse().expect("CLIPS must be a number"));
    let config = M3dfelConfig::preset(preset).unwrap_or_else(|| panic!("unknown preset {preset}"));
    let instances = clips * config.num_frames / config.instance_length;
    let isas = Isa::available();
    println!(
        "R3D-18 convolutions, {preset} preset, {clips} clip(s) = {instances} instances of {}×{}², {} threads; median of {RUNS} after {WARMUP} warm-up; Flex uses {} here",
        config.instance_length,
        config.frame_size,
        threads(),
        best_isa().map_or("Burn's conv3d".to_string(), |isa| format!("direct {isa:?}"))
    );
    let peak = best_isa().map(fma_peak);
    if let Some(peak) = peak {
        println!("FMA peak of this machine (measured, {} threads): {peak:.0} GFLOP/s", threads());
    }
    print!("{:<22} {:>5} {:>16}", "layer", "count", "Burn conv3d");
    for isa in &isas {
        print!(" {:>22}", format!("direct {isa:?}"));
    }
    print!(" {:>22}", "Flex");
    println!();
    let mut totals = vec![0.0f64; 2 + isas.len()];
    let mut total_flops = 0.0;
    for layer in layers(config.widths, instances, config.instance_length, config.frame_size) {
        let x = random(layer.x);
        let [_, c_in, ..] = layer.x;
        let weight = random([layer.out_channels, c_in, layer.kernel[0], layer.kernel[1], layer.kernel[2]]);
        let bias = random([layer.out_channels]);
        let residual = layer.residual.then(|| random(layer.output()));
        let epilogue = || match &residual {
            Some(r) => ConvEpilogue::residual_relu(r.clone()),
            None => ConvEpilogue::relu(),
        };
        let mut times = vec![time(|| {
            conv3d_portable(x.clone(), weight.clone(), Some(bias.clone()), layer.options(), epilogue());
        })];
        for &isa in &isas {
            times.push(time(|| {
                conv3d_with(Kernel::Direct(isa), x.clone(), weight.clone(), Some(bias.clone()), layer.options(), epilogue());
            }));
        }
        times.push(time(|| {
            Flex::conv3d_fused(x.clone(), weight.clone(), Some(bias.clone()), layer.options(), epilogue());
        }));
        let method = if winograd::applies(&layer.x, &weight.dims(), &layer.options()) { "W" } else { "" };
        let gflops = |t: Duration| layer.flops() / t.as_secs_f64() / 1e9;
        print!("{:<22} {:>5} {:>8.2} ms {:>4.0} GF/s", layer.name, layer.count, ms(times[0]), gflops(times[0]));
        for &t in &times[1..] {
            print!(" {:>8.2} ms {:>4.0} GF ×{:.2}", ms(t), gflops(t), t.as_secs_f64() / times[0].as_secs_f64());
        }
        println!(" {method}");
        for (total, t) in totals.iter_mut().zip(&times) {
            *total += layer.count as f64 * t.as_secs_f64();
        }
        total_flops += layer.count as f64 * layer.flops();
    }
    print!("{:<22} {:>5} {:>8.1} ms {:>4.0} GF/s", "one forward pass", "", totals[0] * 1e3, total_flops / totals[0] / 1e9);
    for &t in &totals[1..] {
        print!(" {:>8.1} ms {:>4.0} GF ×{:.2}", t * 1e3, total_flops / t / 1e9, t / totals[0]);
    }
    println!();
    if let Some(peak) = peak {
        print!("{:<22} {:>5} {:>19.0} %", "share of the FMA peak", "", 100.0 * total_flops / totals[0] / 1e9 / peak);
        for &t in &totals[1..] {
            print!(" {:>24.0} %", 100.0 * total_flops / t / 1e9 / peak);
        }
        println!();
    }
}

/// GFLOP/s of nothing but fused multiply-adds on every thread with `isa`'s vectors
/// (12 independent accumulators per thread, as many as the micro-kernel keeps); best of 3.
#[cfg(target_arch = "x86_64")]
fn fma_peak(isa: Isa) -> f64 {
    use rayon::prelude::*;
    const STEPS: usize = 20_000_000;
    let lanes = match isa {
        Isa::Avx512 => 16,
        Isa::Avx2 => 8,
    };
    let flops = (threads() * STEPS * 12 * lanes * 2) as f64;
    let best = timings(0, 3, || {
        let sink: f32 = (0..threads())
            .into_par_iter()
            // SAFETY: `isa` is one this CPU has (`best_isa`).
            .map(|_| unsafe {
                match isa {
                    Isa::Avx512 => fma_chains_avx512(STEPS),
                    Isa::Avx2 => fma_chains_avx2(STEPS),
                }
            })
            .sum();
        std::hint::black_box(sink);
    })
    .into_iter()
    .min()
    .expect("three runs");
    flops / best.as_secs_f64() / 1e9
}

/// The direct convolution has no instruction set on other CPUs, so there is nothing to measure.
#[cfg(not(target_arch = "x86_64"))]
fn fma_peak(isa: Isa) -> f64 {
    match isa {}
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fma_chains_avx2(steps: usize) -> f32 {
    use std::arch::x86_64::*;
    let (a, b) = (_mm256_set1_ps(std::hint::black_box(0.999_99)), _mm256_set1_ps(std::hint::black_box(1e-6)));
    let mut acc = [_mm256_setzero_ps(); 12];
    for _ in 0..steps {
        for v in &mut acc {
            *v = _mm256_fmadd_ps(*v, a, b);
        }
    }
    let mut lanes = [0.0f32; 8];
    // SAFETY: `lanes` holds 8 floats.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), acc.iter().fold(_mm256_setzero_ps(), |s, &v| _mm256_add_ps(s, v))) };
    lanes.iter().sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn fma_chains_avx512(steps: usize) -> f32 {
    use std::arch::x86_64::*;
    let (a, b) = (_mm512_set1_ps(std::hint::black_box(0.999_99)), _mm512_set1_ps(std::hint::black_box(1e-6)));
    let mut acc = [_mm512_setzero_ps(); 12];
    for _ in 0..steps {
        for v in &mut acc {
            *v = _mm512_fmadd_ps(*v, a, b);
        }
    }
    _mm512_reduce_add_ps(acc.iter().fold(_mm512_setzero_ps(), |s, &v| _mm512_add_ps(s, v)))
}

fn ms(t: Duration) -> f64 {
    t.as_secs_f64() * 1e3
}

/// The threads the direct convolution and Burn's spread their work over (Rayon's pool:
/// `RAYON_NUM_THREADS` sets it).
fn threads() -> usize {
    rayon::current_num_threads()
}
