//! The terminal side of `tsh ssh`: relays the local terminal to a session on a node (the
//! connection itself is `shared::sshclient`).

use std::sync::Arc;

use anyhow::{Context, bail};
use russh::ChannelMsg;
pub use shared::sshclient::{NodeConn, connect_node, connect_proxy};

/// What to run.
pub struct SessionSpec {
    /// Command, or `None` for a shell.
    pub command: Option<String>,
    /// Allocate a PTY.
    pub tty: bool,
    /// Ask the node to forward the agent (the caller set up [`NodeConn::forward_agent`]).
    pub agent: bool,
    /// Environment variables to send (beyond `LANG`).
    pub env: Vec<(String, String)>,
}

/// Standard input in chunks of up to [`STDIN_CHUNK`], read by a thread of its own with
/// blocking reads: one wake-up per chunk (tokio's stdin costs a hand-off to its blocking pool
/// for every read). The channel closes at end of input or on an error; the thread, blocked in
/// a read when the session ends, goes with the process.
fn read_stdin() -> tokio::sync::mpsc::Receiver<Vec<u8>> {
    use std::io::Read;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let spawned = std::thread::Builder::new().name("stdin".into()).spawn(move || {
        let mut stdin = std::io::stdin().lock();
        loop {
            let mut buf = vec![0u8; STDIN_CHUNK];
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.blocking_send(buf).is_err() {
                        return;
                    }
                }
            }
        }
    });
    if spawned.is_err() {
        tracing::warn!("cannot start the thread reading standard input; sending none");
    }
    rx
}

/// The most standard input read at once: a pipe holds 64 KiB.
const STDIN_CHUNK: usize = 64 * 1024;

/// A terminal on standard input and output, read and written from the runtime's own thread, as
/// OpenSSH's client does: both descriptors non-blocking (their flags put back by [`Blocking`])
/// and woken by epoll. A keystroke and its echo then reach the session and the screen
/// with no hand-off to another thread (the threads above cost a thread wake-up each way).
struct Tty {
    input: tokio::io::unix::AsyncFd<std::fs::File>,
    output: tokio::io::unix::AsyncFd<std::fs::File>,
}

/// The flags standard input and output had, put back when dropped: O_NONBLOCK is on the open
/// file, which the shell shares. Held by the session itself, so that they come back when it
/// ends, whatever task still holds the [`Tty`].
struct Blocking(Vec<(std::os::fd::OwnedFd, nix::fcntl::OFlag)>);

impl Drop for Blocking {
    fn drop(&mut self) {
        for (fd, flags) in self.0.iter().rev() {
            let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(*flags));
        }
    }
}

impl Tty {
    /// Standard input and output, when both are terminals the runtime can wait on.
    fn open() -> Option<(Arc<Tty>, Blocking)> {
        use std::io::IsTerminal;
        use std::os::fd::AsFd;
        if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
            return None;
        }
        let fds = (std::io::stdin().as_fd().try_clone_to_owned().ok()?, std::io::stdout().as_fd().try_clone_to_owned().ok()?);
        let tty = Tty::nonblocking(fds.0, fds.1);
        if tty.is_none() {
            tracing::debug!("standard input and output stay on their threads: cannot make them non-blocking");
        }
        tty.map(|(t, b)| (Arc::new(t), b))
    }

    #[allow(unsafe_code)]
    fn nonblocking(input: std::os::fd::OwnedFd, output: std::os::fd::OwnedFd) -> Option<(Tty, Blocking)> {
        use nix::fcntl::{FcntlArg, OFlag, fcntl};
        // Every flag read before any is set: input and output are often one open file, whose
        // flags the first change would change for both.
        let mut saved = Blocking(Vec::new());
        for fd in [&input, &output] {
            let flags = OFlag::from_bits_truncate(fcntl(fd, FcntlArg::F_GETFL).ok()?);
            saved.0.push((fd.try_clone().ok()?, flags));
        }
        for (fd, flags) in &saved.0 {
            fcntl(fd, FcntlArg::F_SETFL(*flags | OFlag::O_NONBLOCK)).ok()?;
        }
        use tokio::io::Interest;
        // SAFETY: each `File` owns its descriptor (a duplicate) and keeps it open, and its
        // `as_raw_fd` is the same number, for as long as the `AsyncFd` holds it.
        let input = unsafe { tokio::io::unix::AsyncFd::register_with_interest(std::fs::File::from(input), Interest::READABLE) };
        // SAFETY: as above.
        let output = unsafe { tokio::io::unix::AsyncFd::register_with_interest(std::fs::File::from(output), Interest::WRITABLE) };
        match (input, output) {
            (Ok(input), Ok(output)) => Some((Tty { input, output }, saved)),
            _ => None,
        }
    }

    async fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        shared::fdio::read(&self.input, buf).await
    }

    async fn write_all(&self, data: &[u8]) -> std::io::Result<()> {
        shared::fdio::write_all(&self.output, data).await
    }
}

/// Writes the session's standard error, which may share a terminal made non-blocking ([`Tty`]):
/// a full terminal is waited for, not an error.
async fn write_stderr(stderr: &mut std::io::Stderr, mut data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    while !data.is_empty() {
        match stderr.write(data) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => tokio::time::sleep(std::time::Duration::from_millis(1)).await,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Standard input in chunks, from the terminal on the runtime's thread.
fn read_tty(tty: Arc<Tty>) -> tokio::sync::mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        let mut buf = vec![0u8; STDIN_CHUNK];
        loop {
            match tty.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// Where the session's standard output goes.
enum Output {
    /// A thread of its own, fed through a short queue: a reader that stops (a paused pager)
    /// blocks that thread, the queue fills and the session waits for it, while the one runtime
    /// thread goes on answering the servers' keep-alives. `finish` waits for everything queued
    /// to be written; the first write error ends the thread and is returned.
    Thread(tokio::sync::mpsc::Sender<bytes::Bytes>, std::thread::JoinHandle<std::io::Result<()>>),
    /// The terminal, from the runtime's thread ([`Tty`]).
    Tty(Arc<Tty>),
    /// In place: the thread could not start, or stopped on an error.
    InPlace,
}

impl Output {
    fn start() -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(8);
        let spawned = std::thread::Builder::new().name("stdout".into()).spawn(move || {
            use std::io::Write;
            let mut stdout = std::io::stdout();
            while let Some(data) = rx.blocking_recv() {
                stdout.write_all(&data)?;
                stdout.flush()?;
            }
            Ok(())
        });
        match spawned {
            Ok(thread) => Output::Thread(tx, thread),
            Err(_) => {
                tracing::warn!("cannot start the thread writing standard output; writing in place");
                Output::InPlace
            }
        }
    }

    async fn write(&mut self, data: bytes::Bytes) -> std::io::Result<()> {
        match self {
            Output::Tty(tty) => tty.write_all(&data).await,
            // The queue closes only when the thread has stopped, on an error.
            Output::Thread(tx, _) => {
                if tx.send(data).await.is_ok() {
                    Ok(())
                } else {
                    self.finish()
                }
            }
            Output::InPlace => {
                use std::io::Write;
                let mut stdout = std::io::stdout();
                stdout.write_all(&data)?;
                stdout.flush()
            }
        }
    }

    /// Waits until everything queued is written; the thread's error, if it stopped on one.
    fn finish(&mut self) -> std::io::Result<()> {
        if !matches!(self, Output::Thread(..)) {
            return Ok(());
        }
        let Output::Thread(tx, thread) = std::mem::replace(self, Output::InPlace) else { return Ok(()) };
        drop(tx);
        thread.join().unwrap_or_else(|_| Err(std::io::Error::other("the thread writing standard output failed")))
    }
}

/// Runs a session on `node`, relaying the local terminal; returns the remote exit status.
pub async fn run(node: &NodeConn, spec: SessionSpec) -> anyhow::Result<i32> {
    use std::io::Write;
    let ch = node.open_session().await?;
    if let Ok(lang) = std::env::var("LANG") {
        let _ = ch.set_env(false, "LANG", lang).await;
    }
    for (k, v) in &spec.env {
        ch.set_env(false, k.as_str(), v.as_str()).await.with_context(|| format!("sending {k}"))?;
    }
    if spec.agent {
        ch.agent_forward(false).await.context("asking for agent forwarding")?;
    }
    if spec.tty {
        let (cols, rows) = crate::term::size();
        let term = std::env::var("TERM").unwrap_or_else(|_| "xterm".into());
        ch.request_pty(false, &term, cols, rows, 0, 0, &[]).await.context("requesting a terminal")?;
    }
    match &spec.command {
        Some(c) => ch.exec(true, c.as_str()).await.context("starting the command")?,
        None => ch.request_shell(true).await.context("starting a shell")?,
    }
    let (mut rd, wr) = ch.split();
    let wr = Arc::new(wr);
    let terminal = spec.tty && crate::term::stdin_is_tty();
    let _raw = if terminal { Some(crate::term::RawMode::enter()) } else { None };
    // Dropped before the raw mode is left (declared after it): the flags come back first.
    let (tty, _blocking) = match terminal.then(Tty::open).flatten() {
        Some((t, b)) => (Some(t), Some(b)),
        None => (None, None),
    };
    // `~.` ends the session from the keyboard (escapes only on a terminal, as OpenSSH).
    let hang_up = Arc::new(tokio::sync::Notify::new());
    let hung_up = hang_up.clone();
    let input = {
        let wr = wr.clone();
        let mut chunks = match &tty {
            Some(t) => read_tty(t.clone()),
            None => read_stdin(),
        };
        tokio::spawn(async move {
            let mut escapes = terminal.then(crate::escape::Escapes::default);
            while let Some(chunk) = chunks.recv().await {
                let (send, actions) = match &mut escapes {
                    Some(e) => e.feed(&chunk),
                    None => (chunk, Vec::new()),
                };
                if !send.is_empty() && wr.data_bytes(send).await.is_err() {
                    return;
                }
                for action in actions {
                    match action {
                        crate::escape::Action::Help => {
                            let mut e = std::io::stderr();
                            let _ = e.write_all(crate::escape::HELP.as_bytes());
                            let _ = e.flush();
                        }
                        crate::escape::Action::Disconnect => {
                            hang_up.notify_one();
                            return;
                        }
                    }
                }
            }
            let _ = wr.eof().await;
        })
    };
    let resize = if spec.tty {
        let wr = wr.clone();
        Some(tokio::spawn(async move {
            let Ok(mut sig) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change()) else { return };
            while sig.recv().await.is_some() {
                let (c, r) = crate::term::size();
                let _ = wr.window_change(c, r, 0, 0).await;
            }
        }))
    } else {
        None
    };
    // Not tokio's stdout, which hands every write to its blocking pool (a task and a wake-up per
    // echoed keystroke). A reader that stops reading holds the session back, as it should.
    let mut stdout = match &tty {
        Some(t) => Output::Tty(t.clone()),
        None => Output::start(),
    };
    let mut stderr = std::io::stderr();
    let mut code: Option<i32> = None;
    let mut closed_cleanly = false;
    loop {
        let msg = tokio::select! {
            m = rd.wait() => m,
            () = hung_up.notified() => {
                let _ = stderr.write_all(b"\r\nDisconnected\r\n");
                code = Some(255);
                closed_cleanly = true;
                break;
            }
        };
        let Some(msg) = msg else { break };
        match msg {
            ChannelMsg::Data { data } => stdout.write(data).await?,
            ChannelMsg::ExtendedData { data, .. } => {
                write_stderr(&mut stderr, &data).await?;
            }
            ChannelMsg::ExitStatus { exit_status } => code = Some(i32::try_from(exit_status).unwrap_or(255)),
            ChannelMsg::ExitSignal { signal_name, .. } => {
                let _ = stderr.write_all(format!("the remote command was killed by signal {signal_name:?}\n").as_bytes());
                code = Some(255);
            }
            ChannelMsg::Failure => bail!("the node refused to start the session"),
            ChannelMsg::Close => {
                closed_cleanly = true;
                break;
            }
            _ => {}
        }
    }
    input.abort();
    stdout.finish()?;
    if let Some(r) = resize {
        r.abort();
    }
    match code {
        Some(c) => Ok(c),
        None if closed_cleanly => Ok(0),
        None => bail!("the connection to the node was lost before the command finished"),
    }
}
