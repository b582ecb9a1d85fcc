//! gemma (not implemented yet).
