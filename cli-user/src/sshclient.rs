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
}

/// Runs a session on `node`, relaying the local terminal; returns the remote exit status.
pub async fn run(node: &NodeConn, spec: SessionSpec) -> anyhow::Result<i32> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ch = node.open_session().await?;
    if let Ok(lang) = std::env::var("LANG") {
        let _ = ch.set_env(false, "LANG", lang).await;
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
    let _raw = if spec.tty && crate::term::stdin_is_tty() { Some(crate::term::RawMode::enter()) } else { None };
    let input = {
        let wr = wr.clone();
        tokio::spawn(async move {
            let mut stdin = tokio::io::stdin();
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => {
                        let _ = wr.eof().await;
                        return;
                    }
                    Ok(n) => {
                        if wr.data_bytes(buf[..n].to_vec()).await.is_err() {
                            return;
                        }
                    }
                }
            }
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
    let mut stdout = tokio::io::stdout();
    let mut stderr = tokio::io::stderr();
    let mut code: Option<i32> = None;
    let mut closed_cleanly = false;
    while let Some(msg) = rd.wait().await {
        match msg {
            ChannelMsg::Data { data } => {
                stdout.write_all(&data).await?;
                stdout.flush().await?;
            }
            ChannelMsg::ExtendedData { data, .. } => {
                stderr.write_all(&data).await?;
                stderr.flush().await?;
            }
            ChannelMsg::ExitStatus { exit_status } => code = Some(i32::try_from(exit_status).unwrap_or(255)),
            ChannelMsg::ExitSignal { signal_name, .. } => {
                let _ = stderr.write_all(format!("the remote command was killed by signal {signal_name:?}\n").as_bytes()).await;
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
    if let Some(r) = resize {
        r.abort();
    }
    match code {
        Some(c) => Ok(c),
        None if closed_cleanly => Ok(0),
        None => bail!("the connection to the node was lost before the command finished"),
    }
}
