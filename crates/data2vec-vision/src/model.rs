//! The data2vec-vision models: BEiT's, registered under their own classes.

use autocandle_beit::{
    BeitForImageClassification, BeitForSemanticSegmentation, BeitModel, HeadNames, SegmentationOptions,
};
use autocandle_core::{
    AutoRegister, BaseModelOutput, ForImageClassification, ForSemanticSegmentation, ImageClassifierOutput, LoadModel,
    Model, ModelInputs, PreTrainedModel, Result, SemanticSegmenterOutput,
};
use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use crate::config::Data2VecVisionConfig;

/// `transformers`' `base_model_prefix`.
const PREFIX: &str = "data2vec_vision";

/// The data2vec-vision encoder without a head (`Data2VecVisionModel`): `last_hidden_state`
/// `[B, 1 + patches, hidden]`; no pooler (`add_pooling_layer` is false for `AutoModel`).
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "Data2VecVisionModel")]
pub struct Data2VecVisionModel {
    inner: BeitModel,
}

impl LoadModel for Data2VecVisionModel {
    type Config = Data2VecVisionConfig;
    const BASE_MODEL_PREFIX: &'static str = PREFIX;

    fn load(vb: VarBuilder<'_>, config: &Data2VecVisionConfig) -> Result<Self> {
        Ok(Self { inner: BeitModel::new(vb, &config.to_beit(), false)? })
    }
}

impl Model for Data2VecVisionModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        Model::forward(&self.inner, inputs)
    }
}

/// data2vec-vision with a linear classifier on the pooled output
/// (`Data2VecVisionForImageClassification`).
#[derive(Debug, AutoRegister)]
#[auto(task = "image-classification", class = "Data2VecVisionForImageClassification")]
pub struct Data2VecVisionForImageClassification {
    inner: BeitForImageClassification,
}

impl LoadModel for Data2VecVisionForImageClassification {
    type Config = Data2VecVisionConfig;
    const BASE_MODEL_PREFIX: &'static str = PREFIX;

    fn load(vb: VarBuilder<'_>, config: &Data2VecVisionConfig) -> Result<Self> {
        Ok(Self { inner: BeitForImageClassification::new(vb, &config.to_beit(), PREFIX)? })
    }
}

impl ForImageClassification for Data2VecVisionForImageClassification {
    fn forward(&self, inputs: &ModelInputs) -> Result<ImageClassifierOutput> {
        ForImageClassification::forward(&self.inner, inputs)
    }
}

/// data2vec-vision for semantic segmentation (`Data2VecVisionForSemanticSegmentation`): BEiT's
/// feature pyramid and UperNet decode head; `logits` are `[batch, num_labels, 4·h, 4·w]` for the
/// config's `h x w` patch grid.
#[derive(Debug, AutoRegister)]
#[auto(task = "semantic-segmentation", class = "Data2VecVisionForSemanticSegmentation")]
pub struct Data2VecVisionForSemanticSegmentation {
    inner: BeitForSemanticSegmentation,
}

impl LoadModel for Data2VecVisionForSemanticSegmentation {
    type Config = Data2VecVisionConfig;
    const BASE_MODEL_PREFIX: &'static str = PREFIX;

    fn load(vb: VarBuilder<'_>, config: &Data2VecVisionConfig) -> Result<Self> {
        let beit = config.to_beit();
        let options = SegmentationOptions {
            model_type: "data2vec-vision",
            prefix: PREFIX,
            names: HeadNames::Data2VecVision,
            hidden_states: config.hidden_state_indices(),
            fixed_grid: Some(beit.patch_grid()),
        };
        Ok(Self { inner: BeitForSemanticSegmentation::new(vb, &beit, options)? })
    }
}

impl ForSemanticSegmentation for Data2VecVisionForSemanticSegmentation {
    fn forward(&self, inputs: &ModelInputs) -> Result<SemanticSegmenterOutput> {
        ForSemanticSegmentation::forward(&self.inner, inputs)
    }
}

macro_rules! through_inner {
    ($($head:ty),*) => {$(
        impl PreTrainedModel for $head {
            fn device(&self) -> &Device {
                self.inner.device()
            }

            fn dtype(&self) -> DType {
                self.inner.dtype()
            }
        }
    )*};
}

through_inner!(Data2VecVisionModel, Data2VecVisionForImageClassification, Data2VecVisionForSemanticSegmentation);
