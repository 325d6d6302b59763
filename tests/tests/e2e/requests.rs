//! Access requests across the trust: alice (`access`, mapped to the leaf's read-only `visitor`)
//! asks the root for `prod-access`; bob reviews; her new certificate carries the role, which the
//! leaf maps through its role map to `prod-admin`; dropping the request takes it away again.

use std::time::Duration;

use e2e::{Cluster, ClusterOpts, PASSWORD, Tsh, wait_for};

const T: Duration = Duration::from_secs(30);

/// A root with `alice` (access, may request prod-access for at most 2h) and `bob` (may review
/// requests for prod-*), and a leaf whose node is `env=prod`, mapping `access` to `visitor` (no
/// prod nodes) and `prod-access` to `prod-admin` (root on them).
fn world(tag: &str) -> (Cluster, Cluster, Tsh, Tsh) {
    world_with(tag, "")
}

/// [`world`] with `sections` in the leaf's configuration, `prod-admin` reaching its `env=dev`
/// databases as `alice` to `dev` as well.
fn world_with(tag: &str, sections: &str) -> (Cluster, Cluster, Tsh, Tsh) {
    e2e::ensure_unix_user("visitor");
    let mut ro = ClusterOpts::new(&format!("root-{tag}.example.com"));
    ro.node = false;
    let root = Cluster::start(ro);
    root.create(
        "roles.yaml",
        "kind: role\nversion: v7\nmetadata: {name: prod-access}\nspec:\n  allow:\n    logins: [root]\n---\nkind: role\nversion: v7\nmetadata: {name: requester}\nspec:\n  allow:\n    request:\n      roles: ['prod-*']\n      max_duration: 2h\n      suggested_reviewers: [bob]\n---\nkind: role\nversion: v7\nmetadata: {name: reviewer}\nspec:\n  allow:\n    review_requests:\n      roles: ['prod-*']\n",
    )
    .ok("root roles");
    root.add_user("alice", "access,requester", "visitor", PASSWORD);
    root.add_user("bob", "access,reviewer", "visitor", PASSWORD);
    let mut lo = ClusterOpts::new(&format!("leaf-{tag}.example.com"));
    lo.labels = vec![("env".into(), "prod".into())];
    lo.env = vec![("SSL_CERT_FILE".into(), root.web_ca().display().to_string())];
    lo.sections = sections.to_string();
    let leaf = Cluster::start(lo);
    leaf.create(
        "roles.yaml",
        "kind: role\nversion: v7\nmetadata: {name: visitor}\nspec:\n  allow:\n    logins: [visitor]\n    node_labels: {env: test}\n---\nkind: role\nversion: v7\nmetadata: {name: prod-admin}\nspec:\n  allow:\n    logins: [root]\n    node_labels: {env: prod}\n    db_labels: {env: dev}\n    db_users: [alice]\n    db_names: [dev]\n",
    )
    .ok("leaf roles");
    let token = root.trusted_cluster_token("5m");
    let map = format!("{}    - remote: \"prod-access\"\n      local: [\"prod-admin\"]\n", e2e::ACCESS_TO_VISITOR);
    leaf.create("tc.yaml", &e2e::tc_yaml(&root.opts.name, &token, &root, true, &map)).ok("trust");
    root.wait_remote_status(&leaf.opts.name, "online", T);
    let mut alice = Tsh::new(&format!("alice-{tag}"));
    alice.login(&root, "alice", PASSWORD).ok("alice signs in");
    let mut bob = Tsh::new(&format!("bob-{tag}"));
    bob.login(&root, "bob", PASSWORD).ok("bob signs in");
    (root, leaf, alice, bob)
}

#[test]
fn an_approved_request_gives_a_root_user_the_role_the_leaf_maps_it_to_until_she_drops_it() {
    let (root, leaf, alice, bob) = world("req");
    let cluster = format!("--cluster={}", leaf.opts.name);
    let node = format!("root@{}", leaf.node_name());
    let ssh = |t: &Tsh| t.run(&["ssh", &cluster, &node, "id", "-un"]);
    wait_for("the leaf's node", T, || leaf.tctl(&["get", "nodes", "--format=text"]).stdout.contains(&leaf.node_name()).then_some(()));
    // The request fields round-trip through tctl.
    let role = root.tctl(&["get", "role/requester"]);
    let yaml = role.ok("tctl get role/requester");
    assert!(yaml.contains("max_duration: 2h") && yaml.contains("suggested_reviewers") && yaml.contains("prod-*"), "{yaml}");
    let bad = root.create(
        "bad.yaml",
        "kind: role\nversion: v7\nmetadata: {name: bad}\nspec:\n  allow:\n    request:\n      roles: ['x']\n      max_duration: 200h\n",
    );
    assert!(bad.code == 1 && bad.stderr.contains("at most 7 days"), "{bad:?}");
    let before = ssh(&alice);
    assert!(before.code != 0, "visitor may not log in as root on a prod node: {before:?}");

    // What is refused, one line each.
    let unknown = alice.run(&["request", "create", "--roles=nosuch", "--nowait"]);
    assert!(
        unknown.code == 1 && unknown.stderr.contains("role \"nosuch\" is not found") && unknown.stderr.lines().count() == 1,
        "{unknown:?}"
    );
    let not_allowed = alice.run(&["request", "create", "--roles=reviewer", "--nowait"]);
    assert!(not_allowed.code == 1 && not_allowed.stderr.contains("can not request role \"reviewer\""), "{not_allowed:?}");
    let too_long = alice.run(&["request", "create", "--roles=prod-access", "--max-duration=10h", "--nowait"]);
    assert!(
        too_long.code == 1 && too_long.stderr.contains("longer than your roles allow") && too_long.stderr.lines().count() == 1,
        "{too_long:?}"
    );

    // The request, and its review.
    let made = alice.run(&[
        "request",
        "create",
        "--roles=prod-access",
        "--reason=fix the orders db",
        "--max-duration=1h",
        "--nowait",
        "-f",
        "json",
    ]);
    made.ok("tsh request create");
    let req = made.json();
    let id = req["metadata"]["name"].as_str().unwrap_or_default().to_string();
    assert_eq!((req["spec"]["state"].as_str(), req["spec"]["user"].as_str()), (Some("PENDING"), Some("alice")), "{req}");
    let own = alice.run(&["request", "review", "--approve", &id]);
    assert!(own.code == 1 && own.stderr.contains("cannot review your own access request") && own.stderr.lines().count() == 1, "{own:?}");
    let early = alice.run(&["login", &format!("--request-id={id}")]);
    assert!(early.code != 0 && early.stderr.contains("still pending"), "{early:?}");
    let listed = bob.run(&["request", "ls"]);
    let table = listed.ok("bob lists");
    assert!(table.contains(&id) && table.contains("prod-access") && table.contains("PENDING"), "{table}");
    let reviewed = bob.run(&["request", "review", "--approve", "--reason=ok for the incident", &id]);
    assert!(reviewed.code == 0 && reviewed.stderr.contains("Successfully submitted review.  Request state: APPROVED"), "{reviewed:?}");
    let shown = alice.run(&["request", "show", &id]);
    let text = shown.ok("tsh request show");
    assert!(
        text.contains("Status:         APPROVED") && text.contains("Reviewer: bob") && text.contains("\"fix the orders db\""),
        "{text}"
    );

    // Her certificate gains the role; the leaf maps it; she is root on the prod node.
    let status = alice.run(&["login", &format!("--request-id={id}")]);
    let said = status.ok("tsh login --request-id");
    assert!(said.contains("prod-access") && said.contains(&format!("Active requests:    {id}")), "{said}");
    let now = ssh(&alice);
    assert_eq!(now.stdout.trim(), "root", "{now:?}");
    // The leaf's events of the elevated session name the request.
    let leaf_events = wait_for("the leaf's session event", T, || {
        let e = leaf.events();
        e.iter().any(|v| v["event"] == "session.start" && v["login"] == "root").then_some(e)
    });
    let start =
        leaf_events.iter().find(|v| v["event"] == "session.start" && v["login"] == "root").unwrap_or_else(|| panic!("{leaf_events:?}"));
    assert_eq!(start["access_requests"][0].as_str(), Some(id.as_str()), "{start}");
    assert_eq!(start["roles"], serde_json::json!(["visitor", "prod-admin"]), "the mapped roles: {start}");
    // tsh access explain names the request behind the login.
    let why = alice.run(&["access", "explain", &cluster, &node]);
    let text = why.ok("tsh access explain");
    assert!(text.contains("ALLOWED") && text.contains(&format!("access request {id} adds roles [prod-access]")), "{text}");
    assert!(text.contains("approved by bob"), "{text}");
    let st = alice.run(&["status", "-f", "json"]).json();
    assert_eq!(st["active"]["active_requests"][0].as_str(), Some(id.as_str()), "{st}");

    // Dropped: the role is gone again.
    let dropped = alice.run(&["request", "drop"]);
    let d = dropped.ok("tsh request drop");
    assert!(d.contains("Dropping all active access requests") && !d.contains("prod-access"), "{d}");
    let after = ssh(&alice);
    assert!(after.code != 0, "{after:?}");
    // The reviewer is deleted: his approval counts for nothing from now on.
    root.tctl(&["users", "rm", "bob"]).ok("tctl users rm bob");
    let orphaned = alice.run(&["login", &format!("--request-id={id}")]);
    assert!(orphaned.code != 0 && orphaned.stderr.contains("no longer has enough approvals"), "{orphaned:?}");

    // The root's audit log tells the story; the admin sees it too.
    let events = root.events();
    for code in ["T5000I", "T5002I", "T5001I"] {
        assert!(events.iter().any(|e| e["code"] == code && e["id"] == id.as_str()), "{code} in {events:?}");
    }
    let update = events.iter().find(|e| e["code"] == "T5001I").unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!((update["state"].as_str(), update["reviewers"][0].as_str()), (Some("APPROVED"), Some("bob")), "{update}");
    let admin = root.tctl(&["request", "ls"]);
    assert!(admin.ok("tctl request ls").contains(&id), "{admin:?}");
    let create =
        root.create("req.yaml", "kind: access_request\nversion: v3\nmetadata: {name: x}\nspec: {user: alice, roles: [prod-access]}\n");
    assert!(create.code == 1 && create.stderr.contains("tsh request create"), "{create:?}");
}

#[test]
fn tsh_request_create_waits_for_the_decision_and_a_denial_after_approval_ends_the_access() {
    let (root, leaf, alice, _bob) = world("wait");
    let cluster = format!("--cluster={}", leaf.opts.name);
    let node = format!("root@{}", leaf.node_name());
    wait_for("the leaf's node", T, || leaf.tctl(&["get", "nodes", "--format=text"]).stdout.contains(&leaf.node_name()).then_some(()));
    let mut waiting = alice
        .command(&["request", "create", "--roles=prod-access", "--reason=incident 42"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tsh request create");
    let id = wait_for("the pending request", T, || {
        let v = root.tctl(&["request", "ls", "-f", "json"]).json();
        v.as_array()?.iter().find(|r| r["spec"]["state"] == "PENDING")?["metadata"]["name"].as_str().map(str::to_string)
    });
    root.tctl(&["request", "approve", &id, "--reason=on call"]).ok("tctl request approve");
    let ended = wait_for("tsh to get its certificate", T, || waiting.try_wait().ok().flatten());
    let mut stderr = String::new();
    let mut stdout = String::new();
    use std::io::Read;
    let _ = waiting.stderr.take().map(|mut s| s.read_to_string(&mut stderr));
    let _ = waiting.stdout.take().map(|mut s| s.read_to_string(&mut stdout));
    assert!(ended.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains(&format!("Seeking request approval... (id: {id})")) && stderr.contains("Approval received"), "{stderr}");
    assert!(stdout.contains("prod-access"), "{stdout}");
    let ssh = alice.run(&["ssh", &cluster, &node, "id", "-un"]);
    assert_eq!(ssh.stdout.trim(), "root", "{ssh:?}");
    // Denied after approval: a lock on the request ends the live session on the leaf, refuses
    // the certificate that carries it, and the request gives no new certificates.
    let mut live = alice
        .command(&["ssh", &cluster, &node, "echo STARTED; sleep 60"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tsh ssh");
    wait_for("the elevated session on the leaf", T, || {
        leaf.events().iter().any(|e| e["event"] == "session.start" && e["login"] == "root").then_some(())
    });
    root.tctl(&["request", "deny", &id, "--reason=wrong ticket"]).ok("tctl request deny");
    let cut = wait_for("the lock to end the session", T, || live.try_wait().ok().flatten());
    assert!(!cut.success(), "the session was ended");
    let refused = e2e::output_when(
        "the leaf to refuse the certificate",
        T,
        || alice.run(&["ssh", &cluster, &node, "id", "-un"]).stderr,
        |e| e.contains("lock targeting AccessRequest"),
    );
    assert!(refused.contains("was denied after approval"), "{refused}");
    // Her locked certificate cannot even ask; with the request dropped it can, and is told why.
    let again = alice.run(&["login", &format!("--request-id={id}")]);
    assert!(again.code != 0 && again.stderr.contains("denied after approval"), "{again:?}");
    let mut fresh = Tsh::new("alice-wait-2");
    fresh.login(&root, "alice", PASSWORD).ok("alice signs in again");
    let told = fresh.run(&["login", &format!("--request-id={id}")]);
    assert!(told.code != 0 && told.stderr.contains("was denied (wrong ticket)"), "{told:?}");
}

/// Two reviewers at once, `rounds` times: both approving (two approvals needed) ends APPROVED
/// with both reviews; one approving and one denying ends DENIED (one denial decides), whichever
/// lands first. `alice`, `bob`, `carol` sign in through `a`, `b`, `b`.
fn concurrent_reviews_end_in_one_state(a: &Cluster, b: &Cluster, tag: &str, rounds: usize) {
    a.create(
        "roles.yaml",
        "kind: role\nversion: v7\nmetadata: {name: prod-access}\nspec:\n  allow:\n    logins: [root]\n---\nkind: role\nversion: v7\nmetadata: {name: requester}\nspec:\n  allow:\n    request:\n      roles: [prod-access]\n      thresholds: [{approve: 2, deny: 1}]\n---\nkind: role\nversion: v7\nmetadata: {name: reviewer}\nspec:\n  allow:\n    review_requests:\n      roles: [prod-access]\n",
    )
    .ok("roles");
    a.add_user("alice", "access,requester", "visitor", PASSWORD);
    a.add_user("bob", "access,reviewer", "visitor", PASSWORD);
    a.add_user("carol", "access,reviewer", "visitor", PASSWORD);
    let mut alice = Tsh::new(&format!("alice-{tag}"));
    alice.login(a, "alice", PASSWORD).ok("alice");
    let mut bob = Tsh::new(&format!("bob-{tag}"));
    bob.login(b, "bob", PASSWORD).ok("bob");
    let mut carol = Tsh::new(&format!("carol-{tag}"));
    carol.login(b, "carol", PASSWORD).ok("carol");
    for round in 0..rounds {
        for (second, want) in [("--approve", "APPROVED"), ("--deny", "DENIED")] {
            let made = alice.run(&["request", "create", "--roles=prod-access", "--nowait", "-f", "json"]);
            let id = made.json()["metadata"]["name"].as_str().unwrap_or_default().to_string();
            assert!(!id.is_empty(), "{made:?}");
            let (r1, r2) = std::thread::scope(|s| {
                let one = s.spawn(|| bob.run(&["request", "review", "--approve", &id]));
                let two = s.spawn(|| carol.run(&["request", "review", second, &id]));
                (one.join().expect("bob"), two.join().expect("carol"))
            });
            let through_a = a.tctl(&["request", "ls", "-f", "json"]).json();
            let through_b = b.tctl(&["request", "ls", "-f", "json"]).json();
            let find = |v: &serde_json::Value| v.as_array().and_then(|l| l.iter().find(|r| r["metadata"]["name"] == id.as_str()).cloned());
            let (ra, rb) = (find(&through_a).expect("seen through a"), find(&through_b).expect("seen through b"));
            assert_eq!(ra["spec"], rb["spec"], "one state through both processes");
            assert_eq!(ra["spec"]["state"].as_str(), Some(want), "round {round} {second}: {ra}\n{r1:?}\n{r2:?}");
            let reviews = ra["spec"]["reviews"].as_array().map(Vec::len).unwrap_or(0);
            let accepted = [&r1, &r2].iter().filter(|o| o.code == 0).count();
            assert_eq!(reviews, accepted, "every accepted review is recorded, no other: {ra}\n{r1:?}\n{r2:?}");
            if want == "APPROVED" {
                assert_eq!(reviews, 2, "both approvals count: {ra}");
            }
        }
    }
}

#[test]
fn concurrent_reviews_end_in_one_consistent_state_on_sqlite() {
    e2e::ensure_unix_user("visitor");
    let mut o = ClusterOpts::new("req-race.example.com");
    o.node = false;
    let c = Cluster::start(o);
    concurrent_reviews_end_in_one_state(&c, &c, "race-sqlite", 3);
}

#[test]
fn concurrent_reviews_through_two_processes_on_postgresql_end_in_one_consistent_state() {
    e2e::ensure_unix_user("visitor");
    let pg = e2e::postgres::PgServer::start();
    let url = pg.url("req_race");
    let procs = e2e::start_together(vec![
        e2e::ha_opts("req-race-ha.example.com", "root-a", &url),
        e2e::ha_opts("req-race-ha.example.com", "root-b", &url),
    ]);
    concurrent_reviews_end_in_one_state(&procs[0], &procs[1], "race-pg", 3);
}

/// Signs `user` in on the web UI at `base`.
async fn web_sign_in(c: &fantoccini::Client, base: &str, user: &str) {
    use e2e::browser::*;
    c.goto(&format!("{base}/web/login")).await.unwrap();
    fill(c, "#user", user).await;
    fill(c, "#password", PASSWORD).await;
    click(c, "#sign-in").await;
    wait_until("signed in", Duration::from_secs(15), || async { (path_of(c).await != "/web/login").then_some(()) }).await;
}

#[test]
fn the_web_ui_makes_reviews_and_assumes_a_request_and_the_leaf_shows_what_the_mapped_role_allows() {
    use e2e::browser::*;
    let (root, leaf, _alice, _bob) = world("web");
    let base = format!("https://{}", root.web);
    let leaf_name = leaf.opts.name.clone();
    let node = leaf.node_name();
    wait_for("the leaf's node", T, || leaf.tctl(&["get", "nodes", "--format=text"]).stdout.contains(&node).then_some(()));
    let chrome = Chrome::start();
    rt().block_on(async {
        let a = chrome.client(1200, 900).await;
        let b = chrome.client(1200, 900).await;
        web_sign_in(&a, &base, "alice").await;
        web_sign_in(&b, &base, "bob").await;
        // As visitor, alice sees no prod server in the leaf.
        a.goto(&format!("{base}/web/cluster/{leaf_name}/nodes")).await.unwrap();
        assert!(!body_text(&a).await.contains(&node), "{}", body_text(&a).await);

        // alice asks, with a reason.
        a.goto(&format!("{base}/web/requests")).await.unwrap();
        fill(&a, "#new-request input[name=roles]", "prod-access").await;
        fill(&a, "#new-request input[name=reason]", "orders db is down").await;
        click(&a, "#new-request button").await;
        let notice = wait_css(&a, ".notice", Duration::from_secs(10)).await.text().await.unwrap();
        assert!(notice.contains("pending review"), "{notice}");
        let id = wait_css(&a, "#requests tbody tr", Duration::from_secs(10)).await.attr("data-id").await.unwrap().unwrap_or_default();
        assert!(
            a.find(fantoccini::Locator::Css(&format!("tr[data-id='{id}'] button[value=approve]"))).await.is_err(),
            "no self-review button"
        );

        // bob approves it with a reason.
        b.goto(&format!("{base}/web/requests")).await.unwrap();
        fill(&b, &format!("tr[data-id='{id}'] input[name=reason]"), "incident 42").await;
        click(&b, &format!("tr[data-id='{id}'] button[value=approve]")).await;
        let said = wait_css(&b, ".notice", Duration::from_secs(10)).await.text().await.unwrap();
        assert!(said.contains("is APPROVED"), "{said}");
        let reviews = wait_css(&b, &format!("tr[data-id='{id}'] td.reviews"), Duration::from_secs(10)).await.text().await.unwrap();
        assert!(reviews.contains("bob: APPROVED (incident 42)"), "{reviews}");
        save_shot(&b, "requests-reviewed").await;

        // alice assumes it: a banner on every page, and the leaf shows its prod server.
        a.goto(&format!("{base}/web/requests")).await.unwrap();
        click(&a, &format!("tr[data-id='{id}'] button.assume")).await;
        let banner = wait_css(&a, "#elevated", Duration::from_secs(10)).await.text().await.unwrap();
        assert!(banner.contains(&id) && banner.contains("until"), "{banner}");
        save_shot(&a, "requests-assumed").await;
        a.goto(&format!("{base}/web/cluster/{leaf_name}/nodes")).await.unwrap();
        wait_until("the prod server", Duration::from_secs(15), || async { body_text(&a).await.contains(&node).then_some(()) }).await;
        assert!(body_text(&a).await.contains("You are using roles from access request"), "the banner on other pages");

        // Switching back takes it away.
        a.goto(&format!("{base}/web/requests")).await.unwrap();
        click(&a, "#switch-back").await;
        let back = wait_css(&a, ".notice", Duration::from_secs(10)).await.text().await.unwrap();
        assert!(back.contains("back to your own roles"), "{back}");
        assert!(a.find(fantoccini::Locator::Css("#elevated")).await.is_err(), "no banner");
        a.goto(&format!("{base}/web/cluster/{leaf_name}/nodes")).await.unwrap();
        assert!(!body_text(&a).await.contains(&node), "{}", body_text(&a).await);
    });
}

#[test]
fn with_request_access_always_tsh_login_asks_for_the_requestable_roles_and_waits() {
    let (root, _leaf, _alice, _bob) = world("always");
    root.create(
        "always.yaml",
        "kind: role\nversion: v7\nmetadata: {name: on-call}\nspec:\n  options:\n    request_access: always\n    request_prompt: Which incident?\n  allow:\n    request:\n      roles: [prod-access]\n",
    )
    .ok("role");
    root.add_user("dave", "access,on-call", "visitor", PASSWORD);
    let mut dave = Tsh::new("dave-always");
    dave.env.retain(|(k, _)| k != "SSL_CERT_FILE");
    dave.env.push(("SSL_CERT_FILE".into(), root.web_ca().display().to_string()));
    let mut login = dave
        .command(&["login", &format!("--proxy={}", root.web), "--user=dave", "--request-reason=incident 7"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tsh login");
    {
        use std::io::Write;
        let mut stdin = login.stdin.take().expect("stdin");
        let _ = writeln!(stdin, "{PASSWORD}");
    }
    let id = wait_for("dave's request", T, || {
        let v = root.tctl(&["request", "ls", "-f", "json"]).json();
        v.as_array()?.iter().find(|r| r["spec"]["user"] == "dave" && r["spec"]["state"] == "PENDING")?["metadata"]["name"]
            .as_str()
            .map(str::to_string)
    });
    let listed = root.tctl(&["request", "ls", "-f", "json"]).json();
    let mine = listed.as_array().and_then(|l| l.iter().find(|r| r["metadata"]["name"] == id.as_str()).cloned()).unwrap_or_default();
    assert_eq!(
        (mine["spec"]["roles"][0].as_str(), mine["spec"]["request_reason"].as_str()),
        (Some("prod-access"), Some("incident 7")),
        "{mine}"
    );
    root.tctl(&["request", "approve", &id]).ok("approve");
    let done = wait_for("tsh login to finish", T, || login.try_wait().ok().flatten());
    let mut out = String::new();
    let mut err = String::new();
    use std::io::Read;
    let _ = login.stdout.take().map(|mut s| s.read_to_string(&mut out));
    let _ = login.stderr.take().map(|mut s| s.read_to_string(&mut err));
    assert!(done.success(), "{out}\n{err}");
    assert!(err.contains("Which incident?") && err.contains("Seeking request approval"), "{err}");
    assert!(out.contains(&format!("Active requests:    {id}")) && out.contains("prod-access"), "{out}");
}

#[test]
fn an_approved_requests_roles_reach_a_leafs_database_too_and_its_events_name_the_request() {
    let pg_ip = e2e::free_ip(&[e2e::postgres::PORT]);
    let section = format!(
        "db_service:\n  enabled: yes\n  databases:\n  - name: pg\n    protocol: postgres\n    uri: {pg_ip}:{}\n    static_labels: {{env: dev}}\n",
        e2e::postgres::PORT
    );
    let (root, leaf, alice, bob) = world_with("reqdb", &section);
    let (_pg, _dir) = e2e::postgres::postgres_at(&leaf, &pg_ip, "leaf-db");
    let cluster = format!("--cluster={}", leaf.opts.name);
    wait_for("the leaf's database", T, || leaf.tctl(&["get", "dbs", "--format=text"]).stdout.contains("pg").then_some(()));
    let sql = ["--", "-X", "-At", "-c", "SELECT current_user, c FROM whoami"];
    let connect = |t: &Tsh| {
        let mut args = vec!["db", "connect", cluster.as_str(), "--db-user=alice", "--db-name=dev", "pg"];
        args.extend_from_slice(&sql);
        t.run(&args)
    };
    // As visitor, the leaf lists no database for her and refuses one.
    let before = connect(&alice);
    assert!(before.code != 0 && before.stderr.contains("not found"), "{before:?}");
    let made = alice.run(&["request", "create", "--roles=prod-access", "--nowait", "-f", "json"]);
    let id = made.json()["metadata"]["name"].as_str().unwrap_or_default().to_string();
    bob.run(&["request", "review", "--approve", &id]).ok("bob approves");
    alice.run(&["login", &format!("--request-id={id}")]).ok("tsh login --request-id");
    let after = connect(&alice);
    assert_eq!(after.stdout.trim(), "alice|leaf-db", "{after:?}");
    let events = wait_for("the leaf's database events", T, || {
        let e = leaf.events();
        e.iter().any(|v| v["code"] == "TDB00I").then_some(e)
    });
    let start = events.iter().find(|v| v["code"] == "TDB00I").unwrap_or_else(|| panic!("{events:?}"));
    assert_eq!(start["access_requests"][0].as_str(), Some(id.as_str()), "{start}");
    assert!(start["roles"].as_array().is_some_and(|r| r.iter().any(|x| x == "prod-admin")), "{start}");
    drop(root);
}
