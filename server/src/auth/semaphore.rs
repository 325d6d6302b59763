//! Counted leases in the cluster state: the role option `max_connections` holds across every
//! process of the cluster because the count lives in storage, not in a process.
//!
//! A semaphore is one record, `semaphores/<kind>/<key>`, holding its leases with their expiry.
//! Acquiring reads it, drops expired leases, and writes it back with one more by
//! compare-and-swap, so two processes racing for the last place cannot both get it. A holder
//! renews its lease while it lives and removes it when done; a holder that dies without
//! removing it loses it when it expires ([`LEASE_TTL`]).

use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shared::error::{Error, Kind, Result};

use super::AuthServer;
use crate::services::keys;
use crate::storage::Op;

/// How long a lease lives without renewal.
pub const LEASE_TTL: Duration = Duration::from_secs(60);
/// Attempts when other writers keep changing the record.
const ATTEMPTS: usize = 20;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Semaphore {
    leases: Vec<Lease>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Lease {
    id: String,
    holder: String,
    expires: i64,
}

/// What to do to a semaphore record.
enum Change<'a> {
    Acquire { max: u64, holder: &'a str, id: &'a str },
    Renew { id: &'a str },
    Release { id: &'a str },
}

/// A held lease: renewed while it lives, released when dropped.
pub struct LeaseGuard {
    auth: Arc<AuthServer>,
    key: String,
    id: String,
    renew: tokio::task::JoinHandle<()>,
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        self.renew.abort();
        let (auth, key, id) = (self.auth.clone(), std::mem::take(&mut self.key), std::mem::take(&mut self.id));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = auth.change_semaphore(&key, Change::Release { id: &id }).await {
                    tracing::debug!(key, error = %e, "cannot release a lease; it will expire");
                }
            });
        }
    }
}

impl AuthServer {
    /// Takes one of at most `max` places of semaphore `kind/name` for `holder`.
    pub async fn acquire_lease(self: &Arc<Self>, kind: &str, name: &str, max: u64, holder: &str) -> Result<LeaseGuard> {
        let key = keys::semaphore(kind, name);
        let id = uuid::Uuid::new_v4().to_string();
        self.change_semaphore(&key, Change::Acquire { max, holder, id: &id }).await?;
        let (auth, k, i) = (self.clone(), key.clone(), id.clone());
        let renew = tokio::spawn(async move {
            loop {
                tokio::time::sleep(LEASE_TTL / 3).await;
                if let Err(e) = auth.change_semaphore(&k, Change::Renew { id: &i }).await {
                    tracing::warn!(key = %k, error = %e, "cannot renew a lease");
                }
            }
        });
        Ok(LeaseGuard { auth: self.clone(), key, id, renew })
    }

    /// How many live leases semaphore `kind/name` has.
    pub async fn lease_count(&self, kind: &str, name: &str) -> Result<usize> {
        let now = self.clock.now().unix_timestamp();
        let key = keys::semaphore(kind, name);
        Ok(match self.services.backend.get(&key).await? {
            None => 0,
            Some(item) => decode(&item.value)?.leases.iter().filter(|l| l.expires > now).count(),
        })
    }

    async fn change_semaphore(&self, key: &str, change: Change<'_>) -> Result<()> {
        let conflict = Error::connection_problem(format!("semaphore {key} is changing too fast; try again"));
        crate::services::retry_cas(ATTEMPTS, conflict, || async {
            let now = self.clock.now().unix_timestamp();
            let current = self.services.backend.get(key).await?;
            let mut sem = match &current {
                Some(item) => decode(&item.value)?,
                None => Semaphore::default(),
            };
            sem.leases.retain(|l| l.expires > now);
            let expires = now + i64::try_from(LEASE_TTL.as_secs()).unwrap_or(60);
            match &change {
                Change::Acquire { max, holder, id } => {
                    if sem.leases.len() as u64 >= *max {
                        return Err(Error::limit_exceeded(format!(
                            "too many concurrent ssh connections for user {holder:?} (max={max}); close one of them and try again"
                        )));
                    }
                    sem.leases.push(Lease { id: (*id).into(), holder: (*holder).into(), expires });
                }
                Change::Renew { id } => match sem.leases.iter_mut().find(|l| l.id == *id) {
                    Some(l) => l.expires = expires,
                    None => return Err(Error::not_found("the lease has expired")),
                },
                Change::Release { id } => sem.leases.retain(|l| l.id != *id),
            }
            let op = match (&current, sem.leases.is_empty()) {
                (None, true) => return Ok(()),
                (Some(item), true) => {
                    Op::CompareAndSwap { key: key.into(), value: b"{\"leases\":[]}".to_vec(), expires: Some(now), expected: item.revision }
                }
                (Some(item), false) => {
                    Op::CompareAndSwap { key: key.into(), value: encode(&sem)?, expires: max_expiry(&sem), expected: item.revision }
                }
                (None, false) => Op::Create { key: key.into(), value: encode(&sem)?, expires: max_expiry(&sem) },
            };
            // A record that went away meanwhile (expired, released) is a lost race too.
            self.services
                .apply_racing(vec![op])
                .await
                .map(|_| ())
                .map_err(|e| if e.is(Kind::NotFound) { Error::compare_failed(e.message) } else { e })
        })
        .await
    }
}

fn max_expiry(s: &Semaphore) -> Option<i64> {
    s.leases.iter().map(|l| l.expires).max()
}

fn encode(s: &Semaphore) -> Result<Vec<u8>> {
    crate::services::encode(s)
}

fn decode(v: &[u8]) -> Result<Semaphore> {
    serde_json::from_slice(v).map_err(|e| Error::internal(format!("corrupt semaphore record: {e}")))
}
