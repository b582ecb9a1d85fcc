//! [`decoder_heads!`](crate::decoder_heads): the head types of a llama-like architecture,
//! registered with `#[derive(AutoRegister)]` and delegating to the shared heads.

/// Define the head types of a llama-like architecture.
///
/// ```text
/// autocandle_decoder::decoder_heads! {
///     config: LlamaConfig, model_type: "llama";
///     base: LlamaModel;
///     causal_lm: LlamaForCausalLM;
///     sequence_classification: LlamaForSequenceClassification;
///     token_classification: LlamaForTokenClassification;
///     /// Extra docs go before an entry.
///     question_answering(prefix = "transformer"): LlamaForQuestionAnswering;
/// }
/// ```
///
/// Each entry defines a struct named as the `transformers` class, with
/// `#[derive(Debug, AutoRegister)]` for `model_type` and the entry's task, its `LoadModel`
/// (`Config` = the given config, which implements [`DecoderConfig`](crate::DecoderConfig);
/// `BASE_MODEL_PREFIX` = `model`, or the entry's `prefix`), `PreTrainedModel`, and the task's
/// trait delegating to the shared head ([`DecoderModel`](crate::DecoderModel),
/// [`CausalLm`](crate::CausalLm), [`SequenceClassifier`](crate::SequenceClassifier),
/// [`TokenClassifier`](crate::TokenClassifier), [`QuestionAnswerer`](crate::QuestionAnswerer)),
/// reachable through `inner()`.
///
/// Entries: `base`, `causal_lm`, `sequence_classification`, `token_classification`,
/// `question_answering`, each optional, in any order. The calling crate must depend on
/// `autocandle-core` (the derive's generated code names it).
#[macro_export]
macro_rules! decoder_heads {
    (
        config: $config:ty, model_type: $model_type:literal;
        $( $(#[$meta:meta])* $task:ident $( ( prefix = $prefix:literal ) )? : $name:ident; )+
    ) => {
        $(
            $crate::__decoder_head! {
                $task [$(#[$meta])*] $config, $model_type, $name, $crate::__decoder_prefix!($($prefix)?)
            }
        )+
    };
}

/// The base model prefix of a [`decoder_heads!`] entry. Not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __decoder_prefix {
    () => {
        "model"
    };
    ($prefix:literal) => {
        $prefix
    };
}

/// One head of [`decoder_heads!`]. Not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __decoder_head {
    (base [$(#[$meta:meta])*] $config:ty, $model_type:literal, $name:ident, $prefix:expr) => {
        #[doc = concat!("`", stringify!($name), "`: the decoder without a head; `last_hidden_state` is ",
            "`[batch, seq, hidden_size]` after the final norm.")]
        $(#[$meta])*
        #[derive(Debug, ::autocandle_core::AutoRegister)]
        #[auto(task = "base")]
        pub struct $name {
            inner: $crate::DecoderModel,
        }

        $crate::__decoder_common!($name, $config, $prefix, $crate::DecoderModel, |vb, spec, _prefix| {
            $crate::DecoderModel::load(vb, &spec)
        });

        impl ::autocandle_core::Model for $name {
            fn forward(
                &self,
                inputs: &::autocandle_core::ModelInputs,
            ) -> ::autocandle_core::Result<::autocandle_core::BaseModelOutput> {
                ::core::result::Result::Ok(::autocandle_core::BaseModelOutput::new(
                    self.inner.forward(inputs)?,
                    ::core::option::Option::None,
                ))
            }
        }

        impl $name {
            /// Run the decoder on new tokens with a key/value cache (see `ForCausalLm::forward_with_cache`).
            pub fn forward_with_cache(
                &self,
                inputs: &::autocandle_core::ModelInputs,
                cache: &mut ::autocandle_core::KvCache,
            ) -> ::autocandle_core::Result<::autocandle_core::BaseModelOutput> {
                ::core::result::Result::Ok(::autocandle_core::BaseModelOutput::new(
                    self.inner.forward_with_cache(inputs, cache)?,
                    ::core::option::Option::None,
                ))
            }
        }
    };

    (causal_lm [$(#[$meta:meta])*] $config:ty, $model_type:literal, $name:ident, $prefix:expr) => {
        #[doc = concat!("`", stringify!($name), "`: the decoder with its language-modelling head `lm_head` ",
            "(tied to `embed_tokens` with `tie_word_embeddings`); `logits` are `[batch, seq, vocab_size]`. ",
            "Supports the key/value cache.")]
        $(#[$meta])*
        #[derive(Debug, ::autocandle_core::AutoRegister)]
        #[auto(task = "causal-lm")]
        pub struct $name {
            inner: $crate::CausalLm,
        }

        $crate::__decoder_common!($name, $config, $prefix, $crate::CausalLm, |vb, spec, prefix| {
            $crate::CausalLm::load(vb, &spec, prefix)
        });

        impl ::autocandle_core::ForCausalLm for $name {
            fn forward(
                &self,
                inputs: &::autocandle_core::ModelInputs,
            ) -> ::autocandle_core::Result<::autocandle_core::CausalLmOutput> {
                ::core::result::Result::Ok(::autocandle_core::CausalLmOutput::new(self.inner.forward(inputs)?))
            }

            fn forward_with_cache(
                &self,
                inputs: &::autocandle_core::ModelInputs,
                cache: &mut ::autocandle_core::KvCache,
            ) -> ::autocandle_core::Result<::autocandle_core::CausalLmOutput> {
                ::core::result::Result::Ok(::autocandle_core::CausalLmOutput::new(
                    self.inner.forward_with_cache(inputs, cache)?,
                ))
            }

            fn supports_cache(&self) -> bool {
                true
            }

            fn max_positions(&self) -> ::core::option::Option<usize> {
                self.inner.model().max_positions()
            }

            fn reset_cache_at(&self, past: usize, total: usize) -> bool {
                self.inner.reset_cache_at(past, total)
            }
        }
    };

    (sequence_classification [$(#[$meta:meta])*] $config:ty, $model_type:literal, $name:ident, $prefix:expr) => {
        #[doc = concat!("`", stringify!($name), "`: the decoder with a classifier `score` (no bias) on the ",
            "last token that is not `pad_token_id`; `logits` are `[batch, num_labels]`. Without a ",
            "`pad_token_id` only a batch of one is accepted, as in `transformers`.")]
        $(#[$meta])*
        #[derive(Debug, ::autocandle_core::AutoRegister)]
        #[auto(task = "sequence-classification")]
        pub struct $name {
            inner: $crate::SequenceClassifier,
        }

        $crate::__decoder_common!($name, $config, $prefix, $crate::SequenceClassifier, |vb, spec, prefix| {
            $crate::SequenceClassifier::load(vb, &spec, prefix)
        });

        impl ::autocandle_core::ForSequenceClassification for $name {
            fn forward(
                &self,
                inputs: &::autocandle_core::ModelInputs,
            ) -> ::autocandle_core::Result<::autocandle_core::SequenceClassifierOutput> {
                ::core::result::Result::Ok(::autocandle_core::SequenceClassifierOutput::new(
                    self.inner.forward(inputs)?,
                ))
            }
        }
    };

    (token_classification [$(#[$meta:meta])*] $config:ty, $model_type:literal, $name:ident, $prefix:expr) => {
        #[doc = concat!("`", stringify!($name), "`: the decoder with a classifier `score` on every token; ",
            "`logits` are `[batch, seq, num_labels]`.")]
        $(#[$meta])*
        #[derive(Debug, ::autocandle_core::AutoRegister)]
        #[auto(task = "token-classification")]
        pub struct $name {
            inner: $crate::TokenClassifier,
        }

        $crate::__decoder_common!($name, $config, $prefix, $crate::TokenClassifier, |vb, spec, prefix| {
            $crate::TokenClassifier::load(vb, &spec, prefix)
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

    (question_answering [$(#[$meta:meta])*] $config:ty, $model_type:literal, $name:ident, $prefix:expr) => {
        #[doc = concat!("`", stringify!($name), "`: the decoder with a span head `qa_outputs` scoring every ",
            "token as the start and the end of the answer; `start_logits` and `end_logits` are `[batch, seq]`.")]
        $(#[$meta])*
        #[derive(Debug, ::autocandle_core::AutoRegister)]
        #[auto(task = "question-answering")]
        pub struct $name {
            inner: $crate::QuestionAnswerer,
        }

        $crate::__decoder_common!($name, $config, $prefix, $crate::QuestionAnswerer, |vb, spec, prefix| {
            $crate::QuestionAnswerer::load(vb, &spec, prefix)
        });

        impl ::autocandle_core::ForQuestionAnswering for $name {
            fn forward(
                &self,
                inputs: &::autocandle_core::ModelInputs,
            ) -> ::autocandle_core::Result<::autocandle_core::QuestionAnsweringOutput> {
                let (start, end) = self.inner.forward(inputs)?;
                ::core::result::Result::Ok(::autocandle_core::QuestionAnsweringOutput::new(start, end))
            }
        }
    };

    ($other:ident [$(#[$meta:meta])*] $($rest:tt)*) => {
        ::core::compile_error!(concat!(
            "unknown head `", stringify!($other), "` in `decoder_heads!`: known heads: base, causal_lm, ",
            "sequence_classification, token_classification, question_answering"
        ));
    };
}

/// `LoadModel`, `PreTrainedModel` and `inner()` of a head. Not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __decoder_common {
    ($name:ident, $config:ty, $prefix:expr, $inner:ty, |$vb:ident, $spec:ident, $p:ident| $load:expr) => {
        impl ::autocandle_core::LoadModel for $name {
            type Config = $config;
            const BASE_MODEL_PREFIX: &'static str = $prefix;

            fn load($vb: $crate::__private::VarBuilder<'_>, config: &$config) -> ::autocandle_core::Result<Self> {
                let $spec = <$config as $crate::DecoderConfig>::decoder_spec(config)?;
                let $p = <Self as ::autocandle_core::LoadModel>::BASE_MODEL_PREFIX;
                ::core::result::Result::Ok(Self { inner: $load? })
            }
        }

        impl ::autocandle_core::PreTrainedModel for $name {
            fn device(&self) -> &$crate::__private::candle_core::Device {
                $crate::HasDecoder::device(&self.inner)
            }

            fn dtype(&self) -> $crate::__private::candle_core::DType {
                $crate::HasDecoder::dtype(&self.inner)
            }
        }

        impl $name {
            /// The shared head this type delegates to.
            pub fn inner(&self) -> &$inner {
                &self.inner
            }
        }
    };
}
