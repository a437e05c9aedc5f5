//! Unit tests of config checking, and the guards that keep the schema, the serde structs and
//! config_cluster_example.yaml from drifting apart.

use std::collections::BTreeSet;
use std::path::Path;

use super::schema;
use super::validate::check;
use super::*;

const EXAMPLE: &str = include_str!("../../config_cluster_example.yaml");

fn problems(text: &str) -> Vec<Problem> {
    Config::check_str(text, Path::new("f.yaml"), &|_| None).0
}

fn only_error(text: &str) -> Problem {
    let errors: Vec<Problem> = problems(text)
        .into_iter()
        .filter(Problem::is_error)
        .collect();
    assert_eq!(errors.len(), 1, "{text}\n{errors:#?}");
    errors.into_iter().next().unwrap()
}

/// Key paths of a JSON value, with list items as `[]`.
fn json_paths(prefix: &str, v: &serde_json::Value, out: &mut BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(p.clone());
                json_paths(&p, v, out);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                json_paths(&format!("{prefix}[]"), item, out);
            }
        }
        _ => {}
    }
}

#[test]
fn schema_has_exactly_the_fields_of_the_serde_structs() {
    let mut full = Config::default();
    full.server.tls = Some(TlsConfig::default());
    full.auth.users.push(UserEntry {
        username: "u".into(),
        password_hash: "h".into(),
    });
    full.auth.api_keys.push(KeyEntry {
        name: "k".into(),
        sha256: "s".into(),
    });
    full.auth.admin_tokens.push(KeyEntry {
        name: "k".into(),
        sha256: "s".into(),
    });
    full.auth.metrics_tokens.push(KeyEntry {
        name: "k".into(),
        sha256: "s".into(),
    });
    let mut from_structs = BTreeSet::new();
    json_paths("", &serde_json::to_value(&full).unwrap(), &mut from_structs);
    let from_schema: BTreeSet<String> = schema::all_paths().into_iter().collect();
    assert_eq!(
        from_structs, from_schema,
        "schema.rs and the Config structs disagree"
    );
}

#[test]
fn example_file_validates_without_any_problem() {
    let (problems, config) =
        Config::check_str(EXAMPLE, Path::new("config_cluster_example.yaml"), &|_| None);
    assert!(problems.is_empty(), "{problems:#?}");
    let config = config.unwrap();
    let by_serde: Config = serde_saphyr::from_str(EXAMPLE).unwrap();
    assert_eq!(config, by_serde);
    assert!(config.cluster.enabled);
}

#[test]
fn example_file_documents_every_key() {
    let checked = check(EXAMPLE, Path::new("example"));
    // Inline passwords are shown commented out: written live they would be a warning. So is
    // the single-server address, which the example's Sentinel settings exclude.
    let commented = [
        "cluster.redis_password",
        "sessions.redis.password",
        "storage.redis.password",
        "cluster.redis_sentinel_password",
        "sessions.redis.sentinel_password",
        "storage.redis.sentinel_password",
        "cluster.redis_host",
        "cluster.redis_port",
        "sessions.redis.host",
        "sessions.redis.port",
        "storage.redis.host",
        "storage.redis.port",
        "cluster.postgres.password",
        "sessions.postgres.password",
        "storage.postgres.password",
    ];
    for path in schema::all_paths() {
        let live = path.replace("[]", "[0]");
        if commented.contains(&path.as_str()) {
            let last = path.rsplit('.').next().unwrap();
            assert!(
                EXAMPLE.contains(&format!("# {last}:")),
                "{path} is not shown in the example"
            );
        } else {
            assert!(
                checked.index.has(&live),
                "config_cluster_example.yaml does not set `{path}`"
            );
        }
    }
}

/// Whatever the validator accepts, serde-saphyr accepts too, and both read the same config.
#[test]
fn validator_never_accepts_what_serde_rejects() {
    let corpus = [
        "",
        "# only a comment\n",
        "server: {port: 0}",
        "server: {port: 65535}",
        "server: {port: \"8768\"}",
        "server: {port: 0x10}",
        "server: {port: 010}",
        "server: {port: +80}",
        "server: {port: -1}",
        "cluster: {enabled: yes}",
        "cluster: {enabled: True}",
        "cluster: {enabled: \"true\"}",
        "cluster: {heartbeat_interval: 1.5}",
        "cluster: {heartbeat_interval: \"10\"}",
        "cluster: {heartbeat_interval: 500ms, node_timeout: 2s}",
        "cluster: {heartbeat_interval: -3}",
        "cluster: {redis_db: -1}",
        "cluster: {hostname: 123}",
        "cluster: {hostname: ~}",
        "cluster:",
        "cluster: {backend: Redis}",
        "storage: {backend: file}",
        "server: {trusted_proxies: 10.0.0.0/8}",
        "server: {trusted_proxies: [10.0.0.0/33]}",
        "server: {tls: null}",
        "server: {tls: {cert: a}}",
        "server: {advertise_url: ftp://x}",
        "auth: {users: [{username: a}]}",
        "auth: {api_keys: [{name: a, sha256: abc}]}",
        "cluster: {redis_password: !!str 10}",
        "cluster: &a {enabled: true}\nsessions: *a",
        "a: b\n---\nc: d\n",
        "[1, 2]",
        "just a string",
        "server: {host: true}",
        "sessions: {redis: {db: ~, port: 6380}}",
        "agent: {interval: 1d, server: http://x}",
        "cluster: {prune_after: 1s}",
        "server:\n  port: 1\n  port: 2\n",
        "<<: {server: {port: 1}}",
    ];
    for text in corpus {
        let (problems, config) = Config::check_str(text, Path::new("f"), &|_| None);
        let by_serde = serde_saphyr::from_str::<Config>(text);
        if let Some(config) = config {
            assert!(!problems.iter().any(Problem::is_error), "{text}");
            if !text.trim().is_empty() && !text.trim().starts_with('#') {
                assert_eq!(
                    by_serde.as_ref().ok(),
                    Some(&config),
                    "{text}: serde disagrees: {by_serde:?}"
                );
            }
        } else {
            assert!(
                problems.iter().any(Problem::is_error),
                "{text}: rejected without an error"
            );
        }
    }
}

#[test]
fn misspelled_key_names_its_position_and_the_right_key() {
    let p = only_error("cluster:\n  enabled: true\n  heartbeat_intervall: 10\n");
    assert_eq!((p.line, p.column), (3, 3));
    assert_eq!(p.key, "cluster.heartbeat_intervall");
    assert_eq!(
        p.hint.as_deref(),
        Some("did you mean `heartbeat_interval`?")
    );
}

#[test]
fn key_in_the_wrong_section_says_where_it_belongs() {
    let p = only_error("cluster:\n  ttl: 10\n");
    assert!(p.hint.unwrap().contains("`sessions`"));
}

#[test]
fn string_where_a_number_belongs() {
    let p = only_error("cluster:\n  heartbeat_interval: ten\n");
    assert_eq!(
        p.message,
        "expected a number of seconds, found string \"ten\""
    );
    assert_eq!((p.line, p.column), (2, 23));
    let p = only_error("server: {port: \"8768\"}");
    assert!(p.hint.unwrap().contains("remove the quotes"));
}

#[test]
fn bad_duration_unit() {
    let p = only_error("sessions: {ttl: 10x}");
    assert!(
        p.message.contains("unknown duration unit `x`"),
        "{}",
        p.message
    );
}

#[test]
fn node_timeout_must_exceed_twice_the_heartbeat() {
    let p = only_error("cluster:\n  heartbeat_interval: 10\n  node_timeout: 20\n");
    assert_eq!(p.key, "cluster.node_timeout");
    assert_eq!(p.line, 3);
    assert!(p.message.contains("more than twice"));
    assert!(problems("cluster: {heartbeat_interval: 10, node_timeout: 21}").is_empty());
}

#[test]
fn enum_values_list_the_options() {
    let p = only_error("sessions: {backend: memcached}");
    assert!(
        p.message.contains("`redis`, `sqlite`, `file`"),
        "{}",
        p.message
    );
    let p = only_error("storage: {backend: file}");
    assert!(p.message.contains("`sqlite`, `redis`"), "{}", p.message);
}

#[test]
fn not_yaml_and_not_a_mapping() {
    let p = only_error("cluster: [unclosed\n  enabled: true\n");
    assert!(p.message.starts_with("not valid YAML"), "{}", p.message);
    let p = only_error("- a\n- b\n");
    assert!(p.message.contains("top level"), "{}", p.message);
}

#[test]
fn duplicate_keys_point_at_the_second() {
    let p = only_error("server:\n  port: 1\n  port: 2\n");
    assert_eq!(p.line, 3);
    assert!(p.message.contains("first set at line 2"));
}

#[test]
fn every_problem_is_reported_at_once() {
    let ps = problems(
        "clustr: {}\nserver: {port: 70000, host: [a]}\ncluster: {heartbeat_interval: 0}\n",
    );
    assert_eq!(ps.iter().filter(|p| p.is_error()).count(), 4, "{ps:#?}");
}

#[test]
fn ports_ranges_and_port_zero() {
    let p = only_error("server: {port: 70000}");
    assert!(p.hint.unwrap().contains("0 to let the OS pick"));
    let p = only_error("cluster: {redis_port: 0}");
    assert!(p.message.contains("out of range"));
}

#[test]
fn tls_needs_both_files() {
    let p = only_error("server: {tls: {cert: /c.pem}}");
    assert!(p.message.contains("only `cert`"));
}

#[test]
fn password_hashes_are_never_echoed() {
    let p = only_error("auth: {users: [{username: a, password_hash: hunter2}]}");
    assert!(!p.message.contains("hunter2") && !p.to_string().contains("hunter2"));
}

#[test]
fn cluster_warnings() {
    let ps = problems(
        "cluster: {enabled: true, backend: sqlite, redis_password: pw}\nsessions: {backend: file}\n",
    );
    assert!(ps.iter().all(|p| !p.is_error()), "{ps:#?}");
    let keys: Vec<&str> = ps.iter().map(|p| p.key.as_str()).collect();
    for k in [
        "cluster.backend",
        "sessions.backend",
        "storage.backend",
        "cluster.redis_password",
        "auth.users",
        "auth.api_keys",
        "auth.admin_tokens",
    ] {
        assert!(keys.contains(&k), "no warning for {k}: {keys:?}");
    }
    assert!(ps.iter().any(|p| p.message.contains("one host only")));
}

#[test]
fn secrets_precedence_env_then_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    std::fs::write(&file, "from-file\n").unwrap();
    let text = format!(
        "cluster: {{redis_password_file: {}}}\nsessions: {{redis: {{password: inline}}}}",
        file.display()
    );
    let (c, warnings) = Config::load_str(&text, Path::new("f"), &|_| None).unwrap();
    assert_eq!(c.cluster.redis_password.as_deref(), Some("from-file"));
    assert_eq!(c.sessions.redis.password.as_deref(), Some("inline"));
    assert_eq!(
        warnings.len(),
        1,
        "plain-text password warning: {warnings:#?}"
    );
    let env = |k: &str| {
        (k == "FLEET_REDIS_PASSWORD" || k == "FLEET_STORAGE_REDIS_PASSWORD")
            .then(|| "from-env".to_string())
    };
    let (c, _) = Config::load_str(&text, Path::new("f"), &env).unwrap();
    assert_eq!(c.cluster.redis_password.as_deref(), Some("from-env"));
    assert_eq!(c.storage.redis.password.as_deref(), Some("from-env"));
    let shown = serde_json::to_string(&c.redacted()).unwrap();
    assert!(
        !shown.contains("from-env") && !shown.contains("inline"),
        "{shown}"
    );
}

#[test]
fn secret_inline_and_file_together_is_an_error() {
    let p = only_error("storage: {redis: {password: a, password_file: /x}}");
    assert_eq!(p.key, "storage.redis.password_file");
}

#[test]
fn missing_secret_file_names_key_and_path() {
    let p = only_error("sessions: {redis: {password_file: /nonexistent/fleet-pw}}");
    assert_eq!(p.key, "sessions.redis.password_file");
    assert!(p.message.contains("/nonexistent/fleet-pw"), "{}", p.message);
}

#[test]
fn metrics_tokens_are_checked_like_the_other_keys() {
    let good = "a".repeat(64);
    let (ps, c) = Config::check_str(
        &format!("auth: {{metrics_tokens: [{{name: prometheus, sha256: {good}}}]}}"),
        Path::new("f.yaml"),
        &|_| None,
    );
    assert!(ps.is_empty(), "{ps:#?}");
    assert_eq!(c.unwrap().auth.metrics_tokens[0].name, "prometheus");

    let p = only_error("auth: {metrics_tokens: [{name: prometheus, sha256: abc}]}");
    assert_eq!(p.key, "auth.metrics_tokens[0].sha256");
    assert!(p.message.contains("64"), "{}", p.message);

    let p = only_error(&format!("auth: {{metrics_tokens: [{{sha256: {good}}}]}}"));
    assert!(
        p.message.contains("missing required key `name`"),
        "{}",
        p.message
    );

    let p = only_error("auth: {metrics_tokens: prometheus}");
    assert_eq!(p.key, "auth.metrics_tokens");

    let p = only_error("auth: {metric_tokens: []}");
    assert!(
        p.hint.as_deref().unwrap_or("").contains("metrics_tokens"),
        "did-you-mean hint: {p:#?}"
    );

    let ps = problems(&format!(
        "auth: {{metrics_tokens: [{{name: a, sha256: {good}}}, {{name: b, sha256: {good}}}]}}"
    ));
    assert_eq!(ps.len(), 1, "{ps:#?}");
    assert!(!ps[0].is_error());
    assert_eq!(ps[0].key, "auth.metrics_tokens[1].sha256");
}

#[test]
fn sentinels_need_a_master_name_and_exclude_host() {
    let p = only_error("cluster: {redis_sentinels: [\"10.0.0.1:26379\"]}");
    assert_eq!(p.key, "cluster.redis_sentinels");
    assert!(p.message.contains("redis_master_name"), "{p}");
    let p = only_error(
        "sessions:\n  redis:\n    host: r1\n    sentinels: [\"a:26379\"]\n    master_name: m\n",
    );
    assert_eq!(p.key, "sessions.redis.host");
    assert_eq!((p.line, p.column), (3, 11), "{p}");
    assert!(p.message.contains("both"), "{p}");
    let p = only_error("storage: {redis: {master_name: m}}");
    assert_eq!(p.key, "storage.redis.master_name");
    assert!(p.message.contains("does nothing without"), "{p}");
}

#[test]
fn sentinel_addresses_must_be_host_port() {
    for bad in [
        "\"10.0.0.1\"",
        "\"a:0\"",
        "\"a:99999\"",
        "\":26379\"",
        "\"::1:26379\"",
    ] {
        let p = only_error(&format!(
            "cluster: {{redis_sentinels: [{bad}], redis_master_name: m}}"
        ));
        assert_eq!(p.key, "cluster.redis_sentinels[0]", "{bad}: {p}");
        assert!(p.hint.as_deref().unwrap_or("").contains("host:port"), "{p}");
    }
    assert!(
        problems(
            "cluster: {redis_sentinels: [\"[::1]:26379\", \"s.example:1\"], redis_master_name: m}"
        )
        .iter()
        .all(|p| !p.is_error())
    );
}

#[test]
fn ca_file_without_tls_is_an_error() {
    let p = only_error("cluster: {redis_ca_file: /ca.pem}");
    assert_eq!(p.key, "cluster.redis_ca_file");
    let p = only_error("sessions: {redis: {ca_file: /ca.pem}}");
    assert!(p.message.contains("would not use TLS"), "{p}");
    assert!(
        problems("sessions: {redis: {tls: true, ca_file: /ca.pem, username: fleet}}")
            .iter()
            .all(|p| !p.is_error())
    );
}

#[test]
fn single_redis_in_cluster_mode_is_a_warning() {
    let ps = problems("cluster: {enabled: true, backend: redis}\nsessions: {backend: redis}\n");
    assert!(ps.iter().all(|p| !p.is_error()), "{ps:#?}");
    let spof: Vec<&Problem> = ps
        .iter()
        .filter(|p| p.message.contains("single point of failure"))
        .collect();
    let keys: Vec<&str> = spof.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        ["cluster.redis_host"],
        "one Redis, one warning: {ps:#?}"
    );
    assert!(spof[0].message.contains("use Sentinel (see docs/"));
    // A second, different server is a second single point of failure.
    let ps = problems(
        "cluster: {enabled: true, backend: redis}\nsessions: {backend: redis, redis: {host: r2}}\n",
    );
    let keys: Vec<&str> = ps
        .iter()
        .filter(|p| p.message.contains("single point of failure"))
        .map(|p| p.key.as_str())
        .collect();
    assert_eq!(
        keys,
        ["cluster.redis_host", "sessions.redis.host"],
        "{ps:#?}"
    );
    let ps = problems(
        "cluster: {enabled: true, backend: redis, redis_sentinels: [\"a:1\"], redis_master_name: m}\n",
    );
    assert!(!ps.iter().any(|p| p.key == "cluster.redis_host"), "{ps:#?}");
}

#[test]
fn sentinel_passwords_resolve_like_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("spw");
    std::fs::write(&file, "from-file\n").unwrap();
    let text = format!(
        "cluster: {{redis_sentinels: [\"a:1\"], redis_master_name: m, redis_sentinel_password_file: {}}}",
        file.display()
    );
    let (ps, c) = Config::check_str(&text, Path::new("f.yaml"), &|_| None);
    assert!(ps.is_empty(), "{ps:#?}");
    assert_eq!(
        c.unwrap().cluster.redis_sentinel_password.as_deref(),
        Some("from-file")
    );
    let (_, c) = Config::check_str(&text, Path::new("f.yaml"), &|k| {
        (k == "FLEET_REDIS_SENTINEL_PASSWORD").then(|| "from-env".to_string())
    });
    let c = c.unwrap();
    assert_eq!(
        c.cluster.redis_sentinel_password.as_deref(),
        Some("from-env")
    );
    assert!(!format!("{:?}", c.redacted()).contains("from-env"));
}

#[test]
fn trusted_proxies_validate_with_the_parser_the_node_uses() {
    // `+8` parses as a u8 in Rust; it used to validate and then be dropped at run time.
    for bad in [
        "10.0.0.0/+8",
        "010.0.0.0/8",
        "10.0.0.0/33",
        "fd00::/129",
        "10.0.0/8",
    ] {
        let text = format!("server:\n  trusted_proxies: [127.0.0.1/32, {bad}]\n");
        let p = only_error(&text);
        assert_eq!(p.key, "server.trusted_proxies[1]", "{bad}: {p}");
        assert_eq!((p.line, p.column), (2, 35), "{bad}: {p}");
        assert!(p.message.contains(bad), "{bad}: {p}");
        // And the running node refuses the same entry.
        assert!(crate::server::proxy::TrustedProxies::parse(&[bad.to_string()]).is_err());
    }
    for good in ["10.0.0.0/8", "192.0.2.7", "::1", "2001:db8::/32"] {
        let text = format!("server:\n  trusted_proxies: [{good}]\n");
        assert!(problems(&text).is_empty(), "{good}");
        assert!(crate::server::proxy::TrustedProxies::parse(&[good.to_string()]).is_ok());
    }
}

#[test]
fn hardening_keys_are_checked() {
    let p = only_error("server:\n  max_concurrent_requests: 0\n");
    assert_eq!(p.key, "server.max_concurrent_requests");
    let p = only_error("server:\n  header_read_timeout: 5 parsecs\n");
    assert_eq!((p.key.as_str(), p.line), ("server.header_read_timeout", 2));
    let p = only_error("server:\n  tls: {cert: /a, key: /b, client_cert: /c}\n");
    assert!(p.hint.unwrap_or_default().contains("client_ca"));
}

/// A key file in a temp dir with `mode`, and the config line naming it.
fn key_file_config(text: &str, mode: u32) -> (tempfile::TempDir, String) {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("enc.keys");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    let yaml = format!("security:\n  encryption_key_file: {}\n", path.display());
    (dir, yaml)
}

const GOOD_KEY: &str = "ka:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

#[test]
fn a_good_key_file_validates_cleanly() {
    let (_dir, yaml) = key_file_config(&format!("# rotated 2026-12\n{GOOD_KEY}\n"), 0o600);
    assert!(problems(&yaml).is_empty(), "{:#?}", problems(&yaml));
}

#[test]
fn bad_key_file_lines_are_errors_at_their_file_line_and_column() {
    let (dir, yaml) = key_file_config(&format!("{GOOD_KEY}\n  kb:AAAA\n"), 0o600);
    let p = only_error(&yaml);
    assert_eq!(p.file, dir.path().join("enc.keys").display().to_string());
    assert_eq!((p.line, p.column), (2, 6), "{p}");
    assert_eq!(p.key, "security.encryption_key_file");
    assert!(p.message.contains("key kb is 3 bytes"), "{p}");
    assert!(p.hint.as_deref().unwrap().contains("f.yaml:2:"), "{p:?}");

    let (_dir, yaml) = key_file_config(&format!("{GOOD_KEY}\n{GOOD_KEY}\n"), 0o600);
    let p = only_error(&yaml);
    assert_eq!((p.line, p.column), (2, 1));
    assert!(p.message.contains("key id ka is listed twice"), "{p}");

    let p = only_error("security: {encryption_key_file: /nonexistent/enc.keys}");
    assert!(
        p.message.contains("cannot read the encryption key file"),
        "{p}"
    );
}

#[test]
fn a_key_file_others_can_read_is_a_warning() {
    let (_dir, yaml) = key_file_config(GOOD_KEY, 0o644);
    let found = problems(&yaml);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].severity, Severity::Warning);
    assert_eq!((found[0].line, found[0].column), (2, 24), "{}", found[0]);
    assert!(found[0].message.contains("mode 0644"), "{}", found[0]);
}

#[test]
fn encrypted_reports_need_a_key_file() {
    let p = only_error("storage: {encrypt_reports: true}");
    assert_eq!(p.key, "storage.encrypt_reports");
    assert!(p.message.contains("security.encryption_key_file"), "{p}");
    let (_dir, yaml) = key_file_config(GOOD_KEY, 0o600);
    assert!(problems(&format!("{yaml}storage: {{encrypt_reports: true}}\n")).is_empty());
}

#[test]
fn postgres_sections_reject_what_would_be_ignored_or_leaked() {
    let p = only_error("storage: {postgres: {url: 'postgres://u@h:notaport/db'}}");
    assert_eq!(p.key, "storage.postgres.url");
    assert!(p.message.contains("not a PostgreSQL connection URL"), "{p}");
    let p = only_error("sessions: {postgres: {url: 'postgres://u:secret@h/db'}}");
    assert!(p.message.contains("holds a password"), "{p}");
    assert!(
        !p.to_string().contains("secret"),
        "the password is echoed: {p}"
    );
    let p = only_error("cluster: {postgres: {url: 'postgres://u@h/db?sslmode=require'}}");
    assert!(p.message.contains("sslmode"), "{p}");
    let p = only_error("storage: {postgres: {url: 'postgres://u@h/db', host: other}}");
    assert_eq!(p.key, "storage.postgres.host");
    let p = only_error("storage: {postgres: {ca_file: /ca.pem}}");
    assert_eq!(p.key, "storage.postgres.ca_file");
    assert!(p.message.contains("would not use TLS"), "{p}");
    // libpq's modes that accept an unverified server are refused, with the two that work.
    let p = only_error("storage: {postgres: {sslmode: require}}");
    assert_eq!(p.key, "storage.postgres.sslmode");
    assert!(p.message.contains("verify-full"), "{p}");
    let p = only_error("storage: {postgres: {pool_size: 0}}");
    assert_eq!(p.key, "storage.postgres.pool_size");
    let ok = "storage: {backend: postgres, postgres: {url: 'postgres://fleet@db/fleet', sslmode: verify-full, ca_file: /ca.pem}}";
    assert!(
        problems(ok).iter().all(|p| !p.is_error()),
        "{:#?}",
        problems(ok)
    );
}

#[test]
fn postgres_without_tls_to_another_host_is_a_warning_in_cluster_mode() {
    let text = "cluster: {enabled: true, backend: postgres, postgres: {host: db.company.com}}\n";
    let ps = problems(text);
    assert!(ps.iter().all(|p| !p.is_error()), "{ps:#?}");
    let w = ps
        .iter()
        .find(|p| p.key == "cluster.postgres.sslmode")
        .unwrap_or_else(|| panic!("{ps:#?}"));
    assert!(w.message.contains("not encrypted"), "{w}");
    // Loopback, or TLS on: nothing to warn about; and postgres is a shared backend.
    for quiet in [
        "cluster: {enabled: true, backend: postgres, postgres: {host: 127.0.0.1}}\n",
        "cluster: {enabled: true, backend: postgres, postgres: {host: db, sslmode: verify-full}}\n",
    ] {
        let ps = problems(quiet);
        assert!(
            !ps.iter()
                .any(|p| p.key.starts_with("cluster.postgres") || p.key == "cluster.backend"),
            "{ps:#?}"
        );
    }
}

#[test]
fn postgres_passwords_resolve_from_env_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    std::fs::write(&file, "from-file\n").unwrap();
    let text = format!(
        "storage: {{backend: postgres, postgres: {{password_file: {}}}}}\n",
        file.display()
    );
    let (ps, c) = Config::check_str(&text, Path::new("f.yaml"), &|_| None);
    assert!(ps.iter().all(|p| !p.is_error()), "{ps:#?}");
    assert_eq!(
        c.unwrap().storage.postgres.password.as_deref(),
        Some("from-file")
    );
    let env = |k: &str| (k == "FLEET_STORAGE_POSTGRES_PASSWORD").then(|| "from-env".to_string());
    let (_, c) = Config::check_str(&text, Path::new("f.yaml"), &env);
    assert_eq!(
        c.unwrap().storage.postgres.password.as_deref(),
        Some("from-env")
    );
}
