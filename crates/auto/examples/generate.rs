//! Chat with any causal language model: the chat template, then generation streamed token by
//! token.
//!
//! ```text
//! cargo run -p autocandle --features all --example generate -- [MODEL_ID_OR_FOLDER] [MESSAGE] [MAX_NEW_TOKENS]
//! ```
//! Without arguments it runs on `tests/fixtures/qwen3-chat`, a tiny Qwen3 with random weights
//! and a real tokenizer and chat template that ships in the repo: its text is gibberish, but
//! every step (template, tokenizer, generation config, KV-cached decoding) is the real one.
//! From the published package, where that folder is not, it runs `Qwen/Qwen3-0.6B` from the Hub.
//! The generation settings (greedy or sampling, EOS tokens) come from the model's
//! `generation_config.json`.

use std::io::Write;
use std::ops::ControlFlow;

use anyhow::{Context, Result};
use autocandle::{AutoModelForCausalLM, AutoTokenizer, GenerationConfig, GenerationMixin};

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/qwen3-chat");
    let default_model = if std::path::Path::new(fixture).is_dir() { fixture } else { "Qwen/Qwen3-0.6B" };
    let model_id = args.next().unwrap_or_else(|| default_model.to_owned());
    let message = args.next().unwrap_or_else(|| "Hi!".to_owned());
    let max_new_tokens: usize =
        args.next().map(|n| n.parse()).transpose().context("MAX_NEW_TOKENS must be a number")?.unwrap_or(64);

    let tokenizer = AutoTokenizer::from_pretrained(&model_id)?;
    let model = AutoModelForCausalLM::from_pretrained(&model_id)?;
    let config = GenerationConfig::from_pretrained(&model_id)?.max_new_tokens(max_new_tokens);
    // A model without a chat template (a base model) continues the message as plain text.
    let prompt = if tokenizer.get_chat_template(None).is_ok() {
        tokenizer.apply_chat_template(&[("user", message.as_str())], true)?
    } else {
        message.clone()
    };
    println!("model:  {model_id}\nprompt: {prompt:?}\n");
    let mut stdout = std::io::stdout();
    model.stream_text(&tokenizer, &prompt, &config, |piece| {
        print!("{piece}");
        let _ = stdout.flush();
        ControlFlow::Continue(())
    })?;
    println!();
    Ok(())
}
