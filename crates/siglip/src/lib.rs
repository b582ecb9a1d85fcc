//! siglip for autocandle (being written).
