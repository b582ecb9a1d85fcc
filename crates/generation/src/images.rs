//! Generation with images: a vision-language model ([`ForImageTextToText`]) and the image
//! inputs of its prompt seen as one causal language model, so that the decoding loop, beam
//! search and the facade's `GenerationMixin` run on it unchanged.

use candle_core::{DType, Device, Tensor};

use autocandle_core::{
    CausalLmOutput, Error, ForCausalLm, ForImageTextToText, ImageTextToTextOutput, KvCache, ModelInputs,
    PreTrainedModel, Result,
};

/// A vision-language model and the images of the prompt being generated from
/// (`model.generate(input_ids, pixel_values=..., image_grid_thw=..., ...)`).
///
/// The prompt's image inputs (`pixel_values`, `pixel_mask`, `image_grid_thw`,
/// `pixel_attention_mask`, `image_sizes`) and its per-token inputs (`token_type_ids`,
/// `mm_token_type_ids`, one entry per prompt token) go with the pass that reads the prompt:
/// the first pass with a cache, every pass without one (the per-token inputs are then
/// extended over the generated tokens, as `transformers` extends `token_type_ids`). The later
/// cached passes carry the new tokens only, as `transformers`' `prepare_inputs_for_generation`
/// does for these models.
///
/// ```no_run
/// # use autocandle_core::{ForImageTextToText, ModelInputs, Result};
/// # use autocandle_generation::{generate, GenerationConfig, WithImages};
/// # fn demo(model: &dyn ForImageTextToText, processed: ModelInputs, prompt: Vec<u32>) -> Result<()> {
/// let out = generate(&WithImages::new(model, processed), vec![prompt], &GenerationConfig::new())?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct WithImages<'a, M: ForImageTextToText + ?Sized> {
    model: &'a M,
    images: ModelInputs,
}

impl<'a, M: ForImageTextToText + ?Sized> WithImages<'a, M> {
    /// `model` generating from a prompt whose image inputs are in `inputs` (a processor's
    /// output: its `input_ids` and `attention_mask` are not read here, the prompt is given to
    /// `generate`).
    pub fn new(model: &'a M, inputs: ModelInputs) -> Self {
        let mut images = ModelInputs::default().with_image_inputs_of(&inputs);
        images.token_type_ids = inputs.token_type_ids;
        images.mm_token_type_ids = inputs.mm_token_type_ids;
        images.interpolate_pos_encoding = inputs.interpolate_pos_encoding;
        Self { model, images }
    }

    /// The model.
    pub fn model(&self) -> &'a M {
        self.model
    }

    /// `inputs` with the prompt's image inputs, and its per-token inputs fitted to the width of
    /// `inputs.input_ids` (extended with `model.generated_token_type_id` over generated tokens).
    fn with_images(&self, inputs: &ModelInputs) -> Result<ModelInputs> {
        let mut merged = self.offset_positions(inputs)?.with_image_inputs_of(&self.images);
        merged.interpolate_pos_encoding = self.images.interpolate_pos_encoding;
        let (rows, width) = inputs.input_ids()?.dims2()?;
        merged.token_type_ids = self.per_token(self.images.token_type_ids.as_ref(), "token_type_ids", rows, width)?;
        merged.mm_token_type_ids =
            self.per_token(self.images.mm_token_type_ids.as_ref(), "mm_token_type_ids", rows, width)?;
        Ok(merged)
    }

    /// `inputs` with `model.generation_position_offset` added to its `position_ids`.
    fn offset_positions(&self, inputs: &ModelInputs) -> Result<ModelInputs> {
        let mut inputs = inputs.clone();
        let offset = self.model.generation_position_offset();
        if let (Some(p), true) = (&inputs.position_ids, offset > 0) {
            inputs.position_ids = Some((p.to_dtype(DType::F64)? + f64::from(offset))?.to_dtype(p.dtype())?);
        }
        Ok(inputs)
    }

    fn per_token(&self, given: Option<&Tensor>, name: &str, rows: usize, width: usize) -> Result<Option<Tensor>> {
        let Some(t) = given else { return Ok(None) };
        let (t_rows, t_width) = t
            .dims2()
            .map_err(|_| Error::input(format!("`{name}` must have shape [batch, prompt_len], got {:?}", t.dims())))?;
        if t_rows != rows || t_width > width {
            return Err(Error::input(format!(
                "`{name}` has shape {:?} but the prompt being generated from is [{rows}, {width}]: give the \
                 processor's output for the same prompt",
                t.dims()
            )));
        }
        if t_width == width {
            return Ok(Some(t.clone()));
        }
        let values = t.to_dtype(DType::I64)?.to_vec2::<i64>()?;
        let extended: Vec<i64> = values
            .iter()
            .flat_map(|row| {
                let last = row.last().copied().unwrap_or(0);
                let fill = i64::from(self.model.generated_token_type_id(name, last.max(0) as u32));
                row.iter().copied().chain(std::iter::repeat_n(fill, width - t_width))
            })
            .collect();
        Ok(Some(Tensor::from_vec(extended, (rows, width), t.device())?))
    }
}

fn causal(out: ImageTextToTextOutput) -> CausalLmOutput {
    CausalLmOutput::new(out.logits)
}

impl<M: ForImageTextToText + ?Sized> PreTrainedModel for WithImages<'_, M> {
    fn device(&self) -> &Device {
        self.model.device()
    }

    fn dtype(&self) -> DType {
        self.model.dtype()
    }
}

impl<M: ForImageTextToText + ?Sized> ForCausalLm for WithImages<'_, M> {
    fn forward(&self, inputs: &ModelInputs) -> Result<CausalLmOutput> {
        Ok(causal(self.model.forward(&self.with_images(inputs)?)?))
    }

    fn forward_with_cache(&self, inputs: &ModelInputs, cache: &mut KvCache) -> Result<CausalLmOutput> {
        if cache.seq_len() == 0 {
            let merged = self.with_images(inputs)?;
            return Ok(causal(self.model.forward_with_cache(&merged, cache)?));
        }
        Ok(causal(self.model.forward_with_cache(&self.offset_positions(inputs)?, cache)?))
    }

    fn supports_cache(&self) -> bool {
        self.model.supports_cache()
    }

    fn max_positions(&self) -> Option<usize> {
        self.model.max_positions()
    }
}
