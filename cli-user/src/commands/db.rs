//! `tsh db ls|login|connect|config|env|logout` (reference `kube-app-db.md` §4.3): the databases
//! of the root and its leaves the user may reach, with the users they may connect as, as the
//! cluster that owns each decides (a leaf: the roles its role map gives the user), and a
//! certificate for one of them. The certificate (`<profile>/dbs/<cluster>/<db>.{crt,key,cas,json}`)
//! is the root's, routed to the database; the user and database in it are defaults a client may
//! override, and the cluster that serves the database checks what the client asks for.
//! `psql` connects to the root proxy's PostgreSQL endpoint (the web port, or
//! `postgres_public_addr`) with `sslmode=verify-full` against the root's host CA.

use std::io::Write;

use anyhow::{Context as _, anyhow, bail};
use serde::{Deserialize, Serialize};
use shared::api::{DbListing, path};
use shared::output::table;

use super::{Global, parse_format};
use crate::context::Session;
use shared::output::Format;

/// Databases.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// List the databases you can reach.
    #[command(after_help = "Examples:\n  tsh db ls\n  tsh db ls --cluster=leaf.example.com\n  tsh db ls --all -f json")]
    Ls(LsArgs),
    /// Get a certificate for a database (the cluster that serves it decides who you may be there).
    #[command(
        after_help = "Examples:\n  tsh db login --db-user=alice --db-name=dev pg\n  tsh db login --cluster=leaf.example.com --db-user=alice pg"
    )]
    Login(LoginArgs),
    /// Connect to a database with its own client (psql), logging in first when needed.
    #[command(
        after_help = "Examples:\n  tsh db connect --cluster=leaf.example.com --db-user=alice --db-name=dev pg\n  echo 'select 1' | tsh db connect pg\n  tsh db connect pg -- -c 'select now()'"
    )]
    Connect(ConnectArgs),
    /// Show how to connect to a database you logged in to.
    #[command(after_help = "Examples:\n  tsh db config pg\n  tsh db config --format=cmd pg\n  tsh db config --format=json pg")]
    Config(ConfigArgs),
    /// Print the environment variables PostgreSQL clients read for a database you logged in to.
    #[command(after_help = "Example:\n  eval $(tsh db env pg)\n  psql")]
    Env(EnvArgs),
    /// Remove database certificates (all of them without a name).
    #[command(after_help = "Examples:\n  tsh db logout pg\n  tsh db logout")]
    Logout(LogoutArgs),
}

#[derive(Debug, clap::Args)]
struct LoginArgs {
    /// The database (as 'tsh db ls' lists it).
    db: String,
    /// The database user to connect as by default.
    #[arg(long = "db-user")]
    db_user: Option<String>,
    /// The database name to connect to by default.
    #[arg(long = "db-name")]
    db_name: Option<String>,
}

#[derive(Debug, clap::Args)]
struct ConnectArgs {
    /// The database (default: the only one you are logged in to).
    db: Option<String>,
    /// The database user (default: the login's).
    #[arg(long = "db-user")]
    db_user: Option<String>,
    /// The database name (default: the login's).
    #[arg(long = "db-name")]
    db_name: Option<String>,
    /// Arguments for psql, after `--`.
    #[arg(last = true)]
    args: Vec<String>,
}

#[derive(Debug, clap::Args)]
struct ConfigArgs {
    /// The database (default: the only one you are logged in to).
    db: Option<String>,
    /// Output format: text, cmd (the psql command), uri or json.
    #[arg(short = 'f', long, default_value = "text")]
    format: String,
}

#[derive(Debug, clap::Args)]
struct EnvArgs {
    /// The database (default: the only one you are logged in to).
    db: Option<String>,
}

#[derive(Debug, clap::Args)]
struct LogoutArgs {
    /// The database (default: every one).
    db: Option<String>,
}

/// What tsh keeps of a database login, beside its certificate, key and CA files.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DbLogin {
    /// The database.
    pub name: String,
    /// Its cluster.
    pub cluster: String,
    /// `postgres`.
    pub protocol: String,
    /// The default database user.
    #[serde(default)]
    pub user: String,
    /// The default database name.
    #[serde(default)]
    pub database: String,
    /// The proxy's PostgreSQL endpoint (`host:port`).
    pub proxy: String,
    /// The certificate's end (Unix seconds).
    pub expires: i64,
    /// The certificate file.
    pub cert: String,
    /// The key file.
    pub key: String,
    /// The CA file that verifies the proxy (the root's host CA).
    pub ca: String,
}

impl DbLogin {
    /// The proxy's host.
    pub fn host(&self) -> String {
        shared::client::host_of(&self.proxy)
    }

    /// The proxy's port.
    pub fn port(&self) -> String {
        self.proxy.rsplit_once(':').map(|(_, p)| p.to_string()).unwrap_or_else(|| "3080".into())
    }

    /// PostgreSQL's connection URI for user `user` and database `db` (empty: the login's).
    pub fn uri(&self, user: &str, db: &str) -> String {
        let enc = |s: &str| {
            s.bytes()
                .map(|b| if b.is_ascii_alphanumeric() || b"-._~".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
                .collect::<String>()
        };
        let user = if user.is_empty() { &self.user } else { user };
        let db = if db.is_empty() { &self.database } else { db };
        let at = if user.is_empty() { String::new() } else { format!("{}@", enc(user)) };
        let host = self.host();
        let host = if host.contains(':') { format!("[{host}]") } else { host };
        format!(
            "postgres://{at}{host}:{}/{}?sslrootcert={}&sslcert={}&sslkey={}&sslmode=verify-full",
            self.port(),
            enc(db),
            enc(&self.ca),
            enc(&self.cert),
            enc(&self.key)
        )
    }
}

/// The directory of a profile's database logins.
fn dbs_dir(session: &Session) -> anyhow::Result<std::path::PathBuf> {
    let name = session.name.as_deref().ok_or_else(|| anyhow!("database logins need a profile; run 'tsh login' first"))?;
    Ok(shared::profile::ProfileStore::from_env().profile_path(name).join("dbs"))
}

/// Every database login of the profile, with where its record is.
pub fn logins(session: &Session) -> Vec<(std::path::PathBuf, DbLogin)> {
    let Ok(dir) = dbs_dir(session) else { return Vec::new() };
    super::read_logins(&dir, |l: &DbLogin| (l.cluster.clone(), l.name.clone()))
}

/// A live login for `db` in `cluster`, if tsh holds one with a minute left.
pub fn live_login(session: &Session, cluster: &str, db: &str) -> Option<DbLogin> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    logins(session).into_iter().map(|(_, l)| l).find(|l| l.cluster == cluster && l.name == db && l.expires - 60 > now)
}

/// Logs in to `db` of `cluster`: the database as that cluster lists it to the user (one they
/// may not reach is not found), a certificate from the root routed to it.
pub async fn login_to(session: &Session, cluster: &str, db: &str, user: Option<&str>, name: Option<&str>) -> anyhow::Result<DbLogin> {
    shared::names::check_name("database name", db).map_err(|e| anyhow!("{}", e.message))?;
    let list: Vec<DbListing> = session.cluster_api(cluster)?.get(path::DBS).await.map_err(|e| anyhow!("{}", e.message))?;
    let found = list.into_iter().find(|l| l.db.metadata.name == db).ok_or_else(|| {
        anyhow!("database {db:?} not found in cluster {cluster:?}; 'tsh db ls --cluster={cluster}' lists the databases you may use")
    })?;
    // One allowed user (not a wildcard) is the default, as in Teleport.
    let user = match user {
        Some(u) => u.to_string(),
        None if found.users.len() == 1 && found.users[0] != "*" => found.users[0].clone(),
        None => String::new(),
    };
    let root = session.root_api()?;
    let ping: shared::api::PingResponse = root.get(path::PING).await.map_err(|e| anyhow!("{}", e.message))?;
    let proxy = if ping.proxy.db.postgres_public_addr.is_empty() {
        session.profile.web_proxy_addr.clone()
    } else {
        ping.proxy.db.postgres_public_addr.clone()
    };
    let (_ssh, tls, public) = shared::certs::new_key_pair()?;
    let route = shared::identity::RouteToDatabase {
        service_name: db.to_string(),
        protocol: found.db.spec.protocol.clone(),
        username: user.clone(),
        database: name.unwrap_or_default().to_string(),
    };
    let req = shared::api::ReissueRequest {
        keys: public,
        route_to_cluster: (cluster != session.profile.cluster).then(|| cluster.to_string()),
        ttl_seconds: 0,
        kubernetes_cluster: None,
        route_to_database: Some(route.clone()),
        access_requests: session.creds.active_requests(),
    };
    let r: shared::api::CertsResponse = root.post(path::REISSUE, &req).await.map_err(|e| anyhow!("{}", e.message))?;
    let expires = shared::certs::parse_peer_cert(&shared::certs::first_pem_der(&r.tls_cert, "CERTIFICATE")?)?.not_after;
    let cas = match session.creds.cluster_trust(&session.profile.cluster)? {
        shared::client::ServerTrust::Pinned(p) => p.join(""),
        _ => bail!("no host certificate authority known for {}; run 'tsh login' again", session.profile.cluster),
    };
    let dir = dbs_dir(session)?.join(cluster);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let file = |ext: &str| dir.join(format!("{db}.{ext}"));
    shared::profile::write_file(&file("key"), tls.serialize_pem().as_bytes(), 0o600)?;
    shared::profile::write_file(&file("crt"), r.tls_cert.as_bytes(), 0o600)?;
    shared::profile::write_file(&file("cas"), cas.as_bytes(), 0o600)?;
    let login = DbLogin {
        name: db.to_string(),
        cluster: cluster.to_string(),
        protocol: route.protocol,
        user,
        database: route.database,
        proxy,
        expires,
        cert: file("crt").display().to_string(),
        key: file("key").display().to_string(),
        ca: file("cas").display().to_string(),
    };
    shared::profile::write_file(&file("json"), serde_json::to_string_pretty(&login)?.as_bytes(), 0o600)?;
    Ok(login)
}

/// The login `name` names (in the target cluster first), or the only one.
fn pick(session: &Session, cluster: &str, name: Option<&str>) -> anyhow::Result<DbLogin> {
    let all: Vec<DbLogin> = logins(session).into_iter().map(|(_, l)| l).collect();
    match name {
        Some(n) => {
            let mut found: Vec<DbLogin> = all.into_iter().filter(|l| l.name == n).collect();
            if let Some(i) = found.iter().position(|l| l.cluster == cluster) {
                return Ok(found.swap_remove(i));
            }
            match found.len() {
                0 => bail!("not logged into database {n:?}; run 'tsh db login {n}'"),
                1 => Ok(found.remove(0)),
                _ => bail!("logged into database {n:?} in several clusters; name one with --cluster"),
            }
        }
        None => match all.len() {
            0 => bail!("not logged into any database; run 'tsh db login <database>'"),
            1 => Ok(all.into_iter().next().unwrap_or_else(|| unreachable!())),
            _ => bail!("logged into several databases ({}); name one", all.iter().map(|l| l.name.as_str()).collect::<Vec<_>>().join(", ")),
        },
    }
}

async fn login(a: LoginArgs, g: &Global, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    let mut session = Session::load(g)?;
    session.require_valid()?;
    let cluster = session.resolve_target(g, err).await?;
    let l = login_to(&session, &cluster, &a.db, a.db_user.as_deref(), a.db_name.as_deref()).await?;
    let flag = if cluster == session.profile.cluster { String::new() } else { format!("--cluster={cluster} ") };
    writeln!(out, "Connection information for database \"{}\" has been saved.\n", l.name)?;
    writeln!(out, "You can now connect to it using the following command:\n\n  tsh db connect {flag}{}\n", l.name)?;
    writeln!(out, "Or view the connect command for the native database CLI client:\n\n  tsh db config {flag}--format=cmd {}\n", l.name)?;
    writeln!(out, "Or start a local proxy for database GUI clients:\n\n  tsh proxy db {flag}--tunnel {}\n", l.name)?;
    Ok(())
}

/// The `psql` command line for a login.
fn psql_args(l: &DbLogin, user: &str, db: &str) -> Vec<String> {
    vec!["psql".into(), l.uri(user, db)]
}

async fn connect(a: ConnectArgs, g: &Global, err: &mut dyn Write) -> anyhow::Result<()> {
    let mut session = Session::load(g)?;
    session.require_valid()?;
    let cluster = session.resolve_target(g, err).await?;
    let name = match &a.db {
        Some(n) => n.clone(),
        None => pick(&session, &cluster, None)?.name,
    };
    let l = match live_login(&session, &cluster, &name) {
        Some(l) => l,
        None => login_to(&session, &cluster, &name, a.db_user.as_deref(), a.db_name.as_deref()).await?,
    };
    let user = a.db_user.clone().unwrap_or_else(|| l.user.clone());
    if user.is_empty() {
        bail!("no database user: give one with --db-user (tsh db ls shows the allowed users)");
    }
    let mut args = psql_args(&l, &user, a.db_name.as_deref().unwrap_or_default());
    args.extend(a.args);
    use std::os::unix::process::CommandExt as _;
    let e = std::process::Command::new(&args[0]).args(&args[1..]).exec();
    if e.kind() == std::io::ErrorKind::NotFound {
        bail!("psql not found in PATH: install the PostgreSQL client (Debian: apt-get install postgresql-client)");
    }
    bail!("cannot run psql: {e}")
}

async fn config(a: ConfigArgs, g: &Global, out: &mut dyn Write) -> anyhow::Result<()> {
    let session = Session::load(g)?;
    let l = pick(&session, &session.target(g), a.db.as_deref())?;
    match a.format.as_str() {
        "text" | "" => {
            let rows = [
                ("Name:", l.name.clone()),
                ("Host:", l.host()),
                ("Port:", l.port()),
                ("User:", l.user.clone()),
                ("Database:", l.database.clone()),
                ("CA:", l.ca.clone()),
                ("Cert:", l.cert.clone()),
                ("Key:", l.key.clone()),
            ];
            for (k, v) in rows {
                writeln!(out, "{k:<10}{v}")?;
            }
        }
        "cmd" => writeln!(out, "psql \"{}\"", l.uri("", ""))?,
        "uri" => writeln!(out, "{}", l.uri("", ""))?,
        "json" => {
            let mut v = serde_json::json!({"name": l.name, "host": l.host(), "port": l.port().parse::<u16>().unwrap_or(0), "ca": l.ca, "cert": l.cert, "key": l.key});
            if let Some(m) = v.as_object_mut() {
                if !l.user.is_empty() {
                    m.insert("user".into(), serde_json::json!(l.user));
                }
                if !l.database.is_empty() {
                    m.insert("database".into(), serde_json::json!(l.database));
                }
            }
            write!(out, "{}", shared::output::json(&v))?
        }
        other => bail!("unsupported format {other:?}; use one of: text, cmd, uri, json"),
    }
    Ok(())
}

async fn env(a: EnvArgs, g: &Global, out: &mut dyn Write) -> anyhow::Result<()> {
    let session = Session::load(g)?;
    let l = pick(&session, &session.target(g), a.db.as_deref())?;
    let mut vars = vec![
        ("PGHOST", l.host()),
        ("PGPORT", l.port()),
        ("PGSSLMODE", "verify-full".to_string()),
        ("PGSSLROOTCERT", l.ca.clone()),
        ("PGSSLCERT", l.cert.clone()),
        ("PGSSLKEY", l.key.clone()),
    ];
    if !l.user.is_empty() {
        vars.push(("PGUSER", l.user.clone()));
    }
    if !l.database.is_empty() {
        vars.push(("PGDATABASE", l.database.clone()));
    }
    for (k, v) in vars {
        writeln!(out, "export {k}={}", sh_quote(&v))?;
    }
    Ok(())
}

/// `v` as one word for a POSIX shell.
fn sh_quote(v: &str) -> String {
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._/:=@+,".contains(&b)) {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\'', "'\\''"))
    }
}

async fn logout(a: LogoutArgs, g: &Global, out: &mut dyn Write) -> anyhow::Result<()> {
    let session = Session::load(g)?;
    let mut n = 0;
    for (json_path, l) in logins(&session) {
        if a.db.as_ref().is_some_and(|x| *x != l.name) {
            continue;
        }
        for f in [json_path.clone(), l.cert.clone().into(), l.key.clone().into(), l.ca.clone().into()] {
            let _ = std::fs::remove_file(f);
        }
        n += 1;
    }
    match (&a.db, n) {
        (Some(db), 0) => bail!("not logged into database {db:?}"),
        (Some(db), _) => writeln!(out, "Logged out of database {db}.")?,
        (None, 0) => writeln!(out, "Not logged into any database.")?,
        (None, _) => writeln!(out, "Logged out of all databases.")?,
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
struct LsArgs {
    /// The databases of the root and of every leaf you may see.
    #[arg(short = 'R', long)]
    all: bool,
    /// Output format: text, json or yaml.
    #[arg(short = 'f', long, default_value = "text", value_parser = parse_format)]
    format: Format,
    /// Also show each database's protocol and URI.
    #[arg(short = 'v', long)]
    verbose: bool,
}

/// Runs the command.
pub async fn exec(a: Args, g: &Global, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    match a.cmd {
        Cmd::Ls(a) => ls(a, g, out, err).await,
        Cmd::Login(a) => login(a, g, out, err).await,
        Cmd::Connect(a) => connect(a, g, err).await,
        Cmd::Config(a) => config(a, g, out).await,
        Cmd::Env(a) => env(a, g, out).await,
        Cmd::Logout(a) => logout(a, g, out).await,
    }
}

fn users_text(l: &DbListing) -> String {
    if l.users.is_empty() { "(none)".into() } else { format!("[{}]", l.users.join(" ")) }
}

fn row(l: &DbListing, cluster: &str, root: &str, verbose: bool, active: Option<&DbLogin>) -> Vec<String> {
    let d = &l.db;
    let labels = d.metadata.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
    let flag = if cluster == root { String::new() } else { format!("--cluster={cluster} ") };
    let name = match active {
        Some(a) => {
            let user = if a.user.is_empty() { String::new() } else { format!("user: {}", a.user) };
            let db = if a.database.is_empty() { String::new() } else { format!("db: {}", a.database) };
            let what = [user, db].into_iter().filter(|x| !x.is_empty()).collect::<Vec<_>>().join(", ");
            if what.is_empty() { format!("> {}", d.metadata.name) } else { format!("> {} ({what})", d.metadata.name) }
        }
        None => d.metadata.name.clone(),
    };
    let mut r = vec![name, d.metadata.description.clone().unwrap_or_default()];
    if verbose {
        r.push(d.spec.protocol.clone());
        r.push(d.spec.uri.clone());
    }
    r.push(users_text(l));
    r.push(labels);
    r.push(format!("tsh db connect {flag}{}", d.metadata.name));
    r
}

fn json_of(l: &DbListing) -> serde_json::Value {
    let mut v = serde_json::to_value(&l.db).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.insert("users".into(), serde_json::json!({"allowed": l.users}));
        m.insert("names".into(), serde_json::json!({"allowed": l.names}));
    }
    v
}

async fn ls(a: LsArgs, g: &Global, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    let mut session = Session::load(g)?;
    session.require_valid()?;
    let root = session.profile.cluster.clone();
    let mut head = vec!["Name", "Description"];
    if a.verbose {
        head.extend(["Protocol", "URI"]);
    }
    head.extend(["Allowed Users", "Labels", "Connect"]);
    let clusters = if a.all {
        session.visible_clusters().await?.into_iter().map(|c| c.cluster_name).collect()
    } else {
        vec![session.resolve_target(g, err).await?]
    };
    let answers = session
        .per_cluster(&clusters, std::time::Duration::from_secs(10), |api| async move { api.get::<Vec<DbListing>>(path::DBS).await })
        .await;
    let (mut rows, mut json) = (Vec::new(), Vec::new());
    for (cluster, r) in answers {
        match r {
            Ok(list) => {
                for l in list {
                    let mut line = if a.all { vec![session.profile.web_proxy_addr.clone(), cluster.clone()] } else { vec![] };
                    line.extend(row(&l, &cluster, &root, a.verbose, live_login(&session, &cluster, &l.db.metadata.name).as_ref()));
                    rows.push(line);
                    let mut v = json_of(&l);
                    if a.all
                        && let Some(m) = v.as_object_mut()
                    {
                        m.insert("cluster".into(), serde_json::json!(cluster));
                    }
                    json.push(v);
                }
            }
            Err(e) if !a.all => bail!("{e}"),
            Err(e) => writeln!(err, "WARNING: cluster {cluster}: {e}")?,
        }
    }
    let mut all_head = if a.all { vec!["Proxy", "Cluster"] } else { vec![] };
    all_head.extend(head);
    match a.format {
        Format::Json => write!(out, "{}", shared::output::json(&json))?,
        Format::Yaml => write!(out, "{}", shared::yaml::to_yaml_stream(&json))?,
        Format::Text => write!(out, "{}", table(&all_head, &rows))?,
    }
    Ok(())
}
