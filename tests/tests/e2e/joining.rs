//! Watching and joining sessions (`tsh sessions ls`, `tsh join`) in the root and, for a root's
//! users, on a leaf's tunnel node: the leaf's mapped roles decide (`join_sessions`), an
//! observer's keys never reach the shell, every party sees the same output, and joins and
//! leaves are audited on the leaf and kept in the recording.

use std::time::Duration;

use e2e::{LeafWithTwoUsers, PtyTsh, leaf_with_two_users, wait_for};

const T: Duration = Duration::from_secs(20);

/// `alice` maps to `visitor` (no join_sessions); `bob` maps to `watcher`, which may watch
/// sessions of `visitor`s, never type into them.
pub(crate) fn world(tag: &str) -> LeafWithTwoUsers {
    leaf_with_two_users(
        tag,
        "kind: role\nversion: v5\nmetadata: {name: visitor}\nspec:\n  allow:\n    logins: [visitor]\n    node_labels: {'*': '*'}\n    rules:\n    - resources: [session]\n      verbs: [list, read]\n---\nkind: role\nversion: v5\nmetadata: {name: watcher}\nspec:\n  allow:\n    logins: [visitor]\n    node_labels: {'*': '*'}\n    join_sessions:\n    - name: watch visitors\n      roles: ['visit*']\n      kinds: [ssh]\n      modes: [observer]\n",
        "watcher",
        "restricted",
        &format!("join-{tag}"),
    )
}

fn sessions(tsh: &e2e::Tsh, cluster: &str) -> Vec<serde_json::Value> {
    let out = tsh.run(&["sessions", "ls", "--cluster", cluster, "-f", "json"]);
    out.ok("tsh sessions ls");
    out.json().as_array().cloned().unwrap_or_default()
}

#[test]
fn a_root_user_watches_and_joins_a_session_on_a_leaf_node_as_the_leaf_allows() {
    let w = world("watch");
    let leaf = w.leaf.opts.name.clone();
    let node = "join-watch";
    // alice's shell on the leaf's tunnel node.
    let mut shell = PtyTsh::start(&w.alice, &["ssh", "--cluster", &leaf, &format!("visitor@{node}")]);
    shell.type_keys("echo READY-$((1+1))\r");
    shell.wait_for("READY-2", T);

    // She sees her session; bob, whose watcher role may watch visitors, sees it too.
    let mine = wait_for("alice's session in the leaf's list", T, || sessions(&w.alice, &leaf).into_iter().next());
    let sid = mine["metadata"]["name"].as_str().unwrap().to_string();
    assert_eq!(mine["kind"], "session_tracker");
    assert_eq!(mine["spec"]["target_hostname"], node);
    assert_eq!(mine["spec"]["login"], "visitor");
    assert_eq!(mine["spec"]["cluster_name"], leaf.as_str());
    assert_eq!(mine["spec"]["participants"][0]["user"], "alice");
    assert_eq!(mine["spec"]["host_roles"][0]["name"], "visitor", "the owner's roles on the leaf, mapped");
    let text = w.bob.run(&["sessions", "ls", "--cluster", &leaf]);
    let table = text.ok("bob lists");
    assert!(table.contains(&sid) && table.contains("Participants") && table.contains(node), "{table}");

    // bob watches.
    let mut watch = PtyTsh::start(&w.bob, &["join", "--cluster", &leaf, &sid]);
    watch.wait_for("Joining session with participant mode: observer", T);
    shell.wait_for("User bob joined the session as observer.", T);
    let listed = wait_for("bob among the parties", T, || {
        let s = sessions(&w.alice, &leaf);
        let parties = s.first()?["spec"]["participants"].as_array()?.clone();
        parties.iter().any(|p| p["user"] == "bob" && p["mode"] == "observer").then_some(parties)
    });
    assert_eq!(listed.len(), 2, "{listed:?}");

    // Every party sees the same output.
    shell.type_keys("echo SHARED-$((2+3))\r");
    shell.wait_for("SHARED-5", T);
    watch.wait_for("SHARED-5", T);

    // An observer's keys are never written.
    let marker = format!("/tmp/observer-typed-{}", std::process::id());
    watch.type_keys(&format!("touch {marker}; echo OBSERVER-$((4+4))\r"));
    shell.type_keys("echo SYNC-$((5+5))\r");
    watch.wait_for("SYNC-10", T);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!shell.text().contains("OBSERVER-8") && !watch.text().contains("OBSERVER-8"), "the observer's command ran");
    assert!(!std::path::Path::new(&marker).exists(), "the observer's keystrokes reached the shell");

    // bob may not type: his roles give observer only.
    let peer = w.bob.run(&["join", "--cluster", &leaf, "--mode", "peer", &sid]);
    assert_eq!(peer.code, 1, "{peer:?}");
    assert!(peer.stderr.contains("insufficient permissions to join session") && peer.stderr.contains("allow only observer"), "{peer:?}");

    // The owner may join her own session as a peer from another terminal, and type.
    let mut second = PtyTsh::start(&w.alice, &["join", "--cluster", &leaf, "--mode", "peer", &sid]);
    second.wait_for("participant mode: peer", T);
    second.type_keys("echo PEER-$((3+4))\r");
    shell.wait_for("PEER-7", T);
    watch.wait_for("PEER-7", T);

    // Ctrl-C: the observer leaves, and everyone is told.
    watch.type_keys("\x03");
    assert_eq!(watch.wait_exit(T), 0, "{}", watch.text());
    shell.wait_for("User bob left the session.", T);

    // The session ends for everyone with its exit status; the tracker goes.
    shell.type_keys("exit 3\r");
    assert_eq!(shell.wait_exit(T), 3, "{}", shell.text());
    assert_eq!(second.wait_exit(T), 3, "a party gets the session's exit status: {}", second.text());
    wait_for("the ended session to leave the list", T, || sessions(&w.alice, &leaf).is_empty().then_some(()));

    // Audited on the leaf, with the mapped roles; refused joins too.
    let events = wait_for("join and leave events on the leaf", T, || {
        let ev = w.leaf.events();
        let leave = ev.iter().any(|e| e["code"] == "T2003I" && e["user"] == "bob" && e["sid"] == sid.as_str());
        leave.then_some(ev)
    });
    let join = events.iter().find(|e| e["code"] == "T2001I" && e["user"] == "bob" && e["success"].is_null()).expect("bob's join");
    assert_eq!(join["event"], "session.join");
    assert_eq!(join["sid"], sid.as_str());
    assert_eq!(join["login"], "visitor");
    assert_eq!(join["participant_mode"], "observer");
    assert_eq!(join["roles"], serde_json::json!(["watcher"]));
    assert!(events.iter().any(|e| e["code"] == "T2001I" && e["user"] == "bob" && e["success"] == false), "the refused peer join");
    assert!(w.root.events().iter().all(|e| e["code"] != "T2001I"), "the leaf's node audits to the leaf");

    // The recording keeps who joined and left, where it happened.
    let play = w.alice.run(&["play", "--cluster", &leaf, "--format", "text", &sid]);
    let played = play.ok("tsh play");
    assert!(played.contains("User bob joined the session as observer.") && played.contains("User bob left the session."), "{played}");
}

#[test]
fn joining_is_denied_by_default_and_works_in_the_root() {
    let w = world("deny");
    let leaf = w.leaf.opts.name.clone();
    // bob's session on the leaf: alice's visitor role names no join_sessions.
    let mut bobs = PtyTsh::start(&w.bob, &["ssh", "--cluster", &leaf, "visitor@join-deny"]);
    bobs.type_keys("echo BOB-$((6+1))\r");
    bobs.wait_for("BOB-7", T);
    let sid = wait_for("bob's session", T, || sessions(&w.bob, &leaf).first()?["metadata"]["name"].as_str().map(str::to_string));
    assert!(sessions(&w.alice, &leaf).is_empty(), "alice may not see bob's session");
    let out = w.alice.run(&["join", "--cluster", &leaf, &sid]);
    out.fails_with("alice joins bob", "is not running in cluster");
    let bad = w.alice.run(&["join", "not-a-session"]);
    bad.fails_with("a malformed ID", "is not a valid session ID (must be GUID)");
    bobs.type_keys("exit\r");
    assert_eq!(bobs.wait_exit(T), 0);

    // In the root (its in-process node): alice watches her own session.
    let root_node = w.root.node_name();
    let mut shell = PtyTsh::start(&w.alice, &["ssh", &format!("visitor@{root_node}")]);
    shell.type_keys("echo ROOT-$((8+1))\r");
    shell.wait_for("ROOT-9", T);
    let root = w.root.opts.name.clone();
    let sid = wait_for("alice's root session", T, || sessions(&w.alice, &root).first()?["metadata"]["name"].as_str().map(str::to_string));
    let mut watch = PtyTsh::start(&w.alice, &["join", &sid]);
    watch.wait_for("participant mode: observer", T);
    shell.type_keys("echo ROOT-$((9+1))\r");
    watch.wait_for("ROOT-10", T);
    shell.type_keys("exit\r");
    assert_eq!(shell.wait_exit(T), 0);
    assert_eq!(watch.wait_exit(T), 0);
}
