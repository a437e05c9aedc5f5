//! The session cookie: its name, its attributes, and reading it back.
//!
//! `fleet_session` over plain HTTP; `__Host-fleet_session` when the client reached us over TLS
//! (directly or through a trusted proxy). The `__Host-` prefix makes browsers insist on
//! `Secure`, `Path=/` and no `Domain`, so no sibling subdomain can plant or overwrite it.
//! Always `HttpOnly` (no script can read it) and `SameSite=Lax` (not sent on cross-site
//! POSTs). The cookie holds only the raw session id; nothing else about the session.

use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue};

use crate::sessions::SessionId;

pub const PLAIN_NAME: &str = "fleet_session";
pub const SECURE_NAME: &str = "__Host-fleet_session";

/// What the request's `Cookie` header says about the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    /// No session cookie: an anonymous request.
    Absent,
    /// A session cookie that cannot be one of ours (wrong shape): never looked up.
    Forged { secure_name: bool },
    /// A well-formed id, still to be looked up in the store.
    Id { id: SessionId, secure_name: bool },
}

impl Presented {
    /// Whether the cookie came under the `__Host-` name (to clear the right one).
    pub fn secure_name(&self) -> Option<bool> {
        match self {
            Presented::Absent => None,
            Presented::Forged { secure_name } | Presented::Id { secure_name, .. } => {
                Some(*secure_name)
            }
        }
    }
}

/// Read the session cookie. The `__Host-` one wins when a browser sends both.
pub fn presented(headers: &HeaderMap) -> Presented {
    let mut found: Option<(bool, &str)> = None;
    for header in headers.get_all(COOKIE) {
        let Ok(text) = header.to_str() else { continue };
        for pair in text.split(';') {
            let Some((name, value)) = pair.trim().split_once('=') else {
                continue;
            };
            let secure_name = match name.trim() {
                SECURE_NAME => true,
                PLAIN_NAME => false,
                _ => continue,
            };
            if found.as_ref().is_none_or(|(s, _)| !*s) {
                found = Some((secure_name, value.trim().trim_matches('"')));
            }
        }
    }
    match found {
        None => Presented::Absent,
        Some((secure_name, value)) => match SessionId::parse(value) {
            Some(id) => Presented::Id { id, secure_name },
            None => Presented::Forged { secure_name },
        },
    }
}

/// `Set-Cookie` for a new session. `max_age_secs` is the absolute lifetime: the browser drops
/// the cookie when the server would refuse it anyway.
pub fn set(id: &SessionId, secure: bool, max_age_secs: u64) -> HeaderValue {
    let name = if secure { SECURE_NAME } else { PLAIN_NAME };
    header(format!(
        "{name}={}; Path=/; Max-Age={max_age_secs}; HttpOnly; SameSite=Lax{}",
        id.cookie_value(),
        if secure { "; Secure" } else { "" }
    ))
}

/// `Set-Cookie` that makes the browser forget the cookie it sent under this name.
pub fn clear(secure_name: bool) -> HeaderValue {
    let name = if secure_name { SECURE_NAME } else { PLAIN_NAME };
    header(format!(
        "{name}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{}",
        if secure_name { "; Secure" } else { "" }
    ))
}

/// Add a clearing `Set-Cookie` for whatever session cookie the request carried.
pub fn append_clear(headers: &mut HeaderMap, presented: &Presented) {
    if let Some(secure_name) = presented.secure_name() {
        headers.append(SET_COOKIE, clear(secure_name));
    }
}

fn header(text: String) -> HeaderValue {
    // Names and hex ids are visible ASCII, so this cannot fail.
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn reads_either_name_and_prefers_host_prefixed() {
        let a = SessionId::generate().unwrap();
        let b = SessionId::generate().unwrap();
        assert_eq!(presented(&HeaderMap::new()), Presented::Absent);
        assert_eq!(presented(&with_cookie("other=1")), Presented::Absent);
        let h = with_cookie(&format!("x=1; fleet_session={}", a.cookie_value()));
        assert_eq!(
            presented(&h),
            Presented::Id {
                id: a.clone(),
                secure_name: false
            }
        );
        let h = with_cookie(&format!(
            "__Host-fleet_session={}; fleet_session={}",
            b.cookie_value(),
            a.cookie_value()
        ));
        assert_eq!(
            presented(&h),
            Presented::Id {
                id: b,
                secure_name: true
            }
        );
        assert_eq!(
            presented(&with_cookie("fleet_session=../../etc/passwd")),
            Presented::Forged { secure_name: false }
        );
    }

    #[test]
    fn attributes() {
        let id = SessionId::generate().unwrap();
        let plain = set(&id, false, 60);
        let plain = plain.to_str().unwrap();
        assert!(plain.starts_with(&format!("fleet_session={}; ", id.cookie_value())));
        for attr in ["Path=/", "HttpOnly", "SameSite=Lax", "Max-Age=60"] {
            assert!(plain.contains(attr), "{plain}");
        }
        assert!(!plain.contains("Secure"));
        let secure = set(&id, true, 60);
        let secure = secure.to_str().unwrap();
        assert!(secure.starts_with("__Host-fleet_session="), "{secure}");
        assert!(secure.ends_with("; Secure"));
        assert!(!secure.contains("Domain"));
        assert_eq!(
            clear(true).to_str().unwrap(),
            "__Host-fleet_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax; Secure"
        );
    }
}
