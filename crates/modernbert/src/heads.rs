//! The heads of ModernBERT, which `autocandle_core::register_heads!` (`family: crate`) turns
//! into registered types.
//!
//! Every head runs the encoder's output through the prediction head `head` (`dense`,
//! `classifier_activation`, `norm`), then a linear layer: the decoder tied to the token
//! embeddings (masked LM) or `classifier` (always with a bias). The sequence and multiple
//! choice heads pool first (`classifier_pooling`: `cls` or `mean`), the token and span heads
//! score every token. These are ModernBERT's own: core's generic heads classify the pooled
//! vector without a prediction head in between.

use autocandle_core::heads::{flatten_choices, require_two_labels, split_start_end, Encoder};
use autocandle_core::nn::{linear, linear_b, Linear};
use autocandle_decoder::{load_tied_lm_head, LmHeadNames};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;

use autocandle_core::{
    Activation, BaseModelOutput, ForMaskedLm, ForMultipleChoice, ForQuestionAnswering, ForSequenceClassification,
    ForTokenClassification, MaskedLmOutput, Model, ModelInputs, MultipleChoiceOutput, PreTrainedModel,
    QuestionAnsweringOutput, Result, SequenceClassifierOutput, TokenClassifierOutput,
};

use crate::config::{ClassifierPooling, ModernBertConfig, ModernBertSpec};
use crate::model::{ModernBertEncoder, Norm};

/// `ModernBertPredictionHead` (`head`): `norm(act(dense(x)))`, on every token or on the
/// pooled vector.
#[derive(Debug)]
pub struct PredictionHead {
    dense: Linear,
    activation: Activation,
    norm: Norm,
}

impl PredictionHead {
    fn load(vb: VarBuilder<'_>, spec: &ModernBertSpec) -> Result<Self> {
        let cfg = &spec.config;
        let h = cfg.hidden_size;
        Ok(Self {
            dense: linear_b(h, h, cfg.classifier_bias, vb.pp("dense"))?,
            activation: cfg.classifier_activation,
            norm: Norm::load(vb.pp("norm"), h, cfg.norm_eps, cfg.norm_bias)?,
        })
    }

    /// The head on `x` `[.., hidden]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.norm.forward(&self.activation.forward(&self.dense.forward(x)?)?)
    }
}

/// `ModernBertForMaskedLM`: the encoder, `head`, and `decoder` (tied to the token embeddings,
/// with a bias when `decoder_bias`); `logits` are `[batch, seq, vocab_size]` for every token
/// (`sparse_prediction` only changes the training loss).
#[derive(Debug)]
pub struct ModernBertLm {
    model: ModernBertEncoder,
    head: PredictionHead,
    decoder: Linear,
}

impl ModernBertLm {
    /// The encoder under the head.
    pub fn model(&self) -> &ModernBertEncoder {
        &self.model
    }
}

impl ForMaskedLm for ModernBertLm {
    fn forward(&self, inputs: &ModelInputs) -> Result<MaskedLmOutput> {
        let hidden = self.model.forward(inputs)?;
        Ok(MaskedLmOutput::new(self.decoder.forward(&self.head.forward(&hidden)?)?))
    }
}

/// The encoder, pooling, `head` and a linear `classifier`: `ModernBertForSequenceClassification`
/// (`cls` pools the first token) and `ModernBertForMultipleChoice` (`cls` pools the first
/// token that is not padding, inputs `[batch, choices, seq]`).
#[derive(Debug)]
pub struct ModernBertPooledClassifier {
    model: ModernBertEncoder,
    head: PredictionHead,
    classifier: Linear,
    pooling: ClassifierPooling,
    choices: bool,
}

impl ModernBertPooledClassifier {
    fn load(vb: VarBuilder<'_>, spec: &ModernBertSpec, outputs: usize, choices: bool) -> Result<Self> {
        Ok(Self {
            model: ModernBertEncoder::new(vb.pp("model"), spec, None)?,
            head: PredictionHead::load(vb.pp("head"), spec)?,
            classifier: linear(spec.config.hidden_size, outputs, vb.pp("classifier"))?,
            pooling: spec.pooling,
            choices,
        })
    }

    /// The encoder under the head.
    pub fn model(&self) -> &ModernBertEncoder {
        &self.model
    }

    /// Logits `[batch, num_labels]` of `[batch, seq]` inputs.
    fn pooled_logits(&self, inputs: &ModelInputs) -> Result<Tensor> {
        let hidden = self.model.forward(inputs)?;
        let (batch, seq, _) = hidden.dims3()?;
        let pooled = match (self.pooling, &inputs.attention_mask) {
            (ClassifierPooling::Cls, Some(mask)) if self.choices => {
                // `attention_mask.argmax(-1)`: the first attended token, 0 when there is none.
                let rows = mask.ne(0u32)?.to_dtype(DType::U32)?.to_vec2::<u32>()?;
                let first: Vec<u32> =
                    rows.iter().map(|row| row.iter().position(|&m| m != 0).unwrap_or(0) as u32).collect();
                let index = Tensor::from_vec(first, (batch, 1, 1), hidden.device())?
                    .broadcast_as((batch, 1, hidden.dim(2)?))?
                    .contiguous()?;
                hidden.gather(&index, 1)?.squeeze(1)?
            }
            (ClassifierPooling::Cls, _) => hidden.narrow(1, 0, 1)?.squeeze(1)?,
            (ClassifierPooling::Mean, mask) => {
                let keep = match mask {
                    Some(mask) => mask.ne(0u32)?.to_dtype(hidden.dtype())?,
                    None => Tensor::ones((batch, seq), hidden.dtype(), hidden.device())?,
                };
                let summed = hidden.broadcast_mul(&keep.unsqueeze(2)?)?.sum(1)?;
                summed.broadcast_div(&keep.sum_keepdim(1)?)?
            }
        };
        Ok(self.classifier.forward(&self.head.forward(&pooled)?)?)
    }
}

impl ForSequenceClassification for ModernBertPooledClassifier {
    fn forward(&self, inputs: &ModelInputs) -> Result<SequenceClassifierOutput> {
        Ok(SequenceClassifierOutput::new(self.pooled_logits(inputs)?))
    }
}

impl ForMultipleChoice for ModernBertPooledClassifier {
    fn forward(&self, inputs: &ModelInputs) -> Result<MultipleChoiceOutput> {
        let (flat, (batch, choices)) = flatten_choices(inputs)?;
        Ok(MultipleChoiceOutput::new(self.pooled_logits(&flat)?.reshape((batch, choices))?))
    }
}

/// The encoder, `head` and a linear `classifier` on every token:
/// `ModernBertForTokenClassification` (`[batch, seq, num_labels]`) and
/// `ModernBertForQuestionAnswering` (2 labels, split into start and end logits).
#[derive(Debug)]
pub struct ModernBertTokenClassifier {
    model: ModernBertEncoder,
    head: PredictionHead,
    classifier: Linear,
}

impl ModernBertTokenClassifier {
    fn load(vb: VarBuilder<'_>, spec: &ModernBertSpec) -> Result<Self> {
        Ok(Self {
            model: ModernBertEncoder::new(vb.pp("model"), spec, None)?,
            head: PredictionHead::load(vb.pp("head"), spec)?,
            classifier: linear(spec.config.hidden_size, spec.config.labels.num_labels(), vb.pp("classifier"))?,
        })
    }

    /// The encoder under the head.
    pub fn model(&self) -> &ModernBertEncoder {
        &self.model
    }

    fn logits(&self, inputs: &ModelInputs) -> Result<Tensor> {
        let hidden = self.model.forward(inputs)?;
        Ok(self.classifier.forward(&self.head.forward(&hidden)?)?)
    }
}

impl ForTokenClassification for ModernBertTokenClassifier {
    fn forward(&self, inputs: &ModelInputs) -> Result<TokenClassifierOutput> {
        Ok(TokenClassifierOutput::new(self.logits(inputs)?))
    }
}

impl ForQuestionAnswering for ModernBertTokenClassifier {
    fn forward(&self, inputs: &ModelInputs) -> Result<QuestionAnsweringOutput> {
        let (start, end) = split_start_end(&self.logits(inputs)?)?;
        Ok(QuestionAnsweringOutput::new(start, end))
    }
}

macro_rules! through_model {
    ($($head:ty),*) => {$(
        impl PreTrainedModel for $head {
            fn device(&self) -> &Device {
                self.model.device()
            }

            fn dtype(&self) -> DType {
                self.model.dtype()
            }
        }
    )*};
}

through_model!(ModernBertLm, ModernBertPooledClassifier, ModernBertTokenClassifier);

impl Encoder for ModernBertEncoder {
    fn encode(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        Model::forward(self, inputs)
    }

    fn hidden_size(&self) -> usize {
        self.spec().config.hidden_size
    }
}

/// A head built from a [`ModernBertSpec`]; `class` is the `transformers` class it is loaded as.
pub trait ModernBertHead: Sized {
    /// Load the head and the model under it from the checkpoint root `vb`; errors:
    /// `TensorNotFound` / `TensorShape` when a weight is missing or misshapen, `InvalidConfig`
    /// when the config is inconsistent.
    fn load(vb: VarBuilder<'_>, spec: &ModernBertSpec, class: &'static str) -> Result<Self>;
}

impl ModernBertHead for ModernBertEncoder {
    fn load(vb: VarBuilder<'_>, spec: &ModernBertSpec, _class: &'static str) -> Result<Self> {
        ModernBertEncoder::new(vb, spec, None)
    }
}

impl ModernBertHead for ModernBertLm {
    fn load(vb: VarBuilder<'_>, spec: &ModernBertSpec, _class: &'static str) -> Result<Self> {
        let cfg = &spec.config;
        let names = LmHeadNames { head: &["decoder"], base: "model", embedding: "embeddings.tok_embeddings.weight" };
        let (model, decoder) = load_tied_lm_head(
            vb.clone(),
            names,
            (cfg.tie_word_embeddings, cfg.decoder_bias),
            (cfg.vocab_size, cfg.hidden_size),
            |vb, table| ModernBertEncoder::new(vb, spec, table),
            ModernBertEncoder::tok_embeddings,
        )?;
        Ok(Self { model, head: PredictionHead::load(vb.pp("head"), spec)?, decoder })
    }
}

impl ModernBertHead for ModernBertPooledClassifier {
    fn load(vb: VarBuilder<'_>, spec: &ModernBertSpec, class: &'static str) -> Result<Self> {
        if class.ends_with("ForMultipleChoice") {
            Self::load(vb, spec, 1, true)
        } else {
            Self::load(vb, spec, spec.config.labels.num_labels(), false)
        }
    }
}

impl ModernBertHead for ModernBertTokenClassifier {
    fn load(vb: VarBuilder<'_>, spec: &ModernBertSpec, class: &'static str) -> Result<Self> {
        if class.ends_with("ForQuestionAnswering") {
            require_two_labels("modernbert", class, spec.config.labels.num_labels())?;
        }
        Self::load(vb, spec)
    }
}

/// The heads `autocandle_core::register_heads!` builds ModernBERT's registered types from.
/// Not public API.
#[doc(hidden)]
pub mod __heads {
    use super::*;

    pub type Base = ModernBertEncoder;
    pub type MaskedLm = ModernBertLm;
    pub type SequenceClassification = ModernBertPooledClassifier;
    pub type MultipleChoice = ModernBertPooledClassifier;
    pub type TokenClassification = ModernBertTokenClassifier;
    pub type QuestionAnswering = ModernBertTokenClassifier;

    /// Check `config` and load the head `H` as `class`.
    pub fn load<H: ModernBertHead>(
        vb: VarBuilder<'_>,
        config: &ModernBertConfig,
        _prefix: &str,
        class: &'static str,
    ) -> Result<H> {
        H::load(vb, &config.spec()?, class)
    }
}
