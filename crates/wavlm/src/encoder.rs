//! The WavLM transformer: `WavLMEncoder` (post-norm layers) and
//! `WavLMEncoderStableLayerNorm` (pre-norm layers and a final LayerNorm), one type switched
//! by `do_stable_layer_norm`. The positional convolution, the feed-forward block and the
//! padding bias are `autocandle-wav2vec2`'s; the attention is WavLM's own ([`WavLMAttention`]).

use autocandle_core::Result;
use autocandle_wav2vec2::{attention_bias, EncoderOutput, FeedForward, PosConvKind, PositionalConvEmbedding};
use candle_core::{DType, Tensor, D};
use candle_nn::{layer_norm, LayerNorm, Module, VarBuilder};

use crate::attention::WavLMAttention;
use crate::config::WavLMConfig;

/// One transformer layer (`WavLMEncoderLayer` / `WavLMEncoderLayerStableLayerNorm`: the same
/// weights, the norms in another place).
#[derive(Debug)]
struct EncoderLayer {
    attention: WavLMAttention,
    layer_norm: LayerNorm,
    feed_forward: FeedForward,
    final_layer_norm: LayerNorm,
    stable: bool,
}

impl EncoderLayer {
    fn load(vb: VarBuilder<'_>, config: &WavLMConfig, index: usize) -> Result<Self> {
        let cfg = &config.wav2vec2;
        let (d, eps) = (cfg.hidden_size, cfg.layer_norm_eps);
        Ok(Self {
            attention: WavLMAttention::load(vb.pp("attention"), config, index == 0)?,
            layer_norm: layer_norm(d, eps, vb.pp("layer_norm"))?,
            feed_forward: FeedForward::load(vb.pp("feed_forward"), cfg)?,
            final_layer_norm: layer_norm(d, eps, vb.pp("final_layer_norm"))?,
            stable: cfg.do_stable_layer_norm,
        })
    }

    fn forward(&self, hidden: &Tensor, position_bias: &Tensor, key_mask: Option<&Tensor>) -> Result<Tensor> {
        if self.stable {
            let normed = self.layer_norm.forward(hidden)?;
            let hidden = (hidden + self.attention.forward(&normed, position_bias, key_mask)?)?;
            let ff = self.feed_forward.forward(&self.final_layer_norm.forward(&hidden)?)?;
            Ok((hidden + ff)?)
        } else {
            let hidden = (hidden + self.attention.forward(hidden, position_bias, key_mask)?)?;
            let hidden = self.layer_norm.forward(&hidden)?;
            let hidden = (&hidden + self.feed_forward.forward(&hidden)?)?;
            Ok(self.final_layer_norm.forward(&hidden)?)
        }
    }
}

/// The encoder under `wavlm.encoder`: the positional convolution, the LayerNorm and the
/// layers; the first layer's `rel_attn_embed` makes the position bias all layers gate.
#[derive(Debug)]
pub struct WavLMEncoder {
    pos_conv_embed: PositionalConvEmbedding,
    layer_norm: LayerNorm,
    layers: Vec<EncoderLayer>,
    stable: bool,
}

impl WavLMEncoder {
    /// Load from `vb` (`wavlm.encoder`).
    pub fn load(vb: VarBuilder<'_>, config: &WavLMConfig) -> Result<Self> {
        let cfg = &config.wav2vec2;
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| EncoderLayer::load(vb.pp(format!("layers.{i}")), config, i))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            pos_conv_embed: PositionalConvEmbedding::load(vb.pp("pos_conv_embed"), cfg, PosConvKind::WeightNorm)?,
            layer_norm: layer_norm(cfg.hidden_size, cfg.layer_norm_eps, vb.pp("layer_norm"))?,
            layers,
            stable: cfg.do_stable_layer_norm,
        })
    }

    /// Run the encoder on the projected features `hidden` `[batch, frames, hidden]`;
    /// `frame_mask` `[batch, frames]` (1 for real frames, 0 for padding) zeroes the padded
    /// frames and masks them out as keys. `output_hidden_states`: also return the input of
    /// the first layer and every layer's output (the last before the stable form's final
    /// LayerNorm), as `transformers` 5 records them.
    pub fn forward(
        &self,
        hidden: &Tensor,
        frame_mask: Option<&Tensor>,
        output_hidden_states: bool,
    ) -> Result<EncoderOutput> {
        let frames = hidden.dim(1)?;
        let dtype = hidden.dtype();
        let mut x = hidden.clone();
        let mut key_mask = None;
        if let Some(mask) = frame_mask {
            x = x.broadcast_mul(&mask.to_dtype(dtype)?.unsqueeze(D::Minus1)?)?;
            key_mask = Some(attention_bias(mask, dtype)?);
        }
        x = (&x + self.pos_conv_embed.forward(&x)?)?;
        if !self.stable {
            x = self.layer_norm.forward(&x)?;
        }
        let position_bias = match self.layers.first() {
            Some(first) => first.attention.position_bias(frames, dtype)?,
            None => Tensor::zeros((1, 1, frames, frames), DType::F32, x.device())?.to_dtype(dtype)?,
        };
        let mut all = Vec::new();
        if output_hidden_states {
            all.push(x.clone());
        }
        for layer in &self.layers {
            x = layer.forward(&x, &position_bias, key_mask.as_ref())?;
            if output_hidden_states {
                all.push(x.clone());
            }
        }
        if self.stable {
            x = self.layer_norm.forward(&x)?;
        }
        Ok(EncoderOutput { last_hidden_state: x, hidden_states: all })
    }
}
