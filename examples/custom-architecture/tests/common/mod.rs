//! A tiny checkpoint on disk (`config.json` + `model.safetensors`) and the outputs the network
//! must give on it, computed here with plain tensor operations.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};

pub const VOCAB_SIZE: usize = 11;
pub const HIDDEN_SIZE: usize = 4;
pub const NUM_LABELS: usize = 3;

/// A checkpoint of `TinyMlpForSequenceClassification` for `model_type` in a temp dir.
#[derive(Debug)]
pub struct Checkpoint {
    pub dir: tempfile::TempDir,
    weights: HashMap<String, Tensor>,
}

/// Deterministic weights of `shape`, different for each `seed`.
fn weights(shape: &[usize], seed: f64) -> candle_core::Result<Tensor> {
    let n: usize = shape.iter().product();
    let t = Tensor::arange(0u32, n as u32, &Device::Cpu)?.to_dtype(DType::F64)?;
    ((t * 0.37)? + seed)?.sin()?.to_dtype(DType::F32)?.reshape(shape)
}

impl Checkpoint {
    /// Write `config.json` (with `model_type`) and `model.safetensors` to a fresh temp dir.
    pub fn write(model_type: &str) -> Result<Self, Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let config = serde_json::json!({
            "model_type": model_type,
            "architectures": ["TinyMlpForSequenceClassification"],
            "vocab_size": VOCAB_SIZE,
            "hidden_size": HIDDEN_SIZE,
            "id2label": { "0": "negative", "1": "neutral", "2": "positive" },
        });
        std::fs::write(dir.path().join("config.json"), serde_json::to_string_pretty(&config)?)?;
        let weights: HashMap<String, Tensor> = [
            ("tiny_mlp.embeddings.weight", weights(&[VOCAB_SIZE, HIDDEN_SIZE], 0.1)?),
            ("tiny_mlp.dense.weight", weights(&[HIDDEN_SIZE, HIDDEN_SIZE], 0.2)?),
            ("tiny_mlp.dense.bias", weights(&[HIDDEN_SIZE], 0.3)?),
            ("classifier.weight", weights(&[NUM_LABELS, HIDDEN_SIZE], 0.4)?),
            ("classifier.bias", weights(&[NUM_LABELS], 0.5)?),
        ]
        .into_iter()
        .map(|(name, t)| (name.to_owned(), t))
        .collect();
        candle_core::safetensors::save(&weights, dir.path().join("model.safetensors"))?;
        Ok(Self { dir, weights })
    }

    /// The folder, as `from_pretrained` takes it.
    pub fn path(&self) -> String {
        self.dir.path().to_string_lossy().into_owned()
    }

    fn get(&self, name: &str) -> &Tensor {
        &self.weights[name]
    }

    /// `last_hidden_state` and the classifier's logits for `input_ids` `[batch, seq]`.
    pub fn expected(&self, input_ids: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let (batch, seq) = input_ids.dims2()?;
        let embedded = self.get("tiny_mlp.embeddings.weight").index_select(&input_ids.flatten_all()?, 0)?.reshape((
            batch,
            seq,
            HIDDEN_SIZE,
        ))?;
        let dense = embedded.broadcast_matmul(&self.get("tiny_mlp.dense.weight").t()?)?;
        let hidden = dense.broadcast_add(self.get("tiny_mlp.dense.bias"))?.tanh()?;
        let pooled = hidden.mean(1)?;
        let logits = pooled.matmul(&self.get("classifier.weight").t()?)?.broadcast_add(self.get("classifier.bias"))?;
        Ok((hidden, logits))
    }
}

/// Two rows of token ids.
pub fn input_ids() -> candle_core::Result<Tensor> {
    Tensor::new(&[[1u32, 2, 3, 4], [5, 6, 7, 10]], &Device::Cpu)
}

/// The largest absolute difference between `a` and `b`, which must have one shape.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> candle_core::Result<f32> {
    assert_eq!(a.dims(), b.dims());
    (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()
}
