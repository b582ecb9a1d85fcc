//! BERT (stub)
