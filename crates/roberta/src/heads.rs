//! `roberta_heads!`: the registered model types of one RoBERTa-like model type, one per
//! `transformers` class. RoBERTa and XLM-RoBERTa are the same network under two config
//! classes and two sets of class names, so each head is written once here and stamped out
//! for both.

/// Define the registered head types of one RoBERTa-like model type:
///
/// ```ignore
/// roberta_heads! {
///     config: RobertaConfig, model_type: "roberta", name: "RoBERTa";
///     base: RobertaModel;
///     text_encoding: RobertaModel as "RobertaModel";
///     masked_lm: RobertaForMaskedLM;
///     ...
/// }
/// ```
///
/// Tasks: `base`, `text_encoding` (registers the named base type under
/// `AutoModelForTextEncoding`, with the class name given after `as`), `causal_lm`,
/// `masked_lm`, `sequence_classification`, `multiple_choice`, `token_classification`,
/// `question_answering`.
macro_rules! roberta_heads {
    (
        config: $config:ty, model_type: $model_type:literal, name: $display:literal;
        $( $task:ident : $name:ident $(as $class:literal)? ; )+
    ) => {
        $( roberta_head! { $task [$($class)?] $config, $model_type, $display, $name } )+
    };
}

/// What every head type has: `LoadModel` (base model under `roberta`) and `PreTrainedModel`.
macro_rules! roberta_common {
    ($name:ident, $config:ty, |$vb:ident, $spec:ident| $load:expr) => {
        impl ::autocandle_core::LoadModel for $name {
            type Config = $config;
            const BASE_MODEL_PREFIX: &'static str = "roberta";

            fn load($vb: ::candle_nn::VarBuilder<'_>, config: &$config) -> ::autocandle_core::Result<Self> {
                let $spec = $crate::config::RobertaSpec::new(config)?;
                $load
            }
        }

        impl ::autocandle_core::PreTrainedModel for $name {
            fn device(&self) -> &::candle_core::Device {
                ::autocandle_core::PreTrainedModel::device(&self.roberta)
            }

            fn dtype(&self) -> ::candle_core::DType {
                ::autocandle_core::PreTrainedModel::dtype(&self.roberta)
            }
        }
    };
}

/// One head of [`roberta_heads!`].
macro_rules! roberta_head {
    (base [] $config:ty, $model_type:literal, $display:literal, $name:ident) => {
        #[doc = concat!("`", stringify!($name), "`: the ", $display, " encoder without a head; ",
                    "`last_hidden_state` is `[batch, seq, hidden_size]`, and `pooler_output` (dense and tanh ",
                    "on the first token) is there when the weights hold `pooler.dense` (`transformers` would ",
                    "draw a random pooler otherwise).")]
        #[derive(Debug, ::autocandle_core::AutoRegister)]
        #[auto(model_type = $model_type, task = "base")]
        pub struct $name {
            roberta: $crate::model::RobertaEncoder,
        }

        roberta_common!($name, $config, |vb, spec| {
            let add_pooling_layer = vb.contains_tensor("pooler.dense.weight");
            Ok(Self { roberta: $crate::model::RobertaEncoder::new(vb, &spec, add_pooling_layer)? })
        });

        impl $name {
            /// Whether the model has a pooler (and so a `pooler_output`).
            pub fn has_pooler(&self) -> bool {
                self.roberta.has_pooler()
            }
        }

        impl ::autocandle_core::Model for $name {
            fn forward(
                &self,
                inputs: &::autocandle_core::ModelInputs,
            ) -> ::autocandle_core::Result<::autocandle_core::BaseModelOutput> {
                self.roberta.forward(inputs)
            }
        }

        impl ::autocandle_core::ForTextEncoding for $name {
            fn forward(
                &self,
                inputs: &::autocandle_core::ModelInputs,
            ) -> ::autocandle_core::Result<::autocandle_core::BaseModelOutput> {
                self.roberta.forward(inputs)
            }
        }
    };

    (text_encoding [$class:literal] $config:ty, $model_type:literal, $display:literal, $name:ident) => {
        /// The base model registered as the text encoder (`AutoModelForTextEncoding` gives the
        /// base model class).
        #[derive(Debug, ::autocandle_core::AutoRegister)]
        #[auto(model_type = $model_type, task = "text-encoding", class = $class)]
        struct TextEncoding($name);

        impl ::autocandle_core::LoadModel for TextEncoding {
            type Config = $config;
            const BASE_MODEL_PREFIX: &'static str = "roberta";

            fn load(vb: ::candle_nn::VarBuilder<'_>, config: &$config) -> ::autocandle_core::Result<Self> {
                <$name as ::autocandle_core::LoadModel>::load(vb, config).map(Self)
            }
        }

        impl ::autocandle_core::PreTrainedModel for TextEncoding {
            fn device(&self) -> &::candle_core::Device {
                ::autocandle_core::PreTrainedModel::device(&self.0)
            }

            fn dtype(&self) -> ::candle_core::DType {
                ::autocandle_core::PreTrainedModel::dtype(&self.0)
            }
        }

        impl ::autocandle_core::ForTextEncoding for TextEncoding {
            fn forward(
                &self,
                inputs: &::autocandle_core::ModelInputs,
            ) -> ::autocandle_core::Result<::autocandle_core::BaseModelOutput> {
                ::autocandle_core::Model::forward(&self.0, inputs)
            }
        }
    };

    (causal_lm [] $config:ty, $model_type:literal, $display:literal, $name:ident) => {
        #[doc = concat!("`", stringify!($name), "`: ", $display, " with its language modelling head ",
                    "(`lm_head`: dense, GELU, LayerNorm, decoder tied to the word embeddings) for causal LM; ",
                    "`logits` are `[batch, seq, vocab_size]`. The attention is causal when the config has ",
                    "`is_decoder` (as in `transformers`, bidirectional otherwise). Generation runs the whole ",
                    "sequence at every step (no KV cache).")]
        #[derive(Debug, ::autocandle_core::AutoRegister)]
        #[auto(model_type = $model_type, task = "causal-lm")]
        pub struct $name {
            roberta: $crate::model::RobertaEncoder,
            lm_head: $crate::model::RobertaLmHead,
        }

        roberta_common!($name, $config, |vb, spec| {
            let roberta = $crate::model::RobertaEncoder::new(vb.pp("roberta"), &spec, false)?;
            let lm_head = $crate::model::RobertaLmHead::load(vb.pp("lm_head"), &spec, roberta.word_embeddings())?;
            Ok(Self { roberta, lm_head })
        });

        impl ::autocandle_core::ForCausalLm for $name {
            fn forward(
                &self,
                inputs: &::autocandle_core::ModelInputs,
            ) -> ::autocandle_core::Result<::autocandle_core::CausalLmOutput> {
                let out = self.roberta.forward(inputs)?;
                Ok(::autocandle_core::CausalLmOutput::new(self.lm_head.forward(&out.last_hidden_state)?))
            }

            fn max_positions(&self) -> ::core::option::Option<usize> {
                // Generation passes `position_ids` (0, 1, ... as `transformers` does), so every
                // row of the position table is usable.
                Some(self.roberta.max_positions())
            }
        }
    };

    (masked_lm [] $config:ty, $model_type:literal, $display:literal, $name:ident) => {
        #[doc = concat!("`", stringify!($name), "`: ", $display, " with its masked language modelling ",
                    "head (`lm_head`: dense, GELU, LayerNorm, decoder tied to the word embeddings); `logits` ",
                    "are `[batch, seq, vocab_size]`.")]
        #[derive(Debug, ::autocandle_core::AutoRegister)]
        #[auto(model_type = $model_type, task = "masked-lm")]
        pub struct $name {
            roberta: $crate::model::RobertaEncoder,
            lm_head: $crate::model::RobertaLmHead,
        }

        roberta_common!($name, $config, |vb, spec| {
            let roberta = $crate::model::RobertaEncoder::new(vb.pp("roberta"), &spec, false)?;
            let lm_head = $crate::model::RobertaLmHead::load(vb.pp("lm_head"), &spec, roberta.word_embeddings())?;
            Ok(Self { roberta, lm_head })
        });

        impl ::autocandle_core::ForMaskedLm for $name {
            fn forward(
                &self,
                inputs: &::autocandle_core::ModelInputs,
            ) -> ::autocandle_core::Result<::autocandle_core::MaskedLmOutput> {
                let out = self.roberta.forward(inputs)?;
                Ok(::autocandle_core::MaskedLmOutput::new(self.lm_head.forward(&out.last_hidden_state)?))
            }
        }
    };

    (sequence_classification [] $config:ty, $model_type:literal, $display:literal, $name:ident) => {
        #[doc = concat!("`", stringify!($name), "`: ", $display, " with a classification head on the ",
                    "first token (`classifier`: dense, tanh, `out_proj`; no pooler); `logits` are ",
                    "`[batch, num_labels]` (`len(id2label)`, else `num_labels`, else 2).")]
        #[derive(Debug, ::autocandle_core::AutoRegister)]
        #[auto(model_type = $model_type, task = "sequence-classification")]
        pub struct $name {
            roberta: ::autocandle_core::heads::SequenceClassifier<$crate::model::RobertaEncoder>,
        }

        roberta_common!($name, $config, |vb, spec| {
            let (hidden, num_labels) = (spec.bert.hidden_size, spec.bert.labels.num_labels());
            Ok(Self {
                roberta: ::autocandle_core::heads::SequenceClassifier::new(
                    $crate::model::RobertaEncoder::new(vb.pp("roberta"), &spec, false)?,
                    ::autocandle_core::heads::Pooling::FirstToken,
                    ::autocandle_core::heads::Classifier::dense_tanh(vb.pp("classifier"), hidden, num_labels)?,
                ),
            })
        });

        impl ::autocandle_core::ForSequenceClassification for $name {
            fn forward(
                &self,
                inputs: &::autocandle_core::ModelInputs,
            ) -> ::autocandle_core::Result<::autocandle_core::SequenceClassifierOutput> {
                self.roberta.forward(inputs)
            }
        }
    };

    (multiple_choice [] $config:ty, $model_type:literal, $display:literal, $name:ident) => {
        #[doc = concat!("`", stringify!($name), "`: ", $display, " with a multiple choice head: inputs ",
                    "are `[batch, choices, seq]`, each choice is encoded on its own and scored from its pooled ",
                    "output (`roberta.pooler`, then `classifier`); `logits` are `[batch, choices]`.")]
        #[derive(Debug, ::autocandle_core::AutoRegister)]
        #[auto(model_type = $model_type, task = "multiple-choice")]
        pub struct $name {
            roberta: ::autocandle_core::heads::MultipleChoice<$crate::model::RobertaEncoder>,
        }

        roberta_common!($name, $config, |vb, spec| {
            Ok(Self {
                roberta: ::autocandle_core::heads::MultipleChoice::new(
                    $crate::model::RobertaEncoder::new(vb.pp("roberta"), &spec, true)?,
                    ::autocandle_core::heads::Pooling::Pooler,
                    ::autocandle_core::heads::Classifier::Linear(::autocandle_core::nn::linear(
                        spec.bert.hidden_size,
                        1,
                        vb.pp("classifier"),
                    )?),
                ),
            })
        });

        impl ::autocandle_core::ForMultipleChoice for $name {
            fn forward(
                &self,
                inputs: &::autocandle_core::ModelInputs,
            ) -> ::autocandle_core::Result<::autocandle_core::MultipleChoiceOutput> {
                self.roberta.forward(inputs)
            }
        }
    };

    (token_classification [] $config:ty, $model_type:literal, $display:literal, $name:ident) => {
        #[doc = concat!("`", stringify!($name), "`: ", $display, " with a classifier on every token; ",
                    "`logits` are `[batch, seq, num_labels]`.")]
        #[derive(Debug, ::autocandle_core::AutoRegister)]
        #[auto(model_type = $model_type, task = "token-classification")]
        pub struct $name {
            roberta: ::autocandle_core::heads::TokenClassifier<$crate::model::RobertaEncoder>,
        }

        roberta_common!($name, $config, |vb, spec| {
            Ok(Self {
                roberta: ::autocandle_core::heads::TokenClassifier::new(
                    $crate::model::RobertaEncoder::new(vb.pp("roberta"), &spec, false)?,
                    ::autocandle_core::nn::linear(
                        spec.bert.hidden_size,
                        spec.bert.labels.num_labels(),
                        vb.pp("classifier"),
                    )?,
                ),
            })
        });

        impl ::autocandle_core::ForTokenClassification for $name {
            fn forward(
                &self,
                inputs: &::autocandle_core::ModelInputs,
            ) -> ::autocandle_core::Result<::autocandle_core::TokenClassifierOutput> {
                self.roberta.forward(inputs)
            }
        }
    };

    (question_answering [] $config:ty, $model_type:literal, $display:literal, $name:ident) => {
        #[doc = concat!("`", stringify!($name), "`: ", $display, " with a span extraction head ",
                    "(`qa_outputs` scores every token as the start and the end of the answer); ",
                    "`start_logits` and `end_logits` are `[batch, seq]`. Needs `num_labels` = 2.")]
        #[derive(Debug, ::autocandle_core::AutoRegister)]
        #[auto(model_type = $model_type, task = "question-answering")]
        pub struct $name {
            roberta: ::autocandle_core::heads::QuestionAnswerer<$crate::model::RobertaEncoder>,
        }

        roberta_common!($name, $config, |vb, spec| {
            ::autocandle_core::heads::require_two_labels(
                $model_type,
                stringify!($name),
                spec.bert.labels.num_labels(),
            )?;
            let encoder = $crate::model::RobertaEncoder::new(vb.pp("roberta"), &spec, false)?;
            Ok(Self { roberta: ::autocandle_core::heads::QuestionAnswerer::with_qa_outputs(encoder, vb)? })
        });

        impl ::autocandle_core::ForQuestionAnswering for $name {
            fn forward(
                &self,
                inputs: &::autocandle_core::ModelInputs,
            ) -> ::autocandle_core::Result<::autocandle_core::QuestionAnsweringOutput> {
                self.roberta.forward(inputs)
            }
        }
    };
}
