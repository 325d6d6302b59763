//! Trait templates (`{{internal.logins}}`, `email.local`, `regexp.replace`). Input (UTF-8 text):
//! the first line is a role value; every further line is a trait, `name=v1,v2`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shared::template::{Template, Traits, apply_values, validate_values};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (value, rest) = text.split_once('\n').unwrap_or((text, ""));
    let mut traits = Traits::new();
    for line in rest.lines().take(16) {
        let (k, v) = line.split_once('=').unwrap_or((line, ""));
        traits.entry(k.to_string()).or_default().extend(v.split(',').map(String::from));
    }
    let parsed = Template::parse(value);
    let validated = validate_values("logins", &[value.to_string()]);
    // Whatever validation accepts must parse.
    if validated.is_ok() {
        assert!(parsed.is_ok(), "{value:?} validated but does not parse");
    }
    if let Ok(t) = &parsed {
        if let Ok(out) = t.apply(&traits)
            && !t.is_literal()
        {
            assert!(!out.is_empty(), "an expansion with no values is an error, not an empty list");
            assert!(out.iter().all(|v| !v.is_empty()), "{value:?} expanded to an empty value: {out:?}");
        }
        if t.is_literal() {
            assert_eq!(t.apply(&traits).ok(), Some(vec![value.to_string()]));
        }
    }
    let expanded = apply_values(&[value.to_string(), value.to_string()], &traits);
    let mut dedup = expanded.clone();
    dedup.dedup();
    assert_eq!(expanded.len(), dedup.len(), "apply_values de-duplicates");
});
