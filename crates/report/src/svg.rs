//! Each figure drawn as an SVG string with plotters.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::ReportError;
use crate::figures::Figures;

const FONT: &str = "sans-serif";
const EDGE: RGBColor = RGBColor(52, 101, 164);
const BACKEND: RGBColor = RGBColor(204, 102, 0);
const GREY: RGBColor = RGBColor(150, 150, 150);

fn draw_err<E: std::fmt::Debug>(e: E) -> ReportError {
    ReportError::Draw(format!("{e:?}"))
}

/// Draws on a fresh SVG canvas and returns the document.
fn canvas(
    size: (u32, u32),
    draw: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<(), ReportError>,
) -> Result<String, ReportError> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, size).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        draw(&root)?;
        root.present().map_err(draw_err)?;
    }
    Ok(out)
}

/// Accuracy on the kept e-mails as the gate keeps more, with this run's
/// operating point.
pub fn coverage(f: &Figures) -> Result<String, ReportError> {
    let lo = f
        .coverage_curve
        .iter()
        .map(|p| p.accuracy)
        .fold(1.0f64, f64::min);
    let y0 = (lo - 0.02).clamp(0.0, 0.98);
    canvas((640, 400), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("Gate: coverage against accuracy", (FONT, 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..1f64, y0..1.0f64)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .x_desc("share kept at the edge")
            .y_desc("accuracy on kept e-mails")
            .x_label_formatter(&|x| format!("{:.0}%", 100.0 * x))
            .y_label_formatter(&|y| format!("{:.0}%", 100.0 * y))
            .draw()
            .map_err(draw_err)?;
        chart
            .draw_series(LineSeries::new(
                f.coverage_curve.iter().map(|p| (p.coverage, p.accuracy)),
                EDGE.stroke_width(2),
            ))
            .map_err(draw_err)?
            .label("edge, surest e-mails first")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], EDGE.stroke_width(2)));
        let p = f.operating_point;
        chart
            .draw_series(std::iter::once(Circle::new(
                (p.coverage, p.accuracy),
                6,
                BACKEND.filled(),
            )))
            .map_err(draw_err)?
            .label(format!(
                "this gate: keeps {:.1}% at {:.2}%",
                100.0 * p.coverage,
                100.0 * p.accuracy
            ))
            .legend(|(x, y)| Circle::new((x + 10, y), 5, BACKEND.filled()));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(GREY)
            .draw()
            .map_err(draw_err)?;
        Ok(())
    })
}

/// Accuracy against the calibrated probability, per bin, with the diagonal.
pub fn reliability(f: &Figures) -> Result<String, ReportError> {
    canvas((640, 400), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!(
                    "Reliability (expected calibration error {:.3})",
                    f.expected_calibration_error
                ),
                (FONT, 18),
            )
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..1f64, 0f64..1f64)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .x_desc("edge's probability for its label")
            .y_desc("share right")
            .draw()
            .map_err(draw_err)?;
        chart
            .draw_series(f.reliability.iter().filter(|b| b.count > 0).map(|b| {
                Rectangle::new(
                    [(b.lo + 0.01, 0.0), (b.hi - 0.01, b.accuracy)],
                    EDGE.mix(0.7).filled(),
                )
            }))
            .map_err(draw_err)?
            .label("share right, per bin")
            .legend(|(x, y)| Rectangle::new([(x, y - 5), (x + 16, y + 5)], EDGE.mix(0.7).filled()));
        chart
            .draw_series(LineSeries::new(vec![(0.0, 0.0), (1.0, 1.0)], GREY))
            .map_err(draw_err)?
            .label("perfectly calibrated")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREY));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(GREY)
            .draw()
            .map_err(draw_err)?;
        Ok(())
    })
}

/// Gold (rows) against predicted (columns) for the most confused labels;
/// sibling pairs are outlined.
pub fn confusion(
    f: &Figures,
    siblings: &dyn Fn(&str, &str) -> bool,
) -> Result<String, ReportError> {
    let k = f.matrix_labels.len();
    let cell = 34i32;
    let left = 190i32;
    let top = 50i32;
    let width = (left + cell * k as i32 + 20).max(360) as u32;
    let height = (top + cell * k as i32 + 180) as u32;
    let max_off = f
        .matrix
        .iter()
        .enumerate()
        .flat_map(|(g, row)| row.iter().enumerate().filter(move |(p, _)| *p != g))
        .map(|(_, &c)| c)
        .max()
        .unwrap_or(0)
        .max(1);
    canvas((width, height), |root| {
        let title = TextStyle::from((FONT, 18).into_font());
        root.draw(&Text::new(
            "Confusions among the most confused labels",
            (10, 12),
            title,
        ))
        .map_err(draw_err)?;
        if k == 0 {
            root.draw(&Text::new("no confusions", (10, 40), (FONT, 14)))
                .map_err(draw_err)?;
            return Ok(());
        }
        let small = TextStyle::from((FONT, 11).into_font());
        for (g, row) in f.matrix.iter().enumerate() {
            for (p, &c) in row.iter().enumerate() {
                let x = left + cell * p as i32;
                let y = top + cell * g as i32;
                let color = if g == p {
                    EDGE.mix(if c > 0 { 0.35 } else { 0.05 })
                } else {
                    BACKEND.mix(0.08 + 0.9 * c as f64 / max_off as f64)
                };
                root.draw(&Rectangle::new(
                    [(x, y), (x + cell - 1, y + cell - 1)],
                    color.filled(),
                ))
                .map_err(draw_err)?;
                if g != p && siblings(&f.matrix_labels[g], &f.matrix_labels[p]) {
                    root.draw(&Rectangle::new(
                        [(x + 1, y + 1), (x + cell - 2, y + cell - 2)],
                        BLACK.stroke_width(2),
                    ))
                    .map_err(draw_err)?;
                }
                if c > 0 {
                    root.draw(&Text::new(
                        c.to_string(),
                        (x + cell / 2, y + cell / 2),
                        small.pos(Pos::new(HPos::Center, VPos::Center)),
                    ))
                    .map_err(draw_err)?;
                }
            }
        }
        let label_style = TextStyle::from((FONT, 12).into_font());
        for (i, l) in f.matrix_labels.iter().enumerate() {
            root.draw(&Text::new(
                short(l),
                (left - 6, top + cell * i as i32 + cell / 2),
                label_style.pos(Pos::new(HPos::Right, VPos::Center)),
            ))
            .map_err(draw_err)?;
            // Column labels, turned so they fit under narrow cells.
            root.draw(&Text::new(
                short(l),
                (left + cell * i as i32 + cell / 2, top + cell * k as i32 + 6),
                label_style
                    .transform(FontTransform::Rotate90)
                    .pos(Pos::new(HPos::Left, VPos::Center)),
            ))
            .map_err(draw_err)?;
        }
        root.draw(&Text::new(
            "rows: gold label; columns: the edge's label; outlined: siblings",
            (10, 32),
            (FONT, 12),
        ))
        .map_err(draw_err)?;
        Ok(())
    })
}

fn short(label: &str) -> String {
    const MAX: usize = 28;
    if label.chars().count() <= MAX {
        label.to_string()
    } else {
        let cut: String = label.chars().take(MAX - 1).collect();
        format!("{cut}…")
    }
}

/// One horizontal bar group per label; `values` gives each series' name,
/// colour and value per label.
fn label_bars(
    title: &str,
    labels: &[String],
    series: &[(&str, RGBColor, Vec<f64>)],
) -> Result<String, ReportError> {
    let row = 18i32;
    let left = 200u32;
    let height = (90 + row * labels.len().max(1) as i32).max(200) as u32;
    canvas((720, height), |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(title, (FONT, 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(left)
            .build_cartesian_2d(0f64..1f64, 0f64..labels.len().max(1) as f64)
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_label_formatter(&|x| format!("{:.0}%", 100.0 * x))
            .draw()
            .map_err(draw_err)?;
        let band = 0.8 / series.len() as f64;
        for (s, (name, color, values)) in series.iter().enumerate() {
            let color = *color;
            chart
                .draw_series(values.iter().enumerate().map(|(i, &v)| {
                    // Label 0 at the top.
                    let y = (labels.len() - 1 - i) as f64 + 0.1 + band * s as f64;
                    Rectangle::new([(0.0, y), (v, y + band)], color.filled())
                }))
                .map_err(draw_err)?
                .label(*name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 16, y + 5)], color.filled())
                });
        }
        let style =
            TextStyle::from((FONT, 11).into_font()).pos(Pos::new(HPos::Right, VPos::Center));
        for (i, l) in labels.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(0.0, (labels.len() - i) as f64 - 0.5));
            root.draw(&Text::new(short(l), (x - 6, y), style.clone()))
                .map_err(draw_err)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(GREY)
            .draw()
            .map_err(draw_err)?;
        Ok(())
    })
}

/// Per-label precision and recall of the edge.
pub fn precision_recall(f: &Figures) -> Result<String, ReportError> {
    let labels: Vec<String> = f.per_label.iter().map(|l| l.label.clone()).collect();
    let p = f.per_label.iter().map(|l| l.precision).collect();
    let r = f.per_label.iter().map(|l| l.recall).collect();
    label_bars(
        "Per label: precision and recall (edge)",
        &labels,
        &[("precision", EDGE, p), ("recall", BACKEND, r)],
    )
}

/// Per-label share of e-mails the gate forwarded.
pub fn forwarded_share(f: &Figures) -> Result<String, ReportError> {
    let labels: Vec<String> = f.per_label.iter().map(|l| l.label.clone()).collect();
    let s = f.per_label.iter().map(|l| l.forwarded_share).collect();
    label_bars(
        &format!(
            "Per label: share forwarded (all labels: {:.1}%)",
            100.0 * f.forwarded_rate
        ),
        &labels,
        &[("forwarded", BACKEND, s)],
    )
}

/// Edge only against end to end: on all e-mails and on the forwarded ones.
pub fn end_to_end(f: &Figures) -> Result<String, ReportError> {
    let Some(e) = &f.end_to_end else {
        return canvas((640, 120), |root| {
            root.draw(&Text::new(
                "Edge only: no backend was used in this run",
                (10, 50),
                (FONT, 16),
            ))
            .map_err(draw_err)
        });
    };
    let labels = vec!["all e-mails".to_string(), "forwarded e-mails".to_string()];
    label_bars(
        "Edge only against end to end (accuracy)",
        &labels,
        &[
            ("edge only", EDGE, vec![e.accuracy_edge, e.forwarded_edge]),
            (
                "end to end",
                BACKEND,
                vec![e.accuracy_end_to_end, e.forwarded_end_to_end],
            ),
        ],
    )
}
