//! Charts and sparklines as inline SVG, drawn by the server from stored history: no chart
//! library, no script, nothing to download. Pure functions from points to markup, so they are
//! unit-tested here and every node draws the same chart from the same history.
//!
//! Time runs left to right over the whole requested range (a machine that reported for ten
//! minutes of the last hour fills the right sixth of the chart, not all of it); a gap of more
//! than three usual point spacings breaks the line instead of drawing a straight line across
//! an outage. Times on the axis are UTC.

use maud::{Markup, html};
use time::OffsetDateTime;

use crate::fleet::Millis;

/// (time in ms since the epoch, value)
pub type Point = (Millis, f64);

/// What the values measure, which decides the y axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// 0 to 100 %.
    Percent,
    /// Bytes per second, axis scaled to the largest value.
    BytesPerSec,
}

/// One line on a chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: &'static str,
    /// CSS class giving the line its colour (`s-cpu`, `s-mem`, …).
    pub class: &'static str,
    pub points: Vec<Point>,
}

/// A chart over `[from, to]`.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Unique on the page; used for accessible ids.
    pub id: &'static str,
    pub title: &'static str,
    pub unit: Unit,
    pub from: Millis,
    pub to: Millis,
    pub series: Vec<Series>,
}

const W: f64 = 480.0;
const H: f64 = 200.0;
const LEFT: f64 = 58.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 26.0;

impl Chart {
    pub fn is_empty(&self) -> bool {
        self.series.iter().all(|s| s.points.is_empty())
    }

    /// The chart as a `<figure>`: caption with a legend (latest, average and peak of each
    /// series, which is also what a screen reader hears), then the SVG.
    pub fn render(&self) -> Markup {
        let (y_max, y_ticks) = y_axis(self.unit, self.max_value());
        let span = (self.to - self.from).max(1) as f64;
        let pw = W - LEFT - RIGHT;
        let ph = H - TOP - BOTTOM;
        let x = |t: Millis| LEFT + (t - self.from) as f64 / span * pw;
        let y = |v: f64| TOP + (1.0 - (v / y_max).clamp(0.0, 1.0)) * ph;
        let (x_ticks, x_format) = time_ticks(self.from, self.to);
        let title_id = format!("{}-title", self.id);
        let summary = self
            .series
            .iter()
            .map(|s| format!("{}: {}", s.label, stats_text(self.unit, &s.points)))
            .collect::<Vec<_>>()
            .join("; ");
        html! {
            figure.chart id=(self.id) {
                figcaption {
                    h3 { (self.title) }
                    ul.legend {
                        @for s in &self.series {
                            li {
                                span class={ "swatch " (s.class) } aria-hidden="true" {}
                                (s.label) " "
                                span.stats { (stats_text(self.unit, &s.points)) }
                            }
                        }
                    }
                }
                @if self.is_empty() {
                    p.empty { "No data in this range." }
                } @else {
                    svg viewBox={ "0 0 " (W) " " (H) } role="img" aria-labelledby=(title_id)
                        preserveAspectRatio="xMidYMid meet" {
                        title id=(title_id) { (self.title) ". " (summary) }
                        g.grid {
                            @for v in &y_ticks {
                                line x1=(LEFT) x2=(W - RIGHT) y1=(r1(y(*v))) y2=(r1(y(*v))) {}
                            }
                            @for t in &x_ticks {
                                line x1=(r1(x(*t))) x2=(r1(x(*t))) y1=(TOP) y2=(H - BOTTOM) {}
                            }
                        }
                        g.axis {
                            line x1=(LEFT) x2=(LEFT) y1=(TOP) y2=(H - BOTTOM) {}
                            line x1=(LEFT) x2=(W - RIGHT) y1=(H - BOTTOM) y2=(H - BOTTOM) {}
                            @for v in &y_ticks {
                                text.ytick x=(LEFT - 6.0) y=(r1(y(*v) + 4.0)) text-anchor="end" {
                                    (axis_value(self.unit, *v, y_max))
                                }
                            }
                            @for t in &x_ticks {
                                text.xtick x=(r1(x(*t))) y=(H - BOTTOM + 16.0) text-anchor="middle" {
                                    (format_time(*t, x_format))
                                }
                            }
                        }
                        @for s in &self.series {
                            g class={ "line " (s.class) } {
                                @for seg in segments(&s.points) {
                                    @if seg.len() == 1 {
                                        circle cx=(r1(x(seg[0].0))) cy=(r1(y(seg[0].1))) r="2" {}
                                    } @else {
                                        polyline points=(polyline(seg, &x, &y)) {}
                                    }
                                }
                            }
                        }
                    }
                    p.axis-note { (unit_note(self.unit, y_max)) " · time in UTC" }
                }
            }
        }
    }

    fn max_value(&self) -> f64 {
        self.series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .fold(0.0, f64::max)
    }
}

/// A sparkline of a percentage over `[from, to]`: a small SVG with the raw points in
/// `data-points`, so the dashboard's script can extend it with live values.
pub fn sparkline(points: &[Point], from: Millis, to: Millis, label: &str, class: &str) -> Markup {
    let span = (to - from).max(1) as f64;
    let x = |t: Millis| (t - from) as f64 / span * 100.0;
    let y = |v: f64| 23.0 - v.clamp(0.0, 100.0) / 100.0 * 22.0;
    let data = points
        .iter()
        .map(|(t, v)| format!("{t},{:.1}", v))
        .collect::<Vec<_>>()
        .join(";");
    html! {
        svg class={ "spark " (class) } viewBox="0 0 100 24" preserveAspectRatio="none"
            role="img" aria-label=(label) data-points=(data) {
            // The band shows the whole hour, so a machine that reported for two minutes
            // has a short line at the right, not a missing sparkline.
            rect.bg width="100" height="24" {}
            polyline points=(polyline(points, &x, &y)) {}
            @if let Some((t, v)) = points.last() {
                circle cx=(r1(x(*t))) cy=(r1(y(*v))) r="1.8" {}
            }
        }
    }
}

/// Per-second rates from monotonically increasing counters (network bytes). A counter that
/// went down (reboot) starts over: no negative rate, no point for that interval.
pub fn rates(counters: &[Point]) -> Vec<Point> {
    counters
        .windows(2)
        .filter_map(|w| {
            let ((t0, c0), (t1, c1)) = (w[0], w[1]);
            (t1 > t0 && c1 >= c0).then(|| (t1, (c1 - c0) / ((t1 - t0) as f64 / 1000.0)))
        })
        .collect()
}

/// Split where the gap between two points exceeds three times the median spacing.
pub fn segments(points: &[Point]) -> Vec<&[Point]> {
    if points.len() < 3 {
        return if points.is_empty() {
            vec![]
        } else if points.len() == 2 {
            vec![points]
        } else {
            vec![&points[..1]]
        };
    }
    let mut gaps: Vec<i64> = points.windows(2).map(|w| w[1].0 - w[0].0).collect();
    gaps.sort_unstable();
    let limit = gaps[gaps.len() / 2].max(1) * 3;
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..points.len() {
        if points[i].0 - points[i - 1].0 > limit {
            out.push(&points[start..i]);
            start = i;
        }
    }
    out.push(&points[start..]);
    out
}

fn polyline(points: &[Point], x: &impl Fn(Millis) -> f64, y: &impl Fn(f64) -> f64) -> String {
    points
        .iter()
        .map(|(t, v)| format!("{},{}", r1(x(*t)), r1(y(*v))))
        .collect::<Vec<_>>()
        .join(" ")
}

fn r1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The y axis: its top and the values that get a tick and a gridline.
pub fn y_axis(unit: Unit, max: f64) -> (f64, Vec<f64>) {
    match unit {
        Unit::Percent => (100.0, vec![0.0, 25.0, 50.0, 75.0, 100.0]),
        Unit::BytesPerSec => {
            let (scale, _) = byte_unit(max);
            let scaled = (max / scale).max(1.0);
            let step = nice_step(scaled / 4.0);
            let top = (scaled / step).ceil().max(1.0) * step;
            let ticks = (0..)
                .map(|i| i as f64 * step)
                .take_while(|v| *v <= top + step / 1000.0)
                .map(|v| v * scale)
                .collect();
            (top * scale, ticks)
        }
    }
}

/// 1, 2, 2.5 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let raw = raw.max(f64::MIN_POSITIVE);
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw * 0.999)
        .unwrap_or(10.0 * mag)
}

/// The binary unit an axis whose top is `max` bytes/s is labelled in.
fn byte_unit(max: f64) -> (f64, &'static str) {
    const UNITS: [(f64, &str); 4] = [
        (1_073_741_824.0, "GiB/s"),
        (1_048_576.0, "MiB/s"),
        (1024.0, "KiB/s"),
        (1.0, "B/s"),
    ];
    UNITS
        .iter()
        .copied()
        .find(|(s, _)| max >= *s)
        .unwrap_or((1.0, "B/s"))
}

fn axis_value(unit: Unit, v: f64, top: f64) -> String {
    match unit {
        Unit::Percent => format!("{v:.0} %"),
        Unit::BytesPerSec => {
            let (scale, name) = byte_unit(top);
            let s = v / scale;
            if s.fract().abs() < 1e-9 {
                format!("{s:.0} {name}")
            } else {
                format!("{s:.1} {name}")
            }
        }
    }
}

fn unit_note(unit: Unit, top: f64) -> String {
    match unit {
        Unit::Percent => "percent".into(),
        Unit::BytesPerSec => format!("{} (per second)", byte_unit(top).1),
    }
}

fn value_text(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Percent => format!("{v:.1} %"),
        Unit::BytesPerSec => format!("{}/s", super::bytes(v)),
    }
}

/// "latest 31.0 % · avg 28.4 % · peak 77.0 %"
fn stats_text(unit: Unit, points: &[Point]) -> String {
    let Some(last) = points.last() else {
        return "no data".into();
    };
    let avg = points.iter().map(|p| p.1).sum::<f64>() / points.len() as f64;
    let peak = points.iter().map(|p| p.1).fold(f64::MIN, f64::max);
    format!(
        "latest {} · avg {} · peak {}",
        value_text(unit, last.1),
        value_text(unit, avg),
        value_text(unit, peak)
    )
}

/// How time ticks are labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeFormat {
    /// 14:30
    HourMinute,
    /// Mon 12
    Day,
}

/// Tick times for `[from, to]`: at most seven, on round UTC times.
pub fn time_ticks(from: Millis, to: Millis) -> (Vec<Millis>, TimeFormat) {
    const MIN: i64 = 60_000;
    const STEPS: [i64; 13] = [
        MIN,
        2 * MIN,
        5 * MIN,
        10 * MIN,
        15 * MIN,
        30 * MIN,
        60 * MIN,
        120 * MIN,
        180 * MIN,
        360 * MIN,
        720 * MIN,
        1440 * MIN,
        2880 * MIN,
    ];
    let span = (to - from).max(1);
    let step = STEPS
        .iter()
        .copied()
        .find(|s| span / s <= 7)
        .unwrap_or(STEPS[STEPS.len() - 1]);
    let first = from.div_euclid(step) * step + if from.rem_euclid(step) == 0 { 0 } else { step };
    let ticks = (0..)
        .map(|i| first + i * step)
        .take_while(|t| *t <= to)
        .collect();
    let format = if step >= 1440 * MIN {
        TimeFormat::Day
    } else {
        TimeFormat::HourMinute
    };
    (ticks, format)
}

pub fn format_time(t: Millis, f: TimeFormat) -> String {
    let dt = OffsetDateTime::from_unix_timestamp(t.div_euclid(1000))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    match f {
        TimeFormat::HourMinute => format!("{:02}:{:02}", dt.hour(), dt.minute()),
        TimeFormat::Day => {
            let wd = dt.weekday().to_string();
            format!("{} {}", &wd[..3], dt.day())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;
    const HOUR: i64 = 60 * MIN;

    #[test]
    fn time_ticks_are_round_and_few() {
        // 2026-01-05 was a Monday.
        let monday = 1_767_571_200_000;
        let (t, f) = time_ticks(monday + 10 * HOUR + 3 * MIN, monday + 11 * HOUR + 3 * MIN);
        assert_eq!(f, TimeFormat::HourMinute);
        assert_eq!(t.len(), 6);
        assert_eq!(format_time(t[0], f), "10:10");
        let (t, f) = time_ticks(monday, monday + 24 * HOUR);
        assert_eq!(
            t.iter().map(|t| format_time(*t, f)).collect::<Vec<_>>(),
            ["00:00", "06:00", "12:00", "18:00", "00:00"]
        );
        let (t, f) = time_ticks(monday - 7 * 24 * HOUR + 5 * HOUR, monday + 5 * HOUR);
        assert_eq!(f, TimeFormat::Day);
        assert_eq!(t.len(), 7);
        assert_eq!(format_time(*t.last().unwrap(), f), "Mon 5");
    }

    #[test]
    fn byte_axes_get_nice_units() {
        let (top, ticks) = y_axis(Unit::BytesPerSec, 3.3 * 1_048_576.0);
        assert_eq!(top, 4.0 * 1_048_576.0);
        assert_eq!(ticks.len(), 5);
        assert_eq!(axis_value(Unit::BytesPerSec, ticks[1], top), "1 MiB/s");
        let (top, ticks) = y_axis(Unit::BytesPerSec, 0.0);
        assert!(top >= 1.0 && ticks.len() >= 2, "{top} {ticks:?}");
        assert_eq!(y_axis(Unit::Percent, 3.0).0, 100.0);
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(2.2), 2.5);
        assert_eq!(nice_step(31.0), 50.0);
    }

    #[test]
    fn rates_skip_counter_resets_and_gaps_break_lines() {
        let r = rates(&[(0, 0.0), (1000, 500.0), (2000, 100.0), (4000, 300.0)]);
        assert_eq!(r, vec![(1000, 500.0), (4000, 100.0)]);
        let pts: Vec<Point> = [0, 10, 20, 30, 200, 210, 220]
            .iter()
            .map(|s| (s * 1000, 1.0))
            .collect();
        let segs = segments(&pts);
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[1].len(), 3);
        assert_eq!(segments(&pts[..1]).len(), 1);
        assert!(segments(&[]).is_empty());
    }

    #[test]
    fn chart_has_axes_units_and_an_accessible_title() {
        let c = Chart {
            id: "cpu",
            title: "CPU",
            unit: Unit::Percent,
            from: 0,
            to: HOUR,
            series: vec![Series {
                label: "average",
                class: "s-cpu",
                points: vec![(10 * MIN, 20.0), (11 * MIN, 40.0), (12 * MIN, 30.0)],
            }],
        };
        let html = c.render().into_string();
        assert!(html.contains("aria-labelledby=\"cpu-title\""), "{html}");
        assert!(html.contains(">100 %</text>") && html.contains(">0 %</text>"));
        assert!(html.contains(">00:10</text>"));
        assert!(html.contains("<polyline"));
        assert!(html.contains("latest 30.0 % · avg 30.0 % · peak 40.0 %"));
        let empty = Chart {
            series: vec![],
            ..c
        };
        assert!(
            empty
                .render()
                .into_string()
                .contains("No data in this range.")
        );
    }

    #[test]
    fn sparkline_keeps_its_data_for_the_script() {
        let s = sparkline(&[(0, 0.0), (50, 100.0)], 0, 100, "CPU", "s-cpu").into_string();
        assert!(s.contains("data-points=\"0,0.0;50,100.0\""), "{s}");
        assert!(s.contains("points=\"0,23 50,1\""), "{s}");
    }
}
