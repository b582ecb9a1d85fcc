//! CLIP's text tower: [`CLIPTextModel`] (causal encoder, pooled at the end-of-text token) and
//! [`CLIPTextModelWithProjection`], as `transformers`' `modeling_clip`.

use autocandle_core::nn::{linear_no_bias, Linear};
use candle_core::{Device, Module, Tensor};
use candle_nn::VarBuilder;

use autocandle_core::{
    AutoRegister, BaseModelOutput, Error, ForTextEncoding, LoadOptions, Loaded, Model, ModelInputs, ModelOutput, Result,
};

use crate::config::{CLIPTextConfig, TokenIds};
use crate::layers::{gather_rows, TextTransformer};
use crate::load::Tower;

/// Where the text tower is in CLIP checkpoints.
const TEXT_TOWER: Tower = Tower {
    class: "CLIPTextModel",
    model_type: "clip_text_model",
    composite: "clip",
    config_key: "text_config",
    prefix: "text_model",
    inherit: &["projection_dim"],
};

/// The CLIP text encoder without a projection (`CLIPTextModel`): token and position
/// embeddings, a causal pre-norm encoder and a final LayerNorm.
///
/// `forward` takes `input_ids` `[batch, seq]`, optionally `attention_mask` and `position_ids`,
/// and gives `last_hidden_state` `[batch, seq, hidden]` and `pooler_output` `[batch, hidden]`,
/// the state at the first `eos_token_id` of each row (at the largest id when
/// `eos_token_id` is 2, the rule of checkpoints made before `transformers` fixed the id).
///
/// It is registered as the base model (`AutoModel`) and text encoder
/// (`AutoModelForTextEncoding`) of model type `clip_text_model` (a saved `CLIPTextModel`);
/// [`CLIPTextModel::from_pretrained`] also loads the text tower of a `clip` checkpoint.
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "CLIPTextModel")]
pub struct CLIPTextModel {
    /// Causal.
    transformer: TextTransformer,
    pub(crate) eos_token_id: Option<TokenIds>,
}

impl CLIPTextModel {
    /// Build the tower; `vb` holds `embeddings`, `encoder` and `final_layer_norm`
    /// (`text_model` in a `CLIPModel`).
    pub fn new(vb: VarBuilder<'_>, config: &CLIPTextConfig) -> Result<Self> {
        config.validate()?;
        let sizes = (config.vocab_size, config.max_position_embeddings);
        Ok(Self {
            transformer: TextTransformer::load(vb, &config.encoder_spec(), sizes, true)?,
            eos_token_id: config.eos_token_id.clone(),
        })
    }

    /// Load from a Hub repo id or a local folder holding a `CLIPTextModel` or a `CLIPModel`.
    pub fn from_pretrained(id_or_path: &str) -> Result<Self> {
        Self::from_pretrained_with(id_or_path, &LoadOptions::default()).map(|l| l.value)
    }

    /// [`CLIPTextModel::from_pretrained`] with options; config overrides apply to the text
    /// config.
    pub fn from_pretrained_with(id_or_path: &str, opts: &LoadOptions) -> Result<Loaded<Self>> {
        TEXT_TOWER.load(id_or_path, opts, |vb, config: &CLIPTextConfig| Self::new(vb.pp("text_model"), config))
    }

    /// `(last_hidden_state, pooler_output)` for `input_ids`, `attention_mask`, `position_ids`.
    pub fn encode(&self, inputs: &ModelInputs) -> Result<(Tensor, Tensor)> {
        let (ids, hidden) = self.transformer.forward(inputs)?;
        let pooled = gather_rows(&hidden, &self.pool_positions(&ids)?)?;
        Ok((hidden, pooled))
    }

    /// The position pooled in each row: the first `eos_token_id` (the first position when
    /// there is none, as `argmax` of all zeros), or the largest id with the legacy id 2.
    fn pool_positions(&self, ids: &Tensor) -> Result<Vec<usize>> {
        let rows: Vec<Vec<u32>> = ids.to_device(&Device::Cpu)?.to_vec2()?;
        let first_max = |row: &[u32]| {
            // `argmax` gives the first of equal maxima.
            row.iter().enumerate().fold((0, 0), |best, (i, &id)| if id > best.1 { (i, id) } else { best }).0
        };
        Ok(rows
            .iter()
            .map(|row| match &self.eos_token_id {
                Some(TokenIds::One(2)) => first_max(row),
                Some(eos) => row.iter().position(|&id| eos.contains(i64::from(id))).unwrap_or(0),
                None => 0,
            })
            .collect())
    }
}

// Saved `CLIPTextModel`s have their weights at the root (`embeddings.`) or, made before
// `transformers` 5, under `text_model.`; both load.
crate::tower_model!(CLIPTextModel, config = CLIPTextConfig, prefix = "text_model");
crate::pretrained_model!(CLIPTextModel => transformer);

impl ForTextEncoding for CLIPTextModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        Model::forward(self, inputs)
    }
}

/// The output of [`CLIPTextModelWithProjection`] (`CLIPTextModelOutput`).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CLIPTextModelOutput {
    /// `[batch, projection_dim]`: the projected pooled state (not normalised).
    pub text_embeds: Tensor,
    /// `[batch, seq, hidden]`
    pub last_hidden_state: Tensor,
}

impl ModelOutput for CLIPTextModelOutput {
    fn fields(&self) -> Vec<(&'static str, &Tensor)> {
        vec![("text_embeds", &self.text_embeds), ("last_hidden_state", &self.last_hidden_state)]
    }
}

/// The CLIP text encoder with its projection (`CLIPTextModelWithProjection`): `text_embeds`
/// = `text_projection(pooler_output)`, the text features of CLIP's shared embedding space.
///
/// `transformers` has no Auto class for it: load it with
/// [`CLIPTextModelWithProjection::from_pretrained`] from a `CLIPTextModelWithProjection` or a
/// `CLIPModel` checkpoint (weights `text_model.*` and `text_projection.weight`).
#[derive(Debug)]
pub struct CLIPTextModelWithProjection {
    text_model: CLIPTextModel,
    text_projection: Linear,
}

impl CLIPTextModelWithProjection {
    /// Build the model; `vb` holds `text_model` and `text_projection`.
    pub fn new(vb: VarBuilder<'_>, config: &CLIPTextConfig) -> Result<Self> {
        if config.projection_dim == 0 {
            return Err(Error::config("clip_text_model", "`projection_dim` must be at least 1, got 0"));
        }
        Ok(Self {
            text_model: CLIPTextModel::new(vb.pp("text_model"), config)?,
            text_projection: linear_no_bias(config.hidden_size, config.projection_dim, vb.pp("text_projection"))?,
        })
    }

    /// Load from a Hub repo id or a local folder holding a `CLIPTextModelWithProjection` or a
    /// `CLIPModel` (the projection width is then the `clip` config's `projection_dim`, which shapes
    /// `text_projection` in its checkpoint).
    pub fn from_pretrained(id_or_path: &str) -> Result<Self> {
        Self::from_pretrained_with(id_or_path, &LoadOptions::default()).map(|l| l.value)
    }

    /// [`CLIPTextModelWithProjection::from_pretrained`] with options.
    pub fn from_pretrained_with(id_or_path: &str, opts: &LoadOptions) -> Result<Loaded<Self>> {
        TEXT_TOWER.load(id_or_path, opts, |vb, config: &CLIPTextConfig| Self::new(vb, config))
    }

    /// The text tower.
    pub fn text_model(&self) -> &CLIPTextModel {
        &self.text_model
    }

    /// Run on `input_ids` (with `attention_mask`, `position_ids` when given).
    pub fn forward(&self, inputs: &ModelInputs) -> Result<CLIPTextModelOutput> {
        let (last_hidden_state, pooled) = self.text_model.encode(inputs)?;
        Ok(CLIPTextModelOutput { text_embeds: self.text_projection.forward(&pooled)?, last_hidden_state })
    }
}

crate::pretrained_model!(CLIPTextModelWithProjection => text_model);
