//! Redis passwords from the environment or from files, resolved once at load time.
//!
//! Precedence, highest first: the environment variable (when set and non-empty), then the
//! `*_password_file`, then the inline `password`. Setting both the inline key and the file key
//! in one config is an error (see `validate.rs`), so a reader of the file never has to guess.
//! Relative file paths are relative to the working directory, like every other path in the config.

use std::path::Path;

use super::Config;
use super::validate::{KeyIndex, Problem, Severity};

/// One secret: where it may be written inline, in a file, or in the environment.
pub struct Secret {
    pub inline_key: &'static str,
    pub file_key: &'static str,
    pub env: &'static str,
}

pub const SECRETS: [Secret; 9] = [
    Secret {
        inline_key: "cluster.redis_password",
        file_key: "cluster.redis_password_file",
        env: "FLEET_REDIS_PASSWORD",
    },
    Secret {
        inline_key: "sessions.redis.password",
        file_key: "sessions.redis.password_file",
        env: "FLEET_SESSIONS_REDIS_PASSWORD",
    },
    Secret {
        inline_key: "storage.redis.password",
        file_key: "storage.redis.password_file",
        env: "FLEET_STORAGE_REDIS_PASSWORD",
    },
    Secret {
        inline_key: "cluster.redis_sentinel_password",
        file_key: "cluster.redis_sentinel_password_file",
        env: "FLEET_REDIS_SENTINEL_PASSWORD",
    },
    Secret {
        inline_key: "sessions.redis.sentinel_password",
        file_key: "sessions.redis.sentinel_password_file",
        env: "FLEET_SESSIONS_REDIS_SENTINEL_PASSWORD",
    },
    Secret {
        inline_key: "storage.redis.sentinel_password",
        file_key: "storage.redis.sentinel_password_file",
        env: "FLEET_STORAGE_REDIS_SENTINEL_PASSWORD",
    },
    Secret {
        inline_key: "cluster.postgres.password",
        file_key: "cluster.postgres.password_file",
        env: "FLEET_CLUSTER_POSTGRES_PASSWORD",
    },
    Secret {
        inline_key: "sessions.postgres.password",
        file_key: "sessions.postgres.password_file",
        env: "FLEET_SESSIONS_POSTGRES_PASSWORD",
    },
    Secret {
        inline_key: "storage.postgres.password",
        file_key: "storage.postgres.password_file",
        env: "FLEET_STORAGE_POSTGRES_PASSWORD",
    },
];

/// Fill each `password` from its environment variable or file. `env` looks a variable up (tests
/// pass a closure instead of touching the process environment).
pub fn resolve(
    config: &mut Config,
    env: &dyn Fn(&str) -> Option<String>,
    index: &KeyIndex,
    origin: &Path,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let slots = [
        (
            &mut config.cluster.redis_password,
            config.cluster.redis_password_file.as_deref(),
        ),
        (
            &mut config.sessions.redis.password,
            config.sessions.redis.password_file.as_deref(),
        ),
        (
            &mut config.storage.redis.password,
            config.storage.redis.password_file.as_deref(),
        ),
        (
            &mut config.cluster.redis_sentinel_password,
            config.cluster.redis_sentinel_password_file.as_deref(),
        ),
        (
            &mut config.sessions.redis.sentinel_password,
            config.sessions.redis.sentinel_password_file.as_deref(),
        ),
        (
            &mut config.storage.redis.sentinel_password,
            config.storage.redis.sentinel_password_file.as_deref(),
        ),
        (
            &mut config.cluster.postgres.password,
            config.cluster.postgres.password_file.as_deref(),
        ),
        (
            &mut config.sessions.postgres.password,
            config.sessions.postgres.password_file.as_deref(),
        ),
        (
            &mut config.storage.postgres.password,
            config.storage.postgres.password_file.as_deref(),
        ),
    ];
    for (secret, (password, file)) in SECRETS.iter().zip(slots) {
        if let Some(value) = env(secret.env).filter(|v| !v.is_empty()) {
            *password = Some(value);
            continue;
        }
        let Some(file) = file else { continue };
        let message = match std::fs::read_to_string(file) {
            Ok(text) => {
                let value = text.strip_suffix('\n').unwrap_or(&text);
                let value = value.strip_suffix('\r').unwrap_or(value);
                if !value.is_empty() {
                    *password = Some(value.to_string());
                    continue;
                }
                format!("secret file {} is empty", file.display())
            }
            Err(e) => format!("cannot read secret file {}: {e}", file.display()),
        };
        let pos = index.locate(secret.file_key);
        problems.push(Problem {
            severity: Severity::Error,
            file: origin.display().to_string(),
            line: pos.line,
            column: pos.column,
            key: secret.file_key.to_string(),
            message,
            hint: Some(format!(
                "create the file with the password on one line, or set {} instead",
                secret.env
            )),
        });
    }
    problems
}

/// Read `security.encryption_key_file` as the nodes will: a bad line is an error at its own
/// file:line:column, a file others can read is a warning at the config key.
pub fn check_key_file(config: &Config, index: &KeyIndex, origin: &Path) -> Vec<Problem> {
    const KEY: &str = "security.encryption_key_file";
    let Some(path) = config.security.encryption_key_file.as_deref() else {
        return Vec::new();
    };
    let mut problems = Vec::new();
    let pos = index.locate(KEY);
    match crate::store::crypto::Keyring::load(path) {
        Ok(_) => {
            if let Some(message) = crate::store::crypto::permission_warning(path) {
                problems.push(Problem {
                    severity: Severity::Warning,
                    file: origin.display().to_string(),
                    line: pos.line,
                    column: pos.column,
                    key: KEY.to_string(),
                    message,
                    hint: Some(format!("chmod 600 {}", path.display())),
                });
            }
        }
        Err(e) => problems.push(Problem {
            severity: Severity::Error,
            file: e.path.display().to_string(),
            line: e.line,
            column: e.column,
            key: KEY.to_string(),
            message: e.message,
            hint: Some(format!(
                "the file named by {KEY} ({}:{}:{}) holds one `<key-id>:<base64 of 32 bytes>` a line; `fleetctl keys new --kind encryption` prints one",
                origin.display(),
                pos.line,
                pos.column
            )),
        }),
    }
    problems
}
