//! Gemma 3's vision-language model for autocandle, after `transformers`' `modeling_gemma3`
//! (5.25): [`Gemma3Config`] (model type `gemma3`), [`Gemma3Model`] and
//! [`Gemma3ForConditionalGeneration`], which `transformers` maps to image-text-to-text,
//! multimodal-lm, pretraining and causal-lm ([`Gemma3ForMultimodalLm`],
//! [`Gemma3ForPreTraining`], [`Gemma3ForCausalLm`] register it under those), and
//! [`Gemma3ForSequenceClassification`].
//!
//! The network: a SigLIP vision tower (`autocandle_siglip`) gives each image's patch grid;
//! `Gemma3MultiModalProjector` average-pools it to `mm_tokens_per_image` tokens, normalises
//! them with Gemma 3's `(1 + weight)` RMSNorm (`mm_soft_emb_norm`) and projects them with
//! `mm_input_projection_weight` `[vision_hidden, text_hidden]`. The language model is the
//! `text_config`'s (`gemma3_text`, through `autocandle_vlm::text_decoder_spec`): the prompt's
//! token embeddings (Gemma 3 scales them inside its embedding layer, so image features go in
//! unscaled) with each image token's row replaced by the next image feature; image tokens
//! whose id is past the vocabulary are embedded as id 0 first, as `transformers` does. With
//! `token_type_ids` (1 on image tokens), each image's tokens attend to each other in both
//! directions (`block_sequence_ids`), on the sliding layers within the window
//! (`AND(sliding_window, OR(causal, blockwise))`); this applies on the pass without a cache
//! and the prefill, as `generate` passes `token_type_ids` only then.
//!
//! Weight names: the checkpoints' layout (`language_model.model.*`, `language_model.lm_head`,
//! `vision_tower.*`, `multi_modal_projector.*`, which `transformers` 5 also writes) and the
//! module layout (`model.language_model.*`, `lm_head`, `model.vision_tower.*`, ...) both load.

#![warn(missing_docs)]

mod config;
mod heads;
mod model;

pub use config::Gemma3Config;
pub use heads::{
    Gemma3ForCausalLm, Gemma3ForConditionalGeneration, Gemma3ForMultimodalLm, Gemma3ForPreTraining,
    Gemma3ForSequenceClassification, Gemma3Model,
};

#[cfg(test)]
mod tests;
