//! Application access, strings from the network: the `Cookie` header a browser sends (the app
//! session's cookies found and stripped), the `Host` and TLS server name (which app, if any),
//! the launch's return path, a redirect's `Location` from the app, and `rewrite.headers` values
//! expanded with traits a root controls. Nothing panics; no app cookie survives stripping; a
//! return path stays on the app's host; no expanded value carries a line break.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::app::{SESSION_COOKIE, SUBJECT_COOKIE, app_label, cookie, expand_header, host_only, rewrite_location, safe_path, strip_app_cookies};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some(kept) = strip_app_cookies(text) {
        assert!(cookie(&kept, SESSION_COOKIE).is_none() && cookie(&kept, SUBJECT_COOKIE).is_none(), "{kept:?}");
    }
    let _ = cookie(text, SESSION_COOKIE);
    let (a, b) = text.split_once('\n').unwrap_or((text, "root.example.com"));
    let _ = host_only(a);
    if let Some(label) = app_label(a, b) {
        assert!(!label.is_empty() && !label.contains('.'), "{label:?}");
    }
    let p = safe_path(text);
    assert!(p.starts_with('/') && !p.starts_with("//") && !p.contains('\\'), "{p:?}");
    if let Some(loc) = rewrite_location(a, "127.0.0.1:3000", &[b.to_string()], "grafana.root.example.com:3080") {
        assert!(loc.starts_with("https://grafana.root.example.com:3080/"), "{loc:?}");
    }
    let mut traits = shared::template::Traits::new();
    traits.insert("x".into(), vec![b.to_string()]);
    if let Some(v) = expand_header(a, &traits, &traits, "token") {
        assert!(!v.contains('\r') && !v.contains('\n'), "{v:?}");
    }
});
