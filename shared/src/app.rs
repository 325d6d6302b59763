//! Application access: the pure rules both ends of the browser path and `tsh` share (reference
//! `kube-app-db.md` §3): the cookies and reserved paths, which host names name an app, which
//! paths a launch may return to, the request headers an app never sees from the client, and the
//! values of `rewrite.headers`.

use crate::template::Traits;

/// The app session's id (Teleport's name).
pub const SESSION_COOKIE: &str = "__Host-grv_app_session";
/// The app session's second secret: the id alone (it appears in audit events) is not enough.
pub const SUBJECT_COOKIE: &str = "__Host-grv_app_session_subject";
/// The launch's state, on the app's host, for one minute.
pub const STATE_COOKIE: &str = "__Host-grv_app_auth_state";
/// Where the launch ends, on the app's host (never forwarded to the app).
pub const AUTH_PATH: &str = "/x-teleport-auth";
/// Signs out of the app session (never forwarded to the app).
pub const LOGOUT_PATH: &str = "/teleport-logout";
/// The JWT header an app verifies.
pub const JWT_HEADER: &str = "teleport-jwt-assertion";
/// The same token, Cloudflare Access's legacy name.
pub const CF_HEADER: &str = "cf-access-token";
/// Most minutes a JWT lives.
pub const JWT_TTL_SECS: i64 = 600;

/// Request headers set by the app service alone: whatever the client sent under these names is
/// dropped, and `rewrite.headers` may not set them.
pub fn reserved_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("x-forwarded-") || n.starts_with("teleport-") || matches!(n.as_str(), CF_HEADER | "forwarded")
}

/// Hop-by-hop headers (RFC 9110 §7.6.1), never forwarded; `Connection`/`Upgrade` stay on an
/// upgrade request.
pub fn hop_header(name: &str, upgrade: bool) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(n.as_str(), "keep-alive" | "te" | "trailer" | "transfer-encoding" | "proxy-connection" | "proxy-authorization")
        || (!upgrade && matches!(n.as_str(), "connection" | "upgrade"))
}

/// The value of cookie `name` in a `Cookie` header value.
pub fn cookie<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').filter_map(|c| c.trim().split_once('=')).find(|(k, _)| *k == name).map(|(_, v)| v)
}

/// A `Cookie` header value without the app session's cookies (`None`: nothing left).
pub fn strip_app_cookies(header: &str) -> Option<String> {
    let kept: Vec<&str> = header
        .split(';')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .filter(|c| {
            let name = c.split_once('=').map(|(k, _)| k).unwrap_or(c);
            !matches!(name, SESSION_COOKIE | SUBJECT_COOKIE | STATE_COOKIE)
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

/// A host name without its port, lower case (`[v6]:p` keeps the brackets' content).
pub fn host_only(host: &str) -> String {
    let h = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit())).map(|(h, _)| h).unwrap_or(host)
    };
    h.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `host` is a DNS name (apps live under one), not an IP address.
pub fn is_dns_name(host: &str) -> bool {
    let h = host_only(host);
    !h.is_empty() && h.parse::<std::net::IpAddr>().is_err() && h.contains('.') || h == "localhost"
}

/// Whether `host` (with or without a port) is a name directly under `proxy_host`, the form a
/// proxy's apps take: `<label>.<proxy host>`. Returns the label.
pub fn app_label(host: &str, proxy_host: &str) -> Option<String> {
    let h = host_only(host);
    let p = host_only(proxy_host);
    if !is_dns_name(&p) {
        return None;
    }
    let label = h.strip_suffix(&p)?.strip_suffix('.')?;
    let dns_label = !label.is_empty()
        && label.len() <= 63
        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-');
    dns_label.then(|| label.to_string())
}

/// Whether `host` is `proxy_host` or any name under it (an app's address at that proxy).
pub fn under(host: &str, proxy_host: &str) -> bool {
    let (h, p) = (host_only(host), host_only(proxy_host));
    is_dns_name(&p) && h.len() > p.len() && h.ends_with(&p) && h.as_bytes()[h.len() - p.len() - 1] == b'.'
}

/// Where browsers reach an app through the proxy whose public address is `proxy_public`: at its
/// own `public_addr` when that is a name under the proxy's host (for a leaf's app a claim the
/// launcher checks for collisions), else at `<name>.<proxy host>`; `None` when the proxy's host
/// is not a DNS name (browsers cannot reach apps there; `tsh` still can).
pub fn fqdn_at(name: &str, public_addr: &str, proxy_public: &str) -> Option<String> {
    let proxy = host_only(proxy_public);
    if !is_dns_name(&proxy) || proxy == "localhost" {
        return None;
    }
    if !public_addr.is_empty() && under(public_addr, &proxy) {
        return Some(host_only(public_addr));
    }
    Some(format!("{name}.{proxy}"))
}

/// Where a launch may send the browser on the app's host: a path of that host (never another
/// host, never a scheme-relative `//x`); `/` when `path` is not one.
pub fn safe_path(path: &str) -> String {
    let ok = path.starts_with('/')
        && !path.starts_with("//")
        && !path.starts_with("/\\")
        && !path.chars().any(|c| c.is_control() || c == '\\')
        && path.len() <= 4096;
    if ok { path.to_string() } else { "/".to_string() }
}

/// One `rewrite.headers` value for a request: `{{internal.x}}` / `{{external.x}}` from the
/// user's traits (several values joined by `,`), `{{internal.jwt}}` the app's token. `None`
/// when a variable has no value (the header is then not sent, as Teleport does).
pub fn expand_header(value: &str, internal: &Traits, external: &Traits, jwt: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("{{") {
        let end = rest[start..].find("}}")? + start;
        out.push_str(&rest[..start]);
        let expr: String = rest[start + 2..end].chars().filter(|c| !c.is_whitespace()).collect();
        let (ns, name) = match expr.split_once('[') {
            Some((ns, rest)) => (ns, rest.strip_prefix('"')?.strip_suffix("\"]")?),
            None => expr.split_once('.')?,
        };
        let v = match (ns, name) {
            ("internal", "jwt") => jwt.to_string(),
            ("internal", n) => internal.get(n).filter(|v| !v.is_empty())?.join(","),
            ("external", n) => external.get(n).filter(|v| !v.is_empty())?.join(","),
            _ => return None,
        };
        out.push_str(&v);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    // A value may not smuggle a second header or a request line.
    (!out.chars().any(|c| c == '\r' || c == '\n' || c == '\0')).then_some(out)
}

/// `Location` of a redirect from the app, rewritten to the public address when it points at
/// the app's own host or one of `rewrite.redirect`: the browser stays behind the proxy.
pub fn rewrite_location(location: &str, app_host: &str, redirect_hosts: &[String], public: &str) -> Option<String> {
    let (scheme, rest) = location.split_once("://")?;
    if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
        return None;
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let host = host_only(authority);
    let ours = host == host_only(app_host) || redirect_hosts.iter().any(|r| host_only(r) == host);
    ours.then(|| format!("https://{public}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_hosts_are_one_label_under_the_proxy() {
        assert_eq!(app_label("grafana.root.example.com", "root.example.com:3080").as_deref(), Some("grafana"));
        assert_eq!(app_label("Grafana.Root.example.com:3080", "root.example.com").as_deref(), Some("grafana"));
        assert_eq!(app_label("a.b.root.example.com", "root.example.com"), None, "one label only");
        assert_eq!(app_label("root.example.com", "root.example.com"), None);
        assert_eq!(app_label("evilroot.example.com", "root.example.com"), None);
        assert_eq!(app_label("x.127.0.0.1", "127.0.0.1:3080"), None, "no apps under an IP address");
        assert_eq!(app_label("-x.root.example.com", "root.example.com"), None);
        assert!(under("a.b.root.example.com", "root.example.com:3080") && !under("xroot.example.com", "root.example.com"));
        assert_eq!(host_only("[::1]:3080"), "::1");
        assert_eq!(host_only("Grafana.Example.com."), "grafana.example.com");
        assert_eq!(fqdn_at("grafana", "", "root.example.com:3080").as_deref(), Some("grafana.root.example.com"));
        assert_eq!(fqdn_at("grafana", "grafana.leaf.example.net", "root.example.com:3080").as_deref(), Some("grafana.root.example.com"));
        assert_eq!(fqdn_at("grafana", "metrics.root.example.com:443", "root.example.com").as_deref(), Some("metrics.root.example.com"));
        assert_eq!(fqdn_at("grafana", "", "127.0.0.1:3080"), None);
    }

    #[test]
    fn app_cookies_never_reach_the_app() {
        let h = format!("a=1; {SESSION_COOKIE}=s; b=2;{SUBJECT_COOKIE}=t; {STATE_COOKIE}=x");
        assert_eq!(strip_app_cookies(&h).as_deref(), Some("a=1; b=2"));
        assert_eq!(strip_app_cookies(&format!("{SESSION_COOKIE}=s")), None);
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("s"));
        assert_eq!(cookie(&h, "c"), None);
    }

    #[test]
    fn launches_return_only_to_paths_of_the_app() {
        assert_eq!(safe_path("/d/abc?x=1"), "/d/abc?x=1");
        for bad in ["//evil.example.com/", "https://evil.example.com", "/\\evil", "", "x", "/a\nb"] {
            assert_eq!(safe_path(bad), "/", "{bad:?}");
        }
    }

    #[test]
    fn header_values_expand_traits_and_the_token() {
        let mut internal = Traits::new();
        internal.insert("logins".into(), vec!["root".into(), "ops".into()]);
        let mut external = Traits::new();
        external.insert("email".into(), vec!["a@example.com".into()]);
        let e = |v: &str| expand_header(v, &internal, &external, "TOKEN");
        assert_eq!(e("Bearer {{internal.jwt}}").as_deref(), Some("Bearer TOKEN"));
        assert_eq!(e("{{internal.logins}}").as_deref(), Some("root,ops"));
        assert_eq!(e("{{ external.email }} <{{external[\"email\"]}}>").as_deref(), Some("a@example.com <a@example.com>"));
        assert_eq!(e("{{external.missing}}"), None);
        assert_eq!(e("{{other.x}}"), None);
        assert_eq!(e("plain").as_deref(), Some("plain"));
        let mut smuggle = Traits::new();
        smuggle.insert("x".into(), vec!["a\r\nX-Evil: 1".into()]);
        assert_eq!(expand_header("{{external.x}}", &internal, &smuggle, ""), None);
        assert!(reserved_header("X-Forwarded-For") && reserved_header("Teleport-Jwt-Assertion") && reserved_header("CF-Access-Token"));
        assert!(!reserved_header("Authorization"));
    }

    #[test]
    fn redirects_stay_behind_the_proxy() {
        let r = |l: &str| rewrite_location(l, "127.0.0.1:3000", &["internal.example".into()], "grafana.root.example.com:3080");
        assert_eq!(r("http://127.0.0.1:3000/login").as_deref(), Some("https://grafana.root.example.com:3080/login"));
        assert_eq!(r("https://internal.example/x?y").as_deref(), Some("https://grafana.root.example.com:3080/x?y"));
        assert_eq!(r("https://elsewhere.example/"), None);
        assert_eq!(r("/relative"), None);
    }
}
