//! The task heads on top of [`GPT2Model`], one per `transformers` class.

use autocandle_core::nn::{linear, linear_no_bias, Linear};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;

use autocandle_core::{
    AutoRegister, CausalLmOutput, ForCausalLm, ForQuestionAnswering, ForSequenceClassification, ForTokenClassification,
    KvCache, LoadModel, ModelInputs, PreTrainedModel, QuestionAnsweringOutput, Result, SequenceClassifierOutput,
    TokenClassifierOutput,
};

use autocandle_core::heads::{
    same_values, Classifier, Encoder, Pooling, QuestionAnswerer, SequenceClassifier, TokenClassifier,
};
use autocandle_core::BaseModelOutput;

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

pretrained_model!(GPT2LMHeadModel);

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
    inner: SequenceClassifier<GPT2Model>,
}

impl LoadModel for GPT2ForSequenceClassification {
    type Config = GPT2Config;
    const BASE_MODEL_PREFIX: &'static str = "transformer";

    fn load(vb: VarBuilder<'_>, config: &GPT2Config) -> Result<Self> {
        let transformer = GPT2Model::new(vb.pp("transformer"), config, None)?;
        let score = linear_no_bias(config.n_embd, config.labels.num_labels(), vb.pp("score"))?;
        let pooling = Pooling::LastNonPad { pad_token_id: config.pad_token_id };
        Ok(Self { inner: SequenceClassifier::new(transformer, pooling, Classifier::Linear(score)) })
    }
}

impl ForSequenceClassification for GPT2ForSequenceClassification {
    fn forward(&self, inputs: &ModelInputs) -> Result<SequenceClassifierOutput> {
        self.inner.forward(inputs)
    }
}

/// GPT-2 with a classifier on every token (`GPT2ForTokenClassification`); `num_labels`
/// outputs per token.
#[derive(Debug, AutoRegister)]
#[auto(task = "token-classification", class = "GPT2ForTokenClassification")]
pub struct GPT2ForTokenClassification {
    inner: TokenClassifier<GPT2Model>,
}

impl LoadModel for GPT2ForTokenClassification {
    type Config = GPT2Config;
    const BASE_MODEL_PREFIX: &'static str = "transformer";

    fn load(vb: VarBuilder<'_>, config: &GPT2Config) -> Result<Self> {
        let transformer = GPT2Model::new(vb.pp("transformer"), config, None)?;
        let classifier = linear(config.n_embd, config.labels.num_labels(), vb.pp("classifier"))?;
        Ok(Self { inner: TokenClassifier::new(transformer, classifier) })
    }
}

impl ForTokenClassification for GPT2ForTokenClassification {
    fn forward(&self, inputs: &ModelInputs) -> Result<TokenClassifierOutput> {
        self.inner.forward(inputs)
    }
}

/// GPT-2 with a span extraction head (`GPT2ForQuestionAnswering`): `qa_outputs` scores every
/// token as the start and the end of the answer (always 2 outputs, whatever `num_labels`
/// says, as in `transformers`).
#[derive(Debug, AutoRegister)]
#[auto(task = "question-answering", class = "GPT2ForQuestionAnswering")]
pub struct GPT2ForQuestionAnswering {
    inner: QuestionAnswerer<GPT2Model>,
}

impl LoadModel for GPT2ForQuestionAnswering {
    type Config = GPT2Config;
    const BASE_MODEL_PREFIX: &'static str = "transformer";

    fn load(vb: VarBuilder<'_>, config: &GPT2Config) -> Result<Self> {
        Ok(Self { inner: QuestionAnswerer::with_qa_outputs(GPT2Model::new(vb.pp("transformer"), config, None)?, vb)? })
    }
}

impl ForQuestionAnswering for GPT2ForQuestionAnswering {
    fn forward(&self, inputs: &ModelInputs) -> Result<QuestionAnsweringOutput> {
        self.inner.forward(inputs)
    }
}

macro_rules! generic_head {
    ($($ty:ident),*) => {$(
        impl PreTrainedModel for $ty {
            fn device(&self) -> &Device {
                PreTrainedModel::device(&self.inner)
            }

            fn dtype(&self) -> DType {
                PreTrainedModel::dtype(&self.inner)
            }
        }

        impl $ty {
            /// The underlying decoder.
            pub fn transformer(&self) -> &GPT2Model {
                self.inner.encoder()
            }
        }
    )*};
}

generic_head!(GPT2ForSequenceClassification, GPT2ForTokenClassification, GPT2ForQuestionAnswering);

impl Encoder for GPT2Model {
    fn encode(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        Ok(BaseModelOutput::new(self.run(inputs, None)?, None))
    }

    fn hidden_size(&self) -> usize {
        self.config().n_embd
    }
}
