//! f32 `out = x · Wᵀ (+ bias)` for weights in PyTorch `nn.Linear` layout (`n` rows of `k`, each row contiguous)
//! and a small number of input rows `m`.
//!
//! A packing GEMM copies the whole weight into a panel layout on every call; at small `m` that copy costs more than
//! the multiplication. Here nothing is packed: a register-blocked inner-product microkernel reads `MR` rows of `x` and
//! `NR` rows of `W` directly (both contiguous along `k`), keeps `MR x NR` vector accumulators along `k` and reduces
//! them horizontally once at the end. The work is split over blocks of `W` rows (and over `m` when `n` is too small to
//! keep every thread busy) with rayon, so each thread streams its own part of `W`; within a block, all rows of `x` go
//! over a small group of `W` rows while it sits in L1/L2.
//!
//! Kernels: AVX-512F (3 x 8 tile of `__m512` accumulators) and AVX2+FMA (2 x 4 tile of `__m256`), chosen at run time.

#![allow(unsafe_code)] // SIMD intrinsics; every block says why it is sound.

/// Instruction set of a kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Isa {
    Avx512,
    Avx2,
}

impl Isa {
    /// Rows of `x` per microkernel tile (a tile with fewer rows is used for the tail).
    const fn mr(self) -> usize {
        match self {
            Isa::Avx512 => 3,
            Isa::Avx2 => 2,
        }
    }
    /// Rows of `W` (output columns) per microkernel tile.
    const fn nr(self) -> usize {
        match self {
            Isa::Avx512 => 8,
            Isa::Avx2 => 4,
        }
    }
}

/// Whether the CPU supports the given kernel.
fn supports(isa: Isa) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        match isa {
            Isa::Avx512 => is_x86_feature_detected!("avx512f"),
            Isa::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = isa;
        false
    }
}

/// Best kernel for this CPU, detected once.
fn detected() -> Option<Isa> {
    static ISA: std::sync::OnceLock<Option<Isa>> = std::sync::OnceLock::new();
    *ISA.get_or_init(|| [Isa::Avx512, Isa::Avx2].into_iter().find(|&isa| supports(isa)))
}

/// Whether this CPU runs the kernels (AVX-512F, or AVX2+FMA), detected once at run time.
pub fn available() -> bool {
    detected().is_some()
}

/// Whether [`linear_f32`] is expected to beat a packing gemm (the `gemm` crate 0.19 as used by candle) for a product
/// of `m` rows of `k` by an `n x k` weight: `1 <= m <= 256` and `k >= 128`.
///
/// Measured on Zen4 with 2 threads (medians, interleaved): 1.5-7x faster at m = 16..64, 1.1-2x at m = 128, about
/// 1.0-1.4x at m = 192..256, memory-bound parity at m = 1; gemm wins from m = 512 on (0.8-0.9x) and on tiny
/// products with k <= 64, where the per-output horizontal sums dominate (0.8-0.9x).
pub fn preferred(m: usize, n: usize, k: usize) -> bool {
    available() && (1..=256).contains(&m) && n >= 1 && k >= 128
}

/// `out[i*n + j] = sum_{p<k} x[i*ldx + p] * w[j*ldw + p] (+ bias[j])` for `i < m`, `j < n`.
///
/// * `x`: `m` rows with row stride `ldx`, elements contiguous along `k` (rows may overlap: any `ldx`, even 0, is
///   accepted; only the largest index read is checked).
/// * `w`: `n` rows of `k` with row stride `ldw` (PyTorch `nn.Linear` weight layout), same rule.
/// * `bias`: `None` or at least `n` values.
/// * `out`: at least `m * n` values; the first `m * n` are overwritten (contiguous `m x n`, row-major).
///
/// Runs on the current rayon pool (`rayon::current_num_threads()` threads). `m`, `n` or `k` = 0 are valid (`k` = 0
/// gives the bias, or zeros). Never panics: returns `Err` if a slice is too short, an index computation overflows, or
/// the CPU has neither AVX-512F nor AVX2+FMA (see [`available`]).
#[allow(clippy::too_many_arguments)]
pub fn linear_f32(
    m: usize,
    n: usize,
    k: usize,
    x: &[f32],
    ldx: usize,
    w: &[f32],
    ldw: usize,
    bias: Option<&[f32]>,
    out: &mut [f32],
) -> Result<(), String> {
    let isa = detected().ok_or_else(|| "linear_f32: CPU has neither AVX-512F nor AVX2+FMA".to_string())?;
    run(isa, rayon::current_num_threads(), m, n, k, x, ldx, w, ldw, bias, out)
}

/// Number of elements needed to hold `rows` rows of `k` with stride `ld`: `(rows - 1) * ld + k`, or 0 when empty.
fn needed(rows: usize, k: usize, ld: usize) -> Option<usize> {
    if rows == 0 || k == 0 {
        return Some(0);
    }
    (rows - 1).checked_mul(ld)?.checked_add(k)
}

/// Checks every slice against the largest index the product reads or writes.
#[allow(clippy::too_many_arguments)]
fn validate(
    m: usize,
    n: usize,
    k: usize,
    x: &[f32],
    ldx: usize,
    w: &[f32],
    ldw: usize,
    bias: Option<&[f32]>,
    out: &[f32],
) -> Result<(), String> {
    let nx = needed(m, k, ldx).ok_or_else(|| format!("linear_f32: x size overflows (m={m}, k={k}, ldx={ldx})"))?;
    if x.len() < nx {
        return Err(format!("linear_f32: x has {} elements, needs {nx} (m={m}, k={k}, ldx={ldx})", x.len()));
    }
    let nw = needed(n, k, ldw).ok_or_else(|| format!("linear_f32: w size overflows (n={n}, k={k}, ldw={ldw})"))?;
    if w.len() < nw {
        return Err(format!("linear_f32: w has {} elements, needs {nw} (n={n}, k={k}, ldw={ldw})", w.len()));
    }
    let no = m.checked_mul(n).ok_or_else(|| format!("linear_f32: out size overflows (m={m}, n={n})"))?;
    if out.len() < no {
        return Err(format!("linear_f32: out has {} elements, needs {no} (m={m}, n={n})", out.len()));
    }
    if let Some(b) = bias {
        if b.len() < n {
            return Err(format!("linear_f32: bias has {} elements, needs {n}", b.len()));
        }
    }
    Ok(())
}

/// The product's operands as raw pointers, shared by the rayon tasks.
#[derive(Clone, Copy)]
struct Problem {
    n: usize,
    k: usize,
    x: *const f32,
    ldx: usize,
    w: *const f32,
    ldw: usize,
    /// Null when there is no bias.
    bias: *const f32,
    out: *mut f32,
}

// SAFETY: a `Problem` is only built in `run` from slices that outlive the parallel section; tasks only read through
// `x`, `w`, `bias` and write disjoint rectangles of `out` (see `run`), so sharing it between threads is sound.
unsafe impl Send for Problem {}
// SAFETY: as above.
unsafe impl Sync for Problem {}

/// Below this many multiply-adds, and with a weight under `PAR_MIN_W` elements, one thread does the whole product (a
/// rayon fork costs a few microseconds; a larger weight is worth streaming from memory with every thread).
const PAR_MIN_MACS: usize = 1 << 19;
/// See [`PAR_MIN_MACS`].
const PAR_MIN_W: usize = 1 << 16;

/// Rows of `x` processed against one group of `W` rows before moving on, so that they stay in L2 (about 384 KiB).
fn m_block(k: usize) -> usize {
    ((96 * 1024) / k.max(1)).max(1)
}

/// Validates, then computes on `threads` threads' worth of tasks with the given kernel (which must be supported).
#[allow(clippy::too_many_arguments)]
fn run(
    isa: Isa,
    threads: usize,
    m: usize,
    n: usize,
    k: usize,
    x: &[f32],
    ldx: usize,
    w: &[f32],
    ldw: usize,
    bias: Option<&[f32]>,
    out: &mut [f32],
) -> Result<(), String> {
    validate(m, n, k, x, ldx, w, ldw, bias, out)?;
    if !supports(isa) {
        return Err(format!("linear_f32: CPU lacks {isa:?}"));
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        for row in out[..m * n].chunks_exact_mut(n) {
            match bias {
                Some(b) => row.copy_from_slice(&b[..n]),
                None => row.fill(0.0),
            }
        }
        return Ok(());
    }
    let p = Problem {
        n,
        k,
        x: x.as_ptr(),
        ldx,
        w: w.as_ptr(),
        ldw,
        bias: bias.map_or(std::ptr::null(), |b| b.as_ptr()),
        out: out.as_mut_ptr(),
    };
    let (mr, nr) = (isa.mr(), isa.nr());
    let n_tiles = n.div_ceil(nr);
    let m_tiles = m.div_ceil(mr);
    let macs = m.saturating_mul(n).saturating_mul(k);
    let small = macs < PAR_MIN_MACS && n.saturating_mul(k) < PAR_MIN_W;
    let target = if threads <= 1 || small { 1 } else { threads.saturating_mul(4) };
    // Split over W rows first (each task streams its own part of W); over x rows only when n is too small.
    let n_chunks = target.min(n_tiles);
    let m_chunks = (target / n_chunks).clamp(1, m_tiles);
    let tasks = n_chunks * m_chunks;
    let rect = |t: usize| {
        let (mc, nc) = (t / n_chunks, t % n_chunks);
        let i0 = (mc * m_tiles / m_chunks * mr).min(m);
        let i1 = ((mc + 1) * m_tiles / m_chunks * mr).min(m);
        let j0 = (nc * n_tiles / n_chunks * nr).min(n);
        let j1 = ((nc + 1) * n_tiles / n_chunks * nr).min(n);
        (i0, i1, j0, j1)
    };
    if tasks == 1 {
        // SAFETY: slices validated above, kernel supported, the rectangle is the whole output.
        unsafe { compute(isa, &p, 0, m, 0, n) };
    } else {
        use rayon::prelude::*;
        (0..tasks).into_par_iter().for_each(|t| {
            let (i0, i1, j0, j1) = rect(t);
            // SAFETY: slices validated above and borrowed until `for_each` returns; kernel supported; the rectangles
            // of distinct tasks are disjoint (distinct row or column ranges of the output), so no two tasks write
            // the same element and nothing else accesses `out` meanwhile.
            unsafe { compute(isa, &p, i0, i1, j0, j1) };
        });
    }
    Ok(())
}

/// Computes `out[i][j]` for `i0 <= i < i1`, `j0 <= j < j1`.
///
/// # Safety
/// `isa` must be supported by the CPU, `k >= 1`, the pointers of `p` valid for the validated sizes, the rectangle
/// inside `m x n`, and no other thread may access that rectangle of `out` meanwhile.
unsafe fn compute(isa: Isa, p: &Problem, i0: usize, i1: usize, j0: usize, j1: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        match isa {
            // SAFETY: forwarded from the caller (AVX-512F supported).
            Isa::Avx512 => unsafe { avx512::rect(p, i0, i1, j0, j1) },
            // SAFETY: forwarded from the caller (AVX2 and FMA supported).
            Isa::Avx2 => unsafe { avx2::rect(p, i0, i1, j0, j1) },
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (isa, p, i0, i1, j0, j1);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{m_block, Problem};
    use std::arch::x86_64::*;

    const NR: usize = 8;

    /// See [`super::compute`].
    ///
    /// # Safety
    /// As [`super::compute`], with AVX-512F supported.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn rect(p: &Problem, i0: usize, i1: usize, j0: usize, j1: usize) {
        let mb = m_block(p.k);
        let mut ib = i0;
        while ib < i1 {
            let ie = (ib + mb).min(i1);
            let mut j = j0;
            while j < j1 {
                let nr = (j1 - j).min(NR);
                let mut i = ib;
                // SAFETY (all tiles): rows i..i+MR < ie <= m and columns j..j+nr <= n are inside the validated
                // problem and inside the caller's rectangle; AVX-512F is enabled here.
                while i + 3 <= ie {
                    unsafe { tile::<3>(p, i, j, nr) };
                    i += 3;
                }
                match ie - i {
                    2 => unsafe { tile::<2>(p, i, j, nr) },
                    1 => unsafe { row(p, i, j, nr) },
                    _ => {}
                }
                j += NR;
            }
            ib = ie;
        }
    }

    /// `out[i + r][j + c] = x[i + r] · w[j + c] (+ bias)` for `r < MR`, `c < nr` (`1 <= nr <= 8`).
    ///
    /// # Safety
    /// AVX-512F supported, `k >= 1`, rows `i..i + MR` of `x`, rows `j..j + nr` of `w` and the output tile in bounds.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn tile<const MR: usize>(p: &Problem, i: usize, j: usize, nr: usize) {
        // SAFETY: the caller guarantees rows i..i+MR of x and j..j+nr of w exist (validated `(rows-1)*ld + k <= len`),
        // so these row pointers are in bounds; W columns past `nr` re-read the last valid row and their results are
        // masked off at the store; the output tile and bias[j..j+nr] are in bounds and masked to `nr` lanes.
        unsafe {
            let mut xr = [p.x; MR];
            for (r, xp) in xr.iter_mut().enumerate() {
                *xp = p.x.add((i + r) * p.ldx);
            }
            let mut wr = [p.w; NR];
            for (c, wp) in wr.iter_mut().enumerate() {
                *wp = p.w.add((j + c.min(nr - 1)) * p.ldw);
            }
            let sums = dots::<MR>(&xr, &wr, p.k);
            let omask = ((1u32 << nr) - 1) as __mmask16;
            let b = if p.bias.is_null() { _mm512_setzero_ps() } else { _mm512_maskz_loadu_ps(omask, p.bias.add(j)) };
            for (r, sum) in sums.iter().enumerate() {
                let s = _mm512_add_ps(*sum, b);
                _mm512_mask_storeu_ps(p.out.add((i + r) * p.n + j), omask, s);
            }
        }
    }

    /// Dot products of `MR` rows of `x` with `NR` rows of `w` over `k` elements: lane `c` of result `r` is
    /// `x[r] · w[c]`. Kept out of line so that the register allocator sees only this loop (inlined into the tile
    /// loops it spilled accumulators).
    ///
    /// # Safety
    /// AVX-512F supported; every pointer valid for `k` reads.
    #[inline(never)]
    #[target_feature(enable = "avx512f")]
    unsafe fn dots<const MR: usize>(xr: &[*const f32; MR], wr: &[*const f32; NR], k: usize) -> [__m512; MR] {
        // SAFETY: loads at offsets q..q+16 <= k, or masked to the k - q valid lanes (masked-off lanes are not read).
        unsafe {
            let mut acc = [[_mm512_setzero_ps(); NR]; MR];
            let mut q = 0;
            while q + 16 <= k {
                let mut xv = [_mm512_setzero_ps(); MR];
                for r in 0..MR {
                    xv[r] = _mm512_loadu_ps(xr[r].add(q));
                }
                for c in 0..NR {
                    let wv = _mm512_loadu_ps(wr[c].add(q));
                    for r in 0..MR {
                        acc[r][c] = _mm512_fmadd_ps(xv[r], wv, acc[r][c]);
                    }
                }
                q += 16;
            }
            if q < k {
                let mask = ((1u32 << (k - q)) - 1) as __mmask16;
                let mut xv = [_mm512_setzero_ps(); MR];
                for r in 0..MR {
                    xv[r] = _mm512_maskz_loadu_ps(mask, xr[r].add(q));
                }
                for c in 0..NR {
                    let wv = _mm512_maskz_loadu_ps(mask, wr[c].add(q));
                    for r in 0..MR {
                        acc[r][c] = _mm512_fmadd_ps(xv[r], wv, acc[r][c]);
                    }
                }
            }
            let mut sums = [_mm512_setzero_ps(); MR];
            for r in 0..MR {
                sums[r] = reduce8(&acc[r]);
            }
            sums
        }
    }

    /// `out[i][j + c] = x[i] · w[j + c] (+ bias)` for `c < nr` (`1 <= nr <= 8`), one W row after the other with 8
    /// independent accumulators along `k` (one memory stream at a time: streams W faster than 8 rows side by side).
    ///
    /// # Safety
    /// AVX-512F supported, `k >= 1`, row `i` of `x`, rows `j..j + nr` of `w` and the output in bounds.
    #[inline(never)]
    #[target_feature(enable = "avx512f")]
    unsafe fn row(p: &Problem, i: usize, j: usize, nr: usize) {
        let k = p.k;
        // SAFETY: row i of x and rows j..j+nr of w exist (validated), loads are at offsets < k or masked to them;
        // the output and bias[j..j+nr] are in bounds and masked to `nr` lanes.
        unsafe {
            let xp = p.x.add(i * p.ldx);
            let mut v = [_mm512_setzero_ps(); NR];
            for (c, vc) in v.iter_mut().enumerate().take(nr) {
                let wp = p.w.add((j + c) * p.ldw);
                let mut a = [_mm512_setzero_ps(); 4];
                let mut q = 0;
                while q + 64 <= k {
                    for (u, au) in a.iter_mut().enumerate() {
                        let o = q + 16 * u;
                        *au = _mm512_fmadd_ps(_mm512_loadu_ps(xp.add(o)), _mm512_loadu_ps(wp.add(o)), *au);
                    }
                    q += 64;
                }
                while q + 16 <= k {
                    a[0] = _mm512_fmadd_ps(_mm512_loadu_ps(xp.add(q)), _mm512_loadu_ps(wp.add(q)), a[0]);
                    q += 16;
                }
                if q < k {
                    let mask = ((1u32 << (k - q)) - 1) as __mmask16;
                    let (xv, wv) = (_mm512_maskz_loadu_ps(mask, xp.add(q)), _mm512_maskz_loadu_ps(mask, wp.add(q)));
                    a[1] = _mm512_fmadd_ps(xv, wv, a[1]);
                }
                *vc = _mm512_add_ps(_mm512_add_ps(a[0], a[1]), _mm512_add_ps(a[2], a[3]));
            }
            let omask = ((1u32 << nr) - 1) as __mmask16;
            let b = if p.bias.is_null() { _mm512_setzero_ps() } else { _mm512_maskz_loadu_ps(omask, p.bias.add(j)) };
            _mm512_mask_storeu_ps(p.out.add(i * p.n + j), omask, _mm512_add_ps(reduce8(&v), b));
        }
    }

    /// Horizontal sums of 8 vectors: lane `c` (c < 8) of the result is the sum of the 16 lanes of `a[c]`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn reduce8(a: &[__m512; 8]) -> __m512 {
        // Pairs: 128-bit quarters 0,1 hold 8 partial sums of the first vector, quarters 2,3 of the second.
        let pair = |u: __m512, v: __m512| {
            _mm512_add_ps(_mm512_shuffle_f32x4(u, v, 0b01_00_01_00), _mm512_shuffle_f32x4(u, v, 0b11_10_11_10))
        };
        let c01 = pair(a[0], a[1]);
        let c23 = pair(a[2], a[3]);
        let c45 = pair(a[4], a[5]);
        let c67 = pair(a[6], a[7]);
        // Quads: quarter q holds 4 partial sums of vector q (of 4).
        let quad = |u: __m512, v: __m512| {
            _mm512_add_ps(_mm512_shuffle_f32x4(u, v, 0b10_00_10_00), _mm512_shuffle_f32x4(u, v, 0b11_01_11_01))
        };
        let d0 = quad(c01, c23);
        let d1 = quad(c45, c67);
        // Quarter q: [a_q, a_q, a_{q+4}, a_{q+4}] as 2 partial sums each.
        let e = _mm512_add_ps(_mm512_shuffle_ps(d0, d1, 0b10_00_10_00), _mm512_shuffle_ps(d0, d1, 0b11_01_11_01));
        // Quarter q: lane 0 = a_q, lane 2 = a_{q+4}.
        let f = _mm512_add_ps(e, _mm512_permute_ps(e, 0b10_11_00_01));
        _mm512_permutexvar_ps(_mm512_setr_epi32(0, 4, 8, 12, 2, 6, 10, 14, 0, 0, 0, 0, 0, 0, 0, 0), f)
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{m_block, Problem};
    use std::arch::x86_64::*;

    const NR: usize = 4;

    /// See [`super::compute`].
    ///
    /// # Safety
    /// As [`super::compute`], with AVX2 and FMA supported.
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn rect(p: &Problem, i0: usize, i1: usize, j0: usize, j1: usize) {
        let mb = m_block(p.k);
        let mut ib = i0;
        while ib < i1 {
            let ie = (ib + mb).min(i1);
            let mut j = j0;
            while j < j1 {
                let nr = (j1 - j).min(NR);
                let mut i = ib;
                // SAFETY (all tiles): rows i..i+MR < ie <= m and columns j..j+nr <= n are inside the validated
                // problem and inside the caller's rectangle; AVX2 and FMA are enabled here.
                while i + 2 <= ie {
                    unsafe { tile::<2>(p, i, j, nr) };
                    i += 2;
                }
                if i < ie {
                    unsafe { tile::<1>(p, i, j, nr) };
                }
                j += NR;
            }
            ib = ie;
        }
    }

    /// Lanes `l < len` set (all bits), the others clear; `len <= 8`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn lane_mask(len: usize) -> __m256i {
        _mm256_cmpgt_epi32(_mm256_set1_epi32(len as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
    }

    /// `out[i + r][j + c] = x[i + r] · w[j + c] (+ bias)` for `r < MR`, `c < nr` (`1 <= nr <= 4`).
    ///
    /// # Safety
    /// AVX2 and FMA supported, `k >= 1`, rows `i..i + MR` of `x`, rows `j..j + nr` of `w` and the output tile in
    /// bounds.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn tile<const MR: usize>(p: &Problem, i: usize, j: usize, nr: usize) {
        let k = p.k;
        // SAFETY: as in the AVX-512 tile: row pointers and loads at offsets < k are in bounds, surplus W columns
        // re-read the last valid row and are masked off at the store; masked loads/stores skip masked-off lanes.
        unsafe {
            let mut xr = [p.x; MR];
            for (r, xp) in xr.iter_mut().enumerate() {
                *xp = p.x.add((i + r) * p.ldx);
            }
            let mut wr = [p.w; NR];
            for (c, wp) in wr.iter_mut().enumerate() {
                *wp = p.w.add((j + c.min(nr - 1)) * p.ldw);
            }
            let mut acc = [[_mm256_setzero_ps(); NR]; MR];
            let mut q = 0;
            while q + 8 <= k {
                let mut xv = [_mm256_setzero_ps(); MR];
                for r in 0..MR {
                    xv[r] = _mm256_loadu_ps(xr[r].add(q));
                }
                for c in 0..NR {
                    let wv = _mm256_loadu_ps(wr[c].add(q));
                    for r in 0..MR {
                        acc[r][c] = _mm256_fmadd_ps(xv[r], wv, acc[r][c]);
                    }
                }
                q += 8;
            }
            if q < k {
                let mask = lane_mask(k - q);
                let mut xv = [_mm256_setzero_ps(); MR];
                for r in 0..MR {
                    xv[r] = _mm256_maskload_ps(xr[r].add(q), mask);
                }
                for c in 0..NR {
                    let wv = _mm256_maskload_ps(wr[c].add(q), mask);
                    for r in 0..MR {
                        acc[r][c] = _mm256_fmadd_ps(xv[r], wv, acc[r][c]);
                    }
                }
            }
            let omask = _mm256_castsi256_si128(lane_mask(nr));
            let b = if p.bias.is_null() { _mm_setzero_ps() } else { _mm_maskload_ps(p.bias.add(j), omask) };
            for (r, a) in acc.iter().enumerate() {
                let s = _mm_add_ps(reduce4(a), b);
                _mm_maskstore_ps(p.out.add((i + r) * p.n + j), omask, s);
            }
        }
    }

    /// Horizontal sums of 4 vectors: lane `c` of the result is the sum of the 8 lanes of `a[c]`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn reduce4(a: &[__m256; 4]) -> __m128 {
        let t0 = _mm256_hadd_ps(a[0], a[1]);
        let t1 = _mm256_hadd_ps(a[2], a[3]);
        let t = _mm256_hadd_ps(t0, t1);
        _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Rng(u64);
    impl Rng {
        fn f(&mut self) -> f32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        }
        fn vec(&mut self, len: usize) -> Vec<f32> {
            (0..len).map(|_| self.f()).collect()
        }
    }

    /// The kernels this CPU runs; none says so in the test's output (`linear` then takes the
    /// portable `gemm` path, which the crate's own tests check on every machine).
    fn isas() -> Vec<Isa> {
        let isas: Vec<Isa> = [Isa::Avx512, Isa::Avx2].into_iter().filter(|&i| supports(i)).collect();
        if isas.is_empty() {
            eprintln!("linear_f32 kernels skipped: this CPU has neither AVX-512F nor AVX2+FMA (the portable path is tested in lib.rs)");
        }
        isas
    }

    /// Run one product and check it against an f64 reference; the worst
    /// `|got - ref| / (sum |x w| + |bias|)`.
    #[allow(clippy::too_many_arguments)]
    fn check(isa: Isa, threads: usize, m: usize, n: usize, k: usize, ldx: usize, ldw: usize, with_bias: bool) -> f64 {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (m * 1_000_003 + n * 1009 + k) as u64);
        let x = rng.vec(needed(m, k, ldx).unwrap_or(0));
        let w = rng.vec(needed(n, k, ldw).unwrap_or(0));
        let b = rng.vec(n);
        let bias = with_bias.then_some(&b[..]);
        // Two extra elements past m*n must stay untouched; the rest must be overwritten.
        let mut out = vec![f32::NAN; m * n + 2];
        run(isa, threads, m, n, k, &x, ldx, &w, ldw, bias, &mut out).unwrap();
        assert!(out[m * n..].iter().all(|v| v.is_nan()), "wrote past m*n");
        let mut worst = 0f64;
        for i in 0..m {
            for j in 0..n {
                let (mut s, mut mag) = (0f64, 0f64);
                for p in 0..k {
                    let t = x[i * ldx + p] as f64 * w[j * ldw + p] as f64;
                    s += t;
                    mag += t.abs();
                }
                if let Some(b) = bias {
                    s += b[j] as f64;
                    mag += (b[j] as f64).abs();
                }
                let got = out[i * n + j] as f64;
                let err = (got - s).abs();
                assert!(
                    err <= 1e-5 * mag + 1e-30,
                    "{isa:?} t={threads} m={m} n={n} k={k} ldx={ldx} ldw={ldw} bias={with_bias}: \
                     out[{i}][{j}] = {got}, want {s} (mag {mag})"
                );
                if mag > 0.0 {
                    worst = worst.max(err / mag);
                }
            }
        }
        worst
    }

    #[test]
    fn small_shapes_all_tails() {
        for isa in isas() {
            for m in [1, 2, 3, 4, 5, 6, 7] {
                for n in [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17] {
                    for k in 1..=40 {
                        check(isa, 1, m, n, k, k, k, k % 2 == 0);
                    }
                }
            }
        }
    }

    #[test]
    fn medium_shapes_strides_and_threads() {
        let mut worst = 0f64;
        for isa in isas() {
            for &(m, n, k) in &[
                (1, 1, 1),
                (1, 1000, 200),
                (1, 577, 576),
                (16, 384, 384),
                (17, 33, 129),
                (37, 301, 129),
                (64, 65, 63),
                (130, 47, 577),
                (200, 5, 100),
                (256, 9, 17),
                (9, 1, 1000),
            ] {
                for threads in [1, 2, 3, 8] {
                    for bias in [false, true] {
                        worst = worst.max(check(isa, threads, m, n, k, k, k, bias));
                    }
                }
                worst = worst.max(check(isa, 2, m, n, k, k + 3, k + 16, true));
                worst = worst.max(check(isa, 3, m, n, k, 0, k + 1, false));
            }
        }
        // Informative: how far inside the 1e-5 bound each value stayed.
        eprintln!("linear_f32 worst relative error over the medium shapes: {worst:e}");
    }

    #[test]
    fn m_blocking_large_k() {
        // m_block(k) rows per block is small for large k: several blocks of x rows.
        for isa in isas() {
            check(isa, 2, 70, 20, 5000, 5001, 5000, true);
        }
    }

    #[test]
    fn zero_dims() {
        for isa in isas() {
            for (m, n, k) in [(0, 5, 5), (5, 0, 5), (0, 0, 0), (3, 4, 0), (0, 3, 0), (1, 1, 0)] {
                check(isa, 2, m, n, k, k, k, false);
                check(isa, 2, m, n, k, k, k, true);
            }
            // k = 0 with empty x and w: bias or zeros.
            let mut out = vec![f32::NAN; 6];
            run(isa, 1, 2, 3, 0, &[], 0, &[], 0, Some(&[1.0, 2.0, 3.0]), &mut out).unwrap();
            assert_eq!(out, [1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
            run(isa, 1, 2, 3, 0, &[], 0, &[], 0, None, &mut out).unwrap();
            assert_eq!(out, [0.0; 6]);
        }
    }

    #[test]
    fn errors() {
        let x = vec![1f32; 12];
        let w = vec![1f32; 12];
        let mut out = vec![0f32; 9];
        let b = [0f32; 3];
        if !available() {
            eprintln!(
                "linear_f32 kernels skipped: this CPU has neither AVX-512F nor AVX2+FMA; checked that they refuse"
            );
            assert!(linear_f32(3, 3, 4, &x, 4, &w, 4, None, &mut out).is_err());
            return;
        }
        assert!(linear_f32(3, 3, 4, &x, 4, &w, 4, Some(&b), &mut out).is_ok());
        assert!(linear_f32(3, 3, 4, &x[..11], 4, &w, 4, None, &mut out).is_err());
        assert!(linear_f32(3, 3, 4, &x, 5, &w, 4, None, &mut out).is_err());
        assert!(linear_f32(3, 3, 4, &x, 4, &w[..11], 4, None, &mut out).is_err());
        assert!(linear_f32(3, 3, 4, &x, 4, &w, 5, None, &mut out).is_err());
        assert!(linear_f32(3, 3, 4, &x, 4, &w, 4, None, &mut out[..8]).is_err());
        assert!(linear_f32(3, 3, 4, &x, 4, &w, 4, Some(&b[..2]), &mut out).is_err());
        assert!(linear_f32(3, 3, 5, &x, 4, &w, 4, None, &mut out).is_err());
        // Overflowing index computations.
        let big = usize::MAX;
        assert!(linear_f32(3, 3, 4, &x, big, &w, 4, None, &mut out).is_err());
        assert!(linear_f32(3, 3, 4, &x, 4, &w, big / 2, None, &mut out).is_err());
        assert!(linear_f32(big, 2, 0, &x, 0, &w, 0, None, &mut out).is_err());
        assert!(linear_f32(2, big, 1, &x, 1, &w, 1, None, &mut out).is_err());
        assert!(linear_f32(big, big, big, &x, big, &w, big, None, &mut out).is_err());
        // Lengths that are fine.
        assert!(linear_f32(0, 0, 0, &[], 0, &[], 0, None, &mut []).is_ok());
        assert!(linear_f32(0, 3, 4, &[], 4, &w, 4, None, &mut []).is_ok());
        assert!(linear_f32(3, 0, 4, &x, 4, &[], 4, None, &mut []).is_ok());
        let e = linear_f32(3, 3, 4, &x[..5], 4, &w, 4, None, &mut out).unwrap_err();
        assert!(e.contains("x has 5 elements"), "{e}");
    }

    #[test]
    fn reductions_place_lanes() {
        // One-hot weights: out[i][j] must be x[i][j'] for the chosen j', catching any lane permutation.
        for isa in isas() {
            let (m, n, k) = (5, 19, 37);
            let x: Vec<f32> = (0..m * k).map(|v| v as f32).collect();
            let mut w = vec![0f32; n * k];
            for j in 0..n {
                w[j * k + (j * 7) % k] = 1.0;
            }
            let mut out = vec![0f32; m * n];
            run(isa, 1, m, n, k, &x, k, &w, k, None, &mut out).unwrap();
            for i in 0..m {
                for j in 0..n {
                    assert_eq!(out[i * n + j], x[i * k + (j * 7) % k], "{isa:?} {i} {j}");
                }
            }
        }
    }

    #[test]
    fn public_api_matches_and_preferred() {
        if !available() {
            eprintln!("linear_f32 kernels skipped: this CPU has neither AVX-512F nor AVX2+FMA; checked that none is preferred");
            assert!(!preferred(16, 384, 384));
            return;
        }
        assert!(preferred(16, 384, 384) && preferred(1, 49152, 576) && preferred(128, 1536, 576));
        assert!(!preferred(4096, 1536, 384) && !preferred(0, 5, 5) && !preferred(64, 64, 64));
        let (m, n, k) = (7, 45, 33);
        let mut rng = Rng(5);
        let (x, w, b) = (rng.vec(m * k), rng.vec(n * k), rng.vec(n));
        let mut o1 = vec![0f32; m * n];
        let mut o2 = vec![0f32; m * n];
        linear_f32(m, n, k, &x, k, &w, k, Some(&b), &mut o1).unwrap();
        run(detected().unwrap(), 1, m, n, k, &x, k, &w, k, Some(&b), &mut o2).unwrap();
        assert_eq!(o1, o2);
    }
}
