//! Backward: dW = Σ dY[:, block] · im2col(block)ᵀ and dX = col2im(Wᵀ · dY[:, block]), the
//! batch split into one run of items per thread (each with its own dW, summed at the end,
//! and its own disjoint part of dX).

use burn::tensor::{DType, ops::ConvOptions};
use burn_flex::FlexTensor;

use super::patches::{Geometry, col2im, im2col};
use crate::kernels::matmul::{Matrix, matmul};
use crate::kernels::parallel::{map_parts, threads};

/// `x`: [B, Cin, T, H, W], `weight`: [Cout, Cin, kT, kH, kW], `grad`: dL/d(output)
/// [B, Cout, T', H', W'] → (dL/dx if `x_grad`, dL/dweight).
pub(in crate::kernels::conv3d_flex) fn conv3d_backward_f32(
    x: &FlexTensor,
    weight: &FlexTensor,
    grad: &FlexTensor,
    options: &ConvOptions<3>,
    x_grad: bool,
) -> (Option<FlexTensor>, FlexTensor) {
    let x = x.to_contiguous();
    let weight = weight.to_contiguous();
    let grad = grad.to_contiguous();
    let geometry = Geometry::new(x.layout().shape(), weight.layout().shape(), options);
    let (inputs, weights, grads): (&[f32], &[f32], &[f32]) = (x.storage(), weight.storage(), grad.storage());
    let (patch, positions, out_channels, input_len) =
        (geometry.patch_len(), geometry.output_positions(), geometry.out_channels, geometry.input_len());
    let parallel_gemm = geometry.batch < threads();

    // Items → (their dW, their dX). dW is summed column-major, [patch, Cout] row-major, and
    // transposed at the end: the GEMM then reads the im2col block as it lies, where for a
    // row-major dW it transposes the product and repacks the whole block into panels.
    let work = |items: &[usize]| {
        let mut weight_grad = vec![0.0f32; out_channels * patch]; // [patch, Cout]
        let mut input_grad = vec![0.0f32; if x_grad { items.len() * input_len } else { 0 }];
        let (mut columns, mut column_grads) = (Vec::new(), Vec::new());
        for (i, &item) in items.iter().enumerate() {
            let input = &inputs[item * input_len..][..input_len];
            for block in geometry.blocks() {
                let width = block.width();
                columns.resize(patch * width, 0.0);
                im2col(&geometry, input, block, &mut columns[..patch * width]); // [patch, width]
                let dy = grads[(item * out_channels) * positions + block.start..].as_ptr(); // [Cout, width], rows `positions` apart
                // SAFETY: dW [Cout, patch] (column-major), dY [Cout, width] and columnsᵀ
                // [width, patch] lie inside their buffers; dW is this run's own.
                unsafe {
                    matmul(
                        [out_channels, patch, width],
                        Matrix::transposed(weight_grad.as_mut_ptr(), out_channels),
                        true,
                        Matrix::rows(dy, positions),
                        Matrix::transposed(columns.as_ptr(), width),
                        parallel_gemm,
                    );
                }
                if x_grad {
                    column_grads.resize(patch * width, 0.0);
                    // SAFETY: column_grads [patch, width], Wᵀ [patch, Cout], dY [Cout, width].
                    unsafe {
                        matmul(
                            [patch, width, out_channels],
                            Matrix::rows(column_grads.as_mut_ptr(), width),
                            false,
                            Matrix::transposed(weights.as_ptr(), patch),
                            Matrix::rows(dy, positions),
                            parallel_gemm,
                        );
                    }
                    col2im(&geometry, &column_grads[..patch * width], block, &mut input_grad[i * input_len..][..input_len]);
                }
            }
        }
        (weight_grad, input_grad)
    };
    let items: Vec<usize> = (0..geometry.batch).collect();
    let per_run = geometry.batch.div_ceil(threads()).max(1);
    let runs = map_parts(items.chunks(per_run).collect(), work);

    let mut runs = runs.into_iter();
    let (mut weight_grad, mut input_grad) = runs.next().unwrap_or_default();
    for (run_weight_grad, run_input_grad) in runs {
        weight_grad.iter_mut().zip(&run_weight_grad).for_each(|(total, part)| *total += part);
        input_grad.extend_from_slice(&run_input_grad);
    }
    let tensor = |values: Vec<f32>, shape| FlexTensor::new(burn::tensor::Bytes::from_elems(values), burn_flex::Layout::contiguous(shape), DType::F32);
    // [patch, Cout] → [Cout, patch]
    let weight_grad = (0..out_channels * patch).map(|i| weight_grad[i % patch * out_channels + i / patch]).collect();
    let input_grad = x_grad.then(|| tensor(input_grad, x.layout().shape().clone()));
    (input_grad, tensor(weight_grad, weight.layout().shape().clone()))
}
