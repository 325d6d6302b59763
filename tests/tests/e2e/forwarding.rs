//! Issue 31, items 2 and 5: port forwarding across the trust. A root user forwards through a
//! tunnel node of a leaf with `tsh ssh -L/-R/-D/-N` and stock `ssh -L/-R/-D/-W` (through
//! `tsh config`); the node dials and listens, the leaf's mapped roles decide, and a refusal says
//! which option refused it. `tsh ssh` exits 255 when it cannot connect.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Duration;

use e2e::{LeafWithTwoUsers, TempDir, leaf_with_two_users, run, wait_for};

/// `alice`'s leaf role forwards agents; `bob`'s only mapped leaf role says `port_forwarding: false`.
fn world(tag: &str) -> LeafWithTwoUsers {
    leaf_with_two_users(
        tag,
        "kind: role\nversion: v5\nmetadata: {name: visitor}\nspec:\n  options:\n    forward_agent: true\n  allow:\n    logins: [visitor]\n    node_labels: {'*': '*'}\n---\nkind: role\nversion: v5\nmetadata: {name: no-forward}\nspec:\n  options:\n    port_forwarding: false\n  allow:\n    logins: [visitor]\n    node_labels: {'*': '*'}\n",
        "no-forward",
        "restricted",
        &format!("fwd-{tag}"),
    )
}

/// A TCP server that answers each line with `echo:<line>`; its port.
fn echo_server() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut w = c.try_clone().unwrap();
                for line in BufReader::new(c).lines().map_while(Result::ok) {
                    if writeln!(w, "echo:{line}").is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

/// Sends a line to `port` and reads the answer (retrying while the forward comes up).
fn ask(port: u16, line: &str) -> String {
    wait_for(&format!("an answer through port {port}"), Duration::from_secs(20), || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        writeln!(s, "{line}").ok()?;
        let mut got = String::new();
        BufReader::new(s).read_line(&mut got).ok()?;
        (!got.is_empty()).then(|| got.trim().to_string())
    })
}

/// A SOCKS5 CONNECT to 127.0.0.1:`target` through the proxy at `port`, then one line.
fn ask_socks(port: u16, target: u16, line: &str) -> String {
    wait_for("an answer through SOCKS", Duration::from_secs(20), || {
        let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(&[5, 1, 0]).ok()?;
        let mut hello = [0u8; 2];
        s.read_exact(&mut hello).ok()?;
        assert_eq!(hello, [5, 0], "no authentication");
        let mut req = vec![5, 1, 0, 1, 127, 0, 0, 1];
        req.extend_from_slice(&target.to_be_bytes());
        s.write_all(&req).ok()?;
        let mut reply = [0u8; 10];
        s.read_exact(&mut reply).ok()?;
        assert_eq!(reply[1], 0, "SOCKS success");
        writeln!(s, "{line}").ok()?;
        let mut got = String::new();
        BufReader::new(s).read_line(&mut got).ok()?;
        (!got.is_empty()).then(|| got.trim().to_string())
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Bg(Child);

impl Drop for Bg {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads the child's stderr until a line contains `needle`; returns that line.
fn stderr_line(child: &mut Child, needle: &str) -> String {
    let err = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    while let Ok(line) = rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
        if line.contains(needle) {
            return line;
        }
        seen.push(line);
    }
    panic!("no line with {needle:?} on stderr: {seen:?}");
}

#[test]
fn tsh_ssh_forwards_local_remote_and_socks_through_a_leaf_node_and_roles_can_refuse() {
    let w = world("tshf");
    let echo = echo_server();
    let cl = format!("--cluster={}", w.leaf.opts.name);
    let dest = format!("visitor@{}", w.node.name);
    let (lport, dport) = (free_port(), free_port());
    let l = format!("{lport}:127.0.0.1:{echo}");
    let d = format!("{dport}");
    let r = format!("0:127.0.0.1:{echo}");
    let mut fwd = Bg(w.alice.command(&["ssh", &cl, "-N", "-L", &l, "-D", &d, "-R", &r, &dest]).spawn().unwrap());
    let allocated = stderr_line(&mut fwd.0, "Allocated port");
    assert_eq!(ask(lport, "local"), "echo:local", "-L");
    assert_eq!(ask_socks(dport, echo, "socks"), "echo:socks", "-D");
    let rport: u16 = allocated.split_whitespace().nth(2).and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("{allocated}"));
    assert_eq!(ask(rport, "remote"), "echo:remote", "-R: the node listens, tsh dials");
    // The node dialled and listened: the leaf's log has it, with the mapped roles.
    let ev = wait_for("port events on the leaf", Duration::from_secs(20), || {
        let ev = w.leaf.events();
        (ev.iter().any(|e| e["event"] == "port.local" && e["code"] == "T3003I")
            && ev.iter().any(|e| e["event"] == "port.remote" && e["code"] == "T3003I")
            && ev.iter().any(|e| e["event"] == "port.remote_conn"))
        .then_some(ev)
    });
    let local = ev.iter().find(|e| e["event"] == "port.local").unwrap();
    assert_eq!(local["addr"], format!("127.0.0.1:{echo}"));
    assert_eq!(local["roles"], serde_json::json!(["visitor"]));
    drop(fwd);

    // A forward with a command: the command runs while the forward works.
    let lport2 = free_port();
    let l2 = format!("{lport2}:127.0.0.1:{echo}");
    let mut with_cmd =
        Bg(w.alice.command(&["ssh", &cl, "-L", &l2, &dest, "echo started; sleep 20"]).stdout(Stdio::piped()).spawn().unwrap());
    let mut first = String::new();
    BufReader::new(with_cmd.0.stdout.take().unwrap()).read_line(&mut first).unwrap();
    assert_eq!(first, "started\n");
    assert_eq!(ask(lport2, "beside a command"), "echo:beside a command");
    drop(with_cmd);

    // -f: back once connected with the forward up; the forward lives on in the background.
    let lport4 = free_port();
    let l4 = format!("{lport4}:127.0.0.1:{echo}");
    // (The background tsh keeps the terminal's stderr, as ssh -f does: here, no pipe to wait on.)
    let st = w.alice.command(&["ssh", &cl, "-f", "-N", "-L", &l4, &dest]).stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap();
    assert!(st.success(), "tsh ssh -f -N: {st:?}");
    assert_eq!(ask(lport4, "from the background"), "echo:from the background");
    let bg = run(Path::new("pkill"), &["-f", "--", &format!("-L {l4}")], &[], None, Duration::from_secs(10));
    assert_eq!(bg.code, 0, "the background tsh was running: {bg:?}");

    // A port already in use fails the command (ExitOnForwardFailure), with 255.
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = format!("{}:127.0.0.1:{echo}", busy.local_addr().unwrap().port());
    let out = w.alice.run(&["ssh", &cl, "-L", &taken, &dest, "true"]);
    out.cannot_connect("a local port in use", "cannot listen on 127.0.0.1");

    // Bob's mapped leaf role refuses, and the refusal names the option.
    let out = w.bob.run(&["ssh", &cl, "-N", "-R", &r, &dest]);
    out.cannot_connect("-R refused by the role", "port_forwarding");
    assert!(out.stderr.contains("role \"no-forward\" sets options.port_forwarding to false"), "{out:?}");
    let lport3 = free_port();
    let l3 = format!("{lport3}:127.0.0.1:{echo}");
    let mut refused = Bg(w.bob.command(&["ssh", &cl, "-N", "-L", &l3, &dest]).spawn().unwrap());
    let said = std::thread::scope(|s| {
        let h = s.spawn(|| stderr_line(&mut refused.0, "port forwarding (-L, -D) refused"));
        // The connection is refused once a client comes.
        let _ = wait_for("the local listener", Duration::from_secs(20), || TcpStream::connect(("127.0.0.1", lport3)).ok());
        h.join().unwrap()
    });
    assert!(said.contains("no-forward"), "{said}");
    drop(refused);
    wait_for("the refusal in the leaf's log", Duration::from_secs(20), || {
        w.leaf.events().iter().any(|e| e["event"] == "port" && e["code"] == "T3003E" && e["user"] == "bob").then_some(())
    });
    // Could not connect at all: 255, whatever the command would have returned.
    let out = w.alice.run(&["ssh", &cl, "visitor@no-such-node", "exit 3"]);
    out.cannot_connect("unknown node", "not found");
    let out = w.alice.run(&["ssh", &cl, &dest, "exit 3"]);
    assert_eq!(out.code, 3, "the remote status otherwise: {out:?}");
}

#[test]
fn stock_ssh_forwards_through_tsh_config_to_a_leaf_node() {
    let w = world("osshf");
    let echo = echo_server();
    let cfg = w.alice.home.path().join("ssh_config");
    std::fs::write(&cfg, w.alice.run(&["config"]).ok("tsh config")).unwrap();
    let bob_cfg = w.bob.home.path().join("ssh_config");
    std::fs::write(&bob_cfg, w.bob.run(&["config"]).ok("tsh config")).unwrap();
    let host = format!("visitor@{}.{}", w.node.name, w.leaf.opts.name);
    let ssh = |cfg: &Path, args: &[&str], stdin: Option<&str>| {
        let mut all = vec!["-F", cfg.to_str().unwrap(), "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes"];
        all.extend_from_slice(args);
        run(Path::new("ssh"), &all, &[], stdin, Duration::from_secs(60))
    };
    // ssh -J through the root's proxy to the leaf's node, by the name tsh config gives it; a
    // refusal comes back as the reason, not "connect failed". The proxy is addressed by IP and
    // port, and OpenSSH checks its host certificate too (BatchMode: no prompt to accept it).
    let jump = format!("visitor@{}", w.root.web);
    let out = ssh(&cfg, &["-J", &jump, &host, "echo via-jump"], None);
    assert_eq!(out.stdout, "via-jump\n", "{out:?}");
    let out = ssh(&cfg, &["-J", &jump, &format!("visitor@no-such-node.{}", w.leaf.opts.name), "true"], None);
    assert_eq!(out.code, 255, "{out:?}");
    assert!(out.stderr.contains("no-such-node") && out.stderr.contains("not found"), "the reason: {out:?}");
    // -W: stdio forwarded from the node.
    let target = format!("127.0.0.1:{echo}");
    let out = ssh(&cfg, &["-W", &target, &host], Some("through-w\n"));
    assert_eq!(out.stdout, "echo:through-w\n", "{out:?}");
    // -L, -D and -R together.
    let (lport, dport) = (free_port(), free_port());
    let l = format!("{lport}:127.0.0.1:{echo}");
    let d = format!("{dport}");
    let r = format!("0:127.0.0.1:{echo}");
    let mut bg = Bg(std::process::Command::new("ssh")
        .args([
            "-F",
            cfg.to_str().unwrap(),
            "-o",
            "BatchMode=yes",
            "-o",
            "ExitOnForwardFailure=yes",
            "-N",
            "-L",
            &l,
            "-D",
            &d,
            "-R",
            &r,
            &host,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap());
    let allocated = stderr_line(&mut bg.0, "Allocated port");
    assert_eq!(ask(lport, "ossh-local"), "echo:ossh-local");
    assert_eq!(ask_socks(dport, echo, "ossh-socks"), "echo:ossh-socks");
    let rport: u16 = allocated.split_whitespace().nth(2).and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("{allocated}"));
    assert_eq!(ask(rport, "ossh-remote"), "echo:ossh-remote");
    drop(bg);
    // Refused for bob: -W fails as OpenSSH shows a prohibited open, -R with the reason.
    let out = ssh(&bob_cfg, &["-W", &target, &host], Some("x\n"));
    assert_eq!(out.code, 255, "{out:?}");
    assert!(out.stderr.contains("administratively prohibited"), "{out:?}");
    let out = ssh(&bob_cfg, &["-R", &r, &host, "true"], None);
    assert_eq!(out.code, 255, "{out:?}");
    assert!(out.stderr.contains("remote port forwarding failed"), "{out:?}");
}

#[test]
fn the_agent_is_forwarded_as_the_login_and_only_where_a_mapped_role_allows_it() {
    let mut w = world("agent");
    let dir = TempDir::new("agent");
    let sock = dir.path().join("agent.sock");
    let _agent = Bg(std::process::Command::new("ssh-agent").arg("-D").arg("-a").arg(&sock).stdout(Stdio::null()).spawn().unwrap());
    wait_for("ssh-agent's socket", Duration::from_secs(10), || sock.exists().then_some(()));
    let key = dir.path().join("key");
    run(
        Path::new("ssh-keygen"),
        &["-q", "-t", "ed25519", "-N", "", "-C", "forwarded-key", "-f", key.to_str().unwrap()],
        &[],
        None,
        Duration::from_secs(10),
    )
    .ok("ssh-keygen");
    let env = [("SSH_AUTH_SOCK", sock.to_str().unwrap())];
    run(Path::new("ssh-add"), &[key.to_str().unwrap()], &env, None, Duration::from_secs(10)).ok("ssh-add");
    for t in [&mut w.alice, &mut w.bob] {
        t.env.push(("SSH_AUTH_SOCK".into(), sock.display().to_string()));
    }
    let cl = format!("--cluster={}", w.leaf.opts.name);
    let dest = format!("visitor@{}", w.node.name);
    let probe = "ssh-add -l; echo \"sock=$SSH_AUTH_SOCK\"; [ -n \"$SSH_AUTH_SOCK\" ] && stat -c '%U %a' \"$SSH_AUTH_SOCK\" \"$(dirname \"$SSH_AUTH_SOCK\")\"; true";
    let out = w.alice.run(&["ssh", &cl, "-A", &dest, probe]);
    let text = out.ok("tsh ssh -A").to_string();
    assert!(text.contains("forwarded-key"), "the key of the agent here is listed there: {text}");
    assert!(text.contains("visitor 600\nvisitor 700\n"), "a socket of the login's, 0600 in a 0700 directory: {text}");
    let path = text.lines().find_map(|l| l.strip_prefix("sock=")).unwrap().to_string();
    wait_for("the socket to go with the connection", Duration::from_secs(10), || (!Path::new(&path).exists()).then_some(()));
    // Without -A nothing is forwarded.
    let out = w.alice.run(&["ssh", &cl, &dest, probe]);
    assert!(out.stdout.contains("sock=\n") && !out.stdout.contains("forwarded-key"), "{out:?}");
    // Stock ssh -A through tsh config.
    let cfg = w.alice.home.path().join("ssh_config");
    std::fs::write(&cfg, w.alice.run(&["config"]).ok("tsh config")).unwrap();
    let host = format!("visitor@{}.{}", w.node.name, w.leaf.opts.name);
    let out = run(
        Path::new("ssh"),
        &["-F", cfg.to_str().unwrap(), "-o", "BatchMode=yes", "-A", &host, "ssh-add -l"],
        &env,
        None,
        Duration::from_secs(60),
    );
    assert!(out.ok("ssh -A").contains("forwarded-key"), "{out:?}");
    // Bob's mapped role has no forward_agent: the session runs, without an agent, and says why.
    let out = w.bob.run(&["ssh", &cl, "-A", &dest, probe]);
    assert!(out.stdout.contains("sock=\n") && !out.stdout.contains("forwarded-key"), "{out:?}");
    assert!(out.stderr.contains("agent forwarding refused") && out.stderr.contains("forward_agent"), "{out:?}");
    // Escapes on a terminal, as ssh has them: ~? lists them, ~. hangs up with 255.
    // tsh reads and writes the terminal non-blocking while the session runs, and leaves it as
    // it found it.
    let mut p = e2e::PtyTsh::start(&w.alice, &["ssh", &cl, &dest]);
    p.wait_for("$", Duration::from_secs(30));
    assert!(!p.terminal_blocking(), "tsh drives the terminal without blocking reads");
    p.type_keys("~?\r~.");
    let code = p.wait_exit(Duration::from_secs(30));
    assert!(p.terminal_blocking(), "tsh left the terminal non-blocking");
    let (shown, _) = p.finish(Duration::from_secs(5));
    assert!(shown.contains("Supported escape sequences") && shown.contains("Disconnected"), "{shown}");
    assert_eq!(code, 255, "{shown}");
}
