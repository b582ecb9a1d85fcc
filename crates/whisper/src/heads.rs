//! The task heads on [`WhisperModel`] and its halves: speech recognition
//! ([`WhisperForConditionalGeneration`]), audio classification on the encoder
//! ([`WhisperForAudioClassification`]) and the decoder alone as a language model
//! ([`WhisperForCausalLM`]).

use autocandle_core::nn::{linear, Embedding, Linear};
use autocandle_core::{
    AutoRegister, CausalLmOutput, EncoderOutput, Error, ForAudioClassification, ForCausalLm, ForSeq2SeqLm,
    ForSpeechSeq2Seq, KvCache, LoadModel, ModelInputs, PreTrainedModel, Result, Seq2SeqCache, Seq2SeqLmOutput,
    SequenceClassifierOutput,
};
use autocandle_decoder::{load_tied_lm_head, prepare_inputs, LmHeadNames};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{Init, VarBuilder};

use crate::config::WhisperConfig;
use crate::model::{DecoderCache, DecoderPositions, WhisperDecoder, WhisperEncoder, WhisperModel};

/// Where `proj_out` and the token embedding it is tied to live.
const PROJ_OUT: LmHeadNames<'static> =
    LmHeadNames { head: &["proj_out"], base: "model", embedding: "decoder.embed_tokens.weight" };

/// Whisper with its language-modelling head (`WhisperForConditionalGeneration`): `proj_out`,
/// without bias, maps the decoder states to vocabulary logits. With `tie_word_embeddings`
/// (the default) it is `model.decoder.embed_tokens` (a saved model has no `proj_out.weight`),
/// unless the checkpoint holds a different `proj_out.weight`; without it, its own.
///
/// Generation runs the encoder once ([`ForSeq2SeqLm::encode`]) and the decoder on a
/// [`Seq2SeqCache`] ([`ForSeq2SeqLm::decode`], any number of new tokens per call, batched rows),
/// from `decoder_start_token_id`. `autocandle::whisper` adds Whisper's prompts, suppression
/// and timestamps on top.
#[derive(Debug, Clone, AutoRegister)]
#[auto(task = "speech-seq2seq", class = "WhisperForConditionalGeneration")]
pub struct WhisperForConditionalGeneration {
    model: WhisperModel,
    proj_out: Linear,
}

impl WhisperForConditionalGeneration {
    /// The underlying encoder-decoder.
    pub fn model(&self) -> &WhisperModel {
        &self.model
    }

    /// The output projection `[vocab_size, d_model]` (the token embedding when tied).
    pub fn proj_out(&self) -> &Linear {
        &self.proj_out
    }

    /// The config the model was built from.
    pub fn config(&self) -> &WhisperConfig {
        self.model.config()
    }

    /// Logits `[B, T, vocab]` of decoder states `[B, T, D]`.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        Ok(self.proj_out.forward(hidden)?)
    }
}

impl LoadModel for WhisperForConditionalGeneration {
    type Config = WhisperConfig;
    const BASE_MODEL_PREFIX: &'static str = "model";

    fn load(vb: VarBuilder<'_>, config: &WhisperConfig) -> Result<Self> {
        config.validate()?;
        let (model, proj_out) = load_tied_lm_head(
            vb,
            PROJ_OUT,
            (config.tie_word_embeddings, false),
            (config.vocab_size, config.d_model),
            |vb, embedding| WhisperModel::new(vb, config, embedding),
            |model: &WhisperModel| model.decoder().embed_tokens(),
        )?;
        Ok(Self { model, proj_out })
    }
}

impl ForSeq2SeqLm for WhisperForConditionalGeneration {
    fn forward(&self, inputs: &ModelInputs) -> Result<Seq2SeqLmOutput> {
        let (decoder, encoder) = self.model.run(inputs)?;
        Ok(Seq2SeqLmOutput::new(self.logits(&decoder)?, encoder))
    }

    fn encode(&self, inputs: &ModelInputs) -> Result<EncoderOutput> {
        self.model.encode(inputs)
    }

    fn decode(&self, decoder_input_ids: &Tensor, encoder: &EncoderOutput, cache: &mut Seq2SeqCache) -> Result<Tensor> {
        let hidden = self.model.decode(decoder_input_ids, encoder, cache)?;
        self.logits(&hidden)
    }

    fn decoder_start_token_id(&self) -> Option<u32> {
        self.config().decoder_start_token_id.and_then(|id| u32::try_from(id).ok())
    }

    /// The encoder's positions (`max_source_positions`); it takes twice as many frames.
    fn max_source_positions(&self) -> Option<usize> {
        Some(self.config().max_source_positions)
    }

    fn max_target_positions(&self) -> Option<usize> {
        Some(self.config().max_target_positions)
    }
}

impl ForSpeechSeq2Seq for WhisperForConditionalGeneration {}

/// Whisper's encoder with a classifier (`WhisperForAudioClassification`): the encoder's last
/// hidden state (or, with `use_weighted_layer_sum`, the softmax(`layer_weights`)-weighted sum
/// of its `encoder_layers + 1` hidden states) goes through `projector`
/// (`d_model -> classifier_proj_size`), is averaged over the frames and classified by
/// `classifier` (`num_labels` outputs).
#[derive(Debug, Clone, AutoRegister)]
#[auto(task = "audio-classification", class = "WhisperForAudioClassification")]
pub struct WhisperForAudioClassification {
    encoder: WhisperEncoder,
    /// `[encoder_layers + 1]`, with `use_weighted_layer_sum`.
    layer_weights: Option<Tensor>,
    projector: Linear,
    classifier: Linear,
    config: WhisperConfig,
    device: Device,
    dtype: DType,
}

impl WhisperForAudioClassification {
    /// The encoder.
    pub fn encoder(&self) -> &WhisperEncoder {
        &self.encoder
    }

    /// The config the model was built from.
    pub fn config(&self) -> &WhisperConfig {
        &self.config
    }

    /// Logits `[batch, num_labels]` of `input_features`.
    pub fn logits(&self, features: &Tensor) -> Result<Tensor> {
        let features = self.encoder.check_features(features)?;
        let hidden = match &self.layer_weights {
            Some(weights) => {
                let (_, states) = self.encoder.forward_features(&features, true)?;
                let norm = candle_nn::ops::softmax_last_dim(&weights.to_dtype(DType::F32)?)?.to_dtype(self.dtype)?;
                let stacked = Tensor::stack(&states, 1)?;
                let layers = states.len();
                stacked.broadcast_mul(&norm.reshape((1, layers, 1, 1))?)?.sum(1)?
            }
            None => self.encoder.forward_features(&features, false)?.0,
        };
        let pooled = self.projector.forward(&hidden)?.mean(D::Minus2)?;
        Ok(self.classifier.forward(&pooled)?)
    }
}

impl LoadModel for WhisperForAudioClassification {
    type Config = WhisperConfig;
    const BASE_MODEL_PREFIX: &'static str = "model";

    fn load(vb: VarBuilder<'_>, config: &WhisperConfig) -> Result<Self> {
        config.validate()?;
        if config.classifier_proj_size == 0 {
            return Err(Error::config("whisper", "`classifier_proj_size` must be at least 1, got 0"));
        }
        let num_labels = config.labels.num_labels();
        if num_labels == 0 {
            return Err(Error::config("whisper", "the audio classifier needs at least one label, got `num_labels` 0"));
        }
        let layers = config.encoder_layers + 1;
        let layer_weights = if config.use_weighted_layer_sum {
            Some(vb.get_with_hints(layers, "layer_weights", Init::Const(1.0 / layers as f64))?)
        } else {
            None
        };
        Ok(Self {
            encoder: WhisperEncoder::load(vb.pp("encoder"), config)?,
            layer_weights,
            projector: linear(config.d_model, config.classifier_proj_size, vb.pp("projector"))?,
            classifier: linear(config.classifier_proj_size, num_labels, vb.pp("classifier"))?,
            config: config.clone(),
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }
}

impl ForAudioClassification for WhisperForAudioClassification {
    fn forward(&self, inputs: &ModelInputs) -> Result<SequenceClassifierOutput> {
        Ok(SequenceClassifierOutput::new(self.logits(inputs.input_features()?)?))
    }
}

/// Whisper's decoder alone with `proj_out` (`WhisperForCausalLM`, the assistant model of
/// speculative decoding): token and learned position embeddings, the decoder blocks without
/// cross-attention (no encoder states are given, as `transformers` runs it without
/// `encoder_outputs`; the checkpoint's `encoder_attn` weights are loaded and unused) and
/// `proj_out`, tied to `model.decoder.embed_tokens` as in
/// [`WhisperForConditionalGeneration`].
#[derive(Debug, Clone, AutoRegister)]
#[auto(task = "causal-lm", class = "WhisperForCausalLM")]
pub struct WhisperForCausalLM {
    decoder: WhisperDecoder,
    proj_out: Linear,
    config: WhisperConfig,
    device: Device,
    dtype: DType,
}

/// What [`WhisperForCausalLM`] loads under `model` (`WhisperDecoderWrapper`): the decoder.
#[derive(Debug)]
struct DecoderWrapper(WhisperDecoder);

impl WhisperForCausalLM {
    /// The decoder.
    pub fn decoder(&self) -> &WhisperDecoder {
        &self.decoder
    }

    /// The config the model was built from.
    pub fn config(&self) -> &WhisperConfig {
        &self.config
    }

    fn run(&self, inputs: &ModelInputs, cache: Option<&mut KvCache>) -> Result<CausalLmOutput> {
        let cfg = &self.config;
        let prepared = prepare_inputs(
            inputs,
            cache.as_deref(),
            cfg.vocab_size,
            (cfg.max_target_positions, "max_target_positions"),
            &self.device,
        )?;
        let mask = prepared.masks.build(None, self.dtype, &self.device)?;
        let positions = match &inputs.position_ids {
            Some(_) => DecoderPositions::Ids(&prepared.positions),
            None => DecoderPositions::After(prepared.past),
        };
        let cache = match cache {
            Some(c) => DecoderCache::Causal(c),
            None => DecoderCache::None,
        };
        let hidden = self.decoder.forward(&prepared.input_ids, positions, mask.as_ref(), None, cache)?;
        Ok(CausalLmOutput::new(self.proj_out.forward(&hidden)?))
    }
}

impl LoadModel for WhisperForCausalLM {
    type Config = WhisperConfig;
    const BASE_MODEL_PREFIX: &'static str = "model";

    fn load(vb: VarBuilder<'_>, config: &WhisperConfig) -> Result<Self> {
        config.validate()?;
        let (device, dtype) = (vb.device().clone(), vb.dtype());
        let (wrapper, proj_out) = load_tied_lm_head(
            vb,
            PROJ_OUT,
            (config.tie_word_embeddings, false),
            (config.vocab_size, config.d_model),
            |vb, embedding: Option<Embedding>| {
                Ok(DecoderWrapper(WhisperDecoder::load(vb.pp("decoder"), config, embedding)?))
            },
            |wrapper: &DecoderWrapper| wrapper.0.embed_tokens(),
        )?;
        Ok(Self { decoder: wrapper.0, proj_out, config: config.clone(), device, dtype })
    }
}

impl ForCausalLm for WhisperForCausalLM {
    fn forward(&self, inputs: &ModelInputs) -> Result<CausalLmOutput> {
        self.run(inputs, None)
    }

    fn forward_with_cache(&self, inputs: &ModelInputs, cache: &mut KvCache) -> Result<CausalLmOutput> {
        self.run(inputs, Some(cache))
    }

    fn supports_cache(&self) -> bool {
        true
    }

    fn max_positions(&self) -> Option<usize> {
        Some(self.config.max_target_positions)
    }
}

macro_rules! through_model {
    ($($ty:ident),*) => {$(
        impl PreTrainedModel for $ty {
            fn device(&self) -> &Device {
                PreTrainedModel::device(&self.model)
            }

            fn dtype(&self) -> DType {
                PreTrainedModel::dtype(&self.model)
            }
        }
    )*};
}

through_model!(WhisperForConditionalGeneration);

macro_rules! own_device {
    ($($ty:ident),*) => {$(
        impl PreTrainedModel for $ty {
            fn device(&self) -> &Device {
                &self.device
            }

            fn dtype(&self) -> DType {
                self.dtype
            }
        }
    )*};
}

own_device!(WhisperForAudioClassification, WhisperForCausalLM);
