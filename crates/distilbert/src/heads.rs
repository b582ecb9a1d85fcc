//! The task heads on top of [`DistilBertModel`], one per `transformers` class.

use autocandle_core::nn::{linear, Linear};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use autocandle_bert::{flatten_choices, tied_weight};
use autocandle_core::{
    Activation, AutoRegister, Error, ForMaskedLm, ForMultipleChoice, ForQuestionAnswering, ForSequenceClassification,
    ForTokenClassification, LoadModel, MaskedLmOutput, ModelInputs, MultipleChoiceOutput, PreTrainedModel,
    QuestionAnsweringOutput, Result, SequenceClassifierOutput, TokenClassifierOutput,
};

use crate::config::DistilBertConfig;
use crate::model::DistilBertModel;

macro_rules! pretrained_model {
    ($($ty:ident),*) => {$(
        impl PreTrainedModel for $ty {
            fn device(&self) -> &Device {
                PreTrainedModel::device(&self.distilbert)
            }

            fn dtype(&self) -> DType {
                PreTrainedModel::dtype(&self.distilbert)
            }
        }

        impl $ty {
            /// The underlying encoder.
            pub fn distilbert(&self) -> &DistilBertModel {
                &self.distilbert
            }
        }
    )*};
}

pretrained_model!(
    DistilBertForMaskedLM,
    DistilBertForSequenceClassification,
    DistilBertForMultipleChoice,
    DistilBertForTokenClassification,
    DistilBertForQuestionAnswering
);

/// The first token's state of `hidden` `[B, T, H]`: `[B, H]`.
fn first_token(hidden: &Tensor) -> Result<Tensor> {
    Ok(hidden.narrow(1, 0, 1)?.squeeze(1)?)
}

/// DistilBERT with a masked language modelling head (`DistilBertForMaskedLM`):
/// `vocab_transform`, the activation, `vocab_layer_norm`, then `vocab_projector`, whose
/// weight is tied to the word embeddings; `logits` are `[batch, seq, vocab_size]`.
#[derive(Debug, AutoRegister)]
#[auto(task = "masked-lm")]
pub struct DistilBertForMaskedLM {
    distilbert: DistilBertModel,
    vocab_transform: Linear,
    activation: Activation,
    vocab_layer_norm: LayerNorm,
    vocab_projector: Linear,
}

impl LoadModel for DistilBertForMaskedLM {
    type Config = DistilBertConfig;
    const BASE_MODEL_PREFIX: &'static str = "distilbert";

    fn load(vb: VarBuilder<'_>, config: &DistilBertConfig) -> Result<Self> {
        let distilbert = DistilBertModel::new(vb.pp("distilbert"), config)?;
        let dim = config.dim;
        let projector = vb.pp("vocab_projector");
        let weight = tied_weight(&projector, "weight", distilbert.word_embeddings(), config.tie_word_embeddings)?;
        let bias = projector.get(config.vocab_size, "bias")?;
        Ok(Self {
            vocab_transform: linear(dim, dim, vb.pp("vocab_transform"))?,
            activation: config.activation,
            vocab_layer_norm: layer_norm(dim, DistilBertConfig::LAYER_NORM_EPS, vb.pp("vocab_layer_norm"))?,
            vocab_projector: Linear::new(weight, Some(bias)),
            distilbert,
        })
    }
}

impl ForMaskedLm for DistilBertForMaskedLM {
    fn forward(&self, inputs: &ModelInputs) -> Result<MaskedLmOutput> {
        let hidden = self.distilbert.run(inputs)?;
        let x = self.activation.forward(&self.vocab_transform.forward(&hidden)?)?;
        let x = self.vocab_layer_norm.forward(&x)?;
        Ok(MaskedLmOutput::new(self.vocab_projector.forward(&x)?))
    }
}

/// DistilBERT with a classifier on the first token (`DistilBertForSequenceClassification`):
/// `pre_classifier`, ReLU, then `classifier`; `logits` are `[batch, num_labels]`
/// (`len(id2label)`, else `num_labels`, else 2).
#[derive(Debug, AutoRegister)]
#[auto(task = "sequence-classification")]
pub struct DistilBertForSequenceClassification {
    distilbert: DistilBertModel,
    pre_classifier: Linear,
    classifier: Linear,
}

impl LoadModel for DistilBertForSequenceClassification {
    type Config = DistilBertConfig;
    const BASE_MODEL_PREFIX: &'static str = "distilbert";

    fn load(vb: VarBuilder<'_>, config: &DistilBertConfig) -> Result<Self> {
        let dim = config.dim;
        Ok(Self {
            distilbert: DistilBertModel::new(vb.pp("distilbert"), config)?,
            pre_classifier: linear(dim, dim, vb.pp("pre_classifier"))?,
            classifier: linear(dim, config.labels.num_labels(), vb.pp("classifier"))?,
        })
    }
}

impl ForSequenceClassification for DistilBertForSequenceClassification {
    fn forward(&self, inputs: &ModelInputs) -> Result<SequenceClassifierOutput> {
        let first = first_token(&self.distilbert.run(inputs)?)?;
        let pooled = self.pre_classifier.forward(&first)?.relu()?;
        Ok(SequenceClassifierOutput::new(self.classifier.forward(&pooled)?))
    }
}

/// DistilBERT with a multiple choice head (`DistilBertForMultipleChoice`): inputs are
/// `[batch, choices, seq]`, each choice is encoded on its own and scored from its first
/// token (`pre_classifier`, ReLU, `classifier`); `logits` are `[batch, choices]`.
#[derive(Debug, AutoRegister)]
#[auto(task = "multiple-choice")]
pub struct DistilBertForMultipleChoice {
    distilbert: DistilBertModel,
    pre_classifier: Linear,
    classifier: Linear,
}

impl LoadModel for DistilBertForMultipleChoice {
    type Config = DistilBertConfig;
    const BASE_MODEL_PREFIX: &'static str = "distilbert";

    fn load(vb: VarBuilder<'_>, config: &DistilBertConfig) -> Result<Self> {
        let dim = config.dim;
        Ok(Self {
            distilbert: DistilBertModel::new(vb.pp("distilbert"), config)?,
            pre_classifier: linear(dim, dim, vb.pp("pre_classifier"))?,
            classifier: linear(dim, 1, vb.pp("classifier"))?,
        })
    }
}

impl ForMultipleChoice for DistilBertForMultipleChoice {
    fn forward(&self, inputs: &ModelInputs) -> Result<MultipleChoiceOutput> {
        let (flat, (batch, choices)) = flatten_choices(inputs)?;
        let first = first_token(&self.distilbert.run(&flat)?)?;
        let pooled = self.pre_classifier.forward(&first)?.relu()?;
        let logits = self.classifier.forward(&pooled)?.reshape((batch, choices))?;
        Ok(MultipleChoiceOutput::new(logits))
    }
}

/// DistilBERT with a classifier on every token (`DistilBertForTokenClassification`);
/// `logits` are `[batch, seq, num_labels]`.
#[derive(Debug, AutoRegister)]
#[auto(task = "token-classification")]
pub struct DistilBertForTokenClassification {
    distilbert: DistilBertModel,
    classifier: Linear,
}

impl LoadModel for DistilBertForTokenClassification {
    type Config = DistilBertConfig;
    const BASE_MODEL_PREFIX: &'static str = "distilbert";

    fn load(vb: VarBuilder<'_>, config: &DistilBertConfig) -> Result<Self> {
        Ok(Self {
            distilbert: DistilBertModel::new(vb.pp("distilbert"), config)?,
            classifier: linear(config.dim, config.labels.num_labels(), vb.pp("classifier"))?,
        })
    }
}

impl ForTokenClassification for DistilBertForTokenClassification {
    fn forward(&self, inputs: &ModelInputs) -> Result<TokenClassifierOutput> {
        let hidden = self.distilbert.run(inputs)?;
        Ok(TokenClassifierOutput::new(self.classifier.forward(&hidden)?))
    }
}

/// DistilBERT with a span extraction head (`DistilBertForQuestionAnswering`): `qa_outputs`
/// scores every token as the start and the end of the answer; `start_logits` and
/// `end_logits` are `[batch, seq]`. Needs `num_labels` = 2, as `transformers`.
#[derive(Debug, AutoRegister)]
#[auto(task = "question-answering")]
pub struct DistilBertForQuestionAnswering {
    distilbert: DistilBertModel,
    qa_outputs: Linear,
}

impl LoadModel for DistilBertForQuestionAnswering {
    type Config = DistilBertConfig;
    const BASE_MODEL_PREFIX: &'static str = "distilbert";

    fn load(vb: VarBuilder<'_>, config: &DistilBertConfig) -> Result<Self> {
        let num_labels = config.labels.num_labels();
        if num_labels != 2 {
            return Err(Error::config(
                "distilbert",
                format!(
                    "DistilBertForQuestionAnswering needs 2 labels (start and end), the config has \
                     {num_labels}: set `num_labels` to 2"
                ),
            ));
        }
        Ok(Self {
            distilbert: DistilBertModel::new(vb.pp("distilbert"), config)?,
            qa_outputs: linear(config.dim, num_labels, vb.pp("qa_outputs"))?,
        })
    }
}

impl ForQuestionAnswering for DistilBertForQuestionAnswering {
    fn forward(&self, inputs: &ModelInputs) -> Result<QuestionAnsweringOutput> {
        let logits = self.qa_outputs.forward(&self.distilbert.run(inputs)?)?;
        let take = |i: usize| -> Result<Tensor> { Ok(logits.narrow(2, i, 1)?.squeeze(2)?.contiguous()?) };
        Ok(QuestionAnsweringOutput::new(take(0)?, take(1)?))
    }
}
