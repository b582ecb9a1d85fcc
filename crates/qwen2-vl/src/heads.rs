//! `vl_heads!`: the registered head types of a Qwen2-VL-like model type (the base model, the
//! conditional-generation model for `image-text-to-text`, and the same for `multimodal-lm`),
//! defined once for Qwen2-VL and Qwen2.5-VL.

/// Define and register the heads of a Qwen2-VL-like model type over `$crate::VlCore`.
///
/// `config` must have `fn settings(&self) -> autocandle_core::Result<$crate::VlSettings>`.
#[macro_export]
macro_rules! vl_heads {
    (
        config: $config:ty;
        base: $base:ident = $base_class:literal;
        generation: $cg:ident = $cg_class:literal;
        multimodal: $mm:ident;
    ) => {
        #[doc = concat!("`", $base_class, "`: the vision tower and the language model without a head; ")]
        #[doc = "`last_hidden_state`, plus `image_hidden_states` (the merged image features) when images are given."]
        #[derive(Debug, Clone, ::autocandle_core::AutoRegister)]
        #[auto(task = "base", class = $base_class)]
        pub struct $base {
            core: $crate::VlCore,
        }

        impl $base {
            /// The model body.
            pub fn core(&self) -> &$crate::VlCore {
                &self.core
            }
        }

        impl ::autocandle_core::LoadModel for $base {
            type Config = $config;
            const BASE_MODEL_PREFIX: &'static str = "model";

            fn load(vb: $crate::__private::VarBuilder<'_>, config: &$config) -> ::autocandle_core::Result<Self> {
                Ok(Self { core: $crate::VlCore::load_base(vb, &config.settings()?)? })
            }
        }

        impl ::autocandle_core::PreTrainedModel for $base {
            fn device(&self) -> &$crate::__private::Device {
                self.core.decoder().device()
            }

            fn dtype(&self) -> $crate::__private::DType {
                self.core.decoder().dtype()
            }
        }

        impl ::autocandle_core::Model for $base {
            fn forward(
                &self,
                inputs: &::autocandle_core::ModelInputs,
            ) -> ::autocandle_core::Result<::autocandle_core::BaseModelOutput> {
                let out = self.core.run(inputs, None)?;
                let mut result = ::autocandle_core::BaseModelOutput::new(out.output, None);
                if let Some(features) = out.image_features {
                    result = result.with_extra("image_hidden_states", features);
                }
                Ok(result)
            }
        }

        #[doc = concat!("`", $cg_class, "`: the model and `lm_head` (tied to the token embedding with ")]
        #[doc = "`tie_word_embeddings`); logits, with a cache for generation (images on the prefill pass)."]
        #[derive(Debug, Clone, ::autocandle_core::AutoRegister)]
        #[auto(task = "image-text-to-text", class = $cg_class)]
        pub struct $cg {
            core: $crate::VlCore,
        }

        impl $cg {
            /// The model body.
            pub fn core(&self) -> &$crate::VlCore {
                &self.core
            }
        }

        impl ::autocandle_core::LoadModel for $cg {
            type Config = $config;
            const BASE_MODEL_PREFIX: &'static str = "model";

            fn load(vb: $crate::__private::VarBuilder<'_>, config: &$config) -> ::autocandle_core::Result<Self> {
                Ok(Self { core: $crate::VlCore::load_with_head(vb, &config.settings()?)? })
            }
        }

        impl ::autocandle_core::PreTrainedModel for $cg {
            fn device(&self) -> &$crate::__private::Device {
                self.core.decoder().device()
            }

            fn dtype(&self) -> $crate::__private::DType {
                self.core.decoder().dtype()
            }
        }

        impl ::autocandle_core::ForImageTextToText for $cg {
            fn forward(
                &self,
                inputs: &::autocandle_core::ModelInputs,
            ) -> ::autocandle_core::Result<::autocandle_core::ImageTextToTextOutput> {
                let out = self.core.run(inputs, None)?;
                Ok(::autocandle_core::ImageTextToTextOutput::new(out.output, out.image_features))
            }

            fn forward_with_cache(
                &self,
                inputs: &::autocandle_core::ModelInputs,
                cache: &mut ::autocandle_core::KvCache,
            ) -> ::autocandle_core::Result<::autocandle_core::ImageTextToTextOutput> {
                let out = self.core.run(inputs, Some(cache))?;
                Ok(::autocandle_core::ImageTextToTextOutput::new(out.output, out.image_features))
            }

            fn supports_cache(&self) -> bool {
                true
            }

            fn max_positions(&self) -> Option<usize> {
                self.core.decoder().max_positions()
            }

            fn image_token_id(&self) -> Option<u32> {
                Some(self.core.settings().image_token_id)
            }

            /// `mm_token_type_ids` of generated tokens are 0 (text), as `generate` extends them.
            fn generated_token_type_id(&self, name: &str, last: u32) -> u32 {
                if name == "mm_token_type_ids" {
                    0
                } else {
                    last
                }
            }
        }

        #[doc = concat!("`", $cg_class, "` as `AutoModelForMultimodalLM` finds it: the same model.")]
        #[derive(Debug, Clone, ::autocandle_core::AutoRegister)]
        #[auto(task = "multimodal-lm", class = $cg_class)]
        pub struct $mm(pub $cg);

        impl ::autocandle_core::LoadModel for $mm {
            type Config = $config;
            const BASE_MODEL_PREFIX: &'static str = "model";

            fn load(vb: $crate::__private::VarBuilder<'_>, config: &$config) -> ::autocandle_core::Result<Self> {
                Ok(Self(<$cg as ::autocandle_core::LoadModel>::load(vb, config)?))
            }
        }

        impl ::autocandle_core::PreTrainedModel for $mm {
            fn device(&self) -> &$crate::__private::Device {
                ::autocandle_core::PreTrainedModel::device(&self.0)
            }

            fn dtype(&self) -> $crate::__private::DType {
                ::autocandle_core::PreTrainedModel::dtype(&self.0)
            }
        }

        impl ::autocandle_core::ForImageTextToText for $mm {
            fn forward(
                &self,
                inputs: &::autocandle_core::ModelInputs,
            ) -> ::autocandle_core::Result<::autocandle_core::ImageTextToTextOutput> {
                ::autocandle_core::ForImageTextToText::forward(&self.0, inputs)
            }

            fn forward_with_cache(
                &self,
                inputs: &::autocandle_core::ModelInputs,
                cache: &mut ::autocandle_core::KvCache,
            ) -> ::autocandle_core::Result<::autocandle_core::ImageTextToTextOutput> {
                ::autocandle_core::ForImageTextToText::forward_with_cache(&self.0, inputs, cache)
            }

            fn supports_cache(&self) -> bool {
                true
            }

            fn max_positions(&self) -> Option<usize> {
                ::autocandle_core::ForImageTextToText::max_positions(&self.0)
            }

            fn image_token_id(&self) -> Option<u32> {
                ::autocandle_core::ForImageTextToText::image_token_id(&self.0)
            }

            fn generated_token_type_id(&self, name: &str, last: u32) -> u32 {
                ::autocandle_core::ForImageTextToText::generated_token_type_id(&self.0, name, last)
            }
        }

        impl ::autocandle_core::ForMultimodalLm for $mm {}
    };
}
