//! Unit tests: config defaults and parsing, the sparse layers and bad configs, the registered
//! heads, and the router logits and aux loss against the `transformers` fixture. Parity of the
//! outputs is checked by the fixtures (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use autocandle_core::{LoadModel, ModelInputs, Task};
use autocandle_decoder::{DecoderConfig, LayerType};
use autocandle_testing::check_heads;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use crate::{Qwen3MoeConfig, Qwen3MoeForCausalLM};

fn tiny() -> Qwen3MoeConfig {
    serde_json::from_str(
        r#"{"vocab_size": 50, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 3,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 16,
            "moe_intermediate_size": 8, "num_experts": 4, "num_experts_per_tok": 2,
            "mlp_only_layers": [1], "pad_token_id": 0, "num_labels": 3}"#,
    )
    .unwrap()
}

fn with(edit: &str) -> Qwen3MoeConfig {
    let mut value = serde_json::to_value(tiny()).unwrap();
    let patch: serde_json::Value = serde_json::from_str(edit).unwrap();
    for (k, v) in patch.as_object().unwrap() {
        value[k] = v.clone();
    }
    serde_json::from_value(value).unwrap()
}

#[test]
fn config_defaults_are_the_default_impl() {
    let cfg: Qwen3MoeConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, Qwen3MoeConfig::default());
    let back: Qwen3MoeConfig = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
    let spec = cfg.decoder_spec().unwrap();
    let moe = spec.options.moe.unwrap();
    assert_eq!((moe.num_experts, moe.num_experts_per_tok, moe.moe_intermediate_size), (128, 8, 768));
    assert!(spec.options.qk_norm && !moe.norm_topk_prob && moe.sparse_layers.iter().all(|&s| s));
}

#[test]
fn config_reads_a_qwen3_moe_config_json() {
    // The shape of Qwen/Qwen3-30B-A3B's config.json: head_dim 128 with 32 heads of 2048.
    let json = r#"{
        "architectures": ["Qwen3MoeForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
        "bos_token_id": 151643, "decoder_sparse_step": 1, "eos_token_id": 151645, "head_dim": 128,
        "hidden_act": "silu", "hidden_size": 2048, "initializer_range": 0.02, "intermediate_size": 6144,
        "max_position_embeddings": 40960, "max_window_layers": 48, "mlp_only_layers": [],
        "model_type": "qwen3_moe", "moe_intermediate_size": 768, "norm_topk_prob": true,
        "num_attention_heads": 32, "num_experts": 128, "num_experts_per_tok": 8, "num_hidden_layers": 48,
        "num_key_value_heads": 4, "output_router_logits": false, "rms_norm_eps": 1e-06, "rope_scaling": null,
        "rope_theta": 1000000.0, "router_aux_loss_coef": 0.001, "sliding_window": null,
        "tie_word_embeddings": false, "use_cache": true, "use_sliding_window": false, "vocab_size": 151936
    }"#;
    let cfg: Qwen3MoeConfig = serde_json::from_str(json).unwrap();
    let spec = cfg.decoder_spec().unwrap();
    assert_eq!((spec.head_dim, spec.num_key_value_heads, spec.sliding_window), (128, 4, None));
    assert!(spec.options.moe.unwrap().norm_topk_prob);
    // transformers 5 saves `num_experts` as `num_local_experts` (its attribute_map).
    let saved: Qwen3MoeConfig = serde_json::from_str(r#"{"num_local_experts": 7}"#).unwrap();
    assert_eq!(saved.num_experts, 7);
}

#[test]
fn sparse_layers_follow_decoder_sparse_step_and_mlp_only_layers() {
    let sparse = |cfg: Qwen3MoeConfig| cfg.decoder_spec().unwrap().options.moe.unwrap().sparse_layers;
    assert_eq!(sparse(tiny()), [true, false, true]);
    assert_eq!(sparse(with(r#"{"decoder_sparse_step": 2, "mlp_only_layers": []}"#)), [false, true, false]);
    // No experts: every layer is the dense MLP, as in transformers.
    assert_eq!(sparse(with(r#"{"num_experts": 0}"#)), [false, false, false]);
    let sliding = with(r#"{"use_sliding_window": true, "sliding_window": 4}"#).decoder_spec().unwrap();
    assert_eq!(sliding.layer_types, [LayerType::Sliding; 3]);
    assert_eq!(tiny().decoder_spec().unwrap().layer_types, [LayerType::Full; 3]);
}

#[test]
fn bad_expert_settings_are_clear_errors() {
    let err = |edit: &str| with(edit).decoder_spec().unwrap_err().to_string();
    let e = err(r#"{"num_experts_per_tok": 5}"#);
    assert!(e.contains("`num_experts_per_tok` (5) must be between 1 and `num_experts` (4)"), "{e}");
    let e = err(r#"{"num_experts_per_tok": 0}"#);
    assert!(e.contains("`num_experts_per_tok` (0)"), "{e}");
    let e = err(r#"{"mlp_only_layers": [3]}"#);
    assert!(e.contains("`mlp_only_layers` names layer 3 but the model has 3 layers"), "{e}");
    let e = err(r#"{"decoder_sparse_step": 0}"#);
    assert!(e.contains("`decoder_sparse_step` must be at least 1"), "{e}");
    let e = err(r#"{"moe_intermediate_size": 0}"#);
    assert!(e.contains("intermediate size must be at least 1"), "{e}");
}

#[test]
fn every_head_is_registered_and_runs() {
    let expected = vec![
        (Task::Base, "Qwen3MoeModel".to_owned(), "model"),
        (Task::CausalLm, "Qwen3MoeForCausalLM".to_owned(), "model"),
        (Task::SequenceClassification, "Qwen3MoeForSequenceClassification".to_owned(), "model"),
        (Task::TokenClassification, "Qwen3MoeForTokenClassification".to_owned(), "model"),
        (Task::QuestionAnswering, "Qwen3MoeForQuestionAnswering".to_owned(), "transformer"),
    ];
    check_heads(&tiny(), &expected).unwrap();
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(name)
}

fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap()
}

/// `output_router_logits`: the router logits of every sparse layer and the load-balancing
/// loss equal those `transformers` returned for the fixture's inputs.
#[test]
fn router_logits_and_aux_loss_match_transformers() {
    for name in ["qwen3_moe-causal-lm", "qwen3_moe-causal-lm-sparse-step", "qwen3_moe-causal-lm-legacy-experts"] {
        let dir = fixture(name);
        let device = Device::Cpu;
        let cfg: Qwen3MoeConfig =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
        let weights = candle_core::safetensors::load(dir.join("model.safetensors"), &device).unwrap();
        let model = Qwen3MoeForCausalLM::load(VarBuilder::from_tensors(weights, DType::F32, &device), &cfg).unwrap();
        let reference = candle_core::safetensors::load(dir.join("reference.safetensors"), &device).unwrap();
        let inputs =
            ModelInputs::new(reference["input_ids"].clone()).with_attention_mask(reference["attention_mask"].clone());
        let out = model.inner().forward_with_router_logits(&inputs).unwrap();
        let want: Vec<&Tensor> =
            (0..).map_while(|i| reference.get(&format!("x-router_logits.{i}"))).collect::<Vec<_>>();
        assert!(!want.is_empty(), "{name}: no router logits in the fixture");
        assert_eq!(out.router_logits.len(), want.len(), "{name}: one tensor per sparse layer");
        // Padding positions are not compared (their states are not defined alike).
        let mask: Vec<i64> = reference["attention_mask"].flatten_all().unwrap().to_vec1().unwrap();
        let kept: Vec<u32> = (0..mask.len() as u32).filter(|&i| mask[i as usize] != 0).collect();
        let kept = Tensor::new(kept.as_slice(), &device).unwrap();
        for (got, want) in out.router_logits.iter().zip(want) {
            assert_eq!(got.dims(), want.dims());
            let (got, want) = (&got.index_select(&kept, 0).unwrap(), &want.index_select(&kept, 0).unwrap());
            assert!(max_diff(got, want) < 1e-4, "{name}: router logits differ by {}", max_diff(got, want));
        }
        let aux = out.aux_loss.unwrap();
        assert!(
            max_diff(&aux, &reference["x-aux_loss"]) < 1e-5,
            "{name}: aux_loss {aux} vs {}",
            reference["x-aux_loss"]
        );
    }
}
