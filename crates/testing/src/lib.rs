//! Helpers shared by the unit tests of the architecture crates, a dev-dependency only: the
//! registered-heads check of llama-like decoders ([`check_heads`]), fresh weights, small
//! inputs, comparisons and the parity fixtures ([`fresh`], [`ids`], [`reference()`], ...), and
//! the cache checks of causal language models ([`cached_vs_whole`], ...).
//! Not public API; the tensor helpers panic on failure.
//!
//! It depends on `autocandle-core` and candle alone, never on an architecture crate, so a
//! crate's own unit tests (`crate::` types) and these helpers agree on every type.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod causal;
mod heads;
mod tensors;

pub use causal::{cached_vs_whole, fresh_with_weights, half_precision_runs, logits, reloaded, selected_rows_vs_alone};
pub use heads::{check_heads, llama_like_heads};
pub use tensors::{fixture, fresh, ids, max_diff, path, pixels, reference, CPU};
