//! The registered Gemma 3 classes: [`Gemma3Model`] (`AutoModel`),
//! [`Gemma3ForConditionalGeneration`] (image-text-to-text) and the same class under the other
//! Auto classes `transformers` maps it to ([`Gemma3ForMultimodalLm`], [`Gemma3ForPreTraining`],
//! [`Gemma3ForCausalLm`]), and [`Gemma3ForSequenceClassification`].

use autocandle_core::heads::{Classifier, Encoder, Pooling, SequenceClassifier};
use autocandle_core::nn::linear_no_bias;
use autocandle_core::{
    AutoRegister, BaseModelOutput, CausalLmOutput, ForCausalLm, ForImageTextToText, ForMultimodalLm, ForPreTraining,
    ForSequenceClassification, ImageTextToTextOutput, KvCache, LoadModel, Model, ModelInputs, PreTrainedModel,
    PreTrainingOutput, Result, SequenceClassifierOutput,
};
use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use crate::config::Gemma3Config;
use crate::model::{BaseParts, LmParts};

/// `Gemma3Model`: the vision tower, the projector and the language model without a head.
///
/// Inputs: `input_ids` (required), `attention_mask`, `position_ids`, and with images
/// `pixel_values` `[images, 3, size, size]` (one run of `mm_tokens_per_image` image tokens per
/// image in `input_ids`) and `token_type_ids` (1 on image tokens: each image's tokens attend to
/// each other in both directions). Output: `last_hidden_state`, and `image_hidden_states`
/// `[images, mm_tokens_per_image, hidden]` when images were given.
#[derive(Debug, Clone, AutoRegister)]
#[auto(task = "base", class = "Gemma3Model")]
pub struct Gemma3Model {
    parts: BaseParts,
}

impl LoadModel for Gemma3Model {
    type Config = Gemma3Config;
    const BASE_MODEL_PREFIX: &'static str = "model";

    fn load(vb: VarBuilder<'_>, config: &Gemma3Config) -> Result<Self> {
        Ok(Self { parts: BaseParts::load(vb, config)? })
    }
}

impl PreTrainedModel for Gemma3Model {
    fn device(&self) -> &Device {
        self.parts.mm.device()
    }

    fn dtype(&self) -> DType {
        self.parts.mm.dtype()
    }
}

impl Model for Gemma3Model {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        Encoder::encode(self, inputs)
    }
}

impl Encoder for Gemma3Model {
    fn encode(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let (hidden, features) = self.parts.run(inputs, None)?;
        let out = BaseModelOutput::new(hidden, None);
        Ok(match features {
            Some(f) => out.with_extra("image_hidden_states", f),
            None => out,
        })
    }

    fn hidden_size(&self) -> usize {
        self.parts.lm.spec().hidden_size
    }
}

/// `Gemma3ForConditionalGeneration`: [`Gemma3Model`] with `lm_head` (tied to the token
/// embedding with `tie_word_embeddings`), `logits` `[batch, seq, vocab]` (soft-capped with
/// `final_logit_softcapping`).
///
/// Generation runs through `generation::WithImages`: the first pass carries the images and
/// the bidirectional image blocks, the cached steps only the new tokens. A prompt without
/// images runs as text alone.
#[derive(Debug, Clone, AutoRegister)]
#[auto(task = "image-text-to-text", class = "Gemma3ForConditionalGeneration")]
pub struct Gemma3ForConditionalGeneration {
    parts: LmParts,
}

impl Gemma3ForConditionalGeneration {
    fn run(&self, inputs: &ModelInputs, cache: Option<&mut KvCache>) -> Result<ImageTextToTextOutput> {
        let (logits, features) = self.parts.run(inputs, cache)?;
        Ok(ImageTextToTextOutput::new(logits, features))
    }
}

impl LoadModel for Gemma3ForConditionalGeneration {
    type Config = Gemma3Config;
    const BASE_MODEL_PREFIX: &'static str = "model";

    fn load(vb: VarBuilder<'_>, config: &Gemma3Config) -> Result<Self> {
        Ok(Self { parts: LmParts::load(vb, config)? })
    }
}

impl PreTrainedModel for Gemma3ForConditionalGeneration {
    fn device(&self) -> &Device {
        self.parts.mm.device()
    }

    fn dtype(&self) -> DType {
        self.parts.mm.dtype()
    }
}

impl ForImageTextToText for Gemma3ForConditionalGeneration {
    fn forward(&self, inputs: &ModelInputs) -> Result<ImageTextToTextOutput> {
        self.run(inputs, None)
    }

    fn forward_with_cache(&self, inputs: &ModelInputs, cache: &mut KvCache) -> Result<ImageTextToTextOutput> {
        self.run(inputs, Some(cache))
    }

    fn supports_cache(&self) -> bool {
        true
    }

    fn max_positions(&self) -> Option<usize> {
        self.parts.lm.model().max_positions()
    }

    fn image_token_id(&self) -> Option<u32> {
        Some(self.parts.mm.image_token_id())
    }
}

/// Declares a registration of [`Gemma3ForConditionalGeneration`] under another Auto class.
macro_rules! same_class {
    ($(#[$doc:meta])* $name:ident, $task:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, AutoRegister)]
        #[auto(task = $task, class = "Gemma3ForConditionalGeneration")]
        pub struct $name {
            inner: Gemma3ForConditionalGeneration,
        }

        impl $name {
            /// The model as an image-text-to-text model.
            pub fn inner(&self) -> &Gemma3ForConditionalGeneration {
                &self.inner
            }
        }

        impl LoadModel for $name {
            type Config = Gemma3Config;
            const BASE_MODEL_PREFIX: &'static str = "model";

            fn load(vb: VarBuilder<'_>, config: &Gemma3Config) -> Result<Self> {
                Ok(Self { inner: Gemma3ForConditionalGeneration::load(vb, config)? })
            }
        }

        impl PreTrainedModel for $name {
            fn device(&self) -> &Device {
                self.inner.device()
            }

            fn dtype(&self) -> DType {
                self.inner.dtype()
            }
        }
    };
}

same_class!(
    /// [`Gemma3ForConditionalGeneration`] as `AutoModelForMultimodalLM` gives it.
    Gemma3ForMultimodalLm,
    "multimodal-lm"
);
same_class!(
    /// [`Gemma3ForConditionalGeneration`] as `AutoModelForPreTraining` gives it: `logits` and,
    /// with images, `image_hidden_states`.
    Gemma3ForPreTraining,
    "pretraining"
);
same_class!(
    /// [`Gemma3ForConditionalGeneration`] as `AutoModelForCausalLM` gives it for a `gemma3`
    /// checkpoint: text prompts (or prompts with images, `pixel_values` and `token_type_ids`
    /// in the inputs), with a key/value cache.
    Gemma3ForCausalLm,
    "causal-lm"
);

impl ForImageTextToText for Gemma3ForMultimodalLm {
    fn forward(&self, inputs: &ModelInputs) -> Result<ImageTextToTextOutput> {
        self.inner.run(inputs, None)
    }

    fn forward_with_cache(&self, inputs: &ModelInputs, cache: &mut KvCache) -> Result<ImageTextToTextOutput> {
        self.inner.run(inputs, Some(cache))
    }

    fn supports_cache(&self) -> bool {
        true
    }

    fn max_positions(&self) -> Option<usize> {
        ForImageTextToText::max_positions(&self.inner)
    }

    fn image_token_id(&self) -> Option<u32> {
        self.inner.image_token_id()
    }
}

impl ForMultimodalLm for Gemma3ForMultimodalLm {}

impl ForPreTraining for Gemma3ForPreTraining {
    fn forward(&self, inputs: &ModelInputs) -> Result<PreTrainingOutput> {
        let out = self.inner.run(inputs, None)?;
        let mut fields = vec![("logits", out.logits)];
        if let Some(f) = out.image_hidden_states {
            fields.push(("image_hidden_states", f));
        }
        Ok(PreTrainingOutput::from_fields(fields))
    }
}

impl ForCausalLm for Gemma3ForCausalLm {
    fn forward(&self, inputs: &ModelInputs) -> Result<CausalLmOutput> {
        Ok(CausalLmOutput::new(self.inner.run(inputs, None)?.logits))
    }

    fn forward_with_cache(&self, inputs: &ModelInputs, cache: &mut KvCache) -> Result<CausalLmOutput> {
        Ok(CausalLmOutput::new(self.inner.run(inputs, Some(cache))?.logits))
    }

    fn supports_cache(&self) -> bool {
        true
    }

    fn max_positions(&self) -> Option<usize> {
        ForImageTextToText::max_positions(&self.inner)
    }
}

/// `Gemma3ForSequenceClassification` (`GenericForSequenceClassification` over
/// [`Gemma3Model`], images allowed): `score` (no bias) on the last token that is not the
/// language model's `pad_token_id`; `logits` `[batch, num_labels]`.
#[derive(Debug, Clone, AutoRegister)]
#[auto(task = "sequence-classification", class = "Gemma3ForSequenceClassification")]
pub struct Gemma3ForSequenceClassification {
    head: SequenceClassifier<Gemma3Model>,
}

impl LoadModel for Gemma3ForSequenceClassification {
    type Config = Gemma3Config;
    const BASE_MODEL_PREFIX: &'static str = "model";

    fn load(vb: VarBuilder<'_>, config: &Gemma3Config) -> Result<Self> {
        let base = Gemma3Model::load(vb.clone(), config)?;
        let score = linear_no_bias(Encoder::hidden_size(&base), config.labels.num_labels(), vb.pp("score"))?;
        let pooling = Pooling::LastNonPad { pad_token_id: config.text_pad_token_id() };
        Ok(Self { head: SequenceClassifier::new(base, pooling, Classifier::Linear(score)) })
    }
}

impl PreTrainedModel for Gemma3ForSequenceClassification {
    fn device(&self) -> &Device {
        self.head.encoder().device()
    }

    fn dtype(&self) -> DType {
        self.head.encoder().dtype()
    }
}

impl ForSequenceClassification for Gemma3ForSequenceClassification {
    fn forward(&self, inputs: &ModelInputs) -> Result<SequenceClassifierOutput> {
        Ok(SequenceClassifierOutput::new(self.head.logits(inputs)?))
    }
}
