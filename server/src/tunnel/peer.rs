//! Peer forwarding: a proxy asked for a leaf (or a tunnel node) whose tunnel it does not hold
//! opens the connection through a peer proxy of the same cluster that does. Agents tunnel to
//! every proxy, so this only matters while they catch up (a proxy just started, a leaf that
//! cannot reach one proxy directly); with it there is no window in which a live leaf is
//! unreachable through some proxy.
//!
//! ```text
//!   user ─▶ proxy A (authz, audit, routing) ── no tunnel from leaf X here
//!           A ── TCP to B's peer_addr, TLS both ways with proxy host certificates ──▶ B
//!           A: {"key":{"cluster":"X"},"request":{...},"from":"A"}\n
//!           B: opens the channel on its own tunnel from X ── "OK\n" | "ERR <reason>\n"
//!           then bytes flow: user ⇄ A ⇄ B ⇄ X
//! ```
//! Only proxies of this cluster may use the peer port: a client certificate signed by the
//! cluster's host CA with the `Proxy` role, checked on every connection against the CA as it is
//! now. A peer only forwards over tunnels it holds itself (never to a third proxy), so a
//! request cannot loop. Authorization and audit stay with the proxy the user reached.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::json;
use shared::certs::{self, PeerCert};
use shared::client::{BoxStream, ServerTrust};
use shared::error::{Code, Error, Result};
use shared::identity::CertIdentity;
use shared::resource::CaType;
use shared::resource::token::SystemRole;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::wire::{MAX_REQUEST_LEN, PeerRequest, TunnelKey, TunnelRequest};
use super::{TunnelRegistry, read_answer, read_line_bounded, write_err, write_ok};
use crate::audit::codes;
use crate::auth::AuthServer;
use crate::limits::Limiter;
use crate::shutdown::Shutdown;
use crate::ssh::LiveCreds;
use crate::tunnel::proxies::ProxyRegistry;

/// ALPN of the peer port (so that nothing else mistakes it for HTTPS).
const ALPN: &[u8] = b"teleport-peer";

/// Dials tunnels held here or by a peer; serves peers' requests for tunnels held here.
pub struct Peering {
    /// The auth service (CAs, tunnel records, audit).
    pub auth: Arc<AuthServer>,
    /// This process's tunnels.
    pub local: Arc<TunnelRegistry>,
    /// The cluster's proxies.
    pub registry: Arc<ProxyRegistry>,
    /// This proxy's host credentials (the TLS half is shown to peers, both ways).
    pub creds: LiveCreds,
    /// Connections forwarded for peers now.
    pub forwarding: Arc<std::sync::atomic::AtomicUsize>,
}

impl Peering {
    /// Opens a channel for `req` through a tunnel for `key`: one held here, else one a peer
    /// holds (peers known to hold it first), else the `offline` error.
    pub async fn dial(&self, key: &TunnelKey, req: &TunnelRequest) -> Result<BoxStream> {
        let mut last = key.offline();
        if !self.local.entries(key).is_empty() {
            match self.local.dial(key, req).await {
                Ok(s) => return Ok(s),
                Err(e) if e.kind != shared::Kind::ConnectionProblem => return Err(e),
                Err(e) => last = e,
            }
        }
        let mut peers = match self.registry.peers().await {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(error = %e, "cannot list peer proxies");
                return Err(last);
            }
        };
        if peers.is_empty() {
            return Err(last);
        }
        if let TunnelKey::Cluster(leaf) = key {
            let holders: Vec<String> = self
                .auth
                .tunnel_connections()
                .await
                .unwrap_or_default()
                .into_iter()
                .filter(|c| &c.spec.cluster_name == leaf)
                .map(|c| c.spec.proxy_name)
                .collect();
            peers.sort_by_key(|p| !holders.contains(&p.metadata.name));
        }
        for p in peers {
            match self.dial_peer(&p.spec.peer_addr, key, req).await {
                Ok(Ok(stream)) => {
                    tracing::info!(tunnel = ?key, peer = %p.metadata.name, "connected through a peer proxy");
                    self.audit_forward(key, req, &p.metadata.name).await;
                    return Ok(stream);
                }
                // The peer holds the tunnel and the far end answered: that answer is final.
                Ok(Err(e)) if !e.has(Code::TunnelOffline) => return Err(e),
                Ok(Err(e)) => last = e,
                Err(e) => tracing::debug!(tunnel = ?key, peer = %p.metadata.name, error = %e, "peer proxy could not connect"),
            }
        }
        Err(last)
    }

    async fn audit_forward(&self, key: &TunnelKey, req: &TunnelRequest, peer: &str) {
        let (cluster, node) = match key {
            TunnelKey::Cluster(c) => (c.clone(), req.target.encode()),
            TunnelKey::Node(n) => (self.auth.cluster_name().to_string(), n.clone()),
        };
        let origin = req.origin.as_ref();
        self.auth
            .audit
            .emit(
                codes::TUNNEL_CONNECT,
                json!({
                    "user": origin.map(|o| o.user.clone()).unwrap_or_default(),
                    "addr.remote": origin.map(|o| o.addr.clone()).unwrap_or_default(),
                    "cluster_name": cluster,
                    "target": node,
                    "proxy": self.registry.id(),
                    "proxy_peer": peer,
                }),
            )
            .await;
    }

    fn client_config(&self, roots: Vec<String>) -> Result<rustls::ClientConfig> {
        let id = self.creds.current().client_identity();
        let mut cfg = shared::client::tls_client_config(&ServerTrust::Pinned(roots), Some(&id))?;
        cfg.alpn_protocols = vec![ALPN.to_vec()];
        Ok(cfg)
    }

    async fn host_ca_pems(&self) -> Result<Vec<String>> {
        Ok(self.auth.own_ca(CaType::Host).await?.tls_certs_pem())
    }

    /// Asks the peer at `addr`: `Err` if it could not be asked, `Ok(answer)` otherwise.
    async fn dial_peer(&self, addr: &str, key: &TunnelKey, req: &TunnelRequest) -> Result<Result<BoxStream>> {
        let cfg = self.client_config(self.host_ca_pems().await?)?;
        let tcp = tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| Error::connection_problem(format!("peer {addr} did not answer in time")))?
            .map_err(|e| shared::client::connect_error(addr, &e))?;
        shared::tuning::set_nodelay(&tcp);
        let name = ServerName::try_from(certs::CLUSTER_LOCAL_NAME).map_err(|e| Error::internal(format!("server name: {e}")))?;
        let mut tls = tokio::time::timeout(Duration::from_secs(5), tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect(name, tcp))
            .await
            .map_err(|_| Error::connection_problem(format!("peer {addr}: TLS handshake timed out")))?
            .map_err(|e| Error::connection_problem(format!("peer {addr}: TLS: {e}")))?;
        let server = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|d| certs::parse_peer_cert(d));
        match server {
            Some(Ok(p)) => check_proxy_cert(&p, self.auth.cluster_name(), self.auth.clock.now().unix_timestamp())?,
            _ => return Err(Error::access_denied(format!("peer {addr} presented no usable certificate"))),
        }
        let ask = PeerRequest { key: key.clone(), request: req.clone(), from: self.registry.id().to_string() };
        let line = format!("{}\n", ask.encode());
        tls.write_all(line.as_bytes()).await.map_err(|e| Error::connection_problem(format!("peer {addr}: {e}")))?;
        tls.flush().await.map_err(|e| Error::connection_problem(format!("peer {addr}: {e}")))?;
        let answer = read_answer(&mut tls).await?;
        Ok(answer.map(|()| Box::new(tls) as BoxStream))
    }

    async fn server_config(&self) -> Result<Arc<rustls::ServerConfig>> {
        shared::client::install_crypto_provider();
        let mut roots = rustls::RootCertStore::empty();
        for pem in self.host_ca_pems().await? {
            if let Ok(der) = certs::first_pem_der(&pem, "CERTIFICATE") {
                let _ = roots.add(CertificateDer::from(der));
            }
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| Error::internal(format!("TLS client verifier: {e}")))?;
        let key = self.creds.tls().ok_or_else(|| Error::internal("this proxy has no TLS certificate"))?;
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::internal(format!("TLS setup: {e}")))?
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::new(rustls::sign::SingleCertAndKey::from(key)));
        cfg.alpn_protocols = vec![ALPN.to_vec()];
        Ok(Arc::new(cfg))
    }

    /// Serves peers on `listener` until `shutdown`.
    pub async fn run_listener(self: Arc<Self>, listener: TcpListener, limiter: Arc<Limiter>, shutdown: Shutdown) {
        crate::limits::accept_until(listener, limiter, shutdown, "peer port", move |tcp, peer, permit| {
            let me = self.clone();
            async move {
                let mark = permit.mark();
                let _permit = permit;
                me.serve_peer(tcp, peer, mark).await
            }
        })
        .await;
    }

    async fn serve_peer(&self, tcp: tokio::net::TcpStream, addr: SocketAddr, mark: crate::limits::AuthMark) {
        shared::tuning::set_nodelay(&tcp);
        let cfg = match self.server_config().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot serve a peer proxy");
                return;
            }
        };
        let tls = match tokio::time::timeout(Duration::from_secs(10), tokio_rustls::TlsAcceptor::from(cfg).accept(tcp)).await {
            Ok(Ok(t)) => t,
            Ok(Err(e)) => {
                tracing::warn!(peer = %addr, error = %e, "refused a connection on the peer port");
                return;
            }
            Err(_) => return,
        };
        let client = tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|d| certs::parse_peer_cert(d));
        let now = self.auth.clock.now().unix_timestamp();
        if let Err(e) = match client {
            Some(Ok(p)) => check_proxy_cert(&p, self.auth.cluster_name(), now),
            _ => Err(Error::access_denied("no client certificate")),
        } {
            tracing::warn!(peer = %addr, error = %e, "refused a connection on the peer port");
            return;
        }
        // A proxy of this cluster: its connection no longer counts as a handshake.
        mark.authenticated();
        let mut reader = BufReader::new(tls);
        let line = match tokio::time::timeout(Duration::from_secs(10), read_line_bounded(&mut reader, MAX_REQUEST_LEN + 1024)).await {
            Ok(Ok(Some(l))) => l,
            _ => return,
        };
        let ask = match PeerRequest::decode(&line) {
            Ok(a) => a,
            Err(e) => {
                let _ = write_err(reader.get_mut(), &e).await;
                return;
            }
        };
        let key = ask.key.clone();
        // Only tunnels held here: a peer never forwards to a third proxy.
        match self.local.dial(&key, &ask.request).await {
            Ok(target) => {
                if write_ok(reader.get_mut()).await.is_err() {
                    return;
                }
                tracing::info!(tunnel = ?key, peer = %ask.from, "forwarding a connection for a peer proxy");
                let _counted = crate::shutdown::InFlight::new(&self.forwarding);
                // Bytes the asking proxy sent after its request line are in the reader's buffer.
                super::splice(reader, target).await;
            }
            Err(e) => {
                let _ = write_err(reader.get_mut(), &e).await;
            }
        }
    }
}

/// A certificate of a proxy of `cluster`, valid `now`.
fn check_proxy_cert(p: &PeerCert, cluster: &str, now: i64) -> Result<()> {
    if p.issuer_cluster != cluster || p.issuer_ca_type != CaType::Host.to_string() {
        return Err(Error::access_denied(format!(
            "certificate of {:?} ({}), not of a proxy of {cluster:?}",
            p.issuer_cluster, p.issuer_ca_type
        )));
    }
    if now < p.not_before || now >= p.not_after {
        return Err(Error::access_denied("the certificate has expired or is not yet valid"));
    }
    let id = CertIdentity::from_json(p.identity_json.as_deref().unwrap_or_default())?;
    match id {
        CertIdentity::Host(h) if h.role == SystemRole::Proxy => Ok(()),
        _ => Err(Error::access_denied("only proxies of this cluster may use the peer port")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_keep_the_format_of_older_peers() {
        use crate::tunnel::wire::Target;
        let r = PeerRequest { key: TunnelKey::Cluster("leaf".into()), request: TunnelRequest::plain(Target::Api), from: "a".into() };
        assert_eq!(r.encode(), r#"{"key":{"cluster":"leaf"},"request":{"target":"api"},"from":"a"}"#);
        assert_eq!(PeerRequest::decode(&r.encode()).unwrap(), r);
    }

    #[test]
    fn only_proxy_certificates_of_this_cluster_pass() {
        let host = |role: SystemRole| {
            CertIdentity::Host(shared::identity::HostIdentity { host_id: "h".into(), nodename: "n".into(), role }).to_json()
        };
        let cert = |cluster: &str, ca: &str, id: String| PeerCert {
            issuer_cluster: cluster.into(),
            issuer_ca_type: ca.into(),
            common_name: "h".into(),
            identity_json: Some(id),
            not_before: 0,
            not_after: 100,
        };
        assert!(check_proxy_cert(&cert("root", "host", host(SystemRole::Proxy)), "root", 50).is_ok());
        assert!(check_proxy_cert(&cert("root", "host", host(SystemRole::Node)), "root", 50).is_err(), "a node");
        assert!(check_proxy_cert(&cert("leaf", "host", host(SystemRole::Proxy)), "root", 50).is_err(), "another cluster");
        assert!(check_proxy_cert(&cert("root", "user", host(SystemRole::Proxy)), "root", 50).is_err(), "the user CA");
        assert!(check_proxy_cert(&cert("root", "host", host(SystemRole::Proxy)), "root", 100).is_err(), "expired");
    }
}
