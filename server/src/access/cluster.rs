//! What an engine (Kubernetes, apps) needs from its cluster, wherever it runs: who a certificate is
//! and what their roles allow here, where audit events, recordings and heartbeats go.
//!
//! - [`LocalKube`]: in the cluster process, the auth service itself.
//! - [`BundleKube`]: in a process of its own (joined with a token, over its own tunnel), the
//!   authorization bundle its node half follows (the user CAs with their role maps, the roles,
//!   the locks) and its API client, as an SSH node decides logins.

use std::sync::Arc;

use rustls::pki_types::{CertificateDer, UnixTime};
use shared::api::{AuditEvent, NodeAuthzBundle};
use shared::certs::PeerCert;
use shared::client::BoxFuture;
use shared::error::{Error, Result};
use shared::identity::{Caller, CertIdentity, UserIdentity};
use shared::rbac::AccessChecker;
use shared::resource::KubeCluster;
use time::OffsetDateTime;

use crate::audit::{BasedEvent, EventBase};
use crate::auth::AuthServer;
use crate::authz::Authorizer;
use crate::node::{NodeAccessPoint, NodeService};

/// A connection handed to the engine, and who it is for.
pub struct Forwarded {
    /// The user's certificate (DER), as the TLS handshake with a proxy received it.
    pub cert: Vec<u8>,
    /// The client's address, as the first proxy saw it.
    pub addr: String,
    /// The trusted root whose tunnel carried it (`None`: this cluster's own proxy).
    pub via_root: Option<String>,
}

/// A caller the cluster accepted.
pub struct Admitted {
    /// Their certificate's identity.
    pub identity: UserIdentity,
    /// The cluster that issued it.
    pub origin: String,
    /// Their roles here (mapped for a root's user), traits applied.
    pub checker: AccessChecker,
    /// The certificate's end (Unix seconds).
    pub not_after: i64,
}

/// The cluster, as the engine sees it.
pub trait ServiceAccess: Send + Sync + 'static {
    /// This cluster's name.
    fn cluster_name(&self) -> String;
    /// Now.
    fn now(&self) -> OffsetDateTime;
    /// Verifies `der` (chain to a user CA trusted here, validity, locks) and maps the roles.
    fn admit<'a>(&'a self, der: &'a [u8], peer: &'a PeerCert) -> BoxFuture<'a, Result<Admitted>>;
    /// Records an audit event (with `event` and `code` set).
    fn emit(&self, event: AuditEvent) -> BoxFuture<'_, ()>;
    /// Records several audit events together.
    fn emit_many(&self, events: Vec<AuditEvent>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            for e in events {
                self.emit(e).await;
            }
        })
    }
    /// Records several events of connections together (made whole unless the log is here).
    fn emit_based(&self, events: Vec<BasedEvent>) -> BoxFuture<'_, ()> {
        self.emit_many(events.into_iter().map(BasedEvent::into_map).collect())
    }
    /// Registers or renews a Kubernetes cluster this service serves.
    fn heartbeat(&self, k: KubeCluster) -> BoxFuture<'_, Result<()>>;
    /// Where session recordings go.
    fn recorder(&self) -> Arc<dyn NodeAccessPoint>;
    /// What signs apps' tokens now (the `jwt` CA's active key).
    fn jwt_signer(&self) -> BoxFuture<'_, Result<Arc<dyn shared::jwt::TokenSigner>>> {
        Box::pin(async { Err(Error::internal("this process cannot sign application tokens")) })
    }
    /// Registers or renews an app this service serves.
    fn heartbeat_app(&self, _a: shared::resource::App) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Err(Error::internal("this process registers no apps")) })
    }
    /// The apps an admin defined (`tctl create`).
    fn defined_apps(&self) -> BoxFuture<'_, Result<Vec<shared::resource::App>>> {
        Box::pin(async { Ok(Vec::new()) })
    }
    /// This service serves defined app `name` (for three heartbeats).
    fn serve_defined_app<'a>(&'a self, _name: &'a str, _heartbeat: std::time::Duration) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }
    /// The service stops serving app `name`.
    fn leave_app<'a>(&'a self, _name: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
    /// A client certificate for database user `user`, signed by the cluster's `db` CA, ending
    /// by `not_after`.
    fn db_client_cert<'a>(&'a self, _user: &'a str, _not_after: i64) -> BoxFuture<'a, Result<crate::auth::db::DbClientCert>> {
        Box::pin(async { Err(Error::internal("this process cannot sign database client certificates")) })
    }
    /// Registers or renews a database this service serves.
    fn heartbeat_db(&self, _d: shared::resource::Db) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Err(Error::internal("this process registers no databases")) })
    }
    /// The service stops serving database `name`.
    fn leave_db<'a>(&'a self, _name: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
    /// The service stops serving `name` (its record would otherwise expire by itself).
    fn leave<'a>(&'a self, _name: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async {})
    }
}

impl Forwarded {
    /// Who the certificate says it is for, unverified: where to route it, and whom an agent
    /// counts it for (the engine that serves it verifies it).
    pub fn claimed_user(&self) -> Option<UserIdentity> {
        shared::certs::parse_peer_cert(&self.cert).ok()?.user()
    }
}

/// Events written off a connection's path (per request, per query), those that come within
/// [`EVENT_LINGER`] of each other together: one store transaction, one write to the events
/// file, one API call from a process of its own. Bounded: a full queue holds the connection
/// back rather than lose its event.
#[derive(Clone)]
pub struct EventQueue(tokio::sync::mpsc::Sender<BasedEvent>);

/// Most events waiting to be written.
const EVENT_QUEUE: usize = 4096;

/// Most events written together.
const EVENT_BATCH: usize = 256;

/// How long a batch gathers once its first event is in: a busy database's queries or an app's
/// requests share a transaction (a disk flush) per this much time rather than a few each. The
/// writer sleeps through it and then takes what came, so an event wakes nothing on its way in
/// (waiting on the queue instead woke the writer for every event: a tenth of an app service's
/// CPU per request).
const EVENT_LINGER: std::time::Duration = std::time::Duration::from_millis(25);

impl EventQueue {
    /// A queue writing to `access`'s log until every sender is gone.
    pub fn start(access: Arc<dyn ServiceAccess>) -> EventQueue {
        EventQueue::start_with(access, EVENT_LINGER)
    }

    fn start_with(access: Arc<dyn ServiceAccess>, linger: std::time::Duration) -> EventQueue {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<BasedEvent>(EVENT_QUEUE);
        tokio::spawn(async move {
            let mut behind = false;
            while let Some(first) = rx.recv().await {
                // Behind (the last batch was full): what waits is written at once.
                if !behind {
                    tokio::time::sleep(linger).await;
                }
                let mut batch = vec![first];
                while batch.len() < EVENT_BATCH
                    && let Ok(e) = rx.try_recv()
                {
                    batch.push(e);
                }
                behind = batch.len() == EVENT_BATCH;
                access.emit_based(batch).await;
            }
        });
        EventQueue(tx)
    }

    /// Queues an event of a connection: its `base` and its own fields (with `event` and `code`).
    pub async fn send(&self, base: &Arc<EventBase>, own: AuditEvent) {
        let _ = self.0.send(BasedEvent { base: base.clone(), own }).await;
    }

    /// Queues an event of a connection as `code` (name, code).
    pub async fn send_coded(&self, code: (&str, &str), base: &Arc<EventBase>, mut own: AuditEvent) {
        own.insert("event".into(), serde_json::json!(code.0));
        own.insert("code".into(), serde_json::json!(code.1));
        self.send(base, own).await;
    }
}

/// Records `event` as `code` (name, code) in the cluster's log.
pub async fn emit_coded(access: &dyn ServiceAccess, code: (&str, &str), mut event: AuditEvent) {
    event.insert("event".into(), serde_json::json!(code.0));
    event.insert("code".into(), serde_json::json!(code.1));
    access.emit(event).await;
}

/// The first checks of a connection forwarded to an engine: a user's certificate (`what` says
/// what only users reach), from the root that forwarded it if one did (a root's proxy speaks
/// only for its own users), accepted by the cluster (chain, validity, locks, mapped roles).
/// Refusals carry their HTTP status: 401 when signing in again helps, else 403.
pub async fn admit_forwarded(access: &dyn ServiceAccess, fwd: &Forwarded, what: &str) -> std::result::Result<Admitted, (u16, Error)> {
    let denied = |e: Error| (403u16, e);
    let peer = shared::certs::parse_peer_cert(&fwd.cert).map_err(denied)?;
    if peer.issuer_ca_type != "user" {
        return Err(denied(Error::access_denied(format!("[00] access denied: only users reach {what}"))));
    }
    if let Some(root) = &fwd.via_root
        && peer.issuer_cluster != *root
    {
        return Err(denied(Error::access_denied(format!(
            "can not impersonate users via a different cluster proxy: cluster {root:?} forwarded a user of {:?}",
            peer.issuer_cluster
        ))));
    }
    let mut admitted = access.admit(&fwd.cert, &peer).await.map_err(|e| {
        let code = if e.message.contains("not valid here") || e.message.contains("expired") { 401 } else { 403 };
        (code, e)
    })?;
    admitted.not_after = peer.not_after;
    Ok(admitted)
}

/// Verifies a client certificate's chain against these CA certificates (DER).
fn verify_chain<'a>(roots: impl Iterator<Item = &'a [u8]>, der: &[u8]) -> Result<()> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        let _ = store.add(CertificateDer::from(r.to_vec()));
    }
    if store.is_empty() {
        return Err(Error::access_denied("certificates of this cluster's issuer are not trusted here"));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider)
        .build()
        .map_err(|e| Error::internal(format!("client verifier: {e}")))?;
    let end = CertificateDer::from(der.to_vec());
    rustls::server::danger::ClientCertVerifier::verify_client_cert(verifier.as_ref(), &end, &[], UnixTime::now())
        .map(|_| ())
        .map_err(|e| Error::access_denied(format!("the client certificate is not valid here: {e}; run 'tsh login' again")))
}

/// In the cluster process.
pub struct LocalKube {
    /// The auth service.
    pub auth: Arc<AuthServer>,
    /// Recordings (the process's own node access).
    pub recorder: Arc<dyn NodeAccessPoint>,
    /// This process's UUID (the owner of its heartbeats).
    pub host_id: String,
}

impl ServiceAccess for LocalKube {
    fn cluster_name(&self) -> String {
        self.auth.cluster_name().to_string()
    }

    fn now(&self) -> OffsetDateTime {
        self.auth.clock.now()
    }

    fn admit<'a>(&'a self, der: &'a [u8], peer: &'a PeerCert) -> BoxFuture<'a, Result<Admitted>> {
        Box::pin(async move {
            let cas = self.auth.trusted_cas().await?;
            verify_chain(cas.users.iter().flat_map(|c| c.tls_certs.iter().map(Vec::as_slice)), der)?;
            let ctx = Authorizer::new(self.auth.clone()).context(peer).await?;
            let local = self.auth.cluster_name().to_string();
            let (identity, origin) = match ctx.caller {
                Caller::LocalUser(u) => (u, local),
                Caller::RemoteUser { identity, cluster } => (identity, cluster),
                Caller::Host(_) => return Err(Error::access_denied("[00] access denied")),
            };
            Ok(Admitted { identity, origin, checker: ctx.checker, not_after: peer.not_after })
        })
    }

    fn emit(&self, event: AuditEvent) -> BoxFuture<'_, ()> {
        Box::pin(self.auth.audit.record(event))
    }

    fn emit_many(&self, events: Vec<AuditEvent>) -> BoxFuture<'_, ()> {
        Box::pin(self.auth.audit.record_many(events))
    }

    fn emit_based(&self, events: Vec<BasedEvent>) -> BoxFuture<'_, ()> {
        Box::pin(self.auth.audit.record_based(events))
    }

    fn heartbeat(&self, k: KubeCluster) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.auth.upsert_kube_cluster(k, &self.host_id).await })
    }

    fn recorder(&self) -> Arc<dyn NodeAccessPoint> {
        self.recorder.clone()
    }

    fn jwt_signer(&self) -> BoxFuture<'_, Result<Arc<dyn shared::jwt::TokenSigner>>> {
        Box::pin(async move { Ok(Arc::new(self.auth.app_token_signer().await?) as Arc<dyn shared::jwt::TokenSigner>) })
    }

    fn heartbeat_app(&self, a: shared::resource::App) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.auth.upsert_app_server(a, &self.host_id).await })
    }

    fn leave_app<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move { self.auth.leave_app(name, &self.host_id).await })
    }

    fn defined_apps(&self) -> BoxFuture<'_, Result<Vec<shared::resource::App>>> {
        Box::pin(self.auth.defined_apps())
    }

    fn serve_defined_app<'a>(&'a self, name: &'a str, heartbeat: std::time::Duration) -> BoxFuture<'a, Result<()>> {
        self.recorder.serve_defined_app(name.to_string(), heartbeat)
    }

    fn leave<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let _ = self.auth.delete_kube_cluster(name).await;
        })
    }

    fn db_client_cert<'a>(&'a self, user: &'a str, not_after: i64) -> BoxFuture<'a, Result<crate::auth::db::DbClientCert>> {
        Box::pin(self.auth.sign_db_client(user, not_after))
    }

    fn heartbeat_db(&self, d: shared::resource::Db) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.auth.upsert_db_server(d, &self.host_id).await })
    }

    fn leave_db<'a>(&'a self, name: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(self.auth.leave_db(name, &self.host_id))
    }
}

/// In a process of its own: the node half's bundle and API client.
pub struct BundleKube {
    /// The node half of the process (bundle, API client, clock).
    pub node: Arc<NodeService>,
}

impl BundleKube {
    async fn bundle(&self) -> Result<Arc<NodeAuthzBundle>> {
        let mut rx = self.node.bundle.clone();
        let wait = tokio::time::timeout(std::time::Duration::from_secs(10), rx.wait_for(Option::is_some)).await;
        match wait {
            Ok(Ok(b)) => b.clone().ok_or_else(|| Error::connection_problem("no authorization bundle yet")),
            _ => Err(Error::connection_problem("this Kubernetes service has not received its authorization bundle yet; try again shortly")),
        }
    }
}

/// Admits `der` with a node's bundle: the issuer's user CA, the identity, the roles (mapped for a
/// root's user), the locks; as [`crate::node::authz`] does for SSH certificates.
pub fn admit_with_bundle(bundle: &NodeAuthzBundle, der: &[u8], peer: &PeerCert, server_id: &str, now: OffsetDateTime) -> Result<Admitted> {
    let ca = bundle
        .user_cas
        .iter()
        .find(|c| c.cluster_name == peer.issuer_cluster)
        .ok_or_else(|| Error::access_denied(format!("certificates of cluster {:?} are not trusted here", peer.issuer_cluster)))?;
    let roots: Vec<Vec<u8>> = ca.tls_certs.iter().filter_map(|p| shared::certs::first_pem_der(p, "CERTIFICATE").ok()).collect();
    verify_chain(roots.iter().map(Vec::as_slice), der)?;
    let t = now.unix_timestamp();
    if t < peer.not_before || t >= peer.not_after {
        return Err(Error::access_denied("your certificate has expired; run 'tsh login' again"));
    }
    let identity = match CertIdentity::from_json(peer.identity_json.as_deref().unwrap_or_default())? {
        CertIdentity::User(u) => u,
        CertIdentity::Host(_) => return Err(Error::access_denied("[00] access denied")),
    };
    let origin = ca.cluster_name.clone();
    let traits = if origin == bundle.cluster_name { identity.traits.clone() } else { identity.remote_traits() };
    let who = shared::api::ExplainIdentity {
        user: identity.username.clone(),
        cluster: origin.clone(),
        roles: identity.roles.clone(),
        traits,
        logins: identity.logins.clone(),
    };
    let here = crate::node::decide::roles_for(bundle, ca, &who)
        .map_err(|r| Error::access_denied(r.reason(&who, "kubernetes", &bundle.cluster_name)))?;
    let issued = shared::identity::tls_cert_issued_at(peer.not_before);
    let target = crate::node::decide::Target { login: "", server_id, node_name: "" };
    if let Some(lock) = crate::node::decide::lock(bundle, &who, &here.names, &identity.active_requests, &target, Some(issued), now) {
        return Err(Error::access_denied(lock));
    }
    let checker = AccessChecker::new(&here.roles, &here.traits);
    Ok(Admitted { identity, origin, checker, not_after: peer.not_after })
}

impl ServiceAccess for BundleKube {
    fn cluster_name(&self) -> String {
        self.node.bundle.borrow().as_ref().map(|b| b.cluster_name.clone()).unwrap_or_default()
    }

    fn now(&self) -> OffsetDateTime {
        self.node.clock.now()
    }

    fn admit<'a>(&'a self, der: &'a [u8], peer: &'a PeerCert) -> BoxFuture<'a, Result<Admitted>> {
        Box::pin(async move {
            let bundle = self.bundle().await?;
            admit_with_bundle(&bundle, der, peer, &self.node.cfg.host_id, self.now())
        })
    }

    fn emit(&self, event: AuditEvent) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Err(e) = self.node.access.emit(event).await {
                tracing::warn!(error = %e, "cannot send an audit event");
            }
        })
    }

    fn emit_many(&self, events: Vec<AuditEvent>) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Err(e) = self.node.access.emit_many(events).await {
                tracing::warn!(error = %e, "cannot send audit events");
            }
        })
    }

    fn heartbeat(&self, k: KubeCluster) -> BoxFuture<'_, Result<()>> {
        self.node.access.kube_heartbeat(k)
    }

    fn recorder(&self) -> Arc<dyn NodeAccessPoint> {
        self.node.access.clone()
    }

    fn jwt_signer(&self) -> BoxFuture<'_, Result<Arc<dyn shared::jwt::TokenSigner>>> {
        Box::pin(async move {
            let kid = self.node.access.app_token_kid().await?;
            Ok(Arc::new(RemoteSigner { kid, access: self.node.access.clone() }) as Arc<dyn shared::jwt::TokenSigner>)
        })
    }

    fn heartbeat_app(&self, a: shared::resource::App) -> BoxFuture<'_, Result<()>> {
        self.node.access.app_heartbeat(a)
    }

    fn defined_apps(&self) -> BoxFuture<'_, Result<Vec<shared::resource::App>>> {
        self.node.access.defined_apps()
    }

    fn serve_defined_app<'a>(&'a self, name: &'a str, heartbeat: std::time::Duration) -> BoxFuture<'a, Result<()>> {
        self.node.access.serve_defined_app(name.to_string(), heartbeat)
    }

    fn db_client_cert<'a>(&'a self, user: &'a str, not_after: i64) -> BoxFuture<'a, Result<crate::auth::db::DbClientCert>> {
        self.node.access.db_client_cert(user.to_string(), not_after)
    }

    fn heartbeat_db(&self, d: shared::resource::Db) -> BoxFuture<'_, Result<()>> {
        self.node.access.db_heartbeat(d)
    }
}

/// The auth service signing tokens for an app service in a process of its own.
struct RemoteSigner {
    kid: String,
    access: Arc<dyn NodeAccessPoint>,
}

impl shared::jwt::TokenSigner for RemoteSigner {
    fn kid(&self) -> &str {
        &self.kid
    }
    fn sign_token<'a>(&'a self, claims: &'a serde_json::Value) -> BoxFuture<'a, Result<String>> {
        self.access.sign_app_token(claims.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A cluster that only keeps the batches of events it is given, and when.
    #[derive(Default)]
    struct Batches(Mutex<Vec<(tokio::time::Instant, Vec<String>)>>);

    impl ServiceAccess for Batches {
        fn cluster_name(&self) -> String {
            "leaf".into()
        }
        fn now(&self) -> OffsetDateTime {
            OffsetDateTime::now_utc()
        }
        fn admit<'a>(&'a self, _der: &'a [u8], _peer: &'a PeerCert) -> BoxFuture<'a, Result<Admitted>> {
            Box::pin(async { Err(Error::access_denied("not in this test")) })
        }
        fn emit(&self, _event: AuditEvent) -> BoxFuture<'_, ()> {
            Box::pin(async {})
        }
        fn emit_based(&self, events: Vec<BasedEvent>) -> BoxFuture<'_, ()> {
            let paths = events.into_iter().map(|e| e.own["path"].as_str().unwrap_or_default().to_string()).collect();
            self.0.lock().unwrap().push((tokio::time::Instant::now(), paths));
            Box::pin(async {})
        }
        fn heartbeat(&self, _k: KubeCluster) -> BoxFuture<'_, Result<()>> {
            Box::pin(async { Ok(()) })
        }
        fn recorder(&self) -> Arc<dyn NodeAccessPoint> {
            unreachable!("the event queue records no sessions")
        }
    }

    fn event(i: usize) -> AuditEvent {
        let mut m = AuditEvent::new();
        m.insert("path".into(), serde_json::json!(format!("/{i}")));
        m
    }

    #[tokio::test]
    async fn the_queue_writes_what_came_in_its_linger_together_and_catches_up_at_once_when_behind() {
        // A linger long enough that 300 sends fit in it on a loaded machine.
        let linger = std::time::Duration::from_millis(500);
        let access = Arc::new(Batches::default());
        let queue = EventQueue::start_with(access.clone(), linger);
        let base = EventBase::new(AuditEvent::new());
        let t0 = tokio::time::Instant::now();
        // 300 events at once: a full batch after the linger, the rest straight after it.
        for i in 0..300 {
            queue.send(&base, event(i)).await;
        }
        assert!(t0.elapsed() < linger, "the sends took the whole linger; the test cannot tell");
        let written = |n: usize| {
            let access = access.clone();
            async move {
                for _ in 0..200 {
                    if access.0.lock().unwrap().len() >= n {
                        return;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            }
        };
        written(2).await;
        // One more, alone: written one linger after it came.
        let t1 = tokio::time::Instant::now();
        queue.send(&base, event(300)).await;
        written(3).await;
        let got = access.0.lock().unwrap().clone();
        let sizes: Vec<usize> = got.iter().map(|(_, b)| b.len()).collect();
        assert_eq!(sizes, vec![EVENT_BATCH, 300 - EVENT_BATCH, 1], "{sizes:?}");
        assert!(got[0].0 - t0 >= linger, "the first batch waits out the linger");
        assert!(got[1].0 - got[0].0 < linger, "behind: the rest goes without another linger");
        assert!(got[2].0 - t1 >= linger);
        let order: Vec<String> = got.iter().flat_map(|(_, b)| b.clone()).collect();
        assert_eq!(order, (0..=300).map(|i| format!("/{i}")).collect::<Vec<_>>(), "every event, in order");
    }
}
