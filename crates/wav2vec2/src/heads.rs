//! The audio heads of the wav2vec2 family, over any [`AudioBackbone`]: CTC
//! ([`CtcHead`]), utterance classification ([`SequenceClassificationHead`]), frame
//! classification ([`FrameClassificationHead`]) and x-vectors ([`XVectorHead`]); and
//! [`audio_heads!`](crate::audio_heads), which defines the registered head types of a model type.

use std::fmt::Debug;

use autocandle_core::nn::{linear, Linear};
use autocandle_core::{CtcOutput, Error, Result, SequenceClassifierOutput, TokenClassifierOutput, XVectorOutput};
use candle_core::{DType, Module, Tensor, D};
use candle_nn::VarBuilder;

use crate::config::Wav2Vec2Config;
use crate::feature::{conv1d, feature_vector_lengths, lengths_to_mask, mask_lengths};
use crate::model::AudioEncoderOutput;

/// A head over an [`AudioBackbone`](crate::AudioBackbone)'s output.
pub trait AudioHead: Debug + Send + Sync + Sized {
    /// The head's output type.
    type Output;

    /// Load the head's own weights from the checkpoint root `vb` (`lm_head`, `projector`, ...);
    /// `model_type` and `class` name the model in errors.
    fn load(vb: VarBuilder<'_>, config: &Wav2Vec2Config, model_type: &str, class: &str) -> Result<Self>;

    /// Whether the head needs every layer's hidden state (`use_weighted_layer_sum`).
    fn output_hidden_states(&self) -> bool {
        false
    }

    /// Run the head on the backbone's output; `attention_mask` is the sample-level mask the
    /// backbone was given.
    fn forward(
        &self,
        encoded: &AudioEncoderOutput,
        attention_mask: Option<&Tensor>,
        config: &Wav2Vec2Config,
    ) -> Result<Self::Output>;
}

/// The learned softmax mix of every layer's hidden state (`layer_weights`, with
/// `use_weighted_layer_sum`), or the last hidden state.
#[derive(Debug, Clone)]
pub struct LayerWeights(Option<Tensor>);

impl LayerWeights {
    /// Load `layer_weights` `[num_hidden_layers + 1]` when `use_weighted_layer_sum`.
    pub fn load(vb: &VarBuilder<'_>, config: &Wav2Vec2Config) -> Result<Self> {
        Ok(Self(if config.use_weighted_layer_sum {
            Some(vb.get(config.num_hidden_layers + 1, "layer_weights")?)
        } else {
            None
        }))
    }

    /// Whether the hidden states of every layer are needed.
    pub fn is_weighted(&self) -> bool {
        self.0.is_some()
    }

    /// The mixed hidden states `[batch, frames, hidden]`.
    pub fn hidden_states(&self, encoded: &AudioEncoderOutput) -> Result<Tensor> {
        let Some(weights) = &self.0 else { return Ok(encoded.last_hidden_state.clone()) };
        if encoded.hidden_states.len() != weights.dim(0)? {
            return Err(Error::Unsupported(format!(
                "`use_weighted_layer_sum` needs {} hidden states, the encoder returned {}",
                weights.dim(0)?,
                encoded.hidden_states.len()
            )));
        }
        let norm = candle_nn::ops::softmax_last_dim(&weights.to_dtype(DType::F32)?)?;
        let stacked = Tensor::stack(&encoded.hidden_states, 0)?;
        let dtype = stacked.dtype();
        let n = norm.dim(0)?;
        Ok(stacked.to_dtype(DType::F32)?.broadcast_mul(&norm.reshape((n, 1, 1, 1))?)?.sum(0)?.to_dtype(dtype)?)
    }
}

/// The CTC head (`lm_head`; `*ForCTC`): `logits` `[batch, frames, vocab_size]`.
#[derive(Debug, Clone)]
pub struct CtcHead {
    lm_head: Linear,
}

impl AudioHead for CtcHead {
    type Output = CtcOutput;

    fn load(vb: VarBuilder<'_>, config: &Wav2Vec2Config, model_type: &str, class: &str) -> Result<Self> {
        let vocab = config.vocab_size.filter(|&v| v > 0).ok_or_else(|| {
            Error::config(model_type, format!("{class} needs `vocab_size` (the CTC vocabulary) in config.json"))
        })?;
        let input = if config.add_adapter { config.output_hidden_size() } else { config.hidden_size };
        Ok(Self { lm_head: linear(input, vocab, vb.pp("lm_head"))? })
    }

    fn forward(
        &self,
        encoded: &AudioEncoderOutput,
        _mask: Option<&Tensor>,
        _config: &Wav2Vec2Config,
    ) -> Result<CtcOutput> {
        Ok(CtcOutput::new(self.lm_head.forward(&encoded.last_hidden_state)?))
    }
}

fn reject_adapter(config: &Wav2Vec2Config, model_type: &str, what: &str) -> Result<()> {
    if config.add_adapter {
        return Err(Error::config(
            model_type,
            format!("{what} does not support adapters (`add_adapter` is true), as in `transformers`"),
        ));
    }
    Ok(())
}

/// The utterance classifier (`*ForSequenceClassification`): optional weighted layer sum,
/// `projector`, mean over the real frames, `classifier`; `logits` `[batch, num_labels]`.
#[derive(Debug, Clone)]
pub struct SequenceClassificationHead {
    layer_weights: LayerWeights,
    projector: Linear,
    classifier: Linear,
}

impl AudioHead for SequenceClassificationHead {
    type Output = SequenceClassifierOutput;

    fn load(vb: VarBuilder<'_>, config: &Wav2Vec2Config, model_type: &str, _class: &str) -> Result<Self> {
        reject_adapter(config, model_type, "sequence classification")?;
        Ok(Self {
            layer_weights: LayerWeights::load(&vb, config)?,
            projector: linear(config.hidden_size, config.classifier_proj_size, vb.pp("projector"))?,
            classifier: linear(config.classifier_proj_size, config.labels.num_labels(), vb.pp("classifier"))?,
        })
    }

    fn output_hidden_states(&self) -> bool {
        self.layer_weights.is_weighted()
    }

    fn forward(
        &self,
        encoded: &AudioEncoderOutput,
        attention_mask: Option<&Tensor>,
        config: &Wav2Vec2Config,
    ) -> Result<SequenceClassifierOutput> {
        let hidden = self.projector.forward(&self.layer_weights.hidden_states(encoded)?)?;
        let pooled = match attention_mask {
            None => hidden.mean(1)?,
            Some(mask) => {
                let frames = hidden.dim(1)?;
                let lengths = feature_vector_lengths(config, frames, mask, config.add_adapter)?;
                let frame_mask = lengths_to_mask(&lengths, frames, hidden.dtype(), hidden.device())?;
                let summed = hidden.broadcast_mul(&frame_mask.unsqueeze(D::Minus1)?)?.sum(1)?;
                summed.broadcast_div(&frame_mask.sum_keepdim(1)?)?
            }
        };
        Ok(SequenceClassifierOutput::new(self.classifier.forward(&pooled)?))
    }
}

/// The frame classifier (`*ForAudioFrameClassification`): optional weighted layer sum and
/// `classifier` on every frame; `logits` `[batch, frames, num_labels]`.
#[derive(Debug, Clone)]
pub struct FrameClassificationHead {
    layer_weights: LayerWeights,
    classifier: Linear,
}

impl AudioHead for FrameClassificationHead {
    type Output = TokenClassifierOutput;

    fn load(vb: VarBuilder<'_>, config: &Wav2Vec2Config, model_type: &str, _class: &str) -> Result<Self> {
        reject_adapter(config, model_type, "audio frame classification")?;
        Ok(Self {
            layer_weights: LayerWeights::load(&vb, config)?,
            classifier: linear(config.hidden_size, config.labels.num_labels(), vb.pp("classifier"))?,
        })
    }

    fn output_hidden_states(&self) -> bool {
        self.layer_weights.is_weighted()
    }

    fn forward(
        &self,
        encoded: &AudioEncoderOutput,
        _mask: Option<&Tensor>,
        _config: &Wav2Vec2Config,
    ) -> Result<TokenClassifierOutput> {
        Ok(TokenClassifierOutput::new(self.classifier.forward(&self.layer_weights.hidden_states(encoded)?)?))
    }
}

/// One TDNN layer (`TDNNLayer`, under `tdnn.N`): a dilated convolution stored as the linear
/// `kernel` `[out, kernel_size * in]`, then ReLU.
#[derive(Debug, Clone)]
pub struct TdnnLayer {
    weight: Tensor,
    bias: Tensor,
    dilation: usize,
}

impl TdnnLayer {
    /// Load layer `i` of the config's TDNN stack under `vb`.
    pub fn load(vb: VarBuilder<'_>, config: &Wav2Vec2Config, i: usize) -> Result<Self> {
        let in_dim = if i == 0 { config.tdnn_dim[0] } else { config.tdnn_dim[i - 1] };
        let (out, k) = (config.tdnn_dim[i], config.tdnn_kernel[i]);
        let kernel = vb.pp("kernel");
        let weight =
            kernel.get((out, k * in_dim), "weight")?.reshape((out, k, in_dim))?.transpose(1, 2)?.contiguous()?;
        Ok(Self { weight, bias: kernel.get(out, "bias")?, dilation: config.tdnn_dilation[i] })
    }

    /// `[batch, frames, in]` -> `[batch, frames', out]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = conv1d(&x.transpose(1, 2)?, &self.weight, Some(&self.bias), 0, 1, self.dilation, 1)?;
        Ok(y.transpose(1, 2)?.relu()?.contiguous()?)
    }
}

/// The x-vector head (`*ForXVector`): optional weighted layer sum, `projector`, TDNN layers,
/// statistic pooling (mean and unbiased standard deviation over the real frames),
/// `feature_extractor` (the `embeddings`) and `classifier` (the `logits`, as `transformers`
/// returns them: the AM-softmax `objective` is used only in the loss).
#[derive(Debug, Clone)]
pub struct XVectorHead {
    layer_weights: LayerWeights,
    projector: Linear,
    tdnn: Vec<TdnnLayer>,
    feature_extractor: Linear,
    classifier: Linear,
}

impl AudioHead for XVectorHead {
    type Output = XVectorOutput;

    fn load(vb: VarBuilder<'_>, config: &Wav2Vec2Config, model_type: &str, _class: &str) -> Result<Self> {
        config.validate_xvector_as(model_type)?;
        let last = config.tdnn_dim[config.tdnn_dim.len() - 1];
        // `objective.weight` (the AM-softmax loss, `[xvector_output_dim, num_labels]`) serves
        // the loss only: read it when present, so the loading report stays clean.
        if vb.contains_tensor("objective.weight") {
            vb.get((config.xvector_output_dim, config.labels.num_labels()), "objective.weight")?;
        }
        Ok(Self {
            layer_weights: LayerWeights::load(&vb, config)?,
            projector: linear(config.hidden_size, config.tdnn_dim[0], vb.pp("projector"))?,
            tdnn: (0..config.tdnn_dim.len())
                .map(|i| TdnnLayer::load(vb.pp(format!("tdnn.{i}")), config, i))
                .collect::<Result<_>>()?,
            feature_extractor: linear(2 * last, config.xvector_output_dim, vb.pp("feature_extractor"))?,
            classifier: linear(config.xvector_output_dim, config.xvector_output_dim, vb.pp("classifier"))?,
        })
    }

    fn output_hidden_states(&self) -> bool {
        self.layer_weights.is_weighted()
    }

    fn forward(
        &self,
        encoded: &AudioEncoderOutput,
        attention_mask: Option<&Tensor>,
        config: &Wav2Vec2Config,
    ) -> Result<XVectorOutput> {
        let mut x = self.projector.forward(&self.layer_weights.hidden_states(encoded)?)?;
        for layer in &self.tdnn {
            x = layer.forward(&x)?;
        }
        let (batch, frames, _) = x.dims3()?;
        let lengths: Vec<usize> = match attention_mask {
            None => vec![frames; batch],
            Some(mask) => mask_lengths(mask)?
                .into_iter()
                .map(|samples| {
                    // `_get_tdnn_output_lengths` ignores the dilation, as `transformers` does.
                    let mut n = config.feat_extract_output_length(samples, config.add_adapter);
                    for &k in &config.tdnn_kernel {
                        n -= k as i64 - 1;
                    }
                    n.clamp(0, frames as i64) as usize
                })
                .collect(),
        };
        let mut stats = Vec::with_capacity(batch);
        for (i, &n) in lengths.iter().enumerate() {
            if n == 0 {
                return Err(Error::input(format!(
                    "clip {i} is too short for the x-vector head: no frame is left after the TDNN layers"
                )));
            }
            let clip = x.get(i)?.narrow(0, 0, n)?.to_dtype(DType::F32)?;
            let mean = clip.mean_keepdim(0)?;
            let var = (clip.broadcast_sub(&mean)?.sqr()?.sum(0)? / (n as f64 - 1.0))?;
            stats.push(Tensor::cat(&[mean.squeeze(0)?, var.sqrt()?], 0)?);
        }
        let pooled = Tensor::stack(&stats, 0)?.to_dtype(x.dtype())?;
        let embeddings = self.feature_extractor.forward(&pooled)?;
        let logits = self.classifier.forward(&embeddings)?;
        Ok(XVectorOutput::new(logits, embeddings))
    }
}

/// Define the registered audio head types of a model type over an
/// [`AudioBackbone`](crate::AudioBackbone):
///
/// ```text
/// autocandle_wav2vec2::audio_heads! {
///     backbone: HubertModel, config: HubertConfig, prefix: "hubert";
///     ctc: HubertForCtc as "HubertForCTC";
///     audio_classification: HubertForSequenceClassification as "HubertForSequenceClassification";
/// }
/// ```
///
/// Each entry `task: Name as "Class"` defines `pub struct Name` (the backbone under `prefix`
/// and the head), registered with `#[derive(AutoRegister)]` for the config's model type, the
/// task and the `transformers` class `Class`, with
/// `LoadModel`, `PreTrainedModel` and the task's trait. The calling crate depends on
/// `autocandle-core`, `candle-core` and `candle-nn`.
#[macro_export]
macro_rules! audio_heads {
    (
        backbone: $backbone:ty, config: $config:ty, prefix: $prefix:literal;
        $( $(#[$meta:meta])* $task:ident : $name:ident as $class:literal ; )+
    ) => {
        $( $crate::__audio_head! { $task [$(#[$meta])*] $backbone, $config, $prefix, $name, $class } )+
    };
}

/// One entry of [`audio_heads!`]. Not public API.
#[doc(hidden)]
#[macro_export]
macro_rules! __audio_head {
    (ctc $meta:tt $($rest:tt)*) => {
        $crate::__audio_head!(@one "ctc", ForCtc, CtcOutput, CtcHead,
            "the speech encoder with its CTC head `lm_head`; `logits` are `[batch, frames, vocab_size]`";
            $meta $($rest)*);
    };
    (audio_classification $meta:tt $($rest:tt)*) => {
        $crate::__audio_head!(@one "audio-classification", ForAudioClassification, SequenceClassifierOutput,
            SequenceClassificationHead,
            "the speech encoder with an utterance classifier (projector, mean over the real frames, classifier); \
             `logits` are `[batch, num_labels]`";
            $meta $($rest)*);
    };
    (audio_frame_classification $meta:tt $($rest:tt)*) => {
        $crate::__audio_head!(@one "audio-frame-classification", ForAudioFrameClassification, TokenClassifierOutput,
            FrameClassificationHead,
            "the speech encoder with a classifier on every frame; `logits` are `[batch, frames, num_labels]`";
            $meta $($rest)*);
    };
    (audio_xvector $meta:tt $($rest:tt)*) => {
        $crate::__audio_head!(@one "audio-xvector", ForAudioXVector, XVectorOutput, XVectorHead,
            "the speech encoder with the x-vector head (TDNN layers, statistic pooling); `embeddings` are \
             `[batch, xvector_output_dim]` and `logits` the classifier's on them";
            $meta $($rest)*);
    };
    (@one $task_name:literal, $trait:ident, $output:ident, $head:ident, $doc:literal;
        [$(#[$meta:meta])*] $backbone:ty, $config:ty, $prefix:literal, $name:ident, $class:literal) => {
        #[doc = concat!("`", stringify!($name), "`: ", $doc, ".")]
        $(#[$meta])*
        #[derive(Debug, ::autocandle_core::AutoRegister)]
        #[auto(task = $task_name, class = $class)]
        pub struct $name {
            backbone: $backbone,
            head: $crate::$head,
        }

        impl $name {
            /// The speech encoder under the head.
            pub fn backbone(&self) -> &$backbone {
                &self.backbone
            }
        }

        impl ::autocandle_core::LoadModel for $name {
            type Config = $config;
            const BASE_MODEL_PREFIX: &'static str = $prefix;

            fn load(vb: ::candle_nn::VarBuilder<'_>, config: &$config) -> ::autocandle_core::Result<Self> {
                let backbone = <$backbone as $crate::AudioBackbone>::load_backbone(vb.pp($prefix), config)?;
                let model_type = <$backbone as $crate::AudioBackbone>::model_type(&backbone);
                let head = <$crate::$head as $crate::AudioHead>::load(
                    vb,
                    <$backbone as $crate::AudioBackbone>::audio_config(&backbone),
                    model_type,
                    $class,
                )?;
                ::core::result::Result::Ok(Self { backbone, head })
            }
        }

        impl ::autocandle_core::PreTrainedModel for $name {
            fn device(&self) -> &::candle_core::Device {
                <$backbone as $crate::AudioBackbone>::device(&self.backbone)
            }

            fn dtype(&self) -> ::candle_core::DType {
                <$backbone as $crate::AudioBackbone>::dtype(&self.backbone)
            }
        }

        impl ::autocandle_core::$trait for $name {
            fn forward(
                &self,
                inputs: &::autocandle_core::ModelInputs,
            ) -> ::autocandle_core::Result<::autocandle_core::$output> {
                let mask = inputs.attention_mask.as_ref();
                let hidden = <$crate::$head as $crate::AudioHead>::output_hidden_states(&self.head);
                let encoded =
                    <$backbone as $crate::AudioBackbone>::encode(&self.backbone, inputs.input_values()?, mask, hidden)?;
                let config = <$backbone as $crate::AudioBackbone>::audio_config(&self.backbone);
                <$crate::$head as $crate::AudioHead>::forward(&self.head, &encoded, mask, config)
            }
        }
    };
    ($other:ident $($rest:tt)*) => {
        ::core::compile_error!(concat!(
            "unknown head `", stringify!($other), "` in `audio_heads!`: known heads: ctc, audio_classification, ",
            "audio_frame_classification, audio_xvector"
        ));
    };
}
