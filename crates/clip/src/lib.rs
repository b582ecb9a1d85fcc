//! clip for autocandle (being written).
