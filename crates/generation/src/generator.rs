//! The decoding loop (`transformers`' `GenerationMixin.generate` / `_sample`): prefill, then one
//! token per step, through the key/value cache or by recomputing the whole sequence.
//!
//! [`Generator`] is the loop as an iterator of [`StepTokens`]; [`generate`] runs it to the end
//! and [`Generator::run`] calls back after each step.

use std::fmt::Debug;
use std::ops::ControlFlow;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};

use autocandle_core::cache::KvCache;
use autocandle_core::{Error, Result};
use autocandle_core::{ForCausalLm, ModelInputs};

use super::config::{defaults, GenerationConfig};
use super::logits::{apply_processors, forced_for, penalties_for, warpers_for, LogitsProcessor, PromptInfo};
use super::prompts::{IntoPrompts, PaddedPrompts};
use super::sampling::TokenSelector;
use super::stopping::{StopStringCriteria, StoppingCriteria, TokenDecoder};

/// Why a row stopped generating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FinishReason {
    /// It reached `max_new_tokens` / `max_length`.
    Length,
    /// It generated an EOS token (kept at the end of the row).
    Eos,
    /// A stop string or another stopping criterion matched.
    Stop,
    /// The caller stopped generation first (a callback returned `Break`, or the iterator was
    /// left before the end).
    Cancelled,
}

/// The tokens chosen at one step, one per batch row.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StepTokens {
    /// 0 for the first generated token.
    pub step: usize,
    /// The token appended to each row. A row that had already finished gets the pad token
    /// when there is an EOS token (`transformers`' behaviour), else it keeps generating.
    pub tokens: Vec<u32>,
    /// Whether each row was still generating, i.e. whether its token belongs to its output.
    pub active: Vec<bool>,
    /// Each row's finish reason after this step (`None` while it goes on).
    pub finished: Vec<Option<FinishReason>>,
}

/// The result of a generation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GenerateOutput {
    /// Each row: the prompt (with the left padding of the batch) then the generated tokens,
    /// all rows equally long (`transformers`' `generate` output).
    pub sequences: Vec<Vec<u32>>,
    /// Width of the padded prompt: generated tokens start at this index.
    pub prompt_len: usize,
    /// Number of tokens each row generated before it finished (its EOS token included); the
    /// rest of the row is filler.
    pub num_generated: Vec<usize>,
    /// Why each row stopped.
    pub finish_reasons: Vec<FinishReason>,
}

impl GenerateOutput {
    /// The tokens `row` generated, without the prompt and without the filler after it finished.
    pub fn generated(&self, row: usize) -> &[u32] {
        let seq = self.sequences.get(row).map(Vec::as_slice).unwrap_or_default();
        let n = self.num_generated.get(row).copied().unwrap_or(0);
        seq.get(self.prompt_len..self.prompt_len + n).unwrap_or_default()
    }
}

/// Extras for [`Generator::with_options`]: the decoder that stop strings need, and custom
/// stopping criteria and logits processors (`generate`'s `tokenizer=`, `stopping_criteria=`
/// and `logits_processor=` arguments).
#[derive(Default)]
pub struct GenerateOptions<'a> {
    pub(super) decoder: Option<&'a dyn TokenDecoder>,
    pub(super) stopping_criteria: Vec<Box<dyn StoppingCriteria + 'a>>,
    pub(super) logits_processors: Vec<Box<dyn LogitsProcessor + 'a>>,
}

impl Debug for GenerateOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenerateOptions")
            .field("decoder", &self.decoder.is_some())
            .field("stopping_criteria", &self.stopping_criteria)
            .field("logits_processors", &self.logits_processors)
            .finish()
    }
}

impl<'a> GenerateOptions<'a> {
    /// No decoder, no extra criteria or processors.
    pub fn new() -> Self {
        Self::default()
    }

    /// The decoder (usually the tokenizer) that turns tokens into text for `stop_strings`.
    pub fn decoder(mut self, decoder: &'a dyn TokenDecoder) -> Self {
        self.decoder = Some(decoder);
        self
    }

    /// An extra stopping criterion, checked after the built-in ones.
    pub fn stopping_criterion(mut self, criterion: impl StoppingCriteria + 'a) -> Self {
        self.stopping_criteria.push(Box::new(criterion));
        self
    }

    /// An extra logits processor, applied after the built-in processors and before the
    /// sampling warpers, as `transformers` merges them.
    pub fn logits_processor(mut self, processor: impl LogitsProcessor + 'a) -> Self {
        self.logits_processors.push(Box::new(processor));
        self
    }
}

/// One debug line per generate call: prompt tokens (the padded batch), new tokens (all rows),
/// time and tokens per second.
pub(crate) fn log_generation(kind: &'static str, prompt_tokens: usize, output: &GenerateOutput, started: Instant) {
    tracing::debug!(
        kind,
        rows = output.sequences.len(),
        prompt_tokens,
        new_tokens = output.num_generated.iter().sum::<usize>(),
        elapsed = ?started.elapsed(),
        tokens_per_s = %format_args!(
            "{:.1}",
            output.num_generated.iter().sum::<usize>() as f64 / started.elapsed().as_secs_f64().max(1e-9)
        ),
        "generated"
    );
}

/// Generate from `prompts` to the end (`model.generate(...)`).
pub fn generate<M: ForCausalLm + ?Sized>(
    model: &M,
    prompts: impl IntoPrompts,
    config: &GenerationConfig,
) -> Result<GenerateOutput> {
    Generator::new(model, prompts, config)?.run(|_| ControlFlow::Continue(()))
}

/// The decoding loop, one step per [`Iterator::next`].
///
/// ```no_run
/// # use autocandle_core::{ForCausalLm, Result};
/// # use autocandle_generation::{GenerationConfig, Generator};
/// # fn demo(model: &dyn ForCausalLm) -> Result<()> {
/// let config = GenerationConfig::new().max_new_tokens(16);
/// for step in Generator::new(model, &[1u32, 2, 3], &config)? {
///     println!("{:?}", step?.tokens);
/// }
/// # Ok(()) }
/// ```
pub struct Generator<'a, M: ForCausalLm + ?Sized = dyn ForCausalLm> {
    model: &'a M,
    device: Device,
    sequences: Vec<Vec<u32>>,
    mask: Vec<Vec<u32>>,
    has_padding: bool,
    padding: Vec<usize>,
    prompt_len: usize,
    max_length: usize,
    eos: Vec<u32>,
    /// The token finished rows get, when there is an EOS token.
    pad_fill: Option<u32>,
    processors: Vec<Box<dyn LogitsProcessor + 'a>>,
    criteria: Vec<Box<dyn StoppingCriteria + 'a>>,
    selector: TokenSelector,
    cache: Option<KvCache>,
    finish: Vec<Option<FinishReason>>,
    generated: Vec<usize>,
    step: usize,
    done: bool,
    /// When generation was set up, for the log's tokens per second.
    started: Instant,
}

impl<M: ForCausalLm + ?Sized> Debug for Generator<'_, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator")
            .field("rows", &self.sequences.len())
            .field("prompt_len", &self.prompt_len)
            .field("max_length", &self.max_length)
            .field("step", &self.step)
            .field("cached", &self.cache.is_some())
            .field("finish", &self.finish)
            .finish_non_exhaustive()
    }
}

impl<'a, M: ForCausalLm + ?Sized> Generator<'a, M> {
    /// Prepare generation from `prompts`; nothing runs until the first step.
    pub fn new(model: &'a M, prompts: impl IntoPrompts, config: &GenerationConfig) -> Result<Self> {
        Self::with_options(model, prompts, config, GenerateOptions::default())
    }

    /// [`Generator::new`] with a decoder for stop strings and custom criteria or processors.
    pub fn with_options(
        model: &'a M,
        prompts: impl IntoPrompts,
        config: &GenerationConfig,
        options: GenerateOptions<'a>,
    ) -> Result<Self> {
        config.validate()?;
        if let Some(n) = config.num_beams.filter(|n| *n > 1) {
            return Err(Error::Unsupported(format!(
                "beam search (`num_beams` = {n}) for causal language models; autocandle runs beam search for \
                 sequence-to-sequence models and decodes causal models greedily or by sampling: set `num_beams` to 1"
            )));
        }
        let eos = config.eos_token_id.clone().unwrap_or_default();
        let pad = config.pad_token_id.or_else(|| eos.first().copied());
        let stop_strings = config.stop_strings.clone().unwrap_or_default();
        if !stop_strings.is_empty() && options.decoder.is_none() {
            return Err(Error::input(
                "`stop_strings` need a tokenizer to decode the generated tokens: generate through the tokenizer-aware \
                 methods (`generate_with_tokenizer`) or give `GenerateOptions::decoder`",
            ));
        }
        let prompts = PaddedPrompts::new(prompts.into_prompts()?, pad, &eos)?;
        let prompt_len = prompts.input_ids[0].len();
        let max_positions = model.max_positions();
        if let Some(max) = max_positions.filter(|max| prompt_len > *max) {
            return Err(Error::SequenceTooLong { len: prompt_len, max });
        }
        let max_length = match (config.max_new_tokens, config.max_length) {
            (Some(n), _) => prompt_len + n,
            (None, Some(max)) => max,
            // The default: 20 new tokens, within the model's positions.
            (None, None) => {
                let max = prompt_len + defaults::MAX_LENGTH;
                max_positions.map_or(max, |p| max.min(p))
            }
        };
        if prompt_len >= max_length {
            return Err(Error::input(format!(
                "the prompt has {prompt_len} tokens but `max_length` is {max_length}: nothing is left to generate; \
                 raise `max_length` or, better, set `max_new_tokens`"
            )));
        }
        let min_length = match config.min_new_tokens {
            Some(n) => prompt_len + n,
            None => config.min_length.unwrap_or(0),
        };
        let padding = prompts.padding();
        let info = PromptInfo { prompt_len, padding: padding.clone(), eos_token_ids: eos.clone(), min_length };
        let mut processors: Vec<Box<dyn LogitsProcessor + 'a>> = Vec::new();
        processors.extend(penalties_for(config, &info)?.into_iter().map(|p| p as Box<dyn LogitsProcessor + 'a>));
        processors.extend(forced_for(config, max_length).into_iter().map(|p| p as Box<dyn LogitsProcessor + 'a>));
        processors.extend(options.logits_processors);
        processors.extend(warpers_for(config)?.into_iter().map(|p| p as Box<dyn LogitsProcessor + 'a>));
        let mut criteria: Vec<Box<dyn StoppingCriteria + 'a>> = Vec::new();
        if let (false, Some(decoder)) = (stop_strings.is_empty(), options.decoder) {
            criteria.push(Box::new(StopStringCriteria::new(decoder, stop_strings)));
        }
        criteria.extend(options.stopping_criteria);
        let rows = prompts.input_ids.len();
        let selector =
            if config.sampling() { TokenSelector::sampling(rows, config.seed) } else { TokenSelector::Greedy };
        let cache = (config.use_cache != Some(false) && model.supports_cache()).then(KvCache::new);
        Ok(Self {
            model,
            device: model.device().clone(),
            sequences: prompts.input_ids,
            mask: prompts.attention_mask,
            has_padding: prompts.has_padding,
            padding,
            prompt_len,
            max_length,
            pad_fill: if eos.is_empty() { None } else { pad },
            eos,
            processors,
            criteria,
            selector,
            cache,
            finish: vec![None; rows],
            generated: vec![0; rows],
            step: 0,
            done: false,
            started: Instant::now(),
        })
    }

    /// The longest the rows may grow, prompt included.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    /// Width of the padded prompt batch.
    pub fn prompt_len(&self) -> usize {
        self.prompt_len
    }

    /// The rows so far (prompt with padding, then generated tokens).
    pub fn sequences(&self) -> &[Vec<u32>] {
        &self.sequences
    }

    /// Whether every row has finished (or generation was stopped).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Stop now: rows still generating finish as [`FinishReason::Cancelled`].
    pub fn stop(&mut self) {
        for f in &mut self.finish {
            f.get_or_insert(FinishReason::Cancelled);
        }
        self.done = true;
    }

    /// Run one step; `None` once every row has finished.
    pub fn next_step(&mut self) -> Result<Option<StepTokens>> {
        if self.done {
            return Ok(None);
        }
        match self.advance() {
            Ok(step) => Ok(Some(step)),
            Err(e) => {
                self.done = true;
                Err(e)
            }
        }
    }

    /// Run to the end, calling `on_step` after each step; `ControlFlow::Break` stops early.
    pub fn run(mut self, mut on_step: impl FnMut(&StepTokens) -> ControlFlow<()>) -> Result<GenerateOutput> {
        while let Some(step) = self.next_step()? {
            if on_step(&step).is_break() {
                self.stop();
            }
        }
        Ok(self.into_output())
    }

    /// The result so far; rows that have not finished count as cancelled.
    pub fn into_output(self) -> GenerateOutput {
        let output = GenerateOutput {
            finish_reasons: self.finish.iter().map(|f| f.unwrap_or(FinishReason::Cancelled)).collect(),
            sequences: self.sequences,
            prompt_len: self.prompt_len,
            num_generated: self.generated,
        };
        log_generation("causal", output.prompt_len * output.sequences.len(), &output, self.started);
        output
    }

    fn advance(&mut self) -> Result<StepTokens> {
        let logits = self.forward()?;
        let rows = self.sequences.len();
        let mut tokens = Vec::with_capacity(rows);
        let mut active = Vec::with_capacity(rows);
        for (row, mut scores) in logits.into_iter().enumerate() {
            let is_active = self.finish[row].is_none();
            let token = match (is_active, self.pad_fill) {
                (false, Some(pad)) => pad,
                _ => {
                    apply_processors(&mut self.processors, row, &self.sequences[row], &mut scores)?;
                    self.selector.select(row, &scores)?
                }
            };
            tokens.push(token);
            active.push(is_active);
        }
        for ((seq, mask), &token) in self.sequences.iter_mut().zip(&mut self.mask).zip(&tokens) {
            seq.push(token);
            mask.push(1);
        }
        let len = self.sequences[0].len();
        for row in (0..rows).filter(|r| active[*r]) {
            self.generated[row] += 1;
            let reason = if self.eos.contains(&tokens[row]) {
                Some(FinishReason::Eos)
            } else if self.criteria_match(row)? {
                Some(FinishReason::Stop)
            } else if len >= self.max_length {
                Some(FinishReason::Length)
            } else {
                None
            };
            self.finish[row] = reason;
        }
        self.done = self.finish.iter().all(Option::is_some);
        let step = StepTokens { step: self.step, tokens, active, finished: self.finish.clone() };
        self.step += 1;
        Ok(step)
    }

    fn criteria_match(&mut self, row: usize) -> Result<bool> {
        let ids = &self.sequences[row][self.padding[row]..];
        for c in &mut self.criteria {
            if c.is_done(row, ids)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Run the model and return the last position's logits of each row as f32.
    fn forward(&mut self) -> Result<Vec<Vec<f32>>> {
        let rows = self.sequences.len();
        let len = self.sequences[0].len();
        if let Some(max) = self.model.max_positions().filter(|max| len > *max) {
            return Err(Error::SequenceTooLong { len, max });
        }
        let mut incremental = self.cache.is_some() && self.step > 0;
        if let Some(cache) = self.cache.as_mut().filter(|_| incremental) {
            // Phi-3 LongRoPE: the cached keys were rotated with the short factors.
            if self.model.reset_cache_at(cache.seq_len(), len) {
                cache.clear();
                incremental = false;
            }
        }
        let new = if incremental { 1 } else { len };
        let mut ids = Vec::with_capacity(rows * new);
        let mut positions = Vec::with_capacity(rows * new);
        for (seq, mask) in self.sequences.iter().zip(&self.mask) {
            ids.extend_from_slice(&seq[len - new..]);
            // `cumsum(mask) - 1`, 0 on padding (`_prepare_position_ids_for_generation`).
            let mut seen = 0u32;
            let row_positions: Vec<u32> = mask
                .iter()
                .map(|&m| {
                    seen += m;
                    if m == 0 {
                        0
                    } else {
                        seen - 1
                    }
                })
                .collect();
            positions.extend_from_slice(&row_positions[len - new..]);
        }
        let mut inputs = ModelInputs::new(Tensor::from_vec(ids, (rows, new), &self.device)?)
            .with_position_ids(Tensor::from_vec(positions, (rows, new), &self.device)?)
            .with_logits_to_keep(1);
        if self.has_padding {
            let mask: Vec<u32> = self.mask.iter().flatten().copied().collect();
            inputs = inputs.with_attention_mask(Tensor::from_vec(mask, (rows, len), &self.device)?);
        }
        let out = match &mut self.cache {
            Some(cache) => self.model.forward_with_cache(&inputs, cache)?,
            None => self.model.forward(&inputs)?,
        };
        let logits = out.logits;
        let (b, s, _) = logits.dims3().map_err(|_| {
            Error::input(format!(
                "the model returned logits of shape {:?}, expected [batch, seq, vocab]",
                logits.dims()
            ))
        })?;
        if b != rows || s == 0 {
            return Err(Error::input(format!(
                "the model returned logits of shape {:?} for {rows} rows of {new} tokens",
                logits.dims()
            )));
        }
        let last = logits.narrow(1, s - 1, 1)?.squeeze(1)?.to_dtype(DType::F32)?.to_device(&Device::Cpu)?;
        Ok(last.to_vec2()?)
    }
}

impl<M: ForCausalLm + ?Sized> Iterator for Generator<'_, M> {
    type Item = Result<StepTokens>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_step().transpose()
    }
}
