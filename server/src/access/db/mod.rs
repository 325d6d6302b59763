//! Database access (reference `kube-app-db.md` §4). So far the service's registration: the
//! databases of `db_service.databases` are heartbeated as `db` records with who serves them, and
//! listed with the users and names the caller's (mapped) roles allow there (`tsh db ls`). The
//! PostgreSQL wire path comes next, in `front.rs` and `engine.rs` as for apps.

use std::sync::Arc;
use std::time::Duration;

use shared::resource::Db;

use crate::auth::AuthServer;
use crate::shutdown::Shutdown;

/// The database service of a cluster process.
pub struct DbService {
    /// The auth service.
    pub auth: Arc<AuthServer>,
    /// The databases it serves.
    pub dbs: Vec<Db>,
    /// This process.
    pub host_id: String,
    /// This process's host name.
    pub hostname: String,
    /// How often the databases are heartbeated (they live three intervals).
    pub heartbeat: Duration,
}

impl DbService {
    /// Heartbeats every database until shutdown, then removes those it served.
    pub async fn run_heartbeat(self: Arc<Self>, mut shutdown: Shutdown) {
        loop {
            let expires = self.auth.clock.now() + self.heartbeat * 3;
            for d in &self.dbs {
                let served = Db::served(d.clone(), &self.host_id, &self.hostname, false, expires);
                if let Err(e) = self.auth.upsert_db_server(served, &self.host_id).await {
                    tracing::warn!(db = %d.metadata.name, error = %e, "cannot register the database; retrying");
                }
            }
            tokio::select! {
                _ = shutdown.wait() => break,
                _ = tokio::time::sleep(self.heartbeat) => {}
            }
        }
        for d in &self.dbs {
            self.auth.leave_db(&d.metadata.name, &self.host_id).await;
        }
    }
}
