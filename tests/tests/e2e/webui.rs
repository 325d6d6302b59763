//! The web UI in a real browser (Chromium over WebDriver), and its security rules checked
//! without one (curl and a WebSocket client).

use std::time::{Duration, Instant};

use e2e::browser::*;
use e2e::*;
use fantoccini::{Client, Locator};

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

async fn fill(c: &Client, css: &str, text: &str) {
    let el = wait_css(c, css, Duration::from_secs(10)).await;
    el.clear().await.unwrap();
    el.send_keys(text).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    wait_css(c, css, Duration::from_secs(10)).await.click().await.unwrap();
}

async fn path_of(c: &Client) -> String {
    c.current_url().await.map(|u| u.path().to_string()).unwrap_or_default()
}

async fn wait_path(c: &Client, want: &str) {
    wait_until(&format!("the page {want}"), Duration::from_secs(15), || async {
        let p = path_of(c).await;
        (p == want).then_some(())
    })
    .await;
}

async fn body_text(c: &Client) -> String {
    c.find(Locator::Css("body")).await.unwrap().text().await.unwrap_or_default()
}

async fn save_shot(c: &Client, name: &str) -> Vec<u8> {
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots_dir().join(format!("{name}.png")), &png).unwrap();
    png
}

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

#[test]
fn the_web_ui_signs_in_lists_clusters_and_opens_a_terminal_on_a_leaf_node() {
    let mut p = pair("webui", true);
    p.trust_online();
    let root = p.root.opts.name.clone();
    let leaf = p.leaf.opts.name.clone();
    let leaf_node = p.leaf.node_name();
    let base = format!("https://{}", p.root.web);
    let token = p.root.invite("alice", "access,editor", "visitor");
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

        // Manage Clusters: the root and the leaf, online.
        let row = wait_css(&c, &format!("tr[data-cluster='{leaf}'] [data-status]"), Duration::from_secs(10)).await;
        assert_eq!(row.text().await.unwrap(), "online");
        assert!(body_text(&c).await.contains("ROOT"));
        save_shot(&c, "clusters").await;

        // The leaf's servers, reached over the tunnel.
        c.goto(&format!("{base}/web/cluster/{leaf}/nodes")).await.unwrap();
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
