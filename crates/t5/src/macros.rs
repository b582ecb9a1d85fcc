//! [`t5_heads!`](crate::t5_heads): the head types of a T5-like architecture, registered with
//! `#[derive(AutoRegister)]` and delegating to the shared T5 network.

/// Define the head types of a T5-like architecture.
///
/// ```text
/// autocandle_t5::t5_heads! {
///     config: MT5Config, model_type: "mt5";
///     base: MT5Model;
///     seq2seq_lm: MT5ForConditionalGeneration;
///     text_encoding: MT5EncoderModel;
///     sequence_classification: MT5ForSequenceClassification;
///     token_classification: MT5ForTokenClassification;
///     question_answering: MT5ForQuestionAnswering;
/// }
/// ```
///
/// Each entry defines a struct named as the `transformers` class, with
/// `#[derive(Debug, AutoRegister)]` for `model_type` and the entry's task, its `LoadModel`
/// (`Config` = the given config, which implements [`T5LikeConfig`](crate::T5LikeConfig);
/// `BASE_MODEL_PREFIX` = `transformer`), `PreTrainedModel`, and the task's trait delegating to
/// the shared network ([`T5EncoderDecoder`](crate::T5EncoderDecoder),
/// [`T5ConditionalGeneration`](crate::T5ConditionalGeneration),
/// [`T5EncoderStack`](crate::T5EncoderStack), [`T5SequenceClassifier`](crate::T5SequenceClassifier),
/// [`T5TokenClassifier`](crate::T5TokenClassifier),
/// [`T5QuestionAnswerer`](crate::T5QuestionAnswerer)), reachable through `inner()`.
///
/// Entries are optional and in any order. The calling crate must depend on `autocandle-core`
/// (the derive's generated code names it).
#[macro_export]
macro_rules! t5_heads {
    (
        config: $config:ty, model_type: $model_type:literal;
        $( $(#[$meta:meta])* $task:ident : $name:ident; )+
    ) => {
        $(
            $crate::__t5_head! { $task [$(#[$meta])*] $config, $model_type, $name }
        )+
    };
}

/// One head of [`t5_heads!`]. Not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __t5_head {
    (base [$(#[$meta:meta])*] $config:ty, $model_type:literal, $name:ident) => {
        #[doc = concat!("`", stringify!($name), "`: the encoder-decoder without a head. `last_hidden_state` is ",
            "the decoder's `[batch, target_seq, d_model]`; `extra` holds `encoder_last_hidden_state`. Needs ",
            "`decoder_input_ids`.")]
        $(#[$meta])*
        #[derive(Debug, ::autocandle_core::AutoRegister)]
        #[auto(task = "base")]
        pub struct $name {
            inner: $crate::T5EncoderDecoder,
        }

        $crate::__t5_common!($name, $config, $crate::T5EncoderDecoder, |vb, spec| {
            $crate::T5EncoderDecoder::load(vb, &spec, &[])
        });

        impl ::autocandle_core::Model for $name {
            fn forward(
                &self,
                inputs: &::autocandle_core::ModelInputs,
            ) -> ::autocandle_core::Result<::autocandle_core::BaseModelOutput> {
                $crate::base_output(&self.inner, inputs, stringify!($name))
            }
        }
    };

    (seq2seq_lm [$(#[$meta:meta])*] $config:ty, $model_type:literal, $name:ident) => {
        #[doc = concat!("`", stringify!($name), "`: the encoder-decoder with its language-modelling head; ",
            "`logits` are `[batch, target_seq, vocab_size]`. Runs the encoder once and the decoder ",
            "incrementally on a `Seq2SeqCache` for generation.")]
        $(#[$meta])*
        #[derive(Debug, ::autocandle_core::AutoRegister)]
        #[auto(task = "seq2seq-lm")]
        pub struct $name {
            inner: $crate::T5ConditionalGeneration,
        }

        $crate::__t5_common!($name, $config, $crate::T5ConditionalGeneration, |vb, spec| {
            $crate::T5ConditionalGeneration::load(vb, &spec)
        });

        impl ::autocandle_core::ForSeq2SeqLm for $name {
            fn forward(
                &self,
                inputs: &::autocandle_core::ModelInputs,
            ) -> ::autocandle_core::Result<::autocandle_core::Seq2SeqLmOutput> {
                let (logits, encoder) = self.inner.forward(inputs, stringify!($name))?;
                ::core::result::Result::Ok(::autocandle_core::Seq2SeqLmOutput::new(
                    logits,
                    encoder.last_hidden_state,
                ))
            }

            fn encode(
                &self,
                inputs: &::autocandle_core::ModelInputs,
            ) -> ::autocandle_core::Result<::autocandle_core::EncoderOutput> {
                self.inner.model().encode(inputs)
            }

            fn decode(
                &self,
                decoder_input_ids: &$crate::__private::candle_core::Tensor,
                encoder: &::autocandle_core::EncoderOutput,
                cache: &mut ::autocandle_core::Seq2SeqCache,
            ) -> ::autocandle_core::Result<$crate::__private::candle_core::Tensor> {
                self.inner.decode(decoder_input_ids, encoder, cache)
            }

            fn decoder_start_token_id(&self) -> ::core::option::Option<u32> {
                self.inner.model().spec().decoder_start_token()
            }
        }
    };

    (text_encoding [$(#[$meta:meta])*] $config:ty, $model_type:literal, $name:ident) => {
        #[doc = concat!("`", stringify!($name), "`: the encoder alone; `last_hidden_state` is ",
            "`[batch, seq, d_model]`.")]
        $(#[$meta])*
        #[derive(Debug, ::autocandle_core::AutoRegister)]
        #[auto(task = "text-encoding")]
        pub struct $name {
            inner: $crate::T5EncoderStack,
        }

        $crate::__t5_common!($name, $config, $crate::T5EncoderStack, |vb, spec| {
            $crate::T5EncoderStack::load(vb, &spec)
        });

        impl ::autocandle_core::ForTextEncoding for $name {
            fn forward(
                &self,
                inputs: &::autocandle_core::ModelInputs,
            ) -> ::autocandle_core::Result<::autocandle_core::BaseModelOutput> {
                ::core::result::Result::Ok(::autocandle_core::BaseModelOutput::new(
                    self.inner.encode(inputs)?.last_hidden_state,
                    ::core::option::Option::None,
                ))
            }
        }
    };

    (sequence_classification [$(#[$meta:meta])*] $config:ty, $model_type:literal, $name:ident) => {
        #[doc = concat!("`", stringify!($name), "`: the encoder-decoder (under `transformer`) with a ",
            "classification head on the decoder state at the last `eos_token_id` of `input_ids`; `logits` are ",
            "`[batch, num_labels]`.")]
        $(#[$meta])*
        #[derive(Debug, ::autocandle_core::AutoRegister)]
        #[auto(task = "sequence-classification")]
        pub struct $name {
            inner: $crate::T5SequenceClassifier,
        }

        $crate::__t5_common!($name, $config, $crate::T5SequenceClassifier, |vb, spec| {
            $crate::T5SequenceClassifier::load(vb, &spec)
        });

        impl ::autocandle_core::ForSequenceClassification for $name {
            fn forward(
                &self,
                inputs: &::autocandle_core::ModelInputs,
            ) -> ::autocandle_core::Result<::autocandle_core::SequenceClassifierOutput> {
                ::core::result::Result::Ok(::autocandle_core::SequenceClassifierOutput::new(
                    self.inner.forward(inputs, stringify!($name))?,
                ))
            }
        }
    };

    (token_classification [$(#[$meta:meta])*] $config:ty, $model_type:literal, $name:ident) => {
        #[doc = concat!("`", stringify!($name), "`: the encoder (under `transformer`) with a classifier on ",
            "every token; `logits` are `[batch, seq, num_labels]`.")]
        $(#[$meta])*
        #[derive(Debug, ::autocandle_core::AutoRegister)]
        #[auto(task = "token-classification")]
        pub struct $name {
            inner: $crate::T5TokenClassifier,
        }

        $crate::__t5_common!($name, $config, $crate::T5TokenClassifier, |vb, spec| {
            $crate::T5TokenClassifier::load(vb, &spec)
        });

        impl ::autocandle_core::ForTokenClassification for $name {
            fn forward(
                &self,
                inputs: &::autocandle_core::ModelInputs,
            ) -> ::autocandle_core::Result<::autocandle_core::TokenClassifierOutput> {
                ::core::result::Result::Ok(::autocandle_core::TokenClassifierOutput::new(self.inner.forward(inputs)?))
            }
        }
    };

    (question_answering [$(#[$meta:meta])*] $config:ty, $model_type:literal, $name:ident) => {
        #[doc = concat!("`", stringify!($name), "`: the encoder-decoder with a span head `qa_outputs` on the ",
            "decoder's hidden states; `start_logits` and `end_logits` are `[batch, target_seq]`.")]
        $(#[$meta])*
        #[derive(Debug, ::autocandle_core::AutoRegister)]
        #[auto(task = "question-answering")]
        pub struct $name {
            inner: $crate::T5QuestionAnswerer,
        }

        $crate::__t5_common!($name, $config, $crate::T5QuestionAnswerer, |vb, spec| {
            $crate::T5QuestionAnswerer::load(vb, &spec, stringify!($name))
        });

        impl ::autocandle_core::ForQuestionAnswering for $name {
            fn forward(
                &self,
                inputs: &::autocandle_core::ModelInputs,
            ) -> ::autocandle_core::Result<::autocandle_core::QuestionAnsweringOutput> {
                let (start, end) = self.inner.forward(inputs, stringify!($name))?;
                ::core::result::Result::Ok(::autocandle_core::QuestionAnsweringOutput::new(start, end))
            }
        }
    };

    ($other:ident [$(#[$meta:meta])*] $($rest:tt)*) => {
        ::core::compile_error!(concat!(
            "unknown head `", stringify!($other), "` in `t5_heads!`: known heads: base, seq2seq_lm, ",
            "text_encoding, sequence_classification, token_classification, question_answering"
        ));
    };
}

/// `LoadModel`, `PreTrainedModel` and `inner()` of a head. Not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __t5_common {
    ($name:ident, $config:ty, $inner:ty, |$vb:ident, $spec:ident| $load:expr) => {
        impl ::autocandle_core::LoadModel for $name {
            type Config = $config;
            const BASE_MODEL_PREFIX: &'static str = "transformer";

            fn load($vb: $crate::__private::VarBuilder<'_>, config: &$config) -> ::autocandle_core::Result<Self> {
                let $spec = <$config as $crate::T5LikeConfig>::t5_spec(config)?;
                ::core::result::Result::Ok(Self { inner: $load? })
            }
        }

        impl ::autocandle_core::PreTrainedModel for $name {
            fn device(&self) -> &$crate::__private::candle_core::Device {
                $crate::HasT5::device(&self.inner)
            }

            fn dtype(&self) -> $crate::__private::candle_core::DType {
                $crate::HasT5::dtype(&self.inner)
            }
        }

        impl $name {
            /// The shared network this type delegates to.
            pub fn inner(&self) -> &$inner {
                &self.inner
            }
        }
    };
}
