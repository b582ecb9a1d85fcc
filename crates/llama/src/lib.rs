//! llama (not implemented yet).
