//! The CPU backend's convolution (kernels/conv3d_flex/) against Burn's `conv3d` followed by
//! tensor ops, over the backbone's kernel shapes, strides and epilogues and over sizes that
//! split the work into many tiles, few tiles, several passes over the input channels, a
//! last narrower block of output channels and ragged edges; with every instruction set
//! this CPU has.

use burn::backend::Flex;
use burn::tensor::{Distribution, Tensor, ops::ConvOptions};
use m3dfel::backbone::conv::{Conv3dBackend, ConvEpilogue, conv3d_portable};
use m3dfel::kernels::conv3d_flex::{Isa, Kernel, conv3d_with, winograd};

struct Case {
    name: &'static str,
    batch: usize,
    channels: [usize; 2],
    input: [usize; 3],
    kernel: [usize; 3],
    stride: [usize; 3],
}

const CASES: [Case; 14] = [
    Case { name: "stem", batch: 2, channels: [3, 8], input: [4, 30, 26], kernel: [3, 7, 7], stride: [1, 2, 2] },
    Case { name: "3x3x3", batch: 3, channels: [5, 6], input: [4, 9, 11], kernel: [3, 3, 3], stride: [1, 1, 1] },
    Case { name: "3x3x3 stride 2", batch: 2, channels: [6, 7], input: [5, 9, 10], kernel: [3, 3, 3], stride: [2, 2, 2] },
    Case { name: "1x1x1 stride 2", batch: 2, channels: [6, 7], input: [5, 9, 10], kernel: [1, 1, 1], stride: [2, 2, 2] },
    // Wide kernel rows: blocks of the minimum width, several per item, the last one short.
    Case { name: "many blocks", batch: 1, channels: [700, 4], input: [2, 12, 13], kernel: [3, 3, 3], stride: [1, 1, 1] },
    // Stride 2 with blocks that start at the last output column of a line.
    Case { name: "stem, blocks cut lines", batch: 1, channels: [200, 4], input: [2, 20, 26], kernel: [3, 7, 7], stride: [1, 2, 2] },
    // A single output position per item.
    Case { name: "1x1 output", batch: 1, channels: [4, 32], input: [1, 2, 2], kernel: [3, 3, 3], stride: [2, 2, 2] },
    // One frame: two of three kernel frames read padding (and are skipped).
    Case { name: "one frame", batch: 3, channels: [16, 13], input: [1, 7, 7], kernel: [3, 3, 3], stride: [1, 1, 1] },
    // Two frames, an odd number of output channels, weights larger than the input.
    Case { name: "two frames", batch: 2, channels: [40, 29], input: [2, 5, 6], kernel: [3, 3, 3], stride: [1, 1, 1] },
    // Odd sizes with stride 2 in every dimension (eight stride phases).
    Case { name: "odd sizes, stride 2", batch: 2, channels: [9, 25], input: [3, 7, 9], kernel: [3, 3, 3], stride: [2, 2, 2] },
    // Rows wider than a tile, many tiles per frame.
    Case { name: "wide rows", batch: 1, channels: [3, 6], input: [2, 5, 75], kernel: [3, 3, 3], stride: [1, 1, 1] },
    // Output channels in blocks of 64 (AVX-512): two whole blocks and a ragged one.
    Case { name: "150 output channels", batch: 2, channels: [24, 150], input: [2, 6, 7], kernel: [3, 3, 3], stride: [1, 1, 1] },
    // R3D-18's last stage in miniature: one 7×7 frame, the threads split the output channels.
    Case { name: "last stage", batch: 4, channels: [64, 256], input: [1, 7, 7], kernel: [3, 3, 3], stride: [1, 1, 1] },
    // An input of 80 MB: more than one relayout group (64 MiB), the last group smaller.
    Case { name: "batch in groups", batch: 7, channels: [8, 4], input: [4, 300, 300], kernel: [1, 1, 1], stride: [1, 1, 1] },
];

fn random<const D: usize>(shape: [usize; D]) -> Tensor<Flex, D> {
    Tensor::random(shape, Distribution::Uniform(-1.0, 1.0), &Default::default())
}

/// Max |got − expected| over the scale of `expected`, which must not be all zeros.
fn relative_error(got: Tensor<Flex, 5>, expected: Tensor<Flex, 5>, what: &str) -> f32 {
    assert_eq!(got.dims(), expected.dims(), "{what}: shape");
    let (got, expected) = (got.into_data().to_vec::<f32>().unwrap(), expected.into_data().to_vec::<f32>().unwrap());
    let scale = expected.iter().map(|v| v.abs()).fold(0.0, f32::max);
    assert!(scale > 0.0, "{what}: all zeros");
    got.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max) / scale
}

/// Every instruction set the kernels are compiled for on this target, widest first. (The
/// match stops compiling when `Isa` gains one, so that this list keeps up.)
fn compiled_isas() -> Vec<Isa> {
    #[allow(unused_mut)]
    let mut all = Vec::new();
    #[cfg(target_arch = "x86_64")]
    all.extend([Isa::Avx512, Isa::Avx2]);
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    all.push(Isa::Simd128);
    for isa in &all {
        match *isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 | Isa::Avx2 => {}
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            Isa::Simd128 => {}
        }
    }
    all
}

/// Builds an epilogue, given the residual it may add.
type MakeEpilogue = fn(Tensor<Flex, 5>) -> ConvEpilogue<Flex>;

#[test]
fn the_cpu_convolution_matches_burns_conv3d_with_every_epilogue_and_instruction_set() {
    let isas = Isa::available();
    // Every x86-64 CPU of the last decade has AVX2; WebAssembly builds have SIMD.
    #[cfg(target_arch = "x86_64")]
    assert!(isas.contains(&Isa::Avx2), "AVX2 + FMA not detected");
    let skipped: Vec<Isa> = compiled_isas().into_iter().filter(|isa| !isas.contains(isa)).collect();
    eprintln!("instruction sets tested: {isas:?}; skipped, as this CPU lacks them: {skipped:?}");
    for case in CASES {
        let [c_in, c_out] = case.channels;
        let [t, h, w] = case.input;
        let x = random([case.batch, c_in, t, h, w]);
        let weight = random([c_out, c_in, case.kernel[0], case.kernel[1], case.kernel[2]]);
        let bias = random([c_out]);
        let options = ConvOptions::new(case.stride, case.kernel.map(|k| k / 2), [1; 3], 1);
        let out_dims = burn::tensor::module::conv3d(x.clone(), weight.clone(), None, options.clone()).dims();
        let residual = random(out_dims);
        let epilogues: [(&str, MakeEpilogue, bool); 3] = [
            ("none", |_| ConvEpilogue::none(), false),
            ("relu", |_| ConvEpilogue::relu(), true),
            ("residual + relu", ConvEpilogue::residual_relu, true),
        ];
        for (epilogue, make, with_bias) in epilogues {
            let bias = with_bias.then(|| bias.clone());
            let expected = conv3d_portable(x.clone(), weight.clone(), bias.clone(), options.clone(), make(residual.clone()));
            let convolve = |kernel| conv3d_with(kernel, x.clone(), weight.clone(), bias.clone(), options.clone(), make(residual.clone()));
            let mut results: Vec<_> = isas.iter().map(|&isa| (format!("{isa:?}"), convolve(Kernel::Direct(isa)))).collect();
            // Every instruction set adds the same products in the same order, so every CPU
            // gives the same numbers (evaluation and prediction are deterministic across them).
            let values = |t: &Tensor<Flex, 5>| t.to_data().to_vec::<f32>().unwrap();
            let reference = values(&results[0].1);
            for (name, got) in &results[1..] {
                assert!(values(got) == reference, "{}, {epilogue}: {name} differs from {}", case.name, results[0].0);
            }
            // The backend computes it with Winograd where that applies, else with the direct
            // convolution (those numbers exactly).
            let flex = <Flex as Conv3dBackend>::conv3d_fused(x.clone(), weight.clone(), bias.clone(), options.clone(), make(residual.clone()));
            let winograd = winograd::applies(&x.dims(), &weight.dims(), &options);
            let kernel = if winograd { values(&convolve(Kernel::Winograd)) } else { reference };
            assert!(values(&flex) == kernel, "{}, {epilogue}: Flex differs from {}", case.name, if winograd { "Winograd" } else { "direct" });
            results.push(("Flex".to_string(), flex));
            for (name, got) in results {
                let what = format!("{}, {epilogue}, {name}", case.name);
                let error = relative_error(got, expected.clone(), &what);
                assert!(error <= 1e-5 * (c_in as f32).sqrt(), "{what}: differs by {error} (relative)");
            }
        }
    }
}

/// Stride-1 3×3×3 convolutions whose transformed input outweighs their transformed weights:
/// the ones Winograd's F(4×4, 3×3) computes. Most frames end in partial 4×4 tiles.
const WINOGRAD_CASES: [Case; 7] = [
    Case { name: "four frames", batch: 2, channels: [5, 7], input: [4, 8, 10], kernel: [3, 3, 3], stride: [1, 1, 1] },
    Case { name: "odd sizes", batch: 2, channels: [5, 4], input: [3, 7, 9], kernel: [3, 3, 3], stride: [1, 1, 1] },
    // One and two frames: kernel frames over padding are skipped in the T convolution.
    Case { name: "one frame", batch: 3, channels: [4, 6], input: [1, 12, 12], kernel: [3, 3, 3], stride: [1, 1, 1] },
    Case { name: "two frames", batch: 3, channels: [6, 13], input: [2, 10, 14], kernel: [3, 3, 3], stride: [1, 1, 1] },
    // Several passes over the input channels; a last narrower block of output channels.
    Case { name: "many input channels", batch: 1, channels: [150, 9], input: [3, 16, 18], kernel: [3, 3, 3], stride: [1, 1, 1] },
    // Frames smaller than one tile.
    Case { name: "2x2 frames", batch: 6, channels: [3, 2], input: [5, 2, 2], kernel: [3, 3, 3], stride: [1, 1, 1] },
    // Transformed tiles of 71 MB: more than one group of items (64 MiB), the last smaller.
    Case { name: "batch in groups", batch: 5, channels: [6, 3], input: [4, 256, 256], kernel: [3, 3, 3], stride: [1, 1, 1] },
];

#[test]
fn winograd_matches_burns_conv3d_and_the_cpu_backend_uses_it_where_it_applies() {
    for case in WINOGRAD_CASES {
        let [c_in, c_out] = case.channels;
        let [t, h, w] = case.input;
        let x = random([case.batch, c_in, t, h, w]);
        let weight = random([c_out, c_in, 3, 3, 3]);
        let bias = random([c_out]);
        let options = ConvOptions::new([1; 3], [1; 3], [1; 3], 1);
        assert!(winograd::applies(&x.dims(), &weight.dims(), &options), "{}: Winograd should apply", case.name);
        let residual = random([case.batch, c_out, t, h, w]);
        let epilogues: [(&str, MakeEpilogue); 3] =
            [("none", |_| ConvEpilogue::none()), ("relu", |_| ConvEpilogue::relu()), ("residual + relu", ConvEpilogue::residual_relu)];
        for (epilogue, make) in epilogues {
            let expected = conv3d_portable(x.clone(), weight.clone(), Some(bias.clone()), options.clone(), make(residual.clone()));
            let values = |t: &Tensor<Flex, 5>| t.to_data().to_vec::<f32>().unwrap();
            let flex = <Flex as Conv3dBackend>::conv3d_fused(x.clone(), weight.clone(), Some(bias.clone()), options.clone(), make(residual.clone()));
            let got = conv3d_with(Kernel::Winograd, x.clone(), weight.clone(), Some(bias.clone()), options.clone(), make(residual.clone()));
            // The backend's convolution is this one.
            assert!(values(&got) == values(&flex), "{}, {epilogue}: Flex differs from Winograd", case.name);
            let what = format!("{}, {epilogue}, Winograd", case.name);
            let error = relative_error(got, expected, &what);
            assert!(error <= 1e-5 * (c_in as f32).sqrt(), "{what}: differs by {error} (relative)");
        }
    }
}

#[test]
fn winograd_applies_to_the_first_two_stages_of_r3d18_only() {
    let options = |stride| ConvOptions::new([stride; 3], [1; 3], [1; 3], 1);
    // Paper preset, one clip (4 instances of 4 frames).
    assert!(winograd::applies(&[4, 64, 4, 56, 56], &[64, 64, 3, 3, 3], &options(1)), "stage 1");
    assert!(winograd::applies(&[4, 128, 2, 28, 28], &[128, 128, 3, 3, 3], &options(1)), "stage 2");
    assert!(!winograd::applies(&[4, 64, 4, 56, 56], &[128, 64, 3, 3, 3], &options(2)), "stage 2, stride 2");
    assert!(!winograd::applies(&[4, 256, 1, 14, 14], &[256, 256, 3, 3, 3], &options(1)), "stage 3: weights outweigh activations");
    assert!(!winograd::applies(&[4, 512, 1, 7, 7], &[512, 512, 3, 3, 3], &options(1)), "stage 4: weights outweigh activations");
    assert!(!winograd::applies(&[4, 64, 4, 56, 56], &[128, 64, 1, 1, 1], &options(2)), "projection");
}

#[test]
fn the_cpu_convolution_reads_strided_views_and_leaves_its_inputs_alone() {
    // Non-contiguous inputs ([2, 4, 6, 4, 5] each) and a residual shared with the caller:
    // H and W swapped (W's values not consecutive); T and the channels swapped, as a clip
    // split into instances is (read in place by the direct convolution); a slice that
    // starts inside its storage.
    let views = [
        ("H and W swapped", random([2, 4, 6, 5, 4]).swap_dims(3, 4)),
        ("T and channels swapped", random([2, 6, 4, 4, 5]).swap_dims(1, 2)),
        ("a slice", random([3, 5, 6, 4, 5]).slice([1..3, 1..5])),
    ];
    let kernels: [([usize; 3], [usize; 3]); 2] = [([3, 3, 3], [1, 1, 1]), ([3, 7, 7], [1, 2, 2])];
    for (view, x) in views {
        for (kernel, stride) in kernels {
            let weight = random([3, 4, kernel[0], kernel[1], kernel[2]]);
            let options = ConvOptions::new(stride, kernel.map(|k| k / 2), [1; 3], 1);
            let out_dims = burn::tensor::module::conv3d(x.clone(), weight.clone(), None, options.clone()).dims();
            let residual = random(out_dims);
            let kept = (x.clone().into_data(), residual.clone().into_data());
            let expected = conv3d_portable(x.clone(), weight.clone(), None, options.clone(), ConvEpilogue::residual_relu(residual.clone()));
            let got = <Flex as Conv3dBackend>::conv3d_fused(x.clone(), weight, None, options, ConvEpilogue::residual_relu(residual.clone()));
            let error = relative_error(got, expected, view);
            assert!(error <= 1e-5, "{view}, kernel {kernel:?}: differs by {error} (relative)");
            assert!((x.clone().into_data(), residual.into_data()) == kept, "{view}: an input was modified in place");
        }
    }
}

/// Inference keeps weights rearranged for a kernel (Winograd's transform, AVX-512's blocks)
/// between calls; new weights, even made from the old ones by an operation that could have
/// reused their memory, must not get the old ones' arrangement.
#[test]
fn kept_weights_follow_the_weights_they_were_made_from() {
    let cases = [
        ("Winograd", [2, 8, 4, 12, 12], [8, 8, 3, 3, 3], [1; 3]),
        ("direct, 3x3x3 stride 2", [2, 16, 3, 9, 9], [128, 16, 3, 3, 3], [2; 3]),
        ("direct, last stage", [4, 32, 1, 7, 7], [64, 32, 3, 3, 3], [1; 3]),
    ];
    for (name, x_shape, weight_shape, stride) in cases {
        let x = random(x_shape);
        let options = ConvOptions::new(stride, [1; 3], [1; 3], 1);
        let mut weight = random(weight_shape);
        for step in 0..3 {
            let expected = conv3d_portable(x.clone(), weight.clone(), None, options.clone(), ConvEpilogue::relu());
            let convolve = || <Flex as Conv3dBackend>::conv3d_fused(x.clone(), weight.clone(), None, options.clone(), ConvEpilogue::relu());
            let (first, second) = (convolve(), convolve());
            let what = format!("{name}, weights {step}");
            assert!(first.to_data() == second.to_data(), "{what}: the second call (kept weights) differs from the first");
            let error = relative_error(second, expected, &what);
            assert!(error <= 1e-5 * (x_shape[1] as f32).sqrt(), "{what}: differs by {error} (relative)");
            weight = weight.mul_scalar(-0.5).add_scalar(0.25);
        }
    }
}

#[test]
fn the_cpu_convolution_backward_pass_matches_burns_gradients() {
    type A = burn::backend::Autodiff<Flex>;
    // Winograd's cases: its forward pass, and the input gradient of stride-1 convolutions.
    for case in CASES.into_iter().chain(WINOGRAD_CASES) {
        let [c_in, c_out] = case.channels;
        let [t, h, w] = case.input;
        let x = random([case.batch, c_in, t, h, w]);
        let weight = random([c_out, c_in, case.kernel[0], case.kernel[1], case.kernel[2]]);
        let options = ConvOptions::new(case.stride, case.kernel.map(|k| k / 2), [1; 3], 1);
        // A loss that weighs every output differently: sum(conv(x) ⊙ r).
        let out_dims = burn::tensor::module::conv3d(x.clone(), weight.clone(), None, options.clone()).dims();
        let weights_of_outputs = random(out_dims);
        let grads = |fused: bool| {
            let x = Tensor::<A, 5>::from_inner(x.clone()).require_grad();
            let weight = Tensor::<A, 5>::from_inner(weight.clone()).require_grad();
            let out = if fused {
                <A as Conv3dBackend>::conv3d_fused(x.clone(), weight.clone(), None, options.clone(), ConvEpilogue::none())
            } else {
                conv3d_portable(x.clone(), weight.clone(), None, options.clone(), ConvEpilogue::none())
            };
            let gradients = (out * Tensor::from_inner(weights_of_outputs.clone())).sum().backward();
            (x.grad(&gradients).unwrap(), weight.grad(&gradients).unwrap())
        };
        let ((x_got, w_got), (x_expected, w_expected)) = (grads(true), grads(false));
        let x_error = relative_error(x_got, x_expected, &format!("{}: input gradient", case.name));
        let w_error = relative_error(w_got, w_expected, &format!("{}: weight gradient", case.name));
        assert!(x_error < 1e-5, "{}: input gradient differs by {x_error} (relative)", case.name);
        assert!(w_error < 1e-5, "{}: weight gradient differs by {w_error} (relative)", case.name);
    }
}
