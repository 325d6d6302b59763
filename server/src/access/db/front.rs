//! Databases at a proxy: PostgreSQL clients on the web port (told apart by their first byte, 0,
//! or by ALPN `teleport-postgres` inside TLS) and on `proxy_service.postgres_listen_addr`.
//!
//! ```text
//! psql ─ SSLRequest ─▶ 'S', TLS (host-CA certificate, the user's database certificate)
//!      ─ GSSENCRequest ─▶ 'N'          plaintext StartupMessage ─▶ FATAL: expected TLS
//! tsh proxy db ─ TLS, ALPN teleport-postgres, the certificate ─▶ StartupMessage
//!   └▶ this cluster's database service, or a leaf's through its tunnel (Target::Db, with the
//!      certificate and the StartupMessage as the client sent it)
//! ```
//!
//! The proxy decides who the user is and whether they may see the cluster; the cluster that
//! serves the database decides the rest (`engine.rs`).

use std::net::SocketAddr;
use std::sync::Arc;

use shared::client::BoxStream;
use shared::error::{Code, Error, Result};
use shared::identity::Caller;
use shared::pg::Startup;
use tokio::io::AsyncWriteExt;

use super::engine::{DbEngine, read_startup, refuse};
use crate::access::cluster::Forwarded;
use crate::auth::AuthServer;
use crate::authz::Authorizer;
use crate::proxy::dial::Dialer;
use crate::tls::TlsState;
use crate::tunnel::{Origin, Target};

/// Most startup packets (`SSLRequest`, `GSSENCRequest`) before the `StartupMessage`.
const MAX_NEGOTIATIONS: usize = 3;

/// The proxy side of database access.
pub struct DbFront {
    /// The auth service.
    pub auth: Arc<AuthServer>,
    /// Tunnels held here, else by a peer proxy.
    pub dialer: Arc<dyn Dialer>,
    /// This process's database service, if it runs one.
    pub engine: Option<Arc<DbEngine>>,
    /// The web port's TLS (PostgreSQL clients get the host-CA certificate).
    pub tls: Arc<TlsState>,
}

/// Hands a connection for one of this cluster's databases to the service that serves it: this
/// process's, or one in a process of its own through that process's tunnel (with the
/// certificate, which it verifies itself). `startup` is the `StartupMessage` (parsed and as
/// sent) when the caller has read it; otherwise it is still on the stream.
pub async fn serve_in_cluster(
    auth: &AuthServer,
    dialer: &dyn Dialer,
    engine: Option<&Arc<DbEngine>>,
    mut stream: BoxStream,
    fwd: Forwarded,
    startup: Option<(Startup, Vec<u8>)>,
) {
    let route = fwd.claimed_user();
    let name = route.as_ref().and_then(|u| u.route_to_database.as_ref()).map(|r| r.service_name.clone());
    if let Some(e) = engine
        && name.as_ref().is_none_or(|n| e.serves(n))
    {
        // Here (or no route: the engine says what is wrong with the certificate).
        match startup {
            Some((s, _)) => e.clone().serve_startup(stream, s, fwd).await,
            None => e.clone().serve(stream, fwd).await,
        }
        return;
    }
    let now = auth.clock.now();
    let record = match &name {
        Some(n) => auth.services.get::<shared::resource::Db>(&crate::services::keys::db(n)).await.ok().flatten().map(|r| r.value),
        None => None,
    };
    let Some(db) = record.filter(|d| d.spec.tunnel && d.metadata.expires.is_none_or(|e| e > now)) else {
        let msg =
            format!("database {:?} not found among registered databases in cluster {:?}", name.unwrap_or_default(), auth.cluster_name());
        refuse(&mut stream, "3D000", &msg).await;
        return;
    };
    match crate::access::dial_agent(dialer, db.spec.host_id.clone(), Target::Db, route, &fwd, auth.cluster_name()).await {
        Ok(mut agent) => {
            if let Some((_, raw)) = startup
                && agent.write_all(&raw).await.is_err()
            {
                refuse(&mut stream, "08006", "the database service closed the connection").await;
                return;
            }
            crate::tunnel::splice(stream, agent).await
        }
        Err(e) => {
            tracing::info!(db = %db.metadata.name, host = %db.spec.hostname, error = %e, "the database's service cannot be reached");
            refuse(&mut stream, "08006", &format!("database {:?} cannot be reached now: its service is offline", db.metadata.name)).await;
        }
    }
}

impl DbFront {
    /// Serves a PostgreSQL client: `der` is the certificate of a TLS connection this proxy already
    /// ended (ALPN-routed), `None` for a plain TCP connection (which must ask for TLS; `mark`
    /// then learns whether its handshake brought a certificate).
    pub async fn serve(
        self: Arc<Self>,
        stream: BoxStream,
        der: Option<Vec<u8>>,
        tls: bool,
        peer: Option<SocketAddr>,
        mark: Option<crate::limits::AuthMark>,
    ) {
        let (mut stream, mut der, mut tls) = (stream, der, tls);
        for _ in 0..MAX_NEGOTIATIONS {
            let (startup, raw) = match read_startup(&mut stream).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::debug!(?peer, error = %e, "not a PostgreSQL client");
                    refuse(&mut stream, "08P01", &e.message).await;
                    return;
                }
            };
            match startup {
                Startup::Ssl if !tls => {
                    if stream.write_all(b"S").await.is_err() {
                        return;
                    }
                    let acceptor = tokio_rustls::TlsAcceptor::from(self.tls.pg_config());
                    match tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(stream)).await {
                        Ok(Ok(t)) => {
                            der = t.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec());
                            if !mark.as_ref().is_none_or(|m| m.tls_done(der.is_some())) {
                                return;
                            }
                            stream = Box::new(t);
                            tls = true;
                        }
                        Ok(Err(e)) => {
                            tracing::info!(?peer, error = %e, "a PostgreSQL client's TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    }
                }
                // Already encrypted (ALPN), or GSSAPI: no.
                Startup::Ssl | Startup::GssEnc => {
                    if stream.write_all(b"N").await.is_err() {
                        return;
                    }
                }
                Startup::Cancel { .. } => return,
                Startup::Message { .. } if !tls => {
                    let msg = "expected a TLS connection: connect with sslmode=verify-full and the certificate of 'tsh db login' (tsh db connect does)";
                    refuse(&mut stream, "28000", msg).await;
                    return;
                }
                Startup::Message { .. } => {
                    self.route(stream, der, startup, raw, peer).await;
                    return;
                }
            }
        }
        refuse(&mut stream, "08P01", "too many startup packets").await;
    }

    /// The user's database certificate says where: here, or a leaf they may see.
    async fn route(&self, mut stream: BoxStream, der: Option<Vec<u8>>, startup: Startup, raw: Vec<u8>, peer: Option<SocketAddr>) {
        let addr = peer.map(|p| p.to_string()).unwrap_or_default();
        let Some(der) = der else {
            let msg = "connection requires a client certificate: run 'tsh db login <database>', then 'tsh db connect' or 'tsh proxy db'";
            refuse(&mut stream, "28000", msg).await;
            return;
        };
        match self.dial(&der, &addr).await {
            Ok(None) => {
                let fwd = Forwarded { cert: der, addr, via_root: None };
                serve_in_cluster(&self.auth, self.dialer.as_ref(), self.engine.as_ref(), stream, fwd, Some((startup, raw))).await;
            }
            Ok(Some(mut leaf)) => {
                if leaf.write_all(&raw).await.is_err() {
                    refuse(&mut stream, "08006", "the database's cluster closed the connection").await;
                    return;
                }
                crate::tunnel::splice(stream, leaf).await;
            }
            Err(e) => {
                tracing::info!(addr = %addr, error = %e, "refused a database connection");
                let code = if e.has(Code::TunnelOffline) { "08006" } else { "28000" };
                refuse(&mut stream, code, &e.message).await;
            }
        }
    }

    /// `None`: this cluster serves the database; else a stream to the leaf that does.
    async fn dial(&self, der: &[u8], addr: &str) -> Result<Option<BoxStream>> {
        let peer = shared::certs::parse_peer_cert(der)?;
        let ctx = Authorizer::new(self.auth.clone()).context(&peer).await?;
        let identity = match ctx.caller {
            Caller::LocalUser(u) => u,
            _ => return Err(Error::access_denied("database certificates are issued by the user's own cluster; connect through its proxy")),
        };
        if identity.route_to_database.is_none() {
            return Err(Error::access_denied("this certificate is for no database; run 'tsh db login <database>'"));
        }
        let local = self.auth.cluster_name().to_string();
        let cluster = identity.route_to_cluster.clone().filter(|c| !c.is_empty() && *c != local);
        let Some(cluster) = cluster else { return Ok(None) };
        let origin = Origin::with_cert(&identity.username, &local, &identity.roles, addr, der);
        let stream = crate::access::dial_leaf(&self.auth, self.dialer.as_ref(), Some(&ctx.checker), &cluster, Target::Db, origin).await?;
        Ok(Some(stream))
    }
}
