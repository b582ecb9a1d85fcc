//! The task heads every llama-like architecture shares: `XForCausalLM` and
//! `GenericForSequenceClassification`, `GenericForTokenClassification`,
//! `GenericForQuestionAnswering` (`modeling_layers.py`).
//!
//! Each takes the name its base model sits under (`model`, or `transformer` for the question
//! answering heads of Llama and Qwen, kept by `transformers` for backward compatibility).

use autocandle_core::nn::{linear, linear_b, linear_no_bias, Linear};
use candle_core::{DType, Device, IndexOp, Module, Tensor};
use candle_nn::VarBuilder;

use autocandle_core::{Error, KvCache, ModelInputs, Result};

use crate::layers::soft_cap;
use crate::model::DecoderModel;
use crate::spec::DecoderSpec;

/// Whether two tensors of the same shape hold exactly the same values.
fn same_values(a: &Tensor, b: &Tensor) -> Result<bool> {
    if a.dims() != b.dims() {
        return Ok(false);
    }
    Ok(a.eq(b)?.min_all()?.to_scalar::<u8>()? == 1)
}

/// The decoder with its language-modelling head `lm_head` (`LlamaForCausalLM`), and Gemma-2's
/// final logit soft-capping.
///
/// Weight tying follows `transformers`' `tie_weights` at load: with `tie_word_embeddings`,
/// `lm_head` is `embed_tokens` (a checkpoint then usually has no `lm_head.weight`); when the
/// checkpoint holds both with different values they stay apart; when it holds only
/// `lm_head.weight`, the embeddings are tied to it instead.
#[derive(Debug, Clone)]
pub struct CausalLm {
    model: DecoderModel,
    lm_head: Linear,
    softcap: Option<f64>,
}

impl CausalLm {
    /// Load `model.*` (the base under `prefix`) and `lm_head` from `vb`.
    pub fn load(vb: VarBuilder<'_>, spec: &DecoderSpec, prefix: &str) -> Result<Self> {
        let (vocab, hidden) = (spec.vocab_size, spec.hidden_size);
        let base_vb = vb.pp(prefix);
        let has_head = vb.contains_tensor("lm_head.weight");
        let (model, head) = if spec.tie_word_embeddings {
            if !base_vb.contains_tensor("embed_tokens.weight") && has_head {
                let head = vb.get((vocab, hidden), "lm_head.weight")?;
                (DecoderModel::load_with_embeddings(base_vb, spec, Some(head.clone()))?, head)
            } else {
                let model = DecoderModel::load(base_vb, spec)?;
                let embed = model.embed_weight().clone();
                let head = if has_head {
                    let own = vb.get((vocab, hidden), "lm_head.weight")?;
                    if same_values(&own, &embed)? {
                        embed
                    } else {
                        own
                    }
                } else {
                    embed
                };
                (model, head)
            }
        } else {
            let model = DecoderModel::load(base_vb, spec)?;
            (model, linear_no_bias(hidden, vocab, vb.pp("lm_head"))?.weight().clone())
        };
        Ok(Self { model, lm_head: Linear::new(head, None), softcap: spec.options.final_logit_softcapping })
    }

    /// The decoder under the head.
    pub fn model(&self) -> &DecoderModel {
        &self.model
    }

    fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        soft_cap(&self.lm_head.forward(hidden)?, self.softcap)
    }

    /// Logits `[batch, seq, vocab]` for every position (the last
    /// [`ModelInputs::logits_to_keep`] ones if set).
    pub fn forward(&self, inputs: &ModelInputs) -> Result<Tensor> {
        self.logits(&inputs.keep_for_logits(&self.model.forward(inputs)?)?)
    }

    /// Whether generation must drop the cache before growing the context from `past` to
    /// `total` positions: with [`DecoderOptions::longrope_cache_reset`](crate::DecoderOptions)
    /// and `longrope`, when `total` first exceeds `original_max_position_embeddings` (the
    /// cached keys were rotated with the short factors).
    pub fn reset_cache_at(&self, past: usize, total: usize) -> bool {
        let spec = self.model.spec();
        spec.options.longrope_cache_reset && spec.rope.long_context_threshold().is_some_and(|t| total > t && past <= t)
    }

    /// Logits `[batch, new, vocab]` for the new tokens, with `cache`.
    pub fn forward_with_cache(&self, inputs: &ModelInputs, cache: &mut KvCache) -> Result<Tensor> {
        self.logits(&inputs.keep_for_logits(&self.model.forward_with_cache(inputs, cache)?)?)
    }
}

/// `GenericForSequenceClassification`: `score` (no bias) on the last token that is not
/// padding.
#[derive(Debug, Clone)]
pub struct SequenceClassifier {
    model: DecoderModel,
    score: Linear,
    pad_token_id: Option<i64>,
}

impl SequenceClassifier {
    /// Load the base under `prefix` and `score` (`num_labels` outputs).
    pub fn load(vb: VarBuilder<'_>, spec: &DecoderSpec, prefix: &str) -> Result<Self> {
        Ok(Self {
            model: DecoderModel::load(vb.pp(prefix), spec)?,
            score: linear_no_bias(spec.hidden_size, spec.num_labels, vb.pp("score"))?,
            pad_token_id: spec.pad_token_id,
        })
    }

    pub fn model(&self) -> &DecoderModel {
        &self.model
    }

    /// The index of the token each row is classified from, as `transformers` picks it: the
    /// rightmost token that is not `pad_token_id` (0 when all are), the last one when there is
    /// no pad token (then only a batch of one is accepted).
    pub fn pooled_indices(&self, input_ids: &Tensor) -> Result<Vec<usize>> {
        let (batch, seq) = input_ids.dims2()?;
        match self.pad_token_id {
            None if batch != 1 => Err(Error::input(format!(
                "cannot classify a batch of {batch} sequences without a padding token: set `pad_token_id` in the \
                 config (transformers refuses this too), or classify one sequence at a time"
            ))),
            None => Ok(vec![seq.saturating_sub(1)]),
            Some(pad) => {
                let rows = input_ids.to_dtype(DType::I64)?.to_vec2::<i64>()?;
                Ok(rows.iter().map(|row| row.iter().rposition(|&id| id != pad).unwrap_or(0)).collect())
            }
        }
    }

    /// Logits `[batch, num_labels]`.
    pub fn forward(&self, inputs: &ModelInputs) -> Result<Tensor> {
        let input_ids = inputs.input_ids()?;
        // Checked first: without a pad token a batch is refused before any work.
        let indices = match input_ids.dims() {
            [_, _] => self.pooled_indices(input_ids)?,
            _ => Vec::new(),
        };
        let hidden = self.model.forward(inputs)?;
        let rows = indices
            .iter()
            .enumerate()
            .map(|(b, &i)| Ok(hidden.i((b, i))?.unsqueeze(0)?))
            .collect::<Result<Vec<_>>>()?;
        Ok(self.score.forward(&Tensor::cat(&rows, 0)?)?)
    }
}

/// `GenericForTokenClassification`: `score` (with bias unless `token_classification_bias` is
/// false) on every token.
#[derive(Debug, Clone)]
pub struct TokenClassifier {
    model: DecoderModel,
    score: Linear,
}

impl TokenClassifier {
    /// Load the base under `prefix` and `score` (`num_labels` outputs).
    pub fn load(vb: VarBuilder<'_>, spec: &DecoderSpec, prefix: &str) -> Result<Self> {
        let bias = spec.options.token_classification_bias;
        Ok(Self {
            model: DecoderModel::load(vb.pp(prefix), spec)?,
            score: linear_b(spec.hidden_size, spec.num_labels, bias, vb.pp("score"))?,
        })
    }

    pub fn model(&self) -> &DecoderModel {
        &self.model
    }

    /// Logits `[batch, seq, num_labels]`.
    pub fn forward(&self, inputs: &ModelInputs) -> Result<Tensor> {
        Ok(self.score.forward(&self.model.forward(inputs)?)?)
    }
}

/// `GenericForQuestionAnswering`: `qa_outputs` (hidden -> 2, with bias) scores every token
/// as the start and the end of the answer.
#[derive(Debug, Clone)]
pub struct QuestionAnswerer {
    model: DecoderModel,
    qa_outputs: Linear,
}

impl QuestionAnswerer {
    /// Load the base under `prefix` and `qa_outputs`.
    pub fn load(vb: VarBuilder<'_>, spec: &DecoderSpec, prefix: &str) -> Result<Self> {
        Ok(Self {
            model: DecoderModel::load(vb.pp(prefix), spec)?,
            qa_outputs: linear(spec.hidden_size, 2, vb.pp("qa_outputs"))?,
        })
    }

    pub fn model(&self) -> &DecoderModel {
        &self.model
    }

    /// `(start_logits, end_logits)`, each `[batch, seq]`.
    pub fn forward(&self, inputs: &ModelInputs) -> Result<(Tensor, Tensor)> {
        let logits = self.qa_outputs.forward(&self.model.forward(inputs)?)?;
        let take = |i: usize| -> Result<Tensor> { Ok(logits.narrow(2, i, 1)?.squeeze(2)?.contiguous()?) };
        Ok((take(0)?, take(1)?))
    }
}

/// Device and dtype of a head, through its decoder.
pub trait HasDecoder {
    fn decoder(&self) -> &DecoderModel;

    fn device(&self) -> &Device {
        self.decoder().device()
    }

    fn dtype(&self) -> DType {
        self.decoder().dtype()
    }
}

impl HasDecoder for DecoderModel {
    fn decoder(&self) -> &DecoderModel {
        self
    }
}

macro_rules! has_decoder {
    ($($ty:ty),*) => {$(
        impl HasDecoder for $ty {
            fn decoder(&self) -> &DecoderModel {
                &self.model
            }
        }
    )*};
}

has_decoder!(CausalLm, SequenceClassifier, TokenClassifier, QuestionAnswerer);
