//! Shared pieces of autocandle's vision-language models (LLaVA, PaliGemma, Idefics3/SmolVLM,
//! Qwen2-VL, Gemma 3):
//!
//! - [`text_decoder_spec`]: the language model's [`DecoderSpec`] from the `text_config` of a
//!   composite config, whatever llama-like decoder it names (`llama`, `mistral`, `qwen2`,
//!   `gemma`, `gemma2`, `gemma3_text`), as `transformers` builds it with
//!   `AutoModel.from_config(config.text_config)`;
//! - [`merge_image_features`]: the prompt's token embeddings with each image token's row
//!   replaced by the next image feature (`inputs_embeds.masked_scatter(special_image_mask,
//!   image_features)`), with `transformers`' check that tokens and features match;
//! - [`count_tokens`] and [`token_positions`]: where the image tokens are.
//!
//! The language model itself is `autocandle_decoder`'s [`autocandle_decoder::CausalLm`] (or
//! [`autocandle_decoder::DecoderModel`]) run on `inputs_embeds` with
//! [`autocandle_decoder::DecoderModel::forward_embeds`].

#![warn(missing_docs)]

use candle_core::{DType, Tensor};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use autocandle_core::{Error, Result};
use autocandle_decoder::{DecoderConfig, DecoderSpec};

/// The text model types a vision-language model's `text_config` may name here.
pub const TEXT_MODEL_TYPES: &[&str] = &["llama", "mistral", "qwen2", "gemma", "gemma2", "gemma3_text"];

fn spec_of<C: DecoderConfig + DeserializeOwned>(fields: Map<String, Value>, owner: &str) -> Result<DecoderSpec> {
    let config: C = serde_json::from_value(Value::Object(fields))
        .map_err(|e| Error::config(owner.to_owned(), format!("`text_config` is not a valid {}: {e}", C::MODEL_TYPE)))?;
    config.decoder_spec()
}

/// The [`DecoderSpec`] of `text_config` (a JSON object; `None` or `null` is an empty one) of
/// the `owner` model type; its `model_type` names the decoder, `default_model_type` when it
/// has none (as the composite config class defaults it: `llama` for LLaVA, `gemma` for
/// PaliGemma, ...). `overrides` are set on the text config first (fields the composite config
/// passes down, such as a shared `vocab_size`).
///
/// An unknown text model type is [`Error::Unsupported`], naming the ones supported.
pub fn text_decoder_spec(
    text_config: Option<&Value>,
    default_model_type: &str,
    owner: &str,
    overrides: &[(&str, Value)],
) -> Result<DecoderSpec> {
    let mut fields = match text_config {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(other) => {
            return Err(Error::config(owner.to_owned(), format!("`text_config` must be a JSON object, found {other}")))
        }
    };
    for (key, value) in overrides {
        fields.insert((*key).to_owned(), value.clone());
    }
    let model_type = match fields.get("model_type") {
        Some(Value::String(s)) => s.clone(),
        None | Some(Value::Null) => default_model_type.to_owned(),
        Some(other) => {
            return Err(Error::config(
                owner.to_owned(),
                format!("`text_config.model_type` must be a string, found {other}"),
            ))
        }
    };
    match model_type.as_str() {
        "llama" => spec_of::<autocandle_llama::LlamaConfig>(fields, owner),
        "mistral" => spec_of::<autocandle_mistral::MistralConfig>(fields, owner),
        "qwen2" => spec_of::<autocandle_qwen2::Qwen2Config>(fields, owner),
        "gemma" => spec_of::<autocandle_gemma::GemmaConfig>(fields, owner),
        "gemma2" => spec_of::<autocandle_gemma2::Gemma2Config>(fields, owner),
        "gemma3_text" => spec_of::<autocandle_gemma3_text::Gemma3TextConfig>(fields, owner),
        other => Err(Error::Unsupported(format!(
            "`{owner}` with a `{other}` language model (`text_config.model_type`): the text model types supported \
             here are {}",
            TEXT_MODEL_TYPES.join(", ")
        ))),
    }
}

/// Image tokens in a pass without `pixel_values`: `transformers` embeds them as ordinary tokens
/// (a text-only prompt may hold the id, and generation without a cache re-reads tokens the
/// model generated), and so does autocandle, with a warning, since a prompt built by the
/// processor for images that were then left out gives meaningless output.
pub fn image_tokens_without_images(input_ids: &Tensor, image_token_id: u32, owner: &str) -> Result<()> {
    let n = count_tokens(input_ids, image_token_id)?;
    if n > 0 {
        tracing::warn!(
            model = owner,
            image_tokens = n,
            image_token_id,
            "image tokens without `pixel_values`: embedded as ordinary tokens, as transformers does; give the \
             images the processor made with the prompt"
        );
    }
    Ok(())
}

/// The ids of `input_ids` (any shape, integers) as `i64`, row-major.
fn ids_of(input_ids: &Tensor) -> Result<Vec<i64>> {
    autocandle_core::inputs::require_int(input_ids, "input_ids")?;
    Ok(input_ids.flatten_all()?.to_dtype(DType::I64)?.to_vec1::<i64>()?)
}

/// How many times `token_id` occurs in `input_ids` (per the whole batch).
pub fn count_tokens(input_ids: &Tensor, token_id: u32) -> Result<usize> {
    Ok(ids_of(input_ids)?.into_iter().filter(|&id| id == i64::from(token_id)).count())
}

/// The row-major flat positions of `token_id` in `input_ids`.
pub fn token_positions(input_ids: &Tensor, token_id: u32) -> Result<Vec<u32>> {
    Ok(ids_of(input_ids)?
        .into_iter()
        .enumerate()
        .filter(|(_, id)| *id == i64::from(token_id))
        .map(|(i, _)| i as u32)
        .collect())
}

/// `inputs_embeds` `[batch, seq, hidden]` with the row of each `image_token_id` of `input_ids`
/// `[batch, seq]` replaced, in reading order, by the rows of `features` (`[n, hidden]` or
/// `[images, tokens_per_image, hidden]`, flattened): `transformers`' `masked_scatter`.
///
/// The number of image tokens must equal the number of feature rows; otherwise the error
/// says how many of each there are (the prompt has more images than image tokens, or the
/// reverse: build it with the model's processor, which expands each image into its tokens).
pub fn merge_image_features(
    inputs_embeds: &Tensor,
    input_ids: &Tensor,
    image_token_id: u32,
    features: &Tensor,
) -> Result<Tensor> {
    let (batch, seq, hidden) = inputs_embeds.dims3()?;
    let features = features.flatten_to(features.rank().saturating_sub(2))?;
    let (n_features, feature_hidden) = features.dims2()?;
    if feature_hidden != hidden {
        return Err(Error::input(format!(
            "image features have {feature_hidden} dimensions but the language model's embeddings have {hidden}"
        )));
    }
    let positions = token_positions(input_ids, image_token_id)?;
    if input_ids.elem_count() != batch * seq {
        return Err(Error::input(format!(
            "`input_ids` has shape {:?} but the embeddings are [{batch}, {seq}, {hidden}]",
            input_ids.dims()
        )));
    }
    if positions.len() != n_features {
        return Err(Error::input(format!(
            "Image features and image tokens do not match: the prompt has {} image tokens (id {image_token_id}) but \
             the images give {n_features} features; build the prompt with the model's processor, which puts one \
             run of image tokens per image (fewer images than image placeholders, or more, cannot be matched)",
            positions.len()
        )));
    }
    if n_features == 0 {
        return Ok(inputs_embeds.clone());
    }
    let flat = inputs_embeds.reshape((batch * seq, hidden))?;
    let mut keep = vec![1f32; batch * seq];
    for &p in &positions {
        keep[p as usize] = 0.0;
    }
    let keep = Tensor::from_vec(keep, (batch * seq, 1), flat.device())?.to_dtype(flat.dtype())?;
    let index = Tensor::new(positions.as_slice(), flat.device())?;
    let features = features.to_dtype(flat.dtype())?.contiguous()?;
    let merged = flat.broadcast_mul(&keep)?.index_add(&index, &features, 0)?;
    Ok(merged.reshape((batch, seq, hidden))?)
}

#[cfg(test)]
mod tests {
    use candle_core::Device;
    use serde_json::json;

    use super::*;

    #[test]
    fn merges_in_reading_order_and_checks_counts() {
        let dev = Device::Cpu;
        let embeds = Tensor::arange(0f32, 12.0, &dev).unwrap().reshape((2, 3, 2)).unwrap();
        let ids = Tensor::new(&[[5i64, 9, 5], [1, 5, 2]], &dev).unwrap();
        let features = Tensor::new(&[[[-1f32, -2.0], [-3.0, -4.0], [-5.0, -6.0]]], &dev).unwrap();
        let merged = merge_image_features(&embeds, &ids, 5, &features).unwrap();
        let rows = merged.reshape((6, 2)).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(rows[0], [-1.0, -2.0]);
        assert_eq!(rows[1], [2.0, 3.0]);
        assert_eq!(rows[2], [-3.0, -4.0]);
        assert_eq!(rows[4], [-5.0, -6.0]);
        assert_eq!(rows[5], [10.0, 11.0]);
        let too_few = features.narrow(1, 0, 2).unwrap();
        let err = merge_image_features(&embeds, &ids, 5, &too_few).unwrap_err().to_string();
        assert!(err.contains("3 image tokens") && err.contains("2 features"), "{err}");
        assert_eq!(count_tokens(&ids, 5).unwrap(), 3);
        assert_eq!(token_positions(&ids, 5).unwrap(), [0, 2, 4]);
    }

    #[test]
    fn text_config_dispatch() {
        let cfg = json!({"model_type": "qwen2", "hidden_size": 16, "intermediate_size": 8, "num_hidden_layers": 1,
                         "num_attention_heads": 2, "num_key_value_heads": 1, "vocab_size": 40});
        let spec = text_decoder_spec(Some(&cfg), "llama", "llava", &[]).unwrap();
        assert_eq!((spec.hidden_size, spec.vocab_size), (16, 40));
        let spec = text_decoder_spec(None, "llama", "llava", &[("vocab_size", json!(77))]).unwrap();
        assert_eq!(spec.vocab_size, 77);
        let err = text_decoder_spec(Some(&json!({"model_type": "gpt2"})), "llama", "llava", &[]).unwrap_err();
        assert!(err.to_string().contains("`gpt2` language model") && err.to_string().contains("gemma3_text"), "{err}");
        assert!(text_decoder_spec(Some(&json!(3)), "llama", "llava", &[]).is_err());
    }
}
