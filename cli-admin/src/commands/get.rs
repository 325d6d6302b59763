//! `tctl get KIND[/NAME]`: YAML (default, keys sorted as Teleport prints them), JSON, or a text table.

use std::io::Write;

use shared::api::path;
use shared::client::encode_segment;
use shared::output::{Format, table};
use shared::resource::{
    CertAuthority, Kind, Lock, Node, ProvisionToken, Proxy, RemoteCluster, ResourceRef, Role, TrustedCluster, TunnelConnection, User,
    format_labels,
};

use super::parse_format;
use crate::client::{ConnArgs, connect};

/// Print resources.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  tctl get rc\n  tctl get roles --format=json\n  tctl get user/myuser\n  tctl get cert_authority/host --with-secrets\n  tctl get locks --format=text\n  tctl get events --limit=20 --format=text"
)]
pub struct Args {
    /// kind or kind/name (aliases: rc, tc, cas, roles, users, tokens, nodes), or events.
    reference: String,
    /// Output format: yaml, json or text.
    #[arg(long, short = 'f', default_value = "yaml", value_parser = parse_format)]
    format: Format,
    /// Include private keys and connector secrets.
    #[arg(long)]
    with_secrets: bool,
    /// With `events`: how many of the newest to print.
    #[arg(long, default_value_t = 100)]
    limit: usize,
}

/// The API path listing `r`.
fn resources_path(r: &ResourceRef, with_secrets: bool) -> String {
    let mut url = format!("{}/{}", path::RESOURCES, r.kind.as_str());
    if let Some(n) = &r.name {
        url.push('/');
        url.push_str(&n.split('/').map(encode_segment).collect::<Vec<_>>().join("/"));
    }
    if with_secrets {
        url.push_str("?with_secrets=true");
    }
    url
}

/// Fetches resources as JSON values.
pub async fn fetch(api: &shared::client::ApiClient, r: &ResourceRef, with_secrets: bool) -> shared::Result<Vec<serde_json::Value>> {
    api.get(&resources_path(r, with_secrets)).await
}

fn typed<T: serde::de::DeserializeOwned>(values: &[serde_json::Value]) -> Vec<T> {
    values.iter().filter_map(|v| serde_json::from_value(v.clone()).ok()).collect()
}

fn labels_of(l: &Option<shared::labels::Labels>) -> String {
    l.as_ref().map(|l| l.iter().map(|(k, v)| format!("{k}={}", v.0.join(","))).collect::<Vec<_>>().join(",")).unwrap_or_default()
}

/// A text table for `kind`.
pub fn text_table(kind: Kind, values: &[serde_json::Value]) -> String {
    match kind {
        Kind::RemoteCluster => {
            let rows = typed::<RemoteCluster>(values)
                .iter()
                .map(|rc| {
                    let hb = if rc.status.last_heartbeat <= shared::timefmt::go_zero_time() {
                        "not available".to_string()
                    } else {
                        shared::timefmt::heartbeat_stamp(rc.status.last_heartbeat)
                    };
                    vec![rc.metadata.name.clone(), rc.status.connection.clone(), hb]
                })
                .collect::<Vec<_>>();
            table(&["Name", "Status", "Last Heartbeat"], &rows)
        }
        Kind::TrustedCluster => {
            let rows = typed::<TrustedCluster>(values)
                .iter()
                .map(|tc| {
                    let map = tc.combined_mapping().iter().map(|m| m.to_string()).collect::<Vec<_>>().join(" ");
                    vec![
                        tc.metadata.name.clone(),
                        tc.spec.enabled.to_string(),
                        tc.spec.token.clone(),
                        tc.spec.web_proxy_addr.clone(),
                        tc.spec.tunnel_addr.clone(),
                        format!("[{map}]"),
                    ]
                })
                .collect::<Vec<_>>();
            table(&["Name", "Enabled", "Token", "Proxy Address", "Reverse Tunnel Address", "Role Map"], &rows)
        }
        Kind::Role => {
            let rows = typed::<Role>(values)
                .iter()
                .map(|r| {
                    let rules = r
                        .spec
                        .allow
                        .rules
                        .iter()
                        .map(|x| format!("{}:{}", x.resources.join(","), x.verbs.join(",")))
                        .collect::<Vec<_>>()
                        .join(" ");
                    vec![r.metadata.name.clone(), r.spec.allow.logins.join(","), labels_of(&r.spec.allow.node_labels), rules]
                })
                .collect::<Vec<_>>();
            table(&["Role", "Allowed to login as", "Node Labels", "Access to resources"], &rows)
        }
        Kind::User => {
            let rows = typed::<User>(values).iter().map(|u| vec![u.metadata.name.clone(), u.spec.roles.join(",")]).collect::<Vec<_>>();
            table(&["User", "Roles"], &rows)
        }
        Kind::Token => {
            let tokens = typed::<ProvisionToken>(values);
            table(&super::tokens::TOKEN_HEADER, &super::tokens::token_rows(&tokens, time::OffsetDateTime::now_utc()))
        }
        Kind::CertAuthority => {
            let rows = typed::<CertAuthority>(values)
                .iter()
                .map(|ca| {
                    let fp = ca.ssh_public_keys().iter().map(shared::certs::fingerprint).collect::<Vec<_>>().join(",");
                    let map = ca.combined_mapping().iter().map(|m| m.to_string()).collect::<Vec<_>>().join(" ");
                    vec![
                        ca.metadata.name.clone(),
                        ca.spec.ca_type.to_string(),
                        fp,
                        if map.is_empty() { String::new() } else { format!("[{map}]") },
                    ]
                })
                .collect::<Vec<_>>();
            table(&["Cluster Name", "CA Type", "Fingerprint", "Role Map"], &rows)
        }
        Kind::Node => {
            let rows = typed::<Node>(values)
                .iter()
                .map(|n| {
                    vec![
                        n.spec.hostname.clone(),
                        n.metadata.name.clone(),
                        n.display_addr(),
                        format_labels(&n.metadata.labels),
                        n.spec.version.clone(),
                    ]
                })
                .collect::<Vec<_>>();
            table(&["Host", "UUID", "Public Address", "Labels", "Version"], &rows)
        }
        Kind::App => {
            let rows = typed::<shared::resource::App>(values)
                .iter()
                .map(|a| {
                    vec![
                        a.metadata.name.clone(),
                        a.metadata.description.clone().unwrap_or_default(),
                        a.spec.uri.clone(),
                        a.spec.public_addr.clone(),
                        format_labels(&a.metadata.labels),
                        if a.spec.host_id.is_empty() { "(defined)".into() } else { a.spec.hostname.clone() },
                    ]
                })
                .collect::<Vec<_>>();
            table(&["Name", "Description", "URI", "Public Address", "Labels", "Served By"], &rows)
        }
        Kind::Db => {
            let rows = typed::<shared::resource::Db>(values)
                .iter()
                .map(|d| {
                    vec![
                        d.metadata.name.clone(),
                        d.metadata.description.clone().unwrap_or_default(),
                        d.spec.protocol.clone(),
                        d.spec.uri.clone(),
                        format_labels(&d.metadata.labels),
                        if d.spec.host_id.is_empty() { "(defined)".into() } else { d.spec.hostname.clone() },
                    ]
                })
                .collect::<Vec<_>>();
            table(&["Name", "Description", "Protocol", "URI", "Labels", "Served By"], &rows)
        }
        Kind::KubeCluster => {
            let rows = typed::<shared::resource::KubeCluster>(values)
                .iter()
                .map(|k| vec![k.metadata.name.clone(), format_labels(&k.metadata.labels), k.spec.hostname.clone(), k.spec.version.clone()])
                .collect::<Vec<_>>();
            table(&["Name", "Labels", "Served By", "Version"], &rows)
        }
        Kind::Lock => {
            let rows = typed::<Lock>(values)
                .iter()
                .map(|l| {
                    let expires = l.spec.expires.map(shared::timefmt::heartbeat_stamp).unwrap_or_else(|| "never".into());
                    vec![l.metadata.name.clone(), l.spec.target.to_string(), l.spec.message.clone(), expires]
                })
                .collect::<Vec<_>>();
            table(&["ID", "Target", "Message", "Expires"], &rows)
        }
        Kind::TunnelConnection => {
            let rows = typed::<TunnelConnection>(values)
                .iter()
                .map(|t| {
                    vec![
                        t.metadata.name.clone(),
                        t.spec.cluster_name.clone(),
                        t.spec.proxy_name.clone(),
                        shared::timefmt::heartbeat_stamp(t.spec.last_heartbeat),
                        t.spec.kind.clone(),
                    ]
                })
                .collect::<Vec<_>>();
            table(&["Name", "Cluster", "Proxy", "Last Heartbeat", "Type"], &rows)
        }
        Kind::Proxy => {
            let rows = typed::<Proxy>(values)
                .iter()
                .map(|p| {
                    vec![
                        p.spec.hostname.clone(),
                        p.metadata.name.clone(),
                        p.spec.addr.clone(),
                        p.spec.peer_addr.clone(),
                        p.spec.public_addrs.join(","),
                        p.spec.version.clone(),
                    ]
                })
                .collect::<Vec<_>>();
            table(&["Host", "UUID", "Tunnel Address", "Peer Address", "Public Address", "Version"], &rows)
        }
        Kind::AuthPreference => {
            let rows = values
                .iter()
                .map(|v| {
                    let s = &v["spec"];
                    vec![
                        s["type"].as_str().unwrap_or_default().to_string(),
                        s["second_factor"].as_str().unwrap_or_default().to_string(),
                        s["connector_name"].as_str().unwrap_or_default().to_string(),
                        s["allow_local_auth"].as_bool().unwrap_or(true).to_string(),
                    ]
                })
                .collect::<Vec<_>>();
            table(&["Type", "Second Factor", "Connector", "Local Auth"], &rows)
        }
        Kind::Github | Kind::Oidc | Kind::Saml => {
            let rows = values
                .iter()
                .map(|v| vec![v["metadata"]["name"].as_str().unwrap_or_default().to_string(), kind.as_str().to_string()])
                .collect::<Vec<_>>();
            table(&["Name", "Kind"], &rows)
        }
    }
}

/// `tctl get events`: the newest audit events of the cluster (of every process, when they
/// share an audit database), oldest first.
async fn events(a: &Args, c: &ConnArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let conn = connect(c)?;
    let events: Vec<serde_json::Value> = conn.api.get(&format!("{}?limit={}", path::EVENTS, a.limit)).await?;
    match a.format {
        Format::Yaml => write!(out, "{}", shared::yaml::to_yaml_stream(&events))?,
        Format::Json => write!(out, "{}", shared::output::json(&events))?,
        Format::Text => {
            let s = |v: &serde_json::Value, k: &str| v[k].as_str().unwrap_or_default().to_string();
            let rows: Vec<Vec<String>> = events.iter().map(|e| vec![s(e, "time"), s(e, "event"), s(e, "code"), s(e, "user")]).collect();
            write!(out, "{}", table(&["Time", "Event", "Code", "User"], &rows))?;
        }
    }
    Ok(())
}

/// Runs the command.
pub async fn exec(a: Args, c: &ConnArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    if a.reference == "events" || a.reference == "event" {
        return events(&a, c, out).await;
    }
    let r = ResourceRef::parse(&a.reference)?;
    let conn = connect(c)?;
    match a.format {
        // Straight from the body: long lists are parsed and printed on every core.
        Format::Yaml => {
            write!(out, "{}", shared::yaml::json_array_to_yaml_stream(&conn.api.get_raw(&resources_path(&r, a.with_secrets)).await?)?)?
        }
        Format::Json => write!(out, "{}", shared::output::json(&fetch(&conn.api, &r, a.with_secrets).await?))?,
        Format::Text => write!(out, "{}", text_table(r.kind, &fetch(&conn.api, &r, a.with_secrets).await?))?,
    }
    Ok(())
}
