//! What every study shares, one module per concern:
//!
//! - [`models`]: opening `--models` (files, ensembles, `seed-*` folders) as labelled
//!   [`StudyModel`]s;
//! - [`inputs`]: [`StudyInputs`], what every study reads and where it writes;
//! - [`images`]: the split, the one `--limit` rule ([`limit_interleaved`]: classes
//!   interleaved) and reading images and masks into the model's frame;
//! - [`concepts`]: CRP concepts as study methods (`crp(layer=…,top=k)`, matched by channel);
//! - [`methods`]: building methods from the specs the user typed ([`study_methods`]) and
//!   getting their maps ([`explain_planes`]), the only way a study reaches the methods;
//! - [`outputs`]: CSV / JSON / `summary.json`, resume caches, progress bars;
//! - [`figures`]: plots and pictures with their `figures.json` entries;
//! - [`target`]: the one [`TargetRule`] (predicted or true class) and [`has_class`] (whether a
//!   model gives an image a class, by its head);
//! - [`stop`]: a stop request from the host program (Ctrl-C in Python), checked per chunk.
//!
//! A study's `run` is written as named phases — select → maps → scores → tables → figures →
//! summary — built from these pieces.

pub mod concepts;
pub mod figures;
pub mod images;
pub mod inputs;
pub mod methods;
pub mod models;
pub mod outputs;
pub mod stop;
pub mod target;

pub use figures::{
    Figure, enlarge, figure_stem, overlay_tile, save_picture, save_plot, with_colour_bar,
    write_figures, write_grid,
};
pub use images::{
    Selection, SplitChoice, StudyImage, label_for_model, limit_interleaved, load_batch, load_mask,
    load_planes, model_label, planes_to_input, select_images, shard_images,
};
pub use inputs::{ScoredRun, StudyInputs, nothing_to_note};
pub use methods::{
    BatchMaps, PreparedMethod, RANDOM_METHOD, StudyMethod, explain_planes, explain_planes_grouped,
    method_options_json, predictions, prepare_all, score_all, study_methods,
};
pub use models::{StudyModel, check_same_frame, expand_models, load_models, weights_stamp};
pub use outputs::{
    Summary, Table, create_dir, csv_field, jnum, mean_sd, median, num, per_image_dir,
    prepare_cache, progress_bar, read_previous, resume, write_csv, write_json, write_text,
};
pub use target::{TargetRule, has_class};

/// What a study run covered, handed to its output phases.
pub struct RunFacts {
    /// Method names in order, as typed.
    pub methods: Vec<String>,
    /// Model labels in order.
    pub models: Vec<String>,
    /// How the images were chosen.
    pub split: String,
    /// Number of images.
    pub images: usize,
    /// Image × method × model units computed by this run.
    pub computed: usize,
    /// Units reused from an earlier run.
    pub reused: usize,
}
