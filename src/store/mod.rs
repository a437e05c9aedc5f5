//! The storage infrastructure every backend shares: how to reach Redis, SQLite and the
//! filesystem, written once. The cluster registry, the session store and the fleet store
//! keep only their own keys, SQL and logic; connections, deadlines, transactions, atomic
//! writes and backoff live here.

pub mod redis;

/// rustls needs one process-wide crypto provider when more than one is compiled in (reqwest
/// and redis pull in different defaults); install aws-lc-rs once, before the first TLS config.
pub fn ensure_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means another part of the process installed one first, which is just as good.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}
