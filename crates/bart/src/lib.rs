//! bart for autocandle (being written).
