//! `tsh apps ls|login|config|logout` (reference `kube-app-db.md` §3.4): the applications of the
//! root and its leaves the user may reach, and a certificate for one of them. The certificate
//! (`<profile>/apps/<cluster>/<app>.{crt,key,json}`) is issued by the root for an app session;
//! the cluster that serves the app decides, and `tsh apps logout` ends the session.

use std::io::Write;

use anyhow::{Context as _, anyhow, bail};
use serde::{Deserialize, Serialize};
use shared::api::path;
use shared::output::table;
use shared::resource::App;

use super::{Global, parse_format};
use crate::context::Session;
use shared::output::Format;

/// Applications.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// List the applications you can reach.
    #[command(after_help = "Examples:\n  tsh apps ls\n  tsh apps ls --cluster=leaf.example.com\n  tsh apps ls --all -f json")]
    Ls(LsArgs),
    /// Get a certificate for an application (the cluster that serves it decides).
    #[command(after_help = "Examples:\n  tsh apps login grafana\n  tsh apps login --cluster=leaf.example.com grafana")]
    Login(LoginArgs),
    /// Show how to reach an application you logged in to.
    #[command(
        after_help = "Examples:\n  tsh apps config\n  tsh apps config --format=uri grafana\n  curl $(tsh apps config --format=curl grafana)"
    )]
    Config(ConfigArgs),
    /// End application sessions (all of them without a name).
    #[command(after_help = "Examples:\n  tsh apps logout grafana\n  tsh apps logout")]
    Logout(LogoutArgs),
}

#[derive(Debug, clap::Args)]
struct LoginArgs {
    /// The application's name (as 'tsh apps ls' lists it).
    app: String,
}

#[derive(Debug, clap::Args)]
struct ConfigArgs {
    /// The application (default: the only one you are logged in to).
    app: Option<String>,
    /// What to print: uri, ca, cert, key, curl, json or yaml (default: a summary).
    #[arg(long, default_value = "default")]
    format: String,
}

#[derive(Debug, clap::Args)]
struct LogoutArgs {
    /// The application (default: every one).
    app: Option<String>,
}

/// What tsh keeps of an app login, beside its certificate and key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AppLogin {
    /// The app session.
    pub session_id: String,
    /// The app.
    pub name: String,
    /// Its cluster.
    pub cluster: String,
    /// Its public address in its cluster.
    pub public_addr: String,
    /// Where to reach it: `https://<address>` (the proxy's, for an app without a DNS name there).
    pub uri: String,
    /// `tcp://` apps are reached with `tsh proxy app`.
    pub tcp: bool,
    /// The certificate's end (Unix seconds).
    pub expires: i64,
    /// The certificate file.
    pub cert: String,
    /// The key file.
    pub key: String,
}

/// The directory of a profile's app logins.
fn apps_dir(session: &Session) -> anyhow::Result<std::path::PathBuf> {
    let name = session.name.as_deref().ok_or_else(|| anyhow!("app logins need a profile; run 'tsh login' first"))?;
    Ok(shared::profile::ProfileStore::from_env().profile_path(name).join("apps"))
}

/// Every app login of the profile, with where its record is.
pub fn logins(session: &Session) -> Vec<(std::path::PathBuf, AppLogin)> {
    let Ok(dir) = apps_dir(session) else { return Vec::new() };
    super::read_logins(&dir, |l: &AppLogin| (l.cluster.clone(), l.name.clone()))
}

/// A live login for `app` in `cluster`, if tsh holds one with a minute left.
pub fn live_login(session: &Session, cluster: &str, app: &str) -> Option<AppLogin> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    logins(session).into_iter().map(|(_, l)| l).find(|l| l.cluster == cluster && l.name == app && l.expires - 60 > now)
}

/// Logs in to `app` of `cluster`: the app as that cluster lists it to the user (an app they
/// may not use is not found, as in Teleport), a session and certificate from the root.
pub async fn login_to(session: &Session, cluster: &str, app: &str) -> anyhow::Result<AppLogin> {
    shared::names::check_name("app name", app).map_err(|e| anyhow!("{}", e.message))?;
    let url = format!("{}/app", path::RESOURCES);
    let apps: Vec<App> = session.cluster_api(cluster)?.get(&url).await.map_err(|e| anyhow!("{}", e.message))?;
    let found = apps.into_iter().find(|a| a.metadata.name == app).ok_or_else(|| {
        anyhow!("app {app:?} not found in cluster {cluster:?}; 'tsh apps ls --cluster={cluster}' lists the apps you may use")
    })?;
    let root = session.root_api()?;
    let ping: shared::api::PingResponse = root.get(path::PING).await.map_err(|e| anyhow!("{}", e.message))?;
    let proxy_public =
        if ping.proxy.ssh.public_addr.is_empty() { session.profile.web_proxy_addr.clone() } else { ping.proxy.ssh.public_addr };
    let fqdn = shared::app::fqdn_at(&found.metadata.name, &found.spec.public_addr, &proxy_public);
    let (_ssh, tls, public) = shared::certs::new_key_pair()?;
    let req = shared::api::CreateAppSessionRequest {
        name: found.metadata.name.clone(),
        public_addr: found.spec.public_addr.clone(),
        cluster_name: cluster.to_string(),
        fqdn: fqdn.clone().unwrap_or_default(),
        tls_public_key: public.tls_public_key,
        web_session: None,
    };
    let s: shared::api::AppSession = root.post(path::APP_SESSIONS, &req).await.map_err(|e| anyhow!("{}", e.message))?;
    let port = proxy_public.rsplit_once(':').map(|(_, p)| p.to_string()).unwrap_or_else(|| "443".into());
    let uri = match &fqdn {
        Some(f) if port == "443" => format!("https://{f}"),
        Some(f) => format!("https://{f}:{port}"),
        None => format!("https://{}", session.profile.web_proxy_addr),
    };
    let dir = apps_dir(session)?.join(cluster);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (crt, key) = (dir.join(format!("{app}.crt")), dir.join(format!("{app}.key")));
    shared::profile::write_file(&key, tls.serialize_pem().as_bytes(), 0o600)?;
    shared::profile::write_file(&crt, s.tls_cert.as_bytes(), 0o600)?;
    let login = AppLogin {
        session_id: s.session_id,
        name: found.metadata.name.clone(),
        cluster: cluster.to_string(),
        public_addr: found.spec.public_addr.clone(),
        uri,
        tcp: found.spec.uri.starts_with("tcp://"),
        expires: s.expires,
        cert: crt.display().to_string(),
        key: key.display().to_string(),
    };
    shared::profile::write_file(&dir.join(format!("{app}.json")), serde_json::to_string_pretty(&login)?.as_bytes(), 0o600)?;
    Ok(login)
}

/// The CA bundle that verifies the proxy's web certificate for curl: `SSL_CERT_FILE`, else the
/// system's.
fn ca_file() -> String {
    std::env::var("SSL_CERT_FILE").unwrap_or_else(|_| "/etc/ssl/certs/ca-certificates.crt".into())
}

fn curl_args(l: &AppLogin) -> String {
    format!("--cert {} --key {} {}", l.cert, l.key, l.uri)
}

async fn login(a: LoginArgs, g: &Global, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    let mut session = Session::load(g)?;
    session.require_valid()?;
    let cluster = session.resolve_target(g, err).await?;
    let l = login_to(&session, &cluster, &a.app).await?;
    if l.tcp {
        let flag = if cluster == session.profile.cluster { String::new() } else { format!("--cluster={cluster} ") };
        writeln!(out, "Logged into TCP app {}. Start the local TCP proxy for it:\n\n  tsh proxy app {flag}{}\n", l.name, l.name)?;
        writeln!(out, "Then connect to the application through this proxy.")?;
    } else {
        writeln!(
            out,
            "Logged into app {}. Example curl command:\n\ncurl \\\n  --cert {} \\\n  --key {} \\\n  {}",
            l.name, l.cert, l.key, l.uri
        )?;
    }
    Ok(())
}

/// The login `name` names, or the only one.
fn pick(session: &Session, name: Option<&str>) -> anyhow::Result<AppLogin> {
    let all: Vec<AppLogin> = logins(session).into_iter().map(|(_, l)| l).collect();
    match name {
        Some(n) => all.into_iter().find(|l| l.name == n).ok_or_else(|| anyhow!("not logged into app {n:?}; run 'tsh apps login {n}'")),
        None => match all.len() {
            0 => bail!("not logged into any app; run 'tsh apps login <app>'"),
            1 => Ok(all.into_iter().next().unwrap_or_else(|| unreachable!())),
            _ => bail!(
                "logged into several apps ({}); name one: tsh apps config <app>",
                all.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(", ")
            ),
        },
    }
}

async fn config(a: ConfigArgs, g: &Global, out: &mut dyn Write) -> anyhow::Result<()> {
    let session = Session::load(g)?;
    let l = pick(&session, a.app.as_deref())?;
    let ca = ca_file();
    let curl = format!("curl --cacert {ca} {}", curl_args(&l));
    let json =
        serde_json::json!({"name": l.name, "cluster": l.cluster, "uri": l.uri, "ca": ca, "cert": l.cert, "key": l.key, "curl": curl});
    match a.format.as_str() {
        "uri" => writeln!(out, "{}", l.uri)?,
        "ca" => writeln!(out, "{ca}")?,
        "cert" => writeln!(out, "{}", l.cert)?,
        "key" => writeln!(out, "{}", l.key)?,
        "curl" => writeln!(out, "{curl}")?,
        "json" => write!(out, "{}", shared::output::json(&json))?,
        "yaml" => write!(out, "{}", shared::yaml::to_yaml(&json))?,
        "default" => {
            let rows = [("Name:", &l.name), ("Cluster:", &l.cluster), ("URI:", &l.uri), ("CA:", &ca), ("Cert:", &l.cert), ("Key:", &l.key)];
            for (k, v) in rows {
                writeln!(out, "{k:<9} {v}")?;
            }
        }
        other => bail!("unsupported format {other:?}; use one of: uri, ca, cert, key, curl, json, yaml"),
    }
    Ok(())
}

/// Ends app sessions at the root and removes their files; `Ok(n)` logged out.
pub async fn logout_apps(session: &Session, name: Option<&str>) -> anyhow::Result<usize> {
    let mut n = 0;
    for (json_path, l) in logins(session) {
        if name.is_some_and(|x| x != l.name) {
            continue;
        }
        if let Ok(api) = session.root_api() {
            let _ = api.delete(&format!("{}/{}", path::APP_SESSIONS, l.session_id)).await;
        }
        for f in [json_path.clone(), l.cert.clone().into(), l.key.clone().into()] {
            let _ = std::fs::remove_file(f);
        }
        n += 1;
    }
    Ok(n)
}

async fn logout(a: LogoutArgs, g: &Global, out: &mut dyn Write) -> anyhow::Result<()> {
    let session = Session::load(g)?;
    let n = logout_apps(&session, a.app.as_deref()).await?;
    match (&a.app, n) {
        (Some(app), 0) => bail!("not logged into app {app:?}"),
        (Some(app), _) => writeln!(out, "Logged out of app {app}.")?,
        (None, 0) => writeln!(out, "Not logged into any app.")?,
        (None, _) => writeln!(out, "Logged out of all apps.")?,
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
struct LsArgs {
    /// The applications of the root and of every leaf you may see.
    #[arg(short = 'R', long)]
    all: bool,
    /// Output format: text, json or yaml.
    #[arg(short = 'f', long, default_value = "text", value_parser = parse_format)]
    format: Format,
    /// Also show each app's URI.
    #[arg(short = 'v', long)]
    verbose: bool,
}

/// Runs the command.
pub async fn exec(a: Args, g: &Global, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    match a.cmd {
        Cmd::Ls(a) => ls(a, g, out, err).await,
        Cmd::Login(a) => login(a, g, out, err).await,
        Cmd::Config(a) => config(a, g, out).await,
        Cmd::Logout(a) => logout(a, g, out).await,
    }
}

/// Where users reach an app: its `public_addr`, else `<name>.<root proxy host>`.
fn public_addr(a: &App, proxy: &str) -> String {
    if a.spec.public_addr.is_empty() {
        format!("{}.{}", a.metadata.name, shared::client::host_of(proxy))
    } else {
        a.spec.public_addr.clone()
    }
}

fn row(a: &App, proxy: &str, verbose: bool, active: bool) -> Vec<String> {
    let labels = a.metadata.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
    let name = if active { format!("> {}", a.metadata.name) } else { a.metadata.name.clone() };
    let mut r = vec![name, a.metadata.description.clone().unwrap_or_default(), a.kind_label().into(), public_addr(a, proxy)];
    if verbose {
        r.push(a.spec.uri.clone());
    }
    r.push(labels);
    r
}

async fn ls(a: LsArgs, g: &Global, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    let mut session = Session::load(g)?;
    session.require_valid()?;
    let proxy = session.profile.web_proxy_addr.clone();
    let url = format!("{}/app", path::RESOURCES);
    let mut head = vec!["Application", "Description", "Type", "Public Address"];
    if a.verbose {
        head.push("URI");
    }
    head.push("Labels");
    if a.all {
        let clusters: Vec<String> = session.visible_clusters().await?.into_iter().map(|c| c.cluster_name).collect();
        let answers = session
            .per_cluster(&clusters, std::time::Duration::from_secs(10), |api| {
                let url = url.clone();
                async move { api.get::<Vec<App>>(&url).await }
            })
            .await;
        let (mut rows, mut json) = (Vec::new(), Vec::new());
        for (cluster, r) in answers {
            match r {
                Ok(apps) => {
                    for app in apps {
                        let mut line = vec![proxy.clone(), cluster.clone()];
                        let active = live_login(&session, &cluster, &app.metadata.name).is_some();
                        line.extend(row(&app, &proxy, a.verbose, active));
                        rows.push(line);
                        json.push(serde_json::json!({"proxy": proxy, "cluster": cluster, "app": app}));
                    }
                }
                Err(e) => writeln!(err, "WARNING: cluster {cluster}: {e}")?,
            }
        }
        let mut all_head = vec!["Proxy", "Cluster"];
        all_head.extend(head);
        return match a.format {
            Format::Json => Ok(write!(out, "{}", shared::output::json(&json))?),
            Format::Yaml => Ok(write!(out, "{}", shared::yaml::to_yaml_stream(&json))?),
            Format::Text => Ok(write!(out, "{}", table(&all_head, &rows))?),
        };
    }
    let cluster = session.resolve_target(g, err).await?;
    let apps: Vec<App> = session.cluster_api(&cluster)?.get(&url).await?;
    match a.format {
        Format::Json => write!(out, "{}", shared::output::json(&apps))?,
        Format::Yaml => {
            write!(out, "{}", shared::yaml::to_yaml_stream(&apps.iter().filter_map(|x| serde_json::to_value(x).ok()).collect::<Vec<_>>()))?
        }
        Format::Text => {
            let rows: Vec<Vec<String>> =
                apps.iter().map(|x| row(x, &proxy, a.verbose, live_login(&session, &cluster, &x.metadata.name).is_some())).collect();
            write!(out, "{}", table(&head, &rows))?;
        }
    }
    Ok(())
}
