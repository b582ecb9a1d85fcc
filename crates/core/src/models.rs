//! Model inputs, one typed output per task, and one trait per task head.

use std::fmt::Debug;

use candle_core::{DType, Device, Tensor};

use crate::error::{Error, Result};

/// The inputs of a forward pass, named as the `transformers` forward arguments.
///
/// Integer tensors are `u32` or `i64`; `attention_mask` has 1 for tokens to attend to and 0
/// for padding.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ModelInputs {
    /// `[batch, seq]` token ids (`[batch, choices, seq]` for multiple choice).
    pub input_ids: Option<Tensor>,
    /// Same shape as `input_ids`; `None` attends to every token.
    pub attention_mask: Option<Tensor>,
    /// Same shape as `input_ids`; `None` is all zeros.
    pub token_type_ids: Option<Tensor>,
    /// Same shape as `input_ids`; `None` is `0..seq` for each row.
    pub position_ids: Option<Tensor>,
    /// `[batch, channels, height, width]` float images, as an image processor makes them.
    pub pixel_values: Option<Tensor>,
    /// `[batch, num_patches]`: 1 where a patch is masked (masked image modeling).
    pub bool_masked_pos: Option<Tensor>,
    /// `[batch, target_seq]` decoder token ids of encoder-decoder models.
    pub decoder_input_ids: Option<Tensor>,
    /// Same shape as `decoder_input_ids`; `None` attends to every decoder token.
    pub decoder_attention_mask: Option<Tensor>,
    /// Language-model heads that honour it compute the logits of the last `n` positions only
    /// (`transformers`' `logits_to_keep`); `None` (or 0) keeps every position. Generation
    /// asks for 1: the vocabulary projection of a whole prompt is wasted work.
    pub logits_to_keep: Option<usize>,
    /// `[batch, samples]` raw audio, as a wav2vec2-style feature extractor makes it
    /// (`input_values`).
    pub input_values: Option<Tensor>,
    /// `[batch, feature_size, frames]` log-mel features, as Whisper's feature extractor
    /// makes them (`input_features`).
    pub input_features: Option<Tensor>,
    /// `[batch, height, width]`: 1 for real pixels, 0 for padding (DETR-style detectors,
    /// whose image processor pads a batch to its largest image); `None` is all ones.
    pub pixel_mask: Option<Tensor>,
    /// Interpolate the position embeddings to the size of `pixel_values` instead of requiring
    /// the config's `image_size` (`transformers`' `interpolate_pos_encoding`). Models that
    /// always interpolate (DINOv2) ignore it.
    pub interpolate_pos_encoding: bool,
    /// `[num_images, 3]`: the temporal, height and width patch counts of each image
    /// (Qwen2-VL's `image_grid_thw`).
    pub image_grid_thw: Option<Tensor>,
    /// `[batch, images, height, width]` (or `[batch * images, height, width]`): 1 for real
    /// pixels of each image tile, 0 for padding (Idefics3/SmolVLM's `pixel_attention_mask`).
    pub pixel_attention_mask: Option<Tensor>,
    /// `[num_images, 2]`: the original `(height, width)` of each image (LLaVA-NeXT's
    /// `image_sizes`).
    pub image_sizes: Option<Tensor>,
    /// Same shape as `input_ids`: 0 for text, 1 for image tokens, 2 for video tokens
    /// (`mm_token_type_ids` of the Qwen-VL processors).
    pub mm_token_type_ids: Option<Tensor>,
}

impl ModelInputs {
    /// Inputs with only `input_ids`.
    pub fn new(input_ids: Tensor) -> Self {
        Self { input_ids: Some(input_ids), ..Self::default() }
    }

    /// Set `attention_mask`, same shape as `input_ids`: 1 for tokens to attend to, 0 for padding.
    pub fn with_attention_mask(mut self, mask: Tensor) -> Self {
        self.attention_mask = Some(mask);
        self
    }

    /// Set `token_type_ids` (segment ids), same shape as `input_ids`.
    pub fn with_token_type_ids(mut self, ids: Tensor) -> Self {
        self.token_type_ids = Some(ids);
        self
    }

    /// Set `position_ids`, same shape as `input_ids`.
    pub fn with_position_ids(mut self, ids: Tensor) -> Self {
        self.position_ids = Some(ids);
        self
    }

    /// See [`ModelInputs::logits_to_keep`].
    pub fn with_logits_to_keep(mut self, n: usize) -> Self {
        self.logits_to_keep = Some(n);
        self
    }

    /// `hidden` `[batch, seq, dim]` cut to the positions whose logits are wanted
    /// ([`ModelInputs::logits_to_keep`]).
    pub fn keep_for_logits(&self, hidden: &Tensor) -> Result<Tensor> {
        let seq = hidden.dim(1)?;
        Ok(match self.logits_to_keep {
            Some(n) if n > 0 && n < seq => hidden.narrow(1, seq - n, n)?,
            _ => hidden.clone(),
        })
    }

    /// Inputs with only `pixel_values` (`[batch, channels, height, width]`).
    pub fn from_pixel_values(pixel_values: Tensor) -> Self {
        Self { pixel_values: Some(pixel_values), ..Self::default() }
    }

    /// Set `pixel_values`, `[batch, channels, height, width]`.
    pub fn with_pixel_values(mut self, pixel_values: Tensor) -> Self {
        self.pixel_values = Some(pixel_values);
        self
    }

    /// Set `bool_masked_pos`, `[batch, num_patches]`, 1 where a patch is masked.
    pub fn with_bool_masked_pos(mut self, mask: Tensor) -> Self {
        self.bool_masked_pos = Some(mask);
        self
    }

    /// Set `decoder_input_ids`, `[batch, target_seq]`, for encoder-decoder models.
    pub fn with_decoder_input_ids(mut self, ids: Tensor) -> Self {
        self.decoder_input_ids = Some(ids);
        self
    }

    /// Set `decoder_attention_mask`, same shape as `decoder_input_ids`.
    pub fn with_decoder_attention_mask(mut self, mask: Tensor) -> Self {
        self.decoder_attention_mask = Some(mask);
        self
    }

    /// Inputs with only `input_values` (`[batch, samples]` raw audio).
    pub fn from_input_values(input_values: Tensor) -> Self {
        Self { input_values: Some(input_values), ..Self::default() }
    }

    /// Inputs with only `input_features` (`[batch, feature_size, frames]`).
    pub fn from_input_features(input_features: Tensor) -> Self {
        Self { input_features: Some(input_features), ..Self::default() }
    }

    /// Set `input_values`, `[batch, samples]` raw audio.
    pub fn with_input_values(mut self, input_values: Tensor) -> Self {
        self.input_values = Some(input_values);
        self
    }

    /// Set `input_features`, `[batch, feature_size, frames]`.
    pub fn with_input_features(mut self, input_features: Tensor) -> Self {
        self.input_features = Some(input_features);
        self
    }

    /// Set `pixel_mask`, `[batch, height, width]`: 1 for real pixels, 0 for padding.
    pub fn with_pixel_mask(mut self, pixel_mask: Tensor) -> Self {
        self.pixel_mask = Some(pixel_mask);
        self
    }

    /// See [`ModelInputs::interpolate_pos_encoding`].
    pub fn with_interpolate_pos_encoding(mut self, interpolate: bool) -> Self {
        self.interpolate_pos_encoding = interpolate;
        self
    }

    /// Set `image_grid_thw` `[num_images, 3]` (Qwen2-VL).
    pub fn with_image_grid_thw(mut self, grid: Tensor) -> Self {
        self.image_grid_thw = Some(grid);
        self
    }

    /// Set `pixel_attention_mask` (Idefics3/SmolVLM).
    pub fn with_pixel_attention_mask(mut self, mask: Tensor) -> Self {
        self.pixel_attention_mask = Some(mask);
        self
    }

    /// The inputs that describe images to a vision-language model (`pixel_values`,
    /// `pixel_mask`, `image_grid_thw`, `pixel_attention_mask`, `image_sizes`), taken from
    /// `other`; the text inputs of `self` are kept.
    pub fn with_image_inputs_of(mut self, other: &ModelInputs) -> Self {
        self.pixel_values = other.pixel_values.clone();
        self.pixel_mask = other.pixel_mask.clone();
        self.image_grid_thw = other.image_grid_thw.clone();
        self.pixel_attention_mask = other.pixel_attention_mask.clone();
        self.image_sizes = other.image_sizes.clone();
        self
    }

    /// Set an input by its `transformers` argument name.
    ///
    /// `interpolate_pos_encoding` takes a scalar (or one-element) tensor: non-zero is `true`.
    pub fn set(&mut self, name: &str, tensor: Tensor) -> Result<()> {
        if name == "interpolate_pos_encoding" {
            if tensor.elem_count() != 1 {
                return Err(Error::input(format!(
                    "`interpolate_pos_encoding` must be one value (true or false), got a tensor of shape {:?}",
                    tensor.dims()
                )));
            }
            let value = tensor.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
            self.interpolate_pos_encoding = value.first().is_some_and(|v| *v != 0.0);
            return Ok(());
        }
        let slot = match name {
            "input_ids" => &mut self.input_ids,
            "attention_mask" => &mut self.attention_mask,
            "token_type_ids" => &mut self.token_type_ids,
            "position_ids" => &mut self.position_ids,
            "pixel_values" => &mut self.pixel_values,
            "bool_masked_pos" => &mut self.bool_masked_pos,
            "decoder_input_ids" => &mut self.decoder_input_ids,
            "decoder_attention_mask" => &mut self.decoder_attention_mask,
            "input_values" => &mut self.input_values,
            "input_features" => &mut self.input_features,
            "pixel_mask" => &mut self.pixel_mask,
            "image_grid_thw" => &mut self.image_grid_thw,
            "pixel_attention_mask" => &mut self.pixel_attention_mask,
            "image_sizes" => &mut self.image_sizes,
            "mm_token_type_ids" => &mut self.mm_token_type_ids,
            other => {
                return Err(Error::input(format!(
                    "unknown model input `{other}`; known inputs: input_ids, attention_mask, token_type_ids, \
                     position_ids, pixel_values, bool_masked_pos, decoder_input_ids, decoder_attention_mask, \
                     input_values, input_features, pixel_mask, interpolate_pos_encoding, image_grid_thw, \
                     pixel_attention_mask, image_sizes, mm_token_type_ids"
                )))
            }
        };
        *slot = Some(tensor);
        Ok(())
    }

    /// `input_ids`, or an error when they are missing.
    pub fn input_ids(&self) -> Result<&Tensor> {
        self.input_ids.as_ref().ok_or_else(|| Error::input("`input_ids` is required by this model"))
    }

    /// `pixel_values`, or an error when they are missing.
    pub fn pixel_values(&self) -> Result<&Tensor> {
        self.pixel_values.as_ref().ok_or_else(|| {
            Error::input("`pixel_values` is required by this model: make them with `AutoImageProcessor`")
        })
    }

    /// `input_values`, or an error when they are missing.
    pub fn input_values(&self) -> Result<&Tensor> {
        self.input_values.as_ref().ok_or_else(|| {
            Error::input(
                "`input_values` [batch, samples] are required by this model: make them with `AutoFeatureExtractor`",
            )
        })
    }

    /// `input_features`, or an error when they are missing.
    pub fn input_features(&self) -> Result<&Tensor> {
        self.input_features.as_ref().ok_or_else(|| {
            Error::input(
                "`input_features` [batch, feature_size, frames] are required by this model: make them with \
                 `AutoFeatureExtractor`",
            )
        })
    }

    /// Move every input to `device`.
    pub fn to_device(&self, device: &Device) -> Result<Self> {
        let mv = |t: &Option<Tensor>| t.as_ref().map(|t| t.to_device(device)).transpose();
        Ok(Self {
            input_ids: mv(&self.input_ids)?,
            attention_mask: mv(&self.attention_mask)?,
            token_type_ids: mv(&self.token_type_ids)?,
            position_ids: mv(&self.position_ids)?,
            pixel_values: mv(&self.pixel_values)?,
            bool_masked_pos: mv(&self.bool_masked_pos)?,
            decoder_input_ids: mv(&self.decoder_input_ids)?,
            decoder_attention_mask: mv(&self.decoder_attention_mask)?,
            logits_to_keep: self.logits_to_keep,
            input_values: mv(&self.input_values)?,
            input_features: mv(&self.input_features)?,
            pixel_mask: mv(&self.pixel_mask)?,
            interpolate_pos_encoding: self.interpolate_pos_encoding,
            image_grid_thw: mv(&self.image_grid_thw)?,
            pixel_attention_mask: mv(&self.pixel_attention_mask)?,
            image_sizes: mv(&self.image_sizes)?,
            mm_token_type_ids: mv(&self.mm_token_type_ids)?,
        })
    }
}

/// Access to the named tensors of any model output, by `transformers` field name.
pub trait ModelOutput: Debug {
    /// `(field name, tensor)` for every field that is present.
    fn fields(&self) -> Vec<(&'static str, &Tensor)>;

    /// The field called `name`, if present.
    fn get(&self, name: &str) -> Option<&Tensor> {
        self.fields().into_iter().find(|(n, _)| *n == name).map(|(_, t)| t)
    }
}

macro_rules! output {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $field:ident),* $(; $(#[$odoc:meta])* $opt:ident)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        #[non_exhaustive]
        pub struct $name {
            $($(#[$fdoc])* pub $field: Tensor,)*
            $($(#[$odoc])* pub $opt: Option<Tensor>,)?
        }

        impl $name {
            /// Build the output from its fields.
            pub fn new($($field: Tensor,)* $($opt: Option<Tensor>)?) -> Self {
                Self { $($field,)* $($opt)? }
            }
        }

        impl ModelOutput for $name {
            fn fields(&self) -> Vec<(&'static str, &Tensor)> {
                #[allow(unused_mut)]
                let mut v = vec![$((stringify!($field), &self.$field)),*];
                $(if let Some(t) = &self.$opt { v.push((stringify!($opt), t)); })?
                v
            }
        }
    };
}

/// Output of a base model (`AutoModel`): `BaseModelOutputWithPooling` for single-stack
/// models, with the further outputs of the other shapes of base model in `extra`:
///
/// - encoder-decoders (`T5Model`, `BartModel`, as `Seq2SeqModelOutput`): `last_hidden_state`
///   is the decoder's; `extra` has `encoder_last_hidden_state`;
/// - contrastive image-text models (`CLIPModel`, `SiglipModel`, as `CLIPOutput`):
///   `last_hidden_state` / `pooler_output` are the vision tower's
///   (`vision_model_output.*`); `extra` has `logits_per_image`, `logits_per_text`,
///   `text_embeds`, `image_embeds` and `text_model_output.last_hidden_state` /
///   `text_model_output.pooler_output`.
///
/// Every field is reachable by its `transformers` name through [`ModelOutput::get`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BaseModelOutput {
    /// `[batch, seq, hidden]`
    pub last_hidden_state: Tensor,
    /// `[batch, hidden]`, when the model has a pooler
    pub pooler_output: Option<Tensor>,
    /// Further named outputs, by `transformers` field name (see the type's docs).
    pub extra: Vec<(&'static str, Tensor)>,
}

impl BaseModelOutput {
    /// Build the output from its fields.
    pub fn new(last_hidden_state: Tensor, pooler_output: Option<Tensor>) -> Self {
        Self { last_hidden_state, pooler_output, extra: Vec::new() }
    }

    /// Add a further named output.
    pub fn with_extra(mut self, name: &'static str, tensor: Tensor) -> Self {
        self.extra.push((name, tensor));
        self
    }

    /// The further output called `name`, if present.
    pub fn extra(&self, name: &str) -> Option<&Tensor> {
        self.extra.iter().find(|(n, _)| *n == name).map(|(_, t)| t)
    }
}

impl ModelOutput for BaseModelOutput {
    fn fields(&self) -> Vec<(&'static str, &Tensor)> {
        let mut v = vec![("last_hidden_state", &self.last_hidden_state)];
        if let Some(t) = &self.pooler_output {
            v.push(("pooler_output", t));
        }
        v.extend(self.extra.iter().map(|(n, t)| (*n, t)));
        v
    }
}
/// Output of a pretraining head (`AutoModelForPreTraining`), whose fields differ by class as
/// in `transformers`, each reachable by its `transformers` name through [`ModelOutput::get`]:
///
/// - `BertForPreTrainingOutput` (BERT, ERNIE, Megatron-BERT): `prediction_logits`
///   `[batch, seq, vocab]` and `seq_relationship_logits` `[batch, 2]` ([`PreTrainingOutput::new`]);
/// - `AlbertForPreTrainingOutput`: `prediction_logits` and `sop_logits` `[batch, 2]`;
/// - `ElectraForPreTrainingOutput`: `logits` `[batch, seq]`, one per token;
/// - the classes `transformers` maps a language model to (`GPT2LMHeadModel`, ...): `logits`.
///
/// Build the other shapes with [`PreTrainingOutput::from_fields`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PreTrainingOutput {
    /// Every output, by `transformers` field name, in `transformers`' order.
    pub fields: Vec<(&'static str, Tensor)>,
}

impl PreTrainingOutput {
    /// BERT's shape: masked LM `prediction_logits` `[batch, seq, vocab]` and next-sentence
    /// `seq_relationship_logits` `[batch, 2]`.
    pub fn new(prediction_logits: Tensor, seq_relationship_logits: Tensor) -> Self {
        Self::from_fields(vec![
            ("prediction_logits", prediction_logits),
            ("seq_relationship_logits", seq_relationship_logits),
        ])
    }

    /// Any other shape, by `transformers` field name (`[("logits", t)]` for ELECTRA).
    pub fn from_fields(fields: Vec<(&'static str, Tensor)>) -> Self {
        Self { fields }
    }

    /// `prediction_logits` `[batch, seq, vocab]`, where the head has a masked LM.
    pub fn prediction_logits(&self) -> Option<&Tensor> {
        self.get("prediction_logits")
    }

    /// `seq_relationship_logits` `[batch, 2]` (BERT's next sentence prediction), if present.
    pub fn seq_relationship_logits(&self) -> Option<&Tensor> {
        self.get("seq_relationship_logits")
    }

    /// `logits` (ELECTRA's per-token discriminator logits, or a language model's), if present.
    pub fn logits(&self) -> Option<&Tensor> {
        self.get("logits")
    }
}

impl ModelOutput for PreTrainingOutput {
    fn fields(&self) -> Vec<(&'static str, &Tensor)> {
        self.fields.iter().map(|(n, t)| (*n, t)).collect()
    }
}
output!(
    /// Output of a causal language model head (`CausalLMOutput`).
    CausalLmOutput {
        /// `[batch, seq, vocab]`
        logits
    }
);
output!(
    /// Output of a vision-language model's language-model head (`LlavaCausalLMOutputWithPast`
    /// and kin).
    ImageTextToTextOutput {
        /// `[batch, seq, vocab]` (the last `logits_to_keep` positions when that is set)
        logits;
        /// `[num_images, image_tokens, text_hidden]`: the projected image features that
        /// replaced the image tokens, when the inputs had images
        image_hidden_states
    }
);
output!(
    /// Output of a masked language model head (`MaskedLMOutput`).
    MaskedLmOutput {
        /// `[batch, seq, vocab]`
        logits
    }
);
/// Output of a sequence classification head (`SequenceClassifierOutput`), with the further
/// outputs of the classes that have them in `extra`: encoder-decoders
/// (`Seq2SeqSequenceClassifierOutput`: BART) add `encoder_last_hidden_state`.
///
/// Every field is reachable by its `transformers` name through [`ModelOutput::get`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SequenceClassifierOutput {
    /// `[batch, num_labels]`
    pub logits: Tensor,
    /// Further outputs by `transformers` field name, in `transformers`' order.
    pub extra: Vec<(&'static str, Tensor)>,
}

impl SequenceClassifierOutput {
    /// Build the output from its logits.
    pub fn new(logits: Tensor) -> Self {
        Self { logits, extra: Vec::new() }
    }

    /// Add a further output called `name` (`encoder_last_hidden_state`).
    pub fn with_extra(mut self, name: &'static str, tensor: Tensor) -> Self {
        self.extra.push((name, tensor));
        self
    }
}

impl ModelOutput for SequenceClassifierOutput {
    fn fields(&self) -> Vec<(&'static str, &Tensor)> {
        let mut v = vec![("logits", &self.logits)];
        v.extend(self.extra.iter().map(|(n, t)| (*n, t)));
        v
    }
}
output!(
    /// Output of a multiple choice head (`MultipleChoiceModelOutput`).
    MultipleChoiceOutput {
        /// `[batch, num_choices]`
        logits
    }
);
output!(
    /// Output of a next sentence prediction head (`NextSentencePredictorOutput`).
    NextSentencePredictorOutput {
        /// `[batch, 2]`
        logits
    }
);
output!(
    /// Output of a token classification head (`TokenClassifierOutput`).
    TokenClassifierOutput {
        /// `[batch, seq, num_labels]`
        logits
    }
);
/// Output of an extractive question answering head (`QuestionAnsweringModelOutput`), with the
/// further outputs of the classes that have them in `extra`: encoder-decoders
/// (`Seq2SeqQuestionAnsweringModelOutput`: BART) add `encoder_last_hidden_state`.
///
/// Every field is reachable by its `transformers` name through [`ModelOutput::get`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct QuestionAnsweringOutput {
    /// `[batch, seq]`
    pub start_logits: Tensor,
    /// `[batch, seq]`
    pub end_logits: Tensor,
    /// Further outputs by `transformers` field name, in `transformers`' order.
    pub extra: Vec<(&'static str, Tensor)>,
}

impl QuestionAnsweringOutput {
    /// Build the output from its start and end logits.
    pub fn new(start_logits: Tensor, end_logits: Tensor) -> Self {
        Self { start_logits, end_logits, extra: Vec::new() }
    }

    /// Add a further output called `name` (`encoder_last_hidden_state`).
    pub fn with_extra(mut self, name: &'static str, tensor: Tensor) -> Self {
        self.extra.push((name, tensor));
        self
    }
}

impl ModelOutput for QuestionAnsweringOutput {
    fn fields(&self) -> Vec<(&'static str, &Tensor)> {
        let mut v = vec![("start_logits", &self.start_logits), ("end_logits", &self.end_logits)];
        v.extend(self.extra.iter().map(|(n, t)| (*n, t)));
        v
    }
}

output!(
    /// Output of a sequence-to-sequence language model (`Seq2SeqLMOutput`).
    Seq2SeqLmOutput {
        /// `[batch, target_seq, vocab]`
        logits,
        /// `[batch, source_seq, hidden]`: the encoder's last hidden state
        encoder_last_hidden_state
    }
);
/// Output of an image classification head (`ImageClassifierOutput`), with the further fields
/// of the classes that have them in `extra`: DeiT's distilled classifier with teacher
/// (`DeiTForImageClassificationWithTeacherOutput`) adds `cls_logits` and `distillation_logits`.
///
/// Every field is reachable by its `transformers` name through [`ModelOutput::get`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ImageClassifierOutput {
    /// `[batch, num_labels]`
    pub logits: Tensor,
    /// Further outputs by `transformers` field name, in `transformers`' order.
    pub extra: Vec<(&'static str, Tensor)>,
}

impl ImageClassifierOutput {
    /// Build the output from its logits.
    pub fn new(logits: Tensor) -> Self {
        Self { logits, extra: Vec::new() }
    }

    /// Add a further output called `name` (`cls_logits`, `distillation_logits`).
    pub fn with_extra(mut self, name: &'static str, tensor: Tensor) -> Self {
        self.extra.push((name, tensor));
        self
    }
}

impl ModelOutput for ImageClassifierOutput {
    fn fields(&self) -> Vec<(&'static str, &Tensor)> {
        let mut v = vec![("logits", &self.logits)];
        v.extend(self.extra.iter().map(|(n, t)| (*n, t)));
        v
    }
}
output!(
    /// Output of a masked image modeling head (`MaskedImageModelingOutput`).
    MaskedImageModelingOutput {
        /// `[batch, channels, height, width]`: the reconstructed pixel values
        reconstruction
    }
);
output!(
    /// Output of a contrastive image-text model (`CLIPOutput`, `SiglipOutput`).
    ZeroShotImageClassificationOutput {
        /// `[image_batch, text_batch]`: scaled similarity of each image to each text
        logits_per_image,
        /// `[text_batch, image_batch]`: the transpose of `logits_per_image`
        logits_per_text,
        /// `[text_batch, projection_dim]`: normalised text embeddings
        text_embeds,
        /// `[image_batch, projection_dim]`: normalised image embeddings
        image_embeds
    }
);
output!(
    /// Output of an object detection head (`DetrObjectDetectionOutput`,
    /// `YolosObjectDetectionOutput`).
    ObjectDetectionOutput {
        /// `[batch, num_queries, num_labels + 1]`: class logits; the last class is "no object"
        logits,
        /// `[batch, num_queries, 4]`: boxes as (center x, center y, width, height), each in 0..1
        /// of the (padded) input image
        pred_boxes,
        /// `[batch, num_queries, hidden]`: the decoder's (DETR) or the encoder's (YOLOS) last
        /// hidden state
        last_hidden_state;
        /// `[batch, seq, hidden]`: the encoder's last hidden state (encoder-decoder detectors)
        encoder_last_hidden_state
    }
);
output!(
    /// Output of a semantic segmentation head (`SemanticSegmenterOutput`).
    SemanticSegmenterOutput {
        /// `[batch, num_labels, height, width]`: per-pixel class logits at the head's
        /// resolution (often a quarter of the input's; post-processing resizes them)
        logits
    }
);
output!(
    /// Output of a depth estimation head (`DepthEstimatorOutput`).
    DepthEstimatorOutput {
        /// `[batch, height, width]`: the predicted (relative or metric) depth
        predicted_depth
    }
);
output!(
    /// Output of a CTC head (`CausalLMOutput` of `Wav2Vec2ForCTC` and kin).
    CtcOutput {
        /// `[batch, frames, vocab]`
        logits
    }
);
output!(
    /// Output of a speaker-verification head (`XVectorOutput`).
    XVectorOutput {
        /// `[batch, num_labels]`: the AM-softmax classifier's logits
        logits,
        /// `[batch, xvector_output_dim]`: the utterance embeddings
        embeddings
    }
);

/// What every loaded model can tell about itself.
pub trait PreTrainedModel: Send + Sync + Debug {
    /// The device the weights live on.
    fn device(&self) -> &Device;
    /// The dtype of the floating-point weights.
    fn dtype(&self) -> DType;
}

macro_rules! task_trait {
    ($(#[$doc:meta])* $trait:ident -> $out:ident) => {
        $(#[$doc])*
        pub trait $trait: PreTrainedModel {
            /// Run the model on `inputs`.
            fn forward(&self, inputs: &ModelInputs) -> Result<$out>;
        }
    };
}

task_trait!(
    /// A base model without a head (`AutoModel`).
    Model -> BaseModelOutput
);
task_trait!(
    /// A model with its pretraining heads (`AutoModelForPreTraining`).
    ForPreTraining -> PreTrainingOutput
);
/// A causal language model (`AutoModelForCausalLM`).
pub trait ForCausalLm: PreTrainedModel {
    /// Run the model on `inputs` (every position, no cache).
    fn forward(&self, inputs: &ModelInputs) -> Result<CausalLmOutput>;

    /// Run the model on new tokens only, reading the past from `cache` and appending to it.
    ///
    /// `inputs.input_ids` holds the new tokens `[batch, new]`; `attention_mask`, when given,
    /// covers the cached and the new positions `[batch, past + new]`; `position_ids`, when
    /// given, the new ones. Models without a cache return `Error::Unsupported`; generation
    /// then falls back to [`ForCausalLm::forward`] on the whole sequence.
    fn forward_with_cache(&self, inputs: &ModelInputs, cache: &mut crate::KvCache) -> Result<CausalLmOutput> {
        let _ = (inputs, cache);
        Err(Error::Unsupported("this model has no key/value cache".to_owned()))
    }

    /// Whether [`ForCausalLm::forward_with_cache`] is implemented.
    fn supports_cache(&self) -> bool {
        false
    }

    /// The most positions the model can attend over (`max_position_embeddings`), if bounded.
    fn max_positions(&self) -> Option<usize> {
        None
    }

    /// Whether generation must drop the cache and run the whole sequence again before the
    /// step that grows the context from `past` to `total` positions. Phi-3 with LongRoPE
    /// does so when the context first crosses `original_max_position_embeddings`, as its
    /// `prepare_inputs_for_generation` in `transformers` does.
    fn reset_cache_at(&self, past: usize, total: usize) -> bool {
        let _ = (past, total);
        false
    }
}
/// A vision-language model (`AutoModelForImageTextToText`: LLaVA, PaliGemma, Idefics3,
/// Qwen2-VL, Gemma 3): a causal language model whose prompt holds image tokens, each image's
/// run of them replaced by the vision tower's projected features.
///
/// The image inputs (`pixel_values` and, per model, `image_grid_thw`, `pixel_attention_mask`,
/// `image_sizes`, `token_type_ids`, `mm_token_type_ids`) come with the prompt; the cached
/// steps of generation pass only the new tokens. A prompt without images runs as text alone.
/// `generation::WithImages` makes such a model a [`ForCausalLm`] for the generation loop.
pub trait ForImageTextToText: PreTrainedModel {
    /// Run the model on `inputs` (every position, no cache).
    fn forward(&self, inputs: &ModelInputs) -> Result<ImageTextToTextOutput>;

    /// Run the model on new tokens, reading the past from `cache` and appending to it
    /// (as [`ForCausalLm::forward_with_cache`]); the first call (empty cache) carries the
    /// images. Models may keep per-row state in the cache ([`crate::KvCache::set_state`]),
    /// such as Qwen2-VL's `rope_deltas`.
    fn forward_with_cache(&self, inputs: &ModelInputs, cache: &mut crate::KvCache) -> Result<ImageTextToTextOutput> {
        let _ = (inputs, cache);
        Err(Error::Unsupported("this model has no key/value cache".to_owned()))
    }

    /// Whether [`ForImageTextToText::forward_with_cache`] is implemented.
    fn supports_cache(&self) -> bool {
        false
    }

    /// The most positions the language model attends over, if bounded.
    fn max_positions(&self) -> Option<usize> {
        None
    }

    /// The id of the token that stands for one image feature in `input_ids`
    /// (`image_token_id`, `image_token_index`).
    fn image_token_id(&self) -> Option<u32> {
        None
    }

    /// The value of the per-token input `name` (`token_type_ids`, `mm_token_type_ids`) for a
    /// generated token when generation runs the whole sequence again (no cache), given the
    /// prompt's last value: `transformers` repeats that value; PaliGemma marks generated
    /// tokens 1 (the causal suffix).
    fn generated_token_type_id(&self, name: &str, last: u32) -> u32 {
        let _ = name;
        last
    }

    /// What generation adds to the `position_ids` it computes from the attention mask
    /// (`cumsum(mask) - 1`): `transformers`' PaliGemma counts positions from 1 (its
    /// `prepare_inputs_for_generation` adds 1); 0 for other models.
    fn generation_position_offset(&self) -> u32 {
        0
    }
}

/// `AutoModelForVision2Seq`: transformers 5 maps the same classes as
/// `AutoModelForImageTextToText`; a marker on [`ForImageTextToText`].
pub trait ForVision2Seq: ForImageTextToText {}

/// `AutoModelForMultimodalLM`: the vision-language models of [`ForImageTextToText`] under the
/// class `transformers` 5 adds for every multimodal language model (a marker).
pub trait ForMultimodalLm: ForImageTextToText {}

task_trait!(
    /// A masked language model (`AutoModelForMaskedLM`).
    ForMaskedLm -> MaskedLmOutput
);
task_trait!(
    /// A sequence classifier (`AutoModelForSequenceClassification`).
    ForSequenceClassification -> SequenceClassifierOutput
);
task_trait!(
    /// A multiple choice model (`AutoModelForMultipleChoice`).
    ForMultipleChoice -> MultipleChoiceOutput
);
task_trait!(
    /// A next sentence predictor (`AutoModelForNextSentencePrediction`).
    ForNextSentencePrediction -> NextSentencePredictorOutput
);
task_trait!(
    /// A token classifier (`AutoModelForTokenClassification`).
    ForTokenClassification -> TokenClassifierOutput
);
task_trait!(
    /// An extractive question answering model (`AutoModelForQuestionAnswering`).
    ForQuestionAnswering -> QuestionAnsweringOutput
);
/// The encoder output a sequence-to-sequence decoder attends to, computed once per input.
#[derive(Debug, Clone)]
pub struct EncoderOutput {
    /// `[batch, source_seq, hidden]`
    pub last_hidden_state: Tensor,
    /// `[batch, source_seq]`, 1 for the tokens to attend to; `None` attends to every token.
    pub attention_mask: Option<Tensor>,
}

/// A sequence-to-sequence language model (`AutoModelForSeq2SeqLM`: T5, BART, ...).
///
/// [`ForSeq2SeqLm::forward`] runs encoder and decoder on whole sequences
/// (`input_ids`, `attention_mask`, `decoder_input_ids`, `decoder_attention_mask`), as the
/// `transformers` forward does with teacher forcing. Generation runs the encoder once
/// ([`ForSeq2SeqLm::encode`]) and the decoder a few tokens at a time on a
/// [`Seq2SeqCache`](crate::Seq2SeqCache) ([`ForSeq2SeqLm::decode`]).
pub trait ForSeq2SeqLm: PreTrainedModel {
    /// Run encoder and decoder on `inputs`.
    fn forward(&self, inputs: &ModelInputs) -> Result<Seq2SeqLmOutput>;

    /// Run the encoder on `inputs` (`input_ids`, `attention_mask`).
    fn encode(&self, inputs: &ModelInputs) -> Result<EncoderOutput> {
        let _ = inputs;
        Err(Error::Unsupported("this model cannot run its encoder alone".to_owned()))
    }

    /// Run the decoder on the new decoder tokens `decoder_input_ids` `[batch, new]`, which
    /// follow the `cache.seq_len()` cached ones, attending to `encoder`; returns the logits
    /// `[batch, new, vocab]` and extends `cache`.
    fn decode(
        &self,
        decoder_input_ids: &Tensor,
        encoder: &EncoderOutput,
        cache: &mut crate::Seq2SeqCache,
    ) -> Result<Tensor> {
        let _ = (decoder_input_ids, encoder, cache);
        Err(Error::Unsupported("this model has no incremental decoder".to_owned()))
    }

    /// The token the decoder starts from (`decoder_start_token_id` of the config), if set.
    fn decoder_start_token_id(&self) -> Option<u32> {
        None
    }

    /// The most source tokens the encoder takes, if bounded.
    fn max_source_positions(&self) -> Option<usize> {
        None
    }

    /// The most decoder positions, if bounded.
    fn max_target_positions(&self) -> Option<usize> {
        None
    }
}
task_trait!(
    /// A text encoder (`AutoModelForTextEncoding`, e.g. `T5EncoderModel`).
    ForTextEncoding -> BaseModelOutput
);
task_trait!(
    /// An image classifier (`AutoModelForImageClassification`).
    ForImageClassification -> ImageClassifierOutput
);
task_trait!(
    /// A contrastive image-text model scoring images against texts
    /// (`AutoModelForZeroShotImageClassification`).
    ForZeroShotImageClassification -> ZeroShotImageClassificationOutput
);
task_trait!(
    /// A masked image model reconstructing masked patches (`AutoModelForMaskedImageModeling`).
    ForMaskedImageModeling -> MaskedImageModelingOutput
);
task_trait!(
    /// An object detector (`AutoModelForObjectDetection`: DETR, YOLOS), reading
    /// `pixel_values` (and `pixel_mask` where the model takes one).
    ForObjectDetection -> ObjectDetectionOutput
);
task_trait!(
    /// A semantic segmentation model (`AutoModelForSemanticSegmentation`: SegFormer, BEiT,
    /// DPT): per-pixel class logits.
    ForSemanticSegmentation -> SemanticSegmenterOutput
);
task_trait!(
    /// A depth estimator (`AutoModelForDepthEstimation`: DPT, Depth Anything).
    ForDepthEstimation -> DepthEstimatorOutput
);
task_trait!(
    /// A CTC speech recogniser (`AutoModelForCTC`: wav2vec2, HuBERT, ...), reading
    /// `input_values` (and `attention_mask` where the model takes one).
    ForCtc -> CtcOutput
);
/// A speech-to-text encoder-decoder (`AutoModelForSpeechSeq2Seq`: Whisper).
///
/// It is a [`ForSeq2SeqLm`] whose encoder reads `input_features` `[batch, feature_size,
/// frames]` instead of `input_ids`: [`ForSeq2SeqLm::forward`] runs encoder and decoder
/// (`input_features`, `decoder_input_ids`), [`ForSeq2SeqLm::encode`] the encoder alone, and
/// the sequence-to-sequence generation runs on it unchanged.
pub trait ForSpeechSeq2Seq: ForSeq2SeqLm {}
task_trait!(
    /// An audio classifier (`AutoModelForAudioClassification`), one label per clip.
    ForAudioClassification -> SequenceClassifierOutput
);
task_trait!(
    /// An audio frame classifier (`AutoModelForAudioFrameClassification`): one label per
    /// frame, `logits` `[batch, frames, num_labels]`.
    ForAudioFrameClassification -> TokenClassifierOutput
);
task_trait!(
    /// A speaker-verification model (`AutoModelForAudioXVector`): x-vector embeddings and
    /// AM-softmax logits.
    ForAudioXVector -> XVectorOutput
);
