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
    #[error("cannot read `{path}`: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("malformed JSON in `{path}`: {source}")]
    MalformedJson {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error("`{path}` has no `model_type` field: add one (for example `\"model_type\": \"bert\"`) so the architecture can be chosen")]
    MissingModelType { path: PathBuf },

    #[error("invalid `{model_type}` config: {message}")]
    InvalidConfig { model_type: String, message: String },

    #[error("unknown model type `{model_type}`{suggestion}; known model types: {known}")]
    UnknownModelType {
        model_type: String,
        /// `" (did you mean `bert`?)"` or empty.
        suggestion: String,
        known: String,
    },

    #[error("model type `{model_type}` is known but not compiled in: enable the `{feature}` feature of autocandle")]
    NotCompiledIn { model_type: String, feature: String },

    #[error(
        "model type `{model_type}` has a registered model ({class_name}) but no registered config to parse its \
         config.json into: register the config struct of `{config_model_type}` with `#[derive(AutoRegister)]` and \
         `#[auto(config, model_type = \"{config_model_type}\")]` next to the model"
    )]
    ConfigNotRegistered { model_type: String, class_name: String, config_model_type: String },

    #[error(
        "model type `{model_type}` has no {task} head ({auto_class}); heads available for `{model_type}`: {available}"
    )]
    NoHeadForTask { model_type: String, task: crate::Task, auto_class: &'static str, available: String },

    #[error("unknown task `{name}`; known tasks: {known}")]
    UnknownTask { name: String, known: String },

    #[error("{what} is registered twice: by {first} and by {second}; remove one of the registrations")]
    DuplicateRegistration { what: String, first: String, second: String },

    #[error("config of type `{got}` was given where `{expected}` is needed")]
    ConfigTypeMismatch { expected: &'static str, got: String },

    #[error("`{name}` is neither a local folder nor a valid Hub repo id ({reason})")]
    InvalidRepoId { name: String, reason: String },

    #[error("unsafe path `{path}`: {reason}")]
    UnsafePath { path: String, reason: String },

    #[error("`{file}` not found in {location}{hint}")]
    FileNotFound {
        file: String,
        location: String,
        /// Extra advice, starting with `: ` or empty.
        hint: String,
    },

    #[error("cannot fetch `{file}` from the Hub repo `{repo}`: {message}")]
    Hub { repo: String, file: String, message: String },

    #[error("no weights found in {location}: looked for {tried}")]
    WeightsNotFound { location: String, tried: String },

    #[error(
        "cannot read safetensors file `{path}`: {message}; the file may be truncated or corrupt, download it again"
    )]
    Safetensors { path: PathBuf, message: String },

    #[error("cannot read PyTorch checkpoint `{path}`: {message}")]
    Pickle { path: PathBuf, message: String },

    #[error(
        "refusing to load `{path}`: its pickle names `{global}`, which is not part of a PyTorch state dict; \
         `.bin` checkpoints are read without executing anything and only tensors are accepted: convert the \
         checkpoint to safetensors with a tool you trust, or use a repository that has `model.safetensors`"
    )]
    UnsafePickle { path: PathBuf, global: String },

    #[error(
        "tensor `{name}` not found in the weights ({files}); the checkpoint does not match this architecture or config"
    )]
    TensorNotFound { name: String, files: String },

    #[error("tensor `{name}` has shape {got:?} in the weights but the config needs {expected:?}; check that config.json matches the checkpoint")]
    TensorShape { name: String, expected: Vec<usize>, got: Vec<usize> },

    #[error("id {id} in `{input}` is out of range: the model accepts ids from 0 to {}", vocab_size.saturating_sub(1))]
    TokenIdOutOfRange { input: &'static str, id: i64, vocab_size: usize },

    #[error("sequence of {len} tokens is longer than the model allows ({max}, `max_position_embeddings`): truncate the input")]
    SequenceTooLong { len: usize, max: usize },

    #[error("invalid input: {0}")]
    InvalidInput(String),

    #[error("unsupported: {0}")]
    Unsupported(String),

    #[error("tokenizer error: {0}")]
    Tokenizer(String),

    #[error(transparent)]
    Candle(#[from] candle_core::Error),
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
