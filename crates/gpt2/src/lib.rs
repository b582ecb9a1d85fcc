//! gpt2 (not implemented yet).
