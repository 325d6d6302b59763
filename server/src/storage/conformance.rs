//! One conformance suite, run against every backend: the same calls must give the same results.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use shared::error::Kind;
use shared::timefmt::{Clock, SharedClock};
use time::OffsetDateTime;

use super::memory::MemoryBackend;
use super::sqlite::SqliteBackend;
use super::{Backend, BackendExt, EventKind, Op};

/// A clock tests move by hand.
#[derive(Debug)]
pub struct TestClock(AtomicI64);

impl TestClock {
    fn new() -> Arc<TestClock> {
        Arc::new(TestClock(AtomicI64::new(1_700_000_000)))
    }
    fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> OffsetDateTime {
        shared::timefmt::from_unix(self.0.load(Ordering::SeqCst))
    }
}

async fn suite(b: &dyn Backend, clock: &TestClock) {
    // put / get / list
    let r1 = b.put("roles/a", b"1".to_vec(), None).await.unwrap_or_default();
    assert!(r1 > 0);
    let _ = b.put("roles/b", b"2".to_vec(), None).await;
    let _ = b.put("rolesx/c", b"3".to_vec(), None).await;
    let got = b.get("roles/a").await.ok().flatten();
    assert_eq!(got.as_ref().map(|i| i.value.clone()), Some(b"1".to_vec()));
    assert_eq!(got.map(|i| i.revision), Some(r1));
    let listed = b.list("roles/").await.unwrap_or_default();
    assert_eq!(listed.iter().map(|i| i.key.as_str()).collect::<Vec<_>>(), vec!["roles/a", "roles/b"]);
    assert!(b.get("roles/zzz").await.ok().flatten().is_none());

    // create conflicts
    let e = b.create("roles/a", b"x".to_vec(), None).await.err().map(|e| e.kind);
    assert_eq!(e, Some(Kind::AlreadyExists));

    // revisions grow; compare-and-swap
    let cur = b.get("roles/a").await.ok().flatten().map(|i| i.revision).unwrap_or_default();
    let r2 = b.apply(vec![Op::CompareAndSwap { key: "roles/a".into(), value: b"11".to_vec(), expires: None, expected: cur }]).await;
    let r2 = r2.unwrap_or_default();
    assert!(r2 > cur);
    let stale = b.apply(vec![Op::CompareAndSwap { key: "roles/a".into(), value: b"12".to_vec(), expires: None, expected: cur }]).await;
    assert_eq!(stale.err().map(|e| e.kind), Some(Kind::CompareFailed));
    assert_eq!(b.get("roles/a").await.ok().flatten().map(|i| i.value), Some(b"11".to_vec()));
    let missing = b.apply(vec![Op::CompareAndSwap { key: "roles/none".into(), value: vec![], expires: None, expected: 1 }]).await;
    assert_eq!(missing.err().map(|e| e.kind), Some(Kind::NotFound));

    // update requires existence; delete
    let e = b.apply(vec![Op::Update { key: "roles/none".into(), value: vec![], expires: None }]).await.err().map(|e| e.kind);
    assert_eq!(e, Some(Kind::NotFound));
    assert!(b.delete("roles/b").await.is_ok());
    assert_eq!(b.delete("roles/b").await.err().map(|e| e.kind), Some(Kind::NotFound));
    assert!(b.apply(vec![Op::DeleteIfExists { key: "roles/b".into() }]).await.is_ok());

    // batches are atomic: a failing op leaves nothing applied
    let e = b
        .apply(vec![
            Op::Put { key: "batch/1".into(), value: b"x".to_vec(), expires: None },
            Op::Create { key: "roles/a".into(), value: b"dup".to_vec(), expires: None },
        ])
        .await;
    assert_eq!(e.err().map(|e| e.kind), Some(Kind::AlreadyExists));
    assert!(b.get("batch/1").await.ok().flatten().is_none());
    // later ops see earlier ones
    assert!(
        b.apply(vec![
            Op::Create { key: "batch/2".into(), value: b"x".to_vec(), expires: None },
            Op::Exists { key: "batch/2".into() },
            Op::Delete { key: "batch/2".into() },
        ])
        .await
        .is_ok()
    );
    assert!(b.get("batch/2").await.ok().flatten().is_none());

    // expiry: invisible at once, swept with a delete event
    let mut events = b.watch();
    let now = clock.now().unix_timestamp();
    let _ = b.put("tokens/t", b"t".to_vec(), Some(now + 10)).await;
    assert!(b.get("tokens/t").await.ok().flatten().is_some());
    clock.advance(11);
    assert!(b.get("tokens/t").await.ok().flatten().is_none());
    assert!(b.list("tokens/").await.unwrap_or_default().is_empty());
    // an expired key can be created again
    assert!(b.create("tokens/t", b"t2".to_vec(), Some(now + 100)).await.is_ok());
    let _ = b.put("tokens/u", b"u".to_vec(), Some(now + 5)).await;
    assert_eq!(b.sweep().await.unwrap_or_default(), 1);

    // watch saw the put, the create and the sweep
    let mut seen = Vec::new();
    while let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(200), events.recv()).await {
        seen.push((e.kind, e.key));
    }
    assert!(seen.contains(&(EventKind::Put, "tokens/t".to_string())), "{seen:?}");
    assert!(seen.contains(&(EventKind::Delete, "tokens/u".to_string())), "{seen:?}");

    // audit
    for i in 0..5 {
        let _ = b.append_audit(format!("{{\"n\":{i}}}")).await;
    }
    let last = b.list_audit(2).await.unwrap_or_default();
    assert_eq!(last.iter().map(|r| r.json.as_str()).collect::<Vec<_>>(), vec!["{\"n\":3}", "{\"n\":4}"]);

    // closed means closed
    b.close().await;
    assert!(b.get("roles/a").await.is_err());
}

#[tokio::test]
async fn memory_backend_conforms() {
    let clock = TestClock::new();
    let b = MemoryBackend::new(clock.clone() as SharedClock);
    suite(&b, &clock).await;
}

#[tokio::test]
async fn sqlite_backend_conforms() {
    let dir = std::env::temp_dir().join(format!("tp-sqlite-conf-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::create_dir_all(&dir);
    let clock = TestClock::new();
    let b = SqliteBackend::open(&dir.join("db.sqlite"), clock.clone() as SharedClock);
    let b = match b {
        Ok(b) => b,
        Err(e) => panic!("open: {e}"),
    };
    suite(&b, &clock).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn sqlite_survives_reopen_and_keeps_revisions_growing() {
    let dir = std::env::temp_dir().join(format!("tp-sqlite-reopen-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::create_dir_all(&dir);
    let clock = TestClock::new();
    let path = dir.join("db.sqlite");
    let first = {
        let b = SqliteBackend::open(&path, clock.clone() as SharedClock).map_err(|e| e.to_string());
        let b = b.unwrap_or_else(|e| panic!("{e}"));
        let r = b.put("k/a", b"v".to_vec(), None).await.unwrap_or_default();
        b.close().await;
        r
    };
    let b = SqliteBackend::open(&path, clock.clone() as SharedClock).map_err(|e| e.to_string()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(b.get("k/a").await.ok().flatten().map(|i| i.value), Some(b"v".to_vec()));
    // The test clock did not move: the revision must still grow past the stored one.
    let second = b.put("k/a", b"w".to_vec(), None).await.unwrap_or_default();
    assert!(second > first);
    b.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}
