//! Batches of model inputs from labelled images: decoded, fitted to the model card (resize,
//! crop, channels), optionally augmented, normalised — in parallel with rayon. Augmentations
//! draw from a stream derived from `(seed, epoch, sample)`, so a batch is the same whatever the
//! thread count.

use rayon::prelude::*;

use super::DataError;
use super::augment::{AugmentSpec, Planes, augment};
use super::folder::Sample;
use super::image::{Image, load_image};
use crate::graph::ModelCard;
use crate::rng::Rng;
use crate::tensor::{T4, from_vec};

/// Where the images of a labelled set come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// Image files with labels (and masks) from an ImageFolder or CSV.
    Files(Vec<Sample>),
    /// Decoded images held in memory (e.g. read from IDX files).
    Memory {
        /// The images.
        images: Vec<Image>,
        /// Their labels.
        labels: Vec<usize>,
    },
}

impl Source {
    /// Number of samples.
    pub fn len(&self) -> usize {
        match self {
            Source::Files(s) => s.len(),
            Source::Memory { images, .. } => images.len(),
        }
    }

    /// True if there are no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Labels in order.
    pub fn labels(&self) -> Vec<usize> {
        match self {
            Source::Files(s) => s.iter().map(|s| s.label).collect(),
            Source::Memory { labels, .. } => labels.clone(),
        }
    }
}

/// Makes input batches from a [`Source`] for one model card.
pub struct BatchLoader {
    source: Source,
    card: ModelCard,
    augment: AugmentSpec,
    labels: Vec<usize>,
    /// Images already fitted to the card's size and channels, when preloaded.
    fitted: Option<Vec<Image>>,
}

/// Preloading stops being worth its memory above this many bytes of fitted images.
const PRELOAD_LIMIT_BYTES: usize = 2 << 30;

impl BatchLoader {
    /// A loader; call [`BatchLoader::preload`] to decode everything once up front.
    pub fn new(source: Source, card: &ModelCard, augment: AugmentSpec) -> Self {
        BatchLoader {
            labels: source.labels(),
            source,
            card: card.clone(),
            augment,
            fitted: None,
        }
    }

    /// Decodes and fits every image once (in parallel) if they fit in memory; later batches
    /// then only augment and normalise. Returns whether it preloaded.
    pub fn preload(&mut self) -> Result<bool, DataError> {
        let [h, w] = self.card.input_size;
        if self.source.len() * h * w * self.card.channels > PRELOAD_LIMIT_BYTES {
            return Ok(false);
        }
        let fitted = (0..self.source.len())
            .into_par_iter()
            .map(|i| self.fitted_image(i))
            .collect::<Result<Vec<_>, _>>()?;
        self.fitted = Some(fitted);
        Ok(true)
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True if there are no samples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Labels in sample order.
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    fn fitted_image(&self, i: usize) -> Result<Image, DataError> {
        if let Some(f) = &self.fitted {
            return Ok(f[i].clone());
        }
        let img = match &self.source {
            Source::Files(s) => load_image(&s[i].path)?,
            Source::Memory { images, .. } => images[i].clone(),
        };
        Ok(img.fit(&self.card))
    }

    /// The normalised `[C, H, W]` values of sample `i`, augmented when `augment_seed` is given.
    fn sample_values(
        &self,
        i: usize,
        augment_seed: Option<(u64, usize)>,
    ) -> Result<Vec<f32>, DataError> {
        let img = self.fitted_image(i)?;
        let affine = self.card.normalization.affine(self.card.channels);
        match augment_seed {
            Some((seed, epoch)) if !self.augment.is_identity() => {
                let mut rng = Rng::derive(seed, &format!("augment/{epoch}/{i}"));
                let augs = self.augment.sample(img.width, img.height, &mut rng);
                let planes = augment(&Planes::from_image(&img), &augs).image;
                let n = planes.width * planes.height;
                Ok(planes
                    .data
                    .iter()
                    .enumerate()
                    .map(|(k, &v)| {
                        let (s, b) = affine[k / n];
                        v * 255.0 * s + b
                    })
                    .collect())
            }
            _ => Ok(img.to_planar(&affine)),
        }
    }

    /// The inputs `[B, C, H, W]` and labels of the samples at `indices`. With
    /// `augment = Some((seed, epoch))` the training augmentations are applied.
    pub fn batch(
        &self,
        indices: &[usize],
        augment: Option<(u64, usize)>,
    ) -> Result<(T4, Vec<usize>), DataError> {
        let [h, w] = self.card.input_size;
        let c = self.card.channels;
        let parts = indices
            .par_iter()
            .map(|&i| self.sample_values(i, augment))
            .collect::<Result<Vec<_>, _>>()?;
        let values: Vec<f32> = parts.concat();
        let labels = indices.iter().map(|&i| self.labels[i]).collect();
        Ok((from_vec(values, [indices.len(), c, h, w]), labels))
    }
}
