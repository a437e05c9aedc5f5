//! `fleetctl cluster status --format nagios`: the cluster status as a monitoring plugin
//! (Nagios, Icinga, Sensu, Naemon) reports it — one status line with performance data, a few
//! lines of detail, and exit 0/1/2/3 = OK/WARNING/CRITICAL/UNKNOWN — following the Monitoring
//! Plugins development guidelines.
//!
//! Thresholds are on the number of *active* nodes and use the guidelines' range syntax
//! (`[@]start:end`, `~` for minus infinity); a bare number `N` means "at least N active",
//! the range `N:`, because fewer active nodes is what should alert. Pure functions: the CLI
//! reads the registry and prints what `render` returns.

use std::fmt;

use super::{ClusterStatus, NodeState};

/// A plugin's state, in the order of its exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum PluginState {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl PluginState {
    pub fn exit_code(self) -> u8 {
        self as u8
    }

    pub fn as_str(self) -> &'static str {
        match self {
            PluginState::Ok => "OK",
            PluginState::Warning => "WARNING",
            PluginState::Critical => "CRITICAL",
            PluginState::Unknown => "UNKNOWN",
        }
    }
}

/// A threshold range: the value is fine inside `start..=end` (or, with `@`, outside it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    pub start: f64,
    pub end: f64,
    /// `@`: alert when the value is *inside* the range.
    pub inside: bool,
}

impl Range {
    /// At least `n` (the range `n:`).
    pub fn at_least(n: f64) -> Range {
        Range {
            start: n,
            end: f64::INFINITY,
            inside: false,
        }
    }

    /// Parse `N` (at least N), `N:`, `~:N`, `N:M`, `@N:M`.
    pub fn parse(text: &str) -> Result<Range, String> {
        let t = text.trim();
        let bad = |why: &str| {
            format!(
                "`{text}` is not a threshold: {why}; write N (alert below N active nodes) or a \
                 Nagios range such as 2:, 1:3, ~:5 or @0:1"
            )
        };
        if t.is_empty() {
            return Err(bad("it is empty"));
        }
        let (inside, body) = match t.strip_prefix('@') {
            Some(rest) => (true, rest),
            None => (false, t),
        };
        let number = |s: &str| -> Result<f64, String> {
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| bad(&format!("`{s}` is not a number")))
        };
        let range = match body.split_once(':') {
            None if !inside => Range::at_least(number(body)?),
            None => Range {
                start: 0.0,
                end: number(body)?,
                inside,
            },
            Some((start, end)) => Range {
                start: match start {
                    "~" => f64::NEG_INFINITY,
                    "" => 0.0,
                    s => number(s)?,
                },
                end: if end.is_empty() {
                    f64::INFINITY
                } else {
                    number(end)?
                },
                inside,
            },
        };
        if range.start > range.end {
            return Err(bad("its start is above its end"));
        }
        Ok(range)
    }

    /// Whether `value` should raise this threshold's alert.
    pub fn alerts(&self, value: f64) -> bool {
        let within = self.start <= value && value <= self.end;
        if self.inside { within } else { !within }
    }
}

/// The range in the guidelines' syntax, for performance data.
impl fmt::Display for Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.inside {
            f.write_str("@")?;
        }
        if self.start == f64::NEG_INFINITY {
            f.write_str("~")?;
        } else if self.start != 0.0 || self.end.is_infinite() {
            write!(f, "{}", self.start)?;
        }
        if self.end.is_infinite() {
            f.write_str(":")
        } else if self.start == 0.0 && !self.inside {
            write!(f, "{}", self.end)
        } else {
            write!(f, ":{}", self.end)
        }
    }
}

/// What the plugin printed and how it exits.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub state: PluginState,
    /// The status line, performance data and detail lines, newline-terminated.
    pub text: String,
}

/// Judge `status` against the thresholds. `warning` defaults to "every node that has not
/// left is active"; `critical` to "at least one node is active". A cluster without a leader
/// is at least WARNING (its singleton jobs are not running).
pub fn check(
    status: &ClusterStatus,
    warning: Option<Range>,
    critical: Option<Range>,
) -> CheckResult {
    let expected = status.total_nodes.saturating_sub(status.left_nodes);
    let active = status.active_nodes as f64;
    let warning = warning.unwrap_or(Range::at_least(expected.max(1) as f64));
    let critical = critical.unwrap_or(Range::at_least(1.0));
    let mut state = if critical.alerts(active) {
        PluginState::Critical
    } else if warning.alerts(active) {
        PluginState::Warning
    } else {
        PluginState::Ok
    };
    if status.leader.is_none() && state == PluginState::Ok {
        state = PluginState::Warning;
    }

    let mut summary = format!("{}/{expected} nodes active", status.active_nodes);
    let not_active: Vec<String> = status
        .nodes
        .iter()
        .filter(|n| matches!(n.status, NodeState::Inactive | NodeState::Draining))
        .map(|n| format!("{} {}", n.node_id, n.status))
        .collect();
    if !not_active.is_empty() {
        summary.push_str(&format!(" ({})", not_active.join(", ")));
    }
    match &status.leader {
        Some(l) => summary.push_str(&format!(", leader {l}")),
        None => summary.push_str(", no leader"),
    }
    let total = status.total_nodes;
    let perf = format!(
        "active={};{warning};{critical};0;{total} draining={};;;0;{total} inactive={};;;0;{total} left={};;;0;{total} leader={};;;0;1",
        status.active_nodes,
        status.draining_nodes,
        status.inactive_nodes,
        status.left_nodes,
        u8::from(status.leader.is_some()),
    );
    let mut text = format!("FLEET {} - {summary} | {perf}\n", state.as_str());
    for n in &status.nodes {
        text.push_str(&format!(
            "{} {}{} heartbeat {:.1}s ago {}\n",
            n.node_id,
            n.status,
            if n.leader { " leader" } else { "" },
            n.heartbeat_age,
            n.url
        ));
    }
    for p in &status.problems {
        text.push_str(&format!("problem: {}\n", one_line(p)));
    }
    CheckResult { state, text }
}

/// The plugin output when the check could not judge the cluster: `Critical` when the registry
/// cannot be read (the cluster is unreachable from here), `Unknown` for bad arguments.
pub fn failure(state: PluginState, message: &str) -> CheckResult {
    CheckResult {
        state,
        text: format!("FLEET {} - {}\n", state.as_str(), one_line(message)),
    }
}

/// The status line must be one line, and `|` starts the performance data.
fn one_line(s: &str) -> String {
    s.replace(['\n', '\r'], " ").replace('|', "/")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::NodeView;

    fn node(id: &str, status: NodeState, leader: bool) -> NodeView {
        NodeView {
            node_id: id.into(),
            hostname: "h".into(),
            port: 1,
            status,
            last_heartbeat: "2026-01-01T00:00:00Z".into(),
            url: format!("http://h:{id}"),
            version: "0".into(),
            started_at: "2026-01-01T00:00:00Z".into(),
            heartbeat_age: 0.5,
            leader,
        }
    }

    fn status(states: &[NodeState], leader: Option<&str>) -> ClusterStatus {
        let nodes: Vec<NodeView> = states
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let id = format!("node-{}", i + 1);
                node(&id, *s, leader == Some(id.as_str()))
            })
            .collect();
        let count = |s: NodeState| nodes.iter().filter(|n| n.status == s).count();
        ClusterStatus {
            enabled: true,
            node_id: None,
            backend: "redis".into(),
            total_nodes: nodes.len(),
            active_nodes: count(NodeState::Active),
            inactive_nodes: count(NodeState::Inactive),
            draining_nodes: count(NodeState::Draining),
            left_nodes: count(NodeState::Left),
            leader: leader.map(str::to_string),
            nodes,
            problems: vec![],
        }
    }

    use NodeState::*;

    #[test]
    fn healthy_cluster_is_ok_with_the_documented_line() {
        let r = check(
            &status(&[Active, Active, Active], Some("node-1")),
            Some(Range::parse("2").unwrap()),
            Some(Range::parse("1").unwrap()),
        );
        assert_eq!(r.state, PluginState::Ok);
        let first = r.text.lines().next().unwrap();
        assert_eq!(
            first,
            "FLEET OK - 3/3 nodes active, leader node-1 | active=3;2:;1:;0;3 draining=0;;;0;3 inactive=0;;;0;3 left=0;;;0;3 leader=1;;;0;1"
        );
    }

    #[test]
    fn thresholds_pick_warning_and_critical() {
        let s = status(&[Active, Inactive, Inactive], Some("node-1"));
        let w = Some(Range::parse("2").unwrap());
        assert_eq!(
            check(&s, w, Some(Range::parse("1").unwrap())).state,
            PluginState::Warning
        );
        assert_eq!(
            check(&s, w, Some(Range::parse("2").unwrap())).state,
            PluginState::Critical
        );
        // Defaults: WARNING when any known node is not active, CRITICAL when none is.
        assert_eq!(check(&s, None, None).state, PluginState::Warning);
        let down = status(&[Inactive, Inactive], None);
        let r = check(&down, None, None);
        assert_eq!(r.state, PluginState::Critical);
        assert!(
            r.text.starts_with(
                "FLEET CRITICAL - 0/2 nodes active (node-1 inactive, node-2 inactive), no leader |"
            ),
            "{}",
            r.text
        );
    }

    #[test]
    fn no_leader_is_a_warning_and_left_nodes_are_not_expected() {
        let r = check(&status(&[Active, Active, Left], None), None, None);
        assert_eq!(r.state, PluginState::Warning);
        assert!(
            r.text
                .starts_with("FLEET WARNING - 2/2 nodes active, no leader |"),
            "{}",
            r.text
        );
    }

    #[test]
    fn ranges_follow_the_plugin_guidelines() {
        let r = Range::parse("10").unwrap();
        assert!(r.alerts(9.0) && !r.alerts(10.0) && !r.alerts(11.0));
        let r = Range::parse("1:3").unwrap();
        assert!(r.alerts(0.0) && !r.alerts(2.0) && r.alerts(4.0));
        let r = Range::parse("~:3").unwrap();
        assert!(!r.alerts(-5.0) && r.alerts(4.0));
        let r = Range::parse("@1:2").unwrap();
        assert!(r.alerts(1.0) && !r.alerts(3.0));
        let r = Range::parse("@2").unwrap();
        assert!(r.alerts(0.0) && r.alerts(2.0) && !r.alerts(3.0));
        for (text, shown) in [
            ("2", "2:"),
            ("2:", "2:"),
            ("1:3", "1:3"),
            ("~:3", "~:3"),
            ("@1:2", "@1:2"),
            (":5", "5"),
        ] {
            assert_eq!(Range::parse(text).unwrap().to_string(), shown, "{text}");
        }
    }

    #[test]
    fn bad_thresholds_say_what_to_write() {
        for bad in ["", "x", "3:1", "1:y", "@", "nan", "inf"] {
            let e = Range::parse(bad).unwrap_err();
            assert!(e.contains("Nagios range"), "{bad}: {e}");
        }
    }

    #[test]
    fn failures_are_one_line_without_perfdata_separator() {
        let r = failure(PluginState::Critical, "cannot reach redis://x|y\nnow");
        assert_eq!(r.text, "FLEET CRITICAL - cannot reach redis://x/y now\n");
        assert_eq!(r.state.exit_code(), 2);
    }
}
