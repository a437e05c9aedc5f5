//! `GET /machines/{id}?range=1h|24h|7d`: one machine's facts and its CPU, memory, disk and
//! network charts over the chosen range, from the stored history at the finest resolution
//! that covers it (the same tier choice as `GET /api/fleet/machines/{id}`). An unknown machine
//! gets a 404 page; a machine without history in the range gets an empty state.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::chart::{self, Chart, Series, Unit};
use super::{Nav, age, bytes, error_page, html_response, layout};
use crate::fleet::view::MachineView;
use crate::fleet::{HistoryPoint, Millis, Tier};
use crate::server::AppState;
use crate::server::auth::LoggedIn;

/// The ranges offered: (query value, link text, length).
pub const RANGES: [(&str, &str, Millis); 3] = [
    ("1h", "1 hour", 3_600_000),
    ("24h", "24 hours", 86_400_000),
    ("7d", "7 days", 7 * 86_400_000),
];

#[derive(Debug, Default, Deserialize)]
pub struct MachineParams {
    range: Option<String>,
}

pub async fn page(
    user: LoggedIn,
    State(state): State<AppState>,
    Path(id): Path<String>,
    params: Result<Query<MachineParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let node_id = state.node().node_id().to_string();
    let wanted = params.ok().and_then(|Query(p)| p.range).unwrap_or_default();
    let (range, range_label, span) = RANGES
        .iter()
        .copied()
        .find(|(r, _, _)| *r == wanted)
        .unwrap_or(RANGES[0]);
    let unavailable = |why: String| {
        error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Fleet data unavailable",
            &format!("{why}. Reload once the store is back."),
            &user,
            &node_id,
        )
    };
    let store = state.fleet().clone();
    let rec = match store.machine(&id).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return error_page(
                StatusCode::NOT_FOUND,
                "Machine not found",
                &format!(
                    "No machine with the id `{id}` has reported to this fleet (or it was forgotten after a long silence)."
                ),
                &user,
                &node_id,
            );
        }
        Err(e) => return unavailable(e.to_string()),
    };
    let now = match store.now().await {
        Ok(n) => n,
        Err(e) => return unavailable(e.to_string()),
    };
    let from = now - span;
    let tier = Tier::for_range(from, now);
    let points = match store.history(&id, tier, from, now).await {
        Ok(p) => p,
        Err(e) => return unavailable(e.to_string()),
    };
    let m = MachineView::new(&rec, now, &state.fleet_thresholds());
    let body = html! {
        nav.crumbs aria-label="Breadcrumb" { a href="/dashboard" { "← Dashboard" } }
        div.page-head {
            h1 { (m.hostname) }
            span class={ "pill st-" (m.status.as_str()) } { span.dot aria-hidden="true" {} (m.status.as_str()) }
        }
        (facts(&m))
        section.panel aria-labelledby="history-h" {
            div.panel-head {
                h2 #history-h { "History" }
                nav.ranges aria-label="Time range" {
                    @for (r, label, _) in RANGES {
                        a href={ "/machines/" (m.machine_id) "?range=" (r) }
                            aria-current=[(r == range).then_some("page")] { (label) }
                    }
                }
            }
            p.sub {
                "Last " (range_label) " · " (points.len()) " points at "
                @if tier.bucket_ms == 0 { "full resolution (one per report)" }
                @else { (tier.bucket_ms / 60_000) "-minute resolution" }
            }
            @if points.is_empty() {
                div.empty-state {
                    p { strong { "No history in this range yet." } }
                    p { "The machine has not reported in the last " (range_label) ". Charts fill in as its agent reports." }
                }
            } @else {
                div.charts {
                    @for c in charts(&points, from, now) { (c.render()) }
                }
            }
        }
    };
    html_response(
        StatusCode::OK,
        layout(&m.hostname, Nav::Machine, Some(&user), &node_id, &[], body),
    )
}

fn facts(m: &MachineView) -> Markup {
    html! {
        section.panel aria-label="Machine facts" {
            dl.facts {
                div { dt { "Machine id" } dd { code { (m.machine_id) } } }
                div { dt { "Last seen" } dd { (age(m.last_seen_age_secs)) " (" (m.last_seen) ")" } }
                div { dt { "OS" } dd { (m.os) } }
                div { dt { "Kernel" } dd { (m.kernel) } }
                div { dt { "CPU" } dd { (format!("{:.1} %", m.cpu_percent)) " of " (m.cpu_cores) " cores" } }
                div { dt { "Load" } dd { (format!("{:.2} / {:.2} / {:.2}", m.load[0], m.load[1], m.load[2])) } }
                div { dt { "Memory" } dd { (bytes(m.memory.used_bytes as f64)) " of " (bytes(m.memory.total_bytes as f64)) (format!(" ({:.1} %)", m.memory_percent)) } }
                div { dt { "Uptime" } dd { (uptime(m.uptime_secs)) } }
                div { dt { "Agent" } dd { (m.agent_version) " · key " (m.api_key) } }
            }
            @if !m.disks.is_empty() {
                table.disks {
                    caption { "Disks" }
                    thead { tr { th scope="col" { "Mount" } th scope="col" class="num" { "Used" } th scope="col" class="num" { "Size" } th scope="col" { span.visually-hidden { "Usage bar" } } } }
                    tbody {
                        @for d in &m.disks {
                            @let pct = if d.total_bytes == 0 { 0.0 } else { d.used_bytes as f64 * 100.0 / d.total_bytes as f64 };
                            tr {
                                td { code { (d.mount) } }
                                td.num { (format!("{pct:.1} %")) }
                                td.num { (bytes(d.total_bytes as f64)) }
                                td { meter min="0" max="100" low="80" high="90" optimum="0" value=(format!("{pct:.1}")) { (format!("{pct:.1} %")) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn uptime(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else {
        format!("{m} min")
    }
}

/// The four charts of a machine page.
pub fn charts(points: &[HistoryPoint], from: Millis, to: Millis) -> [Chart; 4] {
    let series = |f: fn(&HistoryPoint) -> f64| -> Vec<chart::Point> {
        points.iter().map(|p| (p.t, f(p))).collect()
    };
    let single = points.iter().all(|p| p.samples <= 1);
    let mut cpu = vec![Series {
        label: "average",
        class: "s-cpu",
        points: series(|p| p.cpu_percent),
    }];
    // Rollups also keep each bucket's peak; raw reports have nothing more to show.
    if !single {
        cpu.push(Series {
            label: "peak",
            class: "s-cpu-max",
            points: series(|p| p.cpu_percent_max),
        });
    }
    [
        Chart {
            id: "chart-cpu",
            title: "CPU",
            unit: Unit::Percent,
            from,
            to,
            series: cpu,
        },
        Chart {
            id: "chart-memory",
            title: "Memory",
            unit: Unit::Percent,
            from,
            to,
            series: vec![Series {
                label: "used",
                class: "s-mem",
                points: series(|p| p.memory_percent),
            }],
        },
        Chart {
            id: "chart-disk",
            title: "Fullest disk",
            unit: Unit::Percent,
            from,
            to,
            series: vec![Series {
                label: "used",
                class: "s-disk",
                points: series(|p| p.disk_percent_max),
            }],
        },
        Chart {
            id: "chart-network",
            title: "Network",
            unit: Unit::BytesPerSec,
            from,
            to,
            series: vec![
                Series {
                    label: "received",
                    class: "s-rx",
                    points: chart::rates(&series(|p| p.rx_bytes)),
                },
                Series {
                    label: "sent",
                    class: "s-tx",
                    points: chart::rates(&series(|p| p.tx_bytes)),
                },
            ],
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_reads_naturally() {
        assert_eq!(uptime(59), "0 min");
        assert_eq!(uptime(3_700), "1 h 1 min");
        assert_eq!(uptime(2 * 86_400 + 7_200), "2 d 2 h");
    }
}
