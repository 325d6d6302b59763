//! Working across many clusters from tsh (issue 18, item 1): a root and two leaves.

use std::time::Duration;

use e2e::*;

#[test]
fn tsh_lists_and_runs_across_every_visible_cluster() {
    let mut ro = ClusterOpts::new("root-many.example.com");
    ro.node = false;
    let mut lo = ClusterOpts::new("leaf-many.example.com");
    lo.labels = vec![("env".into(), "prod".into())];
    lo.node_name = Some("dup-node".into());
    lo.insecure = true;
    let p = Pair::start("many", ro, lo);
    p.trust_online();
    let mut lo2 = ClusterOpts::new("leaf2-many.example.com");
    lo2.labels = vec![("env".into(), "prod".into())];
    lo2.node_name = Some("dup-node".into());
    lo2.insecure = true;
    let mut leaf2 = Cluster::start(lo2);
    leaf2.create("visitor.yaml", VISITOR).ok("leaf2 role");
    let token = p.root.trusted_cluster_token("5m");
    // leaf2 also maps the root's editors to its own editor role.
    let map2 = format!("{ACCESS_TO_VISITOR}    - remote: \"editor\"\n      local: [\"editor\"]\n");
    leaf2.create("tc.yaml", &tc_yaml(p.root_name(), &token, &p.root, true, &map2)).ok("leaf2 trust");
    p.root.wait_remote_status("leaf2-many.example.com", "online", Duration::from_secs(30));
    let _only = NodeProc::join(&leaf2, "only-in-leaf2", true, "env=prod");
    let (leaf, leaf2_name) = (p.leaf_name().to_string(), leaf2.opts.name.clone());

    // A sign-in brings the root's host CA only, whatever the number of leaves; a leaf's comes
    // the first time it is needed (one question for one cluster, one listing for several).
    let mut fresh = Tsh::new("many-fresh");
    fresh.login(&p.root, "myuser", PASSWORD).ok("sign in");
    let known = |t: &Tsh| -> Vec<String> {
        let dir = std::fs::read_dir(t.home.path().join("profiles")).unwrap().flatten().next().unwrap().path();
        let cas: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("cas.json")).unwrap()).unwrap();
        let mut names: Vec<String> = cas.as_array().unwrap().iter().map(|c| c["cluster_name"].as_str().unwrap().to_string()).collect();
        names.sort();
        names
    };
    assert_eq!(known(&fresh), vec![p.root_name().to_string()]);
    fresh.run(&["ssh", &format!("--cluster={leaf}"), "visitor@dup-node", "true"]).ok("ssh to the first leaf");
    let mut want = vec![p.root_name().to_string(), leaf.clone()];
    want.sort();
    assert_eq!(known(&fresh), want, "the leaf's CA, and no other");
    fresh.run(&["ls", "--all"]).ok("tsh ls --all");
    want.push(leaf2_name.clone());
    want.sort();
    assert_eq!(known(&fresh), want);

    // tsh ls --all: every cluster's nodes with a Cluster column; JSON carries the cluster.
    let out = p.tsh.run(&["ls", "--all"]);
    let text = out.ok("tsh ls --all");
    assert!(text.starts_with("Cluster"), "{text}");
    for (c, n) in [(&leaf, "dup-node"), (&leaf2_name, "dup-node"), (&leaf2_name, "only-in-leaf2")] {
        assert!(text.lines().any(|l| l.starts_with(c.as_str()) && l.contains(n)), "{c} {n} in:\n{text}");
    }
    let json = p.tsh.run(&["ls", "--all", "-f", "json"]).json();
    let items = json.as_array().unwrap();
    assert_eq!(items.len(), 3, "{json}");
    assert!(items.iter().all(|i| i["cluster"].is_string() && i["spec"]["hostname"].is_string()), "{json}");

    // tsh ssh without --cluster: a node that is in exactly one other cluster is found there.
    let out = p.tsh.run(&["ssh", "visitor@only-in-leaf2", "echo found-it"]);
    assert_eq!(out.ok("ssh to a node of another cluster"), "found-it\n");
    assert!(out.stderr.contains(&format!("is in cluster \"{leaf2_name}\"")), "{}", out.stderr);
    // ... and one in several stops with the list.
    let out = p.tsh.run(&["ssh", "visitor@dup-node", "true"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("several clusters") && out.stderr.contains(&leaf) && out.stderr.contains(&leaf2_name), "{}", out.stderr);

    // A label selector runs on every matching node; --cluster=all across every cluster.
    let out = p.tsh.run(&["ssh", &format!("--cluster={leaf2_name}"), "visitor@env=prod", "echo hello"]);
    let text = out.ok("labels in one cluster");
    assert_eq!(text.lines().filter(|l| l.ends_with("] hello")).count(), 2, "{text}");
    assert!(text.contains("[only-in-leaf2] hello") && text.contains("[dup-node] hello"), "{text}");
    let out = p.tsh.run(&["ssh", "--cluster=all", "visitor@env=prod", "echo hello"]);
    let text = out.ok("labels everywhere");
    for l in [format!("[{leaf}/dup-node] hello"), format!("[{leaf2_name}/dup-node] hello"), format!("[{leaf2_name}/only-in-leaf2] hello")] {
        assert!(text.contains(&l), "{l} in:\n{text}");
    }
    let out = p.tsh.run(&["ssh", "--cluster=all", "visitor@env=prod", "exit 4"]);
    assert_eq!(out.code, 4, "a failing node fails the run: {out:?}");
    let out = p.tsh.run(&["ssh", "visitor@env=nowhere", "true"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("no node matches env=nowhere"), "{}", out.stderr);
    p.tsh
        .run(&["ssh", "--cluster=all", "visitor@dup-node", "true"])
        .fails_with("--cluster=all without labels", "--cluster=all runs on nodes chosen by labels");

    // tsh status: the roles each leaf maps this user to, asked from the leaf.
    let st = p.tsh.run(&["status"]);
    let text = st.ok("tsh status");
    assert!(text.contains("Roles in leaf clusters"), "{text}");
    assert!(text.lines().any(|l| l.trim_start().starts_with(leaf.as_str()) && l.trim_end().ends_with("visitor")), "{text}");
    let json = p.tsh.run(&["status", "-f", "json"]).json();
    let leaves = json["active"]["leaf_clusters"].as_array().expect("leaf_clusters").clone();
    let of = |c: &str| leaves.iter().find(|l| l["cluster"] == c).map(|l| l["roles"].clone());
    assert_eq!(of(&leaf), Some(serde_json::json!(["visitor"])), "{json}");
    let mut r2: Vec<String> = serde_json::from_value(of(&leaf2_name).expect("leaf2")).unwrap();
    r2.sort();
    assert_eq!(r2, vec!["editor", "visitor"], "{json}");
    assert_eq!(json["active"]["roles"], serde_json::json!(["access", "editor"]), "the root's own roles stay: {json}");
    let one = p.tsh.run(&["status", "-f", "json", &format!("--cluster={leaf2_name}")]).json();
    let asked: Vec<&str> = one["active"]["leaf_clusters"].as_array().into_iter().flatten().filter_map(|l| l["cluster"].as_str()).collect();
    assert_eq!(asked, vec![leaf2_name.as_str()], "--cluster asks that leaf alone: {one}");

    // tctl --cluster=leaf: the leaf's own API through the root's tunnel, with the root
    // certificate, authorized by the leaf's role map.
    let nodes = p.tsh.tctl(&[&format!("--cluster={leaf2_name}"), "get", "nodes", "--format=json"]).json();
    let names: Vec<&str> = nodes.as_array().unwrap().iter().filter_map(|n| n["spec"]["hostname"].as_str()).collect();
    assert!(names.contains(&"only-in-leaf2") && names.contains(&"dup-node"), "{nodes}");
    let dir = TempDir::new("many-tctl");
    let role = dir.path().join("role.yaml");
    std::fs::write(&role, "kind: role\nversion: v7\nmetadata:\n  name: made-from-root\nspec:\n  allow:\n    logins: [visitor]\n").unwrap();
    let role_arg = role.display().to_string();
    p.tsh.tctl(&[&format!("--cluster={leaf2_name}"), "create", &role_arg]).ok("an editor mapped to editor creates a role on leaf2");
    leaf2.tctl(&["get", "roles/made-from-root"]).ok("the role is on leaf2");
    assert_ne!(p.root.tctl(&["get", "roles/made-from-root"]).code, 0, "and not on the root");
    let out = p.tsh.tctl(&[&format!("--cluster={leaf}"), "create", &role_arg]);
    assert_ne!(out.code, 0, "mapped to visitor only, the leaf refuses: {out:?}");
    assert!(out.stderr.contains("access denied") || out.stderr.contains("not allowed"), "{}", out.stderr);
    assert_ne!(p.leaf.tctl(&["get", "roles/made-from-root"]).code, 0, "nothing created on the leaf");
    let out = p.tsh.tctl(&["--cluster=no-such-leaf", "get", "nodes"]);
    assert!(out.code != 0 && out.stderr.contains("no-such-leaf"), "{out:?}");

    // tsh access explain: the leaf answers, check by check; rules only for who may read roles.
    let out = p.tsh.run(&["access", "explain", &format!("--cluster={leaf}"), "visitor@dup-node"]);
    let text = out.ok("explain an allowed login");
    assert!(text.starts_with(&format!("visitor@dup-node on cluster {leaf} for myuser (of root-many.example.com): ALLOWED")), "{text}");
    for want in [
        "[ok  ] certificate",
        "principals: visitor",
        "[ok  ] signing CA",
        "the trust is enabled",
        "[ok  ] role map",
        "mapped roles: visitor",
        "[ok  ] role visitor",
        "allowed by visitor",
        "[ok  ] cluster_labels on the root",
    ] {
        assert!(text.contains(want), "{want:?} in:\n{text}");
    }
    assert!(
        text.contains("your roles may not read roles here") && !text.contains("allow.node_labels"),
        "visitor may not read roles: {text}"
    );
    let out = p.tsh.run(&["access", "explain", &format!("--cluster={leaf2_name}"), "visitor@only-in-leaf2"]);
    let text = out.ok("explain on leaf2, where editor may read roles");
    assert!(text.contains("remote \"editor\" -> [editor]: matched editor -> editor"), "{text}");
    assert!(text.contains("allow.node_labels {*: *}: matches the node"), "{text}");
    // A login missing from the user's traits: the certificate step fails and says what to add.
    let out = p.tsh.run(&["access", "explain", &format!("--cluster={leaf}"), "root@dup-node"]);
    assert_eq!(out.code, 1, "denied: {out:?}");
    assert!(out.stdout.contains("DENIED") && out.stdout.contains("[FAIL] certificate"), "{}", out.stdout);
    assert!(out.stdout.contains("fix: on cluster root-many.example.com, add \"root\" to myuser's logins"), "{}", out.stdout);
    let json = p.tsh.run(&["access", "explain", &format!("--cluster={leaf}"), "-f", "json", "root@dup-node"]).json();
    assert_eq!(json["allowed"], false, "{json}");
    assert_eq!(json["explanations"][0]["cluster"], leaf.as_str(), "{json}");
    assert_eq!(json["explanations"][0]["steps"][0]["ok"], false, "{json}");

    // tctl access explain --user: an admin explains for others, every rule shown; the leaf
    // decides whether this admin may (leaf maps them to visitor: refused).
    p.root.create("nomap.yaml", "kind: role\nversion: v7\nmetadata:\n  name: nomap\nspec:\n  allow:\n    logins: [visitor]\n").ok("nomap");
    let fenced = "kind: role\nversion: v7\nmetadata:\n  name: fenced\nspec:\n  allow:\n    logins: [visitor]\n    cluster_labels:\n      env: nowhere\n";
    p.root.create("fenced.yaml", fenced).ok("fenced");
    p.root.invite("carol", "nomap", "");
    p.root.invite("dave", "fenced", "");
    let l2 = format!("--cluster={leaf2_name}");
    let out = p.tsh.tctl(&[&l2, "access", "explain", "--user=myuser", "visitor@only-in-leaf2"]);
    let text = out.ok("admin explains for myuser on leaf2");
    assert!(text.contains("ALLOWED") && text.contains("allow.logins [visitor]: lists \"visitor\""), "{text}");
    let out = p.tsh.tctl(&[&l2, "access", "explain", "--user=carol", "visitor@only-in-leaf2"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("[FAIL] role map") && out.stdout.contains("mapped roles: none"), "{}", out.stdout);
    assert!(out.stdout.contains("fix: add a role_map entry for one of [nomap]"), "{}", out.stdout);
    assert!(out.stderr.contains("carol may not log in as visitor@only-in-leaf2"), "{}", out.stderr);
    let out = p.tsh.tctl(&[&l2, "access", "explain", "--user=dave", "visitor@only-in-leaf2"]);
    assert_ne!(out.code, 0, "{out:?}");
    assert!(
        out.stdout.contains("Checked by root-many.example.com") && out.stdout.contains("[FAIL] cluster_labels on the root"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("role fenced: allow.cluster_labels {env: nowhere} does not match"), "{}", out.stdout);
    let out = p.tsh.tctl(&[&format!("--cluster={leaf}"), "access", "explain", "--user=carol", "visitor@dup-node"]);
    assert!(out.code != 0 && out.stderr.contains("access denied"), "the leaf refuses an admin it maps to visitor: {out:?}");

    // An offline leaf is reported, not fatal.
    leaf2.kill();
    p.root.wait_remote_status(&leaf2_name, "offline", Duration::from_secs(30));
    let out = p.tsh.run(&["ls", "--all"]);
    let text = out.ok("tsh ls --all with a leaf offline");
    assert!(text.lines().any(|l| l.starts_with(leaf.as_str()) && l.contains("dup-node")), "{text}");
    assert!(out.stderr.contains(&format!("WARNING: cluster {leaf2_name} did not list its nodes")), "{}", out.stderr);
    let st = p.tsh.run(&["status", "-f", "json"]).json();
    let l2 = st["active"]["leaf_clusters"].as_array().unwrap().iter().find(|l| l["cluster"] == leaf2_name.as_str()).cloned();
    assert!(l2.is_none_or(|l| l["error"].is_string()), "an offline leaf's roles are unknown, not fatal: {st}");
}

#[test]
fn leaves_rejoin_with_their_ca_go_after_an_offline_ttl_and_profiles_fall_back_to_the_root() {
    let mut ro = ClusterOpts::new("root-ttl.example.com");
    ro.node = false;
    ro.auth_extra = "  offline_leaf_ttl: 4s\n".into();
    let mut lo = ClusterOpts::new("leaf-ttl.example.com");
    lo.insecure = true;
    let mut p = Pair::start("ttl", ro, lo);
    p.trust_online();
    let (leaf, root_name) = (p.leaf_name().to_string(), p.root_name().to_string());

    // The leaf drops its trust and makes it again: same name, same CA, accepted (Teleport's #3650).
    p.leaf.tctl(&["rm", &format!("tc/{root_name}")]).ok("the leaf removes its trust");
    p.trust(true, ACCESS_TO_VISITOR).ok("the same leaf trusts the root again");
    p.root.wait_remote_status(&leaf, "online", Duration::from_secs(30));
    let node = p.leaf.node_name();
    assert_eq!(p.ssh(&node, "echo back").ok("ssh after the re-join"), "back\n");

    // A profile that selects the leaf.
    p.tsh.run(&["login", &leaf]).ok("select the leaf");
    // Offline longer than offline_leaf_ttl: the root removes it with its CAs, and says so.
    p.leaf.kill();
    wait_for("the offline leaf to be removed", Duration::from_secs(40), || {
        (p.root.tctl(&["get", &format!("rc/{leaf}")]).code != 0).then_some(())
    });
    let cas = p.root.tctl(&["get", "cert_authority", "--format=json"]).json();
    assert!(!cas.to_string().contains(&format!("\"{leaf}\"")), "the leaf's CAs are gone: {cas}");
    let deleted = p.root.events().into_iter().find(|e| e["event"] == "remote_cluster.delete").expect("audited");
    assert!(deleted["user"].as_str().unwrap_or_default().contains("offline_leaf_ttl"), "{deleted}");

    // The profile still pointing at the removed leaf keeps working for the root, with a note.
    let out = p.tsh.run(&["ls"]);
    out.ok("tsh ls with a removed leaf selected");
    assert!(out.stderr.contains(&format!("NOTE: the selected cluster \"{leaf}\" is no longer reachable")), "{}", out.stderr);
    p.tsh.run(&["status"]).ok("tsh status");
    p.tsh.login(&p.root, "myuser", PASSWORD).ok("signing in again is never blocked");
}
