//! Unit tests: config parsing, the backbone a config describes, timm weight names, bad
//! configs and inputs. Parity with `transformers` is checked by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use autocandle_core::{ForObjectDetection, LoadModel, Model, ModelInputs};
use autocandle_resnet::LayerType;
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::{timm_resnet_name, DetrBackboneSpec, DetrConfig, DetrForObjectDetection, DetrModel};

fn config(json: serde_json::Value) -> DetrConfig {
    let mut base = serde_json::json!({
        "backbone_config": {"model_type": "resnet", "embedding_size": 8, "hidden_sizes": [8, 12], "depths": [1, 1],
                            "layer_type": "basic", "out_features": ["stage2"]},
        "use_timm_backbone": false, "d_model": 16, "encoder_layers": 1, "decoder_layers": 2,
        "encoder_attention_heads": 2, "decoder_attention_heads": 4, "encoder_ffn_dim": 12, "decoder_ffn_dim": 10,
        "num_queries": 3, "num_labels": 2
    });
    if let (Some(base), Some(over)) = (base.as_object_mut(), json.as_object()) {
        for (k, v) in over {
            base.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(base).unwrap()
}

/// Load `M` with random weights: vectors from U(0.5, 1.5) (positive BatchNorm variances),
/// matrices and kernels from N(0, 1 / fan_in).
fn random<M: LoadModel<Config = DetrConfig>>(cfg: &DetrConfig) -> (M, VarMap) {
    let map = VarMap::new();
    M::load(VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu), cfg).unwrap();
    for var in map.all_vars() {
        let dims = var.shape().dims().to_vec();
        let value = match dims.as_slice() {
            [_] => Tensor::rand(0.5f32, 1.5, dims, &Device::Cpu),
            [out, ..] => Tensor::randn(0f32, (*out as f32 / var.elem_count() as f32).sqrt(), dims, &Device::Cpu),
            [] => Tensor::rand(0.5f32, 1.5, dims, &Device::Cpu),
        };
        var.set(&value.unwrap()).unwrap();
    }
    let model = M::load(VarBuilder::from_varmap(&map, DType::F32, &Device::Cpu), cfg).unwrap();
    (model, map)
}

fn pixels(batch: usize, channels: usize, h: usize, w: usize) -> ModelInputs {
    ModelInputs::from_pixel_values(Tensor::randn(0f32, 1., (batch, channels, h, w), &Device::Cpu).unwrap())
}

#[test]
fn config_defaults_and_backbones() {
    let cfg: DetrConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, DetrConfig::default());
    // The Hub's facebook/detr-resnet-50: a timm ResNet-50.
    let DetrBackboneSpec::TimmResNet(resnet) = cfg.backbone_spec().unwrap() else { panic!("not timm") };
    assert_eq!((resnet.layer_type, resnet.depths.clone()), (LayerType::Bottleneck, vec![3, 4, 6, 3]));
    let cfg: DetrConfig = serde_json::from_str(r#"{"backbone": "resnet18"}"#).unwrap();
    assert_eq!(cfg.backbone_spec().unwrap().resnet().layer_type, LayerType::Basic);
    let cfg: DetrConfig =
        serde_json::from_str(r#"{"backbone_config": {"model_type": "timm_backbone", "backbone": "resnet101"}}"#)
            .unwrap();
    assert_eq!(cfg.backbone_spec().unwrap().resnet().depths, [3, 4, 23, 3]);
    // `use_timm_backbone: false` without a backbone_config: transformers' ResNet-50.
    let cfg: DetrConfig = serde_json::from_str(r#"{"use_timm_backbone": false}"#).unwrap();
    let DetrBackboneSpec::ResNet(resnet) = cfg.backbone_spec().unwrap() else { panic!("not resnet") };
    assert_eq!(resnet.out_stage_indices().unwrap(), [4]);
    let tiny = config(serde_json::json!({}));
    assert_eq!(tiny.backbone_spec().unwrap().resnet().hidden_sizes, [8, 12]);
}

#[test]
fn unsupported_backbones_say_what_to_do() {
    let err = |json: &str| {
        let cfg: DetrConfig = serde_json::from_str(json).unwrap();
        cfg.backbone_spec().unwrap_err().to_string()
    };
    assert!(err(r#"{"backbone": "efficientnet_b0"}"#).contains("timm backbone `efficientnet_b0` (`backbone`)"));
    assert!(err(r#"{"dilation": true}"#).contains("dilated"));
    assert!(err(r#"{"backbone_config": {"model_type": "swin"}}"#).contains("`swin` backbone"));
    assert!(err(r#"{"backbone_config": {"model_type": "resnet", "depths": "x"}}"#).contains("not a valid ResNet"));
}

#[test]
fn invalid_configs_are_errors() {
    let err = |json: serde_json::Value| config(json).validate().unwrap_err().to_string();
    assert!(err(serde_json::json!({"decoder_attention_heads": 3})).contains("multiple of `decoder_attention_heads`"));
    assert!(err(serde_json::json!({"position_embedding_type": "rope"})).contains("\"sine\" or \"learned\""));
    assert!(err(serde_json::json!({"num_queries": 0})).contains("`num_queries` must be at least 1"));
    assert!(err(serde_json::json!({"d_model": 15, "encoder_attention_heads": 1, "decoder_attention_heads": 1}))
        .contains("must be even"));
}

#[test]
fn timm_names() {
    let cases = [
        ("embedder.embedder.convolution.weight", "conv1.weight"),
        ("embedder.embedder.normalization.running_var", "bn1.running_var"),
        ("encoder.stages.0.layers.2.layer.1.convolution.weight", "layer1.2.conv2.weight"),
        ("encoder.stages.3.layers.0.layer.2.normalization.bias", "layer4.0.bn3.bias"),
        ("encoder.stages.1.layers.0.shortcut.convolution.weight", "layer2.0.downsample.0.weight"),
        ("encoder.stages.1.layers.0.shortcut.normalization.running_mean", "layer2.0.downsample.1.running_mean"),
    ];
    for (hf, timm) in cases {
        assert_eq!(timm_resnet_name(hf).as_deref(), Some(timm), "{hf}");
    }
    assert_eq!(timm_resnet_name("input_projection.weight"), None);
}

#[test]
fn timm_weights_load_the_same_network() {
    // A ResNet-18 under transformers' names, then the same tensors under timm's names.
    let json = |timm: bool| {
        if timm {
            serde_json::json!({"backbone_config": null, "use_timm_backbone": true, "backbone": "resnet18"})
        } else {
            serde_json::json!({"backbone_config": {"model_type": "resnet", "embedding_size": 64,
                "hidden_sizes": [64, 128, 256, 512], "depths": [2, 2, 2, 2], "layer_type": "basic",
                "out_features": ["stage4"]}})
        }
    };
    let (hf, map) = random::<DetrModel>(&config(json(false)));
    let tensors: HashMap<String, Tensor> = map
        .data()
        .lock()
        .unwrap()
        .iter()
        .map(|(name, var)| {
            let renamed = name
                .strip_prefix("backbone.conv_encoder.model.")
                .and_then(timm_resnet_name)
                .map_or_else(|| name.clone(), |t| format!("backbone.conv_encoder.model.{t}"));
            (renamed, var.as_tensor().clone())
        })
        .collect();
    assert!(tensors.contains_key("backbone.conv_encoder.model.layer4.1.bn2.weight"));
    let timm =
        DetrModel::load(VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu), &config(json(true))).unwrap();
    let inputs = pixels(1, 3, 64, 64);
    let (a, b) = (hf.forward(&inputs).unwrap(), timm.forward(&inputs).unwrap());
    let diff = (a.last_hidden_state - b.last_hidden_state).unwrap().abs().unwrap().max_all().unwrap();
    assert_eq!(diff.to_scalar::<f32>().unwrap(), 0.0);
}

#[test]
fn heads_run_with_and_without_a_mask() {
    let cfg = config(serde_json::json!({}));
    let (base, _) = random::<DetrModel>(&cfg);
    let out = base.forward(&pixels(2, 3, 26, 30)).unwrap();
    assert_eq!(out.last_hidden_state.dims(), [2, 3, 16]);
    assert_eq!(out.extra("encoder_last_hidden_state").unwrap().dims(), [2, 16, 16]);
    let (det, _) = random::<DetrForObjectDetection>(&config(serde_json::json!({"position_embedding_type": "learned"})));
    let mut mask = vec![1i64; 2 * 26 * 30];
    mask[26 * 30..].iter_mut().enumerate().for_each(|(i, m)| *m = i64::from(i % 30 < 15));
    let mask = Tensor::from_vec(mask, (2, 26, 30), &Device::Cpu).unwrap();
    let out = det.forward(&pixels(2, 3, 26, 30).with_pixel_mask(mask)).unwrap();
    assert_eq!(out.logits.dims(), [2, 3, 3]);
    assert_eq!(out.pred_boxes.dims(), [2, 3, 4]);
    assert_eq!(out.encoder_last_hidden_state.unwrap().dims(), [2, 16, 16]);
}

#[test]
fn bad_inputs_are_errors() {
    let (base, _) = random::<DetrModel>(&config(serde_json::json!({})));
    let err = |inputs: ModelInputs| base.forward(&inputs).unwrap_err().to_string();
    assert!(err(pixels(1, 1, 26, 30)).contains("1 channels but the model takes 3"));
    assert!(err(pixels(0, 3, 26, 30)).contains("no images"));
    assert!(err(ModelInputs::default()).contains("`pixel_values` is required"));
    let mask = Tensor::ones((1, 20, 30), DType::I64, &Device::Cpu).unwrap();
    assert!(err(pixels(1, 3, 26, 30).with_pixel_mask(mask)).contains("`pixel_mask` must be [batch, height, width]"));
    let flat = ModelInputs::from_pixel_values(Tensor::ones((3, 26, 30), DType::F32, &Device::Cpu).unwrap());
    assert!(err(flat).contains("[batch, channels, height, width]"));
}
