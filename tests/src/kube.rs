//! The Kubernetes API server the tests talk to: the **stand-in** (`src/bin/kube-standin.rs`),
//! since no real one can run on these machines. Everything the tests ask of it goes through
//! what a real one also offers: a kubeconfig (`kubeconfig` for a `kubernetes_service`,
//! `admin.kubeconfig` for direct `kubectl`) and the audit of requests it received
//! (`requests()`), so the same tests can point at a real API server.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::{TempDir, bin, free_ip, run};

/// A running stand-in API server, killed on drop.
pub struct KubeApi {
    /// `ip:6443`.
    pub addr: String,
    /// Its files.
    pub dir: TempDir,
    child: Child,
}

impl KubeApi {
    /// Starts one named `name` (the name its kubeconfig context has).
    pub fn start(name: &str) -> KubeApi {
        KubeApi::start_with(name, &[])
    }

    /// [`KubeApi::start`] with extra flags (`--no-websocket`: exec over SPDY only, as some
    /// API servers).
    pub fn start_with(name: &str, flags: &[&str]) -> KubeApi {
        let ip = free_ip(&[6443]);
        let addr = format!("{ip}:6443");
        let dir = TempDir::new(&format!("kube-{name}"));
        let mut child = Command::new(bin("kube-standin"))
            .args(["--listen", &addr, "--dir", &dir.path().display().to_string(), "--name", name])
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start kube-standin");
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let _ = out.read_line(&mut line);
        assert_eq!(line.trim(), "ready", "kube-standin did not start");
        KubeApi { addr, dir, child }
    }

    /// The kubeconfig a `kubernetes_service` uses (may impersonate).
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// A kubeconfig with full rights, for `kubectl` straight to the API server.
    pub fn admin_kubeconfig(&self) -> PathBuf {
        self.dir.path().join("admin.kubeconfig")
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("requests.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the real `kubectl` with `kubeconfig` (and extra environment).
pub fn kubectl(kubeconfig: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> crate::Out {
    let k = kubeconfig.display().to_string();
    let mut e: Vec<(&str, &str)> = vec![("KUBECONFIG", k.as_str())];
    e.extend_from_slice(env);
    run(std::path::Path::new("kubectl"), args, &e, None, Duration::from_secs(60))
}
