//! The vector instructions the CPU kernels are written in (the direct convolution, and
//! the matrix product in WebAssembly): one small trait, one implementation per instruction
//! set. A kernel is generic over it and compiled once per instruction set inside a function
//! that enables it, so these wrappers inline to single instructions.

/// A vector of `N` f32 lanes.
pub(crate) trait Lanes {
    const N: usize;
    type V: Copy;

    /// # Safety
    /// The instruction set must be available (the callers check it at run time).
    unsafe fn zero() -> Self::V;
    /// Every lane = `*p`.
    /// # Safety
    /// As [`Lanes::zero`], and `p` valid for reading one f32.
    unsafe fn broadcast(p: *const f32) -> Self::V;
    /// `N` floats from `p` (unaligned).
    /// # Safety
    /// As [`Lanes::zero`], and `p` valid for reading `N` f32.
    unsafe fn load(p: *const f32) -> Self::V;
    /// `N` floats to `p` (unaligned).
    /// # Safety
    /// As [`Lanes::zero`], and `p` valid for writing `N` f32.
    unsafe fn store(p: *mut f32, v: Self::V);
    /// a·b + c.
    /// # Safety
    /// As [`Lanes::zero`].
    unsafe fn mul_add(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
}

/// x86-64 AVX2 with FMA: 8 lanes (16 vector registers).
#[cfg(target_arch = "x86_64")]
pub(crate) struct Avx2;

#[cfg(target_arch = "x86_64")]
impl Lanes for Avx2 {
    const N: usize = 8;
    type V = std::arch::x86_64::__m256;

    #[inline(always)]
    unsafe fn zero() -> Self::V {
        unsafe { std::arch::x86_64::_mm256_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn broadcast(p: *const f32) -> Self::V {
        unsafe { std::arch::x86_64::_mm256_broadcast_ss(&*p) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self::V {
        unsafe { std::arch::x86_64::_mm256_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: Self::V) {
        unsafe { std::arch::x86_64::_mm256_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn mul_add(a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        unsafe { std::arch::x86_64::_mm256_fmadd_ps(a, b, c) }
    }
}

/// x86-64 AVX-512F: 16 lanes (32 vector registers).
#[cfg(target_arch = "x86_64")]
pub(crate) struct Avx512;

#[cfg(target_arch = "x86_64")]
impl Lanes for Avx512 {
    const N: usize = 16;
    type V = std::arch::x86_64::__m512;

    #[inline(always)]
    unsafe fn zero() -> Self::V {
        unsafe { std::arch::x86_64::_mm512_setzero_ps() }
    }
    #[inline(always)]
    unsafe fn broadcast(p: *const f32) -> Self::V {
        unsafe { std::arch::x86_64::_mm512_set1_ps(*p) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self::V {
        unsafe { std::arch::x86_64::_mm512_loadu_ps(p) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: Self::V) {
        unsafe { std::arch::x86_64::_mm512_storeu_ps(p, v) }
    }
    #[inline(always)]
    unsafe fn mul_add(a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        unsafe { std::arch::x86_64::_mm512_fmadd_ps(a, b, c) }
    }
}

/// WebAssembly SIMD: 4 lanes, multiply and add (no fused multiply-add in the base
/// instruction set). The package is built with `+simd128` (.cargo/config.toml).
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub(crate) struct Simd128;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
impl Lanes for Simd128 {
    const N: usize = 4;
    type V = std::arch::wasm32::v128;

    #[inline(always)]
    unsafe fn zero() -> Self::V {
        std::arch::wasm32::f32x4_splat(0.0)
    }
    #[inline(always)]
    unsafe fn broadcast(p: *const f32) -> Self::V {
        unsafe { std::arch::wasm32::f32x4_splat(*p) }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> Self::V {
        unsafe { std::arch::wasm32::v128_load(p.cast()) }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: Self::V) {
        unsafe { std::arch::wasm32::v128_store(p.cast(), v) }
    }
    #[inline(always)]
    unsafe fn mul_add(a: Self::V, b: Self::V, c: Self::V) -> Self::V {
        std::arch::wasm32::f32x4_add(std::arch::wasm32::f32x4_mul(a, b), c)
    }
}
