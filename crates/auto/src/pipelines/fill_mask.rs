//! The fill-mask pipeline (`transformers.FillMaskPipeline`): the top-k tokens for each mask
//! token, with their probabilities and the completed sequence.

use autocandle_core::{Error, ForMaskedLm, LoadOptions, Result};
use candle_core::{DType, IndexOp};

use super::{softmax, sorted_desc, TextParts};
use crate::AutoModelForMaskedLM;

/// Options of [`FillMaskPipeline::call_with`] (`top_k`, `targets`).
#[derive(Debug, Clone, PartialEq)]
pub struct FillMaskOptions {
    /// How many predictions per mask (default 5; capped at the number of targets).
    pub top_k: usize,
    /// Score only these tokens (words of the vocabulary; another word scores its first token).
    pub targets: Option<Vec<String>>,
}

impl Default for FillMaskOptions {
    fn default() -> Self {
        Self { top_k: 5, targets: None }
    }
}

/// One candidate for a mask (`{"score", "token", "token_str", "sequence"}`).
#[derive(Debug, Clone, PartialEq)]
pub struct FillMaskPrediction {
    /// Probability of the token at the mask (softmax over the vocabulary).
    pub score: f32,
    /// The token id.
    pub token: u32,
    /// The token decoded alone.
    pub token_str: String,
    /// The input with the mask replaced, decoded; special tokens are kept when the input has
    /// several masks (the other masks stay visible), as in `transformers`.
    pub sequence: String,
}

/// Fill the mask token of a text with a masked language model.
#[derive(Debug)]
pub struct FillMaskPipeline {
    parts: TextParts,
    model: Box<dyn ForMaskedLm>,
    mask_id: u32,
}

impl FillMaskPipeline {
    /// Load the model (`AutoModelForMaskedLM`) and tokenizer at `model` (Hub id or folder).
    pub fn new(model: &str) -> Result<Self> {
        Self::new_with(model, &LoadOptions::default())
    }

    /// [`FillMaskPipeline::new`] with loading options.
    pub fn new_with(model: &str, opts: &LoadOptions) -> Result<Self> {
        super::traced("fill-mask", model, || {
            let parts = TextParts::load(model, opts, false)?;
            let mask_id = parts.tokenizer.special_token_id("mask_token").ok_or_else(|| {
                Error::input(format!("the tokenizer of `{model}` has no `mask_token`: fill-mask needs one"))
            })?;
            let model = AutoModelForMaskedLM::from_pretrained_with(model, opts)?.value;
            Ok(Self { parts, model, mask_id })
        })
    }

    /// The mask token (`[MASK]`, `<mask>`, ...).
    pub fn mask_token(&self) -> Option<&str> {
        self.parts.tokenizer.special_token("mask_token")
    }

    /// The 5 best tokens for each mask of `text`, one list per mask in order.
    pub fn call(&self, text: &str) -> Result<Vec<Vec<FillMaskPrediction>>> {
        self.call_with(text, &FillMaskOptions::default())
    }

    /// The best tokens for each mask of `text` (one list per mask; `transformers` returns the
    /// list itself when there is a single mask).
    pub fn call_with(&self, text: &str, opts: &FillMaskOptions) -> Result<Vec<Vec<FillMaskPrediction>>> {
        let encoding = self.parts.encode(text, None)?;
        let ids = encoding.get_ids();
        let masks: Vec<usize> = ids.iter().enumerate().filter(|(_, id)| **id == self.mask_id).map(|(i, _)| i).collect();
        if masks.is_empty() {
            return Err(Error::input(format!(
                "fill-mask: no mask_token ({}) found on the input",
                self.mask_token().unwrap_or("mask token")
            )));
        }
        let target_ids = match &opts.targets {
            Some(targets) => Some(self.target_ids(targets)?),
            None => None,
        };
        let logits = self.model.forward(&self.parts.inputs(&encoding)?)?.logits.to_dtype(DType::F32)?.i(0)?;
        let single_mask = masks.len() == 1;
        let pad_id = self.parts.tokenizer.special_token_id("pad_token");
        let mut result = Vec::with_capacity(masks.len());
        for &position in &masks {
            let probs = softmax(&logits.i(position)?.to_vec1::<f32>()?);
            let (candidates, probs): (Vec<u32>, Vec<f32>) = match &target_ids {
                Some(targets) => targets.iter().map(|t| (*t, probs.get(*t as usize).copied().unwrap_or(0.0))).unzip(),
                None => ((0..probs.len() as u32).collect(), probs),
            };
            let mut row = Vec::new();
            for i in sorted_desc(&probs).into_iter().take(opts.top_k) {
                let token = candidates[i];
                let mut tokens = ids.to_vec();
                tokens[position] = token;
                tokens.retain(|t| Some(*t) != pad_id);
                row.push(FillMaskPrediction {
                    score: probs[i],
                    token,
                    token_str: self.parts.tokenizer.decode(&[token], false)?,
                    sequence: self.parts.tokenizer.decode(&tokens, single_mask)?,
                });
            }
            result.push(row);
        }
        Ok(result)
    }

    /// `get_target_ids`: each target's vocabulary id, else the first token it encodes to;
    /// duplicates dropped.
    fn target_ids(&self, targets: &[String]) -> Result<Vec<u32>> {
        let mut ids = Vec::new();
        for target in targets {
            let id = match self.parts.tokenizer.token_to_id(target) {
                Some(id) => id,
                None => {
                    let opts = crate::EncodeOptions::new().add_special_tokens(false);
                    let enc = self.parts.tokenizer.encode_batch_with(&[target.as_str()], None, &opts)?;
                    match enc.input_ids.first().and_then(|row| row.first()) {
                        Some(id) => *id,
                        None => {
                            tracing::warn!(
                                "fill-mask: the target `{target}` does not exist in the vocabulary, ignored"
                            );
                            continue;
                        }
                    }
                }
            };
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        if ids.is_empty() {
            return Err(Error::input("fill-mask: at least one target must be provided when `targets` is given"));
        }
        Ok(ids)
    }
}
