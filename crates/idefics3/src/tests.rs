//! Unit tests of the Idefics3 crate.
