//! AutoTokenizer against the ids Python's tokenizers produced (`tests/fixtures/tokenizers/*/cases.json`).

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::sync::Barrier;

use autocandle::{AutoTokenizer, BatchEncoding, Device, EncodeOptions, Padding, PreTrainedTokenizer};
use autocandle_tests::fixtures_root;
use serde_json::Value;
use tokenizers::processors::byte_level::ByteLevel;
use tokenizers::{PostProcessorWrapper, TruncationDirection, TruncationParams, TruncationStrategy};

fn ids(v: &Value) -> Vec<Vec<u32>> {
    serde_json::from_value(v.clone()).unwrap()
}

fn check_dir(name: &str) -> usize {
    let dir = fixtures_root().join("tokenizers").join(name);
    let tok = AutoTokenizer::from_pretrained(&dir.to_string_lossy()).unwrap();
    let cases: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap()).unwrap();
    let mut checked = 0;
    for case in cases["cases"].as_array().unwrap() {
        let case_name = case["name"].as_str().unwrap();
        let texts: Vec<&str> = case["texts"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
        let pairs: Option<Vec<&str>> =
            case["text_pairs"].as_array().map(|a| a.iter().map(|t| t.as_str().unwrap()).collect());
        let opts = EncodeOptions::new()
            .add_special_tokens(case["add_special_tokens"].as_bool().unwrap_or(true))
            .padding(match case["padding"].as_str() {
                Some("longest") => Padding::Longest,
                Some("max_length") => Padding::MaxLength,
                _ => Padding::DoNotPad,
            })
            .truncation(case["truncation"].as_bool().unwrap_or(false))
            .max_length(case["max_length"].as_u64().map(|n| n as usize));
        let got = tok.encode_batch_with(&texts, pairs.as_deref(), &opts).unwrap();
        assert_eq!(got.input_ids, ids(&case["input_ids"]), "{name}/{case_name}: input_ids");
        assert_eq!(got.attention_mask, ids(&case["attention_mask"]), "{name}/{case_name}: attention_mask");
        assert_eq!(got.token_type_ids, ids(&case["token_type_ids"]), "{name}/{case_name}: token_type_ids");
        checked += 1;
    }
    for case in cases["decode"].as_array().into_iter().flatten() {
        let ids: Vec<u32> = serde_json::from_value(case["ids"].clone()).unwrap();
        let skip = case["skip_special_tokens"].as_bool().unwrap_or(false);
        assert_eq!(tok.decode(&ids, skip).unwrap(), case["text"].as_str().unwrap(), "{name}: decode {ids:?}");
        checked += 1;
    }
    checked
}

#[test]
fn tokenizer_json() {
    assert!(check_dir("bert-fast") > 10);
}

#[test]
fn wordpiece_from_vocab_txt_uncased() {
    assert!(check_dir("bert-vocab-only") > 10);
}

#[test]
fn wordpiece_from_vocab_txt_cased() {
    assert!(check_dir("bert-cased-vocab-only") > 10);
}

#[test]
fn batch_to_model_inputs() {
    let tok = AutoTokenizer::from_pretrained(&fixtures_root().join("bert-masked-lm").to_string_lossy()).unwrap();
    let batch = tok
        .encode_batch(&["paris is the [MASK] of france.", "hello"], &EncodeOptions::new().padding(Padding::Longest))
        .unwrap();
    let inputs = batch.to_inputs(&Device::Cpu).unwrap();
    let ids = inputs.input_ids().unwrap();
    assert_eq!(ids.dims()[0], 2);
    assert!(batch.input_ids[0].contains(&tok.special_token_id("mask_token").unwrap()));
    let ragged = tok.encode_batch(&["paris is the capital", "hello"], &EncodeOptions::new()).unwrap();
    assert!(ragged.to_inputs(&Device::Cpu).unwrap_err().to_string().contains("encode with padding"));
}

#[test]
fn missing_tokenizer_files() {
    let dir = tempfile::tempdir().unwrap();
    let err = AutoTokenizer::from_pretrained(&dir.path().to_string_lossy()).unwrap_err().to_string();
    assert!(err.contains("tokenizer.json") && err.contains("vocab.txt"), "{err}");
}

fn load(dir: &str) -> PreTrainedTokenizer {
    AutoTokenizer::from_pretrained(&fixtures_root().join(dir).to_string_lossy()).unwrap()
}

const TEXTS: [&str; 5] = [
    "The quick brown fox jumps over the lazy dog, twice.",
    "hi",
    "Ünïcödé text with émojis 🙂 and   spaces",
    "",
    "paris is the [MASK] of <mask> france</s> <s> untokenizable supercalifragilistic words",
];
const PAIRS: [&str; 5] = [
    "a second sequence, longer than the first one by some way",
    "x",
    "short",
    "only the pair",
    "[SEP] jumps jumps [CLS] and more words than the first",
];

/// The rows of `tokenizers` encodings, as a `BatchEncoding`.
fn rows(encodings: &[tokenizers::Encoding]) -> BatchEncoding {
    let mut batch = BatchEncoding::default();
    for e in encodings {
        batch.input_ids.push(e.get_ids().to_vec());
        batch.attention_mask.push(e.get_attention_mask().to_vec());
        batch.token_type_ids.push(e.get_type_ids().to_vec());
        batch.offsets.push(e.get_offsets().to_vec());
        batch.tokens.push(e.get_tokens().to_vec());
    }
    batch
}

/// Truncation is an option of each call, applied without setting it in the shared `tokenizers`
/// backend; it gives exactly what the backend's own `encode_batch` gives with its truncation
/// set, for each kind of post-processor (template, RoBERTa, byte-level, none), from either side,
/// with and without special tokens, for texts, and for text pairs without truncation (truncated
/// pairs follow Python's `tokenizers`, see below).
#[test]
fn per_call_truncation_matches_the_backend_s_own() {
    let mut tokenizers: Vec<(String, PreTrainedTokenizer)> = Vec::new();
    for dir in [
        "tokenizers/bert-fast",
        "tokenizers/bert-vocab-only",
        "roberta-masked-lm",
        "pipelines/bart-summarization",
        "pipelines/t5-text2text",
        "pipelines/bert-question-answering-left-padding",
        "chat_templates/llama-3.1",
        "chat_templates/qwen2.5",
    ] {
        let tok = load(dir);
        let mut byte_level = tok.backend();
        byte_level.with_post_processor(Some(ByteLevel::default()));
        let mut bare = tok.backend();
        bare.with_post_processor(None::<PostProcessorWrapper>);
        let settings = tok.settings().clone();
        let mut left = settings.clone();
        left["truncation_side"] = "left".into();
        let variants = [
            ("byte-level", byte_level, &settings),
            ("no post-processor", bare, &settings),
            ("left", tok.backend(), &left),
        ];
        for (variant, backend, settings) in variants {
            let variant_tok = PreTrainedTokenizer::new(backend, settings, dir.into()).unwrap();
            tokenizers.push((format!("{dir} ({variant})"), variant_tok));
        }
        tokenizers.push((dir.to_owned(), tok));
    }
    let mut checked = 0;
    for (name, tok) in &tokenizers {
        let left = tok.settings().get("truncation_side").and_then(Value::as_str) == Some("left");
        for add_special_tokens in [true, false] {
            for pairs in [None, Some(&PAIRS[..])] {
                for max_length in [None, Some(4), Some(5), Some(7), Some(10), Some(16), Some(30)] {
                    if pairs.is_some() && max_length.is_some() {
                        // The Rust `tokenizers` (0.23.2) cuts each sequence of a pair at
                        // `max_length` before `longest_first`, which can give the odd token to
                        // the shorter one; Python's (0.23.3, what transformers runs) and
                        // autocandle compare the whole sequences. Truncated pairs are checked
                        // against Python's ids in cases.json (bert-fast, deberta-v2).
                        continue;
                    }
                    let mut backend = tok.backend();
                    if let Some(max_length) = max_length {
                        let direction = if left { TruncationDirection::Left } else { TruncationDirection::Right };
                        let strategy = TruncationStrategy::LongestFirst;
                        backend
                            .with_truncation(Some(TruncationParams { direction, max_length, strategy, stride: 0 }))
                            .unwrap();
                    }
                    let want = match pairs {
                        Some(pairs) => backend.encode_batch(
                            TEXTS.iter().copied().zip(pairs.iter().copied()).collect(),
                            add_special_tokens,
                        ),
                        None => backend.encode_batch(TEXTS.to_vec(), add_special_tokens),
                    };
                    let opts = EncodeOptions::new()
                        .add_special_tokens(add_special_tokens)
                        .truncation(max_length.is_some())
                        .max_length(max_length);
                    let got = tok.encode_batch_with(&TEXTS, pairs, &opts).unwrap();
                    let case = format!(
                        "{name}: special tokens {add_special_tokens}, pairs {}, max_length {max_length:?}",
                        pairs.is_some()
                    );
                    assert_eq!(got, rows(&want.unwrap()), "{case}");
                    checked += 1;
                }
            }
        }
    }
    // 2 x 7 settings without pairs, 2 with untruncated pairs.
    assert_eq!(checked, tokenizers.len() * 16);
}

/// `max_length` shorter than the special tokens is an error that says what to do, not a panic.
#[test]
fn max_length_below_the_special_tokens_is_an_error() {
    let tok = load("tokenizers/bert-fast");
    let opts = EncodeOptions::new().truncation(true).max_length(2);
    let err = tok.encode_batch_with(&["hello"], Some(&["world"]), &opts).unwrap_err().to_string();
    assert!(err.contains("max_length 2") && err.contains("3 special tokens"), "{err}");
    let ok = tok.encode_batch_with(&["hello"], Some(&["world"]), &opts.add_special_tokens(false)).unwrap();
    assert_eq!(ok.input_ids[0].len(), 2);
}

/// Threads share one tokenizer and encode and decode at the same time, each with its own
/// padding and truncation: the results are those of the same calls made one after another.
/// (That nothing serialises them is a property of the type, checked at compile time in
/// `crates/auto/src/tokenizer.rs`; this test checks the results, not the timing.)
#[test]
fn threads_share_one_tokenizer() {
    fn shared_across_threads<T: Send + Sync>() {}
    shared_across_threads::<PreTrainedTokenizer>();

    let tok = load("tokenizers/bert-fast");
    let texts: Vec<String> = (0..24)
        .map(|i| format!("sentence {i}: paris is the capital of france {}", "and more ".repeat(i % 7)))
        .collect();
    let texts: Vec<&str> = texts.iter().map(String::as_str).collect();
    let options = |thread: usize| match thread % 4 {
        0 => EncodeOptions::new(),
        1 => EncodeOptions::new().padding(Padding::Longest),
        2 => EncodeOptions::new().truncation(true).max_length(6 + thread),
        _ => EncodeOptions::new().padding(Padding::MaxLength).truncation(true).max_length(12),
    };
    let work = |tok: &PreTrainedTokenizer, thread: usize| {
        let mut out = Vec::new();
        for round in 0..8 {
            let batch = &texts[(thread + round) % 8..];
            let encoded = tok.encode_batch(batch, &options(thread)).unwrap();
            let decoded = tok.decode(&encoded.input_ids[0], true).unwrap();
            out.push((encoded, decoded));
        }
        out
    };
    const THREADS: usize = 8;
    let sequential: Vec<_> = (0..THREADS).map(|t| work(&tok, t)).collect();
    // All threads start together and borrow the one tokenizer.
    let start = Barrier::new(THREADS);
    let concurrent: Vec<_> = std::thread::scope(|s| {
        let (start, tok, work) = (&start, &tok, &work);
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                s.spawn(move || {
                    start.wait();
                    work(tok, t)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(concurrent, sequential);
}

#[test]
fn mpnet_wordpiece_with_roberta_specials() {
    // MPNetTokenizer: BERT's WordPiece with `<s> A </s></s> B </s>` around the texts.
    assert!(check_dir("mpnet") > 10);
}

#[test]
fn albert_sentencepiece_unigram() {
    // AlbertTokenizer: a SentencePiece unigram model (trained offline), `[CLS] A [SEP] B [SEP]`.
    assert!(check_dir("albert") > 10);
}

#[test]
fn modernbert_byte_level_bpe() {
    // ModernBERT-base's layout: NFC, byte-level BPE, `[CLS] $A [SEP]` templates, `[MASK]` with lstrip.
    assert!(check_dir("modernbert") > 10);
}

/// DeBERTa-v2/v3's SentencePiece-based tokenizer (a unigram model converted by
/// `DebertaV2Tokenizer`: Metaspace, `[CLS] A [SEP] B [SEP]` with type ids 0/1), made by
/// tests/fixtures/make_deberta_fixtures.py.
#[test]
fn deberta_v2_sentencepiece_tokenizer() {
    assert!(check_dir("deberta-v2") > 10);
}

/// fill-mask end to end on a DeBERTa-v2 folder with that SentencePiece tokenizer: the tokens,
/// scores and sequences of Python's pipeline (`fill_mask.json`, made by
/// tests/fixtures/make_deberta_fixtures.py).
#[test]
fn deberta_v2_fill_mask_with_its_tokenizer() {
    use autocandle::pipelines::{FillMaskOptions, FillMaskPipeline};
    let dir = fixtures_root().join("deberta-v2-masked-lm");
    let pipe = FillMaskPipeline::new(&dir.to_string_lossy()).unwrap();
    let cases: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("fill_mask.json")).unwrap()).unwrap();
    let opts = FillMaskOptions { top_k: 3, ..FillMaskOptions::default() };
    for case in cases.as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        let got = pipe.call_with(text, &opts).unwrap();
        let want = case["predictions"].as_array().unwrap();
        assert_eq!(got.len(), 1, "{text}: one mask");
        assert_eq!(got[0].len(), want.len(), "{text}");
        for (g, w) in got[0].iter().zip(want) {
            assert_eq!(g.token, w["token"].as_u64().unwrap() as u32, "{text}");
            assert_eq!(g.token_str, w["token_str"].as_str().unwrap(), "{text}");
            assert_eq!(g.sequence, w["sequence"].as_str().unwrap(), "{text}");
            assert!((f64::from(g.score) - w["score"].as_f64().unwrap()).abs() < 1e-5, "{text}: score");
        }
    }
}

/// A `tokenizer.json` whose pre-tokenizer regex backtracks catastrophically: Oniguruma gives
/// up (`retry-limit-in-match`) and the `tokenizers` crate panics; the tokenizer turns that into
/// an error naming the file, and stays usable.
#[test]
fn a_backtracking_pre_tokenizer_regex_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let json = serde_json::json!({
        "version": "1.0",
        "added_tokens": [],
        "normalizer": null,
        "pre_tokenizer": { "type": "Split", "pattern": { "Regex": "(a+)+b" }, "behavior": "Isolated", "invert": false },
        "post_processor": null,
        "decoder": null,
        "model": { "type": "WordLevel", "vocab": { "[UNK]": 0, "a": 1, "b": 2 }, "unk_token": "[UNK]" }
    });
    let file = dir.path().join("tokenizer.json");
    std::fs::write(&file, json.to_string()).unwrap();
    let tok = AutoTokenizer::from_pretrained(&dir.path().to_string_lossy()).unwrap();
    let hostile = "a".repeat(40);
    let encoded = tok.encode(&hostile);
    if cfg!(feature = "onig") {
        // The backend itself panics on this input.
        let backend = tok.backend();
        assert!(std::panic::catch_unwind(|| backend.encode(hostile.as_str(), false)).is_err());
        let message = encoded.unwrap_err().to_string();
        for part in [file.display().to_string().as_str(), "retry-limit-in-match", "backtracks"] {
            assert!(message.contains(part), "`{part}` missing from: {message}");
        }
        let batch = tok.encode_batch(&["ab", &hostile], &EncodeOptions::new());
        assert!(batch.unwrap_err().to_string().contains("retry-limit-in-match"));
    }
    // Usable afterwards (the pure-Rust regex engine never backtracks, so never panics).
    assert_eq!(tok.encode("ab").unwrap().input_ids[0].len(), 1);
    assert!(tok.decode(&[1, 2], false).is_ok());
}
