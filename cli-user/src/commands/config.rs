//! `tsh config`: an OpenSSH client configuration so stock `ssh` reaches every node of the root
//! and of each leaf you can see (`ssh visitor@node.<cluster>`), through `tsh proxy ssh`.

use std::io::Write;

use super::Global;
use crate::context::Session;

/// Print an OpenSSH configuration.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example:\n  tsh config >> ~/.ssh/config\n  ssh visitor@node1.leafcluster.example.com")]
pub struct Args {}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\\\""))
}

/// Runs the command.
pub async fn exec(_a: Args, g: &Global, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut session = Session::load(g)?;
    session.require_valid()?;
    // Make sure every visible leaf's host CA is in the profile's known_hosts.
    if let Ok(cas) = session.root_api()?.get::<Vec<shared::api::TrustedCa>>(shared::api::path::HOST_CAS).await {
        session.creds.host_cas = cas;
        if let Some(n) = &session.name {
            shared::profile::ProfileStore::from_env().save(n, &session.profile, &session.creds)?;
        }
    }
    let store = shared::profile::ProfileStore::from_env();
    let name = session.name.clone().unwrap_or_default();
    let dir = store.profile_path(&name);
    let proxy = session.profile.web_proxy_addr.clone();
    let proxy_host = shared::client::host_of(&proxy);
    let tsh = std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_else(|_| "tsh".into());
    let home = std::env::var(shared::profile::ENV_HOME)
        .ok()
        .map(|h| format!("env {}={} ", shared::profile::ENV_HOME, quote(&h)))
        .unwrap_or_default();
    let mut clusters: Vec<String> = session.creds.host_cas.iter().filter(|c| c.ca_type == "host").map(|c| c.cluster_name.clone()).collect();
    clusters.dedup();
    writeln!(out, "# Begin generated Teleport configuration for {proxy_host} by tsh\n")?;
    for cluster in &clusters {
        writeln!(out, "# Common flags for all {cluster} hosts")?;
        writeln!(out, "Host *.{cluster} {proxy_host}")?;
        writeln!(out, "    UserKnownHostsFile {}", quote(&dir.join("known_hosts").display().to_string()))?;
        writeln!(out, "    IdentityFile {}", quote(&dir.join("id_ed25519").display().to_string()))?;
        writeln!(out, "    CertificateFile {}", quote(&dir.join("id_ed25519-cert.pub").display().to_string()))?;
        writeln!(out, "    HostKeyAlgorithms ssh-ed25519-cert-v01@openssh.com")?;
        writeln!(out)?;
        writeln!(out, "# Flags for all {cluster} hosts except the proxy")?;
        writeln!(out, "Host *.{cluster} !{proxy_host}")?;
        writeln!(out, "    Port 3022")?;
        writeln!(out, "    ProxyCommand {home}{} proxy ssh --cluster={cluster} --proxy={proxy} %r@%h:%p", quote(&tsh))?;
        writeln!(out)?;
    }
    writeln!(out, "# End generated Teleport configuration")?;
    Ok(())
}
