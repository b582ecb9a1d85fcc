//! [`WhisperGenerationConfig`]: the Whisper fields of `generation_config.json` (languages,
//! tasks, timestamp and suppressed tokens) beside the generic [`GenerationConfig`].

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use autocandle_core::hub::ModelSource;
use autocandle_core::{Error, LoadOptions, Result};
use autocandle_generation::GenerationConfig;

use crate::tokenizer::read_json;

/// The generation settings of a Whisper checkpoint (`generation_config.json`, with
/// `max_source_positions`, `max_target_positions` and `vocab_size` from `config.json`), as
/// `WhisperForConditionalGeneration.generate` reads them.
#[derive(Debug, Clone, Default)]
pub struct WhisperGenerationConfig {
    /// The generic fields (`max_length`, `eos_token_id`, `pad_token_id`,
    /// `decoder_start_token_id`, `num_beams`, ...).
    pub generation: GenerationConfig,
    /// Language tokens by name (`"<|en|>"` -> id).
    pub lang_to_id: BTreeMap<String, u32>,
    /// Task tokens by task (`"transcribe"`, `"translate"`).
    pub task_to_id: BTreeMap<String, u32>,
    /// Whether the model knows several languages (English-only checkpoints take no language
    /// or task).
    pub is_multilingual: Option<bool>,
    /// `<|notimestamps|>`; the timestamp tokens follow it (`timestamp_begin` = this + 1).
    pub no_timestamps_token_id: Option<u32>,
    /// `<|startofprev|>`, which starts previous-context tokens (`prompt_ids`).
    pub prev_sot_token_id: Option<u32>,
    /// Tokens never generated.
    pub suppress_tokens: Option<Vec<u32>>,
    /// Tokens not generated first.
    pub begin_suppress_tokens: Option<Vec<u32>>,
    /// The latest timestamp the first generated token may be (index after `<|0.00|>`).
    pub max_initial_timestamp_index: Option<usize>,
    /// Legacy decoder prompt `[[1, lang], [2, task], [3, notimestamps]]`, used only when
    /// neither a language nor a task is given.
    pub forced_decoder_ids: Option<Vec<(usize, Option<u32>)>>,
    /// Default of `return_timestamps`.
    pub return_timestamps: Option<bool>,
    /// Default of `condition_on_prev_tokens`.
    pub condition_on_prev_tokens: Option<bool>,
    /// Encoder positions (`config.json`, default 1500): a window is `2 * max_source_positions`
    /// mel frames (the encoder's two convolutions have strides 1 and 2).
    pub max_source_positions: usize,
    /// Decoder positions (`config.json`, default 448).
    pub max_target_positions: usize,
    /// Vocabulary size (`config.json`).
    pub vocab_size: Option<usize>,
}

/// The Whisper-specific keys of `generation_config.json`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawWhisperFields {
    lang_to_id: BTreeMap<String, u32>,
    task_to_id: BTreeMap<String, u32>,
    is_multilingual: Option<bool>,
    no_timestamps_token_id: Option<u32>,
    prev_sot_token_id: Option<u32>,
    suppress_tokens: Option<Vec<u32>>,
    begin_suppress_tokens: Option<Vec<u32>>,
    max_initial_timestamp_index: Option<usize>,
    forced_decoder_ids: Option<Vec<(usize, Option<u32>)>>,
    return_timestamps: Option<bool>,
    condition_on_prev_tokens: Option<bool>,
}

/// The keys of `config.json` that generation reads.
#[derive(Debug, Deserialize)]
#[serde(default)]
struct RawModelFields {
    max_source_positions: usize,
    max_target_positions: usize,
    vocab_size: Option<usize>,
    decoder_start_token_id: Option<u32>,
    forced_decoder_ids: Option<Vec<(usize, Option<u32>)>>,
    suppress_tokens: Option<Vec<u32>>,
    begin_suppress_tokens: Option<Vec<u32>>,
}

impl Default for RawModelFields {
    fn default() -> Self {
        Self {
            max_source_positions: 1500,
            max_target_positions: 448,
            vocab_size: None,
            decoder_start_token_id: None,
            forced_decoder_ids: None,
            suppress_tokens: None,
            begin_suppress_tokens: None,
        }
    }
}

fn parse<T: for<'de> Deserialize<'de>>(value: Value, path: &Path) -> Result<T> {
    serde_json::from_value(value).map_err(|e| Error::config("whisper generation", format!("`{}`: {e}", path.display())))
}

impl WhisperGenerationConfig {
    /// Load `generation_config.json` and `config.json` from a Hub repo id or a local folder.
    pub fn from_pretrained(id_or_path: &str) -> Result<Self> {
        Self::from_pretrained_with(id_or_path, &LoadOptions::default())
    }

    /// [`WhisperGenerationConfig::from_pretrained`] with options (revision, cache, ...).
    pub fn from_pretrained_with(id_or_path: &str, opts: &LoadOptions) -> Result<Self> {
        let source = ModelSource::resolve(id_or_path, opts)?;
        let generation = source.optional_file("generation_config.json")?;
        let model = source.optional_file("config.json")?;
        if generation.is_none() && model.is_none() {
            return Err(Error::FileNotFound {
                file: "generation_config.json".to_owned(),
                location: source.describe(),
                hint: ": a Whisper checkpoint has `generation_config.json` and `config.json`".to_owned(),
            });
        }
        Self::from_files(generation.as_deref(), model.as_deref())
    }

    /// Read `generation_config.json` and / or `config.json` (either may be missing: the
    /// model config then gives what it has, as `transformers`' `from_model_config`).
    pub fn from_files(generation_config: Option<&Path>, model_config: Option<&Path>) -> Result<Self> {
        let model_value = model_config.map(read_json).transpose()?;
        let model: RawModelFields = match (&model_value, model_config) {
            (Some(v), Some(p)) => parse(v.clone(), p)?,
            _ => RawModelFields::default(),
        };
        let (generation, raw) = match generation_config {
            Some(path) => {
                let value = read_json(path)?;
                (GenerationConfig::from_value(value.clone(), path)?, parse::<RawWhisperFields>(value, path)?)
            }
            None => match (model_value, model_config) {
                (Some(v), Some(p)) => (GenerationConfig::from_model_config_value(v, p)?, RawWhisperFields::default()),
                _ => (GenerationConfig::new(), RawWhisperFields::default()),
            },
        };
        let mut generation = generation;
        if generation.decoder_start_token_id.is_none() {
            generation.decoder_start_token_id = model.decoder_start_token_id;
        }
        Ok(Self {
            generation,
            lang_to_id: raw.lang_to_id,
            task_to_id: raw.task_to_id,
            is_multilingual: raw.is_multilingual,
            no_timestamps_token_id: raw.no_timestamps_token_id,
            prev_sot_token_id: raw.prev_sot_token_id,
            suppress_tokens: raw.suppress_tokens.or(model.suppress_tokens),
            begin_suppress_tokens: raw.begin_suppress_tokens.or(model.begin_suppress_tokens),
            max_initial_timestamp_index: raw.max_initial_timestamp_index,
            forced_decoder_ids: raw.forced_decoder_ids.or(model.forced_decoder_ids),
            return_timestamps: raw.return_timestamps,
            condition_on_prev_tokens: raw.condition_on_prev_tokens,
            max_source_positions: model.max_source_positions,
            max_target_positions: model.max_target_positions,
            vocab_size: model.vocab_size,
        })
    }

    /// The first timestamp token (`<|0.00|>`), right after `<|notimestamps|>`.
    pub fn timestamp_begin(&self) -> Option<u32> {
        self.no_timestamps_token_id.map(|t| t + 1)
    }

    /// The language token of `language`, given as a code (`"en"`), a name (`"english"`) or a
    /// token (`"<|en|>"`), case-insensitively, as `transformers` accepts it.
    pub fn language_token_id(&self, language: &str) -> Result<u32> {
        let lower = language.to_lowercase();
        let token = if self.lang_to_id.contains_key(&lower) {
            lower.clone()
        } else if let Some((_, code)) = LANGUAGE_CODES.iter().find(|(name, _)| *name == lower) {
            format!("<|{code}|>")
        } else if LANGUAGE_CODES.iter().any(|(_, code)| *code == lower) {
            format!("<|{lower}|>")
        } else {
            let known: Vec<String> =
                self.lang_to_id.keys().map(|k| k.trim_matches(['<', '|', '>']).to_owned()).collect();
            return Err(Error::input(format!(
                "unsupported language `{language}`: give a language code such as `en`, a name such as `english` \
                 or a token such as `<|en|>`; this model knows {}",
                known.join(", ")
            )));
        };
        self.lang_to_id.get(&token).copied().ok_or_else(|| {
            Error::input(format!(
                "language `{language}` ({token}) is not in this model's `lang_to_id` (generation_config.json): \
                 pick one of {}",
                self.lang_to_id.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })
    }

    /// The language code of a language token id (`"en"` for the id of `<|en|>`).
    pub fn language_code(&self, id: u32) -> Option<String> {
        self.lang_to_id.iter().find(|(_, v)| **v == id).map(|(k, _)| k.trim_matches(['<', '|', '>']).to_owned())
    }

    /// The task token of `task` (`"transcribe"` or `"translate"`).
    pub fn task_token_id(&self, task: &str) -> Result<u32> {
        if !TASKS.contains(&task) {
            return Err(Error::input(format!(
                "unsupported task `{task}`: the task should be one of `translate`, `transcribe`"
            )));
        }
        self.task_to_id.get(task).copied().ok_or_else(|| {
            Error::config(
                "whisper generation",
                format!("generation_config.json has no `task_to_id` entry for `{task}`: the config is outdated"),
            )
        })
    }
}

/// `transformers`' `TASK_IDS`.
const TASKS: [&str; 2] = ["translate", "transcribe"];

/// `transformers`' `TO_LANGUAGE_CODE`: language names (and aliases) and their codes.
pub(crate) const LANGUAGE_CODES: [(&str, &str); 112] = [
    ("english", "en"),
    ("chinese", "zh"),
    ("german", "de"),
    ("spanish", "es"),
    ("russian", "ru"),
    ("korean", "ko"),
    ("french", "fr"),
    ("japanese", "ja"),
    ("portuguese", "pt"),
    ("turkish", "tr"),
    ("polish", "pl"),
    ("catalan", "ca"),
    ("dutch", "nl"),
    ("arabic", "ar"),
    ("swedish", "sv"),
    ("italian", "it"),
    ("indonesian", "id"),
    ("hindi", "hi"),
    ("finnish", "fi"),
    ("vietnamese", "vi"),
    ("hebrew", "he"),
    ("ukrainian", "uk"),
    ("greek", "el"),
    ("malay", "ms"),
    ("czech", "cs"),
    ("romanian", "ro"),
    ("danish", "da"),
    ("hungarian", "hu"),
    ("tamil", "ta"),
    ("norwegian", "no"),
    ("thai", "th"),
    ("urdu", "ur"),
    ("croatian", "hr"),
    ("bulgarian", "bg"),
    ("lithuanian", "lt"),
    ("latin", "la"),
    ("maori", "mi"),
    ("malayalam", "ml"),
    ("welsh", "cy"),
    ("slovak", "sk"),
    ("telugu", "te"),
    ("persian", "fa"),
    ("latvian", "lv"),
    ("bengali", "bn"),
    ("serbian", "sr"),
    ("azerbaijani", "az"),
    ("slovenian", "sl"),
    ("kannada", "kn"),
    ("estonian", "et"),
    ("macedonian", "mk"),
    ("breton", "br"),
    ("basque", "eu"),
    ("icelandic", "is"),
    ("armenian", "hy"),
    ("nepali", "ne"),
    ("mongolian", "mn"),
    ("bosnian", "bs"),
    ("kazakh", "kk"),
    ("albanian", "sq"),
    ("swahili", "sw"),
    ("galician", "gl"),
    ("marathi", "mr"),
    ("punjabi", "pa"),
    ("sinhala", "si"),
    ("khmer", "km"),
    ("shona", "sn"),
    ("yoruba", "yo"),
    ("somali", "so"),
    ("afrikaans", "af"),
    ("occitan", "oc"),
    ("georgian", "ka"),
    ("belarusian", "be"),
    ("tajik", "tg"),
    ("sindhi", "sd"),
    ("gujarati", "gu"),
    ("amharic", "am"),
    ("yiddish", "yi"),
    ("lao", "lo"),
    ("uzbek", "uz"),
    ("faroese", "fo"),
    ("haitian creole", "ht"),
    ("pashto", "ps"),
    ("turkmen", "tk"),
    ("nynorsk", "nn"),
    ("maltese", "mt"),
    ("sanskrit", "sa"),
    ("luxembourgish", "lb"),
    ("myanmar", "my"),
    ("tibetan", "bo"),
    ("tagalog", "tl"),
    ("malagasy", "mg"),
    ("assamese", "as"),
    ("tatar", "tt"),
    ("hawaiian", "haw"),
    ("lingala", "ln"),
    ("hausa", "ha"),
    ("bashkir", "ba"),
    ("javanese", "jw"),
    ("sundanese", "su"),
    ("cantonese", "yue"),
    ("burmese", "my"),
    ("valencian", "ca"),
    ("flemish", "nl"),
    ("haitian", "ht"),
    ("letzeburgesch", "lb"),
    ("pushto", "ps"),
    ("panjabi", "pa"),
    ("moldavian", "ro"),
    ("moldovan", "ro"),
    ("sinhalese", "si"),
    ("castilian", "es"),
    ("mandarin", "zh"),
];
