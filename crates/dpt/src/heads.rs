//! The DPT heads: [`DPTForDepthEstimation`] and [`DPTForSemanticSegmentation`], each the ViT,
//! the neck and a small convolutional head on one fused map (`head_in_index`).

use autocandle_core::spatial::{resize_bilinear, BatchNorm2d, Conv2d, ConvSpec};
use autocandle_dinov2::Dinov2Backbone;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use autocandle_core::{
    AutoRegister, DepthEstimatorOutput, Error, ForDepthEstimation, ForSemanticSegmentation, LoadModel, ModelInputs,
    PreTrainedModel, Result, SemanticSegmenterOutput,
};

use crate::config::DPTConfig;
use crate::neck::{python_index, DPTNeck, NeckSpec, BATCH_NORM_EPS};
use crate::vit::DPTModel;

/// The neck's switches for a [`DPTConfig`], whose token sequences are `hidden_size` wide.
fn neck_spec(cfg: &DPTConfig, hidden_size: usize) -> NeckSpec {
    let use_batch_norm = cfg.use_batch_norm_in_fusion_residual.unwrap_or(false);
    NeckSpec {
        hidden_size,
        neck_hidden_sizes: cfg.neck_hidden_sizes.clone(),
        reassemble_factors: cfg.reassemble_factors.clone(),
        fusion_hidden_size: cfg.fusion_hidden_size,
        readout: cfg.readout_type,
        readout_act: cfg.hidden_act,
        use_batch_norm,
        residual_bias: cfg.use_bias_in_fusion_residual.unwrap_or(!use_batch_norm),
        upsample_to_next: false,
    }
}

/// What produces the neck's token sequences.
#[derive(Debug)]
enum Encoder {
    /// DPT's own ViT and the layers the neck reads.
    Vit { dpt: DPTModel, indices: Vec<usize> },
    /// A DINOv2 `backbone_config` (depth estimation only), with its token sequences.
    Dinov2(Dinov2Backbone),
}

/// The encoder and the neck, shared by both heads.
#[derive(Debug)]
struct Trunk {
    encoder: Encoder,
    neck: DPTNeck,
    head_in_index: i64,
}

impl Trunk {
    /// `allow_backbone`: whether a `backbone_config` replaces the ViT (DPTForDepthEstimation).
    fn load(vb: VarBuilder<'_>, cfg: &DPTConfig, allow_backbone: bool) -> Result<Self> {
        let (encoder, hidden) = if allow_backbone && cfg.has_backbone() {
            let mut backbone_config = cfg.dinov2_backbone()?;
            // The neck reads `[CLS]` + patch sequences, as `transformers`' reassemble stage does.
            backbone_config.reshape_hidden_states = false;
            let backbone = Dinov2Backbone::load(&backbone_config, vb.pp("backbone"))?;
            let stages = backbone.out_indices().len();
            if stages != cfg.neck_hidden_sizes.len() {
                return Err(Error::config(
                    "dpt",
                    format!(
                        "the backbone outputs {stages} stages (`backbone_config.out_indices`) but the neck takes {} \
                         (`neck_hidden_sizes`)",
                        cfg.neck_hidden_sizes.len()
                    ),
                ));
            }
            let hidden = backbone.hidden_size();
            (Encoder::Dinov2(backbone), hidden)
        } else {
            let dpt = DPTModel::new(vb.pp("dpt"), cfg, false)?;
            (Encoder::Vit { dpt, indices: cfg.validate_neck()? }, cfg.hidden_size)
        };
        let neck = DPTNeck::load(vb.pp("neck"), neck_spec(cfg, hidden))?;
        let fused = cfg.neck_hidden_sizes.len() as i64;
        if cfg.head_in_index >= fused || cfg.head_in_index < -fused {
            return Err(Error::config(
                "dpt",
                format!("`head_in_index` ({}) is out of range for {fused} fused maps", cfg.head_in_index),
            ));
        }
        Ok(Self { encoder, neck, head_in_index: cfg.head_in_index })
    }

    fn device(&self) -> &Device {
        match &self.encoder {
            Encoder::Vit { dpt, .. } => dpt.device(),
            Encoder::Dinov2(backbone) => backbone.device(),
        }
    }

    fn dtype(&self) -> DType {
        match &self.encoder {
            Encoder::Vit { dpt, .. } => dpt.dtype(),
            Encoder::Dinov2(backbone) => backbone.dtype(),
        }
    }

    /// The fused map the head reads.
    fn head_input(&self, inputs: &ModelInputs) -> Result<Tensor> {
        let (states, grid) = match &self.encoder {
            Encoder::Vit { dpt, indices } => {
                let features = dpt.features(inputs, indices)?;
                (features.hidden_states, features.grid)
            }
            Encoder::Dinov2(backbone) => {
                let pixel_values = inputs.pixel_values()?.to_device(backbone.device())?.to_dtype(backbone.dtype())?;
                let (_, _, height, width) = pixel_values.dims4().map_err(|_| {
                    Error::input(format!(
                        "`pixel_values` must be [batch, channels, height, width], got shape {:?}",
                        pixel_values.dims()
                    ))
                })?;
                let (ph, pw) = backbone.patch_size();
                if height < ph || width < pw {
                    return Err(Error::input(format!(
                        "the images ({height}x{width}) are smaller than one {ph}x{pw} patch: use larger images"
                    )));
                }
                (backbone.forward(&pixel_values)?, (height / ph, width / pw))
            }
        };
        let fused = self.neck.forward(&states, grid)?;
        Ok(python_index(&fused, self.head_in_index)?.clone())
    }
}

/// `DPTDepthEstimationHead`: (with `add_projection` a 3x3 convolution and ReLU,) a 3x3
/// convolution to half the channels, a 2x bilinear upsampling, a 3x3 convolution to 32
/// channels, ReLU, a 1x1 convolution to one channel, ReLU.
#[derive(Debug)]
struct DepthHead {
    projection: Option<Conv2d>,
    conv1: Conv2d,
    conv2: Conv2d,
    conv3: Conv2d,
}

impl DepthHead {
    fn load(vb: VarBuilder<'_>, cfg: &DPTConfig) -> Result<Self> {
        let f = cfg.fusion_hidden_size;
        let three = ConvSpec::new(3).padding(1);
        let projection = if cfg.add_projection {
            // `nn.Conv2d(256, 256, ...)` in `transformers`, whatever `fusion_hidden_size` is.
            Some(Conv2d::load(256, 256, three, true, vb.pp("projection"))?)
        } else {
            None
        };
        Ok(Self {
            projection,
            conv1: Conv2d::load(f, f / 2, three, true, vb.pp("head.0"))?,
            conv2: Conv2d::load(f / 2, 32, three, true, vb.pp("head.2"))?,
            conv3: Conv2d::load(32, 1, ConvSpec::new(1), true, vb.pp("head.4"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let x = match &self.projection {
            Some(projection) => projection.forward(x)?.relu()?,
            None => x.clone(),
        };
        let y = self.conv1.forward(&x)?;
        let (_, _, h, w) = y.dims4()?;
        let y = self.conv2.forward(&resize_bilinear(&y, 2 * h, 2 * w, true)?)?.relu()?;
        Ok(self.conv3.forward(&y)?.relu()?.squeeze(1)?)
    }
}

/// DPT for monocular depth estimation (`DPTForDepthEstimation`): `predicted_depth`
/// `[b, h, w]` at twice the resolution of the fused map read. With a DINOv2 `backbone_config`
/// the backbone (`backbone.*`) replaces DPT's ViT, as `transformers`' `load_backbone`.
#[derive(Debug, AutoRegister)]
#[auto(task = "depth-estimation", class = "DPTForDepthEstimation")]
pub struct DPTForDepthEstimation {
    trunk: Trunk,
    head: DepthHead,
}

impl LoadModel for DPTForDepthEstimation {
    type Config = DPTConfig;
    const BASE_MODEL_PREFIX: &'static str = "dpt";

    fn load(vb: VarBuilder<'_>, config: &DPTConfig) -> Result<Self> {
        Ok(Self { trunk: Trunk::load(vb.clone(), config, true)?, head: DepthHead::load(vb.pp("head"), config)? })
    }
}

impl ForDepthEstimation for DPTForDepthEstimation {
    fn forward(&self, inputs: &ModelInputs) -> Result<DepthEstimatorOutput> {
        Ok(DepthEstimatorOutput::new(self.head.forward(&self.trunk.head_input(inputs)?)?))
    }
}

/// `DPTSemanticSegmentationHead` (and the auxiliary head's layout): 3x3 convolution without
/// bias, BatchNorm (eval mode), ReLU, 1x1 convolution to the labels.
#[derive(Debug)]
struct SegmentationHead {
    conv: Conv2d,
    batch_norm: BatchNorm2d,
    classifier: Conv2d,
}

impl SegmentationHead {
    fn load(vb: VarBuilder<'_>, features: usize, num_labels: usize) -> Result<Self> {
        Ok(Self {
            conv: Conv2d::load(features, features, ConvSpec::new(3).padding(1), false, vb.pp("head.0"))?,
            batch_norm: BatchNorm2d::load(features, BATCH_NORM_EPS, vb.pp("head.1"))?,
            classifier: Conv2d::load(features, num_labels, ConvSpec::new(1), true, vb.pp("head.4"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.classifier.forward(&self.batch_norm.forward(&self.conv.forward(x)?)?.relu()?)
    }
}

/// DPT for semantic segmentation (`DPTForSemanticSegmentation`): `logits`
/// `[b, num_labels, h, w]` at twice the resolution of the fused map. The auxiliary head
/// (`use_auxiliary_head`, a training aid) is loaded but not run.
#[derive(Debug, AutoRegister)]
#[auto(task = "semantic-segmentation", class = "DPTForSemanticSegmentation")]
pub struct DPTForSemanticSegmentation {
    trunk: Trunk,
    head: SegmentationHead,
    /// Read so that the loading report stays clean; its logits are a training loss term.
    _auxiliary_head: Option<SegmentationHead>,
}

impl LoadModel for DPTForSemanticSegmentation {
    type Config = DPTConfig;
    const BASE_MODEL_PREFIX: &'static str = "dpt";

    fn load(vb: VarBuilder<'_>, config: &DPTConfig) -> Result<Self> {
        let num_labels = config.labels.num_labels();
        if num_labels == 0 {
            return Err(Error::config("dpt", "the semantic segmentation head needs at least one label"));
        }
        let f = config.fusion_hidden_size;
        let auxiliary = if config.use_auxiliary_head.unwrap_or(false) {
            Some(SegmentationHead::load(vb.pp("auxiliary_head"), f, num_labels)?)
        } else {
            None
        };
        Ok(Self {
            trunk: Trunk::load(vb.clone(), config, false)?,
            head: SegmentationHead::load(vb.pp("head"), f, num_labels)?,
            _auxiliary_head: auxiliary,
        })
    }
}

impl ForSemanticSegmentation for DPTForSemanticSegmentation {
    fn forward(&self, inputs: &ModelInputs) -> Result<SemanticSegmenterOutput> {
        let logits = self.head.forward(&self.trunk.head_input(inputs)?)?;
        let (_, _, h, w) = logits.dims4()?;
        Ok(SemanticSegmenterOutput::new(resize_bilinear(&logits, 2 * h, 2 * w, true)?))
    }
}

macro_rules! through_dpt {
    ($($head:ty),*) => {$(
        impl PreTrainedModel for $head {
            fn device(&self) -> &Device {
                self.trunk.device()
            }

            fn dtype(&self) -> DType {
                self.trunk.dtype()
            }
        }
    )*};
}

through_dpt!(DPTForDepthEstimation, DPTForSemanticSegmentation);
