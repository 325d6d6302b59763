//! Issue 7, faults: restarts, crashes, dead nodes and cut networks heal without an operator, and
//! a session cut off mid-command ends with a clear error instead of hanging.

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use e2e::{ACCESS_TO_VISITOR, Cluster, ClusterOpts, Netns, NodeProc, Pair, Tsh, VISITOR, pair, tc_yaml, wait_for};

/// Trusts `leaf` (which has the visitor role) to `root` with the guide's role map and waits
/// until it is online.
fn trust(root: &Cluster, leaf: &Cluster) {
    let token = root.trusted_cluster_token("5m");
    leaf.create("tc.yaml", &tc_yaml("root", &token, root, true, ACCESS_TO_VISITOR)).ok("trust");
    root.wait_remote_status(&leaf.opts.name, "online", Duration::from_secs(30));
}

fn ssh_ok(tsh: &Tsh, leaf: &Cluster, what: &str) {
    let out = tsh.run(&["ssh", &format!("--cluster={}", leaf.opts.name), &format!("visitor@{}", leaf.node_name()), "echo alive"]);
    assert_eq!(out.ok(what), "alive\n", "{what}");
}

fn leaf_opts(name: &str) -> ClusterOpts {
    let mut o = ClusterOpts::new(name);
    o.insecure = true;
    o
}

#[test]
fn root_and_leaf_restarts_heal_without_an_operator() {
    let p = pair("restart", true);
    let mut root = p.root;
    let mut leaf = p.leaf;
    let tsh = p.tsh;
    let leaf2 = Cluster::start(leaf_opts("leaf2-restart.example.com"));
    leaf2.create("visitor.yaml", VISITOR).ok("visitor role");
    trust(&root, &leaf);
    trust(&root, &leaf2);
    ssh_ok(&tsh, &leaf, "before");

    // Graceful root restart, then a crash: every leaf comes back, the user's certificate still works.
    for crash in [false, true] {
        if crash {
            root.kill();
            root.start_again();
        } else {
            root.restart();
        }
        let t = Instant::now();
        for l in [&leaf, &leaf2] {
            root.wait_remote_status(&l.opts.name, "online", Duration::from_secs(30));
        }
        eprintln!("root {}: both leaves online after {:?}", if crash { "kill -9" } else { "restart" }, t.elapsed());
        ssh_ok(&tsh, &leaf, "after root restart");
        ssh_ok(&tsh, &leaf2, "second leaf after root restart");
    }

    // Leaf restart and crash: the same.
    for crash in [false, true] {
        if crash {
            leaf.kill();
            leaf.start_again();
        } else {
            leaf.restart();
        }
        root.wait_remote_status(&leaf.opts.name, "online", Duration::from_secs(30));
        wait_for("the leaf's node to register again", Duration::from_secs(20), || {
            let out = tsh.run(&["ls", &format!("--cluster={}", leaf.opts.name)]);
            (out.code == 0 && out.stdout.contains(&leaf.node_name())).then_some(())
        });
        ssh_ok(&tsh, &leaf, "after leaf restart");
    }
    assert!(!root.log().contains("panicked"), "{}", root.log());
    assert!(!leaf.log().contains("panicked"), "{}", leaf.log());
}

/// Polls `tsh ls` until `node` is gone; returns how long that took.
fn gone_from_ls(tsh: &Tsh, args: &[&str], node: &str, since: Instant) -> Duration {
    wait_for(&format!("{node} to leave tsh ls"), Duration::from_secs(20), || {
        let out = tsh.run(args);
        (out.code == 0 && !out.stdout.contains(node)).then(|| since.elapsed())
    })
}

#[test]
fn a_killed_node_leaves_tsh_ls_within_its_ttl() {
    let p = pair("nodettl", false);
    p.trust_online();
    // A direct node in the root, a tunnel node in the leaf; both heartbeat every second, so their
    // records live 3 seconds past the last heartbeat.
    let mut direct = NodeProc::join(&p.root, "ttl-direct", false, "");
    let mut tunnel = NodeProc::join(&p.leaf, "ttl-tunnel", true, "");
    p.tsh.run(&["login", p.root_name()]).ok("refresh");
    let leaf_ls = ["ls".to_string(), format!("--cluster={}", p.leaf_name())];
    let leaf_ls: Vec<&str> = leaf_ls.iter().map(String::as_str).collect();
    assert!(p.tsh.run(&["ls"]).ok("ls").contains("ttl-direct"));
    assert!(p.tsh.run(&leaf_ls).ok("ls leaf").contains("ttl-tunnel"));
    let ttl = Duration::from_secs(3);
    let margin = Duration::from_secs(2);

    direct.kill();
    let took = gone_from_ls(&p.tsh, &["ls"], "ttl-direct", Instant::now());
    assert!(took <= ttl + margin, "root node gone after {took:?}, its TTL is {ttl:?}");
    tunnel.kill();
    let took = gone_from_ls(&p.tsh, &leaf_ls, "ttl-tunnel", Instant::now());
    assert!(took <= ttl + margin, "leaf tunnel node gone after {took:?}, its TTL is {ttl:?}");
    // A dead node is refused with a clear answer, not a hang.
    let out = p.tsh.run(&["ssh", &format!("--cluster={}", p.leaf_name()), "visitor@ttl-tunnel", "true"]);
    out.cannot_connect("dead node", "ttl-tunnel");
}

#[test]
fn a_cut_network_takes_the_leaf_offline_ends_its_sessions_and_heals() {
    // Root and leaf in their own namespaces, joined by a veth pair that the test cuts.
    let ns = Netns::new(true);
    let root = {
        let mut o = ClusterOpts::new("root-cut.example.com");
        o.node = false;
        o.netns = Some(ns.root.clone());
        o.ip = Some(ns.root_ip.clone());
        o
    };
    let leaf = {
        let mut o = ClusterOpts::new("leaf-cut.example.com");
        o.netns = Some(ns.leaf.clone());
        o.ip = Some(ns.leaf_ip.clone());
        o.insecure = true;
        o
    };
    let p = Pair::start("cut", root, leaf);
    p.trust_online();
    let node = p.leaf.node_name();
    assert_eq!(p.ssh(&node, "echo before").ok("ssh before the cut"), "before\n");

    // A session in progress.
    let mut session = p
        .tsh
        .command(&["ssh", &format!("--cluster={}", p.leaf_name()), &format!("visitor@{node}"), "echo started; sleep 120; echo finished"])
        .spawn()
        .expect("start session");
    let mut stdout = BufReader::new(session.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("read");
    assert_eq!(first, "started\n");

    ns.cut();
    let cut_at = Instant::now();
    p.root.wait_remote_status(p.leaf_name(), "offline", Duration::from_secs(15));
    let offline_after = cut_at.elapsed();
    // keep_alive_interval 1s × keep_alive_count_max 3, plus the poll and one tctl run.
    assert!(offline_after <= Duration::from_secs(5), "offline after {offline_after:?}; 3 heartbeats are 3s");

    // The session ends with a clear error, well before its command would have.
    let status = wait_for("the cut session to end", Duration::from_secs(20), || session.try_wait().ok().flatten());
    let ended_after = cut_at.elapsed();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut session.stderr.take().expect("stderr"), &mut stderr).expect("stderr");
    assert_ne!(status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("the connection to the node was lost before the command finished"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    eprintln!("cut: offline after {offline_after:?}, session ended after {ended_after:?}");

    // New sessions get the offline answer at once.
    p.ssh(&node, "true").cannot_connect("ssh while cut", "is offline");

    ns.heal();
    let healed_at = Instant::now();
    p.root.wait_remote_status(p.leaf_name(), "online", Duration::from_secs(30));
    eprintln!("heal: online after {:?}", healed_at.elapsed());
    assert_eq!(p.ssh(&node, "echo after").ok("ssh after the heal"), "after\n");
}
