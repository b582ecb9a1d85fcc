//! The task heads on top of [`DistilBertModel`], one per `transformers` class.

use autocandle_core::nn::{linear, Linear};
use candle_core::{DType, Device, Module};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use autocandle_bert::tied_weight;
use autocandle_core::heads::{
    require_two_labels, Classifier, Encoder, MultipleChoice, Pooling, QuestionAnswerer, SequenceClassifier,
    TokenClassifier,
};
use autocandle_core::{
    Activation, AutoRegister, BaseModelOutput, ForMaskedLm, ForMultipleChoice, ForQuestionAnswering,
    ForSequenceClassification, ForTokenClassification, LoadModel, MaskedLmOutput, ModelInputs, MultipleChoiceOutput,
    PreTrainedModel, QuestionAnsweringOutput, Result, SequenceClassifierOutput, TokenClassifierOutput,
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

pretrained_model!(DistilBertForMaskedLM);

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
    inner: SequenceClassifier<DistilBertModel>,
}

impl LoadModel for DistilBertForSequenceClassification {
    type Config = DistilBertConfig;
    const BASE_MODEL_PREFIX: &'static str = "distilbert";

    fn load(vb: VarBuilder<'_>, config: &DistilBertConfig) -> Result<Self> {
        let distilbert = DistilBertModel::new(vb.pp("distilbert"), config)?;
        let classifier = pre_classifier(&vb, config.dim, config.labels.num_labels())?;
        Ok(Self { inner: SequenceClassifier::new(distilbert, Pooling::FirstToken, classifier) })
    }
}

impl ForSequenceClassification for DistilBertForSequenceClassification {
    fn forward(&self, inputs: &ModelInputs) -> Result<SequenceClassifierOutput> {
        self.inner.forward(inputs)
    }
}

/// DistilBERT with a multiple choice head (`DistilBertForMultipleChoice`): inputs are
/// `[batch, choices, seq]`, each choice is encoded on its own and scored from its first
/// token (`pre_classifier`, ReLU, `classifier`); `logits` are `[batch, choices]`.
#[derive(Debug, AutoRegister)]
#[auto(task = "multiple-choice")]
pub struct DistilBertForMultipleChoice {
    inner: MultipleChoice<DistilBertModel>,
}

impl LoadModel for DistilBertForMultipleChoice {
    type Config = DistilBertConfig;
    const BASE_MODEL_PREFIX: &'static str = "distilbert";

    fn load(vb: VarBuilder<'_>, config: &DistilBertConfig) -> Result<Self> {
        let distilbert = DistilBertModel::new(vb.pp("distilbert"), config)?;
        let classifier = pre_classifier(&vb, config.dim, 1)?;
        Ok(Self { inner: MultipleChoice::new(distilbert, Pooling::FirstToken, classifier) })
    }
}

impl ForMultipleChoice for DistilBertForMultipleChoice {
    fn forward(&self, inputs: &ModelInputs) -> Result<MultipleChoiceOutput> {
        self.inner.forward(inputs)
    }
}

/// `pre_classifier` (`dim -> dim`), ReLU, `classifier` (`dim -> outputs`).
fn pre_classifier(vb: &VarBuilder<'_>, dim: usize, outputs: usize) -> Result<Classifier> {
    Ok(Classifier::DenseRelu {
        dense: linear(dim, dim, vb.pp("pre_classifier"))?,
        out_proj: linear(dim, outputs, vb.pp("classifier"))?,
    })
}

/// DistilBERT with a classifier on every token (`DistilBertForTokenClassification`);
/// `logits` are `[batch, seq, num_labels]`.
#[derive(Debug, AutoRegister)]
#[auto(task = "token-classification")]
pub struct DistilBertForTokenClassification {
    inner: TokenClassifier<DistilBertModel>,
}

impl LoadModel for DistilBertForTokenClassification {
    type Config = DistilBertConfig;
    const BASE_MODEL_PREFIX: &'static str = "distilbert";

    fn load(vb: VarBuilder<'_>, config: &DistilBertConfig) -> Result<Self> {
        let distilbert = DistilBertModel::new(vb.pp("distilbert"), config)?;
        let classifier = linear(config.dim, config.labels.num_labels(), vb.pp("classifier"))?;
        Ok(Self { inner: TokenClassifier::new(distilbert, classifier) })
    }
}

impl ForTokenClassification for DistilBertForTokenClassification {
    fn forward(&self, inputs: &ModelInputs) -> Result<TokenClassifierOutput> {
        self.inner.forward(inputs)
    }
}

/// DistilBERT with a span extraction head (`DistilBertForQuestionAnswering`): `qa_outputs`
/// scores every token as the start and the end of the answer; `start_logits` and
/// `end_logits` are `[batch, seq]`. Needs `num_labels` = 2, as `transformers`.
#[derive(Debug, AutoRegister)]
#[auto(task = "question-answering")]
pub struct DistilBertForQuestionAnswering {
    inner: QuestionAnswerer<DistilBertModel>,
}

impl LoadModel for DistilBertForQuestionAnswering {
    type Config = DistilBertConfig;
    const BASE_MODEL_PREFIX: &'static str = "distilbert";

    fn load(vb: VarBuilder<'_>, config: &DistilBertConfig) -> Result<Self> {
        require_two_labels("distilbert", "DistilBertForQuestionAnswering", config.labels.num_labels())?;
        Ok(Self { inner: QuestionAnswerer::with_qa_outputs(DistilBertModel::new(vb.pp("distilbert"), config)?, vb)? })
    }
}

impl ForQuestionAnswering for DistilBertForQuestionAnswering {
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
            /// The underlying encoder.
            pub fn distilbert(&self) -> &DistilBertModel {
                self.inner.encoder()
            }
        }
    )*};
}

generic_head!(
    DistilBertForSequenceClassification,
    DistilBertForMultipleChoice,
    DistilBertForTokenClassification,
    DistilBertForQuestionAnswering
);

impl Encoder for DistilBertModel {
    fn encode(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        Ok(BaseModelOutput::new(self.run(inputs)?, None))
    }

    fn hidden_size(&self) -> usize {
        self.config().dim
    }
}
