//! [`DetrModel`] and [`DetrForObjectDetection`], as `transformers`' `modeling_detr`: the
//! ResNet backbone, a 1x1 input projection, the post-norm transformer encoder (position
//! embeddings added to queries and keys) and decoder (learned query positions), and the
//! class and box heads.

use autocandle_core::nn::{linear, Linear};
use autocandle_resnet::ResNetBackbone;
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{layer_norm, Embedding, LayerNorm, VarBuilder};

use autocandle_core::{
    Activation, AutoRegister, BaseModelOutput, Error, ForObjectDetection, LoadModel, Model, ModelInputs,
    ObjectDetectionOutput, PreTrainedModel, Result,
};

use crate::config::{timm_resnet_name, DetrBackboneSpec, DetrConfig};
use crate::position::{downsample_mask, PositionEmbedding};

/// `eps` of DETR's `nn.LayerNorm`s.
const LAYER_NORM_EPS: f64 = 1e-5;

/// The additive value of a masked key, `torch.finfo(dtype).min`.
fn mask_min(dtype: DType) -> f64 {
    match dtype {
        DType::F16 => -65504.0,
        DType::BF16 => -3.3895313892515355e38,
        DType::F64 => f64::MIN,
        _ => f32::MIN as f64,
    }
}

/// `DetrSelfAttention` / `DetrCrossAttention`: `q_proj`, `k_proj`, `v_proj`, `out_proj`.
#[derive(Debug)]
struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    num_heads: usize,
    head_dim: usize,
}

impl Attention {
    fn load(vb: VarBuilder<'_>, d: usize, num_heads: usize) -> Result<Self> {
        Ok(Self {
            q_proj: linear(d, d, vb.pp("q_proj"))?,
            k_proj: linear(d, d, vb.pp("k_proj"))?,
            v_proj: linear(d, d, vb.pp("v_proj"))?,
            out_proj: linear(d, d, vb.pp("out_proj"))?,
            num_heads,
            head_dim: d / num_heads,
        })
    }

    /// `query` `[b, lq, d]` attends to `key` / `value` `[b, lk, d]` (the key already carries
    /// its position embedding, the value not); `mask` is additive `[b, 1, 1, lk]`.
    fn forward(&self, query: &Tensor, key: &Tensor, value: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (b, lq, d) = query.dims3()?;
        let lk = key.dim(1)?;
        let heads = |proj: &Linear, x: &Tensor, len: usize| -> Result<Tensor> {
            Ok(proj.forward(x)?.reshape((b, len, self.num_heads, self.head_dim))?.transpose(1, 2)?.contiguous()?)
        };
        let (q, k, v) =
            (heads(&self.q_proj, query, lq)?, heads(&self.k_proj, key, lk)?, heads(&self.v_proj, value, lk)?);
        let dtype = q.dtype();
        let scale = (self.head_dim as f64).powf(-0.5);
        let scores = autocandle_core::kernels::matmul(&q, &k.t()?)?;
        let probs = autocandle_core::kernels::masked_softmax(&scores, scale, mask)?.to_dtype(dtype)?;
        let context = autocandle_core::kernels::matmul(&probs, &v)?.transpose(1, 2)?.reshape((b, lq, d))?;
        Ok(self.out_proj.forward(&context)?)
    }
}

/// `fc1`, activation, `fc2`.
#[derive(Debug)]
struct FeedForward {
    fc1: Linear,
    fc2: Linear,
    activation: Activation,
}

impl FeedForward {
    fn load(vb: VarBuilder<'_>, d: usize, ffn: usize, activation: Activation) -> Result<Self> {
        Ok(Self { fc1: linear(d, ffn, vb.pp("fc1"))?, fc2: linear(ffn, d, vb.pp("fc2"))?, activation })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(self.fc2.forward(&self.activation.forward(&self.fc1.forward(x)?)?)?)
    }
}

/// `DetrEncoderLayer`: post-norm self-attention (positions on queries and keys) and MLP.
#[derive(Debug)]
struct EncoderLayer {
    self_attn: Attention,
    self_attn_layer_norm: LayerNorm,
    mlp: FeedForward,
    final_layer_norm: LayerNorm,
}

impl EncoderLayer {
    fn load(vb: VarBuilder<'_>, cfg: &DetrConfig) -> Result<Self> {
        let d = cfg.d_model;
        Ok(Self {
            self_attn: Attention::load(vb.pp("self_attn"), d, cfg.encoder_attention_heads)?,
            self_attn_layer_norm: layer_norm(d, LAYER_NORM_EPS, vb.pp("self_attn_layer_norm"))?,
            mlp: FeedForward::load(vb.clone(), d, cfg.encoder_ffn_dim, cfg.activation_function)?,
            final_layer_norm: layer_norm(d, LAYER_NORM_EPS, vb.pp("final_layer_norm"))?,
        })
    }

    fn forward(&self, x: &Tensor, pos: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let qk = (x + pos)?;
        let x = self.self_attn_layer_norm.forward(&(x + self.self_attn.forward(&qk, &qk, x, Some(mask))?)?)?;
        Ok(self.final_layer_norm.forward(&(&x + self.mlp.forward(&x)?)?)?)
    }
}

/// `DetrDecoderLayer`: post-norm self-attention over the queries, cross-attention to the
/// encoder output, MLP.
#[derive(Debug)]
struct DecoderLayer {
    self_attn: Attention,
    self_attn_layer_norm: LayerNorm,
    encoder_attn: Attention,
    encoder_attn_layer_norm: LayerNorm,
    mlp: FeedForward,
    final_layer_norm: LayerNorm,
}

impl DecoderLayer {
    fn load(vb: VarBuilder<'_>, cfg: &DetrConfig) -> Result<Self> {
        let d = cfg.d_model;
        Ok(Self {
            self_attn: Attention::load(vb.pp("self_attn"), d, cfg.decoder_attention_heads)?,
            self_attn_layer_norm: layer_norm(d, LAYER_NORM_EPS, vb.pp("self_attn_layer_norm"))?,
            encoder_attn: Attention::load(vb.pp("encoder_attn"), d, cfg.decoder_attention_heads)?,
            encoder_attn_layer_norm: layer_norm(d, LAYER_NORM_EPS, vb.pp("encoder_attn_layer_norm"))?,
            mlp: FeedForward::load(vb.clone(), d, cfg.decoder_ffn_dim, cfg.activation_function)?,
            final_layer_norm: layer_norm(d, LAYER_NORM_EPS, vb.pp("final_layer_norm"))?,
        })
    }

    /// `x` `[b, q, d]` with query positions `query_pos`; `memory` `[b, hw, d]` with `pos`.
    fn forward(
        &self,
        x: &Tensor,
        query_pos: &Tensor,
        memory: &Tensor,
        memory_key: &Tensor,
        mask: &Tensor,
    ) -> Result<Tensor> {
        let qk = x.broadcast_add(query_pos)?;
        let x = self.self_attn_layer_norm.forward(&(x + self.self_attn.forward(&qk, &qk, x, None)?)?)?;
        let q = x.broadcast_add(query_pos)?;
        let cross = self.encoder_attn.forward(&q, memory_key, memory, Some(mask))?;
        let x = self.encoder_attn_layer_norm.forward(&(&x + cross)?)?;
        Ok(self.final_layer_norm.forward(&(&x + self.mlp.forward(&x)?)?)?)
    }
}

/// The outputs of the encoder-decoder.
struct Outputs {
    /// `[b, num_queries, d_model]` after the decoder's final LayerNorm.
    decoder: Tensor,
    /// `[b, h * w, d_model]`.
    encoder: Tensor,
}

/// The DETR encoder-decoder without a head (`DetrModel`): `last_hidden_state` `[B,
/// num_queries, d_model]` (the decoder's), and `encoder_last_hidden_state` `[B, h * w,
/// d_model]` in the output's `extra` (`h x w` the backbone's last feature map). Reads
/// `pixel_values` and `pixel_mask` (`[B, H, W]`, 1 = real pixel; none = all real).
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "DetrModel")]
pub struct DetrModel {
    backbone: ResNetBackbone,
    /// `input_projection`, a 1x1 convolution, as a linear map over channels.
    input_projection: Linear,
    position_embedding: PositionEmbedding,
    query_position_embeddings: Embedding,
    encoder: Vec<EncoderLayer>,
    decoder: Vec<DecoderLayer>,
    decoder_layernorm: LayerNorm,
    auxiliary_loss: bool,
    num_queries: usize,
    d_model: usize,
    num_channels: usize,
    device: Device,
    dtype: DType,
}

impl DetrModel {
    /// `vb` is the model root (`model` in the detection model).
    pub fn new(vb: VarBuilder<'_>, cfg: &DetrConfig) -> Result<Self> {
        cfg.validate()?;
        let spec = cfg.backbone_spec()?;
        let resnet = spec.resnet();
        if resnet.num_channels != cfg.num_channels {
            return Err(Error::config(
                "detr",
                format!(
                    "`num_channels` ({}) differs from the backbone's `num_channels` ({})",
                    cfg.num_channels, resnet.num_channels
                ),
            ));
        }
        let backbone_vb = vb.pp("backbone.conv_encoder.model");
        let backbone = match &spec {
            DetrBackboneSpec::ResNet(c) => ResNetBackbone::load(backbone_vb, c)?,
            DetrBackboneSpec::TimmResNet(c) => {
                // The renamer sees full names, and hands them to a builder without a prefix.
                let root = format!("{}.", backbone_vb.prefix());
                let prefix = backbone_vb.prefix();
                let renamed = vb.root().rename_f(move |name: &str| {
                    name.strip_prefix(root.as_str())
                        .and_then(timm_resnet_name)
                        .map_or_else(|| name.to_string(), |timm| format!("{root}{timm}"))
                });
                ResNetBackbone::load(renamed.set_prefix(prefix), c)?
            }
        };
        let channels = backbone.channels().last().copied().ok_or_else(|| {
            Error::config("detr", "the backbone returns no feature map: set `out_features` of `backbone_config`")
        })?;
        let d = cfg.d_model;
        let proj = vb.pp("input_projection");
        let weight = proj.get((d, channels, 1, 1), "weight")?.reshape((d, channels))?;
        let input_projection = Linear::new(weight, Some(proj.get(d, "bias")?));
        let encoder = (0..cfg.encoder_layers)
            .map(|i| EncoderLayer::load(vb.pp(format!("encoder.layers.{i}")), cfg))
            .collect::<Result<_>>()?;
        let decoder = (0..cfg.decoder_layers)
            .map(|i| DecoderLayer::load(vb.pp(format!("decoder.layers.{i}")), cfg))
            .collect::<Result<_>>()?;
        Ok(Self {
            backbone,
            input_projection,
            position_embedding: PositionEmbedding::load(vb.pp("position_embedding"), &cfg.position_embedding_type, d)?,
            query_position_embeddings: candle_nn::embedding(cfg.num_queries, d, vb.pp("query_position_embeddings"))?,
            encoder,
            decoder,
            decoder_layernorm: layer_norm(d, LAYER_NORM_EPS, vb.pp("decoder.layernorm"))?,
            auxiliary_loss: cfg.auxiliary_loss,
            num_queries: cfg.num_queries,
            d_model: d,
            num_channels: cfg.num_channels,
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// The pixel mask as `[b][H][W]` floats, checked against `pixel_values`.
    fn pixel_mask(&self, inputs: &ModelInputs, (b, h, w): (usize, usize, usize)) -> Result<Vec<Vec<Vec<f32>>>> {
        match &inputs.pixel_mask {
            None => Ok(vec![vec![vec![1.0; w]; h]; b]),
            Some(mask) => {
                if mask.dims() != [b, h, w] {
                    return Err(Error::input(format!(
                        "`pixel_mask` must be [batch, height, width] = [{b}, {h}, {w}] like `pixel_values`, got {:?}",
                        mask.dims()
                    )));
                }
                Ok(mask.to_dtype(DType::F32)?.to_vec3::<f32>()?)
            }
        }
    }

    fn run(&self, inputs: &ModelInputs) -> Result<Outputs> {
        let pixel_values = inputs.pixel_values()?.to_device(&self.device)?.to_dtype(self.dtype)?;
        let (b, c, h, w) = pixel_values.dims4().map_err(|_| {
            Error::input(format!(
                "`pixel_values` must be [batch, channels, height, width], got shape {:?}",
                pixel_values.dims()
            ))
        })?;
        if b == 0 {
            return Err(Error::input("`pixel_values` holds no images (batch of 0)"));
        }
        if c != self.num_channels {
            return Err(Error::input(format!(
                "the pixel values have {c} channels but the model takes {} (`num_channels`): convert the images \
                 to RGB or preprocess them with the model's AutoImageProcessor",
                self.num_channels
            )));
        }
        let pixel_mask = self.pixel_mask(inputs, (b, h, w))?;
        let features = self.backbone.forward(&pixel_values)?;
        let feature_map = features.last().ok_or_else(|| Error::input("the backbone returned no feature map"))?;
        let (_, _, fh, fw) = feature_map.dims4()?;
        if fh == 0 || fw == 0 {
            return Err(Error::input(format!(
                "the image ({h}x{w}) is too small for the backbone: its feature map is empty; use larger images"
            )));
        }
        let mask = downsample_mask(&pixel_mask, fh, fw);
        // [b, C, fh, fw] -> [b, fh fw, C] -> [b, fh fw, d].
        let flat = feature_map.flatten_from(2)?.transpose(1, 2)?.contiguous()?;
        let mut x = self.input_projection.forward(&flat)?;
        let pos = self.position_embedding.forward(&mask, (fh, fw), &self.device, self.dtype)?;
        let min = mask_min(self.dtype);
        let additive: Vec<f32> = mask.iter().flatten().map(|&real| if real { 0.0 } else { min as f32 }).collect();
        let attn_mask = Tensor::from_vec(additive, (b, 1, 1, fh * fw), &self.device)?.to_dtype(self.dtype)?;
        for layer in &self.encoder {
            x = layer.forward(&x, &pos, &attn_mask)?;
        }
        let memory_key = (&x + &pos)?;
        let query_pos = self.query_position_embeddings.embeddings().unsqueeze(0)?;
        let mut q = Tensor::zeros((b, self.num_queries, self.d_model), self.dtype, &self.device)?;
        for layer in &self.decoder {
            q = layer.forward(&q, &query_pos, &x, &memory_key, &attn_mask)?;
            if self.auxiliary_loss {
                // transformers 5.25 feeds the normalised output to the next layer here.
                q = self.decoder_layernorm.forward(&q)?;
            }
        }
        Ok(Outputs { decoder: self.decoder_layernorm.forward(&q)?, encoder: x })
    }
}

impl LoadModel for DetrModel {
    type Config = DetrConfig;
    const BASE_MODEL_PREFIX: &'static str = "model";

    fn load(vb: VarBuilder<'_>, config: &DetrConfig) -> Result<Self> {
        Self::new(vb, config)
    }
}

impl PreTrainedModel for DetrModel {
    fn device(&self) -> &Device {
        &self.device
    }

    fn dtype(&self) -> DType {
        self.dtype
    }
}

impl Model for DetrModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let out = self.run(inputs)?;
        Ok(BaseModelOutput::new(out.decoder, None).with_extra("encoder_last_hidden_state", out.encoder))
    }
}

/// DETR with its detection heads (`DetrForObjectDetection`): a linear classifier to
/// `num_labels + 1` logits (the last is "no object") and a 3-layer MLP to boxes `(cx, cy, w,
/// h)` through a sigmoid, on each query's decoder state.
#[derive(Debug, AutoRegister)]
#[auto(task = "object-detection", class = "DetrForObjectDetection")]
pub struct DetrForObjectDetection {
    model: DetrModel,
    class_labels_classifier: Linear,
    /// `bbox_predictor.layers.{0,1,2}`.
    bbox_predictor: Vec<Linear>,
}

impl LoadModel for DetrForObjectDetection {
    type Config = DetrConfig;
    const BASE_MODEL_PREFIX: &'static str = "model";

    fn load(vb: VarBuilder<'_>, cfg: &DetrConfig) -> Result<Self> {
        let d = cfg.d_model;
        let boxes = vb.pp("bbox_predictor.layers");
        Ok(Self {
            model: DetrModel::new(vb.pp("model"), cfg)?,
            class_labels_classifier: linear(d, cfg.labels.num_labels() + 1, vb.pp("class_labels_classifier"))?,
            bbox_predictor: vec![
                linear(d, d, boxes.pp("0"))?,
                linear(d, d, boxes.pp("1"))?,
                linear(d, 4, boxes.pp("2"))?,
            ],
        })
    }
}

impl PreTrainedModel for DetrForObjectDetection {
    fn device(&self) -> &Device {
        self.model.device()
    }

    fn dtype(&self) -> DType {
        self.model.dtype()
    }
}

impl ForObjectDetection for DetrForObjectDetection {
    fn forward(&self, inputs: &ModelInputs) -> Result<ObjectDetectionOutput> {
        let out = self.model.run(inputs)?;
        let logits = self.class_labels_classifier.forward(&out.decoder)?;
        let mut boxes = out.decoder.clone();
        for (i, layer) in self.bbox_predictor.iter().enumerate() {
            boxes = layer.forward(&boxes)?;
            if i + 1 < self.bbox_predictor.len() {
                boxes = boxes.relu()?;
            }
        }
        let pred_boxes = candle_nn::ops::sigmoid(&boxes)?;
        Ok(ObjectDetectionOutput::new(logits, pred_boxes, out.decoder, Some(out.encoder)))
    }
}
