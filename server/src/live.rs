//! Live interactions a lock can end: users' SSH connections to a proxy, connections a leaf
//! proxy serves for a root's users, and sessions on a node. Each registers itself here for as
//! long as it lives; when the locks change, [`Live::enforce`] ends every one a lock now matches,
//! telling it why.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use shared::resource::lock::{LockSet, Subject};
use time::OffsetDateTime;

/// Ends an interaction; gets the message to show.
pub type Ender = Box<dyn Fn(String) + Send + Sync>;

/// One live interaction.
pub struct LiveEntry {
    /// The Teleport user.
    pub user: String,
    /// The cluster that issued their certificate.
    pub origin: String,
    /// Every role that applies (certificate roles, and mapped ones for a root's user).
    pub roles: Vec<String>,
    /// The Unix login, on a node.
    pub login: Option<String>,
    /// When the certificate was issued.
    pub issued_at: Option<OffsetDateTime>,
    /// The access requests whose roles the certificate carries.
    pub requests: Vec<String>,
    /// How to end it.
    pub end: Ender,
}

/// The registry.
#[derive(Default)]
pub struct Live {
    entries: Mutex<HashMap<u64, Arc<LiveEntry>>>,
    next: AtomicU64,
}

/// Removes its entry when dropped.
pub struct LiveGuard {
    live: Arc<Live>,
    id: u64,
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        if let Ok(mut m) = self.live.entries.lock() {
            m.remove(&self.id);
        }
    }
}

/// Where enforcement happens, for node and server-id targets.
#[derive(Debug, Clone, Copy, Default)]
pub struct Place<'a> {
    /// The node's UUID.
    pub server_id: Option<&'a str>,
    /// The node's name.
    pub node_name: Option<&'a str>,
}

impl Live {
    /// An empty registry.
    pub fn new() -> Arc<Live> {
        Arc::new(Live::default())
    }

    /// Registers an interaction until the guard is dropped.
    pub fn register(self: &Arc<Self>, entry: LiveEntry) -> LiveGuard {
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut m) = self.entries.lock() {
            m.insert(id, Arc::new(entry));
        }
        LiveGuard { live: self.clone(), id }
    }

    /// How many interactions are registered.
    pub fn len(&self) -> usize {
        self.entries.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// True when none are.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ends every interaction `locks` now match; returns how many.
    pub fn enforce(&self, locks: &LockSet, place: Place<'_>, now: OffsetDateTime) -> usize {
        if locks.is_empty() {
            return 0;
        }
        let entries: Vec<Arc<LiveEntry>> = self.entries.lock().map(|m| m.values().cloned().collect()).unwrap_or_default();
        let mut ended = 0;
        for e in entries {
            let subject = Subject {
                user: Some(&e.user),
                roles: &e.roles,
                login: e.login.as_deref(),
                server_id: place.server_id,
                node_name: place.node_name,
                issued_at: e.issued_at,
                requests: &e.requests,
            };
            if let Some(lock) = locks.find(&subject, &e.origin, now) {
                tracing::info!(user = %e.user, origin = %e.origin, lock = %lock.metadata.name, "ending a live connection: {}", lock.refusal());
                (e.end)(lock.refusal());
                ended += 1;
            }
        }
        ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::resource::Lock;
    use shared::resource::lock::{LockSpec, LockTarget};
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn a_matching_lock_ends_only_what_it_targets() {
        let live = Live::new();
        let ended = Arc::new(AtomicUsize::new(0));
        let entry = |user: &str| {
            let ended = ended.clone();
            LiveEntry {
                user: user.into(),
                origin: "root".into(),
                roles: vec!["access".into()],
                login: None,
                issued_at: None,
                requests: Vec::new(),
                end: Box::new(move |msg: String| {
                    assert!(msg.starts_with("lock targeting User:\"alice\""), "{msg}");
                    ended.fetch_add(1, Ordering::SeqCst);
                }),
            }
        };
        let _a = live.register(entry("alice"));
        let _b = live.register(entry("bob"));
        let locks = LockSet {
            local: vec![Lock::new(
                "l",
                LockSpec { target: LockTarget { user: "alice".into(), ..Default::default() }, ..Default::default() },
            )],
            remote: vec![],
        };
        assert_eq!(live.enforce(&locks, Place::default(), OffsetDateTime::now_utc()), 1);
        assert_eq!(ended.load(Ordering::SeqCst), 1);
        drop(_a);
        assert_eq!(live.len(), 1, "a dropped guard leaves the registry");
    }
}
