//! `DetrConfig`, field for field as `transformers`' `configuration_detr.DetrConfig` (5.25),
//! and the backbone it describes ([`DetrBackboneSpec`]).

use autocandle_core::{Activation, AutoRegister, Error, LabelConfig, Result};
use autocandle_resnet::{LayerType, ResNetConfig};
use serde::{Deserialize, Serialize};

/// The config of a DETR model (`DetrConfig`), with the `transformers` defaults (those of
/// facebook/detr-resnet-50). A field `config.json` leaves out takes its default; the matcher
/// and loss settings (`class_cost`, `bbox_loss_coefficient`, ...) are training-only and ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "detr")]
#[serde(default)]
pub struct DetrConfig {
    /// The backbone's config (`ResNetConfig`, `model_type` `resnet`, or a `timm_backbone`
    /// config); `None`: built from `use_timm_backbone` and `backbone`.
    pub backbone_config: Option<serde_json::Value>,
    /// Whether the backbone is a timm model (`backbone` names it) rather than transformers'
    /// own ResNet; only read when `backbone_config` is absent.
    pub use_timm_backbone: bool,
    /// The timm model name of the backbone (`resnet50`) when `use_timm_backbone`.
    pub backbone: Option<String>,
    /// Load pretrained backbone weights from timm when building from scratch; unused here
    /// (the checkpoint holds the backbone's weights).
    pub use_pretrained_backbone: bool,
    /// Extra arguments of a timm backbone (`out_indices`, `output_stride`); only checked.
    pub backbone_kwargs: Option<serde_json::Value>,
    /// Replace the last stage's stride by a dilation (DC5); timm backbones only.
    pub dilation: bool,
    /// Channels of the input images (3 for RGB).
    pub num_channels: usize,
    /// Number of object queries (detection slots).
    pub num_queries: usize,
    /// Encoder layers.
    pub encoder_layers: usize,
    /// Width of the encoder's feed-forward layers.
    pub encoder_ffn_dim: usize,
    /// Attention heads of the encoder.
    pub encoder_attention_heads: usize,
    /// Decoder layers.
    pub decoder_layers: usize,
    /// Width of the decoder's feed-forward layers.
    pub decoder_ffn_dim: usize,
    /// Attention heads of the decoder.
    pub decoder_attention_heads: usize,
    /// Training only.
    pub encoder_layerdrop: f64,
    /// Training only.
    pub decoder_layerdrop: f64,
    /// Always true for DETR.
    pub is_encoder_decoder: bool,
    /// Activation of the feed-forward layers.
    pub activation_function: Activation,
    /// Width of the transformer (`hidden_size`).
    pub d_model: usize,
    /// Training only: dropout is a no-op here.
    pub dropout: f64,
    /// Training only: dropout is a no-op here.
    pub attention_dropout: f64,
    /// Training only: dropout is a no-op here.
    pub activation_dropout: f64,
    /// Initialisation only.
    pub init_std: f64,
    /// Initialisation only.
    pub init_xavier_std: f64,
    /// Auxiliary decoding losses. In `transformers` 5.25 this also changes inference: the
    /// decoder applies its final LayerNorm to every layer's output before the next layer.
    pub auxiliary_loss: bool,
    /// `sine` (fixed, normalised) or `learned` (row and column embeddings, at most 50 each)
    /// position embeddings of the feature map.
    pub position_embedding_type: String,
    /// `id2label`, `label2id`, `num_labels`, `problem_type`.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

impl Default for DetrConfig {
    /// `DetrConfig()` in `transformers`: the DETR-ResNet-50 shape.
    fn default() -> Self {
        Self {
            backbone_config: None,
            use_timm_backbone: true,
            backbone: None,
            use_pretrained_backbone: true,
            backbone_kwargs: None,
            dilation: false,
            num_channels: 3,
            num_queries: 100,
            encoder_layers: 6,
            encoder_ffn_dim: 2048,
            encoder_attention_heads: 8,
            decoder_layers: 6,
            decoder_ffn_dim: 2048,
            decoder_attention_heads: 8,
            encoder_layerdrop: 0.0,
            decoder_layerdrop: 0.0,
            is_encoder_decoder: true,
            activation_function: Activation::Relu,
            d_model: 256,
            dropout: 0.1,
            attention_dropout: 0.0,
            activation_dropout: 0.0,
            init_std: 0.02,
            init_xavier_std: 1.0,
            auxiliary_loss: false,
            position_embedding_type: "sine".to_string(),
            labels: LabelConfig::default(),
        }
    }
}

/// Where the backbone's weights are and what shape it has.
#[derive(Debug, Clone, PartialEq)]
pub enum DetrBackboneSpec {
    /// `transformers`' own ResNet (`use_timm_backbone: false`, or a `resnet` `backbone_config`),
    /// weights named as `ResNetBackbone`'s (`embedder.*`, `encoder.stages.*`).
    ResNet(ResNetConfig),
    /// A timm ResNet (`use_timm_backbone: true`, `backbone: "resnet50"`): the same network,
    /// with timm's weight names (`conv1`, `bn1`, `layerN.M.convK`, `downsample.0`), which
    /// [`timm_resnet_name`] maps.
    TimmResNet(ResNetConfig),
}

impl DetrBackboneSpec {
    /// The ResNet config of either kind.
    pub fn resnet(&self) -> &ResNetConfig {
        match self {
            Self::ResNet(c) | Self::TimmResNet(c) => c,
        }
    }
}

/// What to do about a backbone autocandle cannot build.
const BACKBONE_HELP: &str = "autocandle builds DETR's backbone with transformers' ResNet (`use_timm_backbone: false` \
     with a `resnet` `backbone_config`) or from a timm `resnet18`/`resnet34`/`resnet50`/`resnet101`/`resnet152`";

/// The ResNet of a timm model name, as `timm.create_model(name, features_only=True)` builds it.
fn timm_resnet(name: &str, num_channels: usize) -> Option<ResNetConfig> {
    let (layer_type, depths) = match name {
        "resnet18" => (LayerType::Basic, vec![2, 2, 2, 2]),
        "resnet34" => (LayerType::Basic, vec![3, 4, 6, 3]),
        "resnet50" => (LayerType::Bottleneck, vec![3, 4, 6, 3]),
        "resnet101" => (LayerType::Bottleneck, vec![3, 4, 23, 3]),
        "resnet152" => (LayerType::Bottleneck, vec![3, 8, 36, 3]),
        _ => return None,
    };
    let hidden_sizes = match layer_type {
        LayerType::Basic => vec![64, 128, 256, 512],
        LayerType::Bottleneck => vec![256, 512, 1024, 2048],
    };
    Some(ResNetConfig {
        num_channels,
        embedding_size: 64,
        hidden_sizes,
        depths,
        layer_type,
        out_features: Some(vec!["stage4".to_string()]),
        ..ResNetConfig::default()
    })
}

/// The timm name of a weight of `ResNetBackbone` (relative to the backbone root), or `None`
/// for a name outside the ResNet: `embedder.embedder.convolution.weight` -> `conv1.weight`,
/// `encoder.stages.I.layers.J.layer.K.normalization.X` -> `layer{I+1}.J.bn{K+1}.X`,
/// `encoder.stages.I.layers.J.shortcut.convolution.weight` -> `layer{I+1}.J.downsample.0.weight`.
pub fn timm_resnet_name(name: &str) -> Option<String> {
    let module = |part: &str, index: &str| -> Option<String> {
        match part {
            "convolution" => Some(format!("conv{index}")),
            "normalization" => Some(format!("bn{index}")),
            _ => None,
        }
    };
    if let Some(rest) = name.strip_prefix("embedder.embedder.") {
        let (part, leaf) = rest.split_once('.')?;
        return Some(format!("{}.{leaf}", module(part, "1")?));
    }
    let rest = name.strip_prefix("encoder.stages.")?;
    let parts: Vec<&str> = rest.splitn(7, '.').collect();
    match parts.as_slice() {
        [stage, "layers", layer, "layer", k, part, leaf] => {
            let (stage, k) = (stage.parse::<usize>().ok()?, k.parse::<usize>().ok()?);
            Some(format!("layer{}.{layer}.{}.{leaf}", stage + 1, module(part, &(k + 1).to_string())?))
        }
        [stage, "layers", layer, "shortcut", part, leaf @ ..] => {
            let stage = stage.parse::<usize>().ok()?;
            let index = match *part {
                "convolution" => 0,
                "normalization" => 1,
                _ => return None,
            };
            Some(format!("layer{}.{layer}.downsample.{index}.{}", stage + 1, leaf.join(".")))
        }
        _ => None,
    }
}

impl DetrConfig {
    /// The backbone the config describes, as `DetrConfig.__post_init__` and `load_backbone`
    /// build it; `Unsupported` for a backbone autocandle has no network for (a timm model
    /// other than a plain ResNet, a dilated (DC5) one, another `backbone_config` model type).
    pub fn backbone_spec(&self) -> Result<DetrBackboneSpec> {
        let timm = |name: &str, output_stride: bool| -> Result<DetrBackboneSpec> {
            if self.dilation || output_stride {
                return Err(Error::Unsupported(format!(
                    "DETR with a dilated timm backbone (`dilation: true` / `output_stride`, DC5) is not supported: \
                     {BACKBONE_HELP}"
                )));
            }
            timm_resnet(name, self.num_channels).map(DetrBackboneSpec::TimmResNet).ok_or_else(|| {
                Error::Unsupported(format!(
                    "DETR with the timm backbone `{name}` (`backbone`) is not supported: {BACKBONE_HELP}"
                ))
            })
        };
        let Some(value) = &self.backbone_config else {
            if self.use_timm_backbone {
                let stride = self.backbone_kwargs.as_ref().is_some_and(|k| k.get("output_stride").is_some());
                return timm(self.backbone.as_deref().unwrap_or("resnet50"), stride);
            }
            // `DetrConfig` fills in `ResNetConfig(out_features=["stage4"])`.
            return Ok(DetrBackboneSpec::ResNet(ResNetConfig {
                out_features: Some(vec!["stage4".to_string()]),
                ..ResNetConfig::default()
            }));
        };
        match value.get("model_type").and_then(|t| t.as_str()) {
            Some("resnet") => {
                let config: ResNetConfig = serde_json::from_value(value.clone()).map_err(|e| {
                    Error::config("detr", format!("`backbone_config` is not a valid ResNet config: {e}"))
                })?;
                Ok(DetrBackboneSpec::ResNet(config))
            }
            Some("timm_backbone") => {
                let name = value.get("backbone").and_then(|b| b.as_str()).unwrap_or("resnet50");
                let stride = value.get("output_stride").is_some_and(|s| !s.is_null());
                timm(name, stride)
            }
            other => Err(Error::Unsupported(format!(
                "DETR with a `{}` backbone (`backbone_config.model_type`) is not supported: {BACKBONE_HELP}",
                other.unwrap_or("(none)")
            ))),
        }
    }

    /// Check what the model needs of the config.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| Err(Error::config("detr", message));
        for (name, value) in [
            ("d_model", self.d_model),
            ("num_queries", self.num_queries),
            ("encoder_attention_heads", self.encoder_attention_heads),
            ("decoder_attention_heads", self.decoder_attention_heads),
            ("encoder_ffn_dim", self.encoder_ffn_dim),
            ("decoder_ffn_dim", self.decoder_ffn_dim),
            ("num_channels", self.num_channels),
        ] {
            if value == 0 {
                return invalid(format!("`{name}` must be at least 1, got 0"));
            }
        }
        for (name, heads) in [
            ("encoder_attention_heads", self.encoder_attention_heads),
            ("decoder_attention_heads", self.decoder_attention_heads),
        ] {
            if !self.d_model.is_multiple_of(heads) {
                return invalid(format!("`d_model` ({}) must be a multiple of `{name}` ({heads})", self.d_model));
            }
        }
        if !self.d_model.is_multiple_of(2) {
            return invalid(format!(
                "`d_model` ({}) must be even: the position embeddings have d_model / 2 channels per axis",
                self.d_model
            ));
        }
        if !matches!(self.position_embedding_type.as_str(), "sine" | "learned") {
            return invalid(format!(
                "`position_embedding_type` must be \"sine\" or \"learned\", got {:?}",
                self.position_embedding_type
            ));
        }
        Ok(())
    }
}
