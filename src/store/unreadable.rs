//! One warning per unreadable record, not one per read.
//!
//! A record that does not decode (altered by hand, sealed with a key the node no longer has)
//! is treated as absent by every store, and read again on every request that needs it: a
//! session cookie a browser keeps sending, a machine the dashboard polls. Logging each read
//! would flood the log with one line per request; logging none would hide the problem. So
//! each record is warned about once per process, with what to do; later reads are silent.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

/// Records remembered; past this the set starts over (a flood of distinct corrupt records
/// then logs again, which is what an operator would want to see anyway).
const REMEMBERED: usize = 10_000;

fn seen() -> &'static Mutex<HashSet<String>> {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    SEEN.get_or_init(|| Mutex::new(HashSet::new()))
}

/// Whether `record` (a store-unique name: a key, a row id, a path) is reported for the first
/// time in this process.
pub fn first_time(record: &str) -> bool {
    let mut seen = seen().lock().unwrap_or_else(|p| p.into_inner());
    if seen.contains(record) {
        return false;
    }
    if seen.len() >= REMEMBERED {
        seen.clear();
    }
    seen.insert(record.to_owned())
}

/// Log `message` about the unreadable `record` at warn level, once per process.
pub fn warn(record: &str, message: &str) {
    if first_time(record) {
        tracing::warn!(record = %record, "{message} (logged once per record until the node restarts)");
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_record_is_reported_once() {
        assert!(super::first_time("test:unreadable:a"));
        assert!(!super::first_time("test:unreadable:a"));
        assert!(super::first_time("test:unreadable:b"));
    }
}
