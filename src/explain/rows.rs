//! Writing one run's files: per row the input as the model saw it, each method's map and
//! overlay, and the row's entry of the record; at the end the overview grid.

use anyhow::{Context, Result};

use super::{ExplainOptions, Input, Pass};
use crate::data::npy::write_npy;
use crate::graph::Model;
use crate::io::safe_component;
use crate::methods::lrp::Conservation;
use crate::methods::pass::row;
use crate::methods::{MapKind, MapStyle, Prepared};
use crate::records::{
    ConservationRecord, GridRecord, MapFiles, OutputFile, OutputRecord, TargetRecord,
};
use crate::report::heatmap::{grid, input_image, map_overlay, write_png};
use crate::tensor::to_vec;

/// The overview grid is written only up to this many rows (input × target).
const MAX_GRID_ROWS: usize = 32;

/// Class probabilities of each row being explained.
pub(super) struct RowScores<'a> {
    pub(super) probs: &'a [Vec<f32>],
}

/// Everything the run writes, gathered for `explain.json` and the grid.
pub(super) struct RunWriter<'a> {
    opts: &'a ExplainOptions,
    model: &'a Model,
    methods: &'a [Prepared<'a>],
    outputs: Vec<OutputRecord>,
    grid_rows: Vec<Vec<image::RgbImage>>,
    grid_labels: Vec<String>,
    rows_done: usize,
}

/// One method's maps of a batch, on the host.
struct HostMaps {
    values: Vec<f32>,
    explained: Vec<f32>,
}

impl<'a> RunWriter<'a> {
    pub(super) fn new(
        opts: &'a ExplainOptions,
        model: &'a Model,
        methods: &'a [Prepared<'a>],
    ) -> Self {
        RunWriter {
            opts,
            model,
            methods,
            outputs: Vec::new(),
            grid_rows: Vec::new(),
            grid_labels: Vec::new(),
            rows_done: 0,
        }
    }

    /// The prepared methods the run explains with.
    pub(super) fn methods(&self) -> &'a [Prepared<'a>] {
        self.methods
    }

    /// Writes the files of every row of `pass`; `owners[r]` is the input of row `r`.
    pub(super) fn write_rows(
        &mut self,
        pass: &Pass,
        owners: &[&Input],
        scores: RowScores,
        all_targets: bool,
    ) -> Result<()> {
        let maps: Vec<HostMaps> = pass
            .explanations
            .iter()
            .map(|e| HostMaps {
                values: to_vec(&e.maps),
                explained: e.explained.clone(),
            })
            .collect();
        let x = pass.x;
        for (r, (&target, input)) in pass.targets.iter().zip(owners).enumerate() {
            let class = self.model.class_name(target);
            let prefix = if all_targets {
                format!("{}.{}", input.stem, safe_component(&class))
            } else {
                input.stem.clone()
            };
            let record = self.write_row(x, r, &prefix, &maps)?;
            if self.rows_done < MAX_GRID_ROWS {
                self.grid_labels.push(format!("{}: {class}", input.stem));
            }
            self.rows_done += 1;
            self.outputs.push(OutputRecord {
                input: input.path.display().to_string(),
                input_png: Some(record.0),
                stem: input.stem.clone(),
                target: TargetRecord {
                    index: target,
                    name: class,
                    prob: f64::from(scores.probs[r][target]),
                },
                files: record.1,
            });
        }
        Ok(())
    }

    /// Writes row `r`'s input picture and every method's map and overlay; returns the input
    /// picture's name and the files per method.
    fn write_row(
        &mut self,
        x: &crate::tensor::T4,
        r: usize,
        prefix: &str,
        maps: &[HostMaps],
    ) -> Result<(String, std::collections::BTreeMap<String, OutputFile>)> {
        let [_, c, h, w] = x.dims();
        let base = input_image(&row(x, r), c, h as u32, w as u32, &self.model.card);
        // The image as the model saw it, inside --out: the report shows only files inside the
        // run folder, and the input itself usually lies elsewhere.
        let input_png = format!("{prefix}.input.png");
        let path = self.opts.out.join(&input_png);
        write_png(&path, &base).with_context(|| path.display().to_string())?;
        let mut tiles = vec![base.clone()];
        let mut files = std::collections::BTreeMap::new();
        for (m, map) in self.methods.iter().zip(maps) {
            let channels = match m.kind() {
                MapKind::Input => c,
                MapKind::Cam => 1,
            };
            let per = channels * h * w;
            let values = &map.values[r * per..(r + 1) * per];
            let key = m.spec().file_key();
            let npy = format!("{prefix}.{key}.npy");
            let shape: Vec<usize> = match m.kind() {
                MapKind::Input => vec![c, h, w],
                MapKind::Cam => vec![h, w],
            };
            write_npy(&self.opts.out.join(&npy), &shape, values)?;
            if m.spec().is_lrp() {
                let total: f64 = values.iter().map(|&v| v as f64).sum();
                let c = Conservation::of(total, map.explained[r] as f64);
                files.insert(
                    format!("{}.conservation", m.label()),
                    OutputFile::Conservation(ConservationRecord {
                        explained: c.explained,
                        total: c.total,
                        error: c.error,
                    }),
                );
            }
            let picture = self.overlay(&base, values, channels, m.style());
            let png = format!("{prefix}.{key}.png");
            let path = self.opts.out.join(&png);
            write_png(&path, &picture).with_context(|| path.display().to_string())?;
            files.insert(m.label(), OutputFile::Map(MapFiles { npy, png }));
            tiles.push(picture);
        }
        if self.rows_done < MAX_GRID_ROWS {
            self.grid_rows.push(tiles);
        }
        Ok((input_png, files))
    }

    /// The map drawn over the input, with the run's colormap for unsigned maps.
    fn overlay(
        &self,
        base: &image::RgbImage,
        values: &[f32],
        channels: usize,
        style: MapStyle,
    ) -> image::RgbImage {
        map_overlay(
            base,
            values,
            channels,
            style,
            self.opts.colormap,
            self.opts.alpha,
        )
    }

    /// Writes `grid.png` (up to [`MAX_GRID_ROWS`] rows) and returns its record.
    pub(super) fn write_grid(&self) -> Result<Option<GridRecord>> {
        if self.grid_rows.is_empty() {
            return Ok(None);
        }
        let path = self.opts.out.join("grid.png");
        write_png(&path, &grid(&self.grid_rows, 4)).with_context(|| path.display().to_string())?;
        let mut columns = vec!["input".to_string()];
        columns.extend(self.methods.iter().map(Prepared::label));
        Ok(Some(GridRecord {
            file: "grid.png".into(),
            rows: self.grid_labels.clone(),
            columns,
            complete: self.rows_done <= MAX_GRID_ROWS,
        }))
    }

    /// The rows' records, in the order written.
    pub(super) fn into_outputs(self) -> Vec<OutputRecord> {
        self.outputs
    }
}
