//! autocandle (stub)
