//! `slimc eval --plot` and `slimc search --plot`: accuracy against MACs, one line or one
//! set of markers per series. SVG or PNG by the file's extension; text
//! uses the bundled DejaVu Sans (assets/), so no system fonts are needed.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::FontStyle;

/// One point of a series.
#[derive(Clone, Debug)]
pub struct Point {
    pub series: String,
    /// Whether its series is drawn as a line (else as markers: fixed-width baselines,
    /// configuration pools).
    pub line: bool,
    pub macs: u64,
    /// Top-1 accuracy in [0, 1].
    pub top1: f64,
}

static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

pub fn pareto(path: &Path, title: &str, rows: &[Point]) -> Result<(), String> {
    plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).map_err(|_| "bundled font is invalid")?;
    let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let size = (800, 560);
    let result = match ext.as_deref() {
        Some("svg") => draw(SVGBackend::new(path, size).into_drawing_area(), title, rows),
        Some("png") => draw(BitMapBackend::new(path, size).into_drawing_area(), title, rows),
        _ => return Err(format!("--plot {}: use a .svg or .png file name", path.display())),
    };
    result.map_err(|e| format!("cannot draw {}: {e}", path.display()))
}

fn draw<DB: DrawingBackend>(
    area: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    rows: &[Point],
) -> Result<(), String>
where
    DB::ErrorType: 'static,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    area.fill(&WHITE).map_err(err)?;
    let macs: Vec<f64> = rows.iter().map(|r| r.macs as f64 / 1e6).collect();
    let accs: Vec<f64> = rows.iter().map(|r| 100.0 * r.top1).collect();
    let (x_lo, x_hi) = bounds(&macs);
    let (y_lo, y_hi) = bounds(&accs);
    let mut chart = ChartBuilder::on(&area)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(56)
        .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
        .map_err(err)?;
    chart.configure_mesh().x_desc("MACs (M)").y_desc("top-1 accuracy (%)").draw().map_err(err)?;
    let mut series: Vec<&str> = Vec::new();
    for r in rows {
        if !series.contains(&r.series.as_str()) {
            series.push(&r.series);
        }
    }
    for (i, name) in series.iter().enumerate() {
        let line = rows.iter().any(|r| r.series == *name && r.line);
        let mut points: Vec<(f64, f64)> =
            rows.iter().filter(|r| r.series == *name).map(|r| (r.macs as f64 / 1e6, 100.0 * r.top1)).collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let color = Palette99::pick(i).to_rgba();
        let label = name.to_string();
        if line {
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
            chart.draw_series(points.iter().map(|&p| Circle::new(p, 4, color.filled()))).map_err(err)?;
        } else {
            chart
                .draw_series(points.iter().map(|&p| TriangleMarker::new(p, 7, color.filled())))
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| TriangleMarker::new((x + 9, y), 6, color.filled()));
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    area.present().map_err(err)
}

/// A padded axis range around the values.
fn bounds(v: &[f64]) -> (f64, f64) {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(0.5);
    ((lo - pad).max(0.0), hi + pad)
}
