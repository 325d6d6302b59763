//! Reverse tunnels, as transport: how a leaf cluster (or a node) with no inbound port is
//! reached. This room knows targets as data and never imports the proxy, the API or the web.
//!
//! ```text
//!   leaf proxy / node (agent)                         root proxy / own proxy (server)
//!   ---------------------------  TCP + SSH  ------->  web port, sniffed "SSH-"
//!   auth: host certificate  ----------------------->  server.rs: CA of x-teleport-authority,
//!                                                     role, remote_cluster
//!   tcpip-forward "teleport-tunnel" --------------->  registry.rs [Cluster(leaf) | Node(uuid)]
//!   session + subsystem "teleport-heartbeat"          wire::Heartbeat lines:
//!        ping <time>  every keep_alive_interval --->  last_heartbeat, status online
//!        <-------------------------------------------  pong, proxies {..}, cas [..],
//!                                                      keepalive {..}, reconnect
//!   <---- forwarded-tcpip wire::TunnelRequest          (one channel per connection:
//!         {target: api | ssh | locks | node:<host:port>, origin}
//!   answers a wire::Status line ("OK" | "ERR {kind, code, message}"), then bytes flow
//! ```
//! The agent half (`agent.rs`, one tunnel; `pool.rs`, one to every proxy) runs in the leaf proxy
//! and in tunnel nodes; the server half (`server.rs`) in the proxy, called by its SSH handler.
//! `peer.rs` reaches tunnels other proxies hold; `proxies.rs` is the cluster's proxy registry;
//! `vouch.rs` carries an origin to a node dialled directly. A leaf can only heartbeat: every
//! channel it tries to open is refused.

pub mod agent;
pub mod killable;
pub mod peer;
pub mod pool;
pub mod presence;
pub mod proxies;
pub mod registry;
pub mod server;
pub mod state;
pub mod vouch;
pub mod wire;

use std::time::Duration;

use shared::error::{Error, Result};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub use registry::{TunnelEntry, TunnelRegistry, close_connection};
pub use wire::{
    HEARTBEAT_SUBSYSTEM, MAX_DISCOVERY_LINE, MAX_HEARTBEAT_LINE, MAX_REQUEST_LEN, Origin, Status, Target, TunnelKey, TunnelRequest,
};

/// This cluster's CAs of `types`, public parts only, as a heartbeat message.
pub async fn cas_message(auth: &crate::auth::AuthServer, types: &[shared::resource::CaType]) -> Option<wire::Heartbeat> {
    let mut cas = Vec::new();
    for &t in types {
        cas.push(auth.own_ca(t).await.ok()?.without_secrets());
    }
    Some(wire::Heartbeat::Cas(cas))
}

/// Reads one `\n`-terminated line of at most `max` bytes; the limit applies while reading, so
/// a peer cannot make us buffer more. `Ok(None)` at a clean end of stream.
pub async fn read_line_bounded<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R, max: usize) -> std::io::Result<Option<String>> {
    use tokio::io::AsyncBufReadExt;
    let mut line = Vec::new();
    let mut limited = r.take(max as u64 + 1);
    let n = limited.read_until(b'\n', &mut line).await?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() != Some(&b'\n') {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("line longer than {max} bytes")));
    }
    line.pop();
    Ok(Some(String::from_utf8_lossy(&line).into_owned()))
}

/// Lines of at most `max` bytes from `r`, read so that [`Lines::next`] may be cancelled (in a
/// `select!`) without losing what it had read: the bytes wait in its buffer for the next call.
/// One task can so wait for a line and for other events, with no reader task and channel
/// beside it (a tunnel server holds one of these per leaf).
pub struct Lines<R> {
    r: R,
    buf: Vec<u8>,
    max: usize,
}

impl<R: AsyncRead + Unpin> Lines<R> {
    /// Lines from `r`.
    pub fn new(r: R, max: usize) -> Lines<R> {
        Lines { r, buf: Vec::new(), max }
    }

    /// The next line without its `\n`; `Ok(None)` at a clean end of stream.
    pub async fn next(&mut self) -> std::io::Result<Option<String>> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                if i > self.max {
                    return Err(self.too_long());
                }
                let line = String::from_utf8_lossy(&self.buf[..i]).into_owned();
                self.buf.drain(..=i);
                if self.buf.is_empty() && self.buf.capacity() > 1024 {
                    self.buf = Vec::new(); // a large message once does not stay allocated
                }
                return Ok(Some(line));
            }
            if self.buf.len() > self.max {
                return Err(self.too_long());
            }
            let mut chunk = [0u8; 512];
            // Cancel-safe: a read that has not completed has taken nothing.
            let n = self.r.read(&mut chunk).await?;
            if n == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the stream ended inside a line"))
                };
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn too_long(&self) -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("line longer than {} bytes", self.max))
    }
}

/// Aborts the task when dropped (a dropped `JoinHandle` would let it run on).
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What [`splice`] moves at once, each way: one SSH packet of [`shared::tuning::MAX_PACKET`]
/// (64 KiB bought nothing more, and 200 sessions' buffers then raised the proxy's memory
/// high-water mark at every storm of the load test).
const SPLICE_BUFFER: usize = shared::tuning::MAX_PACKET as usize;

/// Joins a client's stream to a target's when they carry one connection (an SSH session end to
/// end), until the connection is over. When the target side ends or dies (a node exits, a tunnel
/// is dropped) the client is told at once. When the client half-closes, the target gets EOF and
/// its remaining output still reaches the client. `copy_bidirectional` would instead wait for
/// both directions, so a dead tunnel left the user's session hanging until they hung up.
pub async fn splice<C, T>(client: C, target: T)
where
    C: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let (client_rd, mut client_wr) = tokio::io::split(client);
    let (target_rd, mut target_wr) = tokio::io::split(target);
    // Whole SSH packets in, whole packets out: `tokio::io::copy`'s 8 KiB buffer cut every
    // 32 KiB packet into four reads and four writes, each a channel message of its own.
    let mut client_rd = tokio::io::BufReader::with_capacity(SPLICE_BUFFER, client_rd);
    let mut target_rd = tokio::io::BufReader::with_capacity(SPLICE_BUFFER, target_rd);
    let upstream = async {
        if tokio::io::copy_buf(&mut client_rd, &mut target_wr).await.is_ok() {
            let _ = target_wr.shutdown().await;
            // The target's answer decides when the connection is over.
            std::future::pending::<()>().await;
        }
    };
    let downstream = async {
        let _ = tokio::io::copy_buf(&mut target_rd, &mut client_wr).await;
        let _ = client_wr.shutdown().await;
    };
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
    }
}

/// [`splice`] with the client's side an SSH channel of this process (a user's channel on the
/// proxy), read and written as channel messages ([`shared::sshclient::relay`]): the same ending,
/// without the two copies a `ChannelStream` behind a `BufReader` made on this hop.
pub async fn splice_channel<S, T>(channel: russh::Channel<S>, target: T)
where
    S: From<(russh::ChannelId, russh::ChannelMsg)> + Send + Sync + 'static,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let (rd, wr) = tokio::io::split(target);
    shared::sshclient::relay(channel, rd, wr, shared::sshclient::Ending::StreamEnds).await;
}

/// Writes a status line.
pub async fn write_status<S: AsyncWrite + Unpin>(s: &mut S, status: &Status) -> std::io::Result<()> {
    s.write_all(format!("{}\n", status.encode()).as_bytes()).await?;
    s.flush().await
}

/// Writes the success status line.
pub async fn write_ok<S: AsyncWrite + Unpin>(s: &mut S) -> std::io::Result<()> {
    write_status(s, &Status::Ok).await
}

/// Writes a failure status line carrying `e` (its kind, code and message).
pub async fn write_err<S: AsyncWrite + Unpin>(s: &mut S, e: &Error) -> std::io::Result<()> {
    write_status(s, &Status::Err(e.clone())).await
}

/// Reads a status line: `Ok` for success, the far end's error otherwise.
pub async fn read_status<S: AsyncRead + Unpin>(s: &mut S) -> Result<()> {
    read_answer(s).await?
}

/// Reads a status line: `Err` if none came (the stream broke, timed out or is not speaking our
/// protocol), `Ok(answer)` with what the far end said. Byte by byte: what follows the line is
/// the connection's, and must stay in the stream.
pub async fn read_answer<S: AsyncRead + Unpin>(s: &mut S) -> Result<Result<()>> {
    let mut line = Vec::with_capacity(64);
    let read = async {
        loop {
            let mut b = [0u8; 1];
            let n = s.read(&mut b).await.map_err(|e| Error::connection_problem(format!("tunnel read: {e}")))?;
            if n == 0 {
                return Err(Error::connection_problem("the tunnel closed the connection"));
            }
            if b[0] == b'\n' {
                return Ok(());
            }
            line.push(b[0]);
            if line.len() > wire::MAX_STATUS_LEN {
                return Err(Error::connection_problem("malformed tunnel answer"));
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .map_err(|_| Error::connection_problem("the tunnel did not answer in time"))??;
    match Status::decode(&String::from_utf8_lossy(&line))? {
        Status::Ok => Ok(Ok(())),
        Status::Err(e) => Ok(Err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn status_lines_round_trip_and_leave_the_rest_in_the_stream() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        write_ok(&mut a).await.unwrap();
        let refused = Error::not_found("node \"x\" is not registered\nin cluster").with_code(shared::Code::NodeNotFound);
        write_err(&mut a, &refused).await.unwrap();
        a.write_all(b"payload").await.unwrap();
        assert!(read_status(&mut b).await.is_ok());
        let e = read_status(&mut b).await.unwrap_err();
        assert_eq!((e.kind, e.code), (shared::Kind::NotFound, Some(shared::Code::NodeNotFound)));
        assert_eq!(e.message, "node \"x\" is not registeredin cluster");
        let mut rest = [0u8; 7];
        b.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, b"payload");
    }

    #[tokio::test]
    async fn a_line_is_bounded_while_it_is_read() {
        let (mut a, b) = tokio::io::duplex(1 << 20);
        let mut r = tokio::io::BufReader::new(b);
        a.write_all(b"ping 1\n").await.unwrap();
        assert_eq!(read_line_bounded(&mut r, 16).await.unwrap().as_deref(), Some("ping 1"));
        // A line that never ends is cut at the limit, not read to its end.
        a.write_all(&[b'x'; 100_000]).await.unwrap();
        assert!(read_line_bounded(&mut r, 256).await.is_err());
        drop(a);
    }

    #[tokio::test]
    async fn lines_lose_nothing_when_a_wait_is_cancelled_and_stay_bounded() {
        let (mut a, b) = tokio::io::duplex(1 << 20);
        let mut lines = Lines::new(b, 256);
        a.write_all(b"pi").await.unwrap();
        // Half a line, then something else wins the select: the half stays.
        tokio::select! {
            _ = lines.next() => panic!("no line is complete yet"),
            _ = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
        }
        a.write_all(b"ng 1\npong\n").await.unwrap();
        assert_eq!(lines.next().await.unwrap().as_deref(), Some("ping 1"));
        assert_eq!(lines.next().await.unwrap().as_deref(), Some("pong"));
        let mut long = vec![b'y'; 300];
        long.push(b'\n');
        a.write_all(&long).await.unwrap();
        assert!(lines.next().await.is_err(), "a whole line longer than the limit, even in one read");
        let (mut a, b) = tokio::io::duplex(1 << 20);
        let mut lines = Lines::new(b, 256);
        a.write_all(&[b'x'; 100_000]).await.unwrap();
        assert!(lines.next().await.is_err(), "a line that never ends is cut near the limit");
        assert!(lines.buf.len() <= 256 + 512, "read no further than the limit and one chunk");
        let (mut a, b) = tokio::io::duplex(64);
        let mut lines = Lines::new(b, 256);
        a.write_all(b"last\n").await.unwrap();
        drop(a);
        assert_eq!(lines.next().await.unwrap().as_deref(), Some("last"));
        assert_eq!(lines.next().await.unwrap(), None, "a clean end");
    }

    #[tokio::test]
    async fn garbage_status_is_refused() {
        let (mut a, mut b) = tokio::io::duplex(4096);
        a.write_all(&[b'x'; 3000]).await.unwrap();
        assert!(read_status(&mut b).await.is_err());
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(b"HELLO\n").await.unwrap();
        assert!(read_status(&mut b).await.is_err());
        drop(a);
    }
}
