//! `tsh proxy ssh [--cluster=C] user@host:port`: connects standard input and output to a node
//! through the proxy (and the leaf's tunnel). OpenSSH's `ProxyCommand` for `tsh config`.

use anyhow::{anyhow, bail};
use shared::subsystem::ProxyRequest;
use tokio::io::AsyncWriteExt;

use super::Global;
use crate::context::Session;
use crate::sshclient::connect_proxy;

/// Proxy commands.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, clap::Subcommand)]
enum Cmd {
    /// Pipe stdin/stdout to a node's SSH port (for OpenSSH's ProxyCommand).
    #[command(
        after_help = "Example (what `tsh config` writes):\n  ProxyCommand tsh proxy ssh --cluster=leaf.example.com --proxy=root.example.com:3080 %r@%h:%p"
    )]
    Ssh {
        /// user@host[:port]; a host ending in .<cluster> has the suffix removed.
        target: String,
    },
}

/// Splits `user@host:port`, removing a `.<cluster>` suffix from the host.
pub fn parse_target(target: &str, cluster: &str) -> anyhow::Result<(String, String, Option<u16>)> {
    let (user, rest) = target.rsplit_once('@').ok_or_else(|| anyhow!("use user@host[:port], got {target:?}"))?;
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, Some(p.parse::<u16>().map_err(|_| anyhow!("invalid port in {target:?}"))?)),
        _ => (rest, None),
    };
    let host = host.strip_suffix(&format!(".{cluster}")).unwrap_or(host);
    if user.is_empty() || host.is_empty() {
        bail!("use user@host[:port], got {target:?}");
    }
    Ok((user.to_string(), host.to_string(), port.filter(|p| *p != 0)))
}

/// Runs the command.
pub async fn exec(a: Args, g: &Global) -> anyhow::Result<u8> {
    let Cmd::Ssh { target } = a.cmd;
    let mut session = Session::load(g)?;
    session.require_valid()?;
    let cluster = session.target(g);
    session.ensure_cluster(&cluster).await?;
    let (user, host, port) = parse_target(&target, &cluster)?;
    let proxy = connect_proxy(&session.profile.web_proxy_addr, &session.profile.cluster, &session.creds, &user).await?;
    // Direct nodes are registered with their own port; OpenSSH's 3022 default matches them, and
    // tunnel nodes ignore the port.
    let req = ProxyRequest { host, port, cluster: Some(cluster) };
    let channel = proxy.subsystem_channel(&req).await?;
    // OpenSSH's ProxyCommand hands us two pipes: read and write them on the event loop, without
    // tokio's standard streams (a blocking-pool hand-off and an 8 KiB copy per read).
    if let Some((stdin, stdout)) = stdio_pipes() {
        shared::sshclient::relay(channel, stdin, stdout, shared::sshclient::Ending::Both).await;
        proxy.close().await;
        return Ok(0);
    }
    let (mut rd, mut wr) = tokio::io::split(channel.into_stream());
    let up = tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        let _ = tokio::io::copy(&mut stdin, &mut wr).await;
        let _ = wr.shutdown().await;
    });
    let mut stdout = tokio::io::stdout();
    let _ = tokio::io::copy(&mut rd, &mut stdout).await;
    let _ = stdout.flush().await;
    up.abort();
    proxy.close().await;
    Ok(0)
}

/// Standard input and output as non-blocking pipes, when both are pipes.
fn stdio_pipes() -> Option<(tokio::net::unix::pipe::Receiver, tokio::net::unix::pipe::Sender)> {
    use std::os::fd::AsFd;
    let input = std::io::stdin().as_fd().try_clone_to_owned().ok()?;
    let output = std::io::stdout().as_fd().try_clone_to_owned().ok()?;
    let is_pipe = |fd: &std::os::fd::OwnedFd| nix::sys::stat::fstat(fd).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFIFO);
    if !is_pipe(&input) || !is_pipe(&output) {
        return None;
    }
    let rx = tokio::net::unix::pipe::Receiver::from_owned_fd(input).ok()?;
    let tx = tokio::net::unix::pipe::Sender::from_owned_fd(output).ok()?;
    Some((rx, tx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(
            parse_target("visitor@node1.leaf.example.com:3022", "leaf.example.com").unwrap(),
            ("visitor".into(), "node1".into(), Some(3022))
        );
        assert_eq!(parse_target("root@db1", "c").unwrap(), ("root".into(), "db1".into(), None));
        assert!(parse_target("nouser", "c").is_err());
        assert!(parse_target("u@h:notaport", "c").is_err());
    }
}
