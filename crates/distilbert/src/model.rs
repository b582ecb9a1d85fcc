//! The DistilBERT encoder (`DistilBertModel`): word and position embeddings, then BERT's
//! post-norm layers (`autocandle-bert`'s [`BertLayer`]) under DistilBERT's weight names.

use autocandle_core::nn::linear;
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{embedding, layer_norm, Embedding, Init, LayerNorm, VarBuilder};

use autocandle_bert::{BertEncoder, BertLayer, BertLayerWeights};
use autocandle_core::inputs::{checked_position_ids, dims2_int, ids_in_range};
use autocandle_core::{
    AutoRegister, BaseModelOutput, Error, ForTextEncoding, LoadModel, Model, ModelInputs, PreTrainedModel, Result,
};

use crate::config::DistilBertConfig;

/// The sinusoidal position table of `transformers`' `create_sinusoidal_embeddings`:
/// `[n_pos, dim]`, row `pos` column `j` is `sin` (even `j`) or `cos` (odd `j`) of
/// `pos / 10000^(2 * (j / 2) / dim)`, computed in f64 and rounded to f32 as numpy and torch do.
pub fn sinusoidal_position_embeddings(n_pos: usize, dim: usize, device: &Device) -> Result<Tensor> {
    let mut table = Vec::with_capacity(n_pos * dim);
    for pos in 0..n_pos {
        for j in 0..dim {
            let angle = pos as f64 / 10000f64.powf((2 * (j / 2)) as f64 / dim as f64);
            table.push(if j % 2 == 0 { angle.sin() } else { angle.cos() } as f32);
        }
    }
    Ok(Tensor::from_vec(table, (n_pos, dim), device)?)
}

/// `Embeddings`: word + position embeddings, then LayerNorm (no token types).
#[derive(Debug)]
struct DistilBertEmbeddings {
    word_embeddings: Embedding,
    /// `[max_position_embeddings, dim]`.
    position_embeddings: Tensor,
    layer_norm: LayerNorm,
}

impl DistilBertEmbeddings {
    fn load(vb: VarBuilder<'_>, cfg: &DistilBertConfig) -> Result<Self> {
        let positions = (cfg.max_position_embeddings, cfg.dim);
        let position_embeddings = if cfg.sinusoidal_pos_embds && !vb.contains_tensor("position_embeddings.weight") {
            // What `transformers`' `_init_weights` puts there when the weights lack it.
            sinusoidal_position_embeddings(positions.0, positions.1, vb.device())?.to_dtype(vb.dtype())?
        } else {
            // Drawn as `candle_nn::embedding` draws the word embeddings when there are no weights.
            vb.get_with_hints(positions, "position_embeddings.weight", Init::Randn { mean: 0., stdev: 1. })?
        };
        Ok(Self {
            word_embeddings: embedding(cfg.vocab_size, cfg.dim, vb.pp("word_embeddings"))?,
            position_embeddings,
            layer_norm: layer_norm(cfg.dim, DistilBertConfig::LAYER_NORM_EPS, vb.pp("LayerNorm"))?,
        })
    }

    /// `input_ids` `[B, T]` and `position_ids` `[B or 1, T]` (`None` is `0..T`), both `u32`
    /// and checked.
    fn forward(&self, input_ids: &Tensor, position_ids: Option<&Tensor>) -> Result<Tensor> {
        let seq = input_ids.dim(1)?;
        let words = self.word_embeddings.forward(input_ids)?;
        let positions = match position_ids {
            Some(ids) => {
                let (rows, seq) = ids.dims2()?;
                let flat = self.position_embeddings.index_select(&ids.flatten_all()?, 0)?;
                flat.reshape((rows, seq, self.position_embeddings.dim(1)?))?
            }
            None => self.position_embeddings.narrow(0, 0, seq)?,
        };
        Ok(self.layer_norm.forward(&words.broadcast_add(&positions)?)?)
    }
}

/// `TransformerBlock` `vb` (`transformer.layer.N`) as a [`BertLayer`]: the same computation,
/// post-norm, under other names.
fn load_block(vb: VarBuilder<'_>, cfg: &DistilBertConfig) -> Result<BertLayer> {
    let (dim, eps) = (cfg.dim, DistilBertConfig::LAYER_NORM_EPS);
    let attention = vb.pp("attention");
    BertLayer::from_weights(BertLayerWeights {
        query: linear(dim, dim, attention.pp("q_lin"))?,
        key: linear(dim, dim, attention.pp("k_lin"))?,
        value: linear(dim, dim, attention.pp("v_lin"))?,
        attention_output: linear(dim, dim, attention.pp("out_lin"))?,
        attention_norm: layer_norm(dim, eps, vb.pp("sa_layer_norm"))?,
        intermediate: linear(dim, cfg.hidden_dim, vb.pp("ffn.lin1"))?,
        activation: cfg.activation,
        output: linear(cfg.hidden_dim, dim, vb.pp("ffn.lin2"))?,
        output_norm: layer_norm(dim, eps, vb.pp("output_layer_norm"))?,
        num_heads: cfg.n_heads,
    })
}

/// The DistilBERT encoder (`transformers`' `DistilBertModel`), the base of every head:
/// `last_hidden_state` `[batch, seq, dim]`, no pooler.
///
/// `token_type_ids` are ignored (DistilBERT has no token type embeddings and its tokenizer
/// makes none; tokenizers of BERT's kind that do are fine to use).
#[derive(Debug, AutoRegister)]
#[auto(task = "base")]
pub struct DistilBertModel {
    embeddings: DistilBertEmbeddings,
    transformer: BertEncoder,
    config: DistilBertConfig,
    device: Device,
    dtype: DType,
}

impl DistilBertModel {
    /// Build the encoder from weights named as `transformers`' `DistilBertModel` state dict
    /// (`embeddings.*`, `transformer.layer.N.*`).
    pub fn new(vb: VarBuilder<'_>, config: &DistilBertConfig) -> Result<Self> {
        config.validate()?;
        let embeddings = DistilBertEmbeddings::load(vb.pp("embeddings"), config)?;
        let layers = (0..config.n_layers)
            .map(|i| load_block(vb.pp(format!("transformer.layer.{i}")), config))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embeddings,
            transformer: BertEncoder::from_layers(layers, false),
            config: config.clone(),
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// The config the model was built from.
    pub fn config(&self) -> &DistilBertConfig {
        &self.config
    }

    /// The word embedding matrix, `[vocab_size, dim]`.
    pub fn word_embeddings(&self) -> &Tensor {
        self.embeddings.word_embeddings.embeddings()
    }

    /// The checked forward pass shared by every head: the last hidden state `[B, T, dim]`.
    pub(crate) fn run(&self, inputs: &ModelInputs) -> Result<Tensor> {
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
        let hidden = self.embeddings.forward(&input_ids, position_ids.as_ref())?;
        self.transformer.forward(&hidden, inputs.attention_mask.as_ref())
    }
}

impl LoadModel for DistilBertModel {
    type Config = DistilBertConfig;
    const BASE_MODEL_PREFIX: &'static str = "distilbert";

    fn load(vb: VarBuilder<'_>, config: &DistilBertConfig) -> Result<Self> {
        Self::new(vb, config)
    }
}

impl PreTrainedModel for DistilBertModel {
    fn device(&self) -> &Device {
        &self.device
    }

    fn dtype(&self) -> DType {
        self.dtype
    }
}

impl Model for DistilBertModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        Ok(BaseModelOutput::new(self.run(inputs)?, None))
    }
}

impl ForTextEncoding for DistilBertModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        Model::forward(self, inputs)
    }
}

/// [`DistilBertModel`] registered as the text encoder (`AutoModelForTextEncoding` gives a
/// `DistilBertModel`).
#[derive(Debug, AutoRegister)]
#[auto(task = "text-encoding", class = "DistilBertModel")]
struct TextEncoding(DistilBertModel);

impl LoadModel for TextEncoding {
    type Config = DistilBertConfig;
    const BASE_MODEL_PREFIX: &'static str = DistilBertModel::BASE_MODEL_PREFIX;

    fn load(vb: VarBuilder<'_>, config: &DistilBertConfig) -> Result<Self> {
        DistilBertModel::new(vb, config).map(Self)
    }
}

impl PreTrainedModel for TextEncoding {
    fn device(&self) -> &Device {
        PreTrainedModel::device(&self.0)
    }

    fn dtype(&self) -> DType {
        PreTrainedModel::dtype(&self.0)
    }
}

impl ForTextEncoding for TextEncoding {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        Model::forward(&self.0, inputs)
    }
}
