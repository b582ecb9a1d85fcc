//! Logits processors and warpers, after `transformers`' `generation/logits_process.py`: each
//! changes the next-token scores of one batch row, given the row's tokens so far.
//!
//! [`processors_for`] builds the list `generate` applies, in `transformers`' order
//! (`GenerationMixin._get_logits_processor`): repetition penalty, no-repeat n-gram, minimum
//! length, minimum new tokens, then, when sampling, temperature, top-k, top-p and min-p.

use std::fmt::Debug;

use autocandle_core::{Error, Result};

use super::config::{defaults, GenerationConfig};

/// Changes the next-token scores of one batch row (`transformers`' `LogitsProcessor`).
pub trait LogitsProcessor: Debug {
    /// Change `scores` (the row's next-token scores, one per vocabulary entry) in place.
    /// `input_ids` is the row so far: the prompt with its left padding, then the tokens
    /// generated before this step; `row` is the row's index in the batch.
    fn process(&mut self, row: usize, input_ids: &[u32], scores: &mut [f32]) -> Result<()>;
}

/// Apply `processors` in order.
pub fn apply_processors(
    processors: &mut [Box<dyn LogitsProcessor + '_>],
    row: usize,
    input_ids: &[u32],
    scores: &mut [f32],
) -> Result<()> {
    for p in processors.iter_mut() {
        p.process(row, input_ids, scores)?;
    }
    Ok(())
}

fn invalid(message: String) -> Error {
    Error::config("generation", message)
}

/// `scores[id] = -inf` for every `id` of `ids` inside the vocabulary.
fn ban(scores: &mut [f32], ids: &[u32]) {
    for &id in ids {
        if let Some(s) = scores.get_mut(id as usize) {
            *s = f32::NEG_INFINITY;
        }
    }
}

/// The index of the largest score, the first one on ties (`torch.argmax`); 0 when empty.
pub fn argmax(scores: &[f32]) -> usize {
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate() {
        if s > scores[best] || (scores[best].is_nan() && !s.is_nan()) {
            best = i;
        }
    }
    best
}

/// `softmax(scores)` in f32, as `torch.softmax` on float32 logits.
pub fn softmax(scores: &[f32]) -> Vec<f32> {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return vec![f32::NAN; scores.len()];
    }
    let exps: Vec<f32> = scores.iter().map(|&s| (s - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// Divides the scores of tokens already in the row by `penalty` (multiplies negative ones),
/// `RepetitionPenaltyLogitsProcessor`. The row's left padding is not counted.
#[derive(Debug, Clone)]
pub struct RepetitionPenalty {
    penalty: f32,
    ignore_prefix: Vec<usize>,
}

impl RepetitionPenalty {
    /// `penalty > 1` discourages repetition, `< 1` encourages it.
    pub fn new(penalty: f64) -> Result<Self> {
        if !(penalty > 0.0 && penalty.is_finite()) {
            return Err(invalid(format!("`repetition_penalty` has to be a strictly positive float, but is {penalty}")));
        }
        Ok(Self { penalty: penalty as f32, ignore_prefix: Vec::new() })
    }

    /// Skip the first `lengths[row]` tokens of each row (its left padding;
    /// `transformers`' `prompt_ignore_length`).
    pub fn ignoring_prefix(mut self, lengths: Vec<usize>) -> Self {
        self.ignore_prefix = lengths;
        self
    }
}

impl LogitsProcessor for RepetitionPenalty {
    fn process(&mut self, row: usize, input_ids: &[u32], scores: &mut [f32]) -> Result<()> {
        let start = self.ignore_prefix.get(row).copied().unwrap_or(0).min(input_ids.len());
        let mut seen: Vec<u32> = input_ids[start..].to_vec();
        seen.sort_unstable();
        seen.dedup();
        for id in seen {
            if let Some(s) = scores.get_mut(id as usize) {
                *s = if *s < 0.0 { *s * self.penalty } else { *s / self.penalty };
            }
        }
        Ok(())
    }
}

/// Bans every token that would complete an n-gram already in the row
/// (`NoRepeatNGramLogitsProcessor`).
#[derive(Debug, Clone)]
pub struct NoRepeatNGram {
    n: usize,
}

impl NoRepeatNGram {
    /// Ban repeats of n-grams of `ngram_size` tokens; an error when it is 0.
    pub fn new(ngram_size: usize) -> Result<Self> {
        if ngram_size == 0 {
            return Err(invalid("`no_repeat_ngram_size` has to be a strictly positive integer, but is 0".to_owned()));
        }
        Ok(Self { n: ngram_size })
    }
}

impl LogitsProcessor for NoRepeatNGram {
    fn process(&mut self, _row: usize, ids: &[u32], scores: &mut [f32]) -> Result<()> {
        let (n, len) = (self.n, ids.len());
        if len < n {
            return Ok(());
        }
        let prefix = &ids[len + 1 - n..];
        let banned: Vec<u32> = ids.windows(n).filter(|w| &w[..n - 1] == prefix).map(|w| w[n - 1]).collect();
        ban(scores, &banned);
        Ok(())
    }
}

/// Bans the EOS tokens while the row (padding included) is shorter than `min_length`
/// (`MinLengthLogitsProcessor`).
#[derive(Debug, Clone)]
pub struct MinLength {
    min_length: usize,
    eos: Vec<u32>,
}

impl MinLength {
    /// Ban `eos_token_ids` while a row holds fewer than `min_length` tokens (prompt and padding
    /// included).
    pub fn new(min_length: usize, eos_token_ids: Vec<u32>) -> Self {
        Self { min_length, eos: eos_token_ids }
    }
}

impl LogitsProcessor for MinLength {
    fn process(&mut self, _row: usize, ids: &[u32], scores: &mut [f32]) -> Result<()> {
        if ids.len() < self.min_length {
            ban(scores, &self.eos);
        }
        Ok(())
    }
}

/// Bans the EOS tokens until `min_new_tokens` tokens follow the prompt
/// (`MinNewTokensLengthLogitsProcessor`).
#[derive(Debug, Clone)]
pub struct MinNewTokens {
    prompt_len: usize,
    min_new_tokens: usize,
    eos: Vec<u32>,
}

impl MinNewTokens {
    /// `prompt_len` is the width of the (padded) prompt batch.
    pub fn new(prompt_len: usize, min_new_tokens: usize, eos_token_ids: Vec<u32>) -> Self {
        Self { prompt_len, min_new_tokens, eos: eos_token_ids }
    }
}

impl LogitsProcessor for MinNewTokens {
    fn process(&mut self, _row: usize, ids: &[u32], scores: &mut [f32]) -> Result<()> {
        if ids.len().saturating_sub(self.prompt_len) < self.min_new_tokens {
            ban(scores, &self.eos);
        }
        Ok(())
    }
}

/// Divides the scores by the temperature (`TemperatureLogitsWarper`).
#[derive(Debug, Clone)]
pub struct Temperature {
    temperature: f32,
}

impl Temperature {
    /// Divide by `temperature`; an error unless it is finite and above 0.
    pub fn new(temperature: f64) -> Result<Self> {
        if !(temperature > 0.0 && temperature.is_finite()) {
            return Err(invalid(format!(
                "`temperature` (={temperature}) has to be a strictly positive float; for greedy decoding set \
                 `do_sample` to false"
            )));
        }
        Ok(Self { temperature: temperature as f32 })
    }
}

impl LogitsProcessor for Temperature {
    fn process(&mut self, _row: usize, _ids: &[u32], scores: &mut [f32]) -> Result<()> {
        for s in scores.iter_mut() {
            *s /= self.temperature;
        }
        Ok(())
    }
}

/// Keeps the `k` highest scores (and any tied with the k-th), `TopKLogitsWarper`.
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
}

impl TopK {
    /// Keep `max(top_k, min_tokens_to_keep)` tokens; an error when `top_k` is 0.
    pub fn new(top_k: usize, min_tokens_to_keep: usize) -> Result<Self> {
        if top_k == 0 {
            return Err(invalid("`top_k` has to be a strictly positive integer, but is 0".to_owned()));
        }
        Ok(Self { k: top_k.max(min_tokens_to_keep) })
    }
}

impl LogitsProcessor for TopK {
    fn process(&mut self, _row: usize, _ids: &[u32], scores: &mut [f32]) -> Result<()> {
        let k = self.k.min(scores.len());
        if k == 0 || k == scores.len() {
            return Ok(());
        }
        let mut sorted = scores.to_vec();
        let (_, kth, _) = sorted.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
        let threshold = *kth;
        for s in scores.iter_mut() {
            if *s < threshold {
                *s = f32::NEG_INFINITY;
            }
        }
        Ok(())
    }
}

/// Keeps the most likely tokens whose probabilities add up to `top_p` (`TopPLogitsWarper`).
#[derive(Debug, Clone)]
pub struct TopP {
    top_p: f64,
    min_tokens_to_keep: usize,
}

impl TopP {
    /// Keep the nucleus of mass `top_p`, at least `min_tokens_to_keep` (at least 1) tokens; an
    /// error unless `top_p` is in (0, 1].
    pub fn new(top_p: f64, min_tokens_to_keep: usize) -> Result<Self> {
        if !(top_p > 0.0 && top_p <= 1.0) {
            return Err(invalid(format!("`top_p` has to be a float in (0, 1], but is {top_p}")));
        }
        Ok(Self { top_p, min_tokens_to_keep: min_tokens_to_keep.max(1) })
    }
}

impl LogitsProcessor for TopP {
    fn process(&mut self, _row: usize, _ids: &[u32], scores: &mut [f32]) -> Result<()> {
        let v = scores.len();
        let mut order: Vec<usize> = (0..v).collect();
        order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
        let sorted: Vec<f32> = order.iter().map(|&i| scores[i]).collect();
        let probs = softmax(&sorted);
        let cutoff = (1.0 - self.top_p) as f32;
        // torch's CPU cumsum accumulates float32 in double.
        let mut cum = 0f64;
        let keep_from = v.saturating_sub(self.min_tokens_to_keep);
        let mut remove = Vec::new();
        for (rank, (&i, &p)) in order.iter().zip(&probs).enumerate() {
            cum += f64::from(p);
            if rank < keep_from && (cum as f32) <= cutoff {
                remove.push(i);
            }
        }
        for i in remove {
            scores[i] = f32::NEG_INFINITY;
        }
        Ok(())
    }
}

/// Drops tokens less likely than `min_p` times the most likely token (`MinPLogitsWarper`).
#[derive(Debug, Clone)]
pub struct MinP {
    min_p: f32,
    min_tokens_to_keep: usize,
}

impl MinP {
    /// Drop tokens below `min_p` times the top probability, keeping at least
    /// `min_tokens_to_keep` (at least 1); an error unless `min_p` is in [0, 1].
    pub fn new(min_p: f64, min_tokens_to_keep: usize) -> Result<Self> {
        if !(0.0..=1.0).contains(&min_p) {
            return Err(invalid(format!("`min_p` has to be a float in the [0, 1] interval, but is {min_p}")));
        }
        Ok(Self { min_p: min_p as f32, min_tokens_to_keep: min_tokens_to_keep.max(1) })
    }
}

impl LogitsProcessor for MinP {
    fn process(&mut self, _row: usize, _ids: &[u32], scores: &mut [f32]) -> Result<()> {
        let probs = softmax(scores);
        let top = probs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let threshold = self.min_p * top;
        let mut keep: Vec<usize> = (0..probs.len()).collect();
        keep.sort_by(|&a, &b| probs[b].total_cmp(&probs[a]));
        keep.truncate(self.min_tokens_to_keep);
        for (i, (s, p)) in scores.iter_mut().zip(&probs).enumerate() {
            if *p < threshold && !keep.contains(&i) {
                *s = f32::NEG_INFINITY;
            }
        }
        Ok(())
    }
}

/// What [`processors_for`] needs to know about the prompt batch.
#[derive(Debug, Clone)]
pub struct PromptInfo {
    /// Width of the padded prompt batch.
    pub prompt_len: usize,
    /// Left padding of each row.
    pub padding: Vec<usize>,
    /// The EOS tokens, empty when there are none.
    pub eos_token_ids: Vec<u32>,
    /// The minimum total length, after `min_new_tokens` was turned into one.
    pub min_length: usize,
}

/// The processors `generate` applies for `config`, in `transformers`' order: the penalties
/// and length constraints, then the sampling warpers.
pub fn processors_for(config: &GenerationConfig, prompt: &PromptInfo) -> Result<Vec<Box<dyn LogitsProcessor>>> {
    let mut list = penalties_for(config, prompt)?;
    list.extend(warpers_for(config)?);
    Ok(list)
}

/// Repetition penalty, no-repeat n-gram, minimum length and minimum new tokens.
pub(crate) fn penalties_for(config: &GenerationConfig, prompt: &PromptInfo) -> Result<Vec<Box<dyn LogitsProcessor>>> {
    let mut list: Vec<Box<dyn LogitsProcessor>> = Vec::new();
    if let Some(p) = config.repetition_penalty.filter(|p| *p != defaults::REPETITION_PENALTY) {
        list.push(Box::new(RepetitionPenalty::new(p)?.ignoring_prefix(prompt.padding.clone())));
    }
    if let Some(n) = config.no_repeat_ngram_size.filter(|n| *n > 0) {
        list.push(Box::new(NoRepeatNGram::new(n)?));
    }
    let eos = &prompt.eos_token_ids;
    if !eos.is_empty() && prompt.min_length > 0 {
        list.push(Box::new(MinLength::new(prompt.min_length, eos.clone())));
    }
    if let Some(n) = config.min_new_tokens.filter(|n| *n > 0 && !eos.is_empty()) {
        list.push(Box::new(MinNewTokens::new(prompt.prompt_len, n, eos.clone())));
    }
    Ok(list)
}

/// Forces `bos` as the first generated token of encoder-decoders: when the row holds one
/// token (the decoder start), every other token is banned (`ForcedBOSTokenLogitsProcessor`).
#[derive(Debug, Clone)]
pub struct ForcedBos {
    bos: u32,
}

impl ForcedBos {
    /// Force `bos` (the config's `forced_bos_token_id`) as the first generated token.
    pub fn new(bos: u32) -> Self {
        Self { bos }
    }
}

impl LogitsProcessor for ForcedBos {
    fn process(&mut self, _row: usize, input_ids: &[u32], scores: &mut [f32]) -> Result<()> {
        if input_ids.len() == 1 {
            force(scores, &[self.bos]);
        }
        Ok(())
    }
}

/// Forces one of `eos` as the last token: when the row is one token short of `max_length`,
/// every other token is banned (`ForcedEOSTokenLogitsProcessor`).
#[derive(Debug, Clone)]
pub struct ForcedEos {
    max_length: usize,
    eos: Vec<u32>,
}

impl ForcedEos {
    /// Force one of `eos` (the config's `forced_eos_token_id`) when a row reaches
    /// `max_length - 1` tokens.
    pub fn new(max_length: usize, eos: Vec<u32>) -> Self {
        Self { max_length, eos }
    }
}

impl LogitsProcessor for ForcedEos {
    fn process(&mut self, _row: usize, input_ids: &[u32], scores: &mut [f32]) -> Result<()> {
        if input_ids.len() + 1 == self.max_length {
            force(scores, &self.eos);
        }
        Ok(())
    }
}

/// Every score -inf except those of `ids`, which become 0.
fn force(scores: &mut [f32], ids: &[u32]) {
    scores.fill(f32::NEG_INFINITY);
    for &id in ids {
        if let Some(s) = scores.get_mut(id as usize) {
            *s = 0.0;
        }
    }
}

/// `forced_bos_token_id` and `forced_eos_token_id`, after the length constraints.
pub(crate) fn forced_for(config: &GenerationConfig, max_length: usize) -> Vec<Box<dyn LogitsProcessor>> {
    let mut list: Vec<Box<dyn LogitsProcessor>> = Vec::new();
    if let Some(bos) = config.forced_bos_token_id {
        list.push(Box::new(ForcedBos::new(bos)));
    }
    if let Some(eos) = config.forced_eos_token_id.clone().filter(|e| !e.is_empty()) {
        list.push(Box::new(ForcedEos::new(max_length, eos)));
    }
    list
}

/// Temperature, top-k (default 50), top-p and min-p, when sampling.
pub(crate) fn warpers_for(config: &GenerationConfig) -> Result<Vec<Box<dyn LogitsProcessor>>> {
    let mut list: Vec<Box<dyn LogitsProcessor>> = Vec::new();
    if !config.sampling() {
        return Ok(list);
    }
    // Beam search would keep more; sampling keeps at least one token.
    let min_tokens_to_keep = 1;
    if let Some(t) = config.temperature.filter(|t| *t != defaults::TEMPERATURE) {
        list.push(Box::new(Temperature::new(t)?));
    }
    let top_k = config.top_k.unwrap_or(defaults::TOP_K);
    if top_k != 0 {
        list.push(Box::new(TopK::new(top_k, min_tokens_to_keep)?));
    }
    let top_p = config.top_p.unwrap_or(defaults::TOP_P);
    if top_p < 1.0 {
        list.push(Box::new(TopP::new(top_p, min_tokens_to_keep)?));
    }
    if let Some(min_p) = config.min_p {
        list.push(Box::new(MinP::new(min_p, min_tokens_to_keep)?));
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_takes_the_first_maximum() {
        assert_eq!(argmax(&[1.0, 3.0, 3.0, -1.0]), 1);
        assert_eq!(argmax(&[f32::NEG_INFINITY; 3]), 0);
    }

    #[test]
    fn no_repeat_ngram_bans_completions() {
        let mut p = NoRepeatNGram::new(2).unwrap();
        let mut scores = vec![0.0; 5];
        // Bigrams (1,2), (2,1), (1,3); the row ends with 1, so 2 and 3 are banned.
        p.process(0, &[1, 2, 1, 3, 1], &mut scores).unwrap();
        assert_eq!(scores, [0.0, 0.0, f32::NEG_INFINITY, f32::NEG_INFINITY, 0.0]);
    }

    #[test]
    fn top_k_keeps_ties() {
        let mut scores = vec![1.0, 3.0, 2.0, 2.0, 0.0];
        TopK::new(2, 1).unwrap().process(0, &[], &mut scores).unwrap();
        assert_eq!(scores, [f32::NEG_INFINITY, 3.0, 2.0, 2.0, f32::NEG_INFINITY]);
    }
}
