//! The report an agent sends (`POST /api/fleet/report`) and its validation.
//!
//! Raw bytes and a validated `Report` are different stages: `Report::parse` checks the
//! content type, size, JSON syntax, nesting depth, types (naming the field by its path, e.g.
//! `memory.used_bytes`) and then the values (ranges, clock skew). Only a report that passed
//! every check reaches a store, so a rejected report stores nothing.
//!
//! Unknown fields are ignored rather than refused, so a newer agent can report to an older
//! server during a rolling upgrade; every field listed here is required.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{HISTORY_SPAN_MS, Millis};

/// Largest report body accepted. A real report is 1–3 KiB; 64 KiB leaves room for hosts with
/// hundreds of mounts.
pub const REPORT_BODY_LIMIT: usize = 64 * 1024;
/// A report is at most this deep (object → disks array → disk object); anything deeper is
/// not a report, whatever else it is.
pub const MAX_DEPTH: usize = 5;
/// How far in the future (on the server's clock) a report's timestamp may be: agents' clocks
/// drift, but not by more than this on a managed host.
pub const MAX_CLOCK_SKEW_MS: Millis = 5 * 60 * 1000;
const MAX_DISKS: usize = 256;
const MAX_BYTES: u64 = 1 << 60;
const MAX_LOAD: f64 = 100_000.0;
const MAX_UPTIME_SECS: u64 = 100 * 365 * 86_400;

/// One agent report: the machine's identity and its metrics at `timestamp`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Stable id of the machine (`/etc/machine-id` by default): letters, digits, `.`, `_`,
    /// `-`, `:`; at most 128 characters.
    pub machine_id: String,
    pub hostname: String,
    /// Operating system name and version ("Debian GNU/Linux 13").
    pub os: String,
    pub kernel: String,
    pub agent_version: String,
    /// When the agent measured, RFC 3339.
    pub timestamp: String,
    pub uptime_secs: u64,
    /// CPU busy time as a percentage of the machine's whole capacity (all cores): 0–100.
    pub cpu_percent: f64,
    pub cpu_cores: u32,
    /// 1, 5 and 15-minute load averages.
    pub load: [f64; 3],
    pub memory: Usage,
    pub swap: Usage,
    pub disks: Vec<Disk>,
    pub network: Network,
}

/// Used and total bytes of memory or swap.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    pub total_bytes: u64,
    pub used_bytes: u64,
}

impl Usage {
    pub fn used_percent(&self) -> f64 {
        if self.total_bytes == 0 {
            0.0
        } else {
            self.used_bytes as f64 * 100.0 / self.total_bytes as f64
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Disk {
    pub mount: String,
    pub total_bytes: u64,
    pub used_bytes: u64,
}

/// Network counters since boot, summed over interfaces.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Network {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
}

/// Why a report was refused. Every variant's message names the field or the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// 415: not `application/json`.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 413: larger than `REPORT_BODY_LIMIT`.
    #[error("{0}")]
    TooLarge(String),
    /// 400: not JSON, too deep, or a field of the wrong type or missing.
    #[error("{0}")]
    Malformed(String),
    /// 422: well-formed, but a value is impossible (cpu 900 %, a timestamp next week).
    #[error("{0}")]
    Invalid(String),
}

impl Report {
    /// Validate a request body. `content_type` is the header value, `now` the server's clock.
    pub fn parse(
        content_type: Option<&str>,
        body: &[u8],
        now: Millis,
    ) -> Result<Report, ReportError> {
        Report::parse_with(content_type, body, Some(now))
    }

    fn parse_with(
        content_type: Option<&str>,
        body: &[u8],
        now: Option<Millis>,
    ) -> Result<Report, ReportError> {
        let is_json = content_type.is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
        if !is_json {
            return Err(ReportError::UnsupportedMediaType(format!(
                "Content-Type must be application/json, not {}",
                content_type.map_or("(none)".to_string(), |c| format!("`{c}`"))
            )));
        }
        if body.len() > REPORT_BODY_LIMIT {
            return Err(too_large(body.len()));
        }
        // One pass over the bytes for the nesting depth, then one typed parse straight from
        // the bytes: no intermediate `serde_json::Value` (it was a third of a report's cost).
        let (first, depth) = shape(body);
        if depth > MAX_DEPTH {
            return Err(ReportError::Malformed(format!(
                "JSON nested {depth} levels deep; a report is at most {MAX_DEPTH}"
            )));
        }
        // The plain parse first; only a body it refuses is parsed again with the path tracking
        // that names the bad field (tracking every field of every report cost a fifth of
        // the node's time per report).
        let report = match serde_json::from_slice::<Report>(body) {
            Ok(report) => report,
            Err(_) => parse_explained(body, first)?,
        };
        match now {
            Some(now) => report.check(now)?,
            None => report.check_fields()?,
        }
        Ok(report)
    }

    /// Like [`Report::parse`] without the timestamp's range check, which the store makes
    /// against its own clock in the same round trip that records the report
    /// ([`Report::time_in_range`], `FleetStore::record`).
    pub fn parse_body(content_type: Option<&str>, body: &[u8]) -> Result<Report, ReportError> {
        Report::parse_with(content_type, body, None)
    }

    /// Range checks on a report whose types are right, the timestamp judged at `now`.
    pub fn check(&self, now: Millis) -> Result<(), ReportError> {
        self.check_fields()?;
        self.check_time(now)
    }

    /// Whether the timestamp is one a store at clock `now` records: at most
    /// `MAX_CLOCK_SKEW_MS` ahead, and within the history. Stores apply the same rule.
    pub fn time_in_range(measured: Millis, now: Millis) -> bool {
        measured <= now + MAX_CLOCK_SKEW_MS && measured >= now - HISTORY_SPAN_MS
    }

    /// The timestamp's range check at `now`, with the message an agent's operator needs.
    pub fn check_time(&self, now: Millis) -> Result<(), ReportError> {
        let invalid =
            |field: &str, why: String| Err(ReportError::Invalid(format!("`{field}`: {why}")));
        let measured = self.measured_at();
        if measured > now + MAX_CLOCK_SKEW_MS {
            return invalid(
                "timestamp",
                format!(
                    "{} is {}s in the future of the server's clock ({}); fix the machine's clock (allowed skew {}s)",
                    self.timestamp,
                    (measured - now) / 1000,
                    rfc3339(now),
                    MAX_CLOCK_SKEW_MS / 1000
                ),
            );
        }
        if measured < now - HISTORY_SPAN_MS {
            return invalid(
                "timestamp",
                format!(
                    "{} is older than the {}-day history; fix the machine's clock",
                    self.timestamp,
                    HISTORY_SPAN_MS / 86_400_000
                ),
            );
        }
        Ok(())
    }

    /// Range checks of every field but the timestamp's range.
    pub fn check_fields(&self) -> Result<(), ReportError> {
        let invalid =
            |field: &str, why: String| Err(ReportError::Invalid(format!("`{field}`: {why}")));
        if self.machine_id.is_empty() || self.machine_id.len() > 128 {
            return invalid("machine_id", "must be 1 to 128 characters".into());
        }
        if let Some(c) = self
            .machine_id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':')))
        {
            return invalid(
                "machine_id",
                format!("contains {c:?}; use letters, digits, `.`, `_`, `-` and `:` only"),
            );
        }
        text("hostname", &self.hostname, 253)?;
        if self.hostname.contains(char::is_whitespace) {
            return invalid("hostname", "contains whitespace".into());
        }
        text("os", &self.os, 128)?;
        text("kernel", &self.kernel, 128)?;
        text("agent_version", &self.agent_version, 64)?;

        parse_time(&self.timestamp).map_err(|e| {
            ReportError::Invalid(format!(
                "`timestamp`: `{}` is not RFC 3339 ({e})",
                self.timestamp
            ))
        })?;
        if self.uptime_secs > MAX_UPTIME_SECS {
            return invalid(
                "uptime_secs",
                format!("{} is more than 100 years", self.uptime_secs),
            );
        }
        if !(0.0..=100.0).contains(&self.cpu_percent) {
            return invalid(
                "cpu_percent",
                format!(
                    "{} is not a percentage of the machine's CPU capacity (0 to 100)",
                    self.cpu_percent
                ),
            );
        }
        if !(1..=4096).contains(&self.cpu_cores) {
            return invalid("cpu_cores", format!("{} is not 1 to 4096", self.cpu_cores));
        }
        for (i, l) in self.load.iter().enumerate() {
            if !(0.0..=MAX_LOAD).contains(l) {
                return invalid(
                    &format!("load[{i}]"),
                    format!("{l} is not a load average (0 to {MAX_LOAD})"),
                );
            }
        }
        usage("memory", &self.memory)?;
        if self.memory.total_bytes == 0 {
            return invalid(
                "memory.total_bytes",
                "a machine has some memory: 0 is impossible".into(),
            );
        }
        usage("swap", &self.swap)?;
        if self.disks.len() > MAX_DISKS {
            return invalid(
                "disks",
                format!("{} disks; at most {MAX_DISKS}", self.disks.len()),
            );
        }
        for (i, d) in self.disks.iter().enumerate() {
            text(&format!("disks[{i}].mount"), &d.mount, 512)?;
            usage(
                &format!("disks[{i}]"),
                &Usage {
                    total_bytes: d.total_bytes,
                    used_bytes: d.used_bytes,
                },
            )?;
        }
        Ok(())
    }

    /// When the agent measured, ms since the epoch (0 for a report that never passed
    /// `check`, which stores never see).
    pub fn measured_at(&self) -> Millis {
        parse_time(&self.timestamp).unwrap_or(0)
    }

    /// The fullest disk's used percentage (0 without disks).
    pub fn fullest_disk_percent(&self) -> f64 {
        self.disks
            .iter()
            .map(|d| {
                Usage {
                    total_bytes: d.total_bytes,
                    used_bytes: d.used_bytes,
                }
                .used_percent()
            })
            .fold(0.0, f64::max)
    }
}

fn too_large(len: usize) -> ReportError {
    ReportError::TooLarge(format!(
        "report body is {len} bytes; the limit is {REPORT_BODY_LIMIT}"
    ))
}

/// The error for a body that exceeded the limit while it was being read.
pub fn body_too_large() -> ReportError {
    ReportError::TooLarge(format!(
        "report body exceeds the limit of {REPORT_BODY_LIMIT} bytes"
    ))
}

fn text(field: &str, value: &str, max: usize) -> Result<(), ReportError> {
    if value.trim().is_empty() {
        return Err(ReportError::Invalid(format!(
            "`{field}`: must not be empty"
        )));
    }
    if value.chars().count() > max {
        return Err(ReportError::Invalid(format!(
            "`{field}`: longer than {max} characters"
        )));
    }
    if value.chars().any(char::is_control) {
        return Err(ReportError::Invalid(format!(
            "`{field}`: contains control characters"
        )));
    }
    Ok(())
}

fn usage(field: &str, u: &Usage) -> Result<(), ReportError> {
    if u.total_bytes > MAX_BYTES {
        return Err(ReportError::Invalid(format!(
            "`{field}.total_bytes`: {} bytes is beyond any real machine",
            u.total_bytes
        )));
    }
    if u.used_bytes > u.total_bytes {
        return Err(ReportError::Invalid(format!(
            "`{field}.used_bytes`: {} is more than total_bytes {}",
            u.used_bytes, u.total_bytes
        )));
    }
    Ok(())
}

/// The typed parse with the path of the field that failed, for a body the plain parse
/// refused: the error names that field (or says the body is not JSON, or not an object).
/// `first` is the body's first byte that is not white space.
fn parse_explained(body: &[u8], first: Option<u8>) -> Result<Report, ReportError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let report: Report = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ReportError::Malformed(format!("body is not valid JSON: {inner}"))
        } else if first != Some(b'{') {
            ReportError::Malformed(
                "body must be a JSON object (a report), not an array or a scalar".into(),
            )
        } else if path == "." {
            ReportError::Malformed(inner.to_string())
        } else {
            ReportError::Malformed(format!("`{path}`: {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| ReportError::Malformed(format!("body is not valid JSON: {e}")))?;
    Ok(report)
}

/// Nesting depth: a scalar is 0, `{}` is 1, `{"a": []}` is 2.
/// The first byte that is not whitespace, and the deepest nesting of arrays and objects,
/// found without parsing (brackets inside strings do not count). On invalid JSON the depth
/// is a bound the parser then refuses anyway.
fn shape(body: &[u8]) -> (Option<u8>, usize) {
    let first = body.iter().copied().find(|b| !b.is_ascii_whitespace());
    let (mut depth, mut max) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    (first, max)
}

fn parse_time(s: &str) -> Result<Millis, time::error::Parse> {
    let t = OffsetDateTime::parse(s, &Rfc3339)?;
    Ok((t.unix_timestamp_nanos() / 1_000_000) as Millis)
}

pub use crate::store::time::{rfc3339, rfc3339_ms};

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Millis = 1_767_225_600_000; // 2026-01-01T00:00:00Z

    fn good() -> serde_json::Value {
        serde_json::json!({
            "machine_id": "web-01", "hostname": "web-01.example.com", "os": "Debian 13",
            "kernel": "6.12.0", "agent_version": "0.1.0", "timestamp": "2026-01-01T00:00:00Z",
            "uptime_secs": 3600, "cpu_percent": 12.5, "cpu_cores": 8, "load": [0.5, 0.4, 0.3],
            "memory": {"total_bytes": 8_000_000_000u64, "used_bytes": 2_000_000_000u64},
            "swap": {"total_bytes": 0, "used_bytes": 0},
            "disks": [{"mount": "/", "total_bytes": 100, "used_bytes": 90}],
            "network": {"rx_bytes": 1, "tx_bytes": 2}
        })
    }

    fn parse(v: &serde_json::Value) -> Result<Report, ReportError> {
        Report::parse(Some("application/json"), v.to_string().as_bytes(), NOW)
    }

    #[test]
    fn a_good_report_parses() {
        let r = parse(&good()).unwrap();
        assert_eq!(r.measured_at(), NOW);
        assert_eq!(r.fullest_disk_percent(), 90.0);
        assert_eq!(r.memory.used_percent(), 25.0);
    }

    #[test]
    fn type_errors_name_the_field_path() {
        let mut v = good();
        v["memory"]["used_bytes"] = "lots".into();
        let e = parse(&v).unwrap_err().to_string();
        assert!(e.contains("`memory.used_bytes`"), "{e}");
        let mut v = good();
        v.as_object_mut().unwrap().remove("hostname");
        let e = parse(&v).unwrap_err().to_string();
        assert!(e.contains("hostname"), "{e}");
    }

    #[test]
    fn skew_allowance_is_respected() {
        let mut v = good();
        v["timestamp"] = "2026-01-01T00:04:00Z".into();
        assert!(parse(&v).is_ok());
        v["timestamp"] = "2026-01-01T00:06:00Z".into();
        let e = parse(&v).unwrap_err();
        assert!(matches!(e, ReportError::Invalid(_)), "{e}");
    }

    #[test]
    fn shape_counts_levels_outside_strings() {
        assert_eq!(shape(b" 1"), (Some(b'1'), 0));
        assert_eq!(shape(good().to_string().as_bytes()), (Some(b'{'), 3));
        assert_eq!(shape(br#"{"a":"[[[{{{\"]]]"}"#), (Some(b'{'), 1));
        assert_eq!(shape(br#"[[{"a":[1]}]]"#), (Some(b'['), 4));
    }
}
