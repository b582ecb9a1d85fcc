//! The depth-estimation pipeline (`transformers.DepthEstimationPipeline`): the image
//! processor, the depth model (`AutoModelForDepthEstimation`: DPT, Depth Anything),
//! [`post_process_depth_estimation`] at the image's size, and the depth as an 8-bit picture
//! normalised as `transformers` 5 does it: `(d - min) / (max - min) * 255`, truncated.

use autocandle_core::{Error, ForDepthEstimation, LoadOptions, Result};
use candle_core::{DType, Device, Tensor};
use image::GrayImage;

use super::vision::image_inputs;
use crate::image_processor::post_process_depth_estimation;
use crate::{AutoImageProcessor, AutoModelForDepthEstimation, DynamicImage, ImageProcessor};

/// The depth of one image: `{"predicted_depth", "depth"}` of `transformers`.
#[derive(Debug, Clone)]
pub struct DepthEstimation {
    /// `[height, width]` f32 on the CPU: the model's depth resized to the input's size
    /// (relative inverse depth or metric depth, as the model predicts it).
    pub predicted_depth: Tensor,
    /// `predicted_depth` normalised to 0..255 (min to 0, max to 255), the input's size.
    pub depth: GrayImage,
}

/// Estimate the depth of images with a depth model.
#[derive(Debug)]
pub struct DepthEstimationPipeline {
    processor: ImageProcessor,
    model: Box<dyn ForDepthEstimation>,
    device: Device,
}

impl DepthEstimationPipeline {
    /// Load the model (`AutoModelForDepthEstimation`) and image processor at `model`.
    pub fn new(model: &str) -> Result<Self> {
        Self::new_with(model, &LoadOptions::default())
    }

    /// [`DepthEstimationPipeline::new`] with loading options.
    pub fn new_with(model: &str, opts: &LoadOptions) -> Result<Self> {
        super::traced("depth-estimation", model, || {
            let processor = AutoImageProcessor::from_pretrained_with(model, opts)?;
            let model = AutoModelForDepthEstimation::from_pretrained_with(model, opts)?.value;
            Ok(Self { processor, model, device: opts.device.clone() })
        })
    }

    /// The depth of `image`.
    pub fn call(&self, image: &DynamicImage) -> Result<DepthEstimation> {
        let (inputs, size) = image_inputs("depth-estimation", &self.processor, image, &self.device)?;
        let output = self.model.forward(&inputs)?;
        let depths = post_process_depth_estimation(&output, Some(&[size]))?;
        let depth = depths.into_iter().next().ok_or_else(|| {
            Error::input("depth-estimation: post-processing returned no depth map: the model gave an empty batch")
        })?;
        let predicted_depth = depth.to_device(&Device::Cpu)?.to_dtype(DType::F32)?;
        let (height, width) = predicted_depth.dims2()?;
        let values = predicted_depth.flatten_all()?.to_vec1::<f32>()?;
        let depth = depth_image(&values, height, width)?;
        Ok(DepthEstimation { predicted_depth, depth })
    }

    /// [`DepthEstimationPipeline::call`] on each image (one at a time).
    pub fn call_batch(&self, images: &[DynamicImage]) -> Result<Vec<DepthEstimation>> {
        images.iter().map(|image| self.call(image)).collect()
    }
}

/// The depth picture of `values` (`height` rows of `width`), in float32 as numpy computes
/// it: `((d - min) / (max - min) * 255).astype(uint8)`. A flat map (max = min), where numpy
/// divides by zero, is black.
pub(crate) fn depth_image(values: &[f32], height: usize, width: usize) -> Result<GrayImage> {
    let (Ok(w), Ok(h)) = (u32::try_from(width), u32::try_from(height)) else {
        return Err(Error::input(format!("depth-estimation: a {height}x{width} depth map is too large")));
    };
    if values.is_empty() || values.len() != height * width {
        return Err(Error::input(format!(
            "depth-estimation: the depth map is empty or malformed ({} values for {height}x{width} pixels)",
            values.len()
        )));
    }
    let min = values.iter().copied().fold(f32::INFINITY, f32::min);
    let max = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let range = max - min;
    let pixels = values
        .iter()
        .map(|&d| {
            let v = (d - min) / range * 255.0;
            // numpy's float-to-uint8 cast truncates; NaN (a flat map) is 0 here.
            if v.is_finite() {
                v as u8
            } else {
                0
            }
        })
        .collect();
    GrayImage::from_raw(w, h, pixels).ok_or_else(|| Error::input("depth-estimation: cannot build the depth picture"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_normalised_and_truncated_like_numpy() {
        let image = depth_image(&[1.0, 2.0, 3.0, 1.5, 2.99, 2.0], 2, 3).unwrap();
        assert_eq!(image.dimensions(), (3, 2));
        // (d - 1) / 2 * 255, truncated: 0, 127.5 -> 127, 255, 63.75 -> 63, 253.7 -> 253.
        assert_eq!(image.as_raw(), &[0, 127, 255, 63, 253, 127]);
    }

    #[test]
    fn a_flat_or_empty_depth_map() {
        assert_eq!(depth_image(&[4.0; 4], 2, 2).unwrap().as_raw(), &[0; 4]);
        let e = depth_image(&[], 0, 0).unwrap_err().to_string();
        assert!(e.contains("depth map is empty"), "{e}");
    }
}
