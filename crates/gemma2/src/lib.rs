//! gemma2 (not implemented yet).
