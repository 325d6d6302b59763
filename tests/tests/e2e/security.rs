//! Issue 7, security regressions: holes of the kind Teleport's trusted clusters had to close,
//! each a test that fails if it reopens. SECURITY.md maps each protection to its test; some live
//! in trust.rs and catalogue.rs.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use e2e::{ACCESS_TO_VISITOR, Cluster, ClusterOpts, NodeProc, Out, PASSWORD, pair, run, wait_for};
use shared::profile::read_identity_file;

/// An API call to `target` with the client certificate of `identity` (issued by whichever
/// cluster), trusting `target`'s host CA: what an attacker holding that identity could do with
/// `target`'s API directly. Returns (HTTP status, or 0 if TLS refused; body).
fn api_call(identity: &Path, target: &Cluster, method: &str, path: &str, body: &str) -> (u16, String) {
    let creds = read_identity_file(identity).expect("identity");
    let dir = target.dir.path();
    let tag = shared::certs::random_hex(4);
    let (cert, key, ca) = (dir.join(format!("{tag}.crt")), dir.join(format!("{tag}.key")), dir.join(format!("{tag}-ca.pem")));
    std::fs::write(&cert, &creds.tls_cert_pem).expect("cert");
    std::fs::write(&key, &creds.tls_key_pem).expect("key");
    let pins = read_identity_file(&target.data_dir().join("admin.identity")).expect("target identity").host_cas;
    let pem: String = pins.iter().filter(|c| c.cluster_name == target.opts.name).flat_map(|c| c.tls_certs.clone()).collect();
    std::fs::write(&ca, pem).expect("ca");
    let name = shared::certs::CLUSTER_LOCAL_NAME;
    let connect_to = format!("{name}:3080:{}", target.web);
    let url = format!("https://{name}:3080{path}");
    let (c, k, a) = (cert.display().to_string(), key.display().to_string(), ca.display().to_string());
    let out = curl(&[
        "-s",
        "--cert",
        &c,
        "--key",
        &k,
        "--cacert",
        &a,
        "--connect-to",
        &connect_to,
        "-w",
        "\n%{http_code}",
        "-X",
        method,
        &url,
        "-d",
        body,
    ]);
    let (body, code) = out.stdout.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

fn curl(args: &[&str]) -> Out {
    run(Path::new("curl"), args, &[], None, Duration::from_secs(30))
}

#[test]
fn a_root_user_gets_the_mapped_leaf_roles_and_nothing_more() {
    let p = pair("mapped", true);
    let leaf = p.leaf_name().to_string();
    // On the leaf: visitor may only reach env=allowed nodes; a leaf-local role named like the
    // root's role, and a leaf-local user named like the root's user, may log in as root.
    p.leaf
        .create_force(
            "visitor.yaml",
            "kind: role\nversion: v5\nmetadata: {name: visitor}\nspec:\n  allow:\n    logins: [visitor]\n    node_labels: {env: allowed}\n",
        )
        .ok("restrict visitor");
    p.leaf
        .create_force(
            "access.yaml",
            "kind: role\nversion: v5\nmetadata: {name: access}\nspec:\n  allow:\n    logins: [root]\n    node_labels: {'*': '*'}\n",
        )
        .ok("leaf access role");
    p.leaf.tctl(&["users", "add", "myuser", "--roles=access", "--logins=root"]).ok("leaf-local myuser");
    let _allowed = NodeProc::join(&p.leaf, "allowed-node", false, "env=allowed");
    p.trust_online();
    p.tsh.run(&["login", p.root_name()]).ok("refresh");

    // Only what visitor allows is visible and reachable.
    let ls = p.tsh.run(&["ls", &format!("--cluster={leaf}")]).ok("ls").to_string();
    assert!(ls.contains("allowed-node"), "{ls}");
    assert!(!ls.contains(&p.leaf.node_name()), "an env=test node is not visible to visitor:\n{ls}");
    assert_eq!(p.ssh("allowed-node", "id -un").ok("visitor on an allowed node"), "visitor\n");
    p.ssh(&p.leaf.node_name(), "true").cannot_connect("node outside the mapped role", "access denied");
    // Neither the leaf's own `access` role nor the leaf-local user `myuser` leaks in: no root.
    let out = p.tsh.run(&["ssh", &format!("--cluster={leaf}"), "root@allowed-node", "id -un"]);
    out.cannot_connect("login of a leaf role the user does not map to", "access denied to root");
    let start = p.leaf.events().into_iter().rev().find(|e| e["event"] == "session.start").expect("session start");
    assert_eq!(start["roles"], serde_json::json!(["visitor"]), "the leaf records the mapped roles only: {start}");
    let denied = p.leaf.events().into_iter().rev().find(|e| e["event"] == "auth" && e["login"] == "root").expect("denial");
    assert!(denied.to_string().contains("myuser"), "{denied}");

    // Straight at the leaf's API: the root's administrator identity (a root host certificate)
    // gets nothing; the root user's own certificate gets visitor's rights, which are none there.
    let admin = p.root.data_dir().join("admin.identity");
    let signed = p.root.dir.path().join("myuser.identity");
    p.root.tctl(&["auth", "sign", "--user=myuser", &format!("--out={}", signed.display())]).ok("sign");
    // Sanity: the same call works for the leaf's own administrator.
    let (code, body) = api_call(&p.leaf.data_dir().join("admin.identity"), &p.leaf, "GET", "/v1/resources/user", "");
    assert!(code == 200 && body.contains("myuser"), "{code} {body}");
    for (who, id) in [("root admin", &admin), ("root user mapped to visitor", &signed)] {
        let (code, body) = api_call(id, &p.leaf, "GET", "/v1/resources/user", "");
        assert!(code == 0 || code == 403, "{who} listing leaf users: {code} {body}");
        assert!(!body.contains("myuser"), "{who}: {body}");
        let (code, body) = api_call(id, &p.leaf, "GET", "/v1/resources/cert_authority?with_secrets=true", "");
        assert!(code == 0 || code == 403, "{who} reading leaf keys: {code} {body}");
        assert!(!body.contains("private_key"), "{who}: {body}");
        let add = r#"{"name":"intruder","roles":["access"],"logins":["root"]}"#;
        let (code, body) = api_call(id, &p.leaf, "POST", "/v1/users", add);
        assert!(code == 0 || code == 403, "{who} adding a leaf user: {code} {body}");
    }
    assert!(p.leaf.tctl(&["get", "user/intruder"]).code != 0, "nothing was created");
}

#[test]
fn a_leaf_cannot_label_itself_or_use_the_roots_api() {
    let p = pair("selflabel", false);
    let leaf = p.leaf_name().to_string();
    // The root's token carries the labels the root wants.
    let token =
        p.root.tctl(&["tokens", "add", "--type=trusted_cluster", "--labels=tier=gold", "--format=text"]).ok("token").trim().to_string();
    // The leaf's handshake claims labels of its own: in its CA's metadata and in the request.
    let ca = &p.leaf.tctl(&["get", &format!("cert_authority/host/{leaf}"), "--format=json"]).json()[0];
    let mut ca = ca.clone();
    ca["metadata"]["labels"] = serde_json::json!({"env": "prod", "tier": "platinum"});
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(ca.to_string());
    let body = serde_json::json!({
        "token": token, "certificate_authorities": [b64], "teleport_version": env!("CARGO_PKG_VERSION"),
        "labels": {"env": "prod"}, "metadata": {"labels": {"env": "prod"}},
    });
    let url = format!("https://{}/webapi/trustedclusters/validate", p.root.web);
    let ca_file = p.root.web_ca().display().to_string();
    let out = curl(&["-s", "--cacert", &ca_file, "-X", "POST", &url, "-d", &body.to_string()]);
    assert!(out.stdout.contains("certificate_authorities"), "the handshake itself succeeds: {out:?}");
    let labels = |p: &e2e::Pair| p.root.tctl(&["get", &format!("rc/{leaf}"), "--format=json"]).json()[0]["metadata"]["labels"].clone();
    assert_eq!(labels(&p), serde_json::json!({"tier": "gold"}), "only the root's token labels");
    // The real trust, then the leaf's own administrator identity against the root's API.
    p.trust(true, ACCESS_TO_VISITOR).ok("trust");
    p.root.wait_remote_status(&leaf, "online", Duration::from_secs(20));
    // The leaf's own administrator identity, straight at the root's API.
    let leaf_admin = p.leaf.data_dir().join("admin.identity");
    let (code, body) = api_call(&leaf_admin, &p.root, "PATCH", &format!("/v1/remoteclusters/{leaf}"), r#"{"set_labels":{"env":"prod"}}"#);
    assert!(code == 0 || code == 403, "a leaf cannot relabel itself on the root: {code} {body}");
    let (code, body) = api_call(&leaf_admin, &p.root, "GET", "/v1/resources/user", "");
    assert!((code == 0 || code == 403) && !body.contains("myuser"), "a leaf cannot read the root: {code} {body}");
    // Sanity: the root's own administrator can do exactly that call.
    let (code, _) = api_call(&p.root.data_dir().join("admin.identity"), &p.root, "GET", "/v1/resources/user", "");
    assert_eq!(code, 200);
    assert_eq!(labels(&p), serde_json::json!({"tier": "gold"}), "labels unchanged");
}

#[test]
fn a_removed_trust_rejects_root_certificates_at_once() {
    let p = pair("removed", false);
    let node = NodeProc::join(&p.leaf, "leaf-db", false, "");
    p.trust_online();
    p.tsh.run(&["login", p.root_name()]).ok("refresh");
    assert_eq!(p.ssh("leaf-db", "echo in").ok("through the proxy"), "in\n");
    assert_eq!(p.tsh.openssh_direct(&p.root.ip, "visitor", &node.ip, "echo direct").ok("straight to the node"), "direct\n");
    p.leaf.tctl(&["rm", &format!("tc/{}", p.root_name())]).ok("remove the trust");
    let t = Instant::now();
    wait_for("the node to refuse the root's certificate", Duration::from_secs(5), || {
        (p.tsh.openssh_direct(&p.root.ip, "visitor", &node.ip, "true").code == 255).then_some(())
    });
    assert!(t.elapsed() < Duration::from_secs(2), "refused after {:?}", t.elapsed());
    assert!(node.log().contains("the certificate signed by untrusted CA"), "the node logs why");
    // The same certificate, presented again later, is still refused; the leaf is gone for the user.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(p.tsh.openssh_direct(&p.root.ip, "visitor", &node.ip, "true").code, 255);
    let out = p.ssh("leaf-db", "true");
    assert_ne!(out.code, 0, "{out:?}");
}

#[test]
fn hidden_and_unknown_clusters_get_the_same_answer() {
    let p = pair("enum", true);
    let leaf = p.leaf_name().to_string();
    p.trust_online();
    p.root.tctl(&["update", &format!("rc/{leaf}"), "--set-labels=env=secret"]).ok("hide the leaf");
    let node = format!("visitor@{}", p.leaf.node_name());
    let same = |args: &dyn Fn(&str) -> Vec<String>| {
        let hidden = p.tsh.run(&args(&leaf).iter().map(String::as_str).collect::<Vec<_>>());
        let unknown = p.tsh.run(&args("no-such-cluster.example.com").iter().map(String::as_str).collect::<Vec<_>>());
        assert_ne!(hidden.code, 0, "{hidden:?}");
        assert_eq!(hidden.code, unknown.code, "{args:?}", args = args("X"));
        assert_eq!(
            hidden.stderr.replace(&leaf, "X"),
            unknown.stderr.replace("no-such-cluster.example.com", "X"),
            "denied and unknown look the same for {:?}",
            args("X")
        );
    };
    same(&|c| vec!["ssh".into(), format!("--cluster={c}"), node.clone(), "true".into()]);
    same(&|c| vec!["ls".into(), format!("--cluster={c}")]);
    same(&|c| vec!["login".into(), c.to_string()]);
    same(&|c| vec!["proxy".into(), "ssh".into(), format!("--cluster={c}"), format!("visitor@{}:3022", p.leaf.node_name())]);
    let listed = p.tsh.run(&["clusters"]).ok("clusters").to_string();
    assert!(!listed.contains(&leaf), "{listed}");
}

#[test]
fn the_trust_handshake_is_rate_limited_per_address() {
    let mut o = ClusterOpts::new("ratelimit.example.com");
    o.node = false;
    let c = Cluster::start(o);
    let good = c.trusted_cluster_token("5m");
    let url = format!("https://{}/webapi/trustedclusters/validate", c.web);
    let ca = c.web_ca().display().to_string();
    let try_token = |token: &str, from: &str| -> (u16, String) {
        let body = serde_json::json!({"token": token, "certificate_authorities": [], "teleport_version": env!("CARGO_PKG_VERSION")});
        let out = curl(&["-s", "--cacert", &ca, "--interface", from, "-w", "\n%{http_code}", "-X", "POST", &url, "-d", &body.to_string()]);
        let (body, code) = out.stdout.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    };
    // Guessing from one address: a burst of 10 is answered, then a clear 429 (the bucket refills
    // one a second, so a slow box may see a few more answered; the bound says how many).
    let started = Instant::now();
    let mut refused = 0u64;
    let mut limited = None;
    for i in 0..40 {
        match try_token(&format!("{i:032x}"), "127.0.0.60") {
            (403, _) => refused += 1,
            (429, body) => {
                limited = Some((Instant::now(), body));
                break;
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    let (mut last_429, body) = limited.expect("the address is limited within 40 guesses");
    assert!(body.contains("too many requests from this address; wait a few seconds and try again"), "{body}");
    let refills = started.elapsed().as_secs() + 1;
    assert!(refused >= 10 && refused <= 10 + refills, "{refused} answered in {refills}s");
    // Even the right token waits while the address is limited. A token refilled in between
    // (more than a second since the last 429 on a loaded box) is a reason to look again, not a
    // failure; five looks bound it.
    let mut looked = 0;
    loop {
        let (code, body) = try_token(&good, "127.0.0.60");
        if code == 429 {
            assert!(body.contains("too many requests from this address"), "{body}");
            break;
        }
        looked += 1;
        assert!(last_429.elapsed() >= Duration::from_millis(900) && looked < 5, "even the right token waits: {code} {body}");
        assert!((0..10).any(|_| try_token("0123456789abcdef0123456789abcdee", "127.0.0.60").0 == 429), "limited again");
        last_429 = Instant::now();
    }
    // Another address is not affected.
    assert_eq!(try_token("0123456789abcdef0123456789abcdef", "127.0.0.61").0, 403);
    let failures = c.events().iter().filter(|e| e["event"] == "trusted_cluster.validate" && e["success"] == false).count();
    assert!(failures as u64 >= refused, "failed attempts are audited: {failures}");
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(files(&p)) } else { out.push(p) }
    }
    out
}

#[test]
fn secrets_stay_out_of_logs_audit_and_default_output_and_their_files_are_private() {
    let p = pair("secrets", true);
    let leaf = p.leaf_name().to_string();
    let token = p.root.trusted_cluster_token("5m");
    p.leaf.create("tc.yaml", &e2e::tc_yaml("root", &token, &p.root, true, ACCESS_TO_VISITOR)).ok("trust");
    p.root.wait_remote_status(&leaf, "online", Duration::from_secs(20));
    let node = NodeProc::join(&p.root, "root-db", false, "");
    let invite = p.root.tctl(&["users", "add", "second", "--roles=access"]).ok("invite").to_string();
    let invite_token = invite.lines().find(|l| l.starts_with("https://")).and_then(|l| l.rsplit('/').next()).unwrap().trim().to_string();
    p.root.tctl(&["tokens", "add", "--type=node", "--format=text"]).ok("node token");
    p.tsh.run(&["login", p.root_name()]).ok("refresh");
    assert_eq!(p.ssh(&p.leaf.node_name(), "echo hi").ok("session"), "hi\n");

    // What must never be written down where nobody asked for it.
    let mut secrets: Vec<(String, String)> = vec![
        ("the trusted_cluster token".into(), token.clone()),
        ("an invite token".into(), invite_token),
        ("a password".into(), PASSWORD.into()),
    ];
    for c in [&p.root, &p.leaf] {
        let cas = c.tctl(&["get", "cas", "--with-secrets", "--format=json"]).json();
        for ca in cas.as_array().unwrap() {
            for k in ca["spec"]["active_keys"]["ssh"].as_array().into_iter().flatten() {
                if let Some(key) = k["private_key"].as_str() {
                    secrets.push((format!("a private key of {}", ca["metadata"]["name"]), key.to_string()));
                }
            }
        }
        // Default output: no key material, no connector secrets.
        for kind in ["cas", "users", "roles", "tc", "rc", "github"] {
            let out = c.tctl(&["get", kind]).stdout;
            assert!(!out.contains("private_key") && !out.contains("PRIVATE KEY"), "tctl get {kind} on {}:\n{out}", c.opts.name);
        }
    }
    let profile_key = std::fs::read_to_string(p.tsh.home.path().join("profiles").join(&p.root.ip).join("tls.key")).unwrap();
    secrets.push(("the user's TLS key".into(), profile_key.lines().nth(1).unwrap_or_default().to_string()));
    let logs = [
        ("root log", p.root.log()),
        ("leaf log", p.leaf.log()),
        ("node log", node.log()),
        ("root audit", std::fs::read_to_string(p.root.data_dir().join("log/events.log")).unwrap()),
        ("leaf audit", std::fs::read_to_string(p.leaf.data_dir().join("log/events.log")).unwrap()),
    ];
    for (what, text) in &logs {
        assert!(!text.is_empty(), "{what} has content");
        assert!(!text.contains("PRIVATE KEY"), "{what} holds a private key");
        for (name, secret) in &secrets {
            assert!(!secret.is_empty());
            assert!(!text.contains(secret.as_str()), "{what} holds {name}");
        }
    }

    // Files: the data directories are 0700; nothing in them is readable by others except the
    // public web CA and certificate; every file holding a key is 0600.
    let public = ["webca.pem", "webcert.pem", "sans", "teleport.lock"];
    for dir in [p.root.data_dir(), p.leaf.data_dir(), node.dir.path().join("data")] {
        assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700, "{}", dir.display());
        for f in files(&dir) {
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
            if !public.contains(&name.as_str()) {
                assert_eq!(mode & 0o077, 0, "{} is {mode:o}", f.display());
            }
        }
        let db = dir.join("backend/sqlite.db");
        if db.exists() {
            assert_eq!(std::fs::metadata(&db).unwrap().permissions().mode() & 0o777, 0o600, "the database holds the CA keys");
        }
    }
    let home = p.tsh.home.path();
    for f in files(home) {
        let text = std::fs::read(&f).unwrap_or_default();
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        if String::from_utf8_lossy(&text).contains("PRIVATE KEY") || f.ends_with("profile.yaml") {
            assert_eq!(mode, 0o600, "{} is {mode:o}", f.display());
        }
    }
    assert_eq!(std::fs::metadata(home.join("profiles")).unwrap().permissions().mode() & 0o777, 0o700);
}

#[test]
fn an_older_link_dies_when_a_newer_one_is_issued_or_the_user_is_recreated() {
    let c = Cluster::start(ClusterOpts::new("stale-links.example.com"));
    let set = |token: &str, password: &str| {
        c.https_put("/webapi/users/password/token", &serde_json::json!({"token": token, "password": password}))
    };
    let gone = |r: &serde_json::Value| r["error"]["message"].as_str().unwrap_or_default().contains("has expired or was already used");
    let reset_token = |user: &str| {
        let out = c.tctl(&["users", "reset", user]);
        let url = out.ok("tctl users reset").lines().find(|l| l.starts_with("https://")).expect("reset URL").trim().to_string();
        url.rsplit('/').next().expect("token").to_string()
    };
    let invite = c.invite("bob", "access", "");
    let reset1 = reset_token("bob");
    let reset2 = reset_token("bob");
    // The invite and the first reset were replaced by the second reset.
    for (what, t) in [("the invite", &invite), ("the first reset", &reset1)] {
        let info = c.https_get(&format!("/webapi/users/password/token/{t}"));
        assert!(gone(&info), "{what} after a newer reset: {info}");
        let r = set(t, "attacker-password-1");
        assert!(gone(&r), "{what} sets no password after a newer reset: {r}");
    }
    // Deleted and re-created under the same name: the last link of the old user is dead too.
    c.tctl(&["users", "rm", "bob"]).ok("rm bob");
    let invite2 = c.invite("bob", "access", "");
    let r = set(&reset2, "attacker-password-2");
    assert!(gone(&r), "a link of the deleted user must not set the new user's password: {r}");
    let r = set(&invite2, "bob-password-1");
    assert_eq!(r["username"], "bob", "the new user's own invite works: {r}");
    assert!(gone(&set(&invite2, "bob-password-2")), "and only once");
    let mut tsh = e2e::Tsh::new("stale-links");
    tsh.login(&c, "bob", "bob-password-1").ok("the new bob signs in with his own password");
}

#[test]
fn tctl_edit_keeps_connector_secrets_it_never_shows() {
    let c = Cluster::start(ClusterOpts::new("edit-secrets.example.com"));
    let web = c.web.clone();
    c.create("roles.yaml", "kind: role\nversion: v7\nmetadata:\n  name: demo-cluster-access\nspec: {}\n").ok("role");
    let connectors = [
        (
            "github/github",
            "gh-secret-77",
            format!(
                "kind: github\nversion: v3\nmetadata:\n  name: github\nspec:\n  client_id: gh-client\n  client_secret: gh-secret-77\n  redirect_url: https://{web}/v1/webapi/github/callback\n  teams_to_roles:\n    - organization: acme\n      team: admins\n      roles: [access]\n"
            ),
        ),
        (
            "oidc/myoidc",
            "oidc-secret-88",
            format!(
                "kind: oidc\nversion: v3\nmetadata:\n  name: myoidc\nspec:\n  issuer_url: https://idp.example.com\n  client_id: teleport\n  client_secret: oidc-secret-88\n  redirect_url: https://{web}/v1/webapi/oidc/callback\n  claims_to_roles:\n    - claim: groups\n      value: admins\n      roles: [access]\n"
            ),
        ),
        (
            "saml/mysaml",
            "saml-private-key-99",
            format!(
                "kind: saml\nversion: v2\nmetadata:\n  name: mysaml\nspec:\n  acs: https://{web}/v1/webapi/saml/acs/mysaml\n  entity_descriptor_url: https://idp.example.com/metadata\n  signing_key_pair:\n    cert: saml-cert\n    private_key: saml-private-key-99\n  attributes_to_roles:\n    - name: groups\n      value: admins\n      roles: [access]\n"
            ),
        ),
    ];
    let seen = c.dir.path().join("seen-by-the-editor.yaml");
    let editor = c.dir.path().join("editor.sh");
    // The guide's edit: add demo-cluster-access next to access (and keep a copy of what the
    // editor was shown).
    std::fs::write(&editor, format!("#!/bin/sh\ncp \"$1\" {}\nsed -i 's/roles: \\[access\\]/roles: [access, demo-cluster-access]/; s/^    - access$/    - access\\n    - demo-cluster-access/' \"$1\"\n", seen.display()))
        .expect("editor");
    std::fs::set_permissions(&editor, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    for (reference, secret, yaml) in &connectors {
        let file = reference.replace('/', "-");
        c.create(&format!("{file}.yaml"), yaml).ok("create the connector");
        let out = c.tctl_env(&["edit", reference], &[("EDITOR", editor.to_str().unwrap())], None);
        let kind = reference.split('/').next().unwrap_or_default();
        assert!(out.ok(&format!("tctl edit {reference}")).contains("has been updated"), "{out:?}");
        let shown = std::fs::read_to_string(&seen).expect("what the editor saw");
        assert!(!shown.contains(secret), "{reference}: the editor was shown the secret:\n{shown}");
        assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret), "{out:?}");
        let stored = c.tctl(&["get", reference, "--with-secrets", "--format=json"]).json();
        let spec = &stored[0]["spec"];
        let kept = if kind == "saml" { &spec["signing_key_pair"]["private_key"] } else { &spec["client_secret"] };
        assert_eq!(kept, secret, "{reference}: the secret survived the edit: {stored}");
        assert!(stored.to_string().contains("demo-cluster-access"), "{reference}: the edit was applied: {stored}");
        assert!(!c.log().contains(secret), "{reference}: the secret is in the daemon's log");
    }
    // A new connector without its secret is still refused (only an edit keeps the stored one).
    let bare = connectors[0].2.replace("  client_secret: gh-secret-77\n", "").replace("name: github", "name: github2");
    c.create("bare.yaml", &bare).fails_with("a connector without its secret", "spec.client_secret is required");
}
