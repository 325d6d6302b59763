//! The door: what one host can do to a cluster before and after it authenticates. Stalled
//! handshakes, unbounded channels, a user's connection count, the caller a leaf sees through
//! the tunnel, node heartbeats that lie, and locks.

use std::io::{Read, Write};
use std::net::{SocketAddrV4, TcpStream};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use e2e::*;
use shared::profile::{Credentials, ProfileStore};

/// Stalled connections from `source` to `target`: half send only an SSH banner, half only `S`.
/// Returns the sockets (kept open by us) and how many the server closed at once.
fn stall(source: &str, target: &str, n: usize) -> (Vec<TcpStream>, usize) {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, socket};
    let src: std::net::Ipv4Addr = source.parse().expect("source");
    let dst: SocketAddrV4 = target.parse().expect("target");
    let mut socks = Vec::with_capacity(n);
    for i in 0..n {
        let fd = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).expect("socket");
        bind(fd.as_raw_fd(), &SockaddrIn::from(SocketAddrV4::new(src, 0))).expect("bind");
        if connect(fd.as_raw_fd(), &SockaddrIn::from(dst)).is_err() {
            continue;
        }
        let mut s = TcpStream::from(fd);
        let _ = s.write_all(if i % 2 == 0 { b"SSH-2.0-stalled\r\n" } else { b"S" });
        socks.push(s);
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut closed = 0;
    for s in &socks {
        let _ = s.set_nonblocking(true);
        let mut b = [0u8; 4096];
        // A refused connection reads EOF (or a reset); a held one has nothing (or the server's
        // SSH banner) to read.
        loop {
            match (&*s).read(&mut b) {
                Ok(0) => {
                    closed += 1;
                    break;
                }
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    closed += 1;
                    break;
                }
            }
        }
    }
    (socks, closed)
}

fn metric(m: &std::collections::BTreeMap<String, f64>, k: &str) -> f64 {
    m.get(k).copied().unwrap_or(-1.0)
}

#[test]
fn stalled_handshakes_cannot_exhaust_the_proxy() {
    ensure_unix_user("visitor");
    let mut o = ClusterOpts::new("door-stall.example.com");
    o.diag = true;
    o.node_name = Some("stall-node".into());
    o.teleport_extra = "  connection_limits:\n    login_grace_time: 8s\n".into();
    let c = Cluster::start(o);
    c.add_user("myuser", "access", "visitor", PASSWORD);
    let mut tsh = Tsh::new("door-stall");
    tsh.login(&c, "myuser", PASSWORD).ok("login");
    tsh.run(&["ssh", "visitor@stall-node", "true"]).ok("warm up");
    std::thread::sleep(Duration::from_secs(1));
    let before = c.metrics();
    let attacker = free_ip(&[]);
    let (socks, closed) = stall(&attacker, &c.web, 5000);
    let during = c.metrics();
    let t = Instant::now();
    let out = tsh.run(&["ssh", "visitor@stall-node", "echo still-served"]);
    assert_eq!(out.ok("tsh ssh during the flood"), "still-served\n");
    let ssh_during = t.elapsed();
    let per_source = 512.0;
    let fds = |m| metric(m, "process_open_fds");
    assert!(fds(&during) - fds(&before) <= per_source + 64.0, "descriptors: {} before, {} during", fds(&before), fds(&during));
    // On a slow machine the first connections may already be cut by login_grace_time while the
    // last ones arrive: either way, at most 512 are held at once.
    assert!(closed >= 5000 - 512 - 8, "only {closed} of 5000 stalled connections were closed");
    let turned_away = metric(&during, "teleport_connections_refused_total{reason=\"per_source_max_startups\"}")
        + metric(&during, "teleport_connections_refused_total{reason=\"login_grace_time\"}");
    assert!(turned_away >= 4400.0, "{during:?}");
    assert!(metric(&during, "teleport_connections{state=\"unauthenticated\"}") <= per_source, "{during:?}");
    // login_grace_time cuts the rest.
    wait_for("the stalled connections to be cut", Duration::from_secs(30), || {
        (metric(&c.metrics(), "teleport_connections{state=\"unauthenticated\"}") == 0.0).then_some(())
    });
    std::thread::sleep(Duration::from_millis(500));
    let after = c.metrics();
    drop(socks);
    let rss = |m| metric(m, "process_resident_memory_bytes") / 1048576.0;
    let tasks = |m| metric(m, "teleport_runtime_alive_tasks");
    assert!(fds(&after) <= fds(&before) + 16.0, "descriptors not given back: {} before, {} after", fds(&before), fds(&after));
    assert!(tasks(&after) <= tasks(&before) + 8.0, "tasks not given back: {} before, {} after", tasks(&before), tasks(&after));
    // The allocator keeps what it has for reuse, so RSS stays at its high-water mark; a second
    // flood must reuse it rather than grow (what a leak would do).
    let (socks, _) = stall(&attacker, &c.web, 5000);
    wait_for("the second flood to be cut", Duration::from_secs(30), || {
        (metric(&c.metrics(), "teleport_connections{state=\"unauthenticated\"}") == 0.0).then_some(())
    });
    drop(socks);
    let again = c.metrics();
    assert!(rss(&again) - rss(&after) < 6.0, "memory grew from one flood to the next: {:.1} -> {:.1} MiB", rss(&after), rss(&again));
    assert!(fds(&again) <= fds(&before) + 16.0, "{again:?}");
    eprintln!(
        "stalled connections: 5000 from {attacker}: {closed} closed by the proxy ({turned_away} refused or cut); descriptors {} -> {} -> {}; \
         RSS {:.1} -> {:.1} -> {:.1} MiB (after a second flood {:.1}); tasks {} -> {}; tsh ssh during the flood took {ssh_during:?}",
        fds(&before),
        fds(&during),
        fds(&after),
        rss(&before),
        rss(&during),
        rss(&after),
        rss(&again),
        tasks(&before),
        tasks(&after)
    );
}

/// Accepts any host key: these tests are about what the server allows, not who it is.
struct AnyHost;

impl russh::client::Handler for AnyHost {
    type Error = russh::Error;
    async fn check_server_key(&mut self, _key: &russh::keys::PublicKeyOrCertificate) -> Result<bool, Self::Error> {
        Ok(true)
    }
}

fn creds_of(tsh: &Tsh) -> Credentials {
    let store = ProfileStore::at(tsh.home.path());
    let name = store.current().expect("a current profile");
    store.load(&name).expect("profile").1
}

async fn ssh_to(addr: &str, creds: &Credentials, login: &str) -> russh::client::Handle<AnyHost> {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut h = russh::client::connect_stream(Arc::new(russh::client::Config::default()), tcp, AnyHost).await.expect("ssh");
    let ok = h.authenticate_openssh_cert(login, Arc::new(creds.ssh_key.clone()), creds.ssh_cert.clone()).await.expect("auth");
    assert!(ok.success(), "certificate refused");
    h
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

/// Opens up to `n` session channels; returns those the proxy accepted.
async fn open_sessions(h: &russh::client::Handle<AnyHost>, n: usize) -> Vec<russh::Channel<russh::client::Msg>> {
    let mut out = Vec::new();
    for _ in 0..n {
        if let Ok(Ok(ch)) = tokio::time::timeout(Duration::from_secs(5), h.channel_open_session()).await {
            out.push(ch);
        }
    }
    out
}

async fn direct(h: &russh::client::Handle<AnyHost>, host: &str) -> bool {
    matches!(tokio::time::timeout(Duration::from_secs(10), h.channel_open_direct_tcpip(host, 3022, "127.0.0.1", 0)).await, Ok(Ok(_)))
}

#[test]
fn one_connection_cannot_open_unbounded_channels() {
    ensure_unix_user("visitor");
    let mut o = ClusterOpts::new("door-chan.example.com");
    o.node_name = Some("chan-node".into());
    let c = Cluster::start(o);
    c.create(
        "three.yaml",
        "kind: role\nversion: v7\nmetadata:\n  name: three\nspec:\n  options:\n    max_sessions: 3\n  allow:\n    logins: [visitor]\n    node_labels: {'*': '*'}\n",
    )
    .ok("role with max_sessions");
    c.add_user("myuser", "access", "visitor", PASSWORD);
    c.add_user("few", "three", "", PASSWORD);
    let mut tsh = Tsh::new("door-chan");
    tsh.login(&c, "myuser", PASSWORD).ok("login");
    let mut few = Tsh::new("door-chan-few");
    few.login(&c, "few", PASSWORD).ok("login few");
    let (creds, few_creds) = (creds_of(&tsh), creds_of(&few));
    let web = c.web.clone();
    runtime().block_on(async move {
        let h = ssh_to(&web, &creds, "myuser").await;
        let mut open = open_sessions(&h, 100).await;
        assert_eq!(open.len(), 64, "64 channels per connection, every kind counted");
        assert!(!direct(&h, "chan-node").await, "a direct-tcpip channel counts too");
        for ch in open.drain(..10) {
            let _ = ch.close().await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut forwarded = 0;
        for _ in 0..12 {
            if direct(&h, "chan-node").await {
                forwarded += 1;
            }
        }
        assert_eq!(forwarded, 10, "closed channels give their places back, to any kind");
        let h2 = ssh_to(&web, &few_creds, "few").await;
        assert_eq!(open_sessions(&h2, 10).await.len(), 3, "the role's max_sessions is the cap");
        eprintln!("channels: 64 of 100 session channels accepted, then direct-tcpip refused; max_sessions: 3 gave 3");
    });
    let out = tsh.run(&["ssh", "visitor@chan-node", "echo fine"]);
    assert_eq!(out.ok("the proxy still serves"), "fine\n");
}

/// Starts `tsh ARGS` and leaves it running.
fn spawn_tsh(tsh: &Tsh, args: &[&str]) -> std::process::Child {
    tsh.command(args).stdin(Stdio::null()).spawn().expect("spawn tsh")
}

/// Waits for a spawned command, at most `limit`; returns (exit code, stderr, how long it took).
fn finish(mut child: std::process::Child, limit: Duration) -> (i32, String, Duration) {
    let t = Instant::now();
    let code = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st.code().unwrap_or(-1);
        }
        if t.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    (code, err, t.elapsed())
}

#[test]
fn max_connections_is_counted_per_user_at_the_root_and_at_the_leaf() {
    let mut ro = ClusterOpts::new("root-door-mc.example.com");
    ro.node = true;
    ro.node_name = Some("mc-root-node".into());
    let mut lo = ClusterOpts::new("leaf-door-mc.example.com");
    lo.insecure = true;
    lo.node_name = Some("mc-leaf-node".into());
    let p = Pair::start("door-mc", ro, lo);
    p.root
        .create(
            "one.yaml",
            "kind: role\nversion: v7\nmetadata:\n  name: one\nspec:\n  options:\n    max_connections: 1\n  allow:\n    logins: [visitor]\n    node_labels: {'*': '*'}\n",
        )
        .ok("role one");
    p.root.add_user("solo", "one", "", PASSWORD);
    let mut solo = Tsh::new("door-mc-solo");
    solo.login(&p.root, "solo", PASSWORD).ok("login solo");
    let first = spawn_tsh(&solo, &["ssh", "visitor@mc-root-node", "sleep 4"]);
    std::thread::sleep(Duration::from_millis(1500));
    let out = solo.run(&["ssh", "visitor@mc-root-node", "true"]);
    out.cannot_connect("a second connection", "too many concurrent ssh connections for user \"solo\" (max=1)");
    let (code, _, _) = finish(first, Duration::from_secs(20));
    assert_eq!(code, 0, "the first session ran to its end");
    std::thread::sleep(Duration::from_millis(300));
    solo.run(&["ssh", "visitor@mc-root-node", "true"]).ok("a place is free again");

    // The leaf counts a root's user by the roles the leaf maps them to.
    p.leaf
        .create_force(
            "visitor.yaml",
            "kind: role\nversion: v5\nmetadata:\n  name: visitor\nspec:\n  options:\n    max_connections: 1\n  allow:\n    logins: [visitor]\n    node_labels: {'*': '*'}\n",
        )
        .ok("leaf role with max_connections");
    p.trust_online();
    let first = spawn_tsh(&p.tsh, &["ssh", &format!("--cluster={}", p.leaf_name()), "visitor@mc-leaf-node", "sleep 4"]);
    std::thread::sleep(Duration::from_millis(1500));
    let out = p.ssh("mc-leaf-node", "true");
    out.cannot_connect("a second connection to the leaf", "too many concurrent ssh connections for user \"myuser\" (max=1)");
    let (code, _, _) = finish(first, Duration::from_secs(20));
    assert_eq!(code, 0);
    std::thread::sleep(Duration::from_millis(300));
    p.ssh("mc-leaf-node", "true").ok("the leaf's place is free again");
}

/// An API client for `leaf`'s API through the root's proxy (`proxy:@leaf`), speaking TLS end
/// to end with the leaf, as tsh does.
fn leaf_api(rt: &tokio::runtime::Runtime, root_web: &str, leaf: &str, creds: &Credentials) -> shared::client::ApiClient {
    let h = Arc::new(rt.block_on(ssh_to(root_web, creds, "myuser")));
    let subsystem = format!("proxy:@{leaf}");
    let dialer: shared::client::Dialer = Arc::new(move || {
        let (h, subsystem) = (h.clone(), subsystem.clone());
        Box::pin(async move {
            let ch = h.channel_open_session().await.map_err(|e| shared::Error::connection_problem(e.to_string()))?;
            ch.request_subsystem(true, subsystem).await.map_err(|e| shared::Error::connection_problem(e.to_string()))?;
            Ok(Box::new(ch.into_stream()) as shared::client::BoxStream)
        })
    });
    let trust = creds.cluster_trust(leaf).expect("leaf trust");
    shared::client::ApiClient::new(dialer, shared::certs::CLUSTER_LOCAL_NAME, &trust, Some(&creds.client_identity()), leaf).expect("client")
}

#[test]
fn the_leaf_sees_the_real_caller_and_serves_no_password_endpoints_through_the_tunnel() {
    let p = pair("door-orig", true);
    p.trust_online();
    let node = p.leaf.node_name();
    p.ssh(&node, "true").ok("through the tunnel");
    let ev = wait_for("the leaf's session.connect event", Duration::from_secs(10), || {
        p.leaf.events().into_iter().find(|e| e["event"] == "session.connect" && e["user"] == "myuser")
    });
    assert_eq!(ev["origin_cluster"], p.root_name());
    let addr = ev["addr.remote"].as_str().unwrap_or_default();
    assert!(addr.starts_with("127.0.0.1:"), "the leaf audits the user's own address, not 'tunnel': {ev}");
    assert_eq!(ev["server_hostname"], node.as_str());

    let rt = runtime();
    let api = leaf_api(&rt, &p.root.web, p.leaf_name(), &creds_of(&p.tsh));
    let nodes: serde_json::Value = rt.block_on(api.get("/v1/nodes")).expect("an authenticated call works through the tunnel");
    assert!(nodes.as_array().is_some_and(|a| !a.is_empty()), "{nodes}");
    let refused = "not served through a trusted cluster's tunnel";
    for (method, path, body) in [
        ("POST", "/v1/auth/login", serde_json::json!({"username": "myuser", "password": "guess-guess"})),
        ("POST", "/webapi/trustedclusters/validate", serde_json::json!({"token": "x"})),
        ("POST", "/v1/join", serde_json::json!({"token": "x"})),
        ("PUT", "/webapi/users/password/token", serde_json::json!({"token": "x", "password": "y"})),
    ] {
        let r: shared::Result<serde_json::Value> =
            rt.block_on(async { if method == "PUT" { api.put(path, &body).await } else { api.post(path, &body).await } });
        let e = r.expect_err(path);
        assert!(e.message.contains(refused), "{path}: {}", e.message);
        assert_eq!(e.kind, shared::Kind::AccessDenied, "{path}");
    }
    // The web UI is not served through the tunnel at all: a root user cannot reach a leaf's
    // password sign-in (even for a leaf-local user whose password they hold), invite or reset.
    p.leaf.add_user("leafadmin", "access", "", PASSWORD);
    let invite = p.leaf.invite("leafnew", "access", "");
    let reset = p
        .leaf
        .tctl(&["users", "reset", "leafadmin"])
        .ok("reset")
        .lines()
        .find(|l| l.starts_with("https://"))
        .map(|u| u.rsplit('/').next().unwrap_or_default().to_string())
        .expect("reset token");
    for (path, body) in [
        ("/v1/webapi/sessions/web".to_string(), serde_json::json!({"user": "leafadmin", "pass": PASSWORD})),
        ("/webapi/sessions/web".to_string(), serde_json::json!({"user": "leafadmin", "pass": PASSWORD})),
        ("/web/login".to_string(), serde_json::json!({"user": "leafadmin", "password": PASSWORD})),
        (format!("/web/invite/{invite}"), serde_json::json!({"password": "root-user-chose-this"})),
        (format!("/web/reset/{reset}"), serde_json::json!({"password": "root-user-chose-this"})),
    ] {
        let r: shared::Result<serde_json::Value> = rt.block_on(api.post(&path, &body));
        let e = r.expect_err(&path);
        assert_eq!(e.kind, shared::Kind::NotFound, "{path}: {}", e.message);
        assert!(e.message.contains("no such endpoint"), "{path}: {}", e.message);
    }
    let pages: shared::Result<serde_json::Value> = rt.block_on(api.get("/web/login"));
    assert_eq!(pages.expect_err("/web/login").kind, shared::Kind::NotFound);
}

/// Node `n`'s own TLS identity as files for curl.
fn node_cert_files(n: &NodeProc) -> (String, String, String) {
    let creds = shared::profile::read_identity_file(&n.dir.path().join("data").join("node.identity")).expect("node identity");
    let (cert, key) = (n.dir.path().join("node-cert.pem"), n.dir.path().join("node-key.pem"));
    std::fs::write(&cert, &creds.tls_cert_pem).expect("cert");
    std::fs::write(&key, &creds.tls_key_pem).expect("key");
    let host_id = creds.ssh_cert.key_id().to_string();
    (cert.display().to_string(), key.display().to_string(), host_id)
}

fn heartbeat(c: &Cluster, files: &(String, String, String), hostname: &str, addr: &str) -> (i32, String) {
    let body =
        serde_json::json!({"kind": "node", "version": "v2", "metadata": {"name": files.2}, "spec": {"hostname": hostname, "addr": addr}});
    let url = format!("https://{}/v1/nodes/heartbeat", c.web);
    let ca = c.web_ca().display().to_string();
    let out = run(
        Path::new("curl"),
        &["-s", "--cacert", &ca, "--cert", &files.0, "--key", &files.1, "-w", "\n%{http_code}", "-d", &body.to_string(), &url],
        &[],
        None,
        Duration::from_secs(30),
    );
    let (text, code) = out.stdout.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), text.to_string())
}

#[test]
fn a_node_cannot_register_another_address_or_take_a_name() {
    let mut o = ClusterOpts::new("door-node.example.com");
    o.node_name = Some("door-inproc".into());
    let c = Cluster::start(o);
    c.wait_node("door-inproc");
    let n1 = NodeProc::join(&c, "door-n1", false, "");
    let files = node_cert_files(&n1);
    let (code, body) = heartbeat(&c, &files, "door-n1", "169.254.169.254:80");
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("registered address \\\"169.254.169.254:80\\\", but its heartbeat comes from 127.0.0.1"), "{body}");
    let (code, body) = heartbeat(&c, &files, "door-inproc", "127.0.0.1:3022");
    assert_eq!(code, 409, "{body}");
    assert!(body.contains("node name \\\"door-inproc\\\" is already registered by node"), "{body}");
    // A second node joining under a taken name is refused and says so in its log.
    let twin = NodeProc::join_at_unchecked(&c, "door-n1", false, "", &free_ip(&[3022]));
    wait_for("the twin's refusal in its log", Duration::from_secs(15), || {
        twin.log().contains("is already registered by node").then_some(())
    });
    let nodes = c.tctl(&["get", "nodes", "--format=json"]).json();
    let named: Vec<&serde_json::Value> = nodes.as_array().expect("nodes").iter().filter(|n| n["spec"]["hostname"] == "door-n1").collect();
    assert_eq!(named.len(), 1, "{nodes}");
    assert_eq!(named[0]["metadata"]["name"], files.2.as_str(), "the first holder keeps the name");
    // The proxy still dials only registered nodes at their registered addresses.
    assert_eq!(named[0]["spec"]["addr"], format!("{}:3022", n1.ip).as_str());
}

/// The lock's name from `tctl lock`'s answer.
fn lock_name(out: &Out) -> String {
    let text = out.ok("tctl lock");
    assert!(text.starts_with("Created a lock with name \""), "{text}");
    text.trim().trim_start_matches("Created a lock with name \"").trim_end_matches("\".").to_string()
}

#[test]
fn a_lock_ends_live_sessions_and_refuses_new_ones() {
    ensure_unix_user("visitor");
    let mut o = ClusterOpts::new("door-lock.example.com");
    o.node_name = Some("lock-node".into());
    let c = Cluster::start(o);
    c.add_user("myuser", "access", "visitor", PASSWORD);
    c.add_user("other", "access", "visitor", PASSWORD);
    let mut tsh = Tsh::new("door-lock");
    tsh.login(&c, "myuser", PASSWORD).ok("login");
    let mut other = Tsh::new("door-lock-other");
    other.login(&c, "other", PASSWORD).ok("login other");
    let live = spawn_tsh(&tsh, &["ssh", "visitor@lock-node", "sleep 60"]);
    std::thread::sleep(Duration::from_millis(1500));
    let locked_at = Instant::now();
    let name = lock_name(&c.tctl(&["lock", "--user=myuser", "--message=Suspicious activity."]));
    let (code, err, _) = finish(live, Duration::from_secs(15));
    let took = locked_at.elapsed();
    let refusal = "lock targeting User:\"myuser\" is in force: Suspicious activity.";
    assert_ne!(code, 0);
    assert!(err.contains(refusal), "the live session says why it ended: {err}");
    assert!(took < Duration::from_secs(5), "the live session ended {took:?} after the lock");
    tsh.run(&["ssh", "visitor@lock-node", "true"]).cannot_connect("a new session", refusal);
    tsh.run(&["ls"]).fails_with("the API", refusal);
    // No certificate is issued under the lock (one would work the moment it lifts).
    let mut again = Tsh::new("door-lock-again");
    again.login(&c, "myuser", PASSWORD).fails_with("a sign-in under the lock", refusal);
    other.run(&["ssh", "visitor@lock-node", "true"]).ok("another user is not locked");
    let table = c.tctl(&["get", "locks", "--format=text"]);
    let table = table.ok("tctl get locks");
    assert!(table.starts_with("ID"), "{table}");
    assert!(table.contains(&name) && table.contains("User:\"myuser\"") && table.contains("never"), "{table}");
    assert!(c.tctl(&["get", &format!("lock/{name}")]).ok("get lock").contains("kind: lock"));
    let out = c.tctl(&["rm", &format!("lock/{name}")]);
    assert_eq!(out.ok("rm lock").trim(), format!("lock \"{name}\" has been deleted"));
    tsh.run(&["ssh", "visitor@lock-node", "true"]).ok("lifted");
    eprintln!("lock: a live session ended {took:?} after tctl lock started (tctl itself included), with the lock's message");

    // A role lock that expires by itself.
    lock_name(&c.tctl(&["lock", "--role=access", "--message=Maintenance.", "--ttl=3s"]));
    other
        .run(&["ssh", "visitor@lock-node", "true"])
        .cannot_connect("a role lock", "lock targeting Role:\"access\" is in force: Maintenance.");
    wait_for("the role lock to expire", Duration::from_secs(15), || {
        (other.run(&["ssh", "visitor@lock-node", "true"]).code == 0).then_some(())
    });

    // A node lock: nobody reaches it.
    let uuid = c.tctl(&["get", "nodes", "--format=json"]).json()[0]["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let name = lock_name(&c.tctl(&["lock", &format!("--server-id={uuid}")]));
    tsh.run(&["ssh", "visitor@lock-node", "true"])
        .cannot_connect("a node lock", &format!("lock targeting ServerID:\"{uuid}\" is in force"));
    c.tctl(&["rm", &format!("lock/{name}")]).ok("rm node lock");
    tsh.run(&["ssh", "visitor@lock-node", "true"]).ok("the node is back");
}

#[test]
fn a_roots_lock_on_its_user_is_enforced_at_the_leaf_node() {
    let p = pair("door-rl", true);
    p.trust_online();
    let node = p.leaf.node_name();
    let profile = p.root.ip.clone();
    let direct_ok = || p.tsh.openssh_direct(&profile, "visitor", &p.leaf.ip, "echo direct");
    assert_eq!(direct_ok().ok("stock ssh straight to the leaf node"), "direct\n");
    // A live session on the leaf's node ends with the lock's message, whichever side cuts it.
    let live = spawn_tsh(&p.tsh, &["ssh", &format!("--cluster={}", p.leaf_name()), &format!("visitor@{node}"), "sleep 60"]);
    std::thread::sleep(Duration::from_millis(1500));
    let name = lock_name(&p.root.tctl(&["lock", "--user=myuser", "--message=Off-boarded."]));
    let refusal = "lock targeting User:\"myuser\" is in force: Off-boarded.";
    let (code, err, took) = finish(live, Duration::from_secs(15));
    assert_ne!(code, 0);
    assert!(err.contains(refusal) && !err.contains("was lost"), "the live leaf session says why it ended: {err}");
    eprintln!("root lock: a live session on the leaf's node ended after {took:?}: {}", err.trim());
    p.ssh(&node, "true").cannot_connect("through the root", refusal);
    // Straight to the leaf's node, skipping the root: the leaf enforces the root's lock.
    let t = Instant::now();
    let out = wait_for("the leaf node to refuse the root's locked user", Duration::from_secs(15), || {
        let out = direct_ok();
        (out.code != 0).then_some(out)
    });
    assert!(out.stderr.contains(refusal), "the leaf node says why: {out:?}");
    eprintln!("root lock reached the leaf node in {:?}", t.elapsed());
    p.root.tctl(&["rm", &format!("lock/{name}")]).ok("rm lock");
    wait_for("the leaf to lift the root's lock", Duration::from_secs(15), || (direct_ok().code == 0).then_some(()));

    // A leaf's own lock on the role a root user is mapped to.
    let name = lock_name(&p.leaf.tctl(&["lock", "--role=visitor", "--message=Leaf maintenance."]));
    p.ssh(&node, "true").cannot_connect("a leaf lock on the mapped role", "lock targeting Role:\"visitor\" is in force: Leaf maintenance.");
    p.leaf.tctl(&["rm", &format!("lock/{name}")]).ok("rm leaf lock");
    p.ssh(&node, "true").ok("lifted");
}

#[test]
fn deleting_a_user_locks_their_certificates_until_they_expire() {
    ensure_unix_user("visitor");
    let mut o = ClusterOpts::new("door-del.example.com");
    o.node_name = Some("del-node".into());
    let c = Cluster::start(o);
    c.add_user("gone", "access", "visitor", PASSWORD);
    let mut tsh = Tsh::new("door-del");
    tsh.login(&c, "gone", PASSWORD).ok("login");
    tsh.run(&["ssh", "visitor@del-node", "true"]).ok("before");
    let out = c.tctl(&["users", "rm", "gone"]);
    let text = out.ok("users rm");
    assert!(text.contains("User \"gone\" has been deleted"), "{text}");
    assert!(text.contains("Certificates already issued to this user are locked until"), "{text}");
    let refusal = "lock targeting User:\"gone\" is in force: user \"gone\" was deleted";
    tsh.run(&["ls"]).fails_with("the API", refusal);
    tsh.run(&["ssh", "visitor@del-node", "true"]).cannot_connect("ssh", refusal);
    // A new user of the same name is someone else (certificates carry whole seconds: one from
    // the second of the deletion would count as older).
    std::thread::sleep(Duration::from_millis(1100));
    c.add_user("gone", "access", "visitor", PASSWORD);
    let mut again = Tsh::new("door-del-again");
    again.login(&c, "gone", PASSWORD).ok("login again");
    again.run(&["ssh", "visitor@del-node", "true"]).ok("the new user's certificate");
    tsh.run(&["ls"]).fails_with("the old certificate", refusal);
}

#[test]
fn idle_sessions_and_idle_connections_are_closed_by_client_idle_timeout() {
    ensure_unix_user("visitor");
    let mut o = ClusterOpts::new("door-idle.example.com");
    o.node_name = Some("idle-node".into());
    let c = Cluster::start(o);
    c.create(
        "idle.yaml",
        "kind: role\nversion: v7\nmetadata:\n  name: idle\nspec:\n  options:\n    client_idle_timeout: 2s\n  allow:\n    logins: [visitor]\n    node_labels: {'*': '*'}\n",
    )
    .ok("role with client_idle_timeout");
    c.add_user("sleepy", "idle", "", PASSWORD);
    let mut tsh = Tsh::new("door-idle");
    tsh.login(&c, "sleepy", PASSWORD).ok("login");
    let t = Instant::now();
    let out = tsh.run(&["ssh", "visitor@idle-node", "sleep 30"]);
    let took = t.elapsed();
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("the session was idle for 2s; it was closed by client_idle_timeout"), "{out:?}");
    assert!(took < Duration::from_secs(10), "closed after {took:?}");
    // Output is activity: a chatty session outlives the timeout.
    let out = tsh.run(&["ssh", "visitor@idle-node", "for i in 1 2 3 4 5; do echo $i; sleep 1; done"]);
    assert_eq!(out.ok("a session with output"), "1\n2\n3\n4\n5\n");
    // A signed-in connection with no channel is closed too.
    let (creds, web) = (creds_of(&tsh), c.web.clone());
    runtime().block_on(async move {
        let h = ssh_to(&web, &creds, "sleepy").await;
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert!(open_sessions(&h, 1).await.is_empty(), "an idle connection was left open");
    });
    eprintln!("client_idle_timeout 2s: an idle session closed after {took:?}");
}

/// Anonymous HTTPS connections from `source` to `target`: each finishes its TLS handshake
/// without a client certificate, asks `/webapi/ping` once (a keep-alive client), and is held
/// open. Returns the connections the server kept.
fn anonymous_https(source: &str, target: &str, n: usize) -> Vec<rustls::StreamOwned<rustls::ClientConnection, TcpStream>> {
    use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, socket};
    let cfg = Arc::new(shared::client::tls_client_config(&shared::client::ServerTrust::Insecure, None).expect("tls config"));
    let src: std::net::Ipv4Addr = source.parse().expect("source");
    let dst: SocketAddrV4 = target.parse().expect("target");
    let name = rustls_pki_types::ServerName::try_from(dst.ip().to_string()).expect("name");
    let mut held = Vec::new();
    for _ in 0..n {
        let fd = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).expect("socket");
        bind(fd.as_raw_fd(), &SockaddrIn::from(SocketAddrV4::new(src, 0))).expect("bind");
        if connect(fd.as_raw_fd(), &SockaddrIn::from(dst)).is_err() {
            continue;
        }
        let sock = TcpStream::from(fd);
        let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
        let conn = rustls::ClientConnection::new(cfg.clone(), name.clone()).expect("client");
        let mut tls = rustls::StreamOwned::new(conn, sock);
        if tls.write_all(b"GET /webapi/ping HTTP/1.1\r\nHost: door\r\n\r\n").is_err() {
            continue;
        }
        let mut buf = [0u8; 4096];
        match tls.read(&mut buf) {
            Ok(n) if n > 0 && buf[..n].starts_with(b"HTTP/1.1 200") => {
                // The rest of the answer, if it came in two reads.
                let _ = tls.sock.set_read_timeout(Some(Duration::from_millis(20)));
                let _ = tls.read(&mut buf);
                held.push(tls)
            }
            _ => {}
        }
    }
    held
}

#[test]
fn anonymous_keep_alive_https_from_one_address_cannot_fill_the_door() {
    ensure_unix_user("visitor");
    let mut o = ClusterOpts::new("door-anon.example.com");
    o.diag = true;
    o.node_name = Some("anon-node".into());
    // The attack run's setting: a descriptor limit of 2,000, so max_connections is 1,744,
    // max_startups 436 and per_source_max_startups 436.
    o.fd_limit = Some(2000);
    let c = Cluster::start(o);
    c.add_user("myuser", "access", "visitor", PASSWORD);
    let mut tsh = Tsh::new("door-anon");
    tsh.login(&c, "myuser", PASSWORD).ok("login");
    assert!(c.log().contains("the file descriptor limit allows at most 1744 connections"), "{}", c.log());
    let attacker = free_ip(&[]);
    let held = anonymous_https(&attacker, &c.web, 1000);
    let m = c.metrics();
    let anon = metric(&m, "teleport_connections{state=\"anonymous\"}");
    eprintln!(
        "anonymous HTTPS from one address: {} of 1000 held (each asked /webapi/ping); the proxy counts {anon} anonymous, {} in all",
        held.len(),
        metric(&m, "teleport_connections{state=\"all\"}")
    );
    assert_eq!(held.len(), 436, "one address holds at most per_source_max_startups anonymous connections");
    assert!(anon <= 436.0 + 2.0, "{m:?}");
    assert!(metric(&m, "teleport_connections_refused_total{reason=\"anonymous\"}") >= 500.0, "{m:?}");
    // Another address is served: ping, sign-in and SSH.
    let ping =
        run(Path::new("curl"), &["-sk", "--max-time", "5", &format!("https://{}/webapi/ping", c.web)], &[], None, Duration::from_secs(10));
    assert!(ping.ok("ping from another address").contains("\"cluster_name\""), "{}", ping.stdout);
    tsh.login(&c, "myuser", PASSWORD).ok("login during the flood");
    assert_eq!(tsh.run(&["ssh", "visitor@anon-node", "echo served"]).ok("tsh ssh during the flood"), "served\n");
    // The held connections are still alive keep-alive HTTPS connections.
    let mut alive = 0;
    for mut t in held.into_iter().take(5) {
        let _ = t.sock.set_read_timeout(Some(Duration::from_secs(5)));
        let mut buf = [0u8; 64];
        if t.write_all(b"GET /webapi/ping HTTP/1.1\r\nHost: door\r\n\r\n").is_ok()
            && t.read(&mut buf).is_ok_and(|n| buf[..n].starts_with(b"HTTP/1.1 200"))
        {
            alive += 1;
        }
    }
    assert_eq!(alive, 5, "the flood's connections are kept (bounded), not cut");
}

/// Opens `n` channels to `target` on one connection of `creds`'s user and leaves them silent:
/// direct-tcpip to a node of the root, or a `proxy:` subsystem for a node of a leaf.
async fn silent_channels(
    h: &russh::client::Handle<AnyHost>,
    target: &str,
    leaf: Option<&str>,
    n: usize,
) -> Vec<russh::Channel<russh::client::Msg>> {
    let mut out = Vec::new();
    for _ in 0..n {
        let ch = match leaf {
            None => tokio::time::timeout(Duration::from_secs(10), h.channel_open_direct_tcpip(target, 3022, "127.0.0.1", 0)).await,
            Some(l) => {
                let Ok(Ok(ch)) = tokio::time::timeout(Duration::from_secs(10), h.channel_open_session()).await else { continue };
                if ch.request_subsystem(true, format!("proxy:{target}:3022@{l}")).await.is_err() {
                    continue;
                }
                Ok(Ok(ch))
            }
        };
        if let Ok(Ok(ch)) = ch {
            out.push(ch);
        }
    }
    out
}

#[test]
fn one_users_silent_channels_do_not_shut_others_out_of_a_node() {
    let mut ro = ClusterOpts::new("root-door-silent.example.com");
    ro.node_name = Some("silent-root-node".into());
    let mut lo = ClusterOpts::new("leaf-door-silent.example.com");
    lo.insecure = true;
    lo.node_name = Some("silent-leaf-node".into());
    let p = Pair::start("door-silent", ro, lo);
    p.trust_online();
    p.root.add_user("mallory", "access", "visitor", PASSWORD);
    let mut mallory = Tsh::new("door-silent-mallory");
    mallory.login(&p.root, "mallory", PASSWORD).ok("mallory signs in");
    let creds = creds_of(&mallory);
    let (root_node, leaf_node, leaf) = (p.root.node_name(), p.leaf.node_name(), p.leaf_name().to_string());
    let web = p.root.web.clone();
    let rt = runtime();
    // Nine connections of 64 silent channels each (576, beyond per_source_max_startups' 512) to
    // the root's node and, through the tunnel, to the leaf's.
    let held = rt.block_on(async {
        let mut held = Vec::new();
        for (target, leaf) in [(root_node.as_str(), None), (leaf_node.as_str(), Some(leaf.as_str()))] {
            let mut n = 0;
            for _ in 0..9 {
                let h = ssh_to(&web, &creds, "mallory").await;
                let chans = silent_channels(&h, target, leaf, 64).await;
                n += chans.len();
                held.push((h, chans));
            }
            eprintln!("silent channels: mallory holds {n} to {target}");
            assert!(n >= 500, "mallory opened {n} silent channels to {target}");
        }
        held
    });
    let t = Instant::now();
    assert_eq!(p.tsh.run(&["ssh", &format!("visitor@{root_node}"), "echo root-ok"]).ok("another user, the root's node"), "root-ok\n");
    assert_eq!(p.ssh(&leaf_node, "echo leaf-ok").ok("another user, the leaf's node"), "leaf-ok\n");
    eprintln!("silent channels: another user reached both nodes in {:?} while mallory's channels were open", t.elapsed());
    // Mallory herself is held back by her own count at the nodes (her channels there never
    // authenticate), not everyone's.
    let out = mallory.run(&["ssh", &format!("visitor@{root_node}"), "true"]);
    assert_ne!(out.code, 0, "mallory's own new connection is refused while she holds 512: {out:?}");
    drop(held);
    drop(rt);
}
