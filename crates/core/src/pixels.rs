//! [`check_pixel_values`]: the shape checks every vision model runs on its `pixel_values`.

use candle_core::Tensor;

use crate::{Error, Result};

/// Check that `pixel_values` is `[batch, channels, height, width]` with at least one image and
/// `num_channels` channels (the config's `num_channels`); returns its four sizes.
pub fn check_pixel_values(pixel_values: &Tensor, num_channels: usize) -> Result<(usize, usize, usize, usize)> {
    let (batch, channels, height, width) = pixel_values.dims4().map_err(|_| {
        Error::input(format!(
            "`pixel_values` must be [batch, channels, height, width], got shape {:?}",
            pixel_values.dims()
        ))
    })?;
    if batch == 0 {
        return Err(Error::input("`pixel_values` holds no images (batch of 0)"));
    }
    if channels != num_channels {
        return Err(Error::input(format!(
            "the pixel values have {channels} channels but the model takes {num_channels} (`num_channels`): \
             convert the images to RGB or preprocess them with the model's AutoImageProcessor"
        )));
    }
    Ok((batch, channels, height, width))
}
