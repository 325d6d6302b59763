//! `tsh status [-f json|yaml]` (reference §7.3).

use std::io::Write;
use std::time::Duration;

use serde::Serialize;
use shared::output::Format;
use shared::profile::{Credentials, Profile, ProfileStore};

use super::{Global, parse_format};
use crate::context::{Session, valid_until};

/// Show the signed-in user.
#[derive(Debug, clap::Args)]
#[command(after_help = "Example (from the guide):\n  tsh status -f json | jq -r '.active.roles | join(\",\")'")]
pub struct Args {
    /// Output format: text, json or yaml.
    #[arg(short = 'f', long, default_value = "text", value_parser = parse_format)]
    format: Format,
}

/// One profile in JSON/YAML.
#[derive(Debug, Serialize)]
pub struct ProfileInfo {
    profile_url: String,
    username: String,
    cluster: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    roles: Vec<String>,
    #[serde(skip_serializing_if = "shared::template::Traits::is_empty")]
    traits: shared::template::Traits,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    logins: Vec<String>,
    kubernetes_enabled: bool,
    valid_until: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    extensions: Vec<String>,
}

#[derive(Debug, Serialize)]
struct StatusOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    active: Option<ProfileInfo>,
    profiles: Vec<ProfileInfo>,
}

/// Logins worth showing (internal principals hidden).
fn logins(creds: &Credentials) -> Vec<String> {
    creds.ssh_cert.valid_principals().iter().filter(|p| !p.starts_with('-')).cloned().collect()
}

fn info(p: &Profile, c: &Credentials) -> ProfileInfo {
    let id = shared::identity::user_from_ssh_cert(&c.ssh_cert).ok();
    ProfileInfo {
        profile_url: format!("https://{}", p.web_proxy_addr),
        username: p.username.clone(),
        cluster: p.site.clone(),
        roles: id.as_ref().map(|i| i.roles.clone()).unwrap_or_default(),
        traits: id.map(|i| i.traits).unwrap_or_default(),
        logins: logins(c),
        kubernetes_enabled: false,
        valid_until: shared::timefmt::rfc3339(valid_until(c)),
        extensions: c.ssh_cert.extensions().keys().filter(|k| k.starts_with("permit-")).cloned().collect(),
    }
}

/// Prints a profile as text (also after `tsh login`).
pub fn print_text(out: &mut dyn Write, p: &Profile, c: &Credentials, active: bool) -> anyhow::Result<()> {
    let i = info(p, c);
    let until = valid_until(c);
    let now = time::OffsetDateTime::now_utc();
    let left = if until > now {
        format!("valid for {}", shared::timefmt::go_duration(Duration::from_secs((until - now).whole_seconds().max(0) as u64)))
    } else {
        "EXPIRED".into()
    };
    let mark = if active { "> " } else { "  " };
    writeln!(out, "{mark}Profile URL:        {}", i.profile_url)?;
    writeln!(out, "  Logged in as:       {}", i.username)?;
    writeln!(out, "  Cluster:            {}", i.cluster)?;
    writeln!(out, "  Roles:              {}", i.roles.join(", "))?;
    writeln!(out, "  Logins:             {}", i.logins.join(", "))?;
    writeln!(out, "  Kubernetes:         disabled")?;
    writeln!(out, "  Valid until:        {} [{left}]", shared::timefmt::go_time(until))?;
    writeln!(out, "  Extensions:         {}", i.extensions.join(", "))?;
    writeln!(out)?;
    Ok(())
}

/// Runs the command.
pub fn exec(a: Args, g: &Global, out: &mut dyn Write) -> anyhow::Result<()> {
    let store = ProfileStore::from_env();
    let active = Session::load(g)?;
    let others: Vec<(Profile, Credentials)> =
        store.names().into_iter().filter(|n| Some(n) != active.name.as_ref()).filter_map(|n| store.load(&n).ok()).collect();
    match a.format {
        Format::Text => {
            print_text(out, &active.profile, &active.creds, true)?;
            for (p, c) in &others {
                print_text(out, p, c, false)?;
            }
        }
        f => {
            let s = StatusOut {
                active: Some(info(&active.profile, &active.creds)),
                profiles: others.iter().map(|(p, c)| info(p, c)).collect(),
            };
            if f == Format::Json { write!(out, "{}", shared::output::json(&s))? } else { write!(out, "{}", shared::output::yaml(&s))? }
        }
    }
    Ok(())
}
