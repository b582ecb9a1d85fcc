//! The task heads on top of [`GPT2Model`], one per `transformers` class.

use autocandle_core::nn::{linear, linear_no_bias, Linear};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::VarBuilder;

use autocandle_core::{
    AutoRegister, CausalLmOutput, Error, ForCausalLm, ForQuestionAnswering, ForSequenceClassification,
    ForTokenClassification, KvCache, LoadModel, ModelInputs, PreTrainedModel, QuestionAnsweringOutput, Result,
    SequenceClassifierOutput, TokenClassifierOutput,
};

use crate::config::GPT2Config;
use crate::model::GPT2Model;

macro_rules! pretrained_model {
    ($($ty:ident),*) => {$(
        impl PreTrainedModel for $ty {
            fn device(&self) -> &Device {
                PreTrainedModel::device(&self.transformer)
            }

            fn dtype(&self) -> DType {
                PreTrainedModel::dtype(&self.transformer)
            }
        }

        impl $ty {
            /// The underlying decoder.
            pub fn transformer(&self) -> &GPT2Model {
                &self.transformer
            }
        }
    )*};
}

pretrained_model!(GPT2LMHeadModel, GPT2ForSequenceClassification, GPT2ForTokenClassification, GPT2ForQuestionAnswering);

/// Whether two tensors of the same shape hold exactly the same values.
fn same_values(a: &Tensor, b: &Tensor) -> Result<bool> {
    if a.dims() != b.dims() {
        return Ok(false);
    }
    let all_equal = a.eq(b)?.min_all()?.to_scalar::<u8>()?;
    Ok(all_equal == 1)
}

/// GPT-2 with a language modelling head (`GPT2LMHeadModel`): `lm_head`, without bias, maps
/// the final hidden states to vocabulary logits.
///
/// Follows `transformers`' weight tying at load time: with `tie_word_embeddings` the head is
/// the token embedding matrix `transformer.wte` (and a saved model has no `lm_head.weight`),
/// unless the checkpoint also holds a different `lm_head.weight` (then `transformers` leaves
/// them untied and so does this); a checkpoint with only `lm_head.weight` ties the other way.
#[derive(Debug, AutoRegister)]
#[auto(task = "causal-lm", class = "GPT2LMHeadModel")]
pub struct GPT2LMHeadModel {
    transformer: GPT2Model,
    lm_head: Linear,
}

impl LoadModel for GPT2LMHeadModel {
    type Config = GPT2Config;
    const BASE_MODEL_PREFIX: &'static str = "transformer";

    fn load(vb: VarBuilder<'_>, config: &GPT2Config) -> Result<Self> {
        config.validate()?;
        let (vocab, h) = (config.vocab_size, config.n_embd);
        let has_head = vb.contains_tensor("lm_head.weight");
        let (transformer, weight) = if !config.tie_word_embeddings {
            let transformer = GPT2Model::new(vb.pp("transformer"), config, None)?;
            (transformer, linear_no_bias(h, vocab, vb.pp("lm_head"))?.weight().clone())
        } else if has_head && !vb.contains_tensor("transformer.wte.weight") {
            let weight = vb.get((vocab, h), "lm_head.weight")?;
            (GPT2Model::new(vb.pp("transformer"), config, Some(weight.clone()))?, weight)
        } else {
            let transformer = GPT2Model::new(vb.pp("transformer"), config, None)?;
            let wte = transformer.word_embeddings().clone();
            let weight = if has_head {
                let own = vb.get((vocab, h), "lm_head.weight")?;
                if same_values(&own, &wte)? {
                    wte
                } else {
                    own
                }
            } else {
                wte
            };
            (transformer, weight)
        };
        Ok(Self { transformer, lm_head: Linear::new(weight, None) })
    }
}

impl GPT2LMHeadModel {
    /// The LM head weight `[vocab_size, n_embd]` (the token embeddings when tied).
    pub fn lm_head(&self) -> &Tensor {
        self.lm_head.weight()
    }
}

impl ForCausalLm for GPT2LMHeadModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<CausalLmOutput> {
        let hidden = inputs.keep_for_logits(&self.transformer.run(inputs, None)?)?;
        Ok(CausalLmOutput::new(self.lm_head.forward(&hidden)?))
    }

    fn forward_with_cache(&self, inputs: &ModelInputs, cache: &mut KvCache) -> Result<CausalLmOutput> {
        let hidden = inputs.keep_for_logits(&self.transformer.run(inputs, Some(cache))?)?;
        Ok(CausalLmOutput::new(self.lm_head.forward(&hidden)?))
    }

    fn supports_cache(&self) -> bool {
        true
    }

    fn max_positions(&self) -> Option<usize> {
        Some(self.transformer.config().n_positions)
    }
}

/// GPT-2 with a classifier on the last token (`GPT2ForSequenceClassification`): `score`,
/// without bias, `num_labels` outputs.
///
/// The last token of a row is, as in `transformers`, the rightmost one that is not
/// `pad_token_id` (left or right padding alike; the first one when every token is padding),
/// or the last column when the config has no `pad_token_id`, which then only works for a
/// batch of one.
#[derive(Debug, AutoRegister)]
#[auto(task = "sequence-classification", class = "GPT2ForSequenceClassification")]
pub struct GPT2ForSequenceClassification {
    transformer: GPT2Model,
    score: Linear,
}

impl LoadModel for GPT2ForSequenceClassification {
    type Config = GPT2Config;
    const BASE_MODEL_PREFIX: &'static str = "transformer";

    fn load(vb: VarBuilder<'_>, config: &GPT2Config) -> Result<Self> {
        Ok(Self {
            transformer: GPT2Model::new(vb.pp("transformer"), config, None)?,
            score: linear_no_bias(config.n_embd, config.labels.num_labels(), vb.pp("score"))?,
        })
    }
}

impl GPT2ForSequenceClassification {
    /// `[batch]` u32 index of the token each row is classified by.
    fn last_non_pad_token(&self, input_ids: &Tensor) -> Result<Tensor> {
        let (batch, seq) = input_ids.dims2()?;
        match self.transformer.config().pad_token_id {
            None if batch != 1 => Err(Error::input(
                "cannot handle batch sizes > 1 if no padding token is defined: set `pad_token_id` in the \
                 config (GPT-2 has none by default; the EOS token is the usual choice) or classify one row at a \
                 time",
            )),
            None => Ok(Tensor::full(seq as u32 - 1, batch, input_ids.device())?),
            Some(pad) => {
                // `(arange(seq) * (input_ids != pad)).argmax(-1)`: the indices of non-pad tokens
                // are distinct and all others are 0, so the maximum is the argmax.
                let non_pad = input_ids.to_dtype(DType::I64)?.ne(pad)?.to_dtype(DType::U32)?;
                let indices = Tensor::arange(0u32, seq as u32, input_ids.device())?.unsqueeze(0)?;
                Ok(non_pad.broadcast_mul(&indices)?.max(D::Minus1)?)
            }
        }
    }
}

impl ForSequenceClassification for GPT2ForSequenceClassification {
    fn forward(&self, inputs: &ModelInputs) -> Result<SequenceClassifierOutput> {
        let hidden = self.transformer.run(inputs, None)?;
        let logits = self.score.forward(&hidden)?;
        let (batch, _, labels) = logits.dims3()?;
        let last = self.last_non_pad_token(inputs.input_ids()?)?;
        let index = last.reshape((batch, 1, 1))?.broadcast_as((batch, 1, labels))?.contiguous()?;
        Ok(SequenceClassifierOutput::new(logits.gather(&index, 1)?.squeeze(1)?))
    }
}

/// GPT-2 with a classifier on every token (`GPT2ForTokenClassification`); `num_labels`
/// outputs per token.
#[derive(Debug, AutoRegister)]
#[auto(task = "token-classification", class = "GPT2ForTokenClassification")]
pub struct GPT2ForTokenClassification {
    transformer: GPT2Model,
    classifier: Linear,
}

impl LoadModel for GPT2ForTokenClassification {
    type Config = GPT2Config;
    const BASE_MODEL_PREFIX: &'static str = "transformer";

    fn load(vb: VarBuilder<'_>, config: &GPT2Config) -> Result<Self> {
        Ok(Self {
            transformer: GPT2Model::new(vb.pp("transformer"), config, None)?,
            classifier: linear(config.n_embd, config.labels.num_labels(), vb.pp("classifier"))?,
        })
    }
}

impl ForTokenClassification for GPT2ForTokenClassification {
    fn forward(&self, inputs: &ModelInputs) -> Result<TokenClassifierOutput> {
        let hidden = self.transformer.run(inputs, None)?;
        Ok(TokenClassifierOutput::new(self.classifier.forward(&hidden)?))
    }
}

/// GPT-2 with a span extraction head (`GPT2ForQuestionAnswering`): `qa_outputs` scores every
/// token as the start and the end of the answer (always 2 outputs, whatever `num_labels`
/// says, as in `transformers`).
#[derive(Debug, AutoRegister)]
#[auto(task = "question-answering", class = "GPT2ForQuestionAnswering")]
pub struct GPT2ForQuestionAnswering {
    transformer: GPT2Model,
    qa_outputs: Linear,
}

impl LoadModel for GPT2ForQuestionAnswering {
    type Config = GPT2Config;
    const BASE_MODEL_PREFIX: &'static str = "transformer";

    fn load(vb: VarBuilder<'_>, config: &GPT2Config) -> Result<Self> {
        Ok(Self {
            transformer: GPT2Model::new(vb.pp("transformer"), config, None)?,
            qa_outputs: linear(config.n_embd, 2, vb.pp("qa_outputs"))?,
        })
    }
}

impl ForQuestionAnswering for GPT2ForQuestionAnswering {
    fn forward(&self, inputs: &ModelInputs) -> Result<QuestionAnsweringOutput> {
        let hidden = self.transformer.run(inputs, None)?;
        let logits = self.qa_outputs.forward(&hidden)?;
        let take = |i: usize| -> Result<Tensor> { Ok(logits.narrow(2, i, 1)?.squeeze(2)?.contiguous()?) };
        Ok(QuestionAnsweringOutput::new(take(0)?, take(1)?))
    }
}
