//! Issue 7, durability: `kill -9` of the daemon at a random moment in a stream of `tctl`
//! changes. After every crash the SQLite file opens and passes its integrity check, every change
//! `tctl` reported as done is there, and no multi-key change is half there.
//!
//! CI runs `TP_DURABILITY_ROUNDS` (default 3) rounds of up to `TP_DURABILITY_OPS` (default 150)
//! operations; `scripts/long-tests.sh` runs the 20 × 1,000.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use e2e::{Cluster, ClusterOpts, wait_for};

/// What a name should be after the crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Present,
    Absent,
    /// The operation was in flight when the daemon died: either is fine, half is not.
    Either,
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn random_below(n: usize) -> usize {
    let b = shared::certs::random_bytes(4);
    (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize) % n.max(1)
}

/// The model: `role/<name>` and `user/<name>` to what must be true.
type Model = BTreeMap<String, Expect>;

fn pick(model: &Model, prefix: &str) -> Option<String> {
    let present: Vec<&String> = model.iter().filter(|(k, v)| k.starts_with(prefix) && **v == Expect::Present).map(|(k, _)| k).collect();
    (!present.is_empty()).then(|| present[random_below(present.len())].clone())
}

/// Runs up to `ops` operations against `c`, recording each outcome in `model`, until one fails
/// after `killed` was set. A failure before that fails the test.
fn drive(c: &Cluster, round: usize, ops: usize, model: &Mutex<Model>, done: &AtomicUsize, killed: &AtomicBool) {
    for i in 0..ops {
        let dice = random_below(100);
        let snapshot = model.lock().unwrap().clone();
        let (key, after, out) = if dice < 40 {
            let name = format!("r{round}-{i}");
            let yaml = format!("kind: role\nversion: v5\nmetadata:\n  name: {name}\nspec:\n  allow:\n    logins: [op{i}]\n");
            (format!("role/{name}"), Expect::Present, c.create(&format!("{name}.yaml"), &yaml))
        } else if dice < 55
            && let Some(key) = pick(&snapshot, "role/")
        {
            let out = c.tctl(&["rm", &key]);
            (key, Expect::Absent, out)
        } else if dice < 85 {
            let name = format!("u{round}-{i}");
            (format!("user/{name}"), Expect::Present, c.tctl(&["users", "add", &name, "--roles=access", "--logins=op"]))
        } else if let Some(key) = pick(&snapshot, "user/") {
            let out = c.tctl(&["users", "rm", key.trim_start_matches("user/")]);
            (key, Expect::Absent, out)
        } else {
            continue;
        };
        if out.code == 0 {
            model.lock().unwrap().insert(key, after);
            done.fetch_add(1, Ordering::SeqCst);
            continue;
        }
        assert!(killed.load(Ordering::SeqCst), "{key}: failed while the daemon was up:\n{}{}", out.stdout, out.stderr);
        model.lock().unwrap().insert(key, Expect::Either);
        return;
    }
}

/// Opens the database the daemon left behind, as SQLite, with the daemon dead: it must pass
/// `PRAGMA integrity_check`, every value must be whole JSON, and every user must still have the
/// invite token created in the same transaction. Returns the user and role names present.
fn check_database(db: &std::path::Path) -> (Vec<String>, Vec<String>) {
    let conn = rusqlite::Connection::open(db).unwrap_or_else(|e| panic!("{} does not open: {e}", db.display()));
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("integrity_check");
    assert_eq!(check, "ok", "integrity check of {}", db.display());
    let mut stmt = conn.prepare("SELECT key, value FROM kv").expect("select");
    let rows: Vec<(String, Vec<u8>)> =
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).expect("query").collect::<rusqlite::Result<_>>().expect("rows");
    check_rows(&rows)
}

/// The same checks on the PostgreSQL database (live rows only, as the daemon sees them).
fn check_postgres(pg: &e2e::postgres::PgServer, db: &str) -> (Vec<String>, Vec<String>) {
    let text = pg.psql(
        db,
        "SELECT key || E'\\t' || convert_from(value, 'UTF8') FROM kv WHERE expires IS NULL OR expires > extract(epoch from now())::bigint",
    );
    let rows: Vec<(String, Vec<u8>)> =
        text.lines().filter_map(|l| l.split_once('\t')).map(|(k, v)| (k.to_string(), v.as_bytes().to_vec())).collect();
    check_rows(&rows)
}

fn check_rows(rows: &[(String, Vec<u8>)]) -> (Vec<String>, Vec<String>) {
    let mut users = Vec::new();
    let mut roles = Vec::new();
    let mut invited = Vec::new();
    for (key, value) in rows {
        if key == "cluster/name" {
            assert!(!value.is_empty(), "cluster name is empty");
            continue;
        }
        let v: serde_json::Value = serde_json::from_slice(value).unwrap_or_else(|e| panic!("{key}: value is not whole JSON ({e})"));
        if let Some(name) = key.strip_prefix("users/") {
            users.push(name.to_string());
        } else if let Some(name) = key.strip_prefix("roles/") {
            roles.push(name.to_string());
        } else if key.starts_with("usertokens/") {
            invited.push(v["user"].as_str().unwrap_or_default().to_string());
        }
    }
    users.sort();
    roles.sort();
    for u in &users {
        assert!(invited.contains(u), "user {u} exists without the invite created in the same write: half-applied");
    }
    (users, roles)
}

#[test]
fn kill_9_during_a_stream_of_changes_loses_nothing_acknowledged() {
    let mut o = ClusterOpts::new("durable.example.com");
    o.node = false;
    let c = Cluster::start(o);
    let db = c.data_dir().join("backend").join("sqlite.db");
    rounds_of_kills(c, || check_database(&db));
}

/// The same model test with the state in PostgreSQL (the daemon is killed, not the database).
#[test]
fn kill_9_during_a_stream_of_changes_loses_nothing_acknowledged_on_postgres() {
    let pg = e2e::postgres::PgServer::start();
    let c = Cluster::start(e2e::ha_opts("durable-pg.example.com", "durable-pg", &pg.url("durable")));
    rounds_of_kills(c, || check_postgres(&pg, "durable"));
}

/// Rounds of: a stream of changes, `kill -9` at a random moment, `check` the state the dead
/// daemon left, restart, compare what it serves with the model.
#[allow(clippy::print_stderr)] // progress of a long test, as the tests themselves print it
fn rounds_of_kills(mut c: Cluster, check: impl Fn() -> (Vec<String>, Vec<String>)) {
    let rounds = env_usize("TP_DURABILITY_ROUNDS", 3);
    let ops = env_usize("TP_DURABILITY_OPS", 150);
    let model = Arc::new(Mutex::new(Model::new()));
    let mut total_acked = 0;
    for round in 0..rounds {
        let done = AtomicUsize::new(0);
        let killed = AtomicBool::new(false);
        // Kill after a random number of acknowledged operations, plus up to 40 ms, so that the
        // kill lands at any point of an operation: before, during or after its write.
        let kill_after = 1 + random_below(ops);
        let jitter = Duration::from_millis(random_below(40) as u64);
        std::thread::scope(|s| {
            let driver = s.spawn(|| drive(&c, round, ops, &model, &done, &killed));
            wait_for("operations before the kill", Duration::from_secs(600), || {
                (done.load(Ordering::SeqCst) >= kill_after || driver.is_finished()).then_some(())
            });
            std::thread::sleep(jitter);
            killed.store(true, Ordering::SeqCst);
            let pid = nix::unistd::Pid::from_raw(c.pid().expect("running") as i32);
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).expect("kill -9");
            driver.join().expect("driver");
        });
        c.kill(); // reaps the killed process
        total_acked += done.load(Ordering::SeqCst);

        let (users, roles) = check();
        c.start_again();
        let listed = |kind: &str| -> Vec<String> {
            c.tctl(&["get", kind, "--format=json"])
                .json()
                .as_array()
                .expect("array")
                .iter()
                .map(|r| r["metadata"]["name"].as_str().unwrap_or_default().to_string())
                .collect()
        };
        let (mut live_users, mut live_roles) = (listed("users"), listed("roles"));
        live_users.sort();
        live_roles.sort();
        assert_eq!(live_users, users, "the daemon serves what the database holds");
        assert_eq!(live_roles, roles);
        let mut m = model.lock().unwrap();
        for (key, expect) in m.iter_mut() {
            let (kind, name) = key.split_once('/').expect("kind/name");
            let present = if kind == "role" { roles.iter().any(|r| r == name) } else { users.iter().any(|u| u == name) };
            match expect {
                Expect::Present => assert!(present, "round {round}: {key} was acknowledged but is gone"),
                Expect::Absent => assert!(!present, "round {round}: {key} was removed (acknowledged) but is back"),
                Expect::Either => *expect = if present { Expect::Present } else { Expect::Absent },
            }
        }
        eprintln!("round {round}: killed after {} acknowledged operations; {} names checked", done.load(Ordering::SeqCst), m.len());
    }
    assert!(total_acked >= rounds, "every round acknowledged something");
}
