//! What every study reads and where it writes: the models, the data set and which of its images,
//! the methods and their options, the output folder, the shards — one [`StudyInputs`], held by
//! each study's options as `inputs`, so a study's options keep only what is its own.

use std::path::PathBuf;

use super::super::StudyError;
use super::RunFacts;
use super::images::{Selection, SplitChoice, StudyImage, select_images, shard_images};
use super::methods::{StudyMethod, score_all, study_methods};
use super::models::StudyModel;
use super::outputs::create_dir;
use crate::data::shard::ShardSet;
use crate::methods::MethodOptions;

/// The inputs and output every study shares.
#[derive(Clone, Debug)]
pub struct StudyInputs {
    /// Models: weights files, training folders with `ensemble.json` (all members), or `seed-*`
    /// folders.
    pub models: Vec<PathBuf>,
    /// The data set: any source `relevance train` reads — an ImageFolder folder (object masks
    /// `<stem>.mask.png`, marker masks `<stem>.marker.png` beside the images), a CSV list, or a
    /// folder of MNIST-style IDX files.
    pub data: PathBuf,
    /// Which images (default: the test split).
    pub split: SplitChoice,
    /// At most this many images, classes interleaved ([`super::limit_interleaved`]; default:
    /// all of the split).
    pub limit: Option<usize>,
    /// Images per pass (the default depends on the study).
    pub batch: usize,
    /// Methods as `relevance explain` takes them, plus `random` (a control map of uniform
    /// noise); the text typed labels the outputs.
    pub methods: Vec<String>,
    /// Options of the methods (`layer`, `resnet_skip`, …; default: `explain`'s defaults).
    pub method_options: MethodOptions,
    /// Output folder.
    pub out: PathBuf,
    /// The command line, recorded in `summary.json`.
    pub command: Option<Vec<String>>,
    /// Only the images of these shards ([`crate::data::shard`]); `None`: all.
    pub shards: Option<ShardSet>,
}

/// The `note` of [`StudyInputs::select_and_score`] for a study that records nothing about its
/// whole selection.
pub fn nothing_to_note(
    _methods: &[(String, StudyMethod)],
    _images: &[StudyImage],
) -> Result<(), StudyError> {
    Ok(())
}

impl StudyInputs {
    /// Inputs with a study's defaults: the test split, no limit, `batch` images per pass, the
    /// methods `methods`, `explain`'s method options, no command line, every shard.
    pub fn new(
        models: Vec<PathBuf>,
        data: PathBuf,
        out: PathBuf,
        batch: usize,
        methods: &[&str],
    ) -> Self {
        StudyInputs {
            models,
            data,
            split: SplitChoice::Test,
            limit: None,
            batch,
            methods: methods.iter().map(|s| s.to_string()).collect(),
            method_options: MethodOptions::default(),
            out,
            command: None,
            shards: None,
        }
    }

    /// The methods, labelled as typed ([`study_methods`]).
    pub fn study_methods(&self) -> Result<Vec<(String, StudyMethod)>, StudyError> {
        study_methods(&self.methods, &self.method_options)
    }

    /// The images of the split and limit asked for, before sharding, with the split recorded
    /// in `first`'s training record ([`select_images`]).
    pub fn select_images(&self, first: &StudyModel) -> Result<Selection, StudyError> {
        let trained_on = first.trained_on(&self.data);
        select_images(
            &self.data,
            self.split,
            self.limit,
            first.split().as_ref(),
            trained_on,
        )
    }

    /// The images of this run's shards ([`shard_images`]; all when unsharded).
    pub fn shard_images(&self, images: Vec<StudyImage>) -> Result<Vec<StudyImage>, StudyError> {
        shard_images(images, self.shards.as_ref())
    }
}

/// What the select and score phases of a per-image study hand on to its tables and figures.
pub struct ScoredRun<R> {
    /// The methods, labelled as typed.
    pub methods: Vec<(String, StudyMethod)>,
    /// The images of this run (of its shard, when sharded).
    pub images: Vec<StudyImage>,
    /// Every row the score phase produced (read back or computed).
    pub rows: Vec<R>,
    /// Methods, models, how the images were chosen, and the work done.
    pub facts: RunFacts,
}

impl StudyInputs {
    /// Select → score, as `faithfulness`, `stability`, `sanity` and `quality` run them: at least
    /// one model, the methods typed, the images of the first model's split, the output folder
    /// created, then `note(methods, images)` on the whole selection — before this shard's part
    /// is taken, so what a study records about every image (the `source.json` of saved maps) is
    /// the same in every shard and merged folders agree; [`nothing_to_note`] where a study
    /// records nothing — and `score(model, name, method, images, rows)` on this shard's images
    /// for every model × method — models outer, as the resume folders are laid out — returning
    /// `(computed, reused)`, summed into the facts.
    pub fn select_and_score<R>(
        &self,
        models: &[StudyModel],
        mut note: impl FnMut(&[(String, StudyMethod)], &[StudyImage]) -> Result<(), StudyError>,
        mut score: impl FnMut(
            &StudyModel,
            &str,
            &StudyMethod,
            &[StudyImage],
            &mut Vec<R>,
        ) -> Result<(usize, usize), StudyError>,
    ) -> Result<ScoredRun<R>, StudyError> {
        if models.is_empty() {
            return Err(StudyError::Invalid("no models".into()));
        }
        let methods = self.study_methods()?;
        let Selection { images, how } = self.select_images(&models[0])?;
        create_dir(&self.out)?;
        note(&methods, &images)?;
        let images = self.shard_images(images)?;
        let mut rows = Vec::new();
        let (computed, reused) = score_all(models, &methods, |m, name, method| {
            score(m, name, method, &images, &mut rows)
        })?;
        let facts = RunFacts {
            methods: methods.iter().map(|(n, _)| n.clone()).collect(),
            models: models.iter().map(|m| m.label.clone()).collect(),
            split: how,
            images: images.len(),
            computed,
            reused,
        };
        Ok(ScoredRun {
            methods,
            images,
            rows,
            facts,
        })
    }
}
