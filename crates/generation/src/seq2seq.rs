//! Generation for encoder-decoder models ([`ForSeq2SeqLm`]): the encoder runs once, then the
//! decoder a token at a time on a [`Seq2SeqCache`], from the decoder start token. Greedy
//! decoding and sampling follow `transformers`' `_sample`; beam search follows its vectorised
//! `_beam_search` (top `2 * num_beams` continuations, length penalty, `early_stopping`
//! `true` / `false` / `"never"`).

use candle_core::{DType, Device, Tensor};

use autocandle_core::cache::Seq2SeqCache;
use autocandle_core::{EncoderOutput, ForSeq2SeqLm, ModelInputs};
use autocandle_core::{Error, Result};

use super::config::{defaults, EarlyStopping, GenerationConfig};
use super::generator::{log_generation, FinishReason, GenerateOptions, GenerateOutput};
use super::logits::{apply_processors, forced_for, penalties_for, warpers_for, LogitsProcessor, PromptInfo};
use super::sampling::TokenSelector;
use super::stopping::{StopStringCriteria, StoppingCriteria};

/// The score that marks an impossible beam (`transformers`' `-1e9`).
const IMPOSSIBLE: f32 = -1.0e9;

/// Generate the decoder output of each input row of `inputs` (`input_ids`, optionally
/// `attention_mask`). Each returned row starts with the decoder start token
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
    let beams = config.num_beams.unwrap_or(1);
    let returned = config.num_return_sequences.unwrap_or(1);
    if beams > 1 && config.sampling() {
        return Err(Error::Unsupported(
            "beam search with sampling (`num_beams` > 1 and `do_sample`): use one or the other".to_owned(),
        ));
    }
    if beams == 1 && returned > 1 {
        return Err(Error::Unsupported(format!(
            "`num_return_sequences` = {returned} without beams; use beam search (`num_beams` >= {returned})"
        )));
    }
    let input_ids = inputs.input_ids()?;
    let (batch, source_len) = input_ids
        .dims2()
        .map_err(|_| Error::input(format!("`input_ids` must be [batch, seq], got shape {:?}", input_ids.dims())))?;
    if batch == 0 || source_len == 0 {
        return Err(Error::input("the encoder input holds no tokens: give at least one token per row"));
    }
    if let Some(max) = model.max_source_positions().filter(|max| source_len > *max) {
        return Err(Error::SequenceTooLong { len: source_len, max });
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
    let max_length = match (config.max_new_tokens, config.max_length) {
        (Some(n), _) => 1 + n,
        (None, Some(max)) => max,
        (None, None) => defaults::MAX_LENGTH,
    };
    if max_length <= 1 {
        return Err(Error::input(format!(
            "`max_length` is {max_length}: the decoder start token leaves nothing to generate; set `max_new_tokens`"
        )));
    }
    if let Some(max) = model.max_target_positions().filter(|max| max_length > *max) {
        return Err(Error::SequenceTooLong { len: max_length, max });
    }
    let eos = config.eos_token_id.clone().unwrap_or_default();
    let min_length = match config.min_new_tokens {
        Some(n) => 1 + n,
        None => config.min_length.unwrap_or(0),
    };
    let rows = batch * beams;
    let info = PromptInfo { prompt_len: 1, padding: vec![0; rows], eos_token_ids: eos.clone(), min_length };
    let mut processors: Vec<Box<dyn LogitsProcessor + '_>> = Vec::new();
    processors.extend(penalties_for(config, &info)?.into_iter().map(|p| p as Box<dyn LogitsProcessor>));
    processors.extend(forced_for(config, max_length).into_iter().map(|p| p as Box<dyn LogitsProcessor>));
    processors.extend(options.logits_processors);
    processors.extend(warpers_for(config)?.into_iter().map(|p| p as Box<dyn LogitsProcessor>));
    let stop_strings = config.stop_strings.clone().unwrap_or_default();
    let mut criteria: Vec<Box<dyn StoppingCriteria + '_>> = Vec::new();
    match (stop_strings.is_empty(), options.decoder) {
        (true, _) => {}
        (false, Some(decoder)) => criteria.push(Box::new(StopStringCriteria::new(decoder, stop_strings))),
        (false, None) => {
            return Err(Error::input(
                "`stop_strings` need a tokenizer to decode the generated tokens: generate through the \
                 tokenizer-aware methods or give `GenerateOptions::decoder`",
            ))
        }
    }
    criteria.extend(options.stopping_criteria);

    let encoder = model.encode(inputs)?;
    let run = Run {
        model,
        device: model.device().clone(),
        encoder: expand(&encoder, beams)?,
        cache: Seq2SeqCache::new(),
        processors,
        criteria,
        eos,
        max_length,
    };
    let output = if beams == 1 {
        let pad = config.pad_token_id.or_else(|| run.eos.first().copied());
        let selector =
            if config.sampling() { TokenSelector::sampling(rows, config.seed) } else { TokenSelector::Greedy };
        run.sample(batch, start, pad, selector)
    } else {
        let beam = BeamSettings {
            num_beams: beams,
            length_penalty: config.length_penalty.unwrap_or(defaults::LENGTH_PENALTY),
            early_stopping: config.early_stopping.unwrap_or(EarlyStopping::Flag(false)),
            returned,
            // `pad_token_id or eos_token_id[0]`: a pad id of 0 counts as unset there.
            fill: config.pad_token_id.filter(|p| *p != 0).or_else(|| run.eos.first().copied()).unwrap_or(0),
        };
        run.beam_search(batch, start, &beam)
    }?;
    log_generation("seq2seq", batch * source_len, &output, started);
    Ok(output)
}

/// The encoder output with each row repeated `times` times in a row (`repeat_interleave`).
fn expand(encoder: &EncoderOutput, times: usize) -> Result<EncoderOutput> {
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

/// Beam search settings.
#[derive(Debug)]
struct BeamSettings {
    num_beams: usize,
    length_penalty: f64,
    early_stopping: EarlyStopping,
    returned: usize,
    /// The token after the end of a finished hypothesis (a non-zero pad, else the first EOS;
    /// without EOS every hypothesis has the same length and nothing is filled).
    fill: u32,
}

/// One generation: the model, its encoder output and decoder cache, and the step rules.
struct Run<'a, 'p, M: ForSeq2SeqLm + ?Sized> {
    model: &'a M,
    device: Device,
    encoder: EncoderOutput,
    cache: Seq2SeqCache,
    processors: Vec<Box<dyn LogitsProcessor + 'p>>,
    criteria: Vec<Box<dyn StoppingCriteria + 'p>>,
    eos: Vec<u32>,
    max_length: usize,
}

impl<M: ForSeq2SeqLm + ?Sized> Run<'_, '_, M> {
    /// Decode the newest token of each row; the next-token logits of each row as f32.
    fn step(&mut self, last: &[u32]) -> Result<Vec<Vec<f32>>> {
        let ids = Tensor::from_vec(last.to_vec(), (last.len(), 1), &self.device)?;
        let logits = self.model.decode(&ids, &self.encoder, &mut self.cache)?;
        let (b, s, _) = logits.dims3().map_err(|_| {
            Error::input(format!(
                "the decoder returned logits of shape {:?}, expected [batch, seq, vocab]",
                logits.dims()
            ))
        })?;
        if b != last.len() || s == 0 {
            return Err(Error::input(format!(
                "the decoder returned logits of shape {:?} for {} rows",
                logits.dims(),
                last.len()
            )));
        }
        let last = logits.narrow(1, s - 1, 1)?.squeeze(1)?.to_dtype(DType::F32)?.to_device(&Device::Cpu)?;
        Ok(last.to_vec2()?)
    }

    /// Whether a stopping criterion (stop strings, custom) matches `row` given its tokens.
    fn criteria_match(&mut self, row: usize, ids: &[u32]) -> Result<bool> {
        for c in &mut self.criteria {
            if c.is_done(row, ids)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Greedy decoding or sampling (`_sample`).
    fn sample(
        mut self,
        rows: usize,
        start: u32,
        pad: Option<u32>,
        mut selector: TokenSelector,
    ) -> Result<GenerateOutput> {
        let pad_fill = if self.eos.is_empty() { None } else { pad };
        let mut sequences = vec![vec![start]; rows];
        let mut finish: Vec<Option<FinishReason>> = vec![None; rows];
        let mut generated = vec![0; rows];
        while finish.iter().any(Option::is_none) {
            let last: Vec<u32> = sequences.iter().map(|s| s[s.len() - 1]).collect();
            let logits = self.step(&last)?;
            for (row, mut scores) in logits.into_iter().enumerate() {
                let token = match (finish[row].is_none(), pad_fill) {
                    (false, Some(pad)) => pad,
                    _ => {
                        apply_processors(&mut self.processors, row, &sequences[row], &mut scores)?;
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
                finish[row] = if self.eos.contains(&token) {
                    Some(FinishReason::Eos)
                } else if self.criteria_match(row, &sequences[row].clone())? {
                    Some(FinishReason::Stop)
                } else if len >= self.max_length {
                    Some(FinishReason::Length)
                } else {
                    None
                };
            }
        }
        Ok(GenerateOutput {
            sequences,
            prompt_len: 1,
            num_generated: generated,
            finish_reasons: finish.into_iter().map(|f| f.unwrap_or(FinishReason::Cancelled)).collect(),
        })
    }

    /// Beam search (`_beam_search`), greedy selection of the continuations.
    fn beam_search(mut self, batch: usize, start: u32, s: &BeamSettings) -> Result<GenerateOutput> {
        let nb = s.num_beams;
        let keep = 2.max(1 + self.eos.len()) * nb;
        let prompt_len = 1;
        let mut cur_len = prompt_len;
        let mut running: Vec<Hypothesis> =
            (0..batch * nb).map(|_| Hypothesis { tokens: vec![start], score: 0.0 }).collect();
        for b in 0..batch {
            for j in 1..nb {
                running[b * nb + j].score = IMPOSSIBLE;
            }
        }
        let mut finished: Vec<Vec<Finished>> = vec![vec![Finished::empty(); nb]; batch];
        let mut improvable = vec![true; batch];
        loop {
            let last: Vec<u32> = running.iter().map(|h| h.tokens[h.tokens.len() - 1]).collect();
            let logits = self.step(&last)?;
            let mut log_probs = Vec::with_capacity(logits.len());
            for (row, scores) in logits.into_iter().enumerate() {
                let mut lp = log_softmax(&scores);
                apply_processors(&mut self.processors, row, &running[row].tokens, &mut lp)?;
                log_probs.push(lp);
            }
            let vocab = log_probs.first().map_or(0, Vec::len);
            let mut next_running = Vec::with_capacity(batch * nb);
            let mut reorder = Vec::with_capacity(batch * nb);
            let mut all_hit = true;
            for b in 0..batch {
                // c. The top `keep` continuations over all beams of this input.
                let mut candidates: Vec<(f32, usize)> = Vec::with_capacity(nb * vocab);
                for j in 0..nb {
                    let h = &running[b * nb + j];
                    for (v, &lp) in log_probs[b * nb + j].iter().enumerate() {
                        candidates.push((lp + h.score, j * vocab + v));
                    }
                }
                let top = top_k(&candidates, keep);
                // d. Which continuations finish here.
                let mut conts = Vec::with_capacity(keep);
                for &(score, index) in &top {
                    let (j, token) = (index / vocab, (index % vocab) as u32);
                    let mut tokens = running[b * nb + j].tokens.clone();
                    tokens.push(token);
                    let row = b * nb + j;
                    let hits = self.eos.contains(&token)
                        || tokens.len() >= self.max_length
                        || self.criteria_match(row, &tokens)?;
                    conts.push(Continuation { score, source: row, tokens, hits });
                }
                all_hit &= conts.iter().all(|c| c.hits);
                // e. The best `nb` continuations that go on.
                let running_scores: Vec<(f32, usize)> = conts
                    .iter()
                    .enumerate()
                    .map(|(k, c)| (c.score + if c.hits { IMPOSSIBLE } else { 0.0 }, k))
                    .collect();
                for (score, k) in top_k(&running_scores, nb) {
                    next_running.push(Hypothesis { tokens: conts[k].tokens.clone(), score });
                    reorder.push(conts[k].source as u32);
                }
                // f. Finished hypotheses among the top `nb` continuations.
                let penalty = length_factor(cur_len + 1 - prompt_len, s.length_penalty);
                let full = finished[b].iter().all(|f| f.done) && s.early_stopping == EarlyStopping::Flag(true);
                let mut merged: Vec<(f32, Finished)> = finished[b].iter().map(|f| (f.score, f.clone())).collect();
                for (k, c) in conts.iter().enumerate() {
                    let just_finished = c.hits && k < nb;
                    let mut score = c.score / penalty;
                    score += if full { IMPOSSIBLE } else { 0.0 };
                    score += if improvable[b] { 0.0 } else { IMPOSSIBLE };
                    score += if just_finished { 0.0 } else { IMPOSSIBLE };
                    merged.push((score, Finished { tokens: c.tokens.clone(), score, done: just_finished }));
                }
                let scores: Vec<(f32, usize)> = merged.iter().enumerate().map(|(i, (sc, _))| (*sc, i)).collect();
                finished[b] = top_k(&scores, nb).into_iter().map(|(_, i)| merged[i].1.clone()).collect();
            }
            self.cache.select_rows(&Tensor::new(reorder, &self.device)?)?;
            running = next_running;
            cur_len += 1;
            // The early stopping heuristic and the stop condition.
            let mut improvement_possible = false;
            let mut open_beam = false;
            for b in 0..batch {
                let hypothetical = match s.early_stopping {
                    EarlyStopping::Never(_) if s.length_penalty > 0.0 => self.max_length - prompt_len,
                    _ => cur_len - prompt_len,
                };
                let best_running = running[b * nb].score / length_factor(hypothetical, s.length_penalty);
                let all_done = finished[b].iter().all(|f| f.done);
                let worst_finished = if all_done {
                    finished[b].iter().map(|f| f.score).fold(f32::INFINITY, f32::min)
                } else {
                    IMPOSSIBLE
                };
                improvable[b] = improvable[b] && best_running > worst_finished;
                improvement_possible |= improvable[b];
                open_beam |= !(all_done && s.early_stopping == EarlyStopping::Flag(true));
            }
            if !(improvement_possible && open_beam && !all_hit) {
                break;
            }
        }
        // Output: the best `returned` hypotheses of each input, cut to the longest one.
        let chosen: Vec<&Finished> = finished.iter().flat_map(|f| f.iter().take(s.returned)).collect();
        let width = chosen.iter().map(|f| f.tokens.len()).max().unwrap_or(prompt_len);
        let mut out = GenerateOutput {
            sequences: Vec::with_capacity(chosen.len()),
            prompt_len,
            num_generated: Vec::with_capacity(chosen.len()),
            finish_reasons: Vec::with_capacity(chosen.len()),
        };
        for f in chosen {
            let mut seq = f.tokens.clone();
            let ends_with_eos = seq.last().is_some_and(|t| self.eos.contains(t)) && seq.len() > prompt_len;
            out.num_generated.push(seq.len() - prompt_len);
            out.finish_reasons.push(if ends_with_eos { FinishReason::Eos } else { FinishReason::Length });
            seq.resize(width, s.fill);
            out.sequences.push(seq);
        }
        Ok(out)
    }
}

/// A running beam: its tokens and accumulated log-probability.
#[derive(Debug, Clone)]
struct Hypothesis {
    tokens: Vec<u32>,
    score: f32,
}

/// A candidate continuation of one step.
#[derive(Debug)]
struct Continuation {
    score: f32,
    /// The flat row (input * beams + beam) it continues.
    source: usize,
    tokens: Vec<u32>,
    /// Whether it ends here (EOS, length, a stopping criterion).
    hits: bool,
}

/// A slot of the finished hypotheses of one input.
#[derive(Debug, Clone)]
struct Finished {
    tokens: Vec<u32>,
    /// Length-penalised score.
    score: f32,
    /// Whether the slot holds a real finished hypothesis.
    done: bool,
}

impl Finished {
    fn empty() -> Self {
        Self { tokens: Vec::new(), score: IMPOSSIBLE, done: false }
    }
}

/// The `k` largest `(score, index)` pairs, largest first; equal scores keep the lower index
/// first (as `torch.topk` on CPU does for the sizes here).
fn top_k(items: &[(f32, usize)], k: usize) -> Vec<(f32, usize)> {
    let mut sorted = items.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    sorted.truncate(k);
    sorted
}

/// `length ** length_penalty`, computed in f64 (Python floats) and applied to f32 scores.
fn length_factor(length: usize, length_penalty: f64) -> f32 {
    (length as f64).powf(length_penalty) as f32
}

/// `log_softmax(scores)` in f32, as `torch.nn.functional.log_softmax` on float32 logits.
fn log_softmax(scores: &[f32]) -> Vec<f32> {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return vec![f32::NEG_INFINITY; scores.len()];
    }
    let sum: f32 = scores.iter().map(|&s| (s - max).exp()).sum();
    let log_sum = sum.ln();
    scores.iter().map(|&s| s - max - log_sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use autocandle_core::{PreTrainedModel, Seq2SeqLmOutput};

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
        assert!(err.to_string().contains("no tokens"), "{err}");
    }

    #[test]
    fn top_k_orders_by_score_then_index() {
        let items = [(1.0, 0), (3.0, 1), (3.0, 2), (-1.0, 3)];
        assert_eq!(top_k(&items, 3), vec![(3.0, 1), (3.0, 2), (1.0, 0)]);
    }

    #[test]
    fn log_softmax_sums_to_one() {
        let lp = log_softmax(&[1.0, 2.0, 3.0]);
        let total: f32 = lp.iter().map(|l| l.exp()).sum();
        assert!((total - 1.0).abs() < 1e-6);
        assert!(lp.iter().all(|l| *l <= 0.0));
    }
}
