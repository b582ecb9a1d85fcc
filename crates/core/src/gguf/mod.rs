//! GGUF files, llama.cpp's checkpoint format: a header of typed metadata (the model's
//! hyper-parameters, its tokenizer, its chat template) followed by tensors, each stored as
//! float or in one of ggml's quantized block types.
//!
//! autocandle reads them as `transformers` does with `from_pretrained(..., gguf_file=...)`:
//! the config and the tokenizer come from the metadata, and the weights are dequantized
//! into the requested dtype, or (by default for GGUF files) kept quantized for the linear
//! layers.

mod checkpoint;
pub mod hf;
mod reader;
mod value;

pub use checkpoint::{config_map, is_float, is_gguf_path, locate, read_config, GgufCheckpoint, GgufQuantSource};
pub use reader::{dequantize_bytes, GgufFile, GgufTensorInfo, SUPPORTED_TENSOR_TYPES};
pub use value::GgufValue;
