//! CA rotation across trusted clusters (issue 19, items 1 and 2): the root's user CA in manual
//! phases with `tsh ssh --cluster=leaf` at every phase, rollback, and an emergency rotation
//! while the leaf is offline; the root's host CA in manual phases and the leaf's on a schedule,
//! with every proxy and node renewing its host certificate on its own.

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
    let out = p.root.tctl(&["auth", "rotate", "--type=openssh"]);
    assert!(out.code == 2 && out.stderr.contains("[possible values: user, host, db, jwt]"), "an unknown CA type: {out:?}");
}

/// A cluster's host CA as `c` stores it: keys and rotation.
fn host_ca(c: &Cluster, name: &str) -> serde_json::Value {
    let v = c.tctl(&["get", &format!("cert_authority/host/{name}"), "--format=json"]).json();
    let spec = &v[0]["spec"];
    serde_json::json!({"active": spec["active_keys"]["ssh"], "additional": spec["additional_trusted_keys"]["ssh"], "rotation": spec["rotation"]})
}

/// The SSH key of the host CA of `name` that signs now, as `c` stores it.
fn signing_key(c: &Cluster, name: &str) -> russh::keys::ssh_key::public::KeyData {
    use base64::Engine as _;
    let ca = host_ca(c, name);
    let b64 = ca["active"][0]["public_key"].as_str().expect("an active key");
    let text = base64::engine::general_purpose::STANDARD.decode(b64).expect("base64");
    shared::certs::parse_authorized_key(&text).expect("key").key_data().clone()
}

/// The key that signed the host certificate the SSH server at `ip:port` presents: a russh
/// client that looks at the host certificate and goes no further (stock `ssh-keyscan` waits
/// for the server to speak first, which a port that also serves HTTPS never does).
fn presented_signer(ip: &str, port: u16) -> Option<russh::keys::ssh_key::public::KeyData> {
    use russh::keys::PublicKeyOrCertificate;
    struct Look(std::sync::Arc<std::sync::Mutex<Option<russh::keys::ssh_key::public::KeyData>>>);
    impl russh::client::Handler for Look {
        type Error = russh::Error;
        async fn check_server_key(&mut self, key: &PublicKeyOrCertificate) -> Result<bool, Self::Error> {
            if let (PublicKeyOrCertificate::Certificate(c), Ok(mut seen)) = (key, self.0.lock()) {
                *seen = Some(c.signature_key().clone());
            }
            Ok(false)
        }
    }
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
    let addr = format!("{ip}:{port}");
    let look = Look(seen.clone());
    let _ = rt.block_on(async move {
        tokio::time::timeout(Duration::from_secs(5), russh::client::connect(shared::tuning::client_config(None), addr, look)).await
    });
    seen.lock().ok()?.clone()
}

/// Waits until the server at `ip:port` presents a certificate of the key that signs for
/// `name` now, as `c` has it.
fn wait_presents_signing_key(c: &Cluster, name: &str, ip: &str, port: u16, what: &str) {
    let key = signing_key(c, name);
    let t0 = Instant::now();
    wait_for(what, Duration::from_secs(15), || (presented_signer(ip, port).as_ref() == Some(&key)).then_some(()));
    let _ = writeln!(std::io::stderr(), "{what}: {} ms", t0.elapsed().as_millis());
}

fn tunnels_connected(c: &Cluster) -> usize {
    c.log().matches("tunnel connected").count()
}

#[test]
fn rotating_host_cas_renews_every_host_certificate_and_keeps_the_tunnel() {
    let ro = ClusterOpts::new("root-hrot.example.com");
    let mut lo = ClusterOpts::new("leaf-hrot.example.com");
    lo.insecure = true;
    let mut p = Pair::start("hrot", ro, lo);
    p.trust_online();
    let (root, leaf) = (p.root_name().to_string(), p.leaf_name().to_string());
    let extra = NodeProc::join(&p.leaf, "hrot-extra", false, "");
    p.tsh.run(&["login", &root]).ok("refresh");
    let (root_node, leaf_node) = (p.root.node_name(), p.leaf.node_name());
    let on_root = |t: &Tsh| t.run(&["ssh", &format!("visitor@{root_node}"), "echo ok"]);
    let on_leaf = |t: &Tsh, node: &str| t.run(&["ssh", &format!("--cluster={leaf}"), &format!("visitor@{node}"), "echo ok"]);
    let everywhere = |t: &Tsh, what: &str| {
        assert_eq!(on_root(t).ok(&format!("{what}: root node")), "ok\n");
        assert_eq!(on_leaf(t, &leaf_node).ok(&format!("{what}: leaf node")), "ok\n");
        assert_eq!(on_leaf(t, "hrot-extra").ok(&format!("{what}: the leaf's node process")), "ok\n");
    };
    everywhere(&p.tsh, "before");
    let before = snapshot(&p.tsh, "hrot-before");
    let mut me = snapshot(&p.tsh, "hrot-me");
    let tunnels = tunnels_connected(&p.leaf);
    let synced_host = |what: &str, name: &str, from: &Cluster, to: &Cluster| {
        let t0 = Instant::now();
        wait_for(what, Duration::from_secs(15), || (host_ca(to, name) == host_ca(from, name)).then_some(()));
        let _ = writeln!(std::io::stderr(), "{what}: the other cluster had the host CA {} ms after the change", t0.elapsed().as_millis());
    };

    // The root's host CA, in manual phases.
    let rotate = |args: &[&str]| {
        let mut a = vec!["auth", "rotate", "--type=host", "--manual"];
        a.extend_from_slice(args);
        p.root.tctl(&a)
    };
    let old_key = signing_key(&p.root, &root);
    rotate(&["--phase=init"]).ok("root init");
    synced_host("root init", &root, &p.root, &p.leaf);
    relogin(&p, &mut me);
    everywhere(&me, "root init, new login");
    everywhere(&before, "root init, old profile");
    rotate(&["--phase=update_clients"]).ok("root update_clients");
    synced_host("root update_clients", &root, &p.root, &p.leaf);
    assert_ne!(signing_key(&p.root, &root), old_key, "update_clients: the new key signs");
    assert_eq!(presented_signer(&p.root.ip, 3080), Some(old_key.clone()), "update_clients: servers keep their certificates");
    everywhere(&before, "root update_clients, old profile");

    // update_servers: the root's proxy and node move to the new key on their own.
    rotate(&["--phase=update_servers"]).ok("root update_servers");
    synced_host("root update_servers", &root, &p.root, &p.leaf);
    wait_presents_signing_key(&p.root, &root, &p.root.ip, 3080, "the root's proxy presents a certificate of the new key");
    wait_presents_signing_key(&p.root, &root, &p.root.ip, 3022, "the root's node presents a certificate of the new key");
    everywhere(&me, "root update_servers, a profile that trusts both keys");
    on_root(&before).cannot_connect(
        "a profile from before init does not trust the new key",
        "if the cluster rotated its host CA, run 'tsh login' again",
    );
    rotate(&["--phase=standby"]).ok("root standby");
    synced_host("root standby", &root, &p.root, &p.leaf);
    assert!(host_ca(&p.root, &root)["additional"].is_null(), "standby: the old key is gone");
    everywhere(&me, "root standby");
    relogin(&p, &mut me);
    everywhere(&me, "root standby, new login");
    assert!(p.root.tctl(&["status"]).ok("the admin identity was renewed").contains("host CA"), "status");

    // The leaf's host CA, automatically on a short schedule: its root learns the new key from
    // the tunnel, and its proxy, its in-process node and its node process renew themselves.
    let leaf_old = signing_key(&p.leaf, &leaf);
    let before_leaf = snapshot(&me, "hrot-before-leaf");
    let identity_before = std::fs::read_to_string(extra.dir.path().join("data/node.identity")).expect("node identity");
    p.leaf.tctl(&["auth", "rotate", "--type=host", "--grace-period=9s"]).ok("leaf rotation");
    synced_host("leaf init at the root", &leaf, &p.leaf, &p.root);
    relogin(&p, &mut me);
    let t0 = Instant::now();
    wait_for("the leaf's rotation to finish", Duration::from_secs(30), || {
        (host_ca(&p.leaf, &leaf)["rotation"]["state"] == "standby").then_some(())
    });
    let _ = writeln!(std::io::stderr(), "leaf rotation done {} ms after init", t0.elapsed().as_millis());
    synced_host("leaf standby at the root", &leaf, &p.leaf, &p.root);
    assert_ne!(signing_key(&p.leaf, &leaf), leaf_old, "the leaf has a new key");
    wait_presents_signing_key(&p.leaf, &leaf, &p.leaf.ip, 3022, "the leaf's node presents a certificate of the new key");
    wait_presents_signing_key(&p.leaf, &leaf, &extra.ip, 3022, "the leaf's node process presents a certificate of the new key");
    wait_presents_signing_key(&p.leaf, &leaf, &p.leaf.ip, 3080, "the leaf's proxy presents a certificate of the new key");
    everywhere(&me, "leaf standby, a profile from during the rotation");
    on_leaf(&before_leaf, &leaf_node).cannot_connect(
        "a profile from before the leaf's rotation does not trust its new key",
        &format!("node {leaf_node} presented a host certificate that no host CA of cluster \"{leaf}\" in your profile signed"),
    );
    relogin(&p, &mut me);
    everywhere(&me, "leaf standby, new login");
    let identity_after = std::fs::read_to_string(extra.dir.path().join("data/node.identity")).expect("node identity");
    assert_ne!(identity_before, identity_after, "the node process saved its renewed identity");
    assert!(extra.log().contains("renewed the node's host certificates"), "{}", extra.log());

    // No tunnel dropped for any of it; a new one is accepted with the renewed certificates.
    assert_eq!(tunnels_connected(&p.leaf), tunnels, "no tunnel reconnected during the rotations");
    p.leaf.stop();
    p.leaf.start_again();
    p.root.wait_remote_status(&leaf, "online", Duration::from_secs(30));
    p.leaf.wait_node("hrot-extra");
    everywhere(&me, "after the leaf restarted: a new tunnel, certificates of the leaf's new key");

    // Without --type, both of the root's CAs at once; with --grace-period=0, an emergency: old
    // certificates stop now, a new login works everywhere at once.
    let (user_before, host_before) = (user_ca(&p.root, &root), signing_key(&p.root, &root));
    p.root.tctl(&["auth", "rotate", "--grace-period=0"]).ok("emergency rotation of both CAs");
    // The admin identity tctl uses is renewed by the daemon right after the rotation: wait for
    // it rather than read with the old one.
    wait_for("tctl to work with the renewed admin identity", Duration::from_secs(15), || {
        (p.root.tctl(&["get", &format!("cert_authority/user/{root}"), "--format=json"]).code == 0).then_some(())
    });
    let user_after = user_ca(&p.root, &root);
    assert!(user_after["active"] != user_before["active"] && user_after["rotation"]["state"] == "standby", "{user_after}");
    assert_ne!(signing_key(&p.root, &root), host_before, "the host CA has a new key too");
    assert_ne!(on_root(&me).code, 0, "certificates of the old keys stop at once");
    synced_host("emergency at the leaf", &root, &p.root, &p.leaf);
    wait_presents_signing_key(
        &p.root,
        &root,
        &p.root.ip,
        3080,
        "after the emergency, the root's proxy presents a certificate of the new key",
    );
    wait_presents_signing_key(
        &p.root,
        &root,
        &p.root.ip,
        3022,
        "after the emergency, the root's node presents a certificate of the new key",
    );
    relogin(&p, &mut me);
    // The leaf's node process hears of the root's new user CA through its bundle's long-poll,
    // after the leaf's auth stored it: wait for that, do not sample it once.
    wait_for("the leaf's node process to trust the root's new user CA", Duration::from_secs(15), || {
        (on_leaf(&me, "hrot-extra").code == 0).then_some(())
    });
    everywhere(&me, "after the emergency, a new login");
}
