//! The task heads on top of [`BartModel`], one per `transformers` class, which
//! `autocandle_core::register_heads!` (`family: crate`) turns into registered types.
//!
//! The question answering head is `autocandle_core::heads`' generic one over [`BartModel`]
//! (on the decoder states); the language modelling head and the classifier at the last EOS
//! token are BART's own.

use autocandle_core::nn::linear_no_bias;
use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarBuilder;

use autocandle_core::heads::{same_values, Classifier, Encoder, QuestionAnswerer};
use autocandle_core::{
    BaseModelOutput, EncoderOutput, Error, ForSeq2SeqLm, ForSequenceClassification, ModelInputs, PreTrainedModel,
    Result, Seq2SeqCache, Seq2SeqLmOutput, SequenceClassifierOutput,
};

use crate::config::BartConfig;
use crate::model::BartModel;

/// BART with its language modelling head: `lm_head`, without bias, maps the decoder states to
/// vocabulary logits, plus the `final_logits_bias` buffer (`[1, vocab_size]`; zeros when the
/// checkpoint has none, as in `transformers`).
#[derive(Debug)]
pub struct BartLm {
    model: BartModel,
    /// `[vocab_size, hidden]`: always float (a quantized load dequantizes it).
    lm_head: Tensor,
    final_logits_bias: Tensor,
}

impl BartLm {
    /// The underlying encoder-decoder.
    pub fn model(&self) -> &BartModel {
        &self.model
    }

    /// The LM head weight `[vocab_size, d_model]` (`model.shared` when tied).
    pub fn lm_head(&self) -> &Tensor {
        &self.lm_head
    }

    /// `[1, vocab_size]`, added to every logit row.
    pub fn final_logits_bias(&self) -> &Tensor {
        &self.final_logits_bias
    }

    fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        Ok(autocandle_core::kernels::linear(hidden, &self.lm_head, None)?.broadcast_add(&self.final_logits_bias)?)
    }
}

impl ForSeq2SeqLm for BartLm {
    fn forward(&self, inputs: &ModelInputs) -> Result<Seq2SeqLmOutput> {
        let (decoder, encoder) = self.model.run(inputs)?;
        Ok(Seq2SeqLmOutput::new(self.logits(&decoder)?, encoder))
    }

    fn encode(&self, inputs: &ModelInputs) -> Result<EncoderOutput> {
        self.model.encode(inputs)
    }

    fn decode(&self, decoder_input_ids: &Tensor, encoder: &EncoderOutput, cache: &mut Seq2SeqCache) -> Result<Tensor> {
        let hidden = self.model.decode(decoder_input_ids, encoder, cache)?;
        self.logits(&hidden)
    }

    fn decoder_start_token_id(&self) -> Option<u32> {
        self.model.config().decoder_start_token_id.and_then(|id| u32::try_from(id).ok())
    }

    fn max_source_positions(&self) -> Option<usize> {
        Some(self.model.config().max_position_embeddings)
    }

    fn max_target_positions(&self) -> Option<usize> {
        Some(self.model.config().max_position_embeddings)
    }
}

/// BART with its classifier: the decoder state at the last `eos_token_id` of each row goes
/// through `classification_head` (`BartClassificationHead`: `dense`, tanh, `out_proj`).
#[derive(Debug)]
pub struct BartClassifier {
    model: BartModel,
    classification_head: Classifier,
    eos_token_id: i64,
}

impl BartClassifier {
    /// The underlying encoder-decoder.
    pub fn model(&self) -> &BartModel {
        &self.model
    }

    /// `[batch]` u32 index of the last EOS token of each row of `input_ids`, after checking
    /// that every row has the same number of them, and at least one.
    fn last_eos(&self, input_ids: &Tensor) -> Result<Tensor> {
        let (_, seq) = input_ids.dims2()?;
        let eos = input_ids.to_dtype(DType::I64)?.eq(self.eos_token_id)?.to_dtype(DType::U32)?;
        let counts: Vec<u32> = eos.sum(D::Minus1)?.to_vec1()?;
        if counts.windows(2).any(|w| w[0] != w[1]) {
            return Err(Error::input(format!(
                "all examples must have the same number of <eos> tokens (`eos_token_id` {}), but the rows of \
                 `input_ids` have {counts:?}",
                self.eos_token_id
            )));
        }
        if counts.first().is_some_and(|c| *c == 0) {
            return Err(Error::input(format!(
                "each example must contain at least one <eos> token (`eos_token_id` {}): BART classifies the \
                 decoder state at the last one",
                self.eos_token_id
            )));
        }
        // The positions of EOS tokens are distinct and all others are 0: the maximum is the last.
        let indices = Tensor::arange(0u32, seq as u32, input_ids.device())?.unsqueeze(0)?;
        Ok(eos.broadcast_mul(&indices)?.max(D::Minus1)?)
    }
}

impl ForSequenceClassification for BartClassifier {
    fn forward(&self, inputs: &ModelInputs) -> Result<SequenceClassifierOutput> {
        let (hidden, encoder) = self.model.run(inputs)?;
        let (batch, seq, d) = hidden.dims3()?;
        let input_ids = inputs.input_ids()?;
        if input_ids.dims() != [batch, seq] {
            return Err(Error::input(format!(
                "BART classifies the decoder state at the EOS tokens of `input_ids`, so `decoder_input_ids` must \
                 be as long as `input_ids` ({:?}), got {:?}",
                input_ids.dims(),
                [batch, seq]
            )));
        }
        let last = self.last_eos(input_ids)?.to_device(hidden.device())?;
        let index = last.reshape((batch, 1, 1))?.broadcast_as((batch, 1, d))?.contiguous()?;
        let pooled = hidden.gather(&index, 1)?.squeeze(1)?;
        Ok(SequenceClassifierOutput::new(self.classification_head.forward(&pooled)?)
            .with_extra("encoder_last_hidden_state", encoder))
    }
}

/// The heads read the decoder's last hidden state.
impl Encoder for BartModel {
    /// The decoder's last hidden state, with the encoder's as `encoder_last_hidden_state` in
    /// `extra` (which the question answering head returns, as `transformers` does).
    fn encode(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let (decoder, encoder) = self.run(inputs)?;
        Ok(BaseModelOutput::new(decoder, None).with_extra("encoder_last_hidden_state", encoder))
    }

    fn hidden_size(&self) -> usize {
        self.config().d_model
    }
}

macro_rules! through_model {
    ($($ty:ident),*) => {$(
        impl PreTrainedModel for $ty {
            fn device(&self) -> &Device {
                PreTrainedModel::device(&self.model)
            }

            fn dtype(&self) -> DType {
                PreTrainedModel::dtype(&self.model)
            }
        }
    )*};
}

through_model!(BartLm, BartClassifier);

/// A head built from a [`BartConfig`].
pub trait BartHead: Sized {
    /// Load the head and the model under it from the checkpoint root `vb`; errors:
    /// `TensorNotFound` / `TensorShape` when a weight is missing or misshapen, `InvalidConfig` when the config is inconsistent.
    fn load(vb: VarBuilder<'_>, config: &BartConfig) -> Result<Self>;
}

impl BartHead for BartLm {
    /// With `tie_word_embeddings` the head is `model.shared` (a saved model has no
    /// `lm_head.weight`), unless the checkpoint holds a different `lm_head.weight`; a
    /// checkpoint with only `lm_head.weight` ties the other way.
    fn load(vb: VarBuilder<'_>, config: &BartConfig) -> Result<Self> {
        config.validate()?;
        let (vocab, d) = (config.vocab_size, config.d_model);
        let (model, weight) = if config.tie_word_embeddings {
            let own =
                if vb.contains_tensor("lm_head.weight") { Some(vb.get((vocab, d), "lm_head.weight")?) } else { None };
            let model = BartModel::new(vb.pp("model"), config, own.clone())?;
            let weight = match (own, model.shared()) {
                (Some(own), Some(shared)) if !same_values(&own, shared)? => own,
                (_, Some(shared)) => shared.clone(),
                (Some(own), None) => own,
                (None, None) => vb.get((vocab, d), "lm_head.weight")?,
            };
            (model, weight)
        } else {
            let weight = linear_no_bias(d, vocab, vb.pp("lm_head"))?.weight()?;
            (BartModel::new(vb.pp("model"), config, None)?, weight)
        };
        let final_logits_bias = if vb.contains_tensor("final_logits_bias") {
            vb.get((1, vocab), "final_logits_bias")?
        } else {
            Tensor::zeros((1, vocab), vb.dtype(), vb.device())?
        };
        Ok(Self { model, lm_head: weight, final_logits_bias })
    }
}

impl BartHead for BartClassifier {
    fn load(vb: VarBuilder<'_>, config: &BartConfig) -> Result<Self> {
        let eos_token_id = config.single_eos_token_id()?;
        Ok(Self {
            model: BartModel::new(vb.pp("model"), config, None)?,
            classification_head: Classifier::dense_tanh(
                vb.pp("classification_head"),
                config.d_model,
                config.num_labels(),
            )?,
            eos_token_id,
        })
    }
}

impl BartHead for QuestionAnswerer<BartModel> {
    fn load(vb: VarBuilder<'_>, config: &BartConfig) -> Result<Self> {
        Self::with_qa_outputs(BartModel::new(vb.pp("model"), config, None)?, vb)
    }
}

/// The heads `autocandle_core::register_heads!` builds the BART registered types from. Not
/// public API.
#[doc(hidden)]
pub mod __heads {
    use super::*;

    pub type Seq2SeqLm = BartLm;
    pub type SequenceClassification = BartClassifier;
    pub type QuestionAnswering = QuestionAnswerer<BartModel>;

    /// Load the head `H`.
    pub fn load<H: BartHead>(vb: VarBuilder<'_>, config: &BartConfig, _prefix: &str, _class: &str) -> Result<H> {
        H::load(vb, config)
    }
}

// `BartModel` (the base) is the encoder-decoder itself, registered in `model.rs`.
autocandle_core::register_heads! {
    family: crate, config: BartConfig, prefix: "model";
    /// `lm_head`, without bias, plus `final_logits_bias`; with `tie_word_embeddings` the head
    /// is `model.shared`, unless the checkpoint holds a different `lm_head.weight`.
    ///
    /// Generation runs the encoder once ([`ForSeq2SeqLm::encode`]) and the decoder on a
    /// [`Seq2SeqCache`] ([`ForSeq2SeqLm::decode`]), from `decoder_start_token_id`.
    seq2seq_lm: BartForConditionalGeneration;
    /// The decoder state at the last `eos_token_id` of each row goes through
    /// `classification_head` (`dense`, tanh, `out_proj`; `num_labels` outputs, 3 by default
    /// for BART). As in `transformers`, every row must hold the same number of EOS tokens, at
    /// least one; otherwise the forward pass is an error.
    sequence_classification: BartForSequenceClassification;
    /// `qa_outputs` scores every decoder position (always 2 outputs, as in `transformers`).
    question_answering: BartForQuestionAnswering;
}
