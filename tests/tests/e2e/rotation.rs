//! CA rotation across trusted clusters (issue 19, items 1 and 2): the root's user CA in manual
//! phases with `tsh ssh --cluster=leaf` at every phase, rollback, and an emergency rotation
//! while the leaf is offline.

use std::io::Write;
use std::time::{Duration, Instant};

use e2e::*;

/// A copy of `t`'s profile: the certificates it holds now.
fn snapshot(t: &Tsh, tag: &str) -> Tsh {
    let mut copy = Tsh::new(tag);
    let st = std::process::Command::new("cp").arg("-a").arg(format!("{}/.", t.home.path().display())).arg(copy.home.path()).status();
    assert!(st.is_ok_and(|s| s.success()), "copy the profile");
    copy.env = t.env.clone();
    copy
}

/// The user CA of `root` as `c` stores it: its keys and rotation.
fn user_ca(c: &Cluster, root: &str) -> serde_json::Value {
    let v = c.tctl(&["get", &format!("cert_authority/user/{root}"), "--format=json"]).json();
    let spec = &v[0]["spec"];
    serde_json::json!({"active": spec["active_keys"]["ssh"], "additional": spec["additional_trusted_keys"]["ssh"], "rotation": spec["rotation"]})
}

fn relogin(p: &Pair, t: &mut Tsh) {
    t.login(&p.root, "myuser", PASSWORD).ok("login");
}

fn rotate(p: &Pair, args: &[&str]) -> Out {
    let mut a = vec!["auth", "rotate", "--type=user"];
    a.extend_from_slice(args);
    p.root.tctl(&a)
}

/// The leaf has the root's user CA as the root has it (keys and rotation), within seconds.
fn synced(p: &Pair, what: &str) {
    let root = p.root_name();
    let t0 = Instant::now();
    wait_for(what, Duration::from_secs(15), || (user_ca(&p.leaf, root) == user_ca(&p.root, root)).then_some(()));
    let _ = writeln!(std::io::stderr(), "{what}: the leaf had the root's user CA {} ms after the change", t0.elapsed().as_millis());
}

#[test]
fn rotating_the_root_user_ca_keeps_every_leaf_working_and_drops_old_certificates() {
    let mut ro = ClusterOpts::new("root-rot.example.com");
    ro.node = false;
    let mut lo = ClusterOpts::new("leaf-rot.example.com");
    lo.insecure = true;
    let mut p = Pair::start("rot", ro, lo);
    p.trust_online();
    p.tsh.run(&["login", p.root_name()]).ok("refresh");
    let (root, node) = (p.root_name().to_string(), p.leaf.node_name());
    let leaf = p.leaf_name().to_string();
    let ssh = |t: &Tsh| t.run(&["ssh", &format!("--cluster={leaf}"), &format!("visitor@{node}"), "echo ok"]);
    assert_eq!(ssh(&p.tsh).ok("before"), "ok\n");
    let before = snapshot(&p.tsh, "rot-before");
    let mut me = snapshot(&p.tsh, "rot-me");

    // init: the new key is trusted everywhere; the old one still signs.
    let out = rotate(&p, &["--manual", "--phase=init"]);
    assert_eq!(out.ok("init"), "Updated rotation phase to \"init\". To check status use 'tctl status'\n");
    synced(&p, "init");
    let status = p.root.tctl(&["status"]).ok("status").to_string();
    assert!(status.contains("rotation in progress: phase init, mode manual, grace period 30h0m0s"), "{status}");
    assert!(status.contains("CA pin       sha256:"), "{status}");
    assert_eq!(user_ca(&p.root, &root)["additional"].as_array().map(Vec::len), Some(1), "init holds both keys");
    relogin(&p, &mut me);
    assert_eq!(ssh(&me).ok("init, fresh certificate"), "ok\n");
    assert_eq!(ssh(&before).ok("init, old certificate"), "ok\n");

    // update_clients: the new key signs; both work.
    rotate(&p, &["--manual", "--phase=update_clients"]).ok("update_clients");
    synced(&p, "update_clients");
    relogin(&p, &mut me);
    let signed_by_new = snapshot(&me, "rot-new");
    assert_eq!(ssh(&me).ok("update_clients, new certificate"), "ok\n");
    assert_eq!(ssh(&before).ok("update_clients, old certificate"), "ok\n");
    rotate(&p, &["--manual", "--phase=init"]).fails_with("out of order", "can not rotate the user CA to phase \"init\"");

    // update_servers: nothing changes for users.
    rotate(&p, &["--manual", "--phase=update_servers"]).ok("update_servers");
    synced(&p, "update_servers");
    assert_eq!(ssh(&before).ok("update_servers, old certificate"), "ok\n");

    // standby: the old key is gone, at the root and on the leaf's node.
    rotate(&p, &["--manual", "--phase=standby"]).ok("standby");
    synced(&p, "standby");
    let ca = user_ca(&p.root, &root);
    assert!(ca["additional"].is_null() && ca["rotation"]["state"] == "standby" && ca["rotation"]["last_rotated"].is_string(), "{ca}");
    assert!(p.root.tctl(&["status"]).ok("status").contains("user CA"), "status");
    assert!(p.root.tctl(&["status"]).stdout.contains("rotated "), "{}", p.root.tctl(&["status"]).stdout);
    assert_eq!(ssh(&me).ok("standby, new certificate"), "ok\n");
    assert_ne!(ssh(&before).code, 0, "standby: the old certificate is refused");
    let leaf_ip = p.leaf.ip.clone();
    wait_for("the leaf's node refuses the old certificate", Duration::from_secs(10), || {
        (before.openssh_direct(&p.root.ip, "visitor", &leaf_ip, "true").code == 255).then_some(())
    });
    assert_eq!(
        me.openssh_direct(&p.root.ip, "visitor", &leaf_ip, "echo direct").ok("new certificate, straight to the leaf's node"),
        "direct\n"
    );

    // Rollback from update_clients: certificates of the abandoned key work until standby.
    rotate(&p, &["--manual", "--phase=init"]).ok("init again");
    rotate(&p, &["--manual", "--phase=update_clients"]).ok("update_clients again");
    synced(&p, "second update_clients");
    let current = snapshot(&me, "rot-current");
    relogin(&p, &mut me);
    let abandoned = snapshot(&me, "rot-abandoned");
    assert_eq!(ssh(&abandoned).ok("a certificate of the key about to be abandoned"), "ok\n");
    rotate(&p, &["--manual", "--phase=rollback"]).ok("rollback");
    synced(&p, "rollback");
    assert_eq!(ssh(&abandoned).ok("rollback: still trusted"), "ok\n");
    rotate(&p, &["--manual", "--phase=standby"]).ok("rollback done");
    synced(&p, "after rollback");
    assert_ne!(ssh(&abandoned).code, 0, "after the rollback, the abandoned key's certificate is refused");
    assert_eq!(ssh(&current).ok("the kept key's certificate works"), "ok\n");
    relogin(&p, &mut me);
    assert_eq!(ssh(&me).ok("new logins sign with the kept key"), "ok\n");
    drop(signed_by_new);

    // An emergency rotation (grace period 0) while the leaf is offline: old certificates stop
    // at once at the root; the leaf catches up when it is back, and its tunnel comes up.
    p.leaf.stop();
    let out = rotate(&p, &["--grace-period=0"]);
    assert_eq!(out.ok("emergency"), "Initiated certificate authority rotation. To check status use 'tctl status'\n");
    let ca = user_ca(&p.root, &root);
    assert!(ca["additional"].is_null() && ca["rotation"]["state"] == "standby", "{ca}");
    assert_ne!(ssh(&current).code, 0, "the old certificate is refused at once");
    p.leaf.start_again();
    p.root.wait_remote_status(p.leaf_name(), "online", Duration::from_secs(30));
    synced(&p, "the leaf back after the emergency");
    relogin(&p, &mut me);
    assert_eq!(ssh(&me).ok("after the emergency, through the leaf that was offline"), "ok\n");
    rotate(&p, &["--manual", "--phase=update_clients"])
        .fails_with("no rotation in progress", "can not rotate the user CA to phase \"update_clients\" from phase \"standby\"");
    p.root
        .tctl(&["auth", "rotate", "--type=host", "--manual", "--phase=init"])
        .fails_with("host CA", "rotating the host CA is not implemented yet");
}
