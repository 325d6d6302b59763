//! Records a session at the node (Teleport's default `node` mode): the output pumps hand each
//! read to a [`Tap`]; one task per session frames it ([`shared::recording`]), and uploads a chunk
//! every second or every 256 KiB, so a crash loses at most the last second. Memory is bounded:
//! the tap's queue holds at most 64 reads, and a slow upload slows the session rather than
//! piling up output. Past the size limit the recording says so in a note and stops.

use std::sync::Arc;
use std::time::{Duration, Instant};

use shared::api::SessionRecording;
use shared::recording::{FrameKind, encode};
use tokio::sync::{mpsc, oneshot};

use super::NodeAccessPoint;

/// Upload a chunk at this size, or after [`FLUSH_EVERY`].
const CHUNK: usize = 256 * 1024;
/// The longest output stays only in memory.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

enum Msg {
    Output(Vec<u8>),
    Resize(u16, u16),
}

/// The sending end, cloned into every pump.
#[derive(Clone)]
pub struct Tap {
    tx: mpsc::Sender<Msg>,
}

impl Tap {
    /// Records output (waits while the recorder is behind).
    pub async fn output(&self, data: &[u8]) {
        let _ = self.tx.send(Msg::Output(data.to_vec())).await;
    }

    /// Records a terminal resize (dropped rather than waited for).
    pub fn resize(&self, cols: u16, rows: u16) {
        let _ = self.tx.try_send(Msg::Resize(cols, rows));
    }
}

/// Finishes the recording with the exit status, once the session is over.
pub struct Finish {
    done: oneshot::Sender<i32>,
    task: tokio::task::JoinHandle<()>,
}

impl Finish {
    /// Records the exit status and waits (bounded) for the last chunk to be stored.
    pub async fn finish(self, code: i32) {
        let _ = self.done.send(code);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

/// Starts recording `meta` (already filled in by the node), at most `max_bytes` of output.
pub fn start(access: Arc<dyn NodeAccessPoint>, meta: SessionRecording, max_bytes: u64) -> (Tap, Finish) {
    let (tx, rx) = mpsc::channel(64);
    let (done, done_rx) = oneshot::channel();
    let task = tokio::spawn(run(access, meta, max_bytes, rx, done_rx));
    (Tap { tx }, Finish { done, task })
}

struct Upload {
    access: Arc<dyn NodeAccessPoint>,
    sid: String,
    seq: i64,
    failed: bool,
}

impl Upload {
    async fn chunk(&mut self, buf: &mut Vec<u8>) {
        if buf.is_empty() {
            return;
        }
        let data = std::mem::take(buf);
        for attempt in 0..3u64 {
            match self.access.save_chunk(self.sid.clone(), self.seq, data.clone()).await {
                Ok(()) => {
                    self.seq += 1;
                    return;
                }
                Err(e) if attempt == 2 => {
                    if !self.failed {
                        tracing::warn!(sid = %self.sid, error = %e, "cannot store a chunk of the session recording; part of it is lost");
                    }
                    self.failed = true;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200 * (attempt + 1))).await,
            }
        }
        self.seq += 1;
    }
}

struct Session {
    meta: shared::api::SessionRecording,
    max_bytes: u64,
    start: Instant,
    buf: Vec<u8>,
    up: Upload,
}

impl Session {
    fn ms(&self) -> u32 {
        u32::try_from(self.start.elapsed().as_millis()).unwrap_or(u32::MAX)
    }

    async fn take(&mut self, m: Msg) {
        match m {
            Msg::Output(data) => {
                if self.meta.truncated {
                    return;
                }
                let room = self.max_bytes.saturating_sub(self.meta.bytes);
                let take = usize::try_from(room).unwrap_or(usize::MAX).min(data.len());
                let ms = self.ms();
                encode(&mut self.buf, FrameKind::Output, ms, &data[..take]);
                self.meta.bytes += take as u64;
                if take < data.len() {
                    self.meta.truncated = true;
                    let note = format!("recording stopped: the session's output reached the limit of {} bytes", self.max_bytes);
                    encode(&mut self.buf, FrameKind::Note, ms, note.as_bytes());
                    tracing::info!(sid = %self.meta.sid, limit = self.max_bytes, "session recording reached its size limit");
                }
                if self.buf.len() >= CHUNK {
                    self.up.chunk(&mut self.buf).await;
                }
            }
            Msg::Resize(c, r) => {
                let ms = self.ms();
                encode(&mut self.buf, FrameKind::Resize, ms, format!("{c}x{r}").as_bytes());
            }
        }
    }
}

async fn run(
    access: Arc<dyn NodeAccessPoint>,
    meta: SessionRecording,
    max_bytes: u64,
    mut rx: mpsc::Receiver<Msg>,
    mut done: oneshot::Receiver<i32>,
) {
    if let Err(e) = access.save_recording(meta.clone()).await {
        tracing::warn!(sid = %meta.sid, error = %e, "cannot start the session recording");
    }
    let up = Upload { access: access.clone(), sid: meta.sid.clone(), seq: 0, failed: false };
    let mut s = Session { meta, max_bytes, start: Instant::now(), buf: Vec::with_capacity(CHUNK + 64 * 1024), up };
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut open = true;
    // The session's end comes with its exit status, after its output pumps finished; a
    // resize may still hold a sender, so the end does not wait for every sender to go.
    let code = loop {
        tokio::select! {
            m = rx.recv(), if open => match m {
                Some(m) => s.take(m).await,
                None => open = false,
            },
            r = &mut done => {
                while let Ok(m) = rx.try_recv() {
                    s.take(m).await;
                }
                break r.ok();
            }
            _ = tick.tick() => s.up.chunk(&mut s.buf).await,
        }
    };
    s.up.chunk(&mut s.buf).await;
    s.meta.ended = Some(time::OffsetDateTime::now_utc());
    s.meta.exit_code = code;
    s.meta.chunks = u64::try_from(s.up.seq).unwrap_or(0);
    if let Err(e) = access.save_recording(s.meta.clone()).await {
        tracing::warn!(sid = %s.meta.sid, error = %e, "cannot finish the session recording");
    }
}
