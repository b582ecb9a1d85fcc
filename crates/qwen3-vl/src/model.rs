//! The model body (`Qwen3VLModel`): the vision tower, the image features in place of the image
//! tokens, DeepStack features added after the first text layers, interleaved M-RoPE positions
//! (with `rope_deltas` kept in the cache for generation) and the Qwen3 language model.

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;

use autocandle_core::inputs::dims2_int;
use autocandle_core::{Error, KvCache, ModelInputs, Result};
use autocandle_decoder::{CausalLm, CosSin, DecoderExtras, DecoderModel, RotaryEmbedding};
use autocandle_qwen2_vl::{rope_index, ROPE_DELTAS};

use crate::config::Settings;
use crate::vision::VisionTower;

#[derive(Debug, Clone)]
enum Lm {
    Base(DecoderModel),
    Head(CausalLm),
}

/// The vision tower and the language model, with the forward pass of `Qwen3VLModel` (and, with
/// a head, of `Qwen3VLForConditionalGeneration`).
#[derive(Debug, Clone)]
pub struct Qwen3VlCore {
    visual: VisionTower,
    lm: Lm,
    rotary: RotaryEmbedding,
    settings: Settings,
}

/// What one pass gives: the last hidden state (or logits, with a head) and the image features.
#[derive(Debug, Clone)]
pub struct VlOutput {
    /// `[batch, seq, hidden]`, or `[batch, kept, vocab]` logits with a head.
    pub output: Tensor,
    /// `[image tokens, hidden]`, when the inputs had images.
    pub image_features: Option<Tensor>,
}

fn first_present(vb: &VarBuilder<'_>, prefixes: &[&'static str], probe: &str) -> &'static str {
    prefixes.iter().copied().find(|p| vb.contains_tensor(&format!("{p}.{probe}"))).unwrap_or(prefixes[0])
}

const PATCH_EMBED: &str = "patch_embed.proj.weight";
const EMBED_TOKENS: &str = "embed_tokens.weight";

/// Cos and sin `[batch, seq, head_dim / 2]` of the three position rows (`[batch * seq]` each),
/// interleaved as `Qwen3VLTextRotaryEmbedding` does: frequency `j` takes the h row when
/// `j % 3 == 1` and `j < 3 * mrope_section[1]`, the w row when `j % 3 == 2` and
/// `j < 3 * mrope_section[2]`, else the t row.
pub fn interleaved_mrope_cos_sin(
    rotary: &RotaryEmbedding,
    rows: &[Vec<i64>; 3],
    (batch, seq): (usize, usize),
    mrope_section: &[usize],
    dtype: DType,
    device: &Device,
) -> Result<CosSin> {
    let max = rows.iter().flatten().copied().max().unwrap_or(0).max(0) as usize;
    let mut per_row = Vec::with_capacity(3);
    for row in rows {
        if row.iter().any(|&p| p < 0 || p > u32::MAX as i64) {
            return Err(Error::input("a rope position is negative or too large".to_owned()));
        }
        let pos: Vec<u32> = row.iter().map(|&p| p as u32).collect();
        let pos = Tensor::from_vec(pos, (batch, seq), device)?;
        per_row.push(rotary.cos_sin(&pos, max, DType::F32)?);
    }
    let half = per_row[0].cos.dim(candle_core::D::Minus1)?;
    let row_of = |j: usize| -> usize {
        if j % 3 == 1 && j < 3 * mrope_section[1] {
            1
        } else if j % 3 == 2 && j < 3 * mrope_section[2] {
            2
        } else {
            0
        }
    };
    let masks: Vec<Vec<f32>> =
        (0..3).map(|r| (0..half).map(|j| if row_of(j) == r { 1.0 } else { 0.0 }).collect()).collect();
    let mut cos: Option<Tensor> = None;
    let mut sin: Option<Tensor> = None;
    for (r, m) in masks.iter().enumerate() {
        let m = Tensor::new(m.as_slice(), device)?;
        let c = per_row[r].cos.broadcast_mul(&m)?;
        let s = per_row[r].sin.broadcast_mul(&m)?;
        cos = Some(match cos {
            Some(acc) => (acc + c)?,
            None => c,
        });
        sin = Some(match sin {
            Some(acc) => (acc + s)?,
            None => s,
        });
    }
    let (Some(cos), Some(sin)) = (cos, sin) else {
        return Err(Error::input("no rope rows".to_owned()));
    };
    Ok(CosSin { cos: cos.to_dtype(dtype)?.contiguous()?, sin: sin.to_dtype(dtype)?.contiguous()? })
}

impl Qwen3VlCore {
    /// The base model from `vb` (`visual.*`, `language_model.*`; a checkpoint of the head model
    /// loads too).
    pub fn load_base(vb: VarBuilder<'_>, settings: &Settings) -> Result<Self> {
        let visual =
            VisionTower::load(vb.pp(first_present(&vb, &["visual", "model.visual"], PATCH_EMBED)), &settings.vision)?;
        let prefix = first_present(&vb, &["language_model", "model.language_model", "model"], EMBED_TOKENS);
        let lm = Lm::Base(DecoderModel::load(vb.pp(prefix), &settings.text)?);
        Self::assemble(visual, lm, settings, &vb)
    }

    /// The model with its `lm_head` from `vb` (`model.visual.*`, `model.language_model.*`,
    /// `lm_head`).
    pub fn load_with_head(vb: VarBuilder<'_>, settings: &Settings) -> Result<Self> {
        let visual =
            VisionTower::load(vb.pp(first_present(&vb, &["model.visual", "visual"], PATCH_EMBED)), &settings.vision)?;
        let prefix = first_present(&vb, &["model.language_model", "model"], EMBED_TOKENS);
        let lm = Lm::Head(CausalLm::load(vb.clone(), &settings.text, prefix)?);
        Self::assemble(visual, lm, settings, &vb)
    }

    fn assemble(visual: VisionTower, lm: Lm, settings: &Settings, vb: &VarBuilder<'_>) -> Result<Self> {
        let rotary = RotaryEmbedding::new(settings.text.rope.clone(), settings.text.head_dim, vb.device())?;
        Ok(Self { visual, lm, rotary, settings: settings.clone() })
    }

    /// The language model without its head.
    pub fn decoder(&self) -> &DecoderModel {
        match &self.lm {
            Lm::Base(m) => m,
            Lm::Head(h) => h.model(),
        }
    }

    /// The vision tower.
    pub fn visual(&self) -> &VisionTower {
        &self.visual
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Run on `inputs` (`input_ids`, `attention_mask`, `position_ids`, `pixel_values`,
    /// `image_grid_thw`, `mm_token_type_ids`), with `cache` when given.
    pub fn run(&self, inputs: &ModelInputs, mut cache: Option<&mut KvCache>) -> Result<VlOutput> {
        let input_ids = inputs.input_ids()?;
        let (batch, seq) = dims2_int(input_ids, "input_ids")?;
        let past = cache.as_deref().map_or(0, KvCache::seq_len);
        let device = self.decoder().device().clone();
        let mut embeds = self.decoder().embed(input_ids)?;
        let ids: Vec<i64> = input_ids.to_dtype(DType::I64)?.flatten_all()?.to_vec1()?;
        let image_id = i64::from(self.settings.image_token_id);
        let n_image_tokens = ids.iter().filter(|&&i| i == image_id).count();

        let mut grids = None;
        let mut image_features = None;
        let mut residuals = Vec::new();
        match (&inputs.pixel_values, &inputs.image_grid_thw) {
            (Some(pixels), Some(grid_thw)) => {
                let g = self.visual.grids(pixels, grid_thw)?;
                let out = self.visual.forward(pixels, &g)?;
                let zeros = embeds.zeros_like()?;
                embeds = autocandle_vlm::merge_image_features(
                    &embeds,
                    input_ids,
                    self.settings.image_token_id,
                    &out.features,
                )?;
                let layers = self.settings.text.num_hidden_layers;
                for feature in out.deepstack.iter().take(layers) {
                    residuals.push(autocandle_vlm::merge_image_features(
                        &zeros,
                        input_ids,
                        self.settings.image_token_id,
                        feature,
                    )?);
                }
                image_features = Some(out.features);
                grids = Some(g);
            }
            (Some(_), None) => {
                return Err(Error::input(
                    "`qwen3_vl` needs `image_grid_thw` with `pixel_values`: give the processor's output".to_owned(),
                ))
            }
            (None, Some(_)) => {
                return Err(Error::input(
                    "`image_grid_thw` was given without `pixel_values`: give both (the processor's output)".to_owned(),
                ))
            }
            (None, None) if past == 0 && n_image_tokens > 0 => {
                return Err(Error::input(format!(
                    "the prompt has {n_image_tokens} image tokens (id {image_id}) but no `pixel_values` were given"
                )))
            }
            (None, None) => {}
        }

        // Positions: [3][batch * seq].
        let keep: Option<Vec<Vec<bool>>> = match &inputs.attention_mask {
            Some(mask) => {
                if mask.rank() != 2 || mask.dim(0)? != batch || mask.dim(1)? != past + seq {
                    return Err(Error::input(format!(
                        "`attention_mask` has shape {:?} but must have shape [batch, cached + new] = [{batch}, {}]",
                        mask.dims(),
                        past + seq
                    )));
                }
                let rows: Vec<Vec<i64>> = mask.to_dtype(DType::I64)?.to_vec2()?;
                Some(rows.into_iter().map(|r| r.into_iter().map(|v| v != 0).collect()).collect())
            }
            None => None,
        };
        let text_positions = |offset: &[i64], from_mask: bool| -> Result<Vec<i64>> {
            let base: Vec<i64> = match (&inputs.position_ids, &keep) {
                (Some(p), _) if p.rank() == 2 => {
                    let (pb, ps) = p.dims2()?;
                    if ps != seq || (pb != batch && pb != 1) {
                        return Err(Error::input(format!(
                            "`position_ids` has shape {:?}; expected [{batch}, {seq}]",
                            p.dims()
                        )));
                    }
                    let v: Vec<i64> = p.to_dtype(DType::I64)?.flatten_all()?.to_vec1()?;
                    (0..batch).flat_map(|b| v[(b % pb) * seq..(b % pb + 1) * seq].to_vec()).collect()
                }
                (_, Some(keep)) if from_mask => keep
                    .iter()
                    .flat_map(|row| {
                        let mut seen = 0i64;
                        let all: Vec<i64> = row
                            .iter()
                            .map(|&k| {
                                seen += i64::from(k);
                                if k {
                                    seen - 1
                                } else {
                                    0
                                }
                            })
                            .collect();
                        all[past..].to_vec()
                    })
                    .collect(),
                _ => (0..batch).flat_map(|_| (past as i64)..(past + seq) as i64).collect(),
            };
            Ok(base.iter().enumerate().map(|(i, p)| p + offset[i / seq]).collect())
        };
        let rows: [Vec<i64>; 3] = match (&inputs.position_ids, &grids) {
            (Some(p), _) if p.rank() == 3 => {
                let (n, pb, ps) = p.dims3()?;
                if !(n == 3 || n == 4) || pb != batch || ps != seq {
                    return Err(Error::input(format!(
                        "3D `position_ids` must have shape [3 or 4, {batch}, {seq}], got {:?}",
                        p.dims()
                    )));
                }
                let p = p.narrow(0, n - 3, 3)?.to_dtype(DType::I64)?;
                let r: Vec<Vec<i64>> =
                    (0..3).map(|i| Ok(p.get(i)?.flatten_all()?.to_vec1::<i64>()?)).collect::<Result<Vec<_>>>()?;
                [r[0].clone(), r[1].clone(), r[2].clone()]
            }
            (_, Some(grids)) if past == 0 => {
                let types: Vec<Vec<i64>> = match &inputs.mm_token_type_ids {
                    Some(t) => {
                        if t.dims() != [batch, seq] {
                            return Err(Error::input(format!(
                                "`mm_token_type_ids` has shape {:?} but `input_ids` is [{batch}, {seq}]",
                                t.dims()
                            )));
                        }
                        t.to_dtype(DType::I64)?.to_vec2()?
                    }
                    None => ids.chunks(seq).map(|r| r.iter().map(|&i| i64::from(i == image_id)).collect()).collect(),
                };
                let index = rope_index(&types, keep.as_deref(), grids, self.settings.vision.spatial_merge_size)?;
                if let Some(cache) = cache.as_deref_mut() {
                    cache.set_state(ROPE_DELTAS, Tensor::new(index.deltas.as_slice(), &device)?.unsqueeze(1)?);
                }
                index.rows
            }
            _ => {
                let cached = cache.as_deref().and_then(|c| c.state(ROPE_DELTAS)).filter(|_| past > 0);
                let deltas: Vec<i64> = match cached {
                    Some(d) => {
                        let d: Vec<i64> = d.flatten_all()?.to_dtype(DType::I64)?.to_vec1()?;
                        if d.is_empty() || !batch.is_multiple_of(d.len()) {
                            return Err(Error::input(format!(
                                "the cache holds `rope_deltas` for {} rows but the input has {batch}",
                                d.len()
                            )));
                        }
                        let rep = batch / d.len();
                        d.iter().flat_map(|&x| std::iter::repeat_n(x, rep)).collect()
                    }
                    _ => vec![0; batch],
                };
                let t = text_positions(&deltas, cached.is_some())?;
                [t.clone(), t.clone(), t]
            }
        };
        let cos_sin = interleaved_mrope_cos_sin(
            &self.rotary,
            &rows,
            (batch, seq),
            &self.settings.mrope_section,
            self.decoder().dtype(),
            &device,
        )?;
        let mut lm_inputs = ModelInputs::default();
        lm_inputs.attention_mask = inputs.attention_mask.clone();
        lm_inputs.logits_to_keep = inputs.logits_to_keep;
        let extras = DecoderExtras::new().with_cos_sin(cos_sin).with_layer_residuals(residuals);
        let hidden = self.decoder().forward_embeds(&embeds, &lm_inputs, cache, &extras)?;
        let output = match &self.lm {
            Lm::Base(_) => hidden,
            Lm::Head(head) => head.logits(&inputs.keep_for_logits(&hidden)?)?,
        };
        Ok(VlOutput { output, image_features })
    }
}
