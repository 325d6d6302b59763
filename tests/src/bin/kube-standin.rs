//! A **stand-in** for a Kubernetes API server, for tests on machines where no real one can run
//! (no registry reachable here ships kube-apiserver, envtest, kwok or k3s). It speaks the API
//! the way the real `kubectl` uses it, and no more:
//!
//! - TLS with client-certificate authentication (its own CA; CN = user, O = group);
//! - discovery: `/version`, `/api`, `/apis`, `/api/v1`;
//! - namespaces (list, get) and pods (list, get, create, delete, watch), pod logs (`follow`);
//! - exec and attach over WebSocket (`v5.channel.k8s.io`, `v4.channel.k8s.io`): the command
//!   really runs here (on a terminal of its own with `tty=true`), its output on channels 1 and
//!   2, its exit status on channel 3;
//! - impersonation as the API server does it: only a user the policy lets impersonate
//!   (group `impersonators`) may send `Impersonate-*`, and then RBAC applies to the
//!   impersonated user and groups: `system:masters` may do everything, `viewers` may get,
//!   list and watch, `developers` everything in namespace `dev`; anyone else is Forbidden.
//!
//! Every request is appended to `<dir>/requests.jsonl` (method, path, the authenticated user,
//! every `Impersonate-*` header, the effective user and groups, the status), so tests can check
//! who the API server was asked to act as. Exec and attach speak SPDY/3.1 too (kubectl's
//! fallback; `--no-websocket` refuses WebSocket as some API servers do). Not here:
//! port-forward, the OpenAPI schema.
//!
//! `kube-standin --listen 127.0.0.9:6443 --dir DIR --name east` writes `DIR/kubeconfig` (for a
//! `kubernetes_service`: CN `teleport`, group `impersonators`) and `DIR/admin.kubeconfig`
//! (`system:masters`, for direct `kubectl`), then prints `ready` and serves until killed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use shared::certs::{TlsCertParams, new_ca_cert, new_tls_key, sign_tls_cert, spki_pem};

type Tls = rustls::StreamOwned<rustls::ServerConnection, TcpStream>;

struct State {
    name: String,
    /// Where every pod's ports lead: an echo server of this process.
    echo: std::net::SocketAddr,
    /// Refuse WebSocket for exec (`--no-websocket`): clients fall back to SPDY.
    no_websocket: bool,
    dir: PathBuf,
    pods: Mutex<BTreeMap<(String, String), Value>>,
    /// Bumped on every change (watchers wait on it).
    version: Mutex<u64>,
    changed: Condvar,
    log: Mutex<std::fs::File>,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |flag: &str| args.iter().position(|a| a == flag).and_then(|i| args.get(i + 1)).cloned();
    let listen = arg("--listen").expect("--listen host:port");
    let dir = PathBuf::from(arg("--dir").expect("--dir DIR"));
    let name = arg("--name").unwrap_or_else(|| "standin".into());
    std::fs::create_dir_all(&dir).unwrap();
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let now = time::OffsetDateTime::now_utc();
    let ca_key = new_tls_key().unwrap();
    let ca_pem = new_ca_cert(&ca_key, &format!("{name}-kube-ca"), "kube", now, Duration::from_secs(86400 * 30)).unwrap();
    let ca_key_pem = ca_key.serialize_pem();
    let issue = |cn: &str, org: &str, sans: Vec<String>, server: bool| {
        let key = new_tls_key().unwrap();
        let p = TlsCertParams {
            common_name: cn.into(),
            organization: org.into(),
            sans,
            identity_json: None,
            client: !server,
            server,
            not_before: now - Duration::from_secs(60),
            not_after: now + Duration::from_secs(86400 * 30),
        };
        (sign_tls_cert(&ca_pem, &ca_key_pem, &spki_pem(&key), &p).unwrap(), key.serialize_pem())
    };
    let host = listen.rsplit_once(':').map(|(h, _)| h.to_string()).unwrap();
    let (srv_cert, srv_key) = issue("kube-apiserver", "", vec![host.clone(), "kubernetes.default".into()], true);
    let kubeconfig = |cn: &str, org: &str| {
        let (c, k) = issue(cn, org, vec![], false);
        let b = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: {name}\nclusters:\n- name: {name}\n  cluster:\n    server: https://{listen}\n    certificate-authority-data: {}\nusers:\n- name: {cn}\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: {name}\n  context:\n    cluster: {name}\n    user: {cn}\n",
            b(&ca_pem),
            b(&c),
            b(&k)
        )
    };
    std::fs::write(dir.join("kubeconfig"), kubeconfig("teleport", "impersonators")).unwrap();
    std::fs::write(dir.join("admin.kubeconfig"), kubeconfig("admin", "system:masters")).unwrap();

    let mut roots = rustls::RootCertStore::empty();
    for (_, der) in shared::certs::pem_blocks(&ca_pem) {
        roots.add(CertificateDer::from(der)).unwrap();
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder(Arc::new(roots)).build().unwrap();
    let chain: Vec<CertificateDer<'static>> =
        shared::certs::pem_blocks(&srv_cert).into_iter().map(|(_, d)| CertificateDer::from(d)).collect();
    let key_der = shared::certs::pem_blocks(&srv_key).into_iter().next().unwrap().1;
    let mut cfg = rustls::ServerConfig::builder()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, PrivateKeyDer::Pkcs8(key_der.into()))
        .unwrap();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let cfg = Arc::new(cfg);

    let mut pods = BTreeMap::new();
    for (ns, pod) in [("default", "web"), ("default", "db"), ("dev", "api")] {
        pods.insert((ns.to_string(), pod.to_string()), pod_json(ns, pod, &name));
    }
    // Every pod's ports: one echo server (what a port-forward reaches).
    let echo_listener = TcpListener::bind("127.0.0.1:0").expect("echo listener");
    let echo = echo_listener.local_addr().expect("echo address");
    std::thread::spawn(move || {
        for conn in echo_listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut buf = [0u8; 16 * 1024];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0 || conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let state = Arc::new(State {
        echo,
        no_websocket: args.iter().any(|a| a == "--no-websocket"),
        name,
        dir: dir.clone(),
        pods: Mutex::new(pods),
        version: Mutex::new(1),
        changed: Condvar::new(),
        log: Mutex::new(std::fs::OpenOptions::new().create(true).append(true).open(dir.join("requests.jsonl")).unwrap()),
    });
    let listener = TcpListener::bind(&listen).expect("bind");
    println!("ready");
    let _ = std::io::stdout().flush();
    for tcp in listener.incoming().flatten() {
        let cfg = cfg.clone();
        let state = state.clone();
        std::thread::spawn(move || {
            let _ = tcp.set_nodelay(true);
            let Ok(conn) = rustls::ServerConnection::new(cfg) else { return };
            let tls = rustls::StreamOwned::new(conn, tcp);
            serve(tls, &state);
        });
    }
}

fn pod_json(ns: &str, name: &str, cluster: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "uid": format!("{cluster}-{ns}-{name}"), "resourceVersion": "1",
                     "creationTimestamp": "2026-01-01T00:00:00Z", "labels": {"cluster": cluster}},
        "spec": {"containers": [{"name": "main", "image": "standin", "stdin": true, "tty": true}], "nodeName": format!("{cluster}-node")},
        "status": {"phase": "Running", "containerStatuses": [{"name": "main", "ready": true, "restartCount": 0, "image": "standin", "imageID": "", "started": true, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}
    })
}

struct Req {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Req {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    fn all(&self, name: &str) -> Vec<String> {
        self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone()).collect()
    }
    fn param(&self, name: &str) -> Vec<String> {
        self.query.split('&').filter_map(|kv| kv.split_once('=')).filter(|(k, _)| *k == name).map(|(_, v)| decode(v)).collect()
    }
}

fn decode(v: &str) -> String {
    let mut out = Vec::new();
    let b = v.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(x) = u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(x);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn read_request(r: &mut BufReader<Tls>) -> Option<Req> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let (path, query) = target.split_once('?').map(|(p, q)| (p.to_string(), q.to_string())).unwrap_or((target, String::new()));
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
    }
    let mut req = Req { method, path, query, headers, body: Vec::new() };
    if let Some(n) = req.header("content-length").and_then(|v| v.parse::<usize>().ok()) {
        let mut body = vec![0u8; n.min(16 << 20)];
        r.read_exact(&mut body).ok()?;
        req.body = body;
    } else if req.header("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim(), 16).ok()?;
            let mut chunk = vec![0u8; n + 2];
            r.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            req.body.extend_from_slice(&chunk[..n]);
        }
    }
    Some(req)
}

fn respond(w: &mut Tls, code: u16, body: &Value) {
    let text = body.to_string();
    let reason = match code {
        200 => "OK",
        201 => "Created",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        _ => "Error",
    };
    let _ = write!(w, "HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}", text.len());
    let _ = w.flush();
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message, "reason": reason, "code": code})
}

/// Who the request acts as: (user, groups), after impersonation; or a Forbidden message.
fn effective(req: &Req, cert_user: &str, cert_groups: &[String]) -> Result<(String, Vec<String>), String> {
    let users = req.all("Impersonate-User");
    let groups = req.all("Impersonate-Group");
    let others: Vec<&String> = req
        .headers
        .iter()
        .map(|(n, _)| n)
        .filter(|n| n.to_ascii_lowercase().starts_with("impersonate-"))
        .filter(|n| !n.eq_ignore_ascii_case("impersonate-user") && !n.eq_ignore_ascii_case("impersonate-group"))
        .collect();
    if users.is_empty() && groups.is_empty() && others.is_empty() {
        let mut g = cert_groups.to_vec();
        g.push("system:authenticated".into());
        return Ok((cert_user.to_string(), g));
    }
    if !cert_groups.iter().any(|g| g == "impersonators" || g == "system:masters") {
        return Err(format!(
            "users \"{}\" is forbidden: User \"{cert_user}\" cannot impersonate resource \"users\" in API group \"\" at the cluster scope",
            users.first().cloned().unwrap_or_default()
        ));
    }
    if users.len() != 1 {
        return Err("requested impersonation needs exactly one Impersonate-User".into());
    }
    Ok((users[0].clone(), groups))
}

fn allowed(groups: &[String], verb: &str, ns: &str) -> bool {
    groups.iter().any(|g| match g.as_str() {
        "system:masters" => true,
        "viewers" => ["get", "list", "watch"].contains(&verb),
        "developers" => ns == "dev",
        _ => false,
    })
}

fn serve(tls: Tls, state: &State) {
    let mut r = BufReader::new(tls);
    // The handshake happens on the first read.
    let Some(mut first) = read_request(&mut r) else { return };
    let (cert_user, cert_groups) = {
        let conn = &r.get_ref().conn;
        let der = conn.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec()).unwrap_or_default();
        subject(&der)
    };
    loop {
        let req = first;
        let upgrade = req.header("upgrade").map(|u| u.to_ascii_lowercase());
        let outcome = effective(&req, &cert_user, &cert_groups);
        let mut record = json!({
            "method": req.method, "path": req.path, "query": req.query, "cert_user": cert_user, "cert_groups": cert_groups,
            "impersonate_user": req.all("Impersonate-User"), "impersonate_group": req.all("Impersonate-Group"),
            "impersonate_other": req.headers.iter().filter(|(n, _)| { let l = n.to_ascii_lowercase(); l.starts_with("impersonate-") && l != "impersonate-user" && l != "impersonate-group" }).map(|(n, v)| format!("{n}: {v}")).collect::<Vec<_>>(),
            "cluster": state.name,
        });
        let (user, groups) = match outcome {
            Ok(v) => v,
            Err(m) => {
                record["status"] = json!(403);
                log(state, &record);
                respond(r.get_mut(), 403, &status(403, "Forbidden", &m));
                match read_request(&mut r) {
                    Some(n) => {
                        first = n;
                        continue;
                    }
                    None => return,
                }
            }
        };
        record["user"] = json!(user);
        record["groups"] = json!(groups);
        if upgrade.is_some() {
            let tls = r.into_inner();
            exec(tls, &req, state, &user, &groups, record);
            return;
        }
        let code = handle(r.get_mut(), &req, state, &user, &groups);
        record["status"] = json!(code);
        log(state, &record);
        match read_request(&mut r) {
            Some(n) => first = n,
            None => return,
        }
    }
}

fn log(state: &State, record: &Value) {
    if let Ok(mut f) = state.log.lock() {
        let _ = writeln!(f, "{record}");
    }
}

fn subject(der: &[u8]) -> (String, Vec<String>) {
    use x509_parser::prelude::*;
    let Ok((_, cert)) = parse_x509_certificate(der) else { return (String::new(), vec![]) };
    let cn = cert.subject().iter_common_name().next().and_then(|a| a.as_str().ok()).unwrap_or_default().to_string();
    let orgs = cert.subject().iter_organization().filter_map(|a| a.as_str().ok()).map(String::from).collect();
    (cn, orgs)
}

fn forbidden(w: &mut Tls, user: &str, verb: &str, resource: &str, ns: &str) -> u16 {
    let where_ = if ns.is_empty() { "at the cluster scope".to_string() } else { format!("in the namespace \"{ns}\"") };
    let m = format!("{resource} is forbidden: User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"\" {where_}");
    respond(w, 403, &status(403, "Forbidden", &m));
    403
}

fn handle(w: &mut Tls, req: &Req, state: &State, user: &str, groups: &[String]) -> u16 {
    let path = req.path.trim_end_matches('/');
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let watch = req.param("watch").iter().any(|v| v == "true" || v == "1");
    match (req.method.as_str(), segs.as_slice()) {
        ("GET", ["version"]) => {
            respond(w, 200, &json!({"major": "1", "minor": "32", "gitVersion": "v1.32.0-standin", "platform": "linux/amd64"}));
            200
        }
        ("GET", ["api"]) => {
            respond(
                w,
                200,
                &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}]}),
            );
            200
        }
        ("GET", ["apis"]) => {
            respond(w, 200, &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": []}));
            200
        }
        ("GET", ["api", "v1"]) => {
            let r = |name: &str, kind: &str, ns: bool, verbs: &[&str], short: &[&str]| json!({"name": name, "singularName": "", "namespaced": ns, "kind": kind, "verbs": verbs, "shortNames": short});
            respond(
                w,
                200,
                &json!({"kind": "APIResourceList", "groupVersion": "v1", "resources": [
                    r("namespaces", "Namespace", false, &["get", "list", "watch"], &["ns"]),
                    r("pods", "Pod", true, &["create", "delete", "get", "list", "watch"], &["po"]),
                    r("pods/exec", "PodExecOptions", true, &["create", "get"], &[]),
                    r("pods/attach", "PodAttachOptions", true, &["create", "get"], &[]),
                    r("pods/log", "Pod", true, &["get"], &[]),
                ]}),
            );
            200
        }
        ("GET", ["api", "v1", "namespaces"]) => {
            if !allowed(groups, "list", "") {
                return forbidden(w, user, "list", "namespaces", "");
            }
            let names: std::collections::BTreeSet<String> = state.pods.lock().unwrap().keys().map(|(ns, _)| ns.clone()).collect();
            let items: Vec<Value> = names.iter().map(|n| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": n, "creationTimestamp": "2026-01-01T00:00:00Z"}, "status": {"phase": "Active"}})).collect();
            respond(w, 200, &json!({"apiVersion": "v1", "kind": "NamespaceList", "metadata": {"resourceVersion": "1"}, "items": items}));
            200
        }
        ("GET", ["api", "v1", "namespaces", ns]) => {
            if !allowed(groups, "get", ns) {
                return forbidden(w, user, "get", "namespaces", "");
            }
            respond(w, 200, &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}, "status": {"phase": "Active"}}));
            200
        }
        ("GET", ["api", "v1", "namespaces", ns, "pods"]) => {
            let verb = if watch { "watch" } else { "list" };
            if !allowed(groups, verb, ns) {
                return forbidden(w, user, verb, "pods", ns);
            }
            if watch {
                watch_pods(w, state, ns, req.header("accept").is_some_and(|a| a.contains("as=Table")));
                return 200;
            }
            let items: Vec<Value> = state.pods.lock().unwrap().iter().filter(|((n, _), _)| n == ns).map(|(_, p)| p.clone()).collect();
            let rv = state.version.lock().unwrap().to_string();
            if req.header("accept").is_some_and(|a| a.contains("as=Table")) {
                // What `kubectl get` asks for: the server prints the columns.
                respond(w, 200, &table(&items, &rv, true));
                return 200;
            }
            respond(w, 200, &json!({"apiVersion": "v1", "kind": "PodList", "metadata": {"resourceVersion": rv}, "items": items}));
            200
        }
        ("POST", ["api", "v1", "namespaces", ns, "pods"]) => {
            if !allowed(groups, "create", ns) {
                return forbidden(w, user, "create", "pods", ns);
            }
            let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
                respond(w, 400, &status(400, "BadRequest", "the body is not a pod"));
                return 400;
            };
            let name = body["metadata"]["name"].as_str().unwrap_or("unnamed").to_string();
            let pod = pod_json(ns, &name, &state.name);
            state.pods.lock().unwrap().insert((ns.to_string(), name), pod.clone());
            bump(state);
            respond(w, 201, &pod);
            201
        }
        ("GET", ["api", "v1", "namespaces", ns, "pods", name]) => {
            if !allowed(groups, "get", ns) {
                return forbidden(w, user, "get", "pods", ns);
            }
            match state.pods.lock().unwrap().get(&(ns.to_string(), name.to_string())) {
                Some(p) => {
                    respond(w, 200, p);
                    200
                }
                None => {
                    respond(w, 404, &status(404, "NotFound", &format!("pods \"{name}\" not found")));
                    404
                }
            }
        }
        ("DELETE", ["api", "v1", "namespaces", ns, "pods", name]) => {
            if !allowed(groups, "delete", ns) {
                return forbidden(w, user, "delete", "pods", ns);
            }
            let removed = state.pods.lock().unwrap().remove(&(ns.to_string(), name.to_string()));
            bump(state);
            match removed {
                Some(p) => {
                    respond(w, 200, &p);
                    200
                }
                None => {
                    respond(w, 404, &status(404, "NotFound", &format!("pods \"{name}\" not found")));
                    404
                }
            }
        }
        ("GET", ["api", "v1", "namespaces", ns, "pods", name, "log"]) => {
            if !allowed(groups, "get", ns) {
                return forbidden(w, user, "get", "pods/log", ns);
            }
            let follow = req.param("follow").iter().any(|v| v == "true");
            let _ = write!(w, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n");
            let lines = if follow { 5 } else { 3 };
            for i in 1..=lines {
                let line = format!("{name} log line {i}\n");
                if write!(w, "{:x}\r\n{line}\r\n", line.len()).is_err() || w.flush().is_err() {
                    return 200;
                }
                if follow {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            let _ = write!(w, "0\r\n\r\n");
            let _ = w.flush();
            200
        }
        _ => {
            respond(
                w,
                404,
                &status(404, "NotFound", &format!("the server could not find the requested resource ({} {})", req.method, req.path)),
            );
            404
        }
    }
}

fn bump(state: &State) {
    *state.version.lock().unwrap() += 1;
    state.changed.notify_all();
}

/// Pods as a `Table` (what `kubectl get` asks for: the server prints the columns).
fn table(items: &[Value], rv: &str, columns: bool) -> Value {
    let col = |name: &str, format: &str| json!({"name": name, "type": "string", "format": format, "description": "", "priority": 0});
    let rows: Vec<Value> = items
        .iter()
        .map(|p| json!({"cells": [p["metadata"]["name"], "1/1", p["status"]["phase"], 0, "1d"], "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": p["metadata"]}}))
        .collect();
    let cols = if columns {
        json!([col("Name", "name"), col("Ready", ""), col("Status", ""), col("Restarts", ""), col("Age", "")])
    } else {
        json!([])
    };
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": rv}, "columnDefinitions": cols, "rows": rows})
}

/// A watch: the current pods as ADDED, then changes, for at most a minute.
fn watch_pods(w: &mut Tls, state: &State, ns: &str, as_table: bool) {
    let _ = write!(w, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
    let mut known: BTreeMap<String, Value> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = 0u64;
    let mut sent = 0usize;
    loop {
        let pods: BTreeMap<String, Value> =
            state.pods.lock().unwrap().iter().filter(|((n, _), _)| n == ns).map(|((_, p), v)| (p.clone(), v.clone())).collect();
        let mut events = Vec::new();
        let object = |pod: &Value, first: bool| if as_table { table(std::slice::from_ref(pod), "1", first) } else { pod.clone() };
        for (name, pod) in &pods {
            if !known.contains_key(name) {
                events.push(json!({"type": "ADDED", "object": object(pod, sent == 0)}));
                sent += 1;
            }
        }
        for (name, pod) in &known {
            if !pods.contains_key(name) {
                events.push(json!({"type": "DELETED", "object": object(pod, sent == 0)}));
                sent += 1;
            }
        }
        known = pods;
        for e in events {
            let line = format!("{e}\n");
            if write!(w, "{:x}\r\n{line}\r\n", line.len()).is_err() || w.flush().is_err() {
                return;
            }
        }
        let v = state.version.lock().unwrap();
        if *v == seen || seen == 0 {
            seen = *v;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let (v, _) = state.changed.wait_timeout(v, left.min(Duration::from_secs(1))).unwrap();
            if *v != seen {
                seen = *v;
            }
        } else {
            seen = *v;
        }
        if Instant::now() >= deadline {
            break;
        }
    }
    let _ = write!(w, "0\r\n\r\n");
    let _ = w.flush();
}

/// exec / attach over WebSocket: runs the command here.
/// A command running for an exec: its output as (channel, bytes) messages, its input.
struct Running {
    child: std::process::Child,
    out: std::sync::mpsc::Receiver<(u8, Vec<u8>)>,
    stdin: Option<std::process::ChildStdin>,
}

impl Running {
    /// Runs the request's command in the pod's directory (on a terminal of its own with
    /// `tty=true`, as a container runtime gives one: util-linux's script).
    fn start(req: &Req, state: &State, ns: &str, pod: &str, sub: &str) -> std::io::Result<Running> {
        let mut command = req.param("command");
        if command.is_empty() || sub == "attach" {
            command = vec!["sh".into()];
        }
        let stdin_on = req.param("stdin").iter().any(|v| v == "true");
        if req.param("tty").iter().any(|v| v == "true") {
            let line = command.iter().map(|a| format!("'{}'", a.replace('\'', "'\\''"))).collect::<Vec<_>>().join(" ");
            command = vec!["script".into(), "-qfec".into(), line, "/dev/null".into()];
        }
        let workdir = state.dir.join("pods").join(ns).join(pod);
        let _ = std::fs::create_dir_all(&workdir);
        let mut child = std::process::Command::new(&command[0])
            .args(&command[1..])
            .current_dir(&workdir)
            .env("POD_NAME", pod)
            .env("KUBE_CLUSTER", &state.name)
            .stdin(if stdin_on { std::process::Stdio::piped() } else { std::process::Stdio::null() })
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()?;
        let (tx, rx) = std::sync::mpsc::channel::<(u8, Vec<u8>)>();
        for (ch, pipe) in [
            (1u8, child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>)),
            (2u8, child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>)),
        ] {
            let Some(mut pipe) = pipe else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match pipe.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if tx.send((ch, buf[..n].to_vec())).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
        let stdin = child.stdin.take();
        Ok(Running { child, out: rx, stdin })
    }

    /// Kills what is left and returns the exit status as the remote command protocol says it.
    fn finish(mut self) -> (i32, Value) {
        let _ = self.child.kill();
        let code = self.child.wait().ok().and_then(|s| s.code()).unwrap_or(1);
        let s = if code == 0 {
            json!({"metadata": {}, "status": "Success"})
        } else {
            json!({"metadata": {}, "status": "Failure", "message": format!("command terminated with non-zero exit code: exit status {code}"), "reason": "NonZeroExitCode", "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}})
        };
        (code, s)
    }
}

/// exec / attach: over WebSocket (`v5`/`v4.channel.k8s.io`), or SPDY/3.1 as older clients and
/// kubectl's fallback speak it. The command runs here.
fn exec(mut tls: Tls, req: &Req, state: &State, user: &str, groups: &[String], mut record: Value) {
    let segs: Vec<&str> = req.path.trim_start_matches('/').split('/').collect();
    let (ns, pod, sub) = match segs.as_slice() {
        ["api", "v1", "namespaces", ns, "pods", pod, sub] => (ns.to_string(), pod.to_string(), sub.to_string()),
        _ => {
            record["status"] = json!(404);
            log(state, &record);
            respond(&mut tls, 404, &status(404, "NotFound", "not an exec path"));
            return;
        }
    };
    let upgrade = req.header("upgrade").unwrap_or_default().to_ascii_lowercase();
    let websocket = upgrade == "websocket";
    let spdy = upgrade == "spdy/3.1";
    let protocols = req.header("sec-websocket-protocol").unwrap_or_default().to_string();
    let proto = ["v5.channel.k8s.io", "v4.channel.k8s.io"].into_iter().find(|p| protocols.split(',').any(|x| x.trim() == *p));
    let refuse = |tls: &mut Tls, mut record: Value, why: &str| {
        record["status"] = json!(400);
        log(state, &record);
        respond(tls, 400, &status(400, "BadRequest", why));
    };
    if sub == "portforward" {
        if !spdy {
            // kubectl tries WebSocket first and falls back to SPDY when refused.
            return refuse(&mut tls, record, "this stand-in forwards ports over SPDY/3.1 only");
        }
        if !allowed(groups, "create", &ns) {
            record["status"] = json!(403);
            log(state, &record);
            forbidden(&mut tls, user, "create", "pods/portforward", &ns);
            return;
        }
        record["status"] = json!(101);
        record["upgrade"] = json!(upgrade);
        log(state, &record);
        spdy_portforward(tls, state);
        return;
    }
    if !["exec", "attach"].contains(&sub.as_str()) {
        return refuse(&mut tls, record, "this stand-in serves exec, attach and portforward only");
    }
    if websocket && state.no_websocket {
        // As some API servers (and proxies before them) do: kubectl then falls back to SPDY.
        return refuse(&mut tls, record, "this API server does not speak WebSocket for exec (started with --no-websocket)");
    }
    if !(spdy || websocket && proto.is_some()) {
        return refuse(&mut tls, record, "upgrade to WebSocket (v5/v4.channel.k8s.io) or SPDY/3.1");
    }
    if !allowed(groups, "create", &ns) {
        record["status"] = json!(403);
        log(state, &record);
        forbidden(&mut tls, user, "create", "pods/exec", &ns);
        return;
    }
    if !state.pods.lock().unwrap().contains_key(&(ns.clone(), pod.clone())) {
        record["status"] = json!(404);
        log(state, &record);
        respond(&mut tls, 404, &status(404, "NotFound", &format!("pods \"{pod}\" not found")));
        return;
    }
    record["status"] = json!(101);
    record["upgrade"] = json!(upgrade);
    if spdy {
        log(state, &record);
        spdy_exec(tls, req, state, &ns, &pod, &sub);
        return;
    }
    let key = req.header("sec-websocket-key").unwrap_or_default();
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let _ = write!(
        tls,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: {}\r\n\r\n",
        proto.unwrap_or_default()
    );
    let _ = tls.flush();
    log(state, &record);
    let _ = tls.sock.set_read_timeout(Some(Duration::from_millis(20)));
    let mut ws = tungstenite::WebSocket::from_raw_socket(tls, tungstenite::protocol::Role::Server, None);
    let running = match Running::start(req, state, &ns, &pod, &sub) {
        Ok(r) => r,
        Err(e) => {
            let s = json!({"metadata": {}, "status": "Failure", "message": format!("exec: {e}"), "reason": "InternalError"});
            let mut m = vec![3u8];
            m.extend_from_slice(s.to_string().as_bytes());
            let _ = ws.send(tungstenite::Message::binary(m));
            let _ = ws.close(None);
            let _ = ws.flush();
            return;
        }
    };
    let mut running = running;
    let mut outputs_done = false;
    loop {
        // The client: stdin, resizes, close.
        match ws.read() {
            Ok(tungstenite::Message::Binary(b)) if !b.is_empty() => match b[0] {
                0 => {
                    if let Some(s) = running.stdin.as_mut() {
                        let _ = s.write_all(&b[1..]);
                        let _ = s.flush();
                    }
                }
                255 if b.get(1) == Some(&0) => running.stdin = None,
                _ => {}
            },
            Ok(tungstenite::Message::Close(_)) => break,
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
        // The command's output.
        loop {
            match running.out.try_recv() {
                Ok((ch, data)) => {
                    let mut m = vec![ch];
                    m.extend_from_slice(&data);
                    if ws.send(tungstenite::Message::binary(m)).is_err() {
                        let _ = running.child.kill();
                        return;
                    }
                }
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                    outputs_done = true;
                    break;
                }
            }
        }
        if outputs_done {
            break;
        }
    }
    let (_, s) = running.finish();
    let mut m = vec![3u8];
    m.extend_from_slice(s.to_string().as_bytes());
    let _ = ws.send(tungstenite::Message::binary(m));
    let _ = ws.close(Some(tungstenite::protocol::CloseFrame {
        code: tungstenite::protocol::frame::coding::CloseCode::Normal,
        reason: "".into(),
    }));
    for _ in 0..50 {
        match ws.read() {
            Err(tungstenite::Error::Io(e)) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) | Ok(tungstenite::Message::Close(_)) => break,
            Ok(_) => {}
        }
    }
    let _ = ws.flush();
}

/// SPDY/3.1 as kubectl's remote command client speaks it (moby/spdystream): the client opens
/// one stream per channel with SYN_STREAM and waits for each SYN_REPLY, in a fixed order
/// (error, stdin, stdout, stderr, resize; those the query asks for), so their kinds are known
/// without reading their header blocks. Data frames carry the bytes; FIN ends a direction. The
/// replies' header blocks are zlib streams of stored blocks, each ended by an empty one as a
/// sync flush does (no compression, no dictionary needed). No flow control: the client does not
/// ask for it.
fn spdy_exec(mut tls: Tls, req: &Req, state: &State, ns: &str, pod: &str, sub: &str) {
    let offered: Vec<String> =
        req.all("x-stream-protocol-version").iter().flat_map(|v| v.split(',').map(|x| x.trim().to_string())).collect();
    let Some(proto) = ["v4.channel.k8s.io", "v3.channel.k8s.io", "v2.channel.k8s.io"].into_iter().find(|p| offered.iter().any(|o| o == p))
    else {
        respond(&mut tls, 400, &status(400, "BadRequest", "no common remote command protocol"));
        return;
    };
    let _ = write!(
        tls,
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: {proto}\r\n\r\n"
    );
    let _ = tls.flush();
    let flag = |n: &str| req.param(n).iter().any(|v| v == "true" || v == "1");
    let tty = flag("tty");
    let mut kinds = vec!["error"];
    if flag("stdin") {
        kinds.push("stdin");
    }
    if flag("stdout") {
        kinds.push("stdout");
    }
    if flag("stderr") && !tty {
        kinds.push("stderr");
    }
    if tty {
        kinds.push("resize");
    }
    let _ = tls.sock.set_read_timeout(Some(Duration::from_millis(20)));
    let mut ids: BTreeMap<&str, u32> = BTreeMap::new();
    let mut by_id: BTreeMap<u32, &str> = BTreeMap::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut zlib_started = false;
    let mut running: Option<Running> = None;
    let deadline = Instant::now() + Duration::from_secs(300);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        if Instant::now() > deadline {
            break;
        }
        let Some(frames) = read_frames(&mut tls, &mut buf, &mut chunk) else { break };
        for frame in frames {
            let flags = frame[4];
            let body = &frame[8..];
            if frame[0] & 0x80 != 0 {
                let kind = u16::from_be_bytes([frame[2], frame[3]]);
                match kind {
                    // SYN_STREAM: the next channel in order; reply at once.
                    1 if body.len() >= 4 => {
                        let id = u32::from_be_bytes([body[0], body[1], body[2], body[3]]) & 0x7fff_ffff;
                        let which = kinds.get(ids.len()).copied().unwrap_or("unknown");
                        ids.insert(which, id);
                        by_id.insert(id, which);
                        let _ = tls.write_all(&syn_reply(id, !zlib_started));
                        zlib_started = true;
                        let _ = tls.flush();
                        if ids.len() == kinds.len() && running.is_none() {
                            running = Running::start(req, state, ns, pod, sub).ok();
                        }
                    }
                    // PING: echoed.
                    6 => {
                        let _ = tls.write_all(&control(6, 0, body));
                        let _ = tls.flush();
                    }
                    // GOAWAY: done.
                    7 => return,
                    _ => {}
                }
            } else {
                let id = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) & 0x7fff_ffff;
                if by_id.get(&id) == Some(&"stdin")
                    && let Some(r) = running.as_mut()
                {
                    if let Some(s) = r.stdin.as_mut() {
                        let _ = s.write_all(body);
                        let _ = s.flush();
                    }
                    if flags & 0x01 != 0 {
                        r.stdin = None;
                    }
                }
            }
        }
        // The command's output, until it is all sent.
        let mut done = false;
        if let Some(r) = running.as_mut() {
            loop {
                match r.out.try_recv() {
                    Ok((ch, data)) => {
                        let which = if ch == 1 || tty { "stdout" } else { "stderr" };
                        if let Some(id) = ids.get(which) {
                            let _ = tls.write_all(&data_frame(*id, 0, &data));
                        }
                    }
                    Err(std::sync::mpsc::TryRecvError::Empty) => break,
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => {
                        done = true;
                        break;
                    }
                }
            }
            let _ = tls.flush();
        }
        if done {
            let Some(r) = running.take() else { break };
            let (code, st) = r.finish();
            if let Some(id) = ids.get("error") {
                if code != 0 {
                    let _ = tls.write_all(&data_frame(*id, 0, st.to_string().as_bytes()));
                }
                let _ = tls.write_all(&data_frame(*id, 1, &[]));
            }
            for which in ["stdout", "stderr"] {
                if let Some(id) = ids.get(which) {
                    let _ = tls.write_all(&data_frame(*id, 1, &[]));
                }
            }
            let _ = tls.flush();
            // The client closes once it has read everything.
            for _ in 0..100 {
                match tls.read(&mut chunk) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                    Err(_) => return,
                }
            }
            return;
        }
    }
    if let Some(r) = running {
        let _ = r.finish();
    }
}

/// A SPDY/3 control frame.
fn control(kind: u16, flags: u8, body: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80, 0x03];
    f.extend_from_slice(&kind.to_be_bytes());
    f.push(flags);
    let len = body.len() as u32;
    f.extend_from_slice(&len.to_be_bytes()[1..]);
    f.extend_from_slice(body);
    f
}

/// A SPDY data frame (flag 1: FIN).
fn data_frame(id: u32, flags: u8, data: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(8 + data.len());
    f.extend_from_slice(&(id & 0x7fff_ffff).to_be_bytes());
    f.push(flags);
    let len = data.len() as u32;
    f.extend_from_slice(&len.to_be_bytes()[1..]);
    f.extend_from_slice(data);
    f
}

/// Reads what the client sent (waiting at most the socket's read timeout) and takes every
/// complete SPDY frame out of `buf`; `None` when the connection ended.
fn read_frames(tls: &mut Tls, buf: &mut Vec<u8>, chunk: &mut [u8]) -> Option<Vec<Vec<u8>>> {
    match tls.read(chunk) {
        Ok(0) => return None,
        Ok(n) => buf.extend_from_slice(&chunk[..n]),
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
        Err(_) => return None,
    }
    let mut frames = Vec::new();
    while buf.len() >= 8 {
        let len = (usize::from(buf[5]) << 16) | (usize::from(buf[6]) << 8) | usize::from(buf[7]);
        if buf.len() < 8 + len {
            break;
        }
        frames.push(buf.drain(..8 + len).collect());
    }
    Some(frames)
}

/// A SYN_REPLY with an empty header block: zlib stored blocks, each ended by an empty one as a
/// sync flush does (what makes the client's inflater hand over what it has).
fn syn_reply(id: u32, first: bool) -> Vec<u8> {
    let mut block = Vec::new();
    if first {
        block.extend_from_slice(&[0x78, 0x01]);
    }
    block.extend_from_slice(&[0x00, 0x04, 0x00, 0xfb, 0xff, 0, 0, 0, 0, 0x00, 0x00, 0x00, 0xff, 0xff]);
    let mut reply = id.to_be_bytes().to_vec();
    reply.extend_from_slice(&block);
    control(2, 0, &reply)
}

/// port-forward over SPDY/3.1 (`portforward.k8s.io`): each local connection kubectl accepts
/// opens two streams, error then data; the data stream is joined to the pod's port (here, the
/// echo server) until either side ends.
fn spdy_portforward(mut tls: Tls, state: &State) {
    let _ = write!(
        tls,
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: portforward.k8s.io\r\n\r\n"
    );
    let _ = tls.flush();
    let _ = tls.sock.set_read_timeout(Some(Duration::from_millis(20)));
    let (tx, rx) = std::sync::mpsc::channel::<(u32, Option<Vec<u8>>)>();
    let mut opened = 0usize;
    let mut error_of: BTreeMap<u32, u32> = BTreeMap::new();
    let mut targets: BTreeMap<u32, TcpStream> = BTreeMap::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline {
        let Some(frames) = read_frames(&mut tls, &mut buf, &mut chunk) else { break };
        for frame in frames {
            let body = &frame[8..];
            if frame[0] & 0x80 != 0 {
                match u16::from_be_bytes([frame[2], frame[3]]) {
                    1 if body.len() >= 4 => {
                        let id = u32::from_be_bytes([body[0], body[1], body[2], body[3]]) & 0x7fff_ffff;
                        let _ = tls.write_all(&syn_reply(id, opened == 0));
                        if opened % 2 == 1 {
                            // The data stream of the pair: join it to the pod's port.
                            error_of.insert(id, id - 2);
                            if let Ok(conn) = TcpStream::connect(state.echo) {
                                let mut reader = conn.try_clone().expect("clone");
                                targets.insert(id, conn);
                                let tx = tx.clone();
                                std::thread::spawn(move || {
                                    let mut b = vec![0u8; 32 * 1024];
                                    loop {
                                        match reader.read(&mut b) {
                                            Ok(0) | Err(_) => break,
                                            Ok(n) => {
                                                if tx.send((id, Some(b[..n].to_vec()))).is_err() {
                                                    return;
                                                }
                                            }
                                        }
                                    }
                                    let _ = tx.send((id, None));
                                });
                            }
                        }
                        opened += 1;
                        let _ = tls.flush();
                    }
                    6 => {
                        let _ = tls.write_all(&control(6, 0, body));
                        let _ = tls.flush();
                    }
                    7 => return,
                    _ => {}
                }
            } else {
                let id = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]) & 0x7fff_ffff;
                if let Some(t) = targets.get_mut(&id) {
                    let _ = t.write_all(body);
                    if frame[4] & 0x01 != 0 {
                        let _ = t.shutdown(std::net::Shutdown::Write);
                    }
                }
            }
        }
        while let Ok((id, data)) = rx.try_recv() {
            match data {
                Some(d) => {
                    let _ = tls.write_all(&data_frame(id, 0, &d));
                }
                None => {
                    let _ = tls.write_all(&data_frame(id, 1, &[]));
                    if let Some(e) = error_of.get(&id) {
                        let _ = tls.write_all(&data_frame(*e, 1, &[]));
                    }
                    targets.remove(&id);
                }
            }
        }
        let _ = tls.flush();
    }
}
