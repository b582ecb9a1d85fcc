//! Building a registered model from its config and weights.

use std::sync::Arc;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use crate::config::{ArchConfig, PretrainedConfig, RegisteredConfig};
use crate::error::{Error, Result};
use crate::options::{DTypeChoice, LoadingReport};
use crate::quant::{with_quant_settings, QuantSettings};
use crate::registry::{ModelRegistration, TaskHead};
use crate::weights::{checkpoint_var_builder_with, fresh_var_builder, loading_report, Checkpoint, LoadPolicy};
use crate::Task;

/// A model type that can be built from its typed config and a `VarBuilder`
/// (`PreTrainedModel` in `transformers`).
pub trait LoadModel: Sized {
    /// The typed config it is built from.
    type Config: RegisteredConfig;
    /// `transformers`' `base_model_prefix`: where the base model sits in head models (`bert`).
    const BASE_MODEL_PREFIX: &'static str;

    /// Build the model; weight names under `vb` read like the `transformers` state dict.
    fn load(vb: VarBuilder<'_>, config: &Self::Config) -> Result<Self>;
}

/// Downcast `config` to `M::Config` and build `M` (used by the derive's generated code).
pub fn construct<M: LoadModel>(config: &dyn ArchConfig, vb: VarBuilder<'_>) -> Result<M> {
    let typed = config.as_any().downcast_ref::<M::Config>().ok_or_else(|| Error::ConfigTypeMismatch {
        expected: std::any::type_name::<M::Config>(),
        got: config.config_class().to_owned(),
    })?;
    M::load(vb, typed)
}

/// The dtype to load in: the requested one, else the config's, else f32.
pub fn resolve_dtype(choice: DTypeChoice, config: &PretrainedConfig) -> DType {
    match choice {
        DTypeChoice::Fixed(d) => d,
        DTypeChoice::Auto => config.dtype().unwrap_or(DType::F32),
    }
}

fn arch_of<'c>(config: &'c PretrainedConfig, reg: &ModelRegistration) -> Result<&'c Arc<dyn ArchConfig>> {
    // The model is registered (so its crate is compiled in), its config type is not.
    config.arch().ok_or_else(|| Error::ConfigNotRegistered {
        model_type: reg.model_type.to_owned(),
        class_name: reg.class_name.to_owned(),
        config_model_type: reg.config_model_type.to_owned(),
    })
}

/// Build the `M` head registered by `reg` from `checkpoint`, strictly: every tensor must be
/// there with the model's shape (unused checkpoint tensors are logged).
pub fn build_from_checkpoint<M: TaskHead + ?Sized>(
    config: &PretrainedConfig,
    reg: &ModelRegistration,
    checkpoint: Arc<Checkpoint>,
    dtype: DType,
    device: &Device,
) -> Result<Box<M>> {
    let options =
        BuildOptions { dtype, device: device.clone(), policy: LoadPolicy::strict(), quant: QuantSettings::default() };
    build_from_checkpoint_with::<M>(config, reg, checkpoint, &options).map(|(model, _)| model)
}

/// How [`build_from_checkpoint_with`] builds a model.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The dtype of the floating-point weights.
    pub dtype: DType,
    /// The device the weights are loaded onto.
    pub device: Device,
    /// What to do with missing, unexpected and mismatched weights.
    pub policy: LoadPolicy,
    /// Which weights stay quantized (none by default): the settings the model's linear layers
    /// and embeddings are built under ([`crate::quant::with_quant_settings`]).
    pub quant: QuantSettings,
}

impl BuildOptions {
    /// `transformers`' `from_pretrained` semantics for `reg`, in `dtype` on `device`: a head
    /// model gets fresh weights for the head tensors its checkpoint lacks (a base checkpoint,
    /// or another head's), drawn with the config's `initializer_range`; a base model needs all
    /// its tensors. Shape mismatches are errors unless `ignore_mismatched_sizes`.
    pub fn from_pretrained(
        config: &PretrainedConfig,
        reg: &ModelRegistration,
        dtype: DType,
        device: &Device,
        ignore_mismatched_sizes: bool,
    ) -> Self {
        let initializer_range = ["initializer_range", "init_std"]
            .iter()
            .find_map(|k| config.get(k).and_then(serde_json::Value::as_f64))
            .filter(|r| r.is_finite() && *r >= 0.0)
            .unwrap_or(0.02);
        let policy =
            LoadPolicy { init_missing_head: reg.task != Task::Base, ignore_mismatched_sizes, initializer_range };
        Self { dtype, device: device.clone(), policy, quant: QuantSettings::default() }
    }
}

/// Build the `M` head registered by `reg` from `checkpoint` under `options.policy`, and report
/// what the checkpoint lacked, had to spare, or disagreed on (logged with `tracing::warn!`
/// when not empty).
///
/// A model that reads nothing at all from the checkpoint is an error even when every missing
/// tensor looks like a head tensor: the checkpoint belongs to another architecture.
pub fn build_from_checkpoint_with<M: TaskHead + ?Sized>(
    config: &PretrainedConfig,
    reg: &ModelRegistration,
    checkpoint: Arc<Checkpoint>,
    options: &BuildOptions,
) -> Result<(Box<M>, LoadingReport)> {
    let arch = arch_of(config, reg)?;
    let ctor = M::constructor(&reg.constructor).ok_or_else(|| {
        Error::config(reg.model_type, format!("{} is not registered as a {} head", reg.class_name, M::TASK))
    })?;
    let (vb, tracker) = checkpoint_var_builder_with(
        Arc::clone(&checkpoint),
        reg.base_model_prefix,
        options.dtype,
        &options.device,
        options.policy,
    );
    let started = std::time::Instant::now();
    let model = match with_quant_settings(&options.quant, || ctor(arch.as_ref(), vb)) {
        Ok(m) => m,
        Err(e) => return Err(tracker.take_error().unwrap_or(e)),
    };
    let report = loading_report(&checkpoint, &tracker);
    tracing::debug!(
        class = reg.class_name,
        tensors_loaded = tracker.used().len(),
        checkpoint_tensors = checkpoint.names().len(),
        missing = report.missing_keys.len(),
        unexpected = report.unexpected_keys.len(),
        mismatched = report.mismatched_keys.len(),
        elapsed = ?started.elapsed(),
        "weights loaded"
    );
    if !report.missing_keys.is_empty() || !report.unexpected_keys.is_empty() {
        tracing::debug!(
            missing_keys = ?report.missing_keys,
            unexpected_keys = ?report.unexpected_keys,
            "loading report keys"
        );
    }
    if tracker.used().is_empty() {
        if let Some(name) = report.missing_keys.first() {
            return Err(Error::TensorNotFound { name: name.clone(), files: checkpoint.describe_files() });
        }
    }
    if !report.is_empty() {
        tracing::warn!("loading {} from {}: {report}", reg.class_name, checkpoint.describe_files());
    }
    Ok((model, report))
}

/// `transformers`' `_get_model_class`: among the registrations that serve a task for one
/// model type (`candidates`), the first one whose class is named in the config's
/// `architectures` (checked in order); `None` when none is named, and the caller keeps its
/// default (the first of `transformers`' mapping, the registry's head here).
pub fn select_registration<'r>(
    candidates: &[&'r ModelRegistration],
    architectures: &[String],
) -> Option<&'r ModelRegistration> {
    architectures.iter().find_map(|arch| candidates.iter().find(|r| r.class_name == arch.as_str()).copied())
}

/// Build the `M` head registered by `reg` with freshly initialised weights (`from_config`).
pub fn build_fresh<M: TaskHead + ?Sized>(
    config: &PretrainedConfig,
    reg: &ModelRegistration,
    dtype: DType,
    device: &Device,
) -> Result<Box<M>> {
    let arch = arch_of(config, reg)?;
    let ctor = M::constructor(&reg.constructor).ok_or_else(|| {
        Error::config(reg.model_type, format!("{} is not registered as a {} head", reg.class_name, M::TASK))
    })?;
    tracing::debug!(class = reg.class_name, ?dtype, device = ?device.location(), "building with fresh weights");
    ctor(arch.as_ref(), fresh_var_builder(dtype, device))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::Constructor;
    use crate::ForSequenceClassification;

    fn unused(_: &dyn ArchConfig, _: VarBuilder<'_>) -> Result<Box<dyn ForSequenceClassification>> {
        Err(Error::config("toy", "unused"))
    }

    fn head(class_name: &'static str) -> ModelRegistration {
        ModelRegistration {
            model_type: "toy",
            task: Task::SequenceClassification,
            class_name,
            source: "tests::Toy",
            base_model_prefix: "toy",
            config_model_type: "toy",
            constructor: Constructor::SequenceClassification(unused),
        }
    }

    #[test]
    fn the_named_architecture_wins_among_candidates() {
        // Funnel's style: two classes serve one task; `architectures` picks.
        let (full, base) = (head("ToyForSequenceClassification"), head("ToyBaseForSequenceClassification"));
        let candidates = [&full, &base];
        let names = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let pick = |a: &[&str]| select_registration(&candidates, &names(a)).map(|r| r.class_name);
        assert_eq!(pick(&["ToyBaseForSequenceClassification"]), Some("ToyBaseForSequenceClassification"));
        assert_eq!(pick(&["ToyForSequenceClassification"]), Some("ToyForSequenceClassification"));
        // Every entry of `architectures` is tried in order, as `_get_model_class` does.
        assert_eq!(
            pick(&["ToyForMaskedLM", "ToyBaseForSequenceClassification"]),
            Some("ToyBaseForSequenceClassification")
        );
        // None named: the caller's default.
        assert_eq!(pick(&["ToyForMaskedLM"]), None);
        assert_eq!(pick(&[]), None);
    }

    #[test]
    fn a_registered_model_without_a_registered_config_says_so() {
        // `toy` has no config registered: the config is generic.
        let config = PretrainedConfig::for_model("toy", serde_json::Map::new()).unwrap();
        assert!(config.is_generic());
        let reg = head("ToyForSequenceClassification");
        let err = build_fresh::<dyn ForSequenceClassification>(&config, &reg, DType::F32, &Device::Cpu).err().unwrap();
        assert!(matches!(err, Error::ConfigNotRegistered { .. }), "{err}");
        let message = err.to_string();
        // It names the model and the config to register, and no feature (the crate is there).
        assert!(
            message.contains("ToyForSequenceClassification")
                && message.contains("#[auto(config, model_type = \"toy\")]")
        );
        assert!(!message.contains("feature"), "{message}");
    }
}
