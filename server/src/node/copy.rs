//! Copying files on the node: who may (the node's `ssh_file_copy` switch and every mapped role's
//! `options.ssh_file_copy`), the SFTP child started as the login ([`super::sftp`]), the pumps
//! between it and the channel, and its audit lines turned into `sftp` events with who and where.
//! Legacy `scp -O` (an exec of `scp -t`/`scp -f`) is decided here too.

use std::future::Future;
use std::os::fd::AsFd;
use std::sync::Arc;

use russh::Channel;
use russh::server::Msg;
use serde_json::{Map, Value, json};
use shared::api::AuditEvent;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::NodeAccessPoint;
use super::authz::Allowed;
use super::session::{Helper, SpawnSpec, Spawned, spawn_helper};
use crate::audit::{clip, codes};

/// Why copying files is refused here, if it is: the node's switch first, then the roles.
pub fn refusal(node_allows: bool, allowed: &Allowed) -> Option<String> {
    if !node_allows {
        return Some("node does not allow file copying via SCP or SFTP (ssh_service.ssh_file_copy is false on this node)".into());
    }
    allowed
        .file_copy_refused_by
        .as_ref()
        .map(|role| format!("file copying via SCP or SFTP is not permitted: role {role:?} sets options.ssh_file_copy to false"))
}

/// Legacy scp's direction and path when `command` runs OpenSSH's `scp` in its server mode
/// (`scp -t PATH` receives an upload, `scp -f PATH` sends a download).
pub fn legacy_scp(command: &str) -> Option<(bool, String)> {
    let mut words = command.split_whitespace();
    let program = words.next()?;
    if program != "scp" && !program.ends_with("/scp") {
        return None;
    }
    let (mut upload, mut download, mut path) = (false, false, None);
    for w in words {
        match w.strip_prefix('-') {
            Some(flags) if !flags.is_empty() && path.is_none() => {
                upload |= flags.contains('t');
                download |= flags.contains('f');
            }
            _ => path = Some(w.to_string()),
        }
    }
    match (upload, download) {
        (true, false) => Some((true, path.unwrap_or_default())),
        (false, true) => Some((false, path.unwrap_or_default())),
        _ => None,
    }
}

/// A running SFTP child and the read end of its audit pipe.
pub struct SftpChild {
    spawned: Spawned,
    audit: tokio::net::unix::pipe::Receiver,
}

/// Starts `teleport sftp` as the login, in its home, with an audit pipe as descriptor 3.
pub fn start(spec: &SpawnSpec) -> shared::Result<SftpChild> {
    let internal = |e: std::io::Error| shared::Error::internal(format!("cannot start the SFTP server: {e}"));
    let program = std::env::current_exe().map_err(internal)?;
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| internal(e.into()))?;
    let spawned = spawn_helper(spec, Helper { program, args: vec!["sftp".into()], fd3: write })?;
    let audit = tokio::net::unix::pipe::Receiver::from_owned_fd(read).map_err(internal)?;
    // Bigger pipes: a 255 KiB SFTP write crosses in one go, not four.
    for fd in [spawned.child.stdin.as_ref().map(|p| p.as_fd()), spawned.child.stdout.as_ref().map(|p| p.as_fd())].into_iter().flatten() {
        let _ = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_BYTES));
    }
    Ok(SftpChild { spawned, audit })
}

/// Pipe capacity between the node and the SFTP child.
const PIPE_BYTES: i32 = 1024 * 1024;
/// Buffer of each pump.
const PUMP_BYTES: usize = 256 * 1024;
/// The longest audit line read from the child; longer ones are dropped.
const MAX_LINE: usize = 64 * 1024;
/// Audit lines accepted from one child (its own cap is [`super::sftp::MAX_OP_EVENTS`] and a summary).
const MAX_LINES: usize = super::sftp::MAX_OP_EVENTS + 1;

/// Serves the SFTP session until the child exits, the client goes or `stop` says why; writes
/// the child's audit lines as events built on `base` (who and where). Returns the exit code.
pub async fn run(
    handle: russh::server::Handle,
    channel: Channel<Msg>,
    child: SftpChild,
    stop: impl Future<Output = String>,
    base: AuditEvent,
    access: Arc<dyn NodeAccessPoint>,
) -> i32 {
    let SftpChild { spawned, audit } = child;
    let mut child = spawned.child;
    let id = channel.id();
    let (Some(mut stdin), Some(mut stdout), Some(mut stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take()) else {
        let _ = child.kill().await;
        return 255;
    };
    let (mut rd, mut wr) = tokio::io::split(channel.into_stream());
    let input = tokio::spawn(async move {
        let mut buf = vec![0u8; PUMP_BYTES];
        while let Ok(n) = rd.read(&mut buf).await {
            if n == 0 || stdin.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = stdin.shutdown().await;
    });
    let err_handle = handle.clone();
    let errors = tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        while let Ok(n) = stderr.read(&mut buf).await {
            if n == 0 || err_handle.extended_data(id, 1, buf[..n].to_vec()).await.is_err() {
                break;
            }
        }
    });
    let output = tokio::spawn(async move {
        let mut buf = vec![0u8; PUMP_BYTES];
        while let Ok(n) = stdout.read(&mut buf).await {
            if n == 0 || wr.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = errors.await;
        let _ = wr.flush().await;
        let _ = wr.shutdown().await;
        wr
    });
    let events = tokio::spawn(audit_lines(audit, base, access));
    let status = tokio::select! {
        s = child.wait() => s,
        why = stop => {
            // A client that closes the channel is the usual end: the child has its end of input
            // and writes its summary; give it a moment before it is killed.
            match tokio::time::timeout(std::time::Duration::from_secs(2), child.wait()).await {
                Ok(s) => s,
                Err(_) => {
                    tracing::info!(reason = %why, "ending an SFTP session");
                    let _ = child.start_kill();
                    child.wait().await
                }
            }
        }
    };
    input.abort();
    let writer = tokio::time::timeout(std::time::Duration::from_secs(2), output).await.ok().and_then(|r| r.ok());
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), events).await;
    let code = status.ok().and_then(|s| s.code()).unwrap_or(255);
    let _ = handle.exit_status_request(id, u32::try_from(code).unwrap_or(255)).await;
    let _ = handle.close(id).await;
    drop(writer);
    code
}

/// Reads the child's audit lines until it closes the pipe, emitting each as an event.
async fn audit_lines(mut audit: tokio::net::unix::pipe::Receiver, base: AuditEvent, access: Arc<dyn NodeAccessPoint>) {
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    let (mut lines, mut skipping) = (0usize, false);
    loop {
        let n = match audit.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        for chunk in buf[..n].split_inclusive(|b| *b == b'\n') {
            let ends = chunk.ends_with(b"\n");
            if !skipping {
                pending.extend_from_slice(chunk);
            }
            if pending.len() > MAX_LINE {
                pending.clear();
                skipping = true;
            }
            if ends {
                if !skipping && lines < MAX_LINES {
                    lines += 1;
                    if let Some(event) = std::str::from_utf8(&pending).ok().and_then(|l| event_of(l, &base)) {
                        let _ = access.emit(event).await;
                    }
                }
                pending.clear();
                skipping = false;
            }
        }
    }
}

/// The event for one audit line of the child, on top of `base`: only the fields an SFTP event
/// has are taken, each bounded; who, where and the codes are the node's, never the child's.
pub fn event_of(line: &str, base: &AuditEvent) -> Option<AuditEvent> {
    let v: Value = serde_json::from_str(line.trim_end()).ok()?;
    let text = |k: &str, max: usize| v.get(k).and_then(Value::as_str).map(|s| json!(clip(s, max)));
    let mut e: Map<String, Value> = base.clone();
    match v.get("kind").and_then(Value::as_str)? {
        "op" => {
            let action = v.get("action").and_then(Value::as_u64)?;
            let failed = v.get("error").is_some();
            e.insert("event".into(), json!(codes::SFTP));
            e.insert("code".into(), json!(codes::sftp_code(action, !failed)?));
            e.insert("action".into(), json!(action));
            e.insert("success".into(), json!(!failed));
            for (k, max) in [("path", 4096), ("target_path", 4096), ("working_directory", 4096), ("flags", 256), ("error", 1024)] {
                if let Some(t) = text(k, max) {
                    e.insert(k.into(), t);
                }
            }
        }
        "summary" => {
            e.insert("event".into(), json!(codes::SFTP_SUMMARY.0));
            e.insert("code".into(), json!(codes::SFTP_SUMMARY.1));
            let stats: Vec<Value> = v
                .get("file_transfer_stats")
                .and_then(Value::as_array)
                .map(|a| a.as_slice())
                .unwrap_or_default()
                .iter()
                .take(super::sftp::MAX_OP_EVENTS)
                .filter_map(|s| {
                    Some(json!({
                        "path": clip(s.get("path")?.as_str()?, 4096),
                        "bytes_read": s.get("bytes_read")?.as_u64()?,
                        "bytes_written": s.get("bytes_written")?.as_u64()?,
                    }))
                })
                .collect();
            e.insert("file_transfer_stats".into(), json!(stats));
            for k in ["files_not_listed", "events_not_written"] {
                if let Some(n) = v.get(k).and_then(Value::as_u64).filter(|n| *n > 0) {
                    e.insert(k.into(), json!(n));
                }
            }
        }
        _ => return None,
    }
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_scp_is_told_apart_from_other_commands() {
        assert_eq!(legacy_scp("scp -t /tmp/x"), Some((true, "/tmp/x".into())));
        assert_eq!(legacy_scp("scp -r -f dir"), Some((false, "dir".into())));
        assert_eq!(legacy_scp("/usr/bin/scp -pt ."), Some((true, ".".into())));
        assert_eq!(legacy_scp("scp -v -d -t -- file"), Some((true, "file".into())));
        assert_eq!(legacy_scp("scp a b"), None, "a client scp, not the server side");
        assert_eq!(legacy_scp("sftp"), None);
        assert_eq!(legacy_scp("echo scp -t x"), None);
    }

    #[test]
    fn the_childs_lines_become_events_with_the_nodes_who_and_where() {
        let mut base = AuditEvent::new();
        base.insert("user".into(), json!("alice"));
        base.insert("login".into(), json!("visitor"));
        let e = event_of(r#"{"kind":"op","action":1,"path":"/home/v/a","flags":"WRITE","user":"mallory"}"#, &base).unwrap();
        assert_eq!((e["event"].as_str(), e["code"].as_str(), e["user"].as_str()), (Some("sftp"), Some("TS001I"), Some("alice")));
        let e = event_of(r#"{"kind":"op","action":12,"path":"/root/x","error":"Permission denied"}"#, &base).unwrap();
        assert_eq!((e["code"].as_str(), e["success"].as_bool()), (Some("TS012E"), Some(false)));
        assert!(event_of(r#"{"kind":"op","action":99,"path":"x"}"#, &base).is_none(), "unknown action");
        assert!(event_of("not json", &base).is_none());
        let e = event_of(
            r#"{"kind":"summary","file_transfer_stats":[{"path":"/a","bytes_read":0,"bytes_written":5},{"path":7}],"files_not_listed":0}"#,
            &base,
        )
        .unwrap();
        assert_eq!(e["code"], "TS021I");
        assert_eq!(e["file_transfer_stats"], json!([{"path": "/a", "bytes_read": 0, "bytes_written": 5}]));
        assert!(e.get("files_not_listed").is_none());
    }
}
