//! `tp-leafsim`: many leaf clusters in one process, for the scale benchmark.
//!
//! Each simulated leaf has its own cluster name and host CA, performs the real trust handshake
//! (`POST /webapi/trustedclusters/validate` with a `trusted_cluster` token) and keeps a real
//! reverse tunnel with heartbeats to the root. It serves nothing through its tunnel. Handshakes
//! come from distinct 127.x source addresses so the per-address rate limit of the validate
//! endpoint (a brute-force guard) does not serialise the benchmark.
//!
//! ```text
//! tp-leafsim --root=127.0.0.30:3080 --root-ca=webca.pem --token=<token> --count=1000
//! ```

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use base64::Engine;
use clap::Parser;
use russh::keys::ssh_key::certificate::CertType;
use shared::api::{ValidateTrustedClusterRequest, ValidateTrustedClusterResponse, path};
use shared::certs::{self, SshCertParams};
use shared::client::{ApiClient, BoxStream, Dialer, ServerTrust};
use shared::resource::token::SystemRole;
use shared::resource::{CaType, CertAuthority};
use teleport_server::auth::ca;
use teleport_server::shutdown::shutdown_pair;
use teleport_server::ssh::HostCreds;
use teleport_server::tunnel::agent::{AgentConfig, TunnelService};

#[derive(Parser)]
#[command(name = "tp-leafsim", about = "Simulate many leaf clusters connected to a root (benchmarks)")]
struct Args {
    /// The root's web address (the trust handshake goes there).
    #[arg(long)]
    root: String,
    /// Where the tunnels dial (default: `--root`), e.g. a load balancer in front of several
    /// root processes.
    #[arg(long)]
    tunnel_addr: Option<String>,
    /// PEM of the CA that signed the root's web certificate.
    #[arg(long)]
    root_ca: String,
    /// A trusted_cluster token from the root.
    #[arg(long)]
    token: String,
    /// How many leaves.
    #[arg(long, default_value_t = 100)]
    count: usize,
    /// Name prefix of the leaves.
    #[arg(long, default_value = "sim")]
    prefix: String,
    /// Heartbeat interval.
    #[arg(long, default_value = "30s")]
    keep_alive: String,
    /// The first leaf's number: several tp-leafsim processes (each under its own descriptor
    /// limit) give their leaves distinct names and source addresses.
    #[arg(long, default_value_t = 0)]
    offset: usize,
    /// Handshakes in flight at once.
    #[arg(long, default_value_t = 16)]
    parallel: usize,
}

/// Serves nothing: every channel gets an error.
struct Nothing;

impl TunnelService for Nothing {
    fn serve(
        &self,
        _req: teleport_server::tunnel::TunnelRequest,
        mut stream: russh::ChannelStream<russh::client::Msg>,
    ) -> shared::client::BoxFuture<'static, ()> {
        Box::pin(async move {
            let _ = teleport_server::tunnel::write_err(&mut stream, &shared::Error::not_found("simulated leaf")).await;
        })
    }
}

/// A dialer whose connections come from `source`.
fn dialer_from(source: std::net::IpAddr, target: String) -> Dialer {
    Arc::new(move || {
        let target = target.clone();
        Box::pin(async move {
            let s = teleport_server::tunnel::agent::dial(&target, Some(source))
                .await
                .map_err(|e| shared::Error::connection_problem(e.to_string()))?;
            shared::tuning::set_nodelay(&s);
            Ok(Box::new(s) as BoxStream)
        })
    })
}

struct Leaf {
    creds: HostCreds,
    root_cluster: String,
    root_host_keys: Vec<russh::keys::PublicKey>,
    /// Its own address, for the handshake and for its tunnels.
    source: std::net::IpAddr,
}

async fn make_leaf(a: &Args, i: usize, trust: &ServerTrust) -> anyhow::Result<Leaf> {
    let name = format!("{}-{i}", a.prefix);
    let now = time::OffsetDateTime::now_utc();
    let host_ca = ca::new_ca(CaType::Host, &name, now)?;
    let signer = ca::signer(&host_ca)?;
    let key = certs::new_ssh_key()?;
    let host_id = uuid::Uuid::new_v4().to_string();
    let cert = certs::sign_ssh_cert(
        &signer.ssh,
        key.public_key(),
        &SshCertParams {
            cert_type: CertType::Host,
            key_id: host_id.clone(),
            principals: shared::identity::host_principals(&host_id, &name, &name, &[]),
            extensions: shared::identity::host_ssh_extensions(SystemRole::Proxy, &name),
            not_before: now - certs::CLOCK_SKEW,
            not_after: now + Duration::from_secs(86400),
        },
    )?;
    let mut public = host_ca.without_secrets();
    public.metadata.id = None;
    let encoded = base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&public)?);
    let source: std::net::IpAddr = format!("127.{}.{}.{}", 100 + (i / 62500) % 100, (i / 250) % 250 + 1, i % 250 + 1).parse()?;
    let client = ApiClient::new(dialer_from(source, a.root.clone()), &shared::client::host_of(&a.root), trust, None, &a.root)?;
    let req = ValidateTrustedClusterRequest {
        token: a.token.clone(),
        certificate_authorities: vec![encoded],
        teleport_version: shared::version::VERSION.into(),
    };
    let resp: ValidateTrustedClusterResponse =
        client.post(path::VALIDATE_TRUSTED_CLUSTER, &req).await.map_err(|e| anyhow!("{name}: {e}"))?;
    let mut root_cluster = String::new();
    let mut root_host_keys = Vec::new();
    for b64 in resp.certificate_authorities {
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64)?;
        let ca: CertAuthority = serde_json::from_slice(&bytes)?;
        if ca.spec.ca_type == CaType::Host {
            root_cluster = ca.metadata.name.clone();
            root_host_keys = ca.ssh_public_keys();
        }
    }
    let creds = HostCreds { host_id, cluster: name, key, cert, tls_cert_pem: String::new(), tls_key_pem: String::new(), host_cas: vec![] };
    Ok(Leaf { creds, root_cluster, root_host_keys, source })
}

/// mimalloc: a third of a 10,000-leaf listing's CPU was glibc's malloc and free (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async move {
        shared::client::install_crypto_provider();
        let interval = shared::timefmt::parse_duration(&a.keep_alive).map_err(|e| anyhow!("--keep-alive: {e}"))?;
        let trust = ServerTrust::Pinned(vec![std::fs::read_to_string(&a.root_ca).context("--root-ca")?]);
        let started = Instant::now();
        let done = Arc::new(AtomicUsize::new(0));
        let sem = Arc::new(tokio::sync::Semaphore::new(a.parallel.max(1)));
        let a = Arc::new(a);
        let mut tasks = Vec::new();
        for i in 0..a.count {
            let (a, trust, sem, done) = (a.clone(), trust.clone(), sem.clone(), done.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = sem.acquire().await;
                let r = make_leaf(&a, a.offset + i, &trust).await;
                done.fetch_add(1, Ordering::SeqCst);
                r
            }));
        }
        let mut leaves = Vec::new();
        for t in tasks {
            leaves.push(t.await??);
        }
        let _ = writeln!(std::io::stdout(), "handshakes: {} leaves in {:.2}s", leaves.len(), started.elapsed().as_secs_f64());
        let (trigger, shutdown) = shutdown_pair();
        for leaf in leaves {
            let keys = leaf.root_host_keys.clone();
            let cfg = AgentConfig {
                name: format!("sim {}", leaf.creds.cluster),
                addr: a.tunnel_addr.clone().unwrap_or_else(|| a.root.clone()),
                server_cluster: leaf.root_cluster.clone(),
                server_cas: Arc::new(move || {
                    let keys = keys.clone();
                    Box::pin(async move { Ok(keys) })
                }),
                creds: teleport_server::ssh::LiveCreds::new(leaf.creds),
                interval,
                count_max: 3,
                max_backoff: Duration::from_secs(10),
                service: Arc::new(Nothing),
                clock: shared::timefmt::system_clock(),
                status: teleport_server::tunnel::state::AgentStatus::detached(),
                on_cas: None,
                announce: None,
                source: Some(leaf.source),
            };
            tokio::spawn(teleport_server::tunnel::pool::run(cfg, shutdown.clone()));
        }
        let _ = writeln!(std::io::stdout(), "tunnels started");
        let _ = std::io::stdout().flush();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        trigger.trigger();
        tokio::time::sleep(Duration::from_millis(300)).await;
        Ok(())
    })
}
