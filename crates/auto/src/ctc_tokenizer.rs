//! `Wav2Vec2CtcTokenizer`: `transformers`' `Wav2Vec2CTCTokenizer` (characters in `vocab.json`,
//! CTC decoding with repeat collapsing, blank removal, word delimiters and offsets).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde_json::Value;

use autocandle_core::hub::ModelSource;
use autocandle_core::{Error, LoadOptions, Result};

use crate::tokenizer::read_json;

/// One decoded character and the logit frames it spans (`start_offset..end_offset`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharOffset {
    /// The character (the word delimiter comes out as a space).
    pub char: String,
    /// First logit frame of the character.
    pub start_offset: usize,
    /// One past its last logit frame.
    pub end_offset: usize,
}

/// One decoded word and the logit frames it spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WordOffset {
    /// The word.
    pub word: String,
    /// First logit frame of the word.
    pub start_offset: usize,
    /// One past its last logit frame.
    pub end_offset: usize,
}

/// `decode(..., output_char_offsets=True, output_word_offsets=True)`: the text and the offsets.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CtcDecoding {
    /// The decoded text.
    pub text: String,
    /// Each character kept after CTC grouping, with its frames.
    pub char_offsets: Vec<CharOffset>,
    /// Each word, with its frames.
    pub word_offsets: Vec<WordOffset>,
}

/// Options of [`Wav2Vec2CtcTokenizer::decode_with`] (`transformers`' `decode` keywords).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CtcDecodeOptions {
    /// Drop special tokens (not the word delimiter) before grouping.
    pub skip_special_tokens: bool,
    /// Collapse repeated tokens (CTC); `false` for plain label sequences.
    pub group_tokens: bool,
    /// `clean_up_tokenization_spaces` (`None`: the tokenizer's setting).
    pub clean_up_tokenization_spaces: Option<bool>,
    /// Join tokens with spaces.
    pub spaces_between_special_tokens: bool,
}

impl Default for CtcDecodeOptions {
    fn default() -> Self {
        Self {
            skip_special_tokens: false,
            group_tokens: true,
            clean_up_tokenization_spaces: None,
            spaces_between_special_tokens: false,
        }
    }
}

/// `transformers`' `Wav2Vec2CTCTokenizer` from `vocab.json`, `tokenizer_config.json` and
/// `special_tokens_map.json`.
#[derive(Debug, Clone)]
pub struct Wav2Vec2CtcTokenizer {
    encoder: HashMap<String, u32>,
    decoder: HashMap<u32, String>,
    /// Multi-character tokens, longest first: never split when encoding.
    whole_tokens: Vec<String>,
    special: HashSet<String>,
    pad_token: String,
    unk_token: String,
    word_delimiter_token: String,
    replace_word_delimiter_char: String,
    do_lower_case: bool,
    clean_up_tokenization_spaces: bool,
}

impl Wav2Vec2CtcTokenizer {
    /// Load from a Hub repo id or a local folder.
    pub fn from_pretrained(id_or_path: &str) -> Result<Self> {
        Self::from_pretrained_with(id_or_path, &LoadOptions::default())
    }

    /// [`Wav2Vec2CtcTokenizer::from_pretrained`] with options (revision, cache, subfolder, ...).
    pub fn from_pretrained_with(id_or_path: &str, opts: &LoadOptions) -> Result<Self> {
        let source = ModelSource::resolve(id_or_path, opts)?;
        let vocab = source.file("vocab.json")?;
        let config = source.optional_file("tokenizer_config.json")?;
        let special = source.optional_file("special_tokens_map.json")?;
        Self::from_files(&vocab, config.as_deref(), special.as_deref())
    }

    /// Load from the files themselves (`tokenizer_config.json` and `special_tokens_map.json`
    /// are optional; `transformers`' defaults fill in).
    pub fn from_files(
        vocab: &Path,
        tokenizer_config: Option<&Path>,
        special_tokens_map: Option<&Path>,
    ) -> Result<Self> {
        // Each settings file, when there, holds an object (as `transformers` requires).
        let settings = |file: Option<&Path>| -> Result<Value> {
            match file {
                Some(p) => match read_json(p)? {
                    value @ Value::Object(_) => Ok(value),
                    other => Err(Error::config(
                        "Wav2Vec2CTCTokenizer",
                        format!("`{}` must hold a JSON object, found {other}", p.display()),
                    )),
                },
                None => Ok(Value::Object(Default::default())),
            }
        };
        let config = settings(tokenizer_config)?;
        let map = settings(special_tokens_map)?;
        let token = |key: &str, default: &str| -> String {
            let content = |v: &Value| match v {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_owned),
                _ => None,
            };
            config.get(key).and_then(content).or_else(|| map.get(key).and_then(content)).unwrap_or(default.to_owned())
        };
        let flag = |key: &str, default: bool| config.get(key).and_then(Value::as_bool).unwrap_or(default);
        let bad = |m: String| Error::config("Wav2Vec2CTCTokenizer", m);
        let vocab_json = read_json(vocab)?;
        let Value::Object(entries) = vocab_json else {
            return Err(bad(format!("`{}` must hold a JSON object of token -> id", vocab.display())));
        };
        // Multilingual (MMS) vocabularies nest one vocabulary per language.
        let entries = match (entries.values().next(), config.get("target_lang").and_then(Value::as_str)) {
            (Some(Value::Object(_)), lang) => {
                let langs: Vec<&String> = entries.keys().collect();
                let lang = lang.ok_or_else(|| {
                    bad(format!(
                        "`{}` holds one vocabulary per language: set `target_lang` (one of {langs:?})",
                        vocab.display()
                    ))
                })?;
                match entries.get(lang) {
                    Some(Value::Object(inner)) => inner.clone(),
                    _ => {
                        return Err(bad(format!("`target_lang` `{lang}` is not in `{}` ({langs:?})", vocab.display())))
                    }
                }
            }
            _ => entries,
        };
        let mut encoder = HashMap::new();
        for (tok, id) in &entries {
            let id = id
                .as_u64()
                .and_then(|i| u32::try_from(i).ok())
                .ok_or_else(|| bad(format!("`{}`: the id of `{tok}` is not a token id: {id}", vocab.display())))?;
            encoder.insert(tok.clone(), id);
        }
        let mut decoder: HashMap<u32, String> = encoder.iter().map(|(t, &i)| (i, t.clone())).collect();
        // Added tokens beyond the vocabulary (`added_tokens_decoder` of tokenizer_config.json).
        if let Some(Value::Object(added)) = config.get("added_tokens_decoder") {
            for (id, entry) in added {
                if let (Ok(id), Some(content)) = (id.parse::<u32>(), entry.get("content").and_then(Value::as_str)) {
                    decoder.entry(id).or_insert_with(|| content.to_owned());
                    encoder.entry(content.to_owned()).or_insert(id);
                }
            }
        }
        let (bos, eos) = (token("bos_token", "<s>"), token("eos_token", "</s>"));
        let (unk_token, pad_token) = (token("unk_token", "<unk>"), token("pad_token", "<pad>"));
        let word_delimiter_token = token("word_delimiter_token", "|");
        let mut special: HashSet<String> = [bos, eos, unk_token.clone(), pad_token.clone()].into_iter().collect();
        if let Some(Value::Array(extra)) =
            config.get("additional_special_tokens").or_else(|| map.get("additional_special_tokens"))
        {
            special.extend(extra.iter().filter_map(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_owned),
                _ => None,
            }));
        }
        let mut whole_tokens: Vec<String> = encoder.keys().filter(|t| t.chars().count() > 1).cloned().collect();
        whole_tokens.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        let replace_word_delimiter_char =
            config.get("replace_word_delimiter_char").and_then(Value::as_str).unwrap_or(" ").to_owned();
        Ok(Self {
            encoder,
            decoder,
            whole_tokens,
            special,
            pad_token,
            unk_token,
            word_delimiter_token,
            replace_word_delimiter_char,
            do_lower_case: flag("do_lower_case", false),
            clean_up_tokenization_spaces: flag("clean_up_tokenization_spaces", false),
        })
    }

    /// The number of tokens in the vocabulary.
    pub fn vocab_size(&self) -> usize {
        self.decoder.len()
    }

    /// The id of `token`, if it is in the vocabulary.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.encoder.get(token).copied()
    }

    /// The token of `id` (the unknown token for an id outside the vocabulary).
    pub fn id_to_token(&self, id: u32) -> &str {
        self.decoder.get(&id).map_or(self.unk_token.as_str(), String::as_str)
    }

    /// The padding token, CTC's blank.
    pub fn pad_token(&self) -> &str {
        &self.pad_token
    }

    /// The id of the padding (blank) token.
    pub fn pad_token_id(&self) -> Option<u32> {
        self.token_to_id(&self.pad_token)
    }

    /// The word delimiter token (`|`).
    pub fn word_delimiter_token(&self) -> &str {
        &self.word_delimiter_token
    }

    /// The id of the word delimiter token.
    pub fn word_delimiter_token_id(&self) -> Option<u32> {
        self.token_to_id(&self.word_delimiter_token)
    }

    /// Whether text is upper-cased for encoding and lower-cased after decoding.
    pub fn do_lower_case(&self) -> bool {
        self.do_lower_case
    }

    /// The tokens of `text`: characters (spaces become the word delimiter), with multi-character
    /// vocabulary entries (`<unk>`, ...) kept whole and the spaces around them dropped.
    pub fn tokenize(&self, text: &str) -> Vec<String> {
        let mut tokens = Vec::new();
        let mut rest = text;
        let mut pending_strip = false;
        while !rest.is_empty() {
            let found = self
                .whole_tokens
                .iter()
                .filter_map(|t| rest.find(t.as_str()).map(|i| (i, t)))
                .min_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.len().cmp(&a.1.len())));
            let (plain, whole, next) = match found {
                Some((i, t)) => (&rest[..i], Some(t), &rest[i + t.len()..]),
                None => (rest, None, ""),
            };
            let mut plain = if pending_strip { plain.trim_start() } else { plain };
            if whole.is_some() {
                plain = plain.trim_end();
            }
            let plain = if self.do_lower_case { plain.to_uppercase() } else { plain.to_owned() };
            for c in plain.chars() {
                tokens.push(if c == ' ' { self.word_delimiter_token.clone() } else { c.to_string() });
            }
            if let Some(t) = whole {
                tokens.push(t.clone());
            }
            pending_strip = whole.is_some();
            rest = next;
        }
        tokens
    }

    /// `tokenizer(text).input_ids`: one id per token, unknown characters as the unknown token.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let unk = self.token_to_id(&self.unk_token);
        self.tokenize(text).iter().filter_map(|t| self.token_to_id(t).or(unk)).collect()
    }

    /// `decode(ids, skip_special_tokens=...)`: CTC decoding (collapse repeats, drop blanks, word
    /// delimiter to space).
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> String {
        self.decode_with(ids, &CtcDecodeOptions { skip_special_tokens, ..Default::default() }).text
    }

    /// `decode(ids, output_char_offsets=True, output_word_offsets=True)`: the text with character
    /// and word offsets in logit frames.
    pub fn decode_with_offsets(&self, ids: &[u32]) -> CtcDecoding {
        self.decode_with(ids, &CtcDecodeOptions::default())
    }

    /// `batch_decode(sequences, skip_special_tokens=...)`.
    pub fn batch_decode<S: AsRef<[u32]>>(&self, sequences: &[S], skip_special_tokens: bool) -> Vec<String> {
        sequences.iter().map(|s| self.decode(s.as_ref(), skip_special_tokens)).collect()
    }

    /// `decode` with every option; offsets are always computed.
    pub fn decode_with(&self, ids: &[u32], opts: &CtcDecodeOptions) -> CtcDecoding {
        let tokens: Vec<&str> = ids
            .iter()
            .map(|&i| self.id_to_token(i))
            .filter(|t| !(opts.skip_special_tokens && self.special.contains(*t) && *t != self.word_delimiter_token))
            .collect();
        // CTC grouping: (token, repetitions).
        let mut groups: Vec<(&str, usize)> = Vec::new();
        for t in tokens {
            match groups.last_mut() {
                Some((last, n)) if opts.group_tokens && *last == t => *n += 1,
                _ => groups.push((t, 1)),
            }
        }
        let mut char_offsets = Vec::new();
        let mut end = 0;
        for (t, n) in groups {
            let start = end;
            end += n;
            if t == self.pad_token {
                continue;
            }
            let char =
                if t == self.word_delimiter_token { self.replace_word_delimiter_char.clone() } else { t.to_owned() };
            char_offsets.push(CharOffset { char, start_offset: start, end_offset: end });
        }
        let word_offsets = word_offsets(&char_offsets, &self.replace_word_delimiter_char);
        let join = if opts.spaces_between_special_tokens { " " } else { "" };
        let mut text = char_offsets.iter().map(|c| c.char.as_str()).collect::<Vec<_>>().join(join).trim().to_owned();
        if self.do_lower_case {
            text = text.to_lowercase();
        }
        if opts.clean_up_tokenization_spaces.unwrap_or(self.clean_up_tokenization_spaces) {
            text = clean_up_tokenization(&text);
        }
        CtcDecoding { text, char_offsets, word_offsets }
    }
}

/// `Wav2Vec2CTCTokenizer._get_word_offsets`: runs of non-delimiter characters.
fn word_offsets(chars: &[CharOffset], delimiter: &str) -> Vec<WordOffset> {
    let mut words = Vec::new();
    let mut current: Option<WordOffset> = None;
    for c in chars {
        if c.char == delimiter {
            words.extend(current.take());
        } else {
            match &mut current {
                Some(w) => {
                    w.word.push_str(&c.char);
                    w.end_offset = c.end_offset;
                }
                None => {
                    current = Some(WordOffset {
                        word: c.char.clone(),
                        start_offset: c.start_offset,
                        end_offset: c.end_offset,
                    })
                }
            }
        }
    }
    words.extend(current);
    words
}

/// `transformers`' `clean_up_tokenization`.
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

#[cfg(test)]
mod tests {
    use super::*;

    fn tokenizer() -> Wav2Vec2CtcTokenizer {
        let dir = std::env::temp_dir().join(format!("autocandle-ctc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let vocab = dir.join("vocab.json");
        std::fs::write(&vocab, r#"{"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4, "A": 5, "B": 6, "C": 7}"#)
            .unwrap();
        let config = dir.join("tokenizer_config.json");
        std::fs::write(&config, r#"{"do_lower_case": true}"#).unwrap();
        Wav2Vec2CtcTokenizer::from_files(&vocab, Some(&config), None).unwrap()
    }

    #[test]
    fn ctc_grouping_and_offsets() {
        let tok = tokenizer();
        let ids = [0, 5, 5, 0, 5, 6, 4, 4, 7, 0];
        let out = tok.decode_with_offsets(&ids);
        assert_eq!(out.text, "aab c");
        assert_eq!(out.word_offsets.len(), 2);
        assert_eq!((out.word_offsets[1].start_offset, out.word_offsets[1].end_offset), (8, 9));
        assert_eq!(tok.encode("ab c"), vec![5, 6, 4, 7]);
        assert_eq!(tok.encode("ab <unk> x"), vec![5, 6, 3, 3]);
    }
}
