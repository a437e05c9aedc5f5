//! The `X-Request-Id` this node gives a request that arrives without one.
//!
//! An id is a random per-process prefix (64 bits from the OS RNG, drawn once) followed by a
//! per-process counter, written in the UUID layout (`8-4-4-4-12` lowercase hex) so log tooling
//! that expects `MakeRequestUuid`'s shape keeps working. Unique across nodes and restarts as
//! long as two processes do not draw the same prefix; unlike `MakeRequestUuid`, it costs no
//! system call per request (that was `getrandom` on every request). Not a secret: nothing
//! may trust an id for anything but correlating log lines.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::HeaderValue;

static NEXT: AtomicU64 = AtomicU64::new(0);

fn prefix() -> u64 {
    static PREFIX: OnceLock<u64> = OnceLock::new();
    *PREFIX.get_or_init(|| {
        getrandom::u64().unwrap_or_else(|_| {
            // No OS RNG: the start time and pid still tell this process from others.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            nanos ^ (u64::from(std::process::id()) << 32)
        })
    })
}

/// `prefix` and `n` as `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
fn format_id(prefix: u64, n: u64) -> [u8; 36] {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let value = (u128::from(prefix) << 64) | u128::from(n);
    let mut out = [b'-'; 36];
    let mut digit = 0;
    for (i, byte) in out.iter_mut().enumerate() {
        if matches!(i, 8 | 13 | 18 | 23) {
            continue;
        }
        let shift = 124 - 4 * digit;
        *byte = HEX[((value >> shift) & 0xf) as usize];
        digit += 1;
    }
    out
}

/// A new id (the envelope gives one to every request that arrives without one).
pub fn next() -> HeaderValue {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let id = format_id(prefix(), n);
    // Hex digits and dashes are always a valid header value.
    HeaderValue::from_bytes(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid-id"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_layout_prefix_then_counter() {
        let id = format_id(0x0123_4567_89ab_cdef, 0x1f);
        assert_eq!(&id, b"01234567-89ab-cdef-0000-00000000001f");
        let id = format_id(u64::MAX, u64::MAX);
        assert_eq!(&id, b"ffffffff-ffff-ffff-ffff-ffffffffffff");
    }

    #[test]
    fn ids_differ_and_share_the_process_prefix() {
        let ids: Vec<String> = (0..100)
            .map(|_| next().to_str().unwrap().to_string())
            .collect();
        let mut unique = ids.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), ids.len());
        assert!(
            ids.iter()
                .all(|id| id.len() == 36 && id[..19] == ids[0][..19])
        );
    }
}
