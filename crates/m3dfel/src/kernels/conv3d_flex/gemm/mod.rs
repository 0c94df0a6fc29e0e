//! The convolution's backward pass as im2col + GEMM: dW = Σ dY · im2colᵀ for every
//! convolution, and dX = col2im(Wᵀ · dY) for the strided ones (the direct convolution
//! computes the others' dX, see `Conv3dFlexBackward`). The GEMM is
//! [`matmul`](crate::kernels::matmul::matmul), the `gemm` crate's.

mod backward;

pub(super) use backward::conv3d_backward_f32;
mod patches;
