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
fn leaf_jwt_signer(leaf: &Cluster) -> teleport_server::access::app::jwt::Signer {
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
    teleport_server::access::app::jwt::Signer::new(&private, &public).expect("signer")
}

#[test]
fn tsh_apps_login_reaches_a_leafs_apps_which_see_the_leafs_name_for_the_user_in_a_token_they_verify() {
    e2e::ensure_unix_user("visitor");
    let root = root_with_dns_name("root-app2.example.com", "root-app2.test");
    root.add_user("alice", "access", "visitor", PASSWORD);
    let echo = e2e::apps::httpbin();
    let ws = e2e::apps::ws_echo();
    let redis = e2e::apps::redis();
    let mut lo = ClusterOpts::new("leaf-app2.example.com");
    lo.node = false;
    lo.env = vec![("SSL_CERT_FILE".into(), root.web_ca().display().to_string())];
    // Apache verifies tokens with the leaf's published keys, over TLS it checks against the
    // leaf's web CA (copied where Apache's user may read it once the leaf made it).
    let ip = e2e::free_ip(&[3080, 3022, 3000]);
    lo.ip = Some(ip.clone());
    let apache_dir = e2e::TempDir::new("apache-ca");
    let ca_copy = apache_dir.path().join("leaf-webca.pem");
    let apache = e2e::apps::apache_oidc(&format!("https://{ip}:3080/.well-known/jwks.json"), &ca_copy);
    lo.sections = format!(
        "app_service:\n  enabled: yes\n  apps:\n\
         \x20 - name: echo\n    uri: http://{echo}\n    labels: {{env: prod}}\n\
         \x20 - name: dashboard\n    uri: http://{apache}\n    labels: {{env: prod}}\n    rewrite:\n      headers:\n      - name: Authorization\n        value: 'Bearer {{{{internal.jwt}}}}'\n      - name: X-Logins\n        value: '{{{{internal.logins}}}}'\n\
         \x20 - name: ws\n    uri: http://{ws}\n    labels: {{env: prod}}\n\
         \x20 - name: redis\n    uri: tcp://{redis}\n    labels: {{env: prod}}\n",
        echo = echo.addr,
        apache = apache.addr,
        ws = ws.addr,
        redis = redis.addr,
    );
    let leaf = Cluster::start(lo);
    std::fs::copy(leaf.web_ca(), &ca_copy).expect("leaf web CA for apache");
    let _ = std::process::Command::new("chmod").arg("a+rx").arg(apache_dir.path()).status();
    let _ = std::process::Command::new("chmod").arg("a+r").arg(&ca_copy).status();
    leaf.create(
        "visitor.yaml",
        "kind: role\nversion: v7\nmetadata: {name: visitor}\nspec:\n  allow:\n    logins: [visitor]\n    app_labels: {env: prod}\n",
    )
    .ok("leaf role");
    let token = root.trusted_cluster_token("5m");
    leaf.create("tc.yaml", &tc_yaml(&root.opts.name, &token, &root, true, e2e::ACCESS_TO_VISITOR)).ok("trust");
    root.wait_remote_status("leaf-app2.example.com", "online", T);
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
    assert!(page.stdout.contains("<span id=\"user\">remote-alice-root-app2.example.com</span>"), "{page:?}\napache: {}", apache.log());
    // The app itself refuses a token the leaf did not sign, and one it signed that expired.
    let direct = |token: &str| {
        let auth = format!("Authorization: Bearer {token}");
        e2e::run(
            std::path::Path::new("curl"),
            &["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", &auth, &format!("http://{}/", apache.addr)],
            &[],
            None,
            T,
        )
        .stdout
    };
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let forger = teleport_server::access::app::jwt::Signer::new(&other.serialize_pem(), &other.public_key_pem()).unwrap();
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
