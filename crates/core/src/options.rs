//! Load options: where files come from, which device and dtype, config overrides.

use std::path::PathBuf;

use candle_core::{DType, Device};
use serde_json::{Map, Value};

/// The dtype a model is loaded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DTypeChoice {
    /// The config's `torch_dtype` (or newer `dtype`) when it names a float type, else f32.
    #[default]
    Auto,
    /// This dtype, whatever the config says.
    Fixed(DType),
}

/// Options of `from_pretrained`, after `transformers`' keyword arguments.
///
/// The Hub fields (`cache_dir`, `endpoint`, `token`, `local_files_only`, `progress`) are
/// merged with `huggingface_hub`'s environment variables as
/// [`HubSettings`](crate::hub::HubSettings) describes: `HF_HOME`, `HF_HUB_CACHE`,
/// `HF_ENDPOINT`, `HF_TOKEN`, `HF_TOKEN_PATH`, `HF_HUB_DISABLE_IMPLICIT_TOKEN`,
/// `HF_HUB_OFFLINE` and `HF_HUB_DISABLE_PROGRESS_BARS` are honoured; `HF_HUB_ETAG_TIMEOUT` and
/// `HF_HUB_DOWNLOAD_TIMEOUT` are not (hf-hub 0.4 cannot set HTTP timeouts). Downloads need the
/// `hub` feature of autocandle (on by default).
///
/// Its `Debug` output shows whether there is a token, never the token.
#[derive(Clone)]
pub struct LoadOptions {
    /// Branch, tag or commit of a Hub repo (`main`).
    pub revision: String,
    /// Hub cache folder; `None` uses `HF_HUB_CACHE`, `HF_HOME/hub` or `~/.cache/huggingface/hub`
    /// (see [`HubSettings`](crate::hub::HubSettings)).
    pub cache_dir: Option<PathBuf>,
    /// Address of the Hub (a mirror or a private Hub); `None` uses `HF_ENDPOINT`, else
    /// `https://huggingface.co`.
    pub endpoint: Option<String>,
    /// Download again even when the file is in the cache.
    pub force_download: bool,
    /// Never touch the network; also set by `HF_HUB_OFFLINE=1` (or `TRANSFORMERS_OFFLINE=1`).
    pub local_files_only: bool,
    /// Folder inside the repo or local folder that holds the files.
    pub subfolder: Option<String>,
    /// Hub access token; `None` uses `HF_TOKEN`, else the token file that `huggingface-cli login`
    /// saves (`HF_TOKEN_PATH`, else `$HF_HOME/token`), unless `HF_HUB_DISABLE_IMPLICIT_TOKEN` is
    /// set. Blanks around it are trimmed; an empty token counts as none.
    pub token: Option<String>,
    /// Device the weights are loaded onto.
    pub device: Device,
    /// Dtype of the weights.
    pub dtype: DTypeChoice,
    /// Values that replace the fields of `config.json` (`transformers`' `**kwargs`).
    pub config_overrides: Map<String, Value>,
    /// Weight file variant (`fp16` reads `model.fp16.safetensors`,
    /// `model.safetensors.index.fp16.json`, `pytorch_model.fp16.bin` or
    /// `pytorch_model.bin.index.fp16.json`, as `transformers`' `_add_variant` names them).
    pub variant: Option<String>,
    /// `Some(true)`: safetensors only; `Some(false)`: PyTorch `.bin` only; `None` (default):
    /// safetensors first, then `.bin` (`transformers`' `use_safetensors`).
    pub use_safetensors: Option<bool>,
    /// Re-initialise weights whose shape in the checkpoint differs from the model's (and report
    /// them in [`LoadingReport::mismatched_keys`]) instead of failing.
    pub ignore_mismatched_sizes: bool,
    /// Show hf-hub's download progress bars on stderr (off by default; a command line turns
    /// it on when stderr is a terminal). `HF_HUB_DISABLE_PROGRESS_BARS=1` turns them off even
    /// when this is on.
    pub progress: bool,
    /// Read the config, the tokenizer, the generation settings and the weights from this GGUF
    /// file of the repo or folder (`transformers`' `gguf_file`) instead of `config.json`,
    /// `tokenizer.json` and safetensors files.
    pub gguf_file: Option<String>,
    /// Keep the weights of the linear layers quantized in this block type (in-situ
    /// quantization of a float checkpoint, or re-quantization of a GGUF file). For a GGUF file
    /// `None` keeps each tensor in the type the file stores it in, unless a float `dtype` is
    /// asked for ([`DTypeChoice::Fixed`]), which dequantizes as `transformers` does.
    pub quantize: Option<QuantType>,
    /// Follow symbolic links of the model folder that lead outside it (off by default): every
    /// file read from a folder or a Hub snapshot must otherwise resolve, after following links,
    /// inside that folder, or inside the `blobs/` of the same repo in the Hub cache.
    pub allow_external_links: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            revision: "main".to_owned(),
            cache_dir: None,
            endpoint: None,
            force_download: false,
            local_files_only: false,
            subfolder: None,
            token: None,
            device: Device::Cpu,
            dtype: DTypeChoice::Auto,
            config_overrides: Map::new(),
            variant: None,
            use_safetensors: None,
            ignore_mismatched_sizes: false,
            progress: false,
            gguf_file: None,
            quantize: None,
            allow_external_links: false,
        }
    }
}

impl std::fmt::Debug for LoadOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Spelled out, so that a new field is not forgotten: destructured first.
        let Self {
            revision,
            cache_dir,
            endpoint,
            force_download,
            local_files_only,
            subfolder,
            token,
            device,
            dtype,
            config_overrides,
            variant,
            use_safetensors,
            ignore_mismatched_sizes,
            progress,
            gguf_file,
            quantize,
            allow_external_links,
        } = self;
        f.debug_struct("LoadOptions")
            .field("revision", revision)
            .field("cache_dir", cache_dir)
            .field("endpoint", endpoint)
            .field("force_download", force_download)
            .field("local_files_only", local_files_only)
            .field("subfolder", subfolder)
            .field("token", &token.as_ref().map(|_| "<redacted>"))
            .field("device", device)
            .field("dtype", dtype)
            .field("config_overrides", config_overrides)
            .field("variant", variant)
            .field("use_safetensors", use_safetensors)
            .field("ignore_mismatched_sizes", ignore_mismatched_sizes)
            .field("progress", progress)
            .field("gguf_file", gguf_file)
            .field("quantize", quantize)
            .field("allow_external_links", allow_external_links)
            .finish()
    }
}

impl LoadOptions {
    /// Default options: revision `main`, CPU, dtype from the config.
    pub fn new() -> Self {
        Self::default()
    }

    /// Load from this branch, tag or commit of the Hub repo.
    pub fn revision(mut self, revision: impl Into<String>) -> Self {
        self.revision = revision.into();
        self
    }

    /// Use this Hub cache folder instead of `HF_HUB_CACHE` / `HF_HOME/hub`.
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Download from this Hub address instead of `HF_ENDPOINT` or `https://huggingface.co`.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Download the files again even when they are cached.
    pub fn force_download(mut self, yes: bool) -> Self {
        self.force_download = yes;
        self
    }

    /// Use only local folders and the cache, never the network (`HF_HUB_OFFLINE=1`).
    pub fn local_files_only(mut self, yes: bool) -> Self {
        self.local_files_only = yes;
        self
    }

    /// Read the files from this folder inside the repo or local folder.
    pub fn subfolder(mut self, subfolder: impl Into<String>) -> Self {
        self.subfolder = Some(subfolder.into());
        self
    }

    /// Authenticate to the Hub with this access token (private and gated repos).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Load the weights onto `device`.
    pub fn device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// Load the floating-point weights in `dtype`, whatever the config's `torch_dtype` says.
    pub fn dtype(mut self, dtype: DType) -> Self {
        self.dtype = DTypeChoice::Fixed(dtype);
        self
    }

    /// Replace the config field `key` with `value` (like `from_pretrained(..., key=value)`).
    pub fn config_override(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.config_overrides.insert(key.into(), value.into());
        self
    }

    /// Read the weight files of `variant` (`fp16` reads `model.fp16.safetensors`, ...).
    pub fn variant(mut self, variant: impl Into<String>) -> Self {
        self.variant = Some(variant.into());
        self
    }

    /// Only safetensors (`true`) or only PyTorch `.bin` files (`false`).
    pub fn use_safetensors(mut self, yes: bool) -> Self {
        self.use_safetensors = Some(yes);
        self
    }

    /// Re-initialise (and report) weights whose checkpoint shape differs, instead of failing.
    pub fn ignore_mismatched_sizes(mut self, yes: bool) -> Self {
        self.ignore_mismatched_sizes = yes;
        self
    }

    /// Show download progress bars on stderr (hf-hub's `with_progress`), unless
    /// `HF_HUB_DISABLE_PROGRESS_BARS` is set.
    pub fn progress(mut self, yes: bool) -> Self {
        self.progress = yes;
        self
    }

    /// Read everything from the GGUF file `name` of the repo or folder (`gguf_file=`).
    pub fn gguf_file(mut self, name: impl Into<String>) -> Self {
        self.gguf_file = Some(name.into());
        self
    }

    /// Keep the linear layers' weights quantized in `kind` (see [`LoadOptions::quantize`]).
    pub fn quantize(mut self, kind: QuantType) -> Self {
        self.quantize = Some(kind);
        self
    }

    /// Read files of the model folder that are symbolic links leading outside it (see
    /// [`LoadOptions::allow_external_links`]); only for folders whose links you trust.
    pub fn allow_external_links(mut self, yes: bool) -> Self {
        self.allow_external_links = yes;
        self
    }
}

/// A ggml block type that weights can be quantized to (`--quantize q8_0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QuantType {
    /// 32 weights in 4 bits with one f16 scale (4.5 bits a weight).
    Q4_0,
    /// 32 weights in 4 bits with an f16 scale and minimum (5 bits a weight).
    Q4_1,
    /// 32 weights in 5 bits with one f16 scale (5.5 bits a weight).
    Q5_0,
    /// 32 weights in 5 bits with an f16 scale and minimum (6 bits a weight).
    Q5_1,
    /// 32 weights in 8 bits with one f16 scale (8.5 bits a weight).
    Q8_0,
    /// k-quant: 256 weights in 2 bits with 4-bit sub-block scales (2.625 bits a weight).
    Q2K,
    /// k-quant: 256 weights in 3 bits (3.4375 bits a weight).
    Q3K,
    /// k-quant: 256 weights in 4 bits with 6-bit sub-block scales and minimums (4.5 bits a weight).
    Q4K,
    /// k-quant: 256 weights in 5 bits (5.5 bits a weight).
    Q5K,
    /// k-quant: 256 weights in 6 bits (6.5625 bits a weight).
    Q6K,
}

impl QuantType {
    /// Every type, in the order of llama.cpp's `ggml_type`.
    pub const ALL: [QuantType; 10] = [
        Self::Q4_0,
        Self::Q4_1,
        Self::Q5_0,
        Self::Q5_1,
        Self::Q8_0,
        Self::Q2K,
        Self::Q3K,
        Self::Q4K,
        Self::Q5K,
        Self::Q6K,
    ];

    /// llama.cpp's lower-case name (`q4_0`, `q4_k`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Q4_0 => "q4_0",
            Self::Q4_1 => "q4_1",
            Self::Q5_0 => "q5_0",
            Self::Q5_1 => "q5_1",
            Self::Q8_0 => "q8_0",
            Self::Q2K => "q2_k",
            Self::Q3K => "q3_k",
            Self::Q4K => "q4_k",
            Self::Q5K => "q5_k",
            Self::Q6K => "q6_k",
        }
    }

    /// candle's block type.
    pub fn ggml_dtype(self) -> candle_core::quantized::GgmlDType {
        use candle_core::quantized::GgmlDType as G;
        match self {
            Self::Q4_0 => G::Q4_0,
            Self::Q4_1 => G::Q4_1,
            Self::Q5_0 => G::Q5_0,
            Self::Q5_1 => G::Q5_1,
            Self::Q8_0 => G::Q8_0,
            Self::Q2K => G::Q2K,
            Self::Q3K => G::Q3K,
            Self::Q4K => G::Q4K,
            Self::Q5K => G::Q5K,
            Self::Q6K => G::Q6K,
        }
    }
}

impl std::fmt::Display for QuantType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for QuantType {
    type Err = crate::Error;

    /// `q4_0`, `Q4_K`, `q4k`: case and the underscore before `k` do not matter.
    fn from_str(s: &str) -> crate::Result<Self> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "");
        Self::ALL.into_iter().find(|t| t.name().replace('_', "") == wanted).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|t| t.name()).collect();
            crate::Error::InvalidInput(format!("unknown quantization type `{s}`: choose one of {}", names.join(", ")))
        })
    }
}

/// A loaded object with the config overrides that matched no config field
/// (`transformers`' `return_unused_kwargs=True`) and, for models, what happened to the weights
/// (`output_loading_info=True`; empty for configs).
#[derive(Debug)]
pub struct Loaded<T> {
    /// The loaded config, model or other object.
    pub value: T,
    /// Config overrides ([`LoadOptions::config_override`]) that no config field took.
    pub unused_kwargs: Map<String, Value>,
    /// What happened to the weights; empty for configs.
    pub report: LoadingReport,
}

/// What loading a checkpoint into a model did, like `transformers`' `output_loading_info`.
///
/// Names are the model's (`classifier.weight`) for missing and mismatched keys, and the
/// checkpoint's for unexpected keys. A non-empty report is also logged with `tracing::warn!`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadingReport {
    /// Weights of the model that the checkpoint lacks, initialised afresh: the task head's,
    /// when a checkpoint of the base model or of another head is loaded into a head model.
    /// (A missing weight of the base model itself is an error, `Error::TensorNotFound`.)
    pub missing_keys: Vec<String>,
    /// Tensors of the checkpoint that the model does not use (a head's weights loaded into
    /// the base model), except the buffers `transformers` ignores too (`position_ids`,
    /// `rotary_emb.inv_freq`, ...) and aliases of used tensors in `.bin` files.
    pub unexpected_keys: Vec<String>,
    /// Weights whose shape in the checkpoint differs from the model's, initialised afresh
    /// (only with [`LoadOptions::ignore_mismatched_sizes`]; otherwise an error).
    pub mismatched_keys: Vec<MismatchedKey>,
}

/// A weight whose shape in the checkpoint is not the model's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MismatchedKey {
    /// The model's name of the weight.
    pub name: String,
    /// Its shape in the checkpoint.
    pub checkpoint_shape: Vec<usize>,
    /// The shape the model's config implies.
    pub model_shape: Vec<usize>,
}

impl LoadingReport {
    /// Whether the checkpoint matched the model exactly.
    pub fn is_empty(&self) -> bool {
        self.missing_keys.is_empty() && self.unexpected_keys.is_empty() && self.mismatched_keys.is_empty()
    }
}

impl std::fmt::Display for LoadingReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if !self.missing_keys.is_empty() {
            parts.push(format!("newly initialised (missing from the checkpoint): {}", self.missing_keys.join(", ")));
        }
        if !self.unexpected_keys.is_empty() {
            parts.push(format!("not used (unexpected): {}", self.unexpected_keys.join(", ")));
        }
        if !self.mismatched_keys.is_empty() {
            let m: Vec<String> = self
                .mismatched_keys
                .iter()
                .map(|k| {
                    format!("{} ({:?} in the checkpoint, {:?} in the model)", k.name, k.checkpoint_shape, k.model_shape)
                })
                .collect();
            parts.push(format!("newly initialised (shape mismatch): {}", m.join(", ")));
        }
        if parts.is_empty() {
            f.write_str("every weight loaded")
        } else {
            f.write_str(&parts.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::QuantType;

    #[test]
    fn quant_types_parse_by_llama_cpp_name() {
        for t in QuantType::ALL {
            assert_eq!(t.name().parse::<QuantType>().unwrap(), t);
        }
        assert_eq!("Q4_K".parse::<QuantType>().unwrap(), QuantType::Q4K);
        assert_eq!("q4k".parse::<QuantType>().unwrap(), QuantType::Q4K);
        let err = "q3_x".parse::<QuantType>().unwrap_err().to_string();
        assert!(err.contains("q3_x") && err.contains("q8_0"), "{err}");
    }
}
