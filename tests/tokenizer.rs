//! AutoTokenizer against the ids Python's tokenizers produced (`tests/fixtures/tokenizers/*/cases.json`).

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use autocandle::{AutoTokenizer, Device, EncodeOptions, Padding};
use autocandle_tests::fixtures_root;
use serde_json::Value;

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
        let opts = EncodeOptions {
            add_special_tokens: case["add_special_tokens"].as_bool().unwrap_or(true),
            padding: match case["padding"].as_str() {
                Some("longest") => Padding::Longest,
                Some("max_length") => Padding::MaxLength,
                _ => Padding::DoNotPad,
            },
            truncation: case["truncation"].as_bool().unwrap_or(false),
            max_length: case["max_length"].as_u64().map(|n| n as usize),
        };
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
    let batch = tok.encode_batch(&["paris is the [MASK] of france.", "hello"], true).unwrap();
    let inputs = batch.to_inputs(&Device::Cpu).unwrap();
    let ids = inputs.input_ids().unwrap();
    assert_eq!(ids.dims()[0], 2);
    assert!(batch.input_ids[0].contains(&tok.special_token_id("mask_token").unwrap()));
    let ragged = tok.encode_batch(&["paris is the capital", "hello"], false).unwrap();
    assert!(ragged.to_inputs(&Device::Cpu).unwrap_err().to_string().contains("encode with padding"));
}

#[test]
fn missing_tokenizer_files() {
    let dir = tempfile::tempdir().unwrap();
    let err = AutoTokenizer::from_pretrained(&dir.path().to_string_lossy()).unwrap_err().to_string();
    assert!(err.contains("tokenizer.json") && err.contains("vocab.txt"), "{err}");
}
