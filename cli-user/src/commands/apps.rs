//! `tsh apps ls`: the applications of the root and its leaves the user may reach (reference
//! `kube-app-db.md` §3.4). Logging in to one and the browser path come with the app service's
//! proxy half.

use std::io::Write;

use anyhow::bail;
use shared::api::path;
use shared::output::table;
use shared::resource::App;

use super::Global;
use crate::context::Session;

/// Applications.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// List the applications you can reach.
    #[command(after_help = "Examples:\n  tsh apps ls\n  tsh apps ls --cluster=leaf.example.com\n  tsh apps ls --all -f json")]
    Ls(LsArgs),
}

#[derive(Debug, clap::Args)]
struct LsArgs {
    /// The applications of the root and of every leaf you may see.
    #[arg(short = 'R', long)]
    all: bool,
    /// Output format: text, json or yaml.
    #[arg(short = 'f', long, default_value = "text")]
    format: String,
    /// Also show each app's URI.
    #[arg(short = 'v', long)]
    verbose: bool,
}

/// Runs the command.
pub async fn exec(a: Args, g: &Global, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    match a.cmd {
        Cmd::Ls(a) => ls(a, g, out, err).await,
    }
}

/// Where users reach an app: its `public_addr`, else `<name>.<root proxy host>`.
fn public_addr(a: &App, proxy: &str) -> String {
    if a.spec.public_addr.is_empty() {
        format!("{}.{}", a.metadata.name, shared::client::host_of(proxy))
    } else {
        a.spec.public_addr.clone()
    }
}

fn row(a: &App, proxy: &str, verbose: bool) -> Vec<String> {
    let labels = a.metadata.labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
    let mut r =
        vec![a.metadata.name.clone(), a.metadata.description.clone().unwrap_or_default(), a.kind_label().into(), public_addr(a, proxy)];
    if verbose {
        r.push(a.spec.uri.clone());
    }
    r.push(labels);
    r
}

async fn ls(a: LsArgs, g: &Global, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    let format = a.format.to_ascii_lowercase();
    if !["text", "json", "yaml"].contains(&format.as_str()) {
        bail!("unsupported format {:?}; use one of: text, json, yaml", a.format);
    }
    let mut session = Session::load(g)?;
    session.require_valid()?;
    let proxy = session.profile.web_proxy_addr.clone();
    let url = format!("{}/app", path::RESOURCES);
    let mut head = vec!["Application", "Description", "Type", "Public Address"];
    if a.verbose {
        head.push("URI");
    }
    head.push("Labels");
    if a.all {
        let clusters: Vec<String> = session.visible_clusters().await?.into_iter().map(|c| c.cluster_name).collect();
        let answers = session
            .per_cluster(&clusters, std::time::Duration::from_secs(10), |api| {
                let url = url.clone();
                async move { api.get::<Vec<App>>(&url).await }
            })
            .await;
        let (mut rows, mut json) = (Vec::new(), Vec::new());
        for (cluster, r) in answers {
            match r {
                Ok(apps) => {
                    for app in apps {
                        let mut line = vec![proxy.clone(), cluster.clone()];
                        line.extend(row(&app, &proxy, a.verbose));
                        rows.push(line);
                        json.push(serde_json::json!({"proxy": proxy, "cluster": cluster, "app": app}));
                    }
                }
                Err(e) => writeln!(err, "WARNING: cluster {cluster}: {e}")?,
            }
        }
        let mut all_head = vec!["Proxy", "Cluster"];
        all_head.extend(head);
        return match format.as_str() {
            "json" => Ok(write!(out, "{}", shared::output::json(&json))?),
            "yaml" => Ok(write!(out, "{}", shared::yaml::to_yaml_stream(&json))?),
            _ => Ok(write!(out, "{}", table(&all_head, &rows))?),
        };
    }
    let cluster = session.resolve_target(g, err).await?;
    let apps: Vec<App> = session.cluster_api(&cluster)?.get(&url).await?;
    match format.as_str() {
        "json" => write!(out, "{}", shared::output::json(&apps))?,
        "yaml" => {
            write!(out, "{}", shared::yaml::to_yaml_stream(&apps.iter().filter_map(|x| serde_json::to_value(x).ok()).collect::<Vec<_>>()))?
        }
        _ => {
            let rows: Vec<Vec<String>> = apps.iter().map(|x| row(x, &proxy, a.verbose)).collect();
            write!(out, "{}", table(&head, &rows))?;
        }
    }
    Ok(())
}
