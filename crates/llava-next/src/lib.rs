//! LLaVA-NeXT for autocandle, after `transformers`' `modeling_llava_next` (5.25).
//!
//! - [`LlavaNextConfig`] (model type `llava_next`): LLaVA's config (a CLIP `vision_config`, a
//!   `text_config` of any text model type `autocandle_vlm` knows, `vision_feature_layer`,
//!   `vision_feature_select_strategy`, the projector) and `image_grid_pinpoints`;
//! - [`LlavaNextModel`] (`base`): "any resolution" images: each image comes as tiles of the
//!   vision tower's `image_size` (the whole image resized first, then the tiles of the image
//!   resized and padded to the best `image_grid_pinpoints` resolution, as
//!   `LlavaNextImageProcessor` makes them; `pixel_values` `[images, tiles, 3, size, size]`,
//!   `image_sizes` `[images, 2]` the original heights and widths). Each tile's selected CLIP
//!   hidden states are projected; the grid tiles are laid out as one feature map, unpadded to
//!   the image's aspect ratio, with `image_newline` after each row, and follow the whole
//!   image's features (`pack_image_features`); the result replaces the prompt's image tokens;
//! - [`LlavaNextForConditionalGeneration`] (`image-text-to-text`, and the same class as
//!   [`LlavaNextForMultimodalLm`] and [`LlavaNextForPreTraining`]): with the
//!   language-modelling head and a key/value cache for generation (images on the first pass).
//!
//! Weight names: as LLaVA's (`transformers` 5's in-memory names `model.*` / `lm_head.*`, and
//! the saved 4.x layout `vision_tower.*`, `multi_modal_projector.*`, `image_newline`,
//! `language_model.model.*`, `language_model.lm_head.*`).

#![warn(missing_docs)]

mod config;
mod model;

pub use config::LlavaNextConfig;
pub use model::{
    select_best_resolution, LlavaNextForConditionalGeneration, LlavaNextForMultimodalLm, LlavaNextForPreTraining,
    LlavaNextModel,
};

#[cfg(test)]
mod tests;
