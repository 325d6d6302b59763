//! Unauthenticated endpoints: ping, the trust handshake, password setting and its page.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse};
use shared::api::{
    PingAuth, PingKube, PingProxy, PingResponse, PingSsh, SetPasswordRequest, SetPasswordResponse, ValidateTrustedClusterRequest,
    ValidateTrustedClusterResponse,
};
use shared::error::{Error, Kind};

use super::ratelimit::Class;
use super::{ApiResult, ApiState, ClientAddr, JsonBody};
use crate::auth::trust::TOKEN_REJECTED;

/// `GET /webapi/ping` and `/webapi/find`.
pub async fn ping(State(s): State<Arc<ApiState>>) -> axum::Json<PingResponse> {
    let p = &s.ping;
    let major = shared::version::major(shared::version::VERSION).unwrap_or(1);
    axum::Json(PingResponse {
        auth: PingAuth {
            auth_type: "local".into(),
            second_factor: "off".into(),
            private_key_policy: "none".into(),
            allow_passwordless: false,
            has_motd: false,
            load_all_cas: false,
        },
        proxy: PingProxy {
            ssh: PingSsh {
                listen_addr: p.web_listen_addr.clone(),
                tunnel_listen_addr: p.tunnel_listen_addr.clone(),
                web_listen_addr: p.web_listen_addr.clone(),
                public_addr: p.public_addr.clone(),
                ssh_public_addr: p.public_addr.clone(),
                ssh_tunnel_public_addr: p.tunnel_public_addr.clone(),
            },
            kube: PingKube { enabled: false },
            tls_routing_enabled: p.tls_routing,
        },
        server_version: shared::version::VERSION.into(),
        min_client_version: format!("{}.0.0", major.saturating_sub(1)),
        cluster_name: s.auth.cluster_name().into(),
        automatic_upgrades: false,
    })
}

/// `POST /webapi/trustedclusters/validate`: every access failure looks the same to the caller.
pub async fn validate_trusted_cluster(
    State(s): State<Arc<ApiState>>,
    addr: ClientAddr,
    JsonBody(req): JsonBody<ValidateTrustedClusterRequest>,
) -> ApiResult<axum::Json<ValidateTrustedClusterResponse>> {
    s.limiter.check(Class::Validate, &addr.key())?;
    match s.auth.validate_trusted_cluster(req, &addr.text()).await {
        Ok(r) => Ok(axum::Json(r)),
        Err(e) if e.kind == Kind::AccessDenied => Err(Error::access_denied(TOKEN_REJECTED).into()),
        Err(e) => Err(e.into()),
    }
}

/// `PUT /webapi/users/password/token`.
pub async fn set_password(
    State(s): State<Arc<ApiState>>,
    addr: ClientAddr,
    JsonBody(req): JsonBody<SetPasswordRequest>,
) -> ApiResult<axum::Json<SetPasswordResponse>> {
    s.limiter.check(Class::Password, &addr.key())?;
    let username = s.auth.set_password_with_token(&req.token, &req.password).await?;
    Ok(axum::Json(SetPasswordResponse { username }))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `GET /web/invite/<token>` and `/web/reset/<token>`: the password page.
pub async fn invite_page(State(s): State<Arc<ApiState>>, Path(_token): Path<String>) -> impl IntoResponse {
    Html(include_str!("../../web/invite.html").replace("__CLUSTER__", &escape(s.auth.cluster_name())))
}

/// `GET /`: what this is and how to use it.
pub async fn index(State(s): State<Arc<ApiState>>) -> impl IntoResponse {
    let name = escape(s.auth.cluster_name());
    let addr = escape(&s.ping.public_addr);
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{name}</title></head><body style=\"font-family:sans-serif\">\
         <h1>Teleport cluster {name}</h1><p>Sign in from a terminal:</p><pre>tsh login --proxy={addr} --user=YOUR_USER</pre></body></html>"
    ))
}
