//! t5 for autocandle (being written).
