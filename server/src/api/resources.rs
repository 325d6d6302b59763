//! Generic resource endpoints behind `tctl get/create/edit/rm`: one dispatch per kind saying
//! where it is stored, who may touch it and which rules apply.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::api::{UpsertResourceRequest, UpsertResourceResponse};
use shared::error::{Error, Kind as ErrKind, Result};
use shared::resource::connector::Connector;
use shared::resource::{CertAuthority, Kind, Lock, Node, Proxy, RemoteCluster, Resource, Role, TrustedCluster, User};

use super::{ApiResult, ApiState, Authed, JsonBody};
use crate::audit::codes;
use crate::authz::{Context, Verb};
use crate::services::{Services, keys};
use crate::storage::Op;

/// Default TTL of a token created from YAML without `expires` (Teleport's `ProvisioningTokenTTL`).
const DEFAULT_YAML_TOKEN_TTL: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Query flags.
#[derive(Debug, Deserialize, Default)]
pub struct GetQuery {
    /// Include private keys and connector secrets.
    #[serde(default)]
    with_secrets: bool,
}

fn parse_kind(kind: &str) -> Result<Kind> {
    Kind::parse(kind)
}

fn require_secrets(ctx: &Context, kind: Kind) -> Result<()> {
    match kind {
        Kind::CertAuthority if !ctx.is_admin() => {
            Err(Error::access_denied("only the cluster administrator (tctl on the auth host with -c teleport.yaml) can read private keys"))
        }
        _ => ctx.require_kind(kind, Verb::Read),
    }
}

/// What a listing is built into: the JSON body of `GET /v1/resources/<kind>`, serialized from
/// the items' own types (a `serde_json::Value` per item first was a third of a 10,000-leaf
/// `tctl get rc`), or the `Value`s `get_one` filters by name.
trait Listing: Sized {
    fn of<T: serde::Serialize>(items: Vec<T>) -> Result<Self>;
}

impl Listing for Vec<u8> {
    fn of<T: serde::Serialize>(items: Vec<T>) -> Result<Self> {
        serde_json::to_vec(&items).map_err(|e| Error::internal(format!("cannot encode a listing: {e}")))
    }
}

impl Listing for Vec<Value> {
    fn of<T: serde::Serialize>(items: Vec<T>) -> Result<Self> {
        Ok(items.iter().filter_map(|i| serde_json::to_value(i).ok()).collect())
    }
}

/// Every item of `kind` the caller may see.
async fn list_values<L: Listing>(s: &ApiState, ctx: &Context, kind: Kind, secrets: bool) -> Result<L> {
    let svc = &s.auth.services;
    let prefix = Services::prefix_of(kind);
    match kind {
        Kind::Role => L::of(svc.list::<Role>(&prefix).await?),
        Kind::User => L::of(svc.list::<User>(&prefix).await?),
        Kind::Token => L::of(s.auth.list_tokens().await?),
        Kind::TrustedCluster => L::of(svc.list::<TrustedCluster>(&prefix).await?),
        Kind::RemoteCluster => {
            let all = s.auth.remote_clusters().await?;
            L::of(
                all.into_iter()
                    .filter(|rc| ctx.is_admin() || ctx.checker.check_cluster(&rc.metadata.labels).is_ok())
                    .collect::<Vec<RemoteCluster>>(),
            )
        }
        Kind::CertAuthority => {
            let cas = svc.list::<CertAuthority>(&prefix).await?;
            L::of(cas.into_iter().map(|c| if secrets { c } else { c.without_secrets() }).collect::<Vec<_>>())
        }
        Kind::Node => {
            let nodes = svc.list::<Node>(&prefix).await?;
            L::of(nodes.into_iter().filter(|n| ctx.is_admin() || ctx.checker.can_see_node(&n.metadata.labels)).collect::<Vec<_>>())
        }
        Kind::Github | Kind::Oidc | Kind::Saml => {
            let cs = svc.list::<Connector>(&prefix).await?;
            L::of(cs.into_iter().map(|c| if secrets { c } else { c.without_secrets() }).collect::<Vec<_>>())
        }
        Kind::Lock => L::of(svc.list::<Lock>(&prefix).await?),
        Kind::AuthPreference => L::of(vec![s.auth.auth_preference().await?]),
        Kind::TunnelConnection => L::of(s.auth.tunnel_connections().await?),
        Kind::Proxy => L::of(svc.list::<Proxy>(&prefix).await?),
        Kind::KubeCluster => L::of(s.auth.visible_kube_clusters(if ctx.is_admin() { None } else { Some(&ctx.checker) }).await?),
        Kind::App => L::of(s.auth.visible_apps(if ctx.is_admin() { None } else { Some(&ctx.checker) }).await?),
        Kind::Db => L::of(s.auth.visible_dbs(if ctx.is_admin() { None } else { Some(&ctx.checker) }).await?),
    }
}

/// `GET /v1/resources/<kind>`.
pub async fn list(
    State(s): State<Arc<ApiState>>,
    Authed(ctx): Authed,
    Path(kind): Path<String>,
    Query(q): Query<GetQuery>,
) -> ApiResult<axum::response::Response> {
    use axum::response::IntoResponse;
    let kind = parse_kind(&kind)?;
    ctx.require_kind(kind, Verb::List)?;
    if q.with_secrets {
        require_secrets(&ctx, kind)?;
    }
    let body: Vec<u8> = list_values(&s, &ctx, kind, q.with_secrets).await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `GET /v1/resources/<kind>/<name>` (CAs: `<type>/<cluster>`, or just `<type>` for all of a type).
pub async fn get_one(
    State(s): State<Arc<ApiState>>,
    Authed(ctx): Authed,
    Path((kind, name)): Path<(String, String)>,
    Query(q): Query<GetQuery>,
) -> ApiResult<axum::Json<Vec<Value>>> {
    let kind = parse_kind(&kind)?;
    ctx.require_kind(kind, Verb::Read)?;
    if q.with_secrets {
        require_secrets(&ctx, kind)?;
    }
    let all: Vec<Value> = list_values(&s, &ctx, kind, q.with_secrets).await?;
    let found: Vec<Value> = all
        .into_iter()
        .filter(|v| {
            let n = v["metadata"]["name"].as_str().unwrap_or_default();
            match kind {
                Kind::CertAuthority => {
                    let t = v["spec"]["type"].as_str().unwrap_or_default();
                    name == format!("{t}/{n}") || name == t
                }
                Kind::Node => n == name || v["spec"]["hostname"].as_str() == Some(name.as_str()),
                _ => n == name,
            }
        })
        .collect();
    if found.is_empty() {
        return Err(not_found(kind, &name).into());
    }
    Ok(axum::Json(found))
}

/// Teleport's not-found messages per kind.
fn not_found(kind: Kind, name: &str) -> Error {
    let what = match kind {
        Kind::TrustedCluster => "trusted cluster",
        Kind::RemoteCluster => "remote cluster",
        Kind::CertAuthority => "certificate authority",
        other => other.as_str(),
    };
    Error::not_found(format!("{what} {name:?} is not found"))
}

/// `POST /v1/resources` (`tctl create [-f]`, `tctl edit`).
pub async fn upsert(
    State(s): State<Arc<ApiState>>,
    Authed(ctx): Authed,
    JsonBody(req): JsonBody<UpsertResourceRequest>,
) -> ApiResult<axum::Json<UpsertResourceResponse>> {
    let res = Resource::from_value(req.resource)?;
    let kind = res.kind();
    let verb = if req.force || req.expected_id.is_some() { Verb::Update } else { Verb::Create };
    ctx.require_kind(kind, verb)?;
    if verb == Verb::Update {
        ctx.require_kind(kind, Verb::Create)?;
    }
    let actor = ctx.name();
    let auth = &s.auth;
    let svc = &auth.services;
    let mut warnings = Vec::new();
    let (name, created) = match res {
        Resource::Role(mut role) => {
            role.check_and_set_defaults()?;
            let name = role.metadata.name.clone();
            let created =
                store(svc, &keys::role(&name), &role, req.force, req.expected_id, || format!("role {name:?} already exists")).await?;
            auth.audit.emit(codes::ROLE_CREATE, json!({"name": name, "user": actor})).await;
            (name, created)
        }
        Resource::App(mut app) => {
            app.check_and_set_defaults()?;
            // Defined here; an app_service heartbeating the name serves it.
            app.spec.host_id.clear();
            app.spec.hostname.clear();
            app.spec.tunnel = false;
            app.metadata.expires = None;
            let name = app.metadata.name.clone();
            let created =
                store(svc, &keys::app(&name), &app, req.force, req.expected_id, || format!("app {name:?} already exists")).await?;
            auth.audit.emit(codes::RESOURCE_UPSERT, json!({"kind": "app", "name": name, "user": actor})).await;
            (name, created)
        }
        Resource::Db(mut db) => {
            db.check_and_set_defaults()?;
            // Defined here; a db_service heartbeating the name serves it.
            db.spec.host_id.clear();
            db.spec.hostname.clear();
            db.spec.tunnel = false;
            db.metadata.expires = None;
            let name = db.metadata.name.clone();
            let created = store(svc, &keys::db(&name), &db, req.force, req.expected_id, || format!("db {name:?} already exists")).await?;
            auth.audit.emit(codes::RESOURCE_UPSERT, json!({"kind": "db", "name": name, "user": actor})).await;
            (name, created)
        }
        Resource::User(user) => {
            let name = user.metadata.name.clone();
            let created = auth.upsert_user(user, req.force, req.expected_id, &actor).await?;
            (name, created)
        }
        Resource::Token(mut token) => {
            token.check_and_set_defaults()?;
            if token.metadata.expires.is_none() {
                token.metadata.expires = Some(auth.clock.now() + DEFAULT_YAML_TOKEN_TTL);
            }
            let name = token.metadata.name.clone();
            if name.len() < 16 {
                return Err(
                    Error::bad_parameter("a token name must be at least 16 characters; shorter values are too easy to guess").into()
                );
            }
            let created = store(svc, &keys::token(&name), &token, req.force, req.expected_id, || {
                "a token with this value already exists".to_string()
            })
            .await?;
            (name, created)
        }
        Resource::TrustedCluster(tc) => {
            let out = auth.upsert_trusted_cluster(tc, req.force, req.expected_id, &actor).await?;
            warnings = out.warnings;
            (out.name, out.created)
        }
        Resource::Connector(mut c) => {
            let name = c.metadata.name.clone();
            let key = Services::key_of(kind, &name)?;
            // An edit (`tctl edit`, which never shows secrets) keeps the secrets it left out; the
            // compare-and-swap below makes sure they are those of the version edited.
            if req.expected_id.is_some()
                && let Some(stored) = svc.get::<shared::resource::connector::Connector>(&key).await?
            {
                c.keep_secrets(&stored.value);
            }
            c.check_and_set_defaults()?;
            let created = store(svc, &key, &c, req.force, req.expected_id, || format!("{kind} connector {name:?} already exists")).await?;
            auth.audit.emit(codes::RESOURCE_UPSERT, json!({"kind": kind.as_str(), "name": name, "user": actor})).await;
            (name, created)
        }
        Resource::Lock(lock) => {
            let name = lock.metadata.name.clone();
            let created = auth.upsert_lock(lock, req.force, req.expected_id, &actor).await?;
            (name, created)
        }
        Resource::AuthPreference(p) => {
            let (created, w) = auth.upsert_auth_preference(p, req.force, req.expected_id).await?;
            warnings = w;
            auth.audit
                .emit(
                    codes::RESOURCE_UPSERT,
                    json!({"kind": kind.as_str(), "name": shared::resource::auth_preference::NAME, "user": actor}),
                )
                .await;
            (shared::resource::auth_preference::NAME.to_string(), created)
        }
        Resource::RemoteCluster(_)
        | Resource::CertAuthority(_)
        | Resource::Node(_)
        | Resource::TunnelConnection(_)
        | Resource::KubeCluster(_)
        | Resource::Proxy(_) => {
            let hint = if kind == Kind::RemoteCluster { "; use 'tctl update rc/<name> --set-labels=...'" } else { "" };
            return Err(Error::bad_parameter(format!("creating resources of type {:?} is not supported{hint}", kind.as_str())).into());
        }
    };
    Ok(axum::Json(UpsertResourceResponse { kind: kind.as_str().into(), name, created, warnings }))
}

/// Create, replace (`force`) or compare-and-swap (`expected`); returns whether it was new.
async fn store<T>(svc: &Services, key: &str, v: &T, force: bool, expected: Option<i64>, exists: impl FnOnce() -> String) -> Result<bool>
where
    T: serde::Serialize + serde::de::DeserializeOwned + crate::services::HasMetadata + Clone,
{
    let existed = svc.backend.get(key).await?.is_some();
    let op = match expected {
        Some(rev) => svc.cas_op(key, v, rev)?,
        None if force => svc.put_op(key, v)?,
        None => svc.create_op(key, v)?,
    };
    svc.apply(vec![op]).await.map_err(|e| match e.kind {
        ErrKind::AlreadyExists => Error::already_exists(exists()),
        _ => crate::auth::users::edit_conflict(e),
    })?;
    Ok(!existed)
}

/// `DELETE /v1/resources/<kind>/<name>` (`tctl rm`).
pub async fn remove(
    State(s): State<Arc<ApiState>>,
    Authed(ctx): Authed,
    Path((kind, name)): Path<(String, String)>,
) -> ApiResult<axum::Json<Value>> {
    let kind = parse_kind(&kind)?;
    ctx.require_kind(kind, Verb::Delete)?;
    let auth = &s.auth;
    let actor = ctx.name();
    match kind {
        Kind::User => {
            let lock = auth.delete_user(&name, &actor).await?;
            return Ok(axum::Json(json!({ "lock": lock })));
        }
        Kind::Lock => auth.delete_lock(&name, &actor).await?,
        Kind::Token => auth.delete_token(&name).await?,
        Kind::TrustedCluster => auth.delete_trusted_cluster(&name, &actor).await?,
        Kind::RemoteCluster => auth.delete_remote_cluster(&name, &actor).await?,
        Kind::Role => {
            let users: Vec<User> = auth.services.list(keys::USERS).await?;
            if let Some(u) = users.iter().find(|u| u.spec.roles.contains(&name)) {
                return Err(Error::bad_parameter(format!(
                    "role {name:?} is still assigned to user {:?}; remove it from the user first (tctl users update)",
                    u.metadata.name
                ))
                .into());
            }
            let tcs: Vec<TrustedCluster> = auth.services.list(keys::TRUSTED_CLUSTERS).await?;
            if let Some(tc) = tcs.iter().find(|tc| tc.combined_mapping().iter().any(|m| m.local.contains(&name))) {
                return Err(Error::bad_parameter(format!(
                    "role {name:?} is used by the role_map of trusted cluster {:?}; change the role_map first",
                    tc.metadata.name
                ))
                .into());
            }
            delete_key(&auth.services, &Services::key_of(kind, &name)?, kind, &name).await?;
            auth.audit.emit(codes::ROLE_DELETE, json!({"name": name, "user": actor})).await;
        }
        Kind::CertAuthority => {
            let (t, cluster) = name.split_once('/').unwrap_or((name.as_str(), ""));
            if cluster == auth.cluster_name() {
                return Err(Error::bad_parameter("the certificate authorities of this cluster cannot be removed").into());
            }
            let t = shared::resource::CaType::parse(t)?;
            let ops = vec![Op::DeleteIfExists { key: keys::ca(t, cluster) }, Op::DeleteIfExists { key: keys::deactivated_ca(t, cluster) }];
            if auth.services.ca(t, cluster, false).await?.is_none() && auth.services.ca(t, cluster, true).await?.is_none() {
                return Err(not_found(kind, &name).into());
            }
            auth.services.apply(ops).await?;
            auth.audit.emit(codes::RESOURCE_DELETE, json!({"kind": "cert_authority", "name": name, "user": actor})).await;
        }
        Kind::TunnelConnection => {
            return Err(Error::bad_parameter("tunnel connections come and go with their tunnels; remove the remote cluster instead").into());
        }
        Kind::Proxy => {
            return Err(Error::bad_parameter("proxies leave the list by themselves when they stop (or 15s after they die)").into());
        }
        Kind::KubeCluster => {
            return Err(Error::bad_parameter(
                "Kubernetes clusters leave the list by themselves when their kubernetes_service stops serving them (or within 3 heartbeats after it dies)",
            )
            .into());
        }
        Kind::AuthPreference => {
            return Err(Error::bad_parameter("the cluster_auth_preference cannot be removed; change it with 'tctl edit cap'").into());
        }
        Kind::Node | Kind::Github | Kind::Oidc | Kind::Saml | Kind::App | Kind::Db => {
            delete_key(&auth.services, &Services::key_of(kind, &name)?, kind, &name).await?;
            auth.audit.emit(codes::RESOURCE_DELETE, json!({"kind": kind.as_str(), "name": name, "user": actor})).await;
        }
    }
    Ok(axum::Json(json!({})))
}

async fn delete_key(svc: &Services, key: &str, kind: Kind, name: &str) -> Result<()> {
    svc.apply(vec![Op::Delete { key: key.into() }]).await.map_err(|e| if e.is(ErrKind::NotFound) { not_found(kind, name) } else { e })?;
    Ok(())
}
