//! Issue 5: the trusted-clusters guide, end to end, with the guide's own YAML and commands run
//! through bash as printed (only hostnames, ports and the token value differ). Every assertion
//! names the guide step it checks.

use std::time::Duration;

use e2e::{Cluster, ClusterOpts, NodeProc, Out, Tsh, ensure_unix_user, output_when, tsh_with_pty, wait_for};

const PW: &str = "guide-password-123";

/// Runs a guide command; asserts success.
#[track_caller]
fn ok(ws: &Tsh, step: &str, line: &str) -> String {
    let o = ws.sh(line, None);
    assert_eq!(o.code, 0, "guide {step}: `{line}` failed\nstdout:\n{}\nstderr:\n{}", o.stdout, o.stderr);
    o.stdout
}

#[track_caller]
fn login(ws: &Tsh, step: &str, proxy: &str) {
    let o = ws.sh(&format!("tsh login --proxy={proxy} --user=myuser"), Some(&format!("{PW}\n")));
    assert_eq!(o.code, 0, "guide {step}: tsh login --proxy={proxy} failed\n{o:?}");
}

#[track_caller]
fn contains(step: &str, text: &str, needle: &str) {
    assert!(text.contains(needle), "guide {step}: expected {needle:?} in:\n{text}");
}

fn write(ws: &Tsh, name: &str, text: &str) -> String {
    let p = ws.home.path().join(name);
    std::fs::write(&p, text).expect("write");
    p.display().to_string()
}

const VISITOR_YAML: &str = "kind: role\nversion: v5\nmetadata:\n  name: visitor\nspec:\n  allow:\n    logins:\n      - visitor\n    node_labels:\n      '*': '*'\n\n";
const DEMO_YAML: &str =
    "kind: role\nmetadata:\n  name: demo-cluster-access\nspec:\n  allow:\n    cluster_labels:\n      'env': 'demo'\nversion: v5\n\n";

#[test]
fn the_trusted_clusters_guide_works_as_written() {
    ensure_unix_user("visitor");
    let root = Cluster::start({
        let mut o = ClusterOpts::new("rootcluster.example.com");
        o.node = false;
        o
    });
    // The leaf trusts the root's web certificate the normal way: SSL_CERT_FILE, not --insecure.
    let leaf = Cluster::start({
        let mut o = ClusterOpts::new("leafcluster.example.com");
        o.node_name = Some("ip-172-3-1-242".into());
        o.labels = vec![("hostname".into(), "ip-172-3-1-242".into())];
        o.env = vec![("SSL_CERT_FILE".into(), root.web_ca().display().to_string())];
        o
    });
    let _tunnel_node = NodeProc::join(&leaf, "ip-172-3-2-205", true, "hostname=ip-172-3-2-205,env=demo");
    root.add_user("myuser", "access,editor", "ubuntu,root", PW);
    leaf.add_user("myuser", "access,editor", "root", PW);
    let (rootname, leafname) = (root.opts.name.clone(), leaf.opts.name.clone());
    let (root_addr, leaf_addr) = (root.web.clone(), leaf.web.clone());

    // The administrator's workstation: one TELEPORT_HOME, both clusters' web CAs trusted.
    let mut ws = Tsh::new("guide");
    let bundle = ws.home.path().join("ca-bundle.pem");
    let cas = format!("{}{}", std::fs::read_to_string(root.web_ca()).unwrap(), std::fs::read_to_string(leaf.web_ca()).unwrap());
    std::fs::write(&bundle, cas).unwrap();
    ws.env.push(("SSL_CERT_FILE".into(), bundle.display().to_string()));
    // curl (7.88, OpenSSL) reads CURL_CA_BUNDLE rather than SSL_CERT_FILE.
    ws.env.push(("CURL_CA_BUNDLE".into(), bundle.display().to_string()));

    // Prerequisites.
    contains("Prerequisites", &ok(&ws, "Prerequisites", "tctl version"), "Teleport v");
    contains("Prerequisites", &ok(&ws, "Prerequisites", "tsh version"), "Teleport v");

    // Step 1/6: prepare the leaf.
    let s = "Step 1/6";
    let o = ws.sh("useradd --create-home visitor", None);
    assert!(o.code == 0 || o.stderr.contains("already exists"), "guide {s}: useradd\n{o:?}");
    ok(&ws, s, "tsh logout");
    login(&ws, s, &leaf_addr);
    write(&ws, "visitor.yaml", VISITOR_YAML);
    let out = ok(&ws, s, &format!("cd {} && tctl create visitor.yaml", ws.home.path().display()));
    assert_eq!(out.trim(), "role \"visitor\" has been created", "guide {s}");

    // Step 2/6: prepare the root: add the visitor login with tctl edit.
    let s = "Step 2/6";
    ok(&ws, s, "tsh logout");
    login(&ws, s, &root_addr);
    let editor = write(&ws, "add-visitor.sh", "#!/bin/sh\nsed -i 's/^    - ubuntu$/    - visitor\\n    - ubuntu/' \"$1\"\n");
    std::fs::set_permissions(&editor, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = ok(&ws, s, &format!("EDITOR={editor} tctl edit user/myuser"));
    contains(s, &out, "user \"myuser\" has been updated");
    let user = ok(&ws, s, "tctl get user/myuser");
    contains(s, &user, "  traits:\n    logins:\n    - visitor\n    - ubuntu\n    - root\n");

    // Step 3/6: the invitation token, the addresses, trusted_cluster.yaml.
    let s = "Step 3/6";
    ok(&ws, s, "tsh logout");
    login(&ws, s, &root_addr);
    let out = ok(&ws, s, "tctl tokens add --type=trusted_cluster --ttl=5m");
    let token = out
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("The cluster invite token: "))
        .unwrap_or_else(|| panic!("guide {s}: {out}"))
        .to_string();
    let ls = ok(&ws, s, "tctl tokens ls");
    contains(s, &ls, "Token                            Type            Labels Expiry Time (UTC)");
    assert!(ls.lines().any(|l| l.starts_with(&token) && l.contains(" trusted_cluster ") && l.contains(" UTC (4m")), "guide {s}: {ls}");
    let tunnel_addr = ok(
        &ws,
        s,
        &format!(
            "PROXY={root_addr}\ncurl https://$PROXY/webapi/ping | jq 'if .proxy.tls_routing_enabled == true then .proxy.ssh.public_addr else .proxy.ssh.ssh_tunnel_public_addr end'"
        ),
    );
    let web_proxy_addr = ok(&ws, s, &format!("PROXY={root_addr}\ncurl https://$PROXY/webapi/ping | jq .proxy.ssh.public_addr"));
    assert_eq!(tunnel_addr.trim(), format!("\"{root_addr}\""), "guide {s}: tunnel_addr recipe");
    assert_eq!(web_proxy_addr.trim(), format!("\"{root_addr}\""), "guide {s}: web_proxy_addr recipe");
    let tc = |role_map: &str| {
        format!(
            "kind: trusted_cluster\nversion: v2\nmetadata:\n  name: {rootname}\nspec:\n  enabled: true\n  token: {token}\n  tunnel_addr: {t}\n  web_proxy_addr: {w}\n  role_map:\n{role_map}\n",
            t = tunnel_addr.trim().trim_matches('"'),
            w = web_proxy_addr.trim().trim_matches('"')
        )
    };
    write(&ws, "trusted_cluster.yaml", &tc("    - remote: \"access\"\n      local: [\"visitor\"]\n"));
    ok(&ws, s, "tsh logout");

    // Step 4/6: create the trusted cluster on the leaf; the root lists it online.
    let s = "Step 4/6";
    login(&ws, s, &leaf_addr);
    let out = ok(&ws, s, &format!("cd {} && tctl create trusted_cluster.yaml", ws.home.path().display()));
    assert_eq!(out.trim(), format!("trusted cluster \"{rootname}\" has been created"), "guide {s}");
    ok(&ws, s, "tsh logout");
    login(&ws, s, &root_addr);
    let clusters = wait_for(&format!("guide {s}: both clusters online"), Duration::from_secs(20), || {
        let c = ok(&ws, s, "tsh clusters");
        c.lines().any(|l| l.starts_with(&leafname) && l.contains(" online leaf ")).then_some(c)
    });
    contains(s, &clusters, "Cluster Name            Status Cluster Type Labels Selected");
    assert!(
        clusters.lines().any(|l| l.starts_with(&rootname) && l.contains(" online root ") && l.trim_end().ends_with('*')),
        "guide {s}: {clusters}"
    );

    // Step 5/6: remote_cluster, labels, demo-cluster-access.
    let s = "Step 5/6";
    ok(&ws, s, "tsh status");
    let online = format!("  name: {leafname}\nstatus:\n  connection: online\n  last_heartbeat: ");
    let rc = output_when(
        &format!("guide {s}: tctl get rc shows the leaf online"),
        Duration::from_secs(20),
        || ok(&ws, s, "tctl get rc"),
        |rc| rc.contains(&online),
    );
    contains(s, &rc, "kind: remote_cluster\nmetadata:\n  id: ");
    contains(s, &rc, "version: v3\n");
    let out = ok(&ws, s, &format!("tctl update rc/{leafname} --set-labels=env=demo"));
    assert_eq!(out.trim(), format!("cluster {leafname} has been updated"), "guide {s}");
    assert_eq!(ok(&ws, s, "tctl get rc").trim(), "", "guide {s}: labelled cluster hidden without a matching role");
    write(&ws, "demo-cluster-access.yaml", DEMO_YAML);
    ok(&ws, s, &format!("cd {} && tctl create demo-cluster-access.yaml", ws.home.path().display()));
    ok(
        &ws,
        s,
        "ROLES=$(tsh status -f json | jq -r '.active.roles | join(\",\")')\ntctl users update $(tsh status -f json | jq -r '.active.username') \\\n  --set-roles \"${ROLES?},demo-cluster-access\"",
    );
    ok(&ws, s, "tsh logout");
    login(&ws, s, &root_addr);
    let online = format!("  labels:\n    env: demo\n  name: {leafname}\nstatus:\n  connection: online\n");
    let rc = output_when(
        &format!("guide {s}: the labelled leaf online"),
        Duration::from_secs(20),
        || ok(&ws, s, "tctl get rc"),
        |rc| rc.contains(&online),
    );
    contains(s, &rc, "metadata:\n  id: ");

    // Step 6/6: access a server in the leaf.
    let s = "Step 6/6";
    ok(&ws, s, "tsh status");
    let ls = ok(&ws, s, &format!("tsh ls --cluster={leafname}"));
    contains(s, &ls, "Node Name      Address");
    assert!(
        ls.lines()
            .any(|l| l.starts_with("ip-172-3-1-242") && l.contains(&format!("{}:3022", leaf.ip)) && l.contains("hostname=ip-172-3-1-242")),
        "guide {s}: {ls}"
    );
    assert!(
        ls.lines().any(|l| l.starts_with("ip-172-3-2-205") && l.contains("⟵ Tunnel") && l.contains("hostname=ip-172-3-2-205")),
        "guide {s}: {ls}"
    );
    let (screen, code) = tsh_with_pty(
        &ws,
        &["ssh", &format!("--cluster={leafname}"), "visitor@ip-172-3-2-205"],
        "pwd\runame -a\rexit\r",
        Duration::from_secs(30),
    );
    contains(s, &screen, "/home/visitor");
    contains(s, &screen, "Linux ");
    assert_eq!(code, 0, "guide {s}: {screen}");

    // Role mapping syntax and expressions (and "Update role mappings" with create --force).
    let s = "Role mapping syntax";
    login(&ws, s, &leaf_addr);
    let map = |ws: &Tsh, roles: &str| ws.sh(&format!("tctl map-roles --cluster={rootname} --roles={roles} -f json"), None);
    write(&ws, "trusted_cluster.yaml", &tc("  - remote: \"*\"\n    local: [access]\n"));
    ok(&ws, s, &format!("cd {} && tctl create --force trusted_cluster.yaml", ws.home.path().display()));
    assert_eq!(map(&ws, "anything").json()["local_roles"], serde_json::json!(["access"]), "guide {s}: wildcard");
    // cluster-*, the regular expression, and trait sharing, together.
    ok(
        &ws,
        s,
        &format!(
            "cd {} && cat > roles.yaml <<'EOF'\nkind: role\nversion: v5\nmetadata: {{name: clusteradmin}}\nspec: {{allow: {{logins: [root], node_labels: {{'*': '*'}}}}}}\n---\nkind: role\nversion: v5\nmetadata: {{name: local-one}}\nspec: {{allow: {{logins: [visitor], node_labels: {{'*': '*'}}}}}}\n---\nkind: role\nversion: v5\nmetadata: {{name: admin}}\nspec:\n  allow:\n    logins: [\"{{{{internal.logins}}}}\", \"{{{{external.logins_from_okta}}}}\"]\n    kubernetes_groups: [\"{{{{internal.kubernetes_groups}}}}\"]\n    kubernetes_users: [\"{{{{internal.kubernetes_users}}}}\"]\n    db_users: [\"{{{{internal.db_users}}}}\"]\n    db_names: [\"{{{{internal.db_names}}}}\"]\n    aws_role_arns: [\"{{{{internal.aws_role_arns}}}}\"]\n    node_labels:\n      env: \"{{{{external.env_from_okta}}}}\"\nEOF\ntctl create roles.yaml",
            ws.home.path().display()
        ),
    );
    write(
        &ws,
        "trusted_cluster.yaml",
        &tc(
            "    - remote: \"access\"\n      local: [\"visitor\"]\n    - remote: 'cluster-*'\n      local: [clusteradmin]\n    - remote: \"^remote-(.*)$\"\n      local: [local-$1]\n    - remote: \"root\"\n      local: [\"admin\"]\n",
        ),
    );
    ok(&ws, s, &format!("cd {} && tctl create --force trusted_cluster.yaml", ws.home.path().display()));
    assert_eq!(map(&ws, "cluster-prod").json()["local_roles"], serde_json::json!(["clusteradmin"]), "guide {s}: cluster-*");
    assert_eq!(
        map(&ws, "remote-one,remote-two").json()["local_roles"],
        serde_json::json!(["local-one", "local-two"]),
        "guide {s}: ^remote-(.*)$"
    );
    let none = map(&ws, "dev");
    none.fails_with(&format!("guide {s}: unmapped"), "no roles mapped for user with remote roles [dev]");
    // Trait sharing: a root user with the guide's `root` role and SSO-style external traits (and
    // demo-cluster-access, since step 5 labelled the leaf env=demo).
    root.create("root-role.yaml", "kind: role\nversion: v5\nmetadata: {name: root}\nspec:\n  allow:\n    logins: [\"root\"]\n    kubernetes_groups: [\"system:masters\"]\n    kubernetes_users: [\"alice\"]\n    db_users: [\"postgres\"]\n    db_names: [\"dev\", \"metrics\"]\n    aws_role_arns: [\"arn:aws:iam::123456789012:role/example\"]\n").ok("root role");
    root.create("okta-user.yaml", "kind: user\nversion: v2\nmetadata: {name: okta-user}\nspec:\n  roles: [root, demo-cluster-access]\n  traits:\n    logins_from_okta: [visitor]\n    env_from_okta: [demo]\n").ok("okta user");
    let reset = root.tctl(&["users", "reset", "okta-user"]);
    let url = reset.ok("reset").lines().find(|l| l.starts_with("https://")).unwrap().to_string();
    root.https_put("/webapi/users/password/token", &serde_json::json!({"token": url.rsplit('/').next().unwrap(), "password": PW}));
    let mut okta = Tsh::new("okta");
    okta.login(&root, "okta-user", PW).ok("okta login");
    assert_eq!(
        okta.run(&["ssh", &format!("--cluster={leafname}"), "root@ip-172-3-2-205", "echo $USER"]).ok("trait-mapped access"),
        "root\n",
        "guide {s}: env={{{{external.env_from_okta}}}} matches the env=demo node"
    );
    okta.run(&["ssh", &format!("--cluster={leafname}"), "root@ip-172-3-1-242", "true"])
        .cannot_connect(&format!("guide {s}: node without env=demo"), "access denied to root connecting to ip-172-3-1-242");
    let denial = leaf.events().into_iter().rev().find(|e| e["event"] == "auth" && e["user"] == "okta-user").expect("denial audited");
    assert_eq!(denial["remote_roles"], serde_json::json!(["root", "demo-cluster-access"]), "guide {s}");

    // Temporarily disable a trusted cluster, then enable it again.
    let s = "Temporarily disable";
    let off = write(&ws, "off.sh", "#!/bin/sh\nsed -i 's/enabled: true/enabled: false/' \"$1\"\n");
    let on = write(&ws, "on.sh", "#!/bin/sh\nsed -i 's/enabled: false/enabled: true/' \"$1\"\n");
    for f in [&off, &on] {
        std::fs::set_permissions(f, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    login(&ws, s, &leaf_addr);
    contains(s, &ok(&ws, s, &format!("EDITOR={off} tctl edit trusted_cluster/{rootname}")), "has been updated");
    root.wait_remote_status(&leafname, "offline", Duration::from_secs(10));
    let o = ws.sh(&format!("tsh ssh --proxy={root_addr} --cluster={leafname} visitor@ip-172-3-1-242 true"), None);
    assert_ne!(o.code, 0, "guide {s}: disabled trust refuses access\n{o:?}");
    contains(s, &ok(&ws, s, &format!("EDITOR={on} tctl edit trusted_cluster/{rootname}")), "has been updated");
    root.wait_remote_status(&leafname, "online", Duration::from_secs(20));
    let back = wait_for(&format!("guide {s}: access restored"), Duration::from_secs(15), || {
        let o: Out = ws.sh(&format!("tsh ssh --proxy={root_addr} --cluster={leafname} visitor@ip-172-3-1-242 pwd"), None);
        (o.code == 0).then_some(o.stdout)
    });
    assert_eq!(back, "/home/visitor\n", "guide {s}");

    // Federating access: `tsh --proxy=... login <leaf>` selects the leaf.
    let s = "Federating access";
    let o = ws.sh(&format!("tsh --proxy={root_addr} login"), Some(&format!("{PW}\n")));
    assert_eq!(o.code, 0, "guide {s}: {o:?}");
    contains(s, &ok(&ws, s, &format!("tsh --proxy={root_addr} login {leafname}")), &format!("Cluster:            {leafname}"));

    // Remove a trusted leaf cluster: both sides.
    let s = "Remove a trusted leaf cluster";
    login(&ws, s, &leaf_addr);
    assert_eq!(
        ok(&ws, s, &format!("tctl rm trusted_cluster/{rootname}")).trim(),
        format!("trusted cluster \"{rootname}\" has been deleted"),
        "guide {s}"
    );
    login(&ws, s, &root_addr);
    assert_eq!(
        ok(&ws, s, &format!("tctl rm rc/{leafname}")).trim(),
        format!("remote cluster \"{leafname}\" has been deleted"),
        "guide {s}"
    );
    let clusters = ok(&ws, s, "tsh clusters");
    assert!(!clusters.contains(&leafname), "guide {s}: {clusters}");
}
