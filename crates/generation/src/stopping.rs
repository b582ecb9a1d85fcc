//! Stopping criteria beyond length and EOS: the [`StoppingCriteria`] trait, the
//! [`TokenDecoder`] that text-based criteria need, and [`StopStringCriteria`].

use std::fmt::Debug;

use autocandle_core::Result;

/// Decides after each step whether a row is done (`transformers`' `StoppingCriteria`).
pub trait StoppingCriteria: Debug {
    /// Whether `row` is done now that `input_ids` (the row's tokens without its left padding,
    /// its newest token last) have been generated.
    fn is_done(&mut self, row: usize, input_ids: &[u32]) -> Result<bool>;
}

/// Turns token ids into text: what stop strings and text streaming need from a tokenizer.
pub trait TokenDecoder {
    /// The text of `ids`; with `skip_special_tokens`, special tokens are left out.
    fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String>;
}

impl<T: TokenDecoder + ?Sized> TokenDecoder for &T {
    fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        (**self).decode(ids, skip_special_tokens)
    }
}

/// Tokens decoded beyond the longest stop string, so that the decoded window reaches back
/// far enough even when a few tokens decode to nothing.
const WINDOW_SLACK: usize = 8;

/// Stops a row when its text ends with a stop string that overlaps the newest token
/// (`StopStringCriteria`): "st" + "op" and "las" + "topper" both stop at `"stop"`, but a stop
/// string that ended before the newest token does not.
///
/// `transformers` matches the stop strings against the vocabulary's token strings; here the
/// tokens are decoded (special tokens included), which agrees wherever the decoder maps
/// token strings to text piece by piece.
pub struct StopStringCriteria<D> {
    decoder: D,
    stop_strings: Vec<String>,
    window: usize,
}

impl<D> Debug for StopStringCriteria<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StopStringCriteria").field("stop_strings", &self.stop_strings).finish_non_exhaustive()
    }
}

impl<D: TokenDecoder> StopStringCriteria<D> {
    /// Stop at any of `stop_strings`, decoding the newest tokens with `decoder`.
    pub fn new(decoder: D, stop_strings: Vec<String>) -> Self {
        let longest = stop_strings.iter().map(String::len).max().unwrap_or(0);
        Self { decoder, stop_strings, window: longest + WINDOW_SLACK }
    }

    /// The stop string that `ids` end with, overlapping the newest token, if any.
    pub fn matching(&self, ids: &[u32]) -> Result<Option<&str>> {
        let Some(last) = ids.len().checked_sub(1) else {
            return Ok(None);
        };
        let start = ids.len().saturating_sub(self.window);
        let before = self.decoder.decode(&ids[start..last], false)?;
        let text = self.decoder.decode(&ids[start..], false)?;
        // Bytes of `text` that came before the newest token.
        let settled = before.bytes().zip(text.bytes()).take_while(|(a, b)| a == b).count();
        Ok(self
            .stop_strings
            .iter()
            .find(|s| text.match_indices(s.as_str()).any(|(at, m)| at + m.len() > settled))
            .map(String::as_str))
    }
}

impl<D: TokenDecoder> StoppingCriteria for StopStringCriteria<D> {
    fn is_done(&mut self, _row: usize, ids: &[u32]) -> Result<bool> {
        Ok(self.matching(ids)?.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Token `i` decodes to `PIECES[i]`.
    struct Pieces(Vec<&'static str>);

    impl TokenDecoder for Pieces {
        fn decode(&self, ids: &[u32], _skip: bool) -> Result<String> {
            Ok(ids.iter().map(|&i| self.0[i as usize]).collect())
        }
    }

    fn stops(pieces: &[&'static str]) -> bool {
        let ids: Vec<u32> = (0..pieces.len() as u32).collect();
        let c = StopStringCriteria::new(Pieces(pieces.to_vec()), vec!["stop".to_owned()]);
        c.matching(&ids).unwrap().is_some()
    }

    #[test]
    fn transformers_examples() {
        // The positive and negative examples of `StopStringCriteria`'s docstring.
        for yes in
            [&["st", "op"][..], &["stop"], &["st", "opera"], &["sto", "pper"], &["las", "topper"], &["s", "to", "pped"]]
        {
            assert!(stops(yes), "{yes:?}");
        }
        for no in [&["stop", "at"][..], &["st", "op", "at"], &["st", "opera", "tion"], &["x"]] {
            assert!(!stops(no), "{no:?}");
        }
    }
}
