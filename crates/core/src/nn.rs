//! Layers the architectures share where candle-nn's would be slower on the CPU, and their
//! quantized forms.
//!
//! [`Linear`] has candle-nn's API (`new`, `bias`, `Module`) and the same constructors
//! ([`linear`], [`linear_no_bias`], [`linear_b`], which read the same tensors with the same
//! initialisation hints), so an architecture switches by its `use` line; its float forward is
//! [`crate::kernels::linear`]. [`Embedding`] is candle-nn's embedding, built by [`embedding`].
//!
//! While [`crate::quant::with_quant_settings`] is in force (a GGUF load, or
//! `LoadOptions::quantize`), the constructors keep weights quantized: a [`Linear`] then holds
//! a [`QTensor`] and runs the quantized product (activations quantized to 8-bit blocks,
//! integer dot products), and an [`Embedding`] dequantizes only the rows it looks up. Biases
//! stay float.
use std::sync::Arc;

use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{DType, Module, Tensor};
use candle_nn::{Init, VarBuilder};

use crate::quant::{current_quant_settings, QuantSettings};

/// `torch.nn.Linear`: `y = x · weightᵀ + bias`, `weight` `[out, in]`, kept as floats or
/// quantized.
#[derive(Clone, Debug)]
pub struct Linear {
    weight: Weight,
    bias: Option<Tensor>,
}

/// A float weight, or a quantized one with the float dtype the model computes in.
#[derive(Clone, Debug)]
enum Weight {
    Dense(Tensor),
    Quantized { qtensor: Arc<QTensor>, matmul: QMatMul, dtype: DType },
}

impl Linear {
    /// A layer over `weight` (`[out, in]`) and an optional `bias` (`[out]`).
    pub fn new(weight: Tensor, bias: Option<Tensor>) -> Self {
        Self { weight: Weight::Dense(weight), bias }
    }

    /// A layer over the quantized `weight` (`[out, in]`) and an optional float `bias`
    /// (`[out]`); `dtype` is the float dtype of the model ([`Linear::dtype`]).
    pub fn quantized(weight: Arc<QTensor>, bias: Option<Tensor>, dtype: DType) -> candle_core::Result<Self> {
        weight.shape().dims2()?;
        let matmul = QMatMul::from_arc(Arc::clone(&weight))?;
        Ok(Self { weight: Weight::Quantized { qtensor: weight, matmul, dtype }, bias })
    }

    /// The layer `lm_head` becomes when it is tied to `embedding`: the same tensor, float or
    /// quantized (never a copy).
    pub fn tied_to(embedding: &Embedding) -> candle_core::Result<Self> {
        match &embedding.table {
            Table::Dense(e) => Ok(Self::new(e.embeddings().clone(), None)),
            Table::Quantized { qtensor, dtype } => Self::quantized(Arc::clone(qtensor), None, *dtype),
        }
    }

    /// The weight `[out, in]` as floats: the tensor itself (a cheap clone), or a dequantized
    /// copy in [`Linear::dtype`] for a quantized layer.
    pub fn weight(&self) -> candle_core::Result<Tensor> {
        match &self.weight {
            Weight::Dense(w) => Ok(w.clone()),
            Weight::Quantized { qtensor, dtype, .. } => qtensor.dequantize(&qtensor.device())?.to_dtype(*dtype),
        }
    }

    /// The float weight `[out, in]`; `None` for a quantized layer.
    pub fn dense_weight(&self) -> Option<&Tensor> {
        match &self.weight {
            Weight::Dense(w) => Some(w),
            Weight::Quantized { .. } => None,
        }
    }

    /// The quantized weight; `None` for a float layer.
    pub fn qtensor(&self) -> Option<&Arc<QTensor>> {
        match &self.weight {
            Weight::Dense(_) => None,
            Weight::Quantized { qtensor, .. } => Some(qtensor),
        }
    }

    /// The float dtype of the layer: its weight's, or for a quantized layer the model's.
    pub fn dtype(&self) -> DType {
        match &self.weight {
            Weight::Dense(w) => w.dtype(),
            Weight::Quantized { dtype, .. } => *dtype,
        }
    }

    /// `(out_features, in_features)`, the weight's shape.
    pub fn dims(&self) -> candle_core::Result<(usize, usize)> {
        match &self.weight {
            Weight::Dense(w) => w.dims2(),
            Weight::Quantized { qtensor, .. } => qtensor.shape().dims2(),
        }
    }

    /// The bias, `[out]`.
    pub fn bias(&self) -> Option<&Tensor> {
        self.bias.as_ref()
    }
}

impl From<candle_nn::Linear> for Linear {
    fn from(layer: candle_nn::Linear) -> Self {
        Self::new(layer.weight().clone(), layer.bias().cloned())
    }
}

impl Module for Linear {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match &self.weight {
            Weight::Dense(w) => crate::kernels::linear(x, w, self.bias.as_ref()),
            Weight::Quantized { qtensor, matmul, .. } => {
                let in_dtype = x.dtype();
                let x32 = x.to_dtype(DType::F32)?.contiguous()?;
                let y = match crate::kernels::quantized::matmul(&x32, qtensor)? {
                    Some(y) => y,
                    None => matmul.forward(&x32)?,
                };
                let y = match &self.bias {
                    Some(b) => y.broadcast_add(&b.to_dtype(DType::F32)?)?,
                    None => y,
                };
                y.to_dtype(in_dtype)
            }
        }
    }
}

/// `name` under `vb`'s prefix, as the model asks for it (`model.layers.0.mlp.up_proj.weight`).
fn full_name(vb: &VarBuilder<'_>, name: &str) -> String {
    let prefix = vb.prefix();
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

/// The quantized `[rows, cols]` tensor `name` under the settings: the source's when it stores
/// it quantized, else the float tensor quantized in place when an in-situ type is set and
/// `cols` is a multiple of its block size; `None` means: read it as floats.
fn quantized_tensor(
    settings: &QuantSettings,
    vb: &VarBuilder<'_>,
    name: &str,
    (rows, cols): (usize, usize),
    init: Init,
) -> candle_core::Result<Option<Arc<QTensor>>> {
    if let Some(source) = &settings.source {
        let full = full_name(vb, name);
        if let Some(q) = source.quantized(&full, vb.device()).map_err(candle_core::Error::wrap)? {
            let dims = q.shape().dims();
            if dims != [rows, cols] {
                return Err(candle_core::Error::Msg(format!(
                    "quantized tensor `{full}` has shape {dims:?}, the model expects [{rows}, {cols}]: the checkpoint \
                     does not match the config"
                )));
            }
            return Ok(Some(q));
        }
    }
    let Some(kind) = settings.quantize else { return Ok(None) };
    let dtype = kind.ggml_dtype();
    if cols % dtype.block_size() != 0 {
        tracing::debug!(
            tensor = full_name(vb, name),
            cols,
            block = dtype.block_size(),
            "kept as floats: the row length is not a multiple of the {} block size",
            kind.name()
        );
        return Ok(None);
    }
    let weight = vb.get_with_hints((rows, cols), name, init)?.to_dtype(DType::F32)?;
    Ok(Some(Arc::new(QTensor::quantize(&weight, dtype)?)))
}

fn build_linear(in_dim: usize, out_dim: usize, bias: bool, vb: VarBuilder<'_>) -> candle_core::Result<Linear> {
    let Some(settings) = current_quant_settings() else {
        return candle_nn::linear_b(in_dim, out_dim, bias, vb).map(Linear::from);
    };
    let init = candle_nn::init::DEFAULT_KAIMING_NORMAL;
    let Some(weight) = quantized_tensor(&settings, &vb, "weight", (out_dim, in_dim), init)? else {
        return candle_nn::linear_b(in_dim, out_dim, bias, vb).map(Linear::from);
    };
    let bias = if bias {
        // candle-nn's hint for the bias.
        let bound = 1. / (in_dim as f64).sqrt();
        Some(vb.get_with_hints(out_dim, "bias", Init::Uniform { lo: -bound, up: bound })?)
    } else {
        None
    };
    Linear::quantized(weight, bias, vb.dtype())
}

/// A layer with a bias, `in_dim -> out_dim`, from `vb` (`weight`, `bias`).
pub fn linear(in_dim: usize, out_dim: usize, vb: VarBuilder<'_>) -> candle_core::Result<Linear> {
    build_linear(in_dim, out_dim, true, vb)
}

/// A layer without a bias, from `vb` (`weight`).
pub fn linear_no_bias(in_dim: usize, out_dim: usize, vb: VarBuilder<'_>) -> candle_core::Result<Linear> {
    build_linear(in_dim, out_dim, false, vb)
}

/// A layer with a bias or not, from `vb`.
pub fn linear_b(in_dim: usize, out_dim: usize, bias: bool, vb: VarBuilder<'_>) -> candle_core::Result<Linear> {
    build_linear(in_dim, out_dim, bias, vb)
}

/// `torch.nn.Embedding`: rows of a `[vocab, hidden]` table looked up by id, kept as floats or
/// quantized (then only the looked-up rows are dequantized, in the model's dtype).
#[derive(Clone, Debug)]
pub struct Embedding {
    table: Table,
    hidden_size: usize,
}

#[derive(Clone, Debug)]
enum Table {
    Dense(candle_nn::Embedding),
    Quantized { qtensor: Arc<QTensor>, dtype: DType },
}

impl Embedding {
    /// An embedding over the float table `embeddings` (`[vocab, hidden_size]`).
    pub fn new(embeddings: Tensor, hidden_size: usize) -> Self {
        Self { table: Table::Dense(candle_nn::Embedding::new(embeddings, hidden_size)), hidden_size }
    }

    /// An embedding over the quantized table `table` (`[vocab, hidden]`), whose lookups come
    /// out in `dtype`.
    pub fn quantized(table: Arc<QTensor>, dtype: DType) -> candle_core::Result<Self> {
        let (_, hidden_size) = table.shape().dims2()?;
        Ok(Self { table: Table::Quantized { qtensor: table, dtype }, hidden_size })
    }

    /// The embedding tied to `layer` (a checkpoint that saved only `lm_head.weight`): the
    /// same tensor, float or quantized.
    pub fn tied_to(layer: &Linear) -> candle_core::Result<Self> {
        let (_, hidden) = layer.dims()?;
        match &layer.weight {
            Weight::Dense(w) => Ok(Self::new(w.clone(), hidden)),
            Weight::Quantized { qtensor, dtype, .. } => Self::quantized(Arc::clone(qtensor), *dtype),
        }
    }

    /// The float table `[vocab, hidden]`; `None` when it is quantized.
    pub fn embeddings(&self) -> Option<&Tensor> {
        match &self.table {
            Table::Dense(e) => Some(e.embeddings()),
            Table::Quantized { .. } => None,
        }
    }

    /// The quantized table; `None` when it is float.
    pub fn qtensor(&self) -> Option<&Arc<QTensor>> {
        match &self.table {
            Table::Dense(_) => None,
            Table::Quantized { qtensor, .. } => Some(qtensor),
        }
    }

    /// The width of a row.
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }
}

impl Module for Embedding {
    fn forward(&self, ids: &Tensor) -> candle_core::Result<Tensor> {
        match &self.table {
            Table::Dense(e) => e.forward(ids),
            Table::Quantized { qtensor, dtype } => qtensor.embedding(ids)?.to_dtype(*dtype),
        }
    }
}

/// A `[vocab, hidden]` embedding from `vb` (`weight`, drawn from `N(0, 1)` when fresh, as
/// `torch.nn.Embedding`), quantized under the settings in force like [`linear`].
pub fn embedding(vocab: usize, hidden: usize, vb: VarBuilder<'_>) -> candle_core::Result<Embedding> {
    let init = Init::Randn { mean: 0.0, stdev: 1.0 };
    if let Some(settings) = current_quant_settings() {
        if let Some(table) = quantized_tensor(&settings, &vb, "weight", (vocab, hidden), init)? {
            return Embedding::quantized(table, vb.dtype());
        }
    }
    Ok(Embedding::new(vb.get_with_hints((vocab, hidden), "weight", init)?, hidden))
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, D};

    fn max_rel_diff(a: &Tensor, b: &Tensor) -> f64 {
        let scale = b.abs().unwrap().flatten_all().unwrap().max(D::Minus1).unwrap().to_scalar::<f32>().unwrap();
        let diff = (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(D::Minus1).unwrap();
        f64::from(diff.to_scalar::<f32>().unwrap()) / f64::from(scale.max(1e-30))
    }

    #[test]
    fn linear_matches_candle_nn_on_every_path() {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (300, 200), &dev).unwrap();
        let b = Tensor::randn(0f32, 1.0, 300, &dev).unwrap();
        // Small and large m (fused and gemm paths), rank 2/3/4, a non-contiguous input, f64.
        let inputs = [
            Tensor::randn(0f32, 1.0, (1, 200), &dev).unwrap(),
            Tensor::randn(0f32, 1.0, (2, 7, 200), &dev).unwrap(),
            Tensor::randn(0f32, 1.0, (2, 3, 5, 200), &dev).unwrap(),
            Tensor::randn(0f32, 1.0, (600, 200), &dev).unwrap(),
            Tensor::randn(0f32, 1.0, (200, 9), &dev).unwrap().t().unwrap(),
        ];
        for x in &inputs {
            for bias in [None, Some(b.clone())] {
                let want = candle_nn::Linear::new(w.clone(), bias.clone()).forward(x).unwrap();
                let got = Linear::new(w.clone(), bias).forward(x).unwrap();
                assert_eq!(got.dims(), want.dims());
                assert!(max_rel_diff(&got, &want) < 1e-5, "{:?}", x.dims());
            }
        }
        let x64 = inputs[1].to_dtype(DType::F64).unwrap();
        let got = Linear::new(w.to_dtype(DType::F64).unwrap(), None).forward(&x64).unwrap();
        assert_eq!(got.dtype(), DType::F64);
    }

    #[test]
    fn shape_errors_stay_errors() {
        let dev = Device::Cpu;
        let layer = Linear::new(Tensor::zeros((4, 3), DType::F32, &dev).unwrap(), None);
        assert!(layer.forward(&Tensor::zeros((2, 5), DType::F32, &dev).unwrap()).is_err());
        let bad_bias = Linear::new(
            Tensor::zeros((300, 200), DType::F32, &dev).unwrap(),
            Some(Tensor::zeros(7, DType::F32, &dev).unwrap()),
        );
        assert!(bad_bias.forward(&Tensor::zeros((2, 200), DType::F32, &dev).unwrap()).is_err());
    }

    mod quantized {
        use super::super::*;
        use crate::quant::{with_quant_settings, QuantSettings, QuantSource};
        use crate::QuantType;
        use candle_core::quantized::GgmlDType;
        use candle_core::{DType, Device, IndexOp, Tensor};
        use std::collections::HashMap;

        fn randn(shape: (usize, usize)) -> Tensor {
            Tensor::randn(0f32, 1.0, shape, &Device::Cpu).unwrap()
        }

        fn max_abs(a: &Tensor, b: &Tensor) -> f32 {
            (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
        }

        const TYPES: [GgmlDType; 10] = [
            GgmlDType::Q4_0,
            GgmlDType::Q4_1,
            GgmlDType::Q5_0,
            GgmlDType::Q5_1,
            GgmlDType::Q8_0,
            GgmlDType::Q2K,
            GgmlDType::Q3K,
            GgmlDType::Q4K,
            GgmlDType::Q5K,
            GgmlDType::Q6K,
        ];

        #[test]
        fn quantized_linear_equals_candle_qmatmul() {
            let bias = Tensor::randn(0f32, 1.0, 24, &Device::Cpu).unwrap();
            for dtype in TYPES {
                // The 32-value block types run autocandle's kernels where the CPU has AVX2,
                // which quantize the activations as llama.cpp does (candle rounds a few of
                // them one step apart); the k-quants run candle's own.
                let tol = if matches!(
                    dtype,
                    GgmlDType::Q4_0 | GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1 | GgmlDType::Q8_0
                ) {
                    1e-2
                } else {
                    1e-6
                };
                let q = Arc::new(QTensor::quantize(&randn((24, 512)), dtype).unwrap());
                let reference = QMatMul::from_arc(Arc::clone(&q)).unwrap();
                let layer = Linear::quantized(Arc::clone(&q), None, DType::F32).unwrap();
                assert!(layer.dense_weight().is_none() && layer.dims().unwrap() == (24, 512));
                for shape in [vec![1, 512], vec![3, 512], vec![2, 5, 512]] {
                    let x = Tensor::randn(0f32, 1.0, shape.as_slice(), &Device::Cpu).unwrap();
                    let want = reference.forward(&x).unwrap();
                    let got = layer.forward(&x).unwrap();
                    assert_eq!(got.dims(), want.dims());
                    let scale = want.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
                    assert!(max_abs(&got, &want) <= tol * scale.max(1.0), "{dtype:?} {shape:?}");
                }
                // Bias added in f32; a bf16 input comes back in bf16.
                let with_bias = Linear::quantized(Arc::clone(&q), Some(bias.clone()), DType::F32).unwrap();
                let x = randn((3, 512));
                let want = reference.forward(&x).unwrap().broadcast_add(&bias).unwrap();
                let scale = want.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
                assert!(max_abs(&with_bias.forward(&x).unwrap(), &want) <= (tol * scale).max(1e-4), "{dtype:?}");
                let half = with_bias.forward(&x.to_dtype(DType::BF16).unwrap()).unwrap();
                assert_eq!(half.dtype(), DType::BF16);
                // The float view is the dequantized tensor.
                let w = layer.weight().unwrap();
                assert_eq!(max_abs(&w, &q.dequantize(&Device::Cpu).unwrap()), 0.0);
            }
        }

        fn vb_of(tensors: &[(&str, Tensor)]) -> VarBuilder<'static> {
            let map: HashMap<String, Tensor> = tensors.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
            VarBuilder::from_tensors(map, DType::F32, &Device::Cpu)
        }

        #[test]
        fn in_situ_quantization_follows_the_scope_and_the_block_size() {
            let w64 = randn((16, 64));
            let w48 = randn((16, 48));
            let bias = Tensor::randn(0f32, 1.0, 16, &Device::Cpu).unwrap();
            let vb = vb_of(&[("a.weight", w64.clone()), ("a.bias", bias.clone()), ("b.weight", w48.clone())]);
            let settings = QuantSettings { source: None, quantize: Some(QuantType::Q8_0) };
            let (a, b) = with_quant_settings(&settings, || {
                (linear(64, 16, vb.pp("a")).unwrap(), linear_no_bias(48, 16, vb.pp("b")).unwrap())
            });
            let q = a.qtensor().expect("64 is a multiple of 32: quantized");
            assert_eq!(q.dtype(), GgmlDType::Q8_0);
            assert!(a.bias().is_some());
            // 48 is not a multiple of Q8_0's 32: the layer stays float, bit for bit.
            assert_eq!(max_abs(b.dense_weight().expect("kept float"), &w48), 0.0);
            // Outside the scope: float again.
            assert!(linear(64, 16, vb.pp("a")).unwrap().dense_weight().is_some());
            // Q8_0 is close to the float product.
            let x = randn((2, 64));
            let exact = Linear::new(w64, Some(bias)).forward(&x).unwrap();
            let scale = exact.abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap();
            assert!(max_abs(&a.forward(&x).unwrap(), &exact) < 0.02 * scale);
        }

        #[derive(Debug)]
        struct OneTensor(Arc<QTensor>);

        impl QuantSource for OneTensor {
            fn quantized(&self, name: &str, _device: &Device) -> crate::Result<Option<Arc<QTensor>>> {
                Ok((name == "model.layers.0.q.weight").then(|| Arc::clone(&self.0)))
            }
        }

        #[test]
        fn a_source_supplies_weights_by_full_name() {
            let q = Arc::new(QTensor::quantize(&randn((8, 32)), GgmlDType::Q4_1).unwrap());
            let settings = QuantSettings { source: Some(Arc::new(OneTensor(Arc::clone(&q)))), quantize: None };
            let other = randn((8, 32));
            // No float `q.weight` exists: the source's tensor is used without reading floats.
            let vb = vb_of(&[("model.layers.0.k.weight", other.clone())]);
            let layers = vb.pp("model").pp("layers.0");
            let (qa, kb) = with_quant_settings(&settings, || {
                (linear_no_bias(32, 8, layers.pp("q")).unwrap(), linear_no_bias(32, 8, layers.pp("k")).unwrap())
            });
            assert!(Arc::ptr_eq(qa.qtensor().unwrap(), &q));
            assert_eq!(max_abs(kb.dense_weight().unwrap(), &other), 0.0);
            // A stored shape that disagrees with the model is an error that names the tensor.
            let err = with_quant_settings(&settings, || linear_no_bias(32, 9, layers.pp("q")).unwrap_err());
            assert!(err.to_string().contains("model.layers.0.q.weight"), "{err}");
        }

        #[test]
        fn quantized_embedding_equals_dequantize_then_index() {
            for dtype in [GgmlDType::Q4_1, GgmlDType::Q8_0, GgmlDType::Q4K, GgmlDType::F16] {
                let table = randn((50, 256));
                let q = Arc::new(QTensor::quantize(&table, dtype).unwrap());
                let emb = Embedding::quantized(Arc::clone(&q), DType::F32).unwrap();
                assert!(emb.embeddings().is_none() && emb.hidden_size() == 256);
                let ids = Tensor::new(&[[3u32, 0, 49], [7, 7, 1]], &Device::Cpu).unwrap();
                let got = emb.forward(&ids).unwrap();
                assert_eq!(got.dims(), [2, 3, 256]);
                let full = q.dequantize(&Device::Cpu).unwrap();
                let want = Embedding::new(full, 256).forward(&ids).unwrap();
                assert_eq!(max_abs(&got, &want), 0.0, "{dtype:?}");
                // Tying: the head shares the very same tensor.
                let head = Linear::tied_to(&emb).unwrap();
                assert!(Arc::ptr_eq(head.qtensor().unwrap(), &q) || dtype == GgmlDType::F16);
                let back = Embedding::tied_to(&head).unwrap();
                assert_eq!(max_abs(&back.forward(&ids).unwrap(), &got), 0.0);
                assert_eq!(max_abs(&got.i((1, 0)).unwrap(), &got.i((1, 1)).unwrap()), 0.0);
            }
        }

        #[test]
        fn embedding_constructor_quantizes_in_scope() {
            let table = randn((10, 64));
            let vb = vb_of(&[("e.weight", table.clone())]);
            let settings = QuantSettings { source: None, quantize: Some(QuantType::Q8_0) };
            let q = with_quant_settings(&settings, || embedding(10, 64, vb.pp("e")).unwrap());
            assert_eq!(q.qtensor().unwrap().dtype(), GgmlDType::Q8_0);
            let k = with_quant_settings(&QuantSettings { source: None, quantize: Some(QuantType::Q4K) }, || {
                embedding(10, 64, vb.pp("e")).unwrap()
            });
            assert_eq!(max_abs(k.embeddings().unwrap(), &table), 0.0);
        }
    }
}
