//! The task heads on [`DeiTModel`]: the image classifiers (plain, and distilled "with teacher",
//! picked by `architectures`) and the SimMIM masked image modeling decoder.

use autocandle_core::nn::{linear, Linear};
use autocandle_core::{
    AutoRegister, Error, ForImageClassification, ForMaskedImageModeling, ImageClassifierOutput, LoadModel,
    MaskedImageModelingOutput, ModelInputs, PreTrainedModel, Result,
};
use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;

use crate::config::DeiTConfig;
use crate::model::DeiTModel;

/// A linear classifier, or the identity with `num_labels = 0` (`nn.Identity`).
fn classifier(vb: VarBuilder<'_>, config: &DeiTConfig) -> Result<Option<Linear>> {
    let n = config.labels.num_labels();
    Ok(if n > 0 { Some(linear(config.hidden_size, n, vb)?) } else { None })
}

fn classify(classifier: Option<&Linear>, x: &Tensor) -> Result<Tensor> {
    Ok(match classifier {
        Some(c) => c.forward(x)?,
        None => x.clone(),
    })
}

/// The state of token `i` (`0` `[CLS]`, `1` the distillation token) `[B, hidden]`.
fn token(sequence: &Tensor, i: usize) -> Result<Tensor> {
    Ok(sequence.narrow(1, i, 1)?.squeeze(1)?)
}

/// `DeiTForImageClassificationWithTeacher`: two linear heads, on the `[CLS]` state
/// (`cls_classifier`) and on the distillation token's (`distillation_classifier`); `logits`
/// are their mean, and `cls_logits` / `distillation_logits` are in the output's `extra`.
#[derive(Debug)]
pub struct DeiTForImageClassificationWithTeacher {
    deit: DeiTModel,
    cls_classifier: Option<Linear>,
    distillation_classifier: Option<Linear>,
}

impl LoadModel for DeiTForImageClassificationWithTeacher {
    type Config = DeiTConfig;
    const BASE_MODEL_PREFIX: &'static str = "deit";

    fn load(vb: VarBuilder<'_>, config: &DeiTConfig) -> Result<Self> {
        Ok(Self {
            deit: DeiTModel::new(vb.pp("deit"), config, false, false)?,
            cls_classifier: classifier(vb.pp("cls_classifier"), config)?,
            distillation_classifier: classifier(vb.pp("distillation_classifier"), config)?,
        })
    }
}

impl ForImageClassification for DeiTForImageClassificationWithTeacher {
    fn forward(&self, inputs: &ModelInputs) -> Result<ImageClassifierOutput> {
        let (sequence, _) = self.deit.sequence_output(inputs)?;
        let cls_logits = classify(self.cls_classifier.as_ref(), &token(&sequence, 0)?)?;
        let distillation_logits = classify(self.distillation_classifier.as_ref(), &token(&sequence, 1)?)?;
        let logits = ((&cls_logits + &distillation_logits)? / 2.0)?;
        Ok(ImageClassifierOutput::new(logits)
            .with_extra("cls_logits", cls_logits)
            .with_extra("distillation_logits", distillation_logits))
    }
}

/// `DeiTForImageClassification`: a linear classifier on the final `[CLS]` state.
#[derive(Debug)]
pub struct DeiTClassifier {
    deit: DeiTModel,
    classifier: Option<Linear>,
}

impl LoadModel for DeiTClassifier {
    type Config = DeiTConfig;
    const BASE_MODEL_PREFIX: &'static str = "deit";

    fn load(vb: VarBuilder<'_>, config: &DeiTConfig) -> Result<Self> {
        Ok(Self {
            deit: DeiTModel::new(vb.pp("deit"), config, false, false)?,
            classifier: classifier(vb.pp("classifier"), config)?,
        })
    }
}

impl ForImageClassification for DeiTClassifier {
    fn forward(&self, inputs: &ModelInputs) -> Result<ImageClassifierOutput> {
        let (sequence, _) = self.deit.sequence_output(inputs)?;
        Ok(ImageClassifierOutput::new(classify(self.classifier.as_ref(), &token(&sequence, 0)?)?))
    }
}

/// DeiT for image classification (`AutoModelForImageClassification`): `transformers` maps
/// both `DeiTForImageClassification` and `DeiTForImageClassificationWithTeacher`, and picks
/// the first of them named in the config's `architectures` (the plain one when neither is).
/// This registered type does the same: it holds the one the config names.
#[derive(Debug, AutoRegister)]
#[auto(task = "image-classification", class = "DeiTForImageClassification")]
pub struct DeiTForImageClassification {
    inner: Classifier,
}

/// The class [`DeiTForImageClassification`] holds.
#[derive(Debug)]
enum Classifier {
    Plain(DeiTClassifier),
    WithTeacher(DeiTForImageClassificationWithTeacher),
}

impl DeiTForImageClassification {
    /// Whether this is `DeiTForImageClassificationWithTeacher` (the config's `architectures`
    /// named it).
    pub fn with_teacher(&self) -> bool {
        matches!(self.inner, Classifier::WithTeacher(_))
    }
}

impl LoadModel for DeiTForImageClassification {
    type Config = DeiTConfig;
    const BASE_MODEL_PREFIX: &'static str = "deit";

    fn load(vb: VarBuilder<'_>, config: &DeiTConfig) -> Result<Self> {
        let inner = if config.with_teacher() {
            Classifier::WithTeacher(DeiTForImageClassificationWithTeacher::load(vb, config)?)
        } else {
            Classifier::Plain(DeiTClassifier::load(vb, config)?)
        };
        Ok(Self { inner })
    }
}

impl ForImageClassification for DeiTForImageClassification {
    fn forward(&self, inputs: &ModelInputs) -> Result<ImageClassifierOutput> {
        match &self.inner {
            Classifier::Plain(m) => m.forward(inputs),
            Classifier::WithTeacher(m) => m.forward(inputs),
        }
    }
}

impl PreTrainedModel for DeiTForImageClassification {
    fn device(&self) -> &Device {
        match &self.inner {
            Classifier::Plain(m) => m.deit.device(),
            Classifier::WithTeacher(m) => m.deit.device(),
        }
    }

    fn dtype(&self) -> DType {
        match &self.inner {
            Classifier::Plain(m) => m.deit.dtype(),
            Classifier::WithTeacher(m) => m.deit.dtype(),
        }
    }
}

/// DeiT with the SimMIM decoder (`DeiTForMaskedImageModeling`): a 1x1 convolution to
/// `encoder_stride² * num_channels` channels and a pixel shuffle, reconstructing the image from
/// the patch states (the square patch grid); `bool_masked_pos` replaces masked patches by the
/// mask token.
#[derive(Debug, AutoRegister)]
#[auto(task = "masked-image-modeling", class = "DeiTForMaskedImageModeling")]
pub struct DeiTForMaskedImageModeling {
    deit: DeiTModel,
    /// `decoder.0`, the 1x1 convolution, as a linear map over the hidden size.
    decoder: Linear,
    stride: usize,
    num_channels: usize,
}

impl LoadModel for DeiTForMaskedImageModeling {
    type Config = DeiTConfig;
    const BASE_MODEL_PREFIX: &'static str = "deit";

    fn load(vb: VarBuilder<'_>, config: &DeiTConfig) -> Result<Self> {
        let deit = DeiTModel::new(vb.pp("deit"), config, false, true)?;
        let (h, c, r) = (config.hidden_size, config.num_channels, config.encoder_stride);
        if r == 0 {
            return Err(Error::config("deit", "`encoder_stride` must be at least 1, got 0"));
        }
        let conv = vb.pp("decoder.0");
        let weight = conv.get((r * r * c, h, 1, 1), "weight")?.reshape((r * r * c, h))?;
        let bias = conv.get(r * r * c, "bias")?;
        Ok(Self { deit, decoder: Linear::new(weight, Some(bias)), stride: r, num_channels: c })
    }
}

impl ForMaskedImageModeling for DeiTForMaskedImageModeling {
    fn forward(&self, inputs: &ModelInputs) -> Result<MaskedImageModelingOutput> {
        let (sequence, _) = self.deit.sequence_output(inputs)?;
        let (batch, len, _) = sequence.dims3()?;
        let patches = len - 2;
        // As `transformers`: the patches are read as a square grid of side `int(sqrt(n))`.
        let side = (patches as f64).sqrt().floor() as usize;
        if side * side != patches {
            return Err(Error::Unsupported(format!(
                "masked image modeling reshapes the {patches} patches into a square grid; use square images"
            )));
        }
        let (gh, gw) = (side, side);
        let (r, c) = (self.stride, self.num_channels);
        let y = self.decoder.forward(&sequence.narrow(1, 2, patches)?)?;
        // `PixelShuffle(r)` of the `[B, C r², h, w]` convolution output.
        let reconstruction = y.reshape(vec![batch, gh, gw, c, r, r])?.permute(vec![0, 3, 1, 4, 2, 5])?.reshape((
            batch,
            c,
            gh * r,
            gw * r,
        ))?;
        Ok(MaskedImageModelingOutput::new(reconstruction))
    }
}

macro_rules! through_deit {
    ($($head:ty),*) => {$(
        impl PreTrainedModel for $head {
            fn device(&self) -> &Device {
                self.deit.device()
            }

            fn dtype(&self) -> DType {
                self.deit.dtype()
            }
        }
    )*};
}

through_deit!(DeiTClassifier, DeiTForImageClassificationWithTeacher, DeiTForMaskedImageModeling);
