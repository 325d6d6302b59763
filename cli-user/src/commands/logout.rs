//! `tsh logout`: removes keys and certificates (all profiles, or the one for `--proxy`).

use std::io::Write;

use shared::client::host_of;
use shared::profile::ProfileStore;

use super::Global;

/// Runs the command.
pub fn exec(g: &Global, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = ProfileStore::from_env();
    if let Some(p) = &g.proxy {
        let name = host_of(p);
        let user = store.load(&name).map(|(p, _)| p.username).unwrap_or_default();
        store.remove(&name)?;
        super::kube::remove_entries(Some(&name))?;
        writeln!(out, "Logged out {user} from {name}.")?;
        return Ok(());
    }
    let names = store.names();
    for n in &names {
        store.remove(n)?;
        super::kube::remove_entries(Some(n))?;
    }
    if names.is_empty() {
        writeln!(out, "Not logged in.")?;
    } else {
        writeln!(out, "Logged out all users from all proxies.")?;
    }
    Ok(())
}
