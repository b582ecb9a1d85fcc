//! qwen3 (not implemented yet).
