//! Temporary: replaced by the full credentials module (argon2id, key minting) on merge.
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::KeyEntry;

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

pub fn find_key<'a>(entries: &'a [KeyEntry], presented: &str) -> Option<&'a KeyEntry> {
    let digest = sha256_hex(presented);
    let mut found = None;
    for e in entries {
        if bool::from(
            e.sha256
                .to_ascii_lowercase()
                .as_bytes()
                .ct_eq(digest.as_bytes()),
        ) {
            found = Some(e);
        }
    }
    found
}
