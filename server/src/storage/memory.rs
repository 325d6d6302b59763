//! In-memory backend for unit tests: the same semantics as SQLite, nothing on disk.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::feed::Feed;
use super::{AuditRecord, Backend, Change, ChunkPage, Event, EventKind, Item, Op, Revisions, Watcher, events_for, plan};
use shared::client::BoxFuture;
use shared::error::{Error, Result};
use shared::timefmt::SharedClock;

/// The in-memory backend.
pub struct MemoryBackend {
    state: Mutex<State>,
    feed: Feed,
    clock: SharedClock,
    revisions: Revisions,
}

#[derive(Default)]
struct State {
    items: BTreeMap<String, Item>,
    audit: Vec<AuditRecord>,
    chunks: std::collections::BTreeMap<(String, i64), Vec<u8>>,
    closed: bool,
}

impl MemoryBackend {
    /// An empty backend.
    pub fn new(clock: SharedClock) -> MemoryBackend {
        MemoryBackend { state: Mutex::new(State::default()), feed: Feed::live(), clock, revisions: Revisions::default() }
    }

    fn now(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>> {
        let g = self.state.lock().map_err(|_| Error::internal("storage lock poisoned"))?;
        if g.closed {
            return Err(Error::internal("storage is closed"));
        }
        Ok(g)
    }
}

fn live(item: &Item, now: i64) -> bool {
    item.expires.is_none_or(|e| e > now)
}

impl Backend for MemoryBackend {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Item>>> {
        Box::pin(async move {
            let now = self.now();
            Ok(self.lock()?.items.get(key).filter(|i| live(i, now)).cloned())
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<Item>>> {
        Box::pin(async move {
            let now = self.now();
            let g = self.lock()?;
            Ok(g.items
                .range(prefix.to_string()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(_, v)| v)
                .filter(|i| live(i, now))
                .cloned()
                .collect())
        })
    }

    fn apply(&self, ops: Vec<Op>) -> BoxFuture<'_, Result<i64>> {
        Box::pin(async move {
            let now = self.now();
            let mut g = self.lock()?;
            // Taken under the lock, so revisions follow commit order as in SQLite.
            let revision = self.revisions.next(shared::timefmt::unix_nanos(self.clock.now()));
            {
                let changes = plan(ops, revision, |k| Ok(g.items.get(k).filter(|i| live(i, now)).cloned()))?;
                for c in &changes {
                    match c {
                        Change::Upsert(item) => {
                            g.items.insert(item.key.clone(), item.clone());
                        }
                        Change::Remove(k) => {
                            g.items.remove(k);
                        }
                    }
                }
                self.feed.publish(events_for(&changes, revision));
            }
            drop(g);
            Ok(revision)
        })
    }

    fn sweep(&self) -> BoxFuture<'_, Result<usize>> {
        Box::pin(async move {
            let now = self.now();
            let mut g = self.lock()?;
            let keys: Vec<String> = g.items.values().filter(|i| !live(i, now)).map(|i| i.key.clone()).collect();
            for k in &keys {
                g.items.remove(k);
            }
            let revision = self.revisions.next(0);
            self.feed.publish(keys.iter().map(|k| Event { kind: EventKind::Delete, key: k.clone(), revision }));
            Ok(keys.len())
        })
    }

    fn watch(&self) -> Watcher {
        self.feed.subscribe()
    }

    fn feed_live(&self) -> bool {
        self.feed.is_live()
    }

    fn feed_is_synchronous(&self) -> bool {
        true
    }

    fn append_audit(&self, json: String) -> BoxFuture<'_, Result<i64>> {
        Box::pin(async move {
            let mut g = self.lock()?;
            let id = g.audit.len() as i64 + 1;
            g.audit.push(AuditRecord { id, json });
            Ok(id)
        })
    }

    fn put_chunk(&self, sid: String, seq: i64, data: Vec<u8>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.lock()?.chunks.insert((sid, seq), data);
            Ok(())
        })
    }

    fn get_chunks(&self, sid: String, from: i64, max_bytes: usize) -> BoxFuture<'_, Result<ChunkPage>> {
        Box::pin(async move {
            let g = self.lock()?;
            let rows = g.chunks.range((sid.clone(), from)..).take_while(|((s, _), _)| *s == sid).map(|((_, seq), d)| Ok((*seq, d.clone())));
            super::page_chunks(rows, max_bytes)
        })
    }

    fn list_audit(&self, limit: usize) -> BoxFuture<'_, Result<Vec<AuditRecord>>> {
        Box::pin(async move {
            let g = self.lock()?;
            let start = g.audit.len().saturating_sub(limit);
            Ok(g.audit[start..].to_vec())
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Ok(mut g) = self.state.lock() {
                g.closed = true;
            }
        })
    }
}
