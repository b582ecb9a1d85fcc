//! Batched bf16 matrix products for x86-64 CPUs with AVX-512 BF16 (`vdpbf16ps`).
//!
//! The single entry point is [`matmul_bf16`]: `out[t, i, j] = Σ_p a[t, i, p] · b[t, j, p] (+ bias[j])`
//! with bf16 inputs, f32 accumulation and bf16 or f32 output. Call [`available`] first (or just
//! call [`matmul_bf16`]: it returns `Err` on CPUs without the instructions).
//!
//! Implementation outline:
//! * general path: B is packed into panels of `NR` columns laid out as `[k/2][NR]` bf16 pairs
//!   (zero padded along k and n); the microkernel broadcasts one A pair (32 bits) per row and runs
//!   `MR x NR` f32 accumulators (`NR / 16` zmm per row) over the whole k, so no horizontal
//!   reductions and no partial sums in memory are needed. A is read in place when its rows are
//!   contiguous, otherwise packed;
//! * small m with B rows contiguous along k (`x @ Wᵀ` decode steps): a matrix-vector kernel that
//!   streams the weight rows once with k as the vector dimension, no packing;
//! * parallelism with rayon over row blocks / column blocks or over the batch, in whatever pool
//!   the caller runs in.

#![allow(unsafe_code)] // SIMD intrinsics; every block says why it is sound.

use half::bf16;
use rayon::prelude::*;
use std::arch::x86_64::*;
use std::sync::OnceLock;

/// Microkernel row blocks of A handled by one task of the general path (`MC = MC_PANELS * MR` rows).
const MC_PANELS: usize = 12;
/// Largest m handled by the matrix-vector kernel (when B rows are contiguous along k).
const GEMV_MAX_M: usize = 4;
/// Independent accumulators (k chunks of 32) per row in the matrix-vector kernel.
const GEMV_U: usize = 4;

/// Output element of [`matmul_bf16`]: implemented for `f32` and [`half::bf16`] only.
pub trait OutElem: sealed::Sealed + Copy + Send + Sync + 'static {
    /// `true` for bf16 (rounded to nearest even from the f32 accumulator), `false` for f32.
    #[doc(hidden)]
    const IS_BF16: bool;
    /// Conversion used by the scalar stores.
    #[doc(hidden)]
    fn from_f32(v: f32) -> Self;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for half::bf16 {}
}

impl OutElem for f32 {
    const IS_BF16: bool = false;
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        v
    }
}

impl OutElem for bf16 {
    const IS_BF16: bool = true;
    #[inline(always)]
    fn from_f32(v: f32) -> Self {
        bf16::from_f32(v)
    }
}

/// Shape and strides (in elements) of a batched product `out[t, i, j] = Σ_p a[t, i, p] · b[t, j, p]`.
///
/// `a[t, i, p] = a[t * a_batch_stride + i * a_row_stride + p * a_k_stride]`,
/// `b[t, j, p] = b[t * b_batch_stride + j * b_col_stride + p * b_k_stride]`;
/// `out` is contiguous with shape `(batch, m, n)`. Strides may be 0 (broadcast).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulShape {
    /// Number of independent products.
    pub batch: usize,
    /// Rows of A and of the output.
    pub m: usize,
    /// Columns of the output (rows of B in the `nn.Linear` layout).
    pub n: usize,
    /// Reduction length.
    pub k: usize,
    /// Distance between consecutive batch items of A.
    pub a_batch_stride: usize,
    /// Distance between consecutive rows (i) of A.
    pub a_row_stride: usize,
    /// Distance between consecutive k elements of A (1 for row-major A).
    pub a_k_stride: usize,
    /// Distance between consecutive batch items of B.
    pub b_batch_stride: usize,
    /// Distance between consecutive output columns (j) in B (k for `nn.Linear` weights, 1 for "NN" B).
    pub b_col_stride: usize,
    /// Distance between consecutive k elements in B (1 for `nn.Linear` weights, n for "NN" B).
    pub b_k_stride: usize,
}

impl MatmulShape {
    /// Contiguous `A (batch, m, k)` times `Bᵀ` with `B (batch, n, k)` (the `x @ Wᵀ` / `Q · Kᵀ` layout).
    pub fn a_bt(batch: usize, m: usize, n: usize, k: usize) -> Self {
        Self {
            batch,
            m,
            n,
            k,
            a_batch_stride: m.saturating_mul(k),
            a_row_stride: k,
            a_k_stride: 1,
            b_batch_stride: n.saturating_mul(k),
            b_col_stride: k,
            b_k_stride: 1,
        }
    }

    /// Contiguous `A (batch, m, k)` times `B (batch, k, n)` (the `P · V` layout).
    pub fn a_b(batch: usize, m: usize, n: usize, k: usize) -> Self {
        Self {
            batch,
            m,
            n,
            k,
            a_batch_stride: m.saturating_mul(k),
            a_row_stride: k,
            a_k_stride: 1,
            b_batch_stride: k.saturating_mul(n),
            b_col_stride: 1,
            b_k_stride: n,
        }
    }
}

/// Proof that the CPU supports the instructions used by the kernels. Only [`isa`] creates it.
#[derive(Clone, Copy)]
struct Isa(());

fn isa() -> Option<Isa> {
    static DETECTED: OnceLock<bool> = OnceLock::new();
    let ok = *DETECTED.get_or_init(|| {
        is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl")
            && is_x86_feature_detected!("avx512bf16")
    });
    ok.then_some(Isa(()))
}

/// Whether this CPU can run the kernels (avx512f, avx512bw, avx512vl and avx512bf16), detected once.
pub fn available() -> bool {
    isa().is_some()
}

/// Largest index reached by `Σ (count_d - 1) * stride_d`, or `None` if some count is 0 (nothing is
/// read). Errors on overflow.
fn max_index(dims: &[(usize, usize)], what: &str) -> Result<Option<usize>, String> {
    let mut idx = 0usize;
    for &(count, stride) in dims {
        if count == 0 {
            return Ok(None);
        }
        idx = (count - 1)
            .checked_mul(stride)
            .and_then(|x| x.checked_add(idx))
            .ok_or_else(|| format!("bf16 matmul: index overflow computing the extent of {what}"))?;
    }
    Ok(Some(idx))
}

/// Batched product with f32 accumulation:
/// `out[t*m*n + i*n + j] = Σ_{p<k} a[t, i, p] · b[t, j, p] (+ bias[j])`, see [`MatmulShape`] for the
/// strides. `O` is `f32` or `bf16` (rounded to nearest even from the f32 sum). Like the
/// instruction, denormal inputs count as zero and denormal partial sums flush to zero (measured:
/// `1e-20 · 1e-19` gives 0); infinities and NaN propagate as in IEEE arithmetic. The summation order
/// differs from a sequential loop (pairs along k, several partial sums), as with any blocked gemm.
///
/// Requirements, checked (never panics): `out.len() == batch * m * n`, `bias.len() == n` when given,
/// and `a`/`b` long enough for the largest index their strides reach (not checked when nothing is
/// read from them, e.g. `k == 0`). `k == 0` writes the bias (or zeros).
///
/// Returns `Err` when the CPU lacks the instructions ([`available`] is false): fall back to another path.
/// Runs on the current rayon pool (`rayon::current_num_threads()` threads).
pub fn matmul_bf16<O: OutElem>(
    shape: &MatmulShape,
    a: &[bf16],
    b: &[bf16],
    bias: Option<&[bf16]>,
    out: &mut [O],
) -> Result<(), String> {
    let isa = isa().ok_or_else(|| "bf16 matmul: CPU lacks avx512f/avx512bw/avx512vl/avx512bf16".to_string())?;
    let s = *shape;
    let total = s
        .batch
        .checked_mul(s.m)
        .and_then(|x| x.checked_mul(s.n))
        .ok_or_else(|| "bf16 matmul: batch * m * n overflows".to_string())?;
    if out.len() != total {
        return Err(format!("bf16 matmul: output has {} elements, expected batch * m * n = {}", out.len(), total));
    }
    if let Some(bias) = bias.filter(|bias| bias.len() != s.n) {
        return Err(format!("bf16 matmul: bias has {} elements, expected n = {}", bias.len(), s.n));
    }
    let a_dims = [(s.batch, s.a_batch_stride), (s.m, s.a_row_stride), (s.k, s.a_k_stride)];
    if let Some(mx) = max_index(&a_dims, "a")?.filter(|&mx| mx >= a.len()) {
        return Err(format!("bf16 matmul: a has {} elements, its strides reach index {}", a.len(), mx));
    }
    let b_dims = [(s.batch, s.b_batch_stride), (s.n, s.b_col_stride), (s.k, s.b_k_stride)];
    if let Some(mx) = max_index(&b_dims, "b")?.filter(|&mx| mx >= b.len()) {
        return Err(format!("bf16 matmul: b has {} elements, its strides reach index {}", b.len(), mx));
    }
    if total == 0 {
        return Ok(());
    }
    // Packed buffers hold about (k + 2) * (max(m, n) + 64) u32 at most; with zero strides k is not
    // bounded by the slice lengths, so refuse sizes whose buffers could not be allocated.
    let work =
        s.k.checked_add(2)
            .and_then(|k2| k2.checked_mul(s.m.max(s.n).checked_add(64)?))
            .and_then(|x| x.checked_mul(8))
            .filter(|&x| x <= isize::MAX as usize);
    if work.is_none() {
        return Err(format!("bf16 matmul: k = {} is too large for m = {}, n = {}", s.k, s.m, s.n));
    }
    // Every index used below is <= the maxima checked above.
    let bias_f32: Vec<f32> = match bias {
        Some(bias) => bias.iter().map(|v| v.to_f32()).collect(),
        None => vec![0.0; s.n],
    };
    let mut s = s;
    // A shared B with batch items of A that follow each other row after row: one big product.
    if s.batch > 1 && s.b_batch_stride == 0 && (s.m == 1 || Some(s.a_batch_stride) == s.m.checked_mul(s.a_row_stride)) {
        s.a_row_stride = if s.m == 1 { s.a_batch_stride } else { s.a_row_stride };
        s.m *= s.batch;
        s.batch = 1;
        s.a_batch_stride = 0;
    }
    if s.k == 0 {
        for row in out.chunks_exact_mut(s.n) {
            for (o, &bv) in row.iter_mut().zip(&bias_f32) {
                *o = O::from_f32(bv);
            }
        }
        return Ok(());
    }
    if s.m <= GEMV_MAX_M && s.b_k_stride == 1 {
        gemv_driver(isa, &s, a, b, &bias_f32, out);
    } else {
        gemm_dispatch(isa, &s, a, b, &bias_f32, out);
    }
    Ok(())
}

/// A raw output pointer shared by tasks that write disjoint elements.
#[derive(Clone, Copy)]
struct OutPtr<O>(*mut O);
// SAFETY: the pointer is only used to write disjoint output regions from different tasks (each
// task owns a distinct (row block, column block) of a distinct batch item), while the owning
// `&mut [O]` borrow is held by the caller for the whole parallel section.
unsafe impl<O: Send> Send for OutPtr<O> {}
// SAFETY: see `Send`; no two tasks access the same element.
unsafe impl<O: Send> Sync for OutPtr<O> {}
impl<O> OutPtr<O> {
    #[inline(always)]
    fn get(self) -> *mut O {
        self.0
    }
}

/// A `Vec<u32>` whose used part starts on a 64-byte boundary.
struct AlignedBuf {
    buf: Vec<u32>,
    off: usize,
    len: usize,
}

impl AlignedBuf {
    fn new() -> Self {
        Self { buf: Vec::new(), off: 0, len: 0 }
    }
    fn resize(&mut self, len: usize) -> &mut [u32] {
        if self.buf.len() < len + 16 {
            self.buf = vec![0u32; len + 16];
        }
        let off = self.buf.as_ptr().align_offset(64);
        self.off = if off <= 16 { off } else { 0 };
        self.len = len;
        &mut self.buf[self.off..self.off + len]
    }
    fn get(&self) -> &[u32] {
        &self.buf[self.off..self.off + self.len]
    }
}

#[inline(always)]
fn pair(lo: bf16, hi: bf16) -> u32 {
    u32::from(lo.to_bits()) | (u32::from(hi.to_bits()) << 16)
}

/// Packs columns `j0 .. j0 + nr` of B (item starting at `base`) into `panel` (`[kpp][nr]` pairs,
/// zero padded for j >= n and for the odd k tail).
#[allow(clippy::too_many_arguments)]
fn pack_b_panel(
    isa: Isa,
    b: &[bf16],
    base: usize,
    j0: usize,
    nr: usize,
    n: usize,
    k: usize,
    js: usize,
    ps: usize,
    panel: &mut [u32],
) {
    let kpp = k.div_ceil(2);
    let kfull = k / 2;
    let cols = n.saturating_sub(j0).min(nr);
    if cols < nr {
        panel.fill(0);
    }
    if ps == 1 {
        // Full groups of 16 columns x 16 pairs: register transposes.
        let full_groups = cols / 16;
        let simd_pairs = kfull / 16 * 16;
        if simd_pairs > 0 {
            for g in 0..full_groups {
                let mut rows = [std::ptr::null::<u32>(); 16];
                for (r, p) in rows.iter_mut().enumerate() {
                    let start = base + (j0 + 16 * g + r) * js;
                    *p = b[start..start + k].as_ptr() as *const u32;
                }
                let dst = &mut panel[16 * g..];
                debug_assert!(dst.len() >= (simd_pairs - 1) * nr + 16);
                for p0 in (0..simd_pairs).step_by(16) {
                    // SAFETY: each row holds k >= 2 * simd_pairs bf16, so u32 pairs p0..p0+16 are in
                    // bounds; dst rows p0..p0+16 of 16 u32 at stride nr lie inside the panel (kpp >=
                    // simd_pairs rows of nr >= 16 * (g + 1) columns).
                    unsafe { transpose_16x16(isa, &rows, p0, dst.as_mut_ptr().add(p0 * nr), nr) };
                }
            }
        }
        for jj in 0..cols {
            let start = base + (j0 + jj) * js;
            let row = &b[start..start + k];
            let done = if jj < 16 * full_groups { simd_pairs } else { 0 };
            for (p2, pr) in row.chunks_exact(2).enumerate().skip(done) {
                panel[p2 * nr + jj] = pair(pr[0], pr[1]);
            }
            if k % 2 == 1 {
                panel[kfull * nr + jj] = pair(row[k - 1], bf16::ZERO);
            }
        }
    } else {
        for p2 in 0..kpp {
            let dst = &mut panel[p2 * nr..p2 * nr + cols];
            let r0 = base + 2 * p2 * ps + j0 * js;
            if 2 * p2 + 1 < k {
                let r1 = r0 + ps;
                if js == 1 {
                    let (s0, s1) = (&b[r0..r0 + cols], &b[r1..r1 + cols]);
                    for ((d, &x), &y) in dst.iter_mut().zip(s0).zip(s1) {
                        *d = pair(x, y);
                    }
                } else {
                    for (jj, d) in dst.iter_mut().enumerate() {
                        *d = pair(b[r0 + jj * js], b[r1 + jj * js]);
                    }
                }
            } else {
                for (jj, d) in dst.iter_mut().enumerate() {
                    *d = pair(b[r0 + jj * js], bf16::ZERO);
                }
            }
        }
    }
}

/// Transposes 16 rows x 16 u32 (`rows[r] + p0 ..`) into 16 rows of 16 u32 at `dst + c * ldd`.
///
/// # Safety
/// `rows[r] + p0 .. + 16` must be readable (any alignment) for each r, and `dst + c * ldd .. + 16`
/// writable for c < 16.
unsafe fn transpose_16x16(_isa: Isa, rows: &[*const u32; 16], p0: usize, dst: *mut u32, ldd: usize) {
    // SAFETY: `_isa` proves avx512f support; pointer ranges are the caller's contract.
    unsafe { transpose_16x16_impl(rows, p0, dst, ldd) }
}

#[target_feature(enable = "avx512f")]
unsafe fn transpose_16x16_impl(rows: &[*const u32; 16], p0: usize, dst: *mut u32, ldd: usize) {
    // SAFETY (whole body): pointer ranges are the caller's contract; loads/stores are unaligned.
    unsafe {
        let mut r = [_mm512_setzero_si512(); 16];
        for (x, row) in r.iter_mut().zip(rows) {
            *x = _mm512_loadu_si512(row.add(p0) as *const _);
        }
        // 32-bit then 64-bit interleaves within 128-bit lanes: u[4g + e] holds, in lane L, rows
        // 4g..4g+4 of column 4L + e.
        let mut t = [_mm512_setzero_si512(); 16];
        for i in 0..8 {
            t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
            t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
        }
        let mut u = [_mm512_setzero_si512(); 16];
        for g in 0..4 {
            u[4 * g] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
            u[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
            u[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
            u[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
        }
        // 128-bit lane shuffles gather lane L of u[e], u[4 + e], u[8 + e], u[12 + e].
        for e in 0..4 {
            let x0 = _mm512_shuffle_i32x4::<0b1000_1000>(u[e], u[4 + e]);
            let x1 = _mm512_shuffle_i32x4::<0b1101_1101>(u[e], u[4 + e]);
            let y0 = _mm512_shuffle_i32x4::<0b1000_1000>(u[8 + e], u[12 + e]);
            let y1 = _mm512_shuffle_i32x4::<0b1101_1101>(u[8 + e], u[12 + e]);
            let cols = [
                _mm512_shuffle_i32x4::<0b1000_1000>(x0, y0),
                _mm512_shuffle_i32x4::<0b1000_1000>(x1, y1),
                _mm512_shuffle_i32x4::<0b1101_1101>(x0, y0),
                _mm512_shuffle_i32x4::<0b1101_1101>(x1, y1),
            ];
            for (l, v) in cols.iter().enumerate() {
                _mm512_storeu_si512(dst.add((4 * l + e) * ldd) as *mut _, *v);
            }
        }
    }
}

/// Packs all of B for one batch item, in parallel when `par`.
fn pack_b(isa: Isa, b: &[bf16], base: usize, s: &MatmulShape, nr: usize, dst: &mut [u32], par: bool) {
    let kpp = s.k.div_ceil(2);
    let (n, k, js, ps) = (s.n, s.k, s.b_col_stride, s.b_k_stride);
    let f = |(jp, panel): (usize, &mut [u32])| pack_b_panel(isa, b, base, jp * nr, nr, n, k, js, ps, panel);
    if par {
        dst.par_chunks_mut(kpp * nr).enumerate().for_each(f);
    } else {
        dst.chunks_mut(kpp * nr).enumerate().for_each(f);
    }
}

/// Packs rows `i0 .. i0 + mr` of A (clamped to m, zero padded) as `[kpp][mr]` pairs.
fn pack_a_panel(a: &[bf16], base: usize, i0: usize, mr: usize, s: &MatmulShape, panel: &mut [u32]) {
    let (m, k, rs, cs) = (s.m, s.k, s.a_row_stride, s.a_k_stride);
    let kpp = k.div_ceil(2);
    let rows = m.saturating_sub(i0).min(mr);
    if rows < mr {
        panel.fill(0);
    }
    for r in 0..rows {
        let row = base + (i0 + r) * rs;
        for p2 in 0..kpp {
            let lo = a[row + 2 * p2 * cs];
            let hi = if 2 * p2 + 1 < k { a[row + (2 * p2 + 1) * cs] } else { bf16::ZERO };
            panel[p2 * mr + r] = pair(lo, hi);
        }
    }
}

/// Where the microkernel reads A from.
#[derive(Clone, Copy)]
struct ASrc<const MR: usize> {
    /// Byte address of pair 0 of each of the MR rows (rows past m repeat a valid row).
    rows: [*const u8; MR],
    /// Bytes between consecutive pairs of a row.
    step: usize,
    /// Pairs read as full 32-bit pairs.
    kp: usize,
    /// One more single element (k odd) at `rows[r] + kp * step`, whose partner is zero.
    tail: bool,
    /// Output row of the first row, relative to the first row of the block.
    out_row: usize,
    /// Rows to store (<= MR).
    valid: usize,
}

/// For each A row block `a` of `srcs`: computes the `MR x nr` tile of that block times one packed B
/// panel over the whole k, and stores `a.valid x cols` of it (plus bias) at `out + a.out_row * ldo`.
///
/// # Safety
/// The CPU must support avx512f/bw/vl/bf16. For each `a`: `a.rows[r] + p * a.step` must be readable
/// for 4 bytes for `p < a.kp` (2 bytes at `p = a.kp` if `a.tail`); `b` must point to `a.kp + a.tail`
/// packed pairs of `nr` u32; `bias` to `nr` f32; `out + (a.out_row + r) * ldo + c` must be writable
/// for `r < a.valid <= MR`, `c < cols <= nr`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
unsafe fn microkernel<const MR: usize, const NRV: usize, O: OutElem>(
    srcs: &[ASrc<MR>],
    b: *const u32,
    bias: *const f32,
    out: *mut O,
    ldo: usize,
    cols: usize,
) {
    // SAFETY (whole body): the pointer ranges are guaranteed by the caller, see the `# Safety` section.
    for a in srcs {
        let (rows, out) = (a.valid, out.wrapping_add(a.out_row * ldo));
        unsafe { tile::<MR, NRV, O>(a, b, bias, out, ldo, rows, cols) }
    }
}

/// One tile of [`microkernel`]; same contract with `rows = a.valid` and `out` at the tile's first row.
#[inline(always)]
unsafe fn tile<const MR: usize, const NRV: usize, O: OutElem>(
    a: &ASrc<MR>,
    b: *const u32,
    bias: *const f32,
    out: *mut O,
    ldo: usize,
    rows: usize,
    cols: usize,
) {
    // SAFETY (whole body): the pointer ranges are guaranteed by the caller; only reached from
    // `microkernel`, whose target features this function is inlined into.
    unsafe {
        let nr = 16 * NRV;
        let mut acc = [[_mm512_setzero_ps(); NRV]; MR];
        let mut bp = b;
        let mut off = 0usize;
        for _ in 0..a.kp {
            let mut bv = [bh(_mm512_setzero_si512()); NRV];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = bh(_mm512_loadu_si512(bp.add(16 * v) as *const _));
            }
            for (accr, row) in acc.iter_mut().zip(&a.rows) {
                let av = bh(_mm512_set1_epi32((row.add(off) as *const i32).read_unaligned()));
                for (x, &bvv) in accr.iter_mut().zip(&bv) {
                    *x = _mm512_dpbf16_ps(*x, av, bvv);
                }
            }
            bp = bp.add(nr);
            off += a.step;
        }
        if a.tail {
            let mut bv = [bh(_mm512_setzero_si512()); NRV];
            for (v, x) in bv.iter_mut().enumerate() {
                *x = bh(_mm512_loadu_si512(bp.add(16 * v) as *const _));
            }
            for (accr, row) in acc.iter_mut().zip(&a.rows) {
                let av = bh(_mm512_set1_epi32(i32::from((row.add(off) as *const u16).read_unaligned())));
                for (x, &bvv) in accr.iter_mut().zip(&bv) {
                    *x = _mm512_dpbf16_ps(*x, av, bvv);
                }
            }
        }
        let mut biasv = [_mm512_setzero_ps(); NRV];
        for (v, x) in biasv.iter_mut().enumerate() {
            *x = _mm512_loadu_ps(bias.add(16 * v));
        }
        for (r, accr) in acc.iter().enumerate() {
            if r >= rows {
                break;
            }
            let orow = out.add(r * ldo);
            for v in 0..NRV {
                let c0 = 16 * v;
                if c0 >= cols {
                    break;
                }
                let left = cols - c0;
                let mask: __mmask16 = if left >= 16 { 0xFFFF } else { (1u16 << left) - 1 };
                let val = _mm512_add_ps(accr[v], biasv[v]);
                if O::IS_BF16 {
                    let h = std::mem::transmute::<__m256bh, __m256i>(_mm512_cvtneps_pbh(val));
                    _mm256_mask_storeu_epi16(orow.add(c0) as *mut i16, mask, h);
                } else {
                    _mm512_mask_storeu_ps(orow.add(c0) as *mut f32, mask, val);
                }
            }
        }
    }
}

/// Computes rows `i0..i1` (i1 - i0 <= mc) and column panels `jp0..jp1` of one batch item.
#[allow(clippy::too_many_arguments)]
fn gemm_block<const MR: usize, const NRV: usize, O: OutElem>(
    _isa: Isa,
    s: &MatmulShape,
    a: &[bf16],
    a_base: usize,
    bpack: &[u32],
    bias_pad: &[f32],
    out: OutPtr<O>,
    out_base: usize,
    (i0, i1): (usize, usize),
    (jp0, jp1): (usize, usize),
    apack: &mut AlignedBuf,
) {
    let nr = 16 * NRV;
    let kpp = s.k.div_ceil(2);
    let n_ip = (i1 - i0).div_ceil(MR);
    let direct = s.a_k_stride == 1;
    let mut srcs: Vec<ASrc<MR>> = Vec::with_capacity(n_ip);
    if direct {
        let base = a.as_ptr() as *const u8;
        for ip in 0..n_ip {
            let r0 = i0 + ip * MR;
            let rows = (i1 - r0).min(MR);
            let mut ptrs = [base; MR];
            for (r, p) in ptrs.iter_mut().enumerate() {
                let idx = a_base + (r0 + r.min(rows - 1)) * s.a_row_stride;
                // SAFETY: idx <= the largest index of a checked in `matmul_bf16` (row < m, item < batch),
                // so the offset stays inside the `a` allocation.
                *p = unsafe { base.add(2 * idx) };
            }
            srcs.push(ASrc { rows: ptrs, step: 4, kp: s.k / 2, tail: s.k % 2 == 1, out_row: ip * MR, valid: rows });
        }
    } else {
        let buf = apack.resize(n_ip * kpp * MR);
        for (ip, panel) in buf.chunks_exact_mut(kpp * MR).enumerate() {
            pack_a_panel(a, a_base, i0 + ip * MR, MR, s, panel);
        }
        let base = apack.get().as_ptr() as *const u8;
        for ip in 0..n_ip {
            let mut ptrs = [base; MR];
            for (r, p) in ptrs.iter_mut().enumerate() {
                // SAFETY: panel ip starts at ip * kpp * MR u32 inside the packed buffer of n_ip panels.
                *p = unsafe { base.add(4 * (ip * kpp * MR + r)) };
            }
            let valid = (i1 - i0 - ip * MR).min(MR);
            srcs.push(ASrc { rows: ptrs, step: 4 * MR, kp: kpp, tail: false, out_row: ip * MR, valid });
        }
    }
    for jp in jp0..jp1 {
        let j0 = jp * nr;
        let cols = (s.n - j0).min(nr);
        let bpanel = &bpack[(jp - jp0) * kpp * nr..(jp - jp0 + 1) * kpp * nr];
        let bias = &bias_pad[j0..j0 + nr];
        // SAFETY: `_isa` proves CPU support. A: direct rows are valid rows of the checked `a` with
        // k/2 pairs (+ tail element) each; packed panels hold kpp pairs of MR u32. B panel has kpp
        // pairs of nr u32. bias has nr floats. Output rows i0 + out_row + r < i0 + valid <= i1 <= m and
        // columns j0..j0+cols <= n lie inside the batch item's (m, n) block of `out`, written only by
        // this task.
        unsafe {
            microkernel::<MR, NRV, O>(
                &srcs,
                bpanel.as_ptr(),
                bias.as_ptr(),
                out.get().add(out_base + i0 * s.n + j0),
                s.n,
                cols,
            );
        }
    }
}

fn gemm_driver<const MR: usize, const NRV: usize, O: OutElem>(
    isa: Isa,
    s: &MatmulShape,
    a: &[bf16],
    b: &[bf16],
    bias: &[f32],
    out: &mut [O],
) {
    let threads = rayon::current_num_threads().max(1);
    let nr = 16 * NRV;
    // Row blocks of at most MC_PANELS * MR rows, all about the same size (multiples of MR).
    let mc = s.m.div_ceil(s.m.div_ceil(MC_PANELS * MR)).next_multiple_of(MR);
    let kpp = s.k.div_ceil(2);
    let n_panels = s.n.div_ceil(nr);
    let mut bias_pad = vec![0.0f32; n_panels * nr];
    bias_pad[..s.n].copy_from_slice(bias);
    let m_blocks = s.m.div_ceil(mc);
    let mn = s.m * s.n;
    let optr = OutPtr(out.as_mut_ptr());
    let bsize = n_panels * kpp * nr;

    if s.batch >= 2 * threads || threads == 1 {
        // Parallel over batch items, each computed serially with its own packed B.
        let shared_b = if s.b_batch_stride == 0 {
            let mut buf = AlignedBuf::new();
            pack_b(isa, b, 0, s, nr, buf.resize(bsize), true);
            Some(buf)
        } else {
            None
        };
        let one = |(bbuf, abuf): &mut (AlignedBuf, AlignedBuf), t: usize| {
            let bpack = match &shared_b {
                Some(sb) => sb.get(),
                None => {
                    pack_b(isa, b, t * s.b_batch_stride, s, nr, bbuf.resize(bsize), false);
                    bbuf.get()
                }
            };
            for mb in 0..m_blocks {
                let i0 = mb * mc;
                let i1 = (i0 + mc).min(s.m);
                gemm_block::<MR, NRV, O>(
                    isa,
                    s,
                    a,
                    t * s.a_batch_stride,
                    bpack,
                    &bias_pad,
                    optr,
                    t * mn,
                    (i0, i1),
                    (0, n_panels),
                    abuf,
                );
            }
        };
        if threads == 1 {
            let mut bufs = (AlignedBuf::new(), AlignedBuf::new());
            (0..s.batch).for_each(|t| one(&mut bufs, t));
        } else {
            (0..s.batch).into_par_iter().for_each_init(|| (AlignedBuf::new(), AlignedBuf::new()), one);
        }
        return;
    }

    // Few rows with contiguous A rows: tasks over column blocks, each packing its B panels one at a
    // time right before using them (the panel stays in cache, no separate packing pass).
    if s.a_k_stride == 1 && m_blocks <= 2 {
        let n_blocks = (4 * threads).clamp(1, n_panels);
        let panels_per_block = n_panels.div_ceil(n_blocks);
        let n_blocks = n_panels.div_ceil(panels_per_block);
        for t in 0..s.batch {
            let bbase = t * s.b_batch_stride;
            let (n, k, js, ps) = (s.n, s.k, s.b_col_stride, s.b_k_stride);
            let init = || (AlignedBuf::new(), AlignedBuf::new());
            (0..n_blocks).into_par_iter().for_each_init(init, |(bbuf, abuf), nb| {
                let jp0 = nb * panels_per_block;
                let jp1 = (jp0 + panels_per_block).min(n_panels);
                for jp in jp0..jp1 {
                    pack_b_panel(isa, b, bbase, jp * nr, nr, n, k, js, ps, bbuf.resize(kpp * nr));
                    for mb in 0..m_blocks {
                        let i0 = mb * mc;
                        let i1 = (i0 + mc).min(s.m);
                        let (a_base, out_base) = (t * s.a_batch_stride, t * mn);
                        let range = ((i0, i1), (jp, jp + 1));
                        gemm_block::<MR, NRV, O>(
                            isa,
                            s,
                            a,
                            a_base,
                            bbuf.get(),
                            &bias_pad,
                            optr,
                            out_base,
                            range.0,
                            range.1,
                            abuf,
                        );
                    }
                }
            });
        }
        return;
    }

    // Few batch items: parallel inside each product over (row block, column block) tasks.
    let target_tasks = 4 * threads;
    let n_blocks = target_tasks.div_ceil(m_blocks).clamp(1, n_panels);
    let panels_per_block = n_panels.div_ceil(n_blocks);
    let n_blocks = n_panels.div_ceil(panels_per_block);
    let mut bbuf = AlignedBuf::new();
    for t in 0..s.batch {
        pack_b(isa, b, t * s.b_batch_stride, s, nr, bbuf.resize(bsize), true);
        let bpack = bbuf.get();
        (0..m_blocks * n_blocks).into_par_iter().for_each_init(AlignedBuf::new, |abuf, task| {
            let (mb, nb) = (task / n_blocks, task % n_blocks);
            let i0 = mb * mc;
            let i1 = (i0 + mc).min(s.m);
            let jp0 = nb * panels_per_block;
            let jp1 = (jp0 + panels_per_block).min(n_panels);
            gemm_block::<MR, NRV, O>(
                isa,
                s,
                a,
                t * s.a_batch_stride,
                &bpack[jp0 * kpp * nr..jp1 * kpp * nr],
                &bias_pad,
                optr,
                t * mn,
                (i0, i1),
                (jp0, jp1),
                abuf,
            );
        });
    }
}

/// Picks the microkernel shape: 48-column panels (8 x 48 tiles) unless 32-column panels
/// (12 x 32 tiles) or 16-column panels (16 x 16 tiles) waste fewer padded columns.
fn gemm_dispatch<O: OutElem>(isa: Isa, s: &MatmulShape, a: &[bf16], b: &[bf16], bias: &[f32], out: &mut [O]) {
    let padded = |nr: usize| s.n.div_ceil(nr) * nr;
    if s.n <= 16 {
        gemm_driver::<16, 1, O>(isa, s, a, b, bias, out)
    } else if padded(32) < padded(48) {
        gemm_driver::<12, 2, O>(isa, s, a, b, bias, out)
    } else {
        gemm_driver::<8, 3, O>(isa, s, a, b, bias, out)
    }
}

/// Dot products of `M` rows of A (contiguous, k elements each) with rows `j0..j1` of B (row j at
/// `w + j * ldw`, k contiguous elements): stores `out + r * ldo + j = Σ a_r · w_j + bias[j]`.
/// Each weight row is read once, sequentially, with `GEMV_U` independent accumulators per A row.
///
/// # Safety
/// The CPU must support avx512f/bw/vl/bf16; `a_rows[r]` and `w + j * ldw` (j0 <= j < j1) must be
/// readable for k elements; `out + r * ldo + j` writable for `r < M`, `j0 <= j < j1`; `bias.len() >= j1`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
unsafe fn gemv_kernel<const M: usize, O: OutElem>(
    k: usize,
    a_rows: &[*const u16; M],
    w: *const u16,
    ldw: usize,
    (j0, j1): (usize, usize),
    bias: &[f32],
    out: *mut O,
    ldo: usize,
) {
    // SAFETY (whole body): pointer ranges guaranteed by the caller; masked loads read only the
    // elements below k.
    unsafe {
        for (j, &bj) in bias.iter().enumerate().take(j1).skip(j0) {
            let wj = w.add(j * ldw);
            let mut acc = [[_mm512_setzero_ps(); M]; GEMV_U];
            let mut p = 0usize;
            while p + 32 * GEMV_U <= k {
                for (u, accu) in acc.iter_mut().enumerate() {
                    let wv = bh(_mm512_loadu_si512(wj.add(p + 32 * u) as *const _));
                    for (x, ar) in accu.iter_mut().zip(a_rows) {
                        let av = bh(_mm512_loadu_si512(ar.add(p + 32 * u) as *const _));
                        *x = _mm512_dpbf16_ps(*x, av, wv);
                    }
                }
                p += 32 * GEMV_U;
            }
            // Fewer than 32 * GEMV_U elements are left: at most one (masked) chunk per accumulator.
            for accu in acc.iter_mut() {
                if p >= k {
                    break;
                }
                let left = k - p;
                let mask: __mmask32 = if left >= 32 { u32::MAX } else { (1u32 << left) - 1 };
                let wv = bh(_mm512_maskz_loadu_epi16(mask, wj.add(p) as *const i16));
                for (x, ar) in accu.iter_mut().zip(a_rows) {
                    let av = bh(_mm512_maskz_loadu_epi16(mask, ar.add(p) as *const i16));
                    *x = _mm512_dpbf16_ps(*x, av, wv);
                }
                p += 32;
            }
            for r in 0..M {
                let mut sum = acc[0][r];
                for accu in &acc[1..] {
                    sum = _mm512_add_ps(sum, accu[r]);
                }
                *out.add(r * ldo + j) = O::from_f32(_mm512_reduce_add_ps(sum) + bj);
            }
        }
    }
}

/// Reinterprets 32 bf16 bit patterns as the `__m512bh` operand type.
#[inline(always)]
fn bh(v: __m512i) -> __m512bh {
    // SAFETY: both are plain 64-byte SIMD vectors; every bit pattern is valid for both.
    unsafe { std::mem::transmute::<__m512i, __m512bh>(v) }
}

fn gemv_driver<O: OutElem>(isa: Isa, s: &MatmulShape, a: &[bf16], b: &[bf16], bias: &[f32], out: &mut [O]) {
    match s.m {
        1 => gemv_driver_m::<1, O>(isa, s, a, b, bias, out),
        2 => gemv_driver_m::<2, O>(isa, s, a, b, bias, out),
        3 => gemv_driver_m::<3, O>(isa, s, a, b, bias, out),
        _ => gemv_driver_m::<4, O>(isa, s, a, b, bias, out),
    }
}

fn gemv_driver_m<const M: usize, O: OutElem>(
    _isa: Isa,
    s: &MatmulShape,
    a: &[bf16],
    b: &[bf16],
    bias: &[f32],
    out: &mut [O],
) {
    let threads = rayon::current_num_threads().max(1);
    // A rows as contiguous copies when they are strided (m <= 4 rows of k: cheap).
    // Columns per task: enough tasks for load balance, at least 64 columns each.
    let chunks_per_item = (4 * threads).div_ceil(s.batch).clamp(1, s.n.div_ceil(64).max(1));
    let chunk = s.n.div_ceil(chunks_per_item);
    let chunks_per_item = s.n.div_ceil(chunk);
    let optr = OutPtr(out.as_mut_ptr());
    let mn = M * s.n;
    let task = |task: usize| {
        let (t, ch) = (task / chunks_per_item, task % chunks_per_item);
        let j0 = ch * chunk;
        let j1 = (j0 + chunk).min(s.n);
        // Strided A rows are copied (M <= 4 rows of k elements: cheap).
        let a_copy: Vec<bf16> = if s.a_k_stride != 1 {
            (0..M)
                .flat_map(|i| {
                    let row = t * s.a_batch_stride + i * s.a_row_stride;
                    (0..s.k).map(move |p| a[row + p * s.a_k_stride])
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut a_rows = [std::ptr::null::<u16>(); M];
        for (i, p) in a_rows.iter_mut().enumerate() {
            *p = if s.a_k_stride != 1 {
                // SAFETY: the copy holds M rows of k elements.
                unsafe { a_copy.as_ptr().add(i * s.k) as *const u16 }
            } else {
                // SAFETY: row start index <= the checked maximum index of `a` (k >= 1 here).
                unsafe { a.as_ptr().add(t * s.a_batch_stride + i * s.a_row_stride) as *const u16 }
            };
        }
        // SAFETY: `_isa` proves CPU support. Columns j < n of item t: each row start is <= the checked
        // maximum index of `b` and b_k_stride == 1 makes its k elements contiguous and in bounds; A
        // rows hold k elements (see above); outputs (t, i < M, j0..j1) are inside `out` and written
        // only by this task; bias has n >= j1 elements.
        unsafe {
            let w = b.as_ptr().add(t * s.b_batch_stride) as *const u16;
            gemv_kernel::<M, O>(s.k, &a_rows, w, s.b_col_stride, (j0, j1), bias, optr.get().add(t * mn), s.n);
        }
    };
    let tasks = s.batch * chunks_per_item;
    if threads == 1 || tasks == 1 {
        (0..tasks).for_each(task);
    } else {
        (0..tasks).into_par_iter().for_each(task);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether this CPU lacks the kernels; then the test says so in its output and checks only
    /// that the kernels refuse to run (callers take candle's path, tested in lib.rs everywhere).
    fn skipped() -> bool {
        if available() {
            return false;
        }
        eprintln!("bf16 kernels skipped: this CPU has no AVX-512 BF16 (avx512f/bw/vl/bf16)");
        let mut out = [0f32; 1];
        assert!(matmul_bf16(&MatmulShape::a_bt(1, 1, 1, 1), &[bf16::ONE], &[bf16::ONE], None, &mut out).is_err());
        true
    }

    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        /// Uniform-ish in [-2, 2), never denormal.
        fn val(&mut self) -> bf16 {
            let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
            bf16::from_f64(4.0 * u - 2.0)
        }
        fn vec(&mut self, len: usize) -> Vec<bf16> {
            (0..len).map(|_| self.val()).collect()
        }
    }

    /// f64 reference: (value, Σ|a b| + |bias|) per output.
    fn reference(s: &MatmulShape, a: &[bf16], b: &[bf16], bias: Option<&[bf16]>) -> Vec<(f64, f64)> {
        let mut out = Vec::with_capacity(s.batch * s.m * s.n);
        for t in 0..s.batch {
            for i in 0..s.m {
                for j in 0..s.n {
                    let (mut acc, mut mag) = (0f64, 0f64);
                    for p in 0..s.k {
                        let x = a[t * s.a_batch_stride + i * s.a_row_stride + p * s.a_k_stride].to_f64();
                        let y = b[t * s.b_batch_stride + j * s.b_col_stride + p * s.b_k_stride].to_f64();
                        acc += x * y;
                        mag += (x * y).abs();
                    }
                    if let Some(bias) = bias {
                        acc += bias[j].to_f64();
                        mag += bias[j].to_f64().abs();
                    }
                    out.push((acc, mag));
                }
            }
        }
        out
    }

    fn extent(dims: &[(usize, usize)]) -> usize {
        max_index(dims, "x").ok().flatten().map_or(0, |x| x + 1)
    }

    /// Run one product in both output types and check it against an f64 reference; the
    /// largest |got - ref| / (Σ|a b| + |bias|) of the f32 output.
    fn check(s: &MatmulShape, seed: u64, with_bias: bool) -> f64 {
        let mut rng = Rng(seed | 1);
        let a = rng.vec(extent(&[(s.batch, s.a_batch_stride), (s.m, s.a_row_stride), (s.k, s.a_k_stride)]));
        let b = rng.vec(extent(&[(s.batch, s.b_batch_stride), (s.n, s.b_col_stride), (s.k, s.b_k_stride)]));
        let bias = rng.vec(s.n);
        let bias = with_bias.then_some(&bias[..]);
        let want = reference(s, &a, &b, bias);
        let total = s.batch * s.m * s.n;

        let mut got = vec![f32::NAN; total];
        let r = matmul_bf16(s, &a, &b, bias, &mut got);
        assert!(r.is_ok(), "{s:?}: {r:?}");
        let mut worst = 0f64;
        for (idx, (&g, &(v, mag))) in got.iter().zip(&want).enumerate() {
            let err = (g as f64 - v).abs();
            assert!(err <= 1e-5 * mag + 1e-30, "f32 {s:?} bias={with_bias} idx {idx}: got {g}, want {v} (mag {mag})");
            if mag > 0.0 {
                worst = worst.max(err / mag);
            }
        }

        let mut got = vec![bf16::NAN; total];
        let r = matmul_bf16(s, &a, &b, bias, &mut got);
        assert!(r.is_ok(), "{s:?}: {r:?}");
        for (idx, (&g, &(v, mag))) in got.iter().zip(&want).enumerate() {
            let err = (g.to_f64() - v).abs();
            assert!(
                err <= v.abs() / 256.0 + 1e-5 * mag + 1e-30,
                "bf16 {s:?} bias={with_bias} idx {idx}: got {g}, want {v} (mag {mag})"
            );
        }
        worst
    }

    fn in_pool(threads: usize, f: impl FnOnce() + Send) {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build();
        assert!(pool.is_ok());
        if let Ok(pool) = pool {
            pool.install(f);
        }
    }

    const DIMS: &[(usize, usize, usize)] = &[
        (1, 1, 1),
        (1, 1, 2),
        (1, 5, 3),
        (3, 1, 7),
        (2, 17, 33),
        (4, 47, 64),
        (5, 48, 65),
        (7, 49, 31),
        (8, 96, 1),
        (9, 97, 2),
        (13, 100, 129),
        (31, 144, 77),
        (96, 48, 40),
        (97, 50, 255),
        (130, 200, 96),
        (200, 33, 384),
        (1, 600, 576),
        (2, 70, 1000),
        (3, 300, 45),
        (4, 9, 1537),
    ];

    #[test]
    fn layouts_and_tails() {
        if skipped() {
            return;
        }
        let mut worst = 0f64;
        for threads in [1, 3] {
            in_pool(threads, || {
                for (idx, &(m, n, k)) in DIMS.iter().enumerate() {
                    let seed = idx as u64 * 7919 + threads as u64;
                    for batch in [1, 3] {
                        // x @ Wᵀ and Q·Kᵀ layout.
                        worst = worst.max(check(&MatmulShape::a_bt(batch, m, n, k), seed, idx % 2 == 0));
                        // P·V layout.
                        worst = worst.max(check(&MatmulShape::a_b(batch, m, n, k), seed + 1, idx % 3 == 0));
                    }
                }
            });
        }
        // Informative: how far inside the bound the f32 outputs stayed.
        eprintln!("bf16 matmul worst relative error (f32 out) over the layouts: {worst:e}");
    }

    #[test]
    fn strided_and_broadcast() {
        if skipped() {
            return;
        }
        for threads in [1, 2] {
            in_pool(threads, || {
                for (idx, &(m, n, k)) in DIMS.iter().enumerate() {
                    let seed = idx as u64 * 31 + threads as u64;
                    let base = MatmulShape::a_bt(3, m, n, k);
                    // Shared weight (batch stride 0), flattened into rows.
                    check(&MatmulShape { b_batch_stride: 0, ..base }, seed, true);
                    // Shared weight with padded A rows (no flattening).
                    check(
                        &MatmulShape {
                            b_batch_stride: 0,
                            a_row_stride: k + 3,
                            a_batch_stride: m * (k + 3) + 5,
                            ..base
                        },
                        seed,
                        false,
                    );
                    // Broadcast A.
                    check(&MatmulShape { a_batch_stride: 0, ..base }, seed + 2, true);
                    // Transposed A (column-major), padded leading dims.
                    check(
                        &MatmulShape { a_row_stride: 1, a_k_stride: m + 1, a_batch_stride: (m + 1) * k, ..base },
                        seed + 3,
                        false,
                    );
                    // Strided k in A, odd row stride (unaligned pairs).
                    check(
                        &MatmulShape {
                            a_k_stride: 2,
                            a_row_stride: 2 * k + 1,
                            a_batch_stride: m * (2 * k + 1),
                            ..base
                        },
                        seed + 4,
                        true,
                    );
                    check(
                        &MatmulShape { a_row_stride: k + 1, a_batch_stride: m * (k + 1) + 1, ..base },
                        seed + 5,
                        false,
                    );
                    // General B strides: both non-unit.
                    check(
                        &MatmulShape {
                            b_col_stride: 2,
                            b_k_stride: 2 * n + 1,
                            b_batch_stride: (2 * n + 1) * k,
                            ..base
                        },
                        seed + 6,
                        true,
                    );
                    // NN B with padded rows, broadcast.
                    let nn = MatmulShape::a_b(2, m, n, k);
                    check(&MatmulShape { b_k_stride: n + 5, b_batch_stride: 0, ..nn }, seed + 7, false);
                    // Many batch items (batch-parallel path) with broadcast B.
                    check(
                        &MatmulShape {
                            b_batch_stride: 0,
                            a_row_stride: k + 1,
                            a_batch_stride: m * (k + 1),
                            ..MatmulShape::a_bt(9, m, n, k)
                        },
                        seed + 8,
                        true,
                    );
                }
            });
        }
    }

    #[test]
    fn random_shapes_and_strides() {
        if skipped() {
            return;
        }
        let mut rng = Rng(0x9e3779b97f4a7c15);
        for it in 0..400u64 {
            let mut pick = |hi: u64| (rng.next() % hi) as usize;
            let (batch, m, n, k) = (1 + pick(4), 1 + pick(40), 1 + pick(70), 1 + pick(80));
            let mut shape =
                if pick(2) == 0 { MatmulShape::a_bt(batch, m, n, k) } else { MatmulShape::a_b(batch, m, n, k) };
            match pick(6) {
                0 => shape.a_batch_stride = 0,
                1 => shape.b_batch_stride = 0,
                2 => {
                    shape.a_row_stride = 1;
                    shape.a_k_stride = m + pick(3);
                    shape.a_batch_stride = shape.a_k_stride * k;
                }
                3 => {
                    shape.b_col_stride = 1 + pick(3);
                    shape.b_k_stride = shape.b_col_stride * n + pick(3);
                    shape.b_batch_stride = shape.b_k_stride * k;
                }
                4 => shape.a_k_stride = 0,
                _ => {}
            }
            check(&shape, it + 1, pick(2) == 0);
            // One element short: an error, never a panic.
            let a_len = extent(&[(batch, shape.a_batch_stride), (m, shape.a_row_stride), (k, shape.a_k_stride)]);
            let b_len = extent(&[(batch, shape.b_batch_stride), (n, shape.b_col_stride), (k, shape.b_k_stride)]);
            let a = vec![bf16::ONE; a_len];
            let b = vec![bf16::ONE; b_len];
            let mut out = vec![0f32; batch * m * n];
            assert!(matmul_bf16(&shape, &a[..a_len - 1], &b, None, &mut out).is_err());
            assert!(matmul_bf16(&shape, &a, &b[..b_len - 1], None, &mut out).is_err());
        }
    }

    #[test]
    fn attention_like_batches() {
        if skipped() {
            return;
        }
        check(&MatmulShape::a_b(40, 33, 32, 33), 5, false);
        check(&MatmulShape::a_bt(40, 33, 33, 32), 6, false);
        check(&MatmulShape::a_b(24, 1, 64, 77), 7, false);
        check(&MatmulShape::a_bt(24, 1, 77, 64), 8, false);
        check(&MatmulShape::a_bt(24, 3, 77, 64), 9, true);
    }

    #[test]
    fn zero_sizes() {
        if skipped() {
            return;
        }
        for &(batch, m, n, k) in &[(0, 3, 4, 5), (2, 0, 4, 5), (2, 3, 0, 5), (2, 3, 4, 0), (1, 1, 70, 0), (1, 9, 70, 0)]
        {
            check(&MatmulShape::a_bt(batch, m, n, k), 1, true);
            check(&MatmulShape::a_bt(batch, m, n, k), 2, false);
            check(&MatmulShape::a_b(batch, m, n, k), 3, true);
        }
        // k == 0 reads nothing: empty inputs are fine.
        let mut out = vec![1.0f32; 6];
        assert_eq!(matmul_bf16(&MatmulShape::a_bt(1, 2, 3, 0), &[], &[], None, &mut out), Ok(()));
        assert!(out.iter().all(|&x| x == 0.0));
        let mut out: Vec<f32> = vec![];
        assert_eq!(matmul_bf16(&MatmulShape::a_bt(0, 2, 3, 4), &[], &[], None, &mut out), Ok(()));
    }

    #[test]
    fn special_values() {
        if skipped() {
            return;
        }
        let s = MatmulShape::a_bt(1, 2, 2, 3);
        let one = bf16::ONE;
        let a = [bf16::INFINITY, one, one, one, one, bf16::NAN];
        let b = [one, one, one, one, bf16::ZERO, one];
        let mut out = [0f32; 4];
        assert_eq!(matmul_bf16(&s, &a, &b, None, &mut out), Ok(()));
        assert!(out[0].is_infinite() && out[1].is_infinite() && out[2].is_nan() && out[3].is_nan(), "{out:?}");
        // Rounding of the bf16 output is to nearest even.
        let s = MatmulShape::a_bt(1, 1, 1, 2);
        let a = [bf16::ONE, bf16::from_f32(1.0 / 256.0)];
        let b = [bf16::ONE, bf16::ONE];
        let mut out = [bf16::ZERO];
        assert_eq!(matmul_bf16(&s, &a, &b, None, &mut out), Ok(()));
        assert_eq!(out[0], bf16::ONE);
        let a = [bf16::ONE, bf16::from_f32(3.0 / 256.0)];
        assert_eq!(matmul_bf16(&s, &a, &b, None, &mut out), Ok(()));
        assert_eq!(out[0], bf16::from_f32(1.0 + 1.0 / 64.0));
    }

    #[test]
    fn errors() {
        if skipped() {
            return;
        }
        let s = MatmulShape::a_bt(2, 3, 4, 5);
        let a = vec![bf16::ONE; 30];
        let b = vec![bf16::ONE; 40];
        let mut out = vec![0f32; 24];
        assert_eq!(matmul_bf16(&s, &a, &b, None, &mut out), Ok(()));
        assert!(out.iter().all(|&x| x == 5.0));
        assert!(matmul_bf16(&s, &a[..29], &b, None, &mut out).is_err());
        assert!(matmul_bf16(&s, &a, &b[..39], None, &mut out).is_err());
        assert!(matmul_bf16(&s, &a, &b, None, &mut out[..23]).is_err());
        assert!(matmul_bf16(&s, &a, &b, None, &mut [0f32; 25]).is_err());
        assert!(matmul_bf16(&s, &a, &b, Some(&[bf16::ONE; 3]), &mut out).is_err());
        assert!(matmul_bf16(&s, &a, &b, Some(&[bf16::ONE; 5]), &mut out).is_err());
        let huge = MatmulShape { a_row_stride: usize::MAX / 2, ..s };
        assert!(matmul_bf16(&huge, &a, &b, None, &mut out).is_err());
        let huge = MatmulShape { b_batch_stride: usize::MAX, ..s };
        assert!(matmul_bf16(&huge, &a, &b, None, &mut out).is_err());
        let huge = MatmulShape { batch: usize::MAX, m: 2, n: 2, ..s };
        assert!(matmul_bf16(&huge, &a, &b, None, &mut out).is_err());
        let huge = MatmulShape { k: usize::MAX, ..s };
        assert!(matmul_bf16(&huge, &a, &b, None, &mut out).is_err());
        // Zero k strides do not bound k by the slice lengths.
        let zero_k = MatmulShape { k: usize::MAX / 4, a_k_stride: 0, b_k_stride: 0, ..s };
        assert!(matmul_bf16(&zero_k, &a, &b, None, &mut out).is_err());
        let big = MatmulShape::a_bt(usize::MAX / 2, 3, 4, 5);
        assert!(matmul_bf16(&big, &a, &b, None, &mut out).is_err());
        // Wrong sizes are reported for the small-m path too.
        let s1 = MatmulShape::a_bt(1, 1, 4, 5);
        assert!(matmul_bf16(&s1, &a[..4], &b, None, &mut out[..4]).is_err());
        let mut outh = vec![bf16::ZERO; 24];
        assert!(matmul_bf16(&s, &a, &b[..10], None, &mut outh).is_err());
    }
}
