//! Post-processing of vision model outputs as `transformers`' image processors do it:
//! `post_process_object_detection` (DETR, YOLOS), `post_process_semantic_segmentation`
//! (SegFormer, BEiT, DPT) and `post_process_depth_estimation` (DPT, Depth Anything).

use autocandle_core::{DepthEstimatorOutput, Error, ObjectDetectionOutput, Result, SemanticSegmenterOutput};
use candle_core::Tensor;

/// The detections of one image: parallel lists, one entry per kept query, in query order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Detections {
    /// The probability of the predicted class.
    pub scores: Vec<f32>,
    /// The predicted class id (an index into the model config's `id2label`).
    pub labels: Vec<usize>,
    /// `[x0, y0, x1, y1]`: top-left and bottom-right corners, in pixels of the target size
    /// (or in 0..1 of the input when no target sizes are given).
    pub boxes: Vec<[f32; 4]>,
}

/// `DetrImageProcessor.post_process_object_detection` (YOLOS' is the same): softmax over the
/// classes, the "no object" class dropped, the best class per query kept when its score is
/// above `threshold`, boxes turned from (cx, cy, w, h) to corners and scaled to each
/// `(height, width)` of `target_sizes`.
pub fn post_process_object_detection(
    output: &ObjectDetectionOutput,
    threshold: f32,
    target_sizes: Option<&[(usize, usize)]>,
) -> Result<Vec<Detections>> {
    let _ = (output, threshold, target_sizes);
    Err(Error::Unsupported("post_process_object_detection is not implemented yet".to_owned()))
}

/// `post_process_semantic_segmentation` of SegFormer, BEiT and DPT: the logits resized
/// bilinearly (`align_corners=False`) to each `(height, width)` of `target_sizes`, then the
/// arg-max class per pixel; without target sizes the arg-max at the logits' size. One `[h, w]`
/// `u32` label map per image.
pub fn post_process_semantic_segmentation(
    output: &SemanticSegmenterOutput,
    target_sizes: Option<&[(usize, usize)]>,
) -> Result<Vec<Tensor>> {
    let _ = (output, target_sizes);
    Err(Error::Unsupported("post_process_semantic_segmentation is not implemented yet".to_owned()))
}

/// `post_process_depth_estimation` of DPT and Depth Anything: `predicted_depth` resized to
/// each `(height, width)` of `target_sizes` as `transformers` does it; without target sizes
/// the depth as predicted. One `[h, w]` `f32` depth map per image.
pub fn post_process_depth_estimation(
    output: &DepthEstimatorOutput,
    target_sizes: Option<&[(usize, usize)]>,
) -> Result<Vec<Tensor>> {
    let _ = (output, target_sizes);
    Err(Error::Unsupported("post_process_depth_estimation is not implemented yet".to_owned()))
}
