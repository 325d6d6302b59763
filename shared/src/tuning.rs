//! The transport settings every SSH hop and TCP socket uses, in one place, so that the server,
//! the tunnel agent and `tsh` cannot drift apart, and so that `bench/run.sh` can switch each one
//! off in turn to measure what it buys.
//!
//! The defaults are the product. Five environment variables override them for benchmarking and
//! tests only;
//! they are unstable, undocumented for users, and a process refuses to start with a value it
//! does not understand ([`check`]):
//!
//! | variable | values | default |
//! |---|---|---|
//! | `TELEPORT_UNSTABLE_SSH_CIPHER_ORDER` | `aes-gcm`, `chacha20` | `aes-gcm` |
//! | `TELEPORT_UNSTABLE_SSH_WINDOW` | channel window in bytes, 32768 to 1073741824 | 2097152 |
//! | `TELEPORT_UNSTABLE_TCP_NODELAY` | `true`, `false` | `true` |
//! | `TELEPORT_UNSTABLE_SSH_KEEPALIVE` | seconds between a server's probes of a silent client, 1 to 3600 | 30 |
//! | `TELEPORT_UNSTABLE_SSH_READAHEAD` | `true`, `false`: [`ReadAhead`] under every SSH transport | `true` |

use std::borrow::Cow;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use russh::cipher;
use russh::keys::ssh_key::Algorithm;

/// AES-GCM first: with AES-NI, ChaCha20 first moves ~0.8 × the bytes through a leaf (`bench/run.sh`).
const AES_FIRST: &[cipher::Name] = &[cipher::AES_256_GCM, cipher::AES_128_GCM, cipher::CHACHA20_POLY1305];
/// The order OpenSSH prefers, kept for comparison.
const CHACHA_FIRST: &[cipher::Name] = &[cipher::CHACHA20_POLY1305, cipher::AES_256_GCM, cipher::AES_128_GCM];

/// Channel window: 64 KiB windows halve throughput through a leaf (`bench/run.sh`).
const DEFAULT_WINDOW: u32 = 2 * 1024 * 1024;
const WINDOW_RANGE: std::ops::RangeInclusive<u32> = 32 * 1024..=1024 * 1024 * 1024;

/// SSH maximum packet size.
pub const MAX_PACKET: u32 = 32768;

const CIPHER_VAR: &str = "TELEPORT_UNSTABLE_SSH_CIPHER_ORDER";
const WINDOW_VAR: &str = "TELEPORT_UNSTABLE_SSH_WINDOW";
const NODELAY_VAR: &str = "TELEPORT_UNSTABLE_TCP_NODELAY";
const KEEPALIVE_VAR: &str = "TELEPORT_UNSTABLE_SSH_KEEPALIVE";
const READAHEAD_VAR: &str = "TELEPORT_UNSTABLE_SSH_READAHEAD";

/// A server probes a silent SSH peer this often and drops it after 3 unanswered probes.
const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(30);
const KEEPALIVE_RANGE: std::ops::RangeInclusive<u64> = 1..=3600;

/// The transport settings in force for this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// SSH ciphers, most preferred first.
    pub ciphers: &'static [cipher::Name],
    /// SSH channel window in bytes.
    pub window: u32,
    /// `TCP_NODELAY` on every socket.
    pub nodelay: bool,
    /// How often an SSH server probes a silent client (3 unanswered probes drop it).
    pub keepalive: Duration,
    /// [`ReadAhead`] under every SSH transport.
    pub readahead: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning { ciphers: AES_FIRST, window: DEFAULT_WINDOW, nodelay: true, keepalive: DEFAULT_KEEPALIVE, readahead: true }
    }
}

impl Tuning {
    /// Reads the overrides through `var`; the first value it cannot use is the error.
    fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Tuning, String> {
        let mut t = Tuning::default();
        if let Some(v) = var(CIPHER_VAR) {
            t.ciphers = match v.as_str() {
                "aes-gcm" => AES_FIRST,
                "chacha20" => CHACHA_FIRST,
                _ => return Err(format!("{CIPHER_VAR}={v:?} is not understood: use aes-gcm or chacha20, or unset it")),
            };
        }
        if let Some(v) = var(WINDOW_VAR) {
            t.window = v.parse().ok().filter(|w| WINDOW_RANGE.contains(w)).ok_or_else(|| {
                format!(
                    "{WINDOW_VAR}={v:?} is not a window size: use a number of bytes from {} to {}, or unset it",
                    WINDOW_RANGE.start(),
                    WINDOW_RANGE.end()
                )
            })?;
        }
        let flag = |name: &str, v: String| match v.as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(format!("{name}={v:?} is not understood: use true or false, or unset it")),
        };
        if let Some(v) = var(NODELAY_VAR) {
            t.nodelay = flag(NODELAY_VAR, v)?;
        }
        if let Some(v) = var(READAHEAD_VAR) {
            t.readahead = flag(READAHEAD_VAR, v)?;
        }
        if let Some(v) = var(KEEPALIVE_VAR) {
            let secs = v.parse().ok().filter(|s| KEEPALIVE_RANGE.contains(s)).ok_or_else(|| {
                format!(
                    "{KEEPALIVE_VAR}={v:?} is not an interval: use a number of seconds from {} to {}, or unset it",
                    KEEPALIVE_RANGE.start(),
                    KEEPALIVE_RANGE.end()
                )
            })?;
            t.keepalive = Duration::from_secs(secs);
        }
        Ok(t)
    }

    /// The russh algorithm preferences: our cipher order, russh's defaults for the rest.
    pub fn preferred(&self) -> russh::Preferred {
        russh::Preferred { cipher: Cow::Borrowed(self.ciphers), ..russh::Preferred::DEFAULT }
    }
}

/// The SSH client configuration of every hop that dials (`tsh`, tunnel agents, proxies): it asks
/// servers for their Ed25519 host certificate and pings every `keepalive` when given.
pub fn client_config(keepalive: Option<Duration>) -> Arc<russh::client::Config> {
    let t = get();
    let mut preferred = t.preferred();
    preferred.host_key_certificates = Cow::Borrowed(&[Algorithm::Ed25519]);
    Arc::new(russh::client::Config {
        window_size: t.window,
        maximum_packet_size: MAX_PACKET,
        nodelay: t.nodelay,
        preferred,
        keepalive_interval: keepalive,
        keepalive_max: 3,
        inactivity_timeout: None,
        ..Default::default()
    })
}

fn loaded() -> &'static Result<Tuning, String> {
    static TUNING: OnceLock<Result<Tuning, String>> = OnceLock::new();
    TUNING.get_or_init(|| Tuning::from_vars(|name| std::env::var(name).ok()))
}

/// Fails with a one-line message when an override is set to a value it cannot use. Every binary
/// calls this before it opens a connection.
pub fn check() -> Result<(), String> {
    loaded().as_ref().map(|_| ()).map_err(Clone::clone)
}

/// The settings in force: the defaults with the overrides applied (the defaults alone when an
/// override is invalid, which [`check`] has already refused at start).
pub fn get() -> Tuning {
    loaded().as_ref().copied().unwrap_or_default()
}

/// Applies the `TCP_NODELAY` setting to a socket.
pub fn set_nodelay(tcp: &tokio::net::TcpStream) {
    let _ = tcp.set_nodelay(get().nodelay);
}

/// Most bytes a small read takes from the socket at once.
const READAHEAD: usize = 4096;

/// A read-ahead for SSH transports. russh reads each packet with two exact reads, its first
/// cipher block and then the rest, and on a bare socket each is a system call; a small packet
/// (a keystroke, a query, a heartbeat) costs two where one does. A read smaller than
/// [`READAHEAD`] takes up to that much from the stream into a buffer on the stack and keeps
/// what the caller did not ask for; a larger read goes straight to the stream, so bulk data is
/// not copied again. Nothing is held between packets once they are read: an idle connection
/// keeps no buffer. Writes pass through.
pub struct ReadAhead<S> {
    inner: S,
    held: Vec<u8>,
    at: usize,
    on: bool,
}

impl<S> ReadAhead<S> {
    /// `inner` with the read-ahead when the tuning has it on (the default).
    pub fn new(inner: S) -> ReadAhead<S> {
        ReadAhead { inner, held: Vec::new(), at: 0, on: get().readahead }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadAhead<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.at < this.held.len() {
            let n = buf.remaining().min(this.held.len() - this.at);
            buf.put_slice(&this.held[this.at..this.at + n]);
            this.at += n;
            if this.at == this.held.len() {
                this.held = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        if !this.on || buf.remaining() >= READAHEAD {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let mut space = [MaybeUninit::<u8>::uninit(); READAHEAD];
        let mut ahead = ReadBuf::uninit(&mut space);
        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut ahead))?;
        let got = ahead.filled();
        let n = buf.remaining().min(got.len());
        buf.put_slice(&got[..n]);
        if n < got.len() {
            this.held = got[n..].to_vec();
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ReadAhead<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(pairs: &[(&str, &str)]) -> Result<Tuning, String> {
        Tuning::from_vars(|name| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn defaults_without_overrides() {
        let t = with(&[]).unwrap();
        assert_eq!(t, Tuning::default());
        assert_eq!(t.ciphers[0], cipher::AES_256_GCM);
        assert_eq!(t.window, 2 * 1024 * 1024);
        assert!(t.nodelay);
        assert!(t.readahead);
    }

    #[test]
    fn each_override_applies() {
        let t = with(&[
            (CIPHER_VAR, "chacha20"),
            (WINDOW_VAR, "65536"),
            (NODELAY_VAR, "false"),
            (KEEPALIVE_VAR, "2"),
            (READAHEAD_VAR, "false"),
        ])
        .unwrap();
        assert!(!t.readahead);
        assert_eq!(t.keepalive, Duration::from_secs(2));
        assert_eq!(t.ciphers[0], cipher::CHACHA20_POLY1305);
        assert_eq!(t.ciphers.len(), 3);
        assert_eq!(t.window, 65536);
        assert!(!t.nodelay);
        assert_eq!(t.preferred().cipher[0], cipher::CHACHA20_POLY1305);
    }

    #[test]
    fn bad_values_name_the_variable_and_the_fix() {
        for (var, value) in [
            (CIPHER_VAR, "des"),
            (WINDOW_VAR, "big"),
            (WINDOW_VAR, "1024"),
            (WINDOW_VAR, "99999999999"),
            (NODELAY_VAR, "yes"),
            (READAHEAD_VAR, "1"),
            (KEEPALIVE_VAR, "0"),
            (KEEPALIVE_VAR, "soon"),
        ] {
            let e = with(&[(var, value)]).unwrap_err();
            assert!(e.starts_with(var), "{e}");
            assert!(e.contains(&format!("{value:?}")) && e.ends_with("or unset it"), "{e}");
        }
    }

    /// A stream that hands out what was queued, at most one queued write per read, counting reads.
    struct Chunks(std::collections::VecDeque<Vec<u8>>, usize);

    impl AsyncRead for Chunks {
        fn poll_read(mut self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            self.1 += 1;
            if let Some(mut c) = self.0.pop_front() {
                let n = buf.remaining().min(c.len());
                buf.put_slice(&c[..n]);
                if n < c.len() {
                    self.0.push_front(c.split_off(n));
                }
            }
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn read_ahead_takes_a_small_packet_in_one_read_and_passes_bulk_straight_through() {
        use tokio::io::AsyncReadExt;
        // Three small packets that arrived together, then a bulk one of 40,000 bytes.
        let small: Vec<u8> = (0..300u16).map(|i| i as u8).collect();
        let bulk: Vec<u8> = (0..40_000u32).map(|i| (i * 7) as u8).collect();
        let mut together = small.clone();
        together.extend_from_slice(&bulk[..100]);
        let mut r = ReadAhead { inner: Chunks(vec![together, bulk[100..].to_vec()].into(), 0), held: Vec::new(), at: 0, on: true };
        // As russh reads: the first block, then the rest of the packet.
        for p in small.chunks(100) {
            let (mut head, mut rest) = ([0u8; 16], vec![0u8; 84]);
            r.read_exact(&mut head).await.unwrap();
            r.read_exact(&mut rest).await.unwrap();
            assert_eq!([&head[..], &rest[..]].concat(), p);
        }
        assert_eq!(r.inner.1, 1, "three small packets, one read of the stream");
        let mut head = [0u8; 16];
        r.read_exact(&mut head).await.unwrap();
        let mut rest = vec![0u8; bulk.len() - 16];
        r.read_exact(&mut rest).await.unwrap();
        assert_eq!([&head[..], &rest[..]].concat(), bulk);
        assert_eq!(r.inner.1, 2, "the bulk packet's body read straight from the stream");
        assert!(r.held.is_empty() && r.held.capacity() == 0, "nothing is kept between packets");
        // Switched off, every read goes to the stream as asked.
        let mut off = ReadAhead { inner: Chunks(vec![small.clone()].into(), 0), held: Vec::new(), at: 0, on: false };
        let mut head = [0u8; 16];
        off.read_exact(&mut head).await.unwrap();
        let mut rest = vec![0u8; 284];
        off.read_exact(&mut rest).await.unwrap();
        assert_eq!(off.inner.1, 2);
        assert_eq!([&head[..], &rest[..]].concat(), small);
    }
}
