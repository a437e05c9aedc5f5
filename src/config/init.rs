//! The config `fleetctl config init` writes, as a pure function of the wizard's answers, so a
//! test can check that every combination of answers gives a valid file.

use super::BackendKind;

/// Standalone: one node, cluster mode off. Cluster: several nodes sharing a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Standalone,
    Cluster,
}

/// What the wizard asked.
#[derive(Debug, Clone)]
pub struct InitAnswers {
    pub mode: Mode,
    /// Where cluster state and sessions live; fleet data uses Redis with `redis`, else SQLite.
    pub backend: BackendKind,
    /// Only used with the Redis backend.
    pub redis_host: String,
    pub redis_port: u16,
    pub admin_username: String,
    /// argon2id PHC string of the first admin's password.
    pub admin_password_hash: String,
}

/// The YAML text for these answers. Values are quoted with JSON string syntax, which YAML reads
/// unchanged, so no answer can break the file's structure.
pub fn render(a: &InitAnswers) -> String {
    let q = |s: &str| serde_json::to_string(s).expect("a string always serializes");
    let cluster = a.mode == Mode::Cluster;
    let redis = a.backend == BackendKind::Redis;
    let mut out = String::new();
    out.push_str("# fleetctl config written by `fleetctl config init`.\n");
    out.push_str(
        "# Every option is documented in config_cluster_example.yaml and docs/config.md.\n",
    );
    out.push_str("# Check changes with `fleetctl config validate`.\n\n");
    out.push_str("server:\n  host: 0.0.0.0\n  port: 8768\n\n");
    out.push_str(&format!(
        "cluster:\n  enabled: {cluster}\n  backend: {}\n",
        a.backend
    ));
    if cluster {
        out.push_str(
            "  hostname: auto\n  node_id: auto\n  heartbeat_interval: 10\n  node_timeout: 30\n",
        );
    }
    if redis {
        out.push_str(&format!(
            "  redis_host: {}\n  redis_port: {}\n  redis_db: 0\n  # Password: set FLEET_REDIS_PASSWORD or redis_password_file, never inline.\n",
            q(&a.redis_host),
            a.redis_port
        ));
    } else {
        out.push_str("  state_path: fleet-data/cluster\n");
    }
    out.push_str(&format!(
        "\nsessions:\n  backend: {}\n  ttl: 3600\n",
        a.backend
    ));
    match a.backend {
        BackendKind::Redis => out.push_str(&format!(
            "  redis:\n    host: {}\n    port: {}\n    db: 1\n",
            q(&a.redis_host),
            a.redis_port
        )),
        BackendKind::Sqlite => out.push_str("  db_path: fleet-data/sessions.db\n"),
        BackendKind::File => out.push_str("  session_dir: fleet-data/sessions\n"),
        // The wizard does not offer PostgreSQL (docs/postgres.md shows the section to write).
        BackendKind::Postgres => {
            out.push_str("  postgres: { host: localhost, dbname: fleetctl }\n")
        }
    }
    if redis {
        out.push_str(&format!(
            "\nstorage:\n  backend: redis\n  redis:\n    host: {}\n    port: {}\n    db: 2\n",
            q(&a.redis_host),
            a.redis_port
        ));
    } else {
        out.push_str("\nstorage:\n  backend: sqlite\n  db_path: fleet-data/fleet.db\n");
    }
    out.push_str(&format!(
        "\nauth:\n  users:\n    - username: {}\n      password_hash: {}\n",
        q(&a.admin_username),
        q(&a.admin_password_hash)
    ));
    out.push_str("  # Agent keys: `fleetctl keys new --name NAME` prints an entry to add here.\n  api_keys: []\n");
    out.push_str(
        "  # Admin tokens: `fleetctl keys new --kind admin --name NAME`.\n  admin_tokens: []\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::{Config, Severity};

    #[test]
    fn every_combination_of_answers_validates() {
        let hash = crate::credentials::hash_password("correct horse").unwrap();
        for mode in [Mode::Standalone, Mode::Cluster] {
            for backend in [BackendKind::Redis, BackendKind::Sqlite, BackendKind::File] {
                for (host, user) in [
                    ("redis.company.com", "admin"),
                    ("10.0.0.5", "o'brien: \"ops\" #1"),
                ] {
                    let answers = InitAnswers {
                        mode,
                        backend,
                        redis_host: host.into(),
                        redis_port: 6380,
                        admin_username: user.into(),
                        admin_password_hash: hash.clone(),
                    };
                    let text = render(&answers);
                    let (problems, config) =
                        Config::check_str(&text, Path::new("fleet.yaml"), &|_| None);
                    let errors: Vec<_> = problems
                        .iter()
                        .filter(|p| p.severity == Severity::Error)
                        .collect();
                    assert!(errors.is_empty(), "{answers:?}\n{text}\n{errors:#?}");
                    let config = config.unwrap();
                    assert_eq!(config.cluster.enabled, mode == Mode::Cluster);
                    assert_eq!(config.sessions.backend, backend);
                    assert_eq!(config.auth.users[0].username, user);
                    assert!(crate::credentials::verify_password(
                        &config.auth.users[0].password_hash,
                        "correct horse"
                    ));
                    if backend == BackendKind::Redis {
                        assert_eq!(config.sessions.redis.host, host);
                        assert_eq!(config.storage.redis.port, 6380);
                    }
                }
            }
        }
    }
}
