//! A stream that can be cut from outside: once its [`KillSwitch`] is pulled, reads end (EOF)
//! and writes fail. russh runs each SSH connection in a task of its own that only ends when its
//! stream does; on a dead link (no FIN, no RST) that is when TCP gives up, many minutes later.
//! Wrapping the socket lets a tunnel whose heartbeats stopped be torn down now, and with it
//! every channel (every user's session) that went through it.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// Pulls the plug on a [`Killable`] stream.
#[derive(Clone, Default)]
pub struct KillSwitch(Arc<Inner>);

#[derive(Default)]
struct Inner {
    pulled: AtomicBool,
    notify: Notify,
}

impl KillSwitch {
    /// A new, unpulled switch.
    pub fn new() -> KillSwitch {
        KillSwitch::default()
    }

    /// Cuts the stream: a pending read returns EOF at once; later writes fail.
    pub fn pull(&self) {
        self.0.pulled.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    fn pulled(&self) -> bool {
        self.0.pulled.load(Ordering::SeqCst)
    }
}

/// A stream wrapped with a [`KillSwitch`].
pub struct Killable<S> {
    inner: S,
    switch: KillSwitch,
    waiter: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl<S> Killable<S> {
    /// Wraps `inner`.
    pub fn new(inner: S, switch: KillSwitch) -> Killable<S> {
        let s = switch.clone();
        let waiter = Box::pin(async move {
            loop {
                let notified = s.0.notify.notified();
                if s.pulled() {
                    return;
                }
                notified.await;
            }
        });
        Killable { inner, switch, waiter }
    }
}

fn cut() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "connection cut")
}

impl<S: AsyncRead + Unpin> AsyncRead for Killable<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.switch.pulled() || self.waiter.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Killable<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        if self.switch.pulled() {
            return Poll::Ready(Err(cut()));
        }
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.switch.pulled() {
            return Poll::Ready(Err(cut()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.switch.pulled() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn a_pulled_switch_ends_a_pending_read_and_fails_writes() {
        let (a, mut b) = tokio::io::duplex(64);
        let switch = KillSwitch::new();
        let mut k = Killable::new(a, switch.clone());
        b.write_all(b"hi").await.unwrap();
        let mut buf = [0u8; 2];
        k.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hi");
        // Nothing more arrives: the read would wait forever, until the switch is pulled.
        let reader = tokio::spawn(async move {
            let mut buf = [0u8; 8];
            let n = k.read(&mut buf).await.unwrap();
            (n, k)
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        switch.pull();
        let (n, mut k) = tokio::time::timeout(std::time::Duration::from_secs(5), reader).await.unwrap().unwrap();
        assert_eq!(n, 0, "EOF after the switch");
        assert!(k.write_all(b"x").await.is_err());
    }
}
