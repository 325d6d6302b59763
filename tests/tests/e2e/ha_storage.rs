//! The PostgreSQL backend against a real server: the conformance suite every backend passes,
//! and what only a database shared by several processes shows (each handle below has its own
//! connection pool and its own change feed, as a process would).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::postgres::PgServer;
use teleport_server::storage::conformance;
use teleport_server::storage::pgconn;
use teleport_server::storage::postgres::PostgresBackend;
use teleport_server::storage::{Backend, EventKind, Op, Watched};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime")
}

async fn open(pg: &PgServer, db: &str) -> Arc<dyn Backend> {
    shared::client::install_crypto_provider();
    let info = pgconn::parse(&pg.url(db), "test").expect("conn string");
    PostgresBackend::open(info).await.expect("open PostgreSQL backend")
}

#[test]
fn postgres_backend_conforms_and_two_handles_share_one_state() {
    let pg = PgServer::start();
    runtime().block_on(async {
        // The database does not exist yet: the backend creates it and its schema.
        let a = open(&pg, "conformance").await;
        conformance::suite(&*a, "").await;
        let b = open(&pg, "conformance").await;
        conformance::two_handles(&*a, &*b, "x/").await;
        conformance::closes(&*b).await;
        conformance::closes(&*a).await;
    });
    assert_eq!(pg.psql("conformance", "SELECT max(version) FROM schema_version").trim(), "1");
}

#[test]
fn concurrent_writers_lose_no_update_and_revisions_stay_unique() {
    let pg = PgServer::start();
    runtime().block_on(async {
        // Two processes' worth of handles start on an empty database at the same moment: the
        // schema is made once.
        let (a, b) = tokio::join!(open(&pg, "cas"), open(&pg, "cas"));
        let t = Instant::now();
        let (value, lost) = conformance::cas_counter(vec![a.clone(), b.clone()], 4, 100, "counter").await;
        assert_eq!(value, 800, "every compare-and-swap increment counted once");
        eprintln!("cas: 2 handles x 4 tasks x 100 increments = {value} in {:?}, {lost} attempts lost a race and retried", t.elapsed());

        // Revisions: unique across writers, growing for each key.
        let mut tasks = Vec::new();
        for (n, h) in [a.clone(), b.clone(), a.clone(), b.clone()].into_iter().enumerate() {
            tasks.push(tokio::spawn(async move {
                let mut revs = Vec::new();
                for i in 0..100 {
                    revs.push(h.apply(vec![Op::Put { key: format!("rev/{n}"), value: vec![i], expires: None }]).await.unwrap());
                }
                revs
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            let revs = t.await.unwrap();
            assert!(revs.windows(2).all(|w| w[0] < w[1]), "a key's revisions grow");
            all.extend(revs);
        }
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "no two writes share a revision");
        a.close().await;
        b.close().await;
    });
}

#[test]
fn batches_stay_whole_under_concurrent_writers_and_every_event_arrives_in_order() {
    let pg = PgServer::start();
    runtime().block_on(async {
        let a = open(&pg, "batches").await;
        let b = open(&pg, "batches").await;
        let mut watch = b.watch();
        assert_eq!(tokio::time::timeout(Duration::from_secs(10), watch.next()).await.ok(), Some(Watched::Init));
        // Writers on both handles write ten keys at a time, all with one value; readers must
        // never see a mix.
        let mut writers = Vec::new();
        for (w, h) in [a.clone(), b.clone(), a.clone()].into_iter().enumerate() {
            writers.push(tokio::spawn(async move {
                for i in 0..60u32 {
                    let v = format!("{w}-{i}").into_bytes();
                    let mut ops: Vec<Op> =
                        (0..10).map(|k| Op::Put { key: format!("batch/{k}"), value: v.clone(), expires: None }).collect();
                    if i % 7 == 0 {
                        ops.push(Op::DeleteIfExists { key: format!("gone/{w}") });
                    } else {
                        ops.push(Op::Put { key: format!("gone/{w}"), value: v.clone(), expires: None });
                    }
                    h.apply(ops).await.unwrap();
                }
            }));
        }
        let reader = {
            let a = a.clone();
            tokio::spawn(async move {
                let mut reads = 0;
                for _ in 0..200 {
                    let items = a.list("batch/").await.unwrap();
                    if !items.is_empty() {
                        assert_eq!(items.len(), 10);
                        assert!(items.iter().all(|i| i.value == items[0].value), "a torn batch: {items:?}");
                        reads += 1;
                    }
                }
                reads
            })
        };
        for w in writers {
            w.await.unwrap();
        }
        let reads = reader.await.unwrap();
        // Replaying the feed of the other handle gives exactly the table.
        let mut replay: BTreeMap<String, i64> = BTreeMap::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        let want: BTreeMap<String, i64> = async {
            let mut m = BTreeMap::new();
            for p in ["batch/", "gone/"] {
                for i in a.list(p).await.unwrap() {
                    m.insert(i.key, i.revision);
                }
            }
            m
        }
        .await;
        let mut last_rev: BTreeMap<String, i64> = BTreeMap::new();
        while replay != want && Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(5), watch.next()).await {
                Ok(Watched::Event(e)) => {
                    if let Some(prev) = last_rev.insert(e.key.clone(), e.revision) {
                        assert!(e.revision >= prev, "events of a key arrive in commit order");
                    }
                    match e.kind {
                        EventKind::Put => replay.insert(e.key, e.revision),
                        EventKind::Delete => replay.remove(&e.key),
                    };
                }
                Ok(other) => panic!("unexpected {other:?}"),
                Err(_) => break,
            }
        }
        assert_eq!(replay, want, "the feed replayed onto nothing equals the table");
        eprintln!("batches: 180 batches of 11 ops from 3 writers, {reads} consistent reads, feed replay exact");
        a.close().await;
        b.close().await;
    });
}

#[test]
fn a_lost_feed_connection_resyncs_every_watcher() {
    let pg = PgServer::start();
    runtime().block_on(async {
        let a = open(&pg, "feedloss").await;
        let mut w = a.watch();
        assert_eq!(tokio::time::timeout(Duration::from_secs(10), w.next()).await.ok(), Some(Watched::Init));
        assert!(a.feed_live());
        let t = Instant::now();
        let killed =
            pg.psql("feedloss", "SELECT count(pg_terminate_backend(active_pid)) FROM pg_replication_slots WHERE active_pid IS NOT NULL");
        assert_eq!(killed.trim(), "1", "one decoding connection");
        let next = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Watched::Resync = w.next().await {
                    return;
                }
            }
        })
        .await;
        assert!(next.is_ok(), "no Resync after the feed was cut");
        assert!(a.feed_live());
        eprintln!("feed loss: watchers resynced {:?} after the decoding connection was killed", t.elapsed());
        // Writes made while the feed was down are in the table, and new ones arrive as events.
        a.apply(vec![Op::Put { key: "after/k".into(), value: b"v".to_vec(), expires: None }]).await.unwrap();
        conformance::wait_event(&mut w, EventKind::Put, "after/k", Duration::from_secs(5)).await;
        a.close().await;
    });
    // The temporary slot went with its connection; the new one with the new connection.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(pg.psql("feedloss", "SELECT count(*) FROM pg_replication_slots").trim(), "0", "no slot is left behind");
}

#[test]
fn a_server_without_logical_decoding_is_refused_with_the_fix() {
    let pg = PgServer::start_with(&["wal_level=replica"]);
    runtime().block_on(async {
        shared::client::install_crypto_provider();
        let info = pgconn::parse(&pg.url("teleport"), "teleport.storage.conn_string").unwrap();
        let e = PostgresBackend::open(info).await.err().expect("refused");
        assert!(e.message.contains("wal_level = replica; the change feed needs wal_level = logical"), "{e}");
        assert!(e.message.contains("restart PostgreSQL"), "{e}");
        // Nobody listens there: the error names the address and what to check.
        let info = pgconn::parse("postgresql://postgres@127.0.0.1:9/teleport?sslmode=disable", "x").unwrap();
        let e = PostgresBackend::open(info).await.err().expect("refused");
        assert!(e.message.starts_with("cannot connect to PostgreSQL at 127.0.0.1:9/teleport"), "{e}");
        assert!(e.message.contains("pg_hba.conf"), "{e}");
    });
}

#[test]
fn tls_to_postgres_is_verified_with_rustls() {
    let (pg, ca) = PgServer::start_tls("db.example.test");
    let base = format!("postgresql://postgres@{}:{}/tlsdb", pg.ip, pg.port);
    runtime().block_on(async {
        shared::client::install_crypto_provider();
        let open_with = |q: String| {
            let url = format!("{base}?{q}");
            async move {
                let info = pgconn::parse(&url, "teleport.storage.conn_string").unwrap();
                PostgresBackend::open(info).await
            }
        };
        // Connected by address, the certificate is for another name: verify-ca accepts the chain.
        let b = open_with(format!("sslmode=verify-ca&sslrootcert={}", ca.display())).await.expect("verify-ca");
        b.apply(vec![Op::Put { key: "tls/k".into(), value: b"v".to_vec(), expires: None }]).await.unwrap();
        b.close().await;
        // verify-full checks the name too.
        let e = open_with(format!("sslmode=verify-full&sslrootcert={}", ca.display())).await.err().expect("name mismatch refused");
        assert!(e.message.contains("cannot connect to PostgreSQL"), "{e}");
        // Another CA is refused.
        let other = std::env::temp_dir().join(format!("tp-other-ca-{}.pem", std::process::id()));
        let key = shared::certs::new_tls_key().unwrap();
        std::fs::write(
            &other,
            shared::certs::new_ca_cert(&key, "x", "y", time::OffsetDateTime::now_utc(), Duration::from_secs(60)).unwrap(),
        )
        .unwrap();
        let e = open_with(format!("sslmode=verify-ca&sslrootcert={}", other.display())).await.err().expect("foreign CA refused");
        assert!(e.message.contains("cannot connect to PostgreSQL"), "{e}");
        let _ = std::fs::remove_file(other);
    });
    assert!(pg.psql("tlsdb", "SELECT count(*) FROM kv").trim() == "1");
}
