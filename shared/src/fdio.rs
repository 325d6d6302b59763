//! Reading and writing a descriptor the runtime waits on (a PTY master at the node, `tsh`'s
//! terminal): non-blocking, registered with the event loop, so a keystroke or its echo costs no
//! hand-off to another thread. Registering is the caller's (it owns the descriptor's flags).

use std::fs::File;
use std::io::{Read, Write};

use tokio::io::unix::AsyncFd;

/// Reads what `fd` has once it is readable (0 at its end).
pub async fn read(fd: &AsyncFd<File>, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        let mut ready = fd.readable().await?;
        match ready.try_io(|f| f.get_ref().read(buf)) {
            Ok(r) => return r,
            Err(_would_block) => continue,
        }
    }
}

/// Writes all of `buf`, waiting while `fd` is full.
pub async fn write_all(fd: &AsyncFd<File>, mut buf: &[u8]) -> std::io::Result<()> {
    while !buf.is_empty() {
        let mut ready = fd.writable().await?;
        match ready.try_io(|f| f.get_ref().write(buf)) {
            Ok(Ok(0)) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(Ok(n)) => buf = &buf[n..],
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => continue,
        }
    }
    Ok(())
}
