//! `AutoConfig`: a model's `config.json`, from a Hub id, a folder or a JSON file.

use std::path::Path;

use autocandle_core::registry::{ConfigRegistration, Registry};
use autocandle_core::{Error, LoadOptions, Loaded, PretrainedConfig, RegisteredConfig, Result};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::catalog::{check_known, model_type_from_name};

/// The text `transformers`' name fallback searches for a model type: the repo id of a Hub
/// model; the folder's name of a local folder, or `folder/file` of a local file. Only the last
/// components of a local path count, so that the folders around a model (`/home/sam/...`)
/// cannot decide its architecture.
pub(crate) fn name_to_match(id_or_path: &str) -> String {
    let path = Path::new(id_or_path);
    if !path.exists() {
        return id_or_path.to_owned();
    }
    let full = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned());
    if full.is_file() {
        let file = name(&full).unwrap_or_default();
        match full.parent().and_then(name) {
            Some(folder) => format!("{folder}/{file}"),
            None => file,
        }
    } else {
        name(&full).unwrap_or_else(|| id_or_path.to_owned())
    }
}

/// Reads `config.json` and returns the config of the right architecture
/// (`transformers.AutoConfig`).
#[derive(Debug, Clone, Copy)]
pub struct AutoConfig;

impl AutoConfig {
    /// Load the config of a Hub repo id, a local folder, or a path to a JSON file.
    pub fn from_pretrained(id_or_path: &str) -> Result<PretrainedConfig> {
        Self::from_pretrained_with(id_or_path, &LoadOptions::default()).map(|l| l.value)
    }

    /// [`AutoConfig::from_pretrained`] with options; overrides in `opts.config_overrides` that
    /// match no config field come back in `unused_kwargs`.
    ///
    /// Every model type of the catalog (docs/models.md) parses: one that is not compiled in or
    /// not implemented gives a generic config ([`PretrainedConfig::is_generic`]) that keeps
    /// every field and serialises back to them. A `config.json` without `model_type` gets the
    /// model type found in the name, as `transformers` does: the longest known model type that
    /// occurs in the Hub repo id, or in the folder's name for a local folder (the folder and
    /// file name for a JSON file), see [`crate::catalog::model_type_from_name`]; when none
    /// occurs, the error is [`Error::MissingModelType`](crate::Error::MissingModelType).
    pub fn from_pretrained_with(id_or_path: &str, opts: &LoadOptions) -> Result<Loaded<PretrainedConfig>> {
        let path = Path::new(id_or_path);
        let mut config = if path.is_file() && !autocandle_core::gguf::is_gguf_path(path) {
            PretrainedConfig::from_file_or_guess(path, || {
                model_type_from_name(&name_to_match(id_or_path)).map(str::to_owned)
            })?
        } else {
            match autocandle_core::gguf::locate(id_or_path, opts)? {
                (_, Some(gguf)) => autocandle_core::gguf::read_config(&gguf)?,
                (source, None) => PretrainedConfig::from_file_or_guess(&source.file("config.json")?, || {
                    model_type_from_name(&name_to_match(id_or_path)).map(str::to_owned)
                })?,
            }
        };
        check_known(config.model_type())?;
        let unused_kwargs = config.apply_overrides(&opts.config_overrides)?;
        Ok(Loaded { value: config, unused_kwargs, report: Default::default() })
    }

    /// A config of `model_type` with default values, updated by `fields` (`AutoConfig.for_model`).
    pub fn for_model(model_type: &str, fields: Map<String, Value>) -> Result<PretrainedConfig> {
        check_known(model_type)?;
        PretrainedConfig::for_model(model_type, fields)
    }

    /// Parse a config from a JSON value (for configs built in code).
    pub fn from_json(value: Value) -> Result<PretrainedConfig> {
        let config = PretrainedConfig::from_value(value, Path::new("<json>"))?;
        check_known(config.model_type())?;
        Ok(config)
    }

    /// Register the config type `C` for `model_type` at run time (`transformers`'
    /// `AutoConfig.register(model_type, config, exist_ok)`): `config.json` files with that
    /// `model_type` parse into `C` from now on, for every Auto class. For architectures defined
    /// outside autocandle without `#[derive(AutoRegister)]`; register the models with
    /// `AutoModelFor*::register` next.
    ///
    /// Errors: `C`'s own model type (`RegisteredConfig::MODEL_TYPE`) is not `model_type`; the
    /// model type already has a config (compiled in or registered at run time) and `exist_ok`
    /// is false (with `exist_ok`, `C` replaces it).
    pub fn register<C>(model_type: &str, exist_ok: bool) -> Result<()>
    where
        C: RegisteredConfig + DeserializeOwned,
    {
        if model_type != C::MODEL_TYPE {
            return Err(Error::config(
                model_type,
                format!(
                    "the config `{}` has model type `{}`, not `{model_type}`: register it under `{}`, or change its \
                     `RegisteredConfig::MODEL_TYPE` so that they match",
                    std::any::type_name::<C>(),
                    C::MODEL_TYPE,
                    C::MODEL_TYPE
                ),
            ));
        }
        let registration = ConfigRegistration {
            model_type: C::MODEL_TYPE,
            config_class: crate::model::short_type_name::<C>(),
            source: std::any::type_name::<C>(),
            parse: autocandle_core::__private::parse_config::<C>,
        };
        Registry::global()?.register_config(registration, exist_ok).map(drop)
    }
}
