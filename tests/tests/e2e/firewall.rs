//! Issue 5: a leaf that really sits behind a firewall. The root and the leaf (with its nodes) run
//! in two network namespaces joined by a veth pair; nftables in the leaf's namespace drops every
//! inbound connection. The leaf dials out, and a root user still reaches the leaf's nodes.

use std::time::Duration;

use e2e::{Cluster, ClusterOpts, Netns, NodeProc, Tsh, ensure_unix_user, run_in};

#[test]
fn a_leaf_behind_a_firewall_is_reached_through_its_outbound_tunnel() {
    ensure_unix_user("visitor");
    // Declared first, dropped last: processes die with their clusters, then the namespaces go.
    let ns = Netns::new(true);
    let (root_ip, leaf_ip) = (ns.root_ip.clone(), ns.leaf_ip.clone());
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
