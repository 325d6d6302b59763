//! Application access (reference `kube-app-db.md` §3), in two halves as Kubernetes:
//! `front.rs` at the proxy (browsers' cookies and the launch's end, app certificates, where the
//! app is), `engine.rs` in the cluster that serves the app (decides, signs the token with
//! `shared::jwt`, proxies), in the cluster process or in a process of its own over its tunnel.
//! See docs/applications.md.

pub mod engine;
pub mod front;

use shared::resource::App;

/// The apps with their public addresses: their own, else `<name>.<proxy public host>` when that
/// host is a DNS name (Teleport's default), else none (reached by `tsh` alone).
pub fn with_public_addrs(apps: &[App], proxy_public_addr: &str) -> Vec<App> {
    let host = shared::app::host_only(proxy_public_addr);
    apps.iter()
        .cloned()
        .map(|mut a| {
            if a.spec.public_addr.is_empty() && shared::app::is_dns_name(&host) {
                a.spec.public_addr = format!("{}.{host}", a.metadata.name);
            }
            a
        })
        .collect()
}
