//! The vector instructions the CPU kernels are written in (the direct convolution, the
//! face detector's, and the matrix product in WebAssembly): which of them this CPU has
//! ([`Isa`], [`best_isa`]), and one small trait with one implementation per instruction
//! set. A kernel is generic over it and compiled once per instruction set inside a function
//! that enables it, so these wrappers inline to single instructions.

use std::sync::OnceLock;

/// The instruction sets the kernels are compiled for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// x86-64 with AVX-512F.
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// x86-64 with AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// WebAssembly SIMD.
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    Simd128,
}

impl Isa {
    /// The instruction sets this CPU runs, widest first.
    pub fn available() -> Vec<Self> {
        #[allow(unused_mut)]
        let mut found = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                found.push(Self::Avx512);
            }
            if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                found.push(Self::Avx2);
            }
        }
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        found.push(Self::Simd128);
        found
    }
}

/// The widest instruction set this CPU has (the first of [`Isa::available`], found once),
/// or `None` where it has none of them.
pub fn best_isa() -> Option<Isa> {
    static BEST: OnceLock<Option<Isa>> = OnceLock::new();
    *BEST.get_or_init(|| Isa::available().first().copied())
}

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

/// No vectors: one lane, where a CPU has none of the instruction sets above (multiply, then
/// add, like WebAssembly).
pub(crate) struct Scalar;

impl Lanes for Scalar {
    const N: usize = 1;
    type V = f32;

    #[inline(always)]
    unsafe fn zero() -> f32 {
        0.0
    }
    #[inline(always)]
    unsafe fn broadcast(p: *const f32) -> f32 {
        unsafe { *p }
    }
    #[inline(always)]
    unsafe fn load(p: *const f32) -> f32 {
        unsafe { *p }
    }
    #[inline(always)]
    unsafe fn store(p: *mut f32, v: f32) {
        unsafe { *p = v }
    }
    #[inline(always)]
    unsafe fn mul_add(a: f32, b: f32, c: f32) -> f32 {
        a * b + c
    }
}

/// A loop written in plain Rust, for [`vectorised`]; `run` must be `#[inline(always)]`, so
/// that it is compiled inside the function that enables the instruction set.
pub(crate) trait Loop {
    type Output;
    fn run(self) -> Self::Output;
}

/// `work` compiled for the widest vectors this CPU has ([`best_isa`]): natively AVX-512 or
/// AVX2, else x86-64's baseline (SSE2); in WebAssembly the module's SIMD128. The compiler
/// vectorises the loop to that width. It fuses no multiply-add (Rust never contracts
/// `a * b + c`), so every path computes the same floats.
pub(crate) fn vectorised<W: Loop>(work: W) -> W::Output {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        fn avx512<W: Loop>(work: W) -> W::Output {
            work.run()
        }
        #[target_feature(enable = "avx2")]
        fn avx2<W: Loop>(work: W) -> W::Output {
            work.run()
        }
        match best_isa() {
            // SAFETY: the CPU has AVX-512F.
            Some(Isa::Avx512) => return unsafe { avx512(work) },
            // SAFETY: the CPU has AVX2.
            Some(Isa::Avx2) => return unsafe { avx2(work) },
            None => {}
        }
    }
    work.run()
}
