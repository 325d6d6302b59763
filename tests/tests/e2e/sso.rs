//! SSO logins through real identity providers (panva's oidc-provider, a samlify SAML IdP, and a
//! GitHub stand-in), driven the way a browser drives them, ending in `tsh ssh` to leaf nodes.

use std::time::{Duration, Instant};

use e2e::idp::*;
use e2e::*;

/// tsh prints the link before it fails: the error is its last line.
trait SsoOut {
    fn sso_fails(&self, what: &str, needle: &str) -> &str;
}

impl SsoOut for Out {
    #[track_caller]
    fn sso_fails(&self, what: &str, needle: &str) -> &str {
        assert_eq!(self.code, 1, "{what}: expected exit code 1\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        let last = self.stderr.trim_end().lines().last().unwrap_or_default();
        assert!(last.starts_with("ERROR: ") && last.contains(needle), "{what}: expected one ERROR line with {needle:?}:\n{}", self.stderr);
        assert!(!self.stderr.contains("panicked"), "{what}: panic:\n{}", self.stderr);
        &self.stderr
    }
}

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
        "kind: oidc\nversion: v3\nmetadata:\n  name: {name}\nspec:\n  display: Test IdP\n  issuer_url: {}\n  client_id: teleport\n  client_secret: {SECRET}\n  redirect_url: https://{}/v1/webapi/oidc/callback\n  scope: [groups]\n{prompt}  claims_to_roles:\n    - claim: groups\n      value: admins\n      roles: [full-access]\n    - claim: groups\n      value: '^dev-(.*)$'\n      roles: ['$1-admin']\n",
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
    let idp = Idp::oidc(&oidc_users(), "teleport", SECRET, &redirect);
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

/// A root with the OIDC connector `myoidc` (prompt none) and `selectacct` (Teleport's default
/// prompt, which oidc-provider refuses), and a tsh for it.
fn oidc_root(tag: &str) -> (Cluster, Idp) {
    ensure_unix_user("visitor");
    let mut ro = ClusterOpts::new(&format!("root-{tag}.example.com"));
    ro.node = false;
    let root = Cluster::start(ro);
    root.create("full-access.yaml", FULL_ACCESS).ok("role");
    let idp = Idp::oidc(&oidc_users(), "teleport", SECRET, &format!("https://{}/v1/webapi/oidc/callback", root.web));
    root.create("oidc.yaml", &oidc_connector("myoidc", &idp, &root, Some("none"))).ok("connector");
    root.create("oidc2.yaml", &oidc_connector("selectacct", &idp, &root, None)).ok("connector");
    (root, idp)
}

/// tsh's login up to the proxy's callback URL (not visited).
fn up_to_callback(tsh: &Tsh, root: &Cluster, browser: &Browser, login: &str, password: &str) -> (SsoLogin, String) {
    let l = SsoLogin::start(tsh, &["login", &format!("--proxy={}", root.web), "--browser=none", "--auth=myoidc"]);
    let pages = browser.follow(&l.link, None);
    let form = Browser::login_form(pages.last().unwrap(), login, password);
    let pages = browser.follow_until(&form.action, Some(&form.fields), |u| u.contains("/v1/webapi/oidc/callback?"));
    let cb = pages.last().unwrap().location.clone().expect("a redirect to the proxy's callback");
    assert!(cb.contains("/v1/webapi/oidc/callback?") && cb.contains("code="), "{cb}");
    (l, cb)
}

fn failed_logins(root: &Cluster) -> Vec<serde_json::Value> {
    root.events().into_iter().filter(|e| e["event"] == "user.login" && e["success"] == false).collect()
}

#[test]
fn oidc_logins_that_must_fail_fail_at_once_with_one_message() {
    let (root, idp) = oidc_root("oidcneg");
    let audited = |needle: &str| {
        let f = failed_logins(&root);
        assert!(
            f.iter().any(|e| e["error"].as_str().unwrap_or_default().contains(needle) && e["method"] == "oidc"),
            "no failed user.login mentioning {needle:?}: {f:#?}"
        );
    };

    // A user whose claims map to no role: refused at once (not after three minutes), no user.
    let tsh = tsh_for(&root, "oidcneg-bob");
    let started = Instant::now();
    let (out, pages) = browser_login(&tsh, &root, &["--auth=myoidc"], "bob", "bob-idp-pw");
    assert!(started.elapsed() < Duration::from_secs(20), "took {:?}", started.elapsed());
    out.sso_fails("an unmapped user", "identity provider callback failed with error:");
    assert!(out.stderr.contains("unable to map claims to roles"), "{}", out.stderr);
    let last = pages.last().unwrap();
    assert!(last.url.ends_with("/web/msg/error/login") && last.body.contains("Login failed"), "{last:#?}");
    assert!(user_json(&root, "bob@example.com").is_none(), "no user for a refused login");
    audited("unable to map claims to roles");
    assert!(failed_logins(&root).iter().any(|e| e["connector"] == "myoidc"), "the connector is audited");

    // The IdP's own error (oidc-provider refuses Teleport's default prompt) reaches tsh.
    let (out, _) = browser_login(&tsh, &root, &["--auth=selectacct"], "alice", "alice-idp-pw");
    out.sso_fails("the IdP's error", "identity provider callback failed with error:");
    assert!(out.stderr.contains("unsupported prompt value requested"), "{}", out.stderr);

    // A replayed callback, a tampered state: refused; the real callback still works once.
    let browser = Browser::new(&root.web_ca());
    let (mut l, cb) = up_to_callback(&tsh, &root, &browser, "alice", "alice-idp-pw");
    let state = cb.split("state=").nth(1).and_then(|s| s.split('&').next()).unwrap().to_string();
    // One character changed (never to itself).
    let last = if state.ends_with('0') { '1' } else { '0' };
    let forged = cb.replace(&format!("state={state}"), &format!("state={}{last}", &state[..state.len() - 1]));
    assert_ne!(forged, cb);
    let page = browser.request(&forged, None);
    assert_eq!(page.status, 400, "{page:#?}");
    assert!(page.body.contains("expired, was already used or is unknown"), "{}", page.body);
    let pages = browser.follow(&cb, None);
    l.wait(Duration::from_secs(30)).ok("the untampered callback");
    assert!(pages.last().unwrap().url.ends_with("/web/msg/info/login_success"), "{pages:#?}");
    let again = browser.request(&cb, None);
    assert_eq!(again.status, 400, "a replayed callback is refused: {again:#?}");
    assert!(again.body.contains("already used"), "{}", again.body);
    audited("already used");

    // A callback after the request expired (its ten minutes are made to pass in the store),
    // then Ctrl-C ends tsh's wait cleanly.
    let (mut l, cb) = up_to_callback(&tsh, &root, &Browser::new(&root.web_ca()), "alice", "alice-idp-pw");
    let db = rusqlite::Connection::open(root.data_dir().join("backend/sqlite.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    let n = db.execute("UPDATE kv SET expires = 1 WHERE key LIKE 'ssorequests/%'", []).unwrap();
    assert_eq!(n, 1, "one login in progress");
    let late = Browser::new(&root.web_ca()).request(&cb, None);
    assert_eq!(late.status, 400, "{late:#?}");
    assert!(late.body.contains("expired"), "{}", late.body);
    l.signal(nix::sys::signal::Signal::SIGINT);
    let out = l.wait(Duration::from_secs(10));
    out.sso_fails("Ctrl-C", "login canceled");

    // ID tokens the relying party must refuse, each still signed by the provider's key
    // (except the one signed by another key).
    for (mode, why) in [("aud", "aud"), ("iss", "iss"), ("exp", "xpired"), ("nonce", "once"), ("sig", "ignature")] {
        idp.tamper(mode);
        let tsh = tsh_for(&root, &format!("oidcneg-{mode}"));
        let (out, _) = browser_login(&tsh, &root, &["--auth=myoidc"], "erin", "erin-idp-pw");
        out.sso_fails(&format!("an ID token with a bad {mode}"), "the ID token was refused");
        assert!(out.stderr.to_lowercase().contains(&why.to_lowercase()), "{mode}: {}", out.stderr);
        assert!(user_json(&root, "erin@example.com").is_none(), "{mode}: no user");
    }
    idp.tamper("off");
    audited("the ID token was refused");

    // The response flipped on its way to tsh: tsh cannot open it.
    let browser = Browser::new(&root.web_ca());
    let (mut l, cb) = up_to_callback(&tsh, &root, &browser, "alice", "alice-idp-pw");
    let to_tsh = browser.request(&cb, None).location.expect("the proxy sends the browser to tsh");
    let i = to_tsh.find("ciphertext%22%3A%22").unwrap() + "ciphertext%22%3A%22".len() + 5;
    let mut flipped = to_tsh.clone();
    let c = if &to_tsh[i..=i] == "A" { "B" } else { "A" };
    flipped.replace_range(i..=i, c);
    browser.follow(&flipped, None);
    l.wait(Duration::from_secs(10)).sso_fails("a flipped byte", "failed to decrypt response");

    // A local user of the same name is never overwritten by an SSO login.
    root.add_user("erin@example.com", "full-access", "visitor", PASSWORD);
    let (out, _) = browser_login(&tsh, &root, &["--auth=myoidc"], "erin", "erin-idp-pw");
    out.sso_fails("a local user's name", "local user with name \"erin@example.com\" already exists");
    let erin = user_json(&root, "erin@example.com").unwrap();
    assert!(erin["spec"]["created_by"]["connector"].is_null(), "still the local user: {erin}");

    // Only loopback callbacks of Teleport's shape are accepted.
    let ca = root.web_ca().display().to_string();
    for bad in [
        "http://evil.example.com:1234/callback?secret_key=00",
        "https://127.0.0.1:1234/callback?secret_key=00",
        "http://127.0.0.1:1234/cb?secret_key=00",
        "http://user@127.0.0.1:1234/callback?secret_key=00",
    ] {
        let body = serde_json::json!({"redirect_url": bad, "ssh_pub_key": "", "tls_pub_key": "", "connector_id": "myoidc"}).to_string();
        let url = format!("https://{}/v1/webapi/oidc/login/console", root.web);
        let out = run(
            std::path::Path::new("curl"),
            &["-s", "--cacert", &ca, "-X", "POST", "-H", "Content-Type: application/json", "-d", &body, &url],
            &[],
            None,
            Duration::from_secs(10),
        );
        let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_default();
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{bad} must be refused: {}", out.stdout);
        assert!(!v.to_string().contains("redirect_url\":\"http"), "{bad}: no login URL: {v}");
    }

    // The web UI: the sign-in page offers the connector, and the browser ends signed in.
    let web = format!("https://{}", root.web);
    let browser = Browser::new(&root.web_ca());
    let login = browser.request(&format!("{web}/web/login"), None);
    assert!(login.body.contains("Sign in with Test IdP"), "{}", login.body);
    let href = login
        .body
        .split("href=\"")
        .find(|h| h.starts_with("/webapi/oidc/login/web?connector_id=myoidc"))
        .and_then(|h| h.split('"').next())
        .expect("the SSO button")
        .replace("&amp;", "&");
    let pages = browser.follow(&format!("{web}{href}"), None);
    let pages = browser.sign_in(pages.last().unwrap(), "alice", "alice-idp-pw");
    let last = pages.last().unwrap();
    assert!(last.url.ends_with(&format!("/web/cluster/{}/nodes", root.opts.name)) && last.status == 200, "{pages:#?}");
    assert!(last.body.contains("Servers of") && last.body.contains("alice@example.com"), "{}", last.body);
    // A sign-in started in one browser cannot be finished in another (no login CSRF).
    let starter = Browser::new(&root.web_ca());
    let pages = starter.follow(&format!("{web}{href}"), None);
    let form = Browser::login_form(pages.last().unwrap(), "alice", "alice-idp-pw");
    let pages = starter.follow_until(&form.action, Some(&form.fields), |u| u.contains("/v1/webapi/oidc/callback?"));
    let cb = pages.last().unwrap().location.clone().expect("to the callback");
    let other = Browser::new(&root.web_ca()).request(&cb, None);
    assert_eq!(other.status, 400, "{other:#?}");
    assert!(other.body.contains("started in another browser"), "{}", other.body);

    // Secrets stay out of the log.
    let log = root.log();
    assert!(!log.contains(SECRET), "client secret in the log");
    assert!(!log.contains("code_verifier") && !log.contains("access_token"), "tokens in the log");
}

fn saml_users() -> serde_json::Value {
    serde_json::json!({
        "alice": {"password": "alice-saml-pw", "attributes": {"groups": ["admins"], "logins": ["visitor"]}},
        "bob": {"password": "bob-saml-pw", "attributes": {"groups": ["contractors"], "logins": ["visitor"]}},
    })
}

/// A SAML login up to the IdP's auto-submitting form (the response, not yet posted).
fn saml_up_to_acs(tsh: &Tsh, root: &Cluster, browser: &Browser, login: &str, password: &str) -> (SsoLogin, Form) {
    let l = SsoLogin::start(tsh, &["login", &format!("--proxy={}", root.web), "--browser=none", "--auth=mysaml"]);
    let pages = browser.follow(&l.link, None);
    let sso = pages.iter().find(|p| p.url.contains("/sso?SAMLRequest=")).expect("an HTTP-Redirect AuthnRequest");
    assert!(sso.url.contains("&RelayState=_"), "{}", sso.url);
    let pages = browser.sign_in(pages.last().unwrap(), login, password);
    let form = Browser::form(pages.last().unwrap());
    assert!(form.action.ends_with("/v1/webapi/saml/acs/mysaml"), "{form:?}");
    (l, form)
}

fn saml_response(form: &Form) -> String {
    use base64::Engine;
    let b64 = &form.fields.iter().find(|(k, _)| k == "SAMLResponse").expect("SAMLResponse").1;
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b64).unwrap()).unwrap()
}

fn with_response(form: &Form, xml: &str) -> Vec<(String, String)> {
    use base64::Engine;
    form.fields
        .iter()
        .map(
            |(k, v)| {
                if k == "SAMLResponse" {
                    (k.clone(), base64::engine::general_purpose::STANDARD.encode(xml))
                } else {
                    (k.clone(), v.clone())
                }
            },
        )
        .collect()
}

#[test]
fn saml_login_reaches_the_leaf_and_refuses_forged_responses() {
    let s = story("saml");
    let (root, leaf) = (&s.pair.root, &s.pair.leaf);
    let acs = format!("https://{}/v1/webapi/saml/acs/mysaml", root.web);
    let idp = Idp::saml(&saml_users(), &acs);
    let connector = format!(
        "kind: saml\nversion: v2\nmetadata:\n  name: mysaml\nspec:\n  display: Test SAML IdP\n  acs: {acs}\n  entity_descriptor_url: {}/metadata\n  attributes_to_roles:\n    - name: groups\n      value: admins\n      roles: [full-access]\n",
        idp.url
    );
    root.create("saml.yaml", &connector).ok("create saml connector");

    let tsh = tsh_for(root, "saml-alice");
    let browser = Browser::new(&root.web_ca());
    let (mut l, form) = saml_up_to_acs(&tsh, root, &browser, "alice", "alice-saml-pw");
    let pages = browser.follow(&form.action, Some(&form.fields));
    let out = l.wait(Duration::from_secs(30));
    out.ok("tsh login through the SAML IdP");
    assert!(pages.last().unwrap().url.ends_with("/web/msg/info/login_success"), "{pages:#?}");
    let status = tsh.run(&["status", "-f", "json"]).json();
    assert_eq!(status["active"]["username"], "alice", "{status}");
    assert_eq!(status["active"]["roles"], serde_json::json!(["full-access"]), "{status}");
    assert_eq!(status["active"]["traits"]["groups"], serde_json::json!(["admins"]), "{status}");
    let user = user_json(root, "alice").expect("the SSO user");
    assert_eq!(user["spec"]["created_by"]["connector"]["type"], "saml", "{user}");
    let leaf_arg = format!("--cluster={}", leaf.opts.name);
    assert!(tsh.run(&["ssh", &leaf_arg, "visitor@stage-saml", "echo stage-ok"]).ok("ssh to the stage node").contains("stage-ok"));
    assert_ne!(tsh.run(&["ssh", &leaf_arg, "visitor@prod-saml", "true"]).code, 0, "not the prod node");

    // Forged and unacceptable responses end the login with one message each.
    type Change = Box<dyn Fn(&str) -> String>;
    let cases: Vec<(&str, Change, &str)> = vec![
        (
            "signature removed",
            Box::new(|x: &str| {
                let a = x.find("<ds:Signature").unwrap();
                let b = x.find("</ds:Signature>").unwrap() + "</ds:Signature>".len();
                format!("{}{}", &x[..a], &x[b..])
            }),
            "it is not signed",
        ),
        ("NameID changed", Box::new(|x: &str| x.replace(">alice</saml:NameID>", ">root</saml:NameID>")), "digest does not match"),
        ("attribute changed", Box::new(|x: &str| x.replace(">contractors<", ">admins<")), "digest does not match"),
    ];
    for (what, change, needle) in cases {
        let tsh = tsh_for(root, "saml-forged");
        let browser = Browser::new(&root.web_ca());
        let login = if what == "attribute changed" { ("bob", "bob-saml-pw") } else { ("alice", "alice-saml-pw") };
        let (mut l, form) = saml_up_to_acs(&tsh, root, &browser, login.0, login.1);
        let xml = saml_response(&form);
        let forged = change(&xml);
        assert_ne!(forged, xml, "{what}: the change applies");
        browser.follow(&form.action, Some(&with_response(&form, &forged)));
        let out = l.wait(Duration::from_secs(30));
        out.sso_fails(what, "identity provider callback failed with error:");
        assert!(out.stderr.contains(needle), "{what}: {}", out.stderr);
    }
    assert!(user_json(root, "root").is_none(), "no user from a forged response");
    for (mode, needle) in [("audience", "audience"), ("expired", "expired")] {
        idp.tamper(mode);
        let tsh = tsh_for(root, "saml-tampered");
        let browser = Browser::new(&root.web_ca());
        let (mut l, form) = saml_up_to_acs(&tsh, root, &browser, "alice", "alice-saml-pw");
        browser.follow(&form.action, Some(&form.fields));
        let out = l.wait(Duration::from_secs(30));
        out.sso_fails(mode, "the SAML response was refused");
        assert!(out.stderr.contains(needle), "{mode}: {}", out.stderr);
    }
    idp.tamper("off");
    // Unmapped attributes.
    let (mut l, form) = saml_up_to_acs(&tsh, root, &Browser::new(&root.web_ca()), "bob", "bob-saml-pw");
    Browser::new(&root.web_ca()).follow(&form.action, Some(&form.fields));
    l.wait(Duration::from_secs(30)).sso_fails("bob", "unable to map claims to roles");
    assert!(user_json(root, "bob").is_none());
    // A response to a request we never made: no login to return to, the browser is told.
    let browser = Browser::new(&root.web_ca());
    let (mut l, form) = saml_up_to_acs(&tsh, root, &browser, "alice", "alice-saml-pw");
    let xml = saml_response(&form);
    let irt = xml.split("InResponseTo=\"").nth(1).and_then(|r| r.split('"').next()).unwrap().to_string();
    let page = browser.request(&form.action, Some(&with_response(&form, &xml.replace(&irt, "_0123456789abcdef0123456789abcdef"))));
    assert_eq!(page.status, 400, "{page:#?}");
    assert!(page.body.contains("expired, was already used or is unknown"), "{}", page.body);
    // The real response still completes that login.
    browser.follow(&form.action, Some(&form.fields));
    l.wait(Duration::from_secs(30)).ok("the untouched response");
    let failed = failed_logins(root);
    assert!(failed.iter().any(|e| e["method"] == "saml" && e["connector"] == "mysaml"), "{failed:#?}");
}

#[test]
fn github_login_maps_teams_across_pages_to_leaf_roles() {
    ensure_unix_user("alice");
    let s = story("gh");
    let (root, leaf) = (&s.pair.root, &s.pair.leaf);
    let user = |pw: &str, teams: &[(&str, &str, &str)]| GithubUser {
        password: pw.into(),
        teams: teams.iter().map(|(o, s, n)| (o.to_string(), s.to_string(), n.to_string())).collect(),
    };
    let gh = GithubStandIn::start(
        vec![
            ("alice", user("alice-gh-pw", &[("acme", "devs", "Devs"), ("acme", "ops", "Ops"), ("acme", "admins", "Admins")])),
            ("carol", user("carol-gh-pw", &[])),
            ("bob", user("bob-gh-pw", &[("other-org", "admins", "Admins"), ("acme", "Admins", "Admins")])),
        ],
        "gh-client",
        "gh-secret-77",
    );
    let connector = format!(
        "kind: github\nversion: v3\nmetadata:\n  name: github\nspec:\n  display: GitHub\n  client_id: gh-client\n  client_secret: gh-secret-77\n  redirect_url: https://{}/v1/webapi/github/callback\n  endpoint_url: {url}\n  api_endpoint_url: {url}/api/v3\n  teams_to_roles:\n    - organization: acme\n      team: admins\n      roles: [full-access]\n",
        root.web,
        url = gh.url
    );
    root.create("github.yaml", &connector).ok("create github connector");

    let tsh = tsh_for(root, "gh-alice");
    let (out, pages) = browser_login(&tsh, root, &["--auth=github"], "alice", "alice-gh-pw");
    out.ok("tsh login through the GitHub stand-in");
    assert!(
        pages
            .iter()
            .any(|p| p.url.starts_with(&format!("{}/login/oauth/authorize?client_id=gh-client", gh.url))
                && p.url.contains("scope=read%3Aorg")),
        "{pages:#?}"
    );
    assert!(gh.team_pages() >= 2, "the teams came on two pages");
    let status = tsh.run(&["status", "-f", "json"]).json();
    assert_eq!(status["active"]["username"], "alice", "{status}");
    assert_eq!(status["active"]["roles"], serde_json::json!(["full-access"]), "{status}");
    assert_eq!(status["active"]["traits"]["github_teams"], serde_json::json!(["Devs", "Ops", "Admins"]), "{status}");
    assert_eq!(status["active"]["traits"]["logins"], serde_json::json!(["alice"]), "{status}");
    let leaf_arg = format!("--cluster={}", leaf.opts.name);
    assert!(tsh.run(&["ssh", &leaf_arg, "alice@stage-gh", "whoami"]).ok("ssh as the GitHub login").contains("alice"));
    assert_ne!(tsh.run(&["ssh", &leaf_arg, "alice@prod-gh", "true"]).code, 0, "not the prod node");

    // Without --browser=none tsh opens $BROWSER on its link (here a script that notes it).
    let dir = TempDir::new("gh-browser");
    let opened = dir.path().join("opened");
    let script = dir.path().join("browser.sh");
    std::fs::write(&script, format!("#!/bin/sh\necho \"$1\" > {}\n", opened.display())).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut again = tsh_for(root, "gh-alice-browser");
    again.env.push(("BROWSER".into(), script.display().to_string()));
    let mut l = SsoLogin::start(&again, &["login", &format!("--proxy={}", root.web), "--auth=github"]);
    let link =
        wait_for("tsh to open the browser", Duration::from_secs(10), || std::fs::read_to_string(&opened).ok().filter(|s| !s.is_empty()));
    assert_eq!(link.trim(), l.link, "the browser got the link tsh printed");
    let browser = Browser::new(&root.web_ca());
    let pages = browser.follow(link.trim(), None);
    browser.sign_in(pages.last().unwrap(), "alice", "alice-gh-pw");
    let out = l.wait(Duration::from_secs(30));
    out.ok("login through $BROWSER");
    assert!(out.stderr.contains("If browser window does not open automatically, open it by clicking on the link:"), "{}", out.stderr);

    let (out, _) = browser_login(&tsh_for(root, "gh-carol"), root, &["--auth=github"], "carol", "carol-gh-pw");
    out.sso_fails("no teams", "list of user teams is empty, did you grant access?");
    // Organization and team match exactly (not another org's admins, not a slug's case).
    let (out, _) = browser_login(&tsh_for(root, "gh-bob"), root, &["--auth=github"], "bob", "bob-gh-pw");
    out.sso_fails("other teams", "does not belong to any teams configured in connector");
    assert!(user_json(root, "bob").is_none() && user_json(root, "carol").is_none());
    assert!(!root.log().contains("gh-secret-77"), "the client secret is not logged");
}
