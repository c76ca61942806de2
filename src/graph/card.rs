//! The model card: what a user states about a model beside its weights — architecture, input
//! size and layout, normalisation and class names — as JSON or TOML.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::GraphError;

/// Largest input side a card may state, in pixels (see [`ModelCard::validate`]).
pub const MAX_INPUT_SIDE: usize = 4096;
/// Most classes a card may state (ImageNet-21k has 21 841).
pub const MAX_CLASSES: usize = 100_000;
/// A `shorter-side-crop` size may be at most this many times the larger input side.
pub const MAX_RESIZE_FACTOR: usize = 4;

/// How pixel values in `[0, 255]` become model inputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Normalization {
    /// `(v/255 − mean) / std` with ImageNet's mean (0.485, 0.456, 0.406) and std (0.229, 0.224, 0.225).
    Imagenet,
    /// `v/255` (Keras models trained on rescaled inputs).
    Unit,
    /// `v` unchanged (0–255).
    Raw,
    /// `(v/255 − mean) / std` with the given per-channel values.
    MeanStd {
        /// Per-channel mean in `[0, 1]` units.
        mean: Vec<f32>,
        /// Per-channel standard deviation in `[0, 1]` units.
        std: Vec<f32>,
    },
}

impl Normalization {
    /// Per-channel `(scale, shift)` such that input = pixel·scale + shift, for `channels` channels.
    pub fn affine(&self, channels: usize) -> Vec<(f32, f32)> {
        let ms = |mean: &[f32], std: &[f32]| -> Vec<(f32, f32)> {
            (0..channels)
                .map(|c| {
                    let m = mean[c % mean.len()];
                    let s = std[c % std.len()];
                    (1.0 / (255.0 * s), -m / s)
                })
                .collect()
        };
        match self {
            Normalization::Imagenet => ms(&[0.485, 0.456, 0.406], &[0.229, 0.224, 0.225]),
            Normalization::Unit => vec![(1.0 / 255.0, 0.0); channels],
            Normalization::Raw => vec![(1.0, 0.0); channels],
            Normalization::MeanStd { mean, std } => ms(mean, std),
        }
    }
}

/// How an image of any size is brought to the model's input size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum ResizeMode {
    /// Resize both sides to the input size (aspect ratio not kept).
    Stretch,
    /// torchvision's `Resize(size)` (shorter side to `size`) then `CenterCrop(input_size)`.
    ShorterSideCrop {
        /// Target length of the shorter side.
        size: usize,
    },
}

/// Memory layout the original model expects at its input (importers convert to NCHW).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// `[N, C, H, W]` (PyTorch).
    Nchw,
    /// `[N, H, W, C]` (Keras / TensorFlow).
    Nhwc,
}

/// Everything needed besides the weights to run a model on image files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelCard {
    /// Built-in architecture name (e.g. `resnet50`); `None` for imported graphs.
    #[serde(default)]
    pub arch: Option<String>,
    /// Class names in output order; empty means "class 0, class 1, …".
    #[serde(default)]
    pub classes: Vec<String>,
    /// Number of output classes. A card that names its `classes` but leaves this out gets
    /// their count (see [`ModelCard::load`]); weights that fix the width override it.
    #[serde(default = "default_classes")]
    pub num_classes: usize,
    /// Input `[height, width]`.
    #[serde(default = "default_size")]
    pub input_size: [usize; 2],
    /// Input channels (3 for RGB, 1 for grey models).
    #[serde(default = "default_channels")]
    pub channels: usize,
    /// Layout of the original model's input.
    #[serde(default = "default_layout")]
    pub layout: Layout,
    /// Pixel normalisation.
    #[serde(default = "default_norm")]
    pub normalization: Normalization,
    /// Resizing policy.
    #[serde(default = "default_resize")]
    pub resize: ResizeMode,
    /// Resampling filter (torchvision's `Resize` uses bilinear; Pillow's bare `Image.resize` bicubic).
    #[serde(default)]
    pub resample: crate::data::resize::Filter,
    /// How output scores become probabilities (`softmax`, `sigmoid` for multi-label,
    /// `binary-logit` for one output); left out, it is read off the model (see
    /// [`Head::resolve`](super::head::Head::resolve)) and filled in when the model loads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<super::head::Head>,
}

fn default_classes() -> usize {
    1000
}
fn default_size() -> [usize; 2] {
    [224, 224]
}
fn default_channels() -> usize {
    3
}
fn default_layout() -> Layout {
    Layout::Nchw
}
fn default_norm() -> Normalization {
    Normalization::Imagenet
}
fn default_resize() -> ResizeMode {
    ResizeMode::Stretch
}

impl Default for ModelCard {
    fn default() -> Self {
        ModelCard {
            arch: None,
            classes: Vec::new(),
            num_classes: default_classes(),
            input_size: default_size(),
            channels: default_channels(),
            layout: default_layout(),
            normalization: default_norm(),
            resize: default_resize(),
            resample: Default::default(),
            head: None,
        }
    }
}

impl ModelCard {
    /// Name of class `index` (its number if no names are given).
    pub fn class_name(&self, index: usize) -> String {
        self.classes
            .get(index)
            .cloned()
            .unwrap_or_else(|| index.to_string())
    }

    /// The model's output head (`softmax` until a model fills it in at load time).
    pub fn head(&self) -> super::head::Head {
        self.head.unwrap_or_default()
    }

    /// Index of a class given by name or number.
    pub fn class_index(&self, name: &str) -> Option<usize> {
        self.classes
            .iter()
            .position(|c| c == name)
            .or_else(|| name.parse().ok().filter(|&i| i < self.num_classes))
    }

    /// Reads a card from a `.json` or `.toml` file and [`validates`](Self::validate) it. A card
    /// that names its `classes` without `num_classes` has as many classes as names: the
    /// default of 1000 is only a guess, and weights that fix the output width replace the
    /// count anyway (checking the names against it). The messages do not name the file: the
    /// caller (e.g. [`Model::load`](super::Model::load)) adds the path once.
    pub fn load(path: &Path) -> Result<Self, GraphError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| GraphError::Invalid(format!("cannot read model card: {e}")))?;
        let is_toml = is_toml(path);
        let mut card: ModelCard = if is_toml {
            toml::from_str(&text)
                .map_err(|e| GraphError::Invalid(format!("bad model card: {e}")))?
        } else {
            serde_json::from_str(&text)
                .map_err(|e| GraphError::Invalid(format!("bad model card: {e}")))?
        };
        let states_num_classes = stated_fields_in(&text, is_toml)
            .iter()
            .any(|f| f == "num_classes");
        if !states_num_classes && !card.classes.is_empty() {
            card.num_classes = card.classes.len();
        }
        card.validate().map_err(GraphError::Invalid)?;
        Ok(card)
    }

    /// Checks the card as a whole; the message names the first bad field (``field
    /// `normalization.std`: …``). The limits keep every later step's memory bounded by the
    /// card: a side of at most [`MAX_INPUT_SIDE`] pixels (a `[1, 3, 4096, 4096]` input is
    /// 192 MiB before any activation; no supported architecture needs more), normalisation
    /// lists with one value or one per channel, positive finite standard deviations, and a
    /// `shorter-side-crop` size between 1 and [`MAX_RESIZE_FACTOR`] × the larger input side.
    pub fn validate(&self) -> Result<(), String> {
        let field = |name: &str, what: String| Err(format!("field `{name}`: {what}"));
        if self.num_classes == 0 || self.num_classes > MAX_CLASSES {
            return field(
                "num_classes",
                format!("must lie in 1..={MAX_CLASSES}, got {}", self.num_classes),
            );
        }
        // A binary logit is one output for two classes: the card may name both.
        let binary = self.num_classes == 1 && self.classes.len() <= 2;
        if !self.classes.is_empty() && self.classes.len() != self.num_classes && !binary {
            return field(
                "classes",
                format!(
                    "{} class names for {} classes (num_classes)",
                    self.classes.len(),
                    self.num_classes
                ),
            );
        }
        if let Some(&side) = self
            .input_size
            .iter()
            .find(|&&s| s == 0 || s > MAX_INPUT_SIDE)
        {
            return field(
                "input_size",
                format!("each side must lie in 1..={MAX_INPUT_SIDE} pixels, got {side}"),
            );
        }
        if self.channels != 1 && self.channels != 3 {
            return field("channels", format!("must be 1 or 3, got {}", self.channels));
        }
        if let Normalization::MeanStd { mean, std } = &self.normalization {
            self.check_per_channel("normalization.mean", mean)?;
            self.check_per_channel("normalization.std", std)?;
            if let Some(s) = std.iter().find(|&&s| s <= 0.0) {
                return field("normalization.std", format!("must be positive, got {s}"));
            }
        }
        if let ResizeMode::ShorterSideCrop { size } = self.resize {
            let most = MAX_RESIZE_FACTOR * self.input_size[0].max(self.input_size[1]);
            if size == 0 || size > most {
                return field(
                    "resize.size",
                    format!(
                        "must lie in 1..={most} ({MAX_RESIZE_FACTOR} × the larger input side), \
                         got {size}"
                    ),
                );
            }
        }
        Ok(())
    }

    /// A per-channel list: one value (used for every channel) or one per channel, all finite.
    fn check_per_channel(&self, name: &str, values: &[f32]) -> Result<(), String> {
        if values.len() != 1 && values.len() != self.channels {
            return Err(format!(
                "field `{name}`: needs 1 or {} (channels) values, got {}",
                self.channels,
                values.len()
            ));
        }
        match values.iter().find(|v| !v.is_finite()) {
            Some(v) => Err(format!("field `{name}`: values must be finite, got {v}")),
            None => Ok(()),
        }
    }

    /// The card file that sits beside `weights`, if any: `<stem>.json`, `<stem>.toml`,
    /// `<stem>.card.json`, `card.json` or `card.toml` in the same folder.
    pub fn beside(weights: &Path) -> Option<PathBuf> {
        let dir = weights.parent().unwrap_or(Path::new("."));
        let stem = weights.file_stem()?.to_string_lossy().to_string();
        [
            format!("{stem}.card.json"),
            format!("{stem}.card.toml"),
            format!("{stem}.json"),
            format!("{stem}.toml"),
            "card.json".to_string(),
            "card.toml".to_string(),
        ]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file() && p != weights)
    }

    /// Writes the card as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("card serialises")
    }
}

/// Whether a card file is TOML (by extension; anything else is read as JSON).
fn is_toml(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "toml")
}

/// The top-level fields a card file states explicitly (serde fills the others with defaults,
/// and the loaders must know which values are the user's). Empty if the file cannot be read
/// or parsed; [`ModelCard::load`] reports those problems.
pub fn stated_fields(path: &Path) -> Vec<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => stated_fields_in(&text, is_toml(path)),
        Err(_) => Vec::new(),
    }
}

/// [`stated_fields`] of a card's text.
fn stated_fields_in(text: &str, is_toml: bool) -> Vec<String> {
    if is_toml {
        toml::from_str::<toml::Table>(text)
            .map(|t| t.keys().cloned().collect())
            .unwrap_or_default()
    } else {
        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(text)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }
}
