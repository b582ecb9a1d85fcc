//! Generation in the facade: [`GenerationMixin`] puts `generate` on every causal language model
//! (`model.generate(&inputs, &config)` on a `Box<dyn ForCausalLm>`), the tokenizer decodes for
//! stop strings, and [`TextStreamer`] turns streamed tokens into text as `transformers`'
//! `TextStreamer` does.

use std::ops::ControlFlow;

use autocandle_core::{ForCausalLm, ForSeq2SeqLm, ModelInputs, Result};
use autocandle_generation::{
    generate_seq2seq, generate_with_options, GenerateOptions, GenerateOutput, GenerationConfig, Generator, IntoPrompts,
    Prompts, StepTokens, TokenDecoder,
};

use crate::tokenizer::{BatchEncoding, EncodeOptions, Padding, PreTrainedTokenizer};

impl TokenDecoder for PreTrainedTokenizer {
    fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        PreTrainedTokenizer::decode(self, ids, skip_special_tokens)
    }
}

/// A tokenizer's batch: its `input_ids` and `attention_mask`. Decoder-only generation needs
/// the padding on the left; a batch padded on the right (the `padding_side` of most
/// tokenizers) is moved to the left first, so the rows that come back are left-padded.
impl IntoPrompts for &BatchEncoding {
    fn into_prompts(self) -> Result<Prompts> {
        let (ids, mask) = (&self.input_ids, &self.attention_mask);
        if mask.len() != ids.len() || mask.iter().zip(ids).any(|(m, r)| m.len() != r.len()) {
            return Ok(Prompts::new(ids.clone()));
        }
        if !mask.iter().any(|m| m.last() == Some(&0)) {
            return Ok(Prompts::new(ids.clone()).with_attention_mask(mask.clone()));
        }
        let rows: Vec<Vec<u32>> = ids
            .iter()
            .zip(mask)
            .map(|(r, m)| r.iter().zip(m).filter(|(_, m)| **m != 0).map(|(t, _)| *t).collect())
            .collect();
        Ok(left_pad(rows, 0))
    }
}

/// Text generation on causal language models (`transformers`' `GenerationMixin`), for any
/// [`ForCausalLm`], including `Box<dyn ForCausalLm>`:
///
/// ```no_run
/// use autocandle::{AutoModelForCausalLM, AutoTokenizer, GenerationConfig, GenerationMixin};
/// # fn main() -> autocandle::Result<()> {
/// let tok = AutoTokenizer::from_pretrained("Qwen/Qwen2.5-0.5B-Instruct")?;
/// let model = AutoModelForCausalLM::from_pretrained("Qwen/Qwen2.5-0.5B-Instruct")?;
/// let config = GenerationConfig::from_pretrained("Qwen/Qwen2.5-0.5B-Instruct")?.max_new_tokens(32);
/// let ids = model.generate(&tok.encode("The capital of France is")?, &config)?; // prompt included
/// println!("{}", tok.decode(&ids[0], true)?);
/// # Ok(()) }
/// ```
///
/// `GenerationConfig::new()` uses `transformers`' defaults (greedy, 20 new tokens, no EOS);
/// load the model's `generation_config.json` with [`GenerationConfig::from_pretrained`] for
/// its EOS tokens and sampling settings.
pub trait GenerationMixin: ForCausalLm {
    /// Generate and return each row: prompt (with its padding) then new tokens, as
    /// `transformers`' `generate`. Stop strings need [`GenerationMixin::generate_with_tokenizer`].
    fn generate(&self, inputs: impl IntoPrompts, config: &GenerationConfig) -> Result<Vec<Vec<u32>>> {
        Ok(self.generate_output(inputs, config, None)?.sequences)
    }

    /// [`GenerationMixin::generate`] with the tokenizer, which `stop_strings` need
    /// (`generate(..., tokenizer=tokenizer)`).
    fn generate_with_tokenizer(
        &self,
        inputs: impl IntoPrompts,
        config: &GenerationConfig,
        tokenizer: &PreTrainedTokenizer,
    ) -> Result<Vec<Vec<u32>>> {
        Ok(self.generate_output(inputs, config, Some(tokenizer))?.sequences)
    }

    /// Generate and return the rows with each row's generated length and finish reason: greedy
    /// decoding, sampling or, with `num_beams` > 1, beam search (`num_return_sequences` rows per
    /// prompt, best first, with their [`GenerateOutput::sequences_scores`]).
    fn generate_output(
        &self,
        inputs: impl IntoPrompts,
        config: &GenerationConfig,
        tokenizer: Option<&PreTrainedTokenizer>,
    ) -> Result<GenerateOutput> {
        let mut options = GenerateOptions::new();
        if let Some(tokenizer) = tokenizer {
            options = options.decoder(tokenizer);
        }
        generate_with_options(self, inputs, config, options)
    }

    /// Generate, calling `on_step` with the tokens of each step (`streamer=`);
    /// `ControlFlow::Break` stops generation there. Beam search does not stream (its beams are
    /// ranked at the end, and `transformers` refuses a streamer with it): use
    /// [`GenerationMixin::generate_output`] for it.
    fn generate_stream(
        &self,
        inputs: impl IntoPrompts,
        config: &GenerationConfig,
        tokenizer: Option<&PreTrainedTokenizer>,
        on_step: impl FnMut(&StepTokens) -> ControlFlow<()>,
    ) -> Result<GenerateOutput> {
        self.generator(inputs, config, tokenizer)?.run(on_step)
    }

    /// The decoding loop as an iterator of [`StepTokens`], one per step.
    fn generator<'a>(
        &'a self,
        inputs: impl IntoPrompts,
        config: &GenerationConfig,
        tokenizer: Option<&'a PreTrainedTokenizer>,
    ) -> Result<Generator<'a, Self>> {
        let mut options = GenerateOptions::new();
        if let Some(tokenizer) = tokenizer {
            options = options.decoder(tokenizer);
        }
        Generator::with_options(self, inputs, config, options)
    }

    /// Generate a continuation of each prompt text and return the new text of each (special
    /// tokens skipped; `num_return_sequences` texts per prompt in a row). The prompts are
    /// encoded with special tokens and left-padded.
    fn generate_text(
        &self,
        tokenizer: &PreTrainedTokenizer,
        prompts: &[&str],
        config: &GenerationConfig,
    ) -> Result<Vec<String>> {
        let inputs = encode_left_padded(tokenizer, prompts, config)?;
        let out = self.generate_output(inputs, config, Some(tokenizer))?;
        (0..out.sequences.len()).map(|row| tokenizer.decode(out.generated(row), true)).collect()
    }

    /// Generate from one prompt text, calling `on_text` with each new piece of text as soon as
    /// it is complete ([`TextStreamer`]); `ControlFlow::Break` stops generation. Returns the
    /// whole generated text.
    fn stream_text(
        &self,
        tokenizer: &PreTrainedTokenizer,
        prompt: &str,
        config: &GenerationConfig,
        mut on_text: impl FnMut(&str) -> ControlFlow<()>,
    ) -> Result<String> {
        let mut pieces = self.text_stream(tokenizer, prompt, config)?;
        for piece in pieces.by_ref() {
            if on_text(&piece?).is_break() {
                pieces.generator.stop();
                break;
            }
        }
        let out = pieces.generator.into_output();
        tokenizer.decode(out.generated(0), true)
    }

    /// Generate from one prompt text as an iterator of text pieces
    /// (`TextIteratorStreamer`).
    fn text_stream<'a>(
        &'a self,
        tokenizer: &'a PreTrainedTokenizer,
        prompt: &str,
        config: &GenerationConfig,
    ) -> Result<TextStream<'a, Self>> {
        let inputs = encode_left_padded(tokenizer, &[prompt], config)?;
        let generator = self.generator(inputs, config, Some(tokenizer))?;
        Ok(TextStream { generator, streamer: TextStreamer::new(tokenizer).skip_special_tokens(true), ended: false })
    }
}

impl<M: ForCausalLm + ?Sized> GenerationMixin for M {}

/// Text generation on sequence-to-sequence models (`transformers`' `GenerationMixin` on
/// encoder-decoders: T5, BART, ...), for any [`ForSeq2SeqLm`], including
/// `Box<dyn ForSeq2SeqLm>`: the encoder runs once, the decoder one token per step on its
/// cache; greedy, sampling or beam search (`num_beams`, `length_penalty`, `early_stopping`).
///
/// ```no_run
/// use autocandle::{AutoModelForSeq2SeqLM, AutoTokenizer, GenerationConfig, Seq2SeqGenerationMixin};
/// # fn main() -> autocandle::Result<()> {
/// let tok = AutoTokenizer::from_pretrained("google-t5/t5-small")?;
/// let model = AutoModelForSeq2SeqLM::from_pretrained("google-t5/t5-small")?;
/// let config = GenerationConfig::from_pretrained("google-t5/t5-small")?.max_new_tokens(40).num_beams(4);
/// let out = model.generate_text(&tok, &["translate English to German: The house is wonderful."], &config)?;
/// println!("{}", out[0]);
/// # Ok(()) }
/// ```
pub trait Seq2SeqGenerationMixin: ForSeq2SeqLm {
    /// Generate from encoder inputs (`input_ids`, `attention_mask`) and return each output row:
    /// the decoder start token, then the generated tokens (`transformers`' `generate`).
    fn generate(&self, inputs: &ModelInputs, config: &GenerationConfig) -> Result<Vec<Vec<u32>>> {
        Ok(self.generate_output(inputs, config, None)?.sequences)
    }

    /// Generate with each row's generated length and finish reason; the tokenizer is needed
    /// for `stop_strings`.
    fn generate_output(
        &self,
        inputs: &ModelInputs,
        config: &GenerationConfig,
        tokenizer: Option<&PreTrainedTokenizer>,
    ) -> Result<GenerateOutput> {
        let mut options = GenerateOptions::new();
        if let Some(tokenizer) = tokenizer {
            options = options.decoder(tokenizer);
        }
        generate_seq2seq(self, inputs, config, options)
    }

    /// Encode `texts` (with special tokens, padded), generate, and return the text of each
    /// output (special tokens skipped; `num_return_sequences` outputs per text in a row).
    fn generate_text(
        &self,
        tokenizer: &PreTrainedTokenizer,
        texts: &[&str],
        config: &GenerationConfig,
    ) -> Result<Vec<String>> {
        let inputs =
            tokenizer.encode_batch(texts, &EncodeOptions::new().padding(Padding::Longest))?.to_inputs(self.device())?;
        let out = self.generate_output(&inputs, config, Some(tokenizer))?;
        (0..out.sequences.len()).map(|row| tokenizer.decode(out.generated(row), true)).collect()
    }
}

impl<M: ForSeq2SeqLm + ?Sized> Seq2SeqGenerationMixin for M {}

/// Encode `prompts` with special tokens and pad them on the left, whatever the tokenizer's
/// padding side, with the pad token of the generation config, its EOS, or the tokenizer's.
fn encode_left_padded(tokenizer: &PreTrainedTokenizer, prompts: &[&str], config: &GenerationConfig) -> Result<Prompts> {
    let enc = tokenizer.encode_batch(prompts, &EncodeOptions::new())?;
    let pad = config
        .pad_token_id
        .or_else(|| config.eos_token_id.as_ref().and_then(|e| e.first().copied()))
        .or_else(|| tokenizer.special_token_id("pad_token"))
        .unwrap_or(0);
    Ok(left_pad(enc.input_ids, pad))
}

/// Pad `rows` on the left with `pad`, with the attention mask that hides it.
fn left_pad(rows: Vec<Vec<u32>>, pad: u32) -> Prompts {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut ids = Vec::with_capacity(rows.len());
    let mut mask = Vec::with_capacity(rows.len());
    for row in rows {
        let fill = width - row.len();
        mask.push([vec![0; fill], vec![1; row.len()]].concat());
        ids.push([vec![pad; fill], row].concat());
    }
    Prompts::new(ids).with_attention_mask(mask)
}

/// Text pieces of a generation, as [`TextStreamer`] releases them
/// ([`GenerationMixin::text_stream`]).
pub struct TextStream<'a, M: ForCausalLm + ?Sized> {
    generator: Generator<'a, M>,
    streamer: TextStreamer<'a>,
    ended: bool,
}

impl<M: ForCausalLm + ?Sized> std::fmt::Debug for TextStream<'_, M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextStream").field("generator", &self.generator).finish_non_exhaustive()
    }
}

impl<'a, M: ForCausalLm + ?Sized> TextStream<'a, M> {
    /// Stop generating; the text generated so far is still released.
    pub fn stop(&mut self) {
        self.generator.stop();
    }

    /// The generation result so far.
    pub fn into_output(self) -> GenerateOutput {
        self.generator.into_output()
    }
}

impl<M: ForCausalLm + ?Sized> Iterator for TextStream<'_, M> {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Result<String>> {
        loop {
            match self.generator.next_step() {
                Err(e) => return Some(Err(e)),
                Ok(Some(step)) => {
                    if !step.active[0] {
                        continue;
                    }
                    match self.streamer.put(&step.tokens[..1]) {
                        Ok(piece) if piece.is_empty() => continue,
                        other => return Some(other),
                    }
                }
                Ok(None) if self.ended => return None,
                Ok(None) => {
                    self.ended = true;
                    return match self.streamer.end() {
                        Ok(piece) if piece.is_empty() => None,
                        other => Some(other),
                    };
                }
            }
        }
    }
}

/// Turns streamed tokens into text (`transformers.TextStreamer`): it decodes everything
/// since the last line break and releases text only up to the last space, whole CJK
/// characters, and whole lines, so pieces never end inside a word or a multi-byte character.
pub struct TextStreamer<'a> {
    decoder: &'a dyn TokenDecoder,
    skip_prompt: bool,
    skip_special_tokens: bool,
    token_cache: Vec<u32>,
    print_len: usize,
    next_tokens_are_prompt: bool,
}

impl std::fmt::Debug for TextStreamer<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextStreamer")
            .field("skip_prompt", &self.skip_prompt)
            .field("skip_special_tokens", &self.skip_special_tokens)
            .field("token_cache", &self.token_cache)
            .field("print_len", &self.print_len)
            .finish_non_exhaustive()
    }
}

impl<'a> TextStreamer<'a> {
    /// A streamer decoding with `decoder` (usually the tokenizer), special tokens kept.
    pub fn new(decoder: &'a dyn TokenDecoder) -> Self {
        Self {
            decoder,
            skip_prompt: false,
            skip_special_tokens: false,
            token_cache: Vec::new(),
            print_len: 0,
            next_tokens_are_prompt: true,
        }
    }

    /// Ignore the first [`TextStreamer::put`] (the prompt), as `skip_prompt=True`.
    pub fn skip_prompt(mut self, yes: bool) -> Self {
        self.skip_prompt = yes;
        self
    }

    /// Leave special tokens out of the text.
    pub fn skip_special_tokens(mut self, yes: bool) -> Self {
        self.skip_special_tokens = yes;
        self
    }

    /// Add tokens; returns the text that became final (possibly empty).
    pub fn put(&mut self, ids: &[u32]) -> Result<String> {
        if self.skip_prompt && self.next_tokens_are_prompt {
            self.next_tokens_are_prompt = false;
            return Ok(String::new());
        }
        self.next_tokens_are_prompt = false;
        self.token_cache.extend_from_slice(ids);
        let text = self.decoder.decode(&self.token_cache, self.skip_special_tokens)?;
        let start = self.print_len.min(text.len());
        if text.ends_with('\n') {
            let piece = text.get(start..).unwrap_or_default().to_owned();
            self.token_cache.clear();
            self.print_len = 0;
            return Ok(piece);
        }
        let end = match text.chars().next_back() {
            Some(c) if is_cjk(c) => text.len(),
            _ => text.rfind(' ').map_or(0, |i| i + 1),
        };
        let piece = if end > start { text.get(start..end).unwrap_or_default().to_owned() } else { String::new() };
        self.print_len += piece.len();
        Ok(piece)
    }

    /// Release what is left and reset for the next generation.
    pub fn end(&mut self) -> Result<String> {
        let piece = if self.token_cache.is_empty() {
            String::new()
        } else {
            let text = self.decoder.decode(&self.token_cache, self.skip_special_tokens)?;
            text.get(self.print_len.min(text.len())..).unwrap_or_default().to_owned()
        };
        self.token_cache.clear();
        self.print_len = 0;
        self.next_tokens_are_prompt = true;
        Ok(piece)
    }
}

/// Whether `c` is in a CJK Unicode block (`TextStreamer._is_chinese_char`).
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F | 0x2B740..=0x2B81F
        | 0x2B820..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}
