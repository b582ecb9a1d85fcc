//! The question-answering pipeline after `transformers` 4.57's `QuestionAnsweringPipeline`
//! (5.x removed it): extractive answers to a question from a context, with character offsets
//! into the context. Long contexts are split into overlapping windows (the tokenizer's
//! truncation with a stride, `only_second`), each window is scored by the model, and the best
//! spans of all windows are merged.

use autocandle_core::{Error, ForQuestionAnswering, LoadOptions, ModelInputs, Result};
use candle_core::{DType, IndexOp, Tensor};
use serde_json::Value;
use tokenizers::processors::PostProcessorWrapper;
use tokenizers::{Encoding, PostProcessor, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use super::TextParts;
use crate::AutoModelForQuestionAnswering;

/// `transformers`' default `max_seq_len` cap (`min(model_max_length, 384)`).
const MAX_SEQ_LEN: usize = 384;
/// `transformers`' default `doc_stride` cap (`min(max_seq_len // 2, 128)`).
const DOC_STRIDE: usize = 128;
/// The logit that masks a token out of the answer (`select_starts_ends`).
const MASKED_LOGIT: f32 = -10000.0;

/// Options of [`QuestionAnsweringPipeline::call_with`], with `transformers`' defaults.
///
/// `transformers`' `max_question_len` is not here: 4.57 uses it only with slow (Python)
/// tokenizers, and autocandle's tokenizers are all fast ones, for which it changes nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct QuestionAnsweringOptions {
    /// How many answers, best first (default 1; fewer when the context has fewer candidates).
    pub top_k: usize,
    /// Overlap in tokens between the windows of a long context (default
    /// `min(max_seq_len / 2, 128)`).
    pub doc_stride: Option<usize>,
    /// Longest answer in tokens (default 15).
    pub max_answer_len: usize,
    /// Length in tokens of each window, question and special tokens included (default
    /// `min(model_max_length, 384)`).
    pub max_seq_len: Option<usize>,
    /// Also propose the empty answer, scored by the first token (default false).
    pub handle_impossible_answer: bool,
    /// Widen answers to whole words (default true).
    pub align_to_words: bool,
}

impl Default for QuestionAnsweringOptions {
    fn default() -> Self {
        Self {
            top_k: 1,
            doc_stride: None,
            max_answer_len: 15,
            max_seq_len: None,
            handle_impossible_answer: false,
            align_to_words: true,
        }
    }
}

/// One answer (`{"score", "start", "end", "answer"}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Probability of the span (start times end probability), summed over the spans and
    /// windows that give the same text (case-insensitively).
    pub score: f32,
    /// Character offsets of the answer in the context (`answer == context[start..end]` in
    /// characters; `start == end == 0` for the impossible answer).
    pub start: usize,
    /// End of the answer, in characters, exclusive.
    pub end: usize,
    /// The answer's text.
    pub answer: String,
}

/// Answer questions about a context with an extractive question answering model.
#[derive(Debug)]
pub struct QuestionAnsweringPipeline {
    parts: TextParts,
    model: Box<dyn ForQuestionAnswering>,
    /// `padding_side == "right"`: the question comes first and the context is truncated.
    question_first: bool,
    truncation_direction: TruncationDirection,
    /// Whether the tokenizer's `model_input_names` hold `token_type_ids`.
    token_type_ids: bool,
    cls_id: Option<u32>,
    pad_id: Option<u32>,
}

/// One scored span of one window, before it becomes an [`Answer`].
#[derive(Debug, Clone, Copy, PartialEq)]
struct Span {
    start: usize,
    end: usize,
    score: f32,
}

impl QuestionAnsweringPipeline {
    /// Load the model (`AutoModelForQuestionAnswering`) and tokenizer at `model` (Hub id or
    /// folder).
    pub fn new(model: &str) -> Result<Self> {
        Self::new_with(model, &LoadOptions::default())
    }

    /// [`QuestionAnsweringPipeline::new`] with loading options.
    pub fn new_with(model: &str, opts: &LoadOptions) -> Result<Self> {
        super::traced("question-answering", model, || {
            let parts = TextParts::load(model, opts, false)?;
            let settings = parts.tokenizer.settings();
            let side = |key: &str| settings.get(key).and_then(Value::as_str).unwrap_or("right");
            let question_first = side("padding_side") != "left";
            let truncation_direction =
                if side("truncation_side") == "left" { TruncationDirection::Left } else { TruncationDirection::Right };
            let token_type_ids = uses_token_type_ids(settings);
            let cls_id = parts.tokenizer.special_token_id("cls_token");
            let pad_id = parts.tokenizer.special_token_id("pad_token");
            let model = AutoModelForQuestionAnswering::from_pretrained_with(model, opts)?.value;
            Ok(Self { parts, model, question_first, truncation_direction, token_type_ids, cls_id, pad_id })
        })
    }

    /// The best answer to `question` in `context` (a one-element list).
    pub fn call(&self, question: &str, context: &str) -> Result<Vec<Answer>> {
        self.call_with(question, context, &QuestionAnsweringOptions::default())
    }

    /// The `top_k` best answers to `question` in `context`, best first. `transformers` returns
    /// the answer itself when there is one, a list otherwise.
    pub fn call_with(&self, question: &str, context: &str, opts: &QuestionAnsweringOptions) -> Result<Vec<Answer>> {
        validate(question, context, opts)?;
        let (max_seq_len, doc_stride) = self.window(opts)?;
        let windows = self.encode_windows(question, context, max_seq_len, doc_stride)?;
        let pre_top_k = if opts.align_to_words { opts.top_k * 2 + 10 } else { opts.top_k };
        let sequence_index = if self.question_first { 1 } else { 0 };
        let context_chars: Vec<char> = context.chars().collect();
        let mut min_null_score = 1_000_000f64;
        // (score, start, end, answer) in the order transformers appends them.
        let mut answers: Vec<(f64, usize, usize, String)> = Vec::new();
        for window in &windows {
            let (null_score, spans) = self.score_window(window, pre_top_k, opts)?;
            if let Some(null) = null_score.filter(|_| opts.handle_impossible_answer) {
                min_null_score = min_null_score.min(null);
            }
            // Left padding shifts the tokens by the pad tokens before them (never with the
            // pipeline's `do_not_pad`, unless the text holds the pad token itself).
            let offset = match (self.question_first, self.pad_id) {
                (false, Some(pad)) => window.get_ids().iter().filter(|id| **id == pad).count(),
                _ => 0,
            };
            for span in spans {
                let (s, e) = (span.start.saturating_sub(offset), span.end.saturating_sub(offset));
                let (start, end) = char_span(window, s, e, sequence_index, opts.align_to_words);
                let text: String = if start < end {
                    context_chars
                        .get(start..end.min(context_chars.len()))
                        .map(|c| c.iter().collect())
                        .unwrap_or_default()
                } else {
                    String::new()
                };
                let lower = text.to_lowercase();
                match answers.iter_mut().find(|a| a.3.to_lowercase() == lower) {
                    Some(existing) => existing.0 += f64::from(span.score),
                    None => answers.push((f64::from(span.score), start, end, text)),
                }
            }
        }
        if opts.handle_impossible_answer {
            answers.push((min_null_score, 0, 0, String::new()));
        }
        // Python's `sorted(..., reverse=True)` is stable: equal scores keep their order.
        answers.sort_by(|a, b| b.0.total_cmp(&a.0));
        answers.truncate(opts.top_k);
        Ok(answers
            .into_iter()
            .map(|(score, start, end, answer)| Answer { score: score as f32, start, end, answer })
            .collect())
    }

    /// Answers for several `(question, context)` pairs, one list per pair.
    pub fn call_batch(&self, pairs: &[(&str, &str)], opts: &QuestionAnsweringOptions) -> Result<Vec<Vec<Answer>>> {
        pairs.iter().map(|(question, context)| self.call_with(question, context, opts)).collect()
    }

    /// `max_seq_len` and `doc_stride` of a call, with `transformers`' defaults.
    fn window(&self, opts: &QuestionAnsweringOptions) -> Result<(usize, usize)> {
        let max_seq_len = opts
            .max_seq_len
            .unwrap_or_else(|| self.parts.tokenizer.model_max_length().map_or(MAX_SEQ_LEN, |m| m.min(MAX_SEQ_LEN)));
        let doc_stride = opts.doc_stride.unwrap_or((max_seq_len / 2).min(DOC_STRIDE));
        if doc_stride > max_seq_len {
            return Err(Error::input(format!(
                "question-answering: `doc_stride` ({doc_stride}) is larger than `max_seq_len` ({max_seq_len})"
            )));
        }
        Ok((max_seq_len, doc_stride))
    }

    /// The encodings of the windows of a long context: the tokenizer's truncation of the
    /// context (`only_second`, or `only_first` when the context comes first) to `max_seq_len`
    /// with `doc_stride` tokens of overlap, and the overflowing windows after the first.
    ///
    /// The two texts are tokenized without truncation, then truncated and post-processed as
    /// `tokenizers` does in `encode`: the `tokenizers` crate cuts a truncated sequence to
    /// `max_length` tokens while tokenizing it, which loses the windows after the first
    /// overflowing one (`tokenizers` in Python keeps them).
    fn encode_windows(
        &self,
        question: &str,
        context: &str,
        max_seq_len: usize,
        doc_stride: usize,
    ) -> Result<Vec<Encoding>> {
        let tokenizer_error = |e: tokenizers::Error| Error::Tokenizer(e.to_string());
        let (first, second) = if self.question_first { (question, context) } else { (context, question) };
        let mut backend: Tokenizer = self.parts.backend.clone();
        let added = backend.get_post_processor().map_or(0, |p| p.added_tokens(true));
        // `encode_single_sequence`: each text alone, no special tokens, the second of type 1.
        let mut raw = backend.clone();
        raw.with_post_processor(None::<PostProcessorWrapper>);
        let first = raw.encode_char_offsets(first, false).map_err(tokenizer_error)?;
        let mut second = raw.encode_char_offsets(second, false).map_err(tokenizer_error)?;
        second.set_type_ids(vec![1; second.len()]);
        let total = first.len() + second.len() + added;
        if total > max_seq_len {
            // Check what `tokenizers` would otherwise fail on (or panic on): room for the
            // special tokens, a part of the context to keep, and a stride shorter than it.
            let context_len = if self.question_first { second.len() } else { first.len() };
            let to_remove = total - max_seq_len;
            if max_seq_len <= added || context_len <= to_remove {
                return Err(Error::input(format!(
                    "question-answering: the question and special tokens take {} of the {max_seq_len} tokens of a \
                     window (`max_seq_len`), leaving no room for the context; shorten the question or raise \
                     `max_seq_len`",
                    total - context_len
                )));
            }
            let kept = context_len - to_remove;
            if doc_stride >= kept {
                return Err(Error::input(format!(
                    "question-answering: `doc_stride` ({doc_stride}) must be smaller than the {kept} context tokens \
                     that fit in a window of `max_seq_len` {max_seq_len} next to the question; lower `doc_stride` \
                     or raise `max_seq_len`"
                )));
            }
            let params = TruncationParams {
                direction: self.truncation_direction,
                max_length: max_seq_len,
                strategy: if self.question_first {
                    TruncationStrategy::OnlySecond
                } else {
                    TruncationStrategy::OnlyFirst
                },
                stride: doc_stride,
            };
            backend.with_truncation(Some(params)).map_err(tokenizer_error)?;
        }
        let mut encoding = backend.post_process(first, Some(second), true).map_err(tokenizer_error)?;
        let overflowing = std::mem::take(encoding.get_overflowing_mut());
        Ok(std::iter::once(encoding).chain(overflowing).collect())
    }

    /// Run the model on one window and decode its best spans (`select_starts_ends`): the
    /// null score (first token's start times end probability) and the `top_k` spans.
    fn score_window(
        &self,
        window: &Encoding,
        top_k: usize,
        opts: &QuestionAnsweringOptions,
    ) -> Result<(Option<f64>, Vec<Span>)> {
        let ids = window.get_ids();
        // p_mask: 1 for tokens that cannot be in the answer (question and special tokens),
        // except the CLS token, which some models use for "no answer".
        let allowed: Vec<bool> = window
            .get_sequence_ids()
            .iter()
            .zip(ids)
            .zip(window.get_attention_mask())
            .map(|((seq, id), mask)| {
                let p_mask = self.question_first && *seq != Some(1) && Some(*id) != self.cls_id;
                !p_mask && *mask != 0
            })
            .collect();
        let (start_logits, end_logits) = self.logits(window)?;
        let masked = |logits: &[f32]| -> Vec<f32> {
            logits.iter().zip(&allowed).map(|(l, ok)| if *ok { *l } else { MASKED_LOGIT }).collect()
        };
        let mut start = probabilities(&masked(&start_logits));
        let mut end = probabilities(&masked(&end_logits));
        let (Some(s0), Some(e0)) = (start.first_mut(), end.first_mut()) else {
            return Ok((None, Vec::new()));
        };
        let null_score = f64::from(*s0 * *e0);
        *s0 = 0.0;
        *e0 = 0.0;
        let spans = decode_spans(&start, &end, top_k, opts.max_answer_len, &allowed);
        Ok((Some(null_score), spans))
    }

    /// The start and end logits of one window, in f32.
    fn logits(&self, window: &Encoding) -> Result<(Vec<f32>, Vec<f32>)> {
        let device = &self.parts.device;
        let row = |v: &[u32]| Tensor::from_slice(v, (1, v.len()), device);
        let mut inputs =
            ModelInputs::new(row(window.get_ids())?).with_attention_mask(row(window.get_attention_mask())?);
        if self.token_type_ids {
            inputs = inputs.with_token_type_ids(row(window.get_type_ids())?);
        }
        let out = self.model.forward(&inputs)?;
        let vector = |t: &Tensor| -> Result<Vec<f32>> { Ok(t.to_dtype(DType::F32)?.i(0)?.to_vec1::<f32>()?) };
        Ok((vector(&out.start_logits)?, vector(&out.end_logits)?))
    }
}

/// The checks of `QuestionAnsweringArgumentHandler` and `_sanitize_parameters`.
fn validate(question: &str, context: &str, opts: &QuestionAnsweringOptions) -> Result<()> {
    for (name, value) in [("question", question), ("context", context)] {
        if value.is_empty() {
            return Err(Error::input(format!("question-answering: `{name}` cannot be empty")));
        }
    }
    if opts.top_k < 1 {
        return Err(Error::input(format!("question-answering: `top_k` should be >= 1 (got {})", opts.top_k)));
    }
    if opts.max_answer_len < 1 {
        return Err(Error::input(format!(
            "question-answering: `max_answer_len` should be >= 1 (got {})",
            opts.max_answer_len
        )));
    }
    Ok(())
}

/// Whether the tokenizer feeds `token_type_ids` to the model (`model_input_names`): the
/// config's list when it has one, else the class default of `transformers` (BERT's and the
/// generic fast tokenizer do; DistilBERT's and the BPE / SentencePiece tokenizers of GPT-2,
/// RoBERTa, BART, T5, Llama, Qwen2, Gemma, CLIP, ... do not).
fn uses_token_type_ids(settings: &Value) -> bool {
    if let Some(names) = settings.get("model_input_names").and_then(Value::as_array) {
        return names.iter().any(|n| n.as_str() == Some("token_type_ids"));
    }
    const WITHOUT: &[&str] = &[
        "GPT2Tokenizer",
        "RobertaTokenizer",
        "XLMRobertaTokenizer",
        "CamembertTokenizer",
        "LongformerTokenizer",
        "MPNetTokenizer",
        "DistilBertTokenizer",
        "BartTokenizer",
        "T5Tokenizer",
        "MT5Tokenizer",
        "LlamaTokenizer",
        "CodeLlamaTokenizer",
        "Qwen2Tokenizer",
        "GemmaTokenizer",
        "CLIPTokenizer",
        "SiglipTokenizer",
        "GPTNeoXTokenizer",
        "BloomTokenizer",
        "MBartTokenizer",
        "PegasusTokenizer",
        "WhisperTokenizer",
    ];
    let class = settings.get("tokenizer_class").and_then(Value::as_str).unwrap_or("");
    !WITHOUT.contains(&class.strip_suffix("Fast").unwrap_or(class))
}

/// Softmax as `select_starts_ends` computes it in numpy float32.
fn probabilities(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|x| (x - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

/// `decode_spans`: the `top_k` spans by `start[s] * end[e]`, over `s <= e < s +
/// max_answer_len`, best first, then those whose start and end are allowed tokens.
///
/// As in `transformers`, the ranking runs over the whole `[seq, seq]` score matrix, where every
/// other cell scores 0: when fewer than `top_k` cells score above 0, zero-score cells fill up
/// the ranking (numpy leaves their order unspecified; here they come in row-major order), and
/// token 0 counts as allowed (numpy's `isin` there also matches the batch index of the mask).
fn decode_spans(start: &[f32], end: &[f32], top_k: usize, max_answer_len: usize, allowed: &[bool]) -> Vec<Span> {
    let n = start.len().min(end.len());
    let mut ranked: Vec<Span> = Vec::new();
    for (s, ps) in start.iter().enumerate().take(n) {
        for (e, pe) in end.iter().enumerate().take(n.min(s + max_answer_len)).skip(s) {
            let score = ps * pe;
            if score > 0.0 {
                ranked.push(Span { start: s, end: e, score });
            }
        }
    }
    // Best first; ties keep row-major order (numpy's argmax for top_k 1).
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then((a.start, a.end).cmp(&(b.start, b.end))));
    ranked.truncate(top_k);
    if ranked.len() < top_k {
        let positive: Vec<(usize, usize)> = ranked.iter().map(|s| (s.start, s.end)).collect();
        'fill: for s in 0..n {
            for e in 0..n {
                if ranked.len() >= top_k {
                    break 'fill;
                }
                if !positive.contains(&(s, e)) {
                    ranked.push(Span { start: s, end: e, score: 0.0 });
                }
            }
        }
    }
    let any_allowed = allowed.iter().any(|a| *a);
    let desired = |i: usize| allowed.get(i).copied().unwrap_or(false) || (i == 0 && any_allowed);
    ranked.into_iter().filter(|span| desired(span.start) && desired(span.end)).collect()
}

/// `get_indices`: the character span of tokens `s..=e` in the context. With
/// `align_to_words`, the span of the words holding them; when a token has no word (special
/// tokens) or the word is not in the context's sequence, the tokens' own offsets.
fn char_span(window: &Encoding, s: usize, e: usize, sequence_index: usize, align_to_words: bool) -> (usize, usize) {
    let offsets = window.get_offsets();
    let by_offsets = || (offsets.get(s).map_or(0, |o| o.0), offsets.get(e).map_or(0, |o| o.1));
    if !align_to_words {
        return by_offsets();
    }
    let words = window.token_to_word(s).zip(window.token_to_word(e)).and_then(|((_, ws), (_, we))| {
        Some((window.word_to_chars(ws, sequence_index)?.0, window.word_to_chars(we, sequence_index)?.1))
    });
    words.unwrap_or_else(by_offsets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_rank_by_probability_within_the_answer_length() {
        let start = [0.0, 0.5, 0.3, 0.2];
        let end = [0.0, 0.1, 0.6, 0.3];
        let allowed = [true, true, true, true];
        let spans = decode_spans(&start, &end, 3, 2, &allowed);
        let got: Vec<(usize, usize)> = spans.iter().map(|s| (s.start, s.end)).collect();
        // (1,2) 0.30, (2,2) 0.18, (2,3) 0.09, (1,1) 0.05; (1,3) is 3 tokens long.
        assert_eq!(got, vec![(1, 2), (2, 2), (2, 3)]);
        assert!((spans[0].score - 0.3).abs() < 1e-6);
        // Disallowed tokens are dropped after ranking, not replaced.
        let spans = decode_spans(&start, &end, 2, 2, &[true, false, true, true]);
        assert_eq!(spans.iter().map(|s| (s.start, s.end)).collect::<Vec<_>>(), vec![(2, 2)]);
    }

    #[test]
    fn model_input_names_follow_the_tokenizer_class() {
        let bert = serde_json::json!({"tokenizer_class": "BertTokenizer"});
        let gpt2 = serde_json::json!({"tokenizer_class": "GPT2TokenizerFast"});
        let listed = serde_json::json!({"tokenizer_class": "GPT2Tokenizer", "model_input_names": ["input_ids", "token_type_ids"]});
        assert!(uses_token_type_ids(&bert));
        assert!(!uses_token_type_ids(&gpt2));
        assert!(uses_token_type_ids(&listed));
        assert!(uses_token_type_ids(&serde_json::json!({})));
    }

    #[test]
    fn options_are_checked() {
        let opts = QuestionAnsweringOptions { top_k: 0, ..Default::default() };
        assert!(validate("q", "c", &opts).unwrap_err().to_string().contains("top_k"));
        assert!(validate("", "c", &QuestionAnsweringOptions::default()).unwrap_err().to_string().contains("question"));
    }
}
