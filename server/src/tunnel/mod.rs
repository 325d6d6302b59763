//! Reverse tunnels: how a leaf cluster (or a node) with no inbound port is reached.
//!
//! ```text
//!   leaf proxy / node (agent)                         root proxy / own proxy (server)
//!   ---------------------------  TCP + SSH  ------->  web port, sniffed "SSH-"
//!   auth: host certificate  ----------------------->  CA of x-teleport-authority, role, rc
//!   tcpip-forward "teleport-tunnel" --------------->  registry[Cluster(leaf) | Node(uuid)]
//!   session + subsystem "teleport-heartbeat"
//!        "ping <time>\n" every keep_alive_interval ->  last_heartbeat, status online
//!        <------------------------------- "pong\n"
//!        <------------------------------- "proxies {...}\n"  (every proxy of the cluster)
//!        <------------------------------- "reconnect\n"      (this proxy is stopping)
//!   <---- forwarded-tcpip "node:<host:port>" | "api" | "ssh"   (one channel per connection)
//!   answers "OK\n" or "ERR <reason>\n", then bytes flow
//! ```
//! The agent half (`agent.rs`, one tunnel; `pool.rs`, one to every proxy) runs in the leaf proxy
//! and in tunnel nodes; the server half lives in the proxy's SSH handler (`crate::ssh::proxy`)
//! and uses the [`TunnelRegistry`] here; `peer.rs` reaches tunnels other proxies hold.
//! A leaf can only heartbeat: every channel it tries to open is refused.

pub mod agent;
pub mod killable;
pub mod leaf_service;
pub mod manager;
pub mod peer;
pub mod pool;
pub mod state;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shared::client::BoxStream;
use shared::error::{Error, Result};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The address an agent forwards to register its tunnel.
pub const TUNNEL_ADDRESS: &str = "teleport-tunnel";
/// The subsystem carrying heartbeats.
pub const HEARTBEAT_SUBSYSTEM: &str = "teleport-heartbeat";
/// Target of a leaf's own API (for `tsh ls --cluster=leaf` and friends).
pub const TARGET_API: &str = "api";
/// Target of a tunnel node's SSH server.
pub const TARGET_SSH: &str = "ssh";
/// Target of a root sending its locks to a leaf.
pub const TARGET_LOCKS: &str = "locks";
/// Prefix of a node target on a leaf: `node:<host>:<port>`.
pub const TARGET_NODE_PREFIX: &str = "node:";

/// Heartbeat channel, proxy to agent: `proxies <json>` lists every proxy of the cluster.
pub const TUNNEL_PROXIES: &str = "proxies";
/// Heartbeat channel, proxy to agent: this proxy is stopping; keep your other tunnels and do
/// not dial it again until it is back.
pub const TUNNEL_RECONNECT: &str = "reconnect";
/// Heartbeat message `cas <json>`, at connect and after every change (Teleport pushes them with
/// `RotateExternalCertAuthority`): from a root's proxy to a leaf, the root's host and user CAs;
/// from a leaf's agent to the root, the leaf's host CA. Public keys and rotation state only.
pub const TUNNEL_CAS: &str = "cas";
/// The longest line an agent accepts on its heartbeat channel (a discovery list).
pub const MAX_DISCOVERY_LINE: usize = 256 * 1024;

/// The longest channel address a tunnel end accepts (the target and its origin, as JSON).
pub const MAX_REQUEST_LEN: usize = 8 * 1024;
/// The longest heartbeat line a proxy accepts from an agent (a `ping`, or a leaf's `cas` line:
/// a host CA in the middle of a rotation, two keys and two certificates, is about 3 KiB).
pub const MAX_HEARTBEAT_LINE: usize = 16 * 1024;

/// `cas <json>`: this cluster's CAs of `types`, public parts only.
pub async fn cas_line(auth: &crate::auth::AuthServer, types: &[shared::resource::CaType]) -> Option<String> {
    let mut cas = Vec::new();
    for &t in types {
        cas.push(auth.own_ca(t).await.ok()?.without_secrets());
    }
    Some(format!("{TUNNEL_CAS} {}", serde_json::to_string(&cas).ok()?))
}

/// Who a connection through a tunnel is for, as the proxy that opened the channel knows them.
///
/// A leaf trusts this only because it arrives on the tunnel the leaf itself dialled to its
/// trusted root, whose host certificate it verified: nobody else can open channels on it. The
/// leaf uses it for its audit log, its per-caller limits and locks; authorization still rests
/// on the user's own certificate, checked end to end by the leaf's API or node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Origin {
    /// The Teleport user.
    pub user: String,
    /// The cluster that issued the user's certificate.
    pub cluster: String,
    /// The roles in the user's certificate.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The client's address as the proxy saw it.
    pub addr: String,
    /// When the user's certificate was issued (Unix seconds), for locks that cover only older
    /// certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<i64>,
}

impl Origin {
    /// [`Origin::issued_at`] as a time.
    pub fn issued_time(&self) -> Option<time::OffsetDateTime> {
        self.issued_at.map(shared::timefmt::from_unix)
    }
}

impl Origin {
    /// `user@cluster`, the key of per-caller limits.
    pub fn caller(&self) -> String {
        format!("{}@{}", self.user, self.cluster)
    }
}

/// What a proxy asks of a tunnel: a target (`api`, `ssh`, `node:<host>:<port>`, `locks`) and,
/// for a user's connection, who it is for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TunnelRequest {
    /// What to connect to.
    pub target: String,
    /// For whom.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

impl TunnelRequest {
    /// A request without an origin.
    pub fn plain(target: &str) -> TunnelRequest {
        TunnelRequest { target: target.into(), origin: None }
    }

    /// The channel address: the bare target, or JSON when there is an origin.
    pub fn encode(&self) -> String {
        match &self.origin {
            None => self.target.clone(),
            Some(_) => serde_json::to_string(self).unwrap_or_else(|_| self.target.clone()),
        }
    }

    /// Parses a channel address (bounded; never panics on peer input).
    pub fn parse(addr: &str) -> Result<TunnelRequest> {
        if addr.len() > MAX_REQUEST_LEN {
            return Err(Error::bad_parameter("tunnel request too long"));
        }
        if addr.starts_with('{') {
            return serde_json::from_str(addr).map_err(|e| Error::bad_parameter(format!("malformed tunnel request: {e}")));
        }
        Ok(TunnelRequest::plain(addr))
    }
}

/// Reads one `\n`-terminated line of at most `max` bytes; the limit applies while reading, so
/// a peer cannot make us buffer more. `Ok(None)` at a clean end of stream.
pub async fn read_line_bounded<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R, max: usize) -> std::io::Result<Option<String>> {
    use tokio::io::AsyncBufReadExt;
    let mut line = Vec::new();
    let mut limited = r.take(max as u64 + 1);
    let n = limited.read_until(b'\n', &mut line).await?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("line longer than {max} bytes")));
    }
    line.pop();
    Ok(Some(String::from_utf8_lossy(&line).into_owned()))
}

/// Aborts the task when dropped (a dropped `JoinHandle` would let it run on).
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Whose tunnel.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TunnelKey {
    /// A node of this cluster (by host UUID).
    Node(String),
    /// A leaf cluster (by name).
    Cluster(String),
}

/// One connected tunnel.
pub struct TunnelEntry {
    /// Connection number (to tell a replaced tunnel from its successor).
    pub conn_id: u64,
    /// The agent's host UUID: a leaf of several processes has one tunnel from each here.
    pub agent: String,
    /// The SSH session, to open channels and disconnect.
    pub handle: russh::server::Handle,
    /// Drops the connection (and with it every channel through it) without waiting for the
    /// peer: a tunnel whose link died would otherwise hold its sessions until TCP gives up.
    pub kill: killable::KillSwitch,
}

impl TunnelEntry {
    /// Says goodbye (bounded: a dead link cannot hold us up) and drops the connection.
    pub async fn close(&self, why: &str) {
        close_connection(&self.handle, &self.kill, why).await;
    }
}

/// Sends SSH disconnect, waiting at most a second, then drops the connection.
pub async fn close_connection(handle: &russh::server::Handle, kill: &killable::KillSwitch, why: &str) {
    let bye = handle.disconnect(russh::Disconnect::ByApplication, why.into(), "en".into());
    let _ = tokio::time::timeout(Duration::from_secs(1), bye).await;
    kill.pull();
}

/// The proxy's connected tunnels: per leaf (or node), one per agent process, newest first.
#[derive(Default)]
pub struct TunnelRegistry {
    map: Mutex<HashMap<TunnelKey, Vec<Arc<TunnelEntry>>>>,
    next_id: AtomicU64,
    registered: AtomicU64,
}

impl TunnelRegistry {
    /// An empty registry.
    pub fn new() -> Arc<TunnelRegistry> {
        Arc::new(TunnelRegistry::default())
    }

    /// A connection number.
    pub fn next_conn_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Registers a tunnel; an older tunnel from the same agent is disconnected (it reconnected
    /// before we noticed the old one die).
    pub fn register(
        &self,
        key: TunnelKey,
        agent: &str,
        conn_id: u64,
        handle: russh::server::Handle,
        kill: killable::KillSwitch,
    ) -> Arc<TunnelEntry> {
        let entry = Arc::new(TunnelEntry { conn_id, agent: agent.to_string(), handle, kill });
        self.registered.fetch_add(1, Ordering::Relaxed);
        let mut replaced = Vec::new();
        if let Ok(mut m) = self.map.lock() {
            let list = m.entry(key).or_default();
            list.retain(|e| {
                let same = e.agent == agent && e.conn_id != conn_id;
                if same {
                    replaced.push(e.clone());
                }
                !same
            });
            list.insert(0, entry.clone());
        }
        for old in replaced {
            tokio::spawn(async move { old.close("replaced by a newer tunnel").await });
        }
        entry
    }

    /// Removes tunnel `conn_id`. True if it was there and it was the last one for `key` (the
    /// leaf or node is no longer connected here).
    pub fn remove(&self, key: &TunnelKey, conn_id: u64) -> bool {
        let Ok(mut m) = self.map.lock() else {
            return false;
        };
        let Some(list) = m.get_mut(key) else { return false };
        let before = list.len();
        list.retain(|e| e.conn_id != conn_id);
        if list.len() == before {
            return false;
        }
        if list.is_empty() {
            m.remove(key);
            return true;
        }
        false
    }

    /// Tunnels registered since the process started.
    pub fn registered(&self) -> u64 {
        self.registered.load(Ordering::Relaxed)
    }

    /// How many leaves and nodes are connected: (leaf clusters, nodes).
    pub fn counts(&self) -> (usize, usize) {
        let Ok(m) = self.map.lock() else {
            return (0, 0);
        };
        let clusters = m.keys().filter(|k| matches!(k, TunnelKey::Cluster(_))).count();
        (clusters, m.len() - clusters)
    }

    /// The leaf clusters with a tunnel here.
    pub fn clusters(&self) -> Vec<String> {
        self.map
            .lock()
            .map(|m| m.keys().filter_map(|k| if let TunnelKey::Cluster(c) = k { Some(c.clone()) } else { None }).collect())
            .unwrap_or_default()
    }

    /// The newest tunnel for `key`.
    pub fn get(&self, key: &TunnelKey) -> Option<Arc<TunnelEntry>> {
        self.map.lock().ok().and_then(|m| m.get(key).and_then(|l| l.first().cloned()))
    }

    /// Every tunnel for `key`, newest first.
    pub fn entries(&self, key: &TunnelKey) -> Vec<Arc<TunnelEntry>> {
        self.map.lock().ok().and_then(|m| m.get(key).cloned()).unwrap_or_default()
    }

    /// Every tunnel here.
    pub fn all(&self) -> Vec<(TunnelKey, Arc<TunnelEntry>)> {
        self.map.lock().map(|m| m.iter().flat_map(|(k, l)| l.iter().map(|e| (k.clone(), e.clone()))).collect()).unwrap_or_default()
    }

    /// Disconnects and forgets every tunnel for `key`.
    pub async fn disconnect(&self, key: &TunnelKey, why: &str) {
        let entries = self.map.lock().ok().and_then(|mut m| m.remove(key)).unwrap_or_default();
        for e in entries {
            e.close(why).await;
        }
    }

    /// Opens a channel for `req` through a tunnel for `key` held here (the newest first; the
    /// next when one is dead, for a leaf of several processes).
    pub async fn dial(&self, key: &TunnelKey, req: &TunnelRequest) -> Result<BoxStream> {
        let mut last = offline(key);
        for entry in self.entries(key) {
            match dial_entry(&entry, key, req).await {
                // The far end's answer (a stream, or a refusal such as an unknown node or a
                // lock) is final; only a dead tunnel makes us try the next.
                Ok(answer) => return answer,
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

/// Opens one channel: `Err` if the tunnel did not carry it, `Ok(answer)` with the far end's
/// answer otherwise.
async fn dial_entry(entry: &TunnelEntry, key: &TunnelKey, req: &TunnelRequest) -> Result<Result<BoxStream>> {
    let (orig_addr, orig_port) = match req.origin.as_ref().and_then(|o| o.addr.parse::<std::net::SocketAddr>().ok()) {
        Some(a) => (a.ip().to_string(), u32::from(a.port())),
        None => ("proxy".to_string(), 0),
    };
    let ch =
        tokio::time::timeout(Duration::from_secs(10), entry.handle.channel_open_forwarded_tcpip(req.encode(), 0, orig_addr, orig_port))
            .await
            .map_err(|_| Error::connection_problem(format!("{} did not answer in time", describe(key))))?
            .map_err(|e| Error::connection_problem(format!("{} refused the connection: {e}", describe(key))))?;
    let mut stream = ch.into_stream();
    let answer = read_answer(&mut stream).await.map_err(|e| e.context(describe(key)))?;
    Ok(answer.map(|()| Box::new(stream) as BoxStream).map_err(|e| e.context(describe(key))))
}

/// What [`splice`] moves at once, each way: one SSH packet of [`shared::tuning::MAX_PACKET`]
/// (64 KiB bought nothing more, and 200 sessions' buffers then raised the proxy's memory
/// high-water mark at every storm of the load test).
const SPLICE_BUFFER: usize = shared::tuning::MAX_PACKET as usize;

/// Joins a client's stream to a target's when they carry one connection (an SSH session end to
/// end), until the connection is over. When the target side ends or dies (a node exits, a tunnel
/// is dropped) the client is told at once. When the client half-closes, the target gets EOF and
/// its remaining output still reaches the client. `copy_bidirectional` would instead wait for
/// both directions, so a dead tunnel left the user's session hanging until they hung up.
pub async fn splice<C, T>(client: C, target: T)
where
    C: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let (client_rd, mut client_wr) = tokio::io::split(client);
    let (target_rd, mut target_wr) = tokio::io::split(target);
    // Whole SSH packets in, whole packets out: `tokio::io::copy`'s 8 KiB buffer cut every
    // 32 KiB packet into four reads and four writes, each a channel message of its own.
    let mut client_rd = tokio::io::BufReader::with_capacity(SPLICE_BUFFER, client_rd);
    let mut target_rd = tokio::io::BufReader::with_capacity(SPLICE_BUFFER, target_rd);
    let upstream = async {
        if tokio::io::copy_buf(&mut client_rd, &mut target_wr).await.is_ok() {
            let _ = target_wr.shutdown().await;
            // The target's answer decides when the connection is over.
            std::future::pending::<()>().await;
        }
    };
    let downstream = async {
        let _ = tokio::io::copy_buf(&mut target_rd, &mut client_wr).await;
        let _ = client_wr.shutdown().await;
    };
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}

fn describe(key: &TunnelKey) -> String {
    match key {
        TunnelKey::Node(n) => format!("node {n}"),
        TunnelKey::Cluster(c) => format!("cluster {c}"),
    }
}

/// The error for a missing tunnel.
pub fn offline(key: &TunnelKey) -> Error {
    match key {
        TunnelKey::Cluster(c) => Error::connection_problem(format!("cluster {c} is offline")),
        TunnelKey::Node(n) => Error::connection_problem(format!("node {n} is offline")),
    }
}

/// Writes the success status line.
pub async fn write_ok<S: AsyncWrite + Unpin>(s: &mut S) -> std::io::Result<()> {
    s.write_all(b"OK\n").await?;
    s.flush().await
}

/// Writes a failure status line (newlines removed, bounded).
pub async fn write_err<S: AsyncWrite + Unpin>(s: &mut S, msg: &str) -> std::io::Result<()> {
    let clean: String = msg.chars().filter(|c| *c != '\n' && *c != '\r').take(900).collect();
    s.write_all(format!("ERR {clean}\n").as_bytes()).await?;
    s.flush().await
}

/// Reads a status line: `Ok` for `OK`, the reason for `ERR <reason>`.
pub async fn read_status<S: AsyncRead + Unpin>(s: &mut S) -> Result<()> {
    read_answer(s).await?
}

/// Reads a status line: `Err` if none came (the stream broke, timed out or is not speaking our
/// protocol), `Ok(answer)` with what the far end said.
pub async fn read_answer<S: AsyncRead + Unpin>(s: &mut S) -> Result<Result<()>> {
    let mut line = Vec::with_capacity(64);
    let read = async {
        loop {
            let mut b = [0u8; 1];
            let n = s.read(&mut b).await.map_err(|e| Error::connection_problem(format!("tunnel read: {e}")))?;
            if n == 0 {
                return Err(Error::connection_problem("the tunnel closed the connection"));
            }
            if b[0] == b'\n' {
                return Ok(());
            }
            line.push(b[0]);
            if line.len() > 1024 {
                return Err(Error::connection_problem("malformed tunnel answer"));
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .map_err(|_| Error::connection_problem("the tunnel did not answer in time"))??;
    let text = String::from_utf8_lossy(&line);
    if text == "OK" {
        return Ok(Ok(()));
    }
    match text.strip_prefix("ERR ") {
        Some(reason) => {
            let kind = if reason.contains("not found") || reason.contains("not registered") {
                shared::Kind::NotFound
            } else {
                shared::Kind::ConnectionProblem
            };
            Ok(Err(Error::new(kind, reason.to_string())))
        }
        None => Err(Error::connection_problem("malformed tunnel answer")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn status_lines_round_trip() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        write_ok(&mut a).await.unwrap();
        write_err(&mut a, "node \"x\" is not registered\nin cluster").await.unwrap();
        a.write_all(b"payload").await.unwrap();
        assert!(read_status(&mut b).await.is_ok());
        let e = read_status(&mut b).await.unwrap_err();
        assert_eq!(e.kind, shared::Kind::NotFound);
        assert_eq!(e.message, "node \"x\" is not registeredin cluster");
        let mut rest = [0u8; 7];
        b.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"payload");
    }

    #[test]
    fn requests_round_trip_and_old_targets_still_parse() {
        let plain = TunnelRequest::plain("api");
        assert_eq!(plain.encode(), "api");
        assert_eq!(TunnelRequest::parse("node:db1:0").ok().map(|r| r.target), Some("node:db1:0".to_string()));
        let with = TunnelRequest {
            target: "node:db1:0".into(),
            origin: Some(Origin {
                user: "alice".into(),
                cluster: "root".into(),
                roles: vec!["access".into()],
                addr: "10.0.0.1:5".into(),
                issued_at: Some(1_700_000_000),
            }),
        };
        assert_eq!(TunnelRequest::parse(&with.encode()).ok(), Some(with));
        assert!(TunnelRequest::parse("{not json").is_err());
        assert!(TunnelRequest::parse(&"x".repeat(MAX_REQUEST_LEN + 1)).is_err());
    }

    #[tokio::test]
    async fn a_line_is_bounded_while_it_is_read() {
        let (mut a, b) = tokio::io::duplex(1 << 20);
        let mut r = tokio::io::BufReader::new(b);
        a.write_all(b"ping 1\n").await.unwrap();
        assert_eq!(read_line_bounded(&mut r, 16).await.unwrap().as_deref(), Some("ping 1"));
        // A line that never ends is cut at the limit, not read to its end.
        a.write_all(&[b'x'; 100_000]).await.unwrap();
        assert!(read_line_bounded(&mut r, 256).await.is_err());
        drop(a);
    }

    #[tokio::test]
    async fn garbage_status_is_refused() {
        let (mut a, mut b) = tokio::io::duplex(4096);
        a.write_all(&[b'x'; 2000]).await.unwrap();
        assert!(read_status(&mut b).await.is_err());
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(b"HELLO\n").await.unwrap();
        assert!(read_status(&mut b).await.is_err());
        drop(a);
    }
}
