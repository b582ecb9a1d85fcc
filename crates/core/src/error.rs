//! The error type shared by every autocandle crate.

use std::path::PathBuf;

/// Result alias with [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while resolving, loading or running a model.
///
/// Messages start lowercase, carry the path, key or tensor involved, and say what to do
/// where there is something to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or folder could not be read.
    #[error("cannot read `{path}`: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// A JSON file (`config.json`, `tokenizer_config.json`, ...) is not valid JSON or does not
    /// have the expected structure.
    #[error("malformed JSON in `{path}`: {source}{}", crate::hub::cache_advice(.path))]
    MalformedJson {
        /// The JSON file.
        path: PathBuf,
        /// serde_json's error, with line and column.
        #[source]
        source: serde_json::Error,
    },

    /// `config.json` has no `model_type`, so no architecture can be chosen.
    #[error("`{path}` has no `model_type` field: add one (for example `\"model_type\": \"bert\"`) so the architecture can be chosen")]
    MissingModelType {
        /// The config file.
        path: PathBuf,
    },

    /// A config parsed but its values are inconsistent or out of range (for example
    /// `hidden_size` not divisible by `num_attention_heads`).
    #[error("invalid `{model_type}` config: {message}")]
    InvalidConfig {
        /// The config's model type.
        model_type: String,
        /// What is wrong, naming the field.
        message: String,
    },

    /// The `model_type` is not one autocandle knows.
    #[error("unknown model type `{model_type}`{suggestion}; known model types: {known}")]
    UnknownModelType {
        /// The model type that was asked for.
        model_type: String,
        /// `" (did you mean `bert`?)"` or empty.
        suggestion: String,
        /// The known model types, comma-separated.
        known: String,
    },

    /// The model type is known but its architecture crate is behind a feature that is off.
    #[error("model type `{model_type}` is known but not compiled in: enable the `{feature}` feature of autocandle")]
    NotCompiledIn {
        /// The model type.
        model_type: String,
        /// The feature of `autocandle` that compiles it in.
        feature: String,
    },

    /// A model is registered for a model type whose config struct is not.
    #[error(
        "model type `{model_type}` has a registered model ({class_name}) but no registered config to parse its \
         config.json into: register the config struct of `{config_model_type}` with `#[derive(AutoRegister)]` and \
         `#[auto(config, model_type = \"{config_model_type}\")]` next to the model"
    )]
    ConfigNotRegistered {
        /// The model type that was loaded.
        model_type: String,
        /// The registered model class (`BertForMaskedLM`).
        class_name: String,
        /// The model type of the model's config type, which has no registered config.
        config_model_type: String,
    },

    /// The architecture has no head for the task that an Auto class asked for.
    #[error(
        "model type `{model_type}` has no {task} head ({auto_class}); heads available for `{model_type}`: {available}"
    )]
    NoHeadForTask {
        /// The model type.
        model_type: String,
        /// The task asked for.
        task: crate::Task,
        /// The Auto class of the task (`AutoModelForMaskedLM`).
        auto_class: &'static str,
        /// The tasks that are registered for the model type, comma-separated.
        available: String,
    },

    /// A task name (`"masked-lm"`, a pipeline name) that no task has.
    #[error("unknown task `{name}`; known tasks: {known}")]
    UnknownTask {
        /// The name given.
        name: String,
        /// The known task names, comma-separated.
        known: String,
    },

    /// Two crates registered the same config or (model type, task) pair.
    #[error("{what} is registered twice: by {first} and by {second}; remove one of the registrations")]
    DuplicateRegistration {
        /// What is registered twice (`config for model type `bert``).
        what: String,
        /// The Rust path of the first registering type.
        first: String,
        /// The Rust path of the second registering type.
        second: String,
    },

    /// A config of one architecture was passed where another's is needed (for example to
    /// `AutoConfig::downcast`).
    #[error("config of type `{got}` was given where `{expected}` is needed")]
    ConfigTypeMismatch {
        /// The config type that was needed.
        expected: &'static str,
        /// The config class that was given.
        got: String,
    },

    /// The name is neither an existing folder nor a valid `namespace/name` Hub repo id.
    #[error("`{name}` is neither a local folder nor a valid Hub repo id ({reason})")]
    InvalidRepoId {
        /// The name given to `from_pretrained`.
        name: String,
        /// Why it is not a valid repo id.
        reason: String,
    },

    /// A path read from a repository (`weight_map` entry, subfolder) would leave it.
    #[error("unsafe path `{path}`: {reason}")]
    UnsafePath {
        /// The path as written in the repository.
        path: String,
        /// Why it is refused.
        reason: String,
    },

    /// A file is in neither the folder, the cache nor the Hub repo.
    #[error("`{file}` not found in {location}{hint}")]
    FileNotFound {
        /// The file name inside the repository (`config.json`).
        file: String,
        /// The folder or Hub repo (and revision) that was searched.
        location: String,
        /// Extra advice, starting with `: ` or empty.
        hint: String,
    },

    /// A file of a model folder is a symbolic link (or lies under one) that leads outside the
    /// folder, and [`LoadOptions::allow_external_links`](crate::LoadOptions::allow_external_links)
    /// is off.
    #[error(
        "`{file}` of {location} leads outside the model folder: `{link}` points to `{target}`; only files inside \
         the folder (and, in the Hub cache, the repo's `blobs/`) are read: move the file into the folder, or, if \
         you trust the link, opt in with `LoadOptions::allow_external_links(true)` (`--allow-external-links` on \
         the command line)"
    )]
    ExternalLink {
        /// The file name inside the repository (`config.json`).
        file: String,
        /// The folder or Hub repo (and revision) it was resolved from.
        location: String,
        /// The path inside the folder (the link).
        link: PathBuf,
        /// Where it leads once every link is followed.
        target: PathBuf,
    },

    /// A file of the Hub cache is unusable: a dangling `snapshots/` link, an empty file.
    #[error(
        "the Hub cache entry of `{file}` (`{path}`) is corrupt: {problem}; download it again with `force_download` \
         (`LoadOptions::force_download(true)`, `--force-download` on the command line)"
    )]
    CorruptCache {
        /// The file name inside the repository (`model.safetensors`).
        file: String,
        /// The path in the cache.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },

    /// Downloading from the Hub failed (network, authentication, HTTP status).
    #[error("cannot fetch `{file}` from the Hub repo `{repo}`: {message}")]
    Hub {
        /// The repo id.
        repo: String,
        /// The file inside the repo.
        file: String,
        /// What the Hub client said.
        message: String,
    },

    /// No weights file in any of the formats `transformers` reads.
    #[error("no weights found in {location}: looked for {tried}")]
    WeightsNotFound {
        /// The folder or repo searched.
        location: String,
        /// The file names tried, in order.
        tried: String,
    },

    /// A safetensors file is truncated, corrupt, or has an invalid header.
    #[error("cannot read safetensors file `{path}`: {message}{}", safetensors_advice(.path))]
    Safetensors {
        /// The safetensors file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// A PyTorch `.bin` checkpoint could not be read.
    #[error("cannot read PyTorch checkpoint `{path}`: {message}{}", crate::hub::cache_advice(.path))]
    Pickle {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// A PyTorch checkpoint's pickle names a Python global that is not part of a state dict;
    /// it is refused rather than executed.
    #[error(
        "refusing to load `{path}`: its pickle names `{global}`, which is not part of a PyTorch state dict; \
         `.bin` checkpoints are read without executing anything and only tensors are accepted: convert the \
         checkpoint to safetensors with a tool you trust, or use a repository that has `model.safetensors`"
    )]
    UnsafePickle {
        /// The checkpoint file.
        path: PathBuf,
        /// The refused global (`module.name`).
        global: String,
    },

    /// A tensor the architecture needs is not in the weights.
    #[error(
        "tensor `{name}` not found in the weights ({files}); the checkpoint does not match this architecture or config"
    )]
    TensorNotFound {
        /// The tensor's name in the state dict (`bert.embeddings.word_embeddings.weight`).
        name: String,
        /// The weights files searched.
        files: String,
    },

    /// A tensor in the weights has another shape than the config implies.
    #[error("tensor `{name}` has shape {got:?} in the weights but the config needs {expected:?}; check that config.json matches the checkpoint")]
    TensorShape {
        /// The tensor's name in the state dict.
        name: String,
        /// The shape the config implies.
        expected: Vec<usize>,
        /// The shape in the weights.
        got: Vec<usize>,
    },

    /// An input id is negative or not below the vocabulary (or type vocabulary) size.
    #[error("id {id} in `{input}` is out of range: the model accepts ids from 0 to {}", vocab_size.saturating_sub(1))]
    TokenIdOutOfRange {
        /// The input that holds it (`input_ids`, `token_type_ids`, ...).
        input: &'static str,
        /// The offending id.
        id: i64,
        /// The size of the table it indexes.
        vocab_size: usize,
    },

    /// The input is longer than the model's position table (`max_position_embeddings`).
    #[error("sequence of {len} tokens is longer than the model allows ({max}, `max_position_embeddings`): truncate the input")]
    SequenceTooLong {
        /// The input's length in tokens.
        len: usize,
        /// The longest sequence the model accepts.
        max: usize,
    },

    /// An input has the wrong shape, dtype, or value; the message says which.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A feature of the config or the request that autocandle does not implement.
    #[error("unsupported: {0}")]
    Unsupported(String),

    /// The tokenizer failed to load, encode or decode.
    #[error("tokenizer error: {0}")]
    Tokenizer(String),

    /// An error from candle (tensor shapes, dtypes, devices).
    #[error(transparent)]
    Candle(#[from] candle_core::Error),

    /// A GGUF file is not one autocandle can read: not GGUF, an unsupported version, a
    /// truncated or inconsistent header, or tensors of an unsupported type.
    #[error("invalid GGUF file `{path}`: {message}{}", crate::hub::cache_advice(.path))]
    Gguf {
        /// The GGUF file.
        path: PathBuf,
        /// What is wrong with it, naming the metadata key or tensor involved.
        message: String,
    },
}

/// What to do about an unreadable safetensors file: `force_download` for a file of the Hub cache.
fn safetensors_advice(path: &std::path::Path) -> &'static str {
    match crate::hub::cache_advice(path) {
        "" => "; the file may be truncated or corrupt, download it again",
        advice => advice,
    }
}

impl Error {
    /// Shorthand for [`Error::InvalidInput`].
    pub fn input(message: impl Into<String>) -> Self {
        Error::InvalidInput(message.into())
    }

    /// Shorthand for [`Error::InvalidConfig`].
    pub fn config(model_type: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidConfig { model_type: model_type.into(), message: message.into() }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }
}
