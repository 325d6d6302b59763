//! SQLite backend: one file, WAL journal, `synchronous=FULL` (a write acknowledged is on disk),
//! every batch one transaction. A dedicated thread owns the connection and serves requests in
//! order, so there is exactly one writer and async tasks never block on SQLite. The thread also
//! assigns revisions and publishes events, so both follow commit order.

use std::path::Path;
use std::sync::mpsc;

use rusqlite::{Connection, OptionalExtension, params};
use shared::client::BoxFuture;
use shared::error::{Error, Result};
use shared::timefmt::SharedClock;
use std::sync::Arc;

use tokio::sync::oneshot;

use super::feed::Feed;
use super::{AuditRecord, Backend, Change, ChunkPage, Event, EventKind, Item, Op, Revisions, Watcher, events_for, plan, prefix_end};

type Reply<T> = oneshot::Sender<Result<T>>;

enum Cmd {
    Get(String, i64, Reply<Option<Item>>),
    List(String, i64, Reply<Vec<Item>>),
    /// ops, the clock in nanoseconds, the clock in seconds.
    Apply(Vec<Op>, i64, i64, Reply<i64>),
    Sweep(i64, Reply<usize>),
    AppendAudit(AuditAppend),
    ListAudit(usize, Reply<Vec<AuditRecord>>),
    PutChunk(String, i64, Vec<u8>, Reply<()>),
    GetChunks(String, i64, usize, Reply<ChunkPage>),
    Close(oneshot::Sender<()>),
}

/// The SQLite backend.
pub struct SqliteBackend {
    tx: mpsc::Sender<Cmd>,
    feed: Arc<Feed>,
    clock: SharedClock,
}

fn db_err(e: rusqlite::Error) -> Error {
    Error::internal(format!("storage error: {e}"))
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kv (
    key      TEXT PRIMARY KEY,
    value    BLOB NOT NULL,
    expires  INTEGER,
    revision INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_expires ON kv(expires) WHERE expires IS NOT NULL;
CREATE TABLE IF NOT EXISTS audit (
    id   INTEGER PRIMARY KEY AUTOINCREMENT,
    json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS recording_chunks (
    sid  TEXT NOT NULL,
    seq  INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (sid, seq)
) WITHOUT ROWID;
";

impl SqliteBackend {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path, clock: SharedClock) -> Result<SqliteBackend> {
        restrict_permissions(path)?;
        let conn = Connection::open(path).map_err(|e| Error::internal(format!("cannot open {}: {e}", path.display())))?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(db_err)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(db_err)?;
        // A page cache of up to 32 MiB (SQLite's default is 2 MiB): a root of 19,000 leaves has a
        // 100 MB database, and each heartbeat's row read its index pages back from the kernel
        // (pread was a sixth of an idle root's CPU). Pages are taken only as they are used.
        conn.pragma_update(None, "cache_size", -32768).map_err(db_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(db_err)?;
        conn.execute_batch(SCHEMA).map_err(db_err)?;
        let integrity: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0)).map_err(db_err)?;
        if integrity != "ok" {
            return Err(Error::internal(format!("database {} failed its integrity check: {integrity}", path.display())));
        }
        let last: i64 = conn.query_row("SELECT COALESCE(MAX(revision), 0) FROM kv", [], |r| r.get(0)).map_err(db_err)?;
        let (tx, rx) = mpsc::channel::<Cmd>();
        let feed = Arc::new(Feed::live());
        let thread_feed = feed.clone();
        let revisions = Revisions::starting_after(last);
        std::thread::Builder::new()
            .name("sqlite".into())
            .spawn(move || serve(conn, rx, thread_feed, revisions))
            .map_err(|e| Error::internal(format!("cannot start storage thread: {e}")))?;
        Ok(SqliteBackend { tx, feed, clock })
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Cmd) -> Result<T> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(make(tx)).map_err(|_| Error::internal("storage is closed"))?;
        rx.await.map_err(|_| Error::internal("storage is closed"))?
    }

    fn now(&self) -> i64 {
        self.clock.now().unix_timestamp()
    }
}

/// The database holds the CAs' private keys: it is created (or tightened to) 0600 before SQLite
/// opens it, and SQLite gives its `-wal` and `-shm` files the same mode.
fn restrict_permissions(path: &Path) -> Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let err = |e: std::io::Error| Error::internal(format!("cannot create {}: {e}", path.display()));
    std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path).map_err(err)?;
    let sibling = |suffix: &str| {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        std::path::PathBuf::from(p)
    };
    for p in [path.to_path_buf(), sibling("-wal"), sibling("-shm")] {
        if p.exists() {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).map_err(err)?;
        }
    }
    Ok(())
}

fn read_item(row: &rusqlite::Row<'_>) -> rusqlite::Result<Item> {
    Ok(Item { key: row.get(0)?, value: row.get(1)?, expires: row.get(2)?, revision: row.get(3)? })
}

fn get(conn: &Connection, key: &str, now: i64) -> Result<Option<Item>> {
    conn.prepare_cached("SELECT key, value, expires, revision FROM kv WHERE key = ?1 AND (expires IS NULL OR expires > ?2)")
        .map_err(db_err)?
        .query_row(params![key, now], read_item)
        .optional()
        .map_err(db_err)
}

fn apply(conn: &mut Connection, ops: Vec<Op>, revision: i64, now: i64) -> Result<Vec<Change>> {
    let tx = conn.transaction().map_err(db_err)?;
    let changes = plan(ops, revision, |k| get(&tx, k, now))?;
    for c in &changes {
        match c {
            Change::Upsert(i) => {
                tx.prepare_cached("INSERT OR REPLACE INTO kv (key, value, expires, revision) VALUES (?1, ?2, ?3, ?4)")
                    .map_err(db_err)?
                    .execute(params![i.key, i.value, i.expires, i.revision])
                    .map_err(db_err)?;
            }
            Change::Remove(k) => {
                tx.prepare_cached("DELETE FROM kv WHERE key = ?1").map_err(db_err)?.execute(params![k]).map_err(db_err)?;
            }
        }
    }
    tx.commit().map_err(db_err)?;
    Ok(changes)
}

/// Audit events after which a transaction takes no more waiting ones (a caller's own batch is
/// never split).
const AUDIT_BATCH: usize = 256;

/// Audit events waiting to be written, and whom to answer.
enum AuditAppend {
    /// One event, answered with its id.
    One(String, Reply<i64>),
    /// A caller's events, answered once.
    Many(Vec<String>, Reply<()>),
}

impl AuditAppend {
    fn lines(&self) -> &[String] {
        match self {
            AuditAppend::One(json, _) => std::slice::from_ref(json),
            AuditAppend::Many(lines, _) => lines,
        }
    }

    /// Answers the caller: `id` is the last event's.
    fn answer(self, id: Result<i64>) {
        // A caller that went away needs no answer.
        match self {
            AuditAppend::One(_, reply) => drop(reply.send(id)),
            AuditAppend::Many(_, reply) => drop(reply.send(id.map(|_| ()))),
        }
    }
}

/// Appends audit events in one transaction (one disk flush for all of them), answering each.
fn append_audit_batch(conn: &mut Connection, batch: Vec<AuditAppend>) {
    let r = (|| -> rusqlite::Result<Vec<i64>> {
        let tx = conn.transaction()?;
        // The last id of each entry (a `Many` is answered without one).
        let mut ids = Vec::with_capacity(batch.len());
        {
            let mut stmt = tx.prepare_cached("INSERT INTO audit (json) VALUES (?1)")?;
            for entry in &batch {
                for json in entry.lines() {
                    stmt.execute(params![json])?;
                }
                ids.push(tx.last_insert_rowid());
            }
        }
        tx.commit()?;
        Ok(ids)
    })();
    match r {
        Ok(ids) => batch.into_iter().zip(ids).for_each(|(entry, id)| entry.answer(Ok(id))),
        Err(e) => {
            let e = db_err(e);
            batch.into_iter().for_each(|entry| entry.answer(Err(e.clone())));
        }
    }
}

/// Group commit: every audit event already waiting goes into `first`'s transaction (busy apps
/// and databases audit each request; a flush each would bound them). A command of another kind
/// taken on the way is left in `held`, served next.
fn gather_audit(conn: &mut Connection, rx: &mpsc::Receiver<Cmd>, held: &mut Option<Cmd>, first: AuditAppend) {
    let mut events = first.lines().len();
    let mut batch = vec![first];
    while events < AUDIT_BATCH {
        let next = match rx.try_recv() {
            Ok(Cmd::AppendAudit(a)) => a,
            Ok(other) => {
                *held = Some(other);
                break;
            }
            Err(_) => break,
        };
        events += next.lines().len();
        batch.push(next);
    }
    append_audit_batch(conn, batch);
}

fn serve(mut conn: Connection, rx: mpsc::Receiver<Cmd>, feed: Arc<Feed>, revisions: Revisions) {
    // A command taken from the queue while gathering audit events, served next.
    let mut held: Option<Cmd> = None;
    loop {
        let cmd = match held.take() {
            Some(c) => c,
            None => match rx.recv() {
                Ok(c) => c,
                Err(_) => break,
            },
        };
        match cmd {
            Cmd::Get(key, now, reply) => {
                let _ = reply.send(get(&conn, &key, now));
            }
            Cmd::List(prefix, now, reply) => {
                let end = prefix_end(&prefix);
                let r = conn
                    .prepare_cached(
                        "SELECT key, value, expires, revision FROM kv WHERE key >= ?1 AND key < ?2 AND (expires IS NULL OR expires > ?3) ORDER BY key",
                    )
                    .and_then(|mut s| s.query_map(params![prefix, end, now], read_item)?.collect::<rusqlite::Result<Vec<_>>>())
                    .map_err(db_err);
                let _ = reply.send(r);
            }
            Cmd::Apply(ops, now_nanos, now, reply) => {
                let revision = revisions.next(now_nanos);
                let r = apply(&mut conn, ops, revision, now);
                let r = r.map(|changes| {
                    feed.publish(events_for(&changes, revision));
                    revision
                });
                let _ = reply.send(r);
            }
            Cmd::Sweep(now, reply) => {
                let r = (|| -> Result<usize> {
                    let tx = conn.transaction().map_err(db_err)?;
                    let keys: Vec<String> = tx
                        .prepare_cached("SELECT key FROM kv WHERE expires IS NOT NULL AND expires <= ?1")
                        .map_err(db_err)?
                        .query_map(params![now], |r| r.get(0))
                        .map_err(db_err)?
                        .collect::<rusqlite::Result<Vec<String>>>()
                        .map_err(db_err)?;
                    tx.execute("DELETE FROM kv WHERE expires IS NOT NULL AND expires <= ?1", params![now]).map_err(db_err)?;
                    tx.commit().map_err(db_err)?;
                    let revision = revisions.next(0);
                    feed.publish(keys.iter().map(|k| Event { kind: EventKind::Delete, key: k.clone(), revision }));
                    Ok(keys.len())
                })();
                let _ = reply.send(r);
            }
            Cmd::AppendAudit(first) => gather_audit(&mut conn, &rx, &mut held, first),
            Cmd::ListAudit(limit, reply) => {
                let limit = i64::try_from(limit).unwrap_or(i64::MAX);
                let r = conn
                    .prepare_cached("SELECT id, json FROM (SELECT id, json FROM audit ORDER BY id DESC LIMIT ?1) ORDER BY id")
                    .and_then(|mut s| {
                        s.query_map(params![limit], |r| Ok(AuditRecord { id: r.get(0)?, json: r.get(1)? }))?
                            .collect::<rusqlite::Result<Vec<_>>>()
                    })
                    .map_err(db_err);
                let _ = reply.send(r);
            }
            Cmd::PutChunk(sid, seq, data, reply) => {
                let r = conn
                    .prepare_cached("INSERT OR REPLACE INTO recording_chunks (sid, seq, data) VALUES (?1, ?2, ?3)")
                    .and_then(|mut s| s.execute(params![sid, seq, data]))
                    .map(|_| ())
                    .map_err(db_err);
                let _ = reply.send(r);
            }
            Cmd::GetChunks(sid, from, max, reply) => {
                let r = (|| {
                    let mut s = conn.prepare_cached("SELECT seq, data FROM recording_chunks WHERE sid = ?1 AND seq >= ?2 ORDER BY seq")?;
                    let rows = s.query_map(params![sid, from], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    super::page_chunks(rows, max)
                })()
                .map_err(db_err);
                let _ = reply.send(r);
            }
            Cmd::Close(done) => {
                let _ = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
                drop(conn);
                feed.down();
                let _ = done.send(());
                return;
            }
        }
    }
}

impl Backend for SqliteBackend {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Item>>> {
        Box::pin(async move {
            let now = self.now();
            self.ask(|r| Cmd::Get(key.to_string(), now, r)).await
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<Item>>> {
        Box::pin(async move {
            let now = self.now();
            self.ask(|r| Cmd::List(prefix.to_string(), now, r)).await
        })
    }

    fn apply(&self, ops: Vec<Op>) -> BoxFuture<'_, Result<i64>> {
        Box::pin(async move {
            let nanos = shared::timefmt::unix_nanos(self.clock.now());
            let now = self.now();
            self.ask(|r| Cmd::Apply(ops, nanos, now, r)).await
        })
    }

    fn sweep(&self) -> BoxFuture<'_, Result<usize>> {
        Box::pin(async move {
            let now = self.now();
            self.ask(|r| Cmd::Sweep(now, r)).await
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
        Box::pin(async move { self.ask(|r| Cmd::AppendAudit(AuditAppend::One(json, r))).await })
    }

    fn append_audit_many(&self, lines: Vec<String>) -> BoxFuture<'_, Result<()>> {
        // One command: the writer commits them together, with whatever else is waiting.
        Box::pin(async move { self.ask(|r| Cmd::AppendAudit(AuditAppend::Many(lines, r))).await })
    }

    fn list_audit(&self, limit: usize) -> BoxFuture<'_, Result<Vec<AuditRecord>>> {
        Box::pin(async move { self.ask(|r| Cmd::ListAudit(limit, r)).await })
    }

    fn put_chunk(&self, sid: String, seq: i64, data: Vec<u8>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move { self.ask(|r| Cmd::PutChunk(sid, seq, data, r)).await })
    }

    fn get_chunks(&self, sid: String, from: i64, max_bytes: usize) -> BoxFuture<'_, Result<ChunkPage>> {
        Box::pin(async move { self.ask(|r| Cmd::GetChunks(sid, from, max_bytes, r)).await })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            if self.tx.send(Cmd::Close(tx)).is_ok() {
                let _ = rx.await;
            }
        })
    }
}
