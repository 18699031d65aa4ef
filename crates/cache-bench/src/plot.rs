//! SVG charts of `mrc` reports, drawn with plotters' SVG backend. Text is written as SVG
//! `<text>` elements and laid out by plotters' built-in estimate, so no system font is needed.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use plotters::prelude::*;

use crate::mrc::MrcReport;

/// Width and height of a chart, in pixels.
const SIZE: (u32, u32) = (900, 560);

/// Line colours, one per target in report order (then repeating): distinct on white.
const COLORS: [RGBColor; 6] = [
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(23, 23, 23),
];

/// Writes one miss-ratio curve per trace of `report` to `dir/mrc-<trace>.svg` (creating `dir`):
/// x is the cache size in entries on a log scale, y the miss ratio, one line per target, with a
/// legend. Returns the files written.
///
/// # Errors
///
/// If `dir` cannot be created or a file cannot be written.
pub fn mrc_curves(report: &MrcReport, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    for trace in &report.traces {
        let points: Vec<_> = report
            .points
            .iter()
            .filter(|p| p.trace == trace.trace)
            .collect();
        if points.is_empty() {
            continue;
        }
        let file_name: String = trace
            .trace
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = dir.join(format!("mrc-{file_name}.svg"));
        draw(report, &trace.trace, &points, trace.unique_keys, &path)
            .with_context(|| format!("drawing {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

#[expect(clippy::cast_precision_loss, reason = "entry counts far below 2^53")]
fn draw(
    report: &MrcReport,
    trace: &str,
    points: &[&crate::mrc::MrcPoint],
    unique_keys: u64,
    path: &Path,
) -> anyhow::Result<()> {
    let xs = points.iter().map(|p| p.size_entries as f64);
    let (x_min, x_max) = xs.fold((f64::MAX, 0.0f64), |(lo, hi), x| (lo.min(x), hi.max(x)));
    let ratios = points
        .iter()
        .flat_map(|p| p.targets.values().map(|f| f.miss_ratio));
    let (y_min, y_max) = ratios.fold((1.0f64, 0.0f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
    // Whole tenths around the data, at least one tenth tall.
    let mut y_lo = (y_min * 10.0).floor() / 10.0;
    let y_hi = ((y_max * 10.0).ceil() / 10.0).min(1.0);
    if y_hi - y_lo < 0.1 {
        y_lo = (y_hi - 0.1).max(0.0);
    }

    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("{trace}: miss ratio by cache size ({unique_keys} unique keys)"),
            ("sans-serif", 22),
        )
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d((x_min / 1.5..x_max * 1.5).log_scale(), y_lo..y_hi)?;
    chart
        .configure_mesh()
        .x_desc("cache size (entries, log scale)")
        .y_desc("miss ratio")
        .x_labels(12)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.2}"))
        .label_style(("sans-serif", 14))
        .draw()?;
    for (i, &name) in report.targets.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let line: Vec<(f64, f64)> = points
            .iter()
            .filter_map(|p| {
                p.targets
                    .get(name)
                    .map(|f| (p.size_entries as f64, f.miss_ratio))
            })
            .collect();
        chart
            .draw_series(LineSeries::new(line.iter().copied(), color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(2))
            });
        chart.draw_series(line.iter().map(|&xy| Circle::new(xy, 4, color.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()?;
    root.present()?;
    Ok(())
}
