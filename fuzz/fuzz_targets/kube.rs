//! Kubernetes bytes and strings from the network: the exec stream read as it passes
//! (`access::kube::exec`: WebSocket and SPDY frames of the remote command protocol), a request's method,
//! path and query (`shared::kube::KubeRequest`), impersonation headers. Nothing panics, no
//! message beyond the bound is kept, and discovery never overlaps an object path.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::kube::{KubeRequest, Requested, impersonate, is_discovery};
use teleport_server::access::kube::exec::{FrameReader, MAX_MESSAGE, SpdyReader, exit_code, resize, spdy_streams};

fuzz_target!(|data: &[u8]| {
    let mut r = FrameReader::new();
    let split = data.first().map(|b| usize::from(*b) + 1).unwrap_or(1);
    for piece in data.chunks(split) {
        for m in r.feed(piece) {
            assert!(m.data.len() < MAX_MESSAGE, "a message beyond the bound was kept");
            let _ = resize(&m.data);
            let _ = exit_code(&m.data);
        }
    }
    let mut spdy = SpdyReader::new(spdy_streams(true, true, true, data.len() % 2 == 0), &[1, 2, 3, 4]);
    for piece in data.chunks(split) {
        for m in spdy.feed(piece) {
            assert!(m.data.len() <= MAX_MESSAGE, "a SPDY frame beyond the bound was kept");
            assert!([1, 2, 3, 4].contains(&m.channel), "{m:?}");
        }
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut parts = text.splitn(3, ' ');
    let (method, path, query) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if let Some(req) = KubeRequest::parse(method, path, query) {
        assert!(!is_discovery(path), "{path:?} is both an object and discovery");
        assert!(!req.resource.is_empty() && !req.verb.is_empty(), "{req:?}");
        let _ = req.describe();
    }
    let headers: Vec<(&str, &str)> = text.lines().filter_map(|l| l.split_once(':')).collect();
    let asked = Requested::from_headers(headers.into_iter());
    if let Ok(i) = impersonate(&asked, &["a".into()], &["g".into()], "d") {
        assert!(i.groups.iter().any(|g| g == shared::kube::AUTHENTICATED_GROUP));
        assert!(i.user == "a" || i.user == "d", "{i:?}");
    }
});
