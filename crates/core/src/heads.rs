//! Task heads every architecture shares, after `transformers`' `modeling_layers.py`
//! (`GenericForSequenceClassification`, `GenericForTokenClassification`,
//! `GenericForQuestionAnswering`) and the multiple choice heads of the BERT family: each is
//! generic over an [`Encoder`], the network that turns inputs into hidden states.
//!
//! What differs between architectures is a parameter, not a copy: how a sequence is pooled
//! ([`Pooling`]: the network's pooler, the first token, the last token that is not padding)
//! and what classifies the pooled vector ([`Classifier`]: one linear layer, or dense + tanh +
//! `out_proj`, or dense + ReLU + classifier). The weight names are the caller's: it loads the
//! layers under the `transformers` names and hands them over.

use candle_core::{DType, Device, IndexOp, Module, Tensor};
use candle_nn::VarBuilder;

use crate::error::{Error, Result};
use crate::inputs::{require_int, require_shape};
use crate::models::{
    BaseModelOutput, ForMultipleChoice, ForQuestionAnswering, ForSequenceClassification, ForTokenClassification,
    ModelInputs, MultipleChoiceOutput, PreTrainedModel, QuestionAnsweringOutput, SequenceClassifierOutput,
    TokenClassifierOutput,
};
use crate::nn::{linear, Linear};

/// The network under a task head: runs the inputs to hidden states.
pub trait Encoder: PreTrainedModel {
    /// `last_hidden_state` `[batch, seq, hidden]`, and `pooler_output` `[batch, hidden]` where
    /// the network has a pooler.
    fn encode(&self, inputs: &ModelInputs) -> Result<BaseModelOutput>;

    /// The width of the hidden states.
    fn hidden_size(&self) -> usize;

    /// The pooled output of `output`, for the heads on `pooler_output`; an error when the
    /// network has no pooler.
    fn pooled(&self, output: BaseModelOutput) -> Result<Tensor> {
        output.pooler_output.ok_or_else(|| Error::Unsupported("this model has no pooler".to_owned()))
    }
}

/// How a sequence classifier picks one vector per sequence from the hidden states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// The network's pooler output ([`Encoder::pooled`]): BERT.
    Pooler,
    /// The first token (`[CLS]`, `<s>`): RoBERTa, DistilBERT.
    FirstToken,
    /// The rightmost token that is not `pad_token_id` (0 when all are), the last token when
    /// there is no pad token (then only a batch of one is accepted), as
    /// `GenericForSequenceClassification`.
    LastNonPad {
        /// The config's `pad_token_id`.
        pad_token_id: Option<i64>,
    },
}

impl Pooling {
    /// For [`Pooling::LastNonPad`], the index of the token each row of `input_ids`
    /// `[batch, seq]` is classified from; `None` for the other poolings.
    pub fn last_non_pad_indices(&self, input_ids: &Tensor) -> Result<Option<Vec<usize>>> {
        let Self::LastNonPad { pad_token_id } = *self else {
            return Ok(None);
        };
        let (batch, seq) = input_ids.dims2()?;
        match pad_token_id {
            None if batch != 1 => Err(Error::input(format!(
                "cannot classify a batch of {batch} sequences without a padding token: set `pad_token_id` in the \
                 config (transformers refuses this too; the EOS token is the usual choice), or classify one \
                 sequence at a time"
            ))),
            None => Ok(Some(vec![seq.saturating_sub(1)])),
            Some(pad) => {
                let rows = input_ids.to_dtype(DType::I64)?.to_vec2::<i64>()?;
                Ok(Some(rows.iter().map(|row| row.iter().rposition(|&id| id != pad).unwrap_or(0)).collect()))
            }
        }
    }

    /// One vector per sequence, `[batch, hidden]`, of `output` (the encoder's output for
    /// `inputs`); `indices` are [`Pooling::last_non_pad_indices`].
    fn pool<E: Encoder>(&self, encoder: &E, output: BaseModelOutput, indices: Option<&[usize]>) -> Result<Tensor> {
        match (self, indices) {
            (Self::Pooler, _) => encoder.pooled(output),
            (Self::FirstToken, _) => Ok(output.last_hidden_state.narrow(1, 0, 1)?.squeeze(1)?),
            (Self::LastNonPad { .. }, Some(indices)) => {
                let hidden = &output.last_hidden_state;
                let rows = indices
                    .iter()
                    .enumerate()
                    .map(|(b, &i)| Ok(hidden.i((b, i))?.unsqueeze(0)?))
                    .collect::<Result<Vec<_>>>()?;
                Ok(Tensor::cat(&rows, 0)?)
            }
            (Self::LastNonPad { .. }, None) => Err(Error::input("`input_ids` must have shape [batch, seq]")),
        }
    }
}

/// What classifies a pooled vector `[batch, hidden]` into `[batch, num_labels]` logits.
#[derive(Debug, Clone)]
pub enum Classifier {
    /// One linear layer (`classifier`, `score`).
    Linear(Linear),
    /// `dense`, tanh, `out_proj`: `RobertaClassificationHead`, `BartClassificationHead`,
    /// `T5ClassificationHead`.
    DenseTanh {
        /// `hidden -> hidden`, followed by tanh.
        dense: Linear,
        /// `hidden -> num_labels`.
        out_proj: Linear,
    },
    /// `pre_classifier`, ReLU, `classifier`: DistilBERT.
    DenseRelu {
        /// `pre_classifier`, `hidden -> hidden`, followed by ReLU.
        dense: Linear,
        /// `classifier`, `hidden -> num_labels`.
        out_proj: Linear,
    },
}

impl Classifier {
    /// [`Classifier::DenseTanh`] from `vb.dense` (`hidden -> hidden`) and `vb.out_proj`
    /// (`hidden -> num_labels`), both with bias.
    pub fn dense_tanh(vb: VarBuilder<'_>, hidden: usize, num_labels: usize) -> Result<Self> {
        Ok(Self::DenseTanh {
            dense: linear(hidden, hidden, vb.pp("dense"))?,
            out_proj: linear(hidden, num_labels, vb.pp("out_proj"))?,
        })
    }

    /// Logits of `pooled`.
    pub fn forward(&self, pooled: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Self::Linear(layer) => layer.forward(pooled)?,
            Self::DenseTanh { dense, out_proj } => out_proj.forward(&dense.forward(pooled)?.tanh()?)?,
            Self::DenseRelu { dense, out_proj } => out_proj.forward(&dense.forward(pooled)?.relu()?)?,
        })
    }
}

/// The error of a question answering head whose config does not have 2 labels (start and
/// end), as `transformers` requires; `class` is the head's class name.
pub fn require_two_labels(model_type: &str, class: &str, num_labels: usize) -> Result<()> {
    if num_labels == 2 {
        return Ok(());
    }
    Err(Error::config(
        model_type,
        format!("{class} needs 2 labels (start and end), the config has {num_labels}: set `num_labels` to 2"),
    ))
}

/// `(start_logits, end_logits)`, each `[batch, seq]`, of span logits `[batch, seq, 2]`
/// (`logits.split(1, dim=-1)` in `transformers`).
pub fn split_start_end(logits: &Tensor) -> Result<(Tensor, Tensor)> {
    let take = |i: usize| -> Result<Tensor> { Ok(logits.narrow(2, i, 1)?.squeeze(2)?.contiguous()?) };
    Ok((take(0)?, take(1)?))
}

/// Whether two tensors have the same shape, dtype and values: an output matrix the checkpoint
/// holds with the values of the matrix it is tied to stays tied, as `transformers` ties it.
pub fn same_values(a: &Tensor, b: &Tensor) -> Result<bool> {
    if a.dims() != b.dims() || a.dtype() != b.dtype() {
        return Ok(false);
    }
    Ok(a.eq(b)?.to_dtype(DType::U32)?.min_all()?.to_scalar::<u32>()? == 1)
}

/// The inputs of a multiple choice model, `[batch, choices, seq]` each, as `[batch * choices,
/// seq]` inputs for the encoder (`input_ids.view(-1, seq)` in `transformers`), with
/// `(batch, choices)`: the shape the logits come back to.
///
/// Errors: `input_ids` not of rank 3 or not integers, another input of a different shape.
pub fn flatten_choices(inputs: &ModelInputs) -> Result<(ModelInputs, (usize, usize))> {
    let input_ids = inputs.input_ids()?;
    let dims = input_ids.dims().to_vec();
    let &[batch, choices, seq] = dims.as_slice() else {
        return Err(Error::input(format!(
            "`input_ids` of a multiple choice model must have shape [batch, choices, seq], got {dims:?}"
        )));
    };
    require_int(input_ids, "input_ids")?;
    let flat = |t: &Tensor, name: &str| -> Result<Tensor> {
        require_shape(t, name, &dims, "`input_ids`")?;
        Ok(t.reshape((batch * choices, seq))?)
    };
    let mut flat_inputs = ModelInputs::new(flat(input_ids, "input_ids")?);
    if let Some(t) = &inputs.attention_mask {
        flat_inputs = flat_inputs.with_attention_mask(flat(t, "attention_mask")?);
    }
    if let Some(t) = &inputs.token_type_ids {
        flat_inputs = flat_inputs.with_token_type_ids(flat(t, "token_type_ids")?);
    }
    if let Some(t) = &inputs.position_ids {
        flat_inputs = flat_inputs.with_position_ids(flat(t, "position_ids")?);
    }
    Ok((flat_inputs, (batch, choices)))
}

/// `GenericForSequenceClassification`: the encoder, [`Pooling`], then a [`Classifier`];
/// logits `[batch, num_labels]`.
#[derive(Debug, Clone)]
pub struct SequenceClassifier<E> {
    encoder: E,
    pooling: Pooling,
    classifier: Classifier,
}

impl<E: Encoder> SequenceClassifier<E> {
    /// The head over `encoder`, pooling with `pooling` and scoring with `classifier`.
    pub fn new(encoder: E, pooling: Pooling, classifier: Classifier) -> Self {
        Self { encoder, pooling, classifier }
    }

    /// The network under the head.
    pub fn encoder(&self) -> &E {
        &self.encoder
    }

    /// How the head pools.
    pub fn pooling(&self) -> &Pooling {
        &self.pooling
    }

    /// Logits `[batch, num_labels]`.
    pub fn logits(&self, inputs: &ModelInputs) -> Result<Tensor> {
        let input_ids = inputs.input_ids()?;
        // Checked first: without a pad token a batch is refused before any work.
        let indices = match input_ids.dims() {
            [_, _] => self.pooling.last_non_pad_indices(input_ids)?,
            _ => None,
        };
        let output = self.encoder.encode(inputs)?;
        let pooled = self.pooling.pool(&self.encoder, output, indices.as_deref())?;
        self.classifier.forward(&pooled)
    }
}

/// A multiple choice head: inputs `[batch, choices, seq]`, each choice encoded on its own,
/// pooled and scored by a one-output [`Classifier`]; logits `[batch, choices]`.
#[derive(Debug, Clone)]
pub struct MultipleChoice<E>(SequenceClassifier<E>);

impl<E: Encoder> MultipleChoice<E> {
    /// The head over `encoder`; `classifier` has one output (the score of a choice).
    pub fn new(encoder: E, pooling: Pooling, classifier: Classifier) -> Self {
        Self(SequenceClassifier::new(encoder, pooling, classifier))
    }

    /// The network under the head.
    pub fn encoder(&self) -> &E {
        self.0.encoder()
    }

    /// Logits `[batch, choices]`.
    pub fn logits(&self, inputs: &ModelInputs) -> Result<Tensor> {
        let (flat, (batch, choices)) = flatten_choices(inputs)?;
        Ok(self.0.logits(&flat)?.reshape((batch, choices))?)
    }
}

/// `GenericForTokenClassification`: a linear classifier on every token; logits
/// `[batch, seq, num_labels]`.
#[derive(Debug, Clone)]
pub struct TokenClassifier<E> {
    encoder: E,
    classifier: Linear,
}

impl<E: Encoder> TokenClassifier<E> {
    /// The head over `encoder`; `classifier` is `hidden -> num_labels`.
    pub fn new(encoder: E, classifier: Linear) -> Self {
        Self { encoder, classifier }
    }

    /// The network under the head.
    pub fn encoder(&self) -> &E {
        &self.encoder
    }

    /// Logits `[batch, seq, num_labels]`.
    pub fn logits(&self, inputs: &ModelInputs) -> Result<Tensor> {
        Ok(self.classifier.forward(&self.encoder.encode(inputs)?.last_hidden_state)?)
    }
}

/// `GenericForQuestionAnswering`: `qa_outputs` (hidden -> 2) scores every token as the start
/// and the end of the answer.
#[derive(Debug, Clone)]
pub struct QuestionAnswerer<E> {
    encoder: E,
    qa_outputs: Linear,
}

impl<E: Encoder> QuestionAnswerer<E> {
    /// The head over `encoder`; `qa_outputs` is `hidden -> 2` (start and end scores).
    pub fn new(encoder: E, qa_outputs: Linear) -> Self {
        Self { encoder, qa_outputs }
    }

    /// `encoder` with `qa_outputs` (with bias) loaded from `vb`.
    pub fn with_qa_outputs(encoder: E, vb: VarBuilder<'_>) -> Result<Self> {
        let qa_outputs = linear(encoder.hidden_size(), 2, vb.pp("qa_outputs"))?;
        Ok(Self { encoder, qa_outputs })
    }

    /// The network under the head.
    pub fn encoder(&self) -> &E {
        &self.encoder
    }

    /// `(start_logits, end_logits)`, each `[batch, seq]`.
    pub fn logits(&self, inputs: &ModelInputs) -> Result<(Tensor, Tensor)> {
        split_start_end(&self.qa_outputs.forward(&self.encoder.encode(inputs)?.last_hidden_state)?)
    }

    /// The output: the logits and, for an encoder-decoder under the head, the
    /// `encoder_last_hidden_state` its base output carries (`Seq2SeqQuestionAnsweringModelOutput`).
    pub fn output(&self, inputs: &ModelInputs) -> Result<QuestionAnsweringOutput> {
        let base = self.encoder.encode(inputs)?;
        let (start, end) = split_start_end(&self.qa_outputs.forward(&base.last_hidden_state)?)?;
        let out = QuestionAnsweringOutput::new(start, end);
        Ok(match base.extra("encoder_last_hidden_state") {
            Some(encoder) => out.with_extra("encoder_last_hidden_state", encoder.clone()),
            None => out,
        })
    }
}

macro_rules! through_encoder {
    ($($head:ident),*) => {$(
        impl<E: Encoder> PreTrainedModel for $head<E> {
            fn device(&self) -> &Device {
                self.encoder().device()
            }

            fn dtype(&self) -> DType {
                self.encoder().dtype()
            }
        }
    )*};
}

through_encoder!(SequenceClassifier, MultipleChoice, TokenClassifier, QuestionAnswerer);

impl<E: Encoder> ForSequenceClassification for SequenceClassifier<E> {
    fn forward(&self, inputs: &ModelInputs) -> Result<SequenceClassifierOutput> {
        Ok(SequenceClassifierOutput::new(self.logits(inputs)?))
    }
}

impl<E: Encoder> ForMultipleChoice for MultipleChoice<E> {
    fn forward(&self, inputs: &ModelInputs) -> Result<MultipleChoiceOutput> {
        Ok(MultipleChoiceOutput::new(self.logits(inputs)?))
    }
}

impl<E: Encoder> ForTokenClassification for TokenClassifier<E> {
    fn forward(&self, inputs: &ModelInputs) -> Result<TokenClassifierOutput> {
        Ok(TokenClassifierOutput::new(self.logits(inputs)?))
    }
}

impl<E: Encoder> ForQuestionAnswering for QuestionAnswerer<E> {
    fn forward(&self, inputs: &ModelInputs) -> Result<QuestionAnsweringOutput> {
        self.output(inputs)
    }
}

/// candle for the code [`register_heads!`] generates. Not public API.
#[doc(hidden)]
pub use candle_core as __candle_core;

/// Define the registered head types of one model type: one struct per `transformers` class,
/// each a thin shell over the head its architecture family shares.
///
/// ```text
/// autocandle_core::register_heads! {
///     family: autocandle_decoder, config: LlamaConfig, prefix: "model";
///     base: LlamaModel;
///     causal_lm: LlamaForCausalLM;
///     sequence_classification: LlamaForSequenceClassification;
///     /// Extra docs go before an entry.
///     question_answering(prefix = "transformer"): LlamaForQuestionAnswering;
///     text_encoding: TextEncoding as "LlamaModel";
/// }
/// ```
///
/// Each entry `task: Name` defines `pub struct Name { inner: family::__heads::Task }`, with
/// `#[derive(Debug, AutoRegister)]` for the config's model type and the task (`as "Class"` registers it
/// under another class name), `LoadModel` (`Config` = `config`, `BASE_MODEL_PREFIX` = `prefix`,
/// or the entry's own), `PreTrainedModel`, the task's trait delegating to the inner head, and
/// `inner()`.
///
/// `family` names the crate that holds the shared heads (`crate` inside it). It provides a
/// module `__heads` with one type per task it supports (`Base`,
/// `TextEncoding`, `CausalLm`, `Seq2SeqLm`, `MaskedLm`, `PreTraining`, `NextSentencePrediction`,
/// `SequenceClassification`, `TokenClassification`, `QuestionAnswering`, `MultipleChoice`,
/// `ImageClassification`, `MaskedImageModeling`, `ZeroShotImageClassification`), each implementing the task's
/// trait (`Model` for `Base`), and a function
/// `load<H>(vb, config: &Config, prefix: &'static str, class: &'static str) -> Result<H>`
/// that builds any of them. The calling crate depends on `autocandle-core` (the derive's
/// generated code names it).
#[macro_export]
macro_rules! register_heads {
    (
        family: $family:ident, config: $config:ty, prefix: $prefix:literal;
        $( $(#[$meta:meta])* $task:ident $( ( prefix = $own_prefix:literal ) )? : $name:ident $( as $class:literal )? ; )+
    ) => {
        $(
            $crate::__register_head! {
                $task [$(#[$meta])*] [$($class)?] $family, $config, $name,
                $crate::__head_prefix!($prefix $(, $own_prefix)?)
            }
        )+
    };
}

/// The base model prefix of a [`register_heads!`] entry. Not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __head_prefix {
    ($prefix:literal) => {
        $prefix
    };
    ($prefix:literal, $own:literal) => {
        $own
    };
}

/// One head of [`register_heads!`]: the task's inner type, derive attribute, docs and trait.
/// Not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __register_head {
    (base $meta:tt $class:tt $family:ident, $config:ty, $name:ident, $prefix:expr) => {
        $crate::__head_shell! {
            $meta $class $family, $config, $name, $prefix, "base", Base,
            "the network without a head (`AutoModel`)"
        }

        impl $crate::Model for $name {
            fn forward(&self, inputs: &$crate::ModelInputs) -> $crate::Result<$crate::BaseModelOutput> {
                $crate::Model::forward(&self.inner, inputs)
            }
        }
    };

    (text_encoding $meta:tt $class:tt $family:ident, $config:ty, $name:ident, $prefix:expr) => {
        $crate::__head_shell! {
            $meta $class $family, $config, $name, $prefix, "text-encoding", TextEncoding,
            "the text encoder (`AutoModelForTextEncoding`)"
        }

        impl $crate::ForTextEncoding for $name {
            fn forward(&self, inputs: &$crate::ModelInputs) -> $crate::Result<$crate::BaseModelOutput> {
                $crate::ForTextEncoding::forward(&self.inner, inputs)
            }
        }
    };

    (causal_lm $meta:tt $class:tt $family:ident, $config:ty, $name:ident, $prefix:expr) => {
        $crate::__head_shell! {
            $meta $class $family, $config, $name, $prefix, "causal-lm", CausalLm,
            "the network with its language-modelling head (`AutoModelForCausalLM`); `logits` are `[batch, seq, vocab_size]`"
        }

        impl $crate::ForCausalLm for $name {
            fn forward(&self, inputs: &$crate::ModelInputs) -> $crate::Result<$crate::CausalLmOutput> {
                $crate::ForCausalLm::forward(&self.inner, inputs)
            }

            fn forward_with_cache(
                &self,
                inputs: &$crate::ModelInputs,
                cache: &mut $crate::KvCache,
            ) -> $crate::Result<$crate::CausalLmOutput> {
                $crate::ForCausalLm::forward_with_cache(&self.inner, inputs, cache)
            }

            fn supports_cache(&self) -> bool {
                $crate::ForCausalLm::supports_cache(&self.inner)
            }

            fn max_positions(&self) -> ::core::option::Option<usize> {
                $crate::ForCausalLm::max_positions(&self.inner)
            }

            fn reset_cache_at(&self, past: usize, total: usize) -> bool {
                $crate::ForCausalLm::reset_cache_at(&self.inner, past, total)
            }
        }
    };

    (seq2seq_lm $meta:tt $class:tt $family:ident, $config:ty, $name:ident, $prefix:expr) => {
        $crate::__head_shell! {
            $meta $class $family, $config, $name, $prefix, "seq2seq-lm", Seq2SeqLm,
            "the encoder-decoder with its language-modelling head (`AutoModelForSeq2SeqLM`); `logits` are \
             `[batch, target_seq, vocab_size]`"
        }

        impl $crate::ForSeq2SeqLm for $name {
            fn forward(&self, inputs: &$crate::ModelInputs) -> $crate::Result<$crate::Seq2SeqLmOutput> {
                $crate::ForSeq2SeqLm::forward(&self.inner, inputs)
            }

            fn encode(&self, inputs: &$crate::ModelInputs) -> $crate::Result<$crate::EncoderOutput> {
                $crate::ForSeq2SeqLm::encode(&self.inner, inputs)
            }

            fn decode(
                &self,
                decoder_input_ids: &$crate::heads::__candle_core::Tensor,
                encoder: &$crate::EncoderOutput,
                cache: &mut $crate::Seq2SeqCache,
            ) -> $crate::Result<$crate::heads::__candle_core::Tensor> {
                $crate::ForSeq2SeqLm::decode(&self.inner, decoder_input_ids, encoder, cache)
            }

            fn decoder_start_token_id(&self) -> ::core::option::Option<u32> {
                $crate::ForSeq2SeqLm::decoder_start_token_id(&self.inner)
            }

            fn max_source_positions(&self) -> ::core::option::Option<usize> {
                $crate::ForSeq2SeqLm::max_source_positions(&self.inner)
            }

            fn max_target_positions(&self) -> ::core::option::Option<usize> {
                $crate::ForSeq2SeqLm::max_target_positions(&self.inner)
            }
        }
    };

    (masked_lm $($rest:tt)*) => {
        $crate::__register_head!(@one masked_lm, "masked-lm", MaskedLm, ForMaskedLm, MaskedLmOutput,
            "the network with its masked language modelling head; `logits` are `[batch, seq, vocab_size]`"; $($rest)*);
    };
    (pretraining $($rest:tt)*) => {
        $crate::__register_head!(@one pretraining, "pretraining", PreTraining, ForPreTraining, PreTrainingOutput,
            "the network with its pretraining heads; the output's fields are the `transformers` class's \
             (see `PreTrainingOutput`)"; $($rest)*);
    };
    (next_sentence_prediction $($rest:tt)*) => {
        $crate::__register_head!(@one next_sentence_prediction, "next-sentence-prediction", NextSentencePrediction,
            ForNextSentencePrediction, NextSentencePredictorOutput,
            "the network with a next sentence prediction head; `logits` are `[batch, 2]`"; $($rest)*);
    };
    (image_classification $($rest:tt)*) => {
        $crate::__register_head!(@one image_classification, "image-classification", ImageClassification,
            ForImageClassification, ImageClassifierOutput,
            "the network with an image classification head; `logits` are `[batch, num_labels]`"; $($rest)*);
    };
    (masked_image_modeling $($rest:tt)*) => {
        $crate::__register_head!(@one masked_image_modeling, "masked-image-modeling", MaskedImageModeling,
            ForMaskedImageModeling, MaskedImageModelingOutput,
            "the network with a masked image modelling head; `reconstruction` is `[batch, channels, height, width]`";
            $($rest)*);
    };
    (zero_shot_image_classification $($rest:tt)*) => {
        $crate::__register_head!(@one zero_shot_image_classification, "zero-shot-image-classification",
            ZeroShotImageClassification, ForZeroShotImageClassification, ZeroShotImageClassificationOutput,
            "the contrastive image-text model; `logits_per_image` are `[images, texts]`"; $($rest)*);
    };
    (sequence_classification $($rest:tt)*) => {
        $crate::__register_head!(@one sequence_classification, "sequence-classification", SequenceClassification,
            ForSequenceClassification, SequenceClassifierOutput,
            "the network with a sequence classification head; `logits` are `[batch, num_labels]`"; $($rest)*);
    };
    (token_classification $($rest:tt)*) => {
        $crate::__register_head!(@one token_classification, "token-classification", TokenClassification,
            ForTokenClassification, TokenClassifierOutput,
            "the network with a classifier on every token; `logits` are `[batch, seq, num_labels]`"; $($rest)*);
    };
    (question_answering $($rest:tt)*) => {
        $crate::__register_head!(@one question_answering, "question-answering", QuestionAnswering,
            ForQuestionAnswering, QuestionAnsweringOutput,
            "the network with a span head `qa_outputs` scoring every token as the start and the end of the \
             answer; `start_logits` and `end_logits` are `[batch, seq]`"; $($rest)*);
    };
    (multiple_choice $($rest:tt)*) => {
        $crate::__register_head!(@one multiple_choice, "multiple-choice", MultipleChoice, ForMultipleChoice,
            MultipleChoiceOutput,
            "the network with a multiple choice head: inputs are `[batch, choices, seq]`, each choice is \
             encoded on its own and scored; `logits` are `[batch, choices]`"; $($rest)*);
    };

    (@one $task:ident, $task_name:literal, $inner:ident, $trait:ident, $output:ident, $doc:literal;
        $meta:tt $class:tt $family:ident, $config:ty, $name:ident, $prefix:expr) => {
        $crate::__head_shell! {
            $meta $class $family, $config, $name, $prefix, $task_name, $inner, $doc
        }

        impl $crate::$trait for $name {
            fn forward(&self, inputs: &$crate::ModelInputs) -> $crate::Result<$crate::$output> {
                $crate::$trait::forward(&self.inner, inputs)
            }
        }
    };

    ($other:ident $($rest:tt)*) => {
        ::core::compile_error!(concat!(
            "unknown head `", stringify!($other), "` in `register_heads!`: known heads: base, text_encoding, ",
            "causal_lm, seq2seq_lm, masked_lm, pretraining, next_sentence_prediction, sequence_classification, ",
            "token_classification, question_answering, multiple_choice, image_classification, ",
            "masked_image_modeling, zero_shot_image_classification"
        ));
    };
}

/// The struct of a [`register_heads!`] entry, its `LoadModel`, `PreTrainedModel` and
/// `inner()`. Not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __head_shell {
    (
        [$(#[$meta:meta])*] [$($class:literal)?] $family:ident, $config:ty, $name:ident,
        $prefix:expr, $task_name:literal, $inner:ident, $doc:literal
    ) => {
        $crate::__head_struct! {
            [
                #[doc = concat!("`", stringify!($name), "`: ", $doc, ".")]
                $(#[$meta])*
            ]
            [$($class)?] $task_name, $name, $family, $inner
        }

        impl $crate::LoadModel for $name {
            type Config = $config;
            const BASE_MODEL_PREFIX: &'static str = $prefix;

            fn load(vb: $crate::__private::VarBuilder<'_>, config: &$config) -> $crate::Result<Self> {
                let prefix = <Self as $crate::LoadModel>::BASE_MODEL_PREFIX;
                ::core::result::Result::Ok(Self { inner: $family::__heads::load(vb, config, prefix, stringify!($name))? })
            }
        }

        impl $crate::PreTrainedModel for $name {
            fn device(&self) -> &$crate::heads::__candle_core::Device {
                $crate::PreTrainedModel::device(&self.inner)
            }

            fn dtype(&self) -> $crate::heads::__candle_core::DType {
                $crate::PreTrainedModel::dtype(&self.inner)
            }
        }

        impl $name {
            /// The shared head this type delegates to.
            pub fn inner(&self) -> &$family::__heads::$inner {
                &self.inner
            }
        }
    };
}

/// The struct and derive of a [`register_heads!`] entry, with or without a class name of its
/// own. Not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __head_struct {
    ([$($meta:tt)*] [] $task_name:literal, $name:ident, $family:ident, $inner:ident) => {
        $($meta)*
        #[derive(Debug, $crate::AutoRegister)]
        #[auto(task = $task_name)]
        pub struct $name {
            inner: $family::__heads::$inner,
        }
    };
    ([$($meta:tt)*] [$class:literal] $task_name:literal, $name:ident, $family:ident, $inner:ident) => {
        $($meta)*
        #[derive(Debug, $crate::AutoRegister)]
        #[auto(task = $task_name, class = $class)]
        pub struct $name {
            inner: $family::__heads::$inner,
        }
    };
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::*;

    #[test]
    fn last_non_pad_pooling_follows_transformers() {
        let ids = Tensor::new(&[[0u32, 4, 5, 0], [3, 0, 0, 0], [0, 0, 0, 0]], &Device::Cpu).unwrap();
        let pooling = Pooling::LastNonPad { pad_token_id: Some(0) };
        assert_eq!(pooling.last_non_pad_indices(&ids).unwrap(), Some(vec![2, 0, 0]));
        let no_pad = Pooling::LastNonPad { pad_token_id: None };
        assert_eq!(no_pad.last_non_pad_indices(&ids.narrow(0, 0, 1).unwrap()).unwrap(), Some(vec![3]));
        let err = no_pad.last_non_pad_indices(&ids).unwrap_err();
        assert!(err.to_string().contains("without a padding token"), "{err}");
        assert_eq!(Pooling::FirstToken.last_non_pad_indices(&ids).unwrap(), None);
    }

    #[test]
    fn span_logits_split_and_label_check() {
        let logits = Tensor::new(&[[[1f32, 2.], [3., 4.], [5., 6.]]], &Device::Cpu).unwrap();
        let (start, end) = split_start_end(&logits).unwrap();
        assert_eq!(start.to_vec2::<f32>().unwrap(), [[1., 3., 5.]]);
        assert_eq!(end.to_vec2::<f32>().unwrap(), [[2., 4., 6.]]);
        assert!(require_two_labels("bert", "BertForQuestionAnswering", 2).is_ok());
        let err = require_two_labels("bert", "BertForQuestionAnswering", 3).unwrap_err().to_string();
        assert!(err.contains("BertForQuestionAnswering needs 2 labels") && err.contains("has 3"), "{err}");
    }

    #[test]
    fn classifiers_and_choices() {
        let cpu = &Device::Cpu;
        let eye = Tensor::new(&[[1f32, 0.], [0., 1.]], cpu).unwrap();
        let neg = Tensor::new(&[[-1f32, 0.], [0., -1.]], cpu).unwrap();
        let x = Tensor::new(&[[0.5f32, -2.]], cpu).unwrap();
        let relu = Classifier::DenseRelu { dense: Linear::new(eye.clone(), None), out_proj: Linear::new(neg, None) };
        assert_eq!(relu.forward(&x).unwrap().to_vec2::<f32>().unwrap(), [[-0.5, 0.]]);
        let tanh = Classifier::DenseTanh { dense: Linear::new(eye.clone(), None), out_proj: Linear::new(eye, None) };
        let want = [[0.5f32.tanh(), (-2f32).tanh()]];
        assert_eq!(tanh.forward(&x).unwrap().to_vec2::<f32>().unwrap(), want);

        let ids = Tensor::zeros((2, 3, 4), DType::U32, cpu).unwrap();
        let (flat, shape) = flatten_choices(&ModelInputs::new(ids.clone())).unwrap();
        assert_eq!((flat.input_ids().unwrap().dims(), shape), (&[6usize, 4][..], (2, 3)));
        let bad = ModelInputs::new(ids).with_attention_mask(Tensor::zeros((2, 3, 5), DType::U32, cpu).unwrap());
        assert!(flatten_choices(&bad).is_err());
        assert!(flatten_choices(&ModelInputs::new(Tensor::zeros((2, 4), DType::U32, cpu).unwrap())).is_err());
    }
}
