//! `GET /dashboard`: summary tiles, one page of the machines table (`PAGE_ROWS` rows with CPU
//! and memory sparklines) and the cluster panel, rendered complete by the server. The page
//! never grows with the fleet: the rows come from the node's index with the API's cursor
//! paging (`?cursor=` from the previous page's "Next page" link, a plain link that works
//! without the script), and only the shown machines' histories are read.
//! `static/dashboard.js` then refreshes tiles, the current page's rows and the cluster panel
//! from the JSON API every few seconds, re-sorts and filters through the API's own
//! `sort`/`status`/`hostname`/`cursor` parameters (one implementation of the ordering, in
//! `fleet::view`), and shows a banner when the API is unreachable or the session ended.
//!
//! The markup of a row and of a node here and in the script must stay in step: both build the
//! same classes and cells.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use futures::StreamExt;
use maud::{Markup, html};

use super::chart::{self, Point};
use super::{Nav, age, error_page, html_response, layout};
use crate::cluster::{ClusterStatus, NodeState};
use crate::fleet::view::{ListParams, ListQuery, MachineView, Summary};
use crate::fleet::{HistoryPoint, Millis, TIERS};
use crate::server::AppState;
use crate::server::auth::LoggedIn;

/// How far back the sparklines reach, from the 1-minute rollups (at most 60 points each).
pub const SPARK_SPAN_MS: Millis = 3_600_000;
/// How many machines' histories are read from the store at once while rendering.
const HISTORY_READS_IN_FLIGHT: usize = 16;
/// How often the page refreshes itself (the script reads it from `data-refresh-ms`).
pub const REFRESH_MS: u64 = 5_000;
/// Machines per dashboard page (the script reads it from `data-page-rows`): the HTML, the
/// history reads and the browser's work per page stay the same at 100 or 100,000 machines.
pub const PAGE_ROWS: usize = 100;

/// The sortable columns: (API sort key, header, direction of the first click).
const COLUMNS: [(&str, &str, bool); 6] = [
    ("hostname", "Machine", false),
    ("cpu", "CPU", true),
    ("memory", "Memory", true),
    ("disk", "Disk", true),
    ("load", "Load", true),
    ("last_seen", "Last seen", false),
];

pub async fn page(
    user: LoggedIn,
    State(state): State<AppState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Response {
    let node_id = state.node().node_id().to_string();
    let q = page_query(params.ok().map(|Query(p)| p));
    let unavailable = |why: String| {
        error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Fleet data unavailable",
            &format!("{why}. The page will work again once the store is back; reload then."),
            &user,
            &node_id,
        )
    };
    let store = state.fleet().clone();
    let t = state.fleet_thresholds();
    // From the node's index: no request reads every machine, only the page's.
    let (summary, list, now) = match state.fleet_index().summary_and_page(&q, &t).await {
        Ok(v) => v,
        Err(e) => return unavailable(e.to_string()),
    };
    let cluster = state.cluster_status().await;
    let from = now - SPARK_SPAN_MS;
    let ids: Vec<String> = list.machines.iter().map(|m| m.machine_id.clone()).collect();
    let histories: Vec<Vec<HistoryPoint>> = futures::stream::iter(ids)
        .map(|id| {
            let store = store.clone();
            async move {
                store
                    .history(&id, TIERS[1], from, now)
                    .await
                    .unwrap_or_default()
            }
        })
        .buffered(HISTORY_READS_IN_FLIGHT)
        .collect()
        .await;

    let sort = q.sort_param();
    let cursor = q.cursor_param();
    let body = html! {
        div #dashboard data-refresh-ms=(REFRESH_MS) data-now=(now) data-spark-span=(SPARK_SPAN_MS)
            data-page-rows=(PAGE_ROWS) data-cursor=(cursor.clone().unwrap_or_default()) {
            div.page-head {
                h1 { "Fleet" }
                p.updated aria-live="polite" {
                    "Updated " time #updated-at datetime=(crate::cluster::rfc3339(now)) {
                        (chart::format_time(now, chart::TimeFormat::HourMinute)) " UTC"
                    }
                    span #updated-by {}
                }
            }
            div #banner-api .banner.bad role="alert" hidden {
                strong { "The fleet API cannot be reached." }
                " The numbers below are from " span.since {} "; retrying every "
                (REFRESH_MS / 1000) " s. " span.detail {}
            }
            div #banner-session .banner.warn role="alert" hidden {
                strong { "Your session has expired or you were logged out." }
                " Nothing on this page will update. " a href="/login" { "Log in again" }
            }
            (tiles(&summary))
            (cluster_panel(cluster.as_ref().map_err(|e| e.message.as_str()), &node_id))
            section.panel #machines aria-labelledby="machines-h" {
                div.panel-head {
                    h2 #machines-h { "Machines" }
                    p #machines-count {
                        (count_text(list.machines.len(), list.total, summary.total, cursor.is_some()))
                    }
                }
                form #filters method="get" action="/dashboard" role="search" {
                    div.field {
                        label for="f-hostname" { "Hostname contains" }
                        input #f-hostname type="search" name="hostname"
                            value=(q.hostname.clone().unwrap_or_default()) autocomplete="off";
                    }
                    div.field {
                        label for="f-status" { "Status" }
                        select #f-status name="status" {
                            option value="" selected[q.status.is_empty()] { "All" }
                            @for s in ["online", "stale", "offline"] {
                                option value=(s) selected[q.status.len() == 1 && q.status[0].as_str() == s] { (s) }
                            }
                        }
                    }
                    input #f-sort type="hidden" name="sort" value=(sort);
                    button type="submit" { "Apply" }
                }
                div.table-wrap {
                    table #machines-table {
                        caption.visually-hidden { "Machines; the column headers sort the table" }
                        thead {
                            tr {
                                th scope="col" { "Status" }
                                @for (key, label, desc_first) in COLUMNS {
                                    th scope="col" class=(column_class(key))
                                        aria-sort=(aria_sort(&q, key)) {
                                        button.sort type="button" data-key=(key)
                                            data-desc-first=(desc_first) {
                                            (label) span.arrow aria-hidden="true" { (arrow(&q, key)) }
                                        }
                                    }
                                }
                            }
                        }
                        tbody #machine-rows {
                            @for (m, h) in list.machines.iter().zip(&histories) {
                                (row(m, h, from, now))
                            }
                            @if list.machines.is_empty() {
                                tr.empty-row { td colspan="7" { (empty_text(summary.total)) } }
                            }
                        }
                    }
                }
                nav.pager #pager aria-label="Machine pages" {
                    a #page-first href=(dashboard_url(&q, None)) hidden[cursor.is_none()] {
                        "First page"
                    }
                    a #page-next rel="next"
                        href=(dashboard_url(&q, list.next_cursor.as_deref()))
                        hidden[list.next_cursor.is_none()] {
                        "Next page"
                    }
                }
            }
        }
    };
    html_response(
        StatusCode::OK,
        layout(
            "Dashboard",
            Nav::Dashboard,
            Some(&user),
            &node_id,
            &["dashboard.js"],
            body,
        ),
    )
}

/// The page the URL asks for, `PAGE_ROWS` long. A hand-edited or stale URL shows a page rather
/// than an error: a cursor that does not fit (garbled, or made for another sort) starts from
/// the first page with the URL's filters and sort; anything else wrong, the default view.
fn page_query(params: Option<ListParams>) -> ListQuery {
    let mut q = params
        .and_then(|p| {
            let without_cursor = ListParams {
                cursor: None,
                ..p.clone()
            };
            ListQuery::from_params(p)
                .or_else(|_| ListQuery::from_params(without_cursor))
                .ok()
        })
        .unwrap_or_default();
    q.limit = PAGE_ROWS;
    q.offset = 0;
    q
}

/// `/dashboard` with the filters and sort of `q`, starting after `cursor` (the same URL the
/// script writes into the address bar).
fn dashboard_url(q: &ListQuery, cursor: Option<&str>) -> String {
    let status: Vec<&str> = q.status.iter().map(|s| s.as_str()).collect();
    let status = status.join(",");
    let sort = q.sort_param();
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    if let Some(h) = &q.hostname {
        pairs.push(("hostname", h));
    }
    if !status.is_empty() {
        pairs.push(("status", &status));
    }
    if sort != "hostname" {
        pairs.push(("sort", &sort));
    }
    if let Some(c) = cursor {
        pairs.push(("cursor", c));
    }
    let query = serde_urlencoded::to_string(&pairs).unwrap_or_default();
    if query.is_empty() {
        "/dashboard".to_string()
    } else {
        format!("/dashboard?{query}")
    }
}

fn aria_sort(q: &ListQuery, key: &str) -> &'static str {
    let s = q.sort_param();
    if s == key {
        "ascending"
    } else if s.strip_prefix('-') == Some(key) {
        "descending"
    } else {
        "none"
    }
}

fn arrow(q: &ListQuery, key: &str) -> &'static str {
    match aria_sort(q, key) {
        "ascending" => " ▲",
        "descending" => " ▼",
        _ => "",
    }
}

/// Columns that give way on a phone.
fn column_class(key: &str) -> &'static str {
    match key {
        "disk" | "load" => "num hide-sm",
        "hostname" => "",
        _ => "num",
    }
}

/// `matching` counts from the cursor on when the page has one (`paged`). `dashboard.js`
/// writes the same text.
fn count_text(shown: usize, matching: usize, total: usize, paged: bool) -> String {
    if paged {
        format!("showing {shown} of {matching} matching from here on, {total} in the fleet")
    } else if shown < matching {
        format!("showing {shown} of {matching} matching, {total} in the fleet")
    } else {
        format!("{matching} of {total}")
    }
}

fn empty_text(total: usize) -> &'static str {
    if total == 0 {
        "No machine has reported yet. Start an agent: fleetctl agent --server URL"
    } else {
        "No machine matches the filter."
    }
}

fn tiles(s: &Summary) -> Markup {
    let tile = |id: &str, class: &str, label: &str, value: String| {
        html! {
            div class={ "tile " (class) } {
                span.label { (label) }
                span.value id=(id) { (value) }
            }
        }
    };
    html! {
        section.tiles aria-label="Fleet summary" {
            (tile("t-online", "ok", "Online", s.online.to_string()))
            (tile("t-stale", "warn", "Stale", s.stale.to_string()))
            (tile("t-offline", "bad", "Offline", s.offline.to_string()))
            (tile("t-total", "", "Machines", s.total.to_string()))
            (tile("t-cpu", "", "Avg CPU", format!("{:.1} %", s.averages.cpu_percent)))
            (tile("t-memory", "", "Avg memory", format!("{:.1} %", s.averages.memory_percent)))
            (tile("t-disk", "", "Avg fullest disk", format!("{:.1} %", s.averages.disk_percent)))
            (tile("t-load", "", "Avg load (1 min)", format!("{:.2}", s.averages.load1)))
        }
    }
}

/// One machine's row. `dashboard.js` builds the same markup for rows it adds.
fn row(m: &MachineView, history: &[HistoryPoint], from: Millis, now: Millis) -> Markup {
    let cpu: Vec<Point> = history.iter().map(|p| (p.t, p.cpu_percent)).collect();
    let mem: Vec<Point> = history.iter().map(|p| (p.t, p.memory_percent)).collect();
    let status = m.status.as_str();
    html! {
        tr data-id=(m.machine_id) class={ "st-" (status) } {
            td.status { span.dot aria-hidden="true" {} span.st { (status) } }
            td.host {
                a href={ "/machines/" (m.machine_id) } { (m.hostname) }
                span.sub { (m.machine_id) }
            }
            td.num {
                span.v.cpu { (format!("{:.1} %", m.cpu_percent)) }
                (chart::sparkline(&cpu, from, now, &format!("CPU of {}, last hour", m.hostname), "s-cpu"))
            }
            td.num {
                span.v.mem { (format!("{:.1} %", m.memory_percent)) }
                (chart::sparkline(&mem, from, now, &format!("Memory of {}, last hour", m.hostname), "s-mem"))
            }
            td.num.hide-sm { span.v.disk { (format!("{:.1} %", m.disk_percent)) } }
            td.num.hide-sm { span.v.load { (format!("{:.2}", m.load[0])) } }
            td.num.age { (age(m.last_seen_age_secs)) }
        }
    }
}

fn cluster_panel(cluster: Result<&ClusterStatus, &str>, node_id: &str) -> Markup {
    html! {
        section.panel #cluster aria-labelledby="cluster-h" {
            div.panel-head {
                h2 #cluster-h { "Cluster" }
                p #cluster-summary {
                    @match cluster {
                        Ok(c) => (cluster_summary(c)),
                        Err(_) => "unavailable",
                    }
                }
            }
            @if let Err(e) = cluster {
                p.error role="alert" { "The cluster registry cannot be read: " (e) }
            }
            div.table-wrap {
                table #nodes-table {
                    caption.visually-hidden { "Server nodes" }
                    thead {
                        tr {
                            th scope="col" { "Node" }
                            th scope="col" { "State" }
                            th scope="col" class="num" { "Heartbeat" }
                            th scope="col" class="hide-sm" { "Address" }
                            th scope="col" class="hide-sm" { "Version" }
                        }
                    }
                    tbody #node-rows {
                        @if let Ok(c) = cluster {
                            @for n in &c.nodes {
                                tr class={ "ns-" (n.status.as_str()) } data-id=(n.node_id) {
                                    td {
                                        code { (n.node_id) }
                                        @if n.leader { " " span.badge.leader { "leader" } }
                                        @if n.node_id == node_id { " " span.badge.self { "this page" } }
                                    }
                                    td.state { span.dot aria-hidden="true" {} (state_text(n.status)) }
                                    td.num { (age(n.heartbeat_age)) }
                                    td.hide-sm { (n.url) }
                                    td.hide-sm { (n.version) }
                                }
                            }
                        }
                    }
                }
            }
            p.served {
                "This page was rendered by " strong { code { (node_id) } }
                "; the last refresh was answered by " strong { code #refreshed-by { (node_id) } } "."
            }
        }
    }
}

fn cluster_summary(c: &ClusterStatus) -> String {
    format!(
        "{} of {} nodes active · {} backend · leader {}",
        c.active_nodes,
        c.total_nodes,
        c.backend,
        c.leader.as_deref().unwrap_or("none")
    )
}

fn state_text(s: NodeState) -> &'static str {
    s.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::view::SortKey;

    #[test]
    fn sort_state_is_announced() {
        let mut q = ListQuery::default();
        assert_eq!(q.sort_param(), "hostname");
        assert_eq!(aria_sort(&q, "hostname"), "ascending");
        assert_eq!(aria_sort(&q, "cpu"), "none");
        q.sort = SortKey::Cpu;
        q.descending = true;
        assert_eq!(q.sort_param(), "-cpu");
        assert_eq!(aria_sort(&q, "cpu"), "descending");
        assert_eq!(arrow(&q, "cpu"), " ▼");
    }

    #[test]
    fn page_links_keep_filters_and_sort() {
        let q = page_query(Some(ListParams {
            hostname: Some("web &1".into()),
            status: Some("online,stale".into()),
            sort: Some("-cpu".into()),
            limit: Some("1000".into()),
            ..ListParams::default()
        }));
        assert_eq!(
            q.limit, PAGE_ROWS,
            "the page size is the dashboard's, not the URL's"
        );
        assert_eq!(
            dashboard_url(&q, Some("abc")),
            "/dashboard?hostname=web+%261&status=online%2Cstale&sort=-cpu&cursor=abc"
        );
        assert_eq!(dashboard_url(&ListQuery::default(), None), "/dashboard");
    }

    #[test]
    fn a_cursor_that_does_not_fit_starts_from_the_first_page_of_the_same_view() {
        for cursor in ["garbage", "eyJzIjoiY3B1IiwidiI6MSwiaWQiOiJ4In0"] {
            let q = page_query(Some(ListParams {
                hostname: Some("web".into()),
                cursor: Some(cursor.into()),
                ..ListParams::default()
            }));
            assert_eq!(q.hostname.as_deref(), Some("web"), "{cursor}");
            assert_eq!(q.cursor_param(), None, "{cursor}");
        }
        let q = page_query(Some(ListParams {
            sort: Some("speed".into()),
            ..ListParams::default()
        }));
        assert_eq!(q.sort_param(), "hostname");
    }
}
