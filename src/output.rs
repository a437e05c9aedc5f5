//! Table and JSON rendering shared by all commands. With `--output json`, stdout carries
//! only JSON; human messages go to stderr.

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{Cell, Color, ContentArrangement, Table};
use serde::Serialize;

use crate::cluster::{ClusterStatus, NodeState};

/// Print `value` as pretty JSON on stdout.
pub fn print_json<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A table with the project's look; adapts to the terminal width.
pub fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(header.iter().map(Cell::new));
    t
}

fn state_cell(s: NodeState) -> Cell {
    let color = match s {
        NodeState::Active => Color::Green,
        NodeState::Draining => Color::Yellow,
        NodeState::Inactive => Color::Red,
        NodeState::Left => Color::DarkGrey,
    };
    Cell::new(s.as_str()).fg(color)
}

/// "4s ago", "3m ago", "2h ago".
pub fn age(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..=119 => format!("{s}s ago"),
        120..=7199 => format!("{}m ago", s / 60),
        7200..=172_799 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}

/// The node table of `cluster status` and `nodes list`, plus a one-line summary.
pub fn cluster_status(status: &ClusterStatus) -> String {
    let mut t = table(&[
        "",
        "NODE ID",
        "HOST",
        "URL",
        "STATE",
        "HEARTBEAT",
        "VERSION",
    ]);
    for n in &status.nodes {
        t.add_row(vec![
            Cell::new(if n.leader { "★" } else { "" }),
            Cell::new(&n.node_id),
            Cell::new(&n.hostname),
            Cell::new(&n.url),
            state_cell(n.status),
            Cell::new(age(n.heartbeat_age)),
            Cell::new(&n.version),
        ]);
    }
    let mut out = if status.nodes.is_empty() {
        "no nodes registered\n".to_string()
    } else {
        format!("{t}\n")
    };
    out.push_str(&summary(status));
    for p in &status.problems {
        out.push_str(&format!("\nwarning: {p}"));
    }
    out
}

pub fn summary(s: &ClusterStatus) -> String {
    format!(
        "{} node{}: {} active, {} draining, {} inactive, {} left · leader: {} · backend: {}{}",
        s.total_nodes,
        if s.total_nodes == 1 { "" } else { "s" },
        s.active_nodes,
        s.draining_nodes,
        s.inactive_nodes,
        s.left_nodes,
        s.leader.as_deref().unwrap_or("none"),
        s.backend,
        if s.enabled { "" } else { " (cluster mode off)" },
    )
}

/// One agent report as a two-column table (`fleetctl agent --once`).
pub fn report_table(r: &crate::fleet::Report) -> String {
    let gib = |b: u64| format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64);
    let mut t = table(&["METRIC", "VALUE"]);
    let rows: Vec<(&str, String)> = vec![
        ("machine_id", r.machine_id.clone()),
        ("hostname", r.hostname.clone()),
        ("os", format!("{} (kernel {})", r.os, r.kernel)),
        ("timestamp", r.timestamp.clone()),
        ("uptime", age(r.uptime_secs as f64).replace(" ago", "")),
        (
            "cpu",
            format!("{:.1} % of {} cores", r.cpu_percent, r.cpu_cores),
        ),
        (
            "load",
            format!("{:.2} {:.2} {:.2}", r.load[0], r.load[1], r.load[2]),
        ),
        (
            "memory",
            format!(
                "{} of {} ({:.0} %)",
                gib(r.memory.used_bytes),
                gib(r.memory.total_bytes),
                r.memory.used_percent()
            ),
        ),
        (
            "swap",
            format!("{} of {}", gib(r.swap.used_bytes), gib(r.swap.total_bytes)),
        ),
        (
            "network",
            format!("rx {} B, tx {} B", r.network.rx_bytes, r.network.tx_bytes),
        ),
    ];
    for (k, v) in rows {
        t.add_row(vec![Cell::new(k), Cell::new(v)]);
    }
    for d in &r.disks {
        t.add_row(vec![
            Cell::new(format!("disk {}", d.mount)),
            Cell::new(format!("{} of {}", gib(d.used_bytes), gib(d.total_bytes))),
        ]);
    }
    t.to_string()
}
