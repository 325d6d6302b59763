//! `tsh kube ls | login | credentials`: Kubernetes clusters of the root and its leaves, through
//! the root's proxy (reference `kube-app-db.md` §2.5, §2.6).
//!
//! `tsh kube login [--cluster=C] <kube>` writes one context, cluster and user entry named
//! `<C>-<kube>` into the kubeconfig (`$KUBECONFIG`'s first file, else `~/.kube/config`),
//! leaving every other entry alone: the server is the root's proxy with the TLS server name
//! its Kubernetes side answers to, the CA is the root's host CA, and the user runs `tsh kube
//! credentials`, which prints a short certificate for that route (cached until a minute before
//! it expires). `tsh logout` removes what tsh wrote.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use base64::Engine as _;
use serde_yaml_ng::{Mapping, Value};
use shared::api::{CertsResponse, ReissueRequest, path};
use shared::output::table;
use shared::resource::KubeCluster;

use super::{Global, parse_format};
use crate::context::Session;
use shared::output::Format;

/// The extension tsh tags its kubeconfig entries with: the profile (proxy host) they belong to.
const PROFILE_EXTENSION: &str = "kubeconfig.teleport.dev/profile-name";
/// The extension naming the Teleport cluster of an entry.
const CLUSTER_EXTENSION: &str = "kubeconfig.teleport.dev/teleport-cluster-name";
/// The extension naming the Kubernetes cluster of an entry.
const KUBE_EXTENSION: &str = "teleport.kube.name";

/// Kubernetes clusters.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// List the Kubernetes clusters you can reach.
    #[command(after_help = "Examples:\n  tsh kube ls\n  tsh kube ls --cluster=east\n  tsh kube ls --all -f json")]
    Ls(LsArgs),
    /// Write a kubeconfig entry for a Kubernetes cluster, then use kubectl.
    #[command(
        after_help = "Examples (from the guide):\n  tsh kube login --proxy=teleport.example.com --cluster=east east\n  kubectl get pods"
    )]
    Login(LoginArgs),
    /// Print credentials for kubectl (called by the kubeconfig tsh kube login writes).
    Credentials(CredentialsArgs),
}

#[derive(Debug, clap::Args)]
struct LsArgs {
    /// The Kubernetes clusters of the root and of every leaf you may see.
    #[arg(short = 'R', long)]
    all: bool,
    /// Output format: text, json or yaml.
    #[arg(short = 'f', long, default_value = "text", value_parser = parse_format)]
    format: Format,
    /// No headers.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Full labels.
    #[arg(short = 'v', long)]
    verbose: bool,
}

#[derive(Debug, clap::Args)]
struct LoginArgs {
    /// The Kubernetes cluster.
    #[arg(required_unless_present = "all")]
    kube_cluster: Option<String>,
    /// Every Kubernetes cluster of the selected cluster (the current context stays).
    #[arg(long, conflicts_with = "kube_cluster")]
    all: bool,
    /// The context name, instead of <cluster>-<kube cluster> ({{.ClusterName}} and {{.KubeName}} are replaced).
    #[arg(long)]
    set_context_name: Option<String>,
    /// Kubernetes user to impersonate (one of your roles' kubernetes_users).
    #[arg(long = "as")]
    as_user: Option<String>,
    /// Kubernetes groups to impersonate (among your roles' kubernetes_groups).
    #[arg(long = "as-groups", value_delimiter = ',')]
    as_groups: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct CredentialsArgs {
    /// The Kubernetes cluster.
    #[arg(long)]
    kube_cluster: String,
    /// The Teleport cluster that has it.
    #[arg(long)]
    teleport_cluster: String,
}

/// Runs the command.
pub async fn exec(a: Args, g: &Global, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    match a.cmd {
        Cmd::Ls(a) => ls(a, g, out, err).await,
        Cmd::Login(a) => login(a, g, out, err).await,
        Cmd::Credentials(a) => credentials(a, g, out).await,
    }
}

async fn list(session: &Session, cluster: &str) -> anyhow::Result<Vec<KubeCluster>> {
    let url = format!("{}/kube_cluster", path::RESOURCES);
    Ok(session.cluster_api(cluster)?.get(&url).await?)
}

fn labels_text(k: &KubeCluster, verbose: bool) -> String {
    let s = k.metadata.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(" ");
    if verbose || s.chars().count() <= 60 { s } else { format!("{}...", s.chars().take(57).collect::<String>()) }
}

async fn ls(a: LsArgs, g: &Global, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    let mut session = Session::load(g)?;
    session.require_valid()?;
    let selected = current_selection(&session);
    if a.all {
        let clusters: Vec<String> = session.visible_clusters().await?.into_iter().map(|c| c.cluster_name).collect();
        let url = format!("{}/kube_cluster", path::RESOURCES);
        let answers = session
            .per_cluster(&clusters, std::time::Duration::from_secs(10), |api| {
                let url = url.clone();
                async move { api.get::<Vec<KubeCluster>>(&url).await }
            })
            .await;
        let mut rows = Vec::new();
        let mut json_rows = Vec::new();
        for (cluster, r) in answers {
            match r {
                Ok(list) => {
                    for k in list {
                        rows.push(vec![
                            session.profile.web_proxy_addr.clone(),
                            cluster.clone(),
                            k.metadata.name.clone(),
                            labels_text(&k, a.verbose),
                        ]);
                        json_rows.push(serde_json::json!({"proxy": session.profile.web_proxy_addr, "cluster": cluster, "kube_cluster": k}));
                    }
                }
                Err(e) => writeln!(err, "WARNING: cluster {cluster}: {e}")?,
            }
        }
        return match a.format {
            Format::Json => Ok(write!(out, "{}", shared::output::json(&json_rows))?),
            Format::Yaml => Ok(write!(out, "{}", shared::yaml::to_yaml_stream(&json_rows))?),
            Format::Text => {
                let t = table(&["Proxy", "Cluster", "Kube Cluster Name", "Labels"], &rows);
                Ok(write!(out, "{}", if a.quiet { skip_header(&t) } else { t })?)
            }
        };
    }
    let cluster = session.resolve_target(g, err).await?;
    let list = list(&session, &cluster).await?;
    let is_selected = |k: &KubeCluster| selected.as_ref().is_some_and(|(c, n)| *c == cluster && *n == k.metadata.name);
    match a.format {
        Format::Json | Format::Yaml => {
            let rows: Vec<serde_json::Value> = list
                .iter()
                .map(|k| {
                    let labels = if k.metadata.labels.is_empty() { serde_json::Value::Null } else { serde_json::json!(k.metadata.labels) };
                    serde_json::json!({"kube_cluster_name": k.metadata.name, "labels": labels, "selected": is_selected(k)})
                })
                .collect();
            if a.format == Format::Json {
                write!(out, "{}", shared::output::json(&rows))?;
            } else {
                write!(out, "{}", shared::yaml::to_yaml_stream(&rows))?;
            }
        }
        Format::Text => {
            let rows: Vec<Vec<String>> = list
                .iter()
                .map(|k| vec![k.metadata.name.clone(), labels_text(k, a.verbose), if is_selected(k) { "*".into() } else { String::new() }])
                .collect();
            let t = table(&["Kube Cluster Name", "Labels", "Selected"], &rows);
            write!(out, "{}", if a.quiet { skip_header(&t) } else { t })?;
        }
    }
    Ok(())
}

fn skip_header(t: &str) -> String {
    t.lines().skip(2).map(|l| format!("{l}\n")).collect()
}

/// The kubeconfig tsh writes to: `$KUBECONFIG`'s first file, else `~/.kube/config`.
pub fn kubeconfig_path() -> PathBuf {
    if let Some(k) = std::env::var_os("KUBECONFIG").filter(|k| !k.is_empty())
        && let Some(first) = std::env::split_paths(&k).next()
    {
        return first;
    }
    std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from(".")).join(".kube").join("config")
}

fn load_config(path: &Path) -> anyhow::Result<Mapping> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => {
            let v: Value = serde_yaml_ng::from_str(&text).with_context(|| format!("{} is not a kubeconfig", path.display()))?;
            match v {
                Value::Mapping(m) => Ok(m),
                Value::Null => Ok(Mapping::new()),
                _ => bail!("{} is not a kubeconfig (not a YAML mapping)", path.display()),
            }
        }
        Ok(_) => Ok(Mapping::new()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Mapping::new()),
        Err(e) => Err(anyhow!("cannot read {}: {e}", path.display())),
    }
}

fn save_config(path: &Path, mut cfg: Mapping) -> anyhow::Result<()> {
    for (k, v) in [("apiVersion", "v1"), ("kind", "Config")] {
        if !cfg.contains_key(k) {
            cfg.insert(Value::from(k), Value::from(v));
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let text = serde_yaml_ng::to_string(&Value::Mapping(cfg))?;
    shared::profile::write_file(path, text.as_bytes(), 0o600)?;
    Ok(())
}

fn list_mut<'a>(cfg: &'a mut Mapping, key: &str) -> &'a mut Vec<Value> {
    if !matches!(cfg.get(key), Some(Value::Sequence(_))) {
        cfg.insert(Value::from(key), Value::Sequence(vec![]));
    }
    match cfg.get_mut(key) {
        Some(Value::Sequence(s)) => s,
        _ => unreachable!("just inserted"),
    }
}

fn upsert(list: &mut Vec<Value>, name: &str, entry: Value) {
    let mut named = Mapping::new();
    named.insert(Value::from("name"), Value::from(name));
    if let Value::Mapping(m) = entry {
        for (k, v) in m {
            named.insert(k, v);
        }
    }
    match list.iter_mut().find(|e| e.get("name").and_then(|n| n.as_str()) == Some(name)) {
        Some(e) => *e = Value::Mapping(named),
        None => list.push(Value::Mapping(named)),
    }
}

fn extensions(profile: &str, cluster: &str, kube: &str) -> Value {
    let ext = |name: &str, value: &str| {
        let mut m = Mapping::new();
        m.insert(Value::from("name"), Value::from(name));
        m.insert(Value::from("extension"), Value::from(value));
        Value::Mapping(m)
    };
    Value::Sequence(vec![ext(PROFILE_EXTENSION, profile), ext(CLUSTER_EXTENSION, cluster), ext(KUBE_EXTENSION, kube)])
}

fn ext_value<'a>(entry: &'a Value, inner: &str, name: &str) -> Option<&'a str> {
    entry
        .get(inner)?
        .get("extensions")?
        .as_sequence()?
        .iter()
        .find(|e| e.get("name").and_then(|n| n.as_str()) == Some(name))?
        .get("extension")?
        .as_str()
}

/// The Teleport and Kubernetes cluster of the kubeconfig's current context, when tsh wrote it.
fn current_selection(session: &Session) -> Option<(String, String)> {
    let cfg = load_config(&kubeconfig_path()).ok()?;
    let current = cfg.get("current-context")?.as_str()?;
    let ctx = cfg.get("contexts")?.as_sequence()?.iter().find(|c| c.get("name").and_then(|n| n.as_str()) == Some(current))?;
    if ext_value(ctx, "context", PROFILE_EXTENSION)? != session.name.as_deref().unwrap_or_default() {
        return None;
    }
    Some((ext_value(ctx, "context", CLUSTER_EXTENSION)?.to_string(), ext_value(ctx, "context", KUBE_EXTENSION)?.to_string()))
}

struct Entry<'a> {
    profile: &'a str,
    proxy: &'a str,
    ca_pem: &'a str,
    cluster: &'a str,
    kube: &'a str,
    context: String,
    tsh: &'a str,
    home: Option<String>,
    as_user: Option<&'a str>,
    as_groups: &'a [String],
}

fn write_entry(cfg: &mut Mapping, e: &Entry<'_>) {
    let b64 = base64::engine::general_purpose::STANDARD.encode(e.ca_pem.as_bytes());
    let mut cluster = Mapping::new();
    cluster.insert(Value::from("server"), Value::from(format!("https://{}", e.proxy)));
    cluster.insert(Value::from("certificate-authority-data"), Value::from(b64));
    cluster.insert(Value::from("tls-server-name"), Value::from(shared::kube::PROXY_SNI));
    cluster.insert(Value::from("extensions"), extensions(e.profile, e.cluster, e.kube));
    let mut c = Mapping::new();
    c.insert(Value::from("cluster"), Value::Mapping(cluster));
    upsert(list_mut(cfg, "clusters"), &e.context, Value::Mapping(c));

    let mut exec = Mapping::new();
    exec.insert(Value::from("apiVersion"), Value::from("client.authentication.k8s.io/v1beta1"));
    exec.insert(Value::from("command"), Value::from(e.tsh));
    let args = vec![
        Value::from("kube"),
        Value::from("credentials"),
        Value::from(format!("--kube-cluster={}", e.kube)),
        Value::from(format!("--teleport-cluster={}", e.cluster)),
        Value::from(format!("--proxy={}", e.proxy)),
    ];
    exec.insert(Value::from("args"), Value::Sequence(args));
    if let Some(h) = &e.home {
        let mut env = Mapping::new();
        env.insert(Value::from("name"), Value::from(shared::profile::ENV_HOME));
        env.insert(Value::from("value"), Value::from(h.as_str()));
        exec.insert(Value::from("env"), Value::Sequence(vec![Value::Mapping(env)]));
    }
    exec.insert(Value::from("interactiveMode"), Value::from("IfAvailable"));
    exec.insert(Value::from("provideClusterInfo"), Value::from(false));
    let mut user = Mapping::new();
    user.insert(Value::from("exec"), Value::Mapping(exec));
    if let Some(a) = e.as_user {
        user.insert(Value::from("as"), Value::from(a));
    }
    if !e.as_groups.is_empty() {
        user.insert(Value::from("as-groups"), Value::Sequence(e.as_groups.iter().map(|g| Value::from(g.as_str())).collect()));
    }
    let mut u = Mapping::new();
    u.insert(Value::from("user"), Value::Mapping(user));
    upsert(list_mut(cfg, "users"), &e.context, Value::Mapping(u));

    let mut context = Mapping::new();
    context.insert(Value::from("cluster"), Value::from(e.context.as_str()));
    context.insert(Value::from("user"), Value::from(e.context.as_str()));
    context.insert(Value::from("extensions"), extensions(e.profile, e.cluster, e.kube));
    let mut c = Mapping::new();
    c.insert(Value::from("context"), Value::Mapping(context));
    upsert(list_mut(cfg, "contexts"), &e.context, Value::Mapping(c));
}

/// Removes the kubeconfig entries tsh wrote for `profile` (`tsh logout`); says how many.
pub fn remove_entries(profile: Option<&str>) -> anyhow::Result<usize> {
    let path = kubeconfig_path();
    if !path.exists() {
        return Ok(0);
    }
    let mut cfg = load_config(&path)?;
    let ours = |v: &Value, inner: &str| ext_value(v, inner, PROFILE_EXTENSION).is_some_and(|p| profile.is_none_or(|want| want == p));
    let names: Vec<String> = cfg
        .get("contexts")
        .and_then(|c| c.as_sequence())
        .map(|s| s.iter().filter(|c| ours(c, "context")).filter_map(|c| c.get("name")?.as_str().map(String::from)).collect())
        .unwrap_or_default();
    if names.is_empty() {
        return Ok(0);
    }
    let is_named = |v: &Value| v.get("name").and_then(|n| n.as_str()).is_some_and(|n| names.iter().any(|x| x == n));
    for key in ["contexts", "clusters", "users"] {
        list_mut(&mut cfg, key).retain(|v| !is_named(v));
    }
    if cfg.get("current-context").and_then(|c| c.as_str()).is_some_and(|c| names.iter().any(|n| n == c)) {
        cfg.insert(Value::from("current-context"), Value::from(""));
    }
    save_config(&path, cfg)?;
    Ok(names.len())
}

async fn login(a: LoginArgs, g: &Global, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    let mut session = Session::load(g)?;
    session.require_valid()?;
    let profile = session.name.clone().ok_or_else(|| anyhow!("tsh kube login needs a profile (tsh login), not an identity file"))?;
    let cluster = session.resolve_target(g, err).await?;
    let available = list(&session, &cluster).await?;
    let wanted: Vec<String> = match &a.kube_cluster {
        Some(k) => {
            if !available.iter().any(|c| c.metadata.name == *k) {
                bail!(
                    "kubernetes cluster {k:?} not found in cluster {cluster:?}; 'tsh kube ls --cluster={cluster}' lists the ones you can reach"
                );
            }
            vec![k.clone()]
        }
        None => available.iter().map(|c| c.metadata.name.clone()).collect(),
    };
    if wanted.is_empty() {
        bail!("cluster {cluster:?} has no Kubernetes cluster you can reach");
    }
    // A certificate now: any refusal shows here, not in kubectl's first call.
    for k in &wanted {
        kube_cert(&session, &cluster, k).await?;
    }
    let root = session.profile.cluster.clone();
    let ca_pem: String = session
        .creds
        .host_cas
        .iter()
        .filter(|c| c.cluster_name == root && c.ca_type == "host")
        .flat_map(|c| c.tls_certs.iter().cloned())
        .collect();
    if ca_pem.is_empty() {
        bail!("no host certificate authority known for cluster {root:?}; run 'tsh login' again");
    }
    let tsh = std::env::current_exe().context("cannot find the tsh executable")?.to_string_lossy().into_owned();
    let home = std::env::var(shared::profile::ENV_HOME).ok().filter(|h| !h.is_empty());
    let path = kubeconfig_path();
    let mut cfg = load_config(&path)?;
    let mut last = String::new();
    for k in &wanted {
        let context = match &a.set_context_name {
            Some(t) => t.replace("{{.ClusterName}}", &cluster).replace("{{.KubeName}}", k),
            None => format!("{cluster}-{k}"),
        };
        write_entry(
            &mut cfg,
            &Entry {
                profile: &profile,
                proxy: &session.profile.web_proxy_addr,
                ca_pem: &ca_pem,
                cluster: &cluster,
                kube: k,
                context: context.clone(),
                tsh: &tsh,
                home: home.clone(),
                as_user: a.as_user.as_deref(),
                as_groups: &a.as_groups,
            },
        );
        last = context;
    }
    if !a.all {
        cfg.insert(Value::from("current-context"), Value::from(last.as_str()));
    }
    save_config(&path, cfg)?;
    if a.all {
        writeln!(out, "Logged into all Kubernetes clusters of {cluster:?} ({}).", wanted.join(", "))?;
    } else {
        writeln!(out, "Logged into Kubernetes cluster {:?}. Try 'kubectl version' to test the connection.", wanted[0])?;
    }
    Ok(())
}

/// Where a Kubernetes certificate and its key are cached.
fn cache_paths(session: &Session, cluster: &str, kube: &str) -> Option<(PathBuf, PathBuf)> {
    let name = session.name.as_deref()?;
    let dir = shared::profile::ProfileStore::from_env().profile_path(name).join("kube").join(cluster);
    Some((dir.join(format!("{kube}.crt")), dir.join(format!("{kube}.key"))))
}

/// A certificate for `kube` in `cluster`: the cached one while it has a minute left, else a
/// new one from the root.
async fn kube_cert(session: &Session, cluster: &str, kube: &str) -> anyhow::Result<(String, String, time::OffsetDateTime)> {
    shared::names::check_name("kubernetes cluster name", kube)?;
    shared::names::check_name("cluster name", cluster)?;
    let cache = cache_paths(session, cluster, kube);
    if let Some((crt, key)) = &cache
        && let (Ok(c), Ok(k)) = (std::fs::read_to_string(crt), std::fs::read_to_string(key))
        && let Ok(der) = shared::certs::first_pem_der(&c, "CERTIFICATE")
        && let Ok(p) = shared::certs::parse_peer_cert(&der)
    {
        let expires = shared::timefmt::from_unix(p.not_after);
        if expires - time::Duration::minutes(1) > time::OffsetDateTime::now_utc() {
            return Ok((c, k, expires));
        }
    }
    let (_ssh, tls, public) = shared::certs::new_key_pair()?;
    let route = if cluster == session.profile.cluster { None } else { Some(cluster.to_string()) };
    let r: CertsResponse = session
        .root_api()?
        .post(
            path::REISSUE,
            &ReissueRequest {
                keys: public,
                route_to_cluster: route,
                ttl_seconds: 0,
                kubernetes_cluster: Some(kube.into()),
                route_to_database: None,
                access_requests: session.creds.active_requests(),
            },
        )
        .await
        .map_err(|e| anyhow!("{}", e.message))?;
    let key = tls.serialize_pem();
    let der = shared::certs::first_pem_der(&r.tls_cert, "CERTIFICATE")?;
    let expires = shared::timefmt::from_unix(shared::certs::parse_peer_cert(&der)?.not_after);
    if let Some((crt, key_path)) = &cache {
        if let Some(dir) = crt.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        shared::profile::write_file(key_path, key.as_bytes(), 0o600)?;
        shared::profile::write_file(crt, r.tls_cert.as_bytes(), 0o600)?;
    }
    Ok((r.tls_cert, key, expires))
}

async fn credentials(a: CredentialsArgs, g: &Global, out: &mut dyn Write) -> anyhow::Result<()> {
    let session = Session::load(g)?;
    session.require_valid().map_err(|e| anyhow!("{e}; then run kubectl again"))?;
    let (cert, key, expires) = kube_cert(&session, &a.teleport_cluster, &a.kube_cluster).await?;
    let stamp = shared::timefmt::rfc3339(expires - time::Duration::minutes(1));
    let cred = serde_json::json!({
        "kind": "ExecCredential",
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "spec": {"interactive": false},
        "status": {"expirationTimestamp": stamp, "clientCertificateData": cert, "clientKeyData": key},
    });
    writeln!(out, "{cred}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_written_and_removed_leave_others_alone() {
        let mut cfg: Mapping = serde_yaml_ng::from_str(
            "apiVersion: v1\nkind: Config\ncurrent-context: other\nclusters:\n- name: other\n  cluster: {server: 'https://x'}\ncontexts:\n- name: other\n  context: {cluster: other, user: other}\nusers:\n- name: other\n  user: {token: t}\n",
        )
        .unwrap();
        let e = Entry {
            profile: "root.example.com",
            proxy: "root.example.com:3080",
            ca_pem: "PEM",
            cluster: "east",
            kube: "east",
            context: "east-east".into(),
            tsh: "/usr/bin/tsh",
            home: None,
            as_user: None,
            as_groups: &[],
        };
        write_entry(&mut cfg, &e);
        write_entry(&mut cfg, &e);
        let ctxs = cfg.get("contexts").unwrap().as_sequence().unwrap();
        assert_eq!(ctxs.len(), 2, "written once, replaced the second time");
        let ours = ctxs.iter().find(|c| c.get("name").unwrap().as_str() == Some("east-east")).unwrap();
        assert_eq!(ext_value(ours, "context", KUBE_EXTENSION), Some("east"));
        assert_eq!(ext_value(ours, "context", CLUSTER_EXTENSION), Some("east"));
        let user =
            cfg.get("users").unwrap().as_sequence().unwrap().iter().find(|u| u.get("name").unwrap().as_str() == Some("east-east")).unwrap();
        let args: Vec<&str> = user["user"]["exec"]["args"].as_sequence().unwrap().iter().filter_map(|a| a.as_str()).collect();
        assert_eq!(args, ["kube", "credentials", "--kube-cluster=east", "--teleport-cluster=east", "--proxy=root.example.com:3080"]);
        let cluster = cfg
            .get("clusters")
            .unwrap()
            .as_sequence()
            .unwrap()
            .iter()
            .find(|u| u.get("name").unwrap().as_str() == Some("east-east"))
            .unwrap();
        assert_eq!(cluster["cluster"]["tls-server-name"].as_str(), Some(shared::kube::PROXY_SNI));
    }
}
