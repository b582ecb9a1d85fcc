//! Quantized matrix products on the CPU: `x · Wᵀ` with `W` a ggml-quantized [`QTensor`] of one
//! of the 32-value block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0), as llama.cpp computes them.
//!
//! candle 0.11's `QMatMul` runs Q4_1, Q5_0 and Q5_1 through its scalar `vec_dot_unopt` (one
//! value at a time): on SmolLM2's Q4_1 layers that is several times slower than the SIMD
//! types. The kernels here keep llama.cpp's integer-dot semantics exactly: each activation row
//! is quantized to 8-bit blocks (Q8_1, with its block sum, for Q4_1/Q5_1; Q8_0 for the
//! others) by the same arithmetic as candle's `from_float`, each block's integer dot product
//! is exact (AVX2 `maddubs`/`madd` where the CPU has AVX2, a portable scalar loop elsewhere),
//! and the per-block scales are combined in f32 in candle's order, so a result equals candle's
//! scalar `vec_dot_unopt` bit for bit. The output rows (the weight's rows) are split over
//! rayon's pool; a weight block is unpacked once for a tile of activation rows (prefill).

use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{CpuStorage, CustomOp1, DType, Device, Layout, Result, Shape, Tensor};
use half::f16;
use rayon::prelude::*;

/// Values in one block of every type here.
const QK: usize = 32;
/// Activation rows that share one unpacked weight block.
const ROW_TILE: usize = 16;
/// Weight rows per rayon task (at least).
const ROWS_PER_TASK: usize = 16;

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
/// benchmark `quantized_matmul_bench`): the types candle runs with scalar code, on CPUs with
/// AVX2 (elsewhere both are the same scalar loop). candle's own AVX2 Q4_0 and Q8_0 kernels
/// are faster than these and stay in use.
fn ours_is_faster(kind: BlockKind) -> bool {
    matches!(kind, BlockKind::Q4_1 | BlockKind::Q5_0 | BlockKind::Q5_1) && has_avx2()
}

/// One activation block: the f16 scale (and Q8_1's `s = d · Σq`) as f32, and the values.
#[derive(Clone, Copy, Debug)]
pub struct ActBlock {
    d: f32,
    s: f32,
    qs: [i8; QK],
}

/// Quantize `xs` (a multiple of 32 long) to Q8_0 (`with_sum = false`) or Q8_1 blocks, with
/// candle's (and llama.cpp's reference) arithmetic.
pub fn quantize_activations(xs: &[f32], with_sum: bool) -> Vec<ActBlock> {
    xs.chunks_exact(QK)
        .map(|xs| {
            let amax = xs.iter().fold(0f32, |a, &x| a.max(x.abs()));
            let d = amax / ((1 << 7) - 1) as f32;
            let id = if d != 0f32 { 1. / d } else { 0. };
            let d16 = f16::from_f32(d);
            let mut qs = [0i8; QK];
            let mut sum = 0i32;
            for (q, &x) in qs.iter_mut().zip(xs) {
                *q = f32::round(x * id) as i8;
                sum += i32::from(*q);
            }
            let s = if with_sum { (f16::from_f32(sum as f32) * d16).to_f32() } else { 0.0 };
            ActBlock { d: d16.to_f32(), s, qs }
        })
        .collect()
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

    use super::{combine, ActBlock, BlockKind, QK};
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

    /// The 4 lanes of 128 bits added: the two halves of `v`.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn halves(v: __m256i) -> __m128i {
        _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1))
    }

    /// `Σ xᵢyᵢ` of 32 bytes (see [`quads`]).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn dot32(x: __m256i, y: __m256i, signed: bool) -> i32 {
        let s = halves(quads(x, y, signed));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
        _mm_cvtsi128_si32(s)
    }

    /// One weight row with one activation row (decode): four blocks' integer sums reduced
    /// together, then combined in order.
    ///
    /// # Safety
    /// AVX2 must be available; `wrow` holds `act.len()` blocks of `kind`.
    #[target_feature(enable = "avx2")]
    unsafe fn row_dot_one(kind: BlockKind, wrow: &[u8], act: &[ActBlock]) -> f32 {
        let bb = kind.block_bytes();
        let signed = !kind.with_min();
        assert!(wrow.len() >= act.len() * bb);
        let mut sumf = 0f32;
        let mut groups = act.chunks_exact(4);
        let mut b = 0;
        for ys in &mut groups {
            let mut q = [_mm256_setzero_si256(); 4];
            for (t, (q, y)) in q.iter_mut().zip(ys).enumerate() {
                let block = &wrow[(b + t) * bb..(b + t + 1) * bb];
                // SAFETY: AVX2 (this function's contract); `block` is one whole block, `y.qs` 32 bytes.
                let (x, yv) = unsafe { (unpack(kind, block), _mm256_loadu_si256(y.qs.as_ptr() as *const __m256i)) };
                *q = quads(x, yv, signed);
            }
            let lo = _mm_hadd_epi32(halves(q[0]), halves(q[1]));
            let hi = _mm_hadd_epi32(halves(q[2]), halves(q[3]));
            let mut sums = [0i32; 4];
            // SAFETY: `sums` is 16 bytes.
            unsafe { _mm_storeu_si128(sums.as_mut_ptr() as *mut __m128i, _mm_hadd_epi32(lo, hi)) };
            for (t, (&sumi, y)) in sums.iter().zip(ys).enumerate() {
                sumf += combine(kind, &wrow[(b + t) * bb..(b + t + 1) * bb], sumi, y);
            }
            b += 4;
        }
        for (t, y) in groups.remainder().iter().enumerate() {
            let block = &wrow[(b + t) * bb..(b + t + 1) * bb];
            // SAFETY: as above.
            let (x, yv) = unsafe { (unpack(kind, block), _mm256_loadu_si256(y.qs.as_ptr() as *const __m256i)) };
            sumf += combine(kind, block, dot32(x, yv, signed), y);
        }
        sumf
    }

    /// As [`super::row_dots_scalar`], with AVX2.
    ///
    /// # Safety
    /// AVX2 must be available; `wrow` holds `blocks` blocks of `kind`, `acts` `out.len()` rows
    /// of `blocks` blocks.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn row_dots(kind: BlockKind, wrow: &[u8], acts: &[ActBlock], blocks: usize, out: &mut [f32]) {
        let bb = kind.block_bytes();
        let signed = !kind.with_min();
        assert!(wrow.len() >= blocks * bb && acts.len() >= out.len() * blocks);
        if let [only] = out {
            // SAFETY: AVX2 (this function's contract); `wrow` holds `blocks` blocks.
            *only = unsafe { row_dot_one(kind, wrow, &acts[..blocks]) };
            return;
        }
        out.fill(0.0);
        for b in 0..blocks {
            let block = &wrow[b * bb..(b + 1) * bb];
            // SAFETY: AVX2 is available (this function's contract); `block` is one whole block.
            let x = unsafe { unpack(kind, block) };
            for (r, o) in out.iter_mut().enumerate() {
                let act = &acts[r * blocks + b];
                // SAFETY: `act.qs` is 32 bytes.
                let y = unsafe { _mm256_loadu_si256(act.qs.as_ptr() as *const __m256i) };
                *o += combine(kind, block, dot32(x, y, signed), act);
            }
        }
        debug_assert_eq!(QK, 32);
    }
}

fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
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

/// `dst[i·n + j] = Σ x[i]·W[j]` for `m` activation rows `lhs` (`m·k`) and the raw blocks
/// `weight` of `n` rows of `k` values; `simd = false` forces the portable path (tests).
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
    // Output transposed, `[n][m]`: each task owns whole weight rows.
    let mut out_t = vec![0f32; n * m];
    let per_task = ROWS_PER_TASK.max(n.div_ceil(4 * rayon::current_num_threads().max(1)));
    out_t.par_chunks_mut(per_task * m.max(1)).enumerate().for_each(|(t, chunk)| {
        for (jj, out_row) in chunk.chunks_mut(m.max(1)).enumerate() {
            let j = t * per_task + jj;
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
    use candle_core::quantized::k_quants::{
        BlockQ4_0, BlockQ4_1, BlockQ5_0, BlockQ5_1, BlockQ8_0, BlockQ8_1, GgmlType,
    };
    use candle_core::quantized::QMatMul;
    use candle_core::Module;

    /// Candle's scalar reference `vec_dot_unopt` of every weight row with every activation row.
    fn reference<T: GgmlType>(w: &[f32], x: &[f32], (m, k, n): (usize, usize, usize)) -> Vec<f32>
    where
        T::VecDotType: GgmlType,
    {
        let blocks = k / QK;
        let mut out = vec![0f32; m * n];
        for i in 0..m {
            let mut ys = vec![T::VecDotType::zeros(); blocks];
            T::VecDotType::from_float(&x[i * k..(i + 1) * k], &mut ys);
            for j in 0..n {
                let mut xs = vec![T::zeros(); blocks];
                T::from_float(&w[j * k..(j + 1) * k], &mut xs);
                out[i * n + j] = T::vec_dot_unopt(k, &xs, &ys);
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
    fn both_paths_equal_candles_scalar_vec_dot_exactly() {
        let dims = [(1usize, 576usize, 37usize), (5, 128, 20), (19, 64, 3)];
        for (m, k, n) in dims {
            let w = data(n * k, 7);
            let x = data(m * k, 11);
            for dtype in [GgmlDType::Q4_0, GgmlDType::Q4_1, GgmlDType::Q5_0, GgmlDType::Q5_1, GgmlDType::Q8_0] {
                let want = match dtype {
                    GgmlDType::Q4_0 => reference::<BlockQ4_0>(&w, &x, (m, k, n)),
                    GgmlDType::Q4_1 => reference::<BlockQ4_1>(&w, &x, (m, k, n)),
                    GgmlDType::Q5_0 => reference::<BlockQ5_0>(&w, &x, (m, k, n)),
                    GgmlDType::Q5_1 => reference::<BlockQ5_1>(&w, &x, (m, k, n)),
                    _ => reference::<BlockQ8_0>(&w, &x, (m, k, n)),
                };
                let q = QTensor::quantize(&Tensor::from_vec(w.clone(), (n, k), &Device::Cpu).unwrap(), dtype).unwrap();
                let bytes = q.data().unwrap();
                let kind = BlockKind::of(dtype).unwrap();
                for simd in [false, true] {
                    let got = matmul_raw(kind, (m, k, n), &x, &bytes, simd).unwrap();
                    assert_eq!(got, want, "{dtype:?} simd={simd} ({m}, {k}, {n})");
                }
            }
        }
        // Q8_1 really is what candle quantizes to.
        let x = data(64, 3);
        let mut ys = vec![BlockQ8_1::zeros(); 2];
        BlockQ8_1::from_float(&x, &mut ys);
        let ours = quantize_activations(&x, true);
        let ones = vec![1f32; 64];
        let mut ones_q = vec![BlockQ8_1::zeros(); 2];
        BlockQ8_1::from_float(&ones, &mut ones_q);
        // Σ y·1 through candle's dot equals ours.
        let candle_dot = BlockQ8_1::vec_dot_unopt(64, &ys, &ones_q);
        let ours_dot: f32 =
            ours.iter().map(|b| b.qs.iter().map(|&q| i32::from(q)).sum::<i32>() as f32 * b.d * 1.0f32).sum();
        assert!((candle_dot - ours_dot).abs() <= 1e-3 * ours_dot.abs().max(1.0));
    }

    #[test]
    fn matmul_equals_candle_qmatmul_where_it_is_used() {
        for dtype in [GgmlDType::Q4_1, GgmlDType::Q5_0, GgmlDType::Q5_1] {
            let q = QTensor::quantize(&Tensor::randn(0f32, 1.0, (48, 128), &Device::Cpu).unwrap(), dtype).unwrap();
            let x = Tensor::randn(0f32, 1.0, (2, 3, 128), &Device::Cpu).unwrap();
            let Some(got) = matmul(&x, &q).unwrap() else {
                assert!(!has_avx2(), "{dtype:?} is computed here on AVX2 CPUs");
                println!("skipping {dtype:?}: no AVX2 on this CPU, candle's QMatMul is used");
                continue;
            };
            let want = QMatMul::from_qtensor(q).unwrap().forward(&x).unwrap();
            assert_eq!(got.dims(), [2, 3, 48]);
            let diff = (got - want).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap();
            assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0, "{dtype:?}");
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
