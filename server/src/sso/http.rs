//! The HTTP client the proxy talks to identity providers with: one request per connection,
//! HTTPS through rustls with the platform's trust store (plus `SSL_CERT_FILE`), plain HTTP only
//! to loopback addresses (an identity provider on the same machine), never a redirect followed
//! (the OpenID Connect library's advice against SSRF), bounded in time and size.

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use shared::client::ServerTrust;
use shared::error::{Error, Result};

/// The longest answer read.
const MAX_BODY: usize = 1 << 20;
/// The longest a request may take, connection included.
const TIMEOUT: Duration = Duration::from_secs(15);

/// Why a request to an identity provider failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(pub String);

/// Whether `host` is this machine.
pub fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Checks that `url` may be used for an identity provider: `https`, or `http` on loopback.
pub fn check_url(what: &str, url: &str) -> Result<()> {
    let u = shared::sso::parse_url(url).map_err(|e| e.context(what))?;
    match u.scheme.as_str() {
        "https" => Ok(()),
        "http" if is_loopback(&u.host) => Ok(()),
        _ => {
            Err(Error::bad_parameter(format!("{what}: {url:?} must be an https:// URL (http:// only to this machine's loopback address)")))
        }
    }
}

/// Sends one request; the answer whatever its status (the caller judges it).
pub async fn send(req: http::Request<Vec<u8>>) -> std::result::Result<http::Response<Vec<u8>>, HttpError> {
    tokio::time::timeout(TIMEOUT, send_inner(req)).await.map_err(|_| HttpError("the identity provider did not answer in time".into()))?
}

async fn send_inner(req: http::Request<Vec<u8>>) -> std::result::Result<http::Response<Vec<u8>>, HttpError> {
    let e = |what: &str, err: &dyn std::fmt::Display| HttpError(format!("{what}: {err}"));
    let uri = req.uri().clone();
    let scheme = uri.scheme_str().unwrap_or_default().to_string();
    let host = uri.host().ok_or_else(|| HttpError(format!("no host in {uri}")))?.to_string();
    if scheme != "https" && !(scheme == "http" && is_loopback(&host)) {
        return Err(HttpError(format!("refusing {uri}: identity providers are reached over https (http only on loopback)")));
    }
    let port = uri.port_u16().unwrap_or(if scheme == "https" { 443 } else { 80 });
    let bare = host.trim_start_matches('[').trim_end_matches(']').to_string();
    let tcp = tokio::net::TcpStream::connect((bare.as_str(), port)).await.map_err(|x| e(&format!("connecting to {host}:{port}"), &x))?;
    shared::tuning::set_nodelay(&tcp);
    let (parts, body) = req.into_parts();
    let path = uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    let mut builder = hyper::Request::builder().method(parts.method).uri(path);
    for (k, v) in &parts.headers {
        builder = builder.header(k, v);
    }
    let host_header = if uri.port_u16().is_some() { format!("{host}:{port}") } else { host.clone() };
    let request = builder.header(hyper::header::HOST, host_header).body(Full::new(Bytes::from(body))).map_err(|x| e("request", &x))?;
    let response = if scheme == "https" {
        let mut cfg = shared::client::tls_client_config(&ServerTrust::System, None).map_err(|x| e("TLS", &x))?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        let name = rustls_pki_types::ServerName::try_from(bare.clone()).map_err(|x| e("server name", &x))?;
        let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
            .connect(name, tcp)
            .await
            .map_err(|x| e(&format!("TLS to {host}"), &x))?;
        round_trip(TokioIo::new(tls), request).await?
    } else {
        round_trip(TokioIo::new(tcp), request).await?
    };
    Ok(response)
}

async fn round_trip<I>(io: I, request: hyper::Request<Full<Bytes>>) -> std::result::Result<http::Response<Vec<u8>>, HttpError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.map_err(|x| HttpError(format!("HTTP: {x}")))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let resp = sender.send_request(request).await.map_err(|x| HttpError(format!("HTTP: {x}")))?;
    let (parts, body) = resp.into_parts();
    let bytes =
        Limited::new(body, MAX_BODY).collect().await.map_err(|x| HttpError(format!("reading the answer: {x}")))?.to_bytes().to_vec();
    let mut out = http::Response::builder().status(parts.status);
    for (k, v) in &parts.headers {
        out = out.header(k, v);
    }
    out.body(bytes).map_err(|x| HttpError(format!("response: {x}")))
}

/// A GET, expecting JSON with a 2xx status.
pub async fn get_json(url: &str, headers: &[(&str, &str)]) -> Result<serde_json::Value> {
    let mut b = http::Request::builder().method("GET").uri(url).header("Accept", "application/json");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(Vec::new()).map_err(|e| Error::bad_parameter(format!("{url}: {e}")))?;
    let resp = send(req).await.map_err(|e| Error::connection_problem(format!("{url}: {e}")))?;
    json_of(url, resp)
}

/// A GET, expecting JSON with a 2xx status, and the answer's `Link` header.
pub async fn get_json_link(url: &str, headers: &[(&str, &str)]) -> Result<(serde_json::Value, Option<String>)> {
    let mut b = http::Request::builder().method("GET").uri(url).header("Accept", "application/json");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(Vec::new()).map_err(|e| Error::bad_parameter(format!("{url}: {e}")))?;
    let resp = send(req).await.map_err(|e| Error::connection_problem(format!("{url}: {e}")))?;
    let link = resp.headers().get("link").and_then(|v| v.to_str().ok()).map(str::to_string);
    Ok((json_of(url, resp)?, link))
}

/// A GET of raw bytes with a 2xx status (a SAML entity descriptor).
pub async fn get_bytes(url: &str) -> Result<Vec<u8>> {
    let req = http::Request::builder().method("GET").uri(url).body(Vec::new()).map_err(|e| Error::bad_parameter(format!("{url}: {e}")))?;
    let resp = send(req).await.map_err(|e| Error::connection_problem(format!("{url}: {e}")))?;
    if !resp.status().is_success() {
        return Err(Error::connection_problem(format!("{url} answered {}", resp.status())));
    }
    Ok(resp.into_body())
}

/// A form POST, expecting JSON with a 2xx status.
pub async fn post_form(url: &str, form: &[(&str, &str)], headers: &[(&str, &str)]) -> Result<serde_json::Value> {
    let body: Vec<String> =
        form.iter().map(|(k, v)| format!("{}={}", shared::sso::query_escape(k), shared::sso::query_escape(v))).collect();
    let mut b = http::Request::builder()
        .method("POST")
        .uri(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Accept", "application/json");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let req = b.body(body.join("&").into_bytes()).map_err(|e| Error::bad_parameter(format!("{url}: {e}")))?;
    let resp = send(req).await.map_err(|e| Error::connection_problem(format!("{url}: {e}")))?;
    json_of(url, resp)
}

fn json_of(url: &str, resp: http::Response<Vec<u8>>) -> Result<serde_json::Value> {
    let status = resp.status();
    let body = resp.into_body();
    if !status.is_success() {
        let text: String = String::from_utf8_lossy(&body).chars().take(200).collect();
        return Err(Error::access_denied(format!("{url} answered {status}: {text}")));
    }
    serde_json::from_slice(&body).map_err(|e| Error::access_denied(format!("{url} did not answer JSON: {e}")))
}
