//! What the detection, segmentation and depth pipelines share: one image in, as
//! `transformers`' pipelines load it (`load_image`, RGB), through the processor's
//! [`ImageProcessor::preprocess_batch`] (which pads and masks for DETR-style detectors), and
//! the checks of their options.

use autocandle_core::{Error, ModelInputs, Result};
use candle_core::Device;

use super::image_classification::to_rgb;
use crate::{DynamicImage, ImageProcessor};

/// The model inputs of one image (`pixel_values`, and `pixel_mask` when the processor pads)
/// on `device`, and the image's `(height, width)`: the target size of post-processing, as
/// the pipelines pass it.
pub(crate) fn image_inputs(
    task: &str,
    processor: &ImageProcessor,
    image: &DynamicImage,
    device: &Device,
) -> Result<(ModelInputs, (usize, usize))> {
    let (width, height) = (image.width() as usize, image.height() as usize);
    if width == 0 || height == 0 {
        return Err(Error::input(format!("{task}: the image is empty ({width}x{height}): give an image with pixels")));
    }
    let processed = processor.preprocess_batch(&[to_rgb(image)])?;
    let mut inputs = ModelInputs::from_pixel_values(processed.pixel_values.to_device(device)?);
    if let Some(mask) = processed.pixel_mask {
        inputs = inputs.with_pixel_mask(mask.to_device(device)?);
    }
    Ok((inputs, (height, width)))
}

/// A score threshold must be a number in `(0, 1]`: scores are probabilities, 0 keeps every
/// query of a detector (noise), and above 1 keeps nothing.
pub(crate) fn check_threshold(task: &str, threshold: f32) -> Result<()> {
    if threshold.is_finite() && threshold > 0.0 && threshold <= 1.0 {
        return Ok(());
    }
    Err(Error::input(format!(
        "{task}: the threshold {threshold} is out of range: scores are probabilities, give a threshold above 0 and at \
         most 1 (transformers' default is 0.5)"
    )))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_outside_zero_one_are_refused() {
        for ok in [0.5, 1.0, 1e-6] {
            assert!(check_threshold("object-detection", ok).is_ok(), "{ok}");
        }
        for bad in [0.0, -0.1, 1.5, f32::NAN, f32::INFINITY] {
            let e = check_threshold("object-detection", bad).unwrap_err().to_string();
            assert!(e.contains("above 0 and at most 1"), "{e}");
        }
    }
}
