//! [`Swinv2Model`] and [`Swinv2Backbone`]: Swin's embeddings and window machinery with v2's
//! blocks (cosine attention with a learned logit scale, the continuous position bias MLP,
//! res-post-norm) and patch merging (reduction, then norm), as `transformers`'
//! `modeling_swinv2` (5.25).

use autocandle_core::nn::{linear, linear_b, linear_no_bias, Linear};
use candle_core::{DType, Device, Module, Tensor, D};
use candle_nn::{layer_norm, LayerNorm, VarBuilder};

use autocandle_core::{
    Activation, AutoRegister, BaseModelOutput, LoadModel, Model, ModelInputs, PreTrainedModel, Result,
};
use autocandle_swin::window::{merge_gather, relative_position_index, windowed, WindowShift};
use autocandle_swin::{window_softmax, SwinBody, SwinConfig, SwinEmbeddings, TORCH_LAYER_NORM_EPS};

use crate::config::Swinv2Config;

/// Width of the hidden layer of the continuous position bias MLP.
const CPB_HIDDEN: usize = 512;
/// The largest logit scale, `log(1 / 0.01)`.
const MAX_LOGIT_SCALE: f64 = 4.605_170_185_988_092;

/// The log-spaced relative coordinates `[(2 w - 1)², 2]` of a `window` x `window` window
/// (`create_coords_table_and_index`): divided by `pretrained - 1` (or `window - 1`), times 8,
/// then `sign(x) * log2(|x| + 1) / 3`, in f32 as `transformers` computes them.
pub(crate) fn relative_coords_table(window: usize, pretrained: usize) -> Vec<f32> {
    let side = 2 * window - 1;
    let divisor = if pretrained > 0 {
        Some((pretrained - 1) as f32)
    } else if window > 1 {
        Some((window - 1) as f32)
    } else {
        None
    };
    let scale = |d: f32| {
        let v = match divisor {
            Some(div) => d / div,
            None => d,
        } * 8.0;
        v.signum() * (v.abs() + 1.0).log2() / 3.0
    };
    let mut table = Vec::with_capacity(side * side * 2);
    for i in 0..side {
        for j in 0..side {
            let dh = i as f32 - (window as f32 - 1.0);
            let dw = j as f32 - (window as f32 - 1.0);
            table.push(if dh == 0.0 { 0.0 } else { scale(dh) });
            table.push(if dw == 0.0 { 0.0 } else { scale(dw) });
        }
    }
    table
}

/// `Swinv2Attention`: `attention.self.{query,key,value}` (no bias on the key), cosine
/// similarity times `exp(min(logit_scale, log 100))`, plus `16 sigmoid` of the continuous
/// position bias MLP (`continuous_position_bias_mlp.{0,2}`); `attention.output.dense`.
#[derive(Debug)]
struct Attention {
    query: Linear,
    key: Linear,
    value: Linear,
    output: Linear,
    /// `[1, heads, 1, 1]`, already clamped and exponentiated.
    logit_scale: Tensor,
    /// `[1, heads, window², window²]` f32: `16 sigmoid(cpb_mlp(coords))` at the index.
    bias: Tensor,
    num_heads: usize,
    head_dim: usize,
}

impl Attention {
    fn load(
        vb: VarBuilder<'_>,
        cfg: &SwinConfig,
        dim: usize,
        num_heads: usize,
        window: usize,
        pretrained: usize,
    ) -> Result<Self> {
        let attn = vb.pp("self");
        let logit_scale = attn
            .get((num_heads, 1, 1), "logit_scale")?
            .minimum(MAX_LOGIT_SCALE)?
            .exp()?
            .reshape((1, num_heads, 1, 1))?;
        let mlp = attn.pp("continuous_position_bias_mlp");
        let fc1 = linear(2, CPB_HIDDEN, mlp.pp("0"))?;
        let fc2 = linear_no_bias(CPB_HIDDEN, num_heads, mlp.pp("2"))?;
        let side = 2 * window - 1;
        let coords = Tensor::from_vec(relative_coords_table(window, pretrained), (side * side, 2), vb.device())?
            .to_dtype(vb.dtype())?;
        let table = fc2.forward(&fc1.forward(&coords)?.relu()?)?.to_dtype(DType::F32)?;
        let n = window * window;
        let index = Tensor::from_vec(relative_position_index(window), n * n, vb.device())?;
        let bias = table.index_select(&index, 0)?.reshape((n, n, num_heads))?.permute((2, 0, 1))?;
        let bias = (candle_nn::ops::sigmoid(&bias)? * 16.0)?.contiguous()?.unsqueeze(0)?;
        Ok(Self {
            query: linear_b(dim, dim, cfg.qkv_bias, attn.pp("query"))?,
            key: linear_no_bias(dim, dim, attn.pp("key"))?,
            value: linear_b(dim, dim, cfg.qkv_bias, attn.pp("value"))?,
            output: linear(dim, dim, vb.pp("output.dense"))?,
            logit_scale,
            bias,
            num_heads,
            head_dim: dim / num_heads,
        })
    }

    fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (bw, n, dim) = x.dims3()?;
        let heads = |proj: &Linear| -> Result<Tensor> {
            Ok(proj.forward(x)?.reshape((bw, n, self.num_heads, self.head_dim))?.transpose(1, 2)?.contiguous()?)
        };
        // `F.normalize`: x / max(|x|, 1e-12), in f32 (in half precision the 1e-12 would be 0).
        let normalize = |t: Tensor| -> Result<Tensor> {
            let wide = t.to_dtype(DType::F32)?;
            let norm = wide.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?.maximum(1e-12)?;
            Ok(wide.broadcast_div(&norm)?.to_dtype(t.dtype())?)
        };
        let q = normalize(heads(&self.query)?)?;
        let k = normalize(heads(&self.key)?)?;
        let v = heads(&self.value)?;
        let scores = autocandle_core::kernels::matmul(&q, &k.t()?)?.broadcast_mul(&self.logit_scale)?;
        // transformers adds the shifted-window mask twice.
        let probs = window_softmax(&scores.contiguous()?, 1.0, &self.bias, mask, 2.0)?;
        let context = autocandle_core::kernels::matmul(&probs.to_dtype(v.dtype())?, &v)?
            .transpose(1, 2)?
            .reshape((bw, n, dim))?;
        Ok(self.output.forward(&context)?)
    }
}

/// `Swinv2Layer`: windowed attention and MLP, each normalised after (res-post-norm) and added
/// to the residual.
#[derive(Debug)]
struct Block {
    attention: Attention,
    layernorm_before: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    layernorm_after: LayerNorm,
    activation: Activation,
    geometry: WindowShift,
}

impl Block {
    fn load(vb: VarBuilder<'_>, cfg: &Swinv2Config, stage: usize, shifted: bool) -> Result<Self> {
        let swin = &cfg.swin;
        let dim = swin.stage_dim(stage);
        let (window, shift) = cfg.stage_window(stage);
        let hidden = swin.mlp_dim(dim);
        Ok(Self {
            attention: Attention::load(
                vb.pp("attention"),
                swin,
                dim,
                swin.num_heads[stage],
                window,
                cfg.pretrained_window_size(stage),
            )?,
            layernorm_before: layer_norm(dim, swin.layer_norm_eps, vb.pp("layernorm_before"))?,
            fc1: linear(dim, hidden, vb.pp("intermediate.dense"))?,
            fc2: linear(hidden, dim, vb.pp("output.dense"))?,
            layernorm_after: layer_norm(dim, swin.layer_norm_eps, vb.pp("layernorm_after"))?,
            activation: swin.hidden_act,
            geometry: WindowShift { window, shift: if shifted { shift } else { 0 } },
        })
    }

    fn forward(&self, x: &Tensor, hw: (usize, usize)) -> Result<Tensor> {
        let attended = windowed(x, hw, self.geometry, |windows, mask| self.attention.forward(windows, mask))?;
        let x = (x + self.layernorm_before.forward(&attended)?)?;
        let y = self.fc2.forward(&self.activation.forward(&self.fc1.forward(&x)?)?)?;
        Ok((&x + self.layernorm_after.forward(&y)?)?)
    }
}

/// `Swinv2PatchMerging`: the 2x2 gather (zero-padded to even sides), `reduction` to `2 dim`,
/// then `norm`.
#[derive(Debug)]
struct PatchMerging {
    reduction: Linear,
    norm: LayerNorm,
}

impl PatchMerging {
    fn load(vb: VarBuilder<'_>, dim: usize) -> Result<Self> {
        Ok(Self {
            reduction: linear_no_bias(4 * dim, 2 * dim, vb.pp("reduction"))?,
            norm: layer_norm(2 * dim, TORCH_LAYER_NORM_EPS, vb.pp("norm"))?,
        })
    }

    fn forward(&self, x: &Tensor, hw: (usize, usize)) -> Result<Tensor> {
        Ok(self.norm.forward(&self.reduction.forward(&merge_gather(x, hw)?)?)?)
    }
}

#[derive(Debug)]
struct Stage {
    blocks: Vec<Block>,
    downsample: Option<PatchMerging>,
}

/// Stage outputs with their `(height, width)` grids.
type StageStates = Vec<(Tensor, (usize, usize))>;

/// The embeddings and the stages (`embeddings.*`, `encoder.layers.*`), shared by the model and
/// the backbone.
#[derive(Debug)]
struct Encoder {
    embeddings: SwinEmbeddings,
    stages: Vec<Stage>,
}

impl Encoder {
    fn load(vb: VarBuilder<'_>, cfg: &Swinv2Config, use_mask_token: bool) -> Result<Self> {
        cfg.validate()?;
        let n = cfg.swin.depths.len();
        let mut stages = Vec::with_capacity(n);
        for (i, &depth) in cfg.swin.depths.iter().enumerate() {
            let svb = vb.pp(format!("encoder.layers.{i}"));
            let blocks = (0..depth)
                .map(|j| Block::load(svb.pp(format!("blocks.{j}")), cfg, i, j % 2 == 1))
                .collect::<Result<_>>()?;
            let downsample =
                if i + 1 < n { Some(PatchMerging::load(svb.pp("downsample"), cfg.swin.stage_dim(i))?) } else { None };
            stages.push(Stage { blocks, downsample });
        }
        Ok(Self { embeddings: SwinEmbeddings::load(vb.pp("embeddings"), &cfg.swin, use_mask_token)?, stages })
    }

    /// The output of the last stage and, with `keep_stages`, the embeddings and every stage's
    /// output before patch merging, with their grids.
    fn forward(
        &self,
        pixel_values: &Tensor,
        bool_masked_pos: Option<&Tensor>,
        keep_stages: bool,
    ) -> Result<(Tensor, StageStates)> {
        let (mut x, mut hw) = self.embeddings.forward(pixel_values, bool_masked_pos, false)?;
        let mut kept = Vec::new();
        if keep_stages {
            kept.push((x.clone(), hw));
        }
        for stage in &self.stages {
            for block in &stage.blocks {
                x = block.forward(&x, hw)?;
            }
            if keep_stages {
                kept.push((x.clone(), hw));
            }
            if let Some(merge) = &stage.downsample {
                x = merge.forward(&x, hw)?;
                hw = (hw.0.div_ceil(2), hw.1.div_ceil(2));
            }
        }
        Ok((x, kept))
    }
}

/// The Swin v2 network without a head (`Swinv2Model`): `last_hidden_state` `[B, patches of the
/// last stage, num_features]` and `pooler_output` `[B, num_features]` (the mean over patches).
///
/// `interpolate_pos_encoding` has nothing to interpolate: Swin v2 with absolute position
/// embeddings does not run (see [`Swinv2Config::validate`]).
#[derive(Debug, AutoRegister)]
#[auto(task = "base", class = "Swinv2Model")]
pub struct Swinv2Model {
    encoder: Encoder,
    layernorm: LayerNorm,
    pool: bool,
    device: Device,
    dtype: DType,
}

impl Swinv2Model {
    /// `vb` is the model root (`swinv2` in head models). The heads build it without the pooler;
    /// masked image modeling with the mask token.
    pub fn new(vb: VarBuilder<'_>, cfg: &Swinv2Config, add_pooling_layer: bool, use_mask_token: bool) -> Result<Self> {
        Ok(Self {
            encoder: Encoder::load(vb.clone(), cfg, use_mask_token)?,
            layernorm: layer_norm(cfg.swin.num_features(), cfg.swin.layer_norm_eps, vb.pp("layernorm"))?,
            pool: add_pooling_layer,
            device: vb.device().clone(),
            dtype: vb.dtype(),
        })
    }
}

impl SwinBody for Swinv2Model {
    type Config = Swinv2Config;
    const PREFIX: &'static str = "swinv2";

    fn load_body(vb: VarBuilder<'_>, config: &Swinv2Config, pool: bool, use_mask_token: bool) -> Result<Self> {
        Self::new(vb, config, pool, use_mask_token)
    }

    fn swin_config(config: &Swinv2Config) -> &SwinConfig {
        &config.swin
    }

    fn sequence_output(&self, inputs: &ModelInputs) -> Result<Tensor> {
        let pixel_values = inputs.pixel_values()?.to_device(&self.device)?.to_dtype(self.dtype)?;
        let mask = inputs.bool_masked_pos.as_ref().map(|m| m.to_device(&self.device)).transpose()?;
        let (last, _) = self.encoder.forward(&pixel_values, mask.as_ref(), false)?;
        Ok(self.layernorm.forward(&last)?)
    }
}

impl LoadModel for Swinv2Model {
    type Config = Swinv2Config;
    const BASE_MODEL_PREFIX: &'static str = "swinv2";

    fn load(vb: VarBuilder<'_>, config: &Swinv2Config) -> Result<Self> {
        Self::new(vb, config, true, false)
    }
}

impl PreTrainedModel for Swinv2Model {
    fn device(&self) -> &Device {
        &self.device
    }

    fn dtype(&self) -> DType {
        self.dtype
    }
}

impl Model for Swinv2Model {
    fn forward(&self, inputs: &ModelInputs) -> Result<BaseModelOutput> {
        let sequence = self.sequence_output(inputs)?;
        let pooled = if self.pool { Some(sequence.mean(1)?) } else { None };
        Ok(BaseModelOutput::new(sequence, pooled))
    }
}

/// `Swinv2Backbone`: the feature maps `[B, channels, h, w]` of the stages named by the config's
/// `out_features` / `out_indices` (`stem` is the embeddings), each taken before its stage's
/// patch merging, without a further norm, as `transformers`.
///
/// Weights: `embeddings.*` and `encoder.*` under the `vb` given to [`Swinv2Backbone::load`].
#[derive(Debug)]
pub struct Swinv2Backbone {
    encoder: Encoder,
    stages: Vec<usize>,
    channels: Vec<usize>,
    device: Device,
    dtype: DType,
}

impl Swinv2Backbone {
    /// Load the backbone from its root `vb`.
    pub fn load(config: &Swinv2Config, vb: VarBuilder<'_>) -> Result<Self> {
        let encoder = Encoder::load(vb.clone(), config, false)?;
        let stages = config.swin.backbone_stages_as("swinv2")?;
        let channels =
            stages.iter().map(|&s| if s == 0 { config.swin.embed_dim } else { config.swin.stage_dim(s - 1) }).collect();
        Ok(Self { encoder, stages, channels, device: vb.device().clone(), dtype: vb.dtype() })
    }

    /// Channels of each returned feature map, in order.
    pub fn channels(&self) -> &[usize] {
        &self.channels
    }

    /// `pixel_values` `[B, C, H, W]` -> one feature map `[B, channels, h, w]` per output stage.
    pub fn forward(&self, pixel_values: &Tensor) -> Result<Vec<Tensor>> {
        let pixel_values = pixel_values.to_device(&self.device)?.to_dtype(self.dtype)?;
        let (_, kept) = self.encoder.forward(&pixel_values, None, true)?;
        self.stages
            .iter()
            .map(|&stage| {
                let (x, (h, w)) = &kept[stage];
                let (batch, _, channels) = x.dims3()?;
                Ok(x.reshape((batch, *h, *w, channels))?.permute((0, 3, 1, 2))?.contiguous()?)
            })
            .collect()
    }
}

impl PreTrainedModel for Swinv2Backbone {
    fn device(&self) -> &Device {
        &self.device
    }

    fn dtype(&self) -> DType {
        self.dtype
    }
}
