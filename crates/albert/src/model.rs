//! The ALBERT encoder (`AlbertModel`): BERT's embeddings at `embedding_size`, mapped to
//! `hidden_size` by `encoder.embedding_hidden_mapping_in`, then `num_hidden_layers` layers
//! that share the weights of `num_hidden_groups` groups of `inner_group_num` BERT blocks
//! (`autocandle-bert`'s [`BertLayer`], under ALBERT's names), and the pooler.

use autocandle_core::nn::{linear, Linear};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{layer_norm, VarBuilder};

use autocandle_bert::{attention_mask, BertConfig, BertEmbeddings, BertLayer, BertLayerWeights};
use autocandle_core::heads::Encoder;
use autocandle_core::{
    AutoRegister, BaseModelOutput, Error, ForTextEncoding, LoadModel, Model, ModelInputs, PreTrainedModel, Result,
};

use crate::config::AlbertConfig;

/// `AlbertLayer` `vb` (`encoder.albert_layer_groups.G.albert_layers.I`) as a [`BertLayer`]:
/// the same computation, post-norm, under other names.
fn load_layer(vb: VarBuilder<'_>, cfg: &AlbertConfig) -> Result<BertLayer> {
    let (h, eps) = (cfg.hidden_size, cfg.layer_norm_eps);
    let attention = vb.pp("attention");
    BertLayer::from_weights(BertLayerWeights {
        query: linear(h, h, attention.pp("query"))?,
        key: linear(h, h, attention.pp("key"))?,
        value: linear(h, h, attention.pp("value"))?,
        attention_output: linear(h, h, attention.pp("dense"))?,
        attention_norm: layer_norm(h, eps, attention.pp("LayerNorm"))?,
        intermediate: linear(h, cfg.intermediate_size, vb.pp("ffn"))?,
        activation: cfg.hidden_act,
        output: linear(cfg.intermediate_size, h, vb.pp("ffn_output"))?,
        output_norm: layer_norm(h, eps, vb.pp("full_layer_layer_norm"))?,
        num_heads: cfg.num_attention_heads,
    })
}

/// The ALBERT encoder (`transformers`' `AlbertModel`), the base of every head.
///
/// Built by [`LoadModel::load`], it has a pooler (`pooler`, then tanh, on the first token)
/// exactly when the weights hold `pooler.weight`; otherwise `pooler_output` is `None` (where
/// `transformers` would initialise a random pooler).
#[derive(Debug, AutoRegister)]
#[auto(task = "base")]
pub struct AlbertModel {
    embeddings: BertEmbeddings,
    mapping_in: Linear,
    /// `albert_layer_groups[g].albert_layers`.
    groups: Vec<Vec<BertLayer>>,
    pooler: Option<Linear>,
    embedding_config: BertConfig,
    config: AlbertConfig,
    device: Device,
    dtype: DType,
}

impl AlbertModel {
    /// Build the encoder from weights named as `transformers`' `AlbertModel` state dict
    /// (`embeddings.*`, `encoder.embedding_hidden_mapping_in.*`,
    /// `encoder.albert_layer_groups.G.albert_layers.I.*`, `pooler.*`), with the pooler when
    /// `add_pooling_layer`.
    pub fn new(vb: VarBuilder<'_>, config: &AlbertConfig, add_pooling_layer: bool) -> Result<Self> {
        config.validate()?;
        let embedding_config = config.embedding_config();
        let embeddings = BertEmbeddings::new(vb.pp("embeddings"), &embedding_config)?;
        let encoder = vb.pp("encoder");
        let mapping_in = linear(config.embedding_size, config.hidden_size, encoder.pp("embedding_hidden_mapping_in"))?;
        let groups = (0..config.num_hidden_groups)
            .map(|g| {
                let group = encoder.pp(format!("albert_layer_groups.{g}.albert_layers"));
                (0..config.inner_group_num).map(|i| load_layer(group.pp(i), config)).collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let pooler = if add_pooling_layer {
            Some(linear(config.hidden_size, config.hidden_size, vb.pp("pooler"))?)
        } else {
            None
        };
        Ok(Self {
            embeddings,
            mapping_in,
            groups,
            pooler,
            embedding_config,
            config: config.clone(),
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// The config the model was built from.
    pub fn config(&self) -> &AlbertConfig {
        &self.config
    }

    /// Whether the model has a pooler (and so a `pooler_output`).
    pub fn has_pooler(&self) -> bool {
        self.pooler.is_some()
    }

    /// The word embedding matrix, `[vocab_size, embedding_size]`.
    pub fn word_embeddings(&self) -> &Tensor {
        self.embeddings.word_embeddings()
    }

    /// The checked forward pass shared by every head.
    pub(crate) fn run(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let embedded = self.embeddings.embed(inputs, &self.embedding_config)?;
        let mut hidden = self.mapping_in.forward(&embedded)?;
        let (batch, seq, _) = hidden.dims3()?;
        let mask = attention_mask(inputs.attention_mask.as_ref(), (batch, seq), false, hidden.dtype(), &self.device)?;
        for layer in 0..self.config.num_hidden_layers {
            for block in &self.groups[self.config.group_of(layer)] {
                hidden = block.forward(&hidden, mask.as_ref())?;
            }
        }
        let pooled = match &self.pooler {
            Some(dense) => Some(dense.forward(&hidden.narrow(1, 0, 1)?.squeeze(1)?)?.tanh()?),
            None => None,
        };
        Ok(BaseModelOutput::new(hidden, pooled))
    }
}

impl LoadModel for AlbertModel {
    type Config = AlbertConfig;
    const BASE_MODEL_PREFIX: &'static str = "albert";

    fn load(vb: VarBuilder<'_>, config: &AlbertConfig) -> Result<Self> {
        let add_pooling_layer = vb.contains_tensor("pooler.weight");
        Self::new(vb, config, add_pooling_layer)
    }
}

impl PreTrainedModel for AlbertModel {
    fn device(&self) -> &Device {
        &self.device
    }

    fn dtype(&self) -> DType {
        self.dtype
    }
}

impl Encoder for AlbertModel {
    fn encode(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        self.run(inputs)
    }

    fn hidden_size(&self) -> usize {
        self.config.hidden_size
    }

    fn pooled(&self, output: BaseModelOutput) -> Result<Tensor> {
        output.pooler_output.ok_or_else(|| Error::Unsupported("this ALBERT model has no pooler (`pooler`)".to_owned()))
    }
}

impl Model for AlbertModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        self.run(inputs)
    }
}

impl ForTextEncoding for AlbertModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        self.run(inputs)
    }
}
