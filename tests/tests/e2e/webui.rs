//! The web UI in a real browser (Chromium over WebDriver), and its security rules checked
//! without one (curl and a WebSocket client).

use std::time::{Duration, Instant};

use e2e::browser::*;
use e2e::*;
use fantoccini::{Client, Locator};

/// Types into the terminal (`\n` is Enter).
async fn type_in_terminal(c: &Client, text: &str) {
    let input = c.find(Locator::Css(".xterm-helper-textarea")).await.unwrap();
    input.send_keys(&text.replace('\n', "\u{E007}")).await.unwrap();
}

async fn wait_terminal_line(c: &Client, what: &str, pred: impl Fn(&str) -> bool) -> String {
    wait_until(what, Duration::from_secs(20), || async {
        let t = terminal_text(c).await;
        t.lines().map(str::trim).find(|l| pred(l)).map(str::to_string)
    })
    .await
}

/// Waits for the file bar's status to settle (done or error) and checks it is `want`; its text.
async fn file_status(c: &Client, want: &str) -> String {
    let (state, text) = wait_until("the file bar's answer", Duration::from_secs(30), || async {
        let el = c.find(Locator::Css("#file-status")).await.ok()?;
        let state = el.attr("data-state").await.ok()??;
        (state == "done" || state == "error").then_some((state, el.text().await.unwrap_or_default()))
    })
    .await;
    assert_eq!(state, want, "the file bar says: {text}");
    c.execute("document.getElementById('file-status').dataset.state = 'idle';", vec![]).await.unwrap();
    text
}

#[test]
fn the_web_ui_signs_in_lists_clusters_and_opens_a_terminal_on_a_leaf_node() {
    let mut p = pair("webui", true);
    p.trust_online();
    let root = p.root.opts.name.clone();
    let leaf = p.leaf.opts.name.clone();
    let leaf_node = p.leaf.node_name();
    let base = format!("https://{}", p.root.web);
    // Labelled leaves are for roles whose cluster_labels match (the guide's rule): alice sees all.
    p.root
        .create(
            "all.yaml",
            "kind: role\nversion: v7\nmetadata:\n  name: all-clusters\nspec:\n  allow:\n    cluster_labels:\n      '*': '*'\n",
        )
        .ok("role");
    let token = p.root.invite("alice", "access,editor,all-clusters", "visitor");
    let chrome = Chrome::start();
    rt().block_on(async {
        let c = chrome.client(1200, 820).await;

        // The invite link: set a password, and be signed in.
        c.goto(&format!("{base}/web/invite/{token}")).await.unwrap();
        fill(&c, "#password", "alice-web-pw-1").await;
        fill(&c, "#confirm", "alice-web-pw-1").await;
        save_shot(&c, "invite").await;
        click(&c, "#set-password").await;
        wait_path(&c, &format!("/web/cluster/{root}/nodes")).await;
        // The root has no servers: the first page says where they are.
        let there = wait_css(&c, &format!("#elsewhere a[href='/web/cluster/{leaf}/nodes']"), Duration::from_secs(10)).await;
        assert_eq!(there.text().await.unwrap(), leaf);
        let elsewhere = wait_css(&c, "#elsewhere", Duration::from_secs(10)).await.text().await.unwrap();
        assert!(elsewhere.contains("1 server"), "{elsewhere}");
        save_shot(&c, "landing").await;
        // The same password works for tsh.
        let mut tsh = Tsh::new("webui-alice");
        tsh.login(&p.root, "alice", "alice-web-pw-1").ok("tsh login with the password set in the browser");
        // The link is spent.
        c.goto(&format!("{base}/web/invite/{token}")).await.unwrap();
        assert!(body_text(&c).await.contains("expired or was already used"), "{}", body_text(&c).await);

        // Sign out; a wrong password is refused; the right one signs in.
        c.goto(&format!("{base}/web/clusters")).await.unwrap();
        click(&c, "#logout").await;
        wait_path(&c, "/web/login").await;
        c.goto(&format!("{base}/web/clusters")).await.unwrap();
        wait_path(&c, "/web/login").await;
        fill(&c, "#user", "alice").await;
        fill(&c, "#password", "wrong-password").await;
        click(&c, "#sign-in").await;
        let err = wait_css(&c, ".error", Duration::from_secs(10)).await.text().await.unwrap();
        assert!(err.contains("invalid username or password"), "{err}");
        save_shot(&c, "login").await;
        fill(&c, "#password", "alice-web-pw-1").await;
        click(&c, "#sign-in").await;
        wait_path(&c, "/web/clusters").await;

        // An unknown page keeps the navigation bar.
        c.goto(&format!("{base}/web/no-such-page")).await.unwrap();
        let text = body_text(&c).await;
        assert!(text.contains("no such page") && text.contains("Manage Clusters"), "{text}");
        // A cluster the user cannot reach is explained for a browser, not with tsh commands.
        c.goto(&format!("{base}/web/cluster/no-such.example.com/nodes")).await.unwrap();
        let text = body_text(&c).await;
        assert!(text.contains("\"no-such.example.com\" is not one you can reach") && !text.contains("tsh"), "{text}");
        let next = wait_css(&c, "a#next", Duration::from_secs(10)).await;
        assert_eq!(next.attr("href").await.unwrap().as_deref(), Some("/web/clusters"));
        c.goto(&format!("{base}/web/clusters")).await.unwrap();

        // Manage Clusters: the root and the leaf, online.
        // The page shows the status at the time it was rendered: reload until the leaf reads
        // online (a late heartbeat on a loaded machine can flip it between two requests).
        let status = format!("tr[data-cluster='{leaf}'] [data-status]");
        wait_until("the leaf online on Manage Clusters", Duration::from_secs(20), || async {
            let row = wait_css(&c, &status, Duration::from_secs(10)).await;
            if row.text().await.unwrap() == "online" {
                return Some(());
            }
            c.refresh().await.unwrap();
            None
        })
        .await;
        assert!(body_text(&c).await.contains("ROOT"));
        // An admin labels the leaf from the page (as tctl update rc --set-labels).
        fill(&c, &format!("tr[data-cluster='{leaf}'] input[name='labels']"), "env=web,team=a").await;
        click(&c, &format!("tr[data-cluster='{leaf}'] form button")).await;
        wait_css(&c, &format!("tr[data-cluster='{leaf}'] td:nth-child(5) .pill"), Duration::from_secs(10)).await;
        let rc = p.root.tctl(&["get", &format!("rc/{leaf}"), "--format=json"]).json();
        assert_eq!(rc[0]["metadata"]["labels"], serde_json::json!({"env": "web", "team": "a"}), "{rc}");
        c.goto(&format!("{base}/web/clusters")).await.unwrap();
        save_shot(&c, "clusters").await;

        // The cluster selector switches to the leaf: its servers, reached over the tunnel.
        c.goto(&format!("{base}/web/cluster/{root}/nodes")).await.unwrap();
        c.execute(
            "const s = document.querySelector('select[name=cluster]'); s.value = arguments[0]; s.dispatchEvent(new Event('change', {bubbles: true}));",
            vec![serde_json::json!(leaf)],
        )
        .await
        .unwrap();
        wait_path(&c, &format!("/web/cluster/{leaf}/nodes")).await;
        // The cluster picker shows the whole name it holds (it cut "rootcluster.example.cc").
        let fit = c
            .execute(
                "const s = document.querySelector('header select'); const g = document.createElement('canvas').getContext('2d'); \
                 const st = getComputedStyle(s); g.font = `${st.fontWeight} ${st.fontSize} ${st.fontFamily}`; \
                 const room = s.clientWidth - parseFloat(st.paddingLeft) - parseFloat(st.paddingRight) - 20; \
                 return [g.measureText(s.options[s.selectedIndex].text).width, room];",
                vec![],
            )
            .await
            .unwrap();
        let (text_px, box_px) = (fit[0].as_f64().unwrap(), fit[1].as_f64().unwrap());
        assert!(text_px <= box_px, "the picker ({box_px}px beside its arrow) cuts {leaf:?} ({text_px}px of text)");
        let node_row = wait_css(&c, &format!("tr[data-node='{leaf_node}']"), Duration::from_secs(10)).await;
        assert!(node_row.text().await.unwrap().contains("visitor"), "a visitor connect button");
        save_shot(&c, "servers").await;

        // A terminal on the leaf's node as visitor (the leaf maps access to visitor).
        c.goto(&format!("{base}/web/cluster/{leaf}/console/node/{leaf_node}/visitor")).await.unwrap();
        wait_css(&c, "#term-status[data-state='connected']", Duration::from_secs(20)).await;
        type_in_terminal(&c, "echo $((6*7))\n").await;
        wait_terminal_line(&c, "42 in the terminal", |l| l == "42").await;
        let (rows, cols) = {
            let v = c.execute("return [window.tpTerminal.rows, window.tpTerminal.cols]", vec![]).await.unwrap();
            (v[0].as_u64().unwrap(), v[1].as_u64().unwrap())
        };
        type_in_terminal(&c, "stty size\n").await;
        wait_terminal_line(&c, "stty size", |l| l == format!("{rows} {cols}")).await;
        // Resize the window: the terminal and the remote pty follow.
        c.set_window_size(900, 640).await.unwrap();
        let (rows2, cols2) = wait_until("the terminal to refit", Duration::from_secs(10), || async {
            let v = c.execute("return [window.tpTerminal.rows, window.tpTerminal.cols]", vec![]).await.ok()?;
            let (r, k) = (v[0].as_u64()?, v[1].as_u64()?);
            (r != rows || k != cols).then_some((r, k))
        })
        .await;
        type_in_terminal(&c, "clear; stty size\n").await;
        wait_terminal_line(&c, "the new stty size", |l| l == format!("{rows2} {cols2}")).await;
        type_in_terminal(&c, "printf 'colour \\033[32mgreen\\033[0m ok\\n'\n").await;
        wait_terminal_line(&c, "colour output", |l| l.contains("colour green ok")).await;
        // Pixels, not only text: a blocked stylesheet leaves the text in the page and a black screen.
        let term = c.find(Locator::Css("#terminal")).await.unwrap();
        let png = term.screenshot().await.unwrap();
        std::fs::write(shots_dir().join("terminal.png"), &png).unwrap();
        save_shot(&c, "terminal-page").await;
        let share = non_background_share(&png, (0x0b, 0x10, 0x21));
        assert!(share > 0.002, "the terminal's pixels are blank ({share})");
        type_in_terminal(&c, "exit 3\n").await;
        let ended = wait_css(&c, "#term-status[data-state='ended']", Duration::from_secs(15)).await;
        assert!(ended.text().await.unwrap().contains("exit status 3"), "{}", ended.text().await.unwrap());
        // Upload and download on the same page: the leaf's node writes as visitor.
        let name = format!("web-upload-{}.bin", std::process::id());
        let content: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        let local = TempDir::new("web-upload");
        let src = local.path().join(&name);
        std::fs::write(&src, &content).unwrap();
        let visitor = nix::unistd::User::from_name("visitor").unwrap().unwrap();
        let on_node = visitor.dir.join(&name);
        let _ = std::fs::remove_file(&on_node);
        wait_css(&c, "#upload-file", Duration::from_secs(10)).await.send_keys(&src.display().to_string()).await.unwrap();
        click(&c, "#upload-form button").await;
        let done = file_status(&c, "done").await;
        assert!(done.contains("(300000 bytes)"), "{done}");
        assert_eq!(std::fs::read(&on_node).unwrap(), content, "byte-exact upload");
        {
            use std::os::unix::fs::MetadataExt;
            let m = std::fs::metadata(&on_node).unwrap();
            assert_eq!((m.uid(), m.mode() & 0o777), (visitor.uid.as_raw(), 0o644), "the login's file, 0644");
        }
        fill(&c, "#download-path", &format!("~/{name}")).await;
        click(&c, "#download-form button").await;
        file_status(&c, "done").await;
        let status = wait_css(&c, "#file-status[data-sha256]", Duration::from_secs(20)).await;
        let sha = status.attr("data-sha256").await.unwrap().unwrap_or_default();
        let want = run(std::path::Path::new("sha256sum"), &[src.to_str().unwrap()], &[], None, Duration::from_secs(10));
        assert_eq!(Some(sha.as_str()), want.stdout.split_whitespace().next(), "byte-exact download");
        fill(&c, "#download-path", "~").await;
        click(&c, "#download-form button").await;
        let err = file_status(&c, "error").await;
        assert!(err.contains("is a directory"), "{err}");
        save_shot(&c, "terminal-files").await;
        let _ = std::fs::remove_file(&on_node);
        // The leaf audited the copy too.
        wait_until("an sftp event on the leaf for the upload", Duration::from_secs(20), || async {
            p.leaf
                .events()
                .iter()
                .any(|e| e["code"] == "TS001I" && e["path"].as_str().is_some_and(|x| x.ends_with(&name)) && e["user"] == "alice")
                .then_some(())
        })
        .await;

        // The leaf's audit log: its role map gives alice no rule on events, and the page says
        // so in words (it showed "access denied to perform action \"list\" on \"event\"").
        c.goto(&format!("{base}/web/cluster/{leaf}/audit")).await.unwrap();
        let denied = wait_css(&c, "#audit-denied", Duration::from_secs(10)).await.text().await.unwrap();
        assert!(denied.contains("do not let you read its audit log") && denied.contains("event"), "{denied}");
        let text = body_text(&c).await;
        assert!(!text.contains("perform action") && text.contains("the leaf decides"), "{text}");
        save_shot(&c, "leaf-audit-denied").await;

        // The leaf audited the session with the mapped role.
        let start = p.leaf.events().into_iter().rev().find(|e| e["event"] == "session.start" && e["user"] == "alice").expect("session.start on the leaf");
        assert_eq!(start["roles"], serde_json::json!(["visitor"]), "{start}");

        // Roles: create one from YAML, see it with tctl; bad YAML gets tctl's kind of message.
        c.goto(&format!("{base}/web/roles/new")).await.unwrap();
        let yaml = "kind: role\nversion: v7\nmetadata:\n  name: web-made\nspec:\n  allow:\n    logins: [visitor]\n    node_labels:\n      env: web\n";
        c.execute("document.getElementById('yaml').value = arguments[0];", vec![serde_json::json!(yaml)]).await.unwrap();
        click(&c, "#save").await;
        wait_css(&c, "tr[data-name='web-made']", Duration::from_secs(10)).await;
        let got = p.root.tctl(&["get", "roles/web-made", "--format=json"]).json();
        assert_eq!(got[0]["spec"]["allow"]["node_labels"]["env"], "web", "{got}");
        c.goto(&format!("{base}/web/roles/new")).await.unwrap();
        c.execute("document.getElementById('yaml').value = arguments[0];", vec![serde_json::json!("kind: role\nversion: v7\nmetadata:\n  name: [bad\n")]).await.unwrap();
        click(&c, "#save").await;
        let err = wait_css(&c, ".error", Duration::from_secs(10)).await.text().await.unwrap();
        assert!(err.contains("role.yaml") && err.contains("line"), "{err}");

        // The audit log of the root shows the sign-ins.
        c.goto(&format!("{base}/web/cluster/{root}/audit")).await.unwrap();
        wait_css(&c, "tr[data-event='user.login']", Duration::from_secs(10)).await;
        save_shot(&c, "audit").await;

        // No Content-Security-Policy report from any page so far.
        let count = run(std::path::Path::new("curl"), &["-s", "--cacert", &p.root.web_ca().display().to_string(), &format!("{base}/web/csp-report")], &[], None, Duration::from_secs(10));
        assert_eq!(count.json()["count"], 0, "CSP reports: {}", count.stdout);

        // The leaf goes away: offline within 10 s (the page refreshes itself), then its row
        // disappears after tctl rm rc/leaf, with no restart.
        c.goto(&format!("{base}/web/clusters")).await.unwrap();
        let killed = Instant::now();
        p.leaf.kill();
        wait_until("the leaf offline on the clusters page", Duration::from_secs(20), || async {
            let el = c.find(Locator::Css(&format!("tr[data-cluster='{leaf}'] [data-status]"))).await.ok()?;
            (el.text().await.ok()? == "offline").then_some(())
        })
        .await;
        let offline_after = killed.elapsed();
        assert!(offline_after < Duration::from_secs(12), "offline after {offline_after:?}");
        eprintln!("the clusters page showed the leaf offline {offline_after:?} after it was killed");
        p.root.tctl(&["rm", &format!("rc/{leaf}")]).ok("tctl rm rc/leaf");
        wait_until("the leaf's row to go", Duration::from_secs(15), || async {
            c.find(Locator::Css(&format!("tr[data-cluster='{leaf}']"))).await.is_err().then_some(())
        })
        .await;
        c.close().await.unwrap();
    });
    let _ = chrome.log();
}

/// An HTTP exchange with curl: status, headers, body.
pub(crate) struct Http {
    pub(crate) status: u16,
    pub(crate) headers: String,
    pub(crate) body: String,
}

pub(crate) fn http(c: &Cluster, method: &str, path: &str, headers: &[String], data: Option<&str>) -> Http {
    let dir = TempDir::new("http");
    let (h, b) = (dir.path().join("h"), dir.path().join("b"));
    let url = format!("https://{}{path}", c.web);
    let mut args: Vec<String> = vec!["-s".into(), "-X".into(), method.into(), "--cacert".into(), c.web_ca().display().to_string()];
    args.extend(["-D".into(), h.display().to_string(), "-o".into(), b.display().to_string(), "-w".into(), "%{http_code}".into()]);
    for x in headers {
        args.extend(["-H".into(), x.clone()]);
    }
    if let Some(d) = data {
        args.extend(["--data-raw".into(), d.into()]);
    }
    args.push(url);
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = run(std::path::Path::new("curl"), &refs, &[], None, Duration::from_secs(20));
    Http {
        status: out.stdout.trim().parse().unwrap_or(0),
        headers: std::fs::read_to_string(&h).unwrap_or_default(),
        body: std::fs::read_to_string(&b).unwrap_or_default(),
    }
}

/// Signs in over the JSON API: the session cookie (name=value) and the bearer token.
pub(crate) fn sign_in(c: &Cluster, user: &str, password: &str) -> (String, String) {
    let r = http(
        c,
        "POST",
        "/v1/webapi/sessions/web",
        &["Content-Type: application/json".into()],
        Some(&serde_json::json!({"user": user, "pass": password}).to_string()),
    );
    assert_eq!(r.status, 200, "sign in: {} {}", r.headers, r.body);
    let set = r.headers.lines().find(|l| l.to_ascii_lowercase().starts_with("set-cookie:")).expect("a Set-Cookie").to_string();
    for flag in ["__Host-session=", "HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(flag), "{flag} in {set}");
    }
    let cookie = set.split_once(':').unwrap().1.trim().split(';').next().unwrap().to_string();
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["type"], "Bearer");
    (cookie, v["token"].as_str().unwrap().to_string())
}

fn csrf_of(html: &str) -> String {
    html.split("name=\"csrf\" value=\"").nth(1).and_then(|r| r.split('"').next()).expect("a csrf field").to_string()
}

type Ws = tungstenite::WebSocket<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>>;

fn ws_connect(c: &Cluster, path: &str, cookie: Option<&str>, origin: &str) -> Result<Ws, String> {
    ws_connect_from(c, path, cookie, origin, None)
}

/// [`ws_connect`] from `source` (a 127.x address of the test's choosing).
fn ws_connect_from(c: &Cluster, path: &str, cookie: Option<&str>, origin: &str, source: Option<&str>) -> Result<Ws, String> {
    use tungstenite::client::IntoClientRequest;
    let ca = std::fs::read_to_string(c.web_ca()).unwrap();
    let mut cfg = shared::client::tls_client_config(&shared::client::ServerTrust::Pinned(vec![ca]), None).unwrap();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = match source {
        None => std::net::TcpStream::connect(&c.web).unwrap(),
        Some(src) => {
            use nix::sys::socket::{AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, socket};
            use std::os::fd::AsRawFd;
            let dst: std::net::SocketAddrV4 = c.web.parse().unwrap();
            let fd = socket(AddressFamily::Inet, SockType::Stream, SockFlag::SOCK_CLOEXEC, None).unwrap();
            bind(fd.as_raw_fd(), &SockaddrIn::from(std::net::SocketAddrV4::new(src.parse().unwrap(), 0))).unwrap();
            connect(fd.as_raw_fd(), &SockaddrIn::from(dst)).unwrap();
            std::net::TcpStream::from(fd)
        }
    };
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let name = rustls_pki_types::ServerName::try_from(c.ip.clone()).unwrap();
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(cfg), name).unwrap();
    let tls = rustls::StreamOwned::new(conn, tcp);
    let mut req = format!("wss://{}{path}", c.web).into_client_request().unwrap();
    req.headers_mut().insert("Origin", origin.parse().unwrap());
    if let Some(ck) = cookie {
        req.headers_mut().insert("Cookie", ck.parse().unwrap());
    }
    tungstenite::client(req, tls).map(|(ws, _)| ws).map_err(|e| e.to_string())
}

/// Reads binary envelopes until one of `kind` whose payload passes `pred` (at most `timeout`).
fn ws_until(ws: &mut Ws, kind: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match ws.read() {
            Ok(tungstenite::Message::Binary(b)) => {
                if let Ok(e) = shared::webterm::decode(&b)
                    && e.kind == kind
                    && pred(&e.payload)
                {
                    return Some(e.payload);
                }
            }
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

#[test]
fn web_sessions_refuse_forged_requests_and_leaves_follow_cluster_labels() {
    let p = pair("websec", false);
    p.trust_online();
    let (root, leaf) = (&p.root, &p.leaf);
    let leaf_name = leaf.opts.name.clone();
    root.tctl(&["update", &format!("rc/{leaf_name}"), "--set-labels=env=prod"]).ok("label the leaf");
    root.create("staging.yaml", "kind: role\nversion: v7\nmetadata:\n  name: staging-only\nspec:\n  allow:\n    logins: [visitor]\n    node_labels:\n      '*': '*'\n    cluster_labels:\n      env: staging\n").ok("role");
    root.create(
        "prod.yaml",
        "kind: role\nversion: v7\nmetadata:\n  name: prod-clusters\nspec:\n  allow:\n    cluster_labels:\n      env: prod\n",
    )
    .ok("role");
    root.add_user("webadmin", "access,editor,prod-clusters", "visitor", PASSWORD);
    root.add_user("limited", "staging-only", "visitor", PASSWORD);
    let origin = format!("Origin: https://{}", root.web);

    // A wrong password: refused, no cookie.
    let r = http(
        root,
        "POST",
        "/v1/webapi/sessions/web",
        &["Content-Type: application/json".into()],
        Some(r#"{"user":"webadmin","pass":"nope-nope-nope"}"#),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(!r.headers.to_ascii_lowercase().contains("set-cookie"), "{}", r.headers);
    let (cookie, bearer) = sign_in(root, "webadmin", PASSWORD);
    let ck = format!("Cookie: {cookie}");

    // JSON calls need the bearer token besides the cookie.
    let none = http(root, "GET", "/v1/webapi/sites", std::slice::from_ref(&ck), None);
    assert_eq!(none.status, 403, "{}", none.body);
    assert!(none.body.contains("bad bearer token"), "{}", none.body);
    let wrong = http(root, "GET", "/v1/webapi/sites", &[ck.clone(), "Authorization: Bearer 0123".into()], None);
    assert_eq!(wrong.status, 403);
    let no_cookie = http(root, "GET", "/v1/webapi/sites", &[format!("Authorization: Bearer {bearer}")], None);
    assert!(no_cookie.status == 403 && no_cookie.body.contains("missing session cookie"), "{}", no_cookie.body);
    let ok = http(root, "GET", "/v1/webapi/sites", &[ck.clone(), format!("Authorization: Bearer {bearer}")], None);
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.body.contains(&leaf_name), "the admin sees the leaf: {}", ok.body);

    // Pages: security headers; forms need this site's Origin and the session's CSRF token.
    let page = http(root, "GET", "/web/roles", std::slice::from_ref(&ck), None);
    assert_eq!(page.status, 200);
    let h = page.headers.to_ascii_lowercase();
    assert!(
        h.contains("content-security-policy: default-src 'self'")
            && h.contains("script-src 'self'")
            && h.contains("x-frame-options: sameorigin"),
        "{}",
        page.headers
    );
    let csrf = csrf_of(&page.body);
    let form = |csrf: &str| {
        format!(
            "csrf={csrf}&mode=create&yaml={}",
            e2e::idp::form_escape("kind: role\nversion: v7\nmetadata:\n  name: made-by-form\nspec:\n  allow:\n    logins: [visitor]\n")
        )
    };
    let ctype = "Content-Type: application/x-www-form-urlencoded".to_string();
    let r = http(root, "POST", "/web/roles", &[ck.clone(), ctype.clone(), origin.clone()], Some(&form("")));
    assert_eq!(r.status, 403, "no CSRF token: {}", r.body);
    assert!(r.body.contains("CSRF"), "{}", r.body);
    let r = http(root, "POST", "/web/roles", &[ck.clone(), ctype.clone(), origin.clone()], Some(&form(&"0".repeat(64))));
    assert_eq!(r.status, 403, "another session's token");
    let r = http(root, "POST", "/web/roles", &[ck.clone(), ctype.clone(), "Origin: https://evil.example.com".into()], Some(&form(&csrf)));
    assert!(r.status == 403 && r.body.contains("another site"), "{} {}", r.status, r.body);
    let r = http(root, "POST", "/web/roles", &[ck.clone(), ctype.clone()], Some(&form(&csrf)));
    assert!(r.status == 403 && r.body.contains("no Origin"), "{} {}", r.status, r.body);
    assert_ne!(root.tctl(&["get", "roles/made-by-form"]).code, 0, "nothing was created by a refused form");
    let r = http(root, "POST", "/web/roles", &[ck.clone(), ctype.clone(), origin.clone()], Some(&form(&csrf)));
    assert_eq!(r.status, 200, "{}", r.body);
    root.tctl(&["get", "roles/made-by-form"]).ok("the good form created the role");

    // The same through the JSON API (Teleport's ResourceItem shape), for scripts.
    let auth = vec![ck.clone(), format!("Authorization: Bearer {bearer}"), "Content-Type: application/json".into()];
    let content = |env: &str| {
        serde_json::json!({"content": format!("kind: role\nversion: v7\nmetadata:\n  name: made-by-json\nspec:\n  allow:\n    logins: [visitor]\n    node_labels:\n      env: {env}\n")}).to_string()
    };
    let r = http(root, "POST", "/v1/webapi/roles", &auth, Some(&content("a")));
    assert_eq!(r.status, 200, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["id"], "role:made-by-json", "{v}");
    assert!(v["content"].as_str().unwrap().contains("env: a"), "{v}");
    let r = http(root, "POST", "/v1/webapi/roles", &auth, Some(&content("a")));
    assert!(r.status == 409 && r.body.contains("already exists"), "{} {}", r.status, r.body);
    let r = http(root, "PUT", "/v1/webapi/roles/made-by-json", &auth, Some(&content("b")));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(root.tctl(&["get", "roles/made-by-json", "--format=json"]).json()[0]["spec"]["allow"]["node_labels"]["env"], "b");
    let r = http(root, "PUT", "/v1/webapi/roles/no-such-role", &auth, Some(&content("b")));
    assert!(r.status == 400 || r.status == 404, "{} {}", r.status, r.body);
    let list = http(root, "GET", "/v1/webapi/roles", &auth, None);
    assert!(list.status == 200 && list.body.contains("role:made-by-json"), "{}", list.body);
    let r = http(root, "DELETE", "/v1/webapi/roles/made-by-json", &auth, None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_ne!(root.tctl(&["get", "roles/made-by-json"]).code, 0, "deleted");
    let r = http(root, "POST", "/v1/webapi/roles", &[ck.clone(), "Content-Type: application/json".into()], Some(&content("c")));
    assert_eq!(r.status, 403, "no bearer, no write: {}", r.body);

    // cluster_labels: a user whose roles do not match the leaf's labels does not see it.
    let (lc, lb) = sign_in(root, "limited", PASSWORD);
    let sites = http(root, "GET", "/v1/webapi/sites", &[format!("Cookie: {lc}"), format!("Authorization: Bearer {lb}")], None);
    assert!(sites.status == 200 && !sites.body.contains(&leaf_name), "{}", sites.body);
    let page = http(root, "GET", "/web/clusters", &[format!("Cookie: {lc}")], None);
    assert!(page.status == 200 && !page.body.contains(&leaf_name) && page.body.contains(&root.opts.name), "{}", page.body);
    let admin_page = http(root, "GET", "/web/clusters", std::slice::from_ref(&ck), None);
    assert!(admin_page.body.contains(&leaf_name), "the admin's page lists it");

    // The terminal socket: cookie and Origin at the upgrade, then the token first.
    let ws_path = format!(
        "/v1/webapi/sites/{}/connect/ws?params={}",
        p.root.opts.name,
        e2e::idp::form_escape(r#"{"server_id":"nowhere","login":"visitor","term":{"w":80,"h":24}}"#)
    );
    let good_origin = format!("https://{}", root.web);
    let e = ws_connect(root, &ws_path, None, &good_origin).expect_err("no cookie: refused");
    assert!(e.contains("403"), "{e}");
    let e = ws_connect(root, &ws_path, Some(&cookie), "https://evil.example.com").expect_err("foreign origin: refused");
    assert!(e.contains("403"), "{e}");
    let bad_dims = format!(
        "/v1/webapi/sites/{}/connect/ws?params={}",
        p.root.opts.name,
        e2e::idp::form_escape(r#"{"server_id":"x","login":"visitor","term":{"w":0,"h":24}}"#)
    );
    assert!(ws_connect(root, &bad_dims, Some(&cookie), &good_origin).is_err(), "bad dimensions refused");
    // Silent after the upgrade: told so and closed after 4 seconds.
    let mut ws = ws_connect(root, &ws_path, Some(&cookie), &good_origin).expect("upgrade");
    let started = Instant::now();
    let first = ws.read().expect("an answer");
    assert!(first.to_text().unwrap_or_default().contains("invalid token"), "{first:?}");
    assert!(started.elapsed() >= Duration::from_secs(3) && started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());
    // A wrong token.
    let mut ws = ws_connect(root, &ws_path, Some(&cookie), &good_origin).expect("upgrade");
    ws.send(tungstenite::Message::Text(r#"{"token":"not-it"}"#.into())).unwrap();
    assert!(ws.read().unwrap().to_text().unwrap_or_default().contains("\"status\":\"error\""));
    // The right token, a server that does not exist: one error envelope, then the close.
    let mut ws = ws_connect(root, &ws_path, Some(&cookie), &good_origin).expect("upgrade");
    ws.send(tungstenite::Message::Text(serde_json::json!({"token": bearer}).to_string().into())).unwrap();
    assert!(ws.read().unwrap().to_text().unwrap_or_default().contains("\"status\":\"ok\""));
    let err = ws_until(&mut ws, "e", Duration::from_secs(15), |_| true).expect("an error envelope");
    assert!(!err.is_empty(), "{err}");

    // A live terminal, on a node of the root.
    drop(ws);
    let mut node = NodeProc::join(root, "websec-node", false, "env=test");
    let ws_path = format!(
        "/v1/webapi/sites/{}/connect/ws?params={}",
        p.root.opts.name,
        e2e::idp::form_escape(r#"{"server_id":"websec-node","login":"visitor","term":{"w":80,"h":24}}"#)
    );
    let mut ws = ws_connect(root, &ws_path, Some(&cookie), &good_origin).expect("upgrade");
    ws.send(tungstenite::Message::Text(serde_json::json!({"token": bearer}).to_string().into())).unwrap();
    assert!(ws.read().unwrap().to_text().unwrap_or_default().contains("\"status\":\"ok\""));
    ws.send(tungstenite::Message::Binary(shared::webterm::encode("r", "echo web-$((40+2))\r").into())).unwrap();
    ws_until(&mut ws, "r", Duration::from_secs(15), |p| p.contains("web-42")).expect("the command's output");
    // Signing out elsewhere closes the open terminal.
    let out = http(root, "DELETE", "/v1/webapi/sessions/web", &[ck.clone(), format!("Authorization: Bearer {bearer}")], None);
    assert_eq!(out.status, 200, "{}", out.body);
    let closed_at = Instant::now();
    let why = ws_until(&mut ws, "e", Duration::from_secs(10), |_| true).expect("told why");
    assert!(why.contains("signed out"), "{why}");
    assert!(closed_at.elapsed() < Duration::from_secs(5), "{:?}", closed_at.elapsed());
    let after = http(root, "GET", "/v1/webapi/sites", &[ck.clone(), format!("Authorization: Bearer {bearer}")], None);
    assert_eq!(after.status, 403, "the session is gone");
    // An admin removes the leaf with the page's Remove button (a form: CSRF and Origin).
    let (ac, _) = sign_in(root, "webadmin", PASSWORD);
    let page = http(root, "GET", "/web/clusters", &[format!("Cookie: {ac}")], None);
    let csrf = csrf_of(&page.body);
    let r = http(
        root,
        "POST",
        &format!("/web/clusters/{leaf_name}/delete"),
        &[format!("Cookie: {ac}"), ctype.clone(), origin.clone()],
        Some(&format!("csrf={csrf}")),
    );
    assert_eq!(r.status, 303, "{} {}", r.status, r.body);
    assert_ne!(root.tctl(&["get", &format!("rc/{leaf_name}")]).code, 0, "the leaf is removed");
    node.kill();
}

#[test]
fn a_leaf_admin_connects_to_a_root_from_the_trust_page_signing_in_with_an_otp_code() {
    ensure_unix_user("visitor");
    let mut ro = ClusterOpts::new("root-webtrust.example.com");
    ro.node = false;
    let root = Cluster::start(ro);
    let mut lo = ClusterOpts::new("leaf-webtrust.example.com");
    lo.node = false;
    lo.insecure = true;
    // The product's default: a second factor for local users.
    lo.second_factor = None;
    let leaf = Cluster::start(lo);
    leaf.create("visitor.yaml", VISITOR).ok("leaf role");
    let invite = leaf.invite("leafadmin", "access,editor", "visitor");
    let base = format!("https://{}", leaf.web);
    let root_name = root.opts.name.clone();
    let leaf_name = leaf.opts.name.clone();
    let code_at = |secret: &[u8], offset: i64| {
        shared::totp::code_at(secret, time::OffsetDateTime::now_utc().unix_timestamp() + offset * shared::totp::STEP_SECONDS)
    };
    let chrome = Chrome::start();
    rt().block_on(async {
        let c = chrome.client(1200, 900).await;
        // The invite shows the QR code and the secret; the app's code completes it.
        c.goto(&format!("{base}/web/invite/{invite}")).await.unwrap();
        wait_css(&c, "#qr svg", Duration::from_secs(10)).await;
        let secret_b32 = wait_css(&c, "#otp-secret", Duration::from_secs(5)).await.text().await.unwrap();
        let secret = shared::totp::decode_secret(&secret_b32).expect("a base32 secret");
        fill(&c, "#password", "leaf-admin-pw-1").await;
        fill(&c, "#confirm", "leaf-admin-pw-1").await;
        fill(&c, "#otp", &code_at(&secret, 0)).await;
        save_shot(&c, "invite-otp").await;
        click(&c, "#set-password").await;
        wait_path(&c, &format!("/web/cluster/{leaf_name}/nodes")).await;

        // Trusted Root Clusters: paste the guide's resource with the root's token.
        let token = root.trusted_cluster_token("5m");
        let yaml = tc_yaml(&root_name, &token, &root, true, ACCESS_TO_VISITOR);
        c.goto(&format!("{base}/web/trust")).await.unwrap();
        c.execute("document.getElementById('yaml').value = arguments[0];", vec![serde_json::json!(yaml)]).await.unwrap();
        click(&c, "#save").await;
        wait_css(&c, &format!("tr[data-name='{root_name}']"), Duration::from_secs(20)).await;
        save_shot(&c, "trust").await;
        root.wait_remote_status(&leaf_name, "online", Duration::from_secs(30));
        // A spent token: the handshake's refusal, shown as it is.
        c.goto(&format!("{base}/web/trust")).await.unwrap();
        let again = tc_yaml("another-root.example.com", &token, &root, true, ACCESS_TO_VISITOR);
        c.execute("document.getElementById('yaml').value = arguments[0];", vec![serde_json::json!(again)]).await.unwrap();
        click(&c, "#save").await;
        let err = wait_css(&c, ".error", Duration::from_secs(20)).await.text().await.unwrap();
        assert!(!err.is_empty(), "the handshake's error is shown");
        // Disable it from the editor: the root sees the leaf go offline.
        c.goto(&format!("{base}/web/trust/{root_name}/edit")).await.unwrap();
        let current: String =
            c.execute("return document.getElementById('yaml').value", vec![]).await.unwrap().as_str().unwrap().to_string();
        assert!(current.contains("enabled: true"), "{current}");
        c.execute(
            "document.getElementById('yaml').value = arguments[0];",
            vec![serde_json::json!(current.replace("enabled: true", "enabled: false"))],
        )
        .await
        .unwrap();
        click(&c, "#save").await;
        wait_css(&c, ".notice", Duration::from_secs(20)).await;
        root.wait_remote_status(&leaf_name, "offline", Duration::from_secs(30));
        // Delete it (the page asks first; the test says yes).
        c.execute("window.confirm = () => true;", vec![]).await.unwrap();
        click(&c, &format!("tr[data-name='{root_name}'] button.danger")).await;
        // (The save's notice is still on the page until the delete's answer replaces it: wait for
        // the outcome, not for a notice.)
        wait_until("the trust to be gone on the leaf", Duration::from_secs(20), || async {
            let tcs = leaf.tctl(&["get", "trusted_cluster", "--format=json"]).json();
            (tcs == serde_json::json!([])).then_some(())
        })
        .await;
        wait_css(&c, ".notice", Duration::from_secs(20)).await;

        // Signing in again asks for a code.
        click(&c, "#logout").await;
        wait_path(&c, "/web/login").await;
        fill(&c, "#user", "leafadmin").await;
        fill(&c, "#password", "leaf-admin-pw-1").await;
        fill(&c, "#otp", "000000").await;
        click(&c, "#sign-in").await;
        let err = wait_css(&c, ".error", Duration::from_secs(10)).await.text().await.unwrap();
        assert!(err.contains("invalid username, password or second factor"), "{err}");
        fill(&c, "#password", "leaf-admin-pw-1").await;
        fill(&c, "#otp", &code_at(&secret, 1)).await;
        click(&c, "#sign-in").await;
        wait_path(&c, &format!("/web/cluster/{leaf_name}/nodes")).await;
        c.close().await.unwrap();
    });
}

#[test]
fn the_web_terminal_reaches_the_proxy_inside_the_process_with_the_browsers_address() {
    ensure_unix_user("visitor");
    let mut ro = ClusterOpts::new("root-webin.example.com");
    ro.diag = true;
    ro.node = false;
    let mut lo = ClusterOpts::new("leaf-webin.example.com");
    lo.insecure = true;
    lo.node_name = Some("webin-node".into());
    let p = Pair::start("webin", ro, lo);
    p.trust_online();
    let root = &p.root;
    root.add_user("webuser", "access", "visitor", PASSWORD);
    let (cookie, bearer) = sign_in(root, "webuser", PASSWORD);
    let browser = free_ip(&[]);
    let path = format!(
        "/v1/webapi/sites/{}/connect/ws?params={}",
        p.leaf_name(),
        e2e::idp::form_escape(r#"{"server_id":"webin-node","login":"visitor","term":{"w":80,"h":24}}"#)
    );
    let open = |m: &std::collections::BTreeMap<String, f64>| m.get("teleport_connections{state=\"all\"}").copied().unwrap_or(-1.0);
    let before = open(&root.metrics());
    let mut ws = ws_connect_from(root, &path, Some(&cookie), &format!("https://{}", root.web), Some(&browser)).expect("upgrade");
    ws.send(tungstenite::Message::Text(serde_json::json!({"token": bearer}).to_string().into())).unwrap();
    assert!(ws.read().unwrap().to_text().unwrap_or_default().contains("\"status\":\"ok\""));
    ws.send(tungstenite::Message::Binary(shared::webterm::encode("r", "echo in-$((40+2))\r").into())).unwrap();
    ws_until(&mut ws, "r", Duration::from_secs(15), |p| p.contains("in-42")).expect("the command's output");
    // One place in the proxy's connection limits: the browser's WebSocket. The SSH to the
    // proxy runs inside the process (it used to be a second connection, to its own port).
    let during = open(&root.metrics());
    eprintln!("web terminal: the root counts {before} connections before the terminal, {during} with it open");
    assert_eq!(during, before + 1.0, "a terminal counts once");
    // The leaf audits the browser's own address, not the proxy's.
    let ev = wait_for("the leaf's session.connect for the web user", Duration::from_secs(10), || {
        p.leaf.events().into_iter().find(|e| e["event"] == "session.connect" && e["user"] == "webuser")
    });
    let addr = ev["addr.remote"].as_str().unwrap_or_default().to_string();
    assert!(addr.starts_with(&format!("{browser}:")), "the leaf saw {addr}, the browser is {browser}: {ev}");
    let start = wait_for("the node's session.start", Duration::from_secs(10), || {
        p.leaf.events().into_iter().find(|e| e["event"] == "session.start" && e["user"] == "webuser")
    });
    assert!(start["addr.remote"].as_str().unwrap_or_default().starts_with(&format!("{browser}:")), "{start}");
    drop(ws);
}

/// The Active Sessions page of a leaf, seen from the root's web UI: `bob` (whose mapped leaf
/// role may watch visitors' sessions) finds alice's session and watches it in the browser
/// terminal; what he types is never sent.
#[test]
fn a_watcher_joins_a_leaf_session_from_the_active_sessions_page() {
    let w = crate::joining::world("web");
    let (root, leaf) = (w.root.opts.name.clone(), w.leaf.opts.name.clone());
    let base = format!("https://{}", w.root.web);
    let t = Duration::from_secs(20);
    let mut shell = PtyTsh::start(&w.alice, &["ssh", "--cluster", &leaf, "visitor@join-web"]);
    shell.type_keys("echo READY-$((1+1))\r");
    shell.wait_for("READY-2", t);
    let chrome = Chrome::start();
    rt().block_on(async {
        let c = chrome.client(1200, 820).await;
        c.goto(&format!("{base}/web/login")).await.unwrap();
        fill(&c, "#user", "bob").await;
        fill(&c, "#password", PASSWORD).await;
        click(&c, "#sign-in").await;
        wait_path(&c, &format!("/web/cluster/{root}/nodes")).await;
        // The root has no sessions; the navigation leads to the page.
        click(&c, "header a[href$='/sessions']").await;
        wait_path(&c, &format!("/web/cluster/{root}/sessions")).await;
        wait_css(&c, "#no-sessions", Duration::from_secs(10)).await;
        // The leaf's page lists alice's session on its tunnel node.
        c.goto(&format!("{base}/web/cluster/{leaf}/sessions")).await.unwrap();
        let row = wait_until("alice's session on the leaf's page", Duration::from_secs(20), || async {
            match c.find(Locator::Css("tr[data-sid]")).await {
                Ok(r) => Some(r),
                Err(_) => {
                    c.refresh().await.unwrap();
                    None
                }
            }
        })
        .await;
        let sid = row.attr("data-sid").await.unwrap().unwrap();
        let text = row.text().await.unwrap();
        assert!(text.contains("join-web") && text.contains("visitor") && text.contains("alice"), "{text}");
        assert!(!text.contains("Join as peer"), "only the owner is offered peer: {text}");
        save_shot(&c, "active-sessions").await;
        click(&c, &format!("tr[data-sid='{sid}'] a.join")).await;
        wait_path(&c, &format!("/web/cluster/{leaf}/console/session/{sid}")).await;
        let status = wait_css(&c, "#term-status[data-state='connected']", Duration::from_secs(20)).await;
        assert!(status.text().await.unwrap().contains("as observer"), "{}", status.text().await.unwrap());
        wait_terminal_line(&c, "the join banner", |l| l.contains("Joining session with participant mode: observer")).await;
        shell.wait_for("User bob joined the session as observer.", t);
        // What alice's session prints reaches the browser.
        shell.type_keys("echo WEB-$((6*7))\r");
        wait_terminal_line(&c, "alice's output in bob's browser", |l| l.contains("WEB-42")).await;
        // What bob types is never sent.
        let marker = format!("/tmp/web-observer-{}", std::process::id());
        type_in_terminal(&c, &format!("touch {marker}; echo WEBOBS-$((1+8))\n")).await;
        shell.type_keys("echo SYNC-$((2+9))\r");
        wait_terminal_line(&c, "the sync line", |l| l.contains("SYNC-11")).await;
        assert!(!terminal_text(&c).await.contains("WEBOBS-9") && !shell.text().contains("WEBOBS-9"), "the observer's keys ran");
        assert!(!std::path::Path::new(&marker).exists(), "the observer's keys reached the shell");
        // The JSON API lists it in Teleport's shape, with bob among the parties.
        let listed = c
            .execute_async(
                "const done = arguments[arguments.length - 1]; \
                 const token = document.querySelector('meta[name=grv_bearer_token]').content; \
                 fetch(`/v1/webapi/sites/${encodeURIComponent(arguments[0])}/sessions`, {headers: {Authorization: `Bearer ${token}`}}) \
                   .then(r => r.json()).then(done, e => done(String(e)));",
                vec![serde_json::json!(leaf)],
            )
            .await
            .unwrap();
        let one = &listed["sessions"][0];
        assert_eq!(one["id"], sid.as_str(), "{listed}");
        assert_eq!(one["owner"], "alice");
        assert!(one["parties"].as_array().unwrap().iter().any(|p| p["user"] == "bob"), "{listed}");
        save_shot(&c, "join-observer").await;
        // The session ends for the watcher too.
        shell.type_keys("exit\r");
        assert_eq!(shell.wait_exit(t), 0);
        wait_css(&c, "#term-status[data-state='ended']", Duration::from_secs(15)).await;
        c.close().await.unwrap();
    });
    let join = wait_for("bob's join on the leaf", t, || {
        w.leaf.events().into_iter().find(|e| e["code"] == "T2001I" && e["user"] == "bob" && e["sid"].is_string())
    });
    assert_eq!(join["participant_mode"], "observer");
    let _ = chrome.log();
}
