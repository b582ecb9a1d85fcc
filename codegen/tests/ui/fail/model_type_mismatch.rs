use autocandle_core::{AutoRegister, ForMaskedLm, LoadModel, MaskedLmOutput, ModelInputs, PreTrainedModel, Result};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

#[derive(Debug, serde::Serialize, serde::Deserialize, AutoRegister)]
#[auto(config, model_type = "bert")]
pub struct BertConfig {
    pub hidden_size: usize,
}

// Restates a model type that is not its config type's.
#[derive(Debug, AutoRegister)]
#[auto(model_type = "roberta", task = "masked-lm")]
pub struct RobertaForMaskedLM {
    weight: Tensor,
}

impl LoadModel for RobertaForMaskedLM {
    type Config = BertConfig;
    const BASE_MODEL_PREFIX: &'static str = "roberta";

    fn load(vb: VarBuilder<'_>, config: &BertConfig) -> Result<Self> {
        Ok(Self { weight: vb.get(config.hidden_size, "weight")? })
    }
}

impl PreTrainedModel for RobertaForMaskedLM {
    fn device(&self) -> &Device {
        self.weight.device()
    }

    fn dtype(&self) -> DType {
        self.weight.dtype()
    }
}

impl ForMaskedLm for RobertaForMaskedLM {
    fn forward(&self, _inputs: &ModelInputs) -> Result<MaskedLmOutput> {
        Ok(MaskedLmOutput::new(self.weight.clone()))
    }
}

fn main() {}
