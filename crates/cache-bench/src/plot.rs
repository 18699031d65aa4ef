//! SVG charts of `mrc`, `replay` and `load` reports, drawn with plotters' SVG backend. Text is written as SVG
//! `<text>` elements and laid out by plotters' built-in estimate, so no system font is needed.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use plotters::prelude::*;

use crate::mrc::MrcReport;

/// Width and height of a chart, in pixels.
const SIZE: (u32, u32) = (900, 560);

/// Line colours, one per target in report order (then repeating): distinct on white.
const COLORS: [RGBColor; 8] = [
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(23, 23, 23),
    RGBColor(140, 86, 75),
    RGBColor(23, 190, 207),
];

/// The legend's key for a line of `color`: a short stroke.
fn line_key(color: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(2))
}

/// Draws the series' legend at `position`, the same box on every chart.
fn draw_legend<'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> anyhow::Result<()> {
    chart
        .configure_series_labels()
        .position(position)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()?;
    Ok(())
}

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
            .legend(line_key(color));
        chart.draw_series(line.iter().map(|&xy| Circle::new(xy, 4, color.filled())))?;
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    root.present()?;
    Ok(())
}

/// `-log10(1 - q)`: a quantile on the "nines" axis of a latency CDF (0.9 is 1, 0.99 is 2).
fn nines(q: f64) -> f64 {
    -(1.0 - q.min(MAX_QUANTILE)).log10()
}

/// The highest quantile a CDF is drawn to: 99.99%.
const MAX_QUANTILE: f64 = 0.9999;

/// Draws latency CDFs to `path`: one line per named curve of `[quantile, microseconds]`
/// points, quantiles on a "nines" axis (50%, 90%, 99%, 99.9%, 99.99%), latency on a log
/// scale.
///
/// # Errors
///
/// If the file cannot be written, or no curve has points.
pub fn latency_cdf(
    title: &str,
    curves: &std::collections::BTreeMap<String, Vec<[f64; 2]>>,
    path: &Path,
) -> anyhow::Result<()> {
    let values = curves
        .values()
        .flatten()
        .filter(|p| p[0] <= MAX_QUANTILE)
        .map(|p| p[1]);
    let (lo, hi) = values.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    anyhow::ensure!(hi > 0.0, "no latency to draw");
    let lo = lo.max(0.001);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..nines(MAX_QUANTILE), (lo / 1.5..hi * 1.5).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (µs, log scale)")
        .x_labels(5)
        .x_label_formatter(&|x| {
            let q = 1.0 - 10f64.powf(-x);
            format!("{}%", (q * 1e4).round() / 1e2)
        })
        .y_label_formatter(&|y| format!("{y}"))
        .label_style(("sans-serif", 14))
        .draw()?;
    for (i, (name, points)) in curves.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let line: Vec<(f64, f64)> = points
            .iter()
            .filter(|p| p[0] <= MAX_QUANTILE)
            .map(|p| (nines(p[0]), p[1].max(lo)))
            .collect();
        chart
            .draw_series(LineSeries::new(line, color.stroke_width(2)))?
            .label(name.as_str())
            .legend(line_key(color));
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    root.present()?;
    Ok(())
}

/// Draws stacked bars of each target's hit ratio by tier to `path`: memory (L1) hits at the
/// bottom, disk (L2) hits on top, so a bar's height is the target's whole hit ratio.
/// `targets` holds `(name, l1 hit ratio, l2 hit ratio)`.
///
/// # Errors
///
/// If the file cannot be written.
pub fn hit_ratio_bars(
    title: &str,
    targets: &[(String, f64, f64)],
    path: &Path,
) -> anyhow::Result<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let n = u32::try_from(targets.len()).unwrap_or(u32::MAX).max(1);
    let top = targets
        .iter()
        .map(|t| t.1 + t.2)
        .fold(0.0f64, f64::max)
        .mul_add(1.15, 0.0)
        .clamp(0.05, 1.0);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(60)
        // `n - 1` as the last value: a segmented range has a segment per value, ends included.
        .build_cartesian_2d((0..n - 1).into_segmented(), 0.0..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("target")
        .y_desc("hit ratio")
        .x_labels(targets.len())
        .x_label_formatter(&|x| match x {
            SegmentValue::CenterOf(i) => targets
                .get(*i as usize)
                .map_or_else(String::new, |t| t.0.clone()),
            _ => String::new(),
        })
        .y_label_formatter(&|y| format!("{y:.2}"))
        .label_style(("sans-serif", 14))
        .draw()?;
    let (l1, l2) = (COLORS[2], COLORS[3]);
    let bar = |i: u32, from: f64, to: f64, color: RGBColor| {
        let mut r = Rectangle::new(
            [
                (SegmentValue::Exact(i), from),
                (SegmentValue::Exact(i + 1), to),
            ],
            color.filled(),
        );
        r.set_margin(0, 0, 25, 25);
        r
    };
    chart
        .draw_series((0..n).zip(targets).map(|(i, t)| bar(i, 0.0, t.1, l1)))?
        .label("memory (L1) hits")
        .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], l1.filled()));
    chart
        .draw_series((0..n).zip(targets).map(|(i, t)| bar(i, t.1, t.1 + t.2, l2)))?
        .label("disk (L2) hits")
        .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], l2.filled()));
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    root.present()?;
    Ok(())
}

/// Writes a replay's plots into `dir` (creating it): `replay-hit-ratio.svg` (hit ratio by
/// tier, per target) and `replay-latency.svg` (request latency CDFs). Returns the files.
///
/// # Errors
///
/// If `dir` cannot be created or a file cannot be written.
pub fn replay_plots(
    report: &crate::report::ReplayReport,
    dir: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // A trace's file name, or the synthetic workload's name without its parameters.
    let source = report.source.split('(').next().unwrap_or_default();
    let source = Path::new(source)
        .file_name()
        .map_or_else(|| source.to_owned(), |n| n.to_string_lossy().into_owned());
    let mut targets = vec![(
        "tiered".to_owned(),
        report.l1_hit_ratio,
        report.l2_hit_ratio,
    )];
    targets.extend(
        report
            .peers
            .iter()
            .map(|(name, p)| (name.clone(), p.l1_hit_ratio, p.l2_hit_ratio)),
    );
    let hits = dir.join("replay-hit-ratio.svg");
    hit_ratio_bars(&format!("{source}: hit ratio by tier"), &targets, &hits)
        .with_context(|| format!("drawing {}", hits.display()))?;
    let latency = dir.join("replay-latency.svg");
    latency_cdf(
        &format!("{source}: latency per request (lookup, and insert on a miss)"),
        &report.latency_cdf_us,
        &latency,
    )
    .with_context(|| format!("drawing {}", latency.display()))?;
    Ok(vec![hits, latency])
}

/// Writes a load run's plots into `dir` (creating it): `load-throughput.svg` (Mops/s by thread
/// count, one line per target) and `load-latency.svg` (op latency CDFs at the last thread
/// count). Returns the files.
///
/// # Errors
///
/// If `dir` cannot be created or a file cannot be written.
pub fn load_plots(report: &crate::load::LoadReport, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let workload = crate::load::workload_label(&report.setup);
    let throughput = dir.join("load-throughput.svg");
    throughput_by_threads(
        &format!("{workload}: throughput by thread count"),
        &report.scaling,
        &throughput,
    )
    .with_context(|| format!("drawing {}", throughput.display()))?;
    let latency = dir.join("load-latency.svg");
    let curves = report
        .targets
        .iter()
        .map(|(name, f)| (name.clone(), f.latency_cdf_us.clone()))
        .collect();
    latency_cdf(
        &format!(
            "{workload}: latency per op, {} threads",
            report.setup.threads
        ),
        &curves,
        &latency,
    )
    .with_context(|| format!("drawing {}", latency.display()))?;
    Ok(vec![throughput, latency])
}

/// Draws Mops/s (log scale) against thread count to `path`, one line per target of `points`.
#[expect(clippy::cast_precision_loss, reason = "thread counts are small")]
fn throughput_by_threads(
    title: &str,
    points: &[crate::load::ScalingPoint],
    path: &Path,
) -> anyhow::Result<()> {
    let max_threads = points.iter().map(|p| p.threads).max().unwrap_or(1).max(1) as f64;
    let (min_mops, max_mops) = points
        .iter()
        .flat_map(|p| p.targets.values().map(|f| f.mops))
        .filter(|&m| m > 0.0)
        .fold((f64::MAX, 0.0f64), |(lo, hi), m| (lo.min(m), hi.max(m)));
    anyhow::ensure!(max_mops > 0.0, "no throughput to draw");
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(20)
        .x_label_area_size(50)
        .y_label_area_size(60)
        // A log scale: in-memory and disk-backed caches differ by orders of magnitude.
        .build_cartesian_2d(
            0.5..max_threads + 0.5,
            (min_mops / 1.5..max_mops * 1.5).log_scale(),
        )?;
    chart
        .configure_mesh()
        .x_desc("threads")
        .y_desc("Mops/s (log scale)")
        .x_labels(points.len().max(2))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y}"))
        .label_style(("sans-serif", 14))
        .draw()?;
    let names: std::collections::BTreeSet<&String> =
        points.iter().flat_map(|p| p.targets.keys()).collect();
    for (i, name) in names.into_iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let line: Vec<(f64, f64)> = points
            .iter()
            .filter_map(|p| p.targets.get(name).map(|f| (p.threads as f64, f.mops)))
            .collect();
        chart
            .draw_series(LineSeries::new(line.iter().copied(), color.stroke_width(2)))?
            .label(name.as_str())
            .legend(line_key(color));
        chart.draw_series(line.iter().map(|&xy| Circle::new(xy, 4, color.filled())))?;
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
    root.present()?;
    Ok(())
}
