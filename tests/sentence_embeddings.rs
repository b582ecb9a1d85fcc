//! Sentence embeddings (tokenizer + base model + mean pooling) against Python's, for every
//! fixture directory that has an `embeddings.json` (e.g. the real all-MiniLM-L6-v2 made by
//! `tests/fixtures/minilm_reference.py` into `$AUTOCANDLE_FIXTURES`).

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
