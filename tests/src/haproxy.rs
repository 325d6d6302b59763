//! A real TCP load balancer for the tests: Debian's `haproxy`, in front of a cluster's
//! processes on its own 127.0.0.x address, with a generated configuration (the one
//! `docs/high-availability.md` shows) and health checks on each process's `/readyz`. Stopped
//! when dropped.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{TempDir, free_ip, wait_for};

/// One backend process: its web port and its diagnostics port (for the health check).
#[derive(Debug, Clone)]
pub struct Backend {
    /// A name for HAProxy's stats (`root-a`).
    pub name: String,
    /// `ip:3080`.
    pub web: String,
    /// `ip:3000` (`teleport.diag_addr`).
    pub diag: String,
}

impl Backend {
    /// A process listening on `ip` (web 3080, diagnostics 3000).
    pub fn at(name: &str, ip: &str) -> Backend {
        Backend { name: name.into(), web: format!("{ip}:3080"), diag: format!("{ip}:3000") }
    }
}

/// The configuration the tests run (and the docs show): TCP mode, round robin, a health check
/// every 500ms on `/readyz` (down after 2 failures, up after 2 successes), and a refused
/// connection sent to another server.
pub fn config(bind: &str, backends: &[Backend], stats_socket: &str) -> String {
    let mut s = format!(
        "global\n    maxconn 4000\n    stats socket {stats_socket} mode 600 level admin\n\n\
         defaults\n    mode tcp\n    timeout connect 2s\n    timeout client 1h\n    timeout server 1h\n    retries 2\n    option redispatch\n\n\
         frontend teleport\n    bind {bind}\n    default_backend teleport_proxies\n\n\
         backend teleport_proxies\n    balance roundrobin\n    option httpchk GET /readyz\n    http-check expect status 200\n\
         \x20   default-server inter 500ms fall 2 rise 2\n"
    );
    for b in backends {
        let (host, port) = b.diag.rsplit_once(':').unwrap_or((b.diag.as_str(), "3000"));
        s.push_str(&format!("    server {} {} check addr {host} port {port}\n", b.name, b.web));
    }
    s
}

/// A running HAProxy.
pub struct Haproxy {
    /// Where clients connect (`ip:443`).
    pub addr: String,
    dir: TempDir,
    child: Option<Child>,
}

impl Haproxy {
    /// Starts HAProxy on a free 127.0.0.x address, port 443, in front of `backends` (which
    /// need not be running yet: they join when their health checks pass).
    pub fn start(backends: &[Backend]) -> Haproxy {
        let ip = free_ip(&[443]);
        let addr = format!("{ip}:443");
        let dir = TempDir::new("haproxy");
        let sock = dir.path().join("admin.sock").display().to_string();
        let cfg = dir.path().join("haproxy.cfg");
        std::fs::write(&cfg, config(&addr, backends, &sock)).expect("write haproxy.cfg");
        let log = std::fs::File::create(dir.path().join("haproxy.log")).expect("haproxy log");
        let child = Command::new("haproxy")
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start haproxy (is the haproxy package installed? run ./scripts/deps.sh)");
        let mut h = Haproxy { addr, dir, child: Some(child) };
        wait_for("haproxy to listen", Duration::from_secs(10), || std::net::TcpStream::connect(&h.addr).is_ok().then_some(()));
        if let Some(c) = h.child.as_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            panic!("haproxy exited with {status}: {}", h.log());
        }
        h
    }

    /// HAProxy's own output.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("haproxy.log")).unwrap_or_default()
    }

    /// Runs a command on the stats socket.
    pub fn admin(&self, command: &str) -> String {
        let Ok(mut s) = UnixStream::connect(self.dir.path().join("admin.sock")) else { return String::new() };
        let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = s.write_all(format!("{command}\n").as_bytes());
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out
    }

    /// Each server's state as HAProxy sees it (`UP`, `DOWN`, ...), from `show stat`.
    pub fn states(&self) -> Vec<(String, String)> {
        let csv = self.admin("show stat");
        let mut out = Vec::new();
        for line in csv.lines().filter(|l| l.starts_with("teleport_proxies,")) {
            let f: Vec<&str> = line.split(',').collect();
            if f.len() > 17 && f[1] != "BACKEND" {
                out.push((f[1].to_string(), f[17].to_string()));
            }
        }
        out
    }

    /// Whether HAProxy sends to `server` now.
    pub fn is_up(&self, server: &str) -> bool {
        self.states().iter().any(|(n, s)| n == server && s.starts_with("UP"))
    }

    /// Waits until HAProxy's view of `server` is `up`.
    pub fn wait_state(&self, server: &str, up: bool, timeout: Duration) {
        wait_for(&format!("haproxy to mark {server} {}", if up { "up" } else { "down" }), timeout, || {
            (self.is_up(server) == up).then_some(())
        });
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
