//! Building a registered model from its config and weights.

use std::sync::Arc;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use crate::config::{ArchConfig, PretrainedConfig, RegisteredConfig};
use crate::error::{Error, Result};
use crate::options::DTypeChoice;
use crate::registry::{ModelRegistration, TaskHead};
use crate::weights::{checkpoint_var_builder, fresh_var_builder, Checkpoint};

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
    config.arch().ok_or_else(|| Error::NotCompiledIn {
        model_type: reg.model_type.to_owned(),
        feature: reg.model_type.to_owned(),
    })
}

/// Build the `M` head registered by `reg` from `checkpoint`.
pub fn build_from_checkpoint<M: TaskHead + ?Sized>(
    config: &PretrainedConfig,
    reg: &ModelRegistration,
    checkpoint: Arc<Checkpoint>,
    dtype: DType,
    device: &Device,
) -> Result<Box<M>> {
    let arch = arch_of(config, reg)?;
    let ctor = M::constructor(&reg.constructor).ok_or_else(|| {
        Error::config(reg.model_type, format!("{} is not registered as a {} head", reg.class_name, M::TASK))
    })?;
    let (vb, tracker) = checkpoint_var_builder(Arc::clone(&checkpoint), reg.base_model_prefix, dtype, device);
    let model = match ctor(arch.as_ref(), vb) {
        Ok(m) => m,
        Err(e) => return Err(tracker.take_error().unwrap_or(e)),
    };
    let used = tracker.used();
    // Buffers that older checkpoints saved and `transformers` ignores on load.
    let ignored = |n: &str| {
        ["position_ids", "attn.bias", "attn.masked_bias", "rotary_emb.inv_freq"].iter().any(|b| n.ends_with(b))
    };
    let unexpected: Vec<&String> = checkpoint.names().iter().filter(|n| !used.contains(*n) && !ignored(n)).collect();
    if !unexpected.is_empty() {
        tracing::warn!(
            "some weights of the checkpoint were not used when initialising {}: {:?}",
            reg.class_name,
            unexpected
        );
    }
    Ok(model)
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
    ctor(arch.as_ref(), fresh_var_builder(dtype, device))
}
