//! Storage: one key-value trait with SQLite, PostgreSQL and in-memory implementations.
//!
//! Everything the cluster remembers (roles, users, tokens, CAs, trusted and remote clusters,
//! nodes) is a JSON value under a key such as `roles/visitor`. The trait has no SQL in it; every
//! backend passes the same conformance suite (`conformance.rs`).
//!
//! - Every write gets a **revision**, assigned inside the backend's transaction: unique, and
//!   growing for each key (SQLite: the writer thread, so also in commit order; PostgreSQL: a
//!   sequence). It is printed as `metadata.id` so `tctl edit` can detect a concurrent change
//!   (compare-and-swap). It is never a position in the change feed.
//! - [`Backend::apply`] runs a batch of operations **atomically**: all or nothing. Multi-object
//!   changes (a trusted cluster and its CAs) use it so that no crash leaves half a change.
//!   What each operation means is decided once, in [`plan`], for every backend.
//! - Items may **expire**; the backend's clock decides (PostgreSQL: the database's `now()`, one
//!   clock for every process), expired items are invisible at once and swept shortly after,
//!   each sweep producing `Delete` events.
//! - [`Backend::watch`] follows every committed change, from any process, in commit order, or
//!   says when it cannot ([`feed`]); `crate::follow` is the one loop that consumes it.

pub mod audit;
pub mod feed;
#[cfg(test)]
pub mod memory;
pub mod pgconn;
mod pgoutput;
mod plan;
pub mod postgres;
pub mod sqlite;

#[doc(hidden)]
pub mod conformance;

pub use feed::{Watched, Watcher};
pub(crate) use plan::{Change, events_for, plan};

use shared::client::BoxFuture;
use shared::error::Result;

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
    /// The revision the change committed with (for a delete: the deleting batch's, or the
    /// deleted row's where the database gives no other).
    pub revision: i64,
}

/// A stored audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Sequence number.
    pub id: i64,
    /// The event JSON.
    pub json: String,
}

/// One stored chunk of a session recording: its number and bytes.
pub type Chunk = (i64, Vec<u8>);

/// One answer of [`Backend::get_chunks`].
#[derive(Debug, Default)]
pub struct ChunkPage {
    /// The chunks, in order.
    pub chunks: Vec<Chunk>,
    /// More chunks follow the last one.
    pub more: bool,
}

/// Takes chunks from `rows` (in `seq` order) up to about `max_bytes`, at least one; `more`
/// when a row is left over. The one paging rule every backend uses.
pub fn page_chunks<E>(
    rows: impl IntoIterator<Item = std::result::Result<Chunk, E>>,
    max_bytes: usize,
) -> std::result::Result<ChunkPage, E> {
    let mut page = ChunkPage::default();
    let mut total = 0usize;
    for row in rows {
        let (seq, data) = row?;
        if !page.chunks.is_empty() && total + data.len() > max_bytes {
            page.more = true;
            break;
        }
        total += data.len();
        page.chunks.push((seq, data));
    }
    Ok(page)
}

/// The storage trait.
pub trait Backend: Send + Sync + 'static {
    /// Reads one item (None if absent or expired).
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Item>>>;
    /// Lists live items whose key starts with `prefix`, in key order.
    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<Item>>>;
    /// Applies the operations atomically; returns the new revision.
    fn apply(&self, ops: Vec<Op>) -> BoxFuture<'_, Result<i64>>;
    /// Deletes expired items now (every process runs [`run_sweeper`]); returns how many.
    fn sweep(&self) -> BoxFuture<'_, Result<usize>>;
    /// Follows committed changes ([`feed`]).
    fn watch(&self) -> Watcher;
    /// Whether the change feed is live (`/readyz`).
    fn feed_live(&self) -> bool;
    /// Whether every change is on the feed before the write that made it returns (SQLite and
    /// memory publish as they commit; PostgreSQL's feed follows the commit by a few
    /// milliseconds). Only then may a copy kept from the feed stand in for a read.
    fn feed_is_synchronous(&self) -> bool {
        false
    }
    /// Appends an audit event.
    fn append_audit(&self, json: String) -> BoxFuture<'_, Result<i64>>;
    /// Appends several audit events (in one transaction where the store can).
    fn append_audit_many(&self, lines: Vec<String>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            for l in lines {
                self.append_audit(l).await?;
            }
            Ok(())
        })
    }
    /// The newest audit events, oldest first, at most `limit`.
    fn list_audit(&self, limit: usize) -> BoxFuture<'_, Result<Vec<AuditRecord>>>;
    /// Stores chunk `seq` of session recording `sid` (a retried chunk replaces itself). Apart
    /// from the keys: no change feed event, no revision.
    fn put_chunk(&self, sid: String, seq: i64, data: Vec<u8>) -> BoxFuture<'_, Result<()>>;
    /// The chunks of `sid` from `from` on, in order, up to about `max_bytes` (at least one),
    /// and whether more follow ([`page_chunks`]).
    fn get_chunks(&self, sid: String, from: i64, max_bytes: usize) -> BoxFuture<'_, Result<ChunkPage>>;
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

/// Sweeps expired items every `every` until `shutdown` (each process runs one; PostgreSQL's
/// sweep skips rows another process is deleting).
pub async fn run_sweeper(backend: std::sync::Arc<dyn Backend>, every: std::time::Duration, shutdown: crate::shutdown::Shutdown) {
    crate::shutdown::every(every, shutdown, || async {
        if let Err(e) = backend.sweep().await {
            tracing::warn!(error = %e, "expiry sweep failed");
        }
    })
    .await
}

/// Opens the storage `cfg` names and the audit store that goes with it.
pub async fn open(
    cfg: &crate::config::Storage,
    clock: shared::timefmt::SharedClock,
) -> Result<(std::sync::Arc<dyn Backend>, std::sync::Arc<dyn audit::AuditStore>)> {
    use std::sync::Arc;
    match cfg {
        crate::config::Storage::Sqlite { file } => {
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir).map_err(|e| shared::Error::internal(format!("cannot create {}: {e}", dir.display())))?;
            }
            let b: Arc<dyn Backend> = Arc::new(sqlite::SqliteBackend::open(file, clock)?);
            Ok((b.clone(), Arc::new(audit::BackendAudit(b))))
        }
        crate::config::Storage::Postgres { conn_string, audit } => {
            let info = pgconn::parse(conn_string, "teleport.storage.conn_string")?;
            let b: Arc<dyn Backend> = postgres::PostgresBackend::open(info).await?;
            let store: Arc<dyn audit::AuditStore> = match audit {
                Some(a) => Arc::new(postgres::PostgresAudit::open(pgconn::parse(a, "teleport.storage.audit_events_uri")?).await?),
                None => Arc::new(audit::BackendAudit(b.clone())),
            };
            Ok((b, store))
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
