//! `CrossEncoder`: sentence-transformers' reranker (`sentence_transformers.CrossEncoder`, 6.3)
//! on any sequence-classification model that `AutoModelForSequenceClassification` loads.
//!
//! A cross-encoder reads a pair of texts together and scores it: `predict` gives one score per
//! pair (a one-label model) or one vector per pair (several labels), `rank` sorts documents by
//! their score against a query. What sentence-transformers decides from the model folder is
//! decided here the same way:
//!
//! - **max_length**: `sentence_bert_config.json`'s `max_seq_length` (or its
//!   `processor_kwargs.model_max_length`) for a folder saved by `CrossEncoder.save`
//!   (`modules.json` + `config_sentence_transformers.json` with `model_type` `CrossEncoder`);
//!   otherwise the tokenizer's `model_max_length` capped at the config's
//!   `max_position_embeddings`. Pairs are truncated to it with `longest_first` (tokens come off
//!   the longer text first), as the tokenizer call of sentence-transformers does.
//! - **activation**: `config_sentence_transformers.json`'s `activation_fn` (saved models), else
//!   config.json's `sentence_transformers.activation_fn` (4.x/5.x), else config.json's legacy
//!   `sbert_ce_default_activation_function`, else Sigmoid for one label and Identity for several.
//!   Only `torch.` paths are taken from files (sentence-transformers needs `trust_remote_code`
//!   for others and falls back to the default with a warning; so does autocandle).
//! - **batches**: pairs sorted by length (characters, longest first) and cut into `batch_size`
//!   batches padded to their longest row; results come back in input order.
//! - **prompts**: `config_sentence_transformers.json`'s `prompts` and `default_prompt_name`; a
//!   prompt is prepended to the first text of each pair.
//!
//! ```
//! use autocandle::{CrossEncoder, PredictOptions, RankOptions};
//! # fn main() -> autocandle::Result<()> {
//! let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/cross-encoders/bert-one-label");
//! let model = CrossEncoder::from_pretrained(folder)?;
//! let scores = model.predict(&[("where is paris", "paris is in france"), ("where is paris", "a dog")], &PredictOptions::new())?;
//! assert_eq!(scores.len(), 2);
//! let ranked = model.rank("where is paris", &["a dog", "paris is in france"], &RankOptions::new().top_k(1))?;
//! assert_eq!(ranked.len(), 1);
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;

use autocandle_core::hub::ModelSource;
use autocandle_core::{Error, ForSequenceClassification, LoadOptions, PretrainedConfig, Result};
use candle_core::{DType, Device, Tensor, D};
use serde_json::Value;

use crate::tokenizer::read_json;
use crate::PreTrainedTokenizer;
use crate::{AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, BatchEncoding, EncodeOptions, Padding};

/// The activation applied to a cross-encoder's logits (the `torch.nn` module that
/// sentence-transformers' `activation_fn` names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ScoreActivation {
    /// `torch.nn.Identity`: the raw logits.
    Identity,
    /// `torch.nn.Sigmoid`: `1 / (1 + exp(-x))`, each logit on its own.
    Sigmoid,
    /// `torch.nn.Tanh`.
    Tanh,
    /// `torch.nn.ReLU`.
    Relu,
    /// `torch.nn.GELU` (the exact, erf form).
    Gelu,
    /// `torch.nn.SiLU`: `x * sigmoid(x)`.
    Silu,
    /// `torch.nn.Softmax()` (no `dim`: over the labels of each pair).
    Softmax,
}

/// `(variant, torch class name, module path sentence-transformers saves)`.
const ACTIVATIONS: &[(ScoreActivation, &str, &str)] = &[
    (ScoreActivation::Identity, "Identity", "torch.nn.modules.linear.Identity"),
    (ScoreActivation::Sigmoid, "Sigmoid", "torch.nn.modules.activation.Sigmoid"),
    (ScoreActivation::Tanh, "Tanh", "torch.nn.modules.activation.Tanh"),
    (ScoreActivation::Relu, "ReLU", "torch.nn.modules.activation.ReLU"),
    (ScoreActivation::Gelu, "GELU", "torch.nn.modules.activation.GELU"),
    (ScoreActivation::Silu, "SiLU", "torch.nn.modules.activation.SiLU"),
    (ScoreActivation::Softmax, "Softmax", "torch.nn.modules.activation.Softmax"),
];

impl ScoreActivation {
    /// The default of sentence-transformers: Sigmoid for one label, Identity for several.
    pub fn default_for(num_labels: usize) -> Self {
        if num_labels == 1 {
            Self::Sigmoid
        } else {
            Self::Identity
        }
    }

    /// The full name sentence-transformers saves (`torch.nn.modules.activation.Sigmoid`).
    pub fn torch_path(self) -> &'static str {
        ACTIVATIONS.iter().find(|(a, _, _)| *a == self).map_or("", |(_, _, path)| path)
    }

    /// The activation a `torch.nn` class path names: the saved full name
    /// (`torch.nn.modules.activation.Sigmoid`) or the short one (`torch.nn.Sigmoid`); `None`
    /// for another path or a class autocandle does not have.
    pub fn from_torch_path(path: &str) -> Option<Self> {
        let class = path.strip_prefix("torch.nn.")?.rsplit('.').next()?;
        ACTIVATIONS.iter().find(|(_, name, _)| *name == class).map(|(a, _, _)| *a)
    }

    /// Apply to `[batch, labels]` f32 logits.
    fn apply(self, logits: &Tensor) -> Result<Tensor> {
        Ok(match self {
            Self::Identity => logits.clone(),
            Self::Sigmoid => (logits.neg()?.exp()? + 1.0)?.recip()?,
            Self::Tanh => logits.tanh()?,
            Self::Relu => logits.relu()?,
            Self::Gelu => logits.gelu_erf()?,
            Self::Silu => logits.silu()?,
            Self::Softmax => softmax_rows(logits)?,
        })
    }
}

/// A name (`sigmoid`, `identity`, `none`, `tanh`, `relu`, `gelu`, `silu`, `softmax`, any case)
/// or a `torch.nn` class path.
impl std::str::FromStr for ScoreActivation {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        if let Some(a) = Self::from_torch_path(s) {
            return Ok(a);
        }
        let lower = s.to_ascii_lowercase();
        if lower == "none" {
            return Ok(Self::Identity);
        }
        ACTIVATIONS.iter().find(|(_, name, _)| name.to_ascii_lowercase() == lower).map(|(a, _, _)| *a).ok_or_else(
            || {
                Error::input(format!(
                    "unknown activation `{s}`: use one of {} (or `none`), or a `torch.nn` class path",
                    ACTIVATIONS.iter().map(|(_, n, _)| n.to_ascii_lowercase()).collect::<Vec<_>>().join(", ")
                ))
            },
        )
    }
}

/// Softmax over the last dimension of `[batch, labels]` logits.
fn softmax_rows(logits: &Tensor) -> Result<Tensor> {
    let shifted = logits.broadcast_sub(&logits.max_keepdim(D::Minus1)?)?;
    let exps = shifted.exp()?;
    Ok(exps.broadcast_div(&exps.sum_keepdim(D::Minus1)?)?)
}

/// What [`CrossEncoder::predict`] returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Predictions {
    /// One score per pair: a one-label model (`num_labels == 1`).
    Scores(Vec<f32>),
    /// One vector of `num_labels` scores per pair.
    Labels(Vec<Vec<f32>>),
}

impl Predictions {
    /// Number of pairs.
    pub fn len(&self) -> usize {
        match self {
            Self::Scores(s) => s.len(),
            Self::Labels(l) => l.len(),
        }
    }

    /// Whether there is no pair.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The scores of a one-label model; `None` for several labels.
    pub fn scores(&self) -> Option<&[f32]> {
        match self {
            Self::Scores(s) => Some(s),
            Self::Labels(_) => None,
        }
    }

    /// One row per pair (a one-element row per pair for a one-label model).
    pub fn into_rows(self) -> Vec<Vec<f32>> {
        match self {
            Self::Scores(s) => s.into_iter().map(|x| vec![x]).collect(),
            Self::Labels(l) => l,
        }
    }
}

/// Options of [`CrossEncoder::predict`] (sentence-transformers' `predict` arguments).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PredictOptions {
    /// Pairs per forward pass (default 32).
    pub batch_size: usize,
    /// Replaces the model's activation for this call (`activation_fn`).
    pub activation: Option<ScoreActivation>,
    /// Softmax over the labels after the activation (`apply_softmax`; several labels only).
    pub apply_softmax: bool,
    /// A prompt prepended to the first text of each pair (`prompt`); wins over `prompt_name`.
    pub prompt: Option<String>,
    /// The name of one of the model's prompts (`prompt_name`).
    pub prompt_name: Option<String>,
}

impl Default for PredictOptions {
    fn default() -> Self {
        Self { batch_size: 32, activation: None, apply_softmax: false, prompt: None, prompt_name: None }
    }
}

impl PredictOptions {
    /// The defaults: batches of 32, the model's activation, no softmax, the default prompt.
    pub fn new() -> Self {
        Self::default()
    }

    /// Pairs per forward pass.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// The activation for this call instead of the model's.
    pub fn activation(mut self, activation: ScoreActivation) -> Self {
        self.activation = Some(activation);
        self
    }

    /// Softmax over the labels (models with several labels).
    pub fn apply_softmax(mut self, yes: bool) -> Self {
        self.apply_softmax = yes;
        self
    }

    /// A prompt text prepended to the first text of each pair.
    pub fn prompt(mut self, prompt: impl Into<String>) -> Self {
        self.prompt = Some(prompt.into());
        self
    }

    /// One of the model's prompts by name.
    pub fn prompt_name(mut self, name: impl Into<String>) -> Self {
        self.prompt_name = Some(name.into());
        self
    }
}

/// Options of [`CrossEncoder::rank`] (sentence-transformers' `rank` arguments).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct RankOptions {
    /// Keep the `top_k` best documents; `None` keeps them all.
    pub top_k: Option<usize>,
    /// Put each document's text in its result (`return_documents`).
    pub return_documents: bool,
    /// How the scores are computed (batch size, activation, prompt; `apply_softmax` is unused).
    pub predict: PredictOptions,
}

impl RankOptions {
    /// Every document, without its text, scored with the default [`PredictOptions`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Keep the `k` best documents.
    pub fn top_k(mut self, k: impl Into<Option<usize>>) -> Self {
        self.top_k = k.into();
        self
    }

    /// Put the documents' texts in the results.
    pub fn return_documents(mut self, yes: bool) -> Self {
        self.return_documents = yes;
        self
    }

    /// How the scores are computed.
    pub fn predict(mut self, predict: PredictOptions) -> Self {
        self.predict = predict;
        self
    }
}

/// One ranked document (`{"corpus_id", "score", "text"}`).
#[derive(Debug, Clone, PartialEq)]
pub struct RankedDocument {
    /// The document's index in the list given to [`CrossEncoder::rank`].
    pub corpus_id: usize,
    /// Its score against the query (after the activation).
    pub score: f32,
    /// Its text, with [`RankOptions::return_documents`].
    pub text: Option<String>,
}

/// What the sentence-transformers files of a folder say (all optional).
#[derive(Debug, Default)]
struct StSettings {
    max_length: Option<usize>,
    do_lower_case: bool,
    activation_path: Option<String>,
    prompts: BTreeMap<String, String>,
    default_prompt_name: Option<String>,
}

/// A reranker: a sequence-classification model and its tokenizer, scoring text pairs
/// (`sentence_transformers.CrossEncoder`). See the module documentation for what is read from
/// the folder.
#[derive(Debug)]
pub struct CrossEncoder {
    tokenizer: PreTrainedTokenizer,
    model: Box<dyn ForSequenceClassification>,
    config: PretrainedConfig,
    num_labels: usize,
    max_length: Option<usize>,
    activation: ScoreActivation,
    prompts: BTreeMap<String, String>,
    default_prompt_name: Option<String>,
    do_lower_case: bool,
    token_type_ids: bool,
    device: Device,
}

/// Tokenizer classes whose `model_input_names` lack `token_type_ids` (Python passes none).
const NO_TOKEN_TYPES: &[&str] =
    &["Roberta", "XLMRoberta", "DistilBert", "Camembert", "Bart", "MPNet", "Longformer", "MBart", "Bloom"];

impl CrossEncoder {
    /// Load the cross-encoder at `model` (a Hub repo id or a folder).
    pub fn from_pretrained(model: &str) -> Result<Self> {
        Self::from_pretrained_with(model, &LoadOptions::default())
    }

    /// [`CrossEncoder::from_pretrained`] with loading options (device, dtype, revision,
    /// cache, offline, ...).
    ///
    /// Errors: a model without a trained sequence-classification head (its `architectures`
    /// name no `*ForSequenceClassification`, or the checkpoint lacks the head's weights:
    /// sentence-transformers would add an untrained head), a causal-LM reranker (scored by
    /// sentence-transformers' `LogitScore` module, not implemented here), a `modules.json`
    /// with other modules than one Transformer, an activation path autocandle does not know.
    pub fn from_pretrained_with(model: &str, opts: &LoadOptions) -> Result<Self> {
        let _span = tracing::info_span!("load_cross_encoder", model).entered();
        let started = std::time::Instant::now();
        let config = AutoConfig::from_pretrained_with(model, opts)?.value;
        let architectures = config.architectures();
        if architectures.first().is_some_and(|a| a.ends_with("ForCausalLM")) {
            return Err(Error::Unsupported(format!(
                "`{model}` is a causal language model ({}): sentence-transformers scores such rerankers with its \
                 LogitScore module (the logits of `yes` and `no`), which autocandle's CrossEncoder does not \
                 implement; use a sequence-classification reranker",
                architectures.join(", ")
            )));
        }
        if !architectures.is_empty() && !architectures.iter().any(|a| a.ends_with("ForSequenceClassification")) {
            return Err(Error::input(format!(
                "`{model}` has no sequence-classification head (config.json's architectures: {}): a cross-encoder \
                 needs a model trained for sequence classification, such as cross-encoder/ms-marco-MiniLM-L6-v2 \
                 (sentence-transformers would add an untrained one-label head, whose scores mean nothing)",
                architectures.join(", ")
            )));
        }
        let source = ModelSource::resolve(model, opts)?;
        let st = read_st_settings(&source, model)?;
        if let Some(name) = st.default_prompt_name.as_deref().filter(|n| !st.prompts.contains_key(*n)) {
            return Err(Error::input(format!(
                "`{model}`: the default prompt name `{name}` of config_sentence_transformers.json is not one of its \
                 prompts ({}); fix that file",
                st.prompts.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
            )));
        }
        let tokenizer = AutoTokenizer::from_pretrained_with(model, opts)?;
        let loaded = AutoModelForSequenceClassification::from_pretrained_with(model, opts)?;
        if !loaded.report.missing_keys.is_empty() {
            return Err(Error::input(format!(
                "`{model}` has no trained sequence-classification head: the checkpoint lacks {}; a cross-encoder \
                 needs a model trained for sequence classification",
                loaded.report.missing_keys.join(", ")
            )));
        }
        let num_labels = crate::pipelines::config_labels(&config).len();
        let max_length = st.max_length.or_else(|| capped_max_length(tokenizer.model_max_length(), &config));
        let activation = pick_activation(st.activation_path.as_deref(), &config, num_labels)?;
        let token_type_ids = passes_token_type_ids(tokenizer.settings());
        tracing::info!(
            num_labels,
            max_length,
            activation = activation.torch_path(),
            elapsed = ?started.elapsed(),
            "cross-encoder loaded"
        );
        Ok(Self {
            tokenizer,
            model: loaded.value,
            config,
            num_labels,
            max_length,
            activation,
            prompts: st.prompts,
            default_prompt_name: st.default_prompt_name,
            do_lower_case: st.do_lower_case,
            token_type_ids,
            device: opts.device.clone(),
        })
    }

    /// The number of labels: one score per pair when 1, a vector per pair otherwise.
    pub fn num_labels(&self) -> usize {
        self.num_labels
    }

    /// The longest pair in tokens (special tokens included); longer pairs are truncated.
    /// `None`: no limit.
    pub fn max_length(&self) -> Option<usize> {
        self.max_length
    }

    /// Set the length pairs are truncated to (`CrossEncoder(max_length=...)`,
    /// `model.max_seq_length = ...`).
    pub fn set_max_length(&mut self, max_length: Option<usize>) {
        self.max_length = max_length;
    }

    /// The activation applied to the logits.
    pub fn activation(&self) -> ScoreActivation {
        self.activation
    }

    /// Replace the activation (`CrossEncoder(activation_fn=...)`).
    pub fn set_activation(&mut self, activation: ScoreActivation) {
        self.activation = activation;
    }

    /// The prompts by name (`config_sentence_transformers.json`'s `prompts`).
    pub fn prompts(&self) -> &BTreeMap<String, String> {
        &self.prompts
    }

    /// Add or replace a prompt.
    pub fn set_prompt(&mut self, name: impl Into<String>, text: impl Into<String>) {
        self.prompts.insert(name.into(), text.into());
    }

    /// The prompt used when a call names none (`default_prompt_name`).
    pub fn default_prompt_name(&self) -> Option<&str> {
        self.default_prompt_name.as_deref()
    }

    /// Set the prompt used when a call names none; it must be one of [`Self::prompts`].
    pub fn set_default_prompt_name(&mut self, name: Option<String>) -> Result<()> {
        if let Some(name) = &name {
            if !self.prompts.contains_key(name) {
                return Err(self.unknown_prompt("default prompt name", name));
            }
        }
        self.default_prompt_name = name;
        Ok(())
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &PreTrainedTokenizer {
        &self.tokenizer
    }

    /// The model's config.
    pub fn config(&self) -> &PretrainedConfig {
        &self.config
    }

    /// The model.
    pub fn model(&self) -> &dyn ForSequenceClassification {
        self.model.as_ref()
    }

    /// The token ids the model sees for `pairs`, in order, without a prompt: truncated to
    /// [`Self::max_length`] (`longest_first`) and padded to the longest row
    /// (sentence-transformers' `preprocess`).
    pub fn tokenize(&self, pairs: &[(&str, &str)]) -> Result<BatchEncoding> {
        self.encode(pairs, None)
    }

    /// Score each pair (`predict`): [`Predictions::Scores`] for a one-label model, else one
    /// vector of [`Self::num_labels`] scores per pair; in the order of `pairs`. No pairs give
    /// an empty result.
    pub fn predict(&self, pairs: &[(&str, &str)], opts: &PredictOptions) -> Result<Predictions> {
        if opts.batch_size == 0 {
            return Err(Error::input("batch_size must be a positive integer, got 0"));
        }
        let prompt = self.resolve_prompt(opts)?;
        let activation = opts.activation.unwrap_or(self.activation);
        // Longest first by characters, as sentence-transformers sorts (stable for ties).
        let mut order: Vec<usize> = (0..pairs.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(pairs[i].0.chars().count() + pairs[i].1.chars().count()));
        let mut rows: Vec<Vec<f32>> = vec![Vec::new(); pairs.len()];
        for chunk in order.chunks(opts.batch_size) {
            let batch: Vec<(&str, &str)> = chunk.iter().map(|&i| pairs[i]).collect();
            let scores = self.score_batch(&batch, prompt.as_deref(), activation, opts.apply_softmax)?;
            for (&i, row) in chunk.iter().zip(scores) {
                rows[i] = row;
            }
        }
        Ok(if self.num_labels == 1 {
            Predictions::Scores(rows.into_iter().map(|r| r.first().copied().unwrap_or(f32::NAN)).collect())
        } else {
            Predictions::Labels(rows)
        })
    }

    /// Rank `documents` by their score against `query`, best first (`rank`); ties keep the
    /// documents' order. Only for one-label models, as sentence-transformers.
    pub fn rank(&self, query: &str, documents: &[&str], opts: &RankOptions) -> Result<Vec<RankedDocument>> {
        if self.num_labels != 1 {
            return Err(Error::input(format!(
                "CrossEncoder.rank() only works for models with num_labels=1 (this one has {}): use \
                 CrossEncoder::predict with the (query, document) pairs instead",
                self.num_labels
            )));
        }
        let pairs: Vec<(&str, &str)> = documents.iter().map(|d| (query, *d)).collect();
        let predict = PredictOptions { apply_softmax: false, ..opts.predict.clone() };
        let scores = match self.predict(&pairs, &predict)? {
            Predictions::Scores(s) => s,
            Predictions::Labels(l) => l.into_iter().map(|r| r.first().copied().unwrap_or(f32::NAN)).collect(),
        };
        let mut results: Vec<RankedDocument> = scores
            .into_iter()
            .enumerate()
            .map(|(corpus_id, score)| RankedDocument {
                corpus_id,
                score,
                text: opts.return_documents.then(|| documents[corpus_id].to_owned()),
            })
            .collect();
        // A stable sort, descending: Python's `sorted(..., reverse=True)` keeps ties in order.
        results.sort_by(|a, b| b.score.total_cmp(&a.score));
        if let Some(k) = opts.top_k {
            results.truncate(k);
        }
        Ok(results)
    }

    fn unknown_prompt(&self, what: &str, name: &str) -> Error {
        Error::input(format!(
            "{what} `{name}` is not one of the model's prompts ({})",
            if self.prompts.is_empty() {
                "it has none".to_owned()
            } else {
                self.prompts.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ")
            }
        ))
    }

    /// `_resolve_prompt`: the explicit prompt, else the named one, else the default one.
    fn resolve_prompt(&self, opts: &PredictOptions) -> Result<Option<String>> {
        if let Some(prompt) = &opts.prompt {
            if opts.prompt_name.is_some() {
                tracing::warn!("both a prompt and a prompt name were given: the prompt is used");
            }
            return Ok(Some(prompt.clone()));
        }
        if let Some(name) = &opts.prompt_name {
            return self.prompts.get(name).cloned().map(Some).ok_or_else(|| self.unknown_prompt("prompt name", name));
        }
        Ok(self.default_prompt_name.as_ref().and_then(|n| self.prompts.get(n)).cloned())
    }

    /// Tokenize pairs: prompt before the first text, lowercased with `do_lower_case`,
    /// truncated to `max_length` (longest first), padded to the longest row.
    fn encode(&self, pairs: &[(&str, &str)], prompt: Option<&str>) -> Result<BatchEncoding> {
        let prepare = |text: String| if self.do_lower_case { text.to_lowercase() } else { text };
        let firsts: Vec<String> =
            pairs.iter().map(|(a, _)| prepare(format!("{}{a}", prompt.unwrap_or_default()))).collect();
        let seconds: Vec<String> = pairs.iter().map(|(_, b)| prepare((*b).to_owned())).collect();
        let firsts: Vec<&str> = firsts.iter().map(String::as_str).collect();
        let seconds: Vec<&str> = seconds.iter().map(String::as_str).collect();
        let options = EncodeOptions::new()
            .padding(Padding::Longest)
            .truncation(self.max_length.is_some())
            .max_length(self.max_length);
        self.tokenizer.encode_batch_with(&firsts, Some(&seconds), &options)
    }

    /// One batch through the model: `[batch][num_labels]` scores after the activation (and
    /// softmax when asked and there are several labels).
    fn score_batch(
        &self,
        pairs: &[(&str, &str)],
        prompt: Option<&str>,
        activation: ScoreActivation,
        apply_softmax: bool,
    ) -> Result<Vec<Vec<f32>>> {
        let encoding = self.encode(pairs, prompt)?;
        let mut inputs = encoding.to_inputs(&self.device)?;
        if !self.token_type_ids {
            inputs.token_type_ids = None;
        }
        let logits = self.model.forward(&inputs)?.logits.to_dtype(DType::F32)?;
        if logits.dims() != [pairs.len(), self.num_labels] {
            return Err(Error::input(format!(
                "the model returned logits of shape {:?} for {} pairs, but its config has {} labels",
                logits.dims(),
                pairs.len(),
                self.num_labels
            )));
        }
        let mut scores = activation.apply(&logits)?;
        if apply_softmax && self.num_labels > 1 {
            scores = softmax_rows(&scores)?;
        }
        Ok(scores.to_vec2::<f32>()?)
    }
}

/// Whether the tokenizer hands `token_type_ids` to the model, as `transformers` decides it
/// (`model_input_names`: from tokenizer_config.json, else the tokenizer class's).
fn passes_token_type_ids(settings: &Value) -> bool {
    if let Some(names) = settings.get("model_input_names").and_then(Value::as_array) {
        return names.iter().any(|n| n.as_str() == Some("token_type_ids"));
    }
    let class = settings.get("tokenizer_class").and_then(Value::as_str).unwrap_or_default();
    let class = class.strip_suffix("Fast").unwrap_or(class);
    let base = class.strip_suffix("Tokenizer").unwrap_or(class);
    !NO_TOKEN_TYPES.contains(&base)
}

/// The tokenizer's `model_max_length` capped at the config's `max_position_embeddings`
/// (unless that is -1), as sentence-transformers' Transformer module does.
fn capped_max_length(tokenizer_max: Option<usize>, config: &PretrainedConfig) -> Option<usize> {
    let from_arch = config.arch().and_then(|a| a.to_json().ok());
    let positions = config
        .get("max_position_embeddings")
        .or_else(|| from_arch.as_ref().and_then(|v| v.get("max_position_embeddings")))
        .and_then(Value::as_i64);
    let positions = positions.filter(|p| *p > 0).and_then(|p| usize::try_from(p).ok());
    match (tokenizer_max, positions) {
        (Some(t), Some(p)) => Some(t.min(p)),
        (t, p) => t.or(p),
    }
}

/// The activation from the files: the saved `activation_fn` of a CrossEncoder folder, else
/// config.json's `sentence_transformers.activation_fn`, else its legacy
/// `sbert_ce_default_activation_function`, else the default for `num_labels`.
fn pick_activation(saved: Option<&str>, config: &PretrainedConfig, num_labels: usize) -> Result<ScoreActivation> {
    if let Some(activation) = saved.map(resolve_activation_path).transpose()?.flatten() {
        return Ok(activation);
    }
    let from_config = match config.get("sentence_transformers").and_then(|st| st.get("activation_fn")) {
        Some(value) => value.as_str(),
        None => config.get("sbert_ce_default_activation_function").and_then(Value::as_str),
    };
    Ok(from_config
        .map(resolve_activation_path)
        .transpose()?
        .flatten()
        .unwrap_or(ScoreActivation::default_for(num_labels)))
}

/// `_resolve_activation_fn`: a `torch.` path is trusted (and must be one autocandle has);
/// another path is ignored with a warning, as sentence-transformers does without
/// `trust_remote_code`.
fn resolve_activation_path(path: &str) -> Result<Option<ScoreActivation>> {
    if !path.starts_with("torch.") {
        tracing::warn!(
            activation_fn = path,
            "activation function path is not trusted (not `torch.`): using the default activation function, as \
             sentence-transformers does without trust_remote_code"
        );
        return Ok(None);
    }
    ScoreActivation::from_torch_path(path).map(Some).ok_or_else(|| {
        Error::Unsupported(format!(
            "the cross-encoder's activation `{path}`: autocandle has {}; set another one with \
             CrossEncoder::set_activation",
            ACTIVATIONS.iter().map(|(_, n, _)| format!("torch.nn.{n}")).collect::<Vec<_>>().join(", ")
        ))
    })
}

/// The sentence-transformers files of a folder: nothing without `modules.json`, or for a
/// `modules.json` of another model type (sentence-transformers then builds its default
/// modules from the `transformers` files alone); the Transformer module's settings and
/// `config_sentence_transformers.json`'s for a saved CrossEncoder.
fn read_st_settings(source: &ModelSource, model: &str) -> Result<StSettings> {
    let Some(modules_path) = source.optional_file("modules.json")? else { return Ok(StSettings::default()) };
    let st_config = match source.optional_file("config_sentence_transformers.json")? {
        Some(p) => read_json(&p)?,
        None => Value::Null,
    };
    let model_type = st_config.get("model_type").and_then(Value::as_str).unwrap_or("SentenceTransformer");
    if model_type != "CrossEncoder" {
        tracing::warn!(
            model,
            model_type,
            "modules.json belongs to another kind of sentence-transformers model: loading the transformers \
             sequence-classification model alone, as sentence-transformers converts it"
        );
        return Ok(StSettings::default());
    }
    let modules = read_json(&modules_path)?;
    let modules = modules
        .as_array()
        .ok_or_else(|| Error::input(format!("`{}` must hold a list of modules", modules_path.display())))?;
    let kind = |m: &Value| m.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
    let first_is_transformer = modules.first().is_some_and(|m| kind(m).ends_with("Transformer"));
    if modules.len() != 1 || !first_is_transformer {
        return Err(Error::Unsupported(format!(
            "`{}` lists the modules [{}]: autocandle's CrossEncoder runs one Transformer module (a \
             sequence-classification model), not other sentence-transformers modules",
            modules_path.display(),
            modules.iter().map(kind).collect::<Vec<_>>().join(", ")
        )));
    }
    let folder = modules[0].get("path").and_then(Value::as_str).unwrap_or_default().trim_matches('/');
    if !folder.is_empty() {
        return Err(Error::Unsupported(format!(
            "`{}` puts the Transformer module in the folder `{folder}`: load that folder (the `subfolder` load \
             option) instead",
            modules_path.display()
        )));
    }
    let mut module_config = Value::Null;
    for name in [
        "sentence_bert_config.json",
        "sentence_roberta_config.json",
        "sentence_distilbert_config.json",
        "sentence_camembert_config.json",
        "sentence_albert_config.json",
        "sentence_xlm-roberta_config.json",
        "sentence_xlnet_config.json",
    ] {
        if let Some(p) = source.optional_file(name)? {
            module_config = read_json(&p)?;
            break;
        }
    }
    let task = module_config.get("transformer_task").and_then(Value::as_str).unwrap_or("feature-extraction");
    if task != "sequence-classification" {
        return Err(Error::Unsupported(format!(
            "`{model}`: its Transformer module has transformer_task `{task}`; autocandle's CrossEncoder runs \
             sequence-classification models only"
        )));
    }
    let processor_kwargs = module_config.get("processor_kwargs").or_else(|| module_config.get("tokenizer_args"));
    let max_length = processor_kwargs
        .and_then(|p| p.get("model_max_length"))
        .or_else(|| module_config.get("max_seq_length"))
        .and_then(Value::as_u64)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let prompts = st_config
        .get("prompts")
        .and_then(Value::as_object)
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned()))).collect())
        .unwrap_or_default();
    Ok(StSettings {
        max_length,
        do_lower_case: module_config.get("do_lower_case").and_then(Value::as_bool).unwrap_or(false),
        activation_path: st_config.get("activation_fn").and_then(Value::as_str).map(str::to_owned),
        prompts,
        default_prompt_name: st_config.get("default_prompt_name").and_then(Value::as_str).map(str::to_owned),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn activations_parse_from_torch_paths_and_names() {
        assert_eq!(
            ScoreActivation::from_torch_path("torch.nn.modules.activation.Sigmoid"),
            Some(ScoreActivation::Sigmoid)
        );
        assert_eq!(
            ScoreActivation::from_torch_path("torch.nn.modules.linear.Identity"),
            Some(ScoreActivation::Identity)
        );
        assert_eq!(ScoreActivation::from_torch_path("torch.nn.Tanh"), Some(ScoreActivation::Tanh));
        assert_eq!(ScoreActivation::from_torch_path("torch.nn.modules.activation.Hardtanh"), None);
        assert_eq!(ScoreActivation::from_torch_path("mypkg.Sigmoid"), None);
        assert_eq!("SIGMOID".parse::<ScoreActivation>().ok(), Some(ScoreActivation::Sigmoid));
        assert_eq!("none".parse::<ScoreActivation>().ok(), Some(ScoreActivation::Identity));
        let err = "hardtanh".parse::<ScoreActivation>().unwrap_err().to_string();
        assert!(err.contains("unknown activation `hardtanh`") && err.contains("sigmoid"), "{err}");
        for (a, _, path) in ACTIVATIONS {
            assert_eq!(ScoreActivation::from_torch_path(path), Some(*a));
            assert_eq!(a.torch_path(), *path);
        }
        assert_eq!(ScoreActivation::default_for(1), ScoreActivation::Sigmoid);
        assert_eq!(ScoreActivation::default_for(3), ScoreActivation::Identity);
    }

    #[test]
    fn activation_paths_are_trusted_only_under_torch() {
        assert_eq!(resolve_activation_path("torch.nn.modules.activation.Tanh").ok(), Some(Some(ScoreActivation::Tanh)));
        // Not `torch.`: ignored (the default applies), as without trust_remote_code.
        assert_eq!(resolve_activation_path("my_package.activations.Scaled").ok(), Some(None));
        let err = resolve_activation_path("torch.nn.modules.activation.Hardshrink").unwrap_err().to_string();
        assert!(err.contains("Hardshrink") && err.contains("set_activation"), "{err}");
    }

    #[test]
    fn activations_compute_like_torch() {
        let x = Tensor::new(&[[0.0f32, 1.0, -2.0]], &Device::Cpu).unwrap();
        let get = |a: ScoreActivation| a.apply(&x).unwrap().to_vec2::<f32>().unwrap().remove(0);
        let close = |got: Vec<f32>, want: [f32; 3]| {
            assert!(got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-6), "{got:?} vs {want:?}");
        };
        close(get(ScoreActivation::Identity), [0.0, 1.0, -2.0]);
        close(get(ScoreActivation::Sigmoid), [0.5, 0.731_058_6, 0.119_202_92]);
        close(get(ScoreActivation::Tanh), [0.0, 0.761_594_2, -0.964_027_6]);
        close(get(ScoreActivation::Relu), [0.0, 1.0, 0.0]);
        close(get(ScoreActivation::Gelu), [0.0, 0.841_344_7, -0.045_500_26]);
        close(get(ScoreActivation::Silu), [0.0, 0.731_058_6, -0.238_405_84]);
        close(get(ScoreActivation::Softmax), [0.259_496_4, 0.705_384_5, 0.035_119_11]);
    }

    #[test]
    fn token_type_ids_follow_model_input_names() {
        let settings = |v: Value| v;
        assert!(passes_token_type_ids(&settings(serde_json::json!({"tokenizer_class": "BertTokenizer"}))));
        assert!(!passes_token_type_ids(&settings(serde_json::json!({"tokenizer_class": "XLMRobertaTokenizerFast"}))));
        assert!(!passes_token_type_ids(&settings(serde_json::json!({"tokenizer_class": "RobertaTokenizer"}))));
        assert!(!passes_token_type_ids(&settings(
            serde_json::json!({"tokenizer_class": "PreTrainedTokenizerFast", "model_input_names": ["input_ids", "attention_mask"]})
        )));
        assert!(passes_token_type_ids(&settings(serde_json::json!({}))));
    }

    #[test]
    fn predictions_shapes() {
        let one = Predictions::Scores(vec![0.5, 0.25]);
        assert_eq!((one.len(), one.scores()), (2, Some(&[0.5f32, 0.25][..])));
        assert_eq!(one.into_rows(), vec![vec![0.5], vec![0.25]]);
        let many = Predictions::Labels(vec![vec![0.1, 0.9]]);
        assert_eq!((many.len(), many.scores(), many.is_empty()), (1, None, false));
    }
}
