//! The applications the app-access tests put behind a leaf, each a real server on its own
//! loopback address, killed on drop: Debian's `python3-httpbin` (echoes exactly what arrives),
//! `apache2` with `mod_auth_openidc` (an app that verifies the cluster's JWT itself against its
//! published keys, and shows who it says the user is), `redis-server` (a TCP app), and
//! `ws-echo` (a WebSocket echo of our own). `scripts/deps.sh` installs the packages.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{TempDir, bin, free_ip, wait_for};

/// A running app, killed on drop.
pub struct AppProc {
    /// `ip:port`.
    pub addr: String,
    /// Its files.
    pub dir: TempDir,
    child: Child,
}

impl Drop for AppProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl AppProc {
    /// Its log (stderr), for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

fn spawn(tag: &str, port: u16, mut cmd: impl FnMut(&str, &TempDir) -> Command) -> AppProc {
    let ip = free_ip(&[port]);
    let addr = format!("{ip}:{port}");
    let dir = TempDir::new(tag);
    let log = std::fs::File::create(dir.path().join("log")).expect("log");
    let child = cmd(&addr, &dir).stdin(Stdio::null()).stdout(log.try_clone().expect("log")).stderr(log).spawn().expect(tag);
    let mut p = AppProc { addr: addr.clone(), dir, child };
    let log = p.dir.path().join("log");
    wait_for(&format!("{tag} to listen on {addr}"), Duration::from_secs(30), || {
        if let Ok(Some(status)) = p.child.try_wait() {
            panic!("{tag} exited with {status}: {}", std::fs::read_to_string(&log).unwrap_or_default());
        }
        std::net::TcpStream::connect(&addr).ok().map(|_| ())
    });
    p
}

/// `python3-httpbin` (Debian's Python, not another one on the PATH).
pub fn httpbin() -> AppProc {
    spawn("httpbin", 8000, |addr, _| {
        let (ip, port) = addr.split_once(':').expect("addr");
        let mut c = Command::new("/usr/bin/python3");
        c.args(["-c", &format!("from httpbin import app; app.run(host='{ip}', port={port}, threaded=True)")]);
        c
    })
}

/// `redis-server`, without persistence.
pub fn redis() -> AppProc {
    spawn("redis", 6379, |addr, dir| {
        let (ip, port) = addr.split_once(':').expect("addr");
        let mut c = Command::new("redis-server");
        c.args(["--bind", ip, "--port", port, "--save", "", "--appendonly", "no", "--dir", &dir.path().display().to_string()]);
        c
    })
}

/// Our WebSocket echo.
pub fn ws_echo() -> AppProc {
    let ip = free_ip(&[8765]);
    let addr = format!("{ip}:8765");
    let dir = TempDir::new("ws-echo");
    let mut child = Command::new(bin("ws-echo"))
        .args(["--listen", &addr])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start ws-echo");
    let mut line = String::new();
    let _ = BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line);
    assert_eq!(line.trim(), "ready", "ws-echo did not start");
    AppProc { addr, dir, child }
}

/// Apache with `mod_auth_openidc` as an OAuth 2.0 resource server: every request needs
/// `Authorization: Bearer <JWT>` that verifies with the keys at `jwks_url` (fetched over TLS
/// checked against `ca_file`), unexpired; the page then shows the token's `username`.
pub fn apache_oidc(jwks_url: &str, ca_file: &Path) -> AppProc {
    spawn("apache", 8080, |addr, dir| {
        let d = dir.path();
        let docs = d.join("htdocs");
        std::fs::create_dir_all(&docs).expect("htdocs");
        std::fs::write(
            docs.join("index.shtml"),
            "<html><body>Hello <span id=\"user\"><!--#echo var=\"REMOTE_USER\" --></span></body></html>\n",
        )
        .expect("page");
        let m = "/usr/lib/apache2/modules";
        let conf = format!(
            "ServerRoot {root}\nServerName app.test\nListen {addr}\nPidFile {root}/httpd.pid\nDefaultRuntimeDir {root}\nMutex file:{root}\n\
             ErrorLog {root}/log\nLogLevel warn\nUser nobody\nGroup nogroup\n\
             LoadModule mpm_event_module {m}/mod_mpm_event.so\nLoadModule authz_core_module {m}/mod_authz_core.so\n\
             LoadModule authz_user_module {m}/mod_authz_user.so\nLoadModule authn_core_module {m}/mod_authn_core.so\nLoadModule auth_openidc_module {m}/mod_auth_openidc.so\n\
             LoadModule include_module {m}/mod_include.so\nLoadModule mime_module {m}/mod_mime.so\nLoadModule dir_module {m}/mod_dir.so\n\
             TypesConfig /etc/mime.types\nDocumentRoot {docs}\nDirectoryIndex index.shtml\nAddType text/html .shtml\nAddOutputFilter INCLUDES .shtml\n\
             OIDCOAuthVerifyJwksUri {jwks_url}\nOIDCCABundlePath {ca}\nOIDCOAuthRemoteUserClaim username\n\
             OIDCOAuthAcceptTokenAs header\nOIDCCryptoPassphrase {pass}\n\
             <Directory {docs}>\n  Options +Includes\n  AuthType oauth20\n  Require valid-user\n</Directory>\n",
            root = d.display(),
            docs = docs.display(),
            ca = ca_file.display(),
            pass = shared::certs::random_hex(16),
        );
        std::fs::write(d.join("httpd.conf"), conf).expect("conf");
        // Apache drops to `nobody`, who must read the pages.
        for p in [d.to_path_buf(), docs.clone(), docs.join("index.shtml")] {
            let _ = Command::new("chmod").arg("a+rx").arg(&p).status();
        }
        let mut c = Command::new("/usr/sbin/apache2");
        c.args(["-X", "-f", &d.join("httpd.conf").display().to_string()]);
        c
    })
}
