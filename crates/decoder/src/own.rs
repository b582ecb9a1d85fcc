//! Pieces for decoders with networks of their own (GPT-NeoX, GPT-BigCode, Falcon, ...):
//! the checked inputs of one forward pass with their positions and masks ([`prepare_inputs`]),
//! attention over grouped key/value heads ([`grouped_attention`]) and the language-modelling
//! head tied as `transformers` ties it ([`load_tied_lm_head`]), the small checks every such
//! decoder makes ([`cached_len`], [`attention_keep`], [`cached_kv`]), ALiBi's slopes
//! ([`alibi_slopes`]), the two-projection feed-forward network ([`DenseMlp`]) and the trait
//! impls every base model and head repeats ([`own_base_model!`](crate::own_base_model),
//! [`own_causal_lm!`](crate::own_causal_lm), [`own_generic_heads!`](crate::own_generic_heads)).

use autocandle_core::inputs::{dims2_int, ids_in_range, positions_in_range, require_position_ids_shape, require_shape};
use autocandle_core::nn::{linear_b, linear_no_bias, Embedding, Linear};
use autocandle_core::{Activation, Error, KvCache, ModelInputs, Result};
use candle_core::{Device, Module, Tensor};
use candle_nn::{Init, VarBuilder};

use crate::heads::{same_layer_values, with_bias};
use crate::mask::MaskBuilder;

/// The checked inputs of one forward pass: ids, positions and the mask pattern.
#[derive(Debug, Clone)]
pub struct PreparedInputs {
    /// `input_ids` `[batch, seq]` as `u32`, every id below the vocabulary size.
    pub input_ids: Tensor,
    /// Rows of the batch.
    pub batch: usize,
    /// New tokens of each row.
    pub seq: usize,
    /// Positions already in the cache (0 without one).
    pub past: usize,
    /// Position ids of the new tokens, `u32` `[batch or 1, seq]`: the given ones, else
    /// `past..past + seq`.
    pub positions: Tensor,
    /// The largest position id.
    pub max_position: usize,
    /// `[batch * (past + seq)]`: whether each key may be attended to (`attention_mask != 0`);
    /// `None` without an `attention_mask`.
    pub keep: Option<Vec<bool>>,
    /// The causal + padding mask pattern of the call.
    pub masks: MaskBuilder,
}

/// Check `inputs` for a decoder with `vocab_size` tokens and `max_positions` positions (the
/// config field that sets it is `field`), after the positions in `cache`: `input_ids`
/// integers `[batch, seq]` in range, `position_ids` `[batch or 1, seq]` in range, an
/// `attention_mask` over the cached and the new tokens, a cache filled for `batch` rows, and
/// `past + seq <= max_positions`.
pub fn prepare_inputs(
    inputs: &ModelInputs,
    cache: Option<&KvCache>,
    vocab_size: usize,
    (max_positions, field): (usize, &str),
    device: &Device,
) -> Result<PreparedInputs> {
    let input_ids = inputs.input_ids()?;
    let (batch, seq) = dims2_int(input_ids, "input_ids")?;
    let past = cached_len(cache, batch)?;
    let total = past + seq;
    let (positions, max_position) = match &inputs.position_ids {
        Some(p) => {
            require_position_ids_shape(p, batch, seq)?;
            let p = positions_in_range(p, max_positions, field)?;
            let hi = p.flatten_all()?.max(0)?.to_scalar::<u32>()? as usize;
            (p, hi)
        }
        None if total > max_positions => return Err(Error::SequenceTooLong { len: total, max: max_positions }),
        None => {
            let range: Vec<u32> = (past..total).map(|p| p as u32).collect();
            (Tensor::from_vec(range, (1, seq), device)?, total.saturating_sub(1))
        }
    };
    let input_ids = ids_in_range(input_ids, "input_ids", vocab_size)?;
    let keep = match &inputs.attention_mask {
        Some(mask) => {
            if mask.dims() != [batch, total] {
                let like = if past > 0 {
                    format!("[batch, cached + new] = {:?} ({past} cached and {seq} new tokens)", [batch, total])
                } else {
                    format!("{:?}, the shape of `input_ids`", [batch, seq])
                };
                return Err(Error::input(format!(
                    "`attention_mask` has shape {:?} but must have shape {like}",
                    mask.dims()
                )));
            }
            let keep = mask.ne(0u32)?.flatten_all()?.to_vec1::<u8>()?;
            Some(keep.into_iter().map(|k| k != 0).collect::<Vec<bool>>())
        }
        None => None,
    };
    let masks = MaskBuilder::new(batch, seq, past, keep.clone(), None);
    Ok(PreparedInputs { input_ids, batch, seq, past, positions, max_position, keep, masks })
}

/// Scaled dot-product attention of `q` `[batch, heads, seq, head_dim]` over `k` and `v`
/// `[batch, kv_heads, keys, head_dim]` (`heads` a multiple of `kv_heads`: the query heads of
/// one group are consecutive, `repeat_kv`'s order), with an additive `mask` that broadcasts
/// to `[batch, heads, seq, keys]`; softmax in f32 as `transformers`' eager attention does.
/// Returns the context `[batch, seq, heads * head_dim]`.
pub fn grouped_attention(q: &Tensor, k: &Tensor, v: &Tensor, scale: f64, mask: Option<&Tensor>) -> Result<Tensor> {
    let (b, h, t, d) = q.dims4()?;
    let kvh = k.dim(1)?;
    let s = k.dim(2)?;
    if kvh == 0 || !h.is_multiple_of(kvh) {
        return Err(Error::input(format!("{h} query heads cannot share {kvh} key/value heads")));
    }
    let n_rep = h / kvh;
    let dtype = q.dtype();
    // The `n_rep` query heads of one key/value head share its keys without copying them.
    let q = q.contiguous()?.reshape((b, kvh, n_rep * t, d))?;
    let scores = autocandle_core::kernels::matmul(&q, &k.t()?)?.reshape((b, h, t, s))?;
    let probs = autocandle_core::kernels::masked_softmax(&scores, scale, mask)?.to_dtype(dtype)?;
    let out = autocandle_core::kernels::matmul(&probs.reshape((b, kvh, n_rep * t, s))?, v)?;
    Ok(out.reshape((b, h, t, d))?.transpose(1, 2)?.reshape((b, t, h * d))?)
}

/// Where a language-modelling head and the embedding it may be tied to live.
#[derive(Debug, Clone, Copy)]
pub struct LmHeadNames<'a> {
    /// The head's module names in the checkpoint, the current one first (`lm_head`), then
    /// legacy ones (`embed_out`); a fresh model takes the first.
    pub head: &'a [&'a str],
    /// The base model's prefix (`transformer`).
    pub base: &'a str,
    /// The token embedding's weight under the base (`wte.weight`).
    pub embedding: &'a str,
}

/// Load a base model and its language-modelling head (`[vocab, hidden]`, with a bias when
/// `bias`) with `transformers`' weight tying at load: with `tie` the head is the token
/// embedding (a saved model usually has no head weight), unless the checkpoint holds a head
/// with other values (then they stay apart); a checkpoint with a head and no embedding ties the
/// other way round. The bias of a head tied to the embedding is read apart (zeros where a fresh
/// model makes it). `load_base` builds the base from its `VarBuilder` and, when given, the
/// embedding to use; `embedding_of` returns the base's token embedding.
pub fn load_tied_lm_head<M>(
    vb: VarBuilder<'_>,
    names: LmHeadNames<'_>,
    (tie, bias): (bool, bool),
    (vocab, hidden): (usize, usize),
    load_base: impl FnOnce(VarBuilder<'_>, Option<Embedding>) -> Result<M>,
    embedding_of: impl Fn(&M) -> &Embedding,
) -> Result<(M, Linear)> {
    let head_name = names
        .head
        .iter()
        .find(|name| vb.contains_tensor(&format!("{name}.weight")))
        .or(names.head.first())
        .copied()
        .unwrap_or("lm_head");
    let has_head = vb.contains_tensor(&format!("{head_name}.weight"));
    let base_vb = vb.pp(names.base);
    if !tie {
        let model = load_base(base_vb, None)?;
        return Ok((model, linear_b(hidden, vocab, bias, vb.pp(head_name))?));
    }
    if has_head && !base_vb.contains_tensor(names.embedding) {
        let head = linear_b(hidden, vocab, bias, vb.pp(head_name))?;
        let embedding = Embedding::tied_to(&head)?;
        return Ok((load_base(base_vb, Some(embedding))?, head));
    }
    let model = load_base(base_vb, None)?;
    let tied = Linear::tied_to(embedding_of(&model))?;
    let head = if has_head {
        let own = linear_no_bias(hidden, vocab, vb.pp(head_name))?;
        if same_layer_values(&own, &tied)? {
            tied
        } else {
            own
        }
    } else {
        tied
    };
    if bias {
        let bias = vb.pp(head_name).get_with_hints(vocab, "bias", Init::Const(0.0))?;
        return Ok((model, with_bias(&head, bias)?));
    }
    Ok((model, head))
}

/// The number of positions in `cache` (0 without one), checking that it was filled for
/// `batch` rows.
pub fn cached_len(cache: Option<&KvCache>, batch: usize) -> Result<usize> {
    let Some(cache) = cache else { return Ok(0) };
    match cache.get(0) {
        Some((k, _)) if k.dim(0)? != batch => Err(Error::input(format!(
            "the key/value cache holds {} rows but `input_ids` has {batch}; use one cache per batch (or \
             `KvCache::select_rows`)",
            k.dim(0)?
        ))),
        _ => Ok(cache.seq_len()),
    }
}

/// Which keys may be attended to, `[batch * (past + seq)]`, from an `attention_mask` that must
/// be `[batch, past + seq]` (`None` without one).
pub fn attention_keep(mask: Option<&Tensor>, batch: usize, past: usize, seq: usize) -> Result<Option<Vec<bool>>> {
    let Some(mask) = mask else { return Ok(None) };
    let like = if past > 0 { "the cached plus the new tokens" } else { "`input_ids`" };
    require_shape(mask, "attention_mask", &[batch, past + seq], like)?;
    let keep = mask.ne(0u32)?.flatten_all()?.to_vec1::<u8>()?;
    Ok(Some(keep.into_iter().map(|k| k != 0).collect()))
}

/// `_get_alibi_slopes` / `build_alibi_tensor`'s slopes: one per head, in f32. Powers of
/// `2^(-8 / n)` for the largest power of two `n <= num_heads`, then odd powers of
/// `2^(-4 / n)` for the remaining heads; empty for no heads.
pub fn alibi_slopes(num_heads: usize) -> Vec<f32> {
    if num_heads == 0 {
        return Vec::new();
    }
    let closest = 1usize << num_heads.ilog2();
    let base_of = |n: usize| (2f64).powf(-(2f64.powf(-((n as f64).log2() - 3.0)))) as f32;
    let base = base_of(closest);
    let mut slopes: Vec<f32> = (1..=closest).map(|p| base.powf(p as f32)).collect();
    if closest != num_heads {
        let extra = base_of(2 * closest);
        let remaining = closest.min(num_heads - closest);
        slopes.extend((0..remaining).map(|i| extra.powf((2 * i + 1) as f32)));
    }
    slopes
}

/// The keys and values attention reads: with a cache, `k` and `v` appended to layer
/// `layer_idx`'s entry and everything cached so far returned; without one, `k` and `v`.
pub fn cached_kv(cache: Option<&mut KvCache>, layer_idx: usize, k: Tensor, v: Tensor) -> Result<(Tensor, Tensor)> {
    match cache {
        Some(cache) => cache.append(layer_idx, &k, &v),
        None => Ok((k, v)),
    }
}

/// A feed-forward network of two projections with an activation between them: `up`, the
/// activation, `down` (GPT-NeoX's and Falcon's `dense_h_to_4h` / `dense_4h_to_h`,
/// GPT-BigCode's `c_fc` / `c_proj`).
#[derive(Debug, Clone)]
pub struct DenseMlp {
    up: Linear,
    down: Linear,
    act: Activation,
}

impl DenseMlp {
    /// Load `hidden -> inner -> hidden` with the projections named `names` (`up`, `down`)
    /// under `vb`, each with a bias when `bias`.
    pub fn load(
        vb: VarBuilder<'_>,
        (hidden, inner): (usize, usize),
        bias: bool,
        act: Activation,
        (up, down): (&str, &str),
    ) -> Result<Self> {
        Ok(Self {
            up: linear_b(hidden, inner, bias, vb.pp(up))?,
            down: linear_b(inner, hidden, bias, vb.pp(down))?,
            act,
        })
    }

    /// `down(act(up(x)))`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let inner = self.act.forward(&self.up.forward(x)?)?;
        Ok(self.down.forward(&inner)?)
    }
}

/// What [`own_base_model!`](crate::own_base_model) and [`own_causal_lm!`](crate::own_causal_lm)
/// expand to. Not public API.
#[doc(hidden)]
pub mod __own {
    pub use autocandle_core::heads::{
        Classifier, Encoder, Pooling, QuestionAnswerer, SequenceClassifier, TokenClassifier,
    };
    pub use autocandle_core::nn::{linear, linear_no_bias};
    pub use autocandle_core::{
        BaseModelOutput, CausalLmOutput, ForCausalLm, KvCache, LoadModel, Model, ModelInputs, PreTrainedModel, Result,
    };
    pub use candle_core::{DType, Device, Module};
    pub use candle_nn::VarBuilder;
}

/// The trait impls of the base model of a decoder with a network of its own: `LoadModel`
/// (`Self::new(vb, config, None)` under `prefix`), `PreTrainedModel` (its `device` and `dtype`
/// fields), `Model` and `autocandle_core::heads::Encoder` (the final hidden states of
/// `self.run(inputs, None)`, `hidden_size` from the given expression). Use it in the module
/// that defines the model (it reads private fields):
///
/// ```ignore
/// autocandle_decoder::own_base_model!(BloomModel, config: BloomConfig, prefix: "transformer",
///     hidden_size: |model| model.config().hidden_size);
/// ```
#[macro_export]
macro_rules! own_base_model {
    ($model:ty, config: $config:ty, prefix: $prefix:literal, hidden_size: |$m:ident| $hidden:expr $(,)?) => {
        impl $crate::__own::LoadModel for $model {
            type Config = $config;
            const BASE_MODEL_PREFIX: &'static str = $prefix;

            fn load(vb: $crate::__own::VarBuilder<'_>, config: &$config) -> $crate::__own::Result<Self> {
                Self::new(vb, config, None)
            }
        }

        impl $crate::__own::PreTrainedModel for $model {
            fn device(&self) -> &$crate::__own::Device {
                &self.device
            }

            fn dtype(&self) -> $crate::__own::DType {
                self.dtype
            }
        }

        impl $crate::__own::Model for $model {
            fn forward(
                &self,
                inputs: &$crate::__own::ModelInputs,
            ) -> $crate::__own::Result<$crate::__own::BaseModelOutput> {
                Ok($crate::__own::BaseModelOutput::new(self.run(inputs, None)?, None))
            }
        }

        impl $crate::__own::Encoder for $model {
            fn encode(
                &self,
                inputs: &$crate::__own::ModelInputs,
            ) -> $crate::__own::Result<$crate::__own::BaseModelOutput> {
                $crate::__own::Model::forward(self, inputs)
            }

            fn hidden_size(&self) -> usize {
                let $m = self;
                $hidden
            }
        }
    };
}

/// The trait impls of a language-modelling head over a decoder with a network of its own:
/// `PreTrainedModel` (the base's device and dtype) and `ForCausalLm` with a key/value cache
/// (`lm_head` applied to the kept rows of `self.<base>.run(inputs, cache)`; `max_positions`
/// from the given expression over the base). The head is a struct with the base in field
/// `base` and a `lm_head` that implements `candle_core::Module`:
///
/// ```ignore
/// autocandle_decoder::own_causal_lm!(BloomLm, base: model, max_positions: |_model| None);
/// ```
#[macro_export]
macro_rules! own_causal_lm {
    ($lm:ty, base: $base:ident, max_positions: |$m:ident| $max:expr $(,)?) => {
        impl $crate::__own::PreTrainedModel for $lm {
            fn device(&self) -> &$crate::__own::Device {
                $crate::__own::PreTrainedModel::device(&self.$base)
            }

            fn dtype(&self) -> $crate::__own::DType {
                $crate::__own::PreTrainedModel::dtype(&self.$base)
            }
        }

        impl $crate::__own::ForCausalLm for $lm {
            fn forward(
                &self,
                inputs: &$crate::__own::ModelInputs,
            ) -> $crate::__own::Result<$crate::__own::CausalLmOutput> {
                let hidden = inputs.keep_for_logits(&self.$base.run(inputs, None)?)?;
                Ok($crate::__own::CausalLmOutput::new($crate::__own::Module::forward(&self.lm_head, &hidden)?))
            }

            fn forward_with_cache(
                &self,
                inputs: &$crate::__own::ModelInputs,
                cache: &mut $crate::__own::KvCache,
            ) -> $crate::__own::Result<$crate::__own::CausalLmOutput> {
                let hidden = inputs.keep_for_logits(&self.$base.run(inputs, Some(cache))?)?;
                Ok($crate::__own::CausalLmOutput::new($crate::__own::Module::forward(&self.lm_head, &hidden)?))
            }

            fn supports_cache(&self) -> bool {
                true
            }

            fn max_positions(&self) -> Option<usize> {
                let $m = &self.$base;
                $max
            }
        }
    };
}

/// The `load` impls, for an architecture's head trait `$head` (`fn load(vb: VarBuilder, config:
/// &$config) -> Result<Self>`), of `autocandle_core::heads`' generic heads over the base model
/// `$model` of a decoder with a network of its own, for the tasks listed: the base is
/// `$model::new(vb.pp($prefix), config, None)`, its output `hidden` wide;
/// `sequence_classification` puts `score` (no bias) on the last token that is not
/// `config.pad_token_id`, `token_classification` puts `classifier` (with bias) on every token,
/// `question_answering` reads `qa_outputs`:
///
/// ```ignore
/// autocandle_decoder::own_generic_heads!(BloomHead for BloomModel, config: BloomConfig,
///     prefix: "transformer", hidden: |config| config.hidden_size;
///     sequence_classification, token_classification, question_answering);
/// ```
#[macro_export]
macro_rules! own_generic_heads {
    ($head:ident for $model:ty, config: $config:ty, prefix: $prefix:literal, hidden: |$c:ident| $hidden:expr;
     $($task:ident),+ $(,)?) => {
        $($crate::own_generic_heads!(@$task $head, $model, $config, $prefix, |$c| $hidden);)+
    };
    (@sequence_classification $head:ident, $model:ty, $config:ty, $prefix:literal, |$c:ident| $hidden:expr) => {
        impl $head for $crate::__own::SequenceClassifier<$model> {
            fn load(vb: $crate::__own::VarBuilder<'_>, config: &$config) -> $crate::__own::Result<Self> {
                let model = <$model>::new(vb.pp($prefix), config, None)?;
                let $c = config;
                let score = $crate::__own::linear_no_bias($hidden, config.labels.num_labels(), vb.pp("score"))?;
                let pooling = $crate::__own::Pooling::LastNonPad { pad_token_id: config.pad_token_id };
                Ok(Self::new(model, pooling, $crate::__own::Classifier::Linear(score)))
            }
        }
    };
    (@token_classification $head:ident, $model:ty, $config:ty, $prefix:literal, |$c:ident| $hidden:expr) => {
        impl $head for $crate::__own::TokenClassifier<$model> {
            fn load(vb: $crate::__own::VarBuilder<'_>, config: &$config) -> $crate::__own::Result<Self> {
                let model = <$model>::new(vb.pp($prefix), config, None)?;
                let $c = config;
                let classifier = $crate::__own::linear($hidden, config.labels.num_labels(), vb.pp("classifier"))?;
                Ok(Self::new(model, classifier))
            }
        }
    };
    (@question_answering $head:ident, $model:ty, $config:ty, $prefix:literal, |$c:ident| $hidden:expr) => {
        impl $head for $crate::__own::QuestionAnswerer<$model> {
            fn load(vb: $crate::__own::VarBuilder<'_>, config: &$config) -> $crate::__own::Result<Self> {
                Self::with_qa_outputs(<$model>::new(vb.pp($prefix), config, None)?, vb)
            }
        }
    };
}
