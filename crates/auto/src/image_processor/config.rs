//! The settings of an image processor, read from `preprocessor_config.json` over each class's
//! `transformers` defaults, and the table of classes and model types.

use autocandle_core::{Error, Result};
use serde_json::{Map, Value};

/// `IMAGENET_STANDARD_MEAN` / `IMAGENET_STANDARD_STD` of `transformers`.
const IMAGENET_STANDARD: [f64; 3] = [0.5, 0.5, 0.5];
/// `OPENAI_CLIP_MEAN` of `transformers`.
const OPENAI_CLIP_MEAN: [f64; 3] = [0.48145466, 0.4578275, 0.40821073];
/// `OPENAI_CLIP_STD` of `transformers`.
const OPENAI_CLIP_STD: [f64; 3] = [0.26862954, 0.26130258, 0.27577711];
/// `IMAGENET_DEFAULT_MEAN` of `transformers`.
const IMAGENET_DEFAULT_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
/// `IMAGENET_DEFAULT_STD` of `transformers`.
const IMAGENET_DEFAULT_STD: [f64; 3] = [0.229, 0.224, 0.225];

/// The largest side, in pixels, of an image after resizing, cropping or padding: a guard
/// against configs (or images of extreme aspect ratio) that would allocate gigabytes.
pub const MAX_IMAGE_SIDE: usize = 8192;

/// The image processor classes autocandle implements, named after `transformers`' classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ImageProcessorClass {
    /// `ViTImageProcessor`: resize to 224x224 (bilinear), rescale, normalize with mean = std = 0.5.
    Vit,
    /// `CLIPImageProcessor`: RGB, resize the shortest edge to 224 (bicubic), center crop 224x224,
    /// rescale, normalize with the OpenAI CLIP mean and std.
    Clip,
    /// `SiglipImageProcessor`: RGB, resize to 224x224 (bicubic), rescale, normalize with
    /// mean = std = 0.5.
    Siglip,
    /// `ConvNextImageProcessor` (ResNet, ConvNeXt, ConvNeXt V2, RegNet, CvT): a shortest edge
    /// below 384 is resized to `shortest_edge / crop_pct` then center cropped to a square of
    /// `shortest_edge`; from 384 on the image is warped to that square (bicubic, mean = std = 0.5).
    ConvNext,
    /// `BitImageProcessor` (BiT, DINOv2, FocalNet, Hiera): RGB, shortest edge 224 (bicubic),
    /// center crop 224x224, OpenAI CLIP mean and std.
    Bit,
    /// `DeiTImageProcessor`: resize to 256x256 (bicubic), center crop 224x224, mean = std = 0.5.
    Deit,
    /// `BeitImageProcessor` (BEiT, Data2Vec-vision): resize to 224x224 (bicubic), mean = std = 0.5.
    Beit,
    /// `SegformerImageProcessor` (SegFormer, UperNet): resize to 512x512 (bilinear), ImageNet
    /// mean and std.
    Segformer,
    /// `DetrImageProcessor` (DETR, Table Transformer, OmDet-Turbo): shortest edge 800 with the
    /// longest at most 1333 (bilinear), ImageNet mean and std, each image padded bottom/right to
    /// the largest of the batch with a `pixel_mask`.
    Detr,
    /// `YolosImageProcessor`: as DETR, but a shortest/longest-edge resize rounds both sides
    /// down to a multiple of 16.
    Yolos,
    /// `DPTImageProcessor` (DPT, Depth Anything): resize to 384x384 (bicubic), optionally keeping
    /// the aspect ratio (`keep_aspect_ratio`) with sides a multiple of `ensure_multiple_of`, then
    /// optionally center padded to a multiple of `size_divisor` (`do_pad`); mean = std = 0.5.
    Dpt,
}

/// `model_type` -> class, for folders whose `preprocessor_config.json` names no class
/// (`transformers` 5.25's `IMAGE_PROCESSOR_MAPPING_NAMES`, restricted to the classes above;
/// like `transformers`, it has no entry for `dinov2_with_registers`, whose checkpoints name
/// `BitImageProcessor` in their `preprocessor_config.json`).
const MODEL_TYPES: [(&str, ImageProcessorClass); 48] = [
    ("aimv2", ImageProcessorClass::Clip),
    ("aimv2_vision_model", ImageProcessorClass::Clip),
    ("altclip", ImageProcessorClass::Clip),
    ("beit", ImageProcessorClass::Beit),
    ("bit", ImageProcessorClass::Bit),
    ("clip", ImageProcessorClass::Clip),
    ("clipseg", ImageProcessorClass::Vit),
    ("colpali", ImageProcessorClass::Siglip),
    ("convnext", ImageProcessorClass::ConvNext),
    ("convnextv2", ImageProcessorClass::ConvNext),
    ("cvt", ImageProcessorClass::ConvNext),
    ("data2vec-vision", ImageProcessorClass::Beit),
    ("deit", ImageProcessorClass::Deit),
    ("depth_anything", ImageProcessorClass::Dpt),
    ("detr", ImageProcessorClass::Detr),
    ("dinat", ImageProcessorClass::Vit),
    ("dinov2", ImageProcessorClass::Bit),
    ("dpt", ImageProcessorClass::Dpt),
    ("florence2", ImageProcessorClass::Clip),
    ("focalnet", ImageProcessorClass::Bit),
    ("gemma3n", ImageProcessorClass::Siglip),
    ("git", ImageProcessorClass::Clip),
    ("groupvit", ImageProcessorClass::Clip),
    ("hiera", ImageProcessorClass::Bit),
    ("ijepa", ImageProcessorClass::Vit),
    ("kosmos-2", ImageProcessorClass::Clip),
    ("metaclip_2", ImageProcessorClass::Clip),
    ("mgp-str", ImageProcessorClass::Vit),
    ("mlcd", ImageProcessorClass::Clip),
    ("omdet-turbo", ImageProcessorClass::Detr),
    ("paligemma", ImageProcessorClass::Siglip),
    ("pixio", ImageProcessorClass::Bit),
    ("regnet", ImageProcessorClass::ConvNext),
    ("resnet", ImageProcessorClass::ConvNext),
    ("segformer", ImageProcessorClass::Segformer),
    ("siglip", ImageProcessorClass::Siglip),
    ("swiftformer", ImageProcessorClass::Vit),
    ("swin", ImageProcessorClass::Vit),
    ("swinv2", ImageProcessorClass::Vit),
    ("table-transformer", ImageProcessorClass::Detr),
    ("trocr", ImageProcessorClass::Vit),
    ("upernet", ImageProcessorClass::Segformer),
    ("vipllava", ImageProcessorClass::Clip),
    ("vit", ImageProcessorClass::Vit),
    ("vit_mae", ImageProcessorClass::Vit),
    ("vit_msn", ImageProcessorClass::Vit),
    ("xclip", ImageProcessorClass::Clip),
    ("yolos", ImageProcessorClass::Yolos),
];

impl ImageProcessorClass {
    /// Every class, in the order of their names.
    pub const ALL: [ImageProcessorClass; 11] = [
        Self::Beit,
        Self::Bit,
        Self::Clip,
        Self::ConvNext,
        Self::Dpt,
        Self::Deit,
        Self::Detr,
        Self::Segformer,
        Self::Siglip,
        Self::Vit,
        Self::Yolos,
    ];

    /// The `transformers` class name (`ViTImageProcessor`, `CLIPImageProcessor`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Vit => "ViTImageProcessor",
            Self::Clip => "CLIPImageProcessor",
            Self::Siglip => "SiglipImageProcessor",
            Self::ConvNext => "ConvNextImageProcessor",
            Self::Bit => "BitImageProcessor",
            Self::Deit => "DeiTImageProcessor",
            Self::Beit => "BeitImageProcessor",
            Self::Segformer => "SegformerImageProcessor",
            Self::Detr => "DetrImageProcessor",
            Self::Yolos => "YolosImageProcessor",
            Self::Dpt => "DPTImageProcessor",
        }
    }

    /// Whether the class pads a batch to its largest image and returns a `pixel_mask`
    /// (when `do_pad` is on).
    pub fn pads_to_batch(self) -> bool {
        matches!(self, Self::Detr | Self::Yolos)
    }

    /// The class an `image_processor_type` or legacy `feature_extractor_type` names, as
    /// `AutoImageProcessor` resolves it: `FeatureExtractor` reads as `ImageProcessor`, and the
    /// `Fast` (torchvision) and `Pil` backend suffixes name the same class.
    pub fn from_class_name(name: &str) -> Option<Self> {
        let name = name.replace("FeatureExtractor", "ImageProcessor");
        let base = name.strip_suffix("Fast").or_else(|| name.strip_suffix("Pil")).unwrap_or(&name);
        Self::ALL.into_iter().find(|c| c.name() == base)
    }

    /// The class `transformers` uses for a `model_type` of `config.json`.
    pub fn for_model_type(model_type: &str) -> Option<Self> {
        MODEL_TYPES.iter().find(|(t, _)| *t == model_type).map(|(_, c)| *c)
    }

    /// The model types whose image processor is one of these classes.
    pub fn known_model_types() -> impl Iterator<Item = &'static str> {
        MODEL_TYPES.iter().map(|(t, _)| *t)
    }

    /// `default_to_square`: how a plain-int `size` reads (a square, or the shortest edge).
    fn default_to_square(self) -> bool {
        matches!(self, Self::Vit | Self::Deit | Self::Beit | Self::Segformer | Self::Dpt)
    }
}

impl std::fmt::Display for ImageProcessorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A resampling filter, with PIL's codes (the `resample` of a config).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resampling {
    /// 0: the nearest pixel (torchvision's `NEAREST_EXACT`, pixel centers aligned).
    Nearest,
    /// 1: Lanczos (a = 3), antialiased.
    Lanczos,
    /// 2: bilinear (triangle filter), antialiased.
    Bilinear,
    /// 3: bicubic (Keys, a = -0.5), antialiased.
    Bicubic,
    /// 4: box; PIL only (`transformers`' torchvision backend has no box filter).
    Box,
    /// 5: Hamming; PIL only (`transformers`' torchvision backend has no Hamming filter).
    Hamming,
}

impl Resampling {
    /// The filter of a PIL code (`PIL.Image.Resampling`), or `None` for an unknown code.
    pub fn from_pil_code(code: i64) -> Option<Self> {
        Some(match code {
            0 => Self::Nearest,
            1 => Self::Lanczos,
            2 => Self::Bilinear,
            3 => Self::Bicubic,
            4 => Self::Box,
            5 => Self::Hamming,
            _ => return None,
        })
    }

    /// PIL's code for the filter.
    pub fn pil_code(self) -> i64 {
        match self {
            Self::Nearest => 0,
            Self::Lanczos => 1,
            Self::Bilinear => 2,
            Self::Bicubic => 3,
            Self::Box => 4,
            Self::Hamming => 5,
        }
    }
}

/// The `size` of a config: how big a resized image is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageSize {
    /// `{"height", "width"}` (or a plain int when the class defaults to squares): exactly this.
    Exact {
        /// Height in pixels.
        height: usize,
        /// Width in pixels.
        width: usize,
    },
    /// `{"shortest_edge"}` (or a plain int for CLIP and SigLIP): the shorter side becomes
    /// this, the longer one keeps the aspect ratio (rounded down).
    ShortestEdge(usize),
    /// `{"shortest_edge", "longest_edge"}`: as `ShortestEdge`, unless the longer side would
    /// exceed `longest`.
    ShortestLongestEdge {
        /// Target of the shorter side, in pixels.
        shortest: usize,
        /// Bound of the longer side, in pixels.
        longest: usize,
    },
    /// `{"max_height", "max_width"}`: the largest size with the aspect ratio that fits.
    MaxHeightWidth {
        /// Largest height in pixels.
        max_height: usize,
        /// Largest width in pixels.
        max_width: usize,
    },
}

impl ImageSize {
    /// The `(height, width)` an image of `height` x `width` is resized to, as `transformers`
    /// computes it (`get_resize_output_image_size`, `get_size_with_aspect_ratio`,
    /// `get_image_size_for_max_height_width`).
    pub fn output_size(&self, height: usize, width: usize) -> (usize, usize) {
        match *self {
            Self::Exact { height, width } => (height, width),
            Self::ShortestEdge(size) => {
                let (short, long) = if width <= height { (width, height) } else { (height, width) };
                let new_long = (size as f64 * long as f64 / short as f64) as usize;
                if width <= height {
                    (new_long, size)
                } else {
                    (size, new_long)
                }
            }
            Self::ShortestLongestEdge { shortest, longest } => {
                let (h, w) = (height as f64, width as f64);
                let (min_side, max_side) = (h.min(w), h.max(w));
                let mut size = shortest;
                let mut raw_size = None;
                if max_side / min_side * shortest as f64 > longest as f64 {
                    let raw = longest as f64 * min_side / max_side;
                    size = raw.round_ties_even() as usize;
                    raw_size = Some(raw);
                }
                if (height <= width && height == size) || (width <= height && width == size) {
                    (height, width)
                } else if width < height {
                    let scaled = raw_size.unwrap_or(size as f64);
                    ((scaled * h / w) as usize, size)
                } else {
                    let scaled = raw_size.unwrap_or(size as f64);
                    (size, (scaled * w / h) as usize)
                }
            }
            Self::MaxHeightWidth { max_height, max_width } => {
                let scale = (max_height as f64 / height as f64).min(max_width as f64 / width as f64);
                ((height as f64 * scale) as usize, (width as f64 * scale) as usize)
            }
        }
    }
}

/// The settings of an image processor: the fields of `preprocessor_config.json` that shape
/// `pixel_values`, with the class defaults filled in.
///
/// Start from [`ImageProcessorConfig::for_class`] and change fields to build one in code.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ImageProcessorConfig {
    /// Convert every image to RGB first (transparency composited on white, as PIL does).
    /// When off, images must already have three channels.
    pub do_convert_rgb: bool,
    /// Resize to `size` with `resample`.
    pub do_resize: bool,
    /// The size to resize to.
    pub size: ImageSize,
    /// The resampling filter.
    pub resample: Resampling,
    /// Crop the center `crop_size` out (padding with zeros where the image is smaller).
    pub do_center_crop: bool,
    /// `(height, width)` of the center crop; needed when `do_center_crop` is on.
    pub crop_size: Option<(usize, usize)>,
    /// Multiply the 0..=255 pixel values by `rescale_factor`.
    pub do_rescale: bool,
    /// Usually 1/255.
    pub rescale_factor: f64,
    /// Subtract `image_mean` and divide by `image_std`, per channel.
    pub do_normalize: bool,
    /// Per-channel (R, G, B) mean.
    pub image_mean: [f64; 3],
    /// Per-channel (R, G, B) standard deviation.
    pub image_std: [f64; 3],
    /// `ConvNextImageProcessor`: below a shortest edge of 384, resize to `shortest_edge /
    /// crop_pct` and center crop `shortest_edge` (default 224/256).
    pub crop_pct: f64,
    /// Pad after normalizing (with zeros): DETR and YOLOS pad each image bottom/right to the
    /// largest of the batch (or `pad_size`) and return a `pixel_mask`; DPT center pads each
    /// image to a multiple of `size_divisor`. Other classes do not pad.
    pub do_pad: bool,
    /// DETR, YOLOS: `(height, width)` to pad every image to, instead of the batch's largest.
    pub pad_size: Option<(usize, usize)>,
    /// DPT: resize as little as possible while keeping the aspect ratio (the side whose scale
    /// is closer to 1 decides).
    pub keep_aspect_ratio: bool,
    /// DPT: round each resized side to a multiple of this (Python's `round`).
    pub ensure_multiple_of: usize,
    /// DPT: with `do_pad`, pad each side to a multiple of this.
    pub size_divisor: Option<usize>,
}

impl ImageProcessorConfig {
    /// The defaults of a `transformers` class (its class attributes in transformers 5.23).
    pub fn for_class(class: ImageProcessorClass) -> Self {
        let base = Self {
            do_convert_rgb: false,
            do_resize: true,
            size: ImageSize::Exact { height: 224, width: 224 },
            resample: Resampling::Bilinear,
            do_center_crop: false,
            crop_size: None,
            do_rescale: true,
            rescale_factor: 1.0 / 255.0,
            do_normalize: true,
            image_mean: IMAGENET_STANDARD,
            image_std: IMAGENET_STANDARD,
            crop_pct: 224.0 / 256.0,
            do_pad: false,
            pad_size: None,
            keep_aspect_ratio: false,
            ensure_multiple_of: 1,
            size_divisor: None,
        };
        let imagenet = Self { image_mean: IMAGENET_DEFAULT_MEAN, image_std: IMAGENET_DEFAULT_STD, ..base.clone() };
        match class {
            ImageProcessorClass::Vit => base,
            ImageProcessorClass::Clip => Self {
                do_convert_rgb: true,
                size: ImageSize::ShortestEdge(224),
                resample: Resampling::Bicubic,
                do_center_crop: true,
                crop_size: Some((224, 224)),
                image_mean: OPENAI_CLIP_MEAN,
                image_std: OPENAI_CLIP_STD,
                ..base
            },
            ImageProcessorClass::Siglip => Self { do_convert_rgb: true, resample: Resampling::Bicubic, ..base },
            ImageProcessorClass::ConvNext => {
                Self { size: ImageSize::ShortestEdge(384), resample: Resampling::Bicubic, ..base }
            }
            ImageProcessorClass::Bit => Self {
                do_convert_rgb: true,
                size: ImageSize::ShortestEdge(224),
                resample: Resampling::Bicubic,
                do_center_crop: true,
                crop_size: Some((224, 224)),
                image_mean: OPENAI_CLIP_MEAN,
                image_std: OPENAI_CLIP_STD,
                ..base
            },
            ImageProcessorClass::Deit => Self {
                size: ImageSize::Exact { height: 256, width: 256 },
                resample: Resampling::Bicubic,
                do_center_crop: true,
                crop_size: Some((224, 224)),
                ..base
            },
            ImageProcessorClass::Beit => Self { resample: Resampling::Bicubic, crop_size: Some((224, 224)), ..base },
            ImageProcessorClass::Segformer => Self { size: ImageSize::Exact { height: 512, width: 512 }, ..imagenet },
            ImageProcessorClass::Detr | ImageProcessorClass::Yolos => {
                Self { size: ImageSize::ShortestLongestEdge { shortest: 800, longest: 1333 }, do_pad: true, ..imagenet }
            }
            ImageProcessorClass::Dpt => {
                Self { size: ImageSize::Exact { height: 384, width: 384 }, resample: Resampling::Bicubic, ..base }
            }
        }
    }

    /// The class defaults updated by the fields of a `preprocessor_config.json` object.
    ///
    /// `null` keeps the default, as in `transformers`; keys that do not shape `pixel_values`
    /// (`image_processor_type`, `processor_class`, ...) are ignored. `origin` names the file
    /// in error messages.
    pub fn from_json(class: ImageProcessorClass, fields: &Map<String, Value>, origin: &str) -> Result<Self> {
        let mut config = Self::for_class(class);
        let field = |key: &str| fields.get(key).filter(|v| !v.is_null());
        let err = |key: &str, message: String| Error::config(class.name(), format!("`{key}` in {origin}: {message}"));
        let flag = |key: &str, default: bool| match field(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(err(key, format!("expected true or false, got {v}"))),
        };

        config.do_convert_rgb = flag("do_convert_rgb", config.do_convert_rgb)?;
        config.do_resize = flag("do_resize", config.do_resize)?;
        config.do_center_crop = flag("do_center_crop", config.do_center_crop)?;
        config.do_rescale = flag("do_rescale", config.do_rescale)?;
        config.do_normalize = flag("do_normalize", config.do_normalize)?;
        let pads = matches!(class, ImageProcessorClass::Detr | ImageProcessorClass::Yolos | ImageProcessorClass::Dpt);
        if pads {
            // DETR's legacy name for `do_pad`.
            let legacy = flag("pad_and_return_pixel_mask", config.do_pad)?;
            config.do_pad = flag("do_pad", if class == ImageProcessorClass::Dpt { config.do_pad } else { legacy })?;
        } else if flag("do_pad", false)? {
            return Err(Error::Unsupported(format!(
                "`do_pad: true` in {origin}: {} in autocandle does not pad; remove it or set it to false",
                class.name()
            )));
        }

        if let Some(v) = field("resample") {
            let code = v.as_i64().ok_or_else(|| err("resample", format!("expected a PIL filter code, got {v}")))?;
            config.resample = Resampling::from_pil_code(code).ok_or_else(|| {
                err(
                    "resample",
                    format!(
                        "unknown resampling filter {code}; PIL's codes are 0 (nearest), 1 (lanczos), 2 (bilinear), \
                         3 (bicubic), 4 (box), 5 (hamming)"
                    ),
                )
            })?;
        }

        let default_to_square = flag("default_to_square", class.default_to_square())?;
        let detr_like = matches!(class, ImageProcessorClass::Detr | ImageProcessorClass::Yolos);
        if let (true, Some(v)) = (detr_like, field("size").filter(|v| v.is_number())) {
            // DETR's `__init__`: an int size is the shortest edge, `max_size` (default 1333) the longest.
            let shortest = positive_side(v, "size").map_err(|m| err("size", m))?;
            let longest = match field("max_size") {
                Some(m) => positive_side(m, "max_size").map_err(|m| err("max_size", m))?,
                None => 1333,
            };
            config.size = ImageSize::ShortestLongestEdge { shortest, longest };
        } else if let Some(v) = field("size") {
            match parse_size(v, default_to_square).map_err(|m| err("size", m))? {
                ParsedSize::Usable(size) => config.size = size,
                ParsedSize::Unsupported(keys) if config.do_resize => {
                    return Err(Error::Unsupported(format!(
                        "`size` {keys} in {origin}: autocandle resizes to height/width, shortest_edge \
                         (with or without longest_edge) or max_height/max_width"
                    )))
                }
                ParsedSize::Unsupported(_) => {}
            }
        }
        // KOSMOS-2's CLIP processor: a square of the class's default shortest edge.
        if class == ImageProcessorClass::Clip && flag("use_square_size", false)? {
            config.size = ImageSize::Exact { height: 224, width: 224 };
        }
        if let Some(v) = field("crop_size") {
            config.crop_size = match parse_size(v, true).map_err(|m| err("crop_size", m))? {
                ParsedSize::Usable(ImageSize::Exact { height, width }) => Some((height, width)),
                _ => None,
            };
        }
        if let Some(v) = field("pad_size") {
            config.pad_size = match parse_size(v, true).map_err(|m| err("pad_size", m))? {
                ParsedSize::Usable(ImageSize::Exact { height, width }) => Some((height, width)),
                _ => return Err(err("pad_size", format!("expected height and width, got {v}"))),
            };
        }
        if let Some(v) = field("crop_pct") {
            config.crop_pct = v.as_f64().ok_or_else(|| err("crop_pct", format!("expected a number, got {v}")))?;
        }
        if class == ImageProcessorClass::ConvNext && !(config.crop_pct.is_finite() && config.crop_pct > 0.0) {
            return Err(err("crop_pct", format!("must be a positive number, got {}", config.crop_pct)));
        }
        config.keep_aspect_ratio = flag("keep_aspect_ratio", config.keep_aspect_ratio)?;
        if let Some(v) = field("ensure_multiple_of") {
            config.ensure_multiple_of =
                positive_side(v, "ensure_multiple_of").map_err(|m| err("ensure_multiple_of", m))?;
        }
        if let Some(v) = field("size_divisor") {
            config.size_divisor = Some(positive_side(v, "size_divisor").map_err(|m| err("size_divisor", m))?);
        }
        if class == ImageProcessorClass::Dpt && config.do_pad && config.size_divisor.is_none() {
            return Err(err("size_divisor", "`do_pad` needs a `size_divisor` to pad to a multiple of".to_owned()));
        }
        if config.do_resize {
            let size_ok = match class {
                ImageProcessorClass::ConvNext => {
                    matches!(config.size, ImageSize::ShortestEdge(_) | ImageSize::ShortestLongestEdge { .. })
                }
                ImageProcessorClass::Detr | ImageProcessorClass::Yolos => {
                    !matches!(config.size, ImageSize::ShortestEdge(_))
                }
                ImageProcessorClass::Dpt => matches!(config.size, ImageSize::Exact { .. }),
                _ => true,
            };
            if !size_ok {
                let wanted = match class {
                    ImageProcessorClass::ConvNext => "a `shortest_edge`",
                    ImageProcessorClass::Dpt => "`height` and `width`",
                    _ => "`shortest_edge` and `longest_edge`, `height` and `width`, or `max_height` and `max_width`",
                };
                return Err(err("size", format!("{} resizes to {wanted}, got {:?}", class.name(), config.size)));
            }
        }
        if config.do_center_crop && config.crop_size.is_none() {
            return Err(err("crop_size", "center cropping needs a crop_size with `height` and `width`".to_owned()));
        }

        if let Some(v) = field("rescale_factor") {
            config.rescale_factor =
                v.as_f64().ok_or_else(|| err("rescale_factor", format!("expected a number, got {v}")))?;
        }
        if config.do_rescale && !(config.rescale_factor.is_finite() && config.rescale_factor != 0.0) {
            return Err(err(
                "rescale_factor",
                format!("must be a finite non-zero number, got {}", config.rescale_factor),
            ));
        }
        if let Some(v) = field("image_mean") {
            config.image_mean = parse_channels(v).map_err(|m| err("image_mean", m))?;
        }
        if let Some(v) = field("image_std") {
            config.image_std = parse_channels(v).map_err(|m| err("image_std", m))?;
        }
        if config.do_normalize && config.image_std.iter().any(|s| *s == 0.0 || !s.is_finite()) {
            return Err(err("image_std", format!("must be finite and non-zero, got {:?}", config.image_std)));
        }
        Ok(config)
    }
}

/// A `size`/`crop_size` value after `transformers`' `get_size_dict`.
enum ParsedSize {
    Usable(ImageSize),
    /// A key set `transformers` accepts but autocandle does not resize to.
    Unsupported(String),
}

/// `get_size_dict`: a dict with one of the valid key sets, an int (a square, or the shortest
/// edge), or a `[height, width]` list.
fn parse_size(value: &Value, default_to_square: bool) -> std::result::Result<ParsedSize, String> {
    let positive = positive_side;
    match value {
        Value::Number(_) => {
            let n = positive(value, "size")?;
            Ok(ParsedSize::Usable(if default_to_square {
                ImageSize::Exact { height: n, width: n }
            } else {
                ImageSize::ShortestEdge(n)
            }))
        }
        Value::Array(items) if items.len() == 2 => Ok(ParsedSize::Usable(ImageSize::Exact {
            height: positive(&items[0], "height")?,
            width: positive(&items[1], "width")?,
        })),
        Value::Object(map) => {
            let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
            keys.sort_unstable();
            let get = |k: &str| positive(&map[k], k);
            let size = match keys.as_slice() {
                ["height", "width"] => ImageSize::Exact { height: get("height")?, width: get("width")? },
                ["shortest_edge"] => ImageSize::ShortestEdge(get("shortest_edge")?),
                ["longest_edge", "shortest_edge"] => {
                    ImageSize::ShortestLongestEdge { shortest: get("shortest_edge")?, longest: get("longest_edge")? }
                }
                ["max_height", "max_width"] => {
                    ImageSize::MaxHeightWidth { max_height: get("max_height")?, max_width: get("max_width")? }
                }
                ["longest_edge"] | ["max_pixels", "min_pixels"] => {
                    return Ok(ParsedSize::Unsupported(format!("{{{}}}", keys.join(", "))))
                }
                _ => {
                    return Err(format!(
                        "must have the keys height and width, shortest_edge, shortest_edge and longest_edge, \
                         longest_edge, max_height and max_width, or min_pixels and max_pixels; got {{{}}}",
                        keys.join(", ")
                    ))
                }
            };
            Ok(ParsedSize::Usable(size))
        }
        other => Err(format!("expected an integer, a [height, width] list or an object, got {other}")),
    }
}

/// A positive integer no larger than [`MAX_IMAGE_SIDE`].
fn positive_side(v: &Value, what: &str) -> std::result::Result<usize, String> {
    match v.as_u64() {
        Some(n) if n > MAX_IMAGE_SIDE as u64 => Err(format!(
            "`{what}` is {n} pixels, more than autocandle's limit of {MAX_IMAGE_SIDE} per side; use a smaller size"
        )),
        Some(n) if n > 0 => Ok(n as usize),
        _ => Err(format!("`{what}` must be a positive integer, got {v}")),
    }
}

/// A per-channel value: one number for every channel, or a list of one or three numbers.
fn parse_channels(value: &Value) -> std::result::Result<[f64; 3], String> {
    let number = |v: &Value| v.as_f64().ok_or_else(|| format!("expected numbers, got {v}"));
    match value {
        Value::Number(_) => Ok([number(value)?; 3]),
        Value::Array(items) if items.len() == 1 => Ok([number(&items[0])?; 3]),
        Value::Array(items) if items.len() == 3 => Ok([number(&items[0])?, number(&items[1])?, number(&items[2])?]),
        other => Err(format!("expected a number or a list of 3 numbers (R, G, B), got {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(class: ImageProcessorClass, value: Value) -> Result<ImageProcessorConfig> {
        match value {
            Value::Object(map) => ImageProcessorConfig::from_json(class, &map, "test"),
            _ => unreachable!("tests pass objects"),
        }
    }

    #[test]
    fn class_names() {
        use ImageProcessorClass::*;
        assert_eq!(ImageProcessorClass::from_class_name("ViTImageProcessor"), Some(Vit));
        assert_eq!(ImageProcessorClass::from_class_name("ViTImageProcessorFast"), Some(Vit));
        assert_eq!(ImageProcessorClass::from_class_name("ViTImageProcessorPil"), Some(Vit));
        assert_eq!(ImageProcessorClass::from_class_name("ViTFeatureExtractor"), Some(Vit));
        assert_eq!(ImageProcessorClass::from_class_name("CLIPFeatureExtractor"), Some(Clip));
        assert_eq!(ImageProcessorClass::from_class_name("SiglipImageProcessorFast"), Some(Siglip));
        assert_eq!(ImageProcessorClass::from_class_name("SigLIPImageProcessor"), None);
        assert_eq!(ImageProcessorClass::from_class_name("DeiTImageProcessor"), Some(Deit));
        assert_eq!(ImageProcessorClass::from_class_name("LevitImageProcessor"), None);
        assert_eq!(ImageProcessorClass::for_model_type("siglip"), Some(Siglip));
        assert_eq!(ImageProcessorClass::for_model_type("bert"), None);
    }

    #[test]
    fn class_defaults() {
        let vit = ImageProcessorConfig::for_class(ImageProcessorClass::Vit);
        assert!(!vit.do_convert_rgb && !vit.do_center_crop);
        assert_eq!((vit.size, vit.resample), (ImageSize::Exact { height: 224, width: 224 }, Resampling::Bilinear));
        let clip = ImageProcessorConfig::for_class(ImageProcessorClass::Clip);
        assert!(clip.do_convert_rgb && clip.do_center_crop);
        assert_eq!((clip.size, clip.crop_size), (ImageSize::ShortestEdge(224), Some((224, 224))));
        assert_eq!(clip.image_mean, OPENAI_CLIP_MEAN);
        let siglip = ImageProcessorConfig::for_class(ImageProcessorClass::Siglip);
        assert!(siglip.do_convert_rgb && !siglip.do_center_crop);
        assert_eq!(siglip.resample, Resampling::Bicubic);
    }

    #[test]
    fn size_forms() -> Result<()> {
        // A plain int is a square for ViT and the shortest edge for CLIP and SigLIP.
        let vit = parse(ImageProcessorClass::Vit, json!({"size": 20}))?;
        assert_eq!(vit.size, ImageSize::Exact { height: 20, width: 20 });
        let clip = parse(ImageProcessorClass::Clip, json!({"size": 26, "crop_size": 20}))?;
        assert_eq!((clip.size, clip.crop_size), (ImageSize::ShortestEdge(26), Some((20, 20))));
        let siglip = parse(ImageProcessorClass::Siglip, json!({"size": 30, "default_to_square": true}))?;
        assert_eq!(siglip.size, ImageSize::Exact { height: 30, width: 30 });
        let list = parse(ImageProcessorClass::Vit, json!({"size": [10, 12], "image_mean": 0.25}))?;
        assert_eq!((list.size, list.image_mean), (ImageSize::Exact { height: 10, width: 12 }, [0.25; 3]));
        let square = parse(ImageProcessorClass::Clip, json!({"use_square_size": true, "size": 100}))?;
        assert_eq!(square.size, ImageSize::Exact { height: 224, width: 224 });
        assert!(parse(ImageProcessorClass::Vit, json!({"size": {"height": 3}})).is_err());
        assert!(parse(ImageProcessorClass::Vit, json!({"size": {"longest_edge": 3}})).is_err());
        assert!(parse(ImageProcessorClass::Vit, json!({"size": {"longest_edge": 3}, "do_resize": false})).is_ok());
        assert!(parse(ImageProcessorClass::Vit, json!({"size": 0})).is_err());
        assert!(parse(ImageProcessorClass::Vit, json!({"do_center_crop": true})).is_err());
        assert!(parse(ImageProcessorClass::Vit, json!({"image_std": [0.5, 0.0, 0.5]})).is_err());
        assert!(parse(ImageProcessorClass::Vit, json!({"image_mean": [0.5, 0.5]})).is_err());
        assert!(parse(ImageProcessorClass::Vit, json!({"do_resize": "yes"})).is_err());
        Ok(())
    }

    #[test]
    fn resample_codes() -> Result<()> {
        for code in 0..6 {
            let config = parse(ImageProcessorClass::Vit, json!({ "resample": code }))?;
            assert_eq!(config.resample.pil_code(), code);
        }
        let err = parse(ImageProcessorClass::Vit, json!({"resample": 7})).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("unknown resampling filter 7"), "{err}");
        Ok(())
    }

    #[test]
    fn output_sizes() {
        // `int(size * long / short)` for the long side.
        assert_eq!(ImageSize::ShortestEdge(30).output_size(23, 37), (30, 48));
        assert_eq!(ImageSize::ShortestEdge(30).output_size(29, 19), (45, 30));
        assert_eq!(ImageSize::ShortestEdge(30).output_size(24, 24), (30, 30));
        // Longest edge caps the long side; Python's round() rounds half to even.
        let capped = ImageSize::ShortestLongestEdge { shortest: 20, longest: 24 };
        assert_eq!(capped.output_size(23, 37), (15, 24));
        assert_eq!(capped.output_size(29, 19), (24, 16));
        assert_eq!(capped.output_size(41, 50), (20, 24));
        assert_eq!(capped.output_size(24, 24), (20, 20));
        assert_eq!(capped.output_size(20, 22), (20, 22));
        let fit = ImageSize::MaxHeightWidth { max_height: 20, max_width: 20 };
        assert_eq!(fit.output_size(23, 37), (12, 20));
        assert_eq!(fit.output_size(100, 200), (10, 20));
    }
}
