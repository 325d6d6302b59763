//! The `proxy:host:port@cluster` SSH subsystem request, straight from the network.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::subsystem::parse_proxy_request;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(req) = parse_proxy_request(text) else { return };
    // Bounded, printable, and what it means is what it says.
    assert!(req.host.len() <= 253);
    assert!(!req.host.chars().any(|c| c.is_control() || c.is_whitespace()));
    let again = parse_proxy_request(&req.to_subsystem()).unwrap_or_else(|e| panic!("{text:?} -> {:?}: {e}", req.to_subsystem()));
    assert_eq!(again, req, "{text:?}");
});
