//! Access to resources beyond SSH, one folder per protocol, each in two halves: a front at the
//! proxy (authenticates the caller, reaches the owning cluster through `proxy::dial`) and an
//! engine in the cluster that owns the resource (decides with the roles it maps, audits).
//! An engine never imports a front. `cluster.rs` is what every engine asks of its cluster (who a
//! certificate is, where events go), in the cluster process or in a process of its own.
//! See docs/architecture.md.

pub mod app;
pub mod cluster;
pub mod db;
pub mod kube;
pub mod labels;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use shared::client::BoxStream;

/// Bodies of the answers engines and fronts give: a server's, or their own.
pub type Body = http_body_util::combinators::BoxBody<bytes::Bytes, hyper::Error>;

/// Serves HTTP/1.1 on `stream` (upgrades included: exec, WebSockets) until the client leaves,
/// each request answered by `handle(conn, request)`; `what` names the client in the debug log.
pub async fn serve_http<C, F, Fut>(stream: BoxStream, conn: Arc<C>, header_timeout: Duration, what: &'static str, handle: F)
where
    C: Send + Sync + 'static,
    F: Fn(Arc<C>, hyper::Request<hyper::body::Incoming>) -> Fut + Send + Sync + Copy + 'static,
    Fut: Future<Output = hyper::Response<Body>> + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req| {
        let conn = conn.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(conn, req).await) }
    });
    let served = hyper::server::conn::http1::Builder::new()
        .header_read_timeout(header_timeout)
        .timer(hyper_util::rt::TokioTimer::new())
        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
        .with_upgrades()
        .await;
    if let Err(e) = served {
        tracing::debug!(error = %e, "{what} connection ended");
    }
}

/// An HTTP/1.1 client connection over `stream` (to `what`, for errors), upgrades included; the
/// connection runs in a task of its own until either side closes it.
pub async fn http1_client(
    stream: BoxStream,
    what: &str,
) -> shared::error::Result<hyper::client::conn::http1::SendRequest<hyper::body::Incoming>> {
    let (sender, conn) = hyper::client::conn::http1::Builder::new()
        .handshake(hyper_util::rt::TokioIo::new(stream))
        .await
        .map_err(|e| shared::error::Error::connection_problem(format!("HTTP to {what}: {e}")))?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });
    Ok(sender)
}

/// Sends `req` on the connection kept in `slot`, opened again with `open` when there is none or
/// the server closed it (HTTP/1.1: one request at a time, so the caller holds the slot's lock).
pub async fn send_reusing<F, Fut>(
    slot: &mut Option<hyper::client::conn::http1::SendRequest<hyper::body::Incoming>>,
    open: F,
    req: hyper::Request<hyper::body::Incoming>,
    what: &str,
) -> shared::error::Result<hyper::Response<hyper::body::Incoming>>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = shared::error::Result<hyper::client::conn::http1::SendRequest<hyper::body::Incoming>>>,
{
    let reusable = match slot.as_mut() {
        Some(s) if !s.is_closed() => s.ready().await.is_ok(),
        _ => false,
    };
    if !reusable {
        *slot = Some(open().await?);
    }
    let Some(sender) = slot.as_mut() else { return Err(shared::error::Error::internal(format!("no connection to {what}"))) };
    sender.send_request(req).await.map_err(|e| shared::error::Error::connection_problem(format!("{what}: {e}")))
}

/// A stream to `target` in leaf `cluster`, through its tunnel, for `origin` (whose certificate
/// the leaf verifies itself). With `checker`, the caller must see the leaf (`cluster_labels`);
/// an unknown leaf and a hidden one read the same.
pub async fn dial_leaf(
    auth: &crate::auth::AuthServer,
    dialer: &dyn crate::proxy::dial::Dialer,
    checker: Option<&shared::rbac::AccessChecker>,
    cluster: &str,
    target: crate::tunnel::Target,
    origin: crate::tunnel::Origin,
) -> shared::error::Result<BoxStream> {
    use shared::error::{Code, Error};
    let hidden = || Error::not_found(format!("cluster {cluster:?} is not found")).with_code(Code::ClusterNotFound);
    let rc = auth.services.remote_cluster(cluster).await?.ok_or_else(hidden)?;
    if let Some(c) = checker {
        c.check_cluster(&rc.value.metadata.labels).map_err(|_| hidden())?;
    }
    let req = crate::tunnel::TunnelRequest { target, origin: Some(origin) };
    dialer.dial(&crate::tunnel::TunnelKey::Cluster(cluster.to_string()), &req).await.map_err(|e| {
        if e.has(Code::TunnelOffline) {
            Error::connection_problem(format!("cluster {cluster:?} is offline: its tunnel to this cluster is down"))
                .with_code(Code::TunnelOffline)
        } else {
            e
        }
    })
}

/// A stream to an agent of this cluster (a Kubernetes or app service in a process of its own)
/// through its tunnel, carrying the user's certificate (the agent decides from it) and who it
/// is for (the agent's per-user limits and log).
pub async fn dial_agent(
    dialer: &dyn crate::proxy::dial::Dialer,
    host_id: String,
    target: crate::tunnel::Target,
    who: Option<shared::identity::UserIdentity>,
    fwd: &cluster::Forwarded,
    local: &str,
) -> shared::error::Result<BoxStream> {
    let cluster = fwd.via_root.as_deref().unwrap_or(local);
    let (user, roles) = who.map(|u| (u.username, u.roles)).unwrap_or_default();
    let origin = crate::tunnel::Origin::with_cert(&user, cluster, &roles, &fwd.addr, &fwd.cert);
    let req = crate::tunnel::TunnelRequest { target, origin: Some(origin) };
    dialer.dial(&crate::tunnel::TunnelKey::Node(host_id), &req).await
}

/// After a `101 Switching Protocols` answer, joins the client's upgraded connection to the
/// server's (a WebSocket, an exec stream) until either side ends.
pub fn join_upgrades(on_client: Option<hyper::upgrade::OnUpgrade>, resp: &mut hyper::Response<hyper::body::Incoming>) {
    if resp.status() != hyper::StatusCode::SWITCHING_PROTOCOLS {
        return;
    }
    let Some(on_client) = on_client else { return };
    let on_server = hyper::upgrade::on(resp);
    tokio::spawn(async move {
        if let (Ok(c), Ok(s)) = (on_client.await, on_server.await) {
            let _ = tokio::io::copy_bidirectional(&mut hyper_util::rt::TokioIo::new(c), &mut hyper_util::rt::TokioIo::new(s)).await;
        }
    });
}
