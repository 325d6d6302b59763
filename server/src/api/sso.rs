//! SSO for tsh: the console request (`POST /webapi/<kind>/login/console`) that starts a login
//! and gives tsh the identity provider's URL. The browser's side of every SSO login (the
//! provider's callbacks, the web UI's sign-in, the pages a browser ends on) is the web UI's
//! (`crate::web::sso`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use shared::error::Error;
use shared::sso::{ConsoleRequest, ConsoleResponse};

use super::ratelimit::Class;
use super::{ApiResult, ApiState, ClientAddr, JsonBody};

/// `POST /webapi/{oidc,github,saml}/login/console`.
pub async fn console(
    State(s): State<Arc<ApiState>>,
    Path(kind): Path<String>,
    addr: ClientAddr,
    headers: HeaderMap,
    JsonBody(req): JsonBody<ConsoleRequest>,
) -> ApiResult<axum::Json<ConsoleResponse>> {
    if !matches!(kind.as_str(), "oidc" | "github" | "saml") {
        return Err(Error::not_found(format!("no such endpoint: /webapi/{kind}/login/console")).into());
    }
    s.limiter.check(Class::Login, &addr.key())?;
    let _pass = s.sso_gate.enter().await?;
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or(&s.ping.public_addr).to_string();
    match s.auth.sso_console_login(&kind, &req, &host).await {
        Ok(redirect_url) => Ok(axum::Json(ConsoleResponse { redirect_url })),
        Err(e) => {
            s.auth.sso_failed(&kind, &req.connector_id, &e.message).await;
            Err(e.into())
        }
    }
}
