//! Agent forwarding on the node (`ssh -A`, `tsh ssh -A`): when a role the node's cluster maps
//! the user to has `forward_agent: true` and the login among its `allow.logins`, the connection
//! gets a socket **owned by the login** (mode 0600 in a fresh 0700 directory under `/tmp`), its
//! sessions get `SSH_AUTH_SOCK`, and each client of the socket becomes an
//! `auth-agent@openssh.com` channel to the user's agent. The socket only answers processes of
//! the login (or root), checked with `SO_PEERCRED`, and goes with the connection.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use russh::server::Handle;

/// Agent connections one SSH connection may have open at once.
const MAX_AGENT_CONNS: usize = 32;

/// The forwarded agent of one connection.
pub struct Forwarded {
    dir: PathBuf,
    /// `SSH_AUTH_SOCK` for the connection's sessions.
    pub socket: PathBuf,
    task: tokio::task::AbortHandle,
}

impl Drop for Forwarded {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Why agent forwarding is refused for this login, if it is.
pub fn refusal(allowed_by_roles: bool, login: &str) -> Option<String> {
    (!allowed_by_roles).then(|| {
        format!("agent forwarding refused: no role of yours here has options.forward_agent: true with login {login:?} in its allow.logins")
    })
}

/// Creates the login's socket and serves it: each client becomes an agent channel over `handle`.
pub fn start(login: &str, handle: Handle) -> shared::Result<Forwarded> {
    let user = super::session::lookup(login)?;
    let internal = |e: std::io::Error| shared::Error::internal(format!("cannot set up agent forwarding: {e}"));
    let dir = Path::new("/tmp").join(format!("teleport-agent-{}", uuid::Uuid::new_v4().simple()));
    // A fresh name: mkdir fails rather than follow anything an attacker placed there.
    std::fs::DirBuilder::new().mode(0o700).create(&dir).map_err(internal)?;
    let socket = dir.join("agent.sock");
    let made = (|| -> std::io::Result<tokio::net::UnixListener> {
        let listener = tokio::net::UnixListener::bind(&socket)?;
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600))?;
        std::os::unix::fs::chown(&socket, Some(user.uid.as_raw()), Some(user.gid.as_raw()))?;
        std::os::unix::fs::chown(&dir, Some(user.uid.as_raw()), Some(user.gid.as_raw()))?;
        Ok(listener)
    })();
    let listener = match made {
        Ok(l) => l,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(internal(e));
        }
    };
    let uid = user.uid.as_raw();
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_AGENT_CONNS));
    let task = tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let peer = conn.peer_cred().map(|c| c.uid()).ok();
            if peer != Some(uid) && peer != Some(0) {
                tracing::warn!(?peer, "refusing an agent client of another user");
                continue;
            }
            let Ok(permit) = limit.clone().try_acquire_owned() else { continue };
            let handle = handle.clone();
            tokio::spawn(async move {
                let _permit = permit;
                if let Ok(ch) = handle.channel_open_agent().await {
                    let mut stream = ch.into_stream();
                    let _ = tokio::io::copy_bidirectional(&mut conn, &mut stream).await;
                }
            });
        }
    });
    Ok(Forwarded { dir, socket, task: task.abort_handle() })
}
