//! Session recordings, kept by the cluster whose node ran the session (a leaf keeps its own).
//!
//! Metadata is a small record under `recordings/<sid>`, written by the node when the session
//! starts and again when it ends; the output is a series of chunks (a second or 256 KiB each)
//! stored apart from the keys (`Backend::put_chunk`: a table of its own in the same database, so
//! every process of an HA cluster reads every recording, and the change feed never carries
//! them). Who may list and play is decided by the `session` rules of the caller's roles here
//! (mapped roles for a root's user): every session, or only their own.

use shared::api::{RecordingChunk, RecordingChunks, SessionRecording};
use shared::error::{Error, Result};
use shared::identity::Caller;
use shared::party::check_session_id as valid_sid;
use shared::rbac::SessionScope;

use super::AuthServer;
use crate::services::keys;
use crate::storage::Op;

/// The largest chunk a node may upload.
pub const MAX_CHUNK: usize = 1024 * 1024;
/// About how much one playback answer carries.
const PAGE: usize = 4 * 1024 * 1024;

/// Whether the caller took part in `r`.
fn own(caller: &Caller, r: &SessionRecording, here: &str) -> bool {
    caller.is_user(&r.user, &r.origin_cluster, here)
}

fn visible(caller: &Caller, scope: SessionScope, r: &SessionRecording, here: &str) -> bool {
    match scope {
        SessionScope::All => true,
        SessionScope::Own => own(caller, r, here),
        SessionScope::None => false,
    }
}

impl AuthServer {
    async fn recording_meta(&self, sid: &str) -> Result<Option<SessionRecording>> {
        let item = self.services.backend.get(&keys::recording(sid)).await?;
        Ok(item.and_then(|i| serde_json::from_slice(&i.value).ok()))
    }

    /// A node records (or updates) the metadata of one of its sessions.
    pub async fn save_recording(&self, mut r: SessionRecording, host_id: &str) -> Result<()> {
        valid_sid(&r.sid)?;
        if r.server_id != host_id {
            return Err(Error::access_denied("a node may only record its own sessions"));
        }
        let key = keys::recording(&r.sid);
        if let Some(old) = self.recording_meta(&r.sid).await?
            && old.server_id != host_id
        {
            return Err(Error::access_denied("this session belongs to another node"));
        }
        r.cluster = self.cluster_name().into();
        let value = serde_json::to_vec(&r).map_err(|e| Error::internal(e.to_string()))?;
        self.services.apply(vec![Op::Put { key, value, expires: None }]).await?;
        Ok(())
    }

    /// A node stores chunk `seq` of its session `sid`.
    pub async fn save_recording_chunk(&self, sid: &str, seq: i64, data: Vec<u8>, host_id: &str) -> Result<()> {
        valid_sid(sid)?;
        if data.len() > MAX_CHUNK || seq < 0 {
            return Err(Error::bad_parameter(format!("a recording chunk is at most {MAX_CHUNK} bytes, numbered from 0")));
        }
        match self.recording_meta(sid).await? {
            Some(m) if m.server_id == host_id => {}
            Some(_) => return Err(Error::access_denied("this session belongs to another node")),
            None => return Err(Error::not_found(format!("session {sid} is not recorded here"))),
        }
        self.services.backend.put_chunk(sid.to_string(), seq, data).await
    }

    /// The recordings `caller` may list (its roles' `session` rules give `scope` for `list`),
    /// newest first.
    pub async fn recordings(&self, caller: &Caller, scope: SessionScope) -> Result<Vec<SessionRecording>> {
        if scope == SessionScope::None {
            return Err(Error::access_denied("your roles may not list recorded sessions here (a `session` rule with list and read)"));
        }
        let here = self.cluster_name().to_string();
        let mut all: Vec<SessionRecording> = self
            .services
            .backend
            .list(keys::RECORDINGS)
            .await?
            .into_iter()
            .filter_map(|i| serde_json::from_slice::<SessionRecording>(&i.value).ok())
            .filter(|r| visible(caller, scope, r, &here))
            .collect();
        all.sort_by(|a, b| b.started.cmp(&a.started).then(a.sid.cmp(&b.sid)));
        Ok(all)
    }

    /// One page of a recording for playback, from chunk `from` (`scope`: what `caller`'s roles
    /// give for `read`).
    pub async fn recording_chunks(&self, caller: &Caller, scope: SessionScope, sid: &str, from: i64) -> Result<RecordingChunks> {
        valid_sid(sid)?;
        let here = self.cluster_name().to_string();
        let not_found = || Error::not_found(format!("session {sid} is not recorded in cluster {here:?} (or your roles may not play it)"));
        let r = self.recording_meta(sid).await?.ok_or_else(not_found)?;
        if !visible(caller, scope, &r, &here) {
            return Err(not_found());
        }
        let page = self.services.backend.get_chunks(sid.to_string(), from.max(0), PAGE).await?;
        use base64::Engine as _;
        let chunks = page
            .chunks
            .into_iter()
            .map(|(seq, data)| RecordingChunk { seq, data: base64::engine::general_purpose::STANDARD.encode(data) })
            .collect();
        Ok(RecordingChunks { recording: r, chunks, more: page.more })
    }
}
