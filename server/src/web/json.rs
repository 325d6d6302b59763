//! JSON endpoints of the web UI (Teleport's shapes), for page scripts and other scripts:
//! sign in and out, the clusters, a cluster's servers.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::api::{ClusterInfo, LoginRequest, path};
use shared::error::Result;
use shared::resource::Node;

use super::{WebApi, WebSession, WebState, session};
use crate::api::ratelimit::Class;
use crate::api::{ApiResult, ClientAddr, JsonBody};

/// Signs a local user in: password (and a second factor when the cluster asks), certificates
/// for fresh keys made here, a web session holding them.
pub async fn sign_in(s: &WebState, addr: &ClientAddr, user: &str, password: &str, otp: Option<String>) -> Result<WebSession> {
    s.limiter.check(Class::Login, &addr.key())?;
    let (ssh, tls, keys) = shared::certs::new_key_pair()?;
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
    State(s): State<Arc<WebState>>,
    addr: ClientAddr,
    headers: axum::http::HeaderMap,
    JsonBody(req): JsonBody<CreateSession>,
) -> ApiResult<Response> {
    super::check_json_sign_in(&headers)?;
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
pub async fn delete_session(State(s): State<Arc<WebState>>, WebApi(sess): WebApi) -> ApiResult<Response> {
    session::delete(&s.auth, &sess).await?;
    Ok(([(header::SET_COOKIE, session::clear_cookie())], axum::Json(json!({"message": "ok"}))).into_response())
}

/// `GET /v1/webapi/sites`: the root, then the leaves the user may see (from the store only:
/// nothing is asked of a leaf, so it answers alike for one leaf and for thousands).
pub async fn sites(State(s): State<Arc<WebState>>, WebApi(mut sess): WebApi) -> ApiResult<axum::Json<Vec<Value>>> {
    let root = s.auth.cluster_name().to_string();
    let clusters: Vec<ClusterInfo> = super::api(&s, &mut sess, &root).await?.get(path::CLUSTERS).await?;
    Ok(axum::Json(clusters.into_iter().map(|c| json!({"name": c.cluster_name, "status": c.status, "type": c.cluster_type})).collect()))
}

/// `GET /v1/webapi/sites/<site>/nodes`: Teleport's `{"items":[...],"startKey","totalCount"}`.
pub async fn site_nodes(
    State(s): State<Arc<WebState>>,
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

/// `GET /v1/webapi/sites/<site>/sessions`: the running sessions the user may see there, in
/// Teleport's shape (`{"sessions": [...]}`).
pub async fn site_sessions(
    State(s): State<Arc<WebState>>,
    WebApi(mut sess): WebApi,
    Path(site): Path<String>,
) -> ApiResult<axum::Json<Value>> {
    let site = if site == "-current-" { s.auth.cluster_name().to_string() } else { site };
    let list: Vec<shared::api::SessionTracker> = super::api(&s, &mut sess, &site).await?.get(path::SESSION_TRACKERS).await?;
    let items: Vec<Value> = list
        .iter()
        .map(|t| {
            let (w, h) = t.spec.terminal.split_once('x').map_or((0, 0), |(w, h)| (w.parse().unwrap_or(0), h.parse().unwrap_or(0)));
            let created = shared::timefmt::rfc3339(t.spec.created);
            json!({
                "kind": t.spec.kind, "id": t.metadata.name, "namespace": "default",
                "parties": t.spec.participants.iter().map(|p| json!({
                    "id": p.id, "remote_addr": "", "user": p.user, "server_id": t.spec.target_address,
                    "last_active": shared::timefmt::rfc3339(p.last_active),
                })).collect::<Vec<_>>(),
                "terminal_params": {"w": w, "h": h},
                "login": t.spec.login, "created": created, "last_active": created,
                "server_id": t.spec.target_address, "server_hostname": t.spec.target_hostname,
                "server_hostport": "", "server_addr": "", "cluster_name": t.spec.cluster_name,
                "kubernetes_cluster_name": "", "desktop_name": "", "database_name": "", "app_name": "",
                "owner": t.spec.host_user, "moderated": false, "command": t.spec.command.clone().unwrap_or_default(),
                "participantModes": if t.spec.host_user == sess.user { json!(["observer", "peer"]) } else { json!(["observer"]) },
            })
        })
        .collect();
    Ok(axum::Json(json!({"sessions": items})))
}

/// A resource as Teleport's web API carries it: its YAML in `content`.
#[derive(Deserialize)]
pub struct ResourceItemBody {
    content: String,
}

fn item(kind: &str, v: &Value) -> Value {
    let name = v["metadata"]["name"].as_str().unwrap_or_default().to_string();
    json!({"id": format!("{kind}:{name}"), "kind": kind, "name": name, "content": super::editable_yaml(v)})
}

async fn list_items(s: &WebState, mut sess: WebSession, kind: &str) -> Result<Vec<Value>> {
    let root = s.auth.cluster_name().to_string();
    let values: Vec<Value> = super::api(s, &mut sess, &root).await?.get(&format!("/v1/resources/{kind}")).await?;
    Ok(values.iter().map(|v| item(kind, v)).collect())
}

async fn upsert_item(s: &WebState, sess: &mut WebSession, kind: &str, content: &str, name: Option<&str>) -> Result<Value> {
    let resource = super::one_resource(kind, content)?;
    let given = resource["metadata"]["name"].as_str().unwrap_or_default().to_string();
    let root = s.auth.cluster_name().to_string();
    let api = super::api(s, sess, &root).await?;
    let existing: Vec<Value> = api.get(&format!("/v1/resources/{kind}")).await?;
    let exists = |n: &str| existing.iter().any(|v| v["metadata"]["name"] == n);
    match name {
        // Teleport's rules: POST on an existing name, PUT on a missing one, are errors.
        None if exists(&given) => return Err(shared::Error::already_exists(format!("resource name {given:?} already exists"))),
        Some(n) if n != given => return Err(shared::Error::bad_parameter(format!("the resource is named {given:?}, not {n:?}"))),
        Some(n) if !exists(n) => return Err(shared::Error::not_found(format!("{kind} {n:?} is not found"))),
        _ => {}
    }
    let req = shared::api::UpsertResourceRequest { resource, force: name.is_some(), expected_id: None };
    let _: shared::api::UpsertResourceResponse = api.post(path::RESOURCES, &req).await?;
    let stored: Vec<Value> = api.get(&format!("/v1/resources/{kind}/{}", shared::client::encode_segment(&given))).await?;
    stored.first().map(|v| item(kind, v)).ok_or_else(|| shared::Error::not_found(format!("{kind} {given:?} is not found")))
}

async fn delete_item(s: &WebState, mut sess: WebSession, kind: &str, name: &str) -> Result<Value> {
    let root = s.auth.cluster_name().to_string();
    let _: Value = super::api(s, &mut sess, &root)
        .await?
        .call(hyper::Method::DELETE, &format!("/v1/resources/{kind}/{}", shared::client::encode_segment(name)), None::<&()>)
        .await?;
    Ok(json!({"message": "ok"}))
}

macro_rules! item_endpoints {
    ($kind:literal, $list:ident, $create:ident, $update:ident, $delete:ident) => {
        #[doc = concat!("`GET` the ", $kind, " resources as `[{\"id\",\"kind\",\"name\",\"content\"}]`.")]
        pub async fn $list(State(s): State<Arc<WebState>>, WebApi(sess): WebApi) -> ApiResult<axum::Json<Vec<Value>>> {
            Ok(axum::Json(list_items(&s, sess, $kind).await?))
        }
        #[doc = concat!("`POST` a new ", $kind, " from `{\"content\": <YAML>}` (an existing name is an error).")]
        pub async fn $create(
            State(s): State<Arc<WebState>>,
            WebApi(mut sess): WebApi,
            JsonBody(b): JsonBody<ResourceItemBody>,
        ) -> ApiResult<axum::Json<Value>> {
            Ok(axum::Json(upsert_item(&s, &mut sess, $kind, &b.content, None).await?))
        }
        #[doc = concat!("`PUT` a ", $kind, " by name (a missing one is an error).")]
        pub async fn $update(
            State(s): State<Arc<WebState>>,
            WebApi(mut sess): WebApi,
            Path(name): Path<String>,
            JsonBody(b): JsonBody<ResourceItemBody>,
        ) -> ApiResult<axum::Json<Value>> {
            Ok(axum::Json(upsert_item(&s, &mut sess, $kind, &b.content, Some(&name)).await?))
        }
        #[doc = concat!("`DELETE` a ", $kind, " by name.")]
        pub async fn $delete(
            State(s): State<Arc<WebState>>,
            WebApi(sess): WebApi,
            Path(name): Path<String>,
        ) -> ApiResult<axum::Json<Value>> {
            Ok(axum::Json(delete_item(&s, sess, $kind, &name).await?))
        }
    };
}

item_endpoints!("role", list_roles, create_role, update_role, delete_role);
item_endpoints!("trusted_cluster", list_trust, create_trust, update_trust, delete_trust);
