//! decoder (not implemented yet).
