//! The convolutional feature encoder (`Wav2Vec2FeatureEncoder`), the feature projection
//! (`Wav2Vec2FeatureProjection`) and the frame-level attention mask
//! (`_get_feature_vector_attention_mask`).

use autocandle_core::nn::{linear, Linear};
use autocandle_core::{Activation, Error, Result};
use candle_core::{DType, Module, Tensor, D};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use crate::config::{FeatExtractNorm, Wav2Vec2Config};

/// Epsilon of `nn.LayerNorm` / `nn.GroupNorm` built without one (the feature encoder's norms).
pub const TORCH_NORM_EPS: f64 = 1e-5;

/// The normalisation after one convolution of the feature encoder.
#[derive(Debug, Clone)]
enum ConvNorm {
    None,
    /// `GroupNorm(num_groups = channels)`: each channel normalised over time.
    Group {
        weight: Tensor,
        bias: Tensor,
    },
    /// `LayerNorm(channels)` over the channels of each frame.
    Layer(LayerNorm),
}

/// One convolution of the feature encoder with its norm and activation
/// (`Wav2Vec2{NoLayerNorm,LayerNorm,GroupNorm}ConvLayer`; `Data2VecAudioConvLayer` is the
/// layer-norm one).
#[derive(Debug, Clone)]
pub struct FeatureConvLayer {
    weight: Tensor,
    bias: Option<Tensor>,
    stride: usize,
    norm: ConvNorm,
    activation: Activation,
}

impl FeatureConvLayer {
    /// Load convolution `layer_id` (`conv_layers.{layer_id}` under `vb`); `norm` is `None` for
    /// no norm, `Some(Group)` or `Some(Layer)`.
    pub fn load(
        vb: VarBuilder<'_>,
        cfg: &Wav2Vec2Config,
        layer_id: usize,
        norm: Option<FeatExtractNorm>,
    ) -> Result<Self> {
        let in_dim = if layer_id == 0 { 1 } else { cfg.conv_dim[layer_id - 1] };
        let out_dim = cfg.conv_dim[layer_id];
        let kernel = cfg.conv_kernel[layer_id];
        let weight = vb.get((out_dim, in_dim, kernel), "conv.weight")?;
        let bias = if cfg.conv_bias { Some(vb.get(out_dim, "conv.bias")?) } else { None };
        let norm = match norm {
            None => ConvNorm::None,
            Some(FeatExtractNorm::Group) => ConvNorm::Group {
                weight: vb.get(out_dim, "layer_norm.weight")?,
                bias: vb.get(out_dim, "layer_norm.bias")?,
            },
            Some(FeatExtractNorm::Layer) => ConvNorm::Layer(layer_norm(out_dim, TORCH_NORM_EPS, vb.pp("layer_norm"))?),
        };
        Ok(Self { weight, bias, stride: cfg.conv_stride[layer_id], norm, activation: cfg.feat_extract_activation })
    }

    /// `[batch, in, time]` -> `[batch, out, time']`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut y = conv1d(x, &self.weight, self.bias.as_ref(), 0, self.stride, 1, 1)?;
        y = match &self.norm {
            ConvNorm::None => y,
            ConvNorm::Group { weight, bias } => {
                let dtype = y.dtype();
                let yf = y.to_dtype(DType::F32)?;
                let mean = yf.mean_keepdim(D::Minus1)?;
                let centered = yf.broadcast_sub(&mean)?;
                let var = centered.sqr()?.mean_keepdim(D::Minus1)?;
                let normed = centered.broadcast_div(&(var + TORCH_NORM_EPS)?.sqrt()?)?.to_dtype(dtype)?;
                normed.broadcast_mul(&weight.unsqueeze(1)?)?.broadcast_add(&bias.unsqueeze(1)?)?
            }
            ConvNorm::Layer(ln) => ln.forward(&y.transpose(1, 2)?)?.transpose(1, 2)?,
        };
        self.activation.forward(&y)
    }
}

/// A 1-d convolution `[batch, in, time]` -> `[batch, out, time']` with an optional bias.
pub fn conv1d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    padding: usize,
    stride: usize,
    dilation: usize,
    groups: usize,
) -> Result<Tensor> {
    let y = x.contiguous()?.conv1d(weight, padding, stride, dilation, groups)?;
    Ok(match bias {
        Some(b) => y.broadcast_add(&b.reshape((1, b.dim(0)?, 1))?)?,
        None => y,
    })
}

/// The convolutional feature encoder (`Wav2Vec2FeatureEncoder`, under `feature_extractor`):
/// raw audio `[batch, samples]` to `[batch, conv_dim[-1], frames]`.
#[derive(Debug, Clone)]
pub struct FeatureEncoder {
    layers: Vec<FeatureConvLayer>,
}

impl FeatureEncoder {
    /// Load `conv_layers.N` under `vb` with `cfg.feat_extract_norm`: `group` normalises after
    /// the first convolution only, `layer` after every one.
    pub fn load(vb: VarBuilder<'_>, cfg: &Wav2Vec2Config) -> Result<Self> {
        Self::load_with_norm(vb, cfg, cfg.feat_extract_norm)
    }

    /// Load with the given norm instead of `cfg.feat_extract_norm` (Data2VecAudio always uses
    /// `layer`).
    pub fn load_with_norm(vb: VarBuilder<'_>, cfg: &Wav2Vec2Config, norm: FeatExtractNorm) -> Result<Self> {
        let layers = (0..cfg.conv_dim.len())
            .map(|i| {
                let layer_norm = match norm {
                    FeatExtractNorm::Group if i == 0 => Some(FeatExtractNorm::Group),
                    FeatExtractNorm::Group => None,
                    FeatExtractNorm::Layer => Some(FeatExtractNorm::Layer),
                };
                FeatureConvLayer::load(vb.pp(format!("conv_layers.{i}")), cfg, i, layer_norm)
            })
            .collect::<Result<_>>()?;
        Ok(Self { layers })
    }

    /// `[batch, samples]` -> `[batch, conv_dim[-1], frames]`.
    pub fn forward(&self, input_values: &Tensor) -> Result<Tensor> {
        let mut x = input_values.unsqueeze(1)?;
        for layer in &self.layers {
            x = layer.forward(&x)?;
        }
        Ok(x)
    }
}

/// The feature projection (`Wav2Vec2FeatureProjection`, under `feature_projection`): layer norm
/// (absent in HuBERT with `feat_proj_layer_norm = false`) and a linear map to `hidden_size`.
#[derive(Debug, Clone)]
pub struct FeatureProjection {
    layer_norm: Option<LayerNorm>,
    projection: Linear,
}

impl FeatureProjection {
    /// Load `layer_norm` (when `with_layer_norm`) and `projection` under `vb`.
    pub fn load(vb: VarBuilder<'_>, cfg: &Wav2Vec2Config, with_layer_norm: bool) -> Result<Self> {
        let dim = *cfg.conv_dim.last().ok_or_else(|| Error::config("wav2vec2", "`conv_dim` is empty"))?;
        let layer_norm =
            if with_layer_norm { Some(layer_norm(dim, cfg.layer_norm_eps, vb.pp("layer_norm"))?) } else { None };
        Ok(Self { layer_norm, projection: linear(dim, cfg.hidden_size, vb.pp("projection"))? })
    }

    /// `[batch, frames, conv_dim[-1]]` -> (`hidden_states [batch, frames, hidden]`,
    /// `extract_features`: the normalised input, or the input without the layer norm).
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let normed = match &self.layer_norm {
            Some(ln) => ln.forward(x)?,
            None => x.clone(),
        };
        Ok((self.projection.forward(&normed)?, normed))
    }
}

/// Check `input_values` (`[batch, samples]`, long enough for the feature encoder) and
/// `attention_mask` (same shape), as the model reads them.
pub fn check_audio_inputs(cfg: &Wav2Vec2Config, input_values: &Tensor, attention_mask: Option<&Tensor>) -> Result<()> {
    let dims = input_values.dims();
    if dims.len() != 2 {
        return Err(Error::input(format!(
            "`input_values` must be [batch, samples] raw audio, got shape {dims:?}: batch one clip as [1, samples]"
        )));
    }
    let min = cfg.min_samples();
    if dims[1] < min {
        return Err(Error::input(format!(
            "`input_values` has {} samples, fewer than the {min} the feature encoder needs for one frame: pad or use \
             longer audio",
            dims[1]
        )));
    }
    if let Some(mask) = attention_mask {
        if mask.dims() != dims {
            return Err(Error::input(format!(
                "`attention_mask` has shape {:?} but `input_values` has {dims:?}: give one mask value per sample",
                mask.dims()
            )));
        }
    }
    Ok(())
}

/// The number of real samples of each clip (`attention_mask.sum(-1)`).
pub fn mask_lengths(attention_mask: &Tensor) -> Result<Vec<i64>> {
    let sums = attention_mask.to_dtype(DType::F64)?.sum(D::Minus1)?.to_vec1::<f64>()?;
    Ok(sums.into_iter().map(|s| s.round() as i64).collect())
}

/// The frame-level mask of `transformers`' `_get_feature_vector_attention_mask`: for each clip,
/// frames `0..n` are real where `n` is the feature encoder's output length of the clip's
/// real samples. Returns the lengths `n` (what the `[batch, frames]` mask holds as 1s),
/// following the Python indexing (`mask[b, n - 1] = 1`, a reversed cumulative sum) also at
/// the edges.
pub fn feature_vector_lengths(
    cfg: &Wav2Vec2Config,
    frames: usize,
    attention_mask: &Tensor,
    add_adapter: bool,
) -> Result<Vec<usize>> {
    mask_lengths(attention_mask)?
        .into_iter()
        .map(|samples| {
            let n = cfg.feat_extract_output_length(samples, add_adapter);
            // `mask[b, n - 1] = 1` with Python's negative indexing, then everything before it.
            let idx = if n - 1 < 0 { n - 1 + frames as i64 } else { n - 1 };
            if idx < 0 || idx >= frames as i64 {
                return Err(Error::input(format!(
                    "`attention_mask` marks {samples} real samples, which make {n} frames of the {frames} the \
                     feature encoder made: the mask does not fit the audio"
                )));
            }
            Ok(idx as usize + 1)
        })
        .collect()
}

/// The `[batch, frames]` mask (1 for real frames, 0 for padding) in `dtype` from the lengths of
/// [`feature_vector_lengths`].
pub fn lengths_to_mask(lengths: &[usize], frames: usize, dtype: DType, device: &candle_core::Device) -> Result<Tensor> {
    let data: Vec<f32> =
        lengths.iter().flat_map(|&n| (0..frames).map(move |f| if f < n { 1.0 } else { 0.0 })).collect();
    Ok(Tensor::from_vec(data, (lengths.len(), frames), device)?.to_dtype(dtype)?)
}
