//! Unit tests of the SmolVLM crate.
