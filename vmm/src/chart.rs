//! Bar charts as SVG text, drawn with `plotters` (its SVG backend only): stacked bars
//! (`ankh campaign report --svg`: one bar per policy, one segment per outcome) and
//! grouped bars (one group per workload, one bar per configuration).
//!
//! Every value is checked before anything is drawn: NaN, infinities and negative values
//! are a typed [`ChartError`], never a panic. Text is written as SVG `<text>` elements
//! (plotters without its `ttf` feature), so no font library is needed to draw a chart;
//! the viewer picks the font.

use std::ops::Range;

use plotters::coord::ranged1d::{AsRangedCoord, DefaultFormatting, KeyPointHint, ValueFormatter};
use plotters::prelude::*;

/// Why a chart could not be drawn.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ChartError {
    /// Nothing to draw.
    #[error("nothing to chart: {0}")]
    Empty(&'static str),
    /// A value is NaN or infinite.
    #[error("{what} is {value}, not a finite number")]
    NotFinite {
        /// Which value (bar and segment, or series and group).
        what: String,
        /// The value.
        value: f64,
    },
    /// A value is below zero: a bar's height is a count, a share or a rate.
    #[error("{what} is {value}; bar values must be >= 0")]
    Negative {
        /// Which value.
        what: String,
        /// The value.
        value: f64,
    },
    /// A series has not one value per group.
    #[error("series {series} has {values} values for {groups} groups")]
    SeriesLength {
        /// The series.
        series: String,
        /// Its values.
        values: usize,
        /// The groups.
        groups: usize,
    },
    /// More bars or series than a readable chart holds.
    #[error("{count} {what} is more than a chart shows ({max} at most)")]
    TooMany {
        /// Bars, groups, series or segments.
        what: &'static str,
        /// How many were given.
        count: usize,
        /// The most a chart takes.
        max: usize,
    },
    /// The drawing library failed.
    #[error("drawing the chart: {0}")]
    Draw(String),
}

/// How the y axis of a grouped bar chart maps values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scale {
    /// From 0, linearly.
    Linear,
    /// Powers of ten: the positive values span [`LOG_SCALE_SPAN`] or more, so that a
    /// linear axis would flatten the smallest bars to nothing.
    Log,
}

/// Ratio of the largest to the smallest positive value from which grouped bars use a
/// log axis (two orders of magnitude).
pub const LOG_SCALE_SPAN: f64 = 100.0;

/// Series and segment colours, in order (then hues spread over the circle): the first
/// five read as pass, fail, shutdown, crash, timeout.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0x4c, 0xaf, 0x50),
    RGBColor(0xff, 0xc1, 0x07),
    RGBColor(0x21, 0x96, 0xf3),
    RGBColor(0xf4, 0x43, 0x36),
    RGBColor(0x9e, 0x9e, 0x9e),
    RGBColor(0x9c, 0x27, 0xb0),
    RGBColor(0x00, 0xbc, 0xd4),
    RGBColor(0x79, 0x55, 0x48),
];

fn colour(index: usize) -> RGBColor {
    PALETTE.get(index).copied().unwrap_or_else(|| {
        // Golden-ratio hue steps keep neighbours apart however many series there are.
        let hue = (index as f64 * 0.618_034).fract();
        let (r, g, b) = HSLColor(hue, 0.6, 0.45).rgb();
        RGBColor(r, g, b)
    })
}

/// The most categories (bars of a stacked chart, groups of a grouped one) a chart
/// takes: past that, labels are unreadable anyway.
pub const MAX_CATEGORIES: usize = 200;
/// The most series (or distinct segments) a chart takes: each needs its own colour.
pub const MAX_SERIES: usize = 24;

fn at_most(what: &'static str, count: usize, max: usize) -> Result<(), ChartError> {
    if count > max {
        return Err(ChartError::TooMany { what, count, max });
    }
    Ok(())
}

/// The height of a chart with `legend` entries: at least 420 px, taller when the legend
/// needs it.
fn chart_height(legend: usize) -> u32 {
    let legend = u32::try_from(legend).unwrap_or(u32::MAX);
    legend.saturating_mul(22).saturating_add(80).max(420)
}
const LEGEND_WIDTH: u32 = 170;
const FONT: &str = "sans-serif";

/// One rectangle in chart coordinates (x in category units: category `i` spans
/// `i..i+1`), and its colour's index.
struct Bar {
    x: Range<f64>,
    y: Range<f64>,
    colour: usize,
}

/// What both kinds of chart draw: categories along x, rectangles, a legend.
struct Layout<'a> {
    title: &'a str,
    y_label: String,
    categories: Vec<String>,
    legend: Vec<String>,
    bars: Vec<Bar>,
    width: u32,
}

/// The x axis: `count` categories, category `i` spanning `i..i+1`, one tick (its
/// label) at each centre and no other.
struct CategoryAxis {
    count: usize,
}

impl Ranged for CategoryAxis {
    // Labels come from the chart's own formatter; the default one is never shown.
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let count = self.count.max(1) as f64;
        let share = value.clamp(0.0, count) / count;
        let pixels = f64::from(limit.0) + share * f64::from(limit.1 - limit.0);
        // Clamped above: between the two limits, which are i32.
        #[allow(clippy::cast_possible_truncation)]
        let pixel = pixels.round() as i32;
        pixel
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            return Vec::new();
        }
        (0..self.count).map(|i| i as f64 + 0.5).collect()
    }

    fn range(&self) -> Range<f64> {
        0.0..self.count as f64
    }
}

fn check(what: impl FnOnce() -> String, value: f64) -> Result<f64, ChartError> {
    if !value.is_finite() {
        return Err(ChartError::NotFinite {
            what: what(),
            value,
        });
    }
    if value < 0.0 {
        return Err(ChartError::Negative {
            what: what(),
            value,
        });
    }
    Ok(value)
}

/// Pixels for a category whose label is `label` and which holds `slots` bars: wide
/// enough that neither the bars nor the labels (about 7 px a character at 13 px)
/// crowd each other.
fn category_width(label: &str, slots: usize) -> u32 {
    let by_label = 7 * label.chars().count() + 16;
    let by_bars = 18 * slots + 30;
    u32::try_from(by_label.max(by_bars).max(60)).unwrap_or(u32::MAX)
}

/// Short tick labels: 1500 -> 1.5k, 2000000 -> 2M, 0.25 -> 0.25.
fn tick(value: &f64) -> String {
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    };
    let magnitude = value.abs();
    if magnitude >= 1e9 {
        format!("{}G", trim(format!("{:.2}", value / 1e9)))
    } else if magnitude >= 1e6 {
        format!("{}M", trim(format!("{:.2}", value / 1e6)))
    } else if magnitude >= 1e3 {
        format!("{}k", trim(format!("{:.2}", value / 1e3)))
    } else if magnitude >= 1.0 || magnitude == 0.0 {
        trim(format!("{value:.2}"))
    } else {
        trim(format!("{value:.4}"))
    }
}

/// The width of a chart whose categories take `categories` pixels: room for the
/// y axis, the legend, and the title (centred over the plot; about 10 px a character
/// at its size), at least `min`.
fn chart_width(title: &str, categories: u32, min: u32) -> u32 {
    let title = u32::try_from(10 * title.chars().count() + 40).unwrap_or(u32::MAX);
    (categories + 100)
        .max(title)
        .saturating_add(LEGEND_WIDTH)
        .max(min)
}

fn draw_error<E: std::error::Error + Send + Sync>(error: DrawingAreaErrorKind<E>) -> ChartError {
    ChartError::Draw(error.to_string())
}

/// Draws `layout` with the y axis `y` (linear or log): the one drawing routine of both
/// kinds of chart.
fn render<Y>(layout: &Layout, y: Y) -> Result<String, ChartError>
where
    Y: AsRangedCoord<Value = f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let mut svg = String::new();
    {
        let height = chart_height(layout.legend.len());
        let root = SVGBackend::with_string(&mut svg, (layout.width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_error)?;
        let (plot, legend) = root.split_horizontally(layout.width - LEGEND_WIDTH);
        let x = CategoryAxis {
            count: layout.categories.len(),
        };
        let mut chart = ChartBuilder::on(&plot)
            .caption(layout.title, (FONT, 22))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(x, y)
            .map_err(draw_error)?;
        let category = |x: &f64| {
            // Ticks sit at category centres only (the key points above).
            let index = x.floor();
            layout
                .categories
                .iter()
                .enumerate()
                .find(|&(i, _)| i as f64 == index)
                .map(|(_, label)| label.clone())
                .unwrap_or_default()
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(RGBColor(0xf2, 0xf2, 0xf2))
            .x_label_formatter(&category)
            .y_label_formatter(&tick)
            .y_desc(layout.y_label.as_str())
            .label_style((FONT, 15))
            .axis_desc_style((FONT, 16))
            .draw()
            .map_err(draw_error)?;
        chart
            .draw_series(layout.bars.iter().map(|bar| {
                Rectangle::new(
                    [(bar.x.start, bar.y.start), (bar.x.end, bar.y.end)],
                    colour(bar.colour).filled(),
                )
            }))
            .map_err(draw_error)?;
        for (index, name) in layout.legend.iter().enumerate() {
            // At most MAX_SERIES entries (checked by the callers): no overflow.
            let top = 48 + 22 * i32::try_from(index).unwrap_or_default();
            legend
                .draw(&Rectangle::new(
                    [(8, top), (22, top + 14)],
                    colour(index).filled(),
                ))
                .map_err(draw_error)?;
            legend
                .draw(&Text::new(name.as_str(), (28, top + 1), (FONT, 16)))
                .map_err(draw_error)?;
        }
        root.present().map_err(draw_error)?;
    }
    Ok(svg)
}

/// One stacked bar per entry of `bars` (its label, then its segments bottom to top),
/// as SVG. Segments of the same name share a colour and a legend entry (in order of
/// first appearance); a zero segment draws nothing. The y axis is linear, from 0 to the
/// highest bar.
pub fn stacked_bars(
    title: &str,
    y_label: &str,
    bars: &[(&str, Vec<(&str, f64)>)],
) -> Result<String, ChartError> {
    if bars.is_empty() {
        return Err(ChartError::Empty("no bars"));
    }
    at_most("bars", bars.len(), MAX_CATEGORIES)?;
    let mut legend: Vec<String> = Vec::new();
    let mut rects = Vec::new();
    let mut highest = 0.0_f64;
    for (index, (label, segments)) in bars.iter().enumerate() {
        let x = index as f64 + 0.2..index as f64 + 0.8;
        let mut total = 0.0;
        for &(segment, value) in segments {
            let value = check(|| format!("bar {label}, segment {segment}"), value)?;
            let colour = match legend.iter().position(|name| name == segment) {
                Some(colour) => colour,
                None => {
                    legend.push(segment.to_owned());
                    at_most("segment names", legend.len(), MAX_SERIES)?;
                    legend.len() - 1
                }
            };
            if value > 0.0 {
                rects.push(Bar {
                    x: x.clone(),
                    y: total..total + value,
                    colour,
                });
            }
            total += value;
        }
        if !total.is_finite() {
            return Err(ChartError::NotFinite {
                what: format!("the total of bar {label}"),
                value: total,
            });
        }
        highest = highest.max(total);
    }
    if legend.is_empty() {
        return Err(ChartError::Empty("the bars have no segments"));
    }
    let categories: Vec<String> = bars.iter().map(|(label, _)| (*label).to_owned()).collect();
    let width = chart_width(
        title,
        categories
            .iter()
            .map(|label| category_width(label, 2))
            .sum(),
        480,
    );
    let layout = Layout {
        title,
        y_label: y_label.to_owned(),
        categories,
        legend,
        bars: rects,
        width,
    };
    let top = if highest > 0.0 { highest } else { 1.0 };
    render(&layout, 0.0..top)
}

/// The y scale [`grouped_bars`] uses for `values`: [`Scale::Log`] when the positive
/// values span [`LOG_SCALE_SPAN`] or more, else [`Scale::Linear`].
pub fn scale_for(values: impl IntoIterator<Item = f64>) -> Scale {
    let (low, high) = values
        .into_iter()
        .filter(|v| *v > 0.0)
        .fold((f64::INFINITY, 0.0_f64), |(low, high), v| {
            (low.min(v), high.max(v))
        });
    if high > 0.0 && high / low >= LOG_SCALE_SPAN {
        Scale::Log
    } else {
        Scale::Linear
    }
}

/// One group per entry of `groups`, holding one bar per series (`series[s].1[g]` is
/// series `s` in group `g`), as SVG, with a legend of the series.
///
/// Values spanning three orders of magnitude (ops/s of a null call next to a file
/// copy) are handled with a log axis, chosen by [`scale_for`] and said in the axis
/// label: it runs from the power of ten at or below the smallest positive value to the
/// one at or above the largest, and each bar rises from the bottom of the axis. A zero
/// has no logarithm: on a log axis it draws no bar (the gap shows it).
pub fn grouped_bars(
    title: &str,
    y_label: &str,
    groups: &[&str],
    series: &[(&str, Vec<f64>)],
) -> Result<String, ChartError> {
    if groups.is_empty() {
        return Err(ChartError::Empty("no groups"));
    }
    if series.is_empty() {
        return Err(ChartError::Empty("no series"));
    }
    at_most("groups", groups.len(), MAX_CATEGORIES)?;
    at_most("series", series.len(), MAX_SERIES)?;
    for (name, values) in series {
        if values.len() != groups.len() {
            return Err(ChartError::SeriesLength {
                series: (*name).to_owned(),
                values: values.len(),
                groups: groups.len(),
            });
        }
        for (group, &value) in groups.iter().zip(values) {
            check(|| format!("series {name}, group {group}"), value)?;
        }
    }
    let all = || series.iter().flat_map(|(_, values)| values.iter().copied());
    let scale = scale_for(all());
    let highest = all().fold(0.0_f64, f64::max);
    let lowest_positive = all().filter(|v| *v > 0.0).fold(f64::INFINITY, f64::min);
    let (bottom, top) = match scale {
        Scale::Log => {
            let bottom = 10f64.powf(lowest_positive.log10().floor());
            let top = 10f64.powf(highest.log10().ceil());
            (bottom, if top > bottom { top } else { bottom * 10.0 })
        }
        // 5% above the highest bar, so that it does not touch the frame.
        Scale::Linear => (0.0, if highest > 0.0 { highest * 1.05 } else { 1.0 }),
    };
    // Bars fill 80% of their group, side by side.
    let slot = 0.8 / series.len() as f64;
    let mut bars = Vec::new();
    for (s, (_, values)) in series.iter().enumerate() {
        for (g, &value) in values.iter().enumerate() {
            if value <= 0.0 || (scale == Scale::Log && value < bottom) {
                continue;
            }
            let left = g as f64 + 0.1 + s as f64 * slot;
            bars.push(Bar {
                x: left..left + slot,
                y: bottom..value,
                colour: s,
            });
        }
    }
    let width = chart_width(
        title,
        groups
            .iter()
            .map(|label| category_width(label, series.len()))
            .sum(),
        560,
    );
    let layout = Layout {
        title,
        y_label: match scale {
            Scale::Log => format!("{y_label} (log scale)"),
            Scale::Linear => y_label.to_owned(),
        },
        categories: groups.iter().map(|g| (*g).to_owned()).collect(),
        legend: series.iter().map(|(name, _)| (*name).to_owned()).collect(),
        bars,
        width,
    };
    match scale {
        Scale::Log => render(&layout, (bottom..top).log_scale()),
        Scale::Linear => render(&layout, bottom..top),
    }
}

#[cfg(test)]
mod tests;
