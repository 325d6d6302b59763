//! The heartbeat channel's line reader (`tunnel::Lines`), fed a leaf's bytes: every line it
//! gives is at most its limit and holds no newline, the lines are exactly what was sent, and a
//! longer line or a cut-off one ends with an error, never a panic or unbounded memory.
#![no_main]

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use libfuzzer_sys::fuzz_target;
use teleport_server::tunnel::Lines;

const MAX: usize = 64;

fuzz_target!(|data: &[u8]| {
    // A byte slice is always ready, so each call completes on its first poll.
    let mut lines = Lines::new(data, MAX);
    let mut consumed = Vec::new();
    loop {
        let mut next = pin!(lines.next());
        let Poll::Ready(r) = next.as_mut().poll(&mut Context::from_waker(Waker::noop())) else {
            panic!("a slice reader never waits");
        };
        match r {
            Ok(Some(line)) => {
                assert!(line.len() <= MAX * 3, "{} bytes", line.len()); // lossy UTF-8: up to 3 per byte
                assert!(!line.contains('\n'));
                consumed.push(line);
            }
            Ok(None) => {
                // A clean end: every byte was in a line, one line per newline sent.
                assert!(data.is_empty() || data.ends_with(b"\n"));
                assert_eq!(consumed.len(), data.iter().filter(|&&b| b == b'\n').count());
                if let Ok(text) = std::str::from_utf8(data) {
                    assert_eq!(consumed.iter().map(|l| format!("{l}\n")).collect::<String>(), text);
                }
                return;
            }
            Err(_) => return,
        }
    }
});
