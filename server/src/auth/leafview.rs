//! The root's copy in memory of what `tsh clusters`, `tctl get rc` and `tctl status` list:
//! every leaf's `remote_cluster`, its stored status and the proxies' presence records.
//!
//! Reading those three prefixes from storage for each request was most of a 10,000-leaf
//! listing (three scans of 10,000 JSON rows). The copy is kept from the change feed, and only
//! when a reader asks: it drains what the feed queued since the last read, re-reads those keys
//! (each at most once), and reloads everything on `Init`, `Resync`, or when so much changed that
//! one scan is cheaper than the keys one by one. Nothing runs between reads, so an idle root pays
//! nothing for it.
//!
//! It stands in for storage only where the feed is synchronous ([`Backend::feed_is_synchronous`]):
//! there every write of this process is on the feed before it returns, so a reader sees every
//! write that finished before it started, as a read of the table would. On PostgreSQL the
//! feed trails the commit, and readers keep reading the tables.

use std::collections::{BTreeMap, HashMap, HashSet};

use shared::error::Result;
use shared::resource::cluster::RemoteClusterStatus;
use shared::resource::{RemoteCluster, TunnelConnection};
use time::OffsetDateTime;
use tokio::sync::{Mutex, MutexGuard};

use crate::services::{Services, keys};
use crate::storage::{Watched, Watcher};

/// More changed keys than this since the last read, and the copy is reloaded in one scan per
/// prefix instead.
const REREAD_AT_MOST: usize = 1024;

/// The copy, behind one lock (readers take turns catching it up).
pub struct LeafView {
    state: Mutex<LeafCopy>,
}

/// What the copy holds.
#[derive(Default)]
pub struct LeafCopy {
    watcher: Option<Watcher>,
    /// The copy matches storage as of the last catch-up that succeeded.
    loaded: bool,
    /// `remote_cluster` resources by name, with `metadata.id` set.
    pub leaves: BTreeMap<String, RemoteCluster>,
    /// Stored statuses by leaf name (`rcstatus/<leaf>`).
    pub stored: HashMap<String, RemoteClusterStatus>,
    /// Presence records by key (`tunnelconns/<leaf>/<proxy>`), live or recently dead.
    pub conns: BTreeMap<String, TunnelConnection>,
}

impl LeafCopy {
    /// The presence records that have not expired at `now`, as a listing of storage returns them.
    pub fn live_conns(&self, now: OffsetDateTime) -> impl Iterator<Item = &TunnelConnection> {
        self.conns.values().filter(move |c| c.metadata.expires.is_none_or(|e| e > now))
    }

    /// Drains the feed into the copy; false when the feed is down (nothing to trust).
    async fn catch_up(&mut self, services: &Services) -> Result<bool> {
        // Subscribed at the first read, whose `Init` loads the copy.
        let watcher = self.watcher.get_or_insert_with(|| services.backend.watch());
        let mut changed: HashSet<String> = HashSet::new();
        let mut reload = !self.loaded;
        while let Some(w) = watcher.try_next() {
            match w {
                Watched::Init | Watched::Resync => {
                    reload = true;
                    changed.clear();
                }
                Watched::Event(e) if !reload && watched(&e.key) => {
                    changed.insert(e.key);
                    if changed.len() > REREAD_AT_MOST {
                        reload = true;
                        changed.clear();
                    }
                }
                Watched::Event(_) => {}
            }
        }
        // Whatever was drained is applied below; until then (or if that fails) the copy is stale.
        self.loaded = false;
        if !services.backend.feed_live() {
            return Ok(false);
        }
        if reload {
            self.reload(services).await?;
        } else {
            for key in changed {
                self.reread(services, &key).await?;
            }
        }
        self.loaded = true;
        Ok(true)
    }

    async fn reload(&mut self, services: &Services) -> Result<()> {
        let leaves: Vec<RemoteCluster> = services.list(keys::REMOTE_CLUSTERS).await?;
        self.leaves = leaves.into_iter().map(|rc| (rc.metadata.name.clone(), rc)).collect();
        self.stored = services.remote_cluster_statuses().await?;
        let conns: Vec<TunnelConnection> = services.list(keys::TUNNEL_CONNS).await?;
        self.conns = conns.into_iter().map(|c| (keys::tunnel_conn(&c.spec.cluster_name, &c.spec.proxy_name), c)).collect();
        Ok(())
    }

    async fn reread(&mut self, services: &Services, key: &str) -> Result<()> {
        if let Some(name) = key.strip_prefix(keys::REMOTE_CLUSTER_STATUS) {
            match services.remote_cluster_status(name).await? {
                Some(s) => self.stored.insert(name.to_string(), s),
                None => self.stored.remove(name),
            };
        } else if let Some(name) = key.strip_prefix(keys::REMOTE_CLUSTERS) {
            match services.get::<RemoteCluster>(key).await? {
                Some(v) => self.leaves.insert(name.to_string(), v.value),
                None => self.leaves.remove(name),
            };
        } else if key.starts_with(keys::TUNNEL_CONNS) {
            match services.get::<TunnelConnection>(key).await? {
                Some(v) => self.conns.insert(key.to_string(), v.value),
                None => self.conns.remove(key),
            };
        }
        Ok(())
    }
}

fn watched(key: &str) -> bool {
    key.starts_with(keys::REMOTE_CLUSTER_STATUS) || key.starts_with(keys::REMOTE_CLUSTERS) || key.starts_with(keys::TUNNEL_CONNS)
}

impl Default for LeafView {
    fn default() -> LeafView {
        LeafView { state: Mutex::new(LeafCopy::default()) }
    }
}

impl LeafView {
    /// The copy, caught up with storage; `None` where the copy cannot stand in for storage (a
    /// feed that trails the commit, or one that is down): the caller reads storage instead.
    pub async fn current<'a>(&'a self, services: &Services) -> Result<Option<MutexGuard<'a, LeafCopy>>> {
        if !services.backend.feed_is_synchronous() {
            return Ok(None);
        }
        let mut copy = self.state.lock().await;
        Ok(copy.catch_up(services).await?.then_some(copy))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::storage::memory::MemoryBackend;
    use crate::storage::{BackendExt, Op};

    fn rc(name: &str) -> RemoteCluster {
        RemoteCluster::new(name, Default::default())
    }

    async fn names(view: &LeafView, s: &Services) -> Vec<String> {
        let g = view.current(s).await.unwrap().unwrap();
        g.leaves.keys().cloned().collect()
    }

    #[tokio::test]
    async fn the_copy_sees_every_write_that_returned_before_the_read() {
        let backend = Arc::new(MemoryBackend::new(shared::timefmt::system_clock()));
        let s = Services::new(backend.clone());
        let view = LeafView::default();
        s.apply(vec![s.create_op(&format!("{}a", keys::REMOTE_CLUSTERS), &rc("a")).unwrap()]).await.unwrap();
        assert_eq!(names(&view, &s).await, ["a"], "the first read loads");
        s.apply(vec![s.create_op(&format!("{}b", keys::REMOTE_CLUSTERS), &rc("b")).unwrap()]).await.unwrap();
        backend.put("users/x", b"{}".to_vec(), None).await.unwrap();
        assert_eq!(names(&view, &s).await, ["a", "b"], "a write is seen by the next read");
        s.apply(vec![Op::Delete { key: format!("{}a", keys::REMOTE_CLUSTERS) }]).await.unwrap();
        assert_eq!(names(&view, &s).await, ["b"], "so is a delete");
        let g = view.current(&s).await.unwrap().unwrap();
        let id = g.leaves["b"].metadata.id;
        assert!(id.is_some(), "metadata.id is the revision, as a listing gives it");
    }

    #[tokio::test]
    async fn many_changes_reload_and_match_storage() {
        let backend = Arc::new(MemoryBackend::new(shared::timefmt::system_clock()));
        let s = Services::new(backend.clone());
        let view = LeafView::default();
        assert!(names(&view, &s).await.is_empty());
        let ops =
            (0..REREAD_AT_MOST + 5).map(|i| s.create_op(&format!("{}l{i:05}", keys::REMOTE_CLUSTERS), &rc(&format!("l{i:05}"))).unwrap());
        s.apply(ops.collect()).await.unwrap();
        assert_eq!(names(&view, &s).await.len(), REREAD_AT_MOST + 5);
    }
}
