//! The charts' tests: well-formed SVG, one rectangle per bar, every label, typed
//! errors for bad input.

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
fn too_many_bars_or_series_are_refused_and_a_long_legend_fits() {
    let names: Vec<String> = (0..=MAX_SERIES).map(|i| format!("s{i}")).collect();
    let series: Vec<(&str, Vec<f64>)> = names
        .iter()
        .map(|name| (name.as_str(), vec![1.0]))
        .collect();
    assert_eq!(
        grouped_bars("t", "y", &["g"], &series),
        Err(ChartError::TooMany {
            what: "series",
            count: MAX_SERIES + 1,
            max: MAX_SERIES
        })
    );
    let bars: Vec<(&str, Vec<(&str, f64)>)> = (0..=MAX_CATEGORIES)
        .map(|_| ("b", vec![("s", 1.0)]))
        .collect();
    assert!(matches!(
        stacked_bars("t", "y", &bars),
        Err(ChartError::TooMany { what: "bars", .. })
    ));
    // The most series: every legend entry inside the picture, in its own colour.
    let svg = grouped_bars("t", "y", &["g"], &series[..MAX_SERIES]).unwrap();
    let height: i32 = svg
        .split("height=\"")
        .nth(1)
        .and_then(|v| v[..v.find('"')?].parse().ok())
        .expect("the svg's height");
    for (s, (name, _)) in series[..MAX_SERIES].iter().enumerate() {
        assert_eq!(rects_of(&svg, s), 2, "{name}: its bar and its swatch");
        let swatch = svg
            .lines()
            .rfind(|l| l.starts_with("<rect") && l.contains(&hex(s)))
            .expect("a swatch");
        let y: i32 = swatch
            .split("y=\"")
            .nth(1)
            .and_then(|v| v[..v.find('"')?].parse().ok())
            .expect("a y");
        assert!(y + 14 < height, "{name} at {y} of {height}");
    }
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
