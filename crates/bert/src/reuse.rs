//! The parts of the BERT network that encoders with BERT's maths but another shape reuse:
//! [`BertEmbeddings`] at another width with its checked inputs (ALBERT, ELECTRA), the layer
//! stack under BERT's names ([`BertEncoder::new`]), and the additive attention mask.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use autocandle_core::{Error, ModelInputs, Result};

use crate::config::BertConfig;
use crate::inputs::{additive_mask, checked_position_ids, dims2_int, ids_in_range, require_int, require_shape};
use crate::model::{BertEmbeddings, BertEncoder};

impl BertEmbeddings {
    /// The embeddings of a BERT checkpoint (`vb` is `embeddings`: `word_embeddings`,
    /// `position_embeddings`, `token_type_embeddings`, `LayerNorm`), `cfg.hidden_size` wide.
    /// An encoder whose embeddings are narrower than its layers (`embedding_size`) passes a
    /// config whose `hidden_size` is that width.
    pub fn new(vb: VarBuilder<'_>, cfg: &BertConfig) -> Result<Self> {
        Self::load(vb, cfg, &crate::variant::BertVariant::default())
    }

    /// The embeddings of `inputs` (`input_ids`, `token_type_ids`, `position_ids`), checked
    /// as `BertModel` checks them against `cfg` (ids in range, shapes, a sequence no longer
    /// than `max_position_embeddings`): `[batch, seq, cfg.hidden_size]`.
    pub fn embed(&self, inputs: &ModelInputs, cfg: &BertConfig) -> Result<Tensor> {
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
            Some(t) => {
                require_int(t, "token_type_ids")?;
                require_shape(t, "token_type_ids", &[batch, seq], "`input_ids`")?;
                Some(ids_in_range(t, "token_type_ids", cfg.type_vocab_size)?)
            }
            None => None,
        };
        self.forward(&input_ids, token_type_ids.as_ref(), position_ids.as_ref())
    }

    /// The word embedding matrix, `[vocab_size, width]`.
    pub fn word_embeddings(&self) -> &Tensor {
        self.word_embeddings.embeddings()
    }
}

impl BertEncoder {
    /// The layer stack of a BERT checkpoint (`vb` is `encoder`, layers `layer.N` named as
    /// `BertLayer`), causal when `cfg.is_decoder`.
    pub fn new(vb: VarBuilder<'_>, cfg: &BertConfig) -> Result<Self> {
        Self::load(vb, cfg)
    }
}

/// The additive attention mask [`BertEncoder::forward`] builds: `mask` is `[batch, seq]`,
/// non-zero for the tokens to attend to (checked); the result is 0 where a query may attend
/// and `f32::MIN` elsewhere, `[batch, 1, 1, seq]` (`[batch, 1, seq, seq]` when `causal`), in
/// f32 for half-precision `dtype`s, else in `dtype`; `None` when nothing is masked.
pub fn attention_mask(
    mask: Option<&Tensor>,
    (batch, seq): (usize, usize),
    causal: bool,
    dtype: DType,
    device: &Device,
) -> Result<Option<Tensor>> {
    let dtype = match dtype {
        DType::F16 | DType::BF16 => DType::F32,
        other => other,
    };
    additive_mask(mask, (batch, seq), causal, dtype, device)
}
