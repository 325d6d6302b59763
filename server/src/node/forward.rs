//! Port forwarding on the node: `direct-tcpip` channels (`ssh -L`, `-D`, `-W`; `tsh ssh -L`,
//! `-D`) are dialled **from the node**, and `tcpip-forward` requests (`-R`) listen on the node
//! and open a `forwarded-tcpip` channel back for each connection. Both are decided by the node's
//! `ssh_service.port_forwarding` switch and the mapped roles' mode (`rbac::ForwardMode`), and
//! audited as `port` events on the node's cluster.
//!
//! Refusals follow sshd on the wire (an `administratively prohibited` channel failure, a failed
//! global request) and say why, naming the option, on the connection's session channel when
//! there is one (OpenSSH prints it on the terminal; `tsh ssh -N` keeps one open to hear it).
//!
//! Remote listeners copy sshd's `GatewayPorts no`: whatever address the client sends, the
//! listener binds loopback, except an explicit `127.0.0.1` or `::1`, which binds just that; a
//! port below 1024 needs the `root` login.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use russh::Channel;
use russh::server::{Handle, Msg};

use super::authz::Allowed;

/// How long dialling a `direct-tcpip` target may take.
pub const DIAL_TIMEOUT: Duration = Duration::from_secs(10);
/// Forwarded connections (both kinds) one SSH connection may have open at once.
pub const MAX_FORWARDED: usize = 256;
/// Remote-forward listeners per SSH connection.
pub const MAX_LISTENERS: usize = 16;

/// Why forwarding (`remote`: `-R`, else `-L`/`-D`) is refused here: the node's switch first,
/// then the roles.
pub fn refusal(node_allows: bool, allowed: &Allowed, remote: bool) -> Option<String> {
    let what = if remote { "remote port forwarding (-R)" } else { "port forwarding (-L, -D)" };
    if !node_allows {
        return Some(format!("{what} refused: node does not allow port forwarding (ssh_service.port_forwarding is false on this node)"));
    }
    let by = if remote { &allowed.remote_forward_refused_by } else { &allowed.local_forward_refused_by };
    by.as_ref().map(|why| format!("{what} refused: port forwarding not allowed by role set: {why}"))
}

/// The address a remote forward listens on, as sshd's `GatewayPorts no` decides it.
pub fn listen_addr(requested: &str, port: u32) -> Result<SocketAddr, String> {
    let port = u16::try_from(port).map_err(|_| format!("port {port} is out of range"))?;
    let ip = match requested {
        "::1" | "[::1]" => std::net::IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        _ => std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
    };
    Ok(SocketAddr::new(ip, port))
}

/// Copies both ways between a channel and a TCP connection until both sides are done.
pub async fn pump(channel: Channel<Msg>, tcp: tokio::net::TcpStream) {
    shared::sshclient::relay_tcp(channel, tcp).await;
}

/// Dials `host:port` from the node (bounded by [`DIAL_TIMEOUT`]).
pub async fn dial(host: &str, port: u32) -> Result<tokio::net::TcpStream, String> {
    let port = u16::try_from(port).map_err(|_| format!("port {port} is out of range"))?;
    match tokio::time::timeout(DIAL_TIMEOUT, tokio::net::TcpStream::connect((host, port))).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(format!("cannot connect to {host}:{port} from the node: {e}")),
        Err(_) => Err(format!("cannot connect to {host}:{port} from the node: no answer in {}s", DIAL_TIMEOUT.as_secs())),
    }
}

/// The remote-forward listeners of one connection, by the address and port the client asked.
#[derive(Default)]
pub struct Listeners(HashMap<(String, u32), tokio::task::AbortHandle>);

impl Listeners {
    /// How many are open.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether none is open.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Keeps a listener's task under the key the client used.
    pub fn insert(&mut self, address: &str, port: u32, task: tokio::task::AbortHandle) {
        if let Some(old) = self.0.insert((address.to_string(), port), task) {
            old.abort();
        }
    }

    /// Stops one (`cancel-tcpip-forward`); false when there was none.
    pub fn cancel(&mut self, address: &str, port: u32) -> bool {
        match self.0.remove(&(address.to_string(), port)) {
            Some(t) => {
                t.abort();
                true
            }
            None => false,
        }
    }
}

impl Drop for Listeners {
    /// The connection is gone: so are its listeners.
    fn drop(&mut self) {
        for t in self.0.values() {
            t.abort();
        }
    }
}

/// Accepts on `listener` and opens a `forwarded-tcpip` channel to the client for each
/// connection (at most `limit` at once, shared with the connection's other forwards).
pub async fn serve_listener(
    listener: tokio::net::TcpListener,
    handle: Handle,
    address: String,
    port: u32,
    limit: std::sync::Arc<tokio::sync::Semaphore>,
    on_conn: impl Fn(SocketAddr) + Send + 'static,
) {
    loop {
        let Ok((tcp, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let Ok(permit) = limit.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "remote forward: too many forwarded connections on this SSH connection; closing one");
            continue;
        };
        on_conn(peer);
        let (handle, address) = (handle.clone(), address.clone());
        tokio::spawn(async move {
            let _permit = permit;
            match handle.channel_open_forwarded_tcpip(address, port, peer.ip().to_string(), u32::from(peer.port())).await {
                Ok(ch) => pump(ch, tcp).await,
                Err(e) => tracing::debug!(error = %e, "the client refused a forwarded connection"),
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_listeners_bind_loopback_as_sshd_without_gateway_ports() {
        for asked in ["", "*", "0.0.0.0", "localhost", "10.1.2.3", "127.0.0.1"] {
            assert_eq!(listen_addr(asked, 8080).unwrap(), "127.0.0.1:8080".parse().unwrap(), "{asked:?}");
        }
        assert_eq!(listen_addr("::1", 0).unwrap(), "[::1]:0".parse().unwrap());
        assert!(listen_addr("", 70000).is_err());
    }
}
