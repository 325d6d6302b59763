//! `tsh ssh -L`, `-R` and `-D`: port forwards over the SSH connection to the node, as OpenSSH's
//! `ssh` does them. Connections are dialled **by the node** (through a leaf's tunnel for a leaf's
//! node): `-L` and `-D` open a `direct-tcpip` channel per local connection, `-R` asks the node to
//! listen and takes the `forwarded-tcpip` channels it opens back. A forward that cannot be set up
//! (a local port in use, a node or role refusal) fails the command, as OpenSSH's
//! `ExitOnForwardFailure=yes` does.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use shared::sshclient::NodeConn;

/// One `-L` or `-R`: listen on `bind:port`, connect to `host:host_port` on the other side.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// Where to listen (`-L`: here; `-R`: on the node).
    pub bind: String,
    /// The port to listen on (0: any, for `-R`).
    pub port: u16,
    /// Where to connect.
    pub host: String,
    /// Its port.
    pub host_port: u16,
}

fn port_of(s: &str, what: &str) -> anyhow::Result<u16> {
    s.parse().map_err(|_| anyhow!("invalid {what} {s:?}: a port is a number from 0 to 65535"))
}

/// Reads `[bind:]port:host:hostport` (`default_bind` when no bind is given).
pub fn parse_spec(s: &str, default_bind: &str) -> anyhow::Result<Spec> {
    let parts: Vec<&str> = s.split(':').collect();
    let (bind, port, host, host_port) = match parts.as_slice() {
        [p, h, hp] => (default_bind, *p, *h, *hp),
        [b, p, h, hp] => (if b.is_empty() || *b == "*" { default_bind } else { *b }, *p, *h, *hp),
        _ => bail!("invalid forward {s:?}: use [bind_address:]port:host:hostport, such as 8080:localhost:80"),
    };
    if host.is_empty() {
        bail!("invalid forward {s:?}: the host to connect to is missing");
    }
    Ok(Spec { bind: bind.to_string(), port: port_of(port, "port")?, host: host.to_string(), host_port: port_of(host_port, "port")? })
}

/// Reads `-D [bind:]port`.
pub fn parse_dynamic(s: &str) -> anyhow::Result<(String, u16)> {
    match s.rsplit_once(':') {
        Some((b, p)) => {
            Ok((if b.is_empty() || b == "*" || b == "localhost" { "127.0.0.1".into() } else { b.to_string() }, port_of(p, "port")?))
        }
        None => Ok(("127.0.0.1".into(), port_of(s, "port")?)),
    }
}

async fn bind(addr: &str, port: u16) -> anyhow::Result<tokio::net::TcpListener> {
    let host = if addr == "localhost" { "127.0.0.1" } else { addr };
    tokio::net::TcpListener::bind((host, port)).await.with_context(|| format!("cannot listen on {addr}:{port} for a forward"))
}

/// Copies both ways between a local connection and a channel.
async fn pump(tcp: tokio::net::TcpStream, channel: russh::Channel<russh::client::Msg>) {
    shared::sshclient::relay_tcp(channel, tcp).await;
}

fn warn(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// A session channel kept open to hear what the node says about forwards (a refusal names the
/// option that refused it there): kept until [`Notices::go_live`], then printed as it comes.
pub struct Notices {
    said: Arc<std::sync::Mutex<(bool, String)>>,
    ended: tokio::sync::watch::Receiver<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Notices {
    /// Opens the channel.
    pub async fn open(node: &NodeConn) -> anyhow::Result<Notices> {
        let mut ch = node.open_session().await?;
        let said = Arc::new(std::sync::Mutex::new((false, String::new())));
        let (tx, ended) = tokio::sync::watch::channel(false);
        let keep = said.clone();
        let task = tokio::spawn(async move {
            use russh::ChannelMsg;
            while let Some(msg) = ch.wait().await {
                if let ChannelMsg::ExtendedData { data, .. } | ChannelMsg::Data { data } = msg
                    && let Ok(mut s) = keep.lock()
                {
                    let text = String::from_utf8_lossy(&data).replace('\r', "");
                    if s.0 {
                        warn(text.trim_end());
                    } else if s.1.len() < 4096 {
                        s.1.push_str(&text);
                    }
                }
            }
            let _ = tx.send(true);
        });
        Ok(Notices { said, ended, task })
    }

    /// What the node said so far, after a moment for it to arrive.
    pub async fn said(&self) -> String {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        self.said.lock().map(|s| s.1.trim().replace('\n', "; ")).unwrap_or_default()
    }

    /// Prints what was kept, and from now on what comes.
    pub fn go_live(&self) {
        if let Ok(mut s) = self.said.lock() {
            if !s.1.trim().is_empty() {
                warn(s.1.trim_end());
            }
            *s = (true, String::new());
        }
    }

    /// Resolves when the channel (the connection) ends.
    pub async fn ended(&mut self) {
        let _ = self.ended.wait_for(|e| *e).await;
    }
}

impl Drop for Notices {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The forwards of one `tsh ssh`, running until it ends.
pub struct Running {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Sets up every forward (listening here for `-L` and `-D`, asking the node for `-R`); with
/// `fail_fast` (OpenSSH's `ExitOnForwardFailure=yes`, tsh's default) the first one that fails
/// fails them all, else it is a warning.
pub async fn start(
    node: &Arc<NodeConn>,
    local: &[Spec],
    remote: &[Spec],
    dynamic: &[(String, u16)],
    fail_fast: bool,
) -> anyhow::Result<Running> {
    let check = |r: anyhow::Result<tokio::net::TcpListener>| -> anyhow::Result<Option<tokio::net::TcpListener>> {
        match r {
            Ok(l) => Ok(Some(l)),
            Err(e) if !fail_fast => {
                warn(&format!("WARNING: {e:#}"));
                Ok(None)
            }
            Err(e) => Err(e),
        }
    };
    let mut tasks = Vec::new();
    for spec in local {
        let Some(listener) = check(bind(&spec.bind, spec.port).await)? else { continue };
        let (node, spec) = (node.clone(), spec.clone());
        tasks.push(tokio::spawn(async move {
            while let Ok((tcp, peer)) = listener.accept().await {
                let (node, spec) = (node.clone(), spec.clone());
                tokio::spawn(async move {
                    match node.direct_tcpip(&spec.host, u32::from(spec.host_port), peer).await {
                        Ok(ch) => pump(tcp, ch).await,
                        Err(e) => warn(&format!("channel open failed for {}:{}: {e}", spec.host, spec.host_port)),
                    }
                });
            }
        }));
    }
    for (addr, port) in dynamic {
        let Some(listener) = check(bind(addr, *port).await)? else { continue };
        let node = node.clone();
        tasks.push(tokio::spawn(async move {
            while let Ok((tcp, peer)) = listener.accept().await {
                let node = node.clone();
                tokio::spawn(async move {
                    if let Err(e) = socks(tcp, peer, &node).await {
                        tracing::debug!(error = %e, "SOCKS connection ended");
                    }
                });
            }
        }));
    }
    if !remote.is_empty() {
        let mut wanted: Vec<(String, u32, Spec)> = Vec::new();
        let mut incoming = node.forwarded_connections();
        for spec in remote {
            let port = match node.remote_forward(&spec.bind, u32::from(spec.port)).await {
                Ok(p) => p,
                Err(e) if !fail_fast => {
                    warn(&format!("WARNING: remote port forwarding failed for listen port {}: {e}", spec.port));
                    continue;
                }
                Err(e) => bail!("remote port forwarding failed for listen port {}: {e}", spec.port),
            };
            if spec.port == 0 {
                warn(&format!("Allocated port {port} for remote forward to {}:{}", spec.host, spec.host_port));
            }
            wanted.push((spec.bind.clone(), port, spec.clone()));
        }
        tasks.push(tokio::spawn(async move {
            while let Some(f) = incoming.recv().await {
                // Only connections for forwards we asked for.
                let Some((_, _, spec)) = wanted.iter().find(|(b, p, _)| *b == f.connected_address && *p == f.connected_port) else {
                    tracing::warn!(address = %f.connected_address, port = f.connected_port, "the node opened a connection for a forward we did not ask for; closing it");
                    continue;
                };
                let target = (spec.host.clone(), spec.host_port);
                tokio::spawn(async move {
                    match tokio::net::TcpStream::connect(&target).await {
                        Ok(tcp) => pump(tcp, f.channel).await,
                        Err(e) => warn(&format!("connect to {}:{} failed for a remote forward: {e}", target.0, target.1)),
                    }
                });
            }
        }));
    }
    Ok(Running { tasks })
}

/// One SOCKS5 connection (no authentication, CONNECT): like OpenSSH, success is answered
/// before the node connects, so a target that cannot be reached shows as a closed connection.
async fn socks(tcp: tokio::net::TcpStream, peer: SocketAddr, node: &NodeConn) -> anyhow::Result<()> {
    use fast_socks5::server::Socks5ServerProtocol;
    use fast_socks5::util::target_addr::TargetAddr;
    use fast_socks5::{ReplyError, Socks5Command};
    let proto = Socks5ServerProtocol::accept_no_auth(tcp).await?;
    let (proto, cmd, target) = proto.read_command().await?;
    if cmd != Socks5Command::TCPConnect {
        proto.reply_error(&ReplyError::CommandNotSupported).await?;
        bail!("only CONNECT is supported");
    }
    let (host, port) = match target {
        TargetAddr::Ip(a) => (a.ip().to_string(), a.port()),
        TargetAddr::Domain(d, p) => (d, p),
    };
    let tcp = proto.reply_success(SocketAddr::from(([0, 0, 0, 0], 0))).await?;
    let ch = node.direct_tcpip(&host, u32::from(port), peer).await.map_err(|e| anyhow!("the node could not open {host}:{port}: {e}"))?;
    pump(tcp, ch).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_are_read_as_ssh_reads_them() {
        let s = |b: &str, p, h: &str, hp| Spec { bind: b.into(), port: p, host: h.into(), host_port: hp };
        assert_eq!(parse_spec("8080:localhost:80", "127.0.0.1").unwrap(), s("127.0.0.1", 8080, "localhost", 80));
        assert_eq!(parse_spec("0.0.0.0:8080:db:5432", "127.0.0.1").unwrap(), s("0.0.0.0", 8080, "db", 5432));
        assert_eq!(parse_spec("*:0:db:5432", "localhost").unwrap(), s("localhost", 0, "db", 5432));
        assert!(parse_spec("8080:80", "x").is_err());
        assert!(parse_spec("x:db:80", "b").unwrap_err().to_string().contains("a port is a number"));
        assert_eq!(parse_dynamic("1080").unwrap(), ("127.0.0.1".to_string(), 1080));
        assert_eq!(parse_dynamic("127.0.0.5:1080").unwrap(), ("127.0.0.5".to_string(), 1080));
        assert!(parse_dynamic("99999").is_err());
    }
}
