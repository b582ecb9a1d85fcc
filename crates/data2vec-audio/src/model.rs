//! [`Data2VecAudioModel`]: `transformers`' `modeling_data2vec_audio.Data2VecAudioModel`, the
//! wav2vec2 network of `autocandle-wav2vec2` with a layer-norm feature encoder, a stack of
//! positional convolutions with parameter-free layer norms, and a post-norm encoder.

use autocandle_core::{AutoRegister, Result};
use autocandle_wav2vec2::{Encoder, FeatExtractNorm, PosConvKind, SpeechModel, Wav2Vec2Variant};
use candle_nn::VarBuilder;

use crate::config::Data2VecAudioConfig;

/// The Data2VecAudio speech encoder without a head (`Data2VecAudioModel`): `last_hidden_state`
/// `[batch, frames, hidden]` and `extract_features`. Weight names read as the `transformers`
/// state dict (`encoder.pos_conv_embed.layers.N.conv.weight`, ...).
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "Data2VecAudioModel")]
pub struct Data2VecAudioModel {
    inner: SpeechModel<Encoder>,
}

impl Data2VecAudioModel {
    /// Load from `vb` (the model root: `data2vec_audio` in head models).
    pub fn new(vb: VarBuilder<'_>, cfg: &Data2VecAudioConfig) -> Result<Self> {
        cfg.validate()?;
        let variant = Wav2Vec2Variant {
            model_type: "data2vec-audio",
            feat_extract_norm: Some(FeatExtractNorm::Layer),
            feat_proj_layer_norm: true,
            has_extract_features: true,
            pos_conv: PosConvKind::Stacked {
                layers: cfg.num_conv_pos_embeddings,
                kernel_size: cfg.conv_pos_kernel_size,
            },
        };
        Ok(Self { inner: SpeechModel::load_variant(vb, &cfg.to_wav2vec2(), variant)? })
    }

    /// The shared wav2vec2 network.
    pub fn inner(&self) -> &SpeechModel<Encoder> {
        &self.inner
    }
}

autocandle_wav2vec2::speech_backbone!(
    Data2VecAudioModel,
    config: Data2VecAudioConfig,
    prefix: "data2vec_audio",
    model_type: "data2vec-audio"
);
