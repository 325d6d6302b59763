//! SSO logins through real identity providers (panva's oidc-provider, a samlify SAML IdP, and a
//! GitHub stand-in), driven the way a browser drives them, ending in `tsh ssh` to leaf nodes.

use std::time::{Duration, Instant};

use e2e::idp::*;
use e2e::*;

const SECRET: &str = "oidc-client-secret-9f3a";

/// The guide's story: full-access on the root, mapped to stage-access on the leaf, which
/// reaches nodes labelled env=stage only; logins come from the IdP's claims.
const FULL_ACCESS: &str = "kind: role\nversion: v7\nmetadata:\n  name: full-access\nspec:\n  allow:\n    logins: ['{{external.logins}}']\n    node_labels:\n      '*': '*'\n";
const STAGE_ACCESS: &str = "kind: role\nversion: v7\nmetadata:\n  name: stage-access\nspec:\n  allow:\n    logins: ['{{external.logins}}']\n    node_labels:\n      env: stage\n";
const OPS_ADMIN: &str =
    "kind: role\nversion: v7\nmetadata:\n  name: ops-admin\nspec:\n  allow:\n    logins: [visitor]\n    node_labels:\n      '*': '*'\n";

/// A root (no node) and a leaf whose own node is labelled env=stage, plus a node env=prod.
struct Story {
    pair: Pair,
    _prod: NodeProc,
}

fn story(tag: &str) -> Story {
    ensure_unix_user("visitor");
    let mut ro = ClusterOpts::new(&format!("root-{tag}.example.com"));
    ro.node = false;
    let mut lo = ClusterOpts::new(&format!("leaf-{tag}.example.com"));
    lo.labels = vec![("env".into(), "stage".into())];
    lo.node_name = Some(format!("stage-{tag}"));
    lo.insecure = true;
    let pair = Pair::start(tag, ro, lo);
    pair.root.create("full-access.yaml", FULL_ACCESS).ok("root role");
    pair.root.create("ops-admin.yaml", OPS_ADMIN).ok("root role");
    pair.leaf.create("stage-access.yaml", STAGE_ACCESS).ok("leaf role");
    pair.trust(true, "    - remote: \"full-access\"\n      local: [\"stage-access\"]\n").ok("trust");
    pair.root.wait_remote_status(pair.leaf_name(), "online", Duration::from_secs(30));
    let prod = NodeProc::join(&pair.leaf, &format!("prod-{tag}"), true, "env=prod");
    Story { pair, _prod: prod }
}

fn oidc_users() -> serde_json::Value {
    serde_json::json!({
        "alice": {"password": "alice-idp-pw", "claims": {"email": "alice@example.com", "email_verified": true, "groups": ["admins"], "logins": ["visitor"]}},
        "dave": {"password": "dave-idp-pw", "claims": {"email": "dave@example.com", "email_verified": true, "groups": ["dev-ops"], "logins": ["visitor"]}},
        "bob": {"password": "bob-idp-pw", "claims": {"email": "bob@example.com", "email_verified": true, "groups": ["contractors"], "logins": ["visitor"]}},
        "erin": {"password": "erin-idp-pw", "claims": {"email": "erin@example.com", "email_verified": true, "groups": ["admins"], "logins": ["visitor"]}},
    })
}

fn oidc_connector(name: &str, idp: &Idp, root: &Cluster, prompt: Option<&str>) -> String {
    let prompt = prompt.map(|p| format!("  prompt: {p}\n")).unwrap_or_default();
    format!(
        "kind: oidc\nversion: v3\nmetadata:\n  name: {name}\nspec:\n  display: Test IdP\n  issuer_url: {}\n  client_id: teleport-{name}\n  client_secret: {SECRET}\n  redirect_url: https://{}/v1/webapi/oidc/callback\n  scope: [groups]\n{prompt}  claims_to_roles:\n    - claim: groups\n      value: admins\n      roles: [full-access]\n    - claim: groups\n      value: '^dev-(.*)$'\n      roles: ['$1-admin']\n",
        idp.url, root.web
    )
}

/// tsh for the root, trusting its web CA.
fn tsh_for(root: &Cluster, tag: &str) -> Tsh {
    let mut tsh = Tsh::new(tag);
    tsh.env.push(("SSL_CERT_FILE".into(), root.web_ca().display().to_string()));
    tsh
}

/// Runs a whole browser login: tsh's link → the IdP's form → signed in → back through the
/// proxy to tsh. Returns tsh's result and every page the browser saw.
fn browser_login(tsh: &Tsh, root: &Cluster, extra: &[&str], login: &str, password: &str) -> (Out, Vec<Page>) {
    let proxy = format!("--proxy={}", root.web);
    let mut args = vec!["login", proxy.as_str(), "--browser=none"];
    args.extend_from_slice(extra);
    let mut l = SsoLogin::start(tsh, &args);
    assert!(l.link.starts_with("http://127.0.0.1:"), "{}", l.link);
    let browser = Browser::new(&root.web_ca());
    let mut pages = browser.follow(&l.link, None);
    let form_page = pages.last().unwrap().clone();
    if form_page.body.contains("name=\"password\"") {
        pages.extend(browser.sign_in(&form_page, login, password));
    }
    (l.wait(Duration::from_secs(30)), pages)
}

fn user_json(c: &Cluster, name: &str) -> Option<serde_json::Value> {
    let out = c.tctl(&["get", &format!("users/{name}"), "--format=json"]);
    (out.code == 0).then(|| out.json()[0].clone())
}

#[test]
fn oidc_login_follows_the_guides_story_to_leaf_nodes() {
    let s = story("oidc");
    let (root, leaf) = (&s.pair.root, &s.pair.leaf);
    let redirect = format!("https://{}/v1/webapi/oidc/callback", root.web);
    let idp = Idp::oidc(&oidc_users(), "teleport-myoidc", SECRET, &redirect);
    root.create("oidc.yaml", &oidc_connector("myoidc", &idp, root, Some("none"))).ok("create oidc connector");
    // The cluster's default is the connector, so tsh login needs no --auth.
    root.create_force("cap.yaml", "kind: cluster_auth_preference\nversion: v2\nmetadata:\n  name: cluster-auth-preference\nspec:\n  type: oidc\n  connector_name: myoidc\n  second_factor: off\n")
        .ok("cap");
    let ping = root.https_get("/webapi/ping");
    assert_eq!(ping["auth"]["type"], "oidc", "{ping}");
    assert_eq!(ping["auth"]["oidc"]["name"], "myoidc", "{ping}");

    let tsh = tsh_for(root, "oidc-alice");
    let started = Instant::now();
    let (out, pages) = browser_login(&tsh, root, &[], "alice", "alice-idp-pw");
    let took = started.elapsed();
    out.ok("tsh login through the OIDC provider");
    assert!(out.stderr.contains("Use the following URL to authenticate:"), "{}", out.stderr);
    let last = pages.last().unwrap();
    assert!(last.url.ends_with("/web/msg/info/login_success") && last.status == 200, "{pages:#?}");
    // The browser went tsh → IdP (PKCE, nonce, our state) → proxy callback → tsh → success.
    let auth = pages.iter().find(|p| p.url.starts_with(&format!("{}/auth?", idp.url))).expect("the IdP's authorization endpoint");
    for param in ["code_challenge=", "code_challenge_method=S256", "nonce=", "state=", "scope=openid"] {
        assert!(auth.url.contains(param), "{param} in {}", auth.url);
    }
    assert!(!auth.url.contains(SECRET), "the client secret never goes through the browser");
    let callback = pages.iter().find(|p| p.url.contains("/v1/webapi/oidc/callback?")).expect("the proxy's callback");
    let to_tsh = callback.location.clone().unwrap_or_default();
    assert!(
        to_tsh.starts_with("http://127.0.0.1:")
            && to_tsh.contains("response=")
            && to_tsh.contains("&secret=&secret_key=")
            && to_tsh.ends_with("secret_key="),
        "{to_tsh}"
    );
    eprintln!("OIDC login took {took:?}");

    // Alice's roles and traits, from her claims.
    let status = tsh.run(&["status", "-f", "json"]).json();
    assert_eq!(status["active"]["username"], "alice@example.com", "{status}");
    assert_eq!(status["active"]["roles"], serde_json::json!(["full-access"]), "{status}");
    assert_eq!(status["active"]["traits"]["groups"], serde_json::json!(["admins"]), "{status}");
    assert_eq!(status["active"]["traits"]["logins"], serde_json::json!(["visitor"]), "{status}");
    // An SSO user, as Teleport creates them: made by the connector, expiring with the certificate.
    let user = user_json(root, "alice@example.com").expect("the SSO user");
    assert_eq!(user["spec"]["created_by"]["connector"]["type"], "oidc", "{user}");
    assert_eq!(user["spec"]["created_by"]["connector"]["id"], "myoidc", "{user}");
    assert!(user["metadata"]["expires"].is_string(), "{user}");

    // The leaf maps full-access to stage-access: the stage node, not the prod one.
    let leaf_arg = format!("--cluster={}", leaf.opts.name);
    let ok = tsh.run(&["ssh", &leaf_arg, "visitor@stage-oidc", "echo stage-ok"]);
    assert!(ok.ok("ssh to the stage node").contains("stage-ok"));
    let denied = tsh.run(&["ssh", &leaf_arg, "visitor@prod-oidc", "echo prod"]);
    assert_ne!(denied.code, 0, "the prod node is not for stage-access: {denied:?}");
    assert!(!denied.stdout.contains("prod"), "{denied:?}");
    // A login not among her claims is refused on the leaf too.
    ensure_unix_user("nobodyelse");
    let other = tsh.run(&["ssh", &leaf_arg, "nobodyelse@stage-oidc", "true"]);
    assert_ne!(other.code, 0, "{other:?}");

    // Regex mapping with a capture: dev-ops → ops-admin.
    let dave = tsh_for(root, "oidc-dave");
    browser_login(&dave, root, &["--auth=myoidc"], "dave", "dave-idp-pw").0.ok("dave signs in");
    let st = dave.run(&["status", "-f", "json"]).json();
    assert_eq!(st["active"]["roles"], serde_json::json!(["ops-admin"]), "{st}");

    // Audited with the connector.
    let events = root.events();
    assert!(
        events
            .iter()
            .any(|e| e["event"] == "user.login" && e["success"] == true && e["connector"] == "myoidc" && e["user"] == "alice@example.com"),
        "{events:#?}"
    );
    // No secret in the log: not the client secret, not a code, not the response key.
    let log = root.log();
    assert!(!log.contains(SECRET), "the client secret is in the log");
    let code = callback.url.split("code=").nth(1).and_then(|c| c.split('&').next()).unwrap_or_default();
    assert!(!code.is_empty() && !log.contains(code), "the authorization code is in the log");
}
