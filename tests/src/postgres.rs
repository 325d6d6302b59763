//! A real PostgreSQL server for the tests: Debian's `postgresql` package, started in a temporary
//! directory on its own 127.0.0.x address (as the `postgres` user when we are root: initdb
//! refuses root), with logical decoding on, and stopped when dropped.
//!
//! `initdb` runs once per machine into a template directory (under a lock, since test processes
//! run in parallel); each server copies it, which takes a fraction of a second.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::{TempDir, free_ip, wait_for};

/// The directory of PostgreSQL's server binaries.
pub fn bindir() -> PathBuf {
    let out = Command::new("pg_config").arg("--bindir").output();
    match out {
        Ok(o) if o.status.success() => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        _ => PathBuf::from("/usr/lib/postgresql/15/bin"),
    }
}

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// Runs `program args` as the server's owner.
fn as_owner(program: &Path, args: &[&str]) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program).args(args);
        c
    } else {
        let mut c = Command::new(program);
        c.args(args);
        c
    }
}

#[track_caller]
fn must(mut c: Command, what: &str) -> String {
    let o = c.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("{what}: {e} (is the postgresql package installed?)"));
    assert!(o.status.success(), "{what} failed: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn chown_to_owner(p: &Path) {
    if is_root() {
        must(
            {
                let mut c = Command::new("chown");
                c.args(["-R", "postgres:postgres"]).arg(p);
                c
            },
            "chown",
        );
    }
}

/// The initdb'd template, made once.
fn template() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tp-pg-template-{}", nix::unistd::Uid::effective()));
    let done = dir.join("data").join("PG_VERSION");
    if done.exists() {
        return dir.join("data");
    }
    std::fs::create_dir_all(&dir).expect("template dir");
    let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(dir.with_extension("lock")).expect("lock file");
    let _guard = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).expect("lock");
    if !done.exists() {
        let _ = std::fs::remove_dir_all(dir.join("data"));
        chown_to_owner(&dir);
        let data = dir.join("data").display().to_string();
        must(
            as_owner(
                &bindir().join("initdb"),
                &["-D", &data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C.UTF-8"],
            ),
            "initdb",
        );
    }
    dir.join("data")
}

/// The port every test server listens on (each on an address of its own).
pub const PORT: u16 = 55432;

/// A running server.
pub struct PgServer {
    /// Its address.
    pub ip: String,
    /// Its port.
    pub port: u16,
    dir: TempDir,
    /// Extra `-c` settings it runs with.
    settings: Vec<String>,
    running: bool,
    /// Directories that live as long as the server (its TLS files).
    keep: Vec<TempDir>,
}

impl PgServer {
    /// A server with what the backend needs (`wal_level=logical`, replication slots).
    pub fn start() -> PgServer {
        Self::start_with(&["wal_level=logical", "max_replication_slots=20", "max_wal_senders=20"])
    }

    /// A server with these `-c` settings (and no others of ours).
    pub fn start_with(settings: &[&str]) -> PgServer {
        Self::start_at(&free_ip(&[PORT]), settings)
    }

    /// A server on `ip` (port [`PORT`]) with these `-c` settings.
    pub fn start_at(ip: &str, settings: &[&str]) -> PgServer {
        let (port, ip) = (PORT, ip.to_string());
        let dir = TempDir::new("pg");
        let copy = Command::new("cp").arg("-a").arg(template()).arg(dir.path().join("data")).status();
        assert!(copy.map(|s| s.success()).unwrap_or(false), "cannot copy the PostgreSQL template");
        chown_to_owner(dir.path());
        let mut s = PgServer { ip, port, dir, settings: settings.iter().map(|s| s.to_string()).collect(), running: false, keep: vec![] };
        s.run();
        s
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&mut self) {
        let mut opts = format!("-c listen_addresses={} -p {} -k {}", self.ip, self.port, self.dir.path().display());
        for s in &self.settings {
            opts.push_str(&format!(" -c {s}"));
        }
        let log = self.dir.path().join("server.log").display().to_string();
        must(as_owner(&bindir().join("pg_ctl"), &["-D", &self.data(), "-l", &log, "-w", "-t", "60", "-o", &opts, "start"]), "pg_ctl start");
        self.running = true;
        let (ip, port) = (self.ip.clone(), self.port);
        wait_for("PostgreSQL to accept connections", Duration::from_secs(30), || {
            std::net::TcpStream::connect((ip.as_str(), port)).ok().map(|_| ())
        });
    }

    /// A server that speaks TLS with a certificate for `name` from a CA of its own; returns the
    /// server and the CA's PEM file (for `sslrootcert`).
    pub fn start_tls(name: &str) -> (PgServer, PathBuf) {
        let now = time::OffsetDateTime::now_utc();
        let ca_key = shared::certs::new_tls_key().expect("key");
        let ca = shared::certs::new_ca_cert(&ca_key, "pg-test", "db", now, Duration::from_secs(3600)).expect("CA");
        let key = shared::certs::new_tls_key().expect("key");
        let cert = shared::certs::sign_tls_cert(
            &ca,
            &ca_key.serialize_pem(),
            &shared::certs::spki_pem(&key),
            &shared::certs::TlsCertParams {
                common_name: name.into(),
                organization: String::new(),
                sans: vec![name.into()],
                identity_json: None,
                client: false,
                server: true,
                not_before: now - Duration::from_secs(60),
                not_after: now + Duration::from_secs(3600),
            },
        )
        .expect("server cert");
        Self::start_with_tls(&cert, &key.serialize_pem(), &ca, None)
    }

    /// A server that speaks TLS with this certificate and key (PEM), `ca` (PEM) in `ca.pem` of its
    /// directory (returned); with `client_ca`, it is `ssl_ca_file`, which verifies client
    /// certificates (`hostssl ... cert` needs it).
    pub fn start_with_tls(cert: &str, key: &str, ca: &str, client_ca: Option<&str>) -> (PgServer, PathBuf) {
        Self::start_with_tls_at(&free_ip(&[PORT]), cert, key, ca, client_ca)
    }

    /// As [`PgServer::start_with_tls`], on `ip`.
    pub fn start_with_tls_at(ip: &str, cert: &str, key: &str, ca: &str, client_ca: Option<&str>) -> (PgServer, PathBuf) {
        let files = TempDir::new("pg-tls");
        let (cert_file, key_file, ca_file, client_ca_file) = (
            files.path().join("server.crt"),
            files.path().join("server.key"),
            files.path().join("ca.pem"),
            files.path().join("client-ca.pem"),
        );
        std::fs::write(&cert_file, cert).expect("cert");
        shared::profile::write_file(&key_file, key.as_bytes(), 0o600).expect("key");
        std::fs::write(&ca_file, ca).expect("ca");
        let mut settings = vec![
            "wal_level=logical".to_string(),
            "max_replication_slots=20".to_string(),
            "ssl=on".to_string(),
            format!("ssl_cert_file={}", cert_file.display()),
            format!("ssl_key_file={}", key_file.display()),
        ];
        if let Some(c) = client_ca {
            std::fs::write(&client_ca_file, c).expect("client ca");
            settings.push(format!("ssl_ca_file={}", client_ca_file.display()));
        }
        chown_to_owner(files.path());
        let refs: Vec<&str> = settings.iter().map(String::as_str).collect();
        let mut s = Self::start_at(ip, &refs);
        let ca_path = s.dir.path().join("ca.pem");
        std::fs::copy(&ca_file, &ca_path).expect("copy CA");
        s.keep.push(files);
        (s, ca_path)
    }

    /// `postgresql://postgres@IP:PORT/<db>?sslmode=disable`.
    pub fn url(&self, db: &str) -> String {
        format!("postgresql://postgres@{}:{}/{db}?sslmode=disable", self.ip, self.port)
    }

    /// Runs SQL in `db`; returns psql's unaligned output.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let port = self.port.to_string();
        let mut c = Command::new("psql");
        c.args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", &self.ip, "-p", &port, "-U", "postgres", "-d", db, "-c", sql]);
        must(c, &format!("psql {sql}"))
    }

    /// Accepts TCP connections only with TLS and a client certificate whose common name is the
    /// role (`hostssl all all 127.0.0.0/8 cert`: on Linux a connection to 127.x.y.z comes from
    /// 127.0.0.1); the Unix socket stays open to [`PgServer::admin`].
    pub fn require_client_certs(&self) {
        let hba = "local all all trust\nhostssl all all 127.0.0.0/8 cert\n";
        std::fs::write(self.dir.path().join("data").join("pg_hba.conf"), hba).expect("pg_hba.conf");
        must(as_owner(&bindir().join("pg_ctl"), &["-D", &self.data(), "reload"]), "pg_ctl reload");
        // The reload is asynchronous: wait until a plain TCP connection is refused.
        let port = self.port.to_string();
        wait_for("pg_hba.conf to apply", Duration::from_secs(30), || {
            let o = Command::new("psql")
                .args(["-X", "-At", "-h", &self.ip, "-p", &port, "-U", "postgres", "-d", "postgres", "-c", "SELECT 1"])
                .env("PGSSLMODE", "disable")
                .output()
                .ok()?;
            (!o.status.success()).then_some(())
        });
    }

    /// Runs SQL in `db` as `postgres` over the Unix socket; returns psql's unaligned output.
    pub fn admin(&self, db: &str, sql: &str) -> String {
        let (port, socket) = (self.port.to_string(), self.dir.path().display().to_string());
        let mut c = Command::new("psql");
        c.args(["-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", &socket, "-p", &port, "-U", "postgres", "-d", db, "-c", sql]);
        must(c, &format!("psql {sql}"))
    }

    /// Creates database `name`.
    pub fn create_db(&self, name: &str) {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'"));
    }

    /// `pg_ctl stop -m immediate`: a crash, as far as clients can tell.
    pub fn crash(&mut self) {
        if self.running {
            let _ = as_owner(&bindir().join("pg_ctl"), &["-D", &self.data(), "-m", "immediate", "-w", "stop"]).output();
            self.running = false;
        }
    }

    /// Starts it again after [`PgServer::crash`].
    pub fn start_again(&mut self) {
        self.run();
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.crash();
    }
}

/// A real PostgreSQL on a fresh address with certificates from `cluster`'s `db` CA (`tctl auth
/// sign --format=db`), requiring client certificates; role `alice`, database `dev` (alice's)
/// with a table `whoami` saying `tag`. The directory holds the certificates.
pub fn postgres_for(cluster: &crate::Cluster, tag: &str) -> (PgServer, TempDir) {
    postgres_at(cluster, &free_ip(&[PORT]), tag)
}

/// As [`postgres_for`], on address `ip`.
pub fn postgres_at(cluster: &crate::Cluster, ip: &str, tag: &str) -> (PgServer, TempDir) {
    let dir = TempDir::new("pg-certs");
    let p = dir.path().join("server").display().to_string();
    cluster.tctl(&["auth", "sign", "--format=db", &format!("--host={ip}"), &format!("--out={p}")]).ok("tctl auth sign --format=db");
    let read = |ext: &str| std::fs::read_to_string(format!("{p}{ext}")).unwrap_or_default();
    let (pg, _) = PgServer::start_with_tls_at(ip, &read(".crt"), &read(".key"), &read(".cas"), Some(&read(".cas")));
    pg.admin("postgres", "CREATE ROLE alice LOGIN");
    pg.admin("postgres", "CREATE DATABASE dev OWNER alice");
    pg.admin("dev", &format!("CREATE TABLE whoami (c text); INSERT INTO whoami VALUES ('{tag}'); ALTER TABLE whoami OWNER TO alice"));
    pg.require_client_certs();
    (pg, dir)
}
