//! JSON endpoints of the web UI (Teleport's shapes), for page scripts and other scripts:
//! sign in and out, the clusters, a cluster's servers.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::api::{ClusterInfo, LoginRequest, PublicKeys, path};
use shared::error::Result;
use shared::resource::Node;

use super::{WebApi, WebSession, session};
use crate::api::ratelimit::Class;
use crate::api::{ApiResult, ApiState, ClientAddr, JsonBody};

/// Signs a local user in: password (and a second factor when the cluster asks), certificates
/// for fresh keys made here, a web session holding them.
pub async fn sign_in(s: &ApiState, addr: &ClientAddr, user: &str, password: &str, otp: Option<String>) -> Result<WebSession> {
    s.limiter.check(Class::Login, &addr.key())?;
    let ssh = shared::certs::new_ssh_key()?;
    let tls = shared::certs::new_tls_key()?;
    let keys =
        PublicKeys { ssh_public_key: shared::certs::authorized_key(ssh.public_key()), tls_public_key: shared::certs::spki_pem(&tls) };
    let req = LoginRequest {
        username: user.to_string(),
        password: password.to_string(),
        keys,
        ttl_seconds: 0,
        route_to_cluster: None,
        otp_token: otp.filter(|c| !c.is_empty()),
    };
    let certs = s.auth.login(req, Some(addr.text())).await?;
    session::create(&s.auth, certs, &ssh, &tls).await
}

/// `POST /v1/webapi/sessions/web` body.
#[derive(Deserialize)]
pub struct CreateSession {
    user: String,
    pass: String,
    #[serde(default)]
    second_factor_token: Option<String>,
}

/// `POST /v1/webapi/sessions/web`: `{"type":"Bearer","token",...}` and the session cookie.
pub async fn create_session(
    State(s): State<Arc<ApiState>>,
    addr: ClientAddr,
    JsonBody(req): JsonBody<CreateSession>,
) -> ApiResult<Response> {
    let sess = sign_in(&s, &addr, &req.user, &req.pass, req.second_factor_token).await?;
    let now = s.auth.clock.now().unix_timestamp();
    let body = json!({
        "type": "Bearer",
        "token": sess.bearer,
        "expires_in": (sess.expires - now).max(0),
        "sessionExpires": shared::timefmt::rfc3339(shared::timefmt::from_unix(sess.expires)),
        "sessionInactiveTimeout": session::IDLE.as_millis() as u64,
    });
    Ok(([(header::SET_COOKIE, sess.cookie(now))], axum::Json(body)).into_response())
}

/// `DELETE /v1/webapi/sessions/web`: signs out (open terminals of the session close).
pub async fn delete_session(State(s): State<Arc<ApiState>>, WebApi(sess): WebApi) -> ApiResult<Response> {
    session::delete(&s.auth, &sess).await?;
    Ok(([(header::SET_COOKIE, session::clear_cookie())], axum::Json(json!({"message": "ok"}))).into_response())
}

/// `GET /v1/webapi/sites`: the root, then the leaves the user may see (from the store only:
/// nothing is asked of a leaf, so it answers alike for one leaf and for thousands).
pub async fn sites(State(s): State<Arc<ApiState>>, WebApi(mut sess): WebApi) -> ApiResult<axum::Json<Vec<Value>>> {
    let root = s.auth.cluster_name().to_string();
    let clusters: Vec<ClusterInfo> = super::api(&s, &mut sess, &root).await?.get(path::CLUSTERS).await?;
    Ok(axum::Json(clusters.into_iter().map(|c| json!({"name": c.cluster_name, "status": c.status, "type": c.cluster_type})).collect()))
}

/// `GET /v1/webapi/sites/<site>/nodes`: Teleport's `{"items":[...],"startKey","totalCount"}`.
pub async fn site_nodes(
    State(s): State<Arc<ApiState>>,
    WebApi(mut sess): WebApi,
    Path(site): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let site = if site == "-current-" { s.auth.cluster_name().to_string() } else { site };
    let nodes: Vec<Node> = super::api(&s, &mut sess, &site).await?.get(path::NODES).await?;
    let items: Vec<Value> = nodes
        .iter()
        .map(|n| {
            json!({
                "id": n.metadata.name, "siteId": site, "hostname": n.spec.hostname, "addr": n.spec.addr,
                "tunnel": n.spec.use_tunnel,
                "tags": n.metadata.labels.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let total = items.len();
    Ok(axum::Json(json!({"items": items, "startKey": "", "totalCount": total})))
}
