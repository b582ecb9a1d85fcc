//! The WavLM transformer: `WavLMEncoder` (post-norm layers) and
//! `WavLMEncoderStableLayerNorm` (pre-norm layers and a final LayerNorm), one type
//! switched by `do_stable_layer_norm`.

use autocandle_core::Result;
use candle_core::{DType, Tensor};
use candle_nn::{layer_norm, LayerNorm, Module, VarBuilder};

use crate::attention::WavLMAttention;
use crate::config::WavLMConfig;
use crate::w2v2_parts::{FeedForward, PositionalConvEmbedding};

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
        let (d, eps) = (config.hidden_size, config.layer_norm_eps);
        Ok(Self {
            attention: WavLMAttention::load(vb.pp("attention"), config, index == 0)?,
            layer_norm: layer_norm(d, eps, vb.pp("layer_norm"))?,
            feed_forward: FeedForward::load(vb.pp("feed_forward"), d, config.intermediate_size, config.hidden_act)?,
            final_layer_norm: layer_norm(d, eps, vb.pp("final_layer_norm"))?,
            stable: config.do_stable_layer_norm,
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

/// What the encoder returns.
#[derive(Debug, Clone)]
pub struct EncoderOutput {
    /// `[batch, frames, hidden]`.
    pub last_hidden_state: Tensor,
    /// With `hidden_states` asked for: the input of the first layer and every layer's output
    /// (in the stable-layer-norm encoder the last one before the final LayerNorm), as
    /// `transformers` 5 records them; empty otherwise.
    pub hidden_states: Vec<Tensor>,
}

/// The encoder under `wavlm.encoder`: positional convolution, LayerNorm, the layers.
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
        let layers = (0..config.num_hidden_layers)
            .map(|i| EncoderLayer::load(vb.pp(format!("layers.{i}")), config, i))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            pos_conv_embed: PositionalConvEmbedding::load(
                vb.pp("pos_conv_embed"),
                config.hidden_size,
                config.num_conv_pos_embeddings,
                config.num_conv_pos_embedding_groups,
                config.feat_extract_activation,
            )?,
            layer_norm: layer_norm(config.hidden_size, config.layer_norm_eps, vb.pp("layer_norm"))?,
            layers,
            stable: config.do_stable_layer_norm,
        })
    }

    /// Run the encoder on the projected features `hidden` `[batch, frames, hidden]`;
    /// `frame_mask` `[batch, frames]` (1 for real frames, 0 for padding; any dtype) zeroes the
    /// padded frames and masks them out as keys. `hidden_states`: also return the states of
    /// every layer (for the weighted layer sum).
    pub fn forward(&self, hidden: &Tensor, frame_mask: Option<&Tensor>, hidden_states: bool) -> Result<EncoderOutput> {
        let (batch, frames, _) = hidden.dims3()?;
        let dtype = hidden.dtype();
        let (mut hidden, key_mask) = match frame_mask {
            Some(mask) => {
                let keep = mask.to_dtype(dtype)?;
                let hidden = hidden.broadcast_mul(&keep.unsqueeze(2)?)?;
                let zeros = Tensor::zeros((batch, frames), dtype, hidden.device())?;
                let blocked = Tensor::full(f32::NEG_INFINITY, (batch, frames), hidden.device())?.to_dtype(dtype)?;
                let key_mask = mask.ne(0u32)?.where_cond(&zeros, &blocked)?.reshape((batch, 1, 1, frames))?;
                (hidden, Some(key_mask))
            }
            None => (hidden.clone(), None),
        };
        hidden = (&hidden + self.pos_conv_embed.forward(&hidden)?)?;
        if !self.stable {
            hidden = self.layer_norm.forward(&hidden)?;
        }
        let mut states = Vec::new();
        let position_bias = match self.layers.first() {
            Some(first) => first.attention.position_bias(frames, dtype)?,
            None => Tensor::zeros((1, 1, frames, frames), DType::F32, hidden.device())?.to_dtype(dtype)?,
        };
        for layer in &self.layers {
            if hidden_states {
                states.push(hidden.clone());
            }
            hidden = layer.forward(&hidden, &position_bias, key_mask.as_ref())?;
        }
        if hidden_states {
            states.push(hidden.clone());
        }
        if self.stable {
            hidden = self.layer_norm.forward(&hidden)?;
        }
        Ok(EncoderOutput { last_hidden_state: hidden, hidden_states: states })
    }
}
