//! [`whisper_generate`]: `WhisperForConditionalGeneration.generate` of `transformers` 5
//! (`generation_whisper.py`): decoder prompt, language detection, timestamps, sequential
//! 30-second windows for long audio, previous-context prompts.

use candle_core::{DType, Device, Tensor};

use autocandle_core::{Error, ForSpeechSeq2Seq, ModelInputs, Result};
use autocandle_generation::{generate_seq2seq_from, GenerateOptions, GenerationConfig};

use super::config::WhisperGenerationConfig;
use super::processors::{SuppressTokens, SuppressTokensAtBegin, WhisperTimestamps};

/// The encoder's two convolutions have strides 1 and 2: one encoder position per two frames.
const INPUT_STRIDE: usize = 2;

/// Which windows of long-form audio `prompt_ids` precede (`prompt_condition_type`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PromptCondition {
    /// Only the first window (`"first-segment"`, the default).
    #[default]
    FirstSegment,
    /// Every window (`"all-segments"`; needs `condition_on_prev_tokens`).
    AllSegments,
}

/// The arguments of Whisper's `generate` beside the features.
#[derive(Debug, Clone)]
pub struct WhisperGenerateOptions {
    /// The spoken language as a code (`"en"`), a name (`"english"`) or a token (`"<|en|>"`);
    /// `None` on a multilingual model detects it per row.
    pub language: Option<String>,
    /// One language per row (takes precedence over `language`).
    pub languages: Option<Vec<String>>,
    /// `"transcribe"` or `"translate"` (to English); `None` leaves the task token out unless a
    /// language is given (then `"transcribe"`).
    pub task: Option<String>,
    /// Predict timestamps and return segments with their times (default: the generation
    /// config's, else false; long-form audio always does).
    pub return_timestamps: Option<bool>,
    /// Previous-context tokens (`<|startofprev|>` and the tokens of a text), put before the
    /// decoder prompt (`processor.get_prompt_ids(text)`).
    pub prompt_ids: Option<Vec<u32>>,
    /// Which windows `prompt_ids` precede.
    pub prompt_condition_type: PromptCondition,
    /// Long-form: put the tokens of the previous windows before each window's prompt
    /// (default: the generation config's, else false).
    pub condition_on_prev_tokens: Option<bool>,
    /// Override the generation config's `is_multilingual`.
    pub is_multilingual: Option<bool>,
    /// Sampling temperature: `None` decodes greedily (or with beams); above 0 samples (and
    /// turns beams off), as Whisper's `temperature=` does. Fallback over several
    /// temperatures is not implemented.
    pub temperature: Option<f64>,
    /// Seconds per output timestamp step (0.02).
    pub time_precision: f64,
    /// Seconds per mel frame (0.01).
    pub time_precision_features: f64,
    /// Frames per window (default `2 * max_source_positions`: 3000).
    pub num_segment_frames: Option<usize>,
    /// Generic decoding settings (`max_new_tokens`, `num_beams`, `seed`, ...), over the
    /// checkpoint's generation config.
    pub generation: GenerationConfig,
}

impl Default for WhisperGenerateOptions {
    fn default() -> Self {
        Self {
            language: None,
            languages: None,
            task: None,
            return_timestamps: None,
            prompt_ids: None,
            prompt_condition_type: PromptCondition::FirstSegment,
            condition_on_prev_tokens: None,
            is_multilingual: None,
            temperature: None,
            time_precision: 0.02,
            time_precision_features: 0.01,
            num_segment_frames: None,
            generation: GenerationConfig::new(),
        }
    }
}

/// One segment: the tokens between two timestamps (or a whole window without them), with
/// start and end in seconds from the start of the audio.
#[derive(Debug, Clone, PartialEq)]
pub struct WhisperSegment {
    /// Start in seconds.
    pub start: f64,
    /// End in seconds.
    pub end: f64,
    /// The tokens, timestamp tokens included, EOS excluded.
    pub tokens: Vec<u32>,
}

/// What Whisper generated for one input row.
#[derive(Debug, Clone, PartialEq)]
pub struct WhisperTranscription {
    /// The tokens of all segments in order (`generate`'s `sequences` row without padding:
    /// no decoder prompt, no EOS).
    pub tokens: Vec<u32>,
    /// The segments (`return_segments=True`).
    pub segments: Vec<WhisperSegment>,
    /// The decoder prompt of the first window (start, language, task, timestamp tokens).
    pub init_tokens: Vec<u32>,
    /// The language token (given or detected), if the prompt has one.
    pub language: Option<u32>,
}

/// Transcribe (or translate) `inputs.input_features` (`[batch, num_mel_bins, frames]`, and an
/// `attention_mask` `[batch, frames]` for a batch of long audio) as `transformers`' Whisper
/// `generate` does: features up to one window (`2 * max_source_positions` frames, 30 s) are
/// short-form; longer ones run window after window, each moved on to the last predicted
/// timestamp. Returns one transcription per row (`num_return_sequences` per row in a row).
pub fn whisper_generate(
    model: &dyn ForSpeechSeq2Seq,
    config: &WhisperGenerationConfig,
    inputs: &ModelInputs,
    opts: &WhisperGenerateOptions,
) -> Result<Vec<WhisperTranscription>> {
    let features = inputs.input_features()?.to_dtype(DType::F32)?;
    let &[batch, _mel, total_frames] = features.dims() else {
        return Err(Error::input(format!(
            "`input_features` must be [batch, num_mel_bins, frames], got shape {:?}",
            features.dims()
        )));
    };
    if batch == 0 || total_frames == 0 {
        return Err(Error::input("`input_features` is empty: give at least one row of frames"));
    }
    let mut gen = opts.generation.clone().fill_from(&config.generation);
    let nsf = opts.num_segment_frames.unwrap_or(INPUT_STRIDE * config.max_source_positions);
    if nsf == 0 {
        return Err(Error::input("`num_segment_frames` must be positive"));
    }
    let is_shortform = total_frames <= nsf;
    // _set_return_timestamps
    let mut return_timestamps = opts.return_timestamps.or(config.return_timestamps).unwrap_or(false);
    if !is_shortform {
        if opts.return_timestamps == Some(false) {
            return Err(Error::input(format!(
                "more than {nsf} mel frames (over 30 s) is long-form transcription, which predicts timestamps: \
                 set `return_timestamps` to true or give at most {nsf} frames"
            )));
        }
        return_timestamps = true;
    }
    if return_timestamps && config.no_timestamps_token_id.is_none() {
        return Err(Error::config(
            "whisper generation",
            "timestamps need `no_timestamps_token_id` in generation_config.json, which has none",
        ));
    }
    let timestamp_begin =
        config.timestamp_begin().or(config.vocab_size.map(|v| v as u32 + 1)).unwrap_or(u32::MAX) as usize;
    // _set_language_and_task
    let is_multilingual = opts.is_multilingual.or(config.is_multilingual);
    let has_language = opts.language.is_some() || opts.languages.is_some();
    if is_multilingual == Some(false) && (opts.task.is_some() || has_language) {
        return Err(Error::input(
            "cannot give `task` or `language` for an English-only model: if it is multilingual, set \
             `is_multilingual`, or update its generation config",
        ));
    }
    if has_language && config.lang_to_id.is_empty() {
        return Err(Error::config(
            "whisper generation",
            "generation_config.json has no `lang_to_id`, so `language` cannot be used: the config is outdated",
        ));
    }
    let start = gen.decoder_start_token_id.or_else(|| model.decoder_start_token_id()).ok_or_else(|| {
        Error::config("whisper generation", "no `decoder_start_token_id` in the generation config or model config")
    })?;
    let eos = gen.eos_token_id.as_ref().and_then(|e| e.first().copied()).or(gen.bos_token_id);
    let pad = gen.pad_token_id.or(eos);
    let device = model.device().clone();

    let init_tokens = init_tokens(model, config, opts, &features, batch, nsf, start, return_timestamps, &device)?;
    let condition_on_prev = opts.condition_on_prev_tokens.or(config.condition_on_prev_tokens).unwrap_or(false);
    if opts.prompt_condition_type == PromptCondition::AllSegments && !condition_on_prev {
        return Err(Error::input("`prompt_condition_type` all-segments needs `condition_on_prev_tokens` set to true"));
    }
    if opts.temperature.is_some_and(|t| !t.is_finite() || t < 0.0) {
        return Err(Error::input("`temperature` must be a finite number >= 0"));
    }
    // _retrieve_max_frames_and_seek
    let max_frames: Vec<usize> = if batch > 1 && !is_shortform {
        let mask = inputs.attention_mask.as_ref().ok_or_else(|| {
            Error::input(
                "a batch of long-form audio needs the `attention_mask` of the features \
                 (`return_attention_mask` in the feature extractor)",
            )
        })?;
        let sums: Vec<f32> = mask.to_dtype(DType::F32)?.sum(1)?.to_device(&Device::Cpu)?.to_vec1()?;
        sums.into_iter().map(|s| s as usize).collect()
    } else {
        vec![total_frames; batch]
    };
    // _expand_variables_for_generation
    let nrs = gen.num_return_sequences.unwrap_or(1).max(1);
    let rows = batch * nrs;
    let source: Vec<usize> = (0..batch).flat_map(|b| std::iter::repeat_n(b, nrs)).collect();
    let max_frames: Vec<usize> = source.iter().map(|&b| max_frames[b]).collect();
    let init_tokens: Vec<Vec<u32>> = source.iter().map(|&b| init_tokens[b].clone()).collect();
    gen.num_return_sequences = None;
    let mut seek = vec![0usize; rows];
    // _prepare_segments
    let prompt_first = opts.prompt_ids.as_ref().filter(|_| opts.prompt_condition_type == PromptCondition::FirstSegment);
    let mut segments: Vec<Vec<WhisperSegment>> = match prompt_first {
        Some(p) => {
            let tokens = match (p.first(), config.prev_sot_token_id) {
                (Some(first), Some(prev)) if *first == prev => p[1..].to_vec(),
                _ => p.clone(),
            };
            vec![vec![WhisperSegment { start: 0.0, end: 0.0, tokens }]; rows]
        }
        None => vec![Vec::new(); rows],
    };
    let prev_sot = config
        .prev_sot_token_id
        .or_else(|| config.suppress_tokens.as_ref().filter(|s| s.len() >= 2).map(|s| s[s.len() - 2]));
    let cut_off = config.max_target_positions / 2 - 1;
    // The window loop.
    while (0..rows).any(|i| seek[i] < max_frames[i]) {
        let active: Vec<usize> = (0..rows).filter(|&i| seek[i] < max_frames[i]).collect();
        let mut prompts: Vec<Vec<u32>> = Vec::with_capacity(active.len());
        let condition_now = condition_on_prev && !segments[0].is_empty();
        for &i in &active {
            let mut prompt = Vec::new();
            if condition_now {
                let prev_ids: Option<Vec<u32>> = match (&opts.prompt_ids, opts.prompt_condition_type) {
                    (Some(p), PromptCondition::AllSegments) => Some(p.clone()),
                    _ => prev_sot.map(|t| vec![t]),
                };
                let mut previous: Vec<u32> = Vec::new();
                for s in &segments[i] {
                    let skip_last = s.tokens.len() > 2 && s.tokens[s.tokens.len() - 2] as usize >= timestamp_begin;
                    previous.extend_from_slice(if skip_last { &s.tokens[..s.tokens.len() - 1] } else { &s.tokens });
                }
                if !segments[i].is_empty() {
                    let keep = previous.len().saturating_sub(cut_off);
                    prompt.extend(prev_ids.unwrap_or_default());
                    prompt.extend_from_slice(&previous[keep..]);
                } else if let Some(p) = prev_ids {
                    prompt.extend(p);
                }
            } else if let Some(p) = &opts.prompt_ids {
                prompt.extend_from_slice(p);
            }
            prompt.extend_from_slice(&init_tokens[i]);
            prompts.push(prompt);
        }
        // _set_max_new_tokens_and_length (on the longest prompt; `max_length` grows each window
        // as in transformers, which keeps the value it set).
        let prompt_len = prompts.iter().map(Vec::len).max().unwrap_or(0);
        let max_new = gen.max_new_tokens.unwrap_or(0);
        if max_new + prompt_len > config.max_target_positions {
            return Err(Error::input(format!(
                "the decoder prompt ({prompt_len} tokens: start, prompt and previous tokens) and `max_new_tokens` \
                 ({max_new}) exceed the model's `max_target_positions` ({}): shorten the prompt or lower \
                 `max_new_tokens`",
                config.max_target_positions
            )));
        }
        let num_initial = cut_off.min(prompt_len);
        if gen.max_new_tokens.is_none() {
            let max_length = gen.max_length.unwrap_or(20);
            gen.max_length = Some((max_length + num_initial).min(config.max_target_positions));
        }
        let mut window_gen = gen.clone();
        match opts.temperature.filter(|t| *t > 0.0) {
            Some(t) => {
                window_gen.do_sample = Some(true);
                window_gen.temperature = Some(t);
                window_gen.num_beams = Some(1);
            }
            None => {
                window_gen.do_sample = Some(false);
                window_gen.temperature = Some(1.0);
            }
        }
        // Rows with equally long prompts run together (differently long ones, possible only
        // with `condition_on_prev_tokens`, run apart, as each would alone).
        let mut by_len: Vec<(usize, Vec<usize>)> = Vec::new();
        for (k, p) in prompts.iter().enumerate() {
            match by_len.iter_mut().find(|(len, _)| *len == p.len()) {
                Some((_, ks)) => ks.push(k),
                None => by_len.push((p.len(), vec![k])),
            }
        }
        let mut sequences: Vec<Vec<u32>> = vec![Vec::new(); active.len()];
        for (len, ks) in &by_len {
            let window: Vec<Tensor> = ks
                .iter()
                .map(|&k| {
                    let i = active[k];
                    let snf = (max_frames[i] - seek[i]).min(nsf);
                    segment_input(&features, source[i], seek[i], snf, nsf)
                })
                .collect::<Result<_>>()?;
            let window = Tensor::cat(&window, 0)?.to_device(&device)?.to_dtype(model.dtype())?;
            let encoder = model.encode(&ModelInputs::from_input_features(window))?;
            let group_prompts: Vec<Vec<u32>> = ks.iter().map(|&k| prompts[k].clone()).collect();
            let options = window_processors(config, &gen, *len, return_timestamps, eos);
            let out = generate_seq2seq_from(model, &encoder, &group_prompts, &window_gen, options)?;
            for (j, &k) in ks.iter().enumerate() {
                sequences[k] = out.sequences[j].get(*len..).unwrap_or_default().to_vec();
            }
        }
        for (k, &i) in active.iter().enumerate() {
            let mut seq = std::mem::take(&mut sequences[k]);
            // Strip the filler after EOS, then EOS.
            if let (Some(&last), Some(pad)) = (seq.last(), pad) {
                if last == pad {
                    let mut n = seq.iter().filter(|&&t| t == pad).count();
                    if Some(pad) == eos {
                        n -= 1;
                    }
                    seq.truncate(seq.len() - n);
                }
            }
            if seq.last().is_some() && seq.last().copied() == eos {
                seq.pop();
            }
            let snf = (max_frames[i] - seek[i]).min(nsf);
            let time_offset = seek[i] as f64 * opts.time_precision / INPUT_STRIDE as f64;
            let (new, offset) = retrieve_segments(&seq, time_offset, timestamp_begin, snf, opts);
            seek[i] += offset;
            segments[i].extend(new);
        }
    }
    let drop_prompt = usize::from(prompt_first.is_some());
    Ok(segments
        .into_iter()
        .zip(init_tokens)
        .map(|(segs, init)| {
            let segs: Vec<WhisperSegment> = segs.into_iter().skip(drop_prompt).collect();
            let tokens = segs.iter().flat_map(|s| s.tokens.iter().copied()).collect();
            let language = init.get(1).copied().filter(|t| config.lang_to_id.values().any(|v| v == t));
            WhisperTranscription { tokens, segments: segs, init_tokens: init, language }
        })
        .collect())
}

/// The frames `[seek, seek + snf)` of row `row`, padded with zeros to `nsf` frames: `[1, mel, nsf]`.
fn segment_input(features: &Tensor, row: usize, seek: usize, snf: usize, nsf: usize) -> Result<Tensor> {
    let slice = features.narrow(0, row, 1)?.narrow(2, seek, snf)?;
    if snf < nsf {
        Ok(slice.pad_with_zeros(2, 0, nsf - snf)?)
    } else {
        Ok(slice)
    }
}

/// The Whisper processors of one window (`_retrieve_logit_processors`), for prompts of
/// `begin_index` tokens, in `transformers`' order: begin-suppress, suppress, timestamps.
fn window_processors(
    config: &WhisperGenerationConfig,
    gen: &GenerationConfig,
    begin_index: usize,
    return_timestamps: bool,
    eos: Option<u32>,
) -> GenerateOptions<'static> {
    let mut options = GenerateOptions::new();
    if let Some(tokens) = &config.begin_suppress_tokens {
        options = options.logits_processor(SuppressTokensAtBegin::new(tokens.clone(), begin_index));
    }
    if let Some(tokens) = &config.suppress_tokens {
        options = options.logits_processor(SuppressTokens::new(tokens.clone()));
    }
    if let (true, Some(no_ts)) = (return_timestamps, config.no_timestamps_token_id) {
        let eos = eos.or(gen.bos_token_id).unwrap_or(0);
        options = options.logits_processor(WhisperTimestamps::new(
            no_ts,
            eos,
            begin_index,
            config.max_initial_timestamp_index,
        ));
    }
    options
}

/// The decoder prompt of each row (`_retrieve_init_tokens`): start token, language (given,
/// from legacy `forced_decoder_ids`, or detected), task, `<|notimestamps|>`.
#[allow(clippy::too_many_arguments)]
fn init_tokens(
    model: &dyn ForSpeechSeq2Seq,
    config: &WhisperGenerationConfig,
    opts: &WhisperGenerateOptions,
    features: &Tensor,
    batch: usize,
    nsf: usize,
    start: u32,
    return_timestamps: bool,
    device: &Device,
) -> Result<Vec<Vec<u32>>> {
    let mut init: Vec<Option<u32>> = vec![Some(start)];
    if opts.task.is_none() && opts.language.is_none() && opts.languages.is_none() {
        if let Some(forced) = &config.forced_decoder_ids {
            let mut rest = forced.as_slice();
            if rest.first().is_some_and(|(i, _)| *i == 1) {
                let mut i = 1;
                while let Some(&(_, id)) = rest.first().filter(|(pos, _)| *pos == i) {
                    init.push(id);
                    rest = &rest[1..];
                    i += 1;
                }
                if !rest.is_empty() {
                    return Err(Error::config(
                        "whisper generation",
                        format!(
                            "`forced_decoder_ids` {forced:?} do not follow Whisper's prompt pattern: give an entry for \
                             every index from 1 on"
                        ),
                    ));
                }
            }
        }
    }
    let lang_undefined = init.len() <= 1 || init[1].is_none();
    let lang_ids: Option<Vec<u32>> = match (&opts.languages, &opts.language) {
        (Some(list), _) => {
            if list.len() != batch {
                return Err(Error::input(format!(
                    "{} languages for a batch of {batch}: give one language per row",
                    list.len()
                )));
            }
            Some(list.iter().map(|l| config.language_token_id(l)).collect::<Result<_>>()?)
        }
        (None, Some(l)) => Some(vec![config.language_token_id(l)?; batch]),
        (None, None) if !config.lang_to_id.is_empty() && lang_undefined => {
            Some(detect_language(model, config, features, nsf, start, device)?)
        }
        (None, None) => None,
    };
    let language_given = opts.language.is_some() || opts.languages.is_some();
    let task_ids: Vec<u32> = config.task_to_id.values().copied().collect();
    (0..batch)
        .map(|row| {
            let mut tokens = init.clone();
            if let Some(ids) = &lang_ids {
                if tokens.len() > 1 {
                    tokens[1] = Some(ids[row]);
                } else {
                    tokens.push(Some(ids[row]));
                }
            }
            if let Some(task) = &opts.task {
                tokens.push(Some(config.task_token_id(task)?));
            } else if language_given
                && !config.task_to_id.is_empty()
                && !tokens.iter().any(|t| t.is_some_and(|t| task_ids.contains(&t)))
            {
                tokens.push(Some(config.task_token_id("transcribe")?));
            }
            let last = tokens.last().copied().flatten();
            match config.no_timestamps_token_id {
                Some(nt) if !return_timestamps && last != Some(nt) => tokens.push(Some(nt)),
                Some(nt) if return_timestamps && last == Some(nt) => {
                    tokens.pop();
                }
                _ => {}
            }
            Ok(tokens.into_iter().flatten().collect())
        })
        .collect()
}

/// The language token of each row (`detect_language`): one decoder step from the start token
/// on the first window, the likeliest language token.
pub(crate) fn detect_language(
    model: &dyn ForSpeechSeq2Seq,
    config: &WhisperGenerationConfig,
    features: &Tensor,
    nsf: usize,
    start: u32,
    device: &Device,
) -> Result<Vec<u32>> {
    let (batch, _, frames) = features.dims3()?;
    let first = features.narrow(2, 0, frames.min(nsf))?;
    let first = if frames < nsf { first.pad_with_zeros(2, 0, nsf - frames)? } else { first };
    let encoder = model.encode(&ModelInputs::from_input_features(first.to_device(device)?.to_dtype(model.dtype())?))?;
    let ids = Tensor::from_vec(vec![start; batch], (batch, 1), device)?;
    let mut cache = autocandle_core::Seq2SeqCache::new();
    let logits = model.decode(&ids, &encoder, &mut cache)?;
    let last = logits.narrow(1, logits.dim(1)? - 1, 1)?.squeeze(1)?.to_dtype(DType::F32)?.to_device(&Device::Cpu)?;
    let rows: Vec<Vec<f32>> = last.to_vec2()?;
    let languages: Vec<u32> = config.lang_to_id.values().copied().collect();
    rows.iter()
        .map(|scores| {
            let mut best: Option<(u32, f32)> = None;
            // Ties go to the lowest id, as `argmax` over the masked vocabulary.
            let mut ids: Vec<u32> = languages.iter().copied().filter(|&id| (id as usize) < scores.len()).collect();
            ids.sort_unstable();
            for id in ids {
                let s = scores[id as usize];
                if best.is_none_or(|(_, b)| s > b) {
                    best = Some((id, s));
                }
            }
            best.map(|(id, _)| id).ok_or_else(|| {
                Error::config("whisper generation", "no token of `lang_to_id` is in the model's vocabulary")
            })
        })
        .collect()
}

/// The segments of one window's tokens and how many frames to move on (`_retrieve_segment`).
fn retrieve_segments(
    seq: &[u32],
    time_offset: f64,
    timestamp_begin: usize,
    snf: usize,
    opts: &WhisperGenerateOptions,
) -> (Vec<WhisperSegment>, usize) {
    let tp = opts.time_precision;
    let is_ts: Vec<bool> = seq.iter().map(|&t| t as usize >= timestamp_begin).collect();
    let n = seq.len();
    let single_ending = n >= 2 && !is_ts[n - 2] && is_ts[n - 1];
    let mut slices: Vec<usize> =
        (0..n.saturating_sub(1)).filter(|&i| is_ts[i] && is_ts[i + 1]).map(|i| i + 1).collect();
    let pos = |t: u32| t as i64 - timestamp_begin as i64;
    if !slices.is_empty() {
        if single_ending {
            slices.push(n);
        } else if let Some(last) = slices.last_mut() {
            *last += 1;
        }
        let mut segments = Vec::with_capacity(slices.len());
        let mut last_slice = 0;
        let count = slices.len();
        for (k, &cur) in slices.iter().enumerate() {
            let sliced = &seq[last_slice..cur];
            let is_last = k == count - 1;
            let end_idx = if !is_last || single_ending { sliced.len() - 1 } else { sliced.len().saturating_sub(2) };
            segments.push(WhisperSegment {
                start: time_offset + pos(sliced[0]) as f64 * tp,
                end: time_offset + pos(sliced[end_idx]) as f64 * tp,
                tokens: sliced.to_vec(),
            });
            last_slice = cur;
        }
        let offset = if single_ending {
            snf
        } else {
            let last_ts = pos(seq[last_slice - 2]);
            (last_ts.max(0) as usize) * INPUT_STRIDE
        };
        (segments, offset)
    } else {
        // transformers computes this in f32 (an integer tensor times a float).
        let mut last_ts_pos = ((snf as f32 * opts.time_precision_features as f32) / tp as f32) as i64 as f64;
        if let Some(&t) = seq.iter().rev().find(|&&t| t as usize >= timestamp_begin) {
            if t as usize != timestamp_begin {
                last_ts_pos = pos(t) as f64;
            }
        }
        let segment = WhisperSegment { start: time_offset, end: time_offset + last_ts_pos * tp, tokens: seq.to_vec() };
        (vec![segment], snf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_from_timestamps() {
        let opts = WhisperGenerateOptions::default();
        // timestamp_begin 10: <|0.00|> = 10. Pair-ended: two segments, seek to the last pair.
        let (segs, offset) = retrieve_segments(&[10, 1, 13, 13, 2, 15, 15], 1.0, 10, 60, &opts);
        assert_eq!(segs.len(), 2);
        assert_eq!((segs[0].start, segs[0].end), (1.0, 1.0 + 3.0 * 0.02));
        assert_eq!(segs[1].tokens, [13, 2, 15, 15]);
        assert_eq!(offset, 5 * INPUT_STRIDE);
        // Single timestamp ending: the whole window.
        let (segs, offset) = retrieve_segments(&[10, 1, 13, 13, 2, 15], 0.0, 10, 60, &opts);
        assert_eq!((segs.len(), offset), (2, 60));
        // No timestamps: one segment over the window, its end computed in f32 as transformers
        // does: int(60 * 0.01 / 0.02) is 29 there (and int(3000 * 0.01 / 0.02) 1500).
        let (segs, offset) = retrieve_segments(&[1, 2], 0.0, 10, 60, &opts);
        assert_eq!((segs[0].end, offset), (29.0 * 0.02, 60));
        let (segs, _) = retrieve_segments(&[1, 2], 0.0, 10, 3000, &opts);
        assert_eq!(segs[0].end, 1500.0 * 0.02);
    }
}
