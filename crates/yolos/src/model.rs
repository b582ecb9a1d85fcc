//! [`YolosModel`] and [`YolosForObjectDetection`], as `transformers`' `modeling_yolos`:
//! a ViT encoder over `[CLS]`, the patches and the detection tokens, with position
//! embeddings (and mid-layer ones) interpolated to the input size.

use autocandle_core::nn::{linear, Linear};
use autocandle_core::resize::{resize_2d, Resample};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use autocandle_core::{
    AutoRegister, BaseModelOutput, Error, ForObjectDetection, LoadModel, Model, ModelInputs, ObjectDetectionOutput,
    PreTrainedModel, Result,
};

use crate::config::YolosConfig;
use autocandle_vit::{ViTLayer, ViTLayerSpec};

/// Interpolate position embeddings `[n, 1 + gh gw + det, hidden]` laid out on the config's
/// `(gh, gw)` patch grid to the grid `(nh, nw)`: `[n, 1 + nh nw + det, hidden]`
/// (`InterpolateInitialPositionEmbeddings` / `InterpolateMidPositionEmbeddings`).
fn interpolate_positions(
    pos: &Tensor,
    grid: (usize, usize),
    new_grid: (usize, usize),
    detection_tokens: usize,
) -> Result<Tensor> {
    let (n, len, hidden) = pos.dims3()?;
    let (gh, gw) = grid;
    let cls = pos.narrow(1, 0, 1)?;
    let det = pos.narrow(1, len - detection_tokens, detection_tokens)?;
    let patches = pos.narrow(1, 1, gh * gw)?.transpose(1, 2)?.reshape((n, hidden, gh, gw))?;
    let patches = resize_2d(&patches, new_grid, Resample::Bicubic)?.flatten_from(2)?.transpose(1, 2)?;
    Ok(Tensor::cat(&[&cls, &patches, &det], 1)?)
}

/// `YolosEmbeddings`: patch projection, `[CLS]`, detection tokens and the interpolated position
/// embeddings.
#[derive(Debug)]
struct Embeddings {
    /// `patch_embeddings.projection.weight` as `[hidden, channels * p * p]`.
    projection: Linear,
    cls_token: Tensor,
    detection_tokens: Tensor,
    position_embeddings: Tensor,
    num_channels: usize,
    patch: usize,
    grid: (usize, usize),
}

impl Embeddings {
    fn load(vb: VarBuilder<'_>, cfg: &YolosConfig) -> Result<Self> {
        let (h, p, det) = (cfg.hidden_size, cfg.patch(), cfg.num_detection_tokens);
        let (gh, gw) = cfg.patch_grid();
        let proj = vb.pp("patch_embeddings.projection");
        let weight = proj.get((h, cfg.num_channels, p, p), "weight")?.reshape((h, cfg.num_channels * p * p))?;
        Ok(Self {
            projection: Linear::new(weight, Some(proj.get(h, "bias")?)),
            cls_token: vb.get((1, 1, h), "cls_token")?,
            detection_tokens: vb.get((1, det, h), "detection_tokens")?,
            position_embeddings: vb.get((1, 1 + gh * gw + det, h), "position_embeddings")?,
            num_channels: cfg.num_channels,
            patch: p,
            grid: (gh, gw),
        })
    }

    /// `pixel_values` `[B, C, H, W]` -> `[B, 1 + patches + detection tokens, hidden]` and the
    /// patch grid of the input.
    fn forward(&self, pixel_values: &Tensor) -> Result<(Tensor, (usize, usize))> {
        let (batch, channels, height, width) =
            autocandle_core::pixels::check_pixel_values(pixel_values, self.num_channels)?;
        let p = self.patch;
        if height < p || width < p {
            return Err(Error::input(format!(
                "the image ({height}x{width}) is smaller than one {p}x{p} patch: resize it with the model's \
                 AutoImageProcessor"
            )));
        }
        let (gh, gw) = (height / p, width / p);
        // The convolution with kernel = stride = patch drops the pixels past the last whole patch.
        let x = pixel_values.narrow(2, 0, gh * p)?.narrow(3, 0, gw * p)?;
        let patches = x.reshape(vec![batch, channels, gh, p, gw, p])?.permute(vec![0, 2, 4, 1, 3, 5])?.reshape((
            batch,
            gh * gw,
            channels * p * p,
        ))?;
        let embeddings = self.projection.forward(&patches)?;
        let hidden = embeddings.dim(2)?;
        let cls = self.cls_token.expand((batch, 1, hidden))?;
        let det = self.detection_tokens.expand((batch, self.detection_tokens.dim(1)?, hidden))?;
        let embeddings = Tensor::cat(&[&cls, &embeddings, &det], 1)?;
        let pos = interpolate_positions(&self.position_embeddings, self.grid, (gh, gw), self.detection_tokens.dim(1)?)?;
        Ok((embeddings.broadcast_add(&pos)?, (gh, gw)))
    }
}

/// The YOLOS encoder without a head (`YolosModel`): `last_hidden_state` `[B, 1 + patches +
/// detection tokens, hidden]` and, with the pooler, `pooler_output` (tanh of a dense layer
/// on the `[CLS]` state). Images of any size at least one patch: the position embeddings
/// are interpolated (bicubic) from the config's `image_size` grid to the input's.
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "YolosModel")]
pub struct YolosModel {
    embeddings: Embeddings,
    layers: Vec<ViTLayer>,
    /// `encoder.mid_position_embeddings` `[layers - 1, 1, seq, hidden]`, as `[layers - 1, seq, hidden]`.
    mid_position_embeddings: Option<Tensor>,
    layernorm: LayerNorm,
    pooler: Option<Linear>,
    num_detection_tokens: usize,
    device: Device,
    dtype: DType,
}

impl YolosModel {
    /// `vb` is the model root (`vit` in the detection model), which builds it without the
    /// pooler.
    pub fn new(vb: VarBuilder<'_>, cfg: &YolosConfig, add_pooling_layer: bool) -> Result<Self> {
        cfg.validate()?;
        let spec = ViTLayerSpec {
            hidden: cfg.hidden_size,
            heads: cfg.num_attention_heads,
            intermediate: cfg.intermediate_size,
            qkv_bias: cfg.qkv_bias,
            activation: cfg.hidden_act,
            eps: cfg.layer_norm_eps,
        };
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| ViTLayer::load(vb.pp(format!("encoder.layer.{i}")), &spec))
            .collect::<Result<_>>()?;
        let mid_position_embeddings = if cfg.use_mid_position_embeddings {
            let ((h, w), p) = (cfg.image_size.hw(), cfg.patch());
            let seq = 1 + h * w / (p * p) + cfg.num_detection_tokens;
            let depth = cfg.num_hidden_layers - 1;
            let t = vb.get((depth, 1, seq, cfg.hidden_size), "encoder.mid_position_embeddings")?;
            Some(t.reshape((depth, seq, cfg.hidden_size))?)
        } else {
            None
        };
        let pooler = if add_pooling_layer {
            Some(linear(cfg.hidden_size, cfg.hidden_size, vb.pp("pooler.dense"))?)
        } else {
            None
        };
        Ok(Self {
            embeddings: Embeddings::load(vb.pp("embeddings"), cfg)?,
            layers,
            mid_position_embeddings,
            layernorm: layer_norm(cfg.hidden_size, cfg.layer_norm_eps, vb.pp("layernorm"))?,
            pooler,
            num_detection_tokens: cfg.num_detection_tokens,
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// The normalised sequence output `[B, 1 + patches + detection tokens, hidden]`.
    pub fn sequence_output(&self, inputs: &ModelInputs) -> Result<Tensor> {
        let pixel_values = inputs.pixel_values()?.to_device(&self.device)?.to_dtype(self.dtype)?;
        let (mut x, grid) = self.embeddings.forward(&pixel_values)?;
        let mid = match &self.mid_position_embeddings {
            Some(mid) => Some(interpolate_positions(mid, self.embeddings.grid, grid, self.num_detection_tokens)?),
            None => None,
        };
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(&x)?;
            if let Some(mid) = &mid {
                if i + 1 < self.layers.len() {
                    x = x.broadcast_add(&mid.get(i)?)?;
                }
            }
        }
        Ok(self.layernorm.forward(&x)?)
    }
}

impl LoadModel for YolosModel {
    type Config = YolosConfig;
    const BASE_MODEL_PREFIX: &'static str = "vit";

    fn load(vb: VarBuilder<'_>, config: &YolosConfig) -> Result<Self> {
        Self::new(vb, config, true)
    }
}

impl PreTrainedModel for YolosModel {
    fn device(&self) -> &Device {
        &self.device
    }

    fn dtype(&self) -> DType {
        self.dtype
    }
}

impl Model for YolosModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let sequence = self.sequence_output(inputs)?;
        let pooled = match &self.pooler {
            Some(dense) => Some(dense.forward(&sequence.narrow(1, 0, 1)?.squeeze(1)?)?.tanh()?),
            None => None,
        };
        Ok(BaseModelOutput::new(sequence, pooled))
    }
}

/// `YolosMLPPredictionHead` (also DETR's): linear layers with ReLU between them.
#[derive(Debug)]
pub struct MlpHead {
    layers: Vec<Linear>,
}

impl MlpHead {
    /// `layers.0 .. layers.{num_layers - 1}` under `vb`: `input -> hidden -> ... -> output`.
    pub fn load(vb: VarBuilder<'_>, input: usize, hidden: usize, output: usize, num_layers: usize) -> Result<Self> {
        let layers = (0..num_layers)
            .map(|i| {
                let n = if i == 0 { input } else { hidden };
                let k = if i + 1 == num_layers { output } else { hidden };
                Ok(linear(n, k, vb.pp(format!("layers.{i}")))?)
            })
            .collect::<Result<_>>()?;
        Ok(Self { layers })
    }

    /// Apply the layers, ReLU after every one but the last.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = x.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(&x)?;
            if i + 1 < self.layers.len() {
                x = x.relu()?;
            }
        }
        Ok(x)
    }
}

/// YOLOS with its detection heads (`YolosForObjectDetection`): on the final states of the
/// detection tokens, a 3-layer MLP to `num_labels + 1` class logits (the last is "no
/// object") and a 3-layer MLP to boxes `(cx, cy, w, h)` through a sigmoid.
/// `last_hidden_state` is the whole encoder output.
#[derive(Debug, AutoRegister)]
#[auto(task = "object-detection", class = "YolosForObjectDetection")]
pub struct YolosForObjectDetection {
    vit: YolosModel,
    class_labels_classifier: MlpHead,
    bbox_predictor: MlpHead,
}

impl LoadModel for YolosForObjectDetection {
    type Config = YolosConfig;
    const BASE_MODEL_PREFIX: &'static str = "vit";

    fn load(vb: VarBuilder<'_>, cfg: &YolosConfig) -> Result<Self> {
        let h = cfg.hidden_size;
        Ok(Self {
            vit: YolosModel::new(vb.pp("vit"), cfg, false)?,
            class_labels_classifier: MlpHead::load(
                vb.pp("class_labels_classifier"),
                h,
                h,
                cfg.labels.num_labels() + 1,
                3,
            )?,
            bbox_predictor: MlpHead::load(vb.pp("bbox_predictor"), h, h, 4, 3)?,
        })
    }
}

impl PreTrainedModel for YolosForObjectDetection {
    fn device(&self) -> &Device {
        self.vit.device()
    }

    fn dtype(&self) -> DType {
        self.vit.dtype()
    }
}

impl ForObjectDetection for YolosForObjectDetection {
    fn forward(&self, inputs: &ModelInputs) -> Result<ObjectDetectionOutput> {
        let sequence = self.vit.sequence_output(inputs)?;
        let len = sequence.dim(1)?;
        let det = self.vit.num_detection_tokens;
        let tokens = sequence.narrow(1, len - det, det)?;
        let logits = self.class_labels_classifier.forward(&tokens)?;
        let pred_boxes = candle_nn::ops::sigmoid(&self.bbox_predictor.forward(&tokens)?)?;
        Ok(ObjectDetectionOutput::new(logits, pred_boxes, sequence, None))
    }
}
