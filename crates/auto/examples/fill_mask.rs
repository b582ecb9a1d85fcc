//! Fill-mask with any masked language model: the top tokens for each mask in a sentence.
//!
//! ```text
//! cargo run -p autocandle --example fill_mask -- [MODEL_ID_OR_FOLDER] [TEXT] [TOP_K]
//! ```
//! Without arguments it runs on `tests/fixtures/bert-masked-lm`, a tiny BERT with random
//! weights that ships in the repo (so its guesses are arbitrary, but every step is real); from
//! the published package, where that folder is not, on `google-bert/bert-base-uncased` from
//! the Hub.

use anyhow::{bail, Context, Result};
use autocandle::{AutoModelForMaskedLM, AutoTokenizer, Device};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/bert-masked-lm");
    let default_model = if std::path::Path::new(fixture).is_dir() { fixture } else { "google-bert/bert-base-uncased" };
    let model_id = args.next().unwrap_or_else(|| default_model.to_owned());
    let text = args.next().unwrap_or_else(|| "paris is the [MASK] of france.".to_owned());
    let top_k: usize = args.next().map(|k| k.parse()).transpose().context("TOP_K must be a number")?.unwrap_or(5);

    let tokenizer = AutoTokenizer::from_pretrained(&model_id)?;
    let model = AutoModelForMaskedLM::from_pretrained(&model_id)?;
    let mask_id = tokenizer.special_token_id("mask_token").context("the tokenizer has no mask token")?;

    let batch = tokenizer.encode(&text)?;
    let ids = &batch.input_ids[0];
    let positions: Vec<usize> = ids.iter().enumerate().filter(|(_, id)| **id == mask_id).map(|(i, _)| i).collect();
    if positions.is_empty() {
        let mask = tokenizer.special_token("mask_token").unwrap_or("[MASK]");
        bail!("the text has no mask token: put `{mask}` where a word should be guessed");
    }
    let logits = model.forward(&batch.to_inputs(&Device::Cpu)?)?.logits;
    println!("model: {model_id}\ntext:  {text}");
    for pos in positions {
        let probs = candle_nn::ops::softmax_last_dim(&logits.get(0)?.get(pos)?)?.to_vec1::<f32>()?;
        let mut ranked: Vec<(usize, f32)> = probs.into_iter().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        println!("mask at token {pos}:");
        for (id, p) in ranked.into_iter().take(top_k) {
            let token = tokenizer.decode(&[id as u32], false)?;
            let filled = text.replacen(tokenizer.special_token("mask_token").unwrap_or("[MASK]"), &token, 1);
            println!("  {p:.4}  {token:<12} {filled}");
        }
    }
    Ok(())
}
