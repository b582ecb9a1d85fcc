//! The check the llama-like architecture crates' tests share: every head is registered under
//! its `transformers` class and base model prefix, builds from fresh weights and returns the
//! `transformers` output shapes.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use autocandle_core::registry::{Constructor, Registry};
use autocandle_core::{ArchConfig, KvCache, ModelInputs, ModelOutput, Task};

/// The five heads of a llama-like architecture named `prefix` (`Llama`), with the question
/// answering head's base model under `qa_prefix`.
pub fn llama_like_heads(class_prefix: &str, qa_prefix: &'static str) -> Vec<(Task, String, &'static str)> {
    vec![
        (Task::Base, format!("{class_prefix}Model"), "model"),
        (Task::CausalLm, format!("{class_prefix}ForCausalLM"), "model"),
        (Task::SequenceClassification, format!("{class_prefix}ForSequenceClassification"), "model"),
        (Task::TokenClassification, format!("{class_prefix}ForTokenClassification"), "model"),
        (Task::QuestionAnswering, format!("{class_prefix}ForQuestionAnswering"), qa_prefix),
    ]
}

/// Check that `config`'s model type registers exactly `expected` (task, `transformers`
/// class, `base_model_prefix`), and run each head built
/// from fresh weights on a padded batch of two 3-token rows (token ids below 3, so any
/// vocabulary works; `num_labels` must be 3).
pub fn check_heads(config: &dyn ArchConfig, expected: &[(Task, String, &'static str)]) -> Result<(), String> {
    let model_type = config.model_type();
    let registry = Registry::global().map_err(|e| e.to_string())?;
    let mut tasks: Vec<Task> = registry.heads(model_type).iter().map(|r| r.task).collect();
    tasks.sort_by_key(|t| t.as_str());
    let mut want: Vec<Task> = expected.iter().map(|e| e.0).collect();
    want.sort_by_key(|t| t.as_str());
    if tasks != want {
        return Err(format!("`{model_type}` registers {tasks:?}, expected {want:?}"));
    }
    let err = |e: autocandle_core::Error| e.to_string();
    let device = Device::Cpu;
    let ids = Tensor::new(&[[1u32, 2, 1], [2, 1, 0]], &device).map_err(|e| e.to_string())?;
    let mask = Tensor::new(&[[1u32, 1, 1], [1, 1, 0]], &device).map_err(|e| e.to_string())?;
    let inputs = ModelInputs::new(ids).with_attention_mask(mask);
    for (task, class, prefix) in expected {
        let reg = registry.model(model_type, *task).ok_or_else(|| format!("no {task:?} head"))?;
        if reg.class_name != class || reg.base_model_prefix != *prefix {
            return Err(format!(
                "{task:?} head is {} under `{}`, expected {class} under `{prefix}`",
                reg.class_name, reg.base_model_prefix
            ));
        }
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &device);
        let (name, dims): (&str, Vec<usize>) = match reg.constructor {
            Constructor::Base(f) => {
                let out = f(config, vb).map_err(err)?.forward(&inputs).map_err(err)?;
                ("last_hidden_state", out.last_hidden_state.dims().to_vec())
            }
            Constructor::CausalLm(f) => {
                let model = f(config, vb).map_err(err)?;
                if !model.supports_cache() {
                    return Err(format!("{class} does not support the cache"));
                }
                let mut cache = KvCache::new();
                let step = model.forward_with_cache(&inputs, &mut cache).map_err(err)?;
                if cache.seq_len() != 3 || step.logits.dims()[..2] != [2, 3] {
                    return Err(format!("{class}: the cache holds {} positions after 3", cache.seq_len()));
                }
                let out = model.forward(&inputs).map_err(err)?;
                ("logits", out.logits.dims().to_vec())
            }
            Constructor::SequenceClassification(f) => {
                ("logits", f(config, vb).map_err(err)?.forward(&inputs).map_err(err)?.logits.dims().to_vec())
            }
            Constructor::TokenClassification(f) => {
                ("logits", f(config, vb).map_err(err)?.forward(&inputs).map_err(err)?.logits.dims().to_vec())
            }
            Constructor::QuestionAnswering(f) => {
                let out = f(config, vb).map_err(err)?.forward(&inputs).map_err(err)?;
                let start = out.get("start_logits").map(|t| t.dims().to_vec()).unwrap_or_default();
                ("start_logits", start)
            }
            other => return Err(format!("unexpected constructor {other:?}")),
        };
        let json = config.to_json().map_err(err)?;
        // GPT-2-like configs name it `n_embd`.
        let hidden = json["hidden_size"].as_u64().or_else(|| json["n_embd"].as_u64()).unwrap_or_default() as usize;
        let vocab = json["vocab_size"].as_u64().unwrap_or_default() as usize;
        let want: Vec<usize> = match task {
            Task::Base => vec![2, 3, hidden],
            Task::CausalLm => vec![2, 3, vocab],
            Task::SequenceClassification => vec![2, 3],
            Task::TokenClassification => vec![2, 3, 3],
            _ => vec![2, 3],
        };
        if dims != want {
            return Err(format!("{class}: `{name}` has shape {dims:?}, expected {want:?}"));
        }
    }
    Ok(())
}
