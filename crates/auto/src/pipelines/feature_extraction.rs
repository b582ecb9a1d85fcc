//! The feature-extraction pipeline (`transformers.FeatureExtractionPipeline`): the base
//! model's last hidden state per token, and sentence embeddings pooled as a
//! sentence-transformers `modules.json` + `1_Pooling/config.json` says (mean pooling when
//! there is none).

use std::path::Path;

use autocandle_core::hub::ModelSource;
use autocandle_core::{Error, LoadOptions, Model, Result};
use candle_core::{DType, IndexOp};
use serde_json::Value;

use super::TextParts;
use crate::{AutoModel, EncodeOptions, Padding};

/// How token states become one vector (sentence-transformers' pooling modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// The first token (`[CLS]`).
    Cls,
    /// The maximum over the non-padding tokens, per dimension.
    Max,
    /// The mean over the non-padding tokens.
    Mean,
    /// The sum over the non-padding tokens divided by the square root of their number.
    MeanSqrtLen,
    /// The last non-padding token.
    LastToken,
}

/// The pooling of a sentence-embedding model: one or more modes (concatenated in
/// sentence-transformers' order: cls, max, mean, mean-sqrt-len, last token), then optional
/// L2 normalisation.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolingConfig {
    /// The pooling modes; their vectors are concatenated, each `[hidden]`.
    pub modes: Vec<Pooling>,
    /// L2-normalise the pooled vector (sentence-transformers' `Normalize` module).
    pub normalize: bool,
}

impl Default for PoolingConfig {
    /// Mean pooling, not normalised.
    fn default() -> Self {
        Self { modes: vec![Pooling::Mean], normalize: false }
    }
}

impl PoolingConfig {
    /// One mode, normalised or not.
    pub fn new(mode: Pooling, normalize: bool) -> Self {
        Self { modes: vec![mode], normalize }
    }

    /// The pooling a sentence-transformers repo declares: its `modules.json` names a
    /// `Pooling` module (whose folder has `config.json`) and maybe a `Normalize` module.
    /// `None` when the repo has no `modules.json` or no pooling module.
    pub fn from_pretrained(model: &str, opts: &LoadOptions) -> Result<Option<Self>> {
        let source = ModelSource::resolve(model, opts)?;
        let Some(modules_path) = source.optional_file("modules.json")? else { return Ok(None) };
        let modules = read_json(&modules_path)?;
        let modules =
            modules.as_array().ok_or_else(|| Error::input(format!("`{}` is not a list", modules_path.display())))?;
        let kind = |m: &Value, name: &str| m.get("type").and_then(Value::as_str).is_some_and(|t| t.ends_with(name));
        let normalize = modules.iter().any(|m| kind(m, "models.Normalize"));
        let Some(pooling) = modules.iter().find(|m| kind(m, "models.Pooling")) else { return Ok(None) };
        let folder = pooling.get("path").and_then(Value::as_str).unwrap_or("1_Pooling").trim_end_matches('/');
        let config_path = source.file(&format!("{folder}/config.json"))?;
        let config = read_json(&config_path)?;
        let on = |key: &str| config.get(key).and_then(Value::as_bool).unwrap_or(false);
        let mut modes = Vec::new();
        for (key, mode) in [
            ("pooling_mode_cls_token", Pooling::Cls),
            ("pooling_mode_max_tokens", Pooling::Max),
            ("pooling_mode_mean_tokens", Pooling::Mean),
            ("pooling_mode_mean_sqrt_len_tokens", Pooling::MeanSqrtLen),
            ("pooling_mode_lasttoken", Pooling::LastToken),
        ] {
            if on(key) {
                modes.push(mode);
            }
        }
        if on("pooling_mode_weightedmean_tokens") {
            return Err(Error::Unsupported(format!(
                "`{}`: weighted-mean pooling is not supported by autocandle yet",
                config_path.display()
            )));
        }
        if modes.is_empty() {
            return Err(Error::input(format!("`{}` enables no pooling mode", config_path.display())));
        }
        Ok(Some(Self { modes, normalize }))
    }

    /// Pool one row of token states (`[seq][hidden]`) over its `mask`.
    fn pool(&self, states: &[Vec<f32>], mask: &[u32]) -> Vec<f32> {
        let hidden = states.first().map_or(0, Vec::len);
        let kept: Vec<&Vec<f32>> = states.iter().zip(mask).filter(|(_, m)| **m != 0).map(|(s, _)| s).collect();
        let count = kept.len().max(1) as f32;
        let sum = || (0..hidden).map(|j| kept.iter().map(|s| s[j]).sum::<f32>()).collect::<Vec<f32>>();
        let mut out = Vec::new();
        for mode in &self.modes {
            match mode {
                Pooling::Cls => out.extend_from_slice(&states[0]),
                Pooling::Max => {
                    out.extend((0..hidden).map(|j| kept.iter().map(|s| s[j]).fold(f32::NEG_INFINITY, f32::max)))
                }
                Pooling::Mean => out.extend(sum().into_iter().map(|x| x / count)),
                Pooling::MeanSqrtLen => out.extend(sum().into_iter().map(|x| x / count.sqrt())),
                Pooling::LastToken => {
                    let last = mask.iter().rposition(|m| *m != 0).unwrap_or(0);
                    out.extend_from_slice(&states[last]);
                }
            }
        }
        if self.normalize {
            // torch.nn.functional.normalize: x / max(||x||, 1e-12)
            let norm = out.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            out.iter_mut().for_each(|x| *x /= norm);
        }
        out
    }
}

fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|source| Error::MalformedJson { path: path.to_path_buf(), source })
}

/// Token features and sentence embeddings from a base model (`AutoModel`).
#[derive(Debug)]
pub struct FeatureExtractionPipeline {
    parts: TextParts,
    model: Box<dyn Model>,
    pooling: PoolingConfig,
}

impl FeatureExtractionPipeline {
    /// Load the base model and tokenizer at `model`, and its sentence-transformers pooling.
    pub fn new(model: &str) -> Result<Self> {
        Self::new_with(model, &LoadOptions::default())
    }

    /// [`FeatureExtractionPipeline::new`] with loading options.
    pub fn new_with(model: &str, opts: &LoadOptions) -> Result<Self> {
        super::traced("feature-extraction", model, || {
            let parts = TextParts::load(model, opts, false)?;
            let pooling = PoolingConfig::from_pretrained(model, opts)?.unwrap_or_default();
            let model = AutoModel::from_pretrained_with(model, opts)?.value;
            Ok(Self { parts, model, pooling })
        })
    }

    /// The pooling [`FeatureExtractionPipeline::embed`] uses (from `modules.json`, else mean).
    pub fn pooling(&self) -> &PoolingConfig {
        &self.pooling
    }

    /// The last hidden state of `text`, one vector per token (special tokens included), as
    /// `transformers`' pipeline returns for one text (without its batch dimension).
    pub fn call(&self, text: &str) -> Result<Vec<Vec<f32>>> {
        let encoding = self.parts.encode(text, None)?;
        let out = self.model.forward(&self.parts.inputs(&encoding)?)?;
        Ok(out.last_hidden_state.to_dtype(DType::F32)?.i(0)?.to_vec2::<f32>()?)
    }

    /// One embedding per text, pooled with [`FeatureExtractionPipeline::pooling`].
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        self.embed_with(texts, &self.pooling)
    }

    /// One embedding per text with another pooling. The batch is padded to its longest text
    /// and truncated to `model_max_length`, as sentence-transformers encodes it.
    pub fn embed_with(&self, texts: &[&str], pooling: &PoolingConfig) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let opts = EncodeOptions::new().padding(Padding::Longest).truncation(true);
        let batch = self.parts.tokenizer.encode_batch_with(texts, None, &opts)?;
        let inputs = batch.to_inputs(&self.parts.device)?;
        let hidden = self.model.forward(&inputs)?.last_hidden_state.to_dtype(DType::F32)?.to_vec3::<f32>()?;
        Ok(hidden.iter().zip(&batch.attention_mask).map(|(states, mask)| pooling.pool(states, mask)).collect())
    }
}
