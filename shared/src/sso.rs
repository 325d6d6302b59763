//! The wire format of Teleport's console ("tsh") SSO login, shared by the proxy and tsh.
//!
//! ```text
//! tsh: key K (32 random bytes), listener http://127.0.0.1:PORT
//!   POST /webapi/<oidc|github|saml>/login/console {redirect_url: ".../callback?secret_key=<hex K>", keys, cert_ttl, connector_id}
//!   <- {redirect_url: <the identity provider's login page>}
//! browser -> identity provider -> proxy callback: certificates signed
//!   302 http://127.0.0.1:PORT/callback?response={"ciphertext","nonce"}&secret_key=&secret=   (AES-256-GCM under K)
//!   302 http://127.0.0.1:PORT/callback?err=<why>                                              (a failure)
//! ```
//! K travels only inside the console request (over TLS to the proxy), so the browser's history
//! and other local programs see only ciphertext.

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The one answer every failed console request gets (Teleport's `SSOLoginFailureMessage`);
/// the proxy's log says why.
pub const LOGIN_FAILED: &str = "Failed to login. Please check Teleport's log for more details.";

/// `POST /webapi/<kind>/login/console` (Teleport's `SSOLoginConsoleReq`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ConsoleRequest {
    /// tsh's callback: `http://127.0.0.1:PORT/callback?secret_key=<hex>`.
    pub redirect_url: String,
    /// Older tsh: the SSH public key (base64 of the `authorized_keys` line).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub public_key: String,
    /// The SSH public key (base64 of the `authorized_keys` line).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ssh_pub_key: String,
    /// The TLS public key (base64 of its PEM).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub tls_pub_key: String,
    /// Requested certificate lifetime in nanoseconds (Go's `time.Duration`).
    #[serde(default)]
    pub cert_ttl: i64,
    /// The connector's name.
    pub connector_id: String,
    /// `tsh login <leaf>` (Go field without a JSON tag, hence the capital).
    #[serde(rename = "RouteToCluster", default, skip_serializing_if = "String::is_empty")]
    pub route_to_cluster: String,
    /// Accepted and ignored.
    #[serde(rename = "KubernetesCluster", default, skip_serializing_if = "String::is_empty")]
    pub kubernetes_cluster: String,
    /// Accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compatibility: Option<String>,
}

/// Its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConsoleResponse {
    /// Where to send the browser.
    pub redirect_url: String,
}

/// A trusted host CA in the login response (Teleport's `auth.TrustedCerts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostSigner {
    /// The cluster.
    pub domain_name: String,
    /// SSH CA keys, each base64 of an `authorized_keys` line.
    #[serde(default)]
    pub checking_keys: Vec<String>,
    /// TLS CA certificates, each base64 of a PEM.
    #[serde(default)]
    pub tls_certs: Vec<String>,
}

/// What tsh gets back (Teleport's `SSHLoginResponse`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SshLoginResponse {
    /// The Teleport user.
    pub username: String,
    /// base64 of the SSH certificate line.
    pub cert: String,
    /// base64 of the TLS certificate PEM.
    pub tls_cert: String,
    /// The host CAs the user trusts.
    #[serde(default)]
    pub host_signers: Vec<HostSigner>,
}

impl SshLoginResponse {
    /// The wire form of issued certificates.
    pub fn from_certs(c: &crate::api::CertsResponse) -> SshLoginResponse {
        SshLoginResponse {
            username: c.username.clone(),
            cert: b64_encode(&c.ssh_cert),
            tls_cert: b64_encode(&c.tls_cert),
            host_signers: c
                .host_cas
                .iter()
                .map(|ca| HostSigner {
                    domain_name: ca.cluster_name.clone(),
                    checking_keys: ca.ssh_public_keys.iter().map(|k| b64_encode(k)).collect(),
                    tls_certs: ca.tls_certs.iter().map(|t| b64_encode(t)).collect(),
                })
                .collect(),
        }
    }

    /// Back to certificates (`cluster` from the proxy's ping).
    pub fn to_certs(&self, cluster: &str) -> Result<crate::api::CertsResponse> {
        let mut host_cas = Vec::new();
        for h in &self.host_signers {
            host_cas.push(crate::api::TrustedCa {
                cluster_name: h.domain_name.clone(),
                ca_type: "host".into(),
                ssh_public_keys: h.checking_keys.iter().map(|k| b64_decode(k)).collect::<Result<_>>()?,
                tls_certs: h.tls_certs.iter().map(|t| b64_decode(t)).collect::<Result<_>>()?,
            });
        }
        Ok(crate::api::CertsResponse {
            username: self.username.clone(),
            cluster_name: cluster.into(),
            ssh_cert: b64_decode(&self.cert)?,
            tls_cert: b64_decode(&self.tls_cert)?,
            host_cas,
        })
    }
}

/// The sealed form of a response (`lib/secret`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sealed {
    /// base64 ciphertext with the GCM tag.
    pub ciphertext: String,
    /// base64 12-byte nonce.
    pub nonce: String,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

/// base64 of a string's bytes (Go's `[]byte` in JSON).
pub fn b64_encode(s: &str) -> String {
    b64().encode(s.as_bytes())
}

/// The text of a base64 `[]byte`.
pub fn b64_decode(s: &str) -> Result<String> {
    let bytes = b64().decode(s.trim()).map_err(|e| Error::bad_parameter(format!("invalid base64: {e}")))?;
    String::from_utf8(bytes).map_err(|_| Error::bad_parameter("invalid text in base64"))
}

/// A new response key, hex (64 characters).
pub fn new_key() -> String {
    crate::certs::random_hex(32)
}

fn key_bytes(hex_key: &str) -> Result<[u8; 32]> {
    let k = hex_key.trim();
    if k.len() != 64 || !k.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::bad_parameter("the secret key must be 64 hexadecimal characters"));
    }
    let mut out = [0u8; 32];
    for (i, chunk) in k.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(chunk).map_err(|_| Error::bad_parameter("bad key"))?;
        out[i] = u8::from_str_radix(s, 16).map_err(|_| Error::bad_parameter("bad key"))?;
    }
    Ok(out)
}

/// Seals `plaintext` with AES-256-GCM under `hex_key`, as Teleport's `secret.Key.Seal`.
pub fn seal(hex_key: &str, plaintext: &[u8]) -> Result<Sealed> {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key_bytes(hex_key)?).map_err(|_| Error::internal("AES key"))?);
    let mut nonce = [0u8; 12];
    rand::RngExt::fill(&mut rand::rng(), &mut nonce[..]);
    let mut data = plaintext.to_vec();
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut data)
        .map_err(|_| Error::internal("sealing the response"))?;
    Ok(Sealed { ciphertext: b64().encode(&data), nonce: b64().encode(nonce) })
}

/// Opens what [`seal`] sealed; any tampering fails.
pub fn open(hex_key: &str, sealed: &Sealed) -> Result<Vec<u8>> {
    use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    let bad = || Error::access_denied("failed to decrypt the login response (was it changed on the way?)");
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key_bytes(hex_key)?).map_err(|_| bad())?);
    let nonce: [u8; 12] = b64().decode(&sealed.nonce).ok().and_then(|n| n.try_into().ok()).ok_or_else(bad)?;
    let mut data = b64().decode(&sealed.ciphertext).map_err(|_| bad())?;
    let plain = key.open_in_place(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut data).map_err(|_| bad())?;
    Ok(plain.to_vec())
}

/// A parsed URL's parts we check (no URL crate in the shared library: these are simple).
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedUrl {
    /// `http` or `https`.
    pub scheme: String,
    /// Host (brackets removed from IPv6).
    pub host: String,
    /// Port as written (empty if none).
    pub port: String,
    /// Path.
    pub path: String,
    /// Query pairs, decoded.
    pub query: Vec<(String, String)>,
}

/// Percent-decodes a query component (`+` is a space).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses the query part of a URL (`a=1&b=2`).
pub fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

/// Parses `scheme://host[:port]/path?query`, refusing userinfo, fragments and opaque forms.
pub fn parse_url(raw: &str) -> Result<ParsedUrl> {
    let bad = |why: &str| Error::bad_parameter(format!("invalid URL {raw:?}: {why}"));
    let (scheme, rest) = raw.split_once("://").ok_or_else(|| bad("no scheme"))?;
    if raw.contains('#') {
        return Err(bad("fragments are not allowed"));
    }
    let (authority, path_query) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => match rest.find('?') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        },
    };
    if authority.contains('@') {
        return Err(bad("user information is not allowed"));
    }
    let (host, port) = if let Some(h) = authority.strip_prefix('[') {
        let (h, after) = h.split_once(']').ok_or_else(|| bad("unclosed IPv6 address"))?;
        (h.to_string(), after.strip_prefix(':').unwrap_or("").to_string())
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.to_string()),
            None => (authority.to_string(), String::new()),
        }
    };
    if host.is_empty() || (!port.is_empty() && port.parse::<u16>().is_err()) {
        return Err(bad("bad host or port"));
    }
    let (path, query) = match path_query.split_once('?') {
        Some((p, q)) => (p.to_string(), parse_query(q)),
        None => (path_query.to_string(), vec![]),
    };
    Ok(ParsedUrl { scheme: scheme.to_ascii_lowercase(), host: host.to_ascii_lowercase(), port, path, query })
}

/// Teleport's `ValidateClientRedirect` for console logins: `http` to a loopback host, any port,
/// path exactly `/callback`, exactly one query parameter `secret_key`, no user information and
/// no fragment. Returns the secret key.
pub fn validate_client_redirect(raw: &str) -> Result<String> {
    let denied = || Error::access_denied("invalid or disallowed client redirect URL");
    let u = parse_url(raw).map_err(|_| denied())?;
    if u.scheme != "http" || !matches!(u.host.as_str(), "localhost" | "127.0.0.1" | "::1") {
        return Err(denied());
    }
    if u.path != "/callback" || u.query.len() != 1 || u.query[0].0 != "secret_key" {
        return Err(denied());
    }
    key_bytes(&u.query[0].1).map_err(|_| denied())?;
    Ok(u.query[0].1.clone())
}

/// Percent-encodes a query value.
pub fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where the proxy sends the browser after a successful login: the client's callback with the
/// sealed response, and `secret_key`/`secret` emptied (Teleport keeps them, empty).
pub fn success_redirect(client_redirect: &str, sealed: &Sealed) -> Result<String> {
    let base = client_redirect.split_once('?').map(|(b, _)| b).unwrap_or(client_redirect);
    let json = serde_json::to_string(sealed).map_err(|e| Error::internal(format!("encoding: {e}")))?;
    Ok(format!("{base}?response={}&secret=&secret_key=", query_escape(&json)))
}

/// Where it sends the browser after a failure: the client's callback with `err`.
pub fn error_redirect(client_redirect: &str, message: &str) -> String {
    let base = client_redirect.split_once('?').map(|(b, _)| b).unwrap_or(client_redirect);
    format!("{base}?err={}", query_escape(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open_round_trip_and_detect_tampering() {
        let k = new_key();
        let s = seal(&k, b"hello").unwrap();
        assert_eq!(open(&k, &s).unwrap(), b"hello");
        let mut bad = s.clone();
        let mut ct = b64().decode(&bad.ciphertext).unwrap();
        ct[0] ^= 1;
        bad.ciphertext = b64().encode(ct);
        assert!(open(&k, &bad).is_err(), "one flipped byte");
        assert!(open(&new_key(), &s).is_err(), "another key");
    }

    #[test]
    fn client_redirects_are_checked_as_teleport_does() {
        let k = "a".repeat(64);
        assert_eq!(validate_client_redirect(&format!("http://127.0.0.1:1234/callback?secret_key={k}")).unwrap(), k);
        assert!(validate_client_redirect(&format!("http://localhost:9/callback?secret_key={k}")).is_ok());
        assert!(validate_client_redirect(&format!("http://[::1]:9/callback?secret_key={k}")).is_ok());
        for bad in [
            format!("http://evil.example/callback?secret_key={k}"),
            format!("https://127.0.0.1:1234/callback?secret_key={k}"),
            format!("http://127.0.0.1:1234/callback?secret_key={k}&x=1"),
            format!("http://127.0.0.1:1234/cb?secret_key={k}"),
            format!("http://user@127.0.0.1:1234/callback?secret_key={k}"),
            format!("http://127.0.0.1:1234/callback?secret_key={k}#frag"),
            "http://127.0.0.1:1234/callback?secret_key=short".to_string(),
            "http://127.0.0.1:1234/callback".to_string(),
            "javascript:alert(1)".to_string(),
        ] {
            let e = validate_client_redirect(&bad).unwrap_err();
            assert_eq!(e.message, "invalid or disallowed client redirect URL", "{bad}");
        }
    }

    #[test]
    fn redirects_carry_the_sealed_response_or_the_error() {
        let k = new_key();
        let s = seal(&k, b"{}").unwrap();
        let url = success_redirect(&format!("http://127.0.0.1:5/callback?secret_key={k}"), &s).unwrap();
        let u = parse_url(&url).unwrap();
        let get = |n: &str| u.query.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let back: Sealed = serde_json::from_str(&get("response").unwrap()).unwrap();
        assert_eq!(back, s);
        assert_eq!(get("secret_key").as_deref(), Some(""), "the key is not in the URL the browser sees");
        let e = error_redirect(&format!("http://127.0.0.1:5/callback?secret_key={k}"), "no roles & more");
        assert_eq!(parse_url(&e).unwrap().query, vec![("err".to_string(), "no roles & more".to_string())]);
    }

    #[test]
    fn console_requests_use_teleports_field_names() {
        let j = r#"{"redirect_url":"u","ssh_pub_key":"cw==","tls_pub_key":"dA==","cert_ttl":43200000000000,"connector_id":"okta","RouteToCluster":"leaf"}"#;
        let r: ConsoleRequest = serde_json::from_str(j).unwrap();
        assert_eq!(r.cert_ttl, 43_200_000_000_000);
        assert_eq!(r.route_to_cluster, "leaf");
        assert_eq!(b64_decode(&r.ssh_pub_key).unwrap(), "s");
        assert_eq!(percent_decode("a%20b+c%2"), "a b c%2");
    }
}
