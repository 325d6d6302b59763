//! PostgreSQL bytes from a client (`shared::pg`): the startup packet and the messages after it,
//! fed in arbitrary pieces. Nothing panics; what is read stays within its bounds; a startup
//! message's parameters survive being written again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::pg::{MAX_MESSAGE, MAX_STARTUP, Scanner, Startup, encode_startup, error_response, parse_frontend, read_message, read_startup};

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((s, n))) = read_startup(data) {
        assert!(n <= MAX_STARTUP && n <= data.len(), "{n}");
        if let Startup::Message { params, .. } = &s {
            let again = encode_startup(params);
            match read_startup(&again) {
                Ok(Some((Startup::Message { params: p2, .. }, _))) => assert_eq!(&p2, params),
                other => panic!("a startup message did not survive a round trip: {other:?}"),
            }
        }
    }
    let mut at = 0;
    let mut steps = 0;
    while at < data.len() && steps < 10_000 {
        steps += 1;
        match read_message(&data[at..]) {
            Ok(Some((tag, body, n))) => {
                assert!(n >= 5 && body.len() + 5 == n && body.len() <= MAX_MESSAGE);
                let _ = parse_frontend(tag, body);
                at += n;
            }
            _ => break,
        }
    }
    // The same bytes through the streaming scanner, in two pieces: never a panic.
    let mut sc = Scanner::new();
    let cut = data.first().map(|b| *b as usize % (data.len() + 1)).unwrap_or(0);
    let _ = sc.feed(&data[..cut], &mut |_| {}).and_then(|_| sc.feed(&data[cut..], &mut |_| {}));
    let text = String::from_utf8_lossy(data);
    let e = error_response("FATAL", "28000", &text);
    assert_eq!(u32::from_be_bytes([e[1], e[2], e[3], e[4]]) as usize + 1, e.len());
});
