//! `tsh scp [-r] [-p] [-q] [-P PORT] [--cluster=C] SOURCE... DEST`: copies files to or from a
//! node over SFTP (the node's `sftp` subsystem, served as the login), in the root or a leaf.
//!
//! One side is remote, written `[login@]host:[path]` (an empty path is the login's home, a
//! relative one is from it). Uploads take any number of local sources; downloads any number of
//! remote ones on one `login@host`, with `*`, `?` and `[...]` matched on the node. A directory
//! needs `-r`; `-p` keeps modes and times. Exit status: 0, 1 when a file could not be copied
//! (the others still are, as scp does), 255 when tsh cannot reach the node.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail};
use russh_sftp::client::SftpSession;
use russh_sftp::protocol::{FileAttributes, OpenFlags, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use shared::error::io_text;
use shared::sshclient::sftp_path;

use super::Global;
use super::ssh::{NotConnected, reach};
use crate::context::Session;

/// Copy files to or from a node.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  tsh scp report.pdf visitor@db1:/tmp/           # upload\n  tsh scp --cluster=leaf.example.com visitor@db1:'logs/*.log' .   # download, matched on the node\n  tsh scp -r -p ./site visitor@web1:              # a directory, into the login's home"
)]
pub struct Args {
    /// Copy directories and what they hold.
    #[arg(short = 'r', long)]
    recursive: bool,
    /// Keep modification times and modes.
    #[arg(short = 'p', long)]
    preserve: bool,
    /// No progress bars.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Node port.
    #[arg(short = 'P', long)]
    port: Option<u16>,
    /// SOURCE... DEST: local paths and [login@]host:[path] (one side remote).
    #[arg(required = true, num_args = 2.., value_name = "SOURCE... DEST")]
    paths: Vec<String>,
}

/// One side of a copy.
#[derive(Debug, Clone, PartialEq)]
enum Loc {
    Local(PathBuf),
    Remote { login: Option<String>, host: String, path: String },
}

/// Reads `[login@]host:[path]` (host may be `[v6]`); anything else is a local path, as is one
/// with a `/` before its first `:` (`./a:b`).
fn parse_loc(s: &str) -> anyhow::Result<Loc> {
    let colon = if let Some(rest) = s.split_once('@').map_or(Some(s), |(_, r)| Some(r)).filter(|r| r.starts_with('[')) {
        // [v6]:path
        let close = rest.find(']').ok_or_else(|| anyhow!("{s:?}: unbalanced [ in the host"))?;
        let at = s.len() - rest.len() + close + 1;
        if s[at..].starts_with(':') { Some(at) } else { None }
    } else {
        s.find(':')
    };
    let Some(colon) = colon else { return Ok(Loc::Local(PathBuf::from(s))) };
    if s[..colon].contains('/') {
        return Ok(Loc::Local(PathBuf::from(s)));
    }
    let (login, host) = match s[..colon].rsplit_once('@') {
        Some((l, h)) => (Some(l.to_string()), h),
        None => (None, &s[..colon]),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
    if host.is_empty() || login.as_deref() == Some("") {
        bail!("{s:?} is missing a host or login, use form [login@]host:[path]");
    }
    Ok(Loc::Remote { login, host, path: s[colon + 1..].to_string() })
}

fn join(dir: &str, name: &str) -> String {
    if dir.ends_with('/') { format!("{dir}{name}") } else { format!("{dir}/{name}") }
}

fn base_name(p: &str) -> &str {
    p.trim_end_matches('/').rsplit('/').next().unwrap_or(p)
}

/// Shell-style matching of one name: `*`, `?` and `[...]` (with `!` or `^` negation, ranges).
fn glob_match(pattern: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while n < name.len() {
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some(p);
                    mark = n;
                    p += 1;
                    continue;
                }
                b'?' => {
                    p += 1;
                    n += 1;
                    continue;
                }
                b'[' => {
                    if let Some((matched, len)) = class(&pattern[p..], name[n])
                        && matched
                    {
                        p += len;
                        n += 1;
                        continue;
                    }
                }
                c if c == name[n] => {
                    p += 1;
                    n += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some(s) => {
                p = s + 1;
                mark += 1;
                n = mark;
            }
            None => return false,
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

/// Whether `c` is in the class at the start of `p` (`[...]`), and the class's length.
fn class(p: &[u8], c: u8) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some(b'!' | b'^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    while i < p.len() && (first || p[i] != b']') {
        first = false;
        if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
            hit |= p[i] <= c && c <= p[i + 2];
            i += 3;
        } else {
            hit |= p[i] == c;
            i += 1;
        }
    }
    (i < p.len()).then_some((hit != negate, i + 1))
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The SFTP error's text without the status code's name.
fn why(e: &russh_sftp::client::error::Error) -> String {
    match e {
        russh_sftp::client::error::Error::Status(s) if !s.error_message.is_empty() => s.error_message.clone(),
        other => other.to_string(),
    }
}

fn is_missing(e: &russh_sftp::client::error::Error) -> bool {
    matches!(e, russh_sftp::client::error::Error::Status(s) if s.status_code == StatusCode::NoSuchFile)
}

/// The size of each read and write: the most our nodes take in one packet.
const CHUNK: usize = 255 * 1024;

/// Copies and reports; failures of single files are printed and counted.
struct Copier {
    sftp: SftpSession,
    /// `login@host:` for messages.
    remote: String,
    recursive: bool,
    preserve: bool,
    progress: bool,
    failed: usize,
}

impl Copier {
    fn fail(&mut self, msg: String) {
        self.failed += 1;
        let _ = writeln!(std::io::stderr(), "ERROR: {msg}");
    }

    fn bar(&self, name: &str, len: u64) -> indicatif::ProgressBar {
        if !self.progress {
            return indicatif::ProgressBar::hidden();
        }
        let bar = indicatif::ProgressBar::with_draw_target(Some(len), indicatif::ProgressDrawTarget::stderr_with_hz(10));
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{msg:30!} {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} {eta:>4}")
        {
            bar.set_style(style);
        }
        bar.set_message(name.to_string());
        bar
    }

    async fn upload(&mut self, local: &Path, remote: &str) {
        let meta = match std::fs::metadata(local) {
            Ok(m) => m,
            Err(e) => return self.fail(format!("{}: {}", local.display(), io_text(&e))),
        };
        if meta.is_dir() {
            if !self.recursive {
                return self.fail(format!("{} is a directory: use -r to copy directories", local.display()));
            }
            return Box::pin(self.upload_dir(local, remote, &meta)).await;
        }
        if let Err(e) = self.upload_file(local, remote, &meta).await {
            self.fail(e);
        }
    }

    async fn upload_dir(&mut self, local: &Path, remote: &str, meta: &std::fs::Metadata) {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = self.sftp.create_dir(remote).await {
            let exists = self.sftp.metadata(remote).await.map(|m| m.is_dir()).unwrap_or(false);
            if !exists {
                return self.fail(format!("{}{remote}: {}", self.remote, why(&e)));
            }
        }
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(local) {
            Ok(rd) => rd.flatten().map(|e| e.path()).collect(),
            Err(e) => return self.fail(format!("{}: {}", local.display(), io_text(&e))),
        };
        entries.sort();
        for e in entries {
            let name = e.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            Box::pin(self.upload(&e, &join(remote, &name))).await;
        }
        if self.preserve {
            let attrs = times_and_mode(meta.permissions().mode(), meta);
            let _ = self.sftp.set_metadata(remote, attrs).await;
        }
    }

    async fn upload_file(&mut self, local: &Path, remote: &str, meta: &std::fs::Metadata) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        let at = format!("{}{remote}", self.remote);
        let mut src = tokio::fs::File::open(local).await.map_err(|e| format!("{}: {}", local.display(), io_text(&e)))?;
        let attrs = FileAttributes { permissions: Some(meta.permissions().mode() & 0o777), ..FileAttributes::empty() };
        let mut dst = self
            .sftp
            .open_with_flags_and_attributes(remote, OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE, attrs)
            .await
            .map_err(|e| format!("{at}: {}", why(&e)))?;
        let bar = self.bar(base_name(remote), meta.len());
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = src.read(&mut buf).await.map_err(|e| format!("{}: {}", local.display(), io_text(&e)))?;
            if n == 0 {
                break;
            }
            dst.write_all(&buf[..n]).await.map_err(|e| format!("{at}: {e}"))?;
            bar.inc(n as u64);
        }
        dst.shutdown().await.map_err(|e| format!("{at}: {e}"))?;
        bar.finish();
        if self.preserve {
            self.sftp
                .set_metadata(remote, times_and_mode(meta.permissions().mode(), meta))
                .await
                .map_err(|e| format!("{at}: {}", why(&e)))?;
        }
        Ok(())
    }

    /// The remote sources `path` names: itself, or what its last part matches on the node.
    async fn expand(&mut self, path: &str) -> Vec<String> {
        let (dir, pattern) = match path.rsplit_once('/') {
            Some((d, p)) => (if d.is_empty() { "/".to_string() } else { d.to_string() }, p),
            None => (".".to_string(), path),
        };
        if !has_glob(pattern) || has_glob(&dir) {
            return vec![path.to_string()];
        }
        let names: Vec<String> = match self.sftp.read_dir(dir.as_str()).await {
            Ok(rd) => rd.map(|e| e.file_name()).filter(|n| n != "." && n != ".." && glob_match(pattern.as_bytes(), n.as_bytes())).collect(),
            Err(e) => {
                self.fail(format!("{}{path}: {}", self.remote, why(&e)));
                return vec![];
            }
        };
        if names.is_empty() {
            self.fail(format!("{}{path}: no such file or directory (nothing matches)", self.remote));
        }
        let mut out: Vec<String> = names.iter().map(|n| if dir == "." { n.clone() } else { join(&dir, n) }).collect();
        out.sort();
        out
    }

    async fn download(&mut self, remote: &str, local: &Path) {
        let meta = match self.sftp.metadata(remote).await {
            Ok(m) => m,
            Err(e) if is_missing(&e) => return self.fail(format!("{}{remote}: no such file or directory", self.remote)),
            Err(e) => return self.fail(format!("{}{remote}: {}", self.remote, why(&e))),
        };
        if meta.is_dir() {
            if !self.recursive {
                return self.fail(format!("{}{remote} is a directory: use -r to copy directories", self.remote));
            }
            return Box::pin(self.download_dir(remote, local, meta.permissions.unwrap_or(0o755), &meta)).await;
        }
        if let Err(e) = self.download_file(remote, local, &meta).await {
            self.fail(e);
        }
    }

    async fn download_dir(&mut self, remote: &str, local: &Path, mode: u32, meta: &russh_sftp::client::fs::Metadata) {
        use std::os::unix::fs::DirBuilderExt;
        if let Err(e) = std::fs::DirBuilder::new().mode(mode & 0o777 | 0o700).create(local)
            && !local.is_dir()
        {
            return self.fail(format!("{}: {}", local.display(), io_text(&e)));
        }
        let mut names: Vec<String> = match self.sftp.read_dir(remote).await {
            Ok(rd) => rd.map(|e| e.file_name()).filter(|n| n != "." && n != "..").collect(),
            Err(e) => return self.fail(format!("{}{remote}: {}", self.remote, why(&e))),
        };
        names.sort();
        for n in names {
            Box::pin(self.download(&join(remote, &n), &local.join(&n))).await;
        }
        if self.preserve {
            set_local(local, meta);
        }
    }

    async fn download_file(&mut self, remote: &str, local: &Path, meta: &russh_sftp::client::fs::Metadata) -> Result<(), String> {
        use std::os::unix::fs::OpenOptionsExt;
        let at = format!("{}{remote}", self.remote);
        let mut src = self.sftp.open(remote).await.map_err(|e| format!("{at}: {}", why(&e)))?;
        let mode = meta.permissions.unwrap_or(0o644) & 0o777;
        let dst = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(local)
            .map_err(|e| format!("{}: {}", local.display(), io_text(&e)))?;
        let mut dst = tokio::fs::File::from_std(dst);
        let bar = self.bar(base_name(remote), meta.size.unwrap_or(0));
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = src.read(&mut buf).await.map_err(|e| format!("{at}: {e}"))?;
            if n == 0 {
                break;
            }
            dst.write_all(&buf[..n]).await.map_err(|e| format!("{}: {}", local.display(), io_text(&e)))?;
            bar.inc(n as u64);
        }
        dst.flush().await.map_err(|e| format!("{}: {}", local.display(), io_text(&e)))?;
        drop(dst);
        let _ = src.shutdown().await;
        bar.finish();
        if self.preserve {
            set_local(local, meta);
        }
        Ok(())
    }
}

fn times_and_mode(mode: u32, meta: &std::fs::Metadata) -> FileAttributes {
    use std::os::unix::fs::MetadataExt;
    FileAttributes {
        permissions: Some(mode & 0o7777),
        atime: u32::try_from(meta.atime()).ok(),
        mtime: u32::try_from(meta.mtime()).ok(),
        ..FileAttributes::empty()
    }
}

fn set_local(local: &Path, meta: &russh_sftp::client::fs::Metadata) {
    use std::os::unix::fs::PermissionsExt;
    if let Some(m) = meta.permissions {
        let _ = std::fs::set_permissions(local, std::fs::Permissions::from_mode(m & 0o7777));
    }
    if let (Some(a), Some(m)) = (meta.atime, meta.mtime) {
        let t = |s: u32| std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::from(s));
        if let Ok(f) = std::fs::File::open(local) {
            let _ = f.set_times(std::fs::FileTimes::new().set_accessed(t(a)).set_modified(t(m)));
        }
    }
}

/// Runs the command; returns the exit status.
pub async fn exec(a: Args, g: &Global) -> anyhow::Result<u8> {
    let mut locs = Vec::with_capacity(a.paths.len());
    for p in &a.paths {
        locs.push(parse_loc(p)?);
    }
    let Some(dest) = locs.pop() else { bail!("give SOURCE... DEST") };
    let remote_sources: Vec<&Loc> = locs.iter().filter(|l| matches!(l, Loc::Remote { .. })).collect();
    let (login, host, upload) = match (&dest, remote_sources.as_slice()) {
        (Loc::Remote { login, host, .. }, []) => (login.clone(), host.clone(), true),
        (Loc::Local(_), [Loc::Remote { login, host, .. }, ..]) => {
            if remote_sources.len() != locs.len() {
                bail!("copy from local files or from a node, not both: one side of tsh scp is remote");
            }
            for l in &remote_sources {
                if let Loc::Remote { login: l2, host: h2, .. } = l
                    && (l2 != login || h2 != host)
                {
                    bail!("all remote sources must be on the same login@host");
                }
            }
            (login.clone(), host.clone(), false)
        }
        (Loc::Remote { .. }, _) => bail!("copying from one node to another is not supported: copy to a local path first"),
        (Loc::Local(_), []) => bail!("neither side is remote: write the node side as [login@]host:[path]"),
        (Loc::Local(_), [Loc::Local(_), ..]) => unreachable!("remote_sources holds remote locations only"),
    };
    let login = login.or_else(|| std::env::var("USER").ok()).ok_or_else(|| anyhow!("write the node side as login@host:path"))?;
    let mut session = Session::load(g).map_err(NotConnected::wrap)?;
    let (proxy, node) = reach(&mut session, g, &login, &host, a.port, None).await.map_err(NotConnected::wrap)?;
    let sftp = match node.sftp().await {
        Ok(s) => s,
        Err(e) => {
            node.close().await;
            proxy.close().await;
            return Err(e);
        }
    };
    let progress = !a.quiet && std::io::stderr().is_terminal();
    let mut c = Copier { sftp, remote: format!("{login}@{host}:"), recursive: a.recursive, preserve: a.preserve, progress, failed: 0 };
    if upload {
        let Loc::Remote { path, .. } = &dest else { unreachable!("checked above") };
        let dest = sftp_path(path);
        let dest_is_dir = c.sftp.metadata(dest.as_str()).await.map(|m| m.is_dir()).unwrap_or(false);
        if locs.len() > 1 && !dest_is_dir {
            c.fail(format!("{}{dest} is not a directory (copying several sources needs one)", c.remote));
        } else {
            for l in &locs {
                let Loc::Local(src) = l else { continue };
                let name = src.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| ".".into());
                let target = if dest_is_dir { join(&dest, &name) } else { dest.clone() };
                c.upload(src, &target).await;
            }
        }
    } else {
        let Loc::Local(dest) = &dest else { unreachable!("checked above") };
        let mut sources = Vec::new();
        for l in &locs {
            if let Loc::Remote { path, .. } = l {
                let p = sftp_path(path);
                sources.extend(c.expand(&p).await);
            }
        }
        let dest_is_dir = dest.is_dir();
        if sources.len() > 1 && !dest_is_dir {
            c.fail(format!("{} is not a directory (copying several sources needs one)", dest.display()));
        } else {
            for s in sources {
                let target = if dest_is_dir { dest.join(base_name(&s)) } else { dest.clone() };
                c.download(&s, &target).await;
            }
        }
    }
    let failed = c.failed;
    let _ = c.sftp.close().await;
    node.close().await;
    proxy.close().await;
    Ok(if failed > 0 { 1 } else { 0 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_are_read_as_scp_reads_them() {
        let r = |l: Option<&str>, h: &str, p: &str| Loc::Remote { login: l.map(String::from), host: h.into(), path: p.into() };
        assert_eq!(parse_loc("visitor@db1:/tmp/x").unwrap(), r(Some("visitor"), "db1", "/tmp/x"));
        assert_eq!(parse_loc("db1:").unwrap(), r(None, "db1", ""));
        assert_eq!(parse_loc("v@[::1]:a").unwrap(), r(Some("v"), "::1", "a"));
        assert_eq!(parse_loc("./a:b").unwrap(), Loc::Local("./a:b".into()));
        assert_eq!(parse_loc("file.txt").unwrap(), Loc::Local("file.txt".into()));
        assert!(parse_loc(":x").is_err());
        assert!(parse_loc("@h:x").is_err());
        assert_eq!(sftp_path(""), ".");
        assert_eq!(sftp_path("~/notes"), "notes");
        assert_eq!(sftp_path("/etc/hosts"), "/etc/hosts");
    }

    #[test]
    fn globs_match_as_the_shell_does() {
        let m = |p: &str, n: &str| glob_match(p.as_bytes(), n.as_bytes());
        assert!(m("*.log", "a.log") && !m("*.log", "a.log.1"));
        assert!(m("a?c", "abc") && !m("a?c", "ac"));
        assert!(m("[ab]*", "beta") && !m("[!ab]*", "beta"));
        assert!(m("f[0-9]", "f7") && !m("f[0-9]", "fx"));
        assert!(m("*", "anything") && m("**x", "x"));
        assert!(!m("[abc", "a"), "an unclosed class matches nothing");
    }
}
