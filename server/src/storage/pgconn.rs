//! Teleport's PostgreSQL connection strings (`storage.conn_string`, `audit_events_uri`):
//! `postgresql://user[:password]@host[:port]/db?sslmode=verify-full&pool_max_conns=20`, or libpq's
//! `key=value` form. tokio-postgres reads most of it; what it does not (`sslmode` beyond
//! `require`, `sslrootcert`, `sslcert`, `sslkey`, pgx's `pool_max_conns`) is taken out here and
//! carried out with rustls (our one crypto provider).

use std::path::PathBuf;
use std::str::FromStr;

use shared::client::{ClientIdentity, ServerTrust};
use shared::error::{Error, Result};

/// What TLS to use, with libpq's meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    /// No TLS.
    Disable,
    /// TLS if the server offers it, unverified.
    Prefer,
    /// TLS, unverified (verified like `verify-ca` when `sslrootcert` is given, as libpq does).
    Require,
    /// TLS, the chain verified against `sslrootcert` (or the system roots).
    VerifyCa,
    /// TLS, the chain and the host name verified.
    VerifyFull,
}

/// A parsed connection string.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// What tokio-postgres connects with.
    pub config: tokio_postgres::Config,
    /// TLS.
    pub ssl: SslMode,
    /// `sslrootcert`.
    pub root_cert: Option<PathBuf>,
    /// `sslcert` and `sslkey`.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// `pool_max_conns` (default 10).
    pub pool_max: usize,
    /// `host:port/db` for messages (never the password).
    pub describe: String,
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a connection string; `what` names the setting in errors.
pub fn parse(conn: &str, what: &str) -> Result<ConnInfo> {
    let bad = |m: String| Error::bad_parameter(format!("{what}: {m}"));
    let conn = conn.trim();
    let (mut ssl, mut root_cert, mut cert, mut key, mut pool_max) = (SslMode::Prefer, None, None, None, 10usize);
    let mut take = |k: &str, v: &str| -> Result<bool> {
        match k {
            "sslmode" => {
                ssl = match v {
                    "disable" => SslMode::Disable,
                    "allow" | "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" => SslMode::VerifyFull,
                    other => {
                        return Err(bad(format!("unknown sslmode {other:?}; use disable, require, verify-ca or verify-full")));
                    }
                };
            }
            "sslrootcert" => root_cert = Some(PathBuf::from(v)),
            "sslcert" => cert = Some(PathBuf::from(v)),
            "sslkey" => key = Some(PathBuf::from(v)),
            "pool_max_conns" => {
                pool_max =
                    v.parse().ok().filter(|n| *n > 0).ok_or_else(|| bad(format!("pool_max_conns {v:?} must be a positive number")))?;
            }
            // pgx settings tokio-postgres does not know: accepted, not used.
            "pool_min_conns" | "pool_max_conn_lifetime" | "pool_max_conn_idle_time" | "pool_health_check_period" => {}
            _ => return Ok(false),
        }
        Ok(true)
    };
    let rebuilt = if let Some(rest) = conn.strip_prefix("postgresql://").or_else(|| conn.strip_prefix("postgres://")) {
        let (base, query) = rest.split_once('?').unwrap_or((rest, ""));
        let mut kept = Vec::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            if !take(k, &percent_decode(v))? {
                kept.push(pair.to_string());
            }
        }
        let mut s = format!("postgresql://{base}");
        if !kept.is_empty() {
            s.push('?');
            s.push_str(&kept.join("&"));
        }
        s
    } else {
        let mut kept = Vec::new();
        for pair in conn.split_whitespace() {
            let (k, v) = pair.split_once('=').ok_or_else(|| bad(format!("{pair:?} is not key=value")))?;
            if !take(k, v.trim_matches('\''))? {
                kept.push(pair.to_string());
            }
        }
        kept.join(" ")
    };
    let mut config = tokio_postgres::Config::from_str(&rebuilt).map_err(|e| bad(format!("{e}")))?;
    config.ssl_mode(match ssl {
        SslMode::Disable => tokio_postgres::config::SslMode::Disable,
        SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
        _ => tokio_postgres::config::SslMode::Require,
    });
    if config.get_hosts().is_empty() {
        return Err(bad("no host: use postgresql://USER@HOST:5432/DATABASE".into()));
    }
    if config.get_dbname().is_none() {
        return Err(bad("no database name: use postgresql://USER@HOST:5432/DATABASE".into()));
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(10));
    }
    config.application_name("teleport");
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => String::new(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let describe = format!("{host}:{port}/{}", config.get_dbname().unwrap_or_default());
    let client_cert = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => return Err(bad("sslcert and sslkey go together".into())),
    };
    Ok(ConnInfo { config, ssl, root_cert, client_cert, pool_max, describe })
}

impl ConnInfo {
    /// The TLS connector for this connection string.
    pub fn tls(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
        let read = |p: &PathBuf| {
            std::fs::read_to_string(p).map_err(|e| Error::bad_parameter(format!("cannot read {} (storage TLS files): {e}", p.display())))
        };
        let roots = self.root_cert.as_ref().map(read).transpose()?;
        let trust = match (self.ssl, roots) {
            (SslMode::VerifyFull, Some(r)) => ServerTrust::Pinned(vec![r]),
            (SslMode::VerifyFull, None) => ServerTrust::System,
            (SslMode::VerifyCa | SslMode::Require, Some(r)) => ServerTrust::ChainOnly(vec![r]),
            (SslMode::VerifyCa, None) => {
                return Err(Error::bad_parameter("sslmode=verify-ca needs sslrootcert=<the CA that signed the server's certificate>"));
            }
            (SslMode::Disable | SslMode::Prefer | SslMode::Require, _) => ServerTrust::Insecure,
        };
        let identity = match &self.client_cert {
            Some((c, k)) => Some(ClientIdentity { cert_pem: read(c)?, key_pem: read(k)? }),
            None => None,
        };
        let mut cfg = shared::client::tls_client_config(&trust, identity.as_ref())?;
        cfg.alpn_protocols.clear();
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(cfg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn teleports_uri_is_understood() {
        let c = parse("postgresql://teleport@db.example.com:5433/teleport_backend?sslmode=verify-full&pool_max_conns=20", "x").unwrap();
        assert_eq!(c.ssl, SslMode::VerifyFull);
        assert_eq!(c.pool_max, 20);
        assert_eq!(c.describe, "db.example.com:5433/teleport_backend");
        assert_eq!(c.config.get_user(), Some("teleport"));
        let c = parse("postgres://u:p%40ss@127.0.0.3/db?sslmode=disable&application_name=x", "x").unwrap();
        assert_eq!(c.ssl, SslMode::Disable);
        assert_eq!(c.config.get_password(), Some(&b"p@ss"[..]));
        let c = parse("host=127.0.0.3 port=5432 user=postgres dbname=kv sslmode=require", "x").unwrap();
        assert_eq!((c.ssl, c.describe.as_str()), (SslMode::Require, "127.0.0.3:5432/kv"));
    }

    #[test]
    fn mistakes_name_the_setting() {
        let e = |s: &str| parse(s, "storage.conn_string").err().map(|e| e.message).unwrap_or_default();
        assert!(e("postgresql://u@h/db?sslmode=verify").contains("storage.conn_string: unknown sslmode \"verify\""));
        assert!(e("postgresql://u@h/db?pool_max_conns=0").contains("pool_max_conns"));
        assert!(e("postgresql://u@h:notaport/db").starts_with("storage.conn_string:"));
        assert!(e("postgresql://u@h").contains("no database name"));
        assert!(e("postgresql://u@h/db?sslcert=/a").contains("sslcert and sslkey go together"));
    }
}
