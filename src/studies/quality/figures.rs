//! The figures of the quality study: one box plot per metric, a box per model × method over
//! images.

use super::QualityOptions;
use super::scores::{Metric, Row};
use crate::report::plots::{Chart, PAGE_WIDTH, Plot};
use crate::studies::StudyError;
use crate::studies::toolkit::{Figure, RunFacts, save_plot};

/// What each figure's caption says the metric shows.
fn meaning(metric: Metric) -> &'static str {
    match metric {
        Metric::CheckerboardRatio => {
            "The checkerboard score over the score white noise of the map's size, mean and \
             variance is expected to have: 1 is as checkered as noise, below 1 smoother, above \
             1 a stride-2 pattern"
        }
        Metric::Sparseness => "The Gini index of |R|: 0 for a uniform map, near 1 for one pixel",
        Metric::Complexity => "The entropy of |R|/Σ|R|: ln(H·W) for a uniform map, 0 for one pixel",
        Metric::PixelFlipping => {
            "The mean drop of the logit as the most relevant pixels are set to the image minimum \
             step by step (higher: the map ranks the pixels the model uses first)"
        }
        Metric::RegionPerturbation => {
            "The mean drop of the logit as the most relevant patches are set to the image minimum"
        }
        Metric::FaithfulnessCorrelation => {
            "The Pearson correlation between the relevance of random pixel subsets and the logit \
             drop when they are removed"
        }
        Metric::AvgSensitivity | Metric::MaxSensitivity => {
            "The change of the map under small uniform noise, relative to the map's norm"
        }
        Metric::Checkerboard | Metric::CheckerboardNoise => "The checkerboard score",
    }
}

/// One box plot per metric shown (`quality_<metric>.{png,svg}`).
pub fn boxes(
    opts: &QualityOptions,
    rows: &[Row],
    facts: &RunFacts,
) -> Result<Vec<Figure>, StudyError> {
    let shown = [
        Metric::CheckerboardRatio,
        Metric::Sparseness,
        Metric::Complexity,
        Metric::PixelFlipping,
        Metric::RegionPerturbation,
        Metric::FaithfulnessCorrelation,
        Metric::AvgSensitivity,
    ];
    let several = facts.models.len() > 1;
    let mut figures = Vec::new();
    for metric in shown {
        let k = Metric::ALL.iter().position(|&m| m == metric).unwrap_or(0);
        let groups: Vec<(String, Vec<f64>)> = facts
            .models
            .iter()
            .flat_map(|model| facts.methods.iter().map(move |method| (model, method)))
            .map(|(model, method)| {
                let values = rows
                    .iter()
                    .filter(|r| &r.model == model && &r.method == method)
                    .map(|r| r.values[k])
                    .filter(|v| v.is_finite())
                    .collect();
                let label = if several {
                    format!("{method} · {model}")
                } else {
                    method.clone()
                };
                (label, values)
            })
            .collect();
        let width = (groups.len() as u32 * 60 + 160).clamp(640, PAGE_WIDTH);
        let heading = metric.heading();
        let mut plot = Plot::new(
            &format!("{heading} per method"),
            if several { "method · model" } else { "method" },
            heading,
            Chart::Boxes { groups },
        );
        plot.size = (width, 480);
        figures.push(save_plot(
            &opts.inputs.out,
            &format!("quality_{}", metric.name()),
            &plot,
            &format!(
                "{}. One box per {} over images (box = quartiles, line = median, \
                 whiskers = 1.5 IQR); the conventions are in summary.json.",
                meaning(metric),
                if several {
                    "method and model"
                } else {
                    "method"
                }
            ),
        )?);
    }
    Ok(figures)
}
