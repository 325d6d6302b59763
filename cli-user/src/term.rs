//! The local terminal: raw mode for interactive sessions (restored on drop) and window size.
#![allow(unsafe_code)]

use std::io::IsTerminal;
use std::os::fd::AsFd;

use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};

/// Whether standard input is a terminal.
pub fn stdin_is_tty() -> bool {
    std::io::stdin().is_terminal()
}

/// Puts stdin in raw mode until dropped.
pub struct RawMode {
    saved: Option<Termios>,
}

impl RawMode {
    /// Enters raw mode (no-op when stdin is not a terminal).
    pub fn enter() -> RawMode {
        let stdin = std::io::stdin();
        let Ok(saved) = tcgetattr(stdin.as_fd()) else { return RawMode { saved: None } };
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        if tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).is_err() {
            return RawMode { saved: None };
        }
        RawMode { saved: Some(saved) }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(saved) = &self.saved {
            let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, saved);
        }
    }
}

/// The terminal size (columns, rows); 80×24 when unknown.
pub fn size() -> (u32, u32) {
    let mut ws = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ writes a `winsize` into the valid pointer we pass; fd 1 or 0 may not be
    // a terminal, in which case the call fails and `ws` stays zeroed.
    let ok = unsafe {
        libc::ioctl(1, libc::TIOCGWINSZ, &mut ws as *mut libc::winsize) == 0
            || libc::ioctl(0, libc::TIOCGWINSZ, &mut ws as *mut libc::winsize) == 0
    };
    if ok && ws.ws_col > 0 && ws.ws_row > 0 { (u32::from(ws.ws_col), u32::from(ws.ws_row)) } else { (80, 24) }
}
