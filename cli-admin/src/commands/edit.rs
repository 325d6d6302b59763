//! `tctl edit KIND/NAME`: opens the resource in `$EDITOR` (then `$VISUAL`, then `vi`) and applies
//! it if it changed. If someone else changed it meanwhile, the edit fails and nothing is applied.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use anyhow::{Context, anyhow, bail};
use shared::api::{UpsertResourceRequest, UpsertResourceResponse, path};
use shared::resource::{Kind, ResourceRef};

use super::create::{describe, validate};
use super::get::fetch;
use crate::client::{ConnArgs, connect};

/// Edit a resource.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples (from the guide):\n  tctl edit user/myuser\n  tctl edit trusted_cluster/rootcluster.example.com")]
pub struct Args {
    /// kind/name, such as user/myuser or tc/root.example.com.
    reference: String,
}

fn editor() -> String {
    ["EDITOR", "VISUAL"].iter().find_map(|v| std::env::var(v).ok().filter(|s| !s.trim().is_empty())).unwrap_or_else(|| "vi".into())
}

/// Runs the command.
pub async fn exec(a: Args, c: &ConnArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    let r = ResourceRef::parse(&a.reference)?;
    // The cluster_auth_preference is one per cluster: `tctl edit cap` needs no name.
    if r.name.is_none() && r.kind != Kind::AuthPreference {
        bail!("provide a resource name to edit, for example: tctl edit {}/NAME", r.kind.as_str());
    }
    if matches!(r.kind, Kind::RemoteCluster | Kind::CertAuthority | Kind::Node | Kind::TunnelConnection | Kind::Proxy) {
        let hint = if r.kind == Kind::RemoteCluster { "; use 'tctl update rc/<name> --set-labels=...'" } else { "" };
        bail!("editing resources of type {:?} is not supported{hint}", r.kind.as_str());
    }
    let conn = connect(c)?;
    let mut values = fetch(&conn.api, &r, false).await?;
    if values.len() != 1 {
        bail!("{} matches {} resources; edit one at a time", a.reference, values.len());
    }
    let original = values.remove(0);
    let id = original["metadata"]["id"].as_i64();
    let text = shared::yaml::to_yaml(&original);
    let path = std::env::temp_dir().join(format!("tctl-edit-{}-{}.yaml", std::process::id(), shared::certs::random_hex(4)));
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        f.write_all(text.as_bytes())?;
    }
    let result = edit_file(&path, &text).await;
    let _ = std::fs::remove_file(&path);
    let Some(edited) = result? else {
        writeln!(err, "edit canceled: no changes were made")?;
        return Ok(());
    };
    let docs = shared::yaml::parse_documents("edited resource", edited.as_bytes())?;
    if docs.len() != 1 {
        bail!("the edited file must hold exactly one resource; nothing was changed");
    }
    // A connector comes without its secrets, which the server keeps: check the edit with
    // stand-ins for them (never sent, never shown).
    let mut checked = docs[0].clone();
    if let Ok(shared::resource::Resource::Connector(mut conn)) = shared::resource::Resource::from_value(checked.value.clone()) {
        conn.fill_missing_secrets(|_| Some(serde_json::json!("(kept by the server)")));
        checked.value = serde_json::to_value(&conn)?;
    }
    let res = validate(&checked, "edited resource")?;
    if res.kind() != r.kind || res.name() != original["metadata"]["name"].as_str().unwrap_or_default() {
        bail!("editing cannot change a resource's kind or name; nothing was changed (use tctl create for a new resource)");
    }
    let mut value = docs[0].value.clone();
    if let Some(m) = value.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        m.remove("id");
    }
    let req = UpsertResourceRequest { resource: value, force: false, expected_id: id };
    let resp: UpsertResourceResponse = conn.api.post(path::RESOURCES, &req).await?;
    for w in &resp.warnings {
        writeln!(err, "WARNING: {w}")?;
    }
    writeln!(out, "{} {:?} has been updated", describe(r.kind), resp.name)?;
    Ok(())
}

/// Runs the editor; `None` when the text did not change.
async fn edit_file(path: &std::path::Path, before: &str) -> anyhow::Result<Option<String>> {
    let ed = editor();
    let status = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{ed} \"$1\""))
        .arg("tctl-editor")
        .arg(path)
        .status()
        .await
        .with_context(|| format!("cannot run the editor {ed:?}; set $EDITOR"))?;
    if !status.success() {
        return Err(anyhow!("the editor {ed:?} exited with {status}; nothing was changed"));
    }
    let after = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(if after == before { None } else { Some(after) })
}
