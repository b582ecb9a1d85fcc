//! The feature-extraction pipeline (`transformers.FeatureExtractionPipeline`): the base
//! model's last hidden state per token, and sentence embeddings pooled as a
//! sentence-transformers `modules.json` + `1_Pooling/config.json` says (mean pooling when
//! there is none, or when the folders it names are missing), or as the caller chooses.

use autocandle_core::hub::ModelSource;
use autocandle_core::{Error, LoadOptions, Model, Result};
use candle_core::{DType, IndexOp};
use serde_json::Value;

use super::TextParts;
use crate::sentence_transformer::{l2_normalize, pool_row, PoolingModule};
use crate::tokenizer::read_json;
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
    /// The mean weighted by position (1, 2, ... from the first token).
    WeightedMean,
}

impl Pooling {
    /// The mode named as sentence-transformers' `pooling_mode` names it (`cls`, `max`, `mean`,
    /// `mean_sqrt_len_tokens`, `weightedmean`, `lasttoken`).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "cls" => Pooling::Cls,
            "max" => Pooling::Max,
            "mean" => Pooling::Mean,
            "mean_sqrt_len_tokens" => Pooling::MeanSqrtLen,
            "weightedmean" => Pooling::WeightedMean,
            "lasttoken" => Pooling::LastToken,
            _ => return None,
        })
    }
}

/// The pooling of a sentence-embedding model: one or more modes (concatenated in the order
/// given), then optional L2 normalisation.
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
    /// `Pooling` module (whose folder has `config.json`, in the 6.x `pooling_mode` form or the
    /// older `pooling_mode_*_tokens` one) and maybe a `Normalize` module. `None` when the repo
    /// has no `modules.json` or no pooling module. A Pooling folder without `config.json` is
    /// mean pooling, with a warning (the `modules.json` of some packaged copies names folders
    /// they do not ship). For the whole model (Dense layers, prompts) use
    /// [`SentenceTransformer`](crate::SentenceTransformer).
    pub fn from_pretrained(model: &str, opts: &LoadOptions) -> Result<Option<Self>> {
        let source = ModelSource::resolve(model, opts)?;
        let Some(modules_path) = source.optional_file("modules.json")? else { return Ok(None) };
        let modules = read_json(&modules_path)?;
        let modules =
            modules.as_array().ok_or_else(|| Error::input(format!("`{}` is not a list", modules_path.display())))?;
        let kind = |m: &Value, name: &str| {
            m.get("type").and_then(Value::as_str).is_some_and(|t| t.rsplit('.').next() == Some(name))
        };
        let normalize = modules.iter().any(|m| kind(m, "Normalize"));
        let Some(pooling) = modules.iter().find(|m| kind(m, "Pooling")) else { return Ok(None) };
        let folder = pooling.get("path").and_then(Value::as_str).unwrap_or("1_Pooling").trim_end_matches('/');
        let file = format!("{folder}/config.json");
        let Some(config_path) = source.optional_file(&file)? else {
            tracing::warn!(
                "`{file}` named by `{}` is missing: using mean pooling (pass a pooling to choose another)",
                modules_path.display()
            );
            return Ok(Some(Self { modes: vec![Pooling::Mean], normalize }));
        };
        let module = PoolingModule::from_config(&read_json(&config_path)?, &config_path)?;
        Ok(Some(Self { modes: module.modes, normalize }))
    }

    /// Pool one row of token states (`[seq][hidden]`) over its `mask`.
    fn pool(&self, states: &[Vec<f32>], mask: &[u32]) -> Vec<f32> {
        let mut out = pool_row(&self.modes, states, mask, 0);
        if self.normalize {
            l2_normalize(&mut out);
        }
        out
    }
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
        Self::with_pooling(model, opts, None)
    }

    /// [`FeatureExtractionPipeline::new_with`] with the pooling of
    /// [`FeatureExtractionPipeline::embed`] chosen by the caller: `Some` wins over the model's
    /// `modules.json`, which is then not read at all; `None` reads it (mean pooling without one).
    pub fn with_pooling(model: &str, opts: &LoadOptions, pooling: Option<PoolingConfig>) -> Result<Self> {
        super::traced("feature-extraction", model, || {
            let parts = TextParts::load(model, opts, false)?;
            let pooling = match pooling {
                Some(p) => p,
                None => PoolingConfig::from_pretrained(model, opts)?.unwrap_or_default(),
            };
            let model = AutoModel::from_pretrained_with(model, opts)?.value;
            Ok(Self { parts, model, pooling })
        })
    }

    /// The pooling [`FeatureExtractionPipeline::embed`] uses (the caller's, else from
    /// `modules.json`, else mean).
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
