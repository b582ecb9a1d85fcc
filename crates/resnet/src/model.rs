//! [`ResNetModel`], [`ResNetForImageClassification`] and [`ResNetBackbone`]: the stem
//! (7x7 convolution, max pool), the residual stages, and the pooler, as `transformers`'
//! `modeling_resnet`.
//!
//! Every BatchNorm runs in eval mode (running statistics, `eps` 1e-5) and is folded into the
//! convolution before it when the weights load: `conv(x, w * s) + (beta - mean * s)` with
//! `s = gamma / sqrt(var + eps)`.

use autocandle_core::nn::{linear, Linear};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::VarBuilder;

use autocandle_core::{
    Activation, AutoRegister, BaseModelOutput, Error, ForImageClassification, ImageClassifierOutput, LoadModel, Model,
    ModelInputs, PreTrainedModel, Result,
};

use crate::config::{LayerType, ResNetConfig};

/// `eps` of `nn.BatchNorm2d` (and of DETR's frozen BatchNorm).
const BATCH_NORM_EPS: f64 = 1e-5;

/// A convolution without bias followed by an eval-mode BatchNorm (folded into it) and an
/// optional activation: `ResNetConvLayer` (`convolution`, `normalization`) and
/// `ResNetShortCut`.
#[derive(Debug)]
struct ConvNorm {
    /// `[out, in, k, k]`, scaled by the BatchNorm.
    weight: Tensor,
    /// `[1, out, 1, 1]`: the BatchNorm's shift.
    bias: Tensor,
    stride: usize,
    padding: usize,
    activation: Option<Activation>,
}

impl ConvNorm {
    fn load(
        vb: VarBuilder<'_>,
        (cin, cout): (usize, usize),
        kernel: usize,
        stride: usize,
        activation: Option<Activation>,
    ) -> Result<Self> {
        let dtype = vb.dtype();
        let weight = vb.pp("convolution").get((cout, cin, kernel, kernel), "weight")?.to_dtype(DType::F32)?;
        let norm = vb.pp("normalization");
        let get = |name: &str| -> Result<Tensor> { Ok(norm.get(cout, name)?.to_dtype(DType::F32)?) };
        let (gamma, beta, mean, var) = (get("weight")?, get("bias")?, get("running_mean")?, get("running_var")?);
        let scale = gamma.broadcast_div(&(var + BATCH_NORM_EPS)?.sqrt()?)?;
        let shift = (beta - mean.broadcast_mul(&scale)?)?;
        Ok(Self {
            weight: weight.broadcast_mul(&scale.reshape((cout, 1, 1, 1))?)?.to_dtype(dtype)?,
            bias: shift.reshape((1, cout, 1, 1))?.to_dtype(dtype)?,
            stride,
            padding: kernel / 2,
            activation,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.conv2d(&self.weight, self.padding, self.stride, 1, 1)?.broadcast_add(&self.bias)?;
        Ok(match self.activation {
            Some(act) => act.forward(&y)?,
            None => y,
        })
    }
}

/// `nn.MaxPool2d(kernel_size=3, stride=2, padding=1)`: the padding never wins the max.
fn max_pool_3x3_s2_p1(x: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let pad_rows = Tensor::full(f32::NEG_INFINITY, (b, c, 1, w), x.device())?.to_dtype(x.dtype())?;
    let x = Tensor::cat(&[&pad_rows, x, &pad_rows], 2)?;
    let pad_cols = Tensor::full(f32::NEG_INFINITY, (b, c, h + 2, 1), x.device())?.to_dtype(x.dtype())?;
    let x = Tensor::cat(&[&pad_cols, &x, &pad_cols], 3)?;
    Ok(x.max_pool2d_with_stride(3, 2)?)
}

/// `ResNetEmbeddings`: the 7x7 stride-2 convolution and the 3x3 stride-2 max pool.
#[derive(Debug)]
struct Embeddings {
    embedder: ConvNorm,
    num_channels: usize,
}

impl Embeddings {
    fn load(vb: VarBuilder<'_>, cfg: &ResNetConfig) -> Result<Self> {
        Ok(Self {
            embedder: ConvNorm::load(
                vb.pp("embedder"),
                (cfg.num_channels, cfg.embedding_size),
                7,
                2,
                Some(cfg.hidden_act),
            )?,
            num_channels: cfg.num_channels,
        })
    }

    fn forward(&self, pixel_values: &Tensor) -> Result<Tensor> {
        autocandle_core::pixels::check_pixel_values(pixel_values, self.num_channels)?;
        max_pool_3x3_s2_p1(&self.embedder.forward(pixel_values)?)
    }
}

/// `ResNetBasicLayer` or `ResNetBottleNeckLayer`: `layer.N` convolutions, the `shortcut`
/// projection when the shape changes, and the activation after the residual sum.
#[derive(Debug)]
struct ResidualLayer {
    shortcut: Option<ConvNorm>,
    convs: Vec<ConvNorm>,
    activation: Activation,
}

impl ResidualLayer {
    fn load(vb: VarBuilder<'_>, cfg: &ResNetConfig, (cin, cout): (usize, usize), stride: usize) -> Result<Self> {
        // transformers builds the inner `ResNetConvLayer`s with their default activation,
        // ReLU, whatever `hidden_act` is; `hidden_act` applies after the residual sum only.
        let act = Some(Activation::Relu);
        let shortcut = if cin != cout || stride != 1 {
            Some(ConvNorm::load(vb.pp("shortcut"), (cin, cout), 1, stride, None)?)
        } else {
            None
        };
        let layer = vb.pp("layer");
        let convs = match cfg.layer_type {
            LayerType::Basic => vec![
                ConvNorm::load(layer.pp("0"), (cin, cout), 3, stride, act)?,
                ConvNorm::load(layer.pp("1"), (cout, cout), 3, 1, None)?,
            ],
            LayerType::Bottleneck => {
                let reduced = cout / 4;
                let (s1, s2) = if cfg.downsample_in_bottleneck { (stride, 1) } else { (1, stride) };
                vec![
                    ConvNorm::load(layer.pp("0"), (cin, reduced), 1, s1, act)?,
                    ConvNorm::load(layer.pp("1"), (reduced, reduced), 3, s2, act)?,
                    ConvNorm::load(layer.pp("2"), (reduced, cout), 1, 1, None)?,
                ]
            }
        };
        Ok(Self { shortcut, convs, activation: cfg.hidden_act })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for conv in &self.convs {
            h = conv.forward(&h)?;
        }
        let residual = match &self.shortcut {
            Some(shortcut) => shortcut.forward(x)?,
            None => x.clone(),
        };
        self.activation.forward(&(h + residual)?)
    }
}

/// The stem and the stages (`embedder`, `encoder.stages.N.layers.M`), shared by the model
/// and the backbone.
#[derive(Debug)]
struct Trunk {
    embedder: Embeddings,
    stages: Vec<Vec<ResidualLayer>>,
}

impl Trunk {
    fn load(vb: VarBuilder<'_>, cfg: &ResNetConfig) -> Result<Self> {
        cfg.validate()?;
        let mut stages = Vec::with_capacity(cfg.depths.len());
        let mut cin = cfg.embedding_size;
        for (i, (&cout, &depth)) in cfg.hidden_sizes.iter().zip(&cfg.depths).enumerate() {
            let stride = if i > 0 || cfg.downsample_in_first_stage { 2 } else { 1 };
            let vb = vb.pp(format!("encoder.stages.{i}.layers"));
            let mut layers = Vec::with_capacity(depth);
            for j in 0..depth {
                let (c, s) = if j == 0 { (cin, stride) } else { (cout, 1) };
                layers.push(ResidualLayer::load(vb.pp(j), cfg, (c, cout), s)?);
            }
            stages.push(layers);
            cin = cout;
        }
        Ok(Self { embedder: Embeddings::load(vb.pp("embedder"), cfg)?, stages })
    }

    /// The stem output, then the outputs of the first `stages` stages (index 0 is the stem).
    fn forward(&self, pixel_values: &Tensor, stages: usize) -> Result<Vec<Tensor>> {
        let mut x = self.embedder.forward(pixel_values)?;
        let mut states = vec![x.clone()];
        for stage in self.stages.iter().take(stages) {
            for layer in stage {
                x = layer.forward(&x)?;
            }
            states.push(x.clone());
        }
        Ok(states)
    }
}

/// The ResNet without a head (`ResNetModel`): `last_hidden_state` `[B, C, h, w]` (the last
/// stage) and `pooler_output` `[B, C, 1, 1]` (its spatial mean, `AdaptiveAvgPool2d((1, 1))`).
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "ResNetModel")]
pub struct ResNetModel {
    trunk: Trunk,
    device: Device,
    dtype: DType,
}

impl ResNetModel {
    /// `(last_hidden_state, pooler_output)` for `inputs.pixel_values`.
    fn run(&self, inputs: &ModelInputs) -> Result<(Tensor, Tensor)> {
        let pixel_values = inputs.pixel_values()?.to_device(&self.device)?.to_dtype(self.dtype)?;
        let mut states = self.trunk.forward(&pixel_values, self.trunk.stages.len())?;
        let last = states.pop().ok_or_else(|| Error::Unsupported("a ResNet without stages".into()))?;
        let pooled = last.mean_keepdim(D::Minus1)?.mean_keepdim(D::Minus2)?;
        Ok((last, pooled))
    }
}

impl LoadModel for ResNetModel {
    type Config = ResNetConfig;
    const BASE_MODEL_PREFIX: &'static str = "resnet";

    fn load(vb: VarBuilder<'_>, config: &ResNetConfig) -> Result<Self> {
        Ok(Self { trunk: Trunk::load(vb.clone(), config)?, device: vb.device().clone(), dtype: vb.dtype() })
    }
}

impl PreTrainedModel for ResNetModel {
    fn device(&self) -> &Device {
        &self.device
    }

    fn dtype(&self) -> DType {
        self.dtype
    }
}

impl Model for ResNetModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let (last, pooled) = self.run(inputs)?;
        Ok(BaseModelOutput::new(last, Some(pooled)))
    }
}

/// ResNet with a linear classifier (`classifier.1`) on the pooled features
/// (`ResNetForImageClassification`); none with `num_labels = 0`.
#[derive(Debug, AutoRegister)]
#[auto(task = "image-classification")]
pub struct ResNetForImageClassification {
    resnet: ResNetModel,
    classifier: Option<Linear>,
}

impl LoadModel for ResNetForImageClassification {
    type Config = ResNetConfig;
    const BASE_MODEL_PREFIX: &'static str = "resnet";

    fn load(vb: VarBuilder<'_>, config: &ResNetConfig) -> Result<Self> {
        let resnet = ResNetModel::load(vb.pp("resnet"), config)?;
        let num_labels = config.labels.num_labels();
        let hidden = config.hidden_sizes.last().copied().unwrap_or(config.embedding_size);
        let classifier = if num_labels > 0 { Some(linear(hidden, num_labels, vb.pp("classifier.1"))?) } else { None };
        Ok(Self { resnet, classifier })
    }
}

impl PreTrainedModel for ResNetForImageClassification {
    fn device(&self) -> &Device {
        self.resnet.device()
    }

    fn dtype(&self) -> DType {
        self.resnet.dtype()
    }
}

impl ForImageClassification for ResNetForImageClassification {
    fn forward(&self, inputs: &ModelInputs) -> Result<ImageClassifierOutput> {
        let (_, pooled) = self.resnet.run(inputs)?;
        let pooled = pooled.flatten_from(1)?;
        let logits = match &self.classifier {
            Some(classifier) => classifier.forward(&pooled)?,
            None => pooled,
        };
        Ok(ImageClassifierOutput::new(logits))
    }
}

/// `ResNetBackbone`: the feature maps `[B, C_i, h_i, w_i]` of the stages that the config's
/// `out_features` / `out_indices` name (`stem`, `stage1`, ...; the last stage when neither is
/// set), for DETR and other detectors. Weights as in `ResNetBackbone` (`embedder.*`,
/// `encoder.stages.*`) under `vb`.
#[derive(Debug)]
pub struct ResNetBackbone {
    trunk: Trunk,
    out_indices: Vec<usize>,
    channels: Vec<usize>,
    device: Device,
    dtype: DType,
}

impl ResNetBackbone {
    /// Load the stem and the stages from `vb` (the backbone root, e.g. `model.backbone.conv_encoder.model`
    /// in a DETR checkpoint); errors: `InvalidConfig` for an inconsistent config or unknown
    /// output stages, `TensorNotFound` / `TensorShape` for missing or misshapen weights.
    pub fn load(vb: VarBuilder<'_>, config: &ResNetConfig) -> Result<Self> {
        let out_indices = config.out_stage_indices()?;
        let all = config.stage_channels();
        let channels = out_indices.iter().map(|&i| all[i]).collect();
        Ok(Self {
            trunk: Trunk::load(vb.clone(), config)?,
            out_indices,
            channels,
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// The stage indices returned (0 is the stem), in order.
    pub fn out_indices(&self) -> &[usize] {
        &self.out_indices
    }

    /// Channels of each returned feature map (transformers' `backbone.channels`).
    pub fn channels(&self) -> &[usize] {
        &self.channels
    }

    /// The device of the weights.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The dtype of the weights.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The feature maps of the output stages for `pixel_values` `[B, num_channels, H, W]`,
    /// one `[B, C_i, h_i, w_i]` per entry of [`ResNetBackbone::out_indices`].
    pub fn forward(&self, pixel_values: &Tensor) -> Result<Vec<Tensor>> {
        let pixel_values = pixel_values.to_device(&self.device)?.to_dtype(self.dtype)?;
        let last = self.out_indices.last().copied().unwrap_or(0);
        let states = self.trunk.forward(&pixel_values, last)?;
        Ok(self.out_indices.iter().filter_map(|&i| states.get(i).cloned()).collect())
    }
}
