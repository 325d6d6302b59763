//! Starting a session's process as the requested Unix login: with or without a PTY, with the
//! login's home, shell, groups and a clean environment.
//!
//! This is the only module that needs `unsafe`: `pre_exec` (which runs between `fork` and
//! `exec`, where only async-signal-safe calls are allowed), two `ioctl`s on the PTY and the
//! PTY's registration with the event loop. Every value used after the fork is prepared before
//! it.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::process::Stdio;

use nix::unistd::{Gid, Uid, User};
use shared::error::{Error, Result};

/// What to run.
#[derive(Debug, Clone)]
pub struct SpawnSpec {
    /// Unix login.
    pub login: String,
    /// `None` for an interactive login shell.
    pub command: Option<String>,
    /// Environment requested by the client (already filtered).
    pub env: Vec<(String, String)>,
    /// PTY settings, if a PTY was requested.
    pub pty: Option<PtySpec>,
    /// Variables describing the connection (`SSH_CLIENT`, `TELEPORT_USER`, ...).
    pub session_env: Vec<(String, String)>,
}

/// A PTY request.
#[derive(Debug, Clone)]
pub struct PtySpec {
    /// `TERM`.
    pub term: String,
    /// Columns.
    pub cols: u16,
    /// Rows.
    pub rows: u16,
}

/// A started process.
pub struct Spawned {
    /// The child.
    pub child: tokio::process::Child,
    /// The PTY master (PTY sessions).
    pub pty: Option<OwnedFd>,
}

/// Looks up a Unix login.
pub fn lookup(login: &str) -> Result<User> {
    match User::from_name(login) {
        Ok(Some(u)) => Ok(u),
        Ok(None) => Err(Error::not_found(format!("user {login:?} does not exist on this node"))),
        Err(e) => Err(Error::internal(format!("looking up user {login:?}: {e}"))),
    }
}

/// Which logins this node can serve: any when running as root, else only its own user.
pub fn check_can_switch(login: &str) -> Result<()> {
    let me = Uid::current();
    if me.is_root() {
        return Ok(());
    }
    let own = User::from_uid(me).ok().flatten().map(|u| u.name).unwrap_or_default();
    if own == login {
        Ok(())
    } else {
        Err(Error::access_denied(format!(
            "this node runs as user {own:?} and can only start sessions as {own:?}; run the node as root to allow other logins"
        )))
    }
}

/// Sets the PTY window size.
pub fn resize(pty: &OwnedFd, cols: u16, rows: u16) {
    let ws = nix::pty::Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads a `winsize` struct from a valid pointer; the fd is an open PTY
    // master owned by the caller.
    unsafe {
        libc::ioctl(pty.as_raw_fd(), libc::TIOCSWINSZ, &ws as *const nix::pty::Winsize);
    }
}

const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A program of ours the node runs as the login instead of a shell (`teleport sftp`), with one
/// more descriptor: `fd3` becomes its descriptor 3.
pub struct Helper {
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// What the program finds as descriptor 3 (the node keeps the other end).
    pub fd3: OwnedFd,
}

/// Starts the process.
pub fn spawn(spec: &SpawnSpec) -> Result<Spawned> {
    start(spec, None)
}

/// Starts one of our own programs as the login (its stdio piped, `helper.fd3` as descriptor 3).
pub fn spawn_helper(spec: &SpawnSpec, helper: Helper) -> Result<Spawned> {
    start(spec, Some(helper))
}

fn start(spec: &SpawnSpec, helper: Option<Helper>) -> Result<Spawned> {
    check_can_switch(&spec.login)?;
    let user = lookup(&spec.login)?;
    let shell = if user.shell.as_os_str().is_empty() { PathBuf::from("/bin/sh") } else { user.shell.clone() };
    let home = if user.dir.is_dir() { user.dir.clone() } else { PathBuf::from("/") };
    let program = helper.as_ref().map_or(shell.clone(), |h| h.program.clone());
    let mut cmd = tokio::process::Command::new(&program);
    match (&helper, &spec.command) {
        (Some(h), _) => {
            cmd.args(&h.args);
        }
        (None, Some(c)) => {
            cmd.arg("-c").arg(c);
        }
        (None, None) => {
            let base = shell.file_name().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "sh".into());
            cmd.arg0(format!("-{base}"));
        }
    }
    cmd.env_clear()
        .env("HOME", &home)
        .env("USER", &user.name)
        .env("LOGNAME", &user.name)
        .env("SHELL", &shell)
        .env("PATH", DEFAULT_PATH)
        .current_dir(&home)
        .kill_on_drop(true);
    for (k, v) in spec.env.iter().chain(spec.session_env.iter()) {
        cmd.env(k, v);
    }

    let pty = match &spec.pty {
        Some(p) => {
            cmd.env("TERM", if p.term.is_empty() { "xterm" } else { p.term.as_str() });
            let ws = nix::pty::Winsize { ws_row: p.rows.max(1), ws_col: p.cols.max(1), ws_xpixel: 0, ws_ypixel: 0 };
            let pair = nix::pty::openpty(&ws, None).map_err(|e| Error::internal(format!("cannot allocate a PTY: {e}")))?;
            let slave = pair.slave;
            let dup = |f: &OwnedFd| f.try_clone().map_err(|e| Error::internal(format!("PTY: {e}")));
            cmd.stdin(Stdio::from(dup(&slave)?)).stdout(Stdio::from(dup(&slave)?)).stderr(Stdio::from(slave));
            Some(pair.master)
        }
        None => {
            cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
            None
        }
    };

    let switch = Uid::current().is_root();
    let name = CString::new(user.name.clone()).map_err(|_| Error::bad_parameter("invalid login name"))?;
    let (uid, gid): (Uid, Gid) = (user.uid, user.gid);
    let with_tty = pty.is_some();
    let fd3 = helper.as_ref().map(|h| h.fd3.as_raw_fd());
    // SAFETY: the closure runs in the child between fork and exec. It only calls
    // async-signal-safe functions (setsid, ioctl, dup2, fcntl, initgroups, setgid, setuid) on
    // values prepared above, and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            if with_tty && libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            match fd3 {
                // dup2 onto itself keeps close-on-exec; clear it instead.
                Some(3) if libc::fcntl(3, libc::F_SETFD, 0) != 0 => return Err(std::io::Error::last_os_error()),
                Some(fd) if fd != 3 && libc::dup2(fd, 3) != 3 => return Err(std::io::Error::last_os_error()),
                _ => {}
            }
            if switch {
                nix::unistd::initgroups(&name, gid).map_err(std::io::Error::from)?;
                nix::unistd::setgid(gid).map_err(std::io::Error::from)?;
                nix::unistd::setuid(uid).map_err(std::io::Error::from)?;
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| Error::internal(format!("cannot start {}: {e}", program.display())))?;
    // The child has its copy of descriptor 3; ours closes here.
    drop(helper);
    Ok(Spawned { child, pty })
}

/// Descriptor 3 as the node passed it to a helper ([`Helper::fd3`]), if it is a pipe. Taken once,
/// at the helper's start. (Reopening `/proc/self/fd/3` is refused: the pipe is root's.)
pub fn inherited_fd3() -> Option<std::fs::File> {
    use std::os::fd::FromRawFd;
    use std::os::unix::fs::FileTypeExt;
    static TAKEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let is_pipe = std::fs::metadata("/proc/self/fd/3").map(|m| m.file_type().is_fifo()).unwrap_or(false);
    if !is_pipe || TAKEN.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return None;
    }
    // SAFETY: descriptor 3 is open (it is a pipe, checked above); nothing in this process opened
    // it or owns it (it was inherited across exec), and `TAKEN` makes this the only owner.
    Some(unsafe { std::fs::File::from_raw_fd(3) })
}

/// Environment variables a client may set (like OpenSSH's default `AcceptEnv LANG LC_*`).
pub fn accept_env(name: &str) -> bool {
    name == "LANG" || name.starts_with("LC_") || name == "TELEPORT_TEST_VAR"
}

/// A PTY master read and written on the runtime's event loop: non-blocking, woken by epoll.
/// Through `tokio::fs::File` every keystroke took two trips through the blocking pool (a write
/// handed to a pool thread, an echo read by one), each a thread wake-up on its path.
#[derive(Debug, Clone)]
pub struct PtyIo(std::sync::Arc<tokio::io::unix::AsyncFd<std::fs::File>>);

impl PtyIo {
    /// Wraps a duplicate of `master`. The duplicate shares the open file, so the master
    /// becomes non-blocking too; its other user (window-size `ioctl`s) does not care.
    pub fn new(master: &OwnedFd) -> std::io::Result<PtyIo> {
        use nix::fcntl::{FcntlArg, OFlag, fcntl};
        let fd = master.try_clone()?;
        let flags = OFlag::from_bits_truncate(fcntl(&fd, FcntlArg::F_GETFL)?);
        fcntl(&fd, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
        // SAFETY: the `File` owns the descriptor and keeps it open, and its `as_raw_fd` is the
        // same number, for as long as the `AsyncFd` holds it.
        let registered = unsafe { tokio::io::unix::AsyncFd::register(std::fs::File::from(fd)) }?;
        Ok(PtyIo(std::sync::Arc::new(registered)))
    }

    /// Reads what the PTY has (0 at its end: reads fail with EIO once the last slave closes).
    pub async fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        match shared::fdio::read(&self.0, buf).await {
            Err(e) if e.raw_os_error() == Some(libc::EIO) => Ok(0),
            r => r,
        }
    }

    /// Writes all of `buf`, waiting while the PTY's input queue is full.
    pub async fn write_all(&self, buf: &[u8]) -> std::io::Result<()> {
        shared::fdio::write_all(&self.0, buf).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    fn me() -> String {
        User::from_uid(Uid::current()).ok().flatten().map(|u| u.name).unwrap_or_default()
    }

    #[tokio::test]
    async fn exec_runs_with_clean_env_and_exit_code() {
        let spec = SpawnSpec {
            login: me(),
            command: Some("echo \"$USER:$HOME\"; echo err >&2; exit 7".into()),
            env: vec![("LANG".into(), "C".into())],
            pty: None,
            session_env: vec![("TELEPORT_USER".into(), "alice".into())],
        };
        let mut s = spawn(&spec).unwrap();
        let mut out = String::new();
        s.child.stdout.take().unwrap().read_to_string(&mut out).await.unwrap();
        let mut err = String::new();
        s.child.stderr.take().unwrap().read_to_string(&mut err).await.unwrap();
        let status = s.child.wait().await.unwrap();
        assert_eq!(status.code(), Some(7));
        assert!(out.starts_with(&format!("{}:", me())), "{out}");
        assert_eq!(err, "err\n");
    }

    #[tokio::test]
    async fn a_pty_is_read_and_written_on_the_event_loop_and_ends_when_the_slave_closes() {
        let pair = nix::pty::openpty(None, None).unwrap();
        let pty = PtyIo::new(&pair.master).unwrap();
        let slave = std::fs::File::from(pair.slave);
        // Raw mode: bytes pass as written, without echo or line editing.
        let mut t = nix::sys::termios::tcgetattr(&slave).unwrap();
        nix::sys::termios::cfmakeraw(&mut t);
        nix::sys::termios::tcsetattr(&slave, nix::sys::termios::SetArg::TCSANOW, &t).unwrap();
        pty.write_all(b"typed").await.unwrap();
        let mut got = [0u8; 5];
        std::io::Read::read_exact(&mut &slave, &mut got).unwrap();
        assert_eq!(&got, b"typed");
        std::io::Write::write_all(&mut &slave, b"echo").unwrap();
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), pty.read(&mut buf)).await.unwrap().unwrap();
        assert_eq!(&buf[..n], b"echo");
        drop(slave);
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), pty.read(&mut buf)).await.unwrap().unwrap();
        assert_eq!(n, 0, "the end of the PTY reads as the end of the stream");
    }

    #[test]
    fn unknown_login_is_not_found() {
        let e = lookup("no-such-user-here-xyz").err().unwrap();
        assert_eq!(e.kind, shared::Kind::NotFound);
    }

    #[test]
    fn env_filter() {
        assert!(accept_env("LANG"));
        assert!(accept_env("LC_ALL"));
        assert!(!accept_env("LD_PRELOAD"));
        assert!(!accept_env("PATH"));
    }
}
