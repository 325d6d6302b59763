//! Sessions others can watch or join (`tsh join`, the web's Active Sessions).
//!
//! Every session with a PTY on this node is a [`Shared`] in the node's [`Hub`] while it runs.
//! The owner's output pump hands each read to [`Shared::output`], which keeps the last
//! [`REPLAY`] bytes for newcomers and puts a copy on each party's own bounded queue: a party
//! that cannot keep up is dropped (and told so), never allowed to slow the owner or the others.
//!
//! A party connects as [`JOIN_LOGIN`] (no Unix login is needed to watch), names the session
//! and its mode in `TELEPORT_SESSION` / `TELEPORT_SSH_JOIN_MODE`, and asks for a shell. The
//! owner may join their own session in any mode; anyone else needs a `join_sessions` entry of
//! their roles here (mapped ones for a root's user) naming one of the owner's roles here, the
//! kind `ssh` and the mode. A peer's keystrokes reach the PTY; an observer's never do (Ctrl-C
//! leaves). Joins and leaves are told to every party as `Teleport > ...` lines, which the
//! recording keeps, audited (`session.join`, `session.leave`) and kept in the session's
//! tracker (see [`crate::auth::sessions`]), which the node refreshes while the session runs.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use shared::api::{Participant, SessionTracker, SessionTrackerSpec, TrackerRole};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::NodeAccessPoint;
use super::recorder::Tap;
use super::session::PtyIo;

pub use shared::party::{ENV_MODE, ENV_SESSION, JOIN_LOGIN, Mode};

/// The most parties one session takes besides its owner.
pub const MAX_PARTIES: usize = 16;
/// What a newcomer sees of what came before.
pub const REPLAY: usize = 1000;
/// Reads of output a party may be behind before it is dropped (a read is at most 32 KiB, so a
/// party holds at most 4 MiB, a session with [`MAX_PARTIES`] at most 64 MiB).
const QUEUE: usize = 128;

/// Who started a session.
#[derive(Debug, Clone)]
pub struct Owner {
    /// Teleport user.
    pub user: String,
    /// The cluster that issued their certificate.
    pub cluster: String,
    /// Their roles on this node (mapped, for a root's user).
    pub roles: Vec<String>,
    /// The Unix login.
    pub login: String,
}

/// The node's joinable sessions.
#[derive(Default)]
pub struct Hub {
    sessions: Mutex<HashMap<String, Arc<Shared>>>,
}

impl Hub {
    /// The running session `sid`.
    pub fn get(&self, sid: &str) -> Option<Arc<Shared>> {
        self.sessions.lock().ok().and_then(|m| m.get(sid).cloned())
    }

    fn add(&self, s: Arc<Shared>) {
        if let Ok(mut m) = self.sessions.lock() {
            m.insert(s.sid.clone(), s);
        }
    }

    fn remove(&self, sid: &str) {
        if let Ok(mut m) = self.sessions.lock() {
            m.remove(sid);
        }
    }
}

/// Where a session runs.
pub struct Place {
    /// The node's UUID.
    pub host_id: String,
    /// The node's name.
    pub hostname: String,
}

/// One joinable session.
pub struct Shared {
    /// Its ID.
    pub sid: String,
    /// Who started it.
    pub owner: Owner,
    created: OffsetDateTime,
    command: Option<String>,
    place: Place,
    pty: PtyIo,
    tap: Tap,
    /// The owner's channel, for the `Teleport >` lines.
    owner_channel: (russh::server::Handle, russh::ChannelId),
    access: Arc<dyn NodeAccessPoint>,
    inner: Mutex<Inner>,
    exit: OnceLock<i32>,
}

struct Inner {
    recent: VecDeque<u8>,
    parties: Vec<Party>,
    next: u64,
    size: (u16, u16),
}

struct Party {
    id: u64,
    user: String,
    cluster: String,
    mode: Mode,
    joined: OffsetDateTime,
    tx: mpsc::Sender<Arc<[u8]>>,
}

/// A party's place in a session.
pub struct Joined {
    /// Its ID in the session.
    pub id: u64,
    /// The session's output from now on; closed when the session ends or the party is dropped.
    pub output: mpsc::Receiver<Arc<[u8]>>,
    /// The last [`REPLAY`] bytes before the join.
    pub replay: Vec<u8>,
}

/// What a new [`Shared`] needs.
pub struct Start {
    /// The session's ID.
    pub sid: String,
    /// Who started it.
    pub owner: Owner,
    /// The command, if it runs one.
    pub command: Option<String>,
    /// Where it runs.
    pub place: Place,
    /// Its PTY (peers write here).
    pub pty: PtyIo,
    /// Its recording.
    pub tap: Tap,
    /// The owner's channel.
    pub owner_channel: (russh::server::Handle, russh::ChannelId),
    /// Its terminal size.
    pub size: (u16, u16),
}

impl Shared {
    /// Registers a session with `hub` and its tracker with the cluster; refreshes the tracker
    /// while the session runs.
    pub fn open(hub: &Hub, access: Arc<dyn NodeAccessPoint>, s: Start) -> Arc<Shared> {
        let shared = Arc::new(Shared {
            sid: s.sid,
            owner: s.owner,
            created: OffsetDateTime::now_utc(),
            command: s.command,
            place: s.place,
            pty: s.pty,
            tap: s.tap,
            owner_channel: s.owner_channel,
            access,
            inner: Mutex::new(Inner { recent: VecDeque::with_capacity(REPLAY), parties: Vec::new(), next: 1, size: s.size }),
            exit: OnceLock::new(),
        });
        hub.add(shared.clone());
        shared.publish();
        tokio::spawn(refresh(Arc::downgrade(&shared)));
        shared
    }

    /// The owner's PTY printed `data`.
    pub fn output(&self, data: &[u8]) {
        let Ok(mut inner) = self.inner.lock() else { return };
        let keep = data.len().min(REPLAY);
        let over = (inner.recent.len() + keep).saturating_sub(REPLAY);
        inner.recent.drain(..over);
        inner.recent.extend(&data[data.len() - keep..]);
        if inner.parties.is_empty() {
            return;
        }
        let chunk: Arc<[u8]> = Arc::from(data);
        // A full queue drops its party (its receiver sees the end and says why).
        inner.parties.retain(|p| p.tx.try_send(chunk.clone()).is_ok());
    }

    /// The owner's terminal changed size.
    pub fn resized(&self, cols: u16, rows: u16) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.size = (cols, rows);
        }
    }

    /// Tells everyone (and the recording) something, as `Teleport > text`.
    fn announce(&self, text: &str) {
        let line = format!("\r\nTeleport > {text}\r\n");
        if let Ok(inner) = self.inner.lock() {
            let chunk: Arc<[u8]> = Arc::from(line.as_bytes());
            for p in &inner.parties {
                let _ = p.tx.try_send(chunk.clone());
            }
        }
        let (handle, id) = self.owner_channel.clone();
        let tap = self.tap.clone();
        tokio::spawn(async move {
            tap.output(line.as_bytes()).await;
            let _ = handle.data(id, bytes::Bytes::from(line.into_bytes())).await;
        });
    }

    /// Adds a party; `Err` says why not.
    pub fn join(&self, user: &str, cluster: &str, mode: Mode) -> Result<Joined, String> {
        let joined = {
            let mut inner = self.inner.lock().map_err(|_| "the session is broken".to_string())?;
            if self.exit.get().is_some() {
                return Err(format!("session {} has ended", self.sid));
            }
            if inner.parties.len() >= MAX_PARTIES {
                return Err(format!("session {} already has {MAX_PARTIES} parties; try again later", self.sid));
            }
            let (tx, output) = mpsc::channel(QUEUE);
            let id = inner.next;
            inner.next += 1;
            inner.parties.push(Party { id, user: user.into(), cluster: cluster.into(), mode, joined: OffsetDateTime::now_utc(), tx });
            Joined { id, output, replay: inner.recent.iter().copied().collect() }
        };
        self.announce(&format!("User {user} joined the session as {}.", mode.as_str()));
        self.publish();
        Ok(joined)
    }

    /// A party left (or was dropped).
    pub fn leave(&self, id: u64, user: &str) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.parties.retain(|p| p.id != id);
        }
        if self.exit.get().is_none() {
            self.announce(&format!("User {user} left the session."));
            self.publish();
        }
    }

    /// A peer typed `data`.
    pub async fn input(&self, data: &[u8]) -> std::io::Result<()> {
        self.pty.write_all(data).await
    }

    /// The session's exit status, once it ended.
    pub fn exit_code(&self) -> Option<i32> {
        self.exit.get().copied()
    }

    /// The session ended with `code`: every party's output ends, the tracker goes.
    pub fn end(&self, hub: &Hub, code: i32) {
        let _ = self.exit.set(code);
        if let Ok(mut inner) = self.inner.lock() {
            inner.parties.clear();
        }
        hub.remove(&self.sid);
        let (access, sid) = (self.access.clone(), self.sid.clone());
        tokio::spawn(async move {
            if let Err(e) = access.untrack(sid.clone()).await {
                tracing::debug!(sid, error = %e, "cannot remove the session's tracker; it expires by itself");
            }
        });
    }

    /// The session as `tsh sessions ls` shows it.
    pub fn tracker(&self) -> SessionTracker {
        let (parties, size) = match self.inner.lock() {
            Ok(inner) => (
                inner
                    .parties
                    .iter()
                    .map(|p| Participant {
                        id: p.id.to_string(),
                        user: p.user.clone(),
                        cluster: p.cluster.clone(),
                        mode: p.mode.as_str().into(),
                        last_active: p.joined,
                    })
                    .collect::<Vec<_>>(),
                inner.size,
            ),
            Err(_) => (Vec::new(), (0, 0)),
        };
        let owner = Participant {
            id: "0".into(),
            user: self.owner.user.clone(),
            cluster: self.owner.cluster.clone(),
            mode: "peer".into(),
            last_active: self.created,
        };
        SessionTracker {
            kind: "session_tracker".into(),
            version: "v1".into(),
            metadata: shared::resource::Metadata { name: self.sid.clone(), ..Default::default() },
            spec: SessionTrackerSpec {
                session_id: self.sid.clone(),
                kind: "ssh".into(),
                state: 1,
                created: self.created,
                target_hostname: self.place.hostname.clone(),
                target_address: self.place.host_id.clone(),
                cluster_name: String::new(),
                login: self.owner.login.clone(),
                command: self.command.clone(),
                participants: std::iter::once(owner).chain(parties).collect(),
                host_user: self.owner.user.clone(),
                host_user_cluster: self.owner.cluster.clone(),
                host_roles: self.owner.roles.iter().map(|r| TrackerRole { name: r.clone() }).collect(),
                host_id: self.place.host_id.clone(),
                terminal: format!("{}x{}", size.0, size.1),
            },
        }
    }

    /// Sends the tracker to the cluster (in the background).
    fn publish(&self) {
        let (access, t) = (self.access.clone(), self.tracker());
        tokio::spawn(async move {
            if let Err(e) = access.track(t).await {
                tracing::debug!(error = %e, "cannot update a session's tracker");
            }
        });
    }
}

/// Refreshes a session's tracker until the session ends.
async fn refresh(shared: Weak<Shared>) {
    loop {
        tokio::time::sleep(crate::auth::sessions::REFRESH).await;
        match shared.upgrade() {
            Some(s) if s.exit.get().is_none() => s.publish(),
            _ => return,
        }
    }
}
