//! Quantized execution: where a load's quantized weights come from ([`QuantSource`]) and the
//! settings ([`QuantSettings`]) that [`crate::nn`]'s linear layers and embeddings follow while a
//! model is built ([`with_quant_settings`]).
//!
//! Architectures do not change: they build their layers with [`crate::nn::linear`],
//! [`crate::nn::embedding`], ... from a `VarBuilder` as always, and while settings are in force
//! (a thread-local scope set by [`crate::load::build_from_checkpoint_with`]) those constructors
//! take a layer's weight from the [`QuantSource`] when it stores it quantized, or quantize the
//! float weight in place with [`QuantSettings::quantize`].

use std::cell::RefCell;
use std::sync::Arc;

use candle_core::quantized::QTensor;
use candle_core::Device;

use crate::error::Result;
use crate::options::QuantType;

/// Where the quantized weights of a load come from (the GGUF store implements it).
pub trait QuantSource: Send + Sync + std::fmt::Debug {
    /// The tensor the model asks for under `name` (the full dotted name it gives its
    /// VarBuilder, e.g. `model.layers.0.self_attn.q_proj.weight`) when it is stored quantized;
    /// `Ok(None)` when it is stored as floats (then it is read through the VarBuilder as usual).
    fn quantized(&self, name: &str, device: &Device) -> Result<Option<Arc<QTensor>>>;
}

/// How the linear layers and embeddings of a model being built keep their weights.
///
/// The default (no source, no in-situ type) is the float model.
#[derive(Debug, Clone, Default)]
pub struct QuantSettings {
    /// Weights stored quantized by the checkpoint (a GGUF file), used as they are.
    pub source: Option<Arc<dyn QuantSource>>,
    /// Quantize the float weights of linear layers (and embeddings) to this type at load.
    pub quantize: Option<QuantType>,
}

impl QuantSettings {
    /// Whether these settings change anything (a source or an in-situ type).
    pub fn is_active(&self) -> bool {
        self.source.is_some() || self.quantize.is_some()
    }
}

thread_local! {
    static CURRENT: RefCell<Option<QuantSettings>> = const { RefCell::new(None) };
}

/// Puts the previous settings back when dropped, on return and on unwinding alike.
struct Restore(Option<QuantSettings>);

impl Drop for Restore {
    fn drop(&mut self) {
        let previous = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// Run `build` with `settings` in force for the linear layers and embeddings it creates on this
/// thread (a scoped thread-local, restored afterwards, also on error or panic unwinding).
pub fn with_quant_settings<R>(settings: &QuantSettings, build: impl FnOnce() -> R) -> R {
    let active = settings.is_active().then(|| settings.clone());
    let previous = CURRENT.with(|c| c.replace(active));
    let _restore = Restore(previous);
    build()
}

/// The settings in force on this thread, when any are active (see [`with_quant_settings`]).
pub fn current_quant_settings() -> Option<QuantSettings> {
    CURRENT.with(|c| c.borrow().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Nothing;

    impl QuantSource for Nothing {
        fn quantized(&self, _name: &str, _device: &Device) -> Result<Option<Arc<QTensor>>> {
            Ok(None)
        }
    }

    #[test]
    fn settings_are_scoped_and_restored() {
        assert!(current_quant_settings().is_none());
        let outer = QuantSettings { source: None, quantize: Some(QuantType::Q8_0) };
        let inner = QuantSettings { source: Some(Arc::new(Nothing)), quantize: None };
        with_quant_settings(&outer, || {
            assert_eq!(current_quant_settings().and_then(|s| s.quantize), Some(QuantType::Q8_0));
            with_quant_settings(&inner, || {
                let now = current_quant_settings().unwrap();
                assert!(now.source.is_some() && now.quantize.is_none());
            });
            assert_eq!(current_quant_settings().and_then(|s| s.quantize), Some(QuantType::Q8_0));
            // Empty settings switch quantization off inside the scope.
            with_quant_settings(&QuantSettings::default(), || assert!(current_quant_settings().is_none()));
        });
        assert!(current_quant_settings().is_none());
    }

    #[test]
    fn settings_are_restored_after_a_panic() {
        let settings = QuantSettings { source: None, quantize: Some(QuantType::Q4K) };
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            with_quant_settings(&settings, || panic!("boom"))
        }));
        assert!(caught.is_err());
        assert!(current_quant_settings().is_none());
    }
}
