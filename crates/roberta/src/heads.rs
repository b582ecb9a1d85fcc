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
        #[auto(task = "base")]
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
        #[auto(task = "text-encoding", class = $class)]
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
        #[auto(task = "causal-lm")]
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
        #[auto(task = "masked-lm")]
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
        #[auto(task = "sequence-classification")]
        pub struct $name {
            roberta: $crate::model::RobertaEncoder,
            classifier: $crate::model::RobertaClassificationHead,
        }

        roberta_common!($name, $config, |vb, spec| {
            Ok(Self {
                roberta: $crate::model::RobertaEncoder::new(vb.pp("roberta"), &spec, false)?,
                classifier: $crate::model::RobertaClassificationHead::load(vb.pp("classifier"), &spec)?,
            })
        });

        impl ::autocandle_core::ForSequenceClassification for $name {
            fn forward(
                &self,
                inputs: &::autocandle_core::ModelInputs,
            ) -> ::autocandle_core::Result<::autocandle_core::SequenceClassifierOutput> {
                let out = self.roberta.forward(inputs)?;
                Ok(::autocandle_core::SequenceClassifierOutput::new(self.classifier.forward(&out.last_hidden_state)?))
            }
        }
    };

    (multiple_choice [] $config:ty, $model_type:literal, $display:literal, $name:ident) => {
        #[doc = concat!("`", stringify!($name), "`: ", $display, " with a multiple choice head: inputs ",
                    "are `[batch, choices, seq]`, each choice is encoded on its own and scored from its pooled ",
                    "output (`roberta.pooler`, then `classifier`); `logits` are `[batch, choices]`.")]
        #[derive(Debug, ::autocandle_core::AutoRegister)]
        #[auto(task = "multiple-choice")]
        pub struct $name {
            roberta: $crate::model::RobertaEncoder,
            classifier: ::autocandle_core::nn::Linear,
        }

        roberta_common!($name, $config, |vb, spec| {
            Ok(Self {
                roberta: $crate::model::RobertaEncoder::new(vb.pp("roberta"), &spec, true)?,
                classifier: ::autocandle_core::nn::linear(spec.bert.hidden_size, 1, vb.pp("classifier"))?,
            })
        });

        impl ::autocandle_core::ForMultipleChoice for $name {
            fn forward(
                &self,
                inputs: &::autocandle_core::ModelInputs,
            ) -> ::autocandle_core::Result<::autocandle_core::MultipleChoiceOutput> {
                use ::candle_core::Module as _;
                let (flat, (batch, choices)) = ::autocandle_bert::flatten_choices(inputs)?;
                let pooled = self.roberta.pooled(self.roberta.forward(&flat)?)?;
                let logits = self.classifier.forward(&pooled)?.reshape((batch, choices))?;
                Ok(::autocandle_core::MultipleChoiceOutput::new(logits))
            }
        }
    };

    (token_classification [] $config:ty, $model_type:literal, $display:literal, $name:ident) => {
        #[doc = concat!("`", stringify!($name), "`: ", $display, " with a classifier on every token; ",
                    "`logits` are `[batch, seq, num_labels]`.")]
        #[derive(Debug, ::autocandle_core::AutoRegister)]
        #[auto(task = "token-classification")]
        pub struct $name {
            roberta: $crate::model::RobertaEncoder,
            classifier: ::autocandle_core::nn::Linear,
        }

        roberta_common!($name, $config, |vb, spec| {
            Ok(Self {
                roberta: $crate::model::RobertaEncoder::new(vb.pp("roberta"), &spec, false)?,
                classifier: ::autocandle_core::nn::linear(
                    spec.bert.hidden_size,
                    spec.bert.labels.num_labels(),
                    vb.pp("classifier"),
                )?,
            })
        });

        impl ::autocandle_core::ForTokenClassification for $name {
            fn forward(
                &self,
                inputs: &::autocandle_core::ModelInputs,
            ) -> ::autocandle_core::Result<::autocandle_core::TokenClassifierOutput> {
                use ::candle_core::Module as _;
                let out = self.roberta.forward(inputs)?;
                Ok(::autocandle_core::TokenClassifierOutput::new(self.classifier.forward(&out.last_hidden_state)?))
            }
        }
    };

    (question_answering [] $config:ty, $model_type:literal, $display:literal, $name:ident) => {
        #[doc = concat!("`", stringify!($name), "`: ", $display, " with a span extraction head ",
                    "(`qa_outputs` scores every token as the start and the end of the answer); ",
                    "`start_logits` and `end_logits` are `[batch, seq]`. Needs `num_labels` = 2.")]
        #[derive(Debug, ::autocandle_core::AutoRegister)]
        #[auto(task = "question-answering")]
        pub struct $name {
            roberta: $crate::model::RobertaEncoder,
            qa_outputs: ::autocandle_core::nn::Linear,
        }

        roberta_common!($name, $config, |vb, spec| {
            let num_labels = spec.bert.labels.num_labels();
            if num_labels != 2 {
                return Err(::autocandle_core::Error::config(
                    $model_type,
                    format!(
                        "{} needs 2 labels (start and end), the config has {num_labels}: set \
                         `num_labels` to 2",
                        stringify!($name)
                    ),
                ));
            }
            Ok(Self {
                roberta: $crate::model::RobertaEncoder::new(vb.pp("roberta"), &spec, false)?,
                qa_outputs: ::autocandle_core::nn::linear(spec.bert.hidden_size, num_labels, vb.pp("qa_outputs"))?,
            })
        });

        impl ::autocandle_core::ForQuestionAnswering for $name {
            fn forward(
                &self,
                inputs: &::autocandle_core::ModelInputs,
            ) -> ::autocandle_core::Result<::autocandle_core::QuestionAnsweringOutput> {
                use ::candle_core::Module as _;
                let out = self.roberta.forward(inputs)?;
                let logits = self.qa_outputs.forward(&out.last_hidden_state)?;
                let take = |i: usize| -> ::autocandle_core::Result<::candle_core::Tensor> {
                    Ok(logits.narrow(2, i, 1)?.squeeze(2)?.contiguous()?)
                };
                Ok(::autocandle_core::QuestionAnsweringOutput::new(take(0)?, take(1)?))
            }
        }
    };
}
