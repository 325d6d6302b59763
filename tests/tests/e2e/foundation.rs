//! Issue 2: the daemon, its state, CAs, API and `tctl` resource management.

use std::time::Duration;

use e2e::{Cluster, ClusterOpts, bin, run, wait_for};

const VISITOR: &str = "kind: role\nversion: v5\nmetadata:\n  name: visitor\nspec:\n  allow:\n    logins:\n      - visitor\n    node_labels:\n      '*': '*'\n\n";

fn foundation_cluster(name: &str) -> Cluster {
    let mut o = ClusterOpts::new(name);
    o.node = false;
    Cluster::start(o)
}

#[test]
fn ping_reports_cluster_and_addresses_for_the_guides_jq_recipes() {
    let c = foundation_cluster("root.example.com");
    let curl = |filter: &str| {
        let out = run(
            std::path::Path::new("/bin/sh"),
            &["-c", &format!("curl -s --cacert {} https://{}/webapi/ping | jq -r '{filter}'", c.web_ca().display(), c.web)],
            &[],
            None,
            Duration::from_secs(30),
        );
        out.ok("curl | jq").trim().to_string()
    };
    assert_eq!(curl(".cluster_name"), "root.example.com");
    assert_eq!(curl("if .proxy.tls_routing_enabled == true then .proxy.ssh.public_addr else .proxy.ssh.ssh_tunnel_public_addr end"), c.web);
    assert_eq!(curl(".proxy.ssh.public_addr"), c.web);
    assert_eq!(curl(".server_version"), env!("CARGO_PKG_VERSION"));
    assert_eq!(curl(".auth.type"), "local");
    assert_eq!(curl(".min_client_version"), "17.0.0");
}

#[test]
fn resources_round_trip_in_all_formats() {
    let c = foundation_cluster("rt.example.com");
    assert_eq!(c.create("visitor.yaml", VISITOR).ok("create").trim(), "role \"visitor\" has been created");
    // Creating again without -f is refused, with -f it replaces.
    c.create("visitor.yaml", VISITOR).fails_with("create twice", "role \"visitor\" already exists");
    let p = c.dir.path().join("visitor.yaml");
    assert_eq!(c.tctl(&["create", "-f", p.to_str().unwrap()]).ok("create -f").trim(), "role \"visitor\" has been updated");

    let yaml = c.tctl(&["get", "role/visitor"]).ok("get yaml").to_string();
    assert!(yaml.starts_with("kind: role\nmetadata:\n  id: "), "{yaml}");
    assert!(yaml.contains("    logins:\n    - visitor\n"), "lists are not indented under their key:\n{yaml}");
    let json = c.tctl(&["get", "roles", "--format=json"]).json();
    let names: Vec<&str> = json.as_array().unwrap().iter().map(|r| r["metadata"]["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["access", "auditor", "editor", "visitor"]);
    let text = c.tctl(&["get", "roles", "--format=text"]).ok("get text").to_string();
    assert!(text.starts_with("Role    Allowed to login as Node Labels"), "{text}");

    // Edit through $EDITOR: add a login.
    let out = c.tctl_env(&["edit", "role/visitor"], &[("EDITOR", "sed -i 's/    - visitor/    - visitor\\n    - guest/'")], None);
    assert_eq!(out.ok("edit").trim(), "role \"visitor\" has been updated");
    let json = c.tctl(&["get", "role/visitor", "--format=json"]).json();
    assert_eq!(json[0]["spec"]["allow"]["logins"], serde_json::json!(["visitor", "guest"]));
    // An editor that changes nothing applies nothing.
    let out = c.tctl_env(&["edit", "role/visitor"], &[("EDITOR", "true")], None);
    assert!(out.stderr.contains("no changes"), "{}", out.stderr);

    // Concurrent change: the editor changes the role behind tctl's back; the edit is refused.
    let script = c.dir.path().join("sneaky-editor.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nsed -i 's/guest/sneaky/' \"$1\"\nTELEPORT_HOME=/nonexistent {tctl} -c {cfg} create -f {p} >/dev/null\n",
            tctl = bin("tctl").display(),
            cfg = c.config().display(),
            p = p.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = c.tctl_env(&["edit", "role/visitor"], &[("EDITOR", script.to_str().unwrap())], None);
    out.fails_with("concurrent edit", "changed by someone else");
    let json = c.tctl(&["get", "role/visitor", "--format=json"]).json();
    assert_eq!(json[0]["spec"]["allow"]["logins"], serde_json::json!(["visitor"]), "the concurrent writer's version stays");

    assert_eq!(c.tctl(&["rm", "role/visitor"]).ok("rm").trim(), "role \"visitor\" has been deleted");
    c.tctl(&["get", "role/visitor"]).fails_with("get deleted", "role \"visitor\" is not found");
    c.tctl(&["rm", "role/visitor"]).fails_with("rm twice", "is not found");
}

#[test]
fn users_get_invites_and_tokens_expire() {
    let c = foundation_cluster("users.example.com");
    let out = c.tctl(&["users", "add", "myuser", "--roles=access,editor", "--logins=root,ubuntu"]);
    let text = out.ok("users add");
    assert!(text.starts_with("User \"myuser\" has been created but requires a password. Share this URL with the user to complete user setup, link is valid for 1h:\nhttps://"), "{text}");
    assert!(text.contains(&format!("https://{}/web/invite/", c.web)), "{text}");
    let token = text.lines().nth(1).unwrap().rsplit('/').next().unwrap().to_string();
    // The invite page is HTML a browser can use.
    let page = run(
        std::path::Path::new("curl"),
        &["-s", "--cacert", c.web_ca().to_str().unwrap(), &format!("https://{}/web/invite/{token}", c.web)],
        &[],
        None,
        Duration::from_secs(20),
    );
    let html = page.ok("invite page");
    assert!(html.contains("name=\"password\"") && html.contains(&format!("action=\"/web/invite/{token}\"")), "{html}");
    // Too short, then good, then reused.
    let r = c.https_put("/webapi/users/password/token", &serde_json::json!({"token": token, "password": "short"}));
    assert!(r["error"]["message"].as_str().unwrap_or_default().contains("at least 8 characters"), "{r}");
    let r = c.https_put("/webapi/users/password/token", &serde_json::json!({"token": token, "password": "long-enough-1"}));
    assert_eq!(r["username"], "myuser");
    let r = c.https_put("/webapi/users/password/token", &serde_json::json!({"token": token, "password": "long-enough-2"}));
    assert!(r["error"]["message"].as_str().unwrap_or_default().contains("expired or was already used"), "{r}");

    let users = c.tctl(&["get", "users", "--format=json"]).json();
    assert_eq!(users[0]["spec"]["traits"]["logins"], serde_json::json!(["root", "ubuntu"]));
    assert!(!users.to_string().contains("argon2"), "password hashes never leave storage");
    c.tctl(&["users", "update", "myuser", "--set-roles=access"]).ok("users update");
    assert_eq!(c.tctl(&["get", "user/myuser", "--format=json"]).json()[0]["spec"]["roles"], serde_json::json!(["access"]));
    c.tctl(&["users", "add", "other", "--roles=nope"]).fails_with("unknown role", "role \"nope\" is not found");

    // Tokens: add, list, expire.
    let out = c.tctl(&["tokens", "add", "--type=trusted_cluster", "--ttl=5m"]);
    let text = out.ok("tokens add");
    assert!(text.starts_with("The cluster invite token: "), "{text}");
    assert!(
        text.contains(
            "This token will expire in 5 minutes\n\nUse this token when defining a trusted cluster resource on a remote cluster.\n"
        ),
        "{text}"
    );
    assert!(text.contains(&format!("web_proxy_addr: {}", c.web)), "the snippet carries the real address:\n{text}");
    let short = c.tctl(&["tokens", "add", "--type=node", "--ttl=2s", "--format=text"]).ok("short token").trim().to_string();
    let ls = c.tctl(&["tokens", "ls"]).ok("tokens ls").to_string();
    assert!(ls.starts_with("Token                            Type            Labels Expiry Time (UTC)"), "{ls}");
    assert!(ls.contains(&short), "{ls}");
    wait_for("the short token to expire", Duration::from_secs(10), || (!c.tctl(&["tokens", "ls"]).stdout.contains(&short)).then_some(()));
    c.tctl(&["tokens", "rm", &short]).fails_with("rm expired token", "is not found");
}

#[test]
fn certificate_authorities_survive_restarts_and_hide_private_keys() {
    let mut c = foundation_cluster("ca.example.com");
    let fingerprints = |c: &Cluster| c.tctl(&["get", "cas", "--format=text"]).ok("get cas").to_string();
    let before = fingerprints(&c);
    assert!(before.contains("ca.example.com host") && before.contains("ca.example.com user"), "{before}");
    let yaml = c.tctl(&["get", "cert_authority"]).ok("get cas yaml").to_string();
    assert!(!yaml.contains("private_key") && !yaml.contains(" key:"), "no secrets without --with-secrets:\n{yaml}");
    let secret = c.tctl(&["get", "cert_authority/host", "--with-secrets", "--format=json"]).json();
    assert!(secret[0]["spec"]["active_keys"]["ssh"][0]["private_key"].is_string(), "the admin can read keys with --with-secrets");
    c.restart();
    assert_eq!(fingerprints(&c), before, "CAs are created once and reused");
    // The data dir and secrets are private.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: std::path::PathBuf| std::fs::metadata(&p).map(|m| m.permissions().mode() & 0o777).unwrap_or(0);
    assert_eq!(mode(c.data_dir()), 0o700);
    assert_eq!(mode(c.data_dir().join("admin.identity")), 0o600);
    assert!(!c.log().contains("PRIVATE KEY"), "no keys in the log");
    // Graceful stop closes the database cleanly.
    c.stop();
    assert!(c.log().contains("storage closed"), "{}", c.log());
}

#[test]
fn bad_input_gets_one_clear_error_and_changes_nothing() {
    let c = foundation_cluster("bad.example.com");
    c.create("visitor.yaml", VISITOR).ok("seed");
    let dump = |c: &Cluster| {
        let mut all = String::new();
        for k in ["roles", "users", "tokens", "tc", "rc", "github"] {
            all.push_str(&c.tctl(&["get", k, "--format=json"]).stdout);
        }
        all.replace(|ch: char| ch.is_ascii_digit(), "")
    };
    let before = dump(&c);
    let cases: Vec<(&str, &str, &str)> = vec![
        ("malformed.yaml", "kind: role\nmetadata:\n  name: [oops\n", "malformed.yaml:"),
        ("unknown-kind.yaml", "kind: rolez\nversion: v5\nmetadata: {name: x}\n", "unknown resource kind \"rolez\"; known kinds: role"),
        (
            "wrong-type.yaml",
            "kind: role\nversion: v5\nmetadata: {name: x}\nspec: {allow: {logins: root}}\n",
            "field spec.allow.logins: invalid type",
        ),
        ("bad-version.yaml", "kind: role\nversion: v99\nmetadata: {name: x}\n", "unrecognized role version: v99"),
        (
            "wildcard-login.yaml",
            "kind: role\nversion: v5\nmetadata: {name: x}\nspec: {allow: {logins: ['*']}}\n",
            "wildcard matcher is not allowed in logins",
        ),
        (
            "bad-regex.yaml",
            "kind: role\nversion: v5\nmetadata: {name: x}\nspec: {allow: {node_labels: {env: '^(prod$'}}}\n",
            "invalid label value",
        ),
        (
            "bad-template.yaml",
            "kind: role\nversion: v5\nmetadata: {name: x}\nspec: {allow: {logins: ['{{internal.logins']}}\n",
            "template brackets",
        ),
        (
            "typo-field.yaml",
            "kind: role\nversion: v5\nmetadata: {name: x}\nspec: {allow: {node_lables: {a: b}}}\n",
            "unknown field `node_lables`",
        ),
        (
            "bad-rolemap.yaml",
            "kind: trusted_cluster\nversion: v2\nmetadata: {name: r}\nspec: {enabled: true, token: t, web_proxy_addr: 'r:3080', role_map: [{remote: a, local: ['*']}]}\n",
            "wildcard value is not supported for 'local' property of 'role_map' entry",
        ),
        (
            "no-rolemap.yaml",
            "kind: trusted_cluster\nversion: v2\nmetadata: {name: r}\nspec: {enabled: true, token: t, web_proxy_addr: 'r:3080'}\n",
            "missing 'role_map' parameter",
        ),
        (
            "second-doc-bad.yaml",
            "kind: role\nversion: v5\nmetadata: {name: fine}\n---\nkind: role\nversion: v5\nmetadata: {name: bad}\nspec: {allow: {logins: 7}}\n",
            "document 2 (line 5)",
        ),
        (
            "rc.yaml",
            "kind: remote_cluster\nversion: v3\nmetadata: {name: x}\n",
            "creating resources of type \"remote_cluster\" is not supported",
        ),
        ("empty.yaml", "# nothing\n", "no resources found"),
        ("list.yaml", "- a\n- b\n", "not a mapping"),
    ];
    for (file, yaml, needle) in &cases {
        c.create(file, yaml).fails_with(file, needle);
    }
    let bin_path = c.dir.path().join("binary.yaml");
    std::fs::write(&bin_path, b"kind: role\nmetadata: {name: \xff\xfe}\n").unwrap();
    c.tctl(&["create", bin_path.to_str().unwrap()]).fails_with("invalid UTF-8", "not valid UTF-8");
    let huge = c.dir.path().join("huge.yaml");
    std::fs::write(&huge, vec![b'#'; 5 * 1024 * 1024]).unwrap();
    c.tctl(&["create", huge.to_str().unwrap()]).fails_with("huge", "limited to");
    c.tctl(&["create", "/nonexistent.yaml"]).fails_with("missing file", "cannot read /nonexistent.yaml");
    c.tctl(&["get", "nosuchkind"]).fails_with("get unknown kind", "unknown resource kind");
    c.tctl(&["tokens", "add", "--type=wizard"]).fails_with("bad token type", "unknown token type \"wizard\"");
    c.tctl(&["tokens", "add", "--type=node", "--ttl=forever"]).fails_with("bad ttl", "invalid duration");
    c.tctl(&["update", "role/visitor", "--set-labels=a=b"])
        .fails_with("update role", "updating resources of type \"role\" is not supported, supported are: \"remote_cluster\"");
    c.tctl(&["update", "rc/nope"]).fails_with("update without flags", "use at least one of --set-labels or --set-ttl");
    c.tctl(&["update", "rc/nope", "--set-labels=env=demo"]).fails_with("update unknown rc", "remote cluster \"nope\" is not found");
    c.tctl(&["rm", "rc/nope"]).fails_with("rm unknown rc", "remote cluster \"nope\" is not found");
    c.tctl(&["rm", "tc/nope"]).fails_with("rm unknown tc", "trusted cluster \"nope\" is not found");
    c.tctl(&["users", "add", "x y", "--roles=access"]).fails_with("bad user name", "invalid user name");
    let usage = c.tctl(&["frobnicate"]);
    assert_eq!(usage.code, 2, "usage errors exit with 2: {usage:?}");
    assert_eq!(dump(&c), before, "state unchanged after every bad input");
}

#[test]
fn config_errors_name_the_key_and_line() {
    let dir = e2e::TempDir::new("cfg");
    let cfg = dir.path().join("teleport.yaml");
    std::fs::write(&cfg, "version: v3\nteleport:\n  nodename: a\n  data_dirr: /tmp/x\n").unwrap();
    let out = run(&bin("teleport"), &["start", "-c", cfg.to_str().unwrap()], &[], None, Duration::from_secs(20));
    out.fails_with("unknown key", &format!("{}:4:", cfg.display()));
    assert!(out.stderr.contains("unknown field `data_dirr`"), "{}", out.stderr);
    let v = run(&bin("teleport"), &["version"], &[], None, Duration::from_secs(10));
    assert!(v.ok("version").starts_with(&format!("Teleport v{} git:", env!("CARGO_PKG_VERSION"))), "{}", v.stdout);
    assert!(v.stdout.contains(" rustc "), "{}", v.stdout);
    let out = run(
        &bin("teleport"),
        &["configure", "--cluster-name=x.example.com", "--public-addr=x.example.com:3080"],
        &[],
        None,
        Duration::from_secs(10),
    );
    assert!(out.ok("configure").contains("cluster_name: x.example.com"), "{}", out.stdout);
}
