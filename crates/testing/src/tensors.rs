//! Fresh weights, small inputs, comparisons and the parity fixtures, for the unit tests of
//! CLIP, SigLIP and any other architecture crate. They panic on failure.

// Test helpers may panic on failure.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::PathBuf;

use autocandle_core::{LoadModel, ModelInputs};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

/// The device the unit tests run on.
pub const CPU: &Device = &Device::Cpu;

/// `M` with freshly initialised weights.
pub fn fresh<M: LoadModel>(config: &M::Config) -> M {
    let map = VarMap::new();
    M::load(VarBuilder::from_varmap(&map, DType::F32, CPU), config).unwrap()
}

/// `input_ids` (or a mask) `[rows, width]` from rows of equal width.
pub fn ids(rows: &[&[u32]]) -> Tensor {
    let width = rows[0].len();
    Tensor::from_vec(rows.concat(), (rows.len(), width), CPU).unwrap()
}

/// Random `pixel_values` `[batch, channels, size, size]`.
pub fn pixels(batch: usize, channels: usize, size: usize) -> Tensor {
    Tensor::randn(0f32, 1.0, (batch, channels, size, size), CPU).unwrap()
}

/// The largest absolute difference of two tensors of the same shape.
pub fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap().to_scalar().unwrap()
}

/// The folder of the parity fixture `name` (`tests/fixtures/<name>`).
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(name)
}

/// [`fixture`] as the string `from_pretrained` takes.
pub fn path(name: &str) -> String {
    fixture(name).to_string_lossy().into_owned()
}

/// The inputs and expected outputs of a fixture.
pub fn reference(name: &str) -> (ModelInputs, HashMap<String, Tensor>) {
    let tensors = candle_core::safetensors::load(fixture(name).join("reference.safetensors"), CPU).unwrap();
    let mut inputs = ModelInputs::default();
    for key in ["input_ids", "attention_mask", "position_ids", "pixel_values"] {
        if let Some(t) = tensors.get(key) {
            inputs.set(key, t.clone()).unwrap();
        }
    }
    (inputs, tensors)
}
