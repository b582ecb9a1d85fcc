//! `SentenceTransformer`: sentence-transformers' model (`sentence_transformers.SentenceTransformer`,
//! 6.3) on any base model `AutoModel` loads: `modules.json` run in order (Transformer, Pooling,
//! Dense, Normalize), `config_sentence_transformers.json` (prompts, similarity function,
//! Matryoshka `truncate_dim`), and `encode` in length-sorted batches.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::Path;

use autocandle_core::hub::{check_relative_path, ModelSource};
use autocandle_core::weights::Checkpoint;
use autocandle_core::{Activation, Error, LoadOptions, Model, Result};
use candle_core::{DType, Device, Tensor};
use serde_json::Value;
use tokenizers::normalizers::{Lowercase, NormalizerWrapper, Sequence};

use crate::{AutoConfig, AutoModel, AutoTokenizer, EncodeOptions, Padding, PreTrainedTokenizer};

use crate::pipelines::Pooling;
use crate::tokenizer::read_json;

/// The module types [`SentenceTransformer`] runs, as `modules.json` names them (the last
/// segment of the `type`).
pub const SUPPORTED_MODULES: &[&str] = &["Transformer", "Pooling", "Dense", "Normalize", "Dropout"];

fn invalid(path: &Path, message: impl std::fmt::Display) -> Error {
    Error::InvalidConfig {
        model_type: "sentence-transformers".to_owned(),
        message: format!("`{}`: {message}", path.display()),
    }
}

/// How [`SentenceTransformer::similarity`] compares embeddings (`similarity_fn_name`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SimilarityFunction {
    /// Cosine similarity (the default).
    #[default]
    Cosine,
    /// Dot product.
    Dot,
    /// Negative Euclidean distance.
    Euclidean,
    /// Negative Manhattan distance.
    Manhattan,
}

impl SimilarityFunction {
    /// Every function, in sentence-transformers' order.
    pub const ALL: [SimilarityFunction; 4] = [Self::Cosine, Self::Dot, Self::Euclidean, Self::Manhattan];

    /// The name sentence-transformers gives it (`cosine`, `dot`, `euclidean`, `manhattan`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Cosine => "cosine",
            Self::Dot => "dot",
            Self::Euclidean => "euclidean",
            Self::Manhattan => "manhattan",
        }
    }

    /// The similarity of two vectors of equal length.
    pub fn score(self, a: &[f32], b: &[f32]) -> f32 {
        match self {
            Self::Cosine => {
                // torch.nn.functional.normalize on each side, then the dot product.
                let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                let (na, nb) = (norm(a), norm(b));
                a.iter().zip(b).map(|(x, y)| (x / na) * (y / nb)).sum()
            }
            Self::Dot => a.iter().zip(b).map(|(x, y)| x * y).sum(),
            Self::Euclidean => -a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum::<f32>().sqrt(),
            Self::Manhattan => -a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f32>(),
        }
    }
}

impl std::str::FromStr for SimilarityFunction {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::ALL.into_iter().find(|f| f.name() == s || (s == "dot_product" && *f == Self::Dot)).ok_or_else(|| {
            Error::input(format!("unknown similarity function `{s}`: use cosine, dot, euclidean or manhattan"))
        })
    }
}

impl std::fmt::Display for SimilarityFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The Pooling module (`1_Pooling/config.json`): the modes, concatenated in the given order,
/// and whether prompt tokens take part.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolingModule {
    /// The modes, their vectors concatenated in this order.
    pub modes: Vec<Pooling>,
    /// `include_prompt`: `false` leaves the prompt's tokens out of the pooling.
    pub include_prompt: bool,
}

impl PoolingModule {
    /// Read a Pooling config: the 6.x form (`pooling_mode`: a name or a list of names,
    /// `include_prompt`) or the older one (`pooling_mode_*_tokens` switches, concatenated in
    /// the fixed order cls, max, mean, mean-sqrt-len, weighted mean, last token; none on is
    /// mean, as sentence-transformers reads it).
    pub fn from_config(config: &Value, path: &Path) -> Result<Self> {
        if !config.is_object() {
            return Err(invalid(path, "the Pooling config is not a JSON object"));
        }
        let mode_of = |name: &Value| -> Result<Pooling> {
            let name = name.as_str().ok_or_else(|| invalid(path, format!("pooling mode {name} is not a string")))?;
            Pooling::from_name(name).ok_or_else(|| {
                invalid(
                    path,
                    format!(
                        "unknown pooling mode `{name}`; valid modes: cls, max, mean, mean_sqrt_len_tokens, weightedmean, \
                         lasttoken"
                    ),
                )
            })
        };
        let modes = match config.get("pooling_mode") {
            Some(Value::Array(names)) => names.iter().map(mode_of).collect::<Result<Vec<_>>>()?,
            Some(name @ Value::String(_)) => vec![mode_of(name)?],
            Some(other) => {
                return Err(invalid(path, format!("`pooling_mode` is {other}, not a name or a list of names")))
            }
            None => {
                let on = |key: &str| config.get(key).and_then(Value::as_bool).unwrap_or(false);
                let modes: Vec<Pooling> = [
                    ("pooling_mode_cls_token", Pooling::Cls),
                    ("pooling_mode_max_tokens", Pooling::Max),
                    ("pooling_mode_mean_tokens", Pooling::Mean),
                    ("pooling_mode_mean_sqrt_len_tokens", Pooling::MeanSqrtLen),
                    ("pooling_mode_weightedmean_tokens", Pooling::WeightedMean),
                    ("pooling_mode_lasttoken", Pooling::LastToken),
                ]
                .into_iter()
                .filter(|(key, _)| on(key))
                .map(|(_, mode)| mode)
                .collect();
                if modes.is_empty() {
                    vec![Pooling::Mean]
                } else {
                    modes
                }
            }
        };
        if modes.is_empty() {
            return Err(invalid(path, "`pooling_mode` is an empty list: name at least one mode"));
        }
        let include_prompt = match config.get("include_prompt") {
            None | Some(Value::Null) => true,
            Some(v) => v.as_bool().ok_or_else(|| invalid(path, format!("`include_prompt` is {v}, not a boolean")))?,
        };
        Ok(Self { modes, include_prompt })
    }

    /// Pool each row of `states` (`[batch][seq][hidden]`) over its `mask`; `prompt_length`
    /// tokens after the first attended one are left out when `include_prompt` is off.
    pub fn pool(&self, states: &[Vec<Vec<f32>>], masks: &[Vec<u32>], prompt_length: usize) -> Vec<Vec<f32>> {
        states
            .iter()
            .zip(masks)
            .map(|(rows, mask)| {
                let exclude = if self.include_prompt { 0 } else { prompt_length };
                pool_row(&self.modes, rows, mask, exclude)
            })
            .collect()
    }
}

/// Pool one row as sentence-transformers' `Pooling._forward_padded` does, the `exclude`
/// tokens from the first attended position on masked out (`_exclude_prompt_from_mask`).
pub(crate) fn pool_row(modes: &[Pooling], states: &[Vec<f32>], mask: &[u32], exclude: usize) -> Vec<f32> {
    let hidden = states.first().map_or(0, Vec::len);
    let seq = states.len().min(mask.len());
    if seq == 0 {
        return Vec::new();
    }
    // First attended position of the original mask (torch's argmax: 0 when none is).
    let first = mask.iter().position(|m| *m != 0).unwrap_or(0);
    let mask: Vec<bool> = (0..seq).map(|i| mask[i] != 0 && i >= first + exclude).collect();
    let kept = || (0..seq).filter(|i| mask[*i]);
    let count = kept().count() as f32;
    let sum = || {
        let mut s = vec![0f32; hidden];
        for i in kept() {
            s.iter_mut().zip(&states[i]).for_each(|(a, x)| *a += x);
        }
        s
    };
    let mut out = Vec::with_capacity(hidden * modes.len());
    for mode in modes {
        match mode {
            Pooling::Cls => {
                let i = mask.iter().position(|m| *m).unwrap_or(0);
                out.extend_from_slice(&states[i.min(seq.saturating_sub(1))]);
            }
            Pooling::Max => {
                out.extend((0..hidden).map(|j| kept().map(|i| states[i][j]).fold(f32::NEG_INFINITY, f32::max)))
            }
            Pooling::Mean => out.extend(sum().into_iter().map(|x| x / count.max(1e-9))),
            Pooling::MeanSqrtLen => out.extend(sum().into_iter().map(|x| x / count.max(1e-9).sqrt())),
            Pooling::WeightedMean => {
                // Weights 1, 2, ... from the first attended position of the original mask.
                let mut s = vec![0f32; hidden];
                let mut total = 0f32;
                for i in kept() {
                    let w = (i + 1 - first) as f32;
                    total += w;
                    s.iter_mut().zip(&states[i]).for_each(|(a, x)| *a += x * w);
                }
                out.extend(s.into_iter().map(|x| x / total.max(1e-9)));
            }
            Pooling::LastToken => match mask.iter().rposition(|m| *m) {
                Some(i) => out.extend_from_slice(&states[i]),
                None => out.extend(std::iter::repeat_n(0.0, hidden)),
            },
        }
    }
    out
}

/// `torch.nn.functional.normalize(x, p=2)`: `x / max(||x||, 1e-12)`.
pub(crate) fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= norm);
}

/// The Dense module (`2_Dense/`): `activation(x W^T + b)`, plus `x` (or a projection of it)
/// with `use_residual`.
#[derive(Debug, Clone)]
pub struct DenseModule {
    /// `in_features`.
    pub in_features: usize,
    /// `out_features`.
    pub out_features: usize,
    /// The activation (`activation_function`; Tanh when the config names none).
    pub activation: Activation,
    weight: Tensor,
    bias: Option<Tensor>,
    residual: Option<Option<Tensor>>,
}

/// A `torch.nn` activation class name as sentence-transformers saves it
/// (`torch.nn.modules.activation.Tanh`), as one of core's activations.
fn torch_activation(name: &str) -> Option<Activation> {
    let class = name.rsplit('.').next().unwrap_or(name);
    Some(match class {
        "Tanh" => Activation::Tanh,
        "Identity" => Activation::Linear,
        "ReLU" => Activation::Relu,
        "GELU" => Activation::Gelu,
        "Sigmoid" => Activation::Sigmoid,
        "SiLU" => Activation::Silu,
        "Mish" => Activation::Mish,
        "ReLU6" => Activation::Relu6,
        "Hardswish" => Activation::Hardswish,
        "LeakyReLU" => Activation::LeakyRelu,
        _ => return None,
    })
}

impl DenseModule {
    /// Load from the module folder `dir` of `source`: `config.json` and `model.safetensors`
    /// (what sentence-transformers 3 and later write) or `pytorch_model.bin` (older repos).
    fn load(source: &ModelSource, dir: &str, device: &Device) -> Result<Self> {
        let config_path = source.file(&join(dir, "config.json"))?;
        let config = read_json(&config_path)?;
        let size = |key: &str| -> Result<usize> {
            config
                .get(key)
                .and_then(Value::as_u64)
                .filter(|n| *n > 0 && *n < (1 << 20))
                .map(|n| n as usize)
                .ok_or_else(|| invalid(&config_path, format!("`{key}` is missing or not a positive size")))
        };
        let (in_features, out_features) = (size("in_features")?, size("out_features")?);
        let has_bias = config.get("bias").and_then(Value::as_bool).unwrap_or(true);
        let activation = match config.get("activation_function").and_then(Value::as_str) {
            None => Activation::Tanh,
            Some(name) if name.starts_with("torch.") => torch_activation(name).ok_or_else(|| {
                Error::Unsupported(format!(
                    "`{}`: activation `{name}` is not supported; supported: Tanh, Identity, ReLU, GELU, Sigmoid, SiLU, \
                     Mish, ReLU6, Hardswish, LeakyReLU (torch.nn)",
                    config_path.display()
                ))
            })?,
            Some(name) => {
                // sentence-transformers does the same without trust_remote_code.
                tracing::warn!(
                    path = %config_path.display(),
                    "Dense activation `{name}` is not a torch.nn class: using the default, Tanh, as sentence-transformers does"
                );
                Activation::Tanh
            }
        };
        for key in ["module_input_name", "module_output_name"] {
            if let Some(name) = config.get(key).and_then(Value::as_str) {
                if name != "sentence_embedding" {
                    return Err(Error::Unsupported(format!(
                        "`{}`: a Dense module on `{name}` (`{key}`) is not supported: autocandle's Dense works on \
                         `sentence_embedding`",
                        config_path.display()
                    )));
                }
            }
        }
        let use_residual = config.get("use_residual").and_then(Value::as_bool).unwrap_or(false);
        let file = match source.optional_file(&join(dir, "model.safetensors"))? {
            Some(f) => f,
            None => source.optional_file(&join(dir, "pytorch_model.bin"))?.ok_or_else(|| Error::FileNotFound {
                file: join(dir, "model.safetensors` or `pytorch_model.bin"),
                location: source.describe(),
                hint: ": the Dense module needs its weights".to_owned(),
            })?,
        };
        let checkpoint = Checkpoint::open(vec![file])?;
        let tensor = |name: &str, shape: &[usize]| -> Result<Tensor> {
            let t = checkpoint.tensor(name, device)?.to_dtype(DType::F32)?;
            if t.dims() != shape {
                return Err(Error::Unsupported(format!(
                    "Dense module `{dir}`: tensor `{name}` has shape {:?} in {} but its config.json (in_features \
                     {in_features}, out_features {out_features}) needs {shape:?}; check that the config matches the weights",
                    t.dims(),
                    checkpoint.describe_files()
                )));
            }
            Ok(t)
        };
        let weight = tensor("linear.weight", &[out_features, in_features])?;
        let bias = if has_bias { Some(tensor("linear.bias", &[out_features])?) } else { None };
        let residual = match (use_residual, in_features == out_features) {
            (false, _) => None,
            (true, true) => Some(None),
            (true, false) => Some(Some(tensor("residual.weight", &[out_features, in_features])?)),
        };
        Ok(Self { in_features, out_features, activation, weight, bias, residual })
    }

    /// Apply to `[batch, in_features]`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut out = x.matmul(&self.weight.t()?)?;
        if let Some(b) = &self.bias {
            out = out.broadcast_add(b)?;
        }
        let mut out = self.activation.forward(&out)?;
        match &self.residual {
            None => {}
            Some(None) => out = (out + x)?,
            Some(Some(w)) => out = (out + x.matmul(&w.t()?)?)?,
        }
        Ok(out)
    }
}

/// One module after the Transformer, in `modules.json` order.
#[derive(Debug, Clone)]
pub enum SentenceModule {
    /// Pooling of the token embeddings into one vector.
    Pooling(PoolingModule),
    /// A linear layer with an activation.
    Dense(DenseModule),
    /// L2 normalisation.
    Normalize,
}

/// Options of [`SentenceTransformer::encode`] (sentence-transformers' `encode` arguments).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SentenceEncodeOptions {
    /// Texts per forward pass (default 32).
    pub batch_size: usize,
    /// A prompt of the model's `prompts` by name (`"query"`).
    pub prompt_name: Option<String>,
    /// A prompt string; wins over `prompt_name`. `Some("")` uses no prompt, not even the default.
    pub prompt: Option<String>,
    /// L2-normalise the returned embeddings (after truncation).
    pub normalize_embeddings: bool,
    /// Keep the first `n` dimensions (instead of the model's `truncate_dim`).
    pub truncate_dim: Option<usize>,
    /// Draw a progress bar of the batches on stderr when it is a terminal.
    pub show_progress_bar: bool,
}

impl Default for SentenceEncodeOptions {
    fn default() -> Self {
        Self {
            batch_size: 32,
            prompt_name: None,
            prompt: None,
            normalize_embeddings: false,
            truncate_dim: None,
            show_progress_bar: false,
        }
    }
}

impl SentenceEncodeOptions {
    /// The defaults: batches of 32, the model's default prompt, no normalisation or truncation
    /// beyond the model's, no progress bar.
    pub fn new() -> Self {
        Self::default()
    }

    /// Texts per forward pass.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Use the prompt named `name` of the model's `prompts`.
    pub fn prompt_name(mut self, name: impl Into<String>) -> Self {
        self.prompt_name = Some(name.into());
        self
    }

    /// Prepend `prompt` to every text.
    pub fn prompt(mut self, prompt: impl Into<String>) -> Self {
        self.prompt = Some(prompt.into());
        self
    }

    /// L2-normalise the embeddings.
    pub fn normalize_embeddings(mut self, normalize: bool) -> Self {
        self.normalize_embeddings = normalize;
        self
    }

    /// Truncate the embeddings to `dim` dimensions (Matryoshka).
    pub fn truncate_dim(mut self, dim: impl Into<Option<usize>>) -> Self {
        self.truncate_dim = dim.into();
        self
    }

    /// Draw a progress bar on stderr (only when it is a terminal).
    pub fn show_progress_bar(mut self, show: bool) -> Self {
        self.show_progress_bar = show;
        self
    }
}

/// A sentence-transformers model: a base model from `AutoModel` and the modules of its
/// `modules.json`.
///
/// ```no_run
/// use autocandle::{SentenceEncodeOptions, SentenceTransformer};
/// # fn main() -> autocandle::Result<()> {
/// let model = SentenceTransformer::from_pretrained("sentence-transformers/all-MiniLM-L6-v2")?;
/// let embeddings = model.encode(&["The weather is lovely today.", "It's so sunny outside!"], &SentenceEncodeOptions::new())?;
/// let scores = model.similarity(&embeddings, &embeddings)?; // [2][2], cosine
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SentenceTransformer {
    tokenizer: PreTrainedTokenizer,
    model: Box<dyn Model>,
    device: Device,
    modules: Vec<SentenceModule>,
    max_seq_length: Option<usize>,
    prompts: BTreeMap<String, String>,
    default_prompt_name: Option<String>,
    similarity_fn: SimilarityFunction,
    truncate_dim: Option<usize>,
    hidden_size: Option<usize>,
    special_ids: Vec<u32>,
}

fn join(dir: &str, file: &str) -> String {
    let dir = dir.trim_matches('/');
    if dir.is_empty() {
        file.to_owned()
    } else {
        format!("{dir}/{file}")
    }
}

/// The class name of a `modules.json` type (`sentence_transformers.models.Pooling` -> `Pooling`).
fn class_name(type_ref: &str) -> &str {
    type_ref.rsplit('.').next().unwrap_or(type_ref)
}

impl SentenceTransformer {
    /// Load the sentence-transformers model at `model` (Hub id or folder).
    pub fn from_pretrained(model: &str) -> Result<Self> {
        Self::from_pretrained_with(model, &LoadOptions::default())
    }

    /// [`SentenceTransformer::from_pretrained`] with loading options (revision, cache,
    /// offline, device, dtype).
    ///
    /// Without `modules.json` the model is a Transformer and mean pooling (last-token pooling
    /// for a `*ForCausalLM` checkpoint), as sentence-transformers builds it. A Pooling module
    /// whose `config.json` is missing is mean pooling with a warning (sentence-transformers
    /// 6.3 stops with a `TypeError` there); a Normalize folder may be missing (it has no
    /// settings). Other module types are an error that names them.
    pub fn from_pretrained_with(model: &str, opts: &LoadOptions) -> Result<Self> {
        let span = tracing::info_span!("load_sentence_transformer", model);
        let _guard = span.enter();
        let source = ModelSource::resolve(model, opts)?;
        let mut st = Self::load_parts(model, opts, &source)?;
        tracing::info!(
            modules = st.modules.len(),
            max_seq_length = ?st.max_seq_length,
            similarity = st.similarity_fn.name(),
            "sentence transformer loaded"
        );
        st.check_dimensions()?;
        Ok(st)
    }

    fn load_parts(model: &str, opts: &LoadOptions, source: &ModelSource) -> Result<Self> {
        // config_sentence_transformers.json: prompts, default prompt, similarity, truncate_dim.
        let mut prompts: BTreeMap<String, String> =
            [("query", ""), ("document", "")].into_iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        let mut default_prompt_name = None;
        let mut similarity_fn = SimilarityFunction::Cosine;
        let mut truncate_dim = None;
        if let Some(path) = source.optional_file("config_sentence_transformers.json")? {
            let config = read_json(&path)?;
            if !config.is_object() {
                return Err(invalid(&path, "not a JSON object"));
            }
            if let Some(p) = config.get("prompts").filter(|p| !p.is_null()) {
                let p = p.as_object().ok_or_else(|| invalid(&path, "`prompts` is not an object of name: text"))?;
                for (name, text) in p {
                    let text = match text {
                        Value::Null => "",
                        Value::String(s) => s,
                        other => return Err(invalid(&path, format!("prompt `{name}` is {other}, not a string"))),
                    };
                    prompts.insert(name.clone(), text.to_owned());
                }
            }
            default_prompt_name = match config.get("default_prompt_name") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(other) => return Err(invalid(&path, format!("`default_prompt_name` is {other}, not a string"))),
            };
            if let Some(name) = &default_prompt_name {
                if !prompts.contains_key(name) {
                    return Err(invalid(
                        &path,
                        format!(
                            "`default_prompt_name` `{name}` is not one of the prompts ({})",
                            prompts.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
            }
            match config.get("similarity_fn_name").and_then(Value::as_str) {
                None => {}
                Some(name) => match name.parse() {
                    Ok(f) => similarity_fn = f,
                    Err(_) => tracing::warn!(
                        path = %path.display(),
                        "similarity function `{name}` is not one a SentenceTransformer supports: using cosine, as \
                         sentence-transformers does"
                    ),
                },
            }
            truncate_dim = match config.get("truncate_dim") {
                None | Some(Value::Null) => None,
                Some(v) => Some(
                    v.as_u64()
                        .filter(|n| *n > 0)
                        .map(|n| n as usize)
                        .ok_or_else(|| invalid(&path, format!("`truncate_dim` is {v}, not a positive integer")))?,
                ),
            };
        }

        let modules_json = source.optional_file("modules.json")?;
        let entries: Vec<(String, String)> = match &modules_json {
            None => Vec::new(),
            Some(path) => {
                let list = read_json(path)?;
                let list = list.as_array().ok_or_else(|| invalid(path, "not a list of modules"))?;
                let mut entries = Vec::with_capacity(list.len());
                for (i, m) in list.iter().enumerate() {
                    let field = |key: &str| -> Result<String> {
                        m.get(key)
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                            .ok_or_else(|| invalid(path, format!("module {i} has no string `{key}`")))
                    };
                    let (kind, dir) = (field("type")?, field("path")?);
                    if !dir.is_empty() {
                        check_relative_path(dir.trim_end_matches('/'))?;
                    }
                    entries.push((kind, dir));
                }
                if entries.is_empty() {
                    return Err(invalid(path, "lists no module"));
                }
                entries
            }
        };

        // The Transformer module (the root folder when there is no modules.json).
        let transformer_dir = match entries.first() {
            None => String::new(),
            Some((kind, dir)) if class_name(kind) == "Transformer" => dir.clone(),
            Some((kind, _)) => {
                return Err(Error::Unsupported(format!(
                    "the first module of `{}` is `{kind}`: autocandle's SentenceTransformer starts with a Transformer \
                     module (supported modules: {})",
                    modules_json.as_deref().unwrap_or(Path::new("modules.json")).display(),
                    SUPPORTED_MODULES.join(", ")
                )))
            }
        };
        let mut model_opts = opts.clone();
        if !transformer_dir.is_empty() {
            model_opts.subfolder = Some(match &opts.subfolder {
                Some(sub) => join(sub, &transformer_dir),
                None => transformer_dir.trim_end_matches('/').to_owned(),
            });
        }
        let st_config = Self::transformer_config(source, &transformer_dir)?;
        if let Some((path, config)) = &st_config {
            if let Some(task) = config.get("transformer_task").and_then(Value::as_str) {
                if task != "feature-extraction" {
                    return Err(Error::Unsupported(format!(
                        "`{}`: transformer_task `{task}` is not supported by SentenceTransformer (only feature-extraction)",
                        path.display()
                    )));
                }
            }
        }
        let config = AutoConfig::from_pretrained_with(model, &model_opts)?.value;
        let mut tokenizer = AutoTokenizer::from_pretrained_with(model, &model_opts)?;
        let base = AutoModel::from_pretrained_with(model, &model_opts)?.value;

        let setting = |key: &str| st_config.as_ref().and_then(|(_, c)| c.get(key).filter(|v| !v.is_null()).cloned());
        let max_position =
            config.get("max_position_embeddings").and_then(Value::as_i64).filter(|n| *n > 0).map(|n| n as usize);
        let max_seq_length = match setting("max_seq_length") {
            Some(v) => Some(v.as_u64().filter(|n| *n > 0).map(|n| n as usize).ok_or_else(|| {
                invalid(
                    &st_config.as_ref().map_or_else(Default::default, |(p, _)| p.clone()),
                    format!("`max_seq_length` is {v}, not a positive integer"),
                )
            })?),
            // The tokenizer's model_max_length, capped at max_position_embeddings.
            None => match (tokenizer.model_max_length(), max_position) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
        };
        if setting("do_lower_case").and_then(|v| v.as_bool()).unwrap_or(false) {
            tokenizer = lowercased(&tokenizer)?;
        }
        let hidden_size =
            config.get("hidden_size").or_else(|| config.get("dim")).and_then(Value::as_u64).map(|n| n as usize);

        let mut modules = Vec::new();
        if entries.is_empty() {
            let causal = config.architectures().first().is_some_and(|a| a.ends_with("ForCausalLM"))
                && config.get("is_causal").and_then(Value::as_bool).unwrap_or(true);
            let mode = if causal { Pooling::LastToken } else { Pooling::Mean };
            tracing::info!(pooling = ?mode, "no modules.json: a Transformer and {mode:?} pooling, as sentence-transformers builds it");
            modules.push(SentenceModule::Pooling(PoolingModule { modes: vec![mode], include_prompt: true }));
        }
        for (kind, dir) in entries.iter().skip(1) {
            let module = match class_name(kind) {
                "Pooling" => match source.optional_file(&join(dir, "config.json"))? {
                    Some(path) => SentenceModule::Pooling(PoolingModule::from_config(&read_json(&path)?, &path)?),
                    None => {
                        tracing::warn!(
                            module = kind.as_str(),
                            "`{}` not found in {}: using mean pooling (sentence-transformers 6.3 cannot load such a model)",
                            join(dir, "config.json"),
                            source.describe()
                        );
                        SentenceModule::Pooling(PoolingModule { modes: vec![Pooling::Mean], include_prompt: true })
                    }
                },
                "Dense" => SentenceModule::Dense(DenseModule::load(source, dir, &opts.device)?),
                "Normalize" => SentenceModule::Normalize,
                // Dropout does nothing at inference.
                "Dropout" => continue,
                "Transformer" => {
                    return Err(Error::Unsupported(format!(
                    "`modules.json` of {} has a second Transformer module (`{dir}`): only the first module may be one",
                    source.describe()
                )))
                }
                _ => {
                    return Err(Error::Unsupported(format!(
                        "module type `{kind}` (`{dir}`) of {} is not supported by autocandle's SentenceTransformer; \
                         supported modules: {}",
                        source.describe(),
                        SUPPORTED_MODULES.join(", ")
                    )))
                }
            };
            modules.push(module);
        }
        let special_ids = special_ids(&tokenizer);
        Ok(Self {
            tokenizer,
            model: base,
            device: opts.device.clone(),
            modules,
            max_seq_length,
            prompts,
            default_prompt_name,
            similarity_fn,
            truncate_dim,
            hidden_size,
            special_ids,
        })
    }

    /// `sentence_bert_config.json` (or an older name) of the Transformer module, if any.
    fn transformer_config(source: &ModelSource, dir: &str) -> Result<Option<(std::path::PathBuf, Value)>> {
        for name in [
            "sentence_bert_config.json",
            "sentence_roberta_config.json",
            "sentence_distilbert_config.json",
            "sentence_camembert_config.json",
            "sentence_albert_config.json",
            "sentence_xlm-roberta_config.json",
            "sentence_xlnet_config.json",
        ] {
            if let Some(path) = source.optional_file(&join(dir, name))? {
                let config = read_json(&path)?;
                if !config.is_object() {
                    return Err(invalid(&path, "not a JSON object"));
                }
                return Ok(Some((path, config)));
            }
        }
        Ok(None)
    }

    /// Dense layers must chain: each `in_features` is the width that reaches it.
    fn check_dimensions(&mut self) -> Result<()> {
        let mut width = self.hidden_size;
        for (i, module) in self.modules.iter().enumerate() {
            match module {
                SentenceModule::Pooling(p) => width = width.map(|w| w * p.modes.len()),
                SentenceModule::Dense(d) => {
                    if let Some(w) = width.filter(|w| *w != d.in_features) {
                        return Err(Error::Unsupported(format!(
                            "module {} (Dense) takes {} features but the modules before it give {w}; check in_features \
                             of its config.json",
                            i + 1,
                            d.in_features
                        )));
                    }
                    width = Some(d.out_features);
                }
                SentenceModule::Normalize => {}
            }
        }
        Ok(())
    }

    /// The modules after the Transformer, in order.
    pub fn modules(&self) -> &[SentenceModule] {
        &self.modules
    }

    /// The tokenizer (lowercasing first when `do_lower_case` is set).
    pub fn tokenizer(&self) -> &PreTrainedTokenizer {
        &self.tokenizer
    }

    /// The base model.
    pub fn model(&self) -> &dyn Model {
        self.model.as_ref()
    }

    /// Inputs longer than this many tokens are truncated (`max_seq_length`).
    pub fn max_seq_length(&self) -> Option<usize> {
        self.max_seq_length
    }

    /// The prompts by name (`query` and `document` are always there, empty unless set).
    pub fn prompts(&self) -> &BTreeMap<String, String> {
        &self.prompts
    }

    /// The prompt used when `encode` names none (`default_prompt_name`).
    pub fn default_prompt_name(&self) -> Option<&str> {
        self.default_prompt_name.as_deref()
    }

    /// The similarity function (`similarity_fn_name`, cosine by default).
    pub fn similarity_fn_name(&self) -> SimilarityFunction {
        self.similarity_fn
    }

    /// Use another similarity function.
    pub fn set_similarity_fn_name(&mut self, f: SimilarityFunction) {
        self.similarity_fn = f;
    }

    /// The model's Matryoshka dimension (`truncate_dim`), if any.
    pub fn truncate_dim(&self) -> Option<usize> {
        self.truncate_dim
    }

    /// The length of the vectors `encode` returns (`get_embedding_dimension`), when known.
    pub fn embedding_dimension(&self) -> Option<usize> {
        let mut width = self.hidden_size;
        for module in &self.modules {
            match module {
                SentenceModule::Pooling(p) => width = width.map(|w| w * p.modes.len()),
                SentenceModule::Dense(d) => width = Some(d.out_features),
                SentenceModule::Normalize => {}
            }
        }
        match (width, self.truncate_dim) {
            (Some(w), Some(t)) => Some(w.min(t)),
            (w, t) => w.or(t),
        }
    }

    /// The prompt `opts` ask for: `prompt`, else the prompt named `prompt_name`, else the
    /// default prompt.
    fn resolve_prompt(&self, opts: &SentenceEncodeOptions) -> Result<String> {
        if let Some(prompt) = &opts.prompt {
            if opts.prompt_name.is_some() {
                tracing::warn!("both `prompt` and `prompt_name` given: using `prompt`, as sentence-transformers does");
            }
            return Ok(prompt.clone());
        }
        if let Some(name) = &opts.prompt_name {
            return self.prompts.get(name).cloned().ok_or_else(|| {
                Error::input(format!(
                    "prompt name `{name}` is not one of the model's prompts ({})",
                    self.prompts.keys().cloned().collect::<Vec<_>>().join(", ")
                ))
            });
        }
        Ok(self.default_prompt_name.as_ref().and_then(|n| self.prompts.get(n)).cloned().unwrap_or_default())
    }

    fn encode_options(&self) -> EncodeOptions {
        EncodeOptions::new()
            .padding(Padding::Longest)
            .truncation(self.max_seq_length.is_some())
            .max_length(self.max_seq_length)
    }

    /// The prompt's length in tokens, without a trailing special token (`_get_prompt_length`).
    fn prompt_length(&self, prompt: &str) -> Result<usize> {
        let enc = self.tokenizer.encode_batch(&[prompt], &self.encode_options())?;
        let ids = enc.input_ids.first().cloned().unwrap_or_default();
        let trailing_special = ids.last().is_some_and(|id| self.special_ids.contains(id));
        Ok(ids.len() - usize::from(trailing_special))
    }

    /// One embedding per text (`encode`): the texts are sorted by length (longest first, in
    /// characters), run in batches of `batch_size` through the Transformer (with the prompt
    /// prepended, padded to the batch's longest, truncated to `max_seq_length`) and the
    /// modules, truncated to `truncate_dim`, optionally normalised, and returned in input order.
    pub fn encode(&self, texts: &[&str], opts: &SentenceEncodeOptions) -> Result<Vec<Vec<f32>>> {
        let mut bar = TerminalBar::new(opts.show_progress_bar);
        self.encode_with_progress(texts, opts, &mut |done, total| bar.update(done, total))
    }

    /// [`SentenceTransformer::encode`], calling `progress(batches_done, batches)` after each batch
    /// (to draw one's own progress bar; `show_progress_bar` is ignored).
    pub fn encode_with_progress(
        &self,
        texts: &[&str],
        opts: &SentenceEncodeOptions,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Vec<Vec<f32>>> {
        if opts.batch_size == 0 {
            return Err(Error::input("batch_size must be a positive integer, got 0"));
        }
        if opts.truncate_dim == Some(0) {
            return Err(Error::input("truncate_dim must be a positive integer, got 0"));
        }
        let prompt = self.resolve_prompt(opts)?;
        let prompt_length = if prompt.is_empty() { 0 } else { self.prompt_length(&prompt)? };
        let truncate_dim = opts.truncate_dim.or(self.truncate_dim);
        // np.argsort of minus the length, stably (ties keep their input order).
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(texts[i].chars().count()));
        let mut out: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        let total = texts.len().div_ceil(opts.batch_size);
        for (b, chunk) in order.chunks(opts.batch_size).enumerate() {
            let batch: Vec<String> = chunk.iter().map(|&i| format!("{prompt}{}", texts[i])).collect();
            let batch: Vec<&str> = batch.iter().map(String::as_str).collect();
            let embeddings = self.forward_batch(&batch, prompt_length, truncate_dim, opts.normalize_embeddings)?;
            for (&i, e) in chunk.iter().zip(embeddings) {
                out[i] = e;
            }
            progress(b + 1, total);
        }
        Ok(out)
    }

    /// One batch through the Transformer and the modules.
    fn forward_batch(
        &self,
        texts: &[&str],
        prompt_length: usize,
        truncate_dim: Option<usize>,
        normalize: bool,
    ) -> Result<Vec<Vec<f32>>> {
        let enc = self.tokenizer.encode_batch(texts, &self.encode_options())?;
        let inputs = enc.to_inputs(&self.device)?;
        let hidden = self.model.forward(&inputs)?.last_hidden_state.to_dtype(DType::F32)?.to_vec3::<f32>()?;
        let mut x: Option<Vec<Vec<f32>>> = None;
        for module in &self.modules {
            x = Some(match (module, x) {
                (SentenceModule::Pooling(p), None) => p.pool(&hidden, &enc.attention_mask, prompt_length),
                (SentenceModule::Pooling(_), Some(_)) => {
                    return Err(Error::Unsupported("a second Pooling module is not supported".to_owned()))
                }
                (_, None) => {
                    return Err(Error::Unsupported(
                        "a Dense or Normalize module before the Pooling module (token embeddings) is not supported"
                            .to_owned(),
                    ))
                }
                (SentenceModule::Dense(d), Some(v)) => {
                    let rows = v.len();
                    let flat: Vec<f32> = v.into_iter().flatten().collect();
                    let t = Tensor::from_vec(flat, (rows, d.in_features), &self.device)?;
                    d.forward(&t)?.to_vec2::<f32>()?
                }
                (SentenceModule::Normalize, Some(mut v)) => {
                    v.iter_mut().for_each(|r| l2_normalize(r));
                    v
                }
            });
        }
        let mut x = x.ok_or_else(|| Error::Unsupported("the model has no Pooling module".to_owned()))?;
        if let Some(dim) = truncate_dim {
            x.iter_mut().for_each(|r| r.truncate(dim));
        }
        if normalize {
            x.iter_mut().for_each(|r| l2_normalize(r));
        }
        Ok(x)
    }

    /// The similarity of every `a[i]` with every `b[j]` (`similarity`), `[a.len()][b.len()]`.
    pub fn similarity(&self, a: &[Vec<f32>], b: &[Vec<f32>]) -> Result<Vec<Vec<f32>>> {
        check_widths(a, b)?;
        Ok(a.iter().map(|x| b.iter().map(|y| self.similarity_fn.score(x, y)).collect()).collect())
    }

    /// The similarity of `a[i]` with `b[i]` for each `i` (`similarity_pairwise`).
    pub fn similarity_pairwise(&self, a: &[Vec<f32>], b: &[Vec<f32>]) -> Result<Vec<f32>> {
        if a.len() != b.len() {
            return Err(Error::input(format!(
                "similarity_pairwise needs as many rows on each side ({} and {})",
                a.len(),
                b.len()
            )));
        }
        check_widths(a, b)?;
        Ok(a.iter().zip(b).map(|(x, y)| self.similarity_fn.score(x, y)).collect())
    }
}

fn check_widths(a: &[Vec<f32>], b: &[Vec<f32>]) -> Result<()> {
    let width = a.first().or(b.first()).map_or(0, Vec::len);
    if let Some(bad) = a.iter().chain(b).find(|v| v.len() != width) {
        return Err(Error::input(format!(
            "embeddings of different lengths ({width} and {}) cannot be compared",
            bad.len()
        )));
    }
    Ok(())
}

/// The token ids a tokenizer treats as special (`all_special_ids`).
fn special_ids(tokenizer: &PreTrainedTokenizer) -> Vec<u32> {
    let backend = tokenizer.backend();
    let mut ids: Vec<u32> =
        backend.get_added_tokens_decoder().into_iter().filter(|(_, t)| t.special).map(|(id, _)| id).collect();
    for key in ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"] {
        ids.extend(tokenizer.special_token_id(key));
    }
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// The tokenizer with a Lowercase normalizer first, unless it already lowercases
/// (sentence-transformers' `do_lower_case`).
fn lowercased(tokenizer: &PreTrainedTokenizer) -> Result<PreTrainedTokenizer> {
    let mut backend = tokenizer.backend();
    let current = backend.get_normalizer().cloned();
    let is_lowercase = |n: &Value| n.get("type").and_then(Value::as_str) == Some("Lowercase");
    let has_lowercase = current.as_ref().is_some_and(|n| {
        let v = serde_json::to_value(n).unwrap_or(Value::Null);
        is_lowercase(&v) || v.get("normalizers").and_then(Value::as_array).is_some_and(|l| l.iter().any(is_lowercase))
    });
    if has_lowercase {
        return PreTrainedTokenizer::new(backend, tokenizer.settings(), tokenizer.name().to_owned());
    }
    let mut normalizers = vec![NormalizerWrapper::Lowercase(Lowercase)];
    match current {
        Some(NormalizerWrapper::Sequence(seq)) => {
            let v = serde_json::to_value(&seq).map_err(|e| Error::Tokenizer(e.to_string()))?;
            let inner: Vec<NormalizerWrapper> =
                serde_json::from_value(v.get("normalizers").cloned().unwrap_or(Value::Array(Vec::new())))
                    .map_err(|e| Error::Tokenizer(e.to_string()))?;
            normalizers.extend(inner);
        }
        Some(other) => normalizers.push(other),
        None => {}
    }
    backend
        .with_normalizer(Some(NormalizerWrapper::Sequence(Sequence::new(normalizers))))
        .map_err(|e| Error::Tokenizer(e.to_string()))?;
    PreTrainedTokenizer::new(backend, tokenizer.settings(), tokenizer.name().to_owned())
}

/// A dependency-free progress bar on stderr, drawn only when stderr is a terminal.
#[derive(Debug)]
struct TerminalBar {
    on: bool,
}

impl TerminalBar {
    fn new(show: bool) -> Self {
        Self { on: show && std::io::stderr().is_terminal() }
    }

    fn update(&mut self, done: usize, total: usize) {
        if !self.on || total == 0 {
            return;
        }
        let width = 30;
        let filled = done * width / total;
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\rBatches {:>3}% |{}{}| {done}/{total}",
            done * 100 / total,
            "█".repeat(filled),
            " ".repeat(width - filled)
        );
        if done == total {
            let _ = writeln!(err);
        }
        let _ = err.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pooling_configs_of_every_form() {
        let p = Path::new("1_Pooling/config.json");
        let new =
            PoolingModule::from_config(&json!({"pooling_mode": ["lasttoken", "cls"], "include_prompt": false}), p)
                .unwrap();
        assert_eq!(new.modes, vec![Pooling::LastToken, Pooling::Cls]);
        assert!(!new.include_prompt);
        let one = PoolingModule::from_config(&json!({"pooling_mode": "weightedmean"}), p).unwrap();
        assert_eq!(one.modes, vec![Pooling::WeightedMean]);
        let legacy = PoolingModule::from_config(
            &json!({"pooling_mode_mean_tokens": true, "pooling_mode_cls_token": true, "pooling_mode_lasttoken": true}),
            p,
        )
        .unwrap();
        assert_eq!(legacy.modes, vec![Pooling::Cls, Pooling::Mean, Pooling::LastToken]);
        assert_eq!(PoolingModule::from_config(&json!({}), p).unwrap().modes, vec![Pooling::Mean]);
        let err = PoolingModule::from_config(&json!({"pooling_mode": "median"}), p).unwrap_err().to_string();
        assert!(err.contains("unknown pooling mode `median`") && err.contains("weightedmean"), "{err}");
        let err = PoolingModule::from_config(&json!({"pooling_mode": []}), p).unwrap_err().to_string();
        assert!(err.contains("empty"), "{err}");
        let err = PoolingModule::from_config(&json!([1]), p).unwrap_err().to_string();
        assert!(err.contains("not a JSON object"), "{err}");
    }

    #[test]
    fn pooling_rows_follow_sentence_transformers() {
        let states = vec![vec![1.0, 0.0], vec![3.0, 2.0], vec![5.0, -4.0], vec![9.0, 9.0]];
        let mask = [1, 1, 1, 0];
        let all = [
            Pooling::Cls,
            Pooling::Max,
            Pooling::Mean,
            Pooling::MeanSqrtLen,
            Pooling::WeightedMean,
            Pooling::LastToken,
        ];
        let got = pool_row(&all, &states, &mask, 0);
        let s3 = 3f32.sqrt();
        let want = [1.0, 0.0, 5.0, 2.0, 3.0, -2.0 / 3.0, 9.0 / s3, -2.0 / s3, 22.0 / 6.0, -8.0 / 6.0, 5.0, -4.0];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-6, "{got:?}");
        }
        // One prompt token left out: cls is the first token after it, and the weights keep
        // their positions (2 and 3).
        let got = pool_row(&[Pooling::Cls, Pooling::WeightedMean], &states, &mask, 1);
        assert_eq!(got[..2], [3.0, 2.0]);
        assert!((got[2] - 21.0 / 5.0).abs() < 1e-6 && (got[3] + 8.0 / 5.0).abs() < 1e-6, "{got:?}");
    }

    #[test]
    fn similarity_functions() {
        let (a, b) = ([3.0f32, 4.0], [0.0f32, 1.0]);
        assert!((SimilarityFunction::Cosine.score(&a, &b) - 0.8).abs() < 1e-6);
        assert_eq!(SimilarityFunction::Dot.score(&a, &b), 4.0);
        assert!((SimilarityFunction::Euclidean.score(&a, &b) + 18f32.sqrt()).abs() < 1e-6);
        assert_eq!(SimilarityFunction::Manhattan.score(&a, &b), -6.0);
        assert_eq!("dot".parse::<SimilarityFunction>().unwrap(), SimilarityFunction::Dot);
        assert!("maxsim".parse::<SimilarityFunction>().is_err());
    }

    #[test]
    fn torch_activations_by_class_name() {
        assert_eq!(torch_activation("torch.nn.modules.activation.Tanh"), Some(Activation::Tanh));
        assert_eq!(torch_activation("torch.nn.modules.linear.Identity"), Some(Activation::Linear));
        assert_eq!(torch_activation("torch.nn.modules.activation.Softmax"), None);
    }
}
