//! A config and two heads, as an architecture crate declares them: a model takes the model type
//! of its config type, and may restate it.
use autocandle_core::{
    AutoRegister, BaseModelOutput, ForMaskedLm, LoadModel, MaskedLmOutput, Model, ModelInputs, PreTrainedModel,
    Result,
};
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, AutoRegister)]
#[auto(config, model_type = "bert")]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
}

#[derive(Debug, AutoRegister)]
#[auto(task = "masked-lm", class = "BertForMaskedLM")]
pub struct BertForMaskedLm {
    decoder: Tensor,
}

impl LoadModel for BertForMaskedLm {
    type Config = BertConfig;
    const BASE_MODEL_PREFIX: &'static str = "bert";

    fn load(vb: VarBuilder<'_>, config: &BertConfig) -> Result<Self> {
        let decoder = vb.pp("cls.predictions.decoder").get((config.vocab_size, config.hidden_size), "weight")?;
        Ok(Self { decoder })
    }
}

impl PreTrainedModel for BertForMaskedLm {
    fn device(&self) -> &Device {
        self.decoder.device()
    }

    fn dtype(&self) -> DType {
        self.decoder.dtype()
    }
}

impl ForMaskedLm for BertForMaskedLm {
    fn forward(&self, inputs: &ModelInputs) -> Result<MaskedLmOutput> {
        let logits = self.decoder.embedding(&inputs.input_ids()?.flatten_all()?)?;
        Ok(MaskedLmOutput::new(logits))
    }
}

/// The model type restated: accepted because it is the config type's.
#[derive(Debug, AutoRegister)]
#[auto(model_type = "bert", task = "base")]
pub struct BertModel {
    embeddings: Tensor,
}

impl LoadModel for BertModel {
    type Config = BertConfig;
    const BASE_MODEL_PREFIX: &'static str = "bert";

    fn load(vb: VarBuilder<'_>, config: &BertConfig) -> Result<Self> {
        let embeddings = vb.get((config.vocab_size, config.hidden_size), "embeddings.word_embeddings.weight")?;
        Ok(Self { embeddings })
    }
}

impl PreTrainedModel for BertModel {
    fn device(&self) -> &Device {
        self.embeddings.device()
    }

    fn dtype(&self) -> DType {
        self.embeddings.dtype()
    }
}

impl Model for BertModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let hidden = self.embeddings.embedding(&inputs.input_ids()?.flatten_all()?)?;
        Ok(BaseModelOutput::new(hidden, None))
    }
}

mod nested {
    use autocandle_core::AutoRegister;

    // Registered from a nested module, with a where clause and no class override.
    #[derive(Debug, serde::Serialize, serde::Deserialize, AutoRegister)]
    #[auto(config, model_type = "bert_generation")]
    pub struct BertGenerationConfig
    where
        u8: Copy,
    {
        pub hidden_size: usize,
    }
}

// Declared by a `macro_rules!` macro, whose literals and `self` carry their own hygiene.
macro_rules! declare_config {
    ($name:ident, $model_type:literal) => {
        #[derive(Debug, serde::Serialize, serde::Deserialize, AutoRegister)]
        #[auto(config, model_type = $model_type)]
        pub struct $name {
            pub hidden_size: usize,
        }
    };
}

declare_config!(TinyConfig, "tiny");

fn main() {
    let _ = nested::BertGenerationConfig { hidden_size: 1 };
}
