//! Issue 5: a leaf that really sits behind a firewall. The root and the leaf (with its nodes) run
//! in two network namespaces joined by a veth pair; nftables in the leaf's namespace drops every
//! inbound connection. The leaf dials out, and a root user still reaches the leaf's nodes.

use std::process::Command;
use std::time::Duration;

use e2e::{Cluster, ClusterOpts, NodeProc, Tsh, ensure_unix_user, run_in};

/// Two namespaces and a veth pair; deleted (with every process inside) on drop.
struct Netns {
    root: String,
    leaf: String,
}

fn sh(cmd: &str) -> std::process::Output {
    Command::new("/bin/sh").arg("-c").arg(cmd).output().expect("sh")
}

#[track_caller]
fn must(cmd: &str) {
    let o = sh(cmd);
    assert!(o.status.success(), "`{cmd}` failed: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
}

impl Netns {
    fn new(tag: &str, root_ip: &str, leaf_ip: &str) -> Netns {
        assert!(sh("command -v ip && command -v nft").status.success(), "this test needs iproute2 and nftables (.ci/run installs them)");
        let n = Netns { root: format!("tpr{tag}"), leaf: format!("tpl{tag}") };
        must(&format!("ip netns add {}", n.root));
        must(&format!("ip netns add {}", n.leaf));
        must(&format!("ip link add {tag}a netns {} type veth peer name {tag}b netns {}", n.root, n.leaf));
        must(&format!(
            "ip -n {} addr add {root_ip}/24 dev {tag}a && ip -n {} link set {tag}a up && ip -n {} link set lo up",
            n.root, n.root, n.root
        ));
        must(&format!(
            "ip -n {} addr add {leaf_ip}/24 dev {tag}b && ip -n {} link set {tag}b up && ip -n {} link set lo up",
            n.leaf, n.leaf, n.leaf
        ));
        // The leaf's firewall: nothing gets in unless the leaf started it.
        must(&format!(
            "ip netns exec {} nft -f - <<'EOF'\ntable inet leaf_firewall {{\n  chain input {{\n    type filter hook input priority 0; policy drop;\n    iif lo accept\n    ct state established,related accept\n  }}\n}}\nEOF",
            n.leaf
        ));
        n
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for ns in [&self.root, &self.leaf] {
            let _ = sh(&format!("for p in $(ip netns pids {ns} 2>/dev/null); do kill -9 $p; done; ip netns del {ns}"));
        }
    }
}

#[test]
fn a_leaf_behind_a_firewall_is_reached_through_its_outbound_tunnel() {
    ensure_unix_user("visitor");
    let tag = shared::certs::random_hex(3);
    let b = shared::certs::random_bytes(2);
    let net = format!("10.{}.{}", 200 + b[0] % 50, b[1]);
    let (root_ip, leaf_ip) = (format!("{net}.1"), format!("{net}.2"));
    // Declared first, dropped last: processes die with their clusters, then the namespaces go.
    let ns = Netns::new(&tag, &root_ip, &leaf_ip);
    let root = Cluster::start({
        let mut o = ClusterOpts::new("root-fw.example.com");
        o.node = false;
        o.netns = Some(ns.root.clone());
        o.ip = Some(root_ip.clone());
        o
    });
    let leaf = Cluster::start({
        let mut o = ClusterOpts::new("leaf-fw.example.com");
        o.netns = Some(ns.leaf.clone());
        o.ip = Some(leaf_ip.clone());
        o.node_name = Some("fw-direct".into());
        o.env = vec![("SSL_CERT_FILE".into(), root.web_ca().display().to_string())];
        o
    });
    let _tunnel_node = NodeProc::join(&leaf, "fw-tunnel", true, "");

    // From the root's side, the leaf's ports are closed.
    for port in [3080, 3022] {
        let probe = run_in(
            Some(&ns.root),
            std::path::Path::new("/bin/bash"),
            &["-c", &format!("timeout 3 bash -c '</dev/tcp/{leaf_ip}/{port}'")],
            &[],
            None,
            Duration::from_secs(10),
        );
        assert_ne!(probe.code, 0, "{leaf_ip}:{port} must not be reachable from the root side: {probe:?}");
    }

    // Trust, from the leaf, as the guide does it.
    leaf.create(
        "visitor.yaml",
        "kind: role\nversion: v5\nmetadata: {name: visitor}\nspec:\n  allow:\n    logins: [visitor]\n    node_labels: {'*': '*'}\n",
    )
    .ok("visitor role");
    root.add_user("myuser", "access", "visitor", "firewall-pass-1");
    let token = root.trusted_cluster_token("5m");
    let tc = format!(
        "kind: trusted_cluster\nversion: v2\nmetadata:\n  name: {r}\nspec:\n  enabled: true\n  token: {token}\n  tunnel_addr: {w}\n  web_proxy_addr: {w}\n  role_map:\n    - remote: \"access\"\n      local: [\"visitor\"]\n",
        r = root.opts.name,
        w = root.web
    );
    leaf.create("tc.yaml", &tc).ok("trusted cluster from behind the firewall");
    root.wait_remote_status(&leaf.opts.name, "online", Duration::from_secs(20));

    // A root user, on the root's side, reaches both leaf nodes.
    let mut tsh = Tsh::new("fw");
    tsh.netns = Some(ns.root.clone());
    tsh.login(&root, "myuser", "firewall-pass-1").ok("login");
    let ls = tsh.run(&["ls", &format!("--cluster={}", leaf.opts.name)]).ok("ls through the tunnel").to_string();
    assert!(ls.contains("fw-direct") && ls.contains("fw-tunnel"), "{ls}");
    for node in ["fw-direct", "fw-tunnel"] {
        let out = tsh.run(&["ssh", &format!("--cluster={}", leaf.opts.name), &format!("visitor@{node}"), "pwd"]);
        assert_eq!(out.ok("ssh through the firewall"), "/home/visitor\n", "{node}");
    }
    // The firewall is still closed.
    let probe = run_in(
        Some(&ns.root),
        std::path::Path::new("/bin/bash"),
        &["-c", &format!("timeout 3 bash -c '</dev/tcp/{leaf_ip}/3080'")],
        &[],
        None,
        Duration::from_secs(10),
    );
    assert_ne!(probe.code, 0, "still closed after the trust: {probe:?}");
}
