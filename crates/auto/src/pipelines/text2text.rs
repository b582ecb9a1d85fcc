//! The text2text-generation, summarization and translation pipelines after `transformers`
//! 4.57's `Text2TextGenerationPipeline`, `SummarizationPipeline` and `TranslationPipeline`
//! (5.x removed them): a sequence-to-sequence model ([`Seq2SeqGenerationMixin`]) generates
//! from each input text, after the prefix and generation settings that the config's
//! `task_specific_params` give the task (T5's `"summarize: "`, `"translate English to
//! German: "`).
//!
//! The generation settings follow 4.57's precedence: a call's settings, then the task's
//! `task_specific_params`, then the pipeline's defaults (256 new tokens, 4 beams), then the
//! model's `generation_config.json`. The pipeline's defaults beat the model's own values, as in
//! 4.57, except that a model `max_length` other than 20 replaces the 256 new tokens.

use autocandle_core::{Error, ForSeq2SeqLm, LoadOptions, ModelInputs, PretrainedConfig, Result};
use autocandle_generation::GenerationConfig;
use candle_core::Tensor;
use serde_json::{Map, Value};

use crate::{
    AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer, EncodeOptions, PreTrainedTokenizer, Seq2SeqGenerationMixin,
};

/// The pipeline's own defaults (`_default_generation_config`).
const DEFAULT_MAX_NEW_TOKENS: usize = 256;
const DEFAULT_NUM_BEAMS: usize = 4;
/// `transformers`' global default `max_length`.
const GLOBAL_MAX_LENGTH: usize = 20;

/// Options of a call of the text-to-text pipelines.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Text2TextOptions {
    /// Generation settings of this call (`generate_kwargs`); unset fields come from the
    /// pipeline's [`generation_config`](Text2TextGenerationPipeline::generation_config).
    pub generation: Option<GenerationConfig>,
    /// Clean up the decoded text (`clean_up_tokenization_spaces`, default false: " ." and
    /// the like are kept).
    pub clean_up_tokenization_spaces: bool,
    /// Truncate the input to the tokenizer's `model_max_length` (default false).
    pub truncation: bool,
    /// Stop at the first token of this text instead of the EOS token (`stop_sequence`).
    pub stop_sequence: Option<String>,
}

/// One generated sequence: `{"generated_text"}` / `{"summary_text"}` /
/// `{"translation_text"}`, and the ids that `return_tensors=True` gives
/// (`*_token_ids`: the decoder start token, the generated tokens and any filler).
#[derive(Debug, Clone, PartialEq)]
pub struct Text2TextOutput {
    /// The sequence decoded with special tokens skipped.
    pub text: String,
    /// The whole output row of `generate`.
    pub token_ids: Vec<u32>,
}

/// Which of the three pipelines: the key of the results and the input checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text2Text,
    Summarization,
    Translation,
}

/// What the three pipelines share: model, tokenizer and the pipeline's generation settings.
#[derive(Debug)]
struct Seq2SeqText {
    kind: Kind,
    task: String,
    tokenizer: PreTrainedTokenizer,
    model: Box<dyn ForSeq2SeqLm>,
    /// The model's `generation_config.json` (or `config.json` fields).
    model_generation_config: GenerationConfig,
    generation_config: GenerationConfig,
    prefix: Option<String>,
}

impl Seq2SeqText {
    fn load(kind: Kind, task: &str, model: &str, opts: &LoadOptions) -> Result<Self> {
        super::traced(task, model, || {
            let tokenizer = AutoTokenizer::from_pretrained_with(model, opts)?;
            let config = AutoConfig::from_pretrained_with(model, opts)?.value;
            let model_generation_config = GenerationConfig::from_pretrained_with(model, opts)?;
            let task = match (kind, task) {
                // `pipeline("translation")` picks the first `translation_XX_to_YY` of the config.
                (Kind::Translation, "translation") => task_specific_params(&config)
                    .and_then(|params| params.keys().find(|k| k.starts_with("translation")).cloned())
                    .unwrap_or_else(|| task.to_owned()),
                _ => task.to_owned(),
            };
            if kind == Kind::Translation {
                check_translation_tokenizer(&tokenizer)?;
            }
            let (generation_config, prefix) = pipeline_generation_config(
                &config,
                &model_generation_config,
                &task,
                tokenizer.special_token_id("pad_token"),
            )?;
            let model = AutoModelForSeq2SeqLM::from_pretrained_with(model, opts)?.value;
            Ok(Self { kind, task, tokenizer, model, model_generation_config, generation_config, prefix })
        })
    }

    fn call_with(&self, text: &str, opts: &Text2TextOptions) -> Result<Vec<Text2TextOutput>> {
        let input = format!("{}{text}", self.prefix.as_deref().unwrap_or(""));
        let encode = EncodeOptions::new().truncation(opts.truncation);
        let batch = self.tokenizer.encode_batch_with(&[input.as_str()], None, &encode)?;
        let (Some(ids), Some(mask)) = (batch.input_ids.first(), batch.attention_mask.first()) else {
            return Err(Error::input("the tokenizer returned no encoding for the input"));
        };
        let device = self.model.device();
        let row = |v: &[u32]| Tensor::from_slice(v, (1, v.len()), device);
        // `token_type_ids` are dropped: they are no input of `generate`.
        let inputs = ModelInputs::new(row(ids)?).with_attention_mask(row(mask)?);
        let mut config = match &opts.generation {
            Some(call) => call.clone().fill_from(&self.generation_config),
            None => self.generation_config.clone(),
        };
        // `generate` falls back to the model's settings for what is still unset.
        config = config.fill_from(&self.model_generation_config);
        if let Some(stop) = &opts.stop_sequence {
            let encode = EncodeOptions::new().add_special_tokens(false);
            let stop_ids = self.tokenizer.encode_batch_with(&[stop.as_str()], None, &encode)?.input_ids;
            let first = stop_ids.first().and_then(|ids| ids.first()).ok_or_else(|| {
                Error::input(format!("`stop_sequence` {stop:?} encodes to no token: give a non-empty stop sequence"))
            })?;
            if stop_ids[0].len() > 1 {
                tracing::warn!(
                    "stopping on a multiple token sequence is not supported: the first token of {stop:?} is the stop token"
                );
            }
            config = config.eos_token_id(*first);
        }
        self.check_input(ids.len(), &config);
        let out =
            Seq2SeqGenerationMixin::generate_output(self.model.as_ref(), &inputs, &config, Some(&self.tokenizer))?;
        out.sequences
            .into_iter()
            .map(|token_ids| {
                let mut text = self.tokenizer.decode(&token_ids, true)?;
                if opts.clean_up_tokenization_spaces {
                    text = clean_up_tokenization(&text);
                }
                Ok(Text2TextOutput { text, token_ids })
            })
            .collect()
    }

    /// `check_inputs`: the summarization and translation pipelines warn about lengths.
    fn check_input(&self, input_length: usize, config: &GenerationConfig) {
        let max_length = config.max_length.unwrap_or(GLOBAL_MAX_LENGTH);
        let min_length = config.min_length.unwrap_or(0);
        match self.kind {
            Kind::Text2Text => {}
            Kind::Summarization => {
                if max_length < min_length {
                    tracing::warn!("your min_length={min_length} must be inferior than your max_length={max_length}");
                }
                if input_length < max_length {
                    tracing::warn!(
                        "your max_length is set to {max_length}, but your input_length is only {input_length}: for \
                         summarization, where outputs shorter than the input are typically wanted, consider a smaller \
                         max_length, e.g. {}",
                        input_length / 2
                    );
                }
            }
            Kind::Translation => {
                if input_length as f64 > 0.9 * max_length as f64 {
                    tracing::warn!(
                        "your input_length: {input_length} is bigger than 0.9 * max_length: {max_length}; consider a \
                         larger max_length"
                    );
                }
            }
        }
    }
}

/// The `task_specific_params` of a config, when it has them.
fn task_specific_params(config: &PretrainedConfig) -> Option<&Map<String, Value>> {
    config.raw().get("task_specific_params").and_then(Value::as_object)
}

/// The pipeline's generation config and prefix, as 4.57's `Pipeline.__init__` builds them:
/// the pipeline's defaults (256 new tokens, 4 beams) over the model's settings (a model
/// `max_length` other than 20 drops the 256 new tokens), then the task's
/// `task_specific_params` (its `prefix` replaces the config's `prefix`), then the tokenizer's
/// pad token if none is set.
fn pipeline_generation_config(
    config: &PretrainedConfig,
    model_generation_config: &GenerationConfig,
    task: &str,
    pad_token_id: Option<u32>,
) -> Result<(GenerationConfig, Option<String>)> {
    let defaults = GenerationConfig::new().max_new_tokens(DEFAULT_MAX_NEW_TOKENS).num_beams(DEFAULT_NUM_BEAMS);
    let mut generation = defaults.fill_from(model_generation_config);
    if generation.max_new_tokens == Some(DEFAULT_MAX_NEW_TOKENS)
        && generation.max_length.is_some_and(|m| m != GLOBAL_MAX_LENGTH)
    {
        generation.max_new_tokens = None;
    }
    let mut prefix = config.raw().get("prefix").and_then(Value::as_str).map(str::to_owned);
    if let Some(params) = task_specific_params(config).and_then(|p| p.get(task)).and_then(Value::as_object) {
        let mut params = params.clone();
        if let Some(p) = params.remove("prefix") {
            prefix = p.as_str().map(str::to_owned);
        }
        let origin = format!("config.json: task_specific_params.{task}");
        let task_config = GenerationConfig::from_value(Value::Object(params.clone()), std::path::Path::new(&origin))?;
        let read = serde_json::to_value(&task_config).map_err(|e| Error::input(format!("{origin}: {e}")))?;
        for (key, value) in &params {
            if !value.is_null() && read.get(key).is_none() {
                tracing::warn!("{origin}: `{key}` is not a generation setting autocandle knows; it is ignored");
            }
        }
        generation = task_config.fill_from(&generation);
    }
    if generation.pad_token_id.is_none() {
        generation.pad_token_id = pad_token_id;
    }
    Ok((generation, prefix))
}

/// Tokenizers whose `_build_translation_inputs` makes 4.57 encode translation inputs with
/// `src_lang` / `tgt_lang` (multilingual mBART, M2M100, NLLB, SeamlessM4T); autocandle does
/// not implement that encoding.
const LANGUAGE_TOKENIZERS: &[&str] =
    &["MBartTokenizer", "MBart50Tokenizer", "M2M100Tokenizer", "NllbTokenizer", "SeamlessM4TTokenizer"];

fn check_translation_tokenizer(tokenizer: &PreTrainedTokenizer) -> Result<()> {
    let class = tokenizer.settings().get("tokenizer_class").and_then(Value::as_str).unwrap_or("");
    if LANGUAGE_TOKENIZERS.contains(&class.strip_suffix("Fast").unwrap_or(class)) {
        return Err(Error::Unsupported(format!(
            "translation with the `{class}` tokenizer: its `src_lang` / `tgt_lang` encoding is not implemented in \
             autocandle; use a model whose tokenizer takes plain text (T5, BART, Marian-like)"
        )));
    }
    Ok(())
}

/// `clean_up_tokenization`: remove the spaces before punctuation and English contractions.
fn clean_up_tokenization(text: &str) -> String {
    text.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
}

/// The methods the three pipelines share.
macro_rules! seq2seq_text_methods {
    ($key:literal) => {
        /// The key of the text in `transformers`' results (`"generated_text"`,
        /// `"summary_text"`, `"translation_text"`; the ids are under `*_token_ids`).
        pub const OUTPUT_KEY: &'static str = $key;

        /// The generated sequences for `text` (usually one; `num_return_sequences` with beam
        /// search gives more), with the pipeline's settings.
        pub fn call(&self, text: &str) -> Result<Vec<Text2TextOutput>> {
            self.inner.call_with(text, &Text2TextOptions::default())
        }

        /// The generated sequences for `text` under `opts`.
        pub fn call_with(&self, text: &str, opts: &Text2TextOptions) -> Result<Vec<Text2TextOutput>> {
            self.inner.call_with(text, opts)
        }

        /// The generated sequences for each of `texts`, one input at a time as the pipeline
        /// runs a list (no padding between inputs).
        pub fn call_batch(&self, texts: &[&str], opts: &Text2TextOptions) -> Result<Vec<Vec<Text2TextOutput>>> {
            texts.iter().map(|text| self.inner.call_with(text, opts)).collect()
        }

        /// The generation settings calls start from: the task's `task_specific_params` over
        /// the pipeline's defaults (256 new tokens, 4 beams) over the model's generation config.
        pub fn generation_config(&self) -> &GenerationConfig {
            &self.inner.generation_config
        }

        /// The text put before each input (the config's `prefix`, or the task's in
        /// `task_specific_params`).
        pub fn prefix(&self) -> Option<&str> {
            self.inner.prefix.as_deref()
        }

        /// The task whose `task_specific_params` apply.
        pub fn task(&self) -> &str {
            &self.inner.task
        }

        /// The tokenizer.
        pub fn tokenizer(&self) -> &PreTrainedTokenizer {
            &self.inner.tokenizer
        }
    };
}

/// Generate text from text with a sequence-to-sequence model (`text2text-generation`).
#[derive(Debug)]
pub struct Text2TextGenerationPipeline {
    inner: Seq2SeqText,
}

impl Text2TextGenerationPipeline {
    seq2seq_text_methods!("generated_text");

    /// Load the model (`AutoModelForSeq2SeqLM`), tokenizer and generation config at `model`.
    pub fn new(model: &str) -> Result<Self> {
        Self::new_with(model, &LoadOptions::default())
    }

    /// [`Text2TextGenerationPipeline::new`] with loading options.
    pub fn new_with(model: &str, opts: &LoadOptions) -> Result<Self> {
        Ok(Self { inner: Seq2SeqText::load(Kind::Text2Text, "text2text-generation", model, opts)? })
    }
}

/// Summarize texts with a sequence-to-sequence model (`summarization`; T5 gets its
/// `"summarize: "` prefix from `task_specific_params`).
#[derive(Debug)]
pub struct SummarizationPipeline {
    inner: Seq2SeqText,
}

impl SummarizationPipeline {
    seq2seq_text_methods!("summary_text");

    /// Load the model (`AutoModelForSeq2SeqLM`), tokenizer and generation config at `model`.
    pub fn new(model: &str) -> Result<Self> {
        Self::new_with(model, &LoadOptions::default())
    }

    /// [`SummarizationPipeline::new`] with loading options.
    pub fn new_with(model: &str, opts: &LoadOptions) -> Result<Self> {
        Ok(Self { inner: Seq2SeqText::load(Kind::Summarization, "summarization", model, opts)? })
    }
}

/// Translate texts with a sequence-to-sequence model (`translation`,
/// `translation_XX_to_YY`; T5 gets its `"translate English to German: "` prefix from
/// `task_specific_params`).
#[derive(Debug)]
pub struct TranslationPipeline {
    inner: Seq2SeqText,
}

impl TranslationPipeline {
    seq2seq_text_methods!("translation_text");

    /// Load the model at `model` for the task `translation`: the first
    /// `translation_XX_to_YY` entry of the config's `task_specific_params`, if any (as
    /// `pipeline("translation")` does).
    pub fn new(model: &str) -> Result<Self> {
        Self::new_with(model, &LoadOptions::default())
    }

    /// [`TranslationPipeline::new`] with loading options.
    pub fn new_with(model: &str, opts: &LoadOptions) -> Result<Self> {
        Self::for_task(model, "translation", opts)
    }

    /// Load the model at `model` for `task`: `"translation"` or `"translation_XX_to_YY"`
    /// (e.g. `"translation_en_to_de"`, whose `task_specific_params` then apply).
    pub fn for_task(model: &str, task: &str, opts: &LoadOptions) -> Result<Self> {
        let task = task.trim();
        if task != "translation" && language_pair(task).is_none() {
            return Err(Error::input(format!("invalid translation task `{task}`: use `translation_XX_to_YY`")));
        }
        Ok(Self { inner: Seq2SeqText::load(Kind::Translation, task, model, opts)? })
    }

    /// The source and target languages of the task name (`translation_en_to_de` -> `en`,
    /// `de`); they do not change how T5 or BART encode the input, as in 4.57.
    pub fn languages(&self) -> Option<(&str, &str)> {
        language_pair(&self.inner.task)
    }
}

/// `("xx", "yy")` of a task `translation_xx_to_yy`.
pub(crate) fn language_pair(task: &str) -> Option<(&str, &str)> {
    let parts: Vec<&str> = task.split('_').collect();
    match parts.as_slice() {
        // Both languages named (`translation_en_to_` names no target).
        ["translation", src, "to", tgt] if !src.is_empty() && !tgt.is_empty() => Some((src, tgt)),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn translation_task_names() {
        assert_eq!(language_pair("translation_en_to_de"), Some(("en", "de")));
        assert_eq!(language_pair("translation_en_to_"), None);
        assert_eq!(language_pair("translation__to_de"), None);
        assert_eq!(language_pair("translation_en_de"), None);
        assert_eq!(language_pair("translation"), None);
    }

    #[test]
    fn cleanup_removes_spaces_before_punctuation() {
        assert_eq!(
            clean_up_tokenization("hello , world . I 'm here ; is n't it ?"),
            "hello, world. I'm here ; isn't it?"
        );
    }

    #[test]
    fn pipeline_defaults_beat_the_model_but_max_length_drops_max_new_tokens() {
        let raw = serde_json::json!({
            "model_type": "tiny-seq2seq",
            "prefix": "generic: ",
            "task_specific_params": {
                "summarization": {"prefix": "summarize: ", "num_beams": 3, "min_length": 5, "typical_p": 0.5}
            }
        });
        let config = PretrainedConfig::from_value(raw, std::path::Path::new("config.json")).unwrap();
        let model = GenerationConfig::new().num_beams(2).eos_token_id(1);
        let (g, prefix) = pipeline_generation_config(&config, &model, "summarization", Some(0)).unwrap();
        assert_eq!(prefix.as_deref(), Some("summarize: "));
        assert_eq!((g.num_beams, g.max_new_tokens, g.min_length), (Some(3), Some(256), Some(5)));
        assert_eq!((g.eos_token_id, g.pad_token_id), (Some(vec![1]), Some(0)));
        let (g, prefix) = pipeline_generation_config(&config, &model, "text2text-generation", None).unwrap();
        assert_eq!(prefix.as_deref(), Some("generic: "));
        assert_eq!(g.num_beams, Some(4));
        let model = GenerationConfig::new().max_length(142);
        let (g, _) = pipeline_generation_config(&config, &model, "summarization", None).unwrap();
        assert_eq!((g.max_new_tokens, g.max_length), (None, Some(142)));
    }
}
