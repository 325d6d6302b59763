//! Authenticated endpoints (and login/join), each: check the caller, call the auth service.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use serde::Deserialize;
use serde_json::{Value, json};
use shared::api::*;
use shared::error::{Error, Result};
use shared::identity::Caller;
use shared::resource::cluster::STATUS_ONLINE;
use shared::resource::token::SystemRole;
use shared::resource::{CaType, Kind, Node, parse_label_spec};

use super::ratelimit::Class;
use super::{ApiResult, ApiState, Authed, ClientAddr, JsonBody};
use crate::auth::DEFAULT_USER_TTL;
use crate::authz::Verb;

type J<T> = axum::Json<T>;

/// `POST /v1/auth/login`.
pub async fn login(State(s): State<Arc<ApiState>>, addr: ClientAddr, JsonBody(req): JsonBody<LoginRequest>) -> ApiResult<J<CertsResponse>> {
    s.limiter.check(Class::Login, &addr.key())?;
    if req.username.len() > 256 || req.password.len() > 4096 {
        return Err(Error::bad_parameter("username or password too long").into());
    }
    Ok(axum::Json(s.auth.login(req, Some(addr.text())).await?))
}

/// `POST /v1/auth/reissue`: new certificates for the caller (e.g. routed to a leaf).
pub async fn reissue(
    State(s): State<Arc<ApiState>>,
    parts: Parts,
    Authed(ctx): Authed,
    JsonBody(req): JsonBody<ReissueRequest>,
) -> ApiResult<J<CertsResponse>> {
    let id = ctx.require_local_user()?;
    let user = s.auth.services.user(&id.username).await?.value;
    let remaining = super::conn_info(&parts)
        .cert
        .as_ref()
        .map(|c| Duration::from_secs(u64::try_from(c.not_after - s.auth.clock.now().unix_timestamp()).unwrap_or(0)))
        .unwrap_or(DEFAULT_USER_TTL);
    let ttl = if req.ttl_seconds == 0 { remaining } else { Duration::from_secs(req.ttl_seconds).min(remaining) };
    let scope = crate::auth::CertScope {
        route: req.route_to_cluster,
        kube: req.kubernetes_cluster,
        db: req.route_to_database,
        requests: req.access_requests,
    };
    Ok(axum::Json(s.auth.user_certs_for(&user, &req.keys, ttl, scope).await?))
}

/// `GET /v1/whoami`.
pub async fn whoami(State(s): State<Arc<ApiState>>, Authed(ctx): Authed) -> ApiResult<J<WhoAmI>> {
    let kind = match &ctx.caller {
        Caller::LocalUser(_) => "user",
        Caller::RemoteUser { .. } => "remote_user",
        Caller::Host(_) => "host",
    };
    // What a user of this cluster may request, for tsh login (options.request_access: always).
    let (request_access, request_prompt, requestable_roles) = match &ctx.caller {
        Caller::LocalUser(_) => {
            let all: Vec<shared::resource::Role> = s.auth.services.list(crate::services::keys::ROLES).await?;
            let mine = ctx.checker.role_names();
            let requestable =
                all.into_iter().map(|r| r.metadata.name).filter(|n| !mine.contains(n) && ctx.checker.can_request(n)).collect::<Vec<_>>();
            (ctx.checker.request_access().to_string(), ctx.checker.request_prompt(), requestable)
        }
        _ => (String::new(), String::new(), Vec::new()),
    };
    Ok(axum::Json(WhoAmI {
        name: ctx.name(),
        kind: kind.into(),
        cluster_name: s.auth.cluster_name().into(),
        roles: ctx.checker.role_names(),
        request_access,
        request_prompt,
        requestable_roles,
    }))
}

/// `POST /v1/join`.
pub async fn join(State(s): State<Arc<ApiState>>, addr: ClientAddr, JsonBody(req): JsonBody<JoinRequest>) -> ApiResult<J<JoinResponse>> {
    s.limiter.check(Class::Join, &addr.key())?;
    Ok(axum::Json(s.auth.join(req, &addr.text()).await?))
}

/// `POST /v1/users` (`tctl users add`).
pub async fn add_user(
    State(s): State<Arc<ApiState>>,
    Authed(ctx): Authed,
    JsonBody(req): JsonBody<AddUserRequest>,
) -> ApiResult<J<InviteResponse>> {
    ctx.require_kind(Kind::User, Verb::Create)?;
    Ok(axum::Json(s.auth.add_user(&req.name, req.roles, req.logins, &ctx.name()).await?))
}

/// `PATCH /v1/users/<name>` (`tctl users update`).
pub async fn update_user(
    State(s): State<Arc<ApiState>>,
    Authed(ctx): Authed,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<UpdateUserRequest>,
) -> ApiResult<J<Value>> {
    ctx.require_kind(Kind::User, Verb::Update)?;
    s.auth.update_user(&name, req.set_roles, req.set_logins, &ctx.name()).await?;
    Ok(axum::Json(json!({})))
}

/// `POST /v1/users/<name>/reset` (`tctl users reset`).
pub async fn reset_user(State(s): State<Arc<ApiState>>, Authed(ctx): Authed, Path(name): Path<String>) -> ApiResult<J<InviteResponse>> {
    ctx.require_kind(Kind::User, Verb::Update)?;
    Ok(axum::Json(s.auth.reset_user(&name).await?))
}

/// `POST /v1/tokens` (`tctl tokens add`).
pub async fn add_token(
    State(s): State<Arc<ApiState>>,
    Authed(ctx): Authed,
    JsonBody(req): JsonBody<AddTokenRequest>,
) -> ApiResult<J<AddTokenResponse>> {
    ctx.require_kind(Kind::Token, Verb::Create)?;
    let roles = req.roles.iter().map(|r| SystemRole::parse(r)).collect::<Result<Vec<_>>>()?;
    let token = s.auth.add_token(&roles, Duration::from_secs(req.ttl_seconds), req.value, req.labels, &ctx.name()).await?;
    Ok(axum::Json(AddTokenResponse {
        token,
        cluster_name: s.auth.cluster_name().into(),
        web_proxy_addr: s.ping.public_addr.clone(),
        tunnel_addr: s.ping.tunnel_public_addr.clone(),
    }))
}

/// `GET /v1/tokens` (`tctl tokens ls`).
pub async fn list_tokens(State(s): State<Arc<ApiState>>, Authed(ctx): Authed) -> ApiResult<J<Vec<shared::resource::ProvisionToken>>> {
    ctx.require_kind(Kind::Token, Verb::List)?;
    Ok(axum::Json(s.auth.list_tokens().await?))
}

/// `DELETE /v1/tokens/<name>` (`tctl tokens rm`).
pub async fn delete_token(State(s): State<Arc<ApiState>>, Authed(ctx): Authed, Path(name): Path<String>) -> ApiResult<J<Value>> {
    ctx.require_kind(Kind::Token, Verb::Delete)?;
    s.auth.delete_token(&name).await?;
    Ok(axum::Json(json!({})))
}

/// `PATCH /v1/remoteclusters/<name>` (`tctl update rc/<name>`).
pub async fn update_remote_cluster(
    State(s): State<Arc<ApiState>>,
    Authed(ctx): Authed,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<UpdateRemoteClusterRequest>,
) -> ApiResult<J<Value>> {
    ctx.require_kind(Kind::RemoteCluster, Verb::Update)?;
    if req.set_labels.is_none() && req.set_ttl_seconds.is_none() {
        return Err(Error::bad_parameter("use at least one of --set-labels or --set-ttl").into());
    }
    s.auth.update_remote_cluster(&name, req.set_labels, req.set_ttl_seconds.map(Duration::from_secs), &ctx.name()).await?;
    Ok(axum::Json(json!({})))
}

/// `GET /v1/clusters` (`tsh clusters`): this cluster, then the leaves the caller may see.
pub async fn clusters(State(s): State<Arc<ApiState>>, Authed(ctx): Authed) -> ApiResult<J<Vec<ClusterInfo>>> {
    ctx.require_kind(Kind::RemoteCluster, Verb::List)?;
    let mut out = vec![ClusterInfo {
        cluster_name: s.auth.cluster_name().into(),
        status: STATUS_ONLINE.into(),
        cluster_type: "root".into(),
        labels: None,
        selected: false,
    }];
    let leaves = if ctx.is_admin() { s.auth.remote_clusters().await? } else { s.auth.visible_remote_clusters(&ctx.checker).await? };
    for rc in leaves {
        out.push(ClusterInfo {
            cluster_name: rc.metadata.name.clone(),
            status: rc.status.connection.clone(),
            cluster_type: "leaf".into(),
            labels: if rc.metadata.labels.is_empty() { None } else { Some(rc.metadata.labels.clone()) },
            selected: false,
        });
    }
    Ok(axum::Json(out))
}

/// `POST /v1/cas/rotate` (`tctl auth rotate`).
pub async fn rotate(State(s): State<Arc<ApiState>>, Authed(ctx): Authed, JsonBody(req): JsonBody<RotateRequest>) -> ApiResult<J<Value>> {
    ctx.require_kind(Kind::CertAuthority, Verb::Update)?;
    // Both when omitted, as Teleport's tctl does.
    let types = if req.ca_type.is_empty() { vec![CaType::User, CaType::Host] } else { vec![CaType::parse(&req.ca_type)?] };
    if let Some(t) = types.iter().find(|t| !matches!(t, CaType::User | CaType::Host | CaType::Db | CaType::Jwt)) {
        return Err(Error::bad_parameter(format!(
            "rotating the {t} certificate authority is not supported yet; use --type=user, --type=host, --type=db or --type=jwt"
        ))
        .into());
    }
    let grace = if req.grace_period.is_empty() {
        Duration::from_secs(30 * 3600)
    } else {
        shared::timefmt::parse_duration(&req.grace_period).map_err(|e| e.context("--grace-period"))?
    };
    let ask = if req.manual {
        if req.phase.is_empty() {
            return Err(Error::bad_parameter("--manual needs --phase=init|update_clients|update_servers|standby|rollback").into());
        }
        crate::auth::rotation::Ask::Manual { phase: crate::auth::rotation::Phase::parse(&req.phase)?, grace }
    } else {
        if !req.phase.is_empty() {
            return Err(Error::bad_parameter("--phase needs --manual").into());
        }
        crate::auth::rotation::Ask::Auto { grace }
    };
    let cas = s.auth.rotate(&types, ask).await?;
    let rotations: Vec<_> = cas.iter().map(|c| json!({"type": c.spec.ca_type.as_str(), "rotation": c.spec.rotation})).collect();
    Ok(axum::Json(json!({"rotations": rotations})))
}

/// `GET /v1/status/tunnels` (`tctl status`).
pub async fn tunnel_status(State(s): State<Arc<ApiState>>, Authed(ctx): Authed) -> ApiResult<J<TunnelStatusResponse>> {
    ctx.require_kind(Kind::TrustedCluster, Verb::Read)?;
    ctx.require_kind(Kind::RemoteCluster, Verb::List)?;
    let outbound = |root: &str, now| s.agents.get(root).map(|a| a.report(root, now));
    Ok(axum::Json(s.auth.tunnel_status(&outbound).await?))
}

/// Query of `GET /v1/nodes`.
#[derive(Deserialize)]
pub struct NodesQuery {
    /// `k=v,k2=v2` label filter.
    #[serde(default)]
    labels: Option<String>,
}

/// `GET /v1/nodes` (`tsh ls`): only nodes the caller's roles allow.
pub async fn nodes(State(s): State<Arc<ApiState>>, Authed(ctx): Authed, Query(q): Query<NodesQuery>) -> ApiResult<J<Vec<Node>>> {
    ctx.require_kind(Kind::Node, Verb::List)?;
    let filter = match q.labels.as_deref() {
        Some(l) if !l.is_empty() => parse_label_spec(l)?,
        _ => Default::default(),
    };
    let mut nodes: Vec<Node> = s
        .auth
        .services
        .nodes()
        .await?
        .into_iter()
        .filter(|n| ctx.is_admin() || ctx.checker.can_see_node(&n.metadata.labels))
        .filter(|n| filter.iter().all(|(k, v)| n.metadata.labels.get(k) == Some(v)))
        .collect();
    nodes.sort_by(|a, b| a.spec.hostname.cmp(&b.spec.hostname).then(a.metadata.name.cmp(&b.metadata.name)));
    for n in &mut nodes {
        n.metadata.id = None;
    }
    Ok(axum::Json(nodes))
}

/// `POST /v1/nodes/heartbeat` (nodes).
pub async fn node_heartbeat(
    State(s): State<Arc<ApiState>>,
    addr: ClientAddr,
    Authed(ctx): Authed,
    JsonBody(node): JsonBody<Node>,
) -> ApiResult<J<Value>> {
    let host = ctx.require_host(SystemRole::Node)?;
    // A heartbeat from an in-process stream (no address) came through a tunnel, which only
    // tunnel nodes use; they register no address.
    s.auth.upsert_node(node, &host.host_id, addr.0).await?;
    Ok(axum::Json(json!({})))
}

/// `POST /v1/kube/heartbeat`: a Kubernetes service in a process of its own (joined as a node,
/// reached through its tunnel) registers a cluster it serves, as itself.
pub async fn kube_heartbeat(
    State(s): State<Arc<ApiState>>,
    Authed(ctx): Authed,
    JsonBody(mut k): JsonBody<shared::resource::KubeCluster>,
) -> ApiResult<J<Value>> {
    let host = ctx.require_host(SystemRole::Node)?;
    k.spec.tunnel = true;
    s.auth.upsert_kube_cluster(k, &host.host_id).await?;
    Ok(axum::Json(json!({})))
}

/// `POST /v1/apps/heartbeat` (an app service in a process of its own).
pub async fn app_heartbeat(
    State(s): State<Arc<ApiState>>,
    Authed(ctx): Authed,
    JsonBody(mut a): JsonBody<shared::resource::App>,
) -> ApiResult<J<Value>> {
    let host = ctx.require_host(SystemRole::Node)?;
    a.spec.tunnel = true;
    s.auth.upsert_app_server(a, &host.host_id).await?;
    Ok(axum::Json(json!({})))
}

/// `POST /v1/dbs/heartbeat`: a database service in a process of its own (a node, through its
/// tunnel) renews a database it serves.
pub async fn db_heartbeat(
    State(s): State<Arc<ApiState>>,
    Authed(ctx): Authed,
    JsonBody(mut d): JsonBody<shared::resource::Db>,
) -> ApiResult<J<Value>> {
    let host = ctx.require_host(SystemRole::Node)?;
    d.spec.tunnel = true;
    d.spec.hostname = host.nodename.clone();
    s.auth.upsert_db_server(d, &host.host_id).await?;
    Ok(axum::Json(json!({})))
}

/// `POST /v1/dbs/client-cert`: a client certificate for a database user, for a node that serves
/// a database (the one process that connects to databases on users' behalf).
pub async fn db_client_cert(
    State(s): State<Arc<ApiState>>,
    Authed(ctx): Authed,
    JsonBody(req): JsonBody<shared::api::DbClientCertRequest>,
) -> ApiResult<J<shared::api::DbClientCert>> {
    let host = ctx.require_host(SystemRole::Node)?;
    let now = s.auth.clock.now();
    let serves = s
        .auth
        .services
        .list::<shared::resource::Db>(crate::services::keys::DBS)
        .await?
        .iter()
        .any(|d| d.spec.host_id == host.host_id && d.metadata.expires.is_none_or(|e| e > now));
    if !serves {
        return Err(Error::access_denied("only a process that serves a database gets database client certificates").into());
    }
    Ok(axum::Json(s.auth.sign_db_client(&req.user, req.not_after).await?))
}

/// `GET /v1/apps/defined`: the apps an admin defined (an app service's `resources` pick some).
pub async fn defined_apps(State(s): State<Arc<ApiState>>, Authed(ctx): Authed) -> ApiResult<J<Vec<shared::resource::App>>> {
    ctx.require_host(SystemRole::Node)?;
    Ok(axum::Json(s.auth.defined_apps().await?))
}

/// `POST /v1/apps/defined` `{"name", "heartbeat_seconds"}`: the caller serves that defined app.
pub async fn serve_defined_app(State(s): State<Arc<ApiState>>, Authed(ctx): Authed, JsonBody(req): JsonBody<Value>) -> ApiResult<J<Value>> {
    let host = ctx.require_host(SystemRole::Node)?;
    let name = req["name"].as_str().unwrap_or_default();
    let every = Duration::from_secs(req["heartbeat_seconds"].as_u64().unwrap_or(60).clamp(1, 600));
    let server = crate::auth::apps::AppServer { host_id: host.host_id.clone(), hostname: host.nodename.clone(), tunnel: true };
    s.auth.serve_defined_app(name, server, every).await?;
    Ok(axum::Json(json!({})))
}

/// `GET /v1/apps/token`: the id of the key that signs apps' tokens now.
pub async fn app_token_kid(State(s): State<Arc<ApiState>>, Authed(ctx): Authed) -> ApiResult<J<Value>> {
    ctx.require_host(SystemRole::Node)?;
    Ok(axum::Json(json!({"kid": s.auth.app_token_signer().await?.kid()})))
}

/// `POST /v1/apps/token`: signs an app's token for an app service in a process of its own, which
/// decided who the user is and what they may reach (as it decides SSH logins); the key stays here.
pub async fn sign_app_token(State(s): State<Arc<ApiState>>, Authed(ctx): Authed, JsonBody(claims): JsonBody<Value>) -> ApiResult<J<Value>> {
    ctx.require_host(SystemRole::Node)?;
    if !claims.is_object() || claims.to_string().len() > 64 * 1024 {
        return Err(Error::bad_parameter("the token's claims must be a JSON object of at most 64 KiB").into());
    }
    let signer = s.auth.app_token_signer().await?;
    Ok(axum::Json(json!({"kid": signer.kid(), "token": signer.sign(&claims)?})))
}

/// `POST /v1/hosts/renew` (nodes, during a host CA rotation).
pub async fn renew_host(
    State(s): State<Arc<ApiState>>,
    Authed(ctx): Authed,
    JsonBody(req): JsonBody<shared::api::RenewHostRequest>,
) -> ApiResult<J<shared::api::CertsResponse>> {
    let host = ctx.require_host(SystemRole::Node)?.clone();
    Ok(axum::Json(s.auth.renew_host_certs(&host, &req).await?))
}

/// Query of `GET /v1/nodes/authz`.
#[derive(Deserialize)]
pub struct AuthzQuery {
    #[serde(default)]
    after: u64,
}

/// `GET /v1/nodes/authz?after=` (nodes; long-poll).
pub async fn node_authz(State(s): State<Arc<ApiState>>, Authed(ctx): Authed, Query(q): Query<AuthzQuery>) -> ApiResult<J<NodeAuthzBundle>> {
    ctx.require_host(SystemRole::Node)?;
    Ok(axum::Json(s.auth.node_authz_bundle(q.after, Duration::from_secs(25)).await?))
}

/// `POST /v1/certs/user` (`tctl auth sign`).
pub async fn sign_user(
    State(s): State<Arc<ApiState>>,
    Authed(ctx): Authed,
    JsonBody(req): JsonBody<SignUserRequest>,
) -> ApiResult<J<CertsResponse>> {
    ctx.require_kind(Kind::User, Verb::Create)?;
    ctx.require_kind(Kind::CertAuthority, Verb::Read)?;
    let user = s.auth.services.user(&req.username).await?.value;
    let ttl = if req.ttl_seconds == 0 { DEFAULT_USER_TTL } else { Duration::from_secs(req.ttl_seconds) };
    Ok(axum::Json(s.auth.user_certs(&user, &req.keys, ttl, None).await?))
}

/// `GET /v1/dbs` (`tsh db ls`): through a leaf's tunnel, the leaf's mapped roles decide.
pub async fn list_dbs(State(s): State<Arc<ApiState>>, Authed(ctx): Authed) -> ApiResult<J<Vec<shared::api::DbListing>>> {
    if matches!(ctx.caller, Caller::Host(_)) && !ctx.is_admin() {
        return Err(Error::access_denied("only users list databases").into());
    }
    Ok(axum::Json(s.auth.db_listing(&ctx.checker).await?))
}

/// `POST /v1/certs/db` (`tctl auth sign --format=db`).
pub async fn sign_db(
    State(s): State<Arc<ApiState>>,
    Authed(ctx): Authed,
    JsonBody(req): JsonBody<shared::api::SignDbRequest>,
) -> ApiResult<J<shared::api::SignDbResponse>> {
    ctx.require_kind(Kind::CertAuthority, Verb::Read)?;
    ctx.require_kind(Kind::CertAuthority, Verb::Update)?;
    Ok(axum::Json(s.auth.sign_db_server(&req).await?))
}

/// Query of `GET /v1/cas/export`.
#[derive(Deserialize)]
pub struct ExportQuery {
    #[serde(default, rename = "type")]
    ca_type: Option<String>,
}

/// `GET /v1/cas/export?type=user|host` (`tctl auth export`): OpenSSH formats.
pub async fn export_cas(
    State(s): State<Arc<ApiState>>,
    Authed(ctx): Authed,
    Query(q): Query<ExportQuery>,
) -> ApiResult<J<ExportCasResponse>> {
    ctx.require_kind(Kind::CertAuthority, Verb::Read)?;
    let types = match q.ca_type.as_deref() {
        None | Some("") => vec![CaType::User, CaType::Host],
        Some(t) => match CaType::parse(t) {
            Ok(ct @ (CaType::User | CaType::Host)) => vec![ct],
            _ => return Err(Error::bad_parameter(format!("unsupported --type {t:?}; use user or host")).into()),
        },
    };
    let cluster = s.auth.cluster_name().to_string();
    let mut lines = Vec::new();
    for t in types {
        let ca = s.auth.own_ca(t).await?;
        for k in ca.ssh_public_keys() {
            let key = shared::certs::authorized_key(&k);
            lines.push(match t {
                CaType::Host => format!("@cert-authority {cluster},*.{cluster} {key} clustername={cluster}&type=host"),
                _ => format!("{key} clustername={cluster}&type=user"),
            });
        }
    }
    Ok(axum::Json(ExportCasResponse { lines }))
}

/// Query of `GET /v1/events`.
#[derive(Deserialize)]
pub struct EventsQuery {
    #[serde(default)]
    limit: Option<usize>,
}

/// `GET /v1/events`.
pub async fn list_events(State(s): State<Arc<ApiState>>, Authed(ctx): Authed, Query(q): Query<EventsQuery>) -> ApiResult<J<Vec<Value>>> {
    ctx.require("event", Verb::List)?;
    Ok(axum::Json(s.auth.audit.recent(q.limit.unwrap_or(100).min(10_000)).await?))
}

/// `POST /v1/events` (nodes of this cluster).
pub async fn post_events(
    State(s): State<Arc<ApiState>>,
    Authed(ctx): Authed,
    JsonBody(events): JsonBody<Vec<AuditEvent>>,
) -> ApiResult<J<Value>> {
    let host = ctx.require_host(SystemRole::Node)?.clone();
    if events.len() > 100 {
        return Err(Error::bad_parameter("at most 100 events per request").into());
    }
    for mut e in events {
        e.insert("server_id".into(), json!(host.host_id));
        e.remove("cluster_name");
        s.auth.audit.record(e).await;
    }
    Ok(axum::Json(json!({})))
}

/// `POST /v1/map-roles` (`tctl map-roles --cluster`).
pub async fn map_roles(
    State(s): State<Arc<ApiState>>,
    Authed(ctx): Authed,
    JsonBody(req): JsonBody<MapRolesRequest>,
) -> ApiResult<J<MapRolesResponse>> {
    ctx.require_kind(Kind::TrustedCluster, Verb::Read)?;
    let local = s.auth.map_roles(&req.cluster, &req.roles).await?;
    Ok(axum::Json(MapRolesResponse { remote_roles: req.roles, local_roles: local }))
}

/// Query of `GET /v1/hostcas`.
#[derive(Deserialize)]
pub struct HostCasQuery {
    /// One cluster's CA only (none when the caller cannot see it).
    #[serde(default)]
    cluster: Option<String>,
}

/// `GET /v1/hostcas[?cluster=]`: host CAs of this cluster and of the leaves the caller can see,
/// or of the one cluster asked for.
pub async fn host_cas(State(s): State<Arc<ApiState>>, Authed(ctx): Authed, Query(q): Query<HostCasQuery>) -> ApiResult<J<Vec<TrustedCa>>> {
    ctx.require_local_user()?;
    match q.cluster {
        Some(c) => Ok(axum::Json(s.auth.visible_host_ca(&ctx.checker, &c).await?.into_iter().collect())),
        None => Ok(axum::Json(s.auth.visible_host_cas(&ctx.checker).await?)),
    }
}

/// `GET /v1/mfa/devices` (`tsh mfa ls`).
pub async fn mfa_list(State(s): State<Arc<ApiState>>, Authed(ctx): Authed) -> ApiResult<J<Vec<shared::api::MfaDeviceInfo>>> {
    let user = ctx.require_local_user()?;
    Ok(axum::Json(s.auth.mfa_devices(&user.username).await?.iter().map(|d| d.info()).collect()))
}

/// `POST /v1/mfa/devices/begin` (`tsh mfa add`): a user with a device proves it first.
pub async fn mfa_begin(
    State(s): State<Arc<ApiState>>,
    Authed(ctx): Authed,
    JsonBody(req): JsonBody<shared::api::MfaBeginRequest>,
) -> ApiResult<J<shared::api::MfaBeginResponse>> {
    let user = ctx.require_local_user()?.username.clone();
    if !s.auth.auth_preference().await?.second_factor().enabled() {
        return Err(Error::bad_parameter(
            "this cluster has second_factor: off; an administrator can enable otp in its cluster_auth_preference",
        )
        .into());
    }
    if !s.auth.mfa_devices(&user).await?.is_empty() {
        let code = req
            .existing_code
            .as_deref()
            .filter(|c| !c.trim().is_empty())
            .ok_or_else(|| Error::access_denied("adding a device needs a code from a device you already registered"))?;
        s.limiter.check(Class::Mfa, &user)?;
        s.auth.use_code(&user, code, "add a device").await?;
    }
    let (id, secret, otpauth_url) = s.auth.begin_otp_registration(&user, &req.name).await?;
    Ok(axum::Json(shared::api::MfaBeginResponse { id, secret, otpauth_url }))
}

/// `POST /v1/mfa/devices/finish`.
pub async fn mfa_finish(
    State(s): State<Arc<ApiState>>,
    Authed(ctx): Authed,
    JsonBody(req): JsonBody<shared::api::MfaFinishRequest>,
) -> ApiResult<J<shared::api::MfaDeviceInfo>> {
    let user = ctx.require_local_user()?.username.clone();
    s.limiter.check(Class::Mfa, &user)?;
    Ok(axum::Json(s.auth.finish_otp_registration(&user, &req.id, &req.code).await?))
}

/// `DELETE /v1/mfa/devices/<name>` (`tsh mfa rm`), with a current code.
pub async fn mfa_delete(
    State(s): State<Arc<ApiState>>,
    Authed(ctx): Authed,
    Path(name): Path<String>,
    JsonBody(req): JsonBody<shared::api::MfaDeleteRequest>,
) -> ApiResult<J<serde_json::Value>> {
    let user = ctx.require_local_user()?.username.clone();
    let code = req.code;
    if code.trim().is_empty() {
        return Err(Error::access_denied("removing a device needs a current code from one of your devices").into());
    }
    s.limiter.check(Class::Mfa, &user)?;
    s.auth.use_code(&user, &code, "remove a device").await?;
    s.auth.delete_mfa_device(&user, &name).await?;
    Ok(axum::Json(serde_json::json!({})))
}

/// `POST /v1/apps/sessions` (`tsh apps login`, the web launcher): a session and certificate for
/// one app, never outliving the caller's certificate.
pub async fn create_app_session(
    State(s): State<Arc<ApiState>>,
    parts: Parts,
    Authed(ctx): Authed,
    JsonBody(req): JsonBody<CreateAppSessionRequest>,
) -> ApiResult<J<AppSession>> {
    let id = ctx.require_local_user()?;
    if id.route_to_app.is_some() {
        return Err(Error::access_denied("an app certificate cannot create app sessions; use your login certificate").into());
    }
    let user = s.auth.services.user(&id.username).await?.value;
    let not_after = super::conn_info(&parts).cert.as_ref().map(|c| c.not_after).unwrap_or_else(|| s.auth.clock.now().unix_timestamp());
    Ok(axum::Json(s.auth.create_app_session(&user, req, not_after, &id.active_requests).await?))
}

/// `DELETE /v1/apps/sessions/<id>` (`tsh apps logout`): ends one of the caller's app sessions.
pub async fn delete_app_session(State(s): State<Arc<ApiState>>, Authed(ctx): Authed, Path(id): Path<String>) -> ApiResult<J<Value>> {
    let user = ctx.require_local_user()?;
    s.auth.delete_app_session(&id, &user.username).await?;
    Ok(axum::Json(json!({})))
}

/// Whether `ctx` may see request `r`: its requester, a user who may review it, or an admin (or a
/// role rule on `access_request`).
fn sees_request(ctx: &crate::authz::Context, r: &shared::resource::AccessRequest) -> bool {
    if ctx.is_admin() || ctx.require("access_request", Verb::List).is_ok() {
        return true;
    }
    match &ctx.caller {
        Caller::LocalUser(u) => u.username == r.spec.user || ctx.checker.can_review(&r.spec.roles),
        _ => false,
    }
}

/// `POST /v1/requests` (`tsh request create`): a pending request by the caller.
pub async fn create_access_request(
    State(s): State<Arc<ApiState>>,
    Authed(ctx): Authed,
    JsonBody(req): JsonBody<crate::auth::requests::CreateRequest>,
) -> ApiResult<J<shared::resource::AccessRequest>> {
    let id = ctx.require_local_user()?;
    let user = s.auth.services.user(&id.username).await?.value;
    Ok(axum::Json(s.auth.create_access_request(&user, req).await?))
}

/// `GET /v1/requests`: the live requests the caller may see, newest first.
pub async fn list_access_requests(
    State(s): State<Arc<ApiState>>,
    Authed(ctx): Authed,
) -> ApiResult<J<Vec<shared::resource::AccessRequest>>> {
    let all = s.auth.access_requests().await?;
    Ok(axum::Json(all.into_iter().filter(|r| sees_request(&ctx, r)).collect()))
}

/// `GET /v1/requests/<id>`.
pub async fn get_access_request(
    State(s): State<Arc<ApiState>>,
    Authed(ctx): Authed,
    Path(id): Path<String>,
) -> ApiResult<J<shared::resource::AccessRequest>> {
    let r = s.auth.access_request(&id).await?;
    if !sees_request(&ctx, &r) {
        return Err(Error::not_found(format!("access request {id:?} is not found")).into());
    }
    Ok(axum::Json(r))
}

/// `POST /v1/requests/<id>/review`: a user's review (`tsh request review`), or an admin's
/// decision (`tctl request approve|deny`).
pub async fn review_access_request(
    State(s): State<Arc<ApiState>>,
    Authed(ctx): Authed,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<crate::auth::requests::ReviewRequest>,
) -> ApiResult<J<shared::resource::AccessRequest>> {
    if ctx.is_admin() {
        return Ok(axum::Json(s.auth.review_access_request(&id, "admin", true, req).await?));
    }
    let me = ctx.require_local_user()?;
    Ok(axum::Json(s.auth.review_access_request(&id, &me.username, false, req).await?))
}

/// `DELETE /v1/requests/<id>` (`tctl request rm`).
pub async fn delete_access_request(State(s): State<Arc<ApiState>>, Authed(ctx): Authed, Path(id): Path<String>) -> ApiResult<J<Value>> {
    ctx.require("access_request", Verb::Delete)?;
    s.auth.delete_access_request(&id, &ctx.name()).await?;
    Ok(axum::Json(json!({})))
}
