//! `#[auto(crate = "...")]`: code that reaches autocandle's core by another path (here a
//! re-export, as a crate that depends only on the `autocandle` facade does).
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

mod facade {
    pub use autocandle_core as core;
}

use facade::core::{AutoRegister, LoadModel, MaskedLmOutput, ModelInputs, PreTrainedModel, Result, Task};

#[derive(Debug, serde::Serialize, serde::Deserialize, AutoRegister)]
#[auto(config, model_type = "toy-crate-path", crate = "facade::core")]
pub struct ToyConfig {
    pub hidden_size: usize,
}

#[derive(Debug, AutoRegister)]
#[auto(task = "masked-lm", crate = "facade::core")]
pub struct ToyForMaskedLm {
    weight: Tensor,
}

impl LoadModel for ToyForMaskedLm {
    type Config = ToyConfig;
    const BASE_MODEL_PREFIX: &'static str = "toy";

    fn load(vb: VarBuilder<'_>, config: &ToyConfig) -> Result<Self> {
        Ok(Self { weight: vb.get(config.hidden_size, "weight")? })
    }
}

impl PreTrainedModel for ToyForMaskedLm {
    fn device(&self) -> &Device {
        self.weight.device()
    }

    fn dtype(&self) -> DType {
        self.weight.dtype()
    }
}

impl facade::core::ForMaskedLm for ToyForMaskedLm {
    fn forward(&self, _inputs: &ModelInputs) -> Result<MaskedLmOutput> {
        Ok(MaskedLmOutput::new(self.weight.clone()))
    }
}

fn main() {
    let registry = facade::core::registry::Registry::global().unwrap();
    assert_eq!(registry.config("toy-crate-path").unwrap().config_class, "ToyConfig");
    let head = registry.model("toy-crate-path", Task::MaskedLm).unwrap();
    assert_eq!(head.class_name, "ToyForMaskedLm");
}
