//! Issue 3: signing in and reaching servers inside one cluster.

use std::process::Command;
use std::time::Duration;

use e2e::{Cluster, ClusterOpts, NodeProc, Tsh, ensure_unix_user, run, tsh_with_pty, wait_for};

const PASSWORD: &str = "correct-horse-battery";

fn cluster_with_user(name: &str, node: bool) -> (Cluster, Tsh) {
    let mut o = ClusterOpts::new(name);
    o.node = node;
    cluster_with_user_opts(o)
}

fn cluster_with_user_opts(o: ClusterOpts) -> (Cluster, Tsh) {
    ensure_unix_user("visitor");
    let name = o.name.clone();
    let c = Cluster::start(o);
    c.add_user("myuser", "access,editor", "root,visitor", PASSWORD);
    let mut tsh = Tsh::new(&name);
    tsh.login(&c, "myuser", PASSWORD).ok("tsh login");
    (c, tsh)
}

#[test]
fn login_status_logout_and_tctl_from_the_profile() {
    let (c, mut tsh) = cluster_with_user("login.example.com", false);
    let st = tsh.run(&["status", "-f", "json"]).json();
    assert_eq!(st["active"]["username"], "myuser");
    assert_eq!(st["active"]["cluster"], "login.example.com");
    assert_eq!(st["active"]["roles"], serde_json::json!(["access", "editor"]));
    assert_eq!(st["active"]["logins"], serde_json::json!(["root", "visitor"]));
    assert_eq!(st["active"]["profile_url"], format!("https://{}", c.web));
    assert!(st["active"]["valid_until"].as_str().unwrap_or_default().ends_with('Z'));
    let text = tsh.run(&["status"]).ok("status").to_string();
    assert!(text.starts_with(&format!("> Profile URL:        https://{}\n  Logged in as:       myuser\n", c.web)), "{text}");
    // The guide's pipeline.
    let env = [("TELEPORT_HOME", tsh.home.path().to_str().unwrap()), ("PATH", &format!("{}:/usr/bin:/bin", e2e::bin_dir().display()))];
    let roles = run(
        std::path::Path::new("/bin/sh"),
        &["-c", "tsh status -f json | jq -r '.active.roles | join(\",\")'"],
        &env,
        None,
        Duration::from_secs(20),
    );
    assert_eq!(roles.ok("status | jq").trim(), "access,editor");
    // tctl works from the profile, pinned to the cluster CA (no --insecure, no SSL_CERT_FILE).
    let mut plain = Tsh::new("unused");
    std::mem::swap(&mut plain.home, &mut tsh.home);
    let users = plain.tctl(&["get", "users", "--format=json"]).json();
    assert_eq!(users[0]["metadata"]["name"], "myuser");
    std::mem::swap(&mut plain.home, &mut tsh.home);
    // Profile files holding keys are private.
    use std::os::unix::fs::PermissionsExt;
    let prof = tsh.home.path().join("profiles").join(&c.ip);
    for f in ["id_ed25519", "tls.key"] {
        assert_eq!(std::fs::metadata(prof.join(f)).unwrap().permissions().mode() & 0o777, 0o600, "{f}");
    }
    // Wrong password and unknown user look the same.
    let mut other = Tsh::new("wrong");
    let wrong = other.login(&c, "myuser", "not-the-password").fails_with("wrong password", "invalid username or password").to_string();
    let unknown = other.login(&c, "nobody", "not-the-password").fails_with("unknown user", "invalid username or password").to_string();
    assert_eq!(wrong, unknown);
    let ev = c.events();
    assert!(ev.iter().any(|e| e["event"] == "user.login" && e["success"] == false), "failed logins are audited");
    // Logout.
    assert!(tsh.run(&["logout"]).ok("logout").contains("Logged out"));
    tsh.run(&["status"]).fails_with("status after logout", "Not logged in");
    assert!(!prof.exists(), "keys removed");
}

#[test]
fn direct_and_tunnel_nodes_join_list_and_run_commands() {
    let (c, tsh) = cluster_with_user("nodes.example.com", false);
    let mut direct = NodeProc::join(&c, "db1", false, "env=stage");
    let _tunnel = NodeProc::join(&c, "db2", true, "env=stage,kind=tunnel");
    let ls = tsh.run(&["ls"]).ok("tsh ls").to_string();
    assert!(ls.starts_with("Node Name Address"), "{ls}");
    assert!(ls.contains(&format!("db1       {}:3022 env=stage", direct.ip)), "{ls}");
    assert!(ls.contains("db2       ⟵ Tunnel"), "{ls}");
    let json = tsh.run(&["ls", "-f", "json"]).json();
    let db2 = json.as_array().unwrap().iter().find(|n| n["spec"]["hostname"] == "db2").expect("db2");
    assert_eq!(db2["spec"]["use_tunnel"], true);
    assert_eq!(db2["kind"], "node");
    assert_eq!(tsh.run(&["ls", "kind=tunnel", "-f", "names"]).ok("ls filter").trim(), "db2");

    for host in ["db1", "db2"] {
        let out = tsh.run(&["ssh", &format!("visitor@{host}"), "pwd; id -un; echo to-stderr >&2; exit 7"]);
        assert_eq!(out.code, 7, "{host}: exit code passed back: {out:?}");
        assert_eq!(out.stdout, "/home/visitor\nvisitor\n", "{host}");
        assert_eq!(out.stderr, "to-stderr\n", "{host}");
    }
    // By UUID too.
    let uuid = db2["metadata"]["name"].as_str().unwrap().to_string();
    assert_eq!(tsh.run(&["ssh", &format!("visitor@{uuid}"), "echo by-uuid"]).ok("ssh by uuid"), "by-uuid\n");
    // Unknown node.
    tsh.run(&["ssh", "visitor@db9", "true"]).cannot_connect("unknown node", "node \"db9\" is not found");
    // Audit.
    let ev = c.events();
    assert!(
        ev.iter()
            .any(|e| e["event"] == "session.start" && e["server_hostname"] == "db1" && e["login"] == "visitor" && e["user"] == "myuser"),
        "session.start recorded"
    );
    assert!(ev.iter().any(|e| e["event"] == "exec" && e["exit_code"] == 7), "exec with exit code recorded");
    // A node that stops heartbeating disappears (its record lives 3 heartbeats).
    direct.kill();
    wait_for("db1 to disappear from tsh ls", Duration::from_secs(15), || (!tsh.run(&["ls"]).stdout.contains("db1")).then_some(()));
    tsh.run(&["ssh", "visitor@db1", "true"]).cannot_connect("ssh to gone node", "not found");
}

#[test]
fn interactive_shell_gets_a_pty() {
    let (c, tsh) = cluster_with_user("pty.example.com", true);
    let node = c.node_name();
    let (screen, code) =
        tsh_with_pty(&tsh, &["ssh", &format!("visitor@{node}")], "echo pty-$((40+2)); tty; echo $TERM; exit 5\r", Duration::from_secs(30));
    assert!(screen.contains("pty-42"), "{screen}");
    assert!(screen.contains("/dev/pts/"), "a real terminal: {screen}");
    assert!(screen.contains("xterm"), "TERM passed: {screen}");
    assert_eq!(code, 5, "{screen}");
}

#[test]
fn denials_are_clear_and_audited() {
    ensure_unix_user("visitor");
    let mut o = ClusterOpts::new("deny.example.com");
    o.labels = vec![("env".into(), "test".into())];
    let c = Cluster::start(o);
    let node = c.node_name();
    // A role allowing only env=prod nodes.
    c.create(
        "prod.yaml",
        "kind: role\nversion: v5\nmetadata: {name: prod-only}\nspec:\n  allow:\n    logins: [visitor]\n    node_labels: {env: prod}\n",
    )
    .ok("role");
    c.add_user("alice", "access", "visitor", PASSWORD);
    c.add_user("bob", "prod-only", "visitor", PASSWORD);
    let mut alice = Tsh::new("alice");
    alice.login(&c, "alice", PASSWORD).ok("alice login");
    let mut bob = Tsh::new("bob");
    bob.login(&c, "bob", PASSWORD).ok("bob login");
    // Login not in the certificate.
    alice
        .run(&["ssh", &format!("root@{node}"), "true"])
        .cannot_connect("login not allowed", &format!("access denied to root connecting to {node}"));
    // Node labels not matching: not listed, not reachable.
    assert!(!bob.run(&["ls"]).stdout.contains(&node), "bob cannot see env=test nodes");
    bob.run(&["ssh", &format!("visitor@{node}"), "true"]).cannot_connect("labels", "access denied to visitor connecting to");
    let ev = c.events();
    let denial = ev.iter().find(|e| e["event"] == "auth" && e["user"] == "bob").expect("denial audited");
    assert!(denial["error"].as_str().unwrap().contains("is not authorized to login as visitor"), "{denial}");
    // Expired certificate.
    let id = c.dir.path().join("alice.identity");
    c.tctl(&["auth", "sign", "--user=alice", &format!("--out={}", id.display()), "--ttl=5s"]).ok("auth sign");
    let with_id = |args: &[&str]| {
        let mut full = vec!["-i", id.to_str().unwrap(), "--proxy", c.web.as_str()];
        full.extend_from_slice(args);
        alice.run(&full)
    };
    assert_eq!(with_id(&["ssh", &format!("visitor@{node}"), "echo fresh"]).ok("fresh identity"), "fresh\n");
    std::thread::sleep(Duration::from_secs(6));
    with_id(&["ssh", &format!("visitor@{node}"), "true"]).cannot_connect("expired", "expired");
    // A certificate from another cluster's CA.
    let other = Cluster::start({
        let mut o = ClusterOpts::new("other.example.com");
        o.node = false;
        o
    });
    other.add_user("alice", "access", "visitor", PASSWORD);
    let mut foreign = Tsh::new("foreign");
    foreign.login(&other, "alice", PASSWORD).ok("login to the other cluster");
    let out = foreign.openssh_direct(&other.ip, "visitor", &c.ip, "true");
    assert_eq!(out.code, 255, "a certificate from another cluster's CA is refused: {out:?}");
    assert!(c.events().iter().any(|e| e["event"] == "auth" && e["error"] == "the certificate signed by untrusted CA"), "audited");
    // The same user's own certificate works with stock OpenSSH (same path, trusted CA).
    assert_eq!(alice.openssh_direct(&c.ip, "visitor", &c.ip, "echo own").ok("own certificate"), "own\n");
    // A plain key without a certificate, with stock OpenSSH, straight to the node.
    let key = c.dir.path().join("plainkey");
    std::fs::copy(alice.home.path().join("profiles").join(&c.ip).join("id_ed25519"), &key).unwrap();
    let out = e2e::openssh(&["-i", key.to_str().unwrap(), "-p", "3022", &format!("visitor@{}", c.ip), "true"]);
    assert_eq!(out.code, 255, "plain keys are refused: {out:?}");
    assert!(out.stderr.contains("Permission denied"), "{}", out.stderr);
}

#[test]
fn a_client_that_goes_away_ends_its_sessions_on_the_node() {
    let (c, tsh) = cluster_with_user("gone.example.com", true);
    let node = c.node_name();
    let running = |marker: &str| {
        // Anchored: the node's process is `sleep ...` itself; tsh's command line only contains it.
        Command::new("pgrep")
            .args(["-f", &format!("^{marker}$")])
            .stdout(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    };
    for (i, tty) in [(0, false), (1, true)] {
        // A distinct command line per case, to find the node's process.
        let marker = format!("sleep 60{i}.25");
        let mut args = vec!["ssh".to_string()];
        if tty {
            args.push("-t".into());
        }
        args.extend([format!("visitor@{node}"), format!("exec {marker}")]);
        let mut client = tsh.command(&args.iter().map(String::as_str).collect::<Vec<_>>()).spawn().expect("tsh");
        wait_for("the remote command runs", Duration::from_secs(20), || running(&marker).then_some(()));
        let _ = client.kill(); // SIGKILL: no goodbye, the connection just drops
        let _ = client.wait();
        wait_for("the node ends the orphaned session", Duration::from_secs(10), || (!running(&marker)).then_some(()));
    }
    assert!(c.log().contains("the client disconnected") || c.log().contains("the client closed the session"), "the reason is logged");
}

#[test]
fn a_reader_that_pauses_does_not_lose_the_session() {
    // A pager the user leaves paused stops reading tsh's output. tsh must go on answering the
    // proxy's keep-alive probes meanwhile (here every second, so 3 unanswered ones would drop
    // the connection after ~4 s), then deliver the rest once the reader is back.
    let mut o = ClusterOpts::new("pause.example.com");
    o.env.push(("TELEPORT_UNSTABLE_SSH_KEEPALIVE".into(), "1".into()));
    let (c, tsh) = cluster_with_user_opts(o);
    let node = c.node_name();
    let line = format!(
        "e=$(mktemp); tsh ssh visitor@{node} 'seq 1 200000' 2>$e | {{ sleep 7; wc -l; }}; echo \"tsh=${{PIPESTATUS[0]}}\"; cat $e; rm -f $e"
    );
    let out = tsh.sh(&line, None);
    assert_eq!(out.stdout.lines().next(), Some("200000"), "every line arrived after the pause: {}", out.stdout);
    assert!(out.stdout.contains("tsh=0"), "tsh finished cleanly: {}", out.stdout);
}

#[test]
fn concurrent_tsh_runs_on_one_profile_leave_it_whole() {
    use std::io::Write as _;
    ensure_unix_user("visitor");
    let mut o = ClusterOpts::new("profile-race.example.com");
    o.node_name = Some("race-node".into());
    let c = Cluster::start(o);
    c.add_user("racer", "access", "visitor", PASSWORD);
    let mut tsh = Tsh::new("profile-race");
    tsh.login(&c, "racer", PASSWORD).ok("first login");
    // Re-logins to the cluster (each reissues certificates and rewrites every file of the
    // profile) and readers, all at once, five rounds.
    for round in 0..5 {
        let mut children = Vec::new();
        for i in 0..16 {
            let args: Vec<String> = if i % 3 != 2 {
                vec!["login".into(), "profile-race.example.com".into()]
            } else {
                vec!["ssh".into(), "visitor@race-node".into(), "echo ok".into()]
            };
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut cmd = tsh.command(&refs);
            cmd.stdin(std::process::Stdio::piped());
            let mut child = cmd.spawn().expect("tsh");
            if let Some(mut stdin) = child.stdin.take() {
                let _ = writeln!(stdin, "{PASSWORD}");
            }
            children.push((i, child));
        }
        for (i, child) in children {
            let out = child.wait_with_output().expect("tsh");
            assert!(
                out.status.success(),
                "round {round}, run {i}: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    // What is left is one consistent profile: its key and certificate belong together.
    assert_eq!(tsh.run(&["ssh", "visitor@race-node", "echo whole"]).ok("after the races"), "whole\n");
    let leftovers: Vec<_> = std::fs::read_dir(tsh.home.path().join("profiles").join(&c.ip))
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.ends_with(".tmp")).collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "no temporary files left: {leftovers:?}");
}
