//! [`SwinModel`] and [`SwinBackbone`]: the embeddings, the stages of shifted-window blocks with
//! patch merging, the final LayerNorm and the average pooler, as `transformers`'
//! `modeling_swin.SwinModel` / `SwinBackbone` (5.25).

use autocandle_core::nn::{linear, linear_b, linear_no_bias, Linear};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use autocandle_core::{
    Activation, AutoRegister, BaseModelOutput, Error, LoadModel, Model, ModelInputs, PreTrainedModel, Result,
};

use crate::config::SwinConfig;
use crate::embeddings::{SwinEmbeddings, TORCH_LAYER_NORM_EPS};
use crate::heads::SwinBody;
use crate::window::{combined_mask, merge_gather, relative_bias, windowed, WindowShift};

/// `SwinAttention`: `attention.self.{query,key,value}` (scaled dot product plus the relative
/// position bias of `attention.self.relative_position_bias_table`) and `attention.output.dense`.
#[derive(Debug)]
struct Attention {
    query: Linear,
    key: Linear,
    value: Linear,
    output: Linear,
    /// `[1, heads, window², window²]` f32, looked up once from the table.
    bias: Tensor,
    num_heads: usize,
    head_dim: usize,
}

impl Attention {
    fn load(vb: VarBuilder<'_>, cfg: &SwinConfig, dim: usize, num_heads: usize) -> Result<Self> {
        let attn = vb.pp("self");
        let w = cfg.window_size;
        let table = attn.get(((2 * w - 1) * (2 * w - 1), num_heads), "relative_position_bias_table")?;
        Ok(Self {
            query: linear_b(dim, dim, cfg.qkv_bias, attn.pp("query"))?,
            key: linear_b(dim, dim, cfg.qkv_bias, attn.pp("key"))?,
            value: linear_b(dim, dim, cfg.qkv_bias, attn.pp("value"))?,
            output: linear(dim, dim, vb.pp("output.dense"))?,
            bias: relative_bias(&table, w)?,
            num_heads,
            head_dim: dim / num_heads,
        })
    }

    /// `windows` `[batch * windows, n, dim]`, `mask` `[windows, n, n]`.
    fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (bw, n, dim) = x.dims3()?;
        let heads = |proj: &Linear| -> Result<Tensor> {
            Ok(proj.forward(x)?.reshape((bw, n, self.num_heads, self.head_dim))?.transpose(1, 2)?.contiguous()?)
        };
        let (q, k, v) = (heads(&self.query)?, heads(&self.key)?, heads(&self.value)?);
        let scores = autocandle_core::kernels::matmul(&q, &k.t()?)?;
        let probs = window_softmax(&scores, (self.head_dim as f64).powf(-0.5), &self.bias, mask, 1.0)?;
        let context = autocandle_core::kernels::matmul(&probs.to_dtype(v.dtype())?, &v)?
            .transpose(1, 2)?
            .reshape((bw, n, dim))?;
        Ok(self.output.forward(&context)?)
    }
}

/// `softmax(scores * scale + bias + mask_scale * mask)` over windows (shared with Swin v2): `scores`
/// `[batch * windows, heads, n, n]`, `bias` `[1, heads, n, n]`, `mask` `[windows, n, n]`.
pub fn window_softmax(
    scores: &Tensor,
    scale: f64,
    bias: &Tensor,
    mask: Option<&Tensor>,
    mask_scale: f64,
) -> Result<Tensor> {
    let (bw, heads, n, _) = scores.dims4()?;
    let combined = combined_mask(bias, mask, mask_scale)?;
    match mask {
        None => Ok(autocandle_core::kernels::masked_softmax(scores, scale, Some(&combined))?),
        Some(mask) => {
            let windows = mask.dim(0)?;
            let grouped = scores.reshape((bw / windows, windows * heads, n, n))?;
            let probs = autocandle_core::kernels::masked_softmax(&grouped, scale, Some(&combined))?;
            Ok(probs.reshape((bw, heads, n, n))?)
        }
    }
}

/// `SwinLayer`: pre-norm shifted-window attention and MLP, each with a residual.
#[derive(Debug)]
struct Block {
    layernorm_before: LayerNorm,
    attention: Attention,
    layernorm_after: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    activation: Activation,
    window: usize,
    shift: usize,
}

impl Block {
    fn load(vb: VarBuilder<'_>, cfg: &SwinConfig, dim: usize, num_heads: usize, shift: usize) -> Result<Self> {
        let hidden = cfg.mlp_dim(dim);
        Ok(Self {
            layernorm_before: layer_norm(dim, cfg.layer_norm_eps, vb.pp("layernorm_before"))?,
            attention: Attention::load(vb.pp("attention"), cfg, dim, num_heads)?,
            layernorm_after: layer_norm(dim, cfg.layer_norm_eps, vb.pp("layernorm_after"))?,
            fc1: linear(dim, hidden, vb.pp("intermediate.dense"))?,
            fc2: linear(hidden, dim, vb.pp("output.dense"))?,
            activation: cfg.hidden_act,
            window: cfg.window_size,
            shift,
        })
    }

    /// The window and shift on a `(height, width)` grid: `set_shift_and_window_size` unless
    /// `always_partition` (the backbone). `transformers` 5 keeps the relative position bias of
    /// the configured window, so a grid smaller than the window fails there; here it is an error.
    fn geometry(&self, (height, width): (usize, usize), always_partition: bool) -> Option<WindowShift> {
        let side = height.min(width);
        if always_partition || side > self.window {
            Some(WindowShift { window: self.window, shift: self.shift })
        } else if side == self.window {
            Some(WindowShift { window: self.window, shift: 0 })
        } else {
            None
        }
    }

    fn forward(&self, x: &Tensor, hw: (usize, usize), geometry: WindowShift) -> Result<Tensor> {
        let normed = self.layernorm_before.forward(x)?;
        let attended = windowed(&normed, hw, geometry, |windows, mask| self.attention.forward(windows, mask))?;
        let x = (x + attended)?;
        let y = self.fc2.forward(&self.activation.forward(&self.fc1.forward(&self.layernorm_after.forward(&x)?)?)?)?;
        Ok((x + y)?)
    }
}

/// `SwinPatchMerging`: the 2x2 gather (zero-padded to even sides), `norm` over `4 dim`, then
/// `reduction` to `2 dim`.
#[derive(Debug)]
struct PatchMerging {
    norm: LayerNorm,
    reduction: Linear,
}

impl PatchMerging {
    fn load(vb: VarBuilder<'_>, dim: usize) -> Result<Self> {
        Ok(Self {
            norm: layer_norm(4 * dim, TORCH_LAYER_NORM_EPS, vb.pp("norm"))?,
            reduction: linear_no_bias(4 * dim, 2 * dim, vb.pp("reduction"))?,
        })
    }

    fn forward(&self, x: &Tensor, hw: (usize, usize)) -> Result<Tensor> {
        Ok(self.reduction.forward(&self.norm.forward(&merge_gather(x, hw)?)?)?)
    }
}

/// `SwinStage`: blocks (odd ones shifted by half a window) and the patch merging after all
/// but the last stage.
#[derive(Debug)]
struct Stage {
    blocks: Vec<Block>,
    downsample: Option<PatchMerging>,
}

/// The patch grid after patch merging (`(h + 1) // 2`, `(w + 1) // 2`).
pub(crate) fn halved((h, w): (usize, usize)) -> (usize, usize) {
    (h.div_ceil(2), w.div_ceil(2))
}

/// The states an encoder run yields: the output of the last stage and, when asked, the
/// embeddings and each stage's output before its patch merging, with their grids.
pub(crate) struct EncoderRun {
    pub(crate) last: Tensor,
    pub(crate) stages: Vec<(Tensor, (usize, usize))>,
}

/// The Swin network without a head (`SwinModel`): `last_hidden_state` `[B, patches of the
/// last stage, num_features]` and `pooler_output` `[B, num_features]` (the mean over patches).
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "SwinModel")]
pub struct SwinModel {
    embeddings: SwinEmbeddings,
    stages: Vec<Stage>,
    /// `None` in the backbone, which does not use it.
    layernorm: Option<LayerNorm>,
    pool: bool,
    window_size: usize,
    patch_size: usize,
    device: Device,
    dtype: DType,
}

impl SwinModel {
    /// `vb` is the model root (`swin` in head models). The heads build it without the pooler;
    /// masked image modeling with the mask token.
    pub fn new(vb: VarBuilder<'_>, cfg: &SwinConfig, add_pooling_layer: bool, use_mask_token: bool) -> Result<Self> {
        Self::build(vb, cfg, add_pooling_layer, use_mask_token, true)
    }

    fn build(vb: VarBuilder<'_>, cfg: &SwinConfig, pool: bool, use_mask_token: bool, final_norm: bool) -> Result<Self> {
        cfg.validate()?;
        let mut stages = Vec::with_capacity(cfg.depths.len());
        for (i, (&depth, &heads)) in cfg.depths.iter().zip(&cfg.num_heads).enumerate() {
            let dim = cfg.stage_dim(i);
            let svb = vb.pp(format!("encoder.layers.{i}"));
            let blocks = (0..depth)
                .map(|j| {
                    let shift = if j % 2 == 0 { 0 } else { cfg.window_size / 2 };
                    Block::load(svb.pp(format!("blocks.{j}")), cfg, dim, heads, shift)
                })
                .collect::<Result<_>>()?;
            let downsample =
                if i + 1 < cfg.depths.len() { Some(PatchMerging::load(svb.pp("downsample"), dim)?) } else { None };
            stages.push(Stage { blocks, downsample });
        }
        let layernorm = if final_norm {
            Some(layer_norm(cfg.num_features(), cfg.layer_norm_eps, vb.pp("layernorm"))?)
        } else {
            None
        };
        let (ph, pw) = cfg.patch_size.hw();
        Ok(Self {
            embeddings: SwinEmbeddings::load(vb.pp("embeddings"), cfg, use_mask_token)?,
            stages,
            layernorm,
            pool,
            window_size: cfg.window_size,
            patch_size: ph.max(pw),
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }

    /// Run the embeddings and the stages; `keep_stages` collects the embeddings and each stage's
    /// output before patch merging.
    pub(crate) fn encode(
        &self,
        pixel_values: &Tensor,
        bool_masked_pos: Option<&Tensor>,
        interpolate_pos_encoding: bool,
        always_partition: bool,
        keep_stages: bool,
    ) -> Result<EncoderRun> {
        let pixel_values = pixel_values.to_device(&self.device)?.to_dtype(self.dtype)?;
        let mask = bool_masked_pos.map(|m| m.to_device(&self.device)).transpose()?;
        let (mut x, mut hw) = self.embeddings.forward(&pixel_values, mask.as_ref(), interpolate_pos_encoding)?;
        let mut stages = Vec::new();
        if keep_stages {
            stages.push((x.clone(), hw));
        }
        let last_stage = self.stages.len();
        for (i, stage) in self.stages.iter().enumerate() {
            for block in &stage.blocks {
                let geometry = block.geometry(hw, always_partition).ok_or_else(|| {
                    let least = (self.patch_size * self.window_size) << (last_stage - 1);
                    Error::input(format!(
                        "stage {} works on a {}x{} grid of patches, smaller than `window_size` ({}); transformers \
                         fails on it too (the relative position bias is fixed to the window): use images of at \
                         least about {least} pixels a side",
                        i + 1,
                        hw.0,
                        hw.1,
                        self.window_size
                    ))
                })?;
                x = block.forward(&x, hw, geometry)?;
            }
            if keep_stages {
                stages.push((x.clone(), hw));
            }
            if let Some(merge) = &stage.downsample {
                x = merge.forward(&x, hw)?;
                hw = halved(hw);
            }
        }
        Ok(EncoderRun { last: x, stages })
    }
}

impl SwinBody for SwinModel {
    type Config = SwinConfig;
    const PREFIX: &'static str = "swin";

    fn load_body(vb: VarBuilder<'_>, config: &SwinConfig, pool: bool, use_mask_token: bool) -> Result<Self> {
        Self::new(vb, config, pool, use_mask_token)
    }

    fn swin_config(config: &SwinConfig) -> &SwinConfig {
        config
    }

    fn sequence_output(&self, inputs: &ModelInputs) -> Result<Tensor> {
        let run = self.encode(
            inputs.pixel_values()?,
            inputs.bool_masked_pos.as_ref(),
            inputs.interpolate_pos_encoding,
            false,
            false,
        )?;
        match &self.layernorm {
            Some(norm) => Ok(norm.forward(&run.last)?),
            None => Ok(run.last),
        }
    }
}

impl LoadModel for SwinModel {
    type Config = SwinConfig;
    const BASE_MODEL_PREFIX: &'static str = "swin";

    fn load(vb: VarBuilder<'_>, config: &SwinConfig) -> Result<Self> {
        Self::new(vb, config, true, false)
    }
}

impl PreTrainedModel for SwinModel {
    fn device(&self) -> &Device {
        &self.device
    }

    fn dtype(&self) -> DType {
        self.dtype
    }
}

impl Model for SwinModel {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let sequence = self.sequence_output(inputs)?;
        let pooled = if self.pool { Some(sequence.mean(1)?) } else { None };
        Ok(BaseModelOutput::new(sequence, pooled))
    }
}

/// `SwinBackbone`: the feature maps `[B, channels, h, w]` of the stages named by the config's
/// `out_features` / `out_indices` (`stem` is the embeddings), each taken before its stage's
/// patch merging and normalised by `hidden_states_norms.<stage>`. Windows are never shrunk to
/// the grid (`always_partition`), so any image of at least one patch runs.
///
/// Weights: `embeddings.*` and `encoder.*` (or `swin.embeddings.*`, `swin.encoder.*`; the final
/// `swin.layernorm` is not used) and `hidden_states_norms.<stage>.*`, under the `vb` given to
/// [`SwinBackbone::load`].
#[derive(Debug)]
pub struct SwinBackbone {
    swin: SwinModel,
    /// `(index into stage_names, norm)` of each output stage.
    outputs: Vec<(usize, LayerNorm)>,
    channels: Vec<usize>,
}

impl SwinBackbone {
    /// Load the backbone from its root `vb`: the network's weights at the root (`embeddings.*`,
    /// `encoder.*`, as the Hub's checkpoints and `save_pretrained` have them) or under `swin.`
    /// (`transformers`' module names), and `hidden_states_norms.<stage>.*`.
    pub fn load(config: &SwinConfig, vb: VarBuilder<'_>) -> Result<Self> {
        let nested = !vb.contains_tensor("embeddings.patch_embeddings.projection.weight")
            && vb.contains_tensor("swin.embeddings.patch_embeddings.projection.weight");
        let root = if nested { vb.pp("swin") } else { vb.clone() };
        let swin = SwinModel::build(root, config, false, false, false)?;
        let names = config.stage_names();
        let mut outputs = Vec::new();
        let mut channels = Vec::new();
        for stage in config.backbone_stages()? {
            let dim = if stage == 0 { config.embed_dim } else { config.stage_dim(stage - 1) };
            let norm = layer_norm(dim, TORCH_LAYER_NORM_EPS, vb.pp(format!("hidden_states_norms.{}", names[stage])))?;
            outputs.push((stage, norm));
            channels.push(dim);
        }
        Ok(Self { swin, outputs, channels })
    }

    /// Channels of each returned feature map, in order.
    pub fn channels(&self) -> &[usize] {
        &self.channels
    }

    /// `pixel_values` `[B, C, H, W]` -> one feature map `[B, channels, h, w]` per output stage.
    pub fn forward(&self, pixel_values: &Tensor) -> Result<Vec<Tensor>> {
        let run = self.swin.encode(pixel_values, None, false, true, true)?;
        self.outputs
            .iter()
            .map(|(stage, norm)| {
                let (x, (h, w)) = &run.stages[*stage];
                let (batch, _, channels) = x.dims3()?;
                Ok(norm.forward(x)?.reshape((batch, *h, *w, channels))?.permute((0, 3, 1, 2))?.contiguous()?)
            })
            .collect()
    }
}

impl PreTrainedModel for SwinBackbone {
    fn device(&self) -> &Device {
        &self.swin.device
    }

    fn dtype(&self) -> DType {
        self.swin.dtype
    }
}
