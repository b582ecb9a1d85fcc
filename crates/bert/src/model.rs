//! The BERT encoder: embeddings, self-attention layers and pooler (`BertModel`), and the
//! layer stack on its own ([`BertEncoder`], [`BertLayer`]) for architectures that reuse it.

use autocandle_core::nn::{linear, Linear};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{embedding, layer_norm, Embedding, LayerNorm, VarBuilder};

use autocandle_core::heads::Encoder;
use autocandle_core::{
    Activation, AutoRegister, BaseModelOutput, Error, LoadModel, Model, ModelInputs, PreTrainedModel, Result,
};

use crate::config::BertConfig;
use crate::inputs::{additive_mask, checked_position_ids, dims2_int, ids_in_range, require_int, require_shape};
use crate::rotary::SinusoidalRotary;
use crate::variant::{BertSpec, BertVariant, PreNormEncoder};

/// The dtype attention scores are softmaxed in: f32 for half-precision models, else the
/// model's own.
fn softmax_dtype(dtype: DType) -> DType {
    match dtype {
        DType::F16 | DType::BF16 => DType::F32,
        other => other,
    }
}

/// `BertEmbeddings`: word + token type + position embeddings (+ ERNIE's task type 0),
/// then LayerNorm (none in the pre-LayerNorm variants).
///
/// Public for the encoders whose embeddings are BERT's at another width (ALBERT's and
/// ELECTRA's `embedding_size`): build it with [`BertEmbeddings::new`].
#[derive(Debug)]
pub struct BertEmbeddings {
    pub(crate) word_embeddings: Embedding,
    position_embeddings: Embedding,
    /// `None` in BertGeneration, which has no token types.
    token_type_embeddings: Option<Embedding>,
    /// Row 0 of ERNIE's `task_type_embeddings`, `[1, hidden]`.
    task_type: Option<Tensor>,
    layer_norm: Option<LayerNorm>,
}

impl BertEmbeddings {
    pub(crate) fn load(vb: VarBuilder<'_>, cfg: &BertConfig, variant: &BertVariant) -> Result<Self> {
        let h = cfg.hidden_size;
        let task_type = match variant.task_type_vocab_size {
            Some(rows) => Some(vb.get((rows, h), "task_type_embeddings.weight")?.narrow(0, 0, 1)?),
            None => None,
        };
        let layer_norm =
            if variant.embedding_norm { Some(layer_norm(h, cfg.layer_norm_eps, vb.pp("LayerNorm"))?) } else { None };
        Ok(Self {
            word_embeddings: embedding(cfg.vocab_size, h, vb.pp("word_embeddings"))?,
            position_embeddings: embedding(cfg.max_position_embeddings, h, vb.pp("position_embeddings"))?,
            token_type_embeddings: if variant.token_types {
                Some(embedding(cfg.type_vocab_size, h, vb.pp("token_type_embeddings"))?)
            } else {
                None
            },
            task_type,
            layer_norm,
        })
    }

    /// `input_ids` `[B, T]` (u32, checked); `token_type_ids` `[B, T]` (u32, checked, `None`
    /// is all zeros); `position_ids` `[B or 1, T]` (u32, checked, `None` is `0..T`).
    pub(crate) fn forward(
        &self,
        input_ids: &Tensor,
        token_type_ids: Option<&Tensor>,
        position_ids: Option<&Tensor>,
    ) -> Result<Tensor> {
        let seq = input_ids.dim(1)?;
        let words = self.word_embeddings.forward(input_ids)?;
        let positions = match position_ids {
            Some(ids) => self.position_embeddings.forward(ids)?,
            None => self.position_embeddings.embeddings().narrow(0, 0, seq)?,
        };
        // Summed in the order of `transformers`: (words + token types) + positions.
        let mut embeddings = match &self.token_type_embeddings {
            Some(table) => {
                let token_types = match token_type_ids {
                    Some(ids) => table.forward(ids)?,
                    // All zeros: every token gets row 0.
                    None => table.embeddings().narrow(0, 0, 1)?,
                };
                words.broadcast_add(&token_types)?.broadcast_add(&positions)?
            }
            None => words.broadcast_add(&positions)?,
        };
        if let Some(task_type) = &self.task_type {
            embeddings = embeddings.broadcast_add(task_type)?;
        }
        Ok(match &self.layer_norm {
            Some(norm) => norm.forward(&embeddings)?,
            None => embeddings,
        })
    }
}

/// `BertSelfAttention`: multi-head scaled dot-product attention.
#[derive(Debug)]
pub(crate) struct BertSelfAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    num_heads: usize,
    head_dim: usize,
    scale: f64,
    /// RoFormer's rotary position embeddings, applied to the queries and keys (and values).
    rotary: Option<SinusoidalRotary>,
}

impl BertSelfAttention {
    pub(crate) fn load(vb: VarBuilder<'_>, cfg: &BertConfig) -> Result<Self> {
        let h = cfg.hidden_size;
        let (query, key, value) =
            (linear(h, h, vb.pp("query"))?, linear(h, h, vb.pp("key"))?, linear(h, h, vb.pp("value"))?);
        Ok(Self::new(query, key, value, cfg.num_attention_heads, cfg.head_dim()))
    }

    fn new(query: Linear, key: Linear, value: Linear, num_heads: usize, head_dim: usize) -> Self {
        Self { query, key, value, num_heads, head_dim, scale: (head_dim as f64).powf(-0.5), rotary: None }
    }

    /// `x` `[B, T, H]`; `mask` additive, broadcastable to `[B, heads, T, T]`.
    pub(crate) fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (batch, seq, hidden) = x.dims3()?;
        let heads = |proj: &Linear| -> Result<Tensor> {
            Ok(proj.forward(x)?.reshape((batch, seq, self.num_heads, self.head_dim))?.transpose(1, 2)?.contiguous()?)
        };
        let (mut q, mut k, mut v) = (heads(&self.query)?, heads(&self.key)?, heads(&self.value)?);
        if let Some(rotary) = &self.rotary {
            (q, k, v) = rotary.apply(q, k, v)?;
        }
        let dtype = q.dtype();
        // Scale, mask and softmax in one pass (in f32, or f64 for f64 models).
        let probs = autocandle_core::kernels::masked_softmax(
            &autocandle_core::kernels::matmul(&q, &k.t()?)?,
            self.scale,
            mask,
        )?
        .to_dtype(dtype)?;
        let context = autocandle_core::kernels::matmul(&probs, &v)?.transpose(1, 2)?;
        Ok(context.reshape((batch, seq, hidden))?)
    }
}

/// `dense`, then `LayerNorm(dense(x) + residual)`: `BertSelfOutput` and `BertOutput`.
#[derive(Debug)]
struct DenseResidualNorm {
    dense: Linear,
    layer_norm: LayerNorm,
}

impl DenseResidualNorm {
    fn load(vb: VarBuilder<'_>, in_dim: usize, cfg: &BertConfig) -> Result<Self> {
        Ok(Self {
            dense: linear(in_dim, cfg.hidden_size, vb.pp("dense"))?,
            layer_norm: layer_norm(cfg.hidden_size, cfg.layer_norm_eps, vb.pp("LayerNorm"))?,
        })
    }

    fn forward(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        let x = (self.dense.forward(x)? + residual)?;
        Ok(self.layer_norm.forward(&x)?)
    }
}

/// The weights of one [`BertLayer`], whatever the checkpoint calls them (DistilBERT's
/// `q_lin`, `sa_layer_norm`, `ffn.lin1` ...): the layer computes
/// `x = attention_norm(attention_output(attention(x)) + x)`, then
/// `output_norm(output(activation(intermediate(x))) + x)`.
#[derive(Debug)]
pub struct BertLayerWeights {
    /// The query projection (`attention.self.query`), `hidden -> hidden`.
    pub query: Linear,
    /// The key projection (`attention.self.key`), `hidden -> hidden`.
    pub key: Linear,
    /// The value projection (`attention.self.value`), `hidden -> hidden`.
    pub value: Linear,
    /// The projection of the attention's output (`attention.output.dense`).
    pub attention_output: Linear,
    /// The LayerNorm after the attention (`attention.output.LayerNorm`).
    pub attention_norm: LayerNorm,
    /// The first feed-forward matrix (`intermediate.dense`).
    pub intermediate: Linear,
    /// The activation between the feed-forward matrices (`hidden_act`).
    pub activation: Activation,
    /// The second feed-forward matrix (`output.dense`).
    pub output: Linear,
    /// The LayerNorm after the feed-forward block (`output.LayerNorm`).
    pub output_norm: LayerNorm,
    /// The number of attention heads; it divides the hidden size.
    pub num_heads: usize,
}

/// `BertLayer`: post-norm self-attention, then the feed-forward block.
///
/// Public so that architectures whose layers are BERT's under other weight names build it
/// from [`BertLayerWeights`] instead of copying it.
#[derive(Debug)]
pub struct BertLayer {
    attention: BertSelfAttention,
    attention_output: DenseResidualNorm,
    intermediate: Linear,
    activation: Activation,
    output: DenseResidualNorm,
}

impl BertLayer {
    /// A layer from its weights; an error when `num_heads` does not divide the hidden size
    /// (the width of `query`).
    pub fn from_weights(weights: BertLayerWeights) -> Result<Self> {
        let BertLayerWeights {
            query,
            key,
            value,
            attention_output,
            attention_norm,
            intermediate,
            activation,
            output,
            output_norm,
            num_heads,
        } = weights;
        let (hidden, _) = query.dims()?;
        if num_heads == 0 || hidden % num_heads != 0 {
            return Err(Error::input(format!(
                "{num_heads} attention heads do not divide the hidden size {hidden}: the config's head count \
                 must divide its hidden size"
            )));
        }
        Ok(Self {
            attention: BertSelfAttention::new(query, key, value, num_heads, hidden / num_heads),
            attention_output: DenseResidualNorm { dense: attention_output, layer_norm: attention_norm },
            intermediate,
            activation,
            output: DenseResidualNorm { dense: output, layer_norm: output_norm },
        })
    }

    fn load(vb: VarBuilder<'_>, cfg: &BertConfig) -> Result<Self> {
        let h = cfg.hidden_size;
        Ok(Self {
            attention: BertSelfAttention::load(vb.pp("attention.self"), cfg)?,
            attention_output: DenseResidualNorm::load(vb.pp("attention.output"), h, cfg)?,
            intermediate: linear(h, cfg.intermediate_size, vb.pp("intermediate.dense"))?,
            activation: cfg.hidden_act,
            output: DenseResidualNorm::load(vb.pp("output"), cfg.intermediate_size, cfg)?,
        })
    }

    /// The layer with RoFormer's rotary position embeddings in its self-attention; an error
    /// when `rotary` is not for this layer's head size.
    pub fn with_rotary(mut self, rotary: SinusoidalRotary) -> Result<Self> {
        rotary.check_head_dim(self.attention.head_dim)?;
        self.attention.rotary = Some(rotary);
        Ok(self)
    }

    /// `x` `[B, T, H]`; `mask` additive, broadcastable to `[B, heads, T, T]` (as
    /// [`BertEncoder::forward`] makes it).
    pub fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let attended = self.attention.forward(x, mask)?;
        let attended = self.attention_output.forward(&attended, x)?;
        let inner = self.activation.forward(&self.intermediate.forward(&attended)?)?;
        self.output.forward(&inner, &attended)
    }
}

/// The stack of [`BertLayer`]s with its attention mask (`BertEncoder`), bidirectional or
/// causal.
#[derive(Debug)]
pub struct BertEncoder {
    layers: Vec<BertLayer>,
    causal: bool,
}

impl BertEncoder {
    /// An encoder over `layers`; `causal` masks the future (a decoder, `is_decoder`).
    pub fn from_layers(layers: Vec<BertLayer>, causal: bool) -> Self {
        Self { layers, causal }
    }

    /// `encoder.layer.N` of a BERT checkpoint (`vb` is `encoder`).
    pub(crate) fn load(vb: VarBuilder<'_>, cfg: &BertConfig) -> Result<Self> {
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| BertLayer::load(vb.pp(format!("layer.{i}")), cfg))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self::from_layers(layers, cfg.is_decoder))
    }

    /// Run the layers on `hidden` `[B, T, H]`. `attention_mask` is `[B, T]`, non-zero for the
    /// tokens to attend to (checked; any dtype); `None` attends to every token.
    pub fn forward(&self, hidden: &Tensor, attention_mask: Option<&Tensor>) -> Result<Tensor> {
        let (batch, seq, _) = hidden.dims3()?;
        let dtype = softmax_dtype(hidden.dtype());
        let mask = additive_mask(attention_mask, (batch, seq), self.causal, dtype, hidden.device())?;
        let mut hidden = hidden.clone();
        for layer in &self.layers {
            hidden = layer.forward(&hidden, mask.as_ref())?;
        }
        Ok(hidden)
    }
}

/// BERT's post-LayerNorm stack, or the pre-LayerNorm one of a [`BertVariant`].
#[derive(Debug)]
enum Stack {
    PostNorm(BertEncoder),
    PreNorm { encoder: PreNormEncoder, causal: bool },
}

impl Stack {
    fn forward(&self, hidden: &Tensor, attention_mask: Option<&Tensor>) -> Result<Tensor> {
        match self {
            Self::PostNorm(encoder) => encoder.forward(hidden, attention_mask),
            Self::PreNorm { encoder, causal } => {
                let (batch, seq, _) = hidden.dims3()?;
                let dtype = softmax_dtype(hidden.dtype());
                let mask = additive_mask(attention_mask, (batch, seq), *causal, dtype, hidden.device())?;
                encoder.forward(hidden, mask.as_ref())
            }
        }
    }
}

/// The BERT encoder (`transformers`' `BertModel`), the base of every head.
///
/// Built by [`LoadModel::load`], it has a pooler exactly when the weights hold
/// `pooler.dense.weight`; otherwise `pooler_output` is `None` (where `transformers` would
/// initialise a random pooler). Heads build it with [`BertModel::new`].
///
/// With `is_decoder` the self-attention is causal. Cross-attention (`add_cross_attention`)
/// only acts on `encoder_hidden_states`, which autocandle does not take, so it is not loaded;
/// without them `transformers` skips it too.
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "BertModel")]
pub struct BertModel {
    embeddings: BertEmbeddings,
    encoder: Stack,
    pooler: Option<Linear>,
    config: BertConfig,
    device: Device,
    dtype: DType,
}

impl BertModel {
    /// Build the encoder from weights named as `transformers`' `BertModel` state dict
    /// (`embeddings.*`, `encoder.layer.N.*`, `pooler.dense.*`), with the pooler when
    /// `add_pooling_layer`.
    pub fn new(vb: VarBuilder<'_>, config: &BertConfig, add_pooling_layer: bool) -> Result<Self> {
        config.validate()?;
        Self::build(vb, config, &BertVariant::default(), add_pooling_layer)
    }

    /// [`BertModel::new`] for another member of the family: the network of `spec`'s variant,
    /// errors naming its model type. `vb` is the base model's root (not the head's).
    pub fn new_variant(vb: VarBuilder<'_>, spec: &BertSpec, add_pooling_layer: bool) -> Result<Self> {
        spec.config.validate_as(spec.model_type)?;
        Self::build(vb, &spec.config, &spec.variant, add_pooling_layer)
    }

    fn build(vb: VarBuilder<'_>, config: &BertConfig, variant: &BertVariant, add_pooling_layer: bool) -> Result<Self> {
        let embeddings = BertEmbeddings::load(vb.pp("embeddings"), config, variant)?;
        let encoder = match &variant.pre_norm {
            None => Stack::PostNorm(BertEncoder::load(vb.pp("encoder"), config)?),
            Some(names) => {
                Stack::PreNorm { encoder: PreNormEncoder::load(vb.clone(), config, names)?, causal: config.is_decoder }
            }
        };
        let pooler = if add_pooling_layer {
            Some(linear(config.hidden_size, config.hidden_size, vb.pp("pooler.dense"))?)
        } else {
            None
        };
        Ok(Self { embeddings, encoder, pooler, config: config.clone(), device: vb.device().clone(), dtype: vb.dtype() })
    }

    /// The config the model was built from.
    pub fn config(&self) -> &BertConfig {
        &self.config
    }

    /// Whether the model has a pooler (and so a `pooler_output`).
    pub fn has_pooler(&self) -> bool {
        self.pooler.is_some()
    }

    /// The word embedding matrix, `[vocab_size, hidden_size]`.
    pub fn word_embeddings(&self) -> &Tensor {
        self.embeddings.word_embeddings.embeddings()
    }

    /// The checked forward pass shared by every head.
    pub(crate) fn run(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let cfg = &self.config;
        let input_ids = inputs.input_ids()?;
        let (batch, seq) = dims2_int(input_ids, "input_ids")?;
        let position_ids = match &inputs.position_ids {
            Some(p) => {
                Some(checked_position_ids(p, (batch, seq), cfg.max_position_embeddings, "max_position_embeddings")?)
            }
            None if seq > cfg.max_position_embeddings => {
                return Err(Error::SequenceTooLong { len: seq, max: cfg.max_position_embeddings })
            }
            None => None,
        };
        let input_ids = ids_in_range(input_ids, "input_ids", cfg.vocab_size)?;
        let token_type_ids = match &inputs.token_type_ids {
            // A network without token types (BertGeneration) ignores them, as `transformers`.
            Some(_) if self.embeddings.token_type_embeddings.is_none() => None,
            Some(t) => {
                require_int(t, "token_type_ids")?;
                require_shape(t, "token_type_ids", &[batch, seq], "`input_ids`")?;
                Some(ids_in_range(t, "token_type_ids", cfg.type_vocab_size)?)
            }
            None => None,
        };
        let hidden = self.embeddings.forward(&input_ids, token_type_ids.as_ref(), position_ids.as_ref())?;
        let hidden = self.encoder.forward(&hidden, inputs.attention_mask.as_ref())?;
        let pooled = match &self.pooler {
            Some(dense) => {
                let first = hidden.narrow(1, 0, 1)?.squeeze(1)?;
                Some(dense.forward(&first)?.tanh()?)
            }
            None => None,
        };
        Ok(BaseModelOutput::new(hidden, pooled))
    }

    /// The pooled output, or an error for a model built without a pooler.
    pub(crate) fn pooled(output: BaseModelOutput) -> Result<Tensor> {
        output
            .pooler_output
            .ok_or_else(|| Error::Unsupported("this BERT model has no pooler (`pooler.dense`)".to_owned()))
    }
}

impl LoadModel for BertModel {
    type Config = BertConfig;
    const BASE_MODEL_PREFIX: &'static str = "bert";

    fn load(vb: VarBuilder<'_>, config: &BertConfig) -> Result<Self> {
        let add_pooling_layer = vb.contains_tensor("pooler.dense.weight");
        Self::new(vb, config, add_pooling_layer)
    }
}

impl PreTrainedModel for BertModel {
    fn device(&self) -> &Device {
        &self.device
    }

    fn dtype(&self) -> DType {
        self.dtype
    }
}

impl Encoder for BertModel {
    fn encode(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        self.run(inputs)
    }

    fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    fn pooled(&self, output: BaseModelOutput) -> Result<Tensor> {
        Self::pooled(output)
    }
}

impl Model for BertModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        self.run(inputs)
    }
}
