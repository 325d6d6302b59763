//! High availability, part 1: several `teleport` processes of one cluster sharing a real
//! PostgreSQL database. What one process changes, every other serves; losing a process or the
//! database's own restart loses nothing acknowledged.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use e2e::postgres::PgServer;
use e2e::*;

fn role_yaml(name: &str) -> String {
    format!("kind: role\nversion: v5\nmetadata:\n  name: {name}\nspec:\n  allow:\n    logins: [{name}]\n")
}

fn names(out: &Out) -> Vec<String> {
    let mut v: Vec<String> = out
        .json()
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| r["metadata"]["name"].as_str().unwrap_or_default().to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn two_processes_are_one_cluster() {
    ensure_unix_user("visitor");
    let pg = PgServer::start();
    let url = pg.url("ha_one");
    // Both start at the same moment on an empty database.
    let procs = start_together(vec![ha_opts("ha-one.example.com", "root-a", &url), ha_opts("ha-one.example.com", "root-b", &url)]);
    let (a, b) = (&procs[0], &procs[1]);
    assert_eq!(
        pg.psql("ha_one", "SELECT count(*) FROM kv WHERE key LIKE 'authorities/%'").trim(),
        "4",
        "exactly one user CA, one host CA, one db CA and one jwt CA"
    );
    let cas_a = a.tctl(&["get", "cas", "--format=json"]).json();
    let cas_b = b.tctl(&["get", "cas", "--format=json"]).json();
    assert_eq!(cas_a, cas_b, "both processes serve the same CAs");
    assert_eq!(std::fs::read(a.web_ca()).unwrap(), std::fs::read(b.web_ca()).unwrap(), "one web CA for every process");

    // A change through one process is visible through the other within a second.
    a.create("r1.yaml", &role_yaml("seen-by-b")).ok("create through a");
    let t = Instant::now();
    wait_for("the role through b", Duration::from_secs(5), || b.tctl(&["get", "role/seen-by-b"]).code.eq(&0).then_some(()));
    let visible = t.elapsed();
    assert!(visible < Duration::from_secs(1), "visible after {visible:?}");
    let token = a.tctl(&["tokens", "add", "--type=node", "--ttl=5m", "--format=text"]).ok("token").trim().to_string();
    assert!(b.tctl(&["tokens", "ls"]).ok("tokens through b").contains(&token));

    // A user made through one process signs in through either; the invite works through b.
    let out = a.tctl(&["users", "add", "alice", "--roles=access", "--logins=visitor"]);
    let url_line = out.ok("users add").lines().find(|l| l.starts_with("https://")).expect("invite").trim().to_string();
    let invite = url_line.rsplit('/').next().expect("token");
    let resp = b.https_put("/webapi/users/password/token", &serde_json::json!({"token": invite, "password": PASSWORD}));
    assert_eq!(resp["username"], "alice", "{resp}");
    let mut via_b = Tsh::new("ha-one-b");
    via_b.login(b, "alice", PASSWORD).ok("login through b");
    let mut via_a = Tsh::new("ha-one-a");
    via_a.login(a, "alice", PASSWORD).ok("login through a");
    // One SSL_CERT_FILE (a's copy of the web CA) trusts b too.
    let mut cross = Tsh::new("ha-one-x");
    cross.env.push(("SSL_CERT_FILE".into(), a.web_ca().display().to_string()));
    cross.run_stdin(&["login", &format!("--proxy={}", b.web), "--user=alice"], Some(&format!("{PASSWORD}\n"))).ok("a's CA file for b");

    // A node that joins through a is reachable through b.
    let node = NodeProc::join(a, "ha-node", false, "env=ha");
    b.wait_node("ha-node");
    let out = via_b.run(&["ssh", "visitor@ha-node", "echo through-b"]);
    assert_eq!(out.ok("ssh through b to a node that joined a"), "through-b\n");
    drop(node);
    eprintln!("two processes: a role created through one was visible through the other after {visible:?}");
}

#[test]
fn killing_one_process_loses_nothing_and_the_other_serves_on() {
    let pg = PgServer::start();
    let url = pg.url("ha_kill");
    let mut procs = start_together(vec![ha_opts("ha-kill.example.com", "root-a", &url), ha_opts("ha-kill.example.com", "root-b", &url)]);
    procs[1].add_user("bob", "access", "visitor", PASSWORD);
    let (first, rest) = procs.split_at_mut(1);
    let (a, b) = (&mut first[0], &rest[0]);
    let stop = AtomicBool::new(false);
    let (creates, logins, failures) = (AtomicUsize::new(0), AtomicUsize::new(0), Arc::new(std::sync::Mutex::new(Vec::new())));
    std::thread::scope(|s| {
        let worker = s.spawn(|| {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let out = b.create(&format!("k{i}.yaml"), &role_yaml(&format!("kill-{i}")));
                if out.code == 0 {
                    creates.fetch_add(1, Ordering::SeqCst);
                } else {
                    failures.lock().unwrap().push(format!("create kill-{i}: {}", out.stderr));
                }
                let mut t = Tsh::new(&format!("ha-kill-{i}"));
                let out = t.login(b, "bob", PASSWORD);
                if out.code == 0 {
                    logins.fetch_add(1, Ordering::SeqCst);
                } else {
                    failures.lock().unwrap().push(format!("login {i}: {}", out.stderr));
                }
                i += 1;
                // Under the login rate limit (a burst of 30, then 5 a second per address):
                // the test is about losing nothing, not about being refused as a guesser.
                std::thread::sleep(Duration::from_millis(250));
            }
        });
        std::thread::sleep(Duration::from_secs(2));
        let pid = nix::unistd::Pid::from_raw(a.pid().expect("running") as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).expect("kill -9 root-a");
        std::thread::sleep(Duration::from_secs(4));
        stop.store(true, Ordering::SeqCst);
        worker.join().expect("worker");
    });
    a.kill();
    let failures = failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "failures while root-a died: {failures:?}");
    let n = creates.load(Ordering::SeqCst);
    assert!(n >= 3 && logins.load(Ordering::SeqCst) >= 3, "the loop ran: {n} creates");
    // Every acknowledged create is there, through the survivor and after the dead one restarts.
    let listed = names(&b.tctl(&["get", "roles", "--format=json"]));
    for i in 0..n {
        assert!(listed.contains(&format!("kill-{i}")), "kill-{i} acknowledged but missing");
    }
    a.start_again();
    assert_eq!(names(&a.tctl(&["get", "roles", "--format=json"])), listed, "the restarted process serves the same state");
    eprintln!("kill -9 of root-a: {n} creates and {} logins through root-b, zero failures", logins.load(Ordering::SeqCst));
}

#[test]
fn a_postgres_crash_loses_no_acknowledged_write_and_everyone_recovers() {
    ensure_unix_user("visitor");
    let mut pg = PgServer::start();
    let url = pg.url("ha_crash");
    let mut oa = ha_opts("ha-crash.example.com", "root-a", &url);
    oa.node = true;
    oa.node_name = Some("crash-node".into());
    oa.diag = true;
    let mut ob = ha_opts("ha-crash.example.com", "root-b", &url);
    ob.diag = true;
    let procs = start_together(vec![oa, ob]);
    let (a, b) = (&procs[0], &procs[1]);
    a.add_user("carol", "access", "visitor", PASSWORD);
    let mut tsh = Tsh::new("ha-crash");
    tsh.login(b, "carol", PASSWORD).ok("login");
    let stop = AtomicBool::new(false);
    let acked = std::sync::Mutex::new(Vec::new());
    let ready = |c: &Cluster| {
        let url = format!("http://{}:3000/readyz", c.ip);
        run(std::path::Path::new("curl"), &["-s", "-o", "/dev/null", "-w", "%{http_code}", &url], &[], None, Duration::from_secs(10)).stdout
    };
    let back = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                if a.create(&format!("c{i}.yaml"), &role_yaml(&format!("crash-{i}"))).code == 0 {
                    acked.lock().unwrap().push(i);
                }
                i += 1;
            }
        });
        std::thread::sleep(Duration::from_millis(1500));
        pg.crash();
        std::thread::sleep(Duration::from_secs(2));
        // While the database is down: a clear, retryable error, and /readyz says so.
        let out = b.tctl(&["get", "roles"]);
        assert_ne!(out.code, 0);
        assert!(out.stderr.contains("is unreachable"), "{}", out.stderr);
        assert_eq!(ready(b), "503", "readyz while the feed is down");
        pg.start_again();
        let t = Instant::now();
        wait_for("both processes to serve again", Duration::from_secs(20), || {
            (a.tctl(&["get", "roles"]).code == 0 && b.tctl(&["get", "roles"]).code == 0 && ready(a) == "200" && ready(b) == "200")
                .then_some(())
        });
        let back = t.elapsed();
        std::thread::sleep(Duration::from_secs(1));
        stop.store(true, Ordering::SeqCst);
        writer.join().expect("writer");
        back
    });
    assert!(back < Duration::from_secs(5), "serving again {back:?} after PostgreSQL came back");
    let listed = names(&b.tctl(&["get", "roles", "--format=json"]));
    let acked = acked.lock().unwrap().clone();
    for i in &acked {
        assert!(listed.contains(&format!("crash-{i}")), "crash-{i} acknowledged before the crash but missing after");
    }
    // What each process derives from the feed was rebuilt: a lock made through b after the
    // crash reaches a's node at once.
    let live = tsh.command(&["ssh", "visitor@crash-node", "sleep 30"]).spawn().expect("session");
    std::thread::sleep(Duration::from_millis(1500));
    b.tctl(&["lock", "--user=carol", "--message=after the crash"]).ok("lock through b");
    let t = Instant::now();
    let mut live = live;
    let ended = loop {
        if let Ok(Some(_)) = live.try_wait() {
            break true;
        }
        if t.elapsed() > Duration::from_secs(10) {
            let _ = live.kill();
            break false;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = live.wait();
    assert!(ended, "a's node did not hear of the lock made through b after the crash");
    eprintln!("PostgreSQL crash: {} writes acknowledged, all present; serving again {back:?} after the restart", acked.len());
}

#[test]
fn audit_events_of_every_process_go_to_one_table() {
    let pg = PgServer::start();
    let (state, audit) = (pg.url("ha_state"), pg.url("ha_audit"));
    let opts = |node: &str| {
        let mut o = ha_opts("ha-audit.example.com", node, &state);
        o.teleport_extra = postgres_storage(&state, Some(&audit));
        o
    };
    let procs = start_together(vec![opts("root-a"), opts("root-b")]);
    procs[0].tctl(&["users", "add", "from-a", "--roles=access"]).ok("user through a");
    procs[1].tctl(&["users", "add", "from-b", "--roles=access"]).ok("user through b");
    let events = |c: &Cluster| c.tctl(&["get", "events", "--format=json"]);
    let has = |c: &Cluster, who: &str| {
        let out = events(c);
        out.code == 0 && out.stdout.contains(&format!("\"name\": \"{who}\""))
    };
    for c in &procs {
        assert!(has(c, "from-a") && has(c, "from-b"), "each process reads the events of both:\n{}", events(c).stdout);
    }
    let dup = pg.psql("ha_audit", "SELECT count(*) - count(DISTINCT event_id) FROM audit");
    assert_eq!(dup.trim(), "0", "every event once");
    let n = pg.psql("ha_audit", "SELECT count(*) FROM audit WHERE json LIKE '%user.create%'");
    assert_eq!(n.trim(), "2");
}

/// `teleport start` with a database it cannot use: one `ERROR:` line that names the problem
/// and the fix, exit code 1, nothing left running.
#[test]
fn an_unusable_database_stops_teleport_at_start_with_one_clear_line() {
    let dir = TempDir::new("ha-bad-db");
    let start = |conn: &str| {
        let cfg = dir.path().join("teleport.yaml");
        let ip = free_ip(&[3080]);
        let text = format!(
            "version: v3\nteleport:\n  nodename: bad\n  data_dir: {}\n{}auth_service:\n  cluster_name: bad.example.com\nssh_service:\n  enabled: no\nproxy_service:\n  web_listen_addr: {ip}:3080\n",
            dir.path().join("data").display(),
            postgres_storage(conn, None)
        );
        std::fs::write(&cfg, text).unwrap();
        run(&bin("teleport"), &["start", "-c", cfg.to_str().unwrap()], &[], None, Duration::from_secs(60))
    };
    let out = start("postgresql://teleport@127.0.0.1:9/teleport_backend?sslmode=disable");
    assert_eq!(out.code, 1, "{out:?}");
    let err: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with("ERROR:")).collect();
    assert_eq!(err.len(), 1, "{}", out.stderr);
    assert!(err[0].starts_with("ERROR: cannot connect to PostgreSQL at 127.0.0.1:9/teleport_backend"), "{}", err[0]);
    assert!(err[0].contains("check that it is running there"), "{}", err[0]);
    let pg = PgServer::start_with(&["wal_level=replica"]);
    let out = start(&pg.url("teleport_backend"));
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("ERROR: PostgreSQL at") && out.stderr.contains("wal_level = logical"), "{}", out.stderr);
    let out = start("postgresql://teleport@db/x?sslmode=sometimes");
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("teleport.storage.conn_string: unknown sslmode \"sometimes\""), "{}", out.stderr);
}

/// A leaf told to dial one root process learns of the other (discovery) and tunnels to both;
/// each process's presence record is in the shared state, so both show it online.
#[test]
fn a_leaf_tunnelled_to_one_process_is_online_through_every_process() {
    ensure_unix_user("visitor");
    let pg = PgServer::start();
    let url = pg.url("ha_rc");
    let procs = start_together(vec![ha_opts("root-ha-rc.example.com", "root-a", &url), ha_opts("root-ha-rc.example.com", "root-b", &url)]);
    let (a, b) = (&procs[0], &procs[1]);
    let mut lo = ClusterOpts::new("leaf-ha-rc.example.com");
    lo.insecure = true;
    let leaf = Cluster::start(lo);
    leaf.create("visitor.yaml", VISITOR).ok("visitor role");
    let token = a.trusted_cluster_token("5m");
    leaf.create("tc.yaml", &tc_yaml("root-ha-rc.example.com", &token, a, true, ACCESS_TO_VISITOR)).ok("trust through a");
    b.wait_remote_status(&leaf.opts.name, "online", Duration::from_secs(20));
    let conns = wait_for("a tunnel from the leaf to each root process", Duration::from_secs(15), || {
        let conns = b.tctl(&["get", "tunnel_connections", "--format=json"]).json();
        let conns = conns.as_array().cloned().unwrap_or_default();
        (conns.len() == 2).then_some(conns)
    });
    assert_ne!(conns[0]["spec"]["proxy_name"], conns[1]["spec"]["proxy_name"], "{conns:?}");
    for c in &conns {
        assert_eq!(c["spec"]["cluster_name"], leaf.opts.name.as_str());
        assert_eq!(c["spec"]["type"], "proxy");
    }
    let text = b.tctl(&["get", "tunnel_connections", "--format=text"]);
    assert!(text.ok("text table").contains(&leaf.opts.name), "{}", text.stdout);
    // Restarting b (which holds no tunnel) does not take the leaf offline.
    let mut procs = procs;
    procs[1].restart();
    procs[1].wait_remote_status(&leaf.opts.name, "online", Duration::from_secs(10));
    let status = procs[0].tctl(&["get", &format!("rc/{}", leaf.opts.name), "--format=json"]).json();
    assert_eq!(status[0]["status"]["connection"], "online", "root-b's restart took the leaf offline: {status}");
}
