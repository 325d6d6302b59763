//! The web terminal's WebSocket (`/v1/webapi/sites/<site>/connect/ws?params=...`, Teleport's
//! protocol): checked at the upgrade (session cookie, this site's `Origin`), then the bearer
//! token as the first message within 4 seconds, then `shared::webterm` envelopes. The proxy
//! dials the node as `tsh ssh --cluster=<site>` does, with the session's certificate, through
//! its own SSH port: the same routing, RBAC, role mapping and audit.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use russh::ChannelMsg;
use serde::Deserialize;
use serde_json::json;
use shared::error::Error;
use shared::party;
use shared::subsystem::ProxyRequest;
use shared::webterm;

use super::{Client, WebSession, WebState, check_origin, session};
use crate::api::ApiError;

/// How long the browser has to send its token.
const TOKEN_DEADLINE: Duration = Duration::from_secs(4);
/// WebSocket pings.
const PING: Duration = Duration::from_secs(30);
/// How often an open terminal checks that its session was not signed out.
const SESSION_CHECK: Duration = Duration::from_secs(2);

/// `?params=<JSON>`.
#[derive(Deserialize)]
pub struct WsQuery {
    #[serde(default)]
    params: String,
}

/// Teleport's `TerminalRequest` (the fields we use). With `sid`, the terminal joins that
/// running session (the Active Sessions page) in `mode` (observer unless it says peer) instead
/// of starting one, connecting as [`party::JOIN_LOGIN`] whatever `login` says.
#[derive(Debug, Deserialize)]
struct TerminalRequest {
    server_id: String,
    #[serde(default)]
    login: String,
    #[serde(default)]
    term: TermSize,
    #[serde(default)]
    sid: String,
    #[serde(default)]
    mode: String,
}

#[derive(Debug, Deserialize)]
struct TermSize {
    w: u32,
    h: u32,
}

impl Default for TermSize {
    fn default() -> Self {
        TermSize { w: 80, h: 25 }
    }
}

/// `GET /v1/webapi/sites/<site>/connect/ws`.
pub async fn connect(
    State(s): State<Arc<WebState>>,
    Path(site): Path<String>,
    Query(q): Query<WsQuery>,
    Client(client, permit): Client,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let Some(mut sess) = (match session::cookie_of(&headers) {
        Some(id) => session::load(&s.auth, &id).await.ok().flatten(),
        None => None,
    }) else {
        return ApiError(Error::access_denied("missing session cookie")).into_response();
    };
    sess.client = client;
    if let Err(e) = check_origin(&headers) {
        return ApiError(e).into_response();
    }
    let mut req: TerminalRequest = match serde_json::from_str(&q.params) {
        Ok(r) => r,
        Err(e) => return ApiError(Error::bad_parameter(format!("params: {e}"))).into_response(),
    };
    if !(1..=4095).contains(&req.term.w) || !(1..=4095).contains(&req.term.h) {
        return ApiError(Error::bad_parameter(format!("term: bad dimensions({}x{})", req.term.w, req.term.h))).into_response();
    }
    if !req.sid.is_empty() {
        if let Err(e) = party::check_session_id(&req.sid) {
            return ApiError(e).into_response();
        }
        if req.mode.is_empty() {
            req.mode = party::Mode::Observer.as_str().into();
        }
        if let Err(why) = party::Mode::parse(&req.mode) {
            return ApiError(Error::bad_parameter(format!("params: {why}"))).into_response();
        }
        req.login = party::JOIN_LOGIN.into();
    }
    if req.login.is_empty() || req.server_id.is_empty() {
        return ApiError(Error::bad_parameter("params: server_id and login are required")).into_response();
    }
    let site = if site == "-current-" { s.auth.cluster_name().to_string() } else { site };
    ws.max_message_size(webterm::MAX_ENVELOPE).on_upgrade(move |socket| async move {
        // The connection keeps its place in the limits for as long as the terminal is open.
        let _permit = permit;
        run(s, sess, site, req, socket).await
    })
}

async fn send(socket: &mut WebSocket, kind: &str, payload: &str) -> bool {
    socket.send(Message::Binary(webterm::encode(kind, payload).into())).await.is_ok()
}

async fn run(s: Arc<WebState>, mut sess: WebSession, site: String, req: TerminalRequest, mut socket: WebSocket) {
    let authenticated = match tokio::time::timeout(TOKEN_DEADLINE, socket.recv()).await {
        Ok(Some(Ok(Message::Text(t)))) => serde_json::from_str::<serde_json::Value>(&t)
            .ok()
            .and_then(|v| v["token"].as_str().map(|tok| sess.bearer_matches(tok)))
            .unwrap_or(false),
        _ => false,
    };
    if !authenticated {
        let _ = socket
            .send(Message::Text(
                json!({"type": "create_session_response", "status": "error", "message": "invalid token"}).to_string().into(),
            ))
            .await;
        let _ = socket.send(Message::Close(None)).await;
        return;
    }
    if socket.send(Message::Text(json!({"type": "create_session_response", "status": "ok"}).to_string().into())).await.is_err() {
        return;
    }
    let dialed = dial(&s, &mut sess, &site, &req).await;
    let (proxy, node, ch) = match dialed {
        Ok(d) => d,
        Err(e) => {
            tracing::info!(user = %sess.user, site = %site, server = %req.server_id, error = %e, "web terminal refused");
            send(&mut socket, webterm::ERROR, &e).await;
            send(&mut socket, webterm::CLOSE, "{}").await;
            let _ = socket.send(Message::Close(None)).await;
            return;
        }
    };
    let meta = json!({"session": {"login": req.login, "server_hostname": req.server_id, "cluster_name": site}}).to_string();
    send(&mut socket, webterm::SESSION, &meta).await;
    let (mut rd, wr) = ch.split();
    let mut carry = Vec::new();
    let mut exit: Option<i64> = None;
    let mut ping = tokio::time::interval(PING);
    let mut check = tokio::time::interval(SESSION_CHECK);
    ping.tick().await;
    check.tick().await;
    loop {
        tokio::select! {
            m = socket.recv() => match m {
                Some(Ok(Message::Binary(b))) => {
                    let Ok(env) = webterm::decode(&b) else {
                        send(&mut socket, webterm::ERROR, "malformed message from the browser").await;
                        break;
                    };
                    match env.kind.as_str() {
                        webterm::DATA => {
                            let sent = wr.data_bytes(env.payload.into_bytes()).await;
                            if sent.is_err() {
                                break;
                            }
                        }
                        webterm::RESIZE => {
                            if let Some((w, h)) = webterm::parse_resize(&env.payload) {
                                let _ = wr.window_change(w, h, 0, 0).await;
                            }
                        }
                        webterm::CLOSE => break,
                        _ => {}
                    }
                }
                Some(Ok(Message::Text(_))) => {
                    send(&mut socket, webterm::ERROR, "Expected binary message, got text").await;
                    break;
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            msg = rd.wait() => match msg {
                Some(ChannelMsg::Data { data }) | Some(ChannelMsg::ExtendedData { data, .. }) => {
                    let text = webterm::utf8_chunk(&mut carry, &data);
                    if !text.is_empty() && !send(&mut socket, webterm::DATA, &text).await {
                        break;
                    }
                }
                Some(ChannelMsg::ExitStatus { exit_status }) => exit = Some(i64::from(exit_status)),
                Some(ChannelMsg::ExitSignal { .. }) => exit = Some(255),
                Some(ChannelMsg::Close) | None => {
                    if exit.is_none() {
                        // Ended without an exit status: say why, not just "Session ended".
                        let why = match proxy.ended_because() {
                            Some(why) => why,
                            None => "the connection to the node was lost before the session ended: the node, its tunnel or the network went away".into(),
                        };
                        send(&mut socket, webterm::ERROR, &why).await;
                    }
                    let payload = match exit { Some(c) => json!({"exit_status": c}), None => json!({}) };
                    send(&mut socket, webterm::CLOSE, &payload.to_string()).await;
                    break;
                }
                Some(_) => {}
            },
            _ = ping.tick() => {
                if socket.send(Message::Ping(Vec::new().into())).await.is_err() {
                    break;
                }
            }
            _ = check.tick() => {
                if !session::exists(&s.auth, &sess.id).await {
                    send(&mut socket, webterm::ERROR, "the web session ended (signed out); the terminal is closed").await;
                    send(&mut socket, webterm::CLOSE, "{}").await;
                    break;
                }
            }
        }
    }
    node.close().await;
    proxy.close().await;
    let _ = socket.send(Message::Close(None)).await;
}

type Dialed = (shared::sshclient::ProxyConn, shared::sshclient::NodeConn, russh::Channel<russh::client::Msg>);

/// SSH to `login@server` of `site` as the signed-in user: inside the process, with the
/// browser's address, as `tsh ssh --cluster=<site>` goes (the terminal, uploads, downloads).
pub async fn reach(
    s: &WebState,
    sess: &mut WebSession,
    site: &str,
    server: &str,
    login: &str,
) -> Result<(shared::sshclient::ProxyConn, shared::sshclient::NodeConn), String> {
    let root = s.auth.cluster_name().to_string();
    // Learn the host CA of a leaf not used yet in this session (a sign-in brings the root's only).
    if site != root && sess.credentials().map(|c| c.host_ca_keys(site).is_empty()).unwrap_or(true) {
        super::api(s, sess, site).await.map_err(|e| e.message)?;
    }
    let creds = sess.credentials().map_err(|e| e.message)?;
    // Inside the process, with the browser's address: no socket, one place in the limits.
    let proxy = s.route(sess.client).connect(&root, &creds, login).await.map_err(|e| format!("{e:#}"))?;
    let pr = ProxyRequest { host: server.to_string(), port: None, cluster: Some(site.to_string()) };
    let stream = proxy.subsystem(&pr).await.map_err(|e| e.message)?;
    let node = shared::sshclient::connect_node(stream, server, site, &creds, login).await.map_err(|e| format!("{e:#}"))?;
    Ok((proxy, node))
}

async fn dial(s: &WebState, sess: &mut WebSession, site: &str, req: &TerminalRequest) -> Result<Dialed, String> {
    let (proxy, node) = reach(s, sess, site, &req.server_id, &req.login).await?;
    let ch = node.open_session().await.map_err(|e| format!("{e:#}"))?;
    let _ = ch.set_env(false, "LANG", "C.UTF-8").await;
    if !req.sid.is_empty() {
        ch.set_env(false, party::ENV_SESSION, req.sid.as_str()).await.map_err(|e| format!("naming the session: {e}"))?;
        ch.set_env(false, party::ENV_MODE, req.mode.as_str()).await.map_err(|e| format!("naming the mode: {e}"))?;
    }
    ch.request_pty(false, "xterm-256color", req.term.w, req.term.h, 0, 0, &[]).await.map_err(|e| format!("requesting a terminal: {e}"))?;
    ch.request_shell(true).await.map_err(|e| format!("starting a shell: {e}"))?;
    Ok((proxy, node, ch))
}
