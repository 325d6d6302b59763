//! `tsh login` through an identity provider (Teleport's console flow): a callback server on
//! loopback, the console request with our public keys and a one-time key, the browser sent to
//! the provider, and the proxy's answer sealed under that key.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use shared::api::{CertsResponse, PublicKeys};
use shared::client::{ApiClient, ServerTrust};
use shared::sso::{ConsoleRequest, ConsoleResponse, Sealed, SshLoginResponse};
use tokio::sync::mpsc;

/// The longest tsh waits for the browser (Teleport's three minutes).
pub const WAIT: Duration = Duration::from_secs(180);

/// What the user chose on the command line.
pub struct SsoLogin<'a> {
    /// `oidc`, `github` or `saml`.
    pub kind: &'a str,
    /// The connector's name.
    pub connector: &'a str,
    /// The proxy, `host:port`.
    pub addr: &'a str,
    /// How the proxy's certificate is checked.
    pub trust: &'a ServerTrust,
    /// `--browser=none` prints the link only.
    pub browser: Option<&'a str>,
    /// `--bind-addr` (default 127.0.0.1:0).
    pub bind_addr: Option<&'a str>,
    /// Requested TTL, seconds (0: the cluster's default).
    pub ttl_seconds: u64,
    /// `tsh login <leaf>`.
    pub route_to_cluster: Option<String>,
    /// The root's name (from ping).
    pub cluster: &'a str,
}

/// What arrived at the callback.
enum Callback {
    /// `response=` (sealed).
    Response(String),
    /// `err=`.
    Error(String),
}

fn page(status: StatusCode, location: Option<String>, text: &str) -> Response<Full<Bytes>> {
    let mut b = Response::builder().status(status).header("Cache-Control", "no-store");
    if let Some(l) = location {
        b = b.header("Location", l);
    }
    b.body(Full::new(Bytes::from(text.to_string()))).unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

async fn handle(
    req: Request<Incoming>,
    short_path: String,
    idp_url: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    proxy: String,
    tx: mpsc::Sender<(Callback, tokio::sync::oneshot::Sender<bool>)>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    if path == short_path {
        let url = idp_url.lock().ok().and_then(|u| u.clone());
        return Ok(match url {
            Some(u) => page(StatusCode::FOUND, Some(u), ""),
            None => page(StatusCode::SERVICE_UNAVAILABLE, None, "the login is not ready yet; reload this page"),
        });
    }
    if path != "/callback" {
        return Ok(page(StatusCode::NOT_FOUND, None, "not found"));
    }
    let mut query = req.uri().query().unwrap_or_default().to_string();
    if req.method() == hyper::Method::POST {
        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
        query = String::from_utf8_lossy(&body).to_string();
    }
    let q = shared::sso::parse_query(&query);
    let get = |k: &str| q.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let cb = match (get("response"), get("err")) {
        (_, Some(e)) if !e.is_empty() => Callback::Error(e),
        (Some(r), _) if !r.is_empty() => Callback::Response(r),
        _ => return Ok(page(StatusCode::BAD_REQUEST, None, "expected response= or err=")),
    };
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    if tx.send((cb, done_tx)).await.is_err() {
        return Ok(page(StatusCode::GONE, None, "tsh is no longer waiting for this login"));
    }
    let ok = done_rx.await.unwrap_or(false);
    let target = if ok { format!("https://{proxy}/web/msg/info/login_success") } else { format!("https://{proxy}/web/msg/error/login") };
    Ok(page(StatusCode::FOUND, Some(target), ""))
}

fn open_browser(url: &str) {
    let cmd = std::env::var("BROWSER").ok().filter(|b| !b.is_empty()).unwrap_or_else(|| "xdg-open".into());
    let _ = std::process::Command::new(cmd)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}

/// Runs the login and returns the certificates for `keys`.
pub async fn login(l: &SsoLogin<'_>, keys: &PublicKeys, err: &mut dyn Write) -> anyhow::Result<CertsResponse> {
    let bind = l.bind_addr.unwrap_or("127.0.0.1:0");
    let bind: SocketAddr = bind.parse().with_context(|| format!("--bind-addr {bind:?} must be host:port, e.g. 127.0.0.1:0"))?;
    if !bind.ip().is_loopback() {
        bail!("--bind-addr must be a loopback address (127.0.0.1:PORT): the proxy only returns logins to this machine");
    }
    let listener = tokio::net::TcpListener::bind(bind).await.with_context(|| format!("listening on {bind} for the login callback"))?;
    let port = listener.local_addr()?.port();
    let secret = shared::sso::new_key();
    let short_path = format!("/{}", shared::certs::random_hex(16));
    let idp_url = std::sync::Arc::new(std::sync::Mutex::new(None::<String>));
    let (tx, mut rx) = mpsc::channel(4);
    let server = {
        let (short_path, idp_url, proxy) = (short_path.clone(), idp_url.clone(), l.addr.to_string());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (short_path, idp_url, proxy, tx) = (short_path.clone(), idp_url.clone(), proxy.clone(), tx.clone());
                tokio::spawn(async move {
                    let svc =
                        hyper::service::service_fn(move |req| handle(req, short_path.clone(), idp_url.clone(), proxy.clone(), tx.clone()));
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), svc).await;
                });
            }
        })
    };
    let result = async {
        let b64 = |s: &str| shared::sso::b64_encode(s);
        let req = ConsoleRequest {
            redirect_url: format!("http://127.0.0.1:{port}/callback?secret_key={secret}"),
            ssh_pub_key: b64(&keys.ssh_public_key),
            tls_pub_key: b64(&keys.tls_public_key),
            cert_ttl: i64::try_from(l.ttl_seconds).unwrap_or(0).saturating_mul(1_000_000_000),
            connector_id: l.connector.to_string(),
            route_to_cluster: l.route_to_cluster.clone().unwrap_or_default(),
            ..Default::default()
        };
        let client = ApiClient::direct(l.addr, l.trust, None)?.with_timeout(Duration::from_secs(30));
        let resp: ConsoleResponse =
            client.post(&format!("/v1/webapi/{}/login/console", l.kind), &req).await.map_err(|e| anyhow!("{}", e.message))?;
        if let Ok(mut u) = idp_url.lock() {
            *u = Some(resp.redirect_url.clone());
        }
        let link = format!("http://127.0.0.1:{port}{short_path}");
        if l.browser == Some("none") {
            writeln!(err, "Use the following URL to authenticate:\n {link}")?;
        } else {
            writeln!(err, "If browser window does not open automatically, open it by clicking on the link:\n {link}")?;
            open_browser(&link);
        }
        err.flush()?;
        let (cb, done) = tokio::select! {
            got = rx.recv() => got.ok_or_else(|| anyhow!("the login callback server stopped"))?,
            _ = tokio::time::sleep(WAIT) => bail!("timed out after {}s waiting for the browser to finish the login; run tsh login again", WAIT.as_secs()),
            _ = tokio::signal::ctrl_c() => bail!("login canceled"),
        };
        let outcome = match cb {
            Callback::Error(e) => Err(anyhow!("identity provider callback failed with error: {e}")),
            Callback::Response(r) => decrypt(&secret, &r, l.cluster),
        };
        let _ = done.send(outcome.is_ok());
        // Let the browser get its redirect before the server goes.
        tokio::time::sleep(Duration::from_millis(100)).await;
        outcome
    }
    .await;
    server.abort();
    result
}

/// Opens the proxy's sealed answer.
pub fn decrypt(secret: &str, response: &str, cluster: &str) -> anyhow::Result<CertsResponse> {
    let sealed: Sealed =
        serde_json::from_str(response).map_err(|_| anyhow!("failed to decrypt response: it is not a sealed login response"))?;
    let plain =
        shared::sso::open(secret, &sealed).map_err(|_| anyhow!("failed to decrypt response: it was not sealed with this login's key"))?;
    let login: SshLoginResponse = serde_json::from_slice(&plain).map_err(|e| anyhow!("failed to decode the login response: {e}"))?;
    Ok(login.to_certs(cluster)?)
}
