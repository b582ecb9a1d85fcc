//! The image-segmentation pipeline (`transformers.ImageSegmentationPipeline`) for semantic
//! segmentation models (`AutoModelForSemanticSegmentation`: SegFormer, BEiT, DPT): the image
//! processor, the model, [`post_process_semantic_segmentation`] at the image's size, and one
//! mask per label present, as the Python pipeline's `subtask="semantic"` branch returns them:
//! `{score: None, label, mask}` with a mask of 0 and 255 at the input's size, labels in id
//! order (`np.unique`).
//!
//! Panoptic and instance segmentation (DETR's `DetrForSegmentation`, Mask2Former, ...) are
//! not implemented.

use autocandle_core::{Error, ForSemanticSegmentation, LoadOptions, Result};
use candle_core::{DType, Device};
use image::GrayImage;

use super::vision::image_inputs;
use super::{config_labels, label_of};
use crate::image_processor::post_process_semantic_segmentation;
use crate::{AutoConfig, AutoImageProcessor, AutoModelForSemanticSegmentation, DynamicImage, ImageProcessor};

/// One segment: `{"score", "label", "mask"}` of `transformers`.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Always `None` for semantic segmentation (as in `transformers`).
    pub score: Option<f32>,
    /// The label, from the config's `id2label`.
    pub label: String,
    /// The label's id.
    pub label_id: usize,
    /// 255 where the pixel has this label, 0 elsewhere; the input image's size.
    pub mask: GrayImage,
}

/// Segment images with a semantic segmentation model.
#[derive(Debug)]
pub struct ImageSegmentationPipeline {
    processor: ImageProcessor,
    model: Box<dyn ForSemanticSegmentation>,
    labels: Vec<String>,
    device: Device,
}

impl ImageSegmentationPipeline {
    /// Load the model (`AutoModelForSemanticSegmentation`) and image processor at `model`.
    pub fn new(model: &str) -> Result<Self> {
        Self::new_with(model, &LoadOptions::default())
    }

    /// [`ImageSegmentationPipeline::new`] with loading options.
    pub fn new_with(model: &str, opts: &LoadOptions) -> Result<Self> {
        super::traced("image-segmentation", model, || {
            let processor = AutoImageProcessor::from_pretrained_with(model, opts)?;
            let labels = config_labels(&AutoConfig::from_pretrained_with(model, opts)?.value);
            let model = AutoModelForSemanticSegmentation::from_pretrained_with(model, opts)?.value;
            Ok(Self { processor, model, labels, device: opts.device.clone() })
        })
    }

    /// The labels by id (`id2label`).
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The label of every pixel of `image`: `(label ids row by row, height, width)`.
    pub fn label_map(&self, image: &DynamicImage) -> Result<(Vec<u32>, usize, usize)> {
        let (inputs, size) = image_inputs("image-segmentation", &self.processor, image, &self.device)?;
        let output = self.model.forward(&inputs)?;
        let maps = post_process_semantic_segmentation(&output, Some(&[size]))?;
        let map = maps.into_iter().next().ok_or_else(|| {
            Error::input("image-segmentation: post-processing returned no label map: the model gave an empty batch")
        })?;
        let (height, width) = map.dims2()?;
        let ids = map.to_dtype(DType::U32)?.flatten_all()?.to_vec1::<u32>()?;
        Ok((ids, height, width))
    }

    /// One segment per label present in `image`, in label id order.
    pub fn call(&self, image: &DynamicImage) -> Result<Vec<Segment>> {
        let (ids, height, width) = self.label_map(image)?;
        segments_of(&ids, height, width, &self.labels)
    }

    /// [`ImageSegmentationPipeline::call`] on each image (one at a time).
    pub fn call_batch(&self, images: &[DynamicImage]) -> Result<Vec<Vec<Segment>>> {
        images.iter().map(|image| self.call(image)).collect()
    }
}

/// The segments of a label map (`ids`, `height` rows of `width`): one 0/255 mask per distinct
/// label, in id order, as `np.unique` orders them.
pub(crate) fn segments_of(ids: &[u32], height: usize, width: usize, labels: &[String]) -> Result<Vec<Segment>> {
    if ids.is_empty() || ids.len() != height * width {
        return Err(Error::input(format!(
            "image-segmentation: the label map is empty or malformed ({} labels for {height}x{width} pixels): the \
             model and its post-processing must give one label per pixel",
            ids.len()
        )));
    }
    let mut present: Vec<u32> = ids.to_vec();
    present.sort_unstable();
    present.dedup();
    let (w, h) = (u32::try_from(width), u32::try_from(height));
    let (Ok(w), Ok(h)) = (w, h) else {
        return Err(Error::input(format!("image-segmentation: a {height}x{width} label map is too large")));
    };
    Ok(present
        .into_iter()
        .map(|id| {
            let pixels = ids.iter().map(|&p| if p == id { 255u8 } else { 0 }).collect();
            let mask = GrayImage::from_raw(w, h, pixels).unwrap_or_else(|| GrayImage::new(w, h));
            let label_id = id as usize;
            Segment { score: None, label: label_of(labels, label_id), label_id, mask }
        })
        .collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn one_mask_per_present_label_in_id_order() {
        let labels = vec!["sky".to_owned(), "tree".to_owned(), "road".to_owned()];
        // 2 rows of 3: ids 2 and 0 present (1 absent), and an id beyond id2label.
        let segments = segments_of(&[2, 2, 0, 0, 7, 2], 2, 3, &labels).unwrap();
        let names: Vec<&str> = segments.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(names, ["sky", "road", "LABEL_7"]);
        assert!(segments.iter().all(|s| s.score.is_none()));
        assert_eq!(segments[1].mask.dimensions(), (3, 2));
        assert_eq!(segments[1].mask.as_raw(), &[255, 255, 0, 0, 0, 255]);
        assert_eq!(segments[0].mask.as_raw(), &[0, 0, 255, 255, 0, 0]);
    }

    #[test]
    fn an_empty_label_map_is_a_clear_error() {
        let e = segments_of(&[], 0, 0, &[]).unwrap_err().to_string();
        assert!(e.contains("label map is empty"), "{e}");
        let e = segments_of(&[1, 2], 2, 2, &[]).unwrap_err().to_string();
        assert!(e.contains("one label per pixel"), "{e}");
    }
}
