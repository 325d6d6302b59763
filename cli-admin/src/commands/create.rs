//! `tctl create [-f] FILE`: create (or with `-f` replace) every resource in a YAML file.
//! Every document is parsed and validated before anything is sent, so a bad file changes
//! nothing.

use std::io::{Read, Write};

use anyhow::{Context, anyhow, bail};
use shared::api::{UpsertResourceRequest, UpsertResourceResponse, path};
use shared::resource::{Kind, Resource};

use crate::client::{ConnArgs, connect};

/// Create resources.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  tctl create visitor.yaml\n  tctl create -f trusted_cluster.yaml   # update the role_map in place")]
pub struct Args {
    /// YAML file with one or more resources ("-" reads standard input).
    filename: String,
    /// Replace resources that already exist.
    #[arg(short = 'f', long)]
    force: bool,
}

/// How messages name a kind.
pub fn describe(kind: Kind) -> &'static str {
    match kind {
        Kind::TrustedCluster => "trusted cluster",
        Kind::RemoteCluster => "remote cluster",
        Kind::Github => "github connector",
        Kind::Oidc => "oidc connector",
        Kind::Saml => "saml connector",
        Kind::AuthPreference => "cluster auth preference",
        other => other.as_str(),
    }
}

/// Validates a document locally, as the server will.
pub fn validate(doc: &shared::yaml::Document, source: &str) -> anyhow::Result<Resource> {
    let at = |e: shared::Error| anyhow!("{source}: document {} (line {}): {}", doc.index, doc.line, e.message);
    let mut res = Resource::from_value(doc.value.clone()).map_err(at)?;
    res.check_creatable().map_err(at)?;
    Ok(res)
}

/// Reads a file or standard input.
pub fn read_input(name: &str) -> anyhow::Result<Vec<u8>> {
    if name == "-" {
        let mut buf = Vec::new();
        std::io::stdin().take(shared::yaml::MAX_FILE_BYTES as u64 + 1).read_to_end(&mut buf).context("reading standard input")?;
        return Ok(buf);
    }
    let meta = std::fs::metadata(name).with_context(|| format!("cannot read {name}"))?;
    if meta.is_dir() {
        anyhow::bail!("{name} is a directory; give a YAML file");
    }
    if meta.len() > shared::yaml::MAX_FILE_BYTES as u64 {
        anyhow::bail!("{name}: the file is {} bytes; resource files are limited to {} bytes", meta.len(), shared::yaml::MAX_FILE_BYTES);
    }
    std::fs::read(name).with_context(|| format!("cannot read {name}"))
}

/// Runs the command.
pub async fn exec(a: Args, c: &ConnArgs, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    let bytes = read_input(&a.filename)?;
    let source = if a.filename == "-" { "stdin" } else { a.filename.as_str() };
    let docs = shared::yaml::parse_documents(source, &bytes)?;
    // Everything that can be checked before the first change is checked, so that a bad file
    // changes nothing: each document is valid, no resource is defined twice, and (without -f)
    // none already exists.
    let mut names: Vec<(Kind, String, usize)> = Vec::new();
    for d in &docs {
        let res = validate(d, source)?;
        if let Some((_, _, first)) = names.iter().find(|(k, n, _)| *k == res.kind() && n == res.name()) {
            bail!(
                "{source}: documents {first} and {} both define {} {:?}; define each resource once",
                d.index,
                describe(res.kind()),
                res.name()
            );
        }
        names.push((res.kind(), res.name().to_string(), d.index));
    }
    let conn = connect(c)?;
    if docs.len() > 1 && !a.force {
        for (kind, name, _) in &names {
            let r = shared::resource::ResourceRef { kind: *kind, name: Some(name.clone()) };
            match crate::commands::get::fetch(&conn.api, &r, false).await {
                Ok(found) if !found.is_empty() => {
                    bail!("{} {name:?} already exists; nothing was created (use -f to replace)", describe(*kind))
                }
                Ok(_) => {}
                Err(e) if e.is(shared::Kind::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    for d in docs {
        let req = UpsertResourceRequest { resource: d.value, force: a.force, expected_id: None };
        let r: UpsertResourceResponse = conn.api.post(path::RESOURCES, &req).await?;
        for w in &r.warnings {
            writeln!(err, "WARNING: {w}")?;
        }
        let kind = Kind::parse(&r.kind)?;
        let verb = if r.created || kind == Kind::TrustedCluster { "created" } else { "updated" };
        writeln!(out, "{} {:?} has been {verb}", describe(kind), r.name)?;
    }
    Ok(())
}
