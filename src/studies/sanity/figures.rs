//! Figures of the sanity study: similarity against the randomised layer (Adebayo et al. 2018,
//! Fig. 2 and 4 style), the random-logit similarities, and the first image's maps as the layers
//! are randomised one after another.

use crate::graph::init::init_params;
use crate::methods::pass::forward_all;
use crate::metrics::randomisation::layers_top_down;
use crate::records::{Figure, SanityRecord};
use crate::report::plots::{Chart, Plot, Series};
use crate::studies::StudyError;
use crate::studies::toolkit::{
    RunFacts, StudyImage, StudyMethod, StudyModel, enlarge, explain_planes, overlay_tile,
    predictions, save_plot, write_grid,
};

use super::SanityOptions;
use super::scores::Row;

/// At most this many randomisation steps shown in the map grid (evenly spaced, the last kept).
const GRID_STEPS: usize = 8;

/// One plot per test: mean Spearman correlation with the original map against the number of
/// layers randomised (cascading) or the layer randomised alone (independent), a line per
/// model × method, the original map at step 0 (similarity 1).
pub fn curves(
    opts: &SanityOptions,
    record: &SanityRecord,
    facts: &RunFacts,
) -> Result<Vec<Figure>, StudyError> {
    let mut figures = Vec::new();
    for test in ["cascading", "independent"] {
        let mut series = Vec::new();
        let mut layers: Vec<String> = Vec::new();
        for c in record.curves.iter().filter(|c| c.test == test) {
            if layers.is_empty() {
                layers = c.steps.iter().map(|s| s.layer.clone()).collect();
            }
            let label = if facts.models.len() > 1 {
                format!("{} · {}", c.model, c.method)
            } else {
                c.method.clone()
            };
            let points = std::iter::once((0.0, 1.0))
                .chain(
                    c.steps
                        .iter()
                        .enumerate()
                        .map(|(k, s)| ((k + 1) as f64, s.spearman.mean)),
                )
                .collect();
            series.push(Series { label, points });
        }
        let (title, x) = if test == "cascading" {
            (
                "Cascading randomisation: similarity to the original map",
                "layers randomised, from the output down",
            )
        } else {
            (
                "Independent randomisation: similarity to the original map",
                "layer randomised alone (output layer = 1)",
            )
        };
        let plot = Plot::new(
            title,
            x,
            "mean Spearman correlation",
            Chart::Lines {
                series,
                y_range: Some((-0.2, 1.0)),
            },
        );
        let caption = format!(
            "Mean over {} images of the Spearman rank correlation between each method's map ({}) \
             and its map after randomisation (Adebayo et al. 2018). Step 0 is the original model; \
             step k {}. Layers in order: {}. A sane method falls towards 0; one that stays above \
             {} after the last step is flagged. Intervals and SSIM / top-k IoU: metrics.csv.",
            facts.images,
            if record.abs { "|map|" } else { "signed" },
            if test == "cascading" {
                "has the k layers nearest the output re-drawn"
            } else {
                "has only the k-th layer from the output re-drawn"
            },
            layers.join(", "),
            opts.threshold
        );
        figures.push(save_plot(&opts.inputs.out, test, &plot, &caption)?);
    }
    Ok(figures)
}

/// The random-logit test: the distribution over images of the Spearman correlation between the
/// map for the explained class and the map for a random other class, per method.
pub fn random_logit_boxes(
    opts: &SanityOptions,
    rows: &[Row],
    facts: &RunFacts,
) -> Result<Figure, StudyError> {
    let groups = facts
        .methods
        .iter()
        .map(|method| {
            let values = rows
                .iter()
                .filter(|r| &r.method == method)
                .map(|r| r.logit.1.spearman)
                .filter(|v| v.is_finite());
            (method.clone(), values.collect())
        })
        .collect();
    let plot = Plot::new(
        "Random logit: similarity to the map of another class",
        "method",
        "Spearman correlation",
        Chart::Boxes { groups },
    );
    save_plot(
        &opts.inputs.out,
        "random_logit",
        &plot,
        &format!(
            "Per image (and model), the Spearman correlation between the map for the explained \
             class and the map for a class drawn at random among the others (Sixt et al. 2020). \
             Box = quartiles, line = median. A method whose maps stay similar (at or above {}) \
             does not explain the class.",
            opts.threshold
        ),
    )
}

/// The step indices shown in the grid: at most [`GRID_STEPS`], evenly spaced, the last included.
fn shown_steps(count: usize) -> Vec<usize> {
    if count <= GRID_STEPS {
        return (0..count).collect();
    }
    let mut steps: Vec<usize> = (0..GRID_STEPS)
        .map(|i| i * (count - 1) / (GRID_STEPS - 1))
        .collect();
    steps.dedup();
    steps
}

/// `randomised_maps.png`: for the first image on the first model, a row per method: the input,
/// the original map, then the map after cascading randomisation down to each shown layer.
pub fn randomised_maps(
    opts: &SanityOptions,
    m: &StudyModel,
    methods: &[(String, StudyMethod)],
    img: &StudyImage,
) -> Result<Figure, StudyError> {
    let card = &m.model.card;
    let x = img.input(card)?;
    let [_, c, h, w] = x.dims();
    let acts = forward_all(&m.model, &x)?;
    let target = predictions(&m.model, &acts, 1)?[0].0;
    let target = match opts.target {
        super::TargetRule::True => {
            crate::studies::toolkit::model_label(img, card).unwrap_or(target)
        }
        super::TargetRule::Predicted => target,
    };
    let base = crate::report::heatmap::input_image(
        &crate::tensor::to_vec(&x),
        c,
        h as u32,
        w as u32,
        card,
    );
    let layers = layers_top_down(&m.model, opts.include_batchnorm);
    let shown = shown_steps(layers.len());
    let fresh = init_params(&m.model.graph, super::randomisation_seed(opts.seed))
        .map_err(crate::metrics::MetricError::from)?;
    // The randomised models of the shown steps, built once for every method.
    let mut randomised = Vec::new();
    let mut current = m.model.clone();
    for (k, &id) in layers.iter().enumerate() {
        for key in m.model.graph.nodes[id].op.param_keys() {
            let value = fresh.get(key).map_err(crate::metrics::MetricError::from)?;
            current.params.insert(key, value.clone());
        }
        if shown.contains(&k) {
            randomised.push((m.model.graph.nodes[id].name.clone(), current.clone()));
        }
    }
    let keys = vec![img.stem.clone()];
    let mut rows = Vec::new();
    for (_, method) in methods {
        let mut row = vec![enlarge(&base)];
        for model in std::iter::once(&m.model).chain(randomised.iter().map(|(_, m)| m)) {
            let prepared = method.prepare(model)?;
            let acts = forward_all(model, &x)?;
            let planes = explain_planes(&prepared, &x, &acts, &[target], &keys, false)?.planes;
            row.push(overlay_tile(&base, &planes[0], method.style()));
        }
        rows.push(row);
    }
    let names: Vec<&str> = methods.iter().map(|(n, _)| n.as_str()).collect();
    let columns: Vec<&str> = randomised.iter().map(|(l, _)| l.as_str()).collect();
    write_grid(
        &opts.inputs.out,
        "randomised_maps",
        &rows,
        &format!(
            "Maps as the layers of {} are randomised (image {})",
            m.label, img.stem
        ),
        &format!(
            "Rows: {}. Columns: the input, the original map, then the map after cascading \
             randomisation down to layer {} (output layer first). Each tile is scaled on its own: \
             compare structure, not strength. A map that still shows the input's edges with \
             every layer random reflects the input, not the model (Adebayo et al. 2018, Fig. 2).",
            names.join(", "),
            columns.join(", ")
        ),
    )
}
