//! Configs: the typed per-architecture config trait and the generic `PretrainedConfig`.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::DType;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::registry::Registry;

/// `eos_token_id` and the like in a config: one id or a list of ids (`int | list[int] | None`
/// in `transformers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TokenIds {
    /// A single id (`"eos_token_id": 2`).
    One(i64),
    /// A list of ids (`"eos_token_id": [128001, 128009]`); any of them counts.
    Many(Vec<i64>),
}

impl TokenIds {
    /// Every id, in order.
    pub fn ids(&self) -> Vec<i64> {
        match self {
            Self::One(id) => vec![*id],
            Self::Many(ids) => ids.clone(),
        }
    }

    /// Whether `id` is one of the ids.
    pub fn contains(&self, id: i64) -> bool {
        match self {
            Self::One(one) => *one == id,
            Self::Many(many) => many.contains(&id),
        }
    }
}

/// `transformers`' `attribute_map`: move each value under a common name (`hidden_size`) to the
/// architecture's own name (`n_embd`), where it wins over a value already there, as setting
/// the common attribute does in Python.
pub fn apply_attribute_map(fields: &mut Map<String, Value>, map: &[(&str, &str)]) {
    for (common, own) in map {
        if let Some(value) = fields.remove(*common) {
            fields.insert((*own).to_owned(), value);
        }
    }
}

/// Declare a config struct whose `config.json` may use `transformers`' `attribute_map` names
/// (`hidden_size` for GPT-2's `n_embd`): the struct, and a `Deserialize` impl that resolves
/// those names ([`apply_attribute_map`]) before a derived deserialisation of a private twin
/// with the same fields and serde attributes (a serde `alias` would reject a config that
/// holds both names). A field `config.json` leaves out takes its value from the struct's
/// `Default`, which the calling crate implements. The calling crate needs `serde` with `derive`.
#[macro_export]
macro_rules! config_with_attribute_map {
    (
        attribute_map: [$(($common:literal, $own:literal)),* $(,)?];
        $(#[$meta:meta])*
        pub struct $name:ident { $( $(#[$fmeta:meta])* pub $field:ident: $ty:ty, )* }
    ) => {
        $(#[$meta])*
        pub struct $name { $( $(#[$fmeta])* pub $field: $ty, )* }

        const _: () = {
            #[derive(serde::Deserialize)]
            #[serde(default)]
            struct Wire { $( $(#[$fmeta])* $field: $ty, )* }

            impl Default for Wire {
                fn default() -> Self {
                    let defaults = <$name as Default>::default();
                    Self { $( $field: defaults.$field, )* }
                }
            }

            impl<'de> serde::Deserialize<'de> for $name {
                fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> ::std::result::Result<Self, D::Error> {
                    use $crate::__private::serde_json::{Map, Value};
                    let mut fields = <Map<String, Value> as serde::Deserialize>::deserialize(deserializer)?;
                    $crate::config::apply_attribute_map(&mut fields, &[$(($common, $own)),*]);
                    let wire = <Wire as serde::Deserialize>::deserialize(Value::Object(fields))
                        .map_err(<D::Error as serde::de::Error>::custom)?;
                    Ok(Self { $( $field: wire.$field, )* })
                }
            }
        };
    };
}

/// A typed architecture config (`BertConfig`), registered with `#[derive(AutoRegister)]`.
pub trait ArchConfig: Any + Send + Sync + Debug {
    /// The `model_type` this config is registered under.
    fn model_type(&self) -> &'static str;
    /// The `transformers` config class name (`BertConfig`).
    fn config_class(&self) -> &'static str;
    /// The config as `config.json` would hold it, every field included; an error when it
    /// cannot be written as JSON.
    fn to_json(&self) -> Result<Value>;
    /// For downcasting to the concrete type.
    fn as_any(&self) -> &dyn Any;
}

/// A config type known at compile time by its `model_type`.
pub trait RegisteredConfig: ArchConfig + Sized {
    /// The `model_type` the config is registered under (`"bert"`).
    const MODEL_TYPE: &'static str;
}

/// Label fields every `transformers` config has (`PretrainedConfig`), to flatten into an
/// architecture config with `#[serde(flatten)]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LabelConfig {
    /// Label name of each class index, keyed by the index as a string (`{"0": "NEGATIVE"}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id2label: Option<BTreeMap<String, String>>,
    /// Class index of each label name, the inverse of `id2label`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label2id: Option<BTreeMap<String, i64>>,
    /// Number of classes of a classification head; `id2label`, when given, decides instead (see
    /// the method `num_labels`, which also defaults to 2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_labels: Option<usize>,
    /// `single_label_classification`, `multi_label_classification` or `regression`; decides the pipelines' default score function.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem_type: Option<String>,
}

impl LabelConfig {
    /// `len(id2label)` when given, else `num_labels`, else 2 (the `transformers` default).
    pub fn num_labels(&self) -> usize {
        match (&self.id2label, self.num_labels) {
            (Some(map), _) if !map.is_empty() => map.len(),
            (_, Some(n)) => n,
            _ => 2,
        }
    }
}

/// Config keys every `transformers` config accepts (attributes of `PretrainedConfig`), so
/// overrides of them are never reported unused.
pub const COMMON_CONFIG_KEYS: &[&str] = &[
    "model_type",
    "architectures",
    "torch_dtype",
    "dtype",
    "transformers_version",
    "id2label",
    "label2id",
    "num_labels",
    "problem_type",
    "output_hidden_states",
    "output_attentions",
    "return_dict",
    "is_encoder_decoder",
    "is_decoder",
    "add_cross_attention",
    "tie_word_embeddings",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "sep_token_id",
    "decoder_start_token_id",
    "chunk_size_feed_forward",
    "pruned_heads",
    "tokenizer_class",
    "prefix",
    "task_specific_params",
    "finetuning_task",
    "use_cache",
];

/// A model's config: the `config.json` it was read from, with the typed architecture config
/// when that architecture is compiled in (`transformers`' `PretrainedConfig`).
#[derive(Debug, Clone)]
pub struct PretrainedConfig {
    model_type: String,
    raw: Map<String, Value>,
    arch: Option<Arc<dyn ArchConfig>>,
    source: Option<PathBuf>,
}

impl PretrainedConfig {
    /// Read and parse a `config.json` file. The typed config is parsed when its model type
    /// is registered; otherwise every field is kept in the generic form.
    pub fn from_file(path: &Path) -> Result<Self> {
        Self::from_file_or_guess(path, || None)
    }

    /// [`PretrainedConfig::from_file`] for a `config.json` that may lack `model_type`: then
    /// `guess` is asked for one (`transformers` looks for a known model type in the repo name)
    /// and, when it has one, it becomes the config's `model_type` field, as `transformers`'
    /// config class would write it back; without one the error stays
    /// [`Error::MissingModelType`].
    pub fn from_file_or_guess(path: &Path, guess: impl FnOnce() -> Option<String>) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let mut value: Value =
            serde_json::from_str(&text).map_err(|source| Error::MalformedJson { path: path.to_path_buf(), source })?;
        if let Value::Object(raw) = &mut value {
            let missing = match raw.get("model_type") {
                None | Some(Value::Null) => true,
                Some(Value::String(s)) => s.is_empty(),
                Some(_) => false,
            };
            if missing {
                if let Some(model_type) = guess() {
                    tracing::debug!(%model_type, "config.json has no model_type: guessed from the name");
                    raw.insert("model_type".into(), Value::String(model_type));
                }
            }
        }
        let mut config = Self::from_value(value, path)?;
        config.source = Some(path.to_path_buf());
        tracing::debug!(
            path = %path.display(),
            model_type = config.model_type(),
            config_class = config.arch().map(|a| a.config_class()),
            "config read"
        );
        Ok(config)
    }

    /// Parse a config from JSON; `origin` names it in errors.
    pub fn from_value(value: Value, origin: &Path) -> Result<Self> {
        let Value::Object(raw) = value else {
            return Err(Error::config("?", format!("`{}` must hold a JSON object", origin.display())));
        };
        let model_type = match raw.get("model_type") {
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(other) if !other.is_null() => {
                return Err(Error::config(
                    "?",
                    format!("`model_type` in `{}` must be a string, found {other}", origin.display()),
                ));
            }
            _ => return Err(Error::MissingModelType { path: origin.to_path_buf() }),
        };
        let mut config = Self { model_type, raw, arch: None, source: None };
        config.reparse()?;
        Ok(config)
    }

    /// A config for `model_type` with every field at its default (`AutoConfig.for_model`).
    pub fn for_model(model_type: &str, fields: Map<String, Value>) -> Result<Self> {
        let mut raw = fields;
        raw.insert("model_type".into(), Value::String(model_type.to_owned()));
        Self::from_value(Value::Object(raw), Path::new("<for_model>"))
    }

    /// Wrap an already typed architecture config.
    pub fn from_arch(arch: Arc<dyn ArchConfig>) -> Result<Self> {
        let raw = match arch.to_json()? {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let mut raw = raw;
        raw.insert("model_type".into(), Value::String(arch.model_type().to_owned()));
        Ok(Self { model_type: arch.model_type().to_owned(), raw, arch: Some(arch), source: None })
    }

    fn reparse(&mut self) -> Result<()> {
        check_common_fields(&self.model_type, &self.raw)?;
        let registry = Registry::global()?;
        self.arch = match registry.try_config(&self.model_type)? {
            Some(reg) => Some((reg.parse)(Value::Object(self.raw.clone()))?),
            None => None,
        };
        Ok(())
    }

    /// Replace fields with `overrides` (`from_pretrained(..., **kwargs)`) and return those that
    /// match no field of the config (`return_unused_kwargs`).
    pub fn apply_overrides(&mut self, overrides: &Map<String, Value>) -> Result<Map<String, Value>> {
        if overrides.is_empty() {
            return Ok(Map::new());
        }
        let typed_keys: Map<String, Value> = match self.arch.as_ref().map(|a| a.to_json()).transpose()? {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        let mut unused = Map::new();
        for (key, value) in overrides {
            if key == "model_type" {
                return Err(Error::config(
                    &self.model_type,
                    "`model_type` cannot be overridden: load the config of that model type instead",
                ));
            }
            let known = self.raw.contains_key(key)
                || typed_keys.contains_key(key)
                || COMMON_CONFIG_KEYS.contains(&key.as_str());
            if known {
                self.raw.insert(key.clone(), value.clone());
            } else {
                unused.insert(key.clone(), value.clone());
            }
        }
        self.reparse()?;
        Ok(unused)
    }

    /// The `model_type` field.
    pub fn model_type(&self) -> &str {
        &self.model_type
    }

    /// Every field as read (with overrides applied).
    pub fn raw(&self) -> &Map<String, Value> {
        &self.raw
    }

    /// One field as read.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.raw.get(key)
    }

    /// The file the config was read from.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// The typed architecture config, when that architecture is compiled in.
    pub fn arch(&self) -> Option<&Arc<dyn ArchConfig>> {
        self.arch.as_ref()
    }

    /// Whether this is a generic config: its model type has no config registered in this
    /// build (known but not compiled in or not implemented), so it holds the fields only.
    pub fn is_generic(&self) -> bool {
        self.arch.is_none()
    }

    /// The typed config as `C` (`config.downcast::<BertConfig>()`).
    pub fn downcast<C: ArchConfig>(&self) -> Option<&C> {
        self.arch.as_ref().and_then(|a| a.as_any().downcast_ref::<C>())
    }

    /// The `architectures` field.
    pub fn architectures(&self) -> Vec<String> {
        match self.raw.get("architectures") {
            Some(Value::Array(a)) => a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
            _ => Vec::new(),
        }
    }

    /// The float dtype named by `dtype` or `torch_dtype`, if any.
    pub fn dtype(&self) -> Option<DType> {
        let name = self
            .raw
            .get("dtype")
            .and_then(Value::as_str)
            .or_else(|| self.raw.get("torch_dtype").and_then(Value::as_str))?;
        match name.trim_start_matches("torch.") {
            "float32" | "float" => Some(DType::F32),
            "float16" | "half" => Some(DType::F16),
            "bfloat16" => Some(DType::BF16),
            "float64" | "double" => Some(DType::F64),
            _ => None,
        }
    }

    /// The config as JSON, ready to be saved as `config.json`.
    pub fn to_json(&self) -> Value {
        Value::Object(self.raw.clone())
    }
}

/// The dtype names `config.json` may hold in `dtype` / `torch_dtype` (with or without
/// `torch.`): the floating-point dtypes weights are stored in.
const CONFIG_DTYPES: &[&str] = &["float32", "float", "float16", "half", "bfloat16", "float64", "double"];

/// Validate the fields every `transformers` config has, as `PretrainedConfig` does: `dtype` /
/// `torch_dtype` names a floating-point dtype, `id2label` keys are integers, `label2id` values
/// are integers, `problem_type` is one of the three `transformers` knows. Each failure names
/// the field and says what it may hold.
fn check_common_fields(model_type: &str, raw: &Map<String, Value>) -> Result<()> {
    for key in ["dtype", "torch_dtype"] {
        match raw.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(name)) if CONFIG_DTYPES.contains(&name.trim_start_matches("torch.")) => {}
            // `"auto"` is an argument of `from_pretrained`, not a stored dtype; accept it as unset.
            Some(Value::String(name)) if name == "auto" => {}
            Some(other) => {
                return Err(Error::config(
                    model_type,
                    format!(
                        "`{key}` is {other}, which is not a dtype weights are stored in: use one of \"float32\", \
                         \"float16\", \"bfloat16\" (or remove the field)"
                    ),
                ))
            }
        }
    }
    match raw.get("id2label") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            if let Some((key, _)) = map.iter().find(|(k, _)| k.trim().parse::<i64>().is_err()) {
                return Err(Error::config(
                    model_type,
                    format!("`id2label` has the key {key:?}; its keys are class indices (\"0\", \"1\", ...)"),
                ));
            }
            if let Some((key, value)) = map.iter().find(|(_, v)| !v.is_string()) {
                return Err(Error::config(
                    model_type,
                    format!("`id2label[{key:?}]` is {value}; label names are strings"),
                ));
            }
        }
        Some(other) => {
            return Err(Error::config(
                model_type,
                format!("`id2label` is {other}; it maps class indices to label names ({{\"0\": \"NEGATIVE\"}})"),
            ))
        }
    }
    match raw.get("label2id") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            if let Some((key, value)) = map.iter().find(|(_, v)| !v.is_i64() && !v.is_u64()) {
                return Err(Error::config(
                    model_type,
                    format!("`label2id[{key:?}]` is {value}; class indices are integers"),
                ));
            }
        }
        Some(other) => {
            return Err(Error::config(
                model_type,
                format!("`label2id` is {other}; it maps label names to class indices ({{\"NEGATIVE\": 0}})"),
            ))
        }
    }
    const PROBLEM_TYPES: [&str; 3] = ["regression", "single_label_classification", "multi_label_classification"];
    match raw.get("problem_type") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(p)) if PROBLEM_TYPES.contains(&p.as_str()) => Ok(()),
        Some(other) => Err(Error::config(
            model_type,
            format!("`problem_type` is {other}; transformers knows {}", PROBLEM_TYPES.join(", ")),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::json;

    #[test]
    fn common_fields_are_validated() {
        let check = |extra: Value| {
            let mut raw = json!({"model_type": "no-such-type"});
            if let (Value::Object(m), Value::Object(e)) = (&mut raw, extra) {
                m.extend(e);
            }
            PretrainedConfig::from_value(raw, Path::new("config.json")).map(|_| ()).map_err(|e| e.to_string())
        };
        assert!(check(json!({"torch_dtype": "bfloat16", "dtype": "torch.float16"})).is_ok());
        assert!(check(json!({"id2label": {"0": "NEG", "1": "POS"}, "label2id": {"NEG": 0}})).is_ok());
        assert!(check(json!({"problem_type": "regression"})).is_ok());
        for (bad, field) in [
            (json!({"torch_dtype": "garbage"}), "`torch_dtype`"),
            (json!({"dtype": 3}), "`dtype`"),
            (json!({"dtype": "int8"}), "`dtype`"),
            (json!({"dtype": {"a": 1}}), "`dtype`"),
            (json!({"id2label": {"zero": "NEG"}}), "`id2label`"),
            (json!({"id2label": {"0": 5}}), "`id2label"),
            (json!({"label2id": {"NEG": "zero"}}), "`label2id"),
            (json!({"problem_type": "garbage"}), "`problem_type`"),
        ] {
            let err = check(bad.clone()).expect_err(&bad.to_string());
            assert!(err.contains(field), "{bad}: {err}");
        }
    }

    fn write(dir: &Path, value: &Value) -> PathBuf {
        let path = dir.join("config.json");
        std::fs::write(&path, serde_json::to_string_pretty(value).unwrap()).unwrap();
        path
    }

    #[test]
    fn generic_config_keeps_every_field() {
        let value = json!({
            "model_type": "some_unregistered_type",
            "architectures": ["SomeModel"],
            "hidden_size": 8,
            "rope_scaling": {"rope_type": "yarn", "factor": 4.0},
            "text_config": {"model_type": "x", "layers": [1, 2, 3]},
            "torch_dtype": "bfloat16",
            "nothing": null
        });
        let config = PretrainedConfig::from_value(value.clone(), Path::new("<test>")).unwrap();
        assert!(config.is_generic());
        assert_eq!(config.model_type(), "some_unregistered_type");
        assert_eq!(config.to_json(), value);
        assert_eq!(config.architectures(), ["SomeModel"]);
        assert_eq!(config.dtype(), Some(DType::BF16));
        // Field order is kept too: the JSON text round-trips.
        assert_eq!(serde_json::to_string(&config.to_json()).unwrap(), serde_json::to_string(&value).unwrap());
    }

    #[test]
    fn missing_model_type_is_guessed_only_when_absent() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), &json!({"hidden_size": 8}));
        let config = PretrainedConfig::from_file_or_guess(&path, || Some("guessed".to_owned())).unwrap();
        assert_eq!(config.model_type(), "guessed");
        assert_eq!(config.get("model_type"), Some(&json!("guessed")));
        assert_eq!(config.get("hidden_size"), Some(&json!(8)));
        assert_eq!(config.source(), Some(path.as_path()));

        let err = PretrainedConfig::from_file_or_guess(&path, || None).unwrap_err();
        assert!(matches!(err, Error::MissingModelType { .. }), "{err}");
        let err = PretrainedConfig::from_file(&path).unwrap_err();
        assert!(matches!(err, Error::MissingModelType { .. }), "{err}");

        for empty in [json!({"model_type": null}), json!({"model_type": ""})] {
            let path = write(dir.path(), &empty);
            let config = PretrainedConfig::from_file_or_guess(&path, || Some("guessed".to_owned())).unwrap();
            assert_eq!(config.model_type(), "guessed");
        }

        // A config that names its model type is never second-guessed.
        let path = write(dir.path(), &json!({"model_type": "named"}));
        let config = PretrainedConfig::from_file_or_guess(&path, || panic!("must not be asked")).unwrap();
        assert_eq!(config.model_type(), "named");
    }
}
