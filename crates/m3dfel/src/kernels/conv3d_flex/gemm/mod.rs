//! The convolution's backward pass as im2col + GEMM: dW = Σ dY · im2colᵀ for every
//! convolution, and dX = col2im(Wᵀ · dY) for the strided ones (the direct convolution
//! computes the others' dX, see `Conv3dFlexBackward`). The GEMM is the `gemm` crate's, the one
//! Burn's CPU backend uses.

mod backward;

pub(super) use backward::conv3d_backward_f32;
mod patches;

/// A strided matrix for [`matmul`]: element (i, j) at ptr + i·row_stride + j·col_stride.
#[derive(Clone, Copy)]
pub(super) struct Matrix<P> {
    ptr: P,
    row_stride: isize,
    col_stride: isize,
}

impl<P> Matrix<P> {
    /// Row-major, rows `stride` apart.
    pub(super) fn rows(ptr: P, stride: usize) -> Self {
        Self { ptr, row_stride: stride as isize, col_stride: 1 }
    }

    /// The transpose of a row-major matrix whose rows are `stride` apart; equally, a
    /// column-major matrix whose columns are `stride` apart.
    fn transposed(ptr: P, stride: usize) -> Self {
        Self { ptr, row_stride: 1, col_stride: stride as isize }
    }
}

/// dst [m, n] = (dst if `accumulate`, else 0) + lhs [m, k] · rhs [k, n], on every thread
/// if `parallel`.
///
/// # Safety
/// Each matrix must be valid for its shape and strides, and `dst` must not overlap the others
/// or be touched by anyone else meanwhile.
pub(super) unsafe fn matmul(
    [m, n, k]: [usize; 3],
    dst: Matrix<*mut f32>,
    accumulate: bool,
    lhs: Matrix<*const f32>,
    rhs: Matrix<*const f32>,
    parallel: bool,
) {
    let parallelism = match parallel {
        #[cfg(not(target_arch = "wasm32"))]
        true => gemm::Parallelism::Rayon(super::parallel::threads()),
        _ => gemm::Parallelism::None,
    };
    // SAFETY: the caller's.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.ptr,
            dst.col_stride,
            dst.row_stride,
            accumulate,
            lhs.ptr,
            lhs.col_stride,
            lhs.row_stride,
            rhs.ptr,
            rhs.col_stride,
            rhs.row_stride,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

