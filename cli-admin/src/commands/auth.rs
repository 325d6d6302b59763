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
    /// Write an identity file (keys and certificates) for a user.
    #[command(
        after_help = "Example:\n  tctl auth sign --user=myuser --out=myuser.identity --ttl=8h\n  tsh -i myuser.identity --proxy=root.example.com:3080 ls"
    )]
    Sign {
        /// The user.
        #[arg(long)]
        user: String,
        /// Where to write the identity file.
        #[arg(short = 'o', long)]
        out: PathBuf,
        /// Certificate TTL.
        #[arg(long, default_value = "12h")]
        ttl: String,
    },
    /// Rotate a certificate authority of this cluster (its leaves follow over the tunnel).
    #[command(
        after_help = "Examples:\n  tctl auth rotate                                            # user and host CAs, automatic, 30h grace period\n  tctl auth rotate --type=user --grace-period=0               # emergency: old certificates stop working now\n  tctl auth rotate --type=host --manual --phase=init          # then update_clients, update_servers, standby\n  tctl auth rotate --type=user --manual --phase=rollback\n  tctl auth rotate --type=jwt --manual --phase=init           # apps' token key: published first, signs from update_clients"
    )]
    Rotate {
        /// user, host or jwt; user and host when omitted.
        #[arg(long = "type", value_parser = ["user", "host", "jwt"])]
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

/// Runs the command.
pub async fn exec(a: Args, c: &ConnArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let conn = connect(c)?;
    match a.cmd {
        Cmd::Sign { user, out: file, ttl } => {
            let ttl = shared::timefmt::parse_duration(&ttl).map_err(|e| anyhow::anyhow!("--ttl: {e}"))?;
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
