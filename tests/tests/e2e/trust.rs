//! Issue 4: trusted clusters, mirroring Teleport's integration scenarios (reference §9.1) and
//! the negatives the issue lists.

use std::time::Duration;

use e2e::{ACCESS_TO_VISITOR, Cluster, ClusterOpts, NodeProc, PASSWORD, Tsh, VISITOR, output_when, pair, tc_yaml, wait_for};

#[test]
fn trusted_clusters_lifecycle_create_use_delete_recreate() {
    let p = pair("life", true);
    let out = p.trust(true, ACCESS_TO_VISITOR);
    assert_eq!(out.ok("create tc").trim(), format!("trusted cluster \"{}\" has been created", p.root_name()));
    assert!(
        out.stderr.contains(&format!(
            "WARNING: trusted cluster \"rootcluster.example.com\" resource has been renamed to match remote cluster name \"{}\"",
            p.root_name()
        )),
        "{}",
        out.stderr
    );
    p.root.wait_remote_status(p.leaf_name(), "online", Duration::from_secs(20));
    let online = format!("  name: {}\nstatus:\n  connection: online\n  last_heartbeat: ", p.leaf_name());
    let rc = output_when(
        "tctl get rc: the leaf online",
        Duration::from_secs(20),
        || p.root.tctl(&["get", "rc"]).ok("get rc").to_string(),
        |rc| rc.contains(&online),
    );
    assert!(rc.starts_with("kind: remote_cluster\nmetadata:\n  id: "), "{rc}");

    let leaf_online = |c: &str| c.lines().any(|l| l.starts_with(p.leaf_name()) && l.contains(" online leaf "));
    let clusters = output_when(
        "tsh clusters: the leaf online",
        Duration::from_secs(20),
        || p.tsh.run(&["clusters"]).ok("tsh clusters").to_string(),
        leaf_online,
    );
    assert!(clusters.starts_with("Cluster Name"), "{clusters}");
    assert!(
        clusters.lines().any(|l| l.starts_with(p.root_name()) && l.contains(" online root ") && l.trim_end().ends_with('*')),
        "{clusters}"
    );
    let json = output_when(
        "tsh clusters -f json: the leaf online",
        Duration::from_secs(20),
        || p.tsh.run(&["clusters", "-f", "json"]).ok("json").to_string(),
        |j| serde_json::from_str::<serde_json::Value>(j).is_ok_and(|v| v[1]["status"] == "online"),
    );
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        json[1],
        serde_json::json!({"cluster_name": p.leaf_name(), "status": "online", "cluster_type": "leaf", "labels": null, "selected": false})
    );

    let node = p.leaf.node_name();
    let ls = p.tsh.run(&["ls", &format!("--cluster={}", p.leaf_name())]).ok("tsh ls --cluster").to_string();
    assert!(ls.contains(&node), "{ls}");
    assert_eq!(p.ssh(&node, "pwd").ok("ssh to leaf node"), "/home/visitor\n");
    // tsh login <leaf>, then plain tsh ssh.
    let st = p.tsh.run(&["login", p.leaf_name()]).ok("tsh login leaf").to_string();
    assert!(st.contains(&format!("  Cluster:            {}\n", p.leaf_name())), "{st}");
    assert!(st.contains("  Roles:              access, editor\n"), "roles shown are the root roles: {st}");
    assert_eq!(p.tsh.run(&["ssh", &format!("visitor@{node}"), "id -un"]).ok("ssh after login leaf"), "visitor\n");
    p.tsh.run(&["login", p.root_name()]).ok("back to root");

    // Removing the remote cluster on the root alone drops the tunnel within 5 seconds, and the
    // leaf's retries are refused (its CA is gone from the root).
    let rm_rc = p.root.tctl(&["rm", &format!("rc/{}", p.leaf_name())]);
    assert_eq!(rm_rc.ok("rm rc").trim(), format!("remote cluster \"{}\" has been deleted", p.leaf_name()));
    let t0 = std::time::Instant::now();
    wait_for("the root to close the leaf's tunnel", Duration::from_secs(5), || {
        p.root.log().contains("remote cluster removed; closing its tunnel").then_some(())
    });
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert!(!p.tsh.run(&["clusters"]).ok("clusters").contains(p.leaf_name()));
    p.ssh(&node, "true").cannot_connect("ssh after rc removal", "not found");
    wait_for("the leaf's reconnect to be refused", Duration::from_secs(15), || {
        p.root.log().contains("is not a trusted leaf of this cluster").then_some(())
    });
    // Then the leaf side (guide "Remove a trusted leaf cluster").
    let rm_tc = p.leaf.tctl(&["rm", &format!("trusted_cluster/{}", p.root_name())]);
    assert_eq!(rm_tc.ok("rm tc").trim(), format!("trusted cluster \"{}\" has been deleted", p.root_name()));
    p.ssh(&node, "true").cannot_connect("ssh after removal", "not found");
    let leaf_cas = p.leaf.tctl(&["get", "cas", "--format=text"]).ok("leaf cas").to_string();
    assert!(!leaf_cas.contains(p.root_name()), "root CAs gone from the leaf: {leaf_cas}");
    let root_cas = p.root.tctl(&["get", "cas", "--format=text"]).ok("root cas").to_string();
    assert!(!root_cas.contains(p.leaf_name()), "leaf CA gone from the root: {root_cas}");

    // Re-create.
    p.trust(true, ACCESS_TO_VISITOR).ok("re-create tc");
    p.root.wait_remote_status(p.leaf_name(), "online", Duration::from_secs(20));
    p.tsh.run(&["login", p.root_name()]).ok("refresh host CAs");
    assert_eq!(p.ssh(&node, "echo again").ok("ssh after re-create"), "again\n");
}

#[test]
fn cluster_labels_hide_a_leaf_until_a_role_matches() {
    let p = pair("labels", true);
    p.trust(true, ACCESS_TO_VISITOR).ok("trust");
    p.root.wait_remote_status(p.leaf_name(), "online", Duration::from_secs(20));
    let leaf = p.leaf_name().to_string();
    // Token labels become remote cluster labels.
    let mut lo = ClusterOpts::new("leaf-labels2.example.com");
    lo.node = false;
    lo.insecure = true;
    let leaf2 = Cluster::start(lo);
    leaf2.create("visitor.yaml", VISITOR).ok("visitor");
    let token = p
        .root
        .tctl(&["tokens", "add", "--type=trusted_cluster", "--labels=access=prod", "--format=text"])
        .ok("labelled token")
        .trim()
        .to_string();
    leaf2.create("tc.yaml", &tc_yaml(p.root_name(), &token, &p.root, true, ACCESS_TO_VISITOR)).ok("leaf2 trust");
    let rc = p.root.tctl(&["get", "rc/leaf-labels2.example.com", "--format=json"]).json();
    assert_eq!(rc[0]["metadata"]["labels"], serde_json::json!({"access": "prod"}));

    assert_eq!(
        p.root.tctl(&["update", &format!("rc/{leaf}"), "--set-labels=env=demo"]).ok("set labels").trim(),
        format!("cluster {leaf} has been updated")
    );
    // The user's current certificate: the leaf is hidden everywhere, and looks unknown.
    let clusters = p.tsh.run(&["clusters"]).ok("clusters").to_string();
    assert!(!clusters.contains(&leaf), "hidden: {clusters}");
    assert!(p.tsh.tctl(&["get", "rc"]).ok("tctl get rc as user").trim().is_empty(), "tctl get rc filtered too");
    let hidden = p.tsh.run(&["ssh", &format!("--cluster={leaf}"), &format!("visitor@{}", p.leaf.node_name()), "true"]);
    let unknown = p.tsh.run(&["ssh", "--cluster=no-such-cluster", &format!("visitor@{}", p.leaf.node_name()), "true"]);
    assert_eq!(hidden.code, unknown.code);
    assert_eq!(hidden.stderr.replace(&leaf, "X"), unknown.stderr.replace("no-such-cluster", "X"), "denied and unknown look the same");
    p.tsh.run(&["login", &leaf]).fails_with("login to hidden leaf", &format!("remote cluster \"{leaf}\" not found"));

    // The guide's step 5: demo-cluster-access, added with the guide's own pipeline.
    p.root
        .create(
            "demo.yaml",
            "kind: role\nmetadata:\n  name: demo-cluster-access\nspec:\n  allow:\n    cluster_labels:\n      'env': 'demo'\nversion: v5\n",
        )
        .ok("demo role");
    let env = [("TELEPORT_HOME", p.tsh.home.path().to_str().unwrap()), ("PATH", &format!("{}:/usr/bin:/bin", e2e::bin_dir().display()))];
    let script = "ROLES=$(tsh status -f json | jq -r '.active.roles | join(\",\")') && tctl users update $(tsh status -f json | jq -r '.active.username') --set-roles \"${ROLES?},demo-cluster-access\"";
    e2e::run(std::path::Path::new("/bin/sh"), &["-c", script], &env, None, Duration::from_secs(30)).ok("guide pipeline");
    let mut tsh = Tsh::new("labels-relogin");
    tsh.login(&p.root, "myuser", PASSWORD).ok("login again");
    let clusters = tsh.run(&["clusters"]).ok("clusters").to_string();
    assert!(clusters.lines().any(|l| l.starts_with(&leaf) && l.contains("env=demo")), "{clusters}");
    assert!(tsh.tctl(&["get", "rc"]).ok("get rc").contains("    env: demo\n"), "labels printed");
    assert_eq!(
        tsh.run(&["ssh", &format!("--cluster={leaf}"), &format!("visitor@{}", p.leaf.node_name()), "echo visible"]).ok("ssh"),
        "visible\n"
    );
}

#[test]
fn disabled_trust_denies_root_certificates_on_every_node() {
    let p = pair("disable", false);
    let node = NodeProc::join(&p.leaf, "leaf-db", false, "");
    // Created disabled: no tunnel, no access.
    p.trust(false, ACCESS_TO_VISITOR).ok("create disabled");
    std::thread::sleep(Duration::from_secs(2));
    let rc = p.root.tctl(&["get", &format!("rc/{}", p.leaf_name()), "--format=json"]).json();
    assert_eq!(rc[0]["status"]["connection"], "offline");
    let tc = p.leaf.tctl(&["get", "tc", "--format=text"]).ok("get tc").to_string();
    assert!(tc.contains(" false "), "{tc}");
    assert_eq!(p.tsh.openssh_direct(&p.root.ip, "visitor", &node.ip, "true").code, 255, "disabled from the start");
    // Enable through tctl edit, as the guide does.
    let tcname = format!("trusted_cluster/{}", p.root_name());
    p.leaf.tctl_env(&["edit", &tcname], &[("EDITOR", "sed -i 's/enabled: false/enabled: true/'")], None).ok("enable");
    p.root.wait_remote_status(p.leaf_name(), "online", Duration::from_secs(20));
    p.tsh.run(&["login", p.root_name()]).ok("refresh CAs");
    assert_eq!(p.ssh("leaf-db", "echo on").ok("ssh enabled"), "on\n");
    assert_eq!(p.tsh.openssh_direct(&p.root.ip, "visitor", &node.ip, "echo direct").ok("direct ssh enabled"), "direct\n");
    // Disable: root certificates stop working within 2 seconds, on a node in its own process too.
    p.leaf.tctl_env(&["edit", &tcname], &[("EDITOR", "sed -i 's/enabled: true/enabled: false/'")], None).ok("disable");
    let t0 = std::time::Instant::now();
    wait_for("the node to refuse root certificates", Duration::from_secs(5), || {
        (p.tsh.openssh_direct(&p.root.ip, "visitor", &node.ip, "true").code == 255).then_some(())
    });
    assert!(t0.elapsed() < Duration::from_secs(2), "refused after {:?}", t0.elapsed());
    assert!(node.log().contains("the certificate signed by untrusted CA"), "the node logs why");
    p.root.wait_remote_status(p.leaf_name(), "offline", Duration::from_secs(5));
    assert!(t0.elapsed() < Duration::from_secs(5), "tunnel dropped within 5s");
    p.ssh("leaf-db", "true").cannot_connect("ssh disabled", "is offline");
    // Enable again: back.
    p.leaf.tctl_env(&["edit", &tcname], &[("EDITOR", "sed -i 's/enabled: false/enabled: true/'")], None).ok("enable again");
    p.root.wait_remote_status(p.leaf_name(), "online", Duration::from_secs(20));
    let back = wait_for("ssh after re-enable", Duration::from_secs(10), || {
        let o = p.ssh("leaf-db", "echo back");
        (o.code == 0).then_some(o.stdout)
    });
    assert_eq!(back, "back\n");
}

#[test]
fn role_map_changes_in_place_and_unmapped_users_are_denied_with_a_reason() {
    let p = pair("rolemap", true);
    let node = p.leaf.node_name();
    p.trust(true, "    - remote: \"dev\"\n      local: [\"visitor\"]\n").ok("trust with dev mapping");
    p.root.wait_remote_status(p.leaf_name(), "online", Duration::from_secs(20));
    p.tsh.run(&["login", p.root_name()]).ok("refresh");
    p.ssh(&node, "true").cannot_connect("unmapped", "access denied to visitor");
    let ev = p.leaf.events();
    let denial = ev.iter().find(|e| e["event"] == "auth" && e["user"] == "myuser").expect("denial in the leaf audit log");
    assert_eq!(denial["error"], "no roles mapped for user with remote roles [access editor]");
    assert_eq!(denial["origin_cluster"], p.root_name());
    assert_eq!(denial["remote_roles"], serde_json::json!(["access", "editor"]));
    // map-roles explains it, from the stored map and from a file.
    p.leaf
        .tctl(&["map-roles", "--roles=access,editor", &format!("--cluster={}", p.root_name())])
        .fails_with("map-roles", "no roles mapped for user with remote roles [access editor]");
    // Update the role map in place with create --force.
    let token_file = p.leaf.dir.path().join("trusted_cluster.yaml");
    let text = std::fs::read_to_string(&token_file)
        .unwrap()
        .replace("remote: \"dev\"", "remote: \"access\"")
        .replace("name: rootcluster.example.com", &format!("name: {}", p.root_name()));
    std::fs::write(&token_file, &text).unwrap();
    p.leaf.tctl(&["create", "--force", token_file.to_str().unwrap()]).ok("create --force");
    let mapped = p.leaf.tctl(&["map-roles", "--roles=access", &format!("--cluster={}", p.root_name()), "-f", "json"]).json();
    assert_eq!(mapped, serde_json::json!({"remote_roles": ["access"], "local_roles": ["visitor"]}));
    let from_file =
        p.leaf.tctl(&["map-roles", "--roles=access,other", &format!("--file={}", token_file.display())]).ok("map-roles --file").to_string();
    assert_eq!(from_file, "Remote roles: access, other\nLocal roles:  visitor\n");
    assert_eq!(p.ssh(&node, "id -un").ok("ssh after update"), "visitor\n");
    let ok = p.leaf.events().into_iter().rev().find(|e| e["event"] == "session.start").expect("session recorded");
    assert_eq!(ok["roles"], serde_json::json!(["visitor"]), "the leaf records the mapped roles");
    // Immutable fields.
    let changed = text.replace(&p.root.web, "127.0.0.1:1");
    std::fs::write(&token_file, changed).unwrap();
    p.leaf
        .tctl(&["create", "-f", token_file.to_str().unwrap()])
        .fails_with("immutable", "can not update web_proxy_address for existing leaf cluster");
    // Disable: neither side sees the other.
    p.leaf
        .tctl_env(&["edit", &format!("tc/{}", p.root_name())], &[("EDITOR", "sed -i 's/enabled: true/enabled: false/'")], None)
        .ok("disable");
    p.root.wait_remote_status(p.leaf_name(), "offline", Duration::from_secs(10));
}

#[test]
fn each_side_holds_only_the_certificate_authorities_it_should() {
    let p = pair("cas", false);
    p.trust(true, ACCESS_TO_VISITOR).ok("trust");
    let cas = |c: &Cluster| c.tctl(&["get", "cas", "--with-secrets", "--format=json"]).json();
    let find = |v: &serde_json::Value, t: &str, n: &str| {
        v.as_array().unwrap().iter().find(|c| c["spec"]["type"] == t && c["metadata"]["name"] == n).cloned()
    };
    let has_key = |c: &serde_json::Value| c["spec"]["active_keys"]["ssh"][0]["private_key"].is_string();
    let root = cas(&p.root);
    let leaf = cas(&p.leaf);
    assert!(has_key(&find(&root, "user", p.root_name()).unwrap()) && has_key(&find(&root, "host", p.root_name()).unwrap()));
    assert!(find(&root, "user", p.leaf_name()).is_none(), "the root never holds the leaf's user CA");
    assert!(!has_key(&find(&root, "host", p.leaf_name()).unwrap()), "the leaf host CA on the root has no private key");
    assert!(!has_key(&find(&leaf, "user", p.root_name()).unwrap()) && !has_key(&find(&leaf, "host", p.root_name()).unwrap()));
    assert!(has_key(&find(&leaf, "user", p.leaf_name()).unwrap()));
    let root_user_ca = find(&leaf, "user", p.root_name()).unwrap();
    assert_eq!(root_user_ca["spec"]["role_map"], serde_json::json!([{"remote": "access", "local": ["visitor"]}]));
}

#[test]
fn a_tunnel_node_in_the_leaf_is_reached_through_two_tunnels() {
    let p = pair("tunnelnode", false);
    let _n = NodeProc::join(&p.leaf, "far-away", true, "env=edge");
    p.trust(true, ACCESS_TO_VISITOR).ok("trust");
    p.root.wait_remote_status(p.leaf_name(), "online", Duration::from_secs(20));
    p.tsh.run(&["login", p.root_name()]).ok("refresh");
    let ls = p.tsh.run(&["ls", &format!("--cluster={}", p.leaf_name())]).ok("ls").to_string();
    assert!(ls.contains("far-away  ⟵ Tunnel env=edge"), "{ls}");
    assert_eq!(p.ssh("far-away", "pwd").ok("ssh via two tunnels"), "/home/visitor\n");
}

#[test]
fn handshake_refusals_and_one_direction_only() {
    let p = pair("refuse", true);
    let leaf = p.leaf_name().to_string();
    // Wrong token.
    p.leaf
        .create("bad.yaml", &tc_yaml("r", "0123456789abcdef0123456789abcdef", &p.root, true, ACCESS_TO_VISITOR))
        .fails_with("wrong token", "access denied: the cluster token has been rejected");
    // Expired token.
    let token = p.root.trusted_cluster_token("1s");
    std::thread::sleep(Duration::from_secs(2));
    p.leaf
        .create("expired.yaml", &tc_yaml("r", &token, &p.root, true, ACCESS_TO_VISITOR))
        .fails_with("expired token", "access denied: the cluster token has been rejected");
    assert!(p.root.log().contains("invalid cluster token"), "the precise reason is in the root's log");
    // A role_map naming a role the leaf does not have.
    let token = p.root.trusted_cluster_token("5m");
    p.leaf
        .create("ghost.yaml", &tc_yaml("r", &token, &p.root, true, "    - remote: \"access\"\n      local: [\"ghost\"]\n"))
        .fails_with("unknown local role", "a role \"ghost\" referenced in a mapping access:[ghost] is not defined");
    // A leaf that does not trust the root's web certificate (no --insecure, no SSL_CERT_FILE).
    let mut o = ClusterOpts::new("strict.example.com");
    o.node = false;
    let strict = Cluster::start(o);
    strict.create("visitor.yaml", VISITOR).ok("visitor");
    let token = p.root.trusted_cluster_token("5m");
    strict
        .create("tc.yaml", &tc_yaml("r", &token, &p.root, true, ACCESS_TO_VISITOR))
        .fails_with("untrusted web certificate", "the trusted cluster uses misconfigured HTTP/TLS certificate.");
    // A leaf named like the root.
    let mut o = ClusterOpts::new(p.root_name());
    o.node = false;
    o.insecure = true;
    let twin = Cluster::start(o);
    twin.create("visitor.yaml", VISITOR).ok("visitor");
    let token = p.root.trusted_cluster_token("5m");
    twin.create("tc.yaml", &tc_yaml("r", &token, &p.root, true, ACCESS_TO_VISITOR))
        .fails_with("same name", "the cluster token has been rejected");
    assert!(p.root.log().contains("remote cluster has same name as this cluster"));
    // The real trust, then an impostor with the same leaf name and another CA.
    p.trust(true, ACCESS_TO_VISITOR).ok("trust");
    let leaf_ca = || p.root.tctl(&["get", &format!("cert_authority/host/{leaf}"), "--format=json"]).json();
    let registered_ca = leaf_ca();
    let mut o = ClusterOpts::new(&leaf);
    o.node = false;
    o.insecure = true;
    let impostor = Cluster::start(o);
    impostor.create("visitor.yaml", VISITOR).ok("visitor");
    let token = p.root.trusted_cluster_token("5m");
    impostor
        .create("tc.yaml", &tc_yaml("r", &token, &p.root, true, ACCESS_TO_VISITOR))
        .fails_with("name takeover", "the cluster token has been rejected");
    assert!(p.root.log().contains("already registered with a different certificate authority"));
    assert_eq!(leaf_ca(), registered_ca, "the registered leaf's CA is untouched");
    p.root.wait_remote_status(&leaf, "online", Duration::from_secs(20));
    // The root cannot make the leaf dial an unregistered address.
    p.tsh.run(&["login", p.root_name()]).ok("refresh");
    p.tsh
        .run(&["ssh", &format!("--cluster={leaf}"), "visitor@127.0.0.1:22", "true"])
        .cannot_connect("unregistered address", "only connects to registered nodes");
    // A leaf user cannot reach or list anything in the root.
    p.leaf.add_user("leafuser", "access", "visitor", PASSWORD);
    let mut lt = Tsh::new("leafuser");
    lt.login(&p.leaf, "leafuser", PASSWORD).ok("leaf login");
    let out = lt.run(&["--cluster", p.root_name(), "ls"]);
    assert_ne!(out.code, 0, "{out:?}");
    let id = p.leaf.dir.path().join("leafuser.identity");
    p.leaf.tctl(&["auth", "sign", "--user=leafuser", &format!("--out={}", id.display())]).ok("sign");
    let out = lt.run(&["-i", id.to_str().unwrap(), "--proxy", &p.root.web, "ls"]);
    assert_ne!(out.code, 0, "root refuses leaf certificates: {out:?}");
    let out = lt.run(&["-i", id.to_str().unwrap(), "--proxy", &p.root.web, "ssh", "visitor@anything", "true"]);
    assert_ne!(out.code, 0, "{out:?}");
}

#[test]
fn offline_detection_and_recovery_after_a_leaf_crash() {
    let mut p = pair("offline", true);
    p.trust(true, ACCESS_TO_VISITOR).ok("trust");
    p.root.wait_remote_status(p.leaf_name(), "online", Duration::from_secs(20));
    p.leaf.kill();
    let t = std::time::Instant::now();
    p.root.wait_remote_status(p.leaf_name(), "offline", Duration::from_secs(10));
    assert!(t.elapsed() <= Duration::from_secs(5), "offline within 3 heartbeats of 1s (+ margin): {:?}", t.elapsed());
    p.tsh
        .run(&["ssh", &format!("--cluster={}", p.leaf_name()), &format!("visitor@{}", p.leaf.node_name()), "true"])
        .cannot_connect("offline", "is offline");
    p.leaf.start_again();
    p.root.wait_remote_status(p.leaf_name(), "online", Duration::from_secs(20));
    p.tsh.run(&["login", p.root_name()]).ok("refresh");
    assert_eq!(p.ssh(&p.leaf.node_name(), "echo recovered").ok("ssh after recovery"), "recovered\n");
}
