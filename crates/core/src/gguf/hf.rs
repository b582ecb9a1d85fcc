//! How a GGUF file maps onto `transformers`' world, per architecture: its metadata becomes a
//! `config.json` dict ([`config_json`]) and its tensors become the `XForCausalLM` state dict
//! ([`tensor_map`], [`apply`]), as `transformers` (5.25, `modeling_gguf_pytorch_utils.py` and
//! `integrations/ggml.py`) does it with `from_pretrained(..., gguf_file=...)`.
//!
//! What llama.cpp's `convert_hf_to_gguf.py` changes, and what is undone here:
//! - names: `blk.N.attn_q.weight` for `model.layers.N.self_attn.q_proj.weight`, ...;
//! - llama (and mistral, which llama.cpp writes as `llama`): the rows of `q_proj` and `k_proj`
//!   (weights and biases) are permuted per head to interleave the two rotary halves
//!   ([`Transform::UnpermuteRows`]); qwen2, qwen3, phi3, gemma2 and gpt2 are not permuted;
//! - gemma2: every RMSNorm weight is stored as `1 + w` ([`Transform::SubtractOne`]);
//! - gpt2: the `Conv1D` weights are stored transposed, `[out, in]`; `transformers` transposes
//!   them back to its `[in, out]` ([`Transform::Transpose`]);
//! - phi3 keeps its fused `qkv_proj` (`attn_qkv`) and `gate_up_proj` (`ffn_up`).
//!
//! Where `transformers`' own mapping leaves a shape field at its class default although the
//! file states it (so that `transformers` fails to load such a file), the field is taken from
//! the file: qwen3's `head_dim` (`attention.key_length`), gpt2's `n_positions` and `n_inner`,
//! phi3's `partial_rotary_factor` (`rope.dimension_count`, only when not the whole head), and
//! llama's q/k permutation when the file has no `head_count_kv` (llama.cpp's default is the
//! query head count; `transformers` skips the un-permutation there).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::gguf::GgufValue;

/// The GGUF architectures (`general.architecture`) autocandle loads; a llama file whose
/// `general.name` is `mistral` loads as `mistral`, as in `transformers`.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama", "mistral", "qwen2", "qwen3", "phi3", "gemma2", "gpt2"];

/// The GGUF architectures `transformers` 5.25 can load and autocandle cannot yet (the keys of
/// its `GGUF_CONFIG_MAPPING`, the names llama.cpp writes for them, and its newer
/// `GGUF_CONFIG_ARCHS`).
pub const TRANSFORMERS_ONLY_ARCHITECTURES: &[&str] = &[
    "qwen2moe",
    "qwen2_moe",
    "qwen3moe",
    "qwen3_moe",
    "qwen35",
    "qwen35moe",
    "gpt-oss",
    "gpt_oss",
    "lfm2",
    "falcon",
    "bloom",
    "t5",
    "t5encoder",
    "umt5",
    "stablelm",
    "starcoder2",
    "mamba",
    "nemotron",
    "gemma3",
    "gemma4",
    "deci",
    "minimax-m2",
    "minimax_m2",
];

/// What to do to a dequantized GGUF tensor to get `transformers`' tensor.
#[derive(Debug, Clone, PartialEq)]
pub enum Transform {
    /// Taken as it is.
    None,
    /// Undo llama.cpp's per-head row permutation of `q_proj`/`k_proj` (weight or bias):
    /// `n_head` heads of `2 * dim` rows, stored as `[dim, 2]` and wanted as `[2, dim]`.
    UnpermuteRows {
        /// The number of heads the rows are split into (query heads for `q_proj`, key/value
        /// heads for `k_proj`).
        n_head: usize,
    },
    /// Subtract one from every element (gemma2's RMSNorm weights, stored as `1 + w`).
    SubtractOne,
    /// Swap the two axes of a 2-D tensor (gpt2's `Conv1D` weights, `[out, in]` in the file,
    /// `[in, out]` in `transformers`).
    Transpose,
}

/// Where a `transformers` tensor comes from in a GGUF file.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSource {
    /// The tensor's name in the GGUF file (`blk.0.attn_q.weight`).
    pub gguf_name: String,
    /// What to do to the dequantized tensor.
    pub transform: Transform,
}

/// What the file's `general.architecture` (and `general.name`) resolve to.
struct Arch {
    /// `general.architecture` as written (the prefix of the architecture's metadata keys).
    file_arch: String,
    /// `transformers`' model type.
    model_type: &'static str,
}

/// The supported architecture of a file, or the error that says why it is not.
fn resolve(metadata: &BTreeMap<String, GgufValue>) -> Result<Arch> {
    let file_arch = match metadata.get("general.architecture") {
        Some(GgufValue::String(s)) => s.clone(),
        Some(other) => {
            return Err(Error::input(format!(
                "GGUF metadata `general.architecture` must be a string, found {}",
                other.type_name()
            )))
        }
        None => {
            return Err(Error::input(
                "the GGUF file has no `general.architecture` metadata, so its architecture is unknown; \
                 re-export it with llama.cpp's convert_hf_to_gguf.py",
            ))
        }
    };
    // transformers: `if "llama" in architecture and "mistral" in model_name`, where `model_name`
    // is the list of `general.name`'s values: true only for a name that is exactly `mistral`.
    let name_is_mistral = metadata.get("general.name").and_then(GgufValue::as_str) == Some("mistral");
    let model_type = match file_arch.as_str() {
        "llama" if name_is_mistral => "mistral",
        arch => match SUPPORTED_ARCHITECTURES.iter().find(|s| **s == arch) {
            Some(s) => s,
            None => {
                let supported = SUPPORTED_ARCHITECTURES.join(", ");
                return Err(if TRANSFORMERS_ONLY_ARCHITECTURES.contains(&arch) {
                    Error::Unsupported(format!(
                        "GGUF architecture `{arch}` is not supported by autocandle yet (supported: {supported})"
                    ))
                } else {
                    Error::Unsupported(format!(
                        "unknown GGUF architecture `{arch}`: neither autocandle nor transformers loads it \
                         (supported: {supported})"
                    ))
                });
            }
        },
    };
    Ok(Arch { file_arch, model_type })
}

/// `(GGUF key after the architecture prefix, config field)` for each architecture, as
/// `transformers`' `GGUF_CONFIG_MAPPING` has them (keys it reads and drops are left out).
fn arch_keys(model_type: &str) -> &'static [(&'static str, &'static str)] {
    const LLAMA: &[(&str, &str)] = &[
        ("context_length", "max_position_embeddings"),
        ("block_count", "num_hidden_layers"),
        ("feed_forward_length", "intermediate_size"),
        ("embedding_length", "hidden_size"),
        ("rope.dimension_count", "head_dim"),
        ("rope.freq_base", "rope_theta"),
        ("attention.head_count", "num_attention_heads"),
        ("attention.head_count_kv", "num_key_value_heads"),
        ("attention.layer_norm_rms_epsilon", "rms_norm_eps"),
        ("vocab_size", "vocab_size"),
    ];
    const QWEN: &[(&str, &str)] = &[
        ("context_length", "max_position_embeddings"),
        ("block_count", "num_hidden_layers"),
        ("feed_forward_length", "intermediate_size"),
        ("embedding_length", "hidden_size"),
        ("rope.freq_base", "rope_theta"),
        ("attention.head_count", "num_attention_heads"),
        ("attention.head_count_kv", "num_key_value_heads"),
        ("attention.layer_norm_rms_epsilon", "rms_norm_eps"),
        ("vocab_size", "vocab_size"),
    ];
    const GEMMA2: &[(&str, &str)] = &[
        ("context_length", "max_position_embeddings"),
        ("block_count", "num_hidden_layers"),
        ("feed_forward_length", "intermediate_size"),
        ("embedding_length", "hidden_size"),
        ("rope.freq_base", "rope_theta"),
        ("attention.key_length", "head_dim"),
        ("attention.head_count", "num_attention_heads"),
        ("attention.head_count_kv", "num_key_value_heads"),
        ("attention.layer_norm_rms_epsilon", "rms_norm_eps"),
        ("attention.sliding_window", "sliding_window"),
        ("vocab_size", "vocab_size"),
    ];
    const GPT2: &[(&str, &str)] = &[
        ("block_count", "n_layer"),
        ("context_length", "n_ctx"),
        ("embedding_length", "n_embd"),
        ("feed_forward_length", "feed_forward_length"),
        ("attention.head_count", "n_head"),
        ("attention.layer_norm_epsilon", "layer_norm_epsilon"),
    ];
    match model_type {
        "llama" | "mistral" => LLAMA,
        "qwen2" | "qwen3" | "phi3" => QWEN,
        "gemma2" => GEMMA2,
        "gpt2" => GPT2,
        _ => &[],
    }
}

/// A metadata value as `transformers`' `_gguf_parse_value` leaves it: arrays as lists, except
/// that a one-element array becomes its element.
fn parsed(value: &GgufValue) -> Value {
    match value {
        GgufValue::Array(items) if items.len() == 1 => items[0].to_json(),
        other => other.to_json(),
    }
}

/// `transformers`' config dict from GGUF metadata: `model_type` and every mapped field (and the
/// defaults `transformers` adds), ready for `PretrainedConfig::from_value`.
///
/// `tensor_names` are the names of the file's tensors: a file without `output.weight` ties the
/// LM head to the token embedding (`tie_word_embeddings`).
///
/// Errors: no `general.architecture`, or an architecture autocandle does not load (the message
/// lists [`SUPPORTED_ARCHITECTURES`]).
pub fn config_json(metadata: &BTreeMap<String, GgufValue>, tensor_names: &[&str]) -> Result<Map<String, Value>> {
    let arch = resolve(metadata)?;
    let mut config = Map::new();
    config.insert("model_type".into(), Value::String(arch.model_type.into()));
    if let Some(name) = metadata.get("general.name") {
        // transformers replaces the file's architecture by the model type inside strings.
        let value = match parsed(name) {
            Value::String(s) if arch.file_arch != arch.model_type => {
                Value::String(s.replace(&arch.file_arch, arch.model_type))
            }
            v => v,
        };
        config.insert("_model_name_or_path".into(), value);
    }
    for (key, field) in [
        ("tokenizer.ggml.bos_token_id", "bos_token_id"),
        ("tokenizer.ggml.eos_token_id", "eos_token_id"),
        ("tokenizer.ggml.unknown_token_id", "unk_token_id"),
        ("tokenizer.ggml.padding_token_id", "pad_token_id"),
    ] {
        if let Some(v) = metadata.get(key) {
            config.insert(field.into(), parsed(v));
        }
    }
    let prefix = format!("{}.", arch.file_arch);
    for (key, field) in arch_keys(arch.model_type) {
        if let Some(v) = metadata.get(&format!("{prefix}{key}")) {
            config.insert((*field).into(), parsed(v));
        }
    }
    config.insert("tie_word_embeddings".into(), Value::Bool(!tensor_names.contains(&"output.weight")));
    // transformers: the vocabulary's length when the file states no `vocab_size`.
    if !config.contains_key("vocab_size") {
        if let Some(tokens) = metadata.get("tokenizer.ggml.tokens").and_then(GgufValue::as_array) {
            config.insert("vocab_size".into(), Value::from(tokens.len()));
        }
    }
    let get = |key: &str| metadata.get(&format!("{prefix}{key}")).and_then(GgufValue::as_usize);
    match arch.model_type {
        "qwen3" => {
            if let Some(head_dim) = get("attention.key_length") {
                config.insert("head_dim".into(), Value::from(head_dim));
            }
        }
        "gpt2" => {
            if let Some(n) = get("context_length") {
                config.insert("n_positions".into(), Value::from(n));
            }
            if let Some(n) = get("feed_forward_length") {
                config.insert("n_inner".into(), Value::from(n));
            }
        }
        "phi3" => {
            let (rope, hidden, heads) =
                (get("rope.dimension_count"), get("embedding_length"), get("attention.head_count"));
            if let (Some(rope), Some(hidden), Some(heads)) = (rope, hidden, heads) {
                let head_dim = hidden.checked_div(heads).unwrap_or(0);
                if head_dim > 0 && rope != head_dim {
                    config.insert("partial_rotary_factor".into(), Value::from(rope as f64 / head_dim as f64));
                }
            }
        }
        _ => {}
    }
    Ok(config)
}

/// A non-negative integer field of the config.
fn usize_field(config: &Map<String, Value>, key: &str) -> Option<usize> {
    config.get(key).and_then(Value::as_u64).and_then(|v| usize::try_from(v).ok())
}

/// `blk.N.rest` as `(N, rest)`.
fn split_block(name: &str) -> Option<(usize, &str)> {
    let rest = name.strip_prefix("blk.")?;
    let (index, rest) = rest.split_once('.')?;
    if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((index.parse().ok()?, rest))
}

/// The `transformers` name and transform of one GGUF tensor of a llama-like decoder.
fn decoder_name(model_type: &str, config: &Map<String, Value>, name: &str) -> Result<Option<(String, Transform)>> {
    let plain = |n: &str| Ok(Some((n.to_owned(), Transform::None)));
    let norm = if model_type == "gemma2" { Transform::SubtractOne } else { Transform::None };
    match name {
        "token_embd.weight" => return plain("model.embed_tokens.weight"),
        "output_norm.weight" => return Ok(Some(("model.norm.weight".into(), norm))),
        // gemma2's head is the embedding; transformers maps no `output.weight` for it.
        "output.weight" if model_type != "gemma2" => return plain("lm_head.weight"),
        _ => {}
    }
    let Some((layer, rest)) = split_block(name) else { return Ok(None) };
    if usize_field(config, "num_hidden_layers").is_some_and(|n| layer >= n) {
        return Ok(None);
    }
    let Some((module, kind)) = rest.rsplit_once('.') else { return Ok(None) };
    let is_bias = match kind {
        "weight" => false,
        "bias" => true,
        _ => return Ok(None),
    };
    let attention_bias = match model_type {
        "qwen2" => true,
        _ => config.get("attention_bias").and_then(Value::as_bool).unwrap_or(false),
    };
    let mlp_bias = config.get("mlp_bias").and_then(Value::as_bool).unwrap_or(false);
    let permuted = matches!(model_type, "llama" | "mistral");
    let heads = || {
        usize_field(config, "num_attention_heads").ok_or_else(|| {
            Error::config(model_type, "`num_attention_heads` is needed to undo llama.cpp's q/k permutation")
        })
    };
    let (hf, transform, biased) = match (model_type, module) {
        (_, "attn_norm") => ("input_layernorm", norm, false),
        ("gemma2", "ffn_norm") => ("pre_feedforward_layernorm", norm, false),
        ("gemma2", "post_attention_norm") => ("post_attention_layernorm", norm, false),
        ("gemma2", "post_ffw_norm") => ("post_feedforward_layernorm", norm, false),
        (_, "ffn_norm") => ("post_attention_layernorm", norm, false),
        ("qwen3", "attn_q_norm") => ("self_attn.q_norm", Transform::None, false),
        ("qwen3", "attn_k_norm") => ("self_attn.k_norm", Transform::None, false),
        ("phi3", "attn_qkv") => ("self_attn.qkv_proj", Transform::None, false),
        ("phi3", "ffn_up") => ("mlp.gate_up_proj", Transform::None, false),
        ("phi3", "attn_q" | "attn_k" | "attn_v" | "ffn_gate") => return Ok(None),
        (_, "attn_q") if permuted => {
            ("self_attn.q_proj", Transform::UnpermuteRows { n_head: heads()? }, attention_bias)
        }
        (_, "attn_k") if permuted => {
            let n_head = match usize_field(config, "num_key_value_heads") {
                Some(n) => n,
                None => heads()?,
            };
            ("self_attn.k_proj", Transform::UnpermuteRows { n_head }, attention_bias)
        }
        (_, "attn_q") => ("self_attn.q_proj", Transform::None, attention_bias),
        (_, "attn_k") => ("self_attn.k_proj", Transform::None, attention_bias),
        (_, "attn_v") => ("self_attn.v_proj", Transform::None, attention_bias),
        (_, "attn_output") => ("self_attn.o_proj", Transform::None, attention_bias && model_type != "qwen2"),
        (_, "ffn_gate") => ("mlp.gate_proj", Transform::None, mlp_bias),
        (_, "ffn_up") => ("mlp.up_proj", Transform::None, mlp_bias),
        (_, "ffn_down") => ("mlp.down_proj", Transform::None, mlp_bias),
        _ => return Ok(None),
    };
    if is_bias && !biased {
        return Ok(None);
    }
    Ok(Some((format!("model.layers.{layer}.{hf}.{kind}"), transform)))
}

/// The `transformers` name and transform of one GGUF tensor of GPT-2.
fn gpt2_name(config: &Map<String, Value>, name: &str) -> Option<(String, Transform)> {
    let plain = |n: &str| Some((n.to_owned(), Transform::None));
    match name {
        "token_embd.weight" => return plain("transformer.wte.weight"),
        "position_embd.weight" => return plain("transformer.wpe.weight"),
        "output_norm.weight" => return plain("transformer.ln_f.weight"),
        "output_norm.bias" => return plain("transformer.ln_f.bias"),
        "output.weight" => return plain("lm_head.weight"),
        _ => {}
    }
    let (layer, rest) = split_block(name)?;
    if usize_field(config, "n_layer").is_some_and(|n| layer >= n) {
        return None;
    }
    let (module, kind) = rest.rsplit_once('.')?;
    if kind != "weight" && kind != "bias" {
        return None;
    }
    let (hf, conv) = match module {
        "attn_norm" => ("ln_1", false),
        "ffn_norm" => ("ln_2", false),
        "attn_qkv" => ("attn.c_attn", true),
        "attn_output" => ("attn.c_proj", true),
        "ffn_up" => ("mlp.c_fc", true),
        "ffn_down" => ("mlp.c_proj", true),
        _ => return None,
    };
    let transform = if conv && kind == "weight" { Transform::Transpose } else { Transform::None };
    Some((format!("transformer.h.{layer}.{hf}.{kind}"), transform))
}

/// Check that a transform can be applied to a tensor of this shape.
fn check_shape(transform: &Transform, gguf_name: &str, shape: &[usize]) -> Result<()> {
    match transform {
        Transform::UnpermuteRows { n_head } => {
            let rows = shape.first().copied().unwrap_or(0);
            if !n_head.checked_mul(2).is_some_and(|group| group > 0 && rows.is_multiple_of(group)) {
                return Err(Error::input(format!(
                    "GGUF tensor `{gguf_name}` has {rows} rows, which do not split into {n_head} heads of an even \
                     size; the file's head counts do not match its tensors"
                )));
            }
        }
        Transform::Transpose if shape.len() != 2 => {
            return Err(Error::input(format!(
                "GGUF tensor `{gguf_name}` has shape {shape:?} where a matrix is expected"
            )));
        }
        _ => {}
    }
    Ok(())
}

/// `transformers`' tensor name -> where it comes from, for every tensor of the file the
/// architecture uses; the second element lists the file's other tensors (which `transformers`
/// ignores), for the loading report.
///
/// `config` is [`config_json`]'s dict (or a config with the same fields); `tensors` are the
/// file's tensors with their row-major shapes.
pub fn tensor_map(
    config: &Map<String, Value>,
    tensors: &[(&str, &[usize])],
) -> Result<(BTreeMap<String, TensorSource>, Vec<String>)> {
    let model_type = config.get("model_type").and_then(Value::as_str).unwrap_or_default();
    if !SUPPORTED_ARCHITECTURES.contains(&model_type) {
        return Err(Error::Unsupported(format!(
            "no GGUF tensor mapping for model type `{model_type}` (supported: {})",
            SUPPORTED_ARCHITECTURES.join(", ")
        )));
    }
    let mut map = BTreeMap::new();
    let mut unused = Vec::new();
    for (name, shape) in tensors {
        let mapped = match model_type {
            "gpt2" => gpt2_name(config, name),
            _ => decoder_name(model_type, config, name)?,
        };
        match mapped {
            Some((hf, transform)) => {
                check_shape(&transform, name, shape)?;
                map.insert(hf, TensorSource { gguf_name: (*name).to_owned(), transform });
            }
            None => unused.push((*name).to_owned()),
        }
    }
    Ok((map, unused))
}

/// The shape a tensor of `shape` (row-major, as the reader gives it) has after `transform`.
pub fn transformed_shape(transform: &Transform, shape: &[usize]) -> Vec<usize> {
    match (transform, shape) {
        (Transform::Transpose, [rows, cols]) => vec![*cols, *rows],
        _ => shape.to_vec(),
    }
}

/// Apply a transform to a dequantized tensor (row-major shape as the reader gives it).
pub fn apply(transform: &Transform, tensor: candle_core::Tensor) -> Result<candle_core::Tensor> {
    Ok(match transform {
        Transform::None => tensor,
        Transform::UnpermuteRows { n_head } => {
            let dims = tensor.dims().to_vec();
            check_shape(transform, "?", &dims)?;
            let rows = dims[0];
            let mut split = vec![*n_head, rows / n_head / 2, 2];
            split.extend_from_slice(&dims[1..]);
            tensor.reshape(split)?.transpose(1, 2)?.contiguous()?.reshape(dims)?
        }
        Transform::SubtractOne => tensor.affine(1.0, -1.0)?,
        Transform::Transpose => {
            check_shape(transform, "?", tensor.dims())?;
            tensor.t()?.contiguous()?
        }
    })
}

/// Apply a row transform to the raw block bytes of a quantized 2-D tensor of `rows` rows (row
/// permutation moves whole rows of blocks); `None` when the transform cannot be done without
/// dequantizing (or the bytes do not split into `rows` equal rows).
pub fn apply_to_rows(transform: &Transform, bytes: &[u8], rows: usize) -> Option<Vec<u8>> {
    match transform {
        Transform::None => Some(bytes.to_vec()),
        Transform::UnpermuteRows { n_head } => {
            let n_head = *n_head;
            let whole_heads = n_head.checked_mul(2).is_some_and(|group| group > 0 && rows.is_multiple_of(group));
            if rows == 0 || !bytes.len().is_multiple_of(rows) || !whole_heads {
                return None;
            }
            let row_bytes = bytes.len() / rows;
            let dim = rows / n_head / 2;
            let mut out = Vec::with_capacity(bytes.len());
            // Output row (h, t, d) is stored row (h, d, t).
            for h in 0..n_head {
                for t in 0..2 {
                    for d in 0..dim {
                        let src = h * 2 * dim + d * 2 + t;
                        out.extend_from_slice(&bytes[src * row_bytes..(src + 1) * row_bytes]);
                    }
                }
            }
            Some(out)
        }
        Transform::SubtractOne | Transform::Transpose => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    fn meta(pairs: &[(&str, GgufValue)]) -> BTreeMap<String, GgufValue> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    fn s(v: &str) -> GgufValue {
        GgufValue::String(v.into())
    }

    fn llama_meta(name: &str) -> BTreeMap<String, GgufValue> {
        meta(&[
            ("general.architecture", s("llama")),
            ("general.name", s(name)),
            ("llama.block_count", GgufValue::U32(2)),
            ("llama.context_length", GgufValue::U32(64)),
            ("llama.embedding_length", GgufValue::U32(24)),
            ("llama.feed_forward_length", GgufValue::U32(40)),
            ("llama.attention.head_count", GgufValue::U32(4)),
            ("llama.attention.head_count_kv", GgufValue::U32(2)),
            ("llama.rope.freq_base", GgufValue::F32(10000.0)),
            ("llama.rope.dimension_count", GgufValue::U32(6)),
            ("llama.attention.layer_norm_rms_epsilon", GgufValue::F32(1e-5)),
            ("llama.vocab_size", GgufValue::U32(61)),
            ("tokenizer.ggml.bos_token_id", GgufValue::U32(1)),
            ("tokenizer.ggml.eos_token_id", GgufValue::U32(2)),
            ("general.file_type", GgufValue::U32(0)),
        ])
    }

    #[test]
    fn llama_metadata_maps_to_transformers_fields() {
        let config = config_json(&llama_meta("tiny"), &["token_embd.weight", "output.weight"]).unwrap();
        let want = serde_json::json!({
            "model_type": "llama",
            "_model_name_or_path": "tiny",
            "num_hidden_layers": 2,
            "max_position_embeddings": 64,
            "hidden_size": 24,
            "intermediate_size": 40,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "rope_theta": 10000.0,
            "head_dim": 6,
            "rms_norm_eps": f64::from(1e-5f32),
            "vocab_size": 61,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "tie_word_embeddings": false,
        });
        assert_eq!(Value::Object(config), want);
    }

    #[test]
    fn exactly_mistral_named_llama_is_mistral_and_no_output_ties() {
        let config = config_json(&llama_meta("mistral"), &["token_embd.weight"]).unwrap();
        assert_eq!(config["model_type"], "mistral");
        assert_eq!(config["tie_word_embeddings"], true);
        assert_eq!(config["num_key_value_heads"], 2);
        // Any other name stays llama, as in transformers.
        let config = config_json(&llama_meta("Mistral 7B"), &[]).unwrap();
        assert_eq!(config["model_type"], "llama");
    }

    #[test]
    fn vocab_size_falls_back_to_the_token_list_and_gpt2_extras() {
        let tokens = GgufValue::Array(vec![s("a"), s("b"), s("c")]);
        let m = meta(&[
            ("general.architecture", s("gpt2")),
            ("gpt2.block_count", GgufValue::U32(1)),
            ("gpt2.context_length", GgufValue::U32(32)),
            ("gpt2.embedding_length", GgufValue::U32(16)),
            ("gpt2.feed_forward_length", GgufValue::U32(64)),
            ("gpt2.attention.head_count", GgufValue::U32(4)),
            ("gpt2.attention.layer_norm_epsilon", GgufValue::F32(1e-5)),
            ("tokenizer.ggml.tokens", tokens),
        ]);
        let config = config_json(&m, &["output.weight"]).unwrap();
        assert_eq!(config["vocab_size"], 3);
        assert_eq!(config["n_layer"], 1);
        assert_eq!(config["n_ctx"], 32);
        assert_eq!(config["n_positions"], 32);
        assert_eq!(config["n_inner"], 64);
        assert_eq!(config["feed_forward_length"], 64);
        assert_eq!(config["tie_word_embeddings"], false);
    }

    #[test]
    fn fields_transformers_misses_come_from_the_file() {
        let m = meta(&[
            ("general.architecture", s("qwen3")),
            ("qwen3.attention.key_length", GgufValue::U32(64)),
            ("qwen3.rope.dimension_count", GgufValue::U32(64)),
        ]);
        let config = config_json(&m, &[]).unwrap();
        assert_eq!(config["head_dim"], 64);
        assert!(!config.contains_key("rope.dimension_count"));
        let m = meta(&[
            ("general.architecture", s("phi3")),
            ("phi3.embedding_length", GgufValue::U32(32)),
            ("phi3.attention.head_count", GgufValue::U32(4)),
            ("phi3.rope.dimension_count", GgufValue::U32(6)),
        ]);
        let config = config_json(&m, &[]).unwrap();
        assert_eq!(config["partial_rotary_factor"], 0.75);
        let m = meta(&[
            ("general.architecture", s("phi3")),
            ("phi3.embedding_length", GgufValue::U32(32)),
            ("phi3.attention.head_count", GgufValue::U32(4)),
            ("phi3.rope.dimension_count", GgufValue::U32(8)),
        ]);
        assert!(!config_json(&m, &[]).unwrap().contains_key("partial_rotary_factor"));
        // A llama file without `head_count_kv` still un-permutes `k_proj`, by the query heads.
        let mut c = Map::new();
        c.insert("model_type".into(), "llama".into());
        c.insert("num_attention_heads".into(), 4.into());
        let (map, _) = names(&c, &[("blk.0.attn_k.weight", vec![16, 16])]);
        assert_eq!(map["model.layers.0.self_attn.k_proj.weight"].transform, Transform::UnpermuteRows { n_head: 4 });
        // One-element arrays read as their element, as transformers' parser leaves them.
        let m = meta(&[
            ("general.architecture", s("llama")),
            ("tokenizer.ggml.eos_token_id", GgufValue::Array(vec![GgufValue::U32(7)])),
        ]);
        assert_eq!(config_json(&m, &[]).unwrap()["eos_token_id"], 7);
    }

    #[test]
    fn unsupported_and_unknown_architectures_are_clear_errors() {
        let err = config_json(&meta(&[("general.architecture", s("qwen2moe"))]), &[]).unwrap_err().to_string();
        assert!(err.contains("GGUF architecture `qwen2moe` is not supported by autocandle yet"), "{err}");
        assert!(err.contains("supported: llama, mistral, qwen2, qwen3, phi3, gemma2, gpt2"), "{err}");
        for arch in ["falcon", "t5", "stablelm", "starcoder2", "mamba", "nemotron", "gemma3", "umt5", "deci", "lfm2"] {
            let err = config_json(&meta(&[("general.architecture", s(arch))]), &[]).unwrap_err().to_string();
            assert!(err.contains("not supported by autocandle yet"), "{arch}: {err}");
        }
        let err = config_json(&meta(&[("general.architecture", s("rwkv7"))]), &[]).unwrap_err().to_string();
        assert!(err.contains("unknown GGUF architecture `rwkv7`"), "{err}");
        assert!(err.contains("supported: llama"), "{err}");
        let err = config_json(&meta(&[]), &[]).unwrap_err().to_string();
        assert!(err.contains("no `general.architecture`"), "{err}");
        let err = config_json(&meta(&[("general.architecture", GgufValue::U32(1))]), &[]).unwrap_err().to_string();
        assert!(err.contains("must be a string"), "{err}");
    }

    /// llama.cpp's `LlamaModel.permute`, written out as index arithmetic.
    fn permute(rows: &[Vec<f32>], n_head: usize) -> Vec<Vec<f32>> {
        let dim = rows.len() / n_head / 2;
        let mut out = vec![Vec::new(); rows.len()];
        for h in 0..n_head {
            for t in 0..2 {
                for d in 0..dim {
                    // reshape(n_head, 2, dim).swapaxes(1, 2): stored (h, d, t) <- original (h, t, d)
                    out[h * 2 * dim + d * 2 + t] = rows[h * 2 * dim + t * dim + d].clone();
                }
            }
        }
        out
    }

    #[test]
    fn unpermute_undoes_llama_cpp_permutation_on_tensors_and_rows() {
        let (n_rows, cols, n_head) = (12, 3, 2);
        let original: Vec<Vec<f32>> = (0..n_rows).map(|r| (0..cols).map(|c| (r * 10 + c) as f32).collect()).collect();
        let stored = permute(&original, n_head);
        let flat: Vec<f32> = stored.iter().flatten().copied().collect();
        let t = Tensor::from_vec(flat.clone(), (n_rows, cols), &Device::Cpu).unwrap();
        let back = apply(&Transform::UnpermuteRows { n_head }, t).unwrap();
        assert_eq!(back.to_vec2::<f32>().unwrap(), original);
        // A bias (1-D) goes the same way.
        let bias: Vec<f32> = stored.iter().map(|r| r[0]).collect();
        let b = apply(&Transform::UnpermuteRows { n_head }, Tensor::new(bias, &Device::Cpu).unwrap()).unwrap();
        assert_eq!(b.to_vec1::<f32>().unwrap(), original.iter().map(|r| r[0]).collect::<Vec<_>>());
        // Raw row bytes (here 4-byte rows of f32 standing for blocks).
        let bytes: Vec<u8> = flat.iter().flat_map(|v| v.to_le_bytes()).collect();
        let rows = apply_to_rows(&Transform::UnpermuteRows { n_head }, &bytes, n_rows).unwrap();
        let want: Vec<u8> = original.iter().flatten().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(rows, want);
        assert_eq!(apply_to_rows(&Transform::None, &bytes, n_rows).unwrap(), bytes);
        assert!(apply_to_rows(&Transform::Transpose, &bytes, n_rows).is_none());
        assert!(apply_to_rows(&Transform::UnpermuteRows { n_head: 5 }, &bytes, n_rows).is_none());
        let bad = Tensor::zeros((10, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
        assert!(apply(&Transform::UnpermuteRows { n_head: 3 }, bad).is_err());
    }

    #[test]
    fn subtract_one_and_transpose() {
        let t = Tensor::new(&[[1.5f32, 2.0, 3.0], [0.0, 1.0, -1.0]], &Device::Cpu).unwrap();
        let s1 = apply(&Transform::SubtractOne, t.clone()).unwrap();
        assert_eq!(s1.to_vec2::<f32>().unwrap(), vec![vec![0.5, 1.0, 2.0], vec![-1.0, 0.0, -2.0]]);
        let tt = apply(&Transform::Transpose, t).unwrap();
        assert_eq!(tt.to_vec2::<f32>().unwrap(), vec![vec![1.5, 0.0], vec![2.0, 1.0], vec![3.0, -1.0]]);
    }

    fn names(
        config: &Map<String, Value>,
        tensors: &[(&str, Vec<usize>)],
    ) -> (BTreeMap<String, TensorSource>, Vec<String>) {
        let t: Vec<(&str, &[usize])> = tensors.iter().map(|(n, s)| (*n, s.as_slice())).collect();
        tensor_map(config, &t).unwrap()
    }

    #[test]
    fn llama_tensors_map_with_permutation_and_unknowns_listed() {
        let config = config_json(&llama_meta("tiny"), &[]).unwrap();
        let (map, unused) = names(
            &config,
            &[
                ("token_embd.weight", vec![61, 24]),
                ("blk.0.attn_q.weight", vec![24, 24]),
                ("blk.0.attn_k.weight", vec![12, 24]),
                ("blk.0.attn_q.bias", vec![24]),
                ("blk.1.ffn_norm.weight", vec![24]),
                ("blk.7.attn_norm.weight", vec![24]),
                ("rope_freqs.weight", vec![3]),
                ("output.weight", vec![61, 24]),
            ],
        );
        let src = |n: &str| map.get(n).unwrap_or_else(|| panic!("{n} missing: {map:?}"));
        assert_eq!(src("model.embed_tokens.weight").gguf_name, "token_embd.weight");
        assert_eq!(src("model.layers.0.self_attn.q_proj.weight").transform, Transform::UnpermuteRows { n_head: 4 });
        assert_eq!(src("model.layers.0.self_attn.k_proj.weight").transform, Transform::UnpermuteRows { n_head: 2 });
        assert_eq!(src("model.layers.1.post_attention_layernorm.weight").transform, Transform::None);
        assert_eq!(src("lm_head.weight").gguf_name, "output.weight");
        assert_eq!(unused, vec!["blk.0.attn_q.bias", "blk.7.attn_norm.weight", "rope_freqs.weight"]);
        // A head count that does not divide the rows is an error, not a panic.
        let t: Vec<(&str, &[usize])> = vec![("blk.0.attn_k.weight", &[10, 24])];
        assert!(tensor_map(&config, &t).is_err());
    }

    #[test]
    fn gemma2_gpt2_phi3_qwen_names() {
        let mut c = Map::new();
        c.insert("model_type".into(), "gemma2".into());
        c.insert("num_hidden_layers".into(), 1.into());
        let (map, unused) = names(
            &c,
            &[("blk.0.post_ffw_norm.weight", vec![8]), ("output_norm.weight", vec![8]), ("output.weight", vec![5, 8])],
        );
        assert_eq!(map["model.layers.0.post_feedforward_layernorm.weight"].transform, Transform::SubtractOne);
        assert_eq!(map["model.norm.weight"].transform, Transform::SubtractOne);
        assert_eq!(unused, vec!["output.weight"]);

        c.insert("model_type".into(), "gpt2".into());
        let (map, _) = names(&c, &[("blk.0.attn_qkv.weight", vec![48, 16]), ("blk.0.attn_qkv.bias", vec![48])]);
        assert_eq!(map["transformer.h.0.attn.c_attn.weight"].transform, Transform::Transpose);
        assert_eq!(map["transformer.h.0.attn.c_attn.bias"].transform, Transform::None);

        c.insert("model_type".into(), "phi3".into());
        let (map, _) = names(&c, &[("blk.0.attn_qkv.weight", vec![48, 16]), ("blk.0.ffn_up.weight", vec![64, 16])]);
        assert!(map.contains_key("model.layers.0.self_attn.qkv_proj.weight"));
        assert!(map.contains_key("model.layers.0.mlp.gate_up_proj.weight"));

        c.insert("model_type".into(), "qwen2".into());
        let (map, unused) = names(&c, &[("blk.0.attn_q.bias", vec![16]), ("blk.0.attn_output.bias", vec![16])]);
        assert_eq!(map["model.layers.0.self_attn.q_proj.bias"].transform, Transform::None);
        assert_eq!(unused, vec!["blk.0.attn_output.bias"]);

        c.insert("model_type".into(), "falcon".into());
        assert!(tensor_map(&c, &[]).is_err());
    }

    #[test]
    fn transformed_shapes_are_those_apply_gives() {
        let t = Tensor::zeros((4, 6), candle_core::DType::F32, &Device::Cpu).unwrap();
        for transform in
            [Transform::None, Transform::UnpermuteRows { n_head: 2 }, Transform::SubtractOne, Transform::Transpose]
        {
            let applied = apply(&transform, t.clone()).unwrap();
            assert_eq!(transformed_shape(&transform, t.dims()), applied.dims(), "{transform:?}");
        }
    }
}
