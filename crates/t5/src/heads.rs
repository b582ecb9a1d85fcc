//! The T5 heads, shared by every T5-like architecture (the registered types that
//! `autocandle_core::register_heads!` defines with `family: autocandle_t5` delegate to them):
//! `T5ForConditionalGeneration`, `T5ForSequenceClassification`, `T5ForTokenClassification`,
//! `T5ForQuestionAnswering`.

use autocandle_core::nn::{linear, Linear};
use candle_core::{DType, Device, IndexOp, Module, Tensor};
use candle_nn::VarBuilder;

use autocandle_core::heads::{require_two_labels, split_start_end, Classifier, Encoder, TokenClassifier};
use autocandle_core::{
    BaseModelOutput, EncoderOutput, Error, ForQuestionAnswering, ForSeq2SeqLm, ForSequenceClassification,
    ForTextEncoding, Model, ModelInputs, PreTrainedModel, QuestionAnsweringOutput, Result, Seq2SeqCache,
    Seq2SeqLmOutput, SequenceClassifierOutput,
};

use crate::config::{T5LikeConfig, T5Spec};
use crate::inputs::dims2_int;
use crate::model::{tied_or_own, T5EncoderDecoder, T5EncoderStack};

/// `T5Model`'s output: the decoder's last hidden state, with `encoder_last_hidden_state`.
pub fn base_output(model: &T5EncoderDecoder, inputs: &ModelInputs, class: &str) -> Result<BaseModelOutput> {
    let (hidden, encoder) = model.forward(inputs, class)?;
    Ok(BaseModelOutput::new(hidden, None).with_extra("encoder_last_hidden_state", encoder.last_hidden_state))
}

/// The encoder-decoder with its language-modelling head `lm_head`
/// (`T5ForConditionalGeneration`).
///
/// As `transformers` 5.23 loads it: `lm_head` is the shared embedding matrix unless the
/// checkpoint holds an `lm_head.weight` with other values (T5 v1.1, flan-t5, mT5), and the
/// decoder output is scaled by `d_model ** -0.5` before it when the config says so
/// ([`T5Spec::scale_decoder_outputs`]).
#[derive(Debug, Clone)]
pub struct T5ConditionalGeneration {
    model: T5EncoderDecoder,
    lm_head: Linear,
    scale: Option<f64>,
}

impl T5ConditionalGeneration {
    /// Load `shared`, `encoder.*`, `decoder.*` and `lm_head` from `vb`.
    pub fn load(vb: VarBuilder<'_>, spec: &T5Spec) -> Result<Self> {
        let model = T5EncoderDecoder::load(vb.clone(), spec, &["lm_head.weight"])?;
        let head = tied_or_own(&vb, "lm_head.weight", model.shared())?;
        let scale = spec.scale_decoder_outputs.then(|| (spec.d_model as f64).powf(-0.5));
        Ok(Self { model, lm_head: Linear::new(head, None), scale })
    }

    /// The encoder-decoder under the head.
    /// The encoder-decoder under the head.
    pub fn model(&self) -> &T5EncoderDecoder {
        &self.model
    }

    /// Logits `[batch, seq, vocab_size]` of decoder hidden states.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        let hidden = match self.scale {
            Some(scale) => (hidden * scale)?,
            None => hidden.clone(),
        };
        Ok(self.lm_head.forward(&hidden)?)
    }

    /// Teacher forcing: `(logits, encoder output)`.
    pub fn forward(&self, inputs: &ModelInputs, class: &str) -> Result<(Tensor, EncoderOutput)> {
        let (hidden, encoder) = self.model.forward(inputs, class)?;
        Ok((self.logits(&hidden)?, encoder))
    }

    /// Logits `[batch, new, vocab_size]` of the new decoder tokens, extending `cache`.
    pub fn decode(
        &self,
        decoder_input_ids: &Tensor,
        encoder: &EncoderOutput,
        cache: &mut Seq2SeqCache,
    ) -> Result<Tensor> {
        self.logits(&self.model.decode(decoder_input_ids, None, encoder, Some(cache))?)
    }
}

/// The encoder-decoder under `transformer`, classifying each sequence from the decoder's
/// hidden state at the last `eos_token_id` of `input_ids` (`T5ForSequenceClassification`).
#[derive(Debug, Clone)]
pub struct T5SequenceClassifier {
    model: T5EncoderDecoder,
    /// `classification_head`: `T5ClassificationHead` (`dense`, tanh, `out_proj`).
    head: Classifier,
}

impl T5SequenceClassifier {
    /// Load `transformer.*` and `classification_head` from `vb`.
    pub fn load(vb: VarBuilder<'_>, spec: &T5Spec) -> Result<Self> {
        Ok(Self {
            model: T5EncoderDecoder::load(vb.pp("transformer"), spec, &[])?,
            head: Classifier::dense_tanh(vb.pp("classification_head"), spec.d_model, spec.num_labels)?,
        })
    }

    /// The encoder-decoder under the head.
    pub fn model(&self) -> &T5EncoderDecoder {
        &self.model
    }

    /// Logits `[batch, num_labels]`. Without `decoder_input_ids` the decoder reads
    /// `input_ids` shifted right, as in `transformers`; every row must hold the same number
    /// (at least one) of `eos_token_id`.
    pub fn forward(&self, inputs: &ModelInputs, class: &str) -> Result<Tensor> {
        let spec = self.model.spec();
        let input_ids = inputs.input_ids()?;
        let (batch, seq) = dims2_int(input_ids, "input_ids")?;
        let eos = match spec.eos_token_ids.as_slice() {
            [id] => *id,
            [] => {
                return Err(Error::config(
                    spec.model_type,
                    format!("{class} pools the hidden state at `eos_token_id`, which the config does not set"),
                ))
            }
            ids => {
                return Err(Error::Unsupported(format!(
                    "{class} with several `eos_token_id` ({ids:?}): transformers compares `input_ids` with one id"
                )))
            }
        };
        // The last EOS of each row, checked before any work.
        let rows = input_ids.to_dtype(DType::I64)?.to_vec2::<i64>()?;
        let counts: Vec<usize> = rows.iter().map(|r| r.iter().filter(|&&id| id == eos).count()).collect();
        if counts.iter().any(|&c| c != counts[0]) {
            return Err(Error::input(format!(
                "all examples must have the same number of <eos> tokens (id {eos}) for {class}; the rows have \
                 {counts:?}"
            )));
        }
        if counts[0] == 0 {
            return Err(Error::input(format!(
                "each example must contain at least one <eos> token (id {eos}) for {class}: end the inputs with it"
            )));
        }
        let last: Vec<usize> = rows.iter().map(|r| r.iter().rposition(|&id| id == eos).unwrap_or(0)).collect();
        let mut inputs = inputs.clone();
        if inputs.decoder_input_ids.is_none() {
            inputs.decoder_input_ids = Some(self.model.shift_right(input_ids, class)?);
        }
        let (hidden, _) = self.model.forward(&inputs, class)?;
        let target = hidden.dim(1)?;
        if target != seq {
            return Err(Error::input(format!(
                "{class} picks the decoder state at the <eos> positions of `input_ids`, so `decoder_input_ids` must \
                 have as many tokens as `input_ids` ({seq}), not {target}"
            )));
        }
        let pooled = (0..batch).map(|b| Ok(hidden.i((b, last[b]))?.unsqueeze(0)?)).collect::<Result<Vec<_>>>()?;
        self.head.forward(&Tensor::cat(&pooled, 0)?)
    }
}

/// The encoder (`T5EncoderModel` under `transformer`) with a classifier on every token
/// (`T5ForTokenClassification`).
pub type T5TokenClassifier = TokenClassifier<T5EncoderStack>;

/// The encoder-decoder with a span head `qa_outputs` on the decoder's hidden states
/// (`T5ForQuestionAnswering`).
#[derive(Debug, Clone)]
pub struct T5QuestionAnswerer {
    model: T5EncoderDecoder,
    qa_outputs: Linear,
}

impl T5QuestionAnswerer {
    /// Load `shared`, `encoder.*`, `decoder.*` and `qa_outputs` from `vb`; needs
    /// `num_labels` = 2.
    pub fn load(vb: VarBuilder<'_>, spec: &T5Spec, class: &str) -> Result<Self> {
        require_two_labels(spec.model_type, class, spec.num_labels)?;
        Ok(Self {
            model: T5EncoderDecoder::load(vb.clone(), spec, &[])?,
            qa_outputs: linear(spec.d_model, 2, vb.pp("qa_outputs"))?,
        })
    }

    /// The encoder-decoder under the head.
    pub fn model(&self) -> &T5EncoderDecoder {
        &self.model
    }

    /// `(start_logits, end_logits)`, each `[batch, target_seq]`. Without
    /// `decoder_input_ids` the decoder reads `input_ids` shifted right, as in `transformers`.
    pub fn forward(&self, inputs: &ModelInputs, class: &str) -> Result<(Tensor, Tensor)> {
        let mut inputs = inputs.clone();
        if inputs.decoder_input_ids.is_none() {
            let input_ids = inputs.input_ids()?.clone();
            inputs.decoder_input_ids = Some(self.model.shift_right(&input_ids, class)?);
        }
        let (hidden, _) = self.model.forward(&inputs, class)?;
        split_start_end(&self.qa_outputs.forward(&hidden)?)
    }
}

impl PreTrainedModel for T5EncoderStack {
    fn device(&self) -> &Device {
        T5EncoderStack::device(self)
    }

    fn dtype(&self) -> DType {
        T5EncoderStack::dtype(self)
    }
}

impl Encoder for T5EncoderStack {
    fn encode(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        Ok(BaseModelOutput::new(T5EncoderStack::encode(self, inputs)?.last_hidden_state, None))
    }

    fn hidden_size(&self) -> usize {
        self.spec().d_model
    }
}

impl ForTextEncoding for T5EncoderStack {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        Encoder::encode(self, inputs)
    }
}

/// A T5 head with the `transformers` class name its errors mention; it dereferences to the
/// head.
#[derive(Debug, Clone)]
pub struct Named<H> {
    head: H,
    class: &'static str,
}

impl<H> std::ops::Deref for Named<H> {
    type Target = H;

    fn deref(&self) -> &H {
        &self.head
    }
}

/// The network of a head, for its device and dtype.
trait Network {
    fn encoder_stack(&self) -> &T5EncoderStack;
}

impl Network for T5EncoderDecoder {
    fn encoder_stack(&self) -> &T5EncoderStack {
        self.encoder()
    }
}

macro_rules! network {
    ($($ty:ty),*) => {$(
        impl Network for $ty {
            fn encoder_stack(&self) -> &T5EncoderStack {
                self.model.encoder()
            }
        }
    )*};
}

network!(T5ConditionalGeneration, T5SequenceClassifier, T5QuestionAnswerer);

impl<H: Network + std::fmt::Debug + Send + Sync> PreTrainedModel for Named<H> {
    fn device(&self) -> &Device {
        self.head.encoder_stack().device()
    }

    fn dtype(&self) -> DType {
        self.head.encoder_stack().dtype()
    }
}

impl Model for Named<T5EncoderDecoder> {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        base_output(&self.head, inputs, self.class)
    }
}

impl ForSeq2SeqLm for Named<T5ConditionalGeneration> {
    fn forward(&self, inputs: &ModelInputs) -> Result<Seq2SeqLmOutput> {
        let (logits, encoder) = self.head.forward(inputs, self.class)?;
        Ok(Seq2SeqLmOutput::new(logits, encoder.last_hidden_state))
    }

    fn encode(&self, inputs: &ModelInputs) -> Result<EncoderOutput> {
        self.head.model().encode(inputs)
    }

    fn decode(&self, decoder_input_ids: &Tensor, encoder: &EncoderOutput, cache: &mut Seq2SeqCache) -> Result<Tensor> {
        self.head.decode(decoder_input_ids, encoder, cache)
    }

    fn decoder_start_token_id(&self) -> Option<u32> {
        self.head.model().spec().decoder_start_token()
    }
}

impl ForSequenceClassification for Named<T5SequenceClassifier> {
    fn forward(&self, inputs: &ModelInputs) -> Result<SequenceClassifierOutput> {
        Ok(SequenceClassifierOutput::new(self.head.forward(inputs, self.class)?))
    }
}

impl ForQuestionAnswering for Named<T5QuestionAnswerer> {
    fn forward(&self, inputs: &ModelInputs) -> Result<QuestionAnsweringOutput> {
        let (start, end) = self.head.forward(inputs, self.class)?;
        Ok(QuestionAnsweringOutput::new(start, end))
    }
}

/// A head built from a [`T5Spec`]; `class` is the `transformers` class it is loaded as.
pub trait T5Head: Sized {
    /// Load the head and the model under it from the checkpoint root `vb`; errors:
    /// `TensorNotFound` / `TensorShape` when a weight is missing or misshapen, `InvalidConfig` when the config is inconsistent.
    fn load(vb: VarBuilder<'_>, spec: &T5Spec, class: &'static str) -> Result<Self>;
}

impl T5Head for Named<T5EncoderDecoder> {
    fn load(vb: VarBuilder<'_>, spec: &T5Spec, class: &'static str) -> Result<Self> {
        Ok(Named { head: T5EncoderDecoder::load(vb, spec, &[])?, class })
    }
}

impl T5Head for Named<T5ConditionalGeneration> {
    fn load(vb: VarBuilder<'_>, spec: &T5Spec, class: &'static str) -> Result<Self> {
        Ok(Named { head: T5ConditionalGeneration::load(vb, spec)?, class })
    }
}

impl T5Head for T5EncoderStack {
    fn load(vb: VarBuilder<'_>, spec: &T5Spec, _class: &'static str) -> Result<Self> {
        T5EncoderStack::load(vb, spec)
    }
}

impl T5Head for Named<T5SequenceClassifier> {
    fn load(vb: VarBuilder<'_>, spec: &T5Spec, class: &'static str) -> Result<Self> {
        Ok(Named { head: T5SequenceClassifier::load(vb, spec)?, class })
    }
}

impl T5Head for T5TokenClassifier {
    /// `transformer.shared`, `transformer.encoder.*` and `classifier`.
    fn load(vb: VarBuilder<'_>, spec: &T5Spec, _class: &'static str) -> Result<Self> {
        let encoder = T5EncoderStack::load(vb.pp("transformer"), spec)?;
        Ok(TokenClassifier::new(encoder, linear(spec.d_model, spec.num_labels, vb.pp("classifier"))?))
    }
}

impl T5Head for Named<T5QuestionAnswerer> {
    fn load(vb: VarBuilder<'_>, spec: &T5Spec, class: &'static str) -> Result<Self> {
        Ok(Named { head: T5QuestionAnswerer::load(vb, spec, class)?, class })
    }
}

/// The heads `autocandle_core::register_heads!` builds a T5-like architecture's registered
/// types from (`family: autocandle_t5`). Not public API.
#[doc(hidden)]
pub mod __heads {
    use super::*;

    pub type Base = Named<T5EncoderDecoder>;
    pub type Seq2SeqLm = Named<T5ConditionalGeneration>;
    pub type TextEncoding = T5EncoderStack;
    pub type SequenceClassification = Named<T5SequenceClassifier>;
    pub type TokenClassification = T5TokenClassifier;
    pub type QuestionAnswering = Named<T5QuestionAnswerer>;

    /// Resolve `config` and load the head `H` as `class`.
    pub fn load<H: T5Head, C: T5LikeConfig>(
        vb: VarBuilder<'_>,
        config: &C,
        _prefix: &str,
        class: &'static str,
    ) -> Result<H> {
        H::load(vb, &config.t5_spec()?, class)
    }
}
