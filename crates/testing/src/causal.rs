//! Checks of a causal language model's key/value cache and half-precision runs, shared by the
//! unit tests of the decoders with networks of their own (GPT-2, OPT, GPT-J, BLOOM, GPT-NeoX,
//! GPT-BigCode, Falcon). They panic on failure.

// Test helpers may panic on failure.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;

use autocandle_core::weights::{checkpoint_var_builder, Checkpoint};
use autocandle_core::{ForCausalLm, KvCache, LoadModel, ModelInputs};
use candle_core::{DType, IndexOp, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::tensors::{ids, max_diff, CPU};

/// `M` with freshly initialised f32 weights, and the map that holds them.
pub fn fresh_with_weights<M: LoadModel>(config: &M::Config) -> (M, VarMap) {
    let varmap = VarMap::new();
    let model = M::load(VarBuilder::from_varmap(&varmap, DType::F32, CPU), config).unwrap();
    (model, varmap)
}

/// The logits of `model` on `x`, without a cache.
pub fn logits<M: ForCausalLm + ?Sized>(model: &M, x: &ModelInputs) -> Tensor {
    model.forward(x).unwrap().logits
}

/// `M` loaded from a safetensors checkpoint of the tensors in `weights`, each saved under the
/// name `rename` gives it, read as a checkpoint of a model with base prefix `base_prefix`.
pub fn reloaded<M: LoadModel>(
    weights: &VarMap,
    rename: impl Fn(&str) -> String,
    base_prefix: &str,
    config: &M::Config,
) -> M {
    let tensors: HashMap<String, Tensor> =
        weights.data().lock().unwrap().iter().map(|(k, v)| (rename(k), v.as_tensor().clone())).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    candle_core::safetensors::save(&tensors, &path).unwrap();
    let checkpoint = Arc::new(Checkpoint::open(vec![path]).unwrap());
    let (vb, _) = checkpoint_var_builder(checkpoint, base_prefix, DType::F32, CPU);
    M::load(vb, config).unwrap()
}

/// `x` with the first `len` columns of `mask` as its `attention_mask`, when there is one.
fn masked(x: Tensor, mask: Option<&Tensor>, len: usize) -> ModelInputs {
    let x = ModelInputs::new(x);
    match mask {
        Some(mask) => x.with_attention_mask(mask.i((.., ..len)).unwrap()),
        None => x,
    }
}

/// The largest difference between the logits of `model` on the whole of `all` `[batch, seq]`
/// (with `mask` `[batch, seq]` as its `attention_mask`, if given) and those decoded with a
/// key/value cache: the first `prompt` tokens at once, then one token at a time (with a mask,
/// only the logits of the tokens after the prompt are compared). Returns the cache too, to
/// check what it holds.
pub fn cached_vs_whole<M: ForCausalLm + ?Sized>(
    model: &M,
    all: &Tensor,
    mask: Option<&Tensor>,
    prompt: usize,
) -> (f32, KvCache) {
    let seq = all.dim(1).unwrap();
    let whole = model.forward(&masked(all.clone(), mask, seq)).unwrap().logits;
    let mut cache = KvCache::new();
    let first = masked(all.i((.., ..prompt)).unwrap(), mask, prompt);
    let mut steps = vec![model.forward_with_cache(&first, &mut cache).unwrap().logits];
    for t in prompt..seq {
        let x = masked(all.i((.., t..t + 1)).unwrap(), mask, t + 1);
        steps.push(model.forward_with_cache(&x, &mut cache).unwrap().logits);
    }
    let stepped = Tensor::cat(&steps, 1).unwrap();
    let diff = match mask {
        None => max_diff(&whole, &stepped),
        // Padding queries attend to nothing, and their logits depend on how many keys there are.
        Some(_) => max_diff(&whole.i((.., prompt..)).unwrap(), &stepped.i((.., prompt..)).unwrap()),
    };
    (diff, cache)
}

/// Beam search reorders the cache with `KvCache::select_rows`: after `prompt` `[batch, p]`
/// (with `mask` `[batch, p]`, if given), the rows `pick` of the cache continue with one token
/// each (`next`), and each must give the logits of its prompt row and token run alone. Returns
/// the largest difference.
pub fn selected_rows_vs_alone<M: ForCausalLm + ?Sized>(
    model: &M,
    prompt: &Tensor,
    mask: Option<&Tensor>,
    pick: &[u32],
    next: &[u32],
) -> f32 {
    let p = prompt.dim(1).unwrap();
    let mut cache = KvCache::new();
    model.forward_with_cache(&masked(prompt.clone(), mask, p), &mut cache).unwrap();
    let pick_t = Tensor::new(pick, CPU).unwrap();
    cache.select_rows(&pick_t).unwrap();
    let ones = Tensor::ones((pick.len(), 1), DType::U32, CPU).unwrap();
    let mut step = ModelInputs::new(Tensor::new(next, CPU).unwrap().unsqueeze(1).unwrap());
    if let Some(mask) = mask {
        let kept = mask.to_dtype(DType::U32).unwrap().contiguous().unwrap().index_select(&pick_t, 0).unwrap();
        step = step.with_attention_mask(Tensor::cat(&[&kept, &ones], 1).unwrap());
    }
    let step = model.forward_with_cache(&step, &mut cache).unwrap().logits;
    let mut worst = 0f32;
    for (i, (&row, &token)) in pick.iter().zip(next).enumerate() {
        let row = row as usize;
        let tokens = prompt.to_dtype(DType::U32).unwrap().i(row..row + 1).unwrap();
        let tokens = Tensor::cat(&[&tokens, &ids(&[&[token]])], 1).unwrap();
        let mut alone = ModelInputs::new(tokens);
        if let Some(mask) = mask {
            let kept = mask.to_dtype(DType::U32).unwrap().i(row..row + 1).unwrap();
            alone = alone.with_attention_mask(Tensor::cat(&[&kept, &ones.i(0..1).unwrap()], 1).unwrap());
        }
        let alone = model.forward(&alone).unwrap().logits;
        worst = worst.max(max_diff(&step.i(i..i + 1).unwrap(), &alone.i((.., p..)).unwrap()));
    }
    worst
}

/// `M` loaded with fresh weights in f16 and in bf16 runs a left-padded batch (token ids below
/// 10), whole and then one step with a key/value cache: logits in that dtype, and finite.
pub fn half_precision_runs<M: LoadModel + ForCausalLm>(config: &M::Config) {
    for dtype in [DType::F16, DType::BF16] {
        let varmap = VarMap::new();
        let m = M::load(VarBuilder::from_varmap(&varmap, dtype, CPU), config).unwrap();
        let x = ModelInputs::new(ids(&[&[3, 5, 7], &[0, 4, 6]])).with_attention_mask(ids(&[&[1, 1, 1], &[0, 1, 1]]));
        let out = m.forward(&x).unwrap().logits;
        assert_eq!(out.dtype(), dtype);
        let sum = out.to_dtype(DType::F32).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(sum.is_finite(), "{dtype:?}");
        let mut cache = KvCache::new();
        let out = m.forward_with_cache(&x, &mut cache).unwrap().logits;
        assert_eq!(out.dtype(), dtype);
        let step = ModelInputs::new(ids(&[&[9], &[9]])).with_attention_mask(ids(&[&[1, 1, 1, 1], &[0, 1, 1, 1]]));
        let out = m.forward_with_cache(&step, &mut cache).unwrap().logits;
        let sum = out.to_dtype(DType::F32).unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(sum.is_finite(), "{dtype:?} with a cache");
    }
}
