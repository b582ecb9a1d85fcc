//! qwen2 (not implemented yet).
