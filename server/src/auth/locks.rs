//! Locks (Teleport's RFD 9): creating them, reading the set in force, the check every login and
//! API call makes, and the copy of a root's locks each of its leaves keeps.
//!
//! ```text
//!  root: locks/<name>  --(every change, and each minute, over each leaf's tunnel: "locks")-->
//!  leaf: remotelocks/<root>  (the root's locks; they apply only to certificates the root issued)
//! ```
//! Nodes get the whole set in their authorization bundle (within milliseconds of a change) and
//! end matching sessions; proxies end matching connections (`crate::live`).

use std::time::Duration;

use serde_json::json;
use shared::error::{Error, Result};
use shared::resource::Lock;
use shared::resource::lock::{LockSet, LockSpec, LockTarget, RemoteLocks, Subject};

use super::{AuthServer, audit_codes};
use crate::services::keys;
use crate::storage::Op;

/// Most locks a root may send a leaf at once.
pub const MAX_REMOTE_LOCKS: usize = 10_000;

impl AuthServer {
    /// The locks in force here: this cluster's and its roots'.
    pub async fn lock_set(&self) -> Result<LockSet> {
        let now = self.clock.now();
        let local: Vec<Lock> = self.services.list::<Lock>(keys::LOCKS).await?.into_iter().filter(|l| l.in_force(now)).collect();
        let mut remote = Vec::new();
        for item in self.services.backend.list(keys::REMOTE_LOCKS).await? {
            let cluster = item.key.trim_start_matches(keys::REMOTE_LOCKS).to_string();
            let locks: Vec<Lock> =
                serde_json::from_slice(&item.value).map_err(|e| Error::internal(format!("corrupt record {}: {e}", item.key)))?;
            remote.push(RemoteLocks { cluster, locks: locks.into_iter().filter(|l| l.in_force(now)).collect() });
        }
        Ok(LockSet { local, remote })
    }

    /// Fails with the lock's message when a lock would stop a certificate issued now for `s`
    /// (a user of this cluster). A lock on certificates issued before a moment covers that whole
    /// second (certificates carry whole seconds); a sign-in in the same second, but after the
    /// lock (a user deleted and created again at once), waits for the next second instead of
    /// being refused or getting a certificate the lock covers.
    pub async fn check_issuance_locks(&self, user: &str, roles: &[String]) -> Result<()> {
        let set = self.lock_set().await?;
        for _ in 0..2 {
            let now = self.clock.now();
            let s = Subject { user: Some(user), roles, issued_at: Some(now), ..Default::default() };
            let Some(lock) = set.find(&s, self.cluster_name(), now) else { return Ok(()) };
            match lock.spec.issued_before {
                Some(before) if before <= now && before.unix_timestamp() == now.unix_timestamp() => {
                    tokio::time::sleep(Duration::from_nanos(u64::from(1_000_000_000 - now.nanosecond()))).await;
                }
                _ => return Err(Error::access_denied(lock.refusal()).with_code(shared::Code::Locked)),
            }
        }
        Ok(())
    }

    /// Fails with the lock's message when a lock stops `s` (whose certificate `origin` issued).
    pub async fn check_locks(&self, s: &Subject<'_>, origin: &str) -> Result<()> {
        let set = self.lock_set().await?;
        match set.find(s, origin, self.clock.now()) {
            Some(lock) => Err(Error::access_denied(lock.refusal()).with_code(shared::Code::Locked)),
            None => Ok(()),
        }
    }

    /// Stores a lock (`tctl lock`, `tctl create`); its storage expiry is its `spec.expires`, so
    /// it disappears (and every process hears of it) when it lifts.
    pub async fn upsert_lock(&self, mut lock: Lock, force: bool, expected: Option<i64>, actor: &str) -> Result<bool> {
        lock.check_and_set_defaults()?;
        if lock.spec.created_at.is_none() {
            lock.spec.created_at = Some(self.clock.now());
        }
        if lock.spec.created_by.is_empty() {
            lock.spec.created_by = actor.to_string();
        }
        let key = keys::lock(&lock.metadata.name);
        let existed = self.services.backend.get(&key).await?.is_some();
        let mut stored = lock.clone();
        stored.metadata.id = None;
        let value = crate::services::encode(&stored)?;
        let expires = lock.spec.expires.map(|e| e.unix_timestamp());
        let op = match expected {
            Some(rev) => Op::CompareAndSwap { key: key.clone(), value, expires, expected: rev },
            None if force => Op::Put { key: key.clone(), value, expires },
            None => Op::Create { key: key.clone(), value, expires },
        };
        self.services.apply(vec![op]).await.map_err(|e| match e.kind {
            shared::Kind::AlreadyExists => Error::already_exists(format!("lock {:?} already exists", lock.metadata.name)),
            _ => super::users::edit_conflict(e),
        })?;
        self.audit
            .emit(
                audit_codes::LOCK_CREATE,
                json!({"name": lock.metadata.name, "user": actor, "target": lock.spec.target.to_string(), "message": lock.spec.message,
                       "expires": lock.spec.expires.map(shared::timefmt::rfc3339)}),
            )
            .await;
        tracing::info!(lock = %lock.metadata.name, target = %lock.spec.target, "lock created");
        Ok(!existed)
    }

    /// Removes a lock.
    pub async fn delete_lock(&self, name: &str, actor: &str) -> Result<()> {
        self.services
            .apply(vec![Op::Delete { key: keys::lock(name) }])
            .await
            .map_err(|e| if e.is(shared::Kind::NotFound) { Error::not_found(format!("lock {name:?} is not found")) } else { e })?;
        self.audit.emit(audit_codes::LOCK_DELETE, json!({"name": name, "user": actor})).await;
        Ok(())
    }

    /// The lock that deleting user `name` makes: their certificates issued until now stop
    /// working at once, until the longest any of them could still be valid. Returns it.
    pub(super) async fn deleted_user_lock(&self, name: &str, actor: &str) -> Result<(Op, Lock)> {
        let now = self.clock.now();
        let longest = self
            .all_roles()
            .await?
            .iter()
            .map(|r| r.max_session_ttl())
            .max()
            .unwrap_or(Duration::from_secs(30 * 3600))
            .max(super::DEFAULT_USER_TTL);
        let lock = Lock::new(
            &uuid::Uuid::new_v4().to_string(),
            LockSpec {
                target: LockTarget { user: name.into(), ..Default::default() },
                message: format!("user {name:?} was deleted"),
                expires: Some(now + longest + shared::certs::CLOCK_SKEW),
                created_at: Some(now),
                created_by: actor.into(),
                issued_before: Some(now),
            },
        );
        let op = Op::Create {
            key: keys::lock(&lock.metadata.name),
            value: crate::services::encode(&lock)?,
            expires: lock.spec.expires.map(|e| e.unix_timestamp()),
        };
        Ok((op, lock))
    }

    /// Replaces the copy of root `root`'s locks (what the root sent over the tunnel). Written
    /// only when it changed, so that an unchanged copy wakes nobody.
    pub async fn store_remote_locks(&self, root: &str, mut locks: Vec<Lock>) -> Result<()> {
        if locks.len() > MAX_REMOTE_LOCKS {
            return Err(Error::bad_parameter(format!("at most {MAX_REMOTE_LOCKS} locks may be sent")));
        }
        if self.services.trusted_cluster(root).await?.is_none() {
            return Err(Error::access_denied(format!("{root:?} is not a trusted root of this cluster")));
        }
        for l in &mut locks {
            l.check_and_set_defaults()?;
            l.metadata.id = None;
        }
        let key = keys::remote_locks(root);
        let value = crate::services::encode(&locks)?;
        if self.services.backend.get(&key).await?.is_some_and(|i| i.value == value) {
            return Ok(());
        }
        self.services.apply(vec![Op::Put { key, value, expires: None }]).await?;
        tracing::info!(root, count = locks.len(), "stored the root cluster's locks");
        Ok(())
    }

    /// The locks this cluster sends its leaves: its own, in force.
    pub async fn locks_for_leaves(&self) -> Result<Vec<Lock>> {
        Ok(self.lock_set().await?.local)
    }
}
