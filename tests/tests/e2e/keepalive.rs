//! Agents follow the keep-alive of the cluster they dial: a tunnel node and a leaf whose own
//! setting is the product's default (30 s) keep their tunnels, and the sessions through them,
//! in a cluster that wants a ping every second and gives up after three missed (it used to cut
//! them every few seconds: "the connection to the node was lost").

use std::time::{Duration, Instant};

use e2e::*;

/// Ten times a 1 s × 3 offline threshold.
const LONG: &str = "sleep 31; echo survived";

#[test]
fn a_tunnel_node_keeps_its_sessions_at_the_clusters_keep_alive() {
    ensure_unix_user("visitor");
    let mut o = ClusterOpts::new("keepalive-node.example.com");
    o.node = false;
    let c = Cluster::start(o);
    c.add_user("myuser", "access", "visitor", PASSWORD);
    let node = NodeProc::join_tunnel_with_default_keep_alive(&c, "ka-tunnel-node");
    let mut tsh = Tsh::new("keepalive-node");
    tsh.login(&c, "myuser", PASSWORD).ok("login");
    let t = Instant::now();
    let out = tsh.run(&["ssh", "visitor@ka-tunnel-node", LONG]);
    assert_eq!(out.ok("a 31 s command through the node's tunnel"), "survived\n", "{out:?}");
    assert!(t.elapsed() >= Duration::from_secs(31));
    assert!(node.log().contains("following the cluster's keep-alive"), "{}", node.log());
    assert!(!c.log().contains("no heartbeats for"), "the proxy never gave up on the node's tunnel");
    eprintln!("keep-alive: a tunnel node at its default kept a {:?} session in a cluster at 1s x 3", t.elapsed());
}

#[test]
fn a_leaf_keeps_its_tunnel_at_the_roots_keep_alive() {
    let ro = ClusterOpts::new("root-keepalive.example.com");
    let mut lo = ClusterOpts::new("leaf-keepalive.example.com");
    lo.insecure = true;
    lo.node_name = Some("ka-leaf-node".into());
    // The leaf's own keep-alive: the product's default, thirty times the root's.
    lo.keep_alive = "30s".into();
    let p = Pair::start("keepalive", ro, lo);
    p.trust_online();
    let connected = p.leaf.log().matches("tunnel connected").count();
    let t = Instant::now();
    let out = p.ssh("ka-leaf-node", LONG);
    assert_eq!(out.ok("a 31 s command through the leaf's tunnel"), "survived\n", "{out:?}");
    assert_eq!(p.leaf.log().matches("tunnel connected").count(), connected, "the leaf's tunnel never reconnected");
    assert!(!p.root.log().contains("no heartbeats for"), "the root never gave up on the leaf's tunnel");
    p.root.wait_remote_status(p.leaf_name(), "online", Duration::from_secs(5));
    eprintln!("keep-alive: a leaf at 30s kept its tunnel and a {:?} session through a root at 1s x 3", t.elapsed());
}
