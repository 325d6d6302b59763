//! The guide's troubleshooting section, mistake by mistake (issue 18, item 4): each common
//! mistake gives a message naming the cause and the fix on the command that failed, and the
//! debug log (every test cluster runs with `severity: DEBUG`) shows the step that failed.
//! `tctl status` shows each tunnel's state on the leaf and on the root.

use std::time::Duration;

use e2e::*;

fn nothing_mapped() -> &'static str {
    "    - remote: \"nobody\"\n      local: [\"visitor\"]\n"
}

#[test]
fn each_common_mistake_names_its_cause_and_fix() {
    let mut ro = ClusterOpts::new("root-ts.example.com");
    ro.node = false;
    let mut lo = ClusterOpts::new("leaf-ts.example.com");
    lo.insecure = true;
    let p = Pair::start("ts", ro, lo);
    let mut lo2 = ClusterOpts::new("leaf2-ts.example.com");
    lo2.insecure = true;
    let leaf2 = Cluster::start(lo2);
    leaf2.create("visitor.yaml", VISITOR).ok("leaf2 visitor role");
    let root_web = p.root.web.clone();

    // The debug log starts with the configuration and the listeners.
    let log = p.leaf.log();
    assert!(log.contains("configuration loaded") && log.contains("data_dir="), "{log}");
    assert!(log.contains("listening") && log.contains("proxy_service.web_listen_addr"), "{log}");

    // A wrong token, then an expired one: the leaf's command says what to do; the root's log
    // says which it was.
    let out = p.leaf.create("bad.yaml", &tc_yaml("r", "0123456789abcdef0123456789abcdef", &p.root, true, ACCESS_TO_VISITOR));
    out.fails_with("wrong token", "the cluster token has been rejected");
    assert!(out.stderr.contains("tctl tokens add --type=trusted_cluster"), "{}", out.stderr);
    let token = p.root.trusted_cluster_token("1s");
    std::thread::sleep(Duration::from_millis(2100));
    let out = p.leaf.create("expired.yaml", &tc_yaml("r", &token, &p.root, true, ACCESS_TO_VISITOR));
    out.fails_with("expired token", "the token is wrong, expired or already used");
    let root_log = p.root.log();
    assert!(root_log.contains("invalid cluster token") && root_log.contains("is not found or has expired"), "{root_log}");
    let log = p.leaf.log();
    assert!(log.contains("asking the root cluster to validate the join token") && log.contains("the trust handshake failed"), "{log}");

    // web_proxy_addr that nothing answers on.
    let token = p.root.trusted_cluster_token("5m");
    let tc = tc_yaml("r", &token, &p.root, true, ACCESS_TO_VISITOR);
    let out = p.leaf.create("w.yaml", &tc.replace(&format!("web_proxy_addr: {root_web}"), "web_proxy_addr: 127.0.0.1:9"));
    out.fails_with("unreachable web_proxy_addr", "cannot reach the root cluster at https://127.0.0.1:9");
    assert!(out.stderr.contains("connection refused") && out.stderr.contains("check web_proxy_addr"), "{}", out.stderr);
    assert!(p.leaf.log().contains("web_proxy_addr=127.0.0.1:9 error="), "the failed dial is in the debug log");
    assert!(p.leaf.tctl(&["get", "trusted_cluster"]).stdout.trim().is_empty(), "nothing was created");

    // A root whose web certificate the leaf does not trust, without --insecure.
    let mut so = ClusterOpts::new("strict-ts.example.com");
    so.node = false;
    let strict = Cluster::start(so);
    strict.create("visitor.yaml", VISITOR).ok("visitor");
    let out = strict.create("tc.yaml", &tc_yaml("r", &token, &p.root, true, ACCESS_TO_VISITOR));
    out.fails_with("untrusted web certificate", "the trusted cluster uses misconfigured HTTP/TLS certificate.");
    assert!(out.stderr.contains("https_keypairs") && out.stderr.contains("--insecure"), "{}", out.stderr);
    assert!(strict.log().contains("root proxy TLS certificate is not trusted"), "{}", strict.log());

    // A tunnel_addr that nothing answers on: the trust is made, with a warning, and tctl
    // status on the leaf shows the failing tunnel, its last error and the next retry.
    let leaf2_name = leaf2.opts.name.clone();
    let out = leaf2.create("t.yaml", &tc.replace(&format!("tunnel_addr: {root_web}"), "tunnel_addr: 127.0.0.1:9"));
    out.ok("trust with a wrong tunnel_addr");
    assert!(out.stderr.contains("WARNING: cannot reach tunnel_addr 127.0.0.1:9"), "{}", out.stderr);
    let status = wait_for("tctl status", Duration::from_secs(20), || {
        let s = leaf2.tctl(&["status"]).ok("tctl status").to_string();
        s.contains("last error").then_some(s)
    });
    assert!(status.contains("root-ts.example.com  connecting to tunnel_addr 127.0.0.1:9, next retry in"), "{status}");
    assert!(
        status.contains("connection refused") && status.contains("fix: check tunnel_addr in trusted_cluster root-ts.example.com"),
        "{status}"
    );
    let log = leaf2.log();
    assert!(log.contains("tunnel dial") && log.contains("addr=127.0.0.1:9"), "each dial is logged: {log}");
    assert!(log.contains("tunnel connection failed") && log.contains("retry_in="), "failures with the next retry: {log}");
    // Fixed: the tunnel comes up and both ends say so.
    leaf2.tctl(&["rm", "trusted_cluster/root-ts.example.com"]).ok("rm the wrong trust");
    let token = p.root.trusted_cluster_token("5m");
    leaf2.create("tc.yaml", &tc_yaml("r", &token, &p.root, true, ACCESS_TO_VISITOR)).ok("the right trust");
    p.root.wait_remote_status(&leaf2_name, "online", Duration::from_secs(30));
    let status = wait_for("tctl status", Duration::from_secs(20), || {
        let s = leaf2.tctl(&["status"]).ok("tctl status").to_string();
        s.contains("connected to 1 proxy").then_some(s)
    });
    assert!(status.contains("root-ts.example.com  connected to 1 proxy") && status.contains("since"), "{status}");
    let status = wait_for("tctl status", Duration::from_secs(20), || {
        let s = p.root.tctl(&["status"]).ok("root tctl status").to_string();
        (s.contains("tunnel to proxy") && s.contains(&format!("  {leaf2_name}  online, last heartbeat"))).then_some(s)
    });
    assert!(status.contains("Leaf clusters (tunnels to this cluster's proxies):"), "{status}");
    assert!(status.contains(&format!("  {leaf2_name}  online, last heartbeat")) && status.contains("    tunnel to proxy "), "{status}");

    // A role map that maps nothing: the leaf is online, but refuses; tsh says where to look.
    let token = p.root.trusted_cluster_token("5m");
    p.leaf.create("n.yaml", &tc_yaml("r", &token, &p.root, true, nothing_mapped())).ok("a trust that maps nothing");
    p.root.wait_remote_status(p.leaf_name(), "online", Duration::from_secs(30));
    p.tsh.run(&["login", p.root_name()]).ok("refresh");
    let leaf = p.leaf_name().to_string();
    let out = p.tsh.run(&["ls", &format!("--cluster={leaf}")]);
    out.fails_with("nothing mapped: ls", "no roles mapped for remote user \"myuser\"");
    assert!(out.stderr.contains("add a role_map entry") && out.stderr.contains("tsh access explain"), "{}", out.stderr);
    let node = p.leaf.node_name();
    let out = p.ssh(&node, "true");
    out.cannot_connect("nothing mapped: ssh", &format!("access denied to visitor connecting to {node}"));
    assert!(out.stderr.contains(&format!("tsh access explain --cluster={leaf} visitor@{node}")), "{}", out.stderr);
    let out = p.tsh.run(&["access", "explain", &format!("--cluster={leaf}"), &format!("visitor@{node}")]);
    assert!(
        out.code == 1 && out.stdout.contains("[FAIL] role map") && out.stdout.contains("add a role_map entry for one of [access, editor]"),
        "{out:?}"
    );
    let log = p.leaf.log();
    assert!(log.contains("login denied") && log.contains("no roles mapped for user with remote roles [access editor]"), "{log}");
    assert!(log.contains("API caller refused"), "the API's refusal is logged with its reason: {log}");

    // A login missing from the user's traits: tsh knows before asking anyone.
    let node2 = leaf2.node_name();
    let out = p.tsh.run(&["ssh", &format!("--cluster={leaf2_name}"), &format!("root@{node2}"), "true"]);
    out.cannot_connect("login not in traits", &format!("access denied to root connecting to {node2}"));
    assert!(
        out.stderr.contains("\"root\" is not among your certificate's logins [visitor]") && out.stderr.contains("tsh login"),
        "{}",
        out.stderr
    );
    let log = leaf2.log();
    assert!(log.contains("the certificate does not allow login \"root\"; add it to the user's logins on their cluster"), "{log}");
    // Nothing secret in any debug log: no join token, wrong or right.
    for (who, l) in [("root", p.root.log()), ("leaf", p.leaf.log()), ("leaf2", leaf2.log()), ("strict", strict.log())] {
        assert!(!l.contains("0123456789abcdef0123456789abcdef") && !l.contains(&token), "{who}'s log holds a token");
    }
    // And the right login works through the same tunnel.
    let out = p.tsh.run(&["ssh", &format!("--cluster={leaf2_name}"), &format!("visitor@{node2}"), "echo fine"]);
    assert_eq!(out.ok("the right login"), "fine\n");
}
