//! mistral (not implemented yet).
