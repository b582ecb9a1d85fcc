//! `AutoTokenizer`: `tokenizer.json` through the `tokenizers` crate, or a WordPiece tokenizer
//! built from `vocab.txt` for old BERT repos, with the special tokens, `model_max_length`,
//! padding and truncation of `transformers`' tokenizers.

use std::path::Path;

use autocandle_core::{Error, LoadOptions, ModelInputs, Result};
use candle_core::{Device, Tensor};
use serde_json::Value;
use tokenizers::decoders::wordpiece::WordPiece as WordPieceDecoder;
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::template::TemplateProcessing;
use tokenizers::utils::parallelism::MaybeParallelIterator;
use tokenizers::{
    pad_encodings, truncate_encodings, AddedToken, Encoding, Model, OffsetType, PaddingDirection, PaddingParams,
    PaddingStrategy, PostProcessor, PreTokenizer, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy,
};

/// Loads the tokenizer of a model (`transformers.AutoTokenizer`).
#[derive(Debug, Clone, Copy)]
pub struct AutoTokenizer;

impl AutoTokenizer {
    /// Load the tokenizer of a Hub repo id or a local folder.
    pub fn from_pretrained(id_or_path: &str) -> Result<PreTrainedTokenizer> {
        Self::from_pretrained_with(id_or_path, &LoadOptions::default())
    }

    /// [`AutoTokenizer::from_pretrained`] with options (revision, cache, subfolder, ...).
    pub fn from_pretrained_with(id_or_path: &str, opts: &LoadOptions) -> Result<PreTrainedTokenizer> {
        let _span = tracing::info_span!("load_tokenizer", model = id_or_path).entered();
        let started = std::time::Instant::now();
        let (source, gguf) = autocandle_core::gguf::locate(id_or_path, opts)?;
        if let Some(path) = gguf {
            // transformers builds the tokenizer from the file's metadata alone.
            let file = autocandle_core::gguf::GgufFile::open(&path)?;
            let (tokenizer, settings) = crate::gguf_tokenizer::tokenizer_from_gguf(file.metadata(), &path)?;
            let mut tokenizer = PreTrainedTokenizer::new(tokenizer, &settings, source.name())?;
            tokenizer.file = path.display().to_string();
            tracing::info!(
                source = %source.describe(),
                gguf = %path.display(),
                chat_template = settings.get("chat_template").is_some(),
                elapsed = ?started.elapsed(),
                "tokenizer loaded from GGUF metadata"
            );
            return Ok(tokenizer);
        }
        let mut settings = match source.optional_file("tokenizer_config.json")? {
            Some(p) => checked_settings(read_json(&p)?, &p)?,
            None => Value::Object(Default::default()),
        };
        if let Some(p) = source.optional_file("special_tokens_map.json")? {
            merge_special_tokens(&mut settings, &checked_settings(read_json(&p)?, &p)?);
        }
        #[cfg(feature = "chat")]
        crate::chat::load_template_files(&source, opts, &mut settings)?;
        let has_tokenizer_json = source.optional_file("tokenizer.json")?;
        if has_tokenizer_json.is_none() || is_bert_like(&settings) {
            apply_bert_defaults(&mut settings);
        }
        let (tokenizer, file) = if let Some(path) = has_tokenizer_json {
            tracing::debug!(file = %path.display(), "tokenizer from tokenizer.json");
            // The `tokenizers` crate panics on some malformed files (a decoder entry that is not
            // valid JSON inside): an error naming the file.
            let loaded = crate::panic_guard::catch(|| Tokenizer::from_file(&path))
                .unwrap_or_else(|panic| Err(format!("the file is malformed ({panic})").into()));
            (loaded.map_err(|e| tokenizer_error(&path, e))?, path)
        } else if let Some(vocab) = source.optional_file("vocab.txt")? {
            tracing::debug!(file = %vocab.display(), "WordPiece tokenizer built from vocab.txt (no tokenizer.json)");
            (wordpiece_from_vocab(&vocab, &settings)?, vocab)
        } else {
            return Err(Error::FileNotFound {
                file: "tokenizer.json".to_owned(),
                location: source.describe(),
                hint: ": autocandle needs `tokenizer.json`, or `vocab.txt` for WordPiece (BERT) tokenizers".to_owned(),
            });
        };
        let mut tokenizer = PreTrainedTokenizer::new(tokenizer, &settings, source.name())?;
        tokenizer.file = file.display().to_string();
        tracing::info!(
            source = %source.describe(),
            class = tokenizer_class(&settings),
            chat_template = settings.get("chat_template").is_some(),
            elapsed = ?started.elapsed(),
            "tokenizer loaded"
        );
        Ok(tokenizer)
    }
}

/// A JSON file of a model folder, with the errors every reader in this crate gives (an I/O
/// error naming the file, or `MalformedJson`).
pub(crate) fn read_json(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|source| Error::MalformedJson { path: path.to_path_buf(), source })
}

fn tokenizer_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Tokenizer(format!("cannot load `{}`: {e}", path.display()))
}

/// `value` (a `tokenizer_config.json` or `special_tokens_map.json` at `path`) when the fields
/// autocandle reads have the types `transformers` gives them: an object; `model_max_length` a
/// number; `padding_side` / `truncation_side` `"left"` or `"right"`; each special token a string
/// or an `AddedToken` object with a string `content`; `additional_special_tokens` a list of
/// those. Otherwise an error naming the file and the field.
fn checked_settings(value: Value, path: &Path) -> Result<Value> {
    let bad = |field: &str, what: String| {
        Err(Error::Tokenizer(format!("`{field}` in `{}` {what}: fix or remove the field", path.display())))
    };
    let Value::Object(map) = &value else {
        return Err(Error::Tokenizer(format!("`{}` must hold a JSON object, found {value}", path.display())));
    };
    match map.get("model_max_length") {
        None | Some(Value::Null) | Some(Value::Number(_)) => {}
        Some(other) => return bad("model_max_length", format!("is {other}, not a number")),
    }
    for side in ["padding_side", "truncation_side"] {
        match map.get(side) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s == "left" || s == "right" => {}
            Some(other) => return bad(side, format!("is {other}; it is \"left\" or \"right\"")),
        }
    }
    let is_token = |v: &Value| match v {
        Value::Null | Value::String(_) => true,
        Value::Object(o) => o.get("content").is_some_and(Value::is_string),
        _ => false,
    };
    for key in SPECIAL_TOKEN_KEYS.iter().filter(|k| **k != "additional_special_tokens") {
        if let Some(v) = map.get(*key).filter(|v| !is_token(v)) {
            return bad(key, format!("is {v}; a special token is a string or {{\"content\": \"...\"}}"));
        }
    }
    // `transformers` builds an `AddedToken` from each entry, keyed by its integer id.
    match map.get("added_tokens_decoder") {
        None | Some(Value::Null) => {}
        Some(Value::Object(entries)) => {
            if let Some((id, token)) = entries.iter().find(|(id, token)| {
                id.parse::<u32>().is_err()
                    || !matches!(token, Value::Object(o) if o.get("content").is_some_and(Value::is_string))
            }) {
                return bad(
                    "added_tokens_decoder",
                    format!("has the entry \"{id}\": {token}; each key is a token id and each value {{\"content\": \"...\", ...}}"),
                );
            }
        }
        Some(other) => return bad("added_tokens_decoder", format!("is {other}, not an object of token ids")),
    }
    for flag in ["do_lower_case", "tokenize_chinese_chars", "clean_up_tokenization_spaces", "add_prefix_space"] {
        match map.get(flag) {
            None | Some(Value::Null) | Some(Value::Bool(_)) => {}
            Some(other) => return bad(flag, format!("is {other}, not true or false")),
        }
    }
    match map.get("additional_special_tokens") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) if list.iter().all(is_token) => {}
        Some(other) => {
            return bad(
                "additional_special_tokens",
                format!("is {other}; it is a list of tokens (strings or {{\"content\": \"...\"}})"),
            )
        }
    }
    Ok(value)
}

/// `special_tokens_map.json` entries fill in what `tokenizer_config.json` does not say.
fn merge_special_tokens(settings: &mut Value, map: &Value) {
    if let (Value::Object(settings), Value::Object(map)) = (settings, map) {
        for (k, v) in map {
            settings.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
}

const BERT_LIKE: [&str; 4] = ["BertTokenizer", "BertTokenizerFast", "DistilBertTokenizer", "DistilBertTokenizerFast"];

fn tokenizer_class(settings: &Value) -> Option<&str> {
    settings.get("tokenizer_class").and_then(Value::as_str)
}

fn is_bert_like(settings: &Value) -> bool {
    tokenizer_class(settings).is_some_and(|c| BERT_LIKE.contains(&c))
}

/// The special tokens `BertTokenizer` has when the config does not name them.
fn apply_bert_defaults(settings: &mut Value) {
    if let Value::Object(map) = settings {
        for (key, token) in [
            ("unk_token", "[UNK]"),
            ("sep_token", "[SEP]"),
            ("pad_token", "[PAD]"),
            ("cls_token", "[CLS]"),
            ("mask_token", "[MASK]"),
        ] {
            map.entry(key).or_insert_with(|| Value::String(token.to_owned()));
        }
    }
}

/// A special token's text: either a string or an `AddedToken` object with `content`.
fn token_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) => Some(s.clone()),
        Value::Object(o) => o.get("content").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
}

const SPECIAL_TOKEN_KEYS: [&str; 8] = [
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
    "bos_token",
    "eos_token",
    "additional_special_tokens",
];

/// Build BERT's WordPiece tokenizer from `vocab.txt`, as `transformers`' `BertTokenizer` does.
fn wordpiece_from_vocab(vocab: &Path, settings: &Value) -> Result<Tokenizer> {
    let class = tokenizer_class(settings).unwrap_or("BertTokenizer");
    if !BERT_LIKE.contains(&class) {
        return Err(Error::Unsupported(format!(
            "tokenizer class `{class}` from `vocab.txt` alone; autocandle builds WordPiece (BERT) tokenizers from \
             `vocab.txt`, other tokenizers need `tokenizer.json`"
        )));
    }
    let flag = |key: &str, default: bool| settings.get(key).and_then(Value::as_bool).unwrap_or(default);
    let text = |key: &str, default: &str| token_text(settings.get(key)).unwrap_or_else(|| default.to_owned());
    let lowercase = flag("do_lower_case", true);
    let strip_accents = settings.get("strip_accents").and_then(Value::as_bool);
    let chinese = flag("tokenize_chinese_chars", true);
    let (unk, cls, sep) = (text("unk_token", "[UNK]"), text("cls_token", "[CLS]"), text("sep_token", "[SEP]"));

    let vocab_path = vocab.to_str().ok_or_else(|| Error::input(format!("non-UTF-8 path `{}`", vocab.display())))?;
    let vocab_map = WordPiece::read_file(vocab_path).map_err(|e| tokenizer_error(vocab, e))?;
    let id_of = |tok: &str| {
        vocab_map.get(tok).copied().ok_or_else(|| {
            Error::Tokenizer(format!(
                "special token `{tok}` is not in `{}`; fix the vocab or tokenizer_config.json",
                vocab.display()
            ))
        })
    };
    let (cls_id, sep_id) = (id_of(&cls)?, id_of(&sep)?);
    let model = WordPiece::builder()
        .vocab(vocab_map.clone())
        .unk_token(unk.clone())
        .continuing_subword_prefix("##".to_owned())
        .build()
        .map_err(|e| tokenizer_error(vocab, e))?;
    let mut tokenizer = Tokenizer::new(model);
    tokenizer
        .with_normalizer(Some(BertNormalizer::new(true, chinese, strip_accents, lowercase)))
        .map_err(|e| tokenizer_error(vocab, e))?;
    tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
    tokenizer.with_decoder(Some(WordPieceDecoder::new("##".to_owned(), true)));
    let template = TemplateProcessing::builder()
        .try_single(format!("{cls}:0 $A:0 {sep}:0"))
        .and_then(|b| b.try_pair(format!("{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1")))
        .map_err(|e| tokenizer_error(vocab, e))?
        .special_tokens(vec![(cls.clone(), cls_id), (sep.clone(), sep_id)])
        .build()
        .map_err(|e| tokenizer_error(vocab, e))?;
    tokenizer.with_post_processor(Some(template));
    let specials: Vec<AddedToken> = SPECIAL_TOKEN_KEYS
        .iter()
        .filter_map(|k| token_text(settings.get(*k)))
        .chain(std::iter::once(unk))
        .filter(|t| vocab_map.contains_key(t))
        .map(|t| AddedToken::from(t, true))
        .collect();
    tokenizer.add_special_tokens(specials).map_err(|e| tokenizer_error(vocab, e))?;
    Ok(tokenizer)
}

/// How to pad a batch (`transformers`' `padding` argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Padding {
    /// No padding (`padding=False`).
    #[default]
    DoNotPad,
    /// Pad to the longest row (`padding=True` / `"longest"`).
    Longest,
    /// Pad to `max_length`, or `model_max_length` when not given (`"max_length"`).
    MaxLength,
}

/// Options of [`PreTrainedTokenizer::encode_batch_with`], after `transformers`' `__call__`.
///
/// Built from [`EncodeOptions::new`] (the defaults: special tokens, no padding, no
/// truncation) with one method per setting:
///
/// ```
/// use autocandle::{EncodeOptions, Padding};
/// let opts = EncodeOptions::new().padding(Padding::Longest).truncation(true).max_length(128);
/// assert_eq!(opts.padding, Padding::Longest);
/// ```
///
/// The fields are readable; new settings may be added, so the struct is built through its
/// methods rather than a struct literal.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EncodeOptions {
    /// Add the special tokens of the post-processor (`[CLS]`, `</s>`, ...). Default `true`.
    pub add_special_tokens: bool,
    /// How to pad the batch. Default [`Padding::DoNotPad`].
    pub padding: Padding,
    /// Truncate to `max_length`, or `model_max_length` when not given (`longest_first` for pairs).
    /// Default `false`.
    pub truncation: bool,
    /// The length that truncation and [`Padding::MaxLength`] use instead of `model_max_length`.
    pub max_length: Option<usize>,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        Self { add_special_tokens: true, padding: Padding::DoNotPad, truncation: false, max_length: None }
    }
}

impl EncodeOptions {
    /// The defaults: special tokens, no padding, no truncation, no `max_length`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether to add the special tokens (`add_special_tokens`).
    pub fn add_special_tokens(mut self, add: bool) -> Self {
        self.add_special_tokens = add;
        self
    }

    /// How to pad the batch (`padding`).
    pub fn padding(mut self, padding: Padding) -> Self {
        self.padding = padding;
        self
    }

    /// Whether to truncate to `max_length` or `model_max_length` (`truncation`).
    pub fn truncation(mut self, truncation: bool) -> Self {
        self.truncation = truncation;
        self
    }

    /// The length for truncation and [`Padding::MaxLength`] (`max_length`); `None` falls back
    /// to the tokenizer's `model_max_length`.
    pub fn max_length(mut self, max_length: impl Into<Option<usize>>) -> Self {
        self.max_length = max_length.into();
        self
    }
}

/// Token ids and masks of a batch, row by row (`transformers`' `BatchEncoding`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchEncoding {
    /// Token ids, one row per text (`[batch, seq]` once padded).
    pub input_ids: Vec<Vec<u32>>,
    /// 1 for tokens, 0 for padding; same shape as `input_ids`.
    pub attention_mask: Vec<Vec<u32>>,
    /// Segment ids (0 for the first text, 1 for the pair); same shape as `input_ids`.
    pub token_type_ids: Vec<Vec<u32>>,
    /// Character offsets of each token in its text (`(0, 0)` for special and pad tokens).
    pub offsets: Vec<Vec<(usize, usize)>>,
    /// The tokens as strings (`convert_ids_to_tokens`).
    pub tokens: Vec<Vec<String>>,
}

impl BatchEncoding {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.input_ids.len()
    }

    /// Whether the batch has no rows.
    pub fn is_empty(&self) -> bool {
        self.input_ids.is_empty()
    }

    /// `[batch, seq]` tensors for the model; rows must have equal length (pad the batch).
    pub fn to_inputs(&self, device: &Device) -> Result<ModelInputs> {
        let to_tensor = |rows: &[Vec<u32>], name: &str| -> Result<Tensor> {
            let width = rows.first().map_or(0, Vec::len);
            if let Some(bad) = rows.iter().position(|r| r.len() != width) {
                return Err(Error::input(format!(
                    "`{name}` rows have different lengths (row 0 has {width}, row {bad} has {}): encode with padding",
                    rows[bad].len()
                )));
            }
            let flat: Vec<u32> = rows.iter().flatten().copied().collect();
            Ok(Tensor::from_vec(flat, (rows.len(), width), device)?)
        };
        if self.input_ids.is_empty() {
            return Err(Error::input("the batch is empty"));
        }
        Ok(ModelInputs::new(to_tensor(&self.input_ids, "input_ids")?)
            .with_attention_mask(to_tensor(&self.attention_mask, "attention_mask")?)
            .with_token_type_ids(to_tensor(&self.token_type_ids, "token_type_ids")?))
    }
}

/// A loaded tokenizer with `transformers`' settings (`PreTrainedTokenizerFast`).
///
/// **Invariant:** read-only once built, and no lock around the backend: padding and truncation
/// are options of each call, applied here, not settings stored in the shared
/// `tokenizers::Tokenizer`. Threads share one tokenizer (`&self`, `Arc`) and encode and decode
/// at the same time without waiting on each other (the BPE cache inside `tokenizers` only
/// try-locks, skipping the cache rather than waiting).
#[derive(Debug)]
pub struct PreTrainedTokenizer {
    /// The `tokenizers` backend, with no padding or truncation set: only read, never changed.
    tokenizer: Tokenizer,
    model_max_length: Option<usize>,
    padding_side: PaddingDirection,
    truncation_side: TruncationDirection,
    special_tokens: Vec<(String, String)>,
    name: String,
    /// The file the backend was read from (`tokenizer.json`, a GGUF file), for errors; the
    /// name when it was built otherwise.
    file: String,
    settings: Value,
}

impl PreTrainedTokenizer {
    /// Wrap a `tokenizers` tokenizer with the settings of `tokenizer_config.json`.
    pub fn new(mut tokenizer: Tokenizer, settings: &Value, name: String) -> Result<Self> {
        tokenizer.with_padding(None);
        tokenizer.with_truncation(None).map_err(|e| Error::Tokenizer(e.to_string()))?;
        // `transformers` saves "no limit" as a huge number (VERY_LARGE_INTEGER = 1e30).
        let model_max_length = settings
            .get("model_max_length")
            .and_then(Value::as_f64)
            .filter(|n| *n > 0.0 && *n < 1e15)
            .map(|n| n as usize);
        let side = |key: &str| settings.get(key).and_then(Value::as_str).unwrap_or("right") == "left";
        let special_tokens = SPECIAL_TOKEN_KEYS
            .iter()
            .filter_map(|k| token_text(settings.get(*k)).map(|t| ((*k).to_owned(), t)))
            .collect();
        Ok(Self {
            tokenizer,
            model_max_length,
            padding_side: if side("padding_side") { PaddingDirection::Left } else { PaddingDirection::Right },
            truncation_side: if side("truncation_side") {
                TruncationDirection::Left
            } else {
                TruncationDirection::Right
            },
            special_tokens,
            file: name.clone(),
            name,
            settings: settings.clone(),
        })
    }

    /// The repo id or folder it was loaded from.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `model_max_length` from `tokenizer_config.json`, when it sets a real limit.
    pub fn model_max_length(&self) -> Option<usize> {
        self.model_max_length
    }

    /// The settings read from `tokenizer_config.json` and `special_tokens_map.json`.
    pub fn settings(&self) -> &Value {
        &self.settings
    }

    /// Vocabulary size including added tokens (`len(tokenizer)`).
    pub fn vocab_size(&self) -> usize {
        self.tokenizer.get_vocab_size(true)
    }

    /// The id of `token` in the vocabulary (added tokens included), or `None`.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.tokenizer.token_to_id(token)
    }

    /// The token of `id`, or `None` when it is outside the vocabulary.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.tokenizer.id_to_token(id)
    }

    /// A special token by its `transformers` attribute name (`"mask_token"`, `"pad_token"`, ...).
    pub fn special_token(&self, key: &str) -> Option<&str> {
        self.special_tokens.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The id of the special token `key` (`"mask_token"` -> id of `[MASK]`).
    pub fn special_token_id(&self, key: &str) -> Option<u32> {
        self.special_token(key).and_then(|t| self.token_to_id(t))
    }

    /// A copy of the underlying `tokenizers` tokenizer (no padding or truncation set).
    pub fn backend(&self) -> Tokenizer {
        self.tokenizer.clone()
    }

    /// Encode one text with special tokens, no padding or truncation.
    pub fn encode(&self, text: &str) -> Result<BatchEncoding> {
        self.encode_batch_with(&[text], None, &EncodeOptions::default())
    }

    /// Encode a batch of texts with padding and truncation as `opts` say
    /// (`EncodeOptions::new().padding(Padding::Longest)` pads to the longest row).
    pub fn encode_batch(&self, texts: &[&str], opts: &EncodeOptions) -> Result<BatchEncoding> {
        self.encode_batch_with(texts, None, opts)
    }

    /// Encode texts (or text pairs) with explicit padding and truncation.
    pub fn encode_batch_with(
        &self,
        texts: &[&str],
        pairs: Option<&[&str]>,
        opts: &EncodeOptions,
    ) -> Result<BatchEncoding> {
        if let Some(pairs) = pairs {
            if pairs.len() != texts.len() {
                return Err(Error::input(format!("{} texts but {} text pairs", texts.len(), pairs.len())));
            }
        }
        let limit = opts.max_length.or(self.model_max_length);
        let truncation = match (opts.truncation, limit) {
            (true, Some(max_length)) => Some(TruncationParams {
                direction: self.truncation_side,
                max_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }),
            _ => None,
        };
        if let (Some(params), true) = (&truncation, opts.add_special_tokens) {
            let added = self.added_tokens(pairs.is_some());
            if params.max_length < added {
                return Err(Error::input(format!(
                    "max_length {} leaves no room for the {added} special tokens the tokenizer adds: raise max_length \
                     or encode without special tokens",
                    params.max_length
                )));
            }
        }
        let inputs: Vec<(&str, Option<&str>)> = match pairs {
            Some(pairs) => texts.iter().zip(pairs).map(|(a, b)| (*a, Some(*b))).collect(),
            None => texts.iter().map(|a| (*a, None)).collect(),
        };
        // In parallel where `tokenizers` would be (`TOKENIZERS_PARALLELISM`), as its `encode_batch`.
        let mut encodings = inputs
            .into_maybe_par_iter()
            .map(|(text, pair)| {
                self.guarded("encoding", || self.encode_one(text, pair, opts.add_special_tokens, truncation.as_ref()))
            })
            .collect::<Result<Vec<Encoding>>>()?;
        let strategy = match opts.padding {
            Padding::DoNotPad => None,
            Padding::Longest => Some(PaddingStrategy::BatchLongest),
            Padding::MaxLength => match limit {
                Some(n) => Some(PaddingStrategy::Fixed(n)),
                None => {
                    return Err(Error::input(
                        "padding to max_length needs `max_length` or a tokenizer with `model_max_length`",
                    ))
                }
            },
        };
        if let Some(strategy) = strategy {
            let pad_token = self.special_token("pad_token").ok_or_else(|| {
                Error::input("asked to pad but the tokenizer has no `pad_token`; set one in tokenizer_config.json")
            })?;
            let pad_id = self
                .token_to_id(pad_token)
                .ok_or_else(|| Error::Tokenizer(format!("the pad token `{pad_token}` is not in the vocabulary")))?;
            let params = PaddingParams {
                strategy,
                direction: self.padding_side,
                pad_to_multiple_of: None,
                pad_id,
                pad_type_id: 0,
                pad_token: pad_token.to_owned(),
            };
            pad_encodings(&mut encodings, &params).map_err(|e| Error::Tokenizer(e.to_string()))?;
        }
        let mut batch = BatchEncoding::default();
        for e in &encodings {
            batch.input_ids.push(e.get_ids().to_vec());
            batch.attention_mask.push(e.get_attention_mask().to_vec());
            batch.token_type_ids.push(e.get_type_ids().to_vec());
            batch.offsets.push(e.get_offsets().to_vec());
            batch.tokens.push(e.get_tokens().to_vec());
        }
        Ok(batch)
    }

    /// The special tokens the post-processor adds to one text, or to a pair.
    fn added_tokens(&self, is_pair: bool) -> usize {
        self.tokenizer.get_post_processor().map_or(0, |p| p.added_tokens(is_pair))
    }

    /// Encode one text or pair. Without truncation this is `tokenizers`' `encode`. With it, it
    /// is `encode` as `tokenizers` runs it when its truncation is set, with the parameters
    /// passed in rather than stored in the shared backend: tokenize each sequence up to
    /// `max_length` tokens from the truncation side (whole pre-tokens, the pair with type id 1),
    /// truncate the two together leaving room for the special tokens, then post-process.
    /// `tests/tokenizer.rs` checks this against the backend's own truncation.
    fn encode_one(
        &self,
        text: &str,
        pair: Option<&str>,
        add_special_tokens: bool,
        truncation: Option<&TruncationParams>,
    ) -> tokenizers::Result<Encoding> {
        let Some(params) = truncation else {
            return match pair {
                Some(pair) => self.tokenizer.encode((text, pair), add_special_tokens),
                None => self.tokenizer.encode(text, add_special_tokens),
            };
        };
        // A single sequence may stop early. A pair may not: `longest_first` gives the longer
        // sequence the odd token, and a sequence cut at a word boundary past the limit could
        // look longer than its partner when it is not (ALBERT's SentencePiece pieces showed it).
        let limit = if pair.is_some() { None } else { Some((params.max_length, params.direction)) };
        let encoding = self.tokenize(text, 0, limit)?;
        let pair_encoding = pair.map(|pair| self.tokenize(pair, 1, limit)).transpose()?;
        let added = if add_special_tokens { self.added_tokens(pair_encoding.is_some()) } else { 0 };
        // `encode_batch_with` has checked that `max_length` covers the special tokens.
        let params = TruncationParams { max_length: params.max_length.saturating_sub(added), ..*params };
        let (encoding, pair_encoding) = truncate_encodings(encoding, pair_encoding, &params)?;
        match self.tokenizer.get_post_processor() {
            Some(processor) => processor.process(encoding, pair_encoding, add_special_tokens),
            None => {
                let encodings = std::iter::once(encoding).chain(pair_encoding).collect();
                let mut merged = <dyn PostProcessor>::default_process(encodings, add_special_tokens)?;
                merged.pop().ok_or_else(|| "the post-processor returned no encoding".into())
            }
        }
    }

    /// One sequence through the backend's added vocabulary, normalizer, pre-tokenizer and
    /// model, as `tokenizers`' `encode_single_sequence` does (byte offsets), stopping after
    /// `limit` tokens when given.
    fn tokenize(
        &self,
        text: &str,
        type_id: u32,
        limit: Option<(usize, TruncationDirection)>,
    ) -> tokenizers::Result<Encoding> {
        let backend = &self.tokenizer;
        let mut pretokenized = backend.get_added_vocabulary().extract_and_normalize(backend.get_normalizer(), text);
        if let Some(pre_tokenizer) = backend.get_pre_tokenizer() {
            pre_tokenizer.pre_tokenize(&mut pretokenized)?;
        }
        backend.get_model().tokenize_in_pretokenized(&mut pretokenized, limit)?;
        pretokenized.into_encoding(None, type_id, OffsetType::Byte)
    }

    /// Turn ids back into text (`tokenizer.decode`).
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String> {
        self.guarded("decoding", || self.tokenizer.decode(ids, skip_special_tokens))
    }

    /// A call into the `tokenizers` backend, with its errors, and its panics (Oniguruma's
    /// `retry-limit-in-match` on a regex that backtracks catastrophically), as errors naming
    /// the tokenizer file.
    fn guarded<T>(&self, doing: &str, call: impl FnOnce() -> tokenizers::Result<T>) -> Result<T> {
        match crate::panic_guard::catch(call) {
            Ok(result) => {
                result.map_err(|e| Error::Tokenizer(format!("the tokenizer `{}` failed while {doing}: {e}", self.file)))
            }
            Err(panic) => {
                let why = if panic.contains("retry-limit-in-match") {
                    " (a regex of its pre-tokenizer or normalizer backtracks without end on this input and the regex \
                     engine gave up): fix the pattern in the tokenizer file, or shorten the input"
                } else {
                    ": the tokenizer file may be malformed"
                };
                Err(Error::Tokenizer(format!("the tokenizer `{}` failed while {doing}: {panic}{why}", self.file)))
            }
        }
    }

    /// The chat template to render (`get_chat_template`): with `name_or_template` `None`, the
    /// tokenizer's template (its `default` one when it has several); otherwise the named
    /// template, or `name_or_template` itself as a template.
    #[cfg(feature = "chat")]
    pub fn get_chat_template(&self, name_or_template: Option<&str>) -> Result<String> {
        crate::chat::select_template(self.settings.get("chat_template"), name_or_template, false, &self.name)
    }

    /// Render a conversation with the tokenizer's chat template (`apply_chat_template(...,
    /// tokenize=False)`); `add_generation_prompt` ends with the header of an assistant turn.
    /// Messages are [`ChatMessage`](crate::ChatMessage)s, `(role, content)` pairs or JSON objects.
    ///
    /// ```no_run
    /// # fn main() -> autocandle::Result<()> {
    /// let tok = autocandle::AutoTokenizer::from_pretrained("Qwen/Qwen2.5-0.5B-Instruct")?;
    /// let text = tok.apply_chat_template(&[("system", "Be brief."), ("user", "Hi!")], true)?;
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "chat")]
    pub fn apply_chat_template<M: crate::ToChatMessage>(
        &self,
        messages: &[M],
        add_generation_prompt: bool,
    ) -> Result<String> {
        let options = crate::ChatTemplateOptions::new().add_generation_prompt(add_generation_prompt);
        self.apply_chat_template_with(messages, &options)
    }

    /// [`PreTrainedTokenizer::apply_chat_template`] with tools, documents, template variables
    /// (`enable_thinking`, ...), a template choice or `continue_final_message`.
    #[cfg(feature = "chat")]
    pub fn apply_chat_template_with<M: crate::ToChatMessage>(
        &self,
        messages: &[M],
        options: &crate::ChatTemplateOptions,
    ) -> Result<String> {
        let template = crate::chat::select_template(
            self.settings.get("chat_template"),
            options.chat_template.as_deref(),
            options.tools.is_some(),
            &self.name,
        )?;
        let special: Vec<(&str, String)> = SPECIAL_TOKEN_KEYS
            .iter()
            .filter(|k| **k != "additional_special_tokens")
            .filter_map(|k| self.special_token(k).map(|t| (*k, t.to_owned())))
            .collect();
        crate::chat::render(&template, messages, options, &special)
    }

    /// Render a conversation and encode it without adding special tokens (the template wrote
    /// them): `apply_chat_template(..., tokenize=True)`, ready for `generate`.
    #[cfg(feature = "chat")]
    pub fn encode_chat<M: crate::ToChatMessage>(
        &self,
        messages: &[M],
        options: &crate::ChatTemplateOptions,
    ) -> Result<BatchEncoding> {
        let text = self.apply_chat_template_with(messages, options)?;
        self.encode_batch_with(&[text.as_str()], None, &EncodeOptions::new().add_special_tokens(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_with_wrong_types_are_refused() {
        let path = Path::new("tokenizer_config.json");
        let ok = serde_json::json!({"model_max_length": 512, "padding_side": "left", "bos_token": "<s>",
            "eos_token": {"content": "</s>", "lstrip": false}, "pad_token": null,
            "additional_special_tokens": ["<a>", {"content": "<b>"}]});
        assert!(checked_settings(ok, path).is_ok());
        for (bad, field) in [
            (serde_json::json!({"model_max_length": "512"}), "model_max_length"),
            (serde_json::json!({"padding_side": "middle"}), "padding_side"),
            (serde_json::json!({"bos_token": 5}), "bos_token"),
            (serde_json::json!({"eos_token": {"text": "</s>"}}), "eos_token"),
            (serde_json::json!({"additional_special_tokens": "<a>"}), "additional_special_tokens"),
            (serde_json::json!({"additional_special_tokens": [3]}), "additional_special_tokens"),
            (serde_json::json!(["not", "an", "object"]), "must hold a JSON object"),
        ] {
            let err = checked_settings(bad.clone(), path).expect_err(&bad.to_string()).to_string();
            assert!(err.contains(field) && err.contains("tokenizer_config.json"), "{bad}: {err}");
        }
    }

    /// Encoding and decoding read the shared backend through `&self` with no lock in between:
    /// this does not compile if the backend sits behind a `Mutex` or `RwLock` again (the
    /// concurrent results are checked in `tests/tokenizer.rs`).
    #[test]
    fn the_backend_is_read_without_a_lock() {
        fn backend_of(tok: &PreTrainedTokenizer) -> &Tokenizer {
            &tok.tokenizer
        }
        fn shared_across_threads<T: Send + Sync>() {}
        shared_across_threads::<PreTrainedTokenizer>();
        let _ = backend_of;
    }

    #[test]
    fn encode_options_builder_sets_each_field() {
        let opts =
            EncodeOptions::new().add_special_tokens(false).padding(Padding::MaxLength).truncation(true).max_length(7);
        assert_eq!(
            (opts.add_special_tokens, opts.padding, opts.truncation, opts.max_length),
            (false, Padding::MaxLength, true, Some(7))
        );
        assert_eq!(EncodeOptions::new(), EncodeOptions::default());
        assert_eq!(EncodeOptions::new().max_length(3).max_length(None).max_length, None);
    }
}
