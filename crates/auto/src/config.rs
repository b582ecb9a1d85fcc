//! `AutoConfig`: a model's `config.json`, from a Hub id, a folder or a JSON file.

use std::path::Path;

use autocandle_core::hub::ModelSource;
use autocandle_core::{LoadOptions, Loaded, PretrainedConfig, Result};
use serde_json::{Map, Value};

use crate::catalog::check_known;

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
    pub fn from_pretrained_with(id_or_path: &str, opts: &LoadOptions) -> Result<Loaded<PretrainedConfig>> {
        let path = Path::new(id_or_path);
        let mut config = if path.is_file() {
            PretrainedConfig::from_file(path)?
        } else {
            let source = ModelSource::resolve(id_or_path, opts)?;
            PretrainedConfig::from_file(&source.file("config.json")?)?
        };
        check_known(config.model_type())?;
        let unused_kwargs = config.apply_overrides(&opts.config_overrides)?;
        Ok(Loaded { value: config, unused_kwargs })
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
}
