//! Plots for studies and reports (plotters): line charts (insertion/deletion curves), scatter
//! plots with a fitted polynomial, box plots, bar charts and labelled matrices (confusion, IoU).
//! Each renders to SVG (text stays text) and to PNG (text drawn with the embedded DejaVu Sans).

use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

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

fn color(i: usize) -> RGBColor {
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

    /// SVG markup.
    pub fn svg(&self) -> Result<String, String> {
        // plotters measures text for layout even when it emits SVG text elements.
        ensure_font();
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, self.size).into_drawing_area();
            self.draw(&root)?;
            root.present().map_err(err)?;
        }
        Ok(out)
    }

    /// PNG bytes.
    pub fn png(&self) -> Result<Vec<u8>, String> {
        ensure_font();
        let (w, h) = self.size;
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
        let title_style = ("sans-serif", 18).into_font();
        match &self.chart {
            Chart::Lines { series, .. } | Chart::Scatter { series, fit: None }
                if series.is_empty() =>
            {
                root.titled(&self.title, title_style).map_err(err)?;
                Ok(())
            }
            Chart::Lines { series, y_range } => {
                let ((x0, x1), (mut y0, mut y1)) =
                    bounds(series.iter().flat_map(|s| s.points.iter().copied()));
                if let Some((a, b)) = y_range {
                    (y0, y1) = (*a, *b);
                }
                let mut chart = ChartBuilder::on(root)
                    .caption(&self.title, title_style)
                    .margin(12)
                    .x_label_area_size(40)
                    .y_label_area_size(56)
                    .build_cartesian_2d(x0..x1, y0..y1)
                    .map_err(err)?;
                chart
                    .configure_mesh()
                    .x_desc(&self.x_label)
                    .y_desc(&self.y_label)
                    .draw()
                    .map_err(err)?;
                for (i, s) in series.iter().enumerate() {
                    let c = color(i);
                    chart
                        .draw_series(LineSeries::new(s.points.iter().copied(), c.stroke_width(2)))
                        .map_err(err)?
                        .label(&s.label)
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                        });
                }
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK.mix(0.3))
                    .position(SeriesLabelPosition::UpperRight)
                    .draw()
                    .map_err(err)
            }
            Chart::Scatter { series, fit } => {
                let ((x0, x1), (y0, y1)) =
                    bounds(series.iter().flat_map(|s| s.points.iter().copied()));
                let mut chart = ChartBuilder::on(root)
                    .caption(&self.title, title_style)
                    .margin(12)
                    .x_label_area_size(40)
                    .y_label_area_size(56)
                    .build_cartesian_2d(x0..x1, y0..y1)
                    .map_err(err)?;
                chart
                    .configure_mesh()
                    .x_desc(&self.x_label)
                    .y_desc(&self.y_label)
                    .draw()
                    .map_err(err)?;
                for (i, s) in series.iter().enumerate() {
                    let c = color(i);
                    chart
                        .draw_series(s.points.iter().map(|&p| Circle::new(p, 3, c.filled())))
                        .map_err(err)?
                        .label(&s.label)
                        .legend(move |(x, y)| Circle::new((x + 9, y), 4, c.filled()));
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
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.85))
                    .border_style(BLACK.mix(0.3))
                    .position(SeriesLabelPosition::UpperRight)
                    .draw()
                    .map_err(err)
            }
            Chart::Boxes { groups } => {
                let all: Vec<f64> = groups
                    .iter()
                    .flat_map(|(_, v)| v.iter().copied())
                    .filter(|v| v.is_finite())
                    .collect();
                let (_, (y0, y1)) = bounds(all.iter().map(|&v| (0.0, v)));
                let labels: Vec<String> = groups.iter().map(|(l, _)| l.clone()).collect();
                let n = groups.len() as f64;
                // A numeric x axis (box i centred on x = i) so boxes, whiskers and outliers can be
                // drawn at exact offsets.
                let mut chart = ChartBuilder::on(root)
                    .caption(&self.title, title_style)
                    .margin(12)
                    .x_label_area_size(40)
                    .y_label_area_size(56)
                    .build_cartesian_2d(-0.5..n - 0.5, y0..y1)
                    .map_err(err)?;
                let label_of = |x: &f64| {
                    let i = x.round();
                    if (x - i).abs() < 1e-6 && i >= 0.0 {
                        labels.get(i as usize).cloned().unwrap_or_default()
                    } else {
                        String::new()
                    }
                };
                chart
                    .configure_mesh()
                    .x_desc(&self.x_label)
                    .y_desc(&self.y_label)
                    .x_labels(groups.len() + 1)
                    .x_label_formatter(&label_of)
                    .disable_x_mesh()
                    .draw()
                    .map_err(err)?;
                for (i, (_, values)) in groups.iter().enumerate() {
                    let Some(b) = BoxStats::of(values) else {
                        continue;
                    };
                    let x = i as f64;
                    let style = color(i).stroke_width(2);
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
                                .map(|&v| Circle::new((x, v), 2, color(i).stroke_width(1))),
                        )
                        .map_err(err)?;
                }
                Ok(())
            }
            Chart::Bars { bars } => {
                let labels: Vec<String> = bars.iter().map(|(l, _)| l.clone()).collect();
                let top = bars
                    .iter()
                    .map(|(_, v)| *v)
                    .fold(0.0f64, f64::max)
                    .max(1e-9)
                    * 1.1;
                let bottom = bars.iter().map(|(_, v)| *v).fold(0.0f64, f64::min) * 1.1;
                // Integer segments (one per bar) so each bar fills its segment, centred on its label.
                let n = bars.len() as i32;
                let mut chart = ChartBuilder::on(root)
                    .caption(&self.title, title_style)
                    .margin(12)
                    .x_label_area_size(40)
                    .y_label_area_size(56)
                    .build_cartesian_2d((0..n).into_segmented(), bottom..top)
                    .map_err(err)?;
                let label_of = |v: &SegmentValue<i32>| match v {
                    SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                        labels.get(*i as usize).cloned().unwrap_or_default()
                    }
                    SegmentValue::Last => String::new(),
                };
                chart
                    .configure_mesh()
                    .x_desc(&self.x_label)
                    .y_desc(&self.y_label)
                    .x_labels(bars.len())
                    .x_label_formatter(&label_of)
                    .draw()
                    .map_err(err)?;
                chart
                    .draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
                        let x = i as i32;
                        let mut r = Rectangle::new(
                            [
                                (SegmentValue::Exact(x), 0.0),
                                (SegmentValue::Exact(x + 1), *v),
                            ],
                            color(i).filled(),
                        );
                        r.set_margin(0, 0, 12, 12);
                        r
                    }))
                    .map_err(err)?;
                Ok(())
            }
            Chart::Matrix {
                rows,
                columns,
                values,
                max,
            } => {
                let (nr, nc) = (rows.len(), columns.len());
                let mut chart = ChartBuilder::on(root)
                    .caption(&self.title, title_style)
                    .margin(12)
                    .x_label_area_size(40)
                    .y_label_area_size(100)
                    .build_cartesian_2d(
                        (0..nc.max(1) - 1).into_segmented(),
                        (0..nr.max(1) - 1).into_segmented(),
                    )
                    .map_err(err)?;
                let cols = columns.clone();
                let rws = rows.clone();
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
                    .x_labels(nc + 1)
                    .y_labels(nr + 1)
                    .x_label_formatter(&|v| label(&cols, v, false))
                    .y_label_formatter(&|v| label(&rws, v, true))
                    .draw()
                    .map_err(err)?;
                let centered = plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Center,
                    plotters::style::text_anchor::VPos::Center,
                );
                for (r, row) in values.iter().enumerate() {
                    for (c, &v) in row.iter().enumerate() {
                        let t = if *max > 0.0 {
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
                                ("sans-serif", 16).into_font().color(&ink).pos(centered),
                            )))
                            .map_err(err)?;
                    }
                }
                Ok(())
            }
        }
    }
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
}
