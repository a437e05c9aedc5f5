//! Encryption at rest: the [`Keyring`] read from `security.encryption_key_file`, and the
//! sealed envelope every store writes in place of a secret field.
//!
//! Cipher: XChaCha20-Poly1305 (RustCrypto `chacha20poly1305`, audited by NCC Group, pure
//! Rust). Its 192-bit nonce is drawn at random for every write, which is safe for any number
//! of records under one key written by any number of nodes, with no counter to coordinate;
//! AES-256-GCM's 96-bit random nonce would put a birthday bound on how many session saves
//! one key may see.
//!
//! Key file: one key a line, `<key-id>:<base64 of 32 bytes>`; blank lines and `#` comments are
//! ignored. The first key encrypts, every listed key decrypts, so rotation is: put a new line
//! first, restart the nodes, run `fleetctl keys rotate-encryption` (each store's `reseal`),
//! then drop the old line (docs/security.md).
//! `fleetctl keys new --kind encryption` prints a fresh line.
//!
//! Envelope: `fenc1:<key-id>:<base64url(nonce ‖ ciphertext ‖ tag)>`. The version and key id are
//! authenticated with the caller's associated data, which names the record (`session:data:<id
//! hash>`, `report:<machine id>`), so a sealed value copied into another record does not open.
//! A stored value without the `fenc1:` prefix is a record written before encryption was turned
//! on: it is returned as it is, and the store seals it on its next write.
//!
//! Deterministic sealing ([`Keyring::seal_deterministic`]) is for values a store must find by
//! equality, such as API key names used as hash fields or primary keys: the nonce is not random
//! but HMAC-SHA256 over the associated data and the plaintext under a key derived from the
//! encryption key (the SIV construction, RFC 5297's idea with XChaCha20-Poly1305 as the cipher).
//! The same name under the same key always seals to the same envelope, so it reveals which
//! records share a name, and nothing else; it opens with [`Keyring::open`] like any envelope.
//!
//! This module never decides what is encrypted (each store does) and never logs a key.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::Mac;
use sha2::Sha256;

type HmacSha256 = hmac::Hmac<Sha256>;

/// What every sealed value starts with.
pub const ENVELOPE_PREFIX: &str = "fenc1:";
const KEY_BYTES: usize = 32;
const NONCE_BYTES: usize = 24;
const MAX_KEY_ID: usize = 32;

/// One key of the file.
struct Key {
    id: String,
    cipher: XChaCha20Poly1305,
    /// Derives deterministic nonces; a separate key so the nonce never reveals the cipher key.
    siv: [u8; 32],
}

/// HMAC-SHA256 of `parts`, each prefixed by its length so no two inputs share an encoding.
fn hmac_parts(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac =
        <HmacSha256 as hmac::KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    for part in parts {
        mac.update(&(part.len() as u64).to_be_bytes());
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// The keys of `security.encryption_key_file`: the first seals, all open.
pub struct Keyring {
    /// Never empty.
    keys: Vec<Key>,
    /// The file, for messages.
    path: PathBuf,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("path", &self.path)
            .field("key_ids", &self.key_ids())
            .finish()
    }
}

/// A key file that cannot be used, with the place of the first problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}:{line}:{column}: {message}", path.display())]
pub struct KeyFileError {
    pub path: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Why a stored value did not open. Stores treat it as an unreadable record (absent, and
/// reported), never as a failure of the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error(
        "encrypted with key id {key_id}, which security.encryption_key_file does not list \
         (put that key back in the file, after the first line)"
    )]
    UnknownKey { key_id: String },
    #[error(
        "encrypted with key id {key_id}, but security.encryption_key_file is not set \
         (set it to the key file the record was written with)"
    )]
    NoKeyring { key_id: String },
    #[error(
        "does not decrypt with key id {key_id}: the value was altered or copied from another record"
    )]
    Forged { key_id: String },
    #[error("not a valid fenc1 envelope: {0}")]
    Malformed(&'static str),
}

impl Keyring {
    /// Read and check a key file.
    pub fn load(path: &Path) -> Result<Keyring, KeyFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| KeyFileError {
            path: path.to_path_buf(),
            line: 1,
            column: 1,
            message: format!("cannot read the encryption key file: {e}"),
        })?;
        Keyring::parse(&text, path)
    }

    /// Parse key-file text; `path` names it in messages.
    pub fn parse(text: &str, path: &Path) -> Result<Keyring, KeyFileError> {
        let err = |line: usize, column: usize, message: String| KeyFileError {
            path: path.to_path_buf(),
            line,
            column,
            message,
        };
        let mut keys = Vec::new();
        let mut seen = HashSet::new();
        for (n, raw) in text.lines().enumerate() {
            let line = n + 1;
            let indent = raw.len() - raw.trim_start().len();
            let content = raw.trim();
            if content.is_empty() || content.starts_with('#') {
                continue;
            }
            let Some((id, b64)) = content.split_once(':') else {
                return Err(err(
                    line,
                    indent + 1,
                    "expected `<key-id>:<base64 key>` (make one with `fleetctl keys new --kind encryption`)".into(),
                ));
            };
            check_key_id(id).map_err(|m| err(line, indent + 1, m))?;
            let key_column = indent + id.len() + 2;
            let bytes = STANDARD.decode(b64.trim()).map_err(|e| {
                err(
                    line,
                    key_column,
                    format!("key {id} is not valid base64: {e}"),
                )
            })?;
            if bytes.len() != KEY_BYTES {
                return Err(err(
                    line,
                    key_column,
                    format!(
                        "key {id} is {} bytes; an encryption key is {KEY_BYTES} bytes (44 base64 characters)",
                        bytes.len()
                    ),
                ));
            }
            if !seen.insert(id.to_owned()) {
                return Err(err(
                    line,
                    indent + 1,
                    format!("key id {id} is listed twice; every key needs its own id"),
                ));
            }
            keys.push(Key {
                id: id.to_owned(),
                cipher: XChaCha20Poly1305::new_from_slice(&bytes).expect("length checked above"),
                siv: hmac_parts(&bytes, &[b"fleetctl siv key v1"]),
            });
        }
        if keys.is_empty() {
            return Err(err(
                1,
                1,
                "the encryption key file lists no key (make one with `fleetctl keys new --kind encryption`)".into(),
            ));
        }
        Ok(Keyring {
            keys,
            path: path.to_path_buf(),
        })
    }

    /// The id of the key that seals.
    pub fn primary_id(&self) -> &str {
        &self.keys[0].id
    }

    /// Every key id, the sealing one first.
    pub fn key_ids(&self) -> Vec<&str> {
        self.keys.iter().map(|k| k.id.as_str()).collect()
    }

    /// Encrypt `plaintext` under the first key, bound to `associated_data`.
    pub fn seal(&self, plaintext: &[u8], associated_data: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_BYTES];
        // The OS RNG failing is not a state a server can run in.
        getrandom::fill(&mut nonce).expect("the OS random number generator failed");
        self.seal_with_nonce(nonce, plaintext, associated_data)
    }

    /// Like [`Keyring::seal`], but the same input always gives the same envelope (the nonce is
    /// a MAC of the input), so a store can look the sealed value up by equality.
    pub fn seal_deterministic(&self, plaintext: &[u8], associated_data: &[u8]) -> String {
        let key = &self.keys[0];
        let aad = bound_aad(&key.id, associated_data);
        let mac = hmac_parts(&key.siv, &[&aad, plaintext]);
        let mut nonce = [0u8; NONCE_BYTES];
        nonce.copy_from_slice(&mac[..NONCE_BYTES]);
        self.seal_with_nonce(nonce, plaintext, associated_data)
    }

    fn seal_with_nonce(
        &self,
        nonce: [u8; NONCE_BYTES],
        plaintext: &[u8],
        associated_data: &[u8],
    ) -> String {
        let key = &self.keys[0];
        let aad = bound_aad(&key.id, associated_data);
        let ciphertext = key
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 encrypts any length a store writes");
        let mut body = Vec::with_capacity(NONCE_BYTES + ciphertext.len());
        body.extend_from_slice(&nonce);
        body.extend_from_slice(&ciphertext);
        format!(
            "{ENVELOPE_PREFIX}{}:{}",
            key.id,
            URL_SAFE_NO_PAD.encode(body)
        )
    }

    /// Decrypt an envelope made by [`Keyring::seal`] with the same associated data.
    pub fn open(&self, envelope: &str, associated_data: &[u8]) -> Result<Vec<u8>, OpenError> {
        let (key_id, body) = split_envelope(envelope)?;
        let key =
            self.keys
                .iter()
                .find(|k| k.id == key_id)
                .ok_or_else(|| OpenError::UnknownKey {
                    key_id: key_id.to_owned(),
                })?;
        let body = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| OpenError::Malformed("the body is not base64url"))?;
        if body.len() < NONCE_BYTES + 16 {
            return Err(OpenError::Malformed("the body is too short"));
        }
        let (nonce, ciphertext) = body.split_at(NONCE_BYTES);
        let aad = bound_aad(key_id, associated_data);
        key.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| OpenError::Forged {
                key_id: key_id.to_owned(),
            })
    }
}

/// The key id of a sealed value, `None` for a plaintext (pre-encryption) one.
pub fn envelope_key_id(stored: &str) -> Option<&str> {
    split_envelope(stored).ok().map(|(id, _)| id)
}

fn split_envelope(envelope: &str) -> Result<(&str, &str), OpenError> {
    let rest = envelope
        .strip_prefix(ENVELOPE_PREFIX)
        .ok_or(OpenError::Malformed("missing the fenc1: prefix"))?;
    rest.split_once(':')
        .ok_or(OpenError::Malformed("missing the key id"))
}

/// The AEAD's associated data: the envelope version and key id, then the caller's record name.
fn bound_aad(key_id: &str, associated_data: &[u8]) -> Vec<u8> {
    let mut aad = format!("{ENVELOPE_PREFIX}{key_id}:").into_bytes();
    aad.extend_from_slice(associated_data);
    aad
}

fn check_key_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= MAX_KEY_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "key id {id:?} must be 1 to {MAX_KEY_ID} letters, digits, `-`, `_` or `.`"
        ))
    }
}

/// A new key-file line: `<id>:<base64 of 32 random bytes>`.
pub fn new_key_line(id: &str) -> Result<String, String> {
    check_key_id(id)?;
    let mut key = [0u8; KEY_BYTES];
    getrandom::fill(&mut key).map_err(|e| format!("cannot read random bytes from the OS: {e}"))?;
    Ok(format!("{id}:{}", STANDARD.encode(key)))
}

/// A warning when the key file can be read by anyone but its owner (mode wider than 0600).
pub fn permission_warning(path: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then(|| {
            format!(
                "encryption key file {} has mode {mode:04o}: other users can read the keys (chmod 600 it)",
                path.display()
            )
        })
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// What a store holds to seal and open its secret fields: a keyring, or none (values are
/// written as plaintext, and sealed values found anyway fail to open with a clear error).
#[derive(Clone, Default, Debug)]
pub struct AtRest {
    keyring: Option<Arc<Keyring>>,
}

impl AtRest {
    /// No encryption.
    pub fn none() -> AtRest {
        AtRest::default()
    }

    pub fn new(keyring: Arc<Keyring>) -> AtRest {
        AtRest {
            keyring: Some(keyring),
        }
    }

    /// From `security.encryption_key_file`, when it is set.
    pub fn from_key_file(path: Option<&Path>) -> Result<AtRest, KeyFileError> {
        Ok(match path {
            None => AtRest::none(),
            Some(p) => AtRest::new(Arc::new(Keyring::load(p)?)),
        })
    }

    pub fn is_enabled(&self) -> bool {
        self.keyring.is_some()
    }

    pub fn keyring(&self) -> Option<&Keyring> {
        self.keyring.as_deref()
    }

    /// The value to store for `plaintext`: sealed when a keyring is configured.
    pub fn seal(&self, plaintext: &str, associated_data: &str) -> String {
        match &self.keyring {
            Some(k) => k.seal(plaintext.as_bytes(), associated_data.as_bytes()),
            None => plaintext.to_owned(),
        }
    }

    /// The value to store for `plaintext` where the store finds it by equality: sealed
    /// deterministically when a keyring is configured (see the module comment).
    pub fn seal_deterministic(&self, plaintext: &str, associated_data: &str) -> String {
        match &self.keyring {
            Some(k) => k.seal_deterministic(plaintext.as_bytes(), associated_data.as_bytes()),
            None => plaintext.to_owned(),
        }
    }

    /// The plaintext of a stored value: opened when sealed, as it is when written before
    /// encryption was turned on.
    pub fn open(&self, stored: &str, associated_data: &str) -> Result<String, OpenError> {
        if !stored.starts_with(ENVELOPE_PREFIX) {
            return Ok(stored.to_owned());
        }
        let keyring = self.keyring.as_ref().ok_or_else(|| OpenError::NoKeyring {
            key_id: envelope_key_id(stored).unwrap_or("?").to_owned(),
        })?;
        let bytes = keyring.open(stored, associated_data.as_bytes())?;
        String::from_utf8(bytes).map_err(|_| OpenError::Malformed("the plaintext is not UTF-8"))
    }

    /// Whether a stored value is already what [`AtRest::seal`] would write now (sealed with
    /// the first key, or plaintext when encryption is off): rotation skips those.
    pub fn is_current(&self, stored: &str) -> bool {
        match (&self.keyring, envelope_key_id(stored)) {
            (Some(k), Some(id)) => id == k.primary_id(),
            (Some(_), None) => false,
            (None, found) => found.is_none(),
        }
    }
}

/// What one re-sealing pass (`fleetctl keys rotate-encryption`) did to one store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ResealCount {
    /// Records looked at.
    pub examined: u64,
    /// Records rewritten with the first key (they were plaintext or under another key).
    pub resealed: u64,
    /// Records that did not open (key missing from the file, or altered): left as they are.
    pub unreadable: u64,
}

impl ResealCount {
    pub fn add(&mut self, other: ResealCount) {
        self.examined += other.examined;
        self.resealed += other.resealed;
        self.unreadable += other.unreadable;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "ka:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const B: &str = "kb:HyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4=";

    fn ring(text: &str) -> Keyring {
        Keyring::parse(text, Path::new("keys.txt")).unwrap()
    }

    fn parse_err(text: &str) -> KeyFileError {
        Keyring::parse(text, Path::new("keys.txt")).unwrap_err()
    }

    #[test]
    fn seal_then_open_round_trips_and_hides_the_plaintext() {
        let k = ring(A);
        let sealed = k.seal(b"marker-secret", b"session:data:abc");
        assert!(sealed.starts_with("fenc1:ka:"), "{sealed}");
        assert!(!sealed.contains("marker-secret"));
        assert_eq!(
            k.open(&sealed, b"session:data:abc").unwrap(),
            b"marker-secret"
        );
        assert_ne!(
            sealed,
            k.seal(b"marker-secret", b"session:data:abc"),
            "fresh nonce"
        );
    }

    #[test]
    fn a_value_moved_to_another_record_does_not_open() {
        let k = ring(A);
        let sealed = k.seal(b"x", b"report:m1");
        assert_eq!(
            k.open(&sealed, b"report:m2"),
            Err(OpenError::Forged {
                key_id: "ka".into()
            })
        );
    }

    #[test]
    fn deterministic_seals_repeat_open_and_differ_by_input_and_key() {
        let k = ring(A);
        let a = k.seal_deterministic(b"agents-eu", b"api-key");
        assert_eq!(a, k.seal_deterministic(b"agents-eu", b"api-key"));
        assert!(
            a.starts_with("fenc1:ka:") && !a.contains("agents-eu"),
            "{a}"
        );
        assert_eq!(k.open(&a, b"api-key").unwrap(), b"agents-eu");
        assert_ne!(a, k.seal_deterministic(b"agents-us", b"api-key"));
        assert_ne!(a, k.seal_deterministic(b"agents-eu", b"other"));
        assert_ne!(a, ring(B).seal_deterministic(b"agents-eu", b"api-key"));
        assert!(k.open(&a, b"other").is_err());
    }

    #[test]
    fn first_key_seals_and_every_key_opens() {
        let old = ring(A).seal(b"v", b"ad");
        let both = ring(&format!("{B}\n{A}\n"));
        assert_eq!(both.open(&old, b"ad").unwrap(), b"v");
        assert!(both.seal(b"v", b"ad").starts_with("fenc1:kb:"));
        let e = ring(B).open(&old, b"ad").unwrap_err();
        assert_eq!(
            e.to_string(),
            "encrypted with key id ka, which security.encryption_key_file does not list \
             (put that key back in the file, after the first line)"
        );
    }

    #[test]
    fn plaintext_passes_through_and_is_not_current() {
        let at_rest = AtRest::new(Arc::new(ring(A)));
        assert_eq!(at_rest.open("{\"a\":1}", "ad").unwrap(), "{\"a\":1}");
        assert!(!at_rest.is_current("{\"a\":1}"));
        assert!(at_rest.is_current(&at_rest.seal("v", "ad")));
        let sealed = at_rest.seal("v", "ad");
        assert!(matches!(
            AtRest::none().open(&sealed, "ad"),
            Err(OpenError::NoKeyring { key_id }) if key_id == "ka"
        ));
    }

    #[test]
    fn bad_key_files_name_line_and_column() {
        let e = parse_err("# keys\n\nka:not-base64!\n");
        assert_eq!((e.line, e.column), (3, 4), "{e}");
        assert!(
            e.to_string()
                .starts_with("keys.txt:3:4: key ka is not valid base64"),
            "{e}"
        );

        let e = parse_err(&format!("{A}\nkb:AAAA\n"));
        assert_eq!((e.line, e.column), (2, 4));
        assert!(
            e.message
                .contains("is 3 bytes; an encryption key is 32 bytes"),
            "{e}"
        );

        let e = parse_err(&format!("{A}\n{A}\n"));
        assert_eq!((e.line, e.column), (2, 1));
        assert!(e.message.contains("key id ka is listed twice"), "{e}");

        let e = parse_err("justakey\n");
        assert!(
            e.message.contains("expected `<key-id>:<base64 key>`"),
            "{e}"
        );

        let e = parse_err("bad id:AAAA\n");
        assert!(e.message.contains("key id \"bad id\" must be"), "{e}");

        let e = parse_err("# only a comment\n");
        assert!(e.message.contains("lists no key"), "{e}");
    }

    #[test]
    fn a_new_key_line_parses() {
        let line = new_key_line("k2026").unwrap();
        assert_eq!(ring(&line).primary_id(), "k2026");
        assert!(new_key_line("no spaces").is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_key_file_readable_by_others_is_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys");
        std::fs::write(&path, A).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(permission_warning(&path), None);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(permission_warning(&path).unwrap().contains("mode 0644"));
    }
}
