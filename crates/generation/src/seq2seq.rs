//! Generation for encoder-decoder models ([`ForSeq2SeqLm`]): the encoder runs once, then the
//! decoder a token at a time on a [`Seq2SeqCache`], from the decoder start token. Greedy
//! decoding and sampling follow `transformers`' `_sample`; beam search follows its vectorised
//! `_beam_search` (top `2 * num_beams` continuations, length penalty, `early_stopping`
//! `true` / `false` / `"never"`).

use candle_core::{Device, Tensor};

use autocandle_core::cache::Seq2SeqCache;
use autocandle_core::{EncoderOutput, ForSeq2SeqLm, ModelInputs};
use autocandle_core::{Error, Result};

use super::beam::{beam_search, BeamModel, BeamSettings};
use super::config::{defaults, limits, GenerationConfig};
use super::generator::{last_logits, log_generation, FinishReason, GenerateOptions, GenerateOutput};
use super::logits::{apply_processors, PromptInfo};
use super::rules::StepRules;
use super::sampling::TokenSelector;

/// Generate the decoder output of each input row of `inputs` (`input_ids`, optionally
/// `attention_mask`; or `input_features` for a speech model), from the decoder start token
/// (see [`generate_seq2seq_from`] for other decoder prompts). Each returned row starts with the decoder start token
/// ([`GenerateOutput::prompt_len`] is 1); with `num_return_sequences` > 1, the rows of one
/// input follow each other.
pub fn generate_seq2seq<M: ForSeq2SeqLm + ?Sized>(
    model: &M,
    inputs: &ModelInputs,
    config: &GenerationConfig,
    options: GenerateOptions<'_>,
) -> Result<GenerateOutput> {
    let started = std::time::Instant::now();
    config.validate()?;
    // Settings errors before the encoder runs.
    BeamSettings::from_config(config, &config.eos_token_id.clone().unwrap_or_default())?;
    // The encoder reads token ids (T5, BART) or, for speech models, `input_features`
    // `[batch, feature_size, frames]` (Whisper), whose length the model's encoder checks.
    let (batch, source_len) = match (&inputs.input_ids, &inputs.input_features) {
        (None, Some(features)) => {
            let dims = features.dims();
            let &[batch, _, frames] = dims else {
                return Err(Error::input(format!(
                    "`input_features` must be [batch, feature_size, frames], got shape {dims:?}"
                )));
            };
            (batch, frames)
        }
        _ => {
            let input_ids = inputs.input_ids()?;
            let (batch, source_len) = input_ids.dims2().map_err(|_| {
                Error::input(format!("`input_ids` must be [batch, seq], got shape {:?}", input_ids.dims()))
            })?;
            if let Some(max) = model.max_source_positions().filter(|max| source_len > *max) {
                return Err(Error::SequenceTooLong { len: source_len, max });
            }
            (batch, source_len)
        }
    };
    if batch == 0 || source_len == 0 {
        return Err(Error::input("the encoder input has no tokens (or frames): give at least one per row"));
    }
    let start =
        config.decoder_start_token_id.or_else(|| model.decoder_start_token_id()).or(config.bos_token_id).ok_or_else(
            || {
                Error::config(
                    "generation",
                    "no `decoder_start_token_id`: set it in the generation config (or the model config has none)",
                )
            },
        )?;
    let encoder = model.encode(inputs)?;
    let output = generate_seq2seq_from(model, &encoder, &vec![vec![start]; batch], config, options)?;
    log_generation("seq2seq", batch * source_len, &output, started);
    Ok(output)
}

/// Generate from an encoder output already computed (`encoder_outputs=`) and a decoder prompt
/// per input row (`decoder_input_ids=`, all rows equally long, at least one token each: the
/// decoder start token, then for Whisper its language, task and timestamp tokens or a previous
/// context). The prompt runs through the decoder in one call, then one token per step, as in
/// [`generate_seq2seq`]. `max_new_tokens` counts after the prompt, `max_length` includes it.
/// Each returned row starts with its prompt ([`GenerateOutput::prompt_len`] is its length).
pub fn generate_seq2seq_from<M: ForSeq2SeqLm + ?Sized>(
    model: &M,
    encoder: &EncoderOutput,
    decoder_prompts: &[Vec<u32>],
    config: &GenerationConfig,
    options: GenerateOptions<'_>,
) -> Result<GenerateOutput> {
    config.validate()?;
    let batch = decoder_prompts.len();
    let prompt_len = decoder_prompts.first().map_or(0, Vec::len);
    if batch == 0 || prompt_len == 0 || decoder_prompts.iter().any(|p| p.len() != prompt_len) {
        return Err(Error::input(
            "the decoder prompts must be equally long, with at least one token (the decoder start token) each",
        ));
    }
    let encoder_rows = encoder.last_hidden_state.dim(0)?;
    if encoder_rows != batch {
        return Err(Error::input(format!(
            "the encoder output has {encoder_rows} rows for {batch} decoder prompts: give one prompt per input"
        )));
    }
    let eos = config.eos_token_id.clone().unwrap_or_default();
    let beam = BeamSettings::from_config(config, &eos)?;
    // Each input runs `num_beams` rows, or `num_return_sequences` samples (`expand_size`).
    let expand = beam.as_ref().map_or(config.num_return_sequences.unwrap_or(1), |b| b.num_beams);
    let max_length = match (config.max_new_tokens, config.max_length) {
        (Some(n), _) => prompt_len + n,
        (None, Some(max)) => max,
        (None, None) => defaults::MAX_LENGTH,
    };
    if max_length <= prompt_len {
        return Err(Error::input(format!(
            "`max_length` is {max_length}: the decoder prompt of {prompt_len} token(s) leaves nothing to generate; \
             set `max_new_tokens`"
        )));
    }
    match model.max_target_positions() {
        Some(max) if max_length > max => return Err(Error::SequenceTooLong { len: max_length, max }),
        None if max_length > limits::MAX_UNBOUNDED_TARGET => {
            return Err(Error::input(format!(
                "`max_length` {max_length} (prompt and new tokens): this model has no limit on its decoder \
                 positions, and generation stops at {} tokens so that a model that never ends its output cannot run \
                 for days; set `max_new_tokens` lower",
                limits::MAX_UNBOUNDED_TARGET
            )))
        }
        _ => {}
    }
    let min_length = match config.min_new_tokens {
        Some(n) => prompt_len + n,
        None => config.min_length.unwrap_or(0),
    };
    let rows = batch * expand;
    let info = PromptInfo { prompt_len, padding: vec![0; rows], eos_token_ids: eos, min_length };
    let mut rules = StepRules::new(config, &info, max_length, options)?;
    let mut decoder = Decoder {
        model,
        device: model.device().clone(),
        encoder: expand_rows(encoder, expand)?,
        cache: Seq2SeqCache::new(),
    };
    match beam {
        None => {
            let pad = config.pad_token_id.or_else(|| rules.eos.first().copied());
            let selector =
                if config.sampling() { TokenSelector::sampling(rows, config.seed) } else { TokenSelector::Greedy };
            let prompts: Vec<Vec<u32>> =
                decoder_prompts.iter().flat_map(|p| std::iter::repeat_n(p.clone(), expand)).collect();
            sample(&mut decoder, &mut rules, prompts, pad, selector)
        }
        Some(beam) => beam_search(&mut decoder, &mut rules, decoder_prompts, &vec![0; batch], &beam),
    }
}

/// The encoder output with each row repeated `times` times in a row (`repeat_interleave`).
fn expand_rows(encoder: &EncoderOutput, times: usize) -> Result<EncoderOutput> {
    if times == 1 {
        return Ok(encoder.clone());
    }
    let batch = encoder.last_hidden_state.dim(0)?;
    let index: Vec<u32> = (0..batch as u32).flat_map(|b| std::iter::repeat_n(b, times)).collect();
    let index = Tensor::new(index, encoder.last_hidden_state.device())?;
    Ok(EncoderOutput {
        last_hidden_state: encoder.last_hidden_state.index_select(&index, 0)?,
        attention_mask: encoder
            .attention_mask
            .as_ref()
            .map(|m| m.to_device(encoder.last_hidden_state.device())?.index_select(&index, 0))
            .transpose()?,
    })
}

/// The decoder of one generation: the model, its encoder output and its cache.
struct Decoder<'a, M: ForSeq2SeqLm + ?Sized> {
    model: &'a M,
    device: Device,
    encoder: EncoderOutput,
    cache: Seq2SeqCache,
}

impl<M: ForSeq2SeqLm + ?Sized> BeamModel for Decoder<'_, M> {
    /// Decode the newest token of each row (the cache holds the others); the first call
    /// decodes the whole (equally long) decoder prompts.
    fn next_logits(&mut self, rows: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        let width = if self.cache.seq_len() == 0 { rows.first().map_or(1, |r| r.len()) } else { 1 };
        let mut last = Vec::with_capacity(rows.len() * width);
        for r in rows {
            let tail = r.get(r.len().saturating_sub(width)..).unwrap_or_default();
            if tail.len() != width {
                return Err(Error::input("the decoder prompts must be equally long"));
            }
            last.extend_from_slice(tail);
        }
        let ids = Tensor::from_vec(last, (rows.len(), width), &self.device)?;
        let logits = self.model.decode(&ids, &self.encoder, &mut self.cache)?;
        last_logits(&logits, rows.len(), "decoder")
    }

    fn reorder(&mut self, sources: &[u32]) -> Result<()> {
        self.cache.select_rows(&Tensor::new(sources, &self.device)?)
    }
}

/// Greedy decoding or sampling (`_sample`) from the decoder prompt of each row.
fn sample<M: ForSeq2SeqLm + ?Sized>(
    decoder: &mut Decoder<'_, M>,
    rules: &mut StepRules<'_>,
    mut sequences: Vec<Vec<u32>>,
    pad: Option<u32>,
    mut selector: TokenSelector,
) -> Result<GenerateOutput> {
    let rows = sequences.len();
    let prompt_len = sequences.first().map_or(0, Vec::len);
    let pad_fill = if rules.eos.is_empty() { None } else { pad };
    let mut finish: Vec<Option<FinishReason>> = vec![None; rows];
    let mut generated = vec![0; rows];
    while finish.iter().any(Option::is_none) {
        let logits = decoder.next_logits(&sequences.iter().map(Vec::as_slice).collect::<Vec<_>>())?;
        for (row, mut scores) in logits.into_iter().enumerate() {
            let token = match (finish[row].is_none(), pad_fill) {
                (false, Some(pad)) => pad,
                _ => {
                    apply_processors(&mut rules.processors, row, &sequences[row], &mut scores)?;
                    selector.select(row, &scores)?
                }
            };
            sequences[row].push(token);
        }
        let len = sequences[0].len();
        for row in 0..rows {
            if finish[row].is_some() {
                continue;
            }
            generated[row] += 1;
            let token = sequences[row][len - 1];
            finish[row] = if rules.eos.contains(&token) {
                Some(FinishReason::Eos)
            } else if rules.criteria_match(row, &sequences[row])? {
                Some(FinishReason::Stop)
            } else if len >= rules.max_length {
                Some(FinishReason::Length)
            } else {
                None
            };
        }
    }
    Ok(GenerateOutput {
        sequences,
        prompt_len,
        num_generated: generated,
        finish_reasons: finish.into_iter().map(|f| f.unwrap_or(FinishReason::Cancelled)).collect(),
        sequences_scores: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use autocandle_core::{PreTrainedModel, Seq2SeqLmOutput};
    use candle_core::DType;

    /// A decoder whose next-token distribution depends only on the last token:
    /// after 0 (start): 1 0.5, 2 0.4, 3 0.1; after 1: nearly flat with 3 first; after 2: 3 0.9;
    /// after 3: 3. Greedy takes 0 1 3 (p 0.17); beam search finds 0 2 3 (p 0.36).
    #[derive(Debug)]
    struct Toy;

    const TABLE: [[f32; 4]; 4] =
        [[0.0, 0.5, 0.4, 0.1], [0.01, 0.32, 0.32, 0.35], [0.03, 0.03, 0.04, 0.9], [0.01, 0.01, 0.01, 0.97]];

    impl PreTrainedModel for Toy {
        fn device(&self) -> &Device {
            &Device::Cpu
        }
        fn dtype(&self) -> DType {
            DType::F32
        }
    }

    impl ForSeq2SeqLm for Toy {
        fn forward(&self, _inputs: &ModelInputs) -> Result<Seq2SeqLmOutput> {
            Err(Error::Unsupported("toy".into()))
        }
        fn encode(&self, inputs: &ModelInputs) -> Result<EncoderOutput> {
            let batch = inputs.input_ids()?.dim(0)?;
            Ok(EncoderOutput {
                last_hidden_state: Tensor::zeros((batch, 1, 1), DType::F32, &Device::Cpu)?,
                attention_mask: None,
            })
        }
        fn decode(&self, ids: &Tensor, encoder: &EncoderOutput, cache: &mut Seq2SeqCache) -> Result<Tensor> {
            assert_eq!(encoder.last_hidden_state.dim(0)?, ids.dim(0)?);
            let rows: Vec<Vec<u32>> = ids.to_vec2()?;
            let logits: Vec<f32> = rows.iter().flat_map(|r| TABLE[r[0] as usize].map(f32::ln)).collect();
            let marker = Tensor::zeros((rows.len(), 1, 1, 1), DType::F32, &Device::Cpu)?;
            cache.self_attention.append(0, &marker, &marker)?;
            Ok(Tensor::from_vec(logits, (rows.len(), 1, 4), &Device::Cpu)?)
        }
        fn decoder_start_token_id(&self) -> Option<u32> {
            Some(0)
        }
    }

    fn run(config: &GenerationConfig, batch: usize) -> Result<GenerateOutput> {
        let inputs = ModelInputs::new(Tensor::ones((batch, 3), DType::U32, &Device::Cpu)?);
        generate_seq2seq(&Toy, &inputs, config, GenerateOptions::new())
    }

    #[test]
    fn greedy_and_beam_search_on_a_known_distribution() {
        let greedy = GenerationConfig::new().max_new_tokens(2);
        assert_eq!(run(&greedy, 1).unwrap().sequences, [[0, 1, 3]]);
        let beams = greedy.clone().num_beams(2);
        assert_eq!(run(&beams, 2).unwrap().sequences, [[0, 2, 3], [0, 2, 3]]);
        // With EOS = 3 the beams finish early; two returned sequences, best first.
        let out = run(&beams.clone().eos_token_id(3).max_new_tokens(5).num_return_sequences(2), 1).unwrap();
        assert_eq!(out.sequences, [vec![0, 2, 3], vec![0, 1, 3]]);
        assert_eq!(out.finish_reasons, [FinishReason::Eos, FinishReason::Eos]);
        // Greedy with EOS: finished rows stop at EOS.
        let out = run(&GenerationConfig::new().max_new_tokens(5).eos_token_id(3), 1).unwrap();
        assert_eq!((out.sequences[0].clone(), out.num_generated[0]), (vec![0, 1, 3], 2));
    }

    #[test]
    fn forced_tokens() {
        let config = GenerationConfig::new().max_new_tokens(3).forced_bos_token_id(2).forced_eos_token_ids([1]);
        assert_eq!(run(&config, 1).unwrap().sequences, [[0, 2, 3, 1]]);
    }

    #[test]
    fn errors() {
        let sampling_beams = GenerationConfig::new().num_beams(2).do_sample(true);
        assert!(matches!(run(&sampling_beams, 1), Err(Error::Unsupported(_))));
        let too_many = GenerationConfig::new().num_beams(2).num_return_sequences(3);
        assert!(run(&too_many, 1).unwrap_err().to_string().contains("num_return_sequences"));
        let empty = ModelInputs::new(Tensor::zeros((1, 0), DType::U32, &Device::Cpu).unwrap());
        let err = generate_seq2seq(&Toy, &empty, &GenerationConfig::new(), GenerateOptions::new()).unwrap_err();
        assert!(err.to_string().contains("has no tokens"), "{err}");
    }
}
