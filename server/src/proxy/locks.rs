//! Locks at the proxy: ends the live connections a lock now matches (users' SSH connections
//! here, and the connections a leaf serves for a root's users), and sends this cluster's locks to
//! every connected leaf, which enforces them on this cluster's users at its own nodes.

use std::sync::Arc;
use std::time::Duration;

use shared::error::Error;
use tokio::io::AsyncWriteExt;

use crate::auth::AuthServer;
use crate::live::Live;
use crate::tunnel::{Target, TunnelKey, TunnelRegistry, TunnelRequest, read_status};

/// Enforces locks on live connections and tells leaves.
pub struct LockEnforcer {
    /// The auth service (the lock set).
    pub auth: Arc<AuthServer>,
    /// Live connections a lock can end.
    pub live: Arc<Live>,
    /// Tunnels held here (the leaves to tell).
    pub tunnels: Arc<TunnelRegistry>,
}

impl LockEnforcer {
    /// Ends users' connections a lock now matches, and sends this cluster's locks to every
    /// connected leaf (which enforces them on this cluster's users): after every change (from
    /// any process), after every gap in the feed, and each minute in case a leaf missed one.
    pub async fn run(self: Arc<Self>, shutdown: crate::shutdown::Shutdown) {
        use crate::follow::Changed;
        use crate::services::keys;
        let ticker = crate::shutdown::now_and_every(Duration::from_secs(60), shutdown.clone(), || {
            self.push_locks_to_all();
            std::future::ready(())
        });
        let me = self.clone();
        let follower = crate::follow::follow(self.auth.services.backend.clone(), &[keys::LOCKS, keys::REMOTE_LOCKS], shutdown, move |c| {
            let me = me.clone();
            async move {
                match me.auth.lock_set().await {
                    Ok(locks) => {
                        me.live.enforce(&locks, crate::live::Place::default(), me.auth.clock.now());
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot read locks"),
                }
                let ours = match &c {
                    Changed::All => true,
                    Changed::Key(e) => e.key.starts_with(keys::LOCKS),
                };
                if ours {
                    me.push_locks_to_all();
                }
            }
        });
        tokio::join!(ticker, follower);
    }

    fn push_locks_to_all(self: &Arc<Self>) {
        for leaf in self.tunnels.clusters() {
            let me = self.clone();
            tokio::spawn(async move { me.push_locks(&leaf).await });
        }
    }

    /// Sends this cluster's locks to `leaf` over its tunnel.
    pub async fn push_locks(&self, leaf: &str) {
        let sent = async {
            let locks = self.auth.locks_for_leaves().await?;
            let body = serde_json::to_vec(&locks).map_err(|e| Error::internal(format!("encoding locks: {e}")))?;
            let req = TunnelRequest::plain(Target::Locks);
            let mut stream = self.tunnels.dial(&TunnelKey::Cluster(leaf.to_string()), &req).await?;
            stream.write_all(&body).await.map_err(|e| Error::connection_problem(format!("sending locks: {e}")))?;
            stream.shutdown().await.map_err(|e| Error::connection_problem(format!("sending locks: {e}")))?;
            read_status(&mut stream).await?;
            Ok::<usize, Error>(locks.len())
        };
        match tokio::time::timeout(Duration::from_secs(30), sent).await {
            Ok(Ok(n)) => tracing::debug!(leaf, locks = n, "sent locks to the leaf cluster"),
            Ok(Err(e)) => tracing::warn!(leaf, error = %e, "cannot send locks to the leaf cluster"),
            Err(_) => tracing::warn!(leaf, "sending locks to the leaf cluster timed out"),
        }
    }
}
