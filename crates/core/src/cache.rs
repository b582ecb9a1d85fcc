//! The key/value cache of a decoder: per layer, the keys and values of every position seen so far.

use std::sync::Arc;

use candle_core::{Tensor, D};

use crate::error::{Error, Result};

/// Keys and values of past positions, one `[batch, kv_heads, seq, head_dim]` pair per layer
/// (`transformers`' `DynamicCache`).
///
/// Each layer writes into buffers with room to grow along the sequence axis, so a step
/// copies only its own keys and values (concatenation would copy the whole past every
/// step); the buffers double when full. A clone shares the buffers until one of the two
/// writes: that write first copies the positions written so far into buffers of its own (copy
/// on write), so the copy's errors come back from [`KvCache::append`] and nothing is lost.
#[derive(Debug, Default, Clone)]
pub struct KvCache {
    layers: Vec<Option<LayerCache>>,
    /// Per-row tensors a model carries from one step to the next (`[batch, ...]`), by name:
    /// Qwen2-VL's `rope_deltas`. They follow [`KvCache::select_rows`] and [`KvCache::clear`].
    state: Vec<(&'static str, Tensor)>,
}

/// One layer's buffers, the number of positions written, and the views of those positions.
///
/// `owner` is shared by the clones of one layer: the buffers are written in place only while
/// it is not shared (the tensors' storage is shared by clones, and written in place).
#[derive(Debug, Clone)]
struct LayerCache {
    k_buf: Tensor,
    v_buf: Tensor,
    len: usize,
    kv: (Tensor, Tensor),
    owner: Arc<()>,
}

/// Room added past what a layer first stores (and at least that much on each growth).
const GROW: usize = 256;

impl LayerCache {
    fn with_capacity(k: &Tensor, v: &Tensor, capacity: usize) -> Result<Self> {
        let buffer = |t: &Tensor| -> Result<Tensor> {
            let mut dims = t.dims().to_vec();
            let Some(seq) = dims.len().checked_sub(2) else {
                return Err(Error::input(format!(
                    "cached keys and values are [batch, heads, seq, head_dim], got shape {:?}",
                    t.dims()
                )));
            };
            dims[seq] = capacity;
            Ok(Tensor::zeros(dims, t.dtype(), t.device())?)
        };
        let (k_buf, v_buf) = (buffer(k)?, buffer(v)?);
        let kv = (k_buf.narrow(D::Minus2, 0, 0)?, v_buf.narrow(D::Minus2, 0, 0)?);
        Ok(Self { k_buf, v_buf, len: 0, kv, owner: Arc::new(()) })
    }

    fn capacity(&self) -> usize {
        self.k_buf.dim(D::Minus2).unwrap_or(0)
    }

    fn append(&mut self, k: &Tensor, v: &Tensor) -> Result<()> {
        let new = k.dim(D::Minus2)?;
        if Arc::strong_count(&self.owner) > 1 {
            // A clone shares the buffers: copy what is written before writing.
            *self = Self::from_views(&self.kv.0, &self.kv.1)?;
        }
        if self.len + new > self.capacity() {
            let mut grown = Self::with_capacity(k, v, (2 * self.capacity()).max(self.len + new + GROW))?;
            grown.k_buf.slice_set(&self.k_buf.narrow(D::Minus2, 0, self.len)?.contiguous()?, D::Minus2, 0)?;
            grown.v_buf.slice_set(&self.v_buf.narrow(D::Minus2, 0, self.len)?.contiguous()?, D::Minus2, 0)?;
            grown.len = self.len;
            *self = grown;
        }
        self.k_buf.slice_set(&k.contiguous()?, D::Minus2, self.len)?;
        self.v_buf.slice_set(&v.contiguous()?, D::Minus2, self.len)?;
        self.len += new;
        self.kv = (self.k_buf.narrow(D::Minus2, 0, self.len)?, self.v_buf.narrow(D::Minus2, 0, self.len)?);
        Ok(())
    }

    /// A cache holding `k` and `v` (already cut to their positions) in fresh buffers.
    fn from_views(k: &Tensor, v: &Tensor) -> Result<Self> {
        let mut layer = Self::with_capacity(k, v, k.dim(D::Minus2)? + GROW)?;
        layer.append(k, v)?;
        Ok(layer)
    }
}

impl KvCache {
    /// An empty cache; layers are added as they are first written.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of cached positions (0 when empty).
    pub fn seq_len(&self) -> usize {
        self.layers.iter().flatten().next().map_or(0, |l| l.len)
    }

    /// The cached keys and values of `layer`, if any.
    pub fn get(&self, layer: usize) -> Option<&(Tensor, Tensor)> {
        self.layers.get(layer).and_then(Option::as_ref).map(|l| &l.kv)
    }

    /// Append this step's `k`/`v` to `layer` and return the full keys and values: views of the
    /// cache's buffers, strided along the sequence axis (matmul takes them as they are).
    pub fn append(&mut self, layer: usize, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        if self.layers.len() <= layer {
            self.layers.resize_with(layer + 1, || None);
        }
        let slot = &mut self.layers[layer];
        match slot {
            Some(cache) => cache.append(k, v)?,
            None => *slot = Some(LayerCache::from_views(k, v)?),
        }
        slot.as_ref().map(|l| l.kv.clone()).ok_or_else(|| Error::input("the cache layer was not written"))
    }

    /// Keep `value` (`[batch, ...]`, one entry per row) under `name` until the cache is
    /// cleared; it replaces an earlier value of that name.
    pub fn set_state(&mut self, name: &'static str, value: Tensor) {
        match self.state.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.state.push((name, value)),
        }
    }

    /// The value kept under `name` by [`KvCache::set_state`], if any.
    pub fn state(&self, name: &str) -> Option<&Tensor> {
        self.state.iter().find(|(n, _)| *n == name).map(|(_, t)| t)
    }

    /// Keep only the batch rows `rows` (in that order), e.g. to follow beams.
    pub fn select_rows(&mut self, rows: &Tensor) -> Result<()> {
        for (_, value) in &mut self.state {
            *value = value.index_select(rows, 0)?;
        }
        for layer in self.layers.iter_mut().flatten() {
            // Whole buffers (index_select takes contiguous tensors only), same capacity.
            layer.k_buf = layer.k_buf.index_select(rows, 0)?;
            layer.v_buf = layer.v_buf.index_select(rows, 0)?;
            layer.kv = (layer.k_buf.narrow(D::Minus2, 0, layer.len)?, layer.v_buf.narrow(D::Minus2, 0, layer.len)?);
            // Fresh buffers, this cache's own.
            layer.owner = Arc::new(());
        }
        Ok(())
    }

    /// Drop every cached position.
    pub fn clear(&mut self) {
        self.layers.clear();
        self.state.clear();
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, IndexOp};

    #[test]
    fn state_follows_rows_and_clear() {
        let mut cache = KvCache::new();
        assert!(cache.state("rope_deltas").is_none());
        cache.set_state("rope_deltas", Tensor::new(&[[3i64], [7]], &Device::Cpu).unwrap());
        cache.set_state("rope_deltas", Tensor::new(&[[4i64], [8]], &Device::Cpu).unwrap());
        cache.select_rows(&Tensor::new(&[1u32, 1, 0], &Device::Cpu).unwrap()).unwrap();
        let deltas = cache.state("rope_deltas").unwrap().to_vec2::<i64>().unwrap();
        assert_eq!(deltas, vec![vec![8], vec![8], vec![4]]);
        cache.clear();
        assert!(cache.state("rope_deltas").is_none());
    }

    fn step(i: usize) -> Tensor {
        Tensor::full(i as f32, (2, 3, 1, 4), &Device::Cpu).unwrap()
    }

    #[test]
    fn growing_past_the_buffers_keeps_every_position_in_order() {
        let mut cache = KvCache::new();
        let prompt = Tensor::arange(0f32, 2. * 3. * 5. * 4., &Device::Cpu).unwrap().reshape((2, 3, 5, 4)).unwrap();
        cache.append(0, &prompt, &(&prompt * 2.).unwrap()).unwrap();
        let mut want_k = vec![prompt.clone()];
        for i in 0..600 {
            let (k, v) = cache.append(0, &step(i), &step(i + 1000)).unwrap();
            want_k.push(step(i));
            assert_eq!(k.dims(), &[2, 3, 6 + i, 4]);
            assert_eq!(
                v.i((.., .., 5 + i, ..)).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap()[0],
                (i + 1000) as f32
            );
        }
        let want = Tensor::cat(&want_k, 2).unwrap();
        let (k, _) = cache.get(0).unwrap();
        assert_eq!(
            k.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            want.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
        assert_eq!(cache.seq_len(), 605);
    }

    #[test]
    fn clones_do_not_share_writes_and_rows_follow_selection() {
        let mut a = KvCache::new();
        a.append(0, &step(1), &step(1)).unwrap();
        let mut b = a.clone();
        a.append(0, &step(2), &step(2)).unwrap();
        b.append(0, &step(3), &step(3)).unwrap();
        let last = |c: &KvCache| c.get(0).unwrap().0.i((0, 0, 1, 0)).unwrap().to_scalar::<f32>().unwrap();
        assert_eq!((last(&a), last(&b)), (2.0, 3.0));

        let rows = Tensor::new(&[1u32, 1, 0], &Device::Cpu).unwrap();
        let mut c = KvCache::new();
        let k = Tensor::arange(0f32, 2., &Device::Cpu).unwrap().reshape((2, 1, 1, 1)).unwrap();
        c.append(0, &k, &k).unwrap();
        c.select_rows(&rows).unwrap();
        let (k, _) = c
            .append(
                0,
                &Tensor::zeros((3, 1, 1, 1), DType::F32, &Device::Cpu).unwrap(),
                &Tensor::zeros((3, 1, 1, 1), DType::F32, &Device::Cpu).unwrap(),
            )
            .unwrap();
        assert_eq!(k.flatten_all().unwrap().to_vec1::<f32>().unwrap(), vec![1.0, 0.0, 1.0, 0.0, 0.0, 0.0]);
    }

    #[test]
    fn clones_keep_every_layer_and_copy_on_their_first_write() {
        let mut a = KvCache::new();
        a.append(0, &step(1), &step(1)).unwrap();
        a.append(2, &step(5), &step(5)).unwrap();
        let b = a.clone();
        // Every written layer is in the clone, and the unwritten one is not invented.
        assert!(b.get(0).is_some() && b.get(1).is_none() && b.get(2).is_some());
        // Writes on either side, growth past the buffers included, stay on that side.
        let mut c = b.clone();
        for i in 0..300 {
            c.append(0, &step(100 + i), &step(100 + i)).unwrap();
        }
        a.append(0, &step(7), &step(7)).unwrap();
        let at = |c: &KvCache, pos: usize| c.get(0).unwrap().0.i((0, 0, pos, 0)).unwrap().to_scalar::<f32>().unwrap();
        assert_eq!((at(&a, 0), at(&a, 1), a.seq_len()), (1.0, 7.0, 2));
        assert_eq!((at(&b, 0), b.seq_len()), (1.0, 1));
        assert_eq!((at(&c, 0), at(&c, 1), at(&c, 300), c.seq_len()), (1.0, 100.0, 399.0, 301));
        let mut d = b.clone();
        d.select_rows(&Tensor::new(&[1u32, 0], &Device::Cpu).unwrap()).unwrap();
        d.append(0, &step(9), &step(9)).unwrap();
        assert_eq!((at(&b, 0), b.seq_len(), at(&d, 1)), (1.0, 1, 9.0));
    }

    #[test]
    fn keys_of_the_wrong_rank_are_an_error() {
        let mut cache = KvCache::new();
        let flat = Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap();
        // Values of rank 1 beside keys of rank 4 (keys of rank 1 fail on their sequence axis).
        let err = cache.append(0, &step(1), &flat).unwrap_err().to_string();
        assert!(err.contains("[batch, heads, seq, head_dim]"), "{err}");
    }
}
