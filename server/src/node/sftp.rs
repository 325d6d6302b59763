//! The SFTP subsystem (`sftp`, `scp` in its default SFTP mode, `tsh scp`, the web UI's upload and
//! download). It runs in a child process the node starts **as the login user** (`teleport sftp`,
//! with the same `initgroups`/`setgid`/`setuid` as a shell, its working directory the login's
//! home), so every file operation has that user's permissions and ownership, never root's.
//!
//! ```text
//! client ──channel──▶ node (root) ──stdin/stdout──▶ teleport sftp (login user) ──▶ files
//!                         ▲                               │
//!                         └──────── fd 3: audit lines ────┘  one JSON object per line
//! ```
//! The protocol is SFTP v3 as OpenSSH speaks it (`russh_sftp` reads and writes the packets), with
//! the OpenSSH extensions its clients use: `limits@` (so clients send 255 KiB reads and writes),
//! `posix-rename@`, `hardlink@`, `fsync@`, `statvfs@` and `expand-path@` (for `~` paths in
//! `scp`). The child sends the node one line per operation that changes something or opens a
//! file (at most [`MAX_OP_EVENTS`]) and a summary with the bytes each file moved; the node adds
//! who and where and writes them to the audit log.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, FileExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use russh_sftp::protocol::{Attrs, Data, File, FileAttributes, Handle, Name, OpenFlags, Packet, Status, StatusCode, Version};
use russh_sftp::server::StatusReply;
use serde_json::{Value, json};

/// The largest packet a client may send (a 255 KiB write and its header).
pub const MAX_PACKET: u32 = 256 * 1024;
/// The largest read or write a client is told to send.
const MAX_IO: u64 = 255 * 1024;
/// Open files and directories at once.
const MAX_HANDLES: usize = 256;
/// Operation events per session; the summary still counts every file.
pub const MAX_OP_EVENTS: usize = 1000;
/// Files the summary lists by name.
const MAX_SUMMARY_FILES: usize = 1000;
/// Directory entries returned per `readdir`.
const READDIR_BATCH: usize = 128;

/// Teleport's numbers for the `action` of an `sftp` event.
mod action {
    pub const OPEN: u8 = 1;
    pub const SETSTAT: u8 = 7;
    pub const OPENDIR: u8 = 9;
    pub const REMOVE: u8 = 11;
    pub const MKDIR: u8 = 12;
    pub const RMDIR: u8 = 13;
    pub const RENAME: u8 = 16;
    pub const SYMLINK: u8 = 18;
    pub const LINK: u8 = 19;
}

enum Open {
    File { file: fs::File, path: String },
    Dir { entries: std::vec::IntoIter<File> },
}

/// Bytes one file moved.
#[derive(Default)]
struct Moved {
    read: u64,
    written: u64,
}

/// The SFTP server of one session, over the files of the user the process runs as.
pub struct Server {
    home: PathBuf,
    handles: HashMap<String, Open>,
    next_handle: u64,
    moved: BTreeMap<String, Moved>,
    files_beyond_summary: u64,
    events: usize,
    events_dropped: u64,
    audit: Option<Box<dyn Write + Send>>,
    finished: bool,
    done: Option<tokio::sync::oneshot::Sender<()>>,
}

/// An SFTP status for a failure.
pub struct Failure(StatusReply);

impl From<Failure> for StatusReply {
    fn from(f: Failure) -> StatusReply {
        f.0
    }
}

fn failure(code: StatusCode, message: impl Into<String>) -> Failure {
    Failure(code.with_message(message))
}

fn io_failure(e: &std::io::Error) -> Failure {
    let code = match e.kind() {
        std::io::ErrorKind::NotFound => StatusCode::NoSuchFile,
        std::io::ErrorKind::PermissionDenied => StatusCode::PermissionDenied,
        _ => StatusCode::Failure,
    };
    failure(code, shared::error::io_text(e))
}

fn ok(id: u32) -> Status {
    Status { id, status_code: StatusCode::Ok, error_message: "Ok".into(), language_tag: "en-US".into() }
}

/// A file's attributes as SFTP carries them (type bits kept as the file system has them).
pub fn attrs_of(m: &fs::Metadata) -> FileAttributes {
    FileAttributes {
        size: Some(m.size()),
        uid: Some(m.uid()),
        user: None,
        gid: Some(m.gid()),
        group: None,
        permissions: Some(m.mode()),
        atime: Some(u32::try_from(m.atime().max(0)).unwrap_or(u32::MAX)),
        mtime: Some(u32::try_from(m.mtime().max(0)).unwrap_or(u32::MAX)),
    }
}

/// `ls -l`'s line for a directory entry, as OpenSSH's server writes it.
fn long_name(name: &str, m: &fs::Metadata) -> String {
    let mode = m.mode();
    let kind = match mode & 0o170000 {
        0o040000 => 'd',
        0o120000 => 'l',
        0o020000 => 'c',
        0o060000 => 'b',
        0o010000 => 'p',
        0o140000 => 's',
        _ => '-',
    };
    let mut perms = String::with_capacity(9);
    for (bit, c) in [(0o400, 'r'), (0o200, 'w'), (0o100, 'x'), (0o40, 'r'), (0o20, 'w'), (0o10, 'x'), (0o4, 'r'), (0o2, 'w'), (0o1, 'x')] {
        perms.push(if mode & bit != 0 { c } else { '-' });
    }
    let user = nix::unistd::User::from_uid(m.uid().into()).ok().flatten().map(|u| u.name).unwrap_or_else(|| m.uid().to_string());
    let group = nix::unistd::Group::from_gid(m.gid().into()).ok().flatten().map(|g| g.name).unwrap_or_else(|| m.gid().to_string());
    let when = time::OffsetDateTime::from_unix_timestamp(m.mtime()).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let date = format!("{} {:>2} {:02}:{:02}", &format!("{:?}", when.month())[..3], when.day(), when.hour(), when.minute());
    format!("{kind}{perms} {:>3} {user:<8} {group:<8} {:>8} {date} {name}", m.nlink(), m.size())
}

/// `path` with `.` and `..` resolved without touching the file system.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(p) => out.push(p),
            _ => {}
        }
    }
    out
}

impl Server {
    /// A server rooted at `home` (the login's home, the start directory `scp` expects), writing
    /// audit lines to `audit`.
    pub fn new(home: PathBuf, audit: Option<Box<dyn Write + Send>>) -> Server {
        Server {
            home,
            handles: HashMap::new(),
            next_handle: 0,
            moved: BTreeMap::new(),
            files_beyond_summary: 0,
            events: 0,
            events_dropped: 0,
            audit,
            finished: false,
            done: None,
        }
    }

    /// A client's path, relative ones from home.
    fn path(&self, p: &str) -> PathBuf {
        if p.is_empty() { self.home.clone() } else { self.home.join(p) }
    }

    fn audit_line(&mut self, v: Value) {
        if let Some(a) = &mut self.audit {
            let mut line = v.to_string();
            line.push('\n');
            if a.write_all(line.as_bytes()).and_then(|_| a.flush()).is_err() {
                self.audit = None;
            }
        }
    }

    /// One operation event (while under [`MAX_OP_EVENTS`]).
    fn op(&mut self, action: u8, path: &Path, extra: Value, error: Option<&std::io::Error>) {
        if self.events >= MAX_OP_EVENTS {
            self.events_dropped += 1;
            return;
        }
        self.events += 1;
        let mut v = json!({"kind": "op", "action": action, "path": path.display().to_string(), "working_directory": self.home.display().to_string()});
        if let (Value::Object(m), Value::Object(e)) = (&mut v, extra) {
            m.extend(e);
        }
        if let Some(e) = error {
            v["error"] = json!(e.to_string());
        }
        self.audit_line(v);
    }

    /// The event of an operation that changes something, and the client's answer to it.
    fn audited(&mut self, id: u32, action: u8, path: &Path, extra: Value, r: std::io::Result<()>) -> Result<Status, Failure> {
        self.op(action, path, extra, r.as_ref().err());
        r.map_err(|e| io_failure(&e))?;
        Ok(ok(id))
    }

    fn count(&mut self, path: &str, read: u64, written: u64) {
        if !self.moved.contains_key(path) && self.moved.len() >= MAX_SUMMARY_FILES {
            self.files_beyond_summary += 1;
            return;
        }
        let m = self.moved.entry(path.to_string()).or_default();
        m.read += read;
        m.written += written;
    }

    /// The session's summary line (once; dropping the server writes it too).
    pub fn finish(&mut self) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let moved = std::mem::take(&mut self.moved);
        let stats: Vec<Value> = moved
            .into_iter()
            .filter(|(_, m)| m.read > 0 || m.written > 0)
            .map(|(path, m)| json!({"path": path, "bytes_read": m.read, "bytes_written": m.written}))
            .collect();
        let v = json!({
            "kind": "summary",
            "file_transfer_stats": stats,
            "files_not_listed": self.files_beyond_summary,
            "events_not_written": self.events_dropped,
        });
        self.audit_line(v);
    }

    fn new_handle(&mut self, open: Open) -> Result<String, Failure> {
        if self.handles.len() >= MAX_HANDLES {
            return Err(failure(StatusCode::Failure, format!("too many open files (at most {MAX_HANDLES})")));
        }
        self.next_handle += 1;
        let h = self.next_handle.to_string();
        self.handles.insert(h.clone(), open);
        Ok(h)
    }

    fn file(&self, handle: &str) -> Result<(&fs::File, &str), Failure> {
        match self.handles.get(handle) {
            Some(Open::File { file, path }) => Ok((file, path)),
            _ => Err(failure(StatusCode::Failure, "invalid handle")),
        }
    }

    fn set_attrs(path: &Path, file: Option<&fs::File>, a: &FileAttributes) -> std::io::Result<()> {
        if let Some(size) = a.size {
            match file {
                Some(f) => f.set_len(size)?,
                None => fs::OpenOptions::new().write(true).open(path)?.set_len(size)?,
            }
        }
        if let Some(mode) = a.permissions {
            let p = fs::Permissions::from_mode(mode & 0o7777);
            match file {
                Some(f) => f.set_permissions(p)?,
                None => fs::set_permissions(path, p)?,
            }
        }
        if a.uid.is_some() || a.gid.is_some() {
            std::os::unix::fs::chown(path, a.uid, a.gid)?;
        }
        if let (Some(at), Some(mt)) = (a.atime, a.mtime) {
            let t = |s: u32| std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::from(s));
            let times = fs::FileTimes::new().set_accessed(t(at)).set_modified(t(mt));
            match file {
                Some(f) => f.set_times(times)?,
                None => fs::File::options().write(true).open(path).or_else(|_| fs::File::open(path))?.set_times(times)?,
            }
        }
        Ok(())
    }

    /// `realpath`: the absolute path, links resolved as far as it exists (the last part may be
    /// missing, as OpenSSH allows).
    fn resolve(&self, p: &str) -> PathBuf {
        let full = self.path(p);
        if let Ok(c) = fs::canonicalize(&full) {
            return c;
        }
        match (full.parent().and_then(|d| fs::canonicalize(d).ok()), full.file_name()) {
            (Some(dir), Some(name)) => lexical(&dir.join(name)),
            _ => lexical(&full),
        }
    }

    fn extended_reply(id: u32, data: Vec<u8>) -> Packet {
        Packet::ExtendedReply(russh_sftp::protocol::ExtendedReply { id, data })
    }
}

fn decode<T: serde::de::DeserializeOwned>(data: Vec<u8>) -> Result<T, Failure> {
    let mut b = bytes::Bytes::from(data);
    russh_sftp::de::from_bytes(&mut b).map_err(|_| failure(StatusCode::BadMessage, "malformed extension request"))
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, Failure> {
    russh_sftp::ser::to_bytes(v).map(|b| b.to_vec()).map_err(|_| failure(StatusCode::Failure, "cannot encode the reply"))
}

impl russh_sftp::server::Handler for Server {
    type Error = Failure;

    fn unimplemented(&self) -> Failure {
        failure(StatusCode::OpUnsupported, "operation not supported")
    }

    async fn init(&mut self, _version: u32, _extensions: HashMap<String, String>) -> Result<Version, Failure> {
        let mut v = Version::new();
        for (name, ver) in [
            ("posix-rename@openssh.com", "1"),
            ("statvfs@openssh.com", "2"),
            ("fstatvfs@openssh.com", "2"),
            ("hardlink@openssh.com", "1"),
            ("fsync@openssh.com", "1"),
            ("limits@openssh.com", "1"),
            ("expand-path@openssh.com", "1"),
        ] {
            v.extensions.insert(name.into(), ver.into());
        }
        Ok(v)
    }

    async fn open(&mut self, id: u32, filename: String, pflags: OpenFlags, attrs: FileAttributes) -> Result<Handle, Failure> {
        let path = self.path(&filename);
        let mut o = fs::OpenOptions::new();
        let write = pflags.contains(OpenFlags::WRITE) || pflags.contains(OpenFlags::APPEND);
        o.read(pflags.contains(OpenFlags::READ) || !write)
            .write(write)
            .append(pflags.contains(OpenFlags::APPEND))
            .truncate(pflags.contains(OpenFlags::TRUNCATE))
            .custom_flags(libc::O_NOCTTY);
        if pflags.contains(OpenFlags::EXCLUDE) {
            o.create_new(true);
        } else if pflags.contains(OpenFlags::CREATE) {
            o.create(true);
        }
        // New files get the client's mode (scp sends the source's), else 0644; the umask applies.
        o.mode(attrs.permissions.map_or(0o644, |m| m & 0o7777));
        let flags = format!("{:?}", pflags);
        let opened = o.open(&path);
        self.op(action::OPEN, &path, json!({"flags": flags}), opened.as_ref().err());
        let file = opened.map_err(|e| io_failure(&e))?;
        if file.metadata().map(|m| m.is_dir()).unwrap_or(false) {
            return Err(failure(StatusCode::Failure, format!("{} is a directory", path.display())));
        }
        let handle = self.new_handle(Open::File { file, path: path.display().to_string() })?;
        Ok(Handle { id, handle })
    }

    async fn close(&mut self, id: u32, handle: String) -> Result<Status, Failure> {
        match self.handles.remove(&handle) {
            Some(_) => Ok(ok(id)),
            None => Err(failure(StatusCode::Failure, "invalid handle")),
        }
    }

    async fn read(&mut self, id: u32, handle: String, offset: u64, len: u32) -> Result<Data, Failure> {
        let (file, path) = self.file(&handle)?;
        let mut buf = vec![0u8; usize::try_from(u64::from(len).min(MAX_IO)).unwrap_or(0)];
        let mut n = 0;
        // A short read is not the end; fill the buffer unless the file ends.
        while n < buf.len() {
            match file.read_at(&mut buf[n..], offset + n as u64) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_failure(&e)),
            }
        }
        if n == 0 && len > 0 {
            return Err(failure(StatusCode::Eof, "end of file"));
        }
        buf.truncate(n);
        let path = path.to_string();
        self.count(&path, n as u64, 0);
        Ok(Data { id, data: buf })
    }

    async fn write(&mut self, id: u32, handle: String, offset: u64, data: Vec<u8>) -> Result<Status, Failure> {
        let (file, path) = self.file(&handle)?;
        file.write_all_at(&data, offset).map_err(|e| io_failure(&e))?;
        let path = path.to_string();
        self.count(&path, 0, data.len() as u64);
        Ok(ok(id))
    }

    async fn lstat(&mut self, id: u32, path: String) -> Result<Attrs, Failure> {
        let m = fs::symlink_metadata(self.path(&path)).map_err(|e| io_failure(&e))?;
        Ok(Attrs { id, attrs: attrs_of(&m) })
    }

    async fn fstat(&mut self, id: u32, handle: String) -> Result<Attrs, Failure> {
        let (file, _) = self.file(&handle)?;
        let m = file.metadata().map_err(|e| io_failure(&e))?;
        Ok(Attrs { id, attrs: attrs_of(&m) })
    }

    async fn setstat(&mut self, id: u32, path: String, attrs: FileAttributes) -> Result<Status, Failure> {
        let p = self.path(&path);
        let r = Self::set_attrs(&p, None, &attrs);
        self.audited(id, action::SETSTAT, &p, json!({}), r)
    }

    async fn fsetstat(&mut self, id: u32, handle: String, attrs: FileAttributes) -> Result<Status, Failure> {
        let (file, path) = self.file(&handle)?;
        let p = PathBuf::from(path);
        let r = Self::set_attrs(&p, Some(file), &attrs);
        self.audited(id, action::SETSTAT, &p, json!({}), r)
    }

    async fn opendir(&mut self, id: u32, path: String) -> Result<Handle, Failure> {
        let p = self.path(&path);
        let listing = fs::read_dir(&p);
        self.op(action::OPENDIR, &p, json!({}), listing.as_ref().err());
        let listing = listing.map_err(|e| io_failure(&e))?;
        let mut entries = Vec::new();
        for name in [".", ".."] {
            if let Ok(m) = fs::symlink_metadata(p.join(name)) {
                entries.push(File { filename: name.into(), longname: long_name(name, &m), attrs: attrs_of(&m) });
            }
        }
        for e in listing.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Ok(m) = e.metadata() {
                entries.push(File { longname: long_name(&name, &m), attrs: attrs_of(&m), filename: name });
            }
        }
        let handle = self.new_handle(Open::Dir { entries: entries.into_iter() })?;
        Ok(Handle { id, handle })
    }

    async fn readdir(&mut self, id: u32, handle: String) -> Result<Name, Failure> {
        match self.handles.get_mut(&handle) {
            Some(Open::Dir { entries }) => {
                let files: Vec<File> = entries.by_ref().take(READDIR_BATCH).collect();
                if files.is_empty() { Err(failure(StatusCode::Eof, "end of directory")) } else { Ok(Name { id, files }) }
            }
            _ => Err(failure(StatusCode::Failure, "invalid handle")),
        }
    }

    async fn remove(&mut self, id: u32, filename: String) -> Result<Status, Failure> {
        let p = self.path(&filename);
        let r = fs::remove_file(&p);
        self.audited(id, action::REMOVE, &p, json!({}), r)
    }

    async fn mkdir(&mut self, id: u32, path: String, attrs: FileAttributes) -> Result<Status, Failure> {
        let p = self.path(&path);
        let r = fs::DirBuilder::new().mode(attrs.permissions.map_or(0o777, |m| m & 0o7777)).create(&p);
        self.audited(id, action::MKDIR, &p, json!({}), r)
    }

    async fn rmdir(&mut self, id: u32, path: String) -> Result<Status, Failure> {
        let p = self.path(&path);
        let r = fs::remove_dir(&p);
        self.audited(id, action::RMDIR, &p, json!({}), r)
    }

    async fn realpath(&mut self, id: u32, path: String) -> Result<Name, Failure> {
        let p = self.resolve(&path).display().to_string();
        Ok(Name { id, files: vec![File::dummy(p)] })
    }

    async fn stat(&mut self, id: u32, path: String) -> Result<Attrs, Failure> {
        let m = fs::metadata(self.path(&path)).map_err(|e| io_failure(&e))?;
        Ok(Attrs { id, attrs: attrs_of(&m) })
    }

    async fn rename(&mut self, id: u32, oldpath: String, newpath: String) -> Result<Status, Failure> {
        // SFTP v3's rename must not replace an existing file (OpenSSH links, then unlinks).
        let (from, to) = (self.path(&oldpath), self.path(&newpath));
        let r = if fs::symlink_metadata(&to).is_ok() {
            Err(std::io::Error::new(std::io::ErrorKind::AlreadyExists, "the target exists"))
        } else {
            fs::rename(&from, &to)
        };
        self.audited(id, action::RENAME, &from, json!({"target_path": to.display().to_string()}), r)
    }

    async fn readlink(&mut self, id: u32, path: String) -> Result<Name, Failure> {
        let t = fs::read_link(self.path(&path)).map_err(|e| io_failure(&e))?;
        Ok(Name { id, files: vec![File::dummy(t.display().to_string())] })
    }

    async fn symlink(&mut self, id: u32, linkpath: String, targetpath: String) -> Result<Status, Failure> {
        // OpenSSH sends the target first and the new link second (the reverse of the draft).
        let (target, link) = (linkpath, self.path(&targetpath));
        let r = std::os::unix::fs::symlink(&target, &link);
        self.audited(id, action::SYMLINK, &link, json!({"target_path": target}), r)
    }

    async fn extended(&mut self, id: u32, request: String, data: Vec<u8>) -> Result<Packet, Failure> {
        use russh_sftp::extensions as ext;
        match request.as_str() {
            ext::LIMITS => {
                let l = ext::LimitsExtension {
                    max_packet_len: u64::from(MAX_PACKET),
                    max_read_len: MAX_IO,
                    max_write_len: MAX_IO,
                    max_open_handles: MAX_HANDLES as u64,
                };
                Ok(Self::extended_reply(id, encode(&l)?))
            }
            "posix-rename@openssh.com" => {
                let r: ext::HardlinkExtension = decode(data)?;
                let (from, to) = (self.path(&r.oldpath), self.path(&r.newpath));
                let res = fs::rename(&from, &to);
                Ok(Packet::Status(self.audited(id, action::RENAME, &from, json!({"target_path": to.display().to_string()}), res)?))
            }
            ext::HARDLINK => {
                let r: ext::HardlinkExtension = decode(data)?;
                let (from, to) = (self.path(&r.oldpath), self.path(&r.newpath));
                let res = fs::hard_link(&from, &to);
                Ok(Packet::Status(self.audited(id, action::LINK, &from, json!({"target_path": to.display().to_string()}), res)?))
            }
            ext::FSYNC => {
                let r: ext::FsyncExtension = decode(data)?;
                let (file, _) = self.file(&r.handle)?;
                file.sync_all().map_err(|e| io_failure(&e))?;
                Ok(Packet::Status(ok(id)))
            }
            ext::STATVFS | "fstatvfs@openssh.com" => {
                let s = if request == ext::STATVFS {
                    let r: ext::StatvfsExtension = decode(data)?;
                    nix::sys::statvfs::statvfs(&self.path(&r.path))
                } else {
                    let r: ext::FsyncExtension = decode(data)?;
                    let (file, _) = self.file(&r.handle)?;
                    nix::sys::statvfs::fstatvfs(file)
                }
                .map_err(|e| io_failure(&std::io::Error::from(e)))?;
                let v = ext::Statvfs {
                    block_size: s.block_size(),
                    fragment_size: s.fragment_size(),
                    blocks: s.blocks(),
                    blocks_free: s.blocks_free(),
                    blocks_avail: s.blocks_available(),
                    inodes: s.files(),
                    inodes_free: s.files_free(),
                    inodes_avail: s.files_available(),
                    fs_id: s.filesystem_id(),
                    flags: u64::from(s.flags().bits() as u32),
                    name_max: s.name_max(),
                };
                Ok(Self::extended_reply(id, encode(&v)?))
            }
            ext::EXPAND_PATH => {
                let r: ext::ExpandPathExtension = decode(data)?;
                let expanded = expand_tilde(&r.path, &self.home)?;
                Ok(Packet::Name(Name { id, files: vec![File::dummy(self.resolve(&expanded).display().to_string())] }))
            }
            _ => Err(self.unimplemented()),
        }
    }
}

/// `~`, `~/x` and `~user/x` as OpenSSH's `expand-path@` expands them.
fn expand_tilde(path: &str, home: &Path) -> Result<String, Failure> {
    let Some(rest) = path.strip_prefix('~') else { return Ok(path.to_string()) };
    let (user, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let base = if user.is_empty() {
        home.to_path_buf()
    } else {
        match nix::unistd::User::from_name(user) {
            Ok(Some(u)) => u.dir,
            _ => return Err(failure(StatusCode::NoSuchFile, format!("no such user {user:?}"))),
        }
    };
    Ok(base.join(tail).display().to_string())
}

/// `teleport sftp`: serves SFTP on stdin and stdout as the user this process runs as, writing
/// audit lines to fd 3. The node starts it; run by hand it refuses.
pub fn run_child() -> anyhow::Result<()> {
    // fd 3 must be the pipe the node made; anything else means the node did not start us.
    let Some(fd3) = super::session::inherited_fd3() else {
        anyhow::bail!("teleport sftp is started by the node for an SFTP session; it is not a command to run");
    };
    let audit: Box<dyn Write + Send> = Box::new(fd3);
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/"));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let mut server = Server::new(home, Some(audit));
        server.done = Some(done_tx);
        let stream = tokio::io::join(stdin_stream(), stdout_stream());
        russh_sftp::server::run_with_config(stream, server, russh_sftp::server::Config { max_client_packet_len: MAX_PACKET }).await;
        // The SFTP loop drops the server when the client goes away; its Drop writes the summary.
        let _ = done_rx.await;
    });
    Ok(())
}

/// Standard input on the event loop when it is a pipe (the node's), else tokio's stdin.
fn stdin_stream() -> Box<dyn tokio::io::AsyncRead + Unpin + Send> {
    use std::os::fd::AsFd;
    match std::io::stdin().as_fd().try_clone_to_owned().and_then(tokio::net::unix::pipe::Receiver::from_owned_fd) {
        Ok(p) => Box::new(p),
        Err(_) => Box::new(tokio::io::stdin()),
    }
}

/// Standard output on the event loop when it is a pipe, else tokio's stdout.
fn stdout_stream() -> Box<dyn tokio::io::AsyncWrite + Unpin + Send> {
    use std::os::fd::AsFd;
    match std::io::stdout().as_fd().try_clone_to_owned().and_then(tokio::net::unix::pipe::Sender::from_owned_fd) {
        Ok(p) => Box::new(p),
        Err(_) => Box::new(tokio::io::stdout()),
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.finish();
        if let Some(d) = self.done.take() {
            let _ = d.send(());
        }
    }
}
