//! The training loop: mini-batch gradient descent with burn's autodiff on our graph's
//! training-mode forward pass (batch-statistics BatchNorm with running updates, dropout),
//! class-weighted cross-entropy, a learning-rate schedule, early stopping on validation loss,
//! a checkpoint after every epoch, and a model card with test metrics at the end.
//!
//! **Reproducibility.** Everything random derives from the run's seed through
//! [`Rng`](crate::rng::Rng) streams named by purpose: initial weights (per key), the data order
//! of epoch `e` (`order/e`), the augmentations of sample `i` in epoch `e` (`augment/e/i`) and the
//! dropout masks of step `s` of epoch `e` (`dropout/e/s`). No burn random op is used. So the same
//! seed gives the same weights bit for bit, and a resumed run continues exactly as an
//! uninterrupted one would.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};
use serde::{Deserialize, Serialize};

use super::TrainError;
use super::checkpoint::{
    EpochRecord, LoopState, checkpoint_path, load_checkpoint, save_checkpoint, save_model,
};
use super::eval::{ClassMetrics, class_metrics};
use super::head::{HeadSplit, split_head};
use super::optim::{Optimizer, OptimizerKind, Schedule};
use crate::data::augment::AugmentSpec;
use crate::data::batch::BatchLoader;
use crate::data::folder::SplitSource;
use crate::engine::forward::{Keep, TrainState, run};
use crate::engine::predict;
use crate::graph::import::NamedTensor;
use crate::graph::init::init_params;
use crate::graph::{Graph, Model, ModelCard, Param, ParamStore, zoo};
use crate::rng::Rng;
use crate::tensor::{T4, from_vec, to_vec};

/// Hyper-parameters of a run (everything but the seed and the data).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Built-in architecture.
    pub arch: String,
    /// Maximum number of epochs.
    pub epochs: usize,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Update rule.
    pub optimizer: OptimizerKind,
    /// Base learning rate.
    pub lr: f32,
    /// L2 penalty added to gradients.
    pub weight_decay: f32,
    /// Learning-rate schedule.
    pub schedule: Schedule,
    /// Weight classes by `N / (K·N_c)` in the loss (imbalanced data).
    pub class_weights: bool,
    /// Stop after this many epochs without a better validation loss.
    pub patience: Option<usize>,
    /// Training augmentations.
    pub augment: AugmentSpec,
    /// Train only the classification head (backbone in inference mode).
    pub freeze_backbone: bool,
    /// Stop after this many optimisation steps in total (quick tests); `None` for no limit.
    pub max_steps: Option<usize>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            arch: "small_cnn".into(),
            epochs: 10,
            batch_size: 32,
            optimizer: OptimizerKind::adam(),
            lr: 1e-3,
            weight_decay: 0.0,
            schedule: Schedule::Cosine,
            class_weights: false,
            patience: None,
            augment: AugmentSpec::default(),
            freeze_backbone: false,
            max_steps: None,
        }
    }
}

/// The labelled data of a run, with the card describing its inputs.
pub struct TrainData {
    /// Class names.
    pub classes: Vec<String>,
    /// Training samples.
    pub train: BatchLoader,
    /// Validation samples (may be empty).
    pub val: BatchLoader,
    /// Test samples (may be empty).
    pub test: BatchLoader,
    /// Where the split came from.
    pub split: SplitSource,
    /// Input size, channels, normalisation and resizing of the model to train.
    pub card: ModelCard,
    /// Where the data came from.
    pub source: PathBuf,
}

/// How a run reports progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verbosity {
    /// Nothing.
    Quiet,
    /// One line per epoch.
    Lines,
    /// A progress bar and one line per epoch.
    Bar,
}

/// Options of one run besides the configuration.
pub struct RunOptions<'a> {
    /// Seed of everything random.
    pub seed: u64,
    /// Output folder of this model.
    pub out: &'a Path,
    /// Continue from `out/checkpoint.safetensors` if present.
    pub resume: bool,
    /// Starting weights (state dict), e.g. a pretrained backbone.
    pub pretrained: Option<&'a Path>,
    /// Progress output.
    pub verbosity: Verbosity,
    /// Stop (as if killed) after this many epochs in this call (tests of resuming).
    pub stop_after_epochs: Option<usize>,
}

/// The training record written as `model.train.json`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainRecord {
    /// Record layout (`records::SCHEMA_VERSION` when written now; 0: written before the field).
    #[serde(default, skip_serializing_if = "crate::records::is_unversioned")]
    pub schema_version: u32,
    /// The model card of the trained model.
    pub card: ModelCard,
    /// Seed of the run.
    pub seed: u64,
    /// Hyper-parameters.
    pub config: TrainConfig,
    /// Data source and split.
    pub data: DataRecord,
    /// Starting weights, if any.
    pub pretrained: Option<PathBuf>,
    /// Epoch whose weights were kept (best validation loss, or the last).
    pub kept_epoch: usize,
    /// Whether early stopping ended the run.
    pub stopped_early: bool,
    /// Per-epoch history.
    pub history: Vec<EpochRecord>,
    /// Metrics of the kept weights on each non-empty part.
    pub metrics: std::collections::BTreeMap<String, ClassMetrics>,
    /// Total training seconds (this process, excluding evaluation).
    pub train_seconds: f64,
    /// Parameter counts of the trained model (absent in records written before the field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<crate::graph::ParameterCounts>,
}

/// Data description in a training record.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DataRecord {
    /// Folder, CSV or IDX folder.
    pub source: PathBuf,
    /// Split method.
    pub split: SplitSource,
    /// Samples in train / val / test.
    pub sizes: [usize; 3],
}

/// What a finished run returns.
pub struct TrainOutcome {
    /// The trained model (kept weights).
    pub model: Model,
    /// The record also written to disk.
    pub record: TrainRecord,
    /// `out/model.safetensors`.
    pub weights: PathBuf,
}

/// Class weights `N / (K·N_c)` (scikit-learn's "balanced"), 1 for absent classes.
pub fn balanced_class_weights(labels: &[usize], classes: usize) -> Vec<f32> {
    let mut counts = vec![0usize; classes];
    for &l in labels {
        counts[l] += 1;
    }
    counts
        .iter()
        .map(|&c| {
            if c == 0 {
                1.0
            } else {
                labels.len() as f32 / (classes * c) as f32
            }
        })
        .collect()
}

/// Weighted cross-entropy of `logits [B, K]` as `torch.nn.functional.cross_entropy` with
/// `weight`: `Σᵢ w_{yᵢ}·(−log softmax(zᵢ)_{yᵢ}) / Σᵢ w_{yᵢ}`.
pub fn cross_entropy(logits: Tensor<2>, labels: &[usize], weights: &[f32]) -> Tensor<1> {
    let [b, k] = logits.dims();
    let total: f32 = labels.iter().map(|&y| weights[y]).sum();
    let mut pick = vec![0f32; b * k];
    for (i, &y) in labels.iter().enumerate() {
        pick[i * k + y] = weights[y] / total;
    }
    let pick = from_vec(pick, [b, k]).to_device(&logits.device());
    log_softmax(logits, 1).mul(pick).sum().neg()
}

/// Loads a state dict into `params` where keys and shapes match; the classification head may
/// differ (another class count) and then keeps its fresh values. Anything else is an error.
fn apply_pretrained(
    path: &Path,
    graph: &Graph,
    params: &mut ParamStore,
) -> Result<Vec<String>, TrainError> {
    let tensors = crate::graph::import::read_state_dict(path)?;
    let head = split_head(graph)?.head_params;
    let mut kept_fresh = Vec::new();
    let mut loaded = 0;
    for t in tensors {
        let key = t.key.strip_prefix("module.").unwrap_or(&t.key).to_string();
        if key.ends_with("num_batches_tracked") {
            continue;
        }
        let Some(spec) = graph.spec(&key) else {
            return Err(TrainError::file(
                path,
                format!("key '{key}' is not a parameter of this architecture"),
            ));
        };
        if spec.shape != t.shape {
            if head.contains(&key) {
                kept_fresh.push(key);
                continue;
            }
            return Err(TrainError::file(
                path,
                format!(
                    "'{key}' has shape {:?}, the architecture needs {:?}",
                    t.shape, spec.shape
                ),
            ));
        }
        params.insert_values(key, t.values, t.shape)?;
        loaded += 1;
    }
    let missing: Vec<&str> = graph
        .param_specs
        .iter()
        .map(|s| s.key.as_str())
        .filter(|k| !head.iter().any(|h| h == k))
        .filter(|k| params.get(k).is_err())
        .collect();
    if loaded == 0 || !missing.is_empty() {
        return Err(TrainError::file(
            path,
            format!(
                "does not hold this architecture's backbone (loaded {loaded} tensors; missing e.g. {:?})",
                missing.first()
            ),
        ));
    }
    Ok(kept_fresh)
}

/// One optimisation step's inputs besides the batch: what takes gradients and how the forward
/// pass runs (whole graph in training mode, or frozen backbone + training head).
pub struct StepPlan {
    graph: Graph,
    /// `Some` with a frozen backbone.
    split: Option<HeadSplit>,
    /// Keys updated by the optimiser.
    pub trainable: Vec<String>,
}

/// What a step reports.
pub struct StepResult {
    /// The (weighted) mean loss of the batch before the update.
    pub loss: f32,
    /// Arg-max predictions of the training-mode forward pass.
    pub predictions: Vec<usize>,
}

impl StepPlan {
    /// A plan for `graph`; with `freeze_backbone` only the head (see [`split_head`]) trains.
    pub fn new(graph: &Graph, freeze_backbone: bool) -> Result<Self, TrainError> {
        let split = if freeze_backbone {
            Some(split_head(graph)?)
        } else {
            None
        };
        let trainable = graph
            .param_specs
            .iter()
            .filter(|s| s.trainable)
            .filter(|s| {
                split
                    .as_ref()
                    .is_none_or(|sp| sp.head_params.contains(&s.key))
            })
            .map(|s| s.key.clone())
            .collect();
        Ok(StepPlan {
            graph: graph.clone(),
            split,
            trainable,
        })
    }

    /// One step: training-mode forward pass with gradients on the trainable parameters,
    /// weighted cross-entropy, backward pass, optimiser update at rate `lr`, and BatchNorm
    /// running statistics written back into `params`.
    #[allow(clippy::too_many_arguments)]
    pub fn step(
        &self,
        params: &mut ParamStore,
        opt: &mut Optimizer,
        x: T4,
        labels: &[usize],
        class_weights: &[f32],
        lr: f32,
        dropout_seed: u64,
    ) -> Result<StepResult, TrainError> {
        let mut tracked = params.clone();
        for (key, p) in tracked.iter_mut() {
            if self.trainable.contains(key) {
                p.data = p.data.clone().autodiff().require_grad();
            }
        }
        let mut state = TrainState::new(dropout_seed);
        let (graph, input) = match &self.split {
            None => (&self.graph, x),
            Some(s) => (&s.head, predict(&s.backbone, params, x)?),
        };
        let mut acts = run(graph, &tracked, input, Keep::Output, Some(&mut state))?;
        let out = acts.values[graph.logits()].take().expect("logits are kept");
        let [b, k, _, _] = out.dims();
        let logits = out.reshape([b, k]);
        let predictions: Vec<usize> = to_vec(&logits.clone().without_autodiff().argmax(1).float())
            .iter()
            .map(|&p| p as usize)
            .collect();
        let loss = cross_entropy(logits, labels, class_weights);
        let loss_value = to_vec(&loss)[0];
        if !loss_value.is_finite() {
            return Err(TrainError::Invalid(format!(
                "loss became {loss_value}; lower --lr"
            )));
        }
        let grads = loss.backward();
        for key in &self.trainable {
            let Some(g) = tracked.get(key)?.data.grad(&grads) else {
                continue;
            };
            let p = params.get(key)?;
            let shape = p.shape.clone();
            let new = opt.step(key, p.data.clone(), g, lr);
            params.insert(key.clone(), Param { shape, data: new });
        }
        for (key, value) in state.running_updates {
            let shape = params.get(&key)?.shape.clone();
            params.insert(
                key,
                Param {
                    shape,
                    data: value.without_autodiff(),
                },
            );
        }
        Ok(StepResult {
            loss: loss_value,
            predictions,
        })
    }
}

/// Inference-mode class probabilities of every sample of `loader`, in order.
pub fn predict_probs(
    graph: &Graph,
    params: &ParamStore,
    loader: &BatchLoader,
    batch_size: usize,
) -> Result<Vec<Vec<f32>>, TrainError> {
    let mut g = graph.clone();
    g.output = graph.logits();
    let idx: Vec<usize> = (0..loader.len()).collect();
    let mut out = Vec::with_capacity(loader.len());
    for chunk in idx.chunks(batch_size.max(1)) {
        let (x, _) = loader.batch(chunk, None)?;
        let logits = predict(&g, params, x)?;
        let [b, k, _, _] = logits.dims();
        let p = to_vec(&softmax(logits.reshape([b, k]), 1));
        out.extend(p.chunks(k).map(|c| c.to_vec()));
    }
    Ok(out)
}

/// Metrics of the model on a loader (`None` when it is empty).
pub fn evaluate(
    graph: &Graph,
    params: &ParamStore,
    loader: &BatchLoader,
    classes: usize,
    batch_size: usize,
) -> Result<Option<ClassMetrics>, TrainError> {
    if loader.is_empty() {
        return Ok(None);
    }
    let probs = predict_probs(graph, params, loader, batch_size)?;
    Ok(Some(class_metrics(&probs, loader.labels(), classes)))
}

fn progress_bar(
    verbosity: Verbosity,
    len: usize,
    epoch: usize,
    epochs: usize,
) -> indicatif::ProgressBar {
    if verbosity != Verbosity::Bar {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "epoch {prefix} [{bar:30}] {pos}/{len} batches  {msg}  ({elapsed}<{eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(format!("{}/{}", epoch + 1, epochs));
    bar
}

/// Trains one model with `cfg` on `data`, writing into `opts.out`.
///
/// Steps: check the inputs, build the model, start afresh or resume from the checkpoint, run
/// the remaining epochs (a checkpoint after each), then evaluate the kept weights and write
/// `model.train.json`.
pub fn train_model(
    data: &TrainData,
    cfg: &TrainConfig,
    opts: &RunOptions,
) -> Result<TrainOutcome, TrainError> {
    check_inputs(data, cfg)?;
    let run = TrainRun::new(data, cfg, opts)?;
    let mut progress = run.start()?;
    run.run_epochs(&mut progress)?;
    run.finish(progress)
}

/// Rejects data and settings the loop cannot train with.
fn check_inputs(data: &TrainData, cfg: &TrainConfig) -> Result<(), TrainError> {
    if data.train.len() < 2 {
        return Err(TrainError::Invalid(
            "need at least two training images".into(),
        ));
    }
    if cfg.batch_size < 2 {
        return Err(TrainError::Invalid(
            "--batch-size must be at least 2 (BatchNorm needs batch statistics)".into(),
        ));
    }
    Ok(())
}

/// What stays fixed during one call of [`train_model`]: its inputs, the model and its step
/// plan.
struct TrainRun<'a> {
    data: &'a TrainData,
    cfg: &'a TrainConfig,
    opts: &'a RunOptions<'a>,
    card: ModelCard,
    graph: Graph,
    plan: StepPlan,
    /// Identifies settings, seed and data; a checkpoint is only resumed when it matches.
    fingerprint: String,
    /// Loss weight of each class (all 1 without `class_weights`).
    class_weights: Vec<f32>,
    /// Training batch size (at most the number of training images).
    batch_size: usize,
}

/// What changes while training: the weights, the optimiser and the loop state (all saved in
/// the checkpoint) plus counters.
struct Progress {
    params: ParamStore,
    /// Weights of the best epoch so far (the ones kept at the end).
    best: ParamStore,
    opt: Optimizer,
    state: LoopState,
    /// Optimiser steps over all calls (for `max_steps`).
    steps_total: usize,
    /// Seconds spent in training passes in this call.
    train_seconds: f64,
}

/// Sums over the batches of one training pass.
struct PassStats {
    loss_sum: f64,
    correct: usize,
    seen: usize,
}

impl<'a> TrainRun<'a> {
    /// Builds the model card and graph for `data`'s classes and the step plan.
    fn new(
        data: &'a TrainData,
        cfg: &'a TrainConfig,
        opts: &'a RunOptions<'a>,
    ) -> Result<Self, TrainError> {
        let k = data.classes.len();
        let card = ModelCard {
            arch: Some(cfg.arch.clone()),
            classes: data.classes.clone(),
            num_classes: k,
            ..data.card.clone()
        };
        card.validate().map_err(TrainError::Invalid)?;
        let graph = zoo::build(&cfg.arch, k, card.channels)?;
        let plan = StepPlan::new(&graph, cfg.freeze_backbone)?;
        let fingerprint = serde_json::to_string(&(cfg, opts.seed, &card, data.train.len()))
            .expect("config serialises");
        let class_weights = if cfg.class_weights {
            balanced_class_weights(data.train.labels(), k)
        } else {
            vec![1.0; k]
        };
        Ok(TrainRun {
            data,
            cfg,
            opts,
            card,
            graph,
            plan,
            fingerprint,
            class_weights,
            batch_size: cfg.batch_size.min(data.train.len()),
        })
    }

    /// Number of classes.
    fn classes(&self) -> usize {
        self.data.classes.len()
    }

    /// Whether notes and epoch lines go to stderr (not `Verbosity::Quiet`).
    fn verbose(&self) -> bool {
        self.opts.verbosity != Verbosity::Quiet
    }

    /// The state before the first epoch of this call: fresh (initial or pretrained weights),
    /// or the checkpoint's with `opts.resume` when one exists. Creates the output folder.
    fn start(&self) -> Result<Progress, TrainError> {
        let params = self.initial_params()?;
        let opt = Optimizer::new(self.cfg.optimizer, self.cfg.weight_decay);
        let mut progress = Progress {
            best: params.clone(),
            params,
            opt,
            state: LoopState {
                epochs_done: 0,
                best_val_loss: None,
                best_epoch: None,
                bad_epochs: 0,
                stopped_early: false,
                history: Vec::new(),
                config: self.fingerprint.clone(),
            },
            steps_total: 0,
            train_seconds: 0.0,
        };
        let out = self.opts.out;
        std::fs::create_dir_all(out).map_err(|e| TrainError::file(out, e.to_string()))?;
        if self.opts.resume && checkpoint_path(out).is_file() {
            self.resume(&mut progress)?;
        }
        // Steps of the epochs already done count towards `max_steps`.
        progress.steps_total =
            progress.state.history.len() * self.data.train.len().div_ceil(self.batch_size);
        Ok(progress)
    }

    /// Seeded initial weights, overlaid with `opts.pretrained` when given.
    fn initial_params(&self) -> Result<ParamStore, TrainError> {
        let mut params = init_params(&self.graph, self.opts.seed)?;
        if let Some(p) = self.opts.pretrained {
            let fresh = apply_pretrained(p, &self.graph, &mut params)?;
            if !fresh.is_empty() && self.verbose() {
                eprintln!(
                    "note: {} has another head shape; training a fresh head ({})",
                    p.display(),
                    fresh.join(", ")
                );
            }
        }
        Ok(params)
    }

    /// Replaces `progress` by the checkpoint in `opts.out`, which must have been written
    /// with the same settings, seed and data.
    fn resume(&self, progress: &mut Progress) -> Result<(), TrainError> {
        let out = self.opts.out;
        let ck = load_checkpoint(out)?;
        if ck.state.config != self.fingerprint {
            return Err(TrainError::file(
                &checkpoint_path(out),
                "was written with other settings, seed or data; start afresh without --resume or use another --out",
            ));
        }
        progress.params = ck.params;
        progress.best = ck.best;
        progress
            .opt
            .load_state(ck.optimizer)
            .map_err(|e| TrainError::file(&checkpoint_path(out), e))?;
        progress.state = ck.state;
        if self.verbose() {
            eprintln!(
                "resuming {} after epoch {}",
                out.display(),
                progress.state.epochs_done
            );
        }
        Ok(())
    }

    /// Runs epochs until all are done or early stopping ends the run. With
    /// `opts.stop_after_epochs`, stops (as if killed) after that many epochs of this call.
    fn run_epochs(&self, progress: &mut Progress) -> Result<(), TrainError> {
        let mut epochs_this_call = 0;
        while progress.state.epochs_done < self.cfg.epochs && !progress.state.stopped_early {
            if self
                .opts
                .stop_after_epochs
                .is_some_and(|s| epochs_this_call >= s)
            {
                return Err(TrainError::Interrupted(progress.state.epochs_done));
            }
            self.run_epoch(progress)?;
            epochs_this_call += 1;
        }
        Ok(())
    }

    /// One epoch: a training pass in this epoch's seeded order, a validation pass, then the
    /// early-stopping bookkeeping and a checkpoint.
    fn run_epoch(&self, progress: &mut Progress) -> Result<(), TrainError> {
        let (cfg, opts) = (self.cfg, self.opts);
        let epoch = progress.state.epochs_done;
        let lr = cfg.schedule.lr(cfg.lr, epoch, cfg.epochs);
        let mut order: Vec<usize> = (0..self.data.train.len()).collect();
        Rng::derive(opts.seed, &format!("order/{epoch}")).shuffle(&mut order);
        let batches = epoch_batches(&order, self.batch_size);
        let bar = progress_bar(opts.verbosity, batches.len(), epoch, cfg.epochs);
        let started = Instant::now();
        let pass = self.train_pass(progress, epoch, lr, &batches, &bar)?;
        bar.finish_and_clear();
        let seconds = started.elapsed().as_secs_f64();
        progress.train_seconds += seconds;
        let val = evaluate(
            &self.graph,
            &progress.params,
            &self.data.val,
            self.classes(),
            self.batch_size.max(64),
        )?;
        let record = EpochRecord {
            epoch,
            lr,
            train_loss: pass.loss_sum / pass.seen.max(1) as f64,
            train_accuracy: pass.correct as f64 / pass.seen.max(1) as f64,
            val_loss: val.as_ref().map(|m| m.loss),
            val_accuracy: val.as_ref().map(|m| m.accuracy),
            seconds,
            images_per_second: pass.seen as f64 / seconds.max(1e-9),
        };
        self.end_epoch(progress, record)
    }

    /// One optimiser step per batch (none once `max_steps` is reached), with the batch's
    /// seeded augmentations and dropout masks.
    fn train_pass(
        &self,
        progress: &mut Progress,
        epoch: usize,
        lr: f32,
        batches: &[&[usize]],
        bar: &indicatif::ProgressBar,
    ) -> Result<PassStats, TrainError> {
        let seed = self.opts.seed;
        let mut stats = PassStats {
            loss_sum: 0.0,
            correct: 0,
            seen: 0,
        };
        for (step, batch) in batches.iter().enumerate() {
            if self
                .cfg
                .max_steps
                .is_some_and(|m| progress.steps_total >= m)
            {
                break;
            }
            let (x, labels) = self.data.train.batch(batch, Some((seed, epoch)))?;
            let dropout_seed = Rng::derive(seed, &format!("dropout/{epoch}/{step}")).next_u64();
            let r = self
                .plan
                .step(
                    &mut progress.params,
                    &mut progress.opt,
                    x,
                    &labels,
                    &self.class_weights,
                    lr,
                    dropout_seed,
                )
                .map_err(|e| match e {
                    TrainError::Invalid(m) => {
                        TrainError::Invalid(format!("epoch {} step {step}: {m}", epoch + 1))
                    }
                    e => e,
                })?;
            stats.correct += r
                .predictions
                .iter()
                .zip(&labels)
                .filter(|(p, y)| p == y)
                .count();
            stats.loss_sum += r.loss as f64 * labels.len() as f64;
            stats.seen += labels.len();
            progress.steps_total += 1;
            bar.inc(1);
            bar.set_message(format!("loss {:.4}", stats.loss_sum / stats.seen as f64));
        }
        Ok(stats)
    }

    /// Records the finished epoch: prints its line, keeps the weights when validation
    /// improved, decides on early stopping and writes the checkpoint.
    fn end_epoch(&self, progress: &mut Progress, record: EpochRecord) -> Result<(), TrainError> {
        let cfg = self.cfg;
        let epoch = record.epoch;
        if self.verbose() {
            eprintln!("{}", epoch_line(&record, cfg.epochs));
        }
        let val_loss = record.val_loss;
        let state = &mut progress.state;
        state.history.push(record);
        state.epochs_done += 1;
        if track_validation(state, epoch, val_loss, cfg.patience) {
            progress.best = progress.params.clone();
        }
        if state.stopped_early && self.verbose() {
            eprintln!(
                "early stop: validation loss has not improved for {} epochs",
                state.bad_epochs
            );
        }
        // Reaching `max_steps` ends the run as if all epochs were done.
        if cfg.max_steps.is_some_and(|m| progress.steps_total >= m) {
            state.epochs_done = cfg.epochs;
        }
        save_checkpoint(
            self.opts.out,
            &progress.params,
            &progress.best,
            &progress.opt,
            state,
        )
    }

    /// Evaluates the kept (best) weights on every split, saves the model and writes
    /// `model.train.json`.
    fn finish(self, progress: Progress) -> Result<TrainOutcome, TrainError> {
        let (data, opts) = (self.data, self.opts);
        let state = progress.state;
        let kept_epoch = state
            .best_epoch
            .unwrap_or(state.history.len().saturating_sub(1));
        let metrics = self.final_metrics(&progress.best)?;
        let weights_path = save_model(opts.out, &progress.best, &self.card)?;
        let model = Model {
            graph: self.graph,
            params: progress.best,
            card: self.card,
            source: weights_path.clone(),
        };
        let record = TrainRecord {
            schema_version: crate::records::SCHEMA_VERSION,
            card: model.card.clone(),
            seed: opts.seed,
            config: self.cfg.clone(),
            data: DataRecord {
                source: data.source.clone(),
                split: data.split.clone(),
                sizes: [data.train.len(), data.val.len(), data.test.len()],
            },
            pretrained: opts.pretrained.map(Path::to_path_buf),
            kept_epoch,
            stopped_early: state.stopped_early,
            history: state.history.clone(),
            metrics,
            train_seconds: progress.train_seconds,
            parameters: Some(model.parameter_counts()),
        };
        let rec_path = opts.out.join("model.train.json");
        crate::records::write_record(&rec_path, &record)
            .map_err(|e| TrainError::file(&rec_path, e.message))?;
        Ok(TrainOutcome {
            model,
            record,
            weights: weights_path,
        })
    }

    /// Metrics of `params` on the train, val and test splits (empty splits left out).
    fn final_metrics(
        &self,
        params: &ParamStore,
    ) -> Result<std::collections::BTreeMap<String, ClassMetrics>, TrainError> {
        let mut metrics = std::collections::BTreeMap::new();
        for (name, loader) in [
            ("train", &self.data.train),
            ("val", &self.data.val),
            ("test", &self.data.test),
        ] {
            if let Some(m) = evaluate(&self.graph, params, loader, self.classes(), 64)? {
                metrics.insert(name.to_string(), m);
            }
        }
        Ok(metrics)
    }
}

/// Splits the epoch's `order` into batches of `batch_size`. A last batch of one image has no
/// batch statistics (BatchNorm), so it is folded into the previous one.
fn epoch_batches(order: &[usize], batch_size: usize) -> Vec<&[usize]> {
    let n = order.len();
    let mut batches: Vec<&[usize]> = order.chunks(batch_size).collect();
    if batches.len() > 1 && batches.last().is_some_and(|b| b.len() < 2) {
        let last = batches.pop().unwrap().len();
        let prev = batches.pop().unwrap().len();
        let start = n - last - prev;
        batches.push(&order[start..]);
    }
    batches
}

/// Early-stopping bookkeeping after `epoch`: returns whether these weights are the new best
/// (lowest validation loss; without validation data every epoch is). Sets `stopped_early` once
/// `patience` epochs in a row did not improve on the best.
pub fn track_validation(
    state: &mut LoopState,
    epoch: usize,
    val_loss: Option<f64>,
    patience: Option<usize>,
) -> bool {
    let improved = match val_loss {
        Some(vl) if state.best_val_loss.is_none_or(|b| vl < b) => {
            state.best_val_loss = Some(vl);
            state.best_epoch = Some(epoch);
            state.bad_epochs = 0;
            true
        }
        Some(_) => {
            state.bad_epochs += 1;
            false
        }
        None => true,
    };
    if patience.is_some_and(|p| p > 0 && state.bad_epochs >= p) {
        state.stopped_early = true;
    }
    improved
}

/// The per-epoch summary line.
pub fn epoch_line(r: &EpochRecord, epochs: usize) -> String {
    let val = match (r.val_loss, r.val_accuracy) {
        (Some(l), Some(a)) => format!("  val loss {l:.4} acc {a:.3}"),
        _ => String::new(),
    };
    format!(
        "epoch {}/{}  train loss {:.4} acc {:.3}{val}  lr {:.2e}  {:.1} s ({:.0} img/s)",
        r.epoch + 1,
        epochs,
        r.train_loss,
        r.train_accuracy,
        r.lr,
        r.seconds,
        r.images_per_second
    )
}

/// Named tensors of a parameter store (for comparisons in tests and tools).
pub fn named(params: &ParamStore) -> Vec<NamedTensor> {
    super::checkpoint::params_to_tensors(params, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_stopping_keeps_the_best_epoch_and_stops_after_patience() {
        let mut state = LoopState {
            epochs_done: 0,
            best_val_loss: None,
            best_epoch: None,
            bad_epochs: 0,
            stopped_early: false,
            history: Vec::new(),
            config: String::new(),
        };
        let losses = [1.0, 0.8, 0.9, 0.85, 0.7];
        let mut kept = Vec::new();
        for (e, l) in losses.iter().enumerate() {
            kept.push(track_validation(&mut state, e, Some(*l), Some(2)));
            if state.stopped_early {
                break;
            }
        }
        // 0.9 and 0.85 do not beat 0.8: two bad epochs → stop after epoch 3, keep epoch 1.
        assert_eq!(kept, vec![true, true, false, false]);
        assert_eq!(state.best_epoch, Some(1));
        assert!(state.stopped_early);
    }

    #[test]
    fn balanced_weights_follow_n_over_k_nc() {
        // 6 of class 0, 2 of class 1: 8/(2·6) and 8/(2·2)
        let w = balanced_class_weights(&[0, 0, 0, 0, 0, 0, 1, 1], 2);
        assert!((w[0] - 8.0 / 12.0).abs() < 1e-6 && (w[1] - 2.0).abs() < 1e-6);
    }
}
