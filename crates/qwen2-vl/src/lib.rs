//! Qwen2-VL for autocandle, after `transformers`' `modeling_qwen2_vl` (5.25):
//! [`Qwen2VLConfig`], the base model [`Qwen2VLModel`] and [`Qwen2VLForConditionalGeneration`]
//! (`image-text-to-text`; [`Qwen2VLForMultimodalLm`] is the same model for `multimodal-lm`).
//!
//! - The vision tower ([`VisionTower`]) embeds `pixel_values` `[patches, C * temporal_patch *
//!   patch^2]` (the processor's flattened patches) with the Conv3d as one matrix, rotates
//!   queries and keys with a 2D (height, width) rope, attends within each image (`cu_seqlens`;
//!   Qwen2.5-VL: within windows, except in `fullatt_block_indexes`) and merges each
//!   `spatial_merge_size`^2 square of patches into one feature of the language model's width.
//! - The features replace the image tokens; the language model is the Qwen2 decoder of
//!   `autocandle-decoder` run on those embeddings with M-RoPE: three position rows (t, h, w)
//!   from `get_rope_index` (text tokens count up, an image's tokens take its grid positions),
//!   whose frequencies are interleaved by `mrope_section`.
//! - Generation: the prefill pass computes the positions and keeps each row's `rope_deltas`
//!   in the cache ([`KvCache::set_state`](autocandle_core::KvCache::set_state), name
//!   [`ROPE_DELTAS`]); later tokens sit at their text position (the `position_ids` the
//!   generation loop gives, else the attention mask's `cumsum - 1`, else past length) plus
//!   the delta, as `transformers`' `generate` places them. On a prefill with images, 2D
//!   `position_ids` are not used (as `generate` replaces them with `get_rope_index`); 3D ones
//!   (`[3 or 4, batch, seq]`) are used as given.
//! - `mm_token_type_ids` (1 on image tokens) are read when given, else derived from the image
//!   token; video inputs (`pixel_values_videos`, type 2) are not supported.
//!
//! Checkpoints load in both layouts: `model.visual` / `model.language_model` (transformers 5)
//! and `visual` / `model` (the original one, which `save_pretrained` still writes).

#![warn(missing_docs)]

mod config;
mod heads;
mod model;
mod rope;
mod vision;

#[cfg(test)]
mod tests;

pub use config::{
    check_common, text_settings, vision_rope_theta, Qwen2VLConfig, Qwen2VLVisionConfig, VlSettings,
    DEFAULT_MROPE_SECTION,
};
pub use model::{VlCore, VlOutput, ROPE_DELTAS};
pub use rope::{mrope_cos_sin, rope_index, RopeIndex};
pub use vision::{Grid, VisionKind, VisionSettings, VisionTower};

#[doc(hidden)]
pub mod __private {
    pub use candle_core::{DType, Device};
    pub use candle_nn::VarBuilder;
}

vl_heads! {
    config: Qwen2VLConfig;
    base: Qwen2VLModel = "Qwen2VLModel";
    generation: Qwen2VLForConditionalGeneration = "Qwen2VLForConditionalGeneration";
    multimodal: Qwen2VLForMultimodalLm;
}
