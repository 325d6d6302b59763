//! The end-to-end test harness: real `teleport`, `tctl` and `tsh` processes on loopback.
//!
//! Every cluster gets its own address in 127.0.0.0/8 (random, checked free), its own data
//! directory under a temporary directory, and is killed when its [`Cluster`] is dropped — also
//! when a test panics. Waits are bounded. The binaries are the ones `cargo build --workspace
//! --bins` put next to the test executable (override with `TP_BIN_DIR`).

// Test support: failing loudly is its job.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod apps;
pub mod browser;
pub mod haproxy;
pub mod idp;
pub mod kube;
pub mod postgres;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The directory holding `teleport`, `tctl` and `tsh`.
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("TP_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/e2e-<hash>
    exe.parent().and_then(|p| p.parent()).map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("target/debug"))
}

/// Path of a binary; panics with a helpful message if it was not built.
pub fn bin(name: &str) -> PathBuf {
    let p = bin_dir().join(name);
    assert!(p.exists(), "{} not found: run `cargo build --workspace --bins` first (or set TP_BIN_DIR)", p.display());
    p
}

/// A directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new empty directory.
    pub fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("tp-e2e-{tag}-{}-{}", std::process::id(), shared::certs::random_hex(4)));
        std::fs::create_dir_all(&d).expect("create temp dir");
        TempDir(d)
    }
    /// The path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("TP_KEEP").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The result of running a command.
#[derive(Debug, Clone)]
pub struct Out {
    /// Exit code (-1 if killed).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Out {
    /// Asserts success and returns stdout.
    #[track_caller]
    pub fn ok(&self, what: &str) -> &str {
        assert_eq!(self.code, 0, "{what}: expected success\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        &self.stdout
    }

    /// Asserts failure with exit code 1 and a message containing `needle`; returns stderr.
    #[track_caller]
    pub fn fails_with(&self, what: &str, needle: &str) -> &str {
        assert_eq!(self.code, 1, "{what}: expected exit code 1\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        assert!(self.stderr.contains(needle), "{what}: expected {needle:?} in stderr:\n{}", self.stderr);
        assert!(self.stderr.starts_with("ERROR: "), "{what}: errors start with ERROR:\n{}", self.stderr);
        assert!(!self.stderr.contains("panicked"), "{what}: panic:\n{}", self.stderr);
        &self.stderr
    }

    /// Asserts that `tsh ssh` or `tsh scp` could not connect: exit code 255 (as OpenSSH's), the
    /// reason in stderr; returns stderr.
    #[track_caller]
    pub fn cannot_connect(&self, what: &str, needle: &str) -> &str {
        assert_eq!(self.code, 255, "{what}: expected exit code 255\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        assert!(self.stderr.contains(needle), "{what}: expected {needle:?} in stderr:\n{}", self.stderr);
        assert!(self.stderr.starts_with("ERROR: "), "{what}: errors start with ERROR:\n{}", self.stderr);
        &self.stderr
    }

    /// Parses stdout as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }
}

/// Runs a command with a timeout, optional stdin, and extra environment.
pub fn run(program: &Path, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>, timeout: Duration) -> Out {
    run_in(None, program, args, env, stdin, timeout)
}

/// A command, inside network namespace `netns` if given (`ip netns exec NS ...`).
pub fn command_in(netns: Option<&str>, program: &Path) -> Command {
    match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

/// Like [`run`], inside network namespace `netns` if given.
pub fn run_in(netns: Option<&str>, program: &Path, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>, timeout: Duration) -> Out {
    let mut cmd = command_in(netns, program);
    cmd.args(args).stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() }).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    if let Some(input) = stdin {
        let mut si = child.stdin.take().expect("stdin");
        let _ = si.write_all(input.as_bytes());
    }
    // Drain both pipes while the command runs: a command that writes more than a pipe holds
    // (64 KiB) would otherwise block forever on a full pipe.
    let drain = |r: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out_reader = drain(child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>));
    let err_reader = drain(child.stderr.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let stdout = out_reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    let Some(status) = status else {
        panic!("{} {:?} timed out after {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", program.display(), args, timeout);
    };
    Out { code: status.code().unwrap_or(-1), stdout, stderr }
}

/// Polls `f` until it returns `Some`, at most `timeout`.
#[track_caller]
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `run` until its output satisfies `holds`, at most `timeout`, and returns that output.
/// For anything that reads liveness (a leaf online, a tunnel up): a heartbeat late by a second
/// on a loaded machine can flip a status between two commands, so such output is waited for,
/// never sampled once after some other command saw it.
#[track_caller]
pub fn output_when(what: &str, timeout: Duration, mut run: impl FnMut() -> String, holds: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let out = run();
        if holds(&out) {
            return out;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}; last output:\n{out}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A free loopback address (random in 127.64.0.0–127.127.255.255) with `ports` free.
pub fn free_ip(ports: &[u16]) -> String {
    for _ in 0..200 {
        let b = shared::certs::random_bytes(3);
        let ip = format!("127.{}.{}.{}", 64 + (b[0] % 64), b[1], 2 + (b[2] % 250));
        if ports.iter().all(|p| TcpListener::bind(format!("{ip}:{p}")).is_ok()) {
            return ip;
        }
    }
    panic!("no free loopback address found");
}

/// Options that make stock `ssh` non-interactive and independent of the machine's configuration
/// and known hosts (tests check our certificates, not OpenSSH's host key prompts).
pub const OPENSSH_BATCH: &[&str] = &[
    "-F",
    "/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "ConnectTimeout=10",
];

/// Runs stock `ssh` with [`OPENSSH_BATCH`] and then `args`.
pub fn openssh(args: &[&str]) -> Out {
    let mut all = OPENSSH_BATCH.to_vec();
    all.extend_from_slice(args);
    run(Path::new("ssh"), &all, &[], None, Duration::from_secs(30))
}

/// Creates a Unix user with a home directory unless it exists (tests run as root).
///
/// Test binaries run in parallel: one lock across processes keeps two `useradd`s of the same name
/// from racing (a race once left `/home/visitor` owned by a uid that no longer existed), and a
/// home that does not belong to the user is given back to it.
pub fn ensure_unix_user(name: &str) {
    use std::os::unix::fs::MetadataExt;
    let exists =
        |n: &str| Command::new("id").arg(n).stdout(Stdio::null()).stderr(Stdio::null()).status().map(|s| s.success()).unwrap_or(false);
    let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open("/tmp/e2e-useradd.lock").expect("lock file");
    let _held = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive).map_err(|(_, e)| e).expect("lock");
    if !exists(name) {
        let st = Command::new("useradd").args(["--create-home", "--shell", "/bin/bash", name]).status();
        assert!(exists(name), "cannot create Unix user {name} (useradd: {st:?}); these tests must run as root");
    }
    let user = nix::unistd::User::from_name(name).ok().flatten().expect("the user just made");
    let owned = std::fs::metadata(&user.dir).map(|m| m.uid() == user.uid.as_raw()).ok();
    if owned.is_none() {
        let _ = std::fs::create_dir_all(&user.dir);
    }
    if owned != Some(true) {
        let st = Command::new("chown").arg("-R").arg(format!("{name}:")).arg(&user.dir).status();
        assert!(st.map(|s| s.success()).unwrap_or(false), "cannot give {} back to {name}", user.dir.display());
    }
}

/// Options of a cluster.
#[derive(Debug, Clone)]
pub struct ClusterOpts {
    /// Cluster name.
    pub name: String,
    /// Run an in-process node.
    pub node: bool,
    /// Node labels of the in-process node.
    pub labels: Vec<(String, String)>,
    /// Tunnel heartbeat interval.
    pub keep_alive: String,
    /// Start with `--insecure` (leaves dialing a root with the generated web certificate).
    pub insecure: bool,
    /// Extra YAML appended under `auth_service:`.
    pub auth_extra: String,
    /// Extra YAML appended under `teleport:` (indented by two spaces).
    pub teleport_extra: String,
    /// Node heartbeat interval.
    pub node_heartbeat: String,
    /// Environment of the daemon (e.g. SSL_CERT_FILE).
    pub env: Vec<(String, String)>,
    /// Name of the in-process node (default `<first label>-node`).
    pub node_name: Option<String>,
    /// Run inside this network namespace.
    pub netns: Option<String>,
    /// Listen on this address (default: a free random 127.x address).
    pub ip: Option<String>,
    /// Serve diagnostics (`/metrics`) on port 3000 of the cluster's address.
    pub diag: bool,
    /// `proxy_service.public_addr` (default: the web address), e.g. a load balancer's.
    pub public_addr: Option<String>,
    /// Extra YAML appended under `proxy_service:` (indented by two spaces).
    pub proxy_extra: String,
    /// `auth_service.authentication.second_factor` (`None`: not set, the product's default of
    /// `otp`). Tests that are not about a second factor turn it off, as the issue allows.
    pub second_factor: Option<String>,
    /// Start the daemon with this descriptor limit (soft and hard, through `prlimit`).
    pub fd_limit: Option<u64>,
    /// Top-level YAML sections appended to the file (`kubernetes_service:` ...).
    pub sections: String,
}

impl ClusterOpts {
    /// Defaults for `name`: an in-process node, 1s heartbeats.
    pub fn new(name: &str) -> ClusterOpts {
        ClusterOpts {
            name: name.into(),
            node: true,
            labels: vec![("env".into(), "test".into())],
            keep_alive: "1s".into(),
            insecure: false,
            auth_extra: String::new(),
            teleport_extra: String::new(),
            node_heartbeat: "1s".into(),
            env: vec![],
            node_name: None,
            netns: None,
            ip: None,
            diag: false,
            public_addr: None,
            proxy_extra: String::new(),
            second_factor: Some("off".into()),
            fd_limit: None,
            sections: String::new(),
        }
    }
}

/// A running `teleport` (auth + proxy [+ node]).
pub struct Cluster {
    /// Options used.
    pub opts: ClusterOpts,
    /// Its loopback address.
    pub ip: String,
    /// `ip:3080`.
    pub web: String,
    /// Temp dir holding config, data and log.
    pub dir: TempDir,
    child: Option<Child>,
}

impl Cluster {
    /// Starts a cluster and waits until it listens.
    pub fn start(opts: ClusterOpts) -> Cluster {
        let ip = opts.ip.clone().unwrap_or_else(|| free_ip(&[3080, 3022, 3000]));
        let dir = TempDir::new(&opts.name.replace('.', "-"));
        let mut c = Cluster { web: format!("{ip}:3080"), ip, dir, opts, child: None };
        c.write_config();
        c.spawn();
        c
    }

    /// The config file.
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("teleport.yaml")
    }
    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
    /// The daemon log.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("teleport.log")
    }
    /// The log text.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }
    /// The CA that signed the web certificate (for SSL_CERT_FILE / curl --cacert).
    pub fn web_ca(&self) -> PathBuf {
        self.data_dir().join("web").join("webca.pem")
    }
    /// The audit log lines.
    pub fn events(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.data_dir().join("log").join("events.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
    /// The node name of the in-process node.
    pub fn node_name(&self) -> String {
        self.opts.node_name.clone().unwrap_or_else(|| format!("{}-node", self.opts.name.split('.').next().unwrap_or("n")))
    }

    /// Writes the config file again from `opts` (takes effect at the next start).
    pub fn rewrite_config(&self) {
        self.write_config();
    }

    fn write_config(&self) {
        let o = &self.opts;
        let labels: String = o.labels.iter().map(|(k, v)| format!("    {k}: {v}\n")).collect();
        let text = format!(
            "version: v3\nteleport:\n  nodename: {node}\n  data_dir: {data}\n{diag}{textra}  log:\n    output: stderr\n    severity: DEBUG\n\
             auth_service:\n  enabled: yes\n  cluster_name: {name}\n  keep_alive_interval: {ka}\n  keep_alive_count_max: 3\n{authn}{extra}\
             ssh_service:\n  enabled: {ssh}\n  listen_addr: {ip}:3022\n  heartbeat_interval: {hb}\n  labels:\n{labels}\
             proxy_service:\n  enabled: yes\n  web_listen_addr: {ip}:3080\n  public_addr: {public}\n{pextra}{sections}",
            sections = o.sections,
            node = self.node_name(),
            public = o.public_addr.clone().unwrap_or_else(|| format!("{}:3080", self.ip)),
            pextra = o.proxy_extra,
            data = self.data_dir().display(),
            diag = if o.diag { format!("  diag_addr: {}:3000\n", self.ip) } else { String::new() },
            name = o.name,
            ka = o.keep_alive,
            extra = o.auth_extra,
            authn = o
                .second_factor
                .as_ref()
                .map(|f| format!("  authentication:\n    type: local\n    second_factor: {f}\n"))
                .unwrap_or_default(),
            textra = o.teleport_extra,
            ssh = if o.node { "yes" } else { "no" },
            ip = self.ip,
            hb = o.node_heartbeat,
            labels = if labels.is_empty() { "    {}\n".to_string() } else { labels },
        );
        std::fs::write(self.config(), text).expect("write config");
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.log_path()).expect("log file");
        let mut cmd = match self.opts.fd_limit {
            Some(n) => {
                let mut c = command_in(self.opts.netns.as_deref(), Path::new("prlimit"));
                c.arg(format!("--nofile={n}:{n}")).arg("--").arg(bin("teleport"));
                c
            }
            None => command_in(self.opts.netns.as_deref(), &bin("teleport")),
        };
        cmd.arg("start").arg("-c").arg(self.config());
        if self.opts.insecure {
            cmd.arg("--insecure");
        }
        for (k, v) in &self.opts.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null()).stdout(log.try_clone().expect("log")).stderr(log);
        self.child = Some(cmd.spawn().expect("start teleport"));
        let web = self.web.clone();
        let id = self.data_dir().join("admin.identity");
        let log_path = self.log_path();
        let in_netns = self.opts.netns.is_some();
        let child = self.child.as_mut().expect("child");
        let runs = |p: &Path| std::fs::read_to_string(p).unwrap_or_default().matches("teleport is running").count();
        let before = runs(&log_path);
        wait_for(&format!("teleport {} to listen on {web}", self.opts.name), Duration::from_secs(60), || {
            if let Ok(Some(status)) = child.try_wait() {
                panic!("teleport exited early with {status}; log:\n{}", std::fs::read_to_string(&log_path).unwrap_or_default());
            }
            let ready = if in_netns { runs(&log_path) > before } else { std::net::TcpStream::connect(&web).is_ok() };
            (ready && id.exists()).then_some(())
        });
    }

    /// The process's host UUID (its name among the cluster's proxies).
    pub fn host_id(&self) -> String {
        std::fs::read_to_string(self.data_dir().join("host_uuid")).unwrap_or_default().trim().to_string()
    }

    /// The daemon's process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops the daemon (SIGTERM, then SIGKILL after 10s).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child);
        }
    }

    /// Sends `sig` to the daemon without waiting.
    pub fn signal(&self, sig: nix::sys::signal::Signal) {
        if let Some(pid) = self.pid() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), sig);
        }
    }

    /// Waits at most `timeout` for the daemon to exit; true if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            match self.child.as_mut().map(Child::try_wait) {
                None | Some(Ok(Some(_))) | Some(Err(_)) => {
                    self.child = None;
                    return true;
                }
                Some(Ok(None)) => std::thread::sleep(Duration::from_millis(25)),
            }
        }
        false
    }

    /// Kills the daemon with SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again with the same data.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// Starts it after `stop`/`kill`.
    pub fn start_again(&mut self) {
        self.spawn();
    }

    /// Runs `tctl -c teleport.yaml ARGS`.
    pub fn tctl(&self, args: &[&str]) -> Out {
        self.tctl_env(args, &[], None)
    }

    /// Runs tctl with extra environment and stdin.
    pub fn tctl_env(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Out {
        let cfg = self.config().display().to_string();
        let mut full = vec!["-c", cfg.as_str()];
        full.extend_from_slice(args);
        // A tsh profile in the environment must not take precedence over -c.
        let mut e: Vec<(&str, &str)> = vec![("TELEPORT_HOME", "/nonexistent-tp-home")];
        e.extend_from_slice(env);
        run_in(self.opts.netns.as_deref(), &bin("tctl"), &full, &e, stdin, Duration::from_secs(60))
    }

    /// Creates a YAML resource file in the cluster's dir and `tctl create`s it.
    pub fn create(&self, file: &str, yaml: &str) -> Out {
        let p = self.dir.path().join(file);
        std::fs::write(&p, yaml).expect("write yaml");
        self.tctl(&["create", p.to_str().unwrap_or_default()])
    }

    /// Like [`Cluster::create`], replacing what exists (`tctl create -f`).
    pub fn create_force(&self, file: &str, yaml: &str) -> Out {
        let p = self.dir.path().join(file);
        std::fs::write(&p, yaml).expect("write yaml");
        self.tctl(&["create", "-f", p.to_str().unwrap_or_default()])
    }

    /// Adds a user and sets their password through the invite's JSON endpoint.
    pub fn add_user(&self, name: &str, roles: &str, logins: &str, password: &str) {
        let mut args = vec!["users", "add", name, "--roles", roles];
        if !logins.is_empty() {
            args.push("--logins");
            args.push(logins);
        }
        let out = self.tctl(&args);
        let url = out.ok("tctl users add").lines().find(|l| l.starts_with("https://")).expect("invite URL").trim().to_string();
        let token = url.rsplit('/').next().expect("token").to_string();
        let body = serde_json::json!({"token": token, "password": password});
        let resp = self.https_put("/webapi/users/password/token", &body);
        assert_eq!(resp["username"], name, "set password: {resp}");
    }

    /// `tctl users add` and the invite's token (the password is not set yet).
    pub fn invite(&self, name: &str, roles: &str, logins: &str) -> String {
        let mut args = vec!["users", "add", name, "--roles", roles];
        if !logins.is_empty() {
            args.push("--logins");
            args.push(logins);
        }
        let out = self.tctl(&args);
        let url = out.ok("tctl users add").lines().find(|l| l.starts_with("https://")).expect("invite URL").trim().to_string();
        url.rsplit('/').next().expect("token").to_string()
    }

    /// A JSON `GET` from the web API with curl, trusting the generated web CA.
    pub fn https_get(&self, path: &str) -> serde_json::Value {
        let url = format!("https://{}{path}", self.web);
        let ca = self.web_ca().display().to_string();
        let out = run_in(self.opts.netns.as_deref(), Path::new("curl"), &["-s", "--cacert", &ca, &url], &[], None, Duration::from_secs(30));
        serde_json::from_str(&out.stdout).unwrap_or_else(|_| serde_json::json!({"error": format!("curl: {out:?}")}))
    }

    /// A JSON `PUT` to the web API with curl (inside the cluster's namespace), trusting the
    /// generated web CA. Returns the JSON answer (an error body on failure).
    pub fn https_put(&self, path: &str, body: &serde_json::Value) -> serde_json::Value {
        let url = format!("https://{}{path}", self.web);
        let ca = self.web_ca().display().to_string();
        let data = body.to_string();
        let out = run_in(
            self.opts.netns.as_deref(),
            Path::new("curl"),
            &["-s", "--cacert", &ca, "-X", "PUT", &url, "-d", &data],
            &[],
            None,
            Duration::from_secs(30),
        );
        serde_json::from_str(&out.stdout).unwrap_or_else(|_| serde_json::json!({"error": format!("curl: {out:?}")}))
    }

    /// A trusted_cluster token.
    pub fn trusted_cluster_token(&self, ttl: &str) -> String {
        self.tctl(&["tokens", "add", "--type=trusted_cluster", &format!("--ttl={ttl}"), "--format=text"])
            .ok("tokens add")
            .trim()
            .to_string()
    }

    /// The daemon's `/metrics` (needs `diag`), as name (with labels) to value.
    pub fn metrics(&self) -> std::collections::BTreeMap<String, f64> {
        let url = format!("http://{}:3000/metrics", self.ip);
        let out = run_in(self.opts.netns.as_deref(), Path::new("curl"), &["-sf", &url], &[], None, Duration::from_secs(10));
        out.ok("GET /metrics")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' ').and_then(|(k, v)| Some((k.to_string(), v.parse().ok()?))))
            .collect()
    }

    /// Waits until `tctl get rc/<leaf>` shows `status`.
    pub fn wait_remote_status(&self, leaf: &str, status: &str, timeout: Duration) {
        wait_for(&format!("remote cluster {leaf} to be {status} on {}", self.opts.name), timeout, || {
            let out = self.tctl(&["get", &format!("rc/{leaf}"), "--format=json"]);
            (out.code == 0 && out.json()[0]["status"]["connection"] == status).then_some(())
        });
    }

    /// Waits until a node with `hostname` is registered.
    pub fn wait_node(&self, hostname: &str) {
        wait_for(&format!("node {hostname} in {}", self.opts.name), Duration::from_secs(30), || {
            let out = self.tctl(&["get", "nodes", "--format=json"]);
            (out.code == 0 && out.json().as_array().is_some_and(|a| a.iter().any(|n| n["spec"]["hostname"] == hostname))).then_some(())
        });
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits for a spawned command (stdout and stderr piped) at most `timeout`, then kills it.
pub fn finish(mut child: Child, timeout: Duration) -> Out {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    if let Ok(None) = child.try_wait() {
        let _ = child.kill();
    }
    match child.wait_with_output() {
        Ok(o) => Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        },
        Err(e) => Out { code: -1, stdout: String::new(), stderr: e.to_string() },
    }
}

fn terminate(child: &mut Child) {
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A node in its own process.
pub struct NodeProc {
    /// Node name.
    pub name: String,
    /// Listen IP (direct nodes).
    pub ip: String,
    /// Data and log.
    pub dir: TempDir,
    child: Option<Child>,
}

impl NodeProc {
    /// Joins `cluster` with a fresh node token; `tunnel` selects reverse-tunnel mode.
    pub fn join(cluster: &Cluster, name: &str, tunnel: bool, labels: &str) -> NodeProc {
        let ip = if cluster.opts.netns.is_some() { "127.0.0.1".to_string() } else { free_ip(&[3022]) };
        Self::join_at(cluster, name, tunnel, labels, &ip)
    }

    /// Like [`NodeProc::join`], listening on `ip` (direct mode), in the cluster's namespace.
    pub fn join_at(cluster: &Cluster, name: &str, tunnel: bool, labels: &str, ip: &str) -> NodeProc {
        let node = Self::join_at_unchecked(cluster, name, tunnel, labels, ip);
        cluster.wait_node(name);
        node
    }

    /// Like [`NodeProc::join_at`], without waiting for the node to be registered (for nodes the
    /// cluster is expected to refuse).
    pub fn join_at_unchecked(cluster: &Cluster, name: &str, tunnel: bool, labels: &str, ip: &str) -> NodeProc {
        Self::join_via(cluster, &cluster.web, name, tunnel, labels, ip)
    }

    /// Joins `cluster` through `addr` (a load balancer in front of its processes, or one of
    /// them), without waiting for the node to be registered.
    pub fn join_via(cluster: &Cluster, addr: &str, name: &str, tunnel: bool, labels: &str, ip: &str) -> NodeProc {
        Self::join_with(cluster, addr, name, tunnel, labels, ip, "")
    }

    /// Joins `cluster` directly with extra YAML under `ssh_service:` (indented by two spaces),
    /// and waits until it is registered.
    pub fn join_configured(cluster: &Cluster, name: &str, ssh_extra: &str) -> NodeProc {
        let ip = free_ip(&[3022]);
        let node = Self::join_with(cluster, &cluster.web, name, false, "", &ip, ssh_extra);
        cluster.wait_node(name);
        node
    }

    /// Joins `cluster` through its reverse tunnel with the node's own heartbeat and keep-alive
    /// left at the product's defaults (30 s: the cluster's is what it should follow), and waits
    /// until it is registered.
    pub fn join_tunnel_with_default_keep_alive(cluster: &Cluster, name: &str) -> NodeProc {
        let ip = free_ip(&[3022]);
        let node = Self::join_config(cluster, &cluster.web, name, true, "", &ip, "ssh_service:\n  enabled: yes\n".into());
        cluster.wait_node(name);
        node
    }

    fn join_with(cluster: &Cluster, addr: &str, name: &str, tunnel: bool, labels: &str, ip: &str, ssh_extra: &str) -> NodeProc {
        let config = format!("ssh_service:\n  heartbeat_interval: 1s\n{ssh_extra}auth_service:\n  keep_alive_interval: 1s\n");
        Self::join_config(cluster, addr, name, tunnel, labels, ip, config)
    }

    /// A Kubernetes service in a process of its own (`teleport start --roles=kube --tunnel`,
    /// joined with a node token), with `section` (a `kubernetes_service:` block) as its config.
    pub fn join_kube(cluster: &Cluster, name: &str, section: &str) -> NodeProc {
        Self::join_agent(cluster, name, "kube", section)
    }

    /// An app service in a process of its own (`teleport start --roles=app --tunnel`, joined
    /// with a node token), with `section` (an `app_service:` block) as its config.
    pub fn join_app(cluster: &Cluster, name: &str, section: &str) -> NodeProc {
        Self::join_agent(cluster, name, "app", section)
    }

    /// A database service in a process of its own (`teleport start --roles=db --tunnel`, joined
    /// with a node token), with `section` (a `db_service:` block) as its config.
    pub fn join_db(cluster: &Cluster, name: &str, section: &str) -> NodeProc {
        Self::join_agent(cluster, name, "db", section)
    }

    fn join_agent(cluster: &Cluster, name: &str, roles: &str, section: &str) -> NodeProc {
        let ip = free_ip(&[3022]);
        let config = format!("ssh_service:\n  heartbeat_interval: 1s\nauth_service:\n  keep_alive_interval: 1s\n{section}");
        Self::join_as(cluster, &cluster.web, name, roles, true, "", &ip, config)
    }

    #[allow(clippy::too_many_arguments)]
    fn join_config(cluster: &Cluster, addr: &str, name: &str, tunnel: bool, labels: &str, ip: &str, config: String) -> NodeProc {
        Self::join_as(cluster, addr, name, "node", tunnel, labels, ip, config)
    }

    #[allow(clippy::too_many_arguments)]
    fn join_as(cluster: &Cluster, addr: &str, name: &str, roles: &str, tunnel: bool, labels: &str, ip: &str, config: String) -> NodeProc {
        let token = cluster.tctl(&["tokens", "add", "--type=node", "--ttl=5m", "--format=text"]).ok("node token").trim().to_string();
        let ip = ip.to_string();
        let dir = TempDir::new(&format!("node-{name}"));
        let cfg = dir.path().join("node.yaml");
        std::fs::write(&cfg, config).expect("node config");
        let log = std::fs::File::create(dir.path().join("node.log")).expect("log");
        let mut cmd = command_in(cluster.opts.netns.as_deref(), &bin("teleport"));
        cmd.args(["start", &format!("--roles={roles}"), "--insecure", "--debug"])
            .arg(format!("--config={}", cfg.display()))
            .arg(format!("--token={token}"))
            .arg(format!("--auth-server={addr}"))
            .arg(format!("--nodename={name}"))
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--ssh-listen-addr={ip}:3022"));
        if tunnel {
            cmd.arg("--tunnel");
        }
        if !labels.is_empty() {
            cmd.arg(format!("--labels={labels}"));
        }
        cmd.stdin(Stdio::null()).stdout(log.try_clone().expect("log")).stderr(log);
        let child = cmd.spawn().expect("start node");
        NodeProc { name: name.into(), ip, dir, child: Some(child) }
    }

    /// The node's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("node.log")).unwrap_or_default()
    }

    /// The node process's ID.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Kills the node (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c);
        }
    }
}

/// A `tsh` user with their own `TELEPORT_HOME`.
pub struct Tsh {
    /// Profile directory.
    pub home: TempDir,
    /// Extra environment (e.g. SSL_CERT_FILE).
    pub env: Vec<(String, String)>,
    /// Run inside this network namespace.
    pub netns: Option<String>,
}

impl Tsh {
    /// A user with an empty profile directory.
    pub fn new(tag: &str) -> Tsh {
        Tsh { home: TempDir::new(&format!("tsh-{tag}")), env: vec![], netns: None }
    }

    fn env(&self) -> Vec<(String, String)> {
        let mut e = vec![("TELEPORT_HOME".to_string(), self.home.path().display().to_string())];
        e.extend(self.env.clone());
        e
    }

    /// `tsh ARGS` as a command to spawn (in the user's namespace, with their profile); stdout
    /// and stderr piped, stdin null.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = command_in(self.netns.as_deref(), &bin("tsh"));
        cmd.args(args).envs(self.env()).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        cmd
    }

    /// Runs `tsh ARGS`.
    pub fn run(&self, args: &[&str]) -> Out {
        self.run_stdin(args, None)
    }

    /// Runs `tsh ARGS` with stdin.
    pub fn run_stdin(&self, args: &[&str], stdin: Option<&str>) -> Out {
        let env = self.env();
        let e: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run_in(self.netns.as_deref(), &bin("tsh"), args, &e, stdin, Duration::from_secs(90))
    }

    /// Runs `tctl ARGS` with this user's profile.
    pub fn tctl(&self, args: &[&str]) -> Out {
        let env = self.env();
        let e: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run_in(self.netns.as_deref(), &bin("tctl"), args, &e, None, Duration::from_secs(60))
    }

    /// Runs a shell command line (the guide's commands, as printed) with this user's profile,
    /// the binaries first on `PATH`, and `SSL_CERT_FILE` as set.
    pub fn sh(&self, line: &str, stdin: Option<&str>) -> Out {
        let mut env = self.env();
        env.push(("PATH".into(), format!("{}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", bin_dir().display())));
        let e: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run_in(self.netns.as_deref(), Path::new("/bin/bash"), &["-c", line], &e, stdin, Duration::from_secs(90))
    }

    /// Stock OpenSSH straight to `node_ip:3022` as `login`, with this user's key and certificate
    /// from the profile of proxy host `profile`: no proxy, no tunnel, only the node decides.
    pub fn openssh_direct(&self, profile: &str, login: &str, node_ip: &str, cmd: &str) -> Out {
        let prof = self.home.path().join("profiles").join(profile);
        let key = prof.join("id_ed25519").display().to_string();
        let cert = format!("CertificateFile={}", prof.join("id_ed25519-cert.pub").display());
        let dest = format!("{login}@{node_ip}");
        openssh(&["-i", &key, "-o", &cert, "-p", "3022", &dest, cmd])
    }

    /// Signs in to `cluster` as `user`, trusting its generated web CA.
    pub fn login(&mut self, cluster: &Cluster, user: &str, password: &str) -> Out {
        self.env.retain(|(k, _)| k != "SSL_CERT_FILE");
        self.env.push(("SSL_CERT_FILE".into(), cluster.web_ca().display().to_string()));
        self.run_stdin(&["login", &format!("--proxy={}", cluster.web), &format!("--user={user}")], Some(&format!("{password}\n")))
    }
}

/// Runs `tsh ARGS` with a pseudo-terminal as stdin/stdout/stderr; `input` is typed in after
/// 1.5 s. Returns everything the terminal showed and the exit code (-1 if killed at `timeout`).
pub fn tsh_with_pty(tsh: &Tsh, args: &[&str], input: &str, timeout: Duration) -> (String, i32) {
    let mut p = PtyTsh::start(tsh, args);
    std::thread::sleep(Duration::from_millis(1500));
    // tsh may be gone already (a refusal): what it showed is the answer, not a failed write.
    if let Some(w) = p.writer.as_mut() {
        let _ = w.write_all(input.as_bytes());
    }
    p.finish(timeout)
}

/// `tsh ARGS` on a pseudo-terminal that a test types into over time and reads as it goes
/// (an interactive session, a join). Killed on drop.
pub struct PtyTsh {
    child: Child,
    /// The terminal's side the command has, kept to see how it leaves the terminal.
    slave: Option<std::os::fd::OwnedFd>,
    writer: Option<std::fs::File>,
    seen: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl PtyTsh {
    /// Starts `tsh ARGS` on a 120x40 terminal.
    pub fn start(tsh: &Tsh, args: &[&str]) -> PtyTsh {
        let mut cmd = command_in(tsh.netns.as_deref(), &bin("tsh"));
        cmd.args(args);
        for (k, v) in tsh.env() {
            cmd.env(k, v);
        }
        PtyTsh::start_command(cmd)
    }

    /// Starts any command (`kubectl exec -it`, say) on a 120x40 terminal.
    pub fn start_command(mut cmd: Command) -> PtyTsh {
        use std::io::Read;
        let ws = nix::pty::Winsize { ws_row: 40, ws_col: 120, ws_xpixel: 0, ws_ypixel: 0 };
        let pty = nix::pty::openpty(&ws, None).expect("openpty");
        cmd.env("TERM", "xterm");
        let slave = pty.slave;
        let kept = slave.try_clone().expect("dup");
        cmd.stdin(Stdio::from(slave.try_clone().expect("dup")))
            .stdout(Stdio::from(slave.try_clone().expect("dup")))
            .stderr(Stdio::from(slave));
        let child = cmd.spawn().expect("spawn the command");
        drop(cmd);
        let master = std::fs::File::from(pty.master);
        let writer = master.try_clone().expect("dup master");
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let into = seen.clone();
        let reader = std::thread::spawn(move || {
            let mut master = master;
            let mut buf = [0u8; 4096];
            while let Ok(n) = master.read(&mut buf) {
                if n == 0 {
                    break;
                }
                if let Ok(mut s) = into.lock() {
                    s.extend_from_slice(&buf[..n]);
                }
            }
        });
        PtyTsh { child, slave: Some(kept), writer: Some(writer), seen, reader: Some(reader) }
    }

    /// Everything the terminal showed so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().map(|s| s.clone()).unwrap_or_default()).into_owned()
    }

    /// Whether the terminal is blocking (a program that makes it non-blocking must put it back
    /// before it exits: the shell after it shares the open file and would read `EAGAIN`).
    pub fn terminal_blocking(&self) -> bool {
        use nix::fcntl::{FcntlArg, OFlag, fcntl};
        let Some(slave) = &self.slave else { return true };
        fcntl(slave, FcntlArg::F_GETFL).is_ok_and(|f| !OFlag::from_bits_truncate(f).contains(OFlag::O_NONBLOCK))
    }

    /// Types `keys`.
    pub fn type_keys(&mut self, keys: &str) {
        self.writer.as_mut().expect("the terminal is open").write_all(keys.as_bytes()).expect("type into the terminal");
    }

    /// Waits until the terminal shows `needle`; panics with what it showed after `timeout`.
    #[track_caller]
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let t = self.text();
            if t.contains(needle) {
                return t;
            }
            assert!(Instant::now() < deadline, "the terminal never showed {needle:?}; it showed:\n{t}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for tsh to exit; its exit code (-1 when killed after `timeout`).
    pub fn wait_exit(&mut self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return -1;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl PtyTsh {
    /// Waits for tsh to exit (killing it at `timeout`), then for the last of its output:
    /// everything the terminal showed, and the exit code (-1 when killed).
    pub fn finish(mut self, timeout: Duration) -> (String, i32) {
        let code = self.wait_exit(timeout);
        // Closing our sides lets the reader see the end once the child is gone.
        self.writer = None;
        self.slave = None;
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        (self.text(), code)
    }
}

impl Drop for PtyTsh {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sh(cmd: &str) -> std::process::Output {
    Command::new("/bin/sh").arg("-c").arg(cmd).output().expect("sh")
}

#[track_caller]
fn must(cmd: &str) {
    let o = sh(cmd);
    assert!(o.status.success(), "`{cmd}` failed: {}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
}

/// Two network namespaces (a root's and a leaf's) joined by a veth pair on a random
/// 10.x.y.0/24; deleted, with every process inside, on drop. Declare it before the clusters
/// that run inside it, so that they are stopped first.
pub struct Netns {
    /// The root's namespace.
    pub root: String,
    /// The leaf's namespace.
    pub leaf: String,
    /// The root's address.
    pub root_ip: String,
    /// The leaf's address.
    pub leaf_ip: String,
    /// The leaf's end of the veth pair.
    leaf_if: String,
}

impl Netns {
    /// Creates the namespaces; with `firewall`, the leaf's namespace drops every inbound
    /// connection it did not start (nftables).
    pub fn new(firewall: bool) -> Netns {
        assert!(sh("command -v ip && command -v nft").status.success(), "these tests need iproute2 and nftables (.ci/run installs them)");
        let tag = shared::certs::random_hex(3);
        let b = shared::certs::random_bytes(2);
        let net = format!("10.{}.{}", 200 + b[0] % 50, b[1]);
        let n = Netns {
            root: format!("tpr{tag}"),
            leaf: format!("tpl{tag}"),
            root_ip: format!("{net}.1"),
            leaf_ip: format!("{net}.2"),
            leaf_if: format!("{tag}b"),
        };
        must(&format!("ip netns add {}", n.root));
        must(&format!("ip netns add {}", n.leaf));
        must(&format!("ip link add {tag}a netns {} type veth peer name {tag}b netns {}", n.root, n.leaf));
        for (ns, ip, dev) in [(&n.root, &n.root_ip, format!("{tag}a")), (&n.leaf, &n.leaf_ip, format!("{tag}b"))] {
            must(&format!("ip -n {ns} addr add {ip}/24 dev {dev} && ip -n {ns} link set {dev} up && ip -n {ns} link set lo up"));
        }
        if firewall {
            must(&format!(
                "ip netns exec {} nft -f - <<'EOF'\ntable inet leaf_firewall {{\n  chain input {{\n    type filter hook input priority 0; policy drop;\n    iif lo accept\n    ct state established,related accept\n  }}\n}}\nEOF",
                n.leaf
            ));
        }
        n
    }

    /// Cuts the network between root and leaf (the leaf's link goes down).
    pub fn cut(&self) {
        must(&format!("ip -n {} link set {} down", self.leaf, self.leaf_if));
    }

    /// Heals a [`Netns::cut`].
    pub fn heal(&self) {
        must(&format!("ip -n {} link set {} up", self.leaf, self.leaf_if));
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for ns in [&self.root, &self.leaf] {
            let _ = sh(&format!("for p in $(ip netns pids {ns} 2>/dev/null); do kill -9 $p; done; ip netns del {ns}"));
        }
    }
}

/// The password every test user gets.
pub const PASSWORD: &str = "correct-horse-battery";

/// The guide's leaf role: login `visitor` on every node.
pub const VISITOR: &str = "kind: role\nversion: v5\nmetadata:\n  name: visitor\nspec:\n  allow:\n    logins:\n      - visitor\n    node_labels:\n      '*': '*'\n";

/// The guide's role_map: root role `access` becomes leaf role `visitor`.
pub const ACCESS_TO_VISITOR: &str = "    - remote: \"access\"\n      local: [\"visitor\"]\n";

/// A trusted_cluster resource pointing at `root`.
pub fn tc_yaml(name: &str, token: &str, root: &Cluster, enabled: bool, role_map: &str) -> String {
    format!(
        "kind: trusted_cluster\nversion: v2\nmetadata:\n  name: {name}\nspec:\n  enabled: {enabled}\n  token: {token}\n  tunnel_addr: {web}\n  web_proxy_addr: {web}\n  role_map:\n{role_map}",
        web = root.web
    )
}

/// `teleport.storage` YAML (under `teleport:`) for a PostgreSQL database.
pub fn postgres_storage(conn: &str, audit: Option<&str>) -> String {
    let mut s = format!("  storage:\n    type: postgresql\n    conn_string: {conn}\n");
    if let Some(a) = audit {
        s.push_str(&format!("    audit_events_uri: [\"{a}\"]\n"));
    }
    s
}

/// Options for process `node` of cluster `name` keeping its state in `conn` (PostgreSQL).
pub fn ha_opts(name: &str, node: &str, conn: &str) -> ClusterOpts {
    let mut o = ClusterOpts::new(name);
    o.node = false;
    o.node_name = Some(node.into());
    o.teleport_extra = postgres_storage(conn, None);
    o
}

/// Starts these processes at the same moment (as machines booting together would).
pub fn start_together(opts: Vec<ClusterOpts>) -> Vec<Cluster> {
    std::thread::scope(|s| {
        let started: Vec<_> = opts.into_iter().map(|o| s.spawn(move || Cluster::start(o))).collect();
        started.into_iter().map(|h| h.join().expect("a process failed to start")).collect()
    })
}

/// A root and a leaf that trusts it with a tunnel node, and two root users signed in: `alice`
/// (root role `access`, which the leaf maps to `visitor`) and `bob` (root roles `bob_roles`, where
/// root role `restricted` maps to the leaf's `bob_leaf_role`). `leaf_roles` (YAML defining
/// `visitor` and `bob_leaf_role`) is created on the leaf first.
pub struct LeafWithTwoUsers {
    /// The root (with its in-process node).
    pub root: Cluster,
    /// The leaf (with its in-process node).
    pub leaf: Cluster,
    /// A node of the leaf, through its reverse tunnel.
    pub node: NodeProc,
    /// `alice`, signed in to the root.
    pub alice: Tsh,
    /// `bob`, signed in to the root.
    pub bob: Tsh,
}

/// Starts a [`LeafWithTwoUsers`]; the leaf's tunnel node is named `node`.
pub fn leaf_with_two_users(tag: &str, leaf_roles: &str, bob_leaf_role: &str, bob_roles: &str, node: &str) -> LeafWithTwoUsers {
    ensure_unix_user("visitor");
    let root = Cluster::start(ClusterOpts::new(&format!("root-{tag}.example.com")));
    let leaf = Cluster::start({
        let mut o = ClusterOpts::new(&format!("leaf-{tag}.example.com"));
        o.env = vec![("SSL_CERT_FILE".into(), root.web_ca().display().to_string())];
        o
    });
    leaf.create("roles.yaml", leaf_roles).ok("leaf roles");
    root.create("restricted.yaml", "kind: role\nversion: v5\nmetadata: {name: restricted}\nspec:\n  allow:\n    logins: [visitor]\n")
        .ok("root role");
    root.add_user("alice", "access", "visitor", PASSWORD);
    root.add_user("bob", bob_roles, "visitor", PASSWORD);
    let token = root.trusted_cluster_token("5m");
    let role_map = format!("{ACCESS_TO_VISITOR}    - remote: \"restricted\"\n      local: [\"{bob_leaf_role}\"]\n");
    leaf.create("tc.yaml", &tc_yaml(&root.opts.name, &token, &root, true, &role_map)).ok("trust");
    root.wait_remote_status(&leaf.opts.name, "online", Duration::from_secs(30));
    let node = NodeProc::join(&leaf, node, true, "");
    let mut alice = Tsh::new(&format!("alice-{tag}"));
    alice.login(&root, "alice", PASSWORD).ok("alice login");
    let mut bob = Tsh::new(&format!("bob-{tag}"));
    bob.login(&root, "bob", PASSWORD).ok("bob login");
    LeafWithTwoUsers { root, leaf, node, alice, bob }
}

/// A root and a leaf, and a `tsh` signed in to the root as `myuser` (roles access and editor,
/// login visitor).
pub struct Pair {
    /// The root cluster (no node).
    pub root: Cluster,
    /// The leaf cluster (role visitor).
    pub leaf: Cluster,
    /// `myuser`, signed in to the root.
    pub tsh: Tsh,
}

/// A root and a leaf (with an in-process node if `leaf_node`), not yet trusted.
pub fn pair(tag: &str, leaf_node: bool) -> Pair {
    let mut ro = ClusterOpts::new(&format!("root-{tag}.example.com"));
    ro.node = false;
    let mut lo = ClusterOpts::new(&format!("leaf-{tag}.example.com"));
    lo.node = leaf_node;
    lo.insecure = true;
    Pair::start(tag, ro, lo)
}

impl Pair {
    /// Starts a root and a leaf with these options and signs `myuser` in to the root.
    pub fn start(tag: &str, root: ClusterOpts, leaf: ClusterOpts) -> Pair {
        ensure_unix_user("visitor");
        let root = Cluster::start(root);
        let leaf = Cluster::start(leaf);
        leaf.create("visitor.yaml", VISITOR).ok("leaf visitor role");
        root.add_user("myuser", "access,editor", "visitor", PASSWORD);
        let mut tsh = Tsh::new(tag);
        tsh.netns = root.opts.netns.clone();
        tsh.login(&root, "myuser", PASSWORD).ok("login to root");
        Pair { root, leaf, tsh }
    }
    /// Creates the trusted_cluster on the leaf with a fresh token.
    pub fn trust(&self, enabled: bool, role_map: &str) -> Out {
        let token = self.root.trusted_cluster_token("5m");
        self.leaf.create("trusted_cluster.yaml", &tc_yaml("rootcluster.example.com", &token, &self.root, enabled, role_map))
    }
    /// Trusts with the guide's role_map and waits until the leaf is online.
    pub fn trust_online(&self) {
        self.trust(true, ACCESS_TO_VISITOR).ok("trust");
        self.root.wait_remote_status(self.leaf_name(), "online", Duration::from_secs(30));
    }
    /// The leaf's name.
    pub fn leaf_name(&self) -> &str {
        &self.leaf.opts.name
    }
    /// The root's name.
    pub fn root_name(&self) -> &str {
        &self.root.opts.name
    }
    /// `tsh ssh --cluster=<leaf> visitor@host cmd`.
    pub fn ssh(&self, host: &str, cmd: &str) -> Out {
        self.tsh.run(&["ssh", &format!("--cluster={}", self.leaf_name()), &format!("visitor@{host}"), cmd])
    }
}
