//! mt5 for autocandle (being written).
