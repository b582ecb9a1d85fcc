//! Mean-pooled sentence embeddings (sentence-transformers style) with any BERT-like model.
//!
//! ```text
//! cargo run -p autocandle --release --example sentence_embeddings -- MODEL_ID_OR_FOLDER "first sentence" "second sentence"
//! ```
//! Prints each embedding's first values and the cosine similarity of every pair.

use anyhow::{Context, Result};
use autocandle::{AutoModel, AutoTokenizer, DType, Device, EncodeOptions, Padding, Tensor};

/// Mean of the token vectors where `attention_mask` is 1, then L2-normalised.
fn mean_pool(hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
    let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
    let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
    let mean = summed.broadcast_div(&counts)?;
    let norm = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
    Ok(mean.broadcast_div(&norm)?)
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let model_id = args.next().context("usage: sentence_embeddings MODEL_ID_OR_FOLDER SENTENCE...")?;
    let sentences: Vec<String> = args.collect();
    let sentences: Vec<&str> = sentences.iter().map(String::as_str).collect();
    let tokenizer = AutoTokenizer::from_pretrained(&model_id)?;
    let model = AutoModel::from_pretrained(&model_id)?;
    let inputs =
        tokenizer.encode_batch(&sentences, &EncodeOptions::new().padding(Padding::Longest))?.to_inputs(&Device::Cpu)?;
    let hidden = model.forward(&inputs)?.last_hidden_state;
    let mask = inputs.attention_mask.clone().context("the tokenizer gave no attention mask")?;
    let embeddings = mean_pool(&hidden, &mask)?;
    let rows = embeddings.to_vec2::<f32>()?;
    for (s, e) in sentences.iter().zip(&rows) {
        println!("{:?}: [{:.4}, {:.4}, {:.4}, ...] ({} dims)", s, e[0], e[1], e[2], e.len());
    }
    for i in 0..rows.len() {
        for j in i + 1..rows.len() {
            let cos: f32 = rows[i].iter().zip(&rows[j]).map(|(a, b)| a * b).sum();
            println!("cos({i}, {j}) = {cos:.4}");
        }
    }
    Ok(())
}
