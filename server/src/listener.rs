//! The web port: one TCP listener that speaks HTTPS, SSH and PostgreSQL, told apart by the first
//! byte a client sends (`S` of `SSH-2.0-…`, the TLS handshake record `0x16`, the 0 that starts a
//! PostgreSQL startup packet's length). Inside TLS, ALPN `teleport-postgres` is a database
//! client. A client speaking plain HTTP gets a one-line hint to use `https://`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use shared::certs::{PeerCert, parse_peer_cert};
use shared::client::{BoxFuture, BoxStream};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

use crate::limits::{Limiter, Permit};
use crate::proxy::router::ApiStreamServer;
use crate::proxy::ssh::ProxySsh;
use crate::shutdown::Shutdown;
use crate::tls::TlsState;
use crate::tunnel::Origin;

/// The answer to an anonymous HTTPS connection beyond its share (`max_startups`).
const BUSY: &str = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 5\r\nConnection: close\r\n\
    Content-Length: 83\r\n\r\n{\"error\":{\"message\":\"too many connections without a certificate; try again shortly\"}}";

/// What the HTTP layer knows about a connection.
#[derive(Clone)]
pub struct ConnInfo {
    /// Remote address (None for in-process tunnel streams).
    pub peer: Option<SocketAddr>,
    /// The verified client certificate, if one was presented.
    pub cert: Option<PeerCert>,
    /// For a connection that came through a trusted root's tunnel: who it is for and where they
    /// connected from, as the root's proxy told us.
    pub origin: Option<Origin>,
    /// The connection's place in the limits: a request that takes the connection over (a
    /// WebSocket) holds it for as long as it lives, since HTTP is done with it at the upgrade.
    pub permit: Option<Arc<Permit>>,
}

impl ConnInfo {
    /// True when the connection came through a reverse tunnel rather than straight to our port.
    pub fn via_tunnel(&self) -> bool {
        self.origin.is_some() || self.peer.is_none()
    }
}

/// HTTPS over any stream.
pub struct ApiServer {
    /// TLS configuration.
    pub tls: Arc<TlsState>,
    /// The axum application.
    pub app: axum::Router,
    /// Process shutdown.
    pub shutdown: Shutdown,
    /// Kubernetes clients (TLS server name [`shared::kube::PROXY_SNI`]), when this proxy
    /// serves them.
    pub kube: Option<Arc<crate::access::kube::front::KubeFront>>,
    /// Every connection is a Kubernetes client (`proxy_service.kube_listen_addr`).
    pub kube_only: bool,
    /// Applications (TLS server names under the proxy's public host, or app certificates),
    /// when this proxy serves them.
    pub apps: Option<Arc<crate::access::app::front::AppFront>>,
    /// Databases (first byte 0, or ALPN `teleport-postgres`), when this proxy serves them.
    pub db: Option<Arc<crate::access::db::front::DbFront>>,
}

/// Marks the end of a connection's TLS handshake in the limits (no permit: an in-process stream);
/// false when the connection is refused.
fn handshake_done(permit: Option<&Permit>, with_cert: bool) -> bool {
    permit.is_none_or(|p| p.mark().tls_done(with_cert))
}

impl ApiServer {
    /// TLS handshake, then HTTP/1.1 until the client leaves or the process shuts down. A
    /// `permit` is marked authenticated once the handshake is done (the HTTP layer has its own
    /// timeouts) and held until the connection ends.
    pub async fn serve_tls<S>(self: Arc<Self>, stream: S, peer: Option<SocketAddr>, origin: Option<Origin>, permit: Option<Permit>)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let acceptor = tokio_rustls::TlsAcceptor::from(self.tls.config());
        let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                // A refused client certificate is worth an operator's attention (an expired
                // identity, a clock off, a forgery); other failed handshakes are usually scanners.
                let refused_cert = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                    .is_some_and(|r| matches!(r, rustls::Error::InvalidCertificate(_)));
                if refused_cert {
                    tracing::warn!(?peer, error = %e, "refused a client certificate");
                } else {
                    tracing::debug!(?peer, error = %e, "TLS handshake failed");
                }
                return;
            }
            Err(_) => return,
        };
        if let Some(kube) = &self.kube
            && (self.kube_only || tls.get_ref().1.server_name() == Some(shared::kube::PROXY_SNI))
        {
            let der = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec());
            if !handshake_done(permit.as_ref(), der.is_some()) {
                return;
            }
            kube.clone().serve(Box::new(tls), der, peer).await;
            drop(permit);
            return;
        }
        if let Some(db) = &self.db
            && tls.get_ref().1.alpn_protocol() == Some(shared::pg::ALPN.as_bytes())
        {
            let der = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec());
            if !handshake_done(permit.as_ref(), der.is_some()) {
                return;
            }
            db.clone().serve(Box::new(tls), der, true, peer, None).await;
            drop(permit);
            return;
        }
        let cert = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).and_then(|der| parse_peer_cert(der).ok());
        if let Some(apps) = &self.apps {
            let app_cert = cert.as_ref().and_then(PeerCert::user).is_some_and(|u| u.route_to_app.is_some());
            let sni = tls.get_ref().1.server_name().map(str::to_string);
            if app_cert || apps.is_app_host(sni.as_deref()) {
                if !handshake_done(permit.as_ref(), cert.is_some()) {
                    return;
                }
                let der = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec());
                match (app_cert, der) {
                    (true, Some(der)) => apps.clone().serve_cert(Box::new(tls), der, peer).await,
                    _ => apps.clone().serve_browser(Box::new(tls), sni.unwrap_or_default(), peer).await,
                }
                drop(permit);
                return;
            }
        }
        // A verified client certificate authenticates the connection; without one it stays
        // anonymous for its whole life (pages, ping, sign-in), counted apart from the rest.
        if !handshake_done(permit.as_ref(), cert.is_some()) {
            let mut tls = tls;
            let _ = tls.write_all(BUSY.as_bytes()).await;
            let _ = tls.shutdown().await;
            return;
        }
        let info = Arc::new(ConnInfo { peer, cert, origin, permit: permit.map(Arc::new) });
        let app = self.app.clone();
        let svc = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(info.clone());
            app.clone().oneshot(req.map(axum::body::Body::new))
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(30))
            .keep_alive(true)
            .serve_connection(TokioIo::new(tls), svc)
            .with_upgrades();
        tokio::pin!(conn);
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(?peer, error = %e, "HTTP connection error");
                }
            }
            _ = shutdown.wait() => {
                conn.as_mut().graceful_shutdown();
                let _ = tokio::time::timeout(Duration::from_secs(10), conn).await;
            }
        }
    }
}

impl ApiStreamServer for ApiServer {
    fn serve(&self, stream: BoxStream, peer: Option<SocketAddr>, origin: Option<Origin>) -> BoxFuture<'static, ()> {
        let me = Arc::new(ApiServer {
            tls: self.tls.clone(),
            app: self.app.clone(),
            shutdown: self.shutdown.clone(),
            kube: None,
            kube_only: false,
            apps: None,
            db: None,
        });
        Box::pin(me.serve_tls(stream, peer, origin, None))
    }
}

/// The multiplexed web listener.
pub struct WebListener {
    /// HTTPS.
    pub api: Arc<ApiServer>,
    /// SSH.
    pub ssh: Arc<ProxySsh>,
    /// Connection limits, shared by every listener of the process.
    pub limiter: Arc<Limiter>,
}

impl WebListener {
    /// Accepts until shutdown.
    pub async fn run(self: Arc<Self>, listener: TcpListener, shutdown: Shutdown) {
        let limiter = self.limiter.clone();
        crate::limits::accept_until(listener, limiter, shutdown, "web port", move |tcp, peer, permit| {
            let me = self.clone();
            async move { me.handle(tcp, peer, permit).await }
        })
        .await;
    }

    async fn handle(self: Arc<Self>, mut tcp: TcpStream, peer: SocketAddr, permit: Permit) {
        let mut first = [0u8; 1];
        let wait = self.limiter.limits().login_grace_time.min(Duration::from_secs(30));
        let peeked = tokio::time::timeout(wait, tcp.peek(&mut first)).await;
        match peeked {
            Ok(Ok(1)) => {}
            _ => return,
        }
        // Each protocol's future boxed: this task lives as long as the connection, and unboxed
        // it would hold room for the largest of them (HTTPS) whatever came, a tunnel included.
        match first[0] {
            b'S' => Box::pin(self.ssh.serve(tcp, Some(peer), Some(permit))).await,
            0x16 => Box::pin(self.api.clone().serve_tls(tcp, Some(peer), None, Some(permit))).await,
            0 if self.api.db.is_some() => {
                if let Some(db) = &self.api.db {
                    Box::pin(serve_pg(db.clone(), tcp, peer, permit)).await;
                }
            }
            _ => {
                let body = "This port speaks HTTPS, SSH and PostgreSQL. Use https:// (for example: curl https://HOST:PORT/webapi/ping).\n";
                let resp = format!(
                    "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tcp.write_all(resp.as_bytes()).await;
                let _ = tcp.shutdown().await;
            }
        }
    }
}

/// A PostgreSQL client on plain TCP: in the handshake counts until its TLS handshake presents a
/// certificate (or none).
async fn serve_pg(db: Arc<crate::access::db::front::DbFront>, tcp: TcpStream, peer: SocketAddr, permit: Permit) {
    db.serve(Box::new(tcp), None, false, Some(peer), Some(permit.mark())).await;
    drop(permit);
}

/// `proxy_service.postgres_listen_addr`: PostgreSQL clients alone.
pub struct PgListener {
    /// The proxy side of database access.
    pub front: Arc<crate::access::db::front::DbFront>,
    /// Connection limits, shared by every listener of the process.
    pub limiter: Arc<Limiter>,
}

impl PgListener {
    /// Accepts until shutdown.
    pub async fn run(self: Arc<Self>, listener: TcpListener, shutdown: Shutdown) {
        let limiter = self.limiter.clone();
        crate::limits::accept_until(listener, limiter, shutdown, "postgres_listen_addr", move |tcp, peer, permit| {
            serve_pg(self.front.clone(), tcp, peer, permit)
        })
        .await;
    }
}
