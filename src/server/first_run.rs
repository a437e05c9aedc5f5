//! The first run of a standalone server with no users: create an `admin` account with a
//! generated password, store only its argon2id hash next to the fleet data, and hand the
//! password to the caller to print once. There is no shared default password to forget.
//!
//! Cluster nodes never do this: each node would invent a different password. A cluster's
//! users come from `auth.users` in the shared config.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::config::UserEntry;
use crate::credentials;

/// Where the generated account lives, beside the fleet database.
pub fn admin_file(data_dir: &Path) -> PathBuf {
    data_dir.join("admin-user.json")
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Stored {
    username: String,
    password_hash: String,
}

/// The generated admin account, creating it on first use. Returns the user and, only when it
/// was just created, the clear-text password to show once.
pub fn ensure_admin(data_dir: &Path) -> anyhow::Result<(UserEntry, Option<String>)> {
    let path = admin_file(data_dir);
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let stored: Stored = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a valid admin account file; delete it to generate a new password",
                path.display()
            )
        })?;
        return Ok((
            UserEntry {
                username: stored.username,
                password_hash: stored.password_hash,
            },
            None,
        ));
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    let password = generate_password()?;
    let user = UserEntry {
        username: "admin".into(),
        password_hash: credentials::hash_password(&password)?,
    };
    let json = serde_json::to_string_pretty(&Stored {
        username: user.username.clone(),
        password_hash: user.password_hash.clone(),
    })?;
    write_private(&path, json.as_bytes())?;
    Ok((user, Some(password)))
}

/// 20 characters of Crockford base32 (100 bits): easy to read aloud and type, no I/L/O/U.
fn generate_password() -> anyhow::Result<String> {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes)
        .map_err(|e| anyhow::anyhow!("the OS random number generator failed: {e}"))?;
    // 256 is a multiple of 32, so `% 32` has no bias.
    Ok(bytes
        .iter()
        .map(|b| ALPHABET[(*b % 32) as usize] as char)
        .collect())
}

/// Create `path` readable by the owner only, failing if it already exists (two servers
/// starting at once must not overwrite each other's password).
fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_once_then_reuses_the_hash() {
        let dir = tempfile::tempdir().unwrap();
        let (user, password) = ensure_admin(dir.path()).unwrap();
        let password = password.expect("first run shows the password");
        assert_eq!(password.len(), 20);
        assert!(credentials::verify_password(&user.password_hash, &password));
        let text = std::fs::read_to_string(admin_file(dir.path())).unwrap();
        assert!(!text.contains(&password), "only the hash is stored");
        let (again, shown) = ensure_admin(dir.path()).unwrap();
        assert!(shown.is_none(), "the password is shown only once");
        assert_eq!(again, user);
    }

    #[test]
    fn corrupt_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(admin_file(dir.path()), "{not json").unwrap();
        let err = format!("{:#}", ensure_admin(dir.path()).unwrap_err());
        assert!(err.contains("delete it"), "{err}");
    }
}
