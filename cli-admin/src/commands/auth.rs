//! `tctl auth sign` (identity files) and `tctl auth export` (CA public keys for OpenSSH).

use std::io::Write;
use std::path::PathBuf;

use shared::api::{CertsResponse, ExportCasResponse, RotateRequest, SignUserRequest, path};
use shared::certs;
use shared::profile::{Credentials, write_identity_file};

use crate::client::{ConnArgs, connect};

/// Identity files and CA export.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// Write an identity file for a user, or a database server's certificate (--format=db).
    #[command(
        after_help = "Examples:\n  tctl auth sign --user=myuser --out=myuser.identity --ttl=8h\n  tsh -i myuser.identity --proxy=root.example.com:3080 ls\n  tctl auth sign --format=db --host=db.example.com --out=server --ttl=2190h   # server.crt, server.key, server.cas\n\nPostgreSQL with --format=db (postgresql.conf, pg_hba.conf):\n  ssl = on\n  ssl_cert_file = 'server.crt'\n  ssl_key_file = 'server.key'\n  ssl_ca_file = 'server.cas'\n  hostssl all all 0.0.0.0/0 cert"
    )]
    Sign {
        /// The user (identity files).
        #[arg(long)]
        user: Option<String>,
        /// Where to write: the identity file, or with --format=db the prefix of <out>.crt, .key, .cas.
        #[arg(short = 'o', long)]
        out: PathBuf,
        /// Certificate TTL.
        #[arg(long, default_value = "12h")]
        ttl: String,
        /// What to write: file (an identity file) or db (a database server's certificate, key and CA).
        #[arg(long, default_value = "file", value_parser = ["file", "db"])]
        format: String,
        /// With --format=db: the names clients reach the database by, comma-separated.
        #[arg(long)]
        host: Option<String>,
    },
    /// Rotate a certificate authority of this cluster (its leaves follow over the tunnel).
    #[command(
        after_help = "Examples:\n  tctl auth rotate                                            # user and host CAs, automatic, 30h grace period\n  tctl auth rotate --type=user --grace-period=0               # emergency: old certificates stop working now\n  tctl auth rotate --type=host --manual --phase=init          # then update_clients, update_servers, standby\n  tctl auth rotate --type=user --manual --phase=rollback\n  tctl auth rotate --type=jwt --manual --phase=init           # apps' token key: published first, signs from update_clients"
    )]
    Rotate {
        /// user, host, db or jwt; user and host when omitted.
        #[arg(long = "type", value_parser = ["user", "host", "db", "jwt"])]
        ca_type: Option<String>,
        /// How long certificates of the old keys stay trusted (0: not at all).
        #[arg(long, default_value = "30h")]
        grace_period: String,
        /// Move through the phases one command at a time.
        #[arg(long)]
        manual: bool,
        /// With --manual: init, update_clients, update_servers, standby or rollback.
        #[arg(long)]
        phase: Option<String>,
    },
    /// Print this cluster's CA public keys in OpenSSH formats.
    #[command(
        after_help = "Examples:\n  tctl auth export --type=user > /etc/ssh/teleport_user_ca.pub   # TrustedUserCAKeys\n  tctl auth export --type=host >> ~/.ssh/known_hosts             # @cert-authority line"
    )]
    Export {
        /// user (TrustedUserCAKeys lines) or host (@cert-authority lines); both when omitted.
        #[arg(long = "type")]
        ca_type: Option<String>,
    },
}

/// `tctl auth sign --format=db`: `<out>.crt`, `<out>.key` (0600) and `<out>.cas`; nothing is
/// written unless all three can be.
async fn sign_db(
    conn: &crate::client::Conn,
    hosts: &str,
    ttl: std::time::Duration,
    prefix: &std::path::Path,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    let key = certs::new_tls_key()?;
    let req = shared::api::SignDbRequest {
        hosts: hosts.split(',').map(|h| h.trim().to_string()).filter(|h| !h.is_empty()).collect(),
        ttl_seconds: ttl.as_secs(),
        tls_public_key: certs::spki_pem(&key),
    };
    let r: shared::api::SignDbResponse = conn.api.post(path::SIGN_DB, &req).await?;
    let with = |ext: &str| {
        let mut p = prefix.as_os_str().to_owned();
        p.push(ext);
        PathBuf::from(p)
    };
    let (crt, key_file, cas) = (with(".crt"), with(".key"), with(".cas"));
    for f in [&crt, &key_file, &cas] {
        if f.exists() {
            anyhow::bail!("{} exists; remove it or choose another --out", f.display());
        }
    }
    shared::profile::write_file(&key_file, key.serialize_pem().as_bytes(), 0o600)?;
    shared::profile::write_file(&crt, r.cert.as_bytes(), 0o644)?;
    shared::profile::write_file(&cas, r.cas.concat().as_bytes(), 0o644)?;
    writeln!(
        out,
        "Database credentials have been written to {}, {}, {}.\n\nTo enable mutual TLS on your PostgreSQL server, add the following to its postgresql.conf:\n\nssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\nssl_ca_file = '{}'\n\nand to pg_hba.conf:\n\nhostssl all all ::/0 cert\nhostssl all all 0.0.0.0/0 cert",
        crt.display(),
        key_file.display(),
        cas.display(),
        crt.display(),
        key_file.display(),
        cas.display()
    )?;
    Ok(())
}

/// Runs the command.
pub async fn exec(a: Args, c: &ConnArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let conn = connect(c)?;
    match a.cmd {
        Cmd::Sign { user, out: file, ttl, format, host } => {
            let ttl = shared::timefmt::parse_duration(&ttl).map_err(|e| anyhow::anyhow!("--ttl: {e}"))?;
            if format == "db" {
                let host = host.ok_or_else(|| anyhow::anyhow!("--format=db needs --host=<the database server's names>"))?;
                if user.is_some() {
                    anyhow::bail!("--format=db signs a database server's certificate: give --host, not --user");
                }
                return sign_db(&conn, &host, ttl, &file, out).await;
            }
            let Some(user) = user else { anyhow::bail!("give --user (an identity file) or --format=db --host (a database certificate)") };
            if host.is_some() {
                anyhow::bail!("--host is for --format=db");
            }
            let (ssh, tls, keys) = certs::new_key_pair()?;
            let req = SignUserRequest { username: user, ttl_seconds: ttl.as_secs(), keys };
            let r: CertsResponse = conn.api.post(path::SIGN_USER, &req).await?;
            let creds = Credentials {
                ssh_key: ssh,
                ssh_cert: certs::parse_ssh_cert(&r.ssh_cert)?,
                tls_key_pem: tls.serialize_pem(),
                tls_cert_pem: r.tls_cert,
                host_cas: r.host_cas,
            };
            write_identity_file(&file, &creds)?;
            writeln!(out, "\nThe credentials have been written to {}", file.display())?;
        }
        Cmd::Rotate { ca_type, grace_period, manual, phase } => {
            let req = RotateRequest { ca_type: ca_type.unwrap_or_default(), grace_period, manual, phase: phase.unwrap_or_default() };
            let _: serde_json::Value = conn.api.post(path::ROTATE, &req).await?;
            if manual {
                writeln!(out, "Updated rotation phase to {:?}. To check status use 'tctl status'", req.phase)?;
            } else {
                writeln!(out, "Initiated certificate authority rotation. To check status use 'tctl status'")?;
            }
        }
        Cmd::Export { ca_type } => {
            let q = ca_type.map(|t| format!("?type={}", shared::client::encode_segment(&t))).unwrap_or_default();
            let r: ExportCasResponse = conn.api.get(&format!("{}{q}", path::EXPORT_CAS)).await?;
            for l in r.lines {
                writeln!(out, "{l}")?;
            }
        }
    }
    Ok(())
}
