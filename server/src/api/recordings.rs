//! Session recordings: nodes upload as the session runs; users list and play what their roles
//! allow (see [`crate::auth::recordings`]).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use shared::api::{RecordingChunk, RecordingChunks, SessionRecording};
use shared::error::Error;
use shared::resource::token::SystemRole;

use super::{ApiResult, ApiState, Authed, JsonBody};

type J<T> = axum::Json<T>;

/// `POST /v1/recordings` (nodes): a session's metadata.
pub async fn save(State(s): State<Arc<ApiState>>, Authed(ctx): Authed, JsonBody(r): JsonBody<SessionRecording>) -> ApiResult<J<Value>> {
    let host = ctx.require_host(SystemRole::Node)?;
    s.auth.save_recording(r, &host.host_id).await?;
    Ok(axum::Json(json!({})))
}

/// `POST /v1/recordings/<sid>/chunks` (nodes): one chunk.
pub async fn save_chunk(
    State(s): State<Arc<ApiState>>,
    Authed(ctx): Authed,
    Path(sid): Path<String>,
    JsonBody(c): JsonBody<RecordingChunk>,
) -> ApiResult<J<Value>> {
    let host = ctx.require_host(SystemRole::Node)?;
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD
        .decode(c.data.as_bytes())
        .map_err(|_| Error::bad_parameter("a recording chunk must be base64"))?;
    s.auth.save_recording_chunk(&sid, c.seq, data, &host.host_id).await?;
    Ok(axum::Json(json!({})))
}

/// `GET /v1/recordings` (`tsh recordings ls`).
pub async fn list(State(s): State<Arc<ApiState>>, Authed(ctx): Authed) -> ApiResult<J<Vec<SessionRecording>>> {
    Ok(axum::Json(s.auth.recordings(&ctx.caller, ctx.session_scope("list")).await?))
}

/// Query of `GET /v1/recordings/<sid>/chunks`.
#[derive(Deserialize)]
pub struct FromQuery {
    #[serde(default)]
    from: i64,
}

/// `GET /v1/recordings/<sid>/chunks?from=N` (`tsh play`).
pub async fn chunks(
    State(s): State<Arc<ApiState>>,
    Authed(ctx): Authed,
    Path(sid): Path<String>,
    Query(q): Query<FromQuery>,
) -> ApiResult<J<RecordingChunks>> {
    Ok(axum::Json(s.auth.recording_chunks(&ctx.caller, ctx.session_scope("read"), &sid, q.from).await?))
}
