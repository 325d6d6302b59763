//! PostgreSQL backend: the state several `teleport` processes of one cluster share.
//!
//! ```text
//!   process A ──pool──┐                 ┌── kv (key text COLLATE "C", value, expires, revision)
//!   process B ──pool──┼──> PostgreSQL ──┤   publication kv_pub, sequence kv_revision
//!                     │                 └── audit (unless audit_events_uri names another database)
//!   each process: one decoding connection with a temporary pgoutput slot ──> its Feed
//! ```
//! - Every batch is one transaction that first locks the rows it touches (`FOR UPDATE`, in key
//!   order), so [`plan`] decides on their current values and nobody can change them before it
//!   commits; the changes are written with one revision from `kv_revision`, taken after the
//!   locks, so a key's revisions grow in commit order. `READ COMMITTED` is enough because a
//!   batch reads nothing but the rows it locked, and it makes contending writers of one key wait
//!   for each other instead of failing (`SERIALIZABLE` failed such batches with "could not
//!   serialize access" often enough, under load, to exhaust the retries). What still conflicts
//!   (a key created concurrently, a deadlock) is retried; an error while committing is
//!   returned, never retried blindly.
//! - Expiry is the database's clock: a row is live while `expires > now()` (Unix seconds); each
//!   process sweeps expired rows in small batches, `SKIP LOCKED` so two never fight.
//! - The change feed is logical decoding: a temporary slot (it dies with its connection, so a
//!   dead process never pins WAL) polled every [`POLL`]; changes arrive in commit order from
//!   every process. When the connection is lost the feed goes down (every watcher resyncs once
//!   it is back) and is recreated with backoff.
//! - Needs `wal_level = logical`, a free replication slot per process, and a user with
//!   `REPLICATION` (or a superuser); checked at start, with the setting and the fix named.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use rand::RngExt;
use shared::client::BoxFuture;
use shared::error::{Error, Result};
use tokio_postgres::error::SqlState;

use super::feed::Feed;
use super::pgconn::ConnInfo;
use super::pgoutput::{Decoder, Message};
use super::{AuditRecord, Backend, Change, ChunkPage, Event, EventKind, Item, Op, Watcher, plan, prefix_end};
use crate::shutdown::{Shutdown, ShutdownTrigger, shutdown_pair};

/// How often the feed polls its slot when the last poll was not full.
pub const POLL: Duration = Duration::from_millis(200);
/// Changes fetched per poll.
const BATCH: i32 = 1000;
/// Expired rows deleted per sweep transaction.
const SWEEP_BATCH: i64 = 1000;
/// Attempts of a batch that conflicts with other writers.
const ATTEMPTS: u32 = 10;
/// The schema version this code writes.
const SCHEMA_VERSION: i32 = 1;
/// `pg_advisory_xact_lock` key serializing schema migrations of concurrent first starts.
const MIGRATION_LOCK: i64 = 0x7465_6c65_706f_7274;

const LIVE: &str = "(expires IS NULL OR expires > extract(epoch from now())::bigint)";

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS kv (
    key      text COLLATE "C" PRIMARY KEY,
    value    bytea NOT NULL,
    expires  bigint,
    revision bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS kv_expires ON kv (expires) WHERE expires IS NOT NULL;
ALTER TABLE kv REPLICA IDENTITY FULL;
CREATE SEQUENCE IF NOT EXISTS kv_revision;
CREATE TABLE IF NOT EXISTS audit (
    id       bigserial PRIMARY KEY,
    event_id text UNIQUE,
    json     text NOT NULL
);
CREATE TABLE IF NOT EXISTS recording_chunks (
    sid  text NOT NULL,
    seq  bigint NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (sid, seq)
);
"#;

/// The backend.
pub struct PostgresBackend {
    pool: Pool,
    feed: Arc<Feed>,
    info: ConnInfo,
    closed: AtomicBool,
    stop_feed: ShutdownTrigger,
}

/// One clear error for a database problem, classified: unreachable is `ConnectionProblem`
/// (HTTP 503, "try again"), the rest is internal (details in the log, not the answer).
pub(crate) fn db_error(describe: &str, e: &tokio_postgres::Error) -> Error {
    if e.is_closed() || e.code().is_none() {
        return Error::connection_problem(format!("the database at {describe} is unreachable ({e}); it is retried on the next request"));
    }
    Error::internal(format!(
        "database error at {describe}: {}",
        e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string())
    ))
}

fn pool_error(describe: &str, e: deadpool_postgres::PoolError) -> Error {
    match e {
        deadpool_postgres::PoolError::Backend(e) => db_error(describe, &e),
        other => {
            Error::connection_problem(format!("the database at {describe} is unreachable ({other}); it is retried on the next request"))
        }
    }
}

/// Whether a failed batch may simply run again: a conflict with another writer.
fn retryable(e: &tokio_postgres::Error) -> bool {
    matches!(e.code(), Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::UNIQUE_VIOLATION)
}

/// Connects once (no pool), creating the database first if it does not exist.
pub(crate) async fn connect(info: &ConnInfo) -> Result<tokio_postgres::Client> {
    let tls = info.tls()?;
    let unreachable = |e: &tokio_postgres::Error| {
        Error::connection_problem(format!(
            "cannot connect to PostgreSQL at {} ({e}); check that it is running there, that the user, password and database in the \
             connection string are right, and that pg_hba.conf lets this host in",
            info.describe
        ))
    };
    match info.config.connect(tls.clone()).await {
        Ok((client, conn)) => {
            tokio::spawn(conn);
            Ok(client)
        }
        Err(e) if e.code() == Some(&SqlState::INVALID_CATALOG_NAME) => {
            // The database does not exist yet: create it (needs CREATEDB), then connect again.
            let db = info.config.get_dbname().unwrap_or_default().to_string();
            let mut admin = info.config.clone();
            admin.dbname("postgres");
            let (client, conn) = admin.connect(tls.clone()).await.map_err(|e| unreachable(&e))?;
            tokio::spawn(conn);
            let sql =
                format!("CREATE DATABASE \"{}\" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'", db.replace('"', "\"\""));
            match client.batch_execute(&sql).await {
                Ok(()) => tracing::info!(database = %db, "created the database"),
                // Another process created it at the same moment (PostgreSQL reports that race
                // as a unique violation on pg_database).
                Err(e) if e.code() == Some(&SqlState::DUPLICATE_DATABASE) || e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {}
                Err(e) => {
                    return Err(Error::bad_parameter(format!(
                        "database {db:?} does not exist at {} and cannot be created ({}); create it, or grant CREATEDB",
                        info.describe,
                        e.as_db_error().map(|d| d.message().to_string()).unwrap_or_else(|| e.to_string())
                    )));
                }
            }
            let (client, conn) = info.config.connect(tls).await.map_err(|e| unreachable(&e))?;
            tokio::spawn(conn);
            Ok(client)
        }
        Err(e) => Err(unreachable(&e)),
    }
}

/// Checks the settings the change feed needs, naming each and its fix.
async fn check_settings(client: &tokio_postgres::Client, describe: &str) -> Result<()> {
    let show = |name: &'static str| async move {
        client.query_one(&format!("SHOW {name}"), &[]).await.map(|r| r.get::<_, String>(0)).map_err(|e| db_error(describe, &e))
    };
    let wal = show("wal_level").await?;
    if wal != "logical" {
        return Err(Error::bad_parameter(format!(
            "PostgreSQL at {describe} has wal_level = {wal}; the change feed needs wal_level = logical: set it in postgresql.conf \
             (ALTER SYSTEM SET wal_level = logical) and restart PostgreSQL"
        )));
    }
    let slots: i64 = show("max_replication_slots").await?.parse().unwrap_or(0);
    if slots < 1 {
        return Err(Error::bad_parameter(format!(
            "PostgreSQL at {describe} has max_replication_slots = {slots}; every teleport process needs one: set it to at least the \
             number of processes plus two, and restart PostgreSQL"
        )));
    }
    Ok(())
}

/// Creates or upgrades the schema; concurrent first starts wait for each other.
async fn migrate(client: &mut tokio_postgres::Client, describe: &str) -> Result<()> {
    let err = |e: tokio_postgres::Error| db_error(describe, &e);
    let tx = client.transaction().await.map_err(err)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(err)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)").await.map_err(err)?;
    let current: Option<i32> = tx.query_opt("SELECT max(version) FROM schema_version", &[]).await.map_err(err)?.and_then(|r| r.get(0));
    match current {
        Some(v) if v > SCHEMA_VERSION => {
            return Err(Error::bad_parameter(format!(
                "the database at {describe} has schema version {v}, newer than this teleport understands ({SCHEMA_VERSION}); upgrade teleport"
            )));
        }
        Some(v) if v == SCHEMA_VERSION => {}
        _ => {
            tx.batch_execute(SCHEMA).await.map_err(err)?;
            let has_pub = tx.query_opt("SELECT 1 FROM pg_publication WHERE pubname = 'kv_pub'", &[]).await.map_err(err)?.is_some();
            if !has_pub {
                tx.batch_execute("CREATE PUBLICATION kv_pub FOR TABLE kv").await.map_err(err)?;
            }
            tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&SCHEMA_VERSION]).await.map_err(err)?;
            tracing::info!(database = %describe, version = SCHEMA_VERSION, "database schema created");
        }
    }
    tx.commit().await.map_err(err)
}

impl PostgresBackend {
    /// Connects, checks the settings, migrates the schema, and starts the change feed; fails
    /// with one clear message if any of it cannot be done.
    pub async fn open(info: ConnInfo) -> Result<Arc<PostgresBackend>> {
        let mut client = connect(&info).await?;
        check_settings(&client, &info.describe).await?;
        migrate(&mut client, &info.describe).await?;
        drop(client);
        let manager = Manager::from_config(info.config.clone(), info.tls()?, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(info.pool_max)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(10)))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .build()
            .map_err(|e| Error::internal(format!("database pool: {e}")))?;
        let feed = Arc::new(Feed::down_at_start());
        let (stop_feed, stop) = shutdown_pair();
        tokio::spawn(run_feed(info.clone(), feed.clone(), stop));
        let backend = Arc::new(PostgresBackend { pool, feed: feed.clone(), info, closed: AtomicBool::new(false), stop_feed });
        // Serve only once the feed runs: until then nothing could follow what we write.
        let mut w = feed.subscribe();
        if tokio::time::timeout(Duration::from_secs(30), w.next()).await.is_err() {
            backend.stop_feed.trigger();
            return Err(Error::connection_problem(format!(
                "the change feed of the database at {} did not start within 30 s; see the log for why (a free replication slot and \
                 the REPLICATION privilege are needed)",
                backend.info.describe
            )));
        }
        tracing::info!(database = %backend.info.describe, "PostgreSQL storage ready");
        Ok(backend)
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(Error::internal("storage is closed"));
        }
        self.pool.get().await.map_err(|e| pool_error(&self.info.describe, e))
    }

    fn err(&self, e: &tokio_postgres::Error) -> Error {
        db_error(&self.info.describe, e)
    }

    async fn try_apply(&self, ops: &[Op]) -> std::result::Result<i64, (Error, bool)> {
        let no_retry = |e: Error| (e, false);
        let mut client = self.client().await.map_err(|e| (e, true))?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::ReadCommitted)
            .start()
            .await
            .map_err(|e| (self.err(&e), retryable(&e) || e.is_closed()))?;
        let keys: Vec<String> = ops.iter().map(|o| o.key().to_string()).collect::<HashSet<_>>().into_iter().collect();
        let rows = tx
            .query(
                &format!("SELECT key, value, expires, revision FROM kv WHERE key = ANY($1) AND {LIVE} ORDER BY key FOR UPDATE"),
                &[&keys],
            )
            .await
            .map_err(|e| (self.err(&e), retryable(&e) || e.is_closed()))?;
        let mut live: HashMap<String, Item> = HashMap::new();
        for r in rows {
            let item = Item { key: r.get(0), value: r.get(1), expires: r.get(2), revision: r.get(3) };
            live.insert(item.key.clone(), item);
        }
        let revision: i64 =
            tx.query_one("SELECT nextval('kv_revision')", &[]).await.map_err(|e| (self.err(&e), retryable(&e) || e.is_closed()))?.get(0);
        let changes = plan(ops.to_vec(), revision, |k| Ok(live.get(k).cloned())).map_err(no_retry)?;
        let mut written: HashSet<String> = HashSet::new();
        for c in &changes {
            match c {
                Change::Upsert(i) => {
                    let n = if live.contains_key(&i.key) || written.contains(&i.key) {
                        tx.execute(
                            "UPDATE kv SET value = $2, expires = $3, revision = $4 WHERE key = $1",
                            &[&i.key, &i.value, &i.expires, &i.revision],
                        )
                        .await
                    } else {
                        // New, or replacing an expired row; 0 rows means another writer created
                        // it since we looked: a conflict, tried again.
                        tx.execute(
                            &format!(
                                "INSERT INTO kv (key, value, expires, revision) VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO UPDATE \
                                 SET value = EXCLUDED.value, expires = EXCLUDED.expires, revision = EXCLUDED.revision \
                                 WHERE NOT {}",
                                LIVE.replace("expires", "kv.expires")
                            ),
                            &[&i.key, &i.value, &i.expires, &i.revision],
                        )
                        .await
                    }
                    .map_err(|e| (self.err(&e), retryable(&e) || e.is_closed()))?;
                    if n == 0 {
                        return Err((Error::compare_failed("a key was created concurrently"), true));
                    }
                    written.insert(i.key.clone());
                }
                Change::Remove(k) => {
                    tx.execute("DELETE FROM kv WHERE key = $1", &[k]).await.map_err(|e| (self.err(&e), retryable(&e) || e.is_closed()))?;
                    written.insert(k.clone());
                }
            }
        }
        // A failure here is ambiguous (the commit may have happened): never retried.
        tx.commit().await.map_err(|e| (self.err(&e), retryable(&e)))?;
        Ok(revision)
    }
}

impl Backend for PostgresBackend {
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Item>>> {
        Box::pin(async move {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(&format!("SELECT key, value, expires, revision FROM kv WHERE key = $1 AND {LIVE}"))
                .await
                .map_err(|e| self.err(&e))?;
            let row = client.query_opt(&stmt, &[&key]).await.map_err(|e| self.err(&e))?;
            Ok(row.map(|r| Item { key: r.get(0), value: r.get(1), expires: r.get(2), revision: r.get(3) }))
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<Item>>> {
        Box::pin(async move {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(&format!(
                    "SELECT key, value, expires, revision FROM kv WHERE key >= $1 AND key < $2 AND {LIVE} ORDER BY key"
                ))
                .await
                .map_err(|e| self.err(&e))?;
            let end = prefix_end(prefix);
            let rows = client.query(&stmt, &[&prefix, &end]).await.map_err(|e| self.err(&e))?;
            Ok(rows.into_iter().map(|r| Item { key: r.get(0), value: r.get(1), expires: r.get(2), revision: r.get(3) }).collect())
        })
    }

    fn apply(&self, ops: Vec<Op>) -> BoxFuture<'_, Result<i64>> {
        Box::pin(async move {
            for op in &ops {
                let k = op.key();
                if k.is_empty() || k.len() > 1024 {
                    return Err(Error::bad_parameter("storage key must be 1-1024 bytes"));
                }
            }
            let mut attempt = 0;
            loop {
                attempt += 1;
                match self.try_apply(&ops).await {
                    Ok(rev) => return Ok(rev),
                    Err((e, true)) if attempt < ATTEMPTS => {
                        if attempt > 2 {
                            tracing::debug!(attempt, error = %e, "retrying a storage batch");
                        }
                        // First retry at once, then linear steps of 100 ms (at most 750 ms),
                        // half of it random, so that contending writers spread out.
                        if attempt > 1 {
                            let step = Duration::from_millis((100 * u64::from(attempt - 1)).min(750));
                            let jitter: f64 = rand::rng().random_range(0.5..1.0);
                            tokio::time::sleep(step.mul_f64(jitter)).await;
                        }
                    }
                    Err((e, _)) => return Err(e),
                }
            }
        })
    }

    fn sweep(&self) -> BoxFuture<'_, Result<usize>> {
        Box::pin(async move {
            let client = self.client().await?;
            let stmt = client
                .prepare_cached(
                    "DELETE FROM kv WHERE key IN (SELECT key FROM kv WHERE expires IS NOT NULL AND expires <= extract(epoch from now())::bigint \
                     ORDER BY expires LIMIT $1 FOR UPDATE SKIP LOCKED)",
                )
                .await
                .map_err(|e| self.err(&e))?;
            let mut total = 0usize;
            loop {
                let n = client.execute(&stmt, &[&SWEEP_BATCH]).await.map_err(|e| self.err(&e))?;
                total += usize::try_from(n).unwrap_or(0);
                if n < u64::try_from(SWEEP_BATCH).unwrap_or(0) {
                    return Ok(total);
                }
            }
        })
    }

    fn watch(&self) -> Watcher {
        self.feed.subscribe()
    }

    fn feed_live(&self) -> bool {
        self.feed.is_live()
    }

    fn append_audit(&self, json: String) -> BoxFuture<'_, Result<i64>> {
        Box::pin(async move { audit_append(&self.pool, &self.info.describe, json).await })
    }

    fn list_audit(&self, limit: usize) -> BoxFuture<'_, Result<Vec<AuditRecord>>> {
        Box::pin(async move { audit_list(&self.pool, &self.info.describe, limit).await })
    }

    fn put_chunk(&self, sid: String, seq: i64, data: Vec<u8>) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let describe = &self.info.describe;
            let client = self.pool.get().await.map_err(|e| pool_error(describe, e))?;
            client
                .execute(
                    "INSERT INTO recording_chunks (sid, seq, data) VALUES ($1, $2, $3) ON CONFLICT (sid, seq) DO UPDATE SET data = EXCLUDED.data",
                    &[&sid, &seq, &data],
                )
                .await
                .map_err(|e| db_error(describe, &e))?;
            Ok(())
        })
    }

    fn get_chunks(&self, sid: String, from: i64, max_bytes: usize) -> BoxFuture<'_, Result<ChunkPage>> {
        Box::pin(async move {
            let describe = &self.info.describe;
            let client = self.pool.get().await.map_err(|e| pool_error(describe, e))?;
            // Chunks are at most a few hundred KiB: 64 rows bound one answer; the 65th only
            // tells whether more follow.
            let rows = client
                .query("SELECT seq, data FROM recording_chunks WHERE sid = $1 AND seq >= $2 ORDER BY seq LIMIT 65", &[&sid, &from])
                .await
                .map_err(|e| db_error(describe, &e))?;
            let mut page = super::page_chunks(rows.iter().take(64).map(|r| Ok::<_, Error>((r.get(0), r.get(1)))), max_bytes)?;
            page.more |= rows.len() > page.chunks.len();
            Ok(page)
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.closed.store(true, Ordering::SeqCst);
            self.stop_feed.trigger();
            self.pool.close();
        })
    }
}

/// Appends an audit event: at least once, and exactly once in the table (its `uid` is the
/// key; a retry after a lost answer inserts nothing).
pub(crate) async fn audit_append(pool: &Pool, describe: &str, json: String) -> Result<i64> {
    let uid = serde_json::from_str::<serde_json::Value>(&json).ok().and_then(|v| v["uid"].as_str().map(str::to_string));
    let mut last = Error::connection_problem("not tried");
    for attempt in 0..3 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
        }
        let client = match pool.get().await {
            Ok(c) => c,
            Err(e) => {
                last = pool_error(describe, e);
                continue;
            }
        };
        let r = client
            .query_opt(
                "WITH ins AS (INSERT INTO audit (event_id, json) VALUES ($1, $2) ON CONFLICT (event_id) DO NOTHING RETURNING id) \
                 SELECT id FROM ins UNION ALL SELECT id FROM audit WHERE event_id = $1 LIMIT 1",
                &[&uid, &json],
            )
            .await;
        match r {
            Ok(row) => return Ok(row.map(|r| r.get(0)).unwrap_or(0)),
            Err(e) => last = db_error(describe, &e),
        }
    }
    Err(last)
}

/// The newest `limit` audit events, oldest first.
pub(crate) async fn audit_list(pool: &Pool, describe: &str, limit: usize) -> Result<Vec<AuditRecord>> {
    let client = pool.get().await.map_err(|e| pool_error(describe, e))?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = client
        .query("SELECT id, json FROM (SELECT id, json FROM audit ORDER BY id DESC LIMIT $1) t ORDER BY id", &[&limit])
        .await
        .map_err(|e| db_error(describe, &e))?;
    Ok(rows.into_iter().map(|r| AuditRecord { id: r.get(0), json: r.get(1) }).collect())
}

/// Keeps the change feed running until `stop`: one decoding session at a time, recreated with
/// backoff (the first retry soon, then up to 5 s, jittered) when it fails.
async fn run_feed(info: ConnInfo, feed: Arc<Feed>, mut stop: Shutdown) {
    let mut failures: u32 = 0;
    loop {
        let result = feed_session(&info, &feed, &mut stop).await;
        feed.down();
        if stop.is_triggered() {
            return;
        }
        failures = failures.saturating_add(1);
        match result {
            Ok(()) => {}
            Err(e) if failures <= 2 || failures.is_multiple_of(20) => {
                tracing::warn!(database = %info.describe, attempt = failures, error = %e, "the change feed stopped; restarting it")
            }
            Err(e) => tracing::debug!(database = %info.describe, attempt = failures, error = %e, "the change feed stopped; restarting it"),
        }
        let base = Duration::from_millis(250 * u64::from(failures.min(20)));
        let jitter: f64 = rand::rng().random_range(0.5..1.0);
        tokio::select! {
            _ = stop.wait() => return,
            _ = tokio::time::sleep(base.min(Duration::from_secs(5)).mul_f64(jitter)) => {}
        }
    }
}

/// One decoding session: a temporary slot on a connection of its own, polled until an error
/// or `stop`. Changes are published at each commit, in commit order.
async fn feed_session(info: &ConnInfo, feed: &Feed, stop: &mut Shutdown) -> Result<()> {
    let client = connect(info).await?;
    let err = |e: tokio_postgres::Error| db_error(&info.describe, &e);
    // Every poll logs "starting logical decoding" at LOG level; keep the server log readable
    // (allowed to superusers only, so a refusal is fine).
    let _ = client.batch_execute("SET log_min_messages TO fatal").await;
    let slot = format!("teleport_{}", shared::certs::random_hex(6));
    let created = tokio::time::timeout(
        Duration::from_secs(30),
        client.query_one("SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput', true)", &[&slot]),
    )
    .await
    .map_err(|_| Error::connection_problem("creating the replication slot took over 30 s (a long-running transaction holds it up)"))?;
    if let Err(e) = created {
        return Err(match e.code() {
            Some(c) if *c == SqlState::CONFIGURATION_LIMIT_EXCEEDED => Error::bad_parameter(format!(
                "PostgreSQL at {} has no free replication slot: raise max_replication_slots (one per teleport process, plus two) and restart it",
                info.describe
            )),
            Some(c) if *c == SqlState::INSUFFICIENT_PRIVILEGE => Error::bad_parameter(format!(
                "the database user cannot create a replication slot at {}: ALTER ROLE <user> WITH REPLICATION",
                info.describe
            )),
            _ => err(e),
        });
    }
    let poll = client
        .prepare("SELECT data FROM pg_logical_slot_get_binary_changes($1, NULL, $2, 'proto_version', '1', 'publication_names', 'kv_pub')")
        .await
        .map_err(err)?;
    feed.up();
    tracing::debug!(database = %info.describe, slot = %slot, "change feed running");
    let mut decoder = Decoder::new();
    let mut pending: Vec<Event> = Vec::new();
    loop {
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&slot, &BATCH];
        let rows = tokio::select! {
            _ = stop.wait() => return Ok(()),
            r = tokio::time::timeout(Duration::from_secs(15), client.query(&poll, &params)) => match r {
                Err(_) => return Err(Error::connection_problem("polling the change feed timed out")),
                Ok(r) => r.map_err(err)?,
            },
        };
        let full = rows.len() >= usize::try_from(BATCH).unwrap_or(usize::MAX);
        for row in rows {
            let data: Vec<u8> = row.get(0);
            match decoder.decode(&data).map_err(|e| Error::internal(e.to_string()))? {
                Message::Upsert { key, revision } => pending.push(Event { kind: EventKind::Put, key, revision }),
                Message::Delete { key, revision } => pending.push(Event { kind: EventKind::Delete, key, revision }),
                Message::Commit => feed.publish(pending.drain(..)),
                Message::Begin | Message::Relation | Message::Other(_) => {}
            }
        }
        if !full {
            tokio::select! {
                _ = stop.wait() => return Ok(()),
                _ = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

/// Audit events in a PostgreSQL database of their own (`audit_events_uri`): every process of
/// the cluster writes to one table, each event once (keyed by its `uid`).
pub struct PostgresAudit {
    pool: Pool,
    describe: String,
}

impl PostgresAudit {
    /// Connects (creating the database and its table if needed).
    pub async fn open(info: ConnInfo) -> Result<PostgresAudit> {
        let client = connect(&info).await?;
        let err = |e: tokio_postgres::Error| db_error(&info.describe, &e);
        client.batch_execute("SELECT pg_advisory_lock(7465)").await.map_err(err)?;
        let made = client
            .batch_execute("CREATE TABLE IF NOT EXISTS audit (id bigserial PRIMARY KEY, event_id text UNIQUE, json text NOT NULL)")
            .await
            .map_err(err);
        let _ = client.batch_execute("SELECT pg_advisory_unlock(7465)").await;
        made?;
        let manager = Manager::from_config(info.config.clone(), info.tls()?, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(info.pool_max.min(4))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| Error::internal(format!("database pool: {e}")))?;
        Ok(PostgresAudit { pool, describe: info.describe })
    }
}

impl super::audit::AuditStore for PostgresAudit {
    fn append(&self, json: String) -> BoxFuture<'_, Result<i64>> {
        Box::pin(async move { audit_append(&self.pool, &self.describe, json).await })
    }
    fn list(&self, limit: usize) -> BoxFuture<'_, Result<Vec<AuditRecord>>> {
        Box::pin(async move { audit_list(&self.pool, &self.describe, limit).await })
    }
}
