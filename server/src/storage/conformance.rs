//! One conformance suite, run against every backend: the same calls must give the same results.
//! Memory and SQLite run it here; PostgreSQL (a real server) runs it from the end-to-end tests,
//! with the checks only a shared database can show (two handles, concurrent writers).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use shared::error::Kind;

use super::{Backend, Event, EventKind, Op, Watched, Watcher};

fn put(key: &str, value: &[u8], expires: Option<i64>) -> Vec<Op> {
    vec![Op::Put { key: key.into(), value: value.to_vec(), expires }]
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// The next event of `w` (skipping resyncs), within `limit`.
pub async fn next_event(w: &mut Watcher, limit: Duration) -> Option<Event> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, w.next()).await {
            Ok(Watched::Event(e)) => return Some(e),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

/// Waits for the event on `key` of `kind`, skipping others.
pub async fn wait_event(w: &mut Watcher, kind: EventKind, key: &str, limit: Duration) -> Event {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match next_event(w, left).await {
            Some(e) if e.kind == kind && e.key == key => return e,
            Some(_) => continue,
            None => panic!("no {kind:?} event for {key} within {limit:?}"),
        }
    }
}

/// The suite. `prefix` keeps runs on a shared database apart.
pub async fn suite(b: &dyn Backend, prefix: &str) {
    let k = |s: &str| format!("{prefix}{s}");
    let mut w = b.watch();
    assert_eq!(tokio::time::timeout(Duration::from_secs(10), w.next()).await.ok(), Some(Watched::Init), "a watcher starts with Init");

    // put / get / list
    let r1 = b.apply(put(&k("roles/a"), b"1", None)).await.unwrap();
    b.apply(put(&k("roles/b"), b"2", None)).await.unwrap();
    b.apply(put(&k("rolesx/c"), b"3", None)).await.unwrap();
    let got = b.get(&k("roles/a")).await.unwrap().unwrap();
    assert_eq!((got.value.as_slice(), got.revision), (&b"1"[..], r1));
    let listed = b.list(&k("roles/")).await.unwrap();
    assert_eq!(listed.iter().map(|i| i.key.clone()).collect::<Vec<_>>(), vec![k("roles/a"), k("roles/b")]);
    assert!(b.get(&k("roles/zzz")).await.unwrap().is_none());
    let e = wait_event(&mut w, EventKind::Put, &k("roles/a"), Duration::from_secs(5)).await;
    assert_eq!(e.revision, r1, "events carry the revision they committed with");

    // create conflicts
    let e = b.apply(vec![Op::Create { key: k("roles/a"), value: b"x".to_vec(), expires: None }]).await.err().map(|e| e.kind);
    assert_eq!(e, Some(Kind::AlreadyExists));

    // revisions grow per key; compare-and-swap
    let cur = b.get(&k("roles/a")).await.unwrap().unwrap().revision;
    let r2 = b.apply(vec![Op::CompareAndSwap { key: k("roles/a"), value: b"11".to_vec(), expires: None, expected: cur }]).await.unwrap();
    assert!(r2 > cur);
    let stale = b.apply(vec![Op::CompareAndSwap { key: k("roles/a"), value: b"12".to_vec(), expires: None, expected: cur }]).await;
    assert_eq!(stale.err().map(|e| e.kind), Some(Kind::CompareFailed));
    assert_eq!(b.get(&k("roles/a")).await.unwrap().map(|i| i.value), Some(b"11".to_vec()));
    let missing = b.apply(vec![Op::CompareAndSwap { key: k("roles/none"), value: vec![], expires: None, expected: 1 }]).await;
    assert_eq!(missing.err().map(|e| e.kind), Some(Kind::NotFound));

    // update requires existence; delete
    let e = b.apply(vec![Op::Update { key: k("roles/none"), value: vec![], expires: None }]).await.err().map(|e| e.kind);
    assert_eq!(e, Some(Kind::NotFound));
    assert!(b.apply(vec![Op::Delete { key: k("roles/b") }]).await.is_ok());
    assert_eq!(b.apply(vec![Op::Delete { key: k("roles/b") }]).await.err().map(|e| e.kind), Some(Kind::NotFound));
    assert!(b.apply(vec![Op::DeleteIfExists { key: k("roles/b") }]).await.is_ok());
    wait_event(&mut w, EventKind::Delete, &k("roles/b"), Duration::from_secs(5)).await;

    // batches are atomic: a failing op leaves nothing applied
    let e = b
        .apply(vec![
            Op::Put { key: k("batch/1"), value: b"x".to_vec(), expires: None },
            Op::Create { key: k("roles/a"), value: b"dup".to_vec(), expires: None },
        ])
        .await;
    assert_eq!(e.err().map(|e| e.kind), Some(Kind::AlreadyExists));
    assert!(b.get(&k("batch/1")).await.unwrap().is_none());
    // later ops see earlier ones
    b.apply(vec![
        Op::Create { key: k("batch/2"), value: b"x".to_vec(), expires: None },
        Op::Exists { key: k("batch/2") },
        Op::Put { key: k("batch/2"), value: b"y".to_vec(), expires: None },
        Op::Delete { key: k("batch/2") },
    ])
    .await
    .unwrap();
    assert!(b.get(&k("batch/2")).await.unwrap().is_none());

    // expiry by the backend's clock: invisible at once, swept with a delete event
    let now = unix_now();
    b.apply(put(&k("tokens/t"), b"t", Some(now + 2))).await.unwrap();
    b.apply(put(&k("tokens/u"), b"u", Some(now + 2))).await.unwrap();
    assert!(b.get(&k("tokens/t")).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert!(b.get(&k("tokens/t")).await.unwrap().is_none());
    assert!(b.list(&k("tokens/")).await.unwrap().is_empty());
    let e = b.apply(vec![Op::Delete { key: k("tokens/t") }]).await.err().map(|e| e.kind);
    assert_eq!(e, Some(Kind::NotFound), "an expired key is gone for deletes too");
    // an expired key can be created again
    b.apply(vec![Op::Create { key: k("tokens/t"), value: b"t2".to_vec(), expires: Some(unix_now() + 100) }]).await.unwrap();
    assert!(b.sweep().await.unwrap() >= 1);
    wait_event(&mut w, EventKind::Delete, &k("tokens/u"), Duration::from_secs(5)).await;
    assert_eq!(b.get(&k("tokens/t")).await.unwrap().map(|i| i.value), Some(b"t2".to_vec()));

    // audit
    for i in 0..5 {
        b.append_audit(format!("{{\"n\":{i},\"uid\":\"{prefix}{i}\"}}")).await.unwrap();
    }
    let last = b.list_audit(2).await.unwrap();
    assert_eq!(
        last.iter().map(|r| r.json.clone()).collect::<Vec<_>>(),
        vec![format!("{{\"n\":3,\"uid\":\"{prefix}3\"}}"), format!("{{\"n\":4,\"uid\":\"{prefix}4\"}}")]
    );
    // a batch, with single events sent while it is written: all kept, the batch in its order
    let batch: Vec<String> = (5..305).map(|i| format!("{{\"n\":{i},\"uid\":\"{prefix}{i}\"}}")).collect();
    let singles = async {
        for i in 305..310 {
            b.append_audit(format!("{{\"n\":{i},\"uid\":\"{prefix}{i}\"}}")).await.unwrap();
        }
    };
    let (many, ()) = tokio::join!(b.append_audit_many(batch.clone()), singles);
    many.unwrap();
    let all: Vec<String> = b.list_audit(310).await.unwrap().into_iter().map(|r| r.json).collect();
    assert_eq!(all.len(), 310, "every event kept");
    let kept: Vec<&String> = all.iter().filter(|j| batch.contains(j)).collect();
    assert_eq!(kept, batch.iter().collect::<Vec<_>>(), "the batch in its order");

    // recording chunks: in order from `from`, paged by size, a retried chunk replaces itself,
    // and no change feed event
    while next_event(&mut w, Duration::from_millis(300)).await.is_some() {}
    let sid = format!("{prefix}sid");
    for seq in [2i64, 0, 1, 3] {
        b.put_chunk(sid.clone(), seq, vec![seq as u8; 100]).await.unwrap();
    }
    b.put_chunk(sid.clone(), 1, vec![9; 100]).await.unwrap();
    b.put_chunk(format!("{prefix}other"), 0, vec![7; 10]).await.unwrap();
    let all = b.get_chunks(sid.clone(), 0, 1 << 20).await.unwrap();
    assert_eq!(all.chunks.iter().map(|c| c.0).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    assert_eq!(all.chunks[1].1, vec![9; 100]);
    assert!(!all.more, "nothing after the last chunk");
    let page = b.get_chunks(sid.clone(), 1, 250).await.unwrap();
    assert_eq!(page.chunks.iter().map(|c| c.0).collect::<Vec<_>>(), vec![1, 2], "about max_bytes per answer");
    assert!(page.more, "chunk 3 follows");
    let one = b.get_chunks(sid.clone(), 3, 1).await.unwrap();
    assert_eq!((one.chunks.len(), one.more), (1, false), "at least one chunk");
    let none = b.get_chunks(sid, 4, 1 << 20).await.unwrap();
    assert!(none.chunks.is_empty() && !none.more);
    assert!(next_event(&mut w, Duration::from_millis(200)).await.is_none(), "chunks are not in the change feed");
}

/// Closed means closed.
pub async fn closes(b: &dyn Backend) {
    b.close().await;
    assert!(b.get("roles/a").await.is_err());
}

/// Two handles on one database (two processes): what one writes, the other reads and hears.
pub async fn two_handles(a: &dyn Backend, b: &dyn Backend, prefix: &str) {
    let mut wb = b.watch();
    assert_eq!(tokio::time::timeout(Duration::from_secs(10), wb.next()).await.ok(), Some(Watched::Init));
    let key = format!("{prefix}shared/k");
    let rev = a.apply(put(&key, b"from-a", None)).await.unwrap();
    assert_eq!(b.get(&key).await.unwrap().map(|i| (i.value, i.revision)), Some((b"from-a".to_vec(), rev)));
    let e = wait_event(&mut wb, EventKind::Put, &key, Duration::from_secs(5)).await;
    assert_eq!(e.revision, rev);
    let e = b.apply(vec![Op::Create { key: key.clone(), value: vec![], expires: None }]).await.err().map(|e| e.kind);
    assert_eq!(e, Some(Kind::AlreadyExists), "a key one handle created exists for the other");
    a.apply(vec![Op::Delete { key: key.clone() }]).await.unwrap();
    wait_event(&mut wb, EventKind::Delete, &key, Duration::from_secs(5)).await;
}

/// `writers` handles × `tasks` tasks each do `n` compare-and-swap increments of one counter.
/// Returns the final value and how many attempts lost a race.
pub async fn cas_counter(writers: Vec<Arc<dyn Backend>>, tasks: usize, n: usize, key: &str) -> (u64, u64) {
    writers[0].apply(put(key, b"0", None)).await.unwrap();
    let mut handles = Vec::new();
    for b in &writers {
        for _ in 0..tasks {
            let (b, key) = (b.clone(), key.to_string());
            handles.push(tokio::spawn(async move {
                let mut lost = 0u64;
                for _ in 0..n {
                    loop {
                        let cur = b.get(&key).await.unwrap().unwrap();
                        let v: u64 = String::from_utf8_lossy(&cur.value).parse().unwrap();
                        let op = Op::CompareAndSwap {
                            key: key.clone(),
                            value: (v + 1).to_string().into_bytes(),
                            expires: None,
                            expected: cur.revision,
                        };
                        match b.apply(vec![op]).await {
                            Ok(_) => break,
                            Err(e) if e.kind == Kind::CompareFailed => lost += 1,
                            Err(e) => panic!("increment failed: {e}"),
                        }
                    }
                }
                lost
            }));
        }
    }
    let mut lost = 0;
    for h in handles {
        lost += h.await.unwrap();
    }
    let v = writers[0].get(key).await.unwrap().unwrap();
    (String::from_utf8_lossy(&v.value).parse().unwrap(), lost)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::memory::MemoryBackend;
    use crate::storage::sqlite::SqliteBackend;
    use shared::timefmt::system_clock;

    #[tokio::test]
    async fn memory_backend_conforms() {
        let b = MemoryBackend::new(system_clock());
        suite(&b, "").await;
        closes(&b).await;
    }

    #[tokio::test]
    async fn sqlite_backend_conforms() {
        let dir = std::env::temp_dir().join(format!("tp-sqlite-conf-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let b = SqliteBackend::open(&dir.join("db.sqlite"), system_clock()).unwrap();
        suite(&b, "").await;
        closes(&b).await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn sqlite_counters_lose_no_update() {
        let dir = std::env::temp_dir().join(format!("tp-sqlite-cas-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let b: Arc<dyn Backend> = Arc::new(SqliteBackend::open(&dir.join("db.sqlite"), system_clock()).unwrap());
        let (v, _) = cas_counter(vec![b.clone()], 8, 50, "counter").await;
        assert_eq!(v, 400);
        b.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn sqlite_survives_reopen_and_keeps_revisions_growing() {
        let dir = std::env::temp_dir().join(format!("tp-sqlite-reopen-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("db.sqlite");
        let first = {
            let b = SqliteBackend::open(&path, system_clock()).unwrap();
            let r = b.apply(put("k/a", b"v", None)).await.unwrap();
            b.close().await;
            r
        };
        let b = SqliteBackend::open(&path, system_clock()).unwrap();
        assert_eq!(b.get("k/a").await.unwrap().map(|i| i.value), Some(b"v".to_vec()));
        let second = b.apply(put("k/a", b"w", None)).await.unwrap();
        assert!(second > first);
        b.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
