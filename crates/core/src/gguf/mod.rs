//! GGUF files, llama.cpp's checkpoint format: a header of typed metadata (the model's
//! hyper-parameters, its tokenizer, its chat template) followed by tensors, each stored as
//! float or in one of ggml's quantized block types.
//!
//! autocandle reads them as `transformers` does with `from_pretrained(..., gguf_file=...)`:
//! the config and the tokenizer come from the metadata, and the weights are dequantized
//! into the requested dtype, or (by default for GGUF files) kept quantized for the linear
//! layers.

pub mod hf;
mod value;

pub use value::GgufValue;
