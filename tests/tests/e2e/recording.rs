//! Session recording (issue 19, items 3 and 4): recorded at the leaf's node, kept by the leaf,
//! played back from the root by an auditor through the leaf's role map.

use std::io::Write;
use std::time::{Duration, Instant};

use e2e::*;

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn find(recs: &serde_json::Value, pred: impl Fn(&serde_json::Value) -> bool) -> &serde_json::Value {
    recs.as_array().and_then(|a| a.iter().find(|r| pred(r))).unwrap_or_else(|| panic!("no such recording in {recs}"))
}

#[test]
fn leaf_sessions_are_recorded_at_the_leaf_and_played_from_the_root() {
    let mut ro = ClusterOpts::new("root-rec.example.com");
    ro.node = false;
    let mut lo = ClusterOpts::new("leaf-rec.example.com");
    lo.insecure = true;
    let p = Pair::start("rec", ro, lo);
    let map = format!("{ACCESS_TO_VISITOR}    - remote: \"auditor\"\n      local: [\"auditor\"]\n");
    p.trust(true, &map).ok("trust");
    p.root.wait_remote_status(p.leaf_name(), "online", Duration::from_secs(30));
    p.tsh.run(&["login", p.root_name()]).ok("refresh");
    let (leaf, node) = (p.leaf_name().to_string(), p.leaf.node_name());
    let on_leaf = format!("--cluster={leaf}");

    // An interactive session and a command, by myuser (root roles access, editor → visitor).
    let (screen, code) = tsh_with_pty(
        &p.tsh,
        &["ssh", &on_leaf, &format!("visitor@{node}")],
        "echo one-$((1+1)); sleep 1; echo two-$((2+1)); exit 3\r",
        Duration::from_secs(30),
    );
    assert!(screen.contains("one-2") && screen.contains("two-3") && code == 3, "{code} {screen}");
    assert_eq!(p.ssh(&node, "echo exec-out").ok("exec"), "exec-out\n");

    // An auditor of the root, mapped to the leaf's auditor, lists and plays them.
    p.root.add_user("audrey", "auditor", "", PASSWORD);
    let mut aud = Tsh::new("rec-auditor");
    aud.login(&p.root, "audrey", PASSWORD).ok("auditor login");
    let recs = wait_for("both recordings ended", Duration::from_secs(20), || {
        let r = aud.run(&["recordings", "ls", &on_leaf, "-f", "json"]).json();
        let ended = r.as_array().is_some_and(|a| a.len() == 2 && a.iter().all(|x| x["ended"].is_string()));
        ended.then_some(r)
    });
    let shell = find(&recs, |r| r["interactive"] == true).clone();
    let exec = find(&recs, |r| r["interactive"] == false);
    for (k, v) in [
        ("user", "myuser"),
        ("login", "visitor"),
        ("origin_cluster", "root-rec.example.com"),
        ("cluster", leaf.as_str()),
        ("server_hostname", node.as_str()),
    ] {
        assert_eq!(shell[k], v, "{k} in {shell}");
    }
    assert_eq!(shell["remote_roles"], serde_json::json!(["access", "editor"]), "{shell}");
    assert_eq!(shell["roles"], serde_json::json!(["visitor"]), "{shell}");
    assert_eq!(shell["exit_code"], 3, "{shell}");
    assert_eq!((exec["command"].as_str(), exec["exit_code"].as_i64()), (Some("echo exec-out"), Some(0)), "{exec}");
    let sid = shell["sid"].as_str().unwrap().to_string();
    let text = aud.run(&["recordings", "ls", &on_leaf]).ok("recordings ls").to_string();
    assert!(text.starts_with("ID") && text.contains(&sid) && text.contains("myuser@root-rec.example.com"), "{text}");

    // The output matches what was typed, and the pause between the two lines is kept.
    let frames = aud.run(&["play", &on_leaf, "--format=json", &sid]).json();
    let at = |needle: &str| {
        frames
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["event"] == "print" && f["data"].as_str().is_some_and(|d| d.contains(needle)))
            .map(|f| f["ms"].as_u64().unwrap())
    };
    let (one, two) = (at("one-2").expect("one-2 printed"), at("two-3").expect("two-3 printed"));
    assert!((800..=2500).contains(&(two - one)), "one at {one} ms, two at {two} ms: the 1 s sleep is kept");
    assert!(frames.as_array().unwrap().iter().any(|f| f["event"] == "resize" && f["data"] == "120x40"), "the terminal size is recorded");
    let text = aud.run(&["play", &on_leaf, "--format=text", &sid]).ok("play text").to_string();
    assert!(text.contains("one-2") && text.contains("two-3"), "{text}");
    let t0 = Instant::now();
    let pty = aud.run(&["play", &on_leaf, &sid]).ok("play with timing").to_string();
    assert!(pty.contains("two-3") && t0.elapsed() >= Duration::from_millis(800), "played in {:?}", t0.elapsed());
    assert!(aud.run(&["play", &on_leaf, "--format=text", exec["sid"].as_str().unwrap()]).ok("play exec").contains("exec-out"));

    // myuser is mapped to visitor, which has no session rule: refused, on the list and on play.
    p.tsh.run(&["recordings", "ls", &on_leaf]).fails_with("visitor lists", "may not list recorded sessions");
    p.tsh.run(&["play", &on_leaf, &sid]).fails_with("visitor plays", "is not recorded in cluster");
    // The leaf's admin sees every recording; the root keeps none of the leaf's.
    let all = p.leaf.tctl(&["recordings", "ls", "-f", "json"]).json();
    assert_eq!(all.as_array().map(Vec::len), Some(2), "{all}");
    assert_eq!(p.root.tctl(&["recordings", "ls", "-f", "json"]).json(), serde_json::json!([]), "a leaf keeps its own recordings");

    // kill -9 of the node mid-session: what it had sent is kept and plays.
    let mut doomed = NodeProc::join(&p.leaf, "doomed", false, "");
    let mut ticking = p.tsh.command(&["ssh", &on_leaf, "visitor@doomed", "for i in $(seq 1 200); do echo tick-$i; sleep 0.05; done"]);
    let mut ticking = ticking.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().expect("tsh");
    std::thread::sleep(Duration::from_millis(2500));
    doomed.kill();
    let _ = ticking.kill();
    let _ = ticking.wait();
    let recs = aud.run(&["recordings", "ls", &on_leaf, "-f", "json"]).json();
    let cut = find(&recs, |r| r["server_hostname"] == "doomed");
    assert!(cut["ended"].is_null(), "the node died before the end: {cut}");
    let text = aud.run(&["play", &on_leaf, "--format=text", cut["sid"].as_str().unwrap()]).ok("play a cut session").to_string();
    assert!(text.contains("tick-1\r\n") || text.contains("tick-1\n"), "{text}");
    assert!(text.contains("tick-10"), "all but the last second is kept: {text}");

    // 50 MiB of output: recorded whole, with the node's memory bounded (nothing held whole).
    let big = NodeProc::join(&p.leaf, "big", false, "");
    let pid = big.pid().expect("pid");
    let before = peak_rss_kib(pid);
    let out = p.tsh.run(&["ssh", &on_leaf, "visitor@big", "head -c 52428800 /dev/zero | tr '\\0' x"]);
    assert_eq!(out.ok("50 MiB").len(), 52_428_800);
    let after = peak_rss_kib(pid);
    let recs = wait_for("the big recording ended", Duration::from_secs(30), || {
        let r = aud.run(&["recordings", "ls", &on_leaf, "-f", "json"]).json();
        r.as_array().and_then(|a| a.iter().find(|x| x["server_hostname"] == "big" && x["ended"].is_string()).cloned())
    });
    assert_eq!(recs["bytes"], 52_428_800, "{recs}");
    assert!(after.saturating_sub(before) < 40 * 1024, "node peak RSS {before} KiB before, {after} KiB after 50 MiB");
    let _ = writeln!(std::io::stderr(), "50 MiB session: node peak RSS {before} KiB -> {after} KiB; {} chunks", recs["chunks"]);

    // A session past the size limit says so in the recording, and the session itself goes on.
    let _capped = NodeProc::join_configured(&p.leaf, "capped", "  session_recording_max_bytes: 1048576\n");
    let out = p.tsh.run(&["ssh", &on_leaf, "visitor@capped", "head -c 3145728 /dev/zero | tr '\\0' y; echo; echo done"]);
    assert!(out.ok("3 MiB").ends_with("done\n"));
    let capped = wait_for("the capped recording ended", Duration::from_secs(30), || {
        let r = aud.run(&["recordings", "ls", &on_leaf, "-f", "json"]).json();
        r.as_array().and_then(|a| a.iter().find(|x| x["server_hostname"] == "capped" && x["ended"].is_string()).cloned())
    });
    assert_eq!((capped["bytes"].as_u64(), capped["truncated"].as_bool()), (Some(1_048_576), Some(true)), "{capped}");
    let text = aud.run(&["play", &on_leaf, "--format=text", capped["sid"].as_str().unwrap()]).ok("play capped").to_string();
    assert!(
        text.contains("[recording stopped: the session's output reached the limit of 1048576 bytes]"),
        "{}",
        &text[text.len().saturating_sub(200)..]
    );
}
