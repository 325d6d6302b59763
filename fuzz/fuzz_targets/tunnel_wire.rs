//! Everything that crosses a reverse tunnel or the peer port (`tunnel::wire`), straight from the
//! network: channel requests, status lines, heartbeat lines, peer requests, a proxy's vouch.
//! Nothing panics, and what decodes encodes back to the same thing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use teleport_server::tunnel::wire::{Heartbeat, PeerRequest, Status, TunnelRequest, VouchLine};

fuzz_target!(|data: &[u8]| {
    let _ = VouchLine::may_start(data);
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(r) = TunnelRequest::decode(text) {
        let again = TunnelRequest::decode(&r.encode()).unwrap_or_else(|e| panic!("{text:?} -> {:?}: {e}", r.encode()));
        assert_eq!(again, r, "{text:?}");
    }
    if let Ok(s) = Status::decode(text) {
        let line = s.encode();
        assert!(line.len() <= teleport_server::tunnel::wire::MAX_STATUS_LEN && !line.contains('\n'), "{line:?}");
        match (s, Status::decode(&line)) {
            (Status::Ok, Ok(Status::Ok)) => {}
            (Status::Err(a), Ok(Status::Err(b))) => assert_eq!((a.kind, a.code), (b.kind, b.code), "{text:?}"),
            (a, b) => panic!("{text:?}: {a:?} came back as {b:?}"),
        }
    }
    if let Ok(Some(h)) = Heartbeat::decode(text) {
        let line = h.encode();
        let again = Heartbeat::decode(&line).unwrap_or_else(|e| panic!("{text:?} -> {line:?}: {e}"));
        assert_eq!(again.map(|h| h.encode()), Some(line), "{text:?}");
    }
    if let Ok(p) = PeerRequest::decode(text) {
        assert_eq!(PeerRequest::decode(&p.encode()).ok(), Some(p), "{text:?}");
    }
    if let Ok(v) = VouchLine::decode(text) {
        let line = v.encode();
        assert_eq!(VouchLine::decode(line.strip_suffix('\n').unwrap_or(&line)).ok(), Some(v), "{text:?}");
    }
});
