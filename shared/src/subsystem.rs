//! The `proxy:` SSH subsystem request a client sends to a proxy (reference §5.6):
//! `proxy:host:port`, `proxy:host:port@cluster`, `proxy:host:port@namespace@cluster`, and
//! `proxy:@cluster` (that cluster's API). Untrusted input: parsed by a pure function that
//! never panics and bounds every part.

use crate::error::{Error, Result};

/// The extended-data type on which a proxy that refuses a `proxy:` request says why for
/// programs: a [`crate::error::WireError`] (its kind, code and message). Type 1 (standard error)
/// carries the message for people; clients that know no other type show only that (OpenSSH
/// ignores the others).
pub const REFUSAL_DATA_TYPE: u32 = 2;

/// What the client asked the proxy to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRequest {
    /// Node hostname, UUID or address; empty means the cluster's API.
    pub host: String,
    /// Port; `None` when empty or `0` (any).
    pub port: Option<u16>,
    /// Target cluster; `None` means the proxy's own cluster.
    pub cluster: Option<String>,
}

impl ProxyRequest {
    /// Formats the request the way clients send it.
    pub fn to_subsystem(&self) -> String {
        let mut s = format!("proxy:{}", self.host_port());
        if let Some(c) = &self.cluster {
            s.push('@');
            s.push_str(c);
        }
        s
    }

    /// `host:port` (port 0 when unset); empty for an API request.
    pub fn host_port(&self) -> String {
        if self.host.is_empty() {
            return String::new();
        }
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        format!("{host}:{}", self.port.unwrap_or(0))
    }
}

const MAX_LEN: usize = 1024;

fn bad(req: &str) -> Error {
    let shown: String = req.chars().take(200).collect();
    Error::bad_parameter(format!("invalid format for proxy request: {shown:?}, expected 'proxy:host:port@cluster'"))
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 253 && s.chars().all(|c| c.is_ascii_alphanumeric() || "-._".contains(c))
}

/// Parses a subsystem name. Only `proxy:` requests are accepted.
pub fn parse_proxy_request(req: &str) -> Result<ProxyRequest> {
    if req.len() > MAX_LEN {
        return Err(bad(req));
    }
    let rest = req.strip_prefix("proxy:").ok_or_else(|| bad(req))?;
    let parts: Vec<&str> = rest.split('@').collect();
    let (addr, cluster) = match parts.as_slice() {
        [addr] => (*addr, None),
        [addr, cluster] => (*addr, Some(*cluster)),
        [addr, namespace, cluster] => {
            if *namespace != "default" && !namespace.is_empty() {
                return Err(Error::bad_parameter(format!("namespace {namespace:?} is not supported")));
            }
            (*addr, Some(*cluster))
        }
        _ => return Err(bad(req)),
    };
    let cluster = match cluster {
        None => None,
        Some(c) if valid_name(c) => Some(c.to_string()),
        Some(_) => return Err(bad(req)),
    };
    if addr.is_empty() {
        if cluster.is_none() {
            return Err(bad(req));
        }
        return Ok(ProxyRequest { host: String::new(), port: None, cluster });
    }
    let (host, port) = split_host_port(addr).ok_or_else(|| bad(req))?;
    if host.is_empty() || host.len() > 253 || host.chars().any(|c| c.is_control() || c.is_whitespace() || "/[]".contains(c)) {
        return Err(bad(req));
    }
    Ok(ProxyRequest { host: host.to_string(), port, cluster })
}

/// Splits `host[:port]`, `[v6]:port`. An empty or zero port is `None`.
fn split_host_port(addr: &str) -> Option<(&str, Option<u16>)> {
    if let Some(rest) = addr.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        let port = match after {
            "" => None,
            p => parse_port(p.strip_prefix(':')?)?,
        };
        return Some((host, port));
    }
    match addr.matches(':').count() {
        0 => Some((addr, None)),
        1 => {
            let (h, p) = addr.split_once(':')?;
            Some((h, parse_port(p)?))
        }
        _ => None,
    }
}

fn parse_port(p: &str) -> Option<Option<u16>> {
    if p.is_empty() {
        return Some(None);
    }
    match p.parse::<u16>() {
        Ok(0) => Some(None),
        Ok(n) => Some(Some(n)),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> ProxyRequest {
        parse_proxy_request(s).unwrap_or_else(|e| ProxyRequest { host: format!("ERR {e}"), port: None, cluster: None })
    }

    #[test]
    fn forms() {
        assert_eq!(ok("proxy:db1:3022"), ProxyRequest { host: "db1".into(), port: Some(3022), cluster: None });
        assert_eq!(ok("proxy:db1:0@leaf"), ProxyRequest { host: "db1".into(), port: None, cluster: Some("leaf".into()) });
        assert_eq!(
            ok("proxy:db1@leaf.example.com"),
            ProxyRequest { host: "db1".into(), port: None, cluster: Some("leaf.example.com".into()) }
        );
        assert_eq!(ok("proxy:db1:22@default@leaf"), ProxyRequest { host: "db1".into(), port: Some(22), cluster: Some("leaf".into()) });
        assert_eq!(ok("proxy:@leaf"), ProxyRequest { host: String::new(), port: None, cluster: Some("leaf".into()) });
        assert_eq!(ok("proxy:[::1]:22"), ProxyRequest { host: "::1".into(), port: Some(22), cluster: None });
        assert_eq!(ok("proxy:127.0.0.1:"), ProxyRequest { host: "127.0.0.1".into(), port: None, cluster: None });
    }

    #[test]
    fn brackets_only_delimit_an_address() {
        // Found by the proxy_request fuzz target: "[[x]:2" used to give the host "[x".
        assert!(parse_proxy_request("proxy:[[\u{1ff}1]:2").is_err());
        assert!(parse_proxy_request("proxy:a]:22").is_err());
        assert_eq!(ok("proxy:[db1]:22"), ProxyRequest { host: "db1".into(), port: Some(22), cluster: None });
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "proxy",
            "proxy:",
            "proxy:@",
            "proxysites",
            "exec:x",
            "proxy:a:b:c",
            "proxy:a:99999",
            "proxy:a@b@c@d",
            "proxy:a@b/c",
            "proxy:a b:22",
            "proxy:[::1",
            "proxy:[::1]x",
            "proxy:a:-1",
            "proxy:a@default2@b",
        ] {
            assert!(parse_proxy_request(bad).is_err(), "{bad:?} should fail");
        }
        let long = format!("proxy:{}", "a".repeat(5000));
        let e = parse_proxy_request(&long).err().map(|e| e.message).unwrap_or_default();
        assert!(e.starts_with("invalid format for proxy request"), "{e}");
        assert!(e.len() < 400);
    }

    #[test]
    fn format_round_trip() {
        for s in ["proxy:db1:3022", "proxy:db1:0@leaf", "proxy:@leaf", "proxy:[::1]:22@c"] {
            let r = ok(s);
            assert_eq!(ok(&r.to_subsystem()), r, "{s}");
        }
    }
}
