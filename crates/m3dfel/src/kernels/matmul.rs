//! Matrix products on the CPU, shared by the backbone's convolution on Flex (Winograd's
//! products, the backward pass's im2col GEMMs) and the face detector's convolutions.
//!
//! [`matmul`] is the `gemm` crate's GEMM (the one Burn's CPU backend uses), on strided
//! matrices and optionally on every thread. [`product`] is a single-threaded row-major
//! product: `gemm` natively; in WebAssembly a register-tiled kernel of its own in the direct
//! convolution's shape, because `gemm`'s 128-bit kernels were slower there than the direct
//! convolution (small preset, one clip, Node: 0.81–0.91 s with them in Winograd's products
//! against 0.69 s without Winograd), which made Winograd lose.

/// A strided matrix for [`matmul`]: element (i, j) at ptr + i·row_stride + j·col_stride.
#[derive(Clone, Copy)]
pub(crate) struct Matrix<P> {
    ptr: P,
    row_stride: isize,
    col_stride: isize,
}

impl<P> Matrix<P> {
    /// Row-major, rows `stride` apart.
    pub(crate) fn rows(ptr: P, stride: usize) -> Self {
        Self { ptr, row_stride: stride as isize, col_stride: 1 }
    }

    /// The transpose of a row-major matrix whose rows are `stride` apart; equally, a
    /// column-major matrix whose columns are `stride` apart.
    pub(crate) fn transposed(ptr: P, stride: usize) -> Self {
        Self { ptr, row_stride: 1, col_stride: stride as isize }
    }
}

/// dst [m, n] = (dst if `accumulate`, else 0) + lhs [m, k] · rhs [k, n], on every thread
/// if `parallel`.
///
/// # Safety
/// Each matrix must be valid for its shape and strides, and `dst` must not overlap the others
/// or be touched by anyone else meanwhile.
pub(crate) unsafe fn matmul(
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

/// dst [rows, columns] = (dst if `accumulate`, else 0) + lhs [rows, depth] · rhs [depth,
/// columns], each a pointer and its row stride, on the calling thread.
///
/// # Safety
/// Each matrix must be valid for its shape and stride, and `dst` must not overlap the others
/// or be touched by anyone else meanwhile.
pub(crate) unsafe fn product(
    [rows, columns, depth]: [usize; 3],
    (dst, dst_stride): (*mut f32, usize),
    accumulate: bool,
    (lhs, lhs_stride): (*const f32, usize),
    (rhs, rhs_stride): (*const f32, usize),
) {
    #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
    // SAFETY: the caller's.
    unsafe {
        matmul(
            [rows, columns, depth],
            Matrix::rows(dst, dst_stride),
            accumulate,
            Matrix::rows(lhs, lhs_stride),
            Matrix::rows(rhs, rhs_stride),
            false,
        );
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    // SAFETY: the caller's; SIMD128 is enabled for the whole module.
    unsafe {
        tiled::<super::simd::Simd128, { TILE.0 }, { TILE.1 }>(
            [rows, columns, depth],
            (dst, dst_stride),
            accumulate,
            (lhs, lhs_stride),
            (rhs, rhs_stride),
        );
    }
}

/// The register tile of [`tiled`] in WebAssembly: 4 rows × 2 vectors = 8 accumulators; with
/// the 2 loaded vectors and one broadcast, 11 of x86-64's 16 vector registers (the direct
/// convolution's SIMD128 tile holds as many).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
const TILE: (usize, usize) = (4, 2);

/// [`product`] in register tiles of R rows × C vectors: for each tile width of columns
/// (whose `rhs` block stays in the L1 cache), every R rows accumulate over the whole depth
/// (from `dst`'s values if `accumulate`). Rows and columns outside whole tiles are summed
/// one value at a time, in the same order.
///
/// # Safety
/// The instruction set of `L` must be available, and [`product`]'s conditions hold.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[inline(always)]
unsafe fn tiled<L: super::simd::Lanes, const R: usize, const C: usize>(
    [rows, columns, depth]: [usize; 3],
    (dst, dst_stride): (*mut f32, usize),
    accumulate: bool,
    (lhs, lhs_stride): (*const f32, usize),
    (rhs, rhs_stride): (*const f32, usize),
) {
    let width = C * L::N;
    let (whole_rows, whole_columns) = (rows - rows % R, columns - columns % width);
    // SAFETY: the caller's; every offset below stays inside the matrices' shapes.
    unsafe {
        for j in (0..whole_columns).step_by(width) {
            for i in (0..whole_rows).step_by(R) {
                let mut sums: [[L::V; C]; R] = std::array::from_fn(|r| {
                    std::array::from_fn(|c| match accumulate {
                        true => L::load(dst.add((i + r) * dst_stride + j + c * L::N)),
                        false => L::zero(),
                    })
                });
                for d in 0..depth {
                    let b: [L::V; C] = std::array::from_fn(|c| L::load(rhs.add(d * rhs_stride + j + c * L::N)));
                    for (r, sums) in sums.iter_mut().enumerate() {
                        let a = L::broadcast(lhs.add((i + r) * lhs_stride + d));
                        for (sum, &b) in sums.iter_mut().zip(&b) {
                            *sum = L::mul_add(a, b, *sum);
                        }
                    }
                }
                for (r, sums) in sums.iter().enumerate() {
                    for (c, &sum) in sums.iter().enumerate() {
                        L::store(dst.add((i + r) * dst_stride + j + c * L::N), sum);
                    }
                }
            }
        }
        for i in 0..rows {
            let rest = if i < whole_rows { whole_columns..columns } else { 0..columns };
            for j in rest {
                let start = if accumulate { *dst.add(i * dst_stride + j) } else { 0.0 };
                let sum = (0..depth).fold(start, |sum, d| *lhs.add(i * lhs_stride + d) * *rhs.add(d * rhs_stride + j) + sum);
                *dst.add(i * dst_stride + j) = sum;
            }
        }
    }
}
