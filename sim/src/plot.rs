//! Plots of runs side by side: delivery ratio over time and latency CDF,
//! one line per input (policy).
//!
//! SVG with axis labels and a legend (SVG text needs no font files). PNG
//! copies are drawn without any text: plotters' bitmap text needs a font
//! backend that loads system fonts, which CI machines may not have.

use crate::report::Series;
use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Up to this many points per line (long series are thinned).
const MAX_POINTS: usize = 2000;

/// One line: label and points.
type Line = (String, Vec<(f64, f64)>);

/// Keeps at most [`MAX_POINTS`] evenly spaced points (and the last one).
fn thin(v: Vec<(f64, f64)>) -> Vec<(f64, f64)> {
    if v.len() <= MAX_POINTS {
        return v;
    }
    let step = v.len().div_ceil(MAX_POINTS);
    let last = v[v.len() - 1];
    let mut out: Vec<_> = v.into_iter().step_by(step).collect();
    out.push(last);
    out
}

/// Delivered fraction of created messages over time (a step line).
fn ratio_line(s: &Series) -> Vec<(f64, f64)> {
    let n = s.created.max(1) as f64;
    let mut v = vec![(0.0, 0.0)];
    for (i, t) in s.delivered_at_s.iter().enumerate() {
        v.push((*t, i as f64 / n));
        v.push((*t, (i + 1) as f64 / n));
    }
    thin(v)
}

/// Fraction of delivered messages with latency ≤ x.
fn cdf_line(s: &Series) -> Vec<(f64, f64)> {
    let n = s.latencies_s.len().max(1) as f64;
    let v = s
        .latencies_s
        .iter()
        .enumerate()
        .map(|(i, l)| (*l, (i + 1) as f64 / n))
        .collect();
    thin(v)
}

fn draw<DB: DrawingBackend>(
    area: DrawingArea<DB, Shift>,
    lines: &[Line],
    x_desc: &str,
    y_desc: &str,
    text: bool,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE)?;
    let x_max = lines
        .iter()
        .flat_map(|(_, v)| v.iter().map(|p| p.0))
        .fold(1e-9, f64::max);
    let mut b = ChartBuilder::on(&area);
    b.margin(20);
    if text {
        b.x_label_area_size(40).y_label_area_size(50);
    }
    let mut chart = b.build_cartesian_2d(0.0..x_max * 1.02, 0.0..1.0)?;
    if text {
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc(y_desc)
            .draw()?;
    } else {
        chart
            .configure_mesh()
            .disable_x_mesh()
            .disable_y_mesh()
            .draw()?;
    }
    for (i, (label, v)) in lines.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let s = chart.draw_series(LineSeries::new(v.iter().copied(), color.stroke_width(2)))?;
        if text {
            s.label(label.clone()).legend(move |(x, y)| {
                PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
            });
        }
    }
    if text {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    area.present()?;
    Ok(())
}

fn write_both(dir: &Path, stem: &str, lines: &[Line], x: &str, y: &str) -> Result<Vec<PathBuf>> {
    let svg = dir.join(format!("{stem}.svg"));
    draw(
        SVGBackend::new(&svg, (800, 500)).into_drawing_area(),
        lines,
        x,
        y,
        true,
    )
    .with_context(|| format!("drawing {}", svg.display()))?;
    let png = dir.join(format!("{stem}.png"));
    draw(
        BitMapBackend::new(&png, (800, 500)).into_drawing_area(),
        lines,
        x,
        y,
        false,
    )
    .with_context(|| format!("drawing {}", png.display()))?;
    Ok(vec![svg, png])
}

/// Reads the series files `inputs` and writes `delivery_ratio.{svg,png}`
/// and `latency_cdf.{svg,png}` into `out` (created if missing).
///
/// # Errors
/// If a file cannot be read or parsed, or a plot cannot be written.
pub fn plot_files(inputs: &[PathBuf], out: &Path) -> Result<()> {
    let mut series = Vec::new();
    for p in inputs {
        let text = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        let s: Series = serde_json::from_slice(&text)
            .with_context(|| format!("{}: not a series file (run --series)", p.display()))?;
        series.push(s);
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let ratio: Vec<Line> = series
        .iter()
        .map(|s| (s.router.clone(), ratio_line(s)))
        .collect();
    let cdf: Vec<Line> = series
        .iter()
        .map(|s| (s.router.clone(), cdf_line(s)))
        .collect();
    let mut written = write_both(out, "delivery_ratio", &ratio, "time (s)", "delivery ratio")?;
    written.extend(write_both(
        out,
        "latency_cdf",
        &cdf,
        "latency (s)",
        "fraction of delivered",
    )?);
    for p in written {
        println!("{}", p.display());
    }
    Ok(())
}
