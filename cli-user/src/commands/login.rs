//! `tsh login`: password sign-in (or, with a cluster argument and a valid profile, selecting a
//! leaf cluster without a password).

use std::io::{BufRead, Write};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use shared::api::{CertsResponse, LoginRequest, PingResponse, PublicKeys, ReissueRequest, path};
use shared::certs;
use shared::client::{ApiClient, ServerTrust, host_of};
use shared::profile::{Credentials, Profile, ProfileStore};

use super::Global;
use crate::context::Session;

/// Teleport's prompt for a TOTP code.
pub const OTP_PROMPT: &str = "Enter an OTP code from a device:";

/// Sign in.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples (from the guide):\n  tsh login --proxy=rootcluster.example.com --user=myuser\n  tsh login leafcluster.example.com          # select a leaf cluster\n  echo \"$PASSWORD\" | tsh login --proxy=root.example.com:3080 --user=myuser"
)]
pub struct Args {
    /// A leaf cluster to select after signing in.
    cluster: Option<String>,
    /// Certificate TTL in minutes [default: 720, capped by your roles' max_session_ttl].
    #[arg(long)]
    ttl: Option<u64>,
    /// Sign in with this connector: an OIDC, GitHub or SAML connector's name, or local [default: the cluster's].
    #[arg(long, env = "TELEPORT_AUTH", hide_env_values = true)]
    auth: Option<String>,
    /// Set to none to print the SSO link instead of opening a browser ($BROWSER, else xdg-open).
    #[arg(long)]
    browser: Option<String>,
    /// Address (loopback) tsh listens on for the SSO callback [default: 127.0.0.1:0].
    #[arg(long, env = "TELEPORT_LOGIN_BIND_ADDR", hide_env_values = true)]
    bind_addr: Option<String>,
    /// Request these roles (comma-separated) and wait for approval; the certificate then has them.
    #[arg(long, value_delimiter = ',')]
    request_roles: Vec<String>,
    /// The reason for --request-roles.
    #[arg(long, default_value = "")]
    request_reason: String,
    /// Use this approved access request: the certificate gains its roles until it expires.
    #[arg(long)]
    request_id: Vec<String>,
}

fn addr_candidates(proxy: &str) -> Vec<String> {
    let p = proxy.trim().trim_start_matches("https://").trim_end_matches('/');
    let has_port = p.rsplit_once(':').is_some_and(|(h, port)| port.parse::<u16>().is_ok() && (!h.contains(':') || h.ends_with(']')));
    if has_port { vec![p.to_string()] } else { vec![format!("{p}:443"), format!("{p}:3080")] }
}

async fn ping(addr: &str, trust: &ServerTrust) -> shared::Result<PingResponse> {
    ApiClient::direct(addr, trust, None)?.get::<PingResponse>(path::PING).await
}

fn read_password(user: &str) -> anyhow::Result<String> {
    if crate::term::stdin_is_tty() {
        return dialoguer::Password::new()
            .with_prompt(format!("Enter password for Teleport user {user}"))
            .interact()
            .map_err(|e| anyhow!("reading the password: {e}"));
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("reading the password from standard input")?;
    let pw = line.trim_end_matches(['\n', '\r']).to_string();
    if pw.is_empty() {
        bail!("no password given on standard input");
    }
    Ok(pw)
}

/// Reads a one-time code: from the terminal after a prompt, or the next line of standard input.
pub fn read_otp(prompt: &str, err: &mut dyn Write) -> anyhow::Result<String> {
    if crate::term::stdin_is_tty() {
        write!(err, "{prompt} ")?;
        err.flush()?;
    }
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).context("reading the OTP code")?;
    let code = line.trim().to_string();
    if code.is_empty() {
        bail!("no OTP code given (it is the 6-digit code your authenticator app shows for this cluster)");
    }
    Ok(code)
}

pub(crate) fn new_keys() -> anyhow::Result<(russh::keys::ssh_key::PrivateKey, rcgen::KeyPair, PublicKeys)> {
    Ok(certs::new_key_pair()?)
}

pub(crate) fn credentials(ssh: russh::keys::ssh_key::PrivateKey, tls: &rcgen::KeyPair, r: CertsResponse) -> anyhow::Result<Credentials> {
    Ok(Credentials {
        ssh_key: ssh,
        ssh_cert: certs::parse_ssh_cert(&r.ssh_cert)?,
        tls_key_pem: tls.serialize_pem(),
        tls_cert_pem: r.tls_cert,
        host_cas: r.host_cas,
    })
}

/// Runs the command: signs in (unless a valid profile exists and only requests are asked for),
/// then applies `--request-roles` / `--request-id`.
pub async fn exec(mut a: Args, g: &Global, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    let roles = std::mem::take(&mut a.request_roles);
    let ids = std::mem::take(&mut a.request_id);
    let reason = std::mem::take(&mut a.request_reason);
    if roles.is_empty() && ids.is_empty() {
        sign_in(a, g, out, err).await?;
        // options.request_access: always: every login asks for the requestable roles too.
        let Ok(session) = crate::context::Session::load(g) else { return Ok(()) };
        let me: Option<shared::api::WhoAmI> = session.root_api()?.get(path::WHOAMI).await.ok();
        if let Some(w) = me.filter(|w| w.request_access == "always" && !w.requestable_roles.is_empty())
            && session.creds.active_requests().is_empty()
        {
            if !w.request_prompt.is_empty() {
                writeln!(err, "{}", w.request_prompt)?;
            }
            let req = shared::api::CreateAccessRequest { roles: w.requestable_roles, reason, ..Default::default() };
            super::request::make_request(&session, req, false, out, err).await?;
        }
        return Ok(());
    }
    let valid = crate::context::Session::load(g).ok().filter(|s| s.require_valid().is_ok() && g.proxy.is_none());
    if valid.is_none() || a.cluster.is_some() {
        sign_in(a, g, &mut std::io::sink(), err).await?;
    }
    let session = crate::context::Session::load(g)?;
    if !roles.is_empty() {
        let req = shared::api::CreateAccessRequest { roles, reason, ..Default::default() };
        super::request::make_request(&session, req, false, out, err).await?;
        return Ok(());
    }
    let mut all = session.creds.active_requests();
    for id in ids {
        if !all.contains(&id) {
            all.push(id);
        }
    }
    super::request::reissue_with(&session, all, out).await
}

async fn sign_in(a: Args, g: &Global, out: &mut dyn Write, err: &mut dyn Write) -> anyhow::Result<()> {
    let store = ProfileStore::from_env();
    let ttl_seconds = a.ttl.map(|m| m * 60).unwrap_or(0);

    // Selecting a cluster with a valid profile needs no password.
    if a.cluster.is_some() && g.identity.is_none() {
        let current = match &g.proxy {
            Some(p) => Some(host_of(p)),
            None => store.current(),
        };
        if let Some(name) = current
            && let Ok((profile, creds)) = store.load(&name)
            && g.user.as_ref().is_none_or(|u| *u == profile.username)
            && crate::context::valid_until(&creds) > time::OffsetDateTime::now_utc()
        {
            let session = Session { profile, creds, name: Some(name.clone()) };
            let target = a.cluster.clone().unwrap_or_default();
            let route = if target == session.profile.cluster { None } else { Some(target.clone()) };
            let (ssh, tls, public) = new_keys()?;
            let r: CertsResponse = session
                .root_api()?
                .post(
                    path::REISSUE,
                    &ReissueRequest {
                        keys: public,
                        route_to_cluster: route,
                        ttl_seconds,
                        kubernetes_cluster: None,
                        route_to_database: None,
                        access_requests: session.creds.active_requests(),
                    },
                )
                .await
                .map_err(|e| if e.is(shared::Kind::NotFound) { anyhow!("{}", e.message) } else { anyhow!("{e}") })?;
            let creds = credentials(ssh, &tls, r)?;
            let mut profile = session.profile.clone();
            profile.site = target;
            store.save(&name, &profile, &creds)?;
            return super::status::print_text(out, &profile, &creds, true);
        }
    }

    let proxy =
        g.proxy.clone().or_else(|| store.current().and_then(|n| store.load(&n).ok()).map(|(p, _)| p.web_proxy_addr)).ok_or_else(|| {
            anyhow!("use --proxy=<proxy address> to say where to sign in, for example: tsh login --proxy=root.example.com --user=myuser")
        })?;
    let trust = if g.insecure { ServerTrust::Insecure } else { ServerTrust::System };
    if g.insecure {
        writeln!(err, "WARNING: You are using insecure connection to Teleport proxy https://{proxy}")?;
    }
    let mut found: Option<(String, PingResponse)> = None;
    let mut last_err = None;
    for addr in addr_candidates(&proxy) {
        match ping(&addr, &trust).await {
            Ok(p) => {
                found = Some((addr, p));
                break;
            }
            Err(e) => last_err = Some(e),
        }
    }
    let Some((addr, mut ping)) = found else {
        return Err(anyhow!("{}", last_err.map(|e| e.message).unwrap_or_else(|| format!("cannot reach {proxy}"))));
    };
    // --auth=NAME: the proxy says what kind of connector NAME is.
    if let Some(name) = a.auth.as_deref().filter(|n| *n != "local") {
        let client = ApiClient::direct(&addr, &trust, None)?;
        ping = client
            .get::<PingResponse>(&format!("{}/{}", path::PING, shared::client::encode_segment(name)))
            .await
            .map_err(|e| anyhow!("{}", e.message))?;
    }
    let kind = if a.auth.as_deref() == Some("local") { "local".to_string() } else { ping.auth.auth_type.clone() };
    if kind != "local" {
        let connector = match kind.as_str() {
            "oidc" => ping.auth.oidc.as_ref(),
            "github" => ping.auth.github.as_ref(),
            "saml" => ping.auth.saml.as_ref(),
            other => bail!("the cluster's authentication type {other:?} is not supported by this tsh"),
        }
        .map(|c| c.name.clone())
        .or_else(|| a.auth.clone())
        .ok_or_else(|| anyhow!("the cluster names no {kind} connector; use --auth=<connector name>"))?;
        let (ssh, tls, public) = new_keys()?;
        let route = a.cluster.clone().filter(|c| *c != ping.cluster_name);
        let login = super::sso::SsoLogin {
            kind: &kind,
            connector: &connector,
            addr: &addr,
            trust: &trust,
            browser: a.browser.as_deref(),
            bind_addr: a.bind_addr.as_deref(),
            ttl_seconds,
            route_to_cluster: route,
            cluster: &ping.cluster_name,
        };
        let r = super::sso::login(&login, &public, err).await?;
        let cluster = r.cluster_name.clone();
        let user = r.username.clone();
        let creds = credentials(ssh, &tls, r)?;
        let profile = Profile {
            web_proxy_addr: addr.clone(),
            username: user,
            cluster: cluster.clone(),
            site: a.cluster.clone().unwrap_or(cluster),
            insecure: g.insecure,
        };
        store.save(&host_of(&addr), &profile, &creds)?;
        return super::status::print_text(out, &profile, &creds, true);
    }
    let user = g
        .user
        .clone()
        .or_else(|| store.load(&host_of(&addr)).ok().map(|(p, _)| p.username))
        .or_else(|| std::env::var("USER").ok())
        .ok_or_else(|| anyhow!("use --user=<teleport user>"))?;
    let password = read_password(&user)?;
    let second_factor = ping.auth.second_factor.as_str();
    let otp_token = if matches!(second_factor, "otp" | "on") { Some(read_otp(OTP_PROMPT, err)?) } else { None };
    let (ssh, tls, public) = new_keys()?;
    let mut req = LoginRequest {
        username: user.clone(),
        password,
        keys: public,
        ttl_seconds,
        route_to_cluster: a.cluster.clone().filter(|c| *c != ping.cluster_name),
        otp_token,
    };
    let client = ApiClient::direct(&addr, &trust, None)?.with_timeout(Duration::from_secs(60));
    let r: CertsResponse = match client.post(path::LOGIN, &req).await {
        // second_factor: optional, and this user registered a device.
        Err(e) if e.has(shared::Code::OtpRequired) && req.otp_token.is_none() => {
            req.otp_token = Some(read_otp(OTP_PROMPT, err)?);
            client.post(path::LOGIN, &req).await?
        }
        other => other?,
    };
    let cluster = r.cluster_name.clone();
    let creds = credentials(ssh, &tls, r)?;
    let profile = Profile {
        web_proxy_addr: addr.clone(),
        username: user,
        cluster: cluster.clone(),
        site: a.cluster.clone().unwrap_or(cluster),
        insecure: g.insecure,
    };
    store.save(&host_of(&addr), &profile, &creds)?;
    super::status::print_text(out, &profile, &creds, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_ports() {
        assert_eq!(addr_candidates("root.example.com"), vec!["root.example.com:443", "root.example.com:3080"]);
        assert_eq!(addr_candidates("root.example.com:3080"), vec!["root.example.com:3080"]);
        assert_eq!(addr_candidates("https://root.example.com/"), vec!["root.example.com:443", "root.example.com:3080"]);
        assert_eq!(addr_candidates("127.0.0.2:3080"), vec!["127.0.0.2:3080"]);
    }
}
