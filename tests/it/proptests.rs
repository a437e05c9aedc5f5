//! Property tests of the three parsers that read what others write: the agent report parser,
//! the session cookie parser and the config loader. Each runs a fixed number of cases (and a
//! bounded shrink) so CI time is bounded: `PROPTEST_CASES` raises it for a longer local run.
//!
//! The properties: no input makes them panic; what they accept is what they promise (a parsed
//! report passes its own validation again, a cookie we set reads back as the same id, a config
//! that loads has no error among its problems); and every refusal says where or what.

use std::path::Path;

use axum::http::header::COOKIE;
use axum::http::{HeaderMap, HeaderValue};
use proptest::prelude::*;

use fleetctl::config::Config;
use fleetctl::fleet::Report;
use fleetctl::server::cookie::{self, Presented};
use fleetctl::sessions::SessionId;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512);
    ProptestConfig {
        cases,
        max_shrink_time: 10_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

const NOW: i64 = 1_780_000_000_000;

/// JSON-ish text: fragments of a real report glued together with noise.
fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(br#"{"machine_id":"web-01","#.to_vec()),
        Just(br#""hostname":"web-01","os":"linux","#.to_vec()),
        Just(br#""cpu_percent":"#.to_vec()),
        Just(br#""memory":{"total_bytes":1,"used_bytes":2},"#.to_vec()),
        Just(br#""disks":[{"mount":"/","total_bytes":1,"used_bytes":1}],"#.to_vec()),
        Just(br#""load":[1,2,3],"uptime_secs":5,"agent_version":"x","#.to_vec()),
        Just(br#""collected_at":1780000000000}"#.to_vec()),
        Just(b"[[[[[[[[[[[[".to_vec()),
        Just(b"1e999999".to_vec()),
        Just(b"-0.0".to_vec()),
        Just(b"\"\\ud800\"".to_vec()),
        Just(vec![0xff, 0xfe, 0x00]),
        proptest::collection::vec(any::<u8>(), 0..16),
        "[a-z0-9\":,{}\\[\\] ]{0,24}".prop_map(String::into_bytes),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn prop_report_parser_never_panics_and_accepts_only_valid_reports(
        body in jsonish(),
        ct in prop_oneof![
            Just(Some("application/json".to_string())),
            Just(Some("application/json; charset=utf-8".to_string())),
            Just(None),
            "[ -~]{0,30}".prop_map(Some),
        ],
    ) {
        match Report::parse(ct.as_deref(), &body, NOW) {
            Ok(report) => {
                // Accepted means it survives its own round trip.
                let again = serde_json::to_vec(&report).unwrap();
                prop_assert!(Report::parse(Some("application/json"), &again, NOW).is_ok());
            }
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    #[test]
    fn prop_cookie_parser_never_panics_and_never_accepts_garbage(
        header in "[ -~]{0,300}",
        noise in "[a-z_]{1,12}=[ -:<-~]{0,40}",
    ) {
        let mut h = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&header) {
            h.insert(COOKIE, v);
        }
        if let Presented::Id { id, .. } = cookie::presented(&h) {
            // Only a well-formed id is ever looked up.
            prop_assert!(SessionId::parse(id.cookie_value()).is_some());
        }
        // A cookie we set reads back as the same id, whatever else the browser sends.
        let id = SessionId::generate().unwrap();
        for secure in [false, true] {
            let set = cookie::set(&id, secure, 60);
            let pair = set.to_str().unwrap().split(';').next().unwrap().to_string();
            let mut h = HeaderMap::new();
            h.insert(COOKIE, HeaderValue::from_str(&format!("{noise}; {pair}")).unwrap());
            let got = cookie::presented(&h);
            prop_assert_eq!(got, Presented::Id { id: id.clone(), secure_name: secure });
        }
    }

    #[test]
    fn prop_config_loader_never_panics_and_locates_every_problem(
        lines in proptest::collection::vec(prop_oneof![
            Just("server:".to_string()),
            Just("cluster:".to_string()),
            Just("sessions:".to_string()),
            Just("  port: 8768".to_string()),
            Just("  port: 99999".to_string()),
            Just("  trusted_proxies: [10.0.0.0/+8]".to_string()),
            Just("  tls: {cert: /a}".to_string()),
            Just("  heartbeat_interval: 10s".to_string()),
            Just("  node_timeout: 5".to_string()),
            Just("  enabled: yes".to_string()),
            Just("  max_concurrent_requests: 0".to_string()),
            Just("  header_read_timeout: 5 parsecs".to_string()),
            Just("  - [".to_string()),
            Just("  &a *a".to_string()),
            Just("<<: *x".to_string()),
            "[ -~]{0,40}",
        ], 0..14),
    ) {
        let text = lines.join("\n");
        let (problems, config) = Config::check_str(&text, Path::new("p.yaml"), &|_| None);
        let errors = problems.iter().filter(|p| p.is_error()).count();
        prop_assert_eq!(config.is_some(), errors == 0, "{:?}", problems);
        let line_count = text.lines().count().max(1);
        for p in &problems {
            prop_assert!(p.line >= 1 && p.line <= line_count + 1, "{}", p);
            prop_assert!(p.column >= 1, "{}", p);
            prop_assert!(!p.message.is_empty());
        }
    }
}
