//! Loading one tower of a dual encoder (`CLIPTextModel`, `CLIPVisionModelWithProjection`, ...)
//! from its own checkpoint or from the checkpoint of the whole model, as `transformers`'
//! `from_pretrained` does for these classes: the config is the tower's own `config.json` or
//! the `text_config` / `vision_config` of the composite one, and the weights are read under
//! the tower's prefix (`text_model.`), with or without it in the checkpoint.

use std::sync::Arc;

use candle_core::DType;
use candle_nn::VarBuilder;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use autocandle_core::config::COMMON_CONFIG_KEYS;
use autocandle_core::hub::ModelSource;
use autocandle_core::weights::{checkpoint_var_builder, find_weight_files, loading_report, Checkpoint};
use autocandle_core::{DTypeChoice, Error, LoadOptions, Loaded, PretrainedConfig, Result};

/// Where one tower's config and weights are in the checkpoints it loads from.
#[derive(Debug, Clone, Copy)]
pub struct Tower {
    /// The `transformers` class, for errors (`CLIPTextModel`).
    pub class: &'static str,
    /// The tower's own model type (`clip_text_model`).
    pub model_type: &'static str,
    /// The model type of the composite model (`clip`).
    pub composite: &'static str,
    /// The key of the tower's config in the composite config (`text_config`).
    pub config_key: &'static str,
    /// The tower's attribute in the composite model (`text_model`): weight names are tried with
    /// and without it.
    pub prefix: &'static str,
    /// Fields of the composite config that replace the tower config's (`projection_dim`: the
    /// composite's shapes the projections in its checkpoint).
    pub inherit: &'static [&'static str],
}

impl Tower {
    /// Load with `build` from a Hub repo id or a local folder.
    ///
    /// `opts.config_overrides` replace fields of the tower's config; those that match no field
    /// come back in `unused_kwargs`. The dtype `auto` follows the `dtype` / `torch_dtype` of
    /// the checkpoint's `config.json`.
    pub fn load<C, T>(
        &self,
        id_or_path: &str,
        opts: &LoadOptions,
        build: impl FnOnce(VarBuilder<'static>, &C) -> Result<T>,
    ) -> Result<Loaded<T>>
    where
        C: Serialize + DeserializeOwned + Default,
    {
        let source = ModelSource::resolve(id_or_path, opts)?;
        let top = PretrainedConfig::from_file(&source.file("config.json")?)?;
        let mut fields = self.config_fields(&top)?;
        let known = match serde_json::to_value(C::default()) {
            Ok(Value::Object(defaults)) => defaults,
            _ => Map::new(),
        };
        let mut unused_kwargs = Map::new();
        for (key, value) in &opts.config_overrides {
            if fields.contains_key(key) || known.contains_key(key) || COMMON_CONFIG_KEYS.contains(&key.as_str()) {
                fields.insert(key.clone(), value.clone());
            } else {
                unused_kwargs.insert(key.clone(), value.clone());
            }
        }
        let config: C =
            serde_json::from_value(Value::Object(fields)).map_err(|e| Error::config(self.model_type, e.to_string()))?;
        let dtype = match opts.dtype {
            DTypeChoice::Fixed(dtype) => dtype,
            DTypeChoice::Auto => top.dtype().unwrap_or(DType::F32),
        };
        let checkpoint = Arc::new(Checkpoint::open(find_weight_files(&source)?)?);
        let (vb, tracker) = checkpoint_var_builder(Arc::clone(&checkpoint), self.prefix, dtype, &opts.device);
        let value = build(vb, &config).map_err(|e| tracker.take_error().unwrap_or(e))?;
        let report = loading_report(&checkpoint, &tracker);
        Ok(Loaded { value, unused_kwargs, report })
    }

    /// The tower's config fields: the whole config of a tower checkpoint, or the sub-config of
    /// a composite one (`text_config_dict` first, as `transformers` lets it override).
    fn config_fields(&self, top: &PretrainedConfig) -> Result<Map<String, Value>> {
        if top.model_type() == self.model_type {
            return Ok(top.raw().clone());
        }
        if top.model_type() != self.composite {
            return Err(Error::config(
                top.model_type(),
                format!(
                    "{} loads a checkpoint of model type `{}` or `{}`, not `{}`",
                    self.class,
                    self.model_type,
                    self.composite,
                    top.model_type()
                ),
            ));
        }
        let legacy = format!("{}_dict", self.config_key);
        let mut fields = match top.get(&legacy).filter(|v| !v.is_null()).or_else(|| top.get(self.config_key)) {
            Some(Value::Object(fields)) => fields.clone(),
            None | Some(Value::Null) => Map::new(),
            Some(other) => {
                return Err(Error::config(
                    self.composite,
                    format!("`{}` must be a JSON object, found {other}", self.config_key),
                ))
            }
        };
        for key in self.inherit {
            if let Some(value) = top.get(key).filter(|v| !v.is_null()) {
                fields.insert((*key).to_owned(), value.clone());
            }
        }
        Ok(fields)
    }
}
