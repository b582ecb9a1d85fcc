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

use super::beam::{beam_search, BeamModel, BeamSettings};
use super::config::{defaults, GenerationConfig};
use super::logits::{apply_processors, LogitsProcessor, PromptInfo};
use super::prompts::{IntoPrompts, PaddedPrompts};
use super::rules::StepRules;
use super::sampling::TokenSelector;
use super::stopping::{StoppingCriteria, TokenDecoder};

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
#[derive(Debug, Clone, PartialEq)]
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
    /// Beam search: each returned hypothesis' score, `sum(log p) / generated_len ** length_penalty`
    /// (`transformers`' `sequences_scores`); `None` for greedy decoding and sampling.
    pub sequences_scores: Option<Vec<f32>>,
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

/// Generate from `prompts` to the end (`model.generate(...)`): greedy decoding, sampling or,
/// with `num_beams` > 1, beam search.
pub fn generate<M: ForCausalLm + ?Sized>(
    model: &M,
    prompts: impl IntoPrompts,
    config: &GenerationConfig,
) -> Result<GenerateOutput> {
    generate_with_options(model, prompts, config, GenerateOptions::default())
}

/// [`generate`] with a decoder for stop strings and custom criteria or processors.
///
/// With `num_beams` > 1 this is beam search (`transformers`' `_beam_search`): it returns
/// `num_return_sequences` rows per prompt, best first, each the prompt (with the batch's left
/// padding) then its hypothesis, filled after its end up to the longest, with their scores in
/// [`GenerateOutput::sequences_scores`]. Otherwise it runs [`Generator`] to the end.
pub fn generate_with_options<'a, M: ForCausalLm + ?Sized>(
    model: &'a M,
    prompts: impl IntoPrompts,
    config: &GenerationConfig,
    options: GenerateOptions<'a>,
) -> Result<GenerateOutput> {
    config.validate()?;
    let Some(beam) = BeamSettings::from_config(config, config.eos_token_id.as_deref().unwrap_or_default())? else {
        return Generator::with_options(model, prompts, config, options)?.run(|_| ControlFlow::Continue(()));
    };
    let started = Instant::now();
    let Prepared { prompts, padding, prompt_len, mut rules, .. } =
        prepare(model, prompts, config, options, beam.num_beams)?;
    let nb = beam.num_beams;
    let mut beams = CausalBeams {
        model,
        device: model.device().clone(),
        cache: (config.use_cache != Some(false) && model.supports_cache()).then(KvCache::new),
        prompt_mask: prompts.attention_mask.iter().flat_map(|m| std::iter::repeat_n(m, nb)).cloned().collect(),
        has_padding: prompts.has_padding,
        num_beams: nb,
        step: 0,
    };
    let input_padding: Vec<usize> = padding.iter().step_by(nb).copied().collect();
    let output = beam_search(&mut beams, &mut rules, &prompts.input_ids, &input_padding, &beam)?;
    log_generation("causal-beam", prompt_len * prompts.input_ids.len(), &output, started);
    Ok(output)
}

/// What greedy decoding, sampling and beam search set up alike from the prompts and the
/// config.
struct Prepared<'a> {
    /// One row per prompt (per sample with `num_return_sequences` when sampling).
    prompts: PaddedPrompts,
    /// The left padding of each row the logits processors see (each beam's with beams).
    padding: Vec<usize>,
    prompt_len: usize,
    rules: StepRules<'a>,
    /// `pad_token_id`, else the first EOS token.
    pad: Option<u32>,
}

/// Pad the prompts, work out `max_length` and build the step rules; `beams` rows per prompt
/// (1 without beam search). Sampling with `num_return_sequences` > 1 repeats each prompt.
fn prepare<'a, M: ForCausalLm + ?Sized>(
    model: &M,
    prompts: impl IntoPrompts,
    config: &GenerationConfig,
    options: GenerateOptions<'a>,
    beams: usize,
) -> Result<Prepared<'a>> {
    let eos = config.eos_token_id.clone().unwrap_or_default();
    let pad = config.pad_token_id.or_else(|| eos.first().copied());
    let mut prompts = prompts.into_prompts()?;
    let samples = if beams == 1 && config.sampling() { config.num_return_sequences.unwrap_or(1) } else { 1 };
    if samples > 1 {
        // `_expand_inputs_for_generation`: each prompt `num_return_sequences` times in a row.
        fn repeat(rows: &[Vec<u32>], times: usize) -> Vec<Vec<u32>> {
            rows.iter().flat_map(|r| std::iter::repeat_n(r, times)).cloned().collect()
        }
        prompts.input_ids = repeat(&prompts.input_ids, samples);
        prompts.attention_mask = prompts.attention_mask.map(|m| repeat(&m, samples));
    }
    let prompts = PaddedPrompts::new(prompts, pad, &eos)?;
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
    let padding: Vec<usize> = prompts.padding().into_iter().flat_map(|p| std::iter::repeat_n(p, beams)).collect();
    let info = PromptInfo { prompt_len, padding: padding.clone(), eos_token_ids: eos, min_length };
    let rules = StepRules::new(config, &info, max_length, options)?;
    Ok(Prepared { prompts, padding, prompt_len, rules, pad })
}

/// A causal language model under beam search: the rows are the beams of each prompt.
struct CausalBeams<'a, M: ForCausalLm + ?Sized> {
    model: &'a M,
    device: Device,
    cache: Option<KvCache>,
    /// The attention mask of each row's prompt (the same for the beams of one prompt).
    prompt_mask: Vec<Vec<u32>>,
    has_padding: bool,
    num_beams: usize,
    step: usize,
}

impl<M: ForCausalLm + ?Sized> BeamModel for CausalBeams<'_, M> {
    fn next_logits(&mut self, rows: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        let step = self.step;
        self.step += 1;
        let masks: Option<Vec<Vec<u32>>> = self.has_padding.then(|| {
            rows.iter()
                .zip(&self.prompt_mask)
                .map(|(r, m)| [m.as_slice(), &vec![1; r.len().saturating_sub(m.len())]].concat())
                .collect()
        });
        let nb = self.num_beams;
        if step > 0 || self.cache.is_none() {
            return causal_logits(self.model, &self.device, self.cache.as_mut(), rows, masks.as_deref(), step > 0);
        }
        // The prompt once per input; the beams then share its cache rows (`repeat_interleave`).
        let unique: Vec<&[u32]> = rows.iter().step_by(nb).copied().collect();
        let unique_masks: Option<Vec<Vec<u32>>> = masks.map(|m| m.into_iter().step_by(nb).collect());
        let logits =
            causal_logits(self.model, &self.device, self.cache.as_mut(), &unique, unique_masks.as_deref(), false)?;
        let expand: Vec<u32> = (0..unique.len() as u32).flat_map(|b| std::iter::repeat_n(b, nb)).collect();
        if let Some(cache) = &mut self.cache {
            cache.select_rows(&Tensor::new(expand, &self.device)?)?;
        }
        Ok(logits.into_iter().flat_map(|l| std::iter::repeat_n(l, nb)).collect())
    }

    fn reorder(&mut self, sources: &[u32]) -> Result<()> {
        match &mut self.cache {
            Some(cache) => cache.select_rows(&Tensor::new(sources, &self.device)?),
            None => Ok(()),
        }
    }
}

/// Run a causal model on `rows` (left-padded, equally long; `mask` when there is padding) and
/// return the last position's logits of each row as f32: the newest token only when
/// `incremental` and a cache holds the rest, else every token (into the cache when there is
/// one).
fn causal_logits<M: ForCausalLm + ?Sized>(
    model: &M,
    device: &Device,
    mut cache: Option<&mut KvCache>,
    rows: &[&[u32]],
    mask: Option<&[Vec<u32>]>,
    incremental: bool,
) -> Result<Vec<Vec<f32>>> {
    let batch = rows.len();
    let len = rows.first().map_or(0, |r| r.len());
    if let Some(max) = model.max_positions().filter(|max| len > *max) {
        return Err(Error::SequenceTooLong { len, max });
    }
    let mut incremental = incremental && cache.is_some();
    if let Some(cache) = cache.as_deref_mut().filter(|_| incremental) {
        // Phi-3 LongRoPE: the cached keys were rotated with the short factors.
        if model.reset_cache_at(cache.seq_len(), len) {
            cache.clear();
            incremental = false;
        }
    }
    let new = if incremental { 1 } else { len };
    let mut ids = Vec::with_capacity(batch * new);
    let mut positions = Vec::with_capacity(batch * new);
    for (row, seq) in rows.iter().enumerate() {
        ids.extend_from_slice(&seq[len - new..]);
        // `cumsum(mask) - 1`, 0 on padding (`_prepare_position_ids_for_generation`).
        let row_positions: Vec<u32> = match mask.and_then(|m| m.get(row)) {
            Some(m) => {
                let mut seen = 0u32;
                m.iter()
                    .map(|&m| {
                        seen += m;
                        if m == 0 {
                            0
                        } else {
                            seen - 1
                        }
                    })
                    .collect()
            }
            None => (0..len as u32).collect(),
        };
        positions.extend_from_slice(&row_positions[len - new..]);
    }
    let mut inputs = ModelInputs::new(Tensor::from_vec(ids, (batch, new), device)?)
        .with_position_ids(Tensor::from_vec(positions, (batch, new), device)?)
        .with_logits_to_keep(1);
    if let Some(mask) = mask {
        let mask: Vec<u32> = mask.iter().flatten().copied().collect();
        inputs = inputs.with_attention_mask(Tensor::from_vec(mask, (batch, len), device)?);
    }
    let out = match cache {
        Some(cache) => model.forward_with_cache(&inputs, cache)?,
        None => model.forward(&inputs)?,
    };
    last_logits(&out.logits, batch, "model")
}

/// The last position's logits of `[batch, seq, vocab]` logits of `rows` rows, as f32 rows.
pub(crate) fn last_logits(logits: &Tensor, rows: usize, what: &str) -> Result<Vec<Vec<f32>>> {
    let (b, s, _) = logits.dims3().map_err(|_| {
        Error::input(format!("the {what} returned logits of shape {:?}, expected [batch, seq, vocab]", logits.dims()))
    })?;
    if b != rows || s == 0 {
        return Err(Error::input(format!("the {what} returned logits of shape {:?} for {rows} rows", logits.dims())));
    }
    let last = logits.narrow(1, s - 1, 1)?.squeeze(1)?.to_dtype(DType::F32)?.to_device(&Device::Cpu)?;
    Ok(last.to_vec2()?)
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
    /// The token finished rows get, when there is an EOS token.
    pad_fill: Option<u32>,
    rules: StepRules<'a>,
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
            .field("max_length", &self.rules.max_length)
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
        if let Some(beam) = BeamSettings::from_config(config, config.eos_token_id.as_deref().unwrap_or_default())? {
            return Err(Error::Unsupported(format!(
                "step by step generation with beam search (`num_beams` = {}): the beams are only ranked at the end, \
                 as `transformers` refuses a streamer with beam search; call `generate` (or `generate_output`) for \
                 beam search, or set `num_beams` to 1 to stream",
                beam.num_beams
            )));
        }
        let Prepared { prompts, padding, prompt_len, rules, pad } = prepare(model, prompts, config, options, 1)?;
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
            pad_fill: if rules.eos.is_empty() { None } else { pad },
            rules,
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
        self.rules.max_length
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
            sequences_scores: None,
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
                    apply_processors(&mut self.rules.processors, row, &self.sequences[row], &mut scores)?;
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
            let reason = if self.rules.eos.contains(&tokens[row]) {
                Some(FinishReason::Eos)
            } else if self.rules.criteria_match(row, &self.sequences[row][self.padding[row]..])? {
                Some(FinishReason::Stop)
            } else if len >= self.rules.max_length {
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

    /// Run the model and return the last position's logits of each row as f32.
    fn forward(&mut self) -> Result<Vec<Vec<f32>>> {
        let rows: Vec<&[u32]> = self.sequences.iter().map(Vec::as_slice).collect();
        let mask = self.has_padding.then_some(self.mask.as_slice());
        causal_logits(self.model, &self.device, self.cache.as_mut(), &rows, mask, self.step > 0)
    }
}

impl<M: ForCausalLm + ?Sized> Iterator for Generator<'_, M> {
    type Item = Result<StepTokens>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_step().transpose()
    }
}
