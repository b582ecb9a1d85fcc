//! Sentence embeddings (tokenizer + base model + mean pooling) against Python's, for every
//! fixture directory that has an `embeddings.json` (e.g. the real all-MiniLM-L6-v2 made by
//! `tests/fixtures/minilm_reference.py` into `$AUTOCANDLE_FIXTURES`); and `SentenceTransformer`
//! against sentence-transformers' `encode` on the real all-MiniLM-L6-v2 (`st-minilm`, made by
//! `tests/fixtures/st_minilm_reference.py`).

// Test helpers panic on purpose: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use autocandle::{AutoModel, AutoTokenizer, DType, Device, EncodeOptions, Padding, Tensor};
use autocandle_tests::fixture_dirs;
use serde_json::Value;

fn mean_pool(hidden: &Tensor, mask: &Tensor) -> Tensor {
    let mask = mask.to_dtype(DType::F32).unwrap().unsqueeze(2).unwrap();
    let summed = hidden.broadcast_mul(&mask).unwrap().sum(1).unwrap();
    let counts = mask.sum(1).unwrap().clamp(1e-9, f64::MAX).unwrap();
    summed.broadcast_div(&counts).unwrap()
}

#[test]
fn mean_pooled_embeddings_match_python() {
    let dirs: Vec<_> = fixture_dirs().unwrap().into_iter().filter(|d| d.join("embeddings.json").is_file()).collect();
    if dirs.is_empty() {
        println!("skipped: no fixture with embeddings.json (set AUTOCANDLE_FIXTURES, see the README)");
        return;
    }
    for dir in dirs {
        let id = dir.to_string_lossy();
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("embeddings.json")).unwrap()).unwrap();
        let sentences: Vec<&str> =
            expected["sentences"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
        let want: Vec<Vec<f32>> = serde_json::from_value(expected["mean_pooled"].clone()).unwrap();
        let tok = AutoTokenizer::from_pretrained(&id).unwrap();
        let model = AutoModel::from_pretrained(&id).unwrap();
        let inputs = tok
            .encode_batch(&sentences, &EncodeOptions::new().padding(Padding::Longest))
            .unwrap()
            .to_inputs(&Device::Cpu)
            .unwrap();
        let hidden = model.forward(&inputs).unwrap().last_hidden_state;
        let got = mean_pool(&hidden, inputs.attention_mask.as_ref().unwrap()).to_vec2::<f32>().unwrap();
        let max_diff = got.iter().flatten().zip(want.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        println!("{}: {} sentences, max |diff| of mean-pooled embeddings = {max_diff:e}", dir.display(), got.len());
        assert_eq!(got.len(), want.len());
        assert!(max_diff <= 1e-4, "{}: max diff {max_diff}", dir.display());
    }
}

/// `SentenceTransformer::encode` on the real all-MiniLM-L6-v2 against sentence-transformers'
/// `encode` (`tests/fixtures/st_minilm_reference.py` writes `$AUTOCANDLE_FIXTURES/st-minilm`):
/// a few hundred sentences, some longer than `max_seq_length`, in batches of 32.
#[test]
fn sentence_transformer_matches_python_on_real_minilm() {
    let Some(root) = std::env::var_os("AUTOCANDLE_FIXTURES") else {
        println!("skipped: AUTOCANDLE_FIXTURES is not set (run tests/fixtures/st_minilm_reference.py, see its header)");
        return;
    };
    let dir = std::path::Path::new(&root).join("st-minilm");
    if !dir.join("expected.json").is_file() {
        println!("skipped: no {}/expected.json (run tests/fixtures/st_minilm_reference.py)", dir.display());
        return;
    }
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let sentences: Vec<&str> = expected["sentences"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    let want: Vec<Vec<f32>> = serde_json::from_value(expected["embeddings"].clone()).unwrap();
    let counts: Vec<usize> = serde_json::from_value(expected["token_counts"].clone()).unwrap();
    let batch_size = expected["batch_size"].as_u64().unwrap() as usize;
    let model = autocandle::SentenceTransformer::from_pretrained(dir.join("model").to_str().unwrap()).unwrap();
    assert_eq!(model.max_seq_length(), expected["max_seq_length"].as_u64().map(|n| n as usize));
    let opts = autocandle::SentenceEncodeOptions::new().batch_size(batch_size);
    let got = model.encode(&sentences, &opts).unwrap();
    assert_eq!(got.len(), want.len());
    let limit = model.max_seq_length().unwrap();
    let (mut max_all, mut max_long) = (0f32, 0f32);
    for ((g, w), n) in got.iter().zip(&want).zip(&counts) {
        assert_eq!(g.len(), w.len());
        let d = g.iter().zip(w).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        max_all = max_all.max(d);
        if *n > limit {
            max_long = max_long.max(d);
        }
    }
    let longer = counts.iter().filter(|n| **n > limit).count();
    println!(
        "all-MiniLM-L6-v2 via SentenceTransformer: {} sentences ({longer} longer than {limit} tokens), batch {batch_size}: \
         max |diff| = {max_all:e} (truncated ones: {max_long:e})",
        got.len()
    );
    let sim_want: Vec<Vec<f32>> = serde_json::from_value(expected["similarity"].clone()).unwrap();
    let sim = model.similarity(&got[..8], &got[..8]).unwrap();
    let sim_diff = sim.iter().flatten().zip(sim_want.iter().flatten()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    println!("  similarity (cosine) of the first 8: max |diff| = {sim_diff:e}");
    assert!(max_all <= 1e-5, "max diff {max_all}");
    assert!(sim_diff <= 1e-5, "similarity diff {sim_diff}");
}
