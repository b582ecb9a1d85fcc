//! The task heads on top of [`BertModel`], one per `transformers` class, which
//! `autocandle_core::register_heads!` (`family: crate`) turns into registered types.
//!
//! The sequence classification, multiple choice, token classification and question answering
//! heads are `autocandle_core::heads`' generic ones over [`BertModel`] (classifier on the
//! pooled output for sequences and choices, on every token for tokens, `qa_outputs` for
//! spans); the language modelling and next sentence heads are BERT's own (`cls.*`).

use autocandle_core::heads::same_values;
use autocandle_core::nn::{linear, Linear};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{layer_norm, Init, LayerNorm, VarBuilder};

use autocandle_core::{
    Activation, BaseModelOutput, CausalLmOutput, ForCausalLm, ForMaskedLm, ForNextSentencePrediction, ForPreTraining,
    ForTextEncoding, MaskedLmOutput, Model, ModelInputs, NextSentencePredictorOutput, PreTrainedModel,
    PreTrainingOutput, Result,
};

use autocandle_core::heads::{
    require_two_labels, Classifier, MultipleChoice, Pooling, QuestionAnswerer, SequenceClassifier, TokenClassifier,
};

use crate::config::BertConfig;
use crate::model::BertModel;
use crate::variant::BertSpec;

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

/// BERT with its language modelling head (`cls.predictions`): `BertForMaskedLM`, and
/// `BertLMHeadModel`, whose attention is causal when the config has `is_decoder` (as in
/// `transformers`, bidirectional otherwise). `logits` are `[batch, seq, vocab_size]`.
#[derive(Debug)]
pub struct BertLm {
    bert: BertModel,
    predictions: BertLmPredictionHead,
}

impl BertLm {
    /// The underlying encoder.
    pub fn bert(&self) -> &BertModel {
        &self.bert
    }

    fn logits(&self, inputs: &ModelInputs) -> Result<Tensor> {
        self.predictions.forward(&self.bert.run(inputs)?.last_hidden_state)
    }
}

impl ForMaskedLm for BertLm {
    fn forward(&self, inputs: &ModelInputs) -> Result<MaskedLmOutput> {
        Ok(MaskedLmOutput::new(self.logits(inputs)?))
    }
}

impl ForCausalLm for BertLm {
    fn forward(&self, inputs: &ModelInputs) -> Result<CausalLmOutput> {
        Ok(CausalLmOutput::new(self.logits(inputs)?))
    }
}

/// BERT with its two pretraining heads, masked LM (`cls.predictions`) and next sentence
/// prediction (`cls.seq_relationship`, on the pooled output).
#[derive(Debug)]
pub struct BertPreTraining {
    bert: BertModel,
    predictions: BertLmPredictionHead,
    seq_relationship: Linear,
}

impl BertPreTraining {
    /// The underlying encoder.
    pub fn bert(&self) -> &BertModel {
        &self.bert
    }
}

impl ForPreTraining for BertPreTraining {
    fn forward(&self, inputs: &ModelInputs) -> Result<PreTrainingOutput> {
        let out = self.bert.run(inputs)?;
        let prediction_logits = self.predictions.forward(&out.last_hidden_state)?;
        let pooled = BertModel::pooled(out)?;
        let seq_relationship_logits = self.seq_relationship.forward(&pooled)?;
        Ok(PreTrainingOutput::new(prediction_logits, seq_relationship_logits))
    }
}

/// BERT with a next sentence prediction head (`cls.seq_relationship` on the pooled output).
#[derive(Debug)]
pub struct BertNextSentence {
    bert: BertModel,
    seq_relationship: Linear,
}

impl BertNextSentence {
    /// The underlying encoder.
    pub fn bert(&self) -> &BertModel {
        &self.bert
    }
}

impl ForNextSentencePrediction for BertNextSentence {
    fn forward(&self, inputs: &ModelInputs) -> Result<NextSentencePredictorOutput> {
        let pooled = BertModel::pooled(self.bert.run(inputs)?)?;
        Ok(NextSentencePredictorOutput::new(self.seq_relationship.forward(&pooled)?))
    }
}

macro_rules! through_bert {
    ($($ty:ident),*) => {$(
        impl PreTrainedModel for $ty {
            fn device(&self) -> &Device {
                PreTrainedModel::device(&self.bert)
            }

            fn dtype(&self) -> DType {
                PreTrainedModel::dtype(&self.bert)
            }
        }
    )*};
}

through_bert!(BertLm, BertPreTraining, BertNextSentence);

/// A head built from a [`BertSpec`]; `class` is the `transformers` class it is loaded as.
pub trait BertHead: Sized {
    /// Load the head and the model under it (under `spec.prefix()`) from the checkpoint root
    /// `vb`; errors: `TensorNotFound` / `TensorShape` when a weight is missing or misshapen,
    /// `InvalidConfig` when the config is inconsistent.
    fn load(vb: VarBuilder<'_>, spec: &BertSpec, class: &'static str) -> Result<Self>;
}

/// [`BertModel`] loaded as a head: the base model or the text encoder
/// (`AutoModelForTextEncoding`, `BertModel` in `transformers`) of a model type registered
/// through `register_heads!`, with its pooler when the weights hold `pooler.dense`, as
/// [`LoadModel::load`](autocandle_core::LoadModel::load).
#[derive(Debug)]
pub struct BertBase(BertModel);

impl BertBase {
    /// The encoder.
    pub fn model(&self) -> &BertModel {
        &self.0
    }
}

impl BertHead for BertBase {
    fn load(vb: VarBuilder<'_>, spec: &BertSpec, _class: &'static str) -> Result<Self> {
        let add_pooling_layer = vb.contains_tensor("pooler.dense.weight");
        Ok(Self(BertModel::new_variant(vb, spec, add_pooling_layer)?))
    }
}

impl PreTrainedModel for BertBase {
    fn device(&self) -> &Device {
        PreTrainedModel::device(&self.0)
    }

    fn dtype(&self) -> DType {
        PreTrainedModel::dtype(&self.0)
    }
}

impl Model for BertBase {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        self.0.run(inputs)
    }
}

impl ForTextEncoding for BertBase {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        self.0.run(inputs)
    }
}

impl BertHead for BertLm {
    fn load(vb: VarBuilder<'_>, spec: &BertSpec, _class: &'static str) -> Result<Self> {
        let bert = BertModel::new_variant(vb.pp(spec.prefix), spec, false)?;
        let predictions = BertLmPredictionHead::load(vb.pp("cls.predictions"), &spec.config, bert.word_embeddings())?;
        Ok(Self { bert, predictions })
    }
}

impl BertHead for BertPreTraining {
    fn load(vb: VarBuilder<'_>, spec: &BertSpec, _class: &'static str) -> Result<Self> {
        let bert = BertModel::new_variant(vb.pp(spec.prefix), spec, true)?;
        let cls = vb.pp("cls");
        let predictions = BertLmPredictionHead::load(cls.pp("predictions"), &spec.config, bert.word_embeddings())?;
        let seq_relationship = linear(spec.config.hidden_size, 2, cls.pp("seq_relationship"))?;
        Ok(Self { bert, predictions, seq_relationship })
    }
}

impl BertHead for BertNextSentence {
    fn load(vb: VarBuilder<'_>, spec: &BertSpec, _class: &'static str) -> Result<Self> {
        Ok(Self {
            bert: BertModel::new_variant(vb.pp(spec.prefix), spec, true)?,
            seq_relationship: linear(spec.config.hidden_size, 2, vb.pp("cls.seq_relationship"))?,
        })
    }
}

impl BertHead for SequenceClassifier<BertModel> {
    fn load(vb: VarBuilder<'_>, spec: &BertSpec, _class: &'static str) -> Result<Self> {
        let bert = BertModel::new_variant(vb.pp(spec.prefix), spec, true)?;
        let classifier = linear(spec.config.hidden_size, spec.config.labels.num_labels(), vb.pp("classifier"))?;
        Ok(Self::new(bert, Pooling::Pooler, Classifier::Linear(classifier)))
    }
}

impl BertHead for MultipleChoice<BertModel> {
    fn load(vb: VarBuilder<'_>, spec: &BertSpec, _class: &'static str) -> Result<Self> {
        let bert = BertModel::new_variant(vb.pp(spec.prefix), spec, true)?;
        let classifier = linear(spec.config.hidden_size, 1, vb.pp("classifier"))?;
        Ok(Self::new(bert, Pooling::Pooler, Classifier::Linear(classifier)))
    }
}

impl BertHead for TokenClassifier<BertModel> {
    fn load(vb: VarBuilder<'_>, spec: &BertSpec, _class: &'static str) -> Result<Self> {
        let bert = BertModel::new_variant(vb.pp(spec.prefix), spec, false)?;
        let classifier = linear(spec.config.hidden_size, spec.config.labels.num_labels(), vb.pp("classifier"))?;
        Ok(Self::new(bert, classifier))
    }
}

impl BertHead for QuestionAnswerer<BertModel> {
    fn load(vb: VarBuilder<'_>, spec: &BertSpec, class: &'static str) -> Result<Self> {
        require_two_labels(spec.model_type, class, spec.config.labels.num_labels())?;
        Self::with_qa_outputs(BertModel::new_variant(vb.pp(spec.prefix), spec, false)?, vb)
    }
}

/// The heads `autocandle_core::register_heads!` builds the BERT registered types from. Not
/// public API.
#[doc(hidden)]
pub mod __heads {
    use super::*;

    pub type Base = BertBase;
    pub type TextEncoding = BertBase;
    pub type PreTraining = BertPreTraining;
    pub type CausalLm = BertLm;
    pub type MaskedLm = BertLm;
    pub type NextSentencePrediction = BertNextSentence;
    pub type SequenceClassification = SequenceClassifier<BertModel>;
    pub type MultipleChoice = super::MultipleChoice<BertModel>;
    pub type TokenClassification = TokenClassifier<BertModel>;
    pub type QuestionAnswering = QuestionAnswerer<BertModel>;

    /// Check `config` and load the head `H` as `class`.
    pub fn load<H: BertHead>(vb: VarBuilder<'_>, config: &BertConfig, _prefix: &str, class: &'static str) -> Result<H> {
        H::load(vb, &BertSpec::new(config)?, class)
    }
}

// `BertModel` (the base) is the encoder itself, registered in `model.rs`; `Base` is for the
// model types on BERT's network (Megatron-BERT, ERNIE).
autocandle_core::register_heads! {
    family: crate, config: BertConfig, prefix: "bert";
    text_encoding: BertTextEncoding as "BertModel";
    pretraining: BertForPreTraining;
    causal_lm: BertLMHeadModel;
    masked_lm: BertForMaskedLM;
    next_sentence_prediction: BertForNextSentencePrediction;
    /// It has `num_labels` outputs (`len(id2label)`, else `num_labels`, else 2).
    sequence_classification: BertForSequenceClassification;
    multiple_choice: BertForMultipleChoice;
    token_classification: BertForTokenClassification;
    /// Needs `num_labels` = 2, as `transformers`.
    question_answering: BertForQuestionAnswering;
}
