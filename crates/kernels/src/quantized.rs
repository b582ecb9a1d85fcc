//! Quantized matrix products on the CPU: `x · Wᵀ` with `W` a ggml-quantized [`QTensor`] of one
//! of the 32-value block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0), as llama.cpp computes them.
//!
//! candle 0.11's `QMatMul` runs Q4_1, Q5_0 and Q5_1 through its scalar `vec_dot_unopt` (one
//! value at a time): on SmolLM2's Q4_1 layers that is several times slower than the SIMD
//! types; its AVX2 Q4_0 and Q8_0 kernels reduce every block horizontally, which the kernels
//! here do once per row. The kernels here keep llama.cpp's integer-dot semantics exactly: each activation row
//! is quantized to 8-bit blocks (Q8_1, with its block sum, for Q4_1/Q5_1; Q8_0 for the
//! others) by llama.cpp's x86 arithmetic (see [`quantize_activations`]), each block's integer dot product
//! is exact (AVX2 `maddubs`/`madd` where the CPU has AVX2, FMA and F16C, a portable scalar
//! loop elsewhere). The portable loop combines the per-block scales in f32 block after block,
//! as candle's scalar `vec_dot_unopt` does; the AVX2 path scales each
//! block's eight partial sums into eight f32 lanes with FMA and adds the lanes once per
//! row, as llama.cpp's AVX2 `vec_dot`s do (equal up to the order of the float additions).
//! The output rows (the weight's rows) are split over candle's thread pool; a weight block is
//! unpacked once for four activation rows (prefill), an activation block loaded once for four
//! weight rows (decode).

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Result, Shape, Tensor};
use half::f16;

/// Values in one block of every type here.
const QK: usize = 32;
/// Activation rows that share one unpacked weight block.
const ROW_TILE: usize = 16;

/// A ggml block type this module computes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// 4-bit, scale: `d · (q - 8)`.
    Q4_0,
    /// 4-bit, scale and minimum: `d · q + m`.
    Q4_1,
    /// 5-bit, scale: `d · (q - 16)`.
    Q5_0,
    /// 5-bit, scale and minimum: `d · q + m`.
    Q5_1,
    /// 8-bit, scale: `d · q`.
    Q8_0,
}

impl BlockKind {
    /// The kind of a ggml type, `None` for the types this module leaves to candle.
    pub fn of(dtype: GgmlDType) -> Option<Self> {
        Some(match dtype {
            GgmlDType::Q4_0 => Self::Q4_0,
            GgmlDType::Q4_1 => Self::Q4_1,
            GgmlDType::Q5_0 => Self::Q5_0,
            GgmlDType::Q5_1 => Self::Q5_1,
            GgmlDType::Q8_0 => Self::Q8_0,
            _ => return None,
        })
    }

    /// Bytes of one block.
    pub fn block_bytes(self) -> usize {
        match self {
            Self::Q4_0 => 18,
            Self::Q4_1 => 20,
            Self::Q5_0 => 22,
            Self::Q5_1 => 24,
            Self::Q8_0 => 34,
        }
    }

    /// Whether the activations are quantized to Q8_1 (with the block sum) rather than Q8_0.
    fn with_min(self) -> bool {
        matches!(self, Self::Q4_1 | Self::Q5_1)
    }
}

/// Where this module computes `kind` instead of candle's `QMatMul` (measured, see the
/// benchmark `quantized_matmul_bench`, SmolLM2's `[m x 576] · [1536 x 576]ᵀ` on 2 threads):
/// on CPUs with AVX2, FMA and F16C, every type here (Q4_1 / Q5_0 / Q5_1 run 5-17x faster
/// than candle's scalar loop, Q4_0 and Q8_0 1.5-2x faster than its AVX2 kernels); elsewhere
/// candle's.
fn ours_is_faster(_kind: BlockKind) -> bool {
    has_avx2()
}

/// One activation block: the f16 scale (and Q8_1's `s = d · Σq`) as f32, and the values.
#[derive(Clone, Copy, Debug)]
pub struct ActBlock {
    d: f32,
    s: f32,
    qs: [i8; QK],
}

/// Quantize `xs` (a multiple of 32 long) to Q8_0 (`with_sum = false`) or Q8_1 blocks as
/// llama.cpp's x86 `quantize_row_q8_0` / `quantize_row_q8_1` do: `d = amax / 127`, values
/// `round_ties_even(x · 127 / amax)`, `s = f16(d · Σq)` (candle's `from_float` takes `1 / d`,
/// rounds ties away from zero and multiplies in f16: on SmolLM2's Q4_1 file that is enough to
/// change the greedy tokens; with llama.cpp's arithmetic they are llama.cpp's).
pub fn quantize_activations(xs: &[f32], with_sum: bool) -> Vec<ActBlock> {
    xs.chunks_exact(QK)
        .map(|xs| {
            let amax = xs.iter().fold(0f32, |a, &x| a.max(x.abs()));
            let d = amax / 127.0;
            let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
            let mut qs = [0i8; QK];
            let mut sum = 0i32;
            for (q, &x) in qs.iter_mut().zip(xs) {
                *q = round_ties_even(x * id) as i8;
                sum += i32::from(*q);
            }
            let s = if with_sum { f16::from_f32(d * sum as f32).to_f32() } else { 0.0 };
            ActBlock { d: f16::from_f32(d).to_f32(), s, qs }
        })
        .collect()
}

/// `v` rounded to the nearest integer, ties to even, for `|v| <= 2^22`: adding and taking
/// away 1.5 · 2^23 leaves no fraction bits (the default rounding mode rounds ties to even).
/// The same result as `f32::round_ties_even`, which is a library call here; this vectorises.
#[inline(always)]
fn round_ties_even(v: f32) -> f32 {
    const MAGIC: f32 = 12_582_912.0;
    (v + MAGIC) - MAGIC
}

fn f16_at(bytes: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([bytes[at], bytes[at + 1]]).to_f32()
}

/// The 32 weight values of one block as integers (`q - 8`, `q`, `q - 16`, ...): the portable path.
fn unpack_scalar(kind: BlockKind, block: &[u8]) -> [i32; QK] {
    let mut out = [0i32; QK];
    match kind {
        BlockKind::Q8_0 => {
            for (o, &b) in out.iter_mut().zip(&block[2..34]) {
                *o = i32::from(b as i8);
            }
        }
        BlockKind::Q4_0 | BlockKind::Q4_1 => {
            let (qs, offset) = if kind == BlockKind::Q4_0 { (&block[2..18], 8) } else { (&block[4..20], 0) };
            for j in 0..QK / 2 {
                out[j] = i32::from(qs[j] & 0x0F) - offset;
                out[j + QK / 2] = i32::from(qs[j] >> 4) - offset;
            }
        }
        BlockKind::Q5_0 | BlockKind::Q5_1 => {
            let (h, offset) = if kind == BlockKind::Q5_0 { (2, 16) } else { (4, 0) };
            let qh = u32::from_le_bytes([block[h], block[h + 1], block[h + 2], block[h + 3]]);
            let qs = &block[h + 4..h + 20];
            for j in 0..QK / 2 {
                let h0 = ((qh >> j) & 1) << 4;
                let h1 = ((qh >> (j + 16)) & 1) << 4;
                out[j] = (i32::from(qs[j] & 0x0F) | h0 as i32) - offset;
                out[j + QK / 2] = (i32::from(qs[j] >> 4) | h1 as i32) - offset;
            }
        }
    }
    out
}

/// `Σ dᵂ·dˣ·Σᵢ wᵢxᵢ (+ mᵂ·sˣ)` over the blocks of one weight row and one activation row, for
/// each activation row of `acts` (`rows` rows of `blocks` blocks), into `out[r]`.
fn row_dots_scalar(kind: BlockKind, wrow: &[u8], acts: &[ActBlock], blocks: usize, out: &mut [f32]) {
    let bb = kind.block_bytes();
    for (r, o) in out.iter_mut().enumerate() {
        let act = &acts[r * blocks..(r + 1) * blocks];
        let mut sumf = 0f32;
        for (b, y) in act.iter().enumerate() {
            let block = &wrow[b * bb..(b + 1) * bb];
            let x = unpack_scalar(kind, block);
            let sumi: i32 = x.iter().zip(&y.qs).map(|(&x, &y)| x * i32::from(y)).sum();
            sumf += combine(kind, block, sumi, y);
        }
        *o = sumf;
    }
}

/// One block's contribution, in candle's operation order: `sumi·dᵂ·dˣ (+ mᵂ·sˣ)`.
#[inline(always)]
fn combine(kind: BlockKind, block: &[u8], sumi: i32, y: &ActBlock) -> f32 {
    let dw = f16_at(block, 0);
    if kind.with_min() {
        sumi as f32 * dw * y.d + f16_at(block, 2) * y.s
    } else {
        sumi as f32 * dw * y.d
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! The AVX2 block dot products.
    #![allow(unsafe_code)]

    use super::{ActBlock, BlockKind, QK};
    use std::arch::x86_64::*;

    /// The 16 bytes at `p + at` split into their 32 nibbles: low nibbles first.
    ///
    /// # Safety
    /// AVX2 must be available and `p + at .. p + at + 16` readable.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn nibbles(p: *const u8, at: usize) -> __m256i {
        // SAFETY: the caller's contract.
        let q = unsafe { _mm_loadu_si128(p.add(at) as *const __m128i) };
        let lo = _mm_and_si128(q, _mm_set1_epi8(0x0F));
        let hi = _mm_and_si128(_mm_srli_epi16(q, 4), _mm_set1_epi8(0x0F));
        _mm256_set_m128i(hi, lo)
    }

    /// Byte i is 0x10 where bit i of the little-endian `u32` at `p + at` is set (llama.cpp's
    /// `bytes_from_bits_32`).
    ///
    /// # Safety
    /// AVX2 must be available and `p + at .. p + at + 4` readable.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn high_bits(p: *const u8, at: usize) -> __m256i {
        // SAFETY: the caller's contract.
        let qh = unsafe { (p.add(at) as *const i32).read_unaligned() };
        let shuf = _mm256_set_epi64x(
            0x0303_0303_0303_0303,
            0x0202_0202_0202_0202,
            0x0101_0101_0101_0101,
            0x0000_0000_0000_0000,
        );
        let bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(i32::from_le(qh)), shuf);
        let mask = _mm256_set1_epi64x(0x7fbf_dfef_f7fb_fdfe_u64 as i64);
        let set = _mm256_cmpeq_epi8(_mm256_or_si256(bytes, mask), _mm256_set1_epi64x(-1));
        _mm256_and_si256(set, _mm256_set1_epi8(0x10))
    }

    /// The 32 weight values of one block in a register, as `maddubs` wants them: unsigned
    /// (`Q4_1`, `Q5_1`: `q` is 0..31) or signed (the others).
    ///
    /// # Safety
    /// AVX2 must be available; `block` holds one block of `kind` (checked by the caller).
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn unpack(kind: BlockKind, block: &[u8]) -> __m256i {
        debug_assert!(block.len() >= kind.block_bytes());
        let p = block.as_ptr();
        // SAFETY: every load below reads inside `block`: 16 bytes at 2 (Q4_0, ends at 18),
        // 4 (Q4_1, 20), 6 (Q5_0, 22), 8 (Q5_1, 24), 32 at 2 (Q8_0, 34); 4 bytes of `qh`.
        unsafe {
            match kind {
                BlockKind::Q8_0 => _mm256_loadu_si256(p.add(2) as *const __m256i),
                BlockKind::Q4_0 => _mm256_sub_epi8(nibbles(p, 2), _mm256_set1_epi8(8)),
                BlockKind::Q4_1 => nibbles(p, 4),
                BlockKind::Q5_0 => {
                    _mm256_sub_epi8(_mm256_or_si256(nibbles(p, 6), high_bits(p, 2)), _mm256_set1_epi8(16))
                }
                BlockKind::Q5_1 => _mm256_or_si256(nibbles(p, 8), high_bits(p, 4)),
            }
        }
    }

    /// The 8 partial sums (`i32`) of `Σ xᵢyᵢ` over 32 bytes: `x` unsigned or signed as
    /// `signed` says, `y` signed.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn quads(x: __m256i, y: __m256i, signed: bool) -> __m256i {
        let (ux, sy) = if signed { (_mm256_sign_epi8(x, x), _mm256_sign_epi8(y, x)) } else { (x, y) };
        // |x| ≤ 128 and |y| ≤ 127: each pair sum fits i16 (at most 2·128·127 = 32512), so
        // `maddubs` never saturates.
        let pairs = _mm256_maddubs_epi16(ux, sy);
        _mm256_madd_epi16(pairs, _mm256_set1_epi16(1))
    }

    /// The f16 at `bytes[at..at + 2]` as f32.
    ///
    /// # Safety
    /// F16C must be available.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn half_at(bytes: &[u8], at: usize) -> f32 {
        let bits = u16::from_le_bytes([bytes[at], bytes[at + 1]]);
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(bits))))
    }

    /// The 8 lanes of `v` added.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    /// `R` activation rows (`acts`, `R · blocks` blocks, row after row) against one weight
    /// row, as llama.cpp's AVX2 `vec_dot`s compute them: each block's integer dot product
    /// exact, scaled by `dᵂ·dˣ` into eight f32 lanes with FMA, the `mᵂ·sˣ` terms of Q4_1 /
    /// Q5_1 summed apart, the lanes added once at the end. The weight block is unpacked once
    /// for the `R` rows.
    ///
    /// # Safety
    /// AVX2, FMA and F16C must be available; `wrow` holds `blocks` blocks of `kind`, `acts`
    /// `R · blocks` blocks, `out` `R` values.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn tile_rows<const R: usize>(
        kind: BlockKind,
        wrow: &[u8],
        acts: &[ActBlock],
        blocks: usize,
        out: &mut [f32],
    ) {
        let bb = kind.block_bytes();
        let signed = !kind.with_min();
        assert!(wrow.len() >= blocks * bb && acts.len() >= R * blocks && out.len() >= R);
        let mut acc = [_mm256_setzero_ps(); R];
        let mut summ = [0f32; R];
        for b in 0..blocks {
            let block = &wrow[b * bb..(b + 1) * bb];
            // SAFETY: AVX2/F16C (this function's contract); `block` is one whole block.
            let (x, dw) = unsafe { (unpack(kind, block), half_at(block, 0)) };
            // SAFETY: as above; blocks with a minimum have it at bytes 2..4.
            let mw = if signed { 0.0 } else { unsafe { half_at(block, 2) } };
            for r in 0..R {
                let y = &acts[r * blocks + b];
                // SAFETY: `y.qs` is 32 bytes.
                let yv = unsafe { _mm256_loadu_si256(y.qs.as_ptr() as *const __m256i) };
                let q = _mm256_cvtepi32_ps(quads(x, yv, signed));
                acc[r] = _mm256_fmadd_ps(q, _mm256_set1_ps(dw * y.d), acc[r]);
                summ[r] += mw * y.s;
            }
        }
        for r in 0..R {
            out[r] = hsum(acc[r]) + summ[r];
        }
    }

    /// One activation row against `C` weight rows (decode): each activation block is loaded
    /// once for the `C` rows; arithmetic as [`tile_rows`].
    ///
    /// # Safety
    /// AVX2, FMA and F16C must be available; each of `wrows` holds `act.len()` blocks of `kind`.
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn tile_cols<const C: usize>(kind: BlockKind, wrows: [&[u8]; C], act: &[ActBlock], out: &mut [f32]) {
        let bb = kind.block_bytes();
        let signed = !kind.with_min();
        assert!(wrows.iter().all(|w| w.len() >= act.len() * bb) && out.len() >= C);
        let mut acc = [_mm256_setzero_ps(); C];
        let mut summ = [0f32; C];
        for (b, y) in act.iter().enumerate() {
            // SAFETY: `y.qs` is 32 bytes.
            let yv = unsafe { _mm256_loadu_si256(y.qs.as_ptr() as *const __m256i) };
            for c in 0..C {
                let block = &wrows[c][b * bb..(b + 1) * bb];
                // SAFETY: AVX2/F16C (this function's contract); `block` is one whole block.
                let (x, dw) = unsafe { (unpack(kind, block), half_at(block, 0)) };
                let q = _mm256_cvtepi32_ps(quads(x, yv, signed));
                acc[c] = _mm256_fmadd_ps(q, _mm256_set1_ps(dw * y.d), acc[c]);
                if !signed {
                    // SAFETY: as above.
                    summ[c] += unsafe { half_at(block, 2) } * y.s;
                }
            }
        }
        for c in 0..C {
            out[c] = hsum(acc[c]) + summ[c];
        }
    }

    /// As [`super::row_dots`]: `out[r]` = weight row `wrow` · activation row `r`.
    ///
    /// # Safety
    /// AVX2, FMA and F16C must be available; `wrow` holds `blocks` blocks of `kind`, `acts`
    /// `out.len()` rows of `blocks` blocks.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn row_dots(kind: BlockKind, wrow: &[u8], acts: &[ActBlock], blocks: usize, out: &mut [f32]) {
        let mut done = 0;
        while done < out.len() {
            let (acts, out) = (&acts[done * blocks..], &mut out[done..]);
            // SAFETY: the contract, passed on; each call takes as many rows as it is given.
            done += unsafe {
                match out.len() {
                    1 => tile_rows::<1>(kind, wrow, acts, blocks, out),
                    2 => tile_rows::<2>(kind, wrow, acts, blocks, out),
                    3 => tile_rows::<3>(kind, wrow, acts, blocks, out),
                    _ => tile_rows::<4>(kind, wrow, acts, blocks, out),
                }
                out.len().min(4)
            };
        }
    }

    /// `out[j]` = weight row `j` (of `out.len()` rows of `row_bytes` in `weight`) · `act`.
    ///
    /// # Safety
    /// AVX2, FMA and F16C must be available; `weight` holds `out.len()` rows of `act.len()`
    /// blocks of `kind`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn col_dots(kind: BlockKind, weight: &[u8], row_bytes: usize, act: &[ActBlock], out: &mut [f32]) {
        let row = |j: usize| &weight[j * row_bytes..(j + 1) * row_bytes];
        let mut j = 0;
        while j + 4 <= out.len() {
            // SAFETY: the contract, passed on.
            unsafe { tile_cols::<4>(kind, [row(j), row(j + 1), row(j + 2), row(j + 3)], act, &mut out[j..j + 4]) };
            j += 4;
        }
        while j < out.len() {
            // SAFETY: as above.
            unsafe { tile_cols::<1>(kind, [row(j)], act, &mut out[j..=j]) };
            j += 1;
        }
        debug_assert_eq!(QK, 32);
    }
}

fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
            && std::arch::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// `out[r]` = the dot product of the weight row `wrow` with activation row `r`, the fast path
/// where the CPU has one (`simd = true`), else the portable one.
fn row_dots(kind: BlockKind, wrow: &[u8], acts: &[ActBlock], blocks: usize, out: &mut [f32], simd: bool) {
    #[cfg(target_arch = "x86_64")]
    if simd && has_avx2() {
        // SAFETY: AVX2 was detected; the callers pass whole rows (`matmul_raw` checks sizes).
        #[allow(unsafe_code)]
        unsafe {
            avx2::row_dots(kind, wrow, acts, blocks, out)
        };
        return;
    }
    let _ = simd;
    row_dots_scalar(kind, wrow, acts, blocks, out)
}

/// `out[j]` = weight row `j` · the activation row `act`, for `out.len()` rows of `weight`.
fn col_dots(kind: BlockKind, weight: &[u8], row_bytes: usize, act: &[ActBlock], out: &mut [f32], simd: bool) {
    #[cfg(target_arch = "x86_64")]
    if simd && has_avx2() {
        // SAFETY: AVX2, FMA and F16C were detected; `matmul_raw` checked the sizes.
        #[allow(unsafe_code)]
        unsafe {
            avx2::col_dots(kind, weight, row_bytes, act, out)
        };
        return;
    }
    for (j, o) in out.iter_mut().enumerate() {
        row_dots_scalar(kind, &weight[j * row_bytes..(j + 1) * row_bytes], act, act.len(), std::slice::from_mut(o));
    }
    let _ = simd;
}

/// `dst[i·n + j] = Σ x[i]·W[j]` for `m` activation rows `lhs` (`m·k`) and the raw blocks
/// `weight` of `n` rows of `k` values; `simd = false` forces the portable path (tests).
#[allow(unsafe_code)]
pub fn matmul_raw(
    kind: BlockKind,
    (m, k, n): (usize, usize, usize),
    lhs: &[f32],
    weight: &[u8],
    simd: bool,
) -> Result<Vec<f32>> {
    if k % QK != 0 || lhs.len() != m * k || weight.len() != n * (k / QK) * kind.block_bytes() {
        candle_core::bail!("quantized matmul: sizes do not match (m {m}, k {k}, n {n}, {kind:?})")
    }
    let blocks = k / QK;
    let row_bytes = blocks * kind.block_bytes();
    let acts = quantize_activations(lhs, kind.with_min());
    // The work goes to candle's own pool, whose workers the other ops of the model keep
    // warm: a second pool (rayon's) would wake threads that compete with them for the cores.
    let pool = candle_core::utils::barrier_pool();
    if m == 1 {
        // Decode: runs of four weight rows against the one activation row.
        let mut out = vec![0f32; n];
        let dst = SharedOut(out.as_mut_ptr());
        pool.execute_chunked(n.div_ceil(4), |groups| {
            let (first, last) = (groups.start * 4, (groups.end * 4).min(n));
            // SAFETY: the pool hands out disjoint ranges of groups, so the rows
            // `first..last` (inside `0..n`) are written by this call only.
            let chunk = unsafe { dst.rows(first, last) };
            col_dots(kind, &weight[first * row_bytes..last * row_bytes], row_bytes, &acts, chunk, simd);
        });
        return Ok(out);
    }
    // Output transposed, `[n][m]`: each call owns whole weight rows.
    let mut out_t = vec![0f32; n * m];
    let dst = SharedOut(out_t.as_mut_ptr());
    pool.execute_chunked(n, |rows| {
        // SAFETY: disjoint ranges of weight rows, each `m` outputs of `out_t` (`n · m`).
        let chunk = unsafe { dst.rows(rows.start * m, rows.end * m) };
        for (jj, out_row) in chunk.chunks_mut(m).enumerate() {
            let j = rows.start + jj;
            let wrow = &weight[j * row_bytes..(j + 1) * row_bytes];
            for (tile, out_tile) in out_row.chunks_mut(ROW_TILE).enumerate() {
                let first = tile * ROW_TILE;
                let acts = &acts[first * blocks..(first + out_tile.len()) * blocks];
                row_dots(kind, wrow, acts, blocks, out_tile, simd);
            }
        }
    });
    if m == 1 {
        return Ok(out_t);
    }
    let mut dst = vec![0f32; m * n];
    for (j, col) in out_t.chunks_exact(m).enumerate() {
        for (i, &v) in col.iter().enumerate() {
            dst[i * n + j] = v;
        }
    }
    Ok(dst)
}

/// The output of a product, written by the pool's threads at disjoint places.
#[derive(Clone, Copy)]
struct SharedOut(*mut f32);

// SAFETY: every thread writes its own disjoint range (see `rows`).
#[allow(unsafe_code)]
unsafe impl Sync for SharedOut {}
// SAFETY: as above.
#[allow(unsafe_code)]
unsafe impl Send for SharedOut {}

impl SharedOut {
    /// The values `start..end`.
    ///
    /// # Safety
    /// `start..end` lies inside the buffer, and no other live slice overlaps it.
    #[allow(unsafe_code)]
    unsafe fn rows<'a>(self, start: usize, end: usize) -> &'a mut [f32] {
        // SAFETY: the caller's contract.
        unsafe { std::slice::from_raw_parts_mut(self.0.add(start), end - start) }
    }
}

/// The op over the activations, holding the weight.
struct QMatMulOp<'a> {
    kind: BlockKind,
    weight: &'a [u8],
    n: usize,
    k: usize,
}

impl CustomOp1 for QMatMulOp<'_> {
    fn name(&self) -> &'static str {
        "autocandle-quantized-matmul"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(all) = storage else { candle_core::bail!("quantized matmul: f32 activations only") };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("quantized matmul: contiguous activations only")
        };
        let lhs = &all[start..end];
        let m = lhs.len() / self.k;
        let out = matmul_raw(self.kind, (m, self.k, self.n), lhs, self.weight, true)?;
        let mut dims = layout.shape().dims().to_vec();
        if let Some(last) = dims.last_mut() {
            *last = self.n;
        }
        Ok((CpuStorage::F32(out), Shape::from(dims)))
    }
}

/// `x · wᵀ` for a contiguous f32 CPU `x` (`[.., k]`) and a quantized `w` (`[n, k]`), or `None`
/// where this crate has no faster kernel than candle's `QMatMul` (the caller uses candle's):
/// another device, dtype or layout, a k-quant, a type candle already runs with SIMD.
pub fn matmul(x: &Tensor, w: &QTensor) -> Result<Option<Tensor>> {
    let Some(kind) = BlockKind::of(w.dtype()) else { return Ok(None) };
    if !ours_is_faster(kind) || !matches!(x.device(), Device::Cpu) || x.dtype() != DType::F32 || !x.is_contiguous() {
        return Ok(None);
    }
    let (n, k) = w.shape().dims2()?;
    if x.dims().last() != Some(&k) || x.rank() < 1 {
        return Ok(None);
    }
    let data = w.data()?;
    let op = QMatMulOp { kind, weight: &data, n, k };
    x.apply_op1_no_bwd(&op).map(Some)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use candle_core::quantized::k_quants::{BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, GgmlType};
    use candle_core::quantized::QMatMul;
    use candle_core::Module;

    /// `x · Wᵀ` in f64 from the weights as candle quantizes and dequantizes them and the
    /// activations as `quantize_activations` quantizes them (their values `d · q`).
    fn reference<T: GgmlType>(w: &[f32], x: &[f32], (m, k, n): (usize, usize, usize), with_sum: bool) -> Vec<f32> {
        let blocks = k / QK;
        let mut wd = vec![0f32; n * k];
        for j in 0..n {
            let mut xs = vec![T::zeros(); blocks];
            T::from_float(&w[j * k..(j + 1) * k], &mut xs);
            T::to_float(&xs, &mut wd[j * k..(j + 1) * k]);
        }
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            let acts = quantize_activations(&x[i * k..(i + 1) * k], with_sum);
            let xd: Vec<f64> =
                acts.iter().flat_map(|b| b.qs.iter().map(move |&q| f64::from(b.d) * f64::from(q))).collect();
            for j in 0..n {
                out[i * n + j] =
                    wd[j * k..(j + 1) * k].iter().zip(&xd).map(|(&a, &b)| f64::from(a) * b).sum::<f64>() as f32;
            }
        }
        out
    }

    fn data(len: usize, seed: u32) -> Vec<f32> {
        // A simple LCG: reproducible, with outliers so scales vary.
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..len)
            .map(|i| {
                s = s.wrapping_mul(1664525).wrapping_add(1013904223);
                let v = (s >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0;
                if i % 97 == 0 {
                    v * 8.0
                } else {
                    v
                }
            })
            .collect()
    }

    #[test]
    fn both_paths_compute_the_quantized_product() {
        let dims = [(1usize, 576usize, 37usize), (5, 128, 20), (19, 64, 3)];
        for (m, k, n) in dims {
            let w = data(n * k, 7);
            let x = data(m * k, 11);
            for dtype in [GgmlDType::Q4_0, GgmlDType::Q4_1, GgmlDType::Q5_0, GgmlDType::Q5_1, GgmlDType::Q8_0] {
                let kind = BlockKind::of(dtype).unwrap();
                let want = match dtype {
                    GgmlDType::Q4_0 => reference::<BlockQ4_0>(&w, &x, (m, k, n), false),
                    GgmlDType::Q4_1 => reference::<BlockQ4_1>(&w, &x, (m, k, n), true),
                    GgmlDType::Q5_0 => reference::<BlockQ5_0>(&w, &x, (m, k, n), false),
                    GgmlDType::Q5_1 => reference::<BlockQ5_1>(&w, &x, (m, k, n), true),
                    _ => reference::<BlockQ8_0>(&w, &x, (m, k, n), false),
                };
                let q = QTensor::quantize(&Tensor::from_vec(w.clone(), (n, k), &Device::Cpu).unwrap(), dtype).unwrap();
                let bytes = q.data().unwrap();
                // Each block's integer product is exact; what differs from the f64 reference is
                // the f32 sums and, for Q4_1 / Q5_1, the activations' block sums kept in f16.
                let scale = want.iter().fold(0f32, |a, v| a.max(v.abs()));
                for simd in [false, true] {
                    let got = matmul_raw(kind, (m, k, n), &x, &bytes, simd).unwrap();
                    for (g, w) in got.iter().zip(&want) {
                        assert!((g - w).abs() <= 1e-3 * scale, "{dtype:?} simd={simd} ({m}, {k}, {n}): {g} vs {w}");
                    }
                }
                // The two paths differ only in the order of the f32 additions.
                let portable = matmul_raw(kind, (m, k, n), &x, &bytes, false).unwrap();
                let simd = matmul_raw(kind, (m, k, n), &x, &bytes, true).unwrap();
                for (a, b) in portable.iter().zip(&simd) {
                    assert!((a - b).abs() <= 2e-5 * scale, "{dtype:?} ({m}, {k}, {n}): {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn activations_are_quantized_as_llama_cpp_does() {
        // amax 127: the scale is 1 and the values are rounded half to even (x86 ggml).
        let mut x = vec![0f32; 32];
        x[..6].copy_from_slice(&[127.0, 2.5, 3.5, -2.5, -3.5, 0.49]);
        let b = &quantize_activations(&x, true)[0];
        assert_eq!(b.d, 1.0);
        assert_eq!(&b.qs[..6], &[127, 2, 4, -2, -4, 0]);
        assert_eq!(b.s, 127.0);
        // The scale multiplies by 127 / amax (not by 1 / d), and `s = f16(d · Σq)`.
        let x: Vec<f32> = (0..32).map(|i| (i as f32 - 15.3) * 0.37).collect();
        let b = &quantize_activations(&x, true)[0];
        let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
        for (q, v) in b.qs.iter().zip(&x) {
            assert_eq!(*q, (v * (127.0 / amax)).round_ties_even() as i8);
        }
        let sum: i32 = b.qs.iter().map(|&q| i32::from(q)).sum();
        assert_eq!(b.s, f16::from_f32(amax / 127.0 * sum as f32).to_f32());
        assert_eq!(quantize_activations(&x, false)[0].s, 0.0);
        for v in [-127.5f32, -2.5, -0.5, 0.5, 1.5, 126.5, 3.3, -64.49] {
            assert_eq!(round_ties_even(v), v.round_ties_even(), "{v}");
        }
        assert!(quantize_activations(&[0.0; 32], true)[0].qs.iter().all(|&q| q == 0));
    }

    #[test]
    fn matmul_equals_candle_qmatmul_where_it_is_used() {
        for dtype in [GgmlDType::Q4_0, GgmlDType::Q4_1, GgmlDType::Q5_0, GgmlDType::Q5_1, GgmlDType::Q8_0] {
            let q = QTensor::quantize(&Tensor::randn(0f32, 1.0, (48, 128), &Device::Cpu).unwrap(), dtype).unwrap();
            let x = Tensor::randn(0f32, 1.0, (2, 3, 128), &Device::Cpu).unwrap();
            let Some(got) = matmul(&x, &q).unwrap() else {
                assert!(!has_avx2(), "{dtype:?} is computed here on AVX2 CPUs");
                println!("skipping {dtype:?}: no AVX2 on this CPU, candle's QMatMul is used");
                continue;
            };
            let want = QMatMul::from_qtensor(q).unwrap().forward(&x).unwrap();
            assert_eq!(got.dims(), [2, 3, 48]);
            // candle quantizes the activations with its own rounding (`1 / d`, ties away from
            // zero): a few values land one step apart.
            let scale = want.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
            let diff = (got - want).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap();
            assert!(diff.to_scalar::<f32>().unwrap() <= 1e-2 * scale, "{dtype:?}");
        }
        // Left to candle: k-quants, other devices' dtypes.
        let q4k =
            QTensor::quantize(&Tensor::zeros((4, 256), DType::F32, &Device::Cpu).unwrap(), GgmlDType::Q4K).unwrap();
        assert!(matmul(&Tensor::zeros((1, 256), DType::F32, &Device::Cpu).unwrap(), &q4k).unwrap().is_none());
    }

    #[test]
    fn bad_sizes_are_errors() {
        assert!(matmul_raw(BlockKind::Q4_1, (1, 32, 2), &[0.0; 32], &[0u8; 20], true).is_err());
        assert!(matmul_raw(BlockKind::Q4_1, (1, 30, 1), &[0.0; 30], &[0u8; 20], true).is_err());
    }

    /// `cargo test -p autocandle-kernels --release -- --ignored quantized_matmul_bench --nocapture`:
    /// ms per call and GFLOP/s of candle's `QMatMul` and of this module (AVX2 and portable) on
    /// SmolLM2-135M's MLP shape, `[m x 576] · [1536 x 576]ᵀ`, m = 1 (decode) and 128 (prefill).
    #[test]
    #[ignore = "a benchmark: run with --release"]
    fn quantized_matmul_bench() {
        let (k, n) = (576, 1536);
        let w = Tensor::randn(0f32, 1.0, (n, k), &Device::Cpu).unwrap();
        println!("threads: rayon {}", rayon::current_num_threads());
        for dtype in [GgmlDType::Q4_0, GgmlDType::Q4_1, GgmlDType::Q5_0, GgmlDType::Q5_1, GgmlDType::Q8_0] {
            let q = QTensor::quantize(&w, dtype).unwrap();
            let bytes = q.data().unwrap().into_owned();
            let kind = BlockKind::of(dtype).unwrap();
            let qmm = QMatMul::from_qtensor(QTensor::quantize(&w, dtype).unwrap()).unwrap();
            for m in [1usize, 128] {
                let x = Tensor::randn(0f32, 1.0, (m, k), &Device::Cpu).unwrap();
                let xs = x.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                let flop = 2.0 * (m * n * k) as f64;
                let time = |f: &mut dyn FnMut()| {
                    f();
                    let reps = if m == 1 { 400 } else { 20 };
                    let t = std::time::Instant::now();
                    for _ in 0..reps {
                        f();
                    }
                    t.elapsed().as_secs_f64() / reps as f64
                };
                let t_candle = time(&mut || {
                    std::hint::black_box(qmm.forward(&x).unwrap());
                });
                let t_ours = time(&mut || {
                    std::hint::black_box(matmul_raw(kind, (m, k, n), &xs, &bytes, true).unwrap());
                });
                let t_scalar = time(&mut || {
                    std::hint::black_box(matmul_raw(kind, (m, k, n), &xs, &bytes, false).unwrap());
                });
                println!(
                    "{dtype:?} m={m:3}: candle {:8.3} ms {:6.1} GFLOP/s | ours avx2 {:8.3} ms {:6.1} GFLOP/s | ours scalar {:8.3} ms {:6.1} GFLOP/s",
                    t_candle * 1e3,
                    flop / t_candle / 1e9,
                    t_ours * 1e3,
                    flop / t_ours / 1e9,
                    t_scalar * 1e3,
                    flop / t_scalar / 1e9,
                );
            }
        }
    }
}
