//! Live sessions others may join (see [`crate::auth::sessions`]): nodes keep their trackers
//! current; users list them and find one to join.

use std::sync::Arc;

use axum::extract::{Path, State};
use serde_json::{Value, json};
use shared::api::SessionTracker;
use shared::resource::token::SystemRole;

use super::{ApiResult, ApiState, Authed, JsonBody};

type J<T> = axum::Json<T>;

/// `POST /v1/sessiontrackers` (nodes): a live session, new or refreshed.
pub async fn upsert(State(s): State<Arc<ApiState>>, Authed(ctx): Authed, JsonBody(t): JsonBody<SessionTracker>) -> ApiResult<J<Value>> {
    let host = ctx.require_host(SystemRole::Node)?;
    s.auth.upsert_session_tracker(t, &host.host_id).await?;
    Ok(axum::Json(json!({})))
}

/// `DELETE /v1/sessiontrackers/<sid>` (nodes): the session ended.
pub async fn remove(State(s): State<Arc<ApiState>>, Authed(ctx): Authed, Path(sid): Path<String>) -> ApiResult<J<Value>> {
    let host = ctx.require_host(SystemRole::Node)?;
    s.auth.remove_session_tracker(&sid, &host.host_id).await?;
    Ok(axum::Json(json!({})))
}

/// `GET /v1/sessiontrackers` (`tsh sessions ls`).
pub async fn list(State(s): State<Arc<ApiState>>, Authed(ctx): Authed) -> ApiResult<J<Vec<SessionTracker>>> {
    Ok(axum::Json(s.auth.session_trackers(&ctx.caller, &ctx.checker, ctx.is_admin()).await?))
}

/// `GET /v1/sessiontrackers/<sid>` (`tsh join`).
pub async fn get_one(State(s): State<Arc<ApiState>>, Authed(ctx): Authed, Path(sid): Path<String>) -> ApiResult<J<SessionTracker>> {
    Ok(axum::Json(s.auth.session_tracker(&ctx.caller, &ctx.checker, ctx.is_admin(), &sid).await?))
}
