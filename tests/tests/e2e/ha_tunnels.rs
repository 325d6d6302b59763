//! High availability, part 2: every leaf (and tunnel node) tunnels to every root process behind
//! a real load balancer (HAProxy), any process reaches any leaf (through a peer if need be), and
//! losing a process loses no leaf. Real PostgreSQL, real HAProxy, real processes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use e2e::haproxy::{Backend, Haproxy};
use e2e::postgres::PgServer;
use e2e::*;

/// A root cluster of several processes on one PostgreSQL database behind HAProxy at `lb.addr`.
struct HaRoot {
    name: String,
    lb: Haproxy,
    /// Options of every declared process (HAProxy knows them all; not all need be running).
    opts: Vec<ClusterOpts>,
    procs: Vec<Cluster>,
    _pg: PgServer,
}

impl HaRoot {
    /// `declared` processes known to HAProxy, the first `running` started now.
    fn start(tag: &str, declared: usize, running: usize) -> HaRoot {
        let name = format!("root-{tag}.example.com");
        let pg = PgServer::start();
        let url = pg.url(&format!("ha_{}", tag.replace('-', "_")));
        let ips: Vec<String> = (0..declared).map(|_| free_ip(&[3080, 3022, 3000, 3021])).collect();
        let backends: Vec<Backend> = ips.iter().enumerate().map(|(i, ip)| Backend::at(&proc_name(i), ip)).collect();
        let lb = Haproxy::start(&backends);
        let opts: Vec<ClusterOpts> = ips
            .iter()
            .enumerate()
            .map(|(i, ip)| {
                let mut o = ha_opts(&name, &proc_name(i), &url);
                o.ip = Some(ip.clone());
                o.diag = true;
                o.public_addr = Some(lb.addr.clone());
                o
            })
            .collect();
        let procs = start_together(opts[..running].to_vec());
        let root = HaRoot { name, lb, opts, procs, _pg: pg };
        for i in 0..running {
            root.lb.wait_state(&proc_name(i), true, Duration::from_secs(20));
        }
        root
    }

    /// Starts declared process `i` (not yet running).
    fn start_next(&mut self) -> &Cluster {
        let i = self.procs.len();
        self.procs.push(Cluster::start(self.opts[i].clone()));
        self.lb.wait_state(&proc_name(i), true, Duration::from_secs(20));
        &self.procs[i]
    }

    /// The tunnel records of `leaf`, by proxy host UUID.
    fn tunnels_of(&self, leaf: &str) -> Vec<String> {
        let v = self.procs[0].tctl(&["get", "tunnel_connections", "--format=json"]).json();
        let mut out: Vec<String> = v
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|c| c["spec"]["cluster_name"] == leaf)
            .map(|c| c["spec"]["proxy_name"].as_str().unwrap_or_default().to_string())
            .collect();
        out.sort();
        out
    }

    /// Waits until `leaf` holds a tunnel to each of the first `n` processes; returns how long.
    fn wait_tunnels(&self, leaf: &str, n: usize, timeout: Duration) -> Duration {
        let t = Instant::now();
        let mut want: Vec<String> = self.procs[..n].iter().map(Cluster::host_id).collect();
        want.sort();
        wait_for(&format!("{leaf} to tunnel to {n} root processes"), timeout, || (self.tunnels_of(leaf) == want).then_some(()));
        t.elapsed()
    }

    /// Waits until every running process carries `clusters` leaf tunnels and `nodes` node tunnels.
    fn wait_gauges(&self, clusters: f64, nodes: f64, timeout: Duration) -> Duration {
        let t = Instant::now();
        wait_for("every root process to carry every tunnel", timeout, || {
            self.procs
                .iter()
                .all(|p| {
                    let m = p.metrics();
                    m.get("teleport_reverse_tunnels{kind=\"cluster\"}") == Some(&clusters)
                        && m.get("teleport_reverse_tunnels{kind=\"node\"}") == Some(&nodes)
                })
                .then_some(())
        });
        t.elapsed()
    }

    /// A user signed in through `addr` (the load balancer or one process).
    fn tsh_at(&self, tag: &str, addr: &str) -> Tsh {
        let mut tsh = Tsh::new(tag);
        tsh.env.push(("SSL_CERT_FILE".into(), self.procs[0].web_ca().display().to_string()));
        let out = tsh.run_stdin(&["login", &format!("--proxy={addr}"), "--user=myuser"], Some(&format!("{PASSWORD}\n")));
        out.ok(&format!("login through {addr}"));
        tsh
    }
}

fn proc_name(i: usize) -> String {
    format!("root-{}", (b'a' + i as u8) as char)
}

/// The guide's trusted_cluster, dialling `addr` (the load balancer).
fn tc_via(root: &str, token: &str, addr: &str) -> String {
    format!(
        "kind: trusted_cluster\nversion: v2\nmetadata:\n  name: {root}\nspec:\n  enabled: true\n  token: {token}\n  tunnel_addr: {addr}\n  web_proxy_addr: {addr}\n  role_map:\n{ACCESS_TO_VISITOR}"
    )
}

/// A leaf (with an in-process node `<tag>-node`) trusting `root` through `addr`.
fn leaf_of(root: &HaRoot, tag: &str, addr: &str, env: Vec<(String, String)>) -> Cluster {
    let mut o = ClusterOpts::new(&format!("leaf-{tag}.example.com"));
    o.insecure = true;
    o.node_name = Some(format!("{tag}-node"));
    o.env = env;
    let leaf = Cluster::start(o);
    leaf.create("visitor.yaml", VISITOR).ok("leaf visitor role");
    let token = root.procs[0].trusted_cluster_token("5m");
    leaf.create("tc.yaml", &tc_via(&root.name, &token, addr)).ok("trusted cluster");
    leaf
}

/// `tsh ssh --cluster=<leaf> visitor@<node> <cmd>`.
fn ssh(tsh: &Tsh, leaf: &Cluster, cmd: &str) -> Out {
    tsh.run(&["ssh", &format!("--cluster={}", leaf.opts.name), &format!("visitor@{}", leaf.node_name()), cmd])
}

/// One probe: when it started and ended (since the loop began), and whether it worked.
#[derive(Debug, Clone)]
struct Probe {
    start: Duration,
    end: Duration,
    ok: bool,
    #[allow(dead_code)] // printed with the failures
    err: String,
}

/// Runs `tsh ssh ... true` from `workers` threads until `length`, calling `at(elapsed)` from
/// the driving thread every 100ms (to kill something mid-loop).
fn probe_loop(tsh: &Tsh, leaf: &Cluster, workers: usize, length: Duration, mut at: impl FnMut(Duration)) -> Vec<Probe> {
    let probes = Arc::new(Mutex::new(Vec::new()));
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..workers {
            let probes = probes.clone();
            s.spawn(move || {
                while t0.elapsed() < length {
                    let start = t0.elapsed();
                    let out = ssh(tsh, leaf, "true");
                    let p = Probe { start, end: t0.elapsed(), ok: out.code == 0, err: out.stderr.trim().to_string() };
                    probes.lock().unwrap().push(p);
                }
            });
        }
        while t0.elapsed() < length {
            at(t0.elapsed());
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let mut v = probes.lock().unwrap().clone();
    v.sort_by_key(|p| p.start);
    v
}

/// The longest time without a probe succeeding (between one success's end and the next's).
fn longest_gap(probes: &[Probe]) -> Duration {
    let mut ends: Vec<Duration> = probes.iter().filter(|p| p.ok).map(|p| p.end).collect();
    ends.sort();
    ends.windows(2).map(|w| w[1] - w[0]).max().unwrap_or_default()
}

#[test]
fn every_leaf_and_tunnel_node_tunnels_to_every_root_process_and_a_new_one_is_found() {
    ensure_unix_user("visitor");
    let mut root = HaRoot::start("mesh", 3, 2);
    root.procs[0].add_user("myuser", "access,editor", "visitor", PASSWORD);
    // A node of the root with no listening port joins through the load balancer.
    let _tnode = NodeProc::join_via(&root.procs[0], &root.lb.addr, "mesh-tnode", true, "env=mesh", &free_ip(&[3022]));
    root.procs[1].wait_node("mesh-tnode");
    let t = Instant::now();
    let leaf = leaf_of(&root, "mesh", &root.lb.addr, vec![]);
    root.wait_tunnels(&leaf.opts.name, 2, Duration::from_secs(10));
    let both = t.elapsed();
    root.wait_gauges(1.0, 1.0, Duration::from_secs(10));
    eprintln!("mesh: the leaf held a tunnel to each of 2 root processes {both:?} after the trust was created");

    // tctl get proxies: the live processes with their addresses; tunnel_connections: one per
    // (proxy, leaf), Teleport's shape.
    let proxies = root.procs[1].tctl(&["get", "proxies", "--format=json"]).json();
    let proxies = proxies.as_array().cloned().unwrap_or_default();
    assert_eq!(proxies.len(), 2, "{proxies:?}");
    for p in &root.procs {
        let rec = proxies.iter().find(|r| r["metadata"]["name"] == p.host_id().as_str()).unwrap_or_else(|| panic!("{proxies:?}"));
        assert_eq!(rec["kind"], "proxy");
        assert_eq!(rec["spec"]["addr"], p.web.as_str());
        assert_eq!(rec["spec"]["peer_addr"], format!("{}:3021", p.ip).as_str());
        assert_eq!(rec["spec"]["public_addrs"][0], root.lb.addr.as_str());
        assert!(rec["metadata"]["expires"].is_string());
    }
    let text = root.procs[0].tctl(&["get", "proxies", "--format=text"]);
    let text = text.ok("tctl get proxies");
    assert!(text.contains("Peer Address") && text.contains("root-a") && text.contains("root-b"), "{text}");
    let conns = root.procs[0].tctl(&["get", "tunnel_connections", "--format=json"]).json();
    for c in conns.as_array().cloned().unwrap_or_default() {
        assert_eq!(c["kind"], "tunnel_connection");
        assert_eq!(c["version"], "v2");
        let proxy = c["spec"]["proxy_name"].as_str().unwrap_or_default();
        assert_eq!(c["metadata"]["name"], format!("{proxy}-{}", leaf.opts.name).as_str());
        assert_eq!(c["spec"]["type"], "proxy");
        assert!(c["spec"]["last_heartbeat"].is_string());
    }

    // Through either process and through the load balancer: the leaf's node and the root's
    // tunnel node.
    let via_a = root.tsh_at("mesh-a", &root.procs[0].web);
    let via_b = root.tsh_at("mesh-b", &root.procs[1].web);
    let via_lb = root.tsh_at("mesh-lb", &root.lb.addr);
    for (tsh, what) in [(&via_a, "root-a"), (&via_b, "root-b"), (&via_lb, "the load balancer")] {
        assert_eq!(ssh(tsh, &leaf, "echo leaf-ok").ok(what), "leaf-ok\n", "through {what}");
        assert_eq!(tsh.run(&["ssh", "visitor@mesh-tnode", "echo node-ok"]).ok(what), "node-ok\n", "through {what}");
        output_when(
            &format!("tsh clusters through {what}: the leaf online"),
            Duration::from_secs(20),
            || tsh.run(&["clusters", "--format=json"]).ok(what).to_string(),
            |c| serde_json::from_str::<serde_json::Value>(c).is_ok_and(|v| v[1]["status"] == "online"),
        );
    }

    // A third process: every agent finds it, without restarts.
    let t = Instant::now();
    root.start_next();
    root.wait_tunnels(&leaf.opts.name, 3, Duration::from_secs(15));
    let leaf_c = t.elapsed();
    root.wait_gauges(1.0, 1.0, Duration::from_secs(15));
    let all_c = t.elapsed();
    eprintln!("mesh: a third root process had the leaf's tunnel {leaf_c:?} and every tunnel {all_c:?} after it started");
    let via_c = root.tsh_at("mesh-c", &root.procs[2].web);
    assert_eq!(ssh(&via_c, &leaf, "echo via-c").ok("root-c"), "via-c\n");
    let proxies = root.procs[2].tctl(&["get", "proxies", "--format=json"]).json();
    assert_eq!(proxies.as_array().map(Vec::len), Some(3), "{proxies}");
}

#[test]
fn kill_9_of_a_root_process_costs_no_leaf_and_the_survivor_serves_every_probe() {
    ensure_unix_user("visitor");
    let mut root = HaRoot::start("kill", 2, 2);
    root.procs[0].add_user("myuser", "access,editor", "visitor", PASSWORD);
    let leaf = leaf_of(&root, "kill", &root.lb.addr, vec![]);
    root.wait_tunnels(&leaf.opts.name, 2, Duration::from_secs(10));
    let via_a = root.tsh_at("kill-a", &root.procs[0].web);
    let via_b = root.tsh_at("kill-b", &root.procs[1].web);
    let via_lb = root.tsh_at("kill-lb", &root.lb.addr);

    // Sessions running through each process when root-b dies.
    let on_b = via_b
        .command(&["ssh", &format!("--cluster={}", leaf.opts.name), &format!("visitor@{}", leaf.node_name()), "echo started; sleep 60"])
        .spawn()
        .expect("session through root-b");
    let on_a = via_a
        .command(&[
            "ssh",
            &format!("--cluster={}", leaf.opts.name),
            &format!("visitor@{}", leaf.node_name()),
            "echo started; sleep 12; echo survived",
        ])
        .spawn()
        .expect("session through root-a");
    std::thread::sleep(Duration::from_secs(2));

    // Directly against the survivor: not one failure.
    let killed = AtomicBool::new(false);
    let procs = Mutex::new(&mut root.procs);
    let probes = probe_loop(&via_a, &leaf, 2, Duration::from_secs(30), |t| {
        if t >= Duration::from_secs(5) && !killed.swap(true, Ordering::SeqCst) {
            procs.lock().unwrap()[1].kill();
        }
    });
    let failures: Vec<&Probe> = probes.iter().filter(|p| !p.ok).collect();
    let rate = probes.len() as f64 / 30.0;
    eprintln!(
        "kill: {} probes through root-a in 30s ({rate:.1}/s) while root-b was killed: {} failed, longest gap {:?}",
        probes.len(),
        failures.len(),
        longest_gap(&probes)
    );
    assert!(rate >= 5.0, "the loop must run at least 5 per second: {rate:.1}");
    assert!(failures.is_empty(), "failures through the surviving process: {failures:?}");

    // The session through root-b ended with a clear error; the one through root-a went on.
    let b_out = finish(on_b, Duration::from_secs(10));
    assert_ne!(b_out.code, 0, "{b_out:?}");
    assert!(b_out.stderr.contains("ERROR:") && b_out.stderr.lines().count() <= 2, "a clear error: {:?}", b_out.stderr);
    eprintln!("kill: the session through root-b ended with: {}", b_out.stderr.trim());
    let a_out = finish(on_a, Duration::from_secs(30));
    assert_eq!(a_out.code, 0, "{a_out:?}");
    assert!(a_out.stdout.contains("survived"), "{a_out:?}");
    // The dead process dropped out of the registry (within three heartbeats: it was killed 25 s
    // ago), and the leaf stayed online.
    let proxies = root.procs[0].tctl(&["get", "proxies", "--format=json"]).json();
    let names: Vec<&str> =
        proxies.as_array().map(|a| a.iter().filter_map(|p| p["metadata"]["name"].as_str()).collect()).unwrap_or_default();
    assert_eq!(names, vec![root.procs[0].host_id().as_str()], "{proxies}");
    let rc = root.procs[0].tctl(&["get", &format!("rc/{}", leaf.opts.name), "--format=json"]).json();
    assert_eq!(rc[0]["status"]["connection"], "online", "{rc}");

    // root-b comes back; the leaf tunnels to it again without a restart.
    let t = Instant::now();
    root.procs[1].start_again();
    root.lb.wait_state("root-b", true, Duration::from_secs(20));
    root.wait_tunnels(&leaf.opts.name, 2, Duration::from_secs(15));
    eprintln!("kill: root-b restarted; the leaf's tunnel to it was back {:?} after the restart", t.elapsed());

    // The same through HAProxy: report failures and the longest gap; none once HAProxy has
    // marked root-b down.
    let killed = AtomicBool::new(false);
    let marked_down: Mutex<Option<Duration>> = Mutex::new(None);
    let lb = &root.lb;
    let procs = Mutex::new(&mut root.procs);
    let probes = probe_loop(&via_lb, &leaf, 2, Duration::from_secs(30), |t| {
        if t >= Duration::from_secs(5) && !killed.swap(true, Ordering::SeqCst) {
            procs.lock().unwrap()[1].kill();
        }
        if killed.load(Ordering::SeqCst) && marked_down.lock().unwrap().is_none() && !lb.is_up("root-b") {
            *marked_down.lock().unwrap() = Some(t);
        }
    });
    let down_at = marked_down.lock().unwrap().expect("haproxy marked root-b down");
    let failures: Vec<&Probe> = probes.iter().filter(|p| !p.ok).collect();
    let late: Vec<&&Probe> = failures.iter().filter(|p| p.start > down_at).collect();
    eprintln!(
        "kill: {} probes through HAProxy in 30s ({:.1}/s), root-b killed at 5s, marked down at {down_at:?}: {} failed ({} after the mark), longest gap {:?}",
        probes.len(),
        probes.len() as f64 / 30.0,
        failures.len(),
        late.len(),
        longest_gap(&probes)
    );
    assert!(late.is_empty(), "failures after HAProxy marked root-b down: {late:?}");
}

#[test]
fn a_graceful_stop_moves_agents_and_lets_running_sessions_finish() {
    ensure_unix_user("visitor");
    let mut root = HaRoot::start("drain", 2, 2);
    root.procs[0].add_user("myuser", "access,editor", "visitor", PASSWORD);
    let leaf = leaf_of(&root, "drain", &root.lb.addr, vec![]);
    root.wait_tunnels(&leaf.opts.name, 2, Duration::from_secs(10));
    let via_b = root.tsh_at("drain-b", &root.procs[1].web);
    let via_lb = root.tsh_at("drain-lb", &root.lb.addr);
    let running = via_b
        .command(&["ssh", &format!("--cluster={}", leaf.opts.name), &format!("visitor@{}", leaf.node_name()), "sleep 4; echo finished"])
        .spawn()
        .expect("a session through root-b");
    std::thread::sleep(Duration::from_secs(1));
    let mark = leaf.log().len();
    let b_web = root.procs[1].web.clone();
    let t = Instant::now();
    root.procs[1].signal(nix::sys::signal::Signal::SIGTERM);
    // root-b leaves the registry, fails its health check, and tells the leaf to move.
    let a_only = vec![root.procs[0].host_id()];
    wait_for("root-b to leave the registry", Duration::from_secs(3), || {
        let v = root.procs[0].tctl(&["get", "proxies", "--format=json"]).json();
        let names: Vec<String> = v
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap_or_default().to_string())
            .collect();
        (names == a_only).then_some(())
    });
    let left = t.elapsed();
    let ready = std::process::Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &format!("http://{}:3000/readyz", root.procs[1].ip)])
        .output()
        .expect("curl");
    assert_eq!(String::from_utf8_lossy(&ready.stdout), "503", "root-b's /readyz while it stops");
    wait_for("the leaf to hear root-b is stopping", Duration::from_secs(3), || {
        leaf.log()[mark..].contains("the proxy is stopping").then_some(())
    });
    // New connections through the load balancer go to root-a meanwhile.
    for _ in 0..5 {
        assert_eq!(
            ssh(&via_lb, &leaf, "echo during").ok("through the load balancer while root-b drains"),
            "during
"
        );
    }
    // The running session finishes; then root-b exits by itself.
    let out = finish(running, Duration::from_secs(20));
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.trim_end().lines().last(), Some("finished"), "{out:?}");
    assert!(root.procs[1].wait_exit(Duration::from_secs(10)), "root-b did not exit after its sessions finished");
    let exited = t.elapsed();
    assert!(root.procs[1].log().contains("every session finished"), "{}", root.procs[1].log());
    // It kept accepting until the load balancer had taken it out (no connection for a second),
    // so nothing it was sent was reset in its accept queue.
    assert!(root.procs[1].log().contains("no longer accepting connections quiet=true"), "{}", root.procs[1].log());
    // The leaf never dialled root-b again.
    std::thread::sleep(Duration::from_secs(3));
    let redials = leaf.log()[mark..].lines().filter(|l| l.contains("tunnel dial") && l.contains(&b_web)).count();
    assert_eq!(redials, 0, "the leaf dialled the stopping process again");
    let b_id = root.procs[1].host_id();
    assert!(!root.tunnels_of(&leaf.opts.name).contains(&b_id), "the leaf tunnelled to the stopped process");
    eprintln!(
        "drain: root-b left the registry {left:?} after SIGTERM, its session finished, and it exited {exited:?} after SIGTERM; no redials"
    );
}

#[test]
fn a_process_without_the_leafs_tunnel_reaches_it_through_a_peer() {
    ensure_unix_user("visitor");
    let root = HaRoot::start("peer", 2, 2);
    root.procs[0].add_user("myuser", "access,editor", "visitor", PASSWORD);
    // The leaf cannot reach root-a (as if a firewall stood between them) and dials root-b.
    let a_id = root.procs[0].host_id();
    let leaf = leaf_of(&root, "peer", &root.procs[1].web, vec![("TELEPORT_UNSTABLE_AGENT_SKIP_PROXIES".into(), a_id.clone())]);
    let b_only = vec![root.procs[1].host_id()];
    wait_for("the leaf's tunnel to root-b", Duration::from_secs(10), || (root.tunnels_of(&leaf.opts.name) == b_only).then_some(()));
    root.procs[1].wait_remote_status(&leaf.opts.name, "online", Duration::from_secs(10));
    // root-a is listed to the leaf, but never gets a tunnel.
    std::thread::sleep(Duration::from_secs(3));
    assert!(!root.tunnels_of(&leaf.opts.name).contains(&a_id), "root-a got a tunnel from the leaf");
    assert!(leaf.log().contains("tunnel dial"), "the leaf's pool ran");

    let via_a = root.tsh_at("peer-a", &root.procs[0].web);
    let t = Instant::now();
    assert_eq!(ssh(&via_a, &leaf, "echo through-a-peer").ok("through root-a"), "through-a-peer\n");
    eprintln!("peer: tsh ssh through root-a, forwarded by root-b, took {:?}", t.elapsed());
    let ls = via_a.run(&["ls", &format!("--cluster={}", leaf.opts.name)]);
    assert!(ls.ok("tsh ls through a peer").contains(&leaf.node_name()), "{}", ls.stdout);
    // The audit of the process the user reached names it, and the peer that forwarded.
    let b_id = root.procs[1].host_id();
    let ev = wait_for("root-a's audit of the forwarded connection", Duration::from_secs(5), || {
        root.procs[0].events().into_iter().find(|e| e["event"] == "session.connect" && e["proxy_peer"] == b_id.as_str())
    });
    assert_eq!(ev["proxy"], a_id.as_str(), "{ev}");
    assert_eq!(ev["user"], "myuser", "{ev}");
    assert_eq!(ev["cluster_name"], leaf.opts.name.as_str(), "{ev}");
    assert!(root.procs[1].log().contains("forwarding a connection for a peer proxy"));
    // A peer's connection is authenticated by its certificate: while one is forwarded it does not
    // hold one of root-b's handshake places (it did, for its whole life).
    let mut live = via_a
        .command(&["ssh", &format!("--cluster={}", leaf.opts.name), &format!("visitor@{}", leaf.node_name()), "sleep 3"])
        .spawn()
        .expect("tsh");
    std::thread::sleep(Duration::from_millis(1500));
    let m = root.procs[1].metrics();
    assert_eq!(m.get("teleport_connections{state=\"handshake\"}").copied(), Some(0.0), "{m:?}");
    let _ = live.wait();

    // A stranger on the peer port: no client certificate, no service.
    let peer_port = format!("{}:3021", root.procs[1].ip);
    let out = std::process::Command::new("curl").args(["-sk", "--max-time", "5", &format!("https://{peer_port}/")]).output().expect("curl");
    assert!(!out.status.success(), "the peer port served a stranger");
    wait_for("root-b to log the refusal", Duration::from_secs(5), || {
        root.procs[1].log().contains("refused a connection on the peer port").then_some(())
    });
}

#[test]
fn restarting_every_root_process_brings_every_agent_back_without_a_herd() {
    ensure_unix_user("visitor");
    let mut root = HaRoot::start("restart", 2, 2);
    let tnode = NodeProc::join_via(&root.procs[0], &root.lb.addr, "restart-tnode", true, "env=restart", &free_ip(&[3022]));
    root.procs[0].wait_node("restart-tnode");
    let leaf1 = leaf_of(&root, "restart1", &root.lb.addr, vec![]);
    let leaf2 = leaf_of(&root, "restart2", &root.lb.addr, vec![]);
    root.wait_tunnels(&leaf1.opts.name, 2, Duration::from_secs(10));
    root.wait_tunnels(&leaf2.opts.name, 2, Duration::from_secs(10));
    root.wait_gauges(2.0, 1.0, Duration::from_secs(10));
    let marks = [leaf1.log().len(), leaf2.log().len(), tnode.log().len()];

    // Every process stops (SIGTERM: the graceful stop), then all start again.
    for p in &mut root.procs {
        p.stop();
    }
    std::thread::sleep(Duration::from_secs(2));
    let t = Instant::now();
    std::thread::scope(|s| {
        for p in root.procs.iter_mut() {
            s.spawn(move || p.start_again());
        }
    });
    root.wait_tunnels(&leaf1.opts.name, 2, Duration::from_secs(30));
    root.wait_tunnels(&leaf2.opts.name, 2, Duration::from_secs(30));
    root.wait_gauges(2.0, 1.0, Duration::from_secs(30));
    let back = t.elapsed();

    // Dials per second of each agent during the outage and the return.
    let mut worst = 0;
    let mut total = 0;
    for (log, mark) in [(leaf1.log(), marks[0]), (leaf2.log(), marks[1]), (tnode.log(), marks[2])] {
        let mut per_second = std::collections::BTreeMap::<String, usize>::new();
        for line in log[mark..].lines().filter(|l| l.contains("tunnel dial")) {
            *per_second.entry(line.chars().take(19).collect()).or_default() += 1;
            total += 1;
        }
        worst = worst.max(per_second.values().copied().max().unwrap_or(0));
    }
    eprintln!(
        "restart: every leaf and the tunnel node were back on both processes {back:?} after they started; {total} dials by 3 agents, at most {worst} by one agent in one second"
    );
    assert!(back <= Duration::from_secs(30));
    assert!(worst <= 4, "an agent dialled {worst} times in one second");
    let via_lb = {
        root.procs[0].add_user("myuser", "access,editor", "visitor", PASSWORD);
        root.tsh_at("restart-lb", &root.lb.addr)
    };
    assert_eq!(ssh(&via_lb, &leaf1, "echo back").ok("after the restart"), "back\n");
}

#[test]
fn a_leaf_of_two_processes_stays_reachable_when_one_dies() {
    ensure_unix_user("visitor");
    let mut ro = ClusterOpts::new("root-haleaf.example.com");
    ro.node = false;
    let root = Cluster::start(ro);
    root.add_user("myuser", "access,editor", "visitor", PASSWORD);
    let pg = PgServer::start();
    let url = pg.url("ha_leaf");
    let name = "leaf-haleaf.example.com";
    let opts: Vec<ClusterOpts> = ["leaf-a", "leaf-b"]
        .into_iter()
        .map(|n| {
            let mut o = ha_opts(name, n, &url);
            // They dial a root with the generated web certificate.
            o.insecure = true;
            o
        })
        .collect();
    let mut leaves = start_together(opts);
    leaves[0].create("visitor.yaml", VISITOR).ok("leaf visitor role");
    let node = NodeProc::join(&leaves[1], "haleaf-node", false, "env=haleaf");
    let token = root.trusted_cluster_token("5m");
    leaves[0].create("tc.yaml", &tc_yaml(&root.opts.name, &token, &root, true, ACCESS_TO_VISITOR)).ok("trust");
    root.wait_remote_status(name, "online", Duration::from_secs(20));
    // Both leaf processes tunnel to the root.
    wait_for("a tunnel from each leaf process", Duration::from_secs(15), || {
        (root.log().matches("tunnel registered").count() >= 2).then_some(())
    });
    let mut tsh = Tsh::new("haleaf");
    tsh.login(&root, "myuser", PASSWORD).ok("login");
    let go = |tsh: &Tsh| tsh.run(&["ssh", &format!("--cluster={name}"), &format!("visitor@{}", node.name), "echo ok"]);
    assert_eq!(go(&tsh).ok("before"), "ok\n");
    leaves[0].kill();
    let t0 = Instant::now();
    let mut results = Vec::new();
    while t0.elapsed() < Duration::from_secs(10) {
        let out = go(&tsh);
        results.push((t0.elapsed(), out.code == 0, out.stderr));
    }
    let failed: Vec<_> = results.iter().filter(|r| !r.1).collect();
    eprintln!("haleaf: {} connections in the 10s after leaf-a was killed, {} failed", results.len(), failed.len());
    assert!(failed.is_empty(), "{failed:?}");
    let rc = root.tctl(&["get", &format!("rc/{name}"), "--format=json"]).json();
    assert_eq!(rc[0]["status"]["connection"], "online", "{rc}");
}

#[test]
fn kubectl_through_a_root_process_without_the_leafs_tunnel_is_forwarded_by_a_peer() {
    ensure_unix_user("visitor");
    let root = HaRoot::start("kpeer", 2, 2);
    root.procs[0].add_user("myuser", "access,editor", "visitor", PASSWORD);
    let api = e2e::kube::KubeApi::start("kpeer");
    // The leaf's Kubernetes cluster, and only root-b has its tunnel.
    let a_id = root.procs[0].host_id();
    let mut o = ClusterOpts::new("leaf-kpeer.example.com");
    o.insecure = true;
    o.node = false;
    o.env = vec![("TELEPORT_UNSTABLE_AGENT_SKIP_PROXIES".into(), a_id.clone())];
    o.sections =
        format!("kubernetes_service:\n  enabled: yes\n  kubeconfig_file: {}\n  kube_cluster_name: kpeer\n", api.kubeconfig().display());
    let leaf = Cluster::start(o);
    let visitor = "kind: role\nversion: v7\nmetadata: {name: visitor}\nspec:\n  allow:\n    logins: [visitor]\n    node_labels: {'*': '*'}\n    kubernetes_labels: {'*': '*'}\n    kubernetes_groups: [viewers]\n";
    leaf.create("visitor.yaml", visitor).ok("leaf role");
    let token = root.procs[0].trusted_cluster_token("5m");
    leaf.create("tc.yaml", &tc_via(&root.name, &token, &root.procs[1].web)).ok("trusted cluster");
    let b_only = vec![root.procs[1].host_id()];
    wait_for("the leaf's tunnel to root-b", Duration::from_secs(10), || (root.tunnels_of(&leaf.opts.name) == b_only).then_some(()));

    let mut via_a = root.tsh_at("kpeer-a", &root.procs[0].web);
    let kc = via_a.home.path().join("kubeconfig");
    via_a.env.push(("KUBECONFIG".into(), kc.display().to_string()));
    via_a.run(&["kube", "login", "--cluster=leaf-kpeer.example.com", "kpeer"]).ok("kube login through root-a");
    let pods = e2e::kube::kubectl(&kc, &["get", "pods"], &[]);
    assert!(pods.ok("kubectl through root-a, forwarded by root-b").contains("web"), "{pods:?}");
    let r = api.requests().into_iter().rev().find(|r| r["path"] == "/api/v1/namespaces/default/pods").expect("the API server was asked");
    assert_eq!(r["impersonate_user"], serde_json::json!(["remote-myuser-root-kpeer.example.com"]));
    assert!(root.procs[1].log().contains("forwarding a connection for a peer proxy"));
}
