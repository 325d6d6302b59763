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
use super::authz::{Allowed, authorize, check_locks};
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
}

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

    fn start(&mut self, id: ChannelId, command: Option<String>, session: &mut Session) -> anyhow::Result<()> {
        let Some(state) = self.channels.get_mut(&id) else {
            session.channel_failure(id)?;
            return Ok(());
        };
        let Some(channel) = state.channel.take() else {
            session.channel_failure(id)?;
            return Ok(());
        };
        let refuse = |session: &mut Session, why: &str| -> anyhow::Result<()> {
            session.channel_success(id)?;
            session.extended_data(id, 1, format!("{why}\n").into_bytes())?;
            session.exit_status_request(id, 1)?;
            session.eof(id)?;
            session.close(id)?;
            Ok(())
        };
        if let Some(why) = self.refused.clone() {
            return refuse(session, &why);
        }
        let Some(allowed) = self.allowed.clone() else {
            session.channel_failure(id)?;
            return Ok(());
        };
        if let Some(max) = allowed.max_sessions
            && self.sessions.load(Ordering::SeqCst) as u64 >= max
        {
            return refuse(session, &format!("too many sessions on this connection (max_sessions {max}); open another connection"));
        }
        let mut session_env =
            vec![("TELEPORT_USER".to_string(), allowed.username.clone()), ("TELEPORT_CLUSTER".to_string(), allowed.origin_cluster.clone())];
        // The user's own address when a tunnel or a proxy's vouch names it, else the peer's.
        let client = self.origin.as_ref().and_then(|o| o.addr.parse::<SocketAddr>().ok()).or(self.peer);
        if let Some(p) = client {
            session_env.push(("SSH_CLIENT".into(), format!("{} {} 0", p.ip(), p.port())));
        }
        let spec = SpawnSpec {
            login: self.login.clone(),
            command: command.clone(),
            env: std::mem::take(&mut state.env),
            pty: state.pty.clone(),
            session_env,
        };
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
        if let Some(st) = self.channels.get_mut(&id) {
            st.master = master.clone();
            st.tap = Some(tap.clone());
            st.stop = Some(stop.clone());
        }
        let handle = session.handle();
        let end_event = self.event(codes::SESSION_END, json!({"sid": session_id, "command": command}));
        let access = self.node.access.clone();
        let counted = InFlight::new(&self.sessions);
        let mut roles = allowed.cert_roles.clone();
        roles.extend(allowed.roles.iter().cloned());
        let live = {
            let stop = stop.clone();
            self.node.live.register(LiveEntry {
                user: allowed.username.clone(),
                origin: allowed.origin_cluster.clone(),
                roles,
                login: Some(self.login.clone()),
                issued_at: Some(allowed.issued_at),
                end: Box::new(move |why| stop.stop(why)),
            })
        };
        let idle = match (allowed.idle_timeout, self.node.cfg.client_idle_timeout) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        tokio::spawn(async move {
            let _counted = counted;
            let _live = live;
            let code = run_session(handle, channel, spawned.child, master, stop, idle, tap).await;
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
async fn run_session(
    handle: russh::server::Handle,
    channel: Channel<Msg>,
    mut child: tokio::process::Child,
    master: Option<Arc<OwnedFd>>,
    stop: Arc<Stop>,
    idle: Option<Duration>,
    tap: Tap,
) -> i32 {
    type Writer = tokio::io::WriteHalf<russh::ChannelStream<Msg>>;
    let id = channel.id();
    let start = Instant::now();
    let last = Arc::new(AtomicU64::new(0));
    let (mut rd, mut wr) = tokio::io::split(channel.into_stream());
    let output: tokio::task::JoinHandle<Writer> = match master {
        Some(master) => {
            // PTY: one non-blocking fd for both directions, on the event loop.
            let Ok(pty) = super::session::PtyIo::new(&master) else {
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
        match authorize(&bundle, &self.node.cfg.labels, user, cert, now) {
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
            Some(st) if accept_env(name) && value.len() < 4096 && st.env.len() < 64 => {
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
        }
        Ok(())
    }

    async fn subsystem_request(&mut self, id: ChannelId, _name: &str, session: &mut Session) -> Result<(), Self::Error> {
        session.channel_failure(id)?;
        Ok(())
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
