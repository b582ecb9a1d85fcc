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
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Branch, tag or commit of a Hub repo (`main`).
    pub revision: String,
    /// Hub cache folder; `None` uses `HF_HUB_CACHE`, `HF_HOME/hub` or `~/.cache/huggingface/hub`.
    pub cache_dir: Option<PathBuf>,
    /// Download again even when the file is in the cache.
    pub force_download: bool,
    /// Never touch the network; also set by `HF_HUB_OFFLINE=1`.
    pub local_files_only: bool,
    /// Folder inside the repo or local folder that holds the files.
    pub subfolder: Option<String>,
    /// Hub access token; `None` uses `HF_TOKEN` or the token saved by `huggingface-cli login`.
    pub token: Option<String>,
    /// Device the weights are loaded onto.
    pub device: Device,
    /// Dtype of the weights.
    pub dtype: DTypeChoice,
    /// Values that replace the fields of `config.json` (`transformers`' `**kwargs`).
    pub config_overrides: Map<String, Value>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            revision: "main".to_owned(),
            cache_dir: None,
            force_download: false,
            local_files_only: false,
            subfolder: None,
            token: None,
            device: Device::Cpu,
            dtype: DTypeChoice::Auto,
            config_overrides: Map::new(),
        }
    }
}

impl LoadOptions {
    /// Default options: revision `main`, CPU, dtype from the config.
    pub fn new() -> Self {
        Self::default()
    }

    pub fn revision(mut self, revision: impl Into<String>) -> Self {
        self.revision = revision.into();
        self
    }

    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    pub fn force_download(mut self, yes: bool) -> Self {
        self.force_download = yes;
        self
    }

    pub fn local_files_only(mut self, yes: bool) -> Self {
        self.local_files_only = yes;
        self
    }

    pub fn subfolder(mut self, subfolder: impl Into<String>) -> Self {
        self.subfolder = Some(subfolder.into());
        self
    }

    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    pub fn device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    pub fn dtype(mut self, dtype: DType) -> Self {
        self.dtype = DTypeChoice::Fixed(dtype);
        self
    }

    /// Replace the config field `key` with `value` (like `from_pretrained(..., key=value)`).
    pub fn config_override(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.config_overrides.insert(key.into(), value.into());
        self
    }
}

/// A loaded object with the config overrides that matched no config field
/// (`transformers`' `return_unused_kwargs=True`).
#[derive(Debug)]
pub struct Loaded<T> {
    pub value: T,
    pub unused_kwargs: Map<String, Value>,
}
