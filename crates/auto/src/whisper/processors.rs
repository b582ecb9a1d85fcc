//! Whisper's logits processors, after `transformers`' `SuppressTokensLogitsProcessor`,
//! `SuppressTokensAtBeginLogitsProcessor` and `WhisperTimeStampLogitsProcessor`.

use autocandle_core::Result;
use autocandle_generation::LogitsProcessor;

/// Set `scores[from..to]` (clamped to the vocabulary) to minus infinity.
fn ban_range(scores: &mut [f32], from: usize, to: usize) {
    let to = to.min(scores.len());
    if from < to {
        scores[from..to].fill(f32::NEG_INFINITY);
    }
}

/// Never generate these tokens (`suppress_tokens`).
#[derive(Debug, Clone)]
pub struct SuppressTokens {
    tokens: Vec<u32>,
}

impl SuppressTokens {
    /// Suppress `tokens` (ids beyond the vocabulary are ignored).
    pub fn new(tokens: Vec<u32>) -> Self {
        Self { tokens }
    }
}

impl LogitsProcessor for SuppressTokens {
    fn process(&mut self, _row: usize, _ids: &[u32], scores: &mut [f32]) -> Result<()> {
        for &t in &self.tokens {
            if let Some(s) = scores.get_mut(t as usize) {
                *s = f32::NEG_INFINITY;
            }
        }
        Ok(())
    }
}

/// Do not generate these tokens first (`begin_suppress_tokens`): at the step where the row
/// holds exactly `begin_index` tokens (the decoder prompt).
#[derive(Debug, Clone)]
pub struct SuppressTokensAtBegin {
    tokens: Vec<u32>,
    begin_index: usize,
}

impl SuppressTokensAtBegin {
    /// Suppress `tokens` at the first generated position, after `begin_index` prompt tokens.
    pub fn new(tokens: Vec<u32>, begin_index: usize) -> Self {
        Self { tokens, begin_index }
    }
}

impl LogitsProcessor for SuppressTokensAtBegin {
    fn process(&mut self, row: usize, ids: &[u32], scores: &mut [f32]) -> Result<()> {
        if ids.len() == self.begin_index {
            SuppressTokens { tokens: self.tokens.clone() }.process(row, ids, scores)?;
        }
        Ok(())
    }
}

/// The timestamp rules of Whisper (`WhisperTimeStampLogitsProcessor`): `<|notimestamps|>`
/// never; timestamps in pairs (after a lone timestamp only a timestamp or EOS, after a pair
/// text); timestamps never decrease; the first token is a timestamp no later than
/// `max_initial_timestamp_index`; and when the timestamps together are more likely than the
/// likeliest text token, a timestamp.
#[derive(Debug, Clone)]
pub struct WhisperTimestamps {
    no_timestamps_token_id: u32,
    timestamp_begin: usize,
    eos_token_id: u32,
    begin_index: usize,
    max_initial_timestamp_index: Option<usize>,
}

impl WhisperTimestamps {
    /// The rules for prompts of `begin_index` tokens; timestamps are the ids after
    /// `no_timestamps_token_id`.
    pub fn new(
        no_timestamps_token_id: u32,
        eos_token_id: u32,
        begin_index: usize,
        max_initial_timestamp_index: Option<usize>,
    ) -> Self {
        Self {
            no_timestamps_token_id,
            timestamp_begin: no_timestamps_token_id as usize + 1,
            eos_token_id,
            begin_index,
            max_initial_timestamp_index,
        }
    }
}

impl LogitsProcessor for WhisperTimestamps {
    fn process(&mut self, _row: usize, ids: &[u32], scores: &mut [f32]) -> Result<()> {
        let tb = self.timestamp_begin;
        if let Some(s) = scores.get_mut(self.no_timestamps_token_id as usize) {
            *s = f32::NEG_INFINITY;
        }
        let seq = ids.get(self.begin_index..).unwrap_or_default();
        let is_ts = |t: u32| t as usize >= tb;
        let last_was_timestamp = seq.last().is_some_and(|&t| is_ts(t));
        let penultimate_was_timestamp = seq.len() < 2 || is_ts(seq[seq.len() - 2]);
        if last_was_timestamp {
            if penultimate_was_timestamp {
                ban_range(scores, tb, scores.len());
            } else {
                ban_range(scores, 0, self.eos_token_id as usize);
            }
        }
        let mut timestamp_last = tb;
        if let Some(&last) = seq.iter().rev().find(|&&t| is_ts(t)) {
            timestamp_last =
                if last_was_timestamp && !penultimate_was_timestamp { last as usize } else { last as usize + 1 };
        }
        ban_range(scores, tb, timestamp_last);
        if ids.len() == self.begin_index {
            ban_range(scores, 0, tb);
            if let Some(m) = self.max_initial_timestamp_index {
                ban_range(scores, tb + m + 1, scores.len());
            }
        }
        // Timestamps together more likely than any text token: a timestamp.
        let lp = log_softmax(scores);
        let split = tb.min(lp.len());
        let timestamp_logprob = log_sum_exp(&lp[split..]);
        let max_text = lp[..split].iter().copied().fold(f32::NEG_INFINITY, f32::max);
        if timestamp_logprob > max_text {
            ban_range(scores, 0, tb);
        }
        Ok(())
    }
}

/// `log(sum(exp(x)))`, minus infinity for an empty or all minus-infinity slice.
fn log_sum_exp(x: &[f32]) -> f32 {
    let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    if max == f32::NEG_INFINITY {
        return f32::NEG_INFINITY;
    }
    max + x.iter().map(|v| (v - max).exp()).sum::<f32>().ln()
}

/// Log-softmax in f32.
fn log_softmax(x: &[f32]) -> Vec<f32> {
    let lse = log_sum_exp(x);
    x.iter().map(|v| v - lse).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEG: f32 = f32::NEG_INFINITY;
    // Vocabulary: 0-3 text, 4 EOS, 5 <|notimestamps|>, 6-9 timestamps.
    fn run(p: &mut WhisperTimestamps, ids: &[u32], scores: &[f32]) -> Vec<f32> {
        let mut s = scores.to_vec();
        p.process(0, ids, &mut s).unwrap();
        s
    }

    #[test]
    fn suppress_and_begin_suppress() {
        let mut s = vec![0.0; 4];
        SuppressTokens::new(vec![1, 9]).process(0, &[7], &mut s).unwrap();
        assert_eq!(s, [0.0, NEG, 0.0, 0.0]);
        let mut p = SuppressTokensAtBegin::new(vec![0], 2);
        let mut s = vec![0.0; 3];
        p.process(0, &[7, 8, 1], &mut s).unwrap();
        assert_eq!(s, [0.0; 3]);
        p.process(0, &[7, 8], &mut s).unwrap();
        assert_eq!(s, [NEG, 0.0, 0.0]);
    }

    #[test]
    fn timestamp_rules() {
        let mut p = WhisperTimestamps::new(5, 4, 2, Some(1));
        let flat = [0.0f32; 10];
        // First step: only timestamps up to index 1 (ids 6, 7).
        assert_eq!(run(&mut p, &[1, 2], &flat), [NEG, NEG, NEG, NEG, NEG, NEG, 0.0, 0.0, NEG, NEG]);
        // After one timestamp (a pair start, penultimate counts as timestamp): text only, and
        // timestamps later than the last one; here no timestamp may follow at all.
        let s = run(&mut p, &[1, 2, 7], &[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(&s[6..], [NEG; 4]);
        assert_eq!(s[0], 1.0);
        assert_eq!(s[5], NEG);
        // Timestamp after text: no text (ids < EOS), timestamps >= the last one; their mass
        // then beats EOS, so a timestamp.
        let s = run(&mut p, &[1, 2, 6, 0, 7], &flat);
        assert_eq!(s, [NEG, NEG, NEG, NEG, NEG, NEG, NEG, 0.0, 0.0, 0.0]);
        let s = run(&mut p, &[1, 2, 6, 0, 7], &[0.0, 0.0, 0.0, 0.0, 9.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(s, [NEG, NEG, NEG, NEG, 9.0, NEG, NEG, 0.0, 0.0, 0.0]);
        // After a pair: timestamps must be later than the last.
        let s = run(&mut p, &[1, 2, 6, 0, 7, 7, 1], &[5.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        assert_eq!(&s[6..], [NEG, NEG, 0.0, 0.0]);
        assert_eq!(s[0], 5.0);
        // Timestamp mass above the best text token forces a timestamp.
        let s = run(&mut p, &[1, 2, 6, 0], &[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.9, 0.9, 0.9, 0.9]);
        assert_eq!(&s[..6], [NEG; 6]);
        assert_eq!(&s[7..], [0.9, 0.9, 0.9]);
    }
}
