//! Applications across trusted clusters, first part: a leaf's `app_service` registers its apps,
//! admins define more with `tctl create`, and a root's user lists those the leaf's mapped roles'
//! `app_labels` allow (`tsh apps ls --cluster=leaf`, `--all`).

use std::time::Duration;

use e2e::{Cluster, ClusterOpts, PASSWORD, Tsh, output_when, tc_yaml, wait_for};

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
    lo.sections = "app_service:\n  enabled: yes\n  apps:\n  - name: grafana\n    description: Dashboards\n    uri: http://127.0.0.1:3000\n    labels: {env: prod}\n    commands:\n    - {name: build, command: [echo, v42], period: 1m}\n  - name: admin-panel\n    uri: https://127.0.0.1:8443\n    public_addr: admin.customer.example.com\n    labels: {env: internal}\n  - name: redis\n    uri: tcp://127.0.0.1:6379\n    labels: {env: prod}\n".into();
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
    assert!(defined.ok("tctl get app/wiki").contains("(defined)"), "{defined:?}");

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
    assert!(table.contains("build=v42"), "the dynamic label's command ran: {table}");
    assert!(table.lines().any(|l| l.starts_with("redis") && l.contains("TCP")), "{table}");
    assert!(table.contains("wiki") && !table.contains("admin-panel"), "app_labels of the mapped role decide: {table}");
    let all = alice.run(&["apps", "ls", "--all", "-f", "json"]).json();
    let names: Vec<&str> = all.as_array().unwrap().iter().map(|r| r["app"]["metadata"]["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"grafana") && !names.contains(&"admin-panel"), "{all}");
    assert!(all.as_array().unwrap().iter().all(|r| r["cluster"] == "leaf-apps.example.com"), "{all}");
}

/// A root whose public address is a DNS name (apps live under it), listening on a loopback
/// address the tests resolve that name to.
fn root_with_dns_name(name: &str, host: &str) -> Cluster {
    let ip = e2e::free_ip(&[3080, 3022, 3000]);
    let mut ro = ClusterOpts::new(name);
    ro.node = false;
    ro.ip = Some(ip.clone());
    ro.public_addr = Some(format!("{host}:3080"));
    ro.proxy_extra = format!("  tunnel_public_addr: {ip}:3080\n");
    Cluster::start(ro)
}

/// `curl` with the root's web CA, `host` resolved to the root's address, and `args`.
fn curl(root: &Cluster, host: &str, args: &[&str]) -> e2e::Out {
    let resolve = format!("{host}:3080:{}", root.ip);
    let ca = root.web_ca().display().to_string();
    let mut all = vec!["-sS", "--max-time", "20", "--cacert", ca.as_str(), "--resolve", resolve.as_str()];
    all.extend_from_slice(args);
    e2e::run(std::path::Path::new("curl"), &all, &[], None, T)
}

fn jwt_claims(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let part = token.split('.').nth(1).unwrap_or_default();
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(part).unwrap_or_default()).unwrap_or_default()
}

/// The leaf's jwt signing key, read from its database (for a test to sign a token the app must
/// refuse: expired, though the key is right).
fn leaf_jwt_signer(leaf: &Cluster) -> shared::jwt::Signer {
    use base64::Engine as _;
    let conn = rusqlite::Connection::open_with_flags(
        leaf.data_dir().join("backend").join("sqlite.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("database");
    let key = format!("authorities/jwt/{}", leaf.opts.name);
    let v: Vec<u8> = conn.query_row("SELECT value FROM kv WHERE key = ?1", [key], |r| r.get(0)).expect("the jwt CA");
    let ca: serde_json::Value = serde_json::from_slice(&v).expect("CA JSON");
    let k = &ca["spec"]["active_keys"]["jwt"][0];
    let b64 = base64::engine::general_purpose::STANDARD;
    let private = String::from_utf8(b64.decode(k["private_key"].as_str().unwrap()).unwrap()).unwrap();
    let public = String::from_utf8(b64.decode(k["public_key"].as_str().unwrap()).unwrap()).unwrap();
    shared::jwt::Signer::new(&private, &public).expect("signer")
}

/// The leaf's Apache: a JWT-verifying app with the leaf's keys (fetched over TLS it checks
/// against the leaf's web CA, copied where Apache's user may read it once the leaf made it).
struct LeafApache {
    proc: e2e::apps::AppProc,
    _ca_dir: e2e::TempDir,
}

/// A leaf named `name` trusting `root` (root `access` → leaf `visitor`, whose `app_labels`
/// allow `env: prod`), serving `apps` (name, uri, extra YAML) with label `env: prod`, and
/// an Apache with mod_auth_openidc as app `apache.0` (its extra YAML `apache.1`).
fn leaf_with_apps(
    root: &Cluster,
    name: &str,
    apps: &[(&str, String, &str)],
    apache: Option<(&str, &str)>,
) -> (Cluster, Option<LeafApache>) {
    let ip = e2e::free_ip(&[3080, 3022, 3000]);
    let mut lo = ClusterOpts::new(name);
    lo.node = false;
    lo.ip = Some(ip.clone());
    lo.env = vec![("SSL_CERT_FILE".into(), root.web_ca().display().to_string())];
    let mut sections = "app_service:\n  enabled: yes\n  apps:\n".to_string();
    for (n, uri, extra) in apps {
        sections.push_str(&format!("  - name: {n}\n    uri: {uri}\n    labels: {{env: prod}}\n{extra}"));
    }
    let ca_dir = e2e::TempDir::new("apache-ca");
    let ca_copy = ca_dir.path().join("leaf-webca.pem");
    let apache = apache.map(|(n, extra)| {
        let proc = e2e::apps::apache_oidc(&format!("https://{ip}:3080/.well-known/jwks.json"), &ca_copy);
        sections.push_str(&format!("  - name: {n}\n    uri: http://{}\n    labels: {{env: prod}}\n{extra}", proc.addr));
        proc
    });
    lo.sections = sections;
    let leaf = Cluster::start(lo);
    std::fs::copy(leaf.web_ca(), &ca_copy).expect("leaf web CA for apache");
    for (p, mode) in [(ca_dir.path(), "a+rx"), (ca_copy.as_path(), "a+r")] {
        let _ = std::process::Command::new("chmod").arg(mode).arg(p).status();
    }
    leaf.create(
        "visitor.yaml",
        "kind: role\nversion: v7\nmetadata: {name: visitor}\nspec:\n  allow:\n    logins: [visitor]\n    app_labels: {env: prod}\n",
    )
    .ok("leaf role");
    let token = root.trusted_cluster_token("5m");
    leaf.create("tc.yaml", &tc_yaml(&root.opts.name, &token, root, true, e2e::ACCESS_TO_VISITOR)).ok("trust");
    root.wait_remote_status(name, "online", T);
    (leaf, apache.map(|proc| LeafApache { proc, _ca_dir: ca_dir }))
}

#[test]
fn tsh_apps_login_reaches_a_leafs_apps_which_see_the_leafs_name_for_the_user_in_a_token_they_verify() {
    e2e::ensure_unix_user("visitor");
    let root = root_with_dns_name("root-app2.example.com", "root-app2.test");
    root.add_user("alice", "access", "visitor", PASSWORD);
    let echo = e2e::apps::httpbin();
    let ws = e2e::apps::ws_echo();
    let redis = e2e::apps::redis();
    let dashboard = "    rewrite:\n      headers:\n      - name: Authorization\n        value: 'Bearer {{internal.jwt}}'\n      - name: X-Logins\n        value: '{{internal.logins}}'\n";
    let (leaf, apache) = leaf_with_apps(
        &root,
        "leaf-app2.example.com",
        &[
            ("echo", format!("http://{}", echo.addr), ""),
            ("ws", format!("http://{}", ws.addr), ""),
            ("redis", format!("tcp://{}", redis.addr), ""),
        ],
        Some(("dashboard", dashboard)),
    );
    let apache = apache.expect("apache");
    let mut alice = Tsh::new("alice-app2");
    alice.login(&root, "alice", PASSWORD).ok("alice signs in");
    let leaf_name = "leaf-app2.example.com";
    let cluster = format!("--cluster={leaf_name}");
    wait_for("the leaf's apps", T, || alice.run(&["apps", "ls", &cluster]).stdout.contains("redis").then_some(()));

    // Unknown or not allowed reads the same, in one line, and writes nothing.
    let none = alice.run(&["apps", "login", &cluster, "nope"]);
    assert!(none.code == 1 && none.stderr.contains("\"nope\" not found") && none.stderr.lines().count() == 1, "{none:?}");

    // Logged in: the example curl line works as printed (with the host resolved here).
    let login = alice.run(&["apps", "login", &cluster, "echo"]);
    let text = login.ok("tsh apps login echo");
    assert!(text.contains("Logged into app echo. Example curl command:") && text.contains("https://echo.root-app2.test:3080"), "{text}");
    let ls = alice.run(&["apps", "ls", &cluster]);
    assert!(ls.ok("tsh apps ls").lines().any(|l| l.starts_with("> echo")), "the active app is marked: {}", ls.stdout);
    let cert = alice.run(&["apps", "config", "--format=cert", "echo"]).ok("config cert").trim().to_string();
    let key = alice.run(&["apps", "config", "--format=key", "echo"]).ok("config key").trim().to_string();
    let uri = alice.run(&["apps", "config", "--format=uri", "echo"]).ok("config uri").trim().to_string();
    assert_eq!(uri, "https://echo.root-app2.test:3080");
    let got = curl(
        &root,
        "echo.root-app2.test",
        &[
            "--cert",
            &cert,
            "--key",
            &key,
            "-H",
            "X-Forwarded-For: 6.6.6.6",
            "-H",
            "Teleport-Jwt-Assertion: forged",
            "-b",
            "__Host-grv_app_session=leak; __Host-grv_app_session_subject=leak; keep=1",
            // httpbin hides X-Forwarded-* unless asked.
            &format!("{uri}/headers?show_env=1"),
        ],
    );
    let v: serde_json::Value = serde_json::from_str(&got.stdout).unwrap_or_else(|_| panic!("httpbin's answer: {got:?}"));
    let h = &v["headers"];
    assert_eq!(h["X-Forwarded-Proto"], "https", "{h}");
    assert_eq!(h["X-Forwarded-Host"], "echo.root-app2.test:3080", "{h}");
    assert_eq!(h["X-Forwarded-For"], "127.0.0.1", "curl's address as the root saw it, never what it sent: {h}");
    assert_eq!(h["X-Forwarded-Ssl"], "on", "{h}");
    assert_eq!(h["Cookie"], "keep=1", "the app session's cookies never reach the app: {h}");
    let jwt = h["Teleport-Jwt-Assertion"].as_str().unwrap_or_default();
    let c = jwt_claims(jwt);
    assert_eq!(c["iss"], leaf_name, "signed by the leaf: {c}");
    assert_eq!(c["sub"], "remote-alice-root-app2.example.com", "{c}");
    assert_eq!(c["username"], "remote-alice-root-app2.example.com", "{c}");
    assert_eq!(c["roles"], serde_json::json!(["visitor"]), "the mapped roles: {c}");
    assert_eq!(c["aud"], serde_json::json!([format!("http://{}", echo.addr)]), "{c}");
    let (iat, exp) = (c["iat"].as_i64().unwrap(), c["exp"].as_i64().unwrap());
    assert!(exp > iat && exp - iat <= 600, "at most ten minutes: {c}");

    // Apache checks the token itself (copied into Authorization by rewrite.headers) against the
    // leaf's published keys, and shows the name the leaf gives the user.
    alice.run(&["apps", "login", &cluster, "dashboard"]).ok("login dashboard");
    let dcert = alice.run(&["apps", "config", "--format=cert", "dashboard"]).ok("cert").trim().to_string();
    let dkey = alice.run(&["apps", "config", "--format=key", "dashboard"]).ok("key").trim().to_string();
    let page = curl(&root, "dashboard.root-app2.test", &["--cert", &dcert, "--key", &dkey, "https://dashboard.root-app2.test:3080/"]);
    assert!(page.stdout.contains("<span id=\"user\">remote-alice-root-app2.example.com</span>"), "{page:?}\napache: {}", apache.proc.log());
    // The app itself refuses a token the leaf did not sign, and one it signed that expired.
    let direct = |token: &str| {
        let auth = format!("Authorization: Bearer {token}");
        e2e::run(
            std::path::Path::new("curl"),
            &["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", &auth, &format!("http://{}/", apache.proc.addr)],
            &[],
            None,
            T,
        )
        .stdout
    };
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let forger = shared::jwt::Signer::new(&other.serialize_pem(), &other.public_key_pem()).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut claims = c.clone();
    claims["iat"] = now.into();
    claims["nbf"] = (now - 10).into();
    claims["exp"] = (now + 300).into();
    assert_eq!(direct(&forger.sign(&claims).unwrap()), "401", "a forged token");
    let mut expired = claims.clone();
    expired["exp"] = (now - 120).into();
    expired["nbf"] = (now - 900).into();
    expired["iat"] = (now - 900).into();
    let real_key = leaf_jwt_signer(&leaf);
    assert_eq!(direct(&real_key.sign(&expired).unwrap()), "401", "an expired token");
    assert_eq!(direct(&real_key.sign(&claims).unwrap()), "200", "the same claims, fresh and signed by the leaf");

    // The reserved headers are the leaf's to set: rewrite.headers cannot forge them.
    let echoed = curl(&root, "echo.root-app2.test", &["--cert", &cert, "--key", &key, &format!("{uri}/headers")]);
    assert!(!echoed.stdout.contains("forged"), "{echoed:?}");

    // A WebSocket passes through (tsh proxy app: a local listener adding the certificate).
    let port = 20000 + (now % 20000) as u16;
    let mut proxy = alice.command(&["proxy", "app", &cluster, "ws", "-p", &port.to_string()]);
    let mut ws_proxy = proxy.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::inherit()).spawn().expect("tsh proxy app");
    wait_for("tsh proxy app to listen", T, || std::net::TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ()));
    let (mut sock, _) = tungstenite::connect(format!("ws://127.0.0.1:{port}/live")).expect("WebSocket through the proxy");
    let first = sock.read().expect("headers message").into_text().unwrap().to_string();
    assert!(first.contains("teleport-jwt-assertion"), "the upgrade carries the token: {first}");
    sock.send(tungstenite::Message::text("ping over the trust")).unwrap();
    assert_eq!(sock.read().unwrap().into_text().unwrap().as_str(), "ping over the trust");
    let _ = ws_proxy.kill();
    let _ = ws_proxy.wait();

    // A TCP app: only through tsh proxy app (which logs in by itself).
    let rport = port + 1;
    let mut rproxy = alice.command(&["proxy", "app", &cluster, "redis", "-p", &rport.to_string()]);
    let mut redis_proxy =
        rproxy.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::inherit()).spawn().expect("tsh proxy app");
    wait_for("tsh proxy app redis", T, || std::net::TcpStream::connect(("127.0.0.1", rport)).ok().map(|_| ()));
    let pong = e2e::run(std::path::Path::new("redis-cli"), &["-h", "127.0.0.1", "-p", &rport.to_string(), "ping"], &[], None, T);
    assert_eq!(pong.stdout.trim(), "PONG", "{pong:?}");
    let _ = redis_proxy.kill();
    let _ = redis_proxy.wait();

    // The leaf decides, at every connection: its admin narrows the role and the same
    // certificate gets a plain 403 from the leaf, naming nothing inside.
    leaf.create_force(
        "visitor.yaml",
        "kind: role\nversion: v7\nmetadata: {name: visitor}\nspec:\n  allow:\n    logins: [visitor]\n    app_labels: {env: staging}\n",
    )
    .ok("narrow the role");
    let denied = output_when(
        "the leaf to refuse",
        T,
        || curl(&root, "echo.root-app2.test", &["--cert", &cert, "--key", &key, "-w", "\n%{http_code}", &format!("{uri}/headers")]).stdout,
        |o| o.ends_with("403"),
    );
    assert!(
        denied.contains("not allowed to access this application") && !denied.contains("app_labels") && !denied.contains("visitor"),
        "{denied}"
    );
    let events = leaf.events();
    let req =
        events.iter().find(|e| e["event"] == "app.session.request" && e["app_name"] == "echo").expect("app.session.request at the leaf");
    assert_eq!(
        (req["code"].as_str(), req["method"].as_str(), req["path"].as_str()),
        (Some("T2009I"), Some("GET"), Some("/headers")),
        "{req}"
    );
    assert_eq!(req["user"], "remote-alice-root-app2.example.com");
    assert_eq!(req["roles"], serde_json::json!(["visitor"]));
    assert_eq!(req["status_code"], 200);
    assert!(events.iter().any(|e| e["event"] == "app.session.start" && e["code"] == "T2007I"), "start");
    assert!(events.iter().any(|e| e["event"] == "app.session.end" && e["code"] == "T2011I"), "end");
    assert!(!serde_json::to_string(&events).unwrap().contains(jwt), "no token in the audit log");

    // Logged out: the root ends the session, and the certificate with it.
    leaf.create_force(
        "visitor.yaml",
        "kind: role\nversion: v7\nmetadata: {name: visitor}\nspec:\n  allow:\n    logins: [visitor]\n    app_labels: {env: prod}\n",
    )
    .ok("widen the role again");
    // The jwt CA rotates like the others: the new key is published first, signs from
    // update_clients on (new tokens within seconds), and the old one leaves at standby.
    let kids = || -> Vec<String> {
        let out = e2e::run(
            std::path::Path::new("curl"),
            &["-s", "--cacert", leaf.web_ca().to_str().unwrap(), &format!("https://{}/.well-known/jwks.json", leaf.web)],
            &[],
            None,
            T,
        );
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_default();
        v["keys"].as_array().map(|a| a.iter().filter_map(|k| k["kid"].as_str().map(str::to_string)).collect()).unwrap_or_default()
    };
    let token_kid = || -> String {
        let out = curl(&root, "echo.root-app2.test", &["--cert", &cert, "--key", &key, &format!("{uri}/headers")]);
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_default();
        let t = v["headers"]["Teleport-Jwt-Assertion"].as_str().unwrap_or_default().to_string();
        use base64::Engine as _;
        let head = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(t.split('.').next().unwrap_or_default()).unwrap_or_default();
        serde_json::from_slice::<serde_json::Value>(&head).unwrap_or_default()["kid"].as_str().unwrap_or_default().to_string()
    };
    let old = kids();
    assert_eq!(old.len(), 1, "{old:?}");
    wait_for("the app again", T, || (token_kid() == old[0]).then_some(()));
    let rotate = |phase: &str| leaf.tctl(&["auth", "rotate", "--type=jwt", "--manual", &format!("--phase={phase}")]).ok(phase).to_string();
    rotate("init");
    let both = kids();
    assert!(both.len() == 2 && both.contains(&old[0]), "the new key is published before it signs: {both:?}");
    assert_eq!(token_kid(), old[0], "the old key still signs in init");
    rotate("update_clients");
    let new_kid = wait_for("tokens signed with the new key", T, || {
        let k = token_kid();
        (!k.is_empty() && k != old[0]).then_some(k)
    });
    assert!(both.contains(&new_kid));
    rotate("update_servers");
    rotate("standby");
    assert_eq!(kids(), vec![new_kid.clone()], "the old key is withdrawn at standby");

    // (A copy of the certificate a thief kept.)
    let kept = e2e::TempDir::new("kept-cert");
    let (kcert, kkey) = (kept.path().join("c.pem"), kept.path().join("k.pem"));
    std::fs::copy(&cert, &kcert).unwrap();
    std::fs::copy(&key, &kkey).unwrap();
    let (cert, key) = (kcert.display().to_string(), kkey.display().to_string());
    alice.run(&["apps", "logout", "echo"]).ok("tsh apps logout echo");
    let after = curl(
        &root,
        "echo.root-app2.test",
        &["--cert", &cert, "--key", &key, "-o", "/dev/null", "-w", "%{http_code}", &format!("{uri}/headers")],
    );
    assert_eq!(after.stdout, "401", "{after:?}");
    let gone = alice.run(&["apps", "config", "echo"]);
    assert!(gone.code == 1 && gone.stderr.contains("not logged into app"), "{gone:?}");
}

#[test]
fn the_browser_opens_a_leafs_app_from_the_resources_page_and_its_session_cannot_be_replayed() {
    use e2e::browser::*;
    e2e::ensure_unix_user("visitor");
    let root = root_with_dns_name("root-web.example.com", "root-web.test");
    root.add_user("alice", "access", "visitor", PASSWORD);
    let jwt_app = "    rewrite:\n      headers:\n      - name: Authorization\n        value: 'Bearer {{internal.jwt}}'\n";
    let echo = e2e::apps::httpbin();
    let ws = e2e::apps::ws_echo();
    // Leaf apps may claim their own address under the root's host (beyond Teleport): west's kb
    // claims wiki.root-web.test alone; east's kb2 and west's kb3 both claim wiki2.
    let claim = |host: &str| format!("    public_addr: {host}.root-web.test\n");
    let (east, apache) = leaf_with_apps(
        &root,
        "east-web.example.com",
        &[("kb2", format!("http://{}", echo.addr), &claim("wiki2"))],
        Some(("grafana", jwt_app)),
    );
    let apache = apache.expect("apache");
    let (west, _) = leaf_with_apps(
        &root,
        "west-web.example.com",
        &[
            ("grafana", format!("http://{}", echo.addr), ""),
            ("live", format!("http://{}", ws.addr), ""),
            ("kb", format!("http://{}", echo.addr), &claim("wiki")),
            ("kb3", format!("http://{}", echo.addr), &claim("wiki2")),
        ],
        None,
    );
    let base = "https://root-web.test:3080";
    let rules = format!("--host-resolver-rules=MAP root-web.test {ip}, MAP *.root-web.test {ip}", ip = root.ip);
    // (curl, with cookies as a thief would have them.)
    let get = |cookie: &str| {
        curl(
            &root,
            "grafana.root-web.test",
            &["-o", "/dev/null", "-w", "%{http_code} %{redirect_url}", "-b", cookie, "https://grafana.root-web.test:3080/headers"],
        )
        .stdout
    };
    let chrome = Chrome::start();
    let session_cookies = rt().block_on(async {
        let c = chrome.client_with(1200, 820, &[rules]).await;
        c.goto(&format!("{base}/web/login")).await.unwrap();
        fill(&c, "#user", "alice").await;
        fill(&c, "#password", PASSWORD).await;
        click(&c, "#sign-in").await;
        wait_path(&c, "/web/cluster/root-web.example.com/nodes").await;

        // East's resources page launches east's grafana (by cluster and address), and the app
        // (Apache, verifying the token itself) shows the leaf's name for alice.
        c.goto(&format!("{base}/web/cluster/east-web.example.com/nodes")).await.unwrap();
        let launch = wait_css(&c, "#apps tr[data-app='grafana'] a.launch", Duration::from_secs(15)).await;
        let href = launch.attr("href").await.unwrap().unwrap_or_default();
        assert_eq!(href, "/web/launch/grafana.root-web.test/east-web.example.com/grafana");
        launch.click().await.unwrap();
        let user = wait_css(&c, "#user", Duration::from_secs(20)).await.text().await.unwrap();
        assert_eq!(user, "remote-alice-root-web.example.com", "apache: {}", apache.proc.log());
        let url = c.current_url().await.unwrap();
        assert_eq!((url.host_str(), url.port(), url.path()), (Some("grafana.root-web.test"), Some(3080), "/"));
        assert!(url.fragment().is_none(), "the session id does not stay in the address bar: {url}");
        save_shot(&c, "app-launched").await;

        // The same name in two leaves: by name alone, the launcher reports both, never the first.
        c.goto(&format!("{base}/web/launch/grafana.root-web.test?path=/")).await.unwrap();
        let text = wait_until("the launcher", Duration::from_secs(20), || async {
            let t = body_text(&c).await;
            t.contains("several clusters").then_some(t)
        })
        .await;
        assert!(text.contains("east-web.example.com") && text.contains("west-web.example.com"), "{text}");

        // A launch may not lead to another port, nor a path to another host.
        c.goto(&format!("{base}/web/launch/grafana.root-web.test:9999/east-web.example.com/grafana")).await.unwrap();
        let t = body_text(&c).await;
        assert!(t.contains("is not an application address of this proxy"), "{t}");
        assert_eq!(c.current_url().await.unwrap().host_str(), Some("root-web.test"));

        // West's grafana (httpbin) by the resources page: what arrives has no app cookie.
        c.goto(&format!("{base}/web/cluster/west-web.example.com/nodes")).await.unwrap();
        let href = wait_css(&c, "#apps tr[data-app='grafana'] a.launch", Duration::from_secs(15)).await.attr("href").await.unwrap().unwrap();
        c.goto(&format!("{base}{href}?path=//evil.example.com/x")).await.unwrap();
        wait_until("west's app", Duration::from_secs(20), || async {
            let u = c.current_url().await.ok()?;
            (u.host_str() == Some("grafana.root-web.test") && !u.path().starts_with("/x-teleport-auth")).then_some(())
        })
        .await;
        assert_eq!(c.current_url().await.unwrap().path(), "/", "a path to another host ends at the app's root");
        c.goto("https://grafana.root-web.test:3080/headers?show_env=1").await.unwrap();
        let headers = body_text(&c).await;
        assert!(headers.contains("Teleport-Jwt-Assertion") && !headers.contains("grv_app"), "{headers}");
        let cookies = c.get_all_cookies().await.unwrap();
        let names: Vec<String> = cookies.iter().map(|k| k.name().to_string()).collect();
        assert!(names.contains(&"__Host-grv_app_session".to_string()) && names.contains(&"__Host-grv_app_session_subject".to_string()), "{names:?}");
        for k in &cookies {
            if k.name().starts_with("__Host-grv_app_session") {
                assert_eq!((k.secure(), k.http_only(), k.path()), (Some(true), Some(true), Some("/")), "{k:?}");
            }
        }
        let pair: Vec<(String, String)> = cookies.iter().map(|k| (k.name().to_string(), k.value().to_string())).collect();
        // Both cookies open the app outside the browser too; the session id alone (it could be
        // read from a log) does not: the subject is the second half.
        let value = |n: &str| pair.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap_or_default();
        let (id, subject) = (value("__Host-grv_app_session"), value("__Host-grv_app_session_subject"));
        assert_eq!(get(&format!("__Host-grv_app_session={id}; __Host-grv_app_session_subject={subject}")), "200 ");
        let replay = get(&format!("__Host-grv_app_session={id}"));
        assert!(replay.starts_with("302 https://root-web.test:3080/web/launch/grafana.root-web.test"), "{replay}");
        let wrong = get(&format!("__Host-grv_app_session={id}; __Host-grv_app_session_subject={}", "0".repeat(64)));
        assert!(wrong.starts_with("302 "), "{wrong}");

        // A WebSocket (a live view) passes through: west's echo, launched the same way.
        c.goto(&format!("{base}/web/cluster/west-web.example.com/nodes")).await.unwrap();
        let href = wait_css(&c, "#apps tr[data-app='live'] a.launch", Duration::from_secs(15)).await.attr("href").await.unwrap().unwrap();
        c.goto(&format!("{base}{href}")).await.unwrap();
        wait_until("the live app", Duration::from_secs(20), || async {
            let u = c.current_url().await.ok()?;
            (u.host_str() == Some("live.root-web.test") && !u.path().starts_with("/x-teleport-auth")).then_some(())
        })
        .await;
        let echoed = c
            .execute_async(
                "const done = arguments[0]; const s = new WebSocket('wss://' + location.host + '/stream'); const got = [];\
                 s.onmessage = (m) => { got.push(m.data); if (got.length === 1) { s.send('hello across the trust'); } else { done(got); s.close(); } };\
                 s.onerror = () => done(['error']);",
                vec![],
            )
            .await
            .unwrap();
        let got: Vec<String> = serde_json::from_value(echoed).unwrap();
        assert_eq!(got.get(1).map(String::as_str), Some("hello across the trust"), "{got:?}");
        assert!(got[0].contains("teleport-jwt-assertion") && !got[0].contains("grv_app"), "{got:?}");

        // A leaf app's own address under the root's host, by name alone; a claim two leaves make
        // is refused and says which.
        c.goto(&format!("{base}/web/launch/wiki.root-web.test?path=/headers")).await.unwrap();
        let claimed = wait_until("the claimed address", Duration::from_secs(20), || async {
            let t = body_text(&c).await;
            t.contains("X-Forwarded-Host").then_some(t)
        })
        .await;
        assert!(claimed.contains("wiki.root-web.test:3080"), "{claimed}");
        c.goto(&format!("{base}/web/launch/wiki2.root-web.test?path=/")).await.unwrap();
        let collided = wait_until("the collision", Duration::from_secs(20), || async {
            let t = body_text(&c).await;
            t.contains("claimed by applications of several clusters").then_some(t)
        })
        .await;
        assert!(collided.contains("east-web.example.com") && collided.contains("west-web.example.com"), "{collided}");

        // Sign out at the root: the app sessions end with the web session.
        c.goto(&format!("{base}/web/clusters")).await.unwrap();
        click(&c, "#logout").await;
        wait_path(&c, "/web/login").await;
        pair
    });

    let value = |n: &str| session_cookies.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone()).unwrap_or_default();
    let (id, subject) = (value("__Host-grv_app_session"), value("__Host-grv_app_session_subject"));
    let signed_out = get(&format!("__Host-grv_app_session={id}; __Host-grv_app_session_subject={subject}"));
    assert!(
        signed_out.starts_with("302 https://root-web.test:3080/web/launch/grafana.root-web.test"),
        "signing out ended it: {signed_out}\n{}",
        root.log().lines().filter(|l| l.contains("web session") || l.contains("app session")).collect::<Vec<_>>().join("\n")
    );
    let events = root.events();
    let start = events.iter().find(|e| e["event"] == "app.session.start").expect("app.session.start at the root");
    assert_eq!(start["app_cluster"], "east-web.example.com", "{start}");
    assert!(!serde_json::to_string(&events).unwrap().contains(&id), "the session id is not in the root's audit log");
    assert!(!serde_json::to_string(&west.events()).unwrap().contains(&id), "nor in the leaf's");
    drop(east);
}

#[test]
fn an_app_service_in_a_process_of_its_own_serves_a_leafs_app_through_its_tunnel() {
    e2e::ensure_unix_user("visitor");
    let root = root_with_dns_name("root-agent.example.com", "root-agent.test");
    root.add_user("alice", "access", "visitor", PASSWORD);
    let (leaf, _) = leaf_with_apps(&root, "leaf-agent.example.com", &[], None);
    let echo = e2e::apps::httpbin();
    let section =
        format!("app_service:\n  enabled: yes\n  apps:\n  - name: metrics\n    uri: http://{}\n    labels: {{env: prod}}\n", echo.addr);
    let agent = e2e::NodeProc::join_app(&leaf, "app-agent", &section);
    let mut alice = Tsh::new("alice-agent");
    alice.login(&root, "alice", PASSWORD).ok("alice signs in");
    let cluster = "--cluster=leaf-agent.example.com";
    let ls = wait_for("the agent's app at the root", T, || {
        let o = alice.run(&["apps", "ls", cluster]);
        o.stdout.contains("metrics").then_some(o.stdout)
    });
    assert!(ls.contains("metrics"), "{ls}");
    let text = leaf.tctl(&["get", "apps", "--format=text"]).ok("tctl get apps").to_string();
    assert!(text.contains("app-agent"), "served by the agent: {text}\n{}", agent.log());
    alice.run(&["apps", "login", cluster, "metrics"]).ok("tsh apps login");
    let cert = alice.run(&["apps", "config", "--format=cert", "metrics"]).ok("cert").trim().to_string();
    let key = alice.run(&["apps", "config", "--format=key", "metrics"]).ok("key").trim().to_string();
    let got = curl(&root, "metrics.root-agent.test", &["--cert", &cert, "--key", &key, "https://metrics.root-agent.test:3080/headers"]);
    let v: serde_json::Value = serde_json::from_str(&got.stdout).unwrap_or_else(|_| panic!("{got:?}\n{}", agent.log()));
    let h = &v["headers"];
    assert_eq!(h["X-Forwarded-Server"], "app-agent", "the agent served it: {h}");
    let c = jwt_claims(h["Teleport-Jwt-Assertion"].as_str().unwrap_or_default());
    assert_eq!(
        (c["iss"].as_str(), c["sub"].as_str()),
        (Some("leaf-agent.example.com"), Some("remote-alice-root-agent.example.com")),
        "{c}"
    );
    assert_eq!(c["roles"], serde_json::json!(["visitor"]), "the mapped roles: {c}");
    // The agent's request events are in the leaf's audit log.
    let events = wait_for("the agent's events", T, || {
        let e = leaf.events();
        e.iter().any(|x| x["event"] == "app.session.request" && x["app_name"] == "metrics").then_some(e)
    });
    assert!(events.iter().any(|x| x["event"] == "app.session.request" && x["server_id"] != leaf.host_id()), "from the agent's process");
}

#[test]
fn apps_an_admin_defines_are_served_by_the_app_services_whose_resources_select_them() {
    e2e::ensure_unix_user("visitor");
    let root = root_with_dns_name("root-defined.example.com", "root-defined.test");
    root.add_user("alice", "access", "visitor", PASSWORD);
    let echo = e2e::apps::httpbin();
    let other = e2e::apps::httpbin();
    let (leaf, _) = leaf_with_apps(&root, "leaf-defined.example.com", &[], None);
    // An app service of its own that serves whatever the leaf's admin defines with team: web.
    let agent = e2e::NodeProc::join_app(&leaf, "defined-agent", "app_service:\n  enabled: yes\n  resources:\n  - labels: {team: web}\n");
    leaf.create(
        "wiki.yaml",
        &format!(
            "kind: app\nversion: v3\nmetadata: {{name: wiki, labels: {{env: prod, team: web}}}}\nspec:\n  uri: http://{}\n",
            echo.addr
        ),
    )
    .ok("tctl create app wiki");
    leaf.create(
        "ledger.yaml",
        &format!(
            "kind: app\nversion: v3\nmetadata: {{name: ledger, labels: {{env: prod, team: finance}}}}\nspec:\n  uri: http://{}\n",
            other.addr
        ),
    )
    .ok("tctl create app ledger");
    let mut alice = Tsh::new("alice-defined");
    alice.login(&root, "alice", PASSWORD).ok("alice signs in");
    let cluster = "--cluster=leaf-defined.example.com";
    alice.run(&["apps", "login", cluster, "wiki"]).ok("tsh apps login wiki");
    let cert = alice.run(&["apps", "config", "--format=cert", "wiki"]).ok("cert").trim().to_string();
    let key = alice.run(&["apps", "config", "--format=key", "wiki"]).ok("key").trim().to_string();
    let got = output_when(
        "the agent to serve the defined app",
        T,
        || curl(&root, "wiki.root-defined.test", &["--cert", &cert, "--key", &key, "https://wiki.root-defined.test:3080/headers"]).stdout,
        |o| o.contains("Teleport-Jwt-Assertion"),
    );
    let v: serde_json::Value = serde_json::from_str(&got).unwrap_or_default();
    assert_eq!(v["headers"]["X-Forwarded-Server"], "defined-agent", "{got}\n{}", agent.log());
    // No service selects team: finance: defined, listed, and refused (not served anywhere).
    alice.run(&["apps", "login", cluster, "ledger"]).ok("tsh apps login ledger");
    let lcert = alice.run(&["apps", "config", "--format=cert", "ledger"]).ok("cert").trim().to_string();
    let lkey = alice.run(&["apps", "config", "--format=key", "ledger"]).ok("key").trim().to_string();
    let refused = curl(
        &root,
        "ledger.root-defined.test",
        &["--cert", &lcert, "--key", &lkey, "-o", "/dev/null", "-w", "%{http_code}", "https://ledger.root-defined.test:3080/"],
    );
    assert_eq!(refused.stdout, "403", "{refused:?}");
}
