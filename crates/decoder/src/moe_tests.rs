//! Unit tests of the sparse mixture of experts: the grouped computation against a per-token
//! reference, the per-expert weight names against the fused ones, the KV cache of an MoE
//! decoder against whole-sequence runs, router logits and the load-balancing loss.

// Tests may panic on failure.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::{VarBuilder, VarMap};

use autocandle_core::{Activation, KvCache, LabelConfig, ModelInputs};

use crate::*;

const H: usize = 8;
const I: usize = 4;
const E: usize = 4;

fn moe_spec(top_k: usize, norm: bool, shared: bool) -> MoeSpec {
    MoeSpec {
        num_experts: E,
        num_experts_per_tok: top_k,
        moe_intermediate_size: I,
        norm_topk_prob: norm,
        f32_routing_weights: false,
        shared_expert_intermediate_size: shared.then_some(6),
        sparse_layers: vec![true],
    }
}

fn randn(shape: &[usize], seed: u64) -> Tensor {
    // A small deterministic generator, so the test needs no random crate.
    let n: usize = shape.iter().product();
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let v: Vec<f32> = (0..n)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn fused_weights() -> HashMap<String, Tensor> {
    let mut w = HashMap::new();
    w.insert("gate.weight".to_owned(), randn(&[E, H], 1));
    w.insert("experts.gate_up_proj".to_owned(), randn(&[E, 2 * I, H], 2));
    w.insert("experts.down_proj".to_owned(), randn(&[E, H, I], 3));
    w.insert("shared_expert.gate_proj.weight".to_owned(), randn(&[6, H], 4));
    w.insert("shared_expert.up_proj.weight".to_owned(), randn(&[6, H], 5));
    w.insert("shared_expert.down_proj.weight".to_owned(), randn(&[H, 6], 6));
    w.insert("shared_expert_gate.weight".to_owned(), randn(&[1, H], 7));
    w
}

/// Token by token: softmax, top-k, every chosen expert on the token, weighted sum.
fn reference(w: &HashMap<String, Tensor>, x: &Tensor, spec: &MoeSpec) -> Tensor {
    let rows = x.dim(0).unwrap();
    let mut out = Vec::new();
    for r in 0..rows {
        let t = x.i(r..r + 1).unwrap();
        let logits = t.matmul(&w["gate.weight"].t().unwrap()).unwrap();
        let p: Vec<f32> = candle_nn::ops::softmax_last_dim(&logits).unwrap().i(0).unwrap().to_vec1().unwrap();
        let mut order: Vec<usize> = (0..E).collect();
        order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
        let top = &order[..spec.num_experts_per_tok];
        let sum: f32 = top.iter().map(|&e| p[e]).sum();
        let mut acc = Tensor::zeros((1, H), DType::F32, &Device::Cpu).unwrap();
        for &e in top {
            let gu = w["experts.gate_up_proj"].i(e).unwrap();
            let both = t.matmul(&gu.t().unwrap()).unwrap();
            let inner = (candle_nn::ops::silu(&both.narrow(1, 0, I).unwrap()).unwrap() * both.narrow(1, I, I).unwrap())
                .unwrap();
            let y = inner.matmul(&w["experts.down_proj"].i(e).unwrap().t().unwrap()).unwrap();
            let weight = if spec.norm_topk_prob { p[e] / sum } else { p[e] };
            acc = (acc + (y * weight as f64).unwrap()).unwrap();
        }
        if spec.shared_expert_intermediate_size.is_some() {
            let g = t.matmul(&w["shared_expert.gate_proj.weight"].t().unwrap()).unwrap();
            let u = t.matmul(&w["shared_expert.up_proj.weight"].t().unwrap()).unwrap();
            let y = (candle_nn::ops::silu(&g).unwrap() * u)
                .unwrap()
                .matmul(&w["shared_expert.down_proj.weight"].t().unwrap())
                .unwrap();
            let gate =
                candle_nn::ops::sigmoid(&t.matmul(&w["shared_expert_gate.weight"].t().unwrap()).unwrap()).unwrap();
            acc = (acc + y.broadcast_mul(&gate).unwrap()).unwrap();
        }
        out.push(acc);
    }
    Tensor::cat(&out, 0).unwrap()
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar::<f32>().unwrap()
}

#[test]
fn grouped_experts_equal_the_per_token_computation() {
    let w = fused_weights();
    let x = randn(&[2, 5, H], 9);
    for (top_k, norm, shared) in [(1, false, false), (2, false, false), (2, true, true), (4, false, true)] {
        let spec = moe_spec(top_k, norm, shared);
        let vb = VarBuilder::from_tensors(w.clone(), DType::F32, &Device::Cpu);
        let moe = SparseMoe::load(vb, &spec, H, Activation::Silu).unwrap();
        let (got, logits) = moe.forward(&x).unwrap();
        assert_eq!(got.dims(), [2, 5, H]);
        assert_eq!(logits.dims(), [10, E]);
        let want = reference(&w, &x.reshape((10, H)).unwrap(), &spec);
        let diff = max_abs_diff(&got.reshape((10, H)).unwrap(), &want);
        assert!(diff < 1e-5, "top-{top_k} norm {norm} shared {shared}: {diff}");
        // One token at a time (decode) gives the same rows.
        let one = moe.forward(&x.i((1..2, 3..4)).unwrap()).unwrap().0;
        assert!(max_abs_diff(&one.reshape((1, H)).unwrap(), &want.i(8..9).unwrap()) < 1e-5);
    }
}

#[test]
fn per_expert_weight_names_load_as_the_fused_ones() {
    let fused = fused_weights();
    let spec = moe_spec(2, true, false);
    let x = randn(&[1, 6, H], 11);
    let load = |w: HashMap<String, Tensor>| {
        SparseMoe::load(VarBuilder::from_tensors(w, DType::F32, &Device::Cpu), &spec, H, Activation::Silu).unwrap()
    };
    let want = load(fused.clone()).forward(&x).unwrap().0;
    for names in [["gate_proj", "up_proj", "down_proj"], ["w1", "w3", "w2"]] {
        let mut w = HashMap::new();
        w.insert("gate.weight".to_owned(), fused["gate.weight"].clone());
        for e in 0..E {
            let gu = fused["experts.gate_up_proj"].i(e).unwrap();
            w.insert(format!("experts.{e}.{}.weight", names[0]), gu.narrow(0, 0, I).unwrap().contiguous().unwrap());
            w.insert(format!("experts.{e}.{}.weight", names[1]), gu.narrow(0, I, I).unwrap().contiguous().unwrap());
            w.insert(format!("experts.{e}.{}.weight", names[2]), fused["experts.down_proj"].i(e).unwrap());
        }
        assert!(max_abs_diff(&load(w).forward(&x).unwrap().0, &want) < 1e-6, "{names:?}");
    }
}

fn tiny_moe_spec(moe: MoeSpec) -> DecoderSpec {
    let rope = RopeConfig::with_theta(500.0);
    let labels = LabelConfig::default();
    let mut spec = CommonConfig {
        model_type: "qwen3_moe",
        vocab_size: 40,
        hidden_size: H,
        intermediate_size: 12,
        num_hidden_layers: 3,
        num_attention_heads: 2,
        num_key_value_heads: Some(1),
        head_dim: Some(4),
        max_position_embeddings: 16,
        rms_norm_eps: 1e-6,
        hidden_act: Activation::Silu,
        rope: &rope,
        partial_rotary: false,
        original_max_position_embeddings: None,
        tie_word_embeddings: false,
        pad_token_id: Some(0),
        labels: &labels,
        use_cache: true,
    }
    .spec()
    .unwrap();
    spec.options.qk_norm_full = true;
    spec.options.clip_qkv = Some(0.7);
    spec.options.moe = Some(moe);
    spec.validate().unwrap();
    spec
}

#[test]
fn moe_decoder_cache_steps_equal_the_whole_sequence() {
    let spec = tiny_moe_spec(MoeSpec { sparse_layers: vec![true, false, true], ..moe_spec(2, false, true) });
    let varmap = VarMap::new();
    let lm = CausalLm::load(VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu), &spec, "model").unwrap();
    let tokens: &[u32] = &[3, 17, 5, 9, 22, 1, 38];
    let whole =
        lm.forward(&ModelInputs::new(Tensor::new(tokens, &Device::Cpu).unwrap().unsqueeze(0).unwrap())).unwrap();
    let mut cache = KvCache::new();
    let input = |t: &[u32]| ModelInputs::new(Tensor::new(t, &Device::Cpu).unwrap().unsqueeze(0).unwrap());
    let mut steps = vec![lm.forward_with_cache(&input(&tokens[..3]), &mut cache).unwrap()];
    for &t in &tokens[3..] {
        steps.push(lm.forward_with_cache(&input(&[t]), &mut cache).unwrap());
    }
    let diff = max_abs_diff(&whole, &Tensor::cat(&steps, 1).unwrap());
    assert!(diff < 1e-5, "whole vs cached steps differ by {diff}");

    let out = lm.forward_with_router_logits(&input(tokens)).unwrap();
    assert!(max_abs_diff(&out.logits, &whole) == 0.0);
    // Layers 0 and 2 are sparse.
    assert_eq!(out.router_logits.len(), 2);
    assert_eq!(out.router_logits[0].dims(), [tokens.len(), E]);
    let aux = out.aux_loss.unwrap().to_scalar::<f32>().unwrap();
    // At most `num_experts * top_k` (every token on the same experts).
    assert!(aux > 0.0 && aux <= (E * 2) as f32, "{aux}");
}

#[test]
fn load_balancing_loss_follows_transformers() {
    // Two tokens, two experts, top-1: token 0 picks expert 0 (p = 0.73), token 1 expert 1 (0.73).
    let logits = Tensor::new(&[[1f32, 0.0], [0.0, 1.0]], &Device::Cpu).unwrap();
    let loss = load_balancing_loss(std::slice::from_ref(&logits), 2, 1, None).unwrap().to_scalar::<f32>().unwrap();
    // f = [0.5, 0.5], P = [0.5, 0.5]: 2 * (0.25 + 0.25) = 1.
    assert!((loss - 1.0).abs() < 1e-6, "{loss}");
    // The mask drops the second token: f = [1, 0], P = [0.731, 0.269].
    let mask = Tensor::new(&[[1u32, 0]], &Device::Cpu).unwrap();
    let masked = load_balancing_loss(&[logits], 2, 1, Some(&mask)).unwrap().to_scalar::<f32>().unwrap();
    let p0 = 1.0 / (1.0 + (-1f32).exp());
    assert!((masked - 2.0 * p0).abs() < 1e-6, "{masked}");
}

#[test]
fn bad_moe_settings_are_errors() {
    let layers3 = |moe: MoeSpec| MoeSpec { sparse_layers: vec![true; 3], ..moe };
    let check = |moe: MoeSpec| {
        let mut s = tiny_moe_spec(layers3(moe_spec(1, false, false)));
        s.options.moe = Some(moe);
        s.validate().map_err(|e| e.to_string())
    };
    let e = check(layers3(MoeSpec { num_experts_per_tok: 5, ..moe_spec(1, false, false) })).unwrap_err();
    assert!(e.contains("`num_experts_per_tok` (5) must be between 1 and `num_experts` (4)"), "{e}");
    let e = check(moe_spec(1, false, false)).unwrap_err();
    assert!(e.contains("names 1 layers but the model has 3"), "{e}");
    let e = MoeSpec::qwen_sparse_layers("qwen3_moe", 3, 4, 1, &[3]).unwrap_err().to_string();
    assert!(e.contains("`mlp_only_layers` names layer 3"), "{e}");
}
