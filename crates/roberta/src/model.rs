//! The RoBERTa encoder: BERT's network (`autocandle-bert`), with positions counted from the
//! padding token (`RobertaEmbeddings.create_position_ids_from_input_ids`).

use autocandle_core::nn::{linear, Linear};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use autocandle_bert::BertModel;
use autocandle_core::heads::Encoder;
use autocandle_core::inputs::dims2_int;
use autocandle_core::{BaseModelOutput, Error, Model, ModelInputs, PreTrainedModel, Result};

use crate::config::RobertaSpec;

/// Position ids from token ids, as `transformers`' `create_position_ids_from_input_ids`:
/// along each row, the `k`-th token that is not `padding_idx` gets position
/// `padding_idx + k` (from `padding_idx + 1`), and every padding token gets `padding_idx`.
///
/// `input_ids` is `[batch, seq]` of integers; the result is `[batch, seq]` `u32`, on the
/// same device.
pub fn create_position_ids_from_input_ids(input_ids: &Tensor, padding_idx: u32) -> Result<Tensor> {
    Ok(position_ids(input_ids, padding_idx)?.0)
}

/// [`create_position_ids_from_input_ids`], and the largest number of non-padding tokens in a
/// row.
fn position_ids(input_ids: &Tensor, padding_idx: u32) -> Result<(Tensor, u32)> {
    let (batch, seq) = dims2_int(input_ids, "input_ids")?;
    let rows: Vec<Vec<i64>> = input_ids.to_dtype(DType::I64)?.to_vec2()?;
    let pad = i64::from(padding_idx);
    let mut positions = Vec::with_capacity(batch * seq);
    let mut longest = 0u32;
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
        longest = longest.max(seen);
    }
    Ok((Tensor::from_vec(positions, (batch, seq), input_ids.device())?, longest))
}

/// The RoBERTa encoder (`RobertaModel` without its head): [`BertModel`] run with RoBERTa's
/// position ids when the caller gives none. Token type ids default to zeros, as in BERT.
#[derive(Debug)]
pub struct RobertaEncoder {
    bert: BertModel,
    padding_idx: Option<u32>,
    model_type: &'static str,
}

impl RobertaEncoder {
    /// Build from weights named as `transformers`' `RobertaModel` state dict (`embeddings.*`,
    /// `encoder.layer.N.*`, `pooler.dense.*`), with the pooler when `add_pooling_layer`.
    pub(crate) fn new(vb: VarBuilder<'_>, spec: &RobertaSpec, add_pooling_layer: bool) -> Result<Self> {
        Ok(Self {
            bert: BertModel::new_variant(vb, &spec.bert_spec()?, add_pooling_layer)?,
            padding_idx: spec.padding_idx,
            model_type: spec.model_type,
        })
    }

    /// The word embedding matrix, `[vocab_size, hidden_size]`.
    pub fn word_embeddings(&self) -> &Tensor {
        self.bert.word_embeddings()
    }

    /// Whether the encoder has a pooler (and so a `pooler_output`).
    pub fn has_pooler(&self) -> bool {
        self.bert.has_pooler()
    }

    /// The most positions a sequence may use (`max_position_embeddings`).
    pub fn max_positions(&self) -> usize {
        self.bert.config().max_position_embeddings
    }

    /// The checked forward pass shared by every head.
    pub(crate) fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        if inputs.position_ids.is_some() {
            return Model::forward(&self.bert, inputs);
        }
        let input_ids = inputs.input_ids()?;
        let Some(padding_idx) = self.padding_idx else {
            return Err(Error::input(format!(
                "this `{}` config has no `pad_token_id`, from which RoBERTa counts positions: set \
                 `pad_token_id` in the config or pass `position_ids`",
                self.model_type
            )));
        };
        let (positions, longest) = position_ids(input_ids, padding_idx)?;
        // The last position row is `padding_idx + longest`.
        let allowed = self.max_positions().saturating_sub(padding_idx as usize + 1);
        if longest as usize > allowed {
            return Err(Error::SequenceTooLong { len: longest as usize, max: allowed });
        }
        Model::forward(&self.bert, &inputs.clone().with_position_ids(positions))
    }
}

impl Encoder for RobertaEncoder {
    fn encode(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        self.forward(inputs)
    }

    fn hidden_size(&self) -> usize {
        self.bert.config().hidden_size
    }

    fn pooled(&self, output: BaseModelOutput) -> Result<Tensor> {
        output.pooler_output.ok_or_else(|| {
            Error::Unsupported(format!("this `{}` model has no pooler (`pooler.dense`)", self.model_type))
        })
    }
}

impl PreTrainedModel for RobertaEncoder {
    fn device(&self) -> &Device {
        PreTrainedModel::device(&self.bert)
    }

    fn dtype(&self) -> DType {
        PreTrainedModel::dtype(&self.bert)
    }
}

/// `RobertaLMHead` (`lm_head`): dense, exact GELU, LayerNorm, then the decoder to vocabulary
/// logits, tied to the word embeddings (its bias to `lm_head.bias`).
#[derive(Debug)]
pub struct RobertaLmHead {
    dense: Linear,
    layer_norm: candle_nn::LayerNorm,
    decoder: Linear,
}

impl RobertaLmHead {
    /// `vb` is `lm_head`; `word_embeddings` the matrix a tied decoder shares.
    pub(crate) fn load(vb: VarBuilder<'_>, spec: &RobertaSpec, word_embeddings: &Tensor) -> Result<Self> {
        let h = spec.bert.hidden_size;
        Ok(Self {
            dense: linear(h, h, vb.pp("dense"))?,
            layer_norm: candle_nn::layer_norm(h, spec.bert.layer_norm_eps, vb.pp("layer_norm"))?,
            decoder: autocandle_bert::lm_decoder(vb, word_embeddings, spec.bert.tie_word_embeddings)?,
        })
    }

    pub(crate) fn forward(&self, hidden: &Tensor) -> Result<Tensor> {
        use candle_core::Module;
        let x = autocandle_core::Activation::Gelu.forward(&self.dense.forward(hidden)?)?;
        let x = self.layer_norm.forward(&x)?;
        Ok(self.decoder.forward(&x)?)
    }
}
