//! The MPNet encoder (`MPNetModel`): word and position embeddings, then BERT's post-norm
//! layers (`autocandle-bert`'s [`BertLayer`]) under MPNet's weight names, with the relative
//! position bias of `MPNetEncoder.compute_position_bias` added to every layer's scores.

use autocandle_core::nn::{linear, Linear};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{embedding, layer_norm, Embedding, LayerNorm, VarBuilder};

use autocandle_bert::{attention_mask, BertLayer, BertLayerWeights};
use autocandle_core::heads::Encoder;
use autocandle_core::inputs::{checked_position_ids, dims2_int, ids_in_range};
use autocandle_core::{AutoRegister, BaseModelOutput, Error, LoadModel, Model, ModelInputs, PreTrainedModel, Result};

use crate::config::MPNetConfig;

/// The bucket of a relative position `key - query`, as `MPNetEncoder.relative_position_bucket`
/// with its defaults (32 buckets, `max_distance` 128): buckets 0-15 for keys at or before the
/// query, 16-31 for keys after it; within each half, distances 0-7 have a bucket each and
/// larger ones share 8 log-spaced buckets up to 128 (computed in f32 and truncated, as
/// `transformers` does).
pub fn relative_position_bucket(relative_position: i64) -> u32 {
    const HALF: i64 = (MPNetConfig::NUM_BUCKETS / 2) as i64;
    const MAX_EXACT: i64 = HALF / 2;
    const MAX_DISTANCE: f64 = 128.0;
    let n = -relative_position;
    let mut bucket = if n < 0 { HALF } else { 0 };
    let n = n.abs();
    if n < MAX_EXACT {
        bucket += n;
    } else {
        let scale = (MAX_DISTANCE / MAX_EXACT as f64).ln() as f32;
        let log = ((n as f32) / MAX_EXACT as f32).ln() / scale * (HALF - MAX_EXACT) as f32;
        bucket += (MAX_EXACT + log as i64).min(HALF - 1);
    }
    bucket as u32
}

/// `MPNetEmbeddings`: word + position embeddings, then LayerNorm (no token types).
#[derive(Debug)]
struct MPNetEmbeddings {
    word_embeddings: Embedding,
    position_embeddings: Embedding,
    layer_norm: LayerNorm,
}

impl MPNetEmbeddings {
    fn load(vb: VarBuilder<'_>, cfg: &MPNetConfig) -> Result<Self> {
        let h = cfg.hidden_size;
        Ok(Self {
            word_embeddings: embedding(cfg.vocab_size, h, vb.pp("word_embeddings"))?,
            position_embeddings: embedding(cfg.max_position_embeddings, h, vb.pp("position_embeddings"))?,
            layer_norm: layer_norm(h, cfg.layer_norm_eps, vb.pp("LayerNorm"))?,
        })
    }

    /// `input_ids` `[B, T]` and `position_ids` `[B or 1, T]`, both `u32` and checked.
    fn forward(&self, input_ids: &Tensor, position_ids: &Tensor) -> Result<Tensor> {
        let words = self.word_embeddings.forward(input_ids)?;
        let positions = self.position_embeddings.forward(position_ids)?;
        Ok(self.layer_norm.forward(&words.broadcast_add(&positions)?)?)
    }
}

/// Position ids counted from `padding_idx` (`create_position_ids_from_input_ids`): the `k`-th
/// non-padding token of a row is at `padding_idx + k`, padding at `padding_idx`; with the
/// largest number of non-padding tokens in a row.
fn padding_position_ids(input_ids: &Tensor, padding_idx: u32) -> Result<(Tensor, usize)> {
    let (batch, seq) = dims2_int(input_ids, "input_ids")?;
    let rows: Vec<Vec<i64>> = input_ids.to_dtype(DType::I64)?.to_vec2()?;
    let pad = i64::from(padding_idx);
    let mut positions = Vec::with_capacity(batch * seq);
    let mut longest = 0usize;
    for row in &rows {
        let mut seen = 0u32;
        positions.extend(row.iter().map(|&id| {
            if id == pad {
                padding_idx
            } else {
                seen += 1;
                padding_idx.saturating_add(seen)
            }
        }));
        longest = longest.max(seen as usize);
    }
    Ok((Tensor::from_vec(positions, (batch, seq), input_ids.device())?, longest))
}

/// `MPNetLayer` `vb` (`encoder.layer.N`) as a [`BertLayer`]: the same computation, post-norm,
/// under other names.
fn load_layer(vb: VarBuilder<'_>, cfg: &MPNetConfig) -> Result<BertLayer> {
    let (h, eps) = (cfg.hidden_size, cfg.layer_norm_eps);
    let attn = vb.pp("attention.attn");
    BertLayer::from_weights(BertLayerWeights {
        query: linear(h, h, attn.pp("q"))?,
        key: linear(h, h, attn.pp("k"))?,
        value: linear(h, h, attn.pp("v"))?,
        attention_output: linear(h, h, attn.pp("o"))?,
        attention_norm: layer_norm(h, eps, vb.pp("attention.LayerNorm"))?,
        intermediate: linear(h, cfg.intermediate_size, vb.pp("intermediate.dense"))?,
        activation: cfg.hidden_act,
        output: linear(cfg.intermediate_size, h, vb.pp("output.dense"))?,
        output_norm: layer_norm(h, eps, vb.pp("output.LayerNorm"))?,
        num_heads: cfg.num_attention_heads,
    })
}

/// The MPNet encoder (`transformers`' `MPNetModel`), the base of every head.
///
/// Built by [`LoadModel::load`], it has a pooler (dense and tanh on the first token) exactly
/// when the weights hold `pooler.dense.weight`; otherwise `pooler_output` is `None` (where
/// `transformers` would initialise a random pooler). `token_type_ids` are ignored.
#[derive(Debug, AutoRegister)]
#[auto(task = "base")]
pub struct MPNetModel {
    embeddings: MPNetEmbeddings,
    layers: Vec<BertLayer>,
    /// `encoder.relative_attention_bias`, `[relative_attention_num_buckets, heads]`.
    relative_attention_bias: Tensor,
    pooler: Option<Linear>,
    config: MPNetConfig,
    device: Device,
    dtype: DType,
}

impl MPNetModel {
    /// Build the encoder from weights named as `transformers`' `MPNetModel` state dict
    /// (`embeddings.*`, `encoder.layer.N.*`, `encoder.relative_attention_bias`,
    /// `pooler.dense.*`), with the pooler when `add_pooling_layer`.
    pub fn new(vb: VarBuilder<'_>, config: &MPNetConfig, add_pooling_layer: bool) -> Result<Self> {
        config.validate()?;
        let embeddings = MPNetEmbeddings::load(vb.pp("embeddings"), config)?;
        let encoder = vb.pp("encoder");
        let layers = (0..config.num_hidden_layers)
            .map(|i| load_layer(encoder.pp(format!("layer.{i}")), config))
            .collect::<Result<Vec<_>>>()?;
        let relative_attention_bias = encoder.get(
            (config.relative_attention_num_buckets, config.num_attention_heads),
            "relative_attention_bias.weight",
        )?;
        let pooler = if add_pooling_layer {
            Some(linear(config.hidden_size, config.hidden_size, vb.pp("pooler.dense"))?)
        } else {
            None
        };
        Ok(Self {
            embeddings,
            layers,
            relative_attention_bias,
            pooler,
            config: config.clone(),
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// The config the model was built from.
    pub fn config(&self) -> &MPNetConfig {
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

    /// The relative position bias `[1, heads, seq, seq]` (`compute_position_bias`), in `dtype`.
    fn position_bias(&self, seq: usize, dtype: DType) -> Result<Tensor> {
        let buckets: Vec<u32> =
            (0..seq as i64).flat_map(|q| (0..seq as i64).map(move |k| relative_position_bucket(k - q))).collect();
        let buckets = Tensor::from_vec(buckets, seq * seq, &self.device)?;
        let heads = self.config.num_attention_heads;
        let values = self.relative_attention_bias.index_select(&buckets, 0)?.reshape((seq, seq, heads))?;
        Ok(values.permute((2, 0, 1))?.unsqueeze(0)?.to_dtype(dtype)?.contiguous()?)
    }

    /// The checked forward pass shared by every head.
    pub(crate) fn run(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let cfg = &self.config;
        let input_ids = inputs.input_ids()?;
        let (batch, seq) = dims2_int(input_ids, "input_ids")?;
        let position_ids = match &inputs.position_ids {
            Some(p) => checked_position_ids(p, (batch, seq), cfg.max_position_embeddings, "max_position_embeddings")?,
            None => {
                let (positions, longest) = padding_position_ids(input_ids, MPNetConfig::PADDING_IDX)?;
                if longest > cfg.max_tokens() {
                    return Err(Error::SequenceTooLong { len: longest, max: cfg.max_tokens() });
                }
                positions
            }
        };
        let input_ids = ids_in_range(input_ids, "input_ids", cfg.vocab_size)?;
        let mut hidden = self.embeddings.forward(&input_ids, &position_ids)?;
        // The bias is added to the scaled scores before the padding mask, as in
        // `MPNetSelfAttention`; both are additive, so they make one mask.
        let mask_dtype = match hidden.dtype() {
            DType::F16 | DType::BF16 => DType::F32,
            other => other,
        };
        let padding = attention_mask(inputs.attention_mask.as_ref(), (batch, seq), false, mask_dtype, &self.device)?;
        let mut bias = self.position_bias(seq, mask_dtype)?;
        if let Some(padding) = padding {
            bias = bias.broadcast_add(&padding)?.contiguous()?;
        }
        for layer in &self.layers {
            hidden = layer.forward(&hidden, Some(&bias))?;
        }
        let pooled = match &self.pooler {
            Some(dense) => Some(dense.forward(&hidden.narrow(1, 0, 1)?.squeeze(1)?)?.tanh()?),
            None => None,
        };
        Ok(BaseModelOutput::new(hidden, pooled))
    }
}

impl LoadModel for MPNetModel {
    type Config = MPNetConfig;
    const BASE_MODEL_PREFIX: &'static str = "mpnet";

    fn load(vb: VarBuilder<'_>, config: &MPNetConfig) -> Result<Self> {
        let add_pooling_layer = vb.contains_tensor("pooler.dense.weight");
        Self::new(vb, config, add_pooling_layer)
    }
}

impl PreTrainedModel for MPNetModel {
    fn device(&self) -> &Device {
        &self.device
    }

    fn dtype(&self) -> DType {
        self.dtype
    }
}

impl Encoder for MPNetModel {
    fn encode(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        self.run(inputs)
    }

    fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    fn pooled(&self, output: BaseModelOutput) -> Result<Tensor> {
        output
            .pooler_output
            .ok_or_else(|| Error::Unsupported("this MPNet model has no pooler (`pooler.dense`)".to_owned()))
    }
}

impl Model for MPNetModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        self.run(inputs)
    }
}
