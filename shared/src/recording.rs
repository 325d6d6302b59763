//! Session recordings: the frame codec the node writes and `tsh play` reads.
//!
//! A recording is a series of chunks (each uploaded as the session runs, so a crash loses at
//! most the last one); a chunk is a series of frames:
//!
//! ```text
//!   kind u8 | ms u32 (since the session started, big-endian) | len u32 | len bytes
//!   kind 1: output   2: resize ("COLSxROWS")   3: note (the recorder's own words)
//! ```
//! Decoding stops at the first incomplete frame (the tail a crash may leave) and never panics.

use serde::Serialize;

/// What a frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FrameKind {
    /// Bytes the session printed.
    Output,
    /// The terminal's new size.
    Resize,
    /// A note from the recorder (e.g. the size limit was reached).
    Note,
}

impl FrameKind {
    fn code(self) -> u8 {
        match self {
            FrameKind::Output => 1,
            FrameKind::Resize => 2,
            FrameKind::Note => 3,
        }
    }

    fn from_code(c: u8) -> Option<FrameKind> {
        match c {
            1 => Some(FrameKind::Output),
            2 => Some(FrameKind::Resize),
            3 => Some(FrameKind::Note),
            _ => None,
        }
    }
}

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// What it is.
    pub kind: FrameKind,
    /// Milliseconds since the session started.
    pub ms: u32,
    /// Its bytes.
    pub data: Vec<u8>,
}

/// The frame header's size.
pub const HEADER: usize = 9;

/// Appends a frame to `buf`.
pub fn encode(buf: &mut Vec<u8>, kind: FrameKind, ms: u32, data: &[u8]) {
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    buf.push(kind.code());
    buf.extend_from_slice(&ms.to_be_bytes());
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(&data[..len as usize]);
}

/// Decodes the complete frames of `bytes` (unknown kinds are skipped).
pub fn decode(bytes: &[u8]) -> Vec<Frame> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while rest.len() >= HEADER {
        let kind = rest[0];
        let ms = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]);
        let len = u32::from_be_bytes([rest[5], rest[6], rest[7], rest[8]]) as usize;
        let Some(data) = rest.get(HEADER..HEADER.saturating_add(len)) else { break };
        if let Some(kind) = FrameKind::from_code(kind) {
            out.push(Frame { kind, ms, data: data.to_vec() });
        }
        rest = &rest[HEADER + len..];
    }
    out
}

/// `tsh recordings ls` / `tctl recordings ls` as a table.
pub fn table_of(recs: &[crate::api::SessionRecording]) -> String {
    let rows: Vec<Vec<String>> = recs
        .iter()
        .map(|r| {
            let kind = if r.interactive { "interactive".to_string() } else { format!("exec: {}", r.command.clone().unwrap_or_default()) };
            let ended = match (r.ended, r.exit_code) {
                (Some(e), Some(c)) => format!("{}s, exit {c}", (e - r.started).whole_seconds()),
                (Some(e), None) => format!("{}s", (e - r.started).whole_seconds()),
                (None, _) => "not ended (running, or the node stopped)".into(),
            };
            vec![
                r.sid.clone(),
                kind,
                format!("{}@{}", r.user, r.origin_cluster),
                r.login.clone(),
                r.server_hostname.clone(),
                crate::timefmt::rfc3339_secs(r.started),
                ended,
                if r.truncated { format!("{} (truncated)", r.bytes) } else { r.bytes.to_string() },
            ]
        })
        .collect();
    crate::output::table(&["ID", "Type", "User", "Login", "Node", "Started", "Duration", "Bytes"], &rows)
}

/// How `tsh play` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayFormat {
    /// The output, with the session's timing.
    Pty,
    /// The output at once.
    Text,
    /// Every frame as JSON, with its time.
    Json,
}

impl std::str::FromStr for PlayFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pty" => Ok(PlayFormat::Pty),
            "text" => Ok(PlayFormat::Text),
            "json" => Ok(PlayFormat::Json),
            _ => Err(format!("unknown format {s:?}: use pty, text or json")),
        }
    }
}

/// Plays recording `sid` from `api` to `out`, fetching a page at a time (memory stays bounded
/// whatever the recording's size). `speed` divides the pauses of the pty format.
pub async fn play(
    api: &crate::client::ApiClient,
    sid: &str,
    format: PlayFormat,
    speed: f64,
    out: &mut dyn std::io::Write,
) -> crate::error::Result<crate::api::SessionRecording> {
    use base64::Engine as _;
    let io = |e: std::io::Error| crate::error::Error::connection_problem(format!("writing the recording: {e}"));
    let (mut from, mut last_ms, mut first) = (0i64, 0u32, true);
    let started = std::time::Instant::now();
    if format == PlayFormat::Json {
        out.write_all(b"[").map_err(io)?;
    }
    loop {
        let page: crate::api::RecordingChunks =
            api.get(&format!("{}/{}/chunks?from={from}", crate::api::path::RECORDINGS, crate::client::encode_segment(sid))).await?;
        for c in &page.chunks {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(c.data.as_bytes())
                .map_err(|_| crate::error::Error::bad_parameter("the recording holds a chunk that is not base64"))?;
            for f in decode(&bytes) {
                match format {
                    PlayFormat::Json => {
                        let item = serde_json::json!({
                            "event": match f.kind { FrameKind::Output => "print", FrameKind::Resize => "resize", FrameKind::Note => "note" },
                            "ms": f.ms,
                            "data": String::from_utf8_lossy(&f.data),
                        });
                        let sep = if first { "\n" } else { ",\n" };
                        first = false;
                        write!(out, "{sep}{item}").map_err(io)?;
                    }
                    PlayFormat::Text | PlayFormat::Pty => {
                        if format == PlayFormat::Pty && f.ms > last_ms {
                            // Wait until this frame's time (scaled), measured from the start, so
                            // that the pauses do not add up errors.
                            let due = std::time::Duration::from_millis(u64::from(f.ms)).div_f64(speed.max(0.01));
                            if let Some(wait) = due.checked_sub(started.elapsed()) {
                                out.flush().map_err(io)?;
                                tokio::time::sleep(wait).await;
                            }
                        }
                        last_ms = last_ms.max(f.ms);
                        match f.kind {
                            FrameKind::Output => out.write_all(&f.data).map_err(io)?,
                            FrameKind::Note => write!(out, "\r\n[{}]\r\n", String::from_utf8_lossy(&f.data)).map_err(io)?,
                            FrameKind::Resize => {}
                        }
                    }
                }
            }
            from = c.seq + 1;
        }
        if !page.more || page.chunks.is_empty() {
            if format == PlayFormat::Json {
                out.write_all(b"\n]\n").map_err(io)?;
            }
            out.flush().map_err(io)?;
            return Ok(page.recording);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_a_torn_tail_is_dropped() {
        let mut b = Vec::new();
        encode(&mut b, FrameKind::Output, 0, b"hello\r\n");
        encode(&mut b, FrameKind::Resize, 1500, b"120x40");
        encode(&mut b, FrameKind::Note, 2000, b"");
        let frames = decode(&b);
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[0], Frame { kind: FrameKind::Output, ms: 0, data: b"hello\r\n".to_vec() });
        assert_eq!((frames[1].kind, frames[1].ms), (FrameKind::Resize, 1500));
        for cut in 0..b.len() {
            let n = decode(&b[..cut]).len();
            assert!(n <= 3);
        }
        assert_eq!(decode(&b[..b.len() - 1]).len(), 2, "an incomplete last frame is not returned");
        let mut junk = b.clone();
        junk[0] = 99;
        assert_eq!(decode(&junk).len(), 2, "unknown kinds are skipped");
        assert!(decode(&[1, 0, 0, 0, 0, 255, 255, 255, 255]).is_empty(), "a huge length is not trusted");
    }
}
