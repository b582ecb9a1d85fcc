//! SigLIP's towers: [`SiglipTextModel`] (bidirectional encoder, last token, `head`) and
//! [`SiglipVisionModel`] (patches without a class token, attention-pooling `head`), as
//! `transformers`' `modeling_siglip`. The layers are CLIP's (`autocandle_clip::layers`).

use autocandle_core::nn::{linear, Linear};
use autocandle_core::resize::{interpolate_pos_encoding, Resample};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{LayerNorm, VarBuilder};

use autocandle_clip::layers::{
    attend, gather_rows, norm, pixel_values, split_heads, Encoder, EncoderSpec, ImageSizeCheck, Mlp, PatchEmbedding,
    TextTransformer,
};
use autocandle_clip::load::Tower;
use autocandle_clip::{pretrained_model, tower_model};
use autocandle_core::{AutoRegister, LoadOptions, Loaded, ModelInputs, Result};

use crate::config::{SiglipTextConfig, SiglipVisionConfig};

/// The SigLIP text encoder (`SiglipTextModel`): token and position embeddings, a
/// bidirectional pre-norm encoder, a final LayerNorm, and `head`, a linear map of the last
/// position's state.
///
/// `forward` takes `input_ids` `[batch, seq]` and optionally `attention_mask` and
/// `position_ids`, and gives `last_hidden_state` `[batch, seq, hidden]` and `pooler_output`
/// `[batch, projection_size]` = `head(last_hidden_state[:, -1])`. SigLIP was trained on texts
/// padded to `max_length` (64) without an attention mask, so the last position is usually
/// padding: tokenize with `padding="max_length"` as its processor does.
///
/// `transformers` has no Auto class for it: load it with [`SiglipTextModel::from_pretrained`]
/// from a `SiglipTextModel` or a `SiglipModel` checkpoint.
#[derive(Debug)]
pub struct SiglipTextModel {
    /// Bidirectional.
    transformer: TextTransformer,
    head: Linear,
}

impl SiglipTextModel {
    /// Build the tower; `vb` holds `embeddings`, `encoder`, `final_layer_norm` and `head`
    /// (`text_model` in a `SiglipModel`).
    pub fn new(vb: VarBuilder<'_>, config: &SiglipTextConfig) -> Result<Self> {
        config.validate()?;
        let sizes = (config.vocab_size, config.max_position_embeddings);
        Ok(Self {
            transformer: TextTransformer::load(vb.clone(), &config.encoder_spec(), sizes, false)?,
            head: linear(config.hidden_size, config.projection_size(), vb.pp("head"))?,
        })
    }

    /// Load from a Hub repo id or a local folder holding a `SiglipTextModel` or a `SiglipModel`.
    pub fn from_pretrained(id_or_path: &str) -> Result<Self> {
        Self::from_pretrained_with(id_or_path, &LoadOptions::default()).map(|l| l.value)
    }

    /// [`SiglipTextModel::from_pretrained`] with options; config overrides apply to the text
    /// config.
    pub fn from_pretrained_with(id_or_path: &str, opts: &LoadOptions) -> Result<Loaded<Self>> {
        const TEXT_TOWER: Tower = Tower {
            class: "SiglipTextModel",
            model_type: "siglip_text_model",
            composite: "siglip",
            config_key: "text_config",
            prefix: "text_model",
            inherit: &[],
        };
        TEXT_TOWER.load(id_or_path, opts, |vb, config: &SiglipTextConfig| Self::new(vb.pp("text_model"), config))
    }

    /// `(last_hidden_state, pooler_output)` for `input_ids`, `attention_mask`, `position_ids`.
    pub fn encode(&self, inputs: &ModelInputs) -> Result<(Tensor, Tensor)> {
        let (ids, hidden) = self.transformer.forward(inputs)?;
        let (batch, seq) = ids.dims2()?;
        let last = gather_rows(&hidden, &vec![seq - 1; batch])?;
        Ok((hidden, self.head.forward(&last)?))
    }
}

tower_model!(SiglipTextModel);
pretrained_model!(SiglipTextModel => transformer);

/// `SiglipMultiheadAttentionPoolingHead`: a learned `probe` attends over the patch states
/// (`torch.nn.MultiheadAttention`), then a residual MLP after a LayerNorm.
#[derive(Debug)]
struct AttentionPoolingHead {
    /// `[1, 1, hidden]`
    probe: Tensor,
    /// The query, key and value thirds of `attention.in_proj_weight` / `in_proj_bias`.
    q: Linear,
    k: Linear,
    v: Linear,
    out_proj: Linear,
    layernorm: LayerNorm,
    mlp: Mlp,
    num_heads: usize,
}

impl AttentionPoolingHead {
    fn load(vb: VarBuilder<'_>, spec: &EncoderSpec) -> Result<Self> {
        let h = spec.hidden_size;
        let attention = vb.pp("attention");
        let weight = attention.get((3 * h, h), "in_proj_weight")?;
        let bias = attention.get(3 * h, "in_proj_bias")?;
        let third = |i: usize| -> Result<Linear> {
            Ok(Linear::new(weight.narrow(0, i * h, h)?, Some(bias.narrow(0, i * h, h)?)))
        };
        Ok(Self {
            probe: vb.get((1, 1, h), "probe")?,
            q: third(0)?,
            k: third(1)?,
            v: third(2)?,
            out_proj: linear(h, h, attention.pp("out_proj"))?,
            layernorm: norm(vb.pp("layernorm"), h, spec.layer_norm_eps)?,
            mlp: Mlp::load(vb.pp("mlp"), spec)?,
            num_heads: spec.num_attention_heads,
        })
    }

    /// `hidden` `[batch, patches, hidden]` -> `[batch, hidden]`.
    fn forward(&self, hidden: &Tensor) -> Result<Tensor> {
        let (batch, _, width) = hidden.dims3()?;
        let probe = self.probe.expand((batch, 1, width))?;
        let q = split_heads(&self.q.forward(&probe)?, self.num_heads)?;
        let k = split_heads(&self.k.forward(hidden)?, self.num_heads)?;
        let v = split_heads(&self.v.forward(hidden)?, self.num_heads)?;
        let pooled = self.out_proj.forward(&attend(&q, &k, &v, None)?)?;
        let pooled = (self.mlp.forward(&self.layernorm.forward(&pooled)?)? + &pooled)?;
        Ok(pooled.squeeze(1)?)
    }
}

/// The SigLIP vision encoder (`SiglipVisionModel`): patch embeddings (with bias, no class
/// token) plus learned positions, the pre-norm encoder, `post_layernorm`, and the
/// attention-pooling `head` unless `vision_use_head` is false.
///
/// `forward` takes `pixel_values` `[batch, channels, height, width]` (any size that gives the
/// model's patch grid; pixels past the last whole patch are dropped) and gives
/// `last_hidden_state` `[batch, patches, hidden]` (after `post_layernorm`) and, with the head,
/// `pooler_output` `[batch, hidden]`.
///
/// It is registered as the base model (`AutoModel`) of model type `siglip_vision_model` (a
/// saved `SiglipVisionModel`); [`SiglipVisionModel::from_pretrained`] also loads the vision
/// tower of a `siglip` checkpoint.
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "SiglipVisionModel")]
pub struct SiglipVisionModel {
    patch_embedding: PatchEmbedding,
    /// `embeddings.position_embedding.weight` `[patches, hidden]`.
    position_embedding: Tensor,
    encoder: Encoder,
    post_layernorm: LayerNorm,
    head: Option<AttentionPoolingHead>,
    device: Device,
    dtype: DType,
}

impl SiglipVisionModel {
    /// Build the tower; `vb` holds `embeddings`, `encoder`, `post_layernorm` and `head`
    /// (`vision_model` in a `SiglipModel`).
    pub fn new(vb: VarBuilder<'_>, config: &SiglipVisionConfig) -> Result<Self> {
        config.validate()?;
        let (h, spec) = (config.hidden_size, config.encoder_spec());
        let embeddings = vb.pp("embeddings");
        let head = if config.vision_use_head { Some(AttentionPoolingHead::load(vb.pp("head"), &spec)?) } else { None };
        Ok(Self {
            patch_embedding: PatchEmbedding::load(
                embeddings.pp("patch_embedding"),
                (config.num_channels, config.image_size, config.patch_size, h),
                true,
                ImageSizeCheck::SameGrid,
            )?,
            position_embedding: embeddings.get((config.grid() * config.grid(), h), "position_embedding.weight")?,
            encoder: Encoder::load(vb.pp("encoder"), &spec)?,
            post_layernorm: norm(vb.pp("post_layernorm"), h, config.layer_norm_eps)?,
            head,
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// Load from a Hub repo id or a local folder holding a `SiglipVisionModel` or a
    /// `SiglipModel`.
    pub fn from_pretrained(id_or_path: &str) -> Result<Self> {
        Self::from_pretrained_with(id_or_path, &LoadOptions::default()).map(|l| l.value)
    }

    /// [`SiglipVisionModel::from_pretrained`] with options; config overrides apply to the
    /// vision config.
    pub fn from_pretrained_with(id_or_path: &str, opts: &LoadOptions) -> Result<Loaded<Self>> {
        const VISION_TOWER: Tower = Tower {
            class: "SiglipVisionModel",
            model_type: "siglip_vision_model",
            composite: "siglip",
            config_key: "vision_config",
            prefix: "vision_model",
            inherit: &[],
        };
        VISION_TOWER.load(id_or_path, opts, |vb, config: &SiglipVisionConfig| Self::new(vb.pp("vision_model"), config))
    }

    /// Whether the tower has its pooling head (`vision_use_head`).
    pub fn has_head(&self) -> bool {
        self.head.is_some()
    }

    /// `(last_hidden_state, pooler_output)` for `pixel_values`; `pooler_output` is `None`
    /// without the head.
    pub fn encode(&self, inputs: &ModelInputs) -> Result<(Tensor, Option<Tensor>)> {
        let pixels = pixel_values(inputs, &self.device, self.dtype)?;
        let x = if inputs.interpolate_pos_encoding {
            // `SiglipVisionEmbeddings.interpolate_pos_encoding`: bicubic, no class position.
            let (_, _, height, width) = pixels.dims4()?;
            let (patches, grid) = self.patch_embedding.forward_any_size(&pixels)?;
            let positions = self.position_embedding.unsqueeze(0)?;
            patches.broadcast_add(&interpolate_pos_encoding(
                &positions,
                0,
                grid,
                height == width,
                Resample::Bicubic,
            )?)?
        } else {
            self.patch_embedding.forward(&pixels)?.broadcast_add(&self.position_embedding)?
        };
        let hidden = self.post_layernorm.forward(&self.encoder.forward(&x, None)?)?;
        let pooled = self.head.as_ref().map(|head| head.forward(&hidden)).transpose()?;
        Ok((hidden, pooled))
    }
}

// Saved `SiglipVisionModel`s have their weights at the root (`embeddings.`) or, made before
// `transformers` 5, under `vision_model.`; both load.
tower_model!(SiglipVisionModel, config = SiglipVisionConfig, prefix = "vision_model");
pretrained_model!(SiglipVisionModel);
