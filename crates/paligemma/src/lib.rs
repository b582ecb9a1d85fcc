//! PaliGemma for autocandle, after `transformers`' `modeling_paligemma` (5.25):
//! [`PaliGemmaConfig`], [`PaliGemmaModel`] (`AutoModel`) and
//! [`PaliGemmaForConditionalGeneration`], registered as `AutoModelForImageTextToText`
//! ([`PaliGemmaForImageTextToText`]), `AutoModelForMultimodalLM` ([`PaliGemmaForMultimodalLm`])
//! and `AutoModelForPreTraining` ([`PaliGemmaForPreTraining`]).
//!
//! PaliGemma is a SigLIP vision tower (`autocandle_siglip`, every patch state, no pooling
//! head), a linear `multi_modal_projector`, and a Gemma language model (`gemma`, or `gemma2`
//! for PaliGemma 2; `autocandle_vlm::text_decoder_spec`). The projected features replace the
//! `<image>` tokens' embeddings (unscaled: `transformers` 5 scales token embeddings inside the
//! embedding layer). Positions count from 1. The prefix (`token_type_ids` 0: the image tokens
//! and the prompt) attends in both directions on the first pass (`block_sequence_ids`); the
//! suffix and generated tokens are causal.
//!
//! Weight names read as `transformers` 5 saves them (`vision_tower.*`,
//! `multi_modal_projector.linear.*`, `language_model.model.*`, `language_model.lm_head`), and
//! also as hub checkpoints made before (`vision_tower.vision_model.*`) and as the modules name
//! them (`model.language_model.*`, `lm_head`).

#![warn(missing_docs)]

mod config;
mod model;

pub use config::PaliGemmaConfig;
pub use model::{
    PaliGemmaForConditionalGeneration, PaliGemmaForImageTextToText, PaliGemmaForMultimodalLm, PaliGemmaForPreTraining,
    PaliGemmaModel,
};

#[cfg(test)]
mod tests;
