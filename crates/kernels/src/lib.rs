//! CPU kernels of autocandle: element-wise work that candle runs one scalar at a time on one
//! thread, attention's fused softmax, and the linear and batched products. All of autocandle's
//! `unsafe` code lives in this crate (SIMD intrinsics and `gemm` calls, each block with the
//! reason it is sound); every other crate forbids it.
//!
//! candle's CPU `gelu_erf` and `silu` map each value through `libm` on a single thread; in an
//! encoder forward (MiniLM, batch 32 x 128) the exact GELU alone is tens of millions of `erff`
//! calls. The kernels here compute the same functions with branch-free f32 arithmetic that
//! the compiler vectorises, split over rayon's pool. Accuracy: a few f32 ulps (the tests
//! check against f64 references), well inside the 1e-4 of the parity fixtures.
//!
//! Only contiguous f32 tensors on the CPU take these paths; every other dtype, layout or
//! device falls back to candle's own op, so the result never depends on where it runs.
//!
//! [`linear`] is `torch.nn.Linear`'s product: on the CPU, in f32 with few rows, through
//! [`linear_f32`], which reads the weight where it lies instead of repacking it for every call
//! as candle's `gemm` does; in bf16 through [`bf16_matmul`] on CPUs with AVX-512 BF16 (candle
//! widens bf16 operands to f32 for every product). [`matmul`] is candle's `matmul` with the
//! same bf16 path, for attention.
//!
//! [`depthwise::depthwise_conv2d_nhwc`] is the depthwise convolution of ConvNeXT on
//! channels-last activations (candle's grouped `conv2d` runs one convolution per channel).
//!
//! [`quantized::matmul`] is the product with a ggml-quantized weight for the block types that
//! candle's `QMatMul` runs with scalar code (Q4_1, Q5_0, Q5_1): AVX2 integer block dot
//! products, bit-equal to candle's reference `vec_dot_unopt`.

#![warn(missing_docs)]

#[cfg(target_arch = "x86_64")]
pub mod bf16_matmul;
pub mod depthwise;
pub mod linear_f32;
pub mod quantized;

use candle_core::Result;
use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Device, Layout, Module, Shape, Tensor};
use rayon::prelude::*;

/// Below this many values a kernel runs on the calling thread (rayon's hand-off costs more).
const PARALLEL_MIN: usize = 32 * 1024;
/// Values per rayon task.
const CHUNK: usize = 8 * 1024;

/// Exact GELU, `0.5 x (1 + erf(x / sqrt 2))` (`transformers`' `gelu`).
pub fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    map(x, Kernel::GeluErf, Tensor::gelu_erf)
}

/// SiLU, `x * sigmoid(x)`.
pub fn silu(x: &Tensor) -> Result<Tensor> {
    map(x, Kernel::Silu, Tensor::silu)
}

/// `kernel` on contiguous f32 CPU tensors; half-precision CPU tensors are computed in f32 and
/// rounded once (as PyTorch's CPU kernels do), since candle's own op for them is one scalar
/// libm call per value; everything else is candle's `fallback`.
fn map(x: &Tensor, kernel: Kernel, fallback: fn(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
    if fast_path(x) {
        return x.apply_op1_no_bwd(&Map(kernel));
    }
    if matches!(x.device(), Device::Cpu) && matches!(x.dtype(), DType::BF16 | DType::F16) {
        let wide = x.to_dtype(DType::F32)?;
        return wide.apply_op1_no_bwd(&Map(kernel))?.to_dtype(x.dtype());
    }
    fallback(x)
}

/// `softmax(scores * scale + mask)` over the last axis, in f32 (f64 for f64 scores): attention
/// probabilities.
///
/// `scores` is `[batch, heads, queries, keys]`; `mask`, if any, is additive and broadcasts to
/// it (`[batch or 1, heads or 1, queries or 1, keys]`). On the CPU one pass reads the scores
/// and the mask and writes the probabilities, in parallel over rows; elsewhere (and for other
/// layouts) it is the composition of candle's ops. A row whose every entry is masked with a
/// finite minimum comes out uniform, as in `transformers`.
pub fn masked_softmax(scores: &Tensor, scale: f64, mask: Option<&Tensor>) -> Result<Tensor> {
    if matches!(scores.device(), Device::Cpu) && matches!(scores.dtype(), DType::BF16 | DType::F16) {
        // Half-precision scores: widened once, then the fused pass (not four passes of ops).
        let mask = mask.map(|m| m.to_dtype(DType::F32)).transpose()?;
        return masked_softmax(&scores.to_dtype(DType::F32)?, scale, mask.as_ref());
    }
    let fused = fast_path(scores)
        && scores.rank() == 4
        && mask.is_none_or(|m| {
            fast_path(m) && m.rank() == 4 && m.dims().iter().zip(scores.dims()).all(|(a, b)| a == b || *a == 1)
        })
        && mask.is_none_or(|m| m.dim(3).ok() == scores.dim(3).ok());
    if fused {
        let op = MaskedSoftmax { scale: scale as f32 };
        return match mask {
            Some(mask) => scores.apply_op2_no_bwd(mask, &op),
            None => scores.apply_op1_no_bwd(&op),
        };
    }
    // Half-precision scores are promoted to f32; f64 stays f64.
    let dtype = if scores.dtype() == DType::F64 { DType::F64 } else { DType::F32 };
    let scores = (scores.to_dtype(dtype)? * scale)?;
    let scores = match mask {
        Some(mask) => scores.broadcast_add(&mask.to_dtype(dtype)?)?,
        None => scores,
    };
    candle_nn::ops::softmax_last_dim(&scores)
}

fn fast_path(x: &Tensor) -> bool {
    matches!(x.device(), Device::Cpu) && x.dtype() == DType::F32 && x.is_contiguous()
}

#[derive(Debug, Clone, Copy)]
enum Kernel {
    GeluErf,
    Silu,
}

impl Kernel {
    fn run(self, src: &[f32], dst: &mut [f32]) {
        match self {
            Kernel::GeluErf => src.iter().zip(dst.iter_mut()).for_each(|(s, d)| *d = gelu_erf_f32(*s)),
            Kernel::Silu => src.iter().zip(dst.iter_mut()).for_each(|(s, d)| *d = silu_f32(*s)),
        }
    }
}

/// An element-wise [`Kernel`] as a candle custom op.
struct Map(Kernel);

impl CustomOp1 for Map {
    fn name(&self) -> &'static str {
        match self.0 {
            Kernel::GeluErf => "autocandle-gelu-erf",
            Kernel::Silu => "autocandle-silu",
        }
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let CpuStorage::F32(all) = storage else {
            candle_core::bail!("{}: expected f32 storage", self.name());
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("{}: expected a contiguous tensor", self.name());
        };
        let src = &all[start..end];
        let mut dst = vec![0f32; src.len()];
        if src.len() < PARALLEL_MIN {
            self.0.run(src, &mut dst);
        } else {
            dst.par_chunks_mut(CHUNK).zip(src.par_chunks(CHUNK)).for_each(|(d, s)| self.0.run(s, d));
        }
        Ok((CpuStorage::F32(dst), layout.shape().clone()))
    }
}

/// The fused [`masked_softmax`].
struct MaskedSoftmax {
    scale: f32,
}

impl MaskedSoftmax {
    /// Softmax of every row of `src` (rows of `keys` values) into `dst`; `mask_row(r)`, when
    /// there is a mask, is the mask row added to row `r` (a row it does not have is an error).
    fn rows<'m>(
        &self,
        src: &[f32],
        keys: usize,
        mask_row: Option<impl Fn(usize) -> Option<&'m [f32]> + Sync>,
    ) -> Result<Vec<f32>> {
        let mut dst = vec![0f32; src.len()];
        let row = |(r, (s, d)): (usize, (&[f32], &mut [f32]))| -> Result<()> {
            match &mask_row {
                Some(mask_row) => {
                    let Some(m) = mask_row(r).filter(|m| m.len() == s.len()) else {
                        candle_core::bail!("autocandle-masked-softmax: the mask has no row for row {r} of the scores");
                    };
                    d.iter_mut().zip(s).zip(m).for_each(|((d, s), m)| *d = s * self.scale + m)
                }
                None => d.iter_mut().zip(s).for_each(|(d, s)| *d = s * self.scale),
            }
            let max = d.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            d.iter_mut().for_each(|v| *v = exp_f32(*v - max));
            let sum: f32 = d.iter().sum();
            d.iter_mut().for_each(|v| *v /= sum);
            Ok(())
        };
        if src.len() < PARALLEL_MIN {
            src.chunks(keys).zip(dst.chunks_mut(keys)).enumerate().try_for_each(row)?;
        } else {
            src.par_chunks(keys).zip(dst.par_chunks_mut(keys)).enumerate().try_for_each(row)?;
        }
        Ok(dst)
    }
}

impl CustomOp1 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "autocandle-masked-softmax"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        let src = contiguous::<f32>(CustomOp1::name(self), storage, layout)?;
        let keys = layout.shape().dims().last().copied().unwrap_or(1).max(1);
        let no_mask = None::<fn(usize) -> Option<&'static [f32]>>;
        Ok((CpuStorage::F32(self.rows(src, keys, no_mask)?), layout.shape().clone()))
    }
}

impl CustomOp2 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "autocandle-masked-softmax"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
        mask_storage: &CpuStorage,
        mask_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let src = contiguous::<f32>(CustomOp2::name(self), storage, layout)?;
        let mask = contiguous::<f32>(CustomOp2::name(self), mask_storage, mask_layout)?;
        let (&[batch, heads, queries, keys], &[mb, mh, mq, mk]) = (layout.shape().dims(), mask_layout.shape().dims())
        else {
            candle_core::bail!("{}: expected rank-4 scores and mask", CustomOp2::name(self));
        };
        if mk != keys || keys == 0 {
            candle_core::bail!("{}: the mask has {mk} keys, the scores {keys}", CustomOp2::name(self));
        }
        let broadcasts = |m: usize, s: usize| m == s || m == 1;
        if !(broadcasts(mb, batch) && broadcasts(mh, heads) && broadcasts(mq, queries)) {
            candle_core::bail!(
                "{}: a mask of shape {:?} does not broadcast to scores of shape {:?}",
                CustomOp2::name(self),
                mask_layout.shape().dims(),
                layout.shape().dims()
            );
        }
        // Row `r` of the scores is (batch, head, query); the mask's broadcast axes pick row 0.
        let mask_row = |r: usize| {
            let (q, h, b) = (r % queries, (r / queries) % heads, r / (queries * heads));
            let (b, h, q) = (if mb == 1 { 0 } else { b }, if mh == 1 { 0 } else { h }, if mq == 1 { 0 } else { q });
            let start = ((b * mh + h) * mq + q) * keys;
            mask.get(start..start + keys)
        };
        Ok((CpuStorage::F32(self.rows(src, keys, Some(mask_row))?), layout.shape().clone()))
    }
}

/// `x · weightᵀ + bias`, `torch.nn.Linear`'s product: `x` is `[.., in]`, `weight` `[out, in]`,
/// `bias` `[out]`.
///
/// On the CPU with contiguous operands: in f32 with few rows (`x`'s leading dimensions
/// flattened; see [`linear_f32::preferred`]), one pass that reads the weight in place and adds
/// the bias on the way; in bf16, on CPUs with AVX-512 BF16, [`bf16_matmul`] (f32 accumulation,
/// the bias added before the one rounding to bf16). Otherwise candle-nn's `Linear` (a `gemm`
/// product with the weight transposed, then the bias), which is also where shape errors come
/// from; a non-contiguous `x` is copied first, because candle's CPU matmul silently returns
/// wrong values for a transposed `[batch, rows, in]` view times the batch-broadcast weight
/// that `Linear` builds (huggingface/candle#3758).
pub fn linear(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    if let Some(op) = LinearOp::for_inputs(x, weight, bias) {
        return match bias {
            Some(bias) => x.apply_op3_no_bwd(weight, bias, &op),
            None => x.apply_op2_no_bwd(weight, &op),
        };
    }
    let x = if x.is_contiguous() { x.clone() } else { x.contiguous()? };
    candle_nn::Linear::new(weight.clone(), bias.cloned()).forward(&x)
}

/// `a.matmul(b)` (`[.., m, k] x [.., k, n]`) for attention, on the CPU when both operands' batch
/// dimensions flatten to one stride (any other strides are fine): in f32 through `gemm`
/// directly, one product per thread when there are many (candle loops over the batch with
/// every product split over the threads, and reads the thread count from the environment, or
/// `/proc/cpuinfo`, on every call); in bf16 through [`bf16_matmul`] on CPUs with AVX-512 BF16
/// (candle widens bf16 operands to f32 for every product). Otherwise candle's `matmul`.
pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let kernel = matches!((a.device(), b.device()), (Device::Cpu, Device::Cpu))
        && a.dtype() == b.dtype()
        && match a.dtype() {
            DType::F32 => true,
            DType::BF16 => bf16_available(),
            _ => false,
        };
    if kernel {
        if let Some(op) = Batched::for_layouts(a.layout(), b.layout()) {
            return a.apply_op2_no_bwd(b, &op);
        }
    }
    a.matmul(b)
}

/// Whether the bf16 kernels run on this CPU.
fn bf16_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        bf16_matmul::available()
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The fused product of [`linear`], for inputs it has checked.
struct LinearOp {
    m: usize,
    n: usize,
    k: usize,
}

impl LinearOp {
    fn for_inputs(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Option<Self> {
        let &[n, k] = weight.dims() else { return None };
        let m = x.dims().split_last().filter(|(&last, _)| last == k).map(|(_, lead)| lead.iter().product())?;
        let plain = |t: &Tensor| matches!(t.device(), Device::Cpu) && t.is_contiguous() && t.dtype() == x.dtype();
        // f32 always (the in-place kernel or `gemm` with the bias fused), bf16 with the kernels.
        let kernel = match x.dtype() {
            DType::F32 => true,
            DType::BF16 => bf16_available(),
            _ => false,
        };
        let ok = kernel && plain(x) && plain(weight) && bias.is_none_or(|b| plain(b) && b.dims() == [n]);
        ok.then_some(Self { m, n, k })
    }

    fn run(
        &self,
        x: (&CpuStorage, &Layout),
        w: (&CpuStorage, &Layout),
        bias: Option<(&CpuStorage, &Layout)>,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let Self { m, n, k } = *self;
        let mut dims = x.1.shape().dims().to_vec();
        if let Some(last) = dims.last_mut() {
            *last = n;
        }
        let out = match x.0 {
            CpuStorage::F32(_) => {
                let bias = bias.map(|(s, l)| contiguous::<f32>("autocandle-linear", s, l)).transpose()?;
                let (x, w) = (
                    contiguous::<f32>("autocandle-linear", x.0, x.1)?,
                    contiguous::<f32>("autocandle-linear", w.0, w.1)?,
                );
                let mut out = vec![0f32; m * n];
                if linear_f32::preferred(m, n, k) {
                    linear_f32::linear_f32(m, n, k, x, k, w, k, bias, &mut out).map_err(candle_core::Error::msg)?;
                } else {
                    gemm_linear(m, n, k, x, w, bias, &mut out)?;
                }
                CpuStorage::F32(out)
            }
            #[cfg(target_arch = "x86_64")]
            CpuStorage::BF16(_) => {
                let bias = bias.map(|(s, l)| contiguous::<half::bf16>("autocandle-linear", s, l)).transpose()?;
                let (x, w) = (
                    contiguous::<half::bf16>("autocandle-linear", x.0, x.1)?,
                    contiguous::<half::bf16>("autocandle-linear", w.0, w.1)?,
                );
                let mut out = vec![half::bf16::ZERO; m * n];
                let shape = bf16_matmul::MatmulShape::a_bt(1, m, n, k);
                bf16_matmul::matmul_bf16(&shape, x, w, bias, &mut out).map_err(candle_core::Error::msg)?;
                CpuStorage::BF16(out)
            }
            _ => candle_core::bail!("autocandle-linear: unexpected dtype"),
        };
        Ok((out, Shape::from(dims)))
    }
}

impl CustomOp2 for LinearOp {
    fn name(&self) -> &'static str {
        "autocandle-linear"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.run((xs, xl), (ws, wl), None)
    }
}

impl CustomOp3 for LinearOp {
    fn name(&self) -> &'static str {
        "autocandle-linear"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.run((xs, xl), (ws, wl), Some((bs, bl)))
    }
}

/// `out = x · wᵀ + bias` through `gemm` (what candle's matmul runs), the bias written into `out`
/// first and accumulated onto: one output buffer and no separate pass (and allocation) for
/// candle's broadcast add. `x` is `m x k`, `w` `n x k`, `out` `m x n`, all contiguous.
#[allow(unsafe_code)]
fn gemm_linear(
    m: usize,
    n: usize,
    k: usize,
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
) -> candle_core::Result<()> {
    let (Some(mk), Some(nk), Some(mn)) = (m.checked_mul(k), n.checked_mul(k), m.checked_mul(n)) else {
        candle_core::bail!("autocandle-linear: {m} x {k} x {n} overflows");
    };
    if x.len() != mk || w.len() != nk || out.len() != mn || bias.is_some_and(|b| b.len() != n) {
        candle_core::bail!("autocandle-linear: operand sizes do not match {m} x {k} x {n}");
    }
    if let Some(bias) = bias.filter(|_| n > 0) {
        out.par_chunks_mut(n).for_each(|row| row.copy_from_slice(bias));
    }
    let threads = rayon::current_num_threads();
    let parallelism = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    // SAFETY: the sizes were checked above: `x` holds m rows of k (row stride k, column stride
    // 1), `w` n rows of k read as the k x n matrix wᵀ (row stride 1, column stride k), `out` m
    // rows of n; the three do not overlap (`out` is borrowed mutably, the others shared).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            bias.is_some(),
            x.as_ptr(),
            1,
            k as isize,
            w.as_ptr(),
            k as isize,
            1,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

/// A contiguous tensor's values (`name`, the op's, for the error).
fn contiguous<'a, T: candle_core::WithDType>(
    name: &str,
    storage: &'a CpuStorage,
    layout: &Layout,
) -> candle_core::Result<&'a [T]> {
    let all = T::cpu_storage_as_slice(storage)?;
    match layout.contiguous_offsets().and_then(|(start, end)| all.get(start..end)) {
        Some(values) => Ok(values),
        None => candle_core::bail!("{name}: expected a contiguous {:?} tensor", T::DTYPE),
    }
}

/// A batched product `[.., m, k] x [.., k, n]` whose batch dimensions each flatten to one
/// stride (0 for a broadcast operand).
struct Batched {
    batch: usize,
    dims: Vec<usize>,
}

impl Batched {
    fn for_layouts(a: &Layout, b: &Layout) -> Option<Self> {
        let (ad, bd) = (a.dims(), b.dims());
        let rank = ad.len();
        if rank < 2 || bd.len() != rank || ad[..rank - 2] != bd[..rank - 2] || ad[rank - 1] != bd[rank - 2] {
            return None;
        }
        batch_stride(a)?;
        batch_stride(b)?;
        let mut dims = ad[..rank - 1].to_vec();
        dims.push(bd[rank - 1]);
        Some(Self { batch: ad[..rank - 2].iter().product(), dims })
    }
}

/// Sizes and element strides of one batched product: `a[t, i, p]` at
/// `t * a.0 + i * a.1 + p * a.2`, `b[t, p, j]` at `t * b.0 + p * b.1 + j * b.2`.
#[derive(Clone, Copy)]
struct Strides {
    batch: usize,
    m: usize,
    n: usize,
    k: usize,
    a: (usize, usize, usize),
    b: (usize, usize, usize),
}

impl Strides {
    /// The largest element index of an operand plus one, or `None` when it overflows; 0 when
    /// the operand is empty.
    fn extent(&self, dims: [usize; 3], strides: (usize, usize, usize)) -> Option<usize> {
        if dims.contains(&0) {
            return Some(0);
        }
        let last = (dims[0] - 1)
            .checked_mul(strides.0)?
            .checked_add((dims[1] - 1).checked_mul(strides.1)?)?
            .checked_add((dims[2] - 1).checked_mul(strides.2)?)?;
        last.checked_add(1)
    }

    /// Whether `a` and `b` (each from its layout's start) hold every element the strides reach.
    fn fits(&self, a: usize, b: usize) -> bool {
        let a_end = self.extent([self.batch, self.m, self.k], self.a);
        let b_end = self.extent([self.batch, self.k, self.n], self.b);
        a_end.is_some_and(|e| e <= a) && b_end.is_some_and(|e| e <= b)
    }
}

/// `out[t] = a[t] · b[t]` in f32 through `gemm`: one product per thread when the batch has
/// enough of them, else one product at a time split over the threads. `out` is contiguous
/// `(batch, m, n)`.
#[allow(unsafe_code)]
fn gemm_batched_f32(s: &Strides, a: &[f32], b: &[f32], out: &mut [f32]) -> candle_core::Result<()> {
    let mn = s.m * s.n;
    if !s.fits(a.len(), b.len()) || out.len() != s.batch * mn {
        candle_core::bail!("autocandle-matmul: operands do not match their layouts");
    }
    if mn == 0 {
        return Ok(());
    }
    let product = |t: usize, dst: &mut [f32], parallelism: gemm::Parallelism| {
        // SAFETY: `fits` checked that every index `t * stride.0 + i * stride.1 + p * stride.2`
        // (t < batch, i < m or k, p < k or n) lies inside `a` and `b`; `dst` is this product's
        // own `m x n` chunk of `out`, row-major; `out` does not overlap the shared operands.
        unsafe {
            gemm::gemm(
                s.m,
                s.n,
                s.k,
                dst.as_mut_ptr(),
                1,
                s.n as isize,
                false,
                a.as_ptr().add(t * s.a.0),
                s.a.2 as isize,
                s.a.1 as isize,
                b.as_ptr().add(t * s.b.0),
                s.b.2 as isize,
                s.b.1 as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
    };
    let threads = rayon::current_num_threads();
    if s.batch >= 2 * threads {
        out.par_chunks_mut(mn).enumerate().for_each(|(t, dst)| product(t, dst, gemm::Parallelism::None));
    } else {
        let parallelism = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
        for (t, dst) in out.chunks_mut(mn).enumerate() {
            product(t, dst, parallelism);
        }
    }
    Ok(())
}

/// The one stride that walks a layout's flattened batch dimensions (all but the last two), or
/// `None` when they do not flatten.
fn batch_stride(layout: &Layout) -> Option<usize> {
    let (dims, strides) = (layout.dims(), layout.stride());
    let batch = dims.len().checked_sub(2)?;
    let mut stride = None::<usize>;
    // Innermost batch dimension first; size-1 dimensions do not constrain anything.
    for i in (0..batch).rev().filter(|&i| dims[i] > 1) {
        match stride {
            None => stride = Some(strides[i]),
            Some(s) => {
                // This dimension must step over the ones inside it (all broadcast, or all dense).
                let inner: usize = dims[i + 1..batch].iter().product();
                if strides[i] != s * inner {
                    return None;
                }
            }
        }
    }
    Some(stride.unwrap_or(0))
}

impl CustomOp2 for Batched {
    fn name(&self) -> &'static str {
        "autocandle-matmul"
    }

    fn cpu_fwd(
        &self,
        as_: &CpuStorage,
        al: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let name = CustomOp2::name(self);
        let (Some(a_bs), Some(b_bs)) = (batch_stride(al), batch_stride(bl)) else {
            candle_core::bail!("{name}: the batch dimensions do not flatten");
        };
        let (r, ast, bst) = (al.dims().len(), al.stride(), bl.stride());
        let s = Strides {
            batch: self.batch,
            m: al.dims()[r - 2],
            n: bl.dims()[r - 1],
            k: al.dims()[r - 1],
            a: (a_bs, ast[r - 2], ast[r - 1]),
            b: (b_bs, bst[r - 2], bst[r - 1]),
        };
        let shape = Shape::from(self.dims.clone());
        match (as_, bs) {
            (CpuStorage::F32(a), CpuStorage::F32(b)) => {
                let (a, b) = (from_start(a, al)?, from_start(b, bl)?);
                let mut out = vec![0f32; s.batch * s.m * s.n];
                gemm_batched_f32(&s, a, b, &mut out)?;
                Ok((CpuStorage::F32(out), shape))
            }
            #[cfg(target_arch = "x86_64")]
            (CpuStorage::BF16(a), CpuStorage::BF16(b)) => {
                let (a, b) = (from_start(a, al)?, from_start(b, bl)?);
                let kernel_shape = bf16_matmul::MatmulShape {
                    batch: s.batch,
                    m: s.m,
                    n: s.n,
                    k: s.k,
                    a_batch_stride: s.a.0,
                    a_row_stride: s.a.1,
                    a_k_stride: s.a.2,
                    b_batch_stride: s.b.0,
                    b_col_stride: s.b.2,
                    b_k_stride: s.b.1,
                };
                let mut out = vec![half::bf16::ZERO; s.batch * s.m * s.n];
                bf16_matmul::matmul_bf16(&kernel_shape, a, b, None, &mut out).map_err(candle_core::Error::msg)?;
                Ok((CpuStorage::BF16(out), shape))
            }
            _ => candle_core::bail!("{name}: unexpected dtypes"),
        }
    }
}

/// A tensor's storage from its layout's first element on.
fn from_start<'a, T>(all: &'a [T], layout: &Layout) -> candle_core::Result<&'a [T]> {
    all.get(layout.start_offset()..).ok_or_else(|| candle_core::Error::msg("storage shorter than its layout"))
}

/// `0.5 x (1 + erf(x / sqrt 2))`.
#[inline(always)]
fn gelu_erf_f32(x: f32) -> f32 {
    0.5 * x * (1.0 + erf_f32(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// `x / (1 + exp(-x))`.
#[inline(always)]
fn silu_f32(x: f32) -> f32 {
    x / (1.0 + exp_f32(-x))
}

/// `erf` as an odd rational function of `x` on [-4, 4] (outside, erf is +-1 in f32): a
/// numerator of degree 13 over a denominator of degree 8 in `x`, no branch.
#[inline(always)]
fn erf_f32(x: f32) -> f32 {
    let x = x.clamp(-4.0, 4.0);
    let x2 = x * x;
    let mut p = -2.726_142_3e-10_f32;
    p = p * x2 + 2.770_681_4e-8;
    p = p * x2 + -2.101_024e-6;
    p = p * x2 + -5.692_506_4e-5;
    p = p * x2 + -7.349_906_3e-4;
    p = p * x2 + -2.954_6e-3;
    p = p * x2 + -1.609_603_3e-2;
    let mut q = -1.456_607_2e-5_f32;
    q = q * x2 + -2.133_740_6e-4;
    q = q * x2 + -1.682_827e-3;
    q = q * x2 + -7.373_329e-3;
    q = q * x2 + -1.426_474e-2;
    // From |x| = 3.9 on, erf(x) rounds to +-1 in f32; the rational function would stop a few
    // ulps short, which GELU of a large negative input would turn into a small nonzero value.
    if x2 >= 3.9 * 3.9 {
        1f32.copysign(x)
    } else {
        x * p / q
    }
}

/// `exp(x)` by range reduction to `2^n exp(r)`, `|r| <= ln 2 / 2`, and a degree-7 Taylor
/// polynomial; inputs are clamped to the finite f32 range (`exp(-x)` of a huge `x` is 0).
#[inline(always)]
fn exp_f32(x: f32) -> f32 {
    const LOG2_E: f32 = std::f32::consts::LOG2_E;
    // ln 2 split so that `n * LN2_HI` is exact for every `n` in range (Cody and Waite).
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer without a libm call.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let t = x * LOG2_E + ROUND;
    let n = t - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let mut p = 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    // `t`'s low mantissa bits hold `n`, an integer in [-126, 127]: a valid exponent. Integer
    // arithmetic on the bits keeps the loop vectorisable (a float-to-int cast does not).
    let n_bits = t.to_bits().wrapping_sub(ROUND.to_bits());
    let scale = f32::from_bits(n_bits.wrapping_add(127) << 23);
    p * scale
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use candle_core::cpu::erf::erf_f64;
    use candle_core::D;

    fn grid() -> impl Iterator<Item = f32> {
        (-200_000..=200_000).map(|i| i as f32 * 6e-5)
    }

    #[test]
    fn linear_of_a_transposed_view_matches_the_contiguous_input() {
        // `[2, 3, 5]` viewed from `[2, 5, 3]`: candle's broadcast-weight matmul misreads it.
        let dev = candle_core::Device::Cpu;
        let x = Tensor::arange(0f32, 30.0, &dev).unwrap().affine(0.1, -1.0).unwrap().reshape((2, 5, 3)).unwrap();
        let x = x.transpose(1, 2).unwrap();
        let w = Tensor::arange(0f32, 20.0, &dev).unwrap().affine(0.05, -0.4).unwrap().reshape((4, 5)).unwrap();
        let b = Tensor::new(&[0.1f32, -0.2, 0.3, 0.0], &dev).unwrap();
        for bias in [None, Some(&b)] {
            let got = linear(&x, &w, bias).unwrap();
            let want = candle_nn::Linear::new(w.clone(), bias.cloned()).forward(&x.contiguous().unwrap()).unwrap();
            let diff = (got - want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(diff < 1e-5, "max diff {diff}");
        }
    }

    #[test]
    fn erf_matches_f64() {
        let worst = grid().map(|x| (f64::from(erf_f32(x)) - erf_f64(f64::from(x))).abs()).fold(0f64, f64::max);
        assert!(worst < 5e-7, "erf max abs error {worst:e}");
    }

    #[test]
    fn exp_matches_f64_relative() {
        // Above the subnormal range (below it the result loses bits, as every f32 exp does).
        let worst = (-80_000..=87_900)
            .map(|i| i as f32 * 1e-3)
            .map(|x| {
                let want = f64::from(x).exp();
                ((f64::from(exp_f32(x)) - want) / want).abs()
            })
            .fold(0f64, f64::max);
        assert!(worst < 4e-7, "exp max relative error {worst:e}");
        assert!(exp_f32(-1e4) < 1e-37 && exp_f32(1e4).is_finite());
        assert!(exp_f32(f32::NEG_INFINITY) < 1e-37 && exp_f32(f32::INFINITY).is_finite());
    }

    #[test]
    fn gelu_and_silu_match_f64() {
        let gelu = |x: f64| 0.5 * x * (1.0 + erf_f64(x / std::f64::consts::SQRT_2));
        let silu = |x: f64| x / (1.0 + (-x).exp());
        for x in grid().map(|x| x * 2.0) {
            let (g, s) = (gelu(f64::from(x)), silu(f64::from(x)));
            // In f32, `1 + erf` cancels for large negative inputs (in torch too): the error
            // scales with |x|.
            let tol = 1e-6 * f64::from(x.abs()).max(1.0);
            assert!((f64::from(gelu_erf_f32(x)) - g).abs() < tol, "gelu({x})");
            assert!((f64::from(silu_f32(x)) - s).abs() < tol, "silu({x})");
        }
    }

    #[test]
    fn masked_softmax_matches_candle_for_every_mask_shape() {
        let dev = Device::Cpu;
        let scores = Tensor::randn(0f32, 3.0, (2, 3, 5, 70), &dev).unwrap();
        let full = Tensor::randn(0f32, 1.0, (2, 3, 5, 70), &dev).unwrap();
        let min = f64::from(f32::MIN);
        let padding =
            Tensor::randn(0f32, 1.0, (2, 1, 1, 70), &dev).unwrap().ge(0.5).unwrap().to_dtype(DType::F32).unwrap();
        let padding = (padding * min).unwrap();
        let masks = [
            None,
            Some(full.clone()),
            Some(padding),
            Some(full.narrow(1, 0, 1).unwrap().contiguous().unwrap()),
            Some(full.narrow(0, 0, 1).unwrap().narrow(2, 0, 1).unwrap().contiguous().unwrap()),
            // Every key masked: a uniform row.
            Some(Tensor::full(f32::MIN, (1, 1, 1, 70), &dev).unwrap()),
        ];
        for mask in &masks {
            let got = masked_softmax(&scores, 0.125, mask.as_ref()).unwrap();
            let scaled = (&scores * 0.125).unwrap();
            let scaled = match mask {
                Some(m) => scaled.broadcast_add(m).unwrap(),
                None => scaled,
            };
            let want = candle_nn::ops::softmax_last_dim(&scaled).unwrap();
            let diff = (got - want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(diff < 1e-6, "mask {:?}: diff {diff}", mask.as_ref().map(Tensor::dims));
        }
        // Layouts the kernel does not take go through candle's ops.
        let strided = scores.transpose(2, 3).unwrap();
        let got = masked_softmax(&strided, 1.0, None).unwrap();
        let want = candle_nn::ops::softmax_last_dim(&strided.contiguous().unwrap()).unwrap();
        let diff = (got - want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-6);
    }

    #[test]
    fn tensors_of_every_layout_and_dtype_agree_with_candle() {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 3.0, (3, 50_000), &dev).unwrap();
        for t in [x.clone(), x.t().unwrap(), x.narrow(1, 7, 1000).unwrap(), x.to_dtype(DType::F64).unwrap()] {
            let want = t.gelu_erf().unwrap().to_dtype(DType::F64).unwrap();
            let got = gelu_erf(&t).unwrap().to_dtype(DType::F64).unwrap();
            assert_eq!(got.dims(), t.dims());
            let diff = (got - want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
            assert!(diff < 1e-5, "gelu diff {diff}");
            let want = t.silu().unwrap().to_dtype(DType::F64).unwrap();
            let got = silu(&t).unwrap().to_dtype(DType::F64).unwrap();
            let diff = (got - want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap();
            assert!(diff < 1e-5, "silu diff {diff}");
        }
    }

    /// Max |got - want| over max |want|, both as f64.
    fn rel_diff(got: &Tensor, want: &Tensor) -> f64 {
        let (got, want) = (got.to_dtype(DType::F64).unwrap(), want.to_dtype(DType::F64).unwrap());
        let scale = want.abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap().max(1e-30);
        (got - want).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f64>().unwrap() / scale
    }

    /// `a · b` in f64 by three plain loops over the values (an independent reference): both
    /// operands `[.., m, k]` and `[.., k, n]` with the same batch dimensions.
    fn reference_matmul(a: &Tensor, b: &Tensor) -> Tensor {
        let (ad, bd) = (a.dims(), b.dims());
        let r = ad.len();
        let (m, k, n) = (ad[r - 2], ad[r - 1], bd[r - 1]);
        let batch: usize = ad[..r - 2].iter().product();
        let flat = |t: &Tensor, rows, cols| {
            t.to_dtype(DType::F64)
                .unwrap()
                .contiguous()
                .unwrap()
                .reshape((batch, rows, cols))
                .unwrap()
                .to_vec3::<f64>()
                .unwrap()
        };
        let (av, bv) = (flat(a, m, k), flat(b, k, n));
        let mut out = Vec::with_capacity(batch * m * n);
        for (a_rows, b_rows) in av.iter().zip(&bv) {
            for a_row in a_rows {
                for j in 0..n {
                    out.push(a_row.iter().zip(b_rows).map(|(x, b_row)| x * b_row[j]).sum::<f64>());
                }
            }
        }
        let mut dims = ad[..r - 1].to_vec();
        dims.push(n);
        Tensor::from_vec(out, dims, &Device::Cpu).unwrap()
    }

    #[test]
    fn products_agree_with_an_f64_reference_in_every_layout() {
        if !bf16_available() {
            eprintln!(
                "bf16 kernels skipped: this CPU has no AVX-512 BF16; bf16 products take candle's path, checked here"
            );
        }
        for (dtype, tolerance) in [(DType::F32, 1e-5), (DType::BF16, 1e-2)] {
            products_agree_with_reference(dtype, tolerance);
        }
    }

    fn products_agree_with_reference(dtype: DType, tolerance: f64) {
        let dev = Device::Cpu;
        let bf = |dims: &[usize]| Tensor::randn(0f32, 1.0, dims, &dev).unwrap().to_dtype(dtype).unwrap();
        let (q, k, v) = (bf(&[2, 3, 9, 16]), bf(&[2, 3, 11, 16]), bf(&[2, 3, 11, 16]));
        let shared = bf(&[16, 5]);
        let cases = [
            (q.clone(), k.t().unwrap()),                     // Q·Kᵀ, B transposed
            (q.matmul(&k.t().unwrap()).unwrap(), v.clone()), // P·V
            (q.reshape((2, 27, 16)).unwrap(), shared.unsqueeze(0).unwrap().broadcast_as((2, 16, 5)).unwrap()),
            (k.t().unwrap().t().unwrap().narrow(2, 1, 7).unwrap(), shared.clone().broadcast_as((2, 3, 16, 5)).unwrap()),
            (bf(&[7, 16]), shared.clone()),              // rank 2
            (bf(&[16, 7]).t().unwrap(), shared.clone()), // A transposed
        ];
        for (a, b) in &cases {
            let want = reference_matmul(a, b);
            let got = matmul(a, b).unwrap();
            assert_eq!(got.dims(), want.dims());
            assert_eq!(got.dtype(), dtype);
            // One rounding of the result.
            assert!(rel_diff(&got, &want) < tolerance, "{dtype:?}: {:?} x {:?}", a.dims(), b.dims());
        }
        // Mismatched shapes are candle's errors.
        assert!(matmul(&bf(&[2, 3]), &bf(&[4, 5])).is_err());
    }

    /// `x · wᵀ (+ bias)` in f64 by plain loops, `x` `[.., k]`, `w` `[n, k]`.
    fn reference_linear(x: &Tensor, w: &Tensor, bias: Option<&Tensor>) -> Tensor {
        let k = x.dim(D::Minus1).unwrap();
        let rows = x.elem_count() / k.max(1);
        let x2 = x.reshape((1, rows, k)).unwrap();
        let wt = w.t().unwrap().unsqueeze(0).unwrap();
        let mut out = reference_matmul(&x2, &wt);
        if let Some(bias) = bias {
            out = out.broadcast_add(&bias.to_dtype(DType::F64).unwrap()).unwrap();
        }
        let mut dims = x.dims().to_vec();
        *dims.last_mut().unwrap() = w.dim(0).unwrap();
        out.reshape(dims).unwrap()
    }

    #[test]
    fn bf16_linear_and_activations_agree_with_f64() {
        if !bf16_available() {
            eprintln!(
                "bf16 kernels skipped: this CPU has no AVX-512 BF16; bf16 linear takes candle's path, checked here"
            );
        }
        let dev = Device::Cpu;
        let to_bf = |t: &Tensor| t.to_dtype(DType::BF16).unwrap();
        let x = to_bf(&Tensor::randn(0f32, 1.0, (3, 5, 40), &dev).unwrap());
        let w = to_bf(&Tensor::randn(0f32, 1.0, (24, 40), &dev).unwrap());
        let b = to_bf(&Tensor::randn(0f32, 1.0, 24, &dev).unwrap());
        for bias in [Some(&b), None] {
            let want = reference_linear(&x, &w, bias);
            let got = linear(&x, &w, bias).unwrap();
            assert_eq!((got.dtype(), got.dims()), (DType::BF16, want.dims()));
            assert!(rel_diff(&got, &want) < 1e-2, "bias {}", bias.is_some());
        }
        for (got, want) in [
            (gelu_erf(&x).unwrap(), x.to_dtype(DType::F32).unwrap().gelu_erf().unwrap()),
            (silu(&x).unwrap(), x.to_dtype(DType::F32).unwrap().silu().unwrap()),
        ] {
            assert_eq!(got.dtype(), DType::BF16);
            assert!(rel_diff(&got, &want) < 1e-2);
        }
    }

    #[test]
    fn f32_linear_agrees_with_f64_on_every_path() {
        // Few rows (the in-place kernel where the CPU has it), many rows (`gemm`), no bias.
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (40, 160), &dev).unwrap();
        let b = Tensor::randn(0f32, 1.0, 40, &dev).unwrap();
        for rows in [1, 7, 300] {
            let x = Tensor::randn(0f32, 1.0, (rows, 160), &dev).unwrap();
            for bias in [Some(&b), None] {
                let want = reference_linear(&x, &w, bias);
                let got = linear(&x, &w, bias).unwrap();
                assert_eq!((got.dtype(), got.dims()), (DType::F32, want.dims()));
                assert!(rel_diff(&got, &want) < 1e-5, "rows {rows}, bias {}", bias.is_some());
            }
        }
    }

    #[test]
    fn gemm_linear_the_portable_path_matches_f64() {
        // What `linear` runs where the in-place kernel is not preferred or not available.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            ((seed >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        };
        for (m, n, k) in [(1, 1, 1), (3, 5, 7), (17, 33, 129), (300, 40, 160), (0, 4, 3), (2, 0, 3), (2, 3, 0)] {
            let x: Vec<f32> = (0..m * k).map(|_| next()).collect();
            let w: Vec<f32> = (0..n * k).map(|_| next()).collect();
            let b: Vec<f32> = (0..n).map(|_| next()).collect();
            for bias in [Some(&b[..]), None] {
                let mut out = vec![f32::NAN; m * n];
                gemm_linear(m, n, k, &x, &w, bias, &mut out).unwrap();
                for i in 0..m {
                    for j in 0..n {
                        let (mut want, mut mag) = (bias.map_or(0.0, |b| f64::from(b[j])), 0f64);
                        mag += want.abs();
                        for p in 0..k {
                            let t = f64::from(x[i * k + p]) * f64::from(w[j * k + p]);
                            want += t;
                            mag += t.abs();
                        }
                        let got = f64::from(out[i * n + j]);
                        assert!((got - want).abs() <= 1e-5 * mag + 1e-30, "{m}x{n}x{k} [{i}][{j}]: {got} vs {want}");
                    }
                }
            }
        }
        let mut out = vec![0f32; 6];
        assert!(gemm_linear(2, 3, 4, &[0.0; 7], &[0.0; 12], None, &mut out).is_err());
        assert!(gemm_linear(2, 3, 4, &[0.0; 8], &[0.0; 12], Some(&[0.0; 2]), &mut out).is_err());
    }

    #[test]
    fn a_mask_without_a_row_for_the_scores_is_an_error() {
        let dev = Device::Cpu;
        let op = MaskedSoftmax { scale: 1.0 };
        let scores = Tensor::randn(0f32, 1.0, (3, 2, 4, 8), &dev).unwrap();
        // Two batch rows of mask for three of scores: neither the same size nor broadcast.
        for dims in [(2, 1, 1, 8), (1, 3, 1, 8), (1, 1, 2, 8)] {
            let mask = Tensor::zeros(dims, DType::F32, &dev).unwrap();
            let err = scores.apply_op2_no_bwd(&mask, &op).unwrap_err().to_string();
            assert!(err.contains("does not broadcast"), "{dims:?}: {err}");
        }
        // Rows the mask's layout lacks: an error, never "no mask".
        let row = op.rows(&[0.0; 16], 8, Some(|r: usize| (r == 0).then_some(&[0f32; 8][..])));
        assert!(row.unwrap_err().to_string().contains("no row for row 1"));
        assert_eq!(op.rows(&[0.0; 16], 8, Some(|_| Some(&[0f32; 8][..]))).unwrap(), vec![0.125; 16]);
    }
}
