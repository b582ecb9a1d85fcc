//! The RoFormer encoder (`RoFormerModel` in `transformers`, without a head): word and token type embeddings with their
//! LayerNorm (no position embeddings), `embeddings_project` when `embedding_size` differs
//! from `hidden_size`, then BERT's post-LayerNorm layers (`autocandle-bert`'s [`BertLayer`])
//! with rotary position embeddings in their self-attention (the sinusoidal table of
//! `encoder.embed_positions`, computed when the checkpoint lacks it). No pooler.

use autocandle_core::nn::{linear, Linear};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{embedding, layer_norm, Embedding, LayerNorm, VarBuilder};

use autocandle_bert::{BertEncoder, BertLayer, BertLayerWeights, SinusoidalRotary};
use autocandle_core::heads::Encoder;
use autocandle_core::inputs::{dims2_int, ids_in_range, require_int, require_shape};
use autocandle_core::{BaseModelOutput, Error, ModelInputs, PreTrainedModel, Result};

use crate::config::RoFormerConfig;

/// The RoFormer network (`transformers`' `RoFormerModel`), the base of every head.
#[derive(Debug)]
pub struct RoFormerEncoder {
    word_embeddings: Embedding,
    token_type_embeddings: Embedding,
    layer_norm: LayerNorm,
    embeddings_project: Option<Linear>,
    encoder: BertEncoder,
    config: RoFormerConfig,
    device: Device,
    dtype: DType,
}

impl RoFormerEncoder {
    /// Build from weights named as `transformers`' `RoFormerEncoder` state dict
    /// (`embeddings.*`, `embeddings_project.*`, `encoder.layer.N.*`); checks `config`.
    pub fn new(vb: VarBuilder<'_>, config: &RoFormerConfig) -> Result<Self> {
        config.validate()?;
        let (h, e, eps) = (config.hidden_size, config.embedding_size(), config.layer_norm_eps);
        let emb = vb.pp("embeddings");
        let embeddings_project = if e != h { Some(linear(e, h, vb.pp("embeddings_project"))?) } else { None };
        let head_dim = h / config.num_attention_heads;
        // The table is a weight of `transformers`' checkpoints (redrawn ones stay as saved);
        // when absent, `transformers` computes it, and so does this.
        let (positions, table) = (config.max_position_embeddings, "encoder.embed_positions.weight");
        let rotary = if vb.contains_tensor(table) {
            SinusoidalRotary::from_table(&vb.get((positions, head_dim), table)?, config.rotary_value)?
        } else {
            SinusoidalRotary::new(positions, head_dim, config.rotary_value, vb.dtype(), vb.device())?
        };
        let layers = (0..config.num_hidden_layers)
            .map(|i| {
                let vb = vb.pp(format!("encoder.layer.{i}"));
                let weights = BertLayerWeights {
                    query: linear(h, h, vb.pp("attention.self.query"))?,
                    key: linear(h, h, vb.pp("attention.self.key"))?,
                    value: linear(h, h, vb.pp("attention.self.value"))?,
                    attention_output: linear(h, h, vb.pp("attention.output.dense"))?,
                    attention_norm: layer_norm(h, eps, vb.pp("attention.output.LayerNorm"))?,
                    intermediate: linear(h, config.intermediate_size, vb.pp("intermediate.dense"))?,
                    activation: config.hidden_act,
                    output: linear(config.intermediate_size, h, vb.pp("output.dense"))?,
                    output_norm: layer_norm(h, eps, vb.pp("output.LayerNorm"))?,
                    num_heads: config.num_attention_heads,
                };
                BertLayer::from_weights(weights)?.with_rotary(rotary.clone())
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            word_embeddings: embedding(config.vocab_size, e, emb.pp("word_embeddings"))?,
            token_type_embeddings: embedding(config.type_vocab_size, e, emb.pp("token_type_embeddings"))?,
            layer_norm: layer_norm(e, eps, emb.pp("LayerNorm"))?,
            embeddings_project,
            encoder: BertEncoder::from_layers(layers, config.is_decoder),
            config: config.clone(),
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// The config the model was built from.
    pub fn config(&self) -> &RoFormerConfig {
        &self.config
    }

    /// The word embedding matrix, `[vocab_size, embedding_size]`.
    pub fn word_embeddings(&self) -> &Tensor {
        self.word_embeddings.embeddings()
    }

    /// The checked forward pass shared by every head. Positions are `0..seq` (the rotary
    /// table's rows), as in `transformers`, which takes no `position_ids`: given ones are
    /// ignored.
    pub(crate) fn run(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let cfg = &self.config;
        let input_ids = inputs.input_ids()?;
        let (batch, seq) = dims2_int(input_ids, "input_ids")?;
        if seq > cfg.max_position_embeddings {
            return Err(Error::SequenceTooLong { len: seq, max: cfg.max_position_embeddings });
        }
        let input_ids = ids_in_range(input_ids, "input_ids", cfg.vocab_size)?;
        let words = self.word_embeddings.forward(&input_ids)?;
        let token_types = match &inputs.token_type_ids {
            Some(t) => {
                require_int(t, "token_type_ids")?;
                require_shape(t, "token_type_ids", &[batch, seq], "`input_ids`")?;
                self.token_type_embeddings.forward(&ids_in_range(t, "token_type_ids", cfg.type_vocab_size)?)?
            }
            None => self.token_type_embeddings.embeddings().narrow(0, 0, 1)?,
        };
        let mut hidden = self.layer_norm.forward(&words.broadcast_add(&token_types)?)?;
        if let Some(project) = &self.embeddings_project {
            hidden = project.forward(&hidden)?;
        }
        let hidden = self.encoder.forward(&hidden, inputs.attention_mask.as_ref())?;
        Ok(BaseModelOutput::new(hidden, None))
    }
}

impl PreTrainedModel for RoFormerEncoder {
    fn device(&self) -> &Device {
        &self.device
    }

    fn dtype(&self) -> DType {
        self.dtype
    }
}

impl Encoder for RoFormerEncoder {
    fn encode(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        self.run(inputs)
    }

    fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }
}
