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

const HEIGHT: u32 = 420;
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
        let root = SVGBackend::with_string(&mut svg, (layout.width, HEIGHT)).into_drawing_area();
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
            let top = 48 + 22 * i32::try_from(index).unwrap_or(i32::MAX / 32);
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
mod tests {
    use super::*;

    fn hex(index: usize) -> String {
        let RGBColor(r, g, b) = colour(index);
        format!("fill=\"#{r:02X}{g:02X}{b:02X}\"")
    }

    /// `<rect` elements filled with colour `index`.
    fn rects_of(svg: &str, index: usize) -> usize {
        let fill = hex(index);
        svg.lines()
            .filter(|line| line.trim_start().starts_with("<rect") && line.contains(&fill))
            .count()
    }

    fn assert_svg(svg: &str) {
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        assert!(svg.trim_end().ends_with("</svg>"));
        // Every element opened is closed, in order: well-formed as far as a chart goes.
        let mut open: Vec<&str> = Vec::new();
        for tag in svg.split('<').skip(1) {
            let end = tag.find('>').expect("a tag ends");
            let inside = &tag[..end];
            if let Some(name) = inside.strip_prefix('/') {
                assert_eq!(open.pop(), Some(name.trim()), "closing {name}");
            } else if !inside.ends_with('/') {
                let name = inside.split_whitespace().next().expect("a tag name");
                open.push(name);
            }
        }
        assert!(open.is_empty(), "left open: {open:?}");
    }

    fn text(svg: &str, label: &str) -> bool {
        svg.contains(&format!(">{label}<")) || svg.contains(&format!(">\n{label}\n<"))
    }

    #[test]
    fn stacked_bars_draw_one_rectangle_per_nonzero_segment_and_every_label() {
        let bars = [
            (
                "enhanced (n=10)",
                vec![("pass", 7.0), ("fail", 2.0), ("crash", 1.0)],
            ),
            (
                "none (n=10)",
                vec![("pass", 5.0), ("fail", 0.0), ("crash", 5.0)],
            ),
        ];
        let svg = stacked_bars("Survivability", "share of runs (%)", &bars).unwrap();
        assert_svg(&svg);
        for label in [
            "Survivability",
            "share of runs (%)",
            "enhanced (n=10)",
            "none (n=10)",
            "pass",
            "fail",
            "crash",
        ] {
            assert!(text(&svg, label), "{label} missing:\n{svg}");
        }
        // Each segment's colour: its nonzero bars, plus its legend swatch.
        assert_eq!(rects_of(&svg, 0), 2 + 1, "pass");
        assert_eq!(rects_of(&svg, 1), 1 + 1, "fail (zero in one bar)");
        assert_eq!(rects_of(&svg, 2), 2 + 1, "crash");
    }

    #[test]
    fn a_taller_segment_is_drawn_taller() {
        let svg = stacked_bars("t", "y", &[("a", vec![("low", 1.0), ("high", 3.0)])]).unwrap();
        let height = |index| {
            let line = svg
                .lines()
                .find(|l| l.starts_with("<rect") && l.contains(&hex(index)))
                .expect("a bar");
            let value = line.split("height=\"").nth(1).expect("a height");
            value[..value.find('"').expect("quoted")]
                .parse::<i32>()
                .expect("a number")
        };
        let (low, high) = (height(0), height(1));
        assert!((high - 3 * low).abs() <= 2, "{low} {high}");
    }

    #[test]
    fn grouped_bars_draw_one_rectangle_per_series_per_group() {
        let series = [
            ("kvm-none", vec![10.0, 20.0, 30.0]),
            ("kvm-enhanced", vec![9.0, 18.0, 27.0]),
            ("process-none", vec![12.0, 22.0, 35.0]),
            ("linux", vec![40.0, 50.0, 60.0]),
        ];
        let groups = ["syscall", "pipe", "fcopy-4k"];
        let svg = grouped_bars("ubench", "ops/s", &groups, &series).unwrap();
        assert_svg(&svg);
        for label in groups.iter().chain(series.iter().map(|(name, _)| name)) {
            assert!(text(&svg, label), "{label} missing");
        }
        assert!(text(&svg, "ops/s"), "a linear axis says no more");
        for s in 0..series.len() {
            assert_eq!(rects_of(&svg, s), groups.len() + 1, "series {s}");
        }
    }

    #[test]
    fn three_orders_of_magnitude_get_a_log_axis_where_small_bars_stay_visible() {
        let series = [("a", vec![2.0, 2500.0]), ("b", vec![3.0, 1800.0])];
        assert_eq!(
            scale_for(series.iter().flat_map(|s| s.1.clone())),
            Scale::Log
        );
        let svg = grouped_bars("mixed", "ops/s", &["null", "copy"], &series).unwrap();
        assert_svg(&svg);
        assert!(text(&svg, "ops/s (log scale)"));
        let smallest_height = svg
            .lines()
            .filter(|l| l.starts_with("<rect") && (l.contains(&hex(0)) || l.contains(&hex(1))))
            .filter_map(|l| {
                let value = l.split("height=\"").nth(1)?;
                value[..value.find('"')?].parse::<i32>().ok()
            })
            .min()
            .expect("bars");
        // On a linear axis 2 of 2500 would be under one pixel high.
        assert!(smallest_height >= 10, "{smallest_height}");
        assert_eq!(scale_for([1.0, 50.0, 0.0]), Scale::Linear);
    }

    #[test]
    fn zeros_are_empty_bars_on_either_axis() {
        let series = [("a", vec![0.0, 1.0, 1000.0])];
        let svg = grouped_bars("z", "y", &["x", "y", "z"], &series).unwrap();
        assert_eq!(rects_of(&svg, 0), 2 + 1);
        let svg = grouped_bars("z", "y", &["x"], &[("a", vec![0.0])]).unwrap();
        assert_eq!(rects_of(&svg, 0), 1, "the legend only");
    }

    #[test]
    fn empty_input_is_a_clear_error() {
        assert_eq!(
            stacked_bars("t", "y", &[]),
            Err(ChartError::Empty("no bars"))
        );
        assert_eq!(
            stacked_bars("t", "y", &[("a", vec![])]),
            Err(ChartError::Empty("the bars have no segments"))
        );
        assert_eq!(
            grouped_bars("t", "y", &[], &[("a", vec![])]),
            Err(ChartError::Empty("no groups"))
        );
        assert_eq!(
            grouped_bars("t", "y", &["g"], &[]),
            Err(ChartError::Empty("no series"))
        );
        let error = grouped_bars("t", "y", &["g", "h"], &[("a", vec![1.0])]).unwrap_err();
        assert_eq!(error.to_string(), "series a has 1 values for 2 groups");
    }

    #[test]
    fn nan_infinite_and_negative_values_are_refused() {
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let error = stacked_bars("t", "y", &[("p", vec![("pass", bad)])]).unwrap_err();
            assert!(
                matches!(&error, ChartError::NotFinite { what, .. } if what == "bar p, segment pass"),
                "{error:?}"
            );
            let error = grouped_bars("t", "y", &["g"], &[("s", vec![bad])]).unwrap_err();
            assert!(
                matches!(&error, ChartError::NotFinite { what, .. } if what == "series s, group g"),
                "{error:?}"
            );
        }
        let error = grouped_bars("t", "y", &["g"], &[("s", vec![-1.0])]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "series s, group g is -1; bar values must be >= 0"
        );
        // Finite segments whose sum is not.
        let error =
            stacked_bars("t", "y", &[("p", vec![("a", f64::MAX), ("b", f64::MAX)])]).unwrap_err();
        assert!(matches!(error, ChartError::NotFinite { .. }), "{error:?}");
    }

    #[test]
    fn labels_that_look_like_markup_are_escaped() {
        let svg = stacked_bars("a<b & c", "y", &[("x\"y", vec![("s", 1.0)])]).unwrap();
        assert_svg(&svg);
        assert!(svg.contains("a&lt;b &amp; c"), "{svg}");
    }

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(tick(&1500.0), "1.5k");
        assert_eq!(tick(&2_000_000.0), "2M");
        assert_eq!(tick(&0.25), "0.25");
        assert_eq!(tick(&0.0), "0");
        assert_eq!(tick(&100.0), "100");
    }
}
