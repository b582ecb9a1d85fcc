//! [`Wav2Vec2ForPreTraining`]: the wav2vec2 model with its quantizer and the two projections of
//! the contrastive objective (`transformers`' `Wav2Vec2ForPreTraining`), at inference: the
//! quantizer picks each codebook's best entry (argmax, no Gumbel noise), as in eval mode.

use autocandle_core::nn::{linear, Linear};
use autocandle_core::{
    AutoRegister, Error, ForPreTraining, LoadModel, ModelInputs, PreTrainedModel, PreTrainingOutput, Result,
};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::VarBuilder;

use crate::config::Wav2Vec2Config;
use crate::encoder::Encoder;
use crate::model::{SpeechModel, Wav2Vec2Variant};

/// The Gumbel vector quantizer (`Wav2Vec2GumbelVectorQuantizer`, under `quantizer`) at
/// inference: `weight_proj` scores every codebook entry, each group takes its best one from
/// `codevectors`.
#[derive(Debug, Clone)]
pub struct GumbelVectorQuantizer {
    weight_proj: Linear,
    /// `[groups * vars, codevector_dim / groups]`
    codevectors: Tensor,
    groups: usize,
    vars: usize,
}

impl GumbelVectorQuantizer {
    /// Load `weight_proj` and `codevectors` under `vb`.
    pub fn load(vb: VarBuilder<'_>, cfg: &Wav2Vec2Config) -> Result<Self> {
        let (groups, vars) = (cfg.num_codevector_groups, cfg.num_codevectors_per_group);
        if groups == 0 || vars == 0 || !cfg.codevector_dim.is_multiple_of(groups) {
            return Err(Error::config(
                "wav2vec2",
                format!(
                    "`codevector_dim` ({}) must be a multiple of `num_codevector_groups` ({groups}), and \
                     `num_codevectors_per_group` ({vars}) at least 1",
                    cfg.codevector_dim
                ),
            ));
        }
        let last = *cfg.conv_dim.last().ok_or_else(|| Error::config("wav2vec2", "`conv_dim` is empty"))?;
        let codevectors = vb.get((1, groups * vars, cfg.codevector_dim / groups), "codevectors")?.squeeze(0)?;
        Ok(Self { weight_proj: linear(last, groups * vars, vb.pp("weight_proj"))?, codevectors, groups, vars })
    }

    /// `extract_features` `[batch, frames, conv_dim[-1]]` -> (quantized `[batch, frames,
    /// codevector_dim]`, `codevector_perplexity`: the sum over groups of the exponentiated
    /// entropy of how often each entry is picked over every frame).
    pub fn forward(&self, features: &Tensor) -> Result<(Tensor, Tensor)> {
        let (b, t, _) = features.dims3()?;
        let scores = self.weight_proj.forward(features)?.reshape((b * t * self.groups, self.vars))?;
        let picks = scores.argmax(D::Minus1)?.to_dtype(DType::U32)?.to_vec1::<u32>()?;
        let mut counts = vec![0usize; self.groups * self.vars];
        let rows: Vec<u32> = picks
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let row = (i % self.groups) * self.vars + v as usize;
                counts[row] += 1;
                row as u32
            })
            .collect();
        let index = Tensor::from_vec(rows, b * t * self.groups, features.device())?;
        let quantized = self.codevectors.index_select(&index, 0)?.reshape((b, t, ()))?;
        let frames = (b * t) as f64;
        let perplexity: f64 = counts
            .chunks(self.vars)
            .map(|group| {
                let entropy: f64 = group
                    .iter()
                    .filter(|&&c| c > 0)
                    .map(|&c| {
                        let p = c as f64 / frames;
                        -p * p.ln()
                    })
                    .sum();
                entropy.exp()
            })
            .sum();
        let perplexity = Tensor::new(perplexity as f32, features.device())?.to_dtype(features.dtype())?;
        Ok((quantized, perplexity))
    }
}

/// `Wav2Vec2ForPreTraining` at inference: `projected_states` (`project_hid` of the last hidden
/// state) and `projected_quantized_states` (`project_q` of the quantized features), both
/// `[batch, frames, proj_codevector_dim]`, and `codevector_perplexity` (a scalar). No
/// SpecAugment masking and no loss: `mask_time_indices` and negatives are training inputs.
#[derive(Debug, AutoRegister)]
#[auto(task = "pretraining", class = "Wav2Vec2ForPreTraining")]
pub struct Wav2Vec2ForPreTraining {
    wav2vec2: SpeechModel<Encoder>,
    quantizer: GumbelVectorQuantizer,
    project_hid: Linear,
    project_q: Linear,
}

impl LoadModel for Wav2Vec2ForPreTraining {
    type Config = Wav2Vec2Config;
    const BASE_MODEL_PREFIX: &'static str = "wav2vec2";

    fn load(vb: VarBuilder<'_>, cfg: &Wav2Vec2Config) -> Result<Self> {
        let wav2vec2 = SpeechModel::load_variant(vb.pp("wav2vec2"), cfg, Wav2Vec2Variant::WAV2VEC2)?;
        let hidden = if cfg.add_adapter { cfg.output_hidden_size() } else { cfg.hidden_size };
        Ok(Self {
            wav2vec2,
            quantizer: GumbelVectorQuantizer::load(vb.pp("quantizer"), cfg)?,
            project_hid: linear(hidden, cfg.proj_codevector_dim, vb.pp("project_hid"))?,
            project_q: linear(cfg.codevector_dim, cfg.proj_codevector_dim, vb.pp("project_q"))?,
        })
    }
}

impl PreTrainedModel for Wav2Vec2ForPreTraining {
    fn device(&self) -> &Device {
        self.wav2vec2.device()
    }

    fn dtype(&self) -> DType {
        self.wav2vec2.dtype()
    }
}

impl ForPreTraining for Wav2Vec2ForPreTraining {
    fn forward(&self, inputs: &ModelInputs) -> Result<PreTrainingOutput> {
        let out = self.wav2vec2.encode_audio(inputs.input_values()?, inputs.attention_mask.as_ref(), false)?;
        let features = out
            .extract_features
            .ok_or_else(|| Error::Unsupported("the wav2vec2 model returned no `extract_features`".to_owned()))?;
        let projected_states = self.project_hid.forward(&out.last_hidden_state)?;
        let (quantized, perplexity) = self.quantizer.forward(&features)?;
        let projected_quantized_states = self.project_q.forward(&quantized)?;
        Ok(PreTrainingOutput::from_fields(vec![
            ("projected_states", projected_states),
            ("projected_quantized_states", projected_quantized_states),
            ("codevector_perplexity", perplexity),
        ]))
    }
}
