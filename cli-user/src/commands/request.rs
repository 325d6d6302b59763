//! `tsh request create|ls|show|review|drop` and `tsh login --request-id|--request-roles`: access
//! requests at the root (a user's requests are their own cluster's business; a leaf sees only
//! the roles an approved request adds to the certificate, which it maps like any other).

use std::io::Write;
use std::time::Duration;

use anyhow::{anyhow, bail};
use shared::api::path;
use shared::output::{Format, table};
use shared::resource::{AccessRequest, RequestState};

use super::{Global, parse_format};
use crate::context::Session;

const LOGIN_HINT: &str = "use 'tsh login --request-id=<request-id>' to login with an approved request";

/// Access requests.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// Ask for roles for a while; waits for the decision unless --nowait.
    #[command(
        after_help = "Examples:\n  tsh request create --roles=prod-access --reason=\"ticket 4711\"\n  tsh request create --roles=prod-access --max-duration=1h --nowait"
    )]
    Create(CreateArgs),
    /// List the requests you made or may review.
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Show one request with its reviews.
    Show(ShowArgs),
    /// Approve or deny someone's request.
    #[command(
        after_help = "Examples:\n  tsh request review --approve --reason=\"ok for the incident\" <request-id>\n  tsh request review --deny <request-id>"
    )]
    Review(ReviewArgs),
    /// Stop using approved requests (all of them without an id): new certificates without their roles.
    Drop(DropArgs),
}

#[derive(Debug, clap::Args)]
struct CreateArgs {
    /// Roles to request, comma-separated.
    #[arg(long, value_delimiter = ',', required = true)]
    roles: Vec<String>,
    /// Why (your roles may require one).
    #[arg(long, default_value = "")]
    reason: String,
    /// Suggested reviewers, comma-separated.
    #[arg(long, value_delimiter = ',')]
    reviewers: Vec<String>,
    /// How long the access should last (e.g. 1h; default and limit: your roles').
    #[arg(long)]
    max_duration: Option<String>,
    /// Do not wait for the decision.
    #[arg(long)]
    nowait: bool,
    /// Output format: text, json or yaml.
    #[arg(short = 'f', long, default_value = "text", value_parser = parse_format)]
    format: Format,
}

#[derive(Debug, clap::Args)]
struct LsArgs {
    /// Output format: text, json or yaml.
    #[arg(short = 'f', long, default_value = "text", value_parser = parse_format)]
    format: Format,
    /// Only requests you may review.
    #[arg(long)]
    reviewable: bool,
    /// Only your own requests.
    #[arg(long)]
    my_requests: bool,
}

#[derive(Debug, clap::Args)]
struct ShowArgs {
    /// The request's id.
    id: String,
    /// Output format: text, json or yaml.
    #[arg(short = 'f', long, default_value = "text", value_parser = parse_format)]
    format: Format,
}

#[derive(Debug, clap::Args)]
struct ReviewArgs {
    /// The request's id.
    id: String,
    /// Approve it.
    #[arg(long)]
    approve: bool,
    /// Deny it.
    #[arg(long)]
    deny: bool,
    /// Why.
    #[arg(long, default_value = "")]
    reason: String,
    /// Output format: text, json or yaml.
    #[arg(short = 'f', long, default_value = "text", value_parser = parse_format)]
    format: Format,
}

#[derive(Debug, clap::Args)]
struct DropArgs {
    /// Requests to drop (default: all).
    ids: Vec<String>,
    /// Output format: text (the new status), json or yaml (the requests still active).
    #[arg(short = 'f', long, default_value = "text", value_parser = parse_format)]
    format: Format,
}

/// Runs the command.
pub async fn exec(a: Args, g: &Global, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    match a.cmd {
        Cmd::Create(a) => create(a, g, out, err).await,
        Cmd::Ls(a) => ls(a, g, out).await,
        Cmd::Show(a) => show(a, g, out).await,
        Cmd::Review(a) => review(a, g, out, err).await,
        Cmd::Drop(a) => drop_requests(a, g, out).await,
    }
}

fn session(g: &Global) -> anyhow::Result<Session> {
    let s = Session::load(g)?;
    s.require_valid()?;
    Ok(s)
}

fn write_as(out: &mut dyn Write, format: Format, v: &impl serde::Serialize) -> anyhow::Result<()> {
    let value = serde_json::to_value(v)?;
    match format {
        Format::Json | Format::Text => write!(out, "{}", shared::output::json(&value))?,
        Format::Yaml => write!(out, "{}", shared::yaml::to_yaml(&value))?,
    }
    Ok(())
}

/// Makes a request; unless `nowait`, waits for the decision and, when approved, takes new
/// certificates with its roles. Shared with `tsh login --request-roles`.
pub async fn make_request(
    session: &Session,
    req: shared::api::CreateAccessRequest,
    nowait: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> anyhow::Result<AccessRequest> {
    let root = session.root_api()?;
    let r: AccessRequest = root.post(path::ACCESS_REQUESTS, &req).await.map_err(|e| anyhow!("{}", e.message))?;
    if nowait {
        return Ok(r);
    }
    writeln!(err, "Seeking request approval... (id: {})", r.id())?;
    let url = format!("{}/{}", path::ACCESS_REQUESTS, r.id());
    let decided = loop {
        let now = time::OffsetDateTime::now_utc();
        if now >= r.spec.expires {
            bail!("access request {} expired while waiting for approval", r.id());
        }
        let cur: AccessRequest = root.get(&url).await.map_err(|e| anyhow!("{}", e.message))?;
        if cur.spec.state != RequestState::Pending {
            break cur;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    if decided.spec.state == RequestState::Denied {
        let why = if decided.spec.resolve_reason.is_empty() { String::new() } else { format!(": {}", decided.spec.resolve_reason) };
        bail!("access request {} was denied{why}", decided.id());
    }
    writeln!(err, "Approval received, getting updated certificates...\n")?;
    let mut ids = session.creds.active_requests();
    ids.push(decided.id().to_string());
    reissue_with(session, ids, out).await?;
    Ok(decided)
}

/// New certificates carrying exactly the approved requests `ids` (none: the user's own roles),
/// saved to the profile; prints the status as `tsh status` does.
pub async fn reissue_with(session: &Session, ids: Vec<String>, out: &mut dyn Write) -> anyhow::Result<()> {
    let name = session.name.clone().ok_or_else(|| anyhow!("no profile; run 'tsh login' first"))?;
    let route = if session.profile.site == session.profile.cluster { None } else { Some(session.profile.site.clone()) };
    let (ssh, tls, public) = super::login::new_keys()?;
    let req = shared::api::ReissueRequest {
        keys: public,
        route_to_cluster: route,
        ttl_seconds: 0,
        kubernetes_cluster: None,
        route_to_database: None,
        access_requests: ids,
    };
    let r: shared::api::CertsResponse = session.root_api()?.post(path::REISSUE, &req).await.map_err(|e| anyhow!("{}", e.message))?;
    let creds = super::login::credentials(ssh, &tls, r)?;
    shared::profile::ProfileStore::from_env().save(&name, &session.profile, &creds)?;
    super::status::print_text(out, &session.profile, &creds, true)
}

async fn create(a: CreateArgs, g: &Global, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    let session = session(g)?;
    let req = shared::api::CreateAccessRequest {
        roles: a.roles,
        reason: a.reason,
        max_duration: a.max_duration,
        suggested_reviewers: a.reviewers,
    };
    let nowait = a.nowait;
    let r = make_request(&session, req, nowait, out, err).await?;
    if nowait {
        match a.format {
            Format::Text => {
                writeln!(out, "Request ID: {}", r.id())?;
                writeln!(out, "Username:   {}", r.spec.user)?;
                writeln!(out, "Roles:      {}", r.spec.roles.join(", "))?;
                writeln!(out, "Status:     {}\n", r.spec.state.as_str())?;
                writeln!(out, "hint: {LOGIN_HINT}")?;
            }
            f => write_as(out, f, &r)?,
        }
    }
    Ok(())
}

async fn ls(a: LsArgs, g: &Global, out: &mut dyn Write) -> anyhow::Result<()> {
    let session = session(g)?;
    let me = session.profile.username.clone();
    let mut all: Vec<AccessRequest> = session.root_api()?.get(path::ACCESS_REQUESTS).await.map_err(|e| anyhow!("{}", e.message))?;
    if a.my_requests {
        all.retain(|r| r.spec.user == me);
    }
    if a.reviewable {
        all.retain(|r| r.spec.user != me && !r.spec.reviews.iter().any(|x| x.author == me));
    }
    match a.format {
        Format::Text => {
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|r| {
                    vec![
                        r.id().to_string(),
                        r.spec.user.clone(),
                        r.spec.roles.join(","),
                        shared::timefmt::rfc822(r.spec.created),
                        r.spec.state.as_str().to_string(),
                    ]
                })
                .collect();
            write!(out, "{}", table(&["ID", "User", "Roles", "Created At (UTC)", "Status"], &rows))?;
            writeln!(out, "\nhint: use 'tsh request show <request-id>' for additional details")?;
            writeln!(out, "      {LOGIN_HINT}")?;
        }
        f => write_as(out, f, &all)?,
    }
    Ok(())
}

fn print_request(out: &mut dyn Write, r: &AccessRequest) -> anyhow::Result<()> {
    let reason = if r.spec.request_reason.is_empty() { "[none]".to_string() } else { format!("{:?}", r.spec.request_reason) };
    let reviewers = if r.spec.suggested_reviewers.is_empty() { "[none]".to_string() } else { r.spec.suggested_reviewers.join(", ") };
    let rows = [
        ("Request ID:", r.id().to_string()),
        ("Username:", r.spec.user.clone()),
        ("Roles:", r.spec.roles.join(", ")),
        ("Reason:", reason),
        ("Reviewers:", format!("{reviewers} (suggested)")),
        ("Status:", r.spec.state.as_str().to_string()),
        ("Access Expires:", shared::timefmt::rfc822(r.spec.expires)),
    ];
    for (k, v) in rows {
        writeln!(out, "{k:<16}{v}")?;
    }
    for (title, state) in [("Approvals", RequestState::Approved), ("Denials", RequestState::Denied)] {
        let revs: Vec<_> = r.spec.reviews.iter().filter(|x| x.proposed_state == state).collect();
        if revs.is_empty() {
            continue;
        }
        writeln!(out, "------------------------------------------------\n{title}:")?;
        for rev in revs {
            let why = if rev.reason.is_empty() { "[none]".to_string() } else { format!("{:?}", rev.reason) };
            writeln!(out, "  ----------------------------------------------\n  Reviewer: {}\n  Reason:   {why}", rev.author)?;
        }
    }
    writeln!(out, "\nhint: {LOGIN_HINT}")?;
    Ok(())
}

async fn show(a: ShowArgs, g: &Global, out: &mut dyn Write) -> anyhow::Result<()> {
    let session = session(g)?;
    let r: AccessRequest =
        session.root_api()?.get(&format!("{}/{}", path::ACCESS_REQUESTS, a.id)).await.map_err(|e| anyhow!("{}", e.message))?;
    match a.format {
        Format::Text => print_request(out, &r),
        f => write_as(out, f, &r),
    }
}

async fn review(a: ReviewArgs, g: &Global, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    if a.approve == a.deny {
        bail!("must supply exactly one of '--approve' or '--deny'");
    }
    let session = session(g)?;
    let state = if a.approve { RequestState::Approved } else { RequestState::Denied };
    let body = shared::api::ReviewAccessRequest { state, reason: a.reason };
    let r: AccessRequest = session
        .root_api()?
        .post(&format!("{}/{}/review", path::ACCESS_REQUESTS, a.id), &body)
        .await
        .map_err(|e| anyhow!("{}", e.message))?;
    if r.spec.state == RequestState::Pending || r.spec.state == state {
        writeln!(err, "Successfully submitted review.  Request state: {}", r.spec.state.as_str())?;
    } else {
        writeln!(err, "Warning: ineffectual review. Request state: {}", r.spec.state.as_str())?;
    }
    if a.format != Format::Text {
        write_as(out, a.format, &r)?;
    }
    Ok(())
}

async fn drop_requests(a: DropArgs, g: &Global, out: &mut dyn Write) -> anyhow::Result<()> {
    let session = session(g)?;
    let active = session.creds.active_requests();
    let text = a.format == Format::Text;
    let keep: Vec<String> = if a.ids.is_empty() || a.ids.iter().any(|i| i == "*") {
        if text {
            writeln!(out, "Dropping all active access requests...\n")?;
        }
        Vec::new()
    } else {
        for id in &a.ids {
            if !active.contains(id) {
                bail!("access request {id} is not active in your certificate ('tsh status' lists the active ones)");
            }
        }
        if text {
            writeln!(out, "Dropping access request(s): {}...\n", a.ids.join(", "))?;
        }
        active.into_iter().filter(|i| !a.ids.contains(i)).collect()
    };
    if text {
        return reissue_with(&session, keep, out).await;
    }
    reissue_with(&session, keep.clone(), &mut std::io::sink()).await?;
    write_as(out, a.format, &serde_json::json!({ "active_requests": keep }))
}
