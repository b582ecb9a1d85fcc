//! The task heads on [`WavLMModel`]: `WavLMForCTC`, `WavLMForSequenceClassification`,
//! `WavLMForAudioFrameClassification` and `WavLMForXVector`.

use autocandle_core::nn::{linear, Linear};
use autocandle_core::{
    AutoRegister, CtcOutput, Error, ForAudioClassification, ForAudioFrameClassification, ForAudioXVector, ForCtc,
    LoadModel, ModelInputs, PreTrainedModel, Result, SequenceClassifierOutput, TokenClassifierOutput, XVectorOutput,
};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;

use crate::config::{WavLMConfig, MODEL_TYPE};
use crate::model::{WavLMModel, WavLMRun};
use crate::w2v2_parts::{lengths_mask, weighted_layer_sum, TdnnLayer};

/// The base model and, with `use_weighted_layer_sum`, its `layer_weights`.
#[derive(Debug)]
struct Body {
    wavlm: WavLMModel,
    layer_weights: Option<Tensor>,
}

impl Body {
    fn load(vb: &VarBuilder<'_>, config: &WavLMConfig, weighted: bool) -> Result<Self> {
        let wavlm = WavLMModel::new(vb.pp("wavlm"), config)?;
        let layer_weights =
            if weighted { Some(vb.get(config.num_hidden_layers + 1, "layer_weights")?) } else { None };
        Ok(Self { wavlm, layer_weights })
    }

    /// The states the head reads (the weighted layer sum or the last hidden state) and the run.
    fn states(&self, inputs: &ModelInputs) -> Result<(Tensor, WavLMRun)> {
        let run = self.wavlm.run(inputs, self.layer_weights.is_some())?;
        let states = match &self.layer_weights {
            Some(weights) => weighted_layer_sum(&run.encoder.hidden_states, weights)?,
            None => run.encoder.last_hidden_state.clone(),
        };
        Ok((states, run))
    }
}

/// `WavLMForCTC`: a linear `lm_head` over the last hidden state; `logits` `[batch, frames, vocab_size]`.
#[derive(Debug, AutoRegister)]
#[auto(task = "ctc", class = "WavLMForCTC")]
pub struct WavLMForCTC {
    wavlm: WavLMModel,
    lm_head: Linear,
}

impl LoadModel for WavLMForCTC {
    type Config = WavLMConfig;
    const BASE_MODEL_PREFIX: &'static str = "wavlm";

    fn load(vb: VarBuilder<'_>, config: &WavLMConfig) -> Result<Self> {
        let vocab = config.vocab_size.filter(|&v| v > 0).ok_or_else(|| {
            Error::config(
                MODEL_TYPE,
                "`vocab_size` is not set: the CTC head needs the size of its vocabulary (the tokenizer's)",
            )
        })?;
        Ok(Self {
            wavlm: WavLMModel::new(vb.pp("wavlm"), config)?,
            lm_head: linear(config.hidden_size, vocab, vb.pp("lm_head"))?,
        })
    }
}

impl ForCtc for WavLMForCTC {
    fn forward(&self, inputs: &ModelInputs) -> Result<CtcOutput> {
        let run = self.wavlm.run(inputs, false)?;
        Ok(CtcOutput::new(self.lm_head.forward(&run.encoder.last_hidden_state)?))
    }
}

/// `WavLMForSequenceClassification`: `projector`, the mean over each clip's real frames, then
/// `classifier`; `logits` `[batch, num_labels]`.
#[derive(Debug, AutoRegister)]
#[auto(task = "audio-classification", class = "WavLMForSequenceClassification")]
pub struct WavLMForSequenceClassification {
    body: Body,
    projector: Linear,
    classifier: Linear,
}

impl LoadModel for WavLMForSequenceClassification {
    type Config = WavLMConfig;
    const BASE_MODEL_PREFIX: &'static str = "wavlm";

    fn load(vb: VarBuilder<'_>, config: &WavLMConfig) -> Result<Self> {
        let proj = config.classifier_proj_size;
        Ok(Self {
            body: Body::load(&vb, config, config.use_weighted_layer_sum)?,
            projector: linear(config.hidden_size, proj, vb.pp("projector"))?,
            classifier: linear(proj, config.labels.num_labels(), vb.pp("classifier"))?,
        })
    }
}

impl ForAudioClassification for WavLMForSequenceClassification {
    fn forward(&self, inputs: &ModelInputs) -> Result<SequenceClassifierOutput> {
        let (states, run) = self.body.states(inputs)?;
        let projected = self.projector.forward(&states)?;
        let pooled = match &run.frame_lengths {
            None => projected.mean(1)?,
            Some(lengths) => {
                let (batch, frames, _) = projected.dims3()?;
                let mask = lengths_mask(lengths, frames, projected.dtype(), projected.device())?;
                let counts: Vec<f32> = lengths.iter().map(|&l| l as f32).collect();
                let counts = Tensor::from_vec(counts, (batch, 1), projected.device())?.to_dtype(projected.dtype())?;
                projected.broadcast_mul(&mask.unsqueeze(2)?)?.sum(1)?.broadcast_div(&counts)?
            }
        };
        Ok(SequenceClassifierOutput::new(self.classifier.forward(&pooled)?))
    }
}

/// `WavLMForAudioFrameClassification`: a linear `classifier` on every frame; `logits`
/// `[batch, frames, num_labels]`.
#[derive(Debug, AutoRegister)]
#[auto(task = "audio-frame-classification", class = "WavLMForAudioFrameClassification")]
pub struct WavLMForAudioFrameClassification {
    body: Body,
    classifier: Linear,
}

impl LoadModel for WavLMForAudioFrameClassification {
    type Config = WavLMConfig;
    const BASE_MODEL_PREFIX: &'static str = "wavlm";

    fn load(vb: VarBuilder<'_>, config: &WavLMConfig) -> Result<Self> {
        Ok(Self {
            body: Body::load(&vb, config, config.use_weighted_layer_sum)?,
            classifier: linear(config.hidden_size, config.labels.num_labels(), vb.pp("classifier"))?,
        })
    }
}

impl ForAudioFrameClassification for WavLMForAudioFrameClassification {
    fn forward(&self, inputs: &ModelInputs) -> Result<TokenClassifierOutput> {
        let (states, _) = self.body.states(inputs)?;
        Ok(TokenClassifierOutput::new(self.classifier.forward(&states)?))
    }
}

/// `WavLMForXVector`: `projector`, the TDNN layers, mean and standard deviation over each
/// clip's frames, `feature_extractor` (the embeddings) and `classifier`.
#[derive(Debug, AutoRegister)]
#[auto(task = "audio-xvector", class = "WavLMForXVector")]
pub struct WavLMForXVector {
    body: Body,
    projector: Linear,
    tdnn: Vec<TdnnLayer>,
    /// `tdnn_kernel`: the frames each TDNN layer takes off, as `transformers` counts them.
    tdnn_kernel: Vec<usize>,
    feature_extractor: Linear,
    classifier: Linear,
}

impl LoadModel for WavLMForXVector {
    type Config = WavLMConfig;
    const BASE_MODEL_PREFIX: &'static str = "wavlm";

    fn load(vb: VarBuilder<'_>, config: &WavLMConfig) -> Result<Self> {
        config.validate_xvector()?;
        let dims = &config.tdnn_dim;
        let mut tdnn = Vec::with_capacity(dims.len());
        for (i, (&out, (&kernel, &dilation))) in
            dims.iter().zip(config.tdnn_kernel.iter().zip(&config.tdnn_dilation)).enumerate()
        {
            let in_dim = if i == 0 { dims[0] } else { dims[i - 1] };
            tdnn.push(TdnnLayer::load(vb.pp(format!("tdnn.{i}")), in_dim, out, kernel, dilation)?);
        }
        let last = dims[dims.len() - 1];
        let out = config.xvector_output_dim;
        Ok(Self {
            body: Body::load(&vb, config, config.use_weighted_layer_sum)?,
            projector: linear(config.hidden_size, dims[0], vb.pp("projector"))?,
            tdnn,
            tdnn_kernel: config.tdnn_kernel.clone(),
            feature_extractor: linear(last * 2, out, vb.pp("feature_extractor"))?,
            classifier: linear(out, out, vb.pp("classifier"))?,
        })
    }
}

/// Mean and unbiased standard deviation over the first `len` frames of `x` `[frames, dim]`.
fn statistics(x: &Tensor, len: usize) -> Result<(Tensor, Tensor)> {
    let x = x.narrow(0, 0, len)?;
    let mean = x.mean(0)?;
    let var = (x.broadcast_sub(&mean)?.sqr()?.sum(0)? / (len as f64 - 1.0))?;
    Ok((mean, var.sqrt()?))
}

impl ForAudioXVector for WavLMForXVector {
    fn forward(&self, inputs: &ModelInputs) -> Result<XVectorOutput> {
        let (states, run) = self.body.states(inputs)?;
        let mut x = self.projector.forward(&states)?;
        for layer in &self.tdnn {
            x = layer.forward(&x)?;
        }
        let (batch, frames, _) = x.dims3()?;
        if frames == 0 {
            return Err(Error::input("the clips are too short for the x-vector head's TDNN layers"));
        }
        let (mut means, mut stds) = (Vec::with_capacity(batch), Vec::with_capacity(batch));
        for b in 0..batch {
            // transformers takes `hidden_states[i, :length]` with the TDNN lengths computed
            // without the dilations; the slice stops at the real end.
            let len = match &run.frame_lengths {
                Some(lengths) => {
                    let taken: usize = self.tdnn_kernel.iter().map(|k| k.saturating_sub(1)).sum();
                    lengths[b].saturating_sub(taken).min(frames)
                }
                None => frames,
            };
            if len == 0 {
                return Err(Error::input(format!(
                    "clip {b} is too short for the x-vector head's TDNN layers (no frame left to pool)"
                )));
            }
            let (mean, std) = statistics(&x.get(b)?, len)?;
            means.push(mean);
            stds.push(std);
        }
        let pooled = Tensor::cat(&[Tensor::stack(&means, 0)?, Tensor::stack(&stds, 0)?], 1)?;
        let embeddings = self.feature_extractor.forward(&pooled)?;
        let logits = self.classifier.forward(&embeddings)?;
        Ok(XVectorOutput::new(logits, embeddings))
    }
}

macro_rules! through_body {
    ($($head:ty => $($field:ident).+),*) => {$(
        impl PreTrainedModel for $head {
            fn device(&self) -> &Device {
                PreTrainedModel::device(&self.$($field).+)
            }

            fn dtype(&self) -> DType {
                PreTrainedModel::dtype(&self.$($field).+)
            }
        }
    )*};
}

through_body!(
    WavLMForCTC => wavlm,
    WavLMForSequenceClassification => body.wavlm,
    WavLMForAudioFrameClassification => body.wavlm,
    WavLMForXVector => body.wavlm
);
