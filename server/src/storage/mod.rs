//! Storage: one key-value trait with a SQLite and an in-memory implementation.
//!
//! Everything the cluster remembers (roles, users, tokens, CAs, trusted and remote clusters,
//! nodes) is a JSON value under a key such as `roles/visitor`. The trait has no SQL in it, so
//! another backend (PostgreSQL for HA) can be added by implementing it and passing the same
//! conformance suite (`conformance.rs`).
//!
//! - Every write gets a **revision**: a number that only grows (nanoseconds since the epoch,
//!   bumped when the clock stalls), printed as `metadata.id` so `tctl edit` can detect a
//!   concurrent change (compare-and-swap).
//! - [`Backend::apply`] runs a batch of operations **atomically**: all or nothing. Multi-object
//!   changes (a trusted cluster and its CAs) use it so that no crash leaves half a change.
//! - Items may **expire**; expired items are invisible at once and swept shortly after, each
//!   sweep producing `Delete` events.
//! - [`Backend::watch`] streams change events; services use it to react (TLS trust, tunnels,
//!   node caches).

#[cfg(test)]
pub mod memory;
pub mod sqlite;

#[cfg(test)]
mod conformance;

use shared::client::BoxFuture;
use shared::error::Result;
use tokio::sync::broadcast;

/// A stored item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The key, e.g. `roles/visitor`.
    pub key: String,
    /// The value (JSON).
    pub value: Vec<u8>,
    /// Unix seconds after which the item is gone.
    pub expires: Option<i64>,
    /// Revision of the last write.
    pub revision: i64,
}

/// A write to apply.
#[derive(Debug, Clone)]
pub enum Op {
    /// Create or replace.
    Put { key: String, value: Vec<u8>, expires: Option<i64> },
    /// Create; fails with AlreadyExists if present.
    Create { key: String, value: Vec<u8>, expires: Option<i64> },
    /// Replace; fails with NotFound if absent.
    #[allow(dead_code)] // Part of the storage contract; exercised by the conformance suite.
    Update { key: String, value: Vec<u8>, expires: Option<i64> },
    /// Replace only if the current revision is `expected`; else CompareFailed (NotFound if absent).
    CompareAndSwap { key: String, value: Vec<u8>, expires: Option<i64>, expected: i64 },
    /// Delete; fails with NotFound if absent.
    Delete { key: String },
    /// Delete if present.
    DeleteIfExists { key: String },
    /// Fails with NotFound if `key` is absent (a precondition inside a batch).
    Exists { key: String },
}

impl Op {
    /// The key the operation touches.
    pub fn key(&self) -> &str {
        match self {
            Op::Put { key, .. }
            | Op::Create { key, .. }
            | Op::Update { key, .. }
            | Op::CompareAndSwap { key, .. }
            | Op::Delete { key }
            | Op::DeleteIfExists { key }
            | Op::Exists { key } => key,
        }
    }
}

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Created or replaced.
    Put,
    /// Deleted or expired.
    Delete,
}

/// A change event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Put or delete.
    pub kind: EventKind,
    /// Which key.
    pub key: String,
}

/// A stored audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Sequence number.
    pub id: i64,
    /// The event JSON.
    pub json: String,
}

/// The storage trait.
pub trait Backend: Send + Sync + 'static {
    /// Reads one item (None if absent or expired).
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Item>>>;
    /// Lists live items whose key starts with `prefix`, in key order.
    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<Item>>>;
    /// Applies the operations atomically; returns the new revision.
    fn apply(&self, ops: Vec<Op>) -> BoxFuture<'_, Result<i64>>;
    /// Deletes expired items now (also done periodically); returns how many.
    fn sweep(&self) -> BoxFuture<'_, Result<usize>>;
    /// Subscribes to change events.
    fn watch(&self) -> broadcast::Receiver<Event>;
    /// Appends an audit event.
    fn append_audit(&self, json: String) -> BoxFuture<'_, Result<i64>>;
    /// The newest audit events, oldest first, at most `limit`.
    fn list_audit(&self, limit: usize) -> BoxFuture<'_, Result<Vec<AuditRecord>>>;
    /// Flushes and closes; later calls fail.
    fn close(&self) -> BoxFuture<'_, ()>;
}

/// Convenience wrappers around [`Backend::apply`].
#[cfg(test)]
pub trait BackendExt: Backend {
    /// Create or replace.
    fn put(&self, key: &str, value: Vec<u8>, expires: Option<i64>) -> BoxFuture<'_, Result<i64>> {
        self.apply(vec![Op::Put { key: key.into(), value, expires }])
    }
    /// Create only.
    fn create(&self, key: &str, value: Vec<u8>, expires: Option<i64>) -> BoxFuture<'_, Result<i64>> {
        self.apply(vec![Op::Create { key: key.into(), value, expires }])
    }
    /// Delete (NotFound if absent).
    fn delete(&self, key: &str) -> BoxFuture<'_, Result<i64>> {
        self.apply(vec![Op::Delete { key: key.into() }])
    }
}

#[cfg(test)]
impl<T: Backend + ?Sized> BackendExt for T {}

/// The exclusive upper bound for keys starting with `prefix` (keys are ASCII).
pub fn prefix_end(prefix: &str) -> String {
    let mut bytes = prefix.as_bytes().to_vec();
    while let Some(last) = bytes.pop() {
        if last < 0x7f {
            bytes.push(last + 1);
            return String::from_utf8(bytes).unwrap_or_default();
        }
    }
    "\u{7f}".into()
}

/// Monotonic revisions: nanoseconds since the epoch, strictly increasing.
#[derive(Debug, Default)]
pub struct Revisions {
    last: std::sync::atomic::AtomicI64,
}

impl Revisions {
    /// Starts after `last`.
    pub fn starting_after(last: i64) -> Revisions {
        Revisions { last: std::sync::atomic::AtomicI64::new(last) }
    }

    /// The next revision.
    pub fn next(&self, now_nanos: i64) -> i64 {
        use std::sync::atomic::Ordering;
        let mut cur = self.last.load(Ordering::SeqCst);
        loop {
            let next = now_nanos.max(cur + 1);
            match self.last.compare_exchange(cur, next, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return next,
                Err(actual) => cur = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_bounds() {
        assert_eq!(prefix_end("roles/"), "roles0");
        assert_eq!(prefix_end("a"), "b");
    }

    #[test]
    fn revisions_increase() {
        let r = Revisions::starting_after(100);
        assert_eq!(r.next(50), 101);
        assert_eq!(r.next(50), 102);
        assert_eq!(r.next(1000), 1000);
    }
}

/// A change a batch makes, decided by [`plan`] and carried out by a backend.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// Write this item.
    Upsert(Item),
    /// Remove this key.
    Remove(String),
}

/// Decides what a batch does, given the live items it touches (`current`). Shared by every
/// backend so that the semantics of each operation are written once. Later operations in a
/// batch see the effects of earlier ones.
pub(crate) fn plan(ops: Vec<Op>, revision: i64, mut current: impl FnMut(&str) -> Result<Option<Item>>) -> Result<Vec<Change>> {
    use shared::error::Error;
    use std::collections::HashMap;
    let mut overlay: HashMap<String, Option<Item>> = HashMap::new();
    let mut changes = Vec::new();
    for op in ops {
        let key = op.key().to_string();
        if key.is_empty() || key.len() > 1024 {
            return Err(Error::bad_parameter("storage key must be 1-1024 bytes"));
        }
        let existing = match overlay.get(&key) {
            Some(v) => v.clone(),
            None => current(&key)?,
        };
        let upsert = |value: Vec<u8>, expires: Option<i64>| Item { key: key.clone(), value, expires, revision };
        let change = match op {
            Op::Put { value, expires, .. } => Some(Change::Upsert(upsert(value, expires))),
            Op::Create { value, expires, .. } => {
                if existing.is_some() {
                    return Err(Error::already_exists(format!("key {key:?} already exists")));
                }
                Some(Change::Upsert(upsert(value, expires)))
            }
            Op::Update { value, expires, .. } => {
                if existing.is_none() {
                    return Err(Error::not_found(format!("key {key:?} is not found")));
                }
                Some(Change::Upsert(upsert(value, expires)))
            }
            Op::CompareAndSwap { value, expires, expected, .. } => match &existing {
                None => return Err(Error::not_found(format!("key {key:?} is not found"))),
                Some(i) if i.revision != expected => {
                    return Err(Error::compare_failed(format!("key {key:?} was changed by someone else")));
                }
                Some(_) => Some(Change::Upsert(upsert(value, expires))),
            },
            Op::Delete { .. } => {
                if existing.is_none() {
                    return Err(Error::not_found(format!("key {key:?} is not found")));
                }
                Some(Change::Remove(key.clone()))
            }
            Op::DeleteIfExists { .. } => existing.as_ref().map(|_| Change::Remove(key.clone())),
            Op::Exists { .. } => {
                if existing.is_none() {
                    return Err(Error::not_found(format!("key {key:?} is not found")));
                }
                None
            }
        };
        if let Some(c) = change {
            match &c {
                Change::Upsert(item) => overlay.insert(key.clone(), Some(item.clone())),
                Change::Remove(_) => overlay.insert(key.clone(), None),
            };
            changes.push(c);
        }
    }
    Ok(changes)
}

/// Events for a set of changes.
pub(crate) fn events_for(changes: &[Change]) -> Vec<Event> {
    changes
        .iter()
        .map(|c| match c {
            Change::Upsert(i) => Event { kind: EventKind::Put, key: i.key.clone() },
            Change::Remove(k) => Event { kind: EventKind::Delete, key: k.clone() },
        })
        .collect()
}

/// Capacity of the change-event channel; slow watchers see `Lagged` and must resync.
pub(crate) const EVENT_CAPACITY: usize = 4096;
