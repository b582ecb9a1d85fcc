//! [`DepthAnythingForDepthEstimation`]: the DINOv2 backbone, the neck and the depth head of
//! `transformers`' `modeling_depth_anything`.

use autocandle_core::spatial::{resize_bilinear, Conv2d, ConvSpec};
use autocandle_dinov2::Dinov2Backbone;
use autocandle_dpt::{python_index, DPTNeck, NeckSpec, Readout};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use autocandle_core::{
    Activation, AutoRegister, DepthEstimatorOutput, Error, ForDepthEstimation, LoadModel, ModelInputs, PreTrainedModel,
    Result,
};

use crate::config::{DepthAnythingConfig, DepthEstimationType};

/// `DepthAnythingDepthEstimationHead`: a 3x3 convolution to half the channels, a bilinear
/// resize (`align_corners=True`) to the patch grid times the patch size, a 3x3 convolution to
/// `head_hidden_size`, ReLU, a 1x1 convolution to one channel, then ReLU (relative) or a sigmoid
/// (metric), times `max_depth`.
#[derive(Debug)]
struct Head {
    conv1: Conv2d,
    conv2: Conv2d,
    conv3: Conv2d,
    kind: DepthEstimationType,
    max_depth: f64,
    patch_size: usize,
}

impl Head {
    fn load(vb: VarBuilder<'_>, cfg: &DepthAnythingConfig) -> Result<Self> {
        let (f, h) = (cfg.fusion_hidden_size, cfg.head_hidden_size);
        let three = ConvSpec::new(3).padding(1);
        let max_depth = match (cfg.depth_estimation_type, cfg.max_depth) {
            (_, Some(depth)) => depth,
            (DepthEstimationType::Relative, None) => 1.0,
            (DepthEstimationType::Metric, None) => {
                return Err(Error::config("depth_anything", "metric depth needs `max_depth`, got null"))
            }
        };
        Ok(Self {
            conv1: Conv2d::load(f, f / 2, three, true, vb.pp("conv1"))?,
            conv2: Conv2d::load(f / 2, h, three, true, vb.pp("conv2"))?,
            conv3: Conv2d::load(h, 1, ConvSpec::new(1), true, vb.pp("conv3"))?,
            kind: cfg.depth_estimation_type,
            max_depth,
            patch_size: cfg.patch_size,
        })
    }

    fn forward(&self, x: &Tensor, grid: (usize, usize)) -> Result<Tensor> {
        let y = self.conv1.forward(x)?;
        let y = resize_bilinear(&y, grid.0 * self.patch_size, grid.1 * self.patch_size, true)?;
        let y = self.conv3.forward(&self.conv2.forward(&y)?.relu()?)?;
        let y = match self.kind {
            DepthEstimationType::Relative => y.relu()?,
            DepthEstimationType::Metric => candle_nn::ops::sigmoid(&y)?,
        };
        Ok((y * self.max_depth)?.squeeze(1)?)
    }
}

/// Depth Anything (`DepthAnythingForDepthEstimation`): `predicted_depth` `[b, h, w]` with `h`,
/// `w` the input's size rounded down to whole patches.
#[derive(Debug, AutoRegister)]
#[auto(task = "depth-estimation", class = "DepthAnythingForDepthEstimation")]
pub struct DepthAnythingForDepthEstimation {
    backbone: Dinov2Backbone,
    neck: DPTNeck,
    head: Head,
    head_in_index: i64,
    patch_size: usize,
}

impl LoadModel for DepthAnythingForDepthEstimation {
    type Config = DepthAnythingConfig;
    const BASE_MODEL_PREFIX: &'static str = "depth_anything";

    fn load(vb: VarBuilder<'_>, config: &DepthAnythingConfig) -> Result<Self> {
        config.validate()?;
        let mut backbone_config = config.backbone()?;
        // The neck reads the token sequences (`transformers`' sub-config sets
        // `reshape_hidden_states` false; its neck cannot read reshaped maps).
        backbone_config.reshape_hidden_states = false;
        let backbone = Dinov2Backbone::load(&backbone_config, vb.pp("backbone"))?;
        let stages = config.neck_hidden_sizes.len();
        if backbone.out_indices().len() != stages {
            return Err(Error::config(
                "depth_anything",
                format!(
                    "the backbone outputs {} stages (`backbone_config.out_indices`) but the neck takes {stages} \
                     (`neck_hidden_sizes`)",
                    backbone.out_indices().len()
                ),
            ));
        }
        let spec = NeckSpec {
            hidden_size: config.reassemble_hidden_size,
            neck_hidden_sizes: config.neck_hidden_sizes.clone(),
            reassemble_factors: config.reassemble_factors.clone(),
            fusion_hidden_size: config.fusion_hidden_size,
            readout: Readout::Ignore,
            readout_act: Activation::Relu,
            use_batch_norm: false,
            residual_bias: true,
            upsample_to_next: true,
        };
        Ok(Self {
            backbone,
            neck: DPTNeck::load(vb.pp("neck"), spec)?,
            head: Head::load(vb.pp("head"), config)?,
            head_in_index: config.head_in_index,
            patch_size: config.patch_size,
        })
    }
}

impl PreTrainedModel for DepthAnythingForDepthEstimation {
    fn device(&self) -> &Device {
        self.backbone.device()
    }

    fn dtype(&self) -> DType {
        self.backbone.dtype()
    }
}

impl ForDepthEstimation for DepthAnythingForDepthEstimation {
    fn forward(&self, inputs: &ModelInputs) -> Result<DepthEstimatorOutput> {
        let pixel_values = inputs.pixel_values()?.to_device(self.backbone.device())?.to_dtype(self.backbone.dtype())?;
        let (_, _, height, width) = pixel_values.dims4().map_err(|_| {
            Error::input(format!(
                "`pixel_values` must be [batch, channels, height, width], got shape {:?}",
                pixel_values.dims()
            ))
        })?;
        let grid = (height / self.patch_size, width / self.patch_size);
        if grid.0 == 0 || grid.1 == 0 {
            return Err(Error::input(format!(
                "the images ({height}x{width}) are smaller than one {p}x{p} patch: use larger images",
                p = self.patch_size
            )));
        }
        let states = self.backbone.forward(&pixel_values)?;
        let fused = self.neck.forward(&states, grid)?;
        let depth = self.head.forward(python_index(&fused, self.head_in_index)?, grid)?;
        Ok(DepthEstimatorOutput::new(depth))
    }
}
