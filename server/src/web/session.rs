//! The HTTP side of web sessions: the browser has the session id in the `__Host-session` cookie
//! (`HttpOnly; Secure; SameSite=Lax; Path=/`). Page forms carry the session's CSRF token; JSON
//! calls and the terminal's first message carry its bearer token (Teleport's model: a cross-site
//! page can make the browser send the cookie, never the token). The store is
//! `crate::auth::websession`.

use axum::http::HeaderMap;

pub use crate::auth::websession::{IDLE, WebSession, create, delete, exists, load, save};

/// The cookie's name (Teleport's).
pub const COOKIE: &str = "__Host-session";

impl WebSession {
    /// The `Set-Cookie` value that gives the browser this session.
    pub fn cookie(&self, now: i64) -> String {
        format!("{COOKIE}={}; Path=/; Max-Age={}; HttpOnly; Secure; SameSite=Lax", self.id, (self.expires - now).max(0))
    }
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax")
}

/// The value of the cookie `name` in a request.
pub fn cookie_named(headers: &HeaderMap, name: &str) -> Option<String> {
    shared::app::cookie(&crate::access::app::front::cookies_of(headers), name).map(str::to_string)
}

/// The session id in a request's cookies.
pub fn cookie_of(headers: &HeaderMap) -> Option<String> {
    cookie_named(headers, COOKIE).filter(|v| crate::auth::websession::valid_id(v))
}

/// The bearer token of a request.
pub fn bearer_of(headers: &HeaderMap) -> Option<String> {
    headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::api::CertsResponse;

    fn session(created: i64, expires: i64) -> WebSession {
        WebSession {
            id: "a".repeat(64),
            client: None,
            user: "alice".into(),
            bearer: "b".repeat(64),
            csrf: "c".repeat(64),
            created,
            expires,
            last_active: created,
            ssh_key: String::new(),
            tls_key: String::new(),
            certs: CertsResponse {
                username: "alice".into(),
                cluster_name: "c".into(),
                ssh_cert: String::new(),
                tls_cert: String::new(),
                host_cas: vec![],
            },
        }
    }

    #[test]
    fn tokens_compare_exactly_and_cookies_carry_the_flags() {
        let s = session(0, 3600);
        assert!(s.bearer_matches(&"b".repeat(64)) && !s.bearer_matches("b") && !s.bearer_matches(""));
        assert!(s.csrf_matches(&"c".repeat(64)) && !s.csrf_matches(&"b".repeat(64)));
        let c = s.cookie(0);
        for flag in ["__Host-session=", "Path=/", "Max-Age=3600", "HttpOnly", "Secure", "SameSite=Lax"] {
            assert!(c.contains(flag), "{flag} in {c}");
        }
        let mut h = HeaderMap::new();
        h.insert(axum::http::header::COOKIE, format!("x=1; {COOKIE}={}; y=2", s.id).parse().unwrap());
        assert_eq!(cookie_of(&h).as_deref(), Some(s.id.as_str()));
        h.insert(axum::http::header::COOKIE, format!("{COOKIE}=short").parse().unwrap());
        assert_eq!(cookie_of(&h), None, "only well-formed ids are looked up");
    }
}
