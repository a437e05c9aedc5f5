//! Passwords, API keys and admin tokens: hashing, minting and checking.
//!
//! The config never holds a secret it must check: users have argon2id hashes, agent API keys
//! and admin tokens have SHA-256 digests. Keys are 256 bits from the OS RNG, so a plain SHA-256
//! is enough for them (no brute force can reach that space); passwords are low-entropy and get
//! argon2id. This module must never log or return a secret it was given.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::KeyEntry;

/// Prefix of agent API keys, so a leaked key is recognisable (and greppable by secret scanners).
pub const API_KEY_PREFIX: &str = "fleet_";
/// Prefix of admin tokens; different from agent keys so the two are never confused.
pub const ADMIN_TOKEN_PREFIX: &str = "fleetadm_";
/// Prefix of `/metrics` scrape tokens (`auth.metrics_tokens`).
pub const METRICS_TOKEN_PREFIX: &str = "fleetmet_";

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error("the operating system's random number generator failed: {0}")]
    Rng(String),
}

/// Hash a password with argon2id and OWASP's recommended parameters (m = 19 MiB, t = 2, p = 1,
/// the argon2 crate's defaults) and a random salt; returns the PHC string (`$argon2id$v=19$…`).
pub fn hash_password(password: &str) -> Result<String, CredentialError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| CredentialError::Hash(e.to_string()))
}

/// Whether `password` matches the PHC string. A malformed hash never matches.
pub fn verify_password(phc: &str, password: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

fn random_hex_256() -> Result<String, CredentialError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| CredentialError::Rng(e.to_string()))?;
    Ok(hex::encode(bytes))
}

/// A new agent API key: `fleet_` and 256 random bits as 64 hex digits.
pub fn mint_api_key() -> Result<String, CredentialError> {
    Ok(format!("{API_KEY_PREFIX}{}", random_hex_256()?))
}

/// A new admin API token: `fleetadm_` and 256 random bits as 64 hex digits.
pub fn mint_admin_token() -> Result<String, CredentialError> {
    Ok(format!("{ADMIN_TOKEN_PREFIX}{}", random_hex_256()?))
}

/// A new `/metrics` scrape token: `fleetmet_` and 256 random bits as 64 hex digits.
pub fn mint_metrics_token() -> Result<String, CredentialError> {
    Ok(format!("{METRICS_TOKEN_PREFIX}{}", random_hex_256()?))
}

/// Lowercase hex SHA-256 of `text`, as stored in `auth.api_keys[].sha256`.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The entry whose digest matches the presented key, if any.
///
/// Digests are compared in constant time and every entry is checked even after a match, so the
/// time taken says nothing about which entry, or which prefix of a digest, matched. Several
/// entries may be valid at once (key rotation).
pub fn find_key<'a>(entries: &'a [KeyEntry], presented: &str) -> Option<&'a KeyEntry> {
    let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    let mut found = None;
    for entry in entries {
        // A malformed digest (rejected by config validation anyway) compares against zeros
        // and can never match a real SHA-256 output in practice.
        let mut stored = [0u8; 32];
        let valid = hex::decode_to_slice(entry.sha256.as_bytes(), &mut stored).is_ok();
        let equal = digest.ct_eq(&stored);
        if bool::from(equal) && valid && found.is_none() {
            found = Some(entry);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hashes_are_argon2id_and_verify() {
        let phc = hash_password("hunter2 hunter2").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password(&phc, "hunter2 hunter2"));
        assert!(!verify_password(&phc, "hunter2"));
        assert!(!verify_password("not a hash", "hunter2"));
        // Salted: the same password hashes differently each time.
        assert_ne!(phc, hash_password("hunter2 hunter2").unwrap());
    }

    #[test]
    fn keys_are_prefixed_random_and_distinct() {
        let a = mint_api_key().unwrap();
        let b = mint_api_key().unwrap();
        assert!(a.starts_with("fleet_") && a.len() == 6 + 64, "{a}");
        assert_ne!(a, b);
        let t = mint_admin_token().unwrap();
        assert!(t.starts_with("fleetadm_") && t.len() == 9 + 64, "{t}");
    }

    #[test]
    fn sha256_hex_matches_a_known_vector() {
        assert_eq!(
            sha256_hex("test"),
            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
        );
    }

    #[test]
    fn find_key_checks_every_entry() {
        let entry = |name: &str, key: &str| KeyEntry {
            name: name.into(),
            sha256: sha256_hex(key),
        };
        let entries = vec![
            entry("old", "fleet_old"),
            entry("new", "fleet_new"),
            KeyEntry {
                name: "broken".into(),
                sha256: "zz".into(),
            },
            KeyEntry {
                name: "upper".into(),
                sha256: sha256_hex("fleet_upper").to_uppercase(),
            },
        ];
        assert_eq!(find_key(&entries, "fleet_old").unwrap().name, "old");
        assert_eq!(find_key(&entries, "fleet_new").unwrap().name, "new");
        assert_eq!(find_key(&entries, "fleet_upper").unwrap().name, "upper");
        assert!(find_key(&entries, "fleet_other").is_none());
        assert!(find_key(&entries, "").is_none());
        assert!(find_key(&[], "fleet_old").is_none());
    }
}
