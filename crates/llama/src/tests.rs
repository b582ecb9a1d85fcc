//! Unit tests: config defaults and parsing, the decoder settings each field turns into, and
//! the registered heads. Parity with `transformers` is checked by the fixtures
//! (`tests/parity.rs`).

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use autocandle_core::{Activation, Error};
use autocandle_decoder::{DecoderConfig, LayerType, RopeKind, TokenIds};
use autocandle_testing::{check_heads, llama_like_heads};

use crate::LlamaConfig;

fn tiny() -> LlamaConfig {
    serde_json::from_str(
        r#"{"vocab_size": 50, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 16,
            "pad_token_id": 0, "num_labels": 3}"#,
    )
    .unwrap()
}

#[test]
fn config_defaults_match_transformers() {
    let cfg: LlamaConfig = serde_json::from_str("{}").unwrap();
    assert_eq!(cfg, LlamaConfig::default());
    assert_eq!((cfg.vocab_size, cfg.hidden_size, cfg.max_position_embeddings), (32000, 4096, 2048));
    assert_eq!(cfg.eos_token_id, Some(TokenIds::One(2)));
    let spec = cfg.decoder_spec().unwrap();
    assert_eq!((spec.num_key_value_heads, spec.head_dim, spec.rms_norm_eps), (32, 128, 1e-6));
    assert_eq!(spec.hidden_act, Activation::Silu);
    assert_eq!(spec.max_positions(), Some(2048));
    assert!(spec.layer_types.iter().all(|t| *t == LayerType::Full));
    assert!(!spec.options.qkv_bias && !spec.options.mlp_bias && !spec.tie_word_embeddings);
}

#[test]
fn config_reads_a_llama_3_config_json() {
    // The shape of meta-llama/Llama-3.1-8B's config.json (transformers 4.x spelling).
    let json = r#"{
        "architectures": ["LlamaForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
        "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009], "hidden_act": "silu",
        "hidden_size": 4096, "initializer_range": 0.02, "intermediate_size": 14336,
        "max_position_embeddings": 131072, "mlp_bias": false, "model_type": "llama",
        "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8,
        "pretraining_tp": 1, "rms_norm_eps": 1e-05,
        "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
            "original_max_position_embeddings": 8192, "rope_type": "llama3"},
        "rope_theta": 500000.0, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
        "transformers_version": "4.43.0.dev0", "use_cache": true, "vocab_size": 128256
    }"#;
    let cfg: LlamaConfig = serde_json::from_str(json).unwrap();
    assert_eq!(cfg.eos_token_id, Some(TokenIds::Many(vec![128001, 128008, 128009])));
    assert_eq!(cfg.rope.parameters.rope_type(), "llama3");
    assert_eq!(cfg.rope.parameters.theta(), 500000.0);
    let spec = cfg.decoder_spec().unwrap();
    assert_eq!((spec.num_key_value_heads, spec.head_dim, spec.rope.rotary_dim), (8, 128, 128));
    assert!(matches!(spec.rope.kind, RopeKind::Fixed { .. }));
    // Written back in the transformers 5 form, and read again unchanged.
    let back: LlamaConfig = serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);
}

#[test]
fn options_and_validation() {
    let cfg = LlamaConfig { attention_bias: true, mlp_bias: true, head_dim: Some(16), ..tiny() };
    let spec = cfg.decoder_spec().unwrap();
    assert!(spec.options.qkv_bias && spec.options.o_bias && spec.options.mlp_bias);
    assert_eq!(spec.head_dim, 16);

    // `validate_architecture`: hidden_size must divide by the heads even with head_dim given.
    let err = LlamaConfig { hidden_size: 30, head_dim: Some(8), ..tiny() }.decoder_spec().unwrap_err();
    assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
    let err = LlamaConfig { num_key_value_heads: Some(3), ..tiny() }.decoder_spec().unwrap_err();
    assert!(err.to_string().contains("num_key_value_heads"), "{err}");
    let err = serde_json::from_str::<LlamaConfig>(r#"{"rope_scaling": {"type": "ntk-by-parts", "factor": 2}}"#)
        .unwrap()
        .decoder_spec()
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported(_)) && err.to_string().contains("ntk-by-parts"), "{err}");
}

#[test]
fn every_head_is_registered_and_runs() {
    check_heads(&tiny(), &llama_like_heads("Llama", "transformer")).unwrap();
}

mod quantized {
    //! In-situ quantization of the tiny llama fixture, against the float model.

    use std::sync::Arc;

    use autocandle_core::quant::{with_quant_settings, QuantSettings};
    use autocandle_core::{ModelInputs, QuantType};
    use autocandle_decoder::{CausalLm, DecoderConfig};
    use candle_core::quantized::GgmlDType;
    use candle_core::{DType, Device, Tensor};
    use candle_nn::{VarBuilder, VarMap};

    use crate::LlamaConfig;

    fn fixture() -> (LlamaConfig, VarBuilder<'static>) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/llama-causal-lm");
        let config: LlamaConfig =
            serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
        let tensors = candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu).unwrap();
        (config, VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu))
    }

    fn logits(lm: &CausalLm, ids: &[u32]) -> Vec<f32> {
        let input = ModelInputs::new(Tensor::new(ids, &Device::Cpu).unwrap().unsqueeze(0).unwrap());
        lm.forward(&input).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    /// (max, mean) absolute deviation, and the largest logit magnitude.
    fn deviation(got: &[f32], want: &[f32]) -> (f32, f32, f32) {
        let diffs: Vec<f32> = got.iter().zip(want).map(|(a, b)| (a - b).abs()).collect();
        let max = diffs.iter().fold(0f32, |a, &b| a.max(b));
        let scale = want.iter().fold(0f32, |a, &b| a.max(b.abs()));
        (max, diffs.iter().sum::<f32>() / diffs.len() as f32, scale)
    }

    #[test]
    fn q8_0_in_situ_logits_stay_close_to_f32() {
        let (config, vb) = fixture();
        let spec = config.decoder_spec().unwrap();
        let ids = [3u32, 9, 4, 12, 7, 5, 30, 45, 79, 1, 90, 35];
        let float = CausalLm::load(vb.clone(), &spec, "model").unwrap();
        let settings = QuantSettings { source: None, quantize: Some(QuantType::Q8_0) };
        let q8 = with_quant_settings(&settings, || CausalLm::load(vb.clone(), &spec, "model")).unwrap();
        // hidden 32 is one Q8_0 block: q/k/v/o/gate/up, the head and the embedding are
        // quantized; down_proj (in 48) is not a multiple of 32 and stays float.
        assert_eq!(q8.lm_head().qtensor().unwrap().dtype(), GgmlDType::Q8_0);
        assert!(q8.model().embed_tokens().qtensor().is_some());
        let (want, got) = (logits(&float, &ids), logits(&q8, &ids));
        let (max, mean, scale) = deviation(&got, &want);
        println!(
            "llama-causal-lm, Q8_0 in situ vs f32: max |Δlogit| {max:.2e}, mean {mean:.2e} (logits up to {scale:.2})"
        );
        // Activations are quantized to 8 bits too (llama.cpp's semantics), on a random 32-wide
        // model: a few percent at the extreme, well under one percent on average.
        assert!(max < 0.05 * scale && mean < 0.01 * scale, "max deviation {max}, mean {mean} (scale {scale})");
        assert!(got != want, "the quantized model must differ a little: is it quantized?");
        // Outside the scope the same load is float again, bit for bit.
        assert_eq!(logits(&CausalLm::load(vb, &spec, "model").unwrap(), &ids), want);
    }

    #[test]
    fn q4_k_loads_and_runs_and_ties_without_a_copy() {
        // Widths that are multiples of the k-quant super-block (256), random weights.
        let config: LlamaConfig = serde_json::from_str(
            r#"{"vocab_size": 64, "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 1,
                "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 16,
                "tie_word_embeddings": true}"#,
        )
        .unwrap();
        let spec = config.decoder_spec().unwrap();
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let float = CausalLm::load(vb.clone(), &spec, "model").unwrap();
        let settings = QuantSettings { source: None, quantize: Some(QuantType::Q4K) };
        let q4k = with_quant_settings(&settings, || CausalLm::load(vb.clone(), &spec, "model")).unwrap();
        let embed = q4k.model().embed_tokens().qtensor().unwrap();
        assert_eq!(embed.dtype(), GgmlDType::Q4K);
        assert!(Arc::ptr_eq(embed, q4k.lm_head().qtensor().unwrap()), "the tied head shares the quantized table");
        let ids = [1u32, 5, 9, 63, 0, 17];
        let (want, got) = (logits(&float, &ids), logits(&q4k, &ids));
        let (max, mean, scale) = deviation(&got, &want);
        println!("random 256-wide llama, Q4_K in situ vs f32: max |Δlogit| {max:.2e}, mean {mean:.2e} (logits up to {scale:.2})");
        assert!(got.iter().all(|v| v.is_finite()));
        assert!(mean < 0.1 * scale, "mean deviation {mean} (scale {scale})");
    }
}
