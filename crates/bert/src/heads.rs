//! The task heads on top of [`BertModel`], one per `transformers` class.

use autocandle_core::heads::same_values;
use autocandle_core::nn::{linear, Linear};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{layer_norm, Init, LayerNorm, VarBuilder};

use autocandle_core::{
    Activation, AutoRegister, ForCausalLm, ForMaskedLm, ForMultipleChoice, ForNextSentencePrediction, ForPreTraining,
    ForQuestionAnswering, ForSequenceClassification, ForTokenClassification, LoadModel, ModelInputs, PreTrainedModel,
    Result,
};
use autocandle_core::{
    CausalLmOutput, MaskedLmOutput, MultipleChoiceOutput, NextSentencePredictorOutput, PreTrainingOutput,
    QuestionAnsweringOutput, SequenceClassifierOutput, TokenClassifierOutput,
};

use autocandle_core::heads::{
    require_two_labels, Classifier, MultipleChoice, Pooling, QuestionAnswerer, SequenceClassifier, TokenClassifier,
};

use crate::config::BertConfig;
use crate::model::BertModel;

/// `BertLMPredictionHead` (`cls.predictions`): transform (dense, activation, LayerNorm),
/// then the decoder to vocabulary logits.
#[derive(Debug)]
struct BertLmPredictionHead {
    dense: Linear,
    activation: Activation,
    layer_norm: LayerNorm,
    decoder: Linear,
}

impl BertLmPredictionHead {
    /// `vb` is `cls.predictions`; `word_embeddings` is the matrix a tied decoder shares.
    ///
    /// Follows `transformers`' weight tying at load time: with `tie_word_embeddings` the
    /// decoder is the word embedding matrix, unless the checkpoint also holds a different
    /// `decoder.weight` (then `transformers` leaves them untied and so does this). The bias
    /// is `decoder.bias` when present, else `cls.predictions.bias` (the tied source).
    fn load(vb: VarBuilder<'_>, cfg: &BertConfig, word_embeddings: &Tensor) -> Result<Self> {
        let h = cfg.hidden_size;
        let transform = vb.pp("transform");
        Ok(Self {
            dense: linear(h, h, transform.pp("dense"))?,
            activation: cfg.hidden_act,
            layer_norm: layer_norm(h, cfg.layer_norm_eps, transform.pp("LayerNorm"))?,
            decoder: lm_decoder(vb, word_embeddings, cfg.tie_word_embeddings)?,
        })
    }

    fn forward(&self, hidden: &Tensor) -> Result<Tensor> {
        let x = self.activation.forward(&self.dense.forward(hidden)?)?;
        let x = self.layer_norm.forward(&x)?;
        Ok(self.decoder.forward(&x)?)
    }
}

/// An output matrix tied to `source` (the word embeddings, `[vocab_size, hidden_size]`), as
/// `transformers` ties it at load time: with `tie` it is `source`, unless `vb` also holds a
/// different `name` (then `transformers` leaves them untied and so does this); without `tie`
/// it is `name`.
pub fn tied_weight(vb: &VarBuilder<'_>, name: &str, source: &Tensor, tie: bool) -> Result<Tensor> {
    if !tie {
        return Ok(vb.get(source.dims(), name)?);
    }
    if !vb.contains_tensor(name) {
        return Ok(source.clone());
    }
    let own = vb.get(source.dims(), name)?;
    Ok(if same_values(&own, source)? { source.clone() } else { own })
}

/// The decoder of a language modelling head whose bias is tied to the head's own `bias`
/// (`cls.predictions` in BERT, `lm_head` in RoBERTa; `vb` is that module): the weight is
/// [`tied_weight`] `decoder.weight`; the bias is `decoder.bias` when present, else `bias`
/// (the tied source, zeros when fresh).
pub fn lm_decoder(vb: VarBuilder<'_>, word_embeddings: &Tensor, tie: bool) -> Result<Linear> {
    let vocab = word_embeddings.dim(0)?;
    let weight = tied_weight(&vb, "decoder.weight", word_embeddings, tie)?;
    let bias = if vb.contains_tensor("decoder.bias") {
        if vb.contains_tensor("bias") {
            // `transformers` keeps the head's `bias` as a parameter even when the decoder
            // has its own bias: read it so that it is not reported as unused.
            vb.get(vocab, "bias")?;
        }
        vb.get(vocab, "decoder.bias")?
    } else {
        vb.get_with_hints(vocab, "bias", Init::Const(0.0))?
    };
    Ok(Linear::new(weight, Some(bias)))
}

macro_rules! pretrained_model {
    ($($ty:ident),*) => {$(
        impl PreTrainedModel for $ty {
            fn device(&self) -> &Device {
                PreTrainedModel::device(&self.bert)
            }

            fn dtype(&self) -> DType {
                PreTrainedModel::dtype(&self.bert)
            }
        }

        impl $ty {
            /// The underlying encoder.
            pub fn bert(&self) -> &BertModel {
                &self.bert
            }
        }
    )*};
}

pretrained_model!(BertForPreTraining, BertLMHeadModel, BertForMaskedLM, BertForNextSentencePrediction);

/// BERT with its two pretraining heads, masked LM and next sentence prediction
/// (`BertForPreTraining`).
#[derive(Debug, AutoRegister)]
#[auto(task = "pretraining", class = "BertForPreTraining")]
pub struct BertForPreTraining {
    bert: BertModel,
    predictions: BertLmPredictionHead,
    seq_relationship: Linear,
}

impl LoadModel for BertForPreTraining {
    type Config = BertConfig;
    const BASE_MODEL_PREFIX: &'static str = "bert";

    fn load(vb: VarBuilder<'_>, config: &BertConfig) -> Result<Self> {
        let bert = BertModel::new(vb.pp("bert"), config, true)?;
        let cls = vb.pp("cls");
        let predictions = BertLmPredictionHead::load(cls.pp("predictions"), config, bert.word_embeddings())?;
        let seq_relationship = linear(config.hidden_size, 2, cls.pp("seq_relationship"))?;
        Ok(Self { bert, predictions, seq_relationship })
    }
}

impl ForPreTraining for BertForPreTraining {
    fn forward(&self, inputs: &ModelInputs) -> Result<PreTrainingOutput> {
        let out = self.bert.run(inputs)?;
        let prediction_logits = self.predictions.forward(&out.last_hidden_state)?;
        let pooled = BertModel::pooled(out)?;
        let seq_relationship_logits = self.seq_relationship.forward(&pooled)?;
        Ok(PreTrainingOutput::new(prediction_logits, seq_relationship_logits))
    }
}

/// BERT with a language modelling head for causal LM (`BertLMHeadModel`); the attention is
/// causal when the config has `is_decoder` (as in `transformers`, bidirectional otherwise).
#[derive(Debug, AutoRegister)]
#[auto(task = "causal-lm", class = "BertLMHeadModel")]
pub struct BertLMHeadModel {
    bert: BertModel,
    predictions: BertLmPredictionHead,
}

impl LoadModel for BertLMHeadModel {
    type Config = BertConfig;
    const BASE_MODEL_PREFIX: &'static str = "bert";

    fn load(vb: VarBuilder<'_>, config: &BertConfig) -> Result<Self> {
        let bert = BertModel::new(vb.pp("bert"), config, false)?;
        let predictions = BertLmPredictionHead::load(vb.pp("cls.predictions"), config, bert.word_embeddings())?;
        Ok(Self { bert, predictions })
    }
}

impl ForCausalLm for BertLMHeadModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<CausalLmOutput> {
        let out = self.bert.run(inputs)?;
        Ok(CausalLmOutput::new(self.predictions.forward(&out.last_hidden_state)?))
    }
}

/// BERT with a masked language modelling head (`BertForMaskedLM`).
#[derive(Debug, AutoRegister)]
#[auto(task = "masked-lm", class = "BertForMaskedLM")]
pub struct BertForMaskedLM {
    bert: BertModel,
    predictions: BertLmPredictionHead,
}

impl LoadModel for BertForMaskedLM {
    type Config = BertConfig;
    const BASE_MODEL_PREFIX: &'static str = "bert";

    fn load(vb: VarBuilder<'_>, config: &BertConfig) -> Result<Self> {
        let bert = BertModel::new(vb.pp("bert"), config, false)?;
        let predictions = BertLmPredictionHead::load(vb.pp("cls.predictions"), config, bert.word_embeddings())?;
        Ok(Self { bert, predictions })
    }
}

impl ForMaskedLm for BertForMaskedLM {
    fn forward(&self, inputs: &ModelInputs) -> Result<MaskedLmOutput> {
        let out = self.bert.run(inputs)?;
        Ok(MaskedLmOutput::new(self.predictions.forward(&out.last_hidden_state)?))
    }
}

/// BERT with a next sentence prediction head (`BertForNextSentencePrediction`).
#[derive(Debug, AutoRegister)]
#[auto(task = "next-sentence-prediction", class = "BertForNextSentencePrediction")]
pub struct BertForNextSentencePrediction {
    bert: BertModel,
    seq_relationship: Linear,
}

impl LoadModel for BertForNextSentencePrediction {
    type Config = BertConfig;
    const BASE_MODEL_PREFIX: &'static str = "bert";

    fn load(vb: VarBuilder<'_>, config: &BertConfig) -> Result<Self> {
        Ok(Self {
            bert: BertModel::new(vb.pp("bert"), config, true)?,
            seq_relationship: linear(config.hidden_size, 2, vb.pp("cls.seq_relationship"))?,
        })
    }
}

impl ForNextSentencePrediction for BertForNextSentencePrediction {
    fn forward(&self, inputs: &ModelInputs) -> Result<NextSentencePredictorOutput> {
        let pooled = BertModel::pooled(self.bert.run(inputs)?)?;
        Ok(NextSentencePredictorOutput::new(self.seq_relationship.forward(&pooled)?))
    }
}

/// BERT with a classifier on the pooled output (`BertForSequenceClassification`); it has
/// `num_labels` outputs (`len(id2label)`, else `num_labels`, else 2).
#[derive(Debug, AutoRegister)]
#[auto(task = "sequence-classification", class = "BertForSequenceClassification")]
pub struct BertForSequenceClassification {
    inner: SequenceClassifier<BertModel>,
}

impl LoadModel for BertForSequenceClassification {
    type Config = BertConfig;
    const BASE_MODEL_PREFIX: &'static str = "bert";

    fn load(vb: VarBuilder<'_>, config: &BertConfig) -> Result<Self> {
        let bert = BertModel::new(vb.pp("bert"), config, true)?;
        let classifier = linear(config.hidden_size, config.labels.num_labels(), vb.pp("classifier"))?;
        Ok(Self { inner: SequenceClassifier::new(bert, Pooling::Pooler, Classifier::Linear(classifier)) })
    }
}

impl ForSequenceClassification for BertForSequenceClassification {
    fn forward(&self, inputs: &ModelInputs) -> Result<SequenceClassifierOutput> {
        self.inner.forward(inputs)
    }
}

/// BERT with a multiple choice head (`BertForMultipleChoice`): inputs are
/// `[batch, choices, seq]`, each choice is encoded on its own and scored from its pooled
/// output; logits are `[batch, choices]`.
#[derive(Debug, AutoRegister)]
#[auto(task = "multiple-choice", class = "BertForMultipleChoice")]
pub struct BertForMultipleChoice {
    inner: MultipleChoice<BertModel>,
}

impl LoadModel for BertForMultipleChoice {
    type Config = BertConfig;
    const BASE_MODEL_PREFIX: &'static str = "bert";

    fn load(vb: VarBuilder<'_>, config: &BertConfig) -> Result<Self> {
        let bert = BertModel::new(vb.pp("bert"), config, true)?;
        let classifier = linear(config.hidden_size, 1, vb.pp("classifier"))?;
        Ok(Self { inner: MultipleChoice::new(bert, Pooling::Pooler, Classifier::Linear(classifier)) })
    }
}

impl ForMultipleChoice for BertForMultipleChoice {
    fn forward(&self, inputs: &ModelInputs) -> Result<MultipleChoiceOutput> {
        self.inner.forward(inputs)
    }
}

/// BERT with a classifier on every token (`BertForTokenClassification`); `num_labels`
/// outputs per token.
#[derive(Debug, AutoRegister)]
#[auto(task = "token-classification", class = "BertForTokenClassification")]
pub struct BertForTokenClassification {
    inner: TokenClassifier<BertModel>,
}

impl LoadModel for BertForTokenClassification {
    type Config = BertConfig;
    const BASE_MODEL_PREFIX: &'static str = "bert";

    fn load(vb: VarBuilder<'_>, config: &BertConfig) -> Result<Self> {
        let bert = BertModel::new(vb.pp("bert"), config, false)?;
        let classifier = linear(config.hidden_size, config.labels.num_labels(), vb.pp("classifier"))?;
        Ok(Self { inner: TokenClassifier::new(bert, classifier) })
    }
}

impl ForTokenClassification for BertForTokenClassification {
    fn forward(&self, inputs: &ModelInputs) -> Result<TokenClassifierOutput> {
        self.inner.forward(inputs)
    }
}

/// BERT with a span extraction head (`BertForQuestionAnswering`): `qa_outputs` scores every
/// token as the start and the end of the answer. Needs `num_labels` = 2, as `transformers`.
#[derive(Debug, AutoRegister)]
#[auto(task = "question-answering", class = "BertForQuestionAnswering")]
pub struct BertForQuestionAnswering {
    inner: QuestionAnswerer<BertModel>,
}

impl LoadModel for BertForQuestionAnswering {
    type Config = BertConfig;
    const BASE_MODEL_PREFIX: &'static str = "bert";

    fn load(vb: VarBuilder<'_>, config: &BertConfig) -> Result<Self> {
        require_two_labels("bert", "BertForQuestionAnswering", config.labels.num_labels())?;
        Ok(Self { inner: QuestionAnswerer::with_qa_outputs(BertModel::new(vb.pp("bert"), config, false)?, vb)? })
    }
}

impl ForQuestionAnswering for BertForQuestionAnswering {
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
            pub fn bert(&self) -> &BertModel {
                self.inner.encoder()
            }
        }
    )*};
}

generic_head!(
    BertForSequenceClassification,
    BertForMultipleChoice,
    BertForTokenClassification,
    BertForQuestionAnswering
);
