//! [`HubertModel`]: `transformers`' `modeling_hubert.HubertModel`, the wav2vec2 network of
//! `autocandle-wav2vec2` with HuBERT's switches (`feat_proj_layer_norm`,
//! `conv_pos_batch_norm`) and no `extract_features` output.

use autocandle_core::{AutoRegister, Result};
use autocandle_wav2vec2::{Encoder, PosConvKind, SpeechModel, Wav2Vec2Variant};
use candle_nn::VarBuilder;

use crate::config::HubertConfig;

/// The HuBERT speech encoder without a head (`HubertModel`): `last_hidden_state`
/// `[batch, frames, hidden]`. Weight names read as the `transformers` state dict
/// (`feature_extractor.conv_layers.N.conv.weight`, `encoder.layers.N.attention.q_proj.weight`).
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "HubertModel")]
pub struct HubertModel {
    inner: SpeechModel<Encoder>,
}

impl HubertModel {
    /// Load from `vb` (the model root: `hubert` in head models).
    pub fn new(vb: VarBuilder<'_>, cfg: &HubertConfig) -> Result<Self> {
        cfg.validate()?;
        let variant = Wav2Vec2Variant {
            model_type: "hubert",
            feat_extract_norm: None,
            feat_proj_layer_norm: cfg.feat_proj_layer_norm,
            has_extract_features: false,
            pos_conv: if cfg.conv_pos_batch_norm { PosConvKind::BatchNorm } else { PosConvKind::WeightNorm },
        };
        Ok(Self { inner: SpeechModel::load_variant(vb, &cfg.to_wav2vec2(), variant)? })
    }

    /// The shared wav2vec2 network.
    pub fn inner(&self) -> &SpeechModel<Encoder> {
        &self.inner
    }
}

autocandle_wav2vec2::speech_backbone!(HubertModel, config: HubertConfig, prefix: "hubert", model_type: "hubert");
