//! The key/value cache of a decoder: per layer, the keys and values of every position seen so far.

use candle_core::{Tensor, D};

use crate::error::{Error, Result};

/// Keys and values of past positions, one `[batch, kv_heads, seq, head_dim]` pair per layer,
/// grown by concatenation along the sequence axis (`transformers`' `DynamicCache`).
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
}

impl KvCache {
    /// An empty cache; layers are added as they are first written.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of cached positions (0 when empty).
    pub fn seq_len(&self) -> usize {
        self.layers.iter().flatten().next().map_or(0, |(k, _)| k.dim(D::Minus2).unwrap_or(0))
    }

    /// The cached keys and values of `layer`, if any.
    pub fn get(&self, layer: usize) -> Option<&(Tensor, Tensor)> {
        self.layers.get(layer).and_then(Option::as_ref)
    }

    /// Append this step's `k`/`v` to `layer` and return the full keys and values.
    pub fn append(&mut self, layer: usize, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        if self.layers.len() <= layer {
            self.layers.resize(layer + 1, None);
        }
        let slot = &mut self.layers[layer];
        let (k, v) = match slot.take() {
            None => (k.contiguous()?, v.contiguous()?),
            Some((pk, pv)) => (Tensor::cat(&[&pk, k], D::Minus2)?, Tensor::cat(&[&pv, v], D::Minus2)?),
        };
        *slot = Some((k.clone(), v.clone()));
        Ok((k, v))
    }

    /// Keep only the batch rows `rows` (in that order), e.g. to follow beams.
    pub fn select_rows(&mut self, rows: &Tensor) -> Result<()> {
        for (k, v) in self.layers.iter_mut().flatten() {
            *k = k.index_select(rows, 0)?;
            *v = v.index_select(rows, 0)?;
        }
        Ok(())
    }

    /// Drop every cached position.
    pub fn clear(&mut self) {
        self.layers.clear();
    }

    /// Check that `inputs` new tokens after `self.seq_len()` cached ones fit in `max` positions.
    pub fn check_room(&self, new_tokens: usize, max: Option<usize>) -> Result<()> {
        let total = self.seq_len() + new_tokens;
        match max {
            Some(max) if total > max => Err(Error::SequenceTooLong { len: total, max }),
            _ => Ok(()),
        }
    }
}

/// The cache of an encoder-decoder's decoder (`transformers`' `EncoderDecoderCache`): the
/// growing self-attention keys and values, and the cross-attention keys and values, computed
/// once from the encoder output and reused at every step.
#[derive(Debug, Clone, Default)]
pub struct Seq2SeqCache {
    /// Self-attention keys and values of the decoder positions seen so far.
    pub self_attention: KvCache,
    cross_attention: Vec<Option<(Tensor, Tensor)>>,
}

impl Seq2SeqCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of cached decoder positions.
    pub fn seq_len(&self) -> usize {
        self.self_attention.seq_len()
    }

    /// The cross-attention keys and values of `layer`, computing them with `compute` the first
    /// time.
    pub fn cross_attention(
        &mut self,
        layer: usize,
        compute: impl FnOnce() -> Result<(Tensor, Tensor)>,
    ) -> Result<(Tensor, Tensor)> {
        if self.cross_attention.len() <= layer {
            self.cross_attention.resize(layer + 1, None);
        }
        let slot = &mut self.cross_attention[layer];
        if let Some(kv) = slot {
            return Ok(kv.clone());
        }
        let kv = compute()?;
        *slot = Some(kv.clone());
        Ok(kv)
    }

    /// Keep only the batch rows `rows` (in that order) of both caches, e.g. to follow beams.
    pub fn select_rows(&mut self, rows: &Tensor) -> Result<()> {
        self.self_attention.select_rows(rows)?;
        for (k, v) in self.cross_attention.iter_mut().flatten() {
            *k = k.index_select(rows, 0)?;
            *v = v.index_select(rows, 0)?;
        }
        Ok(())
    }

    /// Drop everything cached.
    pub fn clear(&mut self) {
        self.self_attention.clear();
        self.cross_attention.clear();
    }
}
