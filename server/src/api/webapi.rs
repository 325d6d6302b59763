//! Unauthenticated endpoints: ping, the trust handshake, password setting and its page.

use std::sync::Arc;

use axum::extract::{Path, State};
use shared::api::{
    PingAuth, PingConnector, PingKube, PingProxy, PingResponse, PingSsh, SetPasswordRequest, SetPasswordResponse, UserTokenInfo,
    ValidateTrustedClusterRequest, ValidateTrustedClusterResponse,
};
use shared::error::{Error, Kind};

use super::ratelimit::Class;
use super::{ApiResult, ApiState, ClientAddr, JsonBody};
use crate::auth::trust::TOKEN_REJECTED;

/// The `auth` part of ping: the cluster's preference, with `connector` (or the default one)
/// named when it is an SSO connector.
async fn ping_auth(s: &ApiState, connector: Option<&str>) -> ApiResult<PingAuth> {
    let pref = s.auth.auth_preference().await?;
    let mut auth = PingAuth {
        auth_type: "local".into(),
        second_factor: pref.spec.second_factor.clone(),
        local: Some(PingConnector::default()),
        oidc: None,
        github: None,
        saml: None,
        private_key_policy: "none".into(),
        allow_passwordless: false,
        has_motd: false,
        load_all_cas: false,
    };
    let chosen = match connector {
        Some("local") | Some("passwordless") => None,
        Some(name) => Some(s.auth.find_connector(name).await?.ok_or_else(|| Error::not_found(format!("connector {name:?} is not found")))?),
        None => match s.auth.default_connector().await? {
            Some((kind, name)) => s.auth.find_connector(&name).await?.filter(|c| c.kind == kind),
            None => None,
        },
    };
    if let Some(c) = chosen {
        let display = c.spec.get("display").and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let pc = Some(PingConnector { name: c.metadata.name.clone(), display });
        auth.auth_type = c.kind.clone();
        match c.kind.as_str() {
            "oidc" => auth.oidc = pc,
            "github" => auth.github = pc,
            _ => auth.saml = pc,
        }
    }
    Ok(auth)
}

/// `GET /webapi/ping` and `/webapi/find`.
pub async fn ping(State(s): State<Arc<ApiState>>) -> ApiResult<axum::Json<PingResponse>> {
    Ok(axum::Json(ping_response(&s, ping_auth(&s, None).await?)))
}

/// `GET /.well-known/jwks.json`: the public keys of this cluster's `jwt` CA, which applications
/// verify the `teleport-jwt-assertion` they receive with (RS256; `kid` = base64url of the first
/// 16 bytes of the SHA-256 of the key).
pub async fn jwks(State(s): State<Arc<ApiState>>) -> ApiResult<axum::Json<serde_json::Value>> {
    let ca = s.auth.own_ca(shared::resource::CaType::Jwt).await?;
    let mut keys = Vec::new();
    for set in [&ca.spec.active_keys, &ca.spec.additional_trusted_keys] {
        for k in &set.jwt {
            let pem = String::from_utf8_lossy(&k.public_key);
            if let Ok(jwk) = shared::jwt::jwk(&pem) {
                keys.push(jwk);
            }
        }
    }
    Ok(axum::Json(serde_json::json!({ "keys": keys })))
}

/// `GET /webapi/ping/<connector>` (`tsh login --auth=NAME`).
pub async fn ping_connector(State(s): State<Arc<ApiState>>, Path(connector): Path<String>) -> ApiResult<axum::Json<PingResponse>> {
    Ok(axum::Json(ping_response(&s, ping_auth(&s, Some(&connector)).await?)))
}

fn ping_response(s: &ApiState, auth: PingAuth) -> PingResponse {
    let p = &s.ping;
    let major = shared::version::major(shared::version::VERSION).unwrap_or(1);
    PingResponse {
        auth,
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
            db: shared::api::PingDb { postgres_public_addr: p.postgres_public_addr.clone().unwrap_or_default() },
            tls_routing_enabled: p.tls_routing,
        },
        server_version: shared::version::VERSION.into(),
        min_client_version: format!("{}.0.0", major.saturating_sub(1)),
        cluster_name: s.auth.cluster_name().into(),
        automatic_upgrades: false,
    }
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
        Err(e) if e.kind == Kind::AccessDenied => Err(Error::access_denied(TOKEN_REJECTED).with_code(shared::Code::TokenRejected).into()),
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
    let username = s.auth.set_password_with_token(&req.token, &req.password, req.second_factor_token.as_deref()).await?;
    Ok(axum::Json(SetPasswordResponse { username }))
}

/// `GET /webapi/users/password/token/<token>`: whose link it is, and the TOTP device to
/// register (`otpauth://` URL and QR code) when the cluster has a second factor.
pub async fn user_token_info(
    State(s): State<Arc<ApiState>>,
    addr: ClientAddr,
    Path(token): Path<String>,
) -> ApiResult<axum::Json<UserTokenInfo>> {
    s.limiter.check(Class::Password, &addr.key())?;
    Ok(axum::Json(s.auth.user_token_info(&token).await?))
}
