//! Kubernetes federated across trusted clusters, as the guide's section "Federating access to
//! Kubernetes clusters" describes: leaves `east` and `west`, each with a Kubernetes cluster of
//! its name, users who sign in at the root and use plain `kubectl`. The API servers are the
//! stand-in (`e2e::kube`); `kubectl` is the real one.

use std::time::Duration;

use e2e::kube::{KubeApi, kubectl};
use e2e::{Cluster, ClusterOpts, PASSWORD, Tsh, VISITOR, tc_yaml, wait_for};

const T: Duration = Duration::from_secs(30);

/// The leaves' role for a root's Kubernetes users: what the root's roles carry, as the guide
/// writes it.
const KUBE_ADMIN: &str = "kind: role\nversion: v7\nmetadata: {name: kube-admin}\nspec:\n  allow:\n    kubernetes_labels: {'*': '*'}\n    kubernetes_groups: ['{{internal.kubernetes_groups}}']\n    kubernetes_users: ['{{internal.kubernetes_users}}']\n    rules:\n    - resources: [session]\n      verbs: [list, read]\n";

/// A leaf role that reaches only pods in namespace `dev`, and only to read them.
const KUBE_DEV: &str = "kind: role\nversion: v7\nmetadata: {name: kube-dev}\nspec:\n  allow:\n    kubernetes_labels: {'*': '*'}\n    kubernetes_groups: ['{{internal.kubernetes_groups}}']\n    kubernetes_users: ['{{internal.kubernetes_users}}']\n    kubernetes_resources:\n    - {kind: pod, namespace: dev, name: '*', verbs: [get, list]}\n";

/// The root's role for carol, mapped to the leaves' `kube-dev`.
const KUBE_DEV_ROOT: &str = "kind: role\nversion: v7\nmetadata: {name: kube-dev-root}\nspec:\n  allow:\n    logins: [visitor]\n    kubernetes_groups: ['system:masters']\n    kubernetes_users: ['carol-k8s']\n";

/// The root's role giving Kubernetes groups and a user (the guide's `root` role).
const KUBE_MASTERS: &str = "kind: role\nversion: v7\nmetadata: {name: kube-masters}\nspec:\n  allow:\n    kubernetes_groups: ['system:masters']\n    kubernetes_users: ['alice-k8s']\n";

struct Federation {
    root: Cluster,
    east: Cluster,
    west: Cluster,
    east_api: KubeApi,
    west_api: KubeApi,
    alice: Tsh,
}

fn leaf(name: &str, root: &Cluster, api: &KubeApi) -> Cluster {
    let mut o = ClusterOpts::new(name);
    o.node = false;
    o.env = vec![("SSL_CERT_FILE".into(), root.web_ca().display().to_string())];
    o.sections = format!(
        "kubernetes_service:\n  enabled: yes\n  kubeconfig_file: {}\n  kube_cluster_name: {name}\n  labels:\n    region: {name}\n  commands:\n  - name: zone\n    command: [sh, -c, 'echo {name}-zone-$((1+1))']\n    period: 1s\n",
        api.kubeconfig().display()
    );
    let c = Cluster::start(o);
    c.create("roles.yaml", &format!("{VISITOR}---\n{KUBE_ADMIN}---\n{KUBE_DEV}")).ok("leaf roles");
    let token = root.trusted_cluster_token("5m");
    let role_map = "    - remote: \"access\"\n      local: [\"visitor\", \"kube-admin\"]\n    - remote: \"kube-dev-root\"\n      local: [\"kube-dev\"]\n";
    c.create("tc.yaml", &tc_yaml(&root.opts.name, &token, root, true, role_map)).ok("trust");
    root.wait_remote_status(name, "online", T);
    c
}

fn federation(tag: &str) -> Federation {
    federation_with(tag, &[])
}

/// A federation whose `east` API server runs with these stand-in flags.
fn federation_with(tag: &str, east_flags: &[&str]) -> Federation {
    e2e::ensure_unix_user("visitor");
    let mut ro = ClusterOpts::new(&format!("teleport-{tag}.example.com"));
    ro.node = false;
    // Kubernetes clients on the web port, and on a port of their own too.
    let ip = e2e::free_ip(&[3080, 3022, 3000, 3026]);
    ro.proxy_extra = format!("  kube_listen_addr: {ip}:3026\n");
    ro.ip = Some(ip);
    let root = Cluster::start(ro);
    root.create("kube-masters.yaml", &format!("{KUBE_MASTERS}---\n{KUBE_DEV_ROOT}")).ok("root roles");
    root.add_user("alice", "access,kube-masters", "visitor", PASSWORD);
    let east_api = KubeApi::start_with("east", east_flags);
    let west_api = KubeApi::start("west");
    let east = leaf("east", &root, &east_api);
    let west = leaf("west", &root, &west_api);
    let mut alice = Tsh::new(&format!("alice-kube-{tag}"));
    alice.login(&root, "alice", PASSWORD).ok("alice signs in at the root");
    Federation { root, east, west, east_api, west_api, alice }
}

impl Federation {
    fn kubeconfig(&self, tsh: &Tsh) -> std::path::PathBuf {
        tsh.home.path().join("kubeconfig")
    }
}

/// `tsh` with `KUBECONFIG` in its profile directory.
fn with_kubeconfig(tsh: &mut Tsh) {
    let k = tsh.home.path().join("kubeconfig").display().to_string();
    tsh.env.push(("KUBECONFIG".into(), k));
}

fn alice_requests(api: &KubeApi) -> Vec<serde_json::Value> {
    api.requests().into_iter().filter(|r| r["impersonate_user"].as_array().is_some_and(|u| u.iter().any(|x| x == "alice-k8s"))).collect()
}

#[test]
fn the_guides_three_commands_then_plain_kubectl_in_east_and_west() {
    let mut f = federation("guide");
    with_kubeconfig(&mut f.alice);
    let proxy = f.root.web.clone();
    let kc = f.kubeconfig(&f.alice);

    // The guide's commands, verbatim (hostnames aside).
    f.alice.sh(&format!("tsh --proxy={proxy} login east"), None).ok("tsh login east");
    let out = f.alice.sh(&format!("tsh kube login --proxy={proxy} --cluster=east east"), None);
    assert!(out.ok("tsh kube login").contains("Logged into Kubernetes cluster \"east\""), "{out:?}");
    let ls = f.alice.run(&["kube", "ls", "--cluster=east"]);
    let table = ls.ok("tsh kube ls");
    assert!(table.contains("Kube Cluster Name") && table.contains("region=east"), "{table}");
    assert!(table.contains("zone=east-zone-2"), "a dynamic label, from its command's output: {table}");
    let row = table.lines().find(|l| l.starts_with("east")).unwrap_or_default();
    assert!(row.trim_end().ends_with('*'), "east is the selected one: {table}");
    let json = f.alice.run(&["kube", "ls", "--cluster=west", "-f", "json"]).json();
    assert_eq!(json[0]["kube_cluster_name"], "west");
    assert_eq!(json[0]["selected"], false);

    let status = f.alice.run(&["status"]);
    let st = status.ok("tsh status");
    assert!(st.contains("Kubernetes:         enabled") && st.contains("Kubernetes groups:  system:masters"), "{st}");
    let all = f.alice.run(&["kube", "ls", "--all"]);
    let all = all.ok("tsh kube ls --all");
    assert!(all.contains("Cluster") && all.lines().any(|l| l.contains(" east ")) && all.lines().any(|l| l.contains(" west ")), "{all}");
    let admin = f.east.tctl(&["get", "kube_clusters", "--format=text"]);
    let admin = admin.ok("tctl get kube_clusters");
    assert!(admin.contains("east") && admin.contains("region=east"), "{admin}");
    let st = f.east.tctl(&["status"]);
    assert!(st.ok("tctl status").contains("Kubernetes   east (served by east-node)"), "{st:?}");
    let yaml = f.east.tctl(&["get", "kube_cluster/east"]);
    assert!(yaml.ok("tctl get kube_cluster/east").contains("kind: kube_cluster"), "{yaml:?}");

    // The web UI lists each cluster's Kubernetes clusters with the command to use them.
    let (cookie, _) = crate::webui::sign_in(&f.root, "alice", PASSWORD);
    let page = crate::webui::http(&f.root, "GET", "/web/cluster/east/nodes", &[format!("Cookie: {cookie}")], None);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Kubernetes clusters of east") && page.body.contains("tsh kube login --cluster=east east"), "{}", page.body);

    // Plain kubectl reaches east's API server as the mapped user and groups, never west's.
    let pods = kubectl(&kc, &["get", "pods"], &[]);
    let text = pods.ok("kubectl get pods");
    assert!(text.contains("web") && text.contains("Running"), "{text}");
    let json = kubectl(&kc, &["get", "pods", "-o", "json"], &[]).json();
    assert!(json["items"].as_array().unwrap().iter().all(|p| p["metadata"]["labels"]["cluster"] == "east"), "{json}");
    let seen = alice_requests(&f.east_api);
    assert!(!seen.is_empty(), "east saw alice: {:?}", f.east_api.requests());
    for r in &seen {
        assert_eq!(r["impersonate_user"], serde_json::json!(["alice-k8s"]), "{r}");
        let groups = r["impersonate_group"].as_array().unwrap();
        assert!(groups.iter().any(|g| g == "system:masters") && groups.iter().any(|g| g == "system:authenticated"), "{r}");
        assert_eq!(r["cert_user"], "teleport", "the service's own credentials: {r}");
        assert!(r["impersonate_other"].as_array().unwrap().is_empty(), "{r}");
    }
    assert!(alice_requests(&f.west_api).is_empty(), "west saw nothing of alice's east requests");

    // The leaf audits every request, with the mapped roles and the leaf's name for her.
    let ev = wait_for("kube.request in east's audit log", T, || {
        f.east.events().into_iter().find(|e| e["event"] == "kube.request" && e["request_path"] == "/api/v1/namespaces/default/pods")
    });
    assert_eq!(ev["code"], "T3009I");
    assert_eq!(ev["user"], "remote-alice-teleport-guide.example.com");
    assert!(ev["roles"].as_array().unwrap().iter().any(|r| r == "kube-admin"), "{ev}");
    assert_eq!(ev["kubernetes_cluster"], "east");
    assert!(!f.root.events().iter().any(|e| e["event"] == "kube.request"), "the root decides nothing for the leaf");

    // exec without a terminal: output and exit code through both hops, Teleport's `exec` event
    // in east (sessions with a terminal are recorded: the test below).
    let exec = kubectl(&kc, &["exec", "web", "--", "sh", "-c", "echo kube-exec-$((6*7)); exit 3"], &[]);
    assert_eq!(exec.code, 3, "{exec:?}");
    assert!(exec.stdout.contains("kube-exec-42"), "{exec:?}");
    let ev = wait_for("the exec event in east", T, || {
        f.east.events().into_iter().find(|e| e["event"] == "exec" && e["command"].as_str().is_some_and(|c| c.contains("kube-exec")))
    });
    assert_eq!(ev["code"], "T3002I");
    assert_eq!(ev["exitCode"], "3");
    assert_eq!(ev["kubernetes_pod_name"], "web");
    assert_eq!(ev["user"], "remote-alice-teleport-guide.example.com");

    // Stdin through both hops.
    let cat = e2e::run(
        std::path::Path::new("kubectl"),
        &["exec", "-i", "web", "--", "cat"],
        &[("KUBECONFIG", kc.to_str().unwrap())],
        Some("through-two-hops\n"),
        T,
    );
    assert!(cat.ok("kubectl exec -i").contains("through-two-hops"), "{cat:?}");

    // Logs, watch.
    assert!(kubectl(&kc, &["logs", "web"], &[]).ok("logs").contains("web log line 3"));
    let follow = kubectl(&kc, &["logs", "-f", "web"], &[]);
    assert!(follow.ok("logs -f").contains("web log line 5"));

    // proxy_service.kube_listen_addr serves the same.
    let on_port = f.alice.home.path().join("kube-port.kubeconfig");
    std::fs::copy(&kc, &on_port).unwrap();
    let server = format!("--server=https://{}:3026", f.root.ip);
    let sni = format!("--tls-server-name={}", shared::kube::PROXY_SNI);
    kubectl(&on_port, &["config", "set-cluster", "east-east", &server, &sni], &[]).ok("point at 3026");
    assert!(kubectl(&on_port, &["get", "pods"], &[]).ok("kubectl on kube_listen_addr").contains("web"));

    // A watch streams through both hops: a pod created meanwhile shows up.
    let mut watch = std::process::Command::new("kubectl")
        .args(["get", "pods", "-w", "--no-headers"])
        .env("KUBECONFIG", &kc)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let first = rx.recv_timeout(T).expect("the watch lists the pods");
    assert!(first.starts_with("db") || first.starts_with("web"), "{first}");
    kubectl(&kc, &["run", "late-pod", "--image=standin"], &[]).ok("kubectl run through both hops");
    let seen =
        wait_for("the new pod in the watch", T, || rx.recv_timeout(Duration::from_millis(200)).ok().filter(|l| l.starts_with("late-pod")));
    assert!(seen.contains("Running"), "{seen}");
    let _ = watch.kill();
    let _ = watch.wait();

    // --all: every Kubernetes cluster of the selected cluster, the current context kept.
    let all = f.alice.run(&["kube", "login", "--cluster=west", "--all"]);
    assert!(all.ok("kube login --all").contains("Logged into all Kubernetes clusters of \"west\""), "{all:?}");
    let current = kubectl(&kc, &["config", "current-context"], &[]);
    assert_eq!(current.ok("current context").trim(), "east-east", "--all leaves the current context");

    // west, the same way.
    f.alice.run(&["kube", "login", "--cluster=west", "west"]).ok("kube login west");
    let json = kubectl(&kc, &["get", "pods", "-o", "json"], &[]).json();
    assert!(json["items"].as_array().unwrap().iter().all(|p| p["metadata"]["labels"]["cluster"] == "west"), "{json}");
    assert!(!alice_requests(&f.west_api).is_empty());
    let ctx = kubectl(&kc, &["config", "get-contexts", "-o", "name"], &[]);
    let names = ctx.ok("contexts");
    assert!(names.contains("east-east") && names.contains("west-west"), "{names}");

    // tsh logout removes what tsh wrote, and nothing else.
    kubectl(&kc, &["config", "set-cluster", "mine", "--server=https://127.0.0.1:1"], &[]).ok("an entry of the user's own");
    f.alice.run(&["logout"]).ok("logout");
    let left = std::fs::read_to_string(&kc).unwrap();
    assert!(!left.contains("east-east") && !left.contains("west-west") && left.contains("mine"), "{left}");
    drop(f.west);
}

#[test]
fn the_leaf_decides_denials_and_impersonation() {
    let mut f = federation("deny");
    with_kubeconfig(&mut f.alice);
    let kc = f.kubeconfig(&f.alice);
    let before_bad = std::fs::read_to_string(&kc).unwrap_or_default();
    let bad = f.alice.run(&["kube", "login", "--cluster=east", "nope"]);
    assert_eq!(bad.code, 1, "{bad:?}");
    assert!(
        bad.stderr.starts_with("ERROR: kubernetes cluster \"nope\" not found in cluster \"east\"") && bad.stderr.contains("tsh kube ls"),
        "{bad:?}"
    );
    assert_eq!(bad.stderr.lines().count(), 1, "{bad:?}");
    assert_eq!(std::fs::read_to_string(&kc).unwrap_or_default(), before_bad, "a refused login changes nothing");
    f.alice.run(&["kube", "login", "--cluster=east", "east"]).ok("kube login");

    // kubectl --as / --as-group outside the mapped roles' users and groups: refused by the leaf
    // with the reason, never sent to the API server.
    let before = f.east_api.requests().len();
    let as_root = kubectl(&kc, &["get", "pods", "--as=root"], &[]);
    assert_ne!(as_root.code, 0);
    assert!(as_root.stderr.contains("user header \"root\" is not allowed in roles"), "{as_root:?}");
    let as_group = kubectl(&kc, &["get", "pods", "--as=alice-k8s", "--as-group=cluster-admins"], &[]);
    assert!(as_group.stderr.contains("group header \"cluster-admins\" value is not allowed"), "{as_group:?}");
    let as_uid = kubectl(&kc, &["get", "pods", "--as=alice-k8s", "--as-uid=0"], &[]);
    assert!(as_uid.stderr.contains("unsupported impersonation header"), "{as_uid:?}");
    assert!(
        f.east_api.requests()[before..].iter().all(|r| r["path"] != "/api/v1/namespaces/default/pods"),
        "refused requests never reach the API server"
    );
    // An allowed subset is passed on, replacing the defaults.
    kubectl(&kc, &["get", "pods", "--as=alice-k8s", "--as-group=system:masters"], &[]).ok("allowed subset");

    // A user whose mapped roles give no Kubernetes users or groups gets the leaf's denial.
    f.root.add_user("bob", "access", "visitor", PASSWORD);
    let mut bob = Tsh::new("bob-kube-deny");
    bob.login(&f.root, "bob", PASSWORD).ok("bob signs in");
    with_kubeconfig(&mut bob);
    let denied = bob.run(&["kube", "login", "--cluster=east", "east"]);
    let msg = if denied.code == 0 {
        let get = kubectl(&bob.home.path().join("kubeconfig"), &["get", "pods"], &[]);
        assert_ne!(get.code, 0, "{get:?}");
        get.stderr
    } else {
        denied.stderr
    };
    assert!(msg.contains("allow no kubernetes_users or kubernetes_groups") && msg.contains("kube-admin"), "{msg}");
    assert!(!msg.contains("unknown"), "kubectl prints the leaf's reason: {msg}");
    // tsh access explain says the same, check by check, asked of the leaf.
    let why = bob.run(&["access", "explain", "--cluster=east", "--kube=east"]);
    assert_eq!(why.code, 1, "{why:?}");
    assert!(why.stdout.contains("kubernetes cluster east on cluster east") && why.stdout.contains("DENIED"), "{why:?}");
    assert!(why.stdout.contains("[FAIL] kubernetes users and groups") && why.stdout.contains("internal.kubernetes_groups"), "{why:?}");
    let fine = f.alice.run(&["access", "explain", "--cluster=east", "--kube=east"]);
    assert_eq!(fine.code, 0, "{fine:?}");
    assert!(fine.stdout.contains("ALLOWED") && fine.stdout.contains("as user alice-k8s with groups system:masters"), "{fine:?}");
    assert!(fine.stdout.contains("cluster_labels on the root"), "the root's part is in the report: {fine:?}");

    // kubernetes_resources of the mapped role: carol reads pods in dev, nothing else.
    f.root.add_user("carol", "kube-dev-root", "visitor", PASSWORD);
    let mut carol = Tsh::new("carol-kube-deny");
    carol.login(&f.root, "carol", PASSWORD).ok("carol signs in");
    with_kubeconfig(&mut carol);
    carol.run(&["kube", "login", "--cluster=east", "east"]).ok("carol kube login");
    let ckc = carol.home.path().join("kubeconfig");
    assert!(kubectl(&ckc, &["get", "pods", "-n", "dev"], &[]).ok("dev pods").contains("api"));
    let other = kubectl(&ckc, &["get", "pods", "-n", "default"], &[]);
    assert_ne!(other.code, 0);
    assert!(
        other.stderr.contains("kubernetes_resources of your roles")
            && other.stderr.contains("kube-dev")
            && other.stderr.contains("namespace \"default\""),
        "{other:?}"
    );
    let del = kubectl(&ckc, &["delete", "pod", "api", "-n", "dev"], &[]);
    assert!(del.stderr.contains("delete pods/api"), "{del:?}");
    let exec = kubectl(&ckc, &["exec", "api", "-n", "dev", "--", "true"], &[]);
    assert_ne!(exec.code, 0, "{exec:?}");
    let odd = carol.run(&["kube", "credentials", "--kube-cluster=east", "--teleport-cluster=east"]).json();
    let cdir = carol.home.path();
    std::fs::write(cdir.join("c.crt"), odd["status"]["clientCertificateData"].as_str().unwrap()).unwrap();
    std::fs::write(cdir.join("c.key"), odd["status"]["clientKeyData"].as_str().unwrap()).unwrap();
    let resolve = format!("kube-teleport-proxy-alpn.teleport.cluster.local:3080:{}", f.root.ip);
    let trailing = e2e::run(
        std::path::Path::new("curl"),
        &[
            "-sk",
            "--resolve",
            &resolve,
            "--cert",
            cdir.join("c.crt").to_str().unwrap(),
            "--key",
            cdir.join("c.key").to_str().unwrap(),
            "https://kube-teleport-proxy-alpn.teleport.cluster.local:3080/api/v1/namespaces/default/pods/",
        ],
        &[],
        None,
        T,
    );
    assert!(trailing.stdout.contains("not a Kubernetes object path"), "a trailing slash is no way around the rules: {trailing:?}");

    // Several kubernetes_users and none named: refused until kubectl --as picks one (dave's root
    // roles give alice-k8s and carol-k8s; east maps only kube-dev-root, whose users are the
    // root's `{{internal.kubernetes_users}}`).
    f.root.add_user("dave", "kube-dev-root,kube-masters", "visitor", PASSWORD);
    let mut dave = Tsh::new("dave-kube-deny");
    dave.login(&f.root, "dave", PASSWORD).ok("dave signs in");
    with_kubeconfig(&mut dave);
    dave.run(&["kube", "login", "--cluster=east", "east"]).ok("dave kube login");
    let dkc = dave.home.path().join("kubeconfig");
    let pick = kubectl(&dkc, &["get", "pods", "-n", "dev"], &[]);
    assert!(pick.stderr.contains("please select a user to impersonate"), "{pick:?}");
    assert!(kubectl(&dkc, &["get", "pods", "-n", "dev", "--as=carol-k8s"], &[]).ok("--as picks one").contains("api"));

    // A root's user may not use a leaf's proxy for a further hop: alice's certificate for west,
    // presented at east's own proxy.
    f.alice.run(&["kube", "login", "--cluster=west", "west"]).ok("kube login west");
    let cred = f.alice.run(&["kube", "credentials", "--kube-cluster=west", "--teleport-cluster=west"]).json();
    let dir = f.alice.home.path();
    std::fs::write(dir.join("west.crt"), cred["status"]["clientCertificateData"].as_str().unwrap()).unwrap();
    std::fs::write(dir.join("west.key"), cred["status"]["clientKeyData"].as_str().unwrap()).unwrap();
    let sni = "kube-teleport-proxy-alpn.teleport.cluster.local";
    let curl = |target: &str, extra: &[&str]| {
        let resolve = format!("{sni}:3080:{}", target.split(':').next().unwrap());
        let url = format!("https://{sni}:3080/api/v1/namespaces/default/pods");
        let crt = dir.join("west.crt").display().to_string();
        let key = dir.join("west.key").display().to_string();
        let mut args = vec!["-sk", "--resolve", &resolve, "--cert", &crt, "--key", &key, &url];
        args.extend_from_slice(extra);
        e2e::run(std::path::Path::new("curl"), &args, &[], None, T)
    };
    let hop = curl(&f.east.web, &[]);
    assert!(hop.stdout.contains("remote user can not access remote cluster"), "{hop:?}");

    // Smuggled identity headers are dropped before the API server: it sees alice as the leaf
    // mapped her, whatever the request claimed.
    let smuggled = curl(
        &f.root.web,
        &[
            "-H",
            "Teleport-Impersonate-User: {\"Username\":\"admin\"}",
            "-H",
            "Impersonate-User: alice-k8s",
            "-H",
            "X-Forwarded-For: 10.9.9.9",
        ],
    );
    assert!(smuggled.stdout.contains("PodList"), "{smuggled:?}");
    let last = f.west_api.requests().into_iter().rev().find(|r| r["path"] == "/api/v1/namespaces/default/pods").unwrap();
    assert_eq!(last["impersonate_user"], serde_json::json!(["alice-k8s"]));
    assert!(last["impersonate_other"].as_array().unwrap().is_empty(), "{last}");

    // No certificate, or one of a host: refused with a Kubernetes Status.
    let resolve = format!("{sni}:3080:{}", f.root.ip);
    let url = format!("https://{sni}:3080/api/v1/namespaces/default/pods");
    let anon = e2e::run(std::path::Path::new("curl"), &["-sk", "--resolve", &resolve, &url], &[], None, T);
    assert!(anon.stdout.contains("\"kind\":\"Status\"") && anon.stdout.contains("tsh kube login"), "{anon:?}");
    let admin = f.root.data_dir().join("admin.identity");
    let host = e2e::run(
        std::path::Path::new("curl"),
        &["-sk", "--resolve", &resolve, "--cert", admin.to_str().unwrap(), "--key", admin.to_str().unwrap(), &url],
        &[],
        None,
        T,
    );
    assert!(host.stdout.contains("[00] access denied"), "a host identity is no Kubernetes user: {host:?}");

    // Roles changed at the root take effect at the next sign-in: no cached Kubernetes
    // certificate keeps the old ones.
    kubectl(&kc, &["get", "pods"], &[]).ok("still allowed");
    f.root.tctl(&["users", "update", "alice", "--set-roles", "access"]).ok("alice loses kube-masters");
    f.alice.login(&f.root, "alice", PASSWORD).ok("alice signs in again");
    let after = kubectl(&kc, &["get", "pods"], &[]);
    assert!(after.stderr.contains("allow no kubernetes_users or kubernetes_groups"), "{after:?}");
    drop(f.west);
}

#[test]
fn a_root_lock_ends_a_running_exec_on_the_leaf_and_refuses_the_next() {
    let mut f = federation("lock");
    with_kubeconfig(&mut f.alice);
    let kc = f.kubeconfig(&f.alice);
    f.alice.run(&["kube", "login", "--cluster=east", "east"]).ok("kube login");
    // A long exec: cat with its input held open.
    let mut exec = std::process::Command::new("kubectl")
        .args(["exec", "-i", "web", "--", "cat"])
        .env("KUBECONFIG", &kc)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = exec.stdin.take().unwrap();
    let stdout = exec.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    std::io::Write::write_all(&mut stdin, b"before-the-lock\n").unwrap();
    assert_eq!(rx.recv_timeout(T).unwrap(), "before-the-lock", "the exec echoes through both hops");
    f.root.tctl(&["lock", "--user=alice", "--message=Incident 42."]).ok("lock on the root");
    let ended = wait_for("the exec to end", T, || exec.try_wait().ok().flatten());
    assert!(!ended.success() || ended.code().is_some(), "{ended:?}");
    drop(stdin);
    let ev = wait_for("the exec's end on east", T, || {
        f.east.events().into_iter().find(|e| e["event"] == "exec" && e["kubernetes_pod_name"] == "web")
    });
    assert_eq!(ev["user"], "remote-alice-teleport-lock.example.com");
    let next = wait_for("the lock to refuse kubectl", T, || {
        let o = kubectl(&kc, &["get", "pods"], &[]);
        (o.code != 0).then_some(o)
    });
    assert!(next.stderr.contains("Incident 42.") || next.stderr.contains("lock"), "{next:?}");
    drop(f.west);
}

#[test]
fn an_interactive_exec_through_both_hops_is_a_recorded_session() {
    let mut f = federation("tty");
    with_kubeconfig(&mut f.alice);
    let kc = f.kubeconfig(&f.alice);
    f.alice.run(&["kube", "login", "--cluster=east", "east"]).ok("kube login");
    let mut cmd = std::process::Command::new("kubectl");
    cmd.args(["exec", "-it", "web", "--", "sh"]).env("KUBECONFIG", &kc);
    let mut term = e2e::PtyTsh::start_command(cmd);
    term.type_keys("echo TTY-$((6*7)) $(tty | cut -c1-8)\r");
    term.wait_for("TTY-42 /dev/pts", T);
    term.type_keys("exit 5\r");
    let (text, code) = term.finish(T);
    assert_eq!(code, 5, "{text}");
    let rec = wait_for("the interactive recording", T, || {
        let v = f.alice.run(&["recordings", "ls", "--cluster=east", "-f", "json"]).json();
        v.as_array().and_then(|a| a.iter().find(|r| r["interactive"] == true).cloned())
    });
    let sid = rec["sid"].as_str().unwrap();
    assert_eq!(rec["user"], "alice");
    assert!(rec["roles"].as_array().unwrap().iter().any(|r| r == "kube-admin"), "{rec}");
    let play = f.alice.run(&["play", "--cluster=east", sid]);
    assert!(play.ok("tsh play").contains("TTY-42"), "{play:?}");
    let end = wait_for("session.end", T, || f.east.events().into_iter().find(|e| e["event"] == "session.end" && e["sid"] == sid));
    assert_eq!(end["exitCode"], "5");
    assert_eq!(end["interactive"], true);
    // kubectl attach -it: the pod's main process, the same way.
    let mut cmd = std::process::Command::new("kubectl");
    cmd.args(["attach", "-it", "web"]).env("KUBECONFIG", &kc);
    let mut term = e2e::PtyTsh::start_command(cmd);
    std::thread::sleep(Duration::from_millis(500));
    term.type_keys("echo ATTACHED-$((5*5))\r");
    term.wait_for("ATTACHED-25", T);
    term.type_keys("exit\r");
    let (_, code) = term.finish(T);
    assert_eq!(code, 0);
    wait_for("the attach's session.start", T, || {
        f.east
            .events()
            .into_iter()
            .find(|e| e["event"] == "session.start" && e["request_path"].as_str().is_some_and(|p| p.ends_with("/attach")))
    });
    drop(f.west);
}

#[test]
fn a_kubernetes_service_of_its_own_joins_by_token_and_is_reached_through_its_tunnel() {
    e2e::ensure_unix_user("visitor");
    let mut ro = ClusterOpts::new("teleport-solo.example.com");
    ro.node = false;
    let root = Cluster::start(ro);
    root.create("kube-masters.yaml", KUBE_MASTERS).ok("root role");
    root.add_user("alice", "access,kube-masters", "visitor", PASSWORD);
    let mut lo = ClusterOpts::new("solo");
    lo.node = false;
    lo.env = vec![("SSL_CERT_FILE".into(), root.web_ca().display().to_string())];
    let leaf = Cluster::start(lo);
    leaf.create("roles.yaml", &format!("{VISITOR}---\n{KUBE_ADMIN}")).ok("leaf roles");
    let token = root.trusted_cluster_token("5m");
    let role_map = "    - remote: \"access\"\n      local: [\"visitor\", \"kube-admin\"]\n";
    leaf.create("tc.yaml", &tc_yaml(&root.opts.name, &token, &root, true, role_map)).ok("trust");
    root.wait_remote_status("solo", "online", T);

    // The API server is reachable only from the agent's machine; the agent has no port of its
    // own and dials the leaf's proxy.
    let api = KubeApi::start("solo-k8s");
    let section = format!(
        "kubernetes_service:\n  enabled: yes\n  kubeconfig_file: {}\n  kube_cluster_name: solo-k8s\n  labels:\n    site: basement\n",
        api.kubeconfig().display()
    );
    let agent = e2e::NodeProc::join_kube(&leaf, "kube-agent", &section);
    let listed = wait_for("the agent's Kubernetes cluster at the leaf", T, || {
        let o = leaf.tctl(&["get", "kube_clusters", "--format=json"]);
        (o.code == 0 && o.stdout.contains("solo-k8s")).then_some(o.json())
    });
    assert_eq!(listed[0]["spec"]["hostname"], "kube-agent", "{listed}");
    assert_eq!(listed[0]["spec"]["tunnel"], true, "{listed}");
    assert!(leaf.tctl(&["get", "nodes", "--format=text"]).stdout.lines().all(|l| !l.contains("kube-agent")), "--roles=kube serves no SSH");

    let mut alice = Tsh::new("alice-kube-solo");
    alice.login(&root, "alice", PASSWORD).ok("alice signs in");
    with_kubeconfig(&mut alice);
    let kc = alice.home.path().join("kubeconfig");
    let ls = alice.run(&["kube", "ls", "--cluster=solo"]);
    assert!(ls.ok("kube ls").contains("site=basement"), "{ls:?}");
    alice.run(&["kube", "login", "--cluster=solo", "solo-k8s"]).ok("kube login");
    let pods = kubectl(&kc, &["get", "pods"], &[]);
    assert!(pods.ok("kubectl through root, leaf and the agent's tunnel").contains("web"), "{pods:?}");
    let r = api.requests().into_iter().rev().find(|r| r["path"] == "/api/v1/namespaces/default/pods").expect("the API server was asked");
    assert_eq!(r["impersonate_user"], serde_json::json!(["alice-k8s"]));
    let exec = kubectl(&kc, &["exec", "web", "--", "sh", "-c", "exit 4"], &[]);
    assert_eq!(exec.code, 4, "{exec:?}");
    // The agent audits into the leaf's log, with the leaf's mapped roles.
    let ev = wait_for("the agent's kube.request in the leaf's log", T, || {
        leaf.events().into_iter().find(|e| e["event"] == "kube.request" && e["request_path"] == "/api/v1/namespaces/default/pods")
    });
    assert_eq!(ev["user"], "remote-alice-teleport-solo.example.com");
    assert!(ev["roles"].as_array().unwrap().iter().any(|x| x == "kube-admin"), "{ev}");
    assert!(leaf.events().iter().any(|e| e["event"] == "exec" && e["exitCode"] == "4"));
    // Its refusals are the leaf's too.
    let denied = kubectl(&kc, &["get", "pods", "--as=root"], &[]);
    assert!(denied.stderr.contains("user header \"root\" is not allowed"), "{denied:?}");
    drop(agent);
}

#[test]
fn exec_over_spdy_passes_through_both_hops_and_kubectl_falls_back_to_it() {
    // east's API server refuses WebSocket for exec (as some do, OpenShift among them).
    let mut f = federation_with("spdy", &["--no-websocket"]);
    with_kubeconfig(&mut f.alice);
    let kc = f.kubeconfig(&f.alice);
    f.alice.run(&["kube", "login", "--cluster=east", "east"]).ok("kube login");
    // kubectl tries WebSocket, is refused by the API server (the refusal passes through), and
    // falls back to SPDY, which passes through too.
    let exec = kubectl(&kc, &["exec", "web", "--", "sh", "-c", "echo over-spdy-$((2+2)); echo err >&2; exit 2"], &[]);
    assert_eq!(exec.code, 2, "{exec:?}");
    assert!(exec.stdout.contains("over-spdy-4") && exec.stderr.contains("err"), "{exec:?}");
    let upgrades: Vec<String> = f
        .east_api
        .requests()
        .into_iter()
        .filter(|r| r["path"] == "/api/v1/namespaces/default/pods/web/exec")
        .map(|r| format!("{} {}", r["status"], r["upgrade"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(upgrades, ["400 ", "101 spdy/3.1"], "WebSocket refused, then SPDY");
    let ev = wait_for("the exec's audit over SPDY", T, || {
        f.east.events().into_iter().find(|e| e["event"] == "exec" && e["command"].as_str().is_some_and(|c| c.contains("over-spdy")))
    });
    assert_eq!(ev["exitCode"], "2", "the exit code read from SPDY's error stream: {ev}");
    // A session with a terminal over SPDY is recorded like one over WebSocket: no way around
    // the recording by choosing the older protocol.
    let mut cmd = std::process::Command::new("kubectl");
    cmd.args(["exec", "-it", "web", "--", "sh"]).env("KUBECONFIG", &kc).env("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false");
    let mut term = e2e::PtyTsh::start_command(cmd);
    term.type_keys("echo SPDY-TTY-$((3*3))\r");
    term.wait_for("SPDY-TTY-9", T);
    term.type_keys("exit 6\r");
    let (text, code) = term.finish(T);
    assert_eq!(code, 6, "{text}");
    let rec = wait_for("the SPDY session's recording", T, || {
        let v = f.alice.run(&["recordings", "ls", "--cluster=east", "-f", "json"]).json();
        v.as_array().and_then(|a| a.iter().find(|r| r["interactive"] == true).cloned())
    });
    let play = f.alice.run(&["play", "--cluster=east", rec["sid"].as_str().unwrap()]);
    assert!(play.ok("tsh play").contains("SPDY-TTY-9"), "{play:?}");
    let end = wait_for("session.end over SPDY", T, || {
        f.east.events().into_iter().find(|e| e["event"] == "session.end" && e["sid"] == rec["sid"])
    });
    assert_eq!(end["exitCode"], "6");
    // kubectl port-forward through both hops (WebSocket refused, SPDY): a local port reaches
    // the pod's (the stand-in's echo server), audited as `port` on the leaf.
    let ip = e2e::free_ip(&[18080]);
    let mut pf = std::process::Command::new("kubectl")
        .args(["port-forward", "--address", &ip, "pod/web", "18080:80"])
        .env("KUBECONFIG", &kc)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut conn = wait_for("the forwarded port", T, || std::net::TcpStream::connect((ip.as_str(), 18080)).ok());
    conn.set_read_timeout(Some(T)).unwrap();
    std::io::Write::write_all(&mut conn, b"ping through the trust\n").unwrap();
    let mut got = vec![0u8; 23];
    std::io::Read::read_exact(&mut conn, &mut got).unwrap();
    assert_eq!(&got, b"ping through the trust\n");
    drop(conn);
    let _ = pf.kill();
    let _ = pf.wait();
    let port = wait_for("the port-forward's audit", T, || f.east.events().into_iter().find(|e| e["event"] == "port"));
    assert_eq!(port["code"], "T3003I");
    assert_eq!(port["kubernetes_pod_name"], "web");

    // An older kubectl speaks only SPDY: stdin through both hops.
    let cat = e2e::run(
        std::path::Path::new("kubectl"),
        &["exec", "-i", "web", "--", "cat"],
        &[("KUBECONFIG", kc.to_str().unwrap()), ("KUBECTL_REMOTE_COMMAND_WEBSOCKETS", "false")],
        Some("spdy-stdin\n"),
        T,
    );
    assert!(cat.ok("kubectl exec -i over SPDY").contains("spdy-stdin"), "{cat:?}");
    drop(f.west);
}
