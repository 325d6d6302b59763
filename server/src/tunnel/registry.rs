//! The proxy's connected tunnels: per leaf (or tunnel node), one per agent process, newest
//! first; and opening a channel through one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use shared::client::BoxStream;
use shared::error::{Error, Result};

use super::killable;
use super::read_answer;
use super::wire::{TunnelKey, TunnelRequest};

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

    /// How many tunnels are registered (leaves and nodes), without walking them.
    pub fn total(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or_default()
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
        let mut last = key.offline();
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
            .map_err(|_| Error::connection_problem(format!("{} did not answer in time", key.describe())))?
            .map_err(|e| Error::connection_problem(format!("{} refused the connection: {e}", key.describe())))?;
    let mut stream = ch.into_stream();
    let answer = read_answer(&mut stream).await.map_err(|e| e.context(key.describe()))?;
    Ok(answer.map(|()| Box::new(stream) as BoxStream).map_err(|e| e.context(key.describe())))
}
