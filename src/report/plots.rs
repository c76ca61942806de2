//! Plots for studies and reports (plotters): line charts (insertion/deletion curves), scatter
//! plots with a fitted polynomial, box plots, bar charts and labelled matrices (confusion, IoU).
//! Each renders to SVG (text stays text) and to PNG (text drawn with the embedded DejaVu Sans).

use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontDesc, FontStyle, FontTransform, register_font};

/// The embedded font for bitmap output.
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

fn ensure_font() {
    REGISTER.call_once(|| {
        // Registration only fails for a malformed font, and the font is compiled in.
        let _ = register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Colour-blind-safe categorical palette (Okabe & Ito 2008).
pub const PALETTE: [(u8, u8, u8); 8] = [
    (0, 114, 178),
    (230, 159, 0),
    (0, 158, 115),
    (204, 121, 167),
    (86, 180, 233),
    (213, 94, 0),
    (240, 228, 66),
    (0, 0, 0),
];

fn colour(i: usize) -> RGBColor {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    RGBColor(r, g, b)
}

/// A named sequence of points.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// `(x, y)` points.
    pub points: Vec<(f64, f64)>,
}

/// A polynomial fit drawn over a scatter plot: `y = Σ coeffs[k]·xᵏ`.
#[derive(Clone, Debug)]
pub struct Fit {
    /// Coefficients from the constant term up.
    pub coeffs: Vec<f64>,
    /// Legend text, e.g. `quadratic fit, R² = 0.81`.
    pub label: String,
    /// A confidence band for the fitted mean as `(x, low, high)` in increasing `x` (drawn
    /// shaded under the curve); empty for none.
    pub band: Vec<(f64, f64, f64)>,
}

/// What to draw.
#[derive(Clone, Debug)]
pub enum Chart {
    /// Lines through each series' points.
    Lines {
        /// The series.
        series: Vec<Series>,
        /// Fixed y range, if any.
        y_range: Option<(f64, f64)>,
    },
    /// Points of each series and an optional fitted curve.
    Scatter {
        /// The series.
        series: Vec<Series>,
        /// The fitted curve.
        fit: Option<Fit>,
    },
    /// One box (median, quartiles, 1.5 IQR whiskers) per group.
    Boxes {
        /// `(label, values)` per group.
        groups: Vec<(String, Vec<f64>)>,
    },
    /// Bars, one per category.
    Bars {
        /// `(label, value)` per bar.
        bars: Vec<(String, f64)>,
    },
    /// A labelled matrix with values written in the cells (rows top to bottom).
    Matrix {
        /// Row labels.
        rows: Vec<String>,
        /// Column labels.
        columns: Vec<String>,
        /// `values[r][c]`.
        values: Vec<Vec<f64>>,
        /// Colour scale maximum (values are shaded in `[0, max]`).
        max: f64,
    },
}

/// Tukey's box of a sample: quartiles by linear interpolation (numpy's default), whiskers at
/// the most extreme values within 1.5 IQR of the box, and the values beyond them.
#[derive(Clone, Debug, PartialEq)]
pub struct BoxStats {
    /// First quartile.
    pub q1: f64,
    /// Median.
    pub median: f64,
    /// Third quartile.
    pub q3: f64,
    /// Lower whisker end (smallest value ≥ q1 − 1.5 IQR).
    pub low: f64,
    /// Upper whisker end (largest value ≤ q3 + 1.5 IQR).
    pub high: f64,
    /// Values outside the whiskers.
    pub outliers: Vec<f64>,
}

impl BoxStats {
    /// The box of the finite values of `values`; `None` when there are none.
    pub fn of(values: &[f64]) -> Option<BoxStats> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let q = |p: f64| {
            let pos = p * (v.len() - 1) as f64;
            let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
            v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
        };
        let (q1, median, q3) = (q(0.25), q(0.5), q(0.75));
        let iqr = q3 - q1;
        let (fence_lo, fence_hi) = (q1 - 1.5 * iqr, q3 + 1.5 * iqr);
        let inside = || {
            v.iter()
                .copied()
                .filter(|&x| x >= fence_lo && x <= fence_hi)
        };
        let low = inside().fold(f64::INFINITY, f64::min);
        let high = inside().fold(f64::NEG_INFINITY, f64::max);
        let outliers = v
            .iter()
            .copied()
            .filter(|&x| x < fence_lo || x > fence_hi)
            .collect();
        Some(BoxStats {
            q1,
            median,
            q3,
            low,
            high,
            outliers,
        })
    }
}

/// A chart with a title and axis labels.
#[derive(Clone, Debug)]
pub struct Plot {
    /// Title above the chart.
    pub title: String,
    /// X-axis label.
    pub x_label: String,
    /// Y-axis label.
    pub y_label: String,
    /// Content.
    pub chart: Chart,
    /// Size in pixels.
    pub size: (u32, u32),
}

type DrawResult = Result<(), String>;

/// A chart with numeric (f64) axes on either backend.
type NumericChart<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// The widest a figure is shown in the report: `main` is at most 1180 CSS px wide, less the
/// section's padding. A wider SVG is scaled down to fit, and its text with it, so text sizes are
/// scaled up by the same factor to stay readable.
pub const PAGE_WIDTH: u32 = 1100;
/// Text sizes in CSS pixels as the reader sees them (never under 11).
const TITLE_PX: f64 = 16.0;
const AXIS_PX: f64 = 13.0;
const LABEL_PX: f64 = 12.0;
const CELL_PX: f64 = 13.0;
/// plotters writes an SVG font size of `size / 1.24`: a point-to-pixel conversion.
const PLOTTERS_SIZE_PER_PX: f64 = 1.24;
/// Room between the axis line and its tick labels (plotters: twice the tick length).
const TICK_GAP: u32 = 10;

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("{e:?}")
}

fn bounds(points: impl Iterator<Item = (f64, f64)>) -> ((f64, f64), (f64, f64)) {
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for (x, y) in points.filter(|(x, y)| x.is_finite() && y.is_finite()) {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if !x0.is_finite() {
        return ((0.0, 1.0), (0.0, 1.0));
    }
    let pad = |a: f64, b: f64| {
        let d = if b > a {
            (b - a) * 0.05
        } else {
            a.abs().max(1.0) * 0.05
        };
        (a - d, b + d)
    };
    (pad(x0, x1), pad(y0, y1))
}

impl Plot {
    /// A plot of default size 640×420.
    pub fn new(title: &str, x_label: &str, y_label: &str, chart: Chart) -> Self {
        Plot {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            chart,
            size: (640, 420),
        }
    }

    /// How much a text size is multiplied so that it keeps its size once the report scales
    /// the figure down to [`PAGE_WIDTH`].
    fn text_scale(&self) -> f64 {
        (f64::from(self.size.0) / f64::from(PAGE_WIDTH)).max(1.0)
    }

    /// A font that shows `css_px` pixels high in the report.
    fn font(&self, css_px: f64) -> FontDesc<'static> {
        (
            "sans-serif",
            css_px * self.text_scale() * PLOTTERS_SIZE_PER_PX,
        )
            .into_font()
    }

    /// `css_px` scaled like the text, for room reserved around it.
    fn scaled(&self, css_px: f64) -> u32 {
        (css_px * self.text_scale()).ceil() as u32
    }

    /// Width of `text` in the label font, in canvas pixels.
    fn label_width(&self, text: &str) -> u32 {
        ensure_font();
        self.font(LABEL_PX)
            .box_size(text)
            .map(|(w, _)| w)
            .unwrap_or_else(|_| self.scaled(LABEL_PX * 0.6 * text.chars().count() as f64))
    }

    /// Height of the band under the x axis: tick labels, then the axis name.
    fn x_label_band(&self) -> u32 {
        self.scaled(LABEL_PX + AXIS_PX) + TICK_GAP + 14
    }

    /// Width of the band left of the y axis for numeric tick labels and the axis name.
    fn y_label_band(&self) -> u32 {
        self.scaled(LABEL_PX * 3.5 + AXIS_PX) + TICK_GAP + 10
    }

    /// Names of the categories of a box or bar chart, if it is one.
    fn categories(&self) -> Option<Vec<&str>> {
        match &self.chart {
            Chart::Boxes { groups } => Some(groups.iter().map(|(l, _)| l.as_str()).collect()),
            Chart::Bars { bars } => Some(bars.iter().map(|(l, _)| l.as_str()).collect()),
            _ => None,
        }
    }

    /// How the category names under a box or bar chart are written: upright (read bottom to
    /// top) when the widest does not fit the width one category gets, else level.
    fn category_axis(&self) -> Option<CategoryAxis> {
        let names = self.categories()?;
        let widest = names.iter().map(|n| self.label_width(n)).max().unwrap_or(0);
        let plot_width = self.size.0.saturating_sub(self.y_label_band() + 24);
        let slot = plot_width / (names.len().max(1) as u32);
        let upright = widest + self.scaled(LABEL_PX) > slot;
        let band = if upright {
            widest + self.scaled(AXIS_PX) + TICK_GAP + 18
        } else {
            self.x_label_band()
        };
        Some(CategoryAxis { upright, band })
    }

    /// The canvas: the requested size, made taller by whatever upright category names need
    /// beyond the usual label band, so the plotting area keeps its height.
    pub fn canvas_size(&self) -> (u32, u32) {
        let (w, h) = self.size;
        let extra = self
            .category_axis()
            .map_or(0, |axis| axis.band.saturating_sub(self.x_label_band()));
        (w, h + extra)
    }

    /// SVG markup.
    pub fn svg(&self) -> Result<String, String> {
        // plotters measures text for layout even when it emits SVG text elements.
        ensure_font();
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, self.canvas_size()).into_drawing_area();
            self.draw(&root)?;
            root.present().map_err(err)?;
        }
        Ok(out)
    }

    /// PNG bytes.
    pub fn png(&self) -> Result<Vec<u8>, String> {
        ensure_font();
        let (w, h) = self.canvas_size();
        let mut buf = vec![0u8; (w * h * 3) as usize];
        {
            let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
            self.draw(&root)?;
            root.present().map_err(err)?;
        }
        let img = ::image::RgbImage::from_raw(w, h, buf).ok_or("plot buffer size")?;
        let mut bytes = Vec::new();
        img.write_to(
            &mut std::io::Cursor::new(&mut bytes),
            ::image::ImageFormat::Png,
        )
        .map_err(err)?;
        Ok(bytes)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        root.fill(&WHITE).map_err(err)?;
        match &self.chart {
            Chart::Lines { series, .. } | Chart::Scatter { series, fit: None }
                if series.is_empty() =>
            {
                root.titled(&self.title, self.font(TITLE_PX)).map_err(err)?;
                Ok(())
            }
            Chart::Lines { series, y_range } => self.draw_lines(root, series, *y_range),
            Chart::Scatter { series, fit } => self.draw_scatter(root, series, fit.as_ref()),
            Chart::Boxes { groups } => self.draw_boxes(root, groups),
            Chart::Bars { bars } => self.draw_bars(root, bars),
            Chart::Matrix {
                rows,
                columns,
                values,
                max,
            } => self.draw_matrix(root, rows, columns, values, *max),
        }
    }

    /// A chart builder with the title and the label bands sized for the text.
    fn builder<'a, 'b, DB: DrawingBackend>(
        &'b self,
        root: &'a DrawingArea<DB, Shift>,
        x_band: u32,
        y_band: u32,
    ) -> ChartBuilder<'a, 'b, DB> {
        let mut builder = ChartBuilder::on(root);
        builder
            .caption(&self.title, self.font(TITLE_PX))
            .margin(12)
            .x_label_area_size(x_band)
            .y_label_area_size(y_band);
        builder
    }

    /// A chart with numeric axes over `x` × `y`, its grid, tick labels and axis names drawn.
    fn numeric_chart<'a, DB: DrawingBackend>(
        &self,
        root: &'a DrawingArea<DB, Shift>,
        (x0, x1): (f64, f64),
        (y0, y1): (f64, f64),
    ) -> Result<NumericChart<'a, DB>, String> {
        let mut chart = self
            .builder(root, self.x_label_band(), self.y_label_band())
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .label_style(self.font(LABEL_PX))
            .axis_desc_style(self.font(AXIS_PX))
            .draw()
            .map_err(err)?;
        Ok(chart)
    }

    /// The legend of the series drawn on `chart`, in its upper right corner.
    fn draw_legend<'a, DB: DrawingBackend + 'a>(
        &self,
        chart: &mut NumericChart<'a, DB>,
    ) -> DrawResult {
        chart
            .configure_series_labels()
            .label_font(self.font(LABEL_PX))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(err)
    }

    fn draw_lines<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        series: &[Series],
        y_range: Option<(f64, f64)>,
    ) -> DrawResult {
        let ((x0, x1), (mut y0, mut y1)) =
            bounds(series.iter().flat_map(|s| s.points.iter().copied()));
        if let Some((a, b)) = y_range {
            (y0, y1) = (a, b);
        }
        let mut chart = self.numeric_chart(root, (x0, x1), (y0, y1))?;
        for (i, s) in series.iter().enumerate() {
            let c = colour(i);
            chart
                .draw_series(LineSeries::new(s.points.iter().copied(), c.stroke_width(2)))
                .map_err(err)?
                .label(&s.label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                });
        }
        self.draw_legend(&mut chart)
    }

    fn draw_scatter<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        series: &[Series],
        fit: Option<&Fit>,
    ) -> DrawResult {
        let ((x0, x1), (y0, y1)) = bounds(series.iter().flat_map(|s| s.points.iter().copied()));
        let mut chart = self.numeric_chart(root, (x0, x1), (y0, y1))?;
        for (i, s) in series.iter().enumerate() {
            let c = colour(i);
            chart
                .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, c.filled())))
                .map_err(err)?
                .label(&s.label)
                .legend(move |(x, y)| Circle::new((x + 9, y), 4, c.filled()));
        }
        if let Some(f) = fit.filter(|f| !f.band.is_empty()) {
            let clamp = |y: f64| y.clamp(y0, y1);
            let outline: Vec<(f64, f64)> = f
                .band
                .iter()
                .map(|&(x, _, high)| (x, clamp(high)))
                .chain(f.band.iter().rev().map(|&(x, low, _)| (x, clamp(low))))
                .collect();
            let shade = RGBColor(120, 120, 120).mix(0.25);
            chart
                .draw_series(std::iter::once(Polygon::new(outline, shade.filled())))
                .map_err(err)?
                .label("95% confidence band of the fit")
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 4), (x + 18, y + 4)], shade.filled())
                });
        }
        if let Some(f) = fit {
            let n = 100;
            let pts = (0..=n).map(|k| {
                let x = x0 + (x1 - x0) * k as f64 / n as f64;
                (x, f.coeffs.iter().rev().fold(0.0, |acc, c| acc * x + c))
            });
            let pts: Vec<(f64, f64)> = pts.filter(|(_, y)| *y >= y0 && *y <= y1).collect();
            chart
                .draw_series(LineSeries::new(pts, BLACK.stroke_width(2)))
                .map_err(err)?
                .label(&f.label)
                .legend(|(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], BLACK.stroke_width(2))
                });
        }
        self.draw_legend(&mut chart)
    }

    /// Writes category names under the x axis, each centred on its canvas x, in the style
    /// [`Plot::category_axis`] chose. plotters' own tick labels can only be level and centred,
    /// which would overlap for long names.
    fn draw_category_names<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        names: &[(String, (i32, i32))],
    ) -> DrawResult {
        let upright = self.category_axis().is_some_and(|axis| axis.upright);
        let style = if upright {
            // Read bottom to top, ending just under the tick: the name hangs below the axis.
            TextStyle::from(self.font(LABEL_PX).transform(FontTransform::Rotate270))
                .pos(Pos::new(HPos::Right, VPos::Center))
        } else {
            TextStyle::from(self.font(LABEL_PX)).pos(Pos::new(HPos::Center, VPos::Top))
        };
        for (name, (x, y)) in names {
            root.draw(&Text::new(
                name.clone(),
                (*x, y + TICK_GAP as i32),
                style.clone(),
            ))
            .map_err(err)?;
        }
        Ok(())
    }

    fn category_band(&self) -> u32 {
        self.category_axis()
            .map_or_else(|| self.x_label_band(), |axis| axis.band)
    }

    fn draw_boxes<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        groups: &[(String, Vec<f64>)],
    ) -> DrawResult {
        let all: Vec<f64> = groups
            .iter()
            .flat_map(|(_, v)| v.iter().copied())
            .filter(|v| v.is_finite())
            .collect();
        let (_, (y0, y1)) = bounds(all.iter().map(|&v| (0.0, v)));
        let n = groups.len() as f64;
        // A numeric x axis (box i centred on x = i) so boxes, whiskers and outliers can be
        // drawn at exact offsets.
        let mut chart = self
            .builder(root, self.category_band(), self.y_label_band())
            .build_cartesian_2d(-0.5..n - 0.5, y0..y1)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .label_style(self.font(LABEL_PX))
            .axis_desc_style(self.font(AXIS_PX))
            // Ticks only: draw_category_names writes the names.
            .x_labels(groups.len() + 1)
            .x_label_formatter(&|_| String::new())
            .disable_x_mesh()
            .draw()
            .map_err(err)?;
        for (i, (_, values)) in groups.iter().enumerate() {
            let Some(b) = BoxStats::of(values) else {
                continue;
            };
            let x = i as f64;
            let style = colour(i).stroke_width(2);
            let line = |a: (f64, f64), b: (f64, f64)| PathElement::new(vec![a, b], style);
            chart
                .draw_series([
                    line((x - 0.25, b.q1), (x + 0.25, b.q1)),
                    line((x - 0.25, b.q3), (x + 0.25, b.q3)),
                    line((x - 0.25, b.q1), (x - 0.25, b.q3)),
                    line((x + 0.25, b.q1), (x + 0.25, b.q3)),
                    line((x - 0.25, b.median), (x + 0.25, b.median)),
                    line((x, b.q3), (x, b.high)),
                    line((x, b.q1), (x, b.low)),
                    line((x - 0.1, b.high), (x + 0.1, b.high)),
                    line((x - 0.1, b.low), (x + 0.1, b.low)),
                ])
                .map_err(err)?;
            chart
                .draw_series(
                    b.outliers
                        .iter()
                        .map(|&v| Circle::new((x, v), 2, colour(i).stroke_width(1))),
                )
                .map_err(err)?;
        }
        let names: Vec<(String, (i32, i32))> = groups
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (name.clone(), chart.backend_coord(&(i as f64, y0))))
            .collect();
        self.draw_category_names(root, &names)
    }

    fn draw_bars<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        bars: &[(String, f64)],
    ) -> DrawResult {
        let top = bars
            .iter()
            .map(|(_, v)| *v)
            .fold(0.0f64, f64::max)
            .max(1e-9)
            * 1.1;
        let bottom = bars.iter().map(|(_, v)| *v).fold(0.0f64, f64::min) * 1.1;
        // A numeric x axis with bar i centred on x = i, as for the boxes: one slot per bar,
        // a single bar included, and no empty slot after the last.
        let n = bars.len().max(1) as f64;
        let mut chart = self
            .builder(root, self.category_band(), self.y_label_band())
            .build_cartesian_2d(-0.5..n - 0.5, bottom..top)
            .map_err(err)?;
        // Counts get whole-number ticks only: "2.5 images" is not a value a count can take.
        let counts = bars.iter().all(|(_, v)| v.fract() == 0.0);
        let whole = |v: &f64| {
            if v.fract().abs() < 1e-9 {
                format!("{v:.0}")
            } else {
                String::new()
            }
        };
        let mut mesh = chart.configure_mesh();
        mesh.x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .label_style(self.font(LABEL_PX))
            .axis_desc_style(self.font(AXIS_PX))
            // Ticks only: draw_category_names writes the names.
            .x_labels(bars.len() + 1)
            .x_label_formatter(&|_| String::new())
            .disable_x_mesh();
        if counts {
            mesh.y_labels(((top - bottom).floor() as usize + 1).clamp(2, 10))
                .y_label_formatter(&whole);
        }
        mesh.draw().map_err(err)?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
                let x = i as f64;
                Rectangle::new([(x - 0.4, 0.0), (x + 0.4, *v)], colour(i).filled())
            }))
            .map_err(err)?;
        let names: Vec<(String, (i32, i32))> = bars
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (name.clone(), chart.backend_coord(&(i as f64, bottom))))
            .collect();
        self.draw_category_names(root, &names)
    }

    fn draw_matrix<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        rows: &[String],
        columns: &[String],
        values: &[Vec<f64>],
        max: f64,
    ) -> DrawResult {
        let (nr, nc) = (rows.len(), columns.len());
        let widest_row = rows.iter().map(|r| self.label_width(r)).max().unwrap_or(0);
        let y_band = widest_row + self.scaled(AXIS_PX) + TICK_GAP + 14;
        let mut chart = self
            .builder(root, self.x_label_band(), y_band)
            .build_cartesian_2d(
                (0..nc.max(1) - 1).into_segmented(),
                (0..nr.max(1) - 1).into_segmented(),
            )
            .map_err(err)?;
        // A segmented range a..b has one segment per value a..=b. Row 0 is drawn at the top,
        // so y segment i shows row nr−1−i.
        let label = |names: &[String], v: &SegmentValue<usize>, flip: bool| match v {
            SegmentValue::CenterOf(i) => {
                let i = if flip {
                    names.len().saturating_sub(1 + i)
                } else {
                    *i
                };
                names.get(i).cloned().unwrap_or_default()
            }
            _ => String::new(),
        };
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .label_style(self.font(LABEL_PX))
            .axis_desc_style(self.font(AXIS_PX))
            .x_labels(nc + 1)
            .y_labels(nr + 1)
            .x_label_formatter(&|v| label(columns, v, false))
            .y_label_formatter(&|v| label(rows, v, true))
            .draw()
            .map_err(err)?;
        let centered = Pos::new(HPos::Center, VPos::Center);
        for (r, row) in values.iter().enumerate() {
            for (c, &v) in row.iter().enumerate() {
                let t = if max > 0.0 {
                    (v / max).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let shade = RGBColor(
                    (255.0 - 200.0 * t) as u8,
                    (255.0 - 140.0 * t) as u8,
                    (255.0 - 60.0 * t) as u8,
                );
                let y = nr - 1 - r;
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [
                            (SegmentValue::Exact(c), SegmentValue::Exact(y)),
                            (SegmentValue::Exact(c + 1), SegmentValue::Exact(y + 1)),
                        ],
                        shade.filled(),
                    )))
                    .map_err(err)?;
                let text = if v.fract() == 0.0 && v.abs() < 1e6 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.2}")
                };
                let ink = if t > 0.6 { WHITE } else { BLACK };
                chart
                    .draw_series(std::iter::once(Text::new(
                        text,
                        (SegmentValue::CenterOf(c), SegmentValue::CenterOf(y)),
                        self.font(CELL_PX).color(&ink).pos(centered),
                    )))
                    .map_err(err)?;
            }
        }
        Ok(())
    }
}

/// How a box or bar chart writes its category names.
#[derive(Clone, Copy, Debug)]
struct CategoryAxis {
    /// Turned upright because the widest name is wider than one category's slot.
    upright: bool,
    /// Height of the band under the x axis (names and axis name), canvas pixels.
    band: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line() -> Plot {
        Plot::new(
            "Insertion",
            "fraction inserted",
            "probability",
            Chart::Lines {
                series: vec![Series {
                    label: "grad-cam".into(),
                    points: vec![(0.0, 0.1), (0.5, 0.6), (1.0, 0.9)],
                }],
                y_range: Some((0.0, 1.0)),
            },
        )
    }

    #[test]
    fn svg_keeps_text_and_png_decodes_at_the_requested_size() {
        let svg = line().svg().unwrap();
        assert!(svg.contains("<svg") && svg.contains("Insertion") && svg.contains("grad-cam"));
        let png = line().png().unwrap();
        let img = ::image::load_from_memory(&png).unwrap();
        assert_eq!((img.width(), img.height()), (640, 420));
        // Text and lines put non-white pixels on the canvas.
        assert!(
            img.to_rgb8()
                .pixels()
                .filter(|p| p.0 != [255, 255, 255])
                .count()
                > 1000
        );
    }

    #[test]
    fn box_statistics_by_hand() {
        // numpy: percentile([1..=9, 40], [25, 50, 75]) = 3.25, 5.5, 7.75; IQR 4.5, fences
        // -3.5 and 14.5: whiskers at 1 and 9 (data points, not the fences), 40 an outlier.
        let mut v: Vec<f64> = (1..=9).map(f64::from).collect();
        v.push(40.0);
        let b = BoxStats::of(&v).unwrap();
        assert_eq!((b.q1, b.median, b.q3), (3.25, 5.5, 7.75));
        assert_eq!((b.low, b.high), (1.0, 9.0));
        assert_eq!(b.outliers, vec![40.0]);
        assert!(BoxStats::of(&[f64::NAN]).is_none());
    }

    #[test]
    fn every_chart_kind_renders() {
        let charts = vec![
            Chart::Scatter {
                series: vec![Series {
                    label: "images".into(),
                    points: vec![(0.0, 1.0), (1.0, 2.0), (2.0, 5.0)],
                }],
                fit: Some(Fit {
                    coeffs: vec![1.0, 0.0, 1.0],
                    label: "quadratic".into(),
                    band: vec![(0.0, 0.5, 1.5), (1.0, 1.5, 2.5), (2.0, 4.0, 6.0)],
                }),
            },
            Chart::Boxes {
                groups: vec![
                    ("a".into(), vec![1.0, 2.0, 3.0]),
                    ("b".into(), vec![2.0, 2.5, 4.0]),
                ],
            },
            Chart::Bars {
                bars: vec![("x".into(), 0.4), ("y".into(), 0.9)],
            },
            Chart::Matrix {
                rows: vec!["r0".into(), "r1".into()],
                columns: vec!["c0".into(), "c1".into()],
                values: vec![vec![5.0, 1.0], vec![0.0, 7.0]],
                max: 7.0,
            },
        ];
        for chart in charts {
            let p = Plot::new("t's <x>", "x", "y", chart);
            let svg = p.svg().unwrap();
            assert!(svg.contains("<svg"));
            // The report's sanitiser keeps every element and attribute plotters draws.
            let clean = crate::report::svg::sanitize_svg(&svg).unwrap();
            assert_eq!(clean, svg.trim_end().replace("&apos;", "&#39;"));
            assert!(!p.png().unwrap().is_empty());
        }
    }

    /// The numeric attribute `name` of an SVG element's markup.
    fn attribute(element: &str, name: &str) -> f64 {
        let key = format!(" {name}=\"");
        let start = element.find(&key).unwrap() + key.len();
        let end = element[start..].find('"').unwrap() + start;
        element[start..end].parse().unwrap()
    }

    #[test]
    fn bars_of_counts_have_whole_number_ticks_only() {
        let bars = vec![("32×32".to_string(), 3.0), ("64×48".to_string(), 1.0)];
        let svg = Plot::new("sizes", "size", "images", Chart::Bars { bars })
            .svg()
            .unwrap();
        let labels: Vec<&str> = svg
            .split("<text")
            .skip(1)
            .filter_map(|t| t.split('>').nth(1)?.split('<').next())
            .map(str::trim)
            .collect();
        for count in ["0", "1", "2", "3"] {
            assert!(labels.contains(&count), "no tick {count}: {labels:?}");
        }
        assert!(
            !labels.iter().any(|l| l.contains('.')),
            "fractional tick: {labels:?}"
        );
    }

    #[test]
    fn bars_fill_the_plotting_area_with_no_empty_slot() {
        let bars = (0..5)
            .map(|i| (format!("augmentation:{i}"), 0.2 * f64::from(i)))
            .collect();
        let svg = Plot::new("flips", "augmentation", "share", Chart::Bars { bars })
            .svg()
            .unwrap();
        // The first rect is the canvas; then one per bar (zero-height ones included).
        let rects: Vec<&str> = svg.split("<rect").skip(2).collect();
        assert_eq!(rects.len(), 5);
        // The horizontal grid lines span the plotting area.
        let grid: Vec<(f64, f64)> = svg
            .split("<line")
            .skip(1)
            .filter(|l| attribute(l, "y1") == attribute(l, "y2"))
            .map(|l| (attribute(l, "x1"), attribute(l, "x2")))
            .filter(|(a, b)| (b - a).abs() > 200.0)
            .collect();
        let left = grid
            .iter()
            .map(|(a, b)| a.min(*b))
            .fold(f64::INFINITY, f64::min);
        let right = grid.iter().map(|(a, b)| a.max(*b)).fold(0.0, f64::max);
        let first = attribute(rects[0], "x");
        let last = attribute(rects[4], "x") + attribute(rects[4], "width");
        assert!(
            ((first - left) - (right - last)).abs() <= 1.0,
            "room left {} vs right {}",
            first - left,
            right - last
        );
    }

    #[test]
    fn text_of_a_wide_box_plot_stays_readable_in_the_page() {
        let groups: Vec<(String, Vec<f64>)> = (0..12)
            .map(|i| {
                (
                    format!("lrp-epsilon-plus-flat · brightness:{i}"),
                    vec![0.1, 0.5, 0.9],
                )
            })
            .collect();
        let mut plot = Plot::new(
            "stability",
            "method · augmentation",
            "Pearson",
            Chart::Boxes { groups },
        );
        plot.size = (2400, 520);
        let svg = plot.svg().unwrap();
        let shown = f64::from(PAGE_WIDTH) / 2400.0;
        let texts: Vec<&str> = svg.split("<text").skip(1).collect();
        assert!(texts.len() > 12);
        for t in &texts {
            assert!(attribute(t, "font-size") * shown >= 11.0, "{t}");
        }
        // Names too long for their slot are turned upright, and the canvas grows to hold them.
        let upright = texts
            .iter()
            .filter(|t| t.contains("brightness:") && t.contains("rotate(270"))
            .count();
        assert_eq!(upright, 12);
        assert!(plot.canvas_size().1 > 520);
    }
}
