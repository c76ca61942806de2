//! `relevance.Model`: a loaded model and the methods prepared for it, explaining NumPy batches
//! through the same [`relevance::explain::explain_batch`] as `relevance explain`.

use std::collections::HashMap;

use anyhow::Context;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use numpy::PyArrayDyn;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use relevance::explain::{IMAGES_PER_PASS, explain_batch};
use relevance::methods::MapKind;
use relevance::tensor::to_vec;
use relevance::{LoadOptions, MethodSpec, Model, Prepared, T4, Target};

use crate::arrays::{batch, to_numpy};
use crate::concepts::{ConceptsCall, LrpCache};
use crate::errors::{MethodError, to_py};

/// What [`PyModel::run`] returns: the maps row after row, and logits and probabilities per input.
type RunOutput = (Vec<f32>, Vec<Vec<f32>>, Vec<Vec<f32>>);

/// A method prepared for a model, kept with the model it borrows.
struct PreparedMethod {
    // Declared first so it is dropped before the model it points into.
    prepared: Prepared<'static>,
    _model: Arc<Model>,
}

impl PreparedMethod {
    fn new(model: &Arc<Model>, spec: &MethodSpec) -> anyhow::Result<Self> {
        // SAFETY: the model lives on the heap behind an `Arc` that this struct holds, so the
        // reference stays valid (and unmoved) for as long as `prepared` exists; `prepared` is
        // dropped first (field order) and never handed out with the `'static` lifetime.
        let model_ref: &'static Model = unsafe { &*Arc::as_ptr(model) };
        Ok(PreparedMethod {
            // The command line's context, so messages match its `error:` line.
            prepared: spec
                .prepare(model_ref)
                .with_context(|| format!("method {spec}"))?,
            _model: Arc::clone(model),
        })
    }
}

/// A model loaded by the engine (ONNX, `.safetensors`, `.pth` or a zoo architecture), with the
/// methods prepared for it cached by spec and options. Safe to share between threads.
#[pyclass(frozen, name = "Model", module = "relevance")]
pub struct PyModel {
    model: Arc<Model>,
    methods: Mutex<HashMap<String, Arc<PreparedMethod>>>,
    lrp: LrpCache,
}

impl PyModel {
    pub fn new(model: Model) -> Self {
        PyModel {
            model: Arc::new(model),
            methods: Mutex::new(HashMap::new()),
            lrp: LrpCache::default(),
        }
    }

    /// The LRP models bound for `concepts`.
    pub fn lrp_cache(&self) -> &LrpCache {
        &self.lrp
    }

    /// The engine's model.
    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The predicted class of every row of `x`.
    pub fn predicted(&self, py: Python<'_>, x: &T4) -> PyResult<Vec<usize>> {
        let (_, logits, _) = self.run(py, x, &[], &Target::Predicted, true)?;
        let flat: Vec<f32> = logits.concat();
        let k = logits.first().map_or(1, Vec::len);
        Ok(relevance::methods::target::argmax_rows(&flat, k))
    }

    /// The method `text` with option flags `flags`, prepared once per model.
    fn method(&self, text: &str, flags: &[(String, String)]) -> PyResult<Arc<PreparedMethod>> {
        let key = format!("{text}\u{0}{flags:?}");
        if let Some(m) = self.methods.lock().expect("method cache").get(&key) {
            return Ok(Arc::clone(m));
        }
        // Option errors are the command line's flag errors: method errors here.
        let options = relevance::cli::method_options_from_flags(flags)
            .map_err(|e| MethodError::new_err(format!("{e:#}")))?;
        let spec = MethodSpec::parse(text, &options).map_err(|e| to_py(e.into()))?;
        let prepared = Arc::new(PreparedMethod::new(&self.model, &spec).map_err(to_py)?);
        for warning in prepared.prepared.warnings() {
            eprintln!("warning: {warning}");
        }
        let mut cache = self.methods.lock().expect("method cache");
        Ok(Arc::clone(cache.entry(key).or_insert(prepared)))
    }

    /// Runs the batch `x` in chunks of [`IMAGES_PER_PASS`] inputs (as `relevance explain` does,
    /// so maps match its files bit for bit), without the GIL, checking for Ctrl-C between chunks.
    /// Returns the maps row after row and the logits and probabilities per input.
    fn run(
        &self,
        py: Python<'_>,
        x: &T4,
        methods: &[Prepared],
        target: &Target,
        want_predictions: bool,
    ) -> PyResult<RunOutput> {
        let n = x.dims()[0];
        let (mut maps, mut logits, mut probs) = (Vec::new(), Vec::new(), Vec::new());
        for start in (0..n).step_by(IMAGES_PER_PASS) {
            py.check_signals()?;
            let chunk = x.clone().narrow(0, start, IMAGES_PER_PASS.min(n - start));
            let predictions = py
                .detach(|| {
                    explain_batch(
                        &self.model,
                        methods,
                        &chunk,
                        target,
                        want_predictions,
                        |_, pass| {
                            for e in &pass.explanations {
                                maps.extend(to_vec(&e.maps));
                            }
                            Ok(())
                        },
                    )
                })
                .map_err(to_py)?;
            logits.extend(predictions.logits);
            probs.extend(predictions.probs);
        }
        Ok((maps, logits, probs))
    }
}

/// Extra concepts: a list whose items are a channel or a list of channels.
fn channel_sets(sets: &Bound<'_, PyAny>) -> PyResult<Vec<Vec<usize>>> {
    let wrong =
        || MethodError::new_err("concepts must be a list of channels or of lists of channels");
    let mut out = Vec::new();
    for item in sets.try_iter().map_err(|_| wrong())? {
        let item = item?;
        match item.extract::<usize>() {
            Ok(one) => out.push(vec![one]),
            Err(_) => out.push(item.extract::<Vec<usize>>().map_err(|_| wrong())?),
        }
    }
    Ok(out)
}

/// `target` as text (`"pred"`, `"all"`, a class name, `"neg:<class>"`) or a class index.
fn parse_target(target: &Bound<'_, PyAny>) -> PyResult<Target> {
    if let Ok(i) = target.extract::<usize>() {
        return Ok(Target::Index(i));
    }
    let text: String = target.extract().map_err(|_| {
        MethodError::new_err("target must be \"pred\", \"all\", a class index or a class name")
    })?;
    text.parse::<Target>().map_err(|e| to_py(e.into()))
}

/// Keyword options as the command line's flags: `steps=32` is `--steps 32`.
pub fn flags_of(options: Option<&Bound<'_, PyDict>>) -> PyResult<Vec<(String, String)>> {
    let Some(options) = options else {
        return Ok(Vec::new());
    };
    options
        .iter()
        .filter(|(_, v)| !v.is_none())
        .map(|(k, v)| {
            let value = if v.is_instance_of::<PyString>() {
                v.extract::<String>()?
            } else {
                v.str()?.to_string()
            };
            Ok((k.extract::<String>()?, value))
        })
        .collect()
}

#[pymethods]
impl PyModel {
    /// Class probabilities `[N, K]` (the card's head: softmax, or the sigmoid of a binary
    /// logit) of a batch (see `explain` for `x`).
    fn predict<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let x = batch(py, x, &self.model.card)?;
        let (_, _, probs) = self.run(py, &x, &[], &Target::Predicted, true)?;
        let k = probs.first().map_or(0, Vec::len);
        to_numpy(py, probs.concat(), &[x.dims()[0], k])
    }

    /// Logits `[N, K]` of a batch.
    fn logits<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let x = batch(py, x, &self.model.card)?;
        let (_, logits, _) = self.run(py, &x, &[], &Target::Predicted, true)?;
        let k = logits.first().map_or(0, Vec::len);
        to_numpy(py, logits.concat(), &[x.dims()[0], k])
    }

    /// Explains `x` with `method` (a spec as `relevance explain --method` takes it) for
    /// `target`; `options` are the command's method flags (`layer`, `steps`, `resnet_skip`, …).
    /// Maps are `[N, C, H, W]` (input-space methods) or `[N, H, W]` (CAMs), with a class axis
    /// after `N` for `target="all"`.
    #[pyo3(signature = (x, method, target = None, **options))]
    fn explain<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        method: &str,
        target: Option<&Bound<'py, PyAny>>,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
        let target = match target {
            Some(t) => parse_target(t)?,
            None => Target::Predicted,
        };
        let flags = flags_of(options)?;
        let method = py.detach(|| self.method(method, &flags))?;
        let x = batch(py, x, &self.model.card)?;
        let methods = std::slice::from_ref(&method.prepared);
        let (maps, _, _) = self.run(py, &x, methods, &target, false)?;
        let [n, c, h, w] = x.dims();
        let mut shape = vec![n];
        if target == Target::All {
            shape.push(self.model.card.num_classes);
        }
        match method.prepared.kind() {
            MapKind::Input => shape.extend([c, h, w]),
            MapKind::Cam => shape.extend([h, w]),
        }
        to_numpy(py, maps, &shape)
    }

    /// Concept Relevance Propagation (Achtibat et al. 2023; zennit-crp 0.6) at `layer`, as
    /// `relevance concepts` computes it for each input: the relevance `R_c` of every channel of
    /// the layer (LRP with `composite`, summed over positions), the `top` channels by `R_c`
    /// with their shares `R_c / (Σ|R| + 1e-10)`, and a conditional heatmap (the layer's
    /// relevance masked to the channel set, propagated to the input, summed over channels) for
    /// each top channel and each extra set in `concepts`.
    #[pyo3(signature = (x, layer, top = 5, concepts = None, composite = "epsilon-plus-flat",
        resnet_skip = "zennit", start = "logit", target = None, batch = 32))]
    #[allow(clippy::too_many_arguments)]
    fn concepts<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        layer: &str,
        top: usize,
        concepts: Option<&Bound<'py, PyAny>>,
        composite: &str,
        resnet_skip: &str,
        start: &str,
        target: Option<&Bound<'py, PyAny>>,
        batch: usize,
    ) -> PyResult<Bound<'py, PyDict>> {
        let call = ConceptsCall {
            layer,
            top,
            concepts: match concepts {
                Some(sets) => channel_sets(sets)?,
                None => Vec::new(),
            },
            composite,
            resnet_skip,
            start,
            target: target.map(|t| t.str().map(|s| s.to_string())).transpose()?,
            batch,
        };
        let x = crate::arrays::batch(py, x, &self.model.card)?;
        crate::concepts::concepts(py, self, &x, &call)
    }

    /// The preprocessed input `x` (`[N, C, H, W]`) as the model saw it, as 8-bit RGB pictures
    /// `[N, H, W, 3]` (the card's normalisation inverted), for drawing maps over.
    fn input_images<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArrayDyn<u8>>> {
        let x = batch(py, x, &self.model.card)?;
        let [n, c, h, w] = x.dims();
        let values = to_vec(&x);
        let mut out = Vec::with_capacity(n * h * w * 3);
        for row in values.chunks(c * h * w) {
            let picture = relevance::report::heatmap::input_image(
                row,
                c,
                h as u32,
                w as u32,
                &self.model.card,
            );
            out.extend(picture.into_raw());
        }
        to_numpy(py, out, &[n, h, w, 3])
    }

    /// Class names from the card (empty when it names none).
    #[getter]
    fn classes(&self) -> Vec<String> {
        (0..self.model.card.num_classes)
            .map(|i| self.model.class_name(i))
            .collect()
    }

    /// The input shape `(C, H, W)` the model takes.
    #[getter]
    fn input_shape(&self) -> (usize, usize, usize) {
        let card = &self.model.card;
        (card.channels, card.input_size[0], card.input_size[1])
    }

    /// The node names of the graph (for `layer=`).
    #[getter]
    fn layers(&self) -> Vec<String> {
        self.model
            .graph
            .node_names()
            .into_iter()
            .map(String::from)
            .collect()
    }

    fn __repr__(&self) -> String {
        let (c, h, w) = self.input_shape();
        format!(
            "Model({}, input [{c}, {h}, {w}], {} classes)",
            self.model.source.display(),
            self.model.card.num_classes
        )
    }
}

/// Loads a model as `relevance explain --model PATH [--card CARD] [--arch ARCH]` does.
#[pyfunction]
#[pyo3(signature = (path, card = None, arch = None))]
pub fn load(
    py: Python<'_>,
    path: PathBuf,
    card: Option<PathBuf>,
    arch: Option<String>,
) -> PyResult<PyModel> {
    let options = LoadOptions { arch, card };
    let model = py
        .detach(|| Model::load(&path, &options))
        .map_err(|e| to_py(e.into()))?;
    Ok(PyModel::new(model))
}

/// Loads an ONNX model held in memory (`relevance.from_torch`'s export) with an optional card.
#[pyfunction]
#[pyo3(signature = (data, card = None))]
pub fn load_onnx_bytes(py: Python<'_>, data: Vec<u8>, card: Option<PathBuf>) -> PyResult<PyModel> {
    let name = std::path::Path::new("<torch.onnx.export>");
    let model = py
        .detach(|| Model::load_onnx_bytes(&data, name, card.as_deref()))
        .map_err(|e| to_py(e.into()))?;
    Ok(PyModel::new(model))
}

/// A built-in architecture (`relevance.zoo`'s names, torchvision's layer names) with freshly drawn
/// weights from `seed`, as `Model::init` draws them.
#[pyfunction]
#[pyo3(signature = (arch, num_classes = 1000, channels = 3, input_size = 224, seed = 0))]
pub fn init(
    arch: &str,
    num_classes: usize,
    channels: usize,
    input_size: usize,
    seed: u64,
) -> PyResult<PyModel> {
    let card = relevance::ModelCard {
        arch: Some(arch.to_string()),
        num_classes,
        channels,
        input_size: [input_size, input_size],
        ..relevance::ModelCard::default()
    };
    let model = Model::init(arch, card, seed).map_err(|e| to_py(e.into()))?;
    Ok(PyModel::new(model))
}
