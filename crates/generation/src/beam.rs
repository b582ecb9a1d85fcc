//! Beam search, after `transformers`' vectorised `_beam_search`: the top `2 * num_beams`
//! continuations over all beams of an input, finished hypotheses scored with the length
//! penalty over the generated length, `early_stopping` `true` / `false` / `"never"`. Shared by
//! causal language models ([`crate::generate`]) and encoder-decoders ([`crate::generate_seq2seq`]):
//! each gives a [`BeamModel`] that returns next-token logits and follows the beams in its cache.

use autocandle_core::{Error, Result};

use super::config::{defaults, EarlyStopping, GenerationConfig};
use super::generator::{FinishReason, GenerateOutput};
use super::logits::apply_processors;
use super::rules::StepRules;

/// The score that marks an impossible beam (`transformers`' `-1e9`).
const IMPOSSIBLE: f32 = -1.0e9;

/// A model under beam search: rows are `input * num_beams + beam`.
pub(crate) trait BeamModel {
    /// The next-token logits (f32) of each row, given each row's tokens so far.
    fn next_logits(&mut self, rows: &[&[u32]]) -> Result<Vec<Vec<f32>>>;
    /// Follow the beams: row `i` of the next step continues row `sources[i]` of this one.
    fn reorder(&mut self, sources: &[u32]) -> Result<()>;
}

/// Beam search settings.
#[derive(Debug, Clone)]
pub(crate) struct BeamSettings {
    pub num_beams: usize,
    pub length_penalty: f64,
    pub early_stopping: EarlyStopping,
    /// Sequences returned per input.
    pub returned: usize,
    /// The token after the end of a finished hypothesis that is shorter than the longest
    /// (`pad_token_id or eos_token_id[0]`: a pad id of 0 counts as unset there).
    pub fill: u32,
}

impl BeamSettings {
    /// The settings of `config`, `None` when it asks for no beam search (`num_beams` 1);
    /// sampling with beams and `num_return_sequences` without beams are errors.
    pub fn from_config(config: &GenerationConfig, eos: &[u32]) -> Result<Option<Self>> {
        let beams = config.num_beams.unwrap_or(1);
        let returned = config.num_return_sequences.unwrap_or(1);
        if beams > 1 && config.sampling() {
            return Err(Error::Unsupported(format!(
                "beam search with sampling (`num_beams` = {beams} and `do_sample`): autocandle runs beam search or \
                 sampling, not both; set `num_beams` to 1 to sample or `do_sample` to false for beam search"
            )));
        }
        if beams == 1 {
            if returned > 1 && !config.sampling() {
                return Err(Error::config(
                    "generation",
                    format!(
                        "`num_return_sequences` = {returned} with greedy decoding would return the same sequence \
                         {returned} times: use beam search (`num_beams` >= {returned}) or sampling (`do_sample`)"
                    ),
                ));
            }
            return Ok(None);
        }
        Ok(Some(Self {
            num_beams: beams,
            length_penalty: config.length_penalty.unwrap_or(defaults::LENGTH_PENALTY),
            early_stopping: config.early_stopping.unwrap_or(EarlyStopping::Flag(false)),
            returned,
            fill: config.pad_token_id.filter(|p| *p != 0).or_else(|| eos.first().copied()).unwrap_or(0),
        }))
    }
}

/// Run beam search from `prompts` (one row per input, all equally long; `padding` is the left
/// padding of each, which stopping criteria do not see). Returns `settings.returned` rows per
/// input, best first, cut to the longest, with their scores in
/// [`GenerateOutput::sequences_scores`].
pub(crate) fn beam_search(
    model: &mut dyn BeamModel,
    rules: &mut StepRules<'_>,
    prompts: &[Vec<u32>],
    padding: &[usize],
    s: &BeamSettings,
) -> Result<GenerateOutput> {
    let (nb, batch) = (s.num_beams, prompts.len());
    let prompt_len = prompts.first().map_or(0, Vec::len);
    let keep = 2.max(1 + rules.eos.len()) * nb;
    let mut cur_len = prompt_len;
    let mut running: Vec<Hypothesis> = prompts
        .iter()
        .flat_map(|p| (0..nb).map(|j| Hypothesis { tokens: p.clone(), score: if j == 0 { 0.0 } else { IMPOSSIBLE } }))
        .collect();
    let mut finished: Vec<Vec<Finished>> =
        prompts.iter().map(|p| vec![Finished { tokens: p.clone(), score: IMPOSSIBLE, done: false }; nb]).collect();
    let mut improvable = vec![true; batch];
    loop {
        let rows: Vec<&[u32]> = running.iter().map(|h| h.tokens.as_slice()).collect();
        let logits = model.next_logits(&rows)?;
        if logits.len() != running.len() {
            return Err(Error::input(format!(
                "the model returned logits for {} of {} beams",
                logits.len(),
                rows.len()
            )));
        }
        let mut log_probs = Vec::with_capacity(logits.len());
        for (row, scores) in logits.into_iter().enumerate() {
            let mut lp = log_softmax(&scores);
            apply_processors(&mut rules.processors, row, &running[row].tokens, &mut lp)?;
            log_probs.push(lp);
        }
        let vocab = log_probs.first().map_or(0, Vec::len);
        let mut next_running = Vec::with_capacity(batch * nb);
        let mut sources = Vec::with_capacity(batch * nb);
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
                let row = b * nb + j;
                let mut tokens = running[row].tokens.clone();
                tokens.push(token);
                let hits = rules.eos.contains(&token)
                    || tokens.len() >= rules.max_length
                    || rules.criteria_match(row, tokens.get(padding[b]..).unwrap_or_default())?;
                conts.push(Continuation { score, source: row, tokens, hits });
            }
            all_hit &= conts.iter().all(|c| c.hits);
            // e. The best `nb` continuations that go on.
            let running_scores: Vec<(f32, usize)> =
                conts.iter().enumerate().map(|(k, c)| (c.score + if c.hits { IMPOSSIBLE } else { 0.0 }, k)).collect();
            for (score, k) in top_k(&running_scores, nb) {
                next_running.push(Hypothesis { tokens: conts[k].tokens.clone(), score });
                sources.push(conts[k].source as u32);
            }
            // f. Finished hypotheses among the top `nb` continuations.
            let penalty = length_factor(cur_len + 1 - prompt_len, s.length_penalty);
            let full = finished[b].iter().all(|f| f.done) && s.early_stopping == EarlyStopping::Flag(true);
            let mut merged: Vec<Finished> = finished[b].clone();
            for (k, c) in conts.iter().enumerate() {
                let just_finished = c.hits && k < nb;
                let mut score = c.score / penalty;
                score += if full { IMPOSSIBLE } else { 0.0 };
                score += if improvable[b] { 0.0 } else { IMPOSSIBLE };
                score += if just_finished { 0.0 } else { IMPOSSIBLE };
                merged.push(Finished { tokens: c.tokens.clone(), score, done: just_finished });
            }
            let scores: Vec<(f32, usize)> = merged.iter().enumerate().map(|(i, f)| (f.score, i)).collect();
            finished[b] = top_k(&scores, nb).into_iter().map(|(_, i)| merged[i].clone()).collect();
        }
        model.reorder(&sources)?;
        running = next_running;
        cur_len += 1;
        // The early stopping heuristic and the stop condition.
        let mut improvement_possible = false;
        let mut open_beam = false;
        for b in 0..batch {
            let hypothetical = match s.early_stopping {
                EarlyStopping::Never(_) if s.length_penalty > 0.0 => rules.max_length - prompt_len,
                _ => cur_len - prompt_len,
            };
            let best_running = running[b * nb].score / length_factor(hypothetical, s.length_penalty);
            let all_done = finished[b].iter().all(|f| f.done);
            let worst_finished =
                if all_done { finished[b].iter().map(|f| f.score).fold(f32::INFINITY, f32::min) } else { IMPOSSIBLE };
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
        sequences_scores: Some(chosen.iter().map(|f| f.score).collect()),
    };
    for f in chosen {
        let mut seq = f.tokens.clone();
        let ends_with_eos = seq.last().is_some_and(|t| rules.eos.contains(t)) && seq.len() > prompt_len;
        out.num_generated.push(seq.len() - prompt_len);
        out.finish_reasons.push(if ends_with_eos { FinishReason::Eos } else { FinishReason::Length });
        seq.resize(width, s.fill);
        out.sequences.push(seq);
    }
    Ok(out)
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
    /// The hypothesis (the prompt alone while the slot is empty, as `transformers` starts).
    tokens: Vec<u32>,
    /// Length-penalised score.
    score: f32,
    /// Whether the slot holds a real finished hypothesis.
    done: bool,
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

    #[test]
    fn settings_from_config() {
        let eos = [5];
        assert!(BeamSettings::from_config(&GenerationConfig::new(), &eos).unwrap().is_none());
        let s =
            BeamSettings::from_config(&GenerationConfig::new().num_beams(3).pad_token_id(0), &eos).unwrap().unwrap();
        // A pad id of 0 counts as unset: the first EOS fills.
        assert_eq!((s.num_beams, s.returned, s.fill), (3, 1, 5));
        let err = BeamSettings::from_config(&GenerationConfig::new().num_beams(2).do_sample(true), &eos).unwrap_err();
        assert!(matches!(err, Error::Unsupported(_)) && err.to_string().contains("do_sample"), "{err}");
        let err = BeamSettings::from_config(&GenerationConfig::new().num_return_sequences(2), &eos).unwrap_err();
        assert!(err.to_string().contains("num_return_sequences"), "{err}");
        // Sampling may return several sequences per prompt.
        let sampling = GenerationConfig::new().num_return_sequences(2).do_sample(true);
        assert!(BeamSettings::from_config(&sampling, &eos).unwrap().is_none());
    }
}
