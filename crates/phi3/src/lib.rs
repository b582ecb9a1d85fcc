//! phi3 (not implemented yet).
