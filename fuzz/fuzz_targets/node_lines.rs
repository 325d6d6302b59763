//! What a node reads from its SFTP child (one audit line: the child runs as the login, so the
//! login could write anything there), an exec request's command (legacy `scp -t/-f` is told apart
//! by it) and a remote forward's address. Nothing panics; an event keeps the node's own who and
//! where whatever the line says.
#![no_main]

use libfuzzer_sys::fuzz_target;
use teleport_server::node::{copy, forward};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut base = shared::api::AuditEvent::new();
    base.insert("user".into(), serde_json::json!("alice"));
    base.insert("login".into(), serde_json::json!("visitor"));
    if let Some(e) = copy::event_of(text, &base) {
        assert_eq!(e["user"], "alice", "{text:?}");
        assert_eq!(e["login"], "visitor", "{text:?}");
        assert!(e["code"].as_str().is_some_and(|c| c.starts_with("TS")), "{text:?}");
    }
    if let Some((_, path)) = copy::legacy_scp(text) {
        assert!(!path.contains(char::is_whitespace), "{text:?} gave path {path:?}");
    }
    let (addr, port) = text.split_once('\n').unwrap_or((text, ""));
    if let Ok(a) = forward::listen_addr(addr, port.parse().unwrap_or(0)) {
        assert!(a.ip().is_loopback(), "{text:?} listens on {a}");
    }
});
