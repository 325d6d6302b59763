//! The node's SSH handler: certificate authentication through [`super::authz`], then sessions
//! (exec and shell, with or without a PTY) as the requested Unix login, with audit events.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use russh::keys::ssh_key::Certificate;
use russh::server::{Auth, ChannelOpenHandle, Msg, Session};
use russh::{Channel, ChannelId, Pty};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::NodeService;
use super::agent;
use super::authz::{Allowed, authorize, authorize_join, check_locks};
use super::copy;
use super::forward;
use super::party::{self, Mode};
use super::recorder::{self, Tap};
use super::session::{PtySpec, SpawnSpec, accept_env, resize, spawn};
use crate::audit::codes;
use crate::limits::AuthMark;
use crate::live::LiveEntry;
use crate::shutdown::InFlight;
use crate::tunnel::Origin;

/// Per-channel state before and during a session.
#[derive(Default)]
struct ChannelState {
    channel: Option<Channel<Msg>>,
    pty: Option<PtySpec>,
    env: Vec<(String, String)>,
    master: Option<Arc<OwnedFd>>,
    tap: Option<Tap>,
    /// Ends the running session (the client closed the channel or went away).
    stop: Option<Arc<Stop>>,
    /// The running session, when others may join it.
    shared: Option<Arc<party::Shared>>,
}

/// One SSH connection to the node.
pub struct NodeConn {
    node: Arc<NodeService>,
    peer: Option<SocketAddr>,
    /// For a connection through the node's tunnel: who it is for, as its proxy said.
    origin: Option<Origin>,
    login: String,
    allowed: Option<Allowed>,
    /// A lock stops this user here: every session gets this message instead.
    refused: Option<String>,
    channels: HashMap<ChannelId, ChannelState>,
    /// Sessions running on this connection (`max_sessions`).
    sessions: Arc<AtomicUsize>,
    /// Tells the connection limiter when authentication succeeded.
    mark: Option<AuthMark>,
    /// Remote-forward (`-R`) listeners.
    listeners: forward::Listeners,
    /// Places for forwarded connections (both directions).
    forwarded: Arc<tokio::sync::Semaphore>,
    /// The user's forwarded agent (`ssh -A`), for this connection's sessions.
    agent: Option<agent::Forwarded>,
    /// Connected as [`party::JOIN_LOGIN`]: may only join sessions.
    join_only: bool,
}

/// What a joining connection is told when it asks for anything else.
const JOIN_ONLY: &str =
    "this connection only joins sessions (login -teleport-internal-join): it cannot run commands, copy files or forward";

/// Ends a session from outside (a lock, the idle timeout), saying why.
#[derive(Default)]
struct Stop {
    notify: tokio::sync::Notify,
    why: std::sync::Mutex<Option<String>>,
}

impl Stop {
    fn stop(&self, why: String) {
        if let Ok(mut w) = self.why.lock() {
            w.get_or_insert(why);
        }
        self.notify.notify_one();
    }

    async fn stopped(&self) -> String {
        self.notify.notified().await;
        self.why.lock().ok().and_then(|w| w.clone()).unwrap_or_default()
    }
}

impl NodeConn {
    /// A new connection.
    pub fn new(node: Arc<NodeService>, peer: Option<SocketAddr>, origin: Option<Origin>, mark: Option<AuthMark>) -> NodeConn {
        NodeConn {
            node,
            peer,
            origin,
            login: String::new(),
            allowed: None,
            refused: None,
            channels: HashMap::new(),
            sessions: Arc::new(AtomicUsize::new(0)),
            mark,
            listeners: forward::Listeners::default(),
            forwarded: Arc::new(tokio::sync::Semaphore::new(forward::MAX_FORWARDED)),
            agent: None,
            join_only: false,
        }
    }

    fn event(&self, code: (&str, &str), extra: Value) -> shared::api::AuditEvent {
        let mut m = serde_json::Map::new();
        m.insert("event".into(), json!(code.0));
        m.insert("code".into(), json!(code.1));
        m.insert("server_id".into(), json!(self.node.cfg.host_id));
        m.insert("server_hostname".into(), json!(self.node.cfg.nodename));
        m.insert("login".into(), json!(self.login));
        match &self.origin {
            Some(o) => m.insert("addr.remote".into(), json!(o.addr)),
            None => m.insert("addr.remote".into(), json!(self.peer.map(|p| p.to_string()))),
        };
        if let Some(a) = &self.allowed {
            m.insert("user".into(), json!(a.username));
            m.insert("origin_cluster".into(), json!(a.origin_cluster));
            m.insert("remote_roles".into(), json!(a.cert_roles));
            m.insert("roles".into(), json!(a.roles));
            if !a.requests.is_empty() {
                m.insert("access_requests".into(), json!(a.requests));
            }
        }
        if let Value::Object(e) = extra {
            m.extend(e);
        }
        m
    }

    fn emit(&self, event: shared::api::AuditEvent) {
        let access = self.node.access.clone();
        tokio::spawn(async move {
            if let Err(e) = access.emit(event).await {
                tracing::warn!(error = %e, "cannot record audit event");
            }
        });
    }

    /// Whether a session (a shell, a command, SFTP) may start on channel `id`: the user's
    /// decision, or None after telling the client why not (a lock, `max_sessions`).
    fn admit(&self, id: ChannelId, session: &mut Session) -> anyhow::Result<Option<Allowed>> {
        if let Some(why) = &self.refused {
            refuse(session, id, why)?;
            return Ok(None);
        }
        let Some(allowed) = self.allowed.clone() else {
            session.channel_failure(id)?;
            return Ok(None);
        };
        if let Some(max) = allowed.max_sessions
            && self.sessions.load(Ordering::SeqCst) as u64 >= max
        {
            refuse(session, id, &format!("too many sessions on this connection (max_sessions {max}); open another connection"))?;
            return Ok(None);
        }
        Ok(Some(allowed))
    }

    /// Registers a running session with the node's live set, so locks can end it through `stop`.
    fn register_live(&self, allowed: &Allowed, stop: &Arc<Stop>) -> crate::live::LiveGuard {
        let mut roles = allowed.cert_roles.clone();
        roles.extend(allowed.roles.iter().cloned());
        let stop = stop.clone();
        self.node.live.register(LiveEntry {
            user: allowed.username.clone(),
            origin: allowed.origin_cluster.clone(),
            roles,
            login: Some(self.login.clone()),
            issued_at: Some(allowed.issued_at),
            requests: allowed.requests.clone(),
            end: Box::new(move |why| stop.stop(why)),
        })
    }

    fn start(&mut self, id: ChannelId, command: Option<String>, session: &mut Session) -> anyhow::Result<()> {
        if self.join_only {
            return match command {
                None => self.start_join(id, session),
                Some(_) => refuse(session, id, JOIN_ONLY),
            };
        }
        let Some(channel) = self.channels.get_mut(&id).and_then(|st| st.channel.take()) else {
            session.channel_failure(id)?;
            return Ok(());
        };
        let Some(allowed) = self.admit(id, session)? else { return Ok(()) };
        let mut session_env =
            vec![("TELEPORT_USER".to_string(), allowed.username.clone()), ("TELEPORT_CLUSTER".to_string(), allowed.origin_cluster.clone())];
        // The user's own address when a tunnel or a proxy's vouch names it, else the peer's.
        let client = self.origin.as_ref().and_then(|o| o.addr.parse::<SocketAddr>().ok()).or(self.peer);
        if let Some(p) = client {
            session_env.push(("SSH_CLIENT".into(), format!("{} {} 0", p.ip(), p.port())));
        }
        if let Some(a) = &self.agent {
            session_env.push(("SSH_AUTH_SOCK".into(), a.socket.display().to_string()));
        }
        let (env, pty) = match self.channels.get_mut(&id) {
            Some(st) => (std::mem::take(&mut st.env), st.pty.clone()),
            None => (Vec::new(), None),
        };
        let spec = SpawnSpec { login: self.login.clone(), command: command.clone(), env, pty, session_env };
        // Legacy `scp -O` is file copying too: the same switch and roles decide.
        if let Some((upload, path)) = command.as_deref().and_then(copy::legacy_scp) {
            let action = if upload { "upload" } else { "download" };
            if let Some(why) = copy::refusal(self.node.cfg.file_copy, &allowed) {
                self.emit(self.event(
                    codes::SCP_DISALLOWED,
                    json!({"path": path, "action": action, "command": command, "success": false, "error": why}),
                ));
                return refuse(session, id, &why);
            }
            let code = if upload { codes::SCP_UPLOAD } else { codes::SCP_DOWNLOAD };
            self.emit(self.event(code, json!({"path": path, "action": action, "command": command, "success": true})));
        }
        let spawned = match spawn(&spec) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(login = %self.login, error = %e, "cannot start session");
                session.extended_data(id, 1, format!("{}\n", e.message).into_bytes())?;
                session.exit_status_request(id, 255)?;
                session.eof(id)?;
                session.close(id)?;
                return Ok(());
            }
        };
        session.channel_success(id)?;
        let session_id = uuid::Uuid::new_v4().to_string();
        let interactive = command.is_none();
        self.emit(self.event(
            codes::SESSION_START,
            json!({"sid": session_id, "interactive": interactive, "command": command, "pty": spec.pty.is_some()}),
        ));
        let started = time::OffsetDateTime::now_utc();
        let meta = shared::api::SessionRecording {
            sid: session_id.clone(),
            user: allowed.username.clone(),
            login: self.login.clone(),
            origin_cluster: allowed.origin_cluster.clone(),
            remote_roles: allowed.cert_roles.clone(),
            roles: allowed.roles.clone(),
            server_id: self.node.cfg.host_id.clone(),
            server_hostname: self.node.cfg.nodename.clone(),
            interactive,
            command: command.clone(),
            started,
            ..Default::default()
        };
        let stop = Arc::new(Stop::default());
        let (tap, finish) = recorder::start(self.node.access.clone(), meta, self.node.cfg.recording_max_bytes);
        if let Some(p) = &spec.pty {
            tap.resize(p.cols, p.rows);
        }
        let master = spawned.pty.map(Arc::new);
        // The PTY on the event loop, for the session's pumps and its parties alike.
        let pty_io = master.as_ref().map(|m| super::session::PtyIo::new(m));
        // A session with a terminal can be watched and joined.
        let shared = match (&pty_io, &spec.pty) {
            (Some(Ok(pty)), Some(p)) => Some(party::Shared::open(
                &self.node.parties,
                self.node.access.clone(),
                party::Start {
                    sid: session_id.clone(),
                    owner: party::Owner {
                        user: allowed.username.clone(),
                        cluster: allowed.origin_cluster.clone(),
                        roles: allowed.roles.clone(),
                        login: self.login.clone(),
                    },
                    command: command.clone(),
                    place: party::Place { host_id: self.node.cfg.host_id.clone(), hostname: self.node.cfg.nodename.clone() },
                    pty: pty.clone(),
                    tap: tap.clone(),
                    owner_channel: (session.handle(), id),
                    size: (p.cols, p.rows),
                },
            )),
            _ => None,
        };
        if let Some(st) = self.channels.get_mut(&id) {
            st.master = master.clone();
            st.tap = Some(tap.clone());
            st.stop = Some(stop.clone());
            st.shared = shared.clone();
        }
        let handle = session.handle();
        let end_event = self.event(codes::SESSION_END, json!({"sid": session_id, "command": command}));
        let access = self.node.access.clone();
        let counted = InFlight::new(&self.sessions);
        let live = self.register_live(&allowed, &stop);
        let idle = match (allowed.idle_timeout, self.node.cfg.client_idle_timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let node = self.node.clone();
        tokio::spawn(async move {
            let _counted = counted;
            let _live = live;
            let code = run_session(handle, channel, spawned.child, pty_io, stop, idle, tap, shared.clone()).await;
            if let Some(s) = shared {
                s.end(&node.parties, code);
            }
            finish.finish(code).await;
            let mut end = end_event;
            end.insert("exit_code".into(), json!(code));
            end.insert("session_start".into(), json!(shared::timefmt::rfc3339(started)));
            end.insert("session_stop".into(), json!(shared::timefmt::rfc3339(time::OffsetDateTime::now_utc())));
            end.insert("session_recording".into(), json!("node"));
            if command.is_some() {
                let mut exec = end.clone();
                exec.insert("event".into(), json!(codes::EXEC.0));
                exec.insert("code".into(), json!(codes::EXEC.1));
                let _ = access.emit(exec).await;
            }
            let _ = access.emit(end).await;
        });
        Ok(())
    }
}

/// Accepts the request only to say on the client's stderr why nothing runs, then ends the
/// channel with status 1 (a bare channel failure would tell the user nothing).
fn refuse(session: &mut Session, id: ChannelId, why: &str) -> anyhow::Result<()> {
    session.channel_success(id)?;
    session.extended_data(id, 1, format!("{why}\n").into_bytes())?;
    session.exit_status_request(id, 1)?;
    session.eof(id)?;
    session.close(id)?;
    Ok(())
}

impl NodeConn {
    /// The `sftp` subsystem: decided like any file copy, then served by a child running as
    /// the login (see [`super::sftp`]); no recording (the audit has every operation).
    fn start_sftp(&mut self, id: ChannelId, session: &mut Session) -> anyhow::Result<()> {
        let Some(channel) = self.channels.get_mut(&id).and_then(|st| st.channel.take()) else {
            session.channel_failure(id)?;
            return Ok(());
        };
        if self.join_only {
            return refuse(session, id, JOIN_ONLY);
        }
        let Some(allowed) = self.admit(id, session)? else { return Ok(()) };
        if let Some(why) = copy::refusal(self.node.cfg.file_copy, &allowed) {
            tracing::info!(user = %allowed.username, login = %self.login, reason = %why, "file copy refused");
            self.emit(self.event(codes::SFTP_DISALLOWED, json!({"success": false, "error": why})));
            return refuse(session, id, &why);
        }
        let spec = SpawnSpec {
            login: self.login.clone(),
            command: None,
            env: Vec::new(),
            pty: None,
            session_env: vec![("TELEPORT_USER".to_string(), allowed.username.clone())],
        };
        let child = match copy::start(&spec) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(login = %self.login, error = %e, "cannot start the SFTP server");
                return refuse(session, id, &e.message);
            }
        };
        session.channel_success(id)?;
        let stop = Arc::new(Stop::default());
        if let Some(st) = self.channels.get_mut(&id) {
            st.stop = Some(stop.clone());
        }
        let base = self.event(codes::SFTP_SUMMARY, json!({"sid": uuid::Uuid::new_v4().to_string()}));
        let (handle, access, counted) = (session.handle(), self.node.access.clone(), InFlight::new(&self.sessions));
        let live = self.register_live(&allowed, &stop);
        tokio::spawn(async move {
            let _counted = counted;
            let _live = live;
            copy::run(handle, channel, child, async move { stop.stopped().await }, base, access).await;
        });
        Ok(())
    }
}

impl NodeConn {
    /// A party joins the session named by its `TELEPORT_SESSION` (see [`super::party`]): the
    /// owner in any mode, anyone else as their roles' `join_sessions` allow.
    fn start_join(&mut self, id: ChannelId, session: &mut Session) -> anyhow::Result<()> {
        let Some(channel) = self.channels.get_mut(&id).and_then(|st| st.channel.take()) else {
            session.channel_failure(id)?;
            return Ok(());
        };
        let Some(allowed) = self.admit(id, session)? else { return Ok(()) };
        let env = self.channels.get(&id).map(|st| st.env.clone()).unwrap_or_default();
        let var = |name: &str| env.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let Some(sid) = var(party::ENV_SESSION) else {
            return refuse(session, id, "no session named: set TELEPORT_SESSION (tsh join <session-id> does)");
        };
        let mode = match var(party::ENV_MODE).map_or(Ok(Mode::Observer), |m| Mode::parse(&m)) {
            Ok(m) => m,
            Err(why) => return refuse(session, id, &why),
        };
        let Some(shared) = self.node.parties.get(&sid) else {
            return refuse(session, id, &format!("session {sid} is not running on this node; 'tsh sessions ls' lists the running ones"));
        };
        let own = allowed.username == shared.owner.user && allowed.origin_cluster == shared.owner.cluster;
        if !own {
            let modes = self.join_modes(&allowed, &shared.owner.roles);
            if !modes.iter().any(|m| m == mode.as_str()) {
                let why = format!(
                    "insufficient permissions to join session {sid} as {}: the join_sessions of your roles here ({}) {}",
                    mode.as_str(),
                    allowed.roles.join(", "),
                    if modes.is_empty() {
                        format!("name none of the owner's roles ({}) for ssh sessions", shared.owner.roles.join(", "))
                    } else {
                        format!("allow only {}", modes.join(", "))
                    }
                );
                tracing::info!(user = %allowed.username, sid = %sid, reason = %why, "join refused");
                self.emit(
                    self.event(codes::SESSION_JOIN, json!({"sid": sid, "success": false, "error": why, "login": shared.owner.login})),
                );
                return refuse(session, id, &why);
            }
        }
        let joined = match shared.join(&allowed.username, &allowed.origin_cluster, mode) {
            Ok(j) => j,
            Err(why) => return refuse(session, id, &why),
        };
        session.channel_success(id)?;
        let mut info = json!({"sid": sid, "login": shared.owner.login, "participant_mode": mode.as_str()});
        self.emit(self.event(codes::SESSION_JOIN, info.clone()));
        if let Some(m) = info.as_object_mut() {
            m.remove("participant_mode");
        }
        let left = self.event(codes::SESSION_LEAVE, info);
        let stop = Arc::new(Stop::default());
        if let Some(st) = self.channels.get_mut(&id) {
            st.stop = Some(stop.clone());
        }
        let (handle, access, counted) = (session.handle(), self.node.access.clone(), InFlight::new(&self.sessions));
        let live = self.register_live(&allowed, &stop);
        let user = allowed.username.clone();
        tokio::spawn(async move {
            let _counted = counted;
            let _live = live;
            let pid = run_party(handle, channel, &shared, joined, mode, stop).await;
            shared.leave(pid, &user);
            let _ = access.emit(left).await;
        });
        Ok(())
    }

    /// The modes the user's roles here give them in a session whose owner holds `owner_roles`.
    fn join_modes(&self, allowed: &Allowed, owner_roles: &[String]) -> Vec<String> {
        let Some(bundle) = self.node.bundle.borrow().clone() else { return Vec::new() };
        match super::decide::load(&bundle, &allowed.roles) {
            Ok(roles) => shared::rbac::AccessChecker::new(&roles, &allowed.traits).join_modes(owner_roles, "ssh"),
            Err(_) => Vec::new(),
        }
    }
}

/// Serves one party until it leaves, the session ends, or `stop`; returns its ID in the session.
async fn run_party(
    handle: russh::server::Handle,
    channel: Channel<Msg>,
    shared: &party::Shared,
    joined: party::Joined,
    mode: Mode,
    stop: Arc<Stop>,
) -> u64 {
    let id = channel.id();
    let party::Joined { id: pid, mut output, replay } = joined;
    let (mut rd, mut wr) = tokio::io::split(channel.into_stream());
    let hint = match mode {
        Mode::Observer => "You can watch; your keystrokes are not sent. Ctrl-C leaves.",
        Mode::Peer => "Everything you type goes to the session.",
    };
    let hello = format!("Teleport > Joining session with participant mode: {}. {hint}\r\n", mode.as_str());
    let mut ok = wr.write_all(hello.as_bytes()).await.is_ok() && wr.write_all(&replay).await.is_ok();
    let mut buf = vec![0u8; 8192];
    let mut code = 0u32;
    while ok {
        tokio::select! {
            chunk = output.recv() => match chunk {
                Some(c) => ok = wr.write_all(&c).await.is_ok(),
                None => {
                    match shared.exit_code() {
                        Some(c) => code = u32::try_from(c).unwrap_or(255),
                        None => {
                            let _ = wr.write_all(b"\r\nTeleport > You fell behind the session's output and were dropped; run tsh join again.\r\n").await;
                            code = 1;
                        }
                    }
                    break;
                }
            },
            n = rd.read(&mut buf) => match n {
                Ok(0) | Err(_) => break,
                Ok(n) => match mode {
                    Mode::Peer => ok = shared.input(&buf[..n]).await.is_ok(),
                    // An observer's keys are never written; Ctrl-C leaves.
                    Mode::Observer if buf[..n].contains(&3) => break,
                    Mode::Observer => {}
                },
            },
            why = stop.stopped() => {
                let _ = wr.write_all(format!("\r\n{why}\r\n").as_bytes()).await;
                code = 1;
                break;
            }
        }
    }
    let _ = wr.flush().await;
    let _ = wr.shutdown().await;
    let _ = handle.exit_status_request(id, code).await;
    let _ = handle.close(id).await;
    drop(wr);
    pid
}

impl NodeConn {
    /// Tells the user something on the connection's first session channel, if it has one
    /// (refusals of forwards have no channel of their own to carry text).
    fn notice(&self, session: &mut Session, text: &str) {
        if let Some(id) = self.channels.keys().min() {
            let _ = session.extended_data(*id, 1, format!("{text}\r\n").into_bytes());
        }
    }

    /// The roles' decision for a forward here, or why not (already told and audited).
    fn may_forward(&mut self, session: &mut Session, remote: bool, addr: &str) -> Option<Allowed> {
        if self.join_only {
            self.notice(session, JOIN_ONLY);
            return None;
        }
        if let Some(why) = self.refused.clone() {
            self.notice(session, &why);
            return None;
        }
        let allowed = self.allowed.clone()?;
        let why = forward::refusal(self.node.cfg.port_forwarding, &allowed, remote)
            .or_else(|| super::session::lookup(&self.login).err().map(|e| e.message));
        if let Some(why) = why {
            tracing::info!(user = %allowed.username, login = %self.login, reason = %why, "port forwarding refused");
            self.notice(session, &why);
            self.emit(self.event(codes::PORT_DENIED, json!({"addr": addr, "success": false, "error": why})));
            return None;
        }
        Some(allowed)
    }
}

/// Milliseconds since `start`, for activity stamps.
fn stamp(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Resolves with a message once nothing has moved for `idle` (never without a timeout).
async fn idle_watch(idle: Option<Duration>, start: Instant, last: Arc<AtomicU64>) -> String {
    let Some(idle) = idle else { return std::future::pending().await };
    loop {
        let quiet = Duration::from_millis(stamp(start).saturating_sub(last.load(Ordering::SeqCst)));
        if quiet >= idle {
            return format!("the session was idle for {}; it was closed by client_idle_timeout", shared::timefmt::go_duration(idle));
        }
        tokio::time::sleep((idle - quiet).min(Duration::from_secs(1)).max(Duration::from_millis(50))).await;
    }
}

/// Pumps data between the channel and the process until it exits, or until `stop` or the idle
/// timeout end it (the user is told why on stderr and the process is killed); returns its exit
/// code.
///
/// The output task hands the channel's write half back when it is done: dropping the last half
/// of a russh `ChannelStream` closes the channel, and an exit status sent after that is lost.
#[allow(clippy::too_many_arguments)]
async fn run_session(
    handle: russh::server::Handle,
    channel: Channel<Msg>,
    mut child: tokio::process::Child,
    pty: Option<std::io::Result<super::session::PtyIo>>,
    stop: Arc<Stop>,
    idle: Option<Duration>,
    tap: Tap,
    shared: Option<Arc<party::Shared>>,
) -> i32 {
    type Writer = tokio::io::WriteHalf<russh::ChannelStream<Msg>>;
    let id = channel.id();
    let start = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let (mut rd, mut wr) = tokio::io::split(channel.into_stream());
    let output: tokio::task::JoinHandle<Writer> = match pty {
        Some(pty) => {
            // PTY: one non-blocking fd for both directions, on the event loop.
            let Ok(pty) = pty else {
                let _ = child.kill().await;
                return 255;
            };
            let (pty_in, pty_out) = (pty.clone(), pty);
            let seen = last.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                while let Ok(n) = rd.read(&mut buf).await {
                    seen.store(stamp(start), Ordering::SeqCst);
                    if n == 0 || pty_in.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
            let seen = last.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 32 * 1024];
                // The reader ends once the last slave fd closes.
                while let Ok(n) = pty_out.read(&mut buf).await {
                    seen.store(stamp(start), Ordering::SeqCst);
                    if n == 0 {
                        break;
                    }
                    tap.output(&buf[..n]).await;
                    if let Some(s) = &shared {
                        s.output(&buf[..n]);
                    }
                    if wr.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                drop(tap);
                let _ = wr.flush().await;
                let _ = wr.shutdown().await;
                wr
            })
        }
        None => {
            let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
            else {
                let _ = child.kill().await;
                return 255;
            };
            let seen = last.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 32 * 1024];
                while let Ok(n) = rd.read(&mut buf).await {
                    seen.store(stamp(start), Ordering::SeqCst);
                    if n == 0 || stdin.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = stdin.shutdown().await;
            });
            let err_handle = handle.clone();
            let err_tap = tap.clone();
            let err_task = tokio::spawn(async move {
                let mut buf = vec![0u8; 32 * 1024];
                while let Ok(n) = stderr.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    err_tap.output(&buf[..n]).await;
                    if err_handle.extended_data(id, 1, buf[..n].to_vec()).await.is_err() {
                        break;
                    }
                }
            });
            let seen = last.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 32 * 1024];
                while let Ok(n) = stdout.read(&mut buf).await {
                    seen.store(stamp(start), Ordering::SeqCst);
                    if n == 0 {
                        break;
                    }
                    tap.output(&buf[..n]).await;
                    if wr.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                drop(tap);
                let _ = err_task.await;
                let _ = wr.flush().await;
                let _ = wr.shutdown().await;
                wr
            })
        }
    };
    let status = tokio::select! {
        s = child.wait() => s,
        why = async {
            tokio::select! {
                w = stop.stopped() => w,
                w = idle_watch(idle, start, last.clone()) => w,
            }
        } => {
            tracing::info!(reason = %why, "ending a session");
            let _ = handle.extended_data(id, 1, format!("\r\n{why}\r\n").into_bytes()).await;
            let _ = child.start_kill();
            child.wait().await
        }
    };
    // A PTY's reader ends when the slave closes; pipes end when the process and its children
    // close them. Wait a bounded time so a backgrounded grandchild cannot hold the session open.
    let writer = tokio::time::timeout(std::time::Duration::from_secs(2), output).await.ok().and_then(|r| r.ok());
    let code = match status {
        Ok(s) => s.code().unwrap_or_else(|| {
            use std::os::unix::process::ExitStatusExt;
            128 + s.signal().unwrap_or(0)
        }),
        Err(_) => 255,
    };
    // The output pump already sent EOF (shutting down its half); then the exit status, then close.
    let _ = handle.exit_status_request(id, u32::try_from(code).unwrap_or(255)).await;
    let _ = handle.close(id).await;
    drop(writer);
    code
}

impl Drop for NodeConn {
    /// The connection is gone (the client died, the network dropped): its sessions end, as
    /// OpenSSH's do when it hangs up their PTY, instead of running on with nobody attached.
    fn drop(&mut self) {
        for st in self.channels.values() {
            if let Some(stop) = &st.stop {
                stop.stop("the client disconnected".into());
            }
        }
    }
}

impl russh::server::Handler for NodeConn {
    type Error = anyhow::Error;

    async fn auth_publickey(&mut self, user: &str, _key: russh::server::VerifiedPublicKey<'_>) -> Result<Auth, Self::Error> {
        self.login = user.to_string();
        let ev =
            self.event(codes::AUTH_FAILURE, json!({"success": false, "error": "only certificates are accepted; sign in with tsh login"}));
        self.emit(ev);
        Ok(Auth::reject())
    }

    async fn auth_openssh_certificate(&mut self, user: &str, cert: &Certificate) -> Result<Auth, Self::Error> {
        self.login = user.to_string();
        let Some(bundle) = self.node.current_bundle().await else {
            tracing::warn!("refusing login: roles and certificate authorities not loaded yet");
            return Ok(Auth::reject());
        };
        let now = self.node.clock.now();
        self.join_only = user == party::JOIN_LOGIN;
        let decision =
            if self.join_only { authorize_join(&bundle, cert, now) } else { authorize(&bundle, &self.node.cfg.labels, user, cert, now) };
        match decision {
            Ok(allowed) => {
                if let Some(why) = check_locks(&bundle, &allowed, user, &self.node.cfg.host_id, &self.node.cfg.nodename, now) {
                    // The login itself is let through so the user reads why; every session
                    // on this connection is refused with this message.
                    tracing::warn!(user = %allowed.username, login = user, origin = %allowed.origin_cluster, reason = %why, "login refused by a lock");
                    let ev = self.event(
                        codes::AUTH_FAILURE,
                        json!({"success": false, "user": allowed.username, "origin_cluster": allowed.origin_cluster, "remote_roles": allowed.cert_roles, "error": why}),
                    );
                    self.emit(ev);
                    self.refused = Some(why);
                } else {
                    tracing::info!(user = %allowed.username, login = user, origin = %allowed.origin_cluster, roles = ?allowed.roles, "login allowed");
                    self.allowed = Some(allowed);
                }
                if let Some(m) = &self.mark {
                    m.authenticated();
                }
                Ok(Auth::Accept)
            }
            Err(d) => {
                tracing::warn!(user = %d.username, login = user, origin = %d.origin_cluster, reason = %d.reason, "login denied");
                let ev = self.event(
                    codes::AUTH_FAILURE,
                    json!({"success": false, "user": d.username, "origin_cluster": d.origin_cluster, "remote_roles": d.cert_roles, "error": d.reason}),
                );
                self.emit(ev);
                Ok(Auth::reject())
            }
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if (self.allowed.is_none() && self.refused.is_none()) || self.channels.len() >= 32 {
            reply.reject(russh::ChannelOpenFailure::AdministrativelyProhibited).await;
            return Ok(());
        }
        self.channels.insert(channel.id(), ChannelState { channel: Some(channel), ..Default::default() });
        reply.accept().await;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn pty_request(
        &mut self,
        id: ChannelId,
        term: &str,
        cols: u32,
        rows: u32,
        _pw: u32,
        _ph: u32,
        _modes: &[(Pty, u32)],
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        match self.channels.get_mut(&id) {
            Some(st) if st.channel.is_some() => {
                let term: String = term.chars().filter(|c| c.is_ascii_graphic()).take(64).collect();
                st.pty = Some(PtySpec { term, cols: u16::try_from(cols).unwrap_or(80), rows: u16::try_from(rows).unwrap_or(24) });
                session.channel_success(id)?;
            }
            _ => session.channel_failure(id)?,
        }
        Ok(())
    }

    async fn env_request(&mut self, id: ChannelId, name: &str, value: &str, session: &mut Session) -> Result<(), Self::Error> {
        match self.channels.get_mut(&id) {
            Some(st)
                if (accept_env(name) || self.join_only && (name == party::ENV_SESSION || name == party::ENV_MODE))
                    && value.len() < 4096
                    && st.env.len() < 64 =>
            {
                st.env.push((name.to_string(), value.to_string()));
                session.channel_success(id)?;
            }
            _ => session.channel_failure(id)?,
        }
        Ok(())
    }

    async fn shell_request(&mut self, id: ChannelId, session: &mut Session) -> Result<(), Self::Error> {
        self.start(id, None, session)
    }

    async fn exec_request(&mut self, id: ChannelId, data: &[u8], session: &mut Session) -> Result<(), Self::Error> {
        let command = String::from_utf8_lossy(data).into_owned();
        self.start(id, Some(command), session)
    }

    async fn window_change_request(
        &mut self,
        id: ChannelId,
        cols: u32,
        rows: u32,
        _pw: u32,
        _ph: u32,
        _session: &mut Session,
    ) -> Result<(), Self::Error> {
        if let Some(st) = self.channels.get(&id) {
            let (cols, rows) = (u16::try_from(cols).unwrap_or(80), u16::try_from(rows).unwrap_or(24));
            if let Some(master) = &st.master {
                resize(master, cols, rows);
            }
            if let Some(tap) = &st.tap {
                tap.resize(cols, rows);
            }
            if let Some(shared) = &st.shared {
                shared.resized(cols, rows);
            }
        }
        Ok(())
    }

    async fn subsystem_request(&mut self, id: ChannelId, name: &str, session: &mut Session) -> Result<(), Self::Error> {
        if name == "sftp" {
            return self.start_sftp(id, session);
        }
        session.channel_failure(id)?;
        Ok(())
    }

    async fn agent_request(&mut self, id: ChannelId, session: &mut Session) -> Result<bool, Self::Error> {
        let Some(allowed) = self.allowed.clone().filter(|_| self.refused.is_none() && !self.join_only) else { return Ok(false) };
        if let Some(why) = agent::refusal(allowed.forward_agent, &self.login) {
            tracing::info!(user = %allowed.username, login = %self.login, "agent forwarding refused");
            session.extended_data(id, 1, format!("{why}\r\n").into_bytes())?;
            return Ok(false);
        }
        if self.agent.is_none() {
            match agent::start(&self.login, session.handle()) {
                Ok(a) => self.agent = Some(a),
                Err(e) => {
                    tracing::warn!(login = %self.login, error = %e, "cannot forward the agent");
                    session.extended_data(id, 1, format!("agent forwarding failed on the node: {}\r\n", e.message).into_bytes())?;
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        session: &mut Session,
    ) -> Result<(), Self::Error> {
        let target = format!("{host_to_connect}:{port_to_connect}");
        if self.may_forward(session, false, &target).is_none() {
            reply.reject(russh::ChannelOpenFailure::AdministrativelyProhibited).await;
            return Ok(());
        }
        let Ok(permit) = self.forwarded.clone().try_acquire_owned() else {
            self.notice(session, &format!("too many forwarded connections on this connection (at most {})", forward::MAX_FORWARDED));
            reply.reject(russh::ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        };
        let (start, stop, fail) = (
            self.event(codes::PORT_LOCAL_START, json!({"addr": target, "success": true})),
            self.event(codes::PORT_LOCAL_STOP, json!({"addr": target})),
            self.event(codes::PORT_LOCAL_FAIL, json!({"addr": target, "success": false})),
        );
        let access = self.node.access.clone();
        let host = host_to_connect.to_string();
        tokio::spawn(async move {
            let _permit = permit;
            match forward::dial(&host, port_to_connect).await {
                Ok(tcp) => {
                    reply.accept().await;
                    let _ = access.emit(start).await;
                    forward::pump(channel, tcp).await;
                    let _ = access.emit(stop).await;
                }
                Err(why) => {
                    reply.reject(russh::ChannelOpenFailure::ConnectFailed).await;
                    let mut fail = fail;
                    fail.insert("error".into(), json!(why));
                    let _ = access.emit(fail).await;
                }
            }
        });
        Ok(())
    }

    async fn tcpip_forward(&mut self, address: &str, port: &mut u32, session: &mut Session) -> Result<bool, Self::Error> {
        let asked = format!("{address}:{port}");
        if self.may_forward(session, true, &asked).is_none() {
            return Ok(false);
        }
        let refuse = |this: &Self, session: &mut Session, why: String| {
            this.notice(session, &why);
            this.emit(this.event(codes::PORT_REMOTE_FAIL, json!({"addr": asked, "success": false, "error": why})));
            Ok(false)
        };
        if self.listeners.len() >= forward::MAX_LISTENERS {
            return refuse(self, session, format!("too many remote forwards on this connection (at most {})", forward::MAX_LISTENERS));
        }
        let addr = match forward::listen_addr(address, *port) {
            Ok(a) => a,
            Err(why) => return refuse(self, session, why),
        };
        if addr.port() != 0 && addr.port() < 1024 && self.login != "root" {
            return refuse(
                self,
                session,
                format!("remote forward refused: port {} is below 1024, which only the root login may bind", addr.port()),
            );
        }
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => return refuse(self, session, format!("remote forward refused: cannot listen on {addr} on the node: {e}")),
        };
        let bound = listener.local_addr().map(|a| a.port()).unwrap_or(addr.port());
        if *port == 0 {
            *port = u32::from(bound);
        }
        let listening = format!("{}:{bound}", addr.ip());
        self.emit(self.event(codes::PORT_REMOTE_START, json!({"addr": listening, "success": true})));
        let conn = self.event(codes::PORT_REMOTE_CONN, json!({"addr": listening, "success": true}));
        let access = self.node.access.clone();
        let task = tokio::spawn(forward::serve_listener(
            listener,
            session.handle(),
            address.to_string(),
            *port,
            self.forwarded.clone(),
            move |peer| {
                let mut e = conn.clone();
                e.insert("remote_addr".into(), json!(peer.to_string()));
                let access = access.clone();
                tokio::spawn(async move {
                    let _ = access.emit(e).await;
                });
            },
        ));
        self.listeners.insert(address, *port, task.abort_handle());
        Ok(true)
    }

    async fn cancel_tcpip_forward(&mut self, address: &str, port: u32, _session: &mut Session) -> Result<bool, Self::Error> {
        let stopped = self.listeners.cancel(address, port);
        if stopped {
            self.emit(self.event(codes::PORT_REMOTE_STOP, json!({"addr": format!("{address}:{port}")})));
        }
        Ok(stopped)
    }

    async fn channel_close(&mut self, id: ChannelId, _session: &mut Session) -> Result<(), Self::Error> {
        // A client that closes the channel of a running session ends it (OpenSSH hangs up the
        // PTY); after a normal end this is a no-op.
        if let Some(stop) = self.channels.remove(&id).and_then(|st| st.stop) {
            stop.stop("the client closed the session".into());
        }
        Ok(())
    }
}
