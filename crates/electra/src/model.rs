//! The ELECTRA encoder (`ElectraModel`): BERT's embeddings at `embedding_size`, projected to
//! `hidden_size` by `embeddings_project` when the two differ, then BERT's layer stack.

use autocandle_core::nn::{linear, Linear};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;

use autocandle_bert::{BertConfig, BertEmbeddings, BertEncoder};
use autocandle_core::heads::Encoder;
use autocandle_core::{
    AutoRegister, BaseModelOutput, ForTextEncoding, LoadModel, Model, ModelInputs, PreTrainedModel, Result,
};

use crate::config::ElectraConfig;

/// The ELECTRA encoder (`transformers`' `ElectraModel`), the base of every head:
/// `last_hidden_state` `[batch, seq, hidden_size]`, no pooler. With `is_decoder` the
/// self-attention is causal.
#[derive(Debug, AutoRegister)]
#[auto(task = "base")]
pub struct ElectraModel {
    embeddings: BertEmbeddings,
    embeddings_project: Option<Linear>,
    encoder: BertEncoder,
    embedding_config: BertConfig,
    config: ElectraConfig,
    device: Device,
    dtype: DType,
}

impl ElectraModel {
    /// Build the encoder from weights named as `transformers`' `ElectraModel` state dict
    /// (`embeddings.*`, `embeddings_project.*` when `embedding_size != hidden_size`,
    /// `encoder.layer.N.*`).
    pub fn new(vb: VarBuilder<'_>, config: &ElectraConfig) -> Result<Self> {
        config.validate()?;
        let embedding_config = config.embedding_config();
        let embeddings = BertEmbeddings::new(vb.pp("embeddings"), &embedding_config)?;
        let embeddings_project = if config.embedding_size != config.hidden_size {
            Some(linear(config.embedding_size, config.hidden_size, vb.pp("embeddings_project"))?)
        } else {
            None
        };
        let encoder = BertEncoder::new(vb.pp("encoder"), &config.bert_config())?;
        Ok(Self {
            embeddings,
            embeddings_project,
            encoder,
            embedding_config,
            config: config.clone(),
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// The config the model was built from.
    pub fn config(&self) -> &ElectraConfig {
        &self.config
    }

    /// The word embedding matrix, `[vocab_size, embedding_size]`.
    pub fn word_embeddings(&self) -> &Tensor {
        self.embeddings.word_embeddings()
    }

    /// The checked forward pass shared by every head: the last hidden state `[B, T, hidden]`.
    pub(crate) fn run(&self, inputs: &ModelInputs) -> Result<Tensor> {
        let mut hidden = self.embeddings.embed(inputs, &self.embedding_config)?;
        if let Some(project) = &self.embeddings_project {
            hidden = project.forward(&hidden)?;
        }
        self.encoder.forward(&hidden, inputs.attention_mask.as_ref())
    }
}

impl LoadModel for ElectraModel {
    type Config = ElectraConfig;
    const BASE_MODEL_PREFIX: &'static str = "electra";

    fn load(vb: VarBuilder<'_>, config: &ElectraConfig) -> Result<Self> {
        Self::new(vb, config)
    }
}

impl PreTrainedModel for ElectraModel {
    fn device(&self) -> &Device {
        &self.device
    }

    fn dtype(&self) -> DType {
        self.dtype
    }
}

impl Encoder for ElectraModel {
    fn encode(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        Ok(BaseModelOutput::new(self.run(inputs)?, None))
    }

    fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }
}

impl Model for ElectraModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        Ok(BaseModelOutput::new(self.run(inputs)?, None))
    }
}

impl ForTextEncoding for ElectraModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        Model::forward(self, inputs)
    }
}
