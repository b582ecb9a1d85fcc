//! A small architecture defined outside autocandle and loaded through its Auto classes.
//!
//! `TinyMlp` embeds the tokens and runs one `tanh` dense layer over them (the base model,
//! `AutoModel`, with the mean over the sequence as its pooled output); its one head classifies
//! that pooled output with a linear layer (`AutoModelForSequenceClassification`). Weight
//! names follow a `transformers` state dict: `tiny_mlp.embeddings.weight`,
//! `tiny_mlp.dense.{weight,bias}`, `classifier.{weight,bias}` (base checkpoints without the
//! `tiny_mlp.` prefix load too).
//!
//! The network is registered under two model types, the two ways autocandle offers:
//!
//! - `tiny-mlp` ([`TINY_MLP`]): [`TinyMlpConfig`], [`TinyMlpModel`] and
//!   [`TinyMlpForSequenceClassification`] carry `#[derive(AutoRegister)]`, so linking this
//!   crate registers them;
//! - `tiny-mlp-runtime` ([`TINY_MLP_RUNTIME`]): [`RuntimeConfig`], [`RuntimeModel`] and
//!   [`RuntimeForSequenceClassification`] are registered by [`register_runtime`], at run
//!   time, through `AutoConfig::register` and `AutoModelFor*::register` (`transformers`'
//!   `AutoConfig.register` / `AutoModel.register`), as code that cannot use the derive, or
//!   registers conditionally, would.
//!
//! ```no_run
//! use autocandle::{AutoModel, AutoModelForSequenceClassification};
//! # fn main() -> autocandle::Result<()> {
//! autocandle_example_custom::register_runtime(false)?;
//! let base = AutoModel::from_pretrained("path/to/a/tiny-mlp-runtime/checkpoint")?;
//! let classifier = AutoModelForSequenceClassification::from_pretrained("path/to/a/tiny-mlp/checkpoint")?;
//! # Ok(()) }
//! ```

use autocandle::arch_api::{
    ArchConfig, AutoRegister, BaseModelOutput, ForSequenceClassification, LabelConfig, LoadModel, Model, ModelInputs,
    PreTrainedModel, RegisteredConfig, Result, SequenceClassifierOutput,
};
use autocandle::{AutoConfig, AutoModel, AutoModelForSequenceClassification};
use candle_core::{DType, Device, Module};
use candle_nn::{embedding, linear, Embedding, Linear, VarBuilder};
use serde::{Deserialize, Serialize};

/// The model type registered with `#[derive(AutoRegister)]`.
pub const TINY_MLP: &str = "tiny-mlp";
/// The model type registered at run time by [`register_runtime`].
pub const TINY_MLP_RUNTIME: &str = "tiny-mlp-runtime";

/// `config.json` of a `tiny-mlp` model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AutoRegister)]
#[auto(config, model_type = "tiny-mlp", class = "TinyMlpConfig")]
pub struct TinyMlpConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    /// `id2label` / `num_labels`: the classifier's outputs.
    #[serde(flatten)]
    pub labels: LabelConfig,
}

/// The network itself: token embeddings and one `tanh` dense layer.
#[derive(Debug, Clone)]
pub struct TinyMlp {
    embeddings: Embedding,
    dense: Linear,
}

impl TinyMlp {
    fn load(vb: VarBuilder<'_>, config: &TinyMlpConfig) -> Result<Self> {
        Ok(Self {
            embeddings: embedding(config.vocab_size, config.hidden_size, vb.pp("embeddings"))?,
            dense: linear(config.hidden_size, config.hidden_size, vb.pp("dense"))?,
        })
    }

    /// `last_hidden_state` `[batch, seq, hidden]` and its mean over the sequence as `pooler_output`.
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let hidden = self.dense.forward(&self.embeddings.forward(inputs.input_ids()?)?)?.tanh()?;
        let pooled = hidden.mean(1)?;
        Ok(BaseModelOutput::new(hidden, Some(pooled)))
    }
}

impl PreTrainedModel for TinyMlp {
    fn device(&self) -> &Device {
        self.embeddings.embeddings().device()
    }

    fn dtype(&self) -> DType {
        self.embeddings.embeddings().dtype()
    }
}

/// The network with its classification head: a linear layer over the pooled output.
#[derive(Debug, Clone)]
pub struct TinyMlpClassifier {
    mlp: TinyMlp,
    classifier: Linear,
}

impl TinyMlpClassifier {
    fn load(vb: VarBuilder<'_>, config: &TinyMlpConfig) -> Result<Self> {
        Ok(Self {
            mlp: TinyMlp::load(vb.pp("tiny_mlp"), config)?,
            classifier: linear(config.hidden_size, config.labels.num_labels(), vb.pp("classifier"))?,
        })
    }

    fn forward(&self, inputs: &ModelInputs) -> Result<SequenceClassifierOutput> {
        let pooled = self.mlp.forward(inputs)?.pooler_output.ok_or_else(|| {
            autocandle::Error::Unsupported("TinyMlp always pools; this is a bug of the example".to_owned())
        })?;
        Ok(SequenceClassifierOutput::new(self.classifier.forward(&pooled)?))
    }
}

impl PreTrainedModel for TinyMlpClassifier {
    fn device(&self) -> &Device {
        self.mlp.device()
    }

    fn dtype(&self) -> DType {
        self.mlp.dtype()
    }
}

/// `TinyMlpModel`: the base model of `tiny-mlp` (`AutoModel`).
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "TinyMlpModel")]
pub struct TinyMlpModel(TinyMlp);

impl LoadModel for TinyMlpModel {
    type Config = TinyMlpConfig;
    const BASE_MODEL_PREFIX: &'static str = "tiny_mlp";

    fn load(vb: VarBuilder<'_>, config: &TinyMlpConfig) -> Result<Self> {
        TinyMlp::load(vb, config).map(Self)
    }
}

/// `TinyMlpForSequenceClassification`: the classifier of `tiny-mlp`
/// (`AutoModelForSequenceClassification`).
#[derive(Debug, AutoRegister)]
#[auto(task = "sequence-classification", class = "TinyMlpForSequenceClassification")]
pub struct TinyMlpForSequenceClassification(TinyMlpClassifier);

impl LoadModel for TinyMlpForSequenceClassification {
    type Config = TinyMlpConfig;
    const BASE_MODEL_PREFIX: &'static str = "tiny_mlp";

    fn load(vb: VarBuilder<'_>, config: &TinyMlpConfig) -> Result<Self> {
        TinyMlpClassifier::load(vb, config).map(Self)
    }
}

/// `config.json` of a `tiny-mlp-runtime` model: the fields of [`TinyMlpConfig`].
///
/// Without the derive, a config type implements `ArchConfig` and `RegisteredConfig` itself
/// (and `serde::Deserialize`, for `AutoConfig::register`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RuntimeConfig(pub TinyMlpConfig);

impl ArchConfig for RuntimeConfig {
    fn model_type(&self) -> &'static str {
        Self::MODEL_TYPE
    }

    fn config_class(&self) -> &'static str {
        "RuntimeConfig"
    }

    fn to_json(&self) -> autocandle::Result<serde_json::Value> {
        serde_json::to_value(self).map_err(|e| autocandle::Error::config(Self::MODEL_TYPE, e.to_string()))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

impl RegisteredConfig for RuntimeConfig {
    const MODEL_TYPE: &'static str = TINY_MLP_RUNTIME;
}

/// The base model of `tiny-mlp-runtime`, registered by [`register_runtime`].
#[derive(Debug)]
pub struct RuntimeModel(TinyMlp);

impl LoadModel for RuntimeModel {
    type Config = RuntimeConfig;
    const BASE_MODEL_PREFIX: &'static str = "tiny_mlp";

    fn load(vb: VarBuilder<'_>, config: &RuntimeConfig) -> Result<Self> {
        TinyMlp::load(vb, &config.0).map(Self)
    }
}

/// The classifier of `tiny-mlp-runtime`, registered by [`register_runtime`].
#[derive(Debug)]
pub struct RuntimeForSequenceClassification(TinyMlpClassifier);

impl LoadModel for RuntimeForSequenceClassification {
    type Config = RuntimeConfig;
    const BASE_MODEL_PREFIX: &'static str = "tiny_mlp";

    fn load(vb: VarBuilder<'_>, config: &RuntimeConfig) -> Result<Self> {
        TinyMlpClassifier::load(vb, &config.0).map(Self)
    }
}

/// The four model types forward to the shared network.
macro_rules! delegate {
    ($($model:ident: $trait:ident -> $out:ident;)*) => {$(
        impl PreTrainedModel for $model {
            fn device(&self) -> &Device {
                self.0.device()
            }

            fn dtype(&self) -> DType {
                self.0.dtype()
            }
        }

        impl $trait for $model {
            fn forward(&self, inputs: &ModelInputs) -> Result<$out> {
                self.0.forward(inputs)
            }
        }
    )*};
}

delegate! {
    TinyMlpModel: Model -> BaseModelOutput;
    TinyMlpForSequenceClassification: ForSequenceClassification -> SequenceClassifierOutput;
    RuntimeModel: Model -> BaseModelOutput;
    RuntimeForSequenceClassification: ForSequenceClassification -> SequenceClassifierOutput;
}

/// Register `tiny-mlp-runtime`: its config, its base model and its classifier
/// (`AutoConfig.register` then `AutoModel.register` in `transformers`).
///
/// Registering twice is an error unless `exist_ok` is true.
pub fn register_runtime(exist_ok: bool) -> Result<()> {
    AutoConfig::register::<RuntimeConfig>(TINY_MLP_RUNTIME, exist_ok)?;
    AutoModel::register::<RuntimeConfig, RuntimeModel>(exist_ok)?;
    AutoModelForSequenceClassification::register::<RuntimeConfig, RuntimeForSequenceClassification>(exist_ok)
}
