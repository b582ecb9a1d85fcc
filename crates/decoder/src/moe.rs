//! The sparse mixture-of-experts feed-forward of `transformers`' MoE decoders
//! (`Qwen3MoeSparseMoeBlock`, `Qwen2MoeSparseMoeBlock`, `MixtralSparseMoeBlock`,
//! `OlmoeSparseMoeBlock`): a router picks `num_experts_per_tok` experts per token, and only
//! those experts run, each once on the group of tokens routed to it.

use autocandle_core::nn::{linear_b, Linear};
use candle_core::{DType, Module, Tensor, D};
use candle_nn::VarBuilder;

use autocandle_core::{Activation, Error, Result};

/// The mixture-of-experts settings of a decoder ([`crate::DecoderOptions::moe`]).
#[derive(Debug, Clone, PartialEq)]
pub struct MoeSpec {
    /// Number of routed experts (`num_experts`, Mixtral's `num_local_experts`).
    pub num_experts: usize,
    /// Experts each token is routed to (`num_experts_per_tok`, the top-k).
    pub num_experts_per_tok: usize,
    /// Width of one routed expert's gated MLP (`moe_intermediate_size`; Mixtral's
    /// `intermediate_size`).
    pub moe_intermediate_size: usize,
    /// Divide the top-k probabilities by their sum (`norm_topk_prob`; always on in Mixtral).
    pub norm_topk_prob: bool,
    /// Keep the routing weights in f32 when multiplying the experts' outputs (Mixtral, whose
    /// router does not cast them back to the model dtype); otherwise they are rounded to the
    /// model dtype first (Qwen, OLMoE).
    pub f32_routing_weights: bool,
    /// Qwen2-MoE's shared expert: a gated MLP of this width every token runs through, scaled by
    /// `sigmoid(shared_expert_gate(x))` and added to the routed experts' sum.
    pub shared_expert_intermediate_size: Option<usize>,
    /// One entry per layer: whether its feed-forward is the sparse block (else the dense MLP of
    /// `intermediate_size`).
    pub sparse_layers: Vec<bool>,
}

impl MoeSpec {
    /// The sparse layers of `transformers`' Qwen-style rule: layer `i` is sparse unless it is
    /// in `mlp_only_layers`, when `num_experts > 0` and `(i + 1) % decoder_sparse_step == 0`.
    /// Entries of `mlp_only_layers` out of range and a step of 0 are errors.
    pub fn qwen_sparse_layers(
        model_type: &'static str,
        num_hidden_layers: usize,
        num_experts: usize,
        decoder_sparse_step: usize,
        mlp_only_layers: &[usize],
    ) -> Result<Vec<bool>> {
        if let Some(bad) = mlp_only_layers.iter().find(|&&i| i >= num_hidden_layers) {
            return Err(Error::config(
                model_type,
                format!(
                    "`mlp_only_layers` names layer {bad} but the model has {num_hidden_layers} layers \
                     (`num_hidden_layers`): use indices 0..{num_hidden_layers}"
                ),
            ));
        }
        if num_experts == 0 {
            return Ok(vec![false; num_hidden_layers]);
        }
        if decoder_sparse_step == 0 {
            return Err(Error::config(
                model_type,
                "`decoder_sparse_step` must be at least 1 (1: every layer is sparse), got 0",
            ));
        }
        Ok((0..num_hidden_layers)
            .map(|i| !mlp_only_layers.contains(&i) && (i + 1) % decoder_sparse_step == 0)
            .collect())
    }

    /// Check the settings against a model of `num_hidden_layers` layers.
    pub fn validate(&self, model_type: &'static str, num_hidden_layers: usize) -> Result<()> {
        let invalid = |message: String| Err(Error::config(model_type, message));
        if self.sparse_layers.len() != num_hidden_layers {
            return invalid(format!(
                "the mixture of experts names {} layers but the model has {num_hidden_layers} (`num_hidden_layers`)",
                self.sparse_layers.len()
            ));
        }
        if !self.sparse_layers.contains(&true) {
            return Ok(());
        }
        if self.num_experts == 0 {
            return invalid("`num_experts` must be at least 1 in a mixture-of-experts model, got 0".to_owned());
        }
        if self.num_experts_per_tok == 0 || self.num_experts_per_tok > self.num_experts {
            return invalid(format!(
                "`num_experts_per_tok` ({}) must be between 1 and `num_experts` ({})",
                self.num_experts_per_tok, self.num_experts
            ));
        }
        if self.moe_intermediate_size == 0 {
            return invalid("the experts' intermediate size must be at least 1, got 0".to_owned());
        }
        if self.shared_expert_intermediate_size == Some(0) {
            return invalid("`shared_expert_intermediate_size` must be at least 1, got 0".to_owned());
        }
        Ok(())
    }
}

/// One gated MLP expert: `down(act(gate(x)) * up(x))`, with gate and up as one `[2I, H]`
/// product (gate rows first, as `gate_up_proj`).
#[derive(Debug, Clone)]
struct Expert {
    gate_up: Linear,
    down: Linear,
    intermediate: usize,
}

impl Expert {
    fn forward(&self, x: &Tensor, act: Activation) -> Result<Tensor> {
        let both = self.gate_up.forward(x)?;
        let gate = both.narrow(D::Minus1, 0, self.intermediate)?;
        let up = both.narrow(D::Minus1, self.intermediate, self.intermediate)?;
        Ok(self.down.forward(&(act.forward(&gate)? * up)?)?)
    }

    /// `gate_proj`, `up_proj`, `down_proj` (or Mixtral's `w1`, `w3`, `w2`) under `vb`.
    fn load_separate(vb: VarBuilder<'_>, h: usize, i: usize, names: [&str; 3]) -> Result<Self> {
        let gate = vb.get((i, h), &format!("{}.weight", names[0]))?;
        let up = vb.get((i, h), &format!("{}.weight", names[1]))?;
        let down = vb.get((h, i), &format!("{}.weight", names[2]))?;
        Ok(Self {
            gate_up: Linear::new(Tensor::cat(&[gate, up], 0)?, None),
            down: Linear::new(down, None),
            intermediate: i,
        })
    }
}

/// The sparse mixture-of-experts block: router `gate` (`[num_experts, hidden]`), the routed
/// experts and Qwen2-MoE's optional shared expert.
///
/// Weights are read as `transformers` 5 saves them (`gate.weight`, `experts.gate_up_proj`
/// `[E, 2I, H]`, `experts.down_proj` `[E, H, I]`), or in the per-expert form its loader
/// converts (`experts.N.gate_proj/up_proj/down_proj`; Mixtral's `experts.N.w1/w3/w2`).
#[derive(Debug, Clone)]
pub struct SparseMoe {
    gate: Linear,
    experts: Vec<Expert>,
    shared: Option<(Expert, Linear)>,
    top_k: usize,
    norm_topk_prob: bool,
    f32_weights: bool,
    act: Activation,
}

impl SparseMoe {
    /// Load the block from `vb` (`model.layers.N.mlp`, or Mixtral's older
    /// `block_sparse_moe`, which the caller resolves).
    pub fn load(vb: VarBuilder<'_>, moe: &MoeSpec, hidden: usize, act: Activation) -> Result<Self> {
        let (e, i) = (moe.num_experts, moe.moe_intermediate_size);
        let gate = linear_b(hidden, e, false, vb.pp("gate"))?;
        let ev = vb.pp("experts");
        let separate = |names: [&str; 3]| -> Result<Vec<Expert>> {
            (0..e).map(|n| Expert::load_separate(ev.pp(n), hidden, i, names)).collect()
        };
        let experts = if ev.contains_tensor("gate_up_proj") {
            Self::load_fused(&ev, e, hidden, i)?
        } else if ev.contains_tensor("0.gate_proj.weight") {
            separate(["gate_proj", "up_proj", "down_proj"])?
        } else if ev.contains_tensor("0.w1.weight") {
            separate(["w1", "w3", "w2"])?
        } else {
            // Missing (or fresh weights): the names `transformers` 5 saves.
            Self::load_fused(&ev, e, hidden, i)?
        };
        let shared = match moe.shared_expert_intermediate_size {
            Some(si) => {
                let expert =
                    Expert::load_separate(vb.pp("shared_expert"), hidden, si, ["gate_proj", "up_proj", "down_proj"])?;
                Some((expert, linear_b(hidden, 1, false, vb.pp("shared_expert_gate"))?))
            }
            None => None,
        };
        Ok(Self {
            gate,
            experts,
            shared,
            top_k: moe.num_experts_per_tok,
            norm_topk_prob: moe.norm_topk_prob,
            f32_weights: moe.f32_routing_weights,
            act,
        })
    }

    /// The experts from the 3-D `gate_up_proj` `[E, 2I, H]` and `down_proj` `[E, H, I]` under
    /// `ev`, each a view of its slice.
    fn load_fused(ev: &VarBuilder<'_>, e: usize, hidden: usize, i: usize) -> Result<Vec<Expert>> {
        let gate_up = ev.get((e, 2 * i, hidden), "gate_up_proj")?;
        let down = ev.get((e, hidden, i), "down_proj")?;
        (0..e)
            .map(|n| -> Result<Expert> {
                Ok(Expert {
                    gate_up: Linear::new(gate_up.get(n)?, None),
                    down: Linear::new(down.get(n)?, None),
                    intermediate: i,
                })
            })
            .collect()
    }

    /// The block on `x` `[batch, seq, hidden]`; also returns the router logits
    /// `[batch * seq, num_experts]` (in the model dtype).
    pub fn forward(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let (b, s, h) = x.dims3()?;
        let n = b * s;
        let flat = x.reshape((n, h))?;
        let logits = self.gate.forward(&flat)?;
        let probs = candle_nn::ops::softmax_last_dim(&logits.to_dtype(DType::F32)?)?;
        let probs = probs.to_vec2::<f32>()?;
        let num_experts = self.experts.len();
        // Per expert: the rows routed to it and their weights, in token order.
        let mut groups: Vec<(Vec<u32>, Vec<f32>)> = vec![(Vec::new(), Vec::new()); num_experts];
        let mut order: Vec<usize> = (0..num_experts).collect();
        for (row, p) in probs.iter().enumerate() {
            // `torch.topk`: the k largest, ties to the lower index.
            order.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
            let top = &order[..self.top_k];
            let sum: f32 = top.iter().map(|&e| p[e]).sum();
            for &e in top {
                let w = if self.norm_topk_prob { p[e] / sum } else { p[e] };
                groups[e].0.push(row as u32);
                groups[e].1.push(w);
            }
        }
        let dtype = x.dtype();
        let weight_dtype = if self.f32_weights { DType::F32 } else { dtype };
        let device = x.device();
        let mut rows = Vec::new();
        let mut outputs = Vec::new();
        for (expert, (tokens, weights)) in self.experts.iter().zip(groups) {
            if tokens.is_empty() {
                continue;
            }
            let m = tokens.len();
            let index = Tensor::from_vec(tokens, m, device)?;
            let input = if m == n && n == 1 { flat.clone() } else { flat.index_select(&index, 0)? };
            let y = expert.forward(&input, self.act)?;
            let w = Tensor::from_vec(weights, (m, 1), device)?.to_dtype(weight_dtype)?;
            let y = if self.f32_weights && dtype != DType::F32 {
                y.to_dtype(DType::F32)?.broadcast_mul(&w)?.to_dtype(dtype)?
            } else {
                y.broadcast_mul(&w)?
            };
            rows.push(index);
            outputs.push(y);
        }
        // `index_add_` expert by expert, in expert order, onto zeros.
        let mut out = if n == 1 {
            let mut sum: Option<Tensor> = None;
            for y in &outputs {
                sum = Some(match sum {
                    None => y.clone(),
                    Some(acc) => (acc + y)?,
                });
            }
            match sum {
                Some(s) => s,
                None => flat.zeros_like()?,
            }
        } else {
            let zeros = flat.zeros_like()?;
            if outputs.is_empty() {
                zeros
            } else {
                zeros.index_add(&Tensor::cat(&rows, 0)?, &Tensor::cat(&outputs, 0)?, 0)?
            }
        };
        if let Some((shared, shared_gate)) = &self.shared {
            let gated = candle_nn::ops::sigmoid(&shared_gate.forward(&flat)?)?;
            out = (out + shared.forward(&flat, self.act)?.broadcast_mul(&gated)?)?;
        }
        Ok((out.reshape((b, s, h))?, logits))
    }
}

/// The load-balancing loss of `transformers`' MoE causal LMs (`load_balancing_loss_func`,
/// Switch Transformer eq. 4-6): from each sparse layer's router logits `[tokens, num_experts]`,
/// `num_experts * sum_e(f_e * P_e)`, where `f_e` is the share of top-`top_k` assignments to
/// expert `e` and `P_e` its mean routing probability, over the rows `attention_mask`
/// (`[batch, seq]`, flattened as the logits) keeps. An f32 scalar; 0 without logits.
pub fn load_balancing_loss(
    router_logits: &[Tensor],
    num_experts: usize,
    top_k: usize,
    attention_mask: Option<&Tensor>,
) -> Result<Tensor> {
    let device = match router_logits.first() {
        Some(t) => t.device().clone(),
        None => return Ok(Tensor::new(0f32, &candle_core::Device::Cpu)?),
    };
    let mask: Option<Vec<f32>> = match attention_mask {
        Some(m) => Some(m.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?),
        None => None,
    };
    let mut tokens_per_expert = vec![0f32; num_experts];
    let mut prob_sum = vec![0f32; num_experts];
    let mut total = 0f32;
    let mut order: Vec<usize> = (0..num_experts).collect();
    for logits in router_logits {
        let probs = candle_nn::ops::softmax_last_dim(&logits.to_dtype(DType::F32)?)?.to_vec2::<f32>()?;
        if let Some(m) = &mask {
            if m.len() != probs.len() {
                return Err(Error::input(format!(
                    "`attention_mask` has {} positions but the router saw {} tokens",
                    m.len(),
                    probs.len()
                )));
            }
        }
        for (row, p) in probs.iter().enumerate() {
            if p.len() != num_experts {
                return Err(Error::input(format!("router logits have {} experts, expected {num_experts}", p.len())));
            }
            let keep = mask.as_ref().map_or(1.0, |m| m[row]);
            order.sort_by(|&a, &b| p[b].total_cmp(&p[a]).then(a.cmp(&b)));
            for &e in order.iter().take(top_k) {
                tokens_per_expert[e] += keep;
            }
            for (acc, &v) in prob_sum.iter_mut().zip(p) {
                *acc += v * keep;
            }
            total += keep;
        }
    }
    let loss: f32 = tokens_per_expert.iter().zip(&prob_sum).map(|(t, p)| (t / total) * (p / total)).sum();
    Ok(Tensor::new(loss * num_experts as f32, &device)?)
}
