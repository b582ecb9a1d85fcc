//! Text generation for causal language models, after `transformers`' `generation` package:
//! [`GenerationConfig`] (`generation_config.json`), the logits processors and warpers
//! ([`logits`]), greedy decoding, seeded sampling and beam search, stopping criteria
//! ([`stopping`]) and the decoding loop ([`Generator`], [`generate`]).
//!
//! ```no_run
//! use autocandle_generation::{generate, GenerationConfig};
//! # fn demo(model: &dyn autocandle_core::ForCausalLm) -> autocandle_core::Result<()> {
//! let config = GenerationConfig::new().max_new_tokens(20);
//! let out = generate(model, vec![vec![1u32, 15, 27], vec![1, 8]], &config)?;
//! println!("{:?}", out.generated(0));
//! # Ok(()) }
//! ```
//!
//! Only the facade (`autocandle`), the CLI and tests use it; the architecture crates do not.
//!
//! Models with a key/value cache ([`autocandle_core::ForCausalLm::supports_cache`]) run the prompt once
//! and then one token per step; others run the whole sequence at every step. Batches are
//! padded on the left, with `position_ids` from the attention mask, so each row generates what
//! it would generate alone.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

mod beam;
mod config;
mod generator;
mod images;
pub mod logits;
mod prompts;
mod rules;
mod sampling;
mod seq2seq;
pub mod stopping;

pub use config::{limits, EarlyStopping, GenerationConfig};
pub use generator::{
    generate, generate_with_options, FinishReason, GenerateOptions, GenerateOutput, Generator, StepTokens,
};
pub use images::WithImages;
pub use logits::LogitsProcessor;
pub use prompts::{IntoPrompts, Prompts};
pub use seq2seq::{generate_seq2seq, generate_seq2seq_from};
pub use stopping::{StopStringCriteria, StoppingCriteria, TokenDecoder};
