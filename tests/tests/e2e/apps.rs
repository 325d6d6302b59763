//! Applications across trusted clusters, first part: a leaf's `app_service` registers its apps,
//! admins define more with `tctl create`, and a root's user lists those the leaf's mapped roles'
//! `app_labels` allow (`tsh apps ls --cluster=leaf`, `--all`).

use std::time::Duration;

use e2e::{Cluster, ClusterOpts, PASSWORD, Tsh, tc_yaml, wait_for};

const T: Duration = Duration::from_secs(30);

#[test]
fn a_leafs_apps_are_listed_at_the_root_as_the_leafs_mapped_roles_allow() {
    e2e::ensure_unix_user("visitor");
    let mut ro = ClusterOpts::new("root-apps.example.com");
    ro.node = false;
    let root = Cluster::start(ro);
    root.add_user("alice", "access", "visitor", PASSWORD);
    let mut lo = ClusterOpts::new("leaf-apps.example.com");
    lo.node = false;
    lo.env = vec![("SSL_CERT_FILE".into(), root.web_ca().display().to_string())];
    lo.sections = "app_service:\n  enabled: yes\n  apps:\n  - name: grafana\n    description: Dashboards\n    uri: http://127.0.0.1:3000\n    labels: {env: prod}\n  - name: admin-panel\n    uri: https://127.0.0.1:8443\n    public_addr: admin.customer.example.com\n    labels: {env: internal}\n  - name: redis\n    uri: tcp://127.0.0.1:6379\n    labels: {env: prod}\n".into();
    let leaf = Cluster::start(lo);
    leaf.create(
        "visitor.yaml",
        "kind: role\nversion: v7\nmetadata: {name: visitor}\nspec:\n  allow:\n    logins: [visitor]\n    node_labels: {'*': '*'}\n    app_labels: {env: prod}\n",
    )
    .ok("leaf role");
    let token = root.trusted_cluster_token("5m");
    leaf.create("tc.yaml", &tc_yaml(&root.opts.name, &token, &root, true, e2e::ACCESS_TO_VISITOR)).ok("trust");
    root.wait_remote_status("leaf-apps.example.com", "online", T);

    // The leaf's admin sees every app and who serves it.
    let text = wait_for("the app service's heartbeats", T, || {
        let o = leaf.tctl(&["get", "apps", "--format=text"]);
        (o.code == 0 && o.stdout.contains("redis")).then(|| o.stdout.clone())
    });
    assert!(text.contains("grafana") && text.contains("admin-panel") && text.contains("leaf-apps-node"), "{text}");
    // An admin defines one more; a bad one is refused in one line and stores nothing.
    leaf.create("wiki.yaml", "kind: app\nversion: v3\nmetadata: {name: wiki, labels: {env: prod}}\nspec:\n  uri: http://127.0.0.1:8081\n")
        .ok("tctl create app");
    let bad = leaf.create("bad.yaml", "kind: app\nversion: v3\nmetadata: {name: Wiki}\nspec:\n  uri: http://x\n");
    assert!(bad.stderr.contains("DNS label") && bad.stderr.lines().count() == 1, "{bad:?}");
    let reserved = leaf.create(
        "reserved.yaml",
        "kind: app\nversion: v3\nmetadata: {name: jwtapp}\nspec:\n  uri: http://x\n  rewrite:\n    headers: [{name: Teleport-Jwt-Assertion, value: forged}]\n",
    );
    assert!(reserved.stderr.contains("sets it itself"), "{reserved:?}");
    let defined = leaf.tctl(&["get", "app/wiki", "--format=text"]);
    assert!(defined.ok("tctl get app/wiki").contains("(defined, not served)"), "{defined:?}");

    // The leaf's jwt CA, created at first start: its public keys published for apps to verify
    // their assertions with, its private key never shown.
    let jwks = e2e::run(
        std::path::Path::new("curl"),
        &["-s", "--cacert", leaf.web_ca().to_str().unwrap(), &format!("https://{}/.well-known/jwks.json", leaf.web)],
        &[],
        None,
        T,
    );
    let v: serde_json::Value = serde_json::from_str(&jwks.stdout).unwrap_or_default();
    let key = &v["keys"][0];
    assert_eq!((key["kty"].as_str(), key["alg"].as_str(), key["use"].as_str()), (Some("RSA"), Some("RS256"), Some("sig")), "{jwks:?}");
    assert!(key["n"].as_str().unwrap().len() >= 342 && key["e"] == "AQAB", "a 2048-bit key: {key}");
    let ca = leaf.tctl(&["get", "cert_authority/jwt", "--format=json"]);
    let ca_text = ca.ok("tctl get cert_authority/jwt");
    assert!(ca_text.contains("\"jwt\"") && ca_text.contains("public_key") && !ca_text.contains("private_key"), "{ca_text}");
    assert!(leaf.tctl(&["status"]).ok("tctl status").contains("jwt CA"), "tctl status names it");

    // A root user lists what the leaf's mapped role allows: env=prod only.
    let mut alice = Tsh::new("alice-apps");
    alice.login(&root, "alice", PASSWORD).ok("alice signs in");
    let ls = alice.run(&["apps", "ls", "--cluster=leaf-apps.example.com"]);
    let table = ls.ok("tsh apps ls");
    assert!(table.contains("Application") && table.contains("Public Address"), "{table}");
    let root_host = root.web.split(':').next().unwrap();
    assert!(table.contains(&format!("grafana.{root_host}")) && table.contains("Dashboards") && table.contains("HTTP"), "{table}");
    assert!(table.lines().any(|l| l.starts_with("redis") && l.contains("TCP")), "{table}");
    assert!(table.contains("wiki") && !table.contains("admin-panel"), "app_labels of the mapped role decide: {table}");
    let all = alice.run(&["apps", "ls", "--all", "-f", "json"]).json();
    let names: Vec<&str> = all.as_array().unwrap().iter().map(|r| r["app"]["metadata"]["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"grafana") && !names.contains(&"admin-panel"), "{all}");
    assert!(all.as_array().unwrap().iter().all(|r| r["cluster"] == "leaf-apps.example.com"), "{all}");
}
